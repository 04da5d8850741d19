"""Per-phase efficiency, fitted on measured runs.

A phase's time is modelled as  t = overhead_s * modules + floor_s / efficiency : a fixed cost
per module the phase runs (dispatch, Python, small kernels: what dominates tiny models) plus the
roofline floor (`harness.roofline.floor_seconds`) stretched by how far below the ceilings the
kernels run. Both are fitted by non-negative least squares on relative errors, per phase, for
the part of the model the phase runs (the encoder family, the LM family), device and dtype;
the working-memory share is the median of measured peak above the phase's start, over its
closed-form activation bytes. Without a calibration, overhead is 0 and efficiency 1: the
prediction is the floor, a lower bound.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from harness import store
from harness.errors import UserError
from harness.measure.ceilings import Ceilings
from harness.plan.costs import PHASES, point_cost
from harness.points import Point
from harness.roofline import floor_seconds
from models import build

Key = tuple[str, str, str, str]  # phase, component (family name or "fbank"), device, dtype
Measured = tuple[Point, str, float, float]  # point, phase, latency_s, peak_mem_bytes
PRIOR_WEIGHT = 0.05  # of the pull towards efficiency 1, against one sample's relative error


@dataclass(frozen=True)
class Fit:
    overhead_s: float = 0.0  # per module
    efficiency: float = 1.0
    memory_share: float = 1.0
    points: int = 0  # calibration points behind it (0: the uncalibrated floor)


BUILD = "build"  # the model's construction: fitted like a phase, its floor writing the weights once


def component(point: Point, phase: str) -> str:
    """The part of the model a phase runs, named by its family."""
    if phase in ("fbank", BUILD):
        return phase
    return point.encoder if phase == "encoder" else point.lm


def key(point: Point, phase: str) -> Key:
    return phase, component(point, phase), point.device, point.dtype


@functools.cache
def modules(variant: str, size: str, phase: str) -> int:
    """Leaf modules the phase runs (built on the meta device: no memory, well under a second)."""
    model = build(variant, size, device="meta")
    parts = {"fbank": [model.frontend], "encoder": [model.encoder], "prefill": [model.projector, model.lm],
             "decode": [model.lm], BUILD: [model]}[phase]
    return max(1, sum(1 for part in parts for m in part.modules() if not list(m.children())))


def floor(point: Point, phase: str, ceilings: Ceilings) -> float:
    """The roofline floor of one call of `phase`; for the build, writing every weight once."""
    if phase == BUILD:
        return point_cost(point).weight_bytes / ceilings.bandwidth
    cost = point_cost(point).phases[phase]
    return floor_seconds(cost.flops, cost.bytes, ceilings.peak_flops(point.dtype), ceilings.bandwidth)


def fit(samples: list[tuple[float, float, float]]) -> tuple[float, float]:
    """(overhead per module, efficiency) from (modules, floor_s, measured_s) samples, least squares
    on relative error; efficiency at most 1 (nothing beats the floor), and 1 when the samples
    cannot tell it (all overhead: tiny models on a CPU)."""
    # One more row pulls 1 / efficiency gently towards 1: where the floor is a negligible share of
    # every sample (tiny models), the data cannot tell the efficiency, and the fixed cost per
    # module, not an efficiency of 1 %, is what carries to larger shapes.
    a = np.array([[m / t, f / t] for m, f, t in samples] + [[0.0, PRIOR_WEIGHT]])
    (overhead, inverse), _ = nnls(a, np.array([1.0] * len(samples) + [PRIOR_WEIGHT]))
    return overhead, 1.0 if inverse <= 1 else 1 / inverse  # unidentified (0): the floor itself


def run_points(run_dir: Path) -> tuple[list[Measured], dict | None]:
    """(point, phase, latency_s, peak_mem_bytes) of every ok phase row of a run, and its ceilings."""
    run = store.load_run(run_dir)
    results = run.results
    ok = results[(results["status"] == "ok") & results["phase"].isin((*PHASES, BUILD)) & (results["module"] == "")]
    if ok.empty:
        raise UserError(f"--calibrate {run_dir}: the run has no measured phases to calibrate on")
    wide = ok.pivot_table(index=["point_id", "phase"], columns="metric", values="value", aggfunc="first")
    if "latency_ms" not in wide:
        raise UserError(f"--calibrate {run_dir}: the run has no latency rows")
    ident = results.drop_duplicates("point_id").set_index("point_id")
    found = []
    for (point_id, phase), line in wide.iterrows():
        seconds = line.get("build_ms" if phase == BUILD else "latency_ms", math.nan) / 1e3
        if math.isnan(seconds):
            continue
        row = ident.loc[point_id]
        point = Point(row["variant"], row["size"], row["device"], row["dtype"], int(row["batch_size"]),
                      float(row["audio_seconds"]), int(row["prompt_tokens"]), int(row["new_tokens"]),
                      row["requested_scan_backend"] or "auto", row["mode"] or "eager")
        found.append((point, phase, seconds, line.get("peak_mem_bytes", math.nan)))
    ceilings = next((s["ceilings"] for s in reversed(run.meta.get("sessions", []))
                     if "flops_per_s" in s.get("ceilings", {})), None)
    return found, ceilings


def fit_measured(runs: list[tuple[list[Measured], Ceilings]]) -> dict[Key, Fit]:
    """Fits per key from measured phases, each run's against the ceilings of the machine it ran on."""
    samples: dict[Key, list[tuple[float, float, float]]] = {}
    shares: dict[Key, list[float]] = {}
    for measured, ceilings in runs:
        for point, phase, seconds, peak in measured:
            k = key(point, phase)
            samples.setdefault(k, []).append((modules(point.variant, point.size, phase),
                                              floor(point, phase, ceilings), seconds))
            activations = point_cost(point).phases[phase].activation_bytes if phase != BUILD else 0
            if peak > 0 and activations > 0:
                shares.setdefault(k, []).append(peak / activations)
    fits = {}
    for k, rows in samples.items():
        overhead, efficiency = fit(rows)
        fits[k] = Fit(overhead, efficiency, float(np.median(shares[k])) if k in shares else 1.0, len(rows))
    return fits


def calibrate(run_dirs: list[Path], fallback: Ceilings) -> dict[Key, Fit]:
    """Fits from the runs' phases, each run against its own measured ceilings (`fallback` for a
    run that recorded none)."""
    runs = []
    for run_dir in run_dirs:
        measured, recorded = run_points(run_dir)
        runs.append((measured, Ceilings.from_dict(recorded) if recorded else fallback))
    return fit_measured(runs)


def lookup(fits: dict[Key, Fit], point: Point, phase: str) -> Fit:
    """The fit for the point's phase: same component, device and dtype; else the same component
    on any dtype of the device; else the uncalibrated floor."""
    k = key(point, phase)
    if k in fits:
        return fits[k]
    near = [f for (p, c, d, _), f in fits.items() if (p, c, d) == k[:3]]
    return max(near, key=lambda f: f.points) if near else Fit()
