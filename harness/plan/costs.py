"""A point's closed forms, per phase: FLOPs and bytes moved, and the weights and cache it holds.

Bytes are split the way they cost: `stream_bytes` (the weights and the LM cache, read from
memory on every call whatever the cache sizes) and `activation_bytes` (every operator's inputs
and output, an upper bound at small shapes where they stay in cache). What each phase holds in
memory comes from a dry run instead (`harness.plan.working_set`).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from harness.points import Point
from models.analytic import lalm_flops, lalm_params
from models.bytes_moved import phase_bytes
from models.lalm import num_audio_tokens
from models.phases import CHAIN as PHASES  # e2e is their sum: fbank, encoder, prefill, n - 1 steps
from models.registry import families, spec_for


@dataclass(frozen=True)
class PhaseCost:
    flops: float
    stream_bytes: float  # weights and LM cache read or written
    activation_bytes: float

    @property
    def bytes(self) -> float:
        return self.stream_bytes + self.activation_bytes


@dataclass(frozen=True)
class PointCost:
    weight_bytes: float
    state_growth_bytes: float  # the LM cache after every new token, beyond that after the first
    phases: dict[str, PhaseCost]


@functools.cache
def point_cost(point: Point) -> PointCost:
    """The closed forms of `point`'s phases (one call each; a decode step at audio + prompt)."""
    spec = spec_for(point.variant, point.size)
    dtype = getattr(torch, point.dtype)
    phases = {}
    for phase in PHASES:
        args = (spec, phase, point.batch_size, point.audio_seconds)
        moved = phase_bytes(*args, dtype, point.prompt_tokens)
        phases[phase] = PhaseCost(float(lalm_flops(*args, point.prompt_tokens)),
                                  float(sum(moved.values()) - moved["activations"]), float(moved["activations"]))
    _, lm = families(spec)
    prefix = num_audio_tokens(point.audio_seconds) + point.prompt_tokens
    shape = lm.shapes[spec.size]
    growth = (lm.state_bytes(shape, point.batch_size, prefix + max(point.new_tokens, 1), dtype)
              - lm.state_bytes(shape, point.batch_size, prefix + 1, dtype))
    return PointCost(float(sum(lalm_params(spec).values()) * dtype.itemsize), float(growth), phases)
