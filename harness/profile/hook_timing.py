"""The timing pass: module self times from timestamps taken in the module hooks, no profiler.

Under the profiler every operator call records an event. That is what makes the trace and the
operator table, but in a `tiny` model's decode step (~500 operators of about a microsecond each)
it slows the call by a third or more, and not evenly: modules with many small operators the
most. So on the CPU the module times come from a second pass over the same calls, with no
profiler: hooks on the same planned modules as the profiler's ranges (`structure.plan`) take a
timestamp at every module boundary. The time between two boundaries belongs to the module
innermost between them, so the self times of a call partition it exactly, as the profiler's do
(`attribution`).

Inside a module this pass sees nothing, so the split-out operators (the selective scan, fused
attention: `structure.KERNEL_OPS`) take the share of their module's time they had in the
profiler pass (`split_operators`).
"""
from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
from torch import nn

from harness.measure.phases import PhaseWork
from harness.profile.attribution import RepeatTimes
from harness.profile.structure import UNATTRIBUTED, Part


class BoundaryLog:
    """Module boundaries as the hooks saw them: (timestamp ns, path, entering) in call order.

    The hooks do as little as Python allows, one append of a tuple, because their cost is inside
    the times they measure; which module is innermost is worked out afterwards (`self_times`).
    """

    def __init__(self) -> None:
        self.boundaries: list[tuple[int, str, bool]] = []

    @contextmanager
    def attached(self, parts: Sequence[tuple[nn.Module, Part]]) -> Iterator[BoundaryLog]:
        """While open, every call of a planned module appends its entry and exit (also when it
        raises: the exit hook is registered `always_call`)."""
        append, now = self.boundaries.append, time.perf_counter_ns
        handles = []
        for module, part in parts:
            path = part.path
            handles.append(module.register_forward_pre_hook(lambda m, a, p=path: append((now(), p, True))))
            handles.append(module.register_forward_hook(lambda m, a, o, p=path: append((now(), p, False)),
                                                        always_call=True))
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()


def self_times(boundaries: Sequence[tuple[int, str, bool]], start_ns: int, end_ns: int) -> RepeatTimes:
    """One call's self time, calls and child calls per path from its boundaries. The time between
    two boundaries belongs to the module innermost between them; before the first module and after
    the last, the call is outside every module (UNATTRIBUTED)."""
    out = RepeatTimes(wall_us=(end_ns - start_ns) / 1e3)
    out.host_us[UNATTRIBUTED] = 0.0
    stack: list[str] = []
    previous = start_ns
    for stamp, path, entering in boundaries:
        innermost = stack[-1] if stack else UNATTRIBUTED
        out.host_us[innermost] += (stamp - previous) / 1e3
        previous = stamp
        if entering:
            out.calls[path] += 1
            out.child_calls[innermost] += 1
            stack.append(path)
        elif path in stack:  # a module that raised closes the ones left open inside it too
            del stack[stack.index(path):]
    out.host_us[UNATTRIBUTED] += (end_ns - previous) / 1e3
    return out


# The hooks' cost is measured in place (`hook_cost_us`) when the stand-in figure puts it above
# this share of the phase; below it, the stand-in figure is kept and the extra calls are saved.
IN_PLACE_ABOVE = 0.01
# Rounds: at least `repeats` (and IN_PLACE_ROUNDS with the halves, for the in-place figure), then
# more, up to MAX_ROUNDS, while the pass has run under MIN_SECONDS: a millisecond phase gets
# hundreds, since what is compared (hooked vs unhooked, full vs half) differs by a few percent
# between calls that themselves vary by a few percent.
IN_PLACE_ROUNDS = 7
MAX_ROUNDS = 300
MIN_SECONDS = 1.0
DECIDE_AFTER = 3  # rounds timed before deciding whether to measure the hooks' cost in place


@dataclass(frozen=True)
class TimingPass:
    """What the timing pass measured, round by round. calls: self times of the fully hooked
    calls. plain_us: the unhooked calls interleaved with them (the phase's own time). hook_us:
    what one hooked module call costs in this model and phase (`hook_cost_us`), or the stand-in
    figure when that cost is too small to matter (`in_place` False)."""

    calls: list[RepeatTimes]
    plain_us: list[float]
    hook_us: float
    in_place: bool


def hook_cost_us(full_us: Sequence[float], half_us: Sequence[Sequence[float]], half_calls: Sequence[int]) -> float:
    """The hooks' own cost per module call, told from instrumented calls alone.

    full_us[i]: phase time of round i with every planned module hooked; half_us[h][i]: of the
    same round with only half h hooked, which made half_calls[h] module calls. Taking half h's
    hooks off saves cost(h) = the median over rounds of full - only-the-other-half (paired within
    a round, so drift cancels), and the cost per hooked call is (cost(0) + cost(1)) /
    (calls(0) + calls(1)), never below 0. Measured inside the model, it includes what stand-ins
    cannot show (the interpreter's slower path for a hooked module, caches the hooks evict); the
    unprofiled phase time is not used, so the sum-to-phase check still tests it.
    """
    full = np.asarray(full_us, dtype=float)
    saved = sum(float(np.median(full - np.asarray(half_us[1 - h], dtype=float))) for h in (0, 1))
    calls = sum(half_calls)
    return max(0.0, saved / calls) if calls else 0.0


def timed_calls(work: PhaseWork, parts: Sequence[tuple[nn.Module, Part]], repeats: int,
                sync: Callable[[], None], stand_in_us: float) -> TimingPass:
    """Rounds of calls of the phase after a warm-up: each round one call with no hooks and one with
    every planned module hooked, so the two see the same machine and allocator state. When the
    hooks may cost more than IN_PLACE_ABOVE of the phase at `stand_in_us` per module call (judged
    after DECIDE_AFTER rounds), each later round also times a call with only the even-numbered
    modules hooked and one with only the odd-numbered, and the hooks' cost comes from those
    (`hook_cost_us`). As many rounds as the constants above allow."""
    halves = (list(parts[0::2]), list(parts[1::2]))
    log = BoundaryLog()
    full: list[RepeatTimes] = []
    plain_us: list[float] = []
    half_us: tuple[list[float], list[float]] = ([], [])
    half_calls = [0, 0]

    def call(hooked: Sequence[tuple[nn.Module, Part]]) -> tuple[int, int]:
        if work.setup is not None:
            work.setup()
        with log.attached(hooked):
            sync()
            log.boundaries.clear()
            start = time.perf_counter_ns()
            work.run()
            sync()
            end = time.perf_counter_ns()
        return start, end

    call(parts)  # warm-up
    in_place, decided, began = False, False, time.perf_counter()
    paired_full_us: list[float] = []  # the fully hooked calls of the rounds that also timed the halves

    def more() -> bool:
        done = len(full)
        if done < repeats or not decided or (in_place and len(paired_full_us) < IN_PLACE_ROUNDS):
            return True
        return done < MAX_ROUNDS and time.perf_counter() - began < MIN_SECONDS

    while more():
        start, end = call(())
        plain_us.append((end - start) / 1e3)
        start, end = call(parts)
        full.append(self_times(log.boundaries, start, end))
        if not decided and len(full) >= min(DECIDE_AFTER, max(repeats, 1)):
            # Whether the hooks' cost matters here, from the fastest call so far: one slow first
            # call must not decide it.
            calls = sum(1 for _, _, entering in log.boundaries if entering)
            in_place = calls * stand_in_us > IN_PLACE_ABOVE * min(rep.wall_us for rep in full)
            decided = True
            continue
        for h, half in enumerate(halves if in_place else ()):
            start, end = call(half)
            half_us[h].append((end - start) / 1e3)
            half_calls[h] = sum(1 for _, _, entering in log.boundaries if entering)
        if in_place:
            paired_full_us.append(full[-1].wall_us)
    hook_us = hook_cost_us(paired_full_us, half_us, half_calls) if in_place else stand_in_us
    return TimingPass(full, plain_us, max(hook_us, stand_in_us), in_place)


@dataclass(frozen=True)
class OperatorSplit:
    """What the profiler pass says of the split-out operators, per virtual path ("<module>/scan"):
    share of its module's time (the module's self time plus all its split-out operators'), mean
    over the profiler pass's repeats; the operator's event name; its calls per phase call."""

    shares: dict[str, float]
    names: dict[str, str]
    calls: dict[str, int]


def operator_split(profiled: Sequence[RepeatTimes]) -> OperatorSplit:
    """The split-out operators of the profiler pass's repeats (see OperatorSplit)."""
    shares: dict[str, list[float]] = defaultdict(list)
    names: dict[str, str] = {}
    calls: dict[str, int] = {}
    for rep in profiled:
        for path, name in rep.kernels.items():
            owner = path.rsplit("/", 1)[0]
            whole = rep.host_us.get(owner, 0.0) + sum(rep.host_us[k] for k in rep.kernels if k.startswith(owner + "/"))
            shares[path].append(rep.host_us[path] / whole if whole > 0 else 0.0)
            names.setdefault(path, name)
            calls.setdefault(path, rep.calls[path])
    return OperatorSplit({path: float(np.mean(values)) for path, values in shares.items()}, names, calls)


def split_operators(timed: RepeatTimes, split: OperatorSplit) -> RepeatTimes:
    """`timed` with each split-out operator carved out of its module's self time at the share it
    had in the profiler pass; the call's total is unchanged."""
    out = replace(timed, host_us=defaultdict(float, timed.host_us), calls=defaultdict(int, timed.calls),
                  kernels=dict(timed.kernels))
    whole = dict(timed.host_us)  # module times before any operator is carved out
    for path, share in split.shares.items():
        owner = path.rsplit("/", 1)[0]
        moved = share * whole.get(owner, 0.0)
        out.host_us[path] += moved
        out.host_us[owner] -= moved
        out.calls[path] = split.calls[path]
        out.kernels[path] = split.names[path]
    return out
