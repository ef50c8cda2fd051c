"""Schema inference, declared schemas, domain checks and sampling."""

import enum
import json
import math
from typing import Literal

import numpy as np
import pytest
from hypothesis import given, settings

from probes import Field, InvalidArgument, OutputSpec, Schema, SchemaError, Traces, strategy


class Zone(enum.Enum):
    EU = "eu"
    US = "us"


def fee(weight: float, zone: str, express: bool, items: int) -> float:
    if weight < 0:
        raise ValueError("negative weight")
    base = 5.0 if zone == "EU" else 9.0
    if weight > 2:
        base += 3
    return (base * 1.5 if express else base) + items


def classify(score: float) -> str:
    return "high" if score > 0.5 else "low"


def arm(x: float, y: float) -> tuple:
    return (x + y, x - y)


def digit(n: int) -> int:
    return n % 7


def untyped(a, b):
    return a * 2 if b else a


SPECS = dict(weight=(-1.0, 10.0), zone=["EU", "US"], items=(0, 3))


def test_from_function_kinds_and_ranges():
    schema = Schema.from_function(fee, **SPECS)
    assert schema.names == ["weight", "zone", "express", "items"]
    assert [f.kind for f in schema.fields] == ["real", "categorical", "boolean", "integer"]
    assert schema["weight"].low == -1.0 and schema["weight"].high == 10.0
    assert schema["zone"].categories == ("EU", "US")
    assert schema.output.kind == "real"
    assert schema.output.raises and schema.output.error_types == ("ValueError",)


def test_from_function_output_kinds():
    assert Schema.from_function(classify, score=(0.0, 1.0)).output.kind == "label"
    assert Schema.from_function(classify, score=(0.0, 1.0)).output.labels == ("high", "low")
    vector = Schema.from_function(arm, x=(0.0, 1.0), y=(0.0, 1.0)).output
    assert vector.kind == "vector" and vector.length == 2 and vector.python_type == "tuple"
    assert Schema.from_function(digit, n=(0, 1000)).output.kind == "label"


def test_from_function_without_probe_uses_declared_output():
    def explode(x: float) -> float:
        raise AssertionError("must not be called")

    schema = Schema.from_function(explode, x=(0.0, 1.0), probe=0)
    assert schema.output.kind == "none"
    assert Schema.from_function(explode, x=(0.0, 1.0), output="real").output.kind == "real"


def test_enum_and_literal_hints_give_categories_without_spec():
    def f(zone: Zone, mode: Literal["a", "b"], flag: bool) -> float:
        return 1.0

    schema = Schema.from_function(f)
    assert set(schema["zone"].categories) == {Zone.EU, Zone.US}
    assert schema["mode"].categories == ("a", "b")
    assert schema["flag"].kind == "boolean"
    restored = Schema.from_json(schema.to_json())
    assert restored == schema


def test_missing_spec_names_argument_and_fix():
    with pytest.raises(InvalidArgument, match=r"weight=None : has no spec.*weight=\(low, high\)"):
        Schema.from_function(fee, zone=["EU"], items=(0, 1))


def test_unknown_spec_name_is_rejected():
    with pytest.raises(InvalidArgument, match="colour"):
        Schema.from_function(fee, colour=["red"], **SPECS)


def test_bad_range_is_rejected():
    with pytest.raises(InvalidArgument, match=r"low must be <= high"):
        Schema.from_function(fee, weight=(5.0, 1.0), zone=["EU"], items=(0, 1))


def test_variadic_functions_cannot_be_described():
    def f(*args, **kwargs):
        return 0

    with pytest.raises(SchemaError, match=r"\*args"):
        Schema.from_function(f)


def test_infer_from_traces_uses_hints_and_observed_values():
    declared = Schema.from_function(fee, **SPECS)
    traces = Traces.from_calls(fee, declared.sample(300, seed=3))
    inferred = Schema.infer(fee, traces)
    assert [f.kind for f in inferred.fields] == ["real", "categorical", "boolean", "integer"]
    weights = [kw["weight"] for kw in traces.inputs]
    assert inferred["weight"].low == min(weights) and inferred["weight"].high == max(weights)
    assert inferred.output.raises


def test_infer_without_hints_reads_values():
    inputs = [{"a": 1.5, "b": True}, {"a": -2.0, "b": False}, {"a": 3.0, "b": True}]
    schema = Schema.infer(untyped, Traces.from_calls(untyped, inputs))
    assert [f.kind for f in schema.fields] == ["real", "boolean"]
    assert (schema["a"].low, schema["a"].high) == (-2.0, 3.0)


def test_infer_vector_argument():
    def norm(v: list) -> float:
        return float(np.linalg.norm(v))

    traces = Traces.from_calls(norm, [{"v": [1.0, 2.0, 3.0]}, {"v": [0.0, -1.0, 5.0]}])
    schema = Schema.infer(norm, traces)
    assert schema["v"].kind == "vector" and schema["v"].length == 3
    assert (schema["v"].low, schema["v"].high) == (-1.0, 5.0)
    sample = schema.sample(4, seed=1)
    assert all(isinstance(kw["v"], list) and len(kw["v"]) == 3 for kw in sample)


def test_infer_rejects_empty_traces_with_fix():
    with pytest.raises(InvalidArgument, match="from_function"):
        Schema.infer(fee, Traces.empty())


def test_contains_reports_first_reason():
    schema = Schema.from_function(fee, **SPECS)
    good = {"weight": 1.0, "zone": "EU", "express": False, "items": 2}
    assert schema.contains(good) == (True, "")
    cases = {
        "weight": (float("nan"), "not finite"),
        "zone": ("MARS", "not a known category"),
        "express": (1, "not a bool"),
        "items": (1.5, "not a whole number"),
    }
    for name, (value, reason) in cases.items():
        ok, why = schema.contains({**good, name: value})
        assert not ok and reason in why and name in why
    assert schema.contains({**good, "weight": 11.0})[1].endswith("outside the range [-1.0, 10.0]")
    assert "missing argument 'zone'" in schema.contains({"weight": 1.0})[1]
    assert "unexpected" in schema.contains({**good, "extra": 1})[1]


def test_sampling_is_seeded_and_inside_domain():
    schema = Schema.from_function(fee, **SPECS)
    first, again = schema.sample(200, seed=7), schema.sample(200, seed=7)
    assert first == again
    assert first != schema.sample(200, seed=8)
    assert all(schema.contains(kw)[0] for kw in first)
    assert {kw["zone"] for kw in first} == {"EU", "US"}
    assert all(type(kw["items"]) is int and type(kw["express"]) is bool for kw in first)


def test_widen_stretches_numeric_ranges_only():
    schema = Schema.from_function(fee, **SPECS).widen(0.1)
    assert schema["weight"].low == pytest.approx(-2.1) and schema["weight"].high == pytest.approx(11.1)
    assert schema["zone"].categories == ("EU", "US")
    with pytest.raises(InvalidArgument, match="factor"):
        schema.widen(-1)


@settings(max_examples=60, derandomize=True)
@given(strategy(Schema.from_function(fee, **SPECS)))
def test_strategy_draws_inside_domain(kwargs):
    schema = Schema.from_function(fee, **SPECS)
    assert schema.contains(kwargs) == (True, "")


@settings(max_examples=60, derandomize=True)
@given(strategy(Schema.from_function(fee, **SPECS), widen=0.5))
def test_widened_strategy_can_leave_observed_range(kwargs):
    assert -6.5 <= kwargs["weight"] <= 15.5


def test_strategy_rejects_non_schema():
    with pytest.raises(InvalidArgument, match="schema"):
        strategy({"weight": (0, 1)})


def test_json_round_trip_and_manifest_friendliness():
    schema = Schema.from_function(fee, **SPECS)
    text = schema.to_json()
    assert json.loads(text)["fields"][0] == {"name": "weight", "kind": "real", "low": -1.0, "high": 10.0}
    assert Schema.from_json(text) == schema
    with pytest.raises(SchemaError):
        Schema.from_dict({"nothing": 1})


def test_field_validation_messages():
    with pytest.raises(InvalidArgument, match="kind"):
        Field("x", "complex")
    with pytest.raises(InvalidArgument, match="finite"):
        Field("x", "real", low=0.0, high=math.inf)
    with pytest.raises(InvalidArgument, match="kind"):
        OutputSpec("picture")


def test_output_quantum_detects_rounded_amounts_only():
    from case_studies import shipping_fee

    traces = Traces.from_calls(shipping_fee.shipping_fee, shipping_fee.generate_inputs(300, seed=1))
    assert Schema.infer(shipping_fee.shipping_fee, traces).output.quantum == 0.01
    smooth = Traces.from_calls(lambda x: x * 1.2345678, [{"x": float(i) / 7} for i in range(50)])
    assert Schema.infer(lambda x: x, smooth).output.quantum is None
    few = Traces.from_calls(lambda x: 1.5, [{"x": float(i)} for i in range(50)])
    assert Schema.infer(lambda x: x, few).output.quantum is None


def test_contains_on_integer_fields_never_raises_for_nan_or_inf():
    schema = Schema.from_function(fee, **SPECS)
    good = {"weight": 1.0, "zone": "EU", "express": False, "items": 2}
    for bad in (float("nan"), float("inf"), -float("inf")):
        ok, why = schema.contains({**good, "items": bad})
        assert not ok and "not finite" in why
