"""The phase chain, written once: fbank -> encoder -> prefill -> decode, and e2e over all of them.

    chain = PhaseChain(lalm, inputs)
    run = chain.call("prefill")      # one call of the phase on its inputs (what is timed or counted)
    chain.output("encoder")          # a phase's output, computed once: the input of the next phase

Each phase's input is the output of the phase before it, computed eagerly on first use and kept;
when it cannot be computed, `PhaseFailed` names the phase that failed. The meters
(`harness.measure.phases`), the FLOP counter (`harness.measure.flops`), the profiler and the
kernel gate (`harness.gate.kernels`) all run an LALM's phases through this chain, so "the prefill"
is the same call for all of them.

Decoding mutates its cache (a KV cache grows by concatenation, an SSM state is overwritten in
place): `call("decode")` steps the prefill's own cache, which is right for one step; a caller that
steps more than once gives each step a copy of `prefilled()`'s cache.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from harness.errors import UserError
from harness.failure import describe
from harness.points import Point
from harness.schema import INFERENCE_PHASES
from models.audio import SAMPLE_RATE
from models.lalm import LALM

PHASE_ORDER = INFERENCE_PHASES  # each phase before the ones it feeds; e2e runs them all


@dataclass(frozen=True)
class PhaseInputs:
    """wave: (B, S) float32 at `sample_rate`, on the model's device. prompt_ids: (B, P) int64."""

    wave: torch.Tensor
    prompt_ids: torch.Tensor
    new_tokens: int
    sample_rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        if self.wave.ndim != 2 or self.prompt_ids.ndim != 2 or self.wave.shape[0] != self.prompt_ids.shape[0]:
            raise UserError(f"phase inputs: wave {tuple(self.wave.shape)} and prompt_ids "
                            f"{tuple(self.prompt_ids.shape)} must be (B, S) and (B, P) with the same B")
        if self.new_tokens < 1:
            raise UserError(f"phase inputs: new_tokens={self.new_tokens} must be >= 1")

    @property
    def batch_size(self) -> int:
        return self.wave.shape[0]

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio per clip."""
        return self.wave.shape[1] / self.sample_rate


def inputs_for(point: Point, vocab_size: int, seed: int, device: str | torch.device) -> PhaseInputs:
    """Random audio in [-1, 1] and random prompt ids of the point's shape, seeded: (B, S) and (B, P)
    on `device`."""
    gen = torch.Generator().manual_seed(seed)
    wave = torch.rand(point.batch_size, round(point.audio_seconds * SAMPLE_RATE), generator=gen) * 2 - 1
    prompt = torch.randint(0, vocab_size, (point.batch_size, point.prompt_tokens), generator=gen)
    return PhaseInputs(wave.to(device), prompt.to(device), point.new_tokens)


def context_length(lalm: LALM, inputs: PhaseInputs) -> int:
    """Positions in the cache after prefill: audio tokens + prompt tokens."""
    return lalm.num_audio_tokens(inputs.audio_seconds) + inputs.prompt_ids.shape[1]


class PhaseFailed(Exception):
    """Computing the output of `phase`, which another phase needs as input, raised `cause`."""

    def __init__(self, phase: str, cause: Exception):
        super().__init__(f"needs the {phase} output, which failed: {describe(cause)}")
        self.phase = phase
        self.cause = cause


Wrap = Callable[[Callable], Callable]


class PhaseChain:
    """One LALM's phases on one set of inputs."""

    def __init__(self, lalm: LALM, inputs: PhaseInputs):
        self.lalm = lalm
        self.inputs = inputs
        self._outputs: dict[str, object] = {}

    def _step(self, phase: str) -> tuple[Callable, tuple]:
        """The model call that is `phase` and its arguments, the earlier phases' outputs."""
        lalm, inputs = self.lalm, self.inputs
        if phase == "fbank":
            return lalm.features, (inputs.wave,)
        if phase == "encoder":
            return lalm.encode, (self.output("fbank"),)
        if phase == "prefill":
            return lalm.prefill, (self.output("encoder"), inputs.prompt_ids)
        if phase == "decode":
            token, cache = self.prefilled()
            return lalm.decode_step, (cache, token)
        if phase == "e2e":
            return lalm.generate, (inputs.wave, inputs.prompt_ids, inputs.new_tokens)
        raise ValueError(f"unknown phase {phase!r}; the chain is {', '.join(PHASE_ORDER)}")

    def call(self, phase: str, wrap: Wrap | None = None) -> Callable[[], object]:
        """One call of `phase` on its inputs (computed now); `wrap` wraps the model call (e.g.
        `torch.compile`). Raises PhaseFailed when an input cannot be computed."""
        fn, args = self._step(phase)
        fn = wrap(fn) if wrap is not None else fn
        return lambda: fn(*args)

    def output(self, phase: str) -> object:
        """The output of `phase`, computed once (eagerly, never wrapped) and kept."""
        if phase not in self._outputs:
            try:
                fn, args = self._step(phase)
                self._outputs[phase] = fn(*args)
            except PhaseFailed:
                raise
            except Exception as exc:
                raise PhaseFailed(phase, exc) from exc
        return self._outputs[phase]

    def keep(self, phase: str, output: object) -> None:
        """Keep an output a caller computed itself (a counted call), so the next phase reuses it.
        A decode step's output is never kept: it has advanced the cache."""
        if phase not in ("decode", "e2e"):
            self._outputs.setdefault(phase, output)

    def prefilled(self) -> tuple[torch.Tensor, object]:
        """(the first generated token (B,), the prefill's cache), the decode step's inputs."""
        logits, cache = self.output("prefill")
        return logits.argmax(-1), cache
