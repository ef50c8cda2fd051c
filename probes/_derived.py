"""Derived values the legacy code compares: `weekday_hours > 40`, `weighted >= 93`,
`sunday_hours > hours_worked`.

A boundary on such a value is oblique in the arguments, so tests on single arguments draw it
only as a staircase. The code names the value, though: tracing the function's own frame at
each line that holds a conditional jump records the numeric local variables its condition reads;
a local that an exact expression of the arguments reproduces (`fit_rows`) becomes a column the
partition may test, and the rules compute it first under the code's own name. A condition that
compares two numeric arguments (`sunday_hours > hours_worked`) gives their difference. Only the
function's own frame is read (helpers' locals depend on how they were called), and nothing is
evaluated but the function itself.

A local no expression gives may still be a ratio of one over a positive argument
(`dti = (monthly_debt + instalment) / monthly_income`) whose numerator is fitted per band of an
integer argument (the instalment's rate by credit-score band): the bands, found by bisection,
become one expression with an exact 0/1 indicator per band (`ratio_bands`, `banded`). A condition
comparing two arithmetic expressions of arguments and module constants (`loan_amount >
MAX_LOAN_TO_MONTHLY_INCOME * monthly_income`) gives `A - B`, tested `A <= B` as written.

Where the code compares two values it computed (`interest > cap`, `fee > invoice_amount`), the
pieces either side are often the code's own min or max of them, equal in mathematics on a tie
and apart in the last float bit; `piece_comparisons` offers the difference of two pieces' values
as a column when its sign separates their sampled calls, so the rules test `A <= B` as the code
does on such ties instead of a cut on an argument.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ._schema import Schema
from ._expressions import Const, Div, Expression, MinMax, Node, Product, Sum, Table, Var, map_children
from ._identity import kwargs_caller, unwrap
from ._paths import _code_info

from ._path_fit import fit_rows, is_number, reproduces, rounding_hint
from ._scorecard import scorecard_of

#: calls traced for their locals (each reads the frame at every branch line)
TRACED_ROWS = 1500
#: calls a local must be seen on before it is fitted
MIN_SEEN = 30
#: piece comparisons offered as columns, at most (the pairs covering the most calls)
MAX_COMPARISONS = 8
#: pieces whose pairs are compared, at most (the largest)
MAX_COMPARED_PIECES = 40
#: distinct values up to which a compared local counts as a constant the code looked up
FEW_VALUES = 20
#: calls traced to tell a compared local from a looked-up constant
COMPARED_ROWS = 400
#: bands of an integer argument a ratio may be fitted in, at most; rows that pin a band's fit
MAX_BANDS = 4
BAND_ROWS = 60
#: seconds spent looking for bands, at most (not applied where the search is limited in work)
BAND_SECONDS = 8.0
#: fits of a ratio the band search makes, at most (always: a limit the same at any load)
BAND_FITS = 200


@dataclass(frozen=True)
class Derived:
    """A value the code compares: `text` is how the rules write it (the code's local name, or
    `a - b`); `name` the local to assign (empty for a difference of two arguments)."""

    text: str
    expression: Any  # an Expression, or a Ratio
    name: str = ""
    pair: tuple[str, str] | None = None
    sides: tuple[Expression, Expression] | None = None  # a piece comparison: expression is sides[0] - sides[1]
    tied: bool = False  # a piece comparison whose sampled calls with A == B went both ways
    strict: bool | None = None  # a comparison the code's own condition writes (`a > 12.0 * b`): A < B (or A <= B) left


def _names(text: str) -> tuple[set[str], tuple[str, str] | None]:
    """Names a condition's text reads, and the two names of a plain `a < b` comparison."""
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError):
        return set(), None
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    body = tree.body
    if isinstance(body, ast.Compare) and len(body.ops) == 1 and isinstance(body.left, ast.Name) \
            and isinstance(body.comparators[0], ast.Name):
        return names, (body.left.id, body.comparators[0].id)
    return names, None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def derived_values(fn: Callable[..., Any], schema: Schema, rows: Sequence[Mapping[str, Any]], *,
                   deadline: float = math.inf, timed: bool = True) -> list[Derived]:
    """The derived values of `fn`'s conditions that an exact expression of the arguments gives.
    `timed=False`: the band search (`ratio_bands`) is limited by its count of fits, not its time,
    so that the result does not depend on the machine's load."""
    inner = unwrap(fn)
    code = getattr(inner, "__code__", None)
    if code is None:
        return []
    numeric = {f.name for f in schema.fields if f.kind in ("real", "integer")}
    try:
        params = set(inspect.signature(inner).parameters)
    except (TypeError, ValueError):
        params = set(schema.names)
    wanted: dict[int, set[str]] = {}
    pairs: list[tuple[str, str]] = []
    for line, text, _ in _code_info(code).conditions.values():
        names, pair = _names(text)
        if names - params:
            wanted.setdefault(line, set()).update(names - params)
        if pair and set(pair) <= numeric and pair not in pairs:
            pairs.append(pair)
    found = [Derived(f"{a} - {b}", Expression(Sum((Var(a), Product((Const(-1.0), Var(b)))))), pair=(a, b))
             for a, b in pairs]
    found += _own_comparisons(inner, code, numeric, params)
    seen = _trace(fn, code, wanted, rows[:TRACED_ROWS], deadline) if wanted else {}
    taken = set()
    for (line, name), values in sorted(seen.items(), key=lambda kv: -len(kv[1])):
        if name in taken or len(values) < MIN_SEEN or not name.isidentifier() or name.startswith("__"):
            continue
        index = sorted(values)
        expression = fit_rows([rows[i] for i in index], [values[i] for i in index], schema, "auto",
                              rounding=rounding_hint(inner))
        if expression is None:
            expression = ratio_of([rows[i] for i in index], [values[i] for i in index], sorted(numeric))
        if expression is None and _plain_categories(schema) and all(float(values[i]).is_integer() for i in index):
            expression = scorecard_of([rows[i] for i in index], [values[i] for i in index], schema,
                                      _probe(fn, code, line, name, deadline))
        if expression is None and name not in taken:  # `(debt + instalment) / income`, per band of a score
            bands = ratio_bands([rows[i] for i in index], [values[i] for i in index], schema, deadline,
                                timed=timed)
            if bands is not None:
                expression = banded(bands[0], bands[1], rows[index[0]], _probe(fn, code, line, name, deadline))
                if not reproduces(expression, [rows[i] for i in index], [values[i] for i in index]):
                    expression = None
        if expression is None or not expression.names or isinstance(expression.root, (Var, Const)):
            continue  # not reproduced, or a plain argument / constant: nothing a test on one argument lacks
        if len(expression.names) < 2 or (len(set(expression.names) & numeric) < 2 and not hasattr(expression, "bins")):
            continue  # a function of one number: its cuts are cuts on that number
        taken.add(name)
        found.append(Derived(name, expression, name=name))
    return found


@dataclass(frozen=True)
class Ratio:
    """`a / b`, `a / b ** 2`, `a / (b / s) ** 2` or `a * b` of two numeric arguments: the ratios
    rule code compares (a body-mass index, a rate per unit) that the expression grammar lacks.
    Evaluated with the code's own operations, so the value is the code's to the last bit."""

    form: str  # "div", "div_sq", "mul"
    a: str
    b: str
    scale: float = 1.0

    @property
    def root(self) -> "Ratio":
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted({self.a, self.b}))

    def children(self) -> tuple[()]:
        return ()

    def evaluate(self, columns: Mapping[str, Any], n: int | None = None) -> np.ndarray:
        a, b = (np.asarray(columns[k], dtype=float) for k in (self.a, self.b))
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.form == "mul":
                return a * b
            if self.form == "div":
                return a / b
            return a / ((b / self.scale) if self.scale != 1 else b) ** 2

    def evaluate_row(self, row: Mapping[str, Any]) -> float:
        return float(self.evaluate({k: [row[k]] for k in self.names})[0])

    def to_python(self) -> str:
        if self.form == "mul":
            return f"{self.a} * {self.b}"
        if self.form == "div":
            return f"{self.a} / {self.b}"
        inner = f"({self.b} / {int(self.scale) if self.scale.is_integer() else self.scale})" if self.scale != 1 else self.b
        return f"{self.a} / {inner} ** 2"


def ratio_of(rows: Sequence[Mapping[str, Any]], values: Sequence[float], numeric: Sequence[str]) -> Ratio | None:
    """The ratio of two arguments that gives `values` on every row to the last bit, or None."""
    y = np.asarray(values, dtype=float)
    forms = [Ratio("div", a, b) for a in numeric for b in numeric if a != b]
    forms += [Ratio("div_sq", a, b, s) for a in numeric for b in numeric if a != b for s in (1.0, 10.0, 100.0, 1000.0)]
    forms += [Ratio("mul", a, b) for a in numeric for b in numeric if a < b]
    columns = {name: [r[name] for r in rows] for name in numeric}
    for form in forms:
        if np.array_equal(form.evaluate(columns, len(rows)), y):
            return form
    return None


def ratio_over(rows: Sequence[Mapping[str, Any]], values: Sequence[float], schema: Schema,
               over: Sequence[str] | None = None) -> Expression | None:
    """`N / b`: a positive argument `b` (each of `over`, or of the schema's) times the values fitted
    exactly (`fit_rows`; a sum of arguments and table terms: `monthly_debt + loan_amount *
    {...}[term_months]`), checked on every row (1e-9 relative, as fitted pieces are)."""
    names = over if over is not None else [f.name for f in schema.fields
                                           if f.kind in ("real", "integer") and float(f.low) > 0]
    for b in names:
        numerator = [float(v) * float(r[b]) for r, v in zip(rows, values)]
        found = fit_rows(rows, numerator, schema, None, retries=False)
        if found is None or not _two_names(found):
            continue
        candidate = Expression(Div(found.root, Var(b)), found.rows)
        if reproduces(candidate, rows, values):
            return candidate
    return None


def _two_names(expression: Expression) -> bool:
    """Not a constant or a single argument (those are cuts on the argument already)."""
    return len(expression.names) >= 2


def ratio_bands(rows: Sequence[Mapping[str, Any]], values: Sequence[float], schema: Schema,
                deadline: float = math.inf, timed: bool = True) -> tuple[str, list[tuple[float, Expression]]] | None:
    """A ratio (`ratio_over`) that holds per band of an integer argument (a rate by credit-score
    band inside an instalment), bands found by bisection over the argument's values from the top:
    (argument, [(lowest value seen in the band, its expression)], top band first), or None.
    Gives up after BAND_SECONDS (`timed`) or BAND_FITS fits, whichever comes first."""
    ends = time.perf_counter() + BAND_SECONDS if timed else math.inf
    fits = 0
    for f in schema.fields:
        if f.kind != "integer":
            continue
        z = np.array([float(r[f.name]) for r in rows])
        levels = np.unique(z)[::-1]
        out: list[tuple[float, Expression]] = []
        start = 0
        while start < len(levels) and len(out) < MAX_BANDS:
            def fit(end: int, over: Sequence[str] | None) -> Expression | None:
                nonlocal fits
                fits += 1
                if fits > BAND_FITS or time.perf_counter() > min(deadline, ends):
                    raise TimeoutError
                take = np.flatnonzero((z <= levels[start]) & (z >= levels[end]))
                return ratio_over([rows[i] for i in take], [values[i] for i in take], schema, over)

            try:
                found, first = None, start
                for size in (BAND_ROWS, 2 * BAND_ROWS):  # the band's first rows: enough to pin an expression
                    while first < len(levels) - 1 and np.sum((z <= levels[start]) & (z >= levels[first])) < size:
                        first += 1
                    found = fit(first, None)
                    if found is not None:
                        break
                if found is None:
                    break
                over = [found.root.den.name]  # type: ignore[attr-defined]
                ok, bad = first, len(levels)
                while bad - ok > 1:
                    mid = (ok + bad) // 2
                    candidate = fit(mid, over)
                    if candidate is not None:
                        ok, found = mid, candidate
                    else:
                        bad = mid
            except TimeoutError:
                return None
            out.append((float(levels[ok]), found))
            start = ok + 1
        if start >= len(levels) and 2 <= len(out) <= MAX_BANDS:
            return f.name, out
    return None


def banded(name: str, bands: Sequence[tuple[float, Expression]], row: Mapping[str, Any],
           probe: Callable[[Mapping[str, Any]], float | None]) -> Expression:
    """One expression from per-band ones (`ratio_bands`): each times the 0/1 indicator of its band
    of integer argument `name` (`min(max(z - 739, 0), 1)`: exact, so the sum is the band's value to
    the last bit); a band's lower bound is moved down over the values no call had, while the
    code's own value there (`probe` on `row`) is still the band's."""
    lows = [low for low, _ in bands]
    for k in range(len(bands) - 1):
        while lows[k] - 1 > bands[k + 1][0]:  # values between the two bands' calls: whose are they?
            trial = dict(row)
            trial[name] = int(lows[k] - 1)
            value = probe(trial)
            if value is None or not reproduces(bands[k][1], [trial], [value]):
                break
            lows[k] -= 1
    z = Var(name)

    def at_least(low: float) -> Node:  # 1 where z >= low
        return MinMax("min", (MinMax("max", (Sum((z, Const(1.0 - low))), Const(0.0))), Const(1.0)))

    def below(high: float) -> Node:  # 1 where z < high
        return MinMax("min", (MinMax("max", (Sum((Const(high), Product((Const(-1.0), z)))), Const(0.0))), Const(1.0)))

    terms: list[Node] = []
    for k, (_, expression) in enumerate(bands):
        flags = ([at_least(lows[k])] if k < len(bands) - 1 else []) + ([below(lows[k - 1])] if k else [])
        terms.append(Product((expression.root, *flags)))
    return Expression(Sum(tuple(terms)), sum(e.rows for _, e in bands))


def _ordered_comparisons(code: Any) -> Any:
    """(line, ast.Compare) of each condition of `code` that is one ordered comparison (`a < b`,
    `a >= b`...): the conditions a derived value can stand in."""
    for line, text, _ in _code_info(code).conditions.values():
        try:
            body = ast.parse(text, mode="eval").body
        except (SyntaxError, ValueError):
            continue
        if isinstance(body, ast.Compare) and len(body.ops) == 1 and \
                isinstance(body.ops[0], (ast.Lt, ast.LtE, ast.Gt, ast.GtE)):
            yield line, body


def _own_comparisons(inner: Any, code: Any, numeric: set[str], params: set[str]) -> list[Derived]:
    """A condition comparing two arithmetic expressions of numeric arguments and constants
    (`loan_amount > MAX_LOAN_TO_MONTHLY_INCOME * monthly_income`): `A - B` as a column, cut at 0
    and tested `A <= B` (or `A < B`) as the code compares them, to the last bit."""
    constants = {k: float(v) for k, v in getattr(inner, "__globals__", {}).items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in params}
    out: list[Derived] = []
    for _, body in _ordered_comparisons(code):
        a, b = (_arithmetic(side, numeric, constants) for side in (body.left, body.comparators[0]))
        if a is None or b is None or not a.names() or not b.names() or \
                isinstance(a, Var) and isinstance(b, Var):  # a constant side is a cut; two names a pair
            continue
        strict = isinstance(body.ops[0], (ast.GtE, ast.Lt))  # `a >= b` is false (left) where a - b < 0
        derived = Derived(f"{a.source()} - ({b.source()})", Expression(Sum((a, Product((Const(-1.0), b))))),
                          sides=(Expression(a), Expression(b)), strict=strict)
        if all(d.text != derived.text for d in out):
            out.append(derived)
    return out


def _arithmetic(node: ast.AST, numeric: set[str], constants: Mapping[str, float]) -> Node | None:
    """An expression node for `+ - * /` over numeric arguments, literals and numeric module
    constants, in the code's order of operations; None for anything else."""
    if isinstance(node, ast.Name):
        return Var(node.id) if node.id in numeric else Const(constants[node.id]) if node.id in constants else None
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return Const(float(node.value))
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
        left, right = _arithmetic(node.left, numeric, constants), _arithmetic(node.right, numeric, constants)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.Add):
            return Sum((left, right))
        if isinstance(node.op, ast.Sub):
            return Sum((left, Product((Const(-1.0), right))))
        if isinstance(node.op, ast.Mult):
            return Product((left, right))
        return Div(left, right)
    return None


def _plain_categories(schema: Schema) -> bool:
    """Categories a scorecard's table can write as literals (str, int, bool, None)."""
    return all(isinstance(c, (str, int, bool, type(None))) for f in schema.fields if f.kind == "categorical"
               for c in f.categories)


def _probe(fn: Callable[..., Any], code: Any, line: int, name: str,
           deadline: float) -> Callable[[Mapping[str, Any]], float | None]:
    """The value of local `name` at `line` on a fresh call of `fn` (None where not reached)."""
    def probe(row: Mapping[str, Any]) -> float | None:
        seen = _trace(fn, code, {line: {name}}, [row], deadline)
        return seen.get((line, name), {}).get(0)

    return probe


def _trace(fn: Callable[..., Any], code: Any, wanted: Mapping[int, set[str]], rows: Sequence[Mapping[str, Any]],
           deadline: float) -> dict[tuple[int, str], dict[int, float]]:
    """Per (line, local name), its value on each row that reached the line (first visit)."""
    seen: dict[tuple[int, str], dict[int, float]] = {}
    current = [0]

    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "line" and frame.f_code is code:
            names = wanted.get(frame.f_lineno)
            if names:
                values = frame.f_locals
                for name in names:
                    if name in values:
                        store = seen.setdefault((frame.f_lineno, name), {})
                        number = _number(values[name])
                        if number is not None and current[0] not in store:
                            store[current[0]] = number
        return local

    def global_trace(frame: Any, event: str, arg: Any) -> Any:
        return local if event == "call" and frame.f_code is code else None

    call = kwargs_caller(fn)
    previous = sys.gettrace()
    sys.settrace(global_trace)
    try:
        for i, row in enumerate(rows):
            if time.perf_counter() > deadline:
                break
            current[0] = i
            try:
                call(**row)
            except Exception:  # a raising call still shows the locals it compared
                pass
    finally:
        sys.settrace(previous)
    return seen


# -- comparisons of two pieces ---------------------------------------------------------------------

def compares_computed(fn: Callable[..., Any], rows: Sequence[Mapping[str, Any]] = (), *,
                      deadline: float = math.inf) -> bool:
    """Whether a condition of `fn` compares a value its code computed (a local) with another value
    of the call (`interest > cap`, `fee > invoice_amount`), not with a constant: a local that
    takes few values on `rows` (`limit` of a bracket table in a loop, a tier's `rate`) counts as
    one, as the code then compares an argument with a constant it looked up."""
    inner = unwrap(fn)
    code = getattr(inner, "__code__", None)
    if code is None:
        return False
    try:
        params = set(inspect.signature(inner).parameters)
    except (TypeError, ValueError):
        params = set(code.co_varnames[: code.co_argcount])
    local = set(code.co_varnames) - params
    wanted: dict[int, list[tuple[set[str], set[str]]]] = {}
    for line, body in _ordered_comparisons(code):
        sides = [{n.id for n in ast.walk(side) if isinstance(n, ast.Name)} & (local | params)
                 for side in (body.left, body.comparators[0])]
        if all(sides) and (sides[0] | sides[1]) & local:
            wanted.setdefault(line, []).append((sides[0], sides[1]))
    if not wanted or not rows:
        return bool(wanted)
    seen = _trace(fn, code, {line: set().union(*(a | b for a, b in pairs)) & local for line, pairs in wanted.items()},
                  rows, deadline)

    def varies(line: int, names: set[str]) -> bool:
        return bool(names & params) or any(len(set(seen.get((line, n), {}).values())) > FEW_VALUES for n in names)

    return any(varies(line, a) and varies(line, b) for line, pairs in wanted.items() for a, b in pairs)


def piece_comparisons(pieces: Sequence[Any], labels: np.ndarray, rows: Sequence[Mapping[str, Any]],
                      schema: Schema) -> list[Derived]:
    """Differences `A - B` of two numeric pieces' values (expressions, or constants) whose sign
    separates the calls of the two: every call of one has A <= B, every call of the other A >= B,
    some of each strictly. Where the code picks the smaller (or larger) of two values and each
    piece is a non-decreasing function of its value (an admin fee added, the output rounded),
    `A <= B` routes every call as the code does, its float ties included (on A == B either piece
    gives the call's output); `tied` where sampled calls with A == B took either piece (the code
    compares two values equal in mathematics, apart in the last bit). A table is completed with 0 for the categories its piece never
    met, so the column is defined on every call, in the rules as in the encoding."""
    labels = np.asarray(labels)
    sizes = Counter(int(k) for k in labels if k >= 0)
    values: list[tuple[int, Expression, np.ndarray]] = []
    for k in sorted(sizes, key=lambda k: -sizes[k])[:MAX_COMPARED_PIECES]:
        expression = piece_side(pieces[k], schema)  # None: a raise, or a piece of some categories only
        if expression is None:
            continue
        try:
            v = np.asarray(expression.evaluate({n: [r[n] for r in rows] for n in expression.names}, len(rows)),
                           dtype=float)
        except Exception:
            continue
        if np.all(np.isfinite(v)):
            values.append((k, expression, v))
    found: list[tuple[int, Derived]] = []
    for (i, a, va), (j, b, vb) in itertools.combinations(values, 2):
        d = va - vb
        di, dj = d[labels == i], d[labels == j]
        below = bool(np.all(di <= 0) and np.all(dj >= 0) and np.any(di < 0) and np.any(dj > 0))
        above = bool(np.all(di >= 0) and np.all(dj <= 0) and np.any(di > 0) and np.any(dj < 0))
        if below or above:
            root = Sum((a.root, Product((Const(-1.0), b.root))))
            text = f"{a.to_python()} - ({b.to_python()})"
            # equal values that the code still sent both ways: it compares them to the last bit
            tied = bool(np.any(di == 0) and np.any(dj == 0))
            found.append((len(di) + len(dj), Derived(text, Expression(root), sides=(a, b), tied=tied)))
    found.sort(key=lambda item: -item[0])
    return [d for _, d in found[:MAX_COMPARISONS]]


def piece_side(piece: Any, schema: Schema) -> Expression | None:
    """The expression a piece comparison writes for `piece` (tables completed), or None."""
    if getattr(piece, "cell", None) is not None:
        return None
    if piece.kind == "expression" and piece.expression is not None:
        cats = {f.name: list(f.categories) for f in schema.fields if f.kind in ("categorical", "boolean")}
        return Expression(_complete(piece.expression.root, cats), piece.expression.rows)
    if piece.kind == "constant" and is_number(piece.value):
        return Expression(Const(float(piece.value)))
    return None


def own_comparisons(tree: Any, X: np.ndarray, columns: Sequence[Any], pieces: Sequence[Any], schema: Schema,
                    wrong: Callable[[np.ndarray, np.ndarray, int, int], int]) -> None:
    """A test between two leaves of pieces L and R that compares two other pieces (`B <= C`
    where the calls sampled so far happen to fall alike) is made `L <= R` itself, where that
    column exists and misroutes no more of the node's sampled calls (`wrong(rows, goes_left,
    left piece, right piece)`): the code picks between the leaves' own values, so a corner no
    sample reached is routed as the code routes it."""
    by_text: dict[tuple[str, str], int] = {}
    for j, col in enumerate(columns):
        sides = getattr(col.category, "sides", None) if col.kind == "derived" else None
        if sides is not None:
            by_text[(sides[0].to_python(), sides[1].to_python())] = j
    if not by_text:
        return
    texts: dict[int, str | None] = {}
    for k, piece in enumerate(pieces):
        side = piece_side(piece, schema)
        texts[k] = side.to_python() if side is not None else None

    def visit(node: Any, index: np.ndarray) -> None:
        if node.is_leaf:
            return
        values = X[index, node.column]
        left = values < node.threshold if node.strict else values <= node.threshold
        col = columns[node.column]
        if node.left.is_leaf and node.right.is_leaf and col.kind == "derived" and \
                getattr(col.category, "sides", None) is not None and getattr(col.category, "strict", None) is None:
            lp, rp = node.left.piece, node.right.piece
            a, b = texts.get(lp), texts.get(rp)
            best = (wrong(index, left, lp, rp), node.column, False)
            for j in {by_text.get((a, b)), by_text.get((b, a))} - {None, node.column}:  # type: ignore[arg-type]
                goes = X[index, j] <= 0.0
                for swap in (False, True):
                    score = wrong(index, goes, rp, lp) if swap else wrong(index, goes, lp, rp)
                    if score < best[0] or score == best[0] and best[1] == node.column:
                        best = (score, j, swap)
            if best[1] != node.column:
                node.column, node.threshold, node.strict = best[1], 0.0, False
                if best[2]:
                    node.left, node.right = node.right, node.left
                left = X[index, node.column] <= 0.0
        visit(node.left, index[left])
        visit(node.right, index[~left])

    visit(tree, np.arange(len(X)))


def _complete(node: Node, cats: Mapping[str, list[Any]]) -> Node:
    """`node` with every table given every combination of its categories (0 where it had none)."""
    if isinstance(node, Table):
        if not all(a in cats for a in node.args):
            return node
        have = {tuple(key) for key, _ in node.entries}
        missing = tuple((key, 0.0) for key in itertools.product(*(cats[a] for a in node.args)) if key not in have)
        return Table(node.args, tuple(node.entries) + missing) if missing else node
    if not dataclasses.is_dataclass(node):
        return node
    return map_children(node, lambda child: _complete(child, cats))
