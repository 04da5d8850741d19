"""One colour and marker per variant, so a variant looks the same in every figure and report.

Colours are the Okabe-Ito colour-blind-safe set; markers differ too, so figures survive
grey-scale printing. A variant without a colour of its own (not in `models.names.VARIANTS`) gets
one from a stable hash of its name (the same colour in every report), never from its order of
appearance; a test checks that every known variant has its own.
"""
from __future__ import annotations

import zlib

from models.names import ALIASES, VARIANTS

_KNOWN_COLOURS = {
    "ast+llama": "#0072B2",  # blue: the transformer LALM
    "dass+mamba": "#D55E00",  # vermillion: the state-space LALM
    "dass+llama": "#009E73",  # green: SSM encoder, transformer LM
    "ast+mamba": "#CC79A7",  # purple: transformer encoder, SSM LM
    "dass+mamba2": "#E69F00",  # orange: the Mamba-2 (SSD) LALM
    "ast+mamba2": "#56B4E9",  # sky blue: transformer encoder, Mamba-2 LM
}
_SPARE_COLOURS = ("#000000", "#F0E442", "#999999")

_KNOWN_MARKERS = {"ast+llama": "o", "dass+mamba": "s", "dass+llama": "^", "ast+mamba": "D", "dass+mamba2": "v",
                  "ast+mamba2": "h"}
_SPARE_MARKERS = ("P", "<", ">")

# Failed points are drawn with the variant's colour and a marker saying how they failed.
STATUS_MARKERS = {"oom": "X", "timeout": "P", "crash": "*", "error": "x"}

# Secondary series differences (size, device, dtype, run) within one variant.
LINESTYLES = ("-", "--", ":", "-.")


def canonical(variant: str) -> str:
    """`transformer`/`ssm` aliases -> their ENCODER+LM names; anything else unchanged."""
    return ALIASES.get(variant, variant)


def _stable_pick(name: str, choices: tuple[str, ...]) -> str:
    return choices[zlib.crc32(name.encode()) % len(choices)]


def colour(variant: str) -> str:
    name = canonical(variant)
    return _KNOWN_COLOURS.get(name) or _stable_pick(name, _SPARE_COLOURS)


def marker(variant: str) -> str:
    name = canonical(variant)
    return _KNOWN_MARKERS.get(name) or _stable_pick(name, _SPARE_MARKERS)


def variant_order(variants) -> list[str]:
    """Known variants first in `models.names.VARIANTS`'s order (the two papers' LALMs, then LM by
    LM), then the rest sorted."""
    known = list(VARIANTS)
    return sorted(set(variants), key=lambda v: (known.index(canonical(v)) if canonical(v) in known else len(known), v))


# Profile roles (harness.profile.structure.ROLE_HELP): one colour each in every profile figure.
# The work that differs between the model families (attention, scan, mixer) in strong hues,
# the dense layers in greens, glue and time outside the modules in greys. Their order is the
# stacking order, bottom up; unknown roles follow, in name order, with a colour from their name.
_ROLE_COLOURS = {
    "attention": "#1f77b4",
    "scan": "#d62728",
    "mixer": "#ff9896",
    "conv": "#9467bd",
    "projection": "#2ca02c",
    "mlp": "#98df8a",
    "norm": "#e377c2",
    "embed": "#8c564b",
    "downsample": "#c49c94",
    "frontend": "#ffbb78",
    "projector": "#bcbd22",
    "head": "#17becf",
    "block": "#ff7f0e",
    "other": "#7f7f7f",
    "idle": "#c7c7c7",
}
# Components of an LALM in the order a request passes them. A role of the encoder is drawn a
# shade darker than the same role of the LM, so the two stay apart where a phase runs both.
COMPONENT_ORDER = ("frontend", "encoder", "projector", "lm", "other")
_DARKER = {"encoder": 0.3}


def _blend_to_black(colour: str, amount: float) -> str:
    channels = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(c * (1 - amount)):02x}" for c in channels)


def role_colour(component: str, role: str) -> str:
    """The colour of a profile group (component, role), the same in every report."""
    base = _ROLE_COLOURS.get(role) or _stable_pick(role, _SPARE_COLOURS)
    return _blend_to_black(base, _DARKER[component]) if component in _DARKER else base


def role_rank(component: str, role: str) -> tuple:
    """Sort key of a profile group: by component along the request, then by role."""
    roles = list(_ROLE_COLOURS)
    components = list(COMPONENT_ORDER)
    return (components.index(component) if component in components else len(components), component,
            roles.index(role) if role in roles else len(roles), role)
