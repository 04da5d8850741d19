"""A point's closed forms, per phase: FLOPs, bytes moved, and the memory it needs.

Memory of a point = weights + the LM cache after the prompt and the new tokens + the largest
phase's working activations. The working activations are the phase's activation bytes
(`models.bytes_moved`) times a share: 1 (everything live at once, an upper bound) until a
calibration says how much of it the measured peaks held.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from harness.points import Point
from models.analytic import lalm_flops, lalm_params
from models.bytes_moved import phase_bytes
from models.audio import SAMPLE_RATE
from models.lalm import padded_frames
from models.registry import families, spec_for

PHASES = ("fbank", "encoder", "prefill", "decode")  # e2e is their sum: fbank, encoder, prefill, n - 1 steps


@dataclass(frozen=True)
class PhaseCost:
    flops: float
    bytes: float
    activation_bytes: float


@dataclass(frozen=True)
class PointCost:
    weight_bytes: float
    state_bytes: float  # the LM cache after the prompt and every new token
    phases: dict[str, PhaseCost]


def point_cost(point: Point) -> PointCost:
    """The closed forms of `point`'s phases (one call each; a decode step at audio + prompt)."""
    spec = spec_for(point.variant, point.size)
    dtype = getattr(torch, point.dtype)
    phases = {}
    for phase in PHASES:
        args = (spec, phase, point.batch_size, point.audio_seconds)
        moved = phase_bytes(*args, dtype, point.prompt_tokens)
        phases[phase] = PhaseCost(float(lalm_flops(*args, point.prompt_tokens)), float(sum(moved.values())),
                                  float(moved["activations"]))
    _, lm = families(spec)
    context = padded_frames(round(point.audio_seconds * SAMPLE_RATE)) // 32 + point.prompt_tokens + point.new_tokens
    state = lm.state_bytes(lm.shapes[spec.size], point.batch_size, context, dtype)
    return PointCost(float(sum(lalm_params(spec).values()) * dtype.itemsize), float(state), phases)
