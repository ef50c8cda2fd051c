"""When does a candidate's output agree with the original's?

`|y - r| <= abs + rel * |r|` with the original as reference `r` (numpy's and torch's
convention), so the judgement does not depend on which side is the candidate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import bad_argument


@dataclass(frozen=True)
class Tolerance:
    """Allowed difference for real outputs; labels and exceptions must match exactly."""

    abs: float = 0.0
    rel: float = 0.0

    def __post_init__(self) -> None:
        for name in ("abs", "rel"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise bad_argument(f"tolerance=Tolerance({name}={value!r})", value, f"{name} must be a number")
            try:
                number = float(value)
            except OverflowError:  # an int beyond any float
                number = math.inf
            if math.isnan(number) or number < 0:
                raise bad_argument(
                    f"tolerance=Tolerance({name}={value!r})", value, f"{name} must be >= 0",
                    "Pass a non-negative number, e.g. Tolerance(abs=1e-3, rel=1e-2)",
                )
            if math.isinf(number):  # an infinite bound lets every answer agree: no check at all
                raise bad_argument(
                    f"tolerance=Tolerance({name}={value!r})", value, f"{name} must be finite",
                    "Pass a finite bound, e.g. Tolerance(abs=1e-3, rel=1e-2)",
                )

    def bound(self, reference: Any) -> Any:
        """The largest difference allowed around `reference` (array-aware)."""
        with np.errstate(invalid="ignore"):
            return self.abs + self.rel * np.abs(np.asarray(reference, dtype=float))

    def agrees(self, reference: Any, candidate: Any) -> bool:
        """True when every element of `candidate` is within the bound around `reference`."""
        ref = np.asarray(reference, dtype=float)
        cand = np.asarray(candidate, dtype=float)
        if ref.shape != cand.shape:
            return False
        both_nan = np.isnan(ref) & np.isnan(cand)
        same_inf = np.isinf(ref) & (ref == cand)
        with np.errstate(invalid="ignore"):
            close = np.abs(cand - ref) <= self.bound(ref)
        return bool(np.all(both_nan | same_inf | close))

    def excess(self, reference: Any, candidate: Any) -> float:
        """Worst ratio of difference to allowed bound: <= 1 agrees, larger is worse (inf if bound is 0)."""
        ref = np.asarray(reference, dtype=float)
        cand = np.asarray(candidate, dtype=float)
        diff = np.abs(cand - ref)
        bound = self.bound(ref)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(diff == 0, 0.0, diff / bound)
        ratio = np.where(np.isnan(ratio), np.inf, ratio)
        return float(np.max(ratio)) if ratio.size else 0.0

    def to_dict(self) -> dict[str, float]:
        return {"abs": float(self.abs), "rel": float(self.rel)}

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> "Tolerance":
        return cls(abs=float(data.get("abs", 0.0)), rel=float(data.get("rel", 0.0)))
