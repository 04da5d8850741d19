"""Run an LALM's phases under the meters: latency, throughput, RTF, memory, energy, state size.

Phases (`harness.measure.chain`; each timed alone, its inputs computed beforehand by the chain, untimed):
- fbank:   waveform (B, S) -> log-mel features (B, T, 128)
- encoder: features -> encoder output
- prefill: projector + LM over [audio tokens; prompt], given the encoder output — i.e. time to
           first token minus front end and encoder
- decode:  one generated token per sequence, at the context the prefill left (A audio + P prompt
           tokens). Decoding mutates the cache: LLaMA's DynamicCache concatenates each step's
           key/value onto its layers, Mamba overwrites its conv/SSM state in place. So the
           prefill's cache is kept pristine and every timed step gets a fresh deep copy, made
           outside the timed window (`Timer.measure`'s setup): every step sees the same context.
- e2e:     waveform -> `new_tokens` tokens via `generate` (front end, encoder, prefill, decode).

Derived: throughput (tokens/s for prefill, decode, e2e; audio seconds per second for fbank and
encoder) and RTF (processing seconds per second of audio, whole batch) for fbank, encoder, e2e;
their lo/hi come from the latency's p90/p10. Energy per call and per token / audio second on
CUDA; `state_bytes` of the prefill's cache.

Modes: "eager"; "compile" (every phase callable wrapped in `torch.compile`; compilation happens
in the warm-up); "cuda_graph" (the decode step over a static cache, captured as a CUDA graph —
see `cuda_graph`; the other phases are "skipped" rows, since the eager point covers them).

A phase that raises yields one `latency_ms` row, NaN, with status "oom" or "error" and the
message; later phases that need its output say so. Nothing here raises for a failing model.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from harness.errors import UserError
from harness.failure import classify, describe
from harness.measure.chain import PHASE_ORDER, PhaseChain, PhaseFailed, PhaseInputs, context_length
from harness.measure.cuda_graph import GraphedDecode, StaticDecode, hf_causal_lm
from harness.measure.energy import device_energy, joules_per_audio_second, joules_per_token
from harness.measure.measurement import Measurement
from harness.measure.memory import memory_meter
from harness.measure.timing import Timer, TimerSettings
from harness.schema import MODES
from models.lalm import LALM


@dataclass(frozen=True)
class PhaseSettings:
    """Which phases, how to time them, the execution mode, and which optional meters run."""

    phases: tuple[str, ...] = PHASE_ORDER
    timer: TimerSettings = field(default_factory=TimerSettings)
    mode: str = "eager"
    compile_backend: str = "inductor"
    memory: bool = True
    energy: bool = True
    energy_window_s: float = 1.0

    def __post_init__(self) -> None:
        unknown = [p for p in self.phases if p not in PHASE_ORDER]
        if unknown:
            raise UserError(f"unknown phase(s) {unknown}; valid: {', '.join(PHASE_ORDER)}")
        if self.mode not in MODES:
            raise UserError(f"unknown mode {self.mode!r}; valid: {', '.join(MODES)}")


@dataclass
class PhaseWork:
    """What one phase runs and what one call of it processes (whole batch).

    run: one call, the timed unit. setup: untimed, before every call. tokens / audio_seconds:
    handled per call, for throughput (tokens win) and RTF (audio). energy_run: what the energy
    window repeats (default: setup + run) and energy_calls: phase calls in one energy_run.
    """

    run: Callable[[], object]
    setup: Callable[[], object] | None = None
    tokens: float | None = None
    audio_seconds: float | None = None
    energy_run: Callable[[], object] | None = None
    energy_calls: int = 1
    energy_note: str = ""
    extra: list[Measurement] = field(default_factory=list)


def _release_after_oom(status: str, device: torch.device) -> None:
    if status == "oom" and device.type == "cuda":
        torch.cuda.empty_cache()


class PhaseRunner:
    """Builds each phase's work for one LALM and inputs, and measures it."""

    def __init__(self, lalm: LALM, inputs: PhaseInputs, settings: PhaseSettings, device: torch.device):
        self.lalm = lalm
        self.inputs = inputs
        self.settings = settings
        self.device = device
        self.chain = PhaseChain(lalm, inputs)
        self.timer = Timer(settings.timer, device)

    def _wrap(self) -> Callable[[Callable], Callable] | None:
        """How each timed model call is wrapped for the mode: compiled, or as it is."""
        if self.settings.mode == "compile":
            return lambda fn: torch.compile(fn, backend=self.settings.compile_backend)
        return None

    def work(self, phase: str) -> PhaseWork:
        """The phase's work; raises PhaseFailed when an input it needs cannot be computed."""
        lalm, inputs = self.lalm, self.inputs
        batch_audio = inputs.batch_size * inputs.audio_seconds
        if phase in ("fbank", "encoder"):
            return PhaseWork(self.chain.call(phase, self._wrap()), audio_seconds=batch_audio)
        if phase == "prefill":
            context = context_length(lalm, inputs)
            run = self.chain.call(phase, self._wrap())
            _, cache = self.chain.prefilled()
            state = Measurement(
                "state_bytes", float(lalm.state_bytes(cache)), "B", source="tensor_bytes",
                note=f"cache after {context} positions (audio + prompt), each tensor storage once, integer scalars (bookkeeping) left out",
            )
            return PhaseWork(run, tokens=inputs.batch_size * context, extra=[state])
        if phase == "decode":
            return self._decode_work()
        return PhaseWork(self.chain.call(phase, self._wrap()), tokens=inputs.batch_size * inputs.new_tokens,
                         audio_seconds=batch_audio)  # e2e (the chain refuses any other name)

    def _decode_work(self) -> PhaseWork:
        token, pristine = self.chain.prefilled()
        batch = self.inputs.batch_size
        if self.settings.mode == "cuda_graph":
            step = StaticDecode(hf_causal_lm(self.lalm.lm), self.lalm.lm.family, pristine, token,
                                context_length(self.lalm, self.inputs))
            graphed = GraphedDecode(step)

            def graph_step() -> None:
                graphed.reset()
                graphed()

            return PhaseWork(graphed, setup=graphed.reset, tokens=batch, energy_run=graph_step,
                             energy_note="each replay preceded by its cache rewind")
        wrap = self._wrap()
        decode_step = wrap(self.lalm.decode_step) if wrap is not None else self.lalm.decode_step
        live: dict[str, object] = {}

        def restore() -> None:
            live["cache"] = copy.deepcopy(pristine)

        steps = self.inputs.new_tokens

        def generate_steps() -> None:
            cache, tok = copy.deepcopy(pristine), token
            for _ in range(steps):
                logits, cache = decode_step(cache, tok)
                tok = logits.argmax(-1)

        return PhaseWork(lambda: decode_step(live["cache"], token), setup=restore, tokens=batch,
                         energy_run=generate_steps, energy_calls=steps,
                         energy_note=f"window repeats {steps} consecutive steps from one cache copy")

    def measure(self, phase: str) -> list[Measurement]:
        """All measurements of one phase; failures become NaN rows with a status and reason."""
        if self.settings.mode == "cuda_graph":
            if phase != "decode":
                return [Measurement.nan("latency_ms", "ms", "cuda_graph mode times the decode step only; "
                                        "the eager point covers this phase", status="skipped")]
            if self.device.type != "cuda":
                return [Measurement.nan("latency_ms", "ms", "CUDA graphs need a CUDA device", status="skipped")]
        try:
            work = self.work(phase)
            timing = self.timer.measure(work.run, work.setup)
        except PhaseFailed as exc:
            if exc.phase != phase:
                return [Measurement.nan("latency_ms", "ms", str(exc), status="error")]
            return [self._failed(exc.cause)]  # this phase's own untimed run (prefill's cache) failed
        except Exception as exc:
            return [self._failed(exc)]
        latency = timing.to_measurement()
        out = [latency, *derived(latency, work), *work.extra]
        if self.settings.memory:
            out += self._memory(work)
        if self.settings.energy:
            out += self._energy(work)
        return out

    def _failed(self, exc: Exception) -> Measurement:
        status = classify(exc)
        _release_after_oom(status, self.device)
        return Measurement.nan("latency_ms", "ms", describe(exc), source=self.timer.clock.source, status=status)

    def _side_run_status(self, exc: Exception) -> str:
        """The phase already ran in the timer, so a later failure is the meter's ("ok", NaN) unless
        the extra run itself ran out of memory, which is a result ("oom")."""
        status = classify(exc)
        _release_after_oom(status, self.device)
        return "oom" if status == "oom" else "ok"

    def _memory(self, work: PhaseWork) -> list[Measurement]:
        """One untimed call under the memory meter (the sampler thread would disturb timings)."""
        try:
            if work.setup is not None:
                work.setup()
            with memory_meter(self.device) as meter:
                work.run()
            return meter.measurements()
        except Exception as exc:
            return [Measurement.nan("peak_mem_bytes", "B", f"memory run failed: {describe(exc)}",
                                    status=self._side_run_status(exc))]

    def _energy(self, work: PhaseWork) -> list[Measurement]:
        def one_run() -> None:
            if work.setup is not None:
                work.setup()
            work.run()

        try:
            energy = device_energy(work.energy_run or one_run, self.device, self.settings.energy_window_s)
        except Exception as exc:
            energy = Measurement.nan("energy_j", "J", f"energy run failed: {describe(exc)}",
                                     status=self._side_run_status(exc))
        if energy.measured and work.energy_calls > 1:
            energy = Measurement(energy.metric, energy.value / work.energy_calls, energy.unit, n=energy.n,
                                 source=energy.source, note=f"per step: {energy.note}")
        if work.energy_note and energy.measured:
            energy = energy.with_note(work.energy_note)
        out = [energy]
        if work.tokens:
            out.append(joules_per_token(energy, work.tokens))
        if work.audio_seconds:
            out.append(joules_per_audio_second(energy, work.audio_seconds))
        return out


def _ratio(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else math.nan


def derived(latency: Measurement, work: PhaseWork) -> list[Measurement]:
    """Throughput and RTF from a latency; lo/hi follow from its p90/p10 (monotone transforms)."""
    if not latency.measured or latency.value <= 0:
        return []
    seconds = latency.value / 1e3
    lo_s, hi_s = latency.lo / 1e3, latency.hi / 1e3
    out = []
    count, unit = (work.tokens, "tokens/s") if work.tokens else (work.audio_seconds, "audio_s/s")
    if count:
        out.append(Measurement("throughput", count / seconds, unit, lo=_ratio(count, hi_s), hi=_ratio(count, lo_s),
                               n=latency.n, source="latency_ms", note=f"{count:g} per call / latency"))
    if work.audio_seconds:
        audio = work.audio_seconds
        out.append(Measurement("rtf", seconds / audio, "1", lo=lo_s / audio, hi=hi_s / audio, n=latency.n,
                               source="latency_ms", note=f"latency / {audio:g} s of audio (whole batch)"))
    return out


def run_phases(
    lalm: LALM, inputs: PhaseInputs, settings: PhaseSettings = PhaseSettings(), device: str | torch.device | None = None
) -> dict[str, list[Measurement]]:
    """Measure each requested phase of `lalm` (the models.LALM interface) on `inputs`.

    device defaults to the waveform's. Returns {phase: measurements} in PHASE_ORDER. Runs under
    `torch.no_grad()`, not `inference_mode()`: compiled callables fed inference tensors ran about
    1000x slower per call (torch 2.13, no recompiles reported), and for eager code the two cost
    the same.
    """
    device = torch.device(device) if device is not None else inputs.wave.device
    runner = PhaseRunner(lalm, inputs, settings, device)
    with torch.no_grad():
        return {phase: runner.measure(phase) for phase in PHASE_ORDER if phase in settings.phases}
