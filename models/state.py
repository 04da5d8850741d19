"""Measured size of an LM's inference state (KV cache, conv + SSM state): bytes of its tensors.

Works on any nested structure — a transformers `DynamicCache` / `StaticCache` (its layers' keys,
values, conv and recurrent states), a Mamba cache, tuples of tuples, dicts — by walking
attributes and containers. Each storage counts once and in full: views into one buffer (a static
cache's slots, a tensor and its slices) are one allocation, and a preallocated buffer costs its
whole size whether or not its slots are filled yet.

An LM's state (`state_bytes`) leaves out the integer scalars a cache keeps beside its tensors:
bookkeeping (transformers >= 5.25 keeps an int64 token counter per Mamba layer), not state that
grows with the model or the context. A quantized (integer) cache still counts in full.
"""
from __future__ import annotations

import types
from collections.abc import Callable, Iterable, Mapping

import torch
from torch import nn

# Values that cannot hold tensors, and things whose attributes are not the object's state:
# modules (weights are not state), classes, functions and Python modules (globals are not state).
_OPAQUE = (str, bytes, bytearray, int, float, complex, bool, type(None), torch.dtype, torch.device, type,
           nn.Module, types.ModuleType, types.FunctionType, types.MethodType, types.BuiltinFunctionType)


def _storage_key_and_bytes(tensor: torch.Tensor) -> tuple[tuple, int]:
    """(identity of the tensor's storage, its size in bytes)."""
    try:
        storage = tensor.untyped_storage()
        if storage.data_ptr() != 0:
            return (str(tensor.device), storage.data_ptr()), storage.nbytes()
    except (RuntimeError, NotImplementedError):  # tensor subclasses without a plain storage
        pass
    # Empty, meta or storage-less tensors: no address to share, so count the tensor itself.
    return ("tensor", id(tensor)), tensor.numel() * tensor.element_size()


def _children(obj: object) -> Iterable[object]:
    if isinstance(obj, Mapping):
        return obj.values()
    if isinstance(obj, (list, tuple, set, frozenset)):
        return obj
    values = list(vars(obj).values()) if hasattr(obj, "__dict__") else []
    for cls in type(obj).__mro__:
        slots = getattr(cls, "__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if hasattr(obj, name):
                values.append(getattr(obj, name))
    return values


def tensor_bytes(obj: object, keep: Callable[[torch.Tensor], bool] = lambda tensor: True) -> int:
    """Bytes of every distinct tensor storage reachable from `obj` (of the tensors `keep` accepts),
    each counted once."""
    counted: set[tuple] = set()
    visited: set[int] = set()
    total = 0
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            if not keep(item):
                continue
            key, nbytes = _storage_key_and_bytes(item)
            if key not in counted:
                counted.add(key)
                total += nbytes
        elif not isinstance(item, _OPAQUE) and id(item) not in visited:
            visited.add(id(item))
            stack.extend(_children(item))
    return total


def _is_state(tensor: torch.Tensor) -> bool:
    return tensor.is_floating_point() or tensor.is_complex() or tensor.numel() > 1


def state_bytes(cache: object) -> int:
    """Bytes of an LM cache's state: its tensor storages but integer scalars, each counted once."""
    return tensor_bytes(cache, keep=_is_state)
