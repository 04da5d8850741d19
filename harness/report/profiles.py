"""Profile rows of a run, read for the report: role shares, the overhead check, profiled points.

Per profiled phase a point carries three kinds of rows (`harness.profile.rows`): module rows
(`module` = a module path), role-group rows (`module` = "group:<component>/<role>") and the
whole-phase check `profile_overhead` (`module` = ""). Module rows and group rows each sum to the
whole phase, so the report reads shares from the group rows only and never adds the two kinds.
`profile_overhead` says how far the profile can be trusted; it is no cost of the phase, so it is
kept out of every fit, comparison and failure table (`analysis.prepare` drops it).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from harness import schema, store
from harness.report import palette

GROUP_PREFIX = "group:"  # the `module` of role-group rows (harness.profile.tables.GROUP_PREFIX)
OVERHEAD = "profile_overhead"
# The largest |profiled / unprofiled - 1| at which a breakdown is the phase's own: the profiler's
# default (harness.profile.ProfileSettings.faithful_within), restated so reports need no torch.
FAITHFUL_WITHIN = 0.10
# Where a profiled point's files land: <run>/artifacts/<point_id>/profile/summary.md
# (harness.profile.profile_files' prefix and harness.profile.SUMMARY).
PROFILE_FOLDER = "profile"
SUMMARY = "summary.md"

POINT_COLUMNS = ["run_id", "point_id", "series", "variant", "setting", "size", "batch_size", "audio_seconds",
                 "prompt_tokens", "new_tokens"]


def is_profile_row(df: pd.DataFrame) -> pd.Series:
    """True for rows a profiler wrote: module or group rows, and the phase's overhead check."""
    module = df["module"].fillna("") if "module" in df else pd.Series("", index=df.index)
    return (module != "") | (df["metric"] == OVERHEAD)


def role_shares(rows: pd.DataFrame) -> pd.DataFrame:
    """Share of the profiled phase per (component, role) group, one row per point, phase and group.

    rows: profile rows with the columns `analysis.prepare` adds. Only measured group shares
    (status ok, finite). Columns: POINT_COLUMNS, phase, component, role, share, source.
    """
    groups = rows[rows["module"].str.startswith(GROUP_PREFIX) & (rows["metric"] == "share")
                  & (rows["status"] == "ok") & np.isfinite(rows["value"].astype(float))]
    parts = groups["module"].str.removeprefix(GROUP_PREFIX).str.split("/", n=1, expand=True)
    columns = [*POINT_COLUMNS, "phase", "component", "role", "share", "source"]
    if groups.empty:
        return pd.DataFrame(columns=columns)
    return groups.assign(component=parts[0], role=parts[1], share=groups["value"])[columns].reset_index(drop=True)


def verdict(overhead: float, status: str) -> str:
    """'faithful' / 'distorted' by FAITHFUL_WITHIN; a failed profile's status; 'not checked' without a value."""
    if status != "ok":
        return status
    if overhead is None or not math.isfinite(overhead):
        return "not checked"
    return "faithful" if abs(overhead) <= FAITHFUL_WITHIN else "distorted"


def overheads(rows: pd.DataFrame) -> pd.DataFrame:
    """The overhead check of every profiled (point, phase).

    Columns: POINT_COLUMNS, phase, overhead (profiled / unprofiled - 1), status, verdict, error.
    """
    checks = rows[(rows["metric"] == OVERHEAD) & (rows["module"] == "")]
    checks = checks.assign(overhead=checks["value"].astype(float))
    checks["verdict"] = [verdict(v, s) for v, s in zip(checks["overhead"], checks["status"])]
    return checks[[*POINT_COLUMNS, "phase", "overhead", "status", "verdict", "error"]].reset_index(drop=True)


def summary_path(run_dir: Path, point_id: str) -> Path:
    """Where a point's profile summary lives in its run folder."""
    return store.artifact_path(run_dir, point_id, f"{PROFILE_FOLDER}/{SUMMARY}")


def profiled_points(rows: pd.DataFrame, run_dirs: dict[str, Path]) -> pd.DataFrame:
    """One row per profiled point, with the path of its summary page (None when the file is missing).

    run_dirs: run id -> its folder. Columns: POINT_COLUMNS, summary.
    """
    points = rows.drop_duplicates(["run_id", "point_id"])[POINT_COLUMNS]
    paths = [summary_path(Path(run_dirs[r]), p) if r in run_dirs else None
             for r, p in zip(points["run_id"], points["point_id"])]
    points = points.assign(summary=[p if p is not None and p.is_file() else None for p in paths])
    rank = {v: i for i, v in enumerate(palette.variant_order(points["variant"]))}
    return points.sort_values(["variant", "size", "audio_seconds", "batch_size"], kind="stable",
                              key=lambda c: c.map(rank) if c.name == "variant" else c).reset_index(drop=True)


def ordered_phases(phases) -> list[str]:
    """Phases in the order the models run them (schema.PHASES), unknown ones last."""
    order = list(schema.PHASES)
    return sorted(set(phases), key=lambda p: (order.index(p) if p in order else len(order), p))
