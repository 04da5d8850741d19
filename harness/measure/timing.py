"""Latency of a callable: warm-up, then adaptive repeats until the spread is small enough.

In the spirit of `torch.utils.benchmark.Timer.adaptive_autorange`, but every call is its own
sample (phases here take milliseconds to seconds, so per-call clock overhead is negligible —
`Timer.overhead_ms` measures it) and the raw samples are kept.

Clocks: on CUDA, a pair of CUDA events on the current stream after a device synchronisation (the
events time the GPU timeline from the start marker to the end marker, so they include host launch
gaps inside the call); elsewhere `time.perf_counter_ns` with the device synchronised before and
after, so asynchronous work is never left out of the window.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Protocol

import numpy as np
import torch

from harness.errors import UserError
from harness.measure.measurement import Measurement

OVERHEAD_RUNS = 50  # empty-callable timings behind `Timer.overhead_ms`


@dataclass(frozen=True)
class TimerSettings:
    """How long to warm up and when to stop repeating.

    warmup / warmup_seconds: untimed runs first — at least `warmup` runs AND at least
    `warmup_seconds` of them (compilation, allocator growth, cuDNN autotuning happen here).
    min_runs / max_runs: bounds on timed runs; min_runs wins over max_seconds, since a median of
    too few samples says nothing about spread.
    max_seconds: stop repeating once timed runs have taken this long (after min_runs).
    target_rel_spread: stop once IQR / median is at most this (after min_runs).
    """

    warmup: int = 3
    warmup_seconds: float = 0.0
    min_runs: int = 10
    max_runs: int = 1000
    max_seconds: float = 10.0
    target_rel_spread: float = 0.02

    def __post_init__(self) -> None:
        lower = {"warmup": 0, "warmup_seconds": 0.0, "min_runs": 1, "max_seconds": 0.0, "target_rel_spread": 0.0}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in lower and not value >= lower[f.name]:
                raise UserError(f"timer setting {f.name}={value!r} must be >= {lower[f.name]}")
        if self.max_runs < self.min_runs:
            raise UserError(f"timer setting max_runs={self.max_runs} must be >= min_runs={self.min_runs}")


class Clock(Protocol):
    """Times one call of a callable in milliseconds; `source` names the clock in results."""

    source: str

    def time_ms(self, fn: Callable[[], object]) -> float: ...


def _no_sync() -> None:
    return None


def synchronizer(device: str | torch.device) -> Callable[[], None]:
    """A function that waits for all queued work on `device` (a no-op on the CPU)."""
    device = torch.device(device)
    sync = getattr(getattr(torch, device.type, None), "synchronize", None)
    if sync is None:
        return _no_sync
    if device.type == "cuda":
        return lambda: sync(device)
    return sync


class PerfCounterClock:
    """Host wall clock (`perf_counter_ns`), with the device synchronised before and after."""

    source = "perf_counter"

    def __init__(self, sync: Callable[[], None] = _no_sync):
        self._sync = sync

    def time_ms(self, fn: Callable[[], object]) -> float:
        self._sync()
        start = time.perf_counter_ns()
        fn()
        self._sync()
        return (time.perf_counter_ns() - start) / 1e6


class CudaEventClock:
    """CUDA events recorded on the current stream around the call, after a device synchronisation."""

    source = "cuda_event"

    def __init__(self, device: str | torch.device):
        self._device = torch.device(device)
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def time_ms(self, fn: Callable[[], object]) -> float:
        stream = torch.cuda.current_stream(self._device)
        torch.cuda.synchronize(self._device)
        self._start.record(stream)
        fn()
        self._end.record(stream)
        self._end.synchronize()
        return self._start.elapsed_time(self._end)


# The smallest latency each clock resolves, by (source, metric): (ms, why). perf_counter's is the
# platform's (1 ns on Linux); CUDA documents event timing "with a resolution of around 0.5
# microseconds" (cudaEventElapsedTime).
RESOLUTIONS: dict[tuple[str, str], tuple[float, str]] = {
    (PerfCounterClock.source, "latency_ms"): (time.get_clock_info("perf_counter").resolution * 1e3,
                                              "time.perf_counter's resolution on this platform"),
    (CudaEventClock.source, "latency_ms"): (0.5e-3, "CUDA event timing resolution (cudaEventElapsedTime)"),
}


def clock_for(device: str | torch.device) -> Clock:
    """CUDA events on CUDA devices, the synchronised host clock elsewhere."""
    device = torch.device(device)
    if device.type == "cuda":
        return CudaEventClock(device)
    return PerfCounterClock(synchronizer(device))


@dataclass(frozen=True)
class Timing:
    """Timed samples of one callable and how the run ended. Percentiles interpolate linearly."""

    samples_ms: tuple[float, ...]
    warmup_runs: int
    stop_reason: str
    overhead_ms: float
    source: str

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.samples_ms, q)) if self.samples_ms else math.nan

    @property
    def median(self) -> float:
        return self.percentile(50)

    @property
    def iqr(self) -> float:
        return self.percentile(75) - self.percentile(25)

    @property
    def rel_iqr(self) -> float:
        return relative_iqr(self.samples_ms)

    def to_measurement(self, metric: str = "latency_ms") -> Measurement:
        """Median in ms with p10/p90 as lo/hi; the note carries IQR, stop reason and overhead."""
        note = (
            f"IQR {self.iqr:.4g} ms ({self.rel_iqr:.1%} of median); stopped: {self.stop_reason}; "
            f"{self.warmup_runs} warm-up runs; timer overhead {self.overhead_ms:.3g} ms per sample"
        )
        return Measurement(metric, self.median, "ms", lo=self.percentile(10), hi=self.percentile(90),
                           n=len(self.samples_ms), source=self.source, note=note, samples=self.samples_ms)


def relative_iqr(samples: tuple[float, ...] | list[float]) -> float:
    """(p75 - p25) / median; 0 for identical samples, inf when the median is 0 but the spread is not."""
    if not len(samples):
        return math.inf
    q1, median, q3 = np.percentile(samples, [25, 50, 75])
    spread = float(q3 - q1)
    if median <= 0:
        return 0.0 if spread == 0 else math.inf
    return spread / float(median)


def _empty() -> None:
    return None


class Timer:
    """Times callables on one device with one clock.

    `now` is the wall clock for the warm-up and time budgets (injectable for tests).
    """

    def __init__(
        self,
        settings: TimerSettings = TimerSettings(),
        device: str | torch.device = "cpu",
        clock: Clock | None = None,
        now: Callable[[], float] = time.perf_counter,
    ):
        self.settings = settings
        self.clock = clock or clock_for(device)
        self._now = now
        self._overhead_ms: float | None = None

    def overhead_ms(self) -> float:
        """Median time this clock reports for an empty callable: the floor inside every sample."""
        if self._overhead_ms is None:
            self._overhead_ms = float(np.median([self.clock.time_ms(_empty) for _ in range(OVERHEAD_RUNS)]))
        return self._overhead_ms

    def measure(self, fn: Callable[[], object], setup: Callable[[], object] | None = None) -> Timing:
        """Warm up, then time `fn` until the spread target, max_runs or max_seconds stops it.

        setup: run before every call (warm-up and timed) outside the timed window, e.g. to restore
        state that `fn` mutates. Exceptions from `fn` or `setup` propagate.
        """
        s = self.settings
        warmup_runs, started = 0, self._now()
        while warmup_runs < s.warmup or self._now() - started < s.warmup_seconds:
            if setup is not None:
                setup()
            self.clock.time_ms(fn)
            warmup_runs += 1
        samples: list[float] = []
        started = self._now()
        reason = ""
        while not reason:
            if setup is not None:
                setup()
            samples.append(self.clock.time_ms(fn))
            reason = self._stop_reason(samples, self._now() - started)
        return Timing(tuple(samples), warmup_runs, reason, self.overhead_ms(), self.clock.source)

    def _stop_reason(self, samples: list[float], elapsed_s: float) -> str:
        s = self.settings
        if len(samples) >= s.max_runs:
            return f"max_runs={s.max_runs}"
        if len(samples) < s.min_runs:
            return ""
        if relative_iqr(samples) <= s.target_rel_spread:
            return f"relative IQR <= {s.target_rel_spread:g}"
        if elapsed_s >= s.max_seconds:
            return f"max_seconds={s.max_seconds:g}"
        return ""
