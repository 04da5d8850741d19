"""The numbers a report states, as pure functions of the results (and raw samples) tables.

Every function takes DataFrames and returns a DataFrame or a small record; none draws or
writes. `prepare` is applied first: it keeps whole-phase rows and adds the columns the rest
relies on (`series`, `setting`, `context_tokens`, `workload`). Profile rows (`profiles`) get the
same columns from `prepare_profiles` and never reach the fits, comparisons or failure tables.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from harness.report import palette, profiles, resample, resolution
from harness.schema import FAILED_STATUSES, INFERENCE_PHASES
from models.audio_tokens import TOKENS_PER_SECOND
from models.names import ALIASES, VARIANTS

TRANSFORMER = ALIASES["transformer"]
# (numerator, denominator) of the ratio figure and crossovers: every other variant against the
# transformer LALM, in the variants' order (the SSM LALM first, then the hybrids and Mamba-2), so
# a new family's variants get their ratios without a list here.
RATIO_PAIRS = tuple((variant, TRANSFORMER) for variant in VARIANTS if variant != TRANSFORMER)

# The grid axes a suite sweeps. A figure varies some and holds the others fixed.
SWEEP_AXES = ("audio_seconds", "batch_size", "prompt_tokens", "new_tokens")
# Attributes that split one variant into several series when a run (or set of runs) varies them.
SETTING_COLUMNS = ("size", "device", "dtype", "mode")

# Metrics where lower means cheaper; exponents and crossovers are reported for these.
COST_METRICS = ("latency_ms", "peak_mem_bytes", "flops", "flops_analytic", "state_bytes", "energy_j")
# Every variant runs the same fbank front end: its ratios between variants are noise.
SHARED_PHASES = ("fbank",)

# A length is in a fit's range when the fitted fixed cost is at most this share of the value:
# below it the local log-log slope is within 10 % of the exponent of the length-dependent part.
MAX_OVERHEAD_SHARE = 0.10
MIN_FIT_POINTS = 3
# Overhead is estimated only with at least this many lengths (three parameters plus one).
MIN_OVERHEAD_POINTS = 4


# --------------------------------------------------------------------------- preparation


def _annotated(results: pd.DataFrame) -> pd.DataFrame:
    """All rows with canonical variant names and the derived columns (see `prepare`).

    Computed over whole-phase and profile rows together, so a point's series is named the
    same in the profile figure as in every other figure.
    """
    df = results.copy()
    df["variant"] = df["variant"].map(palette.canonical)
    varying = [c for c in SETTING_COLUMNS if c in df and not df.empty and df.groupby("variant")[c].nunique().max() > 1]
    identity = ["variant", *varying, *SWEEP_AXES, "phase", "metric", *(["module"] if "module" in df else [])]
    if df["run_id"].nunique() > 1 and df.duplicated(identity).any():
        varying.append("run_id")
    df["setting"] = df[varying].astype(str).agg(", ".join, axis=1) if varying else ""
    df["series"] = np.where(df["setting"] == "", df["variant"], df["variant"] + " (" + df["setting"] + ")")
    # The models pad clips to whole 64-frame blocks, so for lengths that are not multiples of
    # 0.625 s the true count is up to two tokens more; that is invisible on a context-length axis.
    df["context_tokens"] = df["audio_seconds"] * TOKENS_PER_SECOND + df["prompt_tokens"]
    df["workload"] = np.select(
        [df["phase"] == "train_step", df["phase"] == "task"], ["train", "task"], default="inference"
    )
    return df


def prepare(results: pd.DataFrame) -> pd.DataFrame:
    """Whole-phase rows (no profile rows) with canonical variant names and the derived columns.

    Adds: `setting` (the SETTING_COLUMNS that vary within a variant, plus the run id when two
    runs measured the same point, joined by ", "; "" when nothing varies), `series`
    (variant plus setting: one line in a figure), `context_tokens` (audio tokens + prompt),
    `workload` ("train" for train_step rows, "task" for task rows, else "inference") and
    `below_resolution` (the value is below its meter's resolution, `resolution.below`).
    """
    df = _annotated(results)
    df = df[~profiles.is_profile_row(df)].reset_index(drop=True)
    df["below_resolution"] = resolution.below(df)
    return df


def prepare_profiles(results: pd.DataFrame) -> pd.DataFrame:
    """The profile rows (`profiles.is_profile_row`) with the columns `prepare` adds."""
    df = _annotated(results)
    return df[profiles.is_profile_row(df)].reset_index(drop=True)


def ok_values(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that measured something: status ok, a finite value, not below its meter's resolution."""
    resolved = ~df["below_resolution"] if "below_resolution" in df else True
    return df[(df["status"] == "ok") & np.isfinite(df["value"].astype(float)) & resolved]


def failed(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of points that failed (oom, timeout, crash, error); skipped points are not failures."""
    return df[df["status"].isin(FAILED_STATUSES)]


def select(df: pd.DataFrame, metric: str | tuple[str, ...], phase: str | tuple[str, ...] | None = None) -> pd.DataFrame:
    metrics = (metric,) if isinstance(metric, str) else metric
    rows = df[df["metric"].isin(metrics)]
    if phase is not None:
        rows = rows[rows["phase"].isin((phase,) if isinstance(phase, str) else phase)]
    return rows


def sweep_slice(df: pd.DataFrame, vary: tuple[str, ...]) -> tuple[pd.DataFrame, dict]:
    """Rows where the sweep axes not in `vary` take one value each; (rows, those fixed values).

    The fixed values are those that keep the most distinct (series, varied value) pairs, ties
    going to the smallest (batch 1 before batch 16), so a length plot shows the longest
    length sweep the run has.
    """
    fixed_axes = [a for a in SWEEP_AXES if a not in vary]
    if df.empty or not fixed_axes:
        return df, {}
    coverage = (
        df.drop_duplicates(["series", *vary, *fixed_axes])
        .groupby(fixed_axes, dropna=False)
        .size()
        .reset_index(name="pairs")
        .sort_values(["pairs", *fixed_axes], ascending=[False] + [True] * len(fixed_axes))
    )
    best = coverage.iloc[0]
    fixed = {a: best[a] for a in fixed_axes}
    return at_fixed(df, fixed), fixed


def at_fixed(df: pd.DataFrame, fixed: dict) -> pd.DataFrame:
    """Rows whose sweep axes equal `fixed` (NaN matching NaN)."""
    if not fixed:
        return df
    mask = np.logical_and.reduce([(df[a] == v) | (df[a].isna() & pd.isna(v)) for a, v in fixed.items()])
    return df[mask]


def describe_fixed(fixed: dict) -> str:
    """'batch 1, prompt 16 tokens, 32 new tokens' for the axes a figure holds fixed."""
    names = {
        "batch_size": lambda v: f"batch {int(v)}",
        "audio_seconds": lambda v: f"{v:g} s audio",
        "prompt_tokens": lambda v: f"prompt {int(v)} tokens",
        "new_tokens": lambda v: f"{int(v)} new tokens",
    }
    return ", ".join(names[a](v) for a, v in fixed.items() if a in names)


def series_points(df: pd.DataFrame, x: str) -> pd.DataFrame:
    """One row per (series, x): the median value where several rows share a point."""
    return (
        df.groupby(["series", "variant", "setting", x], as_index=False)
        .agg(value=("value", "median"), lo=("lo", "median"), hi=("hi", "median"), unit=("unit", "first"))
        .sort_values(["series", x])
    )


def samples_by_row(df: pd.DataFrame, samples: pd.DataFrame) -> pd.Series:
    """For each row of df, its raw samples as an array (empty when the run kept none)."""
    if samples.empty or df.empty:
        return pd.Series([np.empty(0)] * len(df), index=df.index, dtype=object)
    grouped = {
        key: values.to_numpy(dtype=float)
        for key, values in samples.dropna(subset=["value"]).groupby(["run_id", "point_id", "phase", "metric"])["value"]
    }
    keys = zip(df["run_id"], df["point_id"], df["phase"], df["metric"])
    return pd.Series([grouped.get(tuple(map(str, k)), np.empty(0)) for k in keys], index=df.index, dtype=object)


# --------------------------------------------------------------------------- scaling exponents


@dataclass(frozen=True)
class PowerLawFit:
    """Slope of log(value) on log(x) over [x_min, x_max], with a bootstrap interval.

    method: how the interval was made ("raw samples": each point's timing samples resampled;
    "fit residuals": residuals of the log-log fit resampled, for metrics without samples).
    overhead_limited: the fixed cost is above MAX_OVERHEAD_SHARE even at the longest lengths,
    so the slope understates how the length-dependent part grows.
    """

    exponent: float
    ci_low: float
    ci_high: float
    x_min: float
    x_max: float
    n_points: int
    method: str
    overhead_limited: bool


def overhead_share(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Share of each value that a fixed cost explains, from fitting y = c + a·x^k (c ≥ 0).

    The fit minimises log-space residuals (every point counts alike whatever its magnitude)
    on values scaled by their geometric means. x, y: (n,) positive, n ≥ MIN_OVERHEAD_POINTS.
    """
    x_scale, y_scale = np.exp(np.log(x).mean()), np.exp(np.log(y).mean())
    log_x, log_y = np.log(x / x_scale), np.log(y / y_scale)
    slope, intercept = np.polyfit(log_x, log_y, 1)

    def residuals(params: np.ndarray) -> np.ndarray:
        log_a, k, c = params
        return np.log(c + np.exp(log_a + k * log_x)) - log_y

    start = np.array([intercept, min(max(slope, 0.05), 4.0), 0.1 * np.exp(log_y.min())])
    fit = least_squares(residuals, start, bounds=([-np.inf, 0.0, 0.0], [np.inf, 5.0, np.inf]))
    log_a, k, c = fit.x
    return c / (c + np.exp(log_a + k * log_x))


def fit_range(x: np.ndarray, y: np.ndarray, min_x: float | None = None) -> tuple[np.ndarray, bool]:
    """(mask of the points to fit, overhead_limited). x ascending and unique.

    With `min_x` the range is x ≥ min_x. Otherwise it starts where the fixed cost falls to
    MAX_OVERHEAD_SHARE; if it never does, it is the MIN_FIT_POINTS longest lengths (flagged).
    """
    if min_x is not None:
        return x >= min_x, False
    if len(x) < MIN_OVERHEAD_POINTS:
        return np.ones(len(x), dtype=bool), False
    applies = overhead_share(x, y) <= MAX_OVERHEAD_SHARE
    if applies.sum() >= MIN_FIT_POINTS:
        # Overhead shrinks with length, so the range is a tail; keep it contiguous.
        return x >= x[applies].min(), False
    tail = np.zeros(len(x), dtype=bool)
    tail[-MIN_FIT_POINTS:] = True
    return tail, True


def fit_power_law(
    x: np.ndarray,
    y: np.ndarray,
    samples: list[np.ndarray] | None = None,
    min_x: float | None = None,
    rng: np.random.Generator | None = None,
    n_boot: int = resample.N_BOOT,
) -> PowerLawFit | None:
    """The scaling exponent of y in x with a 95 % bootstrap interval; None below MIN_FIT_POINTS.

    x, y: (n,) with x unique and ascending, y > 0. samples: per point, its raw samples (the
    interval resamples them when every point in range has at least two), else residuals.
    """
    rng = rng or resample.generator()
    mask, limited = fit_range(x, y, min_x)
    if mask.sum() < MIN_FIT_POINTS:
        return None
    log_x, log_y = np.log(x[mask]), np.log(y[mask])
    exponent = float(resample.loglog_slopes(log_x, log_y))
    in_range = [s for s, m in zip(samples, mask) if m] if samples is not None else []
    if in_range and all(np.isfinite(s).sum() >= 2 for s in in_range):
        medians = np.stack([resample.resampled_medians(s[np.isfinite(s)], n_boot, rng) for s in in_range], axis=1)
        replicates = resample.loglog_slopes(log_x, np.log(np.clip(medians, 1e-300, None)))
        method = "raw samples"
    else:
        intercept = log_y.mean() - exponent * log_x.mean()
        fitted = intercept + exponent * log_x
        n = len(log_x)
        # Residuals of a two-parameter fit are shrunk by sqrt((n-2)/n); undo that.
        residuals = (log_y - fitted) * math.sqrt(n / (n - 2))
        draws = residuals[rng.integers(0, n, size=(n_boot, n))]
        replicates = resample.loglog_slopes(log_x, fitted + draws)
        method = "fit residuals"
    low, high = resample.percentile_interval(replicates)
    return PowerLawFit(exponent, low, high, float(x[mask][0]), float(x[mask][-1]), int(mask.sum()), method, limited)


def scaling_exponents(
    df: pd.DataFrame, samples: pd.DataFrame, min_seconds: float | None = None, rng: np.random.Generator | None = None
) -> pd.DataFrame:
    """Exponent of each cost metric in audio length, per series and phase.

    One row per (series, phase, metric) with at least MIN_FIT_POINTS lengths in range:
    series, variant, setting, phase, metric, exponent, ci_low, ci_high, x_min, x_max,
    n_points, method, overhead_limited, fixed (the sweep axes held fixed).
    """
    rng = rng or resample.generator()
    rows = []
    measured = ok_values(select(df, COST_METRICS))
    measured = measured[(measured["value"] > 0) & (measured["audio_seconds"] > 0)]
    for (phase, metric), group in measured.groupby(["phase", "metric"], sort=False):
        sliced, fixed = sweep_slice(group, vary=("audio_seconds",))
        sliced = sliced.assign(samples=samples_by_row(sliced, samples))
        for (series, variant, setting), points in sliced.groupby(["series", "variant", "setting"]):
            points = points.sort_values("audio_seconds").drop_duplicates("audio_seconds")
            fit = fit_power_law(
                points["audio_seconds"].to_numpy(float),
                points["value"].to_numpy(float),
                list(points["samples"]),
                min_seconds,
                rng,
            )
            if fit is not None:
                rows.append({"series": series, "variant": variant, "setting": setting, "phase": phase,
                             "metric": metric, **fit.__dict__, "fixed": describe_fixed(fixed)})
    columns = ["series", "variant", "setting", "phase", "metric", *PowerLawFit.__dataclass_fields__, "fixed"]
    return _ordered(pd.DataFrame(rows, columns=columns))


# --------------------------------------------------------------------------- ratios and crossovers


def crossing(x: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """Length where ratio falls below 1 for good, interpolated in log-log, per replicate.

    x: (n,) ascending; ratio: (..., n) > 0. Returns (...,) lengths; +inf where the last ratio
    is still ≥ 1 (no crossover in range); -inf where every ratio is < 1 (cheaper throughout).
    """
    log_x, log_r = np.log(x), np.log(ratio)
    below = log_r < 0
    n = below.shape[-1]
    # Index of the last point at or above 1; the crossing lies between it and the next one.
    last_above = n - 1 - np.argmax(~below[..., ::-1], axis=-1)
    i = np.clip(last_above, 0, n - 2)
    r0 = np.take_along_axis(log_r, i[..., None], -1)[..., 0]
    r1 = np.take_along_axis(log_r, (i + 1)[..., None], -1)[..., 0]
    # Replicates without a crossing give meaningless t (even inf); they are replaced below.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        t = r0 / (r0 - r1)
        lengths = np.exp(log_x[i] + t * (log_x[i + 1] - log_x[i]))
    lengths = np.where(below.all(axis=-1), -np.inf, lengths)
    return np.where(~below[..., -1], np.inf, lengths)


@dataclass(frozen=True)
class Crossover:
    """Where the numerator variant becomes cheaper than the denominator, with its interval.

    outcome: "crossover" | "no crossover" (still dearer at the longest common length) |
    "cheaper throughout" (already cheaper at the shortest). share: the fraction of
    bootstrap replicates that cross inside the range (nan without samples).
    """

    outcome: str
    length: float
    ci_low: float
    ci_high: float
    share: float
    x_min: float
    x_max: float


def crossover(
    x: np.ndarray,
    y_num: np.ndarray,
    y_den: np.ndarray,
    samples_num: list[np.ndarray] | None = None,
    samples_den: list[np.ndarray] | None = None,
    rng: np.random.Generator | None = None,
    n_boot: int = resample.N_BOOT,
) -> Crossover:
    """Crossover of y_num / y_den through 1 over common lengths x (n ≥ 2, ascending).

    The interval resamples both variants' raw samples when every point has at least two;
    otherwise the length is given without one.
    """
    rng = rng or resample.generator()
    point = float(crossing(x, y_num / y_den))
    outcome = "crossover" if math.isfinite(point) else ("no crossover" if point > 0 else "cheaper throughout")
    low = high = share = float("nan")
    all_samples = (samples_num or []) + (samples_den or [])
    if len(all_samples) == 2 * len(x) and all(np.isfinite(s).sum() >= 2 for s in all_samples):
        def medians(sets: list[np.ndarray]) -> np.ndarray:
            return np.stack([resample.resampled_medians(s[np.isfinite(s)], n_boot, rng) for s in sets], axis=1)

        replicates = crossing(x, medians(samples_num) / np.clip(medians(samples_den), 1e-300, None))
        inside = np.isfinite(replicates)
        share = float(inside.mean())
        if outcome == "crossover":
            low, high = resample.percentile_interval(replicates[inside])
    return Crossover(outcome, point if outcome == "crossover" else float("nan"), low, high, share,
                     float(x[0]), float(x[-1]))


def _pairs_present(df: pd.DataFrame) -> list[tuple[str, str]]:
    variants = set(df["variant"])
    return [(a, b) for a, b in RATIO_PAIRS if a in variants and b in variants]


def pair_ratios(df: pd.DataFrame, x: str = "audio_seconds") -> pd.DataFrame:
    """Numerator ÷ transformer ratio of every cost metric at common x, per pair and phase.

    Columns: pair, numerator, setting, phase, metric, x, ratio, lo, hi (lo/hi from the two
    rows' lo/hi: the widest ratio they allow; nan where either lacks them), fixed.
    """
    rows = []
    measured = ok_values(select(df, COST_METRICS))
    measured = measured[~measured["phase"].isin(SHARED_PHASES)]
    for (phase, metric), group in measured.groupby(["phase", "metric"], sort=False):
        sliced, fixed = sweep_slice(group, vary=(x,))
        points = series_points(sliced, x)
        for num, den in _pairs_present(points):
            joined = points[points["variant"] == num].merge(
                points[points["variant"] == den], on=["setting", x], suffixes=("_n", "_d")
            )
            joined = joined[(joined["value_n"] > 0) & (joined["value_d"] > 0)]
            for r in joined.itertuples(index=False):
                rows.append({"pair": f"{num} ÷ {den}", "numerator": num, "setting": r.setting, "phase": phase,
                             "metric": metric, "x": getattr(r, x), "ratio": r.value_n / r.value_d,
                             "lo": r.lo_n / r.hi_d, "hi": r.hi_n / r.lo_d, "fixed": describe_fixed(fixed)})
    return pd.DataFrame(rows, columns=["pair", "numerator", "setting", "phase", "metric", "x", "ratio", "lo", "hi", "fixed"])


def crossovers(df: pd.DataFrame, samples: pd.DataFrame, rng: np.random.Generator | None = None) -> pd.DataFrame:
    """Crossover audio length of every pair, phase and cost metric measured at ≥ 2 common lengths.

    Columns: pair, numerator, setting, phase, metric, outcome, length, ci_low, ci_high,
    share, x_min, x_max, fixed.
    """
    rng = rng or resample.generator()
    rows = []
    measured = ok_values(select(df, COST_METRICS))
    measured = measured[(measured["value"] > 0) & ~measured["phase"].isin(SHARED_PHASES)]
    for (phase, metric), group in measured.groupby(["phase", "metric"], sort=False):
        sliced, fixed = sweep_slice(group, vary=("audio_seconds",))
        sliced = sliced.drop_duplicates(["series", "audio_seconds"])
        sliced = sliced.assign(samples=samples_by_row(sliced, samples))
        for num, den in _pairs_present(sliced):
            joined = sliced[sliced["variant"] == num].merge(
                sliced[sliced["variant"] == den], on=["setting", "audio_seconds"], suffixes=("_n", "_d")
            )
            for setting, common in joined.groupby("setting"):
                common = common.sort_values("audio_seconds")
                if len(common) < 2:
                    continue
                found = crossover(common["audio_seconds"].to_numpy(float), common["value_n"].to_numpy(float),
                                  common["value_d"].to_numpy(float), list(common["samples_n"]),
                                  list(common["samples_d"]), rng)
                rows.append({"pair": f"{num} ÷ {den}", "numerator": num, "setting": setting, "phase": phase,
                             "metric": metric, **found.__dict__, "fixed": describe_fixed(fixed)})
    columns = ["pair", "numerator", "setting", "phase", "metric", *Crossover.__dataclass_fields__, "fixed"]
    return pd.DataFrame(rows, columns=columns)


def largest_batch_ratios(df: pd.DataFrame) -> pd.DataFrame:
    """Throughput of each pair at the largest batch both ran, per phase (fixed audio length).

    Columns: pair, numerator, setting, phase, batch_size, value_n, value_d, unit, ratio, fixed.
    """
    rows = []
    measured = ok_values(select(df, "throughput"))
    for phase, group in measured[~measured["phase"].isin(SHARED_PHASES)].groupby("phase", sort=False):
        sliced, fixed = sweep_slice(group, vary=("batch_size",))
        points = series_points(sliced, "batch_size")
        for num, den in _pairs_present(points):
            joined = points[points["variant"] == num].merge(
                points[points["variant"] == den], on=["setting", "batch_size"], suffixes=("_n", "_d")
            )
            for setting, common in joined.groupby("setting"):
                top = common.sort_values("batch_size").iloc[-1]
                rows.append({"pair": f"{num} ÷ {den}", "numerator": num, "setting": setting, "phase": phase,
                             "batch_size": int(top["batch_size"]), "value_n": top["value_n"],
                             "value_d": top["value_d"], "unit": top["unit_n"],
                             "ratio": top["value_n"] / top["value_d"], "fixed": describe_fixed(fixed)})
    columns = ["pair", "numerator", "setting", "phase", "batch_size", "value_n", "value_d", "unit", "ratio", "fixed"]
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------- failures


def point_status(df: pd.DataFrame) -> pd.DataFrame:
    """One row per measured point (series, workload, sweep axes) with the status of the point.

    A point failed when any of its rows failed (the first failure's status); it is "skipped"
    when all its rows were skipped, else "ok".
    """
    keys = ["series", "variant", "workload", *SWEEP_AXES]
    rows = df[df["workload"] != "task"]

    def status(statuses: pd.Series) -> str:
        failures = [s for s in statuses if s in FAILED_STATUSES]
        if failures:
            return failures[0]
        return "ok" if (statuses == "ok").any() else "skipped"

    return rows.groupby(keys, as_index=False)["status"].agg(status)


def length_frontier(df: pd.DataFrame) -> pd.DataFrame:
    """The longest audio each series handled before failing, per workload and batch size.

    Only (series, workload, batch size) groups measured at two or more lengths count: a
    batch sweep at one length says nothing about how long an input a variant can take.
    Columns: series, variant, workload, batch_size, longest_ok (s; nan if none), first_failure
    (s; nan if none failed), failure (its status, "" if none).
    """
    points = point_status(df)
    rows = []
    for (series, variant, workload, batch), group in points.groupby(["series", "variant", "workload", "batch_size"]):
        if group["audio_seconds"].nunique() < 2:
            continue
        failures = group[group["status"].isin(FAILED_STATUSES)].sort_values("audio_seconds")
        first = failures.iloc[0] if len(failures) else None
        ok = group[group["status"] == "ok"]
        if first is not None:
            ok = ok[ok["audio_seconds"] < first["audio_seconds"]]
        rows.append({"series": series, "variant": variant, "workload": workload, "batch_size": int(batch),
                     "longest_ok": float(ok["audio_seconds"].max()) if len(ok) else float("nan"),
                     "first_failure": float(first["audio_seconds"]) if first is not None else float("nan"),
                     "failure": first["status"] if first is not None else ""})
    columns = ["series", "variant", "workload", "batch_size", "longest_ok", "first_failure", "failure"]
    return _ordered(pd.DataFrame(rows, columns=columns))


# --------------------------------------------------------------------------- accuracy vs cost

# Cost of a task point, in order of preference: the first available for every task series wins.
COST_OF_TASK = (("e2e", "latency_ms"), ("e2e", "flops"), ("e2e", "flops_analytic"), ("prefill", "latency_ms"))


def pareto_front(cost: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Mask of points no other point beats: not (cost ≤ and score ≥, one strictly). (n,) -> (n,)."""
    cost, score = np.asarray(cost, float), np.asarray(score, float)
    no_worse = (cost[None, :] <= cost[:, None]) & (score[None, :] >= score[:, None])
    better = (cost[None, :] < cost[:, None]) | (score[None, :] > score[:, None])
    return ~(no_worse & better).any(axis=1)


# Task rows that describe an evaluation rather than score it: how often a generated answer matched
# a label exactly (before nearest-label matching), and how many clips could not be read.
TASK_DIAGNOSTICS = frozenset({"exact_match_rate", "skipped_clips"})


def accuracy_cost(df: pd.DataFrame) -> pd.DataFrame:
    """Task scores (not TASK_DIAGNOSTICS) beside each series' inference cost, with the Pareto front
    per dataset and metric.

    A task row's cost is the cost metric (COST_OF_TASK) of the same series at the smallest
    batch and the measured length nearest the task's audio length.
    Columns: series, variant, setting, dataset, metric, score, cost, cost_phase, cost_metric,
    cost_unit, pareto.
    """
    columns = ["series", "variant", "setting", "dataset", "metric", "score", "cost", "cost_phase",
               "cost_metric", "cost_unit", "pareto"]
    tasks = ok_values(df[(df["phase"] == "task") & ~df["metric"].isin(TASK_DIAGNOSTICS)])
    if tasks.empty:
        return pd.DataFrame(columns=columns)
    inference = ok_values(df[df["workload"] == "inference"])
    wanted = set(tasks["series"])
    available = [
        (phase, metric) for phase, metric in COST_OF_TASK
        if set(select(inference, metric, phase)["series"]) & wanted
    ]
    if not available:
        return pd.DataFrame(columns=columns)
    phase, metric = max(available, key=lambda pm: len(set(select(inference, pm[1], pm[0])["series"]) & wanted))
    costs = select(inference, metric, phase)
    rows = []
    for task in tasks.itertuples(index=False):
        candidates = costs[costs["series"] == task.series]
        if candidates.empty:
            continue
        candidates = candidates[candidates["batch_size"] == candidates["batch_size"].min()]
        distance = np.abs(np.log(np.maximum(candidates["audio_seconds"], 1e-9) / max(task.audio_seconds, 1e-9)))
        nearest = candidates.loc[distance.idxmin()]
        rows.append({"series": task.series, "variant": task.variant, "setting": task.setting,
                     "dataset": task.dataset, "metric": task.metric, "score": task.value,
                     "cost": nearest["value"], "cost_phase": phase, "cost_metric": metric,
                     "cost_unit": nearest["unit"]})
    table = pd.DataFrame(rows, columns=columns[:-1])
    table["pareto"] = False
    for _, group in table.groupby(["dataset", "metric"]):
        table.loc[group.index, "pareto"] = pareto_front(group["cost"], group["score"])
    return _ordered(table)


def task_scores(df: pd.DataFrame) -> pd.DataFrame:
    """Every task score (not TASK_DIAGNOSTICS), with or without a cost beside it.

    Columns: series, variant, setting, dataset, metric, score, n, checkpoint.
    """
    tasks = ok_values(df[(df["phase"] == "task") & ~df["metric"].isin(TASK_DIAGNOSTICS)])
    table = pd.DataFrame({"series": tasks["series"], "variant": tasks["variant"], "setting": tasks["setting"],
                          "dataset": tasks["dataset"], "metric": tasks["metric"], "score": tasks["value"],
                          "n": tasks["n"], "checkpoint": tasks["checkpoint"]})
    return _ordered(table.reset_index(drop=True))


def accuracy_trade(table: pd.DataFrame) -> pd.DataFrame:
    """Per pair and dataset/metric: the score change and the cost factor against the transformer.

    Columns: pair, numerator, setting, dataset, metric, score_n, score_d, delta, cost_ratio,
    cost_metric, cost_phase.
    """
    rows = []
    for num, den in _pairs_present(table):
        joined = table[table["variant"] == num].merge(
            table[table["variant"] == den], on=["setting", "dataset", "metric"], suffixes=("_n", "_d")
        )
        for r in joined.itertuples(index=False):
            rows.append({"pair": f"{num} ÷ {den}", "numerator": num, "setting": r.setting, "dataset": r.dataset,
                         "metric": r.metric, "score_n": r.score_n, "score_d": r.score_d,
                         "delta": r.score_n - r.score_d, "cost_ratio": r.cost_n / r.cost_d,
                         "cost_metric": r.cost_metric_n, "cost_phase": r.cost_phase_n})
    return pd.DataFrame(rows, columns=["pair", "numerator", "setting", "dataset", "metric", "score_n", "score_d",
                                       "delta", "cost_ratio", "cost_metric", "cost_phase"])


# --------------------------------------------------------------------------- environment

# Context columns of the results table that trace a figure to its setting.
TRACE_COLUMNS = ("device_name", "host", "git_sha", "torch_version", "transformers_version",
                 "scan_backend", "attn_backend", "mode")


def _flatten(value: object, name: str = "") -> dict[str, str]:
    """Nested dicts and lists -> {"a.b.0.c": "text"}; a list of plain values becomes one entry."""
    prefix = f"{name}." if name else ""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flatten(item, f"{prefix}{key}").items()}
    if isinstance(value, (list, tuple)) and any(isinstance(item, (dict, list, tuple)) for item in value):
        return {k: v for i, item in enumerate(value) for k, v in _flatten(item, f"{prefix}{i}").items()}
    if isinstance(value, (list, tuple)):
        return {name: ", ".join(map(str, value))}
    return {name: "" if value is None else str(value)}


def _from_here(path: str) -> str:
    """`path` relative to the working folder when it lies inside it, else unchanged."""
    try:
        return Path(path).relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path


def environment_table(metas: dict[str, dict], results: pd.DataFrame) -> pd.DataFrame:
    """Key/value environment of each run, each fact once: its run.json without the resolved
    suite (that is what ran, not where), its sessions only where they differ from the run's
    environment, and the distinct values of the results' trace columns not shown already.
    Index: key; one column per run id.
    """
    columns = {}
    for run_id in results["run_id"].unique():
        meta = metas.get(run_id, {})
        values = _flatten({k: v for k, v in meta.items() if k not in ("suite", "sessions")})
        if "source" in values:  # the suite file: as the user named it from the project, not where it lay
            values["source"] = _from_here(values["source"])
        # run.json repeats the environment per session: a session's entries are kept only
        # where they differ from the run's.
        for i, session in enumerate(meta.get("sessions", [])):
            own = _flatten(session, f"sessions.{i}")
            values.update({k: v for k, v in own.items()
                           if values.get(k.replace(f"sessions.{i}.", "", 1)) != v})
        rows = results[results["run_id"] == run_id]
        shown = set(values.values())
        for col in TRACE_COLUMNS:
            if col in rows:
                distinct = ", ".join(sorted({str(v) for v in rows[col].dropna() if str(v)}))
                if distinct and distinct not in shown:  # e.g. the git sha, already in the environment
                    values.setdefault(f"results.{col}", distinct)
        columns[str(run_id)] = values
    return pd.DataFrame(columns).fillna("")


def _ordered(table: pd.DataFrame) -> pd.DataFrame:
    """Rows in the report's variant order (transformer, SSM, hybrids, others), stable otherwise."""
    if table.empty or "variant" not in table:
        return table
    rank = {v: i for i, v in enumerate(palette.variant_order(table["variant"]))}
    return table.sort_values("variant", key=lambda s: s.map(rank), kind="stable").reset_index(drop=True)
