"""Shadow mode's disagreement log: the original's traces of disagreeing calls, written to a
TraceStore off the caller's thread, ready to retrain on."""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from typing import Any, Callable

from probes import ErrorInfo
from probes._identity import function_name

logger = logging.getLogger("replace.swap")


class _StoreWriter:
    """Writes disagreement traces to a TraceStore off the caller's thread, in batches.

    A failed `add` (all-or-none, so a retry cannot duplicate rows) is retried after each of
    `retry_delays_s` before the batch is counted lost and reported to `on_error`; after such a
    loss the next batch gets a single try until one succeeds, so a dead store cannot make the
    queue wait seconds per batch. The thread is a daemon, which the interpreter would kill with
    rows still queued: every writer registers a flush at exit, bounded by `exit_timeout_s`,
    through a weak reference (an unused writer is still garbage-collected, and its hook with it;
    a writer with queued rows is kept alive until they are written).
    """

    retry_delays_s: tuple[float, ...] = (0.05, 0.2, 1.0)
    exit_timeout_s: float = 10.0
    #: writers with rows still queued (kept alive so that their rows are written)
    _busy: set[Any] = set()

    def __init__(self, store: Any, fn: Callable[..., Any], on_error: Callable[[BaseException], None]) -> None:
        import atexit
        import weakref

        from probes._identity import source_hash

        self.store = store
        self.name = function_name(fn)
        self.source_hash = source_hash(fn)
        self.on_error = on_error
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.pending = 0
        self.cond = threading.Condition()
        self.thread: threading.Thread | None = None
        #: rows written; rows lost (after their retries) in all and by exception type; rows retried
        self.written = self.failed = self.retried = 0
        self.failed_by_reason: dict[str, int] = {}
        self._degraded = False
        hook = functools.partial(_StoreWriter._flush_at_exit, weakref.ref(self))
        atexit.register(hook)
        # when the writer is collected: drop its exit hook and end its thread (not at exit itself,
        # where the hook must still run)
        weakref.finalize(self, _StoreWriter._forget, hook, self.queue).atexit = False

    @staticmethod
    def _flush_at_exit(ref: Any) -> None:
        writer = ref()
        if writer is not None and writer.pending:
            try:
                if not writer.flush(writer.exit_timeout_s):
                    logger.warning("swap(%s): %d disagreement rows not written at exit (store too slow)",
                                   writer.name, writer.pending)
            except Exception:  # noqa: BLE001 - never fail the interpreter's exit
                pass

    @staticmethod
    def _forget(hook: Any, items: Any) -> None:
        import atexit

        atexit.unregister(hook)
        items.put(None)

    def put(self, kwargs: dict[str, Any], output: Any, error: ErrorInfo | None, duration: float | None) -> None:
        import weakref

        with self.cond:
            self.pending += 1
            _StoreWriter._busy.add(self)
            if self.thread is None:
                self.thread = threading.Thread(target=_StoreWriter._loop, args=(weakref.ref(self), self.queue),
                                               name="neuroswap-swap-writer", daemon=True)
                self.thread.start()
        self.queue.put((kwargs, output, error, duration, time.time()))

    @staticmethod
    def _loop(ref: Any, items: Any) -> None:
        # holds the writer only while writing a batch, so an idle writer can be collected
        while True:
            first = items.get()
            writer = ref() if first is not None else None
            if writer is None:
                return
            batch = [first]
            while True:
                try:
                    batch.append(items.get_nowait())
                except queue.Empty:
                    break
            try:
                writer._write([item for item in batch if item is not None])
            except BaseException:  # noqa: BLE001 - the writer thread must survive anything
                pass
            finally:
                with writer.cond:
                    writer.pending -= sum(item is not None for item in batch)
                    if writer.pending <= 0:
                        _StoreWriter._busy.discard(writer)
                    writer.cond.notify_all()
                del writer

    def _write(self, items: list[Any]) -> None:
        from probes import _encoding
        from probes._store import TraceRecord, encode_inputs

        records = []
        for kwargs, output, error, duration, stamp in items:
            try:
                records.append(TraceRecord(self.name, self.source_hash, encode_inputs(kwargs),
                                           None if error is not None else _encoding.dumps(output),
                                           error.type if error else None, error.message if error else None,
                                           duration, stamp))
            except Exception as exc:  # noqa: BLE001 - an unencodable row is lost, the others are not
                self._lost(1, exc)
        if not records:
            return
        delays = () if self._degraded else self.retry_delays_s
        attempt = 0
        while True:
            try:
                self.store.add(records)
                break
            except Exception as exc:  # noqa: BLE001 - locked, full disk, unreachable...
                if attempt < len(delays):
                    if attempt == 0:
                        self.retried += len(records)
                    time.sleep(delays[attempt])
                    attempt += 1
                    continue
                self._degraded = True
                self._lost(len(records), exc)
                return
        self._degraded = False
        self.written += len(records)
        commit = getattr(self.store, "_commit", None)
        if commit is not None:
            try:
                commit()
            except Exception as exc:  # noqa: BLE001 - the rows are added; only the checkpoint failed
                self._report(exc)

    def _lost(self, n: int, exc: BaseException) -> None:
        self.failed += n
        reason = type(exc).__name__
        self.failed_by_reason[reason] = self.failed_by_reason.get(reason, 0) + n
        self._report(exc)

    def _report(self, exc: BaseException) -> None:
        try:
            self.on_error(exc)  # recording never breaks the program it watches
        except Exception:  # noqa: BLE001
            pass

    def flush(self, timeout: float | None) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.pending == 0, timeout=timeout)
