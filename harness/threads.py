"""The one CPU-thread setting of every command: `--threads N`, default 1.

One thread by default because a shared machine is the common case for this harness (CI
runners, a laptop with other work, a team's shared box): torch's own default, one thread per
core, makes every OpenMP region wait for threads the OS has descheduled, and a tiny model's
millisecond phases then take several to tens of times longer, varying with the load (docs/PERF.md,
"Threads"). One thread gives figures that repeat and compare across machines; on a machine of
one's own, `--threads 0` gives torch's default and `--threads N` any count.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Mapping

from harness.errors import UserError

DEFAULT_THREADS = 1
TORCH_DEFAULT = 0  # "--threads 0": leave torch's own choice (one thread per core)


def add_threads_argument(parser: argparse.ArgumentParser, suite_setting: str | None = None) -> None:
    """`--threads N`; with `suite_setting`, the flag overrides that suite field and defaults to it."""
    default = f"the suite's {suite_setting}, else {DEFAULT_THREADS}" if suite_setting else str(DEFAULT_THREADS)
    parser.add_argument("--threads", type=int, default=None if suite_setting else DEFAULT_THREADS, metavar="N",
                        help=f"torch CPU threads (default {default}: right on a shared machine; "
                             f"{TORCH_DEFAULT}: torch's default, one per core)")


def check_threads(threads: int) -> int:
    """`--threads N` validated: 0 or more."""
    if threads < 0:
        raise UserError(f"--threads must be >= 0 ({TORCH_DEFAULT}: one per core), got {threads}")
    return threads


def _set_threads(threads: int) -> None:
    if check_threads(threads) == TORCH_DEFAULT:
        return
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def use_threads(threads: int) -> Iterator[None]:
    """Run this process's CPU work inside the block on `threads` threads (0: the libraries' own
    defaults), the one way a point's thread setting is applied, whichever executor runs it; after
    it, OMP_NUM_THREADS and torch's count are what they were, so a point run in the driver leaves
    no setting to the next point or to the driver's children. OMP_NUM_THREADS sizes the OpenMP
    pools that start later (torch's when a workload imports it only now, child processes');
    torch, when already imported, is told directly. Importing nothing itself, it leaves a workload
    that needs no torch without it (a torch first imported inside the block had no count before
    it, and keeps the block's)."""
    saved_env = os.environ.get("OMP_NUM_THREADS")
    torch = sys.modules.get("torch")
    saved_count = torch.get_num_threads() if torch is not None else None
    _set_threads(threads)
    try:
        yield
    finally:
        if saved_env is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved_env
        if torch is not None:
            torch.set_num_threads(saved_count)


def thread_environment(threads: int, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child interpreter that should run on `threads` threads (0: the
    libraries' defaults, so an OMP_NUM_THREADS inherited from `base` (default: this process's)
    is dropped rather than passed on)."""
    env = dict(os.environ if base is None else base)
    env.pop("OMP_NUM_THREADS", None)
    if check_threads(threads) != TORCH_DEFAULT:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def apply_threads(threads: int) -> int:
    """Run the rest of this process's torch work (a command's) on `threads` threads (0: torch's
    current setting, its default unless something set it); returns the count torch then uses,
    which is what a command records."""
    import torch

    _set_threads(threads)
    return torch.get_num_threads()
