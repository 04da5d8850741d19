"""`build(variant, size, ...)`: the one way the harness gets a model.

Variants are ENCODER+LM, every encoder family with every LM family (named in `models.names`,
built by `models.families`).
Construction happens directly on the target device and dtype (`device="meta"` builds the paper
shapes without allocating them, for counting).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from torch import nn

from models.audio import Fbank
from models.errors import InputError
from models.families import ENCODERS, LMS, EncoderFamily, LMFamily
from models.init import init_for
from models.lalm import LALM, ModelSpec
from models.lms import CausalLM
from models.names import ALIASES, SCAN_BACKENDS, VARIANTS
from models.presets import SIZES
from models.weights import load_component

COMPONENTS = ("encoder", "projector", "lm")


def resolve_variant(variant: str) -> ModelSpec | None:
    name = ALIASES.get(variant, variant)
    if name not in VARIANTS:
        return None
    encoder, lm = name.split("+")
    return ModelSpec(variant=name, encoder=encoder, lm=lm, size="")


def spec_for(variant: str, size: str) -> ModelSpec:
    """Validate names and return the model's spec. Raises InputError listing the valid names."""
    spec = resolve_variant(variant)
    if spec is None:
        valid = ", ".join(VARIANTS + tuple(ALIASES))
        raise InputError(f"unknown variant {variant!r}; valid variants: {valid}")
    if size not in SIZES:
        raise InputError(f"unknown size {size!r}; valid sizes: {', '.join(SIZES)}")
    return ModelSpec(spec.variant, spec.encoder, spec.lm, size)


@contextlib.contextmanager
def _construct_on(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """Create parameters directly on `device` in `dtype` (no float32 CPU copy first)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with device:
            yield
    finally:
        torch.set_default_dtype(previous)


def families(spec: ModelSpec) -> tuple[EncoderFamily, LMFamily]:
    """The encoder and LM families of a (validated) spec."""
    return ENCODERS[spec.encoder], LMS[spec.lm]


def _components(spec: ModelSpec, scan_backend: str) -> tuple[nn.Module, nn.Module, CausalLM]:
    """Encoder, projector and LM, created in that order (the seeded weights depend on it)."""
    encoder_family, lm_family = families(spec)
    encoder = encoder_family.build(encoder_family.shapes[spec.size], scan_backend)
    lm = CausalLM(lm_family, lm_family.build(lm_family.shapes[spec.size]))
    return encoder, encoder_family.build_projector(encoder.width, lm.width), lm


def build(
    variant: str,
    size: str = "tiny",
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    weights: Mapping[str, str | Path] | None = None,
    scan_backend: str = "auto",
    seed: int = 0,
) -> LALM:
    """Build an LALM with random weights (seeded), optionally loading local weights per component.

    weights: {"encoder" | "projector" | "lm": path to a Hugging Face folder or a .safetensors file}.
    scan_backend: selective-scan implementation for DASS and Mamba (see models.ops.selective_scan).
    """
    spec = spec_for(variant, size)
    if scan_backend not in SCAN_BACKENDS:
        raise InputError(f"unknown scan backend {scan_backend!r}; valid: {', '.join(SCAN_BACKENDS)}")
    unknown = set(weights or {}) - set(COMPONENTS)
    if unknown:
        raise InputError(f"unknown weights component(s) {sorted(unknown)}; valid: {', '.join(COMPONENTS)}")
    device = torch.device(device)
    torch.manual_seed(seed)
    # The fbank's tables are computed from data (not random), so build them on the CPU, also
    # inside a caller's `with torch.device("meta"):`, and move them; they stay float32 whatever
    # the model dtype.
    with torch.device("cpu"):
        frontend = Fbank()
    frontend = frontend.to(device)
    with _construct_on(device, dtype), init_for(size):
        encoder, projector, lm = _components(spec, scan_backend)
        model = LALM(spec, frontend, encoder, projector, lm)
    _use_scan_backend(model, scan_backend, device)
    for component, path in (weights or {}).items():
        load_component(_weights_module(model, component), component, Path(path))
    return model.eval()


def _weights_module(model: LALM, component: str) -> nn.Module:
    """The module whose parameter names a component's checkpoint uses: the LM's Hugging Face model
    inside our adapter, the encoder's as its family says, the projector itself."""
    if component == "lm":
        return model.lm.model
    if component == "encoder":
        return families(model.spec)[0].weights_module(model.encoder)
    return model.projector


def _use_scan_backend(model: LALM, backend: str, device: torch.device) -> None:
    """Route the model's scans to `backend` and record what actually runs (each family says
    what a setting means for it). When encoder and LM differ, both are named; a model without
    scans records nothing."""
    encoder_family, lm_family = families(model.spec)
    ran = {"encoder": encoder_family.use_scan_backend(model.encoder, backend, device),
           "lm": lm_family.use_scan_backend(model.lm.model, backend, device)}
    ran = {part: name for part, name in ran.items() if name is not None}
    if not ran:
        return
    names = set(ran.values())
    model._scan_backend = names.pop() if len(names) == 1 else ",".join(f"{k}:{v}" for k, v in ran.items())
