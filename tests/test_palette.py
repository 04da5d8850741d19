"""Every variant the models define looks like itself in every figure: its own colour and marker,
drawn in the models' order, with aliases drawn as the variant they name."""
from __future__ import annotations

from harness.report import palette
from models.names import ALIASES, VARIANTS


def test_every_variant_has_a_colour_and_a_marker_of_its_own():
    # A family added without colours would fall back to a hashed spare one, shared with others.
    assert len({palette.colour(v) for v in VARIANTS}) == len(VARIANTS)
    assert len({palette.marker(v) for v in VARIANTS}) == len(VARIANTS)
    assert {palette.colour(v) for v in VARIANTS}.isdisjoint(palette._SPARE_COLOURS)
    assert {palette.marker(v) for v in VARIANTS}.isdisjoint(palette._SPARE_MARKERS)


def test_variants_are_ordered_as_the_models_list_them_and_unknown_ones_last():
    shuffled = ["zzz+unknown", *reversed(VARIANTS), "aaa+unknown"]
    assert palette.variant_order(shuffled) == [*VARIANTS, "aaa+unknown", "zzz+unknown"]


def test_an_alias_looks_like_the_variant_it_names():
    for alias, variant in ALIASES.items():
        assert (palette.colour(alias), palette.marker(alias)) == (palette.colour(variant), palette.marker(variant))
