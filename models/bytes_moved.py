"""Closed-form bytes each phase moves to and from memory: the other axis of the roofline.

Per call of a phase, by kind (each family's `bytes_moved` gives its part):
- `weights`: every parameter the phase uses, read once (a decode step reads the whole LM; an
  embedding table only at the rows looked up, unless it is also the LM head).
- `state_read` / `state_written`: the LM cache. An attention LM reads the keys and values of
  every cached and new position and writes the new ones; an SSM reads (after the first token) and
  writes its fixed-size state.
- `activations`: every contraction, norm, activation, residual add and scan reads its inputs and
  writes its output once (an attention kernel reads Q, K and V and writes its output, as fused
  sdpa kernels do; a math path that writes the score matrix moves more).

A model of traffic to memory, not of caches: a tensor that stays in cache between two operators
is counted twice, so at small shapes (everything in cache) the bytes are an upper bound and a
roofline built on them says "overhead-bound" rather than "bandwidth-bound". At the paper's shapes
the weights (and at long contexts the KV cache) dominate: what a decode step must stream. The
fbank runs in float32 whatever the model's dtype.
"""
from __future__ import annotations

import torch

from models.audio.fbank import NUM_MEL_BINS, SAMPLE_RATE, frame_sizes, num_frames
from models.audio_tokens import tokens_for_frames
from models.closed_form import Costs
from models.lalm import ModelSpec, padded_frames
from models.phases import compose
from models.registry import families

KINDS = ("weights", "state_read", "state_written", "activations")


def _sum(*parts: Costs) -> Costs:
    return {kind: sum(part.get(kind, 0) for part in parts) for kind in KINDS}


def fbank_bytes(batch: int, num_samples: int) -> Costs:
    """The waveform in; per frame the padded window, its spectrum and power, the mel energies out."""
    frames = batch * num_frames(num_samples)
    n_fft = 1 << (frame_sizes(SAMPLE_RATE)[0] - 1).bit_length()
    return _sum({"activations": 4 * (batch * num_samples + frames * (3 * n_fft + n_fft // 2 + 1 + NUM_MEL_BINS))})


def phase_bytes(spec: ModelSpec, phase: str, batch: int, audio_seconds: float, dtype: torch.dtype,
                prompt_tokens: int = 0, context: int | None = None, new_tokens: int = 1) -> Costs:
    """Bytes one call of `phase` moves, by kind; the arguments are those of
    `models.analytic.phase_flops` (a decode step at `context` cached positions, default audio +
    prompt; e2e = fbank, encoder, prefill and `new_tokens - 1` decode steps)."""
    encoder, lm = families(spec)
    enc_shape, lm_shape = encoder.shapes[spec.size], lm.shapes[spec.size]
    samples = round(audio_seconds * SAMPLE_RATE)
    frames = padded_frames(samples)

    def one_call(part: str, positions: int) -> Costs:
        if part == "fbank":
            return fbank_bytes(batch, samples)
        if part == "encoder":
            return _sum(encoder.bytes_moved(enc_shape, batch, frames, dtype))
        if part == "prefill":
            projector = encoder.projector_bytes(enc_shape, lm.width(lm_shape), batch, frames, dtype)
            return _sum(projector, lm.bytes_moved(lm_shape, batch, positions, 0, dtype))
        return _sum(lm.bytes_moved(lm_shape, batch, 1, positions, dtype))

    return compose(phase, one_call, _sum, tokens_for_frames(frames) + prompt_tokens, context, new_tokens)


def lalm_bytes(spec: ModelSpec, phase: str, batch: int, audio_seconds: float, dtype: torch.dtype,
               prompt_tokens: int = 0, context: int | None = None, new_tokens: int = 1) -> int:
    """Total bytes one call of `phase` moves (see `phase_bytes`)."""
    return sum(phase_bytes(spec, phase, batch, audio_seconds, dtype, prompt_tokens, context, new_tokens).values())
