"""`lalm-bench report` end to end on synthetic run folders: files, self-containment, odd runs, bad input."""
from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest

from harness import store
from harness.cli import main
from harness.errors import UserError
from harness.report import build_report, figures, profile_figure
from harness.report.synthetic import SyntheticSuite, write_run

SOURCES = re.compile(r"""\bsrc\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
LINKS = re.compile(r"""\bhref\s*=\s*["']([^"']*)["']""", re.IGNORECASE)


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> Path:
    """A report of every variant over lengths, batches, training and a task: every figure applies."""
    base = tmp_path_factory.mktemp("full")
    return build_report([write_run(base / "run")], base / "report")


def assert_self_contained(html: str) -> int:
    """Every src is an embedded PNG (none fetched from anywhere) and every link a relative path to
    a file of the run (a profile summary), never to a host; returns how many images."""
    urls = SOURCES.findall(html)
    assert all(url.startswith("data:image/png;base64,") for url in urls), [u[:40] for u in urls]
    for url in urls:
        assert base64.b64decode(url.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    for link in LINKS.findall(html):
        assert ":" not in link and not link.startswith("/"), link
    assert not re.search(r"<(script|link|iframe)\b", html, re.IGNORECASE)
    return len(urls)


ALL_FIGURES = {*figures.FIGURES, profile_figure.NAME}


def test_every_figure_is_drawn_as_png_and_svg(full_report):
    folder = full_report / "figures"
    assert {p.stem for p in folder.glob("*.png")} == ALL_FIGURES
    assert {p.stem for p in folder.glob("*.svg")} == ALL_FIGURES
    assert all(p.stat().st_size > 10_000 for p in folder.glob("*.png"))


def test_html_is_self_contained_and_embeds_every_figure(full_report):
    html = (full_report / "report.html").read_text()
    assert assert_self_contained(html) == len(ALL_FIGURES)


def test_markdown_links_every_figure_and_states_the_findings(full_report):
    md = (full_report / "report.md").read_text()
    for name in ALL_FIGURES:
        assert f"(figures/{name}.png)" in md and f"(figures/{name}.svg)" in md
    assert "## Scaling exponents in audio length" in md
    # The synthetic AST encoder is quadratic in length, the DASS encoder linear.
    encoder = re.search(r"Encoder latency grows as L\^([\d.]+) \S+ \S+ for ast\+llama.*?L\^([\d.]+) \S+ \S+ for "
                        r"dass\+mamba", md)
    assert encoder and float(encoder[1]) > 1.7 and 0.9 < float(encoder[2]) < 1.1
    assert re.search(r"dass\+mamba has lower end-to-end latency than ast\+llama beyond [\d.]+ s of audio", md)
    assert "ast+llama (inference, batch 1) failed (oom) at 600 s; the longest it handled was 300 s." in md
    assert "0" * 40 in md  # the git sha traces every figure to its code


def odd_run(tmp_path: Path, kind: str) -> Path:
    """Run folders a report must survive: failures everywhere, one variant, one length, NaN values."""
    small = dict(lengths=(5, 30, 120), batches=(1,), batch_seconds=30, tasks=False, train=False)
    suites = {
        "failed points": SyntheticSuite(variants=("ast+llama", "dass+mamba"), oom_from={"ast+llama": 30, "dass+mamba": 0},
                                        **small),
        "single variant": SyntheticSuite(variants=("dass+mamba",), **{**small, "batches": (1, 4)}),
        "single length": SyntheticSuite(variants=("ast+llama", "dass+mamba"), lengths=(30,), batches=(1,),
                                        tasks=False, train=False),
        "nan metrics": SyntheticSuite(variants=("ast+llama", "dass+mamba"), **small),
        "all failed": SyntheticSuite(variants=("ast+llama",), oom_from={"ast+llama": 0}, **small),
    }
    run = write_run(tmp_path / "run", suites[kind])
    if kind == "nan metrics":  # every value unmeasurable, with the reason the meter gave
        loaded = store.load_run(run)
        results = loaded.results.assign(value=np.nan, lo=np.nan, hi=np.nan, note="meter unavailable on this host")
        store.write_part(run, "synthetic", results, loaded.samples.iloc[0:0])
        store.compact(run)
    return run


@pytest.mark.parametrize("kind, expect_figures, expect_texts", [
    ("failed points", {"latency_vs_length", "memory_vs_length"}, (
        "Failed points: status other than ok",
        "Markers on the top edge: points that failed (out of memory)",
        "ast+llama (inference, batch 1) failed (oom) at 30 s; the longest it handled was 5 s.",
        "dass+mamba (inference, batch 1) failed (oom) at 5 s; it handled no length.")),
    ("single variant", {"latency_vs_length", "throughput_vs_batch"}, ("## Scaling exponents",)),
    ("single length", {"latency_vs_length", "ratio_vs_length"}, ("no exponent is fitted",)),
    ("nan metrics", set(), ("Values that could not be measured", "meter unavailable on this host")),
    ("all failed", set(), ("No figure applies",)),
])
def test_odd_runs_still_give_a_report(tmp_path, kind, expect_figures, expect_texts):
    out = build_report([odd_run(tmp_path, kind)], tmp_path / "report")
    drawn = {p.stem for p in (out / "figures").glob("*.png")}
    assert expect_figures <= drawn
    if not expect_figures:
        assert not drawn
    if kind == "single variant":  # nothing to divide by
        assert "ratio_vs_length" not in drawn
    md = (out / "report.md").read_text()
    for text in expect_texts:
        assert text in md
    assert assert_self_contained((out / "report.html").read_text()) == len(drawn)


def test_cli_writes_to_reports_run_name_by_default(tmp_path, monkeypatch, capsys):
    run = odd_run(tmp_path, "all failed")  # no figures: the quickest report there is
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(run)]) == 0
    assert (tmp_path / "reports" / "run" / "report.html").is_file()
    assert "report.html" in capsys.readouterr().out


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing", "does not exist"),
    (lambda d: d, "not a run folder"),
])
def test_bad_run_folder_is_a_one_line_error(tmp_path, capsys, make, message):
    run_dir = make(tmp_path)
    with pytest.raises(UserError, match=message):
        build_report([run_dir], tmp_path / "out")
    assert main(["report", str(run_dir), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_run_without_results_is_a_one_line_error(tmp_path, capsys):
    store.write_meta(tmp_path, {"run_id": "empty", "suite": {}, "sessions": []})
    assert main(["report", str(tmp_path), "-o", str(tmp_path / "out")]) == 2
    assert "holds no results" in capsys.readouterr().err


def test_damaged_results_file_is_a_one_line_error(tmp_path, capsys):
    run = write_run(tmp_path / "run", SyntheticSuite(variants=("dass+mamba",), lengths=(5,), batches=(1,),
                                                     tasks=False, train=False))
    (run / "results.parquet").write_bytes(b"not parquet")
    assert main(["report", str(run), "-o", str(tmp_path / "out")]) == 2
    assert "cannot read" in capsys.readouterr().err
