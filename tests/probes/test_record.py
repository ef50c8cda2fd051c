"""@record: the wrapped function behaves exactly as before, and its calls end up in the store."""

from __future__ import annotations

import asyncio
import inspect
import logging
import multiprocessing
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import traceback

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probes._errors import InvalidArgument
from probes._identity import source_hash
from probes._record import Recorder, RecorderStats, _decorate, record
from probes._store import TraceStore
from probes._store_memory import MemoryStore
from probes._store_sqlite import SQLiteStore
from probes._traces import ErrorInfo, NonReplayable, Redacted


@pytest.fixture(autouse=True)
def _recording_on(monkeypatch):
    monkeypatch.delenv("NEUROSWAP_RECORD", raising=False)
    monkeypatch.delenv("NEUROSWAP_STORE", raising=False)


@pytest.fixture
def mem():
    return MemoryStore()


def flushed(store):
    assert record.flush(timeout=60)
    return store


# -- behaviour unchanged ------------------------------------------------------------------------

class Oops(Exception):
    pass


any_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5) | st.binary(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    | st.tuples(inner, inner),
    max_leaves=8,
) | st.builds(object)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=any_value, other=any_value, fail=st.sampled_from([None, "value", "oops", "key"]))
def test_return_value_and_exception_unchanged(mem, value, other, fail):
    raised: list[BaseException] = []

    def original(a, b=None, *rest, key="k", **extra):
        """Original docstring."""
        if fail == "value":
            exc: BaseException = ValueError(f"bad {a!r:.20}")
        elif fail == "oops":
            exc = Oops("custom", 3)
        elif fail == "key":
            exc = KeyError(b)
        else:
            return a
        raised.append(exc)
        raise exc

    async def original_async(a, b=None, *rest, key="k", **extra):
        return original(a, b, *rest, key=key, **extra)

    class Holder:
        @record(store=mem)
        def method(self, a, b=None, *rest, key="k", **extra):
            return original(a, b, *rest, key=key, **extra)

        @record(store=mem)
        @classmethod
        def klass(cls, a, b=None, *rest, key="k", **extra):
            return original(a, b, *rest, key=key, **extra)

        @staticmethod
        @record(store=mem)
        def static(a, b=None, *rest, key="k", **extra):
            return original(a, b, *rest, key=key, **extra)

    wrapped = record(store=mem)(original)
    wrapped_async = record(store=mem)(original_async)
    assert inspect.signature(wrapped) == inspect.signature(original)
    assert inspect.signature(wrapped_async) == inspect.signature(original_async)
    callers = [wrapped, lambda *a, **k: asyncio.run(wrapped_async(*a, **k)), Holder().method, Holder.klass,
               Holder.static]
    for call in callers:
        if fail is None:
            assert call(value, other) is value
            assert call(value, b=other, key=other) is value
        else:
            with pytest.raises(BaseException) as info:
                call(value, other)
            assert info.value is raised[-1]  # the very same exception object
            innermost = traceback.extract_tb(info.value.__traceback__)[-1]
            assert innermost.name == "original" and "raise exc" in innermost.line


def test_traceback_points_at_the_original_raise(mem):
    def divide(a, b):
        return a / b

    wrapped = record(store=mem)(divide)
    with pytest.raises(ZeroDivisionError) as info:
        wrapped(1, 0)
    frames = traceback.extract_tb(info.value.__traceback__)
    assert frames[-1].name == "divide" and frames[-1].line == "return a / b"
    assert len(frames) == 3  # this test, the wrapper, the original


def test_metadata_preserved(mem):
    def scale(x: float, factor: float = 2.0, *, clip: bool = False) -> float:
        """Scale x."""
        return x * factor

    wrapped = record(store=mem)(scale)
    assert wrapped.__name__ == "scale" and wrapped.__doc__ == "Scale x."
    assert wrapped.__qualname__ == scale.__qualname__ and wrapped.__module__ == scale.__module__
    assert wrapped.__wrapped__ is scale and wrapped.__annotations__ == scale.__annotations__
    assert inspect.signature(wrapped) == inspect.signature(scale)
    assert wrapped(3.0) == 6.0 and wrapped(3.0, 3.0, clip=True) == 9.0
    with pytest.raises(TypeError, match="scale"):
        wrapped(1, 2, 3)
    with pytest.raises(TypeError):
        wrapped()


def test_signature_kinds_and_defaults_recorded(mem):
    @record(store=mem)
    def kinds(a, /, b, c=3, *args, d, e=5, **kw):
        return (a, b, c, args, d, e, kw)

    assert kinds(1, 2, d=4) == (1, 2, 3, (), 4, 5, {})
    assert kinds(1, 2, 30, 40, 50, d=4, e=6, z=7) == (1, 2, 30, (40, 50), 4, 6, {"z": 7})
    traces = flushed(mem).load(kinds)
    assert traces.inputs == [
        {"a": 1, "b": 2, "c": 3, "args": (), "d": 4, "e": 5, "kw": {}},
        {"a": 1, "b": 2, "c": 30, "args": (40, 50), "d": 4, "e": 6, "kw": {"z": 7}},
    ]


def test_parameters_named_like_builtins(mem):
    @record(store=mem)
    def shadow(type, len=2, map=None, Exception=3, list=(1,)):
        return (type, len, map, Exception, list)

    assert shadow([0], map={"a": 1}) == ([0], 2, {"a": 1}, 3, (1,))
    assert flushed(mem).load(shadow).inputs == [{"type": [0], "len": 2, "map": {"a": 1}, "Exception": 3, "list": (1,)}]


def test_generic_wrapper_path(mem):
    # a parameter named like the generated wrapper's internals forces the *args/**kwargs wrapper
    @record(store=mem)
    def odd(_ns_x, y=2):
        return _ns_x + y

    assert odd(1) == 3 and odd(_ns_x=1, y=5) == 6
    assert flushed(mem).load(odd).inputs == [{"_ns_x": 1, "y": 2}, {"_ns_x": 1, "y": 5}]


class Shop:
    rate = 2

    def __init__(self, fee):
        self.fee = fee

    @record(store="memory://test_record_methods")
    def price(self, amount, qty=1):
        return amount * qty + self.fee

    @record(store="memory://test_record_methods")
    @classmethod
    def by_class_above(cls, amount):
        return amount * cls.rate

    @classmethod
    @record(store="memory://test_record_methods")
    def by_class_below(cls, amount):
        return amount * cls.rate

    @record(store="memory://test_record_methods")
    @staticmethod
    def static_above(amount):
        return -amount

    @staticmethod
    @record(store="memory://test_record_methods")
    def static_below(amount):
        return -amount


def test_methods_classmethods_staticmethods():
    store = TraceStore.open("memory://test_record_methods")
    store.clear()
    shop = Shop(fee=1)
    assert shop.price(10, qty=2) == 21
    assert Shop.by_class_above(3) == 6 and shop.by_class_below(4) == 8
    assert Shop.static_above(5) == -5 and shop.static_below(6) == -6
    assert isinstance(Shop.__dict__["by_class_above"], classmethod)
    assert isinstance(Shop.__dict__["static_above"], staticmethod)
    assert inspect.signature(Shop.price) == inspect.signature(Shop.price.__wrapped__)
    flushed(store)
    expected = {"price": {"amount": 10, "qty": 2}, "by_class_above": {"amount": 3}, "by_class_below": {"amount": 4},
                "static_above": {"amount": 5}, "static_below": {"amount": 6}}
    for method, inputs in expected.items():
        traces = store.load(f"{__name__}:Shop.{method}")
        assert traces.inputs == [inputs], method  # self / cls never recorded


def test_async_functions(mem):
    @record(store=mem)
    async def fetch(key, delay=0.0):
        await asyncio.sleep(delay)
        if key == "missing":
            raise KeyError(key)
        return [key]

    assert inspect.iscoroutinefunction(fetch)
    assert asyncio.run(fetch("a")) == ["a"]
    with pytest.raises(KeyError):
        asyncio.run(fetch("missing", delay=0.001))
    traces = flushed(mem).load(fetch)
    assert traces.inputs == [{"key": "a", "delay": 0.0}, {"key": "missing", "delay": 0.001}]
    assert traces.outputs == [["a"], None] and traces.errors[1] == ErrorInfo("KeyError", "'missing'")
    assert traces.durations[1] >= 0.001


def test_async_generic_wrapper(mem):
    @record(store=mem)
    async def twice(_ns_a):
        return _ns_a * 2

    assert inspect.iscoroutinefunction(twice)
    assert asyncio.run(twice(4)) == 8
    assert flushed(mem).load(twice).outputs == [8]


def test_base_exceptions_pass_through_unrecorded(mem):
    @record(store=mem)
    def interrupt(x):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupt(1)
    assert len(flushed(mem).load(interrupt)) == 0


# -- what a trace holds -----------------------------------------------------------------------

def test_trace_contents(mem):
    @record(store=mem)
    def fee(weight, express=False):
        if weight < 0:
            raise ValueError("weight must be >= 0")
        time.sleep(0.002)
        return weight * (3.0 if express else 1.5)

    before = time.time()
    fee(2.0)
    fee(1.0, express=True)
    with pytest.raises(ValueError):
        fee(-1)
    traces = flushed(mem).load(fee)
    assert traces.function == f"{__name__}:test_trace_contents.<locals>.fee"
    assert traces.source_hash == source_hash(fee) != ""
    assert traces.inputs == [{"weight": 2.0, "express": False}, {"weight": 1.0, "express": True},
                             {"weight": -1, "express": False}]
    assert traces.outputs == [3.0, 3.0, None]
    assert traces.errors == [None, None, ErrorInfo("ValueError", "weight must be >= 0")]
    assert all(d >= 0.002 for d in traces.durations[:2]) and traces.durations[2] < 0.002
    assert all(before - 1 <= t <= time.time() + 1 for t in traces.timestamps)
    assert traces.timestamps == sorted(traces.timestamps)


def test_edited_function_gets_a_new_source_hash(mem, tmp_path, monkeypatch):
    module = tmp_path / "editable_mod.py"
    monkeypatch.syspath_prepend(str(tmp_path))
    template = "from probes import _record\n@_record.record(store={store!r})\ndef f(x):\n    return x + {k}\n"
    import importlib

    module.write_text(template.format(store="memory://edited", k=1))
    mod = importlib.import_module("editable_mod")
    mod.f(1)
    module.write_text(template.format(store="memory://edited", k=2))
    mod = importlib.reload(mod)
    mod.f(1)
    store = flushed(TraceStore.open("memory://edited"))
    versions = [s for s in store.functions() if s.name == "editable_mod:f"]
    assert len(versions) == 2 and versions[0].source_hash != versions[1].source_hash
    assert store.load(mod.f).outputs == [3]  # by default: the traces of the current source


def test_mutation_after_and_during_the_call_does_not_change_the_record(mem):
    @record(store=mem)
    def consume(items, table, array, point=(1, [2])):
        items.append("inside")
        return {"seen": list(items)}

    items, table, array = [1, 2], {"a": [1]}, np.arange(3.0)
    out = consume(items, table, array)
    items.append(99)
    table["a"].append(2)
    table["b"] = 0
    array[:] = -1
    out["seen"].clear()
    traces = flushed(mem).load(consume)
    recorded = traces.inputs[0]
    assert recorded["items"] == [1, 2]  # as passed in, before the function appended
    assert recorded["table"] == {"a": [1]}
    np.testing.assert_array_equal(recorded["array"], [0.0, 1.0, 2.0])
    assert recorded["point"] == (1, [2])
    assert traces.outputs == [{"seen": [1, 2, "inside"]}]


def test_flat_containers_are_copied_at_call_time(mem):
    @record(store=mem)
    def keep(flat_list, flat_dict, flat_set):
        return flat_list

    flat_list, flat_dict, flat_set = [1.0, "a"], {"k": 1}, {3}
    out = keep(flat_list, flat_dict, flat_set)
    assert out is flat_list
    flat_list.append(2.0)
    flat_dict["k"] = 2
    flat_set.add(4)
    traces = flushed(mem).load(keep)
    assert traces.inputs == [{"flat_list": [1.0, "a"], "flat_dict": {"k": 1}, "flat_set": {3}}]
    assert traces.outputs == [[1.0, "a"]]


def test_unencodable_arguments_never_break_the_call(mem):
    class Widget:
        def __repr__(self):
            return "<widget>"

    class Hostile:
        def __repr__(self):
            raise RuntimeError("repr explodes")

        def __eq__(self, other):
            raise RuntimeError("eq explodes")

        __hash__ = object.__hash__

    lock = threading.Lock()

    @record(store=mem)
    def handle(thing, extra=None):
        return thing

    for value in (Widget(), Hostile(), lock, np.zeros(10**6), iter([1])):
        assert handle(value, extra=[value]) is value
    traces = flushed(mem).load(handle, dedupe=False)
    assert len(traces) == 5
    assert traces.inputs[0]["thing"] == NonReplayable(f"{Widget.__module__}.{Widget.__qualname__}", "<widget>")
    assert all(isinstance(kw["thing"], NonReplayable) for kw in traces.inputs)
    assert not traces.replayable.any()


# -- sampling, caps, switch ---------------------------------------------------------------------

def test_sampling_and_caps(mem):
    random.seed(0)

    @record(store=mem, sample_rate=0.0)
    def never(x):
        return x

    @record(store=mem, max_traces=5)
    def capped(x):
        return x + 1

    @record(store=mem, sample_rate=0.5)
    def half(x):
        return x * 2

    @record(store=mem, sample_rate=0.0, keep_first=3)
    def early(x):
        return -x

    @record(store=mem, sample_rate=0.1, keep_first=50, max_traces=100)
    def early_sparse(x):
        return x

    for i in range(2000):
        assert never(i) == i and capped(i) == i + 1 and half(i) == 2 * i and early(i) == -i and early_sparse(i) == i
    flushed(mem)
    assert mem.count(never) == 0
    assert [kw["x"] for kw in mem.load(capped).inputs] == [0, 1, 2, 3, 4]
    assert 850 <= mem.count(half) <= 1150
    assert [kw["x"] for kw in mem.load(early).inputs] == [0, 1, 2]
    sparse = [kw["x"] for kw in mem.load(early_sparse).inputs]
    assert len(sparse) == 100 and sparse[:50] == list(range(50)) and sparse[-1] > 400


@pytest.mark.parametrize("options, match", [
    ({"sample_rate": 1.5}, "sample_rate"), ({"sample_rate": -0.1}, "sample_rate"), ({"sample_rate": "all"}, "sample_rate"),
    ({"max_traces": -1}, "max_traces"), ({"max_traces": 2.5}, "max_traces"), ({"keep_first": -3}, "keep_first"),
    ({"store": 42}, "store"), ({"store": "ftp://x"}, "store"), ({"redact": ("nope",)}, "redact"),
    ({"sample": "fast"}, "sample='fast'"), ({"sample": 0.5}, "sample=0.5"), ({"sample": ["adaptive"]}, "sample"),
    ({"sample": "adaptive", "sample_rate": 0.5}, "sample_rate=0.5 .*adaptive"),
    ({"sample": "adaptive", "max_traces": -1}, "max_traces"),
])
def test_bad_options_fail_at_decoration_time(options, match):
    with pytest.raises(InvalidArgument, match=match):
        record(**options)(lambda amount, card: amount)


def test_redact_error_names_parameters():
    with pytest.raises(InvalidArgument, match=r"'ssn' is not a parameter.*Parameters are: amount, card"):
        @record(redact=("ssn",))
        def pay(amount, card):
            return amount


def test_record_env_switch_turns_recording_off(mem, monkeypatch):
    monkeypatch.setenv("NEUROSWAP_RECORD", "0")

    @record(store=mem)
    def add(a, b):
        return a + b

    assert add(1, 2) == 3 and add.__wrapped__(1, 2) == 3
    assert flushed(mem).count() == 0


# -- redaction ----------------------------------------------------------------------------------

def test_redacted_values_are_never_stored(tmp_path):
    path = tmp_path / "t.db"

    @record(store=f"sqlite:///{path}", redact=("card", "owner"))
    def charge(amount, card, owner="Zelda Quartermaine"):
        return amount * 2

    secret_card = "4111-5555-9999-0000"
    for amount in range(20):
        charge(amount, secret_card)
    charge(1, "3782-000000-00001", owner="Yusuf Blackwood")
    assert record.flush()
    store = SQLiteStore(path)
    traces = store.load(charge, dedupe=False)
    assert len(traces) == 21 and all(isinstance(kw["card"], Redacted) for kw in traces.inputs)
    assert traces.inputs[0]["card"] == traces.inputs[1]["card"] != traces.inputs[20]["card"]  # same value, same digest
    assert isinstance(traces.inputs[0]["owner"], Redacted)  # defaults are redacted too
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("t.db"))
    for secret in (secret_card, "4111", "Zelda", "Quartermaine", "Yusuf", "3782-000000"):
        assert secret.encode() not in raw


# -- recorder failures never reach the caller -------------------------------------------------

class FullDiskStore(MemoryStore):
    def add(self, records):
        raise OSError(28, "No space left on device")


def test_store_failures_are_counted_and_logged_once(caplog):
    store = FullDiskStore()

    @record(store=store)
    def square(x):
        return x * x

    before = record.stats()
    with caplog.at_level(logging.WARNING, logger="neuroswap"):
        for batch in range(3):
            assert [square(i) for i in range(10)] == [i * i for i in range(10)]
            assert record.flush()
    after = record.stats()
    assert after.failed - before.failed == 30
    messages = [r.getMessage() for r in caplog.records if "No space left" in r.getMessage()]
    assert len(messages) == 1 and "logged once" in messages[0]


@pytest.mark.parametrize("make_target", ["directory", "readonly", "text_file"])
def test_unusable_store_never_breaks_calls(tmp_path, make_target):
    # tests run as root, so chmod cannot make a file read-only: read-only is simulated with an
    # SQLite `mode=ro` URI, and an unusable path with a directory or a non-database file
    if make_target == "directory":
        uri = str(tmp_path)
    elif make_target == "readonly":
        SQLiteStore(tmp_path / "ro.db").close()
        uri = f"sqlite:///{tmp_path}/ro.db?mode=ro"
    else:
        (tmp_path / "notes.db").write_text("not a database")
        uri = str(tmp_path / "notes.db")

    @record(store=uri)
    def triple(x):
        return 3 * x

    before = record.stats()
    assert [triple(i) for i in range(25)] == [3 * i for i in range(25)]
    assert record.flush()
    assert record.stats().failed - before.failed == 25
    if make_target == "text_file":
        assert (tmp_path / "notes.db").read_text() == "not a database"


def test_locked_database_never_breaks_calls(tmp_path):
    path = tmp_path / "t.db"
    store = SQLiteStore(path, timeout_s=0.3)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")

    @record(store=store)
    def inc(x):
        return x + 1

    before = record.stats()
    try:
        assert [inc(i) for i in range(10)] == list(range(1, 11))
        assert record.flush()
        assert record.stats().failed - before.failed == 10
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    inc(100)
    assert record.flush() and store.count(inc) == 1  # the lock is gone: recording resumes


def test_full_queue_drops_and_counts():
    gate = threading.Event()

    class SlowStore(MemoryStore):
        def add(self, records):
            gate.wait(10)
            super().add(records)

    store = SlowStore()
    recorder = Recorder(max_queue=10, batch_size=5)
    fn = _decorate(lambda x: x, store=store, sample_rate=1.0, max_traces=None, redact=(), keep_first=0,
                   recorder=recorder)
    try:
        assert [fn(i) for i in range(100)] == list(range(100))
        time.sleep(0.05)
        assert [fn(i) for i in range(100, 200)] == list(range(100, 200))
    finally:
        gate.set()
    assert recorder.flush(timeout=30)
    stats = recorder.stats()
    assert stats.dropped >= 150 and stats.recorded + stats.dropped == 200 and stats.pending == 0
    assert store.count() == stats.recorded


def test_default_store_is_resolved_at_first_write(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    @record
    def plain(x):
        return x

    assert not (tmp_path / "neuroswap_traces.db").exists()
    plain(1)
    assert record.flush()
    default = SQLiteStore(tmp_path / "neuroswap_traces.db")
    assert default.load(plain).inputs == [{"x": 1}]
    default.close()
    monkeypatch.setenv("NEUROSWAP_STORE", f"sqlite:///{tmp_path}/from_env.db")
    plain(2)
    assert record.flush()
    from_env = SQLiteStore(tmp_path / "from_env.db")
    assert from_env.load(plain).inputs == [{"x": 2}]
    from_env.close()


def test_stats_and_flush_through_the_store(tmp_path):
    store = SQLiteStore(tmp_path / "t.db")

    @record(store=store)
    def neg(x):
        return -x

    before = record.stats()
    for i in range(100):
        neg(i)
    assert store.flush()
    after = record.stats()
    assert isinstance(after, RecorderStats) and after.recorded - before.recorded == 100 and after.pending == 0
    assert store.count(neg) == 100


# -- concurrency and crashes --------------------------------------------------------------------

def test_eight_threads_lose_no_trace(tmp_path):
    store = SQLiteStore(tmp_path / "t.db")

    @record(store=store)
    def work(thread, i):
        return thread * 100_000 + i

    def run(thread):
        for i in range(5000):
            work(thread, i)

    before = record.stats()
    threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert record.flush(timeout=120)
    after = record.stats()
    assert after.dropped == before.dropped and after.failed == before.failed
    traces = store.load(work, dedupe=False)
    assert len(traces) == 40_000
    assert sorted(traces.outputs) == sorted(k * 100_000 + i for k in range(8) for i in range(5000))


def _process_worker(path: str, worker: int) -> None:
    @record(store=path)
    def work(worker, i):
        return worker * 100_000 + i

    for i in range(5000):
        work(worker, i)
    if not record.flush(timeout=120):
        raise SystemExit(3)
    stats = record.stats()
    if stats.recorded != 5000 or stats.failed or stats.dropped:
        raise SystemExit(4)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_processes_lose_no_trace(tmp_path, method):
    path = str(tmp_path / "t.db")
    SQLiteStore(path).close()
    workers = 4 if method == "fork" else 2
    # a running writer in the parent must not leak into forked children
    warm = record(store="memory://parent")(lambda x: x)
    warm(1)
    context = multiprocessing.get_context(method)
    processes = [context.Process(target=_process_worker, args=(path, k)) for k in range(workers)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(180)
    assert [p.exitcode for p in processes] == [0] * workers
    store = SQLiteStore(path)
    traces = store.load(f"{__name__}:_process_worker.<locals>.work", source_hash="*", dedupe=False)
    assert len(traces) == workers * 5000
    assert sorted(traces.outputs) == sorted(k * 100_000 + i for k in range(workers) for i in range(5000))
    store.close()


def _unflushed_worker(path: str, worker: int) -> None:
    @record(store=path)
    def work(worker, i):
        return worker * 100_000 + i

    for i in range(2000):
        work(worker, i)
    # no flush: the recorder flushes when the worker process ends


def test_traces_are_flushed_at_exit(tmp_path):
    path = str(tmp_path / "t.db")
    script = textwrap.dedent(f"""
        from probes import record

        @record(store={path!r})
        def work(i):
            return i

        for i in range(1500):
            work(i)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    context = multiprocessing.get_context("fork")
    process = context.Process(target=_unflushed_worker, args=(path, 1))
    process.start()
    process.join(120)
    assert process.exitcode == 0
    store = SQLiteStore(path)
    assert store.count("__main__:work") == 1500  # interpreter exit (atexit)
    assert store.count(f"{__name__}:_unflushed_worker.<locals>.work") == 2000  # multiprocessing worker exit
    store.close()


def test_decorated_functions_still_pickle():
    import pickle

    assert pickle.loads(pickle.dumps(Shop.price)) is Shop.price
    assert pickle.loads(pickle.dumps(_module_level)) is _module_level


@record(store="memory://module_level")
def _module_level(x):
    return x


def test_sigkill_after_flush_keeps_every_flushed_trace(tmp_path):
    path = tmp_path / "t.db"
    script = textwrap.dedent(f"""
        import sys, time
        from probes import _record

        @_record.record(store={str(path)!r})
        def work(i):
            return i * 2

        for i in range(3000):
            work(i)
        assert _record.record.flush()
        print("flushed", flush=True)
        i = 3000
        while True:  # keep recording (unflushed) until killed
            work(i)
            i += 1
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "flushed"
        time.sleep(0.3)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
    assert process.returncode == -signal.SIGKILL
    store = SQLiteStore(path)
    assert store._connection().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    traces = store.load("__main__:work", source_hash="*", dedupe=False)
    assert set(range(3000)) <= {kw["i"] for kw in traces.inputs}
    store.close()


def test_recorder_failure_inside_snapshot_never_raises(mem):
    class Exploding(list):
        def __iter__(self):
            raise RuntimeError("cannot iterate")

    @record(store=mem)
    def size(things):
        return 7

    assert size(Exploding([1])) == 7
    assert isinstance(flushed(mem).load(size).inputs[0]["things"], NonReplayable)


def test_bound_methods_and_classes(mem):
    class Counter:
        def bump(self, by=1):
            return by

    bound = record(store=mem)(Counter().bump)
    assert bound(by=3) == 3
    assert flushed(mem).load(f"{__name__}:test_bound_methods_and_classes.<locals>.Counter.bump",
                              source_hash="*").inputs == [{"by": 3}]
    with pytest.raises(InvalidArgument):
        record(store=mem)(Counter)


# -- failed writes are retried, counted by reason, and never hang flush ----------------------------

class FlakyStore(MemoryStore):
    """`add` raises for its first `failures` calls (a locked or briefly unreachable store), then works."""

    def __init__(self, failures, exc=None):
        super().__init__()
        self.failures = failures
        self.exc = exc or sqlite3.OperationalError("database is locked")
        self.calls = 0

    def add(self, records):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc
        super().add(records)


def test_a_store_that_fails_then_recovers_loses_nothing():
    store = FlakyStore(failures=2)

    @record(store=store)
    def halve(x):
        return x / 2

    before = record.stats()
    assert [halve(i) for i in range(10)] == [i / 2 for i in range(10)]
    assert record.flush(timeout=30)
    after = record.stats()
    assert after.recorded - before.recorded == 10
    assert after.retried - before.retried == 10  # one batch, retried (twice) and then written
    assert after.failed == before.failed and after.failed_by_reason == before.failed_by_reason
    assert store.calls == 3 and store.count(halve) == 10


def test_a_store_that_always_fails_counts_by_reason_and_calls_still_work():
    store = FlakyStore(failures=10**9, exc=OSError(28, "No space left on device"))

    @record(store=store)
    def checked(x):
        if x < 0:
            raise ValueError("negative")
        return x + 1

    before = record.stats()
    assert [checked(i) for i in range(12)] == list(range(1, 13))
    with pytest.raises(ValueError, match="negative"):
        checked(-1)
    started = time.monotonic()
    assert record.flush(timeout=30)
    assert time.monotonic() - started < 10  # 0.05 + 0.2 + 1 s of pauses, not forever
    after = record.stats()
    assert after.failed - before.failed == 13 and after.recorded == before.recorded
    assert after.failed_by_reason.get("OSError", 0) - before.failed_by_reason.get("OSError", 0) == 13
    assert after.retried - before.retried == 13
    assert store.calls == 4  # the first try and three retries


def test_retries_then_one_try_per_batch_until_the_store_recovers():
    store = FlakyStore(failures=4, exc=TimeoutError("slow disk"))
    recorder = Recorder(retry_delays_s=(0.01, 0.01))
    fn = _decorate(lambda x: -x, store=store, sample_rate=1.0, max_traces=None, redact=(), keep_first=0,
                   recorder=recorder)
    assert [fn(i) for i in range(5)] == [-i for i in range(5)]
    assert recorder.flush(timeout=30)
    stats = recorder.stats()
    assert (stats.failed, stats.retried, dict(stats.failed_by_reason)) == (5, 5, {"TimeoutError": 5})
    assert store.calls == 3
    # a store that failed every try is tried once per batch (no pauses for every other store)...
    fn(5)
    assert recorder.flush(timeout=30)
    assert store.calls == 4 and recorder.stats().failed == 6 and recorder.stats().retried == 5
    # ...and recovers: the next batch is written, and later failures get their retries again
    fn(6)
    assert recorder.flush(timeout=30)
    assert store.calls == 5 and store.count() == 1 and recorder.stats().recorded == 1
    store.failures = store.calls + 1
    fn(7)
    assert recorder.flush(timeout=30)
    stats = recorder.stats()
    assert store.count() == 2 and stats.recorded == 2 and stats.retried == 6 and stats.failed == 6


def test_flush_is_bounded_when_the_store_hangs():
    gate = threading.Event()

    class HangingStore(MemoryStore):
        def add(self, records):
            gate.wait(60)
            raise OSError("gave up")

    recorder = Recorder(retry_delays_s=(0.01,))
    fn = _decorate(lambda x: x, store=HangingStore(), sample_rate=1.0, max_traces=None, redact=(),
                   keep_first=0, recorder=recorder)
    try:
        assert fn(1) == 1
        started = time.monotonic()
        assert recorder.flush(timeout=0.5) is False
        assert time.monotonic() - started < 5
        assert recorder.stats().pending == 1
    finally:
        gate.set()
    assert recorder.flush(timeout=30)
    assert recorder.stats().failed_by_reason == {"OSError": 1}


def test_stats_keep_their_old_positional_shape():
    stats = RecorderStats(1, 2, 3, 4)
    assert (stats.recorded, stats.dropped, stats.failed, stats.pending, stats.retried) == (1, 2, 3, 4, 0)
    assert dict(stats.failed_by_reason) == {}


# -- adaptive sampling ----------------------------------------------------------------------------

def _adaptive(fn, store, recorder, **options):
    settings = dict(sample_rate=1.0, max_traces=10_000, redact=(), keep_first=1_000) | options
    return _decorate(fn, store=store, recorder=recorder, sample="adaptive", **settings)


def test_adaptive_sampling_keeps_a_falling_share_and_counts_every_call():
    """200,000 calls of a ~1 us function: every call at first, then fewer; the queue never
    fills (even one of 10,000 places) and every call is accounted for."""
    store = MemoryStore()
    recorder = Recorder(max_queue=10_000)
    fn = _adaptive(lambda x: x * 2 + 1, store, recorder)
    n = 200_000
    assert [fn(i) for i in range(n)] == [i * 2 + 1 for i in range(n)]
    assert recorder.flush(timeout=60)
    stats = recorder.stats()
    assert stats.dropped == 0 and stats.failed == 0 and stats.pending == 0 and stats.deduplicated == 0
    assert stats.recorded + stats.sampled_out + stats.deduplicated + stats.dropped == n
    kept = [row.inputs for row in store._records]
    assert stats.recorded == len(kept)
    xs = sorted(decode_x(text) for text in kept)
    assert xs[:1_000] == list(range(1_000))  # the first keep_first calls, all of them
    # about keep_first * (1 + ln(n / keep_first)) = 6,300 traces, with a falling share
    assert 4_000 < stats.recorded < 9_000
    early = sum(1_000 <= x < 11_000 for x in xs)
    late = sum(n - 10_000 <= x < n for x in xs)
    assert late < early / 5 and late > 0


def decode_x(text):
    import json

    return json.loads(text)["x"]


def test_adaptive_cap_and_sampled_out_calls_after_it():
    store = MemoryStore()
    recorder = Recorder()
    fn = _adaptive(lambda x: -x, store, recorder, keep_first=10, max_traces=50)
    for i in range(20_000):
        assert fn(i) == -i
    assert recorder.flush(timeout=30)
    stats = recorder.stats()
    assert stats.recorded == store.count() == 50
    assert stats.sampled_out == 20_000 - 50 and stats.dropped == 0


def test_adaptive_repeats_are_left_out_by_the_writer_and_counted():
    store = MemoryStore()
    recorder = Recorder()
    fn = _adaptive(lambda x: x % 7, store, recorder, keep_first=100)

    for i in range(30_000):
        assert fn(i % 10) == (i % 10) % 7
    assert recorder.flush(timeout=30)
    stats = recorder.stats()
    assert store.count() == stats.recorded == 10
    assert stats.deduplicated > 0
    assert stats.recorded + stats.sampled_out + stats.deduplicated + stats.dropped == 30_000


def test_adaptive_never_changes_results_exceptions_or_mutated_arguments():
    store = MemoryStore()
    recorder = Recorder()

    def f(items, scale=2.0):
        if scale < 0:
            raise Oops("negative")
        out = [v * scale for v in items]
        items.append(0.0)
        return out

    fn = _adaptive(f, store, recorder, keep_first=3)
    data = [1.0, 2.0]
    assert fn(data) == [2.0, 4.0] and data == [1.0, 2.0, 0.0]
    with pytest.raises(Oops, match="negative"):
        fn([1.0], scale=-1.0)
    assert recorder.flush(timeout=30)
    traces = store.load(f)
    assert traces.inputs[0] == {"items": [1.0, 2.0], "scale": 2.0}  # as at call time
    assert traces.errors[1].type.endswith("Oops")


def test_fixed_sampling_counts_sampled_out_calls():
    store = MemoryStore()
    recorder = Recorder()
    never = _decorate(lambda x: x, store=store, sample_rate=0.0, max_traces=None, redact=(), keep_first=0,
                      recorder=recorder)
    some = _decorate(lambda x: x, store=store, sample_rate=0.25, max_traces=None, redact=(), keep_first=0,
                     recorder=recorder)
    for i in range(4_000):
        never(i)
        some(i)
    assert recorder.flush(timeout=30)
    stats = recorder.stats()
    assert stats.recorded + stats.sampled_out == 8_000
    assert 800 <= stats.recorded <= 1_200


def test_adaptive_through_the_public_decorator(tmp_path):
    store = SQLiteStore(tmp_path / "a.db")
    before = record.stats()

    @record(store=store, sample="adaptive", keep_first=20)
    def hot(x, y=1.0):
        return x * y

    for i in range(5_000):
        hot(float(i))
    assert record.flush(timeout=30)
    after = record.stats()
    recorded = after.recorded - before.recorded
    assert recorded == store.count(hot) and 20 < recorded < 500
    assert recorded + (after.sampled_out - before.sampled_out) == 5_000
    assert store.load(hot).inputs[:3] == [{"x": 0.0, "y": 1.0}, {"x": 1.0, "y": 1.0}, {"x": 2.0, "y": 1.0}]


def test_adaptive_cap_counts_distinct_traces():
    """Repeats the writer left out do not use up max_traces: a cap reached by repeats opens again."""
    random.seed(3)
    store = MemoryStore()
    recorder = Recorder()
    fn = _adaptive(lambda x: x * 3, store, recorder, keep_first=5, max_traces=10)
    calls = 0
    for _ in range(40):
        for i in range(2_000):
            assert fn(calls % 20) == (calls % 20) * 3
            calls += 1
        assert recorder.flush(timeout=30)
        if store.count() >= 10:
            break
    stats = recorder.stats()
    assert store.count() == stats.recorded == 10
    assert len({row.inputs for row in store._records}) == 10
    assert stats.recorded + stats.sampled_out + stats.deduplicated == calls
