"""Retention and size: `store.prune(...)` and `store.stats()` on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from probes._encoding import dumps
from probes._errors import InvalidArgument
from probes._identity import function_name
from probes._retention import StoreStats
from probes._store import TraceRecord, encode_inputs


def rec(name="m:f", version="h1", x=1, timestamp=100.0):
    return TraceRecord(name, version, encode_inputs({"x": x}), dumps(2 * x), None, None, 0.001, timestamp)


def sample_fn(x):
    return 2 * x


def xs(store, name="m:f"):
    return [kw["x"] for kw in store.load(name, source_hash="*", dedupe=False).inputs]


def test_keep_last_keeps_the_newest_of_that_function_only(any_store):
    any_store.add([rec(x=i, timestamp=100.0 + i) for i in range(10)] + [rec("m:g", x=i) for i in range(3)])
    assert any_store.prune("m:f", keep_last=4) == 6
    assert xs(any_store) == [6, 7, 8, 9]
    assert any_store.count("m:g") == 3
    assert any_store.prune("m:f", keep_last=4) == 0 and any_store.prune("m:f", keep_last=100) == 0
    assert any_store.prune("m:nothing", keep_last=0) == 0


def test_keep_last_spans_versions_unless_one_is_named(any_store):
    for i in range(8):  # one batch each: SQLite writes a batch grouped by version
        any_store.add([rec(version="h1" if i % 2 else "h2", x=i)])
    assert any_store.prune("m:f", keep_last=5, source_hash="h1") == 0  # h1 holds 4
    assert any_store.prune("m:f", keep_last=2, source_hash="h1") == 2
    assert xs(any_store) == [0, 2, 4, 5, 6, 7]
    assert any_store.prune("m:f", keep_last=3) == 3
    assert xs(any_store) == [5, 6, 7]


def test_keep_last_zero_empties_it_and_recording_goes_on(any_store):
    any_store.add([rec(x=i) for i in range(5)])
    assert any_store.prune("m:f", keep_last=0) == 5
    assert any_store.count() == 0 and any_store.functions() == []
    any_store.add([rec(x=42)])  # a writer holding the function's id keeps writing after a prune
    assert xs(any_store) == [42] and [tuple(s) for s in any_store.functions()] == [("m:f", "h1", 1)]


def test_older_than_a_datetime_or_a_timedelta(any_store):
    any_store.add([rec(x=i, timestamp=1_000_000.0 + i) for i in range(10)] + [rec(x=99, timestamp=None)])
    assert any_store.prune("m:f", older_than=dt.datetime.fromtimestamp(1_000_005.0)) == 5
    assert xs(any_store) == [5, 6, 7, 8, 9, 99]  # a trace without a timestamp stays
    now = time.time()
    any_store.add([rec("m:g", x=1, timestamp=now - 3 * 86400), rec("m:g", x=2, timestamp=now)])
    assert any_store.prune("m:g", older_than=dt.timedelta(days=1)) == 1
    assert xs(any_store, "m:g") == [2]
    aware = dt.datetime.fromtimestamp(1_000_008.0, tz=dt.timezone.utc)
    assert any_store.prune("m:f", older_than=aware) == 3
    assert xs(any_store) == [8, 9, 99]


def test_every_function_and_function_objects(any_store):
    name = function_name(sample_fn)
    any_store.add([rec(name, x=i) for i in range(4)] + [rec("m:g", x=i) for i in range(3)])
    assert any_store.prune(sample_fn, keep_last=2) == 2
    assert xs(any_store, name) == [2, 3]
    assert any_store.prune("*", keep_last=1) == 3
    assert xs(any_store, name) == [3] and xs(any_store, "m:g") == [2]


@pytest.mark.parametrize("kwargs, match", [
    ({}, "exactly one of keep_last= and older_than="),
    ({"keep_last": 1, "older_than": dt.timedelta(days=1)}, "exactly one of"),
    ({"keep_last": -1}, r"keep_last=-1 : must be an integer >= 0"),
    ({"keep_last": True}, "keep_last=True"),
    ({"keep_last": 2.5}, "keep_last=2.5"),
    ({"older_than": "yesterday"}, "older_than='yesterday' : must be a datetime or a timedelta"),
    ({"older_than": 1700000000}, "older_than=1700000000"),
    ({"older_than": dt.date(2024, 1, 1)}, "not a date"),
    ({"older_than": dt.timedelta(days=-1)}, "must not be negative"),
    ({"keep_last": 1, "source_hash": 3}, "source_hash=3"),
])
def test_bad_prune_arguments_name_the_argument_and_the_fix(any_store, kwargs, match):
    any_store.add([rec(x=i) for i in range(3)])
    with pytest.raises(InvalidArgument, match=match):
        any_store.prune("m:f", **kwargs)
    assert any_store.count() == 3  # nothing went


@pytest.mark.parametrize("function, match", [
    (None, "function=None : must name the function"),
    ("no_colon", "module:qualname"),
    (42, "function=42"),
])
def test_bad_prune_function(any_store, function, match):
    with pytest.raises(InvalidArgument, match=match):
        any_store.prune(function, keep_last=1)


def test_stats_counts_span_and_size(any_store):
    empty = any_store.stats()
    assert isinstance(empty, StoreStats)
    assert (empty.traces, empty.functions, empty.versions, empty.oldest, empty.newest) == (0, 0, 0, None, None)
    assert empty.by_function == {}
    any_store.add([rec(x=i, timestamp=50.0 + i) for i in range(5)] + [rec(version="h2", x=9, timestamp=None)]
                  + [rec("a:b", x=1, timestamp=10.0)])
    stats = any_store.stats()
    assert stats.backend == type(any_store).__name__.replace("Store", "").lower().replace("postgres", "postgresql")
    assert stats.uri == any_store.uri
    assert (stats.traces, stats.functions, stats.versions) == (7, 2, 3)
    assert (stats.oldest, stats.newest) == (10.0, 54.0)
    assert stats.by_function == {"a:b": 1, "m:f": 6}
    assert stats.size_bytes > 0
    any_store.prune("m:f", keep_last=1)
    after = any_store.stats()
    assert (after.traces, after.functions, after.by_function) == (2, 2, {"a:b": 1, "m:f": 1})
