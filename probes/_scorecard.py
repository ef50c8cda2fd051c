"""Scorecards: a compared local that adds up points per argument (`points += 3` for ages 45-59,
`+= 4` for a smoker, `+= REGION_LOADING[region]`) and then decides (`if points <= 2`).

No sum of monomials reproduces such a value, yet it is exact: a constant plus, per numeric
argument, a step function, plus, per category or flag, a table. It is read off the code by
probing the local itself: from a row of the sampled calls, one argument is moved over its range
(the others held), the local traced at its line, and every step bisected to the adjacent values
where it changes (the oracle decides, as for the partition's cuts); categories are tried one by
one. The model is kept only when it gives the traced value on every sampled call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ._schema import Schema
from ._errors import InvalidArgument
from ._expressions import bisect_threshold

#: grid points an argument is scanned on before its steps are bisected
GRID = 257
#: base rows tried
BASES = 3


@dataclass(frozen=True)
class Scorecard:
    """`constant + sum of (value per bin of each numeric argument) + sum of tables`."""

    constant: float
    bins: tuple[tuple[str, tuple[tuple[float, bool], ...], tuple[float, ...]], ...]  # (arg, cuts, values)
    tables: tuple[tuple[str, tuple[tuple[Any, float], ...]], ...]  # (arg, (category, value)...)

    @property
    def root(self) -> "Scorecard":
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted({a for a, _, _ in self.bins} | {a for a, _ in self.tables}))

    def children(self) -> tuple[()]:
        return ()

    def evaluate(self, columns: Mapping[str, Any], n: int | None = None) -> np.ndarray:
        n = len(next(iter(columns.values()))) if n is None else n
        total = np.full(n, float(self.constant))
        for arg, cuts, values in self.bins:
            x = np.asarray(columns[arg], dtype=float)
            index = np.zeros(n, dtype=int)
            for cut, strict in cuts:  # past a cut: x >= cut (strict: below is x < cut), or x > cut
                index += (x >= cut) if strict else (x > cut)
            total += np.asarray(values)[index]
        for arg, entries in self.tables:
            lookup = dict(entries)
            total += np.array([lookup.get(v, 0.0) for v in columns[arg]], dtype=float)
        return total

    def evaluate_row(self, row: Mapping[str, Any]) -> float:
        return float(self.evaluate({k: [row[k]] for k in self.names}, 1)[0])

    def to_python(self) -> str:
        return " + ".join(self.terms())

    def terms(self) -> list[str]:
        """The constant, then one term per argument (the rules add them up one line each)."""
        parts = [_num(self.constant)]
        for arg, cuts, values in self.bins:
            text = ""
            for (cut, strict), value in zip(cuts, values):
                text += f"{_num(value)} if {arg} {'<' if strict else '<='} {_num(cut)} else "
            parts.append(f"({text}{_num(values[-1])})")
        for arg, entries in self.tables:
            if {k for k, _ in entries} <= {False, True}:
                lookup = dict(entries)
                parts.append(f"({_num(lookup.get(True, 0.0))} if {arg} else {_num(lookup.get(False, 0.0))})")
            else:
                parts.append("{" + ", ".join(f"{k!r}: {_num(v)}" for k, v in entries) + "}" + f"[{arg}]")
        return parts


def _num(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def scorecard_of(rows: Sequence[Mapping[str, Any]], values: Sequence[float], schema: Schema,
                 probe: Callable[[Mapping[str, Any]], float | None]) -> Scorecard | None:
    """A scorecard reproducing `values` on `rows`, learned by `probe(row)` (the local's value on a
    fresh call, None where the call does not reach it), or None."""
    numeric = [f for f in schema.fields if f.kind in ("real", "integer")]
    cats = [f for f in schema.fields if f.kind in ("categorical", "boolean")]
    y = np.asarray(values, dtype=float)
    order = np.argsort(np.abs(y - np.median(y)), kind="stable")  # typical rows first
    columns = {f.name: [r[f.name] for r in rows] for f in schema.fields}
    for k in order[:BASES]:
        base = dict(rows[int(k)])
        card = _from_base(base, float(y[int(k)]), numeric, cats, probe)
        if card is not None and np.array_equal(card.evaluate(columns, len(rows)), y):
            return card
    return None


def _from_base(base: dict[str, Any], at_base: float, numeric: Sequence[Any], cats: Sequence[Any],
               probe: Callable[[Mapping[str, Any]], float | None]) -> Scorecard | None:
    bins, tables, offset = [], [], 0.0
    for f in numeric:
        integer = f.kind == "integer"
        grid = np.unique(np.round(np.linspace(f.low, f.high, GRID))) if integer else np.linspace(f.low, f.high, GRID)
        points = [(float(g), probe(_with(base, f.name, g, integer))) for g in grid]
        points = [(x, v) for x, v in points if v is not None]
        if len(points) < 2:
            continue
        cuts: list[tuple[float, bool]] = []
        for (a, va), (b, vb) in zip(points, points[1:]):
            if va != vb:
                found = _steps(base, f.name, a, b, integer, probe)
                if found is None:
                    return None
                cuts += found
        if not cuts:
            continue
        cuts.sort()
        values = [points[0][1]] + [probe(_with(base, f.name, _past(c, s, integer), integer)) for c, s in cuts]
        if any(v is None for v in values):
            return None
        low = min(values)  # type: ignore[type-var]
        here = values[sum(1 for c, s in cuts if (base[f.name] >= c if s else base[f.name] > c))]
        offset += here - low  # type: ignore[operator]
        bins.append((f.name, tuple(cuts), tuple(float(v) - low for v in values)))  # type: ignore[operator]
    for f in cats:
        entries = {c: probe(_with(base, f.name, c, False, raw=True)) for c in f.categories}
        reached = {c: v for c, v in entries.items() if v is not None}
        if len(set(reached.values())) <= 1:
            continue
        low = min(reached.values())
        offset += reached.get(base[f.name], low) - low
        tables.append((f.name, tuple((c, float(reached.get(c, low)) - low) for c in f.categories)))
    if not bins and not tables:
        return None
    return Scorecard(at_base - offset, tuple(bins), tuple(tables))


def _with(row: Mapping[str, Any], name: str, value: Any, integer: bool, raw: bool = False) -> dict[str, Any]:
    out = dict(row)
    out[name] = value if raw else (int(value) if integer else float(value))
    return out


def _past(cut: float, strict: bool, integer: bool) -> float:
    """A value just past a cut (on its upper side)."""
    if integer:
        return cut if strict else cut + 1
    return cut if strict else float(np.nextafter(cut, np.inf))


def _steps(base: Mapping[str, Any], name: str, a: float, b: float, integer: bool,
           probe: Callable[[Mapping[str, Any]], float | None]) -> list[tuple[float, bool]] | None:
    """Every cut between a and b where the probed value changes, bisected (several if the grid
    stepped over more than one)."""
    try:
        found = bisect_threshold(lambda row: probe(row), _with(base, name, a, integer), _with(base, name, b, integer),
                                 name)
    except InvalidArgument:
        return None
    if integer:
        cut, strict = float(found.low), False
    else:
        cut, strict = (float(found.high), True) if not found.below_inclusive else (float(found.value), False)
    out = [(cut, strict)]
    va, vb = probe(_with(base, name, a, integer)), probe(_with(base, name, b, integer))
    if found.below != va and float(found.low) > a:
        more = _steps(base, name, a, float(found.low), integer, probe)
        out = (more or []) + out
    if found.above != vb and float(found.high) < b:
        more = _steps(base, name, float(found.high), b, integer, probe)
        out += more or []
    return out
