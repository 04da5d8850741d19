"""An Evaluation -> `task` rows of the results table, with the same identity columns as cost rows.

The point id is the one a cost sweep gives the same configuration (variant, size, device, dtype,
batch, audio length, prompt and new tokens), so accuracy and cost of one configuration share it.
"""
from __future__ import annotations

import math
import socket
from pathlib import Path

from harness import env, store
from harness.points import Point, identity
from harness.schema import METRIC_UNITS
from harness.suite import validate_suite
from harness.tasks.evaluate import Evaluation
from harness.threads import DEFAULT_THREADS
from models.lalm import LALM


def task_point(lalm: LALM, evaluation: Evaluation) -> Point:
    return Point(
        variant=lalm.spec.variant, size=lalm.spec.size, device=lalm.device.type,
        dtype=str(lalm.dtype).removeprefix("torch."), batch_size=evaluation.batch_size,
        audio_seconds=evaluation.dataset.clip_seconds, prompt_tokens=evaluation.prompt_tokens,
        new_tokens=evaluation.new_tokens,
    )


def task_rows(lalm: LALM, evaluation: Evaluation, checkpoint: str, run_id: str, suite: str) -> list[dict]:
    """One row per metric (phase `task`), for the run `run_id` of suite `suite`."""
    point = task_point(lalm, evaluation)
    context = {
        "dataset": evaluation.dataset.describe, "checkpoint": checkpoint, "scan_backend": lalm.scan_backend,
        "attn_backend": lalm.lm.attention_implementation, "device_name": env.device_name(point.device), "host": socket.gethostname(),
        "git_sha": env.git_sha(), "torch_version": env.package_version("torch"),
        "transformers_version": env.package_version("transformers"),
    }
    rows = []
    for score in evaluation.scores:
        rows.append({
            **identity(point, suite, run_id), **context, "phase": "task", "metric": score.metric, "value": score.value,
            "unit": METRIC_UNITS.get(score.metric, "1"), "lo": math.nan, "hi": math.nan, "n": score.n, "status": score.status,
            "error": score.note if score.status == "error" else "", "note": score.note, "source": score.source,
        })
    return rows


def ensure_run(run_dir: Path, variant: str, size: str, audio_seconds: float,
               threads: int = DEFAULT_THREADS) -> tuple[str, str]:
    """(run id, suite name) of the run in `run_dir`; a folder holding no run gets a new one
    (suite "task") for this point, recording the `threads` the evaluation ran on."""
    if (run_dir / store.RUN_META).exists():
        meta = store.read_meta(run_dir)
        return meta["run_id"], meta["suite_name"]
    suite = validate_suite({"name": "task", "description": "task accuracy of trained checkpoints",
                            "grid": {"variant": [variant], "size": [size], "audio_seconds": [audio_seconds]},
                            "run": {"threads": threads}},
                           "lalm-bench eval")
    # The folder may hold the checkpoint being evaluated: the run is added beside it, nothing deleted.
    run_id = store.create_run(run_dir, suite.model_dump(mode="json"), "lalm-bench eval", overwrite=True)
    return run_id, suite.name
