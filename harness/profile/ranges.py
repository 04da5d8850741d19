"""Profiler ranges around module calls, inserted with forward pre/post hooks.

Each call of a planned module opens a range named `module:<path>` when it starts and closes it
when it returns (or raises: the post hook is registered with `always_call`). Under
`torch.profiler` those ranges are ordinary user annotations: they show in the trace as the
model's structure and every operator event nests inside the range of the module that ran it.

Range cost: a hook pair plus one range is a few microseconds per module call. The cheapest
range torch offers is `_RecordFunctionFast` (the one its compiler uses for kernel annotations);
where a torch build lacks it, the public `record_function` (about twice the cost) is used.
Listeners see every boundary with the path innermost before it (FLOP attribution uses this).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.profiler import record_function

from harness.profile.structure import Part

RANGE_PREFIX = "module:"
PHASE_PREFIX = "phase:"
_FastRange = getattr(torch._C._profiler, "_RecordFunctionFast", None)


def _open_range(name: str):
    scope = _FastRange(name) if _FastRange is not None else record_function(name)
    scope.__enter__()
    return scope


class ModuleRanges:
    """Context manager: while inside, every planned module call is a profiler range.

    parts: (module, Part) from `structure.plan`. ranges=False keeps the bookkeeping (current
    path, listeners) without opening profiler ranges, for passes that only need attribution.
    on_boundary(path): called before each range opens or closes with the innermost path then
    ("" outside every module).
    """

    def __init__(self, parts: Sequence[tuple[nn.Module, Part]], ranges: bool = True,
                 on_boundary: Callable[[str], None] | None = None):
        self._parts = list(parts)
        self._ranges = ranges
        self._on_boundary = on_boundary
        self._stack: list[tuple[str, object]] = []
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    @property
    def current(self) -> str:
        """Path of the innermost open module range ("" outside every module)."""
        return self._stack[-1][0] if self._stack else ""

    def _enter(self, path: str) -> None:
        if self._on_boundary is not None:
            self._on_boundary(self.current)
        self._stack.append((path, _open_range(RANGE_PREFIX + path) if self._ranges else None))

    def _exit(self, path: str) -> None:
        if self._on_boundary is not None:
            self._on_boundary(self.current)
        # A module that raised closes here too; ranges opened inside it and left open close first.
        while self._stack:
            top, scope = self._stack.pop()
            if scope is not None:
                scope.__exit__(None, None, None)
            if top == path:
                return

    def __enter__(self) -> ModuleRanges:
        for module, part in self._parts:
            path = part.path
            self._handles.append(module.register_forward_pre_hook(lambda m, a, p=path: self._enter(p)))
            self._handles.append(module.register_forward_hook(lambda m, a, o, p=path: self._exit(p),
                                                              always_call=True))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        while self._stack:
            _, scope = self._stack.pop()
            if scope is not None:
                scope.__exit__(None, None, None)
