"""Writes store_v0_1_0.db: traces recorded by neuroswap 0.1.0 (the release before the faster
recording path), so tests/probes/test_record_format.py can check today's code still reads them.

Run once with that release checked out: python tests/probes/data/make_store_v0_1_0.py
(the file is committed; do not regenerate it with newer code).
"""

from __future__ import annotations

import datetime as dt
import decimal
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import store_v0_1_0_functions as fns  # noqa: E402

from probes import TraceStore, record  # noqa: E402


def record_calls(store) -> None:
    """The calls the store holds (the format test records them again with today's code)."""
    fee = record(store=store)(fns.shipping_fee)
    basket = record(store=store)(fns.basket_total)
    odd = record(store=store, redact=("secret",))(fns.odd_values)
    for i in range(20):
        fee(1.5 + i, 250.0, express=bool(i % 2))
    fee(float("nan"), float("inf"))
    try:
        fee(-1.0)
    except ValueError:
        pass
    basket([1.0, 2.5, 3.25], 0.1)
    basket((4, 5), currency="USD")
    odd({"a": (1, 2), 3: [None, True]}, np.arange(6, dtype=np.int32).reshape(2, 3), "hunter2",
        when=dt.datetime(2026, 1, 2, 3, 4, 5), amount=decimal.Decimal("1.10"), raw=b"\x00\xff",
        tags={"x", "y"}, c=1 + 2j, scalar=np.float32(0.5))
    record.flush()


def main() -> None:
    path = os.path.join(HERE, "store_v0_1_0.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    store = TraceStore.open(path)
    record_calls(store)
    store.close()
    for suffix in ("-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
