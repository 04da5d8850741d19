"""Timer logic with a fake clock: bounds on n, percentiles, samples kept, warm-up not counted."""
from __future__ import annotations

import itertools
import math

import pytest

from harness.errors import UserError
from harness.measure.timing import PerfCounterClock, Timer, TimerSettings, Timing, relative_iqr


class FakeClock:
    """Calls the function, then reports the next of `values` (cycled) as its time in ms."""

    source = "fake"

    def __init__(self, values):
        self._values = itertools.cycle(values)
        self.timed = 0

    def time_ms(self, fn):
        fn()
        self.timed += 1
        return next(self._values)


class Counter:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1


def fake_now(step: float = 0.0):
    """A wall clock that advances `step` seconds per reading."""
    ticks = itertools.count()
    return lambda: next(ticks) * step


def test_warmup_is_run_but_not_counted():
    fn = Counter()
    settings = TimerSettings(warmup=3, min_runs=5, max_runs=5)
    timing = Timer(settings, clock=FakeClock([1.0, 2.0, 3.0]), now=fake_now()).measure(fn)
    assert timing.warmup_runs == 3
    assert len(timing.samples_ms) == 5
    assert fn.calls == 3 + 5


def test_samples_are_kept_in_order_and_percentiles_bracket_the_median():
    values = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0]
    settings = TimerSettings(warmup=0, min_runs=7, max_runs=7)
    timing = Timer(settings, clock=FakeClock(values), now=fake_now()).measure(Counter())
    assert timing.samples_ms == tuple(values)
    m = timing.to_measurement()
    assert m.lo <= m.value <= m.hi
    assert m.value == 5.0
    assert (m.metric, m.unit, m.n, m.source) == ("latency_ms", "ms", 7, "fake")
    assert m.samples == tuple(values)
    assert "IQR" in m.note and "warm-up" in m.note


def test_constant_samples_stop_at_min_runs():
    settings = TimerSettings(warmup=0, min_runs=4, max_runs=100)
    timing = Timer(settings, clock=FakeClock([2.0]), now=fake_now()).measure(Counter())
    assert len(timing.samples_ms) == 4
    assert "relative IQR" in timing.stop_reason


def test_noisy_samples_run_to_max_runs():
    settings = TimerSettings(warmup=0, min_runs=3, max_runs=12, max_seconds=1e9, target_rel_spread=0.01)
    timing = Timer(settings, clock=FakeClock([1.0, 10.0]), now=fake_now()).measure(Counter())
    assert len(timing.samples_ms) == 12
    assert timing.stop_reason.startswith("max_runs")


def test_time_cap_stops_after_min_runs():
    settings = TimerSettings(warmup=0, min_runs=3, max_runs=1000, max_seconds=5.0, target_rel_spread=0.0)
    timing = Timer(settings, clock=FakeClock([1.0, 10.0]), now=fake_now(step=1.0)).measure(Counter())
    assert 3 <= len(timing.samples_ms) < 1000
    assert timing.stop_reason.startswith("max_seconds")


def test_min_runs_wins_over_time_cap():
    settings = TimerSettings(warmup=0, min_runs=6, max_runs=1000, max_seconds=0.001, target_rel_spread=0.0)
    timing = Timer(settings, clock=FakeClock([1.0, 10.0]), now=fake_now(step=10.0)).measure(Counter())
    assert len(timing.samples_ms) == 6


def test_warmup_seconds_extend_warmup_beyond_the_count():
    settings = TimerSettings(warmup=1, warmup_seconds=3.5, min_runs=2, max_runs=2)
    timing = Timer(settings, clock=FakeClock([1.0]), now=fake_now(step=1.0)).measure(Counter())
    assert timing.warmup_runs > 1


def test_setup_runs_before_every_call_outside_the_clock():
    order: list[str] = []
    settings = TimerSettings(warmup=2, min_runs=3, max_runs=3)
    clock = FakeClock([1.0])
    Timer(settings, clock=clock, now=fake_now()).measure(lambda: order.append("run"),
                                                         setup=lambda: order.append("setup"))
    assert order == ["setup", "run"] * 5
    assert clock.timed == 5 + 50  # five timed calls plus the overhead measurement's empty calls


def test_exceptions_from_the_callable_propagate():
    def boom():
        raise RuntimeError("bad")

    with pytest.raises(RuntimeError, match="bad"):
        Timer(TimerSettings(warmup=0), clock=FakeClock([1.0]), now=fake_now()).measure(boom)


@pytest.mark.parametrize("kwargs, named", [
    ({"min_runs": 0}, "min_runs"),
    ({"warmup": -1}, "warmup"),
    ({"max_seconds": -1.0}, "max_seconds"),
    ({"target_rel_spread": math.nan}, "target_rel_spread"),
    ({"min_runs": 3, "max_runs": 2}, "max_runs"),
])
def test_bad_settings_are_user_errors(kwargs, named):
    with pytest.raises(UserError, match=named):
        TimerSettings(**kwargs)


def test_relative_iqr_edge_cases():
    assert relative_iqr([3.0, 3.0, 3.0]) == 0.0
    assert relative_iqr([0.0, 0.0, 0.0]) == 0.0
    assert relative_iqr([0.0, 0.0, 0.0, 1.0, 1.0]) == math.inf
    assert relative_iqr([]) == math.inf
    assert relative_iqr([1.0, 2.0, 3.0, 4.0, 5.0]) == pytest.approx(2.0 / 3.0)


def test_host_clock_synchronises_around_each_call_and_reports_overhead():
    syncs = Counter()
    fn = Counter()
    clock = PerfCounterClock(sync=syncs)
    elapsed = clock.time_ms(fn)
    assert fn.calls == 1 and syncs.calls == 2
    assert elapsed >= 0
    timer = Timer(TimerSettings(warmup=0, min_runs=2, max_runs=2), clock=clock)
    overhead = timer.overhead_ms()
    assert math.isfinite(overhead) and overhead >= 0
    assert timer.overhead_ms() == overhead  # measured once per timer


def test_empty_timing_has_nan_statistics():
    timing = Timing((), 0, "", 0.0, "fake")
    assert math.isnan(timing.median)
