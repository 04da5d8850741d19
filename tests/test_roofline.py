"""The roofline: bytes moved per family and phase, and the derived metrics on a run's rows."""
from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from harness.measure.ceilings import Ceilings
from harness.roofline import bound, floor_seconds, with_roofline
from harness.schema import conform
from models import build
from models.bytes_moved import phase_bytes
from models.names import LM_FAMILIES, VARIANTS
from models.registry import spec_for

CEILINGS = Ceilings("cpu", "test", {"float32": 1e11, "bfloat16": 2e11, "float16": 1e9}, 2e10, 1e10)


@pytest.mark.parametrize("lm", LM_FAMILIES)
def test_a_decode_step_reads_every_lm_weight_the_model_holds(lm):
    variant = next(v for v in VARIANTS if spec_for(v, "tiny").lm == lm)
    lalm = build(variant, "tiny", device="meta", dtype=torch.bfloat16)
    held = sum(p.numel() * p.element_size() for p in lalm.lm.parameters())  # a tied table once
    model = lalm.lm.model
    if model.get_input_embeddings().weight is not model.get_output_embeddings().weight:
        held -= model.get_input_embeddings().weight.numel() * 2  # read only at the token's row
    moved = phase_bytes(lalm.spec, "decode", 1, 1.0, torch.bfloat16, prompt_tokens=8)
    assert moved["weights"] == held


def test_the_kv_cache_read_grows_with_the_context_and_the_ssm_state_does_not():
    llama, mamba = spec_for("ast+llama", "paper"), spec_for("dass+mamba", "paper")
    short, long = (phase_bytes(llama, "decode", 1, 10.0, torch.bfloat16, context=c) for c in (100, 1000))
    assert long["state_read"] == pytest.approx(short["state_read"] * 1001 / 101)
    assert long["state_written"] == short["state_written"] > 0
    short, long = (phase_bytes(mamba, "decode", 1, 10.0, torch.bfloat16, context=c) for c in (100, 1000))
    assert short == long and short["state_read"] == short["state_written"] > 0


def test_e2e_moves_its_phases_bytes():
    spec = spec_for("dass+mamba", "tiny")
    parts = [phase_bytes(spec, p, 1, 2.0, torch.float32, 8) for p in ("fbank", "encoder", "prefill")]
    steps = [phase_bytes(spec, "decode", 1, 2.0, torch.float32, 8, context=8 + 8 + i) for i in range(3)]
    e2e = phase_bytes(spec, "e2e", 1, 2.0, torch.float32, 8, new_tokens=4)
    assert sum(e2e.values()) == sum(sum(p.values()) for p in parts + steps)


def rows(latency_ms: float, flops: float, nbytes: float, dtype: str = "float32") -> pd.DataFrame:
    base = {"run_id": "r", "point_id": "p", "suite": "s", "variant": "ast+llama", "encoder": "ast", "lm": "llama",
            "size": "tiny", "device": "cpu", "dtype": dtype, "batch_size": 1, "audio_seconds": 1.0,
            "prompt_tokens": 8, "new_tokens": 4, "phase": "decode", "status": "ok", "error": "", "n": 1,
            "lo": float("nan"), "hi": float("nan")}
    return conform([{**base, "metric": "latency_ms", "value": latency_ms, "unit": "ms"},
                    {**base, "metric": "flops_analytic", "value": flops, "unit": "FLOP"},
                    {**base, "metric": "bytes_moved", "value": nbytes, "unit": "B"}])


def test_derived_rows_are_achieved_rates_and_the_fraction_of_the_floor():
    out = with_roofline(rows(10.0, 1e8, 1e8), CEILINGS)
    values = out.set_index("metric")["value"]
    assert values["achieved_flops_per_s"] == pytest.approx(1e10)
    assert values["achieved_bytes_per_s"] == pytest.approx(1e10)
    # floor: max(1e8 / 1e11, 1e8 / 2e10) = 5 ms of the 10 ms measured
    assert values["roofline_fraction"] == pytest.approx(0.5)
    again = with_roofline(out, CEILINGS)
    assert again.equals(out)  # kept as derived, not appended twice
    assert with_roofline(rows(10.0, 1e8, 1e8), None).equals(rows(10.0, 1e8, 1e8))


def test_the_floor_uses_the_peak_of_the_rows_dtype():
    fp32 = with_roofline(rows(10.0, 1e9, 1.0), CEILINGS).set_index("metric")["value"]["roofline_fraction"]
    bf16 = with_roofline(rows(10.0, 1e9, 1.0, "bfloat16"), CEILINGS).set_index("metric")["value"]["roofline_fraction"]
    assert fp32 == pytest.approx(1.0) and bf16 == pytest.approx(0.5)


def test_the_fbank_is_measured_against_the_float32_peak_whatever_the_models_dtype():
    from models.compute_dtype import compute_dtype

    assert compute_dtype("fbank", "bfloat16") == "float32" and compute_dtype("decode", "bfloat16") == "bfloat16"
    fbank = with_roofline(rows(10.0, 1e9, 1.0, "bfloat16").assign(phase="fbank"), CEILINGS)
    assert fbank.set_index("metric")["value"]["roofline_fraction"] == pytest.approx(1.0)  # 1e9 / 1e11 in 10 ms


def test_which_ceiling_bounds_a_phase():
    assert floor_seconds(1e9, 1e6, 1e11, 2e10) == pytest.approx(1e-2)
    assert bound(1e9, 1e6, 1e11, 2e10, 0.5) == "compute"
    assert bound(1e6, 1e9, 1e11, 2e10, 0.5) == "bandwidth"
    assert bound(1e6, 1e9, 1e11, 2e10, 0.01) == "overhead"
    assert bound(1e6, 1e9, 1e11, 2e10) == "bandwidth"  # no fraction measured: the roofline's own answer


def test_a_missing_term_leaves_no_floor_in_either_order():
    nan = float("nan")
    assert math.isnan(floor_seconds(1e9, 1e6, nan, 2e10))  # the FLOP term missing: max(nan, x)
    assert math.isnan(floor_seconds(1e9, 1e6, 1e11, nan))  # the bandwidth term missing: max(x, nan)
    assert math.isnan(floor_seconds(nan, 1e6, 1e11, 2e10)) and math.isnan(floor_seconds(1e9, nan, 1e11, 2e10))
    assert bound(1e9, 1e6, nan, 2e10, 0.5) == bound(1e9, 1e6, 1e11, nan, 0.5) == "unknown"
    no_peak = Ceilings("cpu", "test", {"float32": 1e11}, 2e10, 1e10)  # no bfloat16 peak measured
    fraction = with_roofline(rows(10.0, 1e6, 1e9, "bfloat16"), no_peak).set_index("metric")["value"]
    assert math.isnan(fraction["roofline_fraction"]) and fraction["achieved_bytes_per_s"] == pytest.approx(1e11)


def test_a_point_that_timed_out_keeps_its_flops_and_bytes_and_its_status():
    from harness import runner, store
    from harness.executors.base import Outcome
    from harness.points import Point
    from harness.suite import validate_suite

    suite = validate_suite({"name": "t", "description": "d", "grid": {"variant": "dass+mamba", "audio_seconds": 1},
                            "measure": {"phases": ["encoder", "decode"], "meters": ["latency", "roofline"]},
                            "run": {"device": "cpu"}}, "test")
    point = Point("dass+mamba", "tiny", "cpu", "float32", 1, 1.0, 8, 8)
    results, _ = runner.tables(Outcome(point, "timeout", error="no result"), suite, "r", "sha")
    assert store.point_statuses(results) == {point.id: "timeout"}
    found = results[results["status"] == "ok"].groupby("phase")["metric"].apply(set)
    assert found["encoder"] >= {"flops", "flops_analytic", "bytes_moved"}
    assert found["decode"] >= {"flops", "flops_analytic", "bytes_moved"}


def test_the_report_section_says_what_binds_each_phase_and_needs_recorded_ceilings(tmp_path):
    from harness.report.roofline_figure import findings, phases, section
    from harness.report.runs import Runs

    results = pd.concat([rows(10.0, 1e8, 1e8), rows(10.0, 1e3, 1e3).assign(point_id="q")], ignore_index=True)
    runs = Runs(results, pd.DataFrame(), {"r": {"sessions": [{"ceilings": CEILINGS.as_dict()}]}}, ["r"])
    table, _ = phases(runs)
    assert sorted(table["bound"]) == ["bandwidth", "overhead"]
    assert any("50 %" in line and "bandwidth-bound" in line for line in findings(table[table["point_id"] == "p"]))
    assert section(runs, tmp_path) is not None and (tmp_path / "roofline.png").exists()
    assert section(Runs(results, pd.DataFrame(), {"r": {"sessions": [{}]}}, ["r"]), tmp_path) is None


def test_the_report_keeps_each_points_rows_derived_with_its_own_sessions_ceilings():
    from harness.report.roofline_figure import phases
    from harness.report.runs import Runs

    # p was measured (and its rows derived) in a first session; q, written before the runner
    # derived rows, has none; a resumed session then measured a machine ten times faster.
    faster = Ceilings("cpu", "test", {k: v * 10 for k, v in CEILINGS.flops_per_s.items()}, 2e11, 1e11)
    first = with_roofline(rows(10.0, 1e8, 1e8), CEILINGS)
    results = pd.concat([first, rows(10.0, 1e8, 1e8).assign(point_id="q")], ignore_index=True)
    sessions = [{"ceilings": CEILINGS.as_dict()}, {"ceilings": faster.as_dict()}]
    table, _ = phases(Runs(results, pd.DataFrame(), {"r": {"sessions": sessions}}, ["r"]))
    fraction = table.set_index("point_id")["fraction"]
    assert fraction["p"] == pytest.approx(0.5) and fraction["q"] == pytest.approx(0.05)
    assert table.set_index("point_id")["bound"].to_dict() == {"p": "bandwidth", "q": "overhead"}
    stored = first.set_index("metric")["note"]["roofline_fraction"]
    assert stored == "bandwidth-bound"


def test_a_point_records_its_build_time_and_the_bytes_each_phase_moves():
    from harness.points import Point
    from harness.suite import Measure
    from harness.workload import measure_point

    settings = Measure(phases=["encoder", "decode"], meters=["latency", "roofline"], repeats=1, max_repeats=1,
                       prompt_tokens=4, new_tokens=2)
    rows = measure_point(Point("ast+llama", "tiny", "cpu", "float32", 1, 1.0, 4, 2), settings).rows
    found = {(r["phase"], r["metric"]): r["value"] for r in rows}
    assert found[("build", "build_ms")] > 0
    spec = spec_for("ast+llama", "tiny")
    for phase in ("encoder", "decode"):
        assert found[(phase, "bytes_moved")] == sum(phase_bytes(spec, phase, 1, 1.0, torch.float32, 4).values())
        assert found[(phase, "flops_analytic")] > 0


@pytest.mark.parametrize("variant", ["ast+llama", "dass+mamba"])
def test_an_encoder_reads_its_weights_once_and_its_activations_grow_with_the_clip(variant):
    lalm = build(variant, "tiny", device="meta", dtype=torch.float16)
    held = sum(p.numel() * p.element_size() for p in lalm.encoder.parameters())
    short, long = (phase_bytes(lalm.spec, "encoder", 1, s, torch.float16) for s in (10.0, 40.0))
    assert short["weights"] == long["weights"] == held
    assert 3.5 < long["activations"] / short["activations"] < 4.5  # about linear in frames for both encoders
    assert short["state_read"] == short["state_written"] == 0
