"""Mamba-2, the third LM family: its paper shape, its cache across chunks, its SSD closed form, its
scan backend, its training step and its bytes moved (its state bytes: tests/test_analytic.py)."""
from __future__ import annotations

import pytest
import torch

from harness.measure.flops import FlopCounter
from harness.train_cost.analytic import train_step_flops
from models import build
from models.bytes_moved import phase_bytes
from models.errors import InputError
from models.families import LMS
from models.families.mamba2 import MAMBA2_2_7B, ssd_flops
from models.finetune import random_batch, train_step_for
from models.finetune_stages import STAGES
from models.params import count, lora_trainable

MAMBA2 = LMS["mamba2"]


def test_paper_shape_is_mamba2_2_7b():
    lm = build("dass+mamba2", "paper", device="meta").lm
    assert count(lm) == MAMBA2.params(MAMBA2_2_7B) == 2_702_599_680
    assert lora_trainable(lm) == MAMBA2.lora_params(MAMBA2_2_7B) == 64 * 8 * (2560 + 10576)


@pytest.fixture(scope="module")
def tiny():
    return build("ast+mamba2", "tiny")


@pytest.mark.parametrize("context", [5, 32, 70])  # inside one chunk, exactly one, across three
def test_cached_decode_matches_the_full_sequence(tiny, context):
    """Prefill then three steps give the logits a cacheless pass over the whole sequence gives."""
    embeds = torch.randn(2, context, tiny.lm.width, generator=torch.Generator().manual_seed(context))
    with torch.inference_mode():
        logits, cache = tiny.lm.prefill(embeds)
        for _ in range(3):
            token = logits.argmax(-1)
            embeds = torch.cat([embeds, tiny.lm.embed(token[:, None])], dim=1)
            logits, cache = tiny.decode_step(cache, token)
            full = tiny.lm.logits(embeds)[:, -1]
            torch.testing.assert_close(logits, full, rtol=1e-4, atol=1e-4)


def test_ssd_flops_count_whole_chunks():
    shape = MAMBA2.shapes["tiny"]
    assert ssd_flops(shape, 1, 1) == ssd_flops(shape, 1, shape.chunk)
    assert ssd_flops(shape, 1, shape.chunk + 1) > ssd_flops(shape, 1, shape.chunk)
    assert ssd_flops(shape, 3, 50) == 3 * ssd_flops(shape, 1, 50)


def test_scan_backend_names_the_path_ssd_runs_on():
    assert build("ast+mamba2", "tiny", scan_backend="hf").scan_backend == "torch"  # CPU: transformers' torch path
    assert build("dass+mamba2", "tiny", scan_backend="reference").scan_backend == "encoder:reference,lm:torch"
    with pytest.raises(InputError, match="needs a CUDA device"):
        build("ast+mamba2", "tiny", scan_backend="cuda")


@pytest.mark.parametrize("stage, checkpointing", [("lora", False), ("lora", True), ("full", False)])
def test_train_step_flops_within_5_percent_of_the_closed_form(stage, checkpointing):
    """LoRA on in_proj, SSD's products differentiated in both operands, the blocks recomputed
    under checkpointing except out_proj."""
    lalm = build("dass+mamba2", "tiny")
    step = train_step_for(lalm, stage, activation_checkpointing=checkpointing)
    batch = random_batch(lalm, 1, 0.5, prompt_tokens=4, answer_tokens=4)
    with FlopCounter() as counter:
        step(batch)
    expected = train_step_flops(lalm.spec, STAGES[stage], 1, 0.5, 8, step.recipe.lora_rank, checkpointing)
    assert counter.result.total == pytest.approx(expected, rel=0.05)


def test_a_decode_step_moves_every_weight_and_the_fixed_state_once():
    """Tied embeddings: the table is the LM head too, so a step reads all of it; the state read
    and written is the cache's measured size at any context."""
    lalm = build("dass+mamba2", "tiny", dtype=torch.bfloat16)
    held = sum(p.numel() * p.element_size() for p in lalm.lm.parameters())
    short, long = (phase_bytes(lalm.spec, "decode", 1, 1.0, torch.bfloat16, context=c) for c in (10, 1000))
    assert short == long and short["weights"] == held
    embeds = torch.randn(1, 10, lalm.lm.width, dtype=torch.bfloat16)
    with torch.inference_mode():
        _, cache = lalm.lm.prefill(embeds)
    assert short["state_read"] == short["state_written"] == lalm.state_bytes(cache)
