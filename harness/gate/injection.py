"""Injected regressions, for testing the gate: a kernel made to do real extra work.

``LALM_BENCH_INJECT_WORK=<kernel>:<factor>[,<kernel>:<factor>]`` (e.g. ``conv1d:1.05``) makes
that kernel do ``factor`` times its work: it computes a call twice on a fixed schedule, one
extra call every ``1 / (factor - 1)`` calls (1.05: every 20th call runs twice; 1.25: every 4th).
The extra work is the kernel itself — the same instructions, the same memory traffic — so it
reads as a regression of exactly that size in instruction counts and in CPU time alike, not a
sleep or a spin that only a clock would see. Any run of calls whose length is a multiple of the
schedule's period (20 for 1.05, 4 for 1.25) holds exactly ``factor`` times the work.

Only `harness.gate.kernels.build` applies it; `models/` knows nothing of it.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from fractions import Fraction

from harness.errors import UserError

INJECT_ENV = "LALM_BENCH_INJECT_WORK"
MAX_PERIOD = 1000  # extra fractions finer than 1/1000 would need runs of thousands of calls

KernelFn = Callable[[], object]


def injected_work(known: list[str], env: dict[str, str] | None = None) -> dict[str, Fraction]:
    """Parse the switch ("name:factor[,name:factor]") -> {name: factor}; names must be in `known`.

    The factor is kept as an exact fraction (1.05 -> 21/20), so the schedule repeats exactly.
    """
    spec = (os.environ if env is None else env).get(INJECT_ENV, "").strip()
    factors: dict[str, Fraction] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, factor_text = item.rpartition(":")
        try:
            factor = Fraction(factor_text).limit_denominator(MAX_PERIOD)
        except (ValueError, ZeroDivisionError):
            factor = None
        if not sep or name not in known or factor is None or not 1 < factor <= 2:
            raise UserError(
                f"{INJECT_ENV}={spec!r}: expected <kernel>:<factor in (1, 2]> with a kernel from {', '.join(known)}"
            )
        factors[name] = factor
    return factors


def period(factor: Fraction) -> int:
    """Calls after which the schedule repeats: a run of a multiple of this many calls holds
    exactly `factor` times the work."""
    return (factor - 1).denominator


def with_extra_work(fn: KernelFn, factor: Fraction) -> KernelFn:
    """`fn`, computed twice on the calls where the running total of (factor - 1) crosses an integer."""
    extra = factor - 1
    calls = 0

    def run() -> object:
        nonlocal calls
        calls += 1
        if math.floor(calls * extra) > math.floor((calls - 1) * extra):
            fn()  # the extra computation, its result discarded like a redundant recompute
        return fn()

    return run
