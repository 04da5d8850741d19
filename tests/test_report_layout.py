"""The report leads with the answer: verdict and ratio figure, then what failed or could not be
measured, then contents and details; long tables without duplicates; values below a meter's
resolution marked, never fitted; an evaluation folder's accuracy shown."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from harness import store
from harness.cli import main
from harness.measure import memory
from harness.report import build_report, findings, render
from harness.report.synthetic import SyntheticSuite, write_run

SUITE = SyntheticSuite(variants=("ast+llama", "dass+mamba"), lengths=(5, 30, 120, 300), batches=(1,), tasks=False,
                       train=False, oom_from={"ast+llama": 300}, profile_seconds=())
DESCRIPTION = "a synthetic length sweep of both LALMs"


def like_a_real_run(run: Path) -> None:
    """What a real run records that the synthetic one leaves out: the suite's description and the
    environment both per run and per session (run.json repeats it), and CPU peak memory of a few
    KiB for prefill, as the RSS meter reads for a tiny model."""
    meta = store.read_meta(run)
    meta["suite"]["description"] = DESCRIPTION
    meta["env"] = meta["sessions"][0]["env"]
    store.write_meta(run, meta)
    loaded = store.load_run(run)
    results = loaded.results.copy()
    small = (results["phase"] == "prefill") & (results["metric"] == "peak_mem_bytes") & (results["status"] == "ok")
    results.loc[small, "source"] = "proc.VmHWM"
    results.loc[small, "value"] = 4096.0 * (1 + results.loc[small, "audio_seconds"].rank().to_numpy())
    store.write_part(run, "synthetic", results, loaded.samples)
    store.compact(run)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[str, str]:
    base = tmp_path_factory.mktemp("layout")
    run = write_run(base / "run", SUITE)
    like_a_real_run(run)
    out = build_report([run], base / "report")
    return (out / "report.md").read_text(), (out / "report.html").read_text()


def sections(md: str) -> dict[str, str]:
    """Section title -> its Markdown text."""
    parts = re.split(r"^## (.+)$", md, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def test_the_report_opens_with_the_verdict_then_failures_then_contents(report):
    md, _ = report
    titles = list(sections(md))
    assert titles[:3] == ["Verdict", "Failures and unmeasured values", "Contents"]
    verdict = sections(md)["Verdict"]
    lines = [line for line in verdict.splitlines() if line.startswith("- ")]
    assert 3 <= len(lines) <= 5
    # Who is cheaper, from what length with its interval, and by how much with its interval.
    assert any(re.search(r"dass\+mamba is cheaper from [\d.]+ s of audio \(95 % CI \[[\d.]+, [\d.]+\] s\)", line)
               and re.search(r"at [\d.]+× \[[\d.]+, [\d.]+\] of ast\+llama's", line) for line in lines)
    assert "(figures/ratio_vs_length.png)" in verdict  # the ratio figure is part of the answer
    failures = sections(md)["Failures and unmeasured values"]
    assert "| ast+llama | e2e | 1 | 300 s | oom |" in failures


def test_the_suite_is_described(report):
    assert DESCRIPTION in sections(report[0])["Verdict"]


def test_contents_link_every_later_section(report):
    md, html = report
    contents = sections(md)["Contents"]
    titles = list(sections(md))
    linked = re.findall(r"- \[(.+?)\]\(#(.+?)\)", contents)
    assert [title for title, _ in linked] == titles[3:]
    for title, target in linked:
        assert target == render.anchor(title) and f'<h2 id="{target}">' in html


def test_counted_and_analytic_flops_share_a_row(report):
    exponents = sections(report[0])["Scaling exponents in audio length"]
    assert "FLOPs (analytic)" not in exponents
    row = next(line for line in exponents.splitlines() if "| dass+mamba | encoder FLOPs (counted) |" in line)
    assert re.search(r"\| [\d.]+ \[[\d.]+, [\d.]+\] \|", row)  # the analytic exponent beside it


def test_the_environment_is_shown_once(report):
    environment = sections(report[0])["Environment"]
    keys = [line.split("|")[1].strip() for line in environment.splitlines() if line.startswith("| ")][1:]
    assert len(keys) == len(set(keys))
    assert "env.host" in keys and not any(k.startswith("sessions.0.env") for k in keys)
    values = [line.split("|")[2].strip() for line in environment.splitlines() if line.startswith("| ")][1:]
    assert values.count("0" * 40) == 1  # the git sha, not repeated from the results' columns


def test_values_below_the_meters_resolution_are_marked_and_never_fitted(report):
    md, _ = report
    cut = sections(md)
    resolution = memory.RESOLUTIONS[("proc.VmHWM", "peak_mem_bytes")][0]
    assert "| prefill peak memory | ast+llama, dass+mamba |" in cut["Failures and unmeasured values"]
    assert f"| {resolution / 2**20:.1f} MiB |" in cut["Failures and unmeasured values"]
    assert "prefill peak memory" not in cut["Scaling exponents in audio length"]
    assert "prefill peak memory" not in cut["Crossovers"] and "prefill peak memory" not in cut["Verdict"]
    assert re.search(r"\| proc\.VmHWM \| peak_mem_bytes \| 32\.0 MiB \| .+ \| \d+ of \d+ \|", cut["Meter resolution"])


def test_only_exponents_whose_interval_excludes_zero_are_headlines():
    fits = pd.DataFrame({
        "series": ["ast+llama", "dass+mamba"], "phase": ["decode", "decode"], "metric": ["latency_ms"] * 2,
        "exponent": [-0.23, 0.50], "ci_low": [-0.60, 0.40], "ci_high": [0.10, 0.60], "x_min": [1.0, 1.0],
        "x_max": [16.0, 16.0], "overhead_limited": [False, False],
    })
    (statement,) = findings.scaling(fits)
    assert "L^0.50" in statement and "-0.23" not in statement and "ast+llama" not in statement


def test_a_folder_made_by_eval_shows_its_accuracy(tmp_path):
    """`lalm-bench eval --out` writes task rows only; the report states them without a cost beside them."""
    source = store.load_run(write_run(tmp_path / "full", SyntheticSuite(variants=("ast+llama", "dass+mamba"),
                                                                        lengths=(5,), batches=(1,), train=False,
                                                                        profile_seconds=())))
    run = tmp_path / "eval"
    run.mkdir()
    store.write_meta(run, {**source.meta, "suite": {"name": "task", "description": "task accuracy"}})
    tasks = source.results[source.results["phase"] == "task"]
    store.write_part(run, "eval", tasks, source.samples.iloc[0:0])
    store.compact(run)
    md = (build_report([run], tmp_path / "report") / "report.md").read_text()
    verdict = sections(md)["Verdict"]
    assert re.search(r"- Accuracy on .*: (ast\+llama|dass\+mamba) [\d.]+, (ast\+llama|dass\+mamba) [\d.]+\.", verdict)
    scores = sections(md)["Task scores"]
    assert "| ast+llama |" in scores and "| dass+mamba |" in scores


@pytest.mark.parametrize("target", ["taken", "taken/report"])
def test_a_report_into_a_file_is_a_one_line_error(tmp_path, capsys, target):
    (tmp_path / "taken").write_text("not a folder")
    run = write_run(tmp_path / "run", SyntheticSuite(variants=("ast+llama",), lengths=(5,), batches=(1,),
                                                     tasks=False, train=False, profile_seconds=()))
    assert main(["report", str(run), "-o", str(tmp_path / target)]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "taken").read_text() == "not a folder"


def test_a_ratio_whose_interval_holds_one_names_no_winner(tmp_path):
    """dass+mamba's end-to-end latency made ast+llama's, samples and all: no variant is cheaper."""
    run = write_run(tmp_path / "run", SyntheticSuite(variants=("ast+llama", "dass+mamba"), lengths=(5, 30, 120),
                                                     batches=(1,), tasks=False, train=False, profile_seconds=()))
    loaded = store.load_run(run)
    results, samples = loaded.results.copy(), loaded.samples.copy()
    e2e = (results["phase"] == "e2e") & (results["metric"] == "latency_ms")
    transformer = results[e2e & (results["variant"] == "ast+llama")].set_index("audio_seconds")
    ssm = e2e & (results["variant"] == "dass+mamba")
    results.loc[ssm, ["value", "lo", "hi"]] = transformer.loc[results.loc[ssm, "audio_seconds"],
                                                              ["value", "lo", "hi"]].to_numpy()
    ids = dict(zip(results.loc[ssm, "point_id"], results.loc[ssm, "audio_seconds"]))
    by_length = dict(zip(transformer.index, transformer["point_id"]))
    latency = (samples["phase"] == "e2e") & (samples["metric"] == "latency_ms")
    others = samples[~(latency & samples["point_id"].isin(ids))]
    mirrored = pd.concat([samples[latency & (samples["point_id"] == by_length[length])].assign(point_id=point)
                          for point, length in ids.items()])
    store.write_part(run, "synthetic", results, pd.concat([others, mirrored]))
    store.compact(run)
    md = (build_report([run], tmp_path / "report") / "report.md").read_text()
    line = next(line for line in sections(md)["Verdict"].splitlines() if line.startswith("- End-to-end latency"))
    assert "neither is clearly cheaper at 120 s" in line and "1.00× [" in line


def test_with_several_settings_the_verdict_names_the_transformers_setting_too(tmp_path):
    """A run holding both variants in two dtypes: each ratio is within one setting, and the
    transformer it is taken against is named with that setting, not as a bare variant."""
    run = write_run(tmp_path / "run", SyntheticSuite(variants=("ast+llama", "dass+mamba"), lengths=(5, 30, 120),
                                                     batches=(1,), tasks=False, train=False, profile_seconds=()))
    loaded = store.load_run(run)
    twin = {point: f"{point}-bf16" for point in loaded.results["point_id"].unique()}
    results = loaded.results.assign(point_id=loaded.results["point_id"].map(twin), dtype="bfloat16")
    samples = loaded.samples.assign(point_id=loaded.samples["point_id"].map(twin))
    store.write_part(run, "bfloat16", results, samples)
    store.compact(run)
    md = (build_report([run], tmp_path / "report") / "report.md").read_text()
    lines = [line for line in sections(md)["Verdict"].splitlines() if line.startswith("- ")]
    assert lines and all(re.search(r"of ast\+llama \([^)]+\)'s", line) for line in lines), lines
