"""A rounded amount rounded again: `round(round(price * qty * 0.85, 2) * vat[country, category], 2)`.

Invoice code rounds the net to the cent, then computes the tax on the rounded net and adds it
(`net + (net * rate).quantize(CENT)`, the same as rounding `net * (1 + rate)`), so the output is
a rounding of a rounding: no single sum of terms reproduces it, since the inner rounding's error
is multiplied by the rate. `fit_nested` searches that form directly: an inner monomial of the
numeric arguments times a short constant `k` (a discount: 1, 0.95, 0.9 ...), rounded the way the
output is, then times a coefficient per combination of categories read off the rows (the
median ratio of output to rounded net, snapped to a short decimal), rounded again; accepted
only where it reproduces every row.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Mapping, Sequence

import numpy as np

from ._expressions import DECIMAL_EPS, Const, Expression, Node, Product, Round, Table, Var, _is_key

#: inner constants tried: 1, then discounts and markups of whole percents
INNER_CONSTANTS = tuple([1.0] + [round(1 - p / 100, 2) for p in range(1, 100)] + [round(1 + p / 100, 2)
                                                                                  for p in range(1, 101)])
#: decimals a per-cell coefficient may have
CELL_DECIMALS = 6
#: rounding modes tried (the code's own first where known)
MODES = (("half_up", DECIMAL_EPS), ("half_even", 0.0))


def _shortest(lo: float, hi: float) -> float | None:
    """The shortest decimal in [lo, hi] (at most CELL_DECIMALS places), or None."""
    if not lo <= hi:
        return None
    for d in range(0, CELL_DECIMALS + 1):
        scale = 10 ** d
        candidate = math.ceil(lo * scale - 1e-9) / scale
        if candidate <= hi + 1e-12:
            return candidate
    return None


def _interval(inner: np.ndarray, y: np.ndarray, quantum: float) -> tuple[float, float]:
    """Coefficients t with inner * t within half a quantum of every y (inner > 0 rows)."""
    half = quantum / 2 * (1 + 1e-6)
    return float(np.max((y - half) / inner)), float(np.min((y + half) / inner))


def fit_nested(columns: Mapping[str, Any], outputs: Sequence[Any], kinds: Mapping[str, str], quantum: float,
               *, rounding: str | None = None, max_degree: int = 2) -> Expression | None:
    """`round(round(k * monomial) * table[categories])` reproducing every row, or None."""
    try:
        y = np.asarray([float(v) for v in outputs], dtype=float)
    except (TypeError, ValueError):
        return None
    n = len(y)
    if n < 8 or not np.all(np.isfinite(y)) or not quantum:
        return None
    numeric = {name: np.asarray(columns[name], dtype=float) for name, kind in kinds.items()
               if kind in ("real", "integer") and name in columns}
    cats = [name for name, kind in kinds.items() if kind in ("categorical", "boolean") and name in columns
            and len({repr(v) for v in columns[name]}) > 1 and all(_is_key(v) for v in columns[name])][:2]
    keys = list(zip(*[list(columns[c]) for c in cats])) if cats else [()] * n
    cells: dict[tuple, np.ndarray] = {}
    for key in set(keys):
        cells[key] = np.array([k == key for k in keys])
    modes = sorted(MODES, key=lambda m: m[0] != rounding)
    names = sorted(numeric)
    masks = list(cells.items())
    for d in range(1, max_degree + 1):
        for monomial in itertools.combinations_with_replacement(names, d):
            base = np.prod([numeric[name] for name in monomial], axis=0)
            big = base > 100 * quantum
            # y over the monomial is k * t per cell, up to the roundings: else not this monomial
            if not big.any() or any(m.any() and np.ptp(y[m & big] / base[m & big]) > 0.05 * np.median(
                    np.abs(y[m & big] / base[m & big])) for _, m in masks if (m & big).any()):
                continue
            found = _fit_monomial(monomial, columns, y, n, quantum, cats, masks, modes)
            if found is not None:
                return found
    return None


def _fit_monomial(monomial: tuple[str, ...], columns: Mapping[str, Any], y: np.ndarray, n: int, quantum: float,
                  cats: list[str], masks: list[tuple[tuple, np.ndarray]],
                  modes: Sequence[tuple[str, float]]) -> Expression | None:
    factors: tuple[Node, ...] = tuple(Var(name) for name in monomial)
    for k in INNER_CONSTANTS:
        for mode, eps in modes:
            body = Product(factors + (Const(k),)) if k != 1 else (factors[0] if len(factors) == 1 else Product(factors))
            inner_node = Round(body, quantum, mode, eps)
            inner = inner_node.evaluate(columns, n)
            if not np.all(np.isfinite(inner)):
                continue
            entries = []
            for key, mask in masks:
                usable = mask & (inner > 0)
                if not usable.any():
                    break
                coefficient = _shortest(*_interval(inner[usable], y[usable], quantum))
                if coefficient is None:
                    break
                entries.append((key, coefficient))
            else:
                if cats:
                    outer: Node = Table(tuple(cats), tuple(sorted(entries, key=lambda e: repr(e[0]))))
                elif entries[0][1] == 1:
                    continue  # a single rounding: the plain search's form
                else:
                    outer = Const(entries[0][1])
                node = Round(Product((inner_node, outer)), quantum, mode, eps)
                values = node.evaluate(columns, n)
                if np.all(np.abs(values - y) <= 1e-9 * np.maximum(np.abs(y), quantum)):
                    return Expression(node, n)
    return None
