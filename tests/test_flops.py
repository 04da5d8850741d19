"""Counted FLOPs: agree with the closed forms, count attention on CPU, and name every operator they could not count."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from harness.measure.flops import (
    ELEMENTWISE_OPS,
    MEMORY_OPS,
    FlopCounter,
    count_flops,
    flop_measurements,
    measure_flops,
)
from harness.schema import METRIC_UNITS
from models import VARIANTS, analytic, build
from models.closed_form import attention

PHASES = ("fbank", "encoder", "prefill", "decode")
PROMPT_TOKENS = 6


@pytest.fixture(scope="module")
def meta_models():
    return {(v, size): build(v, size, device="meta") for v in VARIANTS for size in ("tiny", "small")}


@pytest.mark.parametrize("size", ["tiny", "small"])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("seconds", [1.0, 10.0, 60.0])
@pytest.mark.parametrize("batch", [1, 4])
def test_counted_agrees_with_analytic(meta_models, variant, size, seconds, batch):
    """Every phase within 2% of the closed form, and no operator left without a formula (meta device: shapes only)."""
    model = meta_models[variant, size]
    wave = torch.zeros(batch, int(seconds * 16000), device="meta")
    prompt = torch.zeros(batch, PROMPT_TOKENS, dtype=torch.long, device="meta")
    results = measure_flops(model, wave, prompt, PHASES)
    for phase, (flops, expected, coverage) in results.items():
        assert flops.value > 0 and expected.value > 0
        assert coverage.value == pytest.approx(1.0, abs=0.02), (phase, flops.value, expected.value)
        assert coverage.note == "no uncounted operators", phase


def test_measurements_follow_the_schema():
    model = build("dass+llama", "tiny", device="meta")
    wave, prompt = torch.zeros(2, 16000, device="meta"), torch.zeros(2, 3, dtype=torch.long, device="meta")
    rows = measure_flops(model, wave, prompt, ("encoder",))["encoder"]
    assert [m.metric for m in rows] == ["flops", "flops_analytic", "flop_coverage"]
    assert all(m.unit == METRIC_UNITS[m.metric] for m in rows)
    assert rows[2].value == rows[0].value / rows[1].value
    assert "elementwise ops not counted" in rows[0].note and "largest: encoder." in rows[1].note


def test_a_phase_that_cannot_run_gives_nan_with_the_reason(monkeypatch):
    model = build("ast+llama", "tiny", device="meta")

    def broken_prefill(enc, prompt_ids):
        raise RuntimeError("projector exploded")

    monkeypatch.setattr(model, "prefill", broken_prefill)
    wave, prompt = torch.zeros(1, 16000, device="meta"), torch.zeros(1, 2, dtype=torch.long, device="meta")
    results = measure_flops(model, wave, prompt)
    assert results["encoder"][2].value == pytest.approx(1.0, abs=0.02)
    for phase in ("prefill", "decode"):
        flops, expected, coverage = results[phase]
        assert math.isnan(flops.value) and math.isnan(coverage.value) and expected.value > 0
        assert "projector exploded" in flops.note and flops.n == 0


def test_e2e_counts_generate_whole():
    model = build("ast+llama", "tiny", device="meta")
    wave, prompt = torch.zeros(1, 32000, device="meta"), torch.zeros(1, 4, dtype=torch.long, device="meta")
    flops, expected, _ = measure_flops(model, wave, prompt, ("e2e",), new_tokens=5)["e2e"]
    assert flops.value == pytest.approx(expected.value, rel=0.02)
    one_step = measure_flops(model, wave, prompt, ("e2e",), new_tokens=1)["e2e"][0]
    assert flops.value > one_step.value


# --- attention and FFT on CPU: the formulas registered for what torch leaves out ------------------------------


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("kv_heads", [4, 2])
def test_cpu_attention_is_counted_like_the_math_path(causal, kv_heads):
    """On CPU sdpa runs as one fused op with no torch formula; on meta it decomposes into counted bmm's."""
    shapes = ((2, 4, 33, 16), (2, kv_heads, 33, 16))

    def attend(device):
        q, k = torch.randn(*shapes[0], device=device), torch.randn(*shapes[1], device=device)
        return lambda: F.scaled_dot_product_attention(q, k, k, is_causal=causal, enable_gqa=kv_heads != 4)

    cpu, meta = count_flops(attend("cpu")), count_flops(attend("meta"))
    assert "aten._scaled_dot_product_flash_attention_for_cpu" in cpu.by_op
    assert cpu.total == meta.total == attention(2, 4, 33, 33, 16)
    assert cpu.uncounted_ops == {}


def test_a_cpu_run_counts_what_the_meta_run_counts():
    """The transformer LALM on CPU (fused sdpa) and on meta (math-path sdpa): the same FLOPs, phase by phase."""
    counted = {}
    for device in ("cpu", "meta"):
        model = build("ast+llama", "tiny", device=device)
        wave, prompt = torch.zeros(2, 16000, device=device), torch.zeros(2, 4, dtype=torch.long, device=device)
        counted[device] = {phase: rows[0].value for phase, rows in measure_flops(model, wave, prompt, PHASES).items()}
    assert counted["cpu"] == counted["meta"]


def test_cpu_attention_backward_is_counted():
    q = torch.randn(1, 2, 17, 8, requires_grad=True)
    with FlopCounter() as counter:
        F.scaled_dot_product_attention(q, q, q).sum().backward()
    forward = attention(1, 2, 17, 17, 8)
    # torch's attention backward formula: the scores recomputed plus four products = 2.5 forwards.
    assert counter.result.total == forward + 5 * forward // 2
    assert counter.result.uncounted_ops == {}


def test_rfft_is_counted():
    frames = torch.randn(3, 7, 400)
    count = count_flops(lambda: torch.fft.rfft(frames, n=512))
    assert count.total == 3 * 7 * analytic.rfft(512)
    assert count.uncounted_ops == {}


# --- nothing is dropped silently ---------------------------------------------------------------------------------


@torch.library.custom_op("flopstest::opaque_matmul", mutates_args=())
def _opaque_matmul(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return x @ w


@_opaque_matmul.register_fake
def _opaque_matmul_fake(x, w):
    return x.new_empty(x.shape[0], w.shape[1])


class HalfOpaque(nn.Module):
    """Two equal matmuls, one through an operator that has no FLOP formula."""

    def __init__(self, d: int):
        super().__init__()
        self.a = nn.Parameter(torch.randn(d, d))
        self.b = nn.Parameter(torch.randn(d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _opaque_matmul(x @ self.a, self.b)


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_an_operator_without_formula_is_named_and_lowers_coverage(device):
    model, x = HalfOpaque(16).to(device), torch.randn(8, 16, device=device)
    count = count_flops(lambda: model(x))
    assert count.uncounted_ops == {"flopstest.opaque_matmul": 1}
    expected = {"a": analytic.linear(8, 16, 16), "b": analytic.linear(8, 16, 16)}
    flops, _, coverage = flop_measurements(count, expected)
    assert coverage.value == pytest.approx(0.5)
    assert "flopstest.opaque_matmul x1" in coverage.note and "flopstest.opaque_matmul" in flops.note


def test_an_aten_operator_off_the_lists_is_reported():
    """A complex FFT has no formula here and is on neither list: it must show up, not vanish."""
    x = torch.randn(4, 64, dtype=torch.complex64)
    assert count_flops(lambda: torch.fft.fft(x)).uncounted_ops == {"aten._fft_c2c": 1}


def test_elementwise_work_is_sized_not_hidden():
    x = torch.randn(10, 20)
    count = count_flops(lambda: torch.nn.functional.gelu(x) + 1)
    assert count.total == 0 and count.uncounted_ops == {}
    assert count.ignored_elements == 2 * x.numel()


def test_the_free_lists_hold_no_counted_operator():
    import torch.utils.flop_counter as fc

    assert not MEMORY_OPS & ELEMENTWISE_OPS
    assert not (MEMORY_OPS | ELEMENTWISE_OPS) & set(fc.flop_registry)


def test_by_module_attributes_flops_to_submodules():
    model = build("dass+llama", "tiny", device="meta")
    feats = torch.zeros(1, 128, 128, device="meta")
    count = count_flops(lambda: model.encode(feats))
    stages = [v for k, v in count.by_module.items() if k.count(".") == 2 and ".stages." in k]
    assert count.by_module["DASSEncoder"] == count.total
    assert 0 < sum(stages) < count.total
