"""The per-element error rule both AxBench qos scripts share (blackscholes, inversek2j)."""

from __future__ import annotations

import math


def clipped_relative_error(nominator: float, denominator: float) -> float:
    """`min(1, nominator / denominator)`, and 1 where the reference is 0 or either side is NaN,
    exactly as AxBench's `scripts/qos.py` scores one output."""
    if denominator == 0 or math.isnan(nominator) or math.isnan(denominator):
        return 1.0
    return min(1.0, nominator / denominator)
