"""`lalm-bench eval CKPT --data DIR [--task kws|esc50|audiocaps|clotho] [--out RUN_DIR]`.

Evaluates a checkpoint on a local dataset split, prints the metrics and, with --out, appends
them as `task` rows to a run (creating a run there when the folder holds none).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from harness.devices import add_device_argument, select_device_quieting_cpu_hints
from harness.errors import UserError
from harness.threads import add_threads_argument, apply_threads

if TYPE_CHECKING:
    from harness.tasks.evaluate import EvalOptions, Evaluation

NAME = "eval"
HELP = "evaluate a checkpoint on a local dataset folder; print the metrics, append task rows to a run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from harness.tasks import SPLITS, TASK_NAMES

    parser.add_argument("checkpoint", type=Path, help="checkpoint folder written by `lalm-bench train`")
    parser.add_argument("--data", type=Path, required=True, help="local dataset folder")
    parser.add_argument("--task", default="kws", choices=TASK_NAMES, help="dataset layout (default kws)")
    parser.add_argument("--split", default="test", choices=SPLITS, help="split to evaluate (default test)")
    parser.add_argument("--out", type=Path, help="run folder to append the task rows to (created if absent)")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per generate call (default 16)")
    parser.add_argument("--max-new-tokens", type=int, help="tokens to generate (default: the checkpoint's longest answer + 1)")
    parser.add_argument("--limit", type=int, help="evaluate only the first N clips")
    parser.add_argument("--nearest", default="auto", choices=("auto", "embedding", "string"),
                        help="how non-exact answers find their label (default auto: the embedding model if installed)")
    parser.add_argument("--meteor-jar", help="METEOR 1.5 jar for captioning (or set LALM_METEOR_JAR; needs Java)")
    parser.add_argument("--spice-jar", help="SPICE 1.0 jar for captioning (or set LALM_SPICE_JAR; needs Java)")
    parser.add_argument("--predictions", type=Path, help="also write every clip's answer and decision to this JSONL file")
    add_device_argument(parser)
    add_threads_argument(parser)


def _options(args: argparse.Namespace) -> EvalOptions:
    from harness.tasks.evaluate import EvalOptions

    if args.batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {args.batch_size}")
    for flag, value in (("--max-new-tokens", args.max_new_tokens), ("--limit", args.limit)):
        if value is not None and value < 1:
            raise UserError(f"{flag} must be >= 1, got {value}")
    return EvalOptions(batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, limit=args.limit,
                       nearest=args.nearest, meteor_jar=args.meteor_jar, spice_jar=args.spice_jar)


def print_scores(evaluation: Evaluation, label: str) -> None:
    print(f"{label} on {evaluation.dataset.describe}: {len(evaluation.predictions)} clips, "
          f"{len(evaluation.skipped)} skipped, generation {evaluation.seconds:.1f} s")
    for score in evaluation.scores:
        value = "n/a" if math.isnan(score.value) else f"{score.value:.4f}"
        extra = f"  [{score.status}: {score.note}]" if score.status != "ok" else ""
        print(f"  {score.metric:<18}{value:>10}{extra}")


def run(args: argparse.Namespace) -> int:
    from harness import store
    from harness.audio_input import dataset_conversion_note
    from harness.tasks import load_dataset
    from harness.tasks.evaluate import evaluate
    from harness.tasks.rows import ensure_run, task_rows
    from models.train import load_checkpoint

    options = _options(args)
    device = select_device_quieting_cpu_hints(args.device)
    threads = apply_threads(args.threads)
    checkpoint = load_checkpoint(args.checkpoint, device=device)
    dataset = load_dataset(args.task, args.data, args.split)
    note = dataset_conversion_note(args.data, (clip.path for clip in dataset.clips[: options.limit]))
    if note:
        print(note, file=sys.stderr)
    evaluation = evaluate(checkpoint, dataset, options)
    print_scores(evaluation, f"{checkpoint.config['variant']} {checkpoint.config['size']} ({args.checkpoint})")
    if args.predictions:
        args.predictions.parent.mkdir(parents=True, exist_ok=True)
        args.predictions.write_text("".join(json.dumps(p) + "\n" for p in evaluation.predictions))
    if args.out:
        run_id, suite = ensure_run(args.out, checkpoint.lalm.spec.variant, checkpoint.lalm.spec.size,
                                   dataset.clip_seconds, threads)
        store.append_rows(args.out, task_rows(checkpoint.lalm, evaluation, str(args.checkpoint), run_id, suite))
        print(f"appended {len(evaluation.scores)} task rows to {args.out}")
    return 0
