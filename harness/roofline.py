"""The roofline: how close each phase came to the machine's ceilings, computed in one place.

For a phase that does F FLOPs and moves B bytes (closed forms), on a machine with peak P FLOP/s
for the dtype the phase computes in (`models.compute_dtype`: the fbank's is float32 always) and
bandwidth W bytes/s (`harness.measure.ceilings`), no implementation can take less than the floor max(F / P, B / W). With the measured latency t:

    achieved_flops_per_s = F / t      achieved_bytes_per_s = B / t
    roofline_fraction    = max(F / P, B / W) / t      (<= 1 up to noise in the ceilings)

Which limit the floor comes from says whether a phase *should* be compute-bound (its arithmetic
intensity F / B above the ridge point P / W) or bandwidth-bound; a fraction far below 1 says
neither limit is what sets its time: it is overhead-bound (dispatch, Python, small kernels).
The run writes these rows next to the phase's own (`with_roofline`), with the ceilings of the
session that measured the point, and the fraction's note names the bound; the report reads them
back (`roofline_table`), deriving them only for points written before they existed.
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
from models.compute_dtype import compute_dtype
from models.registry import spec_for

FLOP_METRICS = ("flops_analytic", "flops")  # closed form first: what the floor is defined on
BYTES_METRIC = "bytes_moved"
DERIVED = ("achieved_flops_per_s", "achieved_bytes_per_s", "roofline_fraction")
BOUND_SUFFIX = "-bound"  # the roofline_fraction row's note: "compute-bound", "bandwidth-bound", "overhead-bound"
# Below this fraction of its floor, a phase's time is set by neither ceiling.
OVERHEAD_FRACTION = 0.1


def floor_seconds(flops: float, nbytes: float, peak_flops: float, bandwidth: float) -> float:
    """The least time any implementation needs: max(FLOPs / peak, bytes / bandwidth); NaN when
    either term is (a ceiling not measured, a closed form missing): half a floor is no floor,
    and the builtin max would answer either NaN or the other term depending on their order."""
    terms = (flops / peak_flops, nbytes / bandwidth)
    return math.nan if any(math.isnan(t) for t in terms) else max(terms)


def bound(flops: float, nbytes: float, peak_flops: float, bandwidth: float, fraction: float = math.nan) -> str:
    """"compute" or "bandwidth" (the ceiling the floor comes from), "overhead" when the phase
    reached less than `OVERHEAD_FRACTION` of its floor, or "unknown" when there is no floor."""
    if math.isnan(floor_seconds(flops, nbytes, peak_flops, bandwidth)):
        return "unknown"
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


def bound_note(bound_name: str) -> str:
    """The note of a `roofline_fraction` row: the limit that binds the phase ("compute-bound")."""
    return f"{bound_name}{BOUND_SUFFIX}"


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
    bytes moved and no derived rows yet: rows already derived are kept, since they were made with
    the ceilings of the session that measured their point. Unchanged without ceilings."""
    if isinstance(ceilings, dict):
        ceilings = Ceilings.from_dict(ceilings) if "flops_per_s" in ceilings else None
    if ceilings is None or results.empty:
        return results
    keys = ["point_id", "phase"]
    done = pd.MultiIndex.from_frame(results.loc[results["metric"].isin(DERIVED), keys])
    table = phase_table(results)
    table = table[~pd.MultiIndex.from_frame(table[keys]).isin(done)] if len(table) else table
    if table.empty:
        return results
    first = results.drop_duplicates(keys).set_index(keys)
    rows = []
    for line in table.itertuples(index=False):
        base = first.loc[(line.point_id, line.phase)].to_dict()
        peak = ceilings.peak_flops(compute_dtype(line.phase, line.dtype))
        values = derived(line.flops, line.bytes, line.latency_s, peak, ceilings.bandwidth)
        binds = bound_note(bound(line.flops, line.bytes, peak, ceilings.bandwidth, values["roofline_fraction"]))
        for metric, value in values.items():
            rows.append({**base, "point_id": line.point_id, "phase": line.phase, "metric": metric, "value": value,
                         "unit": METRIC_UNITS[metric], "lo": math.nan, "hi": math.nan, "n": 1, "status": "ok",
                         "error": "", "source": f"harness.roofline ({ceilings.source} ceilings)",
                         "note": binds if metric == "roofline_fraction" else ""})
    return pd.concat([results, pd.DataFrame(rows, columns=results.columns).astype(results.dtypes.to_dict())],
                     ignore_index=True)


def roofline_table(results: pd.DataFrame) -> pd.DataFrame:
    """`phase_table` with the stored derived rows beside it, per (point, phase) that has them:
    `achieved` FLOP/s, `fraction` of the floor and `bound` ("compute", "bandwidth", "overhead")."""
    table = phase_table(results)
    stored = results[results["metric"].isin(DERIVED) & (results["status"] == "ok") & (results["module"] == "")]
    if table.empty or stored.empty:
        return table.assign(achieved=pd.Series(dtype=float), fraction=pd.Series(dtype=float),
                            bound=pd.Series(dtype=str)).iloc[:0]
    keys = ["point_id", "phase"]
    by_key = stored.drop_duplicates(keys + ["metric"]).set_index(keys + ["metric"])
    fraction = by_key.xs("roofline_fraction", level="metric")
    table = table.join(by_key["value"].xs("achieved_flops_per_s", level="metric").rename("achieved"), on=keys)
    table = table.join(fraction["value"].rename("fraction"), on=keys)
    table = table.join(fraction["note"].str.removesuffix(BOUND_SUFFIX).rename("bound"), on=keys)
    return table.dropna(subset=["achieved", "fraction", "bound"]).reset_index(drop=True)


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
