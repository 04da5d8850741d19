"""Training LALMs on instruction-style audio tasks, and their checkpoints."""
from models.train.checkpoint import Checkpoint, load_checkpoint, read_config, save_checkpoint
from models.train.loop import ExampleSource, StepLog, TrainSummary, train
from models.train.recipe import PROMPT_TEMPLATE, Recipe, Stage, format_prompt, ltu_recipe
from models.train.teacher_forcing import answer_batch, prompt_ids, teacher_forcing_loss

__all__ = [
    "PROMPT_TEMPLATE",
    "Checkpoint",
    "ExampleSource",
    "Recipe",
    "Stage",
    "StepLog",
    "TrainSummary",
    "answer_batch",
    "format_prompt",
    "load_checkpoint",
    "ltu_recipe",
    "prompt_ids",
    "read_config",
    "save_checkpoint",
    "teacher_forcing_loss",
    "train",
]
