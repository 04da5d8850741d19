"""The results store: parts are durable and replace rather than duplicate; compaction is crash-safe."""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from harness import store
from harness.errors import UserError
from harness.schema import COLUMNS, SAMPLE_COLUMNS


def rows(point_id: str, value: float, phases=("e2e",), **extra) -> pd.DataFrame:
    return pd.DataFrame([{
        "run_id": "r1", "point_id": point_id, "suite": "s", "variant": "dass+mamba", "encoder": "dass", "lm": "mamba",
        "size": "tiny", "device": "cpu", "dtype": "float32", "batch_size": 1, "audio_seconds": 1.0,
        "prompt_tokens": 8, "new_tokens": 4, "phase": phase, "metric": "latency_ms", "value": value, "unit": "ms",
        "lo": math.nan, "hi": math.nan, "n": 3, "status": "ok", "error": "", **extra} for phase in phases])


def samples(point_id: str, values: list[float]) -> pd.DataFrame:
    return pd.DataFrame([{"run_id": "r1", "point_id": point_id, "phase": "e2e", "metric": "latency_ms", "i": i,
                          "value": v, "unit": "ms"} for i, v in enumerate(values)])


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    store.write_meta(folder, {"run_id": "r1", "suite_name": "s", "sessions": []})
    return folder


def test_parts_load_before_compaction_and_compact_into_the_tables(run_dir):
    store.write_part(run_dir, "p1", rows("p1", 1.0), samples("p1", [1.0, 1.1]))
    store.write_part(run_dir, "p2", rows("p2", 2.0, phases=("fbank", "e2e")), samples("p2", [2.0]))
    before = store.load_run(run_dir)
    store.compact(run_dir)
    after = store.load_run(run_dir)
    for run in (before, after):
        assert sorted(run.results["point_id"]) == ["p1", "p2", "p2"]
        assert len(run.samples) == 3
        assert list(run.results.columns[: len(COLUMNS)]) == list(COLUMNS)
        assert list(run.samples.columns) == list(SAMPLE_COLUMNS)
    assert (run_dir / store.RESULTS).exists() and not (run_dir / store.PARTS).exists()


def test_writing_a_key_again_replaces_it_before_and_after_compaction(run_dir):
    store.write_part(run_dir, "p1", rows("p1", 1.0), samples("p1", [1.0]))
    store.write_part(run_dir, "p1", rows("p1", 5.0), samples("p1", [5.0, 5.1]))
    assert store.load_run(run_dir).results["value"].tolist() == [5.0]
    store.compact(run_dir)
    store.write_part(run_dir, "p1", rows("p1", 7.0), samples("p1", [7.0]))
    run = store.load_run(run_dir)
    assert run.results["value"].tolist() == [7.0] and run.samples["value"].tolist() == [7.0]


def test_a_crash_between_compaction_and_part_removal_duplicates_nothing(run_dir):
    store.write_part(run_dir, "p1", rows("p1", 1.0), samples("p1", [1.0]))
    kept = run_dir.parent / "kept"
    shutil.copytree(run_dir / store.PARTS, kept)
    store.compact(run_dir)
    shutil.copytree(kept, run_dir / store.PARTS)  # as if the process died before unlinking the parts
    assert len(store.load_run(run_dir).results) == 1


def test_half_written_parts_and_temp_files_are_not_rows(run_dir):
    store.write_part(run_dir, "p1", rows("p1", 1.0), samples("p1", [1.0]))
    parts = run_dir / store.PARTS
    # A samples file whose results file never landed, and a temp file from a write cut short.
    (parts / "p2.samples.parquet").write_bytes((parts / "p1.samples.parquet").read_bytes())
    (parts / ".tmp-99-p3.results.parquet").write_bytes(b"truncated")
    run = store.load_run(run_dir)
    assert run.results["point_id"].tolist() == ["p1"] and run.samples["point_id"].tolist() == ["p1"]
    store.remove_stale_temp_files(run_dir)
    assert not list(parts.glob(".tmp-*"))


def test_append_rows_is_idempotent_and_waits_for_a_busy_run(run_dir):
    task = rows("task-1", 0.9, dataset="esc50").assign(phase="task", metric="accuracy", unit="1")
    store.append_rows(run_dir, task)
    store.append_rows(run_dir, task.assign(value=0.95))
    results = store.load_run(run_dir).results
    assert results["value"].tolist() == [0.95] and results["dataset"].tolist() == ["esc50"]
    lock = store.RunLock(run_dir)  # a sweep is writing: the part lands, compaction waits
    try:
        store.append_rows(run_dir, rows("task-2", 0.5).assign(phase="task", metric="accuracy", unit="1"))
        assert list((run_dir / store.PARTS).glob("*.results.parquet"))
        assert sorted(store.load_run(run_dir).results["point_id"]) == ["task-1", "task-2"]
    finally:
        lock.release()


def test_rows_breaking_the_schema_are_refused(run_dir):
    with pytest.raises(ValueError, match="unknown status"):
        store.append_rows(run_dir, rows("p1", 1.0).assign(status="fine"))
    with pytest.raises(ValueError, match="lack required columns"):
        store.append_rows(run_dir, rows("p1", 1.0).drop(columns=["phase"]))


def test_a_run_folder_is_locked_against_a_second_writer(run_dir):
    lock = store.RunLock(run_dir)
    try:
        with pytest.raises(UserError, match="in use"):
            store.RunLock(run_dir)
    finally:
        lock.release()
    store.RunLock(run_dir).release()


def test_point_status_is_the_worst_of_its_rows():
    table = pd.concat([rows("a", 1.0, phases=("fbank", "e2e")),
                       rows("b", 1.0, phases=("fbank",)), rows("b", math.nan, phases=("e2e",)).assign(status="oom")])
    assert store.point_statuses(table) == {"a": "ok", "b": "oom"}


def test_loading_something_that_is_not_a_run_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        store.load_run(tmp_path / "missing")
    with pytest.raises(UserError, match="not a run folder"):
        store.load_run(tmp_path)
