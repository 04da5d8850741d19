"""Run a suite from Python: what `lalm-bench run` does, as one call.

    from harness.api import run_suite
    result = run_suite("quick", out="results/quick-1", overrides={"grid.batch_size": [1, 2]})
    result.run_dir, result.statuses          # the run folder; points per status

Everything is checked before anything is written (the suite, the overrides, the device, the
workload, the folder), so a bad call raises one `UserError` line and leaves no half-made run.
Failed points are rows, never exceptions: the call returns once every point has a row.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness import runner, store
from harness.errors import UserError
from harness.executors import make_executor
from harness.executors.base import load_workload
from harness.runner import Progress, SweepResult
from harness.suite import Suite, expand, load_suite, validate_suite

# Settings a resumed run may change: how points are run, never what is measured.
RESUMABLE = ("run.timeout_s", "run.memory_limit_mb", "run.executor", "run.address", "run.cpus_per_point",
             "run.isolation", "run.threads")


def run_suite(
    suite: Suite | str | Path | None,
    out: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    source: str = "",
) -> SweepResult:
    """Run `suite` into the run folder `out` and return the sweep's summary.

    suite: a Suite, a suite name from suites/, or a TOML path; None with `resume` (the run's own).
    out: the run folder; default results/<run id>. With `resume` it must hold a run, whose
      unfinished points then run (a suite given must be the run's).
    overrides: {"grid.batch_size": [1, 2], ...} applied to the suite (only RESUMABLE on resume).
    overwrite: start again in `out` when it holds a run, or add a run to a folder of other files
      (nothing that is not the run's is deleted; a folder holding the store's names but no run is refused).
    source: where a Suite object came from, for run.json (a name or path records its file).
    """
    overrides = dict(overrides or {})
    if resume:
        if out is None:
            raise UserError("resume needs the run folder to finish")
        if overwrite:
            raise UserError("resume continues a run in its own folder; it cannot also overwrite it")
        run_dir = Path(out)
        resolved, meta = _resumed_suite(run_dir, suite, overrides)
        source = meta.get("source", "")
    else:
        if suite is None:
            raise UserError("give a suite to run, or resume a run folder")
        resolved, source = _suite(suite, overrides, source)
        run_id = store.new_run_id(resolved.name)
        run_dir = Path(out) if out is not None else Path("results") / run_id
        store.check_new_run_dir(run_dir, overwrite)
    executor = make_executor(resolved.run, resolved.measure, run_dir / store.LOGS)
    try:
        resolved = resolved.with_device(executor.resolve_device(resolved.run.device))
        if not expand(resolved):
            raise UserError(f"{source or resolved.name}: the grid selects no points (every combination is excluded)")
        load_workload(resolved.run.workload)

        # Everything is checked: only now is anything written.
        if resume:
            meta["suite"] = resolved.model_dump(mode="json")
            store.write_meta(run_dir, meta)
        else:
            store.create_run(run_dir, resolved.model_dump(mode="json"), source, run_id=run_id, overwrite=overwrite)
    except BaseException:
        executor.close()  # a refused run leaves no workers or cluster connection behind
        raise
    return runner.execute(run_dir, executor, progress)


def _suite(suite: Suite | str | Path, overrides: dict[str, Any], source: str) -> tuple[Suite, str]:
    """(the suite with `overrides` applied, where it came from)."""
    if isinstance(suite, Suite):
        if not overrides:
            return suite, source or "python"
        return validate_suite(suite.model_dump(mode="json", exclude_unset=True), source or suite.name, overrides), \
            source or "python"
    resolved, path = load_suite(str(suite), overrides)
    return resolved, str(path)


def _resumed_suite(run_dir: Path, suite: Suite | str | Path | None, overrides: dict[str, Any]) -> tuple[Suite, dict]:
    """The run's stored suite with the (RESUMABLE) overrides, and its run.json; UserError before
    anything is written when the folder's tables cannot be read."""
    meta = store.read_meta(run_dir)
    name = suite.name if isinstance(suite, Suite) else suite
    if name is not None and str(name) not in (meta["suite_name"], meta.get("source")):
        raise UserError(f"--resume {run_dir} holds suite {meta['suite_name']!r}, not {str(name)!r}; "
                        "omit the suite to resume it")
    for key in overrides:
        if key not in RESUMABLE:
            raise UserError(f"--set {key}: cannot change on --resume (the run's points and measurements are fixed); "
                            f"changeable: {', '.join(RESUMABLE)}")
    store.done_points(run_dir)  # reads every table: a damaged one is refused now, not mid-sweep
    return validate_suite(meta["suite"], str(run_dir / store.RUN_META), overrides, stored=True), meta
