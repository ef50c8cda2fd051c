"""`probes._expressions` is a facade over small modules that import one way (nodes <- data <- the
tie matcher <- fit <- search; thresholds on nodes alone), each under ~600 lines, and it hands out
the very objects those modules define, so importers of the facade see no change."""

from __future__ import annotations

import ast
from pathlib import Path

import probes
from probes import _expression_data, _expression_fit, _expression_nodes, _expression_search, _expressions, _thresholds

#: each module may import only those before it in this order (and no other of them)
ORDER = ["_expression_nodes", "_expression_data", "_ties", "_expression_fit", "_expression_search"]
FOLDER = Path(probes.__file__).parent


def _imports(name: str) -> set[str]:
    """The private modules of `probes` that `name` imports, lazy imports in functions included."""
    tree = ast.parse((FOLDER / f"{name}.py").read_text(encoding="utf-8"))
    found = {node.module.split(".")[0] for node in ast.walk(tree)
             if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module}
    return found - {name}


def test_expression_modules_import_one_way() -> None:
    for at, name in enumerate(ORDER):
        pieces = _imports(name) & (set(ORDER) | {"_thresholds", "_expressions"})
        assert pieces <= set(ORDER[:at]), (name, pieces)
    assert _imports("_thresholds") & (set(ORDER) | {"_expressions"}) == {"_expression_nodes"}


def test_expression_modules_stay_small() -> None:
    sizes = {name: len((FOLDER / f"{name}.py").read_text(encoding="utf-8").splitlines())
             for name in ORDER + ["_thresholds", "_expressions"] if name != "_ties"}
    assert max(sizes.values()) <= 600, sizes


def test_the_facade_hands_out_the_modules_own_objects() -> None:
    for module in (_expression_nodes, _expression_data, _expression_fit, _expression_search, _thresholds):
        for name in _expressions.__all__:
            if getattr(getattr(module, name, None), "__module__", None) == module.__name__:
                assert getattr(_expressions, name) is getattr(module, name), name
    assert _expressions.fit_expression is _expression_search.fit_expression
    assert _expressions.Expression is _expression_data.Expression
    assert _expressions.bisect_threshold is _thresholds.bisect_threshold
