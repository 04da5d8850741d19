"""Whether a command may write the file or folder it was given: a one-line UserError when it cannot.

Checked before any work, and nothing is created: a command that then fails leaves nothing behind.
The one check of where a command writes: run folders (`harness.store`), checkpoints (`train`),
reports and comparison tables; what a folder may already hold is each caller's own rule.
"""
from __future__ import annotations

import os
from pathlib import Path

from harness.errors import UserError


def _blocking_file(path: Path) -> Path | None:
    """The first of `path` and its parents that exists and is not a folder."""
    return next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)


def check_file(path: str | Path, option: str) -> Path:
    """`path` as a file to write: refused when it is a folder or lies under a file."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{option} {path}: is a folder, not a file")
    blocking = _blocking_file(path.parent)
    if blocking is not None:
        raise UserError(f"{option} {path}: {blocking} is a file, not a folder")
    return path


def check_folder(path: str | Path, option: str) -> Path:
    """`path` as a folder to write into: refused when it or one of its parents is a file, or when
    the nearest of them that exists (where the rest would be made) cannot be written in."""
    path = Path(path)
    blocking = _blocking_file(path)
    if blocking is not None:
        raise UserError(f"{option} {path}: {blocking} is a file, not a folder")
    existing = next(p for p in (path, *path.parents) if p.exists())  # "." or "/" at the latest
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: cannot write in {existing}")
    return path
