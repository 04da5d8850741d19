"""Render the gate's verdicts as rich tables: wall mode's ratios with intervals, count mode's ratios."""
from __future__ import annotations

import math

from rich.markup import escape
from rich.table import Table

from harness.gate.compare import KernelVerdict
from harness.gate.count_compare import CountThresholds, CountVerdict
from harness.gate.count_record import CountRecord
from harness.gate.record import GateRecord
from harness.gate.stats import Thresholds

STYLES = {
    "regression": "bold red",
    "improvement": "green",
    "ok": "",
    "noisy": "yellow",
    "new": "yellow",
    "missing": "yellow",
}


def _num(value: float, fmt: str) -> str:
    return "-" if math.isnan(value) else format(value, fmt)


def verdict_table(verdicts: list[KernelVerdict], thresholds: Thresholds, title: str = "kernel gate") -> Table:
    """One row per kernel: normalised medians, ratio current/baseline, its interval, p, verdict.

    "samples now" counts the compared samples; "(all)" marks a kernel compared on all its
    samples because one side had too few unpreempted ones (its status is then "noisy").
    """
    level = f"{thresholds.confidence:.0%}"
    table = Table(
        title=f"{title}: regression = {level} interval above x{thresholds.min_ratio:.2f} "
        f"and Mann-Whitney p < {thresholds.alpha:g}",
        title_justify="left",
    )
    table.add_column("kernel")
    table.add_column("samples now", justify="right")
    table.add_column("baseline (cal. units)", justify="right")
    table.add_column("now (cal. units)", justify="right")
    table.add_column("ratio", justify="right")
    table.add_column(f"{level} interval", justify="right")
    table.add_column("p slower", justify="right")
    table.add_column("verdict")
    for v in verdicts:
        c = v.comparison
        table.add_row(
            escape(v.name),
            f"{v.current_samples}" + ("" if v.clean_only else " (all)"),
            _num(v.baseline_median, ".4f"),
            _num(v.current_median, ".4f"),
            "-" if c is None else f"{c.ratio:.3f}",
            "-" if c is None else f"[{c.lo:.3f}, {c.hi:.3f}]",
            "-" if c is None else f"{c.p_slower:.2g}",
            _status(v.status),
        )
    return table


def record_table(record: GateRecord) -> Table:
    """A recorded session's summary: per kernel its raw median and normalised p10/median/p90."""
    table = Table(title="kernel gate: recorded session (normalised in calibration units)", title_justify="left")
    for column in ("kernel", "shape", "ms", "clean/all", "p10", "median", "p90"):
        table.add_column(column, justify="left" if column in ("kernel", "shape") else "right")
    for name, k in record.kernels.items():
        table.add_row(
            escape(name),
            escape(k.shape),
            f"{k.raw_ms_median:.3f}",
            f"{sum(k.clean)}/{len(k.clean)}",
            f"{k.p10:.4f}",
            f"{k.median:.4f}",
            f"{k.p90:.4f}",
        )
    return table


def _status(status: str) -> str:
    return f"[{STYLES[status]}]{status}[/]" if STYLES[status] else status


def count_table(verdicts: list[CountVerdict], thresholds: CountThresholds) -> Table:
    """One row per kernel: instructions per call before and now, and their ratio."""
    table = Table(
        title=f"kernel gate (counts): regression = more than x{1 + thresholds.instructions:.2f} "
        "the baseline's instructions per call",
        title_justify="left",
    )
    for column in ("kernel", "instructions/call (baseline)", "now", "ratio", "verdict"):
        table.add_column(column, justify="left" if column in ("kernel", "verdict") else "right")
    for v in verdicts:
        table.add_row(
            escape(v.name),
            _num(v.baseline_ir, ",.0f"),
            _num(v.current_ir, ",.0f"),
            _num(v.ir_ratio, ".4f"),
            _status(v.status),
        )
    return table


def count_record_table(record: CountRecord) -> Table:
    """A counted session: per kernel its counted calls and instructions per call."""
    table = Table(title="kernel gate: counted session", title_justify="left")
    for column in ("kernel", "shape", "calls", "instructions/call"):
        table.add_column(column, justify="left" if column in ("kernel", "shape") else "right")
    for name, k in record.kernels.items():
        table.add_row(escape(name), escape(k.shape), str(k.calls), f"{k.per_call['Ir']:,.0f}")
    return table
