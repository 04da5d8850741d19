"""The project's causal depthwise conv1d against transformers' own torch path and a direct sum."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models.ops.causal_conv import causal_conv1d, causal_conv1d_step


def direct(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """out[b, d, t] = bias[d] + sum_k weight[d, k] * x[b, d, t - (K - 1) + k], zeros before t = 0."""
    width = weight.shape[1]
    padded = F.pad(x, (width - 1, 0))
    return bias[:, None] + sum(weight[:, k, None] * padded[..., k:k + x.shape[-1]] for k in range(width))


@pytest.mark.parametrize("activation", [None, "silu"])
def test_full_sequence_is_the_causal_window_sum(activation):
    gen = torch.Generator().manual_seed(0)
    x, weight, bias = torch.randn(2, 8, 11, generator=gen), torch.randn(8, 4, generator=gen), torch.randn(8, generator=gen)
    expected = direct(x, weight, bias)
    expected = F.silu(expected) if activation else expected
    torch.testing.assert_close(causal_conv1d(x, weight, bias, activation), expected)


def test_steps_with_a_rolling_state_continue_the_full_sequence():
    """Prefill 7 positions, keep the last K inputs as the state, then step one token at a time."""
    gen = torch.Generator().manual_seed(1)
    x, weight, bias = torch.randn(2, 8, 10, generator=gen), torch.randn(8, 4, generator=gen), torch.randn(8, generator=gen)
    full = causal_conv1d(x, weight, bias, "silu")
    state = F.pad(x[..., :7], (4, 0))[..., -4:].clone()
    for t in range(7, 10):
        out = causal_conv1d_step(x[..., t:t + 1], state, weight, bias, "silu")
        torch.testing.assert_close(out, full[..., t:t + 1])
        torch.testing.assert_close(state, x[..., t - 3:t + 1])


def test_matches_transformers_reference_conv_helpers():
    """The helpers transformers' Mamba used to call, on the same inputs (their torch path)."""
    modeling = pytest.importorskip("transformers.models.mamba.modeling_mamba")
    if not hasattr(modeling, "causal_conv1d_fn"):
        pytest.skip("this transformers has no causal_conv1d_fn helper to compare with")
    gen = torch.Generator().manual_seed(2)
    x, weight, bias = torch.randn(1, 6, 9, generator=gen), torch.randn(6, 4, generator=gen), torch.randn(6, generator=gen)
    reference = getattr(modeling.causal_conv1d_fn, "__wrapped__", modeling.causal_conv1d_fn)
    torch.testing.assert_close(causal_conv1d(x, weight, bias, "silu"), reference(x, weight, bias, activation="silu"))


def test_an_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="gelu"):
        causal_conv1d(torch.zeros(1, 2, 3), torch.zeros(2, 4), None, "gelu")
