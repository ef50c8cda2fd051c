"""The comparison policy: tolerance semantics, labels, containers, NaN/inf, exception modes."""

import math

import numpy as np
import pytest

from probes import EXCEPTION_MODES, NAN_MODES, Comparison, ErrorInfo, InvalidArgument, Tolerance
from probes._compare import LABEL_ERROR, UNBOUNDED_ERROR


def judge(expected, actual, **policy):
    return Comparison(**policy).compare(expected, actual)


def test_exact_by_default():
    assert judge(1.0, 1.0).agree
    verdict = judge(1.0, 1.0 + 2**-40)
    assert not verdict.agree and verdict.reason == "value" and verdict.error == 2**-40


def test_abs_tolerance_is_inclusive():
    tol = Tolerance(abs=0.125)
    assert judge(1.0, 1.125, tolerance=tol).agree
    assert judge(1.0, 0.875, tolerance=tol).agree
    verdict = judge(1.0, 1.25, tolerance=tol)
    assert not verdict.agree and verdict.error == 0.25


def test_relative_tolerance_uses_the_original_as_reference():
    tol = Tolerance(rel=0.5)
    assert judge(2.0, 1.0, tolerance=tol).agree  # bound 0.5 * |2| = 1
    assert not judge(1.0, 2.0, tolerance=tol).agree  # bound 0.5 * |1| = 0.5


def test_abs_and_rel_add_up():
    tol = Tolerance(abs=0.5, rel=0.25)
    assert judge(4.0, 5.5, tolerance=tol).agree  # bound 0.5 + 1.0
    assert not judge(4.0, 5.75, tolerance=tol).agree


def test_int_and_float_numbers_compare_as_numbers():
    assert judge(3, 3.0).agree
    assert judge(np.float32(0.5), 0.5).agree


def test_vectors_are_elementwise_with_max_error():
    tol = Tolerance(abs=0.25)
    verdict = judge((1.0, 2.0, 3.0), (1.0, 2.5, 3.125), tolerance=tol)
    assert not verdict.agree and verdict.error == 0.5
    assert judge([1.0, 2.0], np.array([1.0, 2.125]), tolerance=tol).agree  # list/tuple/ndarray: one family


def test_containers_need_same_family_and_length():
    assert judge((1.0, 2.0), (1.0,)).reason == "shape"
    assert judge((1.0, 2.0), (1.0,)).error == UNBOUNDED_ERROR
    assert judge((1.0, 2.0), "1.0, 2.0").reason == "type"
    assert judge(1.0, None).reason == "type"
    assert judge({"a": 1.0, "b": 2.0}, {"a": 1.0, "b": 2.0}).agree
    assert judge({"a": 1.0}, {"b": 1.0}).reason == "shape"
    assert judge({"a": 1.0, "b": "x"}, {"a": 1.5, "b": "x"}).error == 0.5


def test_labels_are_exact_with_unit_error():
    assert judge("A", "A").agree
    verdict = judge("A", "B", tolerance=Tolerance(abs=10))
    assert not verdict.agree and verdict.reason == "label" and verdict.error == LABEL_ERROR
    assert not judge(True, False).agree
    # a label output compares class ids exactly, whatever the tolerance
    assert judge(0, 5, output_kind="label", tolerance=Tolerance(abs=10)).error == LABEL_ERROR
    assert judge(0, 5).error == 5.0


def test_nan_policy():
    nan = float("nan")
    assert judge(nan, nan).agree
    assert not judge(nan, nan, nan="differ").agree
    assert judge(nan, nan, nan="differ").error == UNBOUNDED_ERROR
    verdict = judge(nan, 1.0, tolerance=Tolerance(abs=1e9))
    assert not verdict.agree and verdict.reason == "nan" and verdict.error == UNBOUNDED_ERROR
    assert not judge(1.0, nan).agree
    assert judge([1.0, nan], [1.0, nan]).agree


def test_infinity_policy():
    inf = math.inf
    assert judge(inf, inf).agree and judge(-inf, -inf).agree
    assert not judge(inf, -inf).agree
    verdict = judge(1e308, inf, tolerance=Tolerance(rel=1.0))
    assert not verdict.agree and verdict.error == UNBOUNDED_ERROR
    assert not judge(inf, 1e308, tolerance=Tolerance(abs=1e308)).agree


V = ErrorInfo("ValueError", "bad x")
V2 = ErrorInfo("ValueError", "other words")
T = ErrorInfo("TypeError", "bad x")


def outcome(policy, expected_error=None, actual_error=None, expected=None, actual=None):
    return policy.compare(expected, actual, expected_error=expected_error, actual_error=actual_error)


def test_exception_mode_type():
    policy = Comparison(exceptions="type")
    assert outcome(policy, V, V2).agree
    verdict = outcome(policy, V, T)
    assert not verdict.agree and verdict.reason == "exception" and verdict.error == UNBOUNDED_ERROR


def test_exception_mode_type_and_message():
    policy = Comparison(exceptions="type_and_message")
    assert outcome(policy, V, ErrorInfo("ValueError", "bad x")).agree
    assert not outcome(policy, V, V2).agree


def test_exception_mode_ignore_skips_only_where_the_original_raises():
    policy = Comparison(exceptions="ignore")
    verdict = outcome(policy, V, None, actual=1.0)
    assert verdict.skipped and verdict.agree
    raised = outcome(policy, None, V, expected=1.0)
    assert not raised.agree and not raised.skipped and raised.reason == "raised"


def test_raising_against_returning_disagrees_both_ways():
    policy = Comparison()
    assert outcome(policy, V, None, actual=1.0).reason == "returned"
    assert outcome(policy, None, V, expected=1.0).reason == "raised"
    assert outcome(policy, V, None, actual=1.0).error == UNBOUNDED_ERROR


def test_bad_modes_are_refused_with_the_fix():
    assert set(EXCEPTION_MODES) == {"type", "type_and_message", "ignore"}
    assert set(NAN_MODES) == {"equal", "differ"}
    with pytest.raises(InvalidArgument, match="exceptions='loose'"):
        Comparison(exceptions="loose")
    with pytest.raises(InvalidArgument, match="nan="):
        Comparison(nan="maybe")
    with pytest.raises(InvalidArgument, match="tolerance"):
        Comparison(tolerance=0.1)


def f(x):
    if x < 0:
        raise ValueError("negative")
    return x * 2


def g(x):
    return x * 2 + (1 if x > 10 else 0)


def test_assert_agree_writes_the_call():
    policy = Comparison()
    policy.assert_agree(f, g, {"x": 1.0})
    with pytest.raises(AssertionError, match=r"fn\(x=11.0\)") as info:
        policy.assert_agree(f, g, {"x": 11.0})
    assert "original:  22.0" in str(info.value) and "candidate: 23.0" in str(info.value)
    with pytest.raises(AssertionError, match="raises ValueError"):
        policy.assert_agree(f, g, {"x": -1.0})
    assert policy.check(f, g, {"x": 11.0}).error == 1.0


def test_policy_round_trips():
    policy = Comparison(Tolerance(abs=0.5, rel=0.1), "ignore", "differ", "label")
    assert Comparison.from_dict(policy.to_dict()) == policy
