"""Energy: repeated calls fill a window; no NVML / no CUDA / a stuck counter give NaN with a reason."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from harness.measure.energy import (device_energy, energy_counter, joules_per_audio_second, joules_per_token,
                                    measure_energy)
from harness.measure.measurement import Measurement


class FakeCounter:
    source = "fake.energy"

    def __init__(self):
        self.mj = 1_000_000

    def read_mj(self):
        return self.mj


def fake_now(step: float):
    ticks = itertools.count()
    return lambda: next(ticks) * step


def test_energy_per_call_is_window_energy_over_repeats():
    counter = FakeCounter()

    def workload():  # 10 mJ per call
        counter.mj += 10

    m = measure_energy(workload, counter, min_window_s=1.0, tick_timeout_s=0.0, now=fake_now(0.25))
    assert m.metric == "energy_j" and m.unit == "J" and m.source == "fake.energy"
    assert m.n > 1
    assert m.value == pytest.approx(0.010)


def test_a_counter_that_does_not_advance_is_nan_not_zero():
    m = measure_energy(lambda: None, FakeCounter(), min_window_s=0.5, tick_timeout_s=0.0, now=fake_now(0.1))
    assert math.isnan(m.value) and "did not advance" in m.note


def test_max_calls_bounds_the_window():
    counter = FakeCounter()
    calls = itertools.count(1)

    def workload():
        next(calls)
        counter.mj += 1

    m = measure_energy(workload, counter, min_window_s=1e9, max_calls=7, tick_timeout_s=0.0, now=fake_now(0.0))
    assert m.n == 7 and next(calls) == 8


def test_no_cuda_device_gives_nan_with_reason():
    m = device_energy(lambda: None, "cpu")
    assert math.isnan(m.value) and m.note == "no CUDA device"
    assert energy_counter("cpu") == (None, "no CUDA device")


def test_per_token_and_per_audio_second():
    energy = Measurement("energy_j", 2.0, "J", n=5, source="fake", note="window")
    per_token = joules_per_token(energy, 8)
    assert (per_token.metric, per_token.unit, per_token.value) == ("energy_j_per_token", "J/token", 0.25)
    per_audio = joules_per_audio_second(energy, 10.0)
    assert (per_audio.metric, per_audio.unit, per_audio.value) == ("energy_j_per_audio_s", "J/s", 0.2)


def test_per_unit_helpers_propagate_nan_and_refuse_zero_counts():
    missing = Measurement.nan("energy_j", "J", "no NVML: library not found")
    assert joules_per_token(missing, 8).note == "no NVML: library not found"
    assert math.isnan(joules_per_token(missing, 8).value)
    zero = joules_per_token(Measurement("energy_j", 1.0, "J"), 0)
    assert math.isnan(zero.value) and "no tokens" in zero.note


@pytest.mark.gpu
def test_cuda_workload_uses_energy():
    a = torch.randn(2048, 2048, device="cuda")
    m = device_energy(lambda: a @ a, "cuda", min_window_s=1.0)
    assert (m.value > 0) or (math.isnan(m.value) and m.note)
