"""Training cost: counted FLOPs of a step against the closed form, the closed form's convention,
the train_step rows (meter, workload, suites) and the largest-batch search's logic."""
from __future__ import annotations

import math

import pytest

from harness.errors import UserError
from harness.measure.timing import TimerSettings
from harness.train_cost.step import TrainInputs, TrainStepSettings, count_step_flops, run_train_step
from harness.points import Point
from harness.schema import METRIC_UNITS
from harness.suite import Measure, expand, load_suite
from harness.train_cost.analytic import train_step_costs, train_step_flops
from harness.train_cost.max_batch import SearchResult, max_batch_measurement, search
from harness.train_settings import TrainSettings
from harness.workload import measure_point
from models import VARIANTS, build, spec_for
from models.finetune import TrainStep, random_batch, train_step_for
from models.finetune_stages import STAGES

FAST_TIMER = TimerSettings(warmup=0, min_runs=1, max_runs=1)
SHAPE = dict(batch=1, audio_seconds=0.5, prompt_tokens=4, answer_tokens=4)


def _counted_and_analytic(variant: str, stage: str, checkpointing: bool = False) -> tuple[int, int]:
    lalm = build(variant, "tiny")
    step = train_step_for(lalm, stage, activation_checkpointing=checkpointing)
    batch = random_batch(lalm, SHAPE["batch"], SHAPE["audio_seconds"], SHAPE["prompt_tokens"], SHAPE["answer_tokens"])
    counted = count_step_flops(step, batch).total
    analytic = train_step_flops(lalm.spec, STAGES[stage], SHAPE["batch"], SHAPE["audio_seconds"],
                                SHAPE["prompt_tokens"] + SHAPE["answer_tokens"], step.recipe.lora_rank, checkpointing)
    return counted, analytic


@pytest.mark.parametrize("stage", ["projector", "lora"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_step_flops_within_5_percent_of_the_closed_form(variant, stage):
    counted, analytic = _counted_and_analytic(variant, stage)
    assert counted == pytest.approx(analytic, rel=0.05)


def test_full_stage_counts_grouped_conv_weight_gradients_once():
    # Mamba's depthwise conv1d and DASS's depthwise 3x3 train here: torch's own formula counts
    # their weight gradients as if ungrouped, ~15% too much for this model.
    counted, analytic = _counted_and_analytic("dass+mamba", "full")
    assert counted == pytest.approx(analytic, rel=0.05)


@pytest.mark.parametrize("variant", [
    "ast+llama",
    "dass+mamba",
])
def test_checkpointed_step_flops_include_the_recomputation(variant):
    counted, analytic = _counted_and_analytic(variant, "lora", checkpointing=True)
    assert counted == pytest.approx(analytic, rel=0.05)


# ------------------------------------------------------------------ the closed form's convention


def _costs(stage: str, variant: str = "ast+llama", checkpointing: bool = False) -> dict[str, int]:
    return train_step_costs(spec_for(variant, "small"), STAGES[stage], 2, 10.0, 16, 8, checkpointing)


def test_projector_stage_runs_the_encoder_forward_only_and_trains_no_lm_weight():
    costs = _costs("projector")
    assert all(name.endswith(".forward") for name in costs if name.startswith("encoder."))
    lm_weights = ("lm.attn_proj", "lm.mlp", "lm.lm_head")
    for op in lm_weights:  # frozen, but the gradient passes through to the projector: 2x forward
        assert costs[f"{op}.grad_input"] == costs[f"{op}.forward"]
        assert f"{op}.grad_weight" not in costs
    assert costs["projector.linear.grad_weight"] == costs["projector.linear.forward"]


def test_lora_stage_trains_adapters_and_encoder_but_not_the_lm_base():
    costs = _costs("lora", "dass+mamba")
    assert not any(name.endswith("grad_weight") and name.startswith("lm.") and ".lora." not in name for name in costs)
    assert costs["lm.lora.grad_weight"] == costs["lm.lora.grad_input"] == costs["lm.lora.forward"]
    assert costs["encoder.mlp.grad_weight"] == costs["encoder.mlp.grad_input"] == costs["encoder.mlp.forward"]
    # The lowest product of the encoder sees data: no gradient with respect to its input.
    assert "encoder.stem.conv1.grad_input" not in costs and "encoder.stem.conv1.grad_weight" in costs


def test_full_stage_costs_three_forwards_per_trained_product():
    costs = _costs("full", "dass+llama")
    for op in ("lm.attn_proj", "lm.mlp", "lm.lm_head", "projector.linear", "encoder.ss2d.in_proj"):
        assert costs[f"{op}.grad_input"] == costs[f"{op}.grad_weight"] == costs[f"{op}.forward"]
    assert costs["lm.attn_scores.backward"] == math.ceil(2.5 * costs["lm.attn_scores.forward"])


def test_checkpointing_adds_only_recomputation_inside_blocks():
    plain, checkpointed = _costs("lora"), _costs("lora", checkpointing=True)
    added = {name: value for name, value in checkpointed.items() if name not in plain}
    assert added and all(name.endswith(".recompute") for name in added)
    assert {k: v for k, v in checkpointed.items() if k in plain} == plain
    assert "lm.lm_head.recompute" not in added and "encoder.patch_embed.recompute" not in added
    assert added["lm.attn_proj.recompute"] == plain["lm.attn_proj.forward"]
    assert added["lm.mlp.recompute"] == round(plain["lm.mlp.forward"] * 2 / 3)  # down_proj is not rerun


def test_frozen_encoder_recomputes_nothing():
    plain, checkpointed = _costs("projector"), _costs("projector", checkpointing=True)
    assert not any(name.startswith("encoder.") and name.endswith(".recompute") for name in checkpointed)
    assert set(checkpointed) - set(plain)  # the LM, which the gradient crosses, still recomputes


# ------------------------------------------------------------------ rows


def test_train_step_rows_cover_every_metric():
    lalm = build("ast+llama", "tiny")
    rows = run_train_step(lalm, TrainInputs(2, 1.0, 4, 4), TrainStepSettings(timer=FAST_TIMER))
    by_metric = {m.metric: m for m in rows}
    assert {"latency_ms", "throughput", "rtf", "peak_mem_bytes", "train_state_bytes", "params", "trainable_params",
            "flops", "flops_analytic", "flop_coverage"} <= set(by_metric)
    assert all(m.status == "ok" for m in rows)
    assert all(m.unit == METRIC_UNITS[m.metric] for m in rows if m.metric in METRIC_UNITS and m.metric != "throughput")
    assert by_metric["throughput"].unit == "tokens/s"
    trainable = sum(p.numel() for p in lalm.parameters() if p.requires_grad)
    assert by_metric["trainable_params"].value == trainable < by_metric["params"].value
    tokens = 2 * (lalm.num_audio_tokens(1.0) + 8)
    assert by_metric["throughput"].value == pytest.approx(tokens / (by_metric["latency_ms"].value / 1e3))
    assert by_metric["peak_mem_bytes"].value > 0
    assert by_metric["flop_coverage"].value == pytest.approx(1.0, rel=0.05)


def test_a_step_that_runs_out_of_memory_is_an_oom_row(monkeypatch):
    def out_of_memory(self, batch):
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes")

    monkeypatch.setattr(TrainStep, "__call__", out_of_memory)
    rows = run_train_step(build("ast+llama", "tiny"), TrainInputs(1, 1.0, 4, 4), TrainStepSettings(timer=FAST_TIMER))
    assert [(m.metric, m.status) for m in rows] == [("latency_ms", "oom")]
    assert math.isnan(rows[0].value) and "can't allocate memory" in rows[0].note


def test_workload_measures_train_step_with_its_setting_columns():
    point = Point("ast+mamba", "tiny", "cpu", "float32", 2, 1.0, 4, 4)
    measure = Measure(phases=["train_step"], meters=["latency", "memory", "flops"], warmup=0, repeats=1, max_repeats=1,
                      train=TrainSettings(stage="projector", activation_checkpointing=False))
    result = measure_point(point, measure)
    # Every point also records its model's build (phase "build", harness.schema.PHASES).
    assert {row["phase"] for row in result.rows} == {"build", "train_step"}
    trained = [row for row in result.rows if row["phase"] == "train_step"]
    assert {row["train_stage"] for row in trained} == {"projector"}
    assert {row["activation_checkpointing"] for row in trained} == {"off"}
    assert "max_batch" not in {row["metric"] for row in result.rows}  # not asked for
    assert {s["phase"] for s in result.samples} == {"train_step"}


@pytest.mark.parametrize("name, size, device", [("training", "small", "cpu"), ("training-gpu", "matched", "cuda")])
def test_training_suites_expand_over_lengths_batches_and_variants(name, size, device):
    suite, _ = load_suite(name)
    points = expand(suite.with_device(suite.run.device))
    assert suite.run.device == device and suite.measure.phases == ["train_step"] and suite.measure.train.max_batch
    assert {p.variant for p in points} == set(VARIANTS) and size in {p.size for p in points}
    assert len({p.audio_seconds for p in points}) == 3 and len({p.batch_size for p in points}) >= 2


def test_train_settings_typos_are_one_line_with_a_suggestion():
    with pytest.raises(UserError, match=r"--set measure.train.stag: unknown key 'stag' \(did you mean 'stage'\?\)"):
        load_suite("training", ["measure.train.stag=\"lora\""])
    with pytest.raises(UserError, match="measure.train.precision"):
        load_suite("training", ["measure.train.precision=\"fp8\""])


# ------------------------------------------------------------------ the search


def _fits_up_to(largest: int, calls: list[int]):
    def try_batch(batch: int) -> tuple[str, str]:
        calls.append(batch)
        return ("ok", "") if batch <= largest else ("oom", "out of memory")

    return try_batch


@pytest.mark.parametrize("largest", range(0, 70))
def test_search_finds_the_largest_batch_in_few_tries(largest):
    calls: list[int] = []
    result = search(_fits_up_to(largest, calls), limit=64)
    assert result.largest == min(largest, 64)
    assert result.at_limit == (largest >= 64)
    assert len(calls) == len(set(calls)) <= 2 * math.ceil(math.log2(64)) + 1
    if 0 < largest < 64:
        assert (largest, "ok") in result.tried and (largest + 1, "oom") in result.tried


def test_search_stops_at_a_failure_that_is_not_memory():
    def try_batch(batch: int) -> tuple[str, str]:
        return ("ok", "") if batch < 4 else ("timeout", "no result within 5 s")

    result = search(try_batch, limit=64)
    assert (result.largest, result.failure, result.error) == (2, "timeout", "no result within 5 s")


def test_max_batch_rows_say_how_the_search_ended():
    point = Point("ast+llama", "tiny", "cpu", "float32", 1, 1.0, 4, 4)
    measure = Measure(train=TrainSettings(max_batch=True, memory_limit_mb=100, max_batch_limit=8))
    exact = max_batch_measurement(SearchResult(5, ((1, "ok"), (8, "oom"), (5, "ok"), (6, "oom")), 8), point, measure)
    assert (exact.value, exact.lo, exact.hi, exact.status) == (5, 5, 5, "ok") and "100 MiB" in exact.note
    bound = max_batch_measurement(SearchResult(8, ((8, "ok"),), 8), point, measure)
    assert bound.value == bound.lo == 8 and math.isnan(bound.hi) and "lower bound" in bound.note
    none = max_batch_measurement(SearchResult(0, ((1, "oom"),), 8), point, measure)
    assert math.isnan(none.value) and none.status == "oom"
    failed = max_batch_measurement(SearchResult(2, ((4, "crash"),), 8, "crash", "killed by SIGSEGV"), point, measure)
    assert math.isnan(failed.value) and failed.status == "crash" and "SIGSEGV" in failed.note

