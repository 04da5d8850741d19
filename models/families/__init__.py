"""The model families: each encoder and LM family in its own module, found here by name.

Adding a family is its module (shapes, build, closed forms; see `models.families.base`), its
name in `models.names`, and its tests. Variants are every encoder with every LM (`models.names`).
"""
from __future__ import annotations

import importlib

from models.families.base import EncoderFamily, LMFamily
from models.names import ENCODER_FAMILIES, LM_FAMILIES


def _modules_family(name: str):
    """The `FAMILY` of module `models.families.<name>`: a family's name is its module's."""
    return importlib.import_module(f"models.families.{name}").FAMILY


ENCODERS: dict[str, EncoderFamily] = {name: _modules_family(name) for name in ENCODER_FAMILIES}
LMS: dict[str, LMFamily] = {name: _modules_family(name) for name in LM_FAMILIES}

__all__ = ["ENCODERS", "LMS", "EncoderFamily", "LMFamily"]
