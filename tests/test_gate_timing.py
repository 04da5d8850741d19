"""Interleaved timing: calibration units, sample bookkeeping, top-up rounds (no timed assertions)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.gate import timing
from harness.gate.timing import calibration_unit, measure, time_batch

CPU = torch.device("cpu")


@pytest.mark.parametrize("weight", [0.0, 0.3, 1.0])
def test_unit_is_the_weighted_geometric_mean_of_the_calibrations(weight):
    matmul, copy = np.full(5, 1e-3), np.full(5, 16e-3)
    unit = calibration_unit(matmul, copy, np.ones(5, dtype=bool), np.arange(5), weight)
    np.testing.assert_allclose(unit, 1e-3 ** (1 - weight) * 16e-3**weight)


def test_unit_follows_a_step_in_machine_speed():
    """The machine halves its speed halfway: units on each side follow, away from the step."""
    slow = np.r_[np.ones(20), 2 * np.ones(20)] * 1e-3
    unit = calibration_unit(slow, slow, np.ones(40, dtype=bool), np.array([2, 37]), 0.3)
    np.testing.assert_allclose(unit, [1e-3, 2e-3])


def test_unit_ignores_preempted_calibration_samples():
    matmul = np.full(9, 1e-3)
    matmul[4] = 50e-3  # a preempted sample right next to the kernel sample
    clean = np.ones(9, dtype=bool)
    clean[4] = False
    unit = calibration_unit(matmul, matmul, clean, np.array([4]), 0.3)
    np.testing.assert_allclose(unit, [1e-3])


def test_unit_falls_back_to_every_slot_when_none_is_clean():
    values = np.array([1.0, 2.0, 4.0])
    unit = calibration_unit(values, values, np.zeros(3, dtype=bool), np.array([1]), 0.3)
    np.testing.assert_allclose(unit, [2.0])


def test_time_batch_runs_one_untimed_call_then_the_batch():
    calls = []
    seconds, clean = time_batch(lambda: calls.append(1), 5, CPU, timing.clock_for(CPU))
    assert len(calls) == 6
    assert seconds >= 0 and isinstance(clean, bool)


def _cheap_kernels() -> dict:
    x = torch.ones(64)
    return {"add": lambda: x + 1, "mul": lambda: x * 2}


def test_every_kernel_sample_follows_its_own_calibration_sample():
    session = measure(_cheap_kernels(), CPU, rounds=4, clean_samples=0, budget_s=0, target_s=1e-4, threads=1)
    assert session.rounds == 4
    assert set(session.kernels) == {"add", "mul"}
    for samples in session.kernels.values():
        assert len(samples.raw_s) == len(samples.unit_s) == len(samples.clean) == 4
        assert samples.inner >= 1 and (samples.normalised > 0).all()
    # One calibration sample per kernel sample: C K C K ...
    assert len(session.calibration_s["matmul"]) == len(session.calibration_s["copy"]) == 8


def test_each_kernel_is_divided_by_a_unit_with_its_own_copy_weight(monkeypatch):
    """'mul' weighs the copy fully, 'add' not at all: with a copy a hundred times slower than the
    matmul, each unit lies within the range of its own calibration's samples."""
    slow = lambda device: lambda: sum(range(20_000))  # noqa: E731
    fast = lambda device: lambda: None  # noqa: E731
    monkeypatch.setattr(timing, "CALIBRATIONS", {"matmul": fast, "copy": slow})
    session = measure(_cheap_kernels(), CPU, copy_weights={"mul": 1.0}, rounds=4, clean_samples=0, budget_s=0,
                      target_s=1e-4, threads=1)
    add, mul = session.kernels["add"], session.kernels["mul"]
    assert (add.copy_weight, mul.copy_weight) == (0.0, 1.0)
    for samples, calibration in ((add, "matmul"), (mul, "copy")):
        seconds = session.calibration_s[calibration]
        assert (seconds.min() <= samples.unit_s).all() and (samples.unit_s <= seconds.max()).all()


def test_rounds_go_on_while_a_kernel_is_short_of_clean_samples_until_the_budget(monkeypatch):
    """Every sample preempted: no kernel ever has enough clean ones, so the budget ends the session."""
    monkeypatch.setattr(timing, "_preemptions", iter(range(10**6)).__next__)
    session = measure(_cheap_kernels(), CPU, rounds=2, clean_samples=5, budget_s=0.5, target_s=1e-4, threads=1)
    assert session.rounds > 2
    assert not any(s.clean.any() for s in session.kernels.values())


def test_extra_rounds_time_every_kernel(monkeypatch):
    """"mul" is preempted in every sample, "add" never: both are timed in every round."""
    switches = [0]
    monkeypatch.setattr(timing, "_preemptions", lambda: switches[0])
    x = torch.ones(64)

    def preempted_mul() -> torch.Tensor:
        switches[0] += 1
        return x * 2

    kernels = {"add": lambda: x + 1, "mul": preempted_mul}
    session = measure(kernels, CPU, rounds=2, clean_samples=3, budget_s=0.5, target_s=1e-4, threads=1)
    add, mul = session.kernels["add"], session.kernels["mul"]
    assert session.rounds > 3
    assert add.clean.all() and not mul.clean.any()
    assert len(add.clean) == len(mul.clean) == session.rounds


def test_no_extra_rounds_once_every_kernel_has_its_clean_samples(monkeypatch):
    monkeypatch.setattr(timing, "_preemptions", lambda: 0)
    session = measure(_cheap_kernels(), CPU, rounds=2, clean_samples=4, budget_s=30, target_s=1e-4, threads=1)
    assert session.rounds == 4


def test_thread_settings_are_restored():
    before = torch.get_num_threads()
    measure(_cheap_kernels(), CPU, rounds=2, clean_samples=0, budget_s=0, target_s=1e-4, threads=1)
    assert torch.get_num_threads() == before
