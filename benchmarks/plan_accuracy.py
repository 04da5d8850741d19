"""How well `lalm-bench plan` predicts: held-out lengths, and `small` from `tiny`.

Runs one calibration sweep (two variants x tiny and small x clip lengths, batch 1, the roofline
and memory meters) on this machine, then, from its rows alone:

1. held-out lengths: fit on some lengths (both sizes), predict the others;
2. small from tiny: fit on every tiny point, predict every small point;

and prints, per phase (the model's build included), the mean absolute percentage error of the
predicted time (goal <= 15%) and of the predicted working memory (the phase's peak above what was
resident, from the dry run, which fits nothing; goal <= 10%). Memory is scored only where the
meter measured at least its resolution (32 MiB on a CPU): below it RSS reads anywhere from 0 to
the truth, and the census line says how many phases that leaves, and how many more the dry run
puts above the resolution although the meter read below it (malloc reused resident heap). The
replicates line is the noise floor: how far measurements of the same computation (the fbank at
one length under every model, a build at every length) stray from their median.

    python benchmarks/plan_accuracy.py --out results/plan-accuracy            # ~2.5 min
    python benchmarks/plan_accuracy.py --run results/plan-accuracy            # re-analyse a run
    python benchmarks/plan_accuracy.py --out results/plan-accuracy-quick --quick   # a minute: the script works

Figures are meaningful only on a quiet machine (nothing else running): the fit is on wall time.
The figures of a run and the machine's load are in docs/PERF.md ("Plan accuracy").
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from harness.api import run_suite
from harness.measure.ceilings import Ceilings
from harness.plan.calibrate import BUILD, Measured, fit_measured, lookup, run_points
from harness.plan.costs import PHASES
from harness.plan.predict import memory_resolution, phase_seconds
from harness.plan.working_set import working_set
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
    """Per phase over `test`: MAPE of the time fitted on `train`, and of the working memory over the
    points whose measured peak is above the meter's resolution (the dry run fits nothing)."""
    fits = fit_measured([(train, ceilings)])
    time_err: dict[str, list[float]] = {}
    mem_err: dict[str, list[float]] = {}
    for point, phase, seconds, peak in test:
        predicted = phase_seconds(point, phase, lookup(fits, point, phase), ceilings)
        time_err.setdefault(phase, []).append(abs(predicted - seconds) / seconds)
        if phase != BUILD and peak >= memory_resolution(point.device):
            working = working_set(point).phase_bytes[phase]
            mem_err.setdefault(phase, []).append(abs(working - peak) / peak)
    return {phase: {"time_mape": float(np.mean(time_err[phase])), "points": len(time_err[phase]),
                    "memory_mape": float(np.mean(mem_err[phase])) if phase in mem_err else float("nan"),
                    "memory_points": len(mem_err.get(phase, []))} for phase in sorted(time_err)}


def replicate_spread(measured: list[Measured]) -> dict[str, float]:
    """The noise no model can beat: the mean absolute deviation from their median of times that
    measure the same computation (the fbank at one clip length, whatever the model; a build at
    every clip length)."""
    groups: dict[tuple, list[float]] = {}
    for point, phase, seconds, _ in measured:
        if phase in ("fbank", BUILD):
            same = point.audio_seconds if phase == "fbank" else (point.variant, point.size)
            groups.setdefault((phase, same), []).append(seconds)
    spread: dict[str, list[float]] = {}
    for (phase, _), times in groups.items():
        spread.setdefault(phase, []).extend(abs(t / np.median(times) - 1) for t in times)
    return {phase: float(np.mean(values)) for phase, values in sorted(spread.items())}


def memory_census(measured: list[Measured]) -> dict[str, int]:
    """How many phases the meter resolved, and how many it read below its resolution although the
    dry run holds more than that in tensors (malloc served them from heap already resident)."""
    phases = [(p, phase, peak) for p, phase, _, peak in measured if phase != BUILD and peak == peak]
    resolution = {p.device: memory_resolution(p.device) for p, *_ in phases}
    return {"phases": len(phases),
            "resolved": int(sum(peak >= resolution[p.device] for p, _, peak in phases)),
            "under_read": int(sum(peak < resolution[p.device] <= working_set(p).phase_bytes[phase]
                                  for p, phase, peak in phases))}


def report(title: str, table: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    print(f"{'phase':<10}{'points':>7}{'time MAPE':>12}{'memory MAPE (points)':>23}")
    for phase, row in table.items():
        memory = "-" if math.isnan(row["memory_mape"]) else f"{row['memory_mape']:.1%} ({row['memory_points']})"
        print(f"{phase:<10}{row['points']:>7}{row['time_mape']:>11.1%}{memory:>23}")


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
    results["replicate_spread"] = replicate_spread(measured)
    results["memory_census"] = census = memory_census(measured)
    print("\nreplicates (the noise floor): " + ", ".join(f"{phase} {value:.1%}"
                                                      for phase, value in results["replicate_spread"].items()))
    print(f"memory: {census['resolved']} of {census['phases']} phases measured above the meter's resolution "
          f"({memory_resolution('cpu') / 2**20:.0f} MiB; only those are scored); {census['under_read']} more hold "
          f"that much in tensors by the dry run but read below it")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
