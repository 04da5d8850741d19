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
Everything here is pure arithmetic on the size presets: no tensors, no model, no harness.
"""
from __future__ import annotations

import math

import torch

from models.audio.fbank import NUM_MEL_BINS, SAMPLE_RATE, frame_sizes, num_frames
from models.encoders.dass import DIRECTIONS
from models.lalm import ModelSpec, padded_frames
from models.ops.scan_flops import scan_flops
from models.presets import SIZES, ASTShape, DASSShape, LlamaShape, MambaShape, SizePreset

Costs = dict[str, int]  # component name -> FLOPs (or parameters); the total is the sum

PHASES = ("fbank", "encoder", "prefill", "decode", "e2e")

# ---------------------------------------------------------------------------------------------
# Building blocks


def linear(tokens: int, d_in: int, d_out: int) -> int:
    """A Linear over `tokens` rows (bias not counted)."""
    return 2 * tokens * d_in * d_out


def conv(out_positions: int, c_out: int, c_in_per_group: int, kernel_elements: int) -> int:
    """A convolution producing `out_positions` output positions per channel, summed over the batch."""
    return 2 * out_positions * c_out * c_in_per_group * kernel_elements


def attention(batch: int, heads: int, q_len: int, kv_len: int, head_dim: int) -> int:
    """Scores (Q K^T) plus weighted sum (A V), full square whatever the mask."""
    return 2 * 2 * batch * heads * q_len * kv_len * head_dim


def rfft(n: int) -> int:
    """One real FFT of n points: 2.5 n log2 n, rounded to a whole FLOP."""
    return round(2.5 * n * math.log2(n)) if n > 1 else 0


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def _prefixed(prefix: str, costs: Costs) -> Costs:
    return {f"{prefix}.{name}": value for name, value in costs.items()}


def _add(*parts: Costs) -> Costs:
    total: Costs = {}
    for part in parts:
        for name, value in part.items():
            total[name] = total.get(name, 0) + value
    return total


# ---------------------------------------------------------------------------------------------
# Forward FLOPs per component


def fbank_flops(batch: int, num_samples: int) -> Costs:
    """Kaldi fbank of (batch, num_samples) at 16 kHz: one real FFT and one mel matmul per frame."""
    frames = batch * num_frames(num_samples)
    n_fft = 1 << (frame_sizes(SAMPLE_RATE)[0] - 1).bit_length()
    return {"rfft": frames * rfft(n_fft), "mel": linear(frames, n_fft // 2 + 1, NUM_MEL_BINS)}


def ast_grid(shape: ASTShape, frames: int) -> tuple[int, int]:
    """(n_freq, n_time) patch grid of AST over `frames` x 128 fbank."""
    return conv_out(NUM_MEL_BINS, shape.patch, shape.stride, 0), conv_out(frames, shape.patch, shape.stride, 0)


def ast_flops(shape: ASTShape, batch: int, frames: int) -> Costs:
    """AST over fbank (batch, frames, 128): patch conv, then per layer q/k/v/o, attention, MLP.

    Tokens: 2 summary tokens + n_freq * n_time patches (the summary tokens are dropped only at the end).
    """
    n_freq, n_time = ast_grid(shape, frames)
    seq, d = 2 + n_freq * n_time, shape.hidden
    tokens = batch * seq
    return {
        "patch_embed": conv(batch * n_freq * n_time, d, 1, shape.patch**2),
        "attn_proj": shape.layers * 4 * linear(tokens, d, d),
        "attn_scores": shape.layers * attention(batch, shape.heads, seq, seq, d // shape.heads),
        "mlp": shape.layers * 2 * linear(tokens, d, shape.mlp),
    }


def dass_stage_sizes(frames: int) -> list[tuple[int, int]]:
    """(H, W) of the feature map in each of DASS's four stages (after the stem and downsamples)."""
    h, w = frames, NUM_MEL_BINS
    sizes = []
    for stage in range(4):
        for _ in range(2 if stage == 0 else 1):  # two stride-2 stem convs, then one per downsample
            h, w = conv_out(h, 3, 2, 1), conv_out(w, 3, 2, 1)
        sizes.append((h, w))
    return sizes


def vss_block_flops(shape: DASSShape, dim: int, batch: int, length: int) -> Costs:
    """One VSS block over a (batch, H, W, dim) map with H * W = length."""
    d_inner, n = int(shape.ssm_ratio * dim), shape.d_state
    dt_rank, tokens = math.ceil(dim / 16), batch * length
    scan_channels = DIRECTIONS * d_inner  # the four cross-scan orders run as channel groups of one scan
    return {
        "ss2d.in_proj": linear(tokens, dim, d_inner),
        "ss2d.dwconv": conv(tokens, d_inner, 1, 9),
        "ss2d.x_proj": DIRECTIONS * linear(tokens, d_inner, dt_rank + 2 * n),
        "ss2d.dt_proj": DIRECTIONS * linear(tokens, dt_rank, d_inner),
        "ss2d.scan": scan_flops(batch, scan_channels, length, n, True, False, has_delta_bias=True, delta_softplus=True),
        "ss2d.out_proj": linear(tokens, d_inner, dim),
        "mlp": 2 * linear(tokens, dim, int(dim * shape.mlp_ratio)),
    }


def dass_flops(shape: DASSShape, batch: int, frames: int) -> Costs:
    """DASS over fbank (batch, frames, 128): stem convs, downsample convs, VSS blocks."""
    w = shape.widths
    h1, w1 = conv_out(frames, 3, 2, 1), conv_out(NUM_MEL_BINS, 3, 2, 1)
    sizes = dass_stage_sizes(frames)
    costs: Costs = {
        "stem": conv(batch * h1 * w1, w[0] // 2, 1, 9) + conv(batch * sizes[0][0] * sizes[0][1], w[0], w[0] // 2, 9),
        "downsample": sum(conv(batch * h * wd, w[i], w[i - 1], 9) for i, (h, wd) in enumerate(sizes) if i),
    }
    for dim, depth, (h, wd) in zip(w, shape.depths, sizes):
        costs = _add(costs, *[vss_block_flops(shape, dim, batch, h * wd)] * depth)
    return costs


def encoder_flops(encoder: str, preset: SizePreset, batch: int, frames: int) -> Costs:
    return ast_flops(preset.ast, batch, frames) if encoder == "ast" else dass_flops(preset.dass, batch, frames)


def encoder_width(encoder: str, preset: SizePreset) -> int:
    return preset.ast.hidden if encoder == "ast" else preset.dass.widths[-1]


def lm_width(lm: str, preset: SizePreset) -> int:
    return preset.llama.hidden if lm == "llama" else preset.mamba.hidden


def projector_flops(encoder: str, d_enc: int, d_lm: int, batch: int, frames: int) -> Costs:
    """LTU pooling projector (AST) or ssLAM conv projector (DASS), making frames / 32 tokens each."""
    tokens = batch * (frames // 32)
    costs = {"linear": linear(tokens, d_enc, d_lm)}
    if encoder == "dass":
        out_h, out_w = conv_out(frames // 32, 3, 2, 1), conv_out(4, 3, 2, 1)
        costs["conv"] = conv(batch * out_h * out_w, d_enc, d_enc, 9)
    return costs


def llama_flops(shape: LlamaShape, batch: int, new_tokens: int, past: int = 0, logits: int = 1) -> Costs:
    """LLaMA over `new_tokens` positions per sequence with `past` already cached, logits at `logits` positions.

    GQA: k and v project to kv_heads * head_dim; attention still runs over all query heads.
    """
    d, heads = shape.hidden, shape.heads
    head_dim = d // heads
    d_kv = (shape.kv_heads or heads) * head_dim
    tokens = batch * new_tokens
    return {
        "attn_proj": shape.layers * (2 * linear(tokens, d, d) + 2 * linear(tokens, d, d_kv)),
        "attn_scores": shape.layers * attention(batch, heads, new_tokens, past + new_tokens, head_dim),
        "mlp": shape.layers * 3 * linear(tokens, d, shape.mlp),
        "lm_head": linear(batch * logits, d, shape.vocab),
    }


def mamba_flops(shape: MambaShape, batch: int, new_tokens: int, logits: int = 1) -> Costs:
    """Mamba over `new_tokens` positions per sequence (a scan, or one state update when 1), logits at `logits`.

    The cost per token does not depend on the context: that is the state-space model's point.
    """
    d, n = shape.hidden, shape.d_state
    d_inner, dt_rank = shape.expand * d, math.ceil(d / 16)
    tokens, layers = batch * new_tokens, shape.layers
    scan = scan_flops(batch, d_inner, new_tokens, n, True, True, has_delta_bias=True, delta_softplus=True)
    return {
        "in_proj": layers * linear(tokens, d, 2 * d_inner),
        "conv1d": layers * conv(tokens, d_inner, 1, shape.d_conv),
        "x_proj": layers * linear(tokens, d_inner, dt_rank + 2 * n),
        "dt_proj": layers * linear(tokens, dt_rank, d_inner),
        "scan": layers * scan,
        "out_proj": layers * linear(tokens, d_inner, d),
        "lm_head": linear(batch * logits, d, shape.vocab),
    }


def lm_flops(lm: str, preset: SizePreset, batch: int, new_tokens: int, past: int = 0) -> Costs:
    """Prefill (past=0) or a decode step (new_tokens=1, past=context), logits at the last position only."""
    if lm == "llama":
        return llama_flops(preset.llama, batch, new_tokens, past)
    return mamba_flops(preset.mamba, batch, new_tokens)


# ---------------------------------------------------------------------------------------------
# Whole phases


def phase_flops(
    spec: ModelSpec,
    phase: str,
    batch: int,
    audio_seconds: float,
    prompt_tokens: int = 0,
    context: int | None = None,
    new_tokens: int = 1,
    preset: SizePreset | None = None,
) -> Costs:
    """FLOPs of one call of `phase` by component, e.g. {"encoder.mlp": ..., "lm.lm_head": ...}.

    fbank: waveform -> features. encoder: features -> encoder output. prefill: projector + LM over
    audio + prompt tokens. decode: one step at `context` cached positions (default audio + prompt).
    e2e: `generate` of `new_tokens` tokens (fbank, encoder, prefill, then new_tokens - 1 steps).
    `preset` defaults to the spec's size.
    """
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; analytic FLOPs cover {', '.join(PHASES)}")
    preset = preset or SIZES[spec.size]
    samples = round(audio_seconds * SAMPLE_RATE)
    frames = padded_frames(samples)
    audio_tokens = frames // 32
    prefix = audio_tokens + prompt_tokens
    if phase == "fbank":
        return _prefixed("fbank", fbank_flops(batch, samples))
    if phase == "encoder":
        return _prefixed("encoder", encoder_flops(spec.encoder, preset, batch, frames))
    if phase == "prefill":
        d_enc, d_lm = encoder_width(spec.encoder, preset), lm_width(spec.lm, preset)
        return _add(
            _prefixed("projector", projector_flops(spec.encoder, d_enc, d_lm, batch, frames)),
            _prefixed("lm", lm_flops(spec.lm, preset, batch, prefix)),
        )
    if phase == "decode":
        past = prefix if context is None else context
        return _prefixed("lm", lm_flops(spec.lm, preset, batch, 1, past))
    steps = [phase_flops(spec, "decode", batch, audio_seconds, prompt_tokens, prefix + i, preset=preset)
             for i in range(new_tokens - 1)]
    early = [phase_flops(spec, p, batch, audio_seconds, prompt_tokens, preset=preset) for p in PHASES[:3]]
    return _add(*early, *steps)


def lalm_flops(
    spec: ModelSpec,
    phase: str,
    batch: int,
    audio_seconds: float,
    prompt_tokens: int = 0,
    context: int | None = None,
    new_tokens: int = 1,
    preset: SizePreset | None = None,
) -> int:
    """Total FLOPs of one call of `phase` (see `phase_flops` for the arguments)."""
    return sum(phase_flops(spec, phase, batch, audio_seconds, prompt_tokens, context, new_tokens, preset).values())


# ---------------------------------------------------------------------------------------------
# LM state held between decode steps


def scan_state_dtype(dtype: torch.dtype) -> torch.dtype:
    """The SSM state's dtype: the scan accumulates in float32 (float64 for float64 models)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def state_bytes(shape: LlamaShape | MambaShape, batch: int, context: int, dtype: torch.dtype) -> int:
    """Bytes the LM keeps between steps after `context` positions.

    LLaMA: keys and values of every layer, (batch, kv_heads, context, head_dim) each, in `dtype` —
    linear in the context. Mamba: per layer a conv window (batch, d_inner, d_conv) in `dtype` and an
    SSM state (batch, d_inner, d_state) in `scan_state_dtype(dtype)` — independent of the context.
    (That is the scan op's state; transformers' own mixer, scan backend "hf", keeps it in `dtype`.)
    """
    if isinstance(shape, LlamaShape):
        head_dim = shape.hidden // shape.heads
        kv_heads = shape.kv_heads or shape.heads
        return shape.layers * 2 * batch * kv_heads * context * head_dim * dtype.itemsize
    d_inner = shape.expand * shape.hidden
    per_layer = batch * d_inner * (shape.d_conv * dtype.itemsize + shape.d_state * scan_state_dtype(dtype).itemsize)
    return shape.layers * per_layer


# ---------------------------------------------------------------------------------------------
# Parameters


def _linear_params(d_in: int, d_out: int, bias: bool = True) -> int:
    return d_in * d_out + (d_out if bias else 0)


def _norm_params(dim: int) -> int:
    return 2 * dim  # LayerNorm weight and bias


def ast_params(shape: ASTShape) -> int:
    """`transformers.ASTModel` with this shape (patch conv, 2 summary tokens, positions, layers, final norm)."""
    d = shape.hidden
    n_freq, n_time = ast_grid(shape, shape.max_frames)
    embeddings = d * shape.patch**2 + d + 2 * d + (2 + n_freq * n_time) * d
    layer = 4 * _linear_params(d, d) + _linear_params(d, shape.mlp) + _linear_params(shape.mlp, d) + 2 * _norm_params(d)
    return embeddings + shape.layers * layer + _norm_params(d)


def dass_params(shape: DASSShape) -> int:
    """DASS encoder: stem, downsamples, VSS blocks, final norm."""
    w = shape.widths
    stem = (9 * w[0] // 2 + w[0] // 2) + _norm_params(w[0] // 2) + (9 * w[0] * (w[0] // 2) + w[0]) + _norm_params(w[0])
    downsample = sum(9 * w[i] * w[i - 1] + w[i] + _norm_params(w[i]) for i in range(1, 4))
    blocks = 0
    for dim, depth in zip(w, shape.depths):
        d_inner, n, dt_rank = int(shape.ssm_ratio * dim), shape.d_state, math.ceil(dim / 16)
        hidden = int(dim * shape.mlp_ratio)
        ss2d = (
            dim * d_inner  # in_proj
            + 9 * d_inner + d_inner  # depthwise conv
            + DIRECTIONS * (dt_rank + 2 * n) * d_inner  # x_proj
            + DIRECTIONS * (d_inner * dt_rank + d_inner)  # dt_proj weights and biases
            + DIRECTIONS * d_inner * (n + 1)  # A_logs, Ds
            + _norm_params(d_inner) + d_inner * dim  # out_norm, out_proj
        )
        mlp = _linear_params(dim, hidden) + _linear_params(hidden, dim)
        blocks += depth * (2 * _norm_params(dim) + ss2d + mlp)
    return stem + downsample + blocks + _norm_params(w[-1])


def projector_params(encoder: str, d_enc: int, d_lm: int) -> int:
    if encoder == "ast":
        return _norm_params(d_enc) + _linear_params(d_enc, d_lm)
    return 9 * d_enc * d_enc + d_enc + _linear_params(d_enc, d_lm)


def llama_params(shape: LlamaShape) -> int:
    """LlamaForCausalLM: embeddings, layers (attention, SwiGLU MLP, two RMSNorms), final norm, untied head."""
    d = shape.hidden
    d_kv = (shape.kv_heads or shape.heads) * (d // shape.heads)
    layer = 2 * d * d + 2 * d * d_kv + 3 * d * shape.mlp + 2 * d
    return 2 * shape.vocab * d + shape.layers * layer + d


def mamba_params(shape: MambaShape) -> int:
    """MambaForCausalLM: embeddings (tied to the head), mixer layers with their norms, final norm."""
    d, n = shape.hidden, shape.d_state
    d_inner, dt_rank = shape.expand * d, math.ceil(d / 16)
    layer = (
        d  # RMSNorm
        + d * 2 * d_inner  # in_proj
        + d_inner * shape.d_conv + d_inner  # conv1d with bias
        + d_inner * (dt_rank + 2 * n)  # x_proj
        + dt_rank * d_inner + d_inner  # dt_proj
        + d_inner * n + d_inner  # A_log, D
        + d_inner * d  # out_proj
    )
    return shape.vocab * d + shape.layers * layer + d


def lalm_params(spec: ModelSpec, preset: SizePreset | None = None) -> Costs:
    """Parameters per component: {"frontend", "encoder", "projector", "lm"} (the fbank has none)."""
    preset = preset or SIZES[spec.size]
    encoder = ast_params(preset.ast) if spec.encoder == "ast" else dass_params(preset.dass)
    lm = llama_params(preset.llama) if spec.lm == "llama" else mamba_params(preset.mamba)
    d_enc, d_lm = encoder_width(spec.encoder, preset), lm_width(spec.lm, preset)
    return {"frontend": 0, "encoder": encoder, "projector": projector_params(spec.encoder, d_enc, d_lm), "lm": lm}
