"""What a surrogate answers and what fit measured: the value types `Surrogate` returns and keeps.

Kept apart from `_surrogate` so modules that only build or read answers (the guard, the hybrid,
scoring) import them without the class that computes them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np

from probes import ErrorInfo

from . import _manifest as mf


@dataclass(frozen=True)
class OnePrediction:
    """One answer: `output` in the original's Python type (None when it raises), the predicted
    `error`, `spread` (ensemble disagreement in output units; for labels and outcomes 1 - share
    of members agreeing; inf when members disagree on raising vs returning), and the `path`."""

    output: Any
    error: ErrorInfo | None
    spread: float
    path: str | None = None


@dataclass(frozen=True)
class BatchPrediction:
    """Many answers: `outputs` (float (N,) / (N, k) with NaN where raising; object array for
    labels), `raises` (bool), `errors`, `spread` (float), `paths` (None for plain models)."""

    outputs: np.ndarray
    raises: np.ndarray
    errors: list[ErrorInfo | None]
    spread: np.ndarray
    paths: list[str] | None = None


@dataclass(frozen=True)
class SurrogateMetrics:
    """Fidelity measured on held-out fresh inputs, and how training went."""

    agreement: float = math.nan           # share of fresh inputs within tolerance (outcome and value)
    outcome_agreement: float = math.nan   # share where returns-vs-raises (and the type) matches
    mean_error: float = math.nan          # mean abs error where both return (labels: mismatch rate)
    max_error: float = math.nan
    n_test: int = 0
    per_path: dict[str, Any] = field(default_factory=dict)
    validation_agreement: float = math.nan
    tolerance_met: bool = False
    curve: tuple[tuple[int, float, float], ...] = ()
    oracle_calls: int = 0                 # calls of the legacy function for training data
    path_calls: int = 0                   # of which traced for their branch path
    test_calls: int = 0                   # calls for the held-out test set
    calibration_calls: int = 0            # calls labelling the guard's calibration rows
    training_rows: int = 0
    wall_time_s: float = 0.0
    architecture: str = ""
    parameters: int = 0
    search: tuple[dict[str, Any], ...] = ()
    rounds: tuple[dict[str, Any], ...] = ()
    #: paths answered by an exact expression (hybrid surrogate): {path: {"expression": source, "rows": n, ...}}
    exact_paths: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return mf.plain(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SurrogateMetrics":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["curve"] = tuple(tuple(c) for c in known.get("curve", ()))
        known["search"] = tuple(known.get("search", ()))
        known["rounds"] = tuple(known.get("rounds", ()))
        return cls(**known)
