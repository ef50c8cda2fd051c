"""Fitting the rows of one branch path: `fit_expression` on samples, with retries, and a stand-in
where no expression reproduces the path (used by `_exact_rules`).

Least squares on outputs rounded to the cent pins a coefficient only to its standard error, and
`fit_expression` snaps it to the shortest decimal within a few of those: an intercept far from
the rows (a block tariff's `-56.644` fitted on 1,500-3,000 kWh) often snaps wrongly. A retry
fits the numbers centred on a round value near the rows (`kwh - 2000`), where the intercept is
pinned tightly, and expands the affine result back (`0.30821 * kwh - 56.644`, in exact decimal
arithmetic), re-checked on every row.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from decimal import Decimal, localcontext
from typing import Any, Mapping, Sequence

import numpy as np

from ._schema import Schema
from ._tolerance import Tolerance
from ._expressions import (DECIMAL_EPS, map_children, Const, Expression, MinMax, Node, Product, Round, Sum, Table, Var,
                                 fit_expression)
from ._nested import fit_nested
from ._schema import output_quantum
from ._ties import match_ties

#: least-squares solves per path (fit_expression's max_candidates)
FIT_CANDIDATES = 600
#: rows a path's expression is fitted on (then checked on all of the path's rows)
FIT_ROWS = 300
#: least-squares solves of a retry (the simple structures come first)
RETRY_CANDIDATES = 200
#: significant digits a coefficient of an accepted expression may have (business rules' rates and
#: prices are short decimals; a longer one is a least-squares estimate fitting the rows by luck)
SHORT_DIGITS = 10


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(float(value))


def reproduces(expression: Expression, rows: Sequence[Mapping[str, Any]], outputs: Sequence[Any]) -> bool:
    """Whether `expression` gives every output (to 1e-9 relative) on these rows."""
    if not len(rows):
        return True
    columns = {name: [r[name] for r in rows] for name in expression.names}
    try:
        predicted = expression.evaluate(columns, len(rows))
    except Exception:
        return False
    y = np.asarray([float(v) if is_number(v) else math.nan for v in outputs])
    return bool(np.all(np.abs(predicted - y) <= 1e-9 * np.maximum(np.abs(y), 1e-9)))


def _kinds(schema: Schema) -> dict[str, str]:
    return {f.name: f.kind for f in schema.fields if f.kind in ("real", "integer", "boolean", "categorical")}


def rounding_hint(fn: Any) -> str | None:
    """The rounding the function's own code calls: 'half_up' for `ROUND_HALF_UP` (Decimal),
    'half_even' for `round(...)` (or a plain `quantize`), else None."""
    names = set(getattr(getattr(fn, "__code__", None), "co_names", ()))
    if "ROUND_HALF_UP" in names:
        return "half_up"
    if "round" in names or "ROUND_HALF_EVEN" in names or "quantize" in names:
        return "half_even"
    return None


def _prefer(expression: Expression, mode: str | None, rows: Sequence[Mapping[str, Any]],
            outputs: Sequence[Any]) -> Expression:
    """The same expression rounded the way the code rounds, where it reproduces the rows too: on
    rows without a tie, Python's `round` and a floor of a value half a cent lower agree, and only
    the code's own rounding is right on the ties it meets later."""
    root = expression.root
    if mode is None or not isinstance(root, Round) or root.mode == mode:
        return expression
    q = float(root.quantum)
    shift = {"floor": q / 2, "ceil": -q / 2}.get(root.mode, 0.0)
    inner = Sum((root.arg, Const(shift))) if shift else root.arg
    inner = _expand(inner) or inner
    candidate = Expression(Round(inner, q, mode, DECIMAL_EPS if mode == "half_up" else 0.0), expression.rows)
    return candidate if reproduces(candidate, rows, outputs) else expression


def fit_rows(rows: Sequence[Mapping[str, Any]], outputs: Sequence[Any], schema: Schema, quantum: Any, *,
             retries: bool = True, rounding: str | None = None,
             differences: Sequence[tuple[str, str | None]] = ()) -> Expression | None:
    """An expression reproducing every row, or None: `fit_expression` on a sample of FIT_ROWS rows,
    then (with `retries`) on another sample with the numbers centred, then on a larger one;
    rounded the `rounding` way (`rounding_hint`) where that reproduces the rows as well; one right
    on its sample only is computed the code's way where `match_ties` finds how (`differences`:
    argument pairs the code subtracts)."""
    kinds = _kinds(schema)
    n = len(rows)
    rng = np.random.default_rng(n)

    def sample(size: int) -> list[int]:
        return list(range(n)) if size >= n else sorted(int(k) for k in rng.choice(n, size, replace=False))

    attempts = [(sample(FIT_ROWS), FIT_CANDIDATES, False)]
    if retries and n >= 20:
        attempts += [(sample(min(n, 3 * FIT_ROWS)), RETRY_CANDIDATES, True),
                     (sample(max(20, min(n * 2 // 3, FIT_ROWS))), RETRY_CANDIDATES, False)]
    for index, candidates, centred in attempts:
        shifts = _shifts(rows, index, schema) if centred else {}
        columns = {name: [rows[i][name] - shifts.get(name, 0) if name in shifts else rows[i][name] for i in index]
                   for name in kinds}
        found = fit_expression(columns, [outputs[i] for i in index], kinds, quantum=quantum,
                               max_candidates=candidates, differences=() if shifts else differences)
        if found is None:
            continue
        if shifts:
            plain = _expand(_substitute(found.root, shifts))
            options = ([Expression(plain, found.rows)] if plain is not None else []) + [
                Expression(_substitute(found.root, shifts), found.rows)]
        else:
            options = [found]
        for expression in options:
            if not _short(expression.root):
                continue  # least-squares coefficients left unsnapped: right on these rows only by luck
            if len(index) == n and not shifts or reproduces(expression, rows, outputs):
                return _prefer(expression, rounding, rows, outputs)
            # right on the fitted sample, wrong on a tie it lacked: the code computes it another way
            other = match_ties(expression, rows, outputs, differences=differences)
            if other is not None:
                return _prefer(other, rounding, rows, outputs)
    return _nested(rows, outputs, kinds, quantum, rounding) if retries else None


def _nested(rows: Sequence[Mapping[str, Any]], outputs: Sequence[Any], kinds: Mapping[str, str], quantum: Any,
            rounding: str | None) -> Expression | None:
    """A rounded net rounded again after its rate (`fit_nested`), fitted on a sample of the rows
    and checked on all of them."""
    if not all(is_number(v) for v in outputs):
        return None
    if quantum == "auto":
        quantum = output_quantum(np.asarray([float(v) for v in outputs]))
    if not quantum:
        return None
    index = range(len(rows)) if len(rows) <= 3 * FIT_ROWS else np.random.default_rng(len(rows)).choice(
        len(rows), 3 * FIT_ROWS, replace=False)
    columns = {name: [rows[i][name] for i in index] for name in kinds}
    found = fit_nested(columns, [outputs[i] for i in index], kinds, float(quantum), rounding=rounding)
    return found if found is not None and reproduces(found, rows, outputs) else None


def _short(node: Node) -> bool:
    """Whether every coefficient is a short decimal (at most SHORT_DIGITS significant digits)."""
    values: list[float] = []
    if isinstance(node, Const):
        values.append(float(node.value))
    elif isinstance(node, Table):
        values.extend(float(v) for _, v in node.entries)
    for value in values:
        digits = repr(abs(value)).replace(".", "").lstrip("0").split("e")[0].rstrip("0")
        if len(digits) > SHORT_DIGITS:
            return False
    return all(_short(child) for child in node.children())


def _shifts(rows: Sequence[Mapping[str, Any]], index: Sequence[int], schema: Schema) -> dict[str, float]:
    """Per numeric argument, a round value near the middle of its rows (`2000` for 1,500-3,000)."""
    out = {}
    for f in schema.fields:
        if f.kind not in ("real", "integer"):
            continue
        values = np.asarray([float(rows[i][f.name]) for i in index])
        middle, span = float(np.median(values)), float(np.ptp(values))
        if span <= 0 or abs(middle) < span:
            continue  # the rows reach zero already: the intercept is pinned
        digits = int(math.floor(math.log10(span)))
        shift = round(middle, -digits)
        if shift:
            out[f.name] = float(int(shift)) if float(shift).is_integer() else float(shift)
    return out


def _substitute(node: Node, shifts: Mapping[str, float]) -> Node:
    """`node` with each shifted variable `x` read as `x - shift`."""
    if isinstance(node, Var):
        return Sum((node, Const(-shifts[node.name]))) if node.name in shifts else node
    return map_children(node, lambda child: _substitute(child, shifts))


# -- affine expansion, in exact decimal arithmetic ------------------------------------------------------
# a coefficient is (table arguments, {key: Decimal}); () arguments with key () is a constant

def _coef_add(a: tuple, b: tuple) -> tuple | None:
    (args_a, ta), (args_b, tb) = a, b
    if args_a == args_b:
        return args_a, {k: ta.get(k, Decimal(0)) + tb.get(k, Decimal(0)) for k in {*ta, *tb}}
    if not args_a:
        return args_b, {k: v + ta[()] for k, v in tb.items()}
    if not args_b:
        return args_a, {k: v + tb[()] for k, v in ta.items()}
    return None


def _coef_mul(a: tuple, b: tuple) -> tuple | None:
    (args_a, ta), (args_b, tb) = a, b
    if not args_a:
        return args_b, {k: v * ta[()] for k, v in tb.items()}
    if not args_b:
        return args_a, {k: v * tb[()] for k, v in ta.items()}
    return None


def _affine(node: Node) -> dict[str, tuple] | None:
    """`node` as {variable or '': coefficient}, or None when it is not affine with tables."""
    if isinstance(node, Const):
        return {"": ((), {(): Decimal(repr(float(node.value)))})}
    if isinstance(node, Var):
        return {node.name: ((), {(): Decimal(1)})}
    if isinstance(node, Table):
        return {"": (node.args, {key: Decimal(repr(float(v))) for key, v in node.entries})}
    if isinstance(node, Sum):
        total: dict[str, tuple] = {}
        for term in node.terms:
            part = _affine(term)
            if part is None:
                return None
            for key, coef in part.items():
                merged = _coef_add(total[key], coef) if key in total else coef
                if merged is None:
                    return None
                total[key] = merged
        return total
    if isinstance(node, Product):
        result: dict[str, tuple] = {"": ((), {(): Decimal(1)})}
        for factor in node.factors:
            part = _affine(factor)
            if part is None:
                return None
            product: dict[str, tuple] = {}
            for k1, c1 in result.items():
                for k2, c2 in part.items():
                    if k1 and k2:
                        return None  # degree 2: not affine
                    coef = _coef_mul(c1, c2)
                    key = k1 or k2
                    merged = coef if coef is None or key not in product else _coef_add(product[key], coef)
                    if merged is None:
                        return None
                    product[key] = merged
            result = product
        return result
    return None


def _node_of(coef: tuple) -> Node | None:
    args, table = coef
    values = {k: float(v) for k, v in table.items()}
    if not args:
        return Const(values[()])
    if len(set(values.values())) == 1:
        return Const(next(iter(values.values())))
    return Table(args, tuple(sorted(values.items(), key=lambda e: tuple(repr(k) for k in e[0]))))


def _expand(node: Node) -> Node | None:
    """An affine expression (inside rounding and min/max) written plainly: `a * x + b`."""
    if isinstance(node, Round):
        inner = _expand(node.arg)
        return None if inner is None else dataclasses.replace(node, arg=inner)
    if isinstance(node, MinMax):
        args = [_expand(a) for a in node.args]
        return None if any(a is None for a in args) else MinMax(node.op, tuple(args))  # type: ignore[arg-type]
    with localcontext() as context:
        context.prec = 50
        form = _affine(node)
        if form is None:
            return None
        terms: list[Node] = []
        for name, coef in sorted(form.items(), key=lambda kv: (kv[0] == "", kv[0])):
            if all(v == 0 for v in coef[1].values()):
                continue
            c = _node_of(coef)
            if c is None:
                return None
            if not name:
                terms.append(c)
            elif isinstance(c, Const) and c.value == 1:
                terms.append(Var(name))
            else:
                terms.append(Product((c, Var(name))) if isinstance(c, Const) else Product((Var(name), c)))
    if not terms:
        return Const(0.0)
    return terms[0] if len(terms) == 1 else Sum(tuple(terms))


# -- stand-ins for approximate leaves ------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class StandIn:
    """A stand-in for an approximate leaf: the expression and how many of the leaf's rows it gets
    within tolerance."""

    expression: Expression
    agree: int
    rows: int
    exact: bool = False  # it reproduces every row of its leaf (an expression of this leaf, not of the path)


def stand_in(rows: Sequence[Mapping[str, Any]], outputs: Sequence[Any], schema: Schema,
             tolerance: Tolerance, rounding: str | None = None) -> StandIn | None:
    """The best of: exact expressions of small random samples of the rows (a path exact but for a
    few float ties), the most common output, and least squares (an intercept per category of the
    first categorical argument, a slope per number), each rounded to the output's grid; by rows
    within tolerance, then mean error. None without numeric rows."""
    keep = [i for i, v in enumerate(outputs) if is_number(v)]
    if not keep:
        return None
    rows, outputs = [rows[i] for i in keep], [outputs[i] for i in keep]
    n = len(rows)
    rng = np.random.default_rng(n)
    y = np.asarray([float(v) for v in outputs])
    names = [f.name for f in schema.fields if f.kind in ("real", "integer")]
    cats = [f.name for f in schema.fields if f.kind in ("categorical", "boolean")]
    columns = {f.name: [r[f.name] for r in rows] for f in schema.fields}
    candidates: list[Node] = [Const(float(Counter(y.tolist()).most_common(1)[0][0]))]
    whole = fit_rows(rows, outputs, schema, schema.output.quantum or "auto", rounding=rounding) if n >= 8 else None
    if whole is not None:  # the leaf holds a part of the path one expression reproduces
        return StandIn(whole, n, n, True)
    for _ in range(5 if n >= 8 else 0):  # small samples: some miss the few rows no expression fits (float ties)
        pick = [int(k) for k in rng.choice(n, size=min(n, max(12, min(40, n // 3))), replace=False)]
        found = fit_rows([rows[k] for k in pick], [outputs[k] for k in pick], schema,
                         schema.output.quantum or "auto", retries=False, rounding=rounding)
        if found is not None:
            candidates.append(found.root)
    X = np.asarray([[float(v) for v in columns[name]] for name in names]).T.reshape(n, len(names))
    keys = list(columns[cats[0]]) if cats else [None] * n
    cells = sorted(set(keys), key=repr)
    design = np.column_stack([np.array([k == c for k in keys], dtype=float) for c in cells] + [X])
    if n > design.shape[1]:
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        short = [float(f"{c:.6g}") for c in coef]
        intercept: Node = (Table((cats[0],), tuple(((c,), v) for c, v in zip(cells, short[:len(cells)])))
                           if cats else Const(short[0]))
        slopes = [Product((Const(c), Var(name))) for c, name in zip(short[len(cells):], names) if c != 0]
        candidates.append(Sum((intercept, *slopes)) if slopes else intercept)
    quantum = schema.output.quantum
    best = None
    for node in candidates:
        if quantum and not isinstance(node, (Const, Round)):
            node = Round(node, float(quantum))
        expression = Expression(node, n)
        try:
            error = np.abs(expression.evaluate(columns, n) - y)
        except Exception:
            continue
        agree = int(np.sum(error <= tolerance.bound(y)))
        score = (agree, _short(node), -float(np.nanmean(error)))  # then the one that reads like the code
        if best is None or score > best[0]:
            best = (score, StandIn(expression, agree, n, agree == n and reproduces(expression, rows, outputs)))
    return None if best is None else best[1]


# -- one path fitted per combination of categories, then combined into tables ---------------------------

def combine_cells(cells: Mapping[tuple, Expression], args: Sequence[str]) -> list[Expression]:
    """Candidate single expressions for per-cell expressions (one per combination of the
    categorical `args`): each cell affine in the same numbers inside the same rounding, the
    coefficients made tables over `args` (one or two of them). The caller checks them on rows."""
    if not 1 <= len(args) <= 2:
        return []
    forms, roundings = {}, []
    for key, expression in cells.items():
        node = expression.root
        if isinstance(node, Round):
            roundings.append((node.quantum, node.mode, node.eps))
            node = node.arg
        with localcontext() as context:
            context.prec = 50
            form = _affine(node)
        if form is None or any(coef[0] for coef in form.values()):
            return []
        forms[key] = {name: coef[1][()] for name, coef in form.items()}
    if roundings and len(roundings) != len(cells):
        return []
    names = sorted({name for form in forms.values() for name in form}, key=lambda n: (n == "", n))
    terms: list[Node] = []
    for name in names:
        values = {key: float(form.get(name, Decimal(0))) for key, form in forms.items()}
        coef = _table_over(values, tuple(args))
        if coef is None:
            continue
        if not name:
            terms.append(coef)
        else:
            terms.append(Product((Var(name), coef)) if isinstance(coef, Table) else Product((coef, Var(name))))
    inner: Node = Const(0.0) if not terms else terms[0] if len(terms) == 1 else Sum(tuple(terms))
    if not roundings:
        return [Expression(inner)]
    return [Expression(Round(inner, q, mode, eps)) for q, mode, eps in dict.fromkeys(roundings)]


def _table_over(values: Mapping[tuple, float], args: tuple[str, ...]) -> Node | None:
    """A constant, or a table over the fewest of `args` the values vary with; None when all 0."""
    if all(v == 0 for v in values.values()):
        return None
    if len(set(values.values())) == 1:
        return Const(next(iter(values.values())))
    for keep in ([0], [1], [0, 1]) if len(args) == 2 else ([0],):
        table: dict[tuple, float] = {}
        if all(table.setdefault(tuple(key[i] for i in keep), v) == v for key, v in values.items()):
            entries = sorted(table.items(), key=lambda e: tuple(repr(k) for k in e[0]))
            return Table(tuple(args[i] for i in keep), tuple(entries))
    return None
