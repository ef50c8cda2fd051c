"""Retention and size of a trace store: `store.prune(...)` and `store.stats()`.

A recorder left on in production grows its store without end, so every backend can drop old
traces by count or by age. The argument checks live here, once, so that memory, SQLite and
PostgreSQL refuse the same bad arguments with the same messages.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass
from typing import Any

from ._validation import bad_argument

#: `prune("*", ...)` applies the rule to every recorded function, one by one.
EVERY_FUNCTION = "*"


@dataclass(frozen=True)
class StoreStats:
    """What a store holds: counts, the recorded time span and the space it takes.

    `size_bytes` is the backend's own measure (SQLite: the file and its WAL; PostgreSQL: the
    tables with their indexes; memory: the encoded text), so it says where space goes, not the
    same thing across backends. `oldest` / `newest` are Unix timestamps of the first and last
    recorded call (None when no trace carries one).
    """

    backend: str
    uri: str
    traces: int
    functions: int
    versions: int
    oldest: float | None
    newest: float | None
    size_bytes: int
    by_function: dict[str, int]


@dataclass(frozen=True)
class PruneRule:
    """A checked `prune` request: which function and which traces go."""

    function: str | None  # None: every function
    source_hash: str | None  # None: every version
    keep_last: int | None
    cutoff: float | None  # traces whose timestamp is below this go

    def function_filter(self, mark: str) -> tuple[str, list[str]]:
        """The WHERE condition on the functions table picking this rule's function rows, with
        `mark` as the backend's parameter placeholder ("?" or "%s"), and its parameters."""
        clauses, params = [], []
        if self.function is not None:
            clauses.append(f"name = {mark}")
            params.append(self.function)
        if self.source_hash is not None:
            clauses.append(f"source_hash = {mark}")
            params.append(self.source_hash)
        return (" AND ".join(clauses) or "1 = 1"), params


def check_prune(function: Any, keep_last: Any, older_than: Any, source_hash: Any,
                name_of: Any, now: float | None = None) -> PruneRule:
    """Validate `prune`'s arguments; `name_of` turns a function object into its stored name."""
    if function is None:
        raise bad_argument("function", function, "must name the function whose traces to prune",
                           "Pass a function, 'module:qualname', or '*' for every function")
    if function == EVERY_FUNCTION:
        name = None
    elif isinstance(function, str):
        if ":" not in function:
            raise bad_argument("function", function, "must be a function, 'module:qualname' or '*'",
                               "For example store.prune('myapp.fees:shipping_fee', keep_last=10_000)")
        name = function
    elif callable(function) or isinstance(function, (classmethod, staticmethod)):
        name = name_of(function)
    else:
        raise bad_argument("function", function, "must be a function, 'module:qualname' or '*'")
    if (keep_last is None) == (older_than is None):
        raise bad_argument("keep_last" if keep_last is not None else "older_than",
                           keep_last if keep_last is not None else older_than,
                           "exactly one of keep_last= and older_than= must be given",
                           "Pass keep_last=N to keep the N newest traces, or older_than=timedelta(days=30) "
                           "to drop traces recorded before then; call prune twice for both rules")
    if keep_last is not None and (isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 0):
        raise bad_argument("keep_last", keep_last, "must be an integer >= 0",
                           "Pass the number of newest traces to keep, e.g. keep_last=10_000")
    cutoff = None if older_than is None else _cutoff(older_than, time.time() if now is None else now)
    if source_hash == "*" or source_hash is None:
        version = None
    elif isinstance(source_hash, str) and source_hash:
        version = source_hash
    else:
        raise bad_argument("source_hash", source_hash, "must be '*' (every version) or one version's hash",
                           "See store.functions() for the recorded hashes")
    return PruneRule(name, version, keep_last, cutoff)


def _cutoff(older_than: Any, now: float) -> float:
    fix = "Pass a datetime (a naive one is local time) or a timedelta such as timedelta(days=30)"
    if isinstance(older_than, _dt.timedelta):
        if older_than < _dt.timedelta(0):
            raise bad_argument("older_than", older_than, "must not be negative", fix)
        return now - older_than.total_seconds()
    if isinstance(older_than, _dt.datetime):
        return older_than.timestamp()
    if isinstance(older_than, _dt.date):
        raise bad_argument("older_than", older_than, "must be a datetime or a timedelta, not a date",
                           "Pass datetime(year, month, day) for midnight of that day")
    raise bad_argument("older_than", older_than, "must be a datetime or a timedelta", fix)


__all__ = ["StoreStats", "PruneRule", "check_prune", "EVERY_FUNCTION"]
