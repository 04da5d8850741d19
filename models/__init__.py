"""What runs: the audio front end, encoders, projectors, LMs and the LALM wrapper.

`build(variant, size, device, dtype, weights)` is the entry point; nothing here measures.
Names are imported on first use, so `import models.errors` (which every CLI command does)
does not pay for importing torch and transformers.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from models.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(__name__, {
    "models.lalm": ("LALM", "ModelSpec", "num_audio_tokens"),
    "models.presets": ("SIZES",),
    "models.names": ("ALIASES", "SCAN_BACKENDS", "VARIANTS"),
    "models.registry": ("build", "spec_for"),
})

if TYPE_CHECKING:
    from models.lalm import LALM, ModelSpec, num_audio_tokens
    from models.names import ALIASES, SCAN_BACKENDS, VARIANTS
    from models.presets import SIZES
    from models.registry import build, spec_for
