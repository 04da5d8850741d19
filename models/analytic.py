"""Closed-form costs of every component: forward FLOPs, parameter counts, LM state bytes.

These are the independent check on what `torch.utils.flop_counter.FlopCounterMode` counts while
the models run, so they follow the same convention, stated once here:

- One multiply-add is 2 FLOPs. A Linear(d_in, d_out) over t tokens is 2 * t * d_in * d_out;
  a convolution is 2 * (output positions) * c_out * (c_in / groups) * (kernel elements).
  Bias additions are not counted (torch's addmm and convolution formulas leave them out too).
- Attention is counted in full, causal or not: the scores Q K^T and the weighted sum A V each
  cost 2 * batch * heads * q_len * kv_len * head_dim, including the masked upper triangle.
  Torch's own attention formulas count it that way, its math path computes the whole square,
  and halving it for causal masks would credit kernels with skipping work most of them do.
- The selective scan is one opaque op whose formula (`models.ops.scan_flops`) includes its
  discretisation and gating arithmetic; everything else elementwise — norms, activations,
  softmax, residual adds, RoPE rotation, means and pooling, the fbank's pre-emphasis and log —
  is not counted anywhere. It is a few FLOPs per element against hundreds per element for the
  contractions; the counter reports how many elements it left out.
- A real FFT of n points costs 2.5 * n * log2(n) FLOPs (half of the complex FFT's customary
  5 n log2 n). Kaldi's fbank zero-pads each 400-sample frame to n = 512.
- Work an implementation computes and throws away (the causal conv1d's right padding in the
  Mamba LM, extra conv outputs in its decode step) is not in these formulas: a coverage above 1
  shows it.

Shapes: `batch` clips of `audio_seconds`; the encoders see `padded_frames(samples)` fbank frames
(1024 per 10 s), the LM `num_audio_tokens` audio tokens (32 per 10 s) followed by the prompt.
A decode step at context c processes one token with c positions already in the cache.
Each family's own closed forms live in its module (`models.families`); this module composes them
into phases. Everything here is pure arithmetic on the shapes: no tensors, no model, no harness.
"""
from __future__ import annotations

import math

import torch

from models.audio.fbank import NUM_MEL_BINS, SAMPLE_RATE, frame_sizes, num_frames
from models.audio_tokens import tokens_for_frames
from models.closed_form import Costs, add, linear, prefixed
from models.lalm import ModelSpec, padded_frames
from models.phases import compose
from models.registry import families


def rfft(n: int) -> int:
    """One real FFT of n points: 2.5 n log2 n, rounded to a whole FLOP."""
    return round(2.5 * n * math.log2(n)) if n > 1 else 0


def fbank_flops(batch: int, num_samples: int) -> Costs:
    """Kaldi fbank of (batch, num_samples) at 16 kHz: one real FFT and one mel matmul per frame."""
    frames = batch * num_frames(num_samples)
    n_fft = 1 << (frame_sizes(SAMPLE_RATE)[0] - 1).bit_length()
    return {"rfft": frames * rfft(n_fft), "mel": linear(frames, n_fft // 2 + 1, NUM_MEL_BINS)}


def widths(spec: ModelSpec) -> tuple[int, int]:
    """(encoder output width, LM width) of the spec's shapes: the projector's in and out."""
    encoder, lm = families(spec)
    return encoder.width(encoder.shapes[spec.size]), lm.width(lm.shapes[spec.size])


def lm_flops(spec: ModelSpec, batch: int, new_tokens: int, past: int = 0) -> Costs:
    """Prefill (past=0) or a decode step (new_tokens=1, past=context), logits at the last position only."""
    _, lm = families(spec)
    return lm.flops(lm.shapes[spec.size], batch, new_tokens, past)


def phase_flops(
    spec: ModelSpec,
    phase: str,
    batch: int,
    audio_seconds: float,
    prompt_tokens: int = 0,
    context: int | None = None,
    new_tokens: int = 1,
) -> Costs:
    """FLOPs of one call of `phase` by component, e.g. {"encoder.mlp": ..., "lm.lm_head": ...}.

    fbank: waveform -> features. encoder: features -> encoder output. prefill: projector + LM over
    audio + prompt tokens. decode: one step at `context` cached positions (default audio + prompt).
    e2e: `generate` of `new_tokens` tokens (fbank, encoder, prefill, then new_tokens - 1 steps).
    """
    encoder, _ = families(spec)
    samples = round(audio_seconds * SAMPLE_RATE)
    frames = padded_frames(samples)

    def one_call(part: str, positions: int) -> Costs:
        if part == "fbank":
            return prefixed("fbank", fbank_flops(batch, samples))
        if part == "encoder":
            return prefixed("encoder", encoder.flops(encoder.shapes[spec.size], batch, frames))
        if part == "prefill":
            return add(
                prefixed("projector", encoder.projector_flops(*widths(spec), batch, frames)),
                prefixed("lm", lm_flops(spec, batch, positions)),
            )
        return prefixed("lm", lm_flops(spec, batch, 1, positions))

    return compose(phase, one_call, add, tokens_for_frames(frames) + prompt_tokens, context, new_tokens)


def lalm_flops(
    spec: ModelSpec,
    phase: str,
    batch: int,
    audio_seconds: float,
    prompt_tokens: int = 0,
    context: int | None = None,
    new_tokens: int = 1,
) -> int:
    """Total FLOPs of one call of `phase` (see `phase_flops` for the arguments)."""
    return sum(phase_flops(spec, phase, batch, audio_seconds, prompt_tokens, context, new_tokens).values())


def state_bytes(spec: ModelSpec, batch: int, context: int, dtype: torch.dtype) -> int:
    """Bytes the LM keeps between steps after `context` positions (its family's closed form)."""
    _, lm = families(spec)
    return lm.state_bytes(lm.shapes[spec.size], batch, context, dtype)


def lalm_params(spec: ModelSpec) -> Costs:
    """Parameters per component: {"frontend", "encoder", "projector", "lm"} (the fbank has none)."""
    encoder, lm = families(spec)
    return {"frontend": 0, "encoder": encoder.params(encoder.shapes[spec.size]),
            "projector": encoder.projector_params(*widths(spec)), "lm": lm.params(lm.shapes[spec.size])}
