"""Derived values the legacy code compares: `weekday_hours > 40`, `weighted >= 93`,
`sunday_hours > hours_worked`.

A boundary on such a value is oblique in the arguments, so tests on single arguments draw it
only as a staircase. The code names the value, though: tracing the function's own frame at
each line that holds a conditional jump records the numeric local variables its condition reads;
a local that an exact expression of the arguments reproduces (`fit_rows`) becomes a column the
partition may test, and the rules compute it first under the code's own name. A condition that
compares two numeric arguments (`sunday_hours > hours_worked`) gives their difference. Only the
function's own frame is read (helpers' locals depend on how they were called), and nothing is
evaluated but the function itself.
"""

from __future__ import annotations

import ast
import inspect
import math
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ._schema import Schema
from ._expressions import Const, Expression, Product, Sum, Var
from ._identity import kwargs_caller, unwrap
from ._paths import _code_info

from ._path_fit import fit_rows, rounding_hint
from ._scorecard import scorecard_of

#: calls traced for their locals (each reads the frame at every branch line)
TRACED_ROWS = 1500
#: calls a local must be seen on before it is fitted
MIN_SEEN = 30


@dataclass(frozen=True)
class Derived:
    """A value the code compares: `text` is how the rules write it (the code's local name, or
    `a - b`); `name` the local to assign (empty for a difference of two arguments)."""

    text: str
    expression: Any  # an Expression, or a Ratio
    name: str = ""
    pair: tuple[str, str] | None = None


def _names(text: str) -> tuple[set[str], tuple[str, str] | None]:
    """Names a condition's text reads, and the two names of a plain `a < b` comparison."""
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError):
        return set(), None
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    body = tree.body
    if isinstance(body, ast.Compare) and len(body.ops) == 1 and isinstance(body.left, ast.Name) \
            and isinstance(body.comparators[0], ast.Name):
        return names, (body.left.id, body.comparators[0].id)
    return names, None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def derived_values(fn: Callable[..., Any], schema: Schema, rows: Sequence[Mapping[str, Any]], *,
                   deadline: float = math.inf) -> list[Derived]:
    """The derived values of `fn`'s conditions that an exact expression of the arguments gives."""
    inner = unwrap(fn)
    code = getattr(inner, "__code__", None)
    if code is None:
        return []
    numeric = {f.name for f in schema.fields if f.kind in ("real", "integer")}
    try:
        params = set(inspect.signature(inner).parameters)
    except (TypeError, ValueError):
        params = set(schema.names)
    wanted: dict[int, set[str]] = {}
    pairs: list[tuple[str, str]] = []
    for line, text, _ in _code_info(code).conditions.values():
        names, pair = _names(text)
        if names - params:
            wanted.setdefault(line, set()).update(names - params)
        if pair and set(pair) <= numeric and pair not in pairs:
            pairs.append(pair)
    found = [Derived(f"{a} - {b}", Expression(Sum((Var(a), Product((Const(-1.0), Var(b)))))), pair=(a, b))
             for a, b in pairs]
    seen = _trace(fn, code, wanted, rows[:TRACED_ROWS], deadline) if wanted else {}
    taken = set()
    for (line, name), values in sorted(seen.items(), key=lambda kv: -len(kv[1])):
        if name in taken or len(values) < MIN_SEEN or not name.isidentifier() or name.startswith("__"):
            continue
        index = sorted(values)
        expression = fit_rows([rows[i] for i in index], [values[i] for i in index], schema, "auto",
                              rounding=rounding_hint(inner))
        if expression is None:
            expression = ratio_of([rows[i] for i in index], [values[i] for i in index], sorted(numeric))
        if expression is None and _plain_categories(schema) and all(float(values[i]).is_integer() for i in index):
            expression = scorecard_of([rows[i] for i in index], [values[i] for i in index], schema,
                                      _probe(fn, code, line, name, deadline))
        if expression is None or not expression.names or isinstance(expression.root, (Var, Const)):
            continue  # not reproduced, or a plain argument / constant: nothing a test on one argument lacks
        if len(expression.names) < 2 or (len(set(expression.names) & numeric) < 2 and not hasattr(expression, "bins")):
            continue  # a function of one number: its cuts are cuts on that number
        taken.add(name)
        found.append(Derived(name, expression, name=name))
    return found


@dataclass(frozen=True)
class Ratio:
    """`a / b`, `a / b ** 2`, `a / (b / s) ** 2` or `a * b` of two numeric arguments: the ratios
    rule code compares (a body-mass index, a rate per unit) that the expression grammar lacks.
    Evaluated with the code's own operations, so the value is the code's to the last bit."""

    form: str  # "div", "div_sq", "mul"
    a: str
    b: str
    scale: float = 1.0

    @property
    def root(self) -> "Ratio":
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted({self.a, self.b}))

    def children(self) -> tuple[()]:
        return ()

    def evaluate(self, columns: Mapping[str, Any], n: int | None = None) -> np.ndarray:
        a, b = (np.asarray(columns[k], dtype=float) for k in (self.a, self.b))
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.form == "mul":
                return a * b
            if self.form == "div":
                return a / b
            return a / ((b / self.scale) if self.scale != 1 else b) ** 2

    def evaluate_row(self, row: Mapping[str, Any]) -> float:
        return float(self.evaluate({k: [row[k]] for k in self.names})[0])

    def to_python(self) -> str:
        if self.form == "mul":
            return f"{self.a} * {self.b}"
        if self.form == "div":
            return f"{self.a} / {self.b}"
        inner = f"({self.b} / {int(self.scale) if self.scale.is_integer() else self.scale})" if self.scale != 1 else self.b
        return f"{self.a} / {inner} ** 2"


def ratio_of(rows: Sequence[Mapping[str, Any]], values: Sequence[float], numeric: Sequence[str]) -> Ratio | None:
    """The ratio of two arguments that gives `values` on every row to the last bit, or None."""
    y = np.asarray(values, dtype=float)
    forms = [Ratio("div", a, b) for a in numeric for b in numeric if a != b]
    forms += [Ratio("div_sq", a, b, s) for a in numeric for b in numeric if a != b for s in (1.0, 10.0, 100.0, 1000.0)]
    forms += [Ratio("mul", a, b) for a in numeric for b in numeric if a < b]
    columns = {name: [r[name] for r in rows] for name in numeric}
    for form in forms:
        if np.array_equal(form.evaluate(columns, len(rows)), y):
            return form
    return None


def _plain_categories(schema: Schema) -> bool:
    """Categories a scorecard's table can write as literals (str, int, bool, None)."""
    return all(isinstance(c, (str, int, bool, type(None))) for f in schema.fields if f.kind == "categorical"
               for c in f.categories)


def _probe(fn: Callable[..., Any], code: Any, line: int, name: str,
           deadline: float) -> Callable[[Mapping[str, Any]], float | None]:
    """The value of local `name` at `line` on a fresh call of `fn` (None where not reached)."""
    def probe(row: Mapping[str, Any]) -> float | None:
        seen = _trace(fn, code, {line: {name}}, [row], deadline)
        return seen.get((line, name), {}).get(0)

    return probe


def _trace(fn: Callable[..., Any], code: Any, wanted: Mapping[int, set[str]], rows: Sequence[Mapping[str, Any]],
           deadline: float) -> dict[tuple[int, str], dict[int, float]]:
    """Per (line, local name), its value on each row that reached the line (first visit)."""
    seen: dict[tuple[int, str], dict[int, float]] = {}
    current = [0]

    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "line" and frame.f_code is code:
            names = wanted.get(frame.f_lineno)
            if names:
                values = frame.f_locals
                for name in names:
                    if name in values:
                        store = seen.setdefault((frame.f_lineno, name), {})
                        number = _number(values[name])
                        if number is not None and current[0] not in store:
                            store[current[0]] = number
        return local

    def global_trace(frame: Any, event: str, arg: Any) -> Any:
        return local if event == "call" and frame.f_code is code else None

    call = kwargs_caller(fn)
    previous = sys.gettrace()
    sys.settrace(global_trace)
    try:
        for i, row in enumerate(rows):
            if time.perf_counter() > deadline:
                break
            current[0] = i
            try:
                call(**row)
            except Exception:  # a raising call still shows the locals it compared
                pass
    finally:
        sys.settrace(previous)
    return seen
