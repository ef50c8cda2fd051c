"""The decision tree that distillation learns, in a form we own.

scikit-learn's tree compares float32-cast inputs with float64 thresholds; the rules we emit
compare Python floats. Holding the tree as plain arrays with double cut points (`x <= t`, or
`x < t` where that reads better) lets snapping move a cut to the teacher's true boundary and
makes the emitted source and `predict` agree exactly, one float step either side of every cut.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from probes import ErrorInfo, Schema


# -- the encoded feature space of distillation --------------------------------------------------

@dataclass(frozen=True)
class Feature:
    """One column the tree can split on: a number, a vector element, a bool, a category flag."""

    kind: str  # "num" (real), "int" (integer), "vec" (vector element), "bool", "cat" (one-hot),
    #            "ord" (a category's rank in `order`: one cut splits the categories into two sets)
    field: str
    index: int = 0  # vector element
    category: Any = None  # "cat": the category this column flags
    order: tuple[Any, ...] = ()  # "ord": categories by rank

    @property
    def numeric(self) -> bool:
        return self.kind in ("num", "int", "vec")

    @property
    def label(self) -> str:
        if self.kind == "vec":
            return f"{self.field}[{self.index}]"
        if self.kind == "cat":
            return f"{self.field}={self.category!r}"
        if self.kind == "ord":
            return f"rank({self.field})"
        return self.field


class Features:
    """Schema arguments <-> a float matrix the tree learns on (categories one-hot)."""

    def __init__(self, schema: Schema, orders: Mapping[str, Sequence[Any]] | None = None) -> None:
        """`orders`: per categorical argument, its categories ranked (by mean teacher output for a
        real output, CART's trick), adding a rank column next to the one-hot flags."""
        self.schema = schema
        specs: list[Feature] = []
        for f in schema.fields:
            if f.kind == "real":
                specs.append(Feature("num", f.name))
            elif f.kind == "integer":
                specs.append(Feature("int", f.name))
            elif f.kind == "vector":
                specs.extend(Feature("vec", f.name, i) for i in range(f.width))
            elif f.kind == "boolean":
                specs.append(Feature("bool", f.name))
            else:
                specs.extend(Feature("cat", f.name, category=c) for c in f.categories)
                if orders and f.name in orders and len(f.categories) > 2:
                    specs.append(Feature("ord", f.name, order=tuple(orders[f.name])))
        self.specs = specs

    def __len__(self) -> int:
        return len(self.specs)

    def encode(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        n = len(next(iter(columns.values())))
        X = np.zeros((n, len(self.specs)), dtype=float)
        for j, spec in enumerate(self.specs):
            column = columns[spec.field]
            if spec.kind in ("num", "int"):
                X[:, j] = np.asarray(column, dtype=float)
            elif spec.kind == "vec":
                X[:, j] = np.asarray(column, dtype=float)[:, spec.index]
            elif spec.kind == "bool":
                X[:, j] = np.asarray(column, dtype=bool).astype(float)
            elif spec.kind == "ord":
                X[:, j] = np.fromiter((_rank(v, spec.order) for v in column), dtype=float, count=n)
            else:
                X[:, j] = np.fromiter((_same_category(v, spec.category) for v in column), dtype=float, count=n)
        return X

    def field_of(self, name: str) -> Any:
        return self.schema[name]


def _rank(value: Any, order: Sequence[Any]) -> float:
    for k, c in enumerate(order):
        if _same_category(value, c):
            return float(k)
    return float(len(order))


def category_orders(schema: Schema, columns: Mapping[str, np.ndarray], y: np.ndarray) -> dict[str, list[Any]]:
    """Categories of each categorical argument sorted by the mean of `y` (unseen ones last)."""
    orders: dict[str, list[Any]] = {}
    for f in schema.fields:
        if f.kind != "categorical" or len(f.categories) <= 2:
            continue
        column = columns[f.name]
        means = []
        for k, c in enumerate(f.categories):
            mask = np.fromiter((_same_category(v, c) for v in column), dtype=float, count=len(column)) > 0
            ok = mask & np.isfinite(y)
            means.append((float(np.mean(y[ok])) if ok.any() else math.inf, k))
        orders[f.name] = [f.categories[k] for _, k in sorted(means)]
    return orders


def _same_category(value: Any, category: Any) -> float:
    try:
        return 1.0 if (value == category and type(value) is type(category)) or (
            value == category and not isinstance(value, bool) and not isinstance(category, bool)) else 0.0
    except Exception:
        return 0.0


# -- leaves ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Leaf:
    """A constant (real or vector), a linear model of numeric features, or an outcome class."""

    kind: str  # "const", "linear", "class"
    value: Any = None  # const: float or tuple; class: index into Tree.classes
    terms: tuple[tuple[int, float], ...] = ()  # linear: (feature index, coefficient), in order

    def evaluate(self, X: np.ndarray) -> np.ndarray:
        """Leaf value for rows of X, in the exact operation order of the emitted source."""
        if self.kind == "linear":
            out = np.full(X.shape[0], float(self.value))
            for j, coef in self.terms:
                out = out + coef * X[:, j]
            return out
        if isinstance(self.value, tuple):
            return np.tile(np.asarray(self.value, dtype=float), (X.shape[0], 1))
        return np.full(X.shape[0], self.value, dtype=float if self.kind == "const" else int)


@dataclass
class Tree:
    """Node arrays; `left[i] == -1` marks a leaf. Rows go left when `x[f] <= t` (`< t` if strict)."""

    feature: np.ndarray
    threshold: np.ndarray
    strict: np.ndarray
    left: np.ndarray
    right: np.ndarray
    leaves: dict[int, Leaf]
    n_samples: np.ndarray
    classes: list[Any] = field(default_factory=list)  # classification: outcome per class index
    snapped: np.ndarray | None = None  # per node: cut moved to the teacher's true boundary

    def __post_init__(self) -> None:
        if self.snapped is None:
            self.snapped = np.zeros(len(self.feature), dtype=bool)

    @property
    def n_leaves(self) -> int:
        return int(np.sum(self.left == -1))

    @property
    def depth(self) -> int:
        def walk(i: int) -> int:
            return 0 if self.left[i] == -1 else 1 + max(walk(self.left[i]), walk(self.right[i]))
        return walk(0)

    def internal(self) -> list[int]:
        return [i for i in range(len(self.feature)) if self.left[i] != -1]

    def goes_left(self, i: int, values: np.ndarray) -> np.ndarray:
        t = self.threshold[i]
        return values < t if self.strict[i] else values <= t

    def apply(self, X: np.ndarray) -> np.ndarray:
        """Leaf id of every row."""
        node = np.zeros(X.shape[0], dtype=int)
        active = self.left[node] != -1
        while active.any():
            rows = np.nonzero(active)[0]
            current = node[rows]
            feats = self.feature[current]
            values = X[rows, feats]
            thresholds = self.threshold[current]
            strict = self.strict[current]
            go_left = np.where(strict, values < thresholds, values <= thresholds)
            node[rows] = np.where(go_left, self.left[current], self.right[current])
            active = self.left[node] != -1
        return node

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Leaf values (float, (N, k) for vectors) or class indices."""
        leaf_ids = self.apply(X)
        sample = next(iter(self.leaves.values()))
        if sample.kind == "class":
            out = np.zeros(X.shape[0], dtype=int)
        elif sample.kind == "const" and isinstance(sample.value, tuple):
            out = np.zeros((X.shape[0], len(sample.value)), dtype=float)
        else:
            out = np.zeros(X.shape[0], dtype=float)
        for leaf in np.unique(leaf_ids):
            rows = leaf_ids == leaf
            out[rows] = self.leaves[int(leaf)].evaluate(X[rows])
        return out

    def node_rows(self, X: np.ndarray) -> list[np.ndarray]:
        """For every node, the indices of the rows of X that pass through it."""
        members: list[np.ndarray] = [np.array([], dtype=int)] * len(self.feature)
        members[0] = np.arange(X.shape[0])
        for i in range(len(self.feature)):  # children always follow their parent in sklearn order
            if self.left[i] == -1:
                continue
            rows = members[i]
            go_left = self.goes_left(i, X[rows, self.feature[i]])
            members[self.left[i]] = rows[go_left]
            members[self.right[i]] = rows[~go_left]
        return members

    def boxes(self, p: int) -> tuple[np.ndarray, np.ndarray]:
        """Per node, lower (exclusive) and upper (inclusive) bounds of every feature: (nodes, p)."""
        n = len(self.feature)
        lo = np.full((n, p), -np.inf)
        hi = np.full((n, p), np.inf)
        for i in range(n):
            if self.left[i] == -1:
                continue
            j, t = self.feature[i], self.threshold[i]
            for child in (self.left[i], self.right[i]):
                lo[child], hi[child] = lo[i], hi[i]
            hi[self.left[i], j] = min(hi[i, j], t)
            lo[self.right[i], j] = max(lo[i, j], t)
        return lo, hi

    def pruned(self) -> "Tree":
        """The same function with sibling leaves that hold the same leaf merged into their parent,
        bottom up, and unreachable nodes dropped (children always follow their parent)."""
        tree = self.copy()
        for i in reversed(range(len(tree.feature))):
            l, r = tree.left[i], tree.right[i]
            if l == -1 or tree.left[l] != -1 or tree.left[r] != -1:
                continue
            if tree.leaves.get(int(l)) == tree.leaves.get(int(r)):
                tree.leaves[i] = tree.leaves[int(l)]
                tree.left[i] = tree.right[i] = -1
                tree.feature[i] = -1
        keep: list[int] = []
        stack = [0]
        while stack:
            i = stack.pop()
            keep.append(i)
            if tree.left[i] != -1:
                stack.extend([int(tree.right[i]), int(tree.left[i])])
        keep.sort()
        index = {old: new for new, old in enumerate(keep)}
        remap = np.vectorize(lambda k: index.get(int(k), -1) if k != -1 else -1, otypes=[int])
        ids = np.asarray(keep)
        return Tree(tree.feature[ids].copy(), tree.threshold[ids].copy(), tree.strict[ids].copy(),
                    remap(tree.left[ids]) if len(ids) else tree.left[ids], remap(tree.right[ids]) if len(ids) else tree.right[ids],
                    {index[k]: v for k, v in tree.leaves.items() if k in index}, tree.n_samples[ids].copy(),
                    list(tree.classes), tree.snapped[ids].copy() if tree.snapped is not None else None)

    def copy(self) -> "Tree":
        return Tree(self.feature.copy(), self.threshold.copy(), self.strict.copy(), self.left.copy(),
                    self.right.copy(), dict(self.leaves), self.n_samples.copy(), list(self.classes),
                    self.snapped.copy() if self.snapped is not None else None)


# -- from scikit-learn -------------------------------------------------------------------------------

def float32_cut(threshold: float) -> float:
    """The double T with `x <= T` exactly when `float32(x) <= threshold` (scikit-learn's test).

    scikit-learn casts inputs to float32 and compares with a float64 threshold: a Python
    comparison with the raw threshold disagrees one float step away from it.
    """
    t = float(threshold)
    if not math.isfinite(t):
        return t
    f = np.float32(t)
    if float(f) > t:
        f = np.nextafter(f, np.float32(-np.inf))
    g = np.nextafter(f, np.float32(np.inf))
    if not np.isfinite(g):
        return float(np.finfo(np.float64).max)
    m = (float(f) + float(g)) / 2.0  # exact in double
    cut = m if np.float32(m) == f else float(np.nextafter(m, -np.inf))
    return cut


def from_sklearn(estimator: Any, *, task: str, classes: Sequence[Any] = (),
                 vector: bool = False) -> Tree:
    """Our Tree from a fitted DecisionTreeRegressor/Classifier (same predictions, exactly)."""
    t = estimator.tree_
    n = t.node_count
    left = t.children_left.astype(int).copy()
    right = t.children_right.astype(int).copy()
    feature = np.where(left == -1, -1, t.feature).astype(int)
    threshold = np.array([float32_cut(t.threshold[i]) if left[i] != -1 else np.nan for i in range(n)])
    leaves: dict[int, Leaf] = {}
    for i in range(n):
        if left[i] != -1:
            continue
        if task == "classification":
            counts = t.value[i][0]
            leaves[i] = Leaf("class", int(estimator.classes_[int(np.argmax(counts))]))
        elif vector:
            leaves[i] = Leaf("const", tuple(float(v) for v in t.value[i][:, 0]))
        else:
            leaves[i] = Leaf("const", float(t.value[i][0][0]))
    return Tree(feature, threshold, np.zeros(n, dtype=bool), left, right, leaves,
                t.n_node_samples.astype(int).copy(), list(classes))


# -- outcome classes ---------------------------------------------------------------------------------

OK = "__neuroswap_returned__"  # guard class: the call returned a value


def normalise_errors(errors: Sequence[ErrorInfo | None], *, max_messages: int = 5) -> list[ErrorInfo | None]:
    """Errors with one message per type when a type carries many (messages built from inputs)."""
    by_type: dict[str, dict[str, int]] = {}
    for e in errors:
        if e is not None:
            counts = by_type.setdefault(e.type, {})
            counts[e.message] = counts.get(e.message, 0) + 1
    collapse = {t: max(c, key=c.get) for t, c in by_type.items() if len(c) > max_messages}
    return [None if e is None else (ErrorInfo(e.type, collapse[e.type]) if e.type in collapse else e)
            for e in errors]


def outcome_key(value: Any) -> Any:
    """A hashable key for a label or an ErrorInfo (labels of odd types keyed by repr)."""
    try:
        hash(value)
        return (type(value).__name__, value)
    except TypeError:
        return ("repr", repr(value))
