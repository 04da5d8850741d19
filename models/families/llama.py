"""LLaMA (`transformers.LlamaForCausalLM`): attention LM whose cache is keys and values per layer.

The cache grows by one position per layer per token; a decode step attends over all of it, so
its cost and the cache's size grow linearly with the context.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedModel, StaticCache

from models.closed_form import Costs, Op, attention, linear
from models.families.base import LMFamily
from models.presets import TINY_VOCAB


@dataclass(frozen=True)
class LlamaShape:
    hidden: int
    layers: int
    heads: int
    mlp: int
    vocab: int
    kv_heads: int | None = None

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def d_kv(self) -> int:
        """Width of the key and value projections (GQA: kv_heads * head_dim)."""
        return (self.kv_heads or self.heads) * self.head_dim


LLAMA_7B = LlamaShape(hidden=4096, layers=32, heads=32, mlp=11008, vocab=32000)
# 32 layers of width 2560 with an 6912-wide MLP and Mamba's vocabulary: 2.79B parameters,
# within 1% of Mamba-2.8B, so LLaMA vs Mamba at `matched` compares architectures, not sizes.
LLAMA_MATCHED = LlamaShape(hidden=2560, layers=32, heads=20, mlp=6912, vocab=50280)


def llama_config(shape: LlamaShape) -> LlamaConfig:
    return LlamaConfig(
        hidden_size=shape.hidden,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads or shape.heads,
        intermediate_size=shape.mlp,
        vocab_size=shape.vocab,
        max_position_embeddings=1 << 20,  # long audio makes long contexts; RoPE has no table
        tie_word_embeddings=False,
        attn_implementation="sdpa",
    )


def static_kv_cache(model: PreTrainedModel, cache: object, context: int, slots: int) -> StaticCache:
    """A StaticCache with `slots` positions holding the first `context` positions of a DynamicCache."""
    static = StaticCache(config=model.config, max_cache_len=slots)
    positions = None
    for index, layer in enumerate(cache.layers):
        if positions is None:
            positions = torch.arange(context, device=layer.keys.device)
        # cache_position is what transformers < 5 used to place the states; newer versions ignore it.
        static.update(layer.keys[..., :context, :], layer.values[..., :context, :], index,
                      {"cache_position": positions})
    return static


class Llama(LMFamily):
    attention = True
    shapes = {
        "tiny": LlamaShape(hidden=64, layers=2, heads=4, mlp=172, vocab=TINY_VOCAB),
        "small": LlamaShape(hidden=512, layers=4, heads=8, mlp=1376, vocab=32000),
        "paper": LLAMA_7B,
        "matched": LLAMA_MATCHED,
    }
    lora_targets = ("q_proj", "v_proj")

    def build(self, shape: LlamaShape) -> LlamaForCausalLM:
        return LlamaForCausalLM(llama_config(shape))

    def width(self, shape: LlamaShape) -> int:
        return shape.hidden

    def params(self, shape: LlamaShape) -> int:
        """Embeddings, layers (attention, SwiGLU MLP, two RMSNorms), final norm, untied head."""
        d = shape.hidden
        layer = 2 * d * d + 2 * d * shape.d_kv + 3 * d * shape.mlp + 2 * d
        return 2 * shape.vocab * d + shape.layers * layer + d

    def flops(self, shape: LlamaShape, batch: int, new_tokens: int, past: int = 0, logits: int = 1) -> Costs:
        """GQA: k and v project to kv_heads * head_dim; attention still runs over all query heads."""
        d, tokens = shape.hidden, batch * new_tokens
        return {
            "attn_proj": shape.layers * (2 * linear(tokens, d, d) + 2 * linear(tokens, d, shape.d_kv)),
            "attn_scores": shape.layers * attention(batch, shape.heads, new_tokens, past + new_tokens, shape.head_dim),
            "mlp": shape.layers * 3 * linear(tokens, d, shape.mlp),
            "lm_head": linear(batch * logits, d, shape.vocab),
        }

    def state_bytes(self, shape: LlamaShape, batch: int, context: int, dtype: torch.dtype) -> int:
        """Keys and values of every layer, (batch, kv_heads, context, head_dim) each, in `dtype`."""
        return shape.layers * 2 * batch * context * shape.d_kv * dtype.itemsize

    def lora_linears(self, shape: LlamaShape) -> list[tuple[int, int]]:
        return [(shape.hidden, shape.hidden), (shape.hidden, shape.d_kv)] * shape.layers  # q_proj, v_proj

    def train_ops(self, shape: LlamaShape, batch: int, positions: int) -> list[Op]:
        costs = self.flops(shape, batch, positions, logits=positions)
        return [Op("lm", "attn_proj", costs["attn_proj"]),
                Op("lm", "attn_scores", costs["attn_scores"], kind="attention"),
                Op("lm", "mlp", costs["mlp"], recomputed=2 / 3),  # gate, up, down: down_proj is last
                Op("lm", "lm_head", costs["lm_head"], recomputed=0.0)]

    def attention_implementation(self, model: PreTrainedModel) -> str:
        return str(getattr(model.config, "_attn_implementation", "") or "")

    def static_decode(self, model: PreTrainedModel, cache: object, context: int,
                      batch: int) -> tuple[StaticCache, dict[str, torch.Tensor]]:
        """The prefill's DynamicCache (which grows by concatenation, new tensors every step) copied
        into a StaticCache with `context + 1` slots: a step writes the new token's key and value
        into the last slot. The position ids and a 4D all-true mask are passed in, which skips
        transformers' mask construction."""
        static = static_kv_cache(model, cache, context, context + 1)
        device = cache.layers[0].keys.device
        return static, {
            "position_ids": torch.full((batch, 1), context, dtype=torch.long, device=device),
            "attention_mask": torch.ones((batch, 1, 1, context + 1), dtype=torch.bool, device=device),
        }

    def bytes_moved(self, shape: LlamaShape, batch: int, new_tokens: int, past: int, dtype: torch.dtype,
                    logits: int = 1) -> Costs:
        """Weights read (the embedding table only at the rows looked up), keys and values of the
        `past + new_tokens` positions read and of the new ones written, and activations. Per token
        and layer, elements: two RMSNorms (4d), q/k/v projections (3d in, d + 2 d_kv out), RoPE on q
        and k (2 (d + d_kv)), attention (q in, d out), o_proj (2d), two residual adds (6d), gate and
        up (2d in, 2 mlp out), SiLU-and-multiply (3 mlp), down (mlp + d)."""
        d, m, size = shape.hidden, shape.mlp, dtype.itemsize
        per_token_layer = 23 * d + 4 * shape.d_kv + 6 * m
        activations = self.activation_elements(shape, batch, new_tokens, logits, per_token_layer)
        kv_per_position = shape.layers * 2 * shape.d_kv * size
        return {"weights": (self.params(shape) - shape.vocab * d) * size,
                "state_read": batch * (past + new_tokens) * kv_per_position,
                "state_written": batch * new_tokens * kv_per_position,
                "activations": activations * size}


FAMILY = Llama()
