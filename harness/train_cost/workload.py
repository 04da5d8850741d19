"""The `train_step` phase of a sweep point: what `harness.workload` calls for it.

A point's shape maps onto a training batch as: `batch_size` clips of `audio_seconds`, with
`prompt_tokens` instruction tokens and `new_tokens` answer tokens each (the loss is on the
answer, as in teacher-forced instruction tuning). `[measure.train]` (harness.train_settings)
says how it trains; `measure.meters` which meters run ("memory", "flops", "energy").
"""
from __future__ import annotations

import torch

from harness.measure.measurement import Measurement
from harness.measure.timing import TimerSettings
from harness.train_cost.step import TrainInputs, TrainStepSettings, run_train_step
from harness.points import Point
from harness.suite import Measure
from harness.train_cost.max_batch import find_max_batch, max_batch_measurement
from models.lalm import LALM


def train_inputs(point: Point, seed: int) -> TrainInputs:
    return TrainInputs(point.batch_size, point.audio_seconds, point.prompt_tokens, point.new_tokens, seed)


def step_settings(measure: Measure, timer: TimerSettings) -> TrainStepSettings:
    train = measure.train
    return TrainStepSettings(stage=train.stage, precision=train.precision,
                             activation_checkpointing=train.activation_checkpointing, timer=timer,
                             memory="memory" in measure.meters, flops="flops" in measure.meters,
                             energy="energy" in measure.meters)


def measure_train_step(lalm: LALM, point: Point, measure: Measure, timer: TimerSettings) -> list[Measurement]:
    """One optimiser step of `lalm` at the point's shape, under the meters. Prepares `lalm` for
    training in place (LoRA adapters, train mode): call it after every inference phase."""
    inputs = train_inputs(point, measure.seed)
    return run_train_step(lalm, inputs, step_settings(measure, timer), torch.device(point.device))


def search_max_batch(point: Point, measure: Measure) -> list[Measurement]:
    """[max_batch] at batch-1 points when `[measure.train] max_batch` asks for it, else [].

    The largest batch belongs to the configuration, not to one batch size, so it is searched
    once per configuration, at its batch-1 point. Call it before building a model in this
    process: on a GPU, the search's tries need the device's memory to themselves.
    """
    if not measure.train.max_batch or point.batch_size != 1:
        return []
    return [max_batch_measurement(find_max_batch(point, measure), point, measure)]
