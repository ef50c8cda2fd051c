"""Who is a function: `module:qualname` plus a hash of its source.

Traces of an edited function must be told apart from the old one's, and a saved surrogate
must notice when the function it imitates has changed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import inspect
import textwrap
import weakref
from typing import Any, Callable

from ._validation import bad_argument


def unwrap(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The innermost function behind decorators, bound methods, class/staticmethods."""
    if isinstance(fn, (classmethod, staticmethod)):
        fn = fn.__func__
    fn = getattr(fn, "__func__", fn)
    return inspect.unwrap(fn)


def function_name(fn: Callable[..., Any]) -> str:
    """`module:qualname` of `fn` (after unwrapping)."""
    inner = unwrap(fn)
    module = getattr(inner, "__module__", None) or "__unknown__"
    qualname = getattr(inner, "__qualname__", None) or getattr(inner, "__name__", repr(inner))
    return f"{module}:{qualname}"


@functools.lru_cache(maxsize=1024)
def _hash_code(code: Any) -> str:
    return hashlib.sha256(code.co_code + repr(code.co_consts).encode()).hexdigest()[:16]


def source_hash(fn: Callable[..., Any]) -> str:
    """Short sha256 of the function's source (dedented), falling back to its bytecode."""
    inner = unwrap(fn)
    try:
        source = textwrap.dedent(inspect.getsource(inner))
        return hashlib.sha256(source.encode()).hexdigest()[:16]
    except (OSError, TypeError):
        code = getattr(inner, "__code__", None)
        if code is None:
            return "unknown"
        return _hash_code(code)


def resolve(name: str) -> Callable[..., Any]:
    """Import `module:qualname` and return the object it names."""
    if not isinstance(name, str) or ":" not in name:
        raise bad_argument("function", name, "must be 'module:qualname'", "For example 'myapp.fees:shipping_fee'")
    module_name, qualname = name.split(":", 1)
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise bad_argument("function", name, f"module {module_name!r} cannot be imported ({exc})",
                           "Check the module path and that it is on sys.path") from exc
    for part in qualname.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as exc:
            raise bad_argument("function", name, f"{module_name} has no attribute {qualname!r}",
                               "Check the function's qualified name") from exc
    return target


_TAKES_KEYWORDS: "weakref.WeakKeyDictionary[Any, bool]" = weakref.WeakKeyDictionary()


def kwargs_caller(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` callable as `f(**kwargs)` even with positional-only parameters (passed by position).

    Every stage calls the legacy function with a kwargs dict; a `def f(x, /)` would reject that.
    Keeps `__wrapped__`, so branch-path tracing still follows `fn`'s own source file.
    """
    if getattr(fn, "_neuroswap_kwargs_caller", False):
        return fn  # already one (its signature, read through __wrapped__, would mislead us)
    try:
        if _TAKES_KEYWORDS.get(fn):
            return fn  # known (reading a signature costs tens of µs, and oracles call this per call)
    except TypeError:  # unhashable or not weak-referenceable callables: read the signature each time
        pass
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return fn
    positional = [p.name for p in params if p.kind == p.POSITIONAL_ONLY]
    if not positional:
        with contextlib.suppress(TypeError):
            _TAKES_KEYWORDS[fn] = True
        return fn

    @functools.wraps(fn)
    def call(**kwargs: Any) -> Any:
        args = [kwargs.pop(name) for name in positional if name in kwargs]
        return fn(*args, **kwargs)

    call._neuroswap_kwargs_caller = True  # type: ignore[attr-defined]
    return call
