"""Task accuracy: dataset adapters (local folders only), the synthetic keyword-spotting set,
label matching, metrics, and evaluation of a checkpoint into `task` rows."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from harness.errors import UserError
from harness.tasks import esc50, speech_commands
from harness.tasks.captions import load_audiocaps, load_clotho
from harness.tasks.dataset import SPLITS, Clip, TaskDataset

# --task name -> adapter(root, split) -> TaskDataset
ADAPTERS: dict[str, Callable[[Path, str], TaskDataset]] = {
    "kws": speech_commands.load,
    "esc50": esc50.load,
    "audiocaps": load_audiocaps,
    "clotho": load_clotho,
}
TASK_NAMES = tuple(ADAPTERS)


def load_dataset(task: str, root: str | Path, split: str) -> TaskDataset:
    """One split of a local dataset folder, read by the adapter for `task`."""
    if task not in ADAPTERS:
        raise UserError(f"unknown task {task!r}; expected one of {', '.join(TASK_NAMES)}")
    return ADAPTERS[task](Path(root), split)


__all__ = ["ADAPTERS", "SPLITS", "TASK_NAMES", "Clip", "TaskDataset", "load_dataset"]
