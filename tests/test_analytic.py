"""Closed-form costs: parameters equal the built modules', state bytes equal the caches', formulas scale as claimed."""
from __future__ import annotations

import math

import pytest
import torch

from models import SIZES, VARIANTS, analytic, build, spec_for
from models.audio import num_frames
from models.closed_form import attention, linear
from models.families import ENCODERS, LMS, EncoderFamily
from models.families.ast import ast_grid
from models.lalm import padded_frames
from models.params import count
from models.phases import PHASES


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("family", [*ENCODERS.values(), *LMS.values()], ids=[*ENCODERS, *LMS])
def test_every_family_has_a_shape_for_every_size_and_counts_its_parameters(family, size):
    shape = family.shapes[size]
    with torch.device("meta"):
        module = family.build(shape, "auto") if isinstance(family, EncoderFamily) else family.build(shape)
    assert count(module) == family.params(shape)


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("encoder", list(ENCODERS.values()), ids=list(ENCODERS))
@pytest.mark.parametrize("d_lm", [64, 2560])
def test_projector_parameter_formulas_equal_the_built_modules(encoder, size, d_lm):
    d_enc = encoder.width(encoder.shapes[size])
    with torch.device("meta"):
        assert count(encoder.build_projector(d_enc, d_lm)) == encoder.projector_params(d_enc, d_lm)


def test_lalm_params_cover_every_component():
    model = build("ast+mamba", "tiny")
    parts = analytic.lalm_params(model.spec)
    assert parts == {name: count(getattr(model, name)) for name in ("frontend", "encoder", "projector", "lm")}


STATE_VARIANTS = tuple(f"ast+{name}" for name in LMS)  # every LM family
STATE_DTYPES = (torch.float32, torch.bfloat16, torch.float64)  # SSM states: float32, float64 for Mamba's


@pytest.fixture(scope="module")
def tiny_models():
    return {(v, dtype): build(v, "tiny", dtype=dtype) for v in STATE_VARIANTS for dtype in STATE_DTYPES}


@pytest.mark.parametrize("variant", STATE_VARIANTS)
@pytest.mark.parametrize("dtype", STATE_DTYPES)
@pytest.mark.parametrize("context", [3, 40])
def test_state_bytes_formula_equals_the_cache(tiny_models, variant, dtype, context):
    """After prefill and after each of two decode steps, bytes held == the closed form at that context."""
    model = tiny_models[variant, dtype]
    embeds = torch.randn(2, context, model.lm.width, dtype=dtype)
    with torch.inference_mode():
        logits, cache = model.lm.prefill(embeds)
        for step in range(3):
            assert model.state_bytes(cache) == analytic.state_bytes(model.spec, 2, context + step, dtype)
            logits, cache = model.decode_step(cache, logits.argmax(-1))


@pytest.mark.parametrize("lm", list(LMS.values()), ids=list(LMS))
def test_kv_cache_grows_linearly_and_ssm_state_is_constant(lm):
    shape = lm.shapes["tiny"]
    held = [lm.state_bytes(shape, 2, c, torch.bfloat16) for c in (10, 20, 40)]
    if lm.attention:
        assert held[1] == 2 * held[0] and held[2] == 4 * held[0]
        assert lm.state_bytes(shape, 2, 10, torch.float32) == 2 * held[0]
    else:
        assert held[0] == held[1] == held[2] > 0


def test_attention_is_quadratic_and_projections_linear_in_tokens():
    ast = ENCODERS["ast"]
    shape = ast.shapes["small"]
    short, long = (ast.flops(shape, 1, frames) for frames in (1024, 4096))
    n_short, n_long = (2 + math.prod(ast_grid(shape, f)) for f in (1024, 4096))
    assert long["attn_scores"] / short["attn_scores"] == pytest.approx((n_long / n_short) ** 2)
    assert long["mlp"] / short["mlp"] == pytest.approx(n_long / n_short)


def test_decode_step_cost_grows_with_context_for_llama_only():
    spec_t, spec_s = spec_for("transformer", "small"), spec_for("ssm", "small")
    llama = [analytic.lalm_flops(spec_t, "decode", 1, 10.0, 8, context=c) for c in (100, 1100)]
    mamba = [analytic.lalm_flops(spec_s, "decode", 1, 10.0, 8, context=c) for c in (100, 1100)]
    shape = LMS["llama"].shapes["small"]
    per_position = attention(1, shape.heads, 1, 1, shape.hidden // shape.heads)
    assert llama[1] - llama[0] == 1000 * shape.layers * per_position
    assert mamba[0] == mamba[1]


def test_lm_head_only_at_the_last_prefill_position():
    spec = spec_for("ast+llama", "small")
    short, long = (analytic.phase_flops(spec, "prefill", 2, s, 8) for s in (10.0, 30.0))
    assert short["lm.lm_head"] == long["lm.lm_head"] == linear(2, 512, 32000)


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
    for phase in PHASES:
        costs = analytic.phase_flops(spec, phase, 1, 1.0, 4)
        assert costs and all(v > 0 for v in costs.values()), (phase, costs)
