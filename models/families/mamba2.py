"""Mamba-2 (`transformers.Mamba2ForCausalLM`): the state-space duality (SSD) LM of SAM.

Each layer projects once (`in_proj` to the gate, x, B, C and one time step per head), convolves
x, B and C causally, and runs SSD: a scalar decay per head, so a sequence is cut into chunks of
`chunk` positions; within a chunk the output is an attention-like product (C B^T, masked by the
decays, times x), between chunks a state (heads, head_dim, d_state) is carried. A decode step is
the recurrence itself. The cache holds, per layer, the conv window of x, B and C and that state:
a fixed size, whatever the context.

Where it runs: transformers routes SSD to mamba-ssm's Triton kernels (`mamba_chunk_scan_combined`,
`selective_state_update`, and in training `mamba_split_conv1d_scan_combined`) for CUDA tensors when
mamba-ssm imports, and to its own chunked torch path (einsums: matmuls, so fast on a CPU) otherwise.
The project's scan op and its backends do not apply to SSD: a scan-backend setting chooses only a
DASS encoder's scans, and the LM's scan backend records which of the two paths runs.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from transformers import Mamba2Config, Mamba2ForCausalLM, PreTrainedModel

from models.closed_form import Costs, Op, conv, linear
from models.families.base import LMFamily
from models.ops.selective_scan import resolve_backend
from models.presets import TINY_VOCAB


@dataclass(frozen=True)
class Mamba2Shape:
    hidden: int
    layers: int
    vocab: int
    d_state: int = 128
    head_dim: int = 64
    expand: int = 2
    n_groups: int = 1
    d_conv: int = 4
    chunk: int = 256  # SSD's chunk length

    @property
    def d_inner(self) -> int:
        return self.expand * self.hidden

    @property
    def heads(self) -> int:
        return self.d_inner // self.head_dim

    @property
    def conv_dim(self) -> int:
        """Channels of the causal conv: x, B and C."""
        return self.d_inner + 2 * self.n_groups * self.d_state

    @property
    def in_proj_out(self) -> int:
        """in_proj's outputs: the gate, x, B, C and one time step per head."""
        return self.d_inner + self.conv_dim + self.heads


# Mamba2-2.7B (state-spaces/mamba2-2.7b): 2,702,599,680 parameters.
MAMBA2_2_7B = Mamba2Shape(hidden=2560, layers=64, vocab=50288)


def mamba2_config(shape: Mamba2Shape) -> Mamba2Config:
    return Mamba2Config(
        hidden_size=shape.hidden,
        num_hidden_layers=shape.layers,
        vocab_size=shape.vocab,
        state_size=shape.d_state,
        head_dim=shape.head_dim,
        num_heads=shape.heads,
        expand=shape.expand,
        n_groups=shape.n_groups,
        conv_kernel=shape.d_conv,
        chunk_size=shape.chunk,
        tie_word_embeddings=True,
    )


@functools.cache
def mamba_ssm_ssd_available() -> bool:
    """Whether mamba-ssm's SSD kernel imports, which is what makes transformers route CUDA tensors
    to it. Importing it imports the whole `mamba_ssm` package, which can fail in ways other than
    ImportError (a Triton build that does not match), so any exception means no."""
    try:
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined  # noqa: F401
    except Exception:  # noqa: BLE001 - see the docstring
        return False
    return True


def ssd_flops(shape: Mamba2Shape, batch: int, length: int) -> int:
    """SSD's chunked form over `length` positions per sequence, every chunk whole (the last one is
    padded to `chunk` positions, and computed in full). With c chunks of q positions, per head:
    the intra-chunk scores C B^T (q x q x d_state per chunk) and their product with x (q x q x
    head_dim), each chunk's final state from B and x and the output from C and the carried state
    (q x head_dim x d_state each), and the states passed between chunks, one (c+1) x (c+1) product
    of (head_dim x d_state) states. B and C are shared by the heads of a group but multiplied per head.
    The decays, the D skip and the discretisation are elementwise."""
    q, chunks = shape.chunk, math.ceil(length / shape.chunk)
    h, p, n = shape.heads, shape.head_dim, shape.d_state
    intra = 2 * batch * chunks * q * q * h * (n + p)
    states = 2 * 2 * batch * chunks * q * h * p * n
    inter = 2 * batch * (chunks + 1) ** 2 * h * p * n
    return intra + states + inter


class Mamba2(LMFamily):
    attention = False
    shapes = {
        # A chunk of 32 positions, so CI's short sequences still cross chunk boundaries.
        "tiny": Mamba2Shape(hidden=64, layers=4, vocab=TINY_VOCAB, d_state=16, head_dim=16, chunk=32),
        "small": Mamba2Shape(hidden=512, layers=8, vocab=32000, d_state=64),
        "paper": MAMBA2_2_7B,
        "matched": MAMBA2_2_7B,  # within 3% of Mamba-2.8B's parameters already
    }
    lora_targets = ("in_proj",)

    def build(self, shape: Mamba2Shape) -> Mamba2ForCausalLM:
        return Mamba2ForCausalLM(mamba2_config(shape))

    def width(self, shape: Mamba2Shape) -> int:
        return shape.hidden

    def params(self, shape: Mamba2Shape) -> int:
        """Embeddings (tied to the head), mixer layers with their norms, final norm."""
        d = shape.hidden
        layer = (
            d  # RMSNorm
            + d * shape.in_proj_out  # in_proj, no bias
            + shape.conv_dim * shape.d_conv + shape.conv_dim  # conv1d with bias
            + 3 * shape.heads  # dt_bias, A_log, D
            + shape.d_inner  # gated RMSNorm
            + shape.d_inner * d  # out_proj, no bias
        )
        return shape.vocab * d + shape.layers * layer + d

    def flops(self, shape: Mamba2Shape, batch: int, new_tokens: int, past: int = 0, logits: int = 1) -> Costs:
        """SSD over `new_tokens` positions, or one recurrence step when 1 (its only product: the
        state times C, b x heads x head_dim x d_state). The cost per token does not depend on the
        context (`past`)."""
        tokens, layers = batch * new_tokens, shape.layers
        if new_tokens == 1:
            ssd = 2 * batch * shape.heads * shape.head_dim * shape.d_state
        else:
            ssd = ssd_flops(shape, batch, new_tokens)
        return {
            "in_proj": layers * linear(tokens, shape.hidden, shape.in_proj_out),
            "conv1d": layers * conv(tokens, shape.conv_dim, 1, shape.d_conv),
            "ssd": layers * ssd,
            "out_proj": layers * linear(tokens, shape.d_inner, shape.hidden),
            "lm_head": linear(batch * logits, shape.hidden, shape.vocab),
        }

    def state_bytes(self, shape: Mamba2Shape, batch: int, context: int, dtype: torch.dtype) -> int:
        """Per layer the conv window of x, B and C (batch, conv_dim, d_conv) in `dtype` and the SSM
        state (batch, heads, head_dim, d_state) in float32 — whatever the model dtype: SSD computes
        its states in float32 — and independent of the context."""
        conv_window = batch * shape.conv_dim * shape.d_conv * dtype.itemsize
        state = batch * shape.heads * shape.head_dim * shape.d_state * torch.float32.itemsize
        return shape.layers * (conv_window + state)

    def bytes_moved(self, shape: Mamba2Shape, batch: int, new_tokens: int, past: int, dtype: torch.dtype,
                    logits: int = 1) -> Costs:
        """Weights read whole (the embedding table is the LM head too), the conv window and SSM
        state written (and read first when `past` > 0), whatever the context, and activations, SSD
        as one fused kernel (mamba-ssm's: the chunks' scores stay on chip; transformers' torch path
        writes them, and moves more). Per token and layer, elements: RMSNorm (2d), in_proj (d in,
        in_proj_out out), conv and SiLU (4 conv_dim), SSD (x, dt, B, C in, y out), the gated
        RMSNorm (y and the gate in, 1 out), out_proj (d_inner + d), residual add (3d)."""
        ssd = 2 * shape.d_inner + shape.heads + 2 * shape.n_groups * shape.d_state
        per_token_layer = 7 * shape.hidden + shape.in_proj_out + 4 * shape.conv_dim + ssd + 4 * shape.d_inner
        return self.fixed_state_bytes_moved(shape, batch, new_tokens, past, dtype, logits, per_token_layer)

    def lora_linears(self, shape: Mamba2Shape) -> list[tuple[int, int]]:
        return [(shape.hidden, shape.in_proj_out)] * shape.layers  # in_proj

    def train_ops(self, shape: Mamba2Shape, batch: int, positions: int) -> list[Op]:
        """SSD's products have no weights; the backward of each is two products of its size (the
        gradients with respect to both operands)."""
        costs = self.flops(shape, batch, positions, logits=positions)
        return [Op("lm", "in_proj", costs["in_proj"]),
                Op("lm", "conv1d", costs["conv1d"]),
                Op("lm", "ssd", costs["ssd"], kind="scan", backward=2 * costs["ssd"]),
                Op("lm", "out_proj", costs["out_proj"], recomputed=0.0),  # the block's last product
                Op("lm", "lm_head", costs["lm_head"], recomputed=0.0)]

    def use_scan_backend(self, model: PreTrainedModel, backend: str, device: torch.device) -> str:
        resolve_backend(backend, device)  # the setting must still suit the device
        return "mamba-ssm" if device.type == "cuda" and mamba_ssm_ssd_available() else "torch"


FAMILY = Mamba2()
