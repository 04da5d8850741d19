"""Cheap initialisation: the scale the initialiser asked for, no denormals or NaN, seeded, opt-in."""
from __future__ import annotations

import torch
from torch import nn

from models.init import BLOCK, CHEAP_INIT_SIZES, cheap_init, init_for, no_denormals_, tile_


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


def test_only_the_gpu_scale_sizes_opt_in():
    assert CHEAP_INIT_SIZES == {"paper", "matched"}
    torch.manual_seed(0)
    expected = torch.empty(2 * BLOCK).normal_()
    torch.manual_seed(0)
    with init_for("tiny"):
        assert torch.equal(torch.empty(2 * BLOCK).normal_(), expected)
    with init_for("paper"):
        tiled = torch.empty(2 * BLOCK).normal_()
    assert torch.equal(tiled[:BLOCK], tiled[BLOCK:])
