"""Bad input to the model commands: one line naming the input, exit 2, nothing written, and
checked before any work (a model built, a step trained) that the mistake would throw away."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.commands.accuracy import parse_variants
from harness.errors import UserError
from tests.test_tasks_eval import _speech_commands

pytestmark = pytest.mark.usefixtures("one_thread")

TRAIN = ["--variant", "ast+llama", "--steps", "2", "--batch-size", "4", "--log-every", "0"]


def _one_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """A fixture dataset and a two-step checkpoint trained on it."""
    root = tmp_path_factory.mktemp("bad_inputs")
    data = _speech_commands(root / "sc")
    assert main(["train", "--data", str(data), "--out", str(root / "ck"), *TRAIN]) == 0
    return data, root / "ck"


@pytest.fixture
def no_training(monkeypatch):
    """Training that fails the test if it starts: the checks must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("training started before the bad input was refused")
    monkeypatch.setattr("harness.tasks.train_run.run_training", refuse)


@pytest.mark.parametrize("command", [
    ["generate", "ssm", "clip.wav"],
    ["profile", "ssm", "--audio-seconds", "1"],
    ["eval", "ckpt", "--data", "data"],
    ["train", "--variant", "ssm", "--data", "data"],
    ["accuracy"],
    ["gate"],
])
def test_an_unknown_device_is_one_line_naming_it(command, tmp_path, capsys, no_training):
    out = tmp_path / "out"
    flags = ["--out", str(out)] if command[0] in ("train", "accuracy", "eval", "profile") else []
    assert main([*command, *flags, "--device", "banana"]) == 2
    assert "--device 'banana'" in _one_line(capsys)
    assert not out.exists()


def test_a_truncated_checkpoint_is_one_line_naming_the_file(trained, tmp_path, capsys):
    data, ck = trained
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_bytes((ck / "config.json").read_bytes())
    weights = (ck / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    assert main(["eval", str(broken), "--data", str(data), "--out", str(tmp_path / "run")]) == 2
    line = _one_line(capsys)
    assert f"{broken / 'model.safetensors'}" in line and "could not be read" in line
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("where", ["a file", "inside a file"])
def test_train_refuses_an_out_that_is_no_folder_before_training(where, tmp_path, capsys, no_training):
    (tmp_path / "taken").write_text("not a checkpoint")
    out = tmp_path / "taken" if where == "a file" else tmp_path / "taken" / "ck"
    assert main(["train", "--data", str(tmp_path), "--out", str(out), *TRAIN]) == 2
    assert f"--out {out}: {tmp_path / 'taken'} is a file, not a folder" in _one_line(capsys)
    assert (tmp_path / "taken").read_text() == "not a checkpoint"


def test_train_keeps_another_trainings_checkpoint_unless_told_to_overwrite(trained, tmp_path, capsys, monkeypatch):
    data, ck = trained
    other = tmp_path / "ck"
    other.mkdir()
    for name in ("config.json", "model.safetensors"):
        (other / name).write_bytes((ck / name).read_bytes())
    before = (other / "config.json").read_text()
    argv = ["train", "--data", str(data), "--out", str(other), *TRAIN, "--seed", "1"]  # not the same training
    with monkeypatch.context() as patch:
        patch.setattr("harness.tasks.train_run.run_training", lambda *a, **k: pytest.fail("trained over a checkpoint"))
        assert main(argv) == 2
    assert "--overwrite" in _one_line(capsys) and (other / "config.json").read_text() == before
    assert main([*argv, "--overwrite"]) == 0
    assert json.loads((other / "config.json").read_text())["training"]["job"]["recipe"]["seed"] == 1


def test_accuracy_takes_the_aliases_the_other_commands_take():
    assert parse_variants("ssm, transformer,dass+llama,ssm") == ("dass+mamba", "ast+llama", "dass+llama")
    with pytest.raises(UserError, match="unknown rnn"):
        parse_variants("ssm,rnn")


def test_a_set_that_names_an_unknown_table_blames_the_flag(tmp_path, capsys):
    assert main(["run", "quick", "--set", "foo.bar=1", "--out", str(tmp_path / "run")]) == 2
    assert _one_line(capsys).endswith("error: --set foo.bar: unknown key 'foo'")
    assert not (tmp_path / "run").exists()
