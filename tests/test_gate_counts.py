"""Count mode of `lalm-bench gate`: reading callgrind's dumps, thresholds, refusals, fallback.

Verdicts are checked on synthetic count records (`--current`); one test counts a kernel under
valgrind for real (skipped when valgrind cannot run) and checks what ran, never a figure.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.gate import callgrind, counting
from harness.gate.callgrind import parse_dump
from harness.gate.count_compare import CountThresholds, compare_counts
from harness.gate.count_record import CountRecord, Environment, KernelCounts, load, new_record, save
from harness.gate.counting import ISA_ENV, read_counts, worker_env
from harness.gate.injection import INJECT_ENV
from harness.gate.record import save as save_wall
from tests.test_gate_cli import record as wall_record

PATHS = {"torch": "DEFAULT", "mkl": "SSE4_2", "onednn": "SSE41", "numba": "generic", "cpu": "haswell"}
BASE_IR = {"conv1d": 1_361_236.0, "matmul": 55_452_440.0}


def counts(scale: dict[str, float] | None = None, paths=None, torch_version: str = "2.13.0+cpu") -> CountRecord:
    """A synthetic count record: per-call instructions of each kernel, times `scale`."""
    kernels = {
        name: KernelCounts(shape="test", calls=20, per_call={"Ir": ir * (scale or {}).get(name, 1.0)})
        for name, ir in BASE_IR.items()
    }
    environment = Environment(
        code_paths=paths or PATHS,
        valgrind="3.19.0",
        versions={"python": "3.11.7", "torch": torch_version},
    )
    return new_record(environment, kernels, 100.0)


def saved(tmp_path: Path, name: str, record: CountRecord) -> Path:
    path = tmp_path / name
    save(record, path)
    return path


def count_gate(tmp_path: Path, current: CountRecord, *extra: str) -> int:
    baseline = saved(tmp_path, "baseline.json", counts())
    return main(["gate", "--mode", "count", "--baseline", str(baseline),
                 "--current", str(saved(tmp_path, "now.json", current)), *extra])


@pytest.fixture(autouse=True)
def valgrind_here(monkeypatch):
    """Count mode's availability does not depend on this machine's tools unless a test says so."""
    monkeypatch.setattr(callgrind, "unavailable", lambda: None)


# --- callgrind's files -----------------------------------------------------------------------

DUMP_HEADER = """\
# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 4340
cmd:  python -m harness.gate.count_worker
part: {part}

desc: I1 cache: 32768 B, 64 B, 8-way associative
desc: Timerange: Basic block 0 - 3393788
{trigger}
positions: line
events: {events}
summary: {summary}


ob=(11) /usr/lib/libpython3.11.so.1.0
fl=(94) Objects/rangeobject.c
fn=(1512) range_dealloc
167 2
"""


def write_dump(path: Path, part: int, trigger: str, summary: str, events: str = "Ir") -> Path:
    path.write_text(DUMP_HEADER.format(part=part, trigger=trigger, summary=summary, events=events))
    return path


def test_a_dump_names_its_kernel_and_its_totals(tmp_path):
    path = write_dump(tmp_path / "callgrind.1.1", 1, "desc: Trigger: Client Request: kernel:decode_step[llama]",
                      "4000 1000 500 10 20 30 1 2", events="Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw")
    kernel, events = parse_dump(path)
    assert kernel == "decode_step[llama]"
    # Trailing zero events may be missing from the summary line.
    assert events == {"Ir": 4000, "Dr": 1000, "Dw": 500, "I1mr": 10, "D1mr": 20, "D1mw": 30,
                      "ILmr": 1, "DLmr": 2, "DLmw": 0}


def test_a_file_that_is_not_a_dump_is_an_error(tmp_path):
    path = tmp_path / "callgrind.1"
    path.write_text("hello\n")
    with pytest.raises(ValueError, match="not a callgrind output file"):
        parse_dump(path)


def test_counts_are_per_call_and_skip_the_dump_at_exit(tmp_path):
    write_dump(tmp_path / "callgrind.77.1", 1, "desc: Trigger: Client Request: kernel:conv1d", "400")
    write_dump(tmp_path / "callgrind.77.2", 2, "desc: Trigger: Client Request: kernel:matmul", "800")
    write_dump(tmp_path / "callgrind.77", 3, "desc: Trigger: Program termination", "999999")
    found = read_counts(tmp_path, calls=4)
    assert list(found) == ["conv1d", "matmul"]
    assert found["conv1d"].per_call == {"Ir": 100} and found["matmul"].per_call == {"Ir": 200}
    assert found["matmul"].calls == 4


# --- decisions -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "scale, status",
    [
        ({}, "ok"),
        ({"conv1d": 1.025}, "ok"),  # inside the threshold (3%), beyond the largest spread seen (1.2%)
        ({"conv1d": 1.05}, "regression"),  # the smallest regression the gate must catch
        ({"conv1d": 0.9}, "improvement"),
    ],
)
def test_thresholds(scale, status):
    verdicts = {v.name: v for v in compare_counts(counts(), counts(scale), CountThresholds())}
    assert verdicts["conv1d"].status == status
    assert verdicts["matmul"].status == "ok"


def test_new_and_missing_kernels_are_listed():
    current = counts()
    current.kernels["sdpa"] = current.kernels.pop("matmul")
    statuses = {v.name: v.status for v in compare_counts(counts(), current, CountThresholds())}
    assert statuses == {"conv1d": "ok", "sdpa": "new", "matmul": "missing"}


def test_unchanged_counts_pass(tmp_path, capsys):
    assert count_gate(tmp_path, counts()) == 0
    assert "kernel gate passed (counts" in capsys.readouterr().out


def test_five_percent_more_instructions_fail_with_exit_1(tmp_path, capsys):
    assert count_gate(tmp_path, counts({"conv1d": 1.05})) == 1
    assert "FAILED: conv1d regressed" in capsys.readouterr().out


def test_counts_of_other_code_paths_are_refused(tmp_path, capsys):
    assert count_gate(tmp_path, counts(paths={**PATHS, "torch": "AVX2"})) == 2
    err = capsys.readouterr().err
    assert "torch DEFAULT" in err and "torch AVX2" in err and "not comparable" in err


def test_other_library_versions_are_named(tmp_path, capsys):
    assert count_gate(tmp_path, counts(torch_version="2.14.0")) == 0
    assert "torch: 2.13.0+cpu -> 2.14.0" in capsys.readouterr().out


def test_a_wall_record_is_not_a_count_baseline(tmp_path, capsys):
    path = tmp_path / "wall.json"
    path.write_text('{"schema_version": 2, "fingerprint": {}}')
    assert main(["gate", "--mode", "count", "--baseline", str(path), "--current", str(path)]) == 2
    assert f"count record {path}" in capsys.readouterr().err


def test_update_baseline_writes_the_counted_record(tmp_path, monkeypatch):
    monkeypatch.setattr("harness.gate.command.measure_counts", lambda names, calls: counts())
    path = tmp_path / "b.json"
    assert main(["gate", "--mode", "count", "--update-baseline", "--baseline", str(path), "--kernels", "conv1d"]) == 0
    assert load(path).kernels["conv1d"].per_call["Ir"] == BASE_IR["conv1d"]


def test_count_mode_is_the_default_on_cpu_when_valgrind_runs(tmp_path, monkeypatch, capsys):
    asked = []
    monkeypatch.setattr("harness.gate.command.measure_counts", lambda names, calls: asked.append(calls) or counts())
    baseline = saved(tmp_path, "baseline.json", counts())
    assert main(["gate", "--baseline", str(baseline), "--kernels", "conv1d,matmul"]) == 0
    assert asked == [20] and "counting instructions of 2 kernels" in capsys.readouterr().out


@pytest.mark.parametrize("calls, spec", [("10", "conv1d:1.05"), ("0", "")])
def test_calls_must_hold_whole_periods_of_injected_work(tmp_path, monkeypatch, capsys, calls, spec):
    monkeypatch.setenv(INJECT_ENV, spec)
    baseline = saved(tmp_path, "baseline.json", counts())
    assert main(["gate", "--mode", "count", "--baseline", str(baseline), "--calls", calls]) == 2
    assert "--calls" in capsys.readouterr().err


# --- when valgrind is missing ----------------------------------------------------------------

def test_without_valgrind_auto_mode_says_so_in_one_line_and_times_advisorily(tmp_path, monkeypatch, capsys):
    """The fallback is wall mode, and a slowdown it sees does not fail the gate."""
    monkeypatch.setattr(callgrind, "unavailable", lambda: "valgrind is not installed")
    baseline, current = tmp_path / "b.json", tmp_path / "c.json"
    save_wall(wall_record(seed=1, samples=90), baseline)  # the same host as the current record
    save_wall(wall_record({"conv1d": 1.3}, seed=2), current)
    assert main(["gate", "--baseline", str(baseline), "--current", str(current)]) == 0
    out = capsys.readouterr().out
    notes = [line for line in out.splitlines() if "valgrind is not installed" in line]
    assert len(notes) == 2  # the fallback line, and the advisory verdict naming why
    assert "timing the kernels instead (advisory)" in notes[0]
    assert "advisory, not failing: conv1d" in out


def test_count_mode_asked_for_without_valgrind_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(callgrind, "unavailable", lambda: "valgrind is not installed")
    assert main(["gate", "--mode", "count", "--baseline", str(tmp_path / "b.json")]) == 2
    assert "--mode count: valgrind is not installed" in capsys.readouterr().err


# --- the child's setup -----------------------------------------------------------------------

def test_the_worker_runs_pinned_code_paths_and_its_own_numba_cache():
    env = worker_env({"PATH": "/bin", INJECT_ENV: "conv1d:1.25"})
    assert {k: env[k] for k in ISA_ENV} == ISA_ENV
    assert env["NUMBA_CACHE_DIR"].endswith(".cache/gate/numba") and env["PYTHONHASHSEED"] == "0"
    assert env[INJECT_ENV] == "conv1d:1.25"  # an injected regression reaches the counted process
    cmd = counting.command(Path("/tmp/out"), Path("/tmp/client.so"), ["conv1d", "matmul"], 20)
    assert cmd[:4] == ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--cache-sim=no"]
    assert cmd[-4:] == ["--kernels", "conv1d,matmul", "--calls", "20"]


def test_a_missing_compiler_makes_count_mode_unavailable(tmp_path, monkeypatch):
    monkeypatch.undo()  # the real availability check, with this machine's tools faked below
    monkeypatch.setattr(callgrind.shutil, "which", lambda name: "/usr/bin/valgrind" if name == "valgrind" else None)
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setattr(callgrind, "CACHE_DIR", tmp_path)  # nothing built yet
    assert "C compiler" in callgrind.unavailable()


def test_the_client_library_is_built_once(tmp_path, monkeypatch):
    if callgrind.compiler() is None or not Path("/usr/include", callgrind.HEADER).is_file():
        pytest.skip("no C compiler or valgrind headers")
    first = callgrind.client_library(tmp_path)
    assert first.is_file() and callgrind.client_library(tmp_path) == first
    assert not callgrind.Callgrind(first).running_on_valgrind  # the requests are no-ops outside valgrind


def test_a_kernel_counted_under_valgrind(monkeypatch):
    """One kernel through the whole path: valgrind child, client requests, dump, record."""
    monkeypatch.undo()  # the real availability
    if callgrind.unavailable() is not None:
        pytest.skip(callgrind.unavailable())
    record = counting.measure_counts(["conv1d"], calls=2)
    assert record.environment.code_paths["torch"] == "DEFAULT"
    assert record.environment.code_paths["numba"] == "generic"
    conv = record.kernels["conv1d"]
    assert conv.calls == 2 and conv.per_call["Ir"] > 0
