"""What a model family is: the interface every encoder and LM family implements.

A family owns its facts, the way nanoGPT's GPT owns its parameter count and FLOPs: shape presets
per size, how to build it (keeping Hugging Face weight names), and closed forms for its
parameters, forward FLOPs, bytes moved, training products and (LMs) the state kept between
decode steps. Closed forms take a shape (a frozen dataclass from `shapes`) and are pure arithmetic.
"""
from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import PreTrainedModel

from models.closed_form import Costs, Op

LORA_RANK = 8  # LTU's and ssLAM's rank


class EncoderFamily(ABC):
    """An audio encoder and the projector that turns its output into LM tokens (32 per 10 s)."""

    shapes: ClassVar[Mapping[str, Any]]  # size name -> the encoder's shape
    attention: ClassVar[bool]  # attends over every patch: cost quadratic in the audio length

    @abstractmethod
    def build(self, shape: Any, scan_backend: str) -> nn.Module:
        """fbank (B, T, 128), T a multiple of 64 -> the projector's input for T/32 tokens."""

    @abstractmethod
    def build_projector(self, d_enc: int, d_lm: int) -> nn.Module:
        """(encoder output, num_tokens) -> (B, num_tokens, d_lm)."""

    @abstractmethod
    def width(self, shape: Any) -> int:
        """Channels of the encoder's output."""

    @abstractmethod
    def params(self, shape: Any) -> int: ...

    @abstractmethod
    def projector_params(self, d_enc: int, d_lm: int) -> int: ...

    @abstractmethod
    def flops(self, shape: Any, batch: int, frames: int) -> Costs:
        """Forward FLOPs over fbank (batch, frames, 128), by part."""

    @abstractmethod
    def projector_flops(self, d_enc: int, d_lm: int, batch: int, frames: int) -> Costs: ...

    @abstractmethod
    def bytes_moved(self, shape: Any, batch: int, frames: int, dtype: torch.dtype) -> Costs:
        """Bytes one forward over fbank (batch, frames, 128) moves to and from memory, by kind
        ("weights", "activations"); see `models.bytes_moved` for the model of traffic."""

    @abstractmethod
    def projector_bytes(self, shape: Any, d_lm: int, batch: int, frames: int, dtype: torch.dtype) -> Costs:
        """The projector's bytes over this encoder's output, by kind."""

    @abstractmethod
    def train_ops(self, shape: Any, batch: int, frames: int) -> list[Op]:
        """The encoder's forward products in a training step."""

    @abstractmethod
    def projector_train_ops(self, d_enc: int, d_lm: int, batch: int, frames: int) -> list[Op]: ...

    def use_scan_backend(self, encoder: nn.Module, backend: str, device: torch.device) -> str | None:
        """What runs the encoder's scans under setting `backend` (routed there at build); None
        when it has no scan."""
        return None

    def weights_module(self, encoder: nn.Module) -> nn.Module:
        """The module whose parameter names the encoder's checkpoints use: the Hugging Face model
        inside the built encoder where there is one, else the encoder itself."""
        return encoder


class LMFamily(ABC):
    """A `transformers` causal LM: its shapes, its build and its closed forms."""

    shapes: ClassVar[Mapping[str, Any]]  # size name -> the LM's shape
    lora_targets: ClassVar[tuple[str, ...]]  # Linear names LoRA adapts (the papers' choice)
    attention: ClassVar[bool]  # attends over the context: its cache (keys and values) grows with it

    @abstractmethod
    def build(self, shape: Any) -> PreTrainedModel:
        """The Hugging Face *ForCausalLM, randomly initialised, Hugging Face weight names."""

    @abstractmethod
    def width(self, shape: Any) -> int: ...

    @abstractmethod
    def params(self, shape: Any) -> int: ...

    @abstractmethod
    def flops(self, shape: Any, batch: int, new_tokens: int, past: int = 0, logits: int = 1) -> Costs:
        """Forward over `new_tokens` positions per sequence with `past` already cached, logits at
        `logits` positions: prefill (past 0) or a decode step (new_tokens 1)."""

    @abstractmethod
    def state_bytes(self, shape: Any, batch: int, context: int, dtype: torch.dtype) -> int:
        """Bytes the cache holds after `context` positions (tensors only, each storage once)."""

    @abstractmethod
    def bytes_moved(self, shape: Any, batch: int, new_tokens: int, past: int, dtype: torch.dtype,
                    logits: int = 1) -> Costs:
        """Bytes a forward over `new_tokens` positions with `past` cached moves to and from memory,
        by kind ("weights", "state_read", "state_written", "activations"); see `models.bytes_moved`."""

    @abstractmethod
    def lora_linears(self, shape: Any) -> list[tuple[int, int]]:
        """(d_in, d_out) of every Linear LoRA adapts, over all layers."""

    @abstractmethod
    def train_ops(self, shape: Any, batch: int, positions: int) -> list[Op]:
        """The LM's forward products in a training step over `positions` per sequence, logits at
        every position (the LoRA adapters are added by the caller, from `lora_linears`)."""

    def activation_elements(self, shape: Any, batch: int, new_tokens: int, logits: int, per_token_layer: int) -> int:
        """Elements a forward reads and writes besides weights and state: `per_token_layer` per
        token in each layer, the final norm's output per token, and at the `logits` positions the
        hidden row in and the logits out. `shape` has hidden, layers and vocab."""
        return (batch * new_tokens * (shape.layers * per_token_layer + shape.hidden)
                + batch * logits * (shape.hidden + shape.vocab))

    def fixed_state_bytes_moved(self, shape: Any, batch: int, new_tokens: int, past: int, dtype: torch.dtype,
                                logits: int, per_token_layer: int) -> Costs:
        """`bytes_moved` of an LM whose state has a fixed size and whose embedding table is also its
        head: every weight read, the state written (and read first when `past` > 0), activations."""
        state = self.state_bytes(shape, batch, past + new_tokens, dtype)
        activations = self.activation_elements(shape, batch, new_tokens, logits, per_token_layer)
        return {"weights": self.params(shape) * dtype.itemsize, "state_read": state if past else 0,
                "state_written": state, "activations": activations * dtype.itemsize}

    def lora_params(self, shape: Any, rank: int = LORA_RANK) -> int:
        """Trainable parameters of LoRA adapters: r * (d_in + d_out) per adapted Linear."""
        return sum(rank * (d_in + d_out) for d_in, d_out in self.lora_linears(shape))

    def lora_flops(self, shape: Any, tokens: int, rank: int) -> int:
        """(x A) B on every adapted Linear over `tokens` rows."""
        return 2 * tokens * self.lora_params(shape, rank)

    def use_scan_backend(self, model: PreTrainedModel, backend: str, device: torch.device) -> str | None:
        """Route the LM's scans to `backend`; returns what runs, None when it has no scan."""
        return None

    def attention_implementation(self, model: PreTrainedModel) -> str:
        """The attention implementation the LM runs ("" when it has no attention)."""
        return ""

    def static_decode(self, model: PreTrainedModel, cache: Any, context: int,
                      batch: int) -> tuple[Any, dict[str, torch.Tensor]]:
        """A copy of the prefill's `cache` whose decode step keeps every address and shape (for
        CUDA graphs), and the extra inputs that step needs. The default suits fixed-size states
        that a step updates in place: a copy, and nothing extra."""
        return copy.deepcopy(cache), {}
