"""An in-memory trace store, for tests and short experiments.

It keeps the same encoded rows as the SQLite store, so values come back exactly as they would
from disk (a test against it says something about the real store).
"""

from __future__ import annotations

import itertools
import threading
from typing import Any, Iterator, Sequence

from ._retention import PruneRule, StoreStats
from ._store import FunctionSummary, TraceRecord, TraceStore

_NAMED: dict[str, "MemoryStore"] = {}
_NAMED_LOCK = threading.Lock()
_COUNTER = itertools.count(1)


class MemoryStore(TraceStore):
    """Traces in a list in this process; gone when the process ends."""

    def __init__(self) -> None:
        self._records: list[TraceRecord] = []
        self._lock = threading.Lock()
        self.uri = f"memory://#{next(_COUNTER)}"

    @classmethod
    def named(cls, name: str) -> "MemoryStore":
        """The store called `name` in this process (`memory://name`), created on first use."""
        with _NAMED_LOCK:
            store = _NAMED.get(name)
            if store is None:
                store = _NAMED[name] = cls()
                store.uri = f"memory://{name}"
            return store

    def add(self, records: Sequence[TraceRecord]) -> None:
        batch = list(records)
        with self._lock:
            self._records.extend(batch)

    def functions(self) -> list[FunctionSummary]:
        counts: dict[tuple[str, str], int] = {}
        with self._lock:
            for record in self._records:
                key = (record.function, record.source_hash)
                counts[key] = counts.get(key, 0) + 1
        order = {key: index for index, key in enumerate(counts)}
        keys = sorted(counts, key=lambda key: (key[0], order[key]))
        return [FunctionSummary(name, source_hash, counts[(name, source_hash)]) for name, source_hash in keys]

    def count(self, function: Any = None, *, source_hash: str | None = None) -> int:
        name = self._name_of(function)
        source_hash = self._version_of(function, source_hash)
        with self._lock:
            return sum(1 for r in self._records
                       if (name is None or r.function == name) and (source_hash is None or r.source_hash == source_hash))

    def _rows(self, name: str, source_hashes: Sequence[str] | None) -> Iterator[TraceRecord]:
        with self._lock:
            snapshot = list(self._records)
        for record in snapshot:
            if record.function == name and (source_hashes is None or record.source_hash in source_hashes):
                yield record

    def _prune(self, rule: PruneRule) -> int:
        with self._lock:
            chosen: dict[str, list[int]] = {}
            for index, r in enumerate(self._records):
                if (rule.function is None or r.function == rule.function) and (
                        rule.source_hash is None or r.source_hash == rule.source_hash):
                    chosen.setdefault(r.function, []).append(index)
            drop: set[int] = set()
            for indexes in chosen.values():
                if rule.keep_last is not None:
                    drop.update(indexes[:max(0, len(indexes) - rule.keep_last)])
                else:
                    drop.update(i for i in indexes if self._records[i].timestamp is not None
                                and self._records[i].timestamp < rule.cutoff)
            if drop:
                self._records = [r for i, r in enumerate(self._records) if i not in drop]
            return len(drop)

    def _stats(self) -> StoreStats:
        with self._lock:
            snapshot = list(self._records)
        by_function: dict[str, int] = {}
        for r in snapshot:
            by_function[r.function] = by_function.get(r.function, 0) + 1
        stamps = [r.timestamp for r in snapshot if r.timestamp is not None]
        size = sum(len(r.inputs) + len(r.output or "") + len(r.error_type or "") + len(r.error_message or "")
                   for r in snapshot)
        return StoreStats("memory", self.uri, len(snapshot), len(by_function), len(self.functions()),
                          min(stamps, default=None), max(stamps, default=None), size, dict(sorted(by_function.items())))

    def clear(self) -> None:
        """Forget every trace."""
        with self._lock:
            self._records.clear()
