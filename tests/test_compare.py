"""`lalm-bench compare`: rows matched by what was measured, ratios, and differences told from noise."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness import store
from harness.cli import main
from harness.report import comparison
from harness.report.synthetic import SyntheticSuite, write_run

SUITE = dict(variants=("ast+llama", "dass+mamba"), lengths=(5, 30, 120, 300), batches=(1, 4), batch_seconds=30,
             tasks=False, train=False, oom_from={})
SLOWDOWN = 1.5


def slow_down(run: Path, variant: str, factor: float) -> None:
    """Make every latency of `variant` in `run` `factor` times longer, samples included."""
    loaded = store.load_run(run)
    results, samples = loaded.results.copy(), loaded.samples.copy()
    rows = (results["variant"] == variant) & (results["metric"] == "latency_ms")
    results.loc[rows, ["value", "lo", "hi"]] *= factor
    slowed = samples["point_id"].isin(results.loc[rows, "point_id"]) & (samples["metric"] == "latency_ms")
    samples.loc[slowed, "value"] *= factor
    store.write_part(run, "synthetic", results, samples)
    store.compact(run)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    """A baseline and a rerun (other noise, other run id) whose dass+mamba is 1.5x slower."""
    base = tmp_path_factory.mktemp("compare")
    a = write_run(base / "a", SyntheticSuite(seed=1, **SUITE), run_id="baseline")
    b = write_run(base / "b", SyntheticSuite(seed=2, **SUITE), run_id="rerun")
    slow_down(b, "dass+mamba", SLOWDOWN)
    return a, b


def compare(a: Path, b: Path) -> tuple[pd.DataFrame, dict]:
    run_a, run_b = store.load_run(a), store.load_run(b)
    return comparison.compare(run_a.results, run_a.samples, run_b.results, run_b.samples)


def test_a_real_slowdown_is_found_and_noise_is_not(runs):
    table, counts = compare(*runs)
    assert counts["only_a"] == counts["only_b"] == 0  # run ids differ; rows still match
    latency = table[table["metric"] == "latency_ms"]
    slowed = latency[latency["variant"] == "dass+mamba"]
    assert (slowed["verdict"] == "worse").all()
    assert np.allclose(slowed["ratio"], SLOWDOWN, rtol=0.15)
    assert (slowed["ci_low"] > 1).all() and (slowed["p_value"] < 0.05).all()
    unchanged = latency[latency["variant"] == "ast+llama"]
    assert (unchanged["verdict"] == "within noise").mean() >= 0.8
    assert unchanged["ratio"].between(0.85, 1.15).all()
    # FLOPs carry no samples and did not change.
    assert set(table.loc[table["metric"] == "flops", "verdict"]) == {"same"}


def test_rows_match_on_what_was_measured_not_on_ids(runs):
    a, b = (store.load_run(r) for r in runs)
    renamed = b.results.assign(point_id="other-" + b.results["point_id"], suite="another suite",
                               scan_backend="another backend")
    samples = b.samples.assign(point_id="other-" + b.samples["point_id"])
    table, counts = comparison.compare(a.results, a.samples, renamed, samples)
    assert counts["only_a"] == counts["only_b"] == 0 and len(table) == counts["matched"] == len(a.results)
    assert "scan_backend" not in counts["key"] and "point_id" not in counts["key"]
    # Samples follow their rows through the new point ids.
    assert (table.loc[table["metric"] == "latency_ms", "n_b"] > 0).all()


def test_a_context_column_joins_the_key_when_it_tells_rows_apart(runs):
    a = store.load_run(runs[0])
    two_modes = pd.concat([a.results.assign(mode="eager"), a.results.assign(mode="compile")])
    table, counts = comparison.compare(two_modes, a.samples, two_modes, a.samples)
    assert "mode" in counts["key"] and counts["matched"] == len(two_modes)


@pytest.mark.parametrize("metric, ratio, verdict", [
    ("latency_ms", 1.5, "worse"), ("latency_ms", 0.5, "better"),
    ("throughput", 1.5, "better"), ("accuracy", 0.5, "worse"),
    ("params", 1.5, "higher"),
])
def test_verdict_knows_which_way_is_better(metric, ratio, verdict):
    assert comparison._verdict(metric, ratio, 0.001, ratio * 0.9, ratio * 1.1, 0.05) == verdict
    assert comparison._verdict(metric, ratio, 0.2, ratio * 0.9, ratio * 1.1, 0.05) == "within noise"
    assert comparison._verdict(metric, ratio, 0.001, 0.9, 1.1, 0.05) == "within noise"


def test_a_point_that_started_failing_shows_its_status(runs):
    a, b = (store.load_run(r) for r in runs)
    failing = b.results.copy()
    failing.loc[failing["audio_seconds"] == 300, ["status", "value"]] = ["oom", np.nan]
    table, _ = comparison.compare(a.results, a.samples, failing, b.samples)
    assert set(table.loc[table["audio_seconds"] == 300, "verdict"]) == {"ok → oom"}


def test_cli_prints_a_table_and_writes_csv_and_markdown(runs, tmp_path, capsys):
    csv, md = tmp_path / "out" / "cmp.csv", tmp_path / "out" / "cmp.md"
    assert main(["compare", str(runs[0]), str(runs[1]), "--csv", str(csv), "--md", str(md)]) == 0
    printed = capsys.readouterr().out
    assert "worse" in printed and "matched rows" in printed
    written = pd.read_csv(csv)
    assert {"value_a", "value_b", "ratio", "ci_low", "ci_high", "p_value", "verdict"} <= set(written.columns)
    assert md.read_text().count("\n| ") == len(written) + 1  # a header and a line per row


def test_runs_without_common_points_are_a_one_line_error(tmp_path, capsys):
    a = write_run(tmp_path / "a", SyntheticSuite(**{**SUITE, "variants": ("ast+llama",)}))
    b = write_run(tmp_path / "b", SyntheticSuite(**{**SUITE, "variants": ("dass+mamba",)}))
    assert main(["compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert "share no measured point" in err and len(err.strip().splitlines()) == 1
    assert main(["compare", str(a), str(tmp_path / "missing")]) == 2
