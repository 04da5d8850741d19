"""Interleaved timing: kernel samples alternate with calibration samples (C K C K ... C).

Drift in machine speed (a neighbour starting work, clock changes) hits each kernel sample
and the calibration samples around it alike, and dividing by them cancels it. The kernel
order is shuffled every round (seeded) so no kernel always follows the same neighbour's
cache footprint. A sample is one untimed call (to bring the kernel's working set back into
cache after the calibration copy streamed through it) and then a batch of calls sized to
last about `target_s`.

Two defences against a shared, oversubscribed machine, both measured on a 2-core box at
load 5-9 (see docs/PERF.md, "Kernel gate"):
- the clock is the process's CPU time, not wall time: time spent descheduled is not the
  kernel's (session medians of wall time spread 2x there, those of CPU time 5-10%);
- a sample during which the thread was preempted (an involuntary context switch, from
  getrusage) is marked unclean: its CPU time includes refilling the caches that another
  process evicted, which inflated small-op kernels (decode steps, tiny forwards) by up to
  50% and dense ones by 10%. Samples are short (1 ms) so that many run between preemptions,
  and rounds go on until every kernel has `clean_samples` clean ones or `budget_s` is spent.
On CUDA the clock is wall time around a synchronised batch, and every sample counts as clean.
"""
from __future__ import annotations

import gc
import math
import resource
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from harness.gate.calibration import CALIBRATIONS
from harness.gate.kernels import KernelFn, synchronize

WARMUP_S = 0.05  # per kernel before its batch size is chosen: first-call allocations, lazy init
UNIT_WINDOW = 3  # calibration slots on each side of a kernel sample that form its unit
# RUSAGE_THREAD is Linux-only; elsewhere the whole process's switches are a stricter proxy.
_RUSAGE_WHO = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)

Clock = Callable[[], float]


@dataclass(frozen=True)
class KernelSamples:
    """One kernel's samples from one session, in time order.

    raw_s: per-call seconds of each sample (n,); unit_s: calibration unit around each sample
    (n,); clean: whether the sample ran without preemption (n,); inner: calls per sample;
    copy_weight: the copy's weight in `unit_s`.
    """

    raw_s: np.ndarray
    unit_s: np.ndarray
    clean: np.ndarray
    inner: int
    copy_weight: float

    @property
    def normalised(self) -> np.ndarray:
        """Kernel time in calibration units (n,): the machine-independent figure compared."""
        return self.raw_s / self.unit_s


@dataclass(frozen=True)
class Session:
    """Everything one interleaved measurement produced: per-kernel samples and calibration."""

    kernels: dict[str, KernelSamples]
    calibration_s: dict[str, np.ndarray]  # name -> per-call seconds of every calibration sample
    rounds: int
    duration_s: float


def clock_for(device: torch.device) -> Clock:
    """The timer that measures a kernel's own cost on `device` (see the module docstring)."""
    return time.perf_counter if device.type == "cuda" else time.process_time


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


def _preemptions() -> int:
    return resource.getrusage(_RUSAGE_WHO).ru_nivcsw


def time_batch(fn: KernelFn, inner: int, device: torch.device, clock: Clock) -> tuple[float, bool]:
    """(seconds per call, clean) of `inner` back-to-back calls of `fn` after one untimed call.

    clean: no involuntary context switch happened while the batch was timed (always True on
    CUDA, where the host thread only waits).
    """
    fn()
    synchronize(device)
    switches = _preemptions()
    start = clock()
    for _ in range(inner):
        fn()
    synchronize(device)
    seconds = (clock() - start) / inner
    return seconds, device.type == "cuda" or _preemptions() == switches


def _batch_size(fn: KernelFn, target_s: float, device: torch.device, clock: Clock) -> int:
    """Warm `fn` up, then the number of calls that makes one sample last about `target_s`."""
    start = clock()
    per_call = []
    while len(per_call) < 3 or clock() - start < WARMUP_S:
        per_call.append(time_batch(fn, 1, device, clock)[0])
    # The fastest recent call: preemptions during warm-up only ever make calls look slower.
    return max(1, math.ceil(target_s / min(per_call[-3:])))


def calibration_unit(
    matmul_s: np.ndarray, copy_s: np.ndarray, clean: np.ndarray, slots: np.ndarray, copy_weight: float
) -> np.ndarray:
    """The calibration unit for kernel samples taken right after calibration `slots`, (k,).

    matmul_s, copy_s, clean: per calibration slot (m,). The unit is matmul^(1-w) * copy^w
    (w = `copy_weight`, the kernel's own: `Kernel.copy_weight`), the median over the clean
    slots within UNIT_WINDOW of the sample (all clean slots of the session when none is that
    close; all slots when none is clean). A median of neighbours tracks drift without
    inheriting one slot's noise.
    """
    usable = clean if clean.any() else np.ones_like(clean)
    log_unit = (1.0 - copy_weight) * np.log(matmul_s) + copy_weight * np.log(copy_s)
    index = np.arange(len(log_unit))
    units = []
    for slot in slots:
        near = usable & (np.abs(index - slot) <= UNIT_WINDOW)
        units.append(np.median(log_unit[near if near.any() else usable]))
    return np.exp(np.asarray(units))


def measure(
    kernels: dict[str, KernelFn],
    device: torch.device,
    *,
    copy_weights: dict[str, float] | None = None,
    rounds: int,
    clean_samples: int,
    budget_s: float,
    target_s: float,
    threads: int,
    seed: int = 0,
) -> Session:
    """Time every kernel, each sample right after a calibration sample.

    copy_weights: each kernel's `calibration_unit` weight (0, compute only, when not given).
    At least `rounds` rounds; more while any kernel has fewer than `clean_samples` clean
    samples, until the rounds have run `budget_s` (wall time, after the warm-up).
    """
    names = list(kernels)
    calibrations = {name: setup(device) for name, setup in CALIBRATIONS.items()}
    rng = np.random.default_rng(seed)
    clock = clock_for(device)
    started = time.perf_counter()
    with _quiet_process(threads):
        inner = {name: _batch_size(fn, target_s, device, clock) for name, fn in {**kernels, **calibrations}.items()}
        rounds_started = time.perf_counter()
        calib: dict[str, list[tuple[float, bool]]] = {name: [] for name in calibrations}
        raw: dict[str, list[tuple[float, bool]]] = {name: [] for name in names}
        slot_of: dict[str, list[int]] = {name: [] for name in names}  # calibration slot before each sample

        def short_of_clean() -> bool:
            return any(sum(clean for _, clean in raw[name]) < clean_samples for name in names)

        done = 0
        # Every round times every kernel, also when only some are short of clean samples: a
        # kernel timed among fewer others runs warmer (branch predictors, caches), and its
        # samples would no longer be comparable with the baseline's.
        while done < rounds or (short_of_clean() and time.perf_counter() - rounds_started < budget_s):
            for index in rng.permutation(len(names)):
                name = names[index]
                for cal_name, fn in calibrations.items():
                    calib[cal_name].append(time_batch(fn, inner[cal_name], device, clock))
                slot_of[name].append(len(calib["matmul"]) - 1)
                raw[name].append(time_batch(kernels[name], inner[name], device, clock))
            done += 1

    calibration_s = {name: np.array([t for t, _ in samples]) for name, samples in calib.items()}
    calibration_clean = np.logical_and.reduce([np.array([c for _, c in samples]) for samples in calib.values()])
    samples = {}
    for name in names:
        times, clean = zip(*raw[name])
        weight = (copy_weights or {}).get(name, 0.0)
        units = calibration_unit(
            calibration_s["matmul"], calibration_s["copy"], calibration_clean, np.asarray(slot_of[name]), weight
        )
        samples[name] = KernelSamples(np.array(times), units, np.array(clean), inner[name], weight)
    return Session(samples, calibration_s, done, time.perf_counter() - started)
