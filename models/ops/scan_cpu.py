"""The selective scan on CPU: numba kernels, compiled on first use and cached on disk.

The kernels are plain (non-parallel) numba functions that release the GIL; `_run` splits their
tasks over a thread pool of `torch.get_num_threads()` threads, which keeps compilation short and
makes the thread count follow torch's setting.

Forward: one task per (batch, B/C group, tile of LANES channels). Inside a task the state is an
(n, LANES) tile: each time step computes the n*LANES decays exp(dt*A) in one vectorisable pass
(a polynomial exponential for float32, since numba has no vector exp without Intel's SVML), then
updates the tile and accumulates y lane-wise, so there is no horizontal reduction and nothing of
size (b, d, l, n) is ever built. Time is processed in blocks of BLOCK steps: per channel row, a
contiguous pass computes dt = softplus(delta + bias) on the way in and (y + D*u) * silu(z) on
the way out, so the per-(b, d, l) stages cost no extra pass over memory.

Backward: one task per (batch, channel). It recomputes the states of its channel (l*n scratch
per thread), then runs the adjoint recurrence backwards in time. Gradients shared across
channels (B, C) or batches (A) are summed per range of tasks and reduced afterwards, so no two
threads write the same element. Softplus, skip and gate are differentiated in PyTorch around it.
"""
from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import torch
import torch.nn.functional as F
from numba import njit
from numba.core import types
from numba.extending import overload

from models.ops.scan_torch import compute_dtype

LANES = 64  # channels per tile (a compile-time 64 lets LLVM vectorise and unroll the lane loops)
BLOCK = 256  # time steps per block: long contiguous row reads, block buffers fit in L2

# error_model="numpy": division without Python's ZeroDivisionError check, whose branch would
# keep LLVM from vectorising every loop that divides.
_JIT = dict(fastmath=True, error_model="numpy")

_LOG2E = 1.4426950408889634
_LN2_HI = 0.693145751953125  # ln 2 split so that k*_LN2_HI is exact in float32
_LN2_LO = 1.428606765330187e-06


def exp_into(src, dst, scratch):
    """dst[j] = exp(src[j]) for 1-D arrays; scratch is an int32 array of the same length.

    The three must not overlap: LLVM vectorises the loops only after a runtime check that they
    do not, and runs the scalar version when they do."""
    dst[:] = np.exp(src)


@overload(exp_into, jit_options=_JIT)
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


def softplus_into(src, dst, tmp, scratch):
    """dst[j] = log(1 + exp(src[j])) for 1-D arrays; tmp (float) and scratch (int32) have the same
    length. No two may overlap (see `exp_into`)."""
    dst[:] = np.logaddexp(0.0, src)


@overload(softplus_into, jit_options=_JIT)
def _softplus_into_impl(src, dst, tmp, scratch):
    if src.dtype != types.float32:

        def exact(src, dst, tmp, scratch):
            for j in range(src.shape[0]):
                v = src[j]
                dst[j] = v if v > 30.0 else math.log1p(math.exp(v))

        return exact

    def series(src, dst, tmp, scratch):
        # softplus(v) = max(v, 0) + log1p(w), w = exp(-|v|) in (0, 1]; log1p(w) = 2 atanh(s) with
        # s = w / (2 + w) in (0, 1/3], summed to s^13 (error < 5e-9). Vectorises, unlike log1p.
        for j in range(src.shape[0]):
            tmp[j] = -abs(src[j])
        exp_into(tmp, dst, scratch)
        for j in range(src.shape[0]):
            w = dst[j]
            s = w / (np.float32(2.0) + w)
            s2 = s * s
            p = np.float32(1.0 / 13.0)
            p = p * s2 + np.float32(1.0 / 11.0)
            p = p * s2 + np.float32(1.0 / 9.0)
            p = p * s2 + np.float32(1.0 / 7.0)
            p = p * s2 + np.float32(1.0 / 5.0)
            p = p * s2 + np.float32(1.0 / 3.0)
            p = p * s2 + np.float32(1.0)
            dst[j] = max(src[j], np.float32(0.0)) + np.float32(2.0) * s * p

    return series


@njit(**_JIT, nogil=True, cache=True)
def _forward_kernel(part, first, stop, u, delta, A, B, C, D, z, bias, softplus, has_z, y, last):
    """Tasks [first, stop) of b * g * tiles. u, delta, y: (b, d, l); z: (b, d, l) (unused
    without has_z); A: (d, n); B, C: (b, g, n, l); D, bias: (d,) (zeros when absent);
    last: (b, d, n). C-contiguous, one dtype."""
    b, d, length = u.shape
    g, n = B.shape[1], A.shape[1]
    per_group = d // g
    tiles = (per_group + LANES - 1) // LANES
    for task in range(first, stop):
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
        scratch = np.empty(max(n * LANES, BLOCK), np.int32)
        row = np.empty(BLOCK, dtype)
        tmp = np.empty(BLOCK, dtype)
        tmp2 = np.empty(BLOCK, dtype)
        dt_blk = np.zeros((BLOCK, LANES), dtype)
        dtu_blk = np.zeros((BLOCK, LANES), dtype)
        b_blk = np.empty((BLOCK, n), dtype)
        c_blk = np.empty((BLOCK, n), dtype)
        y_blk = np.empty((BLOCK, LANES), dtype)
        for t0 in range(0, length, BLOCK):
            steps = min(BLOCK, length - t0)
            # Load: per channel row, dt = softplus?(delta + bias), transposed into the tile.
            for c in range(width):
                ch = c0 + c
                u_row = u[bi, ch, t0:t0 + steps]
                delta_row = delta[bi, ch, t0:t0 + steps]
                for s in range(steps):
                    row[s] = delta_row[s] + bias[ch]
                if softplus:
                    softplus_into(row[:steps], tmp[:steps], tmp2[:steps], scratch[:steps])
                    row, tmp = tmp, row
                for s in range(steps):
                    dt_blk[s, c] = row[s]
                    dtu_blk[s, c] = row[s] * u_row[s]
            for i in range(n):
                for s in range(steps):
                    b_blk[s, i] = B[bi, gi, i, t0 + s]
                    c_blk[s, i] = C[bi, gi, i, t0 + s]
            # Scan: all lanes and states of one step at a time.
            for s in range(steps):
                for i in range(n):
                    for c in range(LANES):
                        arg[i * LANES + c] = dt_blk[s, c] * a_tile[i * LANES + c]
                exp_into(arg, decay, scratch[:n * LANES])
                for c in range(LANES):
                    y_blk[s, c] = 0.0
                for i in range(n):
                    bv = b_blk[s, i]
                    cv = c_blk[s, i]
                    for c in range(LANES):
                        xv = decay[i * LANES + c] * x[i * LANES + c] + dtu_blk[s, c] * bv
                        x[i * LANES + c] = xv
                        y_blk[s, c] += xv * cv
            # Store: per channel row, (y + D*u) * silu(z).
            for c in range(width):
                ch = c0 + c
                u_row = u[bi, ch, t0:t0 + steps]
                y_row = y[bi, ch, t0:t0 + steps]
                for s in range(steps):
                    row[s] = y_blk[s, c] + D[ch] * u_row[s]
                if has_z:
                    z_row = z[bi, ch, t0:t0 + steps]
                    for s in range(steps):
                        tmp[s] = -z_row[s]
                    exp_into(tmp[:steps], tmp2[:steps], scratch[:steps])
                    for s in range(steps):
                        row[s] *= z_row[s] / (1.0 + tmp2[s])
                for s in range(steps):
                    y_row[s] = row[s]
        for c in range(width):
            for i in range(n):
                last[bi, c0 + c, i] = x[i * LANES + c]


@njit(**_JIT, nogil=True, cache=True)
def _backward_kernel(part, first, stop, u, dt, A, B, C, dy, dlast, y, du, ddt, dA_parts, dB_parts, dC_parts):
    """Channels [first, stop) of b*d: the reverse-time scan of the core recurrence (dt given, no
    skip or gate). dy: gradient of y; dlast: of the last state (zeros when unused). Writes y
    (recomputed), du, ddt: (b, d, l) and adds this range's sums into *_parts[part]."""
    b, d, length = u.shape
    g, n = B.shape[1], A.shape[1]
    per_group = d // g
    states = np.empty((length, n), u.dtype)
    h = np.empty(n, u.dtype)
    for task in range(first, stop):
        bi, ch = task // d, task % d
        gi = ch // per_group
        for i in range(n):
            h[i] = 0.0
        for t in range(length):  # recompute the states of this channel
            dtu = dt[bi, ch, t] * u[bi, ch, t]
            y_t = 0.0
            for i in range(n):
                h[i] = math.exp(dt[bi, ch, t] * A[ch, i]) * h[i] + dtu * B[bi, gi, i, t]
                states[t, i] = h[i]
                y_t += h[i] * C[bi, gi, i, t]
            y[bi, ch, t] = y_t
        for i in range(n):
            h[i] = dlast[bi, ch, i]
        for t in range(length - 1, -1, -1):
            dt_t, u_t, g_out = dt[bi, ch, t], u[bi, ch, t], dy[bi, ch, t]
            du_t = 0.0
            ddt_t = 0.0
            for i in range(n):
                h[i] += g_out * C[bi, gi, i, t]  # h = dL/dx_t
                dC_parts[part, bi, gi, i, t] += g_out * states[t, i]
                decay = math.exp(dt_t * A[ch, i])
                x_prev = states[t - 1, i] if t > 0 else 0.0
                g_decay = h[i] * x_prev
                ddt_t += g_decay * decay * A[ch, i] + h[i] * u_t * B[bi, gi, i, t]
                dA_parts[part, ch, i] += g_decay * decay * dt_t
                dB_parts[part, bi, gi, i, t] += h[i] * dt_t * u_t
                du_t += h[i] * dt_t * B[bi, gi, i, t]
                h[i] *= decay  # now the part of dL/dx_{t-1} that flows through x_t
            ddt[bi, ch, t] = ddt_t
            du[bi, ch, t] = du_t


def _arrays(dtype: torch.dtype, *tensors: torch.Tensor) -> list[np.ndarray]:
    return [t.detach().to(dtype).contiguous().numpy() for t in tensors]


@functools.cache
def _pool(pid: int, threads: int) -> ThreadPoolExecutor:
    """One pool per process: a forked child inherits the parent's pool object but not its
    threads, and would wait forever on it."""
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="selective-scan")


def _parts(tasks: int) -> int:
    """How many ranges to split `tasks` into: a few per thread torch may use (so the harness's
    thread setting holds), so that a thread slowed by a busy neighbour takes fewer of them."""
    threads = torch.get_num_threads()
    return 1 if threads == 1 else max(1, min(tasks, 4 * threads))


def _run(kernel, tasks: int, parts: int, *args) -> None:
    """kernel(part, first, stop, *args) over [0, tasks) split into `parts` contiguous ranges.

    The kernels release the GIL, so the ranges run in parallel on a thread pool.
    """
    # Compile (or load from the disk cache) here, once: threads that each met an uncompiled
    # signature would compile it twice and race on the cache index.
    kernel.compile(tuple(numba.typeof(arg) for arg in (0, 0, tasks, *args)))
    bounds = [tasks * p // parts for p in range(parts + 1)]
    if parts == 1:
        kernel(0, 0, tasks, *args)
        return
    pool = _pool(os.getpid(), torch.get_num_threads())
    futures = [pool.submit(kernel, p, bounds[p], bounds[p + 1], *args) for p in range(parts)]
    for future in futures:
        future.result()


def scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus: bool):
    """Forward on CPU tensors; same contract as `scan_torch.reference_scan` (B, C grouped)."""
    dtype = compute_dtype(u)
    b, d, length = u.shape
    g = B.shape[1]
    zeros = u.new_zeros(d, dtype=dtype)
    arrays = _arrays(
        dtype, u, delta, A, B, C,
        zeros if D is None else D, u if z is None else z, zeros if delta_bias is None else delta_bias,
    )
    y = torch.empty(b, d, length, dtype=dtype)
    last = torch.empty(b, d, A.shape[1], dtype=dtype)
    tasks = b * g * (-(-(d // g) // LANES))
    _run(_forward_kernel, tasks, _parts(tasks),
         *arrays, bool(delta_softplus), z is not None, y.numpy(), last.numpy())
    return y.to(u.dtype), last


def scan_backward(dy, dlast, u, delta, A, B, C, D, z, delta_bias, delta_softplus: bool) -> list[torch.Tensor]:
    """Gradients (du, ddelta, dA, dB, dC, dD, dz, ddelta_bias) in the compute dtype, B/C grouped.

    dlast: gradient of last_state (b, d, n) or None. dD, dz, ddelta_bias are empty when the
    input is None. The per-(b, d, l) stages (softplus, skip, gate) are differentiated here in
    PyTorch; the kernel handles the recurrence.
    """
    dtype = compute_dtype(u)
    dy, dlast, uc, delta, A, B, C, D, zc, delta_bias = [
        None if t is None else t.detach().to(dtype) for t in (dy, dlast, u, delta, A, B, C, D, z, delta_bias)
    ]
    b, d, length = uc.shape
    n = A.shape[1]
    parts = _parts(b * d)
    pre_dt = delta if delta_bias is None else delta + delta_bias[:, None]
    dt = F.softplus(pre_dt) if delta_softplus else pre_dt
    dy_scan = dy if zc is None else dy * F.silu(zc)  # gradient of the output before the gate
    y_scan, du, ddt = (torch.empty(b, d, length, dtype=dtype) for _ in range(3))
    dA, dB, dC = (torch.zeros(parts, *shape, dtype=dtype) for shape in ((d, n), B.shape, C.shape))
    _run(_backward_kernel, b * d, parts,
         *_arrays(dtype, uc, dt, A, B, C, dy_scan, dlast if dlast is not None else uc.new_zeros(b, d, n)),
         y_scan.numpy(), du.numpy(), ddt.numpy(), dA.numpy(), dB.numpy(), dC.numpy())
    dD = (dy_scan * uc).sum((0, 2)) if D is not None else uc.new_empty(0)
    if D is not None:
        du += dy_scan * D[:, None]
        y_scan += uc * D[:, None]
    if zc is not None:
        sig = torch.sigmoid(zc)
        dz = dy * y_scan * sig * (1 + zc * (1 - sig))
    else:
        dz = uc.new_empty(0)
    ddelta = ddt * torch.sigmoid(pre_dt) if delta_softplus else ddt
    dbias = ddelta.sum((0, 2)) if delta_bias is not None else uc.new_empty(0)
    return [du, ddelta, dA.sum(0), dB.sum(0), dC.sum(0), dD, dz, dbias]
