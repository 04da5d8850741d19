"""The inference phases, in the order each feeds the next, importing nothing (so a suite is
checked and `lalm-bench list` answers without torch).

fbank: waveform -> features. encoder: features -> encoder output. prefill: projector + LM over
the audio and prompt tokens, leaving the cache. decode: one step on that cache. e2e: `generate`,
i.e. the chain once with `new_tokens - 1` decode steps. The closed forms (`models.analytic`,
`models.bytes_moved`), the meters' phase chain and the profiler all take their order from here.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

C = TypeVar("C")

DECODE = "decode"
CHAIN = ("fbank", "encoder", "prefill", DECODE)
E2E = "e2e"
PHASES = (*CHAIN, E2E)


def compose(phase: str, one_call: Callable[[str, int], C], total: Callable[..., C], prefix: int,
            context: int | None = None, new_tokens: int = 1) -> C:
    """A cost of one call of `phase` from `one_call(part, positions)`, the cost of one call of a
    phase of the chain with `positions` in the LM (the prefill's length, `prefix` audio and prompt
    tokens; a decode step's cached positions, `context`, by default `prefix`). e2e is `total` of
    fbank, encoder, prefill and `new_tokens - 1` decode steps, each a position later. The closed
    forms of FLOPs and of bytes moved are both this composition."""
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; the closed forms cover {', '.join(PHASES)}")
    if phase == DECODE:
        return one_call(phase, prefix if context is None else context)
    if phase != E2E:
        return one_call(phase, prefix)
    return total(*(one_call(part, prefix) for part in CHAIN if part != DECODE),
                 *(one_call(DECODE, prefix + i) for i in range(new_tokens - 1)))
