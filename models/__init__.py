"""What runs: the audio front end, encoders, projectors, LMs and the LALM wrapper.

`build(variant, size, device, dtype, weights)` is the entry point; nothing here measures.
"""
from models.lalm import LALM, ModelSpec, num_audio_tokens
from models.presets import SIZES
from models.registry import ALIASES, SCAN_BACKENDS, VARIANTS, build, spec_for

__all__ = ["LALM", "ModelSpec", "SIZES", "VARIANTS", "ALIASES", "SCAN_BACKENDS", "build", "spec_for", "num_audio_tokens"]
