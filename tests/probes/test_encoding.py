"""Type-tagged JSON: every supported value comes back equal and of the same type."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import math
import uuid
from collections import namedtuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probes import _encoding
from probes._traces import NonReplayable, Redacted


class Color(enum.Enum):
    RED = "red"
    BLUE = 2


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass(frozen=True)
class Point:
    x: float
    y: float
    tags: tuple = ()


@dataclasses.dataclass
class Box:
    items: list
    size: int = 3
    cached: int = dataclasses.field(default=0, init=False)


Pair = namedtuple("Pair", "a b")


def same(a, b) -> bool:
    """Equal values of the same type, nan equal to nan, recursively."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    if isinstance(a, np.generic):
        return a.dtype == b.dtype and (a == b or (np.isnan(a) and np.isnan(b)))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if dataclasses.is_dataclass(a):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    return a == b


def _reject(name):
    raise AssertionError(f"non-standard JSON constant {name}")


def roundtrip(value):
    text = _encoding.dumps(value)
    json.loads(text, parse_constant=_reject)  # strict JSON: no NaN / Infinity literals
    return _encoding.loads(text)


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True), st.text(), st.binary(max_size=20),
    st.complex_numbers(allow_nan=False), st.sampled_from(list(Color) + list(Level)),
    st.datetimes(), st.dates(), st.decimals(allow_nan=False),
)
hashable = st.recursive(scalars.filter(lambda v: not isinstance(v, float) or not math.isnan(v)),
                        lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3), max_leaves=6)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(hashable, inner, max_size=4),
        st.builds(Point, st.floats(allow_nan=False), st.floats(allow_nan=False), st.lists(inner, max_size=2).map(tuple)),
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_roundtrip_property(value):
    assert same(roundtrip(value), value)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["f8", "f4", "i8", "i4", "u1", "b1", "c16"]), st.lists(st.integers(0, 5), min_size=0, max_size=3))
def test_numpy_arrays_roundtrip(dtype, shape):
    rng = np.random.default_rng(0)
    array = (rng.normal(size=shape) * 10).astype(dtype)
    if dtype.startswith("f") and array.size:
        array.flat[0] = np.nan
    assert same(roundtrip(array), array)


@pytest.mark.parametrize("value", [
    np.float64(1.5), np.float32(np.nan), np.int8(-3), np.uint64(2**63), np.bool_(True), np.complex128(1 + 2j),
    float("nan"), float("inf"), float("-inf"), -0.0, b"\x00\xff", bytearray(b"ab"), {1, 2, 3}, frozenset({"a"}),
    dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc), dt.time(1, 2), dt.timedelta(days=-1, seconds=5),
    decimal.Decimal("1.10"), uuid.UUID(int=7), range(1, 9, 2), Pair(1, [2]), Level.HIGH, Color.RED,
    {"$t": [1]}, {"$d": 1, "x": 2}, [{"$nr": 1}],
])
def test_roundtrip_examples(value):
    assert same(roundtrip(value), value)


def test_dataclass_fields_restored_without_running_init():
    box = Box([1, 2], 5)
    box.cached = 9
    back = roundtrip(box)
    assert type(back) is Box and back.items == [1, 2] and back.size == 5 and back.cached == 9


def test_unencodable_becomes_non_replayable():
    class Opaque:
        def __repr__(self):
            return "<opaque>"

    # the whole top-level value is marked, so `Traces.replayable` tells the call cannot be replayed
    assert roundtrip([1, Opaque()]) == NonReplayable(type="list", repr="[1, <opaque>]")
    back = roundtrip(Opaque())
    assert back.repr == "<opaque>" and back.type.endswith("Opaque")


def test_broken_repr_and_cycles_never_raise():
    class Broken:
        def __repr__(self):
            raise RuntimeError("no")

    assert isinstance(roundtrip(Broken()), NonReplayable)
    cycle: list = [1]
    cycle.append(cycle)
    assert isinstance(roundtrip(cycle), NonReplayable)


def test_large_and_object_arrays_are_not_stored():
    big = np.zeros(_encoding.MAX_ARRAY_BYTES // 8 + 1)
    back = roundtrip(big)
    assert isinstance(back, NonReplayable) and back.type == "numpy.ndarray"
    assert isinstance(roundtrip(np.array([object()], dtype=object)), NonReplayable)


def test_enum_or_dataclass_that_cannot_be_imported_is_marked():
    Local = enum.Enum("Local", "A B")  # not importable under its qualname
    assert isinstance(roundtrip(Local.A), NonReplayable)
    text = _encoding.dumps(Point(1.0, 2.0)).replace("test_encoding:Point", "no_such_module_xyz:Point")
    assert isinstance(_encoding.loads(text), NonReplayable)


def test_markers_roundtrip():
    assert roundtrip(Redacted("abc")) == Redacted("abc")
    assert roundtrip(NonReplayable("T", "r")) == NonReplayable("T", "r")


def test_subclasses_keep_the_value():
    class MyStr(str):
        pass

    from collections import OrderedDict, defaultdict

    assert roundtrip(MyStr("x")) == "x"
    assert roundtrip(OrderedDict(a=1)) == {"a": 1}
    assert roundtrip(defaultdict(list, a=[1])) == {"a": [1]}


# -- decoding names nothing it may call ---------------------------------------------------------

class Perm(enum.Flag):
    R = 1
    W = 2


@dataclasses.dataclass(frozen=True, slots=True)
class Slotted:
    a: int
    b: str = "x"


class Outer:
    @dataclasses.dataclass
    class Inner:
        v: int


def test_more_classes_roundtrip():
    assert same(roundtrip(Slotted(1, "y")), Slotted(1, "y"))
    assert same(roundtrip(Outer.Inner(3)), Outer.Inner(3))
    assert roundtrip(Perm.R | Perm.W) is Perm.R | Perm.W  # a flag combination, found by value
    assert roundtrip([Perm.W, Level.LOW]) == [Perm.W, Level.LOW]


def test_resolve_class_reads_only_imported_modules():
    assert _encoding.resolve_class(f"{__name__}:Outer.Inner") is Outer.Inner
    assert _encoding.resolve_class("collections:OrderedDict") is __import__("collections").OrderedDict
    for name in ["collections:OrderedDict.__class__", "os:system", "os:sep", "os:path", "builtins:len",
                 "builtins:__import__", "no_such_module_qq:X", "collections:", ":X", "collections",
                 "collections:Ordered Dict", f"{__name__}:Outer.<locals>.X", 5, None, "a..b:X"]:
        assert _encoding.resolve_class(name) is None, name


def test_old_namedtuple_rows_and_unknown_ones():
    assert roundtrip(Pair(1, 2)) == Pair(1, 2)
    assert _encoding.decode({"$nt": [f"{__name__}:Pair", [1, 2]]}) == Pair(1, 2)  # rows without a repr
    gone = _encoding.decode({"$nt": ["no_such_module_qq:Pair", [1, 2]]})
    assert gone == NonReplayable(type="no_such_module_qq.Pair", repr="Pair(1, 2)")


def test_dataclass_rows_must_match_the_declared_fields():
    text = _encoding.dumps(Point(1.0, 2.0))
    payload = json.loads(text)
    payload["$dc"][1]["z"] = 3
    assert isinstance(_encoding.decode(payload), NonReplayable)
    del payload["$dc"][1]["z"], payload["$dc"][1]["x"]
    assert isinstance(_encoding.decode(payload), NonReplayable)


@pytest.mark.parametrize("payload", [
    {"$nd": ["O", [1], "AAAAAAAAAAA="]}, {"$nd": ["|O", [1], "AAAAAAAAAAA="]}, {"$np": ["O", 1]},
    {"$nd": [[["a", "O"]], [1], "AAAAAAAAAAA="]}, {"$np": [{"names": ["a"], "formats": ["O"]}, 1]},
    {"$nd": ["V8", [1], "AAAAAAAAAAA="]}, {"$nd": ["<f8", [-1], "AAAAAAAAAAA="]}, {"$np": ["<f8", "1"]},
    {"$dec": ["1"]}, {"$zz": 1}, {"$t": [1], "$d": []},
])
def test_odd_payloads_raise_instead_of_decoding(payload):
    with pytest.raises(Exception):
        _encoding.decode(payload)


def test_paths_only_from_pathlib_path_classes():
    import pathlib

    assert _encoding.decode({"$path": ["PosixPath", "/a"]}) == pathlib.PosixPath("/a")
    assert type(_encoding.decode({"$path": ["WindowsPath", "c:/a"]})) is pathlib.PureWindowsPath
    assert type(_encoding.decode({"$path": ["os", "/a"]})) is pathlib.PurePosixPath


def test_trusted_modules_argument_is_checked():
    from probes._errors import InvalidArgument

    for bad in ("mod", 3, [None], ["a b"]):
        with pytest.raises(InvalidArgument, match="trusted_modules="):
            _encoding.loads("1", trusted_modules=bad)
    assert _encoding.loads("1", trusted_modules=["a.b"]) == 1
