"""`lalm-bench plan SUITE`: predicted peak memory and time per point, before running anything."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harness.commands.show import format_value

if TYPE_CHECKING:
    from harness.plan.predict import Prediction

NAME = "plan"
HELP = "predict a suite's peak memory and time per point on a device, flag OOMs and timeouts"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite", metavar="SUITE", help="suite name or TOML path")
    parser.add_argument("--device-spec", default="this", metavar="NAME|FILE",
                        help="h100-sxm, h200, a100-80gb, a .toml/.json spec file, or 'this' (this machine, "
                             "measured now; the default)")
    parser.add_argument("--calibrate", type=Path, action="append", default=[], metavar="RUN_DIR",
                        help="a measured run to fit each phase's efficiency on (repeatable)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a suite field, as for `run`")
    parser.add_argument("--json", action="store_true", help="print the predictions as JSON")


def seconds(value: float) -> str:
    """'850 us', '12.3 ms', '4.56 s', '7.8 min', '2.1 h'."""
    for limit, scale, unit in ((1e-3, 1e6, "us"), (1, 1e3, "ms"), (120, 1, "s"), (7200, 1 / 60, "min")):
        if value < limit:
            return f"{value * scale:.3g} {unit}"
    return f"{value / 3600:.3g} h"


def flags(p: Prediction) -> list[str]:
    """What to heed about a prediction: "OOM", "TIMEOUT", "floor only" (some phase uncalibrated: a
    lower bound), "extrapolated: decode, prefill" (phases leaning on an efficiency never seen at work)."""
    shown = [name for name, on in (("OOM", p.oom), ("TIMEOUT", p.timeout), ("floor only", not p.calibrated)) if on]
    if p.extrapolated:
        shown.append(f"extrapolated: {', '.join(sorted(p.extrapolated))}")
    return shown


def run(args: argparse.Namespace) -> int:
    from harness.plan.calibrate import calibrate
    from harness.plan.predict import memory_resolution, predict
    from harness.plan.specs import THIS_MACHINE, load_device
    from harness.suite import expand, load_suite

    suite, _ = load_suite(args.suite, args.overrides)
    if args.device_spec == THIS_MACHINE:
        from harness.executors.local import InProcessExecutor

        # The device a run here would use: "auto" resolved as the runner resolves it.
        device = InProcessExecutor(suite.run, suite.measure).resolve_device(suite.run.device)
        ceilings = load_device(THIS_MACHINE, device, suite.run.threads)
    else:
        ceilings = load_device(args.device_spec)
        device = ceilings.device
    fits = calibrate(args.calibrate, ceilings) if args.calibrate else {}
    predictions = [predict(p, suite, ceilings, fits) for p in expand(suite.with_device(device))]
    total = sum(p.wall_s for p in predictions)
    if args.json:
        json.dump({"suite": suite.name, "device": ceilings.as_dict(), "total_s": total,
                   "points": [p.as_dict() for p in predictions]}, sys.stdout, indent=1)
        print()
        return 0
    from harness.terminal import console, table

    columns = ("point", "peak mem", "build", "encoder", "prefill", "decode/token", "e2e", "point wall", "flags")
    rows = [[p.point.label, format_value(p.peak_mem_bytes, "B"),
             *[seconds(p.phase_s[k]) for k in ("build", "encoder", "prefill", "decode", "e2e")],
             seconds(p.wall_s), "; ".join(flags(p))] for p in predictions]
    out = console()
    out.print(table(f"plan: {suite.name} on {ceilings.name} ({ceilings.source})", columns, rows, identity=("point",),
                    right=columns[1:-1]))
    flagged = sum(p.oom or p.timeout for p in predictions)
    unpredicted = [p for p in suite.measure.phases if predictions and p not in predictions[0].phase_s]
    if unpredicted:
        out.print(f"not predicted (left out of the times): {', '.join(unpredicted)}", highlight=False)
    out.print(f"memory on {device} is metered to {format_value(memory_resolution(device), 'B')}: a smaller "
              "phase working set is measured as none", highlight=False)
    out.print(f"{len(predictions)} points, predicted {seconds(total)} in all; "
              f"{flagged} flagged", highlight=False)
    return 0
