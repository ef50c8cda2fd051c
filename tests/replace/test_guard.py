"""The certified guard: the served error stays within the asked rate on fresh inputs.

The guarantee under test (swap's docstring): with probability >= confidence over the
calibration sample, the error rate of the answers a guarded swap serves is at most
max_error_rate, for inputs like the calibration rows. These tests try to break it: functions
with a region no network learns, labels, raises in both directions, too little calibration,
save/load, a function that changes under a deployed guard, and the batch form.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import pytest

from probes import ErrorInfo, Schema, Tolerance, Traces
from replace import Surrogate, fit, swap
from replace._calibration import binomial_upper, certify, held_out_count, label, rows_needed

# -- the statistics alone ---------------------------------------------------------------------


def test_binomial_upper_is_clopper_pearson() -> None:
    assert binomial_upper(0, 0, 0.05) == 1.0
    # zero errors in n: the bound solves (1 - b)^n = delta
    assert binomial_upper(0, 3000, 0.05) == pytest.approx(1 - 0.05 ** (1 / 3000), rel=1e-9)
    assert binomial_upper(10, 1000, 0.05) > 0.01


def test_rows_needed_certifies_with_no_error() -> None:
    n = rows_needed(0.01, 0.95)
    cert = certify(np.linspace(0, 1, 3 * n), np.zeros(3 * n, dtype=bool), max_error_rate=0.01, confidence=0.95)
    assert cert.serves and cert.upper_bound <= 0.01
    assert 250 < n < 400  # about ln(1 / delta) / rate for the fixed sequence


def test_sgr_bound_holds_over_many_calibrations() -> None:
    """Risk rising with the score, so the true served error of any threshold is known: over
    400 calibration draws the certified threshold's true served error exceeds the asked rate
    no more often than 1 - confidence allows (plus a binomial margin)."""
    rng = np.random.default_rng(0)
    rate, confidence, m = 0.05, 0.9, 1500

    def true_served_error(t: float) -> float:  # score ~ U(0,1), P(wrong | s) = s**2 * 0.3
        return 0.3 * min(t, 1.0) ** 2 / 3 if t > 0 else 0.0

    violations = served = 0
    for _ in range(400):
        score = rng.random(m)
        wrong = rng.random(m) < 0.3 * score ** 2
        cert = certify(score, wrong, max_error_rate=rate, confidence=confidence)
        if cert.serves:
            served += 1
            violations += true_served_error(cert.threshold) > rate
    assert served > 350  # the method has power here
    assert violations / 400 <= (1 - confidence) + 3 * math.sqrt(0.1 * 0.9 / 400)


def test_non_monotone_risk_is_still_bounded() -> None:
    """Wrong answers concentrated at the lowest scores (the score is misleading): the guard
    must not certify a threshold whose served error is above the rate."""
    rng = np.random.default_rng(1)
    score = rng.random(4000)
    wrong = score < 0.2  # 20% of rows, all among the "safest"
    cert = certify(score, wrong, max_error_rate=0.01, confidence=0.95)
    assert not cert.serves or wrong[score <= cert.threshold].mean() <= 0.01 + 1e-9
    assert "no threshold certifies" in cert.reason or not cert.serves or cert.upper_bound <= 0.01


def test_too_few_rows_serve_nothing_and_say_why() -> None:
    cert = certify(np.linspace(0, 1, 100), np.zeros(100, dtype=bool), max_error_rate=0.001, confidence=0.95)
    assert not cert.serves and cert.threshold == -math.inf
    assert "100" in cert.reason and "max_error_rate=0.001" in cert.reason and "needs at least" in cert.reason


# -- outcomes: what counts as wrong -------------------------------------------------------------


def test_outcome_mismatches_in_both_directions_are_wrong(raising_fit: Any) -> None:
    """A value where the original raises, and a raise where it returns, are wrong answers."""
    from conftest import guarded_sqrt

    columns = {"x": np.array([4.0, 4.0, -1.0, -1.0]), "zone": np.array(["N", "N", "N", "N"], dtype=object)}
    err = ErrorInfo.from_exception(ValueError("x must not be negative"))
    truth_outputs = [guarded_sqrt(4.0, "N"), None, None, 7.0]
    truth_errors = [None, err, err, None]
    rows = label(raising_fit, columns, truth_outputs, truth_errors, source="user")
    predicted = raising_fit.predict_details(columns)
    assert not predicted.raises[0] and predicted.raises[2]  # the surrogate returns at 4, raises at -1
    assert rows.wrong.tolist() == [False, True, False, True]


# -- real surrogates ----------------------------------------------------------------------------


def stepped(x: float, y: float) -> float:
    """Smooth for x <= 0.5; a 0.1 staircase over a sine above it (no small network, and no exact
    expression of the hybrid surrogate, is right there)."""
    if x > 0.5:
        return math.floor(10 * math.sin(3 * x * y + x)) / 10
    return x + y


STEPPED = Schema.from_function(stepped, x=(0.0, 1.0), y=(0.0, 1.0))
TOL = Tolerance(abs=0.01)


@pytest.fixture(scope="module")
def stepped_fit() -> Surrogate:
    rng = np.random.default_rng(1)
    traces = Traces.from_calls(stepped, [dict(x=float(a), y=float(b)) for a, b in rng.random((3000, 2))])
    # exact="off": a hybrid fit finds both paths' expressions (x + y, and the staircase as
    # floor(10 * x * y) / 10) and is right everywhere; these tests need a surrogate wrong on a region
    return fit(stepped, traces, schema=STEPPED, tolerance=TOL, budget_s=8, seed=0, progress=False,
               budget_clock="work", calibration_rate=0.01, exact="off")


def _fresh(n: int, seed: int) -> list[dict[str, float]]:
    return [dict(x=float(a), y=float(b)) for a, b in np.random.default_rng(seed).random((n, 2))]


def _served_error(swapped: Any, fn: Any, rows: list[dict[str, Any]], tol: Tolerance) -> tuple[int, int]:
    served = wrong = 0
    for kwargs in rows:
        before = swapped.stats.served_by_surrogate
        got = swapped(**kwargs)
        if swapped.stats.served_by_surrogate > before:
            served += 1
            wrong += not tol.agrees(fn(**kwargs), got)
    return served, wrong


def test_fit_keeps_a_calibration_nothing_else_saw(stepped_fit: Surrogate) -> None:
    """Production calibration rows are recorded traces held out of training (exchangeable with
    fresh traffic); domain rows are fresh oracle draws."""
    cal = stepped_fit.calibration
    assert cal is not None and set(cal.sets) == {"production", "domain"}
    assert len(cal.sets["production"]) == held_out_count(3000, 0.01) == 1200
    assert stepped_fit.metrics.training_rows < 1800 + stepped_fit.metrics.oracle_calls + 1
    assert cal.oracle_calls == len(cal.sets["domain"])
    assert stepped_fit.manifest["training"]["calibration_calls"] == cal.oracle_calls == stepped_fit.metrics.calibration_calls
    assert cal.sets["production"].wrong.any()  # the staircase is wrong somewhere: a real test


@pytest.mark.parametrize("holdout, production_rows", [(0.1, 300), (0.0, 0)])
def test_calibration_holdout_trades_calibration_rows_for_training_rows(holdout: float, production_rows: int) -> None:
    """`calibration_holdout` is the share of traces the guard's production calibration takes out
    of training: 10% of 3,000 holds out 300 and trains on the other 2,700; 0 holds out none, and
    the guard then has whole-domain rows only (never a production set built from training rows)."""
    rng = np.random.default_rng(1)
    traces = Traces.from_calls(stepped, [dict(x=float(a), y=float(b)) for a, b in rng.random((3000, 2))])
    surrogate = fit(stepped, traces, schema=STEPPED, tolerance=TOL, budget_s=3, seed=0, progress=False,
                    budget_clock="work", calibration_rate=0.01, exact="off", calibration_holdout=holdout)
    cal = surrogate.calibration
    assert cal is not None
    if production_rows:
        assert len(cal.sets["production"]) == production_rows == held_out_count(3000, 0.01, holdout)
    else:
        assert "production" not in cal.sets and "domain" in cal.sets
    trained_traces = surrogate.metrics.training_rows - surrogate.metrics.oracle_calls
    assert trained_traces == 3000 - production_rows


@pytest.mark.parametrize("value, says", [(1.0, "must be < 1"), (-0.1, "must be >= 0"), (True, "must be a number")])
def test_bad_calibration_holdout_is_named(value: Any, says: str) -> None:
    from probes import InvalidArgument

    with pytest.raises(InvalidArgument, match=f"calibration_holdout={value!r} : {says}"):
        fit(stepped, None, schema=STEPPED, tolerance=TOL, budget_s=3, progress=False, calibration_holdout=value)


def test_guarded_served_error_is_within_the_rate_on_fresh_inputs(stepped_fit: Surrogate) -> None:
    """The surrogate is wrong on much of x > 0.5; the guard serves the rest and its served
    error on 4,000 fresh inputs is not significantly above 1%."""
    swapped = swap(stepped, stepped_fit, "guarded", max_error_rate=0.01)
    cert = swapped.guard.certificate
    assert cert.serves and cert.upper_bound <= 0.01
    served, wrong = _served_error(swapped, stepped, _fresh(4000, 11), TOL)
    assert served > 1000  # it serves (coverage is the point), the smooth half at least
    # one-sided: a served error of 1% would show fewer wrong answers than this 99.9% of the time
    assert wrong <= served * 0.01 + 3.1 * math.sqrt(served * 0.01 * 0.99)
    overall = np.mean([not TOL.agrees(stepped(**k), stepped_fit(**k)) for k in _fresh(1000, 12)])
    assert overall > 0.05  # without the guard the surrogate is wrong far more often


def test_guard_coverage_tracks_the_rate(stepped_fit: Surrogate) -> None:
    cal = stepped_fit.calibration
    strict, loose = cal.certify(0.01, 0.95), cal.certify(0.3, 0.95)
    assert loose.coverage >= strict.coverage
    assert strict.domain is not None and 0.0 <= strict.domain["coverage"] <= 1.0  # the domain rows, reported


def test_guard_batch_serves_the_same_rows_as_single_calls(stepped_fit: Surrogate) -> None:
    swapped = swap(stepped, stepped_fit, "guarded", max_error_rate=0.01)
    rows = _fresh(300, 13)
    rows.append({"x": 1.2, "y": 0.5})  # outside the domain: the original answers
    columns = {k: np.array([r[k] for r in rows]) for k in ("x", "y")}
    outputs, served = swapped.predict_batch(columns)
    singles = []
    for kwargs in rows:
        before = swapped.stats.served_by_surrogate
        value = swapped(**kwargs)
        singles.append(swapped.stats.served_by_surrogate > before)
        assert outputs[len(singles) - 1] == pytest.approx(value, abs=1e-9)
    assert served.tolist() == singles and not served[-1]
    assert outputs[-1] == stepped(1.2, 0.5)
    for i in np.flatnonzero(~served):
        assert outputs[i] == stepped(**rows[i])  # unserved rows get the original's answer


def test_save_and_load_keep_the_calibration(stepped_fit: Surrogate, tmp_path: Any) -> None:
    stepped_fit.save(tmp_path / "s")
    loaded = Surrogate.load(tmp_path / "s")
    assert loaded.calibration is not None
    a = swap(stepped, stepped_fit, "guarded").guard.certificate
    b = swap(stepped, loaded, "guarded").guard.certificate
    assert a.to_dict() == b.to_dict()


def test_too_little_calibration_serves_nothing_and_warns(stepped_fit: Surrogate) -> None:
    with pytest.warns(UserWarning, match="serves nothing"):
        swapped = swap(stepped, stepped_fit, "guarded", max_error_rate=0.0001)
    for kwargs in _fresh(50, 14):
        assert swapped(**kwargs) == stepped(**kwargs)
    assert swapped.stats.served_by_surrogate == 0 and swapped.stats.fallbacks["uncertain"] == 50


def test_recalibrate_on_the_users_rows(stepped_fit: Surrogate) -> None:
    swapped = swap(stepped, stepped_fit, "guarded", max_error_rate=0.05,
                   calibration_inputs=_fresh(2500, 15))
    cert = swapped.guard.certificate
    assert cert.source == "user" and cert.n == 2500 and cert.upper_bound <= 0.05
    served, wrong = _served_error(swapped, stepped, _fresh(2000, 16), TOL)
    assert wrong <= served * 0.05 + 3.1 * math.sqrt(served * 0.05 * 0.95)


def test_surrogate_without_calibration_serves_nothing(stepped_fit: Surrogate) -> None:
    import copy

    old = copy.copy(stepped_fit)
    old.calibration = None
    with pytest.warns(UserWarning, match="no calibration rows"):
        swapped = swap(stepped, old, "guarded")
    assert swapped(0.2, 0.3) == stepped(0.2, 0.3) and swapped.stats.served_by_surrogate == 0


# -- the live audit -------------------------------------------------------------------------------
RATES = {"smooth_part": 1.0}


def drifting(x: float, y: float) -> float:
    """`stepped`, scaled by a table the legacy function reads (changed under a deployed guard)."""
    return stepped(x, y) * RATES["smooth_part"]


def test_a_changed_function_trips_the_guard_and_a_stable_one_does_not(stepped_fit: Surrogate) -> None:
    RATES["smooth_part"] = 1.0
    swapped = swap(drifting, stepped_fit, "guarded", max_error_rate=0.01, audit_rate=0.05, seed=3)
    for kwargs in _fresh(3000, 17):  # stable: no trip
        swapped(**kwargs)
    assert not swapped.stats.tripped and swapped.stats.audited > 50
    RATES["smooth_part"] = 1.3  # the rate table changes: every served answer is now wrong
    try:
        with pytest.warns(UserWarning, match="tripped"):
            served_before = swapped.stats.served_by_surrogate
            for kwargs in _fresh(3000, 18):
                swapped(**kwargs)
                if swapped.stats.tripped:
                    break
        assert swapped.stats.tripped
        assert swapped.stats.served_by_surrogate - served_before < 500
        after = swapped.stats.served_by_surrogate
        for kwargs in _fresh(200, 19):
            assert swapped(**kwargs) == drifting(**kwargs)  # tripped: every call goes to the original
        assert swapped.stats.served_by_surrogate == after and swapped.stats.fallbacks["tripped"] == 200
        swapped.reset_stats()
        assert swapped.stats.tripped  # counters only
        swapped.reset()
        assert not swapped.stats.tripped
    finally:
        RATES["smooth_part"] = 1.0


def test_stats_show_audit_and_drift(stepped_fit: Surrogate) -> None:
    swapped = swap(stepped, stepped_fit, "guarded", max_error_rate=0.05, audit_rate=0.5, seed=1)
    for kwargs in _fresh(400, 20):
        swapped(**kwargs)
    stats = swapped.stats
    assert stats.audited > 0 and 0.0 <= stats.audit_interval[0] <= stats.audit_interval[1] <= 1.0
    assert stats.drift is not None and stats.drift["seen"] > 0
    assert stats.certificate["max_error_rate"] == 0.05
    assert stats.to_dict()["audited"] == stats.audited


def test_async_guarded_and_its_batch(stepped_fit: Surrogate) -> None:
    async def astepped(x: float, y: float) -> float:
        return stepped(x, y)

    swapped = swap(astepped, stepped_fit, "guarded", max_error_rate=0.01)

    async def run() -> tuple[list[float], Any]:
        rows = _fresh(50, 21)
        single = [await swapped(**k) for k in rows]
        batch = await swapped.predict_batch({k: np.array([r[k] for r in rows]) for k in ("x", "y")})
        return single, batch

    single, (outputs, served) = asyncio.run(run())
    assert np.allclose(single, outputs)


def test_deprecated_spread_knobs_warn(stepped_fit: Surrogate) -> None:
    with pytest.warns(DeprecationWarning, match="spread"):
        swapped = swap(stepped, stepped_fit, "guarded", spread_scale=2.0)
    assert swapped.guard is None


@pytest.mark.parametrize("options, named", [
    ({"max_error_rate": 0.0}, "max_error_rate=0.0"), ({"max_error_rate": 1.5}, "max_error_rate=1.5"),
    ({"confidence": 1.0}, "confidence=1.0"), ({"confidence": "high"}, "confidence='high'"),
    ({"audit_rate": -0.1}, "audit_rate=-0.1"), ({"calibrate_on": "prod"}, "calibrate_on='prod'"),
    ({"false_alarm": 0.0}, "false_alarm=0.0"),
])
def test_bad_guard_options_are_named(stepped_fit: Surrogate, options: dict[str, Any], named: str) -> None:
    from probes import InvalidArgument

    with pytest.raises(InvalidArgument, match=named.replace("(", r"\(")):
        swap(stepped, stepped_fit, "guarded", **options)


def test_labels_are_certified_too() -> None:
    """A classifier with a region of scrambled labels: served label errors within the rate."""

    def risk(age: float, score: float) -> str:
        if age > 60 and score > 0.5:  # scrambled: the label flips with a fine grid of the score
            return "high" if int(score * 400) % 2 else "low"
        return "high" if score > 0.7 else "low"

    schema = Schema.from_function(risk, age=(18.0, 90.0), score=(0.0, 1.0))
    surrogate = fit(risk, schema=schema, budget_s=6, seed=0, progress=False, budget_clock="work",
                    calibration_rate=0.02)
    swapped = swap(risk, surrogate, "guarded", max_error_rate=0.02, calibrate_on="domain")
    rng = np.random.default_rng(22)
    served = wrong = 0
    for a, s in zip(rng.uniform(18, 90, 3000), rng.random(3000)):
        before = swapped.stats.served_by_surrogate
        got = swapped(float(a), float(s))
        if swapped.stats.served_by_surrogate > before:
            served += 1
            wrong += got != risk(float(a), float(s))
    assert served > 0
    assert wrong <= served * 0.02 + 3.1 * math.sqrt(served * 0.02 * 0.98)


@pytest.mark.parametrize("fixture", ["stepped_fit", "raising_fit", "label_fit"])
def test_single_call_score_is_the_batch_score(fixture: str, request: Any) -> None:
    """The guarded single call takes a fast one-row path; it must give the answer and score the
    calibration (batch evaluation) gave, or the certificate would speak of another gate."""
    from replace._score import OneRowScorer, evaluate

    surrogate = request.getfixturevalue(fixture)
    rows = surrogate.schema.sample(200, seed=3)
    rows = [r for r in rows if surrogate.schema.contains(r)[0]]
    columns = {k: np.array([r[k] for r in rows], dtype=object if isinstance(rows[0][k], str) else None)
               for k in rows[0]}
    batch = evaluate(surrogate, columns, surrogate.guard_predictor)
    scorer = OneRowScorer(surrogate, surrogate.guard_predictor)
    for i, row in enumerate(rows):
        prediction, score = scorer(row)
        assert score == pytest.approx(batch.score[i], rel=1e-6, abs=1e-6)
        assert (prediction.error is not None) == bool(batch.raises[i])
