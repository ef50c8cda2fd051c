"""The guarded swap measured on fresh inputs: how many calls it serves, and how many of the
answers it serves are wrong.

The guard's certificate speaks for inputs like its calibration rows; these helpers check the
claim on production inputs nothing in `fit` saw. The served rows and answers come from the
real guarded swap (`Swapped.predict_batch`, or call by call for the deprecated spread gate,
which has no batch form); each served answer is judged against the original's answer with
`replace._fidelity.compare`, the rule the calibration labels with. The original is wrapped
in a cache (`Original`), so the rows the swap hands back to it, and the truth for the served
rows, cost one call per distinct input however many gates are measured.

Shared by `bench/guard.py` (every gate and rate) and the case-study flow (one column pair).
"""

from __future__ import annotations

import functools
import inspect
import math
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from probes import ErrorInfo, Tolerance

#: one-sided test level: a served error "significantly above" the rate has p < this
ALPHA = 0.05


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return tuple(value.tolist())
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    return value


class Original:
    """`fn` behind a cache keyed by its arguments: the same answers, each distinct input called
    once. `.function` has `fn`'s signature (hand it to `swap`); `.outcome(kwargs)` gives the
    answer as data, `(value, ErrorInfo | None)`; `.calls` and `.seconds` count real calls."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self._signature = inspect.signature(fn)
        self._cache: dict[Any, tuple[Any, BaseException | None, ErrorInfo | None]] = {}
        self.calls = 0
        self.seconds = 0.0

        @functools.wraps(fn)
        def function(*args: Any, **kwargs: Any) -> Any:
            if args:
                kwargs = dict(self._signature.bind(*args, **kwargs).arguments)
            value, exc, _ = self._get(kwargs)
            if exc is not None:
                raise exc
            return value

        self.function = function

    @staticmethod
    def _key(kwargs: Mapping[str, Any]) -> Any:
        return tuple(sorted((k, _plain(v)) for k, v in kwargs.items()))

    def _get(self, kwargs: Mapping[str, Any]) -> tuple[Any, BaseException | None, ErrorInfo | None]:
        key = self._key(kwargs)
        hit = self._cache.get(key)
        if hit is None:
            start = time.perf_counter()
            try:
                hit = (self.fn(**{k: _plain(v) if isinstance(v, np.generic) else v for k, v in kwargs.items()}),
                       None, None)
            except Exception as exc:  # the original's raise is its answer
                hit = (None, exc, ErrorInfo.from_exception(exc))
            self.seconds += time.perf_counter() - start
            self.calls += 1
            self._cache[key] = hit
        return hit

    def prefill(self, rows: Sequence[Mapping[str, Any]], outputs: Sequence[Any],
                errors: Sequence[ErrorInfo | None]) -> None:
        """Known answers (rows the original already labelled, e.g. calibration rows): later
        calls of these rows cost nothing; a known raise is raised again as its class."""
        for kwargs, value, error in zip(rows, outputs, errors):
            exc = None
            if error is not None:
                try:
                    exc = error.exception_class()(error.message)
                except Exception:  # an exception class with another constructor
                    exc = RuntimeError(f"{error.type}: {error.message}")
            self._cache.setdefault(self._key(kwargs), (None if error is not None else value, exc, error))

    def outcome(self, kwargs: Mapping[str, Any]) -> tuple[Any, ErrorInfo | None]:
        value, _, error = self._get(kwargs)
        return value, error

    def outcomes(self, rows: Sequence[Mapping[str, Any]]) -> tuple[list[Any], list[ErrorInfo | None]]:
        pairs = [self.outcome(row) for row in rows]
        return [p[0] for p in pairs], [p[1] for p in pairs]

    @property
    def per_call_s(self) -> float | None:
        return self.seconds / self.calls if self.calls else None


def p_value_above(wrong: int, served: int, rate: float) -> float:
    """One-sided binomial p-value of "served error > rate": P(X >= wrong) for X ~ Bin(served,
    rate). 1.0 with no wrong answer (or nothing served)."""
    if served <= 0 or wrong <= 0:
        return 1.0
    from scipy.stats import binom

    return float(binom.sf(wrong - 1, served, rate))


def tally(served: np.ndarray, wrong_served: np.ndarray, rate: float, *, alpha: float = ALPHA) -> dict[str, Any]:
    """Counts of one gate on `len(served)` inputs: `served` marks the served rows, `wrong_served`
    (one flag per served row, in row order) which served answers were wrong; the test of
    "served error > rate" at level `alpha`, and a one-sided 95% upper bound on the served error."""
    served = np.asarray(served, dtype=bool)
    wrong_served = np.asarray(wrong_served, dtype=bool)
    n = int(served.size)
    n_served = int(served.sum())
    if wrong_served.size != n_served:
        raise ValueError(f"wrong_served has {wrong_served.size} flags for {n_served} served rows")
    return counts(n, n_served, int(wrong_served.sum()), rate, alpha=alpha)


def counts(n: int, served: int, wrong: int, rate: float, *, alpha: float = ALPHA) -> dict[str, Any]:
    """`tally` from the counts alone (the same served rows judged against another rate)."""
    from replace._calibration import binomial_upper

    p = p_value_above(wrong, served, rate)
    return {"n_fresh": n, "served": served, "coverage": served / n if n else math.nan, "wrong": wrong,
            "served_error": wrong / served if served else math.nan, "max_error_rate": rate,
            "p_value": p, "significantly_above": bool(p < alpha),
            "upper_95": binomial_upper(wrong, served, 0.05)}


def judge(kind: str, ref_outputs: Sequence[Any], ref_errors: Sequence[ErrorInfo | None], outputs: Sequence[Any],
          errors: Sequence[ErrorInfo | None], tolerance: Tolerance) -> np.ndarray:
    """Which answers are wrong against the original's (calibration's rule: outside the
    tolerance, another label, a value for a raise or a raise for a value, another exception)."""
    from replace._fidelity import compare

    if not len(ref_outputs):
        return np.zeros(0, dtype=bool)
    return ~compare(kind, list(ref_outputs), list(ref_errors), outputs, list(errors), tolerance)["agree"]


def take(columns: Mapping[str, Any], rows: np.ndarray) -> dict[str, Any]:
    return {k: (v[rows] if isinstance(v, np.ndarray) else [v[int(i)] for i in rows]) for k, v in columns.items()}


def measure_batch(swapped: Any, columns: Mapping[str, Any], truth: tuple[Sequence[Any], Sequence[ErrorInfo | None]],
                  rate: float) -> dict[str, Any]:
    """One certified guarded swap over `columns` (its batch form): served rows and answers from
    `swapped.predict_batch`, the exception a served answer raises from the guard's own
    evaluation of those rows (the batch gives NaN/None there), judged against `truth` (the
    original's outputs and errors, one per row). `reference_mismatch` counts served rows where
    the batch's answer or served flag differs from that evaluation (expected 0)."""
    from replace._calibration import output_kind

    surrogate = swapped.surrogate
    outputs, served = swapped.predict_batch(columns)
    at = np.flatnonzero(served)
    answers: list[Any] = []
    errors: list[ErrorInfo | None] = []
    mismatch = 0
    if at.size:
        details, ok = swapped.guard.batch(take(columns, at))
        mismatch += int((~ok).sum())
        ref = np.asarray(details.outputs)
        for j, i in enumerate(at):
            if details.raises[j]:
                answers.append(None)
                errors.append(details.errors[j])
                continue
            value = outputs[i]
            answers.append(value)
            errors.append(None)
            try:
                same = bool(np.all(np.asarray(value) == np.asarray(ref[j]))) or bool(
                    np.allclose(np.asarray(value, dtype=float), np.asarray(ref[j], dtype=float), rtol=1e-9, atol=0))
            except (TypeError, ValueError):
                same = value == ref[j]
            mismatch += int(not same)
    ref_out = [truth[0][i] for i in at]
    ref_err = [truth[1][i] for i in at]
    wrong = judge(output_kind(surrogate), ref_out, ref_err, answers, errors, surrogate.tolerance)
    return {**tally(served, wrong, rate), "reference_mismatch": mismatch}


def measure_calls(swapped: Any, rows: Sequence[Mapping[str, Any]],
                  truth: tuple[Sequence[Any], Sequence[ErrorInfo | None]], rate: float) -> dict[str, Any]:
    """A guarded swap called once per row (the deprecated spread gate has no batch form): a row
    is served when the swap's served counter moved; its answer (or raise) is judged against
    `truth`. The same counts as `measure_batch`."""
    from replace._calibration import output_kind

    surrogate = swapped.surrogate
    served = np.zeros(len(rows), dtype=bool)
    answers: list[Any] = []
    errors: list[ErrorInfo | None] = []
    for i, kwargs in enumerate(rows):
        before = swapped.stats.served_by_surrogate
        try:
            value, error = swapped(**kwargs), None
        except Exception as exc:  # a served raise is an answer too
            value, error = None, ErrorInfo.from_exception(exc)
        if swapped.stats.served_by_surrogate > before:
            served[i] = True
            answers.append(value)
            errors.append(error)
    at = np.flatnonzero(served)
    wrong = judge(output_kind(surrogate), [truth[0][i] for i in at], [truth[1][i] for i in at], answers, errors,
                  surrogate.tolerance)
    return tally(served, wrong, rate)


def fresh_guarded(fn: Callable[..., Any], surrogate: Any, rows: Sequence[Mapping[str, Any]], columns: Mapping[str, Any],
                  *, max_error_rate: float = 0.01, confidence: float = 0.95,
                  original: Original | None = None) -> dict[str, Any]:
    """The default certified guard (`swap(fn, surrogate, "guarded", max_error_rate=...)`) on
    fresh `rows` (and the same rows as `columns`): coverage, served error and its test, and
    the certificate's own numbers on the calibration rows."""
    import warnings

    from replace import swap

    original = original or Original(fn)
    truth = original.outcomes(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "serves nothing" is in the numbers
        swapped = swap(original.function, surrogate, "guarded", max_error_rate=max_error_rate, confidence=confidence)
    result = measure_batch(swapped, columns, truth, max_error_rate)
    cert = swapped.guard.certificate
    result["certificate"] = {k: cert.to_dict()[k] for k in ("source", "n", "served", "coverage", "served_error",
                                                            "upper_bound", "threshold", "reason")}
    result["confidence"] = confidence
    result["fallbacks"] = dict(swapped.stats.fallbacks)
    return result
