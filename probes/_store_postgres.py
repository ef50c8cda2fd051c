"""A trace store on a PostgreSQL server, for many processes on many hosts writing to one place.

A SQLite file serves one host; a fleet needs a server every host reaches. The tables live in
their own schema (`neuroswap`) so they sit beside an application's tables without clashing;
a `meta` table carries a magic string and a schema version, so a foreign or newer layout is
refused rather than written to. Each batch is one transaction whose rows go in by binary
`COPY` (one round trip), so a committed batch survives the death of the process that wrote it.
Connections are per thread and never cross a fork. Opening fails within `connect_timeout_s`
with the URI (password redacted) in the message, never a hang.
"""

from __future__ import annotations

import collections
import itertools
import os
import re
import threading
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar

from ._encoding import trusted_set
from ._errors import CorruptStoreError, StoreError
from ._retention import PruneRule, StoreStats
from ._store import POSTGRES_OPTIONS, FunctionSummary, TraceColumns, TraceRecord, TraceStore, redact_uri
from ._store_sqlite import MAGIC, SCHEMA_VERSION, _neuroswap_version
from ._validation import check_number, require

T = TypeVar("T")

#: the PostgreSQL schema (namespace) that holds neuroswap's tables.
SCHEMA = "neuroswap"
#: `pg_advisory_xact_lock` key taken while the tables are created (b"NSWP").
_CREATE_LOCK = 0x4E535750
#: rows fetched per round trip while loading.
_PAGE = 5000
#: the traces columns `add` copies, in order.
_COPY_TYPES = ["int8", "text", "text", "text", "text", "float8", "float8"]
_COPY_SQL = (f"COPY {SCHEMA}.traces (function_id, inputs, output, error_type, error_message, duration_s, timestamp)"
             " FROM STDIN (FORMAT BINARY)")

_TABLES = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS {SCHEMA}.functions (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL,
    source_hash TEXT NOT NULL,
    UNIQUE (name, source_hash)
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.traces (
    id BIGSERIAL PRIMARY KEY,
    function_id BIGINT NOT NULL REFERENCES {SCHEMA}.functions (id),
    inputs TEXT NOT NULL,
    output TEXT,
    error_type TEXT,
    error_message TEXT,
    duration_s DOUBLE PRECISION,
    timestamp DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS traces_by_function ON {SCHEMA}.traces (function_id, id)
"""

def redact(uri: str) -> str:
    """`redact_uri`, and a `password=` query parameter hidden too (libpq accepts both forms)."""
    return re.sub(r"([?&]password=)[^&]*", r"\1***", redact_uri(uri))


class PostgresStore(TraceStore):
    """Traces in a PostgreSQL database (`postgresql://user:password@host:port/dbname`).

    Many threads, processes and hosts may write at once: each `add` is one transaction, and
    rows are told apart by a server-side sequence. `connect_timeout_s` bounds each connection
    attempt; TCP keepalives and `tcp_user_timeout` make a server that stops answering an error
    within about a minute instead of a writer stuck for ever (libpq parameters in the URI win).
    `trusted_modules` is as for every store (see `TraceStore.load`).
    """

    def __init__(self, uri: str, *, connect_timeout_s: float = 5.0, trusted_modules: Any = None) -> None:
        check_number("connect_timeout_s", connect_timeout_s, low=0, low_inclusive=False,
                     fix="Pass the seconds one connection attempt may take, e.g. connect_timeout_s=5")
        self._psycopg = require("psycopg", "postgres")
        self.trusted_modules = trusted_set(trusted_modules)
        self.uri = uri
        self.connect_timeout_s = float(connect_timeout_s)
        self._local = threading.local()
        self._connections: list[Any] = []
        self._abandoned: list[Any] = []  # inherited across fork: never used, never closed
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._function_ids: dict[tuple[str, str], int] = {}
        self._closed = False
        try:
            given = self._psycopg.conninfo.conninfo_to_dict(uri)
        except self._psycopg.Error as exc:
            raise StoreError(f"{redact(uri)} is not a PostgreSQL URI libpq reads : {self._clean(exc)}. "
                             "Use postgresql://user:password@host:port/dbname") from None
        defaults = {"connect_timeout": max(2, round(self.connect_timeout_s)), "application_name": "neuroswap",
                    "keepalives": 1, "keepalives_idle": 15, "keepalives_interval": 5, "keepalives_count": 3,
                    "tcp_user_timeout": 60_000}
        self._connect_options = {key: value for key, value in defaults.items()
                                 if key not in given or key == "connect_timeout"}
        try:
            self._run(self._initialise)
        except BaseException:
            self.close()
            raise

    # -- connections ----------------------------------------------------------------------------
    def _connection(self) -> Any:
        """This thread's connection (one per thread; a connection made before a fork is left alone)."""
        if self._closed:
            raise StoreError(f"{redact(self.uri)} : the store was closed. Open it again with TraceStore.open(...)")
        if os.getpid() != self._pid:
            self._abandoned.extend(self._connections)
            self._connections, self._local, self._lock = [], threading.local(), threading.Lock()
            self._pid = os.getpid()
        connection = getattr(self._local, "connection", None)
        if connection is None or connection.closed:
            try:
                connection = self._psycopg.connect(self.uri, autocommit=True, **self._connect_options)
            except self._psycopg.Error as exc:
                raise StoreError(f"{redact(self.uri)} cannot be reached : {self._clean(exc)}. Check that the "
                                 "server runs and accepts this user, or pass another URI") from None
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def _clean(self, exc: BaseException) -> str:
        text = " ".join(str(exc).split())
        try:
            password = self._psycopg.conninfo.conninfo_to_dict(getattr(self, "uri", "")).get("password")
        except Exception:  # noqa: BLE001 - a malformed URI: libpq's own message says so
            password = None
        return text.replace(str(password), "***") if password else text

    def _run(self, action: Callable[[Any], T]) -> T:
        """Run `action` on this thread's connection; a lost connection is dropped (the next call
        reconnects) and every server error becomes a StoreError naming the (redacted) URI."""
        connection = self._connection()
        try:
            return action(connection)
        except self._psycopg.Error as exc:
            if connection.closed or isinstance(exc, self._psycopg.OperationalError):
                self._drop(connection)
            raise StoreError(f"{redact(self.uri)} : {self._clean(exc)}") from None

    def _drop(self, connection: Any) -> None:
        if getattr(self._local, "connection", None) is connection:
            self._local.connection = None
        with self._lock:
            if connection in self._connections:
                self._connections.remove(connection)
        try:
            connection.close()
        except Exception:  # noqa: BLE001 - already broken
            pass

    # -- schema -------------------------------------------------------------------------------
    def _initialise(self, connection: Any) -> None:
        encoding = connection.execute("SHOW server_encoding").fetchone()[0]
        if encoding.upper() not in ("UTF8", "UTF-8"):  # traces hold any text; LATIN1 or SQL_ASCII would lose some
            raise StoreError(f"{redact(self.uri)} : the database's encoding is {encoding}, and traces need UTF8. "
                             "Create one with CREATE DATABASE traces ENCODING 'UTF8' TEMPLATE template0")
        if self._identify(connection) == "ours":
            return
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK,))
            if self._identify(connection) == "ours":  # another process won the race
                return
            for statement in _TABLES.split(";"):
                connection.execute(statement)
            connection.cursor().executemany(
                f"INSERT INTO {SCHEMA}.meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING",
                [("magic", MAGIC), ("schema_version", str(SCHEMA_VERSION)),
                 ("neuroswap_version", _neuroswap_version())])
            connection.execute(f"INSERT INTO {SCHEMA}.meta (key, value) VALUES ('created_at', "
                               "extract(epoch from now())::text) ON CONFLICT (key) DO NOTHING")

    def _identify(self, connection: Any) -> str:
        """'ours', 'fresh' (no neuroswap schema yet) or raise."""
        tables = {row[0] for row in connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (SCHEMA,))}
        if not tables:
            return "fresh"
        if not {"meta", "functions", "traces"} <= tables:
            raise CorruptStoreError(
                f"{redact(self.uri)} has a schema {SCHEMA!r} with tables {sorted(tables)} that is not a neuroswap "
                f"trace store; it was left untouched. Use another database, or drop that schema")
        meta = dict(connection.execute(f"SELECT key, value FROM {SCHEMA}.meta").fetchall())
        if meta.get("magic") != MAGIC:
            raise CorruptStoreError(f"{redact(self.uri)} : the {SCHEMA}.meta table is damaged (no neuroswap "
                                    "magic); the store was left untouched")
        version = int(meta.get("schema_version", "0"))
        if version > SCHEMA_VERSION:
            raise StoreError(f"{redact(self.uri)} was written by a newer neuroswap (schema {version} > "
                             f"{SCHEMA_VERSION}). Upgrade neuroswap to read it")
        return "ours"

    # -- writing ------------------------------------------------------------------------------
    def add(self, records: Sequence[TraceRecord]) -> None:
        if not records:
            return

        def rows(ids: dict[tuple[str, str], int]) -> Iterable[tuple[Any, ...]]:
            return ((ids[(r.function, r.source_hash)], r.inputs, r.output, _text(r.error_type),
                     _text(r.error_message), r.duration_s, r.timestamp) for r in records)

        self._copy({(r.function, r.source_hash) for r in records}, rows)

    def _add_columns(self, batches: Sequence[TraceColumns]) -> None:
        """The recorder's column batches by one binary COPY, rows zipped straight from the
        columns (no `TraceRecord` per call)."""
        batches = [batch for batch in batches if batch.inputs]
        if not batches:
            return

        def rows(ids: dict[tuple[str, str], int]) -> Iterable[tuple[Any, ...]]:
            for batch in batches:
                n = len(batch.inputs)
                none = [None] * n
                types = none if batch.error_types is None else list(map(_text, batch.error_types))
                messages = none if batch.error_messages is None else list(map(_text, batch.error_messages))
                yield from zip(itertools.repeat(ids[(batch.function, batch.source_hash)], n), batch.inputs,
                               batch.outputs, types, messages, batch.durations, batch.timestamps)

        self._copy({(batch.function, batch.source_hash) for batch in batches}, rows)

    def _copy(self, keys: set[tuple[str, str]],
              rows: Callable[[dict[tuple[str, str], int]], Iterable[tuple[Any, ...]]]) -> None:
        """One transaction: the function rows `keys` need, then `rows(ids)` by binary COPY
        (about half the client CPU of text COPY per row)."""
        ordered = sorted(keys)

        def write(connection: Any) -> None:
            self._ensure_ids(connection, ordered)
            with connection.transaction(), connection.cursor() as cursor, cursor.copy(_COPY_SQL) as copy:
                copy.set_types(_COPY_TYPES)
                collections.deque(map(copy.write_row, rows(self._function_ids)), maxlen=0)

        self._run(write)

    def _ensure_ids(self, connection: Any, keys: Sequence[tuple[str, str]]) -> None:
        missing = [key for key in keys if key not in self._function_ids]
        if missing:  # function rows are never deleted, so their ids can be kept across batches
            names, hashes = [k[0] for k in missing], [k[1] for k in missing]
            connection.execute(
                f"INSERT INTO {SCHEMA}.functions (name, source_hash) SELECT * FROM unnest(%s::text[], %s::text[])"
                " ON CONFLICT (name, source_hash) DO NOTHING", (names, hashes))
            rows = connection.execute(
                f"SELECT f.name, f.source_hash, f.id FROM {SCHEMA}.functions f JOIN unnest(%s::text[], %s::text[])"
                " AS k (name, source_hash) ON f.name = k.name AND f.source_hash = k.source_hash",
                (names, hashes)).fetchall()
            self._function_ids.update({(name, source_hash): fid for name, source_hash, fid in rows})

    # -- reading ------------------------------------------------------------------------------
    def functions(self) -> list[FunctionSummary]:
        rows = self._run(lambda c: c.execute(
            f"SELECT f.name, f.source_hash, COUNT(t.id) FROM {SCHEMA}.functions f JOIN {SCHEMA}.traces t "
            "ON t.function_id = f.id GROUP BY f.id ORDER BY f.name, MIN(t.id)").fetchall())
        return [FunctionSummary(name, source_hash, int(count)) for name, source_hash, count in rows]

    def count(self, function: Any = None, *, source_hash: str | None = None) -> int:
        name = self._name_of(function)
        source_hash = self._version_of(function, source_hash)
        clauses, params = ["TRUE"], []
        if name is not None:
            clauses.append("f.name = %s")
            params.append(name)
        if source_hash is not None:
            clauses.append("f.source_hash = %s")
            params.append(source_hash)
        sql = (f"SELECT COUNT(*) FROM {SCHEMA}.traces t JOIN {SCHEMA}.functions f ON t.function_id = f.id WHERE "
               + " AND ".join(clauses))
        return int(self._run(lambda c: c.execute(sql, params).fetchone()[0]))

    def _rows(self, name: str, source_hashes: Sequence[str] | None) -> Iterator[TraceRecord]:
        found = self._run(lambda c: c.execute(
            f"SELECT id, source_hash FROM {SCHEMA}.functions WHERE name = %s", (name,)).fetchall())
        hash_of = {fid: h for fid, h in found if source_hashes is None or h in source_hashes}
        if not hash_of:
            return
        sql = (f"SELECT id, function_id, inputs, output, error_type, error_message, duration_s, timestamp "
               f"FROM {SCHEMA}.traces WHERE function_id = ANY(%s) AND id > %s ORDER BY id LIMIT {_PAGE}")
        last = 0
        while True:  # pages by id: no transaction or cursor is held open between yields
            page = self._run(lambda c: c.execute(sql, (list(hash_of), last)).fetchall())
            for tid, fid, inputs, output, error_type, error_message, duration_s, timestamp in page:
                yield TraceRecord(name, hash_of[fid], inputs, output, error_type, error_message, duration_s, timestamp)
            if len(page) < _PAGE:
                return
            last = page[-1][0]

    # -- retention ----------------------------------------------------------------------------
    def _prune(self, rule: PruneRule) -> int:
        where, params = rule.function_filter("%s")

        def delete(connection: Any) -> int:
            deleted = 0
            with connection.transaction():
                groups: dict[str, list[int]] = {}
                for fid, name in connection.execute(
                        f"SELECT id, name FROM {SCHEMA}.functions WHERE {where}", params):
                    groups.setdefault(name, []).append(fid)
                for fids in groups.values():
                    if rule.keep_last is not None:
                        cursor = connection.execute(
                            f"DELETE FROM {SCHEMA}.traces WHERE function_id = ANY(%s) AND id <= (SELECT id FROM "
                            f"{SCHEMA}.traces WHERE function_id = ANY(%s) ORDER BY id DESC LIMIT 1 OFFSET %s)",
                            (fids, fids, rule.keep_last))
                    else:
                        cursor = connection.execute(
                            f"DELETE FROM {SCHEMA}.traces WHERE function_id = ANY(%s) AND timestamp < %s",
                            (fids, rule.cutoff))
                    deleted += max(cursor.rowcount, 0)
            return deleted

        return self._run(delete)

    def _stats(self) -> StoreStats:
        def query(connection: Any) -> StoreStats:
            total, oldest, newest = connection.execute(
                f"SELECT COUNT(*), MIN(timestamp), MAX(timestamp) FROM {SCHEMA}.traces").fetchone()
            versions = connection.execute(
                f"SELECT f.name, COUNT(t.id) FROM {SCHEMA}.functions f JOIN {SCHEMA}.traces t ON t.function_id = f.id "
                "GROUP BY f.id ORDER BY f.name").fetchall()
            size = connection.execute(
                "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'", (SCHEMA,)).fetchone()[0]
            by_function: dict[str, int] = {}
            for name, count in versions:
                by_function[name] = by_function.get(name, 0) + int(count)
            return StoreStats("postgresql", redact(self.uri), int(total), len(by_function), len(versions),
                              oldest, newest, int(size), by_function)

        return self._run(query)

    def close(self) -> None:
        if os.getpid() != self._pid:
            self._abandoned.extend(self._connections)
            self._connections, self._lock, self._pid = [], threading.Lock(), os.getpid()
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            try:
                connection.close()
            except Exception:  # noqa: BLE001 - closing a broken connection
                pass
        self._local = threading.local()
        self._closed = True

    def __repr__(self) -> str:
        return f"PostgresStore({redact(self.uri)!r})"


def _text(value: Any) -> Any:
    """Error text as PostgreSQL takes it: a NUL byte (which TEXT cannot hold) is spelled out."""
    if type(value) is str and "\x00" in value:
        return value.replace("\x00", "\\x00")
    return value


__all__ = ["PostgresStore", "POSTGRES_OPTIONS", "SCHEMA", "redact"]
