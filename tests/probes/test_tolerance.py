"""Tolerance semantics: |y - r| <= abs + rel * |r| with the original as reference."""

import math

import pytest

from probes import InvalidArgument, Tolerance


def test_bound_uses_reference_only():
    tol = Tolerance(abs=0.0, rel=0.1)
    assert tol.agrees(100.0, 110.0)
    assert not tol.agrees(100.0, 110.0001)
    assert tol.agrees(100.0, 90.0)
    # reference 90, candidate 100: bound is 9, difference 10
    assert not tol.agrees(90.0, 100.0)


def test_abs_and_rel_add():
    tol = Tolerance(abs=1.0, rel=0.01)
    assert tol.agrees(100.0, 102.0)
    assert not tol.agrees(100.0, 102.01)


def test_nan_and_infinities():
    tol = Tolerance(abs=1e-9)
    assert tol.agrees(math.nan, math.nan)
    assert tol.agrees(math.inf, math.inf)
    assert not tol.agrees(math.inf, -math.inf)
    assert not tol.agrees(1.0, math.nan)


def test_vectors_and_shapes():
    tol = Tolerance(abs=0.1)
    assert tol.agrees((1.0, 2.0), (1.05, 1.95))
    assert not tol.agrees((1.0, 2.0), (1.05, 2.2))
    assert not tol.agrees((1.0, 2.0), (1.0,))


def test_excess_ratio():
    tol = Tolerance(abs=0.5)
    assert tol.excess(1.0, 1.25) == pytest.approx(0.5)
    assert Tolerance().excess(1.0, 1.0) == 0.0
    assert Tolerance().excess(1.0, 2.0) == math.inf


@pytest.mark.parametrize("kwargs", [{"abs": -1}, {"rel": -0.1}, {"abs": math.nan}, {"rel": "1"}])
def test_invalid_tolerances_name_the_field(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(InvalidArgument, match=rf"tolerance=Tolerance\({name}="):
        Tolerance(**kwargs)
