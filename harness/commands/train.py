"""`lalm-bench train --variant V --size S --data DIR --out CKPT`: train an LALM on a local dataset.

LTU-style stages (projector alone, then encoder + projector + LM, the LM optionally through
LoRA), instruction prompts, teacher forcing with the loss on answer tokens only, fixed seeds.
The checkpoint is `CKPT/model.safetensors` + `CKPT/config.json`.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from harness.devices import add_device_argument, select_device_quieting_cpu_hints
from harness.errors import UserError
from harness.outputs import check_folder
from harness.threads import add_threads_argument, apply_threads
from models.names import variants_with_aliases

if TYPE_CHECKING:
    from models.train import Recipe, StepLog

NAME = "train"
HELP = "train an LALM on a local dataset folder (LTU-style stages) and save a checkpoint"


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that define a training budget (shared with `lalm-bench accuracy`)."""
    parser.add_argument("--steps", type=int, default=1500, help="optimizer steps over all stages (default 1500)")
    parser.add_argument("--batch-size", type=int, default=16, help="clips per step (default 16)")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    parser.add_argument("--projector-steps", type=float, default=0.05, metavar="FRACTION",
                        help="share of the steps in stage 1, projector only (default 0.05)")
    parser.add_argument("--lora", action="store_true", help="train the LM through LoRA adapters (peft) in stage 2")
    parser.add_argument("--spec-augment", action="store_true",
                        help="random time/frequency masks on the fbank (slows learning; helps longer runs)")
    parser.add_argument("--prompt-template",
                        help="instruction template with {question}; \\n is a newline (default: the question alone)")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialisation, sampling and masking (default 0)")
    add_threads_argument(parser)
    add_device_argument(parser)


def recipe_from(args: argparse.Namespace) -> Recipe:
    from models.train import PROMPT_TEMPLATE, ltu_recipe

    if not 0 <= args.projector_steps < 1:
        raise UserError(f"--projector-steps must be a fraction in [0, 1), got {args.projector_steps}")
    template = PROMPT_TEMPLATE if args.prompt_template is None else args.prompt_template.replace("\\n", "\n")
    return ltu_recipe(args.steps, lr=args.lr, projector_fraction=args.projector_steps, lora=args.lora,
                      batch_size=args.batch_size, seed=args.seed, spec_augment=args.spec_augment,
                      prompt_template=template)


def apply_device_options(args: argparse.Namespace) -> int:
    """Check `--device` and apply `--threads`; returns the thread count torch then uses."""
    select_device_quieting_cpu_hints(args.device)
    return apply_threads(args.threads)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from harness.tasks import TASK_NAMES
    from models import SIZES

    parser.add_argument("--variant", required=True, help=variants_with_aliases())
    parser.add_argument("--size", default="tiny", help=f"size preset: {', '.join(SIZES)} (default tiny)")
    parser.add_argument("--data", type=Path, required=True, help="local dataset folder (its split `train` is used)")
    parser.add_argument("--task", default="kws", choices=TASK_NAMES, help="dataset layout (default kws)")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint folder to write (new or empty)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the checkpoint an --out folder already holds")
    parser.add_argument("--log-every", type=int, default=50, help="print the loss every N steps (default 50)")
    add_recipe_arguments(parser)


def progress_printer(every: int, prefix: str = "") -> Callable[[StepLog], None]:
    def report(log: StepLog) -> None:
        if every > 0 and (log.step % every == 0 or log.step == 1):
            print(f"{prefix}step {log.step:>5} [{log.stage}] loss {log.loss:.4f} lr {log.lr:.2e} {log.seconds:7.1f} s",
                  flush=True)
    return report


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse, before any training, an --out the checkpoint could not be written to, and one
    holding files (a checkpoint of other training, say) unless --overwrite."""
    check_folder(out, "--out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(f"--out {out} already holds files (a checkpoint of other training?); "
                        "pass --overwrite to replace the checkpoint, or choose a new folder")


def run(args: argparse.Namespace) -> int:
    from harness.tasks.train_run import TrainJob, already_trained, run_training

    threads = apply_device_options(args)
    job = TrainJob(variant=args.variant, size=args.size, task=args.task, data=args.data, out=args.out,
                   recipe=recipe_from(args), device=args.device)
    if already_trained(job):
        print(f"{args.out}: already holds a checkpoint from this exact training; nothing to do")
        return 0
    check_out(args.out, args.overwrite)
    print(f"training on {threads} CPU thread(s)", flush=True)
    record = run_training(job, progress_printer(args.log_every))
    print(f"trained {args.variant} {args.size} on {record['dataset']} ({record['examples']} examples, "
          f"{record['skipped_clips']} unreadable clips skipped): {record['steps']} steps in "
          f"{record['train_seconds']:.1f} s, final loss {record['final_loss']:.4f} -> {args.out}")
    return 0
