"""Exact thresholds: bisect with the oracle between two rows on different paths down to adjacent
floats, the cut the code compares against wherever it lives (`bisect_threshold`)."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from ._expression_nodes import _number_text
from ._validation import bad_argument


# -- exact thresholds --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Threshold:
    """Where a path changes along one numeric argument: `low` and `high` are adjacent floats (or
    integers) on either side; `value` is the rounder of the two. With `below_inclusive`, the
    rows with `field <= value` take `below`; without, those with `field < value` do."""

    field: str
    value: float
    below_inclusive: bool
    below: Any
    above: Any
    low: float
    high: float
    calls: int

    @property
    def condition(self) -> str:
        """The below side's condition as Python text."""
        value = _number_text(self.value) if isinstance(self.value, float) else repr(self.value)
        return f"{self.field} {'<=' if self.below_inclusive else '<'} {value}"


def _ordered(x: float) -> int:
    bits = struct.unpack(">q", struct.pack(">d", x))[0]
    return bits if bits >= 0 else -(bits & 0x7FFFFFFFFFFFFFFF)


def _unordered(k: int) -> float:
    bits = k if k >= 0 else (-k) | (1 << 63)
    return struct.unpack(">d", struct.pack(">Q", bits))[0]


def bisect_threshold(fn_path_of: Callable[[dict[str, Any]], Any], lo_row: Mapping[str, Any],
                     hi_row: Mapping[str, Any], field: str) -> Threshold:
    """Bisect with the oracle between two rows that differ only in numeric `field` and take
    different paths, down to adjacent floats (integers when both values are ints): the exact
    cut the code compares against, wherever it lives (a literal, a table, a variable).

    `fn_path_of(row)` returns the path of a row (e.g. `call_with_path(fn, row).signature`). At
    most ~64 calls for floats. Where several cuts lie between the rows, one of them is found.
    """
    if set(lo_row) != set(hi_row) or field not in lo_row:
        raise bad_argument("field", field, "must be a key of both rows, and the rows must have the same keys")
    differing = [k for k in lo_row if k != field and not _same(lo_row[k], hi_row[k])]
    if differing:
        raise bad_argument("hi_row", {k: hi_row[k] for k in differing},
                           f"the rows must differ only in {field!r}; they also differ in {differing}")
    a, b = lo_row[field], hi_row[field]
    for v in (a, b):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
            raise bad_argument(field, v, "must be a finite number in both rows")
    if a == b:
        raise bad_argument(field, a, "the two rows have the same value; nothing to bisect")
    if a > b:
        a, b = b, a
    base = dict(lo_row)
    calls = 0

    def path(value: Any) -> Any:
        nonlocal calls
        calls += 1
        return fn_path_of({**base, field: value})

    path_a, path_b = path(a), path(b)
    if path_a == path_b:
        raise bad_argument(field, (a, b), "both rows take the same path; pass rows on different paths")
    integer = isinstance(a, (int, np.integer)) and isinstance(b, (int, np.integer))
    if integer:
        lo, hi = int(a), int(b)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            p = path(mid)
            if p == path_a:
                lo = mid
            else:
                hi, path_b = mid, p
        return Threshold(field, lo, True, path_a, path_b, lo, hi, calls)
    ka, kb = _ordered(float(a)), _ordered(float(b))
    while kb - ka > 1:
        km = (ka + kb) // 2
        p = path(_unordered(km))
        if p == path_a:
            ka = km
        else:
            kb, path_b = km, p
    low, high = _unordered(ka), _unordered(kb)
    below_inclusive = len(repr(low)) <= len(repr(high))
    return Threshold(field, low if below_inclusive else high, below_inclusive, path_a, path_b, low, high, calls)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) or (a is b)
    except Exception:  # arrays and odd types: compare by identity
        return a is b
