"""`lalm-bench gate --mode wall` end to end: exit codes, bad input, confirmation, baseline files,
advisory verdicts off the baseline's machine.

Verdict tests compare synthetic records (`--current`), so no assertion depends on timing;
one test measures for real, briefly, and checks only the file it writes. Count mode has its
own tests (`test_gate_counts.py`).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.gate import command as gate_command
from harness.gate.record import Fingerprint, GateRecord, KernelRecord, Settings, load, save

KERNELS = ("matmul", "conv1d")


def fingerprint(**changes) -> Fingerprint:
    fields = dict(
        cpu_model="Test CPU",
        logical_cores=2,
        physical_cores=2,
        memory_gib=8.0,
        os="Linux",
        python="3.11",
        torch="2.13.0",
        numpy="2.0",
        device="cpu",
        device_name="Test CPU",
        threads=1,
        clock="process_time",
        host_id="host-a",
    )
    return Fingerprint(**{**fields, **changes})


def record(slowdown: dict[str, float] | None = None, seed: int = 0, samples: int = 40, clean: bool = True,
           copy_weight: float = 0.0, **machine) -> GateRecord:
    """A synthetic record: each kernel's normalised samples ~ lognormal(0, 5%) x its slowdown."""
    rng = np.random.default_rng(seed)
    kernels = {}
    for name in KERNELS:
        values = (slowdown or {}).get(name, 1.0) * rng.lognormal(0.0, 0.05, samples)
        kernels[name] = KernelRecord(
            shape="test",
            inner=1,
            copy_weight=copy_weight,
            normalised=values.tolist(),
            clean=[clean] * samples,
            median=float(np.median(values)),
            p10=float(np.quantile(values, 0.1)),
            p90=float(np.quantile(values, 0.9)),
            raw_ms_median=1.0,
        )
    return GateRecord(
        created="2026-01-01T00:00:00+00:00",
        fingerprint=fingerprint(**machine),
        settings=Settings(rounds=samples, clean_samples=samples, budget_s=40, target_ms=1, seed=seed),
        duration_s=1.0,
        calibration_ms={"matmul": 1.0, "copy": 1.0},
        kernels=kernels,
    )


@pytest.fixture
def baseline(tmp_path: Path) -> Path:
    path = tmp_path / "baseline.json"
    save(record(seed=1, samples=90), path)
    return path


def run_gate(tmp_path: Path, baseline: Path, current: GateRecord, *extra: str) -> int:
    path = tmp_path / "current.json"
    save(current, path)
    return main(["gate", "--mode", "wall", "--baseline", str(baseline), "--current", str(path), *extra])


def wall_gate(*args: str) -> int:
    return main(["gate", "--mode", "wall", *args])


def test_same_speed_passes(tmp_path, baseline, capsys):
    assert run_gate(tmp_path, baseline, record(seed=2)) == 0
    assert "kernel gate passed" in capsys.readouterr().out


def test_a_25_percent_slower_kernel_fails_with_exit_1(tmp_path, baseline, capsys):
    assert run_gate(tmp_path, baseline, record({"conv1d": 1.25}, seed=2)) == 1
    out = capsys.readouterr().out
    assert "FAILED: conv1d regressed" in out
    assert "regression" in out


def test_a_faster_kernel_is_reported_but_passes(tmp_path, baseline, capsys):
    assert run_gate(tmp_path, baseline, record({"matmul": 0.7}, seed=2)) == 0
    assert "improvement" in capsys.readouterr().out


def test_a_slowdown_seen_only_in_preempted_samples_is_not_judged(tmp_path, baseline, capsys):
    assert run_gate(tmp_path, baseline, record({"conv1d": 1.5}, seed=2, clean=False)) == 0
    assert "not judged" in capsys.readouterr().out


def test_a_baseline_from_another_machine_is_flagged(tmp_path, baseline, capsys):
    assert run_gate(tmp_path, baseline, record(seed=2, cpu_model="Other CPU")) == 0
    assert "cpu_model: Test CPU -> Other CPU" in capsys.readouterr().out


@pytest.mark.parametrize("host", ["host-b", None])
def test_a_slowdown_against_another_machines_baseline_is_advisory(tmp_path, baseline, capsys, host):
    """Same CPU name and cores, another host (or one a record does not name): wall time does not
    transfer, so the slowdown is reported and the exit status stays 0."""
    assert run_gate(tmp_path, baseline, record({"conv1d": 1.25}, seed=2, host_id=host)) == 0
    out = capsys.readouterr().out
    assert "advisory, not failing: conv1d looked slower" in out and "another machine" in out


def test_a_baseline_normalised_with_another_copy_weight_exits_2(tmp_path, baseline, capsys):
    assert run_gate(tmp_path, baseline, record(seed=2, copy_weight=0.3)) == 2
    err = capsys.readouterr().err
    assert "copy weight 0.0, now 0.3" in err and "--update-baseline" in err


def test_missing_baseline_exits_2_naming_the_file(tmp_path, capsys):
    missing = tmp_path / "nope.json"
    assert wall_gate("--baseline", str(missing)) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "--update-baseline" in err


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not readable JSON"),
        ('{"schema_version": 1}', "created"),
        (None, "schema_version 99"),
    ],
)
def test_malformed_baseline_exits_2(tmp_path, content, message, capsys):
    path = tmp_path / "bad.json"
    if content is None:
        data = json.loads(record().model_dump_json())
        data["schema_version"] = 99
        content = json.dumps(data)
    path.write_text(content)
    assert wall_gate("--baseline", str(path), "--current", str(path)) == 2
    assert message in capsys.readouterr().err


def test_bad_flags_exit_2(tmp_path, baseline):
    assert wall_gate("--baseline", str(baseline), "--kernels", "nope") == 2
    assert wall_gate("--baseline", str(baseline), "--device", "tpu") == 2
    assert wall_gate("--baseline", str(baseline), "--rounds", "1") == 2
    assert wall_gate("--update-baseline", "--current", str(baseline)) == 2


def test_malformed_slowdown_switch_exits_2(baseline, monkeypatch):
    monkeypatch.setenv("LALM_BENCH_INJECT_WORK", "conv1d")
    assert wall_gate("--baseline", str(baseline), "--kernels", "conv1d") == 2


class FakeMeasuring:
    """Stands in for the measuring: returns the given records in turn, remembering the kernels asked for."""

    def __init__(self, *records: GateRecord) -> None:
        self.records = list(records)
        self.asked: list[list[str]] = []

    def __call__(self, kernels, device, settings, threads) -> GateRecord:
        self.asked.append(list(kernels))
        return self.records.pop(0)


@pytest.mark.parametrize(
    "second, code, message",
    [
        (record({"conv1d": 1.3}, seed=3), 1, "FAILED: conv1d regressed"),
        (record(seed=3), 0, "not confirmed (noise): conv1d"),
    ],
)
def test_a_flagged_kernel_fails_only_if_a_second_session_confirms_it(
    baseline, monkeypatch, capsys, second, code, message
):
    measuring = FakeMeasuring(record({"conv1d": 1.3}, seed=2), second)
    monkeypatch.setattr(gate_command, "_measure", measuring)
    assert wall_gate("--baseline", str(baseline), "--kernels", ",".join(KERNELS)) == code
    assert measuring.asked == [list(KERNELS), list(KERNELS)]
    assert message in capsys.readouterr().out


def test_no_confirm_fails_on_the_first_verdict(baseline, monkeypatch):
    measuring = FakeMeasuring(record({"conv1d": 1.3}, seed=2))
    monkeypatch.setattr(gate_command, "_measure", measuring)
    assert wall_gate("--baseline", str(baseline), "--kernels", ",".join(KERNELS), "--no-confirm") == 1
    assert len(measuring.asked) == 1


def test_update_baseline_measures_and_writes_a_loadable_record(tmp_path):
    path, saved = tmp_path / "b.json", tmp_path / "run.json"
    args = ["--kernels", "matmul,conv1d", "--rounds", "3", "--samples", "0", "--target-ms", "0.2"]
    assert wall_gate("--update-baseline", "--baseline", str(path), "--save", str(saved), *args) == 0
    written = load(path)
    assert list(written.kernels) == ["matmul", "conv1d"]
    assert all(len(k.normalised) == 3 == len(k.clean) for k in written.kernels.values())
    assert written.fingerprint.threads == 1 and written.settings.rounds == 3
    assert load(saved) == written
