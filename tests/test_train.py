"""Tokenizer, teacher forcing, the recipe's stages and schedule, the loop, LoRA, checkpoints."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from models import build
from models.errors import InputError
from models.tokenizer import ByteTokenizer, tokenizer_from_config
from models.train import (Recipe, Stage, answer_batch, load_checkpoint, ltu_recipe, prompt_ids, save_checkpoint,
                          teacher_forcing_loss, train)
from models.train.loop import _learning_rate, _set_trainable
from models.train.teacher_forcing import IGNORE, spec_augment

TOK = ByteTokenizer()


pytestmark = pytest.mark.usefixtures("one_thread")


def test_byte_tokenizer_round_trip_and_specials():
    ids = TOK.encode("héllo", bos=True, eos=True)
    assert ids[0] == TOK.bos_id and ids[-1] == TOK.eos_id and len(ids) == 2 + len("héllo".encode())
    assert TOK.decode(ids) == "héllo"
    assert TOK.decode([ord("o"), ord("k"), TOK.eos_id, ord("x")]) == "ok"  # stops at eos
    assert TOK.decode([TOK.pad_id, ord("a"), TOK.bos_id, 400]) == "a"  # specials and out-of-range ids dropped
    assert TOK.decode([0xC3]) == "\ufffd"  # a cut UTF-8 sequence is replaced, not an exception
    assert tokenizer_from_config(TOK.config()).vocab_size == 259
    with pytest.raises(InputError, match="unknown tokenizer kind"):
        tokenizer_from_config({"kind": "bpe"})
    with pytest.raises(InputError, match="needs 259 token ids"):
        TOK.check_fits(256)


def test_answer_batch_puts_loss_on_answer_and_eos_only():
    ids, targets = answer_batch(TOK, [TOK.bos_id, 65], ["no", "yes"])
    assert ids.tolist() == [[TOK.bos_id, 65, ord("n"), ord("o"), TOK.eos_id, TOK.pad_id],
                            [TOK.bos_id, 65, ord("y"), ord("e"), ord("s"), TOK.eos_id]]
    assert targets.tolist() == [[IGNORE, IGNORE, ord("n"), ord("o"), TOK.eos_id, IGNORE],
                                [IGNORE, IGNORE, ord("y"), ord("e"), ord("s"), TOK.eos_id]]


@pytest.fixture(scope="module")
def tiny_llama():
    return build("ast+llama", "tiny", seed=0)


def test_teacher_forcing_loss_is_next_token_cross_entropy_on_answers(tiny_llama):
    torch.manual_seed(0)
    feats = tiny_llama.features(torch.randn(2, 16000) * 0.1)
    ids, targets = answer_batch(TOK, prompt_ids(TOK, "Q?", "{question}\n"), ["no", "yes"])
    loss = teacher_forcing_loss(tiny_llama, feats, ids, targets)
    logits = tiny_llama(feats, ids)
    audio = logits.shape[1] - ids.shape[1]
    terms = [F.cross_entropy(logits[b, audio + k - 1], ids[b, k], reduction="sum")
             for b in range(2) for k in range(ids.shape[1]) if targets[b, k] != IGNORE]
    assert loss.item() == pytest.approx(torch.stack(terms).mean().item(), rel=1e-5)
    # Padding after an answer cannot change the loss of a causal LM.
    padded = ids.clone()
    padded[0, -1] = 7
    assert teacher_forcing_loss(tiny_llama, feats, padded, targets).item() == pytest.approx(loss.item(), rel=1e-6)


def test_spec_augment_masks_one_band_each_way():
    feats = torch.ones(3, 50, 40)
    masked = spec_augment(feats, torch.Generator().manual_seed(0), time_mask=5, freq_mask=4)
    assert masked.shape == feats.shape and set(masked.unique().tolist()) <= {0.0, 1.0}
    for clip in masked:
        rows_zero = (clip == 0).all(dim=1).sum().item()
        cols_zero = (clip == 0).all(dim=0).sum().item()
        assert rows_zero <= 5 and cols_zero <= 4


def test_recipe_stages_and_validation():
    recipe = ltu_recipe(100, lr=2e-3, projector_fraction=0.2)
    assert [(s.name, s.trainable, s.steps) for s in recipe.stages] == [
        ("projector", ("projector",), 20), ("all", ("encoder", "projector", "lm"), 80)]
    assert recipe.total_steps == 100
    with pytest.raises(InputError, match="trainable parts"):
        Stage("x", ("decoder",), 1, 1e-3)
    with pytest.raises(InputError, match="steps must be >= 1"):
        ltu_recipe(0)
    with pytest.raises(InputError, match="batch size"):
        ltu_recipe(10, batch_size=0)


def test_learning_rate_warms_up_then_decays_to_the_floor():
    recipe = ltu_recipe(100, lr=1.0, projector_fraction=0.0)
    stage = recipe.stages[1]
    rates = [_learning_rate(stage, step, recipe) for step in range(stage.steps)]
    assert rates[0] == pytest.approx(1 / 5) and rates[4] == pytest.approx(1.0)  # 5% warm-up
    assert all(a >= b for a, b in zip(rates[4:], rates[5:]))
    assert rates[-1] == pytest.approx(0.1, abs=1e-3)


def test_stages_choose_what_trains(tiny_llama):
    model = build("ast+llama", "tiny", seed=0)
    recipe = ltu_recipe(10)
    trainable = _set_trainable(model, recipe.stages[0], recipe)
    assert sum(p.numel() for p in trainable) == sum(p.numel() for p in model.projector.parameters())
    lora_stage = Stage("all", ("encoder", "projector", "lm"), 1, 1e-3, lora=True)
    _set_trainable(model, lora_stage, recipe)
    lm_trainable = [n for n, p in model.lm.named_parameters() if p.requires_grad]
    assert lm_trainable and all("lora_" in n for n in lm_trainable)
    assert all(p.requires_grad for p in model.encoder.parameters())


class ToySource:
    """Two kinds of clip (a low and a high tone) answering "low" / "high"."""

    def __init__(self):
        t = torch.arange(16000) / 16000
        self.waves = torch.stack([0.3 * torch.sin(2 * math.pi * f * t) for f in (200.0, 3000.0)])

    def __len__(self):
        return 8

    def load(self, indices):
        return self.waves[[i % 2 for i in indices]], ["low" if i % 2 == 0 else "high" for i in indices]


def _toy_recipe(steps: int, **options) -> Recipe:
    return ltu_recipe(steps, lr=3e-3, projector_fraction=0.25, batch_size=4, **options)


def test_training_is_seeded_and_lowers_the_loss():
    runs = []
    for _ in range(2):
        model = build("ast+llama", "tiny", seed=0)
        summary = train(model, TOK, "Pitch?", ToySource(), _toy_recipe(12))
        runs.append(summary.losses)
    assert runs[0] == runs[1] and len(runs[0]) == 12
    assert sum(runs[0][-3:]) < sum(runs[0][:3])
    assert not model.training and all(p.requires_grad for p in model.parameters())


def test_checkpoint_round_trip_gives_the_same_model(tmp_path: Path):
    model = build("dass+mamba", "tiny", seed=0)
    train(model, TOK, "Pitch?", ToySource(), _toy_recipe(2, lora=True))
    assert not hasattr(model.lm.model, "merge_and_unload")  # LoRA merged before saving
    save_checkpoint(tmp_path / "ck", model, TOK, "{question}\n", {"note": "toy"})
    loaded = load_checkpoint(tmp_path / "ck")
    wave, ids = ToySource().waves, torch.tensor([[TOK.bos_id, 80]] * 2)
    with torch.no_grad():
        feats = model.features(wave)
        assert torch.equal(model(feats, ids), loaded.lalm(feats, ids))
    assert loaded.config["training"] == {"note": "toy"} and loaded.prompt_template == "{question}\n"
    assert (tmp_path / "ck" / "model.safetensors").read_bytes()[8:9] == b"{"  # safetensors header, not a pickle


def test_bad_checkpoints_name_the_path(tmp_path: Path):
    with pytest.raises(InputError, match="nowhere: checkpoint folder not found"):
        load_checkpoint(tmp_path / "nowhere")
    ck = tmp_path / "ck"
    ck.mkdir()
    with pytest.raises(InputError, match="config.json: checkpoint config not found"):
        load_checkpoint(ck)
    (ck / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="config.json: not valid JSON"):
        load_checkpoint(ck)
    (ck / "config.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(InputError, match="missing key"):
        load_checkpoint(ck)
    save_checkpoint(ck, build("ast+llama", "tiny"), TOK, "{question}", {})
    config = json.loads((ck / "config.json").read_text())
    (ck / "config.json").write_text(json.dumps({**config, "variant": "dass+mamba"}))
    with pytest.raises(InputError, match="does not match a dass\\+mamba tiny model"):
        load_checkpoint(ck)
    (ck / "model.safetensors").unlink()
    with pytest.raises(InputError, match="model.safetensors: checkpoint weights not found"):
        load_checkpoint(ck)
