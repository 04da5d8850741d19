"""A stand-in workload for runner, store and executor tests: instant, and able to fail on demand.

Selected with `run.workload = "tests.fake_workload:measure"`. A point's prompt_tokens picks
its behaviour (FAULTS); any other value (and "slow", after a pause) measures normally, with
deterministic fake numbers that grow with audio length and batch, and a state that grows only
for LLaMA (a KV cache).
"""
from __future__ import annotations

import os
import signal
import time

from harness.points import Point, PointResult
from models.audio_tokens import TOKENS_PER_SECOND

FAULTS = {"raise": 901, "memory": 902, "hang": 903, "sigkill": 904, "cuda_oom": 905, "slow": 906, "cuda_alloc": 907}
SLOW_SECONDS = 0.4
STATE_BYTES_PER_TOKEN = 4096
MAMBA_STATE_BYTES = 65536


def _fail(kind: str) -> None:
    if kind == "raise":
        raise ValueError("fake workload failure")
    if kind == "memory":
        hoard = []
        while True:  # until the memory cap stops it
            hoard.append(bytearray(64 * 2**20))
    if kind == "hang":
        while True:
            time.sleep(1)
    if kind == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if kind == "cuda_oom":
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    if kind == "cuda_alloc":  # a real torch.OutOfMemoryError from the CUDA allocator
        import torch

        torch.empty(1 << 50, dtype=torch.uint8, device="cuda")
    if kind == "slow":  # then measures normally: gives a test time to interrupt a sweep
        time.sleep(SLOW_SECONDS)


def measure(point: Point, settings) -> PointResult:
    for kind, prompt in FAULTS.items():
        if point.prompt_tokens == prompt:
            _fail(kind)
    work = point.audio_seconds * point.batch_size
    rows, samples = [], []
    for phase in settings.phases:
        values = [work * (1.0 + 0.01 * i) for i in range(settings.repeats)]
        ordered = sorted(values)
        rows.append({"phase": phase, "metric": "latency_ms", "value": ordered[len(ordered) // 2], "unit": "ms",
                     "lo": ordered[0], "hi": ordered[-1], "n": len(values), "source": "fake"})
        samples += [{"phase": phase, "metric": "latency_ms", "value": v} for v in values]
    tokens = point.batch_size * (int(point.audio_seconds * TOKENS_PER_SECOND) + point.prompt_tokens + point.new_tokens)
    state = tokens * STATE_BYTES_PER_TOKEN if point.lm == "llama" else point.batch_size * MAMBA_STATE_BYTES
    rows.append({"phase": "e2e", "metric": "state_bytes", "value": state, "unit": "B", "n": 1, "source": "fake"})
    files = {"trace/points.txt": point.label.encode()}
    return PointResult(rows, samples, files)


def threads(point: Point, settings) -> PointResult:
    """The CPU threads the point ran on, torch's count (`run.workload = "tests.fake_workload:threads"`)."""
    import torch

    row = {"phase": "e2e", "metric": "threads", "value": torch.get_num_threads(), "unit": "1", "n": 1, "source": "fake"}
    return PointResult([row], [], {})
