"""Training LALMs on instruction-style audio tasks, and their checkpoints.

Names are imported on first use, so the torch-free recipe (`models.train.recipe`) is read
without importing torch and transformers (a suite's training settings are checked that way).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from models.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "models.train.checkpoint": ("Checkpoint", "load_checkpoint", "read_config", "save_checkpoint"),
    "models.train.loop": ("ExampleSource", "StepLog", "TrainSummary", "train"),
    "models.train.recipe": ("PROMPT_TEMPLATE", "Recipe", "Stage", "format_prompt", "ltu_recipe"),
    "models.train.teacher_forcing": ("answer_batch", "prompt_ids", "teacher_forcing_loss"),
})

if TYPE_CHECKING:
    from models.train.checkpoint import Checkpoint, load_checkpoint, read_config, save_checkpoint
    from models.train.loop import ExampleSource, StepLog, TrainSummary, train
    from models.train.recipe import PROMPT_TEMPLATE, Recipe, Stage, format_prompt, ltu_recipe
    from models.train.teacher_forcing import answer_batch, prompt_ids, teacher_forcing_loss
