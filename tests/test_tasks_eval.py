"""Evaluation: label decisions to scores, captions to scores, task rows in a run, the CLI commands."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from harness import store
from harness.cli import main
from harness.points import Point
from harness.schema import conform, validate
from harness.tasks.dataset import Clip, TaskDataset
from harness.tasks.evaluate import EvalOptions, Evaluation, Score, score_captioning, score_classification
from harness.tasks.rows import task_rows
from models import build
from tests.conftest import write_wav

CLASSES = ("yes", "no", "_unknown_", "_silence_")


pytestmark = pytest.mark.usefixtures("one_thread")


def _dataset(labels: list[str], kind: str = "classification") -> TaskDataset:
    clips = tuple(Clip(f"c{i}", Path(f"c{i}.wav"), labels=(label,)) for i, label in enumerate(labels))
    return TaskDataset(name="toy", task="kws", kind=kind, split="test", root=Path("."), question="Q?",
                       clips=clips, classes=CLASSES, clip_seconds=1.0)


def test_classification_scores_and_decision_paths():
    data = _dataset(["yes", "no", "_unknown_", "_silence_"])
    scores, predictions = score_classification(data, list(data.clips), ["Yes.", "yess", "unknown", "no"], "string")
    by_name = {s.metric: s for s in scores}
    assert [p["label"] for p in predictions] == ["yes", "yes", "_unknown_", "no"]
    assert [p["decided_by"] for p in predictions] == ["exact", "string", "exact", "exact"]
    assert by_name["accuracy"].value == 0.5 and by_name["accuracy"].n == 4
    # F1: yes 2/3, no 0, unknown 1, silence 0
    assert by_name["macro_f1"].value == pytest.approx((2 / 3 + 0 + 1 + 0) / 4)
    assert by_name["exact_match_rate"].value == 0.75 and "3 of 4 answers matched" in by_name["accuracy"].note
    assert 0 < by_name["mAP"].value <= 1 and by_name["accuracy"].source == "exact+difflib"


def test_caption_scores_report_what_is_unavailable(monkeypatch):
    monkeypatch.delenv("LALM_METEOR_JAR", raising=False)
    monkeypatch.delenv("LALM_SPICE_JAR", raising=False)
    clips = [Clip("a", Path("a.wav"), captions=("a dog barks", "dog barking")), Clip("b", Path("b.wav"), captions=("rain falls",))]
    scores, predictions = score_captioning(clips, ["a dog barks", "heavy rain"], EvalOptions())
    by_name = {s.metric: s for s in scores}
    assert list(by_name) == ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider_d", "meteor", "spice", "spider"]
    assert by_name["bleu_1"].value == pytest.approx(4 / 5)  # a dog barks (3/3) + rain (1/2)
    for name in ("meteor", "spice", "spider"):
        assert by_name[name].status == "skipped" and math.isnan(by_name[name].value) and by_name[name].note
    assert predictions[1] == {"key": "b", "text": "heavy rain", "reference": ["rain falls"]}


def test_task_rows_follow_the_schema_with_the_cost_identity():
    lalm = build("dass+mamba", "tiny")
    data = _dataset(["yes"])
    evaluation = Evaluation(data, [Score("accuracy", 0.75, 4, note="n"), Score("spice", math.nan, 0, "skipped", "no jar")],
                            [], [], prompt_tokens=60, new_tokens=8, batch_size=16, seconds=1.0)
    rows = conform(task_rows(lalm, evaluation, "ck/dass", run_id="r1", suite="accuracy"))
    validate(rows)
    point = Point("dass+mamba", "tiny", "cpu", "float32", 16, 1.0, 60, 8)
    assert set(rows["point_id"]) == {point.id} and set(rows["phase"]) == {"task"}
    assert rows[["metric", "unit", "status"]].values.tolist() == [["accuracy", "1", "ok"], ["spice", "1", "skipped"]]
    assert set(rows["dataset"]) == {"toy/test"} and set(rows["checkpoint"]) == {"ck/dass"}
    assert set(rows["scan_backend"]) == {lalm.scan_backend} and set(rows["encoder"]) == {"dass"}


WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "bed")


def _speech_commands(root: Path) -> Path:
    """Four speakers per command word: two train, one validation, one test; a noise file."""
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    for w, word in enumerate(WORDS):
        (root / word).mkdir(parents=True)
        for s, speaker in enumerate(("aaaa0000", "bbbb1111", "cccc2222", "dddd3333")):
            write_wav(root / word / f"{speaker}_nohash_0.wav", 0.2 * np.sin(2 * np.pi * (200 + 150 * w + 5 * s) * t))
    (root / "validation_list.txt").write_text("".join(f"{w}/cccc2222_nohash_0.wav\n" for w in ("yes", "no", "bed")))
    (root / "testing_list.txt").write_text("".join(f"{w}/dddd3333_nohash_0.wav\n" for w in WORDS))
    (root / "_background_noise_").mkdir()
    write_wav(root / "_background_noise_" / "white_noise.wav", rng.uniform(-0.05, 0.05, 20 * 16000))
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """A fixture dataset and a checkpoint trained on it for two steps through the CLI."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("eval")
    data = _speech_commands(root / "sc")
    ck = root / "ck"
    assert main(["train", "--variant", "ast+llama", "--data", str(data), "--out", str(ck), "--steps", "2",
                 "--batch-size", "4", "--log-every", "0"]) == 0
    return data, ck


def test_train_writes_a_checkpoint_and_a_rerun_is_a_no_op(trained, capsys):
    data, ck = trained
    config = json.loads((ck / "config.json").read_text())
    training = config["training"]
    assert config["variant"] == "ast+llama" and training["steps"] == 2 and training["dataset"] == "speech_commands_v2/train"
    assert training["max_new_tokens"] == len("unknown") + 1 and training["job"]["recipe"]["batch_size"] == 4
    assert main(["train", "--variant", "ast+llama", "--data", str(data), "--out", str(ck), "--steps", "2",
                 "--batch-size", "4", "--log-every", "0"]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_eval_appends_task_rows_once(trained, tmp_path: Path, capsys):
    data, ck = trained
    run_dir, predictions = tmp_path / "run", tmp_path / "pred.jsonl"
    args = ["eval", str(ck), "--data", str(data), "--out", str(run_dir), "--nearest", "string",
            "--predictions", str(predictions), "--batch-size", "3"]
    assert main(args) == 0
    assert "accuracy" in capsys.readouterr().out
    assert main(args) == 0  # the same evaluation again replaces its rows
    results = store.load_run(run_dir).results
    task = results[results["phase"] == "task"]
    assert sorted(task["metric"]) == sorted(["accuracy", "macro_f1", "mAP", "exact_match_rate", "skipped_clips"])
    assert set(task["dataset"]) == {"speech_commands_v2/test"} and set(task["batch_size"]) == {3}
    assert set(task["n"]) == {12}  # 11 listed word clips + 1 silence window (one per command word on average)
    lines = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert len(lines) == 12 and {"key", "text", "label", "decided_by"} <= set(lines[0])


def test_eval_bad_input_exits_2(trained, tmp_path: Path, capsys):
    data, ck = trained
    assert main(["eval", str(tmp_path / "none"), "--data", str(data)]) == 2
    assert "none: checkpoint folder not found" in capsys.readouterr().err
    assert main(["eval", str(ck), "--data", str(tmp_path / "nodata")]) == 2
    assert main(["eval", str(ck), "--data", str(data), "--batch-size", "0"]) == 2
    assert main(["train", "--variant", "ast+llama", "--data", str(data), "--out", str(tmp_path / "x"),
                 "--projector-steps", "1.5"]) == 2


def test_eval_on_a_captioning_set(trained, tmp_path: Path, monkeypatch, capsys):
    from tests.test_tasks_adapters import clotho

    monkeypatch.delenv("LALM_METEOR_JAR", raising=False)
    monkeypatch.delenv("LALM_SPICE_JAR", raising=False)
    _, ck = trained
    data = clotho(tmp_path / "clotho")
    run_dir = tmp_path / "run"
    assert main(["eval", str(ck), "--data", str(data), "--task", "clotho", "--max-new-tokens", "4",
                 "--out", str(run_dir)]) == 0
    task = store.load_run(run_dir).results
    by_metric = dict(zip(task["metric"], zip(task["status"], task["n"])))
    assert by_metric["cider_d"] == ("ok", 1) and by_metric["spice"][0] == "skipped"
    assert by_metric["skipped_clips"] == ("ok", 2) and set(task["dataset"]) == {"clotho_v2/test"}
    assert set(task["audio_seconds"]) == {30.0} and set(task["new_tokens"]) == {4}
    assert "meteor" in capsys.readouterr().out
