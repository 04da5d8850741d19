"""`lalm-bench gate`: fail (exit 1) when a kernel got materially more expensive.

Two modes:
- **count** (the default on CPU when valgrind is installed; what CI enforces): every available
  kernel of `harness.gate.kernels` is run under callgrind and its instructions per call are
  compared with `results/baselines/kernels-cpu-counts.json`. Counts repeat
  on any x86-64 host, so a verdict transfers between machines (`harness.gate.counting`).
- **wall** (CUDA, or `--mode wall` for people): kernel times interleaved with calibration
  workloads, compared statistically with `results/baselines/kernels-<device>.json`. Wall time
  does not transfer between hosts: against a baseline recorded on another machine, or when it
  stands in for a missing valgrind, a slowdown is reported and the exit status stays 0.
Exit 0: no regression; 1: at least one regression; 2: bad input (e.g. no baseline file).
`--update-baseline` records a new baseline instead of comparing.
"""
from __future__ import annotations

import argparse

NAME = "gate"
HELP = "Kernel-speed regression gate: compare kernel timings with a committed baseline."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from harness.gate.command import add_arguments as add

    add(parser)


def run(args: argparse.Namespace) -> int:
    from harness.gate.command import run as run_gate

    return run_gate(args)
