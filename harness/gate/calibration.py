"""Calibration workloads: a fixed matmul and a fixed memory copy, timed beside every kernel.

A kernel's time divided by the calibration time measured next to it is (to first order)
independent of how fast the machine is at that moment: a slower CPU, a lower clock or a
neighbour contending for the core slows both. The matmul tracks compute speed and the copy
(48 MiB of traffic, more than a 32 MiB L3 cache holds) tracks memory bandwidth; each kernel
weights them by how memory-bound it is (`Kernel.copy_weight` says how the weights were found).
"""
from __future__ import annotations

import torch

from harness.gate.kernels import KernelFn

MATMUL_SIZE = 384  # (384, 384) @ (384, 384) float32: ~1 ms on one 2020s x86 core
COPY_ELEMENTS = 6 * 1024 * 1024  # 24 MiB float32 into another 24 MiB: 48 MiB of traffic, beyond L3


def matmul(device: torch.device) -> KernelFn:
    """Compute calibration: a square float32 matmul into a preallocated output."""
    gen = torch.Generator(device=device).manual_seed(1)
    a = torch.randn(MATMUL_SIZE, MATMUL_SIZE, generator=gen, device=device)
    b = torch.randn(MATMUL_SIZE, MATMUL_SIZE, generator=gen, device=device)
    out = torch.empty_like(a)
    return lambda: torch.mm(a, b, out=out)


def copy(device: torch.device) -> KernelFn:
    """Memory calibration: a 24 MiB tensor copied into another."""
    src = torch.randn(COPY_ELEMENTS, generator=torch.Generator(device=device).manual_seed(2), device=device)
    dst = torch.empty_like(src)
    return lambda: dst.copy_(src)


CALIBRATIONS = {"matmul": matmul, "copy": copy}
