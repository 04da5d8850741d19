"""Packages whose names are imported on first use, so importing one light module of a package
(its errors, its names, its recipe) does not import torch and transformers through the package."""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, modules: Mapping[str, tuple[str, ...]]) -> tuple[list[str], Callable[[str], Any]]:
    """(`__all__`, `__getattr__`) of `package`, exporting each module's names (`modules`: module ->
    names), each imported when first asked for."""
    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(where[name]), name)

    return list(where), __getattr__
