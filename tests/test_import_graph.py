"""The harness's imports go one way: no two of its packages (or top-level modules) import each
other, directly or around a loop, and `models` never imports `harness`.

Read from the source with `ast`, every import counted (inside functions and type-checking
blocks too: a lazy import is still a dependency), so a cycle cannot creep in unseen.
"""
from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def modules(package: str) -> Iterator[tuple[str, Path]]:
    """(dotted name, file) of every module under `package`."""
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts), path


def imported(path: Path, name: str) -> Iterator[str]:
    """Every module `path` (the module `name`) imports, relative imports resolved."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def unit(name: str) -> str | None:
    """The part of the harness `name` belongs to: its subpackage (harness.measure, ...) or, for a
    top-level module, the module itself (harness.runner); None outside the harness."""
    parts = name.split(".")
    if parts[0] != "harness" or len(parts) == 1:
        return None
    if (ROOT / "harness" / parts[1]).is_dir() or (ROOT / "harness" / f"{parts[1]}.py").is_file():
        return f"harness.{parts[1]}"
    return None


def harness_graph() -> dict[str, dict[str, str]]:
    """unit -> {unit it imports: the first module that does}."""
    graph: dict[str, dict[str, str]] = {}
    for name, path in modules("harness"):
        source = unit(name)
        if source is None:
            continue
        edges = graph.setdefault(source, {})
        for target in filter(None, map(unit, imported(path, name))):
            if target != source:
                edges.setdefault(target, name)
    return graph


def test_the_harness_packages_import_each_other_in_one_direction():
    graph = harness_graph()
    assert {"harness.measure", "harness.gate", "harness.profile", "harness.report", "harness.tasks",
            "harness.train_cost", "harness.executors", "harness.commands", "harness.runner"} <= set(graph)
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        cycle = err.args[1]  # [a, ..., a], each importing the one before it
        hops = [f"{b} imports {a} (in {graph[b][a]})" for a, b in zip(cycle, cycle[1:])]
        raise AssertionError("an import cycle: " + "; ".join(hops)) from None


def test_models_never_imports_the_harness():
    offending = sorted({f"{name} imports {target}" for name, path in modules("models")
                        for target in imported(path, name) if target.split(".")[0] == "harness"})
    assert not offending, "\n".join(offending)
