"""The LM decode step over a static cache, captured once as a CUDA graph and replayed.

A CUDA graph replays fixed kernels on fixed addresses, so everything one decode step touches must
keep its address and shape: the input token, the position, the attention mask and the cache.

The LM family makes the static cache (`LMFamily.static_decode`):
- LLaMA: the prefill's keys and values copied into a transformers `StaticCache` with
  `context + 1` slots. A step writes the new token's key/value into the last slot; `reset()`
  rewinds the cache's write position (an in-place fill, outside the graph), so every replay
  attends over exactly `context + 1` positions.
- Mamba and Mamba-2: the conv and SSM states are already fixed-size and updated in place, so
  each step advances them by a token. `reset()` copies a snapshot of the prefill's states back
  into them (in place, addresses unchanged): without it the graph's warm-up steps would leave the
  first replay computing the fourth step from the prefill, not the first, and every replay another.

`StaticDecode` runs on any device (the CPU tests check it against the eager step);
`GraphedDecode` captures it with `torch.cuda.graph` after warm-up on a side stream, as the
CUDA-graph documentation prescribes.
"""
from __future__ import annotations

import inspect

import torch
from transformers import PreTrainedModel

from models.families import LMFamily


def hf_causal_lm(lm: torch.nn.Module) -> PreTrainedModel:
    """The transformers *ForCausalLM behind an LALM's `lm` (itself, or the adapter's `.model`)."""
    if isinstance(lm, PreTrainedModel):
        return lm
    inner = getattr(lm, "model", None)
    if isinstance(inner, PreTrainedModel):
        return inner
    raise TypeError(f"{type(lm).__name__} is not a transformers model and does not wrap one in `.model`")


def cache_argument(model: PreTrainedModel) -> str:
    """transformers >= 5 names the cache argument `cache`; earlier versions `past_key_values`."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def recurrent_state_tensors(cache: object) -> list[torch.Tensor]:
    """The tensors of a cache that a decode step updates in place and that are not a KV cache:
    every tensor a layer with conv/recurrent states holds (the states and its token count)."""
    found: list[torch.Tensor] = []
    for layer in getattr(cache, "layers", ()):
        if not hasattr(layer, "recurrent_states"):
            continue
        for value in vars(layer).values():
            values = value.values() if isinstance(value, dict) else (value,)
            found.extend(t for t in values if isinstance(t, torch.Tensor))
    return found


class StaticDecode:
    """One greedy decode step at a fixed context with static inputs: () -> logits (B, vocab).

    family: the LM's family, which makes the static cache. cache: the prefill's cache, which is
    copied, never modified. token: (B,) the token to feed. context: positions in cache.
    """

    def __init__(self, model: PreTrainedModel, family: LMFamily, cache: object, token: torch.Tensor, context: int):
        self.model = model
        self.context = context
        self.token = token.reshape(-1, 1).clone()
        self.cache, self._extra = family.static_decode(model, cache, context, self.token.shape[0])
        self._extra[cache_argument(model)] = self.cache
        self._snapshot = [(live, live.clone()) for live in recurrent_state_tensors(self.cache)]

    def reset(self) -> None:
        """Put the cache back where the prefill left it, in place: rewind a static KV cache's
        write position to `context`; copy the prefill's conv and SSM states back."""
        for layer in getattr(self.cache, "layers", ()):
            written = getattr(layer, "cumulative_length", None)
            if isinstance(written, torch.Tensor):
                written.fill_(self.context)
        for live, saved in self._snapshot:
            live.copy_(saved)

    def __call__(self) -> torch.Tensor:
        return self.model(input_ids=self.token, use_cache=True, **self._extra).logits[:, -1]


class GraphedDecode:
    """A StaticDecode captured as a CUDA graph: () -> logits (B, vocab), a static output tensor.

    Call `reset()` before each replay (untimed): it keeps the context fixed.
    """

    def __init__(self, step: StaticDecode, warmup: int = 3):
        self.step = step
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(warmup):
                step.reset()
                step()
        torch.cuda.current_stream().wait_stream(side)
        step.reset()
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.logits = step()

    def reset(self) -> None:
        self.step.reset()

    def __call__(self) -> torch.Tensor:
        self.graph.replay()
        return self.logits
