"""Where to spend oracle calls: the domain, the neighbourhood of real traffic, and hard paths.

Turaco (Renda, Ding, Carbin, OOPSLA 2023): with one surrogate per branch path, the error is
lowest when path i gets n_i proportional to (p_i * sqrt(C_i))^(2/3) samples, p_i its frequency
and C_i its learning complexity (here: the measured validation error of that path).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from probes import Schema


def turaco_allocation(frequency: Mapping[str, float], complexity: Mapping[str, float], total: int,
                      *, floor: int = 0) -> dict[str, int]:
    """Split `total` samples over paths: n_i proportional to (p_i * sqrt(C_i))^(2/3)."""
    scores = {k: (max(frequency.get(k, 0.0), 0.0) * np.sqrt(max(complexity.get(k, 0.0), 0.0))) ** (2.0 / 3.0)
              for k in frequency}
    mass = sum(scores.values())
    if mass <= 0 or total <= 0:
        return {k: 0 for k in frequency}
    raw = {k: total * s / mass for k, s in scores.items()}
    out = {k: int(np.floor(v)) for k, v in raw.items()}
    # hand out the remainder by largest fractional part
    remainder = total - sum(out.values())
    for k in sorted(raw, key=lambda k: raw[k] - out[k], reverse=True)[:remainder]:
        out[k] += 1
    if floor:
        out = {k: (max(v, floor) if scores[k] > 0 else v) for k, v in out.items()}
    return out


def concat_columns(parts: Sequence[Mapping[str, np.ndarray]], names: Sequence[str]) -> dict[str, np.ndarray]:
    """Concatenate column dicts (object columns stay object)."""
    parts = [p for p in parts if p and len(next(iter(p.values()))) > 0]
    if not parts:
        return {}
    out = {}
    for name in names:
        arrays = [np.asarray(p[name]) for p in parts]
        if any(a.dtype == object for a in arrays):
            merged = np.empty(sum(len(a) for a in arrays), dtype=object)
            start = 0
            for a in arrays:
                for j, v in enumerate(a):
                    merged[start + j] = v
                start += len(a)
            out[name] = merged
        else:
            out[name] = np.concatenate(arrays, axis=0)
    return out


def take(columns: Mapping[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    return {k: np.asarray(v)[index] for k, v in columns.items()}


def draw_near(schema: Schema, columns: Mapping[str, np.ndarray], n: int, rng: np.random.Generator,
              *, scale: float = 0.05, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """`n` inputs near existing ones: reals jittered by `scale` of their span (kept in range),
    integers likewise and rounded, booleans and categories switched with probability `scale * 2`."""
    pool = rows if rows is not None else np.arange(len(next(iter(columns.values()))))
    if n <= 0 or len(pool) == 0:
        return {}
    pick = rng.choice(pool, size=n, replace=True)
    out: dict[str, np.ndarray] = {}
    flip = min(0.5, scale * 2)
    for item in schema.fields:
        base = np.asarray(columns[item.name])[pick]
        if item.kind in ("real", "integer", "vector"):
            span = float(item.high - item.low) or 1.0  # type: ignore[operator]
            values = base.astype(float) + rng.normal(0.0, scale * span, size=base.shape)
            values = np.clip(values, item.low, item.high)
            if item.kind == "integer":
                values = np.clip(np.rint(values), item.low, item.high).astype(np.int64)
            out[item.name] = values
        elif item.kind == "boolean":
            values = base.astype(bool)
            switch = rng.random(n) < flip
            out[item.name] = np.where(switch, ~values, values)
        else:
            values = base.copy()
            switch = np.flatnonzero(rng.random(n) < flip)
            cats = list(item.categories)
            for i in switch:
                values[i] = cats[int(rng.integers(0, len(cats)))]
            out[item.name] = values
    return out


def draw_between(schema: Schema, columns: Mapping[str, np.ndarray], rows: np.ndarray, labels: Sequence[Any],
                 n: int, rng: np.random.Generator, *, weights: np.ndarray | None = None,
                 candidates: int = 24) -> dict[str, np.ndarray]:
    """`n` inputs on segments between nearby rows that took different branch paths (or gave
    different outcomes): where a piecewise function jumps, which is where a surrogate errs.

    For each draw: an anchor row (chosen by `weights`), the nearest of `candidates` random rows
    with another label (distance over reals and integers scaled to their range, plus 1 for each
    differing boolean or category), and a point uniformly on the segment between them (booleans
    and categories from either end). Uniform on the segment, not its midpoint: the boundary can
    lie anywhere between the two, and both sides near it are worth learning."""
    rows = np.asarray(rows)
    labels_arr = np.asarray([str(label) for label in labels], dtype=object)
    if n <= 0 or len(rows) < 2 or len(set(labels_arr.tolist())) < 2:
        return {}
    numeric = [f for f in schema.fields if f.kind in ("real", "integer")]
    discrete = [f for f in schema.fields if f.kind in ("boolean", "categorical")]
    scaled = np.zeros((len(rows), len(numeric)))
    for j, item in enumerate(numeric):
        span = float(item.high - item.low) or 1.0  # type: ignore[operator]
        scaled[:, j] = (np.asarray(columns[item.name], dtype=float)[rows] - float(item.low)) / span  # type: ignore[arg-type]
    codes = np.zeros((len(rows), len(discrete)), dtype=np.int64)
    for j, item in enumerate(discrete):
        lookup: dict[Any, int] = {}
        codes[:, j] = [lookup.setdefault(v, len(lookup)) for v in np.asarray(columns[item.name], dtype=object)[rows]]
    p = None if weights is None else np.asarray(weights, dtype=float) / float(np.sum(weights))
    anchors = rng.choice(len(rows), size=n, replace=True, p=p)
    others = rng.integers(0, len(rows), size=(n, candidates))
    distance = np.sqrt(np.sum((scaled[others] - scaled[anchors][:, None, :]) ** 2, axis=2))
    distance += np.sum(codes[others] != codes[anchors][:, None, :], axis=2)
    distance[labels_arr[others] == labels_arr[anchors][:, None]] = np.inf
    partner = others[np.arange(n), np.argmin(distance, axis=1)]
    found = np.isfinite(np.min(distance, axis=1))
    partner = np.where(found, partner, anchors)  # no other label among the candidates: stay near the anchor
    t = rng.random(n)
    out: dict[str, np.ndarray] = {}
    for item in schema.fields:
        column = np.asarray(columns[item.name])
        a, b = column[rows[anchors]], column[rows[partner]]
        if item.kind in ("real", "integer", "vector"):
            a, b = a.astype(float), b.astype(float)
            tt = t.reshape((-1,) + (1,) * (a.ndim - 1))
            values = np.clip(a + tt * (b - a), item.low, item.high)
            if item.kind == "integer":
                values = np.clip(np.rint(values), item.low, item.high).astype(np.int64)
            out[item.name] = values
        else:
            out[item.name] = np.where(rng.random(n) < 0.5, a, b)
    return out


def in_domain_mask(schema: Schema, columns: Mapping[str, np.ndarray]) -> np.ndarray:
    """Rows whose every value is inside the schema's domain (vectorised for numbers)."""
    n = len(next(iter(columns.values()))) if columns else 0
    mask = np.ones(n, dtype=bool)
    for item in schema.fields:
        col = columns[item.name]
        if item.kind in ("real", "integer"):
            try:
                values = np.asarray(col, dtype=float)
            except (TypeError, ValueError):
                mask &= np.array([schema[item.name].contains(v)[0] for v in col], dtype=bool)
                continue
            ok = np.isfinite(values) & (values >= item.low) & (values <= item.high)
            if item.kind == "integer":
                ok &= values == np.round(values)
            mask &= ok
        elif item.kind == "vector":
            values = np.asarray(col, dtype=float)
            mask &= np.all(np.isfinite(values) & (values >= item.low) & (values <= item.high), axis=1)
        else:
            mask &= np.array([item.contains(v)[0] for v in col], dtype=bool)
    return mask
