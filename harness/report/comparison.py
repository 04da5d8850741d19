"""Two runs side by side: the same points matched, their ratio, and whether it exceeds the noise.

Rows match on what was measured (variant, size, device, dtype, sweep axes, phase, metric,
module, dataset), never on run or point ids, so a rerun on other hardware or code matches its
baseline. Context columns that tell rows of one run apart (e.g. `mode` in a sweep over modes)
join the key only when needed, so two runs that differ in, say, the scan backend still match.

A difference is called by the comparator the kernel gate uses (`harness.significance`): the
raw samples must be numerous enough that the test could reject at all (else "too few
samples"), the one-sided Mann-Whitney U test in the direction of the change must reject at
`alpha`/2 (so `alpha` is two-sided), and the 95 % bootstrap interval of the ratio of medians
must lie beyond the minimum effect (×1.10 by default, or below ×1/1.10): two runs of the same
code minutes apart differ by a few percent on a shared machine, and that is not a change.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness import significance
from harness.report import analysis, palette, resample, resolution
from harness.report.formatting import metric_name, number, quantity, seconds

BASE_KEY = ["variant", "encoder", "lm", "size", "device", "dtype", "batch_size", "audio_seconds",
            "prompt_tokens", "new_tokens", "phase", "metric", "module", "dataset"]
# Added to the key, in this order, only while rows of one run still share a key.
DISAMBIGUATING = ["mode", "requested_scan_backend", "scan_backend", "attn_backend", "checkpoint"]
HIGHER_IS_BETTER = {"throughput", "accuracy", "macro_f1", "mAP", "max_batch", "flop_coverage"}
LOWER_IS_BETTER = {"latency_ms", "rtf", "peak_mem_bytes", "reserved_mem_bytes", "state_bytes",
                   "state_bytes_analytic", "flops", "flops_analytic", "energy_j", "energy_j_per_token",
                   "energy_j_per_audio_s"}
# Metrics that are times: a higher value reads "slower".
TIME_METRICS = {"latency_ms", "rtf"}
# Throughput and RTF are computed from the phase's latency (harness.measure.phases: work / latency
# and latency / audio), so their samples are the latency samples raised to this power, rescaled.
DERIVED_FROM_LATENCY = {"throughput": -1, "rtf": 1}
# Shown first on a point's line, in this order; other metrics follow in the order measured.
LEADING_METRICS = ("latency_ms", "throughput", "rtf")

ALPHA = 0.05  # two-sided significance level
# A change must be at least 20 % (interval beyond ×1.20 or below ×1/1.20), twice the kernel gate's
# floor, whose samples are normalised by a calibration and these are not. On a loaded machine
# points stray further (README, "Reports"); `latency_drift` measures by how much.
MIN_EFFECT = 0.20
CONFIDENCE = 0.95
DECIDED = ("better", "worse", "higher", "lower")


def thresholds(alpha: float = ALPHA, min_effect: float = MIN_EFFECT) -> significance.Thresholds:
    """compare's thresholds: a two-sided `alpha` (each one-sided test at alpha/2), a minimum effect."""
    return significance.Thresholds(min_ratio=1.0 + min_effect, alpha=alpha / 2, confidence=CONFIDENCE)


def match_key(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    """The columns that identify a row in both runs (BASE_KEY plus what is needed to be unique)."""
    key = [c for c in BASE_KEY if c in a and c in b]
    for column in DISAMBIGUATING:
        if not (a.duplicated(key).any() or b.duplicated(key).any()):
            break
        if column in a and column in b:
            key.append(column)
    return key


def verdict(metric: str, change: significance.Change) -> str:
    """'better' / 'worse' for metrics with a known good direction, else 'higher' / 'lower';
    'within noise' when the comparator found no change."""
    if change == "none":
        return "within noise"
    higher = change == "higher"
    if metric in HIGHER_IS_BETTER:
        return "better" if higher else "worse"
    if metric in LOWER_IS_BETTER:
        return "worse" if higher else "better"
    return change


def change_text(metric: str, ratio: float) -> str:
    """'×4.61 slower', '×2.00 faster', '×1.30 higher'; the factor is always ≥ 1."""
    if not np.isfinite(ratio) or ratio <= 0:
        return "–"
    if ratio == 1:
        return "unchanged"
    up = ratio > 1
    words = ("slower", "faster") if metric in TIME_METRICS else ("higher", "lower")
    return f"×{number(ratio if up else 1 / ratio)} {words[0] if up else words[1]}"


def reading(metric: str, verdict_: str, ratio: float, n_a: int, n_b: int, floor: float, unit: str) -> str:
    """The verdict as a phrase: 'worse: ×4.61 slower', 'too few samples (3 vs 3) to decide; ×4.61 slower'."""
    change = change_text(metric, ratio)
    if verdict_ == "below resolution":
        return f"both below the meter's resolution ({quantity(floor, unit)})"
    if verdict_ in DECIDED:
        return f"{verdict_}: {change}" if verdict_ in ("better", "worse") else change
    if verdict_ == "within noise":
        return f"within noise ({change})"
    if verdict_ == "too few samples":
        return f"too few samples ({n_a} vs {n_b}) to decide; {change}"
    if verdict_ == "no samples":
        return f"no samples to test ({n_a} vs {n_b}); {change}"
    return verdict_


def _compare_row(metric: str, value_a: float, value_b: float, status_a: str, status_b: str,
                 samples_a: np.ndarray, samples_b: np.ndarray, floor: float, limits: significance.Thresholds,
                 rng: np.random.Generator) -> dict:
    """One matched row's statistics and verdict; `floor` is the meters' resolution (nan: none stated)."""
    samples_a, samples_b = samples_a[np.isfinite(samples_a)], samples_b[np.isfinite(samples_b)]
    stats = {"ratio": np.nan, "ci_low": np.nan, "ci_high": np.nan, "p_value": np.nan,
             "n_a": len(samples_a), "n_b": len(samples_b)}
    if status_a != "ok" or status_b != "ok":
        return {**stats, "verdict": f"{status_a} → {status_b}" if status_a != status_b else status_a}
    if not (np.isfinite(value_a) and np.isfinite(value_b)):
        return {**stats, "verdict": "not measured"}
    if value_a == value_b:
        return {**stats, "ratio": 1.0, "verdict": "same"}
    if max(value_a, value_b) < floor:  # both say "small", neither how small (harness.report.resolution)
        return {**stats, "verdict": "below resolution"}
    if value_a == 0:
        return {**stats, "verdict": "no ratio (A is 0)"}
    stats["ratio"] = value_b / value_a
    if min(len(samples_a), len(samples_b)) == 0:
        return {**stats, "verdict": "no samples"}
    if not significance.decidable(len(samples_a), len(samples_b), limits.alpha):
        return {**stats, "verdict": "too few samples"}
    test = significance.ratio_test(samples_a, samples_b, limits, rng)
    # Two-sided p: twice the smaller one-sided p.
    stats.update(ci_low=test.lo, ci_high=test.hi, p_value=min(1.0, 2 * min(test.p_higher, test.p_lower)))
    return {**stats, "verdict": verdict(metric, test.change)}


def _samples(run: pd.DataFrame, samples: pd.DataFrame) -> pd.Series:
    """Each row's raw samples; throughput and RTF rows get their latency's, transformed as the value was."""
    own = analysis.samples_by_row(run, samples)
    point = ["point_id", "phase"]
    is_latency = (run["metric"] == "latency_ms").to_numpy()
    latency = run[is_latency].assign(samples=list(own[is_latency])).drop_duplicates(point, keep="last")
    by_point = {(p, ph): (v, s) for p, ph, v, s in
                zip(latency["point_id"], latency["phase"], latency["value"], latency["samples"])}
    derived = []
    for samples_, metric, point_id, phase, value in zip(own, run["metric"], run["point_id"], run["phase"],
                                                        run["value"]):
        base = by_point.get((point_id, phase))
        if len(samples_) or metric not in DERIVED_FROM_LATENCY or base is None or not base[0] > 0:
            derived.append(samples_)
        else:
            derived.append(value * (base[1] / base[0]) ** DERIVED_FROM_LATENCY[metric])
    return pd.Series(derived, index=run.index, dtype=object)


def compare(results_a: pd.DataFrame, samples_a: pd.DataFrame, results_b: pd.DataFrame, samples_b: pd.DataFrame,
            alpha: float = ALPHA, min_effect: float = MIN_EFFECT,
            rng: np.random.Generator | None = None) -> tuple[pd.DataFrame, dict]:
    """Matched rows of runs A and B with ratio B/A, its interval, the U test p-value and a verdict.

    Returns (table, counts): the table has the key columns, unit, value_a, value_b, status_a,
    status_b, ratio, ci_low, ci_high, p_value (two-sided), n_a, n_b, verdict and reading (the
    verdict as a phrase); counts says how many rows matched and how many were only in A or only
    in B. Where one run has several rows for one key, the last one counts (as the store keeps
    the latest write of a point).
    """
    rng = rng or resample.generator()
    limits = thresholds(alpha, min_effect)
    a, b = (r.assign(variant=r["variant"].map(palette.canonical)) for r in (results_a, results_b))
    key = match_key(a, b)
    a, b = a.drop_duplicates(key, keep="last"), b.drop_duplicates(key, keep="last")
    a = a.assign(samples=_samples(a, samples_a), resolution=resolution.of(a))
    b = b.assign(samples=_samples(b, samples_b), resolution=resolution.of(b))
    keep = [*key, "unit", "value", "status", "samples", "resolution"]
    merged = a[keep].merge(b[keep], on=key, how="outer", suffixes=("_a", "_b"), indicator=True)
    counts = {"matched": int((merged["_merge"] == "both").sum()),
              "only_a": int((merged["_merge"] == "left_only").sum()),
              "only_b": int((merged["_merge"] == "right_only").sum()),
              "key": key}
    both = merged[merged["_merge"] == "both"]
    rows = [
        _compare_row(r["metric"], float(r["value_a"]), float(r["value_b"]), r["status_a"], r["status_b"],
                     r["samples_a"], r["samples_b"], np.fmax(r["resolution_a"], r["resolution_b"]), limits, rng)
        for _, r in both.iterrows()
    ]
    stats = pd.DataFrame(rows, index=both.index,
                         columns=["ratio", "ci_low", "ci_high", "p_value", "n_a", "n_b", "verdict"])
    floors = np.fmax(both["resolution_a"], both["resolution_b"])
    stats["reading"] = [reading(*row) for row in zip(both["metric"], stats["verdict"], stats["ratio"], stats["n_a"],
                                                     stats["n_b"], floors, both["unit_a"])]
    table = pd.concat([both[key].assign(unit=both["unit_a"], value_a=both["value_a"], value_b=both["value_b"],
                                        status_a=both["status_a"], status_b=both["status_b"]), stats], axis=1)
    rank = {v: i for i, v in enumerate(palette.variant_order(table["variant"]))}
    table = table.sort_values(["variant", "phase", "batch_size", "audio_seconds", "metric"], kind="stable",
                              key=lambda column: column.map(rank) if column.name == "variant" else column)
    return table.reset_index(drop=True), counts


def latency_drift(table: pd.DataFrame) -> tuple[float, float]:
    """(shift, spread) of B/A over every matched latency: the median ratio, and the 90th percentile
    of each ratio's distance from it (a factor ≥ 1); nan without latencies.

    A machine or load difference between the runs moves the shift; load that comes and goes while
    the points run widens the spread. Either one, where larger than the minimum effect, is a
    difference every verdict carries: samples of one point are taken back to back, so a burst of
    load shifts them all together, which no test on them can tell from a change of code.
    """
    ratios = table.loc[(table["metric"] == "latency_ms") & (table["ratio"] > 0), "ratio"].dropna()
    if ratios.empty:
        return float("nan"), float("nan")
    log_ratios = np.log(ratios.to_numpy(float))
    shift = float(np.median(log_ratios))
    return float(np.exp(shift)), float(np.exp(np.quantile(np.abs(log_ratios - shift), 0.9)))


@dataclass(frozen=True)
class Display:
    """A comparison laid out one line per point.

    frame: strings; identity columns (those that vary), `status`, then one column per metric
    whose cell is "A → B" and the verdict's phrase. verdicts: the verdict of each metric cell
    (same index and metric columns as frame). shared: identity values common to every line.
    same: metrics equal in every point, left out of the table. identity: the columns that name a
    line (and its status), which a terminal must never narrow.
    """

    frame: pd.DataFrame
    verdicts: pd.DataFrame
    shared: dict
    same: list[str]
    identity: list[str]


IDENTITY = {"variant": "variant", "size": "size", "device": "device", "dtype": "dtype", "batch_size": "batch",
            "audio_seconds": "audio", "prompt_tokens": "prompt", "new_tokens": "new", "phase": "phase",
            "module": "module", "dataset": "dataset"}


def _status(a: pd.Series, b: pd.Series) -> str:
    """A point's status in A → B: 'ok', or its first failure, 'ok → oom'."""
    for status_a, status_b in zip(a, b):
        if status_a != "ok" or status_b != "ok":
            return status_a if status_a == status_b else f"{status_a} → {status_b}"
    return "ok"


def display(table: pd.DataFrame) -> Display:
    """The comparison table as one line per point (see `Display`); key values shared by every line
    are returned apart, so the table shows only what varies."""
    point_key = [c for c in table.columns if c in BASE_KEY + DISAMBIGUATING and c != "metric"]
    shared = {c: table[c].iloc[0] for c in IDENTITY if c in table and len(table) and table[c].nunique() == 1
              and c not in ("phase", "variant") and str(table[c].iloc[0]) != ""}
    identity = [c for c in IDENTITY if c in table and c not in shared and table[c].astype(str).ne("").any()]
    metrics = list(dict.fromkeys([m for m in LEADING_METRICS if m in set(table["metric"])] + list(table["metric"])))
    same = [m for m in metrics if (table.loc[table["metric"] == m, "verdict"] == "same").all()]
    shown = [m for m in metrics if m not in same]
    lines, verdicts = [], []
    for _, rows in table.groupby(point_key, sort=False, dropna=False):
        first = rows.iloc[0]
        line = {IDENTITY[c]: seconds(first[c]) if c == "audio_seconds" else str(first[c]) for c in identity}
        line["status"] = _status(rows["status_a"], rows["status_b"])
        cells = rows.set_index("metric")
        for metric in shown:
            if metric not in cells.index:
                line[metric_name(metric)] = "–"
                continue
            r = cells.loc[metric]
            line[metric_name(metric)] = (f"{quantity(r['value_a'], r['unit'])} → {quantity(r['value_b'], r['unit'])}"
                                         f"\n{r['reading']}")
        lines.append(line)
        verdicts.append({metric_name(m): cells.loc[m, "verdict"] if m in cells.index else "" for m in shown})
    return Display(pd.DataFrame(lines), pd.DataFrame(verdicts), shared, [metric_name(m) for m in same],
                   [IDENTITY[c] for c in identity] + ["status"])
