"""Counted FLOPs against the closed forms, per variant and phase, with the library versions used.

Builds every variant on the meta device (shapes only: any size, in seconds), counts each phase
with the harness's FLOP counter and prints counted / analytic (`flop_coverage`) and any operator
left without a formula. A count that fails (NaN) or a coverage outside --tolerance of 1 exits 1,
so this doubles as the check of a new torch or transformers release:
    python benchmarks/flop_coverage.py [--variants dass+mamba2] [--sizes tiny small paper] [--seconds 1 10 60]
                                       [--batch 1 4]
"""
from __future__ import annotations

import argparse
import math
import sys

import torch
import transformers

from harness.measure.flops import measure_flops
from models import VARIANTS, build

PHASES = ("fbank", "encoder", "prefill", "decode")
PROMPT_TOKENS = 6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small"])
    parser.add_argument("--seconds", nargs="+", type=float, default=[1.0, 10.0, 60.0])
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--tolerance", type=float, default=0.03, help="allowed |coverage - 1| (default 0.03)")
    args = parser.parse_args()

    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    print(f"{'variant':<12} {'size':<6} {'phase':<8} {'min cov':>8} {'max cov':>8}  uncounted")
    bad = 0
    for variant in args.variants:
        for size in args.sizes:
            model = build(variant, size, device="meta")
            coverage: dict[str, list[float]] = {phase: [] for phase in PHASES}
            notes: dict[str, set[str]] = {phase: set() for phase in PHASES}
            for seconds in args.seconds:
                for batch in args.batch:
                    wave = torch.zeros(batch, int(seconds * 16000), device="meta")
                    prompt = torch.zeros(batch, PROMPT_TOKENS, dtype=torch.long, device="meta")
                    for phase, (flops, _, cov) in measure_flops(model, wave, prompt, PHASES).items():
                        coverage[phase].append(cov.value)
                        notes[phase].add(flops.note if math.isnan(flops.value) else cov.note)
            for phase, values in coverage.items():
                low, high = min(values), max(values)
                ok = all(math.isfinite(v) and abs(v - 1) <= args.tolerance for v in values)
                bad += not ok
                print(f"{variant:<12} {size:<6} {phase:<8} {low:>8.4f} {high:>8.4f}  "
                      f"{'; '.join(sorted(notes[phase]))}{'' if ok else '  <-- OUT OF RANGE'}")
    print("all within tolerance" if not bad else f"{bad} series out of range")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
