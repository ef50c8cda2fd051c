"""fit's budget holds for slow functions: every batch of oracle calls is sized from the measured
cost of a call, the call loop stops at its deadline, too small a budget is refused at once, and a
work-clock fit ends at its wall-time ceiling (with a NotReproducibleWarning)."""

from __future__ import annotations

import math
import re
import time

import pytest

from probes import Field, InvalidArgument, OutputSpec, Schema, Tolerance
from probes import _clock
from replace import fit
from replace._fit import MIN_ROWS, Oracle, _wall_ceiling, _warm_up


def _slow(seconds: float):
    def slow(x: float, y: float) -> float:
        time.sleep(seconds)
        return 1.5 * x - 0.5 * y + 0.3 * x * y

    return slow


def _schema(fn):
    """Declared without calling `fn` (Schema.from_function calls it to learn the output's kind)."""
    return Schema((Field("x", "real", low=0.0, high=1.0), Field("y", "real", low=0.0, high=1.0)),
                  OutputSpec("real"))


SMALL = dict(progress=False, ensemble_size=1, widths=(16,), depths=(2,), tolerance=Tolerance(abs=0.05))


def _cost_in(message: str) -> float:
    """The cost of a call a refusal names ("a call costs 0.0101 s")."""
    found = re.search(r"a call costs ([0-9.e+-]+) s", message)
    assert found, message
    return float(found.group(1))


def test_a_slow_function_ends_within_its_budget():
    """10 ms a call, budget_s=2: the floors of 256 training and 200 test calls alone would take
    4.6 s; the fit sizes them to the budget and ends within 1.5 x 2 + 1 s (or refuses, naming why)."""
    _warm_up()  # torch's one-time import is not the budget's
    slow = _slow(0.01)
    started = time.monotonic()
    try:
        s = fit(slow, schema=_schema(slow), budget_s=2, **SMALL)
    except InvalidArgument as exc:  # allowed, when it says why
        elapsed = time.monotonic() - started
        assert "budget_s=2" in str(exc) and 0.005 < _cost_in(str(exc)) < 0.1, exc
        assert elapsed < 1.0
        return
    elapsed = time.monotonic() - started
    assert elapsed <= 1.5 * 2 + 1, elapsed
    budget = s.manifest["training"]["budget"]
    assert 0.005 < budget["cost_per_call_s"] < 0.1, budget
    m = s.metrics
    assert MIN_ROWS <= m.training_rows and m.oracle_calls < 256 and 0 < m.n_test < 200, m
    assert s.manifest["training"]["calibration_calls"] < 100


def test_too_small_a_budget_is_refused_at_once_naming_cost_and_need():
    _warm_up()
    slow = _slow(0.05)
    started = time.monotonic()
    with pytest.raises(InvalidArgument) as refused:
        fit(slow, schema=_schema(slow), budget_s=1, **SMALL)
    elapsed = time.monotonic() - started
    message = str(refused.value)
    assert elapsed < 1.0, elapsed  # a few calls measured, nothing trained
    assert "budget_s=1" in message and f"{MIN_ROWS} rows" in message, message
    assert 0.04 < _cost_in(message) < 0.2, message
    need = float(re.search(r"budget_s>=([0-9.e+]+)", message).group(1))
    assert need > 1 and need == pytest.approx(MIN_ROWS * _cost_in(message) / 0.4, rel=0.05), message


def test_a_work_clock_fit_ends_at_its_wall_ceiling_with_a_warning():
    """The work clock charges a sleeping call almost nothing, so only the wall ceiling ends it."""
    _warm_up()
    slow = _slow(0.005)
    started = time.monotonic()
    with pytest.warns(_clock.NotReproducibleWarning, match=r"wall_ceiling_s=1\.5"):
        s = fit(slow, schema=_schema(slow), budget_s=5, budget_clock="work", wall_ceiling_s=1.5, **SMALL)
    elapsed = time.monotonic() - started
    assert elapsed < 1.5 + 3.0, elapsed  # the ceiling, then the rest without oracle calls
    budget = s.manifest["training"]["budget"]
    assert budget["wall_ceiling_hit"] and budget["wall_ceiling_s"] == 1.5
    assert s.metrics.training_rows >= MIN_ROWS and s.metrics.oracle_calls < 1000


def test_wall_ceiling_is_checked_before_any_call():
    calls = []

    def counted(x: float, y: float) -> float:
        calls.append(1)
        return x + y

    for bad in (0, -1.0, "10", True):
        with pytest.raises(InvalidArgument, match="wall_ceiling_s="):
            fit(counted, schema=_schema(counted), budget_s=1, wall_ceiling_s=bad)
    assert not calls
    # the default: 20 x budget_s + 120 s (a loaded CI machine runs training 6-28x its nominal work)
    assert _wall_ceiling(None, 2.0) == 160.0 and _wall_ceiling(math.inf, 2.0) is None
    assert _wall_ceiling(30, 2.0) == 30.0


def test_oracle_call_stops_at_its_deadline():
    """Fewer rows than asked come back when the deadline comes first (callers use what came)."""
    slow = _slow(0.01)
    schema = _schema(slow)
    rows = schema.sample(100, seed=0)
    with _clock.using(_clock.WallClock()) as clock:
        orc = Oracle(slow, schema, 0.0, None)
        orc.plain_cost, orc.path_cost = 0.01, 0.012
        started = clock.now()
        outputs, errors, paths = orc.call(rows, deadline=started + 0.1)
        elapsed = clock.now() - started
    assert 5 <= len(outputs) <= 12 and len(errors) == len(paths) == len(outputs) == orc.calls
    assert elapsed < 0.2
    assert outputs == pytest.approx([slow(**r) for r in rows[:len(outputs)]])
    # on the work clock the cut is exact (nominal costs): 3 calls of 1 s fit in 3.2 s
    with _clock.using(_clock.WorkClock()) as clock:
        orc = Oracle(lambda x, y: x, schema, 0.0, None)
        orc.plain_cost, orc.path_cost = 1.0, 2.0
        outputs, _, _ = orc.call(rows[:10], deadline=clock.now() + 3.2)
        assert len(outputs) == 3 and clock.now() == pytest.approx(3.0)
        assert len(orc.call(rows[:10], deadline=math.inf)[0]) == 10  # an endless deadline: every row
