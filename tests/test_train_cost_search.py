"""The largest-batch search with real tries, each in a worker process of its own: on the CPU under
an address-space cap small enough to answer in a few tries, on CUDA under an allocator cap."""
from __future__ import annotations

import math

import pytest
import torch

from harness.measure.timing import TimerSettings
from harness.train_cost.step import TrainInputs, TrainStepSettings, run_train_step
from harness.points import Point
from harness.suite import Measure
from harness.train_cost.max_batch import cuda_index, find_max_batch, max_batch_measurement
from harness.train_settings import TrainSettings
from models import build

LIMIT = 64


def _search(device: str, size: str, audio_seconds: float, cap_mb: int, stage: str = "projector"):
    point = Point("ast+llama", size, device, "float32", 1, audio_seconds, 4, 4)
    measure = Measure(train=TrainSettings(stage=stage, max_batch=True, memory_limit_mb=cap_mb,
                                          max_batch_limit=LIMIT, trial_timeout_s=300))
    result = find_max_batch(point, measure)
    return result, max_batch_measurement(result, point, measure)


def _assert_boundary_found(result, row) -> None:
    assert not result.failure, result.error
    assert 1 <= result.largest < LIMIT
    # The search's claim: this batch fits under the cap and the next one does not.
    assert (result.largest, "ok") in result.tried and (result.largest + 1, "oom") in result.tried
    assert (row.value, row.lo, row.hi, row.status) == (result.largest, result.largest, result.largest, "ok")


def test_cpu_search_finds_where_a_memory_cap_stops_the_batch():
    # 25 MiB above the worker's address space: a handful of 4 s clips of the tiny model.
    result, row = _search("cpu", "tiny", 4.0, cap_mb=25)
    _assert_boundary_found(result, row)
    assert "RLIMIT_AS" in row.note


def test_cpu_search_reports_when_not_even_one_clip_fits():
    result, row = _search("cpu", "tiny", 4.0, cap_mb=1)
    assert result.tried == ((1, "oom"),)
    assert math.isnan(row.value) and row.status == "oom"


def test_a_bare_cuda_device_gets_the_current_index(monkeypatch):
    """The allocator cap takes a device with an index: a bare "cuda" (a point's device) raises."""
    from torch._utils import _get_device_index

    with pytest.raises(ValueError, match="specified index"):
        _get_device_index(torch.device("cuda"))  # what set_per_process_memory_fraction did with it
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 3)
    assert cuda_index(torch.device("cuda")) == 3
    assert cuda_index(torch.device("cuda", 1)) == 1
    assert _get_device_index(cuda_index(torch.device("cuda"))) == 3


@pytest.mark.gpu
def test_cuda_search_finds_where_an_allocator_cap_stops_the_batch():
    result, row = _search("cuda", "small", 30.0, cap_mb=1024, stage="lora")
    _assert_boundary_found(result, row)
    assert "CUDA allocator cap" in row.note


@pytest.mark.gpu
def test_cuda_train_step_under_bf16_autocast_measures_allocator_memory():
    lalm = build("ast+llama", "small", device="cuda")  # no scan: every op has a FLOP formula on CUDA too
    settings = TrainStepSettings(precision="bf16", timer=TimerSettings(warmup=1, min_runs=3, max_runs=3))
    rows = {m.metric: m for m in run_train_step(lalm, TrainInputs(2, 10.0, 8, 8), settings)}
    assert all(m.status == "ok" for m in rows.values())
    assert rows["peak_mem_bytes"].source == "torch.cuda.max_memory_allocated" and rows["peak_mem_bytes"].value > 0
    assert rows["latency_ms"].source == "cuda_event"
    assert rows["flop_coverage"].value == pytest.approx(1.0, rel=0.05)
    assert all(p.dtype == torch.float32 for p in lalm.parameters())


@pytest.mark.gpu
def test_cuda_ssm_train_step_counts_the_scan_backward():
    """On CUDA the scan's backward is an op with a FLOP formula (the kernel's, when installed)."""
    lalm = build("ast+mamba", "small", device="cuda")
    settings = TrainStepSettings(stage="lora", timer=TimerSettings(warmup=1, min_runs=3, max_runs=3))
    rows = {m.metric: m for m in run_train_step(lalm, TrainInputs(2, 10.0, 8, 8), settings)}
    assert all(m.status == "ok" for m in rows.values()), {m.metric: m.note for m in rows.values()}
    assert rows["flop_coverage"].value == pytest.approx(1.0, rel=0.05), rows["flop_coverage"].note
