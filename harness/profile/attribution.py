"""Self time per module from a profiler's event tree.

Every profiled repeat of a phase is one `phase:<name>` range; inside it, module ranges
(`module:<path>`, see `ranges`) and operator events nest as they ran. One walk down that tree
gives each module its *self* time — its range's duration minus the ranges of its child modules
— so the module rows of one repeat partition the phase exactly:

    phase range = sum over modules of self time + unattributed (time outside every module range)

Split-out operators (`structure.KERNEL_OPS`: the selective scan, fused attention) become virtual
children of the module that called them, the same way.

Host (CPU) time is range durations. Device (CUDA) time is the kernel time of the operators each
module launched (CUPTI's durations); the phase's device row is its wall time, so device time not
spent in any kernel (launch gaps, host-bound stretches) is its own row, `(device idle)`.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.profile.ranges import PHASE_PREFIX, RANGE_PREFIX
from harness.profile.structure import UNATTRIBUTED, kernel_of, kernel_path

DEVICE_IDLE = "(device idle)"


@dataclass
class RepeatTimes:
    """One repeat of a phase: self times in microseconds per path, module calls per path, and what
    was instrumented inside each path's self time: operator events (nested ones included) and
    module ranges opened from it (`child_calls`)."""

    wall_us: float
    host_us: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    device_us: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    events: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    child_calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    kernels: dict[str, str] = field(default_factory=dict)  # virtual child path -> operator name

    @property
    def device_total_us(self) -> float:
        return sum(self.device_us.values())


def _duration(event) -> float:
    return event.time_range.end - event.time_range.start


def _own_kernel_us(event) -> float:
    """Device time of the kernels this operator launched itself (not its children's)."""
    return float(sum(k.duration for k in getattr(event, "kernels", ()) or ()))


def _device_total_us(event) -> float:
    """Device time of the kernels this operator and everything below it launched."""
    return _own_kernel_us(event) + sum(_device_total_us(c) for c in event.cpu_children)


def _events_in(event) -> int:
    """Operator events in this event's tree, itself included."""
    return 1 + sum(_events_in(c) for c in event.cpu_children)


def _walk(event, owner: str, out: RepeatTimes) -> None:
    for child in event.cpu_children:
        name = child.name
        if name.startswith(RANGE_PREFIX):
            path = name[len(RANGE_PREFIX):]
            duration = _duration(child)
            out.host_us[path] += duration
            out.host_us[owner] -= duration
            out.calls[path] += 1
            out.child_calls[owner] += 1
            _walk(child, path, out)
            continue
        kernel = kernel_of(name) if owner != UNATTRIBUTED else None
        if kernel is not None:
            path = kernel_path(owner, kernel[0])
            duration = _duration(child)
            out.host_us[path] += duration
            out.host_us[owner] -= duration
            out.device_us[path] += _device_total_us(child)
            out.calls[path] += 1
            out.events[path] += _events_in(child)
            out.kernels[path] = name
            continue
        out.device_us[owner] += _own_kernel_us(child)
        out.events[owner] += 1
        _walk(child, owner, out)


def repeat_times(phase_event) -> RepeatTimes:
    """Self times of one `phase:` range (a profiler FunctionEvent and its cpu_children tree)."""
    out = RepeatTimes(wall_us=_duration(phase_event))
    out.host_us[UNATTRIBUTED] = out.wall_us
    _walk(phase_event, UNATTRIBUTED, out)
    return out


def phase_events(events: Iterable, phase: str) -> list:
    """The top-level `phase:<phase>` ranges among a profiler's events, in time order."""
    name = PHASE_PREFIX + phase
    found = [e for e in events if e.name == name and e.cpu_parent is None and e.device_type.name == "CPU"]
    return sorted(found, key=lambda e: e.time_range.start)


@dataclass(frozen=True)
class ModuleTime:
    """One row of the breakdown: mean self time per phase call and its spread over repeats.

    time_us: host time on the CPU, kernel time on CUDA (see the module docstring); host_us is
    always the host time. lo_us / hi_us: p10 / p90 over repeats. calls: module calls per phase.
    """

    path: str
    time_us: float
    lo_us: float
    hi_us: float
    host_us: float
    calls: float
    operator: str = ""  # for a split-out operator's row, the operator's event name


@dataclass(frozen=True)
class Breakdown:
    """Rows sum exactly to `total_us`, the mean phase time over the `averaged` central repeats of
    `repeats` profiled calls; `instrumentation_us` of the profiled time was taken out first."""

    rows: list[ModuleTime]
    total_us: float
    repeats: int
    averaged: int
    device: bool
    instrumentation_us: float = 0.0

    def share(self, row: ModuleTime) -> float:
        return row.time_us / self.total_us if self.total_us > 0 else float("nan")


def central(repeats: Sequence[RepeatTimes]) -> list[int]:
    """Indices of the n - 2 * (n // 4) repeats whose phase time is nearest the median, in order.

    A mean over these is the breakdown of a typical call: calls disturbed by something outside
    the phase (a page fault storm, another process taking the core — on a shared machine that can
    be a third of all calls) are the ones left out, whether they are a few or many, while
    unlike a per-module median the mean still sums to the phase time.
    """
    keep = len(repeats) - 2 * (len(repeats) // 4)
    median = float(np.median([rep.wall_us for rep in repeats]))
    nearest = sorted(range(len(repeats)), key=lambda i: abs(repeats[i].wall_us - median))
    return sorted(nearest[:keep])


def _times(rep: RepeatTimes, device: bool) -> dict[str, float]:
    """One repeat's rows: kernel time plus a device-idle row on the device, else host time."""
    if not device:
        return dict(rep.host_us)
    return {**rep.device_us, DEVICE_IDLE: rep.wall_us - rep.device_total_us}


def breakdown(repeats: Sequence[RepeatTimes], device: bool,
              profiled: Sequence[RepeatTimes] | None = None) -> Breakdown:
    """Mean self times over the central repeats (`central`); lo/hi are p10/p90 over all repeats.

    device=True: time is kernel time, with a device-idle row making up each repeat's wall time;
    otherwise host time. profiled: the same repeats before their instrumentation was taken out
    (`overhead.compensate`), when it was; they choose the central repeats.
    """
    if not repeats:
        raise ValueError("no profiled repeats of the phase to attribute")
    profiled = repeats if profiled is None else profiled
    chosen = central(profiled)
    middle = [repeats[i] for i in chosen]
    every = [_times(rep, device) for rep in repeats]
    averaged = [_times(rep, device) for rep in middle]
    rows = []
    for path in dict.fromkeys(p for times in every for p in times):
        lo, hi = np.percentile([times.get(path, 0.0) for times in every], [10, 90])
        rows.append(ModuleTime(
            path,
            time_us=float(np.mean([times.get(path, 0.0) for times in averaged])),
            lo_us=float(lo),
            hi_us=float(hi),
            host_us=float(np.mean([rep.host_us.get(path, 0.0) for rep in middle])),
            calls=float(np.mean([rep.calls.get(path, 0) for rep in middle])),
            operator=next((rep.kernels[path] for rep in repeats if path in rep.kernels), ""),
        ))
    total = float(np.mean([rep.wall_us for rep in middle]))
    instrumentation = float(np.mean([profiled[i].wall_us for i in chosen])) - total
    return Breakdown(rows, total, len(repeats), len(middle), device, instrumentation)
