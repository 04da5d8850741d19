"""The tidy results table every part of the harness agrees on: one row per (point, phase, metric).

Writers (runner, meters, tasks, profiler) build rows with these columns; readers (store, report,
gate, compare) rely on them. `validate` is the single check both sides use.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from models.phases import PHASES as INFERENCE_PHASES

if TYPE_CHECKING:
    import pandas as pd

# Identity of a measured point: what was run.
POINT_COLUMNS: dict[str, str] = {
    "run_id": "string",
    "point_id": "string",
    "suite": "string",
    "variant": "string",  # ENCODER+LM, e.g. "dass+mamba"
    "encoder": "string",
    "lm": "string",
    "size": "string",
    "device": "string",  # "cpu" | "cuda"
    "dtype": "string",  # one of DTYPES
    "batch_size": "int64",
    "audio_seconds": "float64",
    "prompt_tokens": "int64",
    "new_tokens": "int64",
}

# What was measured and how it went.
MEASURE_COLUMNS: dict[str, str] = {
    "phase": "string",
    "metric": "string",
    "value": "float64",  # NaN when it could not be measured; `note` says why
    "unit": "string",
    "lo": "float64",  # p10 for timings, lower bound otherwise (NaN when not applicable)
    "hi": "float64",  # p90
    "n": "int64",  # samples behind `value`
    "status": "string",  # one of STATUSES
    "error": "string",  # the failure message when status != "ok"
}

# How it was measured and where: enough to trace any figure back to its setting.
CONTEXT_COLUMNS: dict[str, str] = {
    "source": "string",  # the meter/source that produced the value (e.g. "cuda_event", "psutil.rss")
    "note": "string",  # reason for NaN, uncounted operators, caveats
    "scan_backend": "string",  # selective-scan backend that actually ran (SSM parts), else ""
    "requested_scan_backend": "string",  # the point's scan_backend axis value (e.g. "auto"); "" off-sweep
    "attn_backend": "string",  # attention implementation that ran (transformer parts), else ""
    "matmul_backend": "string",  # decode and e2e on a CPU: the decode step's matmul kernel, "native" | "onednn"
    "mode": "string",  # one of MODES
    "module": "string",  # for profile rows: the module path; "" for whole-phase rows
    "dataset": "string",  # task rows
    "checkpoint": "string",  # task rows
    "train_stage": "string",  # train_step rows: which parameters train (projector | lora | ...)
    "precision": "string",  # train_step rows: the precision setting (e.g. bf16 autocast on CUDA)
    "activation_checkpointing": "string",  # train_step rows: "on" | "off"
    "device_name": "string",
    "host": "string",
    "node": "string",  # cluster node that ran the point
    "git_sha": "string",
    "torch_version": "string",
    "transformers_version": "string",
}

COLUMNS: dict[str, str] = {**POINT_COLUMNS, **MEASURE_COLUMNS, **CONTEXT_COLUMNS}
REQUIRED = list(POINT_COLUMNS) + list(MEASURE_COLUMNS)

# The inference phases (models.phases) and the harness's own.
PHASES = (*INFERENCE_PHASES, "train_step", "task", "build")  # build: the model's construction, per point
# Floating-point types a point may run in, by torch's names (torch.<name>).
DTYPES = ("float32", "float16", "bfloat16")
# How a phase ran: "compile" wraps each phase call in torch.compile, "cuda_graph" replays decode.
MODES = ("eager", "compile", "cuda_graph")
# Worst first, so a point whose rows disagree takes the first of its rows' statuses.
STATUSES = ("crash", "oom", "timeout", "error", "skipped", "ok")
# A point that ran and failed (skipped points never ran; ok ones did not fail).
FAILED_STATUSES = ("crash", "oom", "timeout", "error")

# metric -> unit. Task metrics are unitless ("1").
METRIC_UNITS: dict[str, str] = {
    "latency_ms": "ms",
    "throughput": "tokens/s",  # or "audio_s/s" for front end and encoder phases
    "rtf": "1",  # real-time factor: processing seconds per audio second
    "peak_mem_bytes": "B",
    "reserved_mem_bytes": "B",
    "device_mem_bytes": "B",  # NVML: our process (CUDA context included), else the whole device
    "state_bytes": "B",
    "state_bytes_analytic": "B",
    "flops": "FLOP",
    "flops_analytic": "FLOP",
    "flop_coverage": "1",
    # the roofline (harness.roofline): closed-form bytes, and how close the phase came to the ceilings
    "build_ms": "ms",  # phase "build": building the point's model (random or loaded weights)
    "bytes_moved": "B",
    "achieved_flops_per_s": "FLOP/s",
    "achieved_bytes_per_s": "B/s",
    "roofline_fraction": "1",
    "energy_j": "J",
    "energy_j_per_token": "J/token",
    "energy_j_per_audio_s": "J/s",
    "params": "1",
    "trainable_params": "1",
    "max_batch": "1",
    "train_state_bytes": "B",  # resident between steps: weights + AdamW moments
    # profile rows (module column set): a module's self time, its share of the phase, FLOP rate
    "host_time_ms": "ms",
    "share": "1",
    "flop_rate": "FLOP/s",
    "profile_overhead": "1",  # attributed / unprofiled phase time - 1: how faithful the breakdown is
    "instrumentation_ms": "ms",  # module-hook cost per phase call taken out of a CPU breakdown
    "profiler_overhead": "1",  # profiler pass / unprofiled phase time - 1: how slow the trace's calls ran
    # task rows (harness.tasks.evaluate): scores in [0, 1] unless noted
    "accuracy": "1",
    "macro_f1": "1",
    "mAP": "1",
    "exact_match_rate": "1",  # answers matching a label exactly, before nearest-label matching
    "skipped_clips": "clips",  # unreadable or missing clips left out of a score
    **{f"bleu_{n}": "1" for n in range(1, 5)},
    "rouge_l": "1",
    "cider_d": "1",  # CIDEr-D is not bounded by 1 (x10 scale, as published)
    "meteor": "1",
    "spice": "1",
    "spider": "1",  # (CIDEr-D + SPICE) / 2
}


# Raw timing samples behind a `value` (one row per repeat), kept beside the results table.
SAMPLE_COLUMNS: dict[str, str] = {
    "run_id": "string",
    "point_id": "string",
    "phase": "string",
    "metric": "string",
    "i": "int64",  # repeat index within (point, phase, metric)
    "value": "float64",
    "unit": "string",
}


def empty_frame() -> pd.DataFrame:
    """An empty results table with every column at its dtype."""
    import pandas as pd  # here, not above: the lists are read without it (`lalm-bench list`)

    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in COLUMNS.items()})


def conform(rows: list[dict] | pd.DataFrame, columns: dict[str, str] = COLUMNS) -> pd.DataFrame:
    """Rows -> a table with exactly `columns`, in order and dtype; missing context is ""/NaN.

    Raises ValueError naming the missing required columns, since a row without its identity
    could never be traced back to what produced it. `columns=SAMPLE_COLUMNS` conforms samples.
    """
    import pandas as pd

    df = pd.DataFrame(rows) if not isinstance(rows, pd.DataFrame) else rows.copy()
    required = REQUIRED if columns is COLUMNS else list(columns)
    missing = [c for c in required if c not in df.columns]
    if missing and len(df):
        raise ValueError(f"results rows lack required columns: {', '.join(missing)}")
    for col, dtype in columns.items():
        if col not in df.columns:
            df[col] = "" if dtype == "string" else pd.NA
        if dtype == "string":
            df[col] = df[col].fillna("").astype(str)
        elif dtype == "int64":
            df[col] = pd.to_numeric(df[col], errors="coerce").fillna(0).astype("int64")
        else:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
        df[col] = df[col].astype(dtype)
    extra = [c for c in df.columns if c not in columns]
    return df[list(columns) + extra]


def validate(df: pd.DataFrame) -> None:
    """Raise ValueError when a table breaks the contract (columns, statuses, phases)."""
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"results table lacks required columns: {', '.join(missing)}")
    bad_status = set(df["status"].dropna()) - set(STATUSES)
    if bad_status:
        raise ValueError(f"unknown status values: {sorted(bad_status)}")
    bad_phase = set(df["phase"].dropna()) - set(PHASES)
    if bad_phase:
        raise ValueError(f"unknown phase values: {sorted(bad_phase)}")
