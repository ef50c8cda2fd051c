"""The embedded default trace store: one SQLite file in WAL mode.

WAL lets readers work while a recorder writes, and lets several threads and processes append
to one file (each batch is one `BEGIN IMMEDIATE` transaction, retried while another writer
holds the lock). The file carries `PRAGMA application_id` and a `meta` table, so a foreign or
damaged file is recognised and refused (`CorruptStoreError`) instead of being written to.
Committed batches survive a killed process (WAL with `synchronous=NORMAL`); pass
`durable=True` for `synchronous=FULL` if they must also survive a power cut.
"""

from __future__ import annotations

import functools
import os
import random
import sqlite3
import threading
import time
from itertools import chain
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar
from urllib.parse import quote

from ._encoding import trusted_set
from ._errors import CorruptStoreError, StoreError
from ._retention import PruneRule, StoreStats
from ._store import FunctionSummary, TraceColumns, TraceRecord, TraceStore
from ._validation import check_flag, check_number

T = TypeVar("T")

#: `PRAGMA application_id` of a neuroswap store: b"NSWP".
APPLICATION_ID = 0x4E535750
#: the schema this code writes and reads.
SCHEMA_VERSION = 1
MAGIC = "neuroswap-traces"
_SQLITE_HEADER = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS functions (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    source_hash TEXT NOT NULL,
    UNIQUE (name, source_hash)
);
CREATE TABLE IF NOT EXISTS traces (
    id INTEGER PRIMARY KEY,
    function_id INTEGER NOT NULL REFERENCES functions (id),
    inputs TEXT NOT NULL,
    output TEXT,
    error_type TEXT,
    error_message TEXT,
    duration_s REAL,
    timestamp REAL
);
CREATE INDEX IF NOT EXISTS traces_by_function ON traces (function_id, id);
"""


#: rows per multi-row INSERT (6 values a row stays under SQLite's oldest limit of 999 variables)
_ROWS_PER_INSERT = 100


@functools.lru_cache(maxsize=256)
def _insert_sql(function_id: int, width: int, rows: int) -> str:
    """A multi-row INSERT of `rows` traces of one function (`width` 4: no error columns)."""
    one = "(%d,?,?,NULL,NULL,?,?)" % function_id if width == 4 else "(%d,?,?,?,?,?,?)" % function_id
    return ("INSERT INTO traces (function_id, inputs, output, error_type, error_message, duration_s, timestamp) "
            "VALUES " + ",".join([one] * rows))


def _neuroswap_version() -> str:
    try:
        from importlib.metadata import version

        return version("neuroswap")
    except Exception:
        return "unknown"


def _is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


class SQLiteStore(TraceStore):
    """Traces in one SQLite file. Safe for many threads and processes at once.

    `timeout_s` bounds how long one batch waits for another writer before failing;
    `readonly=True` opens the file with `mode=ro` (loading works, `add` raises StoreError).
    `trusted_modules` lists the modules `load` may import to rebuild enum, dataclass and
    namedtuple values (see `TraceStore.load`); nothing else is ever imported while decoding.
    """

    def __init__(self, path: "str | os.PathLike[str]", *, readonly: bool = False, timeout_s: float = 30.0,
                 durable: bool = False, trusted_modules: "Iterable[str] | None" = None) -> None:
        check_number("timeout_s", timeout_s, low=0.0)
        check_flag("readonly", readonly)
        check_flag("durable", durable)
        self.trusted_modules = trusted_set(trusted_modules)
        self.path = os.path.abspath(os.fspath(path))
        self.uri = f"sqlite:///{self.path}"
        self.readonly = bool(readonly)
        self.timeout_s = float(timeout_s)
        self.durable = bool(durable)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._abandoned: list[sqlite3.Connection] = []  # inherited across fork: never touched again
        self._connections_lock = threading.Lock()
        self._pid = os.getpid()
        self._function_ids: dict[tuple[str, str], int] = {}
        self._closed = False
        self._check_file()
        self._initialise()

    # -- opening and checking -----------------------------------------------------------------
    def _check_file(self) -> None:
        path = self.path
        if os.path.isdir(path):
            raise StoreError(f"{path} is a directory, not a trace store file. Pass a file path such as {path}/traces.db")
        if not os.path.exists(path):
            if self.readonly:
                raise StoreError(f"{path} does not exist : a read-only store must already exist. Record into it first")
            parent = os.path.dirname(path)
            try:
                os.makedirs(parent, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{path} cannot be created : {exc}") from exc
            return
        try:
            with open(path, "rb") as handle:
                header = handle.read(100)
        except OSError as exc:
            raise StoreError(f"{path} cannot be read : {exc}") from exc
        if header and not header.startswith(_SQLITE_HEADER):
            raise CorruptStoreError(f"{path} is not a neuroswap trace store (not an SQLite database); it was left untouched")
        if len(header) >= 72:
            app_id = int.from_bytes(header[68:72], "big")
            if app_id not in (0, APPLICATION_ID):
                raise CorruptStoreError(
                    f"{path} is an SQLite database of another application (application_id={app_id:#x}), "
                    "not a neuroswap trace store; it was left untouched")

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            target, uri = f"file:{quote(self.path)}?mode=ro", True
        else:
            target, uri = self.path, False
        try:
            connection = sqlite3.connect(target, uri=uri, timeout=min(self.timeout_s, 5.0),
                                         isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path} cannot be opened : {exc}") from exc
        return connection

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection (SQLite connections must not cross threads or a fork)."""
        if self._closed:
            raise StoreError(f"{self.path} : the store was closed. Open it again with TraceStore.open(...)")
        if os.getpid() != self._pid:
            self._after_fork()
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            try:
                connection.execute(f"PRAGMA synchronous={'FULL' if self.durable else 'NORMAL'}")
            except sqlite3.Error:
                pass
            self._local.connection = connection
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    def _after_fork(self) -> None:
        # a connection opened before fork must not be used (or closed) in the child
        self._abandoned.extend(self._connections)
        self._connections = []
        self._local = threading.local()
        self._connections_lock = threading.Lock()
        self._pid = os.getpid()

    def _retry(self, action: Callable[[sqlite3.Connection], T]) -> T:
        """Run `action`, retrying while another writer holds the lock, up to `timeout_s`."""
        deadline = time.monotonic() + self.timeout_s
        delay = 0.002
        while True:
            connection = self._connection()
            try:
                return action(connection)
            except sqlite3.OperationalError as exc:
                if connection.in_transaction:
                    try:
                        connection.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise self._store_error(exc) from exc
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 0.1)
            except sqlite3.DatabaseError as exc:
                if connection.in_transaction:
                    try:
                        connection.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                raise self._store_error(exc) from exc

    def _store_error(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        if type(exc) is sqlite3.DatabaseError or "not a database" in text or "malformed" in text:
            return CorruptStoreError(f"{self.path} is damaged or not a trace store ({text}); it was left untouched")
        return StoreError(f"{self.path} : {text}")

    def _identify(self, connection: sqlite3.Connection) -> str:
        """'ours', 'fresh' (empty database) or raise CorruptStoreError."""
        app_id = connection.execute("PRAGMA application_id").fetchone()[0]
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if app_id == APPLICATION_ID and "meta" in tables:
            meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("magic") != MAGIC:
                raise CorruptStoreError(f"{self.path} claims to be a neuroswap store but its meta table is damaged")
            version = int(meta.get("schema_version", "0"))
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path} was written by a newer neuroswap (schema {version} > {SCHEMA_VERSION}). "
                                 "Upgrade neuroswap to read it")
            return "ours"
        if app_id == 0 and not tables:
            return "fresh"
        if app_id == APPLICATION_ID:
            return "fresh" if not tables else self._foreign(app_id, tables)
        return self._foreign(app_id, tables)

    def _foreign(self, app_id: int, tables: set[str]) -> str:
        raise CorruptStoreError(
            f"{self.path} is an SQLite database of another application (application_id={app_id:#x}, "
            f"tables {sorted(tables)}), not a neuroswap trace store; it was left untouched")

    def _initialise(self) -> None:
        def identify(connection: sqlite3.Connection) -> str:
            return self._identify(connection)

        try:
            state = self._retry(identify)
        except BaseException:
            self.close()
            raise
        if state == "ours":
            return
        if self.readonly:
            self.close()
            raise StoreError(f"{self.path} is empty : a read-only store must already hold traces")

        def create(connection: sqlite3.Connection) -> None:
            mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            connection.execute("BEGIN IMMEDIATE")
            if self._identify(connection) == "ours":  # another process won the race
                connection.execute("COMMIT")
                return
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    connection.execute(statement)
            connection.execute(f"PRAGMA application_id={APPLICATION_ID}")
            connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            version = _neuroswap_version()
            connection.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [("magic", MAGIC), ("schema_version", str(SCHEMA_VERSION)), ("created_at", repr(time.time())),
                 ("neuroswap_version", version), ("journal_mode", str(mode))],
            )
            connection.execute("COMMIT")

        try:
            self._retry(create)
        except BaseException:
            self.close()
            raise

    # -- writing --------------------------------------------------------------------------------
    def add(self, records: Sequence[TraceRecord]) -> None:
        if not records:
            return
        rows_by_key: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
        for r in records:
            rows_by_key.setdefault((r.function, r.source_hash), []).append(
                (r.inputs, r.output, r.error_type, r.error_message, r.duration_s, r.timestamp))

        def write(connection: sqlite3.Connection) -> dict[tuple[str, str], int]:
            connection.execute("BEGIN IMMEDIATE")
            new_ids: dict[tuple[str, str], int] = {}
            for key, rows in rows_by_key.items():
                function_id = self._function_ids.get(key)
                if function_id is None:
                    connection.execute("INSERT OR IGNORE INTO functions (name, source_hash) VALUES (?, ?)", key)
                    function_id = connection.execute(
                        "SELECT id FROM functions WHERE name = ? AND source_hash = ?", key).fetchone()[0]
                    new_ids[key] = function_id
                connection.executemany(
                    "INSERT INTO traces (function_id, inputs, output, error_type, error_message, duration_s, timestamp)"
                    f" VALUES ({function_id}, ?, ?, ?, ?, ?, ?)", rows)
            connection.execute("COMMIT")
            return new_ids

        if self.readonly:
            raise StoreError(f"{self.path} was opened read-only : traces cannot be added. Open it without mode=ro")
        self._function_ids.update(self._retry(write))

    def _add_columns(self, batches: Sequence[TraceColumns]) -> None:
        """Column batches in one transaction, `_ROWS_PER_INSERT` rows per INSERT statement: per
        row, Python's sqlite3 pays a statement step and a call per bound value, so one
        multi-row statement with the NULL error columns written as literals costs about a
        third of `executemany` over 6 columns."""
        if self.readonly:
            raise StoreError(f"{self.path} was opened read-only : traces cannot be added. Open it without mode=ro")
        plans = []
        for batch in batches:
            if not batch.inputs:
                continue
            if batch.error_types is None:
                flat = list(chain.from_iterable(zip(batch.inputs, batch.outputs, batch.durations, batch.timestamps)))
                width = 4
            else:
                flat = list(chain.from_iterable(zip(batch.inputs, batch.outputs, batch.error_types,
                                                    batch.error_messages, batch.durations, batch.timestamps)))
                width = 6
            plans.append(((batch.function, batch.source_hash), width, flat))

        def write(connection: sqlite3.Connection) -> dict[tuple[str, str], int]:
            connection.execute("BEGIN IMMEDIATE")
            new_ids: dict[tuple[str, str], int] = {}
            for key, width, flat in plans:
                function_id = self._function_ids.get(key) or new_ids.get(key)
                if function_id is None:
                    connection.execute("INSERT OR IGNORE INTO functions (name, source_hash) VALUES (?, ?)", key)
                    function_id = connection.execute(
                        "SELECT id FROM functions WHERE name = ? AND source_hash = ?", key).fetchone()[0]
                    new_ids[key] = function_id
                step = _ROWS_PER_INSERT * width
                whole = len(flat) // step * step
                if whole:
                    connection.executemany(_insert_sql(function_id, width, _ROWS_PER_INSERT),
                                           [flat[i:i + step] for i in range(0, whole, step)])
                if whole < len(flat):
                    connection.execute(_insert_sql(function_id, width, (len(flat) - whole) // width), flat[whole:])
            connection.execute("COMMIT")
            return new_ids

        if plans:
            self._function_ids.update(self._retry(write))

    # -- reading --------------------------------------------------------------------------------
    def functions(self) -> list[FunctionSummary]:
        def query(connection: sqlite3.Connection) -> list[FunctionSummary]:
            rows = connection.execute(
                "SELECT f.name, f.source_hash, COUNT(t.id) FROM functions f JOIN traces t ON t.function_id = f.id "
                "GROUP BY f.id ORDER BY f.name, MIN(t.id)").fetchall()
            return [FunctionSummary(name, source_hash, count) for name, source_hash, count in rows]

        return self._retry(query)

    def count(self, function: Any = None, *, source_hash: str | None = None) -> int:
        name = self._name_of(function)
        source_hash = self._version_of(function, source_hash)

        def query(connection: sqlite3.Connection) -> int:
            if name is None and source_hash is None:
                return int(connection.execute("SELECT COUNT(*) FROM traces").fetchone()[0])
            clauses, params = [], []
            if name is not None:
                clauses.append("f.name = ?")
                params.append(name)
            if source_hash is not None:
                clauses.append("f.source_hash = ?")
                params.append(source_hash)
            return int(connection.execute(
                "SELECT COUNT(*) FROM traces t JOIN functions f ON t.function_id = f.id WHERE " + " AND ".join(clauses),
                params).fetchone()[0])

        return self._retry(query)

    def _rows(self, name: str, source_hashes: Sequence[str] | None) -> Iterator[TraceRecord]:
        def ids(connection: sqlite3.Connection) -> list[tuple[int, str]]:
            return connection.execute("SELECT id, source_hash FROM functions WHERE name = ?", (name,)).fetchall()

        wanted = [(fid, h) for fid, h in self._retry(ids) if source_hashes is None or h in source_hashes]
        if not wanted:
            return
        hash_of = dict(wanted)
        marks = ",".join("?" * len(wanted))
        sql = ("SELECT function_id, inputs, output, error_type, error_message, duration_s, timestamp FROM traces "
               f"WHERE function_id IN ({marks}) ORDER BY id")
        connection = self._connection()
        try:
            cursor = connection.execute(sql, list(hash_of))
            while True:
                chunk = cursor.fetchmany(512)
                if not chunk:
                    break
                for fid, inputs, output, error_type, error_message, duration_s, timestamp in chunk:
                    yield TraceRecord(name, hash_of[fid], inputs, output, error_type, error_message, duration_s, timestamp)
        except sqlite3.Error as exc:
            raise self._store_error(exc) from exc

    # -- retention ------------------------------------------------------------------------------
    def _prune(self, rule: PruneRule) -> int:
        if self.readonly:
            raise StoreError(f"{self.path} was opened read-only : traces cannot be pruned. Open it without mode=ro")
        where, params = rule.function_filter("?")

        def delete(connection: sqlite3.Connection) -> int:
            connection.execute("BEGIN IMMEDIATE")
            groups: dict[str, list[int]] = {}
            for fid, name in connection.execute(
                    f"SELECT id, name FROM functions WHERE {where}", params).fetchall():
                groups.setdefault(name, []).append(fid)
            deleted = 0
            for fids in groups.values():  # function rows stay: a recorder elsewhere may hold their ids
                marks = ",".join("?" * len(fids))
                if rule.keep_last is not None:
                    cursor = connection.execute(
                        f"DELETE FROM traces WHERE function_id IN ({marks}) AND id <= (SELECT id FROM traces "
                        f"WHERE function_id IN ({marks}) ORDER BY id DESC LIMIT 1 OFFSET ?)",
                        [*fids, *fids, rule.keep_last])
                else:
                    cursor = connection.execute(
                        f"DELETE FROM traces WHERE function_id IN ({marks}) AND timestamp < ?", [*fids, rule.cutoff])
                deleted += max(cursor.rowcount, 0)
            connection.execute("COMMIT")
            return deleted

        return self._retry(delete)

    def _stats(self) -> StoreStats:
        def query(connection: sqlite3.Connection) -> tuple[Any, ...]:
            total, oldest, newest = connection.execute(
                "SELECT COUNT(*), MIN(timestamp), MAX(timestamp) FROM traces").fetchone()
            versions = connection.execute(
                "SELECT f.name, COUNT(t.id) FROM functions f JOIN traces t ON t.function_id = f.id "
                "GROUP BY f.id ORDER BY f.name").fetchall()
            return total, oldest, newest, versions

        total, oldest, newest, versions = self._retry(query)
        by_function: dict[str, int] = {}
        for name, count in versions:
            by_function[name] = by_function.get(name, 0) + int(count)
        size = sum(os.path.getsize(self.path + suffix) for suffix in ("", "-wal", "-shm")
                   if os.path.exists(self.path + suffix))
        return StoreStats("sqlite", self.uri, int(total), len(by_function), len(versions), oldest, newest, size,
                          by_function)

    def _commit(self) -> None:
        # every batch is committed by `add`; a checkpoint moves the WAL into the main file
        if self.readonly or self._closed:
            return
        try:
            self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass

    def close(self) -> None:
        if os.getpid() != self._pid:
            self._after_fork()
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            try:
                connection.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()
        self._closed = True
