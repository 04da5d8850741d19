"""Closed-form FLOP count of one selective scan (the convention every counter here uses).

Counted per element of the (batch, channels, length, state) grid, i.e. b*d*l*n times:
    discretisation   exp(dt*A) (1 multiply + 1 exponential) and (dt*u)*B (1 multiply) = 3
    state update     x = exp(dt*A)*x + (dt*u)*B, one multiply-add                    = 2
    output           y += x*C, one multiply-add                                      = 2
Counted per element of the (batch, channels, length) grid, b*d*l times:
    dt*u                                                                             = 1
    D skip           y + D*u, one multiply-add                                       = 2 (if D)
    z gate           y * z*sigmoid(z)  (sigmoid 1, two multiplies)                   = 3 (if z)
    delta_bias       dt + bias                                                       = 1 (if bias)
    softplus         log1p(exp(dt))                                                  = 2 (if softplus)
One multiply-add is 2 FLOPs; an exponential, logarithm or sigmoid is 1.

The backward (`scan_backward_flops`, the CPU kernel's reverse-time scan) recomputes the forward
(states and scan output; softplus but no skip or gate) and then runs the adjoint recurrence:
    per (b, d, l, n): h += dy*C (2), dC (2), exp(dt*A) again (2), its gradient h*x_prev (1),
                      ddt terms (6), dA (2), dB (2), du (3), h *= decay (1)              = 21
    per (b, d, l):    D skip's dD, du and y recompute (6); z gate (10: silu, its derivative,
                      dz); softplus's derivative (3)
"""
from __future__ import annotations

PER_STATE_ELEMENT = 7
PER_CHANNEL_STEP = 1
D_SKIP = 2
Z_GATE = 3
DELTA_BIAS = 1
SOFTPLUS = 2


def scan_flops(
    b: int,
    d: int,
    l: int,
    n: int,
    has_D: bool,
    has_z: bool,
    *,
    has_delta_bias: bool = False,
    delta_softplus: bool = False,
) -> int:
    """FLOPs of `selective_scan` on u (b, d, l) with state size n (see the module docstring)."""
    per_step = (
        PER_CHANNEL_STEP
        + D_SKIP * bool(has_D)
        + Z_GATE * bool(has_z)
        + DELTA_BIAS * bool(has_delta_bias)
        + SOFTPLUS * bool(delta_softplus)
    )
    return b * d * l * (PER_STATE_ELEMENT * n + per_step)


def scan_backward_flops(b: int, d: int, l: int, n: int, has_z: bool, delta_softplus: bool) -> int:
    """FLOPs of the scan's backward on u (b, d, l) with state size n (see the module docstring)."""
    forward = scan_flops(b, d, l, n, False, False, has_delta_bias=True, delta_softplus=delta_softplus)
    per_step = 6 + 10 * bool(has_z) + 3 * bool(delta_softplus)
    return forward + b * d * l * (21 * n + per_step)
