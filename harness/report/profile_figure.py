"""'Where the time goes': each profiled phase's time split by component and role, as stacked bars.

One panel per phase that has profile rows, one bar per (series, audio length) at the run's
smallest profiled batch, stacked from the role-group shares (`profiles.role_shares`; module rows
are never added in). Bars whose profile failed the sum-to-phase check are hatched; a phase whose
profile failed outright shows its status where its bar would be.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter

from harness.report import analysis, palette, profiles
from harness.report.figures import AUDIO_LABEL, PHASE_TITLES, STYLE, Drawn, SavedFigure, panel_grid, save
from harness.report.formatting import percent

NAME = "where_time_goes"
TITLE = "Where the time goes"
BAR_WIDTH = 0.8
CLUSTER_GAP = 1.0  # extra space between two series' bars, in bar slots
DISTORTED_HATCH = "////"
HATCH_COLOUR = (0, 0, 0, 0.55)  # dark enough to see on every role colour, light enough to read it
INCHES_PER_BAR = 0.3
PANEL_HEIGHT = 3.0
PANELS_WIDTH = 10.0  # inches the panels of one row may take
LEGEND_WIDTH = 2.6  # inches beside them for the legend
ROLE_LABELS = {"other": "unattributed (outside every module)", "idle": "device idle"}


def group_label(component: str, role: str) -> str:
    """'encoder attention'; roles that say their component themselves ('projector') stand alone."""
    if component in (role, "other"):
        return ROLE_LABELS.get(role, role)
    return f"{component} {role}"


def _slots(points: pd.DataFrame) -> pd.DataFrame:
    """x position of each (series, audio length): series in the report's order, lengths ascending,
    a gap between series. points: series, variant, audio_seconds. Adds column x."""
    order = palette.variant_order(points["variant"])
    keys = points.drop_duplicates(["series", "audio_seconds"])
    keys = keys.assign(rank=keys["variant"].map(order.index)).sort_values(["rank", "series", "audio_seconds"])
    xs, x, previous = [], 0.0, None
    for series in keys["series"]:
        if previous is not None:
            x += 1 + (CLUSTER_GAP if series != previous else 0)
        xs.append(x)
        previous = series
    return keys.assign(x=xs)[["series", "variant", "audio_seconds", "x"]].reset_index(drop=True)


def _label_axes(ax, slots: pd.DataFrame) -> None:
    """Audio lengths under each bar, series names above each cluster in the variant's colour."""
    ax.set_xticks(slots["x"], [f"{s:g}" for s in slots["audio_seconds"]])
    ax.set_xlabel(AUDIO_LABEL)
    clusters = slots.groupby("series", sort=False).agg(x=("x", "mean"), variant=("variant", "first"))
    names = ax.secondary_xaxis("top")
    names.set_xticks(clusters["x"], clusters.index)
    names.tick_params(axis="x", length=0)
    names.spines["top"].set_visible(False)
    for label, variant in zip(names.get_xticklabels(), clusters["variant"]):
        label.set_color(palette.colour(variant))
    ax.set_xlim(slots["x"].min() - 0.7, slots["x"].max() + 0.7)


def _draw_phase(ax, shares: pd.DataFrame, checks: pd.DataFrame, slots: pd.DataFrame, groups: list[tuple]) -> None:
    """Stacked bars of one phase; hatched over the bar when its profile is distorted."""
    at = dict(zip(zip(slots["series"], slots["audio_seconds"]), slots["x"]))
    for (series, seconds), bar in shares.groupby(["series", "audio_seconds"]):
        share = bar.groupby(["component", "role"])["share"].sum()
        bottom = 0.0
        for group in groups:
            if group in share.index:
                ax.bar(at[series, seconds], share[group], BAR_WIDTH, bottom=bottom,
                       color=palette.role_colour(*group), linewidth=0)
                bottom += share[group]
    for check in checks.itertuples(index=False):
        x = at.get((check.series, check.audio_seconds))
        if x is None:
            continue
        if check.verdict == "distorted":
            ax.bar(x, 1.0, BAR_WIDTH, fill=False, hatch=DISTORTED_HATCH, edgecolor=HATCH_COLOUR, linewidth=0)
        elif check.status != "ok":
            ax.text(x, 0.5, f"profile {check.status}", rotation=90, ha="center", va="center", fontsize=7)


def where_time_goes(rows: pd.DataFrame) -> Drawn | None:
    """The figure from profile rows (`analysis.prepare_profiles`); None when there are none."""
    shares = profiles.role_shares(rows)
    checks = profiles.overheads(rows)
    if shares.empty:
        return None
    batch = shares["batch_size"].min()
    shares, fixed = analysis.sweep_slice(shares[shares["batch_size"] == batch], ("audio_seconds",))
    checks = analysis.at_fixed(checks, fixed)
    phases = profiles.ordered_phases(shares["phase"])
    slots = _slots(pd.concat([shares, checks[checks["phase"].isin(phases)]]))
    groups = sorted(set(zip(shares["component"], shares["role"])), key=lambda g: palette.role_rank(*g))
    width = max(3.0, INCHES_PER_BAR * len(slots) + 1.0)
    figure, axes = panel_grid(len(phases), (width, PANEL_HEIGHT), columns=max(1, int(PANELS_WIDTH // width)))
    figure.set_figwidth(figure.get_figwidth() + LEGEND_WIDTH)
    for ax, phase in zip(axes, phases):
        _draw_phase(ax, shares[shares["phase"] == phase], checks[checks["phase"] == phase], slots, groups)
        _label_axes(ax, slots)
        ax.set_ylim(0, 1)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.grid(axis="x", visible=False)
        ax.set_title("decode (one step)" if phase == "decode" else PHASE_TITLES.get(phase, phase))
        ax.set_ylabel("share of phase time")
    handles = [Patch(color=palette.role_colour(*g), label=group_label(*g)) for g in reversed(groups)]
    distorted = checks[checks["phase"].isin(phases) & (checks["verdict"] == "distorted")]
    if len(distorted):
        handles.append(Patch(fill=False, hatch=DISTORTED_HATCH, edgecolor=HATCH_COLOUR, linewidth=0,
                             label=f"distorted profile (|overhead| > {percent(profiles.FAITHFUL_WITHIN)})"))
    figure.legend(handles=handles, loc="outside right upper", frameon=False)
    return Drawn(figure, _caption(shares, distorted, fixed))


def _caption(shares: pd.DataFrame, distorted: pd.DataFrame, fixed: dict) -> str:
    sources = sorted(set(shares["source"]) - {""})
    timed = f" Times: {'; '.join(sources)}." if sources else ""
    text = (f"Share of each profiled phase's time by component and role, one bar per variant and audio length "
            f"({analysis.describe_fixed(fixed)}); each bar sums to 100 %. Legend order is stacking order, top to "
            f"bottom.{timed}")
    if distorted.empty:
        return text + (f" Every profile drawn passed the sum-to-phase check (profiled phase time within "
                       f"±{percent(profiles.FAITHFUL_WITHIN)} of the unprofiled one).")
    bars = shares.drop_duplicates(["phase", "series", "audio_seconds"]).groupby("phase").size()
    counts = distorted.groupby("phase").size()
    listed = ", ".join(f"{phase} {counts[phase]} of {bars[phase]}" for phase in profiles.ordered_phases(counts.index))
    return text + (f" Hatched bars ({listed}) failed the sum-to-phase check: the profiled phase time differs "
                   f"from the unprofiled one by more than {percent(profiles.FAITHFUL_WITHIN)}, so the instrumentation "
                   "is comparable to the work and inflates the modules with many small operators.")


def draw(rows: pd.DataFrame, out_dir: Path) -> SavedFigure | None:
    """Draws and saves the figure (PNG and SVG) when the rows hold profiles."""
    with matplotlib.rc_context(STYLE):
        drawn = where_time_goes(rows)
        return save(drawn, NAME, TITLE, out_dir) if drawn is not None else None
