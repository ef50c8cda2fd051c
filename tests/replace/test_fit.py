"""fit: learning from traces and the oracle; outcome, label and vector heads; options; train_model."""

from __future__ import annotations

import json
import re
import math

import numpy as np
import pytest

from probes import InvalidArgument, Schema, Tolerance, Traces
from replace import FitConfig, SurrogateMetrics, TrainConfig, fit, train_model

from conftest import fee, grade, guarded_sqrt, polar, smooth


def test_smooth_function_reaches_tolerance(smooth_fit):
    m = smooth_fit.metrics
    assert isinstance(m, SurrogateMetrics)
    assert m.agreement >= 0.95, m
    assert m.n_test >= 200 and m.oracle_calls > 0
    assert m.max_error < 0.1
    assert len(m.curve) > 10 and all(len(point) == 3 for point in m.curve)
    assert m.architecture and m.parameters > 0 and m.wall_time_s > 0
    json.dumps(m.to_dict())  # serialisable


def test_raising_outcome_reproduced(raising_fit):
    with pytest.raises(ValueError) as ours:
        raising_fit(-0.5, "N")
    assert str(ours.value) == "x must not be negative"
    with pytest.raises(KeyError) as ours:
        raising_fit(2.5, "")
    with pytest.raises(KeyError) as theirs:
        guarded_sqrt(2.5, "")
    assert str(ours.value) == str(theirs.value)
    assert raising_fit.metrics.outcome_agreement >= 0.97
    value = raising_fit(2.5, "S")
    assert isinstance(value, float) and value == pytest.approx(guarded_sqrt(2.5, "S"), abs=0.3)


def test_label_outputs(label_fit):
    assert label_fit.metrics.agreement >= 0.9
    assert label_fit(10.0, 1) == "low" and label_fit(95.0, 3) == "high"
    assert isinstance(label_fit(55.0, 0), str)
    out = label_fit.predict_batch({"score": np.array([10.0, 95.0]), "bonus": np.array([1, 3])})
    assert out.dtype == object and list(out) == ["low", "high"]


def test_vector_outputs_keep_the_tuple_type(vector_fit):
    value = vector_fit(1.0, 0.5)
    assert isinstance(value, tuple) and len(value) == 2
    np.testing.assert_allclose(value, polar(1.0, 0.5), atol=0.1)
    assert vector_fit.predict_batch({"r": np.array([1.0]), "theta": np.array([0.5])}).shape == (1, 2)
    assert vector_fit.metrics.agreement > 0.8


@pytest.mark.slow
def test_piecewise_function_keeps_its_edges(fee_schema):
    """Path-aware (gate + expert per branch path) keeps the steps of a piecewise function; a
    single smooth network of the same budget blurs them."""
    tol = Tolerance(abs=0.05)
    # code_cuts=False: the networks see the raw weight, so the comparison isolates the gate's effect
    path = fit(fee, schema=fee_schema, tolerance=tol, budget_s=8, seed=0, progress=False, path_aware=True,
               ensemble_size=1, code_cuts=False, exact="off")
    plain = fit(fee, schema=fee_schema, tolerance=tol, budget_s=8, seed=0, progress=False, path_aware=False,
                ensemble_size=1, code_cuts=False, exact="off")
    assert path.path_aware and not plain.path_aware
    assert path.metrics.per_path  # per-path fidelity reported
    # just either side of each step
    edges = []
    for w in (2.0, 5.0):
        for d in (-0.02, 0.02):
            for zone in ("A", "B", "C"):
                for express in (False, True):
                    edges.append({"weight": w + d, "zone": zone, "express": express})
    def share(s):
        return np.mean([abs(s(**kw) - fee(**kw)) <= 0.05 for kw in edges])
    assert share(path) >= 0.7 and share(path) > share(plain)
    assert path.metrics.agreement > plain.metrics.agreement
    assert path.metrics.agreement >= 0.95


def test_code_comparisons_become_exact_step_columns(fee_schema):
    """`if weight > 2.0` in the legacy code becomes a 0/1 input column: steps exact to the float."""
    s = fit(fee, schema=fee_schema, tolerance=Tolerance(abs=0.05), budget_s=5, seed=0, progress=False,
            path_aware=False, ensemble_size=1)
    assert "weight>2" in s.feature_names and "weight>5" in s.feature_names
    assert s.feature_groups["weight"] == [s.feature_names.index(n) for n in ("weight", "weight>2", "weight>5")]
    edges = [{"weight": w + d, "zone": z, "express": e} for w in (2.0, 5.0) for d in (-1e-6, 0.0, 1e-6)
             for z in ("A", "B", "C") for e in (False, True)]
    assert np.mean([abs(s(**kw) - fee(**kw)) <= 0.05 for kw in edges]) >= 0.9


def test_without_traces_needs_a_schema():
    with pytest.raises(InvalidArgument, match="Schema.from_function"):
        fit(smooth, budget_s=1)


def test_unknown_option_is_named():
    with pytest.raises(InvalidArgument, match="widht"):
        fit(smooth, schema=Schema.from_function(smooth, x=(0.0, 1.0), y=(0.0, 1.0)), widht=3)


def test_traces_only_without_oracle():
    rng = np.random.default_rng(0)
    inputs = [{"x": float(a), "y": float(b)} for a, b in rng.uniform(0, 1, (400, 2))]
    traces = Traces.from_calls(smooth, inputs)
    s = fit(smooth, traces, oracle=False, budget_s=2, progress=False, tolerance=Tolerance(abs=0.05),
            ensemble_size=1, widths=(16,), depths=(2,))
    assert s.metrics.oracle_calls == 0 and s.metrics.n_test > 0
    assert s.schema.names == ["x", "y"]
    assert s.metrics.agreement > 0.5


def test_hard_cases_join_training_with_weight():
    schema = Schema.from_function(smooth, x=(0.0, 1.0), y=(0.0, 1.0))
    hard = [{"x": 0.99, "y": 0.01}, {"x": 0.01, "y": 0.99}]

    class Case:
        inputs = {"x": 0.5, "y": 0.5}

    s = fit(smooth, schema=schema, hard_cases=hard + [Case()], budget_s=1.5, progress=False, ensemble_size=1,
            widths=(16,), depths=(2,), rounds=0)
    assert s.manifest["training"]["sources"].get("hard") == 3


def test_default_tolerance_is_relative_with_a_floor(label_fit):
    schema = Schema.from_function(smooth, x=(0.0, 1.0), y=(0.0, 1.0))
    s = fit(smooth, schema=schema, budget_s=1.0, progress=False, ensemble_size=1, widths=(16,), depths=(2,), rounds=0)
    assert s.tolerance.rel == 0.01 and 0 < s.tolerance.abs < 0.01


def test_train_model_accepts_a_sampler_and_hooks():
    import torch

    from replace._models import batched_mlp
    from replace._train import SurrogateLoss

    torch.manual_seed(0)
    X = np.random.default_rng(0).uniform(-1, 1, (64, 2)).astype(np.float32)
    y = np.stack([X[:, 0] * 2, np.ones(64)], axis=1).astype(np.float32)

    class Sampler:  # the shape of torch's DistributedSampler: set_epoch + iteration over row indices
        def __init__(self):
            self.epochs = []

        def set_epoch(self, epoch):
            self.epochs.append(epoch)

        def __iter__(self):
            return iter(range(0, 64, 2))  # this "rank" sees the even rows

    sampler = Sampler()
    seen = []
    module = batched_mlp(1, 2, 1, 8, 1, "relu")
    result = train_model(module, X, y, config=TrainConfig(max_epochs=50), loss=SurrogateLoss(1, 0), X_val=X, y_val=y,
                         sampler=sampler, hooks=[lambda e, t, v: seen.append(e) or e >= 3], reduce=lambda v: v)
    assert result.stopped == "hook" and seen == [1, 2, 3] and sampler.epochs == [1, 2, 3]
    assert len(result.curve) == 3 and not module.training


def test_fit_config_defaults_are_documented():
    config = FitConfig()
    assert config.sampling == "paths" and config.ensemble_size >= 1


@pytest.mark.parametrize("value, named", [("all", "log_inputs='all'"), (("y",), "'y' is not"), (("x", 3), "log_inputs=")])
def test_bad_log_inputs_are_named_before_any_call(value, named):
    calls = []

    def counted(x: float, y: float) -> float:
        calls.append(1)
        return x - y

    schema = Schema.from_function(counted, x=(1.0, 10.0), y=(-1.0, 1.0))
    calls.clear()  # from_function probes the output kind
    with pytest.raises(InvalidArgument, match=re.escape(named)):
        fit(counted, schema=schema, budget_s=1.0, progress=False, log_inputs=value)
    assert calls == []


def test_log_inputs_positive_logs_every_positive_argument():
    schema = Schema.from_function(smooth, x=(0.5, 2.0), y=(-2.0, 2.0))
    s = fit(smooth, schema=schema, budget_s=1.0, progress=False, ensemble_size=1, widths=(16,), depths=(2,),
            rounds=0, budget_clock="work", log_inputs="positive")
    assert [c.warp for c in s.input_encoder.codes_] == ["log", "none"]
    assert s.manifest["hyperparameters"]["log_inputs"] == "positive"
