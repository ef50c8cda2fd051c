"""Distilled rules are compiled in this process: no name, threshold, category or exception type
given to the emitter can become code, and the checker in front of `exec` accepts only what the
emitters write.

Trees are built by hand (as a crafted surrogate file or schema could shape them); a sentinel
module on a temporary `sys.path` entry, or an `open(marker)` smuggled into a name, writes a
marker file if anything runs; no marker may appear.
"""

from __future__ import annotations

import enum
import sys
import uuid

import numpy as np
import pytest

from probes import ErrorInfo, InvalidArgument, NeuroswapError, Schema, SchemaError
from probes._schema import Field, OutputSpec
from explain._codegen import compile_source, emit_source
from explain._distill import Model
from explain._safe_source import SAFE_CALLS, UnsafeSourceError, check_generated_source
from explain._tree import OK, Features, Leaf, Tree


def stump(threshold, feature=0, leaves=(Leaf("const", 1.0), Leaf("const", 2.0)), classes=None, strict=False):
    """A one-cut tree: `x[feature] <= threshold` -> leaves[0], else leaves[1]."""
    return Tree(feature=np.array([feature, -2, -2]), threshold=np.array([threshold, -2.0, -2.0], dtype=object),
                strict=np.array([strict, False, False]), left=np.array([1, -1, -1]), right=np.array([2, -1, -1]),
                leaves={1: leaves[0], 2: leaves[1]}, n_samples=np.array([10, 5, 5]), classes=list(classes or []))


def real_schema(*fields, python_type="float"):
    return Schema(tuple(fields), OutputSpec("real", python_type=python_type), "m:f")


def emit(schema, model, name="f"):
    return emit_source(model, Features(schema), schema, name=name, docstring="test")


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "ran.marker"


# -- the emitter ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [
    "x=__import__('os').system('echo hi')", "x): pass\nimport os\ndef g(y", "class", "1x", "x y",
    "__builtins__", "",
])
def test_a_field_name_that_is_code_is_refused(name):
    schema = real_schema(Field(name, "real", low=0.0, high=1.0))  # Field() itself takes any name
    with pytest.raises(UnsafeSourceError, match="field name"):
        emit(schema, Model("real", stump(0.5)))


def test_the_refusal_is_a_neuroswap_argument_error():
    schema = real_schema(Field("x; y", "real", low=0.0, high=1.0))
    with pytest.raises(InvalidArgument):
        emit(schema, Model("real", stump(0.5)))
    assert issubclass(UnsafeSourceError, NeuroswapError) and issubclass(UnsafeSourceError, ValueError)


def test_a_category_holding_code_is_written_as_a_plain_string(marker):
    evil = f"a') or open({str(marker)!r}, 'w') or ('"
    schema = real_schema(Field("zone", "categorical", categories=(evil, "b")))
    source = emit(schema, Model("real", stump(0.5)))  # feature 0 is the flag zone == evil
    fn = compile_source(source, "f")
    assert fn(zone=evil) == 2.0 and fn(zone="b") == 1.0
    assert not marker.exists()


def test_an_enum_member_name_that_is_code_is_refused(marker):
    Evil = enum.Enum("Evil", {f"A or open({str(marker)!r}, 'w')": 1, "B": 2})
    Evil.__module__ = __name__
    schema = real_schema(Field("zone", "categorical", categories=tuple(Evil)))
    with pytest.raises(UnsafeSourceError, match="enum member"):
        fn = compile_source(emit(schema, Model("real", stump(0.5))), "f")
        fn(zone=Evil.B)
    assert not marker.exists()


@pytest.mark.parametrize("threshold, below, above", [
    (float("inf"), 1.0, 1.0), (float("-inf"), 2.0, 2.0), (float("nan"), 2.0, 2.0),
])
def test_non_finite_thresholds_are_written_as_numbers(threshold, below, above):
    schema = real_schema(Field("x", "real", low=0.0, high=1.0))
    fn = compile_source(emit(schema, Model("real", stump(threshold))), "f")
    assert fn(x=0.25) == below and fn(x=0.75) == above


@pytest.mark.parametrize("threshold", ["0.5 or __import__('os')", object()])
def test_a_threshold_that_is_not_a_number_is_refused(threshold):
    schema = real_schema(Field("x", "real", low=0.0, high=1.0))
    with pytest.raises((TypeError, ValueError)):
        emit(schema, Model("real", stump(threshold)))


def test_a_leaf_value_that_is_not_a_number_is_refused():
    schema = real_schema(Field("x", "real", low=0.0, high=1.0))
    leaves = (Leaf("const", "1.0 + __import__('os').getpid()"), Leaf("const", 2.0))
    with pytest.raises((TypeError, ValueError)):
        emit(schema, Model("real", stump(0.5, leaves=leaves)))


def test_a_label_that_is_not_a_literal_is_refused():
    class Sneaky:
        def __repr__(self):
            return "__import__('os').system('echo hi')"

    schema = Schema((Field("x", "real", low=0.0, high=1.0),), OutputSpec("label", labels=("a",)), "m:f")
    tree = stump(0.5, leaves=(Leaf("class", 0), Leaf("class", 1)), classes=["a", Sneaky()])
    with pytest.raises(UnsafeSourceError, match="literal"):
        emit(schema, Model("label", tree))


@pytest.mark.parametrize("name, expected", [
    ("x²", "def x_("), ("f(): pass\nimport os\ndef g", "def f____pass_import_os_def_g("), ("class", "def _class("),
    ("__import__", "def rules__import__("), ("ﬁne", "def fine("),
])
def test_the_function_name_is_made_an_identifier(name, expected):
    schema = real_schema(Field("x", "real", low=0.0, high=1.0))
    source = emit(schema, Model("real", stump(0.5)), name=name)
    assert expected in source
    assert compile_source(source, name)(x=0.1) == 1.0


@pytest.fixture
def sentinel(tmp_path, monkeypatch, marker):
    name = f"neuroswap_sentinel_{uuid.uuid4().hex[:12]}"
    folder = tmp_path / "sentinel_path"
    folder.mkdir()
    (folder / f"{name}.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n\n"
                                       "class Boom(Exception):\n    pass\n")
    monkeypatch.syspath_prepend(str(folder))
    yield name
    sys.modules.pop(name, None)


def test_an_exception_type_naming_an_unimported_module_is_not_imported(sentinel, marker):
    schema = real_schema(Field("x", "real", low=0.0, high=1.0))
    guard = stump(0.5, leaves=(Leaf("class", 0), Leaf("class", 1)), classes=[OK, ErrorInfo(f"{sentinel}.Boom", "no")])
    source = emit(schema, Model("real", stump(0.5), guard))
    assert not marker.exists() and sentinel not in sys.modules
    fn = compile_source(source, "f")
    with pytest.raises(RuntimeError, match=f"{sentinel}.Boom: no"):
        fn(x=0.75)
    assert not marker.exists() and sentinel not in sys.modules


@pytest.mark.parametrize("error_type", ["os.system('echo hi')", "os; import sys", "__import__('os').X", ""])
def test_an_exception_type_that_is_code_raises_a_runtime_error_with_its_text(error_type, marker):
    schema = real_schema(Field("x", "real", low=0.0, high=1.0))
    guard = stump(0.5, leaves=(Leaf("class", 0), Leaf("class", 1)), classes=[OK, ErrorInfo(error_type, "m")])
    fn = compile_source(emit(schema, Model("real", stump(0.5), guard)), "f")
    with pytest.raises(RuntimeError) as info:
        fn(x=0.75)
    assert str(info.value) == f"{error_type}: m"


def test_a_key_error_message_is_written_as_data():
    schema = real_schema(Field("x", "real", low=0.0, high=1.0))
    errors = [OK, ErrorInfo("KeyError", "__import__('os').getpid()"), ErrorInfo("KeyError", "('k', 1)")]
    tree = Tree(feature=np.array([0, -2, 0, -2, -2]), threshold=np.array([0.3, -2, 0.6, -2, -2]),
                strict=np.zeros(5, dtype=bool), left=np.array([1, -1, 3, -1, -1]), right=np.array([2, -1, 4, -1, -1]),
                leaves={1: Leaf("class", 0), 3: Leaf("class", 1), 4: Leaf("class", 2)},
                n_samples=np.ones(5), classes=errors)
    fn = compile_source(emit(schema, Model("real", stump(0.5), tree)), "f")
    with pytest.raises(KeyError) as info:
        fn(x=0.5)
    assert info.value.args == ("__import__('os').getpid()",)
    with pytest.raises(KeyError) as info:
        fn(x=0.9)
    assert info.value.args == (("k", 1),)


# -- compile_source and the checker ----------------------------------------------------------------

def test_compile_source_refuses_source_that_runs_code(marker):
    source = f"MARK = open({str(marker)!r}, 'w')\n\ndef f(x):\n    return 1.0\n"
    with pytest.raises(UnsafeSourceError, match="open"):
        compile_source(source, "f")
    assert not marker.exists()


EXACT_RULES = '''"""Exact rules (as another emitter writes them)."""
import math

FEES = {"A": 5.0, "B": 9.0, "C": 14.0}
SURCHARGE = {(True, "A"): 1.5, (False, "A"): 0.0}


def fee(weight: float, zone: str, express: bool, *, rounding: int = 2):
    """Docstring."""
    base = FEES[zone] + SURCHARGE[(express, "A")] if zone == "A" else FEES[zone]
    base += 6.0 if weight > 2.0 else 0.0
    total = base * 1.2 - weight / 3 + weight // 2 + (weight % 1.0) ** 2 - -1
    if not (2.0 < weight <= 5.0) and (zone in ("A", "B") or zone != "C") and express is not None:
        return round(max(total, 1.0), rounding)
    elif weight >= 5.0:
        return min(abs(total), float("inf")) + math.floor(weight) + math.ceil(weight) + math.pi
    if weight < 0:
        raise ValueError("weight must not be negative: " + zone)
    return int(total)
'''


def test_exact_rule_tables_arithmetic_and_math_calls_pass():
    check_generated_source(EXACT_RULES)
    fn = compile_source(EXACT_RULES, "fee")
    reference: dict = {}
    exec(compile(EXACT_RULES, "<reference>", "exec"), reference)  # the same text, unchecked
    for args in [(1.0, "A", True), (3.0, "B", False), (7.5, "C", True), (-1.0, "C", False)]:
        try:
            expected = reference["fee"](*args)
        except ValueError:
            with pytest.raises(ValueError):
                fn(*args)
            continue
        assert fn(*args) == expected
    assert {"math.floor", "math.ceil", "round", "min", "max", "abs"} <= SAFE_CALLS


@pytest.mark.parametrize("body", [
    "return __import__('os')",
    "return x.__class__",
    "return ().__class__.__bases__[0].__subclasses__()",
    "return math.__loader__",
    "return (lambda: 1)()",
    "return [i for i in x]",
    "return {i: i for i in x}",
    "return max(i for i in x)",
    "return eval('1')",
    "return exec('1')",
    "return getattr(x, 'real')",
    "return open",
    "return globals()",
    "return x.lower()",
    "return f'{x}'",
    "return max(*x)",
    "return max(**x)",
    "return {**x}",
    "return (y := 1)",
    "return __builtins__",
    "return 'a'.format(x)",
    "raise print('hi')",
    "raise SystemExit.__init__(1)",
    "while True:\n        pass",
    "for i in x:\n        pass",
    "try:\n        pass\n    except Exception:\n        pass",
    "with x:\n        pass",
    "global y",
    "del x",
    "assert x",
    "print('hi')",
    "import os",
    "def g():\n        return 1",
    "yield x",
    "a, b = x",
])
def test_the_checker_refuses_what_the_emitters_never_write(body):
    source = f"import math\n\n\ndef f(x):\n    {body}\n"
    with pytest.raises(UnsafeSourceError):
        check_generated_source(source)


@pytest.mark.parametrize("source", [
    "import os\n",
    "import math as __builtins__\n",
    "from os import system\n",
    "from builtins import eval\n",
    "from . import x\n",
    "from neuroswap_surely_not_imported import Boom\n",
    "class A:\n    pass\n",
    "@max\ndef f(x):\n    return 1\n",
    "async def f(x):\n    return 1\n",
    "if True:\n    X = 1\n",
    "def f(*args):\n    return 1\n",
    "def f(round):\n    return round(1.5)\n",
    "def f(ValueError):\n    raise ValueError('x')\n",
    "__builtins__ = {}\n",
    "def f(x):\n    return 1\n\nf(1)\n",
    "x = 1\x00\n",
    "def f(x:\n",
])
def test_the_checker_refuses_foreign_module_level_code(source):
    with pytest.raises(UnsafeSourceError):
        check_generated_source(source)


def test_the_checker_accepts_the_legacy_functions_own_exception_classes():
    source = ("from probes._errors import SchemaError\n\n\n"
              "def f(x: float):\n    if x < 0:\n        raise SchemaError('negative')\n    return x\n")
    fn = compile_source(source, "f")
    with pytest.raises(SchemaError):
        fn(-1.0)
    assert fn(2.0) == 2.0


def test_allowed_calls_can_be_narrowed_and_widened():
    source = "import math\n\n\ndef f(x):\n    return math.sqrt(x)\n"
    with pytest.raises(UnsafeSourceError, match="math.sqrt"):
        check_generated_source(source)
    check_generated_source(source, allowed_calls=SAFE_CALLS | {"math.sqrt"})
    with pytest.raises(UnsafeSourceError, match="round"):
        check_generated_source("def f(x):\n    return round(x)\n", allowed_calls={"min"})
