"""Two runs side by side: the same points matched, their ratio, and whether it exceeds the noise.

Rows match on what was measured (variant, size, device, dtype, sweep axes, phase, metric,
module, dataset), never on run or point ids, so a rerun on other hardware or code matches its
baseline. Context columns that tell rows of one run apart (e.g. `mode` in a sweep over modes)
join the key only when needed, so two runs that differ in, say, the scan backend still match.
A difference counts as real when the raw samples say so twice: Mann-Whitney U rejects equal
distributions at `alpha` and the bootstrap interval of the ratio of medians excludes 1.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

from harness.report import analysis, palette, resample
from harness.report.formatting import interval, number, quantity, seconds

BASE_KEY = ["variant", "encoder", "lm", "size", "device", "dtype", "batch_size", "audio_seconds",
            "prompt_tokens", "new_tokens", "phase", "metric", "module", "dataset"]
# Added to the key, in this order, only while rows of one run still share a key.
DISAMBIGUATING = ["mode", "requested_scan_backend", "scan_backend", "attn_backend", "checkpoint"]
HIGHER_IS_BETTER = {"throughput", "accuracy", "macro_f1", "mAP", "max_batch", "flop_coverage"}
LOWER_IS_BETTER = {"latency_ms", "rtf", "peak_mem_bytes", "reserved_mem_bytes", "state_bytes",
                   "state_bytes_analytic", "flops", "flops_analytic", "energy_j", "energy_j_per_token",
                   "energy_j_per_audio_s"}
MIN_SAMPLES = 3  # below this Mann-Whitney U cannot reach p < 0.05 whatever the data
ALPHA = 0.05


def match_key(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    """The columns that identify a row in both runs (BASE_KEY plus what is needed to be unique)."""
    key = [c for c in BASE_KEY if c in a and c in b]
    for column in DISAMBIGUATING:
        if not (a.duplicated(key).any() or b.duplicated(key).any()):
            break
        if column in a and column in b:
            key.append(column)
    return key


def _verdict(metric: str, ratio: float, p_value: float, low: float, high: float, alpha: float) -> str:
    if not (p_value < alpha and (low > 1 or high < 1)):
        return "within noise"
    higher = ratio > 1
    if metric in HIGHER_IS_BETTER:
        return "better" if higher else "worse"
    if metric in LOWER_IS_BETTER:
        return "worse" if higher else "better"
    return "higher" if higher else "lower"


def _compare_row(metric: str, value_a: float, value_b: float, status_a: str, status_b: str,
                 samples_a: np.ndarray, samples_b: np.ndarray, alpha: float, rng: np.random.Generator) -> dict:
    stats = {"ratio": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan,
             "n_a": len(samples_a), "n_b": len(samples_b)}
    if status_a != "ok" or status_b != "ok":
        return {**stats, "verdict": f"{status_a} → {status_b}" if status_a != status_b else status_a}
    if not (np.isfinite(value_a) and np.isfinite(value_b)) or value_a == 0:
        return {**stats, "verdict": "not measured"}
    stats["ratio"] = value_b / value_a
    samples_a, samples_b = samples_a[np.isfinite(samples_a)], samples_b[np.isfinite(samples_b)]
    if min(len(samples_a), len(samples_b)) < MIN_SAMPLES:
        return {**stats, "verdict": "same" if value_a == value_b else "no samples"}
    stats["p_value"] = float(mannwhitneyu(samples_a, samples_b, alternative="two-sided").pvalue)
    stats["ci_low"], stats["ci_high"] = resample.ratio_of_medians_interval(samples_a, samples_b, rng)
    return {**stats, "verdict": _verdict(metric, stats["ratio"], stats["p_value"], stats["ci_low"],
                                         stats["ci_high"], alpha)}


def compare(results_a: pd.DataFrame, samples_a: pd.DataFrame, results_b: pd.DataFrame, samples_b: pd.DataFrame,
            alpha: float = ALPHA, rng: np.random.Generator | None = None) -> tuple[pd.DataFrame, dict]:
    """Matched rows of runs A and B with ratio B/A, its interval, the U test p-value and a verdict.

    Returns (table, counts): the table has the key columns, unit, value_a, value_b, status_a,
    status_b, ratio, ci_low, ci_high, p_value, n_a, n_b, verdict; counts says how many rows
    matched and how many were only in A or only in B. Where one run has several rows for one
    key, the last one counts (as the store keeps the latest write of a point).
    """
    rng = rng or resample.generator()
    a, b = (r.assign(variant=r["variant"].map(palette.canonical)) for r in (results_a, results_b))
    key = match_key(a, b)
    a, b = a.drop_duplicates(key, keep="last"), b.drop_duplicates(key, keep="last")
    a = a.assign(samples=analysis.samples_by_row(a, samples_a))
    b = b.assign(samples=analysis.samples_by_row(b, samples_b))
    keep = [*key, "unit", "value", "status", "samples"]
    merged = a[keep].merge(b[keep], on=key, how="outer", suffixes=("_a", "_b"), indicator=True)
    counts = {"matched": int((merged["_merge"] == "both").sum()),
              "only_a": int((merged["_merge"] == "left_only").sum()),
              "only_b": int((merged["_merge"] == "right_only").sum()),
              "key": key}
    both = merged[merged["_merge"] == "both"]
    rows = [
        _compare_row(r["metric"], float(r["value_a"]), float(r["value_b"]), r["status_a"], r["status_b"],
                     r["samples_a"], r["samples_b"], alpha, rng)
        for _, r in both.iterrows()
    ]
    stats = pd.DataFrame(rows, index=both.index,
                         columns=["ratio", "ci_low", "ci_high", "p_value", "n_a", "n_b", "verdict"])
    table = pd.concat([both[key].assign(unit=both["unit_a"], value_a=both["value_a"], value_b=both["value_b"],
                                        status_a=both["status_a"], status_b=both["status_b"]), stats], axis=1)
    rank = {v: i for i, v in enumerate(palette.variant_order(table["variant"]))}
    table = table.sort_values(["variant", "phase", "metric", "batch_size", "audio_seconds"], kind="stable",
                              key=lambda column: column.map(rank) if column.name == "variant" else column)
    return table.reset_index(drop=True), counts


def display(table: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """(table of strings for a terminal or Markdown, the key values shared by every row).

    Key columns with one value across all rows are left out of the table and returned apart,
    so the table shows only what varies.
    """
    shown_key = ["variant", "size", "device", "dtype", "batch_size", "audio_seconds", "prompt_tokens",
                 "new_tokens", "phase", "metric", "module", "dataset"]
    constant = {c: table[c].iloc[0] for c in shown_key if c in table and len(table) and table[c].nunique() == 1
                and c not in ("phase", "metric", "variant") and str(table[c].iloc[0]) != ""}
    names = {"batch_size": "batch", "audio_seconds": "audio", "prompt_tokens": "prompt", "new_tokens": "new"}
    frame = pd.DataFrame(index=table.index)
    for column in shown_key:
        if column in table and column not in constant and table[column].astype(str).ne("").any():
            values = table[column].map(seconds) if column == "audio_seconds" else table[column].astype(str)
            frame[names.get(column, column)] = values
    frame["A"] = [quantity(v, u) for v, u in zip(table["value_a"], table["unit"])]
    frame["B"] = [quantity(v, u) for v, u in zip(table["value_b"], table["unit"])]
    frame["B/A"] = table["ratio"].map(lambda r: f"{number(r)}×" if np.isfinite(r) else "–")
    frame["95% CI"] = [interval(lo, hi) for lo, hi in zip(table["ci_low"], table["ci_high"])]
    frame["p"] = table["p_value"].map(lambda p: "–" if not np.isfinite(p) else ("<0.001" if p < 1e-3 else number(p, 2)))
    frame["verdict"] = table["verdict"]
    return frame.reset_index(drop=True), constant
