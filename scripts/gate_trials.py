"""Does the wall-mode kernel gate catch a real slowdown and stay quiet otherwise? Tally repeated runs.

(Count mode, what CI enforces, has its own trial: scripts/gate_count_trials.py.)
Runs `lalm-bench gate --mode wall` in a fresh process each time, against one baseline:
  1. --runs runs with LALM_BENCH_INJECT_WORK=<kernel>:<factor> (real extra work), the kernel rotating
     through every measured kernel: each must FAIL (exit 1);
  2. --runs clean runs: each must PASS (exit 0);
  3. --runs clean runs while a busy loop occupies one core: each must PASS.
Then prints the tally and, from the saved records, every kernel's largest ratio and largest
interval lower bound over the clean runs (the measured noise the thresholds must clear), and
how each kernel's raw time followed the two calibrations from run to run: the fitted copy
weight beside the one the registry declares (`Kernel.copy_weight`).

    python scripts/gate_trials.py                       # against results/baselines/kernels-cpu.json
    python scripts/gate_trials.py --record-baseline     # first record a fresh baseline here
    python scripts/gate_trials.py --runs 3 --factor 1.25 --out /tmp/trials

Exit status 0 when every run gave the expected verdict, 1 otherwise.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from harness.gate.compare import compare_records
from harness.gate.record import load
from harness.gate.stats import Thresholds

GATE = [sys.executable, "-m", "harness", "gate", "--mode", "wall"]


def run_gate(args: list[str], env: dict[str, str], log: Path) -> tuple[int, float]:
    """One gate process; its output goes to `log`. Returns (exit code, wall seconds)."""
    started = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.run(GATE + args, env=env, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    return code, time.perf_counter() - started


def busy_loop() -> subprocess.Popen:
    """A process that keeps one core busy until it is terminated."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, default=Path("results/baselines/kernels-cpu.json"))
    parser.add_argument("--record-baseline", action="store_true", help="record --baseline here first")
    parser.add_argument("--runs", type=int, default=10, help="runs per condition (default 10)")
    parser.add_argument("--factor", type=float, default=1.25, help="injected extra work (default 1.25)")
    parser.add_argument("--out", type=Path, help="folder for logs and records (default: a temporary one)")
    parser.add_argument("gate_args", nargs="*", help="extra arguments for every gate run (after --)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="gate-trials-"))
    out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "LALM_BENCH_INJECT_WORK"}

    if args.record_baseline:
        code, _ = run_gate(["--update-baseline", "--baseline", str(args.baseline), *args.gate_args], env, out / "baseline.log")
        if code != 0:
            print(f"recording the baseline failed (exit {code}); see {out / 'baseline.log'}")
            return 1
    kernels = list(load(args.baseline).kernels)

    tally: dict[str, list[bool]] = {"slowdown": [], "clean": [], "busy": []}
    for condition, expected in (("slowdown", 1), ("clean", 0), ("busy", 0)):
        for i in range(args.runs):
            run_env = dict(env)
            label = condition
            if condition == "slowdown":
                kernel = kernels[i % len(kernels)]
                run_env["LALM_BENCH_INJECT_WORK"] = f"{kernel}:{args.factor}"
                label = f"slowdown {kernel} x{args.factor}"
            record = out / f"{condition}-{i}.json"
            gate_args = ["--baseline", str(args.baseline), "--seed", str(i), "--save", str(record), *args.gate_args]
            loop = busy_loop() if condition == "busy" else None
            try:
                code, wall = run_gate(gate_args, run_env, out / f"{condition}-{i}.log")
            finally:
                if loop is not None:
                    loop.terminate()
                    loop.wait()
            tally[condition].append(code == expected)
            mark = "as expected" if code == expected else "UNEXPECTED"
            print(f"{label:40s} run {i}: exit {code} ({wall:.0f} s) {mark}", flush=True)

    print()
    print(f"slowdown x{args.factor} caught: {sum(tally['slowdown'])}/{args.runs}")
    print(f"clean runs passed:        {sum(tally['clean'])}/{args.runs}")
    print(f"busy-core runs passed:    {sum(tally['busy'])}/{args.runs}")
    summarise_noise(args.baseline, sorted(out.glob("clean-*.json")) + sorted(out.glob("busy-*.json")), out)
    slowed = {path: kernels[int(path.stem.split("-")[1]) % len(kernels)] for path in out.glob("slowdown-*.json")}
    fit_copy_weights(args.baseline, sorted(out.glob("*-*.json")), slowed)
    print(f"logs and records: {out}")
    return 0 if all(all(v) for v in tally.values()) else 1


def summarise_noise(baseline_path: Path, records: list[Path], out: Path) -> None:
    """Per kernel over the runs without a slowdown: the ratios and the largest interval lower
    bound of the first session (before any confirmation), and how often it was too noisy to judge."""
    if not records:
        return
    baseline = load(baseline_path)
    rows: dict[str, list[tuple[float, float]]] = {}
    noisy: dict[str, int] = {}
    for path in records:
        for v in compare_records(baseline, load(path), Thresholds()):
            if v.status == "noisy":
                noisy[v.name] = noisy.get(v.name, 0) + 1
            elif v.comparison is not None:
                rows.setdefault(v.name, []).append((v.comparison.ratio, v.comparison.lo))
    print(f"\n{len(records)} runs without a slowdown vs the baseline (first sessions):")
    print(f"  {'kernel':28s} ratio min / median / max   largest lower bound   not judged (noisy)")
    summary = {}
    for name in baseline.kernels:
        judged = noisy.get(name, 0)
        if name not in rows:
            summary[name] = {"noisy_runs": judged}
            print(f"  {name:28s} {'-':>26s}   {'-':>19s}   {judged:>18d}")
            continue
        ratios, lows = np.array(rows[name]).T
        summary[name] = {
            "ratio_min": ratios.min(), "ratio_median": np.median(ratios), "ratio_max": ratios.max(),
            "lo_max": lows.max(), "noisy_runs": judged,
        }
        print(
            f"  {name:28s} {ratios.min():.3f} / {np.median(ratios):.3f} / {ratios.max():.3f}"
            f"   {lows.max():19.3f}   {judged:>18d}"
        )
    (out / "noise.json").write_text(json.dumps(summary, indent=1, default=float) + "\n")


def fit_copy_weights(baseline_path: Path, records: list[Path], slowed: dict[Path, str]) -> None:
    """Per kernel, regress log(raw time / matmul) on log(copy / matmul) over the runs (each
    relative to the baseline), leaving out the runs that slowed that kernel. The slope is the
    copy weight that would have cancelled the run-to-run drift; the correlation says how much
    of the drift the copy explains."""
    baseline = load(baseline_path)
    runs = [load(path) for path in records]
    matmul = np.log([r.calibration_ms["matmul"] / baseline.calibration_ms["matmul"] for r in runs])
    copy = np.log([r.calibration_ms["copy"] / baseline.calibration_ms["copy"] for r in runs])
    print(f"\ncopy weights over {len(runs)} runs (copy time {np.exp(copy.min()):.2f}-{np.exp(copy.max()):.2f}x the baseline's):")
    print(f"  {'kernel':28s} declared   fitted   correlation")
    for name, kernel in baseline.kernels.items():
        keep = [i for i, path in enumerate(records) if slowed.get(path) != name and name in runs[i].kernels]
        if len(keep) < 3:
            continue
        raw = np.log([runs[i].kernels[name].raw_ms_median / kernel.raw_ms_median for i in keep])
        x, y = copy[keep] - matmul[keep], raw - matmul[keep]
        slope = np.polyfit(x, y, 1)[0] if np.ptp(x) > 0 else float("nan")
        corr = np.corrcoef(x, y)[0, 1] if np.ptp(x) > 0 and np.ptp(y) > 0 else float("nan")
        print(f"  {name:28s} {kernel.copy_weight:8.2f} {slope:8.2f} {corr:13.2f}")


if __name__ == "__main__":
    sys.exit(main())
