"""ESC-50 (environmental sound classification, 50 classes, 5 folds of 2,000 5 s clips).

Layout (as published): `meta/esc50.csv` with columns filename, fold, target, category (plus
esc10, src_file, take) and `audio/<filename>`. The protocol is cross-validation over folds:
`test` is one fold (`--fold`, default 5), `train` the other four, `validation` the fold before
the test fold.
"""
from __future__ import annotations

from pathlib import Path

from harness.errors import UserError
from harness.tasks.dataset import Clip, TaskDataset, check_split, read_csv, require_dir

NAME = "esc50"
QUESTION = "What is the sound event?"
COLUMNS = ("filename", "fold", "target", "category")
FOLDS = (1, 2, 3, 4, 5)
CLIP_SECONDS = 5.0


def _folds_for(split: str, test_fold: int) -> set[int]:
    validation_fold = FOLDS[(FOLDS.index(test_fold) - 1) % len(FOLDS)]
    if split == "test":
        return {test_fold}
    if split == "validation":
        return {validation_fold}
    return set(FOLDS) - {test_fold, validation_fold}


def load(root: Path, split: str, fold: int = 5) -> TaskDataset:
    """One split of an ESC-50 folder under the fold protocol above."""
    root = require_dir(Path(root), "ESC-50")
    split = check_split(split)
    if fold not in FOLDS:
        raise UserError(f"ESC-50 fold must be one of {FOLDS}, got {fold}")
    meta = root / "meta" / "esc50.csv"
    rows = read_csv(meta, COLUMNS)
    audio_dir = require_dir(root / "audio", "ESC-50 audio")
    by_target: dict[int, str] = {}
    clips = []
    wanted = _folds_for(split, fold)
    for line, row in enumerate(rows, start=2):
        try:
            row_fold, target = int(row["fold"]), int(row["target"])
        except ValueError:
            raise UserError(f"{meta}: line {line}: fold and target must be integers, got {row['fold']!r}, {row['target']!r}") from None
        by_target.setdefault(target, row["category"])
        if row_fold in wanted:
            clips.append(Clip(row["filename"], audio_dir / row["filename"], labels=(row["category"],)))
    if not clips:
        raise UserError(f"{meta}: no clips in fold(s) {sorted(wanted)}")
    classes = tuple(by_target[t] for t in sorted(by_target))
    return TaskDataset(
        name=NAME, task="esc50", kind="classification", split=split, root=root, question=QUESTION,
        clips=tuple(clips), classes=classes, clip_seconds=CLIP_SECONDS,
    )
