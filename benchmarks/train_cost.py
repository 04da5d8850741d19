"""What one fine-tuning step costs each LALM: run the `training` suite and print its table.

Runs a training suite through the runner (each point in a worker of its own; the run folder is
written through harness.store, so `lalm-bench report` draws its figures), then prints one line
per (size, variant, audio length, batch): step time (median, p10-p90), peak memory above the
weights, tokens and audio seconds per second, counted GFLOP per step against the closed form,
trainable / total parameters, the largest batch under the suite's memory budget, and step time
and memory relative to the transformer LALM (ast+llama) at the same shape.

    python benchmarks/train_cost.py                                   # CPU: tiny and small
    python benchmarks/train_cost.py --suite training-gpu              # GPU: paper and matched
    python benchmarks/train_cost.py --set 'grid.size=["tiny"]' --set run.threads=1
    python benchmarks/train_cost.py --table results/training-...      # print an existing run

Run it on a quiet machine: other processes on the same cores inflate step times.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from harness import api, store
from harness.suite import parse_overrides

KEYS = ["size", "variant", "audio_seconds", "batch_size"]
TRANSFORMER = "ast+llama"


def run_suite(suite_ref: str, overrides: list[str], out: Path | None) -> Path:
    result = api.run_suite(suite_ref, out=out, overrides=parse_overrides(overrides))
    print(f"{result.total} points: {dict(result.statuses)}; run folder {result.run_dir}", file=sys.stderr)
    return result.run_dir


def _metric(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    picked = rows[rows["metric"] == metric].set_index(KEYS)
    return picked[["value", "lo", "hi", "status"]]


def table(results: pd.DataFrame) -> pd.DataFrame:
    """One line per shape; failed points show their status instead of figures."""
    rows = results[results["phase"] == "train_step"]
    latency = _metric(rows, "latency_ms")
    out = pd.DataFrame(index=latency.index)
    ok = latency["status"] == "ok"
    out["step ms"] = latency["value"].map("{:.4g}".format).where(ok, latency["status"])
    out["p10-p90"] = (latency["lo"].map("{:.4g}".format) + "-" + latency["hi"].map("{:.4g}".format)).where(ok, "")
    for name, metric, scale, fmt in (("peak MiB", "peak_mem_bytes", 2**-20, "{:.1f}"),
                                     ("tokens/s", "throughput", 1, "{:.4g}"),
                                     ("GFLOP", "flops", 1e-9, "{:.4g}"),
                                     ("counted/analytic", "flop_coverage", 1, "{:.3f}"),
                                     ("trainable M", "trainable_params", 1e-6, "{:.3f}"),
                                     ("params M", "params", 1e-6, "{:.2f}")):
        values = _metric(rows, metric)["value"].reindex(out.index)
        out[name] = (values * scale).map(fmt.format).where(values.notna(), "")
    rtf = _metric(rows, "rtf")["value"].reindex(out.index)
    out["audio s/s"] = (1 / rtf).map("{:.3g}".format).where(rtf.notna(), "")
    out["max batch"] = _max_batch(rows).reindex(out.index.droplevel("batch_size")).to_numpy()
    for name, metric in (("step x", "latency_ms"), ("mem x", "peak_mem_bytes")):
        out[name] = _relative(_metric(rows, metric)).reindex(out.index).map("{:.2f}".format).replace("nan", "")
    return out.sort_index()


def _max_batch(rows: pd.DataFrame) -> pd.Series:
    """The search's answer per configuration: a number, ">=N" at the search limit, or its status."""
    found = rows[rows["metric"] == "max_batch"].set_index(KEYS[:3])
    text = found["value"].map(lambda v: f"{v:.0f}" if pd.notna(v) else "")
    text = text.where(found["hi"].notna() | found["value"].isna(), ">=" + text)
    return text.where(found["status"] == "ok", found["status"]).groupby(level=KEYS[:3]).first()


def _relative(metric: pd.DataFrame) -> pd.Series:
    """Each variant's value over the transformer LALM's at the same size, length and batch."""
    values = metric["value"].where(metric["status"] == "ok")
    base = values.xs(TRANSFORMER, level="variant")
    return values / base.reindex(values.index.droplevel("variant")).to_numpy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="training", help="suite name or TOML path (default: training)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a suite field, as `lalm-bench run --set` (repeatable)")
    parser.add_argument("--out", type=Path, help="run folder (default: results/<run id>)")
    parser.add_argument("--table", type=Path, metavar="RUN_DIR", help="only print the table of an existing run")
    args = parser.parse_args(argv)
    run_dir = args.table or run_suite(args.suite, args.overrides, args.out)
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_rows", 500):
        print(table(store.load_run(run_dir).results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
