"""The inference phases, in the order each feeds the next, importing nothing (so a suite is
checked and `lalm-bench list` answers without torch).

fbank: waveform -> features. encoder: features -> encoder output. prefill: projector + LM over
the audio and prompt tokens, leaving the cache. decode: one step on that cache. e2e: `generate`,
i.e. the chain once with `new_tokens - 1` decode steps. The closed forms (`models.analytic`,
`models.bytes_moved`), the meters' phase chain and the profiler all take their order from here.
"""
from __future__ import annotations

CHAIN = ("fbank", "encoder", "prefill", "decode")
E2E = "e2e"
PHASES = (*CHAIN, E2E)
