"""GPU energy per call from NVML's cumulative energy counter.

`nvmlDeviceGetTotalEnergyConsumption` (millijoules since driver load, Volta and newer) advances
only every few tens of milliseconds, so a single short call often reads 0. The workload is
therefore repeated until the window is at least `min_window_s` long and the energy is divided by
the number of calls; the window starts right after a counter update, which removes the start's
rounding, leaving at most one update period of uncertainty at the end. The counter covers the
whole device: idle power and any other process's work are included.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import torch

from harness.measure.measurement import Measurement
from harness.measure.nvml import nvml_handle, nvml_module
from harness.measure.timing import synchronizer


class EnergyCounter(Protocol):
    """A monotonic device energy counter."""

    source: str

    def read_mj(self) -> int: ...


class NvmlEnergyCounter:
    source = "nvml.total_energy"

    def __init__(self, handle: object):
        self._handle = handle
        self._pynvml = nvml_module()

    def read_mj(self) -> int:
        return self._pynvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)


# The smallest energy the counter resolves, by (source, metric): (J, why). NVML counts whole
# millijoules; a window's energy is uncertain by up to one counter update period's worth besides.
RESOLUTIONS: dict[tuple[str, str], tuple[float, str]] = {
    (NvmlEnergyCounter.source, "energy_j"): (1e-3, "NVML's energy counter counts whole millijoules"),
}


def energy_counter(device: str | torch.device) -> tuple[NvmlEnergyCounter | None, str]:
    """(counter, "") for a CUDA device whose energy counter reads, else (None, reason)."""
    handle, reason = nvml_handle(device)
    if handle is None:
        return None, reason
    pynvml = nvml_module()
    counter = NvmlEnergyCounter(handle)
    try:
        counter.read_mj()
    except pynvml.NVMLError_NotSupported:
        return None, "counter not supported (nvmlDeviceGetTotalEnergyConsumption needs Volta or newer)"
    except pynvml.NVMLError as exc:
        return None, f"energy counter read failed: {exc}"
    return counter, ""


def _wait_for_tick(counter: EnergyCounter, timeout_s: float, now: Callable[[], float]) -> int:
    """Poll until the counter changes (or `timeout_s` passes) and return its new value."""
    first = counter.read_mj()
    deadline = now() + timeout_s
    value = first
    while value == first and now() < deadline:
        time.sleep(0.001)
        value = counter.read_mj()
    return value


def measure_energy(
    fn: Callable[[], object],
    counter: EnergyCounter,
    sync: Callable[[], None] = lambda: None,
    min_window_s: float = 1.0,
    max_calls: int = 100_000,
    tick_timeout_s: float = 0.5,
    now: Callable[[], float] = time.perf_counter,
) -> Measurement:
    """Joules per call of `fn` (metric energy_j), from a window of repeated calls.

    Calls `fn` (synchronised after each, as when timing) until `min_window_s` has passed or
    `max_calls` were made. Call it after warm-up: the window should hold steady-state calls only.
    """
    sync()
    start_mj = _wait_for_tick(counter, tick_timeout_s, now)
    started = now()
    calls = 0
    while calls == 0 or (now() - started < min_window_s and calls < max_calls):
        fn()
        sync()
        calls += 1
    end_mj = counter.read_mj()
    window_s = now() - started
    if end_mj <= start_mj:
        return Measurement.nan("energy_j", "J", f"energy counter did not advance over {window_s:.3g} s",
                               source=counter.source)
    note = (f"{calls} calls in a {window_s:.3g} s window; whole-device counter (idle power and other "
            "processes included), uncertain by one counter update at the window's end")
    return Measurement("energy_j", (end_mj - start_mj) / 1000 / calls, "J", n=calls, source=counter.source,
                       note=note)


def device_energy(fn: Callable[[], object], device: str | torch.device, min_window_s: float = 1.0) -> Measurement:
    """`measure_energy` on `device`'s NVML counter, or NaN with the reason there is none."""
    counter, reason = energy_counter(device)
    if counter is None:
        return Measurement.nan("energy_j", "J", reason, source="nvml.total_energy")
    return measure_energy(fn, counter, synchronizer(device), min_window_s)


def _per(energy: Measurement, count: float, metric: str, unit: str, what: str) -> Measurement:
    if not energy.measured:
        return Measurement.nan(metric, unit, energy.note, source=energy.source, status=energy.status)
    if not count > 0:
        return Measurement.nan(metric, unit, f"no {what} to divide by ({count})", source=energy.source)
    return Measurement(metric, energy.value / count, unit, n=energy.n, source=energy.source,
                       note=f"{energy.metric} / {count:g} {what}; {energy.note}")


def joules_per_token(energy: Measurement, tokens: float) -> Measurement:
    """energy_j of a call that handled `tokens` tokens (all sequences of the batch) -> J per token."""
    return _per(energy, tokens, "energy_j_per_token", "J/token", "tokens")


def joules_per_audio_second(energy: Measurement, audio_seconds: float) -> Measurement:
    """energy_j of a call that handled `audio_seconds` of audio (whole batch) -> J per audio second."""
    return _per(energy, audio_seconds, "energy_j_per_audio_s", "J/s", "audio seconds")
