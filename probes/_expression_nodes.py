"""The nodes of an exact expression (constants, arguments, tables, sums, products, divisions,
calls, min/max, roundings): each evaluates vectorised and row by row and writes its Python source;
`_orderings` gives the same tree with its products' factors in the orders code writes them."""

from __future__ import annotations

import keyword
import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping

import numpy as np

from ._errors import InvalidArgument
from ._validation import bad_argument


FORMAT = "neuroswap-expression"
VERSION = 1
#: refuse deeper or larger trees from data (a crafted file must not exhaust the stack)
MAX_DEPTH = 40
MAX_NODES = 20_000
CALLS = ("floor", "ceil", "int", "abs")
ROUND_MODES = ("half_even", "half_up", "floor", "ceil")
#: widths tried for step features `floor/ceil((x - x0) / w)` besides those the rows show
STEP_UNITS = (1, 0.5, 0.1, 5, 10, 15, 30, 60, 100, 1000)
#: candidates per fit wrong on a tie or two whose factorings are tried (`_ties.match_columns`)
MATCH_TRIES = 8
#: tolerance (in quanta) that lets half-up/floor/ceil rounding treat a float a hair off a
#: decimal tie or grid point as on it: what `Decimal` arithmetic on the same values does
DECIMAL_EPS = 1e-6


class ExpressionError(InvalidArgument):
    """An expression's data is not a valid expression (unknown node kind, bad name, NaN...)."""


# -- numbers and names -----------------------------------------------------------------------------
def _number_text(value: float) -> str:
    """Short literal for a finite float: integral values as ints (readable, same value)."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _key_text(key: Any) -> str:
    if isinstance(key, float):
        return _number_text(key) if key != int(key) else repr(key)
    return repr(key)


def _is_key(value: Any) -> bool:
    """A table key: a JSON scalar that repr() writes back as the same literal."""
    if value is None or isinstance(value, (bool, str, int)):
        return True
    return isinstance(value, float) and math.isfinite(value)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _check_name(name: Any, where: str) -> str:
    if (not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name)
            or name.startswith("__")):
        raise ExpressionError(f"{where}={name!r} : must be a Python identifier, not a keyword or dunder "
                              "(it becomes an argument name in generated code)")
    return name


def _check_number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ExpressionError(f"{where}={value!r} : must be a finite number")
    return float(value)


def _column(columns: Mapping[str, Any], name: str) -> Any:
    try:
        return columns[name]
    except KeyError:
        raise bad_argument("columns", sorted(columns), f"has no column {name!r} that the expression reads") from None


# -- the tree ---------------------------------------------------------------------------------------
# Precedence of a node's source text: 1 sum, 2 product/division, 3 negative literal, 4 atom.
class Node:
    """Base of expression nodes: evaluate (vectorised, float64), value (one row), source, dict."""

    kind: ClassVar[str] = ""

    def evaluate(self, columns: Mapping[str, Any], n: int) -> np.ndarray:
        raise NotImplementedError

    def at(self, row: Mapping[str, Any]) -> float:
        raise NotImplementedError

    def source(self) -> str:
        raise NotImplementedError

    @property
    def precedence(self) -> int:
        return 4

    def children(self) -> tuple["Node", ...]:
        return ()

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    def complexity(self) -> int:
        return 1 + sum(child.complexity for child in self.children())

    def names(self) -> set[str]:
        found: set[str] = set()
        for child in self.children():
            found |= child.names()
        return found


def _wrap(node: Node, parens: bool) -> str:
    text = node.source()
    return f"({text})" if parens else text


@dataclass(frozen=True)
class Const(Node):
    value: float
    kind: ClassVar[str] = "const"

    def evaluate(self, columns: Mapping[str, Any], n: int) -> np.ndarray:
        return np.full(n, float(self.value))

    def at(self, row: Mapping[str, Any]) -> float:
        return float(self.value)

    def source(self) -> str:
        return _number_text(self.value)

    @property
    def precedence(self) -> int:
        return 3 if self.value < 0 else 4

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "const", "value": float(self.value)}


@dataclass(frozen=True)
class Var(Node):
    name: str
    kind: ClassVar[str] = "var"

    def evaluate(self, columns: Mapping[str, Any], n: int) -> np.ndarray:
        return np.asarray(_column(columns, self.name), dtype=float)

    def at(self, row: Mapping[str, Any]) -> float:
        return float(_column(row, self.name))

    def source(self) -> str:
        return self.name

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "var", "name": self.name}

    def names(self) -> set[str]:
        return {self.name}


@dataclass(frozen=True)
class Table(Node):
    """A coefficient looked up by the values of one or two categorical arguments. An unseen
    combination evaluates to NaN (the emitted dict lookup raises KeyError)."""

    args: tuple[str, ...]
    entries: tuple[tuple[tuple[Any, ...], float], ...]
    kind: ClassVar[str] = "table"

    @property
    def lookup(self) -> dict[Any, float]:
        return {(key[0] if len(self.args) == 1 else key): float(v) for key, v in self.entries}

    def evaluate(self, columns: Mapping[str, Any], n: int) -> np.ndarray:
        lookup = self.lookup
        lists = [_as_list(_column(columns, a)) for a in self.args]
        keys = lists[0] if len(lists) == 1 else list(zip(*lists))
        return np.fromiter((lookup.get(k, math.nan) for k in keys), dtype=float, count=len(keys))

    def at(self, row: Mapping[str, Any]) -> float:
        key = tuple(_plain(_column(row, a)) for a in self.args)
        return self.lookup.get(key[0] if len(key) == 1 else key, math.nan)

    def source(self) -> str:
        if len(self.args) == 1:
            items = ", ".join(f"{_key_text(k[0])}: {_number_text(v)}" for k, v in self.entries)
            return "{" + items + "}[" + self.args[0] + "]"
        items = ", ".join("(" + ", ".join(_key_text(part) for part in k) + f"): {_number_text(v)}"
                          for k, v in self.entries)
        return "{" + items + "}[" + ", ".join(self.args) + "]"

    @property
    def complexity(self) -> int:
        return 1 + len(self.args)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "table", "args": list(self.args),
                "entries": [[list(k), float(v)] for k, v in self.entries]}

    def names(self) -> set[str]:
        return set(self.args)


def _as_list(column: Any) -> list[Any]:
    if isinstance(column, np.ndarray):
        return column.tolist()
    return [_plain(v) for v in column]


@dataclass(frozen=True)
class Sum(Node):
    terms: tuple[Node, ...]
    kind: ClassVar[str] = "sum"

    def evaluate(self, columns: Mapping[str, Any], n: int) -> np.ndarray:
        total = np.array(self.terms[0].evaluate(columns, n), dtype=float)
        for term in self.terms[1:]:
            total = total + term.evaluate(columns, n)
        return total

    def at(self, row: Mapping[str, Any]) -> float:
        total = self.terms[0].at(row)
        for term in self.terms[1:]:
            total = total + term.at(row)
        return total

    def source(self) -> str:
        parts = [_wrap(self.terms[0], self.terms[0].precedence < 1)]
        for term in self.terms[1:]:
            negated = _negated(term)
            if negated is not None:
                parts.append(" - " + _wrap(negated, negated.precedence <= 1))
            else:
                parts.append(" + " + _wrap(term, term.precedence <= 1))
        return "".join(parts)

    @property
    def precedence(self) -> int:
        return 1

    def children(self) -> tuple[Node, ...]:
        return self.terms

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "sum", "terms": [t.to_dict() for t in self.terms]}


def _negated(term: Node) -> Node | None:
    """`t` with `-t == term` exactly in float arithmetic, when `term` shows a leading minus."""
    if isinstance(term, Const) and term.value < 0:
        return Const(-term.value)
    if isinstance(term, Product) and isinstance(term.factors[0], Const) and term.factors[0].value < 0:
        first = -term.factors[0].value
        rest = term.factors[1:]
        if first == 1 and rest:
            return rest[0] if len(rest) == 1 else Product(rest)
        return Product((Const(first), *rest))
    if isinstance(term, Div):
        numerator = _negated(term.num)
        if numerator is not None:
            return Div(numerator, term.den)
    return None


@dataclass(frozen=True)
class Product(Node):
    factors: tuple[Node, ...]
    kind: ClassVar[str] = "product"

    def evaluate(self, columns: Mapping[str, Any], n: int) -> np.ndarray:
        total = np.array(self.factors[0].evaluate(columns, n), dtype=float)
        for factor in self.factors[1:]:
            total = total * factor.evaluate(columns, n)
        return total

    def at(self, row: Mapping[str, Any]) -> float:
        total = self.factors[0].at(row)
        for factor in self.factors[1:]:
            total = total * factor.at(row)
        return total

    def source(self) -> str:
        first = _wrap(self.factors[0], self.factors[0].precedence < 2)
        return " * ".join([first] + [_wrap(f, f.precedence <= 2) for f in self.factors[1:]])

    @property
    def precedence(self) -> int:
        return 2

    def children(self) -> tuple[Node, ...]:
        return self.factors

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "product", "factors": [f.to_dict() for f in self.factors]}


@dataclass(frozen=True)
class Div(Node):
    num: Node
    den: Node
    kind: ClassVar[str] = "div"

    def evaluate(self, columns: Mapping[str, Any], n: int) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(self.num.evaluate(columns, n), dtype=float) / self.den.evaluate(columns, n)

    def at(self, row: Mapping[str, Any]) -> float:
        den = self.den.at(row)
        num = self.num.at(row)
        if den == 0:
            return math.nan if num == 0 or math.isnan(num) else math.copysign(math.inf, num) * math.copysign(1, den)
        return num / den

    def source(self) -> str:
        return _wrap(self.num, self.num.precedence < 2) + " / " + _wrap(self.den, self.den.precedence <= 2)

    @property
    def precedence(self) -> int:
        return 2

    def children(self) -> tuple[Node, ...]:
        return (self.num, self.den)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "div", "num": self.num.to_dict(), "den": self.den.to_dict()}


_VECTOR_CALLS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "floor": np.floor, "ceil": np.ceil, "int": np.trunc, "abs": np.abs}
_CALL_SOURCE = {"floor": "math.floor", "ceil": "math.ceil", "int": "int", "abs": "abs"}


def _scalar_call(fn: str, x: float) -> float:
    if fn == "abs":
        return abs(x)
    if not math.isfinite(x):
        return x
    return float({"floor": math.floor, "ceil": math.ceil, "int": math.trunc}[fn](x))


@dataclass(frozen=True)
class Call(Node):
    """floor / ceil / int (truncation) / abs of its argument."""

    fn: str
    arg: Node
    kind: ClassVar[str] = "call"

    def evaluate(self, columns: Mapping[str, Any], n: int) -> np.ndarray:
        return _VECTOR_CALLS[self.fn](np.asarray(self.arg.evaluate(columns, n), dtype=float))

    def at(self, row: Mapping[str, Any]) -> float:
        return _scalar_call(self.fn, self.arg.at(row))

    def source(self) -> str:
        return f"{_CALL_SOURCE[self.fn]}({self.arg.source()})"

    def children(self) -> tuple[Node, ...]:
        return (self.arg,)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "call", "fn": self.fn, "arg": self.arg.to_dict()}


@dataclass(frozen=True)
class MinMax(Node):
    op: str  # "min" or "max"
    args: tuple[Node, ...]
    kind: ClassVar[str] = "minmax"

    def evaluate(self, columns: Mapping[str, Any], n: int) -> np.ndarray:
        combine = np.minimum if self.op == "min" else np.maximum
        total = np.asarray(self.args[0].evaluate(columns, n), dtype=float)
        for arg in self.args[1:]:
            total = combine(total, arg.evaluate(columns, n))
        return total

    def at(self, row: Mapping[str, Any]) -> float:
        values = [arg.at(row) for arg in self.args]
        if any(math.isnan(v) for v in values):
            return math.nan
        return float(min(values) if self.op == "min" else max(values))

    def source(self) -> str:
        return f"{self.op}(" + ", ".join(arg.source() for arg in self.args) + ")"

    def children(self) -> tuple[Node, ...]:
        return self.args

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "minmax", "op": self.op, "args": [a.to_dict() for a in self.args]}


def _decimals(quantum: float) -> int | None:
    """d with quantum == 10**-d (d may be negative), else None."""
    for d in range(-12, 16):
        if float(f"1e{-d}") == quantum:
            return d
    return None


@dataclass(frozen=True)
class Round(Node):
    """The output's rounding to a grid `quantum`: 'half_even' is Python's `round(x, d)` (ties
    to even on the float's exact value; `round(x / q) * q` off decimal grids); 'half_up' (ties
    towards +infinity), 'floor', 'ceil' treat values within `eps` quanta of a tie / grid point
    as on it, as `Decimal` arithmetic on the same inputs would."""

    arg: Node
    quantum: float
    mode: str = "half_even"
    eps: float = 0.0
    kind: ClassVar[str] = "round"

    # x -> scaled value and back, as float operations the source text repeats exactly
    def _scale(self) -> tuple[str, float]:
        d = _decimals(self.quantum)
        if d is not None and d >= 0:
            return "mul", float(10 ** d)
        if d is not None:
            return "div", float(10 ** -d)
        return "div", self.quantum

    def _offset(self) -> float:
        if self.mode == "half_up":
            return 0.5 + self.eps
        if self.mode == "floor":
            return self.eps
        return -self.eps  # ceil

    def evaluate(self, columns: Mapping[str, Any], n: int) -> np.ndarray:
        a = np.asarray(self.arg.evaluate(columns, n), dtype=float)
        how, s = self._scale()
        v = a * s if how == "mul" else a / s
        with np.errstate(invalid="ignore"):
            if self.mode == "half_even":
                r = np.rint(v)
            else:
                r = (np.ceil if self.mode == "ceil" else np.floor)(v + self._offset())
            out = r / s if how == "mul" else r * s
            d = _decimals(self.quantum)
            if self.mode == "half_even" and d is not None:
                # Python's round decides ties on the exact decimal expansion: ask it near ties
                near = ~(np.abs(np.abs(v - np.floor(v)) - 0.5) > 1e-6) | ~(np.abs(v) < 2.0**52)
                for i in np.flatnonzero(near):
                    out[i] = round(float(a[i]), d) if math.isfinite(a[i]) else a[i]
        return out

    def at(self, row: Mapping[str, Any]) -> float:
        a = float(self.arg.at(row))
        if not math.isfinite(a):
            return a
        d = _decimals(self.quantum)
        if self.mode == "half_even" and d is not None:
            return float(round(a, d))
        how, s = self._scale()
        v = a * s if how == "mul" else a / s
        if self.mode == "half_even":
            r = float(round(v))
        else:
            r = float((math.ceil if self.mode == "ceil" else math.floor)(v + self._offset()))
        return r / s if how == "mul" else r * s

    def source(self) -> str:
        d = _decimals(self.quantum)
        inner = self.arg.source()
        if self.mode == "half_even" and d is not None:
            return f"round({inner}, {d})"
        how, s = self._scale()
        scaled = _wrap(self.arg, self.arg.precedence < 2) + (" * " if how == "mul" else " / ") + _number_text(s)
        if self.mode == "half_even":
            core = f"round({scaled})"
        else:
            offset = self._offset()
            fn = "math.ceil" if self.mode == "ceil" else "math.floor"
            if offset == 0:
                core = f"{fn}({scaled})"
            else:
                sign = "+" if offset > 0 else "-"
                core = f"{fn}({scaled} {sign} {_number_text(abs(offset))})"
        return core + (" / " if how == "mul" else " * ") + _number_text(s)

    @property
    def precedence(self) -> int:
        return 4 if self.mode == "half_even" and _decimals(self.quantum) is not None else 2

    def children(self) -> tuple[Node, ...]:
        return (self.arg,)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "round", "arg": self.arg.to_dict(), "quantum": float(self.quantum),
                "mode": self.mode, "eps": float(self.eps)}



def _reordered(node: Node, position: int, rotation: int) -> Node:
    """`node` with each product's arguments rotated and its coefficients put at `position` among
    them (0 first, -1 last, 2 after two arguments: `qty * price * rate[kind] * weeks`)."""
    if isinstance(node, Product) and len(node.factors) == 2 and node.factors[0] == Const(-1.0):
        return Product((node.factors[0], _reordered(node.factors[1], position, rotation)))  # a negation: `- x`
    if isinstance(node, Product):
        coefficients = [f for f in node.factors if isinstance(f, (Const, Table))]
        others = [_reordered(f, position, rotation) for f in node.factors if not isinstance(f, (Const, Table))]
        if others:
            r = rotation % len(others)
            others = others[r:] + others[:r]
        at = len(others) if position < 0 else min(position, len(others))
        return Product(tuple(others[:at] + coefficients + others[at:]))
    if isinstance(node, Div):
        return Div(_reordered(node.num, position, rotation), node.den)
    if isinstance(node, Sum):
        return Sum(tuple(_reordered(t, position, rotation) for t in node.terms))
    if isinstance(node, MinMax):
        return MinMax(node.op, tuple(_reordered(a, position, rotation) for a in node.args))
    return node


def _orderings(node: Node) -> list[Node]:
    """`node` and the same expression with its products' factors in other orders (distinct)."""
    found, seen = [node], {node.source()}
    for position in (0, -1, 2):
        for rotation in range(3):
            other = _reordered(node, position, rotation)
            text = other.source()
            if text not in seen:
                seen.add(text)
                found.append(other)
    return found
