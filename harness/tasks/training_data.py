"""A dataset split as training examples: (waveform, answer text) pairs for `models.train`.

Classification clips answer with their class's answer text (several labels: joined by ", ");
captioning clips give one example per reference caption. Small sets are read into memory once
(unreadable clips dropped and counted up front); larger ones are read batch by batch, and a
clip that fails there is left out of its batch and counted.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from harness.errors import UserError
from harness.tasks.dataset import Clip, TaskDataset, load_waves
from models.audio import SAMPLE_RATE

PRELOAD_LIMIT_BYTES = 1 << 30  # float32 samples kept in memory at most


def _answers(dataset: TaskDataset, clip: Clip) -> list[str]:
    if dataset.kind == "captioning":
        return [c for c in clip.captions if c]
    return [", ".join(dataset.answer(label) for label in clip.labels)] if clip.labels else []


class ClipExamples:
    """`models.train.ExampleSource` over a TaskDataset."""

    def __init__(self, dataset: TaskDataset, preload_limit_bytes: int = PRELOAD_LIMIT_BYTES) -> None:
        self.dataset = dataset
        self.skipped: dict[str, str] = {}  # clip key -> reason
        samples = round(dataset.clip_seconds * SAMPLE_RATE)
        self._preloaded: dict[str, np.ndarray] | None = None
        clips = list(dataset.clips)
        if len(clips) * samples * 4 <= preload_limit_bytes:
            loaded = load_waves(clips, dataset.clip_seconds)
            self._preloaded = dict(zip((c.key for c in loaded.clips), loaded.waves))
            self.skipped.update({clip.key: reason for clip, reason in loaded.skipped})
            clips = loaded.clips
        self.examples = [(clip, answer) for clip in clips for answer in _answers(dataset, clip)]
        if not self.examples:
            raise UserError(f"{dataset.root}: the {dataset.split} split has no usable training examples"
                            f" ({len(self.skipped)} unreadable clips)")

    def __len__(self) -> int:
        return len(self.examples)

    def load(self, indices: Sequence[int]) -> tuple[torch.Tensor, list[str]]:
        chosen = [self.examples[i] for i in indices]
        if self._preloaded is not None:
            waves = np.stack([self._preloaded[clip.key] for clip, _ in chosen])
            return torch.from_numpy(waves), [answer for _, answer in chosen]
        loaded = load_waves([clip for clip, _ in chosen], self.dataset.clip_seconds)
        self.skipped.update({clip.key: reason for clip, reason in loaded.skipped})
        bad = {clip.key for clip, _ in loaded.skipped}
        answers = [answer for clip, answer in chosen if clip.key not in bad]
        if not answers:
            raise UserError(f"{self.dataset.root}: every clip of a training batch was unreadable, e.g. "
                            f"{next(iter(self.skipped.values()))}")
        return torch.from_numpy(loaded.waves), answers

    @property
    def max_answer_tokens(self) -> int:
        """Longest answer in UTF-8 bytes (the byte tokenizer's tokens), without eos."""
        return max(len(answer.encode("utf-8")) for _, answer in self.examples)
