"""The building blocks of every closed form: FLOPs of products, and one training product.

The convention (stated in full in `models.analytic`): one multiply-add is 2 FLOPs, bias
additions and elementwise work are not counted, attention is counted in full whatever the mask.
Families (`models.families`) compose their costs from these; nothing here knows a family.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

Costs = dict[str, int]  # component name -> FLOPs (or parameters); the total is the sum


def linear(tokens: int, d_in: int, d_out: int) -> int:
    """A Linear over `tokens` rows (bias not counted)."""
    return 2 * tokens * d_in * d_out


def conv(out_positions: int, c_out: int, c_in_per_group: int, kernel_elements: int) -> int:
    """A convolution producing `out_positions` output positions per channel, summed over the batch."""
    return 2 * out_positions * c_out * c_in_per_group * kernel_elements


def attention(batch: int, heads: int, q_len: int, kv_len: int, head_dim: int) -> int:
    """Scores (Q K^T) plus weighted sum (A V), full square whatever the mask."""
    return 2 * 2 * batch * heads * q_len * kv_len * head_dim


def conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution along one axis."""
    return (size + 2 * padding - kernel) // stride + 1


def linear_params(d_in: int, d_out: int, bias: bool = True) -> int:
    return d_in * d_out + (d_out if bias else 0)


def norm_params(dim: int) -> int:
    return 2 * dim  # LayerNorm weight and bias


def prefixed(prefix: str, costs: Costs) -> Costs:
    return {f"{prefix}.{name}": value for name, value in costs.items()}


def add(*parts: Costs) -> Costs:
    total: Costs = {}
    for part in parts:
        for name, value in part.items():
            total[name] = total.get(name, 0) + value
    return total


def scan_state_dtype(dtype: torch.dtype) -> torch.dtype:
    """An SSM state's dtype: scans accumulate in float32 (float64 for float64 models)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


@dataclass(frozen=True)
class Op:
    """One forward product of a training step, for `harness.train_cost`'s backward rules.

    kind: "weights" (Linear/conv), "attention", or "scan" (no weights; its backward's FLOPs are
    given in `backward`). first: the component's input feeds it with no parameter before it.
    recomputed: the share of its forward that activation checkpointing runs again (0 outside
    checkpointed blocks, and for a block's last product, whose output the backward never needs).
    """

    component: str
    name: str
    forward: int
    kind: str = "weights"
    first: bool = False
    recomputed: float = 1.0
    backward: int = 0  # "scan": its backward's FLOPs
    lora: bool = False  # a LoRA adapter: trains even when its component's weights do not
