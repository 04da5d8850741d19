"""The LM adapter: a `transformers` causal LM behind the three calls an LALM makes.

Embed token ids, run a prefix of embeddings into a fresh cache, extend a cache by one token.
What the cache holds is the family's (`models.families`): keys and values per layer for LLaMA
(growing with the context), a conv window and an SSM state for Mamba and Mamba-2 (fixed size).
"""
from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel

from models.families.base import LMFamily
from models.ops.cpu_gemv import gemv_kernels


class CausalLM(nn.Module):
    """A `transformers` *ForCausalLM of `family`. `model` keeps Hugging Face parameter names, so
    real checkpoints load."""

    def __init__(self, family: LMFamily, model: PreTrainedModel):
        super().__init__()
        self.family = family
        self.model = model

    @property
    def width(self) -> int:
        return self.model.config.hidden_size

    @property
    def vocab_size(self) -> int:
        return self.model.config.vocab_size

    @property
    def attention_implementation(self) -> str:
        """The attention implementation the LM runs ("" when it has no attention)."""
        return self.family.attention_implementation(self.model)

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
        """token (B,) -> (logits (B, vocab), cache extended by one position). Updates `cache` in place.

        At batch 1 a step is matrix-vector products; see `models.ops.cpu_gemv` for their kernel."""
        with gemv_kernels(token.shape[0], token.device, self.model.dtype):
            out = self.model(input_ids=token[:, None], use_cache=True, cache=cache)
        return out.logits[:, -1], out.cache
