"""verify(): views, Wilson intervals, counterexamples, exception modes, non-determinism, formats."""

import itertools
import json
import math

import pytest

from probes import (
    Counterexample,
    EquivalenceReport,
    InvalidArgument,
    Schema,
    Tolerance,
    Traces,
    verify,
)
from probes._report import error_quantiles, wilson_interval
from probes._verify import default_database_path, resolve_schema

Z2 = 1.959963984540054 ** 2


# -- the legacy function and candidates --------------------------------------------------------
def fee(x: float, kind: str) -> float:
    if x < 0:
        raise ValueError("x must be >= 0")
    if kind == "a":
        base = 1.0 if x <= 5 else 2.0
    else:
        base = 3.0
    return base + 0.5 * x


def fee_copy(x: float, kind: str) -> float:
    return fee(x, kind)


def fee_region(x: float, kind: str) -> float:  # wrong on 10% of the domain, in two branches
    y = fee(x, kind)
    if 2.0 <= x < 3.0 or 8.0 <= x < 9.0:
        y += 1.0
    return y


def fee_raises(x: float, kind: str) -> float:
    if 7.0 <= x < 8.0:
        raise ZeroDivisionError("oops")
    return fee(x, kind)


def fee_no_raise(x: float, kind: str) -> float:
    return fee(abs(x), kind)


SCHEMA = Schema.from_function(fee, x=(0.0, 10.0), kind=["a", "b"])
SCHEMA_NEG = Schema.from_function(fee, x=(-2.0, 10.0), kind=["a", "b"])


def run(candidate, **options):
    options.setdefault("schema", SCHEMA)
    options.setdefault("max_examples", 200)
    options.setdefault("database", None)
    return verify(fee, candidate, **options)


# -- Wilson interval -----------------------------------------------------------------------------
def test_wilson_against_hand_computed_values():
    low, high = wilson_interval(8, 10)
    # p=0.8, z=1.96: centre (0.8 + z^2/20)/(1 + z^2/10) = 0.71674, half-width 0.22658
    assert low == pytest.approx(0.49016, abs=1e-4) and high == pytest.approx(0.94331, abs=1e-4)
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.40383, abs=1e-4) and high == pytest.approx(0.59617, abs=1e-4)


def test_wilson_with_no_failure_is_a_rule_of_three_bound():
    for n in (100, 1000, 10000):
        low, high = wilson_interval(n, n)
        assert high == 1.0
        assert low == pytest.approx(n / (n + Z2), rel=1e-12)
        assert 3.0 / n < 1 - low < 4.0 / n  # between the rule of three and z^2/n
    assert wilson_interval(0, 50)[0] == 0.0
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_error_quantiles_are_nearest_rank_and_keep_inf():
    q = error_quantiles([0.0] * 98 + [1.0, math.inf])
    assert q == {"p50": 0.0, "p90": 0.0, "p99": 1.0, "max": math.inf}
    assert error_quantiles([]) == {}


# -- verdicts --------------------------------------------------------------------------------------
def test_identical_candidate_passes_every_view():
    report = run(fee_copy, max_examples=300)
    assert report.passed and report.status == "passed" and bool(report)
    assert report.agreement == 1.0 and report.max_error == 0.0
    assert report.counterexamples == ()
    assert report.views["domain"].n == 300 and report.views["search"].n > 0
    assert report.views["operational"].n == 0 and "no traces" in report.views["operational"].note
    assert report.agreement_ci[0] == pytest.approx(300 / (300 + Z2))
    assert report.nondeterminism == 0.0 and report.nondeterminism_checked == 100


def test_defects_in_two_branches_give_two_shrunk_counterexamples_worst_first():
    report = run(fee_region, max_examples=300)
    assert not report.passed and report.status == "failed"
    assert 0.8 < report.views["domain"].agreement < 0.97  # 10% of the domain is wrong
    cases = report.counterexamples
    assert len(cases) >= 2
    assert all(isinstance(c, Counterexample) for c in cases)
    assert [c.error for c in cases] == sorted((c.error for c in cases), reverse=True)
    for case in cases:
        x = case.inputs["x"]
        assert 2.0 <= x < 3.0 or 8.0 <= x < 9.0
        assert case.actual == pytest.approx(case.expected + 1.0) and case.error == pytest.approx(1.0)
        assert case.path  # the original's branch path on that input
    assert len({c.path for c in cases}) >= 2
    assert any(c.shrunk and c.view == "search" for c in cases)
    assert report.max_error == pytest.approx(1.0)
    bad_paths = [p for p, s in report.paths.items() if s["disagreements"]]
    assert bad_paths and all(report.paths[p]["agreement"] < 1 for p in bad_paths)


def test_search_alone_finds_and_shrinks_a_small_region():
    def needle(x: float, kind: str) -> float:
        return fee(x, kind) + (5.0 if 6.0 <= x <= 6.5 and kind == "b" else 0.0)

    report = verify(fee, needle, schema=SCHEMA, max_examples=300, database=None, seed=3)
    search_cases = [c for c in report.counterexamples if c.view == "search"]
    assert search_cases and search_cases[0].shrunk
    assert search_cases[0].inputs["kind"] == "b" and 6.0 <= search_cases[0].inputs["x"] <= 6.5


def test_candidate_raising_where_the_original_returns_is_a_disagreement():
    report = run(fee_raises)
    assert not report.passed
    worst = report.counterexamples[0]
    assert worst.reason == "raised" and worst.error == math.inf
    assert worst.actual_error is not None and worst.actual_error.type == "ZeroDivisionError"
    assert worst.expected_error is None and 7.0 <= worst.inputs["x"] < 8.0
    assert report.max_error == math.inf


def test_exception_modes_end_to_end():
    strict = verify(fee, fee_no_raise, schema=SCHEMA_NEG, max_examples=200, database=None)
    assert not strict.passed
    assert strict.counterexamples[0].reason == "returned"
    assert strict.counterexamples[0].expected_error.type == "ValueError"
    lenient = verify(fee, fee_no_raise, schema=SCHEMA_NEG, max_examples=200, database=None, exceptions="ignore")
    assert lenient.passed and lenient.views["domain"].skipped > 0

    def other_message(x: float, kind: str) -> float:
        if x < 0:
            raise ValueError("negative")
        return fee(x, kind)

    assert verify(fee, other_message, schema=SCHEMA_NEG, max_examples=100, database=None).passed
    assert not verify(fee, other_message, schema=SCHEMA_NEG, max_examples=100, database=None,
                      exceptions="type_and_message").passed


def test_tolerance_defaults_to_the_candidates_own():
    class Approx:
        tolerance = Tolerance(abs=0.01)

        def __call__(self, x: float, kind: str) -> float:
            return fee(x, kind) + 0.005

    assert run(Approx()).passed
    assert not run(Approx(), tolerance=Tolerance()).passed
    assert not run(lambda x, kind: fee(x, kind) + 0.005).passed  # plain callables: exact


def test_label_outputs():
    def grade(score: float) -> str:
        return "pass" if score >= 50 else "fail"

    def grade_off(score: float) -> str:
        return "pass" if score >= 52 else "fail"

    schema = Schema.from_function(grade, score=(0.0, 100.0))
    assert schema.output.kind == "label"
    report = verify(grade, grade_off, schema=schema, max_examples=300, database=None)
    assert not report.passed
    assert all(c.error == 1.0 and c.reason == "label" for c in report.counterexamples)
    assert all(50 <= c.inputs["score"] < 52 for c in report.counterexamples)


def test_operational_view_replays_and_resamples_traces():
    inputs = [{"x": 0.5 + 0.01 * i, "kind": "a"} for i in range(100)]
    traces = Traces.from_calls(fee, inputs)
    report = verify(fee, fee_region, traces=traces, max_examples=100, database=None)  # schema inferred
    view = report.views["operational"]
    assert view.n == 100 and "50 recorded inputs replayed" in view.note
    assert view.agreement == 1.0  # the program only calls it with x in [0.5, 1.5]: no defect there
    assert report.views["domain"].n == 100 and report.views["domain"].agreement == 1.0
    assert report.passed  # the domain inferred from the traces, x in [0.5, 1.49], misses the defect too


def test_operational_view_catches_a_defect_where_the_program_calls():
    inputs = [{"x": 2.0 + 0.009 * i, "kind": "b"} for i in range(100)]
    traces = Traces.from_calls(fee, inputs)
    report = verify(fee, fee_region, schema=SCHEMA, traces=traces, max_examples=100, database=None)
    assert report.views["operational"].agreement < 0.2
    assert report.views["operational"].ci[1] < 0.3


def test_schema_is_required_or_inferred():
    with pytest.raises(InvalidArgument, match="schema=None"):
        verify(fee, fee_copy)
    traces = Traces.from_calls(fee, [{"x": float(i), "kind": "a"} for i in range(10)])
    assert resolve_schema(fee, fee_copy, None, traces)["x"].high == 9.0

    class WithSchema:
        schema = SCHEMA

        def __call__(self, x, kind):
            return fee(x, kind)

    assert verify(fee, WithSchema(), max_examples=20, min_examples=20, database=None).passed


def test_bad_arguments_are_refused():
    with pytest.raises(InvalidArgument, match="max_examples=0"):
        run(fee_copy, max_examples=0)
    with pytest.raises(InvalidArgument, match="exceptions="):
        run(fee_copy, exceptions="never")
    with pytest.raises(InvalidArgument, match="candidate"):
        verify(fee, 3, schema=SCHEMA)
    with pytest.raises(InvalidArgument, match="database"):
        run(fee_copy, database=3.5)


def test_nondeterminism_of_the_original_is_reported_not_blamed():
    counter = itertools.count()

    def flaky(x: float, kind: str) -> float:
        return fee(x, kind) + (next(counter) if x > 9.0 else 0.0)  # never the same twice above 9

    report = verify(flaky, flaky, schema=SCHEMA, max_examples=200, database=None)
    assert report.nondeterministic_inputs > 0 and report.nondeterminism > 0
    assert report.disagreements == 0  # the candidate is not blamed for the original's noise
    assert report.status == "inconclusive" and not report.passed
    assert "Non-determinism" in report.to_markdown()


def test_same_seed_same_report_and_derandomize():
    a = run(fee_region, seed=7)
    b = run(fee_region, seed=7)
    assert [c.inputs for c in a.counterexamples] == [c.inputs for c in b.counterexamples]
    c = run(fee_region, derandomize=True, seed=1)
    d = run(fee_region, derandomize=True, seed=2)
    search_c = [x.inputs for x in c.counterexamples if x.view == "search"]
    search_d = [x.inputs for x in d.counterexamples if x.view == "search"]
    assert search_c and search_c == search_d  # the search ignores the seed when derandomised


def test_failing_examples_are_kept_in_the_database(tmp_path):
    path = tmp_path / "examples"
    report = run(fee_region, database=str(path))
    assert not report.passed and report.statistics["database"] == str(path)
    assert any(p.is_file() for p in path.rglob("*"))
    again = run(fee_region, database=str(path))  # replayed first
    assert any(c.view == "search" for c in again.counterexamples)


def test_default_database_sits_beside_the_trace_store(monkeypatch, tmp_path):
    monkeypatch.delenv("NEUROSWAP_STORE", raising=False)
    assert default_database_path() is None  # no store named: examples not kept (never in the cwd)
    monkeypatch.setenv("NEUROSWAP_STORE", f"sqlite:///{tmp_path}/traces.db")
    assert default_database_path() == str(tmp_path / ".hypothesis" / "neuroswap")


def test_budget_caps_the_run():
    report = run(fee_region, max_examples=100000, budget_s=1.0)
    assert "budget" in report.statistics["stop_reason"]
    assert report.views["domain"].n < 100000 and report.views["search"].n < 100000


# -- formats -------------------------------------------------------------------------------------
def test_markdown_writes_each_counterexample_as_a_call():
    report = run(fee_raises)
    text = report.to_markdown()
    assert "**FAILED**" in text and "| domain |" in text
    case = report.counterexamples[0]
    assert f"fee(x={case.inputs['x']!r}, kind={case.inputs['kind']!r})" in text
    assert "# candidate: raises ZeroDivisionError('oops')" in text
    assert "# original:  " in text
    assert "fn(x=" in report.to_markdown(name="fn")


def test_json_is_strict_and_round_trips():
    report = run(fee_raises)
    text = report.to_json()
    data = json.loads(text)  # valid JSON
    assert "Infinity" not in text and "NaN" not in text
    assert data["max_error"] == {"$float": "inf"} and data["passed"] is False
    back = EquivalenceReport.from_json(text)
    assert back.max_error == math.inf and back.passed == report.passed
    assert back.counterexamples == report.counterexamples
    assert back.views == report.views and back.comparison == report.comparison
    assert back.agreement_ci == report.agreement_ci and back.schema == report.schema
    assert back.to_markdown() == report.to_markdown()


def test_json_encodes_nan_tuples_and_arrays():
    import numpy as np

    from probes._report import decode_value, encode_value

    value = {"a": (1.0, float("nan")), "b": np.array([1.5, -math.inf]), "c": [None, True, "x"], 1: 2}
    back = decode_value(json.loads(json.dumps(encode_value(value), allow_nan=False)))
    assert isinstance(back["a"], tuple) and math.isnan(back["a"][1])
    assert isinstance(back["b"], np.ndarray) and back["b"][1] == -math.inf
    assert back["c"] == [None, True, "x"] and back[1] == 2


def test_recorded_inputs_outside_the_schema_are_counted_as_invalid():
    traces = Traces.from_calls(fee, [{"x": 20.0 + i, "kind": "a"} for i in range(10)])
    report = verify(fee, fee_copy, schema=SCHEMA, traces=traces, max_examples=20, min_examples=20, database=None)
    assert report.statistics["invalid"] == 10
    assert "10 recorded inputs lie outside the schema" in report.views["operational"].note
    assert report.passed


def test_vector_outputs_compare_elementwise():
    def polar(x: float, y: float) -> tuple:
        return (math.hypot(x, y), math.atan2(y, x))

    def polar_off(x: float, y: float) -> list:
        r, a = polar(x, y)
        return [r, a + (0.25 if x > 0.9 else 0.0)]  # a list is fine, the angle is not

    schema = Schema.from_function(polar, x=(0.0, 1.0), y=(0.0, 1.0))
    assert schema.output.kind == "vector"
    report = verify(polar, polar_off, schema=schema, tolerance=Tolerance(abs=1e-9), max_examples=200, database=None)
    assert not report.passed
    assert report.max_error == pytest.approx(0.25)
    assert all(c.inputs["x"] > 0.9 and c.error == pytest.approx(0.25) for c in report.counterexamples)


def test_without_path_tracing_counterexamples_still_carry_their_path():
    report = run(fee_region, paths=False)
    assert not report.passed and report.paths == {}
    assert all(c.path for c in report.counterexamples)
    assert "not traced" in report.statistics["stop_reason"]
    traced = run(fee_region, paths=True)
    assert traced.paths and {c.path for c in report.counterexamples} <= set(traced.paths) | {
        c.path for c in traced.counterexamples}


# -- a verdict needs evidence ----------------------------------------------------------------------
def test_a_budget_too_small_to_check_anything_is_inconclusive_never_passed():
    """Before: passed=True for a candidate wrong by 1000 everywhere (no input was checked)."""
    report = run(lambda x, kind: fee(x, kind) + 1000.0, budget_s=1e-6)
    assert report.checked == 0 and report.disagreements == 0  # nothing judged: no evidence either way
    assert report.status == "inconclusive" and not report.passed and not bool(report)
    assert "min_examples=100" in report.reason and "budget_s=1e-06" in report.reason
    assert "per input" in report.reason and "need about budget_s=" in report.reason
    assert report.statistics["evidence"] == {"domain": 0, "search": 0}
    text = report.to_markdown()
    assert "**INCONCLUSIVE**" in text and report.reason in text
    data = json.loads(report.to_json())
    assert data["status"] == "inconclusive" and data["passed"] is False and data["reason"] == report.reason
    back = EquivalenceReport.from_json(report.to_json())
    assert back.status == "inconclusive" and back.reason == report.reason and not back.passed


def test_min_examples_above_max_examples_is_a_usage_error():
    with pytest.raises(InvalidArgument, match=r"min_examples=300 : must be <= max_examples=200"):
        run(fee_copy, min_examples=300)
    with pytest.raises(InvalidArgument, match="min_examples=0"):
        run(fee_copy, min_examples=0)


def test_fewer_inputs_than_the_minimum_is_inconclusive_unless_asked_for():
    small = run(fee_copy, max_examples=30)
    assert small.status == "inconclusive" and not small.passed and small.disagreements == 0
    assert "max_examples=30" in small.reason and "min_examples=N" in small.reason
    assert small.statistics["evidence"] == {"domain": 30, "search": 30}
    accepted = run(fee_copy, max_examples=30, min_examples=30)
    assert accepted.passed and accepted.status == "passed" and "min_examples=30" in accepted.reason


def test_a_disagreement_fails_whatever_the_evidence():
    report = run(lambda x, kind: fee(x, kind) + 1000.0, max_examples=5)  # far below min_examples
    assert report.status == "failed" and not report.passed and report.disagreements > 0
    assert "disagreement" in report.reason


def test_the_search_counts_its_examples_repeats_included():
    report = run(fee_copy, max_examples=100)
    assert report.passed, report.reason
    assert report.statistics["evidence"]["search"] == 100  # 100 examples run, whatever repeated
    assert report.views["search"].n <= 100 and report.views["domain"].n == 100


def test_a_search_that_runs_out_of_inputs_still_counts():
    def both(a: bool, b: bool) -> bool:
        return a and b

    schema = Schema.from_function(both, a=[True, False], b=[True, False])
    report = verify(both, lambda a, b: bool(a and b), schema=schema, max_examples=200, database=None)
    assert report.passed, report.reason
    assert 1 <= report.statistics["evidence"]["search"] < 100  # hypothesis tried each of the 4 inputs
