"""The report's numbers on tables with known answers: power laws, crossovers, fronts, frontiers."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from harness import schema
from harness.report import analysis

LENGTHS = np.array([5.0, 10, 20, 40, 80, 160, 320, 640])
SSM_COEF, TF_COEF = 10.0, 0.1  # y_ssm = 10·L, y_tf = 0.1·L²: equal at L = 100 s
TRUE_CROSSOVER = SSM_COEF / TF_COEF


def _point(variant: str, seconds: float, **extra) -> dict:
    encoder, lm = variant.split("+")
    return {"run_id": "r", "point_id": f"{variant}-{seconds:g}-{extra.get('batch_size', 1)}", "suite": "t",
            "variant": variant, "encoder": encoder, "lm": lm, "size": "small", "device": "cpu", "dtype": "fp32",
            "batch_size": 1, "audio_seconds": seconds, "prompt_tokens": 8, "new_tokens": 4, **extra}


def power_law_run(seed: int, noise: float = 0.05, n_samples: int = 9) -> tuple[pd.DataFrame, pd.DataFrame]:
    """e2e latency of dass+mamba ∝ L and of ast+llama ∝ L², with log-normal noise on 9 samples each."""
    rng = np.random.default_rng(seed)
    rows, samples = [], []
    for variant, coef, exponent in (("dass+mamba", SSM_COEF, 1.0), ("ast+llama", TF_COEF, 2.0)):
        for seconds in LENGTHS:
            point = _point(variant, seconds)
            values = coef * seconds**exponent * rng.lognormal(0.0, noise, n_samples)
            lo, median, hi = np.percentile(values, [10, 50, 90])
            rows.append({**point, "phase": "e2e", "metric": "latency_ms", "value": median, "unit": "ms",
                         "lo": lo, "hi": hi, "n": n_samples, "status": "ok", "error": ""})
            samples += [{"run_id": "r", "point_id": point["point_id"], "phase": "e2e", "metric": "latency_ms",
                         "i": i, "value": v, "unit": "ms"} for i, v in enumerate(values)]
    return schema.conform(rows), pd.DataFrame(samples)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exponents_and_crossover_are_recovered_from_noisy_power_laws(seed):
    results, samples = power_law_run(seed)
    df = analysis.prepare(results)
    exponents = analysis.scaling_exponents(df, samples).set_index("variant")
    for variant, truth in (("dass+mamba", 1.0), ("ast+llama", 2.0)):
        fit = exponents.loc[variant]
        assert abs(fit["exponent"] - truth) < 0.05
        assert fit["ci_low"] <= fit["exponent"] <= fit["ci_high"]
        assert fit["ci_high"] - fit["ci_low"] < 0.2
        assert fit["method"] == "raw samples"
    cross = analysis.crossovers(df, samples).iloc[0]
    assert cross["outcome"] == "crossover"
    assert abs(cross["length"] / TRUE_CROSSOVER - 1) < 0.10
    assert cross["ci_low"] < TRUE_CROSSOVER < cross["ci_high"]
    assert cross["share"] > 0.9


def test_without_samples_the_interval_comes_from_fit_residuals():
    results, _ = power_law_run(0)
    df = analysis.prepare(results)
    empty = pd.DataFrame(columns=["run_id", "point_id", "phase", "metric", "i", "value", "unit"])
    exponents = analysis.scaling_exponents(df, empty).set_index("variant")
    assert set(exponents["method"]) == {"fit residuals"}
    assert abs(exponents.loc["ast+llama", "exponent"] - 2.0) < 0.05
    cross = analysis.crossovers(df, empty).iloc[0]
    assert abs(cross["length"] / TRUE_CROSSOVER - 1) < 0.10
    assert np.isnan(cross["ci_low"]) and np.isnan(cross["share"])


def test_fit_range_leaves_out_lengths_dominated_by_a_fixed_cost():
    x = np.geomspace(1, 3000, 14)
    y = 200.0 + 0.01 * x**2  # the fixed cost is above 10 % below ~420 s
    naive = np.polyfit(np.log(x), np.log(y), 1)[0]
    fit = analysis.fit_power_law(x, y)
    assert naive < 1.2  # the whole range would hide the quadratic growth
    assert 400 < fit.x_min < 500 and fit.n_points == 4
    assert abs(fit.exponent - 2.0) < 0.1
    assert not fit.overhead_limited


def test_min_seconds_sets_the_fit_range_and_too_few_lengths_give_no_fit():
    x = np.geomspace(1, 1000, 10)
    fit = analysis.fit_power_law(x, 3 * x**1.5, min_x=10.0)
    assert fit.x_min >= 10 and fit.n_points == int((x >= 10).sum())
    assert abs(fit.exponent - 1.5) < 1e-9
    assert analysis.fit_power_law(x[:2], x[:2]) is None


def test_constant_cost_is_flagged_as_overhead_limited_with_exponent_zero():
    x = np.geomspace(1, 1000, 8)
    fit = analysis.fit_power_law(x, np.full_like(x, 5.0))
    assert fit.overhead_limited and abs(fit.exponent) < 1e-9


def test_crossing_outcomes():
    x = np.array([1.0, 10.0, 100.0])
    assert analysis.crossing(x, np.array([4.0, 2.0, 0.5])) == pytest.approx(10 * 10 ** (np.log(2) / np.log(4)))
    assert analysis.crossing(x, np.array([2.0, 1.5, 1.1])) == np.inf  # still dearer at the longest length
    assert analysis.crossing(x, np.array([0.9, 0.5, 0.1])) == -np.inf  # cheaper throughout
    # Cheaper, dearer, cheaper again: the crossing after which it stays cheaper counts.
    assert 10 < analysis.crossing(x, np.array([0.5, 2.0, 0.5])) < 100


def test_pareto_front():
    cost = np.array([1.0, 2.0, 3.0, 2.5])
    score = np.array([0.5, 0.7, 0.9, 0.6])
    assert analysis.pareto_front(cost, score).tolist() == [True, True, True, False]


def _rows(variant, seconds, status="ok", batch=1, phase="e2e", metric="latency_ms", value=1.0):
    return {**_point(variant, seconds, batch_size=batch), "phase": phase, "metric": metric,
            "value": value if status == "ok" else np.nan, "unit": "ms", "lo": np.nan, "hi": np.nan, "n": 1,
            "status": status, "error": "" if status == "ok" else "CUDA out of memory"}


def test_length_frontier_finds_the_first_failure_and_ignores_batch_sweeps():
    rows = [_rows("ast+llama", s) for s in (10, 30, 60)] + [_rows("ast+llama", 120, "oom"),
                                                           _rows("ast+llama", 240, "skipped")]
    rows += [_rows("dass+mamba", s) for s in (10, 30, 60, 120, 240)]
    rows += [_rows("ast+llama", 30, batch=b) for b in (2, 4)]  # one length: not a length sweep
    table = analysis.length_frontier(analysis.prepare(schema.conform(rows))).set_index("variant")
    assert len(table) == 2
    assert table.loc["ast+llama", "longest_ok"] == 60
    assert table.loc["ast+llama", "first_failure"] == 120 and table.loc["ast+llama", "failure"] == "oom"
    assert table.loc["dass+mamba", "longest_ok"] == 240 and table.loc["dass+mamba", "failure"] == ""


def test_sweep_slice_keeps_the_longest_sweep():
    rows = [_rows(v, s) for v in ("ast+llama", "dass+mamba") for s in (10, 30, 60)]
    rows += [_rows(v, 30, batch=b) for v in ("ast+llama", "dass+mamba") for b in (2, 4, 8)]
    df = analysis.prepare(schema.conform(rows))
    by_length, fixed = analysis.sweep_slice(df, ("audio_seconds",))
    assert fixed["batch_size"] == 1 and sorted(by_length["audio_seconds"].unique()) == [10, 30, 60]
    by_batch, fixed = analysis.sweep_slice(df, ("batch_size",))
    assert fixed["audio_seconds"] == 30 and sorted(by_batch["batch_size"].unique()) == [1, 2, 4, 8]


def test_series_split_by_the_settings_a_variant_varies():
    rows = [{**_rows("dass+mamba", 10), "variant": "ssm", "size": size} for size in ("tiny", "small")]
    rows.append({**_rows("ast+llama", 10), "variant": "transformer"})
    df = analysis.prepare(schema.conform(rows))
    assert set(df["variant"]) == {"dass+mamba", "ast+llama"}  # aliases resolved
    assert set(df["series"]) == {"dass+mamba (tiny)", "dass+mamba (small)", "ast+llama (small)"}


def test_accuracy_cost_uses_the_nearest_length_and_marks_the_front():
    rows = [_rows("ast+llama", s, value=v) for s, v in ((10, 100.0), (30, 400.0))]
    rows += [_rows("dass+mamba", s, value=v) for s, v in ((10, 50.0), (30, 120.0))]
    for variant, accuracy in (("ast+llama", 0.70), ("dass+mamba", 0.66)):
        rows.append({**_rows(variant, 10, phase="task", metric="accuracy", value=accuracy), "unit": "1",
                     "dataset": "esc50"})
        for diagnostic in analysis.TASK_DIAGNOSTICS:  # about the evaluation, not a score: never charted
            rows.append({**_rows(variant, 10, phase="task", metric=diagnostic, value=3.0), "dataset": "esc50"})
    table = analysis.accuracy_cost(analysis.prepare(schema.conform(rows))).set_index("variant")
    assert set(table["metric"]) == {"accuracy"}
    assert table.loc["ast+llama", "cost"] == 100.0 and table.loc["dass+mamba", "cost"] == 50.0
    assert table["pareto"].all()
    trade = analysis.accuracy_trade(table.reset_index()).iloc[0]
    assert trade["delta"] == pytest.approx(-0.04) and trade["cost_ratio"] == pytest.approx(0.5)


def test_every_variant_has_its_ratio_to_the_transformer_the_papers_pairs_first():
    assert analysis.RATIO_PAIRS[:3] == (("dass+mamba", "ast+llama"), ("dass+llama", "ast+llama"),
                                        ("ast+mamba", "ast+llama"))
    assert {("dass+mamba2", "ast+llama"), ("ast+mamba2", "ast+llama")} <= set(analysis.RATIO_PAIRS)
