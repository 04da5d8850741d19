"""Mamba's causal depthwise conv1d: a full sequence, and one cached step.

The project's own, not transformers' helpers: those move between releases (5.25 wrapped them
for hub kernels, into modules that FLOP counters and profilers then trip over). On CUDA with the
`causal_conv1d` extension installed, its kernels run; everywhere else PyTorch's grouped conv1d,
so the choice follows what is installed, never which model calls.
"""
from __future__ import annotations

import functools
from collections.abc import Callable

import torch
import torch.nn.functional as F


@functools.cache
def causal_conv1d_kernels() -> tuple[Callable, Callable] | None:
    """The extension's (`causal_conv1d_fn`, `causal_conv1d_update`), or None when it is missing.

    Any exception counts as missing: an extension built against another torch fails at import
    with an undefined symbol (OSError/ImportError), and that must not break a CPU run.
    """
    try:
        from causal_conv1d import causal_conv1d_fn, causal_conv1d_update
    except Exception:  # noqa: BLE001 - a broken build is as good as none
        return None
    return causal_conv1d_fn, causal_conv1d_update


def _kernel_width(weight: torch.Tensor) -> bool:
    """Whether the extension has a kernel for this conv width (it is compiled for 2 to 4)."""
    return 2 <= weight.shape[-1] <= 4


def _activate(x: torch.Tensor, activation: str | None) -> torch.Tensor:
    if activation is None:
        return x
    if activation in ("silu", "swish"):
        return F.silu(x)
    raise ValueError(f"causal conv1d: unsupported activation {activation!r} (None, 'silu' or 'swish')")


def causal_conv1d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, activation: str | None = None
) -> torch.Tensor:
    """x (B, D, L), weight (D, K), bias (D,) -> (B, D, L); output t sees inputs t-K+1..t.

    Computed in the weight's dtype, returned in x's (as mamba-ssm and transformers do).
    """
    kernels = causal_conv1d_kernels()
    if kernels is not None and x.is_cuda and _kernel_width(weight):
        return kernels[0](x, weight, bias, activation=activation)
    channels, width = weight.shape
    length = x.shape[-1]
    # Pad K-1 on both sides and keep the first L outputs: exactly the causal window.
    out = F.conv1d(x.to(weight.dtype), weight.unsqueeze(1), bias, padding=width - 1, groups=channels)[..., :length]
    return _activate(out, activation).to(x.dtype)


def causal_conv1d_step(
    x: torch.Tensor,
    conv_state: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    activation: str | None = None,
) -> torch.Tensor:
    """One decode step. x (B, D, 1), conv_state (B, D, K) updated in place to end with x -> (B, D, 1).

    conv_state holds the last K inputs (oldest first), as transformers' Mamba cache keeps them.
    """
    kernels = causal_conv1d_kernels()
    if kernels is not None and x.is_cuda and _kernel_width(weight):
        return kernels[1](x, conv_state, weight, bias, activation=activation)
    conv_state.copy_(torch.cat([conv_state[..., 1:], x.to(conv_state.dtype)], dim=-1))
    out = torch.einsum("bdk,dk->bd", conv_state.to(weight.dtype), weight)
    if bias is not None:
        out = out + bias
    return _activate(out, activation).unsqueeze(-1).to(x.dtype)
