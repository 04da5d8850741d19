"""Run one point in a process of its own, and turn whatever happens to it into an Outcome.

The point runs in a child forked from a multiprocessing forkserver that has already imported
the workload's module (torch, transformers, models), so a fresh, isolated process per point
costs milliseconds, not the seconds a cold interpreter would. The child:
  - ignores Ctrl-C (the driver decides what an interrupt means) and dies with its parent, so a
    killed driver leaves no point running;
  - writes its stdout/stderr to a log file, whose tail goes into the error of a failed point;
  - optionally caps its address space (RLIMIT_AS) so a CPU out-of-memory is a MemoryError.
A CUDA point in a worker whose forkserver had already initialised CUDA (something the preload
imported called into it) would fail deep inside torch ("Cannot re-initialize CUDA in forked
subprocess"); the worker says so in one line instead. The parent waits at most the point's
timeout, then kills it. A child that dies without an
answer is classified by how it died: SIGKILL while the kernel's OOM-kill counter rose is an
oom, any other death a crash.
"""
from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import multiprocessing
import os
import resource
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from harness.executors.base import Outcome, load_workload, signal_name, worker_context
from harness.errors import UserError
from harness.failure import classify, describe
from harness.points import Point
from harness.threads import TORCH_DEFAULT, use_threads

if TYPE_CHECKING:
    from harness.suite import Measure

PR_SET_PDEATHSIG = 1
LOG_TAIL_LINES = 6
JOIN_GRACE_S = 10.0


@contextlib.contextmanager
def memory_cap(limit_mb: int) -> Iterator[None]:
    """Let this process grow its address space by at most `limit_mb` MiB (0: no cap).

    The cap is relative to the current size because the libraries a worker has loaded (torch
    maps hundreds of MiB) differ between machines; what is capped is what the point allocates.
    Only the soft limit changes, so it can be lifted again afterwards.
    """
    if not limit_mb:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = psutil.Process().memory_info().vms + limit_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def run_point(point: Point, measure: Measure, workload: str, memory_limit_mb: int = 0,
              threads: int = TORCH_DEFAULT) -> Outcome:
    """Run the workload on `point` in this process on `threads` CPU threads (0: the libraries'
    defaults); exceptions become a failed Outcome."""
    started = time.perf_counter()
    try:
        measure_point = load_workload(workload)
        with use_threads(threads), memory_cap(memory_limit_mb):
            result = measure_point(point, measure)
        outcome = Outcome(point, "ok", list(result.rows), list(result.samples), dict(result.files))
    except UserError as err:
        outcome = Outcome(point, "error", error=str(err))
    except Exception as exc:  # noqa: BLE001 - any failure of the workload is a result
        outcome = Outcome(point, classify(exc), error=describe(exc, where=True))
    outcome.context = worker_context(point)
    outcome.seconds = time.perf_counter() - started
    return outcome


def cuda_fork_problem(point: Point) -> str:
    """Why this forked worker cannot run `point` on CUDA, or '' (CPU points, or CUDA is usable).

    torch marks a child "in bad fork" when its parent had initialised CUDA before forking, even
    if only by asking `torch.cuda.is_available()`; the child's first CUDA call would then raise.
    """
    torch = sys.modules.get("torch")
    if not point.device.startswith("cuda") or torch is None or not torch.cuda._is_in_bad_fork():
        return ""
    return ("CUDA was initialised in the forkserver before this worker was forked (by a module its preload "
            "imported), so the worker cannot use the GPU")


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent (the forkserver) exits; the forkserver
    exits when the driver does, so a killed driver leaves no point running. No-op elsewhere."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _child_main(conn: Connection, point: Point, measure: Measure, workload: str, memory_limit_mb: int,
                threads: int, env: dict[str, str], log_path: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    faulthandler.enable()  # a segfault leaves its Python stack in the log
    # The forkserver's environment is from when it started; this point's (its GPU) is passed in.
    os.environ.update(env)
    problem = cuda_fork_problem(point)
    if problem:
        outcome = Outcome(point, "error", error=problem)
    else:
        outcome = run_point(point, measure, workload, memory_limit_mb, threads)
    try:
        conn.send(outcome)
    except Exception as exc:  # noqa: BLE001 - e.g. a row value that cannot be pickled
        message = f"workload result could not be sent back: {describe(exc, where=True)}"
        conn.send(Outcome(point, "error", error=message, context=outcome.context, seconds=outcome.seconds))
    conn.close()


def _oom_kill_counts() -> tuple[int, ...]:
    """Kernel OOM-kill counters (system-wide and this cgroup's); a rise means the OOM killer struck."""
    counts = []
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/vmstat").read_text().splitlines():
            if line.startswith("oom_kill "):
                counts.append(int(line.split()[1]))
    with contextlib.suppress(OSError, ValueError, IndexError):
        cgroup = Path("/proc/self/cgroup").read_text().splitlines()[0].split(":", 2)[2]
        for line in Path(f"/sys/fs/cgroup{cgroup}/memory.events").read_text().splitlines():
            if line.startswith("oom_kill "):
                counts.append(int(line.split()[1]))
    return tuple(counts)


def _log_tail(path: str) -> str:
    with contextlib.suppress(OSError):
        lines = Path(path).read_text(errors="replace").strip().splitlines()
        return " | ".join(lines[-LOG_TAIL_LINES:])
    return ""


def _death(exitcode: int | None, oom_before: tuple[int, ...]) -> tuple[str, str]:
    if exitcode is not None and exitcode < 0:
        if -exitcode == signal.SIGKILL and _oom_kill_counts() > oom_before:
            return "oom", "worker killed by the kernel OOM killer (SIGKILL while the oom_kill counter rose)"
        return "crash", f"worker killed by {signal_name(-exitcode)}"
    return "crash", f"worker exited with code {exitcode} without a result"


def _context() -> multiprocessing.context.BaseContext:
    return multiprocessing.get_context("forkserver")


def preload(workload: str) -> None:
    """Have the forkserver import, once, what every worker needs: this module, the settings
    types it unpickles, and the workload's module. Only takes effect before the forkserver
    starts (once per process), so later workers of another workload import theirs themselves."""
    _context().set_forkserver_preload([__name__, "harness.suite", workload.partition(":")[0]])


def run_isolated(point: Point, measure: Measure, workload: str, timeout_s: float, memory_limit_mb: int = 0,
                 threads: int = TORCH_DEFAULT, env: dict[str, str] | None = None,
                 log_path: Path | None = None) -> Outcome:
    """Run `point` in a fresh worker process; always returns an Outcome (never raises for the point).

    threads: the worker's CPU threads (`run_point`). env: variables the worker sets first (its
    GPU). log_path: where the worker's stdout/stderr go; a temporary file (removed) when None.
    """
    ctx = _context()
    keep_log = log_path is not None
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix="lalm-bench-point-", suffix=".log")
        os.close(fd)
        log_path = Path(name)
    receiver, sender = ctx.Pipe(duplex=False)
    oom_before = _oom_kill_counts()
    started = time.perf_counter()
    proc = ctx.Process(target=_child_main, name=f"lalm-bench {point.label}", daemon=True,
                       args=(sender, point, measure, workload, memory_limit_mb, threads, env or {}, str(log_path)))
    proc.start()
    sender.close()
    try:
        outcome = None
        answered = receiver.poll(timeout_s)
        if answered:
            with contextlib.suppress(EOFError, OSError):
                outcome = receiver.recv()
        elif proc.is_alive():
            proc.kill()
            outcome = Outcome(point, "timeout", error=f"no result within the {timeout_s:g} s timeout; worker killed",
                              seconds=time.perf_counter() - started)
        proc.join(JOIN_GRACE_S)
        if proc.is_alive():  # answered but will not exit, or closed its pipe and hangs
            proc.kill()
            proc.join()
        if outcome is None:
            status, message = _death(proc.exitcode, oom_before)
            outcome = Outcome(point, status, error=message, seconds=time.perf_counter() - started)
        if outcome.status != "ok":
            tail = _log_tail(str(log_path))
            outcome.error = f"{outcome.error}; log: {tail}" if tail else outcome.error
        if not outcome.context:
            outcome.context = worker_context(point)
        return outcome
    finally:
        if proc.is_alive():  # interrupted while waiting: take the point down with us
            proc.kill()
            proc.join()
        receiver.close()
        if not keep_log or (log_path.exists() and log_path.stat().st_size == 0):
            log_path.unlink(missing_ok=True)
