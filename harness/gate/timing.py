"""Interleaved timing: kernel samples alternate with calibration samples (C K C K ... C).

Drift in machine speed (a neighbour starting work, clock changes) then hits each kernel
sample and the calibration samples on both sides of it alike, and dividing by them cancels
it. The kernel order is shuffled every round (seeded) so no kernel always follows the same
neighbour's cache footprint. Each sample times a batch of calls sized to last at least
`target_s`, so timer resolution and per-call overheads do not dominate short kernels.

On the CPU the clock is the process's CPU time, not wall time: on a shared machine with more
runnable processes than cores, the scheduler takes the core away for milliseconds at a time,
which wall time counts and CPU time does not (measured on a 2-core box under load 4-7: the
session medians of wall time spread 2x, those of CPU time 5-10%). A kernel regression is
more work, which CPU time sees. Process time (not thread time) so that work on other
threads (numba's, torch's intra-op pool when `threads` > 1) is counted. On CUDA the clock is
wall time around a synchronised batch.
"""
from __future__ import annotations

import gc
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from harness.gate.calibration import CALIBRATIONS
from harness.gate.kernels import KernelFn, synchronize

WARMUP_S = 0.05  # per kernel, before its batch size is chosen: first-call allocations, lazy init


@dataclass(frozen=True)
class KernelSamples:
    """One kernel's samples from one session.

    raw_s: per-call seconds of each sample (n,); unit_s: calibration unit measured around
    each sample (n,); inner: calls per sample.
    """

    raw_s: np.ndarray
    unit_s: np.ndarray
    inner: int

    @property
    def normalised(self) -> np.ndarray:
        """Kernel time in calibration units (n,): the machine-independent figure compared."""
        return self.raw_s / self.unit_s


@dataclass(frozen=True)
class Session:
    """Everything one interleaved measurement produced: per-kernel samples and calibration."""

    kernels: dict[str, KernelSamples]
    calibration_s: dict[str, np.ndarray]  # name -> per-call seconds, (rounds * kernels + 1,)
    duration_s: float


@contextmanager
def _quiet_process(threads: int) -> Iterator[None]:
    """Fixed thread counts (torch and, if loaded, numba) and no garbage collection while timing.

    One thread by default: a multi-threaded kernel on a 2-core box with a busy neighbour
    waits for its slowest thread, and the spin-waiting of the others is CPU time too.
    Everything is restored afterwards.
    """
    numba = sys.modules.get("numba")
    previous = torch.get_num_threads(), numba.get_num_threads() if numba else 0
    gc_was_enabled = gc.isenabled()
    torch.set_num_threads(threads)
    if numba:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if gc_was_enabled:
            gc.enable()
        torch.set_num_threads(previous[0])
        if numba:
            numba.set_num_threads(previous[1])


Clock = Callable[[], float]


def clock_for(device: torch.device) -> Clock:
    """The timer that measures a kernel's own cost on `device` (see the module docstring)."""
    return time.perf_counter if device.type == "cuda" else time.process_time


def _time_batch(fn: KernelFn, inner: int, device: torch.device, clock: Clock) -> float:
    """Seconds per call of `inner` back-to-back calls of `fn`, after one untimed call.

    The untimed call brings the kernel's working set back into cache: the calibration copy
    just before it streams 64 MiB through the caches, and timing a cold first call would
    measure the memory system instead of the kernel.
    """
    fn()
    synchronize(device)
    start = clock()
    for _ in range(inner):
        fn()
    synchronize(device)
    return (clock() - start) / inner


def _batch_size(fn: KernelFn, target_s: float, device: torch.device, clock: Clock) -> int:
    """Warm `fn` up, then the number of calls that makes one sample last about `target_s`."""
    start = clock()
    calls = 0
    while calls < 3 or clock() - start < WARMUP_S:
        per_call = _time_batch(fn, 1, device, clock)
        calls += 2
    return max(1, math.ceil(target_s / per_call))


def calibration_unit(matmul_s: np.ndarray, copy_s: np.ndarray) -> np.ndarray:
    """The unit for the kernel sample between calibration samples i and i+1, (n,) from (n+1,).

    The geometric mean of the matmul and copy times on both sides of each kernel sample.
    """
    per_slot = np.log(matmul_s) + np.log(copy_s)
    return np.exp((per_slot[:-1] + per_slot[1:]) / 4.0)


def measure(
    kernels: dict[str, KernelFn],
    device: torch.device,
    *,
    rounds: int,
    target_s: float,
    threads: int,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Session:
    """Time every kernel `rounds` times, each sample between two calibration samples.

    `progress(done_rounds, rounds)` is called after each round.
    """
    names = list(kernels)
    calibrations = {name: setup(device) for name, setup in CALIBRATIONS.items()}
    rng = np.random.default_rng(seed)
    clock = clock_for(device)
    started = time.perf_counter()
    with _quiet_process(threads):
        inner = {name: _batch_size(fn, target_s, device, clock) for name, fn in {**kernels, **calibrations}.items()}

        calib: dict[str, list[float]] = {name: [] for name in calibrations}
        raw: dict[str, list[float]] = {name: [] for name in names}
        slot_of: dict[str, list[int]] = {name: [] for name in names}  # calibration slot before each sample

        def calibrate() -> None:
            for name, fn in calibrations.items():
                calib[name].append(_time_batch(fn, inner[name], device, clock))

        for done in range(rounds):
            for index in rng.permutation(len(names)):
                name = names[index]
                calibrate()
                slot_of[name].append(len(calib["matmul"]) - 1)
                raw[name].append(_time_batch(kernels[name], inner[name], device, clock))
            if progress is not None:
                progress(done + 1, rounds)
        calibrate()

    calibration_s = {name: np.asarray(times) for name, times in calib.items()}
    units = calibration_unit(calibration_s["matmul"], calibration_s["copy"])
    samples = {
        name: KernelSamples(raw_s=np.asarray(raw[name]), unit_s=units[slot_of[name]], inner=inner[name])
        for name in names
    }
    return Session(kernels=samples, calibration_s=calibration_s, duration_s=time.perf_counter() - started)
