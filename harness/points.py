"""A Point is one measured configuration of a sweep; a PointResult is what measuring it gave.

Points are plain frozen records, so they pickle to worker processes and Ray tasks unchanged.
A point's id is a hash of its fields alone (not of the suite or the run), which is what lets
a resumed run recognise finished points and lets two runs be joined point by point.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields


@dataclass(frozen=True)
class Point:
    """What to run: one model configuration at one input shape."""

    variant: str  # canonical ENCODER+LM, e.g. "dass+mamba"
    size: str  # models.SIZES key
    device: str  # "cpu" | "cuda" (never "auto": resolved before points exist)
    dtype: str  # one of harness.schema.DTYPES
    batch_size: int
    audio_seconds: float
    prompt_tokens: int
    new_tokens: int
    scan_backend: str = "auto"  # requested selective-scan backend; the one that ran is in the rows
    mode: str = "eager"  # one of harness.schema.MODES

    def __post_init__(self) -> None:
        # 10 and 10.0 seconds are the same point; normalising here keeps the id stable.
        object.__setattr__(self, "audio_seconds", float(self.audio_seconds))
        object.__setattr__(self, "batch_size", int(self.batch_size))

    @property
    def id(self) -> str:
        """Stable 16-hex-digit hash of the fields (same on every machine and Python version)."""
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def encoder(self) -> str:
        return self.variant.split("+")[0]

    @property
    def lm(self) -> str:
        return self.variant.split("+")[1]

    @property
    def label(self) -> str:
        """Short human-readable name for progress lines, e.g. 'dass+mamba tiny float32 b2 4s p8 n8'."""
        extras = [v for v, default in ((self.scan_backend, "auto"), (self.mode, "eager")) if v != default]
        shape = [f"b{self.batch_size}", f"{self.audio_seconds:g}s", f"p{self.prompt_tokens}", f"n{self.new_tokens}"]
        return " ".join([self.variant, self.size, self.dtype, *shape, *extras])

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Point:
        return cls(**{f.name: data[f.name] for f in fields(cls)})


POINT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Point))


def identity(point: Point, suite_name: str, run_id: str) -> dict:
    """The columns that say which point a row belongs to (every writer of rows stamps these)."""
    return {
        "run_id": run_id, "point_id": point.id, "suite": suite_name, "variant": point.variant,
        "encoder": point.encoder, "lm": point.lm, "size": point.size, "device": point.device,
        "dtype": point.dtype, "batch_size": point.batch_size, "audio_seconds": point.audio_seconds,
        "prompt_tokens": point.prompt_tokens, "new_tokens": point.new_tokens,
        "requested_scan_backend": point.scan_backend, "mode": point.mode,
    }


@dataclass
class PointResult:
    """What a workload returns for one point.

    rows: tidy-table rows holding the measure columns (phase, metric, value, unit, lo, hi, n,
      and optionally status, error, source, note, scan_backend, attn_backend, module, ...);
      the runner adds the point's identity, run id and environment.
    samples: raw per-repeat values, dicts with phase, metric, value and optionally unit and i.
    files: relative path -> content, for what a point produces besides numbers (profiler traces,
      module tables). They travel back with the result, so a point run on a Ray node lands in the
      driver's run folder too: the store writes them under <run>/artifacts/<point_id>/.
    """

    rows: list[dict] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
