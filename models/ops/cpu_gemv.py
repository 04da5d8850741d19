"""Single-row bfloat16 matrix products on a CPU: torch's own kernel instead of oneDNN's.

A decode step at batch 1 is a chain of matrix-vector products, each reading a whole weight
matrix once, so its speed is the rate at which weights stream from memory. For bfloat16 on a
CPU torch hands every matmul to oneDNN, whose one-row path streams weights at about half the
rate of torch's own kernel (one thread, 4096 x 4096: 11 vs 21 GB/s); from two rows on, and
for the matrix-matrix products of prefill and the encoders, oneDNN is the faster one (2 rows:
15 vs 8 GB/s; 48 rows: 7x). float16 and float32 run the same either way.
`benchmarks/cpu_decode.py` measures this on the paper's widths.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def prefers_native_gemv(rows: int, device: torch.device, dtype: torch.dtype) -> bool:
    """Whether a step of `rows` tokens on `device` in `dtype` runs faster with oneDNN off."""
    return rows == 1 and device.type == "cpu" and dtype == torch.bfloat16


def matmul_backend(rows: int, device: torch.device, dtype: torch.dtype) -> str:
    """The kernel a step of `rows` tokens runs its matmuls on, as results record it: "native"
    (torch's own, oneDNN switched off) where `prefers_native_gemv`, "onednn" (torch's CPU
    dispatch with oneDNN on) elsewhere on a CPU, "" on other devices, where the switch is moot."""
    if device.type != "cpu":
        return ""
    return "native" if prefers_native_gemv(rows, device, dtype) else "onednn"


@contextlib.contextmanager
def gemv_kernels(rows: int, device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """Inside: matmuls take torch's own CPU kernel when `prefers_native_gemv` says so, else
    nothing changes. oneDNN's switch is process-wide; it is restored on exit."""
    if not prefers_native_gemv(rows, device, dtype):
        yield
        return
    previous = torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = previous
