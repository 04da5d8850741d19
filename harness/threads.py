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
import os
import sys

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


def use_threads(threads: int) -> None:
    """Run this process's CPU work on `threads` threads (0: the libraries' own defaults), the one
    way a point's thread setting is applied, whichever executor runs it. OMP_NUM_THREADS sizes the
    OpenMP pools that start later (torch's when a workload imports it only now, child processes');
    torch, when already imported, is told directly. Importing nothing itself, it leaves a workload
    that needs no torch without it."""
    if check_threads(threads) == TORCH_DEFAULT:
        return
    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def apply_threads(threads: int) -> int:
    """Run this process's torch work on `threads` threads (0: torch's default); returns the
    count torch then uses, which is what a command records."""
    import torch

    use_threads(threads)
    return torch.get_num_threads()
