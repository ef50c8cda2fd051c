"""An exact program: the partition and pieces `learn_exact` found, as validated data a surrogate
can carry, save, load and evaluate (issue 15).

`explain.distill` emits the same partition as Python source; a surrogate cannot execute source
(loading data never runs code), so it keeps the partition as numbers and `Expression` trees and
evaluates them here: a row walks the tests (a number against a bisected threshold, a category by
equality, a value the code compares: an `Expression`, a `Ratio` or a `Scorecard`) to a leaf that
answers with an expression (in float64), a constant or label, or a raise; a `neural` leaf (a
piece no expression reproduces, or one the fit rejected) answers nothing and the network does.
A test's value is computed as the partition was learned on (`probes._partition.Encoding`: a
derived value that cannot be computed counts as 0), so route and rules agree row for row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ._derived import Ratio
from ._errors import InvalidArgument
from ._expressions import Expression, ExpressionError
from ._partition import _same
from ._scorecard import Scorecard
from ._traces import ErrorInfo

FORMAT = "neuroswap.exact_program"
VERSION = 1
TEST_KINDS = ("real", "integer", "boolean", "category", "derived")
LEAF_KINDS = ("expression", "constant", "raise", "neural")
RATIO_FORMS = ("div", "div_sq", "mul")
_SCALARS = (str, int, float, bool, type(None))


class ProgramError(InvalidArgument):
    """Exact-program data that is not a valid program (a saved surrogate edited or damaged)."""


@dataclass(frozen=True)
class NodeTest:
    """What an internal node compares: a number (`real`/`integer`), a boolean, one category's
    flag (`category` holds the value), or a derived value (`derived`)."""

    field: str
    kind: str
    category: Any = None
    derived: Any = None  # Expression | Ratio | Scorecard

    def batch(self, columns: Mapping[str, Any], n: int) -> np.ndarray:
        if self.kind == "category":
            return np.array([1.0 if _same(v, self.category) else 0.0 for v in columns[self.field]])
        if self.kind == "derived":
            names = self.derived.names
            if not all(k in columns for k in names):
                return np.zeros(n)
            try:
                values = self.derived.evaluate({k: columns[k] for k in names}, n)
            except Exception:  # one row at a time, as the partition was learned (`Encoding`)
                values = [self.one({k: columns[k][i] for k in names}) for i in range(n)]
            return np.nan_to_num(np.asarray(values, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
        return np.asarray(columns[self.field], dtype=float)

    def one(self, row: Mapping[str, Any]) -> float:
        if self.kind == "category":
            return 1.0 if _same(row[self.field], self.category) else 0.0
        if self.kind == "derived":
            try:
                value = float(self.derived.evaluate_row(row))
            except Exception:
                return 0.0
            return value if math.isfinite(value) else 0.0
        return float(row[self.field])


@dataclass(frozen=True)
class Leaf:
    """What a leaf answers: `expression` (float64), `constant` (a number or label), `raise`
    (`error`), or `neural` (the network answers). `note` says why a leaf is neural."""

    kind: str
    expression: Expression | None = None
    value: Any = None
    error: ErrorInfo | None = None
    note: str = ""


class ExactProgram:
    """Tests in preorder (`nodes`: (test index, threshold, strict, left, right, leaf index);
    a leaf has test index -1), the tests, and the leaves. Left is taken when the value is
    below the threshold (`strict`) or at most it."""

    def __init__(self, tests: Sequence[NodeTest], nodes: Sequence[tuple[int, float, bool, int, int, int]],
                 leaves: Sequence[Leaf], output_type: str) -> None:
        self.tests = tuple(tests)
        self.nodes = tuple(nodes)
        self.leaves = tuple(leaves)
        self.output_type = output_type
        self._int = output_type == "int"
        #: the arguments the program reads (its tests and its expressions)
        self.names: frozenset[str] = frozenset(
            name for test in self.tests for name in (test.derived.names if test.kind == "derived" else (test.field,))
        ) | frozenset(name for leaf in self.leaves if leaf.expression is not None for name in leaf.expression.names)
        self._row_functions: list[Any] = [None] * len(self.leaves)
        self._walk: Any = None
        self._test_functions: list[Any] = [None] * len(self.tests)

    # -- views --------------------------------------------------------------------------------
    @property
    def served_leaves(self) -> int:
        return sum(1 for leaf in self.leaves if leaf.kind != "neural")

    @property
    def exact(self) -> bool:
        """Every leaf answers without the network."""
        return all(leaf.kind != "neural" for leaf in self.leaves)


    def without(self, leaves: Sequence[int], note: str) -> "ExactProgram":
        """The same program with these leaves answered by the network."""
        dropped = set(leaves)
        kept = [Leaf("neural", note=note) if i in dropped else leaf for i, leaf in enumerate(self.leaves)]
        return ExactProgram(self.tests, self.nodes, kept, self.output_type)

    def use_row_functions(self, make: Any) -> None:
        """Evaluate expression leaves on single rows with `make(expression.root)` (a faster closure
        built from the validated tree, e.g. `replace._hybrid.row_function`)."""
        self._row_functions = [make(leaf.expression.root) if leaf.kind == "expression" else None
                               for leaf in self.leaves]
        self._test_functions = [_guarded(make(test.derived.root) if isinstance(test.derived, Expression)
                                         else _plain_function(test.derived))
                                if test.kind == "derived" else None for test in self.tests]
        self._walk = None  # rebuilt with them

    # -- evaluation ---------------------------------------------------------------------------
    def leaf_of(self, row: Mapping[str, Any]) -> int:
        """The leaf index of one row (the tests as nested closures, built once from the data)."""
        if self._walk is None:
            self._walk = self._closure(0)
        return self._walk(row)

    def _closure(self, k: int) -> Any:
        test, threshold, strict, left, right, leaf = self.nodes[k]
        if test < 0:
            return lambda row: leaf
        go_left, go_right = self._closure(left), self._closure(right)
        spec = self.tests[test]
        if spec.kind in ("real", "integer", "boolean"):
            name = spec.field
            if strict:
                return lambda row: go_left(row) if float(row[name]) < threshold else go_right(row)
            return lambda row: go_left(row) if float(row[name]) <= threshold else go_right(row)
        value_of = self._test_functions[test] or spec.one
        if strict:
            return lambda row: go_left(row) if value_of(row) < threshold else go_right(row)
        return lambda row: go_left(row) if value_of(row) <= threshold else go_right(row)

    def answer_row(self, row: Mapping[str, Any]) -> tuple[Any, ErrorInfo | None] | None:
        """(output, error) for one row (a kwargs dict), or None where the network answers."""
        index = self.leaf_of(row)
        leaf = self.leaves[index]
        kind = leaf.kind
        if kind == "expression":
            fast = self._row_functions[index]
            try:
                value = float(fast(row)) if fast is not None else leaf.expression.evaluate_row(row)  # type: ignore[union-attr]
            except Exception:
                return None
            if not math.isfinite(value):  # a category the table never saw: the network answers
                return None
            return (int(round(value)) if self._int else value), None
        if kind == "constant":
            return leaf.value, None
        if kind == "raise":
            return None, leaf.error
        return None

    def route(self, columns: Mapping[str, Any], n: int) -> np.ndarray:
        """The leaf index of every row."""
        out = np.full(n, -1, dtype=np.int64)
        values: dict[int, np.ndarray] = {}
        stack = [(0, np.arange(n))]
        while stack:
            k, index = stack.pop()
            if not index.size:
                continue
            test, threshold, strict, left, right, leaf = self.nodes[k]
            if test < 0:
                out[index] = leaf
                continue
            if test not in values:
                values[test] = self.tests[test].batch(columns, n)
            x = values[test][index]
            go = x < threshold if strict else x <= threshold
            stack.append((left, index[go]))
            stack.append((right, index[~go]))
        return out

    def answer_batch(self, columns: Mapping[str, Any], n: int) -> tuple[np.ndarray, list[Any], list[ErrorInfo | None]]:
        """Per row: whether the program answers (`served`), its output (None where it raises or
        does not answer) and its error."""
        leaf_index = self.route(columns, n)
        served = np.zeros(n, dtype=bool)
        outputs: list[Any] = [None] * n
        errors: list[ErrorInfo | None] = [None] * n
        for index in np.unique(leaf_index):
            leaf = self.leaves[int(index)]
            rows = np.flatnonzero(leaf_index == index)
            if leaf.kind == "neural":
                continue
            if leaf.kind == "raise":
                served[rows] = True
                for i in rows:
                    errors[int(i)] = leaf.error
            elif leaf.kind == "constant":
                served[rows] = True
                for i in rows:
                    outputs[int(i)] = leaf.value
            else:
                expression = leaf.expression
                try:
                    values = expression.evaluate({k: _take(columns[k], rows) for k in expression.names},  # type: ignore[union-attr]
                                                 len(rows))
                except Exception:
                    continue
                known = np.isfinite(values)
                served[rows[known]] = True
                for i, v in zip(rows[known], values[known]):
                    outputs[int(i)] = int(round(float(v))) if self._int else float(v)
        return served, outputs, errors

    # -- data ---------------------------------------------------------------------------------
    @classmethod
    def from_fit(cls, fit: Any, output_type: str, *, stand_ins: bool = True) -> "ExactProgram | str":
        """The program of a `learn_exact` fit, or the reason it cannot be carried as data (a
        category or label that is not a JSON scalar). `stand_ins=False` leaves to the network
        every leaf of a path no expression reproduces, even where a stand-in fitted on the leaf's
        own calls reproduced them all (rules may show it; a served answer should not rest on it)."""
        tests: list[NodeTest] = []
        test_of: dict[int, int] = {}
        nodes: list[tuple[int, float, bool, int, int, int]] = []
        leaves: list[Leaf] = []
        for col in fit.encoding.columns:
            if col.kind == "category" and not isinstance(col.category, _SCALARS):
                return f"category {col.category!r:.40} of {col.field} is not a JSON scalar"

        def leaf_for(leaf: Any) -> Leaf:
            if leaf.piece < 0:
                return Leaf("neural", note="no sampled call reached this region")
            piece = fit.pieces[leaf.piece]
            if piece.kind == "raise":
                return Leaf("raise", error=piece.error)
            if piece.kind == "constant":
                if not isinstance(piece.value, _SCALARS):
                    return Leaf("neural", note=f"constant {type(piece.value).__name__} is not a JSON scalar")
                return Leaf("constant", value=piece.value)
            if piece.kind == "expression":
                return Leaf("expression", expression=piece.expression)
            found = fit.stand_ins.get(id(leaf)) if stand_ins else None
            if found is not None and found.exact:
                return Leaf("expression", expression=found.expression)
            return Leaf("neural", note="no exact expression reproduces this path")

        def visit(node: Any) -> int:
            k = len(nodes)
            nodes.append((-1, math.nan, False, -1, -1, -1))
            if node.is_leaf:
                leaves.append(leaf_for(node))
                nodes[k] = (-1, math.nan, False, -1, -1, len(leaves) - 1)
                return k
            if node.column not in test_of:
                col = fit.encoding.columns[node.column]
                test_of[node.column] = len(tests)
                tests.append(NodeTest(col.field, col.kind, col.category if col.kind == "category" else None,
                                  col.category.expression if col.kind == "derived" else None))
            left = visit(node.left)
            right = visit(node.right)
            nodes[k] = (test_of[node.column], float(node.threshold), bool(node.strict), left, right, -1)
            return k

        visit(fit.tree)
        return cls(tests, nodes, leaves, output_type)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "output_type": self.output_type,
                "tests": [_test_to_dict(t) for t in self.tests],
                "nodes": [[t, _float_out(th), s, a, b, f] for t, th, s, a, b, f in self.nodes],
                "leaves": [_leaf_to_dict(leaf) for leaf in self.leaves]}

    @classmethod
    def from_dict(cls, data: Any) -> "ExactProgram":
        """A program from its data, every field checked (ProgramError); nothing in it is executed."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ProgramError(f"exact program data : must be a dict with format={FORMAT!r} and version={VERSION}")
        output_type = data.get("output_type")
        if not isinstance(output_type, str):
            raise ProgramError(f"exact program output_type={output_type!r:.40} : must be a string")
        tests = [_test_from_dict(t) for t in _list(data.get("tests"), "tests")]
        leaves = [_leaf_from_dict(leaf) for leaf in _list(data.get("leaves"), "leaves")]
        raw_nodes = _list(data.get("nodes"), "nodes")
        nodes: list[tuple[int, float, bool, int, int, int]] = []
        for k, item in enumerate(raw_nodes):
            if not isinstance(item, list) or len(item) != 6:
                raise ProgramError(f"exact program nodes[{k}]={item!r:.60} : must be [test, threshold, strict, left, right, leaf]")
            t, th, s, a, b, f = item
            if not all(_is_int(v) for v in (t, a, b, f)) or not isinstance(s, bool):
                raise ProgramError(f"exact program nodes[{k}]={item!r:.60} : test/left/right/leaf must be ints, strict a bool")
            if t < 0:
                if not 0 <= f < len(leaves):
                    raise ProgramError(f"exact program nodes[{k}] leaf={f} : must index one of {len(leaves)} leaves")
            elif not (t < len(tests) and k < a < len(raw_nodes) and k < b < len(raw_nodes)):
                raise ProgramError(f"exact program nodes[{k}]={item!r:.60} : test must index one of {len(tests)} tests "
                                   f"and left/right a later node (of {len(raw_nodes)})")
            nodes.append((int(t), _float_in(th, f"nodes[{k}].threshold"), s, int(a), int(b), int(f)))
        if not nodes:
            raise ProgramError("exact program nodes : must not be empty")
        return cls(tests, nodes, leaves, output_type)


def _plain_function(derived: Any) -> Any:
    """A Ratio's or Scorecard's value for one row in plain Python floats, the same IEEE operations in
    the same order as their numpy `evaluate` (a fifth of the cost of a one-row array)."""
    if isinstance(derived, Ratio):
        a, b, scale, form = derived.a, derived.b, derived.scale, derived.form
        if form == "mul":
            return lambda row: float(row[a]) * float(row[b])
        if form == "div":
            return lambda row: float(row[a]) / float(row[b])
        if scale != 1:
            return lambda row: float(row[a]) / ((float(row[b]) / scale) * (float(row[b]) / scale))
        return lambda row: float(row[a]) / (float(row[b]) * float(row[b]))
    if isinstance(derived, Scorecard):
        constant = float(derived.constant)
        bins = [(arg, tuple(cuts), tuple(float(v) for v in values)) for arg, cuts, values in derived.bins]
        tables = [(arg, dict(entries)) for arg, entries in derived.tables]

        def score(row: Mapping[str, Any]) -> float:
            total = constant
            for arg, cuts, values in bins:
                x = float(row[arg])
                index = 0
                for cut, strict in cuts:
                    index += (x >= cut) if strict else (x > cut)
                total += values[index]
            for arg, lookup in tables:
                total += float(lookup.get(row[arg], 0.0))
            return total
        return score
    return derived.evaluate_row


def _guarded(value_of: Any) -> Any:
    """A derived value's one-row function as `NodeTest.one` computes it: 0 where it fails or is not finite."""
    isfinite = math.isfinite

    def guarded(row: Mapping[str, Any]) -> float:
        try:
            value = float(value_of(row))
        except Exception:
            return 0.0
        return value if isfinite(value) else 0.0
    return guarded


def _take(column: Any, rows: np.ndarray) -> Any:
    if isinstance(column, np.ndarray):
        return column[rows]
    return [column[int(i)] for i in rows]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ProgramError(f"exact program {what}={value!r:.40} : must be a list")
    return value


def _float_out(value: float) -> Any:
    return value if math.isfinite(value) else None


def _float_in(value: Any, what: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProgramError(f"exact program {what}={value!r:.40} : must be a number")
    return float(value)


def _scalar(value: Any, what: str) -> Any:
    if not isinstance(value, _SCALARS):
        raise ProgramError(f"exact program {what}={value!r:.40} : must be a JSON scalar (str, int, float, bool, null)")
    return value


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.isidentifier():
        raise ProgramError(f"exact program {what}={value!r:.40} : must be an argument name")
    return value


# -- derived values as data -------------------------------------------------------------------------
def _derived_to_dict(derived: Any) -> dict[str, Any]:
    if isinstance(derived, Expression):
        return {"expression": derived.to_dict()}
    if isinstance(derived, Ratio):
        return {"ratio": {"form": derived.form, "a": derived.a, "b": derived.b, "scale": derived.scale}}
    if isinstance(derived, Scorecard):
        return {"scorecard": {"constant": derived.constant,
                              "bins": [[a, [[c, s] for c, s in cuts], list(values)] for a, cuts, values in derived.bins],
                              "tables": [[a, [[k, v] for k, v in entries]] for a, entries in derived.tables]}}
    raise ProgramError(f"derived value {type(derived).__name__} : cannot be stored as data")


def _derived_from_dict(data: Any) -> Any:
    if not isinstance(data, Mapping) or len(data) != 1:
        raise ProgramError(f"exact program derived={data!r:.60} : must be one of expression, ratio, scorecard")
    kind, body = next(iter(data.items()))
    if kind == "expression":
        try:
            return Expression.from_dict(body)
        except ExpressionError as exc:
            raise ProgramError(f"exact program derived expression : {exc}") from None
    if kind == "ratio" and isinstance(body, Mapping):
        if body.get("form") not in RATIO_FORMS:
            raise ProgramError(f"exact program ratio form={body.get('form')!r:.40} : must be one of {RATIO_FORMS}")
        return Ratio(body["form"], _name(body.get("a"), "ratio.a"), _name(body.get("b"), "ratio.b"),
                     _float_in(body.get("scale", 1.0), "ratio.scale"))
    if kind == "scorecard" and isinstance(body, Mapping):
        bins = []
        for item in _list(body.get("bins"), "scorecard.bins"):
            if not isinstance(item, list) or len(item) != 3:
                raise ProgramError(f"exact program scorecard bin={item!r:.60} : must be [argument, cuts, values]")
            arg, cuts, values = item
            cuts_t = tuple((_float_in(c[0], "scorecard cut"), bool(c[1])) for c in _list(cuts, "scorecard cuts")
                           if isinstance(c, list) and len(c) == 2 and isinstance(c[1], bool))
            values_t = tuple(_float_in(v, "scorecard value") for v in _list(values, "scorecard values"))
            if len(cuts_t) != len(cuts) or len(values_t) != len(cuts_t) + 1:
                raise ProgramError(f"exact program scorecard bin of {arg!r:.40} : needs [cut, strict] pairs and one "
                                   "value more than cuts")
            bins.append((_name(arg, "scorecard argument"), cuts_t, values_t))
        tables = []
        for item in _list(body.get("tables"), "scorecard.tables"):
            if not isinstance(item, list) or len(item) != 2:
                raise ProgramError(f"exact program scorecard table={item!r:.60} : must be [argument, entries]")
            entries = tuple((_scalar(e[0], "scorecard key"), _float_in(e[1], "scorecard entry"))
                            for e in _list(item[1], "scorecard entries") if isinstance(e, list) and len(e) == 2)
            tables.append((_name(item[0], "scorecard argument"), entries))
        return Scorecard(_float_in(body.get("constant"), "scorecard.constant"), tuple(bins), tuple(tables))
    raise ProgramError(f"exact program derived kind={kind!r:.40} : must be expression, ratio or scorecard")


def _test_to_dict(test: NodeTest) -> dict[str, Any]:
    out: dict[str, Any] = {"field": test.field, "kind": test.kind}
    if test.kind == "category":
        out["category"] = test.category
    if test.kind == "derived":
        out["derived"] = _derived_to_dict(test.derived)
    return out


def _test_from_dict(data: Any) -> NodeTest:
    if not isinstance(data, Mapping) or data.get("kind") not in TEST_KINDS or not isinstance(data.get("field"), str):
        raise ProgramError(f"exact program test={data!r:.60} : must have a field name and a kind in {TEST_KINDS}")
    kind = data["kind"]
    if kind == "derived":
        return NodeTest(data["field"], kind, derived=_derived_from_dict(data.get("derived")))
    field = _name(data["field"], "test field")
    if kind == "category":
        return NodeTest(field, kind, _scalar(data.get("category"), "test category"))
    return NodeTest(field, kind)


def _leaf_to_dict(leaf: Leaf) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": leaf.kind}
    if leaf.kind == "expression":
        out["expression"] = leaf.expression.to_dict()  # type: ignore[union-attr]
    elif leaf.kind == "constant":
        out["value"] = leaf.value
    elif leaf.kind == "raise":
        out["error"] = {"type": leaf.error.type, "message": leaf.error.message}  # type: ignore[union-attr]
    if leaf.note:
        out["note"] = leaf.note
    return out


def _leaf_from_dict(data: Any) -> Leaf:
    if not isinstance(data, Mapping) or data.get("kind") not in LEAF_KINDS:
        raise ProgramError(f"exact program leaf={data!r:.60} : must have a kind in {LEAF_KINDS}")
    kind = data["kind"]
    note = data.get("note", "")
    if not isinstance(note, str):
        raise ProgramError(f"exact program leaf note={note!r:.40} : must be a string")
    if kind == "expression":
        try:
            return Leaf(kind, expression=Expression.from_dict(data.get("expression")), note=note)
        except ExpressionError as exc:
            raise ProgramError(f"exact program leaf expression : {exc}") from None
    if kind == "constant":
        return Leaf(kind, value=_scalar(data.get("value"), "leaf value"), note=note)
    if kind == "raise":
        error = data.get("error")
        if not isinstance(error, Mapping) or not isinstance(error.get("type"), str) \
                or not all(part.isidentifier() for part in error["type"].split(".")) \
                or not isinstance(error.get("message"), str):
            raise ProgramError(f"exact program leaf error={error!r:.60} : must be {{type: str, message: str}}")
        return Leaf(kind, error=ErrorInfo(error["type"], error["message"]), note=note)
    return Leaf(kind, note=note)


__all__ = ["ExactProgram", "Leaf", "ProgramError", "NodeTest"]
