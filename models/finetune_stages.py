"""The fine-tuning stages and precisions a measured training step takes (`models.finetune` runs
them), apart from torch: a suite's `[measure.train]` is checked without importing it."""
from __future__ import annotations

from models.errors import InputError
from models.train.recipe import COMPONENTS, Stage

STAGE_LR = 1e-4  # cost does not depend on it; small enough that random-weight steps stay finite
STAGES: dict[str, Stage] = {
    "projector": Stage("projector", ("projector",), steps=1, lr=STAGE_LR),
    "lora": Stage("lora", COMPONENTS, steps=1, lr=STAGE_LR, lora=True),
    "full": Stage("full", COMPONENTS, steps=1, lr=STAGE_LR),
}
PRECISIONS = ("off", "bf16")  # autocast setting: none, or bfloat16 autocast


def stage_named(name: str) -> Stage:
    if name not in STAGES:
        raise InputError(f"unknown training stage {name!r}; valid: {', '.join(STAGES)}")
    return STAGES[name]
