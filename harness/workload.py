"""The workload a sweep runs per point: build the model, make inputs, measure the phases.

`measure_point(point, settings)` is what `run.workload` names by default. It runs inside the
isolated worker process, so it may fail in any way (the executor records how); it returns the
measurements as tidy rows (measure and context columns; the runner adds the point's identity)
and the raw timing samples.
"""
from __future__ import annotations

import torch

from harness.measure.phases import PHASE_ORDER, PhaseInputs, PhaseSettings, run_phases
from harness.measure.timing import TimerSettings
from harness.points import Point, PointResult
from harness.suite import Measure
from harness.train_cost.workload import measure_train_step, search_max_batch
from models import build
from models.audio import SAMPLE_RATE

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def phase_settings(point: Point, settings: Measure) -> PhaseSettings:
    """The suite's measure settings in the meters' terms."""
    timer = TimerSettings(warmup=settings.warmup, warmup_seconds=settings.warmup_seconds, min_runs=settings.repeats,
                          max_runs=settings.max_repeats, max_seconds=settings.max_phase_seconds,
                          target_rel_spread=settings.target_rel_spread)
    return PhaseSettings(phases=tuple(p for p in settings.phases if p in PHASE_ORDER), timer=timer, mode=point.mode,
                         memory="memory" in settings.meters, energy="energy" in settings.meters)


def inputs_for(point: Point, vocab_size: int, seed: int, device: torch.device) -> PhaseInputs:
    """Random audio in [-1, 1] and random prompt ids, seeded: (B, S) and (B, P) on `device`."""
    gen = torch.Generator().manual_seed(seed)
    samples = round(point.audio_seconds * SAMPLE_RATE)
    wave = torch.rand(point.batch_size, samples, generator=gen) * 2 - 1
    prompt = torch.randint(0, vocab_size, (point.batch_size, point.prompt_tokens), generator=gen)
    return PhaseInputs(wave.to(device), prompt.to(device), point.new_tokens)


def measure_point(point: Point, settings: Measure) -> PointResult:
    """Measure one point: every requested phase under the requested meters."""
    device = torch.device(point.device)
    training = "train_step" in settings.phases
    # Before this process puts a model on the device: the search's tries need its memory.
    max_batch = search_max_batch(point, settings) if training else []
    lalm = build(point.variant, point.size, device=device, dtype=DTYPES[point.dtype],
                 scan_backend=point.scan_backend, seed=settings.seed)
    inputs = inputs_for(point, lalm.lm.vocab_size, settings.seed, device)
    inference = phase_settings(point, settings)
    measured = run_phases(lalm, inputs, inference, device)
    if training:  # last: it makes the model a training one (LoRA adapters, train mode)
        measured["train_step"] = measure_train_step(lalm, point, settings, inference.timer) + max_batch
    context = {"scan_backend": lalm.scan_backend, "attn_backend": _attention(lalm)}
    rows, samples = [], []
    for phase, measurements in measured.items():
        for m in measurements:
            if m.metric == "state_bytes" and "state" not in settings.meters:
                continue
            train_columns = settings.train.columns() if phase == "train_step" else {}
            rows.append(m.to_row(phase=phase, **context, **train_columns))
            samples += m.sample_rows(phase=phase)
    return PointResult(rows, samples)


def _attention(lalm: object) -> str:
    """The attention implementation the LM runs ("" for Mamba, which has none)."""
    if lalm.spec.lm != "llama":
        return ""
    return str(getattr(lalm.lm.model.config, "_attn_implementation", "") or "")
