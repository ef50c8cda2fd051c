"""`@record`: watch a function in production and keep its calls as traces.

The caller's thread only decides whether to sample and appends the raw call to a bounded
queue (PyAnnotate's enqueue-then-aggregate design): immutable scalar arguments are kept as
they are, mutable ones are snapshotted so later mutation cannot change what was recorded.
Binding to the signature, encoding and writing happen on one background writer thread, in
batches. Recording never breaks the program it watches: a full queue drops the trace (and
counts it), a failed write is retried with backoff (0.05, 0.2, 1 s) before its traces are
counted as failed (by exception type) and logged once on the "neuroswap" logger, and the
wrapped function returns or raises exactly as before.
"""

from __future__ import annotations

import atexit
import collections
import functools
import hashlib
import hmac
import inspect
import logging
import os
import random
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, TypeVar, overload

import numpy as np

from . import _encoding
from ._encoding import IMMUTABLE_SCALARS, MAX_ARRAY_BYTES
from ._identity import function_name, source_hash
from ._store import DEFAULT_STORE, STORE_ENV, TraceRecord, TraceStore, encode_inputs, parse_uri
from ._traces import ErrorInfo, Redacted
from ._validation import bad_argument, check_number

logger = logging.getLogger("neuroswap")

F = TypeVar("F", bound=Callable[..., Any])

#: set to "0" (or "false", "off", "no") to turn recording off: decorated functions just call through.
RECORD_ENV = "NEUROSWAP_RECORD"
#: secret key for the salted hashes of redacted arguments; a random per-process key if unset.
REDACT_KEY_ENV = "NEUROSWAP_REDACT_KEY"

_OFF, _ON, _SAMPLED = 0, 1, 2
_NO_LIMIT = sys.maxsize


def recording_enabled() -> bool:
    """False when `$NEUROSWAP_RECORD` turns recording off."""
    return os.environ.get(RECORD_ENV, "1").strip().lower() not in ("0", "false", "off", "no")


@dataclass(frozen=True)
class RecorderStats:
    """Counts since the recorder started in this process.

    `recorded`: traces written to a store; `dropped`: calls not recorded because the queue was
    full; `failed`: traces lost to a recorder failure (store error after its retries, encoding
    bug, arguments that do not fit the signature), and `failed_by_reason` the same count by
    exception type name; `retried`: traces whose write failed at first and was tried again
    (each counted once, whether a retry then wrote it or not); `pending`: calls queued and not
    yet written. Calls not sampled (`sample_rate`, `max_traces`) are not counted anywhere.
    """

    recorded: int
    dropped: int
    failed: int
    pending: int
    retried: int = 0
    failed_by_reason: Mapping[str, int] = field(default_factory=dict)


# -- per-function state -----------------------------------------------------------------------

class _Binder:
    """Arguments -> `{name: value}` in signature order with defaults applied.

    Built once per function, since `inspect.Signature.bind` costs microseconds per call; simple
    signatures (no positional-only, no *args/**kwargs) use a dict-based fast path.
    """

    def __init__(self, signature: inspect.Signature) -> None:
        self.signature = signature
        params = list(signature.parameters.values())
        kinds = {p.kind for p in params}
        self.simple = kinds <= {inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY}
        self.names = [p.name for p in params]
        self.name_set = frozenset(self.names)
        self.positional = [p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
        self.defaults = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}

    def __call__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if not self.simple:
            bound = self.signature.bind(*args, **kwargs)
            bound.apply_defaults()
            return dict(bound.arguments)
        if len(args) > len(self.positional):
            raise TypeError(f"{len(args)} positional arguments for {len(self.positional)} parameters")
        given = dict(zip(self.positional, args))
        for key, value in kwargs.items():
            if key in given or key not in self.name_set:
                raise TypeError(f"unexpected or repeated argument {key!r}")
            given[key] = value
        out: dict[str, Any] = {}
        for name in self.names:
            if name in given:
                out[name] = given[name]
            elif name in self.defaults:
                out[name] = self.defaults[name]
            else:
                raise TypeError(f"missing argument {name!r}")
        return out


class _FunctionState:
    """What the wrapper of one function needs on the hot path, and what the writer needs later.

    `mode`: 0 off, 1 every call (no cap), 2 checked per call by `admit` (sampling and/or a cap).
    """

    __slots__ = ("name", "source_hash", "skip", "mode", "rate", "limit", "keep_first", "taken",
                 "store", "redact", "binder", "arg_names")

    def __init__(self, *, name: str, source_hash: str, skip: int, rate: float, limit: int | None,
                 keep_first: int, store: Any, redact: tuple[str, ...], binder: _Binder, enabled: bool) -> None:
        self.name = name
        self.source_hash = source_hash
        self.skip = skip
        self.rate = float(rate)
        self.limit = _NO_LIMIT if limit is None else int(limit)
        self.keep_first = int(keep_first)
        self.taken = 0
        self.store = store
        self.redact = redact
        self.binder = binder
        #: names of the values a generated wrapper enqueues (None: the generic wrapper's args/kwargs)
        self.arg_names: tuple[str, ...] | None = None
        if not enabled or self.limit <= 0 or (self.rate <= 0.0 and self.keep_first <= 0):
            self.mode = _OFF
        elif self.rate >= 1.0 and self.limit == _NO_LIMIT:
            self.mode = _ON
        else:
            self.mode = _SAMPLED

    def admit(self) -> bool:
        """Whether this call is recorded (sampling, `keep_first`, `max_traces`)."""
        taken = self.taken
        if taken >= self.keep_first and self.rate < 1.0 and _rand() >= self.rate:
            return False
        taken += 1
        self.taken = taken
        if taken >= self.limit:
            self.mode = _OFF
        return True

    def inputs(self, item: tuple[Any, ...]) -> dict[str, Any]:
        """`{name: value}` of a queued call, defaults applied, self/cls left out."""
        if self.arg_names is not None:
            return dict(zip(self.arg_names, item[5:]))
        return self.binder(item[5], item[6])


_rand = random.random


# -- snapshots (hot path) -----------------------------------------------------------------------

_all_immutable = IMMUTABLE_SCALARS.issuperset


def _snap(value: Any) -> Any:
    """A copy of a mutable value that later mutation cannot reach (never raises)."""
    try:
        kind = type(value)
        if kind is np.ndarray:
            if value.nbytes <= MAX_ARRAY_BYTES and value.dtype.kind in "biufc":
                return value.copy()
        elif kind is tuple:
            if _all_immutable(map(type, value)):
                return value
        elif kind is list or kind is set:
            if _all_immutable(map(type, value)):
                return value.copy()  # a shallow copy suffices: the items cannot change
        elif kind is dict:
            if _all_immutable(map(type, value.values())) and _all_immutable(map(type, value)):
                return value.copy()
        return _encoding.Encoded(_encoding.encode(value))
    except BaseException:  # noqa: BLE001 - a snapshot must never break the call
        return _encoding.Encoded(_encoding.encode(_encoding.non_replayable(value)))


def _snap_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
    for v in args:
        if type(v) not in IMMUTABLE_SCALARS:
            return tuple(v if type(v) in IMMUTABLE_SCALARS else _snap(v) for v in args)
    return args


def _snap_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if type(v) in IMMUTABLE_SCALARS else _snap(v)) for k, v in kwargs.items()}


def _error_info(exc: BaseException) -> ErrorInfo:
    try:
        return ErrorInfo.from_exception(exc)
    except Exception:  # a broken __str__
        return ErrorInfo(type=type(exc).__qualname__, message="<message unavailable>")


# -- the recorder: queue and writer thread ----------------------------------------------------

class Recorder:
    """The bounded queue and background writer shared by every `@record` function in a process."""

    def __init__(self, *, max_queue: int = 200_000, batch_size: int = 2_000, interval_s: float = 0.05,
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
        self._perf0 = time.perf_counter()
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
        self.recorded = self.dropped = self.failed = self.retried = 0
        self._failed_by = {}
        self._degraded = set()
        self._in_flight = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._cycle = threading.Condition()
        self._cycles_started = self._cycles_done = 0
        self._exit_hooked = False  # hook this process's exit too (multiprocessing workers end with os._exit)

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
            batch = []
            try:
                for _ in range(self.batch_size):
                    batch.append(queue.popleft())
            except IndexError:
                pass
            self._in_flight = len(batch)
            try:
                self._write(batch)
            finally:
                self._in_flight = 0

    def _write(self, batch: list[tuple[Any, ...]]) -> None:
        by_store: dict[Any, tuple[Any, list[TraceRecord]]] = {}
        default_spec: str | None = None
        for item in batch:
            st = item[0]
            try:
                record = self._encode(item)
            except Exception as exc:  # noqa: BLE001
                self._count_failed(1, exc)
                self._log_once(f"encode:{st.name}:{type(exc).__name__}", logging.WARNING,
                               "neuroswap: a call of %s could not be recorded (%s: %s)", st.name,
                               type(exc).__name__, exc)
                continue
            spec = st.store
            if spec is None:
                if default_spec is None:
                    default_spec = os.environ.get(STORE_ENV) or DEFAULT_STORE
                spec = default_spec
            key = spec if isinstance(spec, str) else id(spec)
            entry = by_store.get(key)
            if entry is None:
                entry = by_store[key] = (spec, [])
            entry[1].append(record)
        for key, (spec, records) in by_store.items():
            self._add_with_retries(key, spec, records)

    def _add_with_retries(self, key: Any, spec: Any, records: list[TraceRecord]) -> None:
        """Write one batch to one store; a failure is retried after each of `retry_delays_s`
        (`add` is all-or-none, so a retry cannot duplicate rows), then counted by reason."""
        delays = () if key in self._degraded else self.retry_delays_s
        attempt = 0
        while True:
            try:
                store = self._store_for(spec)
                store.add(records)
            except Exception as exc:  # noqa: BLE001 - full disk, read-only, locked, corrupt...
                if attempt < len(delays):
                    if attempt == 0:
                        self.retried += len(records)
                    time.sleep(delays[attempt])
                    attempt += 1
                    continue
                self._degraded.add(key)
                self._count_failed(len(records), exc)
                where = getattr(spec, "uri", None) or str(spec)
                tries = f"{attempt + 1} tries" if attempt else "1 try"
                self._log_once(f"store:{where}:{type(exc).__name__}", logging.WARNING,
                               "neuroswap: could not write %d traces to %s after %s (%s: %s); calls keep working",
                               len(records), where, tries, type(exc).__name__, exc)
                return
            self._degraded.discard(key)
            self.recorded += len(records)
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

    def stats(self) -> RecorderStats:
        return RecorderStats(recorded=self.recorded, dropped=self.dropped, failed=self.failed,
                             pending=len(self.queue) + self._in_flight, retried=self.retried,
                             failed_by_reason=dict(self._failed_by))

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


# -- wrappers ---------------------------------------------------------------------------------
#
# Queue items: (state, t0, t1, output, error, *values). A generated wrapper (plain Python
# functions) has the function's own parameters, so the arguments arrive bound by name with the
# defaults applied and no *args/**kwargs packing; the generic wrapper (any other callable)
# enqueues (args, kwargs) and the writer binds them.

def _make_generic(fn: Callable[..., Any], st: _FunctionState, rec: Recorder) -> Callable[..., Any]:
    queue = rec.queue
    append = queue.append
    perf = time.perf_counter
    imm = IMMUTABLE_SCALARS
    skip = st.skip
    snap_args, snap_kwargs, snap, error_info = _snap_args, _snap_kwargs, _snap, _error_info

    def capture(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        a = args[skip:] if skip else args
        for v in a:
            if type(v) not in imm:
                a = snap_args(a)
                break
        return a, (snap_kwargs(kwargs) if kwargs else kwargs)

    def enqueue(item: tuple[Any, ...]) -> None:
        if len(queue) < rec.wake_at:
            append(item)
        else:
            rec.overflow(item)

    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            mode = st.mode
            if mode != _ON and (mode == _OFF or not st.admit()):
                return await fn(*args, **kwargs)
            a, kw = capture(args, kwargs)
            t0 = perf()
            try:
                out = await fn(*args, **kwargs)
            except Exception as exc:
                enqueue((st, t0, perf(), None, error_info(exc), a, kw))
                raise
            enqueue((st, t0, perf(), out if type(out) in imm else snap(out), None, a, kw))
            return out

        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        mode = st.mode
        if mode != _ON and (mode == _OFF or not st.admit()):
            return fn(*args, **kwargs)
        a, kw = capture(args, kwargs)
        t0 = perf()
        try:
            out = fn(*args, **kwargs)
        except Exception as exc:
            enqueue((st, t0, perf(), None, error_info(exc), a, kw))
            raise
        enqueue((st, t0, perf(), out if type(out) in imm else snap(out), None, a, kw))
        return out

    return wrapper


_TEMPLATE = """
def _ns_factory(_ns_fn, _ns_st, _ns_rec, _ns_imm, _ns_perf, _ns_append, _ns_queue, _ns_snap, _ns_snap_args,
                _ns_snap_kwargs, _ns_err, _ns_on, _ns_off, _ns_all_imm, _ns_type, _ns_len, _ns_map, _ns_Exception, _ns_list):
    {async_}def {name}({params}):
        _ns_mode = _ns_st.mode
        if _ns_mode != _ns_on and (_ns_mode == _ns_off or not _ns_st.admit()):
            return {await_}_ns_fn({call})
{captures}
        _ns_t0 = _ns_perf()
        try:
            _ns_out = {await_}_ns_fn({call})
        except _ns_Exception as _ns_exc:
            _ns_item = (_ns_st, _ns_t0, _ns_perf(), None, _ns_err(_ns_exc){values})
            if _ns_len(_ns_queue) < _ns_rec.wake_at:
                _ns_append(_ns_item)
            else:
                _ns_rec.overflow(_ns_item)
            raise
        _ns_item = (_ns_st, _ns_t0, _ns_perf(), _ns_out if _ns_type(_ns_out) in _ns_imm else _ns_snap(_ns_out), None{values})
        if _ns_len(_ns_queue) < _ns_rec.wake_at:
            _ns_append(_ns_item)
        else:
            _ns_rec.overflow(_ns_item)
        return _ns_out
    return {name}
"""


def _make_generated(fn: Callable[..., Any], st: _FunctionState, rec: Recorder) -> Callable[..., Any] | None:
    """A wrapper with `fn`'s own parameter list (about 2x cheaper than *args/**kwargs), or None."""
    if not inspect.isfunction(fn):
        return None
    code = fn.__code__
    signature = inspect.signature(fn, follow_wrapped=False)
    params = list(signature.parameters.values())
    if any(not p.name.isidentifier() or p.name.startswith("_ns_") for p in params):
        return None
    P = inspect.Parameter
    heads: list[str] = []
    calls: list[str] = []
    seen_star = False
    positional_only_done = False
    for index, p in enumerate(params):
        if p.kind is not P.POSITIONAL_ONLY and not positional_only_done and index > 0 and \
                params[index - 1].kind is P.POSITIONAL_ONLY:
            heads.append("/")
        if p.kind is P.POSITIONAL_ONLY:
            heads.append(p.name)
            calls.append(p.name)
        elif p.kind is P.POSITIONAL_OR_KEYWORD:
            heads.append(p.name)
            calls.append(p.name)
        elif p.kind is P.VAR_POSITIONAL:
            seen_star = True
            heads.append("*" + p.name)
            calls.append("*" + p.name)
        elif p.kind is P.KEYWORD_ONLY:
            if not seen_star:
                heads.append("*")
                seen_star = True
            heads.append(p.name)
            calls.append(f"{p.name}={p.name}")
        else:
            heads.append("**" + p.name)
            calls.append("**" + p.name)
    if params and params[-1].kind is P.POSITIONAL_ONLY:
        heads.append("/")
    captures: list[str] = []
    values: list[str] = []
    names: list[str] = []
    for index, p in enumerate(params[st.skip:]):
        var = f"_ns_v{index}"
        if p.kind is P.VAR_POSITIONAL:
            captures.append(f"        {var} = _ns_snap_args({p.name})")
        elif p.kind is P.VAR_KEYWORD:
            captures.append(f"        {var} = _ns_snap_kwargs({p.name}) if {p.name} else {p.name}")
        else:
            captures.append(f"        {var} = {p.name} if _ns_type({p.name}) in _ns_imm else ({p.name}.copy() if "
                            f"_ns_type({p.name}) is _ns_list and _ns_all_imm(_ns_map(_ns_type, {p.name})) "
                            f"else _ns_snap({p.name}))")
        values.append(var)
        names.append(p.name)
    name = fn.__name__ if fn.__name__.isidentifier() and not fn.__name__.startswith("_ns_") else "wrapper"
    is_async = inspect.iscoroutinefunction(fn)
    source = _TEMPLATE.format(
        async_="async " if is_async else "", await_="await " if is_async else "", name=name,
        params=", ".join(heads), call=", ".join(calls), captures="\n".join(captures) or "        pass",
        values="".join(", " + v for v in values),
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<neuroswap record of {st.name}>", "exec"), namespace)  # noqa: S102 - our own template
    wrapper = namespace["_ns_factory"](
        fn, st, rec, IMMUTABLE_SCALARS, time.perf_counter, rec.queue.append, rec.queue, _snap, _snap_args,
        _snap_kwargs, _error_info, _ON, _OFF, _all_immutable, type, len, map, Exception, list)
    wrapper.__defaults__ = fn.__defaults__
    wrapper.__kwdefaults__ = fn.__kwdefaults__
    if hasattr(wrapper.__code__, "co_qualname"):
        wrapper.__code__ = wrapper.__code__.replace(co_qualname=code.co_qualname)
    functools.update_wrapper(wrapper, fn)
    st.arg_names = tuple(names)
    return wrapper


# -- the decorator ----------------------------------------------------------------------------

def _looks_like_method(fn: Callable[..., Any], params: list[inspect.Parameter]) -> bool:
    """A function defined in a class body whose first parameter is `self` or `cls`."""
    if not params or params[0].name not in ("self", "cls"):
        return False
    if params[0].kind not in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
        return False
    parts = getattr(fn, "__qualname__", "").split(".")
    return len(parts) >= 2 and parts[-2] != "<locals>"


def _check_store(store: Any) -> Any:
    if store is None or isinstance(store, TraceStore):
        return store
    if isinstance(store, (str, os.PathLike)):
        parse_uri(os.fspath(store))  # syntax only: the file is opened when the first trace is written
        return os.fspath(store)
    raise bad_argument("store", store, "must be None, a TraceStore, a path or a URI",
                       "For example store='sqlite:///traces.db' or store=TraceStore.open('memory://')")


def _decorate(target: Any, *, store: Any, sample_rate: float, max_traces: int | None,
              redact: Iterable[str] | str, keep_first: int, recorder: Recorder) -> Any:
    wrap_kind: type | None = None
    fn = target
    if isinstance(target, (classmethod, staticmethod)):
        wrap_kind = type(target)
        fn = target.__func__
    if isinstance(fn, type) or not callable(fn):
        raise bad_argument("fn", fn, "must be a function or method", "Decorate the function, not a class")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise bad_argument("fn", fn, f"has no inspectable signature ({exc})", "Decorate a Python function") from exc
    params = list(signature.parameters.values())
    if wrap_kind is classmethod:
        skip = 1
    elif wrap_kind is staticmethod:
        skip = 0
    else:
        skip = 1 if _looks_like_method(fn, params) else 0
    arg_signature = signature.replace(parameters=params[skip:]) if skip else signature
    name = function_name(fn)
    names = tuple([redact] if isinstance(redact, str) else redact)
    for item in names:
        if not isinstance(item, str) or item not in arg_signature.parameters:
            available = ", ".join(arg_signature.parameters) or "(none)"
            raise bad_argument("redact", names, f"{item!r} is not a parameter of {name}",
                               f"Parameters are: {available}")
    enabled = recording_enabled()
    st = _FunctionState(
        name=name, source_hash=source_hash(fn) if enabled else "", skip=skip, rate=sample_rate,
        limit=max_traces, keep_first=keep_first, store=store, redact=names,
        binder=_Binder(arg_signature), enabled=enabled,
    )
    wrapper = _make_generated(fn, st, recorder) or _make_generic(fn, st, recorder)
    wrapper.__neuroswap_record__ = st  # type: ignore[attr-defined]
    return wrap_kind(wrapper) if wrap_kind is not None else wrapper


class _Record:
    """`@record` or `@record(store=..., sample_rate=1.0, max_traces=None, redact=(), keep_first=0)`.

    - `store`: a TraceStore, path or URI; None means `$NEUROSWAP_STORE`, else
      `./neuroswap_traces.db`, resolved when the first trace is written.
    - `sample_rate`: share of calls recorded, in [0, 1] (random, per call).
    - `max_traces`: stop recording the function after this many sampled calls (per process;
      approximate by a few under concurrent calls).
    - `keep_first`: record the first N calls whatever `sample_rate` says, then sample
      (PyAnnotate's early-then-sparse: `keep_first=100, sample_rate=0.02`).
    - `redact`: parameter names whose values are never stored; a keyed hash stands in
      (`Redacted(digest)`; key from `$NEUROSWAP_REDACT_KEY`, else random per process, so
      digests are comparable across runs only with a fixed key). Outputs and exception
      messages are not redacted.

    A trace holds the arguments bound to the signature with defaults applied (self/cls left
    out), the return value or `ErrorInfo` of the exception, the wall time of the call, a
    timestamp, the function's `module:qualname` and its source hash. Only `Exception`s are
    recorded as outcomes; KeyboardInterrupt and other BaseExceptions pass through unrecorded.
    `$NEUROSWAP_RECORD=0` (read when a function is decorated) makes the wrapper call through.
    Call `record.flush()` before reading the store in the same process; the recorder also
    flushes at interpreter exit and when a multiprocessing worker ends (not on SIGKILL or
    `os._exit`).
    """

    @overload
    def __call__(self, fn: F, /) -> F: ...

    @overload
    def __call__(self, fn: None = None, /, *, store: Any = None, sample_rate: float = 1.0,
                 max_traces: int | None = None, redact: Iterable[str] | str = (),
                 keep_first: int = 0) -> Callable[[F], F]: ...

    def __call__(self, fn: Any = None, /, *, store: Any = None, sample_rate: float = 1.0,
                 max_traces: int | None = None, redact: Iterable[str] | str = (), keep_first: int = 0) -> Any:
        check_number("sample_rate", sample_rate, low=0.0, high=1.0, fix="Pass a share of calls, e.g. 0.1")
        if max_traces is not None:
            check_number("max_traces", max_traces, low=0, integer=True, fix="Pass None for no cap")
        check_number("keep_first", keep_first, low=0, integer=True)
        checked_store = _check_store(store)
        if not isinstance(redact, str):
            try:
                redact = tuple(redact)
            except TypeError:
                raise bad_argument("redact", redact, "must be a parameter name or a list of parameter names",
                                   "For example redact=('password',)") from None
        options = dict(store=checked_store, sample_rate=float(sample_rate),
                       max_traces=None if max_traces is None else int(max_traces), redact=redact,
                       keep_first=int(keep_first), recorder=default_recorder())
        if fn is None:
            return lambda target: _decorate(target, **options)
        return _decorate(fn, **options)

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Make every trace recorded so far in this process durable; False on timeout."""
        return default_recorder().flush(timeout=timeout)

    def stats(self) -> RecorderStats:
        """Recorded, dropped, failed (in all and by exception type), retried and pending counts
        of this process's recorder."""
        return default_recorder().stats()

    def __repr__(self) -> str:
        return "<neuroswap record decorator>"


record = _Record()

__all__ = ["record", "Recorder", "RecorderStats", "default_recorder", "recording_enabled", "RECORD_ENV"]
