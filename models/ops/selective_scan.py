"""The selective scan (Mamba's S6 recurrence) as one registered PyTorch op, `lalm::selective_scan`.

Semantics and layouts are mamba-ssm's `selective_scan_fn`:
    u, delta, z: (b, d, l)     A: (d, n), real     D, delta_bias: (d,)
    B, C: (b, n, l), or grouped (b, g, n, l) where the d channels split into g equal groups
    dt_t = softplus?(delta_t + delta_bias)
    x_t  = exp(dt_t * A) * x_{t-1} + dt_t * u_t * B_t          x_{-1} = 0, x: (b, d, n)
    y_t  = <x_t, C_t> + D * u_t,  then y_t * silu(z_t)
    returns y (b, d, l) in u's dtype, plus last_state x_{l-1} (b, d, n) when asked.

Being one opaque op (instead of a Python loop over time) is what makes it fast on CPU and
countable: `torch.utils.flop_counter.FlopCounterMode` uses the formula registered here, and
fvcore uses `fvcore_handles()` via `FlopCountAnalysis(...).set_op_handle(**fvcore_handles())`.

FLOPs (`scan_flops`, also used by `models.analytic`): per element of the (b, d, l, n) grid
3 for discretisation (dt*A, its exponential, (dt*u)*B), 2 for the state update (one multiply-add)
and 2 for the output contraction (one multiply-add); per element of (b, d, l) 1 for dt*u, 2 for
the D skip, 3 for the z gate, 1 for delta_bias and 2 for softplus. One multiply-add = 2 FLOPs,
an exponential/log/sigmoid = 1. fvcore counts one multiply-add as one "flop", so its handles
report half of `scan_flops`, consistent with fvcore's own matmul counts.

Backends (`resolve_backend` maps a setting to the name of what runs):
    reference  sequential loop in PyTorch (float64-capable; the tests' ground truth)
    numba      compiled CPU kernel, parallel over batch x channels, never builds (b, d, l, n)
    mamba-ssm  mamba-ssm's CUDA kernel (when its extension `selective_scan_cuda` imports)
    torch      vectorised PyTorch (chunked prefix scan): CUDA without mamba-ssm, other devices
The backward is a reverse-time scan, its own op with a FLOP formula for `numba`
(`lalm::selective_scan_cpu_backward`) and `mamba-ssm` (`lalm::selective_scan_cuda_backward`);
`reference` and `torch` differentiate their PyTorch recomputation. For `mamba-ssm` the forward
op also returns the kernel's residuals (per-chunk states, the output before the gate; empty for
the other backends), so the backward kernel runs on them without running the forward again.
That kernel has no gradient for last_state: when one flows back, the backward recomputes with
`torch` instead.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor
from torch.utils.flop_counter import register_flop_formula

from models.errors import InputError
from models.ops import scan_cpu, scan_cuda, scan_torch
from models.ops.scan_flops import scan_backward_flops, scan_flops

__all__ = [
    "SCAN_SETTINGS",
    "fvcore_handles",
    "resolve_backend",
    "scan_backward_flops",
    "scan_flops",
    "selective_scan",
    "selective_state_update",
]

SCAN_SETTINGS = ("auto", "reference", "cpu", "cuda", "hf")
# 'hf' is not a scan implementation: it tells `models.ops.hf_mamba` to leave transformers' own
# path; other callers of the op (DASS) then scan as with 'auto'.
# The backends whose forward returns (y, last_state); mamba-ssm's also returns its residuals.
_FORWARD: dict[str, Callable] = {
    "reference": scan_torch.reference_scan,
    "numba": scan_cpu.scan,
    "torch": scan_torch.chunked_scan,
}


def resolve_backend(backend: str, device: torch.device | str) -> str:
    """Which implementation a setting (auto|reference|cpu|cuda|hf) runs on `device`.

    auto: the numba kernel on CPU, mamba-ssm on CUDA when its kernel imports (else vectorised torch),
    vectorised torch elsewhere. Returns one of reference|numba|mamba-ssm|torch|hf.
    """
    kind = torch.device(device).type
    if backend not in SCAN_SETTINGS:
        raise InputError(f"unknown scan backend {backend!r}; valid: {', '.join(SCAN_SETTINGS)}")
    if backend in ("reference", "hf"):
        return backend
    if backend == "cpu" and kind != "cpu":
        raise InputError(f"scan backend 'cpu' runs on CPU tensors, but the device is {kind}")
    if backend == "cuda" and kind != "cuda":
        raise InputError(f"scan backend 'cuda' needs a CUDA device, but the device is {kind}")
    if kind == "cpu":
        return "numba"
    if kind == "cuda" and scan_cuda.mamba_ssm_available():
        return "mamba-ssm"
    return "torch"


def _op_backend(backend: str, device: torch.device) -> str:
    """The implementation the op runs. 'hf' only changes the Mamba LM (transformers has no
    scan op of its own to fall back to), so any other scan under 'hf' runs as 'auto'."""
    return resolve_backend("auto" if backend == "hf" else backend, device)


def _grouped(t: Tensor) -> Tensor:
    """B or C as (b, g, n, l); the ungrouped (b, n, l) is one group."""
    return t.unsqueeze(1) if t.dim() == 3 else t


# ---------------------------------------------------------------------------------------------
# The forward op


@torch.library.custom_op("lalm::selective_scan", mutates_args=())
def _scan_op(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None,
    z: Tensor | None,
    delta_bias: Tensor | None,
    delta_softplus: bool,
    return_last_state: bool,
    backend: str,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(y, last_state, chunk_states, pre_gate); an empty tensor stands for one not asked or not
    made (only mamba-ssm makes the last two: the residuals its backward kernel reads)."""
    if backend == "mamba-ssm":
        y, last_state, chunk_states, pre_gate = scan_cuda.forward(
            u, delta, A, _grouped(B), _grouped(C), D, z, delta_bias, delta_softplus)
    else:
        y, last_state = _FORWARD[backend](u, delta, A, _grouped(B), _grouped(C), D, z, delta_bias, delta_softplus)
        chunk_states, pre_gate = u.new_empty(0), u.new_empty(0)  # two tensors: outputs may not alias
    return y, (last_state if return_last_state else u.new_empty(0)), chunk_states, pre_gate


@_scan_op.register_fake
def _scan_fake(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, backend):
    """Shapes, dtypes and strides of what each backend returns: all contiguous (the CUDA path
    copies its strided last state, see `scan_cuda.last_state`)."""
    b, d, l = u.shape
    n = A.shape[1]
    last_shape = (b, d, n) if return_last_state else (0,)
    y, last_state = u.new_empty(u.shape), u.new_empty(last_shape, dtype=scan_torch.compute_dtype(u))
    if backend != "mamba-ssm":
        return y, last_state, u.new_empty(0), u.new_empty(0)
    chunk_states = u.new_empty(scan_cuda.chunk_states_shape(b, d, l, n), dtype=torch.float32)
    return y, last_state, chunk_states, u.new_empty(u.shape if z is not None else (0,))


# ---------------------------------------------------------------------------------------------
# Autograd

def _setup_context(ctx, inputs, output) -> None:
    *tensors, delta_softplus, return_last_state, backend = inputs
    _, _, chunk_states, pre_gate = output
    ctx.mark_non_differentiable(chunk_states, pre_gate)
    # An output nobody differentiates gets None, not zeros: the CUDA kernel, which has no
    # last_state gradient, can then be used whenever last_state's gradient is absent.
    ctx.set_materialize_grads(False)
    ctx.save_for_backward(*tensors, chunk_states, pre_gate)
    ctx.delta_softplus, ctx.return_last_state, ctx.backend = delta_softplus, return_last_state, backend


def _grads_by_recompute(forward: Callable, ctx, inputs: list, dy: Tensor, dlast: Tensor | None
                        ) -> list[Tensor | None]:
    """Gradients of the saved `inputs` by differentiating `forward` (a PyTorch implementation)."""
    with torch.enable_grad():
        leaves = [
            None if t is None else t.detach().requires_grad_(needs) for t, needs in zip(inputs, ctx.needs_input_grad)
        ]
        u, delta, A, B, C, D, z, delta_bias = leaves
        y, last_state = forward(u, delta, A, _grouped(B), _grouped(C), D, z, delta_bias, ctx.delta_softplus)
        outputs, output_grads = [y], [dy]
        if dlast is not None:
            outputs.append(last_state)
            output_grads.append(dlast)
        wanted = [t for t in leaves if t is not None and t.requires_grad]
        found = iter(torch.autograd.grad(outputs, wanted, output_grads, allow_unused=True))
    return [next(found) if t is not None and t.requires_grad else None for t in leaves]


def _backward(ctx, dy: Tensor | None, dlast: Tensor | None, _chunk_states_grad, _pre_gate_grad):
    # ctx.saved_tensors is read once: activation checkpointing allows each unpack only once.
    *inputs, chunk_states, pre_gate = ctx.saved_tensors
    if dy is None:  # only last_state is differentiated
        dy = torch.zeros_like(inputs[0])
    if not ctx.return_last_state:
        dlast = None
    if ctx.backend == "numba":
        grads = _numba_backward(ctx, inputs, dy, dlast)
    elif ctx.backend == "mamba-ssm" and dlast is None:
        grads = _cuda_backward(ctx, inputs, dy, chunk_states, pre_gate)
    else:  # the reference, the vectorised fallback, or a last_state gradient the CUDA kernel lacks
        forward = scan_torch.chunked_scan if ctx.backend == "mamba-ssm" else _FORWARD[ctx.backend]
        grads = _grads_by_recompute(forward, ctx, inputs, dy, dlast)
    return (*grads, None, None, None)  # no gradients for delta_softplus, return_last_state, backend


def _typed_grads(grads: list[Tensor], inputs: list, ctx) -> list[Tensor | None]:
    """A backward op's gradients in the shapes and dtypes of the inputs that want them."""
    return [
        None if t is None or not needs else grad.reshape(t.shape).to(t.dtype)
        for grad, t, needs in zip(grads, inputs, ctx.needs_input_grad)
    ]


torch.library.register_autograd("lalm::selective_scan", _backward, setup_context=_setup_context)


@torch.library.custom_op("lalm::selective_scan_cpu_backward", mutates_args=())
def _cpu_backward_op(
    dy: Tensor,
    dlast: Tensor | None,
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None,
    z: Tensor | None,
    delta_bias: Tensor | None,
    delta_softplus: bool,
) -> list[Tensor]:
    """(du, ddelta, dA, dB, dC, dD, dz, ddelta_bias) in the compute dtype; empty for absent inputs."""
    return scan_cpu.scan_backward(dy, dlast, u, delta, A, B, C, D, z, delta_bias, delta_softplus)


@_cpu_backward_op.register_fake
def _cpu_backward_fake(dy, dlast, u, delta, A, B, C, D, z, delta_bias, delta_softplus):
    dtype = scan_torch.compute_dtype(u)
    shapes = (u.shape, u.shape, A.shape, B.shape, C.shape, (u.shape[1],), u.shape, (u.shape[1],))
    present = (u, delta, A, B, C, D, z, delta_bias)
    return [u.new_empty(shape if t is not None else (0,), dtype=dtype) for shape, t in zip(shapes, present)]


def _numba_backward(ctx, inputs: list, dy: Tensor, dlast: Tensor | None) -> list[Tensor | None]:
    u, delta, A, B, C, D, z, delta_bias = inputs
    grads = _cpu_backward_op(dy, dlast, u, delta, A, _grouped(B), _grouped(C), D, z, delta_bias, ctx.delta_softplus)
    return _typed_grads(grads, inputs, ctx)


@torch.library.custom_op("lalm::selective_scan_cuda_backward", mutates_args=())
def _cuda_backward_op(
    dy: Tensor,
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None,
    z: Tensor | None,
    delta_bias: Tensor | None,
    chunk_states: Tensor,
    pre_gate: Tensor,
    delta_softplus: bool,
) -> list[Tensor]:
    """(du, ddelta, dA, dB, dC, dD, dz, ddelta_bias) from the forward's residuals; B, C grouped.

    du, ddelta, dB, dC, dz in u's dtype, dA, dD, ddelta_bias in float32; empty for absent inputs.
    """
    return scan_cuda.backward(dy, u, delta, A, B, C, D, z, delta_bias, chunk_states, pre_gate, delta_softplus)


@_cuda_backward_op.register_fake
def _cuda_backward_fake(dy, u, delta, A, B, C, D, z, delta_bias, chunk_states, pre_gate, delta_softplus):
    shapes = (u.shape, u.shape, A.shape, B.shape, C.shape, (u.shape[1],), u.shape, (u.shape[1],))
    dtypes = (u.dtype, u.dtype, torch.float32, u.dtype, u.dtype, torch.float32, u.dtype, torch.float32)
    present = (u, delta, A, B, C, D, z, delta_bias)
    return [
        u.new_empty(shape if t is not None else (0,), dtype=dtype) for shape, dtype, t in zip(shapes, dtypes, present)
    ]


def _cuda_backward(ctx, inputs: list, dy: Tensor, chunk_states: Tensor, pre_gate: Tensor) -> list[Tensor | None]:
    u, delta, A, B, C, D, z, delta_bias = inputs
    grads = _cuda_backward_op(dy, u, delta, A, _grouped(B), _grouped(C), D, z, delta_bias, chunk_states, pre_gate,
                              ctx.delta_softplus)
    return _typed_grads(grads, inputs, ctx)


# ---------------------------------------------------------------------------------------------
# FLOP counting


def _has(arg) -> bool:
    return arg is not None


@register_flop_formula(torch.ops.lalm.selective_scan)
def _scan_flop_formula(u, delta, A, B, C, D, z, delta_bias, delta_softplus, *args, out_shape=None, **kwargs) -> int:
    """FlopCounterMode formula (it passes shapes for tensors and None for absent inputs)."""
    b, d, l = u
    return scan_flops(b, d, l, A[1], _has(D), _has(z), has_delta_bias=_has(delta_bias), delta_softplus=delta_softplus)


def _traced_shape(value) -> list[int] | None:
    """Shape of a TorchScript graph value, or None when it is the constant None."""
    return None if isinstance(value.type(), torch._C.NoneType) else value.type().sizes()


# The train-cost model imported the formula under its former private name.
_cpu_backward_flops = scan_backward_flops


@register_flop_formula(torch.ops.lalm.selective_scan_cpu_backward)
def _cpu_backward_flop_formula(dy, dlast, u, delta, A, B, C, D, z, delta_bias, delta_softplus, *args, out_shape=None,
                               **kwargs) -> int:
    b, d, l = u
    return scan_backward_flops(b, d, l, A[1], _has(z), delta_softplus)


@register_flop_formula(torch.ops.lalm.selective_scan_cuda_backward)
def _cuda_backward_flop_formula(dy, u, delta, A, B, C, D, z, delta_bias, chunk_states, pre_gate, delta_softplus,
                                *args, out_shape=None, **kwargs) -> int:
    """The CUDA kernel recomputes the states from its per-chunk residuals and runs the same
    adjoint recurrence as the CPU kernel, so the same closed form counts it."""
    b, d, l = u
    return scan_backward_flops(b, d, l, A[1], _has(z), delta_softplus)


def _fvcore_scan(inputs: Sequence, outputs: Sequence) -> int:
    """fvcore handle for lalm::selective_scan (multiply-adds, fvcore's unit: scan_flops / 2)."""
    b, d, l = _traced_shape(inputs[0])
    n = _traced_shape(inputs[2])[1]
    D, z, delta_bias = (_traced_shape(v) is not None for v in inputs[5:8])
    softplus = bool(inputs[8].toIValue())
    return scan_flops(b, d, l, n, D, z, has_delta_bias=delta_bias, delta_softplus=softplus) // 2


def _fvcore_state_update(inputs: Sequence, outputs: Sequence) -> int:
    """fvcore handle for lalm::selective_state_update (one step of the scan, in multiply-adds)."""
    b, d, n = _traced_shape(inputs[0])
    D, z, delta_bias = (_traced_shape(v) is not None for v in inputs[6:9])
    softplus = bool(inputs[9].toIValue())
    return scan_flops(b, d, 1, n, D, z, has_delta_bias=delta_bias, delta_softplus=softplus) // 2


def fvcore_handles() -> dict[str, Callable]:
    """Op name -> fvcore handle, for `FlopCountAnalysis(...).set_op_handle(**fvcore_handles())`."""
    return {"lalm::selective_scan": _fvcore_scan, "lalm::selective_state_update": _fvcore_state_update}


# ---------------------------------------------------------------------------------------------
# Public API


def _check(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D, z, delta_bias) -> None:
    if u.dim() != 3 or u.shape[-1] < 1:
        raise InputError(f"selective_scan: u must be (batch, channels, length >= 1), got {tuple(u.shape)}")
    b, d, l = u.shape
    if delta.shape != u.shape or (z is not None and z.shape != u.shape):
        raise InputError(f"selective_scan: delta and z must match u's shape {tuple(u.shape)}")
    if A.dim() != 2 or A.shape[0] != d or A.is_complex():
        raise InputError(f"selective_scan: A must be real (channels={d}, state), got {tuple(A.shape)} {A.dtype}")
    n = A.shape[1]
    for name, t in (("B", B), ("C", C)):
        g = t.shape[1] if t.dim() == 4 else 1
        if tuple(t.shape) not in ((b, n, l), (b, g, n, l)) or d % g:
            raise InputError(
                f"selective_scan: {name} must be (b, n, l) or (b, g, n, l) with g dividing d={d}, "
                f"got {tuple(t.shape)} for u {tuple(u.shape)} and n={n}"
            )
    for name, t in (("D", D), ("delta_bias", delta_bias)):
        if t is not None and tuple(t.shape) != (d,):
            raise InputError(f"selective_scan: {name} must be ({d},), got {tuple(t.shape)}")


def selective_scan(
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    backend: str = "auto",
) -> Tensor | tuple[Tensor, Tensor]:
    """y (b, d, l), or (y, last_state (b, d, n)) when `return_last_state` (mamba-ssm's contract).

    Shapes are in the module docstring; `backend` is a setting for `resolve_backend`.
    """
    _check(u, delta, A, B, C, D, z, delta_bias)
    name = _op_backend(backend, u.device)
    y, last_state, _, _ = _scan_op(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, name)
    return (y, last_state) if return_last_state else y


# ---------------------------------------------------------------------------------------------
# One decode step


@torch.library.custom_op("lalm::selective_state_update", mutates_args=("state",))
def _state_update_op(
    state: Tensor,
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None,
    z: Tensor | None,
    delta_bias: Tensor | None,
    delta_softplus: bool,
    backend: str,
) -> Tensor:
    mamba_update = scan_cuda.mamba_ssm_state_update() if backend == "mamba-ssm" else None
    # The Triton wrapper reads a (b, g, n) B as one group per head of a multi-head state: grouped
    # B and C take the PyTorch step.
    if mamba_update is not None and B.dim() == 2:
        return scan_cuda.state_update(mamba_update, state, u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    # One step is b*d*n elements: vectorised PyTorch is as fast as a kernel call here.
    grouped = [t.unsqueeze(1) if t.dim() == 2 else t for t in (B, C)]
    return scan_torch.state_update(state, u, delta, A, *grouped, D, z, delta_bias, delta_softplus)


@_state_update_op.register_fake
def _state_update_fake(state, u, delta, A, B, C, D, z, delta_bias, delta_softplus, backend):
    return u.new_empty(u.shape)


@register_flop_formula(torch.ops.lalm.selective_state_update)
def _state_update_flop_formula(state, u, delta, A, B, C, D, z, delta_bias, delta_softplus, *args, out_shape=None,
                               **kwargs) -> int:
    b, d, n = state
    return scan_flops(b, d, 1, n, _has(D), _has(z), has_delta_bias=_has(delta_bias), delta_softplus=delta_softplus)


def selective_state_update(
    state: Tensor,
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None = None,
    z: Tensor | None = None,
    delta_bias: Tensor | None = None,
    delta_softplus: bool = False,
    backend: str = "auto",
) -> Tensor:
    """One step of the scan for decoding: updates state (b, d, n) in place and returns y (b, d).

    u, delta, z: (b, d)   B, C: (b, n) or (b, g, n)   A: (d, n)   D, delta_bias: (d,)
    """
    return _state_update_op(state, u, delta, A, B, C, D, z, delta_bias, delta_softplus, _op_backend(backend, u.device))
