"""Device specs: a GPU's datasheet ceilings from a TOML or JSON file, or this machine measured.

A spec file holds `name`, `description`, `source` (the datasheet it comes from), `device` (the kind
points run on: "cuda", the default, or "cpu"), `memory_bytes`, `bandwidth_bytes_per_s` and
`[flops_per_s]` per dtype (dense, no sparsity). The built-in ones
are in `harness/plan/devices/`; `--device-spec this` measures this machine's ceilings instead.
"""
from __future__ import annotations

import json
import tomllib
from pathlib import Path

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, ValidationError, create_model

from harness.errors import UserError
from harness.measure.ceilings import Ceilings, capture
from harness.schema import DTYPES

DEVICES_DIR = Path(__file__).resolve().parent / "devices"
THIS_MACHINE = "this"


# Peak FLOP/s for every dtype a point may run in, each required: one field per schema.DTYPES.
DtypeFlops = create_model("DtypeFlops", __config__=ConfigDict(extra="forbid"),
                          **{dtype: (PositiveFloat, ...) for dtype in DTYPES})


class DeviceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    description: str = ""
    source: str = Field(min_length=1)
    # The kind points run on (a suite's run.device less "auto": a datasheet describes one device).
    device: Literal["cuda", "cpu"] = "cuda"
    memory_bytes: PositiveInt
    bandwidth_bytes_per_s: PositiveFloat
    flops_per_s: DtypeFlops

    def ceilings(self) -> Ceilings:
        flops = self.flops_per_s.model_dump()
        return Ceilings(self.device, self.description or self.name, {d: flops[d] for d in DTYPES},
                        self.bandwidth_bytes_per_s, self.bandwidth_bytes_per_s, self.memory_bytes,
                        source=f"datasheet: {self.source}")


def builtin_names() -> list[str]:
    return sorted(p.stem for p in DEVICES_DIR.glob("*.toml"))


def read_spec(path: Path) -> DeviceSpec:
    """A spec file (.toml or .json), validated; UserError naming the file and the first problem."""
    try:
        text = path.read_text()
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise UserError(f"device spec {path}: cannot read it: {err}") from None
    try:
        return DeviceSpec.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise UserError(f"device spec {path}: {key}: {first['msg']}") from None


def load_device(ref: str, device: str = "cpu", threads: int = 0) -> Ceilings:
    """`this` (this machine's `device`, measured now with `threads`), a built-in name, or a file
    (whose own `device` says the kind; `device` is then unused)."""
    if ref == THIS_MACHINE:
        record = capture(device, threads)
        if "error" in record:
            raise UserError(f"cannot measure this machine's {device} ceilings: {record['error']}")
        return Ceilings.from_dict(record)
    path = Path(ref)
    if path.is_dir():
        raise UserError(f"device spec {ref} is a folder; give a .toml/.json spec file in it")
    if path.suffix in (".toml", ".json") or path.exists():
        if not path.is_file():
            raise UserError(f"device spec file {ref} does not exist")
        return read_spec(path).ceilings()
    if ref in builtin_names():
        return read_spec(DEVICES_DIR / f"{ref}.toml").ceilings()
    valid = ", ".join([THIS_MACHINE, *builtin_names()])
    raise UserError(f"unknown device spec {ref!r}; valid: {valid}, or a .toml/.json spec file")
