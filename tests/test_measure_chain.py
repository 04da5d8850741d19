"""The phase chain: each phase's input is the phase before it, computed once; a failed input names
its phase; the meters, the FLOP counter and the kernel gate all run their phases through it."""
from __future__ import annotations

from collections import Counter

import pytest
import torch

from harness.gate import kernels
from harness.measure import flops
from harness.measure.chain import PhaseChain, PhaseFailed
from harness.measure.phases import PhaseSettings, run_phases
from harness.measure.timing import TimerSettings
from tests.test_measure_phases import FakeLALM, make_inputs


class CountingLALM(FakeLALM):
    """FakeLALM that counts its model calls."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls: Counter = Counter()

    def features(self, wave):
        self.calls["features"] += 1
        return super().features(wave)

    def encode(self, feats):
        self.calls["encode"] += 1
        return super().encode(feats)

    def prefill(self, enc, prompt_ids):
        self.calls["prefill"] += 1
        return super().prefill(enc, prompt_ids)


def test_each_input_is_the_phase_before_it_computed_once():
    lalm = CountingLALM()
    chain = PhaseChain(lalm, make_inputs())
    decode = chain.call("decode")  # needs the prefill, which needs the encoder, which needs the fbank
    assert lalm.calls == {"features": 1, "encode": 1, "prefill": 1}
    chain.call("encoder")()
    chain.call("prefill")
    assert lalm.calls == {"features": 1, "encode": 2, "prefill": 1}  # only the call asked for ran again
    _, cache = chain.prefilled()
    context = cache.state.shape[1]
    decode()
    assert lalm.decode_contexts == [context]


def test_an_input_that_cannot_be_computed_names_its_phase():
    chain = PhaseChain(FakeLALM(fail={"encode": MemoryError("no room")}), make_inputs())
    with pytest.raises(PhaseFailed, match="needs the encoder output, which failed: MemoryError: no room") as info:
        chain.call("decode")
    assert info.value.phase == "encoder"


def test_wrap_wraps_the_timed_call_and_not_the_inputs():
    lalm = CountingLALM()
    wrapped = []
    chain = PhaseChain(lalm, make_inputs())
    chain.call("prefill", wrap=lambda fn: wrapped.append(fn.__name__) or fn)()
    assert wrapped == ["prefill"]


def test_the_meters_the_counter_and_the_gate_drive_the_same_chain(monkeypatch):
    driven: Counter = Counter()
    call, output = PhaseChain.call, PhaseChain.output

    def spy_call(self, phase, wrap=None):
        driven[phase] += 1
        return call(self, phase, wrap)

    def spy_output(self, phase):
        driven[f"output:{phase}"] += 1
        return output(self, phase)

    monkeypatch.setattr(PhaseChain, "call", spy_call)
    monkeypatch.setattr(PhaseChain, "output", spy_output)
    settings = PhaseSettings(phases=("fbank", "encoder", "prefill"), memory=False, energy=False,
                             timer=TimerSettings(warmup=0, min_runs=1, max_runs=1))
    run_phases(FakeLALM(), make_inputs(), settings)
    assert {"fbank", "encoder", "prefill"} <= set(driven)
    driven.clear()
    with torch.inference_mode():
        flops.count_phase(PhaseChain(FakeLALM(), make_inputs()), "prefill")
    assert driven["prefill"] == 1 and driven["output:encoder"] >= 1
    driven.clear()
    kernels.build("lalm_forward[ast+llama]")()
    kernels.build("decode_step[llama]")()
    assert driven["output:prefill"] >= 2 and driven["decode"] == 1
