"""Run folders -> reports/<name>/: report.md, report.html (self-contained) and figures/*.png|svg."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from harness import provenance
from harness.report import (analysis, figures, findings, formatting, profile_figure, profiles, render, resample,
                            resolution, roofline_figure, tables, verdict)
from harness.report.render import Bullets, Contents, Document, Image, Paragraph, Section, Table
from harness.report.runs import Runs, load_runs

REPORTS_ROOT = Path("reports")

READING_GUIDE = (
    "Values are medians over the timed repeats; error bars and lo–hi are p10–p90. Fitted numbers "
    "(exponents, crossovers) carry 95 % percentile-bootstrap intervals ({n} resamples). Audio length L is in "
    "seconds of 16 kHz audio; the LM sees 32 audio tokens per 10 s."
)
SCALING_METHOD = (
    "The exponent k is the least-squares slope of log(value) on log(L) over the fit range. Unless "
    "--fit-min-seconds sets it, the range starts at the shortest length where a fixed cost (from fitting "
    "value = c + a·L^k) is at most {share} % of the value, so start-up overhead does not flatten the slope; when "
    "the fixed cost never falls that low the three longest lengths are used and the row says so. The interval "
    "resamples each point's raw samples when they were kept, else the fit's residuals. At least {points} lengths "
    "are needed."
)

PROFILES_GUIDE = (
    "Points profiled with --profile (or measure.profile = true): module by module in their run folder, each "
    "with a summary page (time by component and role, the module tree, the top operators per phase) and, per "
    "phase, a trace for ui.perfetto.dev, modules.csv and operators.csv beside it. A profile is faithful when "
    "the phase time its modules add up to (the instrumentation's measured cost taken out) is within ±{limit} of "
    "the phase timed with nothing attached; beyond that instrumentation or other load distorts the module "
    "times. Percentages: attributed / unprofiled − 1. These rows are never part of the fits and comparisons "
    "above."
)


def default_out_dir(run_dirs: list[str | Path]) -> Path:
    """reports/<run folder name>, or reports/<a>+<b> for several runs."""
    return REPORTS_ROOT / "+".join(Path(d).resolve().name for d in run_dirs)


def _section(title: str, table: pd.DataFrame, display, intro: str = "", empty: str = "") -> Section | None:
    """A section holding a table, or a sentence saying why there is none (None: leave it out)."""
    if table.empty:
        return Section(title, [Paragraph(empty)]) if empty else None
    blocks = [Paragraph(intro)] if intro else []
    return Section(title, blocks + [Table(display(table))])


def _summary(exponents, crossovers, frontier, throughput, trade) -> Section:
    statements = (findings.scaling(exponents) + findings.crossovers(crossovers) + findings.frontier(frontier)
                  + findings.throughput(throughput) + findings.accuracy(trade))
    if not statements:
        return Section("Summary", [Paragraph("The run has too few successful points for a scaling, crossover or "
                                             "throughput statement (fits need 3 lengths, comparisons 2 variants).")])
    return Section("Summary", [Bullets(statements)])


def _suites(runs: Runs) -> str:
    """'Suite quick: CPU smoke sweep …' (the run folder named when it differs): what each run set out
    to measure, from its run.json."""
    described = []
    for name, meta in zip(runs.names, runs.metas.values()):
        suite = meta.get("suite") if isinstance(meta.get("suite"), dict) else {}
        title = suite.get("name") or meta.get("suite_name") or name
        description = suite.get("description", "")
        described.append((title if title == name else f"{title} ({name})")
                         + (f": {description}" if description else ""))
    return "Suite " + "; ".join(described) + "."


def _verdict(runs: Runs, df: pd.DataFrame, crossovers: pd.DataFrame, scores: pd.DataFrame,
             ratio_figure: figures.SavedFigure | None) -> Section:
    points = analysis.point_status(df)
    failed = int(points["status"].isin(analysis.FAILED_STATUSES).sum())
    count = f"{len(points)} points" + (f", {failed} failed" if failed else ", all ran") if len(points) else ""
    blocks: list = [Paragraph(_suites(runs) + (f" {count}." if count else ""))]
    said = verdict.lines(df, runs.samples, crossovers, scores)
    blocks.append(Bullets(said) if said else Paragraph(
        "The run supports no verdict: no cost was measured for two variants at a common length, and no task "
        "was scored."))
    if ratio_figure is not None:
        blocks.append(Image(ratio_figure.title, ratio_figure.png, ratio_figure.svg, ratio_figure.caption))
    return Section("Verdict", blocks)


def _problems(df: pd.DataFrame) -> Section:
    """Every failure, unmeasured value and value below its meter's resolution, or a sentence saying
    there are none."""
    blocks = []
    failed, unmeasured, below = tables.failures(df), tables.unmeasured(df), tables.below_resolution(df)
    if len(failed):
        blocks.append(Table(failed, "Failed points: status other than ok, with the error."))
    if len(unmeasured):
        blocks.append(Table(unmeasured, "Values that could not be measured: the row ran but its metric is NaN; "
                                        "the reason is the one the meter gave."))
    if len(below):
        blocks.append(Table(below, "Values below their meter's resolution (see Meter resolution): left out of "
                                   "the verdict, fits, ratios, crossovers and figures."))
    if not blocks:
        blocks.append(Paragraph("Every point ran, and every value was measured above its meter's resolution."))
    return Section("Failures and unmeasured values", blocks)


def _meters(df: pd.DataFrame) -> Section | None:
    table = resolution.meters(df)
    if table.empty:
        return None
    return Section("Meter resolution", [
        Paragraph("The smallest value each meter tells apart from none, as the meter states it. A value below it "
                  "says that the quantity is small, not how small: it is listed under failures and unmeasured "
                  "values and left out of the verdict, fits, ratios, crossovers and figures."),
        Table(tables.meters(table))])


def _profiles(runs: Runs, out: Path, figure_dir: Path) -> Section | None:
    """The profiled points, linked to their summaries, and where their time goes; None without profiles."""
    rows = analysis.prepare_profiles(runs.results)
    if rows.empty:
        return None
    checks = profiles.overheads(rows)
    points = profiles.profiled_points(rows, runs.dirs)
    faithful = int((checks["verdict"] == "faithful").sum())
    blocks = [Paragraph(PROFILES_GUIDE.format(limit=formatting.percent(profiles.FAITHFUL_WITHIN))),
              Table(tables.profiled_points(points, checks, out),
                    f"{len(points)} profiled points; {faithful} of {len(checks)} profiled phases faithful.")]
    saved = profile_figure.draw(rows, figure_dir)
    if saved is not None:
        blocks.append(Image(saved.title, saved.png, saved.svg, saved.caption))
    return Section("Profiles", blocks)


def environment_warning(runs: Runs) -> str | None:
    """The `provenance` warning over every run (and every session of each run), each run named by
    its folder, or by its folder's path where two folders share a name."""
    labels = [str(runs.dirs[run_id]) if runs.names.count(name) > 1 else name
              for name, run_id in zip(runs.names, runs.metas)]
    return provenance.warning({
        label: provenance.run_environments(runs.metas[run_id], runs.results[runs.results["run_id"] == run_id])
        for label, run_id in zip(labels, runs.metas)
    })


def build_report(run_dirs: list[str | Path], out_dir: str | Path | None = None,
                 fit_min_seconds: float | None = None, warn: Callable[[str], None] | None = None) -> Path:
    """Writes the report of `run_dirs` into out_dir (default: reports/<run name>); returns out_dir.

    The report leads with the answer: the verdict (with the ratio figure), then every failure,
    unmeasured value and value below a meter's resolution, then a table of contents and the
    details (figures, long tables, environment). A mixed-environment warning precedes them all.

    `warn` is told, besides the report's own first section, when the runs' environments differ.
    """
    runs = load_runs(run_dirs)
    out = Path(out_dir) if out_dir is not None else default_out_dir(run_dirs)
    figure_dir = out / "figures"
    for name in [*figures.FIGURES, profile_figure.NAME, roofline_figure.NAME]:  # a figure that no longer applies must not linger
        for suffix in (".png", ".svg"):
            (figure_dir / f"{name}{suffix}").unlink(missing_ok=True)

    df = analysis.prepare(runs.results)
    rng = resample.generator()
    exponents = analysis.scaling_exponents(df, runs.samples, fit_min_seconds, rng)
    crossovers = analysis.crossovers(df, runs.samples, rng)
    frontier = analysis.length_frontier(df)
    throughput = analysis.largest_batch_ratios(df)
    accuracy = analysis.accuracy_cost(df)
    trade = analysis.accuracy_trade(accuracy)
    scores = analysis.task_scores(df)
    saved = figures.draw_all(df, figure_dir)
    ratio_figure = next((f for f in saved if f.name == figures.RATIO_FIGURE), None)

    figure_blocks = [Image(f.title, f.png, f.svg, f.caption) for f in saved if f is not ratio_figure] or [
        Paragraph("No figure applies" + (" besides the verdict's" if ratio_figure else "")
                  + ": the run has no successful measurement of a plotted metric.")]
    details = [
        Section("Runs", [Paragraph(READING_GUIDE.format(n=resample.N_BOOT)),
                         Table(tables.runs(runs.results, runs.metas, runs.names))]),
        _summary(exponents, crossovers, frontier, throughput, trade),
        Section("Figures", figure_blocks),
        _section("Scaling exponents in audio length", exponents, tables.exponents,
                 SCALING_METHOD.format(share=round(100 * analysis.MAX_OVERHEAD_SHARE), points=analysis.MIN_FIT_POINTS),
                 f"No series was measured at {analysis.MIN_FIT_POINTS} or more audio lengths, so no exponent is fitted."),
        _section("Crossovers", crossovers, tables.crossovers,
                 "Audio length beyond which a variant is cheaper than the transformer LALM, interpolated in "
                 "log-log between the measured lengths both ran; the interval and the share of resamples that "
                 "cross come from resampling both variants' raw samples."),
        _section("Longest audio handled", frontier, tables.frontier,
                 "Per length sweep: the longest audio a series ran before its first failure."),
        _section("Throughput at the largest batch", throughput, tables.throughput),
        _section("Task scores", scores, tables.task_scores, "Each evaluated checkpoint's score per dataset."),
        _section("Accuracy vs cost", accuracy, tables.accuracy),
        roofline_figure.section(runs, figure_dir),
        _profiles(runs, out, figure_dir),
        _meters(df),
        Section("Environment", [Table(analysis.environment_table(runs.metas, runs.results)
                                      .reset_index(names="key"))]),
    ]
    details = [s for s in details if s is not None]
    sections = [
        _verdict(runs, df, crossovers, scores, ratio_figure),
        _problems(df),
        Section("Contents", [Contents([s.title for s in details])]),
        *details,
    ]
    mixed = environment_warning(runs)
    if mixed:
        sections.insert(0, Section("Warning: mixed environments", [Paragraph(mixed)]))
        if warn is not None:
            warn(mixed)
    doc = Document(f"lalm-bench report: {', '.join(runs.names)}", sections)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(render.markdown(doc, out))
    (out / "report.html").write_text(render.html_page(doc))
    return out
