"""What runs: the audio front end, encoders, projectors, LMs and the LALM wrapper.

`build(variant, size, device, dtype, weights)` is the entry point; nothing here measures.
Names are imported on first use, so `import models.errors` (which every CLI command does)
does not pay for importing torch and transformers.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "LALM": "models.lalm",
    "ModelSpec": "models.lalm",
    "num_audio_tokens": "models.lalm",
    "SIZES": "models.presets",
    "ALIASES": "models.registry",
    "SCAN_BACKENDS": "models.registry",
    "VARIANTS": "models.registry",
    "build": "models.registry",
    "spec_for": "models.registry",
}
__all__ = list(_EXPORTS)

if TYPE_CHECKING:
    from models.lalm import LALM, ModelSpec, num_audio_tokens
    from models.presets import SIZES
    from models.registry import ALIASES, SCAN_BACKENDS, VARIANTS, build, spec_for


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'models' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
