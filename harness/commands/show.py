"""`lalm-bench show RUN_DIR`: a run as readable tables (per point, and a summary per variant)."""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas at run time only: `lalm-bench --help` lists this command without it
    import pandas as pd

NAME = "show"
HELP = "print a run's results as a table: one line per point, one column per metric of a phase"

BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder (results/<run id>)")
    parser.add_argument("--phase", help="phase whose metrics are shown (default: e2e, else the run's last phase)")
    parser.add_argument("--metric", dest="metrics", action="append", metavar="METRIC",
                        help="metric to show (repeatable; default: every metric of the phase)")


def format_value(value: float, unit: str, lo: float = math.nan, hi: float = math.nan) -> str:
    """'12.3 ms (11.8-13.0)', '4.0 MiB', '1.2e+09 FLOP'; '-' for NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit == "B":
        scaled, step = float(value), 0
        while abs(scaled) >= 1024 and step < len(BYTE_UNITS) - 1:
            scaled, step = scaled / 1024, step + 1
        return f"{scaled:.1f} {BYTE_UNITS[step]}"
    text = f"{value:.4g}" + (f" {unit}" if unit and unit != "1" else "")
    if not (math.isnan(lo) or math.isnan(hi)) and lo != hi:
        text += f" ({lo:.4g}-{hi:.4g})"
    return text


def summary_table(results: pd.DataFrame):
    """rich Table: points per status for each variant and size, and the longest audio that ran ok."""
    from rich.table import Table

    from harness.runner import summarize
    from harness.schema import STATUSES

    table = Table(title="summary")
    if results.empty:
        return table
    summary = summarize(results)
    for column in summary.columns:
        table.add_column(str(column), justify="right" if column in STATUSES or column == "longest ok (s)" else "left")
    for _, row in summary.iterrows():
        table.add_row(*[format_value(v, "s") if c == "longest ok (s)" else str(v) for c, v in row.items()])
    return table


# Point columns shown when they vary within the run (constant ones go in the title).
POINT_KEYS = {"variant": "variant", "size": "size", "dtype": "dtype", "requested_scan_backend": "scan",
              "mode": "mode", "batch_size": "batch", "audio_seconds": "audio s", "prompt_tokens": "prompt",
              "new_tokens": "new"}
ALWAYS_SHOWN = ("variant", "batch_size", "audio_seconds")


def points_table(results: pd.DataFrame, phase: str, metrics: list[str] | None = None):
    """rich Table: one line per point (its status and first error), one column per metric of `phase`.

    The point's identifying columns and status keep their width; metrics and errors wrap.
    """
    from harness.store import point_statuses
    from harness.terminal import table

    rows = results[results["phase"] == phase]
    metrics = metrics or list(dict.fromkeys(rows["metric"]))
    points = results.drop_duplicates("point_id").set_index("point_id")
    order = [k for k in POINT_KEYS if k not in ("audio_seconds", "batch_size")] + ["audio_seconds", "batch_size"]
    points = points.sort_values(order)
    shown = [k for k in POINT_KEYS if k in ALWAYS_SHOWN or points[k].nunique() > 1]
    constant = [f"{POINT_KEYS[k]} {points[k].iloc[0]}" for k in POINT_KEYS if k not in shown]
    statuses = point_statuses(results)
    errors = results[results["error"] != ""].drop_duplicates("point_id").set_index("point_id")["error"]
    cells = rows.drop_duplicates(["point_id", "metric"]).set_index(["point_id", "metric"])
    identity = [POINT_KEYS[k] for k in shown] + ["status"]
    show_errors = not errors.empty
    lines = []
    for point_id, point in points.iterrows():
        values = []
        for metric in metrics:
            cell = cells.loc[(point_id, metric)] if (point_id, metric) in cells.index else None
            values.append("-" if cell is None else format_value(cell["value"], cell["unit"], cell["lo"], cell["hi"]))
        keys = [f"{point[k]:g}" if k == "audio_seconds" else str(point[k]) for k in shown]
        lines.append([*keys, statuses[point_id], *values, *([errors.get(point_id, "")] if show_errors else [])])
    title = f"phase {phase}" + (f" ({', '.join(constant)})" if constant else "")
    return table(title, [*identity, *metrics, *(["error"] if show_errors else [])], lines, identity)


def console():
    """stdout console (see harness.terminal.console)."""
    from harness.terminal import console as stdout

    return stdout()


def run(args: argparse.Namespace) -> int:
    from harness.errors import UserError
    from harness.schema import PHASES
    from harness.store import load_run

    run = load_run(args.run_dir)
    out = console()
    meta = run.meta
    sessions = meta.get("sessions", [])
    host = sessions[-1]["env"]["host"] if sessions else "?"
    out.print(f"run {meta['run_id']} - suite {meta['suite_name']} - {meta.get('state', '?')} - host {host} - "
                  f"created {meta.get('created', '?')}, {len(sessions)} session(s)", highlight=False)
    if run.results.empty:
        out.print("no results yet")
        return 0
    phases = [p for p in PHASES if p in set(run.results["phase"])]
    phase = args.phase or ("e2e" if "e2e" in phases else phases[-1])
    if phase not in phases:
        raise UserError(f"--phase {phase}: not in this run; phases: {', '.join(phases)}")
    known = set(run.results.loc[run.results["phase"] == phase, "metric"])
    unknown = [m for m in args.metrics or [] if m not in known]
    if unknown:
        raise UserError(f"--metric {unknown[0]}: not measured in phase {phase}; metrics: {', '.join(sorted(known))}")
    out.print(points_table(run.results, phase, args.metrics))
    out.print(summary_table(run.results))
    return 0
