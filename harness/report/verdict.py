"""The report's opening answer: which variant is cheaper on which metric, by how much, from what length.

A few lines, one per headline quantity the run measured, for the SSM LALM against the
transformer LALM (or the first pair present): who is cheaper, from what audio length (with the
crossover's interval), and the ratio at the longest common length with its 95 % bootstrap
interval from the raw samples (metrics without samples, such as counted FLOPs, have none). A
ratio whose interval holds 1 names no winner. Task scores, where the run has them, are a line
too. Values below a meter's resolution never reach these lines (`analysis.ok_values`); a
quantity measured only below it is named as such.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from harness import significance
from harness.report import analysis, findings, resample
from harness.report.formatting import interval, metric_name, number, quantity, seconds, span

# What the verdict speaks about, in order; at most MAX_LINES lines in all.
QUANTITIES = (("e2e", "latency_ms"), ("e2e", "flops"), ("prefill", "state_bytes"), ("e2e", "peak_mem_bytes"),
              ("decode", "latency_ms"), ("e2e", "energy_j"), ("encoder", "latency_ms"), ("prefill", "latency_ms"))
MAX_LINES = 5
CONFIDENCE = 0.95


def _ratio_at_longest(df: pd.DataFrame, samples: pd.DataFrame, pair: tuple[str, str], phase: str, metric: str,
                      setting: str, rng: np.random.Generator) -> tuple[float, float, float, float] | None:
    """(length, ratio, lo, hi) of numerator/denominator at their longest common length; lo/hi nan
    without at least two raw samples a side."""
    rows = analysis.ok_values(analysis.select(df, metric, phase))
    rows, _ = analysis.sweep_slice(rows[rows["value"] > 0], vary=("audio_seconds",))
    rows = rows[rows["setting"] == setting].drop_duplicates(["variant", "audio_seconds"])
    num, den = (rows[rows["variant"] == v].set_index("audio_seconds") for v in pair)
    common = sorted(set(num.index) & set(den.index))
    if not common:
        return None
    length = common[-1]
    n, d = num.loc[[length]], den.loc[[length]]
    ratio = float(n["value"].iloc[0] / d["value"].iloc[0])
    s_num, s_den = (analysis.samples_by_row(r, samples).iloc[0] for r in (n, d))
    lo = hi = math.nan
    if len(s_num) >= 2 and len(s_den) >= 2:
        lo, hi = significance.bootstrap_ratio_interval(s_den, s_num, quantile=0.5, confidence=CONFIDENCE,
                                                       resamples=resample.N_BOOT, rng=rng)
    return float(length), ratio, lo, hi


def _by_how_much(numerator: str, denominator: str, what: str, at: tuple[float, float, float, float]) -> str:
    length, ratio, lo, hi = at
    ci = f" {interval(lo, hi)}" if math.isfinite(lo) else ""
    return f"{numerator} at {number(ratio)}×{ci} of {denominator}'s {what} at {seconds(length)}"


def _line(row, df: pd.DataFrame, samples: pd.DataFrame, rng: np.random.Generator) -> str | None:
    what = findings.quantity_name(row.phase, row.metric)
    # Both sides named with their setting: a run may hold the transformer at several sizes or dtypes.
    who, reference = (f"{v} ({row.setting})" if row.setting else v for v in (row.numerator, analysis.TRANSFORMER))
    at = _ratio_at_longest(df, samples, (row.numerator, analysis.TRANSFORMER), row.phase, row.metric,
                           row.setting, rng)
    if at is None:
        return None
    much = _by_how_much(who, reference, what, at)
    measured = span(row.x_min, row.x_max)
    length, _, lo, hi = at
    if lo <= 1 <= hi:
        return (f"{findings.sentence(what)}: neither is clearly cheaper at {seconds(length)}, the longest length "
                f"measured ({measured}): {much}.")
    if row.outcome == "cheaper throughout":
        return f"{findings.sentence(what)}: {who} is cheaper at every length measured ({measured}): {much}."
    if row.outcome == "no crossover":
        return (f"{findings.sentence(what)}: {reference} is cheaper at the longest length measured "
                f"({measured}): {much}.")
    if math.isnan(row.share) or row.share >= findings.MIN_CROSSING_SHARE:
        ci = f" (95 % CI {interval(row.ci_low, row.ci_high)} s)" if math.isfinite(row.ci_low) else ""
        return (f"{findings.sentence(what)}: {who} is cheaper from {seconds(row.length)} of audio{ci} on "
                f"({measured}): {much}.")
    return (f"{findings.sentence(what)}: no clear winner; the ratio crosses 1 near {seconds(row.length)} but "
            f"only {number(100 * row.share, 2)} % of resamples do ({measured}): {much}.")


def _below_resolution(df: pd.DataFrame, phase: str, metric: str) -> str | None:
    """A line for a headline quantity measured only below its meter's resolution; None otherwise."""
    rows = analysis.select(df, metric, phase)
    rows = rows[(rows["status"] == "ok") & rows["value"].notna()]
    if rows.empty or not rows["below_resolution"].all():
        return None
    return (f"{findings.sentence(findings.quantity_name(phase, metric))}: every value is below the meter's "
            f"resolution (largest {quantity(rows['value'].max(), rows['unit'].iloc[0])}), so no variant is "
            "called cheaper.")


def _tasks(scores: pd.DataFrame) -> list[str]:
    lines = []
    for (dataset, metric), group in scores.groupby(["dataset", "metric"], sort=False):
        parts = ", ".join(f"{r.series} {number(r.score)}" for r in group.sort_values("score", ascending=False)
                          .itertuples(index=False))
        lines.append(f"{metric_name(metric).capitalize()} on {dataset or 'the task'}: {parts}.")
    return lines


def lines(df: pd.DataFrame, samples: pd.DataFrame, crossovers: pd.DataFrame, scores: pd.DataFrame,
          rng: np.random.Generator | None = None) -> list[str]:
    """The verdict's lines; [] when the run supports none."""
    rng = rng or resample.generator()
    headline = findings.headline_pairs(crossovers)
    out = _tasks(scores)
    for phase, metric in QUANTITIES:
        rows = headline[(headline["phase"] == phase) & (headline["metric"] == metric)]
        said = [line for r in rows.itertuples(index=False) if (line := _line(r, df, samples, rng))]
        out += said or [line for line in [_below_resolution(df, phase, metric)] if line]
    return out[:MAX_LINES]
