"""Profiling the tiny LALMs: the module plan, FLOPs per module, profile_point's files and rows, the CLI."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch
from torch import nn

from harness import schema
from harness.cli import main
from harness.measure.flops import count_flops
from harness.measure.chain import PhaseInputs
from harness.profile import SUMMARY, ProfileSettings, profile_files, profile_point
from harness.profile.module_flops import module_flops
from harness.profile.structure import ROLES, UNATTRIBUTED, Part, component_of, kernel_of, plan
from harness.profile.tables import GROUP_PREFIX
from models import build
from tests.conftest import make_wave

FAST = ProfileSettings(repeats=2, warmup=1, reference_runs=2)
SECONDS = 0.64  # 64 fbank frames: the shortest clip the encoders take without padding


@pytest.fixture(scope="module")
def models():
    return {variant: build(variant, "tiny") for variant in ("ast+llama", "dass+mamba")}


def _inputs(batch: int = 1) -> PhaseInputs:
    return PhaseInputs(make_wave(SECONDS, batch), torch.randint(0, 100, (batch, 4)), new_tokens=2)


def _roles(lalm) -> dict[str, str]:
    return {part.path: part.role for _, part in plan(lalm)}


def test_plan_follows_the_transformer_structure(models):
    roles = _roles(models["ast+llama"])
    assert roles["frontend"] == "frontend" and roles["projector"] == "projector"
    assert roles["encoder.ast.embeddings.patch_embeddings"] == "embed"  # AST calls it directly
    assert roles["encoder.ast.layers.0.attention"] == "attention"
    assert roles["encoder.ast.layers.0.attention.q_proj"] == "projection"
    assert roles["lm.model.model.layers.1.self_attn"] == "attention"
    assert roles["lm.model.model.layers.1.mlp"] == "mlp"
    assert roles["lm.model.model.layers.1.input_layernorm"] == "norm"
    assert roles["lm.model.lm_head"] == "head"
    assert not any(".mlp." in path or path.startswith("frontend.") for path in roles)  # leaves hold no ranges


def test_plan_follows_the_state_space_structure(models):
    roles = _roles(models["dass+mamba"])
    assert roles["encoder.stem"] == "embed"
    assert roles["encoder.stages.1.0"] == "downsample"
    assert roles["encoder.stages.1.1.op"] == "mixer"
    assert roles["encoder.stages.1.1.op.conv2d"] == "conv"
    assert roles["lm.model.backbone.layers.0.mixer"] == "mixer"
    assert roles["lm.model.backbone.layers.0.mixer.in_proj"] == "projection"
    assert not any(path.startswith("encoder.stem.") for path in roles)


@pytest.mark.parametrize("variant", ["ast+llama", "dass+mamba"])
def test_every_planned_role_is_a_known_role(models, variant):
    assert set(_roles(models[variant]).values()) <= set(ROLES)


def test_split_operators_and_components():
    assert kernel_of("lalm::selective_scan") == ("scan", "scan")
    assert kernel_of("lalm.selective_state_update") == ("scan", "scan")
    assert kernel_of("aten._scaled_dot_product_flash_attention_for_cpu") == ("sdpa", "attention")
    assert kernel_of("aten::mm") is None
    assert component_of("lm.model.lm_head") == "lm" and component_of("encoder.stages.0/scan") == "encoder"
    assert component_of(UNATTRIBUTED) == "other"


def test_module_flops_are_exclusive_and_sum_to_the_counter_total():
    model = nn.Sequential(nn.Linear(8, 16), nn.Sequential(nn.Linear(16, 4)))
    x = torch.randn(3, 8)
    parts = [(model, Part("m", "block")), (model[1], Part("m.1", "block"))]
    flops = module_flops(lambda: model(x), parts)
    assert flops == {"m": 2 * 3 * 8 * 16, "m.1": 2 * 3 * 16 * 4}  # model[0] has no range: its FLOPs are m's


@pytest.mark.parametrize("variant", ["ast+llama", "dass+mamba"])
def test_module_flops_of_a_phase_match_the_flop_counter(models, variant):
    lalm = models[variant]
    feats = lalm.features(make_wave(SECONDS))
    flops = module_flops(lambda: lalm.encode(feats), plan(lalm))
    assert sum(flops.values()) == count_flops(lambda: lalm.encode(feats)).total
    split = "/scan" if variant == "dass+mamba" else "/sdpa"
    assert any(path.endswith(split) for path in flops)


@pytest.fixture(scope="module")
def ssm_profile(models, tmp_path_factory):
    out = tmp_path_factory.mktemp("profile")
    rows = profile_point(models["dass+mamba"], _inputs(), ["encoder", "decode"], out, FAST)
    return out, pd.DataFrame(rows)


def test_profile_point_writes_a_trace_tables_and_a_summary(ssm_profile):
    out, _ = ssm_profile
    for phase in ("encoder", "decode"):
        trace = json.loads((out / phase / "trace.json").read_text())
        names = {event.get("name", "") for event in trace["traceEvents"]}
        assert f"phase:{phase}" in names and any(n.startswith("module:") for n in names)
        modules = pd.read_csv(out / phase / "modules.csv")
        assert modules["share"].sum() == pytest.approx(1.0)
        operators = pd.read_csv(out / phase / "operators.csv")
        assert len(operators) and not operators["operator"].str.startswith("module:").any()
    summary = (out / SUMMARY).read_text()
    assert "## encoder" in summary and "## decode" in summary and "overhead" in summary
    assert not (out / "prefill").exists()


def test_profile_files_carry_every_written_file_under_a_prefix(ssm_profile):
    out, _ = ssm_profile
    files = profile_files(out)
    assert files["profile/" + SUMMARY] == (out / SUMMARY).read_bytes()
    assert {"profile/encoder/trace.json", "profile/decode/modules.csv"} <= set(files)
    assert len(files) == sum(1 for path in out.rglob("*") if path.is_file())


def test_profile_rows_fit_the_results_table(ssm_profile):
    _, rows = ssm_profile
    identity = {"run_id": "r", "point_id": "p", "suite": "s", "variant": "dass+mamba", "encoder": "dass",
                "lm": "mamba", "size": "tiny", "device": "cpu", "dtype": "float32", "batch_size": 1,
                "audio_seconds": SECONDS, "prompt_tokens": 4, "new_tokens": 2}
    table = schema.conform(rows.assign(**identity))
    schema.validate(table)
    assert set(table["status"]) == {"ok"}
    assert set(table["metric"]) == {"latency_ms", "share", "flops", "flop_rate", "profile_overhead",
                                    "instrumentation_ms", "profiler_overhead"}


@pytest.mark.parametrize("phase", ["encoder", "decode"])
def test_module_and_group_shares_each_sum_to_the_phase(ssm_profile, phase):
    _, rows = ssm_profile
    share = rows[(rows["phase"] == phase) & (rows["metric"] == "share")]
    groups = share["module"].str.startswith(GROUP_PREFIX)
    assert share.loc[~groups, "value"].sum() == pytest.approx(1.0)
    assert share.loc[groups, "value"].sum() == pytest.approx(1.0)
    latency = rows[(rows["phase"] == phase) & (rows["metric"] == "latency_ms") & ~rows["module"].str.startswith(
        GROUP_PREFIX)]
    assert (latency["value"] >= 0).all() or latency.loc[latency["value"] < 0, "module"].eq(UNATTRIBUTED).all()
    assert f"{GROUP_PREFIX}{'encoder' if phase == 'encoder' else 'lm'}/scan" in set(share["module"])


def test_the_overhead_row_states_the_sum_to_phase_check(ssm_profile):
    _, rows = ssm_profile
    overhead = rows[rows["metric"] == "profile_overhead"]
    assert list(overhead["phase"]) == ["encoder", "decode"] and set(overhead["module"]) == {""}
    assert overhead["value"].map(math.isfinite).all()
    assert overhead["note"].str.contains("unprofiled").all()
    assert overhead["note"].str.match(r"^(faithful|distorted)").all()


def test_module_flops_in_rows_sum_to_the_counted_phase(ssm_profile, models):
    _, rows = ssm_profile
    lalm = models["dass+mamba"]
    feats = lalm.features(make_wave(SECONDS))
    flops = rows[(rows["phase"] == "encoder") & (rows["metric"] == "flops")]
    modules = flops[~flops["module"].str.startswith(GROUP_PREFIX)]
    assert modules["value"].sum() == count_flops(lambda: lalm.encode(feats)).total


def test_a_failing_phase_is_a_row_and_the_others_still_run(tmp_path, models, monkeypatch):
    lalm = models["ast+llama"]
    monkeypatch.setattr(lalm, "encode", lambda feats: (_ for _ in ()).throw(RuntimeError("out of memory: test")))
    rows = pd.DataFrame(profile_point(lalm, _inputs(), ["fbank", "encoder", "prefill"], tmp_path, FAST))
    status = rows.groupby("phase")["status"].agg(set)
    assert status["fbank"] == {"ok"} and status["encoder"] == {"oom"} and status["prefill"] == {"error"}
    assert "encoder" in rows.loc[rows["phase"] == "prefill", "error"].iloc[0]
    assert "oom" in (tmp_path / SUMMARY).read_text()


def test_cli_profile_writes_parquet_and_the_breakdown_and_prints_a_short_summary(tmp_path, capsys):
    out = tmp_path / "p"
    argv = ["profile", "transformer", "--audio-seconds", str(SECONDS), "--phase", "prefill", "--phase", "encoder",
            "--repeats", "2", "--prompt-tokens", "3", "-o", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    # A line per phase on the terminal, naming where most time went; the module tree is in the file.
    phase_lines = [line.split()[0] for line in printed.splitlines() if line.startswith("  ")]
    assert phase_lines == ["encoder", "prefill"] and "most time: lm/" in printed and str(out / SUMMARY) in printed
    assert "lm.model.lm_head" not in printed and "lm.model.lm_head" in (out / SUMMARY).read_text()
    table = pd.read_parquet(out / "profile.parquet")
    schema.validate(table)
    assert set(table["variant"]) == {"ast+llama"} and set(table["phase"]) == {"encoder", "prefill"}
    assert (table["prompt_tokens"] == 3).all() and table["point_id"].str.len().eq(16).all()


@pytest.mark.parametrize("argv, message", [
    (["profile", "nope"], "unknown variant"),
    (["profile", "ssm", "--audio-seconds", "0"], "--audio-seconds must be positive"),
    (["profile", "ssm", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["profile", "ssm", "--size", "huge"], "unknown size"),
    (["profile", "ssm", "--dtype", "float8"], "--dtype 'float8'"),
    (["profile", "ssm", "--threads", "-2"], "--threads must be >= 0"),
])
def test_cli_profile_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    out = tmp_path / "never"
    assert main(argv + ["-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_study_summary_counts_the_phases_whose_breakdown_sums_within_the_limit():
    from harness.profile.study import check_summary

    table = pd.DataFrame({
        "phase": ["decode"] * 3 + ["encoder"], "status": ["ok", "ok", "ok", "oom"],
        "unprofiled_ms": [0.5, 0.6, 0.7, math.nan], "profiler_overhead": [0.4, 0.5, 0.6, math.nan],
        "raw_overhead": [0.1, 0.2, 0.3, math.nan], "overhead": [0.02, -0.09, 0.12, math.nan],
    })
    summary = check_summary(table, limit=0.10)
    assert list(summary["phase"]) == ["decode"]  # a failed phase is no evidence either way
    assert summary.loc[0, "within"] == "2 of 3" and summary.loc[0, "|overhead|"] == "9.0% (max 12.0%)"
