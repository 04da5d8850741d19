"""Where the time goes as audio gets longer: profile each variant at several lengths, one table.

    python -m harness.profile.study --size tiny --seconds 2 10 30 -o results/profile-study

For every variant and length it profiles the encoder, prefill and decode phases (`profile_point`,
files under -o) and prints, per phase: the unprofiled time; how much slower the profiler pass ran
(profiler_overhead, an event per operator: what the trace shows); the timing pass's time as
recorded and as attributed once its hooks' cost is taken out; the sum-to-phase check before
(raw_overhead) and after (overhead: attributed / unprofiled - 1); and the shares of the sequence mixers — attention (AST,
LLaMA: the attention modules' own time, fused SDPA, RoPE), the selective-scan operator and the
SSM mixer work around it (DASS, Mamba). `study.csv` under -o holds the same table. First it prints
the instrumentation cost measured on this machine (`harness.profile.overhead.measure_cost`).
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from harness.measure.chain import inputs_for
from harness.points import Point
from harness.profile.overhead import measure_cost
from harness.profile.phase import ProfileSettings
from harness.profile.point import profile_point
from harness.profile.tables import GROUP_PREFIX
from models import VARIANTS, build
from models.phases import CHAIN

PHASES = CHAIN[1:]  # the phases with sequence mixers, whose shares the table is about
MIXER_ROLES = ("attention", "scan", "mixer")


def _summary(rows: pd.DataFrame, variant: str, seconds: float) -> list[dict]:
    out = []
    for phase, mine in rows.groupby("phase", sort=False):
        overhead = mine[mine["metric"] == "profile_overhead"].iloc[0]
        record = {"variant": variant, "seconds": seconds, "phase": phase, "status": overhead["status"]}
        if overhead["status"] == "ok":
            groups = mine[(mine["metric"] == "share") & mine["module"].str.startswith(GROUP_PREFIX)]
            roles = groups["module"].str.rsplit("/", n=1).str[-1]
            total = mine[(mine["metric"] == "latency_ms") & mine["module"].str.startswith(GROUP_PREFIX)]["value"].sum()
            instrumentation = mine.loc[mine["metric"] == "instrumentation_ms", "value"].sum()
            reference = total / (1 + overhead["value"])
            profiler = mine.loc[mine["metric"] == "profiler_overhead", "value"]
            record |= {"unprofiled_ms": reference, "profiler_overhead": profiler.iloc[0] if len(profiler) else math.nan,
                       "timed_ms": total + instrumentation, "attributed_ms": total,
                       "raw_overhead": (total + instrumentation) / reference - 1, "overhead": overhead["value"],
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


def check_summary(table: pd.DataFrame, limit: float = ProfileSettings().faithful_within) -> pd.DataFrame:
    """Per phase over the study: the unprofiled times, how much slower the profiler pass ran, the
    timing pass before and after its hooks' cost is taken out, and how many phases the breakdown
    sums to within `limit` of the unprofiled time."""
    rows = []
    for phase, group in table[table["status"] == "ok"].groupby("phase", sort=False):
        after = group["overhead"].abs()
        rows.append({
            "phase": phase,
            "unprofiled_ms": f"{group['unprofiled_ms'].min():.3g}-{group['unprofiled_ms'].max():.3g}",
            "profiler_pass": f"{group['profiler_overhead'].median():+.0%} ({group['profiler_overhead'].min():+.0%} to "
                             f"{group['profiler_overhead'].max():+.0%})",
            "timing_pass_raw": f"{group['raw_overhead'].median():+.1%}",
            "|overhead|": f"{after.median():.1%} (max {after.max():.1%})",
            "within": f"{int((after <= limit).sum())} of {len(group)}",
        })
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.profile.study", description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--size", default="tiny")
    parser.add_argument("--seconds", nargs="+", type=float, default=[2.0, 10.0, 30.0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=ProfileSettings().repeats)
    parser.add_argument("-o", "--out", type=Path, default=Path("results") / "profile-study")
    args = parser.parse_args(argv)
    cost = measure_cost()
    print(f"instrumentation on this machine: timing pass {cost.timing_range.total_us:.2f} us per module call "
          f"({cost.timing_range.child_us:.2f} inside it); profiler pass {cost.profiler_range.total_us:.2f} us per "
          f"module call and {cost.event_us:.2f} us per operator event")
    table = study(args.variants, args.size, args.seconds, args.out, args.device,
                  ProfileSettings(repeats=args.repeats, reference_runs=2 * args.repeats))
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "study.csv", index=False)
    shown = table.copy()
    for column in [c for c in shown.columns if c.endswith("share") or c.endswith("overhead")]:
        sign = "+" if column.endswith("overhead") else ""
        shown[column] = shown[column].map(lambda v, sign=sign: f"{100 * v:{sign}.1f}%")
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print()
    print(check_summary(table).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
