"""The training loop: seeded sampling, per-stage AdamW with warm-up and cosine decay."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

import numpy as np
import torch

from models.lalm import LALM
from models.tokenizer import ByteTokenizer
from models.train.lora import add_lora, merge_lora
from models.train.recipe import COMPONENTS, Recipe, Stage
from models.train.teacher_forcing import answer_batch, prompt_ids, spec_augment, teacher_forcing_loss


class ExampleSource(Protocol):
    """Training examples by index: waveforms of one length and their answer texts."""

    def __len__(self) -> int: ...

    def load(self, indices: Sequence[int]) -> tuple[torch.Tensor, list[str]]:
        """-> (waves (B, S) float32 at 16 kHz, answers: B strings)."""
        ...


@dataclass
class StepLog:
    stage: str
    step: int  # 1-based, counted over all stages
    loss: float
    lr: float
    seconds: float  # wall time since training started


@dataclass
class TrainSummary:
    steps: int
    seconds: float
    final_loss: float  # mean loss over the last 10% of steps (at least one)
    trainable_params: dict[str, int] = field(default_factory=dict)  # per stage
    losses: list[float] = field(default_factory=list)


class _EpochSampler:
    """Reshuffles the example indices every epoch from one seeded generator."""

    def __init__(self, size: int, batch_size: int, seed: int) -> None:
        self.size, self.batch_size = size, batch_size
        self.rng = np.random.default_rng(seed)
        self.order: list[int] = []

    def next_batch(self) -> list[int]:
        while len(self.order) < self.batch_size:
            self.order += self.rng.permutation(self.size).tolist()
        batch, self.order = self.order[: self.batch_size], self.order[self.batch_size:]
        return batch


def _learning_rate(stage: Stage, step: int, recipe: Recipe) -> float:
    """Linear warm-up, then cosine from stage.lr down to min_lr_fraction * stage.lr."""
    warmup = max(1, int(stage.steps * recipe.warmup_fraction))
    if step < warmup:
        return stage.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, stage.steps - warmup)
    floor = recipe.min_lr_fraction
    return stage.lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def _set_trainable(lalm: LALM, stage: Stage, recipe: Recipe) -> list[torch.nn.Parameter]:
    if stage.lora and "lm" in stage.trainable:
        add_lora(lalm, recipe.lora_rank, recipe.lora_alpha)
    for name in COMPONENTS:
        wanted = name in stage.trainable
        for param_name, param in getattr(lalm, name).named_parameters():
            # Under LoRA only the adapters of the LM train; peft names them "lora_".
            param.requires_grad_(wanted and (name != "lm" or not stage.lora or "lora_" in param_name))
    return [p for p in lalm.parameters() if p.requires_grad]


def train(
    lalm: LALM,
    tokenizer: ByteTokenizer,
    question: str,
    source: ExampleSource,
    recipe: Recipe,
    on_step: Callable[[StepLog], None] | None = None,
) -> TrainSummary:
    """Train `lalm` in place through the recipe's stages; LoRA adapters are merged at the end."""
    torch.manual_seed(recipe.seed)
    sampler = _EpochSampler(len(source), recipe.batch_size, recipe.seed)
    augment_rng = torch.Generator().manual_seed(recipe.seed)
    prefix = prompt_ids(tokenizer, question, recipe.prompt_template)
    losses: list[float] = []
    trainable: dict[str, int] = {}
    start = time.perf_counter()
    lalm.train()
    for stage in recipe.stages:
        params = _set_trainable(lalm, stage, recipe)
        trainable[stage.name] = sum(p.numel() for p in params)
        if stage.steps == 0:
            continue
        optimizer = torch.optim.AdamW(params, lr=stage.lr, weight_decay=recipe.weight_decay)
        for step in range(stage.steps):
            lr = _learning_rate(stage, step, recipe)
            for group in optimizer.param_groups:
                group["lr"] = lr
            waves, answers = source.load(sampler.next_batch())
            with torch.no_grad():
                feats = lalm.features(waves.to(lalm.device))
                if recipe.spec_augment:
                    feats = spec_augment(feats, augment_rng)
            ids, targets = answer_batch(tokenizer, prefix, answers)
            loss = teacher_forcing_loss(lalm, feats, ids.to(lalm.device), targets.to(lalm.device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, recipe.grad_clip)
            optimizer.step()
            losses.append(float(loss.detach()))
            if on_step is not None:
                on_step(StepLog(stage.name, len(losses), losses[-1], lr, time.perf_counter() - start))
    merge_lora(lalm)
    for param in lalm.parameters():
        param.requires_grad_(True)
    lalm.eval()
    tail = losses[-max(1, len(losses) // 10):] if losses else [float("nan")]
    return TrainSummary(len(losses), time.perf_counter() - start, float(np.mean(tail)), trainable, losses)
