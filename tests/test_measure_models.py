"""The phases on every real variant at tiny size (random weights), and the static decode path."""
from __future__ import annotations

import copy
import math

import pytest
import torch

from harness.measure.cuda_graph import GraphedDecode, StaticDecode, hf_causal_lm, recurrent_state_tensors
from harness.measure.chain import PHASE_ORDER, PhaseInputs, context_length
from harness.measure.phases import PhaseSettings, run_phases
from models.state import state_bytes
from harness.measure.timing import TimerSettings
from models import VARIANTS, build

FAST = TimerSettings(warmup=1, min_runs=2, max_runs=3, max_seconds=0.1)


def inputs_for(device: str = "cpu", batch: int = 1, seconds: float = 1.0) -> PhaseInputs:
    torch.manual_seed(0)
    return PhaseInputs(torch.randn(batch, int(seconds * 16000), device=device),
                       torch.randint(0, 100, (batch, 4), device=device), new_tokens=2)


def prefilled(lalm, inputs: PhaseInputs) -> tuple[torch.Tensor, object]:
    logits, cache = lalm.prefill(lalm.encode(lalm.features(inputs.wave)), inputs.prompt_ids)
    return logits.argmax(-1), cache


def measure_recording_decode_state(lalm, inputs: PhaseInputs, settings: PhaseSettings):
    """run_phases, plus the cache size every decode step started from (timed decode steps first)."""
    state_sizes: list[int] = []
    step = lalm.decode_step

    def recording_step(cache, token):
        state_sizes.append(state_bytes(cache))
        return step(cache, token)

    lalm.decode_step = recording_step
    return run_phases(lalm, inputs, settings), state_sizes


def check_measured(lalm, inputs: PhaseInputs, settings: PhaseSettings) -> None:
    results, state_sizes = measure_recording_decode_state(lalm, inputs, settings)
    assert list(results) == [p for p in PHASE_ORDER if p in settings.phases]
    for phase, measurements in results.items():
        latency = measurements[0]
        assert latency.metric == "latency_ms" and latency.status == "ok", (phase, latency.note)
        assert latency.value > 0
    with torch.inference_mode():
        _, cache = prefilled(lalm, inputs)
    state = {m.metric: m for m in results["prefill"]}["state_bytes"]
    assert state.value == lalm.state_bytes(cache) > 0  # the harness and the model count alike
    timed_decode = state_sizes[: settings.timer.warmup + settings.timer.min_runs]  # before e2e's steps
    assert set(timed_decode) == {state.value}


@pytest.mark.parametrize("variant", ["ast+llama", "ast+mamba"])
def test_lm_phases_of_each_lm_are_measured(variant):
    settings = PhaseSettings(phases=("prefill", "decode"), timer=FAST, memory=False, energy=False)
    check_measured(build(variant, "tiny"), inputs_for(), settings)


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_phase_of_every_variant_is_measured(variant):
    check_measured(build(variant, "tiny"), inputs_for(), PhaseSettings(timer=FAST, energy=False))


REPLAYS = 3  # every replay after a reset must equal the first eager step


@pytest.mark.parametrize("variant", ["ast+llama", "ast+mamba"])
def test_static_decode_matches_the_eager_step(variant):
    """What GraphedDecode does, on the CPU: steps that each advance the cache, each after a reset
    that must undo the step before it in place (Mamba's conv and SSM state included)."""
    lalm = build(variant, "tiny")
    inputs = inputs_for(batch=2)
    with torch.inference_mode():
        token, cache = prefilled(lalm, inputs)
        expected, _ = lalm.decode_step(copy.deepcopy(cache), token)
        step = StaticDecode(hf_causal_lm(lalm.lm), lalm.lm.family, cache, token, context_length(lalm, inputs))
        addresses = [t.data_ptr() for t in recurrent_state_tensors(step.cache)]
        assert bool(addresses) == (lalm.spec.lm == "mamba")
        for _ in range(REPLAYS):  # warm-up and then replays, each after a reset
            step.reset()
            torch.testing.assert_close(step(), expected)
        assert [t.data_ptr() for t in recurrent_state_tensors(step.cache)] == addresses  # graph-safe


@pytest.mark.gpu
@pytest.mark.parametrize("variant", ["ast+llama", "ast+mamba"])
def test_graphed_decode_matches_the_eager_step(variant):
    lalm = build(variant, "tiny", device="cuda")
    inputs = inputs_for(device="cuda", batch=2)
    with torch.inference_mode():
        token, cache = prefilled(lalm, inputs)
        expected, _ = lalm.decode_step(copy.deepcopy(cache), token)
        graphed = GraphedDecode(StaticDecode(hf_causal_lm(lalm.lm), lalm.lm.family, cache, token,
                                             context_length(lalm, inputs)))
        for _ in range(REPLAYS):
            graphed.reset()
            torch.testing.assert_close(graphed(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["eager", "cuda_graph"])
def test_cuda_phases_are_measured_with_cuda_events(mode):
    lalm = build("ast+llama", "tiny", device="cuda")
    results = run_phases(lalm, inputs_for(device="cuda"), PhaseSettings(timer=FAST, mode=mode, energy_window_s=0.2))
    decode = {m.metric: m for m in results["decode"]}
    assert decode["latency_ms"].status == "ok" and decode["latency_ms"].source == "cuda_event"
    assert decode["latency_ms"].value > 0
    assert decode["peak_mem_bytes"].source == "torch.cuda.max_memory_allocated"
    energy = decode["energy_j"]
    assert energy.value > 0 or (math.isnan(energy.value) and energy.note)
