"""Count mode's decision: did a kernel execute materially more instructions (or cycles) per call?

Counts repeat, so no statistics are needed: a kernel regresses when its instructions per call,
or its estimated cycles per call (instructions plus simulated cache-miss penalties, which also
catch extra memory traffic), exceed the baseline's by more than a threshold. The thresholds sit
well above the measured spread of repeated runs and well below the smallest regression the gate
must catch (5%); docs/PERF.md ("Kernel gate") has the figures.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from harness.errors import UserError
from harness.gate.count_record import CountRecord, describe_paths


@dataclass(frozen=True)
class CountThresholds:
    """Largest accepted growth per call, as a fraction (0.02 = 2% more)."""

    instructions: float = 0.02
    cycles: float = 0.03


@dataclass(frozen=True)
class CountVerdict:
    """One kernel: per-call instructions before and now, the two ratios, and the status
    (regression | improvement | ok | new | missing)."""

    name: str
    shape: str
    baseline_ir: float
    current_ir: float
    ir_ratio: float
    cycles_ratio: float
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
    before = {**baseline.environment.versions, "valgrind": baseline.environment.valgrind,
              "cache simulation": baseline.environment.cache_sim}
    now = {**current.environment.versions, "valgrind": current.environment.valgrind,
           "cache simulation": current.environment.cache_sim}
    return [f"{k}: {before.get(k)} -> {now.get(k)}" for k in sorted(before.keys() | now.keys()) if before.get(k) != now.get(k)]


def _status(ir_ratio: float, cycles_ratio: float, thresholds: CountThresholds) -> str:
    if ir_ratio > 1 + thresholds.instructions or cycles_ratio > 1 + thresholds.cycles:
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
            rows.append(CountVerdict(name, now.shape, nan, now.per_call["Ir"], nan, nan, "new"))
            continue
        ir_ratio = now.per_call["Ir"] / before.per_call["Ir"]
        cycles_ratio = now.per_call["EstCycles"] / before.per_call["EstCycles"]
        rows.append(
            CountVerdict(name, now.shape, before.per_call["Ir"], now.per_call["Ir"], ir_ratio, cycles_ratio,
                         _status(ir_ratio, cycles_ratio, thresholds))
        )
    for name, before in baseline.kernels.items():
        if name not in current.kernels:
            rows.append(CountVerdict(name, before.shape, before.per_call["Ir"], nan, nan, nan, "missing"))
    return rows
