"""Profiling on CUDA: kernel time per module, the device-idle row, memory snapshots, and the OOM snapshot."""
from __future__ import annotations

import json
import pickle

import pandas as pd
import pytest
import torch

from harness.measure.chain import PhaseInputs
from harness.profile import ProfileSettings, profile_point
from harness.profile.attribution import DEVICE_IDLE
from harness.profile.cuda_memory import OOM_SNAPSHOT, SNAPSHOT
from models import build
from tests.conftest import make_wave

pytestmark = pytest.mark.gpu

FAST = ProfileSettings(repeats=2, warmup=1, reference_runs=2)
SECONDS = 0.64


def _inputs() -> PhaseInputs:
    return PhaseInputs(make_wave(SECONDS).cuda(), torch.randint(0, 100, (1, 4), device="cuda"), new_tokens=2)


def test_cuda_profile_attributes_kernel_time_and_snapshots_memory(tmp_path):
    lalm = build("dass+mamba", "tiny", device="cuda")
    rows = pd.DataFrame(profile_point(lalm, _inputs(), ["encoder", "decode"], tmp_path, FAST))
    assert set(rows["status"]) == {"ok"}
    for phase in ("encoder", "decode"):
        mine = rows[rows["phase"] == phase]
        latency = mine[mine["metric"] == "latency_ms"]
        assert latency["source"].str.contains("CUDA kernel time").all()
        assert DEVICE_IDLE in set(latency["module"])
        scan = latency[latency["module"].str.endswith("/scan")]
        assert len(scan) and (scan["value"] > 0).all()
        assert "host_time_ms" in set(mine["metric"])
        shares = mine[(mine["metric"] == "share") & ~mine["module"].str.startswith("group:")]
        assert shares["value"].sum() == pytest.approx(1.0)
        snapshot = pickle.loads((tmp_path / phase / SNAPSHOT).read_bytes())
        assert snapshot["segments"] and any(snapshot["device_traces"])
        trace = json.loads((tmp_path / phase / "trace.json").read_text())
        assert any(event.get("cat") == "kernel" for event in trace["traceEvents"])
        operators = pd.read_csv(tmp_path / phase / "operators.csv")
        assert operators["self_device_ms"].sum() > 0


def test_cuda_oom_keeps_the_failed_calls_snapshot(tmp_path, monkeypatch):
    lalm = build("ast+llama", "tiny", device="cuda")
    _, total = torch.cuda.mem_get_info()
    # float32 elements numbering the device's bytes: four times what the device holds.
    monkeypatch.setattr(lalm, "encode", lambda feats: torch.empty(total, dtype=torch.float32, device="cuda"))
    rows = profile_point(lalm, _inputs(), ["encoder"], tmp_path, FAST)
    assert [row["status"] for row in rows] == ["oom"]
    path = tmp_path / "encoder" / OOM_SNAPSHOT
    assert str(path) in rows[0]["note"]
    snapshot = pickle.loads(path.read_bytes())
    actions = {entry["action"] for trace in snapshot["device_traces"] for entry in trace}
    assert "oom" in actions
