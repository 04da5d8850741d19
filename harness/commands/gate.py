"""`lalm-bench gate`: fail (exit 1) when a kernel got significantly and materially slower.

Measures every available kernel of `harness.gate.kernels` interleaved with the calibration
workloads, compares the normalised samples with the committed baseline
(`results/baselines/kernels-<device>.json`) and prints each kernel's ratio with its interval.
Exit 0: no regression; 1: at least one regression; 2: bad input (e.g. no baseline file).
`--update-baseline` records a new baseline instead of comparing.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from rich.console import Console
from rich.markup import escape

from harness.errors import UserError
from harness.gate import kernels as registry
from harness.gate.compare import compare_records, regressions
from harness.gate.record import GateRecord, Settings, fingerprint, fingerprint_differences, from_session, load, save
from harness.gate.stats import Thresholds
from harness.gate.table import record_table, verdict_table
from harness.gate.timing import clock_for, measure

NAME = "gate"
HELP = "Kernel-speed regression gate: compare kernel timings with a committed baseline."

EXIT_REGRESSION = 1
BASELINE_DIR = Path("results/baselines")


# A baseline is measured this many times as long as a gate run (rounds, clean samples, budget):
# one session's luck then weighs less in every later comparison.
BASELINE_SCALE = 3
DEFAULT_ROUNDS, DEFAULT_SAMPLES, DEFAULT_BUDGET_S = 20, 30, 40.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Thresholds()
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument(
        "--baseline", type=Path, help="baseline JSON (default: results/baselines/kernels-<device>.json)"
    )
    parser.add_argument(
        "--update-baseline",
        action="store_true",
        help=f"measure ({BASELINE_SCALE}x as long) and write the baseline instead of comparing",
    )
    parser.add_argument("--kernels", help="comma-separated subset of kernels (default: every available one)")
    parser.add_argument("--rounds", type=int, help=f"rounds of every kernel (default {DEFAULT_ROUNDS})")
    parser.add_argument(
        "--samples", type=int, help=f"unpreempted samples wanted per kernel (default {DEFAULT_SAMPLES})"
    )
    parser.add_argument(
        "--budget-s", type=float, help=f"stop the top-up rounds after this (default {DEFAULT_BUDGET_S:g})"
    )
    parser.add_argument("--target-ms", type=float, default=1.0, help="length of one sample (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads while timing (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the interleaving order (default 0)")
    parser.add_argument("--save", type=Path, help="also write the current session's record to this JSON file")
    parser.add_argument(
        "--current", type=Path, help="compare this saved record (from --save) instead of measuring now"
    )
    parser.add_argument(
        "--no-confirm",
        action="store_true",
        help="fail on the first verdict, without re-measuring the kernels it flags",
    )
    parser.add_argument(
        "--min-ratio",
        type=float,
        default=defaults.min_ratio,
        help=f"regression only if the interval's lower bound exceeds this (default {defaults.min_ratio})",
    )
    parser.add_argument(
        "--alpha", type=float, default=defaults.alpha, help=f"Mann-Whitney significance (default {defaults.alpha})"
    )


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r} is not a torch device (use cpu or cuda)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available")
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"--device {name!r}: the gate runs on cpu or cuda")
    return device


def _select(spec: str | None, device: torch.device, console: Console) -> list[str]:
    """The kernels to measure; names that cannot run here are listed, and named ones must run."""
    unavailable = {
        name: reason
        for name, kernel in registry.KERNELS.items()
        if (reason := kernel.check(device)) is not None
    }
    if spec is None:
        if unavailable:
            skipped = "; ".join(f"{name} ({reason})" for name, reason in unavailable.items())
            console.print(f"[dim]not measured on {device}: {escape(skipped)}[/]")
        return [name for name in registry.KERNELS if name not in unavailable]
    names = [n.strip() for n in spec.split(",") if n.strip()]
    for name in names:
        if name not in registry.KERNELS:
            raise UserError(f"--kernels: unknown kernel {name!r}; known: {', '.join(registry.KERNELS)}")
        if name in unavailable:
            raise UserError(f"--kernels: {name!r} cannot run on {device}: {unavailable[name]}")
    if not names:
        raise UserError("--kernels: no kernel named")
    return names


def _settings(args: argparse.Namespace) -> Settings:
    """The measuring settings: the flags, or the defaults (scaled up for a baseline)."""
    scale = BASELINE_SCALE if args.update_baseline else 1
    settings = Settings(
        rounds=args.rounds if args.rounds is not None else DEFAULT_ROUNDS * scale,
        clean_samples=args.samples if args.samples is not None else DEFAULT_SAMPLES * scale,
        budget_s=args.budget_s if args.budget_s is not None else DEFAULT_BUDGET_S * scale,
        target_ms=args.target_ms,
        seed=args.seed,
    )
    if settings.rounds < 2 or settings.clean_samples < 0:
        raise UserError(f"--rounds {settings.rounds}: need at least 2 samples per kernel")
    if args.threads < 1 or settings.target_ms <= 0 or settings.budget_s < 0:
        raise UserError("--threads must be >= 1, --target-ms > 0 and --budget-s >= 0")
    return settings


def _measure(
    kernels: dict[str, registry.KernelFn], device: torch.device, settings: Settings, threads: int
) -> GateRecord:
    session = measure(
        kernels,
        device,
        copy_weights={name: registry.KERNELS[name].copy_weight for name in kernels},
        rounds=settings.rounds,
        clean_samples=settings.clean_samples,
        budget_s=settings.budget_s,
        target_s=settings.target_ms / 1e3,
        threads=threads,
        seed=settings.seed,
    )
    machine = fingerprint(device, threads, clock_for(device).__name__)
    return from_session(session, machine, settings.model_copy(update={"rounds": session.rounds}))


def _summary(record: GateRecord) -> str:
    return f"{len(record.kernels)} kernels, {record.settings.rounds} rounds, {record.duration_s:.0f} s of measuring"


def run(args: argparse.Namespace) -> int:
    # Not a terminal (CI logs): wide enough that the table's rows do not fold.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    device = _device(args.device)
    baseline_path = args.baseline or BASELINE_DIR / f"kernels-{device.type}.json"
    if args.update_baseline and args.current is not None:
        raise UserError("--update-baseline measures a new baseline; it cannot take --current")
    # Read the baseline first: a missing file should fail in a second, not after the measuring.
    baseline = None if args.update_baseline else load(baseline_path)
    kernels: dict[str, registry.KernelFn] = {}
    if args.current is not None:
        current = load(args.current)
    else:
        settings = _settings(args)
        registry.injected_slowdowns()  # a malformed switch is bad input before a minute of measuring
        kernels = {name: registry.build(name, device) for name in _select(args.kernels, device, console)}
        console.print(f"measuring {len(kernels)} kernels on {device}, interleaved with calibration")
        current = _measure(kernels, device, settings, args.threads)
    if args.save is not None:
        save(current, args.save)
    if baseline is None:
        save(current, baseline_path)
        console.print(record_table(current))
        console.print(f"baseline written to {baseline_path} ({_summary(current)})")
        return 0

    thresholds = Thresholds(min_ratio=args.min_ratio, alpha=args.alpha)
    for difference in fingerprint_differences(baseline.fingerprint, current.fingerprint):
        console.print(f"[yellow]baseline recorded elsewhere: {escape(difference)}[/]")
    verdicts = compare_records(baseline, current, thresholds)
    console.print(verdict_table(verdicts, thresholds))
    noisy = [v.name for v in verdicts if v.status == "noisy"]
    if noisy:
        console.print(
            f"[yellow]not judged, too few unpreempted samples (a busy machine, here or when the baseline "
            f"was recorded): {escape(', '.join(noisy))}[/]"
        )
    slower = regressions(verdicts)
    if slower and kernels and not args.no_confirm:
        # A whole session can be unlucky (a burst of load that slows one kind of kernel more
        # than the calibration); a real regression is still there when measured again. The
        # whole session is repeated, not just the flagged kernels: a kernel timed alone keeps
        # more of its state in cache than one timed among the others, as in the baseline.
        console.print(f"re-measuring to confirm: {escape(', '.join(slower))}")
        again = _measure(kernels, device, settings.model_copy(update={"seed": args.seed + 1}), args.threads)
        confirmation = [v for v in compare_records(baseline, again, thresholds) if v.name in slower]
        console.print(verdict_table(confirmation, thresholds, title="confirmation"))
        unconfirmed = [name for name in slower if name not in regressions(confirmation)]
        if unconfirmed:
            console.print(f"[yellow]not confirmed (noise): {escape(', '.join(unconfirmed))}[/]")
        slower = regressions(confirmation)
    if slower:
        console.print(f"[bold red]kernel gate FAILED: {escape(', '.join(slower))} regressed[/]")
        return EXIT_REGRESSION
    console.print(f"kernel gate passed ({_summary(current)})")
    return 0
