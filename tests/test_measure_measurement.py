"""Measurement -> results-table rows that pass the schema; NaN for what could not be measured."""
from __future__ import annotations

import math

import pytest

from harness import schema
from harness.measure.measurement import Measurement

IDENTITY = dict(run_id="r", point_id="p", suite="quick", variant="dass+mamba", encoder="dass", lm="mamba",
                size="tiny", device="cpu", dtype="float32", batch_size=1, audio_seconds=10.0,
                prompt_tokens=8, new_tokens=4, phase="decode")


def test_row_carries_identity_and_figure_and_passes_the_schema():
    m = Measurement("latency_ms", 12.5, "ms", lo=11.0, hi=14.0, n=30, source="perf_counter", note="x",
                    samples=(11.0, 12.5, 14.0))
    row = m.to_row(**IDENTITY, mode="eager")
    assert row["value"] == 12.5 and row["lo"] == 11.0 and row["hi"] == 14.0 and row["n"] == 30
    assert row["status"] == "ok" and row["error"] == "" and row["mode"] == "eager"
    table = schema.conform([row])
    schema.validate(table)
    assert table.loc[0, "source"] == "perf_counter"


def test_nan_measurement_says_why_and_is_never_zero():
    m = Measurement.nan("energy_j", "J", "no NVML: driver library not found", source="nvml.total_energy")
    assert math.isnan(m.value) and m.n == 0 and not m.measured
    row = m.to_row(**IDENTITY)
    assert math.isnan(row["value"]) and row["note"] == "no NVML: driver library not found"
    assert row["status"] == "ok" and row["error"] == ""
    schema.validate(schema.conform([row]))


def test_failed_phase_fills_the_error_column():
    m = Measurement.nan("latency_ms", "ms", "OutOfMemoryError: CUDA out of memory", status="oom")
    row = m.to_row(**IDENTITY)
    assert row["status"] == "oom" and row["error"] == "OutOfMemoryError: CUDA out of memory"


def test_unknown_status_is_rejected():
    with pytest.raises(ValueError, match="status"):
        Measurement("latency_ms", 1.0, "ms", status="fine")


def test_sample_rows_keep_every_raw_value_in_order():
    m = Measurement("latency_ms", 2.0, "ms", samples=(3.0, 1.0, 2.0))
    rows = m.sample_rows(run_id="r", point_id="p", phase="decode")
    table = schema.conform(rows, schema.SAMPLE_COLUMNS)
    assert list(table["value"]) == [3.0, 1.0, 2.0]
    assert list(table["i"]) == [0, 1, 2]
    assert set(table["metric"]) == {"latency_ms"} and set(table["point_id"]) == {"p"}


def test_with_note_appends():
    assert Measurement("x", 1.0, "1", note="a").with_note("b").note == "a; b"
    assert Measurement("x", 1.0, "1").with_note("b").note == "b"
