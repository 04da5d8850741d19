"""Language models: LLaMA and Mamba from `transformers`, behind one small adapter.

The adapter gives the LALM the three calls it needs — embed token ids, run a prefix of
embeddings into a fresh cache, extend a cache by one token. LLaMA's cache holds keys and values
per layer (growing with context); Mamba's holds a conv window and an SSM state (fixed size).
"""
from __future__ import annotations

import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM, MambaConfig, MambaForCausalLM

from models.presets import LlamaShape, MambaShape


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


class CausalLM(nn.Module):
    """A `transformers` causal LM with the three calls an LALM makes.

    kind: "llama" or "mamba". `model` keeps Hugging Face parameter names, so real checkpoints load.
    """

    def __init__(self, kind: str, model: LlamaForCausalLM | MambaForCausalLM):
        super().__init__()
        self.kind = kind
        self.model = model

    @property
    def width(self) -> int:
        return self.model.config.hidden_size

    @property
    def vocab_size(self) -> int:
        return self.model.config.vocab_size

    @property
    def attention_implementation(self) -> str:
        """The attention kernel the LM runs (transformers' setting, e.g. "sdpa"); "" for an LM without
        attention layers, whose config names a default all the same."""
        if not hasattr(self.model.config, "num_attention_heads"):
            return ""
        return str(self.model.config._attn_implementation or "")

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L) token ids -> (B, L, d_lm) input embeddings."""
        return self.model.get_input_embeddings()(ids)

    def logits(self, embeds: torch.Tensor) -> torch.Tensor:
        """Full-sequence logits (B, L, vocab) without a cache (training and reference checks)."""
        return self.model(inputs_embeds=embeds, use_cache=False).logits

    def prefill(self, embeds: torch.Tensor) -> tuple[torch.Tensor, object]:
        """(B, L, d_lm) -> (logits at the last position (B, vocab), cache after L positions)."""
        out = self.model(inputs_embeds=embeds, use_cache=True, logits_to_keep=1)
        return out.logits[:, -1], out.cache

    def step(self, token: torch.Tensor, cache: object) -> tuple[torch.Tensor, object]:
        """token (B,) -> (logits (B, vocab), cache extended by one position). Updates `cache` in place."""
        out = self.model(input_ids=token[:, None], use_cache=True, cache=cache)
        return out.logits[:, -1], out.cache


def build_llama(shape: LlamaShape) -> CausalLM:
    return CausalLM("llama", LlamaForCausalLM(llama_config(shape)))


def build_mamba(shape: MambaShape) -> CausalLM:
    return CausalLM("mamba", MambaForCausalLM(mamba_config(shape)))
