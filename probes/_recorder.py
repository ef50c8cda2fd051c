"""The recorder behind `@record`: one bounded queue and one background writer per process.

The caller's thread only appends raw calls to the queue (PyAnnotate's enqueue-then-aggregate
design); the writer drains it in batches, encodes each function's calls column by column
(`_columns`), leaves out repeated calls of adaptively sampled functions, and writes each
store's batches in one transaction. Recording never breaks the program it watches: a full
queue drops the call (and counts it), a failed write is retried with backoff (0.05, 0.2, 1 s)
before its traces are counted as failed (by exception type) and logged once on the
"neuroswap" logger.
"""

from __future__ import annotations

import atexit
import collections
import hashlib
import hmac
import logging
import operator
import os
import secrets
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from itertools import repeat, starmap
from typing import Any, Iterable, Mapping

from . import _encoding
from ._columns import drop_seen, encode_group, from_records
from ._sampling import FunctionState
from ._store import DEFAULT_STORE, STORE_ENV, TraceColumns, TraceRecord, TraceStore, encode_inputs, parse_uri
from ._traces import Redacted

logger = logging.getLogger("neuroswap")

#: secret key for the salted hashes of redacted arguments; a random per-process key if unset.
REDACT_KEY_ENV = "NEUROSWAP_REDACT_KEY"

_first = operator.itemgetter(0)

#: the clock a wrapper reads around each recorded call (timestamps are taken relative to it)
call_clock = time.perf_counter


@dataclass(frozen=True)
class RecorderStats:
    """Counts since the recorder started in this process.

    `recorded`: traces written to a store; `dropped`: calls not recorded because the queue was
    full; `failed`: traces lost to a recorder failure (store error after its retries, encoding
    bug, arguments that do not fit the signature), and `failed_by_reason` the same count by
    exception type name; `retried`: traces whose write failed at first and was tried again
    (each counted once, whether a retry then wrote it or not); `pending`: calls queued and not
    yet written; `sampled_out`: calls of sampled functions left out by `sample_rate`,
    `keep_first`, `max_traces` or `sample="adaptive"` (a function decorated with
    `sample_rate=0` counts its calls too); `deduplicated`: calls of adaptively sampled
    functions the writer left out because the same inputs and outcome were already stored.
    Once the queue is drained, recorded + sampled_out + deduplicated + dropped + failed is
    every call of the recorded functions (approximately, under concurrent calls).
    """

    recorded: int
    dropped: int
    failed: int
    pending: int
    retried: int = 0
    failed_by_reason: Mapping[str, int] = field(default_factory=dict)
    sampled_out: int = 0
    deduplicated: int = 0



class Recorder:
    """The bounded queue and background writer shared by every `@record` function in a process."""

    def __init__(self, *, max_queue: int = 200_000, batch_size: int = 10000, interval_s: float = 0.05,
                 exit_timeout_s: float = 10.0, retry_delays_s: Iterable[float] = (0.05, 0.2, 1.0)) -> None:
        self.queue: collections.deque[tuple[Any, ...]] = collections.deque()
        self.max_queue = int(max_queue)
        self.batch_size = int(batch_size)
        self.interval_s = float(interval_s)
        self.exit_timeout_s = float(exit_timeout_s)
        #: pauses before the 2nd, 3rd, ... try of a failed batch write (then its traces count as failed)
        self.retry_delays_s = tuple(float(d) for d in retry_delays_s)
        self.high_water = max(1, min(self.batch_size, self.max_queue))
        #: the hot path appends while len(queue) < wake_at; 0 until the writer runs
        self.wake_at = 0
        self.recorded = 0
        self.deduplicated = 0
        #: the sampled functions, whose countdowns count their sampled-out calls
        self._states: "weakref.WeakSet[FunctionState]" = weakref.WeakSet()
        self._sampled_base = 0
        self.dropped = 0
        self.failed = 0
        self.retried = 0
        self._failed_by: dict[str, int] = {}
        #: stores whose last batch failed every try: written once, without pauses, until one succeeds
        #: (a long outage of one store must not stall the writer for every other store)
        self._degraded: set[Any] = set()
        self._in_flight = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._cycle = threading.Condition()
        self._cycles_started = 0
        self._cycles_done = 0
        self._stores: dict[str, TraceStore] = {}
        self._logged: set[str] = set()
        self._exit_hooked = False
        self._redact_key = (os.environ.get(REDACT_KEY_ENV) or "").encode() or secrets.token_bytes(32)
        self._wall0 = time.time()
        self._perf0 = call_clock()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    # -- hot path helpers (rare branches) ---------------------------------------------------------
    def overflow(self, item: tuple[Any, ...]) -> None:
        """Called when the queue reached `wake_at`: start or wake the writer, drop if full."""
        try:
            if self._thread is None:
                self._start()
            n = len(self.queue)
            if n >= self.max_queue:
                self.dropped += 1
                self._log_once("dropped", logging.WARNING,
                               "neuroswap: trace queue full (%d calls); dropping traces until the writer catches up",
                               self.max_queue)
            else:
                self.queue.append(item)
            if not self._wake.is_set():
                self._wake.set()
        except Exception as exc:  # noqa: BLE001 - recording never breaks the caller
            self._count_failed(1, exc)
            self._log_once(f"overflow:{type(exc).__name__}", logging.WARNING,
                           "neuroswap: recorder failure (%s: %s); calls keep working", type(exc).__name__, exc)

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="neuroswap-writer", daemon=True)
            self._thread = thread
            thread.start()
            self.wake_at = self.high_water
            if not self._exit_hooked:
                self._exit_hooked = True
                atexit.register(self._at_exit)
                mp_util = sys.modules.get("multiprocessing.util")
                if mp_util is not None:  # forked multiprocessing workers end with os._exit
                    mp_util.Finalize(None, self._at_exit, exitpriority=100)

    def _after_fork(self) -> None:
        # the child has no writer thread; the queue holds the parent's calls, which the parent writes
        self.queue.clear()
        self._thread = None
        self.wake_at = 0
        self.recorded = self.dropped = self.failed = self.retried = self.deduplicated = 0
        self._failed_by = {}
        self._degraded = set()
        self._in_flight = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._cycle = threading.Condition()
        self._cycles_started = self._cycles_done = 0
        self._exit_hooked = False  # hook this process's exit too (multiprocessing workers end with os._exit)
        self._sampled_base = self._sampled_out()  # the child counts its own calls only

    def _at_exit(self) -> None:
        try:
            self.flush(timeout=self.exit_timeout_s)
        except Exception:  # noqa: BLE001
            pass

    # -- writer thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        idle_wait = self.interval_s
        while True:
            # poll often while calls arrive, back off to 1 s when idle (flush and a filling
            # queue wake the writer at once anyway)
            self._wake.wait(idle_wait)
            self._wake.clear()
            idle_wait = self.interval_s if self.queue else min(1.0, max(idle_wait, self.interval_s) * 2)
            with self._cycle:
                self._cycles_started += 1
                cycle = self._cycles_started
            # while the writer is awake the hot path need not wake it: append up to the bound
            self.wake_at = self.max_queue
            try:
                self._drain()
            except BaseException as exc:  # noqa: BLE001 - the writer must survive anything
                self._log_once(f"writer:{type(exc).__name__}", logging.ERROR,
                               "neuroswap: trace writer error (%s: %s)", type(exc).__name__, exc)
            finally:
                self.wake_at = self.high_water
            with self._cycle:
                self._cycles_done = cycle
                self._cycle.notify_all()

    def _drain(self) -> None:
        queue = self.queue
        while queue:
            # only this thread pops, so at least min(len, batch_size) items are there
            batch = list(starmap(queue.popleft, repeat((), min(len(queue), self.batch_size))))
            self._in_flight = len(batch)
            try:
                self._write(batch)
            finally:
                self._in_flight = 0

    def _write(self, batch: list[tuple[Any, ...]]) -> None:
        """Encode one batch per function (columns), then write each store's share at once."""
        states = set(map(_first, batch))
        if len(states) == 1:
            groups: dict[FunctionState, list[tuple[Any, ...]]] = {batch[0][0]: batch}
        else:
            groups = {}
            for item in batch:
                entry = groups.get(item[0])
                if entry is None:
                    entry = groups[item[0]] = []
                entry.append(item)
        by_store: dict[Any, tuple[Any, list[TraceColumns]]] = {}
        default_spec: str | None = None
        for st, items in groups.items():
            columns = self._encode_group(st, items)
            if columns is None:
                continue
            if st.dedupe is not None:
                columns, repeated = drop_seen(columns, st.dedupe)
                if repeated:
                    self.deduplicated += repeated
                    st.forget(repeated)
                if not columns.inputs:
                    continue
            spec = st.store
            if spec is None:
                if default_spec is None:
                    default_spec = os.environ.get(STORE_ENV) or DEFAULT_STORE
                spec = default_spec
            key = spec if isinstance(spec, str) else id(spec)
            entry_s = by_store.get(key)
            if entry_s is None:
                entry_s = by_store[key] = (spec, [])
            entry_s[1].append(columns)
        for key, (spec, batches) in by_store.items():
            self._add_with_retries(key, spec, batches)

    def _encode_group(self, st: FunctionState, items: list[tuple[Any, ...]]) -> TraceColumns | None:
        """The calls of one function as columns; call by call where the bulk path cannot be
        used (the generic wrapper's unbound arguments) or fails (then each failing call is
        counted and logged, and loses only itself)."""
        if st.arg_names is not None:
            try:
                return encode_group(st, items, self._wall0 - self._perf0, self._redacted)
            except Exception:  # noqa: BLE001 - a bug in the bulk path: the per-call path decides
                pass
        records = []
        for item in items:
            try:
                records.append(self._encode(item))
            except Exception as exc:  # noqa: BLE001
                self._count_failed(1, exc)
                self._log_once(f"encode:{st.name}:{type(exc).__name__}", logging.WARNING,
                               "neuroswap: a call of %s could not be recorded (%s: %s)", st.name,
                               type(exc).__name__, exc)
        return from_records(records) if records else None

    def _add_with_retries(self, key: Any, spec: Any, batches: list[TraceColumns]) -> None:
        """Write one batch to one store; a failure is retried after each of `retry_delays_s`
        (`add` is all-or-none, so a retry cannot duplicate rows), then counted by reason."""
        n = sum(len(batch.inputs) for batch in batches)
        delays = () if key in self._degraded else self.retry_delays_s
        attempt = 0
        while True:
            try:
                store = self._store_for(spec)
                store._add_columns(batches)
            except Exception as exc:  # noqa: BLE001 - full disk, read-only, locked, corrupt...
                if attempt < len(delays):
                    if attempt == 0:
                        self.retried += n
                    time.sleep(delays[attempt])
                    attempt += 1
                    continue
                self._degraded.add(key)
                self._count_failed(n, exc)
                where = getattr(spec, "uri", None) or str(spec)
                tries = f"{attempt + 1} tries" if attempt else "1 try"
                self._log_once(f"store:{where}:{type(exc).__name__}", logging.WARNING,
                               "neuroswap: could not write %d traces to %s after %s (%s: %s); calls keep working",
                               n, where, tries, type(exc).__name__, exc)
                return
            self._degraded.discard(key)
            self.recorded += n
            return

    def _count_failed(self, n: int, exc: BaseException) -> None:
        self.failed += n
        reason = type(exc).__name__
        self._failed_by[reason] = self._failed_by.get(reason, 0) + n

    def _store_for(self, spec: Any) -> TraceStore:
        if isinstance(spec, TraceStore):
            return spec
        text = os.fspath(spec)
        kind, target, query = parse_uri(text)
        key = f"{kind}:{os.path.abspath(target) if kind == 'sqlite' else target}:{sorted(query.items())}"
        store = self._stores.get(key)
        if store is None:
            store = self._stores[key] = TraceStore.open(text)
        return store

    def _encode(self, item: tuple[Any, ...]) -> TraceRecord:
        st, t0, t1, output, error = item[:5]
        duration = t1 - t0
        inputs = st.inputs(item)
        for name in st.redact:
            if name in inputs:
                inputs[name] = self._redacted(inputs[name])
        timestamp = self._wall0 + (t0 - self._perf0)
        if error is None:
            return TraceRecord(st.name, st.source_hash, encode_inputs(inputs), _encoding.dumps(output),
                               None, None, duration, timestamp)
        return TraceRecord(st.name, st.source_hash, encode_inputs(inputs), None, error.type, error.message,
                           duration, timestamp)

    def _redacted(self, value: Any) -> Redacted:
        text = _encoding.dumps(value)
        digest = hmac.new(self._redact_key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
        return Redacted(digest)

    # -- public controls ------------------------------------------------------------------------
    def flush(self, timeout: float | None = 30.0) -> bool:
        """Wait until every call queued before this one is written; False on timeout."""
        thread = self._thread
        if thread is None:
            return not self.queue
        if threading.current_thread() is thread:
            return False
        with self._cycle:
            wanted = self._cycles_started + 1
            self._wake.set()
            ok = self._cycle.wait_for(lambda: self._cycles_done >= wanted, timeout=timeout)
        for store in list(self._stores.values()):
            store._commit()
        return bool(ok)

    def register(self, state: FunctionState) -> None:
        """Count the sampled-out calls of a sampled function in `stats`."""
        with self._lock:
            self._states.add(state)

    def _sampled_out(self) -> int:
        with self._lock:
            states = list(self._states)
        return sum(max(0, st.calls - st.taken) for st in states)

    def stats(self) -> RecorderStats:
        return RecorderStats(recorded=self.recorded, dropped=self.dropped, failed=self.failed,
                             pending=len(self.queue) + self._in_flight, retried=self.retried,
                             failed_by_reason=dict(self._failed_by),
                             sampled_out=self._sampled_out() - self._sampled_base,
                             deduplicated=self.deduplicated)

    def _log_once(self, key: str, level: int, message: str, *args: Any) -> None:
        if key in self._logged:
            logger.debug(message, *args)
            return
        self._logged.add(key)
        logger.log(level, message + " (logged once)", *args)


_DEFAULT: Recorder | None = None
_DEFAULT_LOCK = threading.Lock()


def default_recorder() -> Recorder:
    """The process-wide recorder (created on first use)."""
    global _DEFAULT
    if _DEFAULT is None:
        with _DEFAULT_LOCK:
            if _DEFAULT is None:
                _DEFAULT = Recorder()
    return _DEFAULT



__all__ = ["Recorder", "RecorderStats", "default_recorder", "REDACT_KEY_ENV"]
