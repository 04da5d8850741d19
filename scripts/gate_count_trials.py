"""Does the count-mode kernel gate catch real extra work and stay quiet otherwise? Tally runs.

Each round runs `lalm-bench gate --mode count` three times, each a fresh process against one
baseline:
  1. unchanged code: must PASS (exit 0);
  2. LALM_BENCH_INJECT_WORK=<every kernel>:1.05 (5% more real work: every 20th call computed
     twice): must FAIL, and every kernel must be flagged;
  3. the same with 1.25 (every 4th call twice).
Every kernel is counted in its own window of calls, so one injected run tests every kernel at
once. With --clone, the unchanged runs alternate between this checkout and a fresh clone at
another path (another checkout, environment and working directory than the baseline's).
Then prints the tallies, the spread of each kernel's counts over the unchanged runs (relative to
the baseline), the ratios the injected runs read, and each run's wall time.

    python scripts/gate_count_trials.py --rounds 5                 # against the committed count baseline
    python scripts/gate_count_trials.py --record-baseline --rounds 3 --clone --out /tmp/trials
    python scripts/gate_count_trials.py --out /tmp/trials --report-only   # the spread of a trial cut short

Exit status 0 when every run gave the expected verdict, 1 otherwise.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from harness.gate.count_compare import CountThresholds, compare_counts
from harness.gate.count_record import load
from harness.gate.injection import INJECT_ENV

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "results/baselines/kernels-cpu-counts.json"
FACTORS = ("1.05", "1.25")


def run_gate(cwd: Path, args: list[str], env: dict[str, str], log: Path) -> tuple[int, float]:
    """One count-mode gate process run from `cwd`; its output goes to `log`. (exit code, wall s)."""
    started = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.run(
            [sys.executable, "-m", "harness", "gate", "--mode", "count", *args],
            cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False,
        ).returncode  # fmt: skip
    return code, time.perf_counter() - started


def fresh_clone(out: Path) -> Path:
    """A clone of this checkout's HEAD at another path (the count baseline travels with it)."""
    target = out / "clone"
    if not target.exists():
        subprocess.run(["git", "clone", "-q", str(REPO), str(target)], check=True)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    parser.add_argument("--record-baseline", action="store_true", help="record --baseline here first")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of (unchanged, x1.05, x1.25) runs (default 5)")
    parser.add_argument("--clone", action="store_true", help="alternate the unchanged runs with a fresh clone")
    parser.add_argument("--out", type=Path, help="folder for logs and records (default: a temporary one)")
    parser.add_argument("--report-only", action="store_true", help="only summarise the records already in --out")
    args = parser.parse_args()
    out = (args.out or Path(tempfile.mkdtemp(prefix="gate-count-trials-"))).resolve()
    out.mkdir(parents=True, exist_ok=True)
    baseline_path = args.baseline.resolve()
    env = {k: v for k, v in os.environ.items() if k != INJECT_ENV}
    if args.report_only:
        summarise(baseline_path, out)
        return 0

    if args.record_baseline:
        code, wall = run_gate(REPO, ["--update-baseline", "--baseline", str(baseline_path)], env, out / "baseline.log")
        print(f"baseline recorded: exit {code} ({wall:.0f} s)", flush=True)
        if code != 0:
            return 1
    kernels = list(load(baseline_path).kernels)
    clone = fresh_clone(out) if args.clone else None

    walls: list[float] = []
    passed: list[bool] = []
    caught: dict[str, dict[str, int]] = {f: dict.fromkeys(kernels, 0) for f in FACTORS}
    for i in range(args.rounds):
        for condition in ("unchanged", *FACTORS):
            run_env, where = dict(env), REPO
            if condition == "unchanged":
                where = clone if clone is not None and i % 2 else REPO
            else:
                run_env[INJECT_ENV] = ",".join(f"{k}:{condition}" for k in kernels)
            name = f"{condition}-{i}"
            record = out / f"{name}.json"
            code, wall = run_gate(where, ["--baseline", str(baseline_path), "--save", str(record)], run_env,
                                  out / f"{name}.log")
            walls.append(wall)
            expected = 0 if condition == "unchanged" else 1
            flagged = flagged_kernels(baseline_path, record) if record.is_file() else []
            if condition == "unchanged":
                passed.append(code == 0)
            else:
                for kernel in flagged:
                    caught[condition][kernel] += 1
            mark = "as expected" if code == expected else "UNEXPECTED"
            place = " (clone)" if where != REPO else ""
            print(f"{name:16s}{place:9s} exit {code} ({wall:.0f} s), {len(flagged)} kernels flagged: {mark}", flush=True)

    print(f"\nunchanged runs passed: {sum(passed)}/{len(passed)}")
    for factor in FACTORS:
        tallies = ", ".join(f"{k} {n}/{args.rounds}" for k, n in caught[factor].items())
        print(f"x{factor} caught per kernel: {tallies}")
    print(f"gate wall time per run: {min(walls):.0f}-{max(walls):.0f} s (median {np.median(walls):.0f} s)")
    summarise(baseline_path, out)
    print(f"logs and records: {out}")
    complete = all(n == args.rounds for f in FACTORS for n in caught[f].values())
    return 0 if all(passed) and complete else 1


def flagged_kernels(baseline_path: Path, record: Path) -> list[str]:
    verdicts = compare_counts(load(baseline_path), load(record), CountThresholds())
    return [v.name for v in verdicts if v.status == "regression"]


def summarise(baseline_path: Path, out: Path) -> None:
    """Per kernel: the unchanged runs' instruction ratios (the spread) and the injected runs' ratios."""
    baseline = load(baseline_path)
    conditions = {c: [load(p) for p in sorted(out.glob(f"{c}-*.json"))] for c in ("unchanged", *FACTORS)}
    print(f"\ninstructions per call relative to the baseline ({', '.join(f'{c}: {len(r)} runs' for c, r in conditions.items())}):")
    print(f"  {'kernel':28s} {'unchanged':>15s} {'x1.05 injected':>15s} {'x1.25 injected':>15s}")
    for name, before in baseline.kernels.items():
        cells = []
        for condition in conditions:
            ratios = [r.kernels[name].per_call["Ir"] / before.per_call["Ir"]
                      for r in conditions[condition] if name in r.kernels]
            cells.append(f"{min(ratios):.4f}-{max(ratios):.4f}".rjust(15) if ratios else "-".rjust(15))
        print(f"  {name:28s} {' '.join(cells)}")


if __name__ == "__main__":
    sys.exit(main())
