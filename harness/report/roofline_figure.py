"""The roofline section: each phase at its arithmetic intensity under the run's measured ceilings.

One point per (point, phase) with a latency, FLOPs and bytes moved: x = FLOPs / bytes (the
closed forms), y = achieved FLOP/s; the roofs are min(peak for the dtype, intensity x bandwidth).
The findings say, per variant, size, dtype and phase, what fraction of its floor the phase
reached and which limit binds it (`harness.roofline.bound`). Runs without recorded ceilings (no
`roofline` meter) have no section.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness.measure.ceilings import Ceilings
from harness.report import palette
from harness.report.figures import PHASE_TITLES, Drawn, SavedFigure, panel_grid, save
from harness.report.formatting import percent
from harness.report.render import Bullets, Image, Paragraph, Section
from harness.report.runs import Runs
from harness.roofline import OVERHEAD_FRACTION, PHASES, roofline_table, with_roofline

NAME = "roofline"
ROOF_STYLES = {"float32": "-", "bfloat16": "--", "float16": ":"}
TITLE = "Roofline"
GUIDE = ("Each phase at its arithmetic intensity (closed-form FLOPs per byte moved) and the FLOP rate it "
         "achieved, under the ceilings measured at the start of the run: peak matmul FLOP/s per dtype "
         "(flat roofs) and memory bandwidth (the slope). The roofline fraction is the least time either "
         "ceiling allows over the time measured; below {overhead} the phase is overhead-bound (dispatch, "
         "Python, small kernels), not limited by either ceiling.")


def run_ceilings(meta: dict) -> Ceilings | None:
    """The ceilings the run's latest session recorded, if any."""
    for session in reversed(meta.get("sessions", [])):
        if "flops_per_s" in session.get("ceilings", {}):
            return Ceilings.from_dict(session["ceilings"])
    return None


def phases(runs: Runs) -> tuple[pd.DataFrame, dict[str, Ceilings]]:
    """One line per measured (point, phase): intensity, achieved rate, fraction, bound, series.

    The derived rows are the run's own, each made with the ceilings of the session that measured
    its point; only points written before the runner derived them get the latest session's."""
    lines, found = [], {}
    for run_id, meta in runs.metas.items():
        ceilings = run_ceilings(meta)
        if ceilings is None:
            continue
        found[run_id] = ceilings
        results = with_roofline(runs.results[runs.results["run_id"] == run_id], ceilings)
        table = roofline_table(results)
        if table.empty:
            continue
        ident = results.drop_duplicates("point_id").set_index("point_id")
        table = table.join(ident[["variant", "size", "audio_seconds"]], on="point_id")
        table["intensity"] = table["flops"] / table["bytes"]
        table["run_id"] = run_id
        lines.append(table)
    return (pd.concat(lines, ignore_index=True) if lines else pd.DataFrame()), found


def draw(table: pd.DataFrame, ceilings: Ceilings) -> Drawn:
    """One panel per phase, log-log, roofs for every dtype the table holds."""
    names = [p for p in PHASES if p in set(table["phase"])]
    figure, axes = panel_grid(len(names))
    x = np.logspace(np.log10(table["intensity"].min() / 3), np.log10(table["intensity"].max() * 3), 200)
    for ax, phase in zip(axes, names):
        for dtype in sorted(set(table["dtype"])):
            ax.plot(x, np.minimum(ceilings.peak_flops(dtype), x * ceilings.bandwidth), color="0.5",
                    linestyle=ROOF_STYLES[dtype], linewidth=1, label=f"roof, {dtype}")
        for (variant, size, dtype), group in table[table["phase"] == phase].groupby(["variant", "size", "dtype"]):
            ax.scatter(group["intensity"], group["achieved"], color=palette.colour(variant), s=18,
                       marker="o" if dtype == "float32" else "s", label=f"{variant} {size} {dtype}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(PHASE_TITLES.get(phase, phase))
        ax.set_xlabel("FLOPs per byte moved")
        ax.set_ylabel("achieved FLOP/s")
    handles, labels = axes[0].get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    figure.legend(unique.values(), unique.keys(), loc="outside right upper", fontsize="small")
    caption = (f"Ceilings of {ceilings.name} ({ceilings.source}, threads: {ceilings.threads}): bandwidth "
               f"{ceilings.bandwidth / 1e9:.1f} GB/s; circles float32, squares half precision.")
    return Drawn(figure, caption)


def findings(table: pd.DataFrame) -> list[str]:
    """Per variant, size, dtype and phase: the median fraction of the floor, and what binds it."""
    statements = []
    for (variant, size, dtype, phase), group in table.groupby(["variant", "size", "dtype", "phase"], sort=False):
        verdict = group["bound"].mode().iloc[0]
        statements.append(f"{variant} {size} {dtype}, {phase}: {percent(group['fraction'].median())} of its "
                          f"roofline floor (median of {len(group)}), {verdict}-bound.")
    return statements


def section(runs: Runs, figure_dir: Path) -> Section | None:
    """The roofline section of a report; None when no run recorded its ceilings."""
    table, found = phases(runs)
    if table.empty:
        return None
    first = next(iter(found.values()))
    saved: SavedFigure = save(draw(table, first), NAME, TITLE, figure_dir)
    return Section(TITLE, [Paragraph(GUIDE.format(overhead=percent(OVERHEAD_FRACTION))),
                           Image(saved.title, saved.png, saved.svg, saved.caption), Bullets(findings(table))])
