"""The deprecated ensemble-spread gate's tuning (`calibrate_guard`), kept for old callers.

It picks `spread_scale` so that served answers agreed on calibration inputs; it guarantees
nothing about fresh inputs. The certified gate (`_guard`, `_calibration`) replaces it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from probes import ErrorInfo, Tolerance
from probes._validation import check_number


@dataclass(frozen=True)
class GuardCalibration:
    """The `spread_scale` that met `target` agreement on the served inputs, and what it costs."""

    spread_scale: float        # pass to swap(..., mode="guarded", spread_scale=...); inf: never serve
    invocation_rate: float     # share of the calibration inputs the surrogate would serve
    agreement_served: float    # agreement with the original among those (NaN when none)
    agreement_all: float       # agreement if the surrogate served every input (no gate)
    target: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def calibrate_guard(fn: Callable[..., Any], surrogate: Any, inputs: list[dict[str, Any]] | None = None, *,
                    n: int = 2000, target: float = 0.99, tolerance: Tolerance | None = None,
                    seed: int = 0) -> GuardCalibration:
    """Deprecated (warns): choose the old spread gate's `spread_scale` on inputs with known answers.
    The certified guard (`swap(..., mode="guarded", max_error_rate=...)`) replaces it.

    Calls `fn` on `inputs` (default: `n` draws from the surrogate's schema), and picks the
    loosest gate under which the served answers agree with the original on at least `target`
    of them: the ensemble spread is only a proxy for the error, and this measures how good a
    proxy it is for this surrogate (Rumba tunes its threshold the same way). Labels and raises
    are gated by `label_spread`, not by this scale.
    """
    warnings.warn("calibrate_guard is deprecated: swap(fn, surrogate, mode='guarded', max_error_rate=..., "
                  "confidence=...) certifies the served error from the surrogate's calibration rows",
                  DeprecationWarning, stacklevel=2)
    check_number("target", target, low=0.0, high=1.0, fix="Pass the agreement wanted among served answers, e.g. 0.99")
    tol = tolerance if tolerance is not None else getattr(surrogate, "tolerance", None) or Tolerance()
    if inputs is None:
        inputs = surrogate.schema.sample(n, seed=seed)
    from probes._identity import kwargs_caller

    call = kwargs_caller(fn)  # positional-only parameters are passed by position
    ratios: list[float] = []
    agree: list[bool] = []
    for kwargs in inputs:
        if not surrogate.schema.contains(kwargs)[0]:
            continue
        try:
            expected, expected_error = call(**kwargs), None
        except Exception as exc:
            expected, expected_error = None, ErrorInfo.from_exception(exc)
        p = surrogate.predict_one(kwargs)
        if p.error is not None or expected_error is not None:
            continue  # outcomes are gated by label_spread
        try:
            bound = float(np.min(tol.bound(p.output)))
            ratio = p.spread / bound if bound > 0 else (0.0 if p.spread == 0 else math.inf)
            ok = bool(tol.agrees(expected, p.output))
        except (TypeError, ValueError):
            continue  # labels: not gated by the scale
        ratios.append(ratio if ratio == ratio else math.inf)
        agree.append(ok)
    m = len(ratios)
    if m == 0:
        return GuardCalibration(1.0, 0.0, math.nan, math.nan, target, 0)
    order = np.argsort(np.asarray(ratios), kind="stable")
    sorted_ratios = np.asarray(ratios)[order]
    hits = np.cumsum(np.asarray(agree)[order])
    counts = np.arange(1, m + 1)
    share = hits / counts
    # serve the k inputs with the smallest ratio; only cut between distinct ratios
    ok = (share >= target) & np.append(sorted_ratios[1:] > sorted_ratios[:-1], True) & np.isfinite(sorted_ratios)
    if not ok.any():
        return GuardCalibration(math.inf, 0.0, math.nan, float(np.mean(agree)), target, m)
    k = int(np.flatnonzero(ok)[-1])
    threshold = float(sorted_ratios[k])
    scale = 1.0 / threshold if threshold > 0 else math.inf
    if scale == math.inf:  # only zero-spread inputs qualify: a huge finite scale keeps them
        scale = 1e300
    return GuardCalibration(scale, (k + 1) / m, float(share[k]), float(np.mean(agree)), target, m)
