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
