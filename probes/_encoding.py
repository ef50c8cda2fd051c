"""Type-tagged JSON for recorded argument and output values.

Traces must outlive the process that recorded them and be read back as the same values and
types (a tuple stays a tuple, a nan stays a nan, an enum comes back as its member), without
pickle, so that opening a trace store can never run code. Values that cannot be encoded
become `NonReplayable(type, repr)`: recording them must never fail the call.

Format: JSON-native values (None, bool, int, finite float, str, list) are stored as
themselves; every other value is a one-key object whose key starts with `$`, for example
`{"$t": [1, 2]}` for the tuple `(1, 2)`. Dicts are always tagged (`{"$d": [[k, v], ...]}`) so
a user dict can never be mistaken for a tag.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import decimal
import enum
import importlib
import json
import math
import pathlib
import uuid
from typing import Any, Callable

import numpy as np

from ._traces import NonReplayable, Redacted

#: arrays larger than this (bytes) are not stored; they become `NonReplayable`.
MAX_ARRAY_BYTES = 1 << 20
#: nesting deeper than this is not stored (also stops self-referencing containers).
MAX_DEPTH = 64
#: longest repr kept for a `NonReplayable` value.
MAX_REPR = 300

#: types whose values cannot change after the call, so the hot path keeps them as they are.
IMMUTABLE_SCALARS: frozenset[type] = frozenset(
    {type(None), bool, int, float, complex, str, bytes, decimal.Decimal, _dt.datetime, _dt.date,
     _dt.time, _dt.timedelta, uuid.UUID, range}
    | {t for t in (np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8,
                   np.uint64, np.uint32, np.uint16, np.uint8, np.bool_)}
)


class Encoded:
    """A value already encoded (a snapshot taken at call time); encoding it returns the payload."""

    __slots__ = ("payload",)

    def __init__(self, payload: Any) -> None:
        self.payload = payload


class Unencodable(Exception):
    """Internal: a value (or a part of it) has no encoding."""


def _qualified(kind: type) -> str:
    return f"{kind.__module__}:{kind.__qualname__}"


def _import(name: str) -> Any:
    module_name, _, qualname = name.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # a broken __repr__ must not break recording
        text = f"<unrepresentable {type(value).__name__}: {type(exc).__name__}>"
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."


def _type_name(value: Any) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def non_replayable(value: Any) -> NonReplayable:
    """The marker stored in place of a value that has no encoding."""
    return NonReplayable(type=_type_name(value), repr=_short_repr(value))


# -- encoding ---------------------------------------------------------------------------------

def _float(value: float) -> Any:
    if math.isfinite(value):
        return value
    return {"$f": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}


def _enc(value: Any, depth: int) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return _float(value)
    if depth > MAX_DEPTH:
        raise Unencodable("too deep")
    depth += 1
    if kind is list:
        return [_enc(item, depth) for item in value]
    if kind is tuple:
        return {"$t": [_enc(item, depth) for item in value]}
    if kind is dict:
        return {"$d": [[_enc(k, depth), _enc(v, depth)] for k, v in value.items()]}
    handler = _HANDLERS.get(kind)
    if handler is not None:
        return handler(value, depth)
    return _enc_other(value, depth)


def _enc_ndarray(value: np.ndarray, depth: int) -> Any:
    if value.dtype.kind not in "biufc" or value.dtype.hasobject:
        raise Unencodable("array dtype")
    if value.nbytes > MAX_ARRAY_BYTES:
        raise Unencodable("array too large")
    data = np.ascontiguousarray(value)
    return {"$nd": [data.dtype.str, list(data.shape), base64.b64encode(data.tobytes()).decode("ascii")]}


def _enc_np_scalar(value: Any, depth: int) -> Any:
    dtype = value.dtype
    if dtype.kind == "b":
        plain: Any = bool(value)
    elif dtype.kind in "iu":
        plain = int(value)
    elif dtype.kind == "f":
        plain = _float(float(value))
    elif dtype.kind == "c":
        plain = [_float(float(value.real)), _float(float(value.imag))]
    else:
        raise Unencodable("numpy scalar kind")
    return {"$np": [dtype.str, plain]}


_HANDLERS: dict[type, Callable[[Any, int], Any]] = {
    bytes: lambda v, d: {"$b": base64.b64encode(v).decode("ascii")},
    bytearray: lambda v, d: {"$ba": base64.b64encode(bytes(v)).decode("ascii")},
    complex: lambda v, d: {"$c": [_float(v.real), _float(v.imag)]},
    set: lambda v, d: {"$s": [_enc(item, d) for item in _sorted_items(v)]},
    frozenset: lambda v, d: {"$fs": [_enc(item, d) for item in _sorted_items(v)]},
    _dt.datetime: lambda v, d: {"$dt": v.isoformat()},
    _dt.date: lambda v, d: {"$date": v.isoformat()},
    _dt.time: lambda v, d: {"$time": v.isoformat()},
    _dt.timedelta: lambda v, d: {"$td": [v.days, v.seconds, v.microseconds]},
    decimal.Decimal: lambda v, d: {"$dec": str(v)},
    uuid.UUID: lambda v, d: {"$uuid": str(v)},
    range: lambda v, d: {"$range": [v.start, v.stop, v.step]},
    np.ndarray: _enc_ndarray,
    NonReplayable: lambda v, d: {"$nr": [v.type, v.repr]},
    Redacted: lambda v, d: {"$red": v.digest},
    Encoded: lambda v, d: v.payload,
}


def _sorted_items(values: Any) -> list[Any]:
    """Set members in a stable order, so equal sets encode to equal text."""
    items = list(values)
    try:
        return sorted(items)
    except TypeError:
        return sorted(items, key=repr)


def _enc_other(value: Any, depth: int) -> Any:
    if isinstance(value, np.generic):
        return _enc_np_scalar(value, depth)
    if isinstance(value, enum.Enum):
        return {"$e": [_qualified(type(value)), value.name, _enc_or_marker(value.value, depth), _short_repr(value)]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _enc(getattr(value, f.name), depth) for f in dataclasses.fields(value)}
        return {"$dc": [_qualified(type(value)), fields, _short_repr(value)]}
    if isinstance(value, tuple) and hasattr(type(value), "_fields"):  # namedtuple
        return {"$nt": [_qualified(type(value)), [_enc(item, depth) for item in value]]}
    if isinstance(value, pathlib.PurePath):
        return {"$path": [type(value).__name__, str(value)]}
    # subclasses of the plain types (a str subclass, an OrderedDict, a defaultdict ...): keep the
    # value, lose the subclass, since the value is what the function computed with
    for base, tag in ((str, None), (int, None), (float, None), (list, None), (tuple, "$t"), (dict, "$d")):
        if isinstance(value, base):
            if base is float:
                return _float(float(value))
            if base is tuple:
                return {"$t": [_enc(item, depth) for item in value]}
            if base is dict:
                return {"$d": [[_enc(k, depth), _enc(v, depth)] for k, v in value.items()]}
            if base is list:
                return [_enc(item, depth) for item in value]
            return base(value)
    raise Unencodable(type(value).__name__)


def _enc_or_marker(value: Any, depth: int) -> Any:
    try:
        return _enc(value, depth)
    except (Unencodable, RecursionError):
        return None


def encode(value: Any) -> Any:
    """The JSON-able tagged form of `value`; `NonReplayable` marker when it has none."""
    try:
        return _enc(value, 0)
    except (Unencodable, RecursionError):
        return _HANDLERS[NonReplayable](non_replayable(value), 0)
    except Exception:  # a property or __eq__ that raises: keep recording, mark the value
        return _HANDLERS[NonReplayable](non_replayable(value), 0)


_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _no_default(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


try:  # the C encoder built once: json.dumps rebuilds it per call, ~3x slower for small values
    from json.encoder import c_make_encoder as _c_make_encoder, encode_basestring as _encode_str

    if _c_make_encoder is None:
        raise ImportError
    _c_encoder = _c_make_encoder(None, _no_default, _encode_str, None, ":", ",", False, False, False)

    def _plain_json(value: Any) -> str:
        return "".join(_c_encoder(value, 0))
except ImportError:  # pragma: no cover - interpreters without the C accelerator
    _plain_json = _JSON.encode


def dumps(value: Any) -> str:
    """`value` as type-tagged JSON text (never raises for odd values; see `encode`)."""
    kind = type(value)
    if kind is float:
        return repr(value) if value - value == 0.0 else _plain_json(_float(value))
    if kind is int or kind is str or kind is bool or value is None:
        return _plain_json(value)
    return _plain_json(encode(value))


def dumps_encoded(encoded: Any) -> str:
    """JSON text of an already encoded value."""
    return _plain_json(encoded)


def dumps_fields(values: dict[str, Any]) -> str:
    """A `{name: value}` dict as a JSON object of tagged values (the writer's hot loop)."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        kind = type(value)
        if kind is float:
            out[name] = value if value - value == 0.0 else _float(value)
        elif kind is int or kind is str or kind is bool or value is None:
            out[name] = value
        else:
            out[name] = encode(value)
    return _plain_json(out)


# -- decoding ---------------------------------------------------------------------------------

def _dec_float(text: str) -> float:
    return float(text)


def _dec_np(payload: list[Any]) -> Any:
    dtype = np.dtype(payload[0])
    plain = payload[1]
    if dtype.kind == "c":
        return dtype.type(complex(_dec(plain[0]), _dec(plain[1])))
    return dtype.type(_dec(plain))


def _dec_nd(payload: list[Any]) -> np.ndarray:
    dtype = np.dtype(payload[0])
    shape = tuple(payload[1])
    data = base64.b64decode(payload[2])
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def _dec_enum(payload: list[Any]) -> Any:
    name, member = payload[0], payload[1]
    try:
        kind = _import(name)
        return kind[member]
    except Exception:
        return NonReplayable(type=name.replace(":", "."), repr=payload[3] if len(payload) > 3 else member)


def _dec_dataclass(payload: list[Any]) -> Any:
    name, fields = payload[0], payload[1]
    values = {key: _dec(item) for key, item in fields.items()}
    try:
        kind = _import(name)
        if not (isinstance(kind, type) and dataclasses.is_dataclass(kind)):
            raise TypeError(name)
        # restore the fields as recorded (as pickle would), without running __init__ or
        # __post_init__, so init=False fields and frozen classes come back as they were
        instance = kind.__new__(kind)
        for key, item in values.items():
            object.__setattr__(instance, key, item)
        return instance
    except Exception:
        return NonReplayable(type=name.replace(":", "."), repr=payload[2] if len(payload) > 2 else repr(values))


def _dec_namedtuple(payload: list[Any]) -> Any:
    items = [_dec(item) for item in payload[1]]
    try:
        return _import(payload[0])(*items)
    except Exception:
        return tuple(items)


def _dec_path(payload: list[Any]) -> Any:
    kind = getattr(pathlib, payload[0], pathlib.PurePath)
    return kind(payload[1])


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "$f": _dec_float,
    "$t": lambda p: tuple(_dec(item) for item in p),
    "$d": lambda p: {_hashable(_dec(k)): _dec(v) for k, v in p},
    "$b": lambda p: base64.b64decode(p),
    "$ba": lambda p: bytearray(base64.b64decode(p)),
    "$c": lambda p: complex(_dec(p[0]), _dec(p[1])),
    "$s": lambda p: {_hashable(_dec(item)) for item in p},
    "$fs": lambda p: frozenset(_hashable(_dec(item)) for item in p),
    "$dt": _dt.datetime.fromisoformat,
    "$date": _dt.date.fromisoformat,
    "$time": _dt.time.fromisoformat,
    "$td": lambda p: _dt.timedelta(days=p[0], seconds=p[1], microseconds=p[2]),
    "$dec": decimal.Decimal,
    "$uuid": uuid.UUID,
    "$range": lambda p: range(p[0], p[1], p[2]),
    "$np": _dec_np,
    "$nd": _dec_nd,
    "$e": _dec_enum,
    "$dc": _dec_dataclass,
    "$nt": _dec_namedtuple,
    "$path": _dec_path,
    "$nr": lambda p: NonReplayable(type=p[0], repr=p[1]),
    "$red": lambda p: Redacted(digest=p),
}


def _hashable(value: Any) -> Any:
    """Dict keys and set members must hash; an unhashable decoded marker keeps its repr."""
    try:
        hash(value)
        return value
    except TypeError:
        return repr(value)


def _dec(obj: Any) -> Any:
    if type(obj) is list:
        return [_dec(item) for item in obj]
    if type(obj) is dict:
        (tag, payload), = obj.items()
        return _DECODERS[tag](payload)
    return obj


def decode(obj: Any) -> Any:
    """The value an `encode` result stands for."""
    return _dec(obj)


def loads(text: str) -> Any:
    """The value `dumps` wrote."""
    return _dec(json.loads(text))
