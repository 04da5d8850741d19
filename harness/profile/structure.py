"""Which modules of an LALM get a profiler range, and what role each plays.

The breakdown follows the model's own structure: front end; encoder stem, stages and blocks;
projector; LM embedding, layers and head. Inside a layer, the sequence mixer (attention, or the
SSM mixer around the selective scan) is split from the per-token dense work (its projections and
convolutions, the MLP, the norms), so "attention or scan vs MLP/projections" can be read off.

Ranges stop at modules whose inside is one kind of work (an MLP, a norm, a projection, the LM
head, the projector): every range costs a few microseconds of hook time, which on tiny models
is not small next to the work, so no range is spent where its parent's role already says what
the time is. Leaves without a role of their own (activations, dropout) get no range either;
their time is their parent's.

Two operators are split out of their module as virtual children, because their module does
other work too and they are what the question is about: the selective scan (inside DASS's SS2D
and Mamba's mixer, next to the cross-scan reshuffles and gates) and fused attention (inside an
attention module, next to RoPE and head reshapes).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from torch import nn

ROLE_HELP = {
    "frontend": "fbank: waveform to log-mel features",
    "embed": "token or patch embedding, DASS stem",
    "downsample": "DASS stride-2 conv between stages",
    "attention": "attention core: scores, softmax, weighted sum (fused SDPA), RoPE, head reshapes",
    "scan": "the selective-scan operator itself",
    "mixer": "SSM mixer work around the scan: cross-scan/merge reshuffles, dt/B/C einsums, gates",
    "projection": "linear projections inside attention or SSM mixers (q/k/v/o, in/x/dt/out)",
    "conv": "convolutions inside SSM mixers (depthwise conv2d, causal conv1d)",
    "mlp": "feed-forward block",
    "norm": "LayerNorm / RMSNorm",
    "projector": "encoder output to LM audio tokens",
    "head": "LM head (vocabulary logits)",
    "block": "layer and model glue: residual adds, masks, cache updates, output objects",
    "other": "inside the phase but outside every module (phase code, Python between calls)",
    "idle": "CUDA: phase time with no kernel running (launch gaps, host-bound stretches)",
}
ROLES = tuple(ROLE_HELP)
COMPONENTS = ("frontend", "encoder", "projector", "lm")

# Operators split out of their module: (name fragment, child label, role). Fragments match the
# profiler's event names ("lalm::selective_scan", "aten::scaled_dot_product_attention") and the
# FLOP counter's operator names ("lalm.selective_scan", "aten._scaled_dot_product_flash_attention").
KERNEL_OPS = (
    ("selective_scan", "scan", "scan"),
    ("selective_state_update", "scan", "scan"),
    ("scaled_dot_product", "sdpa", "attention"),
)

UNATTRIBUTED = "(unattributed)"
# Roles whose module is one range: nothing inside it gets a range of its own.
LEAF_ROLES = frozenset({"frontend", "embed", "downsample", "projection", "conv", "mlp", "norm", "projector", "head"})
EMBED_NAMES = frozenset({"stem", "embed_tokens", "embeddings", "patch_embeddings"})


@dataclass(frozen=True)
class Part:
    """One profiled module: its path in the LALM ("encoder.stages.2.1.op") and its role."""

    path: str
    role: str

    @property
    def component(self) -> str:
        return component_of(self.path)


def component_of(path: str) -> str:
    """'encoder.stages.0' -> 'encoder'; the unattributed row and unknown paths -> 'other'."""
    head = path.split(".", 1)[0].split("/", 1)[0]
    return head if head in COMPONENTS else "other"


def kernel_of(op_name: str) -> tuple[str, str] | None:
    """(child label, role) when `op_name` is an operator split out of its module, else None."""
    for fragment, label, role in KERNEL_OPS:
        if fragment in op_name:
            return label, role
    return None


def kernel_path(owner: str, label: str) -> str:
    """Path of the virtual child of module `owner` holding one split-out operator."""
    return f"{owner}/{label}"


def _role(name: str, module: nn.Module, parent_role: str) -> str | None:
    """The role of a module, or None when it gets no range (its time stays with its parent)."""
    cls = type(module).__name__
    if cls == "Fbank":
        return "frontend"
    if name == "projector":
        return "projector"
    if name == "lm_head":
        return "head"
    if cls.endswith("Attention"):
        return "attention"
    if cls == "SS2D" or cls.endswith("Mixer"):
        return "mixer"
    if name == "mlp" or cls.endswith("MLP"):
        return "mlp"
    if "Norm" in cls:
        return "norm"
    if cls == "Downsample":
        return "downsample"
    if name in EMBED_NAMES or isinstance(module, nn.Embedding):
        return "embed"
    if "Rotary" in cls:
        return "attention"
    if parent_role in ("attention", "mixer"):
        if isinstance(module, nn.Linear):
            return "projection"
        if isinstance(module, nn.modules.conv._ConvNd):
            return "conv"
    if any(True for _ in module.children()) and not isinstance(module, nn.ModuleList):
        return "block"
    return None


def _walk(module: nn.Module, prefix: str, parent_role: str, only: str = "") -> Iterator[tuple[nn.Module, Part]]:
    """Parts below `module`. Inside a leaf role (`only`), just modules of that same role get a range:
    a model may call a part of its embedding directly (AST calls its patch embedding, not the
    embeddings module around it), and that call must still land in a range."""
    for name, child in module.named_children():
        path = f"{prefix}.{name}" if prefix else name
        role = _role(name, child, parent_role)
        if role is not None and only in ("", role):
            yield child, Part(path, role)
        inner = only or (role if role in LEAF_ROLES else "")
        yield from _walk(child, path, role or parent_role, inner)


def plan(model: nn.Module) -> list[tuple[nn.Module, Part]]:
    """Every module of `model` (an LALM) that gets a range, outermost first, with its Part."""
    return list(_walk(model, "", "block"))
