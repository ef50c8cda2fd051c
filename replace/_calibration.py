"""Certify a guard threshold: the error rate of the answers it serves, with a confidence.

A guarded swap serves the surrogate's answer when the row's risk score (`_score`) is at most a
threshold. The threshold comes from calibration rows the original labelled and nothing else
saw (not training, not validation, not model selection) by Learn-then-Test's fixed-sequence
testing (Angelopoulos, Bates et al. 2021): candidate thresholds are the scores at a rising
number of served rows, fixed before any label is read (strictest first, starting where enough
rows are served to certify anything); each is tested for "served error > max_error_rate" by an
exact binomial tail at level 1 - confidence, in order, stopping at the first it cannot reject;
the loosest rejected one is kept. So, with probability at least `confidence` over the
calibration sample, the error rate of served answers is at most `max_error_rate` for inputs
distributed like the calibration rows, whatever the score (served error need not be monotone
in the threshold); only coverage depends on how good the score is. SGR's binary search
(Geifman & El-Yaniv 2017, a union bound over log2(m) tests) is kept as `method="sgr"`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from probes import ErrorInfo, Schema, Tolerance

from ._score import ErrorPredictor, evaluate

SOURCES = ("production", "domain", "traces", "user")


def binomial_upper(errors: int, n: int, delta: float) -> float:
    """One-sided Clopper-Pearson upper bound on a rate after `errors` in `n` trials: the true
    rate exceeds it with probability at most `delta`. 1.0 when n == 0."""
    if n <= 0:
        return 1.0
    if errors >= n:
        return 1.0
    from scipy.stats import beta

    return float(beta.ppf(1.0 - delta, errors + 1, n - errors))


def tests_for(m: int) -> int:
    """How many thresholds SGR's binary search tests on `m` calibration rows."""
    return max(1, math.ceil(math.log2(max(m, 2))))


def rows_needed(max_error_rate: float, confidence: float, method: str = "ltt") -> int:
    """Served rows with no error needed to certify `max_error_rate`: ln(1/delta)/rate for the
    fixed sequence (about 300 for 1% at 95%); ln(k/delta)/rate for SGR's k tests."""
    delta = 1.0 - confidence
    n = max(1, math.ceil(math.log(1.0 / delta) / -math.log1p(-max_error_rate)))
    if method != "sgr":
        return n
    for _ in range(20):  # k grows with n: iterate to the fixed point
        k = tests_for(n)
        need = math.ceil(math.log(k / delta) / -math.log1p(-max_error_rate))
        if need <= n:
            break
        n = need
    return n


def binomial_p_value(errors: int, n: int, rate: float) -> float:
    """P(at most `errors` wrong in `n`) if the true rate were `rate`: small means the served
    error is below `rate`."""
    if n <= 0:
        return 1.0
    from scipy.stats import binom

    return float(binom.cdf(errors, n, rate))


@dataclass(frozen=True)
class CalibrationSet:
    """Calibration rows: each row's risk score and whether the surrogate's answer was wrong
    (outside the tolerance, another label, a value where the original raises, a raise where it
    returns, another exception type). `support`: per argument the low/high (numbers) or the
    values seen (categories), for the drift monitor."""

    source: str
    score: np.ndarray
    wrong: np.ndarray
    support: Mapping[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.score)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "score": [float(s) for s in self.score],
                "wrong": [bool(w) for w in self.wrong], "support": dict(self.support)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CalibrationSet":
        source = str(data.get("source", ""))
        if source not in SOURCES:
            raise ValueError(f"calibration source={source!r} : must be one of {SOURCES}")
        score = np.asarray([float(s) for s in data.get("score", [])], dtype=float)
        wrong = np.asarray([bool(w) for w in data.get("wrong", [])], dtype=bool)
        if len(score) != len(wrong):
            raise ValueError("calibration: score and wrong must have one value per row")
        support = data.get("support", {})
        if not isinstance(support, Mapping):
            raise ValueError("calibration support must be a mapping")
        return cls(source, score, wrong, dict(support))


@dataclass(frozen=True)
class Certificate:
    """The threshold a guard serves under and what the calibration says of it.

    `threshold`: serve when score <= threshold (-inf: serve nothing). `upper_bound`: the
    certified bound on the served error (<= max_error_rate when anything is served).
    `coverage`/`served_error`: on the certifying rows; `domain`: the same threshold on the
    whole-domain rows (coverage, served error and its bound at `confidence`), reported only.
    """

    threshold: float
    max_error_rate: float
    confidence: float
    source: str
    n: int
    served: int
    errors: int
    upper_bound: float
    tests: int
    reason: str = ""
    domain: Mapping[str, Any] | None = None

    @property
    def coverage(self) -> float:
        return self.served / self.n if self.n else 0.0

    @property
    def served_error(self) -> float:
        return self.errors / self.served if self.served else math.nan

    @property
    def serves(self) -> bool:
        return self.served > 0

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "max_error_rate": self.max_error_rate, "confidence": self.confidence,
                "source": self.source, "n": self.n, "served": self.served, "errors": self.errors,
                "coverage": self.coverage, "served_error": self.served_error, "upper_bound": self.upper_bound,
                "tests": self.tests, "method": "sgr", "reason": self.reason,
                "domain": dict(self.domain) if self.domain is not None else None}


def certify(score: np.ndarray, wrong: np.ndarray, *, max_error_rate: float, confidence: float,
            source: str = "production", method: str = "ltt") -> Certificate:
    """The largest-coverage threshold whose served error is certified at most `max_error_rate`
    with probability `confidence` (see the module docstring); `method` "ltt" or "sgr"."""
    if method == "ltt":
        return _certify_fixed_sequence(score, wrong, max_error_rate=max_error_rate, confidence=confidence,
                                       source=source)
    score = np.asarray(score, dtype=float)
    wrong = np.asarray(wrong, dtype=bool)
    m = len(score)
    delta = 1.0 - confidence
    empty = dict(threshold=-math.inf, max_error_rate=max_error_rate, confidence=confidence, source=source, n=m,
                 served=0, errors=0, upper_bound=1.0)
    if m == 0:
        return Certificate(**empty, tests=0, reason="no calibration rows")
    order = np.argsort(score, kind="stable")
    s = score[order]
    cum_wrong = np.cumsum(wrong[order])
    k = tests_for(m)
    level = delta / k
    finite = np.isfinite(s)
    lo, hi = 0, int(np.flatnonzero(finite)[-1]) if finite.any() else -1
    best: tuple[int, int, float] | None = None
    tested = 0
    while lo <= hi and tested < k:
        z = (lo + hi + 1) // 2
        served = int(np.searchsorted(s, s[z], side="right"))  # ties at the threshold are served too
        errors = int(cum_wrong[served - 1])
        bound = binomial_upper(errors, served, level)
        tested += 1
        if bound <= max_error_rate:
            if best is None or served > best[0]:
                best = (served, errors, bound)
            lo = z + 1
        else:
            hi = z - 1
    if best is None:
        need = rows_needed(max_error_rate, confidence)
        reason = (f"no threshold certifies max_error_rate={max_error_rate} at confidence={confidence} on {m} "
                  f"{source} calibration rows ({int(wrong.sum())} wrong); certifying it needs at least {need} "
                  "served rows with no error")
        return Certificate(**{**empty, "upper_bound": 1.0}, tests=tested, reason=reason)
    served, errors, bound = best
    return Certificate(threshold=float(s[served - 1]), max_error_rate=max_error_rate, confidence=confidence,
                       source=source, n=m, served=served, errors=errors, upper_bound=bound, tests=tested)


#: candidate thresholds of the fixed sequence: at most this many steps from the first to all rows
SEQUENCE_STEPS = 200


def _certify_fixed_sequence(score: np.ndarray, wrong: np.ndarray, *, max_error_rate: float, confidence: float,
                            source: str) -> Certificate:
    """Learn-then-Test's fixed-sequence test over thresholds from strict to loose (see the
    module docstring). The sequence is fixed by the scores alone: it starts at the smallest
    served count that could certify the rate with no error, then grows in equal steps."""
    score = np.asarray(score, dtype=float)
    wrong = np.asarray(wrong, dtype=bool)
    m = len(score)
    delta = 1.0 - confidence
    empty = dict(threshold=-math.inf, max_error_rate=max_error_rate, confidence=confidence, source=source, n=m,
                 served=0, errors=0, upper_bound=1.0)
    finite = np.isfinite(score)
    n_finite = int(finite.sum())
    first = rows_needed(max_error_rate, confidence)
    if n_finite < first:
        reason = (f"no threshold certifies max_error_rate={max_error_rate} at confidence={confidence} on {m} "
                  f"{source} calibration rows ({int(wrong.sum())} wrong): certifying it needs at least {first} "
                  "served rows with no error")
        return Certificate(**empty, tests=0, reason=reason)
    order = np.argsort(score, kind="stable")
    s = score[order]
    cum_wrong = np.cumsum(wrong[order])
    step = max(1, math.ceil((n_finite - first) / SEQUENCE_STEPS))
    counts = list(range(first, n_finite + 1, step))
    if counts[-1] != n_finite:
        counts.append(n_finite)
    best: tuple[int, int] | None = None
    tested = 0
    for count in counts:
        served = int(np.searchsorted(s, s[count - 1], side="right"))  # ties at the threshold are served too
        errors = int(cum_wrong[served - 1])
        tested += 1
        if binomial_p_value(errors, served, max_error_rate) > delta:
            break  # the first hypothesis not rejected ends the sequence
        best = (served, errors)
    if best is None:
        errors_first = int(cum_wrong[first - 1])
        reason = (f"no threshold certifies max_error_rate={max_error_rate} at confidence={confidence} on {m} "
                  f"{source} calibration rows ({int(wrong.sum())} wrong; {errors_first} among the {first} "
                  f"safest): certifying it needs at least {first} served rows with no error")
        return Certificate(**empty, tests=tested, reason=reason)
    served, errors = best
    return Certificate(threshold=float(s[served - 1]), max_error_rate=max_error_rate, confidence=confidence,
                       source=source, n=m, served=served, errors=errors,
                       upper_bound=binomial_upper(errors, served, delta), tests=tested)


def describe_at(calibration: CalibrationSet, threshold: float, confidence: float) -> dict[str, Any]:
    """Coverage and served error of `threshold` on other rows (reported, not certified)."""
    served = calibration.score <= threshold
    n_served = int(served.sum())
    errors = int(calibration.wrong[served].sum())
    return {"source": calibration.source, "n": len(calibration), "served": n_served,
            "coverage": n_served / len(calibration) if len(calibration) else 0.0,
            "served_error": errors / n_served if n_served else math.nan,
            "upper_bound": binomial_upper(errors, n_served, 1.0 - confidence)}


@dataclass(frozen=True)
class Calibration:
    """What a surrogate keeps for its guard: the error predictor and the labelled rows."""

    predictor: ErrorPredictor
    sets: Mapping[str, CalibrationSet] = field(default_factory=dict)
    oracle_calls: int = 0

    def certify(self, max_error_rate: float, confidence: float, on: str | None = None) -> Certificate:
        """Certify on the `on` rows (default: production-like rows, else whatever there is);
        the other rows' coverage and served error at that threshold are reported beside."""
        source = on or next((s for s in ("user", "production", "traces", "domain") if s in self.sets), "production")
        rows = self.sets.get(source)
        if rows is None:
            cert = certify(np.zeros(0), np.zeros(0, dtype=bool), max_error_rate=max_error_rate,
                           confidence=confidence, source=source)
            return cert
        cert = certify(rows.score, rows.wrong, max_error_rate=max_error_rate, confidence=confidence, source=source)
        other = self.sets.get("domain") if source != "domain" else None
        if other is not None and len(other):
            cert = Certificate(**{**{k: getattr(cert, k) for k in cert.__dataclass_fields__},
                                  "domain": describe_at(other, cert.threshold, confidence)})
        return cert

    def with_set(self, rows: CalibrationSet) -> "Calibration":
        return Calibration(self.predictor, {**self.sets, rows.source: rows}, self.oracle_calls)

    def to_dict(self) -> dict[str, Any]:
        return {"predictor": self.predictor.to_dict(), "sets": {k: v.to_dict() for k, v in self.sets.items()},
                "oracle_calls": self.oracle_calls}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Calibration":
        sets = {str(k): CalibrationSet.from_dict(v) for k, v in dict(data.get("sets", {})).items()}
        return cls(ErrorPredictor.from_dict(data.get("predictor", {})), sets, int(data.get("oracle_calls", 0)))


def support_of(schema: Schema, columns: Mapping[str, Any]) -> dict[str, Any]:
    """Per argument: the low/high of the rows (numbers) or the distinct values (booleans and
    categories of plain JSON values), the region the calibration speaks for (drift monitor)."""
    support: dict[str, Any] = {}
    for item in schema.fields:
        values = columns.get(item.name)
        if values is None or not len(values):
            continue
        if item.kind in ("real", "integer"):
            array = np.asarray(values, dtype=float)
            if np.isfinite(array).any():
                support[item.name] = {"kind": item.kind, "low": float(np.nanmin(array)),
                                      "high": float(np.nanmax(array))}
        elif item.kind in ("categorical", "boolean"):
            seen = list(dict.fromkeys(v.item() if isinstance(v, np.generic) else v for v in list(values)))
            if all(v is None or isinstance(v, (str, int, float, bool)) for v in seen):
                support[item.name] = {"kind": item.kind, "values": seen}
    return support


def drift_monitor(support: Mapping[str, Any]) -> Any:
    """A `DriftMonitor` over a calibration set's `support` (None when it has no field)."""
    from ._audit import DriftMonitor, FieldSupport

    items = []
    for name, spec in support.items():
        kind = spec.get("kind")
        if kind in ("real", "integer"):
            items.append(FieldSupport(name, kind, float(spec["low"]), float(spec["high"])))
        elif kind in ("categorical", "boolean"):
            items.append(FieldSupport(name, kind, values=tuple(spec.get("values", ()))))
    return DriftMonitor(items) if items else None


def output_kind(surrogate: Any) -> str:
    """"real", "vector" or "label": how answers are compared (a duck-typed stand-in: its schema's)."""
    encoder = getattr(surrogate, "output_encoder", None)
    kind = encoder.kind if encoder is not None else surrogate.schema.output.kind
    return kind if kind in ("real", "vector") else "label"


def call_rows(fn: Callable[..., Any], rows: Sequence[Mapping[str, Any]]) -> tuple[list[Any], list[ErrorInfo | None]]:
    """The original's outcome on each row: its value, or the exception it raised (as data)."""
    from probes._identity import kwargs_caller

    call = kwargs_caller(fn)
    outputs: list[Any] = []
    errors: list[ErrorInfo | None] = []
    for kwargs in rows:
        try:
            outputs.append(call(**kwargs))
            errors.append(None)
        except Exception as exc:  # the original's raise is an outcome to match
            outputs.append(None)
            errors.append(ErrorInfo.from_exception(exc))
    return outputs, errors


def label(surrogate: Any, columns: Mapping[str, np.ndarray], outputs: Sequence[Any],
          errors: Sequence[ErrorInfo | None], *, source: str, predictor: ErrorPredictor | None = None,
          tolerance: Tolerance | None = None) -> CalibrationSet:
    """Score the surrogate on `columns` and mark each row wrong or right against the
    original's `outputs`/`errors` on them."""
    from ._fidelity import compare

    rows = evaluate(surrogate, columns, predictor)
    kind = output_kind(surrogate)
    result = compare(kind, list(outputs), list(errors),
                     rows.outputs, rows.errors, tolerance or surrogate.tolerance)
    return CalibrationSet(source, rows.score, ~result["agree"], support_of(surrogate.schema, columns))


#: share of the recorded traces held out of training for the guard's production calibration
HELD_OUT_SHARE = 0.4
#: fewer traces than this: nothing is held out (too few to certify anything, too many to lose)
MIN_TRACES_TO_HOLD = 200


def held_out_count(n_traces: int, rate: float, share: float = HELD_OUT_SHARE) -> int:
    """Traces `fit` holds out of training for the production calibration: `share` of them
    (`HELD_OUT_SHARE` unless fit's `calibration_holdout` says otherwise), at most five times what
    certifying `rate` needs. They are the trust/fidelity trade-off: every trace held out is one
    the surrogate does not learn from. Only held-out production traffic is
    exchangeable with the traffic a swap will see; rows drawn near the traces are not (the model
    was trained on their neighbours, so it is better there than on fresh calls)."""
    if n_traces < MIN_TRACES_TO_HOLD:
        return 0
    return min(int(share * n_traces), 5 * rows_needed(rate, 0.95))


def calibration_sizes(rate: float, seconds: float, per_call: float) -> int:
    """Whole-domain calibration rows for the oracle to label: enough to certify `rate` at 95%
    with room for errors and partial coverage (five times `rows_needed`), within `seconds` of
    calls at `per_call` each."""
    want = 5 * rows_needed(rate, 0.95)
    affordable = int(seconds / max(per_call, 1e-9)) if seconds > 0 else 0
    return min(want, affordable)


def fit_predictor_on(surrogate: Any, columns: Mapping[str, np.ndarray], outputs: Sequence[Any],
                     errors: Sequence[ErrorInfo | None], *, seed: int = 0,
                     use: Sequence[str] | None = None) -> ErrorPredictor:
    """The error predictor learned on labelled rows (fit passes its validation rows)."""
    from ._fidelity import compare
    from ._score import FEATURES, fit_predictor

    rows = evaluate(surrogate, columns, ErrorPredictor())
    kind = output_kind(surrogate)
    result = compare(kind, list(outputs), list(errors), rows.outputs, rows.errors,
                     surrogate.tolerance)
    return fit_predictor(rows.features, ~result["agree"], rows.paths, use=use or FEATURES, seed=seed)
