"""Audio captioning sets: AudioCaps and Clotho v2, read from their published CSV layouts.

AudioCaps: `{train,val,test}.csv` with columns audiocap_id, youtube_id, start_time, caption
(one row per caption; the evaluation splits have five captions per clip) and the audio, which
users fetch themselves, under `audio/<split>/` or `audio/` named `<youtube_id>.wav`,
`Y<youtube_id>.wav` or `<audiocap_id>.wav`. Clips listed in the CSV but absent on disk are
common (videos disappear) and are skipped and counted at load time.

Clotho v2: `clotho_captions_{development,validation,evaluation}.csv` with columns file_name,
caption_1..caption_5, and audio folders `development/`, `validation/`, `evaluation/`.
"""
from __future__ import annotations

from pathlib import Path

from harness.tasks.dataset import Clip, TaskDataset, check_split, read_csv, require_dir

QUESTION = "Write an audio caption describing the sound."
AUDIO_SUFFIXES = (".wav",)

AUDIOCAPS_FILES = {"train": "train.csv", "validation": "val.csv", "test": "test.csv"}
AUDIOCAPS_AUDIO_DIRS = {"train": "train", "validation": "val", "test": "test"}
AUDIOCAPS_COLUMNS = ("audiocap_id", "youtube_id", "caption")

CLOTHO_SPLITS = {"train": "development", "validation": "validation", "test": "evaluation"}
CLOTHO_CAPTIONS = tuple(f"caption_{i}" for i in range(1, 6))


def _audio_index(folder: Path) -> dict[str, Path]:
    """File stem -> path for the audio files directly inside `folder`."""
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in AUDIO_SUFFIXES}


def load_audiocaps(root: Path, split: str) -> TaskDataset:
    root = require_dir(Path(root), "AudioCaps")
    split = check_split(split)
    rows = read_csv(root / AUDIOCAPS_FILES[split], AUDIOCAPS_COLUMNS)
    audio_root = require_dir(root / "audio", "AudioCaps audio")
    split_dir = audio_root / AUDIOCAPS_AUDIO_DIRS[split]
    index = _audio_index(split_dir if split_dir.is_dir() else audio_root)
    captions: dict[str, list[str]] = {}
    paths: dict[str, Path] = {}
    for row in rows:
        youtube_id = row["youtube_id"]
        captions.setdefault(youtube_id, []).append(row["caption"])
        if youtube_id not in paths:
            candidates = (youtube_id, f"Y{youtube_id}", row["audiocap_id"])
            found = next((index[c] for c in candidates if c in index), None)
            # A clip missing on disk keeps its expected path so loading reports it as skipped.
            paths[youtube_id] = found or (split_dir if split_dir.is_dir() else audio_root) / f"{youtube_id}.wav"
    clips = tuple(Clip(y, paths[y], captions=tuple(c)) for y, c in captions.items())
    return TaskDataset(
        name="audiocaps", task="audiocaps", kind="captioning", split=split, root=root,
        question=QUESTION, clips=clips, clip_seconds=10.0,
    )


def load_clotho(root: Path, split: str) -> TaskDataset:
    root = require_dir(Path(root), "Clotho v2")
    split = check_split(split)
    name = CLOTHO_SPLITS[split]
    rows = read_csv(root / f"clotho_captions_{name}.csv", ("file_name",) + CLOTHO_CAPTIONS)
    audio_dir = require_dir(root / name, f"Clotho {name} audio")
    clips = tuple(
        Clip(row["file_name"], audio_dir / row["file_name"],
             captions=tuple(row[c] for c in CLOTHO_CAPTIONS if row[c]))
        for row in rows
    )
    return TaskDataset(
        name="clotho_v2", task="clotho", kind="captioning", split=split, root=root,
        question=QUESTION, clips=clips, clip_seconds=30.0,
    )
