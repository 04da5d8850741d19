"""`build(variant, size, ...)`: the one way the harness gets a model.

Variants are ENCODER+LM. Construction happens directly on the target device and dtype
(`device="meta"` builds the paper shapes without allocating them, for counting).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from torch import nn

from models.audio import Fbank
from models.encoders import ASTEncoder, DASSEncoder
from models.errors import InputError
from models.lalm import LALM, ModelSpec
from models.lms import build_llama, build_mamba
from models.presets import SIZES, SizePreset
from models.projectors import ConvProjector, PoolProjector
from models.weights import load_component

ENCODERS = ("ast", "dass")
LMS = ("llama", "mamba")
VARIANTS = ("ast+llama", "dass+mamba", "dass+llama", "ast+mamba")
ALIASES = {"transformer": "ast+llama", "ssm": "dass+mamba"}
SCAN_BACKENDS = ("auto", "reference", "cpu", "cuda", "hf")
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


def _components(spec: ModelSpec, preset: SizePreset, scan_backend: str) -> tuple[nn.Module, nn.Module, nn.Module]:
    if spec.encoder == "ast":
        encoder = ASTEncoder(preset.ast)
    else:
        encoder = DASSEncoder(preset.dass, scan_backend=scan_backend)
    lm = build_llama(preset.llama) if spec.lm == "llama" else build_mamba(preset.mamba)
    projector_cls = PoolProjector if spec.encoder == "ast" else ConvProjector
    return encoder, projector_cls(encoder.width, lm.width), lm


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
    with _construct_on(device, dtype):
        encoder, projector, lm = _components(spec, SIZES[size], scan_backend)
        model = LALM(spec, frontend, encoder, projector, lm)
    uses_scan = "dass" == spec.encoder or "mamba" == spec.lm
    if uses_scan:
        _use_scan_backend(model, scan_backend, device)
    for component, path in (weights or {}).items():
        load_component(getattr(model, component), component, Path(path))
    return model.eval()


def _use_scan_backend(model: LALM, backend: str, device: torch.device) -> None:
    """Route the model's scans to `backend` and record what actually runs.

    'hf' changes only the Mamba LM (back to transformers' own path); DASS has no transformers
    implementation, so its scans run as 'auto'. When encoder and LM differ, both are named.
    """
    from models.ops.selective_scan import resolve_backend

    ran: dict[str, str] = {}
    if model.spec.encoder == "dass":
        ran["encoder"] = resolve_backend("auto" if backend == "hf" else backend, device)
    if model.spec.lm == "mamba":
        from models.ops.hf_mamba import use_scan_backend

        use_scan_backend(model.lm.model, backend)
        ran["lm"] = resolve_backend(backend, device)
    names = set(ran.values())
    model._scan_backend = names.pop() if len(names) == 1 else ",".join(f"{k}:{v}" for k, v in ran.items())
