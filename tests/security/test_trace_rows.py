"""Trace rows are data: loading crafted rows runs nothing and imports nothing they name.

Each crafted row is written straight into the SQLite file (as someone with write access to a
shared store could). A sentinel module on a temporary `sys.path` entry writes a marker file
when it is imported and when any of its hooks runs (a function, `__call__`, `__getitem__`, a
metaclass hook, `__new__`, a property setter, a module `__getattr__`); no marker may appear.
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
import json
import sqlite3
import sys
import textwrap
import uuid
from collections import namedtuple

import pytest

from probes._encoding import dumps, encode
from probes._record import record
from probes._store import SkippedTracesWarning, TraceRecord, TraceStore, encode_inputs
from probes._store_sqlite import SQLiteStore
from probes._traces import ErrorInfo, NonReplayable

SENTINEL = '''
import collections, dataclasses, enum, os

MARKS = {marks!r}


def mark(what):
    with open(os.path.join(MARKS, what), "w") as handle:
        handle.write(what)


mark("imported")


def boom(*args, **kwargs):
    mark("boom_called")
    return ("boom",)


class Trap:
    def __call__(self, *args, **kwargs):
        mark("trap_called")
        return ("trap",)

    def __getitem__(self, key):
        mark("trap_getitem")
        return key


INSTANCE = Trap()
NUMBER = 7


def __getattr__(name):
    mark("module_getattr")
    raise AttributeError(name)


class Color(enum.Enum):
    RED = "red"
    BLUE = 2


class LoudMeta(enum.EnumMeta):
    def __getitem__(cls, name):
        mark("enum_getitem")
        return super().__getitem__(name)

    def __call__(cls, *args, **kwargs):
        mark("enum_call")
        return super().__call__(*args, **kwargs)


class Loud(enum.Enum, metaclass=LoudMeta):
    A = 1

    @classmethod
    def _missing_(cls, value):
        mark("enum_missing")
        return cls.A


@dataclasses.dataclass(frozen=True)
class Point:
    x: float
    y: float


@dataclasses.dataclass
class Greedy:
    x: int = 0

    def __new__(cls, *args, **kwargs):
        mark("dataclass_new")
        return super().__new__(cls)

    def __post_init__(self):
        mark("post_init")


@dataclasses.dataclass
class Setter:
    x: int = 0


Setter.x = property(lambda self: 1, lambda self, value: mark("property_setter"))

Pair = collections.namedtuple("Pair", "a b")


class LoudPair(collections.namedtuple("LoudPair", "a b")):
    def __new__(cls, *args):
        mark("namedtuple_new")
        return super().__new__(cls, *args)


class Outer:
    class Inner(enum.Enum):
        X = 1
'''


@pytest.fixture
def sentinels(tmp_path, monkeypatch):
    """`make(imported)`: a fresh sentinel module name (imported now when asked), and `marks()`."""
    marks = tmp_path / "marks"
    marks.mkdir()
    folder = tmp_path / "mods"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    names: list[str] = []

    class Sentinels:
        def make(self, imported: bool) -> str:
            name = f"ns_sentinel_{uuid.uuid4().hex[:10]}"
            (folder / f"{name}.py").write_text(textwrap.dedent(SENTINEL.format(marks=str(marks))))
            importlib.invalidate_caches()
            names.append(name)
            if imported:
                importlib.import_module(name)
                (marks / "imported").unlink()
            return name

        def marks(self) -> list[str]:
            return sorted(p.name for p in marks.iterdir())

    yield Sentinels()
    for name in names:
        sys.modules.pop(name, None)


def crafted_store(path, payloads: list, output=None) -> None:
    """A store with one good row, then one row per crafted payload (as input `v`), written by hand."""
    store = SQLiteStore(path)
    store.add([TraceRecord("m:f", "h1", encode_inputs({"v": 0}), dumps(0), None, None, None, None)])
    store.close()
    connection = sqlite3.connect(path)
    (function_id,) = connection.execute("SELECT id FROM functions WHERE name = 'm:f'").fetchone()
    rows = [(function_id, json.dumps({"v": payload}), json.dumps(output if output is not None else payload))
            for payload in payloads]
    connection.executemany("INSERT INTO traces (function_id, inputs, output) VALUES (?, ?, ?)", rows)
    connection.commit()
    connection.close()


def load_crafted(path, **options):
    with TraceStore.open(f"sqlite:///{path}", **options) as store:
        return store.load("m:f", dedupe=False)


def test_rows_naming_callables_in_imported_modules_call_nothing(tmp_path, sentinels):
    mod = sentinels.make(imported=True)
    shell_marker = tmp_path / "marks" / "shell_ran"
    payloads = [
        {"$nt": [f"{mod}:boom", [1, 2]]},                      # old code: boom(1, 2)
        {"$nt": ["os:system", [f"touch {shell_marker}"]]},     # old code: os.system("touch ...")
        {"$e": [f"{mod}:INSTANCE", "RED", "red", "<x>"]},      # old code: INSTANCE["RED"]
        {"$nt": [f"{mod}:INSTANCE", [1]]},                     # old code: INSTANCE(1)
        {"$e": [f"{mod}:Loud", "A", 1, "<Loud.A>"]},           # old code: LoudMeta.__getitem__
        {"$e": [f"{mod}:Loud", "NOPE", 99, "<Loud.NOPE>"]},    # enum lookup must not reach _missing_
        {"$dc": [f"{mod}:Greedy", {"x": 1}, "Greedy(x=1)"]},   # old code: Greedy.__new__
        {"$dc": [f"{mod}:Setter", {"x": 1}, "Setter(x=1)"]},   # old code: the property setter
        {"$nt": [f"{mod}:LoudPair", [1, 2]]},                  # old code: LoudPair.__new__
        {"$dc": [f"{mod}:boom", {"x": 1}, "boom(x=1)"]},
        {"$e": [f"{mod}:Missing", "A", 1, "<?>"]},             # old code: the module __getattr__
    ]
    crafted_store(tmp_path / "t.db", payloads)
    traces = load_crafted(tmp_path / "t.db")
    assert sentinels.marks() == []
    assert not shell_marker.exists()
    assert traces.skipped == 0 and len(traces) == 1 + len(payloads)
    values = [kw["v"] for kw in traces.inputs[1:]]
    module = sys.modules[mod]
    # real classes of the right kind come back, rebuilt without their hooks (no marker above):
    # the member from the member map, the dataclass by object.__new__ and its fields, the
    # namedtuple by tuple.__new__
    assert values[4] is module.Loud.A
    assert type(values[6]) is module.Greedy and values[6].x == 1
    assert type(values[8]) is module.LoudPair and values[8] == (1, 2)  # tuple.__new__, not LoudPair.__new__
    others = values[:4] + [values[5], values[7]] + values[9:]
    assert all(isinstance(v, NonReplayable) for v in others), others
    assert values[0].type == f"{mod}.boom" and values[5].repr == "<Loud.NOPE>"
    assert traces.outputs[1:] == values


def test_rows_naming_modules_not_imported_import_nothing(tmp_path, sentinels):
    mod = sentinels.make(imported=False)
    payloads = [
        {"$e": [f"{mod}:Color", "RED", "red", "<Color.RED: 'red'>"]},
        {"$dc": [f"{mod}:Point", {"x": 1.0, "y": 2.0}, "Point(x=1.0, y=2.0)"]},
        {"$nt": [f"{mod}:Pair", [1, 2]]},
        {"$nt": [f"{mod}:boom", [1]]},
    ]
    crafted_store(tmp_path / "t.db", payloads)
    traces = load_crafted(tmp_path / "t.db")
    assert sentinels.marks() == [] and mod not in sys.modules
    values = [kw["v"] for kw in traces.inputs[1:]]
    assert all(isinstance(v, NonReplayable) for v in values)
    assert [v.repr for v in values[:2]] == ["<Color.RED: 'red'>", "Point(x=1.0, y=2.0)"]
    assert values[2].type == f"{mod}.Pair" and "1" in values[2].repr


def test_dunder_and_malformed_paths_are_refused(tmp_path, sentinels):
    mod = sentinels.make(imported=True)
    victim = sentinels.make(imported=False)
    payloads = [
        {"$nt": ["builtins:__import__", [victim]]},             # old code: __import__(victim)
        {"$nt": [f"{mod}:boom.__call__", [1]]},                # old code: boom.__call__(1)
        {"$nt": [f"{mod}:Pair.__new__.__globals__", [1]]},
        {"$dc": [f"{mod}:Point.__class__", {"x": 1.0, "y": 2.0}, "p"]},
        {"$e": [f"{mod}:Color.__class__", "RED", "red", "c"]},
        {"$e": [f"{mod}:Color.RED.__class__", "RED", "red", "c"]},  # through a non-class object
        {"$nt": [f"{mod}:Color.RED", [1]]},                    # a member, not a class
        {"$nt": [f"{mod}:Outer.<locals>.X", [1]]},
        {"$nt": [f"{mod}:", [1]]},
        {"$nt": [f"{mod}", [1]]},
        {"$nt": [f"{victim}.sub:Pair", [1]]},
        {"$nt": [3, [1]]},
    ]
    crafted_store(tmp_path / "t.db", payloads)
    traces = load_crafted(tmp_path / "t.db")
    assert sentinels.marks() == [] and victim not in sys.modules
    values = [kw["v"] for kw in traces.inputs[1:]]
    assert traces.skipped == 0 and all(isinstance(v, NonReplayable) for v in values), values


def test_objects_of_the_wrong_kind_are_refused(tmp_path, sentinels):
    mod = sentinels.make(imported=True)
    payloads = [
        {"$dc": [f"{mod}:INSTANCE", {"x": 1}, "i"]},
        {"$e": [f"{mod}:INSTANCE", "A", 1, "i"]},
        {"$nt": [f"{mod}:INSTANCE", [1]]},
        {"$dc": [f"{mod}:NUMBER", {}, "n"]},
        {"$e": [f"{mod}:Point", "x", 1, "p"]},                 # a dataclass named as an enum
        {"$dc": [f"{mod}:Color", {"RED": 1}, "c"]},            # an enum named as a dataclass
        {"$nt": [f"{mod}:Point", [1.0, 2.0]]},                 # a dataclass named as a namedtuple
        {"$nt": [f"{mod}:Trap", [1.0]]},                       # a class, but no tuple
        {"$dc": [f"{mod}:Point", {"x": 1.0}, "p"]},            # fields that do not match
        {"$dc": [f"{mod}:Point", {"x": 1.0, "y": 2.0, "__class__": 1}, "p"]},
        {"$nt": [f"{mod}:Pair", [1, 2, 3]]},                   # wrong number of fields
        {"$e": [f"{mod}:Color", "__class__", None, "c"]},
        {"$nr": ["os.system", "plain marker"]},
    ]
    crafted_store(tmp_path / "t.db", payloads)
    traces = load_crafted(tmp_path / "t.db")
    assert sentinels.marks() == []
    values = [kw["v"] for kw in traces.inputs[1:]]
    assert traces.skipped == 0 and all(isinstance(v, NonReplayable) for v in values), values


def test_error_types_import_nothing(sentinels):
    victim = sentinels.make(imported=False)
    assert ErrorInfo(f"{victim}.Trap", "x").exception_class() is RuntimeError
    assert ErrorInfo("__import__", "x").exception_class() is RuntimeError
    assert ErrorInfo(f"{victim}.boom.__class__", "x").exception_class() is RuntimeError
    assert sentinels.marks() == [] and victim not in sys.modules
    assert ErrorInfo("json.decoder.JSONDecodeError", "x").exception_class() is json.JSONDecodeError


def test_garbage_row_among_good_ones_loses_only_itself(tmp_path):
    path = tmp_path / "t.db"
    store = SQLiteStore(path)
    store.add([TraceRecord("m:f", "h1", encode_inputs({"v": i}), dumps(i * 2), None, None, None, None)
               for i in range(3)])
    store.close()
    connection = sqlite3.connect(path)
    connection.execute("INSERT INTO traces (function_id, inputs, output) VALUES (1, ?, ?)",
                       ('{"v": {"$nd": ["O", [1], "AAAAAAAAAAA="]}}', "1"))
    connection.execute("INSERT INTO traces (function_id, inputs, output) VALUES (1, ?, ?)",
                       (encode_inputs({"v": 3}), dumps(6)))
    connection.commit()
    connection.close()
    with TraceStore.open(f"sqlite:///{path}") as reopened:
        with pytest.warns(SkippedTracesWarning, match=r"1 stored trace\(s\) of m:f") as caught:
            traces = reopened.load("m:f")
    assert str(path) in str(caught[0].message)
    assert [kw["v"] for kw in traces.inputs] == [0, 1, 2, 3] and traces.outputs == [0, 2, 4, 6]
    assert traces.skipped == 1


# -- what still works ---------------------------------------------------------------------------

def test_real_values_still_roundtrip_through_record(tmp_path, sentinels):
    mod = importlib.import_module(sentinels.make(imported=True))
    store = SQLiteStore(tmp_path / "t.db")

    @record(store=store)
    def use(color, point, pair, loud):
        return pair

    use(mod.Color.BLUE, mod.Point(1.0, 2.5), mod.Pair(1, [2]), mod.Loud.A)
    assert record.flush(timeout=60)
    traces = store.load(use)
    store.close()
    assert traces.inputs == [{"color": mod.Color.BLUE, "point": mod.Point(1.0, 2.5), "pair": mod.Pair(1, [2]),
                              "loud": mod.Loud.A}]
    assert type(traces.outputs[0]) is mod.Pair and traces.skipped == 0
    assert sentinels.marks() == []


def test_trusted_modules_may_be_imported(tmp_path, sentinels):
    name = sentinels.make(imported=True)
    mod = sys.modules[name]
    path = tmp_path / "t.db"
    with SQLiteStore(path) as store:
        store.add([TraceRecord("m:f", "h1", encode_inputs({"c": mod.Color.RED, "p": mod.Point(3.0, 4.0),
                                                             "n": mod.Pair(5, 6), "i": mod.Outer.Inner.X}),
                               dumps(mod.Pair(1, 2)), None, None, None, None)])
    del sys.modules[name]  # as in a fresh process
    untrusted = load_crafted(path)
    assert name not in sys.modules and sentinels.marks() == []
    assert all(isinstance(v, NonReplayable) for v in untrusted.inputs[0].values())
    trusted = load_crafted(path, trusted_modules=[name])
    assert sentinels.marks() == ["imported"]
    again = sys.modules[name]
    assert again is not mod
    assert trusted.inputs[0] == {"c": again.Color.RED, "p": again.Point(3.0, 4.0), "n": again.Pair(5, 6),
                                 "i": again.Outer.Inner.X}
    assert type(trusted.outputs[0]) is again.Pair
    assert ErrorInfo(f"{name}.Trap", "x").exception_class() is RuntimeError  # not an exception class


def test_trusted_modules_per_load_and_for_error_types(tmp_path, sentinels):
    name = sentinels.make(imported=False)
    path = tmp_path / "t.db"
    crafted_store(path, [{"$e": [f"{name}:Color", "BLUE", 2, "<Color.BLUE: 2>"]}])
    with TraceStore.open(f"sqlite:///{path}") as store:
        assert isinstance(store.load("m:f").inputs[1]["v"], NonReplayable) and name not in sys.modules
        loaded = store.load("m:f", trusted_modules=(name,))
    assert loaded.inputs[1]["v"] is sys.modules[name].Color.BLUE
    sys.modules.pop(name)
    assert ErrorInfo(f"{name}.Color", "x").exception_class(trusted_modules=[name]) is RuntimeError
    assert name in sys.modules  # listed, so it could be imported; an enum is no exception class


def test_encoded_form_names_the_class():
    Pair = namedtuple("Pair", "a b")
    assert encode(Pair(1, 2))["$nt"][2] == "Pair(a=1, b=2)"

    @dataclasses.dataclass
    class Local:
        x: int

    class E(enum.Enum):
        A = 1

    assert encode(Local(1))["$dc"][0].endswith("Local") and encode(E.A)["$e"][1] == "A"
