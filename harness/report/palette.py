"""One colour and marker per variant, so a variant looks the same in every figure and report.

Colours are the Okabe-Ito colour-blind-safe set; markers differ too, so figures survive
grey-scale printing. Variants outside the four known ones get a colour from a stable hash of
their name (the same colour in every report), never from their order of appearance.
"""
from __future__ import annotations

import zlib

ALIASES = {"transformer": "ast+llama", "ssm": "dass+mamba"}

_KNOWN_COLOURS = {
    "ast+llama": "#0072B2",  # blue: the transformer LALM
    "dass+mamba": "#D55E00",  # vermillion: the state-space LALM
    "dass+llama": "#009E73",  # green: SSM encoder, transformer LM
    "ast+mamba": "#CC79A7",  # purple: transformer encoder, SSM LM
}
_SPARE_COLOURS = ("#E69F00", "#56B4E9", "#000000", "#F0E442", "#999999")

_KNOWN_MARKERS = {"ast+llama": "o", "dass+mamba": "s", "dass+llama": "^", "ast+mamba": "D"}
_SPARE_MARKERS = ("v", "P", "h", "<", ">")

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
    """Known variants first in a fixed order (transformer, SSM, hybrids), then the rest sorted."""
    known = list(_KNOWN_COLOURS)
    return sorted(set(variants), key=lambda v: (known.index(canonical(v)) if canonical(v) in known else len(known), v))
