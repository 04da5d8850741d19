"""`lalm-bench run / show / list / env`: bad input is one line and exit 2 with nothing written;
the real workload fills the tidy table; the quick suite measures what it should."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness import store
from harness.cli import main
from harness.schema import REQUIRED, validate

ROOT = Path(__file__).resolve().parent.parent

GOOD = """
name = "tiny-real"
description = "two tiny points through the real workload"
[grid]
variant = ["transformer", "ssm"]
audio_seconds = [1]
[measure]
phases = ["prefill", "e2e"]
warmup = 0
repeats = 1
max_repeats = 1
new_tokens = 2
prompt_tokens = 4
[run]
device = "cpu"
timeout_s = 300
"""


def bad_inputs(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    def suite(name: str, text: str) -> str:
        path = tmp_path / f"{name}.toml"
        path.write_text(text)
        return str(path)

    return {
        "malformed TOML": (["run", suite("broken", GOOD + "[run\n")], "invalid TOML"),
        "unknown key": (["run", suite("typo", GOOD.replace("repeats = 1", "repeets = 1"))],
                        "unknown key 'repeets' (did you mean 'repeats'?)"),
        "wrong type": (["run", suite("type", GOOD.replace("timeout_s = 300", 'timeout_s = "300"'))], "run.timeout_s"),
        "zero length": (["run", suite("zero", GOOD.replace("audio_seconds = [1]", "audio_seconds = [0]"))],
                        "grid.audio_seconds[0]"),
        "negative batch": (["run", suite("neg", GOOD), "--set", "grid.batch_size=[-2]"], "--set grid.batch_size[0]"),
        "unknown variant": (["run", suite("var", GOOD), "--set", "grid.variant=rnn+gpt"], "unknown variant 'rnn+gpt'"),
        "unknown suite": (["run", "quik"], "did you mean 'quick'?"),
        "cuda without CUDA": (["run", suite("cuda", GOOD), "--device", "cuda"], "no CUDA device"),
        "no suite": (["run"], "give a SUITE"),
        "resume of a non-run": (["run", "--resume", str(tmp_path)], "not a run folder"),
        "show of a non-run": (["show", str(tmp_path / "nothing")], "does not exist"),
    }


CASES = ["malformed TOML", "unknown key", "wrong type", "zero length", "negative batch", "unknown variant",
         "unknown suite", "cuda without CUDA", "no suite", "resume of a non-run", "show of a non-run"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, monkeypatch, case):
    if case == "cuda without CUDA" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    monkeypatch.chdir(tmp_path)  # a run would land in ./results
    argv, expected = bad_inputs(tmp_path)[case]
    before = sorted(tmp_path.rglob("*"))
    assert main([*argv, "--out", str(tmp_path / "out")] if argv[0] == "run" and "--resume" not in argv else argv) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert sorted(tmp_path.rglob("*")) == before


def test_bad_input_from_the_shell_has_no_traceback(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(GOOD.replace("variant =", "varient ="))
    proc = subprocess.run([sys.executable, "-m", "harness", "run", str(path)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"lalm-bench run: error: {path}: 2 problems: grid.varient: unknown key 'varient' (did you mean 'variant'?); "
        "grid.variant: required key is missing"]


def test_out_folder_holding_a_run_is_refused_unless_resumed_or_overwritten(tmp_path, capsys):
    suite = tmp_path / "s.toml"
    suite.write_text(GOOD)
    out = tmp_path / "run"
    out.mkdir()
    store.write_meta(out, {"run_id": "old", "suite_name": "tiny-real", "sessions": []})
    assert main(["run", str(suite), "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["run", "--resume", str(out), "--set", "measure.repeats=3"]) == 2
    assert "cannot change on --resume" in capsys.readouterr().err


def test_the_real_workload_fills_the_tidy_table(tmp_path, capsys):
    suite = tmp_path / "s.toml"
    suite.write_text(GOOD)
    out = tmp_path / "run"
    assert main(["run", str(suite), "--out", str(out), "--quiet"]) == 0
    run = store.load_run(out)
    results = run.results
    validate(results)
    assert set(REQUIRED) <= set(results.columns)
    assert set(results["variant"]) == {"ast+llama", "dass+mamba"} and set(results["status"]) == {"ok"}
    latency = results[results["metric"] == "latency_ms"]
    assert set(latency["phase"]) == {"prefill", "e2e"} and (latency["value"] > 0).all()
    assert (results["git_sha"] != "").all() and (results["torch_version"] == torch.__version__).all()
    assert set(results.loc[results["lm"] == "mamba", "scan_backend"]) - {""}
    assert len(run.samples) and set(run.samples["point_id"]) <= set(results["point_id"])
    assert run.meta["suite"]["run"]["device"] == "cpu" and run.meta["sessions"][0]["env"]["packages"]["torch"]
    capsys.readouterr()
    assert main(["show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "ast+llama" in shown and "dass+mamba" in shown and "latency_ms" in shown


def test_list_and_env_describe_what_there_is(capsys):
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    for word in ("quick", "scaling-length", "kernels", "dass+mamba", "tiny", "latency_ms", "oom"):
        assert word in listed
    assert main(["env", "--json"]) == 0
    env = capsys.readouterr().out
    assert '"git_sha"' in env and '"torch"' in env and '"cpu"' in env


@pytest.mark.slow
def test_quick_suite_runs_every_point_ok_with_sane_values(tmp_path, capsys):
    out = tmp_path / "quick"
    assert main(["run", "quick", "--out", str(out), "--quiet"]) == 0
    results = store.load_run(out).results
    assert set(results["status"]) == {"ok"} and results["point_id"].nunique() == 24
    e2e = results[(results["phase"] == "e2e") & (results["metric"] == "latency_ms")]
    by_length = e2e.groupby(["variant", "audio_seconds"])["value"].median().unstack()
    assert (by_length[by_length.columns.max()] > by_length[by_length.columns.min()]).all()
    state = results[(results["metric"] == "state_bytes") & (results["batch_size"] == 1)]
    per_length = state.groupby(["lm", "audio_seconds"])["value"].first().unstack()
    assert per_length.loc["llama"].is_monotonic_increasing and per_length.loc["llama"].nunique() > 1
    assert per_length.loc["mamba"].nunique() == 1
