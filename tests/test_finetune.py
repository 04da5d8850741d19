"""Training stages and the optimiser step: which parameters train, LoRA counts against the closed
form, what one step changes, and that checkpointing and autocast leave the step's meaning alone."""
from __future__ import annotations

import pytest
import torch

from models import VARIANTS, build
from models.errors import InputError
from models.finetune import enable_activation_checkpointing, prepare, random_batch, train_step_for
from models.finetune_stages import STAGES
from models.params import lora_trainable
from models.train.recipe import Recipe

def _trainable_names(lalm) -> set[str]:
    return {name for name, p in lalm.named_parameters() if p.requires_grad}


def _lora_recipe() -> Recipe:
    return Recipe(stages=(STAGES["lora"],))


@pytest.mark.parametrize("variant", VARIANTS)
def test_lora_trainable_parameters_equal_the_formula(variant):
    lalm = build(variant, "tiny")
    expected = lora_trainable(lalm.lm)
    assert lalm.lm.family.lora_params(lalm.lm.family.shapes["tiny"]) == expected  # the closed form
    prepare(lalm, STAGES["lora"], _lora_recipe())
    lm_trainable = sum(p.numel() for p in lalm.lm.parameters() if p.requires_grad)
    assert lm_trainable == expected
    assert all("lora_" in name for name, p in lalm.lm.named_parameters() if p.requires_grad)


@pytest.mark.parametrize("variant, paper_count", [("ast+llama", 4_194_304), ("dass+mamba", 6_553_600)])
def test_lora_on_paper_shapes_adds_the_papers_counts(variant, paper_count):
    lalm = build(variant, "paper", device="meta")  # shapes only: nothing is allocated
    assert lora_trainable(lalm.lm) == paper_count
    prepare(lalm, STAGES["lora"], _lora_recipe())
    assert sum(p.numel() for p in lalm.lm.parameters() if p.requires_grad) == paper_count


@pytest.mark.parametrize("stage, components", [("projector", {"projector"}), ("full", {"encoder", "projector", "lm"})])
def test_stage_trains_exactly_its_components(stage, components):
    lalm = build("dass+llama", "tiny")
    train_step_for(lalm, stage)
    expected = {f"{c}.{name}" for c in components for name, _ in getattr(lalm, c).named_parameters()}
    assert _trainable_names(lalm) == expected
    assert lalm.training


def test_one_step_moves_trainable_parameters_and_nothing_else():
    lalm = build("ast+mamba", "tiny")
    step = train_step_for(lalm, "lora")
    before = {name: p.detach().clone() for name, p in lalm.named_parameters()}
    loss = step(random_batch(lalm, 2, 0.5, 4, 4))
    assert torch.isfinite(loss)
    trainable = _trainable_names(lalm)
    moved = {name for name, p in lalm.named_parameters() if not torch.equal(p.detach(), before[name])}
    assert moved and moved <= trainable
    assert not any(name.startswith("lm.") and "lora_" not in name for name in moved)
    assert {"encoder", "projector"} <= {name.split(".")[0] for name in moved}


def test_warm_up_leaves_no_gradient_and_no_optimiser_state():
    lalm = build("ast+llama", "tiny")
    step = train_step_for(lalm, "lora")
    step.warm_up(random_batch(lalm, 1, 0.5, 4, 4))
    assert all(p.grad is None for p in step.params)
    assert not step.optimizer.state


def test_loss_is_on_answer_tokens_only():
    lalm = build("ast+llama", "tiny")
    batch = random_batch(lalm, 2, 1.0, prompt_tokens=5, answer_tokens=3)
    assert batch.ids.shape == (2, 8)
    assert (batch.targets[:, :5] == -100).all() and torch.equal(batch.targets[:, 5:], batch.ids[:, 5:])
    assert batch.tokens == 2 * (lalm.num_audio_tokens(1.0) + 8)


def _gradients(variant: str, checkpointing: bool) -> tuple[float, dict[str, torch.Tensor]]:
    lalm = build(variant, "tiny")
    step = train_step_for(lalm, "lora")
    if checkpointing:
        assert enable_activation_checkpointing(lalm) > 0
    loss = step.forward_backward(random_batch(lalm, 2, 0.5, 4, 4))
    return float(loss), {name: p.grad.clone() for name, p in lalm.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("variant", [
    "ast+llama",
    "dass+mamba",
])
def test_activation_checkpointing_gives_the_same_gradients(variant):
    loss, grads = _gradients(variant, checkpointing=False)
    loss_ckpt, grads_ckpt = _gradients(variant, checkpointing=True)
    assert loss_ckpt == pytest.approx(loss, rel=1e-6)
    assert grads.keys() == grads_ckpt.keys()
    for name in grads:
        torch.testing.assert_close(grads_ckpt[name], grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_bf16_autocast_step_keeps_float32_weights():
    lalm = build("dass+llama", "tiny")
    step = train_step_for(lalm, "lora", precision="bf16")
    loss = step(random_batch(lalm, 1, 0.5, 4, 4))
    assert torch.isfinite(loss)
    assert all(p.dtype == torch.float32 for p in lalm.parameters())
    assert step.optimizer.state  # the update ran


def test_bad_settings_are_input_errors():
    lalm = build("ast+llama", "tiny")
    with pytest.raises(InputError, match="unknown training stage 'lorra'"):
        train_step_for(lalm, "lorra")
    with pytest.raises(InputError, match="unknown precision 'fp8'"):
        train_step_for(lalm, "lora", precision="fp8")
    with pytest.raises(InputError, match="at least one answer token"):
        random_batch(lalm, 1, 1.0, 4, 0)
