"""Recorded traces as a Hive-partitioned Parquet dataset, and back into `Traces`.

Analysts read traces with DuckDB, Spark or pandas, and a training job on many ranks wants files
each rank reads on its own; a trace store serves neither. The export is written once for every
backend on the abstract store's reading interface (`functions()` and the row iterator
`_rows`), so the SQLite, memory and PostgreSQL stores all have it.

Layout: `FOLDER/function=<name>/day=YYYY-MM-DD/part-00000-<run>.parquet` (keys in the order of
`partition_by`). Partition values are percent-encoded (`quote(value, safe="")`, as Hive and
Spark escape): `myapp.fees:Fee.<locals>.f` becomes `myapp.fees%3AFee.%3Clocals%3E.f`, which
pyarrow, DuckDB and Spark decode back. `day` is the UTC day of the call; a call without a
timestamp goes to `day=__HIVE_DEFAULT_PARTITION__` (read as null). A key not partitioned on
stays a column (`function`, `source_hash`); `day` is then only implied by `timestamp`.

Columns (one schema in every file of an export, so readers need no schema merging):
- `inputs`: a struct of the arguments (every argument name of the exported functions) and
  `output`, typed as `Traces.to_parquet` types them (`parquet_value`: numbers, text, bools,
  lists of floats; other values as their repr; a name whose values mix kinds is text);
- `error_type`, `error_message`, `timestamp` (UTC, microseconds), `duration_s`, `source_hash`;
- `inputs_json`, `output_json`: the store's own type-tagged JSON text, lossless, which
  `Traces.from_parquet` decodes under the store's rules (no import beyond `trusted_modules`,
  nothing a row names is ever called; a row that does not decode is skipped and counted).

Exporting twice never mixes two exports: a non-empty folder is refused unless
`overwrite=True`, which replaces only a folder holding an earlier export (its
`_neuroswap_export.json` marker). The dataset is written beside the folder and moved into
place at the end, so a failed export leaves the old one (or nothing) behind, never half.
Reading back (`Traces.from_parquet`, one rank's files) is in `_parquet_read`.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import shutil
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from . import _encoding
from ._identity import function_name
from ._traces import parquet_value
from ._validation import bad_argument, check_flag, require

#: the keys `partition_by` may name.
PARTITION_KEYS = ("function", "day", "source_hash")
#: the marker file an export leaves at its root (a leading "_" keeps readers from taking it as data).
MARKER = "_neuroswap_export.json"
FORMAT = "neuroswap-traces-parquet"
FORMAT_VERSION = 1
#: Hive's (and pyarrow's, DuckDB's, Spark's) name for a null partition value.
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
#: longest encoded `key=value` directory name written (file systems allow 255 bytes).
MAX_SEGMENT = 240


@dataclass(frozen=True)
class ParquetExport:
    """What `export_parquet` wrote: the folder, its part files (relative, sorted) and rows per function."""

    folder: str
    files: tuple[str, ...]
    rows: dict[str, int] = field(default_factory=dict)
    #: rows whose values could not be decoded for the typed columns (their JSON columns are exact)
    undecodable: int = 0

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _pyarrow() -> Any:
    """pyarrow, or MissingDependencyError saying `pip install "neuroswap[parquet]"`."""
    pa = require("pyarrow", "parquet")
    require("pyarrow.parquet", "parquet")
    return pa


# -- naming ---------------------------------------------------------------------------------------
def escape_partition(value: str) -> str:
    """A partition value as a safe directory-name part (percent-encoding, reversed by `unquote`)."""
    return quote(value, safe="")


def _segment(key: str, value: str | None) -> str:
    text = f"{key}={NULL_PARTITION if value is None else escape_partition(value)}"
    if len(text.encode()) > MAX_SEGMENT:
        raise bad_argument("partition_by", key, f"the {key} {value!r} is too long for a directory name "
                           f"once escaped ({len(text)} characters > {MAX_SEGMENT})",
                           f"Leave {key!r} out of partition_by; it is then kept as a column")
    return text


def _function_name(function: Any, argument: str = "function") -> str:
    if isinstance(function, str):
        if ":" not in function:
            raise bad_argument(argument, function, "must be a function or 'module:qualname'",
                               "For example function='myapp.fees:shipping_fee'")
        return function
    if callable(function) or isinstance(function, (classmethod, staticmethod)):
        return function_name(function)
    raise bad_argument(argument, function, "must be a function or 'module:qualname'")


def _day(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return _dt.datetime.fromtimestamp(timestamp, _dt.timezone.utc).date().isoformat()


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _text(value: Any) -> str | None:
    return value if value is None or type(value) is str else str(value)


# -- typed columns --------------------------------------------------------------------------------
_INT64 = (-(2**63), 2**63)


def _kind(value: Any) -> str | None:
    """The Parquet kind of a `parquet_value` cell (None for a missing value)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int" if _INT64[0] <= value < _INT64[1] else "bigint"
    if isinstance(value, float):
        return "float"
    if isinstance(value, list):  # a flat numeric vector; a nested or mixed list (a 2-D array) is text
        return "list" if all(isinstance(v, (int, float)) for v in value) else "text"
    return "text"


def _column_kind(kinds: set[str]) -> str:
    """One kind per column, by `Traces.to_parquet`'s rule: ints with floats are floats, any
    other mix (and big ints, and a column with no value at all) is text."""
    if len(kinds) == 1 and next(iter(kinds)) in ("bool", "int", "float", "list"):
        return next(iter(kinds))
    if kinds == {"int", "float"}:
        return "float"
    return "text"


def _arrow_type(pa: Any, kind: str) -> Any:
    return {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64(),
            "list": pa.list_(pa.float64())}.get(kind, pa.string())


def _cell(value: Any, kind: str) -> Any:
    """`value` in its column's kind; None where it does not fit (a row recorded after the
    kinds were settled: its JSON column still holds it exactly)."""
    if value is None:
        return None
    found = _kind(value)
    if kind == "text":
        return str(value)
    if kind == "float" and found in ("int", "float"):
        return float(value)
    if kind == "list" and found == "list":
        return [float(v) for v in value]
    return value if found == kind else None


def _decoded_cells(row: Any, trusted: frozenset[str]) -> tuple[dict[str, Any], Any, bool]:
    """The typed cells of one stored row: `({argument: cell}, output cell, decoded cleanly)`."""
    clean = True
    cells: dict[str, Any] = {}
    try:
        fields = json.loads(row.inputs)
    except (TypeError, ValueError):
        return cells, None, False
    if type(fields) is not dict:
        return cells, None, False
    for name, value in fields.items():
        try:
            cells[str(name)] = parquet_value(_encoding.decode(value, trusted_modules=trusted))
        except Exception:  # a damaged value: its typed cell stays empty
            cells[str(name)] = None
            clean = False
    output = None
    if row.output is not None and row.error_type is None:
        try:
            output = parquet_value(_encoding.loads(row.output, trusted_modules=trusted))
        except Exception:
            clean = False
    return cells, output, clean


# -- export ---------------------------------------------------------------------------------------
def _check_partition_by(partition_by: Any) -> tuple[str, ...]:
    fix = "For example partition_by=('function', 'day'), or () for no partitioning"
    if isinstance(partition_by, str):
        raise bad_argument("partition_by", partition_by, "must be a tuple of keys, not one string",
                           f"Pass partition_by=({partition_by!r},)")
    try:
        keys = tuple(partition_by)
    except TypeError:
        raise bad_argument("partition_by", partition_by, "must be a tuple of keys", fix) from None
    for key in keys:
        if key not in PARTITION_KEYS:
            raise bad_argument("partition_by", partition_by, f"{key!r} is not a partition key; "
                               f"the keys are {', '.join(map(repr, PARTITION_KEYS))}", fix)
    if len(set(keys)) != len(keys):
        raise bad_argument("partition_by", partition_by, "names a key twice", fix)
    return keys


def _check_folder(folder: Any, overwrite: bool) -> str:
    if isinstance(folder, os.PathLike):
        folder = os.fspath(folder)
    if not isinstance(folder, str) or not folder:
        raise bad_argument("folder", folder, "must be a folder path", "For example folder='traces_parquet'")
    target = os.path.abspath(folder)
    if os.path.exists(target) and not os.path.isdir(target):
        raise bad_argument("folder", folder, "is a file, not a folder",
                           "Pass the path of a new or empty folder (it is created if missing)")
    if os.path.isdir(target) and os.listdir(target):
        if not overwrite:
            raise bad_argument("folder", folder, "is not empty: exporting into it would mix two exports",
                               "Pass overwrite=True to replace an earlier export there, or pick a new folder")
        if not os.path.isfile(os.path.join(target, MARKER)):
            raise bad_argument("overwrite", overwrite, f"{folder} holds files that are not a neuroswap Parquet "
                               f"export (no {MARKER}); overwrite=True only replaces an earlier export",
                               "Pick an empty or new folder")
    return target


def _selected_functions(store: Any, function: Any) -> list[str]:
    recorded = list(dict.fromkeys(summary.name for summary in store.functions()))
    if function is None:
        return recorded
    wanted = list(function) if isinstance(function, (list, tuple, set, frozenset)) else [function]
    names = list(dict.fromkeys(_function_name(item) for item in wanted))
    for name in names:
        if name not in recorded:
            shown = ", ".join(recorded[:10]) + (" ..." if len(recorded) > 10 else "") if recorded else "none"
            raise bad_argument("function", function, f"{name} has no traces in this store (recorded: {shown})",
                               "Pass a recorded function, or function=None to export every one")
    return names


def export_parquet(store: Any, folder: Any, *, partition_by: Any = ("function", "day"), function: Any = None,
                   overwrite: bool = False, rows_per_file: int = 100_000) -> ParquetExport:
    """Write the traces of `store` (every function, or `function`: one or a list, every source
    version) as a Hive-partitioned Parquet dataset in `folder`; see the module docstring."""
    keys = _check_partition_by(partition_by)
    check_flag("overwrite", overwrite)
    if isinstance(rows_per_file, bool) or not isinstance(rows_per_file, int) or rows_per_file < 1:
        raise bad_argument("rows_per_file", rows_per_file, "must be an integer >= 1")
    target = _check_folder(folder, overwrite)
    pa = _pyarrow()
    names = _selected_functions(store, function)
    trusted = frozenset(getattr(store, "trusted_modules", frozenset()))

    # pass 1: the kind of every typed column over every exported row (one schema for every file)
    argument_kinds: dict[str, set[str]] = {}
    output_kinds: set[str] = set()
    counts: dict[str, int] = {}
    for name in names:
        n = 0
        for row in store._rows(name, None):
            n += 1
            cells, output, _ = _decoded_cells(row, trusted)
            for argument, cell in cells.items():
                kinds = argument_kinds.setdefault(argument, set())
                if cell is not None:
                    kinds.add(_kind(cell))  # type: ignore[arg-type]
            if output is not None:
                output_kinds.add(_kind(output))  # type: ignore[arg-type]
        counts[name] = n
    columns = {argument: _column_kind(kinds) for argument, kinds in argument_kinds.items()}
    output_kind = _column_kind(output_kinds)
    schema = _schema(pa, columns, output_kind, keys)

    # pass 2: rows into part files, in a folder beside the target, moved into place at the end
    parent, base = os.path.split(target)
    os.makedirs(parent, exist_ok=True)
    run = uuid.uuid4().hex[:12]
    staging = os.path.join(parent, f".{base}.tmp-{run}")
    os.makedirs(staging)
    files: list[str] = []
    undecodable = 0
    try:
        writer = _PartWriter(pa, staging, schema, columns, output_kind, keys, run, rows_per_file, files)
        for name in names:
            for index, row in enumerate(store._rows(name, None)):
                if index >= counts[name]:  # recorded while exporting: left for the next export
                    break
                cells, output, clean = _decoded_cells(row, trusted)
                undecodable += not clean
                writer.add(name, row, cells, output)
        writer.close()
        marker = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "partition_by": list(keys),
            "rows": counts, "files": sorted(files), "run": run,
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(),
            "store": _redacted(getattr(store, "uri", "")), "neuroswap_version": _version(),
            "columns": {"inputs": columns, "output": output_kind},
        }
        with open(os.path.join(staging, MARKER), "w", encoding="utf-8") as handle:
            json.dump(marker, handle, indent=1)
        _publish(staging, target, run)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ParquetExport(target, tuple(sorted(files)), counts, undecodable)


def _publish(staging: str, target: str, run: str) -> None:
    """Move the finished export into place; an earlier one is removed only once the new one is there."""
    if not os.path.exists(target):
        os.rename(staging, target)
        return
    parent, base = os.path.split(target)
    old = os.path.join(parent, f".{base}.old-{run}")
    os.rename(target, old)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _schema(pa: Any, columns: dict[str, str], output_kind: str, keys: tuple[str, ...]) -> Any:
    fields = []
    if columns:  # Parquet cannot hold a struct without fields (functions without arguments)
        fields.append(pa.field("inputs", pa.struct([pa.field(n, _arrow_type(pa, k)) for n, k in columns.items()])))
    fields += [pa.field("output", _arrow_type(pa, output_kind)), pa.field("error_type", pa.string()),
               pa.field("error_message", pa.string()), pa.field("timestamp", pa.timestamp("us", tz="UTC")),
               pa.field("duration_s", pa.float64())]
    fields += [pa.field(key, pa.string()) for key in ("function", "source_hash") if key not in keys]
    fields += [pa.field("inputs_json", pa.string()), pa.field("output_json", pa.string())]
    metadata = {"neuroswap.format": FORMAT, "neuroswap.format_version": str(FORMAT_VERSION)}
    return pa.schema(fields, metadata=metadata)


class _PartWriter:
    """Buffers rows per partition and writes a part file each `rows_per_file` rows."""

    def __init__(self, pa: Any, root: str, schema: Any, columns: dict[str, str], output_kind: str,
                 keys: tuple[str, ...], run: str, rows_per_file: int, files: list[str]) -> None:
        self.pa, self.root, self.schema, self.columns = pa, root, schema, columns
        self.output_kind, self.keys, self.run, self.rows_per_file = output_kind, keys, run, rows_per_file
        self.files = files
        self.buffers: dict[tuple[str | None, ...], list[tuple[str, Any, dict[str, Any], Any]]] = {}
        self.parts: dict[tuple[str | None, ...], int] = {}

    def add(self, name: str, row: Any, cells: dict[str, Any], output: Any) -> None:
        values = {"function": name, "day": _day(_seconds(row.timestamp)), "source_hash": _text(row.source_hash)}
        key = tuple(values[k] for k in self.keys)
        buffer = self.buffers.setdefault(key, [])
        buffer.append((name, row, cells, output))
        if len(buffer) >= self.rows_per_file:
            self._write(key)

    def close(self) -> None:
        for key in list(self.buffers):
            self._write(key)

    def _write(self, key: tuple[str | None, ...]) -> None:
        import pyarrow.parquet as pq

        pa, rows = self.pa, self.buffers.pop(key)
        if not rows:
            return
        folder = os.path.join(*[_segment(k, v) for k, v in zip(self.keys, key)]) if self.keys else ""
        part = self.parts.get(key, 0)
        self.parts[key] = part + 1
        relative = os.path.join(folder, f"part-{part:05d}-{self.run}.parquet")
        os.makedirs(os.path.join(self.root, folder), exist_ok=True)
        arrays = []
        for item in self.schema:
            arrays.append(self._array(item, rows))
        pq.write_table(pa.Table.from_arrays(arrays, schema=self.schema), os.path.join(self.root, relative))
        self.files.append(relative.replace(os.sep, "/"))

    def _array(self, item: Any, rows: list[tuple[str, Any, dict[str, Any], Any]]) -> Any:
        pa, name = self.pa, item.name
        if name == "inputs":
            children = [pa.array([_cell(cells.get(argument), kind) for _, _, cells, _ in rows],
                                 type=_arrow_type(pa, kind)) for argument, kind in self.columns.items()]
            return pa.StructArray.from_arrays(children, fields=list(item.type))
        if name == "output":
            return pa.array([_cell(output, self.output_kind) for _, _, _, output in rows], type=item.type)
        if name == "timestamp":
            stamps = [_seconds(row.timestamp) for _, row, _, _ in rows]
            return pa.array([None if t is None else round(t * 1e6) for t in stamps], type=item.type)
        if name == "duration_s":
            return pa.array([_seconds(row.duration_s) for _, row, _, _ in rows], type=item.type)
        if name == "function":
            return pa.array([fn for fn, _, _, _ in rows], type=item.type)
        source = {"error_type": "error_type", "error_message": "error_message", "source_hash": "source_hash",
                  "inputs_json": "inputs", "output_json": "output"}[name]
        return pa.array([_text(getattr(row, source)) for _, row, _, _ in rows], type=item.type)


def _redacted(uri: str) -> str:
    from ._store import redact_uri

    return redact_uri(uri) if isinstance(uri, str) else ""


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("neuroswap")
    except Exception:
        return "unknown"
