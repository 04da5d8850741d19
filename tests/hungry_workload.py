"""The real workload (`harness.workload:measure_point`) with an audio encoder that also asks for
memory growing with the square of its input's length, as attention over the frames would.

Under `run.memory_limit_mb` the short points fit and the long ones run out of memory inside the
encoder phase, through torch's own CPU allocator: what a real model does past its memory, at a
size that is the same on every machine. Selected with
`run.workload = "tests.hungry_workload:measure"`.
"""
from __future__ import annotations

import torch

from harness.points import Point, PointResult
from harness.workload import measure_point
from models.lalm import LALM

BYTES_PER_FRAME_PAIR = 16 * 2**10  # 1 s (128 frames): 256 MiB; 4 s (448 frames): 3.1 GiB


def measure(point: Point, settings) -> PointResult:
    encode = LALM.encode

    def hungry_encode(self: LALM, feats: torch.Tensor):
        torch.empty(feats.shape[1] ** 2 * BYTES_PER_FRAME_PAIR, dtype=torch.uint8)  # reserved, never touched
        return encode(self, feats)

    LALM.encode = hungry_encode  # in this point's worker only: it exits when the point is done
    try:
        return measure_point(point, settings)
    finally:
        LALM.encode = encode
