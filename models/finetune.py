"""Fine-tuning as LTU and ssLAM do it: the training stages, and one optimiser step.

Stages (`models.finetune_stages.STAGES`), over the training recipe's components (`models.train`):
- "projector": LTU's and ssLAM's stage 1; the projector alone trains, encoder and LM frozen.
- "lora": their later stages; encoder and projector train, the LM through LoRA adapters
  (peft, rank 8, alpha 16) on q_proj and v_proj for LLaMA and on in_proj for Mamba.
- "full": encoder, projector and every LM weight (for LMs trained from scratch).
Which parameters train, and how LoRA is attached, is the recipe's own logic (`models.train`),
so a measured step is exactly a step of `lalm-bench train`.

One step (`TrainStep`) is what the training loop does per batch, minus data loading: zero the
gradients, forward over [audio; prompt; answer] with the loss on the answer tokens (teacher
forcing), backward, gradient clipping, AdamW update. Optional bf16 autocast (mixed precision:
weights and optimiser state stay in the model's dtype) and activation checkpointing of every
encoder and LM block (their activations are recomputed in the backward instead of kept).
"""
from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers import PreTrainedModel
from transformers.modeling_layers import GradientCheckpointingLayer

from models.audio import SAMPLE_RATE
from models.audio_tokens import tokens_for_frames
from models.encoders.dass import VSSBlock
from models.errors import InputError
from models.finetune_stages import PRECISIONS, stage_named
from models.lalm import LALM
from models.train.loop import _set_trainable
from models.train.recipe import Recipe, Stage
from models.train.teacher_forcing import IGNORE, teacher_forcing_loss


def _hf_models(lalm: LALM) -> list[PreTrainedModel]:
    return [m for m in lalm.modules() if isinstance(m, PreTrainedModel)]


def _checkpointed(forward):
    """`forward` run under non-reentrant checkpointing whenever gradients are being recorded."""

    @functools.wraps(forward)
    def run(*args, **kwargs):
        if not torch.is_grad_enabled():
            return forward(*args, **kwargs)
        return checkpoint(forward, *args, use_reentrant=False, **kwargs)

    return run


def enable_activation_checkpointing(lalm: LALM) -> int:
    """Recompute each block's activations in the backward instead of storing them: AST layers,
    LLaMA decoder layers and Mamba blocks through transformers' own switch, DASS's VSS blocks
    wrapped here (stems, projector, norms and the LM head are not checkpointed). Returns the
    number of blocks. Non-reentrant: a block whose inputs and weights need no gradient (a frozen
    encoder) stores nothing and is not recomputed."""
    for model in _hf_models(lalm):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    dass_blocks = [m for m in lalm.modules() if isinstance(m, VSSBlock)]
    for block in dass_blocks:
        block.forward = _checkpointed(block.forward)
    return sum(isinstance(m, GradientCheckpointingLayer) for m in lalm.modules()) + len(dass_blocks)


def prepare(lalm: LALM, stage: Stage, recipe: Recipe, activation_checkpointing: bool = False) -> list[nn.Parameter]:
    """Put `lalm` in training mode for `stage` (LoRA adapters added when the stage has them);
    returns the parameters that train."""
    params = _set_trainable(lalm, stage, recipe)
    if activation_checkpointing:
        enable_activation_checkpointing(lalm)
    lalm.train()
    return params


@dataclass(frozen=True)
class TrainBatch:
    """feats (B, T, 128) fbank; ids (B, P + L) prompt then answer; targets (B, P + L): the answer
    ids at answer positions, IGNORE at prompt positions (the loss is on the answer only)."""

    feats: torch.Tensor
    ids: torch.Tensor
    targets: torch.Tensor

    @property
    def tokens(self) -> int:
        """LM positions per step, whole batch: audio tokens + prompt + answer."""
        audio = tokens_for_frames(self.feats.shape[1])
        return self.ids.shape[0] * (audio + self.ids.shape[1])


def random_batch(lalm: LALM, batch: int, audio_seconds: float, prompt_tokens: int, answer_tokens: int,
                 seed: int = 0) -> TrainBatch:
    """Seeded random audio (its fbank, computed here: data loading, not the step) and token ids."""
    if answer_tokens < 1:
        raise InputError(f"a training batch needs at least one answer token, got {answer_tokens}")
    gen = torch.Generator().manual_seed(seed)
    wave = torch.rand(batch, round(audio_seconds * SAMPLE_RATE), generator=gen) * 2 - 1
    ids = torch.randint(0, lalm.lm.vocab_size, (batch, prompt_tokens + answer_tokens), generator=gen)
    targets = ids.clone()
    targets[:, :prompt_tokens] = IGNORE
    with torch.no_grad():
        feats = lalm.features(wave.to(lalm.device))
    return TrainBatch(feats, ids.to(lalm.device), targets.to(lalm.device))


class TrainStep:
    """One optimiser step of the recipe on a batch: a callable, the unit a timer repeats.

    precision "bf16": the forward (and so the backward) runs under bfloat16 autocast.
    """

    def __init__(self, lalm: LALM, params: list[nn.Parameter], recipe: Recipe, lr: float, precision: str = "off"):
        if precision not in PRECISIONS:
            raise InputError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
        if not params:
            raise InputError("nothing to train: the stage leaves no parameter trainable")
        self.lalm = lalm
        self.params = params
        self.recipe = recipe
        self.precision = precision
        self.optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=recipe.weight_decay)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.precision == "off":
            return contextlib.nullcontext()
        return torch.autocast(self.lalm.device.type, dtype=torch.bfloat16)

    def forward_backward(self, batch: TrainBatch) -> torch.Tensor:
        """Zero the gradients, forward with the loss, backward; returns the loss (detached)."""
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            loss = teacher_forcing_loss(self.lalm, batch.feats, batch.ids, batch.targets)
        loss.backward()
        return loss.detach()

    def __call__(self, batch: TrainBatch) -> torch.Tensor:
        """Forward, backward, clip, update; returns the loss (detached)."""
        loss = self.forward_backward(batch)
        torch.nn.utils.clip_grad_norm_(self.params, self.recipe.grad_clip)
        self.optimizer.step()
        return loss

    def warm_up(self, batch: TrainBatch) -> None:
        """Forward and backward without an update, gradients dropped: one-time costs (kernel
        loading, thread pools, library workspaces) happen here, and the optimiser stays fresh."""
        self.forward_backward(batch)
        self.optimizer.zero_grad(set_to_none=True)


def train_step_for(lalm: LALM, stage: str, precision: str = "off", activation_checkpointing: bool = False,
                   recipe: Recipe | None = None) -> TrainStep:
    """`lalm` prepared for the named stage, and its optimiser step (the recipe's defaults for
    LoRA rank and alpha, weight decay and clipping)."""
    chosen = stage_named(stage)
    recipe = recipe or Recipe(stages=(chosen,))
    params = prepare(lalm, chosen, recipe, activation_checkpointing)
    return TrainStep(lalm, params, recipe, chosen.lr, precision)
