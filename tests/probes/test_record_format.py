"""Stores written by an earlier release stay readable (tests/probes/data/store_v0_1_0.db was
recorded by neuroswap 0.1.0, before the faster recording path; see make_store_v0_1_0.py)."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import os
import shutil
import sys

import numpy as np
import pytest

from probes import Redacted, TraceStore

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
sys.path.insert(0, DATA)

import store_v0_1_0_functions as fns  # noqa: E402


@pytest.fixture
def old_store(tmp_path):
    path = tmp_path / "old.db"
    shutil.copy(os.path.join(DATA, "store_v0_1_0.db"), path)
    store = TraceStore.open(path)
    yield store
    store.close()


def test_a_store_written_by_0_1_0_loads(old_store):
    fee = old_store.load(fns.shipping_fee, dedupe=False)
    assert len(fee) == 22
    assert fee.inputs[0] == {"weight": 1.5, "distance": 250.0, "express": False}
    assert fee.outputs[0] == pytest.approx(2.5 + 0.4 * 1.5 + 2.5)
    assert math.isnan(fee.inputs[20]["weight"]) and fee.inputs[20]["distance"] == math.inf
    assert fee.errors[21].type == "ValueError" and "must be >= 0" in fee.errors[21].message
    basket = old_store.load(fns.basket_total)
    assert basket.inputs == [{"prices": [1.0, 2.5, 3.25], "discount": 0.1, "currency": "EUR"},
                             {"prices": (4, 5), "discount": 0.0, "currency": "USD"}]
    assert basket.outputs == [(6.08, "EUR"), (9.0, "USD")]
    odd = old_store.load(fns.odd_values)
    (inputs,) = odd.inputs
    assert inputs["mapping"] == {"a": (1, 2), 3: [None, True]}
    np.testing.assert_array_equal(inputs["array"], np.arange(6, dtype=np.int32).reshape(2, 3))
    assert inputs["array"].dtype == np.int32
    assert isinstance(inputs["secret"], Redacted)
    assert inputs["when"] == dt.datetime(2026, 1, 2, 3, 4, 5)
    assert inputs["amount"] == decimal.Decimal("1.10") and inputs["raw"] == b"\x00\xff"
    assert inputs["tags"] == {"x", "y"} and inputs["c"] == 1 + 2j
    assert inputs["scalar"] == np.float32(0.5) and type(inputs["scalar"]) is np.float32
    assert odd.outputs[0] == {"n": 2, "shape": (2, 3), "sum": 15, "when": dt.date(2026, 1, 2)}


def test_new_traces_append_to_a_0_1_0_store(old_store):
    from probes import record

    fee = record(store=old_store)(fns.shipping_fee)
    fee(2.0, 10.0)
    record.flush()
    traces = old_store.load(fns.shipping_fee, dedupe=False)
    assert len(traces) == 23 and traces.inputs[-1] == {"weight": 2.0, "distance": 10.0, "express": False}


def test_today_writes_what_0_1_0_wrote(old_store, tmp_path):
    """The same calls recorded by today's writer (column encoder, multi-row inserts) read back
    exactly as the 0.1.0 rows do; only the redaction digest (a per-process key) differs."""
    from probes import _encoding

    import make_store_v0_1_0

    new_store = TraceStore.open(tmp_path / "new.db")
    make_store_v0_1_0.record_calls(new_store)
    for fn in (fns.shipping_fee, fns.basket_total, fns.odd_values):
        old, new = old_store.load(fn, dedupe=False), new_store.load(fn, dedupe=False)
        assert len(old) == len(new) > 0
        for before, after in zip(old.inputs, new.inputs):
            before.pop("secret", None), after.pop("secret", None)
            assert _encoding.dumps(after) == _encoding.dumps(before)
        assert _encoding.dumps(new.outputs) == _encoding.dumps(old.outputs)
        assert [e and (e.type, e.message) for e in new.errors] == [e and (e.type, e.message) for e in old.errors]
    new_store.close()


def test_today_writes_the_same_text_as_0_1_0(old_store, tmp_path):
    """Byte for byte (the redaction digest aside), so `load`'s de-duplication sees old and new
    rows of one call as repeats."""
    import re

    import make_store_v0_1_0

    new_store = TraceStore.open(tmp_path / "new.db")
    make_store_v0_1_0.record_calls(new_store)
    mask = lambda text: text and re.sub(r'"\$red":"[0-9a-f]+"', '"$red":"*"', text)  # noqa: E731
    for fn in ("store_v0_1_0_functions:shipping_fee", "store_v0_1_0_functions:basket_total",
               "store_v0_1_0_functions:odd_values"):
        old = [(mask(r.inputs), r.output, r.error_type, r.error_message) for r in old_store._rows(fn, None)]
        new = [(mask(r.inputs), r.output, r.error_type, r.error_message) for r in new_store._rows(fn, None)]
        assert new == old
    new_store.close()
