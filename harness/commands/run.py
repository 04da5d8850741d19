"""`lalm-bench run SUITE`: run a suite's points into a run folder, or `--resume` one."""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from harness.threads import add_threads_argument, check_threads

NAME = "run"
HELP = "run a benchmark suite (a name from suites/ or a TOML path); failed points become rows"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("suite", nargs="?", help="suite name (see `lalm-bench list`) or path to a .toml file")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="same as --set run.device=...")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a suite field, e.g. --set grid.batch_size=[1,2] (repeatable)")
    parser.add_argument("--out", type=Path, help="run folder to create (default: results/<run id>)")
    parser.add_argument("--overwrite", action="store_true",
                        help="start again in an --out folder that holds a run, or add a run to a folder of other "
                             "files (nothing that is not the run's is deleted)")
    parser.add_argument("--resume", type=Path, metavar="RUN_DIR", help="finish a run: only points without rows run")
    parser.add_argument("--executor", choices=("local", "ray"), help="same as --set run.executor=...")
    parser.add_argument("--address", help="Ray cluster address (with --executor ray); default: a local cluster")
    parser.add_argument("--profile", action="store_true",
                        help="also profile each point (same as --set measure.profile=true); files under artifacts/")
    parser.add_argument("--quiet", action="store_true", help="no progress display, only the summary")
    add_threads_argument(parser, suite_setting="run.threads")


def _flag_overrides(args: argparse.Namespace) -> list[str]:
    flags = [("run.device", args.device), ("run.executor", args.executor), ("run.address", args.address)]
    profile = ["measure.profile=true"] if args.profile else []
    threads = [] if args.threads is None else [f"run.threads={check_threads(args.threads)}"]
    return list(args.overrides) + [f'{key}="{value}"' for key, value in flags if value is not None] + profile + threads


def run(args: argparse.Namespace) -> int:
    from harness.api import run_suite
    from harness.errors import UserError
    from harness.suite import parse_overrides

    if args.resume is None and args.suite is None:
        raise UserError("give a SUITE to run or --resume RUN_DIR")
    if args.resume is not None and (args.out is not None or args.overwrite):
        raise UserError("--resume continues the run in its own folder; drop --out/--overwrite")
    overrides = parse_overrides(_flag_overrides(args))
    out = args.resume if args.resume is not None else args.out
    previous = signal.signal(signal.SIGTERM, _interrupt)
    progress = ProgressDisplay(enabled=not args.quiet)
    try:
        with progress:
            result = run_suite(args.suite, out=out, overrides=overrides, resume=args.resume is not None,
                               overwrite=args.overwrite, progress=progress)
    except KeyboardInterrupt:
        if progress.run_dir is not None:
            print(f"lalm-bench run: interrupted; finished points are saved. Resume with: "
                  f"lalm-bench run --resume {progress.run_dir}", file=sys.stderr)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    _print_summary(result)
    return 0


def _interrupt(signum, frame) -> None:
    """SIGTERM (e.g. a job scheduler's) stops the sweep like Ctrl-C: parts compacted, state saved."""
    raise KeyboardInterrupt


class ProgressDisplay:
    """A rich progress bar with ETA on a terminal; one line per finished point otherwise (CI logs)."""

    def __init__(self, enabled: bool = True):
        from rich.console import Console

        self._console = Console(stderr=True)
        self._enabled = enabled
        self._live = enabled and self._console.is_terminal
        self._bar = None
        self._task = None
        self._total = 0
        self._count = 0
        self.run_dir: Path | None = None  # known once the sweep begins

    def __enter__(self) -> ProgressDisplay:
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def begin(self, run_dir: Path, total: int, done: int) -> None:
        """Draw the bar only now: a run refused before its sweep begins shows none."""
        self.run_dir, self._total, self._count = run_dir, total, done
        if done:
            self._console.print(f"resuming: {done} of {total} points already done")
        if self._live:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                 console=self._console)
            self._bar.__enter__()
            # ETA counts only this session's points, so earlier sessions do not skew it.
            self._task = self._bar.add_task("starting", total=total - done)

    def point_started(self, point) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=point.label)

    def point_finished(self, point, status: str, seconds: float, error: str) -> None:
        self._count += 1
        mark = "[green]ok[/]" if status == "ok" else f"[red]{status}[/]"
        detail = f" - {error[:160]}" if status != "ok" and error else ""
        if self._bar is not None:
            self._bar.advance(self._task)
            if status != "ok":
                self._bar.console.print(f"{mark} {point.label}{detail}", highlight=False)
        elif self._enabled:
            self._console.print(f"[{self._count}/{self._total}] {mark} {point.label} ({seconds:.1f} s){detail}",
                                highlight=False, soft_wrap=True)


def _print_summary(result) -> None:
    from harness.commands.show import console, summary_table
    from harness.store import load_run

    out = console()
    out.print(summary_table(load_run(result.run_dir).results))
    counts = ", ".join(f"{n} {status}" for status, n in sorted(result.statuses.items()))
    out.print(f"{result.total} points ({counts}); this session ran {result.ran}. "
                  f"Results: {result.run_dir / 'results.parquet'}", highlight=False, soft_wrap=True)
