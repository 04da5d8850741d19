"""The mamba-ssm path of the scan op, checked on the CPU against a stand-in for the CUDA kernels.

`KernelStandIn` has the compiled `selective_scan_cuda` extension's calling contract (argument
order, the dtype and stride checks its C++ makes, the per-chunk state layout, what `bwd` needs)
computed with the PyTorch reference, so the op's plumbing around the real kernel (residual
outputs, fake shapes and strides, the backward op and its FLOP formula, the decode step's None
handling, availability) is tested without a GPU. The kernels themselves are tested on a GPU in
`test_selective_scan.py` (marked `gpu`).
"""
from __future__ import annotations

import sys
import types

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from models.ops import scan_cuda
from models.ops.scan_cpu import scan_backward
from models.ops.scan_flops import scan_backward_flops, scan_flops
from models.ops.scan_torch import reference_scan, state_update
from models.ops.selective_scan import selective_scan
from tests.test_selective_scan import as_double, rel_err, scan_inputs

TENSORS = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias")


class KernelStandIn:
    """`selective_scan_cuda.fwd` / `.bwd` on the CPU, with the extension's input checks."""

    def __init__(self):
        self.fwd_calls = 0
        self.bwd_calls = 0

    @staticmethod
    def _check(u, delta, A, B, C, D, z, delta_bias):
        assert u.dtype in (torch.float32, torch.float16, torch.bfloat16) and A.dtype == torch.float32
        assert delta.dtype == B.dtype == C.dtype == u.dtype and B.dim() == C.dim() == 4
        for t in (u, delta, B, C, z):
            assert t is None or t.stride(-1) == 1 or t.size(-1) == 1
        for t in (D, delta_bias):
            assert t is None or t.dtype == torch.float32

    def fwd(self, u, delta, A, B, C, D, z, delta_bias, delta_softplus):
        self._check(u, delta, A, B, C, D, z, delta_bias)
        self.fwd_calls += 1
        b, d, l = u.shape
        n = A.shape[1]
        out, _ = reference_scan(u, delta, A, B, C, D, None, delta_bias, delta_softplus)
        states = torch.empty(scan_cuda.chunk_states_shape(b, d, l, n), dtype=torch.float32)
        for chunk in range(states.shape[2]):
            end = min(l, (chunk + 1) * scan_cuda.CHUNK_LENGTH)
            head = [t if t is None or t.dim() < 3 else t[..., :end] for t in (u, delta, A, B, C, D, None, delta_bias)]
            _, state = reference_scan(*head, delta_softplus)
            states[:, :, chunk, 0::2] = -1.0  # the kernel keeps a decay product here
            states[:, :, chunk, 1::2] = state
        result = [out, states]
        if z is not None:
            result.append((out.float() * torch.nn.functional.silu(z.float())).to(u.dtype))
        return result

    def bwd(self, u, delta, A, B, C, D, z, delta_bias, dout, x, out, dz, delta_softplus, recompute_out_z):
        self._check(u, delta, A, B, C, D, z, delta_bias)
        assert dout.dtype == u.dtype and x.is_contiguous() and x.dtype == torch.float32
        assert (out is not None) == (z is not None) and dz is None and not recompute_out_z
        self.bwd_calls += 1
        # The CPU kernel's backward (autograd does not record inside an op's implementation).
        du, ddelta, dA, dB, dC, dD, dz_, ddelta_bias = scan_backward(dout, None, u, delta, A, B, C, D, z, delta_bias,
                                                                      delta_softplus)
        result = [du.to(u.dtype), ddelta.to(u.dtype), dA, dB.to(B.dtype), dC.to(C.dtype),
                  dD if D is not None else None, ddelta_bias if delta_bias is not None else None]
        return result + ([dz_.to(u.dtype)] if z is not None else [])


@pytest.fixture
def standin(monkeypatch) -> KernelStandIn:
    kernels = KernelStandIn()
    monkeypatch.setattr(scan_cuda, "kernels", lambda: kernels)
    return kernels


def cuda_op(inputs: dict, softplus: bool = True, last: bool = False):
    """The op with the mamba-ssm backend forced (the CPU never resolves to it)."""
    return torch.ops.lalm.selective_scan(*(inputs[k] for k in TENSORS), softplus, last, "mamba-ssm")


@pytest.mark.parametrize("opts", [dict(), dict(z=False), dict(D=False, bias=False)], ids=["all", "no-z", "no-D-bias"])
def test_forward_returns_the_kernels_residuals_in_the_fakes_layout(standin, monkeypatch, opts):
    monkeypatch.setattr(scan_cuda, "CHUNK_LENGTH", 4)  # 11 steps: three chunks, the last one short
    inputs = scan_inputs(2, 6, 11, 3, groups=2, **opts)
    y, last, chunk_states, pre_gate = cuda_op(inputs, last=True)
    assert chunk_states.shape == (2, 6, 3, 6) and standin.fwd_calls == 1
    y_ref, last_ref = reference_scan(*(as_double(inputs)[k] for k in TENSORS), True)
    assert rel_err(y, y_ref) <= 1e-5 and rel_err(last, last_ref) <= 1e-5
    assert last.is_contiguous() and y.is_contiguous()
    assert pre_gate.shape == (y.shape if opts.get("z", True) else (0,))
    with torch._subclasses.fake_tensor.FakeTensorMode() as mode:
        fake = cuda_op({k: None if v is None else mode.from_tensor(v) for k, v in inputs.items()}, last=True)
    for real, meta in zip((y, last, chunk_states, pre_gate), fake):
        assert (real.shape, real.stride(), real.dtype) == (meta.shape, meta.stride(), meta.dtype)


def test_last_state_is_a_contiguous_copy_of_the_kernels_strided_view():
    chunk_states = torch.arange(2 * 3 * 2 * 8, dtype=torch.float32).reshape(2, 3, 2, 8)  # (b, d, chunks, 2n)
    view = chunk_states[:, :, -1, 1::2]
    assert not view.is_contiguous()  # what mamba-ssm's own wrapper returns
    last = scan_cuda.last_state(chunk_states)
    assert last.is_contiguous() and torch.equal(last, view)


def test_op_registrations_pass_opcheck_on_the_cuda_path(standin):
    inputs = scan_inputs(2, 4, 5, 3, groups=2, requires_grad=True)
    torch.library.opcheck(torch.ops.lalm.selective_scan.default, (*inputs.values(), True, True, "mamba-ssm"))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_backward_runs_the_backward_kernel_on_the_residuals(standin, dtype):
    inputs = scan_inputs(2, 8, 12, 4, groups=2, requires_grad=True)
    half = {k: None if v is None else v.detach().to(dtype if k in ("u", "delta", "B", "C", "z") else torch.float32)
            .requires_grad_() for k, v in inputs.items()}
    y, *_ = cuda_op(half)
    y.float().square().sum().backward()
    assert (standin.fwd_calls, standin.bwd_calls) == (1, 1)  # the forward is not run again
    ref = {k: None if v is None else v.detach().double().requires_grad_() for k, v in half.items()}
    y_ref, _ = reference_scan(*(ref[k] for k in TENSORS), True)
    y_ref.square().sum().backward()
    tolerance = 1e-4 if dtype == torch.float32 else 3e-2
    for name in TENSORS:
        assert half[name].grad.dtype == half[name].dtype and half[name].grad.shape == half[name].shape, name
        assert rel_err(half[name].grad, ref[name].grad) <= tolerance, name


def test_a_last_state_gradient_is_recomputed_since_the_kernel_has_none(standin):
    inputs = scan_inputs(1, 4, 9, 3, requires_grad=True)
    y, last, *_ = cuda_op(inputs, last=True)
    (y.sum() + last.square().sum()).backward()
    assert standin.bwd_calls == 0
    ref = {k: None if v is None else v.detach().double().requires_grad_() for k, v in inputs.items()}
    y_ref, last_ref = selective_scan(**ref, delta_softplus=True, return_last_state=True, backend="reference")
    (y_ref.sum() + last_ref.square().sum()).backward()
    for name in TENSORS:
        assert rel_err(inputs[name].grad, ref[name].grad) <= 1e-4, name


def test_flop_counter_counts_the_cuda_backward(standin):
    inputs = scan_inputs(2, 8, 16, 4, requires_grad=True)
    with FlopCounterMode(display=False) as counter:
        y, *_ = cuda_op(inputs)
        y.sum().backward()
    per_op = {str(op): flops for op, flops in counter.get_flop_counts()["Global"].items()}
    assert per_op["lalm.selective_scan"] == scan_flops(2, 8, 16, 4, True, True, has_delta_bias=True,
                                                       delta_softplus=True)
    assert per_op["lalm.selective_scan_cuda_backward"] == scan_backward_flops(2, 8, 16, 4, True, True)


def _as_tuple(*args):
    return args


def _mamba_like_update(state, x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False):
    """mamba-ssm's Triton wrapper's argument handling (it unpacks D's and dt_bias's strides
    with no None check), computing with the PyTorch step."""
    D2, bias2 = (None if t is None else t.unsqueeze(0) for t in (D, dt_bias))
    strides = _as_tuple(*(bias2.stride(0), bias2.stride(1)) if bias2 is not None else 0,
                        *(D2.stride(0), D2.stride(1)) if D2 is not None else 0)
    assert len(strides) == 4
    grouped = [t.unsqueeze(1) if t.dim() == 2 else t for t in (B, C)]
    return state_update(state, x, dt, A, *grouped, D, z, dt_bias, dt_softplus)


@pytest.mark.parametrize("absent", [("D",), ("delta_bias",), ("D", "delta_bias")])
def test_state_update_with_absent_D_or_bias_on_the_mamba_kernel(monkeypatch, absent):
    with pytest.raises(TypeError):  # the defect this guards against
        _mamba_like_update(torch.zeros(1, 2, 3), *torch.zeros(2, 1, 2), torch.zeros(2, 3), *torch.zeros(2, 1, 3))
    monkeypatch.setattr(scan_cuda, "mamba_ssm_state_update", lambda: _mamba_like_update)
    inputs = scan_inputs(2, 6, 1, 4, dtype=torch.float64)
    step = {k: (v[..., 0] if k in ("u", "delta", "z", "B", "C") else v) for k, v in inputs.items()}
    step.update(dict.fromkeys(absent))
    state = torch.randn(2, 6, 4, dtype=torch.float64)
    expected_state = state.clone()
    expected = state_update(expected_state, *(step[k] for k in ("u", "delta", "A")),
                            *(step[k].unsqueeze(1) for k in ("B", "C")), step["D"], step["z"], step["delta_bias"], True)
    got = torch.ops.lalm.selective_state_update(state, *(step[k] for k in TENSORS), True, "mamba-ssm")
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(state, expected_state)


def test_a_broken_extension_counts_as_missing(monkeypatch, tmp_path):
    """An extension built against another torch fails at import with OSError, not ImportError;
    mamba-ssm's package can fail with anything (Triton, TileLang)."""
    (tmp_path / "selective_scan_cuda.py").write_text("raise OSError('undefined symbol: _ZN3c10')\n")
    package = tmp_path / "mamba_ssm"
    package.mkdir()
    (package / "__init__.py").write_text("raise RuntimeError('triton: no GPU found')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("selective_scan_cuda", "mamba_ssm"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    scan_cuda.kernels.cache_clear()
    scan_cuda.mamba_ssm_state_update.cache_clear()
    try:
        assert scan_cuda.kernels() is None and not scan_cuda.mamba_ssm_available()
        assert scan_cuda.mamba_ssm_state_update() is None
    finally:
        scan_cuda.kernels.cache_clear()
        scan_cuda.mamba_ssm_state_update.cache_clear()


def test_mamba_ssm_without_its_cuda_extension_is_not_available(monkeypatch):
    """mamba-ssm >= 2.3 installs and imports without `selective_scan_cuda`: only the
    extension's presence makes the kernel available."""
    monkeypatch.setitem(sys.modules, "mamba_ssm", types.ModuleType("mamba_ssm"))
    monkeypatch.setitem(sys.modules, "selective_scan_cuda", None)  # import raises ImportError
    scan_cuda.kernels.cache_clear()
    try:
        assert not scan_cuda.mamba_ssm_available()
    finally:
        scan_cuda.kernels.cache_clear()
