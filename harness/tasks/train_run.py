"""Train one variant on one local dataset and save the checkpoint (what `lalm-bench train` runs)."""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from harness.audio_input import dataset_conversion_note
from harness.tasks import load_dataset
from harness.tasks.training_data import ClipExamples
from models import build
from models.tokenizer import ByteTokenizer
from models.train import Recipe, StepLog, read_config, save_checkpoint, train


@dataclass(frozen=True)
class TrainJob:
    variant: str
    size: str
    task: str
    data: Path
    out: Path
    recipe: Recipe
    device: str = "cpu"

    def record(self) -> dict:
        """What identifies this training: a checkpoint holding the same record need not be retrained."""
        return {"variant": self.variant, "size": self.size, "task": self.task, "data": str(Path(self.data).resolve()),
                "device": self.device, "recipe": self.recipe.to_json()}


def already_trained(job: TrainJob) -> bool:
    """True when `job.out` holds a checkpoint from exactly this job."""
    try:
        training = read_config(job.out)["training"]
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(training, dict) and training.get("job") == json.loads(json.dumps(job.record()))


def run_training(job: TrainJob, on_step: Callable[[StepLog], None] | None = None) -> dict:
    """Train and save; returns the training record stored in the checkpoint's config."""
    dataset = load_dataset(job.task, job.data, "train")
    note = dataset_conversion_note(job.data, (clip.path for clip in dataset.clips))
    if note:  # once for the whole set; the loader converts each file silently
        print(note, file=sys.stderr)
    examples = ClipExamples(dataset)
    tokenizer = ByteTokenizer()
    lalm = build(job.variant, job.size, device=job.device, seed=job.recipe.seed)
    tokenizer.check_fits(lalm.lm.vocab_size)
    summary = train(lalm, tokenizer, dataset.question, examples, job.recipe, on_step)
    record = {
        "job": job.record(),
        "dataset": dataset.describe,
        "question": dataset.question,
        "answers": list(dataset.answers),
        "examples": len(examples),
        "skipped_clips": len(examples.skipped),
        "max_new_tokens": examples.max_answer_tokens + 1,  # + eos
        "steps": summary.steps,
        "train_seconds": round(summary.seconds, 2),
        "final_loss": summary.final_loss,
        "trainable_params": summary.trainable_params,
        "torch_threads": torch.get_num_threads(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "losses": [round(x, 5) for x in summary.losses],
    }
    save_checkpoint(job.out, lalm, tokenizer, job.recipe.prompt_template, record)
    return record
