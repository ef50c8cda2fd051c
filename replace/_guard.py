"""The certified gate of a guarded swap: which calls the surrogate may answer.

A call is served when it is inside the surrogate's domain, the guard has not tripped, and the
row's risk score (`_score`) is at most the threshold `_calibration` certified for the asked
`max_error_rate` at `confidence`. A share of served calls is audited against the original
(`_audit.LiveAudit`), which trips the guard when the served error is significantly above the
asked rate; live inputs outside the calibration rows' support are counted as drift.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from probes._identity import function_name
from probes._validation import bad_argument, check_number

from ._audit import LiveAudit
from ._calibration import Calibration, Certificate, call_rows, certify, drift_monitor, label
from ._columns import as_columns, plain_value
from ._predictions import OnePrediction
from ._score import ErrorPredictor, OneRowScorer, evaluate

logger = logging.getLogger("replace.swap")

CALIBRATE_ON = ("production", "domain", "traces", "user")


class CertifiedGuard:
    """Threshold, audit and drift of one guarded swap (thread-safe where it counts)."""

    def __init__(self, fn: Callable[..., Any], surrogate: Any, *, max_error_rate: float, confidence: float,
                 audit_rate: float, false_alarm: float, seed: int, calibration_inputs: Any = None,
                 calibrate_on: str | None = None) -> None:
        check_number("max_error_rate", max_error_rate, low=0.0, low_inclusive=False, high=1.0,
                     fix="Pass the highest share of wrong served answers you accept, e.g. 0.01")
        if max_error_rate >= 1.0:
            raise bad_argument("max_error_rate", max_error_rate, "must be < 1",
                               "Pass the highest share of wrong served answers you accept, e.g. 0.01")
        check_number("confidence", confidence, low=0.5, high=1.0,
                     fix="Pass the probability the guarantee holds with, e.g. 0.95")
        if confidence >= 1.0:
            raise bad_argument("confidence", confidence, "must be < 1 (certainty needs infinitely many rows)",
                               "Pass e.g. 0.95 or 0.99")
        if calibrate_on is not None and calibrate_on not in CALIBRATE_ON:
            raise bad_argument("calibrate_on", calibrate_on, f"must be one of {CALIBRATE_ON} or None",
                               "Pass None to certify on the production-like rows fit labelled")
        self.fn = fn
        self.surrogate = surrogate
        self.max_error_rate = float(max_error_rate)
        self.confidence = float(confidence)
        self.calibrate_on = calibrate_on
        self.audit = LiveAudit(max_error_rate, audit_rate, false_alarm=false_alarm, seed=seed)
        self.calibration: Calibration | None = getattr(surrogate, "calibration", None)
        self.predictor: ErrorPredictor = (self.calibration.predictor if self.calibration is not None
                                          else ErrorPredictor())
        self.certificate: Certificate
        self._one_row: OneRowScorer | None = None
        self.drift: Any = None
        if calibration_inputs is not None:
            self.recalibrate(calibration_inputs)
        else:
            self._certify(calibrate_on)

    # -- certification --------------------------------------------------------------------
    def _certify(self, on: str | None) -> None:
        name = function_name(self.fn)
        if self.calibration is None or not self.calibration.sets:
            self.certificate = certify(np.zeros(0), np.zeros(0, dtype=bool), max_error_rate=self.max_error_rate,
                                       confidence=self.confidence, source=on or "production")
            self.certificate = _with_reason(self.certificate, "the surrogate has no calibration rows (fitted "
                                            "before calibration existed, or with nothing held out)")
        else:
            if on is not None and on not in self.calibration.sets:
                raise bad_argument("calibrate_on", on, f"the surrogate has no {on!r} calibration rows "
                                   f"(it has {sorted(self.calibration.sets)})",
                                   "Pass one of those, or calibration_inputs=rows to calibrate on your own")
            self.certificate = self.calibration.certify(self.max_error_rate, self.confidence, on)
            rows = self.calibration.sets.get(self.certificate.source)
            self.drift = drift_monitor(rows.support) if rows is not None else None
        if not self.certificate.serves:
            warnings.warn(
                f"swap({name}, mode='guarded'): the guard serves nothing, every call goes to the original: "
                f"{self.certificate.reason}. Pass calibration_inputs=rows (more rows), a larger max_error_rate, "
                "or refit with a larger budget", UserWarning, stacklevel=4)

    def recalibrate(self, calibration_inputs: Any = None, *, max_error_rate: float | None = None,
                    confidence: float | None = None) -> Certificate:
        """Certify again (new rate, confidence, or rows): `calibration_inputs` (kwargs dicts or
        columns) are labelled by calling the original; rows outside the surrogate's domain are
        dropped (the guard never serves them). Clears a trip and the audit's evidence."""
        if max_error_rate is not None:
            check_number("max_error_rate", max_error_rate, low=0.0, low_inclusive=False, high=1.0)
            self.max_error_rate = float(max_error_rate)
            self.audit = LiveAudit(self.max_error_rate, self.audit.audit_rate, false_alarm=self.audit.false_alarm,
                                   seed=self.audit.seed)
        if confidence is not None:
            check_number("confidence", confidence, low=0.5, high=1.0)
            self.confidence = float(confidence)
        if calibration_inputs is not None:
            rows = _rows_of(calibration_inputs)
            schema = self.surrogate.schema
            inside = [row for row in rows if _inside(schema, row)]
            if not inside:
                raise bad_argument("calibration_inputs", f"<{len(rows)} rows>", "no row lies inside the surrogate's "
                                   "domain", "Pass inputs like the production traffic the guard will see")
            outputs, errors = call_rows(self.fn, inside)
            columns = as_columns(inside)
            user = label(self.surrogate, columns, outputs, errors, source="user", predictor=self.predictor)
            base = self.calibration or Calibration(self.predictor)
            self.calibration = base.with_set(user)
            self._certify("user")
        else:
            self._certify(self.calibrate_on)
        self.audit.reset()
        return self.certificate

    # -- decisions ------------------------------------------------------------------------
    def evaluate_one(self, bound: Mapping[str, Any]) -> tuple[OnePrediction, float]:
        """The surrogate's answer for one call and its risk score (as `evaluate` would give)."""
        scorer = self._one_row
        if scorer is None or scorer.predictor is not self.predictor:
            scorer = self._one_row = OneRowScorer(self.surrogate, self.predictor)
        return scorer(bound)

    def serves(self, score: float) -> bool:
        return (not self.audit.tripped) and self.certificate.serves and score <= self.certificate.threshold

    def observe_audit(self, wrong: bool) -> None:
        """Count one audited served call; warn once when the guard trips."""
        if self.audit.observe(wrong):
            a = self.audit
            warnings.warn(
                f"swap({function_name(self.fn)}, mode='guarded'): tripped after {a.audited} audited served calls, "
                f"{a.wrong} wrong (asked at most {self.max_error_rate:.4g}); the surrogate no longer serves, every "
                "call goes to the original. Did the function or a table it reads change? Refit, then call "
                ".recalibrate(...) or .reset() to serve again", UserWarning, stacklevel=4)

    def batch(self, columns: Mapping[str, Any]) -> tuple[Any, np.ndarray]:
        """(details, served mask) for rows inside the domain (the caller drops the others)."""
        rows = evaluate(self.surrogate, columns, self.predictor)
        if self.audit.tripped or not self.certificate.serves:
            return rows.details, np.zeros(len(rows.score), dtype=bool)
        return rows.details, rows.score <= self.certificate.threshold

    def to_dict(self) -> dict[str, Any]:
        return {"certificate": self.certificate.to_dict(), "audit": self.audit.to_dict(),
                "drift": self.drift.to_dict() if self.drift is not None else None,
                "predictor": self.predictor.kind}


def _with_reason(cert: Certificate, reason: str) -> Certificate:
    return Certificate(**{**{k: getattr(cert, k) for k in cert.__dataclass_fields__}, "reason": reason})


def _rows_of(inputs: Any) -> list[dict[str, Any]]:
    if isinstance(inputs, Mapping):
        names = list(inputs)
        fix = "Pass one list or array per argument, all of one length, or a list of kwargs dicts"
        for name in names:
            column = inputs[name]
            if isinstance(column, (str, bytes, Mapping)) or not isinstance(column, (Sequence, np.ndarray)):
                raise bad_argument("calibration_inputs", f"<column {name!r}: {type(column).__name__}>",
                                   "each column must be a list or array of values", fix)
        lengths = sorted({len(inputs[name]) for name in names})
        if len(lengths) > 1:
            raise bad_argument("calibration_inputs", f"<column lengths {lengths}>", "columns must have one length", fix)
        n = lengths[0] if lengths else 0
        return [{k: plain_value(inputs[k][i]) for k in names} for i in range(n)]
    if isinstance(inputs, Sequence) and all(isinstance(r, Mapping) for r in inputs):
        return [dict(r) for r in inputs]
    raise bad_argument("calibration_inputs", type(inputs).__name__, "must be a list of kwargs dicts or a mapping "
                       "of columns", "Pass e.g. traces.inputs or schema.sample(2000)")


def _inside(schema: Any, row: Mapping[str, Any]) -> bool:
    try:
        return bool(schema.contains(row)[0])
    except Exception:  # a value the check cannot read is outside
        return False
