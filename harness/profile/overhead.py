"""What instrumentation costs on this machine, and taking it back out of measured self times.

Two kinds of instrumented call see a phase (`harness.profile.phase`):
- the profiler pass: a hook pair and a profiler range per planned module call (`ranges`), and an
  event per operator call. An event costs a fraction of a microsecond, but a `tiny` decode step
  is ~500 operators of ~1 us each, so this pass runs 30-90% slow there;
- the timing pass: the same hook pair taking a timestamp, no profiler (`hook_timing`): ~2 us per
  module call and nothing per operator.

Both costs are measured on stand-ins, on this machine, in this process, just before the phase is
profiled (`measure_cost`), and each module's self time gives back what the instrumentation
inside it cost (`compensate`):

    compensated self time = self time - operator events inside it x event_us
                                      - child module calls opened from it x range.parent_us
                                      - its own calls x range.child_us

A range's cost is split where it lands: the part between its opening and closing timestamps
(`child_us`, measured as the duration of ranges around an empty module) and the rest, before it
opens and after it closes, in the parent. Nothing here uses the unprofiled phase time, so the
sum-to-phase check (compensated phase time vs the unprofiled one) tests this model.
"""
from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import ProfilerActivity, profile

from harness.profile.attribution import RepeatTimes
from harness.profile.hook_timing import BoundaryLog
from harness.profile.ranges import RANGE_PREFIX, ModuleRanges
from harness.profile.structure import Part

CALLS = 400  # calls per timed round of a stand-in
ROUNDS = 25  # rounds per stand-in; the fastest is kept, so other load on the machine inflates little


@dataclass(frozen=True)
class RangeCost:
    """Microseconds one instrumented module call adds: in its parent, and inside its own range."""

    parent_us: float
    child_us: float

    @property
    def total_us(self) -> float:
        return self.parent_us + self.child_us


@dataclass(frozen=True)
class InstrumentationCost:
    """Per operator event under the profiler; per module call in each pass."""

    event_us: float
    profiler_range: RangeCost
    timing_range: RangeCost


def _fastest_us(fn: Callable[[], object], calls: int, rounds: int = ROUNDS) -> float:
    """Fastest of `rounds` timings of `fn`, in microseconds per one of the `calls` it makes."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter_ns()
        fn()
        best = min(best, time.perf_counter_ns() - start)
    return best / calls / 1e3


class _Block(nn.Module):
    """Stand-in for a model's operators: a pre-norm transformer block at a tiny width, (B, T, D) ->
    (B, T, D). Its operators are a model's everyday ones (norms, linears, reshapes, fused
    attention, activations, adds) and nest as theirs do (a linear records its matmul, a reshape
    its view); a loop of one small operator records events faster than a model's mix does."""

    def __init__(self, width: int = 64, heads: int = 4):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.out = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.up, self.down = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d)
        x = x + self.out(attended)
        return x + self.down(F.silu(self.up(self.norm2(x))))


EVENT_ROUNDS = 12  # each profiled round records ~800 events, and turning them into Python objects is slow


def _event_us() -> float:
    torch.manual_seed(0)
    blocks, x = nn.Sequential(*(_Block() for _ in range(4))), torch.randn(1, 16, 64)

    def run() -> None:
        for _ in range(4):
            blocks(x)

    run()
    plain = _fastest_us(run, 1, EVENT_ROUNDS)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        profiled = _fastest_us(run, 1, EVENT_ROUNDS)
    # Every event the profiled rounds recorded, nested ones included, shares the added time.
    events = len(prof.events()) / EVENT_ROUNDS
    return max(0.0, (profiled - plain) / events)


def _empty_modules() -> tuple[list[tuple[nn.Module, Part]], Callable[[], None]]:
    modules = nn.ModuleList(nn.Identity() for _ in range(CALLS))
    x = torch.zeros(4)

    def call_modules() -> None:
        for module in modules:
            module(x)

    return [(m, Part(f"m{i}", "block")) for i, m in enumerate(modules)], call_modules


def _split(total_us: float, inside_us: list[float]) -> RangeCost:
    """A range's cost split at its timestamps: an empty module's range holds its own side of the
    hooks and a near-free forward (the 10th percentile: the least disturbed)."""
    child = min(float(np.percentile(inside_us, 10)), total_us) if inside_us else 0.0
    return RangeCost(parent_us=max(0.0, total_us - child), child_us=max(0.0, child))


def _profiler_range() -> RangeCost:
    parts, call_modules = _empty_modules()
    plain = _fastest_us(call_modules, CALLS)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        with ModuleRanges(parts):
            ranged = _fastest_us(call_modules, CALLS)
    inside = [e.time_range.end - e.time_range.start for e in prof.events() if e.name.startswith(RANGE_PREFIX)]
    return _split(ranged - plain, inside)


def _timing_range() -> RangeCost:
    parts, call_modules = _empty_modules()
    plain = _fastest_us(call_modules, CALLS)
    log = BoundaryLog()
    with log.attached(parts):
        ranged = _fastest_us(call_modules, CALLS)
    # Boundaries alternate enter, exit: each pair brackets one empty module's inside.
    stamps = np.asarray([stamp for stamp, _, _ in log.boundaries], dtype=float) / 1e3
    inside = list(stamps[1::2] - stamps[0::2])
    return _split(ranged - plain, inside)


def measure_cost() -> InstrumentationCost:
    """The instrumentation cost on this machine now, from stand-ins (about a second)."""
    with torch.inference_mode():
        event = _event_us()
        profiler_range = _profiler_range()
        timing_range = _timing_range()
    return InstrumentationCost(event_us=event, profiler_range=profiler_range, timing_range=timing_range)


def compensate(rep: RepeatTimes, event_us: float, ranges: RangeCost) -> RepeatTimes:
    """One repeat with each path's instrumentation taken out of its host self time (at most all of
    it) and out of the phase time (see the module docstring). Device times are the kernels' own
    and stay."""
    out = replace(rep, host_us=defaultdict(float, rep.host_us))
    for path in set(rep.host_us) | set(rep.events) | set(rep.child_calls):
        own_ranges = 0 if path in rep.kernels else rep.calls.get(path, 0)  # split-out operators have no range
        spent = (rep.events.get(path, 0) * event_us + rep.child_calls.get(path, 0) * ranges.parent_us
                 + own_ranges * ranges.child_us)
        # Never more than was measured there: an estimate off by noise must not leave negative time.
        spent = min(spent, max(rep.host_us.get(path, 0.0), 0.0))
        out.host_us[path] -= spent
        out.wall_us -= spent
    return out
