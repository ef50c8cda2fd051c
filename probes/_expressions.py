"""Exact expressions for the rows of one branch path: find them, keep them as data, emit Python.

Rule-based legacy code is exact arithmetic on every branch path (fee tables, brackets, VAT by
country), so a path's rows are usually reproduced to the last digit by a short expression; a
surrogate (replace) and distilled rules (explain) both want that expression rather than a smooth
approximation. The fitter searches a small grammar from simple to complex and accepts only what
reproduces EVERY row: to `rtol` where the output is not rounded, after the output's rounding
(its quantum, e.g. 0.01) where it is. It returns None when nothing does (the caller keeps a
neural expert there).

Grammar, in the order it is searched:
  1. a sum of terms, each `coefficient * monomial`: the coefficient a constant or a table over
     one or two categorical/boolean arguments, the monomial a product of numeric arguments of
     degree <= 3 (`net * qty * vat[country, category]` is one term); constant, tables, affine,
     then products, degree by degree;
  2. the same with a step feature `floor/ceil((x - x0) / w)` of one numeric argument as one more
     factor (per started unit: `2.5 * math.ceil(minutes / 15)`), w and x0 read off the rows where
     the output steps, else usual units counted from the path's lower edge;
  3. `min(E, hi)`, `max(E, lo)`, `min(max(E, lo), hi)` of 1-2 with constant bounds (the repeated
     extremes of the outputs);
  each possibly wrapped in a rounding to the output's quantum (Python's `round`, half-up, floor,
  ceil; products tried in the orders code writes them, as ties depend on it).
Not covered: tables over three or more arguments, bounds that are tables or expressions, steps
of several arguments at once, divisions by arguments, powers above 3, exp/log, Enum categories.
Coefficients come from least squares in float64, are snapped to short decimals or small
rationals, and the snapped expression is re-checked on every row.

The expression is data: a tree of frozen dataclasses with `to_dict`/`from_dict` (validated: node
kinds, identifier names, finite numbers, literal table keys), vectorised float64 `evaluate`, a
one-row `evaluate_row`, and `to_python` (names, numbers, + - * /, dict-literal tables,
round/min/max/abs/int/math.floor/math.ceil), so a loaded expression is compiled only from source
generated here, never from stored text.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import keyword
import math
import struct
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, ClassVar, Iterable, Mapping, Sequence

import numpy as np

from ._clock import charge_design
from ._errors import InvalidArgument
from ._schema import output_quantum
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


# -- from data, validated --------------------------------------------------------------------------
_FIELDS = {
    "const": {"kind", "value"}, "var": {"kind", "name"}, "table": {"kind", "args", "entries"},
    "sum": {"kind", "terms"}, "product": {"kind", "factors"}, "div": {"kind", "num", "den"},
    "call": {"kind", "fn", "arg"}, "minmax": {"kind", "op", "args"},
    "round": {"kind", "arg", "quantum", "mode", "eps"},
}


def node_from_dict(data: Any, *, _depth: int = 0, _count: list[int] | None = None) -> Node:
    """A node from its JSON form; refuses anything but the node kinds above with identifier
    names, finite numbers and literal table keys."""
    count = _count if _count is not None else [0]
    count[0] += 1
    if _depth > MAX_DEPTH or count[0] > MAX_NODES:
        raise ExpressionError(f"expression is deeper than {MAX_DEPTH} or larger than {MAX_NODES} nodes")
    if not isinstance(data, Mapping):
        raise ExpressionError(f"node={data!r:.80} : must be a JSON object with a 'kind'")
    kind = data.get("kind")
    if kind not in _FIELDS:
        raise ExpressionError(f"node kind={kind!r:.40} : must be one of {sorted(_FIELDS)}")
    extra = set(data) - _FIELDS[kind] - ({"eps"} if kind == "round" else set())
    missing = _FIELDS[kind] - set(data) - ({"eps"} if kind == "round" else set())
    if extra or missing:
        raise ExpressionError(f"{kind} node has fields {sorted(map(str, data))} : expected {sorted(_FIELDS[kind])}")

    def child(value: Any) -> Node:
        return node_from_dict(value, _depth=_depth + 1, _count=count)

    def children(value: Any, where: str, least: int) -> tuple[Node, ...]:
        if not isinstance(value, list) or len(value) < least:
            raise ExpressionError(f"{kind}.{where} : must be a list of at least {least} nodes")
        return tuple(child(v) for v in value)

    if kind == "const":
        return Const(_check_number(data["value"], "const.value"))
    if kind == "var":
        return Var(_check_name(data["name"], "var.name"))
    if kind == "table":
        args = data["args"]
        if not isinstance(args, list) or not 1 <= len(args) <= 2 or len(set(map(str, args))) != len(args):
            raise ExpressionError(f"table.args={args!r:.80} : must list one or two distinct argument names")
        names = tuple(_check_name(a, "table.args") for a in args)
        entries, seen = [], set()
        if not isinstance(data["entries"], list) or not data["entries"]:
            raise ExpressionError("table.entries : must be a non-empty list of [key, value]")
        for entry in data["entries"]:
            if not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[0], list):
                raise ExpressionError(f"table entry={entry!r:.80} : must be [[key...], value]")
            key = tuple(entry[0])
            if len(key) != len(names) or not all(_is_key(k) for k in key):
                raise ExpressionError(f"table key={entry[0]!r:.80} : must be {len(names)} str/int/float/bool/None "
                                      "values")
            if key in seen:
                raise ExpressionError(f"table key={entry[0]!r:.80} : appears twice")
            seen.add(key)
            entries.append((key, _check_number(entry[1], "table value")))
        return Table(names, tuple(entries))
    if kind == "sum":
        return Sum(children(data["terms"], "terms", 1))
    if kind == "product":
        return Product(children(data["factors"], "factors", 1))
    if kind == "div":
        return Div(child(data["num"]), child(data["den"]))
    if kind == "call":
        if data["fn"] not in CALLS:
            raise ExpressionError(f"call.fn={data['fn']!r:.40} : must be one of {CALLS}")
        return Call(data["fn"], child(data["arg"]))
    if kind == "minmax":
        if data["op"] not in ("min", "max"):
            raise ExpressionError(f"minmax.op={data['op']!r:.40} : must be 'min' or 'max'")
        return MinMax(data["op"], children(data["args"], "args", 2))
    quantum = _check_number(data["quantum"], "round.quantum")
    eps = _check_number(data.get("eps", 0.0), "round.eps")
    if quantum <= 0 or not 0 <= eps <= 0.01 or data["mode"] not in ROUND_MODES:
        raise ExpressionError(f"round(quantum={quantum}, mode={data['mode']!r:.20}, eps={eps}) : quantum must "
                              f"be > 0, mode one of {ROUND_MODES}, eps in [0, 0.01]")
    return Round(child(data["arg"]), quantum, data["mode"], eps)


def map_children(node: Node, fn: Any) -> Node:
    """`node` with `fn` applied to each child node (a field holding a Node, or a tuple of Nodes);
    `node` itself when no child changes: the one walk the rewrites of a tree share."""
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if isinstance(value, Node):
            changes[f.name] = fn(value)
        elif isinstance(value, tuple) and value and all(isinstance(v, Node) for v in value):
            changes[f.name] = tuple(fn(v) for v in value)
    return dataclasses.replace(node, **changes) if changes else node


@dataclass(frozen=True)
class Expression:
    """An exact expression of one path: data (JSON), vectorised and one-row evaluation, and Python
    source. `rows` is how many rows it was accepted on (0 when built by hand or loaded)."""

    root: Node
    rows: int = 0

    def evaluate(self, columns: Mapping[str, Any], n: int | None = None) -> np.ndarray:
        """Values for columns of equal length (a dict of arrays / lists), in float64."""
        if n is None:
            n = len(next(iter(columns.values()))) if columns else 1
        return np.asarray(self.root.evaluate(columns, n), dtype=float)

    def evaluate_row(self, row: Mapping[str, Any]) -> float:
        """The value for one row (a kwargs dict), the same float `evaluate` gives."""
        return float(self.root.at(row))

    def to_python(self) -> str:
        """Python expression text (uses `math` for floor/ceil and the argument names)."""
        return self.root.source()

    @property
    def complexity(self) -> int:
        return self.root.complexity

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self.root.names()))

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "root": self.root.to_dict(), "rows": int(self.rows)}

    @classmethod
    def from_dict(cls, data: Any) -> "Expression":
        if not isinstance(data, Mapping) or data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ExpressionError(f"expression data : must be a dict with format={FORMAT!r} and version={VERSION}")
        rows = data.get("rows", 0)
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
            raise ExpressionError(f"expression rows={rows!r:.40} : must be an int >= 0")
        unknown = sorted(set(map(str, data)) - {"format", "version", "root", "rows"})
        if unknown:
            raise ExpressionError(f"expression data has unknown keys {unknown}")
        return cls(node_from_dict(data.get("root")), rows)

    def __str__(self) -> str:
        return self.to_python()


# -- agreement -----------------------------------------------------------------------------------
def agrees(predicted: np.ndarray, outputs: np.ndarray, *, rtol: float = 1e-9) -> np.ndarray:
    """Per row: `predicted` reproduces `outputs` to `rtol` (relative; near zero, relative to a
    thousandth of the largest output)."""
    y = np.asarray(outputs, dtype=float)
    p = np.asarray(predicted, dtype=float)
    floor = max(float(np.max(np.abs(y))) * 1e-3, 1e-300) if y.size else 1.0
    with np.errstate(invalid="ignore"):
        return np.abs(p - y) <= rtol * np.maximum(np.abs(y), floor)


# -- fitting ----------------------------------------------------------------------------------------
@dataclass
class _Budget:
    limit: int
    used: int = 0
    differences: tuple[tuple[str, str | None], ...] = ()  # argument pairs the code subtracts (`_ties`)

    def take(self) -> bool:
        self.used += 1
        return self.used <= self.limit


@dataclass
class _Data:
    """Rows of one path as the fitter sees them."""

    n: int
    columns: dict[str, Any]  # original columns (for step features)
    numeric: dict[str, np.ndarray]  # varying numeric arguments (and derived step features)
    nodes: dict[str, Node]  # how each numeric name is written (Var, or a step feature)
    cats: dict[str, list[Any]]  # varying categorical/boolean arguments, plain Python values
    _cells: dict[tuple[str, ...], tuple[np.ndarray, list[tuple[Any, ...]]]] = field(default_factory=dict)
    _screen: np.ndarray | None = None
    _onehot: dict[tuple[str, ...], np.ndarray] = field(default_factory=dict)

    @property
    def screen(self) -> np.ndarray:
        """A fixed shuffle of the rows; its head is the sample structures are screened on."""
        if self._screen is None:
            self._screen = np.random.default_rng(0).permutation(self.n)
        return self._screen

    def subset(self, mask: np.ndarray) -> "_Data":
        index = np.flatnonzero(mask)
        columns = {k: (np.asarray(v, dtype=object)[index] if not isinstance(v, np.ndarray) else v[index])
                   for k, v in self.columns.items()}
        numeric = {k: v[index] for k, v in self.numeric.items() if np.ptp(v[index]) > 0}
        cats = {k: [v[i] for i in index] for k, v in self.cats.items()}
        cats = {k: v for k, v in cats.items() if len(set(v)) > 1}
        return _Data(len(index), columns, numeric, {k: self.nodes[k] for k in numeric}, cats)

    def with_feature(self, name: str, node: Node, values: np.ndarray) -> "_Data":
        """The same rows with one more numeric column (cells and screening sample shared)."""
        return _Data(self.n, self.columns, {**self.numeric, name: values}, {**self.nodes, name: node}, self.cats,
                     self._cells, self.screen, self._onehot)

    def onehot(self, group: tuple[str, ...]) -> np.ndarray:
        """Per row a 1 in the column of its combination of `group`'s values."""
        if group not in self._onehot:
            codes, keys = self.cells(group)
            matrix = np.zeros((self.n, len(keys)))
            matrix[np.arange(self.n), codes] = 1.0
            self._onehot[group] = matrix
        return self._onehot[group]

    def cells(self, group: tuple[str, ...]) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
        """Per row the index of its combination of `group`'s values, and the combinations."""
        if group not in self._cells:
            index: dict[tuple[Any, ...], int] = {}
            codes = np.empty(self.n, dtype=np.int64)
            lists = [self.cats[g] for g in group]
            for i, key in enumerate(zip(*lists) if lists else itertools.repeat((), self.n)):
                codes[i] = index.setdefault(key, len(index))
            self._cells[group] = (codes, list(index))
        return self._cells[group]


@dataclass(frozen=True)
class _Target:
    """What rows the fit must reproduce, and how: exactly, or after rounding to `quantum`."""

    y: np.ndarray
    rtol: float
    quantum: float | None = None
    shift: float = 0.0  # least squares target is y + shift (floor/ceil rounding centres it)
    modes: tuple[tuple[str, float], ...] = ()
    tries: list[int] = field(default_factory=lambda: [0], compare=False)  # factorings tried (`MATCH_TRIES`)
    differences: tuple[tuple[str, str | None], ...] = ()

    @property
    def sigma(self) -> float:
        return 0.0 if self.quantum is None else self.quantum / math.sqrt(12.0)

    def accept(self, inner: Node, data: _Data) -> Node | None:
        """`inner` (or its rounding) if it reproduces every row, else None."""
        values = inner.evaluate(data.columns, data.n)
        if self.quantum is None:
            return inner if bool(np.all(agrees(values, self.y, rtol=self.rtol))) else None
        # where the rounding decides a tie, the order of the float products matters: try the
        # orders code is written in (coefficient first or last, arguments rotated)
        near: list[Node] = []
        for ordered in _orderings(inner):
            for mode, eps in self.modes:
                node = Round(ordered, self.quantum, mode, eps)
                rounded = node.evaluate(data.columns, data.n)
                wrong = ~(np.abs(rounded - self.y) <= 1e-9 * np.maximum(np.abs(self.y), self.quantum))
                if not wrong.any():
                    return node
                if ordered is inner and np.count_nonzero(wrong) <= max(2, 0.05 * data.n):
                    near.append(node)
        # wrong on a tie or two only: the code computes it another way (a shared factor)
        from ._ties import match_columns  # needs this module's nodes

        for node in near[:1]:
            if self.tries[0] >= MATCH_TRIES:
                break
            self.tries[0] += 1
            found = match_columns(node, data.columns, self.y, nudge=False, differences=self.differences)
            if found is not None:
                return found
        return None


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


def orderings(expression: "Expression") -> list["Expression"]:
    """`expression` and the same with its products' factors in the other orders code writes
    them, the rounding kept: on rows where the rounding meets a tie only the code's order is
    right, so a caller that sees more rows than the fit did picks among these."""
    root = expression.root
    if isinstance(root, Round):
        return [Expression(Round(o, root.quantum, root.mode, root.eps), expression.rows) for o in _orderings(root.arg)]
    return [Expression(o, expression.rows) for o in _orderings(root)]


def _monomials(names: Sequence[str], degree: int) -> list[tuple[str, ...]]:
    return [m for m in itertools.combinations_with_replacement(names, degree)]


def _groups(data: _Data, terms: int) -> list[tuple[str, ...]]:
    """Coefficient dependencies to try for `terms` monomials: none, then the finest one the rows
    can identify (every categorical argument at once; the fit shrinks each coefficient's table
    to the arguments it varies with), else the maximal identifiable smaller ones."""
    cats = list(data.cats)
    if not cats:
        return [()]

    def feasible(g: tuple[str, ...]) -> bool:
        return bool(np.bincount(data.cells(g)[0]).min() >= terms + 1)

    full = tuple(cats)
    if feasible(full):
        return [(), full]
    candidates = sorted(itertools.combinations(cats, 2), key=lambda g: -len(data.cells(g)[1])) + [(c,) for c in cats]
    chosen: list[tuple[str, ...]] = []
    for g in candidates:
        if feasible(g) and not any(set(g) <= set(c) for c in chosen):
            chosen.append(g)
    return [(), *chosen]


def _structures(data: _Data, max_degree: int, min_degree: int = 0,
                require: str | None = None) -> Iterable[tuple[list[tuple[str, ...]], tuple[str, ...]]]:
    """(monomials, coefficient dependency) to try, from simple to complex: of total degree
    `min_degree`..`max_degree`, and (with `require`) holding that argument somewhere."""
    names = list(data.numeric)
    tried: set[frozenset[tuple[str, ...]]] = set()

    def sets(degree: int) -> Iterable[list[tuple[str, ...]]]:
        if degree == 0:
            yield [()]
            return
        if degree == 1:
            yield [()] + [(x,) for x in names]
            return
        new = _monomials(names, degree)
        yield from ([m] for m in new)
        yield from ([(), m] for m in new)
        yield from ([()] + [(x,) for x in names] + [m] for m in new)
        yield [m for d in range(degree + 1) for m in _monomials(names, d)]

    for degree in range(0, max_degree + 1 if names else 1):
        for monomials in sets(degree):
            key = frozenset(monomials)
            if key in tried:
                continue
            tried.add(key)
            if degree < min_degree or (require is not None and not any(require in m for m in monomials)):
                continue
            for g in _groups(data, len(monomials)):
                yield monomials, g


def _monomial_values(data: _Data, m: tuple[str, ...]) -> np.ndarray:
    values = np.ones(data.n)
    for name in m:
        values = values * data.numeric[name]
    return values


@dataclass
class _Solved:
    terms: list[tuple[tuple[str, ...], tuple[str, ...]]]  # (monomial, dependency)
    keys: list[list[tuple[Any, ...]]]  # per term, the cells (combinations of its dependency)
    coef: list[np.ndarray]  # per term, a coefficient per cell (NaN: not identified)
    se: list[np.ndarray]
    scale: list[np.ndarray]  # per term and cell, the largest |monomial| (for zero tests)


@dataclass
class _Design:
    X: np.ndarray  # columns scaled to a largest |value| of 1
    scale: np.ndarray
    where: list[tuple[int, int]]  # per column: (term, cell)
    keys: list[list[tuple[Any, ...]]]  # per term, its cells


def _design(data: _Data, terms: list[tuple[tuple[str, ...], tuple[str, ...]]]) -> _Design | None:
    """The least squares design for `terms`; None when the rows cannot identify and check it."""
    # every cell needs more rows than the terms it carries, or nothing checks its entries
    for g in {g for _, g in terms if g}:
        if np.bincount(data.cells(g)[0]).min() < len(terms) + 1:
            return None
    blocks, where = [], []
    keys_per_term: list[list[tuple[Any, ...]]] = []
    for t, (m, g) in enumerate(terms):
        values = _monomial_values(data, m)
        keys = data.cells(g)[1]
        keys_per_term.append(keys)
        block = values[:, None] if len(keys) == 1 else data.onehot(g) * values[:, None]
        scale = np.max(np.abs(block), axis=0)
        kept = np.flatnonzero(scale > 0)  # a cell where the monomial is 0 on every row says nothing
        blocks.append(block[:, kept])
        where += [(t, int(j)) for j in kept]
    p = len(where)
    if p == 0 or data.n < p + (0 if p == 1 and not terms[0][1] and not terms[0][0] else 1):
        return None
    X = np.concatenate(blocks, axis=1)
    charge_design(*X.shape)
    scale = np.max(np.abs(X), axis=0)
    return _Design(X / scale, scale, where, keys_per_term)


def _screen(data: _Data, design: _Design, y: np.ndarray, quantum: float | None, budget: _Budget) -> str | None:
    """One least squares solve on a sample of the rows: 'exact' when the structure may be exact,
    'rounded' when it may be after rounding, None when it cannot be (most structures)."""
    if not budget.take():
        return None
    p = design.X.shape[1]
    sub = data.screen[: 2 * p + 20] if data.n > 3 * p + 40 else slice(None)
    beta, _, rank, _ = np.linalg.lstsq(design.X[sub], y[sub], rcond=None)
    residual = float(np.max(np.abs(design.X[sub] @ beta - y[sub])))
    if residual <= 1e-7 * max(float(np.max(np.abs(y))), 1e-300):
        return "exact"
    if quantum is not None and residual <= quantum * 1.01:
        return "rounded"
    return None


def _solve(design: _Design, terms: list[tuple[tuple[str, ...], tuple[str, ...]]], target: _Target) -> _Solved | None:
    """Least squares for `terms` on every row; None when not identifiable or the residual rules
    out exactness."""
    Xs, scale, where = design.X, design.scale, design.where
    p = Xs.shape[1]
    y = target.y + target.shift
    beta, _, rank, _ = np.linalg.lstsq(Xs, y, rcond=None)
    if rank < p:
        return None
    if not _residual_ok(np.abs(Xs @ beta - y), y, target):
        return None
    coef = beta / scale
    if target.sigma > 0:
        try:
            cov = np.linalg.inv(Xs.T @ Xs)
        except np.linalg.LinAlgError:
            return None
        se = target.sigma * np.sqrt(np.clip(np.diag(cov), 0, None)) / scale
    else:
        se = np.zeros(p)
    keys_per_term = design.keys
    out_coef = [np.full(len(k), np.nan) for k in keys_per_term]
    out_se = [np.zeros(len(k)) for k in keys_per_term]
    out_scale = [np.zeros(len(k)) for k in keys_per_term]
    for i, (t, j) in enumerate(where):
        out_coef[t][j], out_se[t][j], out_scale[t][j] = coef[i], se[i], scale[i]
    return _Solved(terms, keys_per_term, out_coef, out_se, out_scale)


def _residual_ok(residual: np.ndarray, y: np.ndarray, target: _Target) -> bool:
    """Least squares residuals small enough that snapping may make the fit exact."""
    if target.quantum is None:
        return float(np.max(residual)) <= 1e-7 * max(float(np.max(np.abs(y))), 1e-300)
    return float(np.max(residual)) <= target.quantum * 1.01


def _close(a: float, b: float, sa: float, sb: float, rel: float) -> bool:
    return abs(a - b) <= 4.0 * math.hypot(sa, sb) + rel * max(abs(a), abs(b)) + 1e-300


def _simplify(data: _Data, solved: _Solved, target: _Target) -> list[tuple[tuple[str, ...], tuple[str, ...]]] | None:
    """Per monomial, drop it when its coefficients are zero, and shrink its dependency to the
    fewest arguments its coefficients vary with (at most two); None when that is impossible."""
    yscale = max(float(np.max(np.abs(target.y))), 1e-300)
    rel = 1e-6 if target.quantum is None else 1e-9
    terms = []
    for (m, g), keys, coef, se, scale in zip(solved.terms, solved.keys, solved.coef, solved.se, solved.scale):
        known = ~np.isnan(coef)
        zero_tol = 4.0 * se + (1e-8 * yscale / np.maximum(scale, 1e-300) if target.quantum is None else 0.0)
        if np.all(np.abs(coef[known]) <= zero_tol[known]):
            continue
        chosen = None
        for size in range(0, min(len(g), 2) + 1):
            for sub in itertools.combinations(range(len(g)), size):
                groups: dict[tuple[Any, ...], list[int]] = {}
                for j, key in enumerate(keys):
                    if known[j]:
                        groups.setdefault(tuple(key[i] for i in sub), []).append(j)
                if all(_close(coef[min(members, key=lambda j: se[j])], coef[b],
                              se[min(members, key=lambda j: se[j])], se[b], rel)
                       for members in groups.values() for b in members):
                    chosen = tuple(g[i] for i in sub)
                    break
            if chosen is not None:
                break
        if chosen is None:
            return None
        terms.append((m, chosen))
    return terms


def _snap(value: float, tol: float) -> tuple[float, Fraction | None]:
    """The shortest decimal (or small rational, returned as a Fraction) within `tol` of value."""
    if abs(value) <= tol:
        return 0.0, None
    best, digits = value, 17
    for p in range(1, 16):
        candidate = float(f"{value:.{p}g}")
        if abs(candidate - value) <= tol:
            best, digits = candidate, p
            break
    for limit in (12, 100, 1000):
        fraction = Fraction(value).limit_denominator(limit)
        den = fraction.denominator
        if den == 1 or abs(float(fraction) - value) > tol:
            continue
        while den % 2 == 0:
            den //= 2
        while den % 5 == 0:
            den //= 5
        length = len(str(abs(fraction.numerator))) + len(str(fraction.denominator))
        if den != 1 and length < digits:  # not a terminating decimal, and shorter written p/q
            return float(fraction), fraction
        break
    return best, None


def _build(data: _Data, terms: list[tuple[tuple[str, ...], tuple[str, ...]]], solved: _Solved,
           snap: Callable[[float, float, float], tuple[float, Fraction | None]] | None) -> Node:
    """The expression tree for solved terms, coefficients snapped by `snap(value, se, scale)`."""
    nodes: list[tuple[int, Node]] = []
    for (m, g), keys, coef, se, scale in zip(terms, solved.keys, solved.coef, solved.se, solved.scale):
        factors = [data.nodes[name] for name in m]
        if not g:
            value, fraction = (coef[0], None) if snap is None else snap(coef[0], se[0], scale[0])
            if value == 0:
                continue
            if fraction is not None:
                num = [Const(float(fraction.numerator))] if fraction.numerator != 1 or not factors else []
                top = num + factors
                node: Node = Div(top[0] if len(top) == 1 else Product(tuple(top)), Const(float(fraction.denominator)))
            elif not factors:
                node = Const(value)
            elif value == 1:
                node = factors[0] if len(factors) == 1 else Product(tuple(factors))
            else:
                node = Product((Const(value), *factors))
        else:
            entries = []
            for key, c, s, sc in zip(keys, coef, se, scale):
                if math.isnan(c):
                    continue
                value = c if snap is None else snap(c, s, sc)[0]
                entries.append((tuple(key), float(value)))
            entries.sort(key=lambda e: tuple(repr(k) for k in e[0]))
            table = Table(g, tuple(entries))
            node = Product((*factors, table)) if factors else table
        nodes.append((len(m), node))
    nodes.sort(key=lambda item: item[0])
    if len(nodes) > 1 and isinstance(nodes[0][1], Const) and nodes[0][1].value < 0:
        nodes.append(nodes.pop(0))  # `0.1 * income - 1000` reads better than `-1000 + 0.1 * income`
    if not nodes:
        return Const(0.0)
    return nodes[0][1] if len(nodes) == 1 else Sum(tuple(node for _, node in nodes))


def _try_structure(data: _Data, monomials: list[tuple[str, ...]], group: tuple[str, ...],
                   targets: list[_Target], budget: _Budget) -> Node | None:
    """The expression of one structure (monomials, each with a coefficient depending on `group`)
    that reproduces every row under one of `targets`, or None."""
    terms = [(m, group) for m in monomials]
    design = _design(data, terms)
    if design is None:
        return None
    screened = _screen(data, design, targets[0].y, targets[-1].quantum, budget)
    if screened is None:
        return None
    for target in targets:
        if target.quantum is None and screened != "exact":
            continue
        node = _fit_target(data, terms, design, target)
        if node is not None:
            return node
    return None


def _identified(data: _Data, terms: list[tuple[tuple[str, ...], tuple[str, ...]]]) -> bool:
    """Every cell has more distinct rows than the monomials fitted in it: else an exact fit there
    is an interpolation that proves nothing (two distinct x values make any y affine in x)."""
    if len(terms) < 2:
        return True
    group = terms[0][1]
    values = np.column_stack([_monomial_values(data, m) for m, _ in terms])
    codes, keys = data.cells(group)
    for j in range(len(keys)):
        if len(np.unique(values[codes == j], axis=0)) < len(terms) + 1:
            return False
    return True


def _fit_target(data: _Data, terms: list[tuple[tuple[str, ...], tuple[str, ...]]], design: _Design,
                target: _Target) -> Node | None:
    if not _identified(data, terms):
        return None
    solved = _solve(design, terms, target)
    if solved is None:
        return None
    simpler = _simplify(data, solved, target)
    if simpler is None:
        return None
    if not simpler:
        return target.accept(Const(0.0), data)
    if simpler != solved.terms:
        design = _design(data, simpler)
        solved = None if design is None else _solve(design, simpler, target)
        if solved is None:
            return None
    terms = simpler
    yscale = max(float(np.max(np.abs(target.y))), 1e-300)
    if target.quantum is None:
        tolerances = [lambda v, s, sc, r=r: _snap(v, max(r * abs(v), 1e-12 * yscale / max(sc, 1e-300)))
                      for r in (1e-9, 1e-6)]
    else:
        tolerances = [lambda v, s, sc, k=k: _snap(v, max(k * s, 1e-12 * abs(v))) for k in (3.0, 1.0, 10.0)]
    seen = set()
    for snap in [*tolerances, None]:
        node = _build(data, terms, solved, snap)
        text = node.source()
        if text in seen:
            continue
        seen.add(text)
        accepted = target.accept(node, data)
        if accepted is not None:
            return accepted
    return None


def _targets(y: np.ndarray, quantum: float | None, rtol: float,
             differences: tuple[tuple[str, str | None], ...] = ()) -> list[_Target]:
    targets = [_Target(y, rtol)]
    if quantum:
        e, d = DECIMAL_EPS, differences
        targets += [
            _Target(y, rtol, quantum, 0.0, (("half_even", 0.0), ("half_up", e), ("half_up", 0.0)), differences=d),
            _Target(y, rtol, quantum, quantum / 2, (("floor", e), ("floor", 0.0)), differences=d),
            _Target(y, rtol, quantum, -quantum / 2, (("ceil", e), ("ceil", 0.0)), differences=d),
        ]
    return targets


def _fit_sums(data: _Data, y: np.ndarray, quantum: float | None, rtol: float, max_degree: int,
              budget: _Budget, *, min_degree: int = 0, require: str | None = None) -> Node | None:
    """The first sum-of-terms structure (or its rounding) that reproduces every row."""
    targets = _targets(y, quantum, rtol, budget.differences)
    for monomials, group in _structures(data, max_degree, min_degree, require):
        if budget.used >= budget.limit:
            return None
        node = _try_structure(data, monomials, group, targets, budget)
        if node is not None:
            return node
    return None


def _step_features(data: _Data, y: np.ndarray, quantum: float | None) -> list[tuple[str, Node, bool]]:
    """Candidate `floor/ceil((x - x0) / w)` features, each with whether the rows show it (y
    changes with x only at a few, evenly spaced points) or it is only a usual unit to try."""
    found: list[tuple[str, Node, bool]] = []
    inners: list[tuple[str, Node, bool]] = []
    codes, _ = data.cells(tuple(data.cats))
    tol = (quantum or 0.0) * 0.5 + 1e-12 * max(float(np.max(np.abs(y))), 1.0)
    plans = []
    whole = np.zeros(data.n, dtype=np.int64)
    for name in [k for k, node in data.nodes.items() if isinstance(node, Var)]:
        rest = [v for k, v in data.numeric.items() if k != name]
        # y as a function of x alone; per category; per group of equal other arguments
        plans += [(name, [], whole)] + ([(name, [], codes)] if data.cats else []) + (
            [(name, rest, codes)] if rest else [])
    for name, others, cells in plans:
        x = data.numeric[name]
        order = np.lexsort((x, *others, cells))
        xs, ys, cs = x[order], y[order], cells[order]
        same = (cs[1:] == cs[:-1])
        for other in others:
            same &= other[order][1:] == other[order][:-1]
        pairs = same & (xs[1:] > xs[:-1])
        if np.any(same & (xs[1:] == xs[:-1]) & (np.abs(ys[1:] - ys[:-1]) > tol)):
            continue  # y changes where x does not: not a step of x alone
        changed = pairs & (np.abs(ys[1:] - ys[:-1]) > tol)
        if not np.any(changed) or changed.sum() > 0.5 * pairs.sum():
            continue
        lows, highs = xs[:-1][changed], xs[1:][changed]
        intervals: list[list[float]] = []
        for lo, hi in sorted(zip(lows.tolist(), highs.tolist())):
            if intervals and lo < intervals[-1][1]:  # the same boundary seen in another cell
                intervals[-1] = [max(intervals[-1][0], lo), min(intervals[-1][1], hi)]
            else:
                intervals.append([lo, hi])
        inner = _step_inner(name, intervals)
        if inner is not None:
            inners.append((name, inner, True))
    for name in [k for k, node in data.nodes.items() if isinstance(node, Var)]:
        inners += [(name, inner, True) for inner in _support_steps(name, data.numeric[name])]
    # where other arguments move the output too, steps do not show in one argument's order:
    # try the usual units (per started kg, per quarter hour, per 100), counted from the
    # multiple of the unit just below the path's smallest value
    for name in [k for k, node in data.nodes.items() if isinstance(node, Var)]:
        x = data.numeric[name]
        span = float(np.ptp(x))
        for w in STEP_UNITS:
            if 2 <= span / w <= 1000:
                x0 = math.floor(float(np.min(x)) / w) * w
                inner: Node = Var(name) if x0 == 0 else Sum((Var(name), Const(-float(x0))))
                inners.append((name, inner if w == 1 else Div(inner, Const(float(w))), False))
    for name, inner, shown in inners:
        for fn in ("ceil", "floor"):
            if not any(node == Call(fn, inner) for _, node, _ in found):
                found.append((f"\0{fn}:{len(found)}:{name}", Call(fn, inner), shown))
    return found


def _support_steps(name: str, x: np.ndarray) -> list[Node]:
    """Steps a path's own rows show by the values they take: a whole-number argument reaching
    only some residues of a period (`days % 7 >= 3` leaves days 3-6 of each week) counts that
    period, `floor((x - r0) / w)` and the same plus one, where r0 starts the residues it holds."""
    if not np.all(x == np.round(x)):
        return []
    values = np.unique(x.astype(np.int64))
    for w in range(2, 61):
        if values.size < 3 * w or (values[-1] - values[0]) < 3 * w:
            break  # too few values to tell a period
        residues = np.unique(values % w)
        if residues.size >= w:
            continue
        # the residues held must be one run around the cycle (3, 4, 5, 6 of 7; or 5, 6, 0 of 7)
        held = np.zeros(w, dtype=bool)
        held[residues] = True
        starts = [r for r in range(w) if held[r] and not held[(r - 1) % w]]
        if len(starts) != 1:
            continue
        r0 = starts[0]
        found: list[Node] = []
        for x0 in (r0, r0 - w):
            inner: Node = Var(name) if x0 == 0 else Sum((Var(name), Const(-float(x0))))
            found.append(Div(inner, Const(float(w))))
        return found
    return []


def _step_inner(name: str, intervals: list[list[float]]) -> Node | None:
    """`(x - x0) / w` whose integer crossings fall in every interval where the output steps, with
    w and x0 as short as the intervals allow; None when no even spacing fits them."""
    mids = np.array([(lo + hi) / 2 for lo, hi in intervals])
    if len(mids) >= 2:
        gaps = np.diff(mids)
        w0 = float(np.min(gaps))
        index = np.concatenate([[0], np.cumsum(np.maximum(1, np.round(gaps / w0)))])
        if index[-1] > 10_000:
            return None
        w_est = float(np.polyfit(index, mids, 1)[0]) if index[-1] > 0 else w0
        slack = max(hi - lo for lo, hi in intervals)
        w, _ = _snap(w_est, slack / max(1.0, float(index[-1])))
    else:
        index = np.zeros(1)
        w, _ = _snap(float(mids[0]), (intervals[0][1] - intervals[0][0]) / 2)
    if not w > 0:
        return None
    lows = np.array([lo for lo, _ in intervals]) - w * index
    highs = np.array([hi for _, hi in intervals]) - w * index
    a_lo, a_hi = float(np.max(lows)), float(np.min(highs))
    if a_lo > a_hi + 1e-9 * max(1.0, abs(a_lo)):
        return None  # no offset puts a crossing in every interval
    if math.floor(a_hi / w + 1e-9) >= math.ceil(a_lo / w - 1e-9):
        inner: Node = Var(name)  # crossings on multiples of w
    else:
        x0, _ = _snap((a_lo + a_hi) / 2, (a_hi - a_lo) / 2)
        inner = Sum((Var(name), Const(-x0)))
    return inner if w == 1 else Div(inner, Const(w))


def _search(data: _Data, y: np.ndarray, quantum: float | None, rtol: float, max_degree: int,
            budget: _Budget, steps: bool) -> Node | None:
    """Sums of degree <= 3; then with a step feature, degree 1, then 2."""
    node = _fit_sums(data, y, quantum, rtol, max_degree, budget)
    if node is not None or not steps or max_degree < 1:
        return node
    features: list[tuple[str, Node, _Data, bool]] = []
    for name, feature, shown in _step_features(data, y, quantum):
        values = feature.evaluate(data.columns, data.n)
        if _useful_step(data, feature, values):
            features.append((name, feature, data.with_feature(name, feature, values), shown))
    for low, high in ((0, 1), (2, 2)):
        if high > max_degree:
            break
        for index, (name, feature, with_step, shown) in enumerate(features):
            if high == 2 and not shown:
                continue  # products with a step only for steps the rows show: usual units are many
            node = _fit_sums(with_step, y, quantum, rtol, high, budget, min_degree=low, require=name)
            if node is None:
                continue
            # the same steps counted the other way (floor for ceil) may read simpler
            for other_name, other, other_data, other_shown in features[index + 1:]:
                if isinstance(other, Call) and isinstance(feature, Call) and (other.arg == feature.arg or (
                        shown and other_shown and other.names() == feature.names())):
                    twin = _fit_sums(other_data, y, quantum, rtol, high, budget, min_degree=low, require=other_name)
                    if twin is not None and twin.complexity < node.complexity:
                        node = twin
            return node
    return None


def _useful_step(data: _Data, feature: Node, values: np.ndarray) -> bool:
    """A step feature worth a search: finite, varying, and not just an affine function of its
    argument on these rows (floor(qty) of an integer qty)."""
    if not np.all(np.isfinite(values)) or np.ptp(values) == 0:
        return False
    name = next(iter(feature.names()))
    x = data.numeric.get(name)
    if x is None:
        return True
    design = np.column_stack([np.ones(data.n), x])
    coef, *_ = np.linalg.lstsq(design, values, rcond=None)
    return bool(np.max(np.abs(design @ coef - values)) > 1e-9 * max(1.0, float(np.max(np.abs(values)))))


def _fit_clamped(data: _Data, y: np.ndarray, quantum: float | None, rtol: float, max_degree: int,
                 budget: _Budget, steps: bool) -> Node | None:
    """`min(E, hi)`, `max(E, lo)`, `min(max(E, lo), hi)`: the bounds are the outputs that repeat."""
    # min(E, hi) makes hi the largest output and max(E, lo) the smallest, each reached by several rows
    top, bottom = float(np.max(y)), float(np.min(y))
    high = top if np.count_nonzero(y == top) >= 2 else None
    low = bottom if np.count_nonzero(y == bottom) >= 2 else None
    if low is not None and high is not None and low >= high:
        return None
    # one bound alone reads simpler; each of those gets a quarter of the solves left
    plans: list[tuple[float | None, float | None, float]] = []
    if low is not None and high is not None:
        plans += [(None, high, 0.25), (low, None, 0.25)]
    if (low, high) != (None, None):
        plans.append((low, high, 1.0))
    limit = budget.limit
    for low, high, share in plans:
        bounds = [v for v in (low, high) if v is not None]
        rest = ~np.isin(y, bounds)
        if rest.sum() < 3 or budget.used >= limit:
            continue
        budget.limit = budget.used + int((limit - budget.used) * share)
        inner = _search(data.subset(rest), y[rest], quantum, rtol, min(max_degree, 2), budget, steps)
        budget.limit = limit
        if inner is None:
            continue
        node = inner
        if low is not None:
            node = MinMax("max", (node, Const(low)))
        if high is not None:
            node = MinMax("min", (node, Const(high)))
        if np.all(agrees(node.evaluate(data.columns, data.n), y, rtol=max(rtol, 1e-12))):
            return node
    return None


def _prepare(columns: Mapping[str, Any], outputs: Any, kinds: Mapping[str, Any]) -> tuple[_Data, np.ndarray] | None:
    try:
        y = np.asarray(outputs, dtype=float)
    except (TypeError, ValueError):
        return None
    if y.ndim != 1 or y.size == 0 or not np.all(np.isfinite(y)):
        return None
    n = y.size
    numeric: dict[str, np.ndarray] = {}
    cats: dict[str, list[Any]] = {}
    plain: dict[str, Any] = {}
    for name, column in columns.items():
        kind = getattr(kinds.get(name), "kind", kinds.get(name))
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) or name.startswith("__"):
            continue
        if kind in ("real", "integer"):
            try:
                values = np.asarray(column, dtype=float)
            except (TypeError, ValueError):
                continue
            if values.shape != (n,) or not np.all(np.isfinite(values)):
                continue
            plain[name] = values
            if np.ptp(values) > 0:
                numeric[name] = values
        elif kind in ("boolean", "categorical"):
            values_list = _as_list(column)
            if len(values_list) != n or not all(_is_key(v) for v in values_list):
                continue
            plain[name] = values_list
            if len(set(values_list)) > 1:
                cats[name] = values_list
    data = _Data(n, plain, numeric, {k: Var(k) for k in numeric}, cats)
    return data, y


def fit_expression(columns: Mapping[str, Any], outputs: Any, kinds: Mapping[str, Any], *,
                   quantum: float | None | str = "auto", rtol: float = 1e-9, max_degree: int = 3,
                   max_candidates: int = 600, steps: bool = True, minmax: bool = True,
                   differences: Sequence[tuple[str, str | None]] = ()) -> Expression | None:
    """The simplest expression that reproduces every row of one path, or None.

    `columns`: argument name -> values (numpy arrays; lists or object arrays for categories),
    all of the rows' length; `outputs`: the path's outputs; `kinds`: argument name -> field kind
    ('real', 'integer', 'boolean', 'categorical'; a `Field` or a whole `Schema` works too; other
    kinds are ignored).
    `quantum`: the output's rounding grid (`OutputSpec.quantum`); 'auto' detects a decimal grid
    from the outputs, None accepts exact expressions only. `max_candidates` caps the least
    squares solves, so a path no expression fits costs bounded time. `differences`: argument pairs
    the code subtracts (`weekday = hours - sunday`), so a candidate wrong on a tie or two is also
    tried counted from them (`_ties.substituted`).
    """
    if hasattr(kinds, "fields"):  # a Schema
        kinds = {f.name: f.kind for f in kinds.fields}
    if max_degree not in (0, 1, 2, 3):
        raise bad_argument("max_degree", max_degree, "must be 0, 1, 2 or 3")
    if not rtol >= 0:
        raise bad_argument("rtol", rtol, "must be >= 0")
    prepared = _prepare(columns, outputs, kinds)
    if prepared is None:
        return None
    data, y = prepared
    if quantum == "auto":
        quantum = output_quantum(y)
    elif quantum is not None and not (isinstance(quantum, (int, float)) and quantum > 0 and math.isfinite(quantum)):
        raise bad_argument("quantum", quantum, "must be a positive number, None or 'auto'")
    # the plain search may use 60% of the solves; min/max gets the rest
    budget = _Budget(int(max_candidates * 0.6) if minmax else int(max_candidates), 0, tuple(differences))
    with _one_blas_thread():  # many small solves: threads only contend
        node = _search(data, y, quantum, rtol, max_degree, budget, steps)
        if node is None and minmax:
            budget.limit = int(max_candidates)
            node = _fit_clamped(data, y, quantum, rtol, max_degree, budget, steps)
    return None if node is None else Expression(node, data.n)


def fit_groups(inputs: Sequence[Mapping[str, Any]], outputs: Sequence[Any], keys: Sequence[Any],
               kinds: Mapping[str, Any], *, min_rows: int = 1, **options: Any) -> dict[Any, Expression | None]:
    """`fit_expression` per group of rows: `inputs` are kwargs dicts, `keys` their group (a
    `PathCall.signature` or `.path`); groups under `min_rows` rows get None without a search.
    Rows whose output is None or not a number (calls that raised) belong to no group."""
    if not len(inputs) == len(outputs) == len(keys):
        raise bad_argument("inputs/outputs/keys", (len(inputs), len(outputs), len(keys)), "must have the same length")
    if hasattr(kinds, "fields"):
        kinds = {f.name: f.kind for f in kinds.fields}
    members: dict[Any, list[int]] = {}
    for i, (key, output) in enumerate(zip(keys, outputs)):
        if isinstance(output, (int, float, np.integer, np.floating)) and not isinstance(output, bool):
            members.setdefault(key, []).append(i)
    found: dict[Any, Expression | None] = {}
    for key, rows in members.items():
        if len(rows) < min_rows:
            found[key] = None
            continue
        columns = {name: [inputs[i].get(name) for i in rows] for name in kinds}
        found[key] = fit_expression(columns, [outputs[i] for i in rows], kinds, **options)
    return found


def _one_blas_thread() -> Any:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


# -- exact thresholds --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Threshold:
    """Where a path changes along one numeric argument: `low` and `high` are adjacent floats (or
    integers) on either side; `value` is the rounder of the two. With `below_inclusive`, the
    rows with `field <= value` take `below`; without, those with `field < value` do."""

    field: str
    value: float
    below_inclusive: bool
    below: Any
    above: Any
    low: float
    high: float
    calls: int

    @property
    def condition(self) -> str:
        """The below side's condition as Python text."""
        value = _number_text(self.value) if isinstance(self.value, float) else repr(self.value)
        return f"{self.field} {'<=' if self.below_inclusive else '<'} {value}"


def _ordered(x: float) -> int:
    bits = struct.unpack(">q", struct.pack(">d", x))[0]
    return bits if bits >= 0 else -(bits & 0x7FFFFFFFFFFFFFFF)


def _unordered(k: int) -> float:
    bits = k if k >= 0 else (-k) | (1 << 63)
    return struct.unpack(">d", struct.pack(">Q", bits))[0]


def bisect_threshold(fn_path_of: Callable[[dict[str, Any]], Any], lo_row: Mapping[str, Any],
                     hi_row: Mapping[str, Any], field: str) -> Threshold:
    """Bisect with the oracle between two rows that differ only in numeric `field` and take
    different paths, down to adjacent floats (integers when both values are ints): the exact
    cut the code compares against, wherever it lives (a literal, a table, a variable).

    `fn_path_of(row)` returns the path of a row (e.g. `call_with_path(fn, row).signature`). At
    most ~64 calls for floats. Where several cuts lie between the rows, one of them is found.
    """
    if set(lo_row) != set(hi_row) or field not in lo_row:
        raise bad_argument("field", field, "must be a key of both rows, and the rows must have the same keys")
    differing = [k for k in lo_row if k != field and not _same(lo_row[k], hi_row[k])]
    if differing:
        raise bad_argument("hi_row", {k: hi_row[k] for k in differing},
                           f"the rows must differ only in {field!r}; they also differ in {differing}")
    a, b = lo_row[field], hi_row[field]
    for v in (a, b):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
            raise bad_argument(field, v, "must be a finite number in both rows")
    if a == b:
        raise bad_argument(field, a, "the two rows have the same value; nothing to bisect")
    if a > b:
        a, b = b, a
    base = dict(lo_row)
    calls = 0

    def path(value: Any) -> Any:
        nonlocal calls
        calls += 1
        return fn_path_of({**base, field: value})

    path_a, path_b = path(a), path(b)
    if path_a == path_b:
        raise bad_argument(field, (a, b), "both rows take the same path; pass rows on different paths")
    integer = isinstance(a, (int, np.integer)) and isinstance(b, (int, np.integer))
    if integer:
        lo, hi = int(a), int(b)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            p = path(mid)
            if p == path_a:
                lo = mid
            else:
                hi, path_b = mid, p
        return Threshold(field, lo, True, path_a, path_b, lo, hi, calls)
    ka, kb = _ordered(float(a)), _ordered(float(b))
    while kb - ka > 1:
        km = (ka + kb) // 2
        p = path(_unordered(km))
        if p == path_a:
            ka = km
        else:
            kb, path_b = km, p
    low, high = _unordered(ka), _unordered(kb)
    below_inclusive = len(repr(low)) <= len(repr(high))
    return Threshold(field, low if below_inclusive else high, below_inclusive, path_a, path_b, low, high, calls)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) or (a is b)
    except Exception:  # arrays and odd types: compare by identity
        return a is b
