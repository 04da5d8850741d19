"""How long a newcomer's first commands take: `lalm-bench --help` and `lalm-bench list`.

Runs each command `--runs` times in a fresh interpreter (as the shell would) and prints the
median and the range of the wall times, with the load average; docs/PERF.md records a run.

    python scripts/cli_startup_time.py [--runs 7]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = (["--help"], ["list"], ["list", "phases"])


def wall_seconds(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harness", *argv], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per command (default 7)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} logical cores, load average {os.getloadavg()[0]:.1f}; {args.runs} runs each")
    for argv in COMMANDS:
        times = sorted(wall_seconds(argv) for _ in range(args.runs))
        print(f"lalm-bench {' '.join(argv):<12} median {statistics.median(times):6.2f} s "
              f"(min {times[0]:.2f}, max {times[-1]:.2f})")


if __name__ == "__main__":
    main()
