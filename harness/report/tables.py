"""Analysis tables -> display tables (strings with units and intervals) for the report."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness.report import analysis, profiles
from harness.report.findings import quantity_name
from harness.report.formatting import fixed, fixed_interval, interval, number, quantity, seconds, span
from harness.report.render import Link, relative_href

ERROR_CHARS = 120  # failure messages are cut to one readable line


def exponents(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "series": table["series"],
        "quantity": [quantity_name(p, m) for p, m in zip(table["phase"], table["metric"])],
        "exponent": table["exponent"].map(fixed),
        "95% CI": [fixed_interval(lo, hi) for lo, hi in zip(table["ci_low"], table["ci_high"])],
        "fit range": [span(a, b) for a, b in zip(table["x_min"], table["x_max"])],
        "lengths": table["n_points"],
        "CI from": table["method"],
        "note": table["overhead_limited"].map(lambda v: "fixed cost ≥10 % at every length" if v else ""),
        "held fixed": table["fixed"],
    })


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
