"""Load one or more run folders (through `harness.store`) into the tables reports and `compare` read."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa

from harness import store
from harness.errors import UserError

@dataclass(frozen=True)
class Runs:
    """Results of all runs concatenated, their raw samples, and each run's run.json.

    results: the tidy table (schema.COLUMNS), one run_id per run.
    samples: schema.SAMPLE_COLUMNS (run_id, point_id, phase, metric, i, value, unit).
    metas: run_id -> run.json.
    names: the run folders' names, in the order given.
    dirs: run_id -> the run's folder (for files a report links to, such as profiles).
    """

    results: pd.DataFrame
    samples: pd.DataFrame
    metas: dict[str, dict] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    dirs: dict[str, Path] = field(default_factory=dict)


def load_run(run_dir: str | Path) -> store.Run:
    """One run folder; UserError naming it when it is not a run or holds no rows."""
    path = Path(run_dir)
    try:
        run = store.load_run(path)
    except (OSError, pa.ArrowException) as err:  # a damaged parquet file
        raise UserError(f"{path}: cannot read the run's tables ({type(err).__name__}: {err})") from None
    except ValueError as err:  # the schema check; UserError (a ValueError too) passes through as is
        if isinstance(err, UserError):
            raise
        raise UserError(f"{path}: {err}") from None
    if run.results.empty:
        raise UserError(f"run folder {path} holds no results yet")
    return run


def load_runs(run_dirs: list[str | Path]) -> Runs:
    """Several run folders -> one Runs. Two folders holding the same run id are refused."""
    if not run_dirs:
        raise UserError("no run folder given")
    results, samples, metas, dirs = [], [], {}, {}
    for run_dir in run_dirs:
        run = load_run(run_dir)
        run_id = str(run.meta.get("run_id") or run.results["run_id"].iloc[0])
        if run_id in metas:
            raise UserError(f"run folder {run_dir} holds run {run_id!r} a second time")
        metas[run_id] = run.meta
        dirs[run_id] = Path(run_dir)
        # One id per run, whatever its rows say, so runs never mix in a report.
        results.append(run.results.assign(run_id=run_id))
        samples.append(run.samples.assign(run_id=run_id))
    return Runs(
        results=pd.concat(results, ignore_index=True),
        samples=pd.concat(samples, ignore_index=True),
        metas=metas,
        names=[Path(d).name for d in run_dirs],
        dirs=dirs,
    )
