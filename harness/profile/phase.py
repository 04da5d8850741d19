"""Profile one phase of an LALM: where its time goes, module by module and operator by operator.

For a phase (the same unit of work `harness.measure.phases` times), in this order:
1. CUDA only: one call with allocator history on, dumped as a memory snapshot. It is the first
   call, so when the phase runs out of memory, this is the failed attempt and its snapshot.
2. Reference: the phase timed with nothing attached (warm-up, then fixed runs), half before and
   half after the profiled calls so that drift in machine load hits both alike.
3. Profiled: a warm-up call, then `repeats` calls under `torch.profiler` with a range around
   every planned module (`ranges`), each call inside a `phase:<name>` range. Gives the trace,
   the module breakdown (`attribution`) and the operator table (`operators`).
4. FLOPs: one more call under the FLOP counter, attributed to the same modules.

How the breakdown is known to be faithful: its rows partition the profiled phase time exactly
(self times plus an explicit unattributed row), so what can make it wrong is the profiling
itself. `overhead` compares the profiled phase time with the reference; within
`ProfileSettings.faithful_within` the module times are the phase's own, beyond it the
instrumentation (a few microseconds per module range, under a microsecond per operator event)
is comparable to the work, inflating the modules with the most small operators.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

from harness.measure.phases import PhaseWork
from harness.measure.timing import Timer, TimerSettings, Timing, synchronizer
from harness.profile.attribution import Breakdown, breakdown, central, phase_events, repeat_times
from harness.profile.cuda_memory import Snapshot, snapshot_call
from harness.profile.module_flops import module_flops
from harness.profile.operators import operator_table
from harness.profile.ranges import PHASE_PREFIX, ModuleRanges
from harness.profile.structure import Part

TRACE = "trace.json"
OPERATORS = "operators.csv"
MODULES = "modules.csv"


@dataclass(frozen=True)
class ProfileSettings:
    """How a phase is profiled.

    repeats: profiled calls averaged into the breakdown. warmup: untimed calls first.
    reference_runs: unprofiled timed calls (the phase's measured time). flops: count FLOPs per
    module. memory_snapshot: on CUDA, dump an allocator snapshot of one call. faithful_within:
    the largest |profiled / reference - 1| at which the breakdown is called faithful.
    """

    repeats: int = 5
    warmup: int = 2
    reference_runs: int = 10
    flops: bool = True
    memory_snapshot: bool = True
    faithful_within: float = 0.10

    def __post_init__(self) -> None:
        for name in ("repeats", "reference_runs"):
            if getattr(self, name) < 1:
                raise ValueError(f"profile setting {name}={getattr(self, name)} must be >= 1")
        if self.warmup < 0:
            raise ValueError(f"profile setting warmup={self.warmup} must be >= 0")


@dataclass
class PhaseProfile:
    """What profiling one phase gave. Times in the breakdown are per phase call.

    reference: the unprofiled timing. flops: FLOPs per path (None when not counted).
    files: name -> path of what was written (trace, operator and module tables, snapshot).
    """

    phase: str
    device: torch.device
    parts: dict[str, Part]
    breakdown: Breakdown
    reference: Timing
    operators: pd.DataFrame
    flops: dict[str, int] | None
    settings: ProfileSettings
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def profiled_ms(self) -> float:
        return self.breakdown.total_us / 1e3

    @property
    def overhead(self) -> float:
        """Profiled phase time / unprofiled median - 1 (NaN when the reference is not positive)."""
        reference = self.reference.median
        return self.profiled_ms / reference - 1 if reference > 0 else math.nan

    @property
    def faithful(self) -> bool:
        return abs(self.overhead) <= self.settings.faithful_within


class PhaseProfileFailed(Exception):
    """The phase itself failed while being profiled; `snapshot` is its memory snapshot, if any."""

    def __init__(self, cause: BaseException, snapshot: Path | None = None):
        super().__init__(str(cause))
        self.cause = cause
        self.snapshot = snapshot


def _reference_timer(device: torch.device, runs: int, warmup: int) -> Timer:
    return Timer(TimerSettings(warmup=warmup, min_runs=runs, max_runs=runs, max_seconds=0.0), device)


def _combined(first: Timing, second: Timing) -> Timing:
    return replace(first, samples_ms=first.samples_ms + second.samples_ms,
                   warmup_runs=first.warmup_runs + second.warmup_runs,
                   stop_reason=f"{len(first.samples_ms)} runs before and {len(second.samples_ms)} after profiling")


def _activities(device: torch.device) -> list[ProfilerActivity]:
    return [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])


def _profiled_calls(work: PhaseWork, phase: str, parts: Sequence[tuple[nn.Module, Part]], device: torch.device,
                    repeats: int) -> profile:
    """The profiler after one warm-up and `repeats` calls, each call in a `phase:` range."""
    sync = synchronizer(device)
    with ModuleRanges(parts), profile(activities=_activities(device)) as prof:
        for i in range(repeats + 1):
            if work.setup is not None:
                with record_function(f"setup:{phase} (untimed)"):
                    work.setup()
            sync()
            # The range closes after the device finishes, so it spans the phase's device work too.
            with record_function(PHASE_PREFIX + phase if i else f"warmup:{phase}"):
                work.run()
                sync()
    return prof


def profile_phase(work: PhaseWork, phase: str, parts: Sequence[tuple[nn.Module, Part]], device: torch.device,
                  out_dir: Path, settings: ProfileSettings = ProfileSettings()) -> PhaseProfile:
    """Profile one phase (see the module docstring); files go to `out_dir`.

    Raises PhaseProfileFailed when the phase itself raises (e.g. out of memory), after dumping
    the failed call's memory snapshot on CUDA.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    if device.type == "cuda" and settings.memory_snapshot:
        snapshot: Snapshot = snapshot_call(work.run, out_dir, device, setup=work.setup)
        files["memory snapshot"] = snapshot.path
        if snapshot.error is not None:
            raise PhaseProfileFailed(snapshot.error, snapshot.path) from snapshot.error
    try:
        timer = _reference_timer(device, max(1, settings.reference_runs // 2), settings.warmup)
        before = timer.measure(work.run, work.setup)
        prof = _profiled_calls(work, phase, parts, device, settings.repeats)
        after = timer.measure(work.run, work.setup)
        flops = module_flops(work.run, parts, setup=work.setup) if settings.flops else None
    except Exception as exc:
        raise PhaseProfileFailed(exc) from exc
    files["trace"] = out_dir / TRACE
    prof.export_chrome_trace(str(files["trace"]))
    events = phase_events(prof.events(), phase)
    times = [repeat_times(e) for e in events]
    result = PhaseProfile(
        phase=phase, device=device, parts={part.path: part for _, part in parts},
        breakdown=breakdown(times, device=device.type == "cuda"), reference=_combined(before, after),
        operators=operator_table([events[i] for i in central(times)]), flops=flops, settings=settings, files=files,
    )
    files["operators"] = out_dir / OPERATORS
    result.operators.to_csv(files["operators"], index=False)
    return result

