"""One --threads setting: applied by every model command, recorded with what it produced."""
from __future__ import annotations

import json

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
from harness.threads import DEFAULT_THREADS, apply_threads, check_threads

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
    assert apply_threads(2) == torch.get_num_threads() == 2
    assert apply_threads(0) == 2  # 0 leaves torch's own setting
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
