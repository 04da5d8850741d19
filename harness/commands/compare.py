"""`lalm-bench compare RUN_A RUN_B`: the points both runs measured, side by side, with ratios and noise."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from harness.errors import UserError

NAME = "compare"
HELP = "Compare two runs point by point: B/A ratios, bootstrap intervals and Mann-Whitney U on the raw samples."
VERDICT_STYLES = {"better": "green", "worse": "red", "within noise": "dim"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_a", metavar="RUN_A", help="baseline run folder")
    parser.add_argument("run_b", metavar="RUN_B", help="run folder compared with the baseline")
    parser.add_argument("--alpha", type=float, default=0.05,
                        help="significance level of the Mann-Whitney U test (default 0.05)")
    parser.add_argument("--csv", metavar="PATH", help="also write the full comparison (all columns) as CSV")
    parser.add_argument("--md", metavar="PATH", help="also write the table as Markdown")


def _rich_table(frame, title: str) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in frame.columns:
        table.add_column(column, justify="right" if column in ("A", "B", "B/A", "p", "batch", "audio") else "left")
    for row in frame.itertuples(index=False):
        cells = list(map(str, row))
        verdict = cells[-1]
        cells[-1] = f"[{VERDICT_STYLES[verdict]}]{verdict}[/]" if verdict in VERDICT_STYLES else verdict
        table.add_row(*cells)
    return table


def run(args: argparse.Namespace) -> int:
    if not 0 < args.alpha < 1:
        raise UserError(f"--alpha must be between 0 and 1, got {args.alpha:g}")
    # Imported here so that `lalm-bench --help` does not pay for scipy and pandas.
    from harness import provenance
    from harness.report import comparison
    from harness.report.render import markdown_table
    from harness.report.runs import load_run

    run_a, run_b = load_run(args.run_a), load_run(args.run_b)
    mixed = provenance.warning({"A": provenance.run_environments(run_a.meta, run_a.results),
                                "B": provenance.run_environments(run_b.meta, run_b.results)})
    if mixed:
        print(f"warning: {mixed}", file=sys.stderr)
    table, counts = comparison.compare(run_a.results, run_a.samples, run_b.results, run_b.samples, args.alpha)
    if table.empty:
        raise UserError(f"{args.run_a} and {args.run_b} share no measured point "
                        f"(rows match on {', '.join(counts['key'])})")
    frame, constant = comparison.display(table)
    shared = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in constant.items())
    title = f"B = {args.run_b} vs A = {args.run_a}" + (f" ({shared})" if shared else "")
    # Piped into a file or a pager, rich would squeeze the table into 80 columns.
    Console(width=None if sys.stdout.isatty() else 200).print(_rich_table(frame, title))
    verdicts = table["verdict"].value_counts()
    print(f"{counts['matched']} matched rows: " + ", ".join(f"{n} {v}" for v, n in verdicts.items())
          + f"; only in A: {counts['only_a']}, only in B: {counts['only_b']}. "
          f"Verdicts need p < {args.alpha:g} and a 95% interval of B/A excluding 1.")
    if args.csv:
        Path(args.csv).parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.csv, index=False)
    if args.md:
        Path(args.md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.md).write_text(f"{title}\n\n{markdown_table(frame)}\n")
    return 0
