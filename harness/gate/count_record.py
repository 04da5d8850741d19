"""A count-mode gate session as JSON: the committed baseline and any saved current run.

Per kernel it holds callgrind's events per call (instructions executed, `Ir`). What makes two
records comparable is the code that ran, not the host: the instruction-set paths torch, MKL,
oneDNN and numba took and the CPU valgrind presented (`Environment.code_paths`); the library
versions are kept too, since an upgrade shifts counts.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from pydantic import BaseModel, ValidationError

from harness.env import cpu_name
from harness.errors import UserError

SCHEMA_VERSION = 1

class Environment(BaseModel):
    """What the counts depend on: the code paths that ran, the tool, the library versions."""

    code_paths: dict[str, str]  # torch / mkl / onednn / numba ISA settings, and the CPU valgrind presented
    valgrind: str
    versions: dict[str, str]  # python, torch, numpy, numba


class KernelCounts(BaseModel):
    """One kernel: the counted calls and its events per call."""

    shape: str
    calls: int
    per_call: dict[str, float]  # Ir: instructions executed


class CountRecord(BaseModel):
    """A whole count-mode session."""

    schema_version: int = SCHEMA_VERSION
    created: str
    host: str  # the CPU it was measured on, for people: counts do not depend on it
    environment: Environment
    duration_s: float
    kernels: dict[str, KernelCounts]


def new_record(environment: Environment, kernels: dict[str, KernelCounts], duration_s: float) -> CountRecord:
    return CountRecord(
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        host=cpu_name(),
        environment=environment,
        duration_s=round(duration_s, 1),
        kernels=kernels,
    )


def describe_paths(code_paths: dict[str, str]) -> str:
    """One line for people: 'torch DEFAULT, mkl SSE4_2, ... on cpu haswell'."""
    libs = ", ".join(f"{k} {v}" for k, v in code_paths.items() if k != "cpu")
    return f"{libs} on {code_paths.get('cpu', '?')}"


def save(record: CountRecord, path: Path) -> None:
    """Write `record` to `path` atomically (a crash never leaves half a baseline)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(record.model_dump_json(indent=1) + "\n")
    os.replace(tmp, path)


def load(path: Path) -> CountRecord:
    """Read a count record; a missing, unreadable or malformed file is a UserError naming it."""
    if not path.is_file():
        raise UserError(
            f"count record {path} does not exist (record a baseline with `lalm-bench gate --update-baseline`)"
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"count record {path} is not readable JSON: {err}") from None
    try:
        record = CountRecord.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise UserError(f"count record {path}: {where}: {first['msg']}") from None
    if record.schema_version != SCHEMA_VERSION:
        raise UserError(f"count record {path}: schema_version {record.schema_version}, expected {SCHEMA_VERSION}")
    return record
