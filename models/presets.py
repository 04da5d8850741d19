"""Size presets: the shapes each variant is built at.

`tiny` is for CI (seconds on a CPU), `small` for CPU studies, `paper` the published shapes
(AST-base, DASS-small, Vicuna/LLaMA-7B, Mamba-2.8B), `matched` the paper encoders with a LLaMA
shaped to Mamba-2.8B's parameter count, so that architecture can be separated from size.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ASTShape:
    hidden: int
    layers: int
    heads: int
    mlp: int
    # Frames the positional-embedding grid was laid out for; other lengths interpolate it.
    max_frames: int = 1024
    patch: int = 16
    stride: int = 10  # AST's overlapping patches (stride 10 in time and frequency)


@dataclass(frozen=True)
class DASSShape:
    widths: tuple[int, int, int, int]
    depths: tuple[int, int, int, int]
    d_state: int = 1
    ssm_ratio: float = 1.0
    mlp_ratio: float = 4.0


@dataclass(frozen=True)
class LlamaShape:
    hidden: int
    layers: int
    heads: int
    mlp: int
    vocab: int
    kv_heads: int | None = None


@dataclass(frozen=True)
class MambaShape:
    hidden: int
    layers: int
    vocab: int
    d_state: int = 16
    expand: int = 2
    d_conv: int = 4


@dataclass(frozen=True)
class SizePreset:
    name: str
    ast: ASTShape
    dass: DASSShape
    llama: LlamaShape
    mamba: MambaShape
    description: str = field(default="", compare=False)


AST_BASE = ASTShape(hidden=768, layers=12, heads=12, mlp=3072)
DASS_SMALL = DASSShape(widths=(96, 192, 384, 768), depths=(2, 2, 8, 2))
DASS_MEDIUM = DASSShape(widths=(96, 192, 384, 768), depths=(2, 2, 20, 2))
LLAMA_7B = LlamaShape(hidden=4096, layers=32, heads=32, mlp=11008, vocab=32000)
MAMBA_2_8B = MambaShape(hidden=2560, layers=64, vocab=50280)
# 32 layers of width 2560 with an 6912-wide MLP and Mamba's vocabulary: 2.79B parameters,
# within 1% of Mamba-2.8B, so LLaMA vs Mamba at `matched` compares architectures, not sizes.
LLAMA_MATCHED = LlamaShape(hidden=2560, layers=32, heads=20, mlp=6912, vocab=50280)

TINY_VOCAB = 512  # room for a byte-level tokenizer (256 bytes + specials)

SIZES: dict[str, SizePreset] = {
    "tiny": SizePreset(
        "tiny",
        ast=ASTShape(hidden=64, layers=2, heads=2, mlp=128, max_frames=128),
        dass=DASSShape(widths=(16, 32, 64, 64), depths=(1, 1, 1, 1)),
        llama=LlamaShape(hidden=64, layers=2, heads=4, mlp=172, vocab=TINY_VOCAB),
        mamba=MambaShape(hidden=64, layers=4, vocab=TINY_VOCAB),
        description="CI-sized toy: every variant builds and runs in seconds on a CPU",
    ),
    "small": SizePreset(
        "small",
        ast=ASTShape(hidden=384, layers=4, heads=6, mlp=1536),
        dass=DASSShape(widths=(48, 96, 192, 384), depths=(1, 1, 3, 1)),
        llama=LlamaShape(hidden=512, layers=4, heads=8, mlp=1376, vocab=32000),
        mamba=MambaShape(hidden=512, layers=8, vocab=32000),
        description="CPU studies: encoders of a few million and LMs of ~30M parameters",
    ),
    "paper": SizePreset(
        "paper",
        ast=AST_BASE,
        dass=DASS_SMALL,
        llama=LLAMA_7B,
        mamba=MAMBA_2_8B,
        description="published shapes: AST-base, DASS-small, LLaMA-7B, Mamba-2.8B (GPU)",
    ),
    "matched": SizePreset(
        "matched",
        ast=AST_BASE,
        dass=DASS_SMALL,
        llama=LLAMA_MATCHED,
        mamba=MAMBA_2_8B,
        description="paper encoders; LLaMA shaped to Mamba-2.8B's parameter count (GPU)",
    ),
}
