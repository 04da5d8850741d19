"""Paper-grade figures from the prepared results table (matplotlib, Agg, no pyplot state).

Each figure function takes the table from `analysis.prepare` and returns a `Drawn` (the
matplotlib figure and its caption) or None when the run has nothing to show for it.
`draw_all` saves every figure that applies as PNG and SVG. Colours and markers come from
`palette`; lines are medians, error bars p10–p90 (`lo`/`hi`), failed points are marked at
the top of the panel with a marker for their status.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")  # no display; must precede any backend use

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    FixedLocator,
    FuncFormatter,
    LogFormatterSciNotation,
    MaxNLocator,
    NullFormatter,
    NullLocator,
)
from matplotlib.transforms import offset_copy  # noqa: E402

from harness import schema  # noqa: E402
from harness.report import analysis, formatting, palette  # noqa: E402

PANEL_SIZE = (3.5, 2.7)  # inches per panel: two columns fit a paper's text width
MAX_COLUMNS = 3
STYLE = {
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "axes.grid.which": "major",
    "grid.alpha": 0.35,
    "grid.linewidth": 0.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.4,
    "lines.markersize": 4.5,
    "errorbar.capsize": 2,
    "savefig.dpi": 150,
    "svg.fonttype": "none",  # text stays text in the SVG, editable in a paper's figure
}
STATUS_NAMES = {"oom": "out of memory", "timeout": "timed out", "crash": "crashed", "error": "error"}
PHASE_TITLES = {"train_step": "training step"}
AUDIO_LABEL = "audio length (s)"
CONTEXT_LABEL = "context length (audio + prompt tokens)"
BATCH_LABEL = "batch size"


@dataclass
class Drawn:
    figure: Figure
    caption: str


@dataclass(frozen=True)
class SavedFigure:
    """A figure written to disk: `name` is the file stem of `png` and `svg`."""

    name: str
    title: str
    caption: str
    png: Path
    svg: Path


# --------------------------------------------------------------------------- drawing helpers


def panel_grid(count: int, size: tuple[float, float] = PANEL_SIZE,
               columns: int = MAX_COLUMNS) -> tuple[Figure, list[Axes]]:
    """A figure of `count` panels of `size` inches, at most `columns` to a row."""
    columns = min(count, columns)
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(size[0] * columns, size[1] * rows + 0.5), layout="constrained")
    axes = list(figure.subplots(rows, columns, squeeze=False).flat)
    for extra in axes[count:]:
        extra.set_visible(False)
    return figure, axes[:count]


def _styled(df: pd.DataFrame, settings: list[str]) -> pd.DataFrame:
    """Adds colour, marker (per variant) and linestyle (per setting, stable over a report)."""
    return df.assign(
        colour=df["variant"].map(palette.colour),
        marker=df["variant"].map(palette.marker),
        linestyle=df["setting"].map(lambda s: palette.LINESTYLES[settings.index(s) % len(palette.LINESTYLES)]),
    )


def _series_order(points: pd.DataFrame) -> list[str]:
    order = palette.variant_order(points["variant"])
    variant_of = dict(zip(points["series"], points["variant"]))
    return sorted(variant_of, key=lambda s: (order.index(variant_of[s]), s))


def _draw_lines(ax: Axes, points: pd.DataFrame, x: str, factor: float = 1.0, analytic: bool = False) -> None:
    """One error-bar line per series. points: series, variant, colour, marker, linestyle, x, value, lo, hi."""
    for series in _series_order(points):
        line = points[points["series"] == series].sort_values(x)
        first = line.iloc[0]
        value = line["value"].to_numpy(float) / factor
        below = np.nan_to_num(value - line["lo"].to_numpy(float) / factor, nan=0.0).clip(min=0)
        above = np.nan_to_num(line["hi"].to_numpy(float) / factor - value, nan=0.0).clip(min=0)
        ax.errorbar(
            line[x], value, yerr=[below, above], color=first["colour"], marker=first["marker"],
            # Analytic lines share their series' colour; the legend explains the style once.
            linestyle="--" if analytic else first["linestyle"], label=f"_{series}" if analytic else series,
            markerfacecolor="white" if analytic else first["colour"], elinewidth=0.8,
        )


def _mark_failures(ax: Axes, failures: pd.DataFrame, x: str) -> None:
    """Failed points at the top edge of the panel, in the variant's colour, marker by status."""
    for row in failures.drop_duplicates(["series", x]).itertuples(index=False):
        ax.plot(getattr(row, x), 0.97, transform=ax.get_xaxis_transform(), linestyle="none", clip_on=False,
                marker=palette.STATUS_MARKERS.get(row.status, "x"), markersize=7, color=palette.colour(row.variant),
                markeredgecolor="black", markeredgewidth=0.4)


class _PlainLogFormatter(LogFormatterSciNotation):
    """Log-axis labels as plain numbers (20, 0.5) in the everyday range, 10^k outside it.

    Keeps matplotlib's choice of which minor ticks to label (all of them on a short axis).
    """

    def __call__(self, x: float, pos: int | None = None) -> str:
        label = super().__call__(x, pos)
        return f"{x:g}" if label and 1e-3 <= abs(x) < 1e5 else label


def _ticks_at(axis, values: np.ndarray) -> None:
    """Label a log axis at the measured values when they are few, else with plain numbers."""
    values = np.unique(np.asarray(values, float)[np.isfinite(values)])
    values = values[values > 0]
    if 0 < len(values) <= 8:
        axis.set_major_locator(FixedLocator(values))
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_locator(NullLocator())
        axis.set_minor_formatter(NullFormatter())
    else:
        _plain_log_labels(axis)


def _plain_log_labels(axis) -> None:
    axis.set_major_formatter(_PlainLogFormatter())
    axis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.4)))


def _log_axes(ax: Axes, x_values: np.ndarray | None = None, log_y: bool = True, base_x: int = 10) -> None:
    """Log x (ticks at the measured values when few) and, unless told otherwise, log y. Call after drawing."""
    ax.set_xscale("log", base=base_x)
    if log_y:
        ax.set_yscale("log")
        low, high = ax.get_ylim()
        if high < 10 * low:
            # Within one decade a log axis has one or two labelled ticks at most; evenly
            # spaced round values read better and keep the geometry of a log axis.
            ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_locator(NullLocator())
            ax.yaxis.set_minor_formatter(NullFormatter())
        else:
            _plain_log_labels(ax.yaxis)
    if x_values is not None:
        _ticks_at(ax.xaxis, x_values)


def _legend(figure: Figure, axes: list[Axes], extra: list[Line2D] = ()) -> None:
    """One legend for the whole figure, below the panels, with no duplicate labels."""
    seen: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    for handle in extra:
        seen.setdefault(handle.get_label(), handle)
    if seen:
        columns = 2 * min(len(axes), MAX_COLUMNS)  # two entries per panel width
        figure.legend(list(seen.values()), list(seen), loc="outside lower center", ncols=min(len(seen), columns),
                      frameon=False)


def _analytic_handles(measured: str) -> list[Line2D]:
    """Legend entries for the two line styles of a measured-vs-analytic figure."""
    return [Line2D([], [], color="0.3", marker="o", label=measured),
            Line2D([], [], color="0.3", marker="o", linestyle="--", markerfacecolor="white", label="analytic")]


def _status_handles(failures: pd.DataFrame) -> list[Line2D]:
    return [
        Line2D([], [], linestyle="none", marker=palette.STATUS_MARKERS.get(s, "x"), color="0.5", markeredgecolor="black",
               markeredgewidth=0.4, markersize=7, label=f"failed: {STATUS_NAMES.get(s, s)}")
        for s in sorted(set(failures["status"]))
    ]


def _status_note(failures: pd.DataFrame) -> str:
    if failures.empty:
        return ""
    return " Markers on the top edge: points that failed (" + ", ".join(
        STATUS_NAMES.get(s, s) for s in sorted(set(failures["status"]))) + ")."


def _ordered_phases(phases) -> list[str]:
    order = list(schema.PHASES)
    return sorted(set(phases), key=lambda p: (order.index(p) if p in order else len(order), p))


def _fixed_note(fixed: dict) -> str:
    text = analysis.describe_fixed(fixed)
    return f" ({text})" if text else ""


# --------------------------------------------------------------------------- the figures


def _metric_vs(
    df: pd.DataFrame,
    metric: str | tuple[str, ...],
    x: str,
    vary: tuple[str, ...],
    phases: tuple[str, ...] | None,
    x_label: str,
    failures_of_any_metric: bool = True,
    y_name: str | None = None,
) -> tuple[Figure, list[Axes], pd.DataFrame, dict] | None:
    """Panels per phase of `metric` vs `x` with lines, error bars and failure marks.

    Returns (figure, axes, the failures drawn, the fixed sweep values) or None without data.
    The first metric of a tuple is drawn solid, the others as analytic (dashed, open markers).
    A failed point may be recorded under any metric of its phase, so by default all are marked.
    `y_name` names the y quantity when the metric's own name would not fit (several metrics).
    """
    metrics = (metric,) if isinstance(metric, str) else metric
    rows = analysis.select(df, metrics, phases)
    measured = analysis.ok_values(rows)
    measured = measured[(measured["value"] > 0) & (measured[x] > 0)]
    if measured.empty:
        return None
    measured, fixed = analysis.sweep_slice(measured, vary)
    candidates = (df if phases is None else df[df["phase"].isin(phases)]) if failures_of_any_metric else rows
    failures = analysis.at_fixed(analysis.failed(candidates), fixed)
    panel_phases = _ordered_phases(measured["phase"])
    figure, axes = panel_grid(len(panel_phases))
    for ax, phase in zip(axes, panel_phases):
        in_phase = measured[measured["phase"] == phase]
        factor, label = formatting.axis_label(metrics[0], in_phase["unit"].iloc[0], in_phase["value"].max(), y_name)
        for m in metrics:
            points = in_phase[in_phase["metric"] == m]
            if not points.empty:
                styled = _styled(analysis.series_points(points, x), sorted(df["setting"].unique()))
                _draw_lines(ax, styled, x, factor, analytic=m != metrics[0])
        _mark_failures(ax, failures[failures["phase"] == phase], x)
        _log_axes(ax, in_phase[x].to_numpy(float))
        ax.set_title("decode (per token)" if (phase, metrics[0]) == ("decode", "latency_ms")
                     else PHASE_TITLES.get(phase, phase))
        ax.set_xlabel(x_label)
        ax.set_ylabel(label)
    return figure, axes, failures, fixed


def latency_vs_length(df: pd.DataFrame) -> Drawn | None:
    drawn = _metric_vs(df, "latency_ms", "audio_seconds", ("audio_seconds",), analysis.INFERENCE_PHASES, AUDIO_LABEL)
    if drawn is None:
        return None
    figure, axes, failures, fixed = drawn
    _legend(figure, axes, _status_handles(failures))
    return Drawn(figure, f"Median latency of each phase vs audio length, log-log{_fixed_note(fixed)}. "
                         f"Error bars: p10–p90 of the timing samples.{_status_note(failures)}")


def memory_vs_length(df: pd.DataFrame) -> Drawn | None:
    drawn = _metric_vs(df, "peak_mem_bytes", "audio_seconds", ("audio_seconds",), analysis.INFERENCE_PHASES, AUDIO_LABEL)
    if drawn is None:
        return None
    figure, axes, failures, fixed = drawn
    frontier = analysis.length_frontier(analysis.at_fixed(df, {k: v for k, v in fixed.items() if k == "batch_size"}))
    oom = frontier[(frontier["workload"] == "inference") & (frontier["failure"] == "oom")]
    for ax in axes:
        beside_line = offset_copy(ax.get_xaxis_transform(), figure, x=-2, units="points")
        for row in oom.itertuples(index=False):
            ax.axvline(row.first_failure, color=palette.colour(row.variant), linestyle=":", linewidth=1.2)
            ax.text(row.first_failure, 0.5, f"OOM {row.variant}", transform=beside_line, rotation=90,
                    va="center", ha="right", fontsize=7, color=palette.colour(row.variant))
    _legend(figure, axes, _status_handles(failures))
    note = " Dotted lines: the OOM frontier, the shortest audio at which a variant ran out of memory." if len(oom) else ""
    return Drawn(figure, f"Peak memory of each phase vs audio length, log-log{_fixed_note(fixed)}.{note}"
                         f"{_status_note(failures)}")


def _measured_and_analytic(df: pd.DataFrame, measured: str, analytic: str) -> tuple[str, ...]:
    """Both metrics when the measured one has values (drawn solid, analytic dashed), else the analytic alone."""
    return (measured, analytic) if not analysis.ok_values(analysis.select(df, measured)).empty else (analytic,)


def _style_note(metrics: tuple[str, ...], measured: str) -> str:
    if len(metrics) == 2:
        return f" Solid lines, filled markers: {measured}; dashed lines, open markers: analytic."
    return " Analytic values only: the run has no measured ones."


def flops_vs_length(df: pd.DataFrame) -> Drawn | None:
    metrics = _measured_and_analytic(df, "flops", "flops_analytic")
    drawn = _metric_vs(df, metrics, "audio_seconds", ("audio_seconds",), analysis.INFERENCE_PHASES, AUDIO_LABEL,
                       y_name="FLOPs")
    if drawn is None:
        return None
    figure, axes, failures, fixed = drawn
    _legend(figure, axes, _status_handles(failures) + (_analytic_handles("counted") if len(metrics) == 2 else []))
    return Drawn(figure, f"FLOPs of each phase vs audio length, log-log{_fixed_note(fixed)}."
                         f"{_style_note(metrics, 'counted by the FLOP counter')}{_status_note(failures)}")


def throughput_vs_batch(df: pd.DataFrame) -> Drawn | None:
    rows = analysis.select(df, "throughput", analysis.INFERENCE_PHASES)
    measured = analysis.ok_values(rows)
    measured = measured[(measured["value"] > 0) & (measured["batch_size"] > 0)]
    if measured.empty:
        return None
    measured, fixed = analysis.sweep_slice(measured, ("batch_size",))
    failures = analysis.at_fixed(analysis.failed(rows), fixed)
    phases = _ordered_phases(measured["phase"])
    figure, axes = panel_grid(len(phases))
    for ax, phase in zip(axes, phases):
        in_phase = measured[measured["phase"] == phase]
        unit = in_phase["unit"].iloc[0]
        styled = _styled(analysis.series_points(in_phase, "batch_size"), sorted(df["setting"].unique()))
        _draw_lines(ax, styled, "batch_size")
        _mark_failures(ax, failures[failures["phase"] == phase], "batch_size")
        spread = in_phase["value"].max() / in_phase["value"].min()
        _log_axes(ax, in_phase["batch_size"].to_numpy(float), log_y=spread > 30, base_x=2)
        if spread <= 30:
            ax.set_ylim(bottom=0)
        ax.set_title(phase)
        ax.set_xlabel(BATCH_LABEL)
        ax.set_ylabel(f"throughput ({unit})")
    _legend(figure, axes, _status_handles(failures))
    return Drawn(figure, f"Throughput vs batch size{_fixed_note(fixed)}. Error bars: p10–p90."
                         f"{_status_note(failures)}")


def decode_latency_vs_context(df: pd.DataFrame) -> Drawn | None:
    drawn = _metric_vs(df, "latency_ms", "context_tokens", ("audio_seconds", "prompt_tokens"), ("decode",),
                       CONTEXT_LABEL)
    if drawn is None:
        return None
    figure, axes, failures, fixed = drawn
    axes[0].set_ylabel("latency per token (ms)")
    _legend(figure, axes, _status_handles(failures))
    return Drawn(figure, f"Decode latency per generated token vs context length (audio tokens, 32 per 10 s, "
                         f"plus prompt tokens), log-log{_fixed_note(fixed)}.{_status_note(failures)}")


def state_vs_context(df: pd.DataFrame) -> Drawn | None:
    metrics = _measured_and_analytic(df, "state_bytes", "state_bytes_analytic")
    drawn = _metric_vs(df, metrics, "context_tokens", ("audio_seconds", "prompt_tokens"), None, CONTEXT_LABEL,
                       y_name="state size")
    if drawn is None:
        return None
    figure, axes, failures, fixed = drawn
    _legend(figure, axes, _status_handles(failures) + (_analytic_handles("measured") if len(metrics) == 2 else []))
    return Drawn(figure, f"Inference state (the KV cache of a transformer LM, the recurrent state of Mamba) vs "
                         f"context length, log-log{_fixed_note(fixed)}.{_style_note(metrics, 'measured')}"
                         f"{_status_note(failures)}")


RATIO_METRICS = ("latency_ms", "peak_mem_bytes", "flops", "state_bytes", "energy_j")


def _ratio_panels(ratios: pd.DataFrame) -> list[tuple[str, str]]:
    """(metric, phase) panels: latency of every phase; other metrics once, end to end when measured.

    Latency is where phases differ in kind (decode vs prefill); memory, FLOPs and energy of
    the whole request are what a deployment pays, and per-phase views are in their own figures.
    """
    panels = []
    for metric in RATIO_METRICS:
        phases = _ordered_phases(ratios.loc[ratios["metric"] == metric, "phase"])
        if metric == "latency_ms":
            panels += [(metric, p) for p in phases]
        elif phases:
            panels.append((metric, "e2e" if "e2e" in phases else phases[0]))
    return panels


def ratio_vs_length(df: pd.DataFrame) -> Drawn | None:
    ratios = analysis.pair_ratios(df)
    ratios = ratios[ratios["metric"].isin(RATIO_METRICS) & (ratios["x"] > 0)]
    if ratios.empty:
        return None
    panels = _ratio_panels(ratios)
    figure, axes = panel_grid(len(panels))
    settings = sorted(df["setting"].unique())
    for ax, (metric, phase) in zip(axes, panels):
        in_panel = ratios[(ratios["metric"] == metric) & (ratios["phase"] == phase)]
        points = in_panel.rename(columns={"ratio": "value", "numerator": "variant"})
        points = points.assign(series=points["pair"] + np.where(points["setting"] == "", "", " (" + points["setting"] + ")"))
        _draw_lines(ax, _styled(points, settings), "x")
        ax.axhline(1.0, color="black", linewidth=0.8)
        _log_axes(ax, in_panel["x"].to_numpy(float))
        ax.set_title(f"{PHASE_TITLES.get(phase, phase)} {formatting.metric_name(metric)}")
        ax.set_xlabel(AUDIO_LABEL)
        ax.set_ylabel(f"ratio to {analysis.TRANSFORMER}")
    _legend(figure, axes)
    fixed = "; ".join(sorted(set(ratios["fixed"]) - {""}))
    return Drawn(figure, "Each metric of the SSM LALM and the hybrids divided by the transformer LALM's, vs audio "
                         f"length, log-log ({fixed}). Below 1: cheaper than the transformer. Error bars: the widest "
                         "ratio the two points' p10–p90 allow.")


def accuracy_vs_cost(df: pd.DataFrame) -> Drawn | None:
    table = analysis.accuracy_cost(df)
    if table.empty:
        return None
    groups = list(table.groupby(["dataset", "metric"], sort=True))
    figure, axes = panel_grid(len(groups))
    settings = sorted(df["setting"].unique())
    for ax, ((dataset, metric), group) in zip(axes, groups):
        styled = _styled(group, settings)
        for row in styled.itertuples(index=False):
            ax.plot(row.cost, row.score, linestyle="none", marker=row.marker, color=row.colour, markersize=7,
                    label=row.series)
            ax.annotate(row.series, (row.cost, row.score), textcoords="offset points", xytext=(5, 4), fontsize=7)
        front = group[group["pareto"]].sort_values("cost")
        ax.step(front["cost"], front["score"], where="post", color="0.4", linewidth=1.0, linestyle="--",
                label="Pareto front")
        first = group.iloc[0]
        factor, label = formatting.axis_label(first["cost_metric"], first["cost_unit"], group["cost"].max())
        if group["cost"].max() > 10 * group["cost"].min():
            ax.set_xscale("log")
        ax.set_xlabel(f"{first['cost_phase']} {label}")
        ax.set_ylabel(formatting.metric_name(metric))
        ax.set_title(dataset or "task")
        if factor != 1.0:
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _, f=factor: f"{v / f:g}"))
    _legend(figure, axes)
    first = table.iloc[0]
    return Drawn(figure, f"Task score vs inference cost ({first['cost_phase']} "
                         f"{formatting.metric_name(first['cost_metric'])} at the smallest batch and the measured audio "
                         "length nearest the task's clips). Dashed: the Pareto front (no other model is both cheaper "
                         "and more accurate).")


def train_step(df: pd.DataFrame) -> Drawn | None:
    rows = df[df["phase"] == "train_step"]
    panels = []  # (metric, x, x label)
    for metric in ("latency_ms", "peak_mem_bytes"):
        measured = analysis.ok_values(analysis.select(rows, metric))
        for x, label in (("audio_seconds", AUDIO_LABEL), ("batch_size", BATCH_LABEL)):
            sweep = measured[(measured["value"] > 0) & (measured[x] > 0)]
            # Always the length panel when there is data; the batch panel only for a batch sweep.
            if not sweep.empty and (x == "audio_seconds" or sweep[x].nunique() > 1):
                panels.append((metric, x, label))
    if not panels:
        return None
    figure, axes = panel_grid(len(panels))
    notes = []
    for ax, (metric, x, label) in zip(axes, panels):
        selected = analysis.select(rows, metric)
        measured = analysis.ok_values(selected)
        measured, fixed = analysis.sweep_slice(measured[(measured["value"] > 0) & (measured[x] > 0)], (x,))
        failures = analysis.at_fixed(analysis.failed(rows), fixed)
        factor, y_label = formatting.axis_label(metric, measured["unit"].iloc[0], measured["value"].max())
        _draw_lines(ax, _styled(analysis.series_points(measured, x), sorted(df["setting"].unique())), x, factor)
        _mark_failures(ax, failures, x)
        _log_axes(ax, measured[x].to_numpy(float), base_x=2 if x == "batch_size" else 10)
        ax.set_title(f"{formatting.metric_name(metric)} vs {label.split(' (')[0]}")
        ax.set_xlabel(label)
        ax.set_ylabel(y_label.replace("latency", "step time"))
        notes.append(f"{formatting.metric_name(metric)} vs {label.split(' (')[0]}{_fixed_note(fixed)}")
    failures = analysis.failed(rows)
    _legend(figure, axes, _status_handles(failures))
    return Drawn(figure, "Training step (forward, backward and optimiser step): " + "; ".join(notes)
                 + f". Log-log; error bars p10–p90.{_status_note(failures)}")


def max_batch_vs_length(df: pd.DataFrame) -> Drawn | None:
    # Points beyond the largest batch fail by design; only a failed search for it is marked.
    drawn = _metric_vs(df, "max_batch", "audio_seconds", ("audio_seconds", "batch_size"), None, AUDIO_LABEL,
                       failures_of_any_metric=False)
    if drawn is None:
        return None
    figure, axes, failures, fixed = drawn
    for ax in axes:
        ax.set_yscale("log", base=2)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_ylabel("largest batch that fits")
    _legend(figure, axes, _status_handles(failures))
    return Drawn(figure, f"Largest batch that fits in memory vs audio length, per phase{_fixed_note(fixed)}."
                         f"{_status_note(failures)}")


# The report's verdict shows this figure; the others follow the table of contents.
RATIO_FIGURE = "ratio_vs_length"
# name -> (title, function). The order is the report's order.
FIGURES: dict[str, tuple[str, Callable[[pd.DataFrame], Drawn | None]]] = {
    "latency_vs_length": ("Latency vs audio length", latency_vs_length),
    "memory_vs_length": ("Peak memory vs audio length", memory_vs_length),
    "flops_vs_length": ("FLOPs vs audio length", flops_vs_length),
    RATIO_FIGURE: ("SSM and hybrids relative to the transformer", ratio_vs_length),
    "throughput_vs_batch": ("Throughput vs batch size", throughput_vs_batch),
    "decode_latency_vs_context": ("Decode latency vs context length", decode_latency_vs_context),
    "state_vs_context": ("KV cache vs SSM state", state_vs_context),
    "accuracy_vs_cost": ("Accuracy vs cost", accuracy_vs_cost),
    "train_step": ("Training step", train_step),
    "max_batch_vs_length": ("Largest batch vs audio length", max_batch_vs_length),
}


def save(drawn: Drawn, name: str, title: str, out_dir: Path) -> SavedFigure:
    """Writes a drawn figure as out_dir/<name>.png and .svg."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png, svg = out_dir / f"{name}.png", out_dir / f"{name}.svg"
    drawn.figure.savefig(png)
    # The layout is in figure coordinates and points, so the one made for the PNG holds
    # for the SVG too; making it again would double the cost of the figure.
    drawn.figure.set_layout_engine("none")
    drawn.figure.savefig(svg)
    return SavedFigure(name, title, drawn.caption, png, svg)


def draw_all(df: pd.DataFrame, out_dir: Path) -> list[SavedFigure]:
    """Draws every figure the prepared table supports into out_dir as <name>.png and <name>.svg."""
    saved = []
    with matplotlib.rc_context(STYLE):
        for name, (title, draw) in FIGURES.items():
            drawn = draw(df)
            if drawn is not None:
                saved.append(save(drawn, name, title, out_dir))
    return saved
