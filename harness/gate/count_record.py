"""A count-mode gate session as JSON: the committed baseline and any saved current run.

Per kernel it holds callgrind's events per call (instructions executed, `Ir`). What makes two
records comparable is the code that ran, not the host: the instruction-set paths torch, MKL,
oneDNN and numba took and the CPU valgrind presented (`Environment.code_paths`); the library
versions are kept too, since an upgrade shifts counts.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import BaseModel

from harness.env import cpu_name
from harness.gate import json_file

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
    """Write `record` to `path` atomically."""
    json_file.save(record, path)


def load(path: Path) -> CountRecord:
    """Read a count record; a missing, unreadable or malformed file is a UserError naming it."""
    return json_file.load(CountRecord, path, "count record", SCHEMA_VERSION)
