"""Does the harness timer agree with torch.utils.benchmark, and how stable are its medians?

Times one fixed workload (a chain of matmuls calibrated to about --target-ms) with both timers,
interleaved so that drifting machine load hits both alike, and prints:
- each round's harness median and torch.utils.benchmark median,
- the agreement: |median of harness medians / median of torch medians - 1| (must be < 5%),
- the spread of repeated harness medians in one process: (max - min) / median,
- the harness timer's own overhead per sample, and the machine's load average.

Exit status 1 when the two timers disagree by more than --tolerance. Run it on a quiet machine:
    python benchmarks/timer_agreement.py [--device cuda] [--rounds 5] [--threads 1]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.utils.benchmark as torch_benchmark

from harness.measure.timing import Timer, TimerSettings, synchronizer


def calibrated_workload(target_ms: float, device: torch.device, size: int = 256):
    """A callable of `k` dependent (size x size) matmuls with k chosen to take about target_ms."""
    generator = torch.Generator().manual_seed(0)
    a = (torch.randn(size, size, generator=generator) / size**0.5).to(device)
    sync = synchronizer(device)

    def chain(k: int) -> torch.Tensor:
        x = a
        for _ in range(k):
            x = x @ a
        return x

    chain(4)  # first-call costs (thread pool, kernels) stay out of the calibration

    def fastest_ms(k: int) -> float:  # the fastest of a few calls: load only ever adds time
        times = []
        for _ in range(5):
            start = time.perf_counter()
            chain(k)
            sync()
            times.append((time.perf_counter() - start) * 1e3)
        return min(times)

    probe = 8
    while fastest_ms(probe) < 5:
        probe *= 2
    k = max(1, round(probe * target_ms / fastest_ms(probe)))
    return (lambda: chain(k)), k


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--target-ms", type=float, default=50.0)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of both timers")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (fewer = less contention)")
    parser.add_argument("--tolerance", type=float, default=0.05)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    fn, k = calibrated_workload(args.target_ms, device)
    harness_timer = Timer(TimerSettings(), device)
    reference = torch_benchmark.Timer(stmt="fn()", globals={"fn": fn})

    print(f"workload: {k} chained 256x256 matmuls on {device} ({args.threads} CPU threads)")
    print(f"harness timer: {harness_timer.clock.source}, overhead {harness_timer.overhead_ms() * 1e3:.2f} us/sample")
    print(f"{'round':>5} {'harness ms':>11} {'n':>5} {'rel IQR':>8} {'torch ms':>10} {'blocks':>6} {'diff':>7}")
    harness_medians, torch_medians = [], []
    for i in range(args.rounds):
        timing = harness_timer.measure(fn)
        ref = reference.blocked_autorange(min_run_time=2.0)
        harness_medians.append(timing.median)
        torch_medians.append(ref.median * 1e3)
        diff = timing.median / (ref.median * 1e3) - 1
        print(f"{i:>5} {timing.median:>11.3f} {len(timing.samples_ms):>5} {timing.rel_iqr:>8.1%} "
              f"{ref.median * 1e3:>10.3f} {len(ref.times):>6} {diff:>+7.1%}")

    harness_ms, torch_ms = statistics.median(harness_medians), statistics.median(torch_medians)
    agreement = abs(harness_ms / torch_ms - 1)
    spread = (max(harness_medians) - min(harness_medians)) / harness_ms
    load = os.getloadavg()
    print(f"median of medians: harness {harness_ms:.3f} ms, torch.utils.benchmark {torch_ms:.3f} ms")
    print(f"agreement: {agreement:.2%} ({'within' if agreement <= args.tolerance else 'OUTSIDE'} "
          f"{args.tolerance:.0%})")
    print(f"repeated harness medians: spread (max-min)/median {spread:.2%} over {args.rounds} rounds")
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    return 0 if agreement <= args.tolerance else 1


if __name__ == "__main__":
    raise SystemExit(main())
