"""`lalm-bench plan`: device specs, the efficiency fit, the timer's arithmetic, bad input."""
from __future__ import annotations

import json
import math

import pytest

from harness.cli import main
from harness.plan.calibrate import Fit, fit, lookup
from harness.plan.predict import predict, timed_seconds
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


def test_the_fit_recovers_overhead_per_module_and_efficiency():
    overhead, efficiency = 2e-4, 0.25
    samples = [(m, f, overhead * m + f / efficiency) for m, f in ((10, 1e-3), (20, 1e-3), (10, 5e-2), (40, 2e-1))]
    got_overhead, got_efficiency = fit(samples)
    assert math.isclose(got_overhead, overhead, rel_tol=0.05)
    assert math.isclose(got_efficiency, efficiency, rel_tol=0.05)


def test_where_the_floor_is_negligible_the_time_goes_to_the_modules_not_to_a_tiny_efficiency():
    # tiny models: all overhead, with noise that happens to grow with the (negligible) floor
    samples = [(10, 1e-9, 1.0e-3), (10, 2e-9, 1.1e-3), (10, 3e-9, 1.2e-3)]
    got_overhead, got_efficiency = fit(samples)
    assert math.isclose(got_overhead, 1.1e-4, rel_tol=0.05) and got_efficiency > 0.5


def test_a_missing_fit_falls_back_to_another_dtype_of_the_same_part_then_to_the_floor():
    point = Point("dass+mamba", "tiny", "cpu", "bfloat16", 1, 1.0, 8, 4)
    fits = {("decode", "mamba", "cpu", "float32"): Fit(1e-4, 0.5, 1.0, 3)}
    assert lookup(fits, point, "decode").points == 3
    assert lookup(fits, point, "encoder") == Fit()


def test_the_timer_spends_warm_up_plus_repeats_up_to_the_phase_budget():
    suite, _ = load_suite("quick")  # warmup 1, repeats 3, max_repeats 5, max_phase_seconds 1
    assert timed_seconds(0.01, suite) == pytest.approx((1 + 5) * 0.01)  # capped by max_repeats
    assert timed_seconds(0.5, suite) == pytest.approx((1 + 3) * 0.5)  # repeats win over the budget


def test_paper_points_on_a_smaller_card_are_flagged_out_of_memory():
    suite, _ = load_suite("paper")
    ceilings = load_device("a100-80gb")
    small = predict(Point("dass+mamba", "paper", "cuda", "float16", 1, 10.0, 32, 32), suite, ceilings, {})
    large = predict(Point("ast+llama", "paper", "cuda", "float16", 16, 60.0, 32, 32), suite, ceilings, {})
    assert not small.oom and large.oom
    assert small.peak_mem_bytes > 2.77e9 * 2  # Mamba-2.8B's weights in float16 at least
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


def test_calibration_on_a_run_recovers_the_cost_per_module_and_the_efficiency(tmp_path):
    from harness import store
    from harness.measure.ceilings import Ceilings
    from harness.plan.calibrate import BUILD, calibrate, floor, key, modules
    from harness.runner import identity

    ceilings = Ceilings("cpu", "test", {"float32": 5e10, "bfloat16": 1e11, "float16": 1e9}, 1e10, 1e10, 8 << 30)
    suite, _ = load_suite("quick")
    store.create_run(tmp_path, suite.with_device("cpu").model_dump(mode="json"), "test", run_id="r")
    meta = store.read_meta(tmp_path)
    store.write_meta(tmp_path, {**meta, "sessions": [{"ceilings": ceilings.as_dict()}]})
    overhead, efficiency = 3e-5, 0.4
    points = [Point("dass+mamba", "tiny", "cpu", "float32", 1, s, 8, 4) for s in (1.0, 4.0, 16.0)]
    rows = []
    for point in points:
        for phase, metric in (("encoder", "latency_ms"), (BUILD, "build_ms")):
            seconds = overhead * modules(point.variant, point.size, phase) + floor(point, phase, ceilings) / efficiency
            rows.append({**identity(point, "quick", "r"), "phase": phase, "metric": metric, "value": seconds * 1e3,
                         "unit": "ms", "lo": float("nan"), "hi": float("nan"), "n": 1, "status": "ok", "error": ""})
    store.append_rows(tmp_path, rows)
    fits = calibrate([tmp_path], load_device("h200"))  # the run's own ceilings win over the fallback
    got = fits[key(points[0], "encoder")]
    assert got.points == 3
    assert got.overhead_s == pytest.approx(overhead, rel=0.05) and got.efficiency == pytest.approx(efficiency, rel=0.05)
    assert key(points[0], BUILD) in fits


def test_a_json_spec_file_is_a_device(tmp_path):
    spec = tmp_path / "card.json"
    spec.write_text(json.dumps({"name": "card", "source": "its datasheet", "memory_bytes": 24_000_000_000,
                                "bandwidth_bytes_per_s": 1e12,
                                "flops_per_s": {"float32": 1e13, "bfloat16": 1e14, "float16": 1e14}}))
    ceilings = load_device(str(spec))
    assert ceilings.memory_bytes == 24e9 and ceilings.bandwidth == 1e12 and ceilings.peak_flops("bfloat16") == 1e14
