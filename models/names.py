"""Every model name a suite, a listing or a report checks against, importing nothing heavy.

The families are listed by name, each the module of that name under `models.families` (which
imports them from here); a variant is every encoder family with every LM family. Checking a
suite or listing what there is therefore costs no torch or transformers import.
"""
from __future__ import annotations

ENCODER_FAMILIES = ("ast", "dass")
LM_FAMILIES = ("llama", "mamba", "mamba2")
ALIASES = {"transformer": "ast+llama", "ssm": "dass+mamba"}
# The two papers' LALMs first, then every other encoder x LM pair, LM by LM.
VARIANTS = tuple(dict.fromkeys([*ALIASES.values(), *(f"{e}+{lm}" for lm in LM_FAMILIES for e in ENCODER_FAMILIES)]))
SCAN_BACKENDS = ("auto", "reference", "cpu", "cuda", "hf")


def variants_with_aliases() -> str:
    """Every variant in order, each alias in brackets after the variant it names (for help texts)."""
    alias_of = {variant: alias for alias, variant in ALIASES.items()}
    return ", ".join(f"{v} ({alias_of[v]})" if v in alias_of else v for v in VARIANTS)
