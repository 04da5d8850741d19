"""The gate's kernel registry: availability, building, and the injected-slowdown switch."""
from __future__ import annotations

import pytest
import torch

from harness.errors import UserError
from harness.gate import kernels
from harness.gate.kernels import INJECT_ENV, KERNELS, build, injected_slowdowns

CPU = torch.device("cpu")


def test_cuda_only_kernels_say_why_they_cannot_run_on_cpu():
    for name in ("conv1d[causal_conv1d]", "selective_scan[cuda]"):
        assert "cuda" in KERNELS[name].check(CPU)


def test_the_dense_kernels_always_run_on_cpu():
    available = [k.name for k in kernels.available(CPU)]
    assert {"matmul", "conv1d", "sdpa"} <= set(available)
    assert "selective_scan[cuda]" not in available


def test_conv1d_is_causal():
    """Output t depends on inputs t-3..t only: changing input 5 changes outputs 5..8 alone."""
    gen = torch.Generator().manual_seed(0)
    x, weight, bias = torch.randn(1, 3, 12, generator=gen), torch.randn(3, 4, generator=gen), torch.zeros(3)
    before = kernels.causal_depthwise_conv1d(x, weight, bias)
    x[..., 5] += 1.0
    changed = (kernels.causal_depthwise_conv1d(x, weight, bias) != before).any(dim=1).squeeze(0)
    assert before.shape == x.shape
    assert changed.nonzero().flatten().tolist() == [5, 6, 7, 8]


def test_build_rejects_unknown_and_unavailable_kernels():
    with pytest.raises(UserError, match="unknown kernel 'nope'"):
        build("nope")
    with pytest.raises(UserError, match="unavailable on cpu"):
        build("selective_scan[cuda]", "cpu")


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("", {}),
        ("conv1d:1.3", {"conv1d": 1.3}),
        ("conv1d:1.3, selective_scan[cpu]:2", {"conv1d": 1.3, "selective_scan[cpu]": 2.0}),
    ],
)
def test_slowdown_switch_parses(spec, expected):
    assert injected_slowdowns({INJECT_ENV: spec}) == expected


@pytest.mark.parametrize("spec", ["conv1d", "conv1d:fast", "conv1d:0.5", "nope:1.3", "conv1d:nan"])
def test_slowdown_switch_rejects_bad_values(spec):
    with pytest.raises(UserError, match=INJECT_ENV):
        injected_slowdowns({INJECT_ENV: spec})


class FakeClock:
    """A CPU-time clock that a fake kernel advances by its cost; each read costs a little."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1e-6
        return self.now


def test_injected_slowdown_makes_each_call_cost_factor_times_as_much(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(kernels.time, "process_time", clock)
    monkeypatch.setenv(INJECT_ENV, "matmul:1.3")
    monkeypatch.setitem(kernels.KERNELS, "matmul", kernels.Kernel("matmul", "fake", lambda device: fake_kernel))

    def fake_kernel() -> str:
        clock.now += 1e-3  # the kernel's own cost
        return "result"

    slowed = build("matmul")
    start = clock.now
    assert slowed() == "result"
    assert clock.now - start == pytest.approx(1.3e-3, rel=0.01)


def test_no_switch_returns_the_kernel_itself(monkeypatch):
    monkeypatch.delenv(INJECT_ENV, raising=False)
    sentinel = object()
    monkeypatch.setitem(kernels.KERNELS, "matmul", kernels.Kernel("matmul", "fake", lambda device: sentinel))
    assert build("matmul") is sentinel
