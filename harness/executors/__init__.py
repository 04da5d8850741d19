"""Executors run points and hand back Outcomes: `local` (a worker process per point, default)
or `ray` (a Ray task per point, over a cluster). `make_executor` picks one from the run settings."""
from __future__ import annotations

from pathlib import Path

from harness.executors.base import Executor, Outcome
from harness.suite import Measure, RunSettings

__all__ = ["Executor", "Outcome", "make_executor"]


def make_executor(run: RunSettings, measure: Measure, log_dir: Path | None = None) -> Executor:
    if run.executor == "ray":
        from harness.executors.ray_executor import RayExecutor

        return RayExecutor(run, measure)
    from harness.executors.local import InProcessExecutor, LocalExecutor

    cls = InProcessExecutor if run.isolation == "none" else LocalExecutor
    return cls(run, measure, log_dir)
