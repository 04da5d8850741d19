"""The committed lock, `lalm-bench env --check`, and the provenance warnings of compare/report."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness import lock, provenance
from harness.cli import main
from harness.errors import UserError
from harness.report import build_report
from harness.report.synthetic import SyntheticSuite, write_run
from harness import store


def test_the_committed_lock_pins_every_dependency_exactly_and_leaves_torch_out():
    pins = lock.read_pins(lock.LOCK)
    assert {"transformers", "numba", "numpy", "pytest", "packaging"} <= set(pins)
    assert "torch" not in pins  # a GPU interpreter keeps its own build
    assert set(lock.read_pins(lock.TORCH_PIN)) == {"torch"}


def test_read_pins_takes_exact_pins_and_skips_comments_and_options(tmp_path):
    path = tmp_path / "lock.txt"
    path.write_text("# header\n-c other.txt\n\nNumPy==2.4.6   # via x\nfoo_bar==1.0\n")
    assert lock.read_pins(path) == {"numpy": "2.4.6", "foo-bar": "1.0"}


@pytest.mark.parametrize("text, message", [
    ("numpy>=2\n", "line 1: 'numpy>=2' is not an exact pin"),
    ("ok==1\nnot a requirement ===\n", "line 2"),
    ("# nothing\n", "no pinned package"),
])
def test_a_malformed_lock_is_one_line_naming_it(tmp_path, text, message):
    path = tmp_path / "lock.txt"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        lock.read_pins(path)


def test_check_lists_other_versions_missing_and_unlocked_packages(tmp_path, monkeypatch):
    path = tmp_path / "lock.txt"
    path.write_text("numpy==2.4.6\nscipy==1.17.1\npandas==3.1.1\n")
    torch_pin = tmp_path / "torch.txt"
    torch_pin.write_text("torch==2.13.0\n")
    monkeypatch.setattr(lock, "installed", lambda: {"numpy": "2.4.6", "scipy": "1.16.0", "torch": "2.13.0+cu128",
                                                    "extra-pkg": "1.0", "pip": "26.3", "lalm-bench": "0.1.0"})
    found = {d.package: d.kind for d in lock.check(path, torch_pin)}
    assert found == {"scipy": "other version", "pandas": "missing", "extra-pkg": "not in the lock"}


def test_env_check_reports_and_strict_fails(tmp_path, capsys, monkeypatch):
    path = tmp_path / "lock.txt"
    path.write_text("numpy==0.0.1\n")
    assert main(["env", "--check", "--lock", str(path)]) == 0
    out = capsys.readouterr().out
    assert "numpy" in out and "0.0.1" in out and "warning:" in out
    assert main(["env", "--check", "--strict", "--lock", str(path)]) == 1


@pytest.mark.parametrize("make", [lambda p: p / "missing.txt", lambda p: (p / "bad.txt").write_text("x>1\n") and p / "bad.txt"])
def test_env_check_with_a_missing_or_malformed_lock_is_one_line_exit_2(tmp_path, capsys, make):
    assert main(["env", "--check", "--lock", str(make(tmp_path))]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "lock file" in err


def test_strict_without_check_is_bad_input(capsys):
    assert main(["env", "--strict"]) == 2


# --- provenance -------------------------------------------------------------------------------

SUITE = dict(variants=("ast+llama", "dass+mamba"), lengths=(5, 30), batches=(1,), batch_seconds=30,
             tasks=False, train=False, oom_from={})


def with_env(run: Path, **packages: str) -> Path:
    meta = store.read_meta(run)
    meta["sessions"][0]["env"]["packages"].update(packages)
    store.write_meta(run, meta)
    return run


@pytest.fixture
def two_runs(tmp_path) -> tuple[Path, Path]:
    a = write_run(tmp_path / "a", SyntheticSuite(seed=1, **SUITE), run_id="a")
    b = with_env(write_run(tmp_path / "b", SyntheticSuite(seed=2, **SUITE), run_id="b"), transformers="5.25.0")
    return a, b


def test_differences_name_each_field_and_the_runs_on_each_side():
    same = {"torch": "2.13.0", "machine": "h1"}
    lines = provenance.differences({"A": [same], "B": [{**same, "machine": "h2"}, same]})
    assert lines == ["machine: h1 (A, B) vs h2 (B)"]
    assert provenance.warning({"A": [same], "B": [same]}) is None


def test_compare_warns_when_the_runs_differ_in_transformers(two_runs, capsys):
    assert main(["compare", str(two_runs[0]), str(two_runs[1])]) == 0
    err = capsys.readouterr().err
    assert "warning: runs made in different environments" in err and "transformers: 5.24.0 (A) vs 5.25.0 (B)" in err


def test_compare_of_runs_from_one_environment_says_nothing(tmp_path, capsys):
    a = write_run(tmp_path / "a", SyntheticSuite(seed=1, **SUITE), run_id="a")
    b = write_run(tmp_path / "b", SyntheticSuite(seed=2, **SUITE), run_id="b")
    assert main(["compare", str(a), str(b)]) == 0
    assert "different environments" not in capsys.readouterr().err


def test_report_over_same_named_runs_from_two_places_still_warns(tmp_path):
    a = write_run(tmp_path / "x" / "quick", SyntheticSuite(seed=1, **SUITE), run_id="a")
    b = with_env(write_run(tmp_path / "y" / "quick", SyntheticSuite(seed=2, **SUITE), run_id="b"),
                 transformers="5.25.0")
    told = []
    build_report([a, b], tmp_path / "report", warn=told.append)
    assert told and f"5.25.0 ({b})" in told[0]


def test_report_over_mixed_runs_leads_with_the_warning(two_runs, tmp_path):
    told = []
    out = build_report(list(two_runs), tmp_path / "report", warn=told.append)
    assert told and "transformers" in told[0]
    text = (out / "report.md").read_text()
    assert text.index("Warning: mixed environments") < text.index("## Runs")
