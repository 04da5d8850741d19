"""The results store: one folder per run, where no finished point is ever lost or duplicated.

    results/<run_id>/
        run.json            the suite as resolved, the environment, start/end, state
        results.parquet     the tidy table (harness.schema.COLUMNS)
        samples.parquet     raw per-repeat values (harness.schema.SAMPLE_COLUMNS)
        parts/              the journal: one results + one samples file per finished point

Every finished point is written as its own part files (temp file, fsync, rename, fsync of the
folder), so it is durable the moment it finishes, whatever happens to the process next. A part
is keyed by its point id (or, for rows appended by other commands, by what they describe), so
writing the same key again replaces it: there is no way to duplicate a point. Compaction
merges the parts into results.parquet / samples.parquet (again write-temp-then-rename) and then
removes them; each compacted row keeps its part key (`_part`), so a part written after a
compaction still replaces exactly the rows it should.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harness import env
from harness.errors import UserError
from harness.outputs import check_folder
from harness.schema import SAMPLE_COLUMNS, STATUSES, conform, validate

RUN_META = "run.json"
RESULTS = "results.parquet"
SAMPLES = "samples.parquet"
PARTS = "parts"
LOCK = ".lock"
LOGS = "logs"  # worker stdout/stderr per point (kept when not empty)
ARTIFACTS = "artifacts"  # files a point produced besides numbers, one folder per point id
PART_KEY = "_part"  # store-internal column: which part a compacted row came from
_RESULTS_SUFFIX = ".results.parquet"
_SAMPLES_SUFFIX = ".samples.parquet"
_TMP_PREFIX = ".tmp-"
# What a run folder holds besides run.json: an overwrite clears these and nothing else.
_RUN_ENTRIES = (RESULTS, SAMPLES, PARTS, LOGS, ARTIFACTS)


@dataclass
class Run:
    """A run as loaded: the tidy table, its raw samples and run.json."""

    results: pd.DataFrame
    samples: pd.DataFrame
    meta: dict[str, Any]


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, write: callable) -> None:
    """Write via `write(file)` to a temp file beside `path`, fsync it, rename over `path`, fsync the folder."""
    tmp = path.with_name(f"{_TMP_PREFIX}{os.getpid()}-{path.name}")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _write_parquet(path: Path, df: pd.DataFrame) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    _atomic_write(path, lambda f: pq.write_table(table, f))


def write_meta(run_dir: Path, meta: dict[str, Any]) -> None:
    _atomic_write(run_dir / RUN_META, lambda f: f.write(json.dumps(meta, indent=2, default=str).encode()))


def read_meta(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / RUN_META
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{run_dir} is not a run folder (no {RUN_META})") from None
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: cannot read run metadata: {err}") from None


def new_run_id(suite_name: str) -> str:
    """A run id that sorts by time and does not collide between runs started in the same second."""
    return f"{suite_name}-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def check_new_run_dir(run_dir: Path, overwrite: bool = False) -> None:
    """UserError (one line, naming `run_dir`) unless a new run can be made there.

    A new folder (its parents made as needed), an empty one, or with `overwrite` a folder holding
    a run can be. A folder that holds something else is refused: with `overwrite` a run may be
    added to it when none of its entries has a name the store uses, so nothing in it is deleted.
    """
    run_dir = check_folder(run_dir, "--out")
    if not run_dir.exists():
        return
    if (run_dir / RUN_META).exists():
        if not overwrite:
            raise UserError(f"{run_dir} already holds a run; pass --resume {run_dir} to finish it "
                            "or --overwrite to start it again")
        return
    entries = sorted(p.name for p in run_dir.iterdir())
    if not entries:
        return
    if not overwrite:
        raise UserError(f"--out {run_dir} is a folder that holds no run but is not empty ({', '.join(entries[:3])}"
                        f"{', ...' if len(entries) > 3 else ''}); choose a new or empty folder, or pass --overwrite "
                        "to add a run to it (nothing in it is deleted)")
    clashing = [name for name in entries if name in _RUN_ENTRIES]
    if clashing:
        raise UserError(f"--out {run_dir} holds {', '.join(clashing)} but no {RUN_META}: it is not a run, "
                        "so it is left as it is; choose another folder")


def create_run(run_dir: Path, suite: dict[str, Any], source: str, run_id: str | None = None,
               overwrite: bool = False) -> str:
    """Make a run folder holding run.json for `suite` (a resolved suite as JSON); returns the run id.

    Overwriting a run clears its tables, parts, logs and artifacts (under the run's lock, so a
    running sweep keeps its tables); nothing else in the folder is touched.
    """
    run_dir = Path(run_dir)
    check_new_run_dir(run_dir, overwrite)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"--out {run_dir}: cannot create the folder ({err.strerror or err})") from None
    run_id = run_id or new_run_id(suite["name"])
    lock = RunLock(run_dir)
    try:
        if (run_dir / RUN_META).exists():
            for name in _RUN_ENTRIES:
                path = run_dir / name
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
        write_meta(run_dir, {"run_id": run_id, "suite_name": suite["name"], "source": source, "suite": suite,
                             "state": "created", "created": env.now(), "sessions": []})
    finally:
        lock.release()
    return run_id


class RunLock:
    """An exclusive lock on a run folder, released when the process ends however it ends."""

    def __init__(self, run_dir: Path, wait: bool = False):
        self._file = open(Path(run_dir) / LOCK, "a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            self._file.close()
            raise UserError(f"{run_dir} is in use by another lalm-bench process") from None

    def release(self) -> None:
        if not self._file.closed:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pq.read_table(path).to_pandas()
    except (pa.ArrowException, OSError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"{path}: cannot read the table ({first}); the file is damaged") from None


def _part_keys(parts: Path) -> list[str]:
    """Keys of the committed parts; a results file is the commit marker, so a samples file
    whose results file never landed (a crash in between) is ignored."""
    if not parts.is_dir():
        return []
    return sorted(p.name.removesuffix(_RESULTS_SUFFIX) for p in parts.glob(f"*{_RESULTS_SUFFIX}") if not p.name.startswith(_TMP_PREFIX))


def _gather(run_dir: Path, suffix: str, compacted: str, keys: list[str]) -> pd.DataFrame:
    """Compacted rows not superseded by a part, then every part's rows, each with its `_part`."""
    frames = []
    base = run_dir / compacted
    if base.exists():
        df = _read_parquet(base)
        frames.append(df[~df[PART_KEY].isin(keys)])
    for key in keys:
        path = run_dir / PARTS / f"{key}{suffix}"
        if path.exists():
            frames.append(_read_parquet(path).assign(**{PART_KEY: key}))
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({PART_KEY: pd.Series(dtype="string")})


def _load_tables(run_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    keys = _part_keys(run_dir / PARTS)
    results = conform(_gather(run_dir, _RESULTS_SUFFIX, RESULTS, keys))
    samples = conform(_gather(run_dir, _SAMPLES_SUFFIX, SAMPLES, keys), SAMPLE_COLUMNS)
    return results, samples, keys


def load_run(run_dir: str | Path) -> Run:
    """The run's results (validated against the schema), samples and metadata, parts included."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} does not exist")
    meta = read_meta(run_dir)
    results, samples, _ = _load_tables(run_dir)
    validate(results)
    return Run(results.drop(columns=PART_KEY), samples.drop(columns=PART_KEY), meta)


def compact(run_dir: Path) -> None:
    """Merge the parts into results.parquet / samples.parquet, then remove the merged parts.

    Call it holding the run's lock. A crash at any step leaves a loadable folder: until the
    rename the old compacted file stands, after it the parts duplicate rows that `_part` dedupes.
    """
    results, samples, keys = _load_tables(run_dir)
    if not keys:
        return
    _write_parquet(run_dir / SAMPLES, samples)
    _write_parquet(run_dir / RESULTS, results)
    for key in keys:
        for suffix in (_SAMPLES_SUFFIX, _RESULTS_SUFFIX):
            (run_dir / PARTS / f"{key}{suffix}").unlink(missing_ok=True)
    if not any((run_dir / PARTS).iterdir()):
        (run_dir / PARTS).rmdir()  # all merged; a later part recreates it


def write_part(run_dir: Path, key: str, results: pd.DataFrame, samples: pd.DataFrame) -> None:
    """Make one point's rows durable. Samples land first: the results file is the commit marker."""
    parts = run_dir / PARTS
    parts.mkdir(exist_ok=True)
    _write_parquet(parts / f"{key}{_SAMPLES_SUFFIX}", conform(samples, SAMPLE_COLUMNS))
    _write_parquet(parts / f"{key}{_RESULTS_SUFFIX}", conform(results))


def artifact_path(run_dir: Path, point_id: str, name: str) -> Path:
    """Where a point's file `name` (a relative path) lives; ValueError for a name that would
    leave the point's folder."""
    relative = Path(name)
    if not name or relative.is_absolute() or ".." in relative.parts:
        raise ValueError(f"artifact name {name!r} must be a relative path inside the point's folder")
    return run_dir / ARTIFACTS / point_id / relative


def write_artifacts(run_dir: Path, point_id: str, files: dict[str, bytes]) -> None:
    """Write a point's files (before its rows, so rows never point at files that are not there)."""
    for name, content in files.items():
        path = artifact_path(run_dir, point_id, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, lambda f, data=content: f.write(data))


def remove_stale_temp_files(run_dir: Path) -> None:
    """Temp files are only ever left by a process that died mid-write; they hold nothing committed."""
    for folder in (run_dir, run_dir / PARTS):
        for path in folder.glob(f"{_TMP_PREFIX}*") if folder.is_dir() else ():
            path.unlink(missing_ok=True)


def append_rows(run_dir: str | Path, rows: list[dict] | pd.DataFrame, samples: list[dict] | pd.DataFrame | None = None) -> str:
    """Add rows from another command (e.g. task accuracy) to a run; returns the part key.

    The key is derived from what the rows describe (point, phase, metric, dataset, module), so
    appending the same measurement again replaces the earlier rows instead of duplicating them.
    Safe while a sweep is writing to the same run: the part lands at once, and compaction
    happens now if the run is idle, otherwise when the sweep finishes.
    """
    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    results = conform(rows)
    results["run_id"] = meta["run_id"]
    validate(results)
    identity = results[["point_id", "phase", "metric", "dataset", "module", "source"]].drop_duplicates()
    digest = hashlib.sha256(identity.sort_values(list(identity.columns)).to_csv(index=False).encode()).hexdigest()
    key = f"rows-{digest[:16]}"
    samples_df = conform(samples if samples is not None else [], SAMPLE_COLUMNS)
    samples_df["run_id"] = meta["run_id"]
    write_part(run_dir, key, results, samples_df)
    try:
        lock = RunLock(run_dir)
    except UserError:
        return key  # a sweep holds the run; it compacts when it finishes
    try:
        compact(run_dir)
    finally:
        lock.release()
    return key


def done_points(run_dir: Path) -> dict[str, str]:
    """point_id -> the point's status (its worst row status) for every point with rows."""
    results, _, _ = _load_tables(run_dir)
    return point_statuses(results)


def point_statuses(results: pd.DataFrame) -> dict[str, str]:
    """point_id -> worst status among its rows (`STATUSES` lists them worst first)."""
    rank = {s: i for i, s in enumerate(STATUSES)}
    ranked = results.assign(_rank=results["status"].map(lambda s: rank.get(s, 0)))
    worst = ranked.groupby("point_id")["_rank"].min()
    return {pid: STATUSES[r] for pid, r in worst.items()}

