"""An exact expression as data: validated from dicts (`node_from_dict`: node kinds, identifier
names, finite numbers, literal table keys) into `Expression`, which evaluates and emits Python
source; `agrees` is the row check every fit is held to."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from ._expression_nodes import (CALLS, FORMAT, MAX_DEPTH, MAX_NODES, ROUND_MODES, VERSION, Call, Const, Div,
                                ExpressionError, MinMax, Node, Product, Round, Sum, Table, Var, _check_name,
                                _check_number, _is_key, _orderings)


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



def orderings(expression: "Expression") -> list["Expression"]:
    """`expression` and the same with its products' factors in the other orders code writes
    them, the rounding kept: on rows where the rounding meets a tie only the code's order is
    right, so a caller that sees more rows than the fit did picks among these."""
    root = expression.root
    if isinstance(root, Round):
        return [Expression(Round(o, root.quantum, root.mode, root.eps), expression.rows) for o in _orderings(root.arg)]
    return [Expression(o, expression.rows) for o in _orderings(root)]
