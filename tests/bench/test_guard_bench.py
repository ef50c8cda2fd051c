"""bench/guard.py: the counting of served and wrong answers, and the shape of its results,
on a tiny synthetic function fitted in seconds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.guard import ABLATION, GATES, evaluate_guards, markdown, summarise
from case_studies._guarded import Original, judge, measure_batch, p_value_above, tally
from probes import ErrorInfo, Schema, Tolerance, Traces
from replace import fit, swap


def stepped(x: float, y: float) -> float:
    """Smooth for x <= 0.5, a 0.1 staircase in x * y above it, raises below y = 0.02."""
    if y < 0.02:
        raise ValueError("y too small")
    if x > 0.5:
        return math.floor(10 * x * y) / 10
    return x + y


SCHEMA = Schema.from_function(stepped, x=(0.0, 1.0), y=(0.0, 1.0))
TOL = Tolerance(abs=0.01)


def generate(n: int, seed: int = 0) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [dict(x=float(a), y=float(b)) for a, b in rng.random((n, 2))]


@pytest.fixture(scope="module")
def surrogate():
    traces = Traces.from_calls(stepped, generate(800, seed=1))
    return fit(stepped, traces, schema=SCHEMA, tolerance=TOL, budget_s=1.5, seed=0, progress=False,
               budget_clock="work", calibration_rate=0.01)


def test_tally_on_a_hand_checked_case():
    served = np.array([1, 1, 0, 1, 0, 1, 1, 0, 0, 0], dtype=bool)
    wrong = np.array([0, 1, 0, 0, 1], dtype=bool)  # one flag per served row
    t = tally(served, wrong, 0.05)
    assert (t["n_fresh"], t["served"], t["wrong"]) == (10, 5, 2)
    assert t["coverage"] == 0.5 and t["served_error"] == 0.4
    # P(X >= 2), X ~ Bin(5, 0.05) = 1 - 0.95^5 - 5 * 0.05 * 0.95^4
    assert t["p_value"] == pytest.approx(1 - 0.95 ** 5 - 5 * 0.05 * 0.95 ** 4, rel=1e-9)
    assert t["significantly_above"] is True
    assert p_value_above(0, 100, 0.01) == 1.0 and p_value_above(3, 0, 0.01) == 1.0
    none = tally(np.zeros(4, dtype=bool), np.zeros(0, dtype=bool), 0.01)
    assert none["served"] == 0 and math.isnan(none["served_error"]) and not none["significantly_above"]
    with pytest.raises(ValueError):
        tally(served, wrong[:3], 0.05)


def test_judge_counts_tolerance_and_outcome_mismatches():
    err = ErrorInfo.from_exception(ValueError("y too small"))
    ref = ([1.0, 2.0, None, 4.0, None], [None, None, err, None, err])
    got = ([1.004, 2.02, 3.0, None, None], [None, None, None, ErrorInfo.from_exception(KeyError("k")), err])
    assert judge("real", *ref, *got, TOL).tolist() == [False, True, True, True, False]
    assert judge("label", ["A", "B"], [None, None], ["A", "C"], [None, None], TOL).tolist() == [False, True]


def test_original_is_called_once_per_input_and_reraises():
    calls = []

    def f(x: float, y: float) -> float:
        calls.append((x, y))
        return stepped(x, y)

    original = Original(f)
    assert original.function(0.2, y=0.5) == original.function(x=0.2, y=np.float64(0.5)) == stepped(0.2, 0.5)
    with pytest.raises(ValueError):
        original.function(0.2, 0.0)
    assert original.outcome({"x": 0.2, "y": 0.0})[1].type == "ValueError"
    assert len(calls) == 2 and original.calls == 2
    original.prefill([{"x": 0.9, "y": 0.01}], [None], [ErrorInfo.from_exception(ValueError("known"))])
    with pytest.raises(ValueError, match="known"):
        original.function(x=0.9, y=0.01)
    assert len(calls) == 2


def test_batch_counting_matches_single_calls(surrogate):
    """The bench's served/wrong counts equal those of the guarded swap called row by row with
    each served answer checked by hand against the original."""
    rows = generate(1000, seed=5)
    columns = {k: np.array([r[k] for r in rows]) for k in ("x", "y")}
    original = Original(stepped)
    truth = original.outcomes(rows)
    result = measure_batch(swap(original.function, surrogate, "guarded", max_error_rate=0.05), columns, truth, 0.05)
    single = swap(stepped, surrogate, "guarded", max_error_rate=0.05)
    served = wrong = 0
    for kwargs in rows:
        before = single.stats.served_by_surrogate
        try:
            got, raised = single(**kwargs), None
        except ValueError as exc:
            got, raised = None, exc
        if single.stats.served_by_surrogate == before:
            continue
        served += 1
        try:
            want, want_raised = stepped(**kwargs), None
        except ValueError as exc:
            want, want_raised = None, exc
        if (raised is None) != (want_raised is None):
            wrong += 1
        elif raised is None:
            wrong += not abs(got - want) <= TOL.abs
    assert served > 0, "the guard serves nothing: the counting is not tested"
    assert (result["served"], result["wrong"]) == (served, wrong)
    assert result["n_fresh"] == 1000 and result["coverage"] == served / 1000
    assert result["reference_mismatch"] == 0


def test_evaluate_guards_structure(surrogate):
    result = evaluate_guards(stepped, surrogate, generate, schema=SCHEMA, rates=(0.01, 0.05), n_fresh=1000,
                             max_fresh=2000, fresh_seed=9, grow_below_rate=0.01, served_per_rate=50.0)
    assert set(result["gates"]) == set(GATES)
    for gate in GATES:
        entries = result["gates"][gate]
        assert [e["max_error_rate"] for e in entries] == [0.01, 0.05]
        for e in entries:
            assert 0 <= e["wrong"] <= e["served"] <= e["n_fresh"]
            assert e["coverage"] == pytest.approx(e["served"] / e["n_fresh"])
            assert isinstance(e["significantly_above"], bool) and 0.0 <= e["p_value"] <= 1.0
            assert {"coverage", "served"} <= set(e["calibration"]) and "domain" in e["calibration"]
    # at 0.01 a rated gate that serves asks for 5000 served calls: the sample grows to max_fresh
    certified = result["gates"]["certified"]
    n_big = result["grown"].get("0.01", {}).get("n_fresh", 1000)
    if certified[0]["calibration"]["served"]:
        assert n_big == 2000 and certified[0]["n_fresh"] == 2000
        assert certified[0]["first_sample"]["n_fresh"] == 1000
        assert result["grown"]["0.01"]["limited_by"] == "max_fresh"
    assert certified[1]["n_fresh"] == 1000
    assert result["original_calls"] == n_big  # each fresh input called once, calibration rows never
    # the old gate has no rate: the same served rows judged against each rate
    old = result["gates"]["old_spread"]
    assert old[0]["served"] == old[1]["served"] and old[0]["wrong"] == old[1]["wrong"]
    assert [a["features"] for a in result["ablation"]] == [name for name, _ in ABLATION]
    assert result["ablation_all_matches_fit"] is True
    row = {"study": "stepped", **result}
    summary = summarise([row], None)
    assert summary["share_significantly_above"]["certified"]["pairs_with_served_calls"] <= 2
    assert len(summary["pairs"]) == 2 * len(GATES)
    text = markdown({"rates": [0.01, 0.05], "confidence": 0.95, "budget_s": 3, "seed": 0, "studies": [row],
                     "summary": summary})
    assert "| stepped | certified |" in text and "Ablation" in text
