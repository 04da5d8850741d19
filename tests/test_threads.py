"""One --threads setting: applied by every model command, recorded with what it produced."""
from __future__ import annotations

import json
import os

import pytest
import torch

from harness import store
from harness.cli import build_parser
from harness.errors import UserError
from harness.executors import make_executor
from harness.points import Point
from harness.suite import Measure, RunSettings, load_suite
from harness.tasks import study
from harness.tasks.rows import ensure_run
from harness.measure import ceilings
from harness.threads import DEFAULT_THREADS, apply_threads, check_threads, thread_environment

# Each model command with its required arguments.
MODEL_COMMANDS = {
    "run": ["quick"], "profile": ["ssm"], "accuracy": ["--out", "o"], "train": ["--variant", "ssm", "--data", "d",
    "--out", "o"], "eval": ["ckpt", "--data", "d"], "generate": ["ssm", "a.wav"], "gate": [],
}


@pytest.fixture
def torch_threads(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", str(before))  # restored after the test: applying sets it
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_every_model_command_takes_threads(command):
    argv = [command, *MODEL_COMMANDS[command]]
    default = build_parser(command).parse_args(argv).threads
    assert default == (None if command == "run" else DEFAULT_THREADS)  # run: the suite's run.threads
    assert build_parser(command).parse_args([*argv, "--threads", "3"]).threads == 3


def test_applying_sets_torch_and_returns_what_torch_uses(torch_threads):
    before = torch.get_num_threads()
    assert apply_threads(0) == torch.get_num_threads() == before  # 0 leaves torch's setting as it is
    assert apply_threads(2) == torch.get_num_threads() == 2
    with pytest.raises(UserError, match="--threads must be >= 0"):
        check_threads(-1)


@pytest.mark.parametrize("isolation", ["none", "process"])
def test_every_executor_runs_a_point_on_the_runs_threads(isolation, torch_threads):
    torch.set_num_threads(1)
    run = RunSettings(isolation=isolation, threads=2, workload="tests.fake_workload:threads")
    executor = make_executor(run, Measure())
    executor.submit(Point("ast+llama", "tiny", "cpu", "float32", 1, 1.0, 4, 4))
    outcome = executor.next_outcome()
    executor.close()
    assert outcome.status == "ok", outcome.error
    assert [row["value"] for row in outcome.rows] == [2]


@pytest.mark.parametrize("driver_env", [None, "1"])
def test_a_point_run_in_the_driver_leaves_the_drivers_threads_as_they_were(driver_env, torch_threads, monkeypatch):
    if driver_env is None:
        monkeypatch.delenv("OMP_NUM_THREADS")
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", driver_env)
    torch.set_num_threads(1)
    counts = []
    for threads in (2, 0):  # the second point asks for the libraries' defaults: the driver's own
        executor = make_executor(RunSettings(isolation="none", threads=threads, workload="tests.fake_workload:threads"),
                                 Measure())
        executor.submit(Point("ast+llama", "tiny", "cpu", "float32", 1, 1.0, 4, 4))
        outcome = executor.next_outcome()
        executor.close()
        counts += [row["value"] for row in outcome.rows]
        assert torch.get_num_threads() == 1 and os.environ.get("OMP_NUM_THREADS") == driver_env
    assert counts == [2, 1]


def test_the_ceilings_child_gets_the_runs_threads_not_an_inherited_setting(monkeypatch):
    assert thread_environment(0, {"OMP_NUM_THREADS": "7", "PATH": "p"}) == {"PATH": "p"}
    assert thread_environment(3, {"OMP_NUM_THREADS": "7"}) == {"OMP_NUM_THREADS": "3"}
    seen = {}

    def child(command, **kwargs):
        seen.update(kwargs["env"])
        raise OSError("not run")

    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.setattr(ceilings.subprocess, "run", child)
    assert "error" in ceilings.capture("cpu", threads=0)
    assert "OMP_NUM_THREADS" not in seen and seen["PATH"] == os.environ["PATH"]


def test_a_suite_runs_on_the_default_unless_it_says_otherwise(tmp_path):
    assert load_suite("scaling-length")[0].run.threads == DEFAULT_THREADS
    assert load_suite("quick", ["run.threads=4"])[0].run.threads == 4


def test_the_accuracy_sweep_runs_on_the_studys_threads(tmp_path, monkeypatch):
    asked = {}
    monkeypatch.setattr(study, "run_suite", lambda suite, out, overrides, overwrite: asked.update(overrides))
    config = study.Study(out=tmp_path, data=tmp_path, variants=("ast+llama",), size="tiny", recipe=None, synth=None,
                         threads=3)
    study._cost(config, prompt_tokens=4, new_tokens=2, device="cpu")
    assert asked["run.threads"] == 3


def test_an_evaluations_run_records_its_threads(tmp_path):
    ensure_run(tmp_path / "run", "ast+llama", "tiny", 1.0, threads=3)
    meta = json.loads((tmp_path / "run" / store.RUN_META).read_text())
    assert meta["suite"]["run"]["threads"] == 3
