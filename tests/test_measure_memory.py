"""Memory meters: a known allocation shows up as its size; fallbacks say which source they used."""
from __future__ import annotations

import math

import pytest
import torch

from harness.measure import memory
from harness.measure.memory import CpuMemoryMeter, PeakSampler, memory_meter

ALLOC_BYTES = 200 * 1000 * 1000
TOLERANCE = 4 * 2**20  # allocator rounding and interpreter noise


def allocate_and_fill() -> torch.Tensor:
    return torch.ones(ALLOC_BYTES // 4, dtype=torch.float32)


def test_known_cpu_allocation_is_measured_by_the_kernel_high_water_mark():
    with CpuMemoryMeter() as meter:
        tensor = allocate_and_fill()
        del tensor  # freed before the phase ends: only a peak meter can still see it
    (m,) = meter.measurements()
    assert m.metric == "peak_mem_bytes" and m.unit == "B"
    if m.source != "proc.VmHWM":
        pytest.skip(f"kernel high-water mark not resettable here: {m.note}")
    assert abs(m.value - ALLOC_BYTES) < TOLERANCE


def test_sampling_fallback_when_the_high_water_mark_cannot_be_reset(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "max_rss_bytes", lambda: 0)  # no new lifetime peak to rely on
    with CpuMemoryMeter(clear_refs=str(tmp_path / "missing" / "clear_refs")) as meter:
        tensor = allocate_and_fill()
    (m,) = meter.measurements()
    del tensor
    assert m.source == "psutil.rss"
    assert "cannot reset VmHWM" in m.note and "sampled" in m.note
    assert abs(m.value - ALLOC_BYTES) < TOLERANCE


def test_getrusage_is_used_when_the_phase_sets_a_new_lifetime_peak(tmp_path, monkeypatch):
    peaks = iter([1000, 10**12])  # at start, at end
    monkeypatch.setattr(memory, "max_rss_bytes", lambda: next(peaks))
    with CpuMemoryMeter(clear_refs=str(tmp_path / "missing" / "clear_refs")) as meter:
        pass
    (m,) = meter.measurements()
    assert m.source == "getrusage.ru_maxrss"
    assert m.value > 0


def test_sampler_keeps_the_maximum():
    values = iter([7, 3])
    sampler = PeakSampler(lambda: next(values, 3), interval_s=0.001).start()
    assert sampler.stop() == 7
    assert sampler.count >= 2 and not sampler.error


def test_sampler_survives_a_failing_read():
    def read():
        raise OSError("gone")

    sampler = PeakSampler(read, interval_s=0.001).start()
    assert sampler.stop() == -1
    assert "OSError: gone" in sampler.error


class ProcessWithoutRss:
    """psutil.Process stand-in whose RSS can be read once (the baseline) and then fails."""

    def __init__(self):
        self.reads = 0

    def memory_info(self):
        self.reads += 1
        if self.reads > 1:
            raise OSError("no /proc")
        return type("Info", (), {"rss": 1000})()


def test_failed_sampling_without_a_kernel_peak_is_nan_with_a_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(memory, "max_rss_bytes", lambda: 0)
    monkeypatch.setattr(memory.psutil, "Process", ProcessWithoutRss)
    with CpuMemoryMeter(clear_refs=str(tmp_path / "missing" / "clear_refs")) as meter:
        pass
    (m,) = meter.measurements()
    assert math.isnan(m.value) and "RSS sampling failed" in m.note


def test_meter_that_never_ran_reports_nan():
    (m,) = CpuMemoryMeter().measurements()
    assert math.isnan(m.value) and m.note


def test_devices_without_a_meter_get_nan_with_the_reason():
    with memory_meter("meta") as meter:
        pass
    (m,) = meter.measurements()
    assert math.isnan(m.value) and "meta" in m.note


def test_phase_exception_propagates_through_the_meter():
    with pytest.raises(ValueError):
        with CpuMemoryMeter():
            raise ValueError("phase failed")


@pytest.mark.gpu
def test_known_cuda_allocation_is_measured_by_the_allocator():
    with memory_meter("cuda") as meter:
        tensor = torch.ones(ALLOC_BYTES // 4, device="cuda")
        del tensor
    by_metric = {m.metric: m for m in meter.measurements()}
    assert abs(by_metric["peak_mem_bytes"].value - ALLOC_BYTES) < TOLERANCE
    assert by_metric["reserved_mem_bytes"].value >= ALLOC_BYTES
    device_mem = by_metric["device_mem_bytes"]
    assert device_mem.source.startswith("nvml")
    assert device_mem.value >= ALLOC_BYTES or (math.isnan(device_mem.value) and device_mem.note)
