"""Fitting one structure of an exact expression: the rows as the fitter sees them (`_Data`), what
they must reproduce (`_Target`), least squares over a grammar of sums of table-weighted
monomials, coefficients snapped to short decimals and re-checked on every row (`_fit_sums`)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ._clock import charge_design
from ._expression_data import agrees
from ._expression_nodes import DECIMAL_EPS, MATCH_TRIES, Const, Div, Node, Product, Round, Sum, Table, _orderings
from ._ties import match_columns


# -- fitting ----------------------------------------------------------------------------------------
@dataclass
class _Budget:
    limit: int
    used: int = 0
    differences: tuple[tuple[str, str | None], ...] = ()  # argument pairs the code subtracts (`_ties`)

    def take(self) -> bool:
        self.used += 1
        return self.used <= self.limit


@dataclass
class _Data:
    """Rows of one path as the fitter sees them."""

    n: int
    columns: dict[str, Any]  # original columns (for step features)
    numeric: dict[str, np.ndarray]  # varying numeric arguments (and derived step features)
    nodes: dict[str, Node]  # how each numeric name is written (Var, or a step feature)
    cats: dict[str, list[Any]]  # varying categorical/boolean arguments, plain Python values
    _cells: dict[tuple[str, ...], tuple[np.ndarray, list[tuple[Any, ...]]]] = field(default_factory=dict)
    _screen: np.ndarray | None = None
    _onehot: dict[tuple[str, ...], np.ndarray] = field(default_factory=dict)

    @property
    def screen(self) -> np.ndarray:
        """A fixed shuffle of the rows; its head is the sample structures are screened on."""
        if self._screen is None:
            self._screen = np.random.default_rng(0).permutation(self.n)
        return self._screen

    def subset(self, mask: np.ndarray) -> "_Data":
        index = np.flatnonzero(mask)
        columns = {k: (np.asarray(v, dtype=object)[index] if not isinstance(v, np.ndarray) else v[index])
                   for k, v in self.columns.items()}
        numeric = {k: v[index] for k, v in self.numeric.items() if np.ptp(v[index]) > 0}
        cats = {k: [v[i] for i in index] for k, v in self.cats.items()}
        cats = {k: v for k, v in cats.items() if len(set(v)) > 1}
        return _Data(len(index), columns, numeric, {k: self.nodes[k] for k in numeric}, cats)

    def with_feature(self, name: str, node: Node, values: np.ndarray) -> "_Data":
        """The same rows with one more numeric column (cells and screening sample shared)."""
        return _Data(self.n, self.columns, {**self.numeric, name: values}, {**self.nodes, name: node}, self.cats,
                     self._cells, self.screen, self._onehot)

    def onehot(self, group: tuple[str, ...]) -> np.ndarray:
        """Per row a 1 in the column of its combination of `group`'s values."""
        if group not in self._onehot:
            codes, keys = self.cells(group)
            matrix = np.zeros((self.n, len(keys)))
            matrix[np.arange(self.n), codes] = 1.0
            self._onehot[group] = matrix
        return self._onehot[group]

    def cells(self, group: tuple[str, ...]) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
        """Per row the index of its combination of `group`'s values, and the combinations."""
        if group not in self._cells:
            index: dict[tuple[Any, ...], int] = {}
            codes = np.empty(self.n, dtype=np.int64)
            lists = [self.cats[g] for g in group]
            for i, key in enumerate(zip(*lists) if lists else itertools.repeat((), self.n)):
                codes[i] = index.setdefault(key, len(index))
            self._cells[group] = (codes, list(index))
        return self._cells[group]


@dataclass(frozen=True)
class _Target:
    """What rows the fit must reproduce, and how: exactly, or after rounding to `quantum`."""

    y: np.ndarray
    rtol: float
    quantum: float | None = None
    shift: float = 0.0  # least squares target is y + shift (floor/ceil rounding centres it)
    modes: tuple[tuple[str, float], ...] = ()
    tries: list[int] = field(default_factory=lambda: [0], compare=False)  # factorings tried (`MATCH_TRIES`)
    differences: tuple[tuple[str, str | None], ...] = ()

    @property
    def sigma(self) -> float:
        return 0.0 if self.quantum is None else self.quantum / math.sqrt(12.0)

    def accept(self, inner: Node, data: _Data) -> Node | None:
        """`inner` (or its rounding) if it reproduces every row, else None."""
        values = inner.evaluate(data.columns, data.n)
        if self.quantum is None:
            return inner if bool(np.all(agrees(values, self.y, rtol=self.rtol))) else None
        # where the rounding decides a tie, the order of the float products matters: try the
        # orders code is written in (coefficient first or last, arguments rotated)
        near: list[Node] = []
        for ordered in _orderings(inner):
            for mode, eps in self.modes:
                node = Round(ordered, self.quantum, mode, eps)
                rounded = node.evaluate(data.columns, data.n)
                wrong = ~(np.abs(rounded - self.y) <= 1e-9 * np.maximum(np.abs(self.y), self.quantum))
                if not wrong.any():
                    return node
                if ordered is inner and np.count_nonzero(wrong) <= max(2, 0.05 * data.n):
                    near.append(node)
        # wrong on a tie or two only: the code computes it another way (a shared factor)
        for node in near[:1]:
            if self.tries[0] >= MATCH_TRIES:
                break
            self.tries[0] += 1
            found = match_columns(node, data.columns, self.y, nudge=False, differences=self.differences)
            if found is not None:
                return found
        return None



def _monomials(names: Sequence[str], degree: int) -> list[tuple[str, ...]]:
    return [m for m in itertools.combinations_with_replacement(names, degree)]


def _groups(data: _Data, terms: int) -> list[tuple[str, ...]]:
    """Coefficient dependencies to try for `terms` monomials: none, then the finest one the rows
    can identify (every categorical argument at once; the fit shrinks each coefficient's table
    to the arguments it varies with), else the maximal identifiable smaller ones."""
    cats = list(data.cats)
    if not cats:
        return [()]

    def feasible(g: tuple[str, ...]) -> bool:
        return bool(np.bincount(data.cells(g)[0]).min() >= terms + 1)

    full = tuple(cats)
    if feasible(full):
        return [(), full]
    candidates = sorted(itertools.combinations(cats, 2), key=lambda g: -len(data.cells(g)[1])) + [(c,) for c in cats]
    chosen: list[tuple[str, ...]] = []
    for g in candidates:
        if feasible(g) and not any(set(g) <= set(c) for c in chosen):
            chosen.append(g)
    return [(), *chosen]


def _structures(data: _Data, max_degree: int, min_degree: int = 0,
                require: str | None = None) -> Iterable[tuple[list[tuple[str, ...]], tuple[str, ...]]]:
    """(monomials, coefficient dependency) to try, from simple to complex: of total degree
    `min_degree`..`max_degree`, and (with `require`) holding that argument somewhere."""
    names = list(data.numeric)
    tried: set[frozenset[tuple[str, ...]]] = set()

    def sets(degree: int) -> Iterable[list[tuple[str, ...]]]:
        if degree == 0:
            yield [()]
            return
        if degree == 1:
            yield [()] + [(x,) for x in names]
            return
        new = _monomials(names, degree)
        yield from ([m] for m in new)
        yield from ([(), m] for m in new)
        yield from ([()] + [(x,) for x in names] + [m] for m in new)
        yield [m for d in range(degree + 1) for m in _monomials(names, d)]

    for degree in range(0, max_degree + 1 if names else 1):
        for monomials in sets(degree):
            key = frozenset(monomials)
            if key in tried:
                continue
            tried.add(key)
            if degree < min_degree or (require is not None and not any(require in m for m in monomials)):
                continue
            for g in _groups(data, len(monomials)):
                yield monomials, g


def _monomial_values(data: _Data, m: tuple[str, ...]) -> np.ndarray:
    values = np.ones(data.n)
    for name in m:
        values = values * data.numeric[name]
    return values


@dataclass
class _Solved:
    terms: list[tuple[tuple[str, ...], tuple[str, ...]]]  # (monomial, dependency)
    keys: list[list[tuple[Any, ...]]]  # per term, the cells (combinations of its dependency)
    coef: list[np.ndarray]  # per term, a coefficient per cell (NaN: not identified)
    se: list[np.ndarray]
    scale: list[np.ndarray]  # per term and cell, the largest |monomial| (for zero tests)


@dataclass
class _Design:
    X: np.ndarray  # columns scaled to a largest |value| of 1
    scale: np.ndarray
    where: list[tuple[int, int]]  # per column: (term, cell)
    keys: list[list[tuple[Any, ...]]]  # per term, its cells


def _design(data: _Data, terms: list[tuple[tuple[str, ...], tuple[str, ...]]]) -> _Design | None:
    """The least squares design for `terms`; None when the rows cannot identify and check it."""
    # every cell needs more rows than the terms it carries, or nothing checks its entries
    for g in {g for _, g in terms if g}:
        if np.bincount(data.cells(g)[0]).min() < len(terms) + 1:
            return None
    blocks, where = [], []
    keys_per_term: list[list[tuple[Any, ...]]] = []
    for t, (m, g) in enumerate(terms):
        values = _monomial_values(data, m)
        keys = data.cells(g)[1]
        keys_per_term.append(keys)
        block = values[:, None] if len(keys) == 1 else data.onehot(g) * values[:, None]
        scale = np.max(np.abs(block), axis=0)
        kept = np.flatnonzero(scale > 0)  # a cell where the monomial is 0 on every row says nothing
        blocks.append(block[:, kept])
        where += [(t, int(j)) for j in kept]
    p = len(where)
    if p == 0 or data.n < p + (0 if p == 1 and not terms[0][1] and not terms[0][0] else 1):
        return None
    X = np.concatenate(blocks, axis=1)
    charge_design(*X.shape)
    scale = np.max(np.abs(X), axis=0)
    return _Design(X / scale, scale, where, keys_per_term)


def _screen(data: _Data, design: _Design, y: np.ndarray, quantum: float | None, budget: _Budget) -> str | None:
    """One least squares solve on a sample of the rows: 'exact' when the structure may be exact,
    'rounded' when it may be after rounding, None when it cannot be (most structures)."""
    if not budget.take():
        return None
    p = design.X.shape[1]
    sub = data.screen[: 2 * p + 20] if data.n > 3 * p + 40 else slice(None)
    beta, _, rank, _ = np.linalg.lstsq(design.X[sub], y[sub], rcond=None)
    residual = float(np.max(np.abs(design.X[sub] @ beta - y[sub])))
    if residual <= 1e-7 * max(float(np.max(np.abs(y))), 1e-300):
        return "exact"
    if quantum is not None and residual <= quantum * 1.01:
        return "rounded"
    return None


def _solve(design: _Design, terms: list[tuple[tuple[str, ...], tuple[str, ...]]], target: _Target) -> _Solved | None:
    """Least squares for `terms` on every row; None when not identifiable or the residual rules
    out exactness."""
    Xs, scale, where = design.X, design.scale, design.where
    p = Xs.shape[1]
    y = target.y + target.shift
    beta, _, rank, _ = np.linalg.lstsq(Xs, y, rcond=None)
    if rank < p:
        return None
    if not _residual_ok(np.abs(Xs @ beta - y), y, target):
        return None
    coef = beta / scale
    if target.sigma > 0:
        try:
            cov = np.linalg.inv(Xs.T @ Xs)
        except np.linalg.LinAlgError:
            return None
        se = target.sigma * np.sqrt(np.clip(np.diag(cov), 0, None)) / scale
    else:
        se = np.zeros(p)
    keys_per_term = design.keys
    out_coef = [np.full(len(k), np.nan) for k in keys_per_term]
    out_se = [np.zeros(len(k)) for k in keys_per_term]
    out_scale = [np.zeros(len(k)) for k in keys_per_term]
    for i, (t, j) in enumerate(where):
        out_coef[t][j], out_se[t][j], out_scale[t][j] = coef[i], se[i], scale[i]
    return _Solved(terms, keys_per_term, out_coef, out_se, out_scale)


def _residual_ok(residual: np.ndarray, y: np.ndarray, target: _Target) -> bool:
    """Least squares residuals small enough that snapping may make the fit exact."""
    if target.quantum is None:
        return float(np.max(residual)) <= 1e-7 * max(float(np.max(np.abs(y))), 1e-300)
    return float(np.max(residual)) <= target.quantum * 1.01


def _close(a: float, b: float, sa: float, sb: float, rel: float) -> bool:
    return abs(a - b) <= 4.0 * math.hypot(sa, sb) + rel * max(abs(a), abs(b)) + 1e-300


def _simplify(data: _Data, solved: _Solved, target: _Target) -> list[tuple[tuple[str, ...], tuple[str, ...]]] | None:
    """Per monomial, drop it when its coefficients are zero, and shrink its dependency to the
    fewest arguments its coefficients vary with (at most two); None when that is impossible."""
    yscale = max(float(np.max(np.abs(target.y))), 1e-300)
    rel = 1e-6 if target.quantum is None else 1e-9
    terms = []
    for (m, g), keys, coef, se, scale in zip(solved.terms, solved.keys, solved.coef, solved.se, solved.scale):
        known = ~np.isnan(coef)
        zero_tol = 4.0 * se + (1e-8 * yscale / np.maximum(scale, 1e-300) if target.quantum is None else 0.0)
        if np.all(np.abs(coef[known]) <= zero_tol[known]):
            continue
        chosen = None
        for size in range(0, min(len(g), 2) + 1):
            for sub in itertools.combinations(range(len(g)), size):
                groups: dict[tuple[Any, ...], list[int]] = {}
                for j, key in enumerate(keys):
                    if known[j]:
                        groups.setdefault(tuple(key[i] for i in sub), []).append(j)
                if all(_close(coef[min(members, key=lambda j: se[j])], coef[b],
                              se[min(members, key=lambda j: se[j])], se[b], rel)
                       for members in groups.values() for b in members):
                    chosen = tuple(g[i] for i in sub)
                    break
            if chosen is not None:
                break
        if chosen is None:
            return None
        terms.append((m, chosen))
    return terms


def _snap(value: float, tol: float) -> tuple[float, Fraction | None]:
    """The shortest decimal (or small rational, returned as a Fraction) within `tol` of value."""
    if abs(value) <= tol:
        return 0.0, None
    best, digits = value, 17
    for p in range(1, 16):
        candidate = float(f"{value:.{p}g}")
        if abs(candidate - value) <= tol:
            best, digits = candidate, p
            break
    for limit in (12, 100, 1000):
        fraction = Fraction(value).limit_denominator(limit)
        den = fraction.denominator
        if den == 1 or abs(float(fraction) - value) > tol:
            continue
        while den % 2 == 0:
            den //= 2
        while den % 5 == 0:
            den //= 5
        length = len(str(abs(fraction.numerator))) + len(str(fraction.denominator))
        if den != 1 and length < digits:  # not a terminating decimal, and shorter written p/q
            return float(fraction), fraction
        break
    return best, None


def _build(data: _Data, terms: list[tuple[tuple[str, ...], tuple[str, ...]]], solved: _Solved,
           snap: Callable[[float, float, float], tuple[float, Fraction | None]] | None) -> Node:
    """The expression tree for solved terms, coefficients snapped by `snap(value, se, scale)`."""
    nodes: list[tuple[int, Node]] = []
    for (m, g), keys, coef, se, scale in zip(terms, solved.keys, solved.coef, solved.se, solved.scale):
        factors = [data.nodes[name] for name in m]
        if not g:
            value, fraction = (coef[0], None) if snap is None else snap(coef[0], se[0], scale[0])
            if value == 0:
                continue
            if fraction is not None:
                num = [Const(float(fraction.numerator))] if fraction.numerator != 1 or not factors else []
                top = num + factors
                node: Node = Div(top[0] if len(top) == 1 else Product(tuple(top)), Const(float(fraction.denominator)))
            elif not factors:
                node = Const(value)
            elif value == 1:
                node = factors[0] if len(factors) == 1 else Product(tuple(factors))
            else:
                node = Product((Const(value), *factors))
        else:
            entries = []
            for key, c, s, sc in zip(keys, coef, se, scale):
                if math.isnan(c):
                    continue
                value = c if snap is None else snap(c, s, sc)[0]
                entries.append((tuple(key), float(value)))
            entries.sort(key=lambda e: tuple(repr(k) for k in e[0]))
            table = Table(g, tuple(entries))
            node = Product((*factors, table)) if factors else table
        nodes.append((len(m), node))
    nodes.sort(key=lambda item: item[0])
    if len(nodes) > 1 and isinstance(nodes[0][1], Const) and nodes[0][1].value < 0:
        nodes.append(nodes.pop(0))  # `0.1 * income - 1000` reads better than `-1000 + 0.1 * income`
    if not nodes:
        return Const(0.0)
    return nodes[0][1] if len(nodes) == 1 else Sum(tuple(node for _, node in nodes))


def _try_structure(data: _Data, monomials: list[tuple[str, ...]], group: tuple[str, ...],
                   targets: list[_Target], budget: _Budget) -> Node | None:
    """The expression of one structure (monomials, each with a coefficient depending on `group`)
    that reproduces every row under one of `targets`, or None."""
    terms = [(m, group) for m in monomials]
    design = _design(data, terms)
    if design is None:
        return None
    screened = _screen(data, design, targets[0].y, targets[-1].quantum, budget)
    if screened is None:
        return None
    for target in targets:
        if target.quantum is None and screened != "exact":
            continue
        node = _fit_target(data, terms, design, target)
        if node is not None:
            return node
    return None


def _identified(data: _Data, terms: list[tuple[tuple[str, ...], tuple[str, ...]]]) -> bool:
    """Every cell has more distinct rows than the monomials fitted in it: else an exact fit there
    is an interpolation that proves nothing (two distinct x values make any y affine in x)."""
    if len(terms) < 2:
        return True
    group = terms[0][1]
    values = np.column_stack([_monomial_values(data, m) for m, _ in terms])
    codes, keys = data.cells(group)
    for j in range(len(keys)):
        if len(np.unique(values[codes == j], axis=0)) < len(terms) + 1:
            return False
    return True


def _fit_target(data: _Data, terms: list[tuple[tuple[str, ...], tuple[str, ...]]], design: _Design,
                target: _Target) -> Node | None:
    if not _identified(data, terms):
        return None
    solved = _solve(design, terms, target)
    if solved is None:
        return None
    simpler = _simplify(data, solved, target)
    if simpler is None:
        return None
    if not simpler:
        return target.accept(Const(0.0), data)
    if simpler != solved.terms:
        design = _design(data, simpler)
        solved = None if design is None else _solve(design, simpler, target)
        if solved is None:
            return None
    terms = simpler
    yscale = max(float(np.max(np.abs(target.y))), 1e-300)
    if target.quantum is None:
        tolerances = [lambda v, s, sc, r=r: _snap(v, max(r * abs(v), 1e-12 * yscale / max(sc, 1e-300)))
                      for r in (1e-9, 1e-6)]
    else:
        tolerances = [lambda v, s, sc, k=k: _snap(v, max(k * s, 1e-12 * abs(v))) for k in (3.0, 1.0, 10.0)]
    seen = set()
    for snap in [*tolerances, None]:
        node = _build(data, terms, solved, snap)
        text = node.source()
        if text in seen:
            continue
        seen.add(text)
        accepted = target.accept(node, data)
        if accepted is not None:
            return accepted
    return None


def _targets(y: np.ndarray, quantum: float | None, rtol: float,
             differences: tuple[tuple[str, str | None], ...] = ()) -> list[_Target]:
    targets = [_Target(y, rtol)]
    if quantum:
        e, d = DECIMAL_EPS, differences
        targets += [
            _Target(y, rtol, quantum, 0.0, (("half_even", 0.0), ("half_up", e), ("half_up", 0.0)), differences=d),
            _Target(y, rtol, quantum, quantum / 2, (("floor", e), ("floor", 0.0)), differences=d),
            _Target(y, rtol, quantum, -quantum / 2, (("ceil", e), ("ceil", 0.0)), differences=d),
        ]
    return targets


def _fit_sums(data: _Data, y: np.ndarray, quantum: float | None, rtol: float, max_degree: int,
              budget: _Budget, *, min_degree: int = 0, require: str | None = None) -> Node | None:
    """The first sum-of-terms structure (or its rounding) that reproduces every row."""
    targets = _targets(y, quantum, rtol, budget.differences)
    for monomials, group in _structures(data, max_degree, min_degree, require):
        if budget.used >= budget.limit:
            return None
        node = _try_structure(data, monomials, group, targets, budget)
        if node is not None:
            return node
    return None
