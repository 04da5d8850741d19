"""Count mode's decision: does a kernel execute materially more instructions per call?

Counts repeat, so no statistics are needed: a kernel regresses when its instructions per call
exceed the baseline's by more than a threshold. The threshold (3%) sits 2.5 times above the
largest spread seen between repeated runs (1.2%, a fresh clone at another path; 0.3% in the
baseline's own checkout) and below the smallest regression the gate must catch (5%, which reads
1.050 or more); docs/PERF.md ("Kernel gate") has the figures.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from harness.errors import UserError
from harness.gate.count_record import CountRecord, describe_paths


@dataclass(frozen=True)
class CountThresholds:
    """Largest accepted growth of instructions per call, as a fraction (0.03 = 3% more)."""

    instructions: float = 0.03


@dataclass(frozen=True)
class CountVerdict:
    """One kernel: per-call instructions before and now, their ratio, and the status
    (regression | improvement | ok | new | missing)."""

    name: str
    shape: str
    baseline_ir: float
    current_ir: float
    ir_ratio: float
    status: str


def check_comparable(baseline: CountRecord, current: CountRecord) -> None:
    """Refuse (UserError) to compare counts of different instruction-set paths: they measure other code."""
    before, now = baseline.environment.code_paths, current.environment.code_paths
    if before != now:
        raise UserError(
            f"count baseline ran {describe_paths(before)}, this run {describe_paths(now)}: counts of different "
            "code paths are not comparable; record a baseline with `lalm-bench gate --update-baseline`"
        )


def software_differences(baseline: CountRecord, current: CountRecord) -> list[str]:
    """'name: baseline -> current' for each library or tool version that differs (counts may shift)."""
    before = {**baseline.environment.versions, "valgrind": baseline.environment.valgrind}
    now = {**current.environment.versions, "valgrind": current.environment.valgrind}
    return [f"{k}: {before.get(k)} -> {now.get(k)}" for k in sorted(before.keys() | now.keys()) if before.get(k) != now.get(k)]


def _status(ir_ratio: float, thresholds: CountThresholds) -> str:
    if ir_ratio > 1 + thresholds.instructions:
        return "regression"
    if ir_ratio < 1 - thresholds.instructions:
        return "improvement"
    return "ok"


def compare_counts(baseline: CountRecord, current: CountRecord, thresholds: CountThresholds) -> list[CountVerdict]:
    """A verdict per kernel in either record, current kernels first. Raises UserError across code paths."""
    check_comparable(baseline, current)
    nan = math.nan
    rows = []
    for name, now in current.kernels.items():
        before = baseline.kernels.get(name)
        if before is None:
            rows.append(CountVerdict(name, now.shape, nan, now.per_call["Ir"], nan, "new"))
            continue
        ir_ratio = now.per_call["Ir"] / before.per_call["Ir"]
        rows.append(
            CountVerdict(name, now.shape, before.per_call["Ir"], now.per_call["Ir"], ir_ratio,
                         _status(ir_ratio, thresholds))
        )
    for name, before in baseline.kernels.items():
        if name not in current.kernels:
            rows.append(CountVerdict(name, before.shape, before.per_call["Ir"], nan, nan, "missing"))
    return rows
