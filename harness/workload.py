"""The workload a sweep runs per point: build the model, make inputs, measure the phases.

`measure_point(point, settings)` is what `run.workload` names by default. It runs inside the
isolated worker process, so it may fail in any way (the executor records how); it returns the
measurements as tidy rows (measure and context columns; the runner adds the point's identity)
and the raw timing samples.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from harness.measure.flops import measure_flops
from harness.measure.measurement import Measurement
from harness.measure.chain import PHASE_ORDER, PhaseInputs, context_length, inputs_for
from harness.measure.phases import PhaseSettings, run_phases
from harness.measure.timing import TimerSettings
from harness.points import Point, PointResult
from harness.roofline import bytes_moved_rows
from harness.suite import Measure
from harness.train_cost.workload import measure_train_step, search_max_batch
from models import LALM, build
from models.analytic import state_bytes as analytic_state_bytes
from models.audio import SAMPLE_RATE
from models.ops.cpu_gemv import matmul_backend

def phase_settings(point: Point, settings: Measure) -> PhaseSettings:
    """The suite's measure settings in the meters' terms."""
    timer = TimerSettings(warmup=settings.warmup, warmup_seconds=settings.warmup_seconds, min_runs=settings.repeats,
                          max_runs=settings.max_repeats, max_seconds=settings.max_phase_seconds,
                          target_rel_spread=settings.target_rel_spread)
    return PhaseSettings(phases=tuple(p for p in settings.phases if p in PHASE_ORDER), timer=timer, mode=point.mode,
                         memory="memory" in settings.meters, energy="energy" in settings.meters)


def measure_point(point: Point, settings: Measure) -> PointResult:
    """Measure one point: every requested phase under the requested meters."""
    device = torch.device(point.device)
    training = "train_step" in settings.phases
    # Before this process puts a model on the device: the search's tries need its memory.
    max_batch = search_max_batch(point, settings) if training else []
    started = time.perf_counter()
    lalm = build(point.variant, point.size, device=device, dtype=getattr(torch, point.dtype),
                 scan_backend=point.scan_backend, seed=settings.seed)
    built = Measurement("build_ms", (time.perf_counter() - started) * 1e3, "ms", source="time.perf_counter")
    inputs = inputs_for(point, lalm.lm.vocab_size, settings.seed, device)
    inference = phase_settings(point, settings)
    measured = {"build": [built], **run_phases(lalm, inputs, inference, device)}
    _add(measured, closed_forms(point, settings, inference.phases))
    if "state" in settings.meters and "prefill" in measured:
        measured["prefill"].append(state_bytes_analytic(lalm, point, inputs))
    files: dict[str, bytes] = {}
    if settings.profile and point.mode == "eager":
        profile_rows, files = _profile(lalm, inputs, inference.phases, device)
    else:
        profile_rows = []
    if training:  # last: it makes the model a training one (LoRA adapters, train mode)
        measured["train_step"] = measure_train_step(lalm, point, settings, inference.timer) + max_batch
    context = {"scan_backend": lalm.scan_backend, "attn_backend": lalm.lm.attention_implementation}
    rows, samples = [], []
    for phase, measurements in measured.items():
        for m in measurements:
            if m.metric == "state_bytes" and "state" not in settings.meters:
                continue
            train_columns = settings.train.columns() if phase == "train_step" else {}
            rows.append(m.to_row(phase=phase, **context, **phase_context(lalm, point, phase), **train_columns))
            samples += m.sample_rows(phase=phase)
    rows += [{**row, **context, **phase_context(lalm, point, row["phase"])} for row in profile_rows]
    return PointResult(rows, samples, files)


def phase_context(lalm: LALM, point: Point, phase: str) -> dict[str, str]:
    """What ran that depends on the phase: the decode step's matmul kernel (`models.ops.cpu_gemv`
    decides it per step) for the phases that take decode steps."""
    takes_steps = phase in ("decode", "e2e")
    return {"matmul_backend": matmul_backend(point.batch_size, lalm.device, lalm.dtype) if takes_steps else ""}


def _add(measured: dict[str, list[Measurement]], extra: dict[str, list[Measurement]]) -> None:
    for phase, measurements in extra.items():
        measured.setdefault(phase, []).extend(measurements)


def closed_forms(point: Point, settings: Measure, phases: tuple[str, ...]) -> dict[str, list[Measurement]]:
    """The rows that need no run: FLOPs (counted on the meta device, and closed form) with the
    `flops` or `roofline` meter, bytes moved with `roofline` (the roofline is built on both)."""
    found: dict[str, list[Measurement]] = {}
    if "flops" in settings.meters or "roofline" in settings.meters:
        _add(found, count_flops_on_meta(point, settings, phases))
    if "roofline" in settings.meters:
        _add(found, bytes_moved_rows(point, phases))
    return found


def closed_form_rows(point: Point, settings: Measure) -> list[dict]:
    """`closed_forms` as rows, for a point whose run failed (its FLOPs and bytes are still known)."""
    phases = phase_settings(point, settings).phases
    return [m.to_row(phase=phase) for phase, ms in closed_forms(point, settings, phases).items() for m in ms]


def count_flops_on_meta(point: Point, settings: Measure, phases: tuple[str, ...]) -> dict[str, list[Measurement]]:
    """Counted and analytic FLOPs per phase, on a meta-device copy of the point's model.

    On the meta device only shapes flow: the count takes well under a second at any size and
    cannot run out of memory, so a point whose real run fails still gets its FLOPs.
    """
    meta = build(point.variant, point.size, device="meta", dtype=getattr(torch, point.dtype),
                 scan_backend=point.scan_backend, seed=settings.seed)
    wave = torch.zeros(point.batch_size, round(point.audio_seconds * SAMPLE_RATE), device="meta")
    prompt = torch.zeros(point.batch_size, point.prompt_tokens, dtype=torch.long, device="meta")
    return measure_flops(meta, wave, prompt, phases, new_tokens=point.new_tokens)


def state_bytes_analytic(lalm: LALM, point: Point, inputs: PhaseInputs) -> Measurement:
    """The closed-form size of the prefill's cache, next to the measured `state_bytes`."""
    context = context_length(lalm, inputs)
    value = analytic_state_bytes(lalm.spec, point.batch_size, context, getattr(torch, point.dtype))
    return Measurement("state_bytes_analytic", float(value), "B", source="models.analytic.state_bytes",
                       note=f"closed form after {context} positions")


def _profile(lalm: LALM, inputs: PhaseInputs, phases: tuple[str, ...], device: torch.device):
    """Profile rows (module column set) and the profile's files, handed back with the point."""
    from harness.profile import profile_files, profile_point

    with tempfile.TemporaryDirectory() as tmp:
        rows = profile_point(lalm, inputs, phases, Path(tmp), device=device)
        return rows, profile_files(Path(tmp))

