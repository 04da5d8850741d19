"""The floating-point type each phase does its arithmetic in, by torch's names, importing nothing.

A point names the dtype its model is held in; not every phase computes in it. The fbank computes
in float32 whatever the model's dtype (`models.audio.fbank` keeps its tables and arithmetic in
float32 so it stays equal to Kaldi's; half-precision FFTs and logs would not), so its peak FLOP/s
is float32's. Anything that compares a phase with a ceiling per dtype (the roofline, the plan's
calibration) asks here.
"""
from __future__ import annotations

FBANK_DTYPE = "float32"


def compute_dtype(phase: str, dtype: str) -> str:
    """The dtype `phase` computes in for a model held in `dtype`: float32 for the fbank, the
    model's own for every other phase (e2e too: the fbank is a negligible share of its work)."""
    return FBANK_DTYPE if phase == "fbank" else dtype
