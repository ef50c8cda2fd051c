"""The code's own float arithmetic for an exact expression, where its rounding meets ties.

An expression fitted on a path reproduces the rows it was fitted on, but prices in cents and
hours in quarters put the code's value right on a rounding tie (x.xx5) often enough, and there
only the code's own float operations give its cent: `subtotal * (1 - coupon / 100)` and
`subtotal - 0.01 * subtotal * coupon` are the same number except in the last bit, and so are
`1 - (0.02 + 0.05)` (0.9299999999999999) and the snapped table value 0.93. `match_ties` looks for
the variant of an expression that gives every row, tie rows included: products in other orders,
a factor shared by all terms taken out (`s * (1 - c / 100)`), coefficients whose inverse is a
whole number written as a division, then coefficients moved by an ulp or two (greedily, only
while that fixes more rows than it breaks). None when no variant does.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ._expression_data import Expression
from ._expression_nodes import Call, Const, Div, MinMax, Node, Product, Round, Sum, Table, Var, _orderings

#: coefficient variants tried per pass (an ulp or two either way) and greedy passes
ULP_STEPS = (1, -1, 2, -2)
PASSES = 3
#: candidate forms nudged (those wrong on the fewest rows)
NUDGED = 4
#: share of rows an expression may get wrong and still be nudged (ties are rare; more is another form)
TIE_SHARE = 0.05
#: coefficient sites nudged at most (a table of many cells is left as it is)
MAX_SITES = 40


def _split(term: Node) -> tuple[list[Node], list[Node]] | None:
    """A term as (coefficients, other factors), or None for a term of another kind."""
    if isinstance(term, (Const, Table)):
        return [term], []
    if isinstance(term, (Var, Call, Div)):
        return [], [term]
    if isinstance(term, Product):
        return ([f for f in term.factors if isinstance(f, (Const, Table))],
                [f for f in term.factors if not isinstance(f, (Const, Table))])
    return None


def _as_division(term: Node) -> Node:
    """`0.01 * c` as `c / 100`, `-0.01 * c` as `-1 * (c / 100)` (a negation, exact): the code
    divides by a whole number more often than it multiplies by its inverse."""
    parts = _split(term)
    if parts is None:
        return term
    coefficients, others = parts
    if len(coefficients) != 1 or not isinstance(coefficients[0], Const) or not others:
        return term
    k = float(coefficients[0].value)
    if k == 0 or abs(k) >= 1:
        return term
    inverse = 1 / abs(k)
    if abs(inverse - round(inverse)) > 1e-9 * inverse or round(inverse) < 2:
        return term
    body = others[0] if len(others) == 1 else Product(tuple(others))
    division = Div(body, Const(float(round(inverse))))
    return division if k > 0 else Product((Const(-1.0), division))


def factored(node: Node) -> list[Node]:
    """`node` with a factor every term shares taken out, both ways round, with and without
    divisions for inverse coefficients: `s - 0.01 * s * c` -> `s * (1 - c / 100)`."""
    if isinstance(node, MinMax):
        out = []
        for k, arg in enumerate(node.args):
            for variant in factored(arg):
                out.append(MinMax(node.op, node.args[:k] + (variant,) + node.args[k + 1:]))
        return out
    if not isinstance(node, Sum):
        return []
    parts = [_split(t) for t in node.terms]
    if any(p is None for p in parts):
        return []
    out: list[Node] = []
    first = parts[0][1]  # type: ignore[index]
    for shared in first:
        if not all(any(f == shared for f in others) for _, others in parts):  # type: ignore[misc]
            continue
        rest: list[Node] = []
        for coefficients, others in parts:  # type: ignore[misc]
            others = list(others)
            others.remove(shared)
            factors = coefficients + others
            rest.append(Product(tuple(factors)) if len(factors) > 1 else (factors[0] if factors else Const(1.0)))
        for terms in (rest, [_as_division(t) for t in rest]):
            inner = Sum(tuple(terms))
            for form in (Product((shared, inner)), Product((inner, shared))):
                if form not in out:
                    out.append(form)
    return out


def _polynomial(node: Node) -> dict[tuple[str, ...], float] | None:
    """`node` as {sorted variable names: coefficient}, or None (tables, calls, divisions)."""
    if isinstance(node, Const):
        return {(): float(node.value)}
    if isinstance(node, Var):
        return {(node.name,): 1.0}
    if isinstance(node, Sum):
        total: dict[tuple[str, ...], float] = {}
        for term in node.terms:
            part = _polynomial(term)
            if part is None:
                return None
            for key, value in part.items():
                total[key] = total.get(key, 0.0) + value
        return total
    if isinstance(node, Product):
        result: dict[tuple[str, ...], float] = {(): 1.0}
        for factor in node.factors:
            part = _polynomial(factor)
            if part is None:
                return None
            result = {tuple(sorted(k1 + k2)): v1 * v2 for k1, v1 in result.items() for k2, v2 in part.items()}
        return result
    return None


def _term(coefficient: float, factors: Sequence[Node]) -> Node:
    parts = ([Const(coefficient)] if coefficient != 1 else []) + list(factors)
    return parts[0] if len(parts) == 1 else Product(tuple(parts))


def _round_near(low: float, high: float) -> list[float]:
    """Round numbers at the edges of a path's values (`40` for weekday hours 40.25-80): where
    the code counts from (overtime beyond 40, income beyond a bracket bound)."""
    out: list[float] = []
    for edge, toward in ((low, math.floor), (high, math.ceil)):
        for digits in range(0, 6):
            scale = 10.0 ** digits
            value = toward(edge / scale) * scale
            if value not in out and abs(value - edge) <= 0.02 * max(abs(high - low), 1e-12):
                out.append(value)
    return out


def substituted(node: Node, differences: Sequence[tuple[str, str | None]], columns: Mapping[str, Any]) -> list[Node]:
    """`node` rewritten over the differences the code computes (`weekday = hours - sunday`):
    `h*r + s*r` as `(h - s)*r + 2*s*r`; with a term counted from a round edge of the
    difference's values, `-20*r + 1.5*h*r + 0.5*s*r` as `40*r + 1.5*(h - s - 40)*r + 2*s*r`
    (a pair (a, None) shifts `a` alone: `(income - 85000) * 0.41 + 16710`)."""
    poly = _polynomial(node)
    if poly is None:
        return []
    out: list[Node] = []
    for a, b in differences:
        if a not in columns or (b is not None and b not in columns):
            continue
        with_a = {k: v for k, v in poly.items() if k.count(a) == 1 and (b is None or b not in k)}
        if not with_a:
            continue
        rest_terms = dict(poly)
        pieces: list[tuple[tuple[str, ...], float, float]] = []  # (rest, coefficient of a, of b)
        for key, ca in with_a.items():
            rest = list(key)
            rest.remove(a)
            rest_key = tuple(rest)
            cb = 0.0
            if b is not None:
                cb = rest_terms.pop(tuple(sorted(rest + [b])), 0.0)
            rest_terms.pop(key)
            pieces.append((rest_key, ca, cb))
        values = np.asarray(columns[a], dtype=float) - (np.asarray(columns[b], dtype=float) if b is not None else 0.0)
        shifts = [0.0] + _round_near(float(np.min(values)), float(np.max(values)))
        for t in shifts:
            terms: list[Node] = []
            others = dict(rest_terms)
            for rest_key, ca, cb in pieces:
                difference: list[Node] = [Var(a)] + ([Product((Const(-1.0), Var(b)))] if b is not None else [])
                if t:
                    difference.append(Const(-t))
                    others[rest_key] = others.get(rest_key, 0.0) + ca * t
                diff_node = Sum(tuple(difference)) if len(difference) > 1 else difference[0]
                terms.append(_term(ca, [diff_node] + [Var(v) for v in rest_key]))
                if b is not None and ca + cb != 0:
                    terms.append(_term(ca + cb, [Var(b)] + [Var(v) for v in rest_key]))
            lead = [_term(v, [Var(x) for x in k]) if k else Const(v) for k, v in others.items() if v != 0]
            form = Sum(tuple(lead + terms)) if len(lead + terms) > 1 else (lead + terms)[0]
            if form not in out:
                out.append(form)
    return out


def _coefficients(node: Node) -> list[tuple[int, int]]:
    """Coefficient sites in depth-first order: (Const or Table number, entry index or -1)."""
    sites: list[tuple[int, int]] = []
    counter = [0]

    def walk(n: Node) -> None:
        if isinstance(n, Const):
            sites.append((counter[0], -1))
            counter[0] += 1
        elif isinstance(n, Table):
            sites.extend((counter[0], k) for k in range(len(n.entries)))
            counter[0] += 1
        for child in n.children():
            walk(child)

    walk(node)
    return sites


def _rebuild(node: Node, change: Callable[[int, Node], Node], counter: list[int]) -> Node:
    """`node` with each Const/Table replaced by `change(its number, it)`."""
    if isinstance(node, (Const, Table)):
        k = counter[0]
        counter[0] += 1
        return change(k, node)
    if isinstance(node, Sum):
        return Sum(tuple(_rebuild(t, change, counter) for t in node.terms))
    if isinstance(node, Product):
        return Product(tuple(_rebuild(f, change, counter) for f in node.factors))
    if isinstance(node, Div):
        return Div(_rebuild(node.num, change, counter), _rebuild(node.den, change, counter))
    if isinstance(node, Call):
        return Call(node.fn, _rebuild(node.arg, change, counter))
    if isinstance(node, MinMax):
        return MinMax(node.op, tuple(_rebuild(a, change, counter) for a in node.args))
    if isinstance(node, Round):
        return Round(_rebuild(node.arg, change, counter), node.quantum, node.mode, node.eps)
    return node


def _ulps(value: float, steps: int) -> float:
    direction = math.inf if steps > 0 else -math.inf
    for _ in range(abs(steps)):
        value = math.nextafter(value, direction)
    return value


def _nudged(node: Node, site: tuple[int, int], steps: int) -> Node:
    number, entry = site

    def change(k: int, leaf: Node) -> Node:
        if k != number:
            return leaf
        if isinstance(leaf, Const):
            return Const(_ulps(float(leaf.value), steps)) if leaf.value not in (0.0, 1.0, -1.0) else leaf
        assert isinstance(leaf, Table)
        entries = list(leaf.entries)
        key, value = entries[entry]
        entries[entry] = (key, _ulps(float(value), steps))
        return Table(leaf.args, tuple(entries))

    return _rebuild(node, change, [0])


def match_ties(expression: Expression, rows: Sequence[Mapping[str, Any]], outputs: Sequence[Any], *,
               differences: Sequence[tuple[str, str | None]] = ()) -> Expression | None:
    """The variant of `expression` (see the module docstring) that gives every output, or None;
    `differences`: pairs of arguments the code subtracts (`substituted`)."""
    names = set(expression.names) | {n for pair in differences for n in pair if n is not None}
    try:
        columns = {name: [r[name] for r in rows] for name in sorted(names)}
        y = np.asarray([float(v) for v in outputs], dtype=float)
    except (KeyError, TypeError, ValueError):
        return None
    found = match_columns(expression.root, columns, y, differences=differences)
    return None if found is None else Expression(found, expression.rows)


def match_columns(root: Node, columns: Mapping[str, Any], y: np.ndarray, *, nudge: bool = True,
                  differences: Sequence[tuple[str, str | None]] = ()) -> Node | None:
    """`match_ties` on columns: the variant of `root` giving `y` on every row, or None (without
    `nudge`: other orders and factorings only, cheap enough to try inside the search)."""
    rounding = root if isinstance(root, Round) else None
    inner = root.arg if rounding is not None else root
    n = len(y)

    def wrap(node: Node) -> Node:
        return Round(node, rounding.quantum, rounding.mode, rounding.eps) if rounding is not None else node

    def wrong(node: Node) -> int:
        try:
            values = wrap(node).evaluate(columns, n)
        except Exception:
            return n + 1
        return int(np.count_nonzero(~(np.abs(values - y) <= 1e-9 * np.maximum(np.abs(y), 1e-9))))

    candidates: list[Node] = []
    seen: set[str] = set()
    bases = [inner] + factored(inner)
    for form in substituted(inner, differences, columns) if differences else []:
        bases.append(form)
        if isinstance(form, Sum) and len(form.terms) <= 3:  # the code adds its terms in some order
            bases += [Sum(tuple(p)) for p in itertools.permutations(form.terms)][1:]
    for base in bases:
        for form in _orderings(base):
            text = form.source()
            if text not in seen:
                seen.add(text)
                candidates.append(form)
    scored = []
    for form in candidates:
        bad = wrong(form)
        if bad == 0:
            return wrap(form)
        scored.append((bad, len(scored), form))
    scored.sort(key=lambda item: item[:2])
    for bad, _, form in scored[:NUDGED if nudge else 0]:
        if bad > max(3, TIE_SHARE * n):
            break  # wrong on more rows than ties explain: not this expression's last bits
        sites = _coefficients(form)
        if len(sites) > MAX_SITES:
            continue
        for _ in range(PASSES):
            improved = False
            for site in sites:
                for steps in ULP_STEPS:
                    trial = _nudged(form, site, steps)
                    b = wrong(trial)
                    if b < bad:
                        form, bad, improved = trial, b, True
                        break
                if bad == 0:
                    return wrap(form)
            if not improved:
                break
    return None
