"""The largest batch whose training step fits in memory, found by search.

For one configuration (variant, size, audio length, dtype, training setting): try batch 1, 2,
4, ... until a try runs out of memory (or `max_batch_limit` fits), then bisect between the
last batch that fitted and the first that did not. "Fits" means the model builds and the first
two optimiser steps run (the second holds the AdamW moments through its forward and backward:
the steady state of training).

Every try runs in a fresh worker process (`harness.executors.isolated.run_isolated`), so an
out-of-memory try leaves nothing behind for the next. The memory a try may use is
`[measure.train] memory_limit_mb`: on the CPU an address-space cap (RLIMIT_AS) on what the try
adds to its process, weights included; on CUDA the allocator's cap
(`torch.cuda.set_per_process_memory_fraction`); 0 leaves the device's own memory as the limit.
Two details keep the CPU cap about memory rather than address space:
- a capped try uses one malloc arena: glibc otherwise reserves 64 MiB of address space per
  thread that allocates (the SSM variants' scan threads), untouched but charged to the cap;
- oneDNN reports a failed allocation as "could not execute a primitive", an error like any
  other; a try that errs under the cap is run again without it, and counts as out of memory
  when it then fits.
Other failures (an error that persists, a crash, a timeout) end the search with that status.

A daemonic process (the runner's per-point worker) may not start worker processes itself, so
there the search runs in a child interpreter (`python -m harness.train_cost.max_batch`, JSON in
and out) that does.
"""
from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import json
import math
import multiprocessing
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch

from harness.executors.isolated import preload, run_isolated
from harness.measure.measurement import Measurement
from harness.train_cost.step import MEMORY_STEPS, TrainInputs
from harness.points import Point, PointResult
from harness.suite import Measure
from models import build
from models.finetune import train_step_for

TRIAL_WORKLOAD = "harness.train_cost.max_batch:fit_trial"
SOURCE = "isolated trial steps"
M_ARENA_MAX = -8  # glibc's mallopt parameter number


@dataclass(frozen=True)
class SearchResult:
    """largest: the largest batch that fitted (0: not even batch 1). tried: (batch, status) in
    order. failure/error: the status and message of a try that failed other than by memory."""

    largest: int
    tried: tuple[tuple[int, str], ...]
    limit: int
    failure: str = ""
    error: str = ""

    @property
    def at_limit(self) -> bool:
        """The limit itself fitted: the true largest batch is at least `largest`."""
        return self.largest >= self.limit and not self.failure

    @classmethod
    def from_json(cls, data: dict) -> SearchResult:
        return cls(data["largest"], tuple((int(b), str(s)) for b, s in data["tried"]), data["limit"],
                   data["failure"], data["error"])


def search(try_batch: Callable[[int], tuple[str, str]], limit: int) -> SearchResult:
    """Doubling from 1, then bisection. try_batch(b) -> (status, error): "ok" fits, "oom" does
    not, anything else stops the search. Assumes fitting is monotone in the batch size."""
    tried: list[tuple[int, str]] = []

    def attempt(batch: int) -> tuple[str, str]:
        status, error = try_batch(batch)
        tried.append((batch, status))
        return status, error

    fits, too_big = 0, None
    batch = 1
    while too_big is None and fits < limit:
        status, error = attempt(batch)
        if status == "ok":
            fits, batch = batch, min(2 * batch, limit)
        elif status == "oom":
            too_big = batch
        else:
            return SearchResult(fits, tuple(tried), limit, status, error)
    while too_big is not None and too_big - fits > 1:
        middle = (fits + too_big) // 2
        status, error = attempt(middle)
        if status == "ok":
            fits = middle
        elif status == "oom":
            too_big = middle
        else:
            return SearchResult(fits, tuple(tried), limit, status, error)
    return SearchResult(fits, tuple(tried), limit)


def fit_trial(point: Point, measure: Measure) -> PointResult:
    """One try (a workload for `run_isolated`): build the model, run two optimiser steps at the
    point's batch size. Out of memory raises, which the worker records as status "oom"."""
    train = measure.train
    device = torch.device(point.device)
    if device.type == "cpu" and train.memory_limit_mb:
        _one_malloc_arena()
    if device.type == "cuda" and train.memory_limit_mb:
        index = cuda_index(device)
        total = torch.cuda.get_device_properties(index).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, train.memory_limit_mb * 2**20 / total), index)
    lalm = build(point.variant, point.size, device=device, dtype=getattr(torch, point.dtype),
                 scan_backend=point.scan_backend, seed=measure.seed)
    step = train_step_for(lalm, train.stage, train.precision, train.activation_checkpointing)
    batch = TrainInputs(point.batch_size, point.audio_seconds, point.prompt_tokens, point.new_tokens,
                        measure.seed).batch(lalm)
    for _ in range(MEMORY_STEPS):
        step(batch)
    return PointResult()


def cuda_index(device: torch.device) -> int:
    """The index of a CUDA device; the current one for a bare "cuda" (which the allocator's
    per-device settings reject: "Expected a torch.device with a specified index")."""
    return device.index if device.index is not None else torch.cuda.current_device()


def _one_malloc_arena() -> None:
    """glibc's mallopt(M_ARENA_MAX, 1): threads share the main arena (no-op without glibc)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, 1)


def _search_here(point: Point, measure: Measure) -> SearchResult:
    train = measure.train
    cpu_cap = train.memory_limit_mb if point.device == "cpu" else 0
    preload(TRIAL_WORKLOAD)

    def run(batch: int, cap: int) -> tuple[str, str]:
        outcome = run_isolated(dataclasses.replace(point, batch_size=batch), measure, TRIAL_WORKLOAD,
                               train.trial_timeout_s, cap)
        return outcome.status, outcome.error

    def try_batch(batch: int) -> tuple[str, str]:
        status, error = run(batch, cpu_cap)
        if status == "error" and cpu_cap and run(batch, 0)[0] == "ok":
            return "oom", f"{error} under the cap; fits without it"
        return status, error

    return search(try_batch, train.max_batch_limit)


def _search_in_child(point: Point, measure: Measure) -> SearchResult:
    request = json.dumps({"point": point.as_dict(), "measure": measure.model_dump(mode="json")})
    limit = measure.train.max_batch_limit
    timeout_s = (math.ceil(2 * math.log2(limit)) + 2) * (measure.train.trial_timeout_s + 60)  # every try, with slack
    try:
        done = subprocess.run([sys.executable, "-m", __name__], input=request, capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return SearchResult(0, (), limit, "timeout", f"the search took more than {timeout_s:g} s")
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        return SearchResult(0, (), limit, "crash", f"search process exited with code {done.returncode}: {tail}")
    return SearchResult.from_json(json.loads(lines[-1]))


def find_max_batch(point: Point, measure: Measure) -> SearchResult:
    """The search for `point`'s configuration (its batch size is ignored)."""
    if multiprocessing.current_process().daemon:
        return _search_in_child(point, measure)
    return _search_here(point, measure)


def _cap(point: Point, measure: Measure) -> str:
    limit = measure.train.memory_limit_mb
    if not limit:
        return "the device's own memory"
    how = "address space each try may add (RLIMIT_AS)" if point.device == "cpu" else "CUDA allocator cap"
    return f"{limit} MiB {how}"


def max_batch_measurement(result: SearchResult, point: Point, measure: Measure) -> Measurement:
    """The `max_batch` row: exact (lo = hi = value), a lower bound at the limit (hi NaN), NaN
    with status "oom" when batch 1 does not fit, or NaN with the failed try's status."""
    tried = ", ".join(f"{batch}:{status}" for batch, status in result.tried) or "none"
    note = f"largest batch whose first {MEMORY_STEPS} optimiser steps fit in {_cap(point, measure)}; tries {tried}"
    if result.failure:
        return Measurement.nan("max_batch", "1", f"search stopped by a {result.failure}: {result.error}; tries {tried}",
                               source=SOURCE, status=result.failure)
    if result.largest == 0:
        return Measurement.nan("max_batch", "1", f"batch 1 does not fit: {note}", source=SOURCE, status="oom")
    if result.at_limit:
        return Measurement("max_batch", float(result.largest), "1", lo=float(result.largest), n=len(result.tried),
                           source=SOURCE, note=f"the search limit fitted, so this is a lower bound; {note}")
    return Measurement("max_batch", float(result.largest), "1", lo=float(result.largest), hi=float(result.largest),
                       n=len(result.tried), source=SOURCE, note=note)


def _main() -> int:
    """Child-interpreter entry: {"point": ..., "measure": ...} on stdin, the SearchResult as JSON on stdout."""
    request = json.loads(sys.stdin.read())
    point = Point.from_dict(request["point"])
    measure = Measure.model_validate_json(json.dumps(request["measure"]))
    print(json.dumps(dataclasses.asdict(_search_here(point, measure))))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
