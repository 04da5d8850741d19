"""A per-test time limit for pytest with nothing but the standard library (no pytest-timeout).

    python -m pytest -p pytest_per_test_timeout --per-test-timeout 60 ...   (scripts/ on sys.path)

A test (setup, call and teardown together) past the limit gets a time-limit error raised in it
(SIGALRM, so from the next Python bytecode: it fails and the session goes on). A test stuck
inside a C call never reaches one: `grace` seconds later faulthandler prints every thread's stack
and ends the process, so the log shows where it hung instead of nothing. Main thread, POSIX only.
"""
from __future__ import annotations

import faulthandler
import signal

import pytest

GRACE_S = 20


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--per-test-timeout", type=float, default=0.0,
                     help="seconds each test may take (0: no limit)")


class _TimedOut(BaseException):
    """Not an Exception: code under test that catches Exception (point runners, probes) must not
    swallow the time limit; pytest still reports it as the test's failure."""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    limit = item.config.getoption("per_test_timeout")
    if not limit:
        yield
        return

    def expire(signum, frame):
        raise _TimedOut(f"{item.nodeid} took more than {limit:g} s (--per-test-timeout)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, limit)
    faulthandler.dump_traceback_later(limit + GRACE_S, exit=True)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, previous)
