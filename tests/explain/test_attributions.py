"""attribute() and compare_attributions(): an ignored argument gets zero, a leaking surrogate is flagged."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from probes import InvalidArgument, Schema
from explain import Attribution, attribute, compare_attributions
from explain._attributions import ArgumentCodec, attribute_blackbox, exact_shapley, reused_activations


def original(a: float, b: float, c: float, zone: str) -> float:
    """Ignores c."""
    return 2.0 * a + b + (3.0 if zone == "EU" else 0.0)


SCHEMA = Schema.from_function(original, a=(0.0, 1.0), b=(0.0, 1.0), c=(0.0, 1.0), zone=["EU", "NA", "ROW"])
INPUTS = SCHEMA.sample(30, seed=1)


@pytest.fixture(autouse=True)
def _quiet_captum():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        yield


def test_shap_on_a_black_box_gives_an_ignored_argument_zero() -> None:
    att = attribute(original, INPUTS, schema=SCHEMA)
    assert isinstance(att, Attribution)
    assert att.method == "shap (exact)"
    assert att.values.shape == (30, 4) and att.feature_names == ("a", "b", "c", "zone")
    imp = att.importance()
    assert imp["c"] == 0.0
    assert imp["a"] > imp["b"] > 0 and imp["zone"] > 0
    assert att.additivity is not None and att.additivity < 1e-9
    # efficiency: values sum to f(x) - base
    fx = np.array([original(**kw) for kw in INPUTS])
    assert np.allclose(att.values.sum(axis=1) + att.base_values, fx)


def test_ablation_on_a_black_box_gives_an_ignored_argument_zero() -> None:
    att = attribute(original, INPUTS, schema=SCHEMA, method="ablation")
    assert att.importance()["c"] == 0.0 and att.importance()["a"] > 0


def test_in_house_exact_shapley_matches_a_brute_force_formula() -> None:
    rng = np.random.default_rng(0)
    Z = rng.uniform(size=(5, 3))
    bg = rng.uniform(size=(7, 3))
    g = lambda M: M[:, 0] * M[:, 1] + np.sin(M[:, 2]) * M[:, 0]  # noqa: E731
    phi, base = exact_shapley(g, Z, bg)
    import itertools, math

    for r in range(len(Z)):
        def v(S):
            M = bg.copy()
            M[:, list(S)] = Z[r, list(S)]
            return g(M).mean()
        for i in range(3):
            others = [j for j in range(3) if j != i]
            total = 0.0
            for k in range(3):
                for S in itertools.combinations(others, k):
                    w = math.factorial(k) * math.factorial(3 - k - 1) / math.factorial(3)
                    total += w * (v(S + (i,)) - v(S))
            assert phi[r, i] == pytest.approx(total, abs=1e-12)
    assert np.allclose(base, g(bg).mean())


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_in_house_exact_shapley_equals_shap_exact_explainer() -> None:
    """shap's numba compilation costs ~15 s per process, hence slow."""
    from explain._data import as_columns

    columns = as_columns(INPUTS[:10], SCHEMA)
    ours = attribute_blackbox(original, columns, SCHEMA, method="shap")
    theirs = attribute_blackbox(original, columns, SCHEMA, method="shap", shap_library=True)
    assert np.allclose(ours.values, theirs.values, atol=1e-9)
    assert np.allclose(ours.base_values, theirs.base_values, atol=1e-9)


def test_gradient_methods_on_a_surrogate_sum_to_argument_level(fake_linear) -> None:
    surrogate = fake_linear(SCHEMA, {"a": 2.0, "b": 1.0, "zone=EU": 3.0})
    ig = attribute(surrogate, INPUTS)
    assert ig.method == "integrated_gradients" and ig.converged and ig.delta <= 0.01 and ig.n_steps == 50
    assert ig.values.shape == (30, 4)
    assert ig.importance()["c"] == pytest.approx(0.0, abs=1e-6)
    # completeness at argument level: values sum to f(x) - f(baseline)
    fx = surrogate.predict_batch({k: np.asarray([kw[k] for kw in INPUTS], dtype=object if k == "zone" else float)
                                  for k in SCHEMA.names})
    assert np.allclose(ig.values.sum(axis=1) + ig.base_values, fx, atol=1e-4)
    assert ig.encoded_values.shape[1] == len(surrogate.feature_names) == 6
    dl = attribute(surrogate, INPUTS, method="deeplift")
    ab = attribute(surrogate, INPUTS, method="ablation")
    for other in (dl, ab):
        assert np.allclose(other.values, ig.values, atol=1e-4)  # a linear network: all methods agree
    shap_sur = attribute(surrogate, INPUTS, method="shap")
    assert shap_sur.importance()["c"] == pytest.approx(0.0, abs=1e-6)


def test_integrated_gradients_raises_steps_until_the_gap_is_small(fake_surrogate) -> None:
    class Steep(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(6, 1)
            self.act = torch.nn.Sigmoid()
            with torch.no_grad():
                self.lin.weight.fill_(0.0)
                self.lin.weight[0, 0] = 500.0  # a near step in a: hard for 50 quadrature points
                self.lin.bias.fill_(-250.0)

        def forward(self, x):
            return self.act(self.lin(x))[:, 0]

    surrogate = fake_surrogate(SCHEMA, Steep())
    strict = attribute(surrogate, INPUTS, ig_delta_bound=1e-3)
    loose = attribute(surrogate, INPUTS, ig_delta_bound=0.05)
    assert loose.n_steps > 50 and strict.n_steps > loose.n_steps
    assert strict.converged and strict.delta <= 1e-3 and loose.delta <= 0.05
    hopeless = attribute(surrogate, INPUTS[:5], ig_delta_bound=1e-12)
    assert hopeless.converged is False and hopeless.n_steps == 800
    assert any("did not converge" in note for note in hopeless.notes)


def test_deeplift_refuses_a_reused_activation_module(fake_surrogate) -> None:
    class Reused(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.c = torch.nn.Linear(6, 4), torch.nn.Linear(4, 4), torch.nn.Linear(4, 1)
            self.relu = torch.nn.ReLU()

        def forward(self, x):
            return self.c(self.relu(self.b(self.relu(self.a(x)))))[:, 0]

    module = Reused()
    assert reused_activations(module, torch.zeros(1, 6)) == ["relu"]
    with pytest.raises(InvalidArgument, match="reuses activation"):
        attribute(fake_surrogate(SCHEMA, module), INPUTS, method="deeplift")
    # integrated gradients has no such trap
    assert attribute(fake_surrogate(SCHEMA, module), INPUTS).values.shape == (30, 4)


def test_a_raw_torch_module_with_one_dimensional_output() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1), torch.nn.Flatten(0))
    X = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    att = attribute(net, X, method="deeplift")
    assert att.values.shape == (20, 3) and att.feature_names == ("x0", "x1", "x2")


def test_labels_explain_each_rows_outcome() -> None:
    def tier(x: float, y: float, flag: bool) -> str:
        return "high" if x > 0.5 else "low"

    schema = Schema.from_function(tier, x=(0.0, 1.0), y=(0.0, 1.0))
    att = attribute(tier, schema.sample(20, seed=2), schema=schema)
    imp = att.importance()
    assert imp["x"] > 0 and imp["y"] == 0.0 and imp["flag"] == 0.0
    assert set(att.target) <= {"high", "low"}


def test_codec_round_trips_arguments() -> None:
    from explain._data import as_columns

    codec = ArgumentCodec(SCHEMA)
    columns = as_columns(INPUTS, SCHEMA)
    back = codec.decode(codec.encode(columns))
    assert SCHEMA.rows(back) == SCHEMA.rows(columns)


def test_bad_method_names_the_choices() -> None:
    with pytest.raises(InvalidArgument, match="shap"):
        attribute(original, INPUTS, schema=SCHEMA, method="integrated_gradients")
    with pytest.raises(InvalidArgument, match="schema"):
        attribute(original, INPUTS)


def test_comparison_flags_a_surrogate_that_uses_an_ignored_argument(fake_linear) -> None:
    leaky = fake_linear(SCHEMA, {"a": 2.0, "b": 1.0, "c": 0.6, "zone=EU": 3.0})
    comparison = compare_attributions(original, leaky, INPUTS)
    assert comparison.surrogate_only == ("c",)
    assert comparison.original_only == ()
    assert comparison.spearman is not None and comparison.spearman > 0.5
    assert comparison.surrogate_gradient is not None
    table = {r["argument"]: r for r in comparison.table()}
    assert table["c"]["original"] == 0.0 and table["c"]["surrogate"] > 0.05 * table["zone"]["surrogate"]
    assert "surrogate only" in comparison.to_markdown()


def test_comparison_of_a_faithful_surrogate_flags_nothing(fake_linear) -> None:
    faithful = fake_linear(SCHEMA, {"a": 2.0, "b": 1.0, "zone=EU": 3.0})
    comparison = compare_attributions(original, faithful, INPUTS, gradient=False)
    assert comparison.flagged == ()
    assert comparison.spearman == pytest.approx(1.0)


def test_comparison_flags_an_argument_the_surrogate_ignores(fake_linear) -> None:
    blind = fake_linear(SCHEMA, {"a": 2.0, "zone=EU": 3.0})
    comparison = compare_attributions(original, blind, INPUTS, gradient=False)
    assert comparison.original_only == ("b",)
