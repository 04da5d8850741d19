"""Executors on this machine: one point at a time, in a worker process of its own (default) or,
for debuggers and profilers, in the driver itself.

One at a time on purpose: two benchmarks sharing a CPU or GPU would time each other.
"""
from __future__ import annotations

from collections import deque
from pathlib import Path

from harness.executors.base import Executor, Outcome
from harness.executors.isolated import preload, run_isolated, run_point
from harness.points import Point
from harness.suite import Measure, RunSettings


class _OneAtATime(Executor):
    slots = 1

    def __init__(self, run: RunSettings, measure: Measure, log_dir: Path | None = None):
        self._run = run
        self._measure = measure
        self._log_dir = log_dir
        self._queue: deque[Point] = deque()

    def cuda_available(self) -> bool:
        import torch

        return torch.cuda.is_available()

    def submit(self, point: Point) -> None:
        self._queue.append(point)


class LocalExecutor(_OneAtATime):
    """A fresh worker process per point (run.isolation = "process"): crashes, OOMs and hangs
    become statuses, with the per-point timeout and memory cap enforced."""

    def __init__(self, run: RunSettings, measure: Measure, log_dir: Path | None = None):
        super().__init__(run, measure, log_dir)
        preload(run.workload)

    def next_outcome(self) -> Outcome:
        point = self._queue.popleft()
        log_path = None
        if self._log_dir is not None:
            self._log_dir.mkdir(parents=True, exist_ok=True)
            log_path = self._log_dir / f"{point.id}.log"
        return run_isolated(point, self._measure, self._run.workload, self._run.timeout_s,
                            self._run.memory_limit_mb, threads=self._run.threads, log_path=log_path)

    def close(self) -> None:
        if self._log_dir is not None and self._log_dir.is_dir() and not any(self._log_dir.iterdir()):
            self._log_dir.rmdir()  # only the logs of points that printed something are kept


class InProcessExecutor(_OneAtATime):
    """Points run in the driver (run.isolation = "none"). Exceptions still become statuses and
    the memory cap applies, but a crash ends the sweep and the timeout is not enforced."""

    def next_outcome(self) -> Outcome:
        return run_point(self._queue.popleft(), self._measure, self._run.workload, self._run.memory_limit_mb,
                         self._run.threads)
