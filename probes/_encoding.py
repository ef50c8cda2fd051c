"""Type-tagged JSON for recorded argument and output values.

Traces must outlive the process that recorded them and be read back as the same values and
types (a tuple stays a tuple, a nan stays a nan, an enum comes back as its member), without
pickle. Values that cannot be encoded become `NonReplayable(type, repr)`: recording them must
never fail the call.

Trace rows are data, possibly written by someone else, so decoding never imports a module the
caller did not name and never calls anything the data names. An enum, dataclass or namedtuple
row names its class as `module:qualname`; the class is found only in a module already in
`sys.modules`, or imported because the caller listed it in `trusted_modules`, by reading
module and class dicts (no `getattr`, no module `__getattr__`, no dunder or non-identifier
part), and it must be a class of the row's kind. The value is rebuilt without calling the class:
an enum member is looked up in the class's member maps (never `_missing_`), a dataclass is
`object.__new__` plus its declared fields set with `object.__setattr__` (no `__init__`,
`__post_init__` or property setter), a namedtuple is `tuple.__new__`. Anything else decodes to
`NonReplayable` with the recorded repr. numpy values are rebuilt only from plain numeric dtype
strings (never object dtypes, never pickle). What remains: a rebuilt set member or dict key is
hashed, which runs its class's `__hash__` (and `__eq__` on a collision).

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
import re
import sys
import types
import uuid
from typing import Any, Callable, Iterable

import numpy as np

from ._traces import NonReplayable, Redacted
from ._validation import bad_argument

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
        return {"$nt": [_qualified(type(value)), [_enc(item, depth) for item in value], _short_repr(value)]}
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


# -- resolving the classes a row names ----------------------------------------------------------

# C-level slot readers: reading a module's or class's dict through them runs no Python code
# (no module `__getattr__`, no metaclass `__getattribute__`, no descriptor).
_MODULE_DICT = types.ModuleType.__dict__["__dict__"]
_TYPE_DICT = type.__dict__["__dict__"]
_TYPE_MRO = type.__dict__["__mro__"]
_NO_VALUE = object()


def trusted_set(trusted_modules: Any, name: str = "trusted_modules") -> frozenset[str]:
    """`trusted_modules` checked and frozen: None or an iterable of module names (strings)."""
    if trusted_modules is None:
        return frozenset()
    if isinstance(trusted_modules, frozenset) and all(type(m) is str and m for m in trusted_modules):
        return trusted_modules
    fix = f"For example {name}=('mypkg.types',)"
    if isinstance(trusted_modules, (str, bytes)):
        raise bad_argument(name, trusted_modules, "must be an iterable of module names, not one string", fix)
    try:
        items = list(trusted_modules)
    except TypeError:
        raise bad_argument(name, trusted_modules, "must be None or an iterable of module names (strings)", fix) from None
    for item in items:
        if not isinstance(item, str) or not item or not all(part.isidentifier() for part in item.split(".")):
            raise bad_argument(name, trusted_modules, f"holds {item!r}, which is not a dotted module name", fix)
    return frozenset(items)


def _is_class(value: Any) -> bool:
    return issubclass(type(value), type)


def _is_dunder(part: str) -> bool:
    return part.startswith("__") and part.endswith("__")


def _class_lookup(cls: type, name: str) -> Any:
    """`name` as found in the class dicts along `cls`'s MRO, without running any descriptor."""
    for klass in _TYPE_MRO.__get__(cls):
        namespace = _TYPE_DICT.__get__(klass)
        if name in namespace:
            return namespace[name]
    return _NO_VALUE


def _inherits(cls: type, base: type) -> bool:
    """`issubclass(cls, base)` by identity along the MRO (no metaclass hook runs)."""
    return any(klass is base for klass in _TYPE_MRO.__get__(cls))


def resolve_class(name: Any, trusted_modules: frozenset[str] = frozenset()) -> type | None:
    """The class a row names as `module:qualname`, or None.

    The module must already be in `sys.modules`, or be listed in `trusted_modules` (then it is
    imported). The qualname is walked through the module's dict, then class dicts, part by part;
    dunder and non-identifier parts are refused. Nothing named is called.
    """
    if type(name) is not str:
        return None
    module_name, sep, qualname = name.partition(":")
    module_parts = module_name.split(".")
    parts = qualname.split(".")
    if not sep or not all(part.isidentifier() for part in module_parts):
        return None
    if not all(part.isidentifier() and not _is_dunder(part) for part in parts):
        return None
    module = sys.modules.get(module_name)
    if module is None:
        if module_name not in trusted_modules:
            return None
        try:
            importlib.import_module(module_name)
        except Exception:
            return None
        module = sys.modules.get(module_name)
    if not issubclass(type(module), types.ModuleType):
        return None
    target: Any = _MODULE_DICT.__get__(module).get(parts[0], _NO_VALUE)
    for part in parts[1:]:
        if not _is_class(target):
            return None
        target = _TYPE_DICT.__get__(target).get(part, _NO_VALUE)
    return target if _is_class(target) else None


# -- decoding ---------------------------------------------------------------------------------

_Trusted = frozenset

#: the numpy dtype strings a row may name: byte order, kind (bool, int, uint, float, complex), size.
_PLAIN_DTYPE = re.compile(r"[<>|=]?[biufc][0-9]{1,2}")


def _plain_dtype(text: Any) -> np.dtype:
    """A numeric dtype from a row; anything else (object, structured, void ...) is refused."""
    if type(text) is not str or not _PLAIN_DTYPE.fullmatch(text):
        raise ValueError(f"not a plain numeric dtype: {text!r}")
    dtype = np.dtype(text)
    if dtype.kind not in "biufc" or dtype.hasobject:
        raise ValueError(f"not a plain numeric dtype: {text!r}")
    return dtype


def _dec_np(payload: list[Any], trusted: _Trusted) -> Any:
    dtype = _plain_dtype(payload[0])
    plain = payload[1]
    if dtype.kind == "c":
        return dtype.type(complex(_dec(plain[0], trusted), _dec(plain[1], trusted)))
    value = _dec(plain, trusted)
    if type(value) not in (bool, int, float):
        raise ValueError("numpy scalar payload must be a number")
    return dtype.type(value)


def _dec_nd(payload: list[Any], trusted: _Trusted) -> np.ndarray:
    dtype = _plain_dtype(payload[0])
    shape = tuple(payload[1])
    if not all(type(n) is int and n >= 0 for n in shape):
        raise ValueError("array shape must be non-negative integers")
    if type(payload[2]) is not str:
        raise ValueError("array data must be base64 text")
    data = base64.b64decode(payload[2])
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def _marker(name: Any, recorded: Any) -> NonReplayable:
    kind = name.replace(":", ".") if type(name) is str else repr(name)
    return NonReplayable(type=kind, repr=recorded if type(recorded) is str else repr(recorded))


def _dec_enum(payload: list[Any], trusted: _Trusted) -> Any:
    name, member = payload[0], payload[1]
    recorded = payload[3] if len(payload) > 3 else member
    kind = resolve_class(name, trusted)
    if kind is None or not _inherits(kind, enum.Enum):
        return _marker(name, recorded)
    found: Any = None
    by_name = _class_lookup(kind, "_member_map_")
    if type(member) is str and type(by_name) is dict:
        found = by_name.get(member)
    if found is None and len(payload) > 2:  # a member recorded under another name (Flag combinations)
        by_value = _class_lookup(kind, "_value2member_map_")
        if type(by_value) is dict:
            value = _dec(payload[2], trusted)
            if type(value) in (int, str, float, bool, bytes, tuple) or value is None:
                try:
                    found = by_value.get(value)
                except TypeError:  # unhashable
                    found = None
    if found is None or type(found) is not kind:
        return _marker(name, recorded)
    return found


def _dataclass_fields(kind: type) -> list[str] | None:
    """The declared fields of a dataclass, read from its class dict; None when it is not one."""
    declared = _class_lookup(kind, "__dataclass_fields__")
    if type(declared) is not dict:
        return None
    plain_field = getattr(dataclasses, "_FIELD", None)
    names = []
    for field_name, spec in declared.items():
        if type(field_name) is not str or type(spec) is not dataclasses.Field:
            return None
        if plain_field is None or spec._field_type is plain_field:
            names.append(field_name)
    return names


def _settable_plainly(kind: type, field_name: str) -> bool:
    """`object.__setattr__` would store the field without running code: no data descriptor
    other than a `__slots__` member stands on the class under that name."""
    attribute = _class_lookup(kind, field_name)
    if attribute is _NO_VALUE or type(attribute) is types.MemberDescriptorType:
        return True
    return _class_lookup(type(attribute), "__set__") is _NO_VALUE and \
        _class_lookup(type(attribute), "__delete__") is _NO_VALUE


def _dec_dataclass(payload: list[Any], trusted: _Trusted) -> Any:
    name, fields = payload[0], payload[1]
    recorded = payload[2] if len(payload) > 2 else None
    if type(fields) is not dict:
        raise ValueError("dataclass fields must be an object")
    values = {key: _dec(item, trusted) for key, item in fields.items()}
    if recorded is None:
        recorded = repr(values)
    kind = resolve_class(name, trusted)
    declared = None if kind is None else _dataclass_fields(kind)
    if declared is None or set(declared) != set(values):
        return _marker(name, recorded)
    if not all(_settable_plainly(kind, key) for key in values):
        return _marker(name, recorded)
    try:
        # restore the fields as recorded (as pickle would), without running __new__, __init__ or
        # __post_init__, so init=False fields and frozen classes come back as they were
        instance = object.__new__(kind)
    except TypeError:  # a dataclass over a builtin base, or an abstract one
        return _marker(name, recorded)
    for key in declared:
        object.__setattr__(instance, key, values[key])
    return instance


def _dec_namedtuple(payload: list[Any], trusted: _Trusted) -> Any:
    name = payload[0]
    items = [_dec(item, trusted) for item in payload[1]]
    kind = resolve_class(name, trusted)
    names = None if kind is None or not _inherits(kind, tuple) else _class_lookup(kind, "_fields")
    if type(names) is not tuple or len(names) != len(items):
        recorded = payload[2] if len(payload) > 2 else f"{name.rpartition(':')[2] if type(name) is str else ''}{tuple(items)!r}"
        return _marker(name, recorded)
    try:
        return tuple.__new__(kind, items)
    except TypeError:  # a tuple subclass over another builtin base (a struct sequence)
        return _marker(name, payload[2] if len(payload) > 2 else repr(tuple(items)))


_PATH_CLASSES: dict[str, type] = {
    "PurePath": pathlib.PurePath, "PurePosixPath": pathlib.PurePosixPath,
    "PureWindowsPath": pathlib.PureWindowsPath, "Path": pathlib.Path,
    "PosixPath": pathlib.PosixPath, "WindowsPath": pathlib.WindowsPath,
}
_PURE_OF = {"Path": pathlib.PurePath, "PosixPath": pathlib.PurePosixPath, "WindowsPath": pathlib.PureWindowsPath}


def _dec_path(payload: list[Any], trusted: _Trusted) -> Any:
    kind = _PATH_CLASSES.get(payload[0], pathlib.PurePath) if type(payload[0]) is str else pathlib.PurePath
    if type(payload[1]) is not str:
        raise ValueError("a path must be text")
    try:
        return kind(payload[1])
    except NotImplementedError:  # a WindowsPath read on POSIX (or the reverse): its pure flavour
        return _PURE_OF.get(payload[0], pathlib.PurePath)(payload[1])


def _text(payload: Any) -> str:
    if type(payload) is not str:
        raise ValueError("expected text")
    return payload


_DECODERS: dict[str, Callable[[Any, _Trusted], Any]] = {
    "$f": lambda p, t: float(_text(p)),
    "$t": lambda p, t: tuple(_dec(item, t) for item in p),
    "$d": lambda p, t: {_hashable(_dec(k, t)): _dec(v, t) for k, v in p},
    "$b": lambda p, t: base64.b64decode(_text(p)),
    "$ba": lambda p, t: bytearray(base64.b64decode(_text(p))),
    "$c": lambda p, t: complex(_dec(p[0], t), _dec(p[1], t)),
    "$s": lambda p, t: {_hashable(_dec(item, t)) for item in p},
    "$fs": lambda p, t: frozenset(_hashable(_dec(item, t)) for item in p),
    "$dt": lambda p, t: _dt.datetime.fromisoformat(_text(p)),
    "$date": lambda p, t: _dt.date.fromisoformat(_text(p)),
    "$time": lambda p, t: _dt.time.fromisoformat(_text(p)),
    "$td": lambda p, t: _dt.timedelta(days=p[0], seconds=p[1], microseconds=p[2]),
    "$dec": lambda p, t: decimal.Decimal(_text(p)),
    "$uuid": lambda p, t: uuid.UUID(_text(p)),
    "$range": lambda p, t: range(p[0], p[1], p[2]),
    "$np": _dec_np,
    "$nd": _dec_nd,
    "$e": _dec_enum,
    "$dc": _dec_dataclass,
    "$nt": _dec_namedtuple,
    "$path": _dec_path,
    "$nr": lambda p, t: NonReplayable(type=p[0], repr=p[1]),
    "$red": lambda p, t: Redacted(digest=p),
}


def _hashable(value: Any) -> Any:
    """Dict keys and set members must hash; an unhashable decoded marker keeps its repr."""
    try:
        hash(value)
        return value
    except TypeError:
        return repr(value)


def _dec(obj: Any, trusted: _Trusted) -> Any:
    if type(obj) is list:
        return [_dec(item, trusted) for item in obj]
    if type(obj) is dict:
        (tag, payload), = obj.items()
        return _DECODERS[tag](payload, trusted)
    return obj


def decode(obj: Any, *, trusted_modules: Iterable[str] | None = None) -> Any:
    """The value an `encode` result stands for. Classes named by the data are found only in
    modules already imported, or in `trusted_modules` (imported when needed); see the module
    docstring for what decoding never does. Raises (ValueError, KeyError, TypeError ...) on a
    payload that is not an encoding."""
    return _dec(obj, trusted_set(trusted_modules))


def loads(text: str, *, trusted_modules: Iterable[str] | None = None) -> Any:
    """The value `dumps` wrote (see `decode`)."""
    return _dec(json.loads(text), trusted_set(trusted_modules))
