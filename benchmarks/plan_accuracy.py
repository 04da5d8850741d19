"""How well `lalm-bench plan` predicts: held-out lengths, and `small` from `tiny`.

Runs one calibration sweep (two variants x tiny and small x clip lengths, batch 1, the roofline
and memory meters; and four batch-4 `small` points whose phases hold more than the CPU memory
meter resolves) on this machine, then, from its rows alone, the mean absolute percentage error
per phase (the model's build included) of:

1. time on held-out lengths: fit on some lengths (both sizes, batch 1), predict the others;
2. time of `small` from `tiny`: fit on every tiny point, predict every small point (goal for
   both: <= 15%; a column counts the points the plan flags as extrapolated, where a roofline
   term takes a share of the time that no calibration point showed);
3. working memory (the phase's peak above what was resident), from the dry run, which fits
   nothing: every point is held out (goal <= 10%). It is scored only where the meter measured at
   least its resolution (32 MiB on a CPU): below it RSS reads anywhere from 0 to the truth. A
   line counts the phases the dry run puts above the resolution although the meter read below
   it (malloc served them from heap already resident).

The replicates line is the noise floor of time: how far measurements of the same computation
(the fbank at one length under every model, a build at every length) stray from their median.

    python benchmarks/plan_accuracy.py --out results/plan-accuracy            # ~3.5 min
    python benchmarks/plan_accuracy.py --run results/plan-accuracy            # re-analyse a run
    python benchmarks/plan_accuracy.py --out results/plan-accuracy-quick --quick   # a minute: the script works

Figures are meaningful only on a quiet machine (nothing else running): the fit is on wall time.
The figures of a run and the machine's load are in docs/PERF.md ("Plan accuracy").
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from harness.api import run_suite
from harness.measure.ceilings import Ceilings
from harness.plan.calibrate import BUILD, Measured, fit_measured, lookup, run_points, terms
from harness.plan.costs import PHASES
from harness.plan.predict import memory_resolution, phase_seconds
from harness.plan.working_set import working_set
from harness.suite import validate_suite

VARIANTS = ["ast+llama", "dass+mamba"]
LENGTHS = [1, 2, 4, 8, 16, 32]
HELD_OUT = (2, 8, 32)  # predicted from the others: in between and beyond them
# Batch-4 small points at these lengths: phases that hold more than the CPU meter resolves (at
# batch 1 only the longest AST encoders do); scored for memory only, the times are of batch 1.
MEMORY_LENGTHS = [8, 16]


def suite(quick: bool) -> dict:
    lengths = [1, 2] if quick else LENGTHS
    batches = [1] if quick else [1, 4]
    return {
        "name": "plan-accuracy",
        "description": "plan validation: two variants, tiny and small, clip lengths, batch 1 (and 4 for memory)",
        "grid": {"variant": VARIANTS, "size": ["tiny", "small"], "audio_seconds": lengths, "batch_size": batches,
                 "exclude": [] if quick else [
                     {"batch_size": 4, "size": "tiny"},
                     {"batch_size": 4, "audio_seconds": [s for s in lengths if s not in MEMORY_LENGTHS]}]},
        "measure": {"phases": list(PHASES), "meters": ["latency", "memory", "roofline"],
                    "warmup": 1, "repeats": 3 if quick else 5, "max_repeats": 3 if quick else 20,
                    "max_phase_seconds": 0.5 if quick else 3.0, "prompt_tokens": 8, "new_tokens": 4},
        "run": {"device": "cpu", "threads": 1, "timeout_s": 600},
    }


def time_errors(train: list[Measured], test: list[Measured], ceilings: Ceilings) -> dict[str, dict[str, float]]:
    """Per phase: MAPE of the time over `test`, fitted on `train`, and how many of its points the
    plan flags as extrapolated (`Fit.extrapolates`)."""
    fits = fit_measured([(train, ceilings)])
    errors: dict[str, list[float]] = {}
    flagged: dict[str, int] = {}
    for point, phase, seconds, _ in test:
        fit = lookup(fits, point, phase)
        errors.setdefault(phase, []).append(abs(phase_seconds(point, phase, fit, ceilings) - seconds) / seconds)
        flagged[phase] = flagged.get(phase, 0) + fit.extrapolates(terms(point, phase, ceilings))
    return {phase: {"mape": float(np.mean(e)), "points": len(e), "extrapolated": flagged[phase]}
            for phase, e in sorted(errors.items())}


def memory_errors(measured: list[Measured]) -> dict[str, dict[str, float]]:
    """Per phase: MAPE of the dry run's working set (it fits nothing: every point is held out)
    over the points whose measured peak is at least the meter's resolution."""
    errors: dict[str, list[float]] = {}
    for point, phase, _, peak in measured:
        if phase != BUILD and peak >= memory_resolution(point.device):
            errors.setdefault(phase, []).append(abs(working_set(point).phase_bytes[phase] - peak) / peak)
    return {phase: {"mape": float(np.mean(e)), "points": len(e)} for phase, e in sorted(errors.items())}


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
    print(f"{'phase':<10}{'points':>7}{'MAPE':>9}" + (f"{'flagged extrapolated':>22}" if "extrapolated" in
                                                       next(iter(table.values()), {}) else ""))
    for phase, row in table.items():
        flagged = f"{row['extrapolated']:>22}" if "extrapolated" in row else ""
        print(f"{phase:<10}{row['points']:>7}{row['mape']:>8.1%}{flagged}")


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
    timed = [m for m in measured if m[0].batch_size == 1]
    lengths = sorted({p.audio_seconds for p, *_ in timed})
    held = {s for s in lengths if s in HELD_OUT} or {lengths[-1]}
    results = {
        "held_out_lengths": time_errors([m for m in timed if m[0].audio_seconds not in held],
                                        [m for m in timed if m[0].audio_seconds in held], ceilings),
        "small_from_tiny": time_errors([m for m in timed if m[0].size == "tiny"],
                                       [m for m in timed if m[0].size == "small"], ceilings),
        "memory": memory_errors(measured),
        "memory_census": memory_census(measured),
        "replicate_spread": replicate_spread(timed),
    }
    report(f"time, held-out lengths {sorted(held)} s (fit on the others, tiny and small)", results["held_out_lengths"])
    report("time, small predicted from tiny", results["small_from_tiny"])
    census = results["memory_census"]
    report(f"working memory, every point measured at least the meter's resolution "
           f"({memory_resolution('cpu') / 2**20:.0f} MiB): {census['resolved']} of {census['phases']} phases",
           results["memory"])
    print(f"{census['under_read']} more phases hold at least that much in tensors by the dry run but read below it")
    print("replicates (the noise floor of time): " + ", ".join(f"{phase} {value:.1%}"
                                                          for phase, value in results["replicate_spread"].items()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
