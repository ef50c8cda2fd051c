"""Reading a Parquet export (`probes._parquet`) back into `Traces`, whole or one rank's files.

Training reads the files `export_parquet` wrote, and `fit_distributed` has every rank read only
its own share of them. Rows are decoded from their JSON columns exactly as `TraceStore.load`
decodes a store's rows (no import beyond `trusted_modules`, nothing a row names is called; a row
that does not decode is skipped and counted); the typed columns are for people, never decoded.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any, Iterable, Sequence
from urllib.parse import unquote

from . import _encoding
from ._errors import StoreError
from ._identity import source_hash as current_source_hash
from ._parquet import MARKER, NULL_PARTITION, _function_name, _pyarrow, _seconds
from ._traces import Traces
from ._validation import bad_argument, check_flag


@dataclass(frozen=True)
class _Part:
    path: str            # absolute
    relative: str        # with "/" separators, the sort key
    partitions: dict[str, str | None]
    rows: int


def _check_dataset(folder: Any) -> str:
    if isinstance(folder, os.PathLike):
        folder = os.fspath(folder)
    if not isinstance(folder, str) or not folder:
        raise bad_argument("folder", folder, "must be the folder of a Parquet export",
                           "Write one with store.export_parquet(folder)")
    root = os.path.abspath(folder)
    if not os.path.isdir(root):
        rule = "is a file, not the folder of a Parquet export" if os.path.exists(root) else "does not exist"
        raise bad_argument("folder", folder, rule, "Write one with store.export_parquet(folder)")
    return root


def _parts(root: str, name: str) -> list[_Part]:
    """The part files under `root` that may hold `name`'s rows, sorted by relative path."""
    import pyarrow.parquet as pq

    found: list[_Part] = []
    any_file = False
    for directory, subdirectories, filenames in os.walk(root):
        subdirectories[:] = sorted(d for d in subdirectories if not d.startswith((".", "_")))
        relative_dir = os.path.relpath(directory, root)
        segments = [] if relative_dir == "." else relative_dir.split(os.sep)
        partitions: dict[str, str | None] = {}
        for segment in segments:
            key, sep, value = segment.partition("=")
            if sep:
                partitions[key] = None if value == NULL_PARTITION else unquote(value)
        for filename in sorted(filenames):
            if not filename.endswith(".parquet") or filename.startswith((".", "_")):
                continue
            any_file = True
            if "function" in partitions and partitions["function"] != name:
                continue
            path = os.path.join(directory, filename)
            try:
                rows = pq.read_metadata(path).num_rows
            except Exception as exc:
                raise StoreError(f"{path} is not a readable Parquet file ({type(exc).__name__}: {exc}); "
                                 "remove it or export again") from exc
            found.append(_Part(path, "/".join(segments + [filename]), dict(partitions), rows))
    if not any_file and not os.path.isfile(os.path.join(root, MARKER)):
        raise bad_argument("folder", root, "holds no .parquet files and no export marker",
                           "Write one with store.export_parquet(folder)")
    return sorted(found, key=lambda part: part.relative)


def split_parts(parts: Sequence[Any], rows: Sequence[int], world_size: int) -> list[list[int]]:
    """Indices of `parts` per rank: the largest first, each to the rank holding the fewest rows
    (ties: the lowest rank). Deterministic, so every rank computes the same split."""
    load = [0] * world_size
    shares: list[list[int]] = [[] for _ in range(world_size)]
    for index in sorted(range(len(parts)), key=lambda i: (-rows[i], i)):
        rank = min(range(world_size), key=lambda r: (load[r], r))
        shares[rank].append(index)
        load[rank] += rows[index]
    return [sorted(share) for share in shares]


def rank_files(folder: Any, function: Any, rank: int | None = None, world_size: int | None = None) -> list[str]:
    """The part files (relative paths) of `function` that `rank` of `world_size` reads."""
    _pyarrow()
    root = _check_dataset(folder)
    rank, world = _check_rank(rank, world_size)
    parts = _parts(root, _function_name(function))
    share = split_parts(parts, [p.rows for p in parts], world)[rank]
    return [parts[i].relative for i in share]


def _check_rank(rank: Any, world_size: Any) -> tuple[int, int]:
    if rank is None and world_size is None:
        return 0, 1
    fix = "Pass both, e.g. rank=0, world_size=2 (or neither, to read every file)"
    if rank is None or world_size is None:
        missing = "rank" if rank is None else "world_size"
        raise bad_argument(missing, None, "must be given with " + ("world_size" if rank is None else "rank"), fix)
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise bad_argument("world_size", world_size, "must be an integer >= 1", fix)
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world_size:
        raise bad_argument("rank", rank, f"must be an integer in [0, {world_size}) for world_size={world_size}", fix)
    return rank, world_size


_READ = ("function", "source_hash", "inputs_json", "output_json", "error_type", "error_message", "duration_s",
         "timestamp")


def _read_part(pa: Any, part: _Part, name: str) -> dict[str, list[Any]]:
    """The columns `read_traces` needs, of the rows of `name`, from one part file."""
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(part.path)
    present = set(handle.schema_arrow.names)
    if "inputs_json" not in present:
        raise StoreError(f"{part.path} is not a neuroswap trace export (it has no inputs_json column); "
                         "write the dataset with store.export_parquet(folder)")
    table = handle.read(columns=[c for c in _READ if c in present])
    n = table.num_rows
    out: dict[str, list[Any]] = {}
    for column in ("inputs_json", "output_json", "error_type", "error_message", "duration_s", "function",
                   "source_hash"):
        if column in present:
            out[column] = table.column(column).to_pylist()
        elif column in part.partitions:
            out[column] = [part.partitions[column]] * n
        else:
            out[column] = [None] * n
    if "function" not in present and "function" not in part.partitions:
        raise StoreError(f"{part.path} says neither by a function column nor by a function=... folder which "
                         "function its rows belong to; write the dataset with store.export_parquet(folder)")
    stamps: list[Any] = [None] * n
    if "timestamp" in present:
        column = table.column("timestamp")
        if pa.types.is_timestamp(column.type):
            micros = column.cast(pa.timestamp("us", tz=column.type.tz)).cast(pa.int64()).to_pylist()
            stamps = [None if m is None else m / 1e6 for m in micros]
        elif pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
            stamps = [None if t is None else float(t) for t in column.to_pylist()]
    out["timestamp"] = stamps
    keep = [i for i, fn in enumerate(out["function"]) if fn == name]
    return {column: [values[i] for i in keep] for column, values in out.items()} if len(keep) != n else out


def read_traces(folder: Any, function: Any, *, source_hash: str | None = None, rank: int | None = None,
                world_size: int | None = None, dedupe: bool = True,
                trusted_modules: Iterable[str] | None = None) -> Traces:
    """`Traces.from_parquet`: the rows of `function` in this rank's part files (all of them
    without `rank`), decoded from their JSON columns as `TraceStore.load` decodes a store's rows.

    Version choice and de-duplication follow `TraceStore.load`, over the rows this call reads
    (with ranks: each rank's own files). Rows keep the order of the sorted file paths, then the
    order within each file (oldest first per partition).
    """
    from ._store import MixedVersionsWarning, SkippedTracesWarning, TraceRecord, decode_records

    pa = _pyarrow()
    root = _check_dataset(folder)
    name = _function_name(function)
    current = None if isinstance(function, str) else current_source_hash(function)
    rank, world = _check_rank(rank, world_size)
    check_flag("dedupe", dedupe, fix="Pass dedupe=False to keep repeated calls")
    if source_hash is not None and not isinstance(source_hash, str):
        raise bad_argument("source_hash", source_hash, "must be None, '*' or a hash string")
    trusted = _encoding.trusted_set(trusted_modules)
    parts = _parts(root, name)
    share = split_parts(parts, [p.rows for p in parts], world)[rank]
    columns: dict[str, list[Any]] = {c: [] for c in _READ}
    for index in share:
        for column, values in _read_part(pa, parts[index], name).items():
            columns[column].extend(values)

    versions = list(dict.fromkeys(h for h in columns["source_hash"]))
    if source_hash == "*":
        wanted: set[Any] | None = None
    elif source_hash is not None:
        wanted = {source_hash}
    elif current is not None:
        wanted = {current}
        if versions and current not in versions:
            warnings.warn(f"{name}: no traces of its current source ({current}) in {root}; other versions were "
                          f"exported: {', '.join(map(str, versions))}. Pass source_hash='*' to read them all, "
                          "or one of those hashes", MixedVersionsWarning, stacklevel=3)
    else:
        wanted = None
        if len(versions) > 1:
            warnings.warn(f"{name}: traces of {len(versions)} source versions read together from {root}: "
                          f"{', '.join(map(str, versions))}. Pass source_hash=<hash> to pick one, or "
                          "source_hash='*' to silence this", MixedVersionsWarning, stacklevel=3)

    def records() -> Iterable[TraceRecord]:
        for i, text in enumerate(columns["inputs_json"]):
            version = columns["source_hash"][i]
            if wanted is None or version in wanted:
                yield TraceRecord(name, version, text, columns["output_json"][i], columns["error_type"][i],
                                  columns["error_message"][i], _seconds(columns["duration_s"][i]),
                                  columns["timestamp"][i])

    rows = decode_records(records(), trusted=trusted, dedupe=dedupe, text_only=True)
    kept_versions = rows.versions
    if rows.skipped:
        warnings.warn(f"{root}: {rows.skipped} exported trace(s) of {name} could not be decoded and were skipped "
                      f"(first: {rows.first_failure}); the other {len(rows.inputs)} were read. traces.skipped "
                      "holds the count", SkippedTracesWarning, stacklevel=3)
    if wanted is not None and len(wanted) == 1:
        chosen = next(iter(wanted))
    else:
        chosen = kept_versions[0] if len(kept_versions) == 1 else ""
    return Traces(rows.inputs, rows.outputs, rows.errors, function=name,
                  source_hash=chosen if isinstance(chosen, str) else "", durations=rows.durations,
                  timestamps=rows.timestamps, skipped=rows.skipped)


def is_parquet_export(path: Any) -> bool:
    """Whether `path` is a folder `export_parquet` wrote (it holds the export marker)."""
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    return isinstance(path, str) and os.path.isfile(os.path.join(path, MARKER))
