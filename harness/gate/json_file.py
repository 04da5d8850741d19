"""A gate record (wall or count mode) as a JSON file: written atomically, read back validated."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from harness.errors import UserError

Record = TypeVar("Record", bound=BaseModel)


def save(record: BaseModel, path: Path) -> None:
    """Write `record` to `path` atomically (a crash never leaves half a baseline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(record.model_dump_json(indent=1) + "\n")
    os.replace(tmp, path)


def load(model: type[Record], path: Path, kind: str, schema_version: int) -> Record:
    """Read a `model` from `path`; a missing, unreadable, malformed or other-version file is a
    UserError naming it (`kind`: what the message calls it, e.g. "count record")."""
    if not path.is_file():
        raise UserError(f"{kind} {path} does not exist (record a baseline with `lalm-bench gate --update-baseline`)")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{kind} {path} is not readable JSON: {err}") from None
    try:
        record = model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise UserError(f"{kind} {path}: {where}: {first['msg']}") from None
    if record.schema_version != schema_version:
        raise UserError(f"{kind} {path}: schema_version {record.schema_version}, expected {schema_version}")
    return record
