"""The sweep: expand a suite, run its points through an executor, make each result durable.

Guarantees, whatever happens to individual points or to the driver itself:
  - a failed point (error, oom, timeout, crash) is recorded with its status and message, and
    the sweep goes on;
  - a finished point is on disk before the next one is looked at (store.write_part);
  - a resumed run runs only the points without rows, so every point appears exactly once.
Points run smallest first (audio length, then batch size), so that when a point fails with a
status in `run.skip_larger_after`, the larger points of the same configuration are recorded as
`skipped` (with the reason) instead of being run only to fail the same way.
"""
from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pandas as pd

from harness import env, store
from harness.executors.base import Executor, Outcome, load_closed_forms
from harness.failure import describe
from harness.points import Point, identity
from harness.schema import METRIC_UNITS, SAMPLE_COLUMNS, conform, validate
from harness.suite import Suite, expand, validate_suite


class Progress(Protocol):
    """What a sweep reports as it goes (the CLI draws a progress bar from it)."""

    def begin(self, run_dir: Path, total: int, done: int) -> None: ...

    def point_started(self, point: Point) -> None: ...

    def point_finished(self, point: Point, status: str, seconds: float, error: str) -> None: ...


class _Silent:
    def begin(self, run_dir: Path, total: int, done: int) -> None:
        pass

    def point_started(self, point: Point) -> None:
        pass

    def point_finished(self, point: Point, status: str, seconds: float, error: str) -> None:
        pass


@dataclass
class SweepResult:
    run_dir: Path
    total: int  # points in the suite
    ran: int  # points run by this invocation (skipped ones included)
    statuses: Counter  # status -> points, over the whole run


def order(points: Iterable[Point]) -> list[Point]:
    """Smallest first: every point comes after the points it is at least as large as."""
    return sorted(points, key=lambda p: (p.audio_seconds, p.batch_size))


class Skipper:
    """Decides which points an earlier failure makes pointless.

    A failure at (audio_seconds, batch_size) skips every later point of the same configuration
    that is at least as long and at least as large a batch.
    """

    def __init__(self, statuses: Iterable[str]):
        self._statuses = set(statuses)
        self._failures: dict[Point, list[tuple[Point, str]]] = {}

    @staticmethod
    def _family(point: Point) -> Point:
        return dataclasses.replace(point, audio_seconds=0.0, batch_size=0)

    def observe(self, point: Point, status: str) -> None:
        if status in self._statuses:
            self._failures.setdefault(self._family(point), []).append((point, status))

    def reason(self, point: Point) -> str:
        """Why `point` should be skipped, or '' to run it."""
        for failed, status in self._failures.get(self._family(point), []):
            if point.audio_seconds >= failed.audio_seconds and point.batch_size >= failed.batch_size:
                return (f"skipped: the same configuration failed with {status} at "
                        f"{failed.audio_seconds:g} s, batch {failed.batch_size}")
        return ""


def status_rows(phases: Iterable[str], status: str, error: str) -> list[dict]:
    """Rows for a point that produced no measurements: one NaN latency row per phase."""
    return [{"phase": phase, "metric": "latency_ms", "value": math.nan, "unit": "ms", "n": 0,
             "status": status, "error": error} for phase in phases]


def _stamp(row: dict, context: dict, ident: dict) -> dict:
    """A workload row completed: the point's identity always wins; where-it-ran context fills only
    what the row left empty; optional measure columns get their neutral defaults."""
    value = row.get("value")
    measured = isinstance(value, (int, float)) and not math.isnan(value)
    defaults = {"unit": METRIC_UNITS.get(str(row.get("metric")), ""), "lo": math.nan, "hi": math.nan,
                "n": 1 if measured else 0, "status": "ok", "error": ""}
    filled = {k: v for k, v in context.items() if row.get(k) in (None, "")}
    return {**defaults, **row, **filled, **ident}


def checked_files(outcome: Outcome) -> Outcome:
    """The outcome, or an error outcome when the workload named a file outside its point's folder."""
    try:
        for name in outcome.files:
            store.artifact_path(Path(), outcome.point.id, name)
    except ValueError as err:
        return Outcome(outcome.point, "error", error=f"the workload returned a bad file: {err}",
                       context=outcome.context, seconds=outcome.seconds)
    return outcome


def closed_form_rows(point: Point, suite: Suite) -> tuple[list[dict], str]:
    """A failed point's rows that need no run, from its workload's optional `closed_form_rows`,
    and '' or why they could not be had (said on the point's status rows, never raised)."""
    rows_for = load_closed_forms(suite.run.workload)
    if rows_for is None:
        return [], ""
    try:
        return rows_for(point, suite.measure), ""
    # What a closed form of a point that failed to run can raise: the point's own input refused
    # (ValueError, InputError among them) or an operator failing on its shapes on the meta device
    # (RuntimeError, NotImplementedError among them). Anything else is a bug and stops the sweep
    # after the points before it are written.
    except (ValueError, RuntimeError) as err:
        return [], f"no closed-form rows: {describe(err)}"


def tables(outcome: Outcome, suite: Suite, run_id: str, git_sha: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """An Outcome -> (results, samples) ready for the store: identity and environment stamped,
    conformed and validated. Rows the schema rejects become one `error` row per phase."""
    point = outcome.point
    rows = outcome.rows if outcome.status == "ok" else status_rows(suite.measure.phases, outcome.status, outcome.error)
    if outcome.status not in ("ok", "skipped"):  # a failed point still gets what needs no run
        closed, missing = closed_form_rows(point, suite)
        rows = [{**row, "note": missing} for row in rows] + closed
    if outcome.status == "ok" and not rows:
        rows = status_rows(suite.measure.phases, "error", "the workload returned no rows")
    context = {**outcome.context, "git_sha": git_sha}
    ident = identity(point, suite.name, run_id)
    stamped = [_stamp(row, context, ident) for row in rows]
    try:
        results = conform(stamped)
        validate(results)
    except ValueError as err:
        bad = status_rows(suite.measure.phases, "error", f"the workload returned bad rows: {err}")
        results = conform([_stamp(row, context, ident) for row in bad])
        return results, conform([], SAMPLE_COLUMNS)
    samples = pd.DataFrame(outcome.samples if outcome.status == "ok" else [])
    if len(samples):
        samples = samples.assign(run_id=run_id, point_id=point.id)
        if "i" not in samples:
            samples["i"] = samples.groupby(["phase", "metric"]).cumcount()
        if "unit" not in samples:
            samples["unit"] = samples["metric"].map(lambda m: METRIC_UNITS.get(m, ""))
    return results, conform(samples, SAMPLE_COLUMNS)


def execute(run_dir: Path, executor: Executor, progress: Progress | None = None) -> SweepResult:
    """Run every point of the run in `run_dir` that has no rows yet; returns a summary.

    The suite comes from run.json (as resolved when the run was created), so a resumed run
    expands exactly the same points.
    """
    from harness import roofline  # torch and the models: only once a sweep runs, not for a refused command

    progress = progress or _Silent()
    lock = store.RunLock(run_dir)
    try:
        store.remove_stale_temp_files(run_dir)
        meta = store.read_meta(run_dir)
        suite = validate_suite(meta["suite"], str(run_dir / store.RUN_META), stored=True)
        run_id = meta["run_id"]
        points = order(expand(suite))
        done = store.done_points(run_dir)
        skipper = Skipper(suite.run.skip_larger_after)
        by_id = {p.id: p for p in points}
        for point_id, status in done.items():
            if point_id in by_id:
                skipper.observe(by_id[point_id], status)
        todo = [p for p in points if p.id not in done]
        session = {"started": env.now(), "executor": suite.run.executor, "env": env.capture(), "points_run": 0,
                   **roofline.session_ceilings(suite)}
        meta.setdefault("sessions", []).append(session)
        meta.setdefault("started", session["started"])
        meta["env"] = session["env"]  # the latest session's; each session keeps its own
        meta["state"] = "running"
        store.write_meta(run_dir, meta)
        git_sha = session["env"]["git_sha"]
        progress.begin(run_dir, len(points), len(points) - len(todo))
        state = "interrupted"
        try:
            for outcome in _sweep(todo, executor, skipper, progress):
                outcome = checked_files(outcome)
                results, samples = tables(outcome, suite, run_id, git_sha)
                store.write_artifacts(run_dir, outcome.point.id, outcome.files)
                # The measurement is durable before anything is derived from it: an error in the
                # derived rows stops the sweep (a bug to see) but never loses the point's rows.
                store.write_part(run_dir, outcome.point.id, results, samples)
                derived = roofline.with_roofline(results, session.get("ceilings"))
                if len(derived) != len(results):
                    store.write_part(run_dir, outcome.point.id, derived, samples)
                status = store.point_statuses(results)[outcome.point.id]
                skipper.observe(outcome.point, status)
                session["points_run"] += 1
                progress.point_finished(outcome.point, status, outcome.seconds, outcome.error)
            state = "complete"
        finally:
            executor.close()
            store.compact(run_dir)
            session["finished"] = env.now()
            meta["state"] = state
            if state == "complete":
                meta["finished"] = session["finished"]
            store.write_meta(run_dir, meta)
        statuses = Counter(s for pid, s in store.done_points(run_dir).items() if pid in by_id)
        return SweepResult(run_dir, len(points), session["points_run"], statuses)
    finally:
        lock.release()


def _sweep(todo: list[Point], executor: Executor, skipper: Skipper, progress: Progress):
    """Yield an Outcome per point, keeping at most `executor.slots` in flight and skipping
    points that an outcome seen so far makes pointless."""
    pending = list(todo)
    in_flight = 0
    while pending or in_flight:
        while pending and in_flight < executor.slots:
            point = pending.pop(0)
            reason = skipper.reason(point)
            if reason:
                yield Outcome(point, "skipped", error=reason)
                continue
            progress.point_started(point)
            executor.submit(point)
            in_flight += 1
        if in_flight:
            in_flight -= 1
            # The caller records and observes each outcome before this generator resumes, so
            # the next point handed out already sees the failure.
            yield executor.next_outcome()


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """One line per configuration (variant, size, and dtype / scan backend / mode where they vary):
    points by status and the longest audio that ran ok."""
    statuses = store.point_statuses(results)
    points = results.drop_duplicates("point_id").set_index("point_id")
    points["point_status"] = pd.Series(statuses)
    keys = ["variant", "size"] + [k for k in ("dtype", "requested_scan_backend", "mode") if points[k].nunique() > 1]
    table = pd.crosstab([points[k] for k in keys], points["point_status"])
    ok = points[points["point_status"] == "ok"]
    table["longest ok (s)"] = ok.groupby(keys)["audio_seconds"].max()
    return table.reset_index().rename(columns={"requested_scan_backend": "scan"})
