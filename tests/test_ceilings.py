"""Machine ceilings: the microbenchmarks' arithmetic and their record in run.json."""
from __future__ import annotations

import math

import pytest

from harness.measure import ceilings
from harness.measure.ceilings import Ceilings, best_seconds


def test_best_seconds_keeps_the_fastest_call_after_a_warm_up_and_at_least_min_calls():
    times = iter([9.0, 3.0, 1.0, 2.0])  # the first call (warm-up) is not timed
    calls = []
    best = best_seconds(lambda: calls.append(1), lambda call: (call(), next(times))[1], deadline=0.0, min_calls=3)
    assert best == 1.0
    assert len(calls) == 4  # warm-up + 3 timed


def test_measured_ceilings_are_positive_and_finite_for_every_dtype_and_stream():
    found = ceilings.measure("cpu", threads=1, budget_s=0.05, sizes=(16, 32), stream_bytes=1 << 20)
    assert set(found.flops_per_s) == set(ceilings.DTYPES)
    for value in [*found.flops_per_s.values(), found.read_bytes_per_s, found.copy_bytes_per_s]:
        assert 0 < value < math.inf
    assert found.threads == 1 and found.source == "measured" and found.memory_bytes > 0
    assert found.bandwidth == max(found.read_bytes_per_s, found.copy_bytes_per_s)


def test_ceilings_survive_a_round_trip_through_json_types():
    found = Ceilings("cpu", "x", {"float32": 1e9, "bfloat16": 2e9}, 3e9, 4e9, 8 << 30, 2)
    again = Ceilings.from_dict(found.as_dict())
    assert again == found
    assert math.isnan(again.peak_flops("float16"))


def test_a_failed_capture_is_an_error_record_not_an_exception():
    record = ceilings.capture("no-such-device")
    assert "error" in record and "flops_per_s" not in record


@pytest.mark.slow
def test_capture_measures_in_a_child_interpreter():
    record = ceilings.capture("cpu", threads=1)
    assert Ceilings.from_dict(record).flops_per_s["float32"] > 0
