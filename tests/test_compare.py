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
             tasks=False, train=False, oom_from={}, profile_seconds=())
SLOWDOWN = 1.5


def slow_down(run: Path, variant: str, factor: float) -> None:
    """Make every latency of `variant` in `run` `factor` times longer, samples and throughput included."""
    loaded = store.load_run(run)
    results, samples = loaded.results.copy(), loaded.samples.copy()
    rows = (results["variant"] == variant) & (results["metric"] == "latency_ms")
    results.loc[rows, ["value", "lo", "hi"]] *= factor
    results.loc[(results["variant"] == variant) & (results["metric"] == "throughput"), ["value", "lo", "hi"]] /= factor
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
    assert not unchanged["verdict"].isin(comparison.DECIDED).any()
    assert (unchanged.loc[unchanged["n_a"] > 0, "verdict"] == "within noise").all()
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


@pytest.mark.parametrize("metric, change, verdict", [
    ("latency_ms", "higher", "worse"), ("latency_ms", "lower", "better"),
    ("throughput", "higher", "better"), ("accuracy", "lower", "worse"),
    ("params", "higher", "higher"), ("latency_ms", "none", "within noise"),
])
def test_verdict_knows_which_way_is_better(metric, change, verdict):
    assert comparison.verdict(metric, change) == verdict


def with_samples(run: Path, keep: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The run's results and only the first `keep` raw samples of each row."""
    loaded = store.load_run(run)
    return loaded.results, loaded.samples.groupby(["point_id", "phase", "metric"]).head(keep)


def test_too_few_samples_say_so_and_still_show_the_change(runs, tmp_path):
    """3 vs 3 samples cannot reach p < 0.05 whatever the data: a 4.6x slowdown is undecided, not noise."""
    slow = write_run(tmp_path / "slow", SyntheticSuite(seed=3, **SUITE), run_id="slow")
    slow_down(slow, "dass+mamba", 4.6)
    table, _ = comparison.compare(*with_samples(runs[0], 3), *with_samples(slow, 3))
    slowed = table[(table["variant"] == "dass+mamba") & (table["metric"] == "latency_ms")]
    assert (slowed["verdict"] == "too few samples").all()
    assert slowed["reading"].str.fullmatch(r"too few samples \(3 vs 3\) to decide; ×4\.\d+ slower").all()
    # Two samples are samples too: the phrase says how many there are.
    table, _ = comparison.compare(*with_samples(runs[0], 2), *with_samples(slow, 3))
    latency = table[table["metric"] == "latency_ms"]
    assert latency["reading"].str.startswith("too few samples (2 vs 3) to decide").all()


def test_throughput_is_judged_on_its_latency_samples(runs):
    table, _ = compare(*runs)
    slowed = table[table["variant"] == "dass+mamba"].set_index(["phase", "batch_size", "audio_seconds", "metric"])
    throughput = slowed.xs("throughput", level="metric")
    assert (throughput["verdict"] == "worse").all() and (throughput["n_b"] > 0).all()
    assert np.allclose(throughput["ratio"], 1 / SLOWDOWN, rtol=0.15)


def test_the_same_code_twice_is_not_a_change(tmp_path):
    """Two runs differing only in their noise: significant shifts of a few percent exist, and the
    minimum effect is what keeps them from being called better or worse."""
    a = write_run(tmp_path / "a", SyntheticSuite(seed=11, noise=0.02, **SUITE), run_id="a")
    b = write_run(tmp_path / "b", SyntheticSuite(seed=12, noise=0.02, **SUITE), run_id="b")
    table, _ = compare(a, b)
    assert not table["verdict"].isin(comparison.DECIDED).any()
    run_a, run_b = store.load_run(a), store.load_run(b)
    without_floor, _ = comparison.compare(run_a.results, run_a.samples, run_b.results, run_b.samples, min_effect=0)
    assert without_floor["verdict"].isin(comparison.DECIDED).any()


def test_one_line_per_point_with_its_metrics(runs):
    table, _ = compare(*runs)
    shown = comparison.display(table)
    points = table.groupby(["variant", "batch_size", "audio_seconds", "phase"]).ngroups
    assert len(shown.frame) == points
    assert list(shown.frame.columns[len(shown.identity):len(shown.identity) + 2]) == ["latency", "throughput"]
    assert "FLOPs (counted)" in shown.same  # equal everywhere: named once, not a column
    cell = shown.frame.loc[(shown.frame["variant"] == "dass+mamba") & (shown.frame["phase"] == "e2e"), "latency"]
    assert cell.str.contains(" → ").all() and cell.str.contains(r"worse: ×1\.\d+ slower").all()


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
    assert "worse" in printed and "matched values" in printed
    written = pd.read_csv(csv)
    assert {"value_a", "value_b", "ratio", "ci_low", "ci_high", "p_value", "verdict"} <= set(written.columns)
    points = written.groupby(["variant", "batch_size", "audio_seconds", "phase"]).ngroups
    assert md.read_text().count("\n| ") == points + 1  # a header and a line per point


def test_at_100_columns_the_identifying_columns_keep_their_width(runs, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["compare", str(runs[0]), str(runs[1])]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if line.startswith("│ ")]
    assert rows and all(len(line) <= 100 for line in lines if line.startswith(("│", "┃", "┏", "└")))
    header = next(line for line in lines if line.startswith("┃"))
    assert [c.strip() for c in header.strip("┃").split("┃")][:5] == ["variant", "batch", "audio", "phase", "status"]
    first_cells = [[c.strip() for c in row.strip("│").split("│")][:5] for row in rows]
    named = [cells for cells in first_cells if cells[0]]
    assert {cells[0] for cells in named} == {"ast+llama", "dass+mamba"}
    assert {cells[4] for cells in named} == {"ok"} and {cells[2] for cells in named} >= {"5 s", "300 s"}


def test_help_states_the_defaults_compare_uses(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default {comparison.ALPHA:g})" in text and f"(default {comparison.MIN_EFFECT:g})" in text


@pytest.mark.parametrize("option", ["--md", "--csv"])
def test_an_output_under_a_file_is_a_one_line_error(runs, tmp_path, capsys, option):
    (tmp_path / "file").write_text("x")
    assert main(["compare", str(runs[0]), str(runs[1]), option, str(tmp_path / "file" / "x")]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and len(err.strip().splitlines()) == 1


def test_a_negative_minimum_effect_is_a_one_line_error(runs, capsys):
    assert main(["compare", str(runs[0]), str(runs[1]), "--min-effect", "-0.1"]) == 2
    assert "--min-effect" in capsys.readouterr().err


def test_runs_without_common_points_are_a_one_line_error(tmp_path, capsys):
    a = write_run(tmp_path / "a", SyntheticSuite(**{**SUITE, "variants": ("ast+llama",)}))
    b = write_run(tmp_path / "b", SyntheticSuite(**{**SUITE, "variants": ("dass+mamba",)}))
    assert main(["compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert "share no measured point" in err and len(err.strip().splitlines()) == 1
    assert main(["compare", str(a), str(tmp_path / "missing")]) == 2


def test_values_below_the_meters_resolution_are_not_compared(runs):
    a, b = (store.load_run(r) for r in runs)
    tiny = {"source": "proc.VmHWM", "value": 4096.0}
    memory = (a.results["metric"] == "peak_mem_bytes")
    results_a = a.results.assign(**{k: a.results[k].where(~memory, v) for k, v in tiny.items()})
    results_b = b.results.assign(**{k: b.results[k].where(~memory, v * 3 if k == "value" else v)
                                    for k, v in tiny.items()})
    table, _ = comparison.compare(results_a, a.samples, results_b, b.samples)
    rows = table[table["metric"] == "peak_mem_bytes"]
    assert len(rows) and (rows["verdict"] == "below resolution").all()
    assert rows["reading"].str.fullmatch(r"both below the meter's resolution \(32\.0 MiB\)").all()


def test_a_machine_that_is_slower_throughout_is_named_as_such(tmp_path, capsys):
    a = write_run(tmp_path / "a", SyntheticSuite(seed=1, **SUITE), run_id="a")
    b = write_run(tmp_path / "b", SyntheticSuite(seed=2, **SUITE), run_id="b")
    table, _ = compare(a, b)
    shift, spread = comparison.latency_drift(table)
    assert 0.95 < shift < 1.05 and 1 <= spread < 1.1  # the same code: neither moves
    for variant in SUITE["variants"]:
        slow_down(b, variant, 1.6)
    shift, _ = comparison.latency_drift(compare(a, b)[0])
    assert 1.5 < shift < 1.7
    assert main(["compare", str(a), str(b)]) == 0
    assert "B's latencies are ×1.6" in capsys.readouterr().out
