"""The PostgreSQL store: layout, refusal of foreign or newer schemas, many processes, killed
writers, and a server that is down (a clear error, fast; `@record` keeps working).

Every test here but the down-server ones runs on the session's own server (conftest.py).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from probes._encoding import dumps
from probes._errors import CorruptStoreError, MissingDependencyError, StoreError
from probes._record import record
from probes._store import TraceRecord, TraceStore, encode_inputs
from probes._traces import ErrorInfo

psycopg = pytest.importorskip("psycopg", reason="PostgreSQL tests need psycopg: pip install 'neuroswap[postgres]'")

from probes._store_postgres import PostgresStore, redact  # noqa: E402


@pytest.fixture(autouse=True)
def _recording_on(monkeypatch):
    monkeypatch.delenv("NEUROSWAP_RECORD", raising=False)
    monkeypatch.delenv("NEUROSWAP_STORE", raising=False)


def rec(name="m:f", version="h1", x=1, error=None):
    return TraceRecord(name, version, encode_inputs({"x": x}), None if error else dumps(2 * x),
                       error.type if error else None, error.message if error else None, 0.5, 100.0 + x)


def sql(uri, statement, params=()):
    with psycopg.connect(uri, autocommit=True) as connection:
        cursor = connection.execute(statement, params)
        return cursor.fetchall() if cursor.description else None


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the probe is closed


# -- layout and opening ---------------------------------------------------------------------------

def test_open_dispatches_and_lays_out_a_versioned_schema(postgres_uri):
    store = TraceStore.open(postgres_uri)
    assert isinstance(store, PostgresStore)
    store.add([rec()])
    tables = {row[0] for row in sql(postgres_uri, "SELECT table_name FROM information_schema.tables "
                                                  "WHERE table_schema = 'neuroswap'")}
    assert tables == {"meta", "functions", "traces"}
    meta = dict(sql(postgres_uri, "SELECT key, value FROM neuroswap.meta"))
    assert meta["magic"] == "neuroswap-traces" and meta["schema_version"] == "1"
    indexes = {row[0] for row in sql(postgres_uri, "SELECT indexname FROM pg_indexes WHERE schemaname = 'neuroswap'")}
    assert "traces_by_function" in indexes
    store.close()
    assert TraceStore.open(postgres_uri.replace("postgresql://", "postgres://")).count() == 1


def test_reopen_keeps_traces_and_a_closed_store_says_so(postgres_uri):
    first = TraceStore.open(postgres_uri)
    first.add([rec(x=i) for i in range(50)])
    first.close()
    again = TraceStore.open(postgres_uri)
    assert again.count() == 50 and len(again.load("m:f")) == 50
    with pytest.raises(StoreError, match="closed"):
        first.count()
    again.close()


def test_many_openers_at_once_create_the_tables_once(postgres_uri):
    errors, stores = [], []

    def open_one():
        try:
            stores.append(PostgresStore(postgres_uri))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(stores) == 8
    assert sql(postgres_uri, "SELECT COUNT(*) FROM neuroswap.meta WHERE key = 'magic'") == [(1,)]
    for s in stores:
        s.close()


def test_foreign_schema_is_refused_and_left_untouched(postgres_uri):
    sql(postgres_uri, "CREATE SCHEMA neuroswap; CREATE TABLE neuroswap.things (a int); "
                      "INSERT INTO neuroswap.things VALUES (1)")
    with pytest.raises(CorruptStoreError, match="not a neuroswap trace store"):
        TraceStore.open(postgres_uri)
    assert sql(postgres_uri, "SELECT a FROM neuroswap.things") == [(1,)]


def test_a_database_that_is_not_utf8_is_refused(postgres_server):
    sql(postgres_server.admin_uri, "CREATE DATABASE latin ENCODING 'LATIN1' TEMPLATE template0 "
                                   "LC_COLLATE 'C' LC_CTYPE 'C'")
    uri = postgres_server.admin_uri.rsplit("/", 1)[0] + "/latin"
    with pytest.raises(StoreError, match="encoding is LATIN1, and traces need UTF8"):
        TraceStore.open(uri)
    assert sql(uri, "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'neuroswap'") == [(0,)]


def test_newer_schema_is_refused(postgres_uri):
    PostgresStore(postgres_uri).close()
    sql(postgres_uri, "UPDATE neuroswap.meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="newer neuroswap"):
        PostgresStore(postgres_uri)


def test_batch_is_atomic_and_the_store_recovers(postgres_uri):
    store = PostgresStore(postgres_uri)
    bad = TraceRecord("m:f", "h1", None, None, None, None, None, None)  # inputs NOT NULL
    with pytest.raises(StoreError, match="inputs"):
        store.add([rec(), bad])
    assert store.count() == 0
    store.add([rec()])
    assert store.count() == 1
    store.close()


def test_text_postgres_cannot_hold_is_kept_readable(postgres_uri):
    store = PostgresStore(postgres_uri)
    store.add([rec(x=1, error=ErrorInfo("ValueError", "bad\x00byte")),
               TraceRecord("m:f", "h1", encode_inputs({"x": "nul\x00 and é"}), dumps("\x00"), None, None, None, None)])
    traces = store.load("m:f")
    assert traces.errors[0] == ErrorInfo("ValueError", "bad\\x00byte")
    assert traces.inputs[1] == {"x": "nul\x00 and é"} and traces.outputs[1] == "\x00"
    store.close()


def test_loading_pages_through_many_rows(postgres_uri):
    store = PostgresStore(postgres_uri)
    store.add([rec(x=i) for i in range(12_345)])
    traces = store.load("m:f", dedupe=False)
    assert [kw["x"] for kw in traces.inputs] == list(range(12_345))
    assert len(store.load("m:f", limit=7)) == 7
    store.close()


def test_stats_name_the_redacted_uri(postgres_server):
    uri = postgres_server.new_database().replace("postgres@", "postgres:unused@")  # trust auth ignores it
    store = TraceStore.open(uri)
    assert "unused" not in store.stats().uri and "postgres:***@" in store.stats().uri
    assert "unused" not in repr(store)
    store.close()


def test_a_lost_connection_is_replaced_on_the_next_call(postgres_uri):
    store = PostgresStore(postgres_uri)
    store.add([rec(x=1)])
    sql(postgres_uri, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE application_name = 'neuroswap' AND datname = current_database()")
    try:
        store.add([rec(x=2)])  # may fail once (the recorder retries a failed batch)
    except StoreError as exc:
        assert "127.0.0.1" in str(exc)
        store.add([rec(x=2)])
    assert [kw["x"] for kw in store.load("m:f").inputs] == [1, 2]
    store.close()


def test_a_uri_libpq_cannot_read_is_refused_by_name():
    with pytest.raises(StoreError, match=r"postgresql://a:\*\*\*@h/d\?bogus=1 is not a PostgreSQL URI"):
        TraceStore.open("postgresql://a:pw@h/d?bogus=1")


def test_missing_psycopg_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(MissingDependencyError, match=r"neuroswap\[postgres\]"):
        TraceStore.open("postgresql://nobody@127.0.0.1:1/none")


# -- a server that is down ------------------------------------------------------------------------

def test_down_server_fails_fast_naming_the_redacted_uri():
    uri = f"postgresql://ann:s3cret@127.0.0.1:{_closed_port()}/traces"
    started = time.monotonic()
    with pytest.raises(StoreError) as info:
        TraceStore.open(uri)
    assert time.monotonic() - started < 15  # an error, not a hang
    message = str(info.value)
    assert uri.replace("s3cret", "***") in message and "s3cret" not in message
    assert "cannot be reached" in message
    assert "s3cret" not in repr(info.value.__cause__) and info.value.__suppress_context__


def test_unroutable_server_fails_within_the_connect_timeout():
    # TEST-NET-1 (RFC 5737) is never routed: the connection either fails at once or times out
    uri = "postgresql://ann@192.0.2.1:5432/traces?password=s3cret"
    started = time.monotonic()
    with pytest.raises(StoreError, match="cannot be reached") as info:
        TraceStore.open(uri, connect_timeout_s=2)
    assert time.monotonic() - started < 15
    assert "s3cret" not in str(info.value) and "password=***" in str(info.value)


def test_redact_hides_both_password_forms():
    assert redact("postgresql://a:b@h/d") == "postgresql://a:***@h/d"
    assert redact("postgresql://a@h/d?sslmode=require&password=pw") == "postgresql://a@h/d?sslmode=require&password=***"


def test_record_to_a_down_server_never_breaks_calls():
    uri = f"postgresql://ann:s3cret@127.0.0.1:{_closed_port()}/traces"

    @record(store=uri)
    def triple(x):
        return 3 * x

    before = record.stats()
    assert [triple(i) for i in range(25)] == [3 * i for i in range(25)]
    assert record.flush(timeout=60)
    after = record.stats()
    assert after.failed - before.failed == 25
    assert after.failed_by_reason.get("StoreError", 0) - before.failed_by_reason.get("StoreError", 0) == 25


# -- many processes, killed writers ---------------------------------------------------------------

def _process_worker(uri: str, worker: int) -> None:
    @record(store=uri)
    def work(worker, i):
        return worker * 100_000 + i

    for i in range(5000):
        work(worker, i)
    assert record.flush(timeout=120)


def test_four_processes_lose_no_trace(postgres_uri):
    PostgresStore(postgres_uri).close()
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_process_worker, args=(postgres_uri, k)) for k in range(4)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(300)
    assert [p.exitcode for p in processes] == [0] * 4
    store = PostgresStore(postgres_uri)
    traces = store.load(f"{__name__}:_process_worker.<locals>.work", source_hash="*", dedupe=False)
    assert len(traces) == 4 * 5000
    assert sorted(traces.outputs) == sorted(k * 100_000 + i for k in range(4) for i in range(5000))
    store.close()


@pytest.mark.parametrize("death", ["sigkill", "os_exit"])
def test_killed_after_flush_keeps_every_flushed_trace(postgres_uri, death):
    ending = "os._exit(0)" if death == "os_exit" else "while True:  # keep recording (unflushed) until killed\n" \
        "            work(i)\n            i += 1"
    script = textwrap.dedent(f"""
        import os, sys
        from probes import _record

        @_record.record(store={postgres_uri!r})
        def work(i):
            return i * 2

        for i in range(3000):
            work(i)
        assert _record.record.flush()
        print("flushed", flush=True)
        i = 3000
        for _ in range(500):
            work(i)
            i += 1
        {ending}
    """)
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "flushed"
        if death == "sigkill":
            time.sleep(0.3)
            os.kill(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None and death == "os_exit":
            process.wait(60)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(30)
    assert process.returncode == (-signal.SIGKILL if death == "sigkill" else 0)
    store = PostgresStore(postgres_uri)
    traces = store.load("__main__:work", source_hash="*", dedupe=False)
    assert set(range(3000)) <= {kw["i"] for kw in traces.inputs}
    store.close()
