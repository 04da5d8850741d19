"""`lalm-bench accuracy --out RUN_DIR`: accuracy and cost of every variant in one run folder.

Generates the synthetic keyword-spotting set, trains each variant with the same budget, measures
their cost with `suites/accuracy.toml`, evaluates each checkpoint on the test voices and appends
the `task` rows, then prints accuracy next to training time. Every step reuses finished work, so
rerunning the command completes an interrupted study. One `--threads` setting holds for all of
it, the cost sweep's workers included (recorded as the run's `run.threads`).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from harness.commands.train import add_recipe_arguments, apply_device_options, progress_printer, recipe_from
from harness.errors import UserError

NAME = "accuracy"
HELP = "train every variant on the synthetic keyword set, measure cost and accuracy into one run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from harness.tasks.synth_kws import SynthConfig
    from models import SIZES, VARIANTS

    parser.add_argument("--out", type=Path, required=True, help="run folder (created, or resumed when it holds a run)")
    parser.add_argument("--data", type=Path, help="synthetic dataset folder (default: RUN_DIR/data)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated names or aliases (default {','.join(VARIANTS)})")
    parser.add_argument("--size", default="tiny", help=f"size preset: {', '.join(SIZES)} (default tiny)")
    parser.add_argument("--voices-per-timbre", type=int, default=SynthConfig().voices_per_timbre,
                        help=f"synthetic voices per timbre variant (default {SynthConfig().voices_per_timbre})")
    parser.add_argument("--eval-batch-size", type=int, default=16, help="clips per generate call (default 16)")
    parser.add_argument("--no-cost", action="store_true", help="skip the cost sweep (task rows only)")
    parser.add_argument("--log-every", type=int, default=100, help="print the loss every N steps (default 100)")
    add_recipe_arguments(parser)


def parse_variants(text: str) -> tuple[str, ...]:
    """`--variants a,b`: canonical names, aliases resolved (as `run`, `generate` and `train` take them)."""
    from models.registry import ALIASES, VARIANTS, resolve_variant

    names = [v.strip() for v in text.split(",") if v.strip()]
    specs = {name: resolve_variant(name) for name in names}
    unknown = [name for name, spec in specs.items() if spec is None]
    if not names or unknown:
        raise UserError(f"--variants: unknown {', '.join(unknown) or '(none given)'}; "
                        f"choose from {', '.join(VARIANTS + tuple(ALIASES))}")
    return tuple(dict.fromkeys(spec.variant for spec in specs.values()))


def run(args: argparse.Namespace) -> int:
    from harness.tasks.study import Study, run_study, summary_table
    from harness.tasks.synth_kws import SynthConfig

    threads = apply_device_options(args)
    variants = parse_variants(args.variants)
    if args.eval_batch_size < 1:
        raise UserError(f"--eval-batch-size must be >= 1, got {args.eval_batch_size}")
    study = Study(out=args.out, data=args.data or args.out / "data", variants=variants, size=args.size,
                  recipe=recipe_from(args), synth=SynthConfig(voices_per_timbre=args.voices_per_timbre),
                  eval_batch_size=args.eval_batch_size, device=args.device, measure_cost=not args.no_cost,
                  threads=threads)
    outcomes = run_study(study, on_step=lambda v: progress_printer(args.log_every, prefix=f"{v}: "))
    print(summary_table(outcomes))
    print(f"task rows appended to {args.out}; `lalm-bench report {args.out}` plots accuracy against cost")
    return 0
