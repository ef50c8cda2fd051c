"""replace._audit: the live audit's sequential test (detection, bounded false alarms) and the drift monitor."""

from __future__ import annotations

import json
import math
import random
import statistics
import threading

import numpy as np
import pytest
from scipy.stats import binom, binomtest

from probes import InvalidArgument, Schema
from replace._audit import DriftMonitor, FieldSupport, LiveAudit, alternatives_for, log_evidence_paths


# -- simulation helpers --------------------------------------------------------------------------
def _delay(p0: float, audit_rate: float, wrong_rate: float, calls: int, seed: int) -> int | None:
    """Served calls until `LiveAudit` trips (None when it does not within `calls`), driven call by call."""
    audit = LiveAudit(p0, audit_rate, seed=seed)
    truth = random.Random(10_000 + seed)
    for call in range(1, calls + 1):
        if audit.should_audit() and audit.observe(truth.random() < wrong_rate):
            return call
    return None


def _false_trips(p0: float, audit_rate: float, calls: int, streams: int, seed: int) -> int:
    """Streams (of `calls` served calls at true error exactly p0) in which the statistic reaches 1/false_alarm."""
    rng = np.random.default_rng(seed)
    n_audits = rng.binomial(calls, audit_rate, size=streams)  # audits within the horizon, per stream
    outcomes = rng.random((streams, int(n_audits.max()))) < p0
    log_m = log_evidence_paths(outcomes, p0)
    within = np.arange(1, outcomes.shape[1] + 1)[None, :] <= n_audits[:, None]
    return int(((log_m >= math.log(100.0)) & within).any(axis=1).sum())


def _allowed(streams: int, bound: float = 0.01) -> int:
    """Most false trips not significantly above `bound` (one-sided binomial at 0.1%)."""
    return int(binom.ppf(0.999, streams, bound))


# -- the statistic ---------------------------------------------------------------------------------
@pytest.mark.parametrize("p0", [0.001, 0.01, 0.05, 0.3, 0.5, 0.95])
def test_alternatives_lie_strictly_between_the_asked_rate_and_one(p0):
    grid = alternatives_for(p0)
    assert grid and list(grid) == sorted(set(grid))
    assert all(p0 < p1 < 1.0 for p1 in grid)


def test_alternatives_for_one_percent_span_a_slow_decay_to_a_break():
    assert alternatives_for(0.01) == pytest.approx((0.015, 0.02, 0.03, 0.05, 0.1, 0.3, 0.5))


def test_class_and_vectorised_statistic_agree_and_trip_at_the_same_audit():
    rng = np.random.default_rng(3)
    paths = rng.random((4, 1500)) < 0.01
    paths[:, 1000:] = rng.random((4, 500)) < 0.2  # a break after 1000 audits
    log_m = log_evidence_paths(paths, 0.01)
    for row, expected in zip(paths, log_m):
        audit = LiveAudit(0.01, 0.05)
        seen, trips = [], []
        for n, wrong in enumerate(row, start=1):
            if audit.observe(bool(wrong)):
                trips.append(n)
            seen.append(math.log(audit.evidence))
        assert np.allclose(seen, expected, atol=1e-9)
        first = int(np.argmax(expected >= math.log(100.0))) + 1
        assert trips == [first] and audit.tripped_after == first and audit.tripped


def test_statistic_starts_at_one_and_only_falls_while_every_answer_is_right():
    log_m = log_evidence_paths(np.zeros((1, 5000), dtype=bool), 0.01)[0]
    assert log_m[0] < 0 and np.all(np.diff(log_m) <= 1e-12)
    audit = LiveAudit(0.01, 0.05)
    assert audit.evidence == 1.0


# -- detection -------------------------------------------------------------------------------------
def test_a_break_to_30pct_wrong_is_detected_within_500_served_calls():
    """max_error_rate=1%, audit 5% of served calls: 1000 seeded streams, 30% wrong from call 1.

    About 96% is this test's ceiling, not noise: within 500 calls come ~25 audits, and a
    stream with <= 4 wrong among them (P ~ 9%) often lacks the evidence for 1/false_alarm.
    """
    delays = [_delay(0.01, 0.05, 0.3, 500, seed) for seed in range(1000)]
    share = sum(d is not None for d in delays) / len(delays)
    median = statistics.median(d if d is not None else math.inf for d in delays)
    print(f"detected within 500 served calls: {share:.3f}, median delay {median} calls")
    assert share >= 0.95
    assert median <= 200  # about 5 audits


def test_rate_one_in_a_thousand_detects_fast():
    delays = [_delay(0.001, 0.05, 0.3, 500, seed) for seed in range(100)]
    assert sum(d is not None for d in delays) >= 97


def test_rate_five_percent_needs_more_audits_but_detects():
    """0.3 against 0.05 is a smaller effect: about 14 audits, so within 2000 served calls."""
    delays = [_delay(0.05, 0.05, 0.3, 2000, seed) for seed in range(100)]
    assert sum(d is not None for d in delays) >= 97
    assert statistics.median(d for d in delays if d is not None) <= 500


def test_a_break_after_a_long_clean_run_is_still_detected_promptly():
    """2000 clean audits first: the start-time mixture needs ~2 log(2000) more evidence, not the whole run back."""
    rng = np.random.default_rng(5)
    paths = np.concatenate([rng.random((100, 2000)) < 0.001, rng.random((100, 300)) < 0.3], axis=1)
    over = log_evidence_paths(paths, 0.01) >= math.log(100.0)
    assert not over[:, :2000].any()
    delays = [int(np.argmax(row[2000:])) + 1 for row in over]
    assert over[:, 2000:].any(axis=1).all()
    assert statistics.median(delays) <= 40  # audits after the break; a plain mixture needs ~125


# -- false alarms ----------------------------------------------------------------------------------
@pytest.mark.parametrize("p0", [0.001, 0.01, 0.05])
def test_false_alarms_at_the_hardest_null_stay_within_the_bound(p0):
    """True served error == max_error_rate, 100,000 served calls at audit_rate 5%, 200 streams."""
    trips = _false_trips(p0, 0.05, 100_000, 200, seed=int(p0 * 1000))
    print(f"p0={p0}: {trips}/200 streams tripped falsely (bound 1%)")
    assert trips <= _allowed(200)


def test_a_function_that_is_never_wrong_never_trips():
    audit = LiveAudit(0.01, 1.0, false_alarm=0.5)
    assert not any(audit.observe(False) for _ in range(20_000))
    assert not audit.tripped and audit.evidence <= 1.0 and audit.wrong == 0


def test_errors_below_the_asked_rate_do_not_trip():
    rng = np.random.default_rng(11)
    paths = rng.random((200, 5000)) < 0.005  # half the asked 1%
    assert ((log_evidence_paths(paths, 0.01) >= math.log(100.0)).any(axis=1)).sum() <= _allowed(200)


# -- API -------------------------------------------------------------------------------------------
def test_observe_returns_true_once_and_the_guard_stays_tripped():
    audit = LiveAudit(0.01, 0.05)
    results = [audit.observe(True) for _ in range(10)]
    assert results.count(True) == 1 and audit.tripped
    assert audit.tripped_after == results.index(True) + 1
    assert audit.audited == 10 and audit.wrong == 10 and audit.error_rate == 1.0


def test_should_audit_is_seeded_and_takes_the_asked_share():
    a, b = LiveAudit(0.01, 0.05, seed=7), LiveAudit(0.01, 0.05, seed=7)
    first, second = [a.should_audit() for _ in range(20_000)], [b.should_audit() for _ in range(20_000)]
    assert first == second and first != [b.should_audit() for _ in range(20_000)]
    assert binomtest(sum(first), 20_000, 0.05).pvalue > 0.001
    assert not any(LiveAudit(0.01, 0.0).should_audit() for _ in range(1000))
    assert all(LiveAudit(0.01, 1.0).should_audit() for _ in range(1000))


def test_interval_is_clopper_pearson():
    audit = LiveAudit(0.01, 0.05)
    assert audit.interval() == (0.0, 1.0)
    for wrong in [True] * 3 + [False] * 97:
        audit.observe(wrong)
    exact = binomtest(3, 100).proportion_ci(0.95, method="exact")
    assert audit.interval() == pytest.approx((exact.low, exact.high))
    wide = binomtest(3, 100).proportion_ci(0.99, method="exact")
    assert audit.interval(0.99) == pytest.approx((wide.low, wide.high))
    with pytest.raises(InvalidArgument, match="level"):
        audit.interval(1.5)


def test_reset_forgets_audits_and_untrips():
    audit = LiveAudit(0.01, 0.05)
    for _ in range(10):
        audit.observe(True)
    assert audit.tripped
    audit.reset()
    assert (audit.audited, audit.wrong, audit.tripped, audit.tripped_after) == (0, 0, False, None)
    assert audit.evidence == 1.0 and audit.error_rate is None
    assert [audit.observe(True) for _ in range(10)].count(True) == 1  # trips again after reset


def test_to_dict_is_plain_json():
    audit = LiveAudit(0.01, 0.05, false_alarm=0.05)
    audit.observe(True)
    audit.observe(False)
    data = audit.to_dict()
    json.dumps(data)
    assert data["audited"] == 2 and data["wrong"] == 1 and data["error_rate"] == 0.5
    assert data["threshold"] == pytest.approx(20.0) and data["tripped"] is False
    assert len(data["interval_95"]) == 2 and "LiveAudit(" in repr(audit)


def test_observe_and_should_audit_from_threads_add_up():
    audit = LiveAudit(0.2, 0.5, false_alarm=1e-9)

    def work(worker: int) -> None:
        for i in range(2000):
            audit.should_audit()
            audit.observe(i % 10 == worker % 10)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert audit.audited == 16_000 and audit.wrong == 1600
    assert not audit.tripped  # 10% wrong against an asked 20%


@pytest.mark.parametrize("kwargs, name", [
    (dict(max_error_rate=0.0, audit_rate=0.05), "max_error_rate"),
    (dict(max_error_rate=1.0, audit_rate=0.05), "max_error_rate"),
    (dict(max_error_rate=-0.1, audit_rate=0.05), "max_error_rate"),
    (dict(max_error_rate="0.01", audit_rate=0.05), "max_error_rate"),
    (dict(max_error_rate=float("nan"), audit_rate=0.05), "max_error_rate"),
    (dict(max_error_rate=0.01, audit_rate=-0.01), "audit_rate"),
    (dict(max_error_rate=0.01, audit_rate=1.01), "audit_rate"),
    (dict(max_error_rate=0.01, audit_rate=True), "audit_rate"),
    (dict(max_error_rate=0.01, audit_rate=0.05, false_alarm=0.0), "false_alarm"),
    (dict(max_error_rate=0.01, audit_rate=0.05, false_alarm=1.0), "false_alarm"),
    (dict(max_error_rate=0.01, audit_rate=0.05, seed=1.5), "seed"),
])
def test_bad_arguments_raise_naming_the_argument(kwargs, name):
    with pytest.raises(InvalidArgument, match=rf"^{name}="):
        LiveAudit(**kwargs)


def test_audit_rate_bounds_are_allowed():
    assert LiveAudit(0.01, 0.0).audit_rate == 0.0 and LiveAudit(0.01, 1).audit_rate == 1.0


# -- drift -----------------------------------------------------------------------------------------
def quote(weight: float, items: int, zone: str, express: bool, dims: list) -> float:
    return weight


def _monitor() -> DriftMonitor:
    schema = Schema.from_function(quote, weight=(0.0, 100.0), items=(1, 50), zone=["EU", "US", "ROW"],
                                  express=[False, True], dims={"length": 2, "low": 0.0, "high": 1.0},
                                  output="real", probe=0)
    columns = {
        "weight": np.array([1.0, 2.5, 10.0]),
        "items": np.array([1, 3, 7]),
        "zone": np.array(["EU", "US", "EU"], dtype=object),
        "express": np.array([False, False, False]),
        "dims": np.array([[0.1, 0.2], [0.3, 0.5], [0.2, 0.4]]),
    }
    kinds = {f.name: f.kind for f in schema.fields}
    assert kinds == {"weight": "real", "items": "integer", "zone": "categorical", "express": "boolean",
                     "dims": "vector"}
    return DriftMonitor.from_columns(columns, schema)


INSIDE = dict(weight=2.0, items=3, zone="US", express=False, dims=[0.2, 0.3])


@pytest.mark.parametrize("field, value", [
    ("weight", 10.5), ("weight", 0.5), ("weight", float("nan")), ("weight", "2"), ("weight", True),
    ("items", 8), ("items", 0), ("items", 2.5),
    ("zone", "ROW"), ("zone", "XX"), ("zone", ["EU"]),
    ("express", True), ("express", 0),
    ("dims", [0.05, 0.3]), ("dims", [0.2, 0.6]), ("dims", [0.2]), ("dims", "ab"),
])
def test_a_value_outside_the_calibration_support_counts_by_field(field, value):
    monitor = _monitor()
    assert monitor.observe(INSIDE) is False
    assert monitor.observe({**INSIDE, field: value}) is True
    assert (monitor.seen, monitor.outside, monitor.share) == (2, 1, 0.5)
    assert monitor.by_field == {field: 1}


def test_inside_values_at_the_support_edges_count_as_inside():
    monitor = _monitor()
    for row in [INSIDE, dict(weight=1.0, items=7, zone="EU", express=False, dims=(0.1, 0.5)),
                dict(weight=10, items=1.0, zone="US", express=np.bool_(False), dims=np.array([0.3, 0.2]))]:
        assert monitor.observe(row) is False
    assert monitor.share == 0.0 and monitor.by_field == {}


def test_several_fields_out_and_a_missing_one():
    monitor = _monitor()
    assert monitor.outside_fields({**INSIDE, "weight": 99.0, "zone": "XX"}) == ["weight", "zone"]
    assert monitor.seen == 0  # outside_fields counts nothing
    monitor.observe({**INSIDE, "weight": 99.0, "zone": "XX"})
    no_items = dict(INSIDE)
    del no_items["items"]
    monitor.observe(no_items)
    assert monitor.by_field == {"weight": 1, "zone": 1, "items": 1} and monitor.outside == 2
    data = monitor.to_dict()
    json.dumps(data)
    assert data == {"seen": 2, "outside": 2, "share": 1.0, "by_field": {"weight": 1, "zone": 1, "items": 1}}
    monitor.reset()
    assert (monitor.seen, monitor.outside, monitor.by_field) == (0, 0, {})


def test_kinds_from_dtypes_without_a_schema():
    monitor = DriftMonitor.from_columns({"x": np.array([0.0, 1.0]), "n": np.array([2, 4]),
                                         "flag": np.array([True, False]), "c": np.array(["a", "b"], dtype=object)})
    kinds = {name: item.kind for name, item in monitor.support.items()}
    assert kinds == {"x": "real", "n": "integer", "flag": "boolean", "c": "categorical"}
    assert not monitor.observe(dict(x=0.5, n=3, flag=True, c="a"))
    assert monitor.observe(dict(x=0.5, n=3, flag=True, c="z"))
    assert monitor.support["x"] == FieldSupport("x", "real", 0.0, 1.0)


def test_drift_counts_add_up_from_threads():
    monitor = _monitor()

    def work() -> None:
        for i in range(500):
            monitor.observe({**INSIDE, "weight": 50.0} if i % 5 == 0 else INSIDE)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (monitor.seen, monitor.outside, monitor.by_field) == (3000, 600, {"weight": 600})


def test_bad_drift_arguments_raise_naming_them():
    with pytest.raises(InvalidArgument, match="^support="):
        DriftMonitor({})
    with pytest.raises(InvalidArgument, match="^columns="):
        DriftMonitor.from_columns({})
    schema = Schema.from_function(quote, weight=(0.0, 1.0), items=(1, 5), zone=["EU"], express=[False, True],
                                  dims={"length": 2, "low": 0.0, "high": 1.0}, output="real", probe=0)
    with pytest.raises(InvalidArgument, match="^columns=.*'items'"):
        DriftMonitor.from_columns({"weight": np.array([0.5])}, schema)
