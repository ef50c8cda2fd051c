"""Hybrid surrogates: an exact expression on every branch path one reproduces, the neural expert elsewhere.

Rule code is exact arithmetic on each branch path (a fee table, a bracket, VAT by country), and a
smooth network is only ever close to it. After `fit` has chosen its model, each path bucket of the
gate gets `probes._expressions.fit_expression` on the labelled oracle rows of that path; an
expression is accepted only when it also reproduces the path's rows it was not fitted on (the
fit's validation rows, the rows past the fitting cap, and the traced test rows; at least
`MIN_HELD_OUT`), and when, on the validation rows the gate routes to that path, it is wrong no more
often than the expert it replaces (a gate that misroutes near a boundary must not make the answer
worse). A plain model (no gate) uses one expression for every row only when one reproduces all of
them. A bucket that needs several pieces (its rows split by `PathCall.signature`, e.g. the brackets
of a tax loop) keeps its expert for now.

At prediction time a row the gate routes to a path with an expression gets the expression's value
in float64 (its own rounding included), in the original's Python type, with spread 0 (unless the
ensemble's outcome vote is split: then inf as before); a predicted raise stays a raise; a category
the expression's table never saw falls back to the expert. Single call, `predict_batch`, the
float64 reference and the guard's features all go through `one` / `many` here, so they agree.
Expressions are stored as validated JSON data (`Expression.to_dict`), never as code; ONNX export of
a surrogate with expressions is refused (`HybridExportError`): the graph would hold only the
network.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Mapping, Sequence

import numpy as np

from probes._errors import NeuroswapError
from probes._expressions import (Call, Const, Div, Expression, MinMax, Node, Product, Round, Sum, Table, Var, _decimals,
                                 _plain, _scalar_call, agrees, fit_expression)

from ._columns import take_rows
from ._predictions import BatchPrediction

#: the key of a plain model's one expression (it has no path ids); a gate's catch-all bucket is "*" too
GLOBAL = "*"
#: a path's training rows needed before an expression is looked for
MIN_FIT_ROWS = 16
#: the path's held-out rows the accepted expression must also reproduce
MIN_HELD_OUT = 8
#: most rows an expression is fitted on (the path's other rows check it): bounds the search's cost
MAX_FIT_ROWS = 1000


class HybridExportError(NeuroswapError, ValueError):
    """An export that cannot carry a hybrid surrogate's exact expressions (ONNX)."""


# -- the table the surrogate evaluates ----------------------------------------------------------------

def exact_table(expressions: Mapping[str, Any], path_ids: Sequence[str] | None, output_encoder: Any,
                names: Sequence[str]) -> list[tuple[Expression, tuple[str, ...], Any] | None] | None:
    """Per path index (one slot for a plain model): (expression, the argument names it reads, its
    one-row function `row_function`), or None where the expert answers; None when there is no
    expression at all. ValueError for
    expressions a surrogate cannot use (a path it does not have, an output that is not one real
    number, an argument it does not take)."""
    if not expressions:
        return None
    if output_encoder.kind != "real" or output_encoder.width != 1:
        raise ValueError(f"exact expressions need one real output, not kind={output_encoder.kind!r} "
                         f"width={output_encoder.width}")
    slots = list(path_ids) if path_ids else [GLOBAL]
    table: list[tuple[Expression, tuple[str, ...], Any] | None] = [None] * len(slots)
    known = set(names)
    for path, expression in expressions.items():
        if path not in slots:
            raise ValueError(f"expression for path {path!r} : the model has no such path (paths: {slots})")
        if not isinstance(expression, Expression):
            raise ValueError(f"expression for path {path!r} : must be an Expression, not {type(expression).__name__}")
        unknown = sorted(set(expression.names) - known)
        if unknown:
            raise ValueError(f"expression for path {path!r} reads {unknown}, which the function does not take")
        table[slots.index(path)] = (expression, tuple(expression.names), row_function(expression.root))
    return table


def row_function(node: Node) -> Any:
    """`node.at` as nested closures over precomputed tables and constants: the same float for every
    row (a test pins it to `Expression.evaluate_row`) at a tenth of the cost (no dict rebuilt per
    call, no recursion through dataclass methods). Built from the validated tree only: no source
    text is generated or executed."""
    if isinstance(node, Const):
        value = float(node.value)
        return lambda row: value
    if isinstance(node, Var):
        name = node.name
        return lambda row: float(row[name])
    if isinstance(node, Table):
        lookup, args, nan = node.lookup, node.args, math.nan
        if len(args) == 1:
            arg = args[0]
            return lambda row: lookup.get(_plain(row[arg]), nan)
        return lambda row: lookup.get(tuple(_plain(row[a]) for a in args), nan)
    if isinstance(node, (Sum, Product)):
        parts = [row_function(child) for child in node.children()]
        first, rest = parts[0], parts[1:]
        if isinstance(node, Sum):
            def total(row: Mapping[str, Any]) -> float:
                value = first(row)
                for part in rest:
                    value = value + part(row)
                return value
        else:
            def total(row: Mapping[str, Any]) -> float:
                value = first(row)
                for part in rest:
                    value = value * part(row)
                return value
        return total
    if isinstance(node, Round):
        return _round_function(node, row_function(node.arg))
    if isinstance(node, Call):
        fn, arg = node.fn, row_function(node.arg)
        return lambda row: _scalar_call(fn, arg(row))
    if isinstance(node, (Div, MinMax)):
        return node.at  # rare in fitted expressions: the tree's own evaluation
    return node.at


def _round_function(node: Round, arg: Any) -> Any:
    """`Round.at` with the grid's scale and offset computed once."""
    isfinite = math.isfinite
    d = _decimals(node.quantum)
    if node.mode == "half_even" and d is not None:
        def rounded(row: Mapping[str, Any]) -> float:
            a = float(arg(row))
            return float(round(a, d)) if isfinite(a) else a
        return rounded
    how, s = node._scale()
    multiply = how == "mul"
    mode = node.mode
    step = math.ceil if mode == "ceil" else math.floor
    offset = node._offset()

    def snapped(row: Mapping[str, Any]) -> float:
        a = float(arg(row))
        if not isfinite(a):
            return a
        v = a * s if multiply else a / s
        r = float(round(v)) if mode == "half_even" else float(step(v + offset))
        return r / s if multiply else r * s
    return snapped


def to_data(expressions: Mapping[str, Expression]) -> dict[str, Any]:
    """The manifest's "expressions": {path id: Expression.to_dict()}."""
    return {str(path): expression.to_dict() for path, expression in expressions.items()}


def from_data(data: Any) -> dict[str, Expression]:
    """Expressions from the manifest, each validated by `Expression.from_dict` (ExpressionError)."""
    if not isinstance(data, Mapping):
        raise ValueError("expressions must be a JSON object {path id: expression}")
    return {str(path): Expression.from_dict(item) for path, item in data.items()}


# -- answering --------------------------------------------------------------------------------------

def one(surrogate: Any, index: int, output: Any, error: Any, spread: float,
        row: Mapping[str, Any]) -> tuple[Any, Any, float]:
    """One row's (output, error, spread) with its path's expression applied (`row`: the call's
    arguments; missing ones take the signature's defaults)."""
    slot = surrogate._exact[index]
    if slot is None or error is not None:
        return output, error, spread
    _, names, evaluate_row = slot
    defaults = surrogate._defaults
    value = evaluate_row(row if all(n in row for n in names) else {n: row[n] if n in row else defaults[n] for n in names})
    if not math.isfinite(value):  # a category its table never saw (NaN): the expert's answer
        return output, error, spread
    if surrogate._int_out:
        value = int(round(value))
    return value, None, (spread if spread == math.inf else 0.0)


def many(surrogate: Any, details: Any, columns: Mapping[str, Any], choice: np.ndarray | None) -> Any:
    """A BatchPrediction with every value row on a path with an expression answered by it."""
    table = surrogate._exact
    n = len(details.raises)
    index = np.zeros(n, dtype=np.int64) if choice is None else np.asarray(choice)
    outputs = details.outputs
    spread = details.spread
    copied = False
    for p, slot in enumerate(table):
        if slot is None:
            continue
        rows = np.flatnonzero((index == p) & ~details.raises)
        if not rows.size:
            continue
        expression, names, _ = slot
        values = expression.evaluate({name: take_rows(columns[name], rows) for name in names}, len(rows))
        known = np.isfinite(values)  # NaN: a category its table never saw (the expert answers)
        if not copied:
            outputs, spread, copied = np.array(outputs, dtype=float), np.array(spread, dtype=float), True
        at = rows[known]
        outputs[at] = np.round(values[known]) if surrogate._int_out else values[known]
        spread[at] = np.where(np.isinf(spread[at]), spread[at], 0.0)
    return replace(details, outputs=outputs, spread=spread) if copied else details


# -- fitting ----------------------------------------------------------------------------------------

def _value_rows(outputs: Sequence[Any], errors: Sequence[Any], rows: Sequence[int]) -> list[int]:
    return [i for i in rows if errors[i] is None and isinstance(outputs[i], (int, float, np.integer, np.floating))
            and not isinstance(outputs[i], (bool, np.bool_)) and math.isfinite(float(outputs[i]))]


def fit_exact_paths(surrogate: Any, pool: Any, val: np.ndarray, test: tuple[Any, ...] | None, schema: Any, *,
                    cache: dict[Any, Any] | None = None) -> tuple[dict[str, Expression], dict[str, dict[str, Any]]]:
    """Expressions for the surrogate's path buckets that reproduce their rows, held-out rows too.

    `pool`: fit's training rows (`.columns`, `.outputs`, `.errors`, `.paths`); `val`: the indices
    held out for validation; `test`: (columns, outputs, errors, paths) of the fit's test inputs,
    or None. `cache`: a dict kept across calls on the same pool (the search judges several models
    on it), so each bucket's rows are searched once. The surrogate's own expressions are cleared
    (its experts' answers are what an expression must not be worse than). Returns the accepted
    expressions by path id and a report per bucket ({"status": "exact" | "neural", "rows",
    "held_out", "expression" or "reason"})."""
    surrogate._use_expressions({})
    out = surrogate.output_encoder
    if out.kind != "real" or out.width != 1 or not len(pool):
        return {}, {}
    test_columns, test_outputs, test_errors, test_paths = test if test is not None else ({}, [], [], [])
    n_pool, n_test = len(pool), len(test_outputs)
    is_val = np.zeros(n_pool, dtype=bool)
    is_val[np.asarray(val, dtype=np.int64)] = True
    gated = surrogate.path_aware
    buckets = list(surrogate._path_ids) if gated else [GLOBAL]
    in_pool = _members(_bucket_keys(pool.paths, buckets, gated))
    in_test = _members(_bucket_keys(test_paths, buckets, gated)) if n_test else {}
    quantum = schema.output.quantum or "auto"
    names = [f.name for f in schema.fields]
    # the gate's routing of the validation rows, and the experts' answers there (the no-harm check)
    val_rows = np.flatnonzero(is_val)
    neural = surrogate.predict_details({k: take_rows(pool.columns[k], val_rows) for k in names}) if val_rows.size else None
    cache = {} if cache is None else cache
    found: dict[str, Expression] = {}
    report: dict[str, dict[str, Any]] = {}
    for p, bucket in enumerate(buckets):
        members = in_pool.get(bucket, [])
        train = _value_rows(pool.outputs, pool.errors, [i for i in members if not is_val[i]])
        held = _value_rows(pool.outputs, pool.errors, [i for i in members if is_val[i]])
        if len(train) > MAX_FIT_ROWS:  # evenly spaced over the draws; the rest check the expression
            pick = set(np.linspace(0, len(train) - 1, MAX_FIT_ROWS).round().astype(int).tolist())
            held += [r for j, r in enumerate(train) if j not in pick]
            train = [r for j, r in enumerate(train) if j in pick]
        tested = _value_rows(test_outputs, test_errors, in_test.get(bucket, []))
        entry: dict[str, Any] = {"status": "neural", "rows": len(train), "held_out": len(held) + len(tested)}
        report[bucket] = entry
        if members and not train and not held:
            entry["reason"] = "its rows raise (the outcome head answers them)"
            continue
        if len(train) < MIN_FIT_ROWS or entry["held_out"] < MIN_HELD_OUT:
            entry["reason"] = (f"too few rows ({len(train)} to fit, {entry['held_out']} held out; needs "
                               f"{MIN_FIT_ROWS} and {MIN_HELD_OUT})")
            continue
        key = (bucket, n_pool, tuple(train))
        if key not in cache:
            columns = {k: take_rows(pool.columns[k], np.asarray(train, dtype=np.int64)) for k in names}
            cache[key] = fit_expression(columns, [float(pool.outputs[i]) for i in train], schema, quantum=quantum)
        expression = cache[key]
        if expression is None:
            entry["reason"] = "no expression reproduces the rows (or they need several pieces)"
            continue
        check_y = np.array([float(pool.outputs[i]) for i in held] + [float(test_outputs[i]) for i in tested])
        check_columns = {k: take_rows(pool.columns[k], np.asarray(held, dtype=np.int64)) for k in names}
        if tested:
            check_columns = {k: _concat(v, take_rows(test_columns[k], np.asarray(tested, dtype=np.int64)))
                             for k, v in check_columns.items()}
        values = expression.evaluate(check_columns, len(check_y))
        wrong = int(np.count_nonzero(~agrees(values, check_y)))
        if wrong:
            entry["reason"] = f"{expression.to_python()} misses {wrong} of {len(check_y)} held-out rows"
            continue
        harm = _routing_harm(surrogate, expression, pool, val_rows, neural, p)
        if harm > 0:
            entry["reason"] = (f"{expression.to_python()} is wrong on {harm} more of the validation rows the gate "
                               "routes to this path than its expert")
            continue
        entry.update(status="exact", expression=expression.to_python())
        found[bucket] = expression
    return found, report


def _members(keys: Sequence[Any]) -> dict[Any, list[int]]:
    groups: dict[Any, list[int]] = {}
    for i, key in enumerate(keys):
        if key is not None:
            groups.setdefault(key, []).append(i)
    return groups


def _bucket_keys(paths: Sequence[Any], buckets: list[str], gated: bool) -> list[str | None]:
    """Each row's bucket: its traced path where the gate has one, "*" for another traced path,
    None untraced (a plain model: every row is in the one bucket)."""
    if not gated:
        return [GLOBAL] * len(paths)
    own = set(buckets) - {GLOBAL}
    other = GLOBAL if GLOBAL in buckets else None
    return [None if path is None else (path if path in own else other) for path in paths]


def _concat(a: Any, b: Any) -> Any:
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype != object and b.dtype != object:
        return np.concatenate([a, b])
    return list(a) + list(b)


def _routing_harm(surrogate: Any, expression: Expression, pool: Any, val_rows: np.ndarray, neural: Any,
                  p: int) -> int:
    """How many more validation rows the gate routes to path `p` are wrong (beyond the tolerance)
    with the expression than with the expert (rows whose truth and answer are both values)."""
    if neural is None:
        return 0
    choice = np.asarray(neural.paths if surrogate.path_aware else [GLOBAL] * len(val_rows), dtype=object)
    bucket = surrogate._path_ids[p] if surrogate.path_aware else GLOBAL
    at = np.flatnonzero((choice == bucket) & ~neural.raises)
    at = np.array([j for j in at.tolist() if pool.errors[val_rows[j]] is None
                   and _is_number(pool.outputs[val_rows[j]])], dtype=np.int64)
    if not at.size:
        return 0
    rows = val_rows[at]
    truth = np.array([float(pool.outputs[i]) for i in rows])
    expert = np.asarray(neural.outputs, dtype=float)[at]
    exact = expression.evaluate({k: take_rows(pool.columns[k], rows) for k in expression.names}, len(rows))
    exact = np.where(np.isnan(exact), expert, exact)
    bound = np.asarray(surrogate.tolerance.bound(truth), dtype=float)
    with np.errstate(invalid="ignore"):
        wrong_exact = ~(np.abs(exact - truth) <= bound)
        wrong_expert = ~(np.abs(expert - truth) <= bound)
    return int(wrong_exact.sum()) - int(wrong_expert.sum())


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)) \
        and math.isfinite(float(value))


def program_answers(surrogate: Any, columns: Mapping[str, Any], n: int) -> tuple[np.ndarray, list[Any], list[Any]]:
    """The surrogate's exact program on `n` rows of `columns` (arguments left out take their
    defaults): (served, outputs, errors) as `ExactProgram.answer_batch` gives them."""
    program = surrogate.program_
    missing = [k for k in program.names if k not in columns]
    if missing:
        columns = {**columns, **{k: [surrogate._defaults[k]] * n for k in missing if k in surrogate._defaults}}
    return program.answer_batch(columns, n)


def overlay(details: Any, served: np.ndarray, values: Sequence[Any], errors_in: Sequence[Any]) -> Any:
    """`details` with every `served` row answered by the program (its value or raise, spread 0)."""
    if not served.any():
        return details
    outputs = np.array(details.outputs, copy=True)
    raises = np.array(details.raises, copy=True)
    spread = np.array(details.spread, dtype=float, copy=True)
    errors = list(details.errors)
    blank = None if outputs.dtype == object else math.nan
    for i in np.flatnonzero(served).tolist():
        error = errors_in[i]
        raises[i] = error is not None
        errors[i] = error
        outputs[i] = blank if error is not None else values[i]
    spread[served] = 0.0
    return replace(details, outputs=outputs, raises=raises, errors=errors, spread=spread)


def program_many(surrogate: Any, details: Any, columns: Mapping[str, Any]) -> Any:
    """A BatchPrediction with every row the surrogate's exact program answers (`probes._program`)
    replaced by that answer (spread 0); the network's answer stays on its `neural` leaves."""
    return overlay(details, *program_answers(surrogate, columns, len(details.raises)))


#: the path a batch reports for a row its exact program answered
PROGRAM_PATH = "exact-program"


def program_first(surrogate: Any, columns: Mapping[str, Any], network: Any) -> Any:
    """A BatchPrediction whose rows the exact program answers skip the network (`network(columns)`
    answers the rest): on rule code the batch then costs about the program's routing. Every row
    is still encoded, so a value the network could not take raises as without the program."""
    names = surrogate._names
    sliceable = all(isinstance(columns.get(k), (np.ndarray, list, tuple)) for k in names)
    if not names or not sliceable:  # columns that cannot be sliced: the network's answers, overlaid
        details = network(columns)
        return program_many(surrogate, details, columns) if names else details
    n = len(columns[names[0]])
    served, values, errors_in = program_answers(surrogate, columns, n)
    if not served.any():
        return network(columns)
    surrogate.input_encoder.encode(columns, dtype=np.float64)  # raises OutOfDomainError as the network would
    label = surrogate.output_encoder.kind == "label"
    details = BatchPrediction(np.empty(n, dtype=object) if label else np.full(n, math.nan), np.zeros(n, dtype=bool),
                              [None] * n, np.zeros(n), [PROGRAM_PATH] * n if surrogate.path_aware else None)
    rest = np.flatnonzero(~served)
    if rest.size:
        part = network({k: take_rows(columns[k], rest) for k in names})
        details.outputs[rest] = part.outputs
        details.raises[rest] = part.raises
        details.spread[rest] = part.spread
        for j, i in enumerate(rest.tolist()):
            details.errors[i] = part.errors[j]
            if details.paths is not None and part.paths is not None:
                details.paths[i] = part.paths[j]
    return overlay(details, served, values, errors_in)
