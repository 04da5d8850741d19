"""`lalm-bench plan`: device specs, the efficiency fit, the working set, the timer's arithmetic, bad input."""
from __future__ import annotations

import gc
import json

import pytest
import torch

from harness.cli import main
from harness.plan.calibrate import Fit, fit, floor, lookup
from harness.plan.predict import phase_seconds, predict, timed_seconds
from harness.plan.working_set import LiveBytes, dry_run, working_set
from harness.plan.specs import builtin_names, load_device
from harness.points import Point
from harness.suite import load_suite


@pytest.mark.parametrize("name", ["h100-sxm", "h200", "a100-80gb"])
def test_builtin_device_specs_name_their_datasheet_and_every_dtype(name):
    ceilings = load_device(name)
    assert name in builtin_names()
    assert ceilings.source.startswith("datasheet: ") and "http" in ceilings.source
    assert all(ceilings.peak_flops(d) > 1e12 for d in ("float32", "bfloat16", "float16"))
    assert ceilings.bandwidth > 1e12 and ceilings.memory_bytes >= 80e9


def test_the_fit_recovers_the_cost_per_module_and_each_efficiency():
    truth = Fit(2e-4, compute_eff=0.5, stream_eff=0.25, activation_eff=1.0, points=1)
    shapes = [(10, 1e-3, 2e-3, 1e-4), (20, 4e-3, 2e-3, 4e-4), (10, 2e-2, 8e-3, 2e-3), (40, 8e-2, 8e-3, 8e-3),
              (30, 1e-1, 3e-2, 1e-2), (20, 3e-3, 5e-2, 3e-4)]
    got = fit([(terms, truth.seconds(terms)) for terms in shapes])
    assert got.points == len(shapes)
    assert got.overhead_s == pytest.approx(truth.overhead_s, rel=0.05)
    assert (got.compute_eff, got.stream_eff) == pytest.approx((0.5, 0.25), rel=0.05)
    assert got.activation_eff == pytest.approx(1.0, rel=0.05)


def test_where_the_roofline_terms_are_negligible_the_time_goes_to_the_modules_not_to_tiny_efficiencies():
    # tiny models: all overhead, with noise that happens to grow with the (negligible) terms
    samples = [((10, 1e-9, 1e-9, 1e-9), 1.0e-3), ((10, 2e-9, 2e-9, 2e-9), 1.1e-3), ((10, 3e-9, 3e-9, 3e-9), 1.2e-3)]
    got = fit(samples)
    assert got.overhead_s == pytest.approx(1.1e-4, rel=0.05)
    assert (got.compute_eff, got.stream_eff, got.activation_eff) == (1.0, 1.0, 1.0)


def test_a_term_that_takes_a_share_no_calibration_point_showed_is_flagged_as_extrapolated():
    # calibrated where weights stream in a negligible share of the time (tiny models) ...
    calibrated = fit([((10, 1e-6, 1e-6, 1e-6), 1.0e-3), ((10, 2e-6, 1e-6, 2e-6), 1.05e-3), ((10, 4e-6, 1e-6, 4e-6), 1.1e-3)])
    assert not calibrated.extrapolates((10, 3e-6, 1e-6, 3e-6))
    # ... a decode step that streams megabytes is a guess
    assert calibrated.extrapolates((20, 1e-5, 5e-3, 1e-5))


def test_a_term_in_fixed_proportion_to_the_modules_does_not_take_the_cost_per_module():
    # one model's weights at several clip lengths: the stream term is as constant as the module count
    # (growing a little with the KV cache read), and noise that happens to follow it exactly
    streams = [2e-5 * (1 + 0.02 * k) for k in (1, 2, 4, 8)]
    got = fit([((30, 1e-6, stream, 1e-6), 60 * stream) for stream in streams])
    assert got.stream_eff == 1.0 and got.overhead_s > 0


def test_a_fit_keeps_a_sample_more_than_its_parameters():
    # two samples: the cost per module alone, not three efficiencies through both points
    got = fit([((10, 1e-3, 1e-3, 1e-3), 1e-2), ((10, 2e-3, 1e-3, 1e-3), 1.5e-2)])
    assert (got.compute_eff, got.stream_eff, got.activation_eff) == (1.0, 1.0, 1.0) and got.points == 2


def test_a_missing_fit_falls_back_to_another_dtype_of_the_same_part_then_to_the_floor():
    point = Point("dass+mamba", "tiny", "cpu", "bfloat16", 1, 1.0, 8, 4)
    fits = {("decode", "mamba", "cpu", "float32"): Fit(1e-4, stream_eff=0.5, points=3)}
    assert lookup(fits, point, "decode").points == 3
    assert lookup(fits, point, "encoder") == Fit()


def test_a_variant_never_built_in_calibration_is_built_like_one_that_was():
    point = Point("dass+llama", "tiny", "cpu", "float32", 1, 1.0, 8, 4)
    fits = {("build", "ast+llama", "cpu", "float32"): Fit(5e-4, stream_eff=0.02, points=6)}
    assert lookup(fits, point, "build").points == 6
    assert lookup(fits, point, "decode") == Fit()


def test_an_uncalibrated_phase_is_its_roofline_floor():
    point = Point("ast+llama", "tiny", "cpu", "float32", 1, 4.0, 8, 4)
    ceilings = load_device("h200")
    assert phase_seconds(point, "encoder", Fit(), ceilings) == floor(point, "encoder", ceilings)


def test_each_phases_working_set_is_what_it_adds_to_what_earlier_phases_left_live():
    with LiveBytes(known=set()) as live:
        kept = torch.zeros(1000)  # 4000 B, from an earlier phase
        live.mark()
        scratch = kept + 1  # 4000 B more, then freed
        del scratch
        gc.collect()
        out = torch.zeros(500)  # the phase's output, 2000 B
        assert live.phase_peak == 4000 and live.peak == 8000
    del kept, out


def test_the_working_set_scaled_by_the_batch_is_close_to_a_dry_run_at_that_batch():
    point = Point("dass+mamba", "tiny", "cpu", "float32", 3, 2.0, 8, 4)
    scaled = working_set(point)
    direct = dry_run(point.variant, point.size, torch.float32, torch.device("cpu"), 3, 32000, 8)
    large = [p for p, b in direct.phase_bytes.items() if b > 2**20]
    assert {"fbank", "encoder"} <= set(large)
    assert all(scaled.phase_bytes[p] == pytest.approx(direct.phase_bytes[p], rel=0.05) for p in large)
    assert scaled.peak_bytes == pytest.approx(direct.peak_bytes, rel=0.05)


def test_the_timer_spends_warm_up_plus_repeats_up_to_the_phase_budget():
    suite, _ = load_suite("quick")  # warmup 1, repeats 3, max_repeats 5, max_phase_seconds 1
    assert timed_seconds(0.01, suite) == pytest.approx((1 + 5) * 0.01)  # capped by max_repeats
    assert timed_seconds(0.5, suite) == pytest.approx((1 + 3) * 0.5)  # repeats win over the budget


def test_paper_points_on_a_smaller_card_are_flagged_out_of_memory():
    suite, _ = load_suite("paper")
    ceilings = load_device("a100-80gb")
    small = predict(Point("dass+mamba", "paper", "cuda", "float16", 1, 10.0, 32, 32), suite, ceilings, {})
    large = predict(Point("ast+llama", "paper", "cuda", "float16", 512, 60.0, 32, 32), suite, ceilings, {})
    assert not small.oom and large.oom
    weights = 2.77e9 * 2  # Mamba-2.8B's weights in float16 at least
    assert weights < small.peak_mem_bytes < 1.2 * weights  # and a batch-1 10 s clip adds little
    assert 0 < small.phase_mem_bytes["decode"] < small.phase_mem_bytes["encoder"]
    assert small.phase_s["build"] == pytest.approx(2.9e9 * 2 / ceilings.bandwidth, rel=0.1)
    assert small.wall_s > small.phase_s["build"] + small.phase_s["e2e"]
    assert small.phase_s["e2e"] == pytest.approx(
        sum(small.phase_s[p] for p in ("fbank", "encoder", "prefill")) + 31 * small.phase_s["decode"])


def test_json_output_lists_every_point_and_the_total(capsys):
    assert main(["plan", "quick", "--device-spec", "h200", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["points"]) == 24 and out["total_s"] == pytest.approx(sum(p["wall_s"] for p in out["points"]))


@pytest.mark.parametrize("case, args, message", [
    ("unknown spec", ["--device-spec", "h900"], "unknown device spec 'h900'"),
    ("malformed spec", ["--device-spec", "{bad}"], "bandwidth_bytes_per_s"),
    ("not a run", ["--device-spec", "h200", "--calibrate", "{dir}"], "is not a run folder"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, case, args, message):
    bad = tmp_path / "spec.toml"
    bad.write_text('name = "x"\nsource = "y"\nmemory_bytes = 1\n[flops_per_s]\nfloat32 = 1.0\n'
                   'bfloat16 = 1.0\nfloat16 = 1.0\n')
    args = [a.format(bad=bad, dir=tmp_path) for a in args]
    assert main(["plan", "quick", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_calibration_on_a_run_recovers_the_cost_per_module_and_the_efficiency(tmp_path, capsys):
    from harness import store
    from harness.measure.ceilings import Ceilings
    from harness.plan.calibrate import BUILD, calibrate, key, terms
    from harness.runner import identity

    ceilings = Ceilings("cpu", "test", {"float32": 5e10, "bfloat16": 1e11, "float16": 1e9}, 1e10, 1e10, 8 << 30)
    suite, _ = load_suite("quick")
    store.create_run(tmp_path, suite.with_device("cpu").model_dump(mode="json"), "test", run_id="r")
    meta = store.read_meta(tmp_path)
    store.write_meta(tmp_path, {**meta, "sessions": [{"ceilings": ceilings.as_dict()}]})
    truth = Fit(3e-5, compute_eff=0.4, points=1)
    points = [Point("dass+mamba", "tiny", "cpu", "float32", 1, s, 8, 4) for s in (1.0, 4.0, 16.0)]
    rows = []
    for point in points:
        for phase, metric in (("encoder", "latency_ms"), (BUILD, "build_ms")):
            seconds = truth.seconds(terms(point, phase, ceilings))
            rows.append({**identity(point, "quick", "r"), "phase": phase, "metric": metric, "value": seconds * 1e3,
                         "unit": "ms", "lo": float("nan"), "hi": float("nan"), "n": 1, "status": "ok", "error": ""})
    store.append_rows(tmp_path, rows)
    fits = calibrate([tmp_path], load_device("h200"))  # the run's own ceilings win over the fallback
    got = fits[key(points[0], "encoder")]
    assert got.points == 3
    assert got.overhead_s == pytest.approx(truth.overhead_s, rel=0.05)
    assert got.compute_eff == pytest.approx(truth.compute_eff, rel=0.05)
    assert key(points[0], BUILD) in fits
    assert main(["plan", "quick", "--calibrate", str(tmp_path), "--json"]) == 0  # this machine: cpu, as calibrated
    planned = json.loads(capsys.readouterr().out)["points"]
    # every variant built at the fitted cost per module (tens of modules), not at the floor (microseconds)
    assert len(planned) == 24 and all(p["phase_s"]["build"] > 10 * truth.overhead_s for p in planned)


def test_a_json_spec_file_is_a_device(tmp_path):
    spec = tmp_path / "card.json"
    spec.write_text(json.dumps({"name": "card", "source": "its datasheet", "memory_bytes": 24_000_000_000,
                                "bandwidth_bytes_per_s": 1e12,
                                "flops_per_s": {"float32": 1e13, "bfloat16": 1e14, "float16": 1e14}}))
    ceilings = load_device(str(spec))
    assert ceilings.memory_bytes == 24e9 and ceilings.bandwidth == 1e12 and ceilings.peak_flops("bfloat16") == 1e14


@pytest.mark.parametrize("requested, has_cuda, measured", [("auto", True, "cuda"), ("auto", False, "cpu"),
                                                           ("cpu", True, "cpu")])
def test_this_machine_is_measured_on_the_device_a_run_here_would_use(monkeypatch, capsys, requested, has_cuda,
                                                                     measured):
    import harness.plan.specs as specs
    from harness.executors.local import InProcessExecutor

    seen = []

    def fake_load_device(ref, device="cpu", threads=0):
        seen.append(device)
        return specs.Ceilings(device, "stub", {"float32": 1e12, "bfloat16": 1e12, "float16": 1e12}, 1e11, 1e11,
                              80 << 30)

    monkeypatch.setattr(InProcessExecutor, "cuda_available", lambda self: has_cuda)
    monkeypatch.setattr(specs, "load_device", fake_load_device)
    assert main(["plan", "quick", "--set", f"run.device={requested}", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert seen == [measured] and {p["device"] for p in out["points"]} == {measured}


def test_this_machine_without_cuda_cannot_plan_a_cuda_suite(monkeypatch, capsys):
    from harness.executors.local import InProcessExecutor

    monkeypatch.setattr(InProcessExecutor, "cuda_available", lambda self: False)
    assert main(["plan", "quick", "--set", "run.device=cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def _spec_file(tmp_path, **fields) -> str:
    spec = tmp_path / "card.json"
    spec.write_text(json.dumps({"name": "card", "source": "its datasheet", "memory_bytes": 24_000_000_000,
                                "bandwidth_bytes_per_s": 1e12,
                                "flops_per_s": {"float32": 1e13, "bfloat16": 1e14, "float16": 1e14}, **fields}))
    return str(spec)


def test_a_spec_file_says_its_device_kind_and_a_cuda_card_is_the_default(tmp_path, capsys):
    assert load_device(_spec_file(tmp_path)).device == "cuda"
    assert load_device(_spec_file(tmp_path, device="cpu")).device == "cpu"
    assert main(["plan", "quick", "--device-spec", _spec_file(tmp_path, device="cpu"), "--json"]) == 0
    assert {p["device"] for p in json.loads(capsys.readouterr().out)["points"]} == {"cpu"}


@pytest.mark.parametrize("where, message", [("device", "device: Input should be 'cuda' or 'cpu'"),
                                            ("folder", "is a folder")])
def test_a_bad_device_kind_or_a_folder_is_one_line_and_exit_2(tmp_path, capsys, where, message):
    ref = _spec_file(tmp_path, device="tpu") if where == "device" else f"{tmp_path}/"
    assert main(["plan", "quick", "--device-spec", ref]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_the_fbank_is_timed_at_the_float32_peak_whatever_the_models_dtype():
    from harness.measure.ceilings import Ceilings
    from harness.plan.calibrate import terms
    from harness.plan.costs import point_cost

    # float16 a thousand times slower than float32: a CPU without half-precision matmuls
    ceilings = Ceilings("cpu", "test", {"float32": 1e12, "bfloat16": 1e12, "float16": 1e9}, 1e10, 1e10, 8 << 30)
    point = Point("dass+mamba", "tiny", "cpu", "float16", 1, 10.0, 8, 4)
    flops = point_cost(point).phases["fbank"].flops
    assert flops > 0 and terms(point, "fbank", ceilings)[1] == pytest.approx(flops / 1e12)
    assert terms(point, "encoder", ceilings)[1] == pytest.approx(point_cost(point).phases["encoder"].flops / 1e9)


def test_the_table_flags_extrapolated_phases_and_states_the_memory_meters_resolution(monkeypatch, capsys):
    import dataclasses

    from harness.commands import plan
    from harness.plan.predict import memory_resolution

    suite, _ = load_suite("quick")
    got = predict(Point("dass+mamba", "tiny", "cuda", "float32", 1, 1.0, 8, 4), suite, load_device("h200"), {})
    leaning = dataclasses.replace(got, calibrated=True, extrapolated=("prefill", "decode"))
    assert plan.flags(leaning) == ["extrapolated: decode, prefill"]
    assert plan.flags(got) == ["floor only"]
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["plan", "quick", "--device-spec", "h200"]) == 0
    out = capsys.readouterr().out
    assert "ast+llama tiny float32 b1 16s p8 n4" in out  # the point stays whole at 100 columns
    assert f"metered to {plan.format_value(memory_resolution('cuda'), 'B')}" in out
