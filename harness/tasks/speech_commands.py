"""Speech Commands v2 as the 12-way keyword-spotting task: ten command words, unknown, silence.

Layout (as published): `<word>/<speaker>_nohash_<n>.wav` for every word,
`validation_list.txt` and `testing_list.txt` naming the held-out clips (everything else is
training), and `_background_noise_/*.wav` (long noise recordings). Words other than the ten
commands are `_unknown_`; `_silence_` clips are 1 s windows cut from the background files, as
many per split as the average command word present has, from disjoint parts of each file (first 80%
for training, next 10% validation, last 10% test) so no noise is shared between splits.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.errors import UserError
from harness.tasks.dataset import (
    Clip,
    TaskDataset,
    check_split,
    read_cached,
    require_dir,
    require_file,
)
from models.audio import SAMPLE_RATE
from models.errors import InputError

NAME = "speech_commands_v2"
COMMAND_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
# The other 25 words of Speech Commands v2; all map to `_unknown_`.
UNKNOWN_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow",
    "backward", "forward", "follow", "learn", "visual",
)
UNKNOWN = "_unknown_"
SILENCE = "_silence_"
CLASSES = COMMAND_WORDS + (UNKNOWN, SILENCE)
BACKGROUND_DIR = "_background_noise_"
VALIDATION_LIST = "validation_list.txt"
TESTING_LIST = "testing_list.txt"
QUESTION = "What is the spoken command?"
CLIP_SECONDS = 1.0
# Fraction of each background file that each split draws its silence windows from.
SILENCE_REGIONS = {"train": (0.0, 0.8), "validation": (0.8, 0.9), "test": (0.9, 1.0)}


def _read_list(path: Path) -> list[str]:
    require_file(path, "split list")
    return [line.strip().replace("\\", "/") for line in path.read_text().splitlines() if line.strip()]


def _label(word: str) -> str:
    return word if word in COMMAND_WORDS else UNKNOWN


def _word_clips(root: Path, split: str) -> list[Clip]:
    validation, testing = _read_list(root / VALIDATION_LIST), _read_list(root / TESTING_LIST)
    if split != "train":
        # Held-out clips come from the list itself, so a listed file that is missing on disk
        # is counted as skipped at load time instead of silently shrinking the test set.
        listed = validation if split == "validation" else testing
        return [Clip(rel, root / rel, labels=(_label(rel.split("/")[0]),)) for rel in listed]
    held_out = set(validation) | set(testing)
    word_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("_"))
    if not word_dirs:
        raise UserError(f"{root}: no word folders (expected <word>/*.wav, e.g. yes/0a7c2a8d_nohash_0.wav)")
    clips = []
    for word_dir in word_dirs:
        for wav in sorted(word_dir.glob("*.wav")):
            rel = f"{word_dir.name}/{wav.name}"
            if rel not in held_out:
                clips.append(Clip(rel, wav, labels=(_label(word_dir.name),)))
    return clips


def _silence_clips(root: Path, split: str, count: int, seed: int) -> list[Clip]:
    """`count` 1 s windows spread over the background files, inside this split's region of each."""
    noise_dir = require_dir(root / BACKGROUND_DIR, "background noise (source of the _silence_ class)")
    files = sorted(noise_dir.glob("*.wav"))
    if not files:
        raise UserError(f"{noise_dir}: no .wav files; the _silence_ class is cut from them")
    window = round(CLIP_SECONDS * SAMPLE_RATE)
    lo, hi = SILENCE_REGIONS[split]
    rng = np.random.default_rng([seed, list(SILENCE_REGIONS).index(split)])
    lengths = {}
    for path in files:
        try:
            lengths[path] = read_cached(path).shape[0]
        except InputError as err:
            raise UserError(f"{path}: unreadable background noise file ({err})") from None
    clips = []
    for i in range(count):
        path = files[i % len(files)]
        first, last = int(lo * lengths[path]), int(hi * lengths[path]) - window
        if last < first:
            raise UserError(f"{path}: too short to cut 1 s silence windows for the {split} split")
        start = int(rng.integers(first, last + 1))
        clips.append(Clip(f"{BACKGROUND_DIR}/{path.name}#{start}", path, labels=(SILENCE,), start=start, num_samples=window))
    return clips


def load(root: Path, split: str, seed: int = 0) -> TaskDataset:
    """The 12-way task on one split of a Speech Commands v2 folder (real or synthesised)."""
    root = require_dir(Path(root), "Speech Commands v2")
    split = check_split(split)
    clips = _word_clips(root, split)
    per_word = [n for n in (sum(c.labels[0] == w for c in clips) for w in COMMAND_WORDS) if n]
    silence = _silence_clips(root, split, round(float(np.mean(per_word))) if per_word else 0, seed)
    return TaskDataset(
        name=NAME, task="kws", kind="classification", split=split, root=root, question=QUESTION,
        clips=tuple(clips + silence), classes=CLASSES, clip_seconds=CLIP_SECONDS,
    )
