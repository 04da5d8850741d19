"""Phases under the meters, with a small fake LALM that follows the models interface."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from harness import schema
from harness.errors import UserError
from harness.measure import phases
from harness.measure.chain import PHASE_ORDER, PhaseInputs
from harness.measure.measurement import Measurement
from harness.measure.phases import PhaseSettings, PhaseWork, derived, run_phases
from harness.measure.timing import TimerSettings
from models.state import tensor_bytes

FAST = TimerSettings(warmup=1, min_runs=3, max_runs=5, max_seconds=0.2)
TOKENS_PER_SECOND = 4  # the fake's audio tokens per second of audio
FRAMES_PER_TOKEN = 25  # 100 fbank frames per second / 4 tokens per second


class FakeCache:
    def __init__(self, state: torch.Tensor):
        self.state = state  # (B, L, D)


class FakeLALM:
    """The LALM interface at toy size. `fail` maps a method name to the exception it raises."""

    def __init__(self, fail: dict[str, Exception] | None = None, dim: int = 8, vocab: int = 11):
        self.spec = SimpleNamespace(variant="fake+fake", encoder="fake", lm="llama", size="tiny")
        self.fail = fail or {}
        self.embedding = torch.randn(vocab, dim)
        self.head = torch.randn(dim, vocab)
        self.decode_contexts: list[int] = []

    def _maybe_fail(self, name: str) -> None:
        if name in self.fail:
            raise self.fail[name]

    @staticmethod
    def num_audio_tokens(audio_seconds: float) -> int:
        return round(audio_seconds * TOKENS_PER_SECOND)

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, S) -> (B, S // 160, 128)."""
        self._maybe_fail("features")
        frames = wave.shape[1] // 160
        return wave[:, : frames * 160].reshape(wave.shape[0], frames, 160)[..., :128]

    def encode(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, T, 128) -> (B, T / 25, D)."""
        self._maybe_fail("encode")
        pooled = torch.nn.functional.avg_pool1d(feats.transpose(1, 2), FRAMES_PER_TOKEN).transpose(1, 2)
        return pooled[..., : self.embedding.shape[1]]

    @staticmethod
    def state_bytes(cache: FakeCache) -> int:
        return tensor_bytes(cache)

    def prefill(self, enc: torch.Tensor, prompt_ids: torch.Tensor) -> tuple[torch.Tensor, FakeCache]:
        self._maybe_fail("prefill")
        state = torch.cat([enc, self.embedding[prompt_ids]], dim=1)
        return state[:, -1] @ self.head, FakeCache(state)

    def decode_step(self, cache: FakeCache, token: torch.Tensor) -> tuple[torch.Tensor, FakeCache]:
        """Mutates the cache, as a DynamicCache does: one more position per step."""
        self._maybe_fail("decode_step")
        self.decode_contexts.append(cache.state.shape[1])
        cache.state = torch.cat([cache.state, self.embedding[token][:, None]], dim=1)
        return cache.state.mean(1) @ self.head, cache

    def generate(self, wave: torch.Tensor, prompt_ids: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        logits, cache = self.prefill(self.encode(self.features(wave)), prompt_ids)
        tokens = [logits.argmax(-1)]
        for _ in range(max_new_tokens - 1):
            logits, cache = self.decode_step(cache, tokens[-1])
            tokens.append(logits.argmax(-1))
        return torch.stack(tokens, dim=1)


def make_inputs(batch: int = 2, seconds: float = 2.0, prompt: int = 3, new_tokens: int = 4) -> PhaseInputs:
    torch.manual_seed(0)
    return PhaseInputs(torch.randn(batch, int(seconds * 16000)), torch.randint(0, 11, (batch, prompt)), new_tokens)


def by_metric(measurements: list[Measurement]) -> dict[str, Measurement]:
    return {m.metric: m for m in measurements}


def test_every_phase_is_measured_with_derived_metrics():
    inputs = make_inputs()
    results = run_phases(FakeLALM(), inputs, PhaseSettings(timer=FAST))
    assert list(results) == list(PHASE_ORDER)
    units = {"fbank": "audio_s/s", "encoder": "audio_s/s", "prefill": "tokens/s", "decode": "tokens/s",
             "e2e": "tokens/s"}
    for phase, measurements in results.items():
        m = by_metric(measurements)
        latency = m["latency_ms"]
        assert latency.status == "ok" and latency.value > 0 and 3 <= latency.n <= 5
        assert latency.lo <= latency.value <= latency.hi
        assert m["throughput"].unit == units[phase]
        assert ("rtf" in m) == (phase in ("fbank", "encoder", "e2e"))
        assert m["peak_mem_bytes"].source in ("proc.VmHWM", "getrusage.ru_maxrss", "psutil.rss")
        assert math.isnan(m["energy_j"].value) and m["energy_j"].note == "no CUDA device"
    e2e = by_metric(results["e2e"])
    assert e2e["throughput"].value == pytest.approx(2 * 4 / (e2e["latency_ms"].value / 1e3))
    assert e2e["rtf"].value == pytest.approx(e2e["latency_ms"].value / 1e3 / (2 * 2.0))


def test_prefill_reports_the_measured_cache_size():
    inputs = make_inputs(batch=2, seconds=2.0, prompt=3)
    state = by_metric(run_phases(FakeLALM(), inputs, PhaseSettings(phases=("prefill",), timer=FAST))["prefill"])
    context = 2.0 * TOKENS_PER_SECOND + 3
    assert state["state_bytes"].value == 2 * context * 8 * 4  # (B, L, D) float32


def test_every_decode_step_sees_the_prefill_context():
    lalm = FakeLALM()
    inputs = make_inputs(seconds=2.0, prompt=3, new_tokens=4)
    run_phases(lalm, inputs, PhaseSettings(phases=("decode",), timer=FAST, energy=False))
    context = int(2.0 * TOKENS_PER_SECOND + 3)
    assert len(lalm.decode_contexts) >= FAST.warmup + FAST.min_runs
    assert set(lalm.decode_contexts) == {context}


def test_a_failing_phase_is_nan_with_a_reason_and_later_phases_say_why():
    lalm = FakeLALM(fail={"encode": ValueError("encoder exploded\nsecond line")})
    results = run_phases(lalm, make_inputs(), PhaseSettings(timer=FAST, memory=False, energy=False))
    assert by_metric(results["fbank"])["latency_ms"].status == "ok"
    encoder = results["encoder"]
    assert len(encoder) == 1 and encoder[0].status == "error"
    assert math.isnan(encoder[0].value) and encoder[0].note == "ValueError: encoder exploded"
    for phase in ("prefill", "decode"):
        (m,) = results[phase]
        assert m.status == "error" and "needs the encoder output" in m.note
    assert results["e2e"][0].status == "error"


CPU_OUT_OF_MEMORY = [MemoryError(), RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to "
                                                 "allocate 8589934592 bytes"), RuntimeError("std::bad_alloc")]


@pytest.mark.parametrize("exc", CPU_OUT_OF_MEMORY, ids=["MemoryError", "allocator", "bad_alloc"])
def test_a_cpu_out_of_memory_inside_a_phase_is_oom_as_the_executor_says(exc):
    """One classifier: what the executor calls oom for a whole point is oom inside a phase too, so
    skip-larger-after and the report's OOM frontier see it."""
    from harness.failure import classify

    lalm = FakeLALM(fail={"encode": exc})
    (m,) = run_phases(lalm, make_inputs(), PhaseSettings(phases=("encoder",), timer=FAST))["encoder"]
    assert m.status == classify(exc) == "oom"


def test_out_of_memory_is_its_own_status():
    lalm = FakeLALM(fail={"decode_step": RuntimeError("CUDA out of memory. Tried to allocate 2 GiB")})
    results = run_phases(lalm, make_inputs(), PhaseSettings(phases=("decode",), timer=FAST))
    (m,) = results["decode"]
    assert m.status == "oom" and "out of memory" in m.note
    assert m.to_row(phase="decode")["error"] == m.note


def test_a_failing_meter_is_nan_and_the_phase_stays_ok(monkeypatch):
    def broken_meter(device):
        raise OSError("no /proc here")

    monkeypatch.setattr(phases, "memory_meter", broken_meter)
    m = by_metric(run_phases(FakeLALM(), make_inputs(), PhaseSettings(phases=("fbank",), timer=FAST))["fbank"])
    assert m["latency_ms"].status == "ok"
    assert math.isnan(m["peak_mem_bytes"].value) and "no /proc here" in m["peak_mem_bytes"].note
    assert m["peak_mem_bytes"].status == "ok"


def test_cuda_graph_mode_on_cpu_is_skipped_with_reasons():
    results = run_phases(FakeLALM(), make_inputs(), PhaseSettings(timer=FAST, mode="cuda_graph"))
    assert all(m.status == "skipped" for ms in results.values() for m in ms)
    assert results["decode"][0].note == "CUDA graphs need a CUDA device"
    assert "decode step only" in results["fbank"][0].note


def test_compile_mode_wraps_phase_callables():
    settings = PhaseSettings(phases=("encoder", "decode"), timer=FAST, mode="compile", compile_backend="eager",
                             memory=False, energy=False)
    results = run_phases(FakeLALM(), make_inputs(), settings)
    for measurements in results.values():
        latency = by_metric(measurements)["latency_ms"]
        assert latency.status == "ok" and latency.value > 0


def test_rows_pass_the_schema():
    identity = dict(run_id="r", point_id="p", suite="s", variant="fake+fake", encoder="fake", lm="llama",
                    size="tiny", device="cpu", dtype="float32", batch_size=2, audio_seconds=2.0,
                    prompt_tokens=3, new_tokens=4, mode="eager")
    lalm = FakeLALM(fail={"prefill": RuntimeError("boom")})
    results = run_phases(lalm, make_inputs(), PhaseSettings(timer=FAST))
    rows = [m.to_row(**identity, phase=phase) for phase, ms in results.items() for m in ms]
    table = schema.conform(rows)
    schema.validate(table)
    assert set(table["status"]) == {"ok", "error"}


def test_derived_spread_follows_latency_percentiles():
    latency = Measurement("latency_ms", 100.0, "ms", lo=80.0, hi=125.0, n=9)
    out = by_metric(derived(latency, PhaseWork(run=lambda: None, tokens=10, audio_seconds=5.0)))
    assert out["throughput"].value == pytest.approx(100.0)
    assert (out["throughput"].lo, out["throughput"].hi) == (pytest.approx(80.0), pytest.approx(125.0))
    assert out["rtf"].value == pytest.approx(0.02) and out["rtf"].lo == pytest.approx(0.016)
    assert derived(Measurement.nan("latency_ms", "ms", "failed"), PhaseWork(run=lambda: None, tokens=1)) == []


@pytest.mark.parametrize("kwargs, named", [
    ({"new_tokens": 0}, "new_tokens"),
    ({"prompt_ids": torch.zeros(3, 2, dtype=torch.long)}, "same B"),
])
def test_bad_inputs_are_user_errors(kwargs, named):
    base = dict(wave=torch.zeros(2, 16000), prompt_ids=torch.zeros(2, 3, dtype=torch.long), new_tokens=2)
    with pytest.raises(UserError, match=named):
        PhaseInputs(**{**base, **kwargs})


@pytest.mark.parametrize("kwargs, named", [({"phases": ("train",)}, "phase"), ({"mode": "jit"}, "mode")])
def test_bad_settings_are_user_errors(kwargs, named):
    with pytest.raises(UserError, match=named):
        PhaseSettings(**kwargs)


def test_a_phase_whose_own_untimed_run_fails_reports_its_own_status():
    lalm = FakeLALM(fail={"prefill": RuntimeError("DefaultCPUAllocator: not enough memory: out of memory")})
    results = run_phases(lalm, make_inputs(), PhaseSettings(phases=("prefill", "decode"), timer=FAST))
    (prefill,) = results["prefill"]
    assert prefill.status == "oom" and prefill.note.startswith("RuntimeError: DefaultCPUAllocator")
    (decode,) = results["decode"]
    assert decode.status == "error" and "needs the prefill output" in decode.note
