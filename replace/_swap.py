"""Put a surrogate in the place of the legacy function, in one of three modes.

- "surrogate": the surrogate answers every call; an input outside the trained domain raises
  `OutOfDomainError` instead of producing a silent number.
- "shadow": the original answers (its exact object, its exceptions); the surrogate runs beside
  it on a share of calls and disagreements are kept, logged, sent to a callback, or recorded
  (GitHub Scientist's pattern), so a surrogate is judged on live traffic before it serves.
- "guarded": the surrogate answers only inside the trained domain and where its risk score is
  at most a threshold certified on calibration rows: with probability at least `confidence`,
  the error rate of the answers it serves is at most `max_error_rate` (`_guard`,
  `_calibration`); elsewhere the original is called. A share of served calls can be audited
  against the original, tripping the guard when the served error rises (`_audit`).
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
import warnings
from typing import Any, Callable

import numpy as np

from probes import InvalidArgument, Tolerance
from probes._identity import function_name
from probes._store import TraceStore, parse_uri
from probes._validation import bad_argument, check_flag, check_number, check_seed

from ._spread_gate import GuardCalibration, calibrate_guard
from ._swap_results import FALLBACK_REASONS, Disagreement, SwapStats
from ._columns import plain_value
from ._swapped import MODES, Swapped, _answer, _kwargs_call

__all__ = ["MODES", "FALLBACK_REASONS", "AsyncSwapped", "Disagreement", "GuardCalibration", "SwapStats", "Swapped",
           "calibrate_guard", "swap"]

logger = logging.getLogger("replace.swap")


class AsyncSwapped(Swapped):
    """`Swapped` for a coroutine function: awaits the original where it answers; the surrogate
    itself runs synchronously (microseconds, no I/O)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        import asyncio.coroutines

        self._is_coroutine = getattr(asyncio.coroutines, "_is_coroutine", None)  # asyncio.iscoroutinefunction

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if self.mode == "surrogate":
            return self._call_surrogate(args, kwargs)
        if self.mode == "guarded":
            bound = self._bind(*args, **kwargs)
            prediction, reason, elapsed = self._guard(bound)
            if not reason:
                if self._audits():
                    start = time.perf_counter()
                    try:
                        result = await self.original(*args, **kwargs)
                    except Exception as exc:
                        self._audit_done(bound, prediction, None, exc, time.perf_counter() - start, elapsed)
                        raise
                    self._audit_done(bound, prediction, result, None, time.perf_counter() - start, elapsed)
                    return result
                self._count_served(elapsed)
                return _answer(prediction)
            start = time.perf_counter()
            try:
                return await self.original(*args, **kwargs)
            finally:
                self._count_fallback(reason, time.perf_counter() - start, elapsed)
        sampled = self._sampled()
        start = time.perf_counter()
        try:
            result = await self.original(*args, **kwargs)
        except Exception as exc:
            self._shadow_done(args, kwargs, sampled, None, exc, time.perf_counter() - start)
            raise
        self._shadow_done(args, kwargs, sampled, result, None, time.perf_counter() - start)
        return result


    async def predict_batch(self, columns: Any) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[override]
        """`Swapped.predict_batch`, awaiting the original for the rows it answers."""
        cols, outputs, served, original, audited = self._batch_plan(columns)
        names = self._schema.names
        call = _kwargs_call(self.original)
        answers: dict[int, tuple[Any, BaseException | None]] = {}
        start = time.perf_counter()
        for i in [i for i, _ in original] + [i for i, _ in audited]:
            try:
                answers[i] = (await call({k: plain_value(cols[k][i]) for k in names}), None)
            except Exception as exc:  # the original's raise is its answer for that row
                answers[i] = (None, exc)
        return self._batch_fill(cols, outputs, served, answers, original, audited, time.perf_counter() - start)


# -- the entry point ---------------------------------------------------------------------------
def swap(fn: Callable[..., Any], surrogate: Any, mode: str = "surrogate", *, max_error_rate: float = 0.01,
         confidence: float = 0.95, audit_rate: float = 0.0, calibration_inputs: Any = None,
         calibrate_on: str | None = None, false_alarm: float = 0.01, shadow_rate: float = 1.0,
         tolerance: Tolerance | None = None, on_disagreement: Callable[[Disagreement], Any] | None = None,
         seed: int = 0, record_to: Any = None, label_spread: float | None = None, keep: int = 100,
         log: bool = False, spread_scale: float | None = None) -> Swapped:
    """Stand `surrogate` in for `fn` (same name, signature, docstring, `__wrapped__`).

    `mode` is "surrogate" (it answers; inputs outside its domain raise `OutOfDomainError`),
    "shadow" (the original answers, the surrogate is compared on a `shadow_rate` share of calls
    drawn with `seed`), or "guarded".

    Guarded: the surrogate answers a call only inside its domain and where the call's risk score
    is at most a threshold certified on calibration rows; otherwise the original answers. The
    guarantee: with probability at least `confidence` over the calibration sample, the share of
    served calls whose answer is wrong (outside the tolerance, another label, a value where the
    original raises, a raise where it returns) is at most `max_error_rate`, for inputs
    distributed like the calibration rows (by default the production-like rows `fit` labelled
    around the traces; `calibrate_on="domain"` for its whole-domain rows;
    `calibration_inputs=rows` labels your rows by calling `fn`). With too few rows to certify
    anything it serves nothing and warns, never a guess. `audit_rate`: share of served calls
    also answered by the original (the caller gets the original's answer) and compared; when
    the audited served error is significantly above `max_error_rate` (a test whose chance of
    ever tripping on a stream meeting the rate is at most `false_alarm`), the guard trips: it
    stops serving, warns once, sets `.stats.tripped`, until `.recalibrate(...)` or `.reset()`.
    `.stats` also counts inputs outside the calibration rows' support (drift).
    Deprecated: `spread_scale` and `label_spread` (and `calibrate_guard`) select the old
    ensemble-spread gate, which has no guarantee; they warn.

    `tolerance` defaults to the surrogate's. Shadow disagreements: the
    latest `keep` are kept in `.disagreements`, each is passed to `on_disagreement`, logged
    when `log`, and written to the TraceStore `record_to` (a store or URI) as the original's
    trace, ready to retrain on. Swap a bound method, not the function inside a class body.
    A coroutine function gives an `AsyncSwapped`, awaited like the original.
    """
    if not callable(fn):
        raise bad_argument("fn", fn, "must be callable", "Pass the legacy function itself")
    if isinstance(mode, str):
        mode = mode.lower()
    if mode not in MODES:
        raise bad_argument("mode", mode, f"must be one of {', '.join(map(repr, MODES))}",
                           "Use 'shadow' to compare first, 'guarded' to serve safely, 'surrogate' to serve always")
    if not (hasattr(surrogate, "predict_one") and hasattr(surrogate, "schema")
            and hasattr(getattr(surrogate, "schema"), "contains")):
        raise bad_argument("surrogate", surrogate, "is not a surrogate (needs .predict_one and .schema)",
                           "Pass the result of replace.fit(fn, ...) or replace.Surrogate.load(path)")
    check_number("shadow_rate", shadow_rate, low=0.0, high=1.0, fix="Pass a share of calls in [0, 1], e.g. 0.1")
    legacy = spread_scale is not None or label_spread is not None
    if legacy:
        warnings.warn("swap(spread_scale=..., label_spread=...) selects the old ensemble-spread gate, which "
                      "guarantees nothing about the answers it serves; it is deprecated. Use "
                      "max_error_rate=... and confidence=... instead", DeprecationWarning, stacklevel=2)
    label_spread = 0.0 if label_spread is None else label_spread
    spread_scale = 1.0 if spread_scale is None else spread_scale
    check_number("label_spread", label_spread, low=0.0, high=1.0,
                 fix="Pass 0.0 to serve labels only when the ensemble is unanimous")
    check_number("audit_rate", audit_rate, low=0.0, high=1.0,
                 fix="Pass the share of served calls to re-check against the original, e.g. 0.05")
    check_number("max_error_rate", max_error_rate, low=0.0, low_inclusive=False, high=1.0,
                 fix="Pass the highest share of wrong served answers you accept, e.g. 0.01")
    check_number("confidence", confidence, low=0.5, high=1.0, fix="Pass e.g. 0.95 or 0.99")
    check_number("false_alarm", false_alarm, low=0.0, low_inclusive=False, high=1.0,
                 fix="Pass the accepted chance that the audit ever trips on a guard meeting its rate, e.g. 0.01")
    check_seed("seed", seed)
    check_flag("log", log, fix="Pass log=True to log each disagreement")
    if record_to is not None and not isinstance(record_to, TraceStore):
        parse_uri(record_to, "record_to")  # syntax only: the store is opened by the swap
    check_number("spread_scale", spread_scale, low=0.0, allow_inf=True, fix="Pass 1.0 (the tolerance bound itself) or larger to be stricter")
    if isinstance(keep, bool) or not isinstance(keep, (int, np.integer)) or keep < 0:
        raise bad_argument("keep", keep, "must be an integer >= 0", "Pass how many recent disagreements to keep")
    if on_disagreement is not None and not callable(on_disagreement):
        raise bad_argument("on_disagreement", on_disagreement, "must be callable or None",
                           "Pass a function taking one Disagreement")
    if tolerance is None:
        tolerance = getattr(surrogate, "tolerance", None)
        if tolerance is None:
            if mode != "surrogate":
                raise bad_argument("tolerance", None, f"mode={mode!r} needs a tolerance and the surrogate has none",
                                   "Pass tolerance=Tolerance(abs=..., rel=...)")
            tolerance = Tolerance()
    if not isinstance(tolerance, Tolerance):
        raise bad_argument("tolerance", tolerance, "must be a probes.Tolerance",
                           "Pass tolerance=Tolerance(abs=..., rel=...)")
    if mode == "guarded" and legacy and getattr(surrogate, "ensemble_size", 2) == 1:
        logger.warning("swap(%s, mode='guarded'): the surrogate has a single member, so it has no "
                       "ensemble spread; only the domain check guards it. Fit with an ensemble for a "
                       "confidence check", function_name(fn))
    guard_factory = None
    if not legacy:
        from ._guard import CertifiedGuard

        guard_factory = functools.partial(
            CertifiedGuard, fn, surrogate, max_error_rate=max_error_rate, confidence=confidence,
            audit_rate=audit_rate, false_alarm=false_alarm, seed=int(seed), calibration_inputs=calibration_inputs,
            calibrate_on=calibrate_on)
    try:
        kind = AsyncSwapped if inspect.iscoroutinefunction(inspect.unwrap(fn)) else Swapped
        return kind(fn, surrogate, mode, shadow_rate=shadow_rate, tolerance=tolerance,
                       on_disagreement=on_disagreement, seed=int(seed), record_to=record_to,
                       label_spread=label_spread, keep=int(keep), log=bool(log), spread_scale=float(spread_scale),
                       guard_factory=guard_factory)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, InvalidArgument):
            raise
        raise bad_argument("fn", fn, f"its signature cannot be read ({exc})",
                           "Wrap it in a function with named parameters") from exc
