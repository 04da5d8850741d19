"""`lalm-bench run SUITE`: run a suite's points into a run folder, or `--resume` one."""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

NAME = "run"
HELP = "run a benchmark suite (a name from suites/ or a TOML path); failed points become rows"

# Settings a resumed run may change: how points are run, never what is measured.
RESUMABLE = ("run.timeout_s", "run.memory_limit_mb", "run.executor", "run.address", "run.cpus_per_point",
             "run.isolation")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite", nargs="?", help="suite name (see `lalm-bench list`) or path to a .toml file")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="same as --set run.device=...")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a suite field, e.g. --set grid.batch_size=[1,2] (repeatable)")
    parser.add_argument("--out", type=Path, help="run folder to create (default: results/<run id>)")
    parser.add_argument("--overwrite", action="store_true", help="start again in an --out folder that holds a run")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR", help="finish a run: only points without rows run")
    parser.add_argument("--executor", choices=("local", "ray"), help="same as --set run.executor=...")
    parser.add_argument("--address", help="Ray cluster address (with --executor ray); default: a local cluster")
    parser.add_argument("--profile", action="store_true",
                        help="also profile each point (same as --set measure.profile=true); files under artifacts/")
    parser.add_argument("--quiet", action="store_true", help="no progress display, only the summary")


def _flag_overrides(args: argparse.Namespace) -> list[str]:
    flags = [("run.device", args.device), ("run.executor", args.executor), ("run.address", args.address)]
    profile = ["measure.profile=true"] if args.profile else []
    return list(args.overrides) + [f'{key}="{value}"' for key, value in flags if value is not None] + profile


def _resume_suite(run_dir: Path, suite_ref: str | None, overrides: list[str]):
    from harness import store
    from harness.errors import UserError
    from harness.suite import parse_overrides, validate_suite

    meta = store.read_meta(run_dir)
    if suite_ref is not None and suite_ref not in (meta["suite_name"], meta.get("source")):
        raise UserError(f"--resume {run_dir} holds suite {meta['suite_name']!r}, not {suite_ref!r}; omit SUITE to resume it")
    parsed = parse_overrides(overrides)
    for key in parsed:
        if key not in RESUMABLE:
            raise UserError(f"--set {key}: cannot change on --resume (the run's points and measurements are fixed); "
                            f"changeable: {', '.join(RESUMABLE)}")
    suite = validate_suite(meta["suite"], f"{run_dir / store.RUN_META}", parsed, stored=True)
    return suite, meta


def run(args: argparse.Namespace) -> int:
    from harness import runner, store
    from harness.errors import UserError
    from harness.executors import make_executor
    from harness.executors.base import load_workload
    from harness.suite import expand, load_suite

    overrides = _flag_overrides(args)
    if args.resume is None and args.suite is None:
        raise UserError("give a SUITE to run or --resume RUN_DIR")
    if args.resume is not None and (args.out is not None or args.overwrite):
        raise UserError("--resume continues the run in its own folder; drop --out/--overwrite")
    if args.resume is not None:
        suite, meta = _resume_suite(args.resume, args.suite, overrides)
        source, run_dir, run_id = meta.get("source", ""), args.resume, meta["run_id"]
    else:
        suite, path = load_suite(args.suite, overrides)
        source, run_id = str(path), runner.new_run_id(suite.name)
        run_dir = args.out or Path("results") / run_id
        runner.check_new_run_dir(run_dir, args.overwrite)
    executor = make_executor(suite.run, suite.measure, run_dir / store.LOGS)
    suite = suite.with_device(executor.resolve_device(suite.run.device))
    if not expand(suite):
        raise UserError(f"{source}: the grid selects no points (every combination is excluded)")
    load_workload(suite.run.workload)

    # Everything is checked: only now is anything written.
    if args.resume is not None:
        meta["suite"] = suite.model_dump(mode="json")
        store.write_meta(run_dir, meta)
    else:
        runner.create_run(run_dir, run_id, suite, source, overwrite=args.overwrite)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with ProgressDisplay(enabled=not args.quiet) as progress:
            result = runner.execute(run_dir, executor, progress)
    except KeyboardInterrupt:
        print(f"lalm-bench run: interrupted; finished points are saved. Resume with: "
              f"lalm-bench run --resume {run_dir}", file=sys.stderr)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    _print_summary(result)
    return 0


def _interrupt(signum, frame) -> None:
    """SIGTERM (e.g. a job scheduler's) stops the sweep like Ctrl-C: parts compacted, state saved."""
    raise KeyboardInterrupt


class ProgressDisplay:
    """A rich progress bar with ETA on a terminal; one line per finished point otherwise (CI logs)."""

    def __init__(self, enabled: bool = True):
        from rich.console import Console

        self._console = Console(stderr=True)
        self._enabled = enabled
        self._live = enabled and self._console.is_terminal
        self._bar = None
        self._task = None
        self._total = 0
        self._count = 0

    def __enter__(self) -> ProgressDisplay:
        if self._live:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                 console=self._console)
            self._bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def begin(self, total: int, done: int) -> None:
        self._total, self._count = total, done
        if done:
            self._console.print(f"resuming: {done} of {total} points already done")
        if self._bar is not None:
            # ETA counts only this session's points, so earlier sessions do not skew it.
            self._task = self._bar.add_task("starting", total=total - done)

    def point_started(self, point) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=point.label)

    def point_finished(self, point, status: str, seconds: float, error: str) -> None:
        self._count += 1
        mark = "[green]ok[/]" if status == "ok" else f"[red]{status}[/]"
        detail = f" - {error[:160]}" if status != "ok" and error else ""
        if self._bar is not None:
            self._bar.advance(self._task)
            if status != "ok":
                self._bar.console.print(f"{mark} {point.label}{detail}", highlight=False)
        elif self._enabled:
            self._console.print(f"[{self._count}/{self._total}] {mark} {point.label} ({seconds:.1f} s){detail}",
                                highlight=False, soft_wrap=True)


def _print_summary(result) -> None:
    from harness.commands.show import console, summary_table
    from harness.store import load_run

    out = console()
    out.print(summary_table(load_run(result.run_dir).results))
    counts = ", ".join(f"{n} {status}" for status, n in sorted(result.statuses.items()))
    out.print(f"{result.total} points ({counts}); this session ran {result.ran}. "
                  f"Results: {result.run_dir / 'results.parquet'}", highlight=False, soft_wrap=True)
