"""Inputs as columns, teachers as batch oracles, and a plain agreement measure.

Every explainer takes inputs in whatever form the user has (kwargs dicts, `Traces`, columns)
and calls either the legacy function (row by row, exceptions kept as data) or a surrogate
(vectorised); this module is that one conversion, so attributions, distillation and the report
read and call things the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from probes import ErrorInfo, Schema, Tolerance, Traces
from probes._validation import bad_argument
from probes._report import wilson_interval


def is_surrogate(obj: Any) -> bool:
    """Duck-typed check for a `replace.Surrogate` (encode + torch_module + schema)."""
    return all(hasattr(obj, name) for name in ("encode", "torch_module", "schema", "predict_batch"))


def schema_of(model_or_fn: Any, schema: Schema | None, *, traces: Traces | None = None,
              argument: str = "schema") -> Schema:
    """The schema to use: the one given, else the surrogate's, else one inferred from traces."""
    if schema is not None:
        if not isinstance(schema, Schema):
            raise bad_argument(argument, type(schema).__name__, "must be a probes.Schema",
                               "Build one with Schema.from_function(fn, ...)")
        return schema
    inner = getattr(model_or_fn, "schema", None)
    if isinstance(inner, Schema):
        return inner
    if traces is not None and len(traces):
        return Schema.infer(model_or_fn, traces)
    raise bad_argument(argument, None, "is needed for a plain function (its domain is not known)",
                       "Pass schema=Schema.from_function(fn, x=(0, 1), ...)")


def column_of(field: Any, values: Sequence[Any]) -> np.ndarray:
    """One argument's values as the column dtype its kind uses."""
    if field.kind in ("real", "integer"):
        return np.asarray([float(v) for v in values], dtype=float)
    if field.kind == "boolean":
        return np.asarray([bool(v) for v in values], dtype=bool)
    if field.kind == "vector":
        return np.asarray([np.asarray(v, dtype=float) for v in values], dtype=float).reshape(len(values), field.width)
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = value
    return out


def as_columns(inputs: Any, schema: Schema, *, argument: str = "inputs") -> dict[str, np.ndarray]:
    """`inputs` (kwargs dicts, Traces, or a mapping of columns) as columns in schema order."""
    if isinstance(inputs, Traces):
        return as_columns(list(inputs.inputs), schema, argument=argument)
    if isinstance(inputs, Mapping):
        missing = [f.name for f in schema.fields if f.name not in inputs]
        if missing:
            raise bad_argument(argument, f"<columns {sorted(inputs)}>", f"lacks column {missing[0]!r}",
                               f"Pass one column per argument: {schema.names}")
        lengths = {len(inputs[f.name]) for f in schema.fields}
        if len(lengths) > 1:
            raise bad_argument(argument, f"<lengths {sorted(lengths)}>", "columns must have one length")
        return {f.name: column_of(f, list(inputs[f.name])) if not isinstance(inputs[f.name], np.ndarray)
                or f.kind == "categorical" else _typed(f, inputs[f.name]) for f in schema.fields}
    if isinstance(inputs, (list, tuple)):
        if not inputs:
            raise bad_argument(argument, "[]", "needs at least one input")
        if not all(isinstance(row, Mapping) for row in inputs):
            raise bad_argument(argument, f"<{type(inputs[0]).__name__} items>", "must be kwargs dicts",
                               "Pass [{'x': 1.0, ...}, ...], Traces, or a mapping of columns")
        for f in schema.fields:
            if any(f.name not in row for row in inputs):
                raise bad_argument(argument, "<rows>", f"a row lacks argument {f.name!r}",
                                   f"Every row needs {schema.names}")
        return {f.name: column_of(f, [row[f.name] for row in inputs]) for f in schema.fields}
    raise bad_argument(argument, type(inputs).__name__, "must be a list of kwargs dicts, Traces or columns")


def _typed(field: Any, column: np.ndarray) -> np.ndarray:
    if field.kind == "boolean":
        return column.astype(bool)
    if field.kind == "vector":
        return np.asarray(column, dtype=float).reshape(len(column), field.width)
    return np.asarray(column, dtype=float)


def n_rows(columns: Mapping[str, np.ndarray]) -> int:
    return len(next(iter(columns.values()))) if columns else 0


def take(columns: Mapping[str, np.ndarray], index: Any) -> dict[str, np.ndarray]:
    """Rows `index` of every column."""
    return {name: column[index] for name, column in columns.items()}


def concat(parts: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    names = list(parts[0])
    return {name: np.concatenate([p[name] for p in parts], axis=0) for name in names}


# -- calling a teacher -------------------------------------------------------------------------

@dataclass
class Outcomes:
    """What a teacher did on a batch: values (object list) and errors (None where it returned)."""

    values: list[Any]
    errors: list[ErrorInfo | None]

    @property
    def raised(self) -> np.ndarray:
        return np.array([e is not None for e in self.errors], dtype=bool)

    def __len__(self) -> int:
        return len(self.values)


def call_rows(fn: Callable[..., Any], rows: Sequence[Mapping[str, Any]]) -> Outcomes:
    values: list[Any] = []
    errors: list[ErrorInfo | None] = []
    for kwargs in rows:
        try:
            values.append(fn(**kwargs))
            errors.append(None)
        except Exception as exc:  # the teacher's own outcome, kept as data
            values.append(None)
            errors.append(ErrorInfo.from_exception(exc))
    return Outcomes(values, errors)


def call_batch(fn: Callable[..., Any], columns: Mapping[str, np.ndarray], schema: Schema) -> Outcomes:
    """Outcomes of `fn` on every row: a surrogate answers vectorised, a function row by row."""
    if is_surrogate(fn) and hasattr(fn, "predict_details") and hasattr(fn, "python_outputs"):
        try:  # values in the original's Python types, and the errors it predicts
            details = fn.predict_details(dict(columns))
            return Outcomes(list(fn.python_outputs(details)), list(details.errors))
        except Exception:
            pass
    if is_surrogate(fn):
        try:
            predicted = fn.predict_batch(dict(columns))
        except Exception:  # a surrogate that refuses a batch (out of domain rows): row by row
            return call_rows(fn, schema.rows(columns))
        values = [_plain(v) for v in _unstack(predicted, n_rows(columns))]
        return Outcomes(values, [None] * len(values))
    return call_rows(fn, schema.rows(columns))


def _unstack(predicted: Any, n: int) -> list[Any]:
    if isinstance(predicted, np.ndarray):
        return [predicted[i] for i in range(n)]
    return list(predicted)


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    return value


def numeric_outputs(outcomes: Outcomes, kind: str, *, fill: float = np.nan) -> np.ndarray:
    """Real or vector outputs as floats (`fill` where the call raised or the value is not a number)."""
    rows = []
    width = None
    for value, error in zip(outcomes.values, outcomes.errors):
        if error is None and value is not None:
            try:
                array = np.asarray(value, dtype=float)
            except (TypeError, ValueError):
                array = None
            if array is not None:
                width = array.size if width is None else width
                rows.append(array.reshape(-1))
                continue
        rows.append(None)
    width = width or 1
    out = np.full((len(rows), width), fill, dtype=float)
    for i, row in enumerate(rows):
        if row is not None and row.size == width:
            out[i] = row
    return out[:, 0] if kind != "vector" else out


# -- agreement without probes.verify ----------------------------------------------------------

@dataclass(frozen=True)
class Agreement:
    """Share of inputs on which a candidate agrees with a reference, with a 95% interval."""

    agreement: float
    agreement_ci: tuple[float, float]
    max_error: float
    r2: float | None
    n: int
    agree: np.ndarray  # per input
    error: np.ndarray  # per input (inf where outcome kinds differ; 1.0 for a wrong label)


def agreement(reference: Outcomes, candidate: Outcomes, kind: str, tolerance: Tolerance) -> Agreement:
    """Judge each input as probes does: tolerance for numbers, equality for labels, same
    exception type where the reference raises."""
    n = len(reference)
    agree = np.zeros(n, dtype=bool)
    error = np.zeros(n, dtype=float)
    ref_num: list[float] = []
    cand_num: list[float] = []
    for i in range(n):
        r_err, c_err = reference.errors[i], candidate.errors[i]
        if r_err is not None or c_err is not None:
            same = r_err is not None and c_err is not None and r_err.type == c_err.type
            agree[i], error[i] = same, 0.0 if same else math.inf
            continue
        r, c = reference.values[i], candidate.values[i]
        if kind in ("real", "vector"):
            try:
                ra, ca = np.asarray(r, dtype=float), np.asarray(c, dtype=float)
            except (TypeError, ValueError):
                agree[i], error[i] = False, math.inf
                continue
            if ra.shape != ca.shape:
                agree[i], error[i] = False, math.inf
                continue
            agree[i] = tolerance.agrees(ra, ca)
            diff = np.abs(ca - ra)
            error[i] = float(np.nanmax(diff)) if diff.size else 0.0
            if np.isnan(diff).any() and not agree[i]:
                error[i] = math.inf
            ref_num.extend(ra.reshape(-1).tolist())
            cand_num.extend(ca.reshape(-1).tolist())
        else:
            same = _label_equal(r, c)
            agree[i], error[i] = same, 0.0 if same else 1.0
    r2 = None
    if ref_num:
        ra, ca = np.asarray(ref_num), np.asarray(cand_num)
        ok = np.isfinite(ra) & np.isfinite(ca)
        if ok.sum() > 1:
            ss_tot = float(np.sum((ra[ok] - ra[ok].mean()) ** 2))
            ss_res = float(np.sum((ra[ok] - ca[ok]) ** 2))
            r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
    k = int(agree.sum())
    return Agreement(k / n if n else 0.0, wilson_interval(k, n), float(error.max()) if n else 0.0, r2, n, agree, error)


def _label_equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b) or (
            isinstance(a, (int, np.integer)) and isinstance(b, (int, np.integer))
            and not isinstance(a, bool) and not isinstance(b, bool) and int(a) == int(b))
    except Exception:
        return False


def base_point(columns: Mapping[str, np.ndarray], schema: Schema) -> dict[str, Any]:
    """A typical input: median of numbers (rounded for integers), mode of categories."""
    point: dict[str, Any] = {}
    for f in schema.fields:
        column = columns[f.name]
        if f.kind == "real":
            point[f.name] = float(np.median(column))
        elif f.kind == "integer":
            point[f.name] = int(round(float(np.median(column))))
        elif f.kind == "vector":
            point[f.name] = np.median(np.asarray(column, dtype=float), axis=0)
        else:
            values, counts = _mode_counts(column)
            point[f.name] = values[int(np.argmax(counts))]
    return point


def _mode_counts(column: np.ndarray) -> tuple[list[Any], list[int]]:
    counts: dict[Any, int] = {}
    for value in column.tolist():
        counts[value] = counts.get(value, 0) + 1
    return list(counts), list(counts.values())
