"""Per-phase cost per module and efficiencies, fitted on measured runs.

A phase's time is modelled as

    t = overhead_s * modules + flops / (peak * compute_eff) + stream_bytes / (bandwidth * stream_eff)
        + activation_bytes / (bandwidth * activation_eff)

a fixed cost per module the phase runs (dispatch, Python, small kernels: what dominates tiny
models), then its arithmetic, its weights and cache streamed from memory, and its activations
moved, each at its own fraction of the ceilings (`harness.plan.costs` splits the bytes). The
terms add up rather than overlap: on one CPU thread a phase's kernels run one after another,
and the bytes-bound ones (weights streamed for each token) and the compute-bound ones (long
clips' matmuls) run at different fractions of their ceilings (fitted on a CPU: streaming
weights at ~0.3 of the read bandwidth in decode and prefill alike, matmuls at 0.6-1 of the
peak); one efficiency against max(FLOPs / peak, bytes / bandwidth) cannot fit both.

Fitted by non-negative least squares on relative errors, per phase, for the part of the model
the phase runs (the encoder family, the LM family; the build per variant, its stream being every
weight written once: random initialisation costs ~100x that, and the fit says so), device and
dtype. Each efficiency is at most 1, and fitted only where the samples tell it (`fit`): a
calibration on tiny models, whose time is the cost per module, says nothing of how fast larger
ones stream their weights, and predicts them at the ceiling, too fast. Without a calibration, a
phase's time is its roofline floor (`harness.roofline.floor_seconds`), a lower bound.
"""
from __future__ import annotations

import functools
import itertools
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
from models.compute_dtype import compute_dtype

Key = tuple[str, str, str, str]  # phase, component (family name, "fbank", the variant for the build), device, dtype
Measured = tuple[Point, str, float, float]  # point, phase, latency_s, peak_mem_bytes
Terms = tuple[float, float, float, float]  # modules, compute_s, stream_s, activation_s (at the ceilings)
# A term must reach this share of some sample's time for its efficiency to be fitted at all: a
# term of 1e-6 of every sample could absorb any noise that happens to grow with it.
TELLS = 0.005
DISTINCT = 2.0  # how much a term's ratio to the module count must vary over the samples
EXTRAPOLATION = 2.0  # a term's share of a predicted time beyond this multiple of the calibration's
MATERIAL = 0.1  # ... and at least this share: below it, even a guessed efficiency moves little
BUILD = "build"  # the model's construction: fitted like a phase, its stream writing the weights once


@dataclass(frozen=True)
class Fit:
    overhead_s: float = 0.0  # per module
    compute_eff: float = 1.0
    stream_eff: float = 1.0
    activation_eff: float = 1.0
    points: int = 0  # calibration points behind it (0: the uncalibrated floor)
    max_shares: tuple[float, float, float] = (0.0, 0.0, 0.0)  # the most each term took of a sample's time

    def seconds(self, terms: Terms) -> float:
        modules, compute, stream, activation = terms
        return (self.overhead_s * modules + compute / self.compute_eff + stream / self.stream_eff
                + activation / self.activation_eff)

    def extrapolates(self, terms: Terms) -> bool:
        """Whether a roofline term takes a material share of the predicted time, and more than
        `EXTRAPOLATION` times the most it took of any calibration sample's: there its efficiency
        was never seen at work (tiny models calibrating small ones, whose weights no longer fit
        in cache), and the prediction leans on a guess."""
        predicted = self.seconds(terms)
        return predicted > 0 and any(term / predicted >= max(MATERIAL, EXTRAPOLATION * seen)
                                     for term, seen in zip(terms[1:], self.max_shares))


def component(point: Point, phase: str) -> str:
    """The part of the model a phase runs, named by its family (the build: the variant)."""
    if phase == BUILD:
        return point.variant
    if phase == "fbank":
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


def terms(point: Point, phase: str, ceilings: Ceilings) -> Terms:
    """The phase's modules and the time of each roofline term at the ceilings."""
    cost = point_cost(point)
    count = modules(point.variant, point.size, phase)
    if phase == BUILD:
        return count, 0.0, cost.weight_bytes / ceilings.bandwidth, 0.0
    phase_cost = cost.phases[phase]
    peak = ceilings.peak_flops(compute_dtype(phase, point.dtype))  # the fbank's is float32, whatever the model's
    return (count, phase_cost.flops / peak, phase_cost.stream_bytes / ceilings.bandwidth,
            phase_cost.activation_bytes / ceilings.bandwidth)


def floor(point: Point, phase: str, ceilings: Ceilings) -> float:
    """The roofline floor of one call of `phase`; for the build, writing every weight once."""
    if phase == BUILD:
        return point_cost(point).weight_bytes / ceilings.bandwidth
    cost = point_cost(point).phases[phase]
    return floor_seconds(cost.flops, cost.bytes, ceilings.peak_flops(compute_dtype(phase, point.dtype)),
                         ceilings.bandwidth)


def _solve(shares: np.ndarray, told: list[int]) -> tuple[np.ndarray, float]:
    """(o, x) over the columns `told` (the others 0), and the sum of squared relative residuals."""
    solved, residual = nnls(shares[:, told], 1 - shares[:, 1:].sum(axis=1))
    excess = np.zeros(4)
    excess[told] = solved
    return excess, residual**2


def fit(samples: list[tuple[Terms, float]]) -> Fit:
    """The cost per module and the efficiencies from (terms, measured_s) samples: least squares on
    relative error, each inverse efficiency 1 + x with x >= 0 (nothing beats its ceiling).

    An efficiency is fitted only where the samples tell it: of every choice of which efficiencies
    to fit (the cost per module always is; a term only where it reaches `TELLS` of some sample's
    time and is not in a fixed proportion to the module count), the one with the least Schwarz
    criterion. A term the
    samples cannot tell (a negligible share of every sample: tiny models on a CPU) would
    otherwise take whatever x fits their noise and predict larger shapes wildly; left at
    efficiency 1, it is the cost per module that carries to them."""
    # Relative residual: (o * modules + sum term * (1 + x)) / t - 1, linear in (o, x) >= 0.
    shares = np.array([[m / t, c / t, s / t, v / t] for (m, c, s, v), t in samples])
    n = len(samples)
    # A term tells only where it reaches TELLS of some sample and its ratio to the module count
    # varies over the samples: in a fixed proportion to it (one model's weights at every clip
    # length) it is indistinguishable from a cost per module, and would take that cost's place.
    per_module = shares[:, 1:] / shares[:, :1]
    telling = {i + 1 for i in range(3) if shares[:, i + 1].max() >= TELLS
               and per_module[:, i].max() >= DISTINCT * per_module[:, i].min()}
    # At most n - 1 parameters: a fit through every sample would tell nothing of the noise.
    choices = [[0, *chosen] for r in range(max(1, min(4, n - 1))) for chosen in itertools.combinations((1, 2, 3), r)
               if all(i in telling for i in chosen)]

    def schwarz(told: list[int]) -> float:
        return n * math.log(max(_solve(shares, told)[1], 1e-12) / n) + math.log(n) * len(told)

    excess, _ = _solve(shares, min(choices, key=schwarz))
    return Fit(float(excess[0]), *(float(1 / (1 + x)) for x in excess[1:]), points=n,
               max_shares=tuple(float(v) for v in shares[:, 1:].max(axis=0)))


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
    samples: dict[Key, list[tuple[Terms, float]]] = {}
    for measured, ceilings in runs:
        for point, phase, seconds, _ in measured:
            samples.setdefault(key(point, phase), []).append((terms(point, phase, ceilings), seconds))
    return {k: fit(rows) for k, rows in samples.items()}


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
    on any dtype of the device; for a build, else another variant's on the device (every build
    constructs modules and draws random weights: far closer than the floor); else the
    uncalibrated floor."""
    k = key(point, phase)
    if k in fits:
        return fits[k]
    near = [f for (p, c, d, _), f in fits.items() if (p, c, d) == k[:3]]
    if not near and phase == BUILD:
        near = [f for (p, _, d, t), f in fits.items() if (p, d, t) == (BUILD, point.device, point.dtype)]
    return max(near, key=lambda f: f.points) if near else Fit()
