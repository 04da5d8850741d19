"""Profiles in the report: the 'where the time goes' figure, links to each point's summary, the
overhead verdicts, and profile rows kept out of every fit, comparison and failure table."""
from __future__ import annotations

import re
import shutil
import urllib.parse
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness import store
from harness.report import analysis, build_report, palette, profile_figure, profiles, tables
from harness.report.runs import load_runs
from harness.report.synthetic import SyntheticSuite, write_run

VARIANTS = ("ast+llama", "dass+mamba")
LENGTHS = (5, 30, 120)
PROFILED = (5, 30)
BATCHES = (1, 2)  # the batch sweep runs at 30 s, so 30 s is profiled at batch 1 and 2
SUITE = SyntheticSuite(variants=VARIANTS, lengths=LENGTHS, batches=BATCHES, batch_seconds=30, tasks=False,
                       train=False, profile_seconds=PROFILED)
MD_LINK = re.compile(r"\[summary\.md\]\(([^)]+)\)")
HTML_LINK = re.compile(r'<a href="([^"]+)">summary\.md</a>')


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    # A space in the folder name: links must be quoted to work in Markdown and HTML.
    return write_run(tmp_path_factory.mktemp("profiles") / "profiled run", SUITE)


@pytest.fixture(scope="module")
def report(run) -> Path:
    # Deeper than the run folder, so the links climb out of it.
    return build_report([run], run.parent / "reports" / "nested" / "report")


@pytest.fixture(scope="module")
def rows(run) -> pd.DataFrame:
    return analysis.prepare_profiles(load_runs([run]).results)


def test_report_has_the_figure_and_a_profiles_section(report):
    assert (report / "figures" / f"{profile_figure.NAME}.png").stat().st_size > 10_000
    assert (report / "figures" / f"{profile_figure.NAME}.svg").is_file()
    md = (report / "report.md").read_text()
    section = md.split("## Profiles", 1)[1].split("\n## ", 1)[0]
    assert f"(figures/{profile_figure.NAME}.png)" in section
    # Decode steps shorter than 60 s are distorted in the synthetic run, everything else faithful.
    assert "distorted (+35 %)" in section and "faithful (-2 %)" in section
    assert "failed the sum-to-phase check" in section


def test_links_lead_from_the_report_folder_to_each_points_summary(report, run, rows):
    points = rows.drop_duplicates("point_id")["point_id"]
    for text, pattern in (((report / "report.md").read_text(), MD_LINK),
                          ((report / "report.html").read_text(), HTML_LINK)):
        hrefs = pattern.findall(text)
        assert len(hrefs) == len(points) == len(VARIANTS) * (len(PROFILED) + 1)
        assert all("%20" in href and " " not in href for href in hrefs)
        targets = {(report / urllib.parse.unquote(href)).resolve() for href in hrefs}
        assert targets == {profiles.summary_path(run, p).resolve() for p in points}
        assert all(target.is_file() for target in targets)


def test_profile_rows_never_reach_the_fits_comparisons_or_failures(run):
    results = load_runs([run]).results
    whole_phase = results[~profiles.is_profile_row(results)]
    assert (profiles.is_profile_row(results)).any()
    # A profile whose phase ran out of memory is a profile verdict, not a failed point.
    failed_profile = results[results["metric"] == profiles.OVERHEAD].iloc[[0]].assign(status="oom", value=np.nan)
    with_profiles = analysis.prepare(pd.concat([results, failed_profile], ignore_index=True))
    assert not profiles.is_profile_row(with_profiles).any()
    assert tables.failures(with_profiles).empty and tables.unmeasured(with_profiles).empty
    samples = load_runs([run]).samples
    for fit in (analysis.scaling_exponents, analysis.crossovers):
        got = fit(with_profiles, samples)
        assert not got.empty and profiles.OVERHEAD not in set(got["metric"])
        # Module and group rows carry latency_ms too: had they leaked in, the fits would differ.
        pd.testing.assert_frame_equal(got, fit(analysis.prepare(whole_phase), samples))


def test_bars_stack_group_shares_only_at_the_smallest_batch(rows):
    drawn = profile_figure.where_time_goes(rows)
    titles = [ax.get_title() for ax in drawn.figure.axes if ax.get_title()]
    assert titles == ["fbank", "encoder", "prefill", "decode (one step)"]
    for ax in drawn.figure.axes[:len(titles)]:
        heights: dict[float, float] = {}
        for patch in ax.patches:
            if patch.get_fill():
                x = round(patch.get_x() + patch.get_width() / 2, 6)
                heights[x] = heights.get(x, 0.0) + patch.get_height()
        # One bar per (variant, length) at batch 1, each the group shares adding to the whole phase
        # (module rows added in would make it 2).
        assert len(heights) == len(VARIANTS) * len(PROFILED)
        assert np.allclose(list(heights.values()), 1.0)
        hatched = [p for p in ax.patches if p.get_hatch() == profile_figure.DISTORTED_HATCH]
        assert len(hatched) == (len(heights) if ax.get_title().startswith("decode") else 0)


def test_each_profile_group_has_its_own_colour(rows):
    shares = profiles.role_shares(rows)
    groups = set(zip(shares["component"], shares["role"]))
    assert len({palette.role_colour(*g) for g in groups}) == len(groups)


def test_a_failed_phase_profile_is_shown_in_the_figure_and_the_table(rows, run):
    point = rows["point_id"].iloc[0]
    in_phase = (rows["point_id"] == point) & (rows["phase"] == "encoder")
    failed = rows[~in_phase | (rows["metric"] == profiles.OVERHEAD)].copy()
    failed.loc[in_phase & (failed["metric"] == profiles.OVERHEAD), ["status", "value"]] = ("oom", np.nan)
    drawn = profile_figure.where_time_goes(failed)
    encoder = next(ax for ax in drawn.figure.axes if ax.get_title() == "encoder")
    assert [t.get_text() for t in encoder.texts] == ["profile oom"]
    table = tables.profiled_points(profiles.profiled_points(failed, {failed["run_id"].iloc[0]: run}),
                                   profiles.overheads(failed), run.parent)
    assert list(table.loc[table["profile"].map(lambda c: point in c.href), "encoder"]) == ["oom"]


def test_missing_summary_is_said_not_linked(rows, tmp_path, run):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    shutil.rmtree(copy / store.ARTIFACTS)
    points = profiles.profiled_points(rows, {rows["run_id"].iloc[0]: copy})
    table = tables.profiled_points(points, profiles.overheads(rows), tmp_path)
    assert set(table["profile"]) == {"not in the run folder"}


@pytest.mark.parametrize("overhead, status, expected", [
    (0.10, "ok", "faithful"), (-0.05, "ok", "faithful"), (0.1001, "ok", "distorted"), (-0.4, "ok", "distorted"),
    (np.nan, "ok", "not checked"), (np.nan, "oom", "oom"),
])
def test_verdict(overhead, status, expected):
    assert profiles.verdict(overhead, status) == expected


def test_a_run_without_profiles_reports_without_the_section(tmp_path):
    suite = SyntheticSuite(variants=("dass+mamba",), lengths=(5,), batches=(1,), tasks=False, train=False,
                           profile_seconds=())
    out = tmp_path / "report"
    stale = out / "figures" / f"{profile_figure.NAME}.png"  # left by an earlier report of a profiled run
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old figure")
    build_report([write_run(tmp_path / "run", suite)], out)
    assert "## Profiles" not in (out / "report.md").read_text()
    assert "Profiles" not in (out / "report.html").read_text()
    assert not stale.exists()
    assert (out / "figures" / "latency_vs_length.png").is_file()


def test_constants_match_the_profiler():
    """The report restates a few of the profiler's names so it needs no torch; they must agree."""
    import inspect

    from harness.profile import SUMMARY, ProfileSettings, profile_files
    from harness.profile.tables import GROUP_PREFIX

    assert profiles.FAITHFUL_WITHIN == ProfileSettings().faithful_within
    assert profiles.SUMMARY == SUMMARY and profiles.GROUP_PREFIX == GROUP_PREFIX
    assert profiles.PROFILE_FOLDER == inspect.signature(profile_files).parameters["prefix"].default
