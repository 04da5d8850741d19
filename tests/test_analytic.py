"""Closed-form costs: parameters equal the built modules', state bytes equal the caches', formulas scale as claimed."""
from __future__ import annotations

import math

import pytest
import torch

from models import SIZES, VARIANTS, analytic, build, spec_for
from models.audio import num_frames
from models.lalm import padded_frames
from models.encoders import ASTEncoder, DASSEncoder
from models.lms import build_llama, build_mamba
from models.params import count
from models.projectors import ConvProjector, PoolProjector


@pytest.mark.parametrize("size", list(SIZES))
def test_parameter_formulas_equal_the_built_modules(size):
    preset = SIZES[size]
    d_ast, d_dass = preset.ast.hidden, preset.dass.widths[-1]
    with torch.device("meta"):
        built = {
            "ast": (count(ASTEncoder(preset.ast)), analytic.ast_params(preset.ast)),
            "dass": (count(DASSEncoder(preset.dass)), analytic.dass_params(preset.dass)),
            "llama": (count(build_llama(preset.llama)), analytic.llama_params(preset.llama)),
            "mamba": (count(build_mamba(preset.mamba)), analytic.mamba_params(preset.mamba)),
            "pool": (count(PoolProjector(d_ast, preset.llama.hidden)),
                     analytic.projector_params("ast", d_ast, preset.llama.hidden)),
            "conv": (count(ConvProjector(d_dass, preset.mamba.hidden)),
                     analytic.projector_params("dass", d_dass, preset.mamba.hidden)),
        }
    for name, (measured, formula) in built.items():
        assert measured == formula, name


def test_lalm_params_cover_every_component():
    model = build("ast+mamba", "tiny")
    parts = analytic.lalm_params(model.spec)
    assert parts == {name: count(getattr(model, name)) for name in ("frontend", "encoder", "projector", "lm")}


@pytest.fixture(scope="module")
def tiny_models():
    return {(v, dtype): build(v, "tiny", dtype=dtype)
            for v in ("dass+llama", "ast+mamba") for dtype in (torch.float32, torch.bfloat16)}


@pytest.mark.parametrize("variant", ["dass+llama", "ast+mamba"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("context", [3, 40])
def test_state_bytes_formula_equals_the_cache(tiny_models, variant, dtype, context):
    """After prefill and after each of two decode steps, bytes held == the closed form at that context."""
    model = tiny_models[variant, dtype]
    shape = getattr(SIZES["tiny"], model.spec.lm)
    embeds = torch.randn(2, context, model.lm.width, dtype=dtype)
    with torch.inference_mode():
        logits, cache = model.lm.prefill(embeds)
        for step in range(3):
            assert model.state_bytes(cache) == analytic.state_bytes(shape, 2, context + step, dtype)
            logits, cache = model.decode_step(cache, logits.argmax(-1))


def test_kv_cache_grows_linearly_and_mamba_state_is_constant():
    tiny = SIZES["tiny"]
    kv = [analytic.state_bytes(tiny.llama, 2, c, torch.bfloat16) for c in (10, 20, 40)]
    ssm = [analytic.state_bytes(tiny.mamba, 2, c, torch.bfloat16) for c in (10, 20, 40)]
    assert kv[1] == 2 * kv[0] and kv[2] == 4 * kv[0]
    assert ssm[0] == ssm[1] == ssm[2] > 0
    assert analytic.state_bytes(tiny.llama, 2, 10, torch.float32) == 2 * kv[0]


def test_attention_is_quadratic_and_projections_linear_in_tokens():
    preset = SIZES["small"]
    short, long = (analytic.ast_flops(preset.ast, 1, frames) for frames in (1024, 4096))
    n_short, n_long = (2 + math.prod(analytic.ast_grid(preset.ast, f)) for f in (1024, 4096))
    assert long["attn_scores"] / short["attn_scores"] == pytest.approx((n_long / n_short) ** 2)
    assert long["mlp"] / short["mlp"] == pytest.approx(n_long / n_short)


def test_decode_step_cost_grows_with_context_for_llama_only():
    spec_t, spec_s = spec_for("transformer", "small"), spec_for("ssm", "small")
    llama = [analytic.lalm_flops(spec_t, "decode", 1, 10.0, 8, context=c) for c in (100, 1100)]
    mamba = [analytic.lalm_flops(spec_s, "decode", 1, 10.0, 8, context=c) for c in (100, 1100)]
    shape = SIZES["small"].llama
    per_position = analytic.attention(1, shape.heads, 1, 1, shape.hidden // shape.heads)
    assert llama[1] - llama[0] == 1000 * shape.layers * per_position
    assert mamba[0] == mamba[1]


def test_lm_head_only_at_the_last_prefill_position():
    spec = spec_for("ast+llama", "small")
    short, long = (analytic.phase_flops(spec, "prefill", 2, s, 8) for s in (10.0, 30.0))
    assert short["lm.lm_head"] == long["lm.lm_head"] == analytic.linear(2, 512, 32000)


def test_e2e_is_fbank_encoder_prefill_and_the_decode_steps():
    spec = spec_for("dass+llama", "tiny")
    args = (3, 2.0, 5)
    phases = {p: analytic.lalm_flops(spec, p, *args) for p in ("fbank", "encoder", "prefill")}
    context = padded_frames(32000) // 32 + 5
    steps = sum(analytic.lalm_flops(spec, "decode", *args, context=context + i) for i in range(3))
    assert analytic.lalm_flops(spec, "e2e", *args, new_tokens=4) == sum(phases.values()) + steps


def test_fft_convention():
    assert analytic.rfft(512) == 2.5 * 512 * 9
    frames = 2 * num_frames(16000)
    assert analytic.fbank_flops(2, 16000)["rfft"] == frames * analytic.rfft(512)


def test_unknown_phase_is_rejected():
    with pytest.raises(ValueError, match="unknown phase"):
        analytic.phase_flops(spec_for("ssm", "tiny"), "warmup", 1, 1.0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_phase_has_positive_components(variant):
    spec = spec_for(variant, "tiny")
    for phase in analytic.PHASES:
        costs = analytic.phase_flops(spec, phase, 1, 1.0, 4)
        assert costs and all(v > 0 for v in costs.values()), (phase, costs)
