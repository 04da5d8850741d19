"""What every dataset adapter returns: a split of clips with labels or captions, read-only.

Adapters read a local folder in the dataset's published layout and never download anything.
A missing folder or file, or a CSV without the expected columns, is a `UserError` naming the
path; a single clip that cannot be read is skipped at load time and counted (see `load_waves`).
"""
from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Literal

import numpy as np

from harness.errors import UserError
from models.audio import SAMPLE_RATE, load_audio
from models.errors import InputError

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Clip:
    """One item: an audio file (or a window of one) with its class labels or reference captions."""

    key: str  # stable id, unique within the split (e.g. the path relative to the dataset root)
    path: Path
    labels: tuple[str, ...] = ()  # class names; one for single-label tasks
    captions: tuple[str, ...] = ()  # reference captions for captioning tasks
    start: int = 0  # first sample at 16 kHz (silence windows cut from long noise files)
    num_samples: int | None = None  # None: to the end of the file


@dataclass(frozen=True)
class TaskDataset:
    """A split of one dataset, ready for training or evaluation."""

    name: str  # e.g. "speech_commands_v2"
    task: str  # the CLI's --task name, e.g. "kws"
    kind: Literal["classification", "captioning"]
    split: str
    root: Path
    question: str  # the instruction prompt, LTU-style
    clips: tuple[Clip, ...]
    classes: tuple[str, ...] = ()  # classification label set, in a fixed order
    clip_seconds: float = 10.0  # every waveform is padded or cropped to this length
    multi_label: bool = False

    def answer(self, label: str) -> str:
        """The answer text a model should generate for a class name (`_unknown_` -> `unknown`)."""
        return label_text(label)

    @property
    def answers(self) -> tuple[str, ...]:
        """Answer text of every class, in `classes` order."""
        return tuple(self.answer(c) for c in self.classes)

    @property
    def describe(self) -> str:
        """`name/split`: what the `dataset` column of task rows records."""
        return f"{self.name}/{self.split}"


def label_text(label: str) -> str:
    """Class name -> natural answer text: strip the `_x_` markers, underscores become spaces."""
    return label.strip("_").replace("_", " ").strip()


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return split


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise UserError(f"{path}: {what} folder not found")
    return path


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise UserError(f"{path}: {what} not found")
    return path


def read_csv(path: Path, required: Iterable[str]) -> list[dict[str, str]]:
    """Rows of a CSV file with a header, as dicts; a UserError when a required column is absent."""
    require_file(path, "CSV file")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or []]
        missing = [c for c in required if c not in header]
        if missing:
            found = ", ".join(header) if header else "no header"
            raise UserError(f"{path}: missing column(s) {', '.join(missing)} (found: {found})")
        reader.fieldnames = header
        return [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader]


@functools.lru_cache(maxsize=8)
def read_cached(path: Path) -> np.ndarray:
    """A whole file (S,) at 16 kHz, read once: long noise files are windowed many times."""
    return load_audio(path).numpy()


def read_clip(clip: Clip, seconds: float) -> np.ndarray:
    """The clip's waveform (S,) float32 at 16 kHz, zero-padded or cropped to `seconds`.

    Raises InputError (naming the file) when the audio cannot be read.
    """
    audio = read_cached(clip.path) if clip.num_samples is not None else load_audio(clip.path).numpy()
    end = None if clip.num_samples is None else clip.start + clip.num_samples
    audio = audio[clip.start:end]
    target = round(seconds * SAMPLE_RATE)
    if audio.shape[0] >= target:
        return audio[:target]
    return np.pad(audio, (0, target - audio.shape[0]))


@dataclass
class LoadedBatch:
    """Waveforms that loaded, with the clips they belong to and the ones that did not."""

    waves: np.ndarray  # (B, S) float32
    clips: list[Clip]
    skipped: list[tuple[Clip, str]]  # (clip, reason)


def load_waves(clips: Iterable[Clip], seconds: float) -> LoadedBatch:
    """Read clips, skipping (and recording) each one whose audio is missing or unreadable."""
    waves, kept, skipped = [], [], []
    for clip in clips:
        try:
            waves.append(read_clip(clip, seconds))
            kept.append(clip)
        except InputError as err:
            skipped.append((clip, str(err)))
    target = round(seconds * SAMPLE_RATE)
    stacked = np.stack(waves) if waves else np.zeros((0, target), dtype=np.float32)
    return LoadedBatch(stacked.astype(np.float32, copy=False), kept, skipped)
