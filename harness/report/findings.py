"""The report's headline statements, written from the analysis tables.

Each function turns one analysis table into sentences a paper could quote; a statement is
made only when the numbers support it (a crossover only when the bootstrap agrees). The
summary speaks about the SSM LALM against the transformer LALM; the hybrids are in the tables
(and in the summary when the SSM LALM was not run).
"""
from __future__ import annotations

import math

import pandas as pd

from harness.report import analysis
from harness.report.formatting import compact, fixed, fixed_interval, metric_name, number, quantity, seconds, span

PHASE_NAMES = {"e2e": "end-to-end", "train_step": "training-step"}
# (phase, metric) pairs the summary speaks about; the tables hold all of them.
HEADLINE = (("e2e", "latency_ms"), ("encoder", "latency_ms"), ("prefill", "latency_ms"),
            ("decode", "latency_ms"), ("e2e", "peak_mem_bytes"), ("e2e", "flops"),
            ("train_step", "latency_ms"), ("train_step", "peak_mem_bytes"))
# A crossover is stated when at least this share of bootstrap replicates cross in range.
MIN_CROSSING_SHARE = 0.9
# Cost ratios closer to 1 than this are "about the same cost".
SAME_COST = 0.05


def quantity_name(phase: str, metric: str) -> str:
    """'end-to-end latency', 'decode latency per token', 'encoder peak memory'."""
    name = f"{PHASE_NAMES.get(phase, phase)} {metric_name(metric)}"
    return name + " per token" if (phase, metric) == ("decode", "latency_ms") else name


def sentence(text: str) -> str:
    return text[0].upper() + text[1:]


def headline_pairs(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of the SSM-vs-transformer pair, or of every pair when the SSM LALM is absent."""
    main = analysis.RATIO_PAIRS[0][0]
    return table[table["numerator"] == main] if (table["numerator"] == main).any() else table


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def scaling(exponents: pd.DataFrame) -> list[str]:
    """'End-to-end latency grows as L^1.30 [1.27, 1.34] for ast+llama (60–300 s) and …'.

    Only exponents whose interval excludes 0: a slope the noise allows to be flat (a "decode
    latency grows as L^-0.23" from jitter) is in the table, never a headline.
    """
    sentences = []
    exponents = exponents[(exponents["ci_low"] > 0) | (exponents["ci_high"] < 0)]
    for phase, metric in HEADLINE:
        rows = exponents[(exponents["phase"] == phase) & (exponents["metric"] == metric)]
        if rows.empty:
            continue
        parts = [
            f"L^{fixed(r.exponent)} {fixed_interval(r.ci_low, r.ci_high)} for {r.series} "
            f"({span(r.x_min, r.x_max)}{'; fixed cost still ≥10 %' if r.overhead_limited else ''})"
            for r in rows.itertuples(index=False)
        ]
        sentences.append(sentence(f"{quantity_name(phase, metric)} grows as {_join(parts)}."))
    return sentences


def frontier(table: pd.DataFrame) -> list[str]:
    """Which series failed at which length; one sentence for those that never failed."""
    sentences = []
    for (workload, batch), rows in table.groupby(["workload", "batch_size"], sort=False):
        for r in rows[rows["failure"] != ""].itertuples(index=False):
            handled = (f"the longest it handled was {seconds(r.longest_ok)}" if math.isfinite(r.longest_ok)
                       else "it handled no length")
            sentences.append(f"{r.series} ({workload}, batch {batch}) failed ({r.failure}) at "
                             f"{seconds(r.first_failure)}; {handled}.")
        fine = rows[rows["failure"] == ""]
        if len(fine):
            sentences.append(f"{_join(list(fine['series']))} ({workload}, batch {batch}) handled every length "
                             f"measured, up to {seconds(fine['longest_ok'].max())}.")
    return sentences


def crossovers(table: pd.DataFrame) -> list[str]:
    """Where the SSM LALM becomes cheaper than the transformer, for the headline quantities."""
    sentences = []
    table = headline_pairs(table)
    for phase, metric in HEADLINE:
        for r in table[(table["phase"] == phase) & (table["metric"] == metric)].itertuples(index=False):
            what = quantity_name(phase, metric)
            who = f"{r.numerator} ({r.setting})" if r.setting else r.numerator
            measured = span(r.x_min, r.x_max)
            if r.outcome == "cheaper throughout":
                sentences.append(f"{who} has lower {what} than {analysis.TRANSFORMER} at every common length "
                                 f"({measured}).")
            elif r.outcome == "no crossover":
                sentences.append(f"{who} vs {analysis.TRANSFORMER}, {what}: no crossover in the measured range "
                                 f"({measured}).")
            elif math.isnan(r.share) or r.share >= MIN_CROSSING_SHARE:
                ci = (f" (95 % CI {compact(r.ci_low)}–{seconds(r.ci_high)})" if math.isfinite(r.ci_low) else "")
                sentences.append(f"{who} has lower {what} than {analysis.TRANSFORMER} beyond "
                                 f"{seconds(r.length)} of audio{ci}.")
            else:
                sentences.append(f"{who} vs {analysis.TRANSFORMER}, {what}: the ratio crosses 1 near "
                                 f"{seconds(r.length)}, but only {number(100 * r.share, 2)} % of bootstrap "
                                 "resamples do: the crossover is within the noise.")
    return sentences


def throughput(table: pd.DataFrame) -> list[str]:
    """'At batch 16 (30 s audio, …), dass+mamba decodes 1.95× the tokens/s of ast+llama (920 vs 471).'"""
    verbs = {"decode": "decodes", "prefill": "prefills", "encoder": "encodes", "e2e": "processes"}
    sentences = []
    for r in headline_pairs(table).itertuples(index=False):
        who = f"{r.numerator} ({r.setting})" if r.setting else r.numerator
        verb = verbs.get(r.phase, f"runs {r.phase}")
        sentences.append(f"At batch {r.batch_size} ({r.fixed}), {who} {verb} at {number(r.ratio)}× the "
                         f"throughput of {analysis.TRANSFORMER} ({quantity(r.value_n, r.unit)} vs "
                         f"{quantity(r.value_d, r.unit)}).")
    return sentences


def accuracy(trade: pd.DataFrame) -> list[str]:
    """'On esc50, dass+mamba scores accuracy 0.628 vs 0.652 (−0.024) for a 3.2-fold cut in …'."""
    sentences = []
    for r in trade.itertuples(index=False):
        cost = quantity_name(r.cost_phase, r.cost_metric)
        if abs(r.cost_ratio - 1) < SAME_COST:
            change = f"about the same {cost} ({number(r.cost_ratio)}×)"
        elif r.cost_ratio < 1:
            change = f"a {number(1 / r.cost_ratio, 2)}-fold cut in {cost}"
        else:
            change = f"{number(r.cost_ratio, 2)}× the {cost}"
        sign = "+" if r.delta >= 0 else "−"
        sentences.append(f"On {r.dataset or 'the task'}, {r.numerator} scores {metric_name(r.metric)} "
                         f"{number(r.score_n)} vs {number(r.score_d)} for {analysis.TRANSFORMER} "
                         f"({sign}{number(abs(r.delta), 2)}) at {change}.")
    return sentences

