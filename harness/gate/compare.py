"""Compare a current gate record with a baseline record, kernel by kernel."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.gate.record import GateRecord
from harness.gate.stats import Comparison, Thresholds, compare


@dataclass(frozen=True)
class KernelVerdict:
    """One row of the gate's table. `comparison` is None when one side lacks the kernel;
    `status` is then "new" (no baseline) or "missing" (not measured now)."""

    name: str
    shape: str
    baseline_median: float
    current_median: float
    current_raw_ms: float
    comparison: Comparison | None
    status: str


def compare_records(baseline: GateRecord, current: GateRecord, thresholds: Thresholds) -> list[KernelVerdict]:
    """A verdict per kernel in either record: current kernels first, in measured order."""
    nan = float("nan")
    rows = []
    for seed, (name, now) in enumerate(current.kernels.items()):
        before = baseline.kernels.get(name)
        if before is None:
            rows.append(KernelVerdict(name, now.shape, nan, now.median, now.raw_ms_median, None, "new"))
            continue
        # A distinct, fixed bootstrap seed per kernel: reproducible verdicts for a given record pair.
        result = compare(np.asarray(before.normalised), np.asarray(now.normalised), thresholds, seed=seed)
        rows.append(KernelVerdict(name, now.shape, before.median, now.median, now.raw_ms_median, result, result.verdict))
    for name, before in baseline.kernels.items():
        if name not in current.kernels:
            rows.append(KernelVerdict(name, before.shape, before.median, nan, nan, None, "missing"))
    return rows


def regressions(verdicts: list[KernelVerdict]) -> list[str]:
    """Names of the kernels that regressed."""
    return [v.name for v in verdicts if v.status == "regression"]
