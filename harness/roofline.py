"""The roofline: how close each phase came to the machine's ceilings, computed in one place.

For a phase that does F FLOPs and moves B bytes (closed forms), on a machine with peak P FLOP/s
for the phase's dtype and bandwidth W bytes/s (`harness.measure.ceilings`), no implementation
can take less than the floor max(F / P, B / W). With the measured latency t:

    achieved_flops_per_s = F / t      achieved_bytes_per_s = B / t
    roofline_fraction    = max(F / P, B / W) / t      (<= 1 up to noise in the ceilings)

Which limit the floor comes from says whether a phase *should* be compute-bound (its arithmetic
intensity F / B above the ridge point P / W) or bandwidth-bound; a fraction far below 1 says
neither limit is what sets its time: it is overhead-bound (dispatch, Python, small kernels).
The run writes these rows next to the phase's own (`with_roofline`), and the report recomputes
them the same way for runs written before them.
"""
from __future__ import annotations

import math

import pandas as pd
import torch

from harness.measure.ceilings import Ceilings, capture
from harness.measure.measurement import Measurement
from harness.points import Point
from harness.schema import INFERENCE_PHASES as PHASES, METRIC_UNITS
from harness.suite import Suite
from models.bytes_moved import phase_bytes
from models.registry import spec_for

FLOP_METRICS = ("flops_analytic", "flops")  # closed form first: what the floor is defined on
BYTES_METRIC = "bytes_moved"
DERIVED = ("achieved_flops_per_s", "achieved_bytes_per_s", "roofline_fraction")
# Below this fraction of its floor, a phase's time is set by neither ceiling.
OVERHEAD_FRACTION = 0.1


def floor_seconds(flops: float, nbytes: float, peak_flops: float, bandwidth: float) -> float:
    """The least time any implementation needs: max(FLOPs / peak, bytes / bandwidth)."""
    return max(flops / peak_flops, nbytes / bandwidth)


def bound(flops: float, nbytes: float, peak_flops: float, bandwidth: float, fraction: float = math.nan) -> str:
    """"compute" or "bandwidth" (the ceiling the floor comes from), or "overhead" when the phase
    reached less than `OVERHEAD_FRACTION` of its floor."""
    if fraction < OVERHEAD_FRACTION:
        return "overhead"
    return "compute" if flops / peak_flops >= nbytes / bandwidth else "bandwidth"


def derived(flops: float, nbytes: float, seconds: float, peak_flops: float, bandwidth: float) -> dict[str, float]:
    """The three derived metrics of one phase call (NaN where an input is missing)."""
    return {
        "achieved_flops_per_s": flops / seconds,
        "achieved_bytes_per_s": nbytes / seconds,
        "roofline_fraction": floor_seconds(flops, nbytes, peak_flops, bandwidth) / seconds,
    }


def phase_table(results: pd.DataFrame) -> pd.DataFrame:
    """One line per (point, phase) with an ok latency: latency_s, flops, bytes, dtype."""
    ok = results[(results["status"] == "ok") & results["phase"].isin(PHASES) & (results["module"] == "")]
    wide = ok.pivot_table(index=["point_id", "phase"], columns="metric", values="value", aggfunc="first")
    if "latency_ms" not in wide or BYTES_METRIC not in wide:
        return pd.DataFrame(columns=["point_id", "phase", "latency_s", "flops", "bytes", "dtype"])
    flops = next((wide[m] for m in FLOP_METRICS if m in wide), pd.Series(math.nan, index=wide.index))
    for metric in FLOP_METRICS[1:]:
        if metric in wide:
            flops = flops.fillna(wide[metric])
    table = pd.DataFrame({"latency_s": wide["latency_ms"] / 1e3, "flops": flops, "bytes": wide[BYTES_METRIC]})
    dtypes = results.drop_duplicates("point_id").set_index("point_id")["dtype"]
    table = table.dropna().reset_index()
    table["dtype"] = table["point_id"].map(dtypes)
    return table


def with_roofline(results: pd.DataFrame, ceilings: Ceilings | dict | None) -> pd.DataFrame:
    """`results` with the derived rows added per (point, phase) that has a latency, FLOPs and
    bytes moved; rows already derived are replaced. Unchanged without ceilings."""
    if isinstance(ceilings, dict):
        ceilings = Ceilings.from_dict(ceilings) if "flops_per_s" in ceilings else None
    if ceilings is None or results.empty:
        return results
    kept = results[~results["metric"].isin(DERIVED)]
    table = phase_table(kept)
    if table.empty:
        return kept
    first = kept.drop_duplicates(["point_id", "phase"]).set_index(["point_id", "phase"])
    rows = []
    for line in table.itertuples(index=False):
        base = first.loc[(line.point_id, line.phase)].to_dict()
        values = derived(line.flops, line.bytes, line.latency_s, ceilings.peak_flops(line.dtype), ceilings.bandwidth)
        for metric, value in values.items():
            rows.append({**base, "point_id": line.point_id, "phase": line.phase, "metric": metric, "value": value,
                         "unit": METRIC_UNITS[metric], "lo": math.nan, "hi": math.nan, "n": 1, "status": "ok",
                         "error": "", "source": f"harness.roofline ({ceilings.source} ceilings)", "note": ""})
    return pd.concat([kept, pd.DataFrame(rows, columns=kept.columns).astype(kept.dtypes.to_dict())],
                     ignore_index=True)


def bytes_moved_rows(point: Point, phases: tuple[str, ...]) -> dict[str, list[Measurement]]:
    """The closed-form `bytes_moved` of each phase of `point`, by kind in the note."""
    spec = spec_for(point.variant, point.size)
    rows = {}
    for phase in (p for p in phases if p in PHASES):
        moved = phase_bytes(spec, phase, point.batch_size, point.audio_seconds, getattr(torch, point.dtype),
                            point.prompt_tokens, new_tokens=point.new_tokens)
        note = ", ".join(f"{kind} {value}" for kind, value in moved.items() if value)
        rows[phase] = [Measurement(BYTES_METRIC, float(sum(moved.values())), "B", source="models.bytes_moved",
                                   note=note)]
    return rows


def session_ceilings(suite: Suite) -> dict:
    """{"ceilings": ...} measured now for a run whose suite asks for the roofline, else {}."""
    return {"ceilings": capture(suite.run.device, suite.run.threads)} if "roofline" in suite.measure.meters else {}
