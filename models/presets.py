"""Size presets: the names every family has a shape for (its `shapes`), and what each is for.

`tiny` is for CI (seconds on a CPU), `small` for CPU studies, `paper` the published shapes
(AST-base, DASS-small, Vicuna/LLaMA-7B, Mamba-2.8B), `matched` the paper encoders with a LLaMA
shaped to Mamba-2.8B's parameter count, so that architecture can be separated from size.
"""
from __future__ import annotations

from dataclasses import dataclass

TINY_VOCAB = 512  # room for a byte-level tokenizer (256 bytes + specials)


@dataclass(frozen=True)
class SizePreset:
    name: str
    description: str


SIZES: dict[str, SizePreset] = {p.name: p for p in (
    SizePreset("tiny", "CI-sized toy: every variant builds and runs in seconds on a CPU"),
    SizePreset("small", "CPU studies: encoders of a few million and LMs of ~30M parameters"),
    SizePreset("paper", "published shapes: AST-base, DASS-small, LLaMA-7B, Mamba-2.8B (GPU)"),
    SizePreset("matched", "paper encoders; LLaMA shaped to Mamba-2.8B's parameter count (GPU)"),
)}
