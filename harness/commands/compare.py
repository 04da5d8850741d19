"""`lalm-bench compare RUN_A RUN_B`: the points both runs measured, side by side, with ratios and noise."""
from __future__ import annotations

import argparse
import sys

from harness.errors import UserError
from harness.outputs import check_file

NAME = "compare"
HELP = ("Compare two runs point by point: B/A ratios, and a verdict only where the raw samples show a change "
        "that is both significant (Mann-Whitney U) and material (--min-effect).")
VERDICT_STYLES = {"better": "green", "worse": "red", "higher": "bold", "lower": "bold", "within noise": "dim",
                  "too few samples": "yellow", "no samples": "yellow", "below resolution": "dim"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # The defaults are comparison.ALPHA and comparison.MIN_EFFECT (resolved in `run`; not imported here
    # so that `--help` does not pay for pandas and scipy); a test keeps this help text in step.
    parser.add_argument("run_a", metavar="RUN_A", help="baseline run folder")
    parser.add_argument("run_b", metavar="RUN_B", help="run folder compared with the baseline")
    parser.add_argument("--alpha", type=float,
                        help="two-sided significance level of the Mann-Whitney U test (default 0.05)")
    parser.add_argument("--min-effect", type=float, metavar="FRACTION",
                        help="smallest change called a change: the 95%% interval of B/A must lie beyond "
                             "1 + FRACTION or below 1 / (1 + FRACTION) (default 0.2)")
    parser.add_argument("--csv", metavar="PATH", help="also write the full comparison (one row per metric) as CSV")
    parser.add_argument("--md", metavar="PATH", help="also write the table as Markdown")


def _summary(table, counts: dict, args: argparse.Namespace) -> str:
    lines = table.drop(columns=["metric"]).groupby(
        [c for c in counts["key"] if c != "metric"], dropna=False, sort=False).ngroups
    verdicts = table["verdict"].value_counts()
    return (f"{lines} lines (a point's phase each), {counts['matched']} matched values: "
            + ", ".join(f"{n} {v}" for v, n in verdicts.items())
            + f"; only in A: {counts['only_a']}, only in B: {counts['only_b']}. A change needs p < {args.alpha:g} "
            f"(two-sided) and a 95% interval of B/A beyond ×{1 + args.min_effect:g} or below ×1/{1 + args.min_effect:g}.")


def run(args: argparse.Namespace) -> int:
    from harness.report import comparison

    args.alpha = comparison.ALPHA if args.alpha is None else args.alpha
    args.min_effect = comparison.MIN_EFFECT if args.min_effect is None else args.min_effect
    if not 0 < args.alpha < 1:
        raise UserError(f"--alpha must be between 0 and 1, got {args.alpha:g}")
    if not args.min_effect >= 0:
        raise UserError(f"--min-effect must be 0 or more, got {args.min_effect:g}")
    csv = check_file(args.csv, "--csv") if args.csv else None
    md = check_file(args.md, "--md") if args.md else None
    # Imported here so that `lalm-bench --help` does not pay for scipy and pandas.
    from harness import provenance, terminal
    from harness.report.render import markdown_table
    from harness.report.runs import load_run

    run_a, run_b = load_run(args.run_a), load_run(args.run_b)
    mixed = provenance.warning({"A": provenance.run_environments(run_a.meta, run_a.results),
                                "B": provenance.run_environments(run_b.meta, run_b.results)})
    if mixed:
        print(f"warning: {mixed}", file=sys.stderr)
    table, counts = comparison.compare(run_a.results, run_a.samples, run_b.results, run_b.samples,
                                       args.alpha, args.min_effect)
    if table.empty:
        raise UserError(f"{args.run_a} and {args.run_b} share no measured point "
                        f"(rows match on {', '.join(counts['key'])})")
    shown = comparison.display(table)
    shared = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.shared.items())
    title = f"B = {args.run_b} vs A = {args.run_a}" + (f" ({shared})" if shared else "")
    frame = shown.frame
    styles = [[VERDICT_STYLES.get(shown.verdicts.at[i, c], "") if c in shown.verdicts else "" for c in frame.columns]
              for i in frame.index]
    terminal.console().print(terminal.table(title, list(frame.columns), frame.values.tolist(), shown.identity,
                                            right=("batch", "audio"), styles=styles))
    if shown.same:
        print(f"The same in every point (left out): {', '.join(shown.same)}.")
    print(_summary(table, counts, args))
    shift, spread = comparison.latency_drift(table)
    if max(shift, 1 / shift) > 1 + args.min_effect:
        print(f"B's latencies are {comparison.change_text('latency_ms', shift)} than A's at the median point: "
              "where the code did not change, the machine or its load did, and every verdict carries that shift.")
    if spread > 1 + args.min_effect:
        print(f"Point to point, B/A latency strays up to ×{spread:.2f} from that median (90th percentile): changes "
              "smaller than that may be the machine's load rather than the code; rerun both on a quiet machine "
              f"or raise --min-effect (now {args.min_effect:g}).")
    if csv is not None:
        csv.parent.mkdir(parents=True, exist_ok=True)
        table.drop(columns=["reading"]).to_csv(csv, index=False)
    if md is not None:
        md.parent.mkdir(parents=True, exist_ok=True)
        md.write_text(f"{title}\n\n{markdown_table(frame)}\n")
    return 0
