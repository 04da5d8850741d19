"""The model families: each encoder and LM family in its own module, found here by name.

Adding a family is its module (shapes, build, closed forms; see `models.families.base`), one
entry below, and its tests. Variants are every encoder with every LM (`models.registry`).
"""
from __future__ import annotations

from models.families import ast, dass, llama, mamba, mamba2
from models.families.base import EncoderFamily, LMFamily

ENCODERS: dict[str, EncoderFamily] = {f.name: f for f in (ast.FAMILY, dass.FAMILY)}
LMS: dict[str, LMFamily] = {f.name: f for f in (llama.FAMILY, mamba.FAMILY, mamba2.FAMILY)}

__all__ = ["ENCODERS", "LMS", "EncoderFamily", "LMFamily"]
