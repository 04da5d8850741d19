"""Compare a current gate record with a baseline record, kernel by kernel."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.errors import UserError
from harness.gate.record import GateRecord, compared_samples, enough_clean
from harness.gate.stats import Comparison, Thresholds, compare


@dataclass(frozen=True)
class KernelVerdict:
    """One row of the gate's table.

    Medians are of the compared normalised samples. `comparison` is None when one side lacks
    the kernel; `status` is then "new" (no baseline) or "missing" (not measured now). When a
    side has too few unpreempted samples, all samples are compared for the record but the
    status is "noisy" whatever they show: preempted samples carry the cost of refilling
    caches that other processes evicted, which is no evidence about the kernel.
    """

    name: str
    shape: str
    baseline_median: float
    current_median: float
    current_samples: int
    comparison: Comparison | None
    status: str
    clean_only: bool = True


def compare_records(baseline: GateRecord, current: GateRecord, thresholds: Thresholds) -> list[KernelVerdict]:
    """A verdict per kernel in either record: current kernels first, in measured order.

    Raises UserError when a kernel's samples were normalised with different calibration units
    (its copy weight changed since the baseline): they are not comparable.
    """
    nan = float("nan")
    rows = []
    for seed, (name, now) in enumerate(current.kernels.items()):
        before = baseline.kernels.get(name)
        if before is None:
            rows.append(KernelVerdict(name, now.shape, nan, now.median, len(now.normalised), None, "new"))
            continue
        if before.copy_weight != now.copy_weight:
            raise UserError(
                f"kernel {name!r}: the baseline's samples were normalised with copy weight {before.copy_weight}, "
                f"now {now.copy_weight}; record a new baseline with `lalm-bench gate --update-baseline`"
            )
        clean_only = enough_clean(before) and enough_clean(now)
        base, curr = compared_samples(before, clean_only), compared_samples(now, clean_only)
        # A distinct, fixed bootstrap seed per kernel: reproducible verdicts for a given record pair.
        result = compare(base, curr, thresholds, seed=seed)
        status = result.verdict if clean_only else "noisy"
        rows.append(
            KernelVerdict(
                name, now.shape, float(np.median(base)), float(np.median(curr)), len(curr), result, status, clean_only
            )
        )
    for name, before in baseline.kernels.items():
        if name not in current.kernels:
            rows.append(KernelVerdict(name, before.shape, before.median, nan, 0, None, "missing"))
    return rows


def regressions(verdicts: list[KernelVerdict]) -> list[str]:
    """Names of the kernels that regressed."""
    return [v.name for v in verdicts if v.status == "regression"]
