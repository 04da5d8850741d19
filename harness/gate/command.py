"""`lalm-bench gate` itself: what `harness.commands.gate` runs (see its docstring for the modes).

Kept out of the command module so that listing the commands does not import torch.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from rich.console import Console
from rich.markup import escape

from harness.devices import add_device_argument, select_device_quieting_cpu_hints
from harness.errors import UserError
from harness.gate import callgrind, count_record
from harness.gate import kernels as registry
from harness.gate.compare import compare_records, regressions
from harness.gate.count_compare import CountThresholds, compare_counts, software_differences
from harness.gate.count_record import describe_paths
from harness.gate.counting import measure_counts
from harness.gate.injection import period
from harness.gate.record import (
    GateRecord,
    Settings,
    fingerprint,
    fingerprint_differences,
    from_session,
    load,
    same_machine,
    save,
)
from harness.gate.stats import Thresholds
from harness.gate.table import count_record_table, count_table, record_table, verdict_table
from harness.gate.timing import clock_for, measure
from harness.threads import add_threads_argument, apply_threads

EXIT_REGRESSION = 1
BASELINE_DIR = Path("results/baselines")


# A baseline is measured this many times as long as a gate run (rounds, clean samples, budget):
# one session's luck then weighs less in every later comparison.
BASELINE_SCALE = 3
DEFAULT_ROUNDS, DEFAULT_SAMPLES, DEFAULT_BUDGET_S = 20, 30, 40.0
# Counted calls per kernel: a multiple of 20, so an injected 5% (one extra call in 20) or 25%
# (one in 4) of extra work lands exactly in the count; ~3 minutes for every CPU kernel.
DEFAULT_CALLS = 20
GATE_MODES = ("auto", "count", "wall")  # how the gate measures: not schema.MODES, how a phase ran


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = Thresholds()
    add_device_argument(parser)
    parser.add_argument(
        "--mode",
        choices=GATE_MODES,
        default="auto",
        help="count: instructions under valgrind (CPU); wall: timings; auto (default): count on CPU when "
        "valgrind is installed, else wall (advisory)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="baseline JSON (default: results/baselines/kernels-cpu-counts.json in count mode, "
        "kernels-<device>.json in wall mode)",
    )
    parser.add_argument(
        "--update-baseline",
        action="store_true",
        help=f"measure and write the baseline instead of comparing (wall mode: {BASELINE_SCALE}x as long)",
    )
    parser.add_argument("--kernels", help="comma-separated subset of kernels (default: every available one)")
    parser.add_argument(
        "--calls", type=int, default=DEFAULT_CALLS, help=f"count mode: counted calls per kernel (default {DEFAULT_CALLS})"
    )
    parser.add_argument("--rounds", type=int, help=f"wall mode: rounds of every kernel (default {DEFAULT_ROUNDS})")
    parser.add_argument(
        "--samples", type=int, help=f"unpreempted samples wanted per kernel (default {DEFAULT_SAMPLES})"
    )
    parser.add_argument(
        "--budget-s", type=float, help=f"stop the top-up rounds after this (default {DEFAULT_BUDGET_S:g})"
    )
    parser.add_argument("--target-ms", type=float, default=1.0, help="length of one sample (default 1)")
    add_threads_argument(parser)  # wall mode; count mode counts one thread (valgrind runs one at a time)
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
    if settings.target_ms <= 0 or settings.budget_s < 0:
        raise UserError("--target-ms must be > 0 and --budget-s >= 0")
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


def _mode(requested: str, device: torch.device, console: Console) -> tuple[str, str | None]:
    """(mode, why wall mode is only advisory or None): count on CPU when valgrind can run it."""
    if requested == "wall":
        return "wall", None
    if device.type == "cuda":
        if requested == "count":
            raise UserError("--mode count counts CPU kernels; on cuda the gate times them (--mode wall)")
        return "wall", None
    reason = callgrind.unavailable()
    if reason is None:
        return "count", None
    if requested == "count":
        raise UserError(f"--mode count: {reason}")
    console.print(f"[yellow]{escape(reason)}: no instruction counts, timing the kernels instead (advisory)[/]")
    return "wall", f"{reason}, so wall time stood in for instruction counts"


def run(args: argparse.Namespace) -> int:
    # Not a terminal (CI logs): wide enough that the table's rows do not fold.
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    device = select_device_quieting_cpu_hints(args.device)
    threads = apply_threads(args.threads)  # the count torch uses, which the wall record keeps
    if args.update_baseline and args.current is not None:
        raise UserError("--update-baseline measures a new baseline; it cannot take --current")
    mode, advisory = _mode(args.mode, device, console)
    if mode == "count":
        return _run_count(args, device, console)
    return _run_wall(args, device, console, advisory, threads)


def _check_calls(calls: int) -> None:
    """Counted calls must be positive and hold whole periods of any injected work."""
    if calls < 1:
        raise UserError(f"--calls {calls}: need at least 1 counted call per kernel")
    for name, factor in registry.injected().items():
        if calls % period(factor):
            raise UserError(
                f"--calls {calls}: the work injected into {name} (x{float(factor):g}) repeats every "
                f"{period(factor)} calls; count a multiple of that"
            )


def _run_count(args: argparse.Namespace, device: torch.device, console: Console) -> int:
    """Count mode: instructions per call against the count baseline."""
    baseline_path = args.baseline or BASELINE_DIR / f"kernels-{device.type}-counts.json"
    baseline = None if args.update_baseline else count_record.load(baseline_path)
    if args.current is not None:
        current = count_record.load(args.current)
    else:
        _check_calls(args.calls)  # bad input fails before minutes of counting
        names = _select(args.kernels, device, console)
        console.print(f"counting instructions of {len(names)} kernels under valgrind, {args.calls} calls each")
        current = measure_counts(names, args.calls)
    if args.save is not None:
        count_record.save(current, args.save)
    paths = f"{describe_paths(current.environment.code_paths)}, valgrind {current.environment.valgrind}"
    if baseline is None:
        count_record.save(current, baseline_path)
        console.print(count_record_table(current))
        console.print(f"count baseline written to {baseline_path} ({len(current.kernels)} kernels, {paths}, "
                      f"{current.duration_s:.0f} s)")
        return 0
    thresholds = CountThresholds()
    verdicts = compare_counts(baseline, current, thresholds)
    for difference in software_differences(baseline, current):
        console.print(f"[yellow]baseline counted with other software (counts may shift): {escape(difference)}[/]")
    console.print(count_table(verdicts, thresholds))
    slower = [v.name for v in verdicts if v.status == "regression"]
    if slower:
        console.print(f"[bold red]kernel gate FAILED: {escape(', '.join(slower))} regressed ({paths})[/]")
        return EXIT_REGRESSION
    console.print(f"kernel gate passed (counts: {len(current.kernels)} kernels, {paths}, {current.duration_s:.0f} s)")
    return 0


def _run_wall(args: argparse.Namespace, device: torch.device, console: Console, advisory: str | None,
              threads: int) -> int:
    """Wall mode: interleaved timings against the wall baseline; advisory off the baseline's machine."""
    baseline_path = args.baseline or BASELINE_DIR / f"kernels-{device.type}.json"
    # Read the baseline first: a missing file should fail in a second, not after the measuring.
    baseline = None if args.update_baseline else load(baseline_path)
    kernels: dict[str, registry.KernelFn] = {}
    if args.current is not None:
        current = load(args.current)
    else:
        settings = _settings(args)
        registry.injected()  # a malformed switch is bad input before a minute of measuring
        kernels = {name: registry.build(name, device) for name in _select(args.kernels, device, console)}
        console.print(f"measuring {len(kernels)} kernels on {device}, interleaved with calibration")
        current = _measure(kernels, device, settings, threads)
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
    if advisory is None and not same_machine(baseline.fingerprint, current.fingerprint):
        advisory = "the baseline was timed on another machine, and wall time does not transfer between hosts"
    verdicts = compare_records(baseline, current, thresholds)
    console.print(verdict_table(verdicts, thresholds))
    noisy = [v.name for v in verdicts if v.status == "noisy"]
    if noisy:
        console.print(
            f"[yellow]not judged, too few unpreempted samples (a busy machine, here or when the baseline "
            f"was recorded): {escape(', '.join(noisy))}[/]"
        )
    slower = regressions(verdicts)
    if slower and kernels and not args.no_confirm and advisory is None:
        # A whole session can be unlucky (a burst of load that slows one kind of kernel more
        # than the calibration); a real regression is still there when measured again. The
        # whole session is repeated, not just the flagged kernels: a kernel timed alone keeps
        # more of its state in cache than one timed among the others, as in the baseline.
        console.print(f"re-measuring to confirm: {escape(', '.join(slower))}")
        again = _measure(kernels, device, settings.model_copy(update={"seed": args.seed + 1}), threads)
        confirmation = [v for v in compare_records(baseline, again, thresholds) if v.name in slower]
        console.print(verdict_table(confirmation, thresholds, title="confirmation"))
        unconfirmed = [name for name in slower if name not in regressions(confirmation)]
        if unconfirmed:
            console.print(f"[yellow]not confirmed (noise): {escape(', '.join(unconfirmed))}[/]")
        slower = regressions(confirmation)
    if slower and advisory is not None:
        console.print(f"[yellow]advisory, not failing: {escape(', '.join(slower))} looked slower, but {advisory}[/]")
        return 0
    if slower:
        console.print(f"[bold red]kernel gate FAILED: {escape(', '.join(slower))} regressed[/]")
        return EXIT_REGRESSION
    console.print(f"kernel gate passed ({_summary(current)})")
    return 0
