"""When does a candidate's outcome count as the original's outcome, and by how much does it miss?

One policy object judges every input the same way in every view (sampled, searched, mined,
and in the pytest files written for users), so a counterexample means the same thing everywhere.

Policy, with the original as reference:
- numbers (int, float, numpy scalars; bool excluded): `Tolerance` (`|c - r| <= abs + rel*|r|`);
  error = `|c - r|`.
- vectors / containers (list, tuple, 1-D ndarray are one family; dicts another): same family,
  same length (same keys), element-wise; error = the worst element's.
- labels (str, bool, enums, None, anything else, and any output the schema calls a label):
  exact `==`; error = 1.0 on a mismatch (a 0/1 loss, so label quantiles are miss rates).
- NaN and infinities: `nan="equal"` lets NaN match NaN (`"differ"`: never); +inf matches +inf
  only; finite against non-finite disagrees.
- exceptions: `"type"` (same qualified type), `"type_and_message"`, `"ignore"` (inputs where
  the original raises are skipped). Raising where the other returns always disagrees.

Error of a mismatch that has no size (exception vs value, different exception, wrong type or
length, NaN or inf against a number) is `inf`: such mismatches sort before any numeric one,
and `max_error` says plainly that the candidate can be arbitrarily wrong there.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from ._tolerance import Tolerance
from ._traces import ErrorInfo
from ._validation import bad_argument

EXCEPTION_MODES = ("type", "type_and_message", "ignore")
NAN_MODES = ("equal", "differ")

#: Error of a label mismatch (0/1 loss).
LABEL_ERROR = 1.0
#: Error of a mismatch without a size (exception vs value, wrong type/length, non-finite).
UNBOUNDED_ERROR = math.inf


@dataclass(frozen=True)
class Verdict:
    """The judgement of one input: agree?, error, skipped (ignored original exception), why."""

    agree: bool
    error: float
    skipped: bool = False
    reason: str = ""  # "" when agreeing; else "value", "label", "nan", "shape", "type", "exception", "raised", "returned"

    @property
    def kind(self) -> str:
        """Failure class used to group counterexamples (value/label vs raising mismatches)."""
        return self.reason


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _family(value: Any) -> str:
    if _is_number(value):
        return "number"
    if isinstance(value, np.ndarray):
        return "sequence" if value.ndim >= 1 else ("number" if value.dtype.kind in "iuf" else "label")
    if isinstance(value, (list, tuple)):
        return "sequence"
    if isinstance(value, Mapping):
        return "mapping"
    return "label"


def _numeric_array(value: Any) -> np.ndarray | None:
    """A float array for a flat sequence of numbers, else None."""
    if isinstance(value, np.ndarray):
        return value.astype(float) if value.dtype.kind in "iuf" else None
    if all(_is_number(v) for v in value):
        return np.asarray(value, dtype=float)
    return None


def _safe_equal(a: Any, b: Any) -> bool:
    try:
        result = a == b
        if isinstance(result, np.ndarray):
            return bool(result.all()) and np.shape(a) == np.shape(b)
        return bool(result)
    except Exception:  # odd equality: compare representations
        return repr(a) == repr(b)


@dataclass(frozen=True)
class Comparison:
    """The comparison policy: tolerance for reals, exactness for labels, NaN and exception modes.

    `output_kind="label"` (from the schema) compares numbers exactly too (class ids).
    """

    tolerance: Tolerance = field(default_factory=Tolerance)
    exceptions: str = "type"
    nan: str = "equal"
    output_kind: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.tolerance, Tolerance):
            raise bad_argument("tolerance", self.tolerance, "must be a probes.Tolerance",
                               "Pass Tolerance(abs=..., rel=...)")
        if self.exceptions not in EXCEPTION_MODES:
            raise bad_argument("exceptions", self.exceptions, f"must be one of {EXCEPTION_MODES}",
                               "Use 'type' to require the same exception type")
        if self.nan not in NAN_MODES:
            raise bad_argument("nan", self.nan, f"must be one of {NAN_MODES}",
                               "Use 'equal' to let NaN match NaN")

    # -- values --------------------------------------------------------------------------
    def _numbers(self, ref: np.ndarray, cand: np.ndarray) -> tuple[bool, float, str]:
        if ref.shape != cand.shape:
            return False, UNBOUNDED_ERROR, "shape"
        if ref.size == 0:
            return True, 0.0, ""
        if self.output_kind == "label":
            equal = (ref == cand) | (np.isnan(ref) & np.isnan(cand) & (self.nan == "equal"))
            return (True, 0.0, "") if bool(equal.all()) else (False, LABEL_ERROR, "label")
        ref_nan, cand_nan = np.isnan(ref), np.isnan(cand)
        finite = np.isfinite(ref) & np.isfinite(cand)
        both_nan = ref_nan & cand_nan
        same_inf = np.isinf(ref) & (ref == cand)
        special_ok = same_inf | (both_nan if self.nan == "equal" else np.zeros_like(both_nan))
        if not bool(np.all(finite | special_ok)):
            return False, UNBOUNDED_ERROR, "nan" if bool((ref_nan | cand_nan).any()) else "value"
        with np.errstate(invalid="ignore"):
            diff = np.where(finite, np.abs(cand - ref), 0.0)
            bound = self.tolerance.abs + self.tolerance.rel * np.abs(np.where(finite, ref, 0.0))
        error = float(diff.max())
        return (True, error, "") if bool(np.all(diff <= bound)) else (False, error, "value")

    def _values(self, expected: Any, actual: Any) -> tuple[bool, float, str]:
        fam_e, fam_a = _family(expected), _family(actual)
        if fam_e != fam_a:
            if fam_e == "label" and self.output_kind == "label" and _safe_equal(expected, actual):
                return True, 0.0, ""
            return False, UNBOUNDED_ERROR, "type"
        if fam_e == "number":
            return self._numbers(np.asarray(float(expected)), np.asarray(float(actual)))
        if fam_e == "label":
            same = _safe_equal(expected, actual) and (
                not isinstance(expected, enum.Enum) or type(expected) is type(actual))
            return (True, 0.0, "") if same else (False, LABEL_ERROR, "label")
        if fam_e == "mapping":
            if set(expected) != set(actual):
                return False, UNBOUNDED_ERROR, "shape"
            worst: tuple[bool, float, str] = (True, 0.0, "")
            for key in expected:
                result = self._values(expected[key], actual[key])
                worst = _worse(worst, result)
            return worst
        # sequences
        if len(expected) != len(actual):
            return False, UNBOUNDED_ERROR, "shape"
        ref, cand = _numeric_array(expected), _numeric_array(actual)
        if ref is not None and cand is not None:
            return self._numbers(ref, cand)
        worst = (True, 0.0, "")
        for e, a in zip(expected, actual):
            worst = _worse(worst, self._values(e, a))
        return worst

    # -- outcomes ------------------------------------------------------------------------
    def compare(self, expected: Any, actual: Any, *, expected_error: ErrorInfo | None = None,
                actual_error: ErrorInfo | None = None) -> Verdict:
        """Judge one input: the original's outcome (`expected` or `expected_error`) against the
        candidate's (`actual` or `actual_error`)."""
        if expected_error is not None:
            if self.exceptions == "ignore":
                return Verdict(True, 0.0, skipped=True)
            if actual_error is None:
                return Verdict(False, UNBOUNDED_ERROR, reason="returned")
            same = expected_error.type == actual_error.type
            if self.exceptions == "type_and_message":
                same = same and expected_error.message == actual_error.message
            return Verdict(True, 0.0) if same else Verdict(False, UNBOUNDED_ERROR, reason="exception")
        if actual_error is not None:
            return Verdict(False, UNBOUNDED_ERROR, reason="raised")
        agree, error, reason = self._values(expected, actual)
        return Verdict(agree, error, reason=reason)

    def check(self, original: Callable[..., Any], candidate: Callable[..., Any],
              kwargs: Mapping[str, Any]) -> Verdict:
        """Call both on `kwargs` and judge (the original is called first)."""
        expected, expected_error = call(original, kwargs)
        actual, actual_error = call(candidate, kwargs)
        return self.compare(expected, actual, expected_error=expected_error, actual_error=actual_error)

    def assert_agree(self, original: Callable[..., Any], candidate: Callable[..., Any],
                     kwargs: Mapping[str, Any]) -> None:
        """Raise AssertionError describing the call when the candidate disagrees (for pytest)."""
        expected, expected_error = call(original, kwargs)
        actual, actual_error = call(candidate, kwargs)
        verdict = self.compare(expected, actual, expected_error=expected_error, actual_error=actual_error)
        if not verdict.agree:
            args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
            raise AssertionError(
                f"candidate disagrees ({verdict.reason}, error={verdict.error!r}) on fn({args}):\n"
                f"  original:  {describe(expected, expected_error)}\n"
                f"  candidate: {describe(actual, actual_error)}\n"
                f"  policy: {self.describe()}"
            )

    def describe(self) -> str:
        """One line stating the policy (for reports)."""
        return (f"reals within abs={self.tolerance.abs:g} + rel={self.tolerance.rel:g}*|original|; "
                f"labels exact; NaN {'equals NaN' if self.nan == 'equal' else 'never agrees'}; "
                f"exceptions: {self.exceptions}")

    def to_dict(self) -> dict[str, Any]:
        return {"tolerance": self.tolerance.to_dict(), "exceptions": self.exceptions, "nan": self.nan,
                "output_kind": self.output_kind}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Comparison":
        return cls(Tolerance.from_dict(data.get("tolerance", {})), data.get("exceptions", "type"),
                   data.get("nan", "equal"), data.get("output_kind", ""))


def _worse(a: tuple[bool, float, str], b: tuple[bool, float, str]) -> tuple[bool, float, str]:
    """Combine element verdicts: disagreement wins, then the larger error."""
    if a[0] != b[0]:
        return a if not a[0] else b
    return a if a[1] >= b[1] else b


def call(fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> tuple[Any, ErrorInfo | None]:
    """`fn(**kwargs)` as an outcome: (output, None) or (None, ErrorInfo)."""
    try:
        return fn(**kwargs), None
    except Exception as exc:  # the outcome under test, kept as data
        return None, ErrorInfo.from_exception(exc)


def describe(value: Any, error: ErrorInfo | None) -> str:
    """An outcome in one line: the repr of the value, or `raises Type('message')`."""
    if error is not None:
        return f"raises {error.type}({error.message!r})"
    return repr(value)
