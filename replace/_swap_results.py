"""What a swapped function reports: its counters (`SwapStats`) and shadow disagreements."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from probes import ErrorInfo

#: Why the original answered a guarded call (or, in shadow mode, why a sampled call was not compared).
FALLBACK_REASONS = ("out_of_domain", "uncertain", "surrogate_error", "tripped")


@dataclass(frozen=True)
class Disagreement:
    """One shadow comparison that failed: the input, what the original did, what the surrogate said."""

    inputs: dict[str, Any]
    expected: Any
    actual: Any
    expected_error: ErrorInfo | None = None
    actual_error: ErrorInfo | None = None
    excess: float = math.inf  # |actual - expected| / allowed bound; inf for a label or raise mismatch
    timestamp: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": {k: _plain(v) for k, v in self.inputs.items()},
            "expected": _plain(self.expected), "actual": _plain(self.actual),
            "expected_error": self.expected_error.to_dict() if self.expected_error else None,
            "actual_error": self.actual_error.to_dict() if self.actual_error else None,
            "excess": self.excess, "timestamp": self.timestamp,
        }


@dataclass(frozen=True)
class SwapStats:
    """A snapshot of a swapped function's counters (taken under its lock, so consistent)."""

    mode: str
    calls: int = 0
    served_by_surrogate: int = 0
    served_by_original: int = 0
    fallbacks: Mapping[str, int] = field(default_factory=lambda: {r: 0 for r in FALLBACK_REASONS})
    rejected: int = 0  # surrogate mode: calls refused with OutOfDomainError
    shadow_comparisons: int = 0
    disagreements: int = 0
    original_time_s: float = 0.0  # total wall time spent in the original
    original_timed: int = 0
    surrogate_time_s: float = 0.0  # total wall time spent in the surrogate's prediction
    surrogate_timed: int = 0
    hook_errors: int = 0  # callback or recording failures (never raised into the caller)
    audited: int = 0  # guarded: served calls also answered by the original and compared (the caller got the original's)
    audit_wrong: int = 0  # of which the surrogate's answer was wrong
    audit_interval: tuple[float, float] = (0.0, 1.0)  # 95% interval of the audited served error
    tripped: bool = False  # guarded: the live audit found the served error above the asked rate; serving stopped
    drift: Mapping[str, Any] | None = None  # guarded: inputs outside the calibration rows' support
    certificate: Mapping[str, Any] | None = None  # guarded: the certified threshold, coverage and bound

    @property
    def invocation_rate(self) -> float:
        """Share of calls the surrogate answered (Rumba's metric); 0.0 before any call."""
        return self.served_by_surrogate / self.calls if self.calls else 0.0

    @property
    def disagreement_rate(self) -> float:
        """Share of shadow comparisons where the surrogate disagreed with the original."""
        return self.disagreements / self.shadow_comparisons if self.shadow_comparisons else 0.0

    @property
    def mean_original_s(self) -> float | None:
        return self.original_time_s / self.original_timed if self.original_timed else None

    @property
    def mean_surrogate_s(self) -> float | None:
        return self.surrogate_time_s / self.surrogate_timed if self.surrogate_timed else None

    @property
    def speedup(self) -> float | None:
        """Mean original time over mean surrogate time, when both were measured."""
        a, b = self.mean_original_s, self.mean_surrogate_s
        return a / b if a is not None and b else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode, "calls": self.calls, "served_by_surrogate": self.served_by_surrogate,
            "served_by_original": self.served_by_original, "fallbacks": dict(self.fallbacks),
            "rejected": self.rejected, "invocation_rate": self.invocation_rate,
            "shadow_comparisons": self.shadow_comparisons, "disagreements": self.disagreements,
            "disagreement_rate": self.disagreement_rate, "mean_original_s": self.mean_original_s,
            "mean_surrogate_s": self.mean_surrogate_s, "speedup": self.speedup,
            "hook_errors": self.hook_errors, "audited": self.audited, "audit_wrong": self.audit_wrong,
            "audit_interval": list(self.audit_interval), "tripped": self.tripped,
            "drift": dict(self.drift) if self.drift is not None else None,
            "certificate": dict(self.certificate) if self.certificate is not None else None,
        }


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool, list, dict)):
        return value
    return repr(value)
