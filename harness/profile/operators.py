"""The operators a phase spent its time in: self time per operator, host and device.

Built from profiled repeats only (the events inside `phase:` ranges) — the same central repeats
the module breakdown averages — so warm-up calls and untimed setup such as a decode step's cache
copy are left out; module ranges are structure, not operators, and are left out too. Values are
per phase call (summed over the repeats, divided by their number).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence

import pandas as pd

from harness.profile.ranges import RANGE_PREFIX

COLUMNS = ["operator", "calls", "self_host_ms", "host_total_ms", "self_device_ms", "self_host_share",
           "self_device_share"]


def _operators(event) -> Iterator:
    for child in event.cpu_children:
        if not child.name.startswith(RANGE_PREFIX):
            yield child
        yield from _operators(child)


def operator_table(phase_events: Sequence) -> pd.DataFrame:
    """One row per operator name, sorted by self device time then self host time (largest first).

    phase_events: the `phase:` FunctionEvents of the profiled repeats (`attribution.phase_events`).
    Shares are of the summed self time of all operators (host and device separately).
    """
    calls: dict[str, int] = defaultdict(int)
    self_host: dict[str, float] = defaultdict(float)
    total_host: dict[str, float] = defaultdict(float)
    self_device: dict[str, float] = defaultdict(float)
    for phase in phase_events:
        for op in _operators(phase):
            calls[op.name] += 1
            self_host[op.name] += op.self_cpu_time_total
            total_host[op.name] += op.cpu_time_total
            self_device[op.name] += op.self_device_time_total
    repeats = max(len(phase_events), 1)
    table = pd.DataFrame({
        "operator": list(calls),
        "calls": [calls[n] / repeats for n in calls],
        "self_host_ms": [self_host[n] / repeats / 1e3 for n in calls],
        "host_total_ms": [total_host[n] / repeats / 1e3 for n in calls],
        "self_device_ms": [self_device[n] / repeats / 1e3 for n in calls],
    }, columns=COLUMNS[:5])
    for kind in ("host", "device"):
        total = table[f"self_{kind}_ms"].sum()
        table[f"self_{kind}_share"] = table[f"self_{kind}_ms"] / total if total > 0 else 0.0
    return table.sort_values(["self_device_ms", "self_host_ms"], ascending=False, ignore_index=True)
