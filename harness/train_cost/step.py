"""One fine-tuning step of an LALM under the meters: time, memory, FLOPs, parameters, energy.

The step is `models.finetune.TrainStep`: zero the gradients, forward over [audio; prompt;
answer] with the loss on the answer tokens, backward, gradient clipping, AdamW update — in one
of the papers' stages (projector only, or encoder + projector + LoRA on the LM), optionally
under bf16 autocast and with activation checkpointing. Its input is a seeded random batch whose
fbank is computed beforehand (data loading, not the step).

Order, so each figure sees the state it describes:
1. memory: the first two steps of a fresh optimiser under the memory meter. The figure is the
   peak above what was resident before (weights and the batch): activations, gradients and the
   AdamW moments, which the first step allocates and the second holds through its forward and
   backward — what training needs beyond the weights. Before it, only a forward and backward on
   a one-clip, shortest-length batch, so that one-time costs (kernel loading, thread pools,
   library workspaces) stay out while the CPU allocator has almost no freed memory to reuse
   unseen.
2. latency: `Timer` repeats the step (warm-up first), one sample per optimiser step.
3. FLOPs: one step under `FlopCounter`, forward + backward (+ the optimiser's elementwise update,
   which the convention does not count), against `harness.train_cost.analytic`.
4. energy per step (CUDA, NVML), when asked.

A step that fails (out of memory included) gives one NaN `latency_ms` row with its status.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from harness.failure import classify, describe
from harness.measure.energy import device_energy
from harness.measure.flops import FlopCount, FlopCounter, flop_measurements
from harness.measure.measurement import Measurement
from harness.measure.memory import memory_meter
from harness.measure.phases import PhaseWork, derived
from harness.measure.timing import Timer, TimerSettings
from harness.train_cost.analytic import train_step_costs
from models.finetune import TrainBatch, TrainStep, random_batch, train_step_for
from models.finetune_stages import STAGES
from models.lalm import LALM

MEMORY_STEPS = 2  # the second step runs with the first step's AdamW moments resident
WARM_UP_SECONDS = 0.5  # the shortest clip: every length up to 0.625 s pads to 64 fbank frames


@dataclass(frozen=True)
class TrainInputs:
    """The batch of one step: `batch_size` clips of `audio_seconds`, `prompt_tokens` prompt ids
    and `answer_tokens` answer ids each (the loss is on the answer)."""

    batch_size: int
    audio_seconds: float
    prompt_tokens: int
    answer_tokens: int
    seed: int = 0

    def batch(self, lalm: LALM) -> TrainBatch:
        return random_batch(lalm, self.batch_size, self.audio_seconds, self.prompt_tokens, self.answer_tokens,
                            self.seed)

    def warm_up_batch(self, lalm: LALM) -> TrainBatch:
        """One clip of the shortest length, same text: runs every kernel, allocates little."""
        return random_batch(lalm, 1, WARM_UP_SECONDS, self.prompt_tokens, self.answer_tokens, self.seed)


@dataclass(frozen=True)
class TrainStepSettings:
    """stage: a `models.finetune_stages.STAGES` name. precision: "off" or "bf16" (autocast)."""

    stage: str = "lora"
    precision: str = "off"
    activation_checkpointing: bool = False
    timer: TimerSettings = field(default_factory=TimerSettings)
    memory: bool = True
    flops: bool = True
    energy: bool = False
    energy_window_s: float = 1.0


def count_step_flops(step: TrainStep, batch: TrainBatch) -> FlopCount:
    """FLOPs of one optimiser step (forward, backward, update), with what was not counted."""
    with FlopCounter() as counter:
        step(batch)
    return counter.result


def _parameter_rows(lalm: LALM, step: TrainStep, stage: str, lora_rank: int) -> list[Measurement]:
    total = sum(p.numel() for p in lalm.parameters())
    trainable = sum(p.numel() for p in step.params)
    chosen = STAGES[stage]
    what = ", ".join(chosen.trainable)
    if chosen.lora:
        what += f" (the LM through LoRA r={lora_rank} on {', '.join(lalm.lm.family.lora_targets)})"
    return [
        Measurement("params", float(total), "1", source="model tensors",
                    note="every parameter of the LALM, LoRA adapters included, tied tensors once"),
        Measurement("trainable_params", float(trainable), "1", source="model tensors",
                    note=f"stage {stage}: trains {what}"),
    ]


def _train_state_bytes(lalm: LALM, step: TrainStep) -> Measurement:
    weights = sum(p.numel() * p.element_size() for p in lalm.parameters())
    moments = sum(t.numel() * t.element_size() for state in step.optimizer.state.values()
                  for t in state.values() if isinstance(t, torch.Tensor))
    return Measurement("train_state_bytes", float(weights + moments), "B", source="model and optimiser tensors",
                       note=f"resident between steps: weights {weights} B + AdamW state {moments} B")


class TrainStepRunner:
    """Measures one step configuration of one LALM; `measure()` never raises for the model."""

    def __init__(self, lalm: LALM, inputs: TrainInputs, settings: TrainStepSettings, device: torch.device):
        self.lalm = lalm
        self.inputs = inputs
        self.settings = settings
        self.device = device
        self.timer = Timer(settings.timer, device)

    def measure(self) -> list[Measurement]:
        s = self.settings
        try:
            step = train_step_for(self.lalm, s.stage, s.precision, s.activation_checkpointing)
            batch = self.inputs.batch(self.lalm)
            memory = self._memory(step, batch) if s.memory else []
            timing = self.timer.measure(lambda: step(batch))
        except Exception as exc:  # noqa: BLE001 - a failing step is a result (oom above all)
            return [self._failed(exc)]
        latency = timing.to_measurement()
        work = PhaseWork(lambda: step(batch), tokens=batch.tokens,
                         audio_seconds=self.inputs.batch_size * self.inputs.audio_seconds)
        out = [latency, *derived(latency, work), *memory, _train_state_bytes(self.lalm, step),
               *_parameter_rows(self.lalm, step, s.stage, step.recipe.lora_rank)]
        if s.flops:
            out += self._flops(step, batch)
        if s.energy:
            out.append(self._energy(step, batch))
        return out

    def _failed(self, exc: Exception) -> Measurement:
        # The executor's classification: it also knows the CPU allocator's and MemoryError's wording.
        status = classify(exc)
        if status == "oom" and self.device.type == "cuda":
            torch.cuda.empty_cache()
        return Measurement.nan("latency_ms", "ms", describe(exc), source=self.timer.clock.source, status=status)

    def _memory(self, step: TrainStep, batch: TrainBatch) -> list[Measurement]:
        step.warm_up(self.inputs.warm_up_batch(self.lalm))
        with memory_meter(self.device) as meter:
            for _ in range(MEMORY_STEPS):
                step(batch)
        how = (f"first {MEMORY_STEPS} steps of a fresh optimiser: activations, gradients and AdamW moments "
               "above the weights and the batch")
        return [m.with_note(how) if m.metric == "peak_mem_bytes" and m.measured else m for m in meter.measurements()]

    def _flops(self, step: TrainStep, batch: TrainBatch) -> list[Measurement]:
        i = self.inputs
        stage = STAGES[self.settings.stage]
        costs = train_step_costs(self.lalm.spec, stage, i.batch_size, i.audio_seconds,
                                 i.prompt_tokens + i.answer_tokens, step.recipe.lora_rank,
                                 self.settings.activation_checkpointing)
        try:
            count = count_step_flops(step, batch)
        except Exception as exc:  # noqa: BLE001 - the step already ran; a counter failure is the meter's
            reason = f"the step could not run under the counter: {describe(exc)}"
            return [Measurement.nan("flops", "FLOP", reason, source="torch.FlopCounterMode"),
                    Measurement("flops_analytic", float(sum(costs.values())), "FLOP",
                                source="harness.train_cost.analytic")]
        rows = flop_measurements(count, costs)
        convention = ("forward + backward of one step; the optimiser's elementwise update is not counted "
                      "(harness.train_cost.analytic states the convention)")
        return [m.with_note(convention) if m.metric == "flops_analytic" else m for m in rows]

    def _energy(self, step: TrainStep, batch: TrainBatch) -> Measurement:
        try:
            return device_energy(lambda: step(batch), self.device, self.settings.energy_window_s)
        except Exception as exc:  # noqa: BLE001 - the step already ran; only running out of memory is a result
            status = "oom" if classify(exc) == "oom" else "ok"
            return Measurement.nan("energy_j", "J", f"energy run failed: {describe(exc)}", status=status)


def run_train_step(lalm: LALM, inputs: TrainInputs, settings: TrainStepSettings = TrainStepSettings(),
                   device: str | torch.device | None = None) -> list[Measurement]:
    """Measure one optimiser step of `lalm` (which this prepares for training in place: LoRA
    adapters, train mode, requires_grad — so give it a model no other phase needs afterwards).

    device defaults to the model's. Returns latency_ms, throughput (tokens/s), rtf,
    peak_mem_bytes (and the CUDA memory rows), train_state_bytes, params, trainable_params,
    flops, flops_analytic, flop_coverage and energy_j, as the settings ask.
    """
    device = torch.device(device) if device is not None else lalm.device
    return TrainStepRunner(lalm, inputs, settings, device).measure()
