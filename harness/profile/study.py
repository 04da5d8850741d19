"""Where the time goes as audio gets longer: profile each variant at several lengths, one table.

    python -m harness.profile.study --size tiny --seconds 2 10 30 -o results/profile-study

For every variant and length it profiles the encoder, prefill and decode phases (`profile_point`,
files under -o) and prints, per phase: the unprofiled time, the sum-to-phase check (profiled /
unprofiled - 1), and the shares of the sequence mixers — attention (AST, LLaMA: the attention
modules' own time, fused SDPA, RoPE), the selective-scan operator and the SSM mixer work around
it (DASS, Mamba). `study.csv` under -o holds the same table. First it prints what the
instrumentation itself costs on this machine (`instrumentation_cost`), the yardstick for the check.
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from harness.points import Point
from harness.profile.phase import ProfileSettings
from harness.profile.point import profile_point
from harness.profile.ranges import ModuleRanges
from harness.profile.structure import Part
from harness.profile.tables import GROUP_PREFIX
from harness.workload import inputs_for
from models import VARIANTS, build

PHASES = ("encoder", "prefill", "decode")
MIXER_ROLES = ("attention", "scan", "mixer")


CALIBRATION_CALLS = 500


def _best_us(fn: Callable[[], object], rounds: int = 30) -> float:
    """Fastest of `rounds` timings of `fn`, in microseconds per one of its CALIBRATION_CALLS calls."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter_ns()
        fn()
        best = min(best, time.perf_counter_ns() - start)
    return best / CALIBRATION_CALLS / 1e3


def instrumentation_cost() -> tuple[float, float]:
    """(µs per module range, µs per operator event) under the profiler, on cheap stand-ins: empty
    modules with and without ranges, a small add with and without the profiler. Fastest of many
    rounds, so other load on the machine inflates them little."""
    modules = nn.ModuleList(nn.Identity() for _ in range(CALIBRATION_CALLS))
    x = torch.zeros(4)

    def call_modules() -> None:
        for module in modules:
            module(x)

    def add() -> None:
        for _ in range(CALIBRATION_CALLS):
            torch.add(x, x)

    parts = [(m, Part(f"m{i}", "block")) for i, m in enumerate(modules)]
    plain_modules, plain_add = _best_us(call_modules), _best_us(add)
    with profile(activities=[ProfilerActivity.CPU]):
        profiled_add = _best_us(add)
        with ModuleRanges(parts):
            ranged_modules = _best_us(call_modules)
    return ranged_modules - plain_modules, profiled_add - plain_add


def _summary(rows: pd.DataFrame, variant: str, seconds: float) -> list[dict]:
    out = []
    for phase, mine in rows.groupby("phase", sort=False):
        overhead = mine[mine["metric"] == "profile_overhead"].iloc[0]
        record = {"variant": variant, "seconds": seconds, "phase": phase, "status": overhead["status"]}
        if overhead["status"] == "ok":
            groups = mine[(mine["metric"] == "share") & mine["module"].str.startswith(GROUP_PREFIX)]
            roles = groups["module"].str.rsplit("/", n=1).str[-1]
            total = mine[(mine["metric"] == "latency_ms") & mine["module"].str.startswith(GROUP_PREFIX)]["value"].sum()
            record |= {"profiled_ms": total, "overhead": overhead["value"],
                       **{f"{role}_share": groups.loc[roles == role, "value"].sum() for role in MIXER_ROLES}}
        out.append(record)
    return out


def study(variants: Sequence[str], size: str, seconds: Sequence[float], out_dir: Path, device: str = "cpu",
          settings: ProfileSettings = ProfileSettings()) -> pd.DataFrame:
    """Profile every (variant, length); one summary row per phase (see the module docstring)."""
    records = []
    for variant in variants:
        lalm = build(variant, size, device=device)
        for secs in seconds:
            point = Point(variant, size, device, "float32", 1, secs, 8, 4)
            inputs = inputs_for(point, lalm.lm.vocab_size, 0, torch.device(device))
            folder = out_dir / f"{variant}_{size}_{secs:g}s"
            rows = pd.DataFrame(profile_point(lalm, inputs, PHASES, folder, settings, device))
            records += _summary(rows, variant, secs)
    return pd.DataFrame.from_records(records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.profile.study", description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--seconds", nargs="+", type=float, default=[2.0, 10.0, 30.0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=ProfileSettings().repeats)
    parser.add_argument("-o", "--out", type=Path, default=Path("results") / "profile-study")
    args = parser.parse_args(argv)
    range_us, event_us = instrumentation_cost()
    print(f"instrumentation on this machine: {range_us:.2f} us per module range, {event_us:.2f} us per operator "
          "event (cheap stand-ins; real operators cost more to record)")
    table = study(args.variants, args.size, args.seconds, args.out, args.device,
                  ProfileSettings(repeats=args.repeats, reference_runs=2 * args.repeats))
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "study.csv", index=False)
    shown = table.copy()
    for column in [c for c in shown.columns if c.endswith("share") or c == "overhead"]:
        sign = "+" if column == "overhead" else ""
        shown[column] = shown[column].map(lambda v, sign=sign: f"{100 * v:{sign}.1f}%")
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
