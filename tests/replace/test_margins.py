"""Domain margins (replace/_margins.py): ranges fit infers from traces are widened a little,
by the sign, declared-field and integer rules, and the widened band is labelled by the oracle."""

from __future__ import annotations

import numpy as np
import pytest

from probes import InvalidArgument, Schema, Tolerance, Traces
from replace import fit
from replace._margins import DEFAULT_MARGIN, infer_with_margins, resolve_margin, widen_field, with_margins

from conftest import smooth


def shipping(weight: float, items: int, zone: str, express: bool) -> float:
    return weight * (2.0 if express else 1.0) + items + {"A": 1.0, "B": 2.0}[zone]


def _traces(weights, items, zones=("A", "B"), express=(False, True)):
    rows = [{"weight": float(w), "items": int(n), "zone": zones[i % len(zones)], "express": express[i % len(express)]}
            for i, (w, n) in enumerate(zip(weights, items))]
    return Traces.from_calls(shipping, rows)


def test_real_ranges_widen_by_the_margin_of_their_span_on_each_side():
    schema = infer_with_margins(shipping, _traces([-1.0, 0.3, 1.0], [3, 5, 10]), margin=0.05)
    assert (schema["weight"].low, schema["weight"].high) == pytest.approx((-1.1, 1.1))
    # the recorded schema itself is unchanged
    recorded = Schema.infer(shipping, _traces([-1.0, 0.3, 1.0], [3, 5, 10]))
    assert (recorded["weight"].low, recorded["weight"].high) == (-1.0, 1.0)


def test_a_range_never_crosses_a_sign_the_data_never_crossed():
    nonnegative = infer_with_margins(shipping, _traces([0.0, 0.4, 1.0], [1, 2, 3]), margin=0.05)
    assert (nonnegative["weight"].low, nonnegative["weight"].high) == pytest.approx((0.0, 1.05))
    positive = infer_with_margins(shipping, _traces([0.01, 0.5, 1.0], [1, 2, 3]), margin=0.05)
    assert positive["weight"].low == 0.0  # 0.01 - 0.0495 would be negative
    nonpositive = infer_with_margins(shipping, _traces([-1.0, -0.5, -0.01], [-5, -3, -1]), margin=0.05)
    assert nonpositive["weight"].low == pytest.approx(-1.0495)
    assert nonpositive["weight"].high == 0.0
    assert (nonpositive["items"].low, nonpositive["items"].high) == (-6, 0)
    inside = infer_with_margins(shipping, _traces([0.2, 0.6, 1.0], [1, 2, 3]), margin=0.05)
    assert (inside["weight"].low, inside["weight"].high) == pytest.approx((0.16, 1.04))


def test_log_encoded_arguments_keep_a_positive_low_end():
    traces = _traces([0.01, 0.5, 1.0], [1, 2, 3])
    schema = infer_with_margins(shipping, traces, margin=0.05, keep_positive=("weight", "items"))
    assert 0 < schema["weight"].low < 0.01
    assert schema["weight"].low == pytest.approx(0.01 * 0.01 ** 0.05)
    assert schema["items"].low == 1  # an integer that was >= 1 stays >= 1


def test_integer_ranges_widen_by_rounding_outwards():
    schema = infer_with_margins(shipping, _traces([0.0, 0.5, 1.0], [3, 7, 10]), margin=0.05)
    assert (schema["items"].low, schema["items"].high) == (2, 11)  # 2.65 -> 2, 10.35 -> 11
    assert all(isinstance(v, int) for v in (schema["items"].low, schema["items"].high))
    small = infer_with_margins(shipping, _traces([0.0, 0.5, 1.0], [0, 2, 5]), margin=0.05)
    assert (small["items"].low, small["items"].high) == (0, 6)  # never below 0: no negative count was seen


def test_a_declared_field_is_never_widened():
    traces = _traces([0.0, 0.5, 1.0], [3, 7, 10])
    schema = infer_with_margins(shipping, traces, margin=0.05, weight=(0.0, 1.0), items=(3, 10))
    assert (schema["weight"].low, schema["weight"].high) == (0.0, 1.0)
    assert (schema["items"].low, schema["items"].high) == (3, 10)
    only_weight = infer_with_margins(shipping, traces, margin=0.05, weight=(0.0, 1.0))
    assert (only_weight["items"].low, only_weight["items"].high) == (2, 11)
    assert with_margins(Schema.infer(shipping, traces), 0.05, declared=["weight", "items"]) == Schema.infer(shipping, traces)


def test_categories_booleans_and_single_values_stay_as_they_are():
    traces = _traces([0.5, 0.5, 0.5], [4, 4, 4])
    schema = infer_with_margins(shipping, traces, margin=0.2)
    assert schema == Schema.infer(shipping, traces)
    assert widen_field(schema["zone"], 0.5) is schema["zone"]
    assert with_margins(schema, 0.0) is schema


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "5%", True])
def test_bad_margins_are_refused_by_name(bad):
    with pytest.raises(InvalidArgument, match="margin"):
        with_margins(Schema.infer(shipping, _traces([0.0, 1.0], [1, 2])), bad)
    with pytest.raises(InvalidArgument, match="domain_margin="):
        fit(smooth, Traces.from_calls(smooth, [{"x": 0.1, "y": 0.2}] * 10), domain_margin=bad, budget_s=1)


def test_the_default_margin_needs_an_oracle_to_label_the_band():
    assert resolve_margin(None, oracle=True) == DEFAULT_MARGIN
    assert resolve_margin(None, oracle=False) == 0.0
    assert resolve_margin(0.1, oracle=False) == 0.1


def test_a_margin_with_a_declared_schema_is_refused():
    schema = Schema.from_function(smooth, x=(0.0, 1.0), y=(0.0, 1.0))
    with pytest.raises(InvalidArgument, match="domain_margin=0.1 : .*declared domain"):
        fit(smooth, schema=schema, domain_margin=0.1, budget_s=1)


def _uniform_traces(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return Traces.from_calls(smooth, [{"x": float(x), "y": float(y)} for x, y in rng.uniform(0, 1, (n, 2))])


def test_fit_widens_an_inferred_schema_and_the_oracle_labels_the_band():
    traces = _uniform_traces()
    recorded = Schema.infer(smooth, traces)
    s = fit(smooth, traces, tolerance=Tolerance(abs=0.05), budget_s=3, seed=0, progress=False,
            budget_clock="work")
    for name in ("x", "y"):
        old = recorded[name]
        assert s.schema[name].low == 0.0  # nonnegative data: not below 0
        assert s.schema[name].high == pytest.approx(old.high + DEFAULT_MARGIN * (old.high - old.low))
    assert s.manifest["hyperparameters"]["domain_margin"] == DEFAULT_MARGIN
    # oracle rows were drawn in the band past the recorded maximum
    assert s.training_data_["columns"]["x"].max() > recorded["x"].high
    # a value just past the recorded maximum is answered (it was refused before), and well
    above = recorded["x"].high + 0.01
    assert s(x=above, y=0.5) == pytest.approx(smooth(above, 0.5), abs=0.1)
    columns = {"x": np.array([0.5, above, 0.2]), "y": np.array([0.5, 0.5, recorded["y"].high + 0.01])}
    answers = s.predict_batch(columns)
    assert np.all(np.isfinite(answers))
    np.testing.assert_allclose(answers, [smooth(x, y) for x, y in zip(columns["x"], columns["y"])], atol=0.1)


def test_fit_without_an_oracle_keeps_the_recorded_domain():
    traces = _uniform_traces(200, seed=1)
    s = fit(smooth, traces, oracle=False, tolerance=Tolerance(abs=0.05), budget_s=2, progress=False,
            budget_clock="work")
    assert s.schema == Schema.infer(smooth, traces)
    assert s.manifest["hyperparameters"]["domain_margin"] == 0.0
