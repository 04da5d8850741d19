"""How well `lalm-bench plan` predicts: held-out lengths, and `small` from `tiny`.

Runs one calibration sweep (two variants x tiny and small x clip lengths, batch 1, the roofline
and memory meters) on this machine, then, from its rows alone:

1. held-out lengths: fit on some lengths (both sizes), predict the others;
2. small from tiny: fit on every tiny point, predict every small point;

and prints, per phase (the model's build included), the mean absolute percentage error of the
predicted time (goal <= 15%) and of the predicted working memory (the phase's peak above what was
resident; goal <= 10%; the CPU meter's resolution makes tiny points' memory figures unreliable).

    python benchmarks/plan_accuracy.py --out results/plan-accuracy            # ~10 min, quiet machine
    python benchmarks/plan_accuracy.py --run results/plan-accuracy            # re-analyse a run
    python benchmarks/plan_accuracy.py --out /tmp/pa --quick                  # a minute: the script works

Figures are meaningful only on a quiet machine (nothing else running): the fit is on wall time.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from harness.api import run_suite
from harness.measure.ceilings import Ceilings
from harness.plan.calibrate import Measured, fit_measured, lookup, run_points
from harness.plan.costs import PHASES, point_cost
from harness.plan.predict import phase_seconds
from harness.suite import validate_suite

VARIANTS = ["ast+llama", "dass+mamba"]
LENGTHS = [1, 2, 4, 8, 16, 32]
HELD_OUT = (2, 8, 32)  # predicted from the others: in between and beyond them


def suite(quick: bool) -> dict:
    lengths = [1, 2] if quick else LENGTHS
    return {
        "name": "plan-accuracy",
        "description": "plan validation: two variants, tiny and small, clip lengths, batch 1",
        "grid": {"variant": VARIANTS, "size": ["tiny", "small"], "audio_seconds": lengths},
        "measure": {"phases": list(PHASES), "meters": ["latency", "memory", "roofline"],
                    "warmup": 1, "repeats": 3 if quick else 5, "max_repeats": 3 if quick else 20,
                    "max_phase_seconds": 0.5 if quick else 3.0, "prompt_tokens": 8, "new_tokens": 4},
        "run": {"device": "cpu", "threads": 1, "timeout_s": 600},
    }


def errors(train: list[Measured], test: list[Measured], ceilings: Ceilings) -> dict[str, dict[str, float]]:
    """Per phase: MAPE of time and of working memory over `test`, fitted on `train`."""
    fits = fit_measured([(train, ceilings)])
    time_err: dict[str, list[float]] = {}
    mem_err: dict[str, list[float]] = {}
    for point, phase, seconds, peak in test:
        fit = lookup(fits, point, phase)
        predicted = phase_seconds(point, phase, fit, ceilings)
        time_err.setdefault(phase, []).append(abs(predicted - seconds) / seconds)
        if peak > 0:
            working = point_cost(point).phases[phase].activation_bytes * fit.memory_share
            mem_err.setdefault(phase, []).append(abs(working - peak) / peak)
    return {phase: {"time_mape": float(np.mean(time_err[phase])),
                    "memory_mape": float(np.mean(mem_err[phase])) if phase in mem_err else float("nan"),
                    "points": len(time_err[phase])} for phase in time_err}


def report(title: str, table: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    print(f"{'phase':<10}{'points':>7}{'time MAPE':>12}{'memory MAPE':>14}")
    for phase, row in table.items():
        memory = "-" if math.isnan(row["memory_mape"]) else f"{row['memory_mape']:.1%}"
        print(f"{phase:<10}{row['points']:>7}{row['time_mape']:>11.1%}{memory:>14}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="run the calibration sweep into this folder, then analyse it")
    where.add_argument("--run", type=Path, help="analyse a sweep this script ran before")
    parser.add_argument("--quick", action="store_true", help="two lengths and few repeats: checks the script")
    parser.add_argument("--json", type=Path, help="also write the errors here")
    args = parser.parse_args()
    run_dir = args.run
    if args.out:
        run_suite(validate_suite(suite(args.quick), "plan_accuracy.py"), out=args.out, overwrite=True)
        run_dir = args.out
    measured, recorded = run_points(run_dir)
    if recorded is None:
        raise SystemExit(f"{run_dir}: the run recorded no ceilings (it must use the roofline meter)")
    ceilings = Ceilings.from_dict(recorded)
    lengths = sorted({p.audio_seconds for p, *_ in measured})
    held = {s for s in lengths if s in HELD_OUT} or {lengths[-1]}
    results = {
        "held_out_lengths": errors([m for m in measured if m[0].audio_seconds not in held],
                                   [m for m in measured if m[0].audio_seconds in held], ceilings),
        "small_from_tiny": errors([m for m in measured if m[0].size == "tiny"],
                                  [m for m in measured if m[0].size == "small"], ceilings),
    }
    report(f"held-out lengths {sorted(held)} s (fit on the others, tiny and small)", results["held_out_lengths"])
    report("small predicted from tiny", results["small_from_tiny"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
