"""mamba-ssm's CUDA kernels, when installed (they are CUDA-only, so always optional).

The scan calls the compiled extension `selective_scan_cuda` (`fwd` / `bwd`) directly rather
than mamba-ssm's `selective_scan_fn`, for two reasons:
- the forward's residuals (the per-chunk scan states and, with a gate, the output before the
  gate) become outputs of the registered op, so its backward runs `bwd` on them instead of
  running the forward kernel again, as `selective_scan_fn`'s autograd would when called from a
  recomputation;
- availability is the extension itself: mamba-ssm >= 2.3 installs without it unless built with
  MAMBA_KEEP_CUDA_BUILD=TRUE, and its Python package then imports fine and fails only when called.

Kernel layout rules the op's fake implementation mirrors (`chunk_states_shape`): the forward
works in chunks of CHUNK_LENGTH steps and keeps, per chunk, the scan state as interleaved
(decay product, state) float32 pairs: (b, d, ceil(l / CHUNK_LENGTH), 2n). The final state is
the odd entries of the last chunk, a strided view that `last_state` copies into a contiguous
(b, d, n) tensor. Inputs are made contiguous first, so y comes back contiguous.
"""
from __future__ import annotations

import functools
import math
from types import ModuleType
from typing import Callable

import torch
from torch import Tensor

CHUNK_LENGTH = 2048  # steps per chunk of the forward kernel (n_chunks = ceil(l / 2048) in selective_scan.cpp)


@functools.cache
def kernels() -> ModuleType | None:
    """The compiled `selective_scan_cuda` extension, or None when it is missing or broken.

    Any exception counts as missing: an extension built against another torch fails at import
    with an undefined symbol, and that must not break a CPU run.
    """
    try:
        import selective_scan_cuda
    except Exception:  # noqa: BLE001 - a broken build is as good as none
        return None
    return selective_scan_cuda


def mamba_ssm_available() -> bool:
    """Whether the CUDA scan kernel can be called (not merely whether mamba-ssm imports)."""
    return kernels() is not None


@functools.cache
def mamba_ssm_state_update() -> Callable | None:
    """mamba-ssm's Triton `selective_state_update`, or None when it cannot be imported.

    Importing it imports the whole `mamba_ssm` package, which can fail in ways other than
    ImportError (a Triton or TileLang build that does not match), so any exception means none.
    """
    try:
        from mamba_ssm.ops.triton.selective_state_update import selective_state_update
    except Exception:  # noqa: BLE001 - see the docstring
        return None
    return selective_state_update


def chunk_states_shape(b: int, d: int, l: int, n: int) -> tuple[int, int, int, int]:
    """Shape of the forward kernel's per-chunk states (float32): (b, d, n_chunks, 2n)."""
    return b, d, math.ceil(l / CHUNK_LENGTH), 2 * n


def last_state(chunk_states: Tensor) -> Tensor:
    """The state after the last step, (b, d, n) contiguous, from the kernel's (b, d, chunks, 2n)."""
    return chunk_states[:, :, -1, 1::2].contiguous()


def _kernel_inputs(u, delta, A, B, C, D, z, delta_bias) -> list[Tensor | None]:
    """The dtypes and layouts the kernels check: u, delta, B, C, z in u's dtype, A, D and
    delta_bias in float32, everything contiguous (so outputs are too)."""
    as_u = [None if t is None else t.to(u.dtype).contiguous() for t in (u, delta, B, C, z)]
    as_f32 = [None if t is None else t.float().contiguous() for t in (A, D, delta_bias)]
    u, delta, B, C, z = as_u
    A, D, delta_bias = as_f32
    return [u, delta, A, B, C, D, z, delta_bias]


def forward(u, delta, A, B, C, D, z, delta_bias, delta_softplus: bool) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The scan on the CUDA kernel, with B, C grouped (b, g, n, l).

    Returns (y (b, d, l) in u's dtype, last_state (b, d, n) float32, chunk_states
    (b, d, chunks, 2n) float32, pre_gate (b, d, l): the output before the z gate, empty without z).
    The last two are what `backward` needs.
    """
    if u.dtype == torch.float64:
        raise TypeError("mamba-ssm's kernels have no float64 version; use scan backend 'reference'")
    args = _kernel_inputs(u, delta, A, B, C, D, z, delta_bias)
    out, chunk_states, *gated = kernels().fwd(*args, delta_softplus)
    if z is None:
        return out, last_state(chunk_states), chunk_states, u.new_empty(0)
    return gated[0], last_state(chunk_states), chunk_states, out


def backward(dy, u, delta, A, B, C, D, z, delta_bias, chunk_states, pre_gate, delta_softplus: bool) -> list[Tensor]:
    """Gradients (du, ddelta, dA, dB, dC, dD, dz, ddelta_bias) from the forward's residuals.

    B, C grouped (b, g, n, l). du, ddelta, dB, dC, dz come in u's dtype, dA, dD, ddelta_bias in
    float32; a gradient of an absent input is empty. The kernel has no gradient for last_state.
    """
    u, delta, A, B, C, D, z, delta_bias = _kernel_inputs(u, delta, A, B, C, D, z, delta_bias)
    pre_gate = pre_gate.contiguous() if z is not None else None
    du, ddelta, dA, dB, dC, dD, ddelta_bias, *rest = kernels().bwd(
        u, delta, A, B, C, D, z, delta_bias, dy.to(u.dtype).contiguous(), chunk_states, pre_gate, None,
        delta_softplus, False,  # False: do not recompute the gated output
    )
    empty, empty_f32 = u.new_empty(0), u.new_empty(0, dtype=torch.float32)  # dtypes as the fake declares
    dz = rest[0] if z is not None else empty
    return [du, ddelta, dA, dB, dC, empty_f32 if dD is None else dD, dz,
            empty_f32 if ddelta_bias is None else ddelta_bias.float()]


def state_update(update: Callable, state, u, delta, A, B, C, D, z, delta_bias, delta_softplus: bool) -> Tensor:
    """One decode step on mamba-ssm's Triton kernel `update`; state (b, d, n) is updated in place.

    mamba-ssm's wrapper unpacks the strides of D and dt_bias without a None check (a TypeError
    when either is absent), so an absent one is passed as zeros: the same arithmetic.
    """
    zeros = None
    if D is None or delta_bias is None:
        zeros = torch.zeros(u.shape[1], dtype=torch.float32, device=u.device)
    return update(state, u, delta, A, B, C, D=zeros if D is None else D, z=z,
                  dt_bias=zeros if delta_bias is None else delta_bias, dt_softplus=delta_softplus)
