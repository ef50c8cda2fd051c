"""The swapped callable: `Swapped` answers each call by its mode and keeps the counts.

`replace._swap.swap` builds it (and `AsyncSwapped` for coroutine functions); see that module
for the three modes and the guarded mode's guarantee.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import random
import threading
import time
from collections import deque
from typing import Any, Callable

import numpy as np

from probes import ErrorInfo, OutOfDomainError, Tolerance
from probes._identity import function_name
from probes._validation import bad_argument

from ._binding import _make_binder, _make_domain_check
from ._columns import as_columns, plain_value, take_rows
from ._disagreement_log import _StoreWriter
from ._fastpath import domain_mask
from ._predictions import OnePrediction
from ._swap_results import FALLBACK_REASONS, Disagreement, SwapStats

__all__ = ["MODES", "Swapped"]

MODES = ("surrogate", "shadow", "guarded")

logger = logging.getLogger("replace.swap")


# -- the swapped callable ----------------------------------------------------------------------
class Swapped:
    """The callable `swap` returns: the legacy signature, answered according to `mode`.

    Counters are read with `.stats` (a consistent snapshot) and cleared with `.reset_stats()`.
    """

    def __init__(self, fn: Callable[..., Any], surrogate: Any, mode: str, *, shadow_rate: float,
                 tolerance: Tolerance, on_disagreement: Callable[[Disagreement], Any] | None, seed: int,
                 record_to: Any, label_spread: float, keep: int, log: bool, spread_scale: float = 1.0,
                 guard_factory: Callable[[], Any] | None = None) -> None:
        functools.update_wrapper(self, fn)
        self.original = fn
        self.surrogate = surrogate
        self._mode = mode
        self.shadow_rate = float(shadow_rate)
        self.tolerance = tolerance
        self.label_spread = float(label_spread)
        self.spread_scale = float(spread_scale)
        self.on_disagreement = on_disagreement
        self.log = log
        #: the certified gate (`_guard.CertifiedGuard`), built when the mode first becomes
        #: "guarded"; None before that and with the deprecated spread gate
        self._guard_factory = guard_factory
        self.guard = guard_factory() if mode == "guarded" and guard_factory is not None else None
        self.seed = seed
        self._bind = _make_binder(fn)
        self._schema = surrogate.schema
        try:
            names = list(inspect.signature(fn).parameters)
            self._inside = _make_domain_check(self._schema, names)
        except (TypeError, ValueError):
            self._inside = None
        self._predict = surrogate.predict_one
        output = getattr(self._schema, "output", None)
        self._label_output = getattr(output, "kind", "real") == "label"
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._recent: deque[Disagreement] = deque(maxlen=keep)
        self._writer = None
        if record_to is not None:
            from probes._store import TraceStore

            store = TraceStore.open(record_to)
            self._writer = _StoreWriter(store, fn, self._hook_failed)
        self._call = self._dispatch(mode)
        self._reset()

    def _dispatch(self, mode: str) -> Callable[[tuple[Any, ...], dict[str, Any]], Any]:
        return {"surrogate": self._call_surrogate, "shadow": self._call_shadow, "guarded": self._call_guarded}[mode]

    @property
    def mode(self) -> str:
        """"surrogate", "shadow" or "guarded"; assign to move along a rollout (counters are kept)."""
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        mode = value.lower() if isinstance(value, str) else value
        if mode not in MODES:
            raise bad_argument("mode", value, f"must be one of {', '.join(map(repr, MODES))}")
        if mode == "guarded" and self.guard is None and self._guard_factory is not None:
            self.guard = self._guard_factory()
        with self._lock:
            self._mode, self._call = mode, self._dispatch(mode)

    # -- counters ---------------------------------------------------------------------------
    def _reset(self) -> None:
        self._calls = self._served = self._by_original = self._rejected = 0
        self._fallbacks = {reason: 0 for reason in FALLBACK_REASONS}
        self._comparisons = self._disagreements = self._hook_errors = 0
        self._audited = self._audit_wrong = 0
        self._t_orig = self._t_sur = 0.0
        self._n_orig = self._n_sur = 0

    def reset_stats(self) -> None:
        """Zero every counter and forget the kept disagreements (e.g. after retraining); a
        tripped guard stays tripped (see `reset`)."""
        with self._lock:
            self._reset()
            self._recent.clear()

    def reset(self) -> None:
        """`reset_stats`, and a tripped guard serves again (the audit's evidence and the drift
        counts start afresh). Do this after fixing what made it trip."""
        self.reset_stats()
        if self.guard is not None:
            self.guard.audit.reset()
            if self.guard.drift is not None:
                self.guard.drift.reset()

    def recalibrate(self, calibration_inputs: Any = None, *, max_error_rate: float | None = None,
                    confidence: float | None = None) -> Any:
        """Certify the guard again: on `calibration_inputs` (kwargs dicts or columns, labelled by
        calling the original), or on the surrogate's stored rows at a new `max_error_rate` or
        `confidence`. Clears a trip. Returns the new `Certificate`."""
        if self.guard is None:
            raise bad_argument("mode", self.mode, "recalibrate needs a guarded swap with the certified gate",
                               "Use swap(fn, surrogate, mode='guarded') without spread_scale/label_spread")
        certificate = self.guard.recalibrate(calibration_inputs, max_error_rate=max_error_rate,
                                             confidence=confidence)
        if self.guard.drift is not None:
            self.guard.drift.reset()
        return certificate

    @property
    def stats(self) -> SwapStats:
        guard = self.guard
        extra: dict[str, Any] = {}
        if guard is not None:
            extra = {"audit_interval": guard.audit.interval(), "tripped": guard.audit.tripped,
                     "drift": guard.drift.to_dict() if guard.drift is not None else None,
                     "certificate": guard.certificate.to_dict()}
        with self._lock:
            return SwapStats(
                mode=self.mode, calls=self._calls, served_by_surrogate=self._served,
                served_by_original=self._by_original, fallbacks=dict(self._fallbacks),
                rejected=self._rejected, shadow_comparisons=self._comparisons,
                disagreements=self._disagreements, original_time_s=self._t_orig, original_timed=self._n_orig,
                surrogate_time_s=self._t_sur, surrogate_timed=self._n_sur, hook_errors=self._hook_errors,
                audited=self._audited, audit_wrong=self._audit_wrong, **extra,
            )

    @property
    def disagreements(self) -> list[Disagreement]:
        """The latest disagreements (at most `keep`), oldest first."""
        with self._lock:
            return list(self._recent)

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until recorded disagreements are written to `record_to`; False on timeout."""
        return True if self._writer is None else self._writer.flush(timeout)

    def _hook_failed(self, exc: BaseException) -> None:
        with self._lock:
            self._hook_errors += 1
        logger.warning("swap(%s): disagreement hook failed: %r", function_name(self.original), exc)

    def __repr__(self) -> str:
        return f"<swapped {function_name(self.original)} mode={self.mode!r}>"

    # -- calls ------------------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(args, kwargs)

    def _outside(self, bound: dict[str, Any]) -> str:
        """'' when `bound` is inside the trained domain, else the reason."""
        inside = self._inside
        if inside is not None:
            try:
                if inside(bound):
                    return ""
            except Exception:  # the exact check below decides (and names the value)
                pass
        try:
            ok, reason = self._schema.contains(bound)
        except Exception as exc:  # a value the check itself chokes on (e.g. NaN for an integer)
            name = next((f.name for f in getattr(self._schema, "fields", ()) if _check_fails(f, bound)), "")
            value = f"{name}={bound[name]!r} " if name else ""
            return f"{value}cannot be checked ({type(exc).__name__}: {exc})"
        return "" if ok else (reason or "outside the trained domain")

    def _domain_message(self, bound: dict[str, Any], reason: str) -> str:
        where = ""
        for item in getattr(self._schema, "fields", ()):
            if item.name in bound and _check_fails(item, bound):
                where = f" (trained on {item.name}: {_domain_text(item)})"
                break
        return (f"{function_name(self.original)}: {reason}{where} : the surrogate only answers inside the "
                f"domain it was trained on. Pass an input inside it, or use swap(..., mode='guarded') to "
                f"fall back to the original there")

    def _call_surrogate(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        bound = self._bind(*args, **kwargs)  # a bad arity raises the original's TypeError
        reason = self._outside(bound)
        if reason:
            with self._lock:
                self._calls += 1
                self._rejected += 1
            raise OutOfDomainError(self._domain_message(bound, reason))
        start = time.perf_counter()
        prediction = self._predict(bound)
        elapsed = time.perf_counter() - start
        with self._lock:
            self._calls += 1
            self._served += 1
            self._t_sur += elapsed
            self._n_sur += 1
        return _answer(prediction)

    def _guard(self, bound: dict[str, Any]) -> tuple[Any, str, float | None]:
        """(prediction, "", elapsed) when the surrogate may answer, else (None, reason, elapsed)."""
        guard = self.guard
        if guard is not None and guard.audit.tripped:
            return None, "tripped", None
        if self._outside(bound):
            return None, "out_of_domain", None
        if guard is not None and guard.drift is not None:
            guard.drift.observe(bound)
        start = time.perf_counter()
        try:
            if guard is not None:
                prediction, score = guard.evaluate_one(bound)
            else:
                prediction = self._predict(bound)
        except Exception as exc:  # a broken surrogate must not break the caller: fall back
            logger.debug("swap(%s): surrogate failed: %r", function_name(self.original), exc)
            return None, "surrogate_error", time.perf_counter() - start
        elapsed = time.perf_counter() - start
        if not (guard.serves(score) if guard is not None else self._confident(prediction)):
            return None, "uncertain", elapsed
        return prediction, "", elapsed

    def _audits(self) -> bool:
        guard = self.guard
        return guard is not None and guard.audit.should_audit()

    def _audit_done(self, bound: dict[str, Any], prediction: Any, result: Any, exc: BaseException | None,
                    spent: float, elapsed: float | None) -> None:
        """Count an audited served call: the caller got the original's answer; the surrogate's
        would-be answer is compared with it and fed to the live audit."""
        wrong = self._compare(bound, result, exc, prediction) is not None
        with self._lock:
            self._calls += 1
            self._by_original += 1
            self._audited += 1
            self._audit_wrong += int(wrong)
            self._t_orig += spent
            self._n_orig += 1
            if elapsed is not None:
                self._t_sur += elapsed
                self._n_sur += 1
        self.guard.observe_audit(wrong)  # type: ignore[union-attr]

    def _count_served(self, elapsed: float | None) -> None:
        with self._lock:
            self._calls += 1
            self._served += 1
            self._t_sur += elapsed or 0.0
            self._n_sur += 1

    def _count_fallback(self, reason: str, spent: float, elapsed: float | None) -> None:
        with self._lock:
            self._calls += 1
            self._by_original += 1
            self._fallbacks[reason] += 1
            self._t_orig += spent
            self._n_orig += 1
            if elapsed is not None:
                self._t_sur += elapsed
                self._n_sur += 1

    def _call_guarded(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        bound = self._bind(*args, **kwargs)
        prediction, reason, elapsed = self._guard(bound)
        if not reason:
            if self._audits():
                start = time.perf_counter()
                try:
                    result = self.original(*args, **kwargs)
                except Exception as exc:
                    self._audit_done(bound, prediction, None, exc, time.perf_counter() - start, elapsed)
                    raise
                self._audit_done(bound, prediction, result, None, time.perf_counter() - start, elapsed)
                return result
            self._count_served(elapsed)
            return _answer(prediction)
        start = time.perf_counter()
        try:
            return self.original(*args, **kwargs)
        finally:
            self._count_fallback(reason, time.perf_counter() - start, elapsed)

    # -- batches ----------------------------------------------------------------------------
    def _batch_plan(self, columns: Any) -> tuple[dict[str, Any], np.ndarray, np.ndarray, list[tuple[int, str]], list[tuple[int, Any]]]:
        """(columns, outputs with the served rows filled, served mask, rows for the original with
        the reason, audited rows with the surrogate's would-be prediction)."""
        if self.mode != "guarded" or self.guard is None:
            raise bad_argument("mode", self.mode, "predict_batch is the guarded mode's batch form",
                               "Use swap(fn, surrogate, mode='guarded'), or surrogate.predict_batch for every row")
        cols = dict(as_columns(columns))
        names = self._schema.names
        missing = [name for name in names if name not in cols]
        if missing:
            raise bad_argument("columns", sorted(cols), f"has no column for {missing[0]!r}",
                               f"Pass one column per argument ({', '.join(names)})")
        n = len(cols[names[0]]) if names else 0
        guard = self.guard
        served = np.zeros(n, dtype=bool)
        outputs: np.ndarray | None = None
        original: list[tuple[int, str]] = []
        audited: list[tuple[int, Any]] = []
        try:
            inside = domain_mask(self._schema, cols)
        except Exception:  # values the vectorised check cannot read: row by row
            inside = np.array([not self._outside({k: cols[k][i] for k in names}) for i in range(n)], dtype=bool)
        at = np.flatnonzero(inside)
        if guard.drift is not None:
            for i in range(n):
                guard.drift.observe({k: plain_value(cols[k][i]) for k in names})
        if guard.audit.tripped:
            return cols, outputs, served, [(i, "tripped") for i in range(n)], audited
        details = None
        if at.size:
            try:
                details, ok = guard.batch({k: take_rows(cols[k], at) for k in names})
            except Exception as exc:  # a broken surrogate must not break the caller
                logger.debug("swap(%s): surrogate batch failed: %r", function_name(self.original), exc)
                details, ok = None, np.zeros(at.size, dtype=bool)
                original.extend((int(i), "surrogate_error") for i in at)
                at = at[:0]
        if details is not None:
            values = np.asarray(details.outputs)
            outputs = np.empty((n,) + values.shape[1:], dtype=values.dtype)
            if outputs.dtype.kind == "f":
                outputs[:] = np.nan
            for j, i in enumerate(at):
                if not ok[j]:
                    original.append((int(i), "uncertain"))
                elif guard.audit.should_audit():
                    audited.append((int(i), _one_prediction(self.surrogate, details, j)))
                else:
                    served[i] = True
                    outputs[i] = values[j]
        original.extend((int(i), "out_of_domain") for i in np.flatnonzero(~inside))
        return cols, outputs, served, original, audited

    def _batch_fill(self, cols: dict[str, Any], outputs: np.ndarray | None, served: np.ndarray,
                    answers: dict[int, tuple[Any, BaseException | None]], original: list[tuple[int, str]],
                    audited: list[tuple[int, Any]], spent: float) -> tuple[np.ndarray, np.ndarray]:
        n = len(served)
        if outputs is None:
            outputs = np.empty(n, dtype=object if self._label_output else float)
            if outputs.dtype.kind == "f":
                outputs[:] = np.nan
        for i, (result, exc) in answers.items():
            value = None if exc is not None else result
            if outputs.dtype.kind == "f":
                try:
                    outputs[i] = np.nan if value is None else value
                except (TypeError, ValueError):  # an answer of another shape than the surrogate's
                    outputs = outputs.astype(object)
                    outputs[i] = value
            else:
                outputs[i] = value
        names = self._schema.names
        for i, prediction in audited:
            result, exc = answers[i]
            bound = {k: plain_value(cols[k][i]) for k in names}
            wrong = self._compare(bound, result, exc, prediction) is not None
            with self._lock:
                self._audited += 1
                self._audit_wrong += int(wrong)
            self.guard.observe_audit(wrong)  # type: ignore[union-attr]
        with self._lock:
            self._calls += n
            self._served += int(served.sum())
            self._by_original += len(answers)
            for _, reason in original:
                self._fallbacks[reason] += 1
            self._t_orig += spent
            self._n_orig += len(answers)
        return outputs, served

    def predict_batch(self, columns: Any) -> tuple[np.ndarray, np.ndarray]:
        """Guarded answers for many rows at once: `(outputs, served)`. Rows the guard serves get
        the surrogate's answer (the same rows the single call would serve); every other row
        (outside the domain, above the threshold, audited, or after a trip) gets the original's,
        called row by row. `outputs` as `Surrogate.predict_batch` (NaN, or None for labels,
        where the original raises); `served` marks the rows the surrogate answered."""
        cols, outputs, served, original, audited = self._batch_plan(columns)
        names = self._schema.names
        call = _kwargs_call(self.original)
        answers: dict[int, tuple[Any, BaseException | None]] = {}
        start = time.perf_counter()
        for i in [i for i, _ in original] + [i for i, _ in audited]:
            try:
                answers[i] = (call({k: plain_value(cols[k][i]) for k in names}), None)
            except Exception as exc:  # the original's raise is its answer for that row
                answers[i] = (None, exc)
        return self._batch_fill(cols, outputs, served, answers, original, audited, time.perf_counter() - start)

    def _confident(self, prediction: Any) -> bool:
        """The ensemble agrees: within the tolerance for reals, (near) unanimous for labels and raises."""
        spread = prediction.spread
        if spread is None or spread != spread:  # None or NaN: cannot tell
            return False
        if prediction.error is not None or self._label_output:
            return spread <= self.label_spread
        output = prediction.output
        if output is None:
            return False
        tol = self.tolerance
        spread = spread * self.spread_scale
        if isinstance(output, (int, float)) and not isinstance(output, bool):
            return spread <= tol.abs + tol.rel * abs(output)
        try:
            return bool(spread <= np.min(tol.bound(output)))
        except (TypeError, ValueError):  # a non-numeric output judged like a label
            return spread <= self.label_spread

    def _sampled(self) -> bool:
        rate = self.shadow_rate
        if rate >= 1.0:
            return True
        if rate <= 0.0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def _shadow_done(self, args: tuple[Any, ...], kwargs: dict[str, Any], sampled: bool, result: Any,
                     exc: BaseException | None, spent: float) -> None:
        if sampled:
            self._shadow_compare(args, kwargs, result, exc, spent)
        else:
            self._count_original(spent)

    def _call_shadow(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        sampled = self._sampled()
        start = time.perf_counter()
        try:
            result = self.original(*args, **kwargs)
        except Exception as exc:
            self._shadow_done(args, kwargs, sampled, None, exc, time.perf_counter() - start)
            raise
        self._shadow_done(args, kwargs, sampled, result, None, time.perf_counter() - start)
        return result

    def _count_original(self, spent: float) -> None:
        with self._lock:
            self._calls += 1
            self._by_original += 1
            self._t_orig += spent
            self._n_orig += 1

    def _shadow_compare(self, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any,
                        exc: BaseException | None, spent: float) -> None:
        """Run the surrogate on the same input and compare; never raises."""
        reason = ""
        elapsed = None
        disagreement = None
        try:
            bound = self._bind(*args, **kwargs)
        except Exception:  # the original accepted a call the signature refuses: odd, skip
            bound, reason = None, "surrogate_error"
        if bound is not None:
            try:
                if self._outside(bound):
                    reason = "out_of_domain"
                else:
                    start = time.perf_counter()
                    prediction = self._predict(bound)
                    elapsed = time.perf_counter() - start
                    disagreement = self._compare(bound, result, exc, prediction)
            except Exception as failure:  # surrogate failures never reach the caller
                logger.debug("swap(%s): shadow surrogate failed: %r", function_name(self.original), failure)
                reason = "surrogate_error"
        with self._lock:
            self._calls += 1
            self._by_original += 1
            self._t_orig += spent
            self._n_orig += 1
            if elapsed is not None:
                self._t_sur += elapsed
                self._n_sur += 1
            if reason:
                self._fallbacks[reason] += 1
            else:
                self._comparisons += 1
                if disagreement is not None:
                    self._disagreements += 1
                    self._recent.append(disagreement)
        if disagreement is not None:
            self._report(disagreement, spent)

    def _compare(self, bound: dict[str, Any], result: Any, exc: BaseException | None,
                 prediction: Any) -> Disagreement | None:
        """None when the surrogate agrees with the original's outcome, else the disagreement."""
        expected_error = ErrorInfo.from_exception(exc) if exc is not None else None
        actual_error = prediction.error
        actual = prediction.output
        excess = math.inf
        if expected_error is not None or actual_error is not None:
            if (expected_error is not None and actual_error is not None
                    and expected_error.type == actual_error.type):
                return None
        elif self._label_output or isinstance(result, (str, bytes, bool, np.bool_)) or result is None:
            if _equal(result, actual):
                return None
        elif type(result) in _SCALARS and type(actual) in _SCALARS:  # the common case, without numpy
            tol = self.tolerance
            diff = abs(actual - result)
            limit = tol.abs + tol.rel * abs(result)
            if diff <= limit or (result != result and actual != actual) or (
                    math.isinf(result) and result == actual):
                return None
            excess = diff / limit if limit > 0 and diff == diff else math.inf
        else:
            try:
                if self.tolerance.agrees(result, actual):
                    return None
                excess = self.tolerance.excess(result, actual)
            except Exception:  # not numbers after all: judged like labels
                if _equal(result, actual):
                    return None
        return Disagreement(inputs=dict(bound), expected=result, actual=actual, expected_error=expected_error,
                            actual_error=actual_error, excess=excess, timestamp=time.time())

    def _report(self, disagreement: Disagreement, spent: float) -> None:
        if self.log:
            logger.warning("swap(%s): surrogate disagrees on %r: expected %r%s, got %r%s",
                           function_name(self.original), disagreement.inputs, disagreement.expected,
                           f" ({disagreement.expected_error.type})" if disagreement.expected_error else "",
                           disagreement.actual,
                           f" ({disagreement.actual_error.type})" if disagreement.actual_error else "")
        if self.on_disagreement is not None:
            try:
                self.on_disagreement(disagreement)
            except Exception as exc:
                self._hook_failed(exc)
        if self._writer is not None:
            self._writer.put(disagreement.inputs, disagreement.expected, disagreement.expected_error, spent)


_SCALARS = (float, int)


def _kwargs_call(fn: Callable[..., Any]) -> Callable[[dict[str, Any]], Any]:
    from probes._identity import kwargs_caller

    caller = kwargs_caller(fn)
    return lambda kwargs: caller(**kwargs)


def _one_prediction(surrogate: Any, details: Any, j: int) -> Any:
    """Row `j` of a batch evaluation as the single call's prediction."""
    path = details.paths[j] if details.paths else None
    if details.raises[j]:
        return OnePrediction(None, details.errors[j], float(details.spread[j]), path)
    row = type(details)(details.outputs[j:j + 1], details.raises[j:j + 1], details.errors[j:j + 1],
                        details.spread[j:j + 1], None)
    if not hasattr(surrogate, "python_outputs"):  # a duck-typed stand-in: its own values
        return OnePrediction(plain_value(details.outputs[j]), None, float(details.spread[j]), path)
    return OnePrediction(surrogate.python_outputs(row)[0], None, float(details.spread[j]), path)


def _check_fails(item: Any, bound: dict[str, Any]) -> bool:
    try:
        return not item.contains(bound[item.name])[0]
    except Exception:
        return True


def _equal(expected: Any, actual: Any) -> bool:
    try:
        return bool(expected == actual)
    except Exception:  # an __eq__ that raises or is ambiguous (arrays): a disagreement
        return False


def _answer(prediction: Any) -> Any:
    """The surrogate's answer as the caller sees it: the output, or the raise it predicts."""
    error = prediction.error
    if error is None:
        return prediction.output
    kind = error.exception_class()
    try:
        exc = kind(error.message)
    except Exception:  # an exception class with a different constructor
        exc = RuntimeError(f"{error.type}: {error.message}")
    raise exc


def _domain_text(item: Any) -> str:
    kind = getattr(item, "kind", "")
    if kind in ("real", "integer"):
        return f"{kind} in [{item.low}, {item.high}]"
    if kind == "vector":
        return f"vector of {item.length} numbers in [{item.low}, {item.high}]"
    if kind in ("categorical", "boolean"):
        return f"one of {list(item.categories)!r}"
    return kind or "its trained domain"
