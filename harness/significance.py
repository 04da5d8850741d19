"""Is one set of samples materially and significantly higher or lower than another?

The one comparator behind the kernel gate (`harness.gate`) and `lalm-bench compare`
(`harness.report.comparison`). A change needs all three of:

- enough samples to decide: with n against m samples, the exact one-sided Mann-Whitney U test
  cannot give a p-value below 1 / C(n+m, n) (0.05 for 3 against 3), whatever the data. When that
  floor is not below `alpha` no data could pass, and the answer is "too few samples", never "no
  change";
- significance: the one-sided Mann-Whitney U test in the direction of the change, p < `alpha`.
  Rank-based, so the preemption outliers of a shared machine cannot drive it. Exact wherever the
  floor above can matter (`method`): scipy's default turns to the normal approximation as soon as
  two samples tie, whose p can fall below what the exact test could ever give;
- materiality: the bootstrap confidence interval of the ratio current/baseline of the
  `quantile`-th sample quantile lies entirely beyond `min_ratio` (above it, or below its inverse).

Samples of one session are not independent (the session shares a machine state), so with tens
of samples the U test calls almost any session-to-session shift significant; the effect-size
floor is what absorbs that between-session noise.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import comb
from typing import Literal

import numpy as np
from scipy.stats import mannwhitneyu

Change = Literal["higher", "lower", "none"]


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds; each user sets its own (the gate in harness.gate.stats, compare in
    harness.report.comparison)."""

    min_ratio: float  # the interval must lie beyond this factor, e.g. 1.10: 10 % higher or lower
    alpha: float  # one-sided Mann-Whitney significance level
    confidence: float  # two-sided bootstrap interval level
    quantile: float = 0.5  # the sample quantile whose ratio is estimated
    resamples: int = 2000


@dataclass(frozen=True)
class RatioTest:
    """Ratio current/baseline of the chosen quantile, its interval, both one-sided p-values, and
    the change they support ("none" also when `decidable` is False)."""

    ratio: float
    lo: float
    hi: float
    p_higher: float
    p_lower: float
    change: Change
    decidable: bool


def smallest_p(n: int, m: int) -> float:
    """The smallest one-sided p-value the exact Mann-Whitney U test can give for n against m samples."""
    return 1.0 / comb(n + m, n)


def decidable(n: int, m: int, alpha: float) -> bool:
    """Whether n against m samples could show a significant change at `alpha` at all."""
    return min(n, m) >= 2 and smallest_p(n, m) < alpha


# Up to this many samples a side the U test is exact (scipy's own limit for choosing it: the
# exact distribution's cost grows with n x m); beyond it the smallest possible p is below
# 1 / C(18, 9) = 2e-5, far under any alpha, and the normal approximation is accurate.
EXACT_MAX_SAMPLES = 8


def method(n: int, m: int) -> Literal["exact", "asymptotic"]:
    """The U test's method for n against m samples, whether or not samples tie."""
    return "exact" if max(n, m) <= EXACT_MAX_SAMPLES else "asymptotic"


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


def ratio_test(baseline: np.ndarray, current: np.ndarray, thresholds: Thresholds,
               rng: np.random.Generator) -> RatioTest:
    """Compare samples baseline (n,) with current (m,); n, m >= 2 (ValueError otherwise)."""
    baseline = np.asarray(baseline, dtype=float)
    current = np.asarray(current, dtype=float)
    if len(baseline) < 2 or len(current) < 2:
        raise ValueError(f"need at least 2 samples per side, got {len(baseline)} and {len(current)}")
    q = thresholds.quantile
    ratio = float(np.quantile(current, q) / np.quantile(baseline, q))
    lo, hi = bootstrap_ratio_interval(baseline, current, quantile=q, confidence=thresholds.confidence,
                                      resamples=thresholds.resamples, rng=rng)
    how = method(len(current), len(baseline))
    p_higher = float(mannwhitneyu(current, baseline, alternative="greater", method=how).pvalue)
    p_lower = float(mannwhitneyu(current, baseline, alternative="less", method=how).pvalue)
    can_decide = decidable(len(baseline), len(current), thresholds.alpha)
    change: Change = "none"
    if can_decide and lo > thresholds.min_ratio and p_higher < thresholds.alpha:
        change = "higher"
    elif can_decide and hi < 1.0 / thresholds.min_ratio and p_lower < thresholds.alpha:
        change = "lower"
    return RatioTest(ratio, lo, hi, p_higher, p_lower, change, can_decide)
