"""Cheap random initialisation for the paper-scale shapes.

Speed does not depend on weight values, but drawing 6.7 billion random numbers does take minutes
on a CPU (and every parameter is drawn twice: once by the layer's constructor, once by Hugging
Face's `_init_weights`). Inside `cheap_init()`, every random draw of more than `BLOCK` elements
fills the tensor instead by tiling one seeded block of `BLOCK` draws from the same distribution
(same bounds, mean and standard deviation), so each weight keeps the scale its initialiser asked
for at the cost of a memory copy. `BLOCK` is prime, so rows of any power-of-two width start at
different places in the block and no two rows repeat. Values the block's dtype would store as
denormals are pushed out to its smallest normal number (slow paths on CPUs), and nothing
produces NaN or infinity. Draws of at most `BLOCK` elements (norms, biases, the small sizes'
whole models) are untouched.

Which sizes use it is decided once, in `CHEAP_INIT_SIZES`: only the GPU-scale presets, whose
default initialisation is what takes minutes; `tiny` and `small` build exactly as before (their
weights are pinned by tests and trained checkpoints start from them).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch

BLOCK = 65_537  # prime
CHEAP_INIT_SIZES = frozenset({"paper", "matched"})

_ORIGINAL: dict[str, Callable[..., torch.Tensor]] = {
    "uniform_": torch.Tensor.uniform_,
    "normal_": torch.Tensor.normal_,
}


def tile_(tensor: torch.Tensor, block: torch.Tensor) -> torch.Tensor:
    """Fill contiguous `tensor` (any shape) with `block` (1-D) repeated; returns `tensor`."""
    flat = tensor.view(-1)
    size = block.numel()
    whole, rest = divmod(flat.numel(), size)
    if whole:
        flat[: whole * size].view(whole, size).copy_(block.expand(whole, size))
    if rest:
        flat[whole * size:].copy_(block[:rest])
    return tensor


def no_denormals_(block: torch.Tensor) -> torch.Tensor:
    """Move nonzero values below the dtype's smallest normal magnitude out to it (sign kept)."""
    if block.is_floating_point():
        tiny = torch.finfo(block.dtype).tiny
        small = (block != 0) & (block.abs() < tiny)
        block[small] = torch.where(block[small] > 0, tiny, -tiny).to(block.dtype)
    return block


def _cheap(name: str) -> Callable[..., torch.Tensor]:
    original = _ORIGINAL[name]

    def draw(tensor: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        if tensor.numel() <= BLOCK or not tensor.is_contiguous() or tensor.is_meta:
            return original(tensor, *args, **kwargs)
        block = torch.empty(BLOCK, dtype=tensor.dtype, device=tensor.device)
        return tile_(tensor, no_denormals_(original(block, *args, **kwargs)))

    return draw


@contextlib.contextmanager
def cheap_init(enabled: bool = True) -> Iterator[None]:
    """While active, large `Tensor.uniform_` / `Tensor.normal_` draws tile a seeded block (see
    the module docstring). Every `torch.nn.init` initialiser and Hugging Face's `_init_weights`
    draw through these two methods. Not thread-safe: construction happens on one thread."""
    if not enabled:
        yield
        return
    # What was there before, so a nested use hands back its outer one's patch; None: inherited
    # from the C base.
    saved = {name: vars(torch.Tensor).get(name) for name in _ORIGINAL}
    for name in _ORIGINAL:
        setattr(torch.Tensor, name, _cheap(name))
    try:
        yield
    finally:
        for name, method in saved.items():
            if method is None:
                delattr(torch.Tensor, name)
            else:
                setattr(torch.Tensor, name, method)


def init_for(size: str) -> contextlib.AbstractContextManager[None]:
    """The initialisation a model of `size` is built under (cheap for `CHEAP_INIT_SIZES`)."""
    return cheap_init(size in CHEAP_INIT_SIZES)
