"""`fit`'s stage modules import one way: no import cycle goes through them or `_distributed` (the
`_fit` <-> `_distributed` circle is cut: `_distributed` runs the single-process fit from `_fit_run`),
and no new cycle appears among replace's private modules."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import replace

STAGES = ["_fit_config", "_pool", "_trainer", "_search", "_rounds", "_fit_metrics", "_fit_run", "_fit"]


def _private_imports() -> dict[str, set[str]]:
    """Per private module of `replace`: the private modules it imports (`from ._x import ...` or
    `from . import _x`, at any depth, lazy imports in functions included)."""
    folder = Path(replace.__file__).parent
    modules = {path.stem for path in folder.glob("_*.py") if path.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for name in sorted(modules):
        tree = ast.parse((folder / f"{name}.py").read_text(encoding="utf-8"))
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                if node.module:
                    targets.add(node.module.split(".")[0])
                else:
                    targets.update(alias.name for alias in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import cycles of `graph`: its strongly connected components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


#: cycles allowed among replace's private modules: none (the last two, the surrogate with its guard
#: and the encoders with their fast path, were cut by moving the shared value types and helpers
#: into `_predictions`, `_columns` and `_encoding`).
KNOWN_CYCLES: list[list[str]] = []


@pytest.mark.parametrize("name", STAGES + ["_distributed"])
def test_each_stage_module_imports(name: str) -> None:
    assert importlib.import_module(f"replace.{name}")


def test_no_import_cycle_through_fit_or_distributed() -> None:
    graph = _private_imports()
    assert "_fit" not in graph["_distributed"] and "_fit_run" in graph["_distributed"]
    cycles = _cycles(graph)
    stages = set(STAGES) | {"_distributed"}
    assert not [c for c in cycles if stages & set(c)], cycles
    assert cycles == KNOWN_CYCLES, f"a new import cycle among replace's private modules: {cycles}"


def test_stage_modules_stay_small() -> None:
    folder = Path(replace.__file__).parent
    sizes = {name: len((folder / f"{name}.py").read_text(encoding="utf-8").splitlines()) for name in STAGES}
    assert max(sizes.values()) <= 600, sizes


def test_no_private_module_of_replace_grows_past_700_lines() -> None:
    """The aim is ~600 lines a module; 700 is the line a split is overdue at."""
    folder = Path(replace.__file__).parent
    sizes = {path.name: len(path.read_text(encoding="utf-8").splitlines()) for path in folder.glob("*.py")}
    assert max(sizes.values()) <= 700, sorted(sizes.items(), key=lambda kv: -kv[1])[:3]


def test_cycle_finder_sees_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    # the circle this split cut, as it was
    assert _cycles({"_fit": {"_distributed"}, "_distributed": {"_fit"}}) == [["_distributed", "_fit"]]
