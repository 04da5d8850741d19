"""The gate's statistics on synthetic sessions: noise alone never trips it, a 25% slowdown always does.

A simulated session has what a shared CI machine does to timings: a machine speed that
differs between sessions (about 20% either way) and drifts within one, shared by the kernel
and the calibration workloads measured next to it; per-sample lognormal noise (the copy
noisier than the matmul); a small per-session mismatch between how the kernel and the
calibration respond; and 5% of samples hit by preemption (x1.3 to x2.5). Samples are
normalised with the gate's own `calibration_unit`, then compared with the default
thresholds. Seeded, so every run sees the same sessions.
"""
from __future__ import annotations

import numpy as np
import pytest

from harness.gate.stats import Thresholds, bootstrap_ratio_interval, compare
from harness.gate.timing import calibration_unit

SEEDS = range(80)
BASELINE_SAMPLES, CURRENT_SAMPLES = 90, 30  # a baseline is measured 3x as long as a gate run
KERNEL_S = 2e-3


def simulated_session(
    rng: np.random.Generator,
    samples: int,
    kernel_s: float,
    *,
    machine_sigma: float = 0.10,
    drift: float = 0.03,
    noise: float = 0.06,
    mismatch: float = 0.015,
    preempted: float = 0.05,
) -> np.ndarray:
    """Normalised kernel samples (samples,) of one session whose true kernel time is kernel_s."""
    speed = rng.normal(0, machine_sigma) + np.cumsum(rng.normal(0, drift / np.sqrt(samples), samples))
    matmul = 1e-3 * np.exp(speed + rng.normal(0, noise, samples))
    copy = 1.2e-3 * np.exp(speed + rng.normal(0, 2 * noise, samples))
    kernel = kernel_s * np.exp(speed + rng.normal(0, mismatch) + rng.normal(0, noise, samples))
    hit = rng.random(samples) < preempted
    kernel[hit] *= rng.uniform(1.3, 2.5, hit.sum())
    unit = calibration_unit(matmul, copy, np.ones(samples, dtype=bool), np.arange(samples), 0.25)
    return kernel / unit


def _verdicts(slowdown: float) -> list[str]:
    verdicts = []
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        baseline = simulated_session(rng, BASELINE_SAMPLES, KERNEL_S)
        current = simulated_session(rng, CURRENT_SAMPLES, KERNEL_S * slowdown)
        verdicts.append(compare(baseline, current, seed=seed).verdict)
    return verdicts


def test_noise_alone_never_trips_the_gate():
    verdicts = _verdicts(1.0)
    assert "regression" not in verdicts


def test_a_25_percent_slowdown_always_trips_the_gate():
    verdicts = _verdicts(1.25)
    assert verdicts == ["regression"] * len(SEEDS)


def test_a_25_percent_speedup_is_an_improvement_not_a_failure():
    rng = np.random.default_rng(0)
    baseline = simulated_session(rng, BASELINE_SAMPLES, KERNEL_S)
    current = simulated_session(rng, CURRENT_SAMPLES, KERNEL_S / 1.25)
    assert compare(baseline, current).verdict == "improvement"


def test_significant_but_immaterial_shift_passes():
    """5% slower with almost no noise: p is tiny, but the ratio's interval stays under 1.10."""
    rng = np.random.default_rng(1)
    baseline = np.exp(rng.normal(0, 0.005, 200))
    current = 1.05 * np.exp(rng.normal(0, 0.005, 200))
    result = compare(baseline, current)
    assert result.p_slower < 1e-6
    assert result.verdict == "ok"


def test_material_but_insignificant_shift_passes():
    """Two samples a side: the ratio can look 30% worse, but nothing is significant."""
    result = compare(np.array([1.0, 1.5]), np.array([1.3, 1.95]), Thresholds(min_ratio=1.0, confidence=0.5))
    assert result.lo > 1.0  # the effect-size condition alone would fail it
    assert result.p_slower > 0.01
    assert result.verdict == "ok"


def test_interval_brackets_the_true_ratio():
    rng = np.random.default_rng(2)
    baseline = np.exp(rng.normal(0, 0.05, 500))
    current = 1.2 * np.exp(rng.normal(0, 0.05, 500))
    lo, hi = bootstrap_ratio_interval(
        baseline, current, quantile=0.5, confidence=0.99, resamples=2000, rng=np.random.default_rng(0)
    )
    assert lo < 1.2 < hi
    assert hi - lo < 0.05


def test_same_inputs_same_verdict():
    rng = np.random.default_rng(3)
    baseline, current = rng.lognormal(0, 0.1, 40), rng.lognormal(0.1, 0.1, 30)
    assert compare(baseline, current, seed=7) == compare(baseline, current, seed=7)


def test_too_few_samples_is_an_error():
    with pytest.raises(ValueError, match="at least 2 samples"):
        compare(np.array([1.0]), np.array([1.0, 2.0]))


def test_tied_small_samples_get_the_exact_p_and_no_change_where_none_is_decidable():
    from harness import significance

    baseline, current = np.array([1.0, 1.0, 1.0]), np.array([2.0, 2.0, 2.0])  # ties: scipy's default goes asymptotic
    limits = significance.Thresholds(min_ratio=1.10, alpha=0.05, confidence=0.90)
    test = significance.ratio_test(baseline, current, limits, np.random.default_rng(0))
    assert test.p_higher == pytest.approx(significance.smallest_p(3, 3))  # exact: 0.05, not the approximation's 0.023
    assert not test.decidable and test.change == "none"
    gate = compare(baseline, current)  # twice as slow, but 3 against 3 cannot reach the gate's alpha
    assert gate.verdict == "ok" and not gate.decidable
    four = significance.ratio_test(np.array([1.0, 1.0, 1.0, 1.5]), np.array([2.0, 2.0, 2.0, 3.0]),
                                   limits, np.random.default_rng(0))
    assert four.decidable and four.change == "higher" and four.p_higher == pytest.approx(1 / 70)
