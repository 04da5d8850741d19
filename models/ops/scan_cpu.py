"""The selective scan on CPU: numba kernels, compiled on first use and cached on disk.

Forward: one task per (batch, B/C group, block of LANES channels), run in parallel. Inside a
task the state is a (n, LANES) tile: each time step computes the n*LANES decays exp(dt*A) in one
vectorisable pass (a polynomial exponential for float32, since numba has no vector exp without
Intel's SVML) and then updates the tile and accumulates y lane-wise, so there is no horizontal
reduction and nothing of size (b, d, l, n) is ever built. Inputs are read in blocks of BLOCK steps
so that each channel's row is read contiguously.

Backward: one task per (batch, channel), parallel over a few partitions of those tasks. It
recomputes the states of its channel (l*n scratch per thread), then runs the adjoint recurrence
backwards in time. Gradients shared across channels (B, C) or batches (A, D, delta_bias) are
summed per partition and reduced afterwards, so no two threads write the same element.
"""
from __future__ import annotations

import math

import numba
import numpy as np
import torch
from numba import njit, prange
from numba.core import types
from numba.extending import overload

from models.ops.scan_torch import compute_dtype

LANES = 16  # channels per tile: one AVX-512 register of float32
BLOCK = 64  # time steps read per block

_LOG2E = 1.4426950408889634
_LN2_HI = 0.693145751953125  # ln 2 split so that k*_LN2_HI is exact in float32
_LN2_LO = 1.428606765330187e-06


def exp_into(src, dst, scratch):
    """dst[j] = exp(src[j]) for 1-D arrays; scratch is an int32 array of the same length."""
    dst[:] = np.exp(src)


@overload(exp_into)
def _exp_into_impl(src, dst, scratch):
    if src.dtype != types.float32:

        def exact(src, dst, scratch):
            for j in range(src.shape[0]):
                dst[j] = math.exp(src[j])

        return exact

    def polynomial(src, dst, scratch):
        # exp(x) = 2^k * exp(r), k = round(x / ln 2), |r| <= ln2/2; exp(r) by its degree-7 Taylor
        # polynomial (error < 1e-8 relative), 2^k built in the exponent bits. The clamp keeps 2^k a
        # normal float: below -87 the true value is under 1.2e-38 and contributes nothing.
        scale = scratch.view(np.float32)
        for j in range(src.shape[0]):
            x = min(max(src[j], np.float32(-87.0)), np.float32(88.0))
            k = np.floor(x * np.float32(_LOG2E) + np.float32(0.5))
            r = x - k * np.float32(_LN2_HI) - k * np.float32(_LN2_LO)
            p = np.float32(1.0 / 5040.0)
            p = p * r + np.float32(1.0 / 720.0)
            p = p * r + np.float32(1.0 / 120.0)
            p = p * r + np.float32(1.0 / 24.0)
            p = p * r + np.float32(1.0 / 6.0)
            p = p * r + np.float32(0.5)
            p = p * r + np.float32(1.0)
            dst[j] = p * r + np.float32(1.0)
            scratch[j] = (np.int32(k) + np.int32(127)) << np.int32(23)
        for j in range(src.shape[0]):
            dst[j] *= scale[j]

    return polynomial


@njit(inline="always")
def _softplus(v):
    return v if v > 20.0 else math.log1p(math.exp(v))


@njit(inline="always")
def _sigmoid(v):
    return 1.0 / (1.0 + math.exp(-v))


@njit(parallel=True, fastmath=True, cache=True)
def _forward_kernel(u, delta, A, B, C, D, z, bias, softplus, has_z, y, last):
    """u, delta, y: (b, d, l); z: (b, d, l) or a dummy; A: (d, n); B, C: (b, g, n, l);
    D, bias: (d,) (zeros when absent); last: (b, d, n). All C-contiguous, one dtype."""
    b, d, length = u.shape
    g, n = B.shape[1], A.shape[1]
    per_group = d // g
    tiles = (per_group + LANES - 1) // LANES
    for task in prange(b * g * tiles):
        bi = task // (g * tiles)
        gi = (task // tiles) % g
        c0 = gi * per_group + (task % tiles) * LANES
        width = min(LANES, (gi + 1) * per_group - c0)
        dtype = u.dtype
        # Padded lanes keep dt = 0 and dt*u = 0, so their state stays 0 and is never stored.
        a_tile = np.zeros(n * LANES, dtype)
        for c in range(width):
            for i in range(n):
                a_tile[i * LANES + c] = A[c0 + c, i]
        x = np.zeros(n * LANES, dtype)
        arg = np.empty(n * LANES, dtype)
        decay = np.empty(n * LANES, dtype)
        scratch = np.empty(n * LANES, np.int32)
        dt_blk = np.zeros((BLOCK, LANES), dtype)
        dtu_blk = np.zeros((BLOCK, LANES), dtype)
        b_blk = np.empty((BLOCK, n), dtype)
        c_blk = np.empty((BLOCK, n), dtype)
        y_blk = np.empty((BLOCK, LANES), dtype)
        acc = np.empty(LANES, dtype)
        for t0 in range(0, length, BLOCK):
            steps = min(BLOCK, length - t0)
            for c in range(width):
                ch = c0 + c
                for s in range(steps):
                    v = delta[bi, ch, t0 + s] + bias[ch]
                    if softplus:
                        v = _softplus(v)
                    dt_blk[s, c] = v
                    dtu_blk[s, c] = v * u[bi, ch, t0 + s]
            for i in range(n):
                for s in range(steps):
                    b_blk[s, i] = B[bi, gi, i, t0 + s]
                    c_blk[s, i] = C[bi, gi, i, t0 + s]
            for s in range(steps):
                for i in range(n):
                    for c in range(LANES):
                        arg[i * LANES + c] = dt_blk[s, c] * a_tile[i * LANES + c]
                exp_into(arg, decay, scratch)
                acc[:] = 0.0
                for i in range(n):
                    bv = b_blk[s, i]
                    cv = c_blk[s, i]
                    for c in range(LANES):
                        xv = decay[i * LANES + c] * x[i * LANES + c] + dtu_blk[s, c] * bv
                        x[i * LANES + c] = xv
                        acc[c] += xv * cv
                for c in range(LANES):
                    y_blk[s, c] = acc[c]
            for c in range(width):
                ch = c0 + c
                for s in range(steps):
                    out = y_blk[s, c] + D[ch] * u[bi, ch, t0 + s]
                    if has_z:
                        zv = z[bi, ch, t0 + s]
                        out *= zv * _sigmoid(zv)
                    y[bi, ch, t0 + s] = out
        for c in range(width):
            for i in range(n):
                last[bi, c0 + c, i] = x[i * LANES + c]


@njit(parallel=True, fastmath=True, cache=True)
def _backward_kernel(
    u, delta, A, B, C, D, z, bias, softplus, has_z, dy, dlast,
    du, ddelta, dz, dA_parts, dB_parts, dC_parts, dD_parts, dbias_parts,
):
    """Reverse-time scan. dlast: (b, d, n) (zeros when last_state was not used).
    Outputs du, ddelta, dz: (b, d, l); *_parts: per-partition sums, leading axis = partition."""
    b, d, length = u.shape
    g, n = B.shape[1], A.shape[1]
    per_group = d // g
    parts = dA_parts.shape[0]
    for p in prange(parts):
        states = np.empty((length, n), u.dtype)
        h = np.empty(n, u.dtype)
        for task in range(p * b * d // parts, (p + 1) * b * d // parts):
            bi, ch = task // d, task % d
            gi = ch // per_group
            for i in range(n):
                h[i] = 0.0
            for t in range(length):  # recompute the states of this channel
                dt = delta[bi, ch, t] + bias[ch]
                if softplus:
                    dt = _softplus(dt)
                dtu = dt * u[bi, ch, t]
                for i in range(n):
                    h[i] = math.exp(dt * A[ch, i]) * h[i] + dtu * B[bi, gi, i, t]
                    states[t, i] = h[i]
            for i in range(n):
                h[i] = dlast[bi, ch, i]
            for t in range(length - 1, -1, -1):
                pre_dt = delta[bi, ch, t] + bias[ch]
                dt = _softplus(pre_dt) if softplus else pre_dt
                ut = u[bi, ch, t]
                g_out = dy[bi, ch, t]
                if has_z:
                    scan_y = 0.0
                    for i in range(n):
                        scan_y += states[t, i] * C[bi, gi, i, t]
                    zv = z[bi, ch, t]
                    sig = _sigmoid(zv)
                    dz[bi, ch, t] = g_out * (scan_y + D[ch] * ut) * sig * (1.0 + zv * (1.0 - sig))
                    g_out *= zv * sig
                dD_parts[p, ch] += g_out * ut
                du_t = g_out * D[ch]
                ddt = 0.0
                for i in range(n):
                    h[i] += g_out * C[bi, gi, i, t]  # h = dL/dx_t
                    dC_parts[p, bi, gi, i, t] += g_out * states[t, i]
                    decay = math.exp(dt * A[ch, i])
                    x_prev = states[t - 1, i] if t > 0 else 0.0
                    g_decay = h[i] * x_prev
                    ddt += g_decay * decay * A[ch, i] + h[i] * ut * B[bi, gi, i, t]
                    dA_parts[p, ch, i] += g_decay * decay * dt
                    dB_parts[p, bi, gi, i, t] += h[i] * dt * ut
                    du_t += h[i] * dt * B[bi, gi, i, t]
                    h[i] *= decay  # now the part of dL/dx_{t-1} that flows through x_t
                if softplus:
                    ddt *= _sigmoid(pre_dt)
                ddelta[bi, ch, t] = ddt
                dbias_parts[p, ch] += ddt
                du[bi, ch, t] = du_t


def _arrays(dtype: torch.dtype, *tensors: torch.Tensor) -> list[np.ndarray]:
    return [t.detach().to(dtype).contiguous().numpy() for t in tensors]


def _optional(t: torch.Tensor | None, like: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    return like.new_zeros(shape) if t is None else t


def scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus: bool):
    """Forward on CPU tensors; same contract as `scan_torch.reference_scan` (B, C grouped)."""
    dtype = compute_dtype(u)
    b, d, length = u.shape
    like = u.new_empty(0, dtype=dtype)
    arrays = _arrays(
        dtype, u, delta, A, B, C,
        _optional(D, like, (d,)), _optional(z, like, (1, 1, 1)), _optional(delta_bias, like, (d,)),
    )
    y = torch.empty(b, d, length, dtype=dtype)
    last = torch.empty(b, d, A.shape[1], dtype=dtype)
    _forward_kernel(*arrays[:7], arrays[7], bool(delta_softplus), z is not None, y.numpy(), last.numpy())
    return y.to(u.dtype), last


def scan_backward(dy, dlast, u, delta, A, B, C, D, z, delta_bias, delta_softplus: bool) -> list[torch.Tensor]:
    """Gradients (du, ddelta, dA, dB, dC, dD, dz, ddelta_bias) in the compute dtype, B/C grouped.

    dlast: gradient of last_state (b, d, n) or None. dz is empty when z is None.
    """
    dtype = compute_dtype(u)
    b, d, length = u.shape
    g, n = B.shape[1], A.shape[1]
    like = u.new_empty(0, dtype=dtype)
    parts = max(1, min(numba.get_num_threads(), b * d))
    arrays = _arrays(
        dtype, u, delta, A, B, C,
        _optional(D, like, (d,)), _optional(z, like, (1, 1, 1)), _optional(delta_bias, like, (d,)),
        dy, _optional(dlast, like, (b, d, n)),
    )
    du, ddelta = torch.empty(b, d, length, dtype=dtype), torch.empty(b, d, length, dtype=dtype)
    dz = torch.empty(b, d, length, dtype=dtype) if z is not None else like.new_empty(0)
    dA, dD, dbias = (torch.zeros(parts, d, n, dtype=dtype), torch.zeros(parts, d, dtype=dtype),
                     torch.zeros(parts, d, dtype=dtype))
    dB, dC = torch.zeros(parts, b, g, n, length, dtype=dtype), torch.zeros(parts, b, g, n, length, dtype=dtype)
    _backward_kernel(
        *arrays[:7], arrays[7], bool(delta_softplus), z is not None, arrays[8], arrays[9],
        du.numpy(), ddelta.numpy(), dz.numpy() if z is not None else np.zeros((1, 1, 1), arrays[0].dtype),
        dA.numpy(), dB.numpy(), dC.numpy(), dD.numpy(), dbias.numpy(),
    )
    return [du, ddelta, dA.sum(0), dB.sum(0), dC.sum(0), dD.sum(0), dz, dbias.sum(0)]
