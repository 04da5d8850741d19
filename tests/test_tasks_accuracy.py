"""End to end: synthesise, train, generate, match, score — the model must really hear the words.

A small, clean keyword set (yes / no / silence from unseen voices) keeps the budget in CI range.
The floors are set where a broken pipeline cannot reach them: a model deaf to the audio answers
one label (accuracy <= 1/3 here) and one that only tells speech from silence gets at most 2/3
overall and 1/2 on the words.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.tasks import load_dataset
from harness.tasks.evaluate import EvalOptions, evaluate
from harness.tasks.synth_kws import SynthConfig, generate
from harness.tasks.train_run import TrainJob, run_training
from models.train import load_checkpoint, ltu_recipe

CLEAN_YES_NO = SynthConfig(seed=0, timbres=40, voices_per_timbre=1, takes=2, words=("yes", "no"), unknown_per_voice=0,
                           validation_timbres=1, test_timbres=4, noise_seconds=20.0, snr_db=40.0,
                           peak_dbfs=(-6.0, -6.0), rate_wpm=(170, 170), pitch=(50, 50), pitch_range=(50, 50))
FLOOR_OVERALL, FLOOR_WORDS = 0.7, 0.7


def _budget(steps: int):
    """The default recipe (lr 1e-3, batch 16) without the projector-only stage, which only
    delays an LM trained from scratch."""
    return ltu_recipe(steps, batch_size=16, projector_fraction=0.0)


@pytest.fixture(scope="module")
def yes_no_set(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("kws") / "data"
    generate(root, CLEAN_YES_NO)
    return root


def _train_and_score(variant: str, steps: int, data: Path, out: Path) -> tuple[float, float]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: more threads only contend on a small CPU
    try:
        run_training(TrainJob(variant, "tiny", "kws", data, out, _budget(steps)))
        evaluation = evaluate(load_checkpoint(out), load_dataset("kws", data, "test"), EvalOptions(nearest="string"))
    finally:
        torch.set_num_threads(before)
    overall = next(s.value for s in evaluation.scores if s.metric == "accuracy")
    words = [p for p in evaluation.predictions if p["reference"][0] in ("yes", "no")]
    return overall, sum(p["label"] == p["reference"][0] for p in words) / len(words)


def test_tiny_transformer_lalm_learns_the_words(yes_no_set: Path, tmp_path: Path):
    overall, words = _train_and_score("ast+llama", 200, yes_no_set, tmp_path / "ck")
    assert overall >= FLOOR_OVERALL and words >= FLOOR_WORDS, (overall, words)


@pytest.mark.slow
def test_tiny_state_space_lalm_learns_the_words(yes_no_set: Path, tmp_path: Path):
    overall, words = _train_and_score("dass+mamba", 300, yes_no_set, tmp_path / "ck")
    assert overall >= FLOOR_OVERALL and words >= FLOOR_WORDS, (overall, words)
