"""Where recorded calls live: a small abstract store with SQLite, PostgreSQL and in-memory backends.

The recorder only needs `add` (one batch of encoded rows) and readers only need `load`,
`functions` and `count`, so a backend is a few methods (MonkeyType's `db/base.py` shape).
Rows hold type-tagged JSON text (see `_encoding`), so every backend returns the same values.
Rows are data: decoding them never imports a module the caller did not name (`trusted_modules`)
and never calls anything the data names, and a row that does not decode is skipped, counted
(`Traces.skipped`) and reported in one warning, so it loses only itself.
"""

from __future__ import annotations

import abc
import itertools
import re
import json
import os
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Iterator, NamedTuple, Sequence
from urllib.parse import parse_qs, unquote, urlparse

from . import _encoding
from ._errors import CorruptStoreError, StoreError
from ._identity import function_name, source_hash as current_source_hash
from ._traces import ErrorInfo, Traces
from ._validation import bad_argument, check_flag

if TYPE_CHECKING:
    from ._retention import PruneRule, StoreStats

#: environment variable naming the default store (a path or URI).
STORE_ENV = "NEUROSWAP_STORE"
#: the default store when neither `store=` nor `$NEUROSWAP_STORE` says otherwise.
DEFAULT_STORE = "neuroswap_traces.db"
#: `load(..., source_hash=ANY_VERSION)` loads every recorded version of a function.
ANY_VERSION = "*"


class TraceRecord(NamedTuple):
    """One encoded call, as a backend stores it (inputs/output are type-tagged JSON text)."""

    function: str
    source_hash: str
    inputs: str
    output: str | None
    error_type: str | None
    error_message: str | None
    duration_s: float | None
    timestamp: float | None


class TraceColumns(NamedTuple):
    """Encoded calls of one function version, column by column (the recorder's batches).

    The recorder encodes a batch per column rather than per row, and a backend that can take
    columns (`_add_columns`) skips building a `TraceRecord` per call. `error_types` and
    `error_messages` are None when no call of the batch raised.
    """

    function: str
    source_hash: str
    inputs: list[str]
    outputs: list[str | None]
    error_types: list[str | None] | None
    error_messages: list[str | None] | None
    durations: list[float]
    timestamps: list[float]

    def records(self) -> list[TraceRecord]:
        """The same calls as `TraceRecord`s."""
        n = len(self.inputs)
        none = [None] * n
        return list(map(TraceRecord, itertools.repeat(self.function, n), itertools.repeat(self.source_hash, n),
                        self.inputs, self.outputs, none if self.error_types is None else self.error_types,
                        none if self.error_messages is None else self.error_messages, self.durations,
                        self.timestamps))


class FunctionSummary(NamedTuple):
    """One recorded version of a function: `(name, source_hash, count)`."""

    name: str
    source_hash: str
    count: int


class MixedVersionsWarning(UserWarning):
    """Traces of several source versions of one function were loaded together."""


class SkippedTracesWarning(UserWarning):
    """Some stored rows could not be decoded; they were left out of the loaded traces."""


def redact_uri(uri: str) -> str:
    """`uri` with any password (`scheme://user:password@host`) replaced by `***`."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/@:]*:)[^/@]*@", r"\1***@", uri)


def encode_inputs(inputs: dict[str, Any]) -> str:
    """JSON text of a kwargs dict (names stay JSON keys, values are tagged)."""
    return _encoding.dumps_fields(inputs)


def decode_inputs(text: str, *, trusted_modules: "Iterable[str] | None" = None) -> dict[str, Any]:
    """The kwargs dict `encode_inputs` wrote (classes resolved as `_encoding.decode` does)."""
    trusted = _encoding.trusted_set(trusted_modules)
    fields = json.loads(text)
    if type(fields) is not dict:
        raise ValueError("inputs must be a JSON object")
    return {name: _encoding.decode(value, trusted_modules=trusted) for name, value in fields.items()}


class TraceStore(abc.ABC):
    """Abstract trace store. Open one with `TraceStore.open(uri)`.

    Backends implement `add`, `functions`, `count`, `close` and `_rows` (and `_prune`, `_stats`
    for retention); `load` (decoding, de-duplication, version choice) is shared.
    """

    uri: str = ""
    #: modules whose enum, dataclass and namedtuple classes `load` may import to rebuild values
    #: (`TraceStore.open(uri, trusted_modules=...)`); any other class must already be imported.
    trusted_modules: frozenset[str] = frozenset()

    # -- opening ----------------------------------------------------------------------------
    @staticmethod
    def open(uri: "str | os.PathLike[str] | TraceStore | None" = None, **options: Any) -> "TraceStore":
        """Open `sqlite:///path.db`, a plain path, `memory://[name]`, or `postgresql://user:pw@host/db`.

        With no argument: `$NEUROSWAP_STORE`, else `./neuroswap_traces.db`. `options` go to the
        backend (`SQLiteStore(readonly=..., timeout_s=...)`, `PostgresStore(connect_timeout_s=...)`).
        `trusted_modules=("mypkg.types", ...)` lists the modules `load` may import to rebuild enum,
        dataclass and namedtuple values (classes of modules already imported need no listing). A
        `TraceStore` is returned as is, with its own options.
        """
        trusted = _encoding.trusted_set(options.pop("trusted_modules", None))
        unknown = [name for name in options if name not in SQLITE_OPTIONS + POSTGRES_OPTIONS]
        if unknown:
            raise bad_argument(unknown[0], options[unknown[0]], "is not an option of TraceStore.open",
                               f"Options are: trusted_modules, {', '.join(SQLITE_OPTIONS + POSTGRES_OPTIONS)}")
        if isinstance(uri, TraceStore):
            return uri
        kind, target, query = parse_uri(uri, "uri")
        wrong = [name for name in options if name not in (POSTGRES_OPTIONS if kind == "postgresql" else SQLITE_OPTIONS)]
        if kind == "postgresql" and wrong:
            raise bad_argument(wrong[0], options[wrong[0]], "is an option of a SQLite store, not of postgresql://",
                               f"Options of a PostgreSQL store are: trusted_modules, {', '.join(POSTGRES_OPTIONS)}")
        if kind == "postgresql":
            from ._store_postgres import PostgresStore

            return PostgresStore(target, trusted_modules=trusted, **options)
        if kind == "sqlite" and wrong:
            raise bad_argument(wrong[0], options[wrong[0]], "is an option of a PostgreSQL store, not of SQLite",
                               f"Options of a SQLite store are: trusted_modules, {', '.join(SQLITE_OPTIONS)}")
        if kind == "memory" and options:
            name = next(iter(options))
            backend = "PostgreSQL" if name in POSTGRES_OPTIONS else "SQLite"
            raise bad_argument(name, options[name], f"is an option of a {backend} store, not of memory://",
                               "Leave it out, or open a file ('sqlite:///traces.db')")
        if kind == "memory":
            from ._store_memory import MemoryStore

            store: TraceStore = MemoryStore.named(target) if target else MemoryStore()
            if trusted:  # a named store is shared: trusting more there is what this caller asked
                store.trusted_modules = store.trusted_modules | trusted
            return store
        from ._store_sqlite import SQLiteStore

        if query.get("mode") == "ro":
            options.setdefault("readonly", True)
        return SQLiteStore(target, trusted_modules=trusted, **options)

    # -- backend interface ----------------------------------------------------------------
    @abc.abstractmethod
    def add(self, records: Sequence[TraceRecord]) -> None:
        """Store a batch of records atomically (all or none)."""

    @abc.abstractmethod
    def functions(self) -> list[FunctionSummary]:
        """Every recorded `(name, source_hash, count)`, sorted by name then first record."""

    @abc.abstractmethod
    def count(self, function: Any = None, *, source_hash: str | None = None) -> int:
        """Number of stored traces: all, or of one function name, or of a function object's current
        source (like `load`); `source_hash` picks a version ("*": every version)."""

    @abc.abstractmethod
    def _rows(self, name: str, source_hashes: Sequence[str] | None) -> Iterator[TraceRecord]:
        """Records of `name` (restricted to `source_hashes` unless None), oldest first."""

    def close(self) -> None:
        """Release the backend's resources; the store cannot be used afterwards."""

    def _add_columns(self, batches: Sequence[TraceColumns]) -> None:
        """Store several column batches atomically (all or none); backends that can insert
        columns without a `TraceRecord` per row override this."""
        records: list[TraceRecord] = []
        for batch in batches:
            records.extend(batch.records())
        self.add(records)

    def _commit(self) -> None:
        """Make every added record durable (backends that buffer override this)."""

    def _prune(self, rule: "PruneRule") -> int:
        raise StoreError(f"{type(self).__name__} cannot prune traces. Use a memory, SQLite or PostgreSQL store")

    def _stats(self) -> "StoreStats":
        raise StoreError(f"{type(self).__name__} cannot report stats. Use a memory, SQLite or PostgreSQL store")

    # -- retention ----------------------------------------------------------------------------
    def prune(self, function: Any, *, keep_last: int | None = None, older_than: Any = None,
              source_hash: str = ANY_VERSION) -> int:
        """Delete old traces of `function` (a function, `"module:qualname"`, or `"*"` for each
        function in turn) so a store left recording does not grow without end; returns how many
        went. `keep_last=N` keeps its N newest traces (by insertion), `older_than=` (a datetime,
        or a timedelta back from now) drops traces recorded before then (traces without a
        timestamp stay). Every version unless `source_hash` names one. A SQLite file keeps its
        size until `VACUUM`; PostgreSQL reuses the space after its autovacuum."""
        from ._retention import check_prune

        return self._prune(check_prune(function, keep_last, older_than, source_hash, self._name_of))

    def stats(self) -> "StoreStats":
        """Traces, functions and versions held, the recorded time span, and the space taken."""
        return self._stats()

    # -- shared behaviour -------------------------------------------------------------------
    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every call recorded so far (by `@record`, in this process) is written,
        then commit. Returns False if the recorder could not drain within `timeout` seconds."""
        from ._record import default_recorder

        drained = default_recorder().flush(timeout=timeout)
        self._commit()
        return drained

    def load(
        self,
        function: Any,
        *,
        source_hash: str | None = None,
        limit: int | None = None,
        dedupe: bool = True,
        trusted_modules: "Iterable[str] | None" = None,
    ) -> Traces:
        """The recorded calls of `function` (a function object or `"module:qualname"`) as `Traces`.

        Version choice (`source_hash`):
        - None, with a function object: the traces of its *current* source only, since traces
          of an edited function may no longer describe it. If none match but other versions
          were recorded, a `MixedVersionsWarning` says so and an empty `Traces` is returned.
        - None, with a name: every recorded version; a `MixedVersionsWarning` is issued when
          there are several (and `Traces.source_hash` is then "").
        - `"*"`: every version, without warning. Any other string: exactly that version.
        `dedupe=True` keeps the first call of each distinct (version, inputs); `limit` caps the
        number of traces returned (after de-duplication), oldest first.

        Decoding imports no module but those in `trusted_modules` (added to the store's own) and
        calls nothing a row names (see `_encoding`). A row that cannot be decoded is left out and
        counted in `Traces.skipped`, with one `SkippedTracesWarning` per load.
        """
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise bad_argument("limit", limit, "must be None or an integer >= 0")
        check_flag("dedupe", dedupe, fix="Pass dedupe=False to keep repeated calls")
        trusted = self.trusted_modules | _encoding.trusted_set(trusted_modules)
        name, wanted = self._choose_versions(function, source_hash)
        if limit == 0 or wanted == []:
            return Traces.empty(name, wanted[0] if wanted else "")
        rows = decode_records(self._rows(name, wanted), trusted=trusted, dedupe=dedupe, limit=limit)
        inputs, skipped, hashes = rows.inputs, rows.skipped, rows.versions
        if wanted is not None and len(wanted) == 1:
            version = wanted[0]
        else:
            version = hashes[0] if len(hashes) == 1 else ""
        if skipped:
            warnings.warn(
                f"{redact_uri(self.uri)}: {skipped} stored trace(s) of {name} could not be decoded and were "
                f"skipped (first: {rows.first_failure}); the other {len(inputs)} loaded and the store was left "
                "untouched. traces.skipped holds the count",
                SkippedTracesWarning, stacklevel=2,
            )
        return Traces(inputs, rows.outputs, rows.errors, function=name, source_hash=version,
                      durations=rows.durations, timestamps=rows.timestamps, skipped=skipped)

    def export_parquet(self, folder: "str | os.PathLike[str]", partition_by: Sequence[str] = ("function", "day"),
                       function: Any = None, *, overwrite: bool = False, rows_per_file: int = 100_000) -> Any:
        """Write the traces (every function, or `function`: one or a list; every version) as a
        Hive-partitioned Parquet dataset (`function=.../day=YYYY-MM-DD/part-*.parquet`) that DuckDB,
        Spark, pandas and `Traces.from_parquet` read. A non-empty `folder` is refused unless
        `overwrite=True`, which replaces an earlier export only. Returns a `ParquetExport`;
        see `probes._parquet` for the columns. Needs pyarrow (`pip install "neuroswap[parquet]"`).
        """
        from ._parquet import export_parquet

        return export_parquet(self, folder, partition_by=partition_by, function=function, overwrite=overwrite,
                              rows_per_file=rows_per_file)

    def _choose_versions(self, function: Any, source_hash: str | None) -> tuple[str, list[str] | None]:
        if isinstance(function, str):
            if ":" not in function:
                raise bad_argument("function", function, "must be a function or 'module:qualname'",
                                   "For example store.load('myapp.fees:shipping_fee')")
            name, current = function, None
        elif callable(function) or isinstance(function, (classmethod, staticmethod)):
            name = function_name(function)
            current = current_source_hash(function)
        else:
            raise bad_argument("function", function, "must be a function or 'module:qualname'")
        if source_hash == ANY_VERSION:
            return name, None
        if source_hash is not None:
            if not isinstance(source_hash, str):
                raise bad_argument("source_hash", source_hash, "must be None, '*' or a hash string")
            return name, [source_hash]
        recorded = [summary for summary in self.functions() if summary.name == name]
        if current is not None:
            if recorded and all(summary.source_hash != current for summary in recorded):
                listed = ", ".join(f"{s.source_hash} ({s.count} traces)" for s in recorded)
                warnings.warn(
                    f"{name}: no traces of its current source ({current}); other versions were "
                    f"recorded: {listed}. Pass source_hash='*' to load them all, or one of those hashes",
                    MixedVersionsWarning, stacklevel=3,
                )
            return name, [current]
        if len(recorded) > 1:
            listed = ", ".join(f"{s.source_hash} ({s.count} traces)" for s in recorded)
            warnings.warn(
                f"{name}: traces of {len(recorded)} source versions loaded together: {listed}. "
                "Pass source_hash=<hash> to pick one, or source_hash='*' to silence this",
                MixedVersionsWarning, stacklevel=3,
            )
        return name, None

    def _name_of(self, function: Any) -> str | None:
        if function is None:
            return None
        if isinstance(function, str):
            return function
        return function_name(function)

    def _version_of(self, function: Any, source_hash: str | None) -> str | None:
        """The version `count` filters on: a function object's current source unless told."""
        if source_hash == ANY_VERSION:
            return None
        if source_hash is None and function is not None and not isinstance(function, str):
            return current_source_hash(function)
        return source_hash

    def __enter__(self) -> "TraceStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


@dataclass
class DecodedRows:
    """Stored rows decoded into `Traces` columns; what did not decode is counted, not kept."""

    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[Any] = field(default_factory=list)
    errors: list[ErrorInfo | None] = field(default_factory=list)
    durations: list[float | None] = field(default_factory=list)
    timestamps: list[float | None] = field(default_factory=list)
    versions: list[Any] = field(default_factory=list)  # source hashes kept, in first-seen order
    skipped: int = 0
    first_failure: str = ""


def decode_records(records: Iterable[TraceRecord], *, trusted: Any, dedupe: bool, limit: int | None = None,
                   text_only: bool = False) -> DecodedRows:
    """Decode stored rows (`load`, `Traces.from_parquet`): never imports or runs what a row
    names, and a damaged or crafted row loses only itself. `dedupe` drops repeated
    (version, inputs) pairs; `text_only` refuses inputs that are not `str` (files from outside)."""
    out = DecodedRows()
    seen: set[tuple[Any, Any]] = set()
    for row in records:
        if dedupe:
            key = (row.source_hash, row.inputs)
            if key in seen:
                continue
            seen.add(key)
        try:
            if text_only and type(row.inputs) is not str:
                raise TypeError("inputs_json must be text")
            decoded_inputs = decode_inputs(row.inputs, trusted_modules=trusted)
            decoded_output = None if row.output is None else _encoding.loads(row.output, trusted_modules=trusted)
            error = _decode_error(row.error_type, row.error_message)
        except Exception as exc:  # a damaged or crafted row: it loses only itself
            out.skipped += 1
            if not out.first_failure:
                out.first_failure = _short(f"{type(exc).__name__}: {exc}")
            continue
        out.inputs.append(decoded_inputs)
        out.outputs.append(decoded_output)
        out.errors.append(error)
        out.durations.append(row.duration_s)
        out.timestamps.append(row.timestamp)
        if not out.versions or out.versions[-1] != row.source_hash:
            if row.source_hash not in out.versions:
                out.versions.append(row.source_hash)
        if limit is not None and len(out.inputs) >= limit:
            break
    return out


def _decode_error(error_type: Any, error_message: Any) -> ErrorInfo | None:
    if error_type is None:
        return None
    if type(error_type) is not str or not (error_message is None or type(error_message) is str):
        raise TypeError("error_type and error_message must be text")
    return ErrorInfo(error_type, error_message or "")


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: What `TraceStore.open` passes on to a SQLite store.
SQLITE_OPTIONS = ("readonly", "timeout_s", "durable")
#: What `TraceStore.open` passes on to a PostgreSQL store.
POSTGRES_OPTIONS = ("connect_timeout_s",)


def parse_uri(uri: "str | os.PathLike[str] | None", name: str = "store") -> tuple[str, str, dict[str, str]]:
    """`(kind, target, query)` for a store URI or path; kind is "sqlite", "memory" or "postgresql"
    (whose target is the whole URI, for libpq). Errors name the argument `name` the caller took
    the URI as."""
    if uri is None:
        uri = os.environ.get(STORE_ENV) or DEFAULT_STORE
    if isinstance(uri, os.PathLike):
        uri = os.fspath(uri)
    if not isinstance(uri, str) or not uri:
        raise bad_argument(name, uri, "must be a TraceStore, a path, 'sqlite:///path.db', 'postgresql://...' "
                           "or 'memory://'")
    if uri.startswith("memory://"):
        return "memory", uri[len("memory://"):], {}
    if uri.startswith(("postgresql://", "postgres://")):
        return "postgresql", uri, {}
    if uri.startswith("sqlite://"):
        # SQLAlchemy's convention: sqlite:///relative.db and sqlite:////absolute/path.db
        parsed = urlparse(uri)
        if parsed.netloc not in ("", "localhost"):
            raise bad_argument(name, uri, "has a host part", "Use 'sqlite:///relative.db' or 'sqlite:////abs/path.db'")
        path = unquote(parsed.path)[1:]
        if not path:
            raise bad_argument(name, uri, "names no file", "Use 'sqlite:///relative.db' or 'sqlite:////abs/path.db'")
        query = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
        return "sqlite", path, query
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", uri):
        raise bad_argument(name, uri, "has an unknown scheme",
                           "Use a path, 'sqlite:///path.db', 'postgresql://user@host/db' or 'memory://'")
    return "sqlite", uri, {}


def group_by_function(records: Iterable[TraceRecord]) -> dict[tuple[str, str], list[TraceRecord]]:
    grouped: dict[tuple[str, str], list[TraceRecord]] = {}
    for record in records:
        grouped.setdefault((record.function, record.source_hash), []).append(record)
    return grouped


__all__ = ["TraceStore", "TraceRecord", "TraceColumns", "FunctionSummary", "MixedVersionsWarning", "SkippedTracesWarning",
           "redact_uri", "parse_uri",
           "encode_inputs", "decode_inputs", "ANY_VERSION", "STORE_ENV", "DEFAULT_STORE"]
