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
