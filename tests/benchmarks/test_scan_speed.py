"""pytest-benchmark: one selective scan at Mamba's shape (batch 1, d 512, n 16, length 4096,
float32, D, z, delta bias, softplus): transformers' sequential scan vs the op's CPU kernel.

Run the measurement explicitly; the table's ratio column is the kernel's speed-up (goal >= 20x):
    pytest tests/benchmarks/test_scan_speed.py --benchmark-enable
With benchmarking disabled (the default test run) each case runs once at a small shape. The
workload is defined once, in benchmarks/scan_speed.py (which also measures the machine's limits
and the whole Mamba LM).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "scan_speed.py"
_spec = importlib.util.spec_from_file_location("scan_speed", _SCRIPT)
scan_speed = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scan_speed)

SMOKE_SHAPE = dict(b=1, d=8, l=32, n=4)


@pytest.mark.parametrize("implementation", ["transformers", "cpu"])
def test_scan_speed(benchmark, implementation):
    shape = SMOKE_SHAPE if benchmark.disabled else scan_speed.SCAN_SHAPE
    inputs = scan_speed.scan_inputs(**shape)
    run = scan_speed.hf_sequential_scan(inputs) if implementation == "transformers" else scan_speed.op_scan(inputs)
    benchmark.group = "selective_scan " + " ".join(f"{k}={v}" for k, v in shape.items())
    with torch.inference_mode():
        run()  # first call: numba loads or compiles the kernel
        if implementation == "transformers":  # ~1 s a call: a few rounds are enough
            y = benchmark.pedantic(run, rounds=3, iterations=1)
        else:
            y = benchmark(run)
    assert y.shape == (shape["b"], shape["d"], shape["l"]) and torch.isfinite(y).all()
