"""Profile one phase of an LALM: where its time goes, module by module and operator by operator.

For a phase (the same unit of work `harness.measure.phases` times), in this order:
1. CUDA only: one call with allocator history on, dumped as a memory snapshot. It is the first
   call, so when the phase runs out of memory, this is the failed attempt and its snapshot.
2. Reference: the phase timed with nothing attached. On the CPU, one such call in every round of
   the timing pass (3.), between its hooked calls, so that the machine's drift and the allocator's
   state hit both alike; on CUDA, `reference_runs` calls, half before and half after the
   profiler pass.
3. CPU only, timing pass: a warm-up call, then `repeats` calls with the module hooks taking
   timestamps and no profiler (`hook_timing`), each interleaved, while it matters, with two
   calls with half of the hooks, which tells what the hooks cost in this model. Gives the CPU
   module breakdown: the profiler's event per operator costs as much as a tiny model's operators
   themselves, the hooks a few microseconds per module call. Split-out operators (scan, fused
   attention) take the share of their module they had in the profiler pass.
4. Profiler pass: a warm-up call, then `repeats` calls under `torch.profiler` with a range
   around every planned module (`ranges`), each call inside a `phase:<name>` range. Gives the
   trace, the operator table (`operators`), the split-out operators' shares, and on CUDA the
   module breakdown (`attribution`: kernel time per module). Its events stay out of the garbage
   collector's way for the rest (`gc.freeze`).
5. FLOPs: one more call under the FLOP counter, attributed to the same modules.

How the breakdown is known to be faithful: its rows partition the instrumented phase time
exactly (self times plus an explicit unattributed row), so what can make it wrong is the
instrumentation itself. On the CPU each module first gives back the measured cost of the
instrumentation inside it (`harness.profile.overhead`). `PhaseProfile.overhead` then compares
the phase time so attributed with the reference; within `ProfileSettings.faithful_within` the
module times are the phase's own, beyond it instrumentation or other load on the machine
distorts them.
"""
from __future__ import annotations

import gc
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

from harness.measure.phases import PhaseWork
from harness.measure.timing import Timer, TimerSettings, Timing, synchronizer
from harness.profile.attribution import Breakdown, RepeatTimes, breakdown, central, phase_events, repeat_times
from harness.profile.cuda_memory import Snapshot, snapshot_call
from harness.profile.hook_timing import TimingPass, operator_split, split_operators, timed_calls
from harness.profile.module_flops import module_flops
from harness.profile.operators import operator_table
from harness.profile.overhead import InstrumentationCost, RangeCost, compensate, measure_cost
from harness.profile.ranges import PHASE_PREFIX, ModuleRanges
from harness.profile.structure import Part

TRACE = "trace.json"
OPERATORS = "operators.csv"
MODULES = "modules.csv"


@dataclass(frozen=True)
class ProfileSettings:
    """How a phase is profiled.

    repeats: profiled calls averaged into the breakdown. warmup: untimed calls first.
    reference_runs: unprofiled timed calls on CUDA (the phase's measured time; on the CPU there is
    one per timing-pass round). flops: count FLOPs per
    module. memory_snapshot: on CUDA, dump an allocator snapshot of one call. compensate: on the
    CPU, take the measured instrumentation cost out of each module's time. faithful_within:
    the largest |profiled / reference - 1| at which the breakdown is called faithful.
    """

    repeats: int = 5
    warmup: int = 2
    reference_runs: int = 10
    flops: bool = True
    memory_snapshot: bool = True
    compensate: bool = True
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

    reference: the unprofiled timing. flops: FLOPs per path (None when not counted). cost: the
    instrumentation cost taken out of the breakdown (None: nothing taken out).
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
    cost: InstrumentationCost | None = None
    profiler_ms: float = math.nan  # CPU: the profiler pass's phase time, as recorded (its trace's time)
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def attributed_ms(self) -> float:
        """The phase time the breakdown partitions (instrumentation taken out, when it was)."""
        return self.breakdown.total_us / 1e3

    @property
    def instrumentation_ms(self) -> float:
        """Instrumentation cost per phase call taken out of the breakdown (0 when none was)."""
        return self.breakdown.instrumentation_us / 1e3

    @property
    def overhead(self) -> float:
        """Attributed phase time / unprofiled median - 1 (NaN when the reference is not positive)."""
        reference = self.reference.median
        return self.attributed_ms / reference - 1 if reference > 0 else math.nan

    @property
    def profiler_overhead(self) -> float:
        """CPU: how much slower the profiler pass's calls (the trace's) ran than unprofiled ones (NaN on CUDA)."""
        reference = self.reference.median
        return self.profiler_ms / reference - 1 if reference > 0 else math.nan

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


@contextmanager
def _garbage_frozen() -> Iterator[None]:
    """The profiler leaves hundreds of thousands of Python objects (its events) alive; a garbage
    collection that walks them all inside a timed call would cost that call milliseconds. Frozen,
    the collector skips them (`gc.freeze`)."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _interleaved(timed: TimingPass) -> Timing:
    """The CPU reference: the timing pass's unhooked calls, one per round between hooked ones."""
    return Timing(samples_ms=tuple(us / 1e3 for us in timed.plain_us), warmup_runs=1,
                  stop_reason=f"{len(timed.plain_us)} calls interleaved with the hooked ones", overhead_ms=0.0,
                  source="perf_counter_ns")


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


NO_COST = InstrumentationCost(0.0, RangeCost(0.0, 0.0), RangeCost(0.0, 0.0))


def with_hook_cost(cost: InstrumentationCost, hook_us: float) -> InstrumentationCost:
    """`cost` with the timing pass's per-call hook cost as measured in this phase
    (`hook_timing.hook_cost_us`), split inside/outside the module as the stand-ins split it."""
    stand_in = cost.timing_range
    inside = stand_in.child_us / stand_in.total_us if stand_in.total_us > 0 else 0.0
    return replace(cost, timing_range=RangeCost(parent_us=hook_us * (1 - inside), child_us=hook_us * inside))


def cpu_breakdown(profiled: Sequence[RepeatTimes], timed: Sequence[RepeatTimes],
                  cost: InstrumentationCost) -> Breakdown:
    """The CPU breakdown: the timing pass's module times with its hooks' cost taken out, then the
    split-out operators carved out at the shares they had in the profiler pass (itself with its
    events' and ranges' cost taken out)."""
    split = operator_split([compensate(rep, cost.event_us, cost.profiler_range) for rep in profiled])
    attributed = [split_operators(compensate(rep, 0.0, cost.timing_range), split) for rep in timed]
    return breakdown(attributed, device=False, profiled=timed)


def profile_phase(work: PhaseWork, phase: str, parts: Sequence[tuple[nn.Module, Part]], device: torch.device,
                  out_dir: Path, settings: ProfileSettings = ProfileSettings(),
                  cost: InstrumentationCost | None = None) -> PhaseProfile:
    """Profile one phase (see the module docstring); files go to `out_dir`.

    cost: the stand-ins' instrumentation cost on the CPU (measured here when not given; unused on
    CUDA, whose breakdown is kernel time). With `settings.compensate` it is taken out of the
    module times, the timing pass's hook cost as measured in place where that matters.

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
    on_cuda = device.type == "cuda"
    if not on_cuda and cost is None:
        cost = measure_cost()
    try:
        if on_cuda:
            timer = _reference_timer(device, max(1, settings.reference_runs // 2), settings.warmup)
            before = timer.measure(work.run, work.setup)
        else:
            timed = timed_calls(work, parts, settings.repeats, synchronizer(device), cost.timing_range.total_us)
        prof = _profiled_calls(work, phase, parts, device, settings.repeats)
        with _garbage_frozen():
            reference = _combined(before, timer.measure(work.run, work.setup)) if on_cuda else _interleaved(timed)
            flops = module_flops(work.run, parts, setup=work.setup) if settings.flops else None
    except Exception as exc:
        raise PhaseProfileFailed(exc) from exc
    files["trace"] = out_dir / TRACE
    prof.export_chrome_trace(str(files["trace"]))
    events = phase_events(prof.events(), phase)
    times = [repeat_times(e) for e in events]
    middle = central(times)
    if on_cuda:
        cost, result_breakdown = None, breakdown(times, device=True)
    else:
        cost = with_hook_cost(cost, timed.hook_us) if settings.compensate else NO_COST
        result_breakdown = cpu_breakdown(times, timed.calls, cost)
    result = PhaseProfile(
        phase=phase, device=device, parts={part.path: part for _, part in parts}, breakdown=result_breakdown,
        reference=reference, operators=operator_table([events[i] for i in middle]),
        flops=flops, settings=settings, cost=cost if settings.compensate else None,
        profiler_ms=math.nan if on_cuda else float(np.mean([times[i].wall_us for i in middle])) / 1e3,
        files=files,
    )
    files["operators"] = out_dir / OPERATORS
    result.operators.to_csv(files["operators"], index=False)
    return result

