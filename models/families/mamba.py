"""Mamba (`transformers.MambaForCausalLM`): selective-scan LM whose state has a fixed size.

The LM's scans run on the project's selective-scan op (`models.ops.hf_mamba`), or on
transformers' own mixer with scan backend "hf". Per layer the cache holds a conv window and an
SSM state, whatever the context: a decode step costs the same at any context.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from transformers import MambaConfig, MambaForCausalLM, PreTrainedModel

from models.closed_form import Costs, Op, conv, linear, scan_state_dtype
from models.families.base import LMFamily
from models.ops.hf_mamba import use_scan_backend
from models.ops.scan_flops import scan_backward_flops, scan_flops
from models.presets import TINY_VOCAB


@dataclass(frozen=True)
class MambaShape:
    hidden: int
    layers: int
    vocab: int
    d_state: int = 16
    expand: int = 2
    d_conv: int = 4

    @property
    def d_inner(self) -> int:
        return self.expand * self.hidden

    @property
    def dt_rank(self) -> int:
        return math.ceil(self.hidden / 16)


MAMBA_2_8B = MambaShape(hidden=2560, layers=64, vocab=50280)


def mamba_config(shape: MambaShape) -> MambaConfig:
    return MambaConfig(
        hidden_size=shape.hidden,
        num_hidden_layers=shape.layers,
        vocab_size=shape.vocab,
        state_size=shape.d_state,
        expand=shape.expand,
        conv_kernel=shape.d_conv,
        tie_word_embeddings=True,
    )


class Mamba(LMFamily):
    attention = False
    shapes = {
        "tiny": MambaShape(hidden=64, layers=4, vocab=TINY_VOCAB),
        "small": MambaShape(hidden=512, layers=8, vocab=32000),
        "paper": MAMBA_2_8B,
        "matched": MAMBA_2_8B,
    }
    lora_targets = ("in_proj",)

    def build(self, shape: MambaShape) -> MambaForCausalLM:
        return MambaForCausalLM(mamba_config(shape))

    def width(self, shape: MambaShape) -> int:
        return shape.hidden

    def params(self, shape: MambaShape) -> int:
        """Embeddings (tied to the head), mixer layers with their norms, final norm."""
        d, n, d_inner, dt_rank = shape.hidden, shape.d_state, shape.d_inner, shape.dt_rank
        layer = (
            d  # RMSNorm
            + d * 2 * d_inner  # in_proj
            + d_inner * shape.d_conv + d_inner  # conv1d with bias
            + d_inner * (dt_rank + 2 * n)  # x_proj
            + dt_rank * d_inner + d_inner  # dt_proj
            + d_inner * n + d_inner  # A_log, D
            + d_inner * d  # out_proj
        )
        return shape.vocab * d + shape.layers * layer + d

    def flops(self, shape: MambaShape, batch: int, new_tokens: int, past: int = 0, logits: int = 1) -> Costs:
        """A scan over `new_tokens` positions, or one state update when 1. The cost per token does
        not depend on the context (`past`): that is the state-space model's point."""
        d, n, d_inner = shape.hidden, shape.d_state, shape.d_inner
        tokens, layers = batch * new_tokens, shape.layers
        scan = scan_flops(batch, d_inner, new_tokens, n, True, True, has_delta_bias=True, delta_softplus=True)
        return {
            "in_proj": layers * linear(tokens, d, 2 * d_inner),
            "conv1d": layers * conv(tokens, d_inner, 1, shape.d_conv),
            "x_proj": layers * linear(tokens, d_inner, shape.dt_rank + 2 * n),
            "dt_proj": layers * linear(tokens, shape.dt_rank, d_inner),
            "scan": layers * scan,
            "out_proj": layers * linear(tokens, d_inner, d),
            "lm_head": linear(batch * logits, d, shape.vocab),
        }

    def state_bytes(self, shape: MambaShape, batch: int, context: int, dtype: torch.dtype) -> int:
        """Per layer a conv window (batch, d_inner, d_conv) in `dtype` and an SSM state (batch,
        d_inner, d_state) in `scan_state_dtype(dtype)` — independent of the context. (That is the
        scan op's state; transformers' own mixer, scan backend "hf", keeps it in `dtype`.)"""
        per_layer = batch * shape.d_inner * (shape.d_conv * dtype.itemsize
                                             + shape.d_state * scan_state_dtype(dtype).itemsize)
        return shape.layers * per_layer

    def lora_linears(self, shape: MambaShape) -> list[tuple[int, int]]:
        return [(shape.hidden, 2 * shape.d_inner)] * shape.layers  # in_proj

    def train_ops(self, shape: MambaShape, batch: int, positions: int) -> list[Op]:
        costs = self.flops(shape, batch, positions, logits=positions)
        backward = shape.layers * scan_backward_flops(batch, shape.d_inner, positions, shape.d_state, True, True)
        return [*(Op("lm", name, costs[name]) for name in ("in_proj", "conv1d", "x_proj", "dt_proj")),
                Op("lm", "out_proj", costs["out_proj"], recomputed=0.0),  # the block's last product
                Op("lm", "scan", costs["scan"], kind="scan", backward=backward),
                Op("lm", "lm_head", costs["lm_head"], recomputed=0.0)]

    def use_scan_backend(self, model: PreTrainedModel, backend: str, device: torch.device) -> str:
        return use_scan_backend(model, backend)

    def bytes_moved(self, shape: MambaShape, batch: int, new_tokens: int, past: int, dtype: torch.dtype,
                    logits: int = 1) -> Costs:
        """Weights read whole (the embedding table is the LM head too), the conv window and SSM
        state written (and read first when `past` > 0), whatever the context, and activations. Per
        token and layer, elements: RMSNorm (2d), in_proj (d in, 2 d_inner out), conv and SiLU
        (4 d_inner), x_proj (d_inner in, dt_rank + 2n out), dt_proj (dt_rank in, d_inner out), the
        scan (x, dt, z, B, C in, y out), out_proj (d_inner + d), residual add (3d)."""
        per_token_layer = 7 * shape.hidden + 13 * shape.d_inner + 2 * shape.dt_rank + 4 * shape.d_state
        return self.fixed_state_bytes_moved(shape, batch, new_tokens, past, dtype, logits, per_token_layer)


FAMILY = Mamba()
