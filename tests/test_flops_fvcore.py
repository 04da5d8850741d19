"""fvcore's per-module breakdown: it totals what the counter and the formulas do, and says when it cannot trace."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from harness.measure.flops import lm_breakdown, module_breakdown, phase_breakdown
from models import analytic, build
from tests.conftest import make_wave


@pytest.fixture(scope="module")
def tiny_cpu_models():
    return {v: build(v, "tiny") for v in ("ast+llama", "dass+llama", "ast+mamba")}


@pytest.mark.parametrize("variant,phase", [("ast+llama", "fbank"), ("ast+llama", "encoder"), ("dass+llama", "encoder"),
                                           ("dass+llama", "prefill"), ("ast+mamba", "prefill")])
def test_fvcore_breakdown_agrees_with_the_closed_form(tiny_cpu_models, variant, phase):
    """fvcore, with handles for attention, FFT and scan, totals what FlopCounterMode and the formulas do."""
    model = tiny_cpu_models[variant]
    wave, prompt = make_wave(1.0), torch.zeros(1, 5, dtype=torch.long)
    breakdown = phase_breakdown(model, phase, wave, prompt)
    assert breakdown.note == "" and breakdown.unsupported_ops == {}
    assert breakdown.total == pytest.approx(analytic.lalm_flops(model.spec, phase, 1, 1.0, 5), rel=0.02)
    assert breakdown.by_module[""] == breakdown.total
    # Every FLOP of the encoder and prefill happens inside a named child module (the fbank has none).
    children = [v for k, v in breakdown.by_module.items() if k and "." not in k]
    assert sum(children) == pytest.approx(breakdown.total if phase != "fbank" else 0)


def test_fvcore_breakdown_of_the_mamba_lm_at_4096_tokens(tiny_cpu_models):
    model = tiny_cpu_models["ast+mamba"]
    embeds = torch.randn(1, 4096, model.lm.width)
    breakdown = lm_breakdown(model.lm, embeds)
    assert breakdown.note == ""
    layers = [v for k, v in breakdown.by_module.items() if k.count(".") == 4 and k.startswith("lm.model.backbone.layers.")]
    assert len(layers) == 4 and breakdown.total > sum(layers) > 0


def test_decode_and_untraceable_modules_give_nan_with_a_reason(tiny_cpu_models):
    model = tiny_cpu_models["ast+llama"]
    decode = phase_breakdown(model, "decode", make_wave(1.0), torch.zeros(1, 2, dtype=torch.long))
    assert math.isnan(decode.total) and "cache" in decode.note

    class Untraceable(nn.Module):
        def forward(self, x):
            return object()  # jit tracing takes tensors (and containers of them) only

    failed = module_breakdown(Untraceable(), (torch.ones(2),))
    assert math.isnan(failed.total) and failed.note.startswith("fvcore could not trace Untraceable")
