"""The partition of exact rules: a decision tree over the arguments that classifies the piece
(the exact expression, label or raise) of a call, with every numeric cut moved by bisection with
the oracle to the adjacent floats where the piece really changes, then pruned where a child's
piece reproduces its sibling's rows. Used by `_exact_rules`; emitted by `_codegen`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ._schema import Schema
from ._errors import InvalidArgument
from ._expressions import bisect_threshold


@dataclass
class Node:
    """The partition: a leaf holds a piece index; an internal node tests one encoded column."""

    column: int = -1
    threshold: float = math.nan
    strict: bool = False  # left when x < threshold (else x <= threshold)
    snapped: bool = False
    left: "Node | None" = None
    right: "Node | None" = None
    piece: int = -1

    @property
    def is_leaf(self) -> bool:
        return self.left is None

    def leaves(self) -> list["Node"]:
        return [self] if self.is_leaf else self.left.leaves() + self.right.leaves()  # type: ignore[union-attr]

    def internal(self) -> list["Node"]:
        return [] if self.is_leaf else [self] + self.left.internal() + self.right.internal()  # type: ignore[union-attr]

    @property
    def depth(self) -> int:
        return 0 if self.is_leaf else 1 + max(self.left.depth, self.right.depth)  # type: ignore[union-attr]


@dataclass(frozen=True)
class Column:
    """One encoded column: a number (`real`/`integer`), a boolean, one category's flag, or a
    value the code compares (`derived`: `category` holds the `_derived.Derived`)."""

    field: str
    kind: str  # "real", "integer", "boolean", "category", "derived"
    category: Any = None


class Encoding:
    """Rows (kwargs dicts) as a float matrix: numbers raw, booleans 0/1, categories one-hot,
    then the derived values."""

    def __init__(self, schema: Schema, derived: Sequence[Any] = ()) -> None:
        self.columns: list[Column] = []
        for f in schema.fields:
            if f.kind in ("real", "integer", "boolean"):
                self.columns.append(Column(f.name, f.kind))
            else:
                self.columns.extend(Column(f.name, "category", c) for c in f.categories)
        self.columns.extend(Column(d.text, "derived", d) for d in derived)

    def encode(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        X = np.zeros((len(rows), len(self.columns)))
        for j, col in enumerate(self.columns):
            if col.kind == "category":
                X[:, j] = [1.0 if _same(r[col.field], col.category) else 0.0 for r in rows]
            elif col.kind == "derived":
                X[:, j] = derived_column(col.category.expression, rows)
                if getattr(col.category, "sides", None) is not None:  # two pieces compared: only the sign
                    X[:, j] = np.sign(X[:, j])  # is learned, so every cut is at 0 (`<= 0` or `< 0`)
            else:
                X[:, j] = [float(r[col.field]) for r in rows]
        return X


def derived_column(expression: Any, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """A derived value on every row (0 where it cannot be computed: an unseen table key)."""
    if not len(rows):
        return np.zeros(0)
    try:
        values = expression.evaluate({name: [r[name] for r in rows] for name in expression.names}, len(rows))
    except Exception:
        values = np.array([_at(expression, r) for r in rows])
    return np.nan_to_num(np.asarray(values, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)


def _at(expression: Any, row: Mapping[str, Any]) -> float:
    try:
        return float(expression.evaluate_row(row))
    except Exception:
        return math.nan


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:
        return a is b


# -- the partition -----------------------------------------------------------------------------

def _from_sklearn(est: Any, classes: np.ndarray) -> Node:
    t = est.tree_

    def build(i: int) -> Node:
        if t.children_left[i] == -1:
            return Node(piece=int(classes[int(np.argmax(t.value[i][0]))]))
        return Node(int(t.feature[i]), float(t.threshold[i]), False, False,
                    build(int(t.children_left[i])), build(int(t.children_right[i])))

    return build(0)


#: the partition's leaves at most (oblique boundaries would otherwise grow a staircase)
MAX_LEAVES = 400
#: base rows tried per cut before it is left where the tree put it
SNAP_TRIES = 6
#: values of the node's rows beyond the cut's two nearest tried on each side when those do not bracket it
WIDEN = 4
#: (base row, value) pairs tried so at most
WIDEN_PAIRS = 40


def fit_partition(X: np.ndarray, labels: np.ndarray, seed: int, columns: Sequence[Column] = (),
                  first: Sequence[str] = (), max_leaves: int = MAX_LEAVES) -> Node:
    """A pure decision tree (up to `max_leaves` leaves) classifying the piece of every row; with
    `first`, the categorical/boolean fields named there are tested first (one branch per value,
    the leaves shared out by rows), as rule code often branches on a category before comparing
    numbers at per-category cuts."""
    if first:
        name, rest = first[0], first[1:]
        flags = [j for j, col in enumerate(columns) if col.field == name]
        split = _Split(X, labels, seed, columns, rest, max_leaves, len(X))
        if columns[flags[0]].kind == "boolean":
            on = X[:, flags[0]] > 0.5
            return Node(flags[0], 0.5, False, False, split.part(~on), split.part(on))
        return split.chain(np.ones(len(X), dtype=bool), flags)
    classes = np.unique(labels)
    if len(classes) <= 1:
        return Node(piece=int(classes[0]) if len(classes) else -1)
    from sklearn.tree import DecisionTreeClassifier

    est = DecisionTreeClassifier(random_state=seed, max_leaf_nodes=max(2, max_leaves))
    est.fit(X, labels)
    return _from_sklearn(est, est.classes_)


@dataclass
class _Split:
    """Subtrees of a partition that tests a category first."""

    X: np.ndarray
    labels: np.ndarray
    seed: int
    columns: Sequence[Column]
    first: Sequence[str]
    max_leaves: int
    total: int

    def part(self, mask: np.ndarray) -> Node:
        if not mask.any():
            return Node(piece=-1)  # no rows: pruning gives way to the sibling
        leaves = max(4, int(self.max_leaves * mask.sum() / max(self.total, 1)))
        return fit_partition(self.X[mask], self.labels[mask], self.seed, self.columns, self.first, leaves)

    def chain(self, mask: np.ndarray, flags: list[int]) -> Node:
        """`if field == c1: ... elif field == c2: ... else: ...` over one category's flags."""
        if len(flags) == 1:
            return self.part(mask)
        on = self.X[:, flags[0]] > 0.5
        return Node(flags[0], 0.5, False, False, self.chain(mask & ~on, flags[1:]), self.part(mask & on))


def errors(tree: Node, X: np.ndarray, labels: np.ndarray, covers: Callable[[int, np.ndarray], bool]) -> int:
    """Rows the partition sends to a leaf whose piece does not reproduce them."""
    members = route(tree, X)
    total = 0
    for leaf in tree.leaves():
        rows = members[id(leaf)]
        wrong = rows[labels[rows] != leaf.piece]
        if len(wrong) and not (leaf.piece >= 0 and covers(leaf.piece, wrong)):
            total += len(wrong)
    return total


def goes_left(node: Node, values: np.ndarray) -> np.ndarray:
    return values < node.threshold if node.strict else values <= node.threshold


def route(node: Node, X: np.ndarray, index: np.ndarray | None = None) -> dict[int, np.ndarray]:
    """Rows per node (by id) of the partition."""
    index = np.arange(len(X)) if index is None else index
    out = {id(node): index}
    if not node.is_leaf:
        left = goes_left(node, X[index, node.column])
        out.update(route(node.left, X, index[left]))  # type: ignore[arg-type]
        out.update(route(node.right, X, index[~left]))  # type: ignore[arg-type]
    return out


# -- snapping ----------------------------------------------------------------------------------

def _with(row: Mapping[str, Any], name: str, value: float, integer: bool) -> dict[str, Any]:
    out = dict(row)
    out[name] = int(value) if integer else float(value)
    return out


def snap(tree: Node, X: np.ndarray, rows: Sequence[Mapping[str, Any]], columns: Sequence[Column],
         piece_at: Callable[[dict[str, Any]], Any], fields: Mapping[str, Any] | None = None) -> tuple[int, int]:
    """Move every numeric cut to where `piece_at` (an oracle call) changes, top-down so each node's
    rows are routed by the snapped cuts above it; (cuts, cuts snapped). A cut already found on
    the same argument is tried first (two calls instead of a bisection)."""
    known: dict[str, list[tuple[float, float, bool]]] = {}
    total = snapped = 0

    def visit(node: Node, index: np.ndarray) -> None:
        nonlocal total, snapped
        if node.is_leaf:
            return
        col = columns[node.column]
        if col.kind in ("real", "integer"):
            total += 1
            snapped += _snap_one(node, index, X, rows, col, piece_at, known)
        elif col.kind == "derived" and fields is not None:
            total += 1
            snapped += _snap_derived(node, index, X, rows, col, piece_at, fields)
        left = goes_left(node, X[index, node.column])
        visit(node.left, index[left])  # type: ignore[arg-type]
        visit(node.right, index[~left])  # type: ignore[arg-type]

    visit(tree, np.arange(len(X)))
    return total, snapped


def _snap_one(node: Node, index: np.ndarray, X: np.ndarray, rows: Sequence[Mapping[str, Any]], col: Column,
              piece_at: Callable[[dict[str, Any]], Any], known: dict[str, list[tuple[float, float, bool]]]) -> bool:
    values = X[index, node.column]
    left, right = index[values <= node.threshold], index[values > node.threshold]
    if not len(left) or not len(right):
        return False
    a, b = float(X[left, node.column].max()), float(X[right, node.column].min())
    integer = col.kind == "integer"
    # base rows: the node's rows nearest the cut, alternating sides
    near_left = left[np.argsort(-X[left, node.column], kind="stable")][:SNAP_TRIES]
    near_right = right[np.argsort(X[right, node.column], kind="stable")][:SNAP_TRIES]
    bases = [int(i) for pair in zip(near_left, near_right) for i in pair][:SNAP_TRIES]
    # the rows nearest the cut may all sit where both sides give one piece (a coupon that beats
    # either tier): then rows spread over the node, whose other arguments differ
    spread = [int(i) for i in index[np.linspace(0, len(index) - 1, min(len(index), 2 * SNAP_TRIES)).astype(int)]]
    bases += [i for i in spread if i not in bases]
    for base in bases:
        row = rows[base]
        lo_row, hi_row = _with(row, col.field, a, integer), _with(row, col.field, b, integer)
        p_lo, p_hi = piece_at(lo_row), piece_at(hi_row)
        if p_lo == p_hi:
            continue
        for low, high, inclusive in known.get(col.field, []):
            if a <= low < high <= b and piece_at(_with(row, col.field, low, integer)) == p_lo \
                    and piece_at(_with(row, col.field, high, integer)) == p_hi:
                node.threshold, node.strict, node.snapped = (low, False, True) if inclusive else (high, True, True)
                return True
        try:
            found = bisect_threshold(piece_at, lo_row, hi_row, col.field)
        except InvalidArgument:  # the oracle answered differently the second time: not a clean cut
            continue
        node.threshold, node.strict, node.snapped = float(found.value), not found.below_inclusive, True
        known.setdefault(col.field, []).append((float(found.low), float(found.high), found.below_inclusive))
        return True
    # the piece changes beyond the rows either side of the cut (a row that goes either way sits
    # nearest it): bracket with the next values of the node's rows on each side
    outer = sorted(set(X[right, node.column].tolist()))[1:WIDEN + 1] + sorted(
        set(X[left, node.column].tolist()), reverse=True)[1:WIDEN + 1]
    pairs = [(base, value) for base in bases for value in outer][:WIDEN_PAIRS]
    for base, value in pairs:
        lo, hi = (a, value) if value > b else (value, b)
        lo_row, hi_row = _with(rows[base], col.field, lo, integer), _with(rows[base], col.field, hi, integer)
        if piece_at(lo_row) == piece_at(hi_row):
            continue
        try:
            found = bisect_threshold(piece_at, lo_row, hi_row, col.field)
        except InvalidArgument:
            continue
        node.threshold, node.strict, node.snapped = float(found.value), not found.below_inclusive, True
        known.setdefault(col.field, []).append((float(found.low), float(found.high), found.below_inclusive))
        return True
    node.threshold = _tidy(a, b)
    return False


def _snap_derived(node: Node, index: np.ndarray, X: np.ndarray, rows: Sequence[Mapping[str, Any]], col: Column,
                  piece_at: Callable[[dict[str, Any]], Any], fields: Mapping[str, Any]) -> bool:
    """A cut on a derived value: from a row of the node, move one argument the value reads until
    the value crosses the cut (on a grid, no oracle), bisect that argument with the oracle, and
    take the derived values either side; every argument narrows that bracket (a score that jumps
    by 2 along one argument steps by 1 along another); the cut is the roundest number in it."""
    if getattr(col.category, "sides", None) is not None:  # `A - B`, encoded by its sign: the code's A <= B
        own = getattr(col.category, "strict", None)
        strict = own if own is not None else bool(node.threshold < 0 or node.strict and node.threshold == 0)
        node.threshold, node.strict, node.snapped = 0.0, strict, True
        return True
    values = X[index, node.column]
    left, right = index[values <= node.threshold], index[values > node.threshold]
    if not len(left) or not len(right):
        return False
    near_left = left[np.argsort(-X[left, node.column], kind="stable")][:SNAP_TRIES]
    near_right = right[np.argsort(X[right, node.column], kind="stable")][:SNAP_TRIES]
    for base in [int(i) for pair in zip(near_left, near_right) for i in pair][:SNAP_TRIES]:
        brackets: dict[Any, list[float]] = {}  # (piece below, piece above) -> [low, high]
        found = [_derived_bracket(rows[base], name, col.category.expression, node.threshold, piece_at, fields)
                 for name in col.category.expression.names]
        for pair, low, high in [b for b in found if b is not None] + _category_brackets(
                rows[base], col.category.expression, piece_at, fields):
            bracket = brackets.setdefault(pair, [low, high])
            if max(bracket[0], low) < min(bracket[1], high):
                bracket[:] = [max(bracket[0], low), min(bracket[1], high)]
        if brackets:
            low, high = next(iter(brackets.values()))
            # the code compares with the roundest number between the values either side: `bmi < 30.0`
            # (low 29.999999999999996, high 30.000000000000004), `weekday_hours <= 40.0` (low 40.0)
            strict, inclusive = _roundest(low, high, False, True), _roundest(low, high, True, False)
            node.threshold, node.strict = (strict, True) if _digits(strict) <= _digits(inclusive) else (inclusive, False)
            node.snapped = True
            return True
    node.threshold = _tidy(float(X[left, node.column].max()), float(X[right, node.column].min()))
    return False


def _category_brackets(row: Mapping[str, Any], expression: Any, piece_at: Callable[[dict[str, Any]], Any],
                       fields: Mapping[str, Any]) -> list[tuple[Any, float, float]]:
    """Brackets from switching a category or flag the derived value reads (a region's loading
    steps the score by 1 where age steps it by 2): the row against each other value."""
    if not any(getattr(fields.get(n), "kind", "") in ("categorical", "boolean") for n in expression.names):
        return []
    here = float(derived_column(expression, [row])[0])
    piece = piece_at(dict(row))
    out = []
    for name in expression.names:
        f = fields.get(name)
        if f is None or f.kind not in ("categorical", "boolean"):
            continue
        for value in f.categories:
            other = dict(row)
            other[name] = value
            there = float(derived_column(expression, [other])[0])
            if there == here:
                continue
            piece_there = piece_at(other)
            if piece_there != piece:
                low, high = sorted((here, there))
                out.append(((piece, piece_there) if here < there else (piece_there, piece), low, high))
    return out


def _derived_bracket(row: Mapping[str, Any], name: str, expression: Any, t: float,
                     piece_at: Callable[[dict[str, Any]], Any],
                     fields: Mapping[str, Any]) -> tuple[Any, float, float] | None:
    """((piece below, piece above), low, high): the derived values either side of where the piece
    changes as argument `name` moves the value across `t`; None where it does not cross or change."""
    f = fields.get(name)
    if f is None or f.kind not in ("real", "integer"):
        return None
    integer = f.kind == "integer"
    grid = np.unique(np.round(np.linspace(f.low, f.high, 129))) if integer else np.linspace(f.low, f.high, 129)
    d = derived_column(expression, [_with(row, name, g, integer) for g in grid])
    crossing = np.flatnonzero((d[:-1] <= t) != (d[1:] <= t))
    if not len(crossing):
        return None
    k = int(crossing[np.argmin(np.abs(grid[crossing] - float(row[name])))])
    for m in (0, 1, 3, 7):  # the tree's cut may sit off the code's: widen until the piece differs
        lo_row = _with(row, name, grid[max(k - m, 0)], integer)
        hi_row = _with(row, name, grid[min(k + 1 + m, len(grid) - 1)], integer)
        if piece_at(lo_row) != piece_at(hi_row):
            break
    else:
        return None
    try:
        found = bisect_threshold(piece_at, lo_row, hi_row, name)
    except InvalidArgument:
        return None
    ends = derived_column(expression, [_with(row, name, found.low, integer), _with(row, name, found.high, integer)])
    if ends[0] == ends[1]:
        return None
    below, above = (found.below, found.above) if ends[0] < ends[1] else (found.above, found.below)
    return (below, above), float(min(ends)), float(max(ends))


def _roundest(low: float, high: float, with_low: bool, with_high: bool) -> float:
    """The number with the fewest significant digits between `low` and `high` (ends included as asked)."""
    for digits in range(1, 18):
        for value in (low, high, (low + high) / 2):
            candidate = float(f"{value:.{digits}g}")
            if (low < candidate or with_low and candidate == low) and (candidate < high or with_high and candidate == high):
                return candidate
    return high if with_high else low


def _digits(value: float) -> int:
    """Significant digits of a float's repr (`93.0` -> 2, `92.9` -> 3): the rounder cut reads best."""
    text = repr(float(value)).lstrip("-").replace(".", "").lstrip("0")
    return len(text.rstrip("0")) if "e" not in text else 17


def _tidy(a: float, b: float) -> float:
    """The shortest decimal in [a, b) (a cut left unsnapped still reads well)."""
    for digits in range(1, 17):
        value = float(f"{(a + b) / 2:.{digits}g}")
        if a <= value < b:
            return value
    return a


# -- pruning -------------------------------------------------------------------------------------

def prune(tree: Node, X: np.ndarray, covers: Callable[[int, np.ndarray], bool]) -> Node:
    """Bottom-up: two leaves of one piece, or where one leaf's piece reproduces its sibling's rows
    (`covers(piece, rows)`), become one leaf; a child left without rows by the snapped cuts
    gives way to its sibling."""
    members = route(tree, X)
    empty = np.array([], dtype=int)

    def leaf(piece: int, index: np.ndarray) -> Node:
        node = Node(piece=piece)
        members[id(node)] = index
        return node

    def visit(node: Node) -> Node:
        if node.is_leaf:
            return node
        node.left, node.right = visit(node.left), visit(node.right)  # type: ignore[arg-type]
        lrows, rrows = members.get(id(node.left), empty), members.get(id(node.right), empty)
        if not len(lrows):
            return node.right  # type: ignore[return-value]
        if not len(rrows):
            return node.left  # type: ignore[return-value]
        if node.left.is_leaf and node.right.is_leaf:  # type: ignore[union-attr]
            lp, rp = node.left.piece, node.right.piece  # type: ignore[union-attr]
            both = np.concatenate([lrows, rrows])
            if lp == rp:
                return leaf(lp, both)
            for keep, other in ((lp, rrows), (rp, lrows)) if len(lrows) >= len(rrows) else ((rp, lrows), (lp, rrows)):
                if covers(keep, other):
                    return leaf(keep, both)
        return node

    return visit(tree)
