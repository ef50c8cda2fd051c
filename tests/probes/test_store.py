"""Trace stores: opening, writing, loading, version choice, refusal of foreign files."""

from __future__ import annotations

import os
import sqlite3
import threading
import warnings

import pytest

from probes._encoding import dumps
from probes._errors import CorruptStoreError, InvalidArgument, StoreError
from probes._identity import function_name, source_hash
from probes._store import (MixedVersionsWarning, SkippedTracesWarning, TraceRecord, TraceStore, encode_inputs,
                           redact_uri)
from probes._store_memory import MemoryStore
from probes._store_sqlite import APPLICATION_ID, SQLiteStore
from probes._traces import ErrorInfo


def rec(name="m:f", version="h1", x=1, out=2.0, error=None, duration=0.5, timestamp=100.0):
    return TraceRecord(name, version, encode_inputs({"x": x, "y": (x, "a")}),
                       None if error else dumps(out), error.type if error else None,
                       error.message if error else None, duration, timestamp)


@pytest.fixture
def store(any_store):
    """Memory, SQLite and PostgreSQL in turn (see conftest.py; PostgreSQL runs on the session's server)."""
    return any_store


def sample_fn(x, y=1):
    return x + y


def test_add_load_roundtrip(store):
    store.add([rec(x=1, out=2.0), rec(x=2, error=ErrorInfo("ValueError", "bad x"), duration=0.25, timestamp=7.0)])
    traces = store.load("m:f")
    assert len(traces) == 2
    assert traces.inputs == [{"x": 1, "y": (1, "a")}, {"x": 2, "y": (2, "a")}]
    assert traces.outputs == [2.0, None]
    assert traces.errors == [None, ErrorInfo("ValueError", "bad x")]
    assert traces.durations == [0.5, 0.25] and traces.timestamps == [100.0, 7.0]
    assert traces.function == "m:f" and traces.source_hash == "h1"
    assert store.count() == 2 and store.count("m:f") == 2 and store.count("m:g") == 0
    assert store.count("m:f", source_hash="h1") == 2 and store.count(source_hash="zz") == 0


def test_functions_lists_name_hash_count(store):
    store.add([rec("b:g", "h1"), rec("a:f", "h2"), rec("a:f", "h2", x=5), rec("a:f", "h1")])
    summaries = store.functions()
    assert [tuple(s) for s in summaries] == [("a:f", "h2", 2), ("a:f", "h1", 1), ("b:g", "h1", 1)]
    name, version, count = summaries[0]
    assert (name, version, count) == (summaries[0].name, summaries[0].source_hash, summaries[0].count)


def test_dedupe_and_limit(store):
    store.add([rec(x=1), rec(x=1), rec(x=2), rec(x=1), rec(x=3)])
    assert [t["x"] for t in store.load("m:f").inputs] == [1, 2, 3]
    assert len(store.load("m:f", dedupe=False)) == 5
    assert [t["x"] for t in store.load("m:f", limit=2).inputs] == [1, 2]
    assert len(store.load("m:f", limit=0)) == 0
    with pytest.raises(InvalidArgument, match="limit"):
        store.load("m:f", limit=-1)


def test_version_choice_by_name(store):
    store.add([rec(version="old", x=1), rec(version="new", x=1), rec(version="new", x=2)])
    with pytest.warns(MixedVersionsWarning, match="2 source versions"):
        both = store.load("m:f")
    assert len(both) == 3 and both.source_hash == ""  # same inputs under two versions are both kept
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(store.load("m:f", source_hash="*")) == 3
        new = store.load("m:f", source_hash="new")
    assert len(new) == 2 and new.source_hash == "new"


def test_version_choice_by_function_object(store):
    name, current = function_name(sample_fn), source_hash(sample_fn)
    store.add([rec(name, "stale", x=9)])
    with pytest.warns(MixedVersionsWarning, match="no traces of its current source"):
        assert len(store.load(sample_fn)) == 0
    store.add([rec(name, current, x=1)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = store.load(sample_fn)
    assert [t["x"] for t in loaded.inputs] == [1] and loaded.source_hash == current
    assert len(store.load(sample_fn, source_hash="*")) == 2


def test_load_rejects_bad_function(store):
    with pytest.raises(InvalidArgument, match="module:qualname"):
        store.load("no_colon")
    with pytest.raises(InvalidArgument):
        store.load(42)


def test_open_uris(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEUROSWAP_STORE", raising=False)
    relative = TraceStore.open("sqlite:///rel.db")
    assert isinstance(relative, SQLiteStore) and relative.path == str(tmp_path / "rel.db")
    absolute = TraceStore.open(f"sqlite:///{tmp_path}/abs.db")
    assert absolute.path == str(tmp_path / "abs.db")
    plain = TraceStore.open(tmp_path / "plain.db")
    assert plain.path == str(tmp_path / "plain.db")
    default = TraceStore.open()
    assert default.path == str(tmp_path / "neuroswap_traces.db")
    monkeypatch.setenv("NEUROSWAP_STORE", str(tmp_path / "env.db"))
    assert TraceStore.open().path == str(tmp_path / "env.db")
    assert isinstance(TraceStore.open("memory://"), MemoryStore)
    assert TraceStore.open("memory://shared") is TraceStore.open("memory://shared")
    assert TraceStore.open(plain) is plain
    with pytest.raises(InvalidArgument, match="unknown scheme"):
        TraceStore.open("mysql://host/db")
    with pytest.raises(InvalidArgument, match="not of postgresql"):
        TraceStore.open("postgresql://host/db", readonly=True)
    with pytest.raises(InvalidArgument, match="not of SQLite"):
        TraceStore.open(tmp_path / "x.db", connect_timeout_s=1)
    with pytest.raises(InvalidArgument):
        TraceStore.open("sqlite://")
    for s in (relative, absolute, plain, default):
        s.close()


def test_sqlite_file_layout(tmp_path):
    path = tmp_path / "t.db"
    SQLiteStore(path).add([rec()])
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    meta = dict(connection.execute("SELECT key, value FROM meta"))
    assert meta["magic"] == "neuroswap-traces" and meta["schema_version"] == "1"
    indexes = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "traces_by_function" in indexes
    connection.close()


def test_sqlite_persists_across_reopen(tmp_path):
    path = tmp_path / "t.db"
    first = SQLiteStore(path)
    first.add([rec(x=i) for i in range(50)])
    first.close()
    again = TraceStore.open(f"sqlite:///{path}")
    assert again.count() == 50 and len(again.load("m:f")) == 50
    with pytest.raises(StoreError, match="closed"):
        first.count()


def test_text_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("just some text, not a database\n" * 10)
    before = path.read_bytes()
    with pytest.raises(CorruptStoreError, match=str(path)):
        TraceStore.open(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("app_id", [0, 0x12345678])
def test_foreign_sqlite_database_is_refused(tmp_path, app_id):
    path = tmp_path / "other.db"
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA application_id={app_id}")
    connection.execute("CREATE TABLE things (a)")
    connection.execute("INSERT INTO things VALUES (1)")
    connection.commit()
    connection.close()
    before = path.read_bytes()
    with pytest.raises(CorruptStoreError, match="another application"):
        TraceStore.open(path)
    assert path.read_bytes() == before
    assert not os.path.exists(str(path) + "-wal")


def test_damaged_store_is_refused(tmp_path):
    path = tmp_path / "t.db"
    s = SQLiteStore(path)
    s.add([rec()])
    s.close()
    data = bytearray(path.read_bytes())
    data[16:24] = b"\xff" * 8  # page size and format bytes of the header
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError, match=str(path)):
        SQLiteStore(path)


def test_undecodable_row_loses_only_itself(store):
    bad = [TraceRecord("m:f", "h1", '{"x": {"$zz": 1}}', "1", None, None, None, None),
           TraceRecord("m:f", "h1", "not json", "1", None, None, None, None),
           TraceRecord("m:f", "h1", "[1]", "1", None, None, None, None),
           TraceRecord("m:f", "h1", '{"x": 9}', '{"$nd": ["O", [1], ""]}', None, None, None, None)]
    store.add([rec(x=1), *bad, rec(x=2)])
    with pytest.warns(SkippedTracesWarning, match=r"4 stored trace\(s\) of m:f could not be decoded") as caught:
        traces = store.load("m:f")
    assert len(caught) == 1 and store.uri in str(caught[0].message)
    assert [kw["x"] for kw in traces.inputs] == [1, 2] and traces.skipped == 4
    assert traces[:1].skipped == 4 and (traces + traces).skipped == 8
    assert traces.deduplicate().skipped == 4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.load("m:f", limit=1).skipped == 0  # the limit was reached before any bad row
    with pytest.warns(SkippedTracesWarning):
        limited = store.load("m:f", limit=2)
    assert len(limited) == 2 and limited.skipped == 4  # bad rows do not count towards the limit


def test_no_skipped_rows_no_warning(store):
    store.add([rec(x=1), rec(x=2)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert store.load("m:f").skipped == 0


def test_bad_error_columns_skip_the_row(store):
    if type(store).__name__ == "PostgresStore":
        pytest.skip("a PostgreSQL TEXT column cannot hold bytes: such a row cannot be stored there")
    store.add([rec(x=1), TraceRecord("m:f", "h1", encode_inputs({"x": 3}), None, b"\xff", "m", None, None)])
    with pytest.warns(SkippedTracesWarning):
        traces = store.load("m:f")
    assert traces.skipped == 1 and len(traces) == 1


def test_password_is_redacted_from_the_warning():
    assert redact_uri("postgresql://ann:s3cret@db.example/traces") == "postgresql://ann:***@db.example/traces"
    assert redact_uri("postgresql://ann@db/traces") == "postgresql://ann@db/traces"
    assert redact_uri("sqlite:////tmp/a:b@c.db") == "sqlite:////tmp/a:b@c.db"
    mem = MemoryStore()
    mem.uri = "postgresql://ann:s3cret@db.example/traces"
    mem.add([TraceRecord("m:f", "h1", "{", None, None, None, None, None)])
    with pytest.warns(SkippedTracesWarning) as caught:
        mem.load("m:f")
    assert "s3cret" not in str(caught[0].message) and "ann:***@db.example" in str(caught[0].message)


@pytest.mark.parametrize("bad", ["mypkg.types", 3, [1], ["ok", ""], ["not a module"], b"x"])
def test_trusted_modules_must_be_module_names(tmp_path, bad):
    with pytest.raises(InvalidArgument, match="trusted_modules="):
        TraceStore.open(tmp_path / "t.db", trusted_modules=bad)
    with pytest.raises(InvalidArgument, match="trusted_modules="):
        TraceStore.open("memory://", trusted_modules=bad)
    with pytest.raises(InvalidArgument, match="trusted_modules="):
        MemoryStore().load("m:f", trusted_modules=bad)
    with pytest.raises(InvalidArgument, match="trusted_modules="):
        SQLiteStore(tmp_path / "u.db", trusted_modules=bad)


def test_trusted_modules_flow_to_the_store(tmp_path):
    s = TraceStore.open(f"sqlite:///{tmp_path / 't.db'}", trusted_modules=["a.b", "c"])
    assert s.trusted_modules == frozenset({"a.b", "c"})
    s.close()
    assert TraceStore.open("memory://", trusted_modules=("x",)).trusted_modules == frozenset({"x"})
    assert TraceStore.open("memory://").trusted_modules == frozenset()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "t.db"
    SQLiteStore(path).close()
    connection = sqlite3.connect(path)
    connection.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    connection.commit()
    connection.close()
    with pytest.raises(StoreError, match="newer neuroswap"):
        SQLiteStore(path)


def test_directory_path_is_refused(tmp_path):
    with pytest.raises(StoreError, match="is a directory"):
        TraceStore.open(tmp_path)


def test_readonly_store_loads_but_refuses_writes(tmp_path):
    path = tmp_path / "t.db"
    SQLiteStore(path).add([rec()])
    readonly = TraceStore.open(f"sqlite:///{path}?mode=ro")
    assert readonly.readonly and len(readonly.load("m:f")) == 1
    with pytest.raises(StoreError, match="read-only"):
        readonly.add([rec()])
    with pytest.raises(StoreError, match="does not exist"):
        SQLiteStore(tmp_path / "missing.db", readonly=True)


def test_locked_database_times_out_with_store_error(tmp_path):
    path = tmp_path / "t.db"
    SQLiteStore(path).close()
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreError, match="locked"):
            SQLiteStore(path, timeout_s=0.2).add([rec()])
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def test_threads_with_separate_connections_lose_nothing(tmp_path):
    path = tmp_path / "t.db"
    SQLiteStore(path).close()

    def work(offset):
        s = SQLiteStore(path)
        for batch in range(20):
            s.add([rec(x=offset * 10_000 + batch * 100 + i) for i in range(50)])
        s.close()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s = SQLiteStore(path)
    assert s.count() == 4 * 20 * 50
    assert len(s.load("m:f")) == 4 * 20 * 50
    s.close()


def test_batch_is_atomic(tmp_path):
    s = SQLiteStore(tmp_path / "t.db")
    bad = TraceRecord("m:f", "h1", None, None, None, None, None, None)  # inputs NOT NULL
    with pytest.raises(StoreError) as info:
        s.add([rec(), bad])
    assert not isinstance(info.value, CorruptStoreError)
    assert s.count() == 0
    s.add([rec()])
    assert s.count() == 1


def test_loaded_traces_export_to_parquet(store, tmp_path):
    pytest.importorskip("pyarrow")
    store.add([rec(x=i) for i in range(3)])
    path = tmp_path / "t.parquet"
    store.load("m:f").to_parquet(str(path))
    import pyarrow.parquet as pq

    assert pq.read_table(path).num_rows == 3
