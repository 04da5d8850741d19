"""`lalm-bench report RUN_DIR [RUN_DIR ...] [-o DIR]`: figures, fitted numbers and an HTML/Markdown report."""
from __future__ import annotations

import argparse
import sys

from harness.errors import UserError
from harness.outputs import check_folder

NAME = "report"
HELP = "Write report.md, a self-contained report.html and PNG/SVG figures from one or more run folders."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folder(s) holding results.parquet")
    parser.add_argument("-o", "--out", metavar="DIR", help="output folder (default: reports/<run name>)")
    parser.add_argument("--fit-min-seconds", type=float, metavar="S",
                        help="fit scaling exponents over lengths >= S seconds (default: where fixed cost is <10%%)")


def run(args: argparse.Namespace) -> int:
    if args.fit_min_seconds is not None and args.fit_min_seconds <= 0:
        raise UserError(f"--fit-min-seconds must be positive, got {args.fit_min_seconds:g}")
    if args.out is not None:
        check_folder(args.out, "-o")
    # Imported here so that `lalm-bench --help` does not pay for matplotlib and scipy.
    from harness.report import build_report

    out = build_report(args.run_dirs, args.out, args.fit_min_seconds,
                       warn=lambda text: print(f"warning: {text}", file=sys.stderr))
    print(f"wrote {out / 'report.html'}, {out / 'report.md'} and figures in {out / 'figures'}")
    return 0
