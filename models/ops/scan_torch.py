"""Selective scan in plain PyTorch: the sequential reference and a vectorised fallback.

Both take mamba-ssm's layouts with B, C already grouped (see `selective_scan`):
    u, delta, z: (b, d, l)   A: (d, n)   B, C: (b, g, n, l)   D, delta_bias: (d,)
and return (y (b, d, l) in u's dtype, last_state (b, d, n) in the compute dtype). The compute
dtype is float64 for float64 input and float32 otherwise, as in mamba-ssm's kernels. Both are
differentiable with ordinary autograd, which is how their backward is obtained.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# The vectorised scan materialises (b, d, chunk, n) tensors; this bounds one of them.
CHUNK_ELEMENTS = 1 << 24


def compute_dtype(u: torch.Tensor) -> torch.dtype:
    return torch.float64 if u.dtype == torch.float64 else torch.float32


def discretised_step(delta: torch.Tensor, delta_bias: torch.Tensor | None, delta_softplus: bool) -> torch.Tensor:
    """dt = softplus?(delta + bias), same shape as delta (bias broadcast over the last axis)."""
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    return F.softplus(delta) if delta_softplus else delta


def apply_skip_and_gate(
    y: torch.Tensor, u: torch.Tensor, D: torch.Tensor | None, z: torch.Tensor | None
) -> torch.Tensor:
    """y + D*u, then times silu(z): the scan's output stage, (b, d, l) in and out."""
    if D is not None:
        y = y + u * D[:, None]
    if z is not None:
        y = y * F.silu(z)
    return y


def _as_compute(dtype: torch.dtype, *tensors: torch.Tensor | None) -> list[torch.Tensor | None]:
    return [None if t is None else t.to(dtype) for t in tensors]


def reference_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus: bool):
    """Sequential scan, one time step at a time: the definition the fast paths are tested against."""
    dtype = compute_dtype(u)
    uc, delta, A, B, C, D, zc, delta_bias = _as_compute(dtype, u, delta, A, B, C, D, z, delta_bias)
    b, d, length = uc.shape
    group = torch.arange(d, device=uc.device) // (d // B.shape[1])  # channel -> its B/C group
    dt = discretised_step(delta, delta_bias, delta_softplus)
    dtu = dt * uc
    x = uc.new_zeros(b, d, A.shape[1])
    ys = []
    for t in range(length):
        x = torch.exp(dt[:, :, t, None] * A) * x + dtu[:, :, t, None] * B[:, group, :, t]
        ys.append((x * C[:, group, :, t]).sum(-1))
    y = apply_skip_and_gate(torch.stack(ys, dim=-1), uc, D, zc)
    return y.to(u.dtype), x


def _inclusive_scan(decay: torch.Tensor, inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Hillis-Steele scan of x_t = decay_t * x_{t-1} + inp_t along dim 2 from x_{-1} = 0.

    Returns (cumulative decay prod_{s<=t} decay_s, x_t); log2(steps) passes, each elementwise.
    """
    steps = decay.shape[2]
    shift = 1
    while shift < steps:
        inp = torch.cat([inp[:, :, :shift], decay[:, :, shift:] * inp[:, :, :-shift] + inp[:, :, shift:]], dim=2)
        decay = torch.cat([decay[:, :, :shift], decay[:, :, shift:] * decay[:, :, :-shift]], dim=2)
        shift *= 2
    return decay, inp


def chunked_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus: bool):
    """Vectorised scan: time in chunks, each chunk a parallel prefix scan, state carried between.

    Work per chunk is O(chunk * log chunk) elementwise on (b, d, chunk, n) tensors, which suits
    a GPU without mamba-ssm; memory is bounded by CHUNK_ELEMENTS, not by the sequence length.
    """
    dtype = compute_dtype(u)
    uc, delta, A, B, C, D, zc, delta_bias = _as_compute(dtype, u, delta, A, B, C, D, z, delta_bias)
    b, d, length = uc.shape
    g, n = B.shape[1], A.shape[1]
    dt = discretised_step(delta, delta_bias, delta_softplus)
    dtu = dt * uc
    chunk = max(1, min(length, CHUNK_ELEMENTS // max(1, b * d * n)))
    x = uc.new_zeros(b, d, n)
    ys = []
    for start in range(0, length, chunk):
        sl = slice(start, start + chunk)
        steps = dtu[:, :, sl].shape[2]
        decay = torch.exp(dt[:, :, sl, None] * A[:, None, :])  # (b, d, steps, n)
        # (b, g, d/g, steps, n) view so one B row serves every channel of its group.
        b_rows = B[:, :, None, :, sl].transpose(-1, -2)
        inp = (dtu[:, :, sl, None].reshape(b, g, d // g, steps, 1) * b_rows).reshape(b, d, steps, n)
        cum_decay, states = _inclusive_scan(decay, inp)
        states = states + cum_decay * x[:, :, None, :]
        c_rows = C[:, :, None, :, sl].transpose(-1, -2)
        ys.append((states.reshape(b, g, d // g, steps, n) * c_rows).sum(-1).reshape(b, d, steps))
        x = states[:, :, -1].clone()  # a fresh tensor, not a view into this chunk
    y = apply_skip_and_gate(torch.cat(ys, dim=-1), uc, D, zc)
    return y.to(u.dtype), x


def state_update(state, u, delta, A, B, C, D, z, delta_bias, delta_softplus: bool) -> torch.Tensor:
    """One decode step: state (b, d, n) is updated in place; returns y (b, d) in u's dtype.

    u, delta, z: (b, d)   B, C: (b, g, n)   A: (d, n)   D, delta_bias: (d,)
    """
    dtype = compute_dtype(u)
    uc, delta, A, B, C, D, zc, delta_bias = _as_compute(dtype, u, delta, A, B, C, D, z, delta_bias)
    d, g = uc.shape[1], B.shape[1]
    group = torch.arange(d, device=uc.device) // (d // g)
    dt = discretised_step(delta[..., None], delta_bias, delta_softplus)[..., 0]
    x = torch.exp(dt[..., None] * A) * state.to(dtype) + (dt * uc)[..., None] * B[:, group]
    state.copy_(x)
    y = (x * C[:, group]).sum(-1)[..., None]  # (b, d, 1): one step of the (b, d, l) output stage
    z_step = None if zc is None else zc[..., None]
    return apply_skip_and_gate(y, uc[..., None], D, z_step)[..., 0].to(u.dtype)
