"""One measured figure and how it becomes rows of the results table (harness.schema).

A meter returns `Measurement`s; the runner adds the point's identity with `to_row`. A value the
meter could not obtain is NaN with the reason in `note` — never 0, which would read as a result.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from harness.schema import STATUSES


@dataclass(frozen=True)
class Measurement:
    """A figure with its spread and provenance.

    lo/hi: p10/p90 for timings, bounds otherwise, NaN when not applicable. n: samples behind
    `value`. source: which meter/counter produced it (e.g. "cuda_event", "proc.VmHWM").
    status: "ok" unless the phase itself failed ("error", "oom", "skipped"); then `note` holds the
    failure message. samples: raw values (timings in ms), stored beside the table by the store.
    """

    metric: str
    value: float
    unit: str
    lo: float = math.nan
    hi: float = math.nan
    n: int = 1
    source: str = ""
    note: str = ""
    samples: tuple[float, ...] = field(default=(), repr=False)
    status: str = "ok"

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}; valid: {', '.join(STATUSES)}")

    @classmethod
    def nan(cls, metric: str, unit: str, reason: str, source: str = "", status: str = "ok") -> Measurement:
        """A figure that could not be measured: value NaN, n 0, `reason` in the note."""
        return cls(metric, math.nan, unit, n=0, source=source, note=reason, status=status)

    @property
    def measured(self) -> bool:
        return math.isfinite(self.value)

    def with_note(self, extra: str) -> Measurement:
        """The same figure with `extra` appended to its note."""
        note = f"{self.note}; {extra}" if self.note else extra
        return Measurement(self.metric, self.value, self.unit, self.lo, self.hi, self.n, self.source, note,
                           self.samples, self.status)

    def to_row(self, **identity: object) -> dict:
        """A results-table row: `identity` (point columns, phase, context columns) plus this figure."""
        failed = self.status not in ("ok", "skipped")
        return {
            **identity,
            "metric": self.metric,
            "value": float(self.value),
            "unit": self.unit,
            "lo": float(self.lo),
            "hi": float(self.hi),
            "n": int(self.n),
            "status": self.status,
            "error": self.note if failed else "",
            "source": self.source,
            "note": self.note,
        }

    def sample_rows(self, **identity: object) -> list[dict]:
        """Rows of the samples table (harness.schema.SAMPLE_COLUMNS): `identity` (run_id, point_id,
        phase) + metric, unit, i (repeat index), value — one per raw sample."""
        return [
            {**identity, "metric": self.metric, "unit": self.unit, "i": i, "value": float(v)}
            for i, v in enumerate(self.samples)
        ]
