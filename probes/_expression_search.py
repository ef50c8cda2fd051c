"""The search for an exact expression from simple to complex (`fit_expression`, `fit_groups`):
sums, then one step feature more, then min/max clamps, each possibly rounded to the output's
quantum; the grammar is described in `probes._expressions`."""

from __future__ import annotations

import contextlib
import keyword
import math
from typing import Any, Mapping, Sequence

import numpy as np

from ._expression_data import Expression, agrees
from ._expression_fit import _Budget, _Data, _fit_sums, _snap
from ._expression_nodes import STEP_UNITS, Call, Const, Div, MinMax, Node, Sum, Var, _as_list, _is_key
from ._schema import output_quantum
from ._validation import bad_argument


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
