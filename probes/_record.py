"""`@record`: watch a function in production and keep its calls as traces.

This module holds the hot path: the wrappers and the decorator. The caller's thread only
decides whether to sample (`_sampling`) and appends the raw call to the recorder's bounded
queue (`_recorder`): immutable scalar arguments are kept as they are, mutable ones are
snapshotted so later mutation cannot change what was recorded. Binding, encoding and writing
happen on the background writer thread, in batches; the wrapped function returns or raises
exactly as before.
"""

from __future__ import annotations

import functools
import inspect
import os
from typing import Any, Callable, Iterable, TypeVar, overload

import numpy as np

from . import _encoding
from ._encoding import IMMUTABLE_SCALARS, MAX_ARRAY_BYTES
from ._identity import function_name, source_hash
from ._recorder import REDACT_KEY_ENV, Recorder, RecorderStats, call_clock, default_recorder
from ._sampling import (_COUNT, _OFF, _ON, ADAPTIVE_KEEP_FIRST, ADAPTIVE_MAX_TRACES, SAMPLE_MODES, Binder,
                        FunctionState)
from ._store import TraceStore, parse_uri
from ._traces import ErrorInfo
from ._validation import bad_argument, check_number

F = TypeVar("F", bound=Callable[..., Any])

#: set to "0" (or "false", "off", "no") to turn recording off: decorated functions just call through.
RECORD_ENV = "NEUROSWAP_RECORD"

# names older code and tests import from here
_Binder = Binder
_FunctionState = FunctionState


def recording_enabled() -> bool:
    """False when `$NEUROSWAP_RECORD` turns recording off."""
    return os.environ.get(RECORD_ENV, "1").strip().lower() not in ("0", "false", "off", "no")


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


# -- wrappers ---------------------------------------------------------------------------------
#
# Queue items: (state, t0, t1, output, error, *values). A generated wrapper (plain Python
# functions) has the function's own parameters, so the arguments arrive bound by name with the
# defaults applied and no *args/**kwargs packing; the generic wrapper (any other callable)
# enqueues (args, kwargs) and the writer binds them.

def _make_generic(fn: Callable[..., Any], st: _FunctionState, rec: Recorder) -> Callable[..., Any]:
    queue = rec.queue
    append = queue.append
    perf = call_clock
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
            if mode != _ON:
                if mode == _OFF:
                    return await fn(*args, **kwargs)
                left = st.countdown - 1
                st.countdown = left
                if left > 0 or not st.admit():
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
        if mode != _ON:
            if mode == _OFF:
                return fn(*args, **kwargs)
            left = st.countdown - 1
            st.countdown = left
            if left > 0 or not st.admit():
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
        if _ns_mode != _ns_on:
            if _ns_mode == _ns_off:
                return {await_}_ns_fn({call})
            _ns_left = _ns_st.countdown - 1
            _ns_st.countdown = _ns_left
            if _ns_left > 0 or not _ns_st.admit():
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
        fn, st, rec, IMMUTABLE_SCALARS, call_clock, rec.queue.append, rec.queue, _snap, _snap_args,
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
              redact: Iterable[str] | str, keep_first: int, recorder: Recorder, sample: str | None = None) -> Any:
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
        binder=_Binder(arg_signature), enabled=enabled, adaptive=sample == "adaptive",
    )
    if st.mode == _COUNT:
        recorder.register(st)
    wrapper = _make_generated(fn, st, recorder) or _make_generic(fn, st, recorder)
    wrapper.__neuroswap_record__ = st  # type: ignore[attr-defined]
    return wrap_kind(wrapper) if wrap_kind is not None else wrapper


class _Record:
    """`@record` or `@record(store=..., sample_rate=1.0, max_traces=None, redact=(), keep_first=0,
    sample=None)`.

    - `store`: a TraceStore, path or URI; None means `$NEUROSWAP_STORE`, else
      `./neuroswap_traces.db`, resolved when the first trace is written.
    - `sample_rate`: share of calls recorded, in [0, 1] (random, per call).
    - `max_traces`: stop recording the function after this many sampled calls (per process;
      approximate by a few under concurrent calls).
    - `keep_first`: record the first N calls whatever `sample_rate` says, then sample
      (PyAnnotate's early-then-sparse: `keep_first=100, sample_rate=0.02`).
    - `sample="adaptive"`, for hot functions: every call at first, then a falling share, so
      a function called millions of times neither fills the queue nor the store. The first
      `keep_first` calls are recorded (1,000 when left at 0), then about `keep_first / n` of
      the calls around the n-th (random gaps, so periodic callers are still covered): the
      traces kept grow like `keep_first * (1 + ln(n / keep_first))`, about 7,900 after a
      million calls. `max_traces` caps them (10,000 when left at None). It replaces a fixed
      `sample_rate`, which must stay 1.0. The writer leaves out calls whose inputs and
      outcome it already stored for the function (`record.stats().deduplicated`; they do
      not count towards the cap), since `store.load` would drop them anyway.
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
    `os._exit`). `record.stats()` counts every call: recorded, sampled out (by `sample_rate`,
    `keep_first`, `max_traces` or the adaptive schedule), deduplicated, dropped (queue full)
    or failed, plus those still pending.
    """

    @overload
    def __call__(self, fn: F, /) -> F: ...

    @overload
    def __call__(self, fn: None = None, /, *, store: Any = None, sample_rate: float = 1.0,
                 max_traces: int | None = None, redact: Iterable[str] | str = (),
                 keep_first: int = 0, sample: str | None = None) -> Callable[[F], F]: ...

    def __call__(self, fn: Any = None, /, *, store: Any = None, sample_rate: float = 1.0,
                 max_traces: int | None = None, redact: Iterable[str] | str = (), keep_first: int = 0,
                 sample: str | None = None) -> Any:
        if type(sample) not in (str, type(None)) or sample not in SAMPLE_MODES:
            raise bad_argument("sample", sample, "must be None (a fixed sample_rate) or 'adaptive'",
                               "Pass sample='adaptive' for hot functions, or sample_rate=0.1 for a fixed share")
        check_number("sample_rate", sample_rate, low=0.0, high=1.0, fix="Pass a share of calls, e.g. 0.1")
        if max_traces is not None:
            check_number("max_traces", max_traces, low=0, integer=True, fix="Pass None for no cap")
        check_number("keep_first", keep_first, low=0, integer=True)
        if sample == "adaptive":
            if float(sample_rate) != 1.0:
                raise bad_argument("sample_rate", sample_rate, "cannot be combined with sample='adaptive': the "
                                   "adaptive schedule sets the share", "Leave sample_rate at 1.0, or drop "
                                   "sample='adaptive' to record a fixed share")
            keep_first = keep_first or ADAPTIVE_KEEP_FIRST
            if max_traces is None:
                max_traces = ADAPTIVE_MAX_TRACES
        checked_store = _check_store(store)
        if not isinstance(redact, str):
            try:
                redact = tuple(redact)
            except TypeError:
                raise bad_argument("redact", redact, "must be a parameter name or a list of parameter names",
                                   "For example redact=('password',)") from None
        options = dict(store=checked_store, sample_rate=float(sample_rate),
                       max_traces=None if max_traces is None else int(max_traces), redact=redact,
                       keep_first=int(keep_first), recorder=default_recorder(), sample=sample)
        if fn is None:
            return lambda target: _decorate(target, **options)
        return _decorate(fn, **options)

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Make every trace recorded so far in this process durable; False on timeout."""
        return default_recorder().flush(timeout=timeout)

    def stats(self) -> RecorderStats:
        """Recorded, sampled out, deduplicated, dropped, failed (in all and by exception type),
        retried and pending counts of this process's recorder."""
        return default_recorder().stats()

    def __repr__(self) -> str:
        return "<neuroswap record decorator>"


record = _Record()

__all__ = ["record", "Recorder", "RecorderStats", "default_recorder", "recording_enabled", "RECORD_ENV",
           "REDACT_KEY_ENV"]
