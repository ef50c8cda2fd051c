"""Watch a guarded swap in production: audit served answers, and watch inputs leave the calibration support.

`LiveAudit` re-checks a share of served calls against the original and trips when the audited
error is significantly above the asked rate, with a false-alarm probability that stays bounded
however long the stream runs (a test martingale, not a repeated fixed-sample test).
`DriftMonitor` counts live inputs outside what the calibration set covered, where the guard's
certificate says nothing. Both are thread-safe; numpy and scipy only, no torch.
"""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from probes._validation import bad_argument, check_number

__all__ = ["ALTERNATIVE_MULTIPLES", "ABSOLUTE_ALTERNATIVES", "DriftMonitor", "FieldSupport", "LiveAudit",
           "alternatives_for", "log_evidence_paths"]

#: Alternatives as multiples of the asked rate: 1.5x-3x catch a slow decay (after hundreds of
#: audits), 5x-30x a break (after a handful). A finer grid would cost log(K) more evidence.
ALTERNATIVE_MULTIPLES = (1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
#: Absolute alternatives: "a third / half of the served answers are wrong", whatever the asked rate.
ABSOLUTE_ALTERNATIVES = (0.3, 0.5)


def alternatives_for(max_error_rate: float) -> tuple[float, ...]:
    """The grid of error rates p1 > p0 the test is mixed over, for p0 = `max_error_rate`.

    Each multiple and absolute value is capped at p0 + 0.9 (1 - p0) (below 1, so one correct
    answer never zeroes a component), kept only when above p0, deduplicated, sorted.
    """
    p0 = float(max_error_rate)
    cap = p0 + 0.9 * (1.0 - p0)
    grid = {round(min(p, cap), 12) for p in [m * p0 for m in ALTERNATIVE_MULTIPLES] + list(ABSOLUTE_ALTERNATIVES)}
    return tuple(sorted(p for p in grid if p0 < p < 1.0))


def _steps(max_error_rate: float, alternatives: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """log LR_k per wrong answer (positive) and per right answer (negative), for each alternative."""
    p0 = float(max_error_rate)
    grid = np.asarray(alternatives, dtype=float)
    return np.log(grid / p0), np.log1p(-grid) - math.log1p(-p0)


def log_evidence_paths(wrong: Any, max_error_rate: float, alternatives: Sequence[float] | None = None) -> np.ndarray:
    """log M_n after each audit, for a batch of audit outcome sequences (same rule as `LiveAudit`).

    `wrong` has shape (..., n) (1 = a wrong audited answer); the result has the same shape.
    Vectorised over the leading axes and looping over the n audits, for fast simulations.
    """
    outcomes = np.asarray(wrong, dtype=bool)
    up, down = _steps(max_error_rate, alternatives if alternatives is not None else alternatives_for(max_error_rate))
    log_k = math.log(len(up))
    log_s = np.full(outcomes.shape[:-1] + (len(up),), -np.inf)
    out = np.empty(outcomes.shape, dtype=float)
    for t in range(outcomes.shape[-1]):
        n = t + 1
        log_s = np.logaddexp(log_s, -math.log(n * (n + 1.0)))  # a new test starts at audit n, weight 1/(n(n+1))
        log_s = log_s + np.where(outcomes[..., t, None], up, down)
        out[..., t] = np.logaddexp(np.logaddexp.reduce(log_s, axis=-1) - log_k, -math.log(n + 1.0))
    return out


def _check_open_unit(name: str, value: Any, fix: str) -> float:
    check_number(name, value, low=0.0, low_inclusive=False, high=1.0, fix=fix)
    if float(value) >= 1.0:
        raise bad_argument(name, value, "must be < 1", fix)
    return float(value)


class LiveAudit:
    """Re-checks a share of served calls against the original; trips when served error is significantly high.

    Test: for an alternative error rate p1 > p0 = `max_error_rate` an audited answer x (1 = wrong)
    has likelihood ratio LR(x) = (p1/p0)^x ((1-p1)/(1-p0))^(1-x). If each audited answer, given
    the past, is wrong with probability p <= p0, E[LR] = p p1/p0 + (1-p)(1-p1)/(1-p0) <= 1, so a
    product of LRs is a nonnegative supermartingale. The guard's statistic mixes such products
    over the alternatives p1 in `alternatives_for(p0)` (equal weights) and over the audit j they
    start at (weight 1/(j(j+1)), the not-yet-started ones counting 1):

        M_n = mean_k sum_{j<=n} prod_{i=j..n} LR_k(x_i) / (j(j+1)) + 1/(n+1),   M_0 = 1,

    again a nonnegative supermartingale under the null, so by Ville's inequality
    P(M_n >= 1/false_alarm for ANY n) <= `false_alarm`: over an unbounded stream, checked after
    every audit, the guard trips falsely with probability at most `false_alarm`. The start-time
    mixture keeps a break after a long clean run detectable (about 2 log(j) more evidence for a
    break at audit j) where a single product started at audit 1 would first have to climb back
    from the evidence the clean run piled up against it. The guard trips at the first n with
    M_n >= 1/false_alarm (log space) and stays tripped until `reset()`.
    """

    def __init__(self, max_error_rate: float, audit_rate: float, *, false_alarm: float = 0.01,
                 seed: int | None = 0) -> None:
        self.max_error_rate = _check_open_unit("max_error_rate", max_error_rate,
                                               "Pass the served error rate the guard promises, e.g. 0.01")
        check_number("audit_rate", audit_rate, low=0.0, high=1.0,
                     fix="Pass the share of served calls to re-check, e.g. 0.05 (0 turns auditing off)")
        self.audit_rate = float(audit_rate)
        self.false_alarm = _check_open_unit("false_alarm", false_alarm,
                                            "Pass the accepted probability of ever tripping falsely, e.g. 0.01")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise bad_argument("seed", seed, "must be an integer or None")
        self.seed = seed
        self.alternatives = alternatives_for(self.max_error_rate)
        self.threshold = math.log(1.0 / self.false_alarm)  # trip when log M_n >= this
        up, down = _steps(self.max_error_rate, self.alternatives)
        self._up, self._down = [float(v) for v in up], [float(v) for v in down]
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._reset_state()

    def _reset_state(self) -> None:
        self.audited = 0
        self.wrong = 0
        self.tripped = False
        self.tripped_after: int | None = None  # audits counted when it tripped
        self._logs = [-math.inf] * len(self.alternatives)  # log of each alternative's sum over starts
        self._log_evidence = 0.0

    # -- hot path ---------------------------------------------------------------------------
    def should_audit(self) -> bool:
        """Draw whether to audit this served call (probability `audit_rate`, seeded)."""
        if self.audit_rate <= 0.0:
            return False
        with self._lock:
            return self._rng.random() < self.audit_rate

    def observe(self, wrong: bool) -> bool:
        """Record one audited served call; True exactly when this observation trips the guard."""
        with self._lock:
            self.audited += 1
            n = self.audited
            if wrong:
                self.wrong += 1
            steps = self._up if wrong else self._down
            start = -math.log(n * (n + 1.0))  # the test starting at this audit, weight 1/(n(n+1))
            logs = self._logs
            for k, step in enumerate(steps):
                a = logs[k]
                logs[k] = (start if a == -math.inf else max(a, start) + math.log1p(math.exp(-abs(a - start)))) + step
            top = max(max(logs), -math.log(n + 1.0))
            total = sum(math.exp(v - top) for v in logs) / len(logs) + math.exp(-math.log(n + 1.0) - top)
            self._log_evidence = top + math.log(total)
            if not self.tripped and self._log_evidence >= self.threshold:
                self.tripped = True
                self.tripped_after = n
                return True
            return False

    # -- reading ----------------------------------------------------------------------------
    @property
    def error_rate(self) -> float | None:
        """Share of audited served calls that were wrong (None before the first audit)."""
        return self.wrong / self.audited if self.audited else None

    @property
    def evidence(self) -> float:
        """The statistic M_n (an e-value: 1 before any audit, trips at 1/false_alarm)."""
        return math.exp(min(self._log_evidence, 700.0))

    def interval(self, level: float = 0.95) -> tuple[float, float]:
        """Clopper-Pearson interval of the audited served error at `level` ((0, 1) before any audit).

        A fixed-sample interval for reporting; the trip decision is the sequential test, which
        stays valid however often it is looked at.
        """
        _check_open_unit("level", level, "Pass a confidence level such as 0.95")
        with self._lock:
            n, k = self.audited, self.wrong
        return _clopper_pearson(k, n, float(level))

    def reset(self) -> None:
        """Forget every audit and untrip (the RNG keeps its stream)."""
        with self._lock:
            self._reset_state()

    def to_dict(self) -> dict[str, Any]:
        """Settings and state as plain JSON-ready values (for `.stats`)."""
        with self._lock:
            n, k = self.audited, self.wrong
            data = {
                "max_error_rate": self.max_error_rate, "audit_rate": self.audit_rate,
                "false_alarm": self.false_alarm, "audited": n, "wrong": k,
                "error_rate": k / n if n else None, "tripped": self.tripped,
                "tripped_after": self.tripped_after, "evidence": math.exp(min(self._log_evidence, 700.0)),
                "threshold": 1.0 / self.false_alarm,
            }
        low, high = _clopper_pearson(k, n, 0.95)
        data["interval_95"] = [low, high]
        return data

    def __repr__(self) -> str:
        state = "tripped" if self.tripped else "ok"
        return (f"LiveAudit(max_error_rate={self.max_error_rate}, audit_rate={self.audit_rate}, "
                f"audited={self.audited}, wrong={self.wrong}, {state})")


def _clopper_pearson(k: int, n: int, level: float) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    from scipy.stats import beta

    tail = (1.0 - level) / 2.0
    low = 0.0 if k == 0 else float(beta.ppf(tail, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1.0 - tail, k + 1, n - k))
    return low, high


# -- drift -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FieldSupport:
    """What the calibration rows covered for one argument.

    Numbers: `low`/`high` (tuples per element for a vector); booleans and categories: the `values` seen.
    """

    name: str
    kind: str
    low: Any = None
    high: Any = None
    values: tuple[Any, ...] = ()

    def contains(self, value: Any) -> bool:
        """Whether `value` lies inside this support."""
        kind = self.kind
        if kind == "boolean":
            return isinstance(value, (bool, np.bool_)) and bool(value) in self.values
        if kind == "categorical":
            try:
                return value in self.values
            except Exception:  # odd equality: not a known category
                return False
        if kind == "vector":
            try:
                array = np.asarray(value, dtype=float)
            except (TypeError, ValueError):
                return False
            if array.shape != (len(self.low),):
                return False
            return bool(np.all(array >= np.asarray(self.low)) and np.all(array <= np.asarray(self.high)))  # NaN: False
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            return False
        number = float(value)
        if not math.isfinite(number) or (kind == "integer" and number != math.floor(number)):
            return False
        return self.low <= number <= self.high


def _support_of(name: str, kind: str, column: Any) -> FieldSupport:
    if kind in ("real", "integer"):
        values = np.asarray(column, dtype=float).ravel()
        values = values[np.isfinite(values)]
        if values.size == 0:
            raise bad_argument(f"columns[{name!r}]", "no finite values", "a number field needs calibration values")
        return FieldSupport(name, kind, float(values.min()), float(values.max()))
    if kind == "vector":
        array = np.asarray(column, dtype=float)
        if array.ndim != 2 or array.shape[0] == 0:
            raise bad_argument(f"columns[{name!r}]", array.shape, "a vector field needs a (rows, length) array")
        finite = np.where(np.isfinite(array), array, np.nan)
        if np.isnan(finite).all(axis=0).any():
            raise bad_argument(f"columns[{name!r}]", "no finite values",
                               "every vector element needs calibration values")
        low, high = np.nanmin(finite, axis=0), np.nanmax(finite, axis=0)
        return FieldSupport(name, kind, tuple(float(v) for v in low), tuple(float(v) for v in high))
    if kind == "boolean":
        return FieldSupport(name, kind, values=tuple(sorted({bool(v) for v in column})))
    try:
        seen = tuple(dict.fromkeys(column))
    except TypeError:  # unhashable categories: keep the first of each by equality
        listed: list[Any] = []
        for value in column:
            if value not in listed:
                listed.append(value)
        seen = tuple(listed)
    return FieldSupport(name, "categorical", values=seen)


def _kind_of(column: Any) -> str:
    array = np.asarray(column)
    if array.ndim == 2:
        return "vector"
    if array.dtype == np.bool_:
        return "boolean"
    if np.issubdtype(array.dtype, np.integer):
        return "integer"
    if np.issubdtype(array.dtype, np.floating):
        return "real"
    return "categorical"


class DriftMonitor:
    """Share of live inputs outside the calibration support (per-field min/max of the rows, categories seen).

    The guard's certificate holds for inputs like the calibration rows; a rising share outside
    their support says the traffic has moved where that evidence does not reach.
    """

    def __init__(self, support: Mapping[str, FieldSupport] | Iterable[FieldSupport]) -> None:
        items = list(support.values()) if isinstance(support, Mapping) else list(support)
        if not items or not all(isinstance(item, FieldSupport) for item in items):
            raise bad_argument("support", support, "must be a non-empty mapping of FieldSupport",
                               "Build one with DriftMonitor.from_columns(columns, schema)")
        self.support: dict[str, FieldSupport] = {item.name: item for item in items}
        self._lock = threading.Lock()
        self.reset()

    @classmethod
    def from_columns(cls, columns: Mapping[str, Any], schema: Any = None) -> "DriftMonitor":
        """Support from calibration columns (name -> array); kinds from `schema`'s fields, else from dtypes."""
        if not isinstance(columns, Mapping) or not columns:
            raise bad_argument("columns", type(columns).__name__, "must be a non-empty mapping name -> column",
                               "Pass the calibration inputs as columns, e.g. schema.sample_columns(n)")
        if schema is not None:
            kinds = {item.name: item.kind for item in schema.fields}
            missing = [name for name in kinds if name not in columns]
            if missing:
                raise bad_argument("columns", sorted(columns), f"has no column for {missing[0]!r}",
                                   "Pass one column per schema field")
        else:
            kinds = {name: _kind_of(column) for name, column in columns.items()}
        return cls([_support_of(name, kind, columns[name]) for name, kind in kinds.items()])

    def outside_fields(self, kwargs: Mapping[str, Any]) -> list[str]:
        """The fields of one input outside the support (a missing field counts as outside); counts nothing."""
        return [name for name, item in self.support.items() if name not in kwargs or not item.contains(kwargs[name])]

    def observe(self, kwargs: Mapping[str, Any]) -> bool:
        """Count one live input; True when it lies outside the support."""
        fields = self.outside_fields(kwargs)
        with self._lock:
            self.seen += 1
            if fields:
                self.outside += 1
                for name in fields:
                    self.by_field[name] = self.by_field.get(name, 0) + 1
        return bool(fields)

    @property
    def share(self) -> float:
        """Share of the inputs seen that were outside the support (0 before any)."""
        return self.outside / self.seen if self.seen else 0.0

    def reset(self) -> None:
        """Forget the counts (the support stays)."""
        with self._lock:
            self.seen = 0
            self.outside = 0
            self.by_field: dict[str, int] = {}

    def to_dict(self) -> dict[str, Any]:
        """Counts as plain values (for `.stats`)."""
        with self._lock:
            return {"seen": self.seen, "outside": self.outside,
                    "share": self.outside / self.seen if self.seen else 0.0, "by_field": dict(self.by_field)}

    def __repr__(self) -> str:
        return f"DriftMonitor(fields={list(self.support)}, seen={self.seen}, outside={self.outside})"
