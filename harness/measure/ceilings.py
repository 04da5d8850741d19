"""Machine ceilings: the peak matmul FLOP/s per dtype and the memory bandwidth a run can reach.

Measured once per run with small standard microbenchmarks, in the spirit of STREAM and of the
matmul sweeps in optimum-benchmark: each figure is the best of several timed calls (a peak is an
upper bound, so the fastest call is the estimate and the others are noise from below).

- matmul: `a @ b` on square (n, n) operands for a few n, 2 n^3 FLOPs per call (the project's
  convention: one multiply-add is 2 FLOPs), best over sizes and calls, per dtype.
- read: `x.sum()` over an array much larger than the caches: its bytes per second.
- copy: `y.copy_(x)`: bytes read plus bytes written per second (STREAM's convention).

The whole measurement is bounded by a budget (about a second or two), and runs in a child
interpreter (`capture`) so that a CUDA measurement never initialises CUDA in the driver, and the
run's thread setting applies without changing the driver's.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch

from harness.schema import DTYPES
from harness.threads import thread_environment

# Matmul sizes per device: big enough to leave dispatch overhead behind, small enough that one
# call stays well inside the budget (a CPU without native half-precision kernels is slow at fp16).
MATMUL_SIZES = {"cpu": (256, 512, 1024), "cuda": (2048, 4096, 8192)}
# Bandwidth arrays: several times the last-level cache on CPUs, and enough to fill HBM's pipes.
STREAM_BYTES = {"cpu": 256 << 20, "cuda": 1 << 30}
BUDGET_S = 1.5  # for the whole measurement, shared between the matmuls and the streams


@dataclass(frozen=True)
class Ceilings:
    """What a device can do at best, measured or from its datasheet.

    flops_per_s: dtype name -> peak dense matmul FLOP/s (NaN where not measured or published).
    read_bytes_per_s / copy_bytes_per_s: memory bandwidth reading, and copying (read + write).
    memory_bytes: the device's memory (0 when unknown). source: "measured" or the datasheet.
    """

    device: str
    name: str
    flops_per_s: dict[str, float]
    read_bytes_per_s: float
    copy_bytes_per_s: float
    memory_bytes: int = 0
    threads: int = 0
    source: str = "measured"
    detail: dict[str, str] = field(default_factory=dict)  # how each figure was had, for the record

    @property
    def bandwidth(self) -> float:
        """The roofline's bandwidth: the best bytes per second seen, reading or copying."""
        return max(self.read_bytes_per_s, self.copy_bytes_per_s)

    def peak_flops(self, dtype: str) -> float:
        """Peak FLOP/s for `dtype` (NaN when unknown)."""
        return self.flops_per_s.get(dtype, math.nan)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Ceilings:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known["flops_per_s"] = {k: float(v) for k, v in known.get("flops_per_s", {}).items()}
        return cls(**known)


def best_seconds(call: Callable[[], object], timer: Callable[[Callable[[], object]], float],
                 deadline: float, min_calls: int = 2, max_calls: int = 20) -> float:
    """The fastest of repeated timed calls: at least `min_calls`, more until `deadline`
    (`time.perf_counter()` value) or `max_calls`. The first call is a warm-up and is not kept."""
    call()
    best = math.inf
    for i in range(max_calls):
        best = min(best, timer(call))
        if i + 1 >= min_calls and time.perf_counter() >= deadline:
            break
    return best


def cpu_timer(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def cuda_timer(call: Callable[[], object]) -> float:
    """One call timed with CUDA events on the current stream, after the queue has drained."""
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    call()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3


def matmul_flops_per_s(device: str, dtype: torch.dtype, sizes: tuple[int, ...], timer, budget_s: float) -> float:
    """Best 2 n^3 / seconds over `sizes`; stops growing n once a call takes a fifth of the budget."""
    best = 0.0
    start = time.perf_counter()
    for i, n in enumerate(sizes):
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        deadline = start + budget_s * (i + 1) / len(sizes)
        seconds = best_seconds(lambda: a @ b, timer, deadline)
        best = max(best, 2 * n**3 / seconds)
        if seconds > budget_s / 5:
            break
    return best


def stream_bytes_per_s(device: str, nbytes: int, timer, budget_s: float) -> tuple[float, float]:
    """(read, copy) bytes per second over float32 arrays of `nbytes` each."""
    x = torch.ones(nbytes // 4, device=device)
    y = torch.empty_like(x)
    half = time.perf_counter() + budget_s / 2
    read = nbytes / best_seconds(x.sum, timer, half)
    copy = 2 * nbytes / best_seconds(lambda: y.copy_(x), timer, half + budget_s / 2)
    return read, copy


def measure(device: str = "cpu", threads: int = 0, budget_s: float = BUDGET_S,
            sizes: tuple[int, ...] | None = None, stream_bytes: int | None = None) -> Ceilings:
    """Measure this process's ceilings on `device` ("cpu" or "cuda") with `threads` torch threads
    (0: torch's default). Half the budget goes to the three matmul dtypes, half to the streams."""
    kind = torch.device(device).type
    if threads:
        torch.set_num_threads(threads)
    timer = cuda_timer if kind == "cuda" else cpu_timer
    sizes = sizes or MATMUL_SIZES[kind]
    flops = {name: matmul_flops_per_s(device, getattr(torch, name), sizes, timer, budget_s / 2 / len(DTYPES))
             for name in DTYPES}
    read, copy = stream_bytes_per_s(device, stream_bytes or STREAM_BYTES[kind], timer, budget_s / 2)
    if kind == "cuda":
        props = torch.cuda.get_device_properties(device)
        name, memory = props.name, int(props.total_memory)
    else:
        from harness.env import cpu_name

        import psutil

        name, memory = cpu_name(), int(psutil.virtual_memory().total)
    detail = {"matmul": f"square matmuls n in {list(sizes)}, best call", "read": "x.sum() over float32",
              "copy": "y.copy_(x), bytes read + written"}
    return Ceilings(kind, name, flops, read, copy, memory, torch.get_num_threads(), "measured", detail)


def capture(device: str, threads: int = 0, timeout_s: float = 120.0) -> dict:
    """Ceilings measured in a child interpreter, as a dict for run.json; {"error": ...} if that fails.

    A child keeps CUDA out of the driver and the run's thread setting out of the driver's torch;
    its environment says the run's threads, whatever OMP_NUM_THREADS the driver holds.
    """
    command = [sys.executable, "-m", "harness.measure.ceilings", device, str(threads)]
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=True,
                             env=thread_environment(threads))
        return json.loads(out.stdout)
    except (OSError, subprocess.SubprocessError, json.JSONDecodeError) as err:
        stderr = getattr(err, "stderr", "") or ""
        return {"error": f"{type(err).__name__}: {str(err).strip()} {stderr.strip()[-300:]}".strip()}


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1], int(sys.argv[2])).as_dict()))
