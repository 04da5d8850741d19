"""An Evaluation -> `task` rows of the results table, with the same identity columns as cost rows.

The point id is the one a cost sweep gives the same configuration (variant, size, device, dtype,
batch, audio length, prompt and new tokens), so accuracy and cost of one configuration share it.
"""
from __future__ import annotations

import math
import socket
from pathlib import Path

from harness import env, runner, store
from harness.points import Point
from harness.schema import METRIC_UNITS
from harness.suite import validate_suite
from harness.tasks.evaluate import Evaluation
from harness.workload import attention_implementation  # the same label the cost rows carry
from models.lalm import LALM

DTYPE_NAMES = {"torch.float32": "float32", "torch.float16": "float16", "torch.bfloat16": "bfloat16"}


def task_point(lalm: LALM, evaluation: Evaluation) -> Point:
    return Point(
        variant=lalm.spec.variant, size=lalm.spec.size, device=lalm.device.type,
        dtype=DTYPE_NAMES.get(str(lalm.dtype), str(lalm.dtype)), batch_size=evaluation.batch_size,
        audio_seconds=evaluation.dataset.clip_seconds, prompt_tokens=evaluation.prompt_tokens,
        new_tokens=evaluation.new_tokens,
    )


def task_rows(lalm: LALM, evaluation: Evaluation, checkpoint: str, run_id: str, suite: str) -> list[dict]:
    """One row per metric (phase `task`), for the run `run_id` of suite `suite`."""
    point = task_point(lalm, evaluation)
    identity = {
        "run_id": run_id, "point_id": point.id, "suite": suite, "variant": point.variant, "encoder": point.encoder, "lm": point.lm,
        "size": point.size, "device": point.device, "dtype": point.dtype, "batch_size": point.batch_size,
        "audio_seconds": point.audio_seconds, "prompt_tokens": point.prompt_tokens, "new_tokens": point.new_tokens,
        "mode": point.mode,
    }
    context = {
        "dataset": evaluation.dataset.describe, "checkpoint": checkpoint, "scan_backend": lalm.scan_backend,
        "attn_backend": attention_implementation(lalm), "device_name": env.device_name(point.device), "host": socket.gethostname(),
        "git_sha": env.git_sha(), "torch_version": env.package_version("torch"),
        "transformers_version": env.package_version("transformers"),
    }
    rows = []
    for score in evaluation.scores:
        rows.append({
            **identity, **context, "phase": "task", "metric": score.metric, "value": score.value,
            "unit": METRIC_UNITS.get(score.metric, "1"), "lo": math.nan, "hi": math.nan, "n": score.n, "status": score.status,
            "error": score.note if score.status == "error" else "", "note": score.note, "source": score.source,
        })
    return rows


def ensure_run(run_dir: Path, variant: str, size: str, audio_seconds: float) -> tuple[str, str]:
    """(run id, suite name) of the run in `run_dir`; a folder holding no run gets a new one
    (suite "task") for this point."""
    if (run_dir / store.RUN_META).exists():
        meta = store.read_meta(run_dir)
        return meta["run_id"], meta["suite_name"]
    suite = validate_suite({"name": "task", "description": "task accuracy of trained checkpoints",
                            "grid": {"variant": [variant], "size": [size], "audio_seconds": [audio_seconds]}},
                           "lalm-bench eval")
    run_id = runner.new_run_id(suite.name)
    runner.create_run(run_dir, run_id, suite, "lalm-bench eval")
    return run_id, suite.name
