"""Self-time attribution on hand-built event trees (exact arithmetic), and on a real profile of toy modules."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

from harness.measure.timing import Timing
from harness.profile.attribution import DEVICE_IDLE, Breakdown, breakdown, central, phase_events, repeat_times
from harness.profile import hook_timing
from harness.profile.hook_timing import hook_cost_us, operator_split, self_times, split_operators, timed_calls
from harness.profile.overhead import RangeCost, compensate, measure_cost
from harness.profile.phase import PhaseProfile, ProfileSettings
from harness.profile.ranges import ModuleRanges
from harness.profile.structure import UNATTRIBUTED, Part


def ev(name: str, start: float, end: float, children=(), kernels=()):
    """A stand-in for torch's FunctionEvent: name, time range (us), children, launched kernels."""
    event = SimpleNamespace(name=name, time_range=SimpleNamespace(start=start, end=end), cpu_children=list(children),
                            kernels=[SimpleNamespace(duration=d) for d in kernels], cpu_parent=None,
                            device_type=SimpleNamespace(name="CPU"))
    for child in event.cpu_children:
        child.cpu_parent = event
    return event


def tree(scale: float = 1.0):
    """phase 0-100: module a 10-70 holding an op (kernel 20) and module b 20-50; b holds an op (kernel 5)
    and a scan 30-45 (kernel 8); an op outside every module at 80-90 (kernel 3)."""
    scan = ev("lalm::selective_scan", 30, 45, [ev("aten::empty", 31, 32)], kernels=[8 * scale])
    b = ev("module:a.b", 20, 50, [ev("aten::mm", 21, 25, kernels=[5 * scale]), scan])
    a = ev("module:a", 10, 70, [ev("aten::addmm", 11, 19, kernels=[20 * scale]), b])
    return ev("phase:encoder", 0, 100 * scale, [a, ev("aten::add", 80, 90, kernels=[3 * scale])])


def test_host_self_times_partition_the_phase_exactly():
    rep = repeat_times(tree())
    assert rep.host_us["a"] == 60 - 30
    assert rep.host_us["a.b"] == 30 - 15
    assert rep.host_us["a.b/scan"] == 15
    assert rep.host_us[UNATTRIBUTED] == 100 - 60
    assert sum(rep.host_us.values()) == rep.wall_us == 100
    assert rep.kernels == {"a.b/scan": "lalm::selective_scan"}
    assert rep.calls["a"] == rep.calls["a.b"] == rep.calls["a.b/scan"] == 1


def test_instrumented_events_and_ranges_are_counted_where_they_land():
    rep = repeat_times(tree())
    # a: its addmm; a.b: its mm; the scan: itself and the empty inside it; outside: the add.
    assert dict(rep.events) == {"a": 1, "a.b": 1, "a.b/scan": 2, UNATTRIBUTED: 1}
    assert dict(rep.child_calls) == {UNATTRIBUTED: 1, "a": 1}


def test_compensation_takes_each_paths_instrumentation_out_of_its_own_time():
    rep = repeat_times(tree())
    fixed = compensate(rep, 1.0, RangeCost(parent_us=2.0, child_us=3.0))
    # a: 1 event, opened a.b, its own range; a.b: 1 event, own range; the scan: 2 events, no range
    # (an operator, not a module); outside: 1 event, opened a.
    assert fixed.host_us["a"] == 30 - (1 + 2 + 3)
    assert fixed.host_us["a.b"] == 15 - (1 + 3)
    assert fixed.host_us["a.b/scan"] == 15 - 2
    assert fixed.host_us[UNATTRIBUTED] == 40 - (1 + 2)
    assert fixed.wall_us == sum(fixed.host_us.values()) == 100 - 15
    assert rep.wall_us == 100 and rep.host_us["a"] == 30  # the profiled repeat is left as it was
    result = breakdown([fixed], device=False, profiled=[rep])
    assert result.total_us == 85 and result.instrumentation_us == 15
    # An estimate larger than a module's measured self time takes all of it, never more.
    drained = compensate(rep, 20.0, RangeCost(parent_us=0.0, child_us=0.0))
    assert dict(drained.host_us) == {"a": 30 - 20, "a.b": 0, "a.b/scan": 0, UNATTRIBUTED: 40 - 20}
    assert drained.wall_us == sum(drained.host_us.values()) == 30


def test_device_time_goes_to_the_module_that_launched_the_kernel():
    rep = repeat_times(tree())
    assert dict(rep.device_us) == {"a": 20, "a.b": 5, "a.b/scan": 8, UNATTRIBUTED: 3}
    result = breakdown([rep], device=True)
    times = {row.path: row.time_us for row in result.rows}
    assert times[DEVICE_IDLE] == 100 - 36
    assert sum(times.values()) == pytest.approx(result.total_us) == 100
    assert {row.path: row.host_us for row in result.rows}["a"] == 30


def test_a_split_operator_outside_every_module_stays_unattributed():
    rep = repeat_times(ev("phase:decode", 0, 10, [ev("aten::scaled_dot_product_attention", 2, 6)]))
    assert dict(rep.host_us) == {UNATTRIBUTED: 10}


def test_central_keeps_the_repeats_nearest_the_median():
    walls = (1, 2, 3, 10, 11, 12, 2.5, 2.2, 1.5)  # a third of the calls disturbed
    assert central([SimpleNamespace(wall_us=w) for w in walls]) == [1, 2, 6, 7, 8]
    assert central([SimpleNamespace(wall_us=w) for w in (5, 100)]) == [0, 1]


def test_breakdown_averages_the_central_repeats_and_still_sums_to_the_phase():
    reps = [repeat_times(tree(scale)) for scale in (1.0, 1.2, 9.0, 1.1)]  # 9.0: a disturbed call
    result = breakdown(reps, device=False)
    assert result.repeats == 4 and result.averaged == 2
    assert result.total_us == pytest.approx((110 + 120) / 2)
    assert sum(row.time_us for row in result.rows) == pytest.approx(result.total_us)
    unattributed = next(row for row in result.rows if row.path == UNATTRIBUTED)
    assert unattributed.hi_us >= unattributed.time_us >= unattributed.lo_us


def test_phase_events_keeps_only_top_level_ranges_of_that_phase_in_time_order():
    late, early = ev("phase:prefill", 50, 60), ev("phase:prefill", 0, 10)
    nested = ev("phase:prefill", 1, 2)
    nested.cpu_parent = early
    events = [late, ev("phase:decode", 20, 30), early, nested, ev("warmup:prefill", 70, 80)]
    assert phase_events(events, "prefill") == [early, late]


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.q_proj = nn.Linear(8, 8)

    def forward(self, x):
        q = self.q_proj(x)
        return torch.nn.functional.scaled_dot_product_attention(q, q, q)


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = Attention()
        self.mlp = nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.Linear(32, 8))

    def forward(self, x):
        return self.mlp(self.attn(x)) + x


def _toy_parts(model: Toy) -> list[tuple[nn.Module, Part]]:
    return [(model, Part("toy", "block")), (model.attn, Part("toy.attn", "attention")),
            (model.attn.q_proj, Part("toy.attn.q_proj", "projection")), (model.mlp, Part("toy.mlp", "mlp"))]


def test_a_real_profile_attributes_every_module_and_the_split_operator():
    model, x = Toy(), torch.randn(1, 4, 8)
    with torch.no_grad(), ModuleRanges(_toy_parts(model)), profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(2):
            with record_function("phase:encoder"):
                model(x)
    events = phase_events(prof.events(), "encoder")
    assert len(events) == 2
    result = breakdown([repeat_times(e) for e in events], device=False)
    rows = {row.path: row for row in result.rows}
    assert set(rows) == {"toy", "toy.attn", "toy.attn/sdpa", "toy.attn.q_proj", "toy.mlp", UNATTRIBUTED}
    assert rows["toy.attn/sdpa"].operator == "aten::scaled_dot_product_attention"
    assert all(row.time_us >= 0 for row in result.rows)
    assert sum(row.time_us for row in result.rows) == pytest.approx(result.total_us)


def test_ranges_close_when_a_module_raises_and_hooks_come_off():
    class Broken(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    outer = nn.Sequential(nn.Linear(2, 2), Broken())
    ranges = ModuleRanges([(outer, Part("outer", "block")), (outer[1], Part("outer.1", "block"))])
    with ranges, pytest.raises(RuntimeError, match="boom"):
        outer(torch.zeros(1, 2))
    assert ranges.current == ""
    assert not outer._forward_pre_hooks and not outer[1]._forward_hooks


@pytest.mark.parametrize("profiled_us, faithful", [(1090.0, True), (910.0, True), (1150.0, False), (800.0, False)])
def test_the_sum_to_phase_check_compares_profiled_and_unprofiled_time(profiled_us, faithful):
    reference = Timing(samples_ms=(0.9, 1.0, 1.1), warmup_runs=1, stop_reason="fixed", overhead_ms=0.0,
                       source="perf_counter")
    profile = PhaseProfile("encoder", torch.device("cpu"), {}, Breakdown([], profiled_us, 3, 3, False), reference,
                           pd.DataFrame(), None, ProfileSettings(faithful_within=0.10))
    assert profile.overhead == pytest.approx(profiled_us / 1000 - 1)
    assert profile.faithful is faithful


def test_measured_instrumentation_costs_are_finite_and_split_across_the_range():
    """Sizes are timings (on a busy machine a difference of two can come out 0, clamped); the
    test checks what holds on any machine: finite, never negative, and the split adds up."""
    cost = measure_cost()
    assert math.isfinite(cost.event_us) and cost.event_us >= 0
    for ranges in (cost.profiler_range, cost.timing_range):
        assert math.isfinite(ranges.total_us) and ranges.parent_us >= 0 and ranges.child_us >= 0
        assert ranges.total_us == pytest.approx(ranges.parent_us + ranges.child_us)


def boundaries(*marks: tuple[int, str, bool]) -> list[tuple[int, str, bool]]:
    """(microseconds, path, entering) -> the hooks' (nanoseconds, path, entering)."""
    return [(us * 1000, path, entering) for us, path, entering in marks]


def test_boundary_timestamps_partition_a_call_between_the_innermost_modules():
    marks = boundaries((10, "a", True), (20, "a.b", True), (50, "a.b", False), (70, "a", False),
                       (80, "a", True), (85, "a", False))
    rep = self_times(marks, 0, 100_000)
    assert dict(rep.host_us) == {UNATTRIBUTED: 10 + 10 + 15, "a": 10 + 20 + 5, "a.b": 30}
    assert rep.wall_us == 100 == sum(rep.host_us.values())
    assert dict(rep.calls) == {"a": 2, "a.b": 1} and dict(rep.child_calls) == {UNATTRIBUTED: 2, "a": 1}


def test_a_module_that_raised_closes_the_ones_left_open_inside_it():
    marks = boundaries((10, "a", True), (20, "a.b", True), (30, "a", False), (40, "c", True), (50, "c", False))
    rep = self_times(marks, 0, 60_000)
    assert dict(rep.host_us) == {UNATTRIBUTED: 10 + 10 + 10, "a": 10, "a.b": 10, "c": 10}


def test_a_phase_whose_hooks_cost_little_keeps_the_stand_in_cost(monkeypatch):
    monkeypatch.setattr(hook_timing, "MIN_SECONDS", 0.0)  # just the rounds asked for
    model, x = Toy(), torch.randn(1, 4, 8)
    work = SimpleNamespace(run=lambda: model(x), setup=None)
    with torch.no_grad():
        timing = timed_calls(work, _toy_parts(model), repeats=3, sync=lambda: None, stand_in_us=1e-6)
    assert not timing.in_place and timing.hook_us == 1e-6
    assert len(timing.calls) == len(timing.plain_us) == 3


def test_hook_cost_is_what_taking_each_half_of_the_hooks_off_saves_per_call():
    # 100 us of work; half 0 makes 4 hooked calls, half 1 makes 6, each costing 2 us.
    full = [120.0, 125.0, 119.0]  # round 1 ran slow, all three calls alike: paired, it cancels
    only_half_0, only_half_1 = [108.0, 113.0, 107.0], [112.0, 117.0, 111.0]
    assert hook_cost_us(full, (only_half_0, only_half_1), (4, 6)) == pytest.approx(2.0)
    assert hook_cost_us([100.0], ([101.0], [101.0]), (1, 1)) == 0.0  # noise never makes a cost negative


def test_split_operators_carve_their_profiled_share_out_of_the_timed_module():
    profiled = repeat_times(tree())  # a.b self 15, its scan 15: the scan is half of a.b's time
    timed = self_times(boundaries((10, "a", True), (20, "a.b", True), (60, "a.b", False), (70, "a", False)), 0,
                       100_000)
    split = operator_split([profiled])
    assert split.shares == {"a.b/scan": 0.5} and split.names == {"a.b/scan": "lalm::selective_scan"}
    split = split_operators(timed, split)
    assert split.host_us["a.b"] == split.host_us["a.b/scan"] == 20
    assert split.kernels == {"a.b/scan": "lalm::selective_scan"} and split.calls["a.b/scan"] == 1
    assert sum(split.host_us.values()) == split.wall_us == 100


def test_the_timing_pass_times_every_planned_module_of_a_real_call(monkeypatch):
    # Whether the hooks' cost is measured in place depends on how long the calls took, and so on
    # the machine's load; any hook cost counts here, and the rounds stop at the fewest the in-place
    # figure needs, so what is checked is the pass itself, the same on a quiet or a busy machine.
    monkeypatch.setattr(hook_timing, "IN_PLACE_ABOVE", 0.0)
    monkeypatch.setattr(hook_timing, "MIN_SECONDS", 0.0)
    model, x = Toy(), torch.randn(1, 4, 8)
    work = SimpleNamespace(run=lambda: model(x), setup=None)
    with torch.no_grad():
        timing = timed_calls(work, _toy_parts(model), repeats=3, sync=lambda: None, stand_in_us=50.0)
    assert timing.in_place and math.isfinite(timing.hook_us) and timing.hook_us >= 50.0
    assert len(timing.calls) == len(timing.plain_us) == hook_timing.DECIDE_AFTER + hook_timing.IN_PLACE_ROUNDS
    for rep in timing.calls:
        assert set(rep.host_us) == {"toy", "toy.attn", "toy.attn.q_proj", "toy.mlp", UNATTRIBUTED}
        assert all(t >= 0 for t in rep.host_us.values())
        assert sum(rep.host_us.values()) == pytest.approx(rep.wall_us)
