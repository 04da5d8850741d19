"""Cheap initialisation: the scale the initialiser asked for, no denormals or NaN, seeded, opt-in."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from models import SIZES, registry
from models.init import BLOCK, cheap_init, no_denormals_, tile_

DRAWS = ("uniform_", "normal_")


def _draw_methods() -> dict[str, object]:
    """torch.Tensor's own draw methods (absent: inherited from the C base, as without any patch)."""
    return {name: vars(torch.Tensor).get(name) for name in DRAWS}


def _tiled(t: torch.Tensor) -> bool:
    flat = t.detach().flatten()
    return torch.equal(flat[:BLOCK], flat[BLOCK:2 * BLOCK])


def test_tiling_fills_every_element_with_the_block_in_order():
    out = tile_(torch.empty(2, 5), torch.arange(3.0))
    assert out.flatten().tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]


def test_values_below_the_smallest_normal_move_out_to_it_keeping_their_sign():
    tiny = torch.finfo(torch.float16).tiny
    block = torch.tensor([1e-6, -1e-6, 0.0, 0.5], dtype=torch.float16)
    assert no_denormals_(block).tolist() == [tiny, -tiny, 0.0, 0.5]


def test_a_large_draw_keeps_its_distribution_and_is_seeded():
    def linear():
        torch.manual_seed(0)
        with cheap_init():
            layer = nn.Linear(512, 1024, dtype=torch.bfloat16)  # kaiming uniform, bound 1/sqrt(512)
            nn.init.normal_(layer.bias.new_empty(4 * BLOCK), std=0.02)
        return layer.weight.float()

    first, second = linear(), linear()
    assert torch.equal(first, second)
    bound = 512 ** -0.5
    assert first.abs().max() <= bound and abs(first.std().item() - bound / 3**0.5) < 0.05 * bound
    assert torch.isfinite(first).all()
    assert (first.abs() >= torch.finfo(torch.bfloat16).tiny).all()


def test_small_draws_and_the_default_methods_are_untouched():
    torch.manual_seed(0)
    expected = torch.empty(BLOCK).uniform_()
    torch.manual_seed(0)
    with cheap_init():
        drawn = torch.empty(BLOCK).uniform_()
    assert torch.equal(drawn, expected)
    assert "uniform_" not in vars(torch.Tensor) and "normal_" not in vars(torch.Tensor)


class Built(Exception):
    """Stops a build once its stand-in layer is drawn, carrying the layer's weight."""


@pytest.mark.parametrize("size", SIZES)
def test_only_the_gpu_scale_sizes_are_built_under_cheap_init(size, monkeypatch):
    def one_layer(spec, scan_backend):
        # A layer larger than BLOCK stands for the model, drawn under the initialisation the
        # build chose for `size`; raising leaves the build as an exception would.
        raise Built(nn.Linear(1024, 1024, bias=False).weight.detach())

    before = _draw_methods()
    monkeypatch.setattr(registry, "_components", one_layer)
    with pytest.raises(Built) as built:
        registry.build("ast+llama", size, seed=0)
    assert _draw_methods() == before
    drawn = built.value.args[0]
    torch.manual_seed(0)
    default = nn.Linear(1024, 1024, bias=False).weight.detach()
    if size in ("paper", "matched"):  # the default draws take minutes at these sizes
        assert _tiled(drawn) and not torch.equal(drawn, default)
    else:  # exactly the default: tests and trained checkpoints pin these sizes' weights
        assert torch.equal(drawn, default)


def test_nested_cheap_init_and_an_exception_inside_restore_the_default_draws():
    before = _draw_methods()
    with pytest.raises(RuntimeError, match="inside"):
        with cheap_init():
            with cheap_init():
                assert _tiled(torch.empty(2 * BLOCK).uniform_())
            assert _tiled(torch.empty(2 * BLOCK).normal_())  # the outer one still holds
            raise RuntimeError("inside")
    assert _draw_methods() == before
    assert not _tiled(torch.empty(2 * BLOCK).uniform_()) and not _tiled(torch.empty(2 * BLOCK).normal_())
