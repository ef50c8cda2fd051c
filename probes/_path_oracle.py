"""The traced oracle of exact rules and where it is asked: calls of the legacy function kept as rows
with their outcome, branch path and signature (`call_with_path`); rows near a partition's cuts;
more rows for paths seen too rarely to fit, or that no expression reproduced yet (per combination
of categories, and twice as many for tighter least squares); rows inside each leaf of a partition;
calls on short-decimal inputs that pick the code's own arithmetic where the output's rounding
meets a tie (`tie_order`). Used by `_exact_rules`.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ._clock import nominal_call_costs
from ._paths import call_with_path
from ._schema import Schema
from ._traces import ErrorInfo
from ._expressions import Expression
from ._identity import unwrap
from ._ties import _polynomial, match_ties

from ._partition import Encoding
from ._path_fit import FIT_ROWS, is_number, reproduces, rounding_hint

#: rows a path needs before its expression is trusted; thinner paths are densified first
MIN_FIT_ROWS = 12
#: rows per combination of categories a path that no expression reproduces is given before a refit
CELL_ROWS = 4
#: calls per fitted path on its own rows at short decimals (`tie_order`)
TIE_ROWS = 150


class OutOfTime(Exception):
    """The budget's deadline passed: stop querying, keep what was learned."""


class Oracle:
    """Traced calls of the legacy function, kept as rows with their outcome and path.

    Calls stop (`OutOfTime`) at the wall-clock `deadline` (perf_counter seconds), or once the
    search's nominal work reaches `work_s`: each call costs what the work clock charges a traced
    call executing its lines, and inside a `search_meter` the meter's other work counts too (the
    expression search's designs, the merge's checks). A limit in work, which a seed spends the same way at any load."""

    def __init__(self, fn: Callable[..., Any], schema: Schema, deadline: float, work_s: float = math.inf,
                 meter: list[float] | None = None) -> None:
        self.fn, self.schema, self.deadline, self.work_s = fn, schema, deadline, work_s
        self.meter = meter if meter is not None else [0.0]
        self.merges_cut = False  # `_exact_rules._merge` stopped at the limit, leaving pieces unmerged
        self.rows: list[dict[str, Any]] = []
        self.outputs: list[Any] = []
        self.errors: list[ErrorInfo | None] = []
        self.paths: list[str] = []
        self.sigs: list[str] = []
        self.calls = 0
        self.fits: dict[str, tuple[Expression | None, int]] = {}
        # calls on short-decimal inputs (`grid_rows`), kept apart: they pick the code's order of
        # operations among expressions that reproduce a path, and never refute one
        self.ties: list[tuple[dict[str, Any], Any, str, str]] = []  # (row, output, path, signature)
        self.tied: set[str] = set()  # paths whose own rows were asked on short decimals
        self.differences: list[tuple[str, str | None]] = []  # argument pairs the code subtracts
        self.rounding = rounding_hint(unwrap(fn))  # how the code rounds: ties are decided its way

    @property
    def work(self) -> float:
        """Nominal work so far (seconds): the calls', and the meter's other work."""
        return self.meter[0]

    def exhausted(self) -> bool:
        """Whether the work limit or the deadline has been reached (calls would raise OutOfTime)."""
        return self.meter[0] >= self.work_s or time.perf_counter() > self.deadline

    def call(self, row: Mapping[str, Any]) -> Any:
        if self.exhausted():
            raise OutOfTime()
        self.calls += 1
        pc = call_with_path(self.fn, row)
        self.meter[0] += nominal_call_costs(pc.lines)[1]
        return pc

    def add_ties(self, rows: Sequence[dict[str, Any]]) -> None:
        for row in rows:
            pc = self.call(row)
            if pc.error is None:
                self.ties.append((row, pc.output, pc.path, pc.signature))

    def truncate(self, n: int) -> None:
        """Forget the rows past the first `n` (calls stay counted)."""
        for rows in (self.rows, self.outputs, self.errors, self.paths, self.sigs):
            del rows[n:]

    def add(self, rows: Sequence[dict[str, Any]]) -> None:
        for row in rows:
            pc = self.call(row)
            self.rows.append(row)
            self.outputs.append(pc.output)
            self.errors.append(pc.error)
            self.paths.append(pc.path)
            self.sigs.append(pc.signature)



# -- sampling ----------------------------------------------------------------------------------

def jitter(base: Mapping[str, Any], schema: Schema, rng: np.random.Generator, scale: float,
            only: str | None = None) -> dict[str, Any]:
    """`base` with some numeric arguments moved by up to `scale` of their span (`only`: just that)."""
    row = dict(base)
    numeric = [f for f in schema.fields if f.kind in ("real", "integer") and (only is None or f.name == only)]
    if not numeric:
        return row
    chosen = [f for f in numeric if rng.random() < 0.5] or [numeric[int(rng.integers(len(numeric)))]]
    for f in chosen:
        span = float(f.high - f.low)
        value = float(row[f.name]) + rng.uniform(-scale, scale) * span
        value = min(max(value, float(f.low)), float(f.high))
        row[f.name] = int(round(value)) if f.kind == "integer" else value
    return row


def grid_rows(rows: Sequence[Mapping[str, Any]], schema: Schema, rng: np.random.Generator) -> list[dict[str, Any]]:
    """`rows` with their real arguments rounded to whole numbers, tenths, cents, halves or x.x5,
    as people type them: products of short decimals meet the output's rounding ties, where only
    the code's own float arithmetic gives its answer, and uniform floats almost never do."""
    real = [f for f in schema.fields if f.kind == "real"]
    out = []
    for base in rows:
        row = dict(base)
        for f in real:
            value = float(row[f.name])
            form = int(rng.choice(5, p=(0.15, 0.25, 0.25, 0.2, 0.15)))
            if form < 3:  # whole, tenths, cents
                row[f.name] = round(value, form)
            else:  # halves and x.x5: times a rate of two decimals these land on a half cent
                step = 1.0 if form == 3 else 0.1
                row[f.name] = round(math.floor(value / step) * step + step / 2, 2)
        if schema.contains(row)[0]:
            out.append(row)
    return out


def leaf_rows(tree: Any, encoding: Encoding, schema: Schema, rng: np.random.Generator,
              per_leaf: int) -> list[dict[str, Any]]:
    """Rows drawn inside each leaf's box (its numeric bounds and categories; a derived test is
    checked by routing): a piece that lives in a corner no sample reached (a coupon of 2% that
    loses to gold's 3% under 100) shows only where the leaf itself is sampled."""
    from ._partition import goes_left  # the partition imports this module

    fields = {f.name: f for f in schema.fields}
    out: list[dict[str, Any]] = []

    def sample(bounds: dict[str, list[float]], allowed: dict[str, set], banned: dict[str, set]) -> dict[str, Any] | None:
        row = schema.sample(1, rng=rng)[0]
        for name, (lo, hi) in bounds.items():
            f = fields[name]
            lo, hi = max(lo, float(f.low)), min(hi, float(f.high))
            if lo > hi:
                return None
            if f.kind == "integer":
                a, b = math.ceil(lo), math.floor(hi)
                if a > b:
                    return None
                row[name] = int(rng.integers(a, b + 1))
            else:
                row[name] = float(rng.uniform(lo, hi))
        for name, values in allowed.items():
            row[name] = sorted(values, key=repr)[int(rng.integers(len(values)))]
        for name, values in banned.items():
            choices = [c for c in fields[name].categories if c not in values]
            if not choices:
                return None
            if row[name] in values:
                row[name] = choices[int(rng.integers(len(choices)))]
        return row

    def visit(node: Any, bounds: dict[str, list[float]], allowed: dict[str, set], banned: dict[str, set],
              tests: list[tuple[Any, bool]]) -> None:
        if node.is_leaf:
            kept = 0
            for _ in range(3 * per_leaf):
                row = sample(bounds, allowed, banned)
                if row is None or kept >= per_leaf:
                    return
                x = encoding.encode([row])[0]
                if all(bool(goes_left(n, x[[n.column]])[0]) == left for n, left in tests):
                    out.append(row)
                    kept += 1
            return
        col = encoding.columns[node.column]
        for left, child in ((True, node.left), (False, node.right)):
            b, a, n = {k: list(v) for k, v in bounds.items()}, {k: set(v) for k, v in allowed.items()}, {
                k: set(v) for k, v in banned.items()}
            if col.kind in ("real", "integer"):
                lo, hi = b.get(col.field, [-math.inf, math.inf])
                b[col.field] = [lo, min(hi, node.threshold)] if left else [max(lo, node.threshold), hi]
            elif col.kind == "boolean":
                a[col.field] = {not left}
            elif col.kind == "category":
                if left:
                    n.setdefault(col.field, set()).add(col.category)
                else:
                    a[col.field] = {col.category}
            visit(child, b, a, n, tests + [(node, left)])

    visit(tree, {}, {}, {}, [])
    return [r for r in out if schema.contains(r)[0]]


def slab_rows(oracle: Oracle, encoding: Encoding, schema: Schema, cut_rows: list[tuple[int, float, np.ndarray]],
               per_cut: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Rows near each numeric cut: node rows with the cut argument drawn close to the cut."""
    out = []
    for j, t, members in cut_rows:
        col = encoding.columns[j]
        f = schema[col.field]
        width = 0.01 * float(f.high - f.low)
        for i in rng.choice(members, size=min(per_cut, len(members)), replace=False):
            row = dict(oracle.rows[int(i)])
            value = min(max(t + rng.uniform(-width, width), float(f.low)), float(f.high))
            row[col.field] = int(round(value)) if f.kind == "integer" else value
            out.append(row)
    return out


def value_key(value: Any) -> Any:
    try:
        hash(value)
        return (type(value).__name__, value)
    except TypeError:
        return (type(value).__name__, repr(value))


def densify(oracle: Oracle, schema: Schema, rng: np.random.Generator) -> None:
    """Paths seen on fewer than MIN_FIT_ROWS rows: more rows near theirs, so their expression
    is fitted on evidence, not interpolated."""
    counts = Counter(oracle.paths[i] for i, e in enumerate(oracle.errors) if e is None)
    for path, count in list(counts.items()):
        if count < MIN_FIT_ROWS:
            _grow(oracle, schema, rng, [i for i, p in enumerate(oracle.paths) if p == path], MIN_FIT_ROWS,
                  lambda i, path=path: oracle.paths[i] == path)


def _grow(oracle: Oracle, schema: Schema, rng: np.random.Generator, seeds: list[int], target: int,
          same: Callable[[int], bool]) -> None:
    """Jitter the numbers of `seeds` rows until `target` rows satisfy `same` (new rows on other
    paths are kept too: every traced call is evidence)."""
    seeds, count = list(seeds), len(seeds)
    for attempt in range(8 * max(target - count, 0)):
        if count >= target:
            break
        base = oracle.rows[seeds[int(rng.integers(len(seeds)))]]
        oracle.add([jitter(base, schema, rng, (0.002, 0.01, 0.05)[attempt % 3])])
        if same(len(oracle.rows) - 1):
            count += 1
            seeds.append(len(oracle.rows) - 1)


def repair(oracle: Oracle, schema: Schema, rng: np.random.Generator, pieces: Sequence[Any],
            labels: np.ndarray) -> None:
    """Rows for the approximate pieces: CELL_ROWS per combination of categories (a table needs
    them all), and twice the rows (tighter least squares), before they are fitted again."""
    cats = [f.name for f in schema.fields if f.kind in ("categorical", "boolean")]
    for k, piece in enumerate(pieces):
        if piece.exact:
            continue
        index = [int(i) for i in np.flatnonzero(labels == k)]
        cells: dict[Any, list[int]] = {}
        for i in index:
            cells.setdefault(tuple(value_key(oracle.rows[i][c]) for c in cats), []).append(i)
        keys = set(piece.paths)
        for cell, members in cells.items():
            if len(members) < CELL_ROWS:
                _grow(oracle, schema, rng, members, CELL_ROWS, lambda i, c=cell: oracle.errors[i] is None and (
                    oracle.paths[i] in keys or oracle.sigs[i] in keys) and tuple(
                    value_key(oracle.rows[i][n]) for n in cats) == c)
        if len(index) < 2 * FIT_ROWS:
            _grow(oracle, schema, rng, index, 2 * len(index), lambda i: oracle.errors[i] is None and (
                oracle.paths[i] in keys or oracle.sigs[i] in keys))


# -- ties: the code's own arithmetic ------------------------------------------------------------

def _spread(oracle: Oracle, index: list[int]) -> list[dict[str, Any]]:
    """Up to TIE_ROWS of the path's rows, taken in turn from each combination of categories (a
    table cell's own float shows only on its own rows)."""
    cats = [f.name for f in oracle.schema.fields if f.kind in ("categorical", "boolean")]
    cells: dict[tuple, list[int]] = {}
    for k in np.random.default_rng(len(index)).permutation(len(index)):
        i = index[int(k)]
        cells.setdefault(tuple(value_key(oracle.rows[i][c]) for c in cats), []).append(i)
    picked: list[dict[str, Any]] = []
    queues = [iter(members) for members in cells.values()]
    while queues and len(picked) < TIE_ROWS:
        for queue in list(queues):
            i = next(queue, None)
            if i is None:
                queues.remove(queue)
            elif len(picked) < TIE_ROWS:
                picked.append(oracle.rows[i])
    return picked


def differences(derived: Sequence[Any]) -> list[tuple[str, str | None]]:
    """Argument pairs the code subtracts (a compared `a - b`, or a local that is one:
    `weekday_hours = hours_worked - sunday_hours`): its sums may count from them."""
    out: list[tuple[str, str | None]] = []
    for d in derived:
        pair = d.pair
        if pair is None and isinstance(d.expression, Expression):
            poly = _polynomial(d.expression.root)
            if poly is not None and len(poly) == 2 and sorted(poly.values()) == [-1.0, 1.0] \
                    and all(len(k) == 1 for k in poly):
                (a,), (b,) = sorted(poly, key=lambda k: -poly[k])
                pair = (a, b)
        for each in ([pair, (pair[1], pair[0])] if pair is not None else []):  # h - s or s - h: either may be it
            if each not in out:
                out.append(each)
    return out


def tie_order(expression: Expression, oracle: Oracle, key: str, index: list[int]) -> Expression:
    """The variant of the expression (`match_ties`: order of operations, a shared factor, the
    code's float coefficients) that also gives the path's calls on short-decimal inputs, where
    the rounding meets ties only the code's own arithmetic decides; unchanged where none does."""
    if key not in oracle.tied:  # the path's own rows on short decimals: ties where it lives
        oracle.tied.add(key)
        try:
            oracle.add_ties(grid_rows(_spread(oracle, index), oracle.schema, np.random.default_rng(len(index) + 1)))
        except OutOfTime:
            pass
    ties = [(row, out) for row, out, path, sig in oracle.ties if key in (path, sig) and is_number(out)]
    if not ties or reproduces(expression, [r for r, _ in ties], [o for _, o in ties]):
        return expression
    rows = [oracle.rows[i] for i in index] + [r for r, _ in ties]
    outputs = [oracle.outputs[i] for i in index] + [o for _, o in ties]
    return match_ties(expression, rows, outputs, differences=oracle.differences) or expression
