"""Distil a teacher (the legacy function or its surrogate) into a small decision tree.

TREPAN's idea: the teacher is an oracle, so instead of fitting a tree once to whatever data
exists, ask it where the tree is unsure. Each round fits a tree, then spends more queries
inside impure leaves and in thin slabs around the split thresholds, and refits. Real outputs
may hold a linear model per leaf (a model tree) where that is more faithful at the same
number of leaves. When the teacher is the original function, every numeric cut is moved to
the teacher's true boundary by bisection, so `weight <= 2.0` comes back, not `2.0173`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from probes import ErrorInfo, Schema, Tolerance, Traces
from probes._validation import check_number

from probes._validation import bad_argument

from ._data import Outcomes, as_columns, call_batch, concat, is_surrogate, n_rows, numeric_outputs, take
from ._tree import OK, Features, Leaf, Tree, category_orders, from_sklearn, normalise_errors, outcome_key

#: share of the query budget spent on the first uniform sample; the rest goes to refinement.
INITIAL_SHARE = 0.4
#: refinement rounds (fit, sample where unsure, refit).
ROUNDS = 3
#: half-width of the slab sampled around a threshold, as a share of the argument's span, per round.
SLAB_WIDTHS = (0.02, 0.004, 0.0008)
#: bisection tries (different base points in the node) before a cut is left unsnapped.
SNAP_TRIES = 3
#: brackets tried around a cut: the k-th training value either side of it.
SNAP_WINDOWS = (1, 2, 4, 8, 16, 32)


# -- targets --------------------------------------------------------------------------------------

@dataclass
class Targets:
    """Teacher outcomes of the training rows, in the form each tree learns."""

    kind: str  # output kind: "real", "vector", "label", "none"
    errors: list[ErrorInfo | None]
    values: list[Any]

    @property
    def raised(self) -> np.ndarray:
        return np.array([e is not None for e in self.errors], dtype=bool)


def _targets(outcomes: Outcomes, kind: str) -> Targets:
    return Targets(kind, normalise_errors(outcomes.errors), list(outcomes.values))


class _Classes:
    """Outcome classes (labels or errors, or OK/errors for a guard) <-> integer ids."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.index: dict[Any, int] = {}

    def id(self, item: Any) -> int:
        key = outcome_key(item)
        if key not in self.index:
            self.index[key] = len(self.items)
            self.items.append(item)
        return self.index[key]


@dataclass
class Model:
    """A guard tree (returns or raises which error) and a value tree for real/vector outputs,
    or one classifier over labels and errors for label outputs."""

    kind: str
    value: Tree | None  # regression tree (real/vector), or classification tree (label/none)
    guard: Tree | None = None  # real/vector outputs that raise somewhere: OK vs error classes

    def trees(self) -> list[Tree]:
        return [t for t in (self.guard, self.value) if t is not None]

    @property
    def n_leaves(self) -> int:
        total = sum(t.n_leaves for t in self.trees())
        if self.guard is not None:  # the guard's OK leaves fall through to the value tree
            total -= sum(1 for leaf in self.guard.leaves.values() if self.guard.classes[leaf.value] == OK)
        return total

    @property
    def depth(self) -> int:
        return max((t.depth for t in self.trees()), default=0)

    def outcomes(self, X: np.ndarray) -> Outcomes:
        """Predicted outcome per row: values (floats, tuples, labels) and errors."""
        n = X.shape[0]
        values: list[Any] = [None] * n
        errors: list[ErrorInfo | None] = [None] * n
        todo = np.ones(n, dtype=bool)
        if self.guard is not None:
            ids = self.guard.predict(X)
            for i, k in enumerate(ids):
                item = self.guard.classes[int(k)]
                if isinstance(item, ErrorInfo):
                    errors[i] = item
                    todo[i] = False
        if self.value is None:
            return Outcomes(values, errors)
        rows = np.nonzero(todo)[0]
        if rows.size:
            predicted = self.value.predict(X[rows])
            if self.kind == "label" or self.kind == "none":
                for r, k in zip(rows, predicted):
                    item = self.value.classes[int(k)]
                    if isinstance(item, ErrorInfo):
                        errors[r] = item
                    else:
                        values[r] = item
            else:
                for r, v in zip(rows, predicted):
                    values[r] = tuple(float(x) for x in v) if np.ndim(v) else float(v)
        return Outcomes(values, errors)


# -- fitting ---------------------------------------------------------------------------------------

def _fit_classifier(X: np.ndarray, ids: np.ndarray, classes: list[Any], max_leaves: int, seed: int) -> Tree:
    from sklearn.tree import DecisionTreeClassifier

    if len(np.unique(ids)) == 1:
        return _single_leaf(Leaf("class", int(ids[0])), len(ids), classes)
    est = DecisionTreeClassifier(max_leaf_nodes=max(2, max_leaves), random_state=seed)
    est.fit(X, ids)
    return from_sklearn(est, task="classification", classes=classes)


def _fit_regressor(X: np.ndarray, y: np.ndarray, max_leaves: int, seed: int) -> Tree:
    from sklearn.tree import DecisionTreeRegressor

    vector = y.ndim == 2
    if max_leaves < 2 or len(y) < 2:
        value = tuple(float(v) for v in y.mean(axis=0)) if vector else float(np.mean(y)) if len(y) else 0.0
        return _single_leaf(Leaf("const", value), len(y), [])
    est = DecisionTreeRegressor(max_leaf_nodes=max_leaves, random_state=seed)
    est.fit(X, y)
    return from_sklearn(est, task="regression", vector=vector)


def _single_leaf(leaf: Leaf, n: int, classes: list[Any]) -> Tree:
    return Tree(np.array([-1]), np.array([np.nan]), np.zeros(1, dtype=bool), np.array([-1]), np.array([-1]),
                {0: leaf}, np.array([n]), list(classes))


def _real_y(targets: Targets, rows: np.ndarray) -> np.ndarray:
    values = [targets.values[i] for i in rows]
    if targets.kind == "vector":
        return np.asarray([np.asarray(v, dtype=float).reshape(-1) for v in values], dtype=float)
    return np.asarray([float(v) for v in values], dtype=float)


def fit_model(X: np.ndarray, targets: Targets, kind: str, max_leaves: int, seed: int) -> Model:
    """Constant-leaf trees for these rows: a classifier for labels, guard + regressor otherwise."""
    raised = targets.raised
    if kind in ("label", "none"):
        classes = _Classes()
        ids = np.array([classes.id(e if e is not None else v) for v, e in zip(targets.values, targets.errors)])
        return Model(kind, _fit_classifier(X, ids, classes.items, max_leaves, seed))
    guard = None
    if raised.any():
        classes = _Classes()
        classes.id(OK)
        ids = np.array([classes.id(e if e is not None else OK) for e in targets.errors])
        guard = _fit_classifier(X, ids, classes.items, max_leaves, seed)
        raising = sum(1 for leaf in guard.leaves.values() if guard.classes[leaf.value] != OK)
        max_leaves = max(2, max_leaves - raising)  # raising leaves count against the budget
    ok = np.nonzero(~raised)[0]
    if ok.size == 0:
        return Model(kind, None, guard)
    value = _fit_regressor(X[ok], _real_y(targets, ok), max_leaves, seed)
    return Model(kind, value, guard)


# -- leaf models and tidy numbers -----------------------------------------------------------------

def _bound(y: np.ndarray, tolerance: Tolerance, scale: float) -> np.ndarray:
    return np.maximum(tolerance.bound(y), 1e-12 * max(scale, 1.0))


def _nice(value: float, ok: Callable[[float], bool]) -> float:
    """The shortest decimal near `value` that `ok` still accepts (value itself otherwise)."""
    if not math.isfinite(value):
        return value
    for digits in range(0, 16):
        candidate = float(f"{value:.{digits}g}") if digits else float(round(value))
        if ok(candidate):
            return candidate
    return value


def tidy_leaves(tree: Tree, X: np.ndarray, y: np.ndarray, tolerance: Tolerance, *,
                linear: bool, features: Features, max_terms: int = 3) -> Tree:
    """Constant leaves rounded to short decimals; with `linear`, a linear model in a leaf
    where it fits the teacher there markedly better (forward selection, short coefficients)."""
    tree = tree.copy()
    if not tree.leaves or any(leaf.kind == "class" for leaf in tree.leaves.values()):
        return tree
    if y.ndim != 1:
        members = tree.node_rows(X)
        for leaf_id in tree.leaves:
            if members[leaf_id].size:
                tree.leaves[leaf_id] = Leaf("const", tuple(float(v) for v in y[members[leaf_id]].mean(axis=0)))
        return tree
    scale = float(np.max(np.abs(y))) if y.size else 1.0
    members = tree.node_rows(X)
    numeric = [j for j, spec in enumerate(features.specs) if spec.kind in ("num", "int", "vec", "bool", "cat")]
    for leaf_id, leaf in list(tree.leaves.items()):
        rows = members[leaf_id]
        if rows.size == 0:
            continue
        yl, Xl = y[rows], X[rows]
        bound = _bound(yl, tolerance, scale)
        mean = float(np.mean(yl))
        sse_mean = float(np.sum((yl - mean) ** 2))
        agree_mean = int(np.sum(np.abs(yl - mean) <= bound))
        best = Leaf("const", _nice(mean, lambda c: int(np.sum(np.abs(yl - c) <= bound)) >= agree_mean
                                   and float(np.sum((yl - c) ** 2)) <= sse_mean * (1 + 1e-6) + 1e-18))
        if linear and numeric and rows.size >= 8 and agree_mean < rows.size:
            candidate = _linear_leaf(Xl, yl, numeric, bound, max_terms)
            if candidate is not None:
                fitted = candidate.evaluate(Xl)
                sse = float(np.sum((yl - fitted) ** 2))
                agree = int(np.sum(np.abs(yl - fitted) <= bound))
                if sse <= 0.5 * sse_mean and agree >= agree_mean:
                    best = candidate
        tree.leaves[leaf_id] = best
    return tree


def _linear_leaf(X: np.ndarray, y: np.ndarray, numeric: list[int], bound: np.ndarray,
                 max_terms: int) -> Leaf | None:
    """Forward selection of up to `max_terms` numeric features by least squares."""
    chosen: list[int] = []
    best_sse = float(np.sum((y - y.mean()) ** 2))
    coefs: np.ndarray | None = None
    for _ in range(max_terms):
        step = None
        for j in numeric:
            if j in chosen or np.ptp(X[:, j]) == 0:
                continue
            cols = chosen + [j]
            A = np.column_stack([np.ones(len(y))] + [X[:, c] for c in cols])
            solution, *_ = np.linalg.lstsq(A, y, rcond=None)
            sse = float(np.sum((y - A @ solution) ** 2))
            if step is None or sse < step[1]:
                step = (j, sse, solution)
        if step is None or step[1] > 0.9 * best_sse:
            break
        chosen.append(step[0])
        best_sse, coefs = step[1], step[2]
        if best_sse <= 1e-20:
            break
    if coefs is None:
        return None
    order = np.argsort(chosen, kind="stable")  # canonical term order: equal leaves read the same
    chosen = [chosen[k] for k in order]
    coefs = np.concatenate([coefs[:1], coefs[1:][order]])
    exact = Leaf("linear", float(coefs[0]), tuple((j, float(c)) for j, c in zip(chosen, coefs[1:])))
    fitted = exact.evaluate(X)
    agree_exact = int(np.sum(np.abs(y - fitted) <= bound))
    sse_exact = float(np.sum((y - fitted) ** 2))
    slack = len(y) * (1e-9 * max(1.0, float(np.max(np.abs(y))))) ** 2
    for digits in range(1, 17):  # shortest coefficients that keep the leaf as faithful
        intercept = float(f"{coefs[0]:.{digits}g}")
        if abs(intercept) <= 1e-9 * max(1.0, float(np.max(np.abs(y)))):
            intercept = 0.0
        rounded = Leaf("linear", intercept,
                       tuple((j, float(f"{c:.{digits}g}")) for j, c in zip(chosen, coefs[1:])))
        fitted = rounded.evaluate(X)
        if (int(np.sum(np.abs(y - fitted) <= bound)) >= agree_exact
                and float(np.sum((y - fitted) ** 2)) <= sse_exact * 1.001 + slack):
            return rounded
    return exact


def relabel_leaves(tree: Tree, X: np.ndarray, ids: np.ndarray) -> Tree:
    """Majority class per leaf again, after cuts moved."""
    tree = tree.copy()
    members = tree.node_rows(X)
    for leaf_id in tree.leaves:
        rows = members[leaf_id]
        known = ids[rows][ids[rows] >= 0]
        if known.size:
            tree.leaves[leaf_id] = Leaf("class", int(np.bincount(known).argmax()))
    return tree


def _class_ids(tree: Tree, targets: "Targets", attr: str, kind: str) -> np.ndarray:
    if attr == "guard":
        return np.array([_class_of(tree.classes, OK if e is None else e) for e in targets.errors])
    return np.array([_class_of(tree.classes, e if e is not None else v)
                     for v, e in zip(targets.values, targets.errors)])


def nice_thresholds(tree: Tree, X: np.ndarray, features: Features) -> Tree:
    """Move each numeric cut, within the gap between the training rows either side of it, to
    the shortest decimal in that gap (same split of the training rows, easier to read)."""
    tree = tree.copy()
    members = tree.node_rows(X)
    for i in tree.internal():
        if tree.snapped[i]:
            continue
        j = tree.feature[i]
        spec = features.specs[j]
        if not spec.numeric:
            continue
        values = X[members[i], j]
        t = tree.threshold[i]
        below, above = values[values <= t], values[values > t]
        if below.size == 0 or above.size == 0:
            continue
        a, b = float(below.max()), float(above.min())
        if spec.kind == "int":
            tree.threshold[i] = float(math.floor(a)) if math.floor(a) < b else t
            continue
        tree.threshold[i] = _nice(t, lambda c: a <= c < b)
    return tree


# -- a model tree grown for linear leaves ---------------------------------------------------------

def _sse_linear(A: np.ndarray, b: np.ndarray, yy: float) -> float:
    """Residual sum of squares of least squares from the normal equations (A = X'X, b = X'y)."""
    ridge = 1e-10 * (np.trace(A) / len(A) + 1e-12)
    try:
        solution = np.linalg.solve(A + ridge * np.eye(len(A)), b)
    except np.linalg.LinAlgError:
        solution = np.linalg.lstsq(A, b, rcond=None)[0]
    return max(0.0, float(yy - b @ solution))


def grow_model_tree(X: np.ndarray, y: np.ndarray, features: Features, max_leaves: int, *,
                    n_thresholds: int = 48, min_leaf: int | None = None) -> Tree:
    """Best-first tree whose splits minimise the error of a linear model on each side (M5's
    idea): its cuts land on kinks and jumps, where CART spends its cuts along the slopes."""
    terms = [j for j, spec in enumerate(features.specs) if spec.kind in ("num", "int", "vec", "bool", "cat")]
    design = np.column_stack([np.ones(len(y))] + [X[:, j] for j in terms])
    d = design.shape[1]
    min_leaf = min_leaf or max(8, 2 * d)
    split_features = list(range(len(features.specs)))

    def fit_cost(rows: np.ndarray) -> float:
        D = design[rows]
        return _sse_linear(D.T @ D, D.T @ y[rows], float(y[rows] @ y[rows]))

    def best_split(rows: np.ndarray) -> tuple[float, int, float] | None:
        if len(rows) < 2 * min_leaf:
            return None
        D, yr = design[rows], y[rows]
        total = fit_cost(rows)
        best: tuple[float, int, float] | None = None
        outer = D[:, :, None] * D[:, None, :]  # (n, d, d)
        xy = D * yr[:, None]
        for j in split_features:
            values = X[rows, j]
            order = np.argsort(values, kind="stable")
            sorted_values = values[order]
            distinct = np.nonzero(np.diff(sorted_values) > 0)[0]  # split after these positions
            distinct = distinct[(distinct + 1 >= min_leaf) & (len(rows) - distinct - 1 >= min_leaf)]
            if distinct.size == 0:
                continue
            if distinct.size > n_thresholds:
                distinct = distinct[np.linspace(0, distinct.size - 1, n_thresholds).astype(int)]
            cum_A = np.cumsum(outer[order], axis=0)
            cum_b = np.cumsum(xy[order], axis=0)
            cum_yy = np.cumsum(yr[order] ** 2)
            all_A, all_b, all_yy = cum_A[-1], cum_b[-1], cum_yy[-1]
            for k in distinct:
                left = _sse_linear(cum_A[k], cum_b[k], cum_yy[k])
                right = _sse_linear(all_A - cum_A[k], all_b - cum_b[k], all_yy - cum_yy[k])
                gain = total - left - right
                if best is None or gain > best[0]:
                    best = (gain, j, (sorted_values[k] + sorted_values[k + 1]) / 2.0)
        if best is None or best[0] <= 1e-12 * max(1.0, total):
            return None
        return best

    feature, threshold, left_c, right_c, counts = [-1], [np.nan], [-1], [-1], [len(y)]
    members = {0: np.arange(len(y))}
    pending = {0: best_split(members[0])}
    leaves = 1
    while leaves < max_leaves:
        candidates = [(v[0], k) for k, v in pending.items() if v is not None]
        if not candidates:
            break
        _, node = max(candidates)
        gain, j, t = pending.pop(node)  # type: ignore[misc]
        rows = members.pop(node)
        go_left = X[rows, j] <= t
        ids = []
        for part in (rows[go_left], rows[~go_left]):
            ids.append(len(feature))
            feature.append(-1)
            threshold.append(np.nan)
            left_c.append(-1)
            right_c.append(-1)
            counts.append(len(part))
            members[ids[-1]] = part
            pending[ids[-1]] = best_split(part)
        feature[node], threshold[node], left_c[node], right_c[node] = j, t, ids[0], ids[1]
        leaves += 1
    leaves_dict = {i: Leaf("const", float(np.mean(y[members[i]])) if len(members[i]) else 0.0)
                   for i in range(len(feature)) if left_c[i] == -1}
    return Tree(np.asarray(feature, dtype=int), np.asarray(threshold, dtype=float), np.zeros(len(feature), dtype=bool),
                np.asarray(left_c, dtype=int), np.asarray(right_c, dtype=int), leaves_dict, np.asarray(counts, dtype=int))


# -- sampling inside regions ---------------------------------------------------------------------

def sample_box(schema: Schema, features: Features, lo: np.ndarray, hi: np.ndarray, n: int,
               rng: np.random.Generator) -> dict[str, np.ndarray] | None:
    """`n` inputs drawn uniformly from the part of the domain inside a box of encoded bounds
    (lower exclusive, upper inclusive); None when the box holds no input."""
    if n <= 0:
        return None
    columns: dict[str, np.ndarray] = {}
    by_field: dict[str, list[int]] = {}
    for j, spec in enumerate(features.specs):
        by_field.setdefault(spec.field, []).append(j)
    for f in schema.fields:
        idx = by_field[f.name]
        if f.kind == "real":
            a, b = max(f.low, lo[idx[0]]), min(f.high, hi[idx[0]])
            if a > b:
                return None
            columns[f.name] = rng.uniform(a, b, size=n)
        elif f.kind == "integer":
            a = int(f.low) if not np.isfinite(lo[idx[0]]) else max(int(f.low), int(math.floor(lo[idx[0]])) + 1)
            b = int(f.high) if not np.isfinite(hi[idx[0]]) else min(int(f.high), int(math.floor(hi[idx[0]])))
            if a > b:
                return None
            columns[f.name] = rng.integers(a, b, size=n, endpoint=True).astype(float)
        elif f.kind == "vector":
            a = np.maximum(f.low, lo[idx])
            b = np.minimum(f.high, hi[idx])
            if np.any(a > b):
                return None
            columns[f.name] = rng.uniform(a, b, size=(n, len(idx)))
        elif f.kind == "boolean":
            allowed = [v for v, x in ((False, 0.0), (True, 1.0)) if lo[idx[0]] < x <= hi[idx[0]]]
            if not allowed:
                return None
            columns[f.name] = np.asarray(allowed, dtype=bool)[rng.integers(0, len(allowed), size=n)]
        else:
            allowed = []
            flags = [j for j in idx if features.specs[j].kind == "cat"]
            ranks = [j for j in idx if features.specs[j].kind == "ord"]
            for k, c in enumerate(f.categories):
                if not all(lo[j] < (1.0 if m == k else 0.0) <= hi[j] for m, j in enumerate(flags)):
                    continue
                if not all(lo[j] < features.specs[j].order.index(c) <= hi[j] for j in ranks):
                    continue
                allowed.append(c)
            if not allowed:
                return None
            column = np.empty(n, dtype=object)
            for r, k in enumerate(rng.integers(0, len(allowed), size=n)):
                column[r] = allowed[k]
            columns[f.name] = column
    return columns


def _leaf_impurity(tree: Tree, X: np.ndarray, targets_for_tree: Any, tolerance: Tolerance) -> dict[int, float]:
    """Share of each leaf's training rows the leaf gets wrong."""
    members = tree.node_rows(X)
    predicted = tree.predict(X) if X.shape[0] else np.array([])
    out: dict[int, float] = {}
    for leaf_id in tree.leaves:
        rows = members[leaf_id]
        if rows.size == 0:
            continue
        truth = targets_for_tree[rows]
        guess = predicted[rows]
        if truth.dtype.kind in "iu" and guess.dtype.kind in "iu":
            wrong = truth != guess
        else:
            diff = np.abs(truth - guess)
            if diff.ndim == 2:
                wrong = np.any(diff > _bound(truth, tolerance, 1.0), axis=1)
            else:
                wrong = diff > _bound(truth, tolerance, 1.0)
        out[leaf_id] = float(np.mean(wrong))
    return out


def _refinement_sample(model: Model, X: np.ndarray, targets: Targets, schema: Schema, features: Features,
                       tolerance: Tolerance, n: int, slab: float, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    """New inputs: half inside impure leaves (by impurity x size), half in slabs around cuts."""
    parts: list[dict[str, np.ndarray]] = []
    p = len(features)
    raised = targets.raised
    trees: list[tuple[Tree, np.ndarray, np.ndarray]] = []  # tree, its rows of X, truth per row
    if model.guard is not None:
        ids = np.array([model.guard.classes.index(OK) if e is None else _class_of(model.guard.classes, e)
                        for e in targets.errors])
        trees.append((model.guard, np.arange(len(X)), ids))
    if model.value is not None:
        if model.kind in ("label", "none"):
            ids = np.array([_class_of(model.value.classes, e if e is not None else v)
                            for v, e in zip(targets.values, targets.errors)])
            trees.append((model.value, np.arange(len(X)), ids))
        else:
            ok = np.nonzero(~raised)[0]
            trees.append((model.value, ok, _real_y(targets, ok)))
    weights: list[tuple[float, Tree, int, str]] = []
    for tree, rows, truth in trees:
        lo, hi = tree.boxes(p)
        impurity = _leaf_impurity(tree, X[rows], truth, tolerance)
        for leaf_id, share in impurity.items():
            if share > 0:
                weights.append((share * math.sqrt(tree.n_samples[leaf_id] + 1), tree, leaf_id, "leaf"))
        for i in tree.internal():
            if features.specs[tree.feature[i]].numeric:
                weights.append((math.sqrt(tree.n_samples[i] + 1) * 0.5, tree, i, "slab"))
    if not weights:
        return parts
    total = sum(w for w, *_ in weights)
    boxes_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for w, tree, node, what in weights:
        count = int(round(n * w / total))
        if count <= 0:
            continue
        if id(tree) not in boxes_cache:
            boxes_cache[id(tree)] = tree.boxes(p)
        lo, hi = boxes_cache[id(tree)]
        lo_n, hi_n = lo[node].copy(), hi[node].copy()
        if what == "slab":
            j = tree.feature[node]
            spec = features.specs[j]
            f = schema[spec.field]
            width = slab * (f.high - f.low)
            if spec.kind == "int":
                width = max(width, 2.0)
            t = tree.threshold[node]
            lo_n[j] = max(lo_n[j], t - width)
            hi_n[j] = min(hi_n[j], t + width)
        drawn = sample_box(schema, features, lo_n, hi_n, count, rng)
        if drawn is not None:
            parts.append(drawn)
    return parts


def _class_of(classes: list[Any], item: Any) -> int:
    key = outcome_key(item)
    for k, c in enumerate(classes):
        if outcome_key(c) == key:
            return k
    return -1


# -- snapping cuts to the teacher's boundary --------------------------------------------------------

def _same_outcome(a: tuple[Any, ErrorInfo | None], b: tuple[Any, ErrorInfo | None], kind: str,
                  tolerance: Tolerance) -> bool:
    (va, ea), (vb, eb) = a, b
    if ea is not None or eb is not None:
        return ea is not None and eb is not None and ea.type == eb.type and ea.message == eb.message
    if kind == "guard":  # both returned: the guard does not look at the value
        return True
    if kind in ("real", "vector"):
        try:
            return tolerance.agrees(np.asarray(va, dtype=float), np.asarray(vb, dtype=float)) and (
                tolerance.abs > 0 or tolerance.rel > 0 or np.array_equal(np.asarray(va, dtype=float),
                                                                         np.asarray(vb, dtype=float)))
        except (TypeError, ValueError):
            return False
    try:
        return bool(va == vb)
    except Exception:
        return False


def _distance(a: Any, b: Any) -> float:
    try:
        return float(np.max(np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))))
    except (TypeError, ValueError):
        return math.inf


class OutOfBudget(Exception):
    """The distillation's budget is spent: no more teacher queries (caught where a stage can
    stop with what it has: snapping leaves the remaining cuts where the tree put them)."""


class _Oracle:
    """Teacher calls (batches for sampling, single rows for bisection), with a call counter.
    Under a budget, rows are called in chunks of about `CHUNK_S` seconds and the deadline is
    checked between chunks: `__call__` raises `OutOfBudget` when the budget ends first,
    `prefix` returns the rows it managed."""

    def __init__(self, teacher: Callable[..., Any], schema: Schema, budget: "Budget | None" = None) -> None:
        self.teacher, self.schema, self.calls = teacher, schema, 0
        self.budget = budget

    def __call__(self, columns: Mapping[str, np.ndarray]) -> Outcomes:
        kept, outcomes = self.prefix(columns, deadline=self.budget.learn_end if self.budget else math.inf)
        if n_rows(kept) < n_rows(columns):
            raise OutOfBudget()
        return outcomes

    def prefix(self, columns: Mapping[str, np.ndarray], *, deadline: float = math.inf
               ) -> tuple[dict[str, np.ndarray], Outcomes]:
        """The longest prefix of `columns` whose queries end before `deadline`, and its outcomes."""
        total = n_rows(columns)
        budget = self.budget
        if budget is None or total == 0:
            self.calls += total
            return dict(columns), call_batch(self.teacher, columns, self.schema)
        chunk = max(1, int(CHUNK_S / max(budget.cost_teacher, 1e-9)))
        values: list[Any] = []
        errors: list[ErrorInfo | None] = []
        done = 0
        while done < total:
            size = min(chunk, total - done)
            if budget.late(deadline, size * budget.cost_teacher):
                size = int(max(0.0, deadline - time.perf_counter()) / max(budget.cost_teacher, 1e-9))
                size = min(size, total - done)
                if size <= 0:
                    break
            part = take(columns, slice(done, done + size))
            result = call_batch(self.teacher, part, self.schema)
            values += result.values
            errors += result.errors
            done += size
            self.calls += size
        return take(columns, slice(0, done)), Outcomes(values, errors)


#: Seconds of teacher queries between two looks at the deadline.
CHUNK_S = 0.05
#: Shares of a distillation budget: learning (queries, refinement, validation, snapping), then
#: measuring the rules' fidelity; snapping keeps a part of learning's share.
LEARN_SHARE, SNAP_SHARE = 0.6, 0.2
#: The least a budget must buy: teacher queries to learn from, to validate on, fidelity inputs.
MIN_QUERIES, MIN_VALIDATION, MIN_FIDELITY = 100, 200, 50
#: Wall seconds of distillation's own work per row queried (fitting and scoring the candidate
#: trees, judging agreement), beside the query itself: about 2.5e-4 measured on a loaded
#: two-core machine with n_samples=4000 (2026).
COMPUTE_ROW_S = 3e-4


def _time_calls(fn: Callable[..., Any], schema: Schema, rng: np.random.Generator, *, rows: int,
                at_most_s: float = 0.05) -> float:
    """Wall seconds per row of `fn` on a few domain rows: one row at a time for a function (the
    first, a warm-up, left out when more follow), one batch for a surrogate."""
    if is_surrogate(fn):
        columns = schema.sample_columns(rows, rng=rng)
        began = time.perf_counter()
        call_batch(fn, columns, schema)
        return (time.perf_counter() - began) / rows
    times: list[float] = []
    began = time.perf_counter()
    for _ in range(5):
        if times and time.perf_counter() - began > at_most_s:
            break
        one = schema.sample_columns(1, rng=rng)
        tick = time.perf_counter()
        call_batch(fn, one, schema)
        times.append(time.perf_counter() - tick)
    kept = times[1:] if len(times) > 1 else times
    return sum(kept) / len(kept)


@dataclass
class Budget:
    """A distillation's wall-time budget, planned from the measured cost of a teacher query
    (and of a call of the original, whose fidelity is measured too): how many queries and
    fidelity inputs fit, the deadlines, and what the budget cut (`cut`)."""

    budget_s: float
    start: float
    cost_teacher: float
    cost_original: float
    n_samples: int
    fidelity_samples: int
    learn_end: float
    end: float
    asked: dict[str, int] = field(default_factory=dict)
    cut: list[str] = field(default_factory=list)
    sampling_end: float = math.inf  # sampling (first sample, refinement) ends here; snapping gets the rest

    def fidelity_plan(self, references: int) -> tuple[int, float]:
        """(inputs, verify's budget_s per reference) for measuring fidelity in what remains:
        the planned inputs, fewer when learning ran over (noted in `cut`)."""
        left = self.remaining()
        per_input = self.cost_teacher + self.cost_original + COMPUTE_ROW_S * references
        n = min(self.fidelity_samples, int(0.4 * left / per_input))
        n = max(n, min(10, self.fidelity_samples))
        if n < self.fidelity_samples:
            self.cut = [c for c in self.cut if not c.startswith("fidelity measured on")]
            self.cut.append(f"fidelity measured on {n} inputs of the fidelity_samples="
                            f"{self.asked.get('fidelity_samples', n)} asked")
            self.fidelity_samples = n
        return n, max(1e-3, (left - n * per_input) / max(references, 1))

    def late(self, deadline: float, cost: float = 0.0) -> bool:
        """Whether work costing `cost` seconds, started now, would end past `deadline`."""
        return time.perf_counter() + cost > deadline

    def remaining(self) -> float:
        return max(0.0, self.end - time.perf_counter())

    @classmethod
    def plan(cls, teacher: Callable[..., Any], original: Callable[..., Any] | None, schema: Schema, *,
             budget_s: float, n_samples: int, fidelity_samples: int, traces: bool, seed: int) -> "Budget":
        """Measure, then size every stage from what the budget buys; refuse (InvalidArgument
        naming the budget, the measured costs and the budget needed) when not even the least
        distillation (`MIN_QUERIES` + `MIN_VALIDATION` queries, `MIN_FIDELITY` inputs) fits."""
        start = time.perf_counter()
        import sklearn.tree  # noqa: F401 - imported once per process (seconds): inside the budget, before planning

        rng = np.random.default_rng(seed + 104729)  # its own stream: the learning sample is unchanged
        at_most = min(0.05, 0.02 * budget_s)
        cost_teacher = _time_calls(teacher, schema, rng, rows=256, at_most_s=at_most)
        cost_original = (_time_calls(original, schema, rng, rows=256, at_most_s=at_most)
                         if original is not None and original is not teacher else 0.0)
        spent = time.perf_counter() - start
        left = max(0.0, budget_s - spent)
        extra = 0.2 if traces else 0.0  # recorded inputs added to the first sample

        def queries(n: int) -> float:  # teacher queries of learning, snapping aside
            return n * (1.0 + extra) + max(MIN_VALIDATION, n // 4)

        per_query = cost_teacher + COMPUTE_ROW_S
        # fidelity, per input: each reference on its own sample and in verify's domain view
        # (and its operational view with traces), judging the agreement, the rules beside it
        references = 2 if cost_original else 1
        per_fidelity = (cost_teacher + cost_original) * (2.0 + (1.0 if traces else 0.0)) + COMPUTE_ROW_S * references
        learn_s = LEARN_SHARE * left * (1.0 - SNAP_SHARE)
        fit_n = int(min(n_samples, (learn_s / per_query - MIN_VALIDATION) / (1.0 + extra)))
        while fit_n > MIN_QUERIES and queries(fit_n) * per_query > learn_s:
            fit_n = int(fit_n * 0.95)
        fit_f = int(min(fidelity_samples, (1.0 - LEARN_SHARE) * left / per_fidelity))
        if fit_n < min(MIN_QUERIES, n_samples) or fit_f < min(MIN_FIDELITY, fidelity_samples):
            need = (spent + queries(MIN_QUERIES) * per_query / (LEARN_SHARE * (1.0 - SNAP_SHARE))
                    + MIN_FIDELITY * per_fidelity / (1.0 - LEARN_SHARE))
            original_cost = (f", a call of the original {_duration(cost_original)}" if cost_original else "")
            raise bad_argument(
                "budget_s", budget_s,
                f"is too small to distil this teacher: a query costs {_duration(cost_teacher)} (measured"
                f"{original_cost}), and the least distillation ({MIN_QUERIES} queries to learn from, "
                f"{MIN_VALIDATION} to validate on, {MIN_FIDELITY} inputs to measure fidelity) needs about "
                f"budget_s={need:.3g}",
                f"Pass budget_s>={need:.3g}, or distil a faster teacher (a surrogate of the function)")
        learn_end = start + spent + LEARN_SHARE * left
        budget = cls(float(budget_s), start, cost_teacher, cost_original, min(fit_n, int(n_samples)), fit_f,
                     learn_end, start + budget_s,
                     asked={"n_samples": int(n_samples), "fidelity_samples": int(fidelity_samples)})
        budget.sampling_end = learn_end - SNAP_SHARE * LEARN_SHARE * left
        if budget.n_samples < n_samples:
            budget.cut.append(f"teacher queries: {budget.n_samples} of the n_samples={n_samples} asked")
        if fit_f < fidelity_samples:
            budget.cut.append(f"fidelity measured on {fit_f} inputs of the fidelity_samples={fidelity_samples} asked")
        return budget

    def report(self, elapsed_s: float | None = None) -> "BudgetReport":
        return BudgetReport(self.budget_s, round(self.cost_teacher, 9), round(self.cost_original, 9),
                            self.n_samples, self.fidelity_samples, tuple(self.cut),
                            round(time.perf_counter() - self.start if elapsed_s is None else elapsed_s, 3))


@dataclass(frozen=True)
class BudgetReport:
    """What a distillation's `budget_s` bought: the measured cost of a teacher query (and of a
    call of the original), the queries and fidelity inputs it planned, and what it cut
    (`skipped`; `cut_short` when anything)."""

    budget_s: float
    cost_per_query_s: float
    cost_per_original_call_s: float
    n_samples: int
    fidelity_samples: int
    skipped: tuple[str, ...] = ()
    elapsed_s: float = 0.0

    @property
    def cut_short(self) -> bool:
        return bool(self.skipped)

    budget_exhausted = cut_short

    def to_dict(self) -> dict[str, Any]:
        return {"budget_s": self.budget_s, "cost_per_query_s": self.cost_per_query_s,
                "cost_per_original_call_s": self.cost_per_original_call_s, "n_samples": self.n_samples,
                "fidelity_samples": self.fidelity_samples, "cut_short": self.cut_short,
                "skipped": list(self.skipped), "elapsed_s": self.elapsed_s}

    def describe(self) -> str:
        """One line for Markdown and the command line."""
        text = (f"budget_s={self.budget_s:g}: {_duration(self.cost_per_query_s)} per teacher query (measured), "
                f"{self.n_samples} queries planned, fidelity on {self.fidelity_samples} inputs, {self.elapsed_s:.3g} s")
        if self.cut_short:
            text += "; cut short by the budget: " + "; ".join(self.skipped)
        return text


def _duration(value: float) -> str:
    if value < 1e-3:
        return f"{value * 1e6:.3g} us"
    if value < 1.0:
        return f"{value * 1e3:.3g} ms"
    return f"{value:.3g} s"


def _with_value(columns: Mapping[str, np.ndarray], row: int, spec: Any, value: float) -> dict[str, np.ndarray]:
    point = {name: column[row:row + 1].copy() for name, column in columns.items()}
    if spec.kind == "vec":
        point[spec.field][0, spec.index] = value
    else:
        point[spec.field][0] = value
    return point


def snap_thresholds(tree: Tree, X: np.ndarray, columns: Mapping[str, np.ndarray], features: Features,
                    oracle: _Oracle, kind: str, tolerance: Tolerance, *, what: str = "tree") -> Tree:
    """Move every numeric cut to where the teacher's outcome really changes, by bisection along
    the split feature between the training rows either side of the cut, the other arguments
    held at a row of the node. A cut is kept where no jump is found (a smooth teacher), and
    where the budget ran out first (noted in the oracle's budget)."""
    tree = tree.copy()
    members = tree.node_rows(X)
    internal = list(tree.internal())
    for position, i in enumerate(internal):
        try:
            members = _snap_one(tree, i, X, columns, features, oracle, kind, tolerance, members)
        except OutOfBudget:
            left = sum(1 for k in internal[position:] if features.specs[tree.feature[k]].numeric)
            if oracle.budget is not None and left:
                oracle.budget.cut.append(f"snapping ({what}): {left} cuts left where the tree put them")
            break
    return tree


def _snap_one(tree: Tree, i: int, X: np.ndarray, columns: Mapping[str, np.ndarray], features: Features,
              oracle: _Oracle, kind: str, tolerance: Tolerance, members: Any) -> Any:
    """Snap cut `i` of `tree` in place; the node rows afterwards."""
    j = tree.feature[i]
    spec = features.specs[j]
    if not spec.numeric:
        return members
    rows = members[i]
    t = tree.threshold[i]
    values = X[rows, j]
    left_rows, right_rows = rows[values <= t], rows[values > t]
    if left_rows.size == 0 or right_rows.size == 0:
        return members
    left_vals = np.sort(np.unique(X[left_rows, j]))[::-1]
    right_vals = np.sort(np.unique(X[right_rows, j]))
    # base points: the rows of the node nearest the cut
    near = rows[np.argsort(np.abs(values - t), kind="stable")][:SNAP_TRIES]
    found = None
    # widen the bracket step by step: a greedy split can sit off the teacher's jump when
    # other effects dominate the node (rows just past the jump look like the other side)
    for k in SNAP_WINDOWS:
        a = float(left_vals[min(k, left_vals.size) - 1])
        b = float(right_vals[min(k, right_vals.size) - 1])
        for row in near:
            found = _bisect(columns, int(row), spec, a, b, oracle, kind, tolerance,
                            float(getattr(features.schema.output, "quantum", None) or 0.0))
            if found is not None:
                break
        if found is not None or (k >= left_vals.size and k >= right_vals.size):
            break
    if found is not None:
        lo, hi = found
        if spec.kind == "int":
            tree.threshold[i], tree.strict[i] = float(lo), False
        elif len(repr(float(hi))) < len(repr(float(lo))):
            tree.threshold[i], tree.strict[i] = float(hi), True
        else:
            tree.threshold[i], tree.strict[i] = float(lo), False
        tree.snapped[i] = True
        members = tree.node_rows(X)  # rows may change sides below a moved cut
    return members


_SIGN = np.int64(-0x8000000000000000)


def _ordered(x: float) -> int:
    """Integer key of a double, increasing with its value (-0.0 and 0.0 share key 0)."""
    bits = int(np.array([x], dtype=np.float64).view(np.int64)[0])
    return bits if bits >= 0 else -(bits & 0x7FFFFFFFFFFFFFFF)


def _unordered(key: int) -> float:
    bits = key if key >= 0 else (-key) | -0x8000000000000000
    return float(np.array([bits], dtype=np.int64).view(np.float64)[0])


def _bisect(columns: Mapping[str, np.ndarray], row: int, spec: Any, a: float, b: float, oracle: _Oracle,
            kind: str, tolerance: Tolerance, quantum: float = 0.0) -> tuple[float, float] | None:
    """Adjacent values (lo, hi) in [a, b] where the teacher's outcome jumps, or None."""
    def outcome(x: float) -> tuple[Any, ErrorInfo | None]:
        result = oracle(_with_value(columns, row, spec, x))
        return result.values[0], normalise_errors(result.errors)[0]

    lo, hi = a, b
    f_lo, f_hi = outcome(lo), outcome(hi)
    if _same_outcome(f_lo, f_hi, kind, tolerance):
        return None
    integer = spec.kind == "int"
    for _ in range(200):
        if integer:
            if hi - lo <= 1:
                break
            mid = float(math.floor((lo + hi) / 2))
        else:  # halve the number of doubles between lo and hi (64 steps at most, even near 0)
            lo_k, hi_k = _ordered(lo), _ordered(hi)
            if hi_k - lo_k <= 1:
                break
            mid = _unordered((lo_k + hi_k) // 2)
            if not (lo < mid < hi):
                break
        f_mid = outcome(mid)
        left_like = _same_outcome(f_mid, f_lo, kind, tolerance)
        right_like = _same_outcome(f_mid, f_hi, kind, tolerance)
        if left_like and not right_like:
            lo, f_lo = mid, f_mid
        elif right_like and not left_like:
            hi, f_hi = mid, f_mid
        elif kind in ("real", "vector") and f_mid[1] is None and f_lo[1] is None and f_hi[1] is None:
            if _distance(f_mid[0], f_lo[0]) <= _distance(f_mid[0], f_hi[0]):
                lo, f_lo = mid, f_mid
            else:
                hi, f_hi = mid, f_mid
        else:
            return None  # a third outcome between the two: more than one boundary here
    if not integer and _ordered(hi) - _ordered(lo) > 1:
        return None
    if _same_outcome(f_lo, f_hi, kind, tolerance):
        return None
    if kind in ("real", "vector") and f_lo[1] is None and f_hi[1] is None:
        scale = max(_distance(f_lo[0], 0.0), _distance(f_hi[0], 0.0), 1.0)
        reference = np.asarray(f_lo[0], dtype=float)
        floor = max(1e-9 * scale, 2.0 * float(np.max(tolerance.bound(reference))), 2.0 * quantum)
        if _distance(f_lo[0], f_hi[0]) <= floor:
            return None  # a smooth teacher (or one rounding step of it): no jump to snap to
    return lo, hi


# -- the whole procedure ---------------------------------------------------------------------------

@dataclass
class Fitted:
    """What distillation learned, before code generation."""

    model: Model
    features: Features
    schema: Schema
    variant: str  # "constant" or "linear leaves"
    n_queries: int
    train_columns: dict[str, np.ndarray]


def _value_targets(targets: Targets, model: Model) -> tuple[np.ndarray, np.ndarray]:
    ok = np.nonzero(~targets.raised)[0]
    return ok, _real_y(targets, ok)


def _score(model: Model, X: np.ndarray, reference: Outcomes, kind: str, tolerance: Tolerance) -> tuple[float, float]:
    from ._data import agreement

    judged = agreement(reference, model.outcomes(X), kind, tolerance)
    finite = judged.error[np.isfinite(judged.error)]
    # agreement first, to the percent (closer than that is noise on a validation sample), then SSE
    return round(float(judged.agree.mean()), 2), -float(np.sum(finite ** 2))


def learn(teacher: Callable[..., Any], schema: Schema, *, max_leaves: int, n_samples: int,
          tolerance: Tolerance, seed: int, snap: bool, traces: Traces | None = None,
          linear_leaves: bool = True, rounds: int = ROUNDS, budget: Budget | None = None) -> Fitted:
    """Query `teacher`, grow and refine the tree, pick constant or linear leaves, snap cuts.
    Under a `budget`, each batch of queries stops at its stage's deadline (what was cut is
    noted in `budget.cut`): sampling and refinement by `budget.sampling_end`, validation and
    snapping by `budget.learn_end`."""
    rng = np.random.default_rng(seed)
    kind = schema.output.kind
    oracle = _Oracle(teacher, schema, budget)
    sampling_end = budget.sampling_end if budget is not None else math.inf
    learn_end = budget.learn_end if budget is not None else math.inf
    n_initial = max(50, int(n_samples * INITIAL_SHARE))
    parts = [schema.sample_columns(n_initial, rng=rng)]
    if traces is not None and len(traces):
        ops = [kw for kw in traces.inputs if schema.contains(kw)[0]]
        if ops:
            pick = rng.permutation(len(ops))[: n_initial // 2]
            parts.append(as_columns([ops[k] for k in pick], schema))
    columns = concat(parts)
    asked = n_rows(columns)
    columns, outcomes = oracle.prefix(columns, deadline=sampling_end)
    if budget is not None and n_rows(columns) < asked:
        budget.cut.append(f"first sample: {n_rows(columns)} of {asked} queries")
        if n_rows(columns) < 10:
            raise bad_argument("budget_s", budget.budget_s,
                               f"ran out after {n_rows(columns)} teacher queries (measured "
                               f"{_duration(budget.cost_teacher)} a query at the start; the teacher got slower)",
                               "Pass a larger budget_s")
    orders = None
    if kind in ("real", "vector"):
        y = numeric_outputs(outcomes, kind)
        orders = category_orders(schema, columns, y if y.ndim == 1 else y[:, 0])
    features = Features(schema, orders)
    per_round = max(0, (n_samples - n_rows(columns)) // max(rounds, 1))
    for r in range(rounds):
        X = features.encode(columns)
        targets = _targets(outcomes, kind)
        model = fit_model(X, targets, kind, max_leaves, seed)
        extra = _refinement_sample(model, X, targets, schema, features, tolerance, per_round,
                                   SLAB_WIDTHS[min(r, len(SLAB_WIDTHS) - 1)], rng)
        if not extra:
            break
        new = concat(extra)
        if budget is not None and budget.late(sampling_end, budget.cost_teacher):
            budget.cut.append(f"refinement: rounds {r + 1}-{rounds} of {rounds} skipped")
            break
        got, more = oracle.prefix(new, deadline=sampling_end)
        columns = concat([columns, got])
        outcomes = Outcomes(outcomes.values + more.values, outcomes.errors + more.errors)
        if budget is not None and n_rows(got) < n_rows(new):
            budget.cut.append(f"refinement round {r + 1} of {rounds}: {n_rows(got)} of {n_rows(new)} queries"
                              + (", later rounds skipped" if r + 1 < rounds else ""))
            break
    X = features.encode(columns)
    targets = _targets(outcomes, kind)
    # validation: a fresh uniform sample judges constant against linear leaves
    val_columns = schema.sample_columns(max(200, n_samples // 4), rng=rng)
    asked = n_rows(val_columns)
    val_columns, val_reference = oracle.prefix(val_columns, deadline=learn_end)
    if budget is not None and n_rows(val_columns) < asked:
        budget.cut.append(f"validation: {n_rows(val_columns)} of {asked} queries")
    if n_rows(val_columns) < 20:  # too few to judge by: the training rows instead
        val_columns, val_reference = columns, outcomes
    X_val = features.encode(val_columns)
    candidates: list[tuple[str, Model]] = []
    base = fit_model(X, targets, kind, max_leaves, seed)
    if base.value is not None and kind == "real":
        ok, y = _value_targets(targets, base)
        candidates.append(("constant", Model(kind, tidy_leaves(base.value, X[ok], y, tolerance, linear=False,
                                                               features=features), base.guard)))
        if linear_leaves:
            sizes = sorted({m for m in (max_leaves, max_leaves // 2, max_leaves // 4) if m >= 2}, reverse=True)
            # structures for linear leaves: CART on the outputs, and CART on what a global linear
            # model leaves unexplained (its cuts land on the kinks, not along the slopes)
            terms = [j for j, spec in enumerate(features.specs) if spec.kind in ("num", "int", "vec", "bool", "cat")]
            A = np.column_stack([np.ones(len(ok))] + [X[ok][:, j] for j in terms])
            beta, *_ = np.linalg.lstsq(A, y, rcond=None)
            residual = y - A @ beta
            raising = 0 if base.guard is None else sum(
                1 for leaf in base.guard.leaves.values() if base.guard.classes[leaf.value] != OK)
            for m in sizes:
                budget = max(2, m - raising)
                structures = [("", fit_model(X, targets, kind, m, seed).value),
                              (", cuts on residuals", _fit_regressor(X[ok], residual, budget, seed))]
                if m == sizes[0]:
                    structures.append((", model tree", grow_model_tree(X[ok], y, features, budget)))
                for label, structure in structures:
                    tree = tidy_leaves(structure, X[ok], y, tolerance, linear=True, features=features)
                    if any(leaf.kind == "linear" for leaf in tree.leaves.values()):
                        candidates.append((f"linear leaves ({m} leaves{label})", Model(kind, tree, base.guard)))
    else:
        candidates.append(("constant", base))
    scored = [(_score(m, X_val, val_reference, kind, tolerance), -k, name, m)
              for k, (name, m) in enumerate(candidates)]
    scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
    _, _, variant, model = scored[0]
    # snap cuts (teacher is the original) or tidy them within the data gaps
    for attr in ("guard", "value"):
        tree = getattr(model, attr)
        if tree is None or tree.n_leaves < 2:
            continue
        if attr == "value" and kind in ("real", "vector"):
            ok = np.nonzero(~targets.raised)[0]
            X_tree, cols_tree = X[ok], take(columns, ok)
        else:
            X_tree, cols_tree = X, columns
        if snap:
            tree = snap_thresholds(tree, X_tree, cols_tree, features, oracle,
                                   "guard" if attr == "guard" else kind, tolerance, what=f"{attr} tree")
        tree = nice_thresholds(tree, X_tree, features)
        if snap and attr == "value" and kind in ("real", "vector"):
            _, y = _value_targets(targets, model)
            tree = tidy_leaves(tree, X_tree, y, tolerance, features=features,
                               linear=any(leaf.kind == "linear" for leaf in tree.leaves.values()))
        elif snap:
            tree = relabel_leaves(tree, X_tree, _class_ids(tree, targets, attr, kind))
        setattr(model, attr, tree.pruned())
    return Fitted(model, features, schema, variant, oracle.calls, columns)


def check_max_leaves(max_leaves: Any) -> int:
    check_number("max_leaves", max_leaves, low=2, integer=True,
                 fix="Pass an integer >= 2, e.g. max_leaves=16")
    return int(max_leaves)


def teacher_name(teacher: Any) -> str:
    if is_surrogate(teacher):
        schema = getattr(teacher, "schema", None)
        return f"surrogate of {getattr(schema, 'function', '') or 'a function'}"
    from probes import function_name

    try:
        return function_name(teacher)
    except Exception:
        return repr(teacher)
