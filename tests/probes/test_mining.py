"""mine_edge_cases(): each layer finds the defect it is built for; results rank, save and load."""

import math

import numpy as np
import pytest

from probes import EdgeCase, EdgeCases, InvalidArgument, Schema, Tolerance, mine_edge_cases
from probes._mining import _boundary_values


def step(x: float, kind: str) -> float:
    if kind == "c":
        return -1.0
    return 1.0 if x > 0.5 else 0.0


SCHEMA = Schema.from_function(step, x=(0.0, 1.0), kind=["a", "b", "c"])


def mine(candidate, **options):
    options.setdefault("schema", SCHEMA)
    options.setdefault("budget_s", 1.0)
    return mine_edge_cases(step, candidate, **options)


def test_identical_candidate_yields_nothing_and_every_layer_reports():
    cases = mine(step)
    assert isinstance(cases, EdgeCases) and isinstance(cases, list) and cases == []
    for name in ("boundary", "branch", "search"):
        assert cases.layers[name].ran and cases.layers[name].evaluated > 0 and cases.layers[name].found == 0
    assert not cases.layers["gradient"].ran and "torch_module" in cases.layers["gradient"].note
    assert "0 edge cases" in cases.summary()


def test_boundary_layer_finds_a_defect_at_the_range_end_only():
    def end_wrong(x: float, kind: str) -> float:
        return step(x, kind) + (1.0 if x == 1.0 else 0.0)

    cases = mine(end_wrong, layers=("boundary",))
    assert cases and all(c.layer == "boundary" and c.inputs["x"] == 1.0 for c in cases)
    assert cases[0].expected + 1.0 == cases[0].actual


def test_boundary_values_include_ends_zero_and_one_step_inside():
    schema = Schema.from_function(step, x=(-1.0, 2.0), kind=["a", "b"])
    values = _boundary_values(schema["x"])
    for v in (-1.0, 2.0, 0.0, math.nextafter(-1.0, 2.0), math.nextafter(2.0, -1.0), math.nextafter(0.0, 1.0)):
        assert v in values
    assert _boundary_values(schema["kind"]) == ["a", "b"]


def test_branch_layer_finds_a_tiny_threshold_shift():
    def shifted(x: float, kind: str) -> float:
        if kind == "c":
            return -1.0
        return 1.0 if x > 0.5 + 1e-7 else 0.0  # wrong on 1e-7 of the domain

    cases = mine(shifted, layers=("branch",))
    assert cases, cases.summary()
    assert cases.layers["branch"].found > 0 and "path boundaries" in cases.layers["branch"].note
    for case in cases:
        assert 0.5 < case.inputs["x"] <= 0.5 + 1e-7
        assert (case.expected, case.actual, case.error) == (1.0, 0.0, 1.0)
    assert any(case.inputs["x"] == math.nextafter(0.5, 1.0) for case in cases)  # just above the boundary


def test_search_layer_finds_a_region():
    def region(x: float, kind: str) -> float:
        return step(x, kind) + (0.5 if 0.2 <= x <= 0.3 else 0.0)

    cases = mine(region, layers=("search",), budget_clock="work")  # the same search at any machine load
    assert cases and all(c.layer == "search" and 0.2 <= c.inputs["x"] <= 0.3 for c in cases)


def test_wrong_category_and_raising_are_found_and_ranked_worst_first():
    def mixed(x: float, kind: str) -> float:
        if kind == "b" and x > 0.9:
            raise RuntimeError("not handled")
        if kind == "c":
            return -1.25
        return step(x, kind)

    cases = mine(mixed, budget_s=1.5)
    errors = [c.error for c in cases]
    assert errors == sorted(errors, reverse=True)
    assert cases[0].error == math.inf and cases[0].reason == "raised" and cases[0].actual_error.type == "RuntimeError"
    assert any(c.inputs["kind"] == "c" and c.error == 0.25 for c in cases)
    keys = [tuple(sorted(c.inputs.items())) for c in cases]
    assert len(keys) == len(set(keys))  # de-duplicated
    assert sum(cases.by_layer.values()) == len(cases)


def test_tolerance_is_respected():
    def close(x: float, kind: str) -> float:
        return step(x, kind) + 1e-3

    assert mine(close, layers=("boundary",))
    assert not mine(close, layers=("boundary",), tolerance=Tolerance(abs=1e-2))


def test_cases_save_load_and_feed_refitting(tmp_path):
    def region(x: float, kind: str) -> float:
        return step(x, kind) + (float("nan") if x > 0.95 else 0.0)

    cases = mine(region, layers=("boundary", "search"))
    assert cases
    path = cases.save(tmp_path / "hard.json")
    back = EdgeCases.load(path)
    assert [c.inputs for c in back] == [c.inputs for c in cases]
    assert all(isinstance(c, EdgeCase) for c in back)
    assert back.layers == cases.layers and back.schema == SCHEMA
    assert math.isnan(back[0].actual) and back[0].error == math.inf
    inputs = back.inputs()
    assert all(isinstance(kw, dict) and set(kw) == {"x", "kind"} for kw in inputs)
    assert "f(x=" in back[0].call("f")


def test_bad_arguments_are_refused():
    with pytest.raises(InvalidArgument, match="layers"):
        mine(step, layers=("magic",))
    with pytest.raises(InvalidArgument, match="budget_s=0"):
        mine(step, budget_s=0)
    with pytest.raises(InvalidArgument, match="schema"):
        mine_edge_cases(step, step, schema={"x": (0, 1)})


class SteepSurrogate:
    """The replace.Surrogate interface the gradient layer uses: encode, torch_module,
    feature_groups, schema; its learned step sits at 0.6 instead of 0.5."""

    def __init__(self) -> None:
        self.schema = SCHEMA
        self.feature_groups = {"x": [0], "kind": [1, 2, 3]}

    def encode(self, columns):
        x = np.asarray(columns["x"], dtype=np.float32).reshape(-1, 1)
        kinds = np.asarray(columns["kind"], dtype=object)
        onehot = np.stack([(kinds == k).astype(np.float32) for k in ("a", "b", "c")], axis=1)
        return np.concatenate([x, onehot], axis=1)

    def torch_module(self):
        import torch

        class Module(torch.nn.Module):
            def forward(self, z):
                step_ = torch.sigmoid(300.0 * (z[:, :1] - 0.6))
                return step_ * (1 - z[:, 3:4]) - z[:, 3:4]

        return Module()

    def __call__(self, x: float, kind: str) -> float:
        import torch

        encoded = torch.tensor(self.encode({"x": [x], "kind": [kind]}))
        with torch.no_grad():
            return float(self.torch_module()(encoded)[0, 0])


def test_gradient_layer_checks_where_the_surrogate_is_steepest():
    pytest.importorskip("torch")
    cases = mine(SteepSurrogate(), layers=("gradient",), tolerance=Tolerance(abs=0.1), budget_s=1.0)
    assert cases.layers["gradient"].ran and cases.layers["gradient"].evaluated > 0
    assert cases and all(c.layer == "gradient" for c in cases)
    assert all(0.5 < c.inputs["x"] < 0.62 and c.inputs["kind"] != "c" for c in cases)
    off = mine(SteepSurrogate(), layers=("gradient",), surrogate_gradients=False, budget_s=0.2)
    assert not off.layers["gradient"].ran and off.layers["gradient"].note == "disabled"


@pytest.mark.slow
def test_gradient_layer_on_a_real_tiny_surrogate():
    replace = pytest.importorskip("replace")
    if not hasattr(replace, "fit"):
        pytest.skip("replace.fit not available")
    from probes import verify

    surrogate = replace.fit(step, schema=SCHEMA, tolerance=Tolerance(abs=0.05), budget_s=3.0, seed=0)
    # on the work clock: a loaded machine (a first torch call of seconds) cannot starve the layer
    cases = mine(surrogate, layers=("gradient",), budget_s=0.3, budget_clock="work")
    layer = cases.layers["gradient"]
    assert layer.ran and layer.evaluated > 0, layer
    for case in cases:
        assert case.layer == "gradient"
        assert case.error == pytest.approx(abs(case.actual - case.expected)) and case.error > 0.05
    report = verify(step, surrogate, schema=SCHEMA, max_examples=100, database=None, search=False)
    assert report.comparison.tolerance == surrogate.tolerance  # the surrogate's own tolerance by default


def test_inputs_limit_picks_round_robin_over_failure_classes():
    def case(x, path, error):
        return EdgeCase({"x": x, "kind": "a"}, 0.0, error, error, "branch", path=path, reason="value")

    cases = EdgeCases([case(0.1, "p1", 5.0), case(0.2, "p1", 4.0), case(0.3, "p1", 3.0), case(0.4, "p2", 2.0)])
    assert [kw["x"] for kw in cases.inputs(limit=2)] == [0.1, 0.4]
    assert [kw["x"] for kw in cases.inputs(limit=3)] == [0.1, 0.4, 0.2]
    assert len(cases.inputs()) == 4 and len(cases.inputs(limit=10)) == 4


def test_a_run_the_budget_did_not_cut_says_so_and_the_flags_survive_json():
    cases = mine(step)  # fast functions: every layer does at least its least within 1 s
    assert cases.cut_short is False and cases.budget_exhausted is False and cases.skipped == []
    assert "cut short" not in cases.summary() and "cut short" not in repr(cases)
    cut = EdgeCases([], cases.layers, SCHEMA, skipped=["boundary: 12 of 40 boundary probes not run"])
    back = EdgeCases.from_json(cut.to_json())
    assert back.cut_short and back.skipped == cut.skipped and back == []
    assert "cut short by the budget: boundary: 12 of 40" in back.summary()
