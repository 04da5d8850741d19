"""The runner with the local executor: failures become rows, larger points are skipped after an
OOM, and a run killed with SIGKILL resumes to every point exactly once."""
from __future__ import annotations

import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from harness import api, runner, store
from harness.cli import main
from harness.executors import make_executor
from harness.executors.base import Outcome
from harness.points import Point
from harness.suite import Suite, expand, validate_suite
from tests.fake_workload import FAULTS

ROOT = Path(__file__).resolve().parent.parent
WORKLOAD = "tests.fake_workload:measure"


def fake_suite(**grid) -> Suite:
    raw = {
        "name": "fake", "description": "fake workload",
        "grid": {"variant": ["ssm"], "audio_seconds": [1], **grid},
        "measure": {"phases": ["encoder", "e2e"], "repeats": 2},
        "run": {"device": "cpu", "timeout_s": 3, "memory_limit_mb": 256, "skip_larger_after": [], "workload": WORKLOAD},
    }
    return validate_suite(raw, "test")


def run_suite(suite: Suite, run_dir: Path, **run_settings) -> runner.SweepResult:
    suite = suite.model_copy(update={"run": suite.run.model_copy(update=run_settings)})
    store.create_run(run_dir, suite.model_dump(mode="json"), "test", run_id="run-1")
    return runner.execute(run_dir, make_executor(suite.run, suite.measure, run_dir / store.LOGS))


def point_statuses(run_dir: Path) -> dict[int, str]:
    """prompt_tokens (the fault selector) -> status."""
    results = store.load_run(run_dir).results
    statuses = store.point_statuses(results)
    return {int(p): statuses[pid] for pid, p in results.groupby("point_id")["prompt_tokens"].first().items()}


def test_each_kind_of_failure_is_recorded_and_the_sweep_completes(tmp_path):
    kinds = ["raise", "memory", "hang", "sigkill", "cuda_oom"]
    suite = fake_suite(prompt_tokens=[0] + [FAULTS[k] for k in kinds])
    result = run_suite(suite, tmp_path / "run")
    assert point_statuses(tmp_path / "run") == {
        0: "ok", FAULTS["raise"]: "error", FAULTS["memory"]: "oom", FAULTS["hang"]: "timeout",
        FAULTS["sigkill"]: "crash", FAULTS["cuda_oom"]: "oom"}
    assert result.total == result.ran == 6
    run = store.load_run(tmp_path / "run")
    errors = dict(zip(run.results["prompt_tokens"], run.results["error"]))
    assert "fake workload failure" in errors[FAULTS["raise"]]
    assert "SIGKILL" in errors[FAULTS["sigkill"]] and "timeout" in errors[FAULTS["hang"]]
    failed = run.results[run.results["status"] != "ok"]
    assert set(failed["phase"]) == {"encoder", "e2e"} and failed["value"].isna().all()
    assert run.meta["state"] == "complete"
    ok = run.results[run.results["status"] == "ok"]
    assert set(ok["host"]) != {""} and set(ok["device_name"]) != {""} and set(ok["torch_version"]) != {""}
    # The workload's files land beside the table, under the point's id; failed points have none.
    (ok_point,) = set(ok["point_id"])
    assert (tmp_path / "run" / store.ARTIFACTS / ok_point / "trace" / "points.txt").read_text().startswith("dass+mamba")
    assert [p.name for p in (tmp_path / "run" / store.ARTIFACTS).iterdir()] == [ok_point]


def test_a_failing_derived_row_step_leaves_the_measured_rows_written(tmp_path, monkeypatch):
    from harness import roofline

    def broken(results, ceilings):
        raise ZeroDivisionError("derived rows")

    monkeypatch.setattr(roofline, "with_roofline", broken)
    with pytest.raises(ZeroDivisionError):
        run_suite(fake_suite(prompt_tokens=[0]), tmp_path / "run", isolation="none")
    run = store.load_run(tmp_path / "run")
    assert point_statuses(tmp_path / "run") == {0: "ok"}
    assert set(run.results["phase"]) == {"encoder", "e2e"} and run.results["value"].notna().all()
    assert run.meta["state"] == "interrupted"


def test_an_oom_skips_the_longer_and_larger_points_of_the_same_configuration(tmp_path):
    suite = fake_suite(variant=["ssm", "transformer"], audio_seconds=[1, 2], batch_size=[1, 2],
                       prompt_tokens=[FAULTS["memory"]], exclude=[{"variant": "transformer", "batch_size": 2}])
    run_suite(suite, tmp_path / "run", skip_larger_after=["oom"])
    results = store.load_run(tmp_path / "run").results
    statuses = store.point_statuses(results)
    by_point = results.drop_duplicates("point_id").set_index("point_id")
    # Each configuration ran its smallest point only; the rest say why they were skipped.
    ran = {pid for pid, status in statuses.items() if status == "oom"}
    assert {(r.variant, r.audio_seconds, r.batch_size) for pid, r in by_point.iterrows() if pid in ran} == {
        ("dass+mamba", 1.0, 1), ("ast+llama", 1.0, 1)}
    skipped = results[results["status"] == "skipped"]
    assert skipped["point_id"].nunique() == 6 - 2
    assert skipped["error"].str.contains("failed with oom at 1 s, batch 1").all()


def test_an_out_of_memory_inside_a_phase_is_oom_and_skips_the_longer_points(tmp_path):
    """A memory-capped CPU sweep of the real workload: the model builds and the other phases run,
    the encoder phase of the 4 s point runs out of memory under the cap, and the 8 s point is skipped."""
    raw = {
        "name": "capped", "description": "the real workload under a memory cap",
        "grid": {"variant": ["ssm"], "audio_seconds": [1, 4, 8]},
        "measure": {"phases": ["fbank", "encoder", "prefill"], "meters": ["latency"], "warmup": 0, "repeats": 1,
                    "max_repeats": 1, "prompt_tokens": 2, "new_tokens": 1},
        "run": {"device": "cpu", "timeout_s": 300, "memory_limit_mb": 1024, "skip_larger_after": ["oom"],
                "threads": 1, "workload": "tests.hungry_workload:measure"},
    }
    result = api.run_suite(validate_suite(raw, "test"), out=tmp_path / "run")
    results = store.load_run(tmp_path / "run").results
    latency = results[results["metric"] == "latency_ms"]
    by_length = {seconds: rows.set_index("phase") for seconds, rows in latency.groupby("audio_seconds")}
    assert set(by_length[1.0]["status"]) == {"ok"}
    capped = by_length[4.0]
    assert capped.loc["fbank", "status"] == "ok"  # the point ran: the failure is the phase's own
    assert capped.loc["encoder", "status"] == "oom" and "can't allocate memory" in capped.loc["encoder", "error"]
    assert capped.loc["prefill", "status"] == "error" and "needs the encoder output" in capped.loc["prefill", "error"]
    assert set(by_length[8.0]["status"]) == {"skipped"}
    assert by_length[8.0]["error"].str.contains("failed with oom at 4 s, batch 1").all()
    assert result.statuses == {"ok": 1, "oom": 1, "skipped": 1}


def test_points_run_smallest_first():
    points = [Point("ssm", "tiny", "cpu", "float32", b, a, 8, 4) for a in (4, 1, 2) for b in (2, 1)]
    ordered = runner.order(points)
    assert [(p.audio_seconds, p.batch_size) for p in ordered] == [(a, b) for a in (1, 2, 4) for b in (1, 2)]


def test_skipper_skips_only_points_at_least_as_large_in_the_same_configuration():
    skipper = runner.Skipper(["oom"])
    failed = Point("dass+mamba", "tiny", "cpu", "float32", 2, 8, 8, 4)
    skipper.observe(failed, "oom")
    skipper.observe(Point("ast+llama", "tiny", "cpu", "float32", 1, 1, 8, 4), "error")
    same = {"variant": "dass+mamba", "size": "tiny", "device": "cpu", "dtype": "float32", "prompt_tokens": 8,
            "new_tokens": 4}
    assert skipper.reason(Point(batch_size=2, audio_seconds=16, **same))
    assert skipper.reason(Point(batch_size=4, audio_seconds=8, **same))
    assert not skipper.reason(Point(batch_size=1, audio_seconds=16, **same))
    assert not skipper.reason(Point(batch_size=4, audio_seconds=4, **same))
    assert not skipper.reason(Point(**{**same, "dtype": "bfloat16"}, batch_size=2, audio_seconds=16))
    assert not skipper.reason(Point("ast+llama", "tiny", "cpu", "float32", 2, 2, 8, 4))  # "error" is not a skip status


def test_workload_rows_that_break_the_schema_become_error_rows():
    suite = fake_suite()
    point = expand(suite)[0]
    bad = Outcome(point, "ok", rows=[{"phase": "nonsense", "metric": "latency_ms", "value": 1.0}])
    results, samples = runner.tables(bad, suite, "run-1", "sha")
    assert set(results["status"]) == {"error"} and results["error"].str.contains("unknown phase").all()
    assert results["phase"].tolist() == ["encoder", "e2e"] and samples.empty
    empty, _ = runner.tables(Outcome(point, "ok"), suite, "run-1", "sha")
    assert empty["error"].str.contains("no rows").all()


def test_a_failed_point_gets_the_closed_form_rows_its_workload_module_provides(monkeypatch):
    from tests import fake_workload

    suite = fake_suite()
    point = expand(suite)[0]
    failed = Outcome(point, "timeout", error="timeout after 3 s")
    results, _ = runner.tables(failed, suite, "run-1", "sha")  # the fake workload has no closed forms
    assert set(results["metric"]) == {"latency_ms"} and set(results["note"]) == {""}

    def closed(point, settings):
        return [{"phase": "encoder", "metric": "flops_analytic", "value": 7.0, "source": "fake"}]

    monkeypatch.setattr(fake_workload, "closed_form_rows", closed, raising=False)
    results, _ = runner.tables(failed, suite, "run-1", "sha")
    flops = results[results["metric"] == "flops_analytic"]
    assert flops["value"].tolist() == [7.0] and set(results["status"]) == {"timeout"} | {"ok"}

    def unbuildable(point, settings):
        raise ValueError("no such shape")

    monkeypatch.setattr(fake_workload, "closed_form_rows", unbuildable)
    results, _ = runner.tables(failed, suite, "run-1", "sha")
    assert set(results["status"]) == {"timeout"} and results["error"].str.contains("timeout after").all()
    assert results["note"].str.contains("no closed-form rows: ValueError: no such shape").all()


def test_a_file_named_outside_its_point_folder_is_an_error():
    point = expand(fake_suite())[0]
    for name in ("../escape.txt", "/etc/passwd", ""):
        outcome = runner.checked_files(Outcome(point, "ok", rows=[{"phase": "e2e"}], files={name: b"x"}))
        assert outcome.status == "error" and "bad file" in outcome.error and not outcome.files
    fine = Outcome(point, "ok", files={"a/b.json": b"{}"})
    assert runner.checked_files(fine) is fine


def test_rows_get_identity_and_where_they_ran_without_losing_their_own_context():
    suite = fake_suite()
    point = expand(suite)[0]
    outcome = Outcome(point, "ok", rows=[{"phase": "e2e", "metric": "latency_ms", "value": 2.0, "scan_backend": "cpu",
                                          "host": ""}],
                      samples=[{"phase": "e2e", "metric": "latency_ms", "value": v} for v in (1.0, 2.0, 3.0)],
                      context={"host": "node-a", "device_name": "cpu-x"})
    results, samples = runner.tables(outcome, suite, "run-1", "abc123")
    row = results.iloc[0]
    assert (row["point_id"], row["variant"], row["lm"], row["audio_seconds"]) == (point.id, "dass+mamba", "mamba", 1.0)
    assert (row["host"], row["device_name"], row["git_sha"], row["scan_backend"]) == ("node-a", "cpu-x", "abc123", "cpu")
    assert (row["unit"], row["status"], row["n"], row["requested_scan_backend"]) == ("ms", "ok", 1, "auto")
    assert math.isnan(row["lo"])
    assert samples["i"].tolist() == [0, 1, 2] and set(samples["point_id"]) == {point.id}


def test_in_process_isolation_still_turns_exceptions_into_statuses(tmp_path):
    suite = fake_suite(prompt_tokens=[0, FAULTS["raise"], FAULTS["cuda_oom"]])
    run_suite(suite, tmp_path / "run", isolation="none")
    assert point_statuses(tmp_path / "run") == {0: "ok", FAULTS["raise"]: "error", FAULTS["cuda_oom"]: "oom"}


def write_slow_suite(tmp_path: Path, executor: str = "local") -> Path:
    path = tmp_path / "slow.toml"
    path.write_text(f"""
name = "slow"
description = "slow fake points, to be interrupted"
[grid]
variant = ["ssm", "transformer"]
audio_seconds = [1, 2, 3, 4]
prompt_tokens = {FAULTS["slow"]}
[measure]
phases = ["e2e"]
repeats = 2
[run]
device = "cpu"
workload = "{WORKLOAD}"
executor = "{executor}"
cpus_per_point = 1
""")
    return path


def start_and_kill(cmd: list[str], run_dir: Path, after_parts: int, timeout_s: float = 120) -> None:
    """Start a sweep, SIGKILL its driver once `after_parts` points are on disk; check no worker survives."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout_s
    try:
        while len(list((run_dir / store.PARTS).glob("*.results.parquet"))) < after_parts:
            assert proc.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline, "the sweep made no progress"
            time.sleep(0.05)
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    gone, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, f"processes outlived the killed driver: {alive}"


def assert_every_point_once(run_dir: Path, suite_path: Path) -> None:
    run = store.load_run(run_dir)
    expected = {p.id for p in expand(validate_suite(run.meta["suite"], "stored", stored=True))}
    assert set(run.results["point_id"]) == expected
    per_point = run.results.groupby("point_id").size()
    assert (per_point == per_point.iloc[0]).all(), "a point has duplicated rows"
    assert not run.results.duplicated(["point_id", "phase", "metric"]).any()
    assert set(run.results["status"]) == {"ok"}
    assert len(run.meta["sessions"]) == 2 and run.meta["state"] == "complete"


def test_a_sweep_killed_with_sigkill_resumes_to_every_point_exactly_once(tmp_path, capsys):
    suite_path = write_slow_suite(tmp_path)
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "harness", "run", str(suite_path), "--out", str(run_dir), "--quiet"]
    start_and_kill(cmd, run_dir, after_parts=2)
    assert store.load_run(run_dir).results["point_id"].nunique() >= 2
    assert main(["run", "--resume", str(run_dir), "--quiet"]) == 0
    assert_every_point_once(run_dir, suite_path)


@pytest.mark.gpu
def test_a_cuda_out_of_memory_is_an_oom_row_on_the_gpu_that_ran_it(tmp_path):
    import torch

    suite = fake_suite(prompt_tokens=[0, FAULTS["cuda_alloc"]])
    run_suite(suite, tmp_path / "run", device="cuda", memory_limit_mb=0)
    assert point_statuses(tmp_path / "run") == {0: "ok", FAULTS["cuda_alloc"]: "oom"}
    results = store.load_run(tmp_path / "run").results
    assert (results["device"] == "cuda").all()
    assert results["device_name"].str.contains(torch.cuda.get_device_name(0), regex=False).all()
