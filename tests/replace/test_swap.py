"""swap(): the three modes, their fallbacks and counters, against a stand-in and a real surrogate."""

from __future__ import annotations

import inspect
import math
import threading
from dataclasses import dataclass
from typing import Any

import pytest

from probes import ErrorInfo, InvalidArgument, OutOfDomainError, Schema, Tolerance
from replace._swap import Disagreement, SwapStats, swap


# -- legacy functions --------------------------------------------------------------------------
def price(x: float, y: float, kind: str = "a") -> float:
    """A smooth price with a category offset; raises for kind 'neg' when x > 5."""
    if kind == "neg" and x > 5:
        raise ValueError("x too large for neg")
    return x * y + (1.0 if kind == "b" else 0.0)


class Box:
    """A fresh object per call, so identity tells who answered."""

    def __init__(self, value: float) -> None:
        self.value = value

    def __float__(self) -> float:
        return self.value


def boxed(x: float, y: float, kind: str = "a") -> Any:
    if kind == "neg" and x > 5:
        raise ValueError("x too large for neg")
    return Box(price(x, y, kind))


def grade(score: float) -> str:
    if score < 0.3:
        return "low"
    return "mid" if score < 0.7 else "high"


SCHEMA = Schema.from_function(price, x=(0.0, 10.0), y=(-1.0, 1.0), kind=["a", "b", "neg"], probe=0)
GRADE_SCHEMA = Schema.from_function(grade, score=(0.0, 1.0), output="label", probe=0)
TOL = Tolerance(abs=1e-2, rel=0.0)


# -- a stand-in implementing the surrogate interface -------------------------------------------
@dataclass(frozen=True)
class OnePrediction:
    output: Any
    error: ErrorInfo | None
    spread: float
    path: str | None = None


#: the deprecated ensemble-spread gate (what these tests pin); the certified gate is tested in test_guard.py
SPREAD_GATE = {"spread_scale": 1.0}
pytestmark = pytest.mark.filterwarnings("ignore:swap\\(spread_scale:DeprecationWarning",
                                        "ignore:calibrate_guard is deprecated:DeprecationWarning")


class StandIn:
    """Answers like `fn` plus `offset`, with a spread of `wide` where x > 8 and 0 elsewhere."""

    def __init__(self, fn: Any, schema: Schema, *, offset: float = 0.0, wide: float = 0.0,
                 broken: bool = False, ensemble_size: int = 3) -> None:
        self.fn, self.schema, self.offset, self.wide, self.broken = fn, schema, offset, wide, broken
        self.tolerance = TOL
        self.ensemble_size = ensemble_size
        self.calls = 0

    def predict_one(self, kwargs: dict[str, Any]) -> OnePrediction:
        self.calls += 1
        if self.broken:
            raise RuntimeError("stand-in broke")
        spread = self.wide if kwargs.get("x", 0.0) > 8 else 0.0
        try:
            out = self.fn(**kwargs)
        except Exception as exc:
            return OnePrediction(None, ErrorInfo.from_exception(exc), spread)
        if isinstance(out, str):
            return OnePrediction(out, None, spread)
        return OnePrediction(float(out) + self.offset, None, spread)


# -- wrapping ----------------------------------------------------------------------------------
def test_keeps_name_doc_signature_and_wrapped() -> None:
    swapped = swap(price, StandIn(price, SCHEMA))
    assert swapped.__name__ == "price"
    assert swapped.__doc__ == price.__doc__
    assert swapped.__wrapped__ is price
    assert inspect.signature(swapped) == inspect.signature(price)
    assert swapped.original is price and swapped.mode == "surrogate"


@pytest.mark.parametrize("call", [lambda f: f(1.0), lambda f: f(1.0, 2.0, "a", 4), lambda f: f(1.0, 2.0, z=3),
                                  lambda f: f(1.0, x=2.0)])
def test_bad_arity_raises_the_originals_type_error(call: Any) -> None:
    with pytest.raises(TypeError) as original:
        call(price)
    for mode in ("surrogate", "guarded", "shadow"):
        with pytest.raises(TypeError) as swapped:
            call(swap(price, StandIn(price, SCHEMA), mode))
        assert str(swapped.value) == str(original.value)


# -- surrogate mode ----------------------------------------------------------------------------
def test_surrogate_mode_answers_every_call_with_the_surrogate() -> None:
    standin = StandIn(price, SCHEMA, offset=0.5)
    swapped = swap(price, standin, "surrogate")
    assert swapped(2.0, 0.5) == pytest.approx(1.5)
    assert swapped(x=2.0, y=0.5, kind="b") == pytest.approx(2.5)
    stats = swapped.stats
    assert (stats.calls, stats.served_by_surrogate, stats.served_by_original) == (2, 2, 0)
    assert stats.invocation_rate == 1.0 and stats.mean_surrogate_s is not None
    assert standin.calls == 2


@pytest.mark.parametrize("kwargs, named", [
    ({"x": math.nan, "y": 0.0}, "x=nan"),
    ({"x": 11.0, "y": 0.0}, "x=11.0"),
    ({"x": 1.0, "y": -1.5}, "y=-1.5"),
    ({"x": 1.0, "y": 0.0, "kind": "zzz"}, "kind='zzz'"),
    ({"x": "1.0", "y": 0.0}, "x='1.0'"),
    ({"x": math.inf, "y": 0.0}, "x=inf"),
])
def test_surrogate_mode_refuses_inputs_outside_the_domain(kwargs: dict[str, Any], named: str) -> None:
    standin = StandIn(price, SCHEMA)
    swapped = swap(price, standin, "surrogate")
    with pytest.raises(OutOfDomainError) as caught:
        swapped(**kwargs)
    message = str(caught.value)
    assert named in message and "guarded" in message and "trained on" in message
    assert standin.calls == 0
    assert swapped.stats.rejected == 1 and swapped.stats.served_by_surrogate == 0


def test_surrogate_mode_raises_the_predicted_exception() -> None:
    swapped = swap(price, StandIn(price, SCHEMA), "surrogate")
    with pytest.raises(ValueError, match="x too large for neg"):
        swapped(6.0, 0.0, "neg")


# -- shadow mode -------------------------------------------------------------------------------
def test_shadow_returns_the_originals_object_and_records_disagreements() -> None:
    seen: list[Disagreement] = []
    standin = StandIn(boxed, SCHEMA, offset=0.5)  # always 0.5 off: every comparison disagrees
    swapped = swap(boxed, standin, "shadow", on_disagreement=seen.append, keep=3)
    results = [swapped(float(i), 0.5) for i in range(5)]
    assert all(isinstance(r, Box) for r in results)
    assert [r.value for r in results] == [i * 0.5 for i in range(5)]
    stats = swapped.stats
    assert stats.calls == 5 and stats.served_by_original == 5 and stats.served_by_surrogate == 0
    assert stats.shadow_comparisons == 5 and stats.disagreements == 5 and stats.disagreement_rate == 1.0
    assert stats.mean_original_s is not None and stats.mean_surrogate_s is not None
    assert len(seen) == 5
    kept = swapped.disagreements
    assert [d.inputs["x"] for d in kept] == [2.0, 3.0, 4.0]  # the latest 3
    assert kept[-1].inputs == {"x": 4.0, "y": 0.5, "kind": "a"}
    assert kept[-1].expected is results[-1] and kept[-1].actual == pytest.approx(2.5)
    assert kept[-1].excess == pytest.approx(0.5 / 1e-2)


def test_shadow_identity_of_result_object() -> None:
    sentinel = Box(1.0)

    def same(x: float, y: float, kind: str = "a") -> Any:
        return sentinel

    swapped = swap(same, StandIn(price, SCHEMA), "shadow")
    assert swapped(1.0, 1.0) is sentinel


def test_shadow_agreement_within_tolerance_is_not_a_disagreement() -> None:
    swapped = swap(price, StandIn(price, SCHEMA, offset=0.005), "shadow")
    for i in range(10):
        swapped(float(i), 0.3, "b")
    assert swapped.stats.shadow_comparisons == 10 and swapped.stats.disagreements == 0
    assert swapped.disagreements == []


def test_shadow_reraises_the_originals_exception_object() -> None:
    raised: list[BaseException] = []

    def failing(x: float, y: float, kind: str = "a") -> float:
        exc = KeyError("original")
        raised.append(exc)
        raise exc

    standin = StandIn(price, SCHEMA)  # predicts a number: a disagreement on the outcome
    swapped = swap(failing, standin, "shadow")
    with pytest.raises(KeyError) as caught:
        swapped(1.0, 0.0)
    assert caught.value is raised[0]
    assert swapped.stats.disagreements == 1
    d = swapped.disagreements[0]
    assert d.expected_error == ErrorInfo("KeyError", "'original'") and d.actual_error is None
    assert d.excess == math.inf


def test_shadow_matching_raise_agrees() -> None:
    swapped = swap(price, StandIn(price, SCHEMA), "shadow")
    with pytest.raises(ValueError):
        swapped(6.0, 0.0, "neg")
    assert swapped.stats.shadow_comparisons == 1 and swapped.stats.disagreements == 0


def test_shadow_labels_compare_exactly() -> None:
    def shifted(score: float) -> str:
        return grade(min(1.0, score + 0.2))

    swapped = swap(grade, StandIn(shifted, GRADE_SCHEMA), "shadow")
    assert [swapped(s) for s in (0.05, 0.2, 0.6, 0.9)] == ["low", "low", "mid", "high"]
    # shifted disagrees at 0.2 (mid) and 0.6 (high)
    assert swapped.stats.disagreements == 2
    assert [d.actual for d in swapped.disagreements] == ["mid", "high"]


def test_shadow_surrogate_failure_never_reaches_the_caller() -> None:
    swapped = swap(price, StandIn(price, SCHEMA, broken=True), "shadow")
    assert swapped(2.0, 0.5) == 1.0
    stats = swapped.stats
    assert stats.fallbacks["surrogate_error"] == 1 and stats.shadow_comparisons == 0
    assert stats.calls == 1


def test_shadow_skips_inputs_outside_the_domain() -> None:
    standin = StandIn(price, SCHEMA)
    swapped = swap(price, standin, "shadow")
    assert swapped(20.0, 0.5) == 10.0
    assert standin.calls == 0 and swapped.stats.fallbacks["out_of_domain"] == 1


def test_shadow_callback_failure_is_counted_not_raised() -> None:
    def bad_callback(d: Disagreement) -> None:
        raise RuntimeError("callback")

    swapped = swap(price, StandIn(price, SCHEMA, offset=1.0), "shadow", on_disagreement=bad_callback)
    assert swapped(1.0, 1.0) == 1.0
    assert swapped.stats.hook_errors == 1 and swapped.stats.disagreements == 1


def test_shadow_rate_samples_a_seeded_share() -> None:
    def run(seed: int) -> tuple[int, list[float]]:
        swapped = swap(price, StandIn(price, SCHEMA, offset=1.0), "shadow", shadow_rate=0.3, seed=seed)
        for i in range(1000):
            swapped(i / 100.0, 0.5)
        return swapped.stats.shadow_comparisons, [d.inputs["x"] for d in swapped.disagreements]

    count, xs = run(0)
    assert 240 <= count <= 360
    assert run(0) == (count, xs)  # same seed, same sample
    assert run(1)[1] != xs
    never = swap(price, StandIn(price, SCHEMA), "shadow", shadow_rate=0.0)
    never(1.0, 1.0)
    assert never.stats.shadow_comparisons == 0 and never.stats.calls == 1


def test_shadow_records_disagreements_to_a_trace_store() -> None:
    from probes._store import TraceStore

    store = TraceStore.open("memory://swap-test-record")
    swapped = swap(price, StandIn(price, SCHEMA, offset=1.0), "shadow", record_to=store)
    assert swapped(1.0, 1.0) == 1.0
    assert swapped(2.0, 0.1, "b") == pytest.approx(1.2)
    assert swapped.flush(timeout=10)
    traces = store.load(price)
    assert traces.inputs == [{"x": 1.0, "y": 1.0, "kind": "a"}, {"x": 2.0, "y": 0.1, "kind": "b"}]
    assert traces.outputs == [1.0, pytest.approx(1.2)]  # the original's outcome, to retrain on


def test_shadow_log_option_logs_each_disagreement(caplog: pytest.LogCaptureFixture) -> None:
    swapped = swap(price, StandIn(price, SCHEMA, offset=1.0), "shadow", log=True)
    with caplog.at_level("WARNING", logger="replace.swap"):
        swapped(1.0, 1.0)
    assert "disagrees" in caplog.text and "'x': 1.0" in caplog.text


# -- guarded mode ------------------------------------------------------------------------------
def test_guarded_serves_confident_inputs_inside_the_domain() -> None:
    standin = StandIn(boxed, SCHEMA, wide=1.0)
    swapped = swap(boxed, standin, "guarded", **SPREAD_GATE)
    served = swapped(2.0, 0.5)
    assert served == pytest.approx(1.0) and not isinstance(served, Box)  # the surrogate's float
    fallback = swapped(9.0, 0.5)  # spread 1.0 > tolerance bound 0.01: uncertain
    assert isinstance(fallback, Box) and fallback.value == 4.5
    stats = swapped.stats
    assert stats.served_by_surrogate == 1 and stats.fallbacks["uncertain"] == 1
    assert stats.invocation_rate == 0.5


@pytest.mark.parametrize("kwargs", [
    {"x": math.nan, "y": 0.0}, {"x": 10.5, "y": 0.0}, {"x": 1.0, "y": 0.0, "kind": "new"},
    {"x": None, "y": 0.0},
])
def test_guarded_falls_back_outside_the_domain(kwargs: dict[str, Any]) -> None:
    calls: list[dict[str, Any]] = []

    def original(x: Any, y: float, kind: str = "a") -> str:
        calls.append({"x": x, "y": y, "kind": kind})
        return "original"

    schema = Schema.from_function(original, x=(0.0, 10.0), y=(-1.0, 1.0), kind=["a", "b", "neg"], output="real")
    standin = StandIn(price, schema)
    swapped = swap(original, standin, "guarded", **SPREAD_GATE)
    assert swapped(**kwargs) == "original"
    assert len(calls) == 1 and standin.calls == 0
    assert swapped.stats.fallbacks == {"out_of_domain": 1, "uncertain": 0, "surrogate_error": 0, "tripped": 0}


def test_guarded_falls_back_when_the_surrogate_fails() -> None:
    swapped = swap(boxed, StandIn(boxed, SCHEMA, broken=True), "guarded", **SPREAD_GATE)
    assert isinstance(swapped(1.0, 1.0), Box)
    assert swapped.stats.fallbacks["surrogate_error"] == 1


def test_guarded_serves_a_predicted_raise_only_when_unanimous() -> None:
    originals: list[float] = []

    def counted(x: float, y: float, kind: str = "a") -> float:
        originals.append(x)
        return price(x, y, kind)

    swapped = swap(counted, StandIn(price, SCHEMA, wide=0.5), "guarded", **SPREAD_GATE)
    with pytest.raises(ValueError, match="x too large"):
        swapped(6.0, 0.0, "neg")  # spread 0: served by the surrogate
    assert originals == []
    with pytest.raises(ValueError, match="x too large"):
        swapped(9.0, 0.0, "neg")  # spread 0.5 > label_spread 0: the original raises
    assert originals == [9.0]
    loose = swap(counted, StandIn(price, SCHEMA, wide=0.5), "guarded", label_spread=0.5)
    with pytest.raises(ValueError):
        loose(9.0, 0.0, "neg")
    assert originals == [9.0] and loose.stats.served_by_surrogate == 1


def test_guarded_labels_need_unanimity() -> None:
    class Split(StandIn):
        def predict_one(self, kwargs: dict[str, Any]) -> OnePrediction:
            p = super().predict_one(kwargs)
            return OnePrediction(p.output, None, 1 / 3 if kwargs["score"] > 0.5 else 0.0)

    swapped = swap(grade, Split(grade, GRADE_SCHEMA), "guarded", **SPREAD_GATE)
    for s in (0.1, 0.2, 0.6, 0.9):
        swapped(s)
    assert swapped.stats.served_by_surrogate == 2 and swapped.stats.fallbacks["uncertain"] == 2


def test_guarded_with_single_member_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="replace.swap"):
        swap(price, StandIn(price, SCHEMA, ensemble_size=1), "guarded", **SPREAD_GATE)
    assert "single member" in caplog.text


# -- counters ----------------------------------------------------------------------------------
def test_counters_are_thread_safe_and_resettable() -> None:
    swapped = swap(price, StandIn(price, SCHEMA, wide=1.0), "guarded", **SPREAD_GATE)

    def work() -> None:
        for i in range(400):
            swapped(i % 10 + 0.5, 0.1)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stats = swapped.stats
    assert stats.calls == 2400
    assert stats.served_by_surrogate + stats.served_by_original == 2400
    assert stats.fallbacks["uncertain"] == 480  # x = 8.5 and 9.5 of every 10
    data = stats.to_dict()
    assert data["invocation_rate"] == pytest.approx(0.8) and data["fallbacks"]["uncertain"] == 480
    assert isinstance(stats, SwapStats)
    with pytest.raises(Exception):
        stats.calls = 0  # type: ignore[misc]  # a frozen snapshot
    swapped.reset_stats()
    assert swapped.stats.calls == 0 and swapped.stats.invocation_rate == 0.0


# -- bad arguments to swap ---------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, text", [
    ({"mode": "fast"}, "mode='fast'"),
    ({"shadow_rate": 1.5}, "shadow_rate=1.5"),
    ({"shadow_rate": -0.1}, "shadow_rate=-0.1"),
    ({"label_spread": 2}, "label_spread=2"),
    ({"tolerance": 0.1}, "tolerance=0.1"),
    ({"keep": -1}, "keep=-1"),
    ({"on_disagreement": 3}, "on_disagreement=3"),
])
def test_bad_arguments_name_value_and_fix(kwargs: dict[str, Any], text: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        swap(price, StandIn(price, SCHEMA), **kwargs)
    assert text in str(caught.value)


def test_not_a_surrogate() -> None:
    with pytest.raises(InvalidArgument, match="is not a surrogate.*replace.fit"):
        swap(price, lambda **kw: 1.0)
    with pytest.raises(InvalidArgument, match="fn=3"):
        swap(3, StandIn(price, SCHEMA))  # type: ignore[arg-type]


# -- with real surrogates from replace.fit (session fixtures in conftest.py) ----------------------
def _smooth_inputs(n: int, seed: int) -> list[dict[str, float]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    return [{"x": float(a), "y": float(b)} for a, b in rng.uniform(0.0, 1.0, size=(n, 2))]


def test_real_surrogate_mode_answers_with_the_surrogate_and_refuses_outside(smooth_fit: Any) -> None:
    from conftest import smooth

    swapped = swap(smooth, smooth_fit, "surrogate")
    inputs = _smooth_inputs(200, seed=11)
    answers = [swapped(**kw) for kw in inputs]
    assert answers == [smooth_fit.predict_one(kw).output for kw in inputs]
    assert all(type(a) is float for a in answers)
    agree = [smooth_fit.tolerance.agrees(smooth(**kw), a) for kw, a in zip(inputs, answers)]
    assert sum(agree) >= 100  # it learned the function (the fit's quality is tested in test_fit)
    assert swapped.stats.served_by_surrogate == 200
    for bad, named in (({"x": 1.5, "y": 0.5}, "x=1.5"), ({"x": math.nan, "y": 0.5}, "x=nan"),
                       ({"x": 0.5, "y": "a"}, "y='a'")):
        with pytest.raises(OutOfDomainError, match=named):
            swapped(**bad)
    assert swapped.stats.rejected == 3
    with pytest.raises(TypeError, match=r"smooth\(\) missing 1 required positional argument: 'y'"):
        swapped(0.5)


def test_real_shadow_returns_originals_values_and_counts_disagreements(smooth_fit: Any) -> None:
    from conftest import smooth

    inputs = _smooth_inputs(150, seed=12)
    swapped = swap(smooth, smooth_fit, "shadow")
    assert [swapped(**kw) for kw in inputs] == [smooth(**kw) for kw in inputs]
    off = [kw for kw in inputs if not smooth_fit.tolerance.agrees(smooth(**kw), smooth_fit.predict_one(kw).output)]
    stats = swapped.stats
    assert stats.shadow_comparisons == 150 and stats.disagreements == len(off)
    assert [d.inputs for d in swapped.disagreements] == off[-100:]

    def drifted(x: float, y: float) -> float:  # the legacy code changed: the surrogate is now off by 100
        return smooth(x, y) + 100.0

    watch = swap(drifted, smooth_fit, "shadow", shadow_rate=0.5, seed=3)
    assert [watch(**kw) for kw in inputs] == [drifted(**kw) for kw in inputs]
    stats = watch.stats
    assert 50 <= stats.shadow_comparisons <= 100 and stats.disagreements == stats.shadow_comparisons
    last = watch.disagreements[-1]
    assert last.expected == drifted(**last.inputs) and last.actual == smooth_fit.predict_one(last.inputs).output
    assert stats.speedup is not None


def test_real_guarded_serves_or_falls_back_by_spread(smooth_fit: Any) -> None:
    from conftest import smooth

    inputs = _smooth_inputs(100, seed=13) + [{"x": math.nan, "y": 0.5}, {"x": 2.0, "y": 0.5}]
    loose = swap(smooth, smooth_fit, "guarded", **SPREAD_GATE, tolerance=Tolerance(abs=100.0))
    strict = swap(smooth, smooth_fit, "guarded", **SPREAD_GATE, tolerance=Tolerance(abs=1e-12))
    for kw in inputs:
        expected = smooth(**kw)
        served_loose, served_strict = loose(**kw), strict(**kw)
        if math.isnan(kw["x"]):
            assert math.isnan(served_loose) and math.isnan(served_strict)  # the original's own NaN
        elif kw["x"] > 1.0:
            assert served_loose == served_strict == expected
        else:
            assert served_strict == expected  # the members never agree within 1e-12: the original
            assert served_loose == smooth_fit.predict_one(kw).output
    assert loose.stats.served_by_surrogate == 100 and loose.stats.fallbacks["out_of_domain"] == 2
    assert strict.stats.served_by_surrogate == 0
    assert strict.stats.fallbacks == {"out_of_domain": 2, "uncertain": 100, "surrogate_error": 0, "tripped": 0}
    assert strict.stats.invocation_rate == 0.0 and loose.stats.invocation_rate == pytest.approx(100 / 102)


def _outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "value", fn(*args)
    except Exception as exc:
        return "raise", type(exc)


def test_real_guarded_answers_are_the_surrogates_or_the_originals(raising_fit: Any) -> None:
    import numpy as np

    from conftest import guarded_sqrt

    swapped = swap(guarded_sqrt, raising_fit, "guarded", **SPREAD_GATE)
    for x in np.linspace(-1.0, 4.0, 41):
        for zone in ("N", "S", ""):
            before = swapped.stats.served_by_surrogate
            got = _outcome(swapped, float(x), zone)
            if swapped.stats.served_by_surrogate > before:
                p = raising_fit.predict_one({"x": float(x), "zone": zone})
                assert p.spread <= (raising_fit.tolerance.bound(p.output) if p.error is None else 0.0)
                assert got == (("raise", p.error.exception_class()) if p.error else ("value", p.output))
            else:
                assert got == _outcome(guarded_sqrt, float(x), zone)
    stats = swapped.stats
    assert stats.calls == 123 and stats.served_by_surrogate + stats.served_by_original == 123
    assert stats.served_by_surrogate > 0 and stats.fallbacks["out_of_domain"] == 0
    with pytest.raises(KeyError):
        swapped(1.0, "W")  # unknown zone: out of domain, so the original raises its own KeyError
    assert swapped.stats.fallbacks["out_of_domain"] == 1


def test_real_shadow_compares_labels_exactly(label_fit: Any) -> None:
    from conftest import grade

    swapped = swap(grade, label_fit, "shadow")
    inputs = [{"score": float(s), "bonus": b} for s in range(0, 101, 5) for b in (0, 3, 5)]
    assert [swapped(**kw) for kw in inputs] == [grade(**kw) for kw in inputs]
    wrong = [kw for kw in inputs if label_fit.predict_one(kw).output != grade(**kw)]
    stats = swapped.stats
    assert stats.shadow_comparisons == len(inputs) and stats.disagreements == len(wrong)
    for d in swapped.disagreements:
        assert d.expected != d.actual and d.excess == math.inf


def test_fast_domain_check_never_admits_what_the_schema_refuses() -> None:
    import numpy as np

    from replace._binding import _make_domain_check

    def mixed(r: float, n: int, flag: bool, c: str) -> float:
        return 0.0

    schema = Schema.from_function(mixed, r=(0.0, 1.0), n=(1, 5), flag=bool, c=["a", "b", 3], output="real")
    inside = _make_domain_check(schema, schema.names)
    assert inside is not None
    odd = [0.5, 0, 1, 1.0, -0.1, 1.1, math.nan, math.inf, np.float64(0.5), np.int64(3), True, False, np.bool_(True),
           3, 3.0, 5, 6, "a", "b", "c", None, [1], {}, b"a", np.float32(0.25), 2.5]
    plain = {"r": 0.5, "n": 2, "flag": True, "c": "a"}
    assert inside(plain)
    for name in plain:
        for value in odd:
            kwargs = {**plain, name: value}
            fast = inside(kwargs)
            try:
                exact = schema.contains(kwargs)[0]
            except (ValueError, OverflowError):  # Field.contains on NaN/inf for an integer (reported)
                exact = False
            assert not fast or exact, (name, value)
            swapped = swap(mixed, StandIn(mixed, schema), "guarded", **SPREAD_GATE)
            assert (swapped._outside(kwargs) == "") == exact, (name, value)


def test_integer_nan_is_out_of_domain_not_a_crash() -> None:
    def counted(n: int) -> float:
        return float(n) * 2

    schema = Schema.from_function(counted, n=(1, 5), output="real")
    with pytest.raises(OutOfDomainError, match="n=nan"):
        swap(counted, StandIn(counted, schema), "surrogate")(math.nan)
    guarded = swap(counted, StandIn(counted, schema), "guarded", **SPREAD_GATE)
    assert math.isnan(guarded(math.nan)) and guarded(math.inf) == math.inf
    assert guarded.stats.fallbacks["out_of_domain"] == 2


# -- coroutine functions -----------------------------------------------------------------------
async def aprice(x: float, y: float, kind: str = "a") -> float:
    """The async twin of price."""
    return price(x, y, kind)


def test_async_functions_are_awaited_in_every_mode() -> None:
    import asyncio

    from replace._swap import AsyncSwapped

    standin = StandIn(price, SCHEMA, offset=0.5, wide=1.0)
    shadow = swap(aprice, standin, "shadow")
    guarded = swap(aprice, standin, "guarded", **SPREAD_GATE)
    served = swap(aprice, standin, "surrogate")
    assert isinstance(shadow, AsyncSwapped) and asyncio.iscoroutinefunction(shadow)
    assert shadow.__name__ == "aprice" and inspect.signature(shadow) == inspect.signature(aprice)

    async def run() -> list[Any]:
        return [await shadow(2.0, 0.5), await guarded(2.0, 0.5), await guarded(9.0, 0.5), await served(2.0, 0.5)]

    assert asyncio.run(run()) == [1.0, 1.5, 4.5, 1.5]
    assert shadow.stats.disagreements == 1
    assert guarded.stats.served_by_surrogate == 1 and guarded.stats.fallbacks["uncertain"] == 1

    async def bad() -> None:
        await served(20.0, 0.5)

    with pytest.raises(OutOfDomainError):
        asyncio.run(bad())


@pytest.mark.parametrize("expected, actual, agree", [
    (1.0, 1.0 + 0.009, True), (1.0, 1.011, False), (1, 1.0, True), (math.nan, math.nan, True),
    (math.nan, 1.0, False), (1.0, math.nan, False), (math.inf, math.inf, True), (math.inf, -math.inf, False),
    (0.0, 0.0, True), (-2.0, -2.0 - 0.0105, False),
])
def test_scalar_comparison_matches_tolerance_agrees(expected: float, actual: float, agree: bool) -> None:
    def const(x: float, y: float, kind: str = "a") -> float:
        return expected

    class Says(StandIn):
        def predict_one(self, kwargs: dict[str, Any]) -> OnePrediction:
            return OnePrediction(actual, None, 0.0)

    assert TOL.agrees(expected, actual) == agree
    swapped = swap(const, Says(const, SCHEMA), "shadow")
    swapped(1.0, 0.0)
    assert swapped.stats.disagreements == (0 if agree else 1)
    if not agree:
        assert swapped.disagreements[0].excess == pytest.approx(TOL.excess(expected, actual))


def test_mode_can_move_along_a_rollout() -> None:
    standin = StandIn(boxed, SCHEMA, offset=0.5)
    swapped = swap(boxed, standin, "shadow", **SPREAD_GATE)
    assert isinstance(swapped(1.0, 0.5), Box)
    swapped.mode = "guarded"
    assert swapped(1.0, 0.5) == pytest.approx(1.0)  # the surrogate's float now
    swapped.mode = "SURROGATE"
    assert swapped.mode == "surrogate" and swapped(1.0, 0.5) == pytest.approx(1.0)
    with pytest.raises(InvalidArgument, match="mode='fast'"):
        swapped.mode = "fast"
    stats = swapped.stats
    assert stats.calls == 3 and stats.shadow_comparisons == 1 and stats.served_by_surrogate == 2
    assert stats.mode == "surrogate"


# -- calibrating the gate ------------------------------------------------------------------------
class Biased(StandIn):
    """Spread grows with x; the error is large (0.5) exactly where x > 6, small elsewhere."""

    def predict_one(self, kwargs: dict[str, Any]) -> OnePrediction:
        x = kwargs["x"]
        truth = price(**kwargs) if not (kwargs.get("kind") == "neg" and x > 5) else 0.0
        return OnePrediction(truth + (0.5 if x > 6 else 0.001), None, 0.001 * x)


def test_spread_scale_makes_the_gate_stricter() -> None:
    loose = swap(price, Biased(price, SCHEMA), "guarded", **SPREAD_GATE)  # bound 0.01: spread 0.001 * x always passes
    strict = swap(price, Biased(price, SCHEMA), "guarded", spread_scale=2.0)  # passes while x <= 5
    never = swap(price, Biased(price, SCHEMA), "guarded", spread_scale=math.inf)
    for x in (1.0, 4.0, 5.5, 7.0, 9.0):
        loose(x, 0.5), strict(x, 0.5), never(x, 0.5)
    assert loose.stats.served_by_surrogate == 5
    assert strict.stats.served_by_surrogate == 2 and strict.stats.fallbacks["uncertain"] == 3
    assert never.stats.served_by_surrogate == 0
    with pytest.raises(InvalidArgument, match="spread_scale=-1"):
        swap(price, Biased(price, SCHEMA), "guarded", spread_scale=-1)


def test_calibrate_guard_finds_the_loosest_safe_scale() -> None:
    from replace._swap import calibrate_guard

    inputs = [{"x": x / 10, "y": 0.5, "kind": "a"} for x in range(0, 101)]
    cal = calibrate_guard(price, Biased(price, SCHEMA), inputs, target=1.0)
    # agreement holds for x <= 6 (ratio 0.1 * x), so the threshold ratio is 0.6
    assert cal.spread_scale == pytest.approx(1 / 0.6)
    assert cal.invocation_rate == pytest.approx(61 / 101) and cal.agreement_served == 1.0
    assert cal.agreement_all == pytest.approx(61 / 101)
    swapped = swap(price, Biased(price, SCHEMA), "guarded", spread_scale=cal.spread_scale)
    answers = [swapped(**kw) for kw in inputs]
    assert all(TOL.agrees(price(**kw), a) for kw, a in zip(inputs, answers))
    assert swapped.stats.invocation_rate == pytest.approx(61 / 101, abs=0.011)
    nothing = calibrate_guard(price, StandIn(price, SCHEMA, offset=1.0), inputs, target=0.5)
    assert nothing.spread_scale == math.inf and nothing.invocation_rate == 0.0


def test_calibrate_guard_on_a_real_surrogate(smooth_fit: Any) -> None:
    from conftest import smooth

    from replace._swap import calibrate_guard

    cal = calibrate_guard(smooth, smooth_fit, n=300, target=0.99)
    assert cal.n == 300
    if cal.spread_scale != math.inf:
        assert cal.agreement_served >= 0.99
        swapped = swap(smooth, smooth_fit, "guarded", spread_scale=cal.spread_scale)
        for kw in smooth_fit.schema.sample(300, seed=0):  # the calibration inputs themselves
            swapped(**kw)
        assert swapped.stats.invocation_rate == pytest.approx(cal.invocation_rate, abs=0.01)


def test_vector_arguments_are_checked_element_by_element() -> None:
    def norm(v: tuple, scale: float) -> float:
        return scale * math.sqrt(sum(x * x for x in v))

    schema = Schema.from_function(norm, v={"length": 3, "low": -1.0, "high": 1.0}, scale=(0.0, 2.0), output="real")
    guarded = swap(norm, StandIn(norm, schema, offset=1.0), "guarded", **SPREAD_GATE)
    assert guarded((0.1, 0.2, 0.2), 1.0) == pytest.approx(1.3)  # served: the stand-in adds 1
    for bad in ((0.1, 0.2), (0.1, math.nan, 0.2), (0.1, 2.0, 0.2)):
        guarded(bad, 1.0)  # the original answers
    assert guarded.stats.fallbacks["out_of_domain"] == 3
    with pytest.raises(OutOfDomainError, match="v has length 2, expected 3"):
        swap(norm, StandIn(norm, schema), "surrogate")((0.1, 0.2), 1.0)
    with pytest.raises(OutOfDomainError, match="v='abc' is not a vector"):
        swap(norm, StandIn(norm, schema), "surrogate")("abc", 1.0)


def test_positional_only_parameters() -> None:
    from replace._swap import calibrate_guard

    def posonly(x: float, y: float, /, kind: str = "a") -> float:
        return price(x, y, kind)

    schema = Schema.from_function(posonly, x=(0.0, 10.0), y=(-1.0, 1.0), kind=["a", "b", "neg"], output="real")
    for mode in ("surrogate", "guarded", "shadow"):
        swapped = swap(posonly, StandIn(price, schema), mode)
        assert swapped(2.0, 0.5) == 1.0 and swapped(2.0, 0.5, kind="b") == 2.0
        with pytest.raises(TypeError) as caught:
            swapped(x=2.0, y=0.5)
        with pytest.raises(TypeError) as original:
            posonly(x=2.0, y=0.5)  # type: ignore[call-arg]
        assert str(caught.value) == str(original.value)
    cal = calibrate_guard(posonly, StandIn(price, schema), n=50)
    assert 30 <= cal.n <= 50 and cal.agreement_all == 1.0  # calls that raise are gated by label_spread


# -- the disagreement log survives the interpreter's exit ------------------------------------------
_EXIT_SCRIPT = '''
import sys
from dataclasses import dataclass

from probes import ErrorInfo, Schema, Tolerance
from probes._store_sqlite import SQLiteStore
from replace._disagreement_log import _StoreWriter
from replace._swap import swap

if sys.argv[2] == "no-hook":  # the control: what the exit hook prevents
    _StoreWriter._flush_at_exit = staticmethod(lambda ref: None)


def price(x: float, y: float) -> float:
    return x * y


@dataclass
class Prediction:
    output: float
    error: object = None
    spread: float = 0.0
    path: object = None


class OffByOne:
    schema = Schema.from_function(price, x=(0.0, 10.0), y=(-1.0, 1.0), probe=0)
    tolerance = Tolerance(abs=1e-2)
    ensemble_size = 3

    def predict_one(self, kwargs):
        return Prediction(price(**kwargs) + 1.0)


class SlowFlakyStore(SQLiteStore):
    """The first write fails (a locked file), every write takes a moment: the exit comes first."""

    tries = 0

    def add(self, records):
        import time

        time.sleep(0.3)
        SlowFlakyStore.tries += 1
        if SlowFlakyStore.tries == 1:
            raise OSError("database is locked")
        super().add(records)


swapped = swap(price, OffByOne(), "shadow", record_to=SlowFlakyStore(sys.argv[1]))
for i in range(20):
    assert swapped(float(i % 10), 0.5) == (i % 10) * 0.5
print("exiting without flush", flush=True)
'''


@pytest.mark.parametrize("hook", ["hook", "no-hook"])
def test_shadow_rows_are_written_at_exit_without_flush(tmp_path: Any, hook: str) -> None:
    import subprocess
    import sys

    from probes._store_sqlite import SQLiteStore

    path = tmp_path / "shadow.db"
    done = subprocess.run([sys.executable, "-c", _EXIT_SCRIPT, str(path), hook], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "exiting without flush" in done.stdout
    store = SQLiteStore(path)
    try:
        rows = store.count("__main__:price")
    finally:
        store.close()
    if hook == "hook":  # retried after the failed first write, and flushed by the exit hook
        assert rows == 20
    else:  # without the hook the daemon thread dies with the interpreter, rows still queued
        assert rows < 20


def test_store_writer_retries_then_reports_and_can_be_collected() -> None:
    import gc
    import time
    import weakref

    from probes._store import TraceStore
    from replace._disagreement_log import _StoreWriter

    class Flaky(type(TraceStore.open("memory://"))):  # the in-memory backend
        def __init__(self, failures: int) -> None:
            super().__init__()
            self.failures, self.calls = failures, 0

        def add(self, records: Any) -> None:
            self.calls += 1
            if self.calls <= self.failures:
                raise TimeoutError("store unreachable")
            super().add(records)

    errors: list[str] = []
    store = Flaky(failures=2)
    writer = _StoreWriter(store, price, lambda exc: errors.append(type(exc).__name__))
    writer.retry_delays_s = (0.01, 0.01, 0.01)
    writer.put({"x": 1.0, "y": 2.0, "kind": "a"}, 2.0, None, 0.001)
    assert writer.flush(10)
    assert (writer.written, writer.retried, writer.failed, errors) == (1, 1, 0, [])
    assert store.count(price) == 1

    store.failures = store.calls + 10  # down for good: four tries, then the row is lost and reported
    writer.put({"x": 2.0, "y": 2.0, "kind": "a"}, 4.0, None, 0.001)
    assert writer.flush(10)
    assert (writer.written, writer.retried, writer.failed, writer.failed_by_reason) == (1, 2, 1, {"TimeoutError": 1})
    assert errors == ["TimeoutError"]

    ref = weakref.ref(writer)
    thread = writer.thread
    del writer
    for _ in range(100):  # the thread lets go of it right after the batch that flush waited for
        gc.collect()
        if ref() is None:
            break
        time.sleep(0.02)
    assert ref() is None  # the thread and the exit hook hold it only weakly
    thread.join(5)
    assert not thread.is_alive()  # ended by the finalizer that also unregisters the exit hook
