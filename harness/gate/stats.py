"""The gate's decision: is a kernel materially and significantly slower than its baseline?

Inputs are normalised samples (kernel time / calibration unit) of one kernel from two
sessions. Two conditions must both hold for a regression:

- significance: a one-sided Mann-Whitney U test (current > baseline) on the raw samples,
  p < `alpha`. Rank-based, so the preemption outliers of a shared machine cannot drive it;
- materiality: the bootstrap confidence interval of the ratio current/baseline of the
  `quantile`-th sample quantile lies entirely above `min_ratio`.

Samples inside one session are not independent (the whole session shares a machine state),
so with tens of samples the U test calls almost any session-to-session shift significant;
the effect-size floor is what absorbs that between-session noise, and it is set from the
measured spread of repeated gate runs (docs/PERF.md, "Kernel gate"). Improvements are
reported symmetrically but never fail the gate.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import mannwhitneyu

Verdict = Literal["regression", "improvement", "ok"]


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds; see docs/PERF.md ("Kernel gate") for how they were chosen."""

    min_ratio: float = 1.10  # the interval's lower bound must exceed this (10% slower)
    alpha: float = 0.01  # one-sided Mann-Whitney significance level
    confidence: float = 0.99  # two-sided bootstrap interval level
    quantile: float = 0.5  # the sample quantile whose ratio is estimated
    resamples: int = 2000


@dataclass(frozen=True)
class Comparison:
    """One kernel's verdict: ratio current/baseline of the chosen quantile, its interval, p-values."""

    ratio: float
    lo: float
    hi: float
    p_slower: float
    p_faster: float
    verdict: Verdict


def bootstrap_ratio_interval(
    baseline: np.ndarray,
    current: np.ndarray,
    *,
    quantile: float,
    confidence: float,
    resamples: int,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of quantile(current) / quantile(baseline).

    baseline (n,), current (m,): each resampled independently with replacement.
    """
    boot_base = np.quantile(baseline[rng.integers(0, len(baseline), (resamples, len(baseline)))], quantile, axis=1)
    boot_curr = np.quantile(current[rng.integers(0, len(current), (resamples, len(current)))], quantile, axis=1)
    tail = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(boot_curr / boot_base, [tail, 1.0 - tail])
    return float(lo), float(hi)


def compare(
    baseline: np.ndarray,
    current: np.ndarray,
    thresholds: Thresholds = Thresholds(),
    seed: int = 0,
) -> Comparison:
    """Compare one kernel's normalised samples, baseline (n,) vs current (m,)."""
    baseline = np.asarray(baseline, dtype=float)
    current = np.asarray(current, dtype=float)
    if len(baseline) < 2 or len(current) < 2:
        raise ValueError(f"need at least 2 samples per side, got {len(baseline)} and {len(current)}")
    q = thresholds.quantile
    ratio = float(np.quantile(current, q) / np.quantile(baseline, q))
    lo, hi = bootstrap_ratio_interval(
        baseline,
        current,
        quantile=q,
        confidence=thresholds.confidence,
        resamples=thresholds.resamples,
        rng=np.random.default_rng(seed),
    )
    p_slower = float(mannwhitneyu(current, baseline, alternative="greater").pvalue)
    p_faster = float(mannwhitneyu(current, baseline, alternative="less").pvalue)
    verdict: Verdict = "ok"
    if lo > thresholds.min_ratio and p_slower < thresholds.alpha:
        verdict = "regression"
    elif hi < 1.0 / thresholds.min_ratio and p_faster < thresholds.alpha:
        verdict = "improvement"
    return Comparison(ratio=ratio, lo=lo, hi=hi, p_slower=p_slower, p_faster=p_faster, verdict=verdict)
