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

Each family states its forward products (`train_ops`), with the share checkpointing recomputes;
this module applies the backward rules to them. Pure arithmetic on the shapes: no tensors, no model.
"""
from __future__ import annotations

import math

from models import analytic
from models.audio import SAMPLE_RATE
from models.audio_tokens import tokens_for_frames
from models.closed_form import Op
from models.lalm import ModelSpec, padded_frames
from models.registry import families
from models.train.recipe import Stage

COMPONENTS = ("encoder", "projector", "lm")  # bottom to top: the gradient flows down this list
ATTENTION_BACKWARD = 2.5


def step_ops(spec: ModelSpec, stage: Stage, batch: int, audio_seconds: float, text_tokens: int,
             lora_rank: int = 8) -> list[Op]:
    """The forward products of one step on `batch` clips of `audio_seconds` and `text_tokens`
    (prompt + answer) token ids, each family's own; LoRA adapters when the stage trains the LM
    through them."""
    encoder, lm = families(spec)
    encoder_shape, lm_shape = encoder.shapes[spec.size], lm.shapes[spec.size]
    frames = padded_frames(round(audio_seconds * SAMPLE_RATE))
    positions = tokens_for_frames(frames) + text_tokens
    ops = [*encoder.train_ops(encoder_shape, batch, frames),
           *encoder.projector_train_ops(*analytic.widths(spec), batch, frames),
           *lm.train_ops(lm_shape, batch, positions)]
    if stage.lora and "lm" in stage.trainable:
        ops.append(Op("lm", "lora", lm.lora_flops(lm_shape, batch * positions, lora_rank), lora=True))
    return ops


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
                     lora_rank: int = 8, activation_checkpointing: bool = False) -> analytic.Costs:
    """FLOPs of one step by "component.op.pass" (pass: forward, grad_input, grad_weight,
    backward for attention and scan, recompute), under the module's convention."""
    if stage.lora and "lm" in stage.trainable and not any(c in stage.trainable for c in COMPONENTS[:2]):
        raise ValueError("the closed form assumes LoRA stages also train a component below the LM")
    costs: analytic.Costs = {}
    for op in step_ops(spec, stage, batch, audio_seconds, text_tokens, lora_rank):
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
                     lora_rank: int = 8, activation_checkpointing: bool = False) -> int:
    """Total FLOPs of one step (see `train_step_costs`)."""
    return sum(train_step_costs(spec, stage, batch, audio_seconds, text_tokens, lora_rank,
                                activation_checkpointing).values())
