"""The writer's column encoder writes the same values as the per-call encoder (`_encoding`)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probes import _columns, _encoding
from probes._store import decode_inputs, encode_inputs

scalar = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)
value = st.recursive(scalar, lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
                     | st.dictionaries(st.text(max_size=3), inner, max_size=2), max_leaves=6)


def same(text: str, original) -> bool:
    """`text` decodes to `original`, type for type (compared through the per-call encoder)."""
    return _encoding.dumps(_encoding.loads(text)) == _encoding.dumps(original)


EDGES = [0.0, -0.0, 1e16, 2.0 ** 53, 1e-7, 5e-324, 1.7976931348623157e308, 123456789012345678.0, 0.1, 1e22,
         float("nan"), float("inf"), -float("inf"), 2 ** 70, -(2 ** 63), 2 ** 64, True, False, None, 7]


@pytest.mark.parametrize("column", [
    [1.5, 2.5], [1, 2, 3], [True, None, False], EDGES, [x for x in EDGES if type(x) is float and math.isfinite(x)],
    ["a", 'quo"te', "],[", "\u00e9\n\x00", ""], [[1.0, 2.5], [], [3, None, True], [1e-7, 2 ** 70]],
    [[1.0, float("nan")], [2.0]], [["a", "],["], []], [[[1.0]], [2.0]], [(1, 2), {"k": [1]}, {1, 2}],
    [np.float32(0.5), np.arange(3), 1.0], [1e308, 1e308],
])
def test_columns_decode_to_the_values(column):
    texts = _columns.column_texts(column)
    assert len(texts) == len(column)
    for text, original in zip(texts, column):
        assert same(text, original), (text, original)


@settings(max_examples=300, deadline=None)
@given(st.lists(value, min_size=1, max_size=12))
def test_any_column_decodes_to_its_values(column):
    for text, original in zip(_columns.column_texts(column), column):
        assert same(text, original)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(scalar, st.lists(st.floats() | st.integers(), max_size=3), value), min_size=1, max_size=8))
def test_rows_match_the_per_call_encoder(rows):
    names = ("a", "b_2", "c")
    columns = [_columns.column_pieces(list(column)) for column in zip(*rows)]
    texts = _columns.object_texts(names, columns, len(rows))
    for text, row in zip(texts, rows):
        expected = encode_inputs(dict(zip(names, row)))
        assert _encoding.dumps(decode_inputs(text)) == _encoding.dumps(decode_inputs(expected))
        assert list(decode_inputs(text)) == list(names)


def test_no_arguments_and_odd_names():
    assert _columns.object_texts((), [], 3) == ["{}"] * 3
    pieces = [_columns.column_pieces([1.0]), _columns.column_pieces(["x"])]
    (text,) = _columns.object_texts(("ça", 'a"b'), pieces, 1)
    assert decode_inputs(text) == {"ça": 1.0, 'a"b': "x"}


def test_works_without_orjson(monkeypatch):
    monkeypatch.setattr(_columns, "_orjson_dumps", None)
    column = [1.5, 1e-7, 2 ** 70, None]
    assert [same(t, v) for t, v in zip(_columns.column_texts(column), column)] == [True] * 4
    lists = [[1.0, 2.0], []]
    assert [same(t, v) for t, v in zip(_columns.column_texts(lists), lists)] == [True, True]


def test_every_backend_stores_column_batches_atomically_and_in_order(any_store):
    """`_add_columns` (the recorder's write) keeps order, errors and NUL-bearing messages."""
    from probes._store import TraceColumns

    plain = TraceColumns("m:f", "h1", ['{"x":1.0}', '{"x":2.0}'], ["2.0", "4.0"], None, None, [1e-6, 2e-6],
                         [1.7e9, 1.7e9 + 1])
    failing = TraceColumns("m:f", "h1", ['{"x":3.0}', '{"x":-1.0}'], ["6.0", None], [None, "ValueError"],
                           [None, "bad\x00x"], [3e-6, 4e-6], [1.7e9 + 2, 1.7e9 + 3])
    other = TraceColumns("m:g", "h2", ['{}'], ['"ok"'], None, None, [5e-6], [1.7e9 + 4])
    any_store._add_columns([plain, failing, other])
    traces = any_store.load("m:f", dedupe=False)
    assert [kw["x"] for kw in traces.inputs] == [1.0, 2.0, 3.0, -1.0]
    assert traces.outputs[:3] == [2.0, 4.0, 6.0] and traces.errors[:3] == [None, None, None]
    assert traces.errors[3].type == "ValueError" and traces.errors[3].message.startswith("bad")
    assert any_store.load("m:g").outputs == ["ok"]
    assert any_store.count() == 5


def test_flat_list_columns_of_every_immutable_scalar():
    """The wrappers' list snapshots hold only IMMUTABLE_SCALARS; every such type decodes back."""
    import datetime as dt
    import decimal
    import uuid

    items = [1.5, 2, True, None, "s", b"b", 1 + 2j, decimal.Decimal("1.1"), dt.datetime(2026, 1, 2), dt.date(2026, 1, 2),
             dt.time(3, 4), dt.timedelta(1), uuid.UUID(int=5), range(3), np.float64(0.5), np.int32(3),
             np.bool_(True), 2 ** 70, float("nan"), float("inf")]
    for item in items:
        for column in ([[1.0, item], [2.0]], [[item]], [[], [item, item]]):
            texts, open_, close = _columns.column_pieces(column, flat_lists=True)
            for text, original in zip(texts, column):
                assert same(open_ + text + close, original), (item, text)
    texts, open_, close = _columns.column_pieces([[1.0, 2.5], [], [3]], flat_lists=True)
    assert (texts, open_, close) == (["1.0,2.5", "", "3"], "[", "]")


def test_a_value_is_spelled_the_same_whatever_else_its_batch_holds():
    """`load(dedupe=True)` compares texts, so one value must not get two spellings."""
    for value in (1e-7, 1e16, 2.5, 7, True):
        alone = _columns.column_texts([value, value])[0]
        for company in ([float("nan")], [None], [float("inf"), None], [2 ** 70]):
            assert _columns.column_texts([value, *company])[0] == alone, (value, company)
    for company in (["text"], [(1, 2)], [None, "x"]):
        assert _columns.column_texts([1e-7, *company])[0] == _columns.column_texts([1e-7])[0]
