"""mamba-ssm's CUDA kernels, when the package is installed (it is CUDA-only, so always optional)."""
from __future__ import annotations

import functools
from typing import Callable

import torch


@functools.cache
def mamba_ssm_scan() -> Callable | None:
    """mamba-ssm's `selective_scan_fn`, or None when mamba-ssm (or its CUDA build) is missing."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except ImportError:
        return None
    return selective_scan_fn


@functools.cache
def mamba_ssm_state_update() -> Callable | None:
    """mamba-ssm's Triton `selective_state_update`, or None when it is not installed."""
    try:
        from mamba_ssm.ops.triton.selective_state_update import selective_state_update
    except ImportError:
        return None
    return selective_state_update


def mamba_ssm_available() -> bool:
    return mamba_ssm_scan() is not None


def scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus: bool):
    """The scan through mamba-ssm: same contract as `scan_torch.reference_scan`.

    mamba-ssm wants A, D and delta_bias in float32 and the other tensors in u's dtype.
    """
    if u.dtype == torch.float64:
        raise TypeError("mamba-ssm's kernels have no float64 version; use scan backend 'reference'")
    as_u = [None if t is None else t.to(u.dtype) for t in (delta, B, C, z)]
    as_f32 = [None if t is None else t.float() for t in (A, D, delta_bias)]
    delta, B, C, z = as_u
    A, D, delta_bias = as_f32
    y, last_state = mamba_ssm_scan()(
        u, delta, A, B, C, D, z, delta_bias, delta_softplus=delta_softplus, return_last_state=True
    )
    return y, last_state
