"""The gate's kernel registry: availability, building, and the injected-work switch."""
from __future__ import annotations

import pytest
import torch

from harness.errors import UserError
from fractions import Fraction

from harness.gate import kernels
from harness.gate.injection import INJECT_ENV, period, with_extra_work
from harness.gate.kernels import KERNELS, build, injected

CPU = torch.device("cpu")


def test_cuda_only_kernels_say_why_they_cannot_run_on_cpu():
    for name in ("conv1d[causal_conv1d]", "selective_scan[cuda]"):
        assert "cuda" in KERNELS[name].check(CPU)


def test_the_dense_kernels_always_run_on_cpu():
    available = [k.name for k in kernels.available(CPU)]
    assert {"matmul", "conv1d", "sdpa"} <= set(available)
    assert "selective_scan[cuda]" not in available


def test_build_rejects_unknown_and_unavailable_kernels():
    with pytest.raises(UserError, match="unknown kernel 'nope'"):
        build("nope")
    with pytest.raises(UserError, match="unavailable on cpu"):
        build("selective_scan[cuda]", "cpu")


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("", {}),
        ("conv1d:1.25", {"conv1d": Fraction(5, 4)}),
        ("conv1d:1.05, selective_scan[cpu]:2", {"conv1d": Fraction(21, 20), "selective_scan[cpu]": Fraction(2)}),
    ],
)
def test_injection_switch_parses(spec, expected):
    assert injected({INJECT_ENV: spec}) == expected


@pytest.mark.parametrize("spec", ["conv1d", "conv1d:fast", "conv1d:0.5", "conv1d:1", "conv1d:3", "nope:1.3", "conv1d:nan"])
def test_injection_switch_rejects_bad_values(spec):
    with pytest.raises(UserError, match=INJECT_ENV):
        injected({INJECT_ENV: spec})


class CountingKernel:
    """A fake kernel that counts how often it computed."""

    def __init__(self) -> None:
        self.computed = 0

    def __call__(self) -> str:
        self.computed += 1
        return "result"


@pytest.mark.parametrize("factor, expected_period", [(Fraction(21, 20), 20), (Fraction(5, 4), 4), (Fraction(2), 1)])
def test_injected_work_is_exact_over_any_whole_period(factor, expected_period):
    """Any run of calls a whole number of periods long computes exactly factor x as often,
    whatever calls came before it (the gate's warm-up calls shift where a run starts)."""
    assert period(factor) == expected_period
    kernel = CountingKernel()
    fn = with_extra_work(kernel, factor)
    for _ in range(3 * expected_period):
        before = kernel.computed
        for _ in range(2 * expected_period):
            assert fn() == "result"
        assert kernel.computed - before == 2 * expected_period * factor
        fn()  # shift the start of the next run by one call


def test_build_applies_the_switch_to_the_named_kernel_only(monkeypatch):
    kernel = CountingKernel()
    monkeypatch.setenv(INJECT_ENV, "matmul:1.25")
    monkeypatch.setitem(kernels.KERNELS, "matmul", kernels.Kernel("matmul", "fake", lambda device: kernel))
    fn = build("matmul")
    for _ in range(8):
        fn()
    assert kernel.computed == 10


def test_no_switch_returns_the_kernel_itself(monkeypatch):
    monkeypatch.delenv(INJECT_ENV, raising=False)
    sentinel = object()
    monkeypatch.setitem(kernels.KERNELS, "matmul", kernels.Kernel("matmul", "fake", lambda device: sentinel))
    assert build("matmul") is sentinel
