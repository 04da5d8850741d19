"""The gate's decision: is a kernel materially and significantly slower than its baseline?

Inputs are normalised samples (kernel time / calibration unit) of one kernel from two
sessions, judged by the comparator `compare` shares (`harness.significance`): a regression is a
one-sided Mann-Whitney U test (current > baseline) at p < `alpha` and a bootstrap interval of
the median ratio entirely above `min_ratio`. The thresholds here are the gate's own, set from
the measured spread of repeated gate runs (docs/PERF.md, "Kernel gate"). Improvements are
reported symmetrically but never fail the gate. Sessions too short for the U test to reach
`alpha` at all are not decidable and get no verdict but "ok" (`Comparison.decidable` says so).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from harness import significance
from harness.significance import bootstrap_ratio_interval

__all__ = ["Comparison", "Thresholds", "Verdict", "bootstrap_ratio_interval", "compare"]

Verdict = Literal["regression", "improvement", "ok"]
VERDICTS: dict[significance.Change, Verdict] = {"higher": "regression", "lower": "improvement", "none": "ok"}


@dataclass(frozen=True)
class Thresholds(significance.Thresholds):
    """The gate's thresholds; see docs/PERF.md ("Kernel gate") for how they were chosen."""

    min_ratio: float = 1.10  # the interval's lower bound must exceed this (10% slower)
    alpha: float = 0.01  # one-sided Mann-Whitney significance level
    confidence: float = 0.99  # two-sided bootstrap interval level


@dataclass(frozen=True)
class Comparison:
    """One kernel's verdict: ratio current/baseline of the chosen quantile, its interval, p-values."""

    ratio: float
    lo: float
    hi: float
    p_slower: float
    p_faster: float
    verdict: Verdict  # "ok" also when `decidable` is False: too few samples to call anything
    decidable: bool


def compare(
    baseline: np.ndarray,
    current: np.ndarray,
    thresholds: Thresholds = Thresholds(),
    seed: int = 0,
) -> Comparison:
    """Compare one kernel's normalised samples, baseline (n,) vs current (m,)."""
    test = significance.ratio_test(baseline, current, thresholds, np.random.default_rng(seed))
    return Comparison(test.ratio, test.lo, test.hi, test.p_higher, test.p_lower, VERDICTS[test.change],
                      test.decidable)
