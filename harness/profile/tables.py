"""A phase profile as tables: one row per module (model order), and rolled up by component and role.

Module rows partition the profiled phase: `share` sums to 1 over them, and so it does over the
rolled-up rows. FLOPs are exclusive of child modules too, so `flop_rate` (FLOP/s achieved) is
each module's own work over its own time.
"""
from __future__ import annotations

import math

import pandas as pd

from harness.profile.attribution import DEVICE_IDLE, ModuleTime
from harness.profile.phase import PhaseProfile
from harness.profile.structure import Part, component_of, kernel_of

MODULE_COLUMNS = ["module", "component", "role", "depth", "calls", "time_ms", "lo_ms", "hi_ms", "host_ms", "share",
                  "flops", "flop_rate", "operator"]
GROUP_COLUMNS = ["group", "component", "role", "time_ms", "host_ms", "share", "flops", "flop_rate"]
GROUP_PREFIX = "group:"


def _part(profile: PhaseProfile, row: ModuleTime) -> Part:
    """A planned module's Part; a split-out operator's role; "idle" or "other" for the phase-level rows."""
    if row.path in profile.parts:
        return profile.parts[row.path]
    if row.path == DEVICE_IDLE:
        return Part(row.path, "idle")
    kernel = kernel_of(row.operator) if row.operator else None
    return Part(row.path, kernel[1] if kernel else "other")


def _order(profile: PhaseProfile) -> dict[str, float]:
    """Model order: planned modules as planned, a virtual child right after its module, phase rows last."""
    rank = {path: float(i) for i, path in enumerate(profile.parts)}
    order = {}
    for row in profile.breakdown.rows:
        parent = row.path.rpartition("/")[0]
        if row.path in rank:
            order[row.path] = rank[row.path]
        elif parent in rank:
            order[row.path] = rank[parent] + 0.5
        else:
            order[row.path] = len(rank) + (row.path == DEVICE_IDLE)
    return order


def _depth(path: str, paths: list[str]) -> int:
    return sum(1 for other in paths if other != path and (path.startswith(other + ".") or path.startswith(other + "/")))


def _rate(flops: float, ms: float) -> float:
    return flops / (ms / 1e3) if ms > 0 and not math.isnan(flops) else math.nan


def module_frame(profile: PhaseProfile) -> pd.DataFrame:
    """MODULE_COLUMNS, one row per breakdown row, in model order. flops is NaN when not counted."""
    b = profile.breakdown
    paths = [row.path for row in b.rows]
    order = _order(profile)
    records = []
    for row in sorted(b.rows, key=lambda r: order[r.path]):
        part = _part(profile, row)
        flops = float(profile.flops.get(row.path, 0)) if profile.flops is not None else math.nan
        time_ms = row.time_us / 1e3
        records.append({
            "module": row.path, "component": component_of(row.path), "role": part.role,
            "depth": _depth(row.path, paths), "calls": row.calls, "time_ms": time_ms, "lo_ms": row.lo_us / 1e3,
            "hi_ms": row.hi_us / 1e3, "host_ms": row.host_us / 1e3, "share": b.share(row), "flops": flops,
            "flop_rate": _rate(flops, time_ms), "operator": row.operator,
        })
    return pd.DataFrame.from_records(records, columns=MODULE_COLUMNS)


def group_frame(modules: pd.DataFrame) -> pd.DataFrame:
    """GROUP_COLUMNS: the module rows summed per (component, role), largest share first.

    `group` is "group:<component>/<role>", the `module` value these rows carry in the results
    table, so they are told apart from module paths (which never contain ':').
    """
    columns = ["time_ms", "host_ms", "share", "flops"]
    summed = modules.groupby(["component", "role"], as_index=False, sort=False)[columns].sum(min_count=1)
    summed["flop_rate"] = [_rate(f, t) for f, t in zip(summed["flops"], summed["time_ms"])]
    summed.insert(0, "group", GROUP_PREFIX + summed["component"] + "/" + summed["role"])
    return summed.sort_values("share", ascending=False, ignore_index=True)[GROUP_COLUMNS]
