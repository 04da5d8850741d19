"""pytest-benchmark suite of the kernels that matter, built from the gate's registry.

Shapes live in `harness.gate.kernels` (one place for this suite and `lalm-bench gate`).
With benchmarking disabled (the default test run) each kernel runs once: a smoke test that
it builds and returns finite values. To time them:
    pytest tests/benchmarks/test_kernels.py --benchmark-enable              # CPU
    pytest tests/benchmarks/test_kernels.py --benchmark-enable -m gpu       # CUDA
Kernels that cannot run on a device (CUDA-only extensions, mamba-ssm) are skipped with the
registry's reason. Each CUDA call is synchronised, so a round times the kernel, not its launch.
"""
from __future__ import annotations

import pytest
import torch

from harness.gate.kernels import KERNELS, KernelFn, build, synchronize


def _synchronised(fn: KernelFn, device: torch.device) -> KernelFn:
    def run() -> object:
        out = fn()
        synchronize(device)
        return out

    return run


def _finite(out: object) -> bool:
    """Every tensor in a kernel's output (a tensor or a tuple of them) is finite."""
    tensors = out if isinstance(out, (tuple, list)) else (out,)
    return all(torch.isfinite(t).all() for t in tensors if isinstance(t, torch.Tensor))


def _bench(benchmark, name: str, device: torch.device) -> None:
    reason = KERNELS[name].check(device)
    if reason is not None:
        pytest.skip(f"{name} on {device}: {reason}")
    fn = _synchronised(build(name, device), device)
    benchmark.group = f"{name} {KERNELS[name].shape}"
    benchmark.extra_info["shape"] = KERNELS[name].shape
    benchmark.extra_info["device"] = str(device)
    fn()  # first call: lazy initialisation, numba loading, oneDNN primitive creation
    assert _finite(benchmark(fn))


@pytest.mark.parametrize("name", list(KERNELS))
def test_kernel_cpu(benchmark, name):
    _bench(benchmark, name, torch.device("cpu"))


@pytest.mark.gpu
@pytest.mark.parametrize("name", list(KERNELS))
def test_kernel_cuda(benchmark, name):
    _bench(benchmark, name, torch.device("cuda"))
