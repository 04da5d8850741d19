"""Closed-form FLOPs of one fine-tuning step, by component, op and pass.

The forward is `models.analytic`'s, under its convention (2 FLOPs per multiply-add, attention in
full, the selective scan by its own formula, elementwise work not counted), with the LM's logits
at every position (teacher forcing scores every answer token) and the LoRA adapters' products.
The backward, stated per op of the forward:

- A product with weights (Linear, convolution): the gradient with respect to its input costs
  1x its forward, counted when the gradient flows through it, i.e. when some parameter below
  it (or a parameter of its own component before it) trains; the gradient with respect to its
  weights costs 1x its forward, counted only when those weights train. So a trained layer
  costs 3x its forward, a frozen layer the gradient passes through 2x, a frozen layer below
  the lowest trainable parameter 1x (forward only). The first product of a component whose
  input is data or a frozen component's output (AST's patch embedding, DASS's first stem
  conv, ssLAM's projector conv) never needs the gradient with respect to its input.
- Attention (Q K^T and A V, no weights): 2.5x its forward when the gradient flows through it:
  dA, dV, dQ and dK are four products of the forward's size, plus the scores recomputed, as
  memory-efficient kernels and torch's FLOP formula for them do.
- The selective scan: its reverse-time backward (the forward recomputed plus the adjoint
  recurrence), `models.ops.scan_flops.scan_backward_flops`.
- LoRA (x A) B on a frozen base: both adapter weights train (1x), and the gradient flows to
  their inputs (1x): 3x their forward.
- Activation checkpointing (non-reentrant, torch's default early stop) recomputes, once, the
  forward of every checkpointed block (AST layers, VSS blocks, LLaMA layers, Mamba blocks) the
  backward passes through — except the block's last product (AST's and VSS's second MLP
  Linear, LLaMA's down_proj, Mamba's out_proj): the backward needs that product's input, not its
  output, and torch stops recomputing once every tensor the backward needs is back.
- Not counted, as elementwise: the loss, norms, activations, and the optimiser's update (AdamW:
  about a dozen FLOPs per trainable parameter) and gradient clipping.

Pure arithmetic on the size presets: no tensors, no model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from models import analytic
from models.audio import SAMPLE_RATE
from models.audio.fbank import NUM_MEL_BINS
from models.lalm import ModelSpec, padded_frames
from models.ops.scan_flops import scan_backward_flops
from models.presets import SIZES, LlamaShape, MambaShape, SizePreset
from models.train.recipe import Stage

COMPONENTS = ("encoder", "projector", "lm")  # bottom to top: the gradient flows down this list
ATTENTION_BACKWARD = 2.5


@dataclass(frozen=True)
class Op:
    """One forward product. kind: "weights" (Linear/conv), "attention" or "scan". first: the
    component's input feeds it with no parameter before it. recomputed: the share of its forward
    that activation checkpointing runs again (0 outside checkpointed blocks)."""

    component: str
    name: str
    forward: int
    kind: str = "weights"
    first: bool = False
    recomputed: float = 1.0
    backward: int = 0  # "scan": its backward's FLOPs
    lora: bool = False  # a LoRA adapter: trains even when its component's weights do not


def _ast_ops(preset: SizePreset, batch: int, frames: int) -> list[Op]:
    costs = analytic.ast_flops(preset.ast, batch, frames)
    return [
        Op("encoder", "patch_embed", costs["patch_embed"], first=True, recomputed=0.0),
        Op("encoder", "attn_proj", costs["attn_proj"]),
        Op("encoder", "attn_scores", costs["attn_scores"], kind="attention"),
        Op("encoder", "mlp", costs["mlp"], recomputed=1 / 2),  # fc1 and fc2 cost the same; fc2 is last
    ]


def _dass_ops(preset: SizePreset, batch: int, frames: int) -> list[Op]:
    shape = preset.dass
    costs = analytic.dass_flops(shape, batch, frames)
    h1, w1 = analytic.conv_out(frames, 3, 2, 1), analytic.conv_out(NUM_MEL_BINS, 3, 2, 1)
    first_conv = analytic.conv(batch * h1 * w1, shape.widths[0] // 2, 1, 9)
    scan_backward = sum(
        depth * scan_backward_flops(batch, 4 * int(shape.ssm_ratio * dim), h * w, shape.d_state, False, True)
        for dim, depth, (h, w) in zip(shape.widths, shape.depths, analytic.dass_stage_sizes(frames))
    )
    ops = [
        Op("encoder", "stem.conv1", first_conv, first=True, recomputed=0.0),
        Op("encoder", "stem.conv2", costs["stem"] - first_conv, recomputed=0.0),
        Op("encoder", "downsample", costs["downsample"], recomputed=0.0),
        Op("encoder", "ss2d.scan", costs["ss2d.scan"], kind="scan", backward=scan_backward),
    ]
    block = ("ss2d.in_proj", "ss2d.dwconv", "ss2d.x_proj", "ss2d.dt_proj", "ss2d.out_proj")
    return ops + [Op("encoder", name, costs[name]) for name in block] + [
        Op("encoder", "mlp", costs["mlp"], recomputed=1 / 2)]  # the block ends with the MLP's second Linear


def _projector_ops(encoder: str, preset: SizePreset, lm: str, batch: int, frames: int) -> list[Op]:
    d_enc, d_lm = analytic.encoder_width(encoder, preset), analytic.lm_width(lm, preset)
    costs = analytic.projector_flops(encoder, d_enc, d_lm, batch, frames)
    # LTU's projector normalises (a LayerNorm with weights) before its Linear; ssLAM's starts with its conv.
    ops = [Op("projector", "linear", costs["linear"], recomputed=0.0)]
    if encoder == "dass":
        ops.append(Op("projector", "conv", costs["conv"], first=True, recomputed=0.0))
    return ops


def _lora_forward(shape: LlamaShape | MambaShape, tokens: int, rank: int) -> int:
    """(x A) B on every target Linear: 2 * tokens * rank * (d_in + d_out) each."""
    d = shape.hidden
    if isinstance(shape, LlamaShape):
        d_kv = (shape.kv_heads or shape.heads) * (d // shape.heads)
        per_layer = rank * (d + d) + rank * (d + d_kv)  # q_proj, v_proj
    else:
        per_layer = rank * (d + 2 * shape.expand * d)  # in_proj
    return 2 * tokens * shape.layers * per_layer


def _lm_ops(lm: str, preset: SizePreset, batch: int, positions: int, lora_rank: int | None) -> list[Op]:
    if lm == "llama":
        shape: LlamaShape | MambaShape = preset.llama
        costs = analytic.llama_flops(shape, batch, positions, logits=positions)
        ops = [Op("lm", "attn_proj", costs["attn_proj"]),
               Op("lm", "attn_scores", costs["attn_scores"], kind="attention"),
               Op("lm", "mlp", costs["mlp"], recomputed=2 / 3)]  # gate, up, down: down_proj is last
    else:
        shape = preset.mamba
        costs = analytic.mamba_flops(shape, batch, positions, logits=positions)
        backward = shape.layers * scan_backward_flops(batch, shape.expand * shape.hidden, positions, shape.d_state,
                                                      True, True)
        ops = [Op("lm", name, costs[name]) for name in ("in_proj", "conv1d", "x_proj", "dt_proj")]
        ops.append(Op("lm", "out_proj", costs["out_proj"], recomputed=0.0))  # the block's last product
        ops.append(Op("lm", "scan", costs["scan"], kind="scan", backward=backward))
    ops.append(Op("lm", "lm_head", costs["lm_head"], recomputed=0.0))
    if lora_rank:
        ops.append(Op("lm", "lora", _lora_forward(shape, batch * positions, lora_rank), lora=True))
    return ops


def step_ops(spec: ModelSpec, stage: Stage, batch: int, audio_seconds: float, text_tokens: int,
             lora_rank: int = 8, preset: SizePreset | None = None) -> list[Op]:
    """The forward products of one step on `batch` clips of `audio_seconds` and `text_tokens`
    (prompt + answer) token ids; LoRA adapters when the stage trains the LM through them."""
    preset = preset or SIZES[spec.size]
    frames = padded_frames(round(audio_seconds * SAMPLE_RATE))
    encoder = _ast_ops if spec.encoder == "ast" else _dass_ops
    lora = lora_rank if stage.lora and "lm" in stage.trainable else None
    return [*encoder(preset, batch, frames), *_projector_ops(spec.encoder, preset, spec.lm, batch, frames),
            *_lm_ops(spec.lm, preset, batch, frames // 32 + text_tokens, lora)]


def _gradient_reaches(op: Op, stage: Stage) -> bool:
    """Whether the backward computes the gradient with respect to this op's inputs."""
    below = COMPONENTS[: COMPONENTS.index(op.component)]
    if any(c in stage.trainable for c in below):
        return True
    return op.component in stage.trainable and not op.first


def _weights_train(op: Op, stage: Stage) -> bool:
    if op.lora:
        return True
    return op.component in stage.trainable and not (op.component == "lm" and stage.lora)


def train_step_costs(spec: ModelSpec, stage: Stage, batch: int, audio_seconds: float, text_tokens: int,
                     lora_rank: int = 8, activation_checkpointing: bool = False,
                     preset: SizePreset | None = None) -> analytic.Costs:
    """FLOPs of one step by "component.op.pass" (pass: forward, grad_input, grad_weight,
    backward for attention and scan, recompute), under the module's convention."""
    if stage.lora and "lm" in stage.trainable and not any(c in stage.trainable for c in COMPONENTS[:2]):
        raise ValueError("the closed form assumes LoRA stages also train a component below the LM")
    costs: analytic.Costs = {}
    for op in step_ops(spec, stage, batch, audio_seconds, text_tokens, lora_rank, preset):
        key = f"{op.component}.{op.name}"
        costs[f"{key}.forward"] = op.forward
        reaches = _gradient_reaches(op, stage)
        if op.kind == "weights":
            costs[f"{key}.grad_input"] = op.forward if reaches else 0
            costs[f"{key}.grad_weight"] = op.forward if _weights_train(op, stage) else 0
        elif op.kind == "attention":
            costs[f"{key}.backward"] = math.ceil(ATTENTION_BACKWARD * op.forward) if reaches else 0
        else:
            costs[f"{key}.backward"] = op.backward if reaches else 0
        if activation_checkpointing and reaches:
            costs[f"{key}.recompute"] = round(op.recomputed * op.forward)
    return {name: value for name, value in costs.items() if value}


def train_step_flops(spec: ModelSpec, stage: Stage, batch: int, audio_seconds: float, text_tokens: int,
                     lora_rank: int = 8, activation_checkpointing: bool = False,
                     preset: SizePreset | None = None) -> int:
    """Total FLOPs of one step (see `train_step_costs`)."""
    return sum(train_step_costs(spec, stage, batch, audio_seconds, text_tokens, lora_rank, activation_checkpointing,
                                preset).values())
