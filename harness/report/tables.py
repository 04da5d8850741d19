"""Analysis tables -> display tables (strings with units and intervals) for the report."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.report import analysis, profiles, resolution
from harness.report.findings import quantity_name
from harness.report.formatting import fixed, fixed_interval, interval, number, quantity, seconds, span
from harness.report.render import Link, relative_href

ERROR_CHARS = 120  # failure messages are cut to one readable line


# Closed-form twins of measured metrics: one row in the exponent table holds both.
ANALYTIC_TWINS = {"flops_analytic": "flops", "state_bytes_analytic": "state_bytes"}


def exponents(table: pd.DataFrame) -> pd.DataFrame:
    """One row per series and quantity; a measured metric's closed-form twin sits beside it
    (`analytic`), and an interval that includes 0 is said to (no measurable growth)."""
    key = ["series", "phase", "metric"]
    is_twin = table["metric"].isin(ANALYTIC_TWINS)
    twins = table[is_twin].assign(metric=table.loc[is_twin, "metric"].map(ANALYTIC_TWINS))
    fitted = set(zip(table["series"], table["phase"], table["metric"]))
    paired = pd.Series([k in fitted for k in zip(twins["series"], twins["phase"], twins["metric"])],
                       index=twins.index, dtype=bool)
    # A closed form whose measured metric was not fitted keeps a row of its own.
    rows = table[~is_twin | table.index.isin(paired.index[~paired])]
    merged = rows.merge(twins.loc[paired, [*key, "exponent", "ci_low", "ci_high"]], on=key, how="left",
                        suffixes=("", "_analytic"))
    has_twin = merged["exponent_analytic"].notna()
    flat = (merged["ci_low"] <= 0) & (merged["ci_high"] >= 0)
    notes = [
        "; ".join(n for n in ("fixed cost ≥10 % at every length" if limited else "",
                              "interval includes 0: no measurable growth" if is_flat else "") if n)
        for limited, is_flat in zip(merged["overhead_limited"], flat)
    ]
    return pd.DataFrame({
        "series": merged["series"],
        "quantity": [quantity_name(p, m) for p, m in zip(merged["phase"], merged["metric"])],
        "exponent": merged["exponent"].map(fixed),
        "95% CI": [fixed_interval(lo, hi) for lo, hi in zip(merged["ci_low"], merged["ci_high"])],
        "analytic": [f"{fixed(e)} {fixed_interval(lo, hi)}" if twin else "" for e, lo, hi, twin in
                     zip(merged["exponent_analytic"], merged["ci_low_analytic"], merged["ci_high_analytic"],
                         has_twin)],
        "fit range": [span(a, b) for a, b in zip(merged["x_min"], merged["x_max"])],
        "lengths": merged["n_points"],
        "CI from": merged["method"],
        "note": notes,
        "held fixed": merged["fixed"],
    }).reset_index(drop=True)


def crossovers(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "pair": table["pair"] + table["setting"].map(lambda s: f" ({s})" if s else ""),
        "quantity": [quantity_name(p, m) for p, m in zip(table["phase"], table["metric"])],
        "outcome": table["outcome"],
        "crossover": table["length"].map(seconds),
        "95% CI (s)": [interval(lo, hi) for lo, hi in zip(table["ci_low"], table["ci_high"])],
        "resamples crossing": table["share"].map(lambda v: f"{number(100 * v, 3)} %" if v == v else "no samples"),
        "common range": [span(a, b) for a, b in zip(table["x_min"], table["x_max"])],
    })


def frontier(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "series": table["series"],
        "workload": table["workload"],
        "batch": table["batch_size"],
        "longest handled": table["longest_ok"].map(seconds),
        "first failure": table["first_failure"].map(seconds),
        "status": table["failure"].replace("", "–"),
    })


def throughput(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "pair": table["pair"] + table["setting"].map(lambda s: f" ({s})" if s else ""),
        "phase": table["phase"],
        "batch": table["batch_size"],
        "numerator": [quantity(v, u) for v, u in zip(table["value_n"], table["unit"])],
        analysis.TRANSFORMER: [quantity(v, u) for v, u in zip(table["value_d"], table["unit"])],
        "ratio": table["ratio"].map(lambda v: f"{number(v)}×"),
        "held fixed": table["fixed"],
    })


def accuracy(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "series": table["series"],
        "dataset": table["dataset"],
        "metric": table["metric"],
        "score": table["score"].map(number),
        "cost": [f"{quantity(v, u)} ({quantity_name(p, m)})"
                 for v, u, p, m in zip(table["cost"], table["cost_unit"], table["cost_phase"], table["cost_metric"])],
        "Pareto-optimal": table["pareto"].map(lambda v: "yes" if v else ""),
    })


def failures(df: pd.DataFrame) -> pd.DataFrame:
    """One row per failed (point, phase, status), with its error message cut to one line."""
    rows = analysis.failed(df).drop_duplicates(["run_id", "point_id", "phase", "status"])
    rows = rows.sort_values(["variant", "phase", "batch_size", "audio_seconds"])
    return pd.DataFrame({
        "series": rows["series"],
        "phase": rows["phase"],
        "batch": rows["batch_size"],
        "audio": rows["audio_seconds"].map(seconds),
        "status": rows["status"],
        "error": rows["error"].map(lambda e: " ".join(str(e).split())[:ERROR_CHARS]),
    })


def unmeasured(df: pd.DataFrame) -> pd.DataFrame:
    """Rows that ran but could not measure their metric (NaN value), with the reason given."""
    rows = df[(df["status"] == "ok") & df["value"].isna()]
    rows = rows.drop_duplicates(["series", "phase", "metric", "note"])
    return pd.DataFrame({
        "series": rows["series"],
        "phase": rows["phase"],
        "metric": rows["metric"],
        "reason": rows["note"].map(lambda n: " ".join(str(n).split())[:ERROR_CHARS] or "not given"),
    })


def below_resolution(df: pd.DataFrame) -> pd.DataFrame:
    """Per phase and metric: the series with values below their meter's resolution, how many, the largest."""
    rows = df[df["below_resolution"]]
    table = (rows.groupby(["phase", "metric", "unit", "source"], sort=False)
             .agg(series=("series", lambda s: ", ".join(dict.fromkeys(s))), values=("value", "size"),
                  largest=("value", "max"))
             .reset_index())
    return pd.DataFrame({
        "quantity": [quantity_name(p, m) for p, m in zip(table["phase"], table["metric"])],
        "series": table["series"],
        "values below": table["values"],
        "largest": [quantity(v, u) for v, u in zip(table["largest"], table["unit"])],
        "resolution": [quantity(resolution.RESOLUTIONS[(s, m)][0], u)
                       for s, m, u in zip(table["source"], table["metric"], table["unit"])],
    })


def meters(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "meter": table["source"],
        "metric": table["metric"],
        "resolution": [quantity(v, u) for v, u in zip(table["resolution"], table["unit"])],
        "why": table["why"],
        "values below it": [f"{b} of {n}" for b, n in zip(table["below"], table["values"])],
    })


def task_scores(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "series": table["series"],
        "dataset": table["dataset"],
        "metric": table["metric"],
        "score": table["score"].map(number),
        "clips": table["n"],
        "checkpoint": table["checkpoint"],
    })


def runs(results: pd.DataFrame, metas: dict[str, dict], names: list[str]) -> pd.DataFrame:
    rows = []
    for (run_id, group), name in zip(results.groupby("run_id", sort=False), names):
        meta = metas.get(run_id, {})
        sessions = [s for s in meta.get("sessions", []) if isinstance(s, dict)]
        rows.append({
            "run": run_id,
            "folder": name,
            "suite": ", ".join(sorted(set(group["suite"]) - {""})) or "–",
            "variants": ", ".join(sorted(set(group["variant"]))),
            "points": group["point_id"].nunique(),
            "rows": len(group),
            "failed rows": int(group["status"].isin(analysis.FAILED_STATUSES).sum()),
            "started": sessions[0].get("started", "–") if sessions else meta.get("created", "–"),
            "finished": sessions[-1].get("finished", "–") if sessions else "–",
            "state": meta.get("state", "–"),
        })
    return pd.DataFrame(rows)


def _verdict(check) -> str:
    """'faithful (-6 %)', 'distorted (+59 %)', or the status of a profile that failed."""
    if check.verdict in ("faithful", "distorted"):
        return f"{check.verdict} ({100 * check.overhead:+.0f} %)"
    return check.verdict


def profiled_points(points: pd.DataFrame, checks: pd.DataFrame, base: Path) -> pd.DataFrame:
    """One row per profiled point: what ran, a link to its summary (relative to the report folder
    `base`) and the overhead verdict of each profiled phase."""
    several_runs = points["run_id"].nunique() > 1
    verdicts = {(c.run_id, c.point_id, c.phase): _verdict(c) for c in checks.itertuples(index=False)}
    frame = pd.DataFrame({
        **({"run": points["run_id"]} if several_runs else {}),
        "variant": points["series"],
        "size": points["size"],
        "audio": points["audio_seconds"].map(seconds),
        "batch": points["batch_size"],
        "profile": [Link(profiles.SUMMARY, relative_href(path, base)) if path is not None else "not in the run folder"
                    for path in points["summary"]],
    })
    for phase in profiles.ordered_phases(checks["phase"]):
        frame[phase] = [verdicts.get((r, p, phase), "–") for r, p in zip(points["run_id"], points["point_id"])]
    return frame
