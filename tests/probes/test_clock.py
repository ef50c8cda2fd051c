"""probes._clock: the wall clock and the deterministic work clock that budgets are spent on."""

from __future__ import annotations

import pytest

from probes import _clock


def test_count_lines_counts_python_lines():
    def loop(n: int) -> int:
        total = 0
        for i in range(n):
            total += i
        return total

    small, large = _clock.count_lines(loop, {"n": 10}), _clock.count_lines(loop, {"n": 1000})
    assert small < large
    assert 1900 <= large - small <= 2100  # two lines per extra iteration


def test_count_lines_survives_exceptions_and_restores_the_tracer():
    import sys

    def boom() -> None:
        raise ValueError("no")

    before = sys.gettrace()
    assert _clock.count_lines(boom, {}) >= 1
    assert sys.gettrace() is before


def test_work_clock_moves_only_when_charged():
    clock = _clock.WorkClock()
    assert clock.now() == 0.0
    with _clock.using(clock):
        assert _clock.current() is clock
        _clock.charge_training_step(rows=100, parameters=1000)
        _clock.charge_forward(rows=100, parameters=1000)
    assert _clock.current() is not clock  # restored outside
    expected = (_clock.STEP_OVERHEAD_S + _clock.PER_ROW_PARAM_S * 1e5
                + _clock.PASS_OVERHEAD_S + _clock.PER_ROW_PARAM_S / 3 * 1e5)
    assert clock.now() == pytest.approx(expected)
    clock.charge(-5.0)  # never backwards
    assert clock.now() == pytest.approx(expected)
