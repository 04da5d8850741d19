"""Predictions per point: peak memory, each phase's time, the point's wall time, and flags.

A phase's time is `harness.plan.calibrate`'s model (the roofline floor where uncalibrated); e2e
is fbank + encoder + prefill + (new_tokens - 1) decode steps. A point's wall time is what the
timer spends on each requested phase: the warm-up runs, then at least `repeats` timed runs and
more up to `max_repeats` or `max_phase_seconds` (the upper end is taken: a plan should not
promise a point fits in its timeout when it may not), after the model's build (fitted like a
phase). The meters' own overhead is not included. A phase is `extrapolated` where a roofline
term takes a share of its time that the calibration never showed (`Fit.extrapolates`): calibrated
on tiny models, a small model's decode streams weights at an efficiency no tiny run exercised,
and its predicted time is then more a lower bound than an estimate.

Memory comes from the dry run (`harness.plan.working_set`): each phase's working set (what the
memory meter measures as its `peak_mem_bytes`), and the point's peak = weights + waveform + the
live tensors at the dry run's peak + the LM cache the remaining new tokens add. A run cannot
check a phase's working set below its meter's resolution (`mem_resolution_bytes`: 32 MiB on a
CPU, where malloc reuses resident heap): below it a prediction is a statement about tensors, not
one a measurement will confirm.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from harness.measure.ceilings import Ceilings
from harness.measure.memory import RESOLUTIONS
from harness.plan.calibrate import BUILD, Fit, floor, lookup, terms
from harness.plan.costs import PHASES, point_cost
from harness.plan.working_set import working_set
from harness.points import Point
from harness.suite import Suite
from models.audio import SAMPLE_RATE

WAVE_BYTES = 4  # the waveform is float32 whatever the model's dtype


@dataclass(frozen=True)
class Prediction:
    point: Point
    phase_s: dict[str, float]  # fbank, encoder, prefill, decode (per token), e2e, and the model's build
    phase_mem_bytes: dict[str, float]  # each phase's working set: its peak above what was resident
    peak_mem_bytes: float
    wall_s: float  # the point's build and the measurement of its requested phases
    calibrated: bool  # every phase from a fit (else some are the floor, a lower bound)
    extrapolated: tuple[str, ...]  # phases whose fit never saw a term take the share it takes here
    oom: bool
    timeout: bool

    def as_dict(self) -> dict:
        return {**self.point.as_dict(), "label": self.point.label, "phase_s": self.phase_s,
                "phase_mem_bytes": self.phase_mem_bytes, "mem_resolution_bytes": memory_resolution(self.point.device),
                "peak_mem_bytes": self.peak_mem_bytes, "wall_s": self.wall_s, "calibrated": self.calibrated,
                "extrapolated": list(self.extrapolated), "oom": self.oom, "timeout": self.timeout}


def memory_resolution(device: str) -> float:
    """The smallest phase footprint the device's memory meter tells apart from none."""
    source = "torch.cuda.max_memory_allocated" if device.startswith("cuda") else "proc.VmHWM"
    return RESOLUTIONS[(source, "peak_mem_bytes")][0]


def phase_seconds(point: Point, phase: str, fit: Fit, ceilings: Ceilings) -> float:
    """One call of `phase`: the fitted model, or the roofline floor where nothing was fitted."""
    return fit.seconds(terms(point, phase, ceilings)) if fit.points else floor(point, phase, ceilings)


def timed_seconds(t: float, suite: Suite) -> float:
    """What the timer spends on a phase of `t` seconds: warm-up, then repeats up to the caps."""
    m = suite.measure
    warmup = max(m.warmup, math.ceil(m.warmup_seconds / t) if t > 0 else 0)
    runs = max(m.repeats, min(m.max_repeats, math.ceil(m.max_phase_seconds / t) if t > 0 else m.max_repeats))
    return (warmup + runs) * t


def predict(point: Point, suite: Suite, ceilings: Ceilings, fits: dict) -> Prediction:
    phase_fits = {phase: lookup(fits, point, phase) for phase in (*PHASES, BUILD)}
    times = {phase: phase_seconds(point, phase, fit, ceilings) for phase, fit in phase_fits.items()}
    times["e2e"] = sum(times[p] for p in PHASES[:3]) + (point.new_tokens - 1) * times["decode"]
    cost = point_cost(point)
    dry = working_set(point)
    wave = point.batch_size * round(point.audio_seconds * SAMPLE_RATE) * WAVE_BYTES
    peak = cost.weight_bytes + wave + dry.peak_bytes + cost.state_growth_bytes
    measured = [p for p in suite.measure.phases if p in times and p != BUILD]
    wall = times[BUILD] + sum(timed_seconds(times[p], suite) for p in measured)
    limit = suite.run.memory_limit_mb * 2**20 if suite.run.memory_limit_mb else ceilings.memory_bytes
    extrapolated = tuple(p for p, f in phase_fits.items() if f.points and f.extrapolates(terms(point, p, ceilings)))
    return Prediction(point, times, {p: float(b) for p, b in dry.phase_bytes.items()}, peak, wall,
                      all(f.points for f in phase_fits.values()), extrapolated, oom=bool(limit and peak > limit),
                      timeout=bool(wall > suite.run.timeout_s))
