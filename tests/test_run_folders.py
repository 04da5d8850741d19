"""Run folders: `run_suite` as a library call, and every bad folder refused in one line (exit 2 from
the CLI) with nothing written: a damaged table on resume or show, an --out under a file, one that
cannot be created, one that holds something that is not a run."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness import store
from harness.api import run_suite
from harness.cli import main
from harness.errors import UserError
from harness.suite import load_suite
from tests.fake_workload import FAULTS

FAKE = f"""
name = "fake"
description = "instant fake points"
[grid]
variant = ["ssm"]
audio_seconds = [1, 2]
[measure]
phases = ["e2e"]
repeats = 2
[run]
device = "cpu"
isolation = "none"
workload = "tests.fake_workload:measure"
"""


@pytest.fixture
def suite_file(tmp_path: Path) -> Path:
    path = tmp_path / "fake.toml"
    path.write_text(FAKE)
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its content: equal snapshots mean nothing was written."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_refused(argv: list[str], expected: str, capsys, untouched: Path) -> None:
    before = snapshot(untouched)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert snapshot(untouched) == before


def test_run_suite_runs_a_suite_and_resumes_it_without_repeating_a_point(tmp_path, suite_file):
    out = tmp_path / "run"
    first = run_suite(str(suite_file), out=out, overrides={"grid.prompt_tokens": [0, FAULTS["raise"]]})
    assert first.run_dir == out and first.total == 4 and first.statuses == {"ok": 2, "error": 2}
    run = store.load_run(out)
    assert run.meta["source"] == str(suite_file) and run.meta["state"] == "complete"
    again = run_suite(None, out=out, resume=True)
    assert again.ran == 0 and again.statuses == first.statuses
    assert len(store.load_run(out).results) == len(run.results)


def test_run_suite_takes_a_suite_object_with_overrides(tmp_path, suite_file):
    suite, _ = load_suite(str(suite_file))
    result = run_suite(suite, out=tmp_path / "run", overrides={"grid.audio_seconds": [3]}, source="test")
    run = store.load_run(tmp_path / "run")
    assert result.total == 1 and set(run.results["audio_seconds"]) == {3.0} and run.meta["source"] == "test"


def test_run_suite_refuses_to_change_what_a_resumed_run_measures(tmp_path, suite_file):
    out = tmp_path / "run"
    run_suite(str(suite_file), out=out)
    with pytest.raises(UserError, match="cannot change on --resume"):
        run_suite(None, out=out, resume=True, overrides={"measure.repeats": 5})


def test_resume_of_a_run_with_a_damaged_table_names_the_file(tmp_path, suite_file, capsys):
    out = tmp_path / "run"
    run_suite(str(suite_file), out=out)
    (out / store.RESULTS).write_bytes(b"PAR1 not a parquet file")
    assert_refused(["run", "--resume", str(out)], f"{out / store.RESULTS}: cannot read the table", capsys, out)


def test_show_of_a_run_with_a_damaged_table_names_the_file(tmp_path, suite_file, capsys):
    out = tmp_path / "run"
    run_suite(str(suite_file), out=out)
    (out / store.RESULTS).write_bytes((out / store.RESULTS).read_bytes()[:100])
    assert_refused(["show", str(out)], f"{out / store.RESULTS}: cannot read the table", capsys, out)


def test_out_under_a_file_is_refused(tmp_path, suite_file, capsys):
    (tmp_path / "file").write_text("x")
    assert_refused(["run", str(suite_file), "--out", str(tmp_path / "file" / "sub")],
                   f"{tmp_path / 'file'} is a file, not a folder", capsys, tmp_path)


def test_out_that_cannot_be_created_is_refused(tmp_path, suite_file, capsys):
    target = Path("/proc/lalm-bench-run")  # /proc takes no new folders, whoever asks (root included)
    assert_refused(["run", str(suite_file), "--out", str(target)], f"--out {target}: cannot create the folder",
                   capsys, tmp_path)
    assert not target.exists()


def test_out_holding_something_that_is_not_a_run_is_refused_and_never_cleared(tmp_path, suite_file, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert_refused(["run", str(suite_file), "--out", str(out)], "holds no run but is not empty", capsys, tmp_path)
    # --overwrite adds a run beside what is there, deleting nothing ...
    assert main(["run", str(suite_file), "--out", str(out), "--overwrite", "--quiet"]) == 0
    assert (out / "notes.txt").read_text() == "keep me" and (out / store.RUN_META).exists()
    # ... but a folder holding the store's own names without a run is left alone even then.
    stray = tmp_path / "stray"
    (stray / store.PARTS).mkdir(parents=True)
    (stray / store.RESULTS).write_bytes(b"someone else's table")
    capsys.readouterr()
    assert_refused(["run", str(suite_file), "--out", str(stray), "--overwrite"], "it is not a run", capsys, tmp_path)


def test_overwrite_of_a_run_clears_its_tables_and_artifacts_only(tmp_path, suite_file):
    out = tmp_path / "run"
    run_suite(str(suite_file), out=out)
    assert (out / store.ARTIFACTS).is_dir()
    (out / "notes.txt").write_text("keep me")
    result = run_suite(str(suite_file), out=out, overrides={"grid.audio_seconds": [3]}, overwrite=True)
    run = store.load_run(out)
    assert set(run.results["audio_seconds"]) == {3.0} and result.total == 1
    assert len(list((out / store.ARTIFACTS).iterdir())) == 1  # the old run's point folders went with it
    assert (out / "notes.txt").read_text() == "keep me"
