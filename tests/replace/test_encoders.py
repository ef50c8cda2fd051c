"""Encoding of inputs and outputs: kinds, automatic warps, JSON round trips, refusals."""

from __future__ import annotations

import enum
import json
import math

import numpy as np
import pytest

from probes import ErrorInfo, Field, OutOfDomainError, OutputSpec, Schema, Tolerance
from replace._encoding import InputEncoder
from replace._output_encoding import OutputEncoder, make_exception


class Color(enum.Enum):
    RED = 1
    BLUE = 2


def _schema() -> Schema:
    return Schema((
        Field("income", "real", low=0.0, high=400000.0),
        Field("temp", "real", low=-10.0, high=40.0),
        Field("kids", "integer", low=0, high=4),
        Field("age", "integer", low=0, high=120),
        Field("smoker", "boolean"),
        Field("zone", "categorical", categories=("EU", "NA", "ASIA")),
        Field("color", "categorical", categories=(Color.RED, Color.BLUE)),
        Field("v", "vector", low=-1.0, high=1.0, length=3, container="tuple"),
    ), OutputSpec("real"))


def _columns(n: int = 500, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    zone = np.empty(n, dtype=object)
    color = np.empty(n, dtype=object)
    for i in range(n):
        zone[i] = ["EU", "NA", "ASIA"][i % 3]
        color[i] = [Color.RED, Color.BLUE][i % 2]
    return {
        "income": np.clip(rng.lognormal(np.log(45000), 0.8, n), 0, 400000),
        "temp": rng.uniform(-10, 40, n),
        "kids": rng.integers(0, 5, n),
        "age": rng.integers(0, 121, n),
        "smoker": rng.random(n) < 0.3,
        "zone": zone,
        "color": color,
        "v": rng.uniform(-1, 1, (n, 3)),
    }


def test_kinds_get_their_encoding():
    enc = InputEncoder.fit(_schema(), _columns())
    codes = {c.name: c for c in enc.codes_}
    assert codes["income"].warp == "log"          # wide positive, skewed: log
    assert codes["temp"].warp == "none"           # uniform: plain standardisation
    assert codes["kids"].code == "onehot"         # few distinct integers: categories
    assert codes["age"].code == "real"            # many distinct integers: a number
    assert codes["smoker"].code == "binary"
    assert codes["zone"].code == "onehot" and codes["zone"].width == 3
    assert codes["v"].width == 3
    assert enc.width_ == 1 + 1 + 5 + 1 + 1 + 3 + 2 + 3
    assert "zone=EU" in enc.feature_names_ and "color=RED" in enc.feature_names_
    assert enc.feature_groups_["zone"] == [9, 10, 11]


def test_standardised_reals_are_well_scaled():
    columns = _columns(2000)
    X = InputEncoder.fit(_schema(), columns).encode(columns)
    assert X.dtype == np.float32
    assert abs(X[:, 0].mean()) < 0.05 and abs(X[:, 0].std() - 1) < 0.05  # log-warped income
    assert abs(X[:, 1].mean()) < 0.05 and abs(X[:, 1].std() - 1) < 0.05


def test_json_round_trip_gives_identical_encoding():
    columns = _columns()
    enc = InputEncoder.fit(_schema(), columns)
    again = InputEncoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    np.testing.assert_array_equal(enc.encode(columns), again.encode(columns))
    assert again.feature_names_ == enc.feature_names_


def test_single_row_encoder_matches_batch():
    columns = _columns(50)
    enc = InputEncoder.fit(_schema(), columns)
    X = enc.encode(columns)
    one = enc.one_encoders(check=True)
    names = [c.name for c in enc.codes_]
    for row in range(50):
        out: list = []
        for f, name in zip(one, names):
            value = columns[name][row]
            value = tuple(value) if name == "v" else value.item() if isinstance(value, np.generic) else value
            f(value, out)
        np.testing.assert_allclose(np.array(out, dtype=np.float32), X[row], rtol=1e-5, atol=1e-5)


def test_quantile_warp_for_heavy_tails_with_negatives():
    rng = np.random.default_rng(1)
    values = rng.standard_t(1.5, 3000)
    values = np.clip(values, -200, 200)
    schema = Schema((Field("x", "real", low=-200.0, high=200.0),), OutputSpec("real"))
    enc = InputEncoder.fit(schema, {"x": values})
    assert enc.codes_[0].warp == "quantile"
    X = enc.encode({"x": np.sort(values)})[:, 0]
    assert np.all(np.diff(X) >= -1e-6)  # monotone


@pytest.mark.parametrize("name, value, reason", [
    ("zone", "MARS", "not a known category"),
    ("temp", float("nan"), "not finite"),
    ("temp", "warm", "not a number"),
    ("smoker", 1, "not a bool"),
])
def test_unencodable_values_raise_out_of_domain(name, value, reason):
    columns = _columns(5)
    enc = InputEncoder.fit(_schema(), columns)
    bad = {k: v.copy() for k, v in columns.items()}
    if bad[name].dtype != object:
        bad[name] = bad[name].astype(object)
    bad[name][2] = value
    with pytest.raises(OutOfDomainError, match=reason) as info:
        enc.encode(bad)
    assert name in str(info.value)


def test_output_encoder_real_with_raises_round_trip():
    outputs = [1.0, 2.0, None, 5.0, None]
    errors = [None, None, ErrorInfo("ValueError", "bad x"), None, ErrorInfo("KeyError", "''")]
    out = OutputEncoder.fit(OutputSpec("real", raises=True, python_type="float"), outputs, errors, Tolerance(abs=0.1))
    y = out.targets(outputs, errors)
    assert out.n_classes == 3 and out.classes[0].kind == "ok"
    assert np.isnan(y[2, 0]) and y[2, 1] in (1, 2) and y[0, 1] == 0
    np.testing.assert_allclose(out.decode_values(y[[0, 1, 3], :1].astype(float))[:, 0], [1, 2, 5], rtol=1e-6)
    again = OutputEncoder.from_dict(json.loads(json.dumps(out.to_dict())))
    np.testing.assert_array_equal(again.targets(outputs, errors), y)


def test_output_asinh_warp_follows_relative_tolerance():
    rng = np.random.default_rng(0)
    values = list(np.abs(rng.lognormal(0, 2, 500)))
    out = OutputEncoder.fit(OutputSpec("real", python_type="float"), values, [None] * 500, Tolerance(abs=1e-4, rel=1e-3))
    assert out.warp == "asinh" and out.scale == pytest.approx(0.1)
    z = out.encode_values(np.asarray(values)[:, None])
    np.testing.assert_allclose(out.decode_values(z)[:, 0], values, rtol=1e-9)


def test_label_outputs_keep_enum_members():
    outputs = [Color.RED, Color.BLUE, Color.RED]
    out = OutputEncoder.fit(OutputSpec("label", labels=(Color.RED, Color.BLUE), python_type="enum"), outputs,
                            [None] * 3, Tolerance())
    again = OutputEncoder.from_dict(json.loads(json.dumps(out.to_dict())))
    assert [c.value for c in again.classes] == [Color.RED, Color.BLUE]
    assert list(again.targets(outputs, [None] * 3)[:, 0]) == [0, 1, 0]


def test_many_messages_of_one_type_share_a_class():
    errors = [ErrorInfo("ValueError", f"bad value {i}") for i in range(20)]
    out = OutputEncoder.fit(OutputSpec("real", raises=True), [None] * 20, errors, Tolerance(abs=1))
    assert out.n_classes == 2  # ok + one ValueError class with a generic message
    assert "ValueError" in out.classes[1].error.message


def test_make_exception_reproduces_type_and_str():
    for exc in (ValueError("x must be > 0"), KeyError(""), KeyError("zone"), ZeroDivisionError("division by zero")):
        info = ErrorInfo.from_exception(exc)
        again = make_exception(info)
        assert type(again) is type(exc) and str(again) == str(exc)


def test_log_inputs_encode_named_positive_arguments_as_log():
    from probes import Schema
    from replace._encoding import InputEncoder

    schema = Schema.from_function(lambda price, rate, n: 0.0, price=(0.5, 50.0), rate=(0.0, 0.1), n=(1.0, 2.0))
    rng = np.random.default_rng(0)
    columns = {"price": rng.uniform(0.5, 50.0, 500), "rate": rng.uniform(0.0, 0.1, 500), "n": rng.uniform(1.0, 2.0, 500)}
    plain = InputEncoder.fit(schema, columns)
    logged = InputEncoder.fit(schema, columns, log_inputs=("price",))
    assert [c.warp for c in plain.codes_] == ["none", "none", "none"]  # uniform: no skew, no warp
    assert [c.warp for c in logged.codes_] == ["log", "none", "none"]
    x = logged.encode({"price": np.array([0.5, 5.0, 50.0]), "rate": np.zeros(3), "n": np.ones(3)})[:, 0]
    # equal ratios, equal steps: log(x) exactly, then standardised
    assert abs((x[1] - x[0]) - (x[2] - x[1])) < 1e-5


def _onehot_schema() -> Schema:
    return Schema((
        Field("kids", "integer", low=0, high=4),
        Field("zone", "categorical", categories=("EU", "NA", "ASIA")),
        Field("otype", "categorical", categories=(0, 1)),
    ), OutputSpec("real"))


def test_onehot_by_comparison_matches_the_lookup_path():
    """Integer and string columns of a few categories take one comparison per category; the
    answer must be the row-by-row lookup's (object columns take that path)."""
    rng = np.random.default_rng(3)
    n = 300
    columns = {"kids": rng.integers(0, 5, n), "zone": np.array(["EU", "NA", "ASIA"])[rng.integers(0, 3, n)],
               "otype": rng.integers(0, 2, n)}
    enc = InputEncoder.fit(_onehot_schema(), columns)
    fast = enc.encode(columns, dtype=np.float64)
    slow = enc.encode({k: v.astype(object) for k, v in columns.items()}, dtype=np.float64)
    np.testing.assert_array_equal(fast, slow)
    assert fast.sum() == 3 * n and set(np.unique(fast)) == {0.0, 1.0}


@pytest.mark.parametrize("name, column, shown", [
    ("kids", np.r_[np.zeros(99, dtype=np.int64), 7], "7"),        # an integer outside the categories
    ("zone", np.array(["EU"] * 99 + ["MARS"]), "MARS"),            # an unknown string
    ("otype", np.array([True, False] * 50), "True"),              # bools are not the categories 0/1
])
def test_onehot_by_comparison_still_refuses_unknown_values(name, column, shown):
    n = 100
    columns = {"kids": np.zeros(n, dtype=np.int64), "zone": np.array(["EU"] * n), "otype": np.zeros(n, dtype=np.int64)}
    enc = InputEncoder.fit(_onehot_schema(), columns)
    with pytest.raises(OutOfDomainError, match="not a known category") as info:
        enc.encode({**columns, name: column})
    assert name in str(info.value) and shown in str(info.value)


def test_domain_mask_by_comparison_matches_the_row_by_row_check():
    from replace._fastpath import domain_mask
    from replace._sampling import in_domain_mask

    schema = _onehot_schema()
    rng = np.random.default_rng(4)
    n = 200
    columns = {"kids": rng.integers(-1, 6, n), "zone": np.array(["EU", "NA", "ASIA", "MARS", ""])[rng.integers(0, 5, n)],
               "otype": rng.integers(-1, 3, n)}
    fast = domain_mask(schema, columns)
    assert 0 < fast.sum() < n
    np.testing.assert_array_equal(fast, in_domain_mask(schema, columns))
