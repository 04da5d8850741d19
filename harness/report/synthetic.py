"""Synthetic run folders with known scaling laws: to test the report and to try it without a GPU.

`write_run` writes results.parquet, samples.parquet and run.json for a grid of variants,
audio lengths and batch sizes, covering every phase and metric the report draws. Costs follow
simple laws per kind of encoder and LM (attention quadratic in length, state-space scans
linear; each family says which it is), with multiplicative log-normal noise on the timing samples. Points at or beyond
`oom_from[variant]` seconds fail with status "oom", as a real sweep records them. Points at
`profile_seconds` carry profiles as a profiled run records them: module, role-group and
overhead rows, and a summary page under artifacts/<point_id>/profile/.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness import schema, store
from harness.report import profiles
from models import VARIANTS
from models.audio_tokens import TOKENS_PER_SECOND
from models.families import ENCODERS, LMS
from models.phases import CHAIN, PHASES

GIB = 2**30
PROMPT_TOKENS = 16
NEW_TOKENS = 32
SAMPLES_PER_POINT = 9


@dataclass(frozen=True)
class SyntheticSuite:
    """The grid: a length sweep at batch 1 and a batch sweep at `batch_seconds`."""

    variants: tuple[str, ...] = VARIANTS
    lengths: tuple[float, ...] = (5, 10, 30, 60, 120, 300, 600)
    batches: tuple[int, ...] = (1, 2, 4, 8, 16)
    batch_seconds: float = 30
    oom_from: dict[str, float] = field(default_factory=lambda: {"ast+llama": 600})
    noise: float = 0.05  # sigma of the log-normal noise on timing samples
    tasks: bool = True
    train: bool = True
    profile_seconds: tuple[float, ...] = (10, 30, 300)  # lengths whose points are profiled (every batch)
    seed: int = 0


def _kinds(variant: str) -> tuple[str, str]:
    """The laws a variant follows: ("attention" | "scan") for its encoder and for its LM."""
    encoder, lm = variant.split("+")
    return tuple("attention" if family.attention else "scan" for family in (ENCODERS[encoder], LMS[lm]))


def _context(seconds: float) -> float:
    return TOKENS_PER_SECOND * seconds + PROMPT_TOKENS


def _encoder_ms(encoder: str, seconds: float, batch: int) -> float:
    scale = seconds / 10
    return batch * (4.0 * scale**2 + 2.0 * scale + 3.0 if encoder == "attention" else 6.0 * scale + 3.0)


def _prefill_ms(lm: str, seconds: float, batch: int) -> float:
    ctx = _context(seconds)
    return batch * (0.05 * ctx + 4e-5 * ctx**2 + 2.0 if lm == "attention" else 0.08 * ctx + 2.0)


def _decode_ms(lm: str, seconds: float, batch: int) -> float:
    """Per generated token: LLaMA reads a KV cache that grows with context and batch."""
    ctx = _context(seconds)
    return (10.0 + 0.004 * ctx) * (1 + 0.15 * (batch - 1)) if lm == "attention" else 12.0 * (1 + 0.03 * (batch - 1))


def _state_bytes(lm: str, seconds: float, batch: int) -> float:
    ctx = _context(seconds) + NEW_TOKENS
    return batch * (2 * 32 * 4096 * 2 * ctx if lm == "attention" else 64 * 2560 * (2 * 16 + 4) * 2)


def _flops(encoder: str, lm: str, seconds: float, batch: int) -> dict[str, float]:
    scale, ctx = seconds / 10, _context(seconds)
    encoder_flops = batch * (1.8e11 * scale + 2e10 * scale**2 if encoder == "attention" else 1.2e11 * scale)
    prefill_flops = batch * (1.3e10 * ctx + 5e5 * ctx**2 if lm == "attention" else 5.5e9 * ctx)
    return {"encoder": encoder_flops, "prefill": prefill_flops, "e2e": encoder_flops + prefill_flops}


def _peak_bytes(encoder: str, lm: str, seconds: float, batch: int) -> float:
    weights = 13.5 * GIB if lm == "attention" else 5.6 * GIB
    scale = seconds / 10
    activations = batch * (0.05 * GIB * scale**2 if encoder == "attention" else 0.08 * GIB * scale)
    return weights + activations + _state_bytes(lm, seconds, batch)


# Self time of each role of a profiled phase, from the same laws as the phase timings: polynomial
# coefficients (constant, linear, quadratic) in s = seconds / 10 for fbank and encoder, in the
# context length for the LM phases. (phase, encoder or LM) -> role -> coefficients.
_ROLE_LAWS = {
    ("fbank", None): {"frontend": (0.17, 0.34), "other": (0.03, 0.06)},
    ("encoder", "attention"): {"attention": (0, 0, 4.0), "mlp": (0, 1.1), "projection": (0, 0.9), "embed": (1.0,),
                         "norm": (0.6,), "block": (1.2,), "other": (0.2,)},
    ("encoder", "scan"): {"scan": (0, 2.2), "mixer": (0, 1.6), "mlp": (0, 1.2), "projection": (0, 0.6),
                          "conv": (0, 0.4), "embed": (1.0,), "downsample": (0.8,), "norm": (0.4,), "block": (0.6,),
                          "other": (0.2,)},
    ("prefill", "attention"): {"attention": (0, 0.01, 4e-5), "mlp": (0, 0.022), "projection": (0, 0.014),
                           "norm": (0, 0.004), "projector": (0.4,), "head": (1.0,), "block": (0.4,), "other": (0.2,)},
    ("prefill", "scan"): {"scan": (0, 0.02), "mixer": (0, 0.02), "projection": (0, 0.03), "norm": (0, 0.01),
                           "projector": (0.4,), "head": (1.0,), "block": (0.4,), "other": (0.2,)},
    ("decode", "attention"): {"attention": (1.0, 0.004), "mlp": (3.6,), "projection": (2.4,), "head": (1.6,),
                          "norm": (0.6,), "block": (0.6,), "other": (0.2,)},
    ("decode", "scan"): {"scan": (2.8,), "mixer": (3.0,), "projection": (3.4,), "conv": (0.4,), "head": (1.6,),
                          "norm": (0.4,), "block": (0.2,), "other": (0.2,)},
}
_PHASE_COMPONENT = {"fbank": "frontend", "encoder": "encoder", "prefill": "lm", "decode": "lm"}
_PROFILE_SOURCE = "torch.profiler (CUDA kernel time)"


def _profile_overhead(phase: str, seconds: float) -> float:
    """Profiled / unprofiled - 1: short decode steps are distorted by the instrumentation, as on a real GPU."""
    return 0.35 if phase == "decode" and seconds < 60 else (-0.02 if phase == "encoder" else 0.03)


def _point_id(*parts) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:16]


class _Writer:
    """Accumulates rows and samples for one run."""

    def __init__(self, suite: SyntheticSuite, run_id: str):
        self.suite, self.run_id = suite, run_id
        self.rng = np.random.default_rng(suite.seed)
        self.rows: list[dict] = []
        self.samples: list[dict] = []
        self.files: dict[str, dict[str, bytes]] = {}  # point id -> its artifacts

    def point(self, variant: str, seconds: float, batch: int) -> dict:
        encoder, lm = variant.split("+")
        return {"run_id": self.run_id, "point_id": _point_id(variant, seconds, batch), "suite": "synthetic",
                "variant": variant, "encoder": encoder, "lm": lm, "size": "small", "device": "cuda",
                "dtype": "bf16", "batch_size": batch, "audio_seconds": seconds, "prompt_tokens": PROMPT_TOKENS,
                "new_tokens": NEW_TOKENS, "device_name": "Synthetic GPU", "git_sha": "0" * 40,
                "torch_version": "2.13.0", "transformers_version": "5.24.0",
                "scan_backend": "reference" if "scan" in _kinds(variant) else "",
                "attn_backend": "sdpa" if "attention" in _kinds(variant) else "", "mode": "eager"}

    def timing(self, point: dict, phase: str, true_ms: float) -> None:
        values = true_ms * self.rng.lognormal(0.0, self.suite.noise, SAMPLES_PER_POINT)
        lo, median, hi = np.percentile(values, [10, 50, 90])
        self.rows.append({**point, "phase": phase, "metric": "latency_ms", "value": median, "unit": "ms",
                          "lo": lo, "hi": hi, "n": len(values), "status": "ok", "error": "", "source": "synthetic"})
        self.samples += [{"run_id": self.run_id, "point_id": point["point_id"], "phase": phase,
                          "metric": "latency_ms", "i": i, "value": v, "unit": "ms"} for i, v in enumerate(values)]

    def value(self, point: dict, phase: str, metric: str, value: float, unit: str | None = None) -> None:
        self.rows.append({**point, "phase": phase, "metric": metric, "value": value,
                          "unit": unit or schema.METRIC_UNITS[metric], "lo": np.nan, "hi": np.nan, "n": 1,
                          "status": "ok", "error": "", "source": "synthetic"})

    def profile(self, point: dict, phase: str, module: str, metric: str, value: float, note: str = "") -> None:
        self.rows.append({**point, "phase": phase, "module": module, "metric": metric, "value": value,
                          "unit": schema.METRIC_UNITS[metric], "lo": np.nan, "hi": np.nan, "n": 5, "status": "ok",
                          "error": "", "source": _PROFILE_SOURCE, "note": note})

    def failure(self, point: dict, phases: tuple[str, ...], status: str = "oom") -> None:
        for phase in phases:
            self.rows.append({**point, "phase": phase, "metric": "latency_ms", "value": np.nan, "unit": "ms",
                              "lo": np.nan, "hi": np.nan, "n": 0, "status": status,
                              "error": "out of memory" if status == "oom" else status, "source": "synthetic"})


def _inference_point(w: _Writer, variant: str, seconds: float, batch: int) -> None:
    encoder, lm = _kinds(variant)
    point = w.point(variant, seconds, batch)
    if seconds >= w.suite.oom_from.get(variant, np.inf):
        w.failure(point, PHASES)
        return
    timings = {"fbank": 0.4 * seconds / 10 * batch + 0.2, "encoder": _encoder_ms(encoder, seconds, batch),
               "prefill": _prefill_ms(lm, seconds, batch), "decode": _decode_ms(lm, seconds, batch)}
    timings["e2e"] = sum(timings.values()) + (NEW_TOKENS - 1) * timings["decode"]
    for phase, ms in timings.items():
        w.timing(point, phase, ms)
    w.value(point, "decode", "throughput", 1000.0 * batch / timings["decode"])
    w.value(point, "prefill", "throughput", 1000.0 * batch * _context(seconds) / timings["prefill"])
    w.value(point, "encoder", "throughput", 1000.0 * batch * seconds / timings["encoder"], "audio_s/s")
    for phase, flops in _flops(encoder, lm, seconds, batch).items():
        w.value(point, phase, "flops", flops)
        w.value(point, phase, "flops_analytic", flops * 1.03)
    for phase in ("encoder", "prefill", "e2e"):
        w.value(point, phase, "peak_mem_bytes", _peak_bytes(encoder, lm, seconds, batch) * (0.8 if phase == "encoder" else 1))
    state = _state_bytes(lm, seconds, batch)
    w.value(point, "prefill", "state_bytes", state)
    w.value(point, "prefill", "state_bytes_analytic", state)
    if seconds in w.suite.profile_seconds:
        _profile_point(w, point, timings)


def _phase_parts(phase: str, encoder: str, lm: str, seconds: float) -> dict[tuple[str, str], float]:
    """(component, role) -> share of the phase's profiled time."""
    model = None if phase == "fbank" else (encoder if phase == "encoder" else lm)
    x = seconds / 10 if phase in ("fbank", "encoder") else _context(seconds)
    times = {}
    for role, coefficients in _ROLE_LAWS[phase, model].items():
        component = role if role in ("other", "projector") else _PHASE_COMPONENT[phase]
        times[component, role] = float(np.polynomial.polynomial.polyval(x, coefficients))
    total = sum(times.values())
    return {group: t / total for group, t in times.items()}


def _profile_point(w: _Writer, point: dict, timings: dict[str, float]) -> None:
    """Module, role-group and overhead rows of each phase, and the point's summary page."""
    encoder, lm = _kinds(point["variant"])
    summary = [f"# Profile: {point['variant']} {point['size']}, batch {point['batch_size']} x "
               f"{point['audio_seconds']:g} s audio (synthetic)"]
    for phase in CHAIN:
        overhead = _profile_overhead(phase, point["audio_seconds"])
        w.profile(point, phase, "", profiles.OVERHEAD, overhead, f"{profiles.verdict(overhead, 'ok')} (synthetic)")
        summary.append(f"## {phase}\n\n| group | share |\n|---|---|")
        for (component, role), share in _phase_parts(phase, encoder, lm, point["audio_seconds"]).items():
            group = f"{profiles.GROUP_PREFIX}{component}/{role}"
            w.profile(point, phase, group, "share", share)
            w.profile(point, phase, group, "latency_ms", share * timings[phase])
            # Module rows beside the group rows, summing to the phase too: two layers per role.
            modules = ["(unattributed)"] if role == "other" else [f"{component}.layers.{i}.{role}" for i in (0, 1)]
            for module in modules:
                w.profile(point, phase, module, "share", share / len(modules))
            summary.append(f"| {group} | {share:.1%} |")
    w.files[point["point_id"]] = {"profile/summary.md": ("\n\n".join(summary) + "\n").encode()}


def _train_points(w: _Writer, variant: str) -> None:
    encoder, lm = _kinds(variant)
    capacity = 80 * GIB
    for seconds in w.suite.lengths:
        per_sample = 3 * (_peak_bytes(encoder, lm, seconds, 2) - _peak_bytes(encoder, lm, seconds, 1))
        weights = _peak_bytes(encoder, lm, seconds, 1) - per_sample / 3
        max_batch = int((capacity - weights) // per_sample)
        point = w.point(variant, seconds, 1)
        point["point_id"] = _point_id("train", variant, seconds, 1)
        if max_batch < 1:
            w.failure(point, ("train_step",))
            continue
        w.value(point, "train_step", "max_batch", float(max_batch))
        for batch in w.suite.batches if seconds == w.suite.batch_seconds else (1,):
            if batch > max_batch:
                w.failure({**point, "batch_size": batch, "point_id": _point_id("train", variant, seconds, batch)},
                          ("train_step",))
                continue
            step = {**point, "batch_size": batch, "point_id": _point_id("train", variant, seconds, batch)}
            forward = _encoder_ms(encoder, seconds, batch) + _prefill_ms(lm, seconds, batch)
            w.timing(step, "train_step", 3 * forward)
            w.value(step, "train_step", "peak_mem_bytes", weights + per_sample * batch)


_ACCURACY = {"ast+llama": 0.652, "dass+mamba": 0.628, "dass+llama": 0.645, "ast+mamba": 0.611}


def _task_points(w: _Writer, variant: str) -> None:
    point = {**w.point(variant, 10, 1), "dataset": "esc50", "checkpoint": "synthetic"}
    point["point_id"] = _point_id("task", variant)
    w.value(point, "task", "accuracy", _ACCURACY.get(variant, 0.5))


def write_run(run_dir: str | Path, suite: SyntheticSuite | None = None, run_id: str = "synthetic") -> Path:
    """Writes a complete synthetic run folder; returns its path."""
    suite = suite or SyntheticSuite()
    path = Path(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    w = _Writer(suite, run_id)
    for variant in suite.variants:
        for seconds in suite.lengths:
            _inference_point(w, variant, seconds, 1)
        for batch in suite.batches:
            if batch != 1:
                _inference_point(w, variant, suite.batch_seconds, batch)
        if suite.train:
            _train_points(w, variant)
        if suite.tasks:
            _task_points(w, variant)
    environment = {"host": "synthetic-host", "git_sha": "0" * 40,
                   "packages": {"torch": "2.13.0", "transformers": "5.24.0"},
                   "gpus": [{"index": "0", "name": "Synthetic GPU", "memory_bytes": str(80 * GIB), "driver": "0.0"}]}
    store.write_meta(path, {"run_id": run_id, "suite_name": "synthetic", "source": "synthetic",
                            "suite": {"name": "synthetic", "variants": list(suite.variants)}, "state": "complete",
                            "created": "2025-01-01T00:00:00+00:00",
                            "sessions": [{"started": "2025-01-01T00:00:00+00:00", "env": environment,
                                          "finished": "2025-01-01T01:00:00+00:00"}]})
    for point_id, files in w.files.items():
        store.write_artifacts(path, point_id, files)
    store.write_part(path, "synthetic", schema.conform(w.rows), pd.DataFrame(w.samples))
    store.compact(path)
    return path
