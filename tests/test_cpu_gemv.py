"""A batch-1 bfloat16 decode step on a CPU runs with oneDNN off, and nothing else changes."""
from __future__ import annotations

import pytest
import torch

from models import build
from models.ops.cpu_gemv import gemv_kernels, matmul_backend, prefers_native_gemv


@pytest.mark.parametrize(("rows", "device", "dtype", "native"), [
    (1, "cpu", torch.bfloat16, True),
    (2, "cpu", torch.bfloat16, False),
    (1, "cpu", torch.float32, False),
    (1, "cpu", torch.float16, False),
    (1, "cuda", torch.bfloat16, False),
])
def test_only_single_row_bfloat16_on_a_cpu_prefers_torchs_own_kernel(rows, device, dtype, native):
    assert prefers_native_gemv(rows, torch.device(device), dtype) is native


def test_the_switch_is_restored_even_when_the_step_raises():
    before = torch.backends.mkldnn.enabled
    with pytest.raises(RuntimeError), gemv_kernels(1, torch.device("cpu"), torch.bfloat16):
        assert torch.backends.mkldnn.enabled is False
        raise RuntimeError("step failed")
    assert torch.backends.mkldnn.enabled is before


@pytest.mark.parametrize("variant", ["ast+llama", "dass+mamba"])
@pytest.mark.parametrize(("batch", "dtype", "onednn_in_step"), [
    (1, torch.bfloat16, False), (2, torch.bfloat16, True), (1, torch.float32, True),
])
def test_decode_step_sees_onednn_off_only_at_batch_1_in_bfloat16(variant, batch, dtype, onednn_in_step):
    before = torch.backends.mkldnn.enabled
    lalm = build(variant, "tiny", dtype=dtype)
    seen: list[bool] = []
    lalm.lm.model.register_forward_pre_hook(lambda *_: seen.append(torch.backends.mkldnn.enabled))
    wave = torch.zeros(batch, 16_000)
    prompt = torch.zeros(batch, 2, dtype=torch.long)
    _, cache = lalm.prefill(lalm.encode(lalm.features(wave)), prompt)
    lalm.decode_step(cache, torch.zeros(batch, dtype=torch.long))
    assert seen == [before, before and onednn_in_step]  # prefill keeps the setting; the step as decided
    assert torch.backends.mkldnn.enabled is before


@pytest.mark.parametrize(("batch", "dtype", "decode_kernel"), [
    (1, torch.bfloat16, "native"), (2, torch.bfloat16, "onednn"), (1, torch.float32, "onednn"),
])
def test_rows_of_the_phases_with_decode_steps_say_which_matmul_kernel_ran(batch, dtype, decode_kernel):
    from harness.points import Point
    from harness.workload import phase_context

    lalm = build("dass+mamba", "tiny", dtype=dtype)
    point = Point("dass+mamba", "tiny", "cpu", str(dtype).removeprefix("torch."), batch, 1.0, 2, 2)
    kernels = {phase: phase_context(lalm, point, phase)["matmul_backend"] for phase in ("prefill", "decode", "e2e")}
    assert kernels == {"prefill": "", "decode": decode_kernel, "e2e": decode_kernel}
    assert matmul_backend(batch, torch.device("cuda"), dtype) == ""  # the switch is a CPU one
