"""Hybrid surrogates (issue 15): an exact expression on every branch path one reproduces, the neural
expert elsewhere; the same answers by single call, batch, reference and guard; saved as data."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest

from probes import InvalidArgument, Schema, SurrogateFileError, Tolerance
from replace import Surrogate, fit
from replace._hybrid import HybridExportError

ZONE = {"A": 1.0, "B": 1.5, "C": 2.25}


def fee(weight: float, zone: str, express: bool) -> float:
    """Weight brackets (a flat one, two per-kg ones) x zone factor, express surcharge, cents."""
    if weight <= 1.0:
        base = 4.5
    elif weight <= 5.0:
        base = 6.0 + 0.8 * weight
    else:
        base = 9.0 + 1.1 * weight
    base = base * ZONE[zone]
    if express:
        base = base + 5.0
    return round(base, 2)


FEE = Schema.from_function(fee, weight=(0.1, 20.0), zone=["A", "B", "C"], express=bool)
CENT = Tolerance(abs=0.005)


def wave(x: float, zone: str) -> float:
    """Exact on two paths, a smooth non-polynomial (sin) on the middle one."""
    if x < 2.0:
        return round(3.0 + 1.5 * x, 2)
    if x < 5.0:
        return 4.0 + math.sin(2.0 * x)
    return round({"A": 10.0, "B": 12.5}[zone] + 0.5 * x, 2)


WAVE = Schema.from_function(wave, x=(0.0, 8.0), zone=["A", "B"])


@pytest.fixture(scope="module")
def fee_hybrid() -> Surrogate:
    return fit(fee, schema=FEE, tolerance=CENT, budget_s=8, seed=0, progress=False, budget_clock="work")


@pytest.fixture(scope="module")
def wave_hybrid() -> Surrogate:
    return fit(wave, schema=WAVE, tolerance=Tolerance(abs=0.01), budget_s=8, seed=0, progress=False,
               budget_clock="work")


def _columns(schema: Schema, rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    return {f.name: np.array([r[f.name] for r in rows], dtype=object if f.kind == "categorical" else None)
            for f in schema.fields}


def test_fee_table_is_exact_on_every_path(fee_hybrid: Surrogate) -> None:
    paths = [p for p in fee_hybrid._path_ids if p != "*"]
    assert fee_hybrid.path_aware and len(paths) == 6  # 3 brackets x express
    assert set(paths) <= set(fee_hybrid.expressions_)
    report = fee_hybrid.metrics.exact_paths
    assert set(report) == set(fee_hybrid.expressions_)
    for path, entry in report.items():
        assert entry["expression"] == fee_hybrid.expressions_[path].to_python()
        assert entry["rows"] >= 16 and entry["held_out"] >= 8
    assert any("weight" in entry["expression"] and "[zone]" in entry["expression"] for entry in report.values())
    assert fee_hybrid.manifest["training"]["exact"][paths[0]]["status"] == "exact"
    assert fee_hybrid.metrics.agreement == 1.0  # fresh-input fidelity measured with the hybrid


def test_fee_agrees_on_fresh_inputs_single_and_batch(fee_hybrid: Surrogate) -> None:
    rows = FEE.sample(2000, seed=11)
    truth = np.array([fee(**r) for r in rows])
    single = [fee_hybrid(**r) for r in rows]
    assert all(type(v) is float for v in single)
    assert np.array_equal(np.array(single), truth)
    columns = _columns(FEE, rows)
    assert np.array_equal(fee_hybrid.predict_batch(columns), truth)
    assert np.array_equal(fee_hybrid.predict_batch(columns, precision="float64"), truth)
    details = fee_hybrid.predict_details(columns)
    on_exact = np.isin(np.array(details.paths, dtype=object), list(fee_hybrid.expressions_))
    assert np.all(details.spread[on_exact] == 0.0)
    one = [fee_hybrid.predict_one(r) for r in rows[:200]]
    assert [p.output for p in one] == truth[:200].tolist()
    assert all(p.spread == 0.0 for p in one if p.path in fee_hybrid.expressions_)
    assert [fee_hybrid._reference_one(r).output for r in rows[:200]] == truth[:200].tolist()


@pytest.mark.parametrize("fixture", ["fee_hybrid", "wave_hybrid"])
def test_guarded_single_call_scores_as_the_batch(fixture: str, request: Any) -> None:
    """The guard's one-row path and its batch evaluation give the same answer and score on exact
    and neural paths alike (the certificate speaks of the gate the single call uses)."""
    from replace._score import OneRowScorer, evaluate

    surrogate = request.getfixturevalue(fixture)
    schema, fn = (FEE, fee) if fixture == "fee_hybrid" else (WAVE, wave)
    rows = schema.sample(300, seed=3)
    batch = evaluate(surrogate, _columns(schema, rows), surrogate.guard_predictor)
    scorer = OneRowScorer(surrogate, surrogate.guard_predictor)
    exact = np.isin(np.array(batch.paths, dtype=object), list(surrogate.expressions_))
    assert exact.any()
    for i, row in enumerate(rows):
        prediction, score = scorer(row)
        assert score == pytest.approx(batch.score[i], rel=1e-6, abs=1e-6)
        assert prediction.output == pytest.approx(batch.outputs[i], rel=1e-12)  # the expert: to float64 rounding
        if exact[i]:
            assert prediction.output == fn(**row) and prediction.spread == batch.details.spread[i] == 0.0


def test_smooth_branch_keeps_its_expert(wave_hybrid: Surrogate) -> None:
    report = wave_hybrid.manifest["training"]["exact"]
    assert wave_hybrid.path_aware
    statuses = sorted(entry["status"] for path, entry in report.items() if path != "*")
    assert statuses == ["exact", "exact", "neural"]
    rng = np.random.default_rng(4)
    exact_rows = [{"x": float(x), "zone": str(z)} for x, z in
                  zip(np.concatenate([rng.uniform(0.0, 1.9, 300), rng.uniform(5.1, 8.0, 300)]), rng.choice(["A", "B"], 600))]
    got = wave_hybrid.predict_batch(_columns(WAVE, exact_rows))
    assert np.array_equal(got, np.array([wave(**r) for r in exact_rows]))
    assert [wave_hybrid(**r) for r in exact_rows[:100]] == [wave(**r) for r in exact_rows[:100]]
    middle = [{"x": float(x), "zone": "A"} for x in rng.uniform(2.2, 4.8, 200)]
    values = wave_hybrid.predict_batch(_columns(WAVE, middle))
    truth = np.array([wave(**r) for r in middle])
    assert not np.array_equal(values, truth)  # the expert: close, not exact
    assert np.mean(np.abs(values - truth) <= 0.05) > 0.5


def test_save_load_keeps_the_expressions(fee_hybrid: Surrogate, tmp_path: Any) -> None:
    folder = fee_hybrid.save(tmp_path / "fee")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert set(manifest["expressions"]) == set(fee_hybrid.expressions_)
    loaded = Surrogate.load(folder)
    assert loaded.expressions_ == fee_hybrid.expressions_
    rows = FEE.sample(500, seed=12)
    columns = _columns(FEE, rows)
    assert np.array_equal(loaded.predict_batch(columns), fee_hybrid.predict_batch(columns))
    assert [loaded(**r) for r in rows[:100]] == [fee(**r) for r in rows[:100]]


@pytest.mark.parametrize("damage", ["unknown node", "code as text", "unknown path"])
def test_crafted_expressions_are_refused(fee_hybrid: Surrogate, tmp_path: Any, damage: str) -> None:
    from replace import _manifest as mf

    folder = fee_hybrid.save(tmp_path / "fee")
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    first = sorted(manifest["expressions"])[0]
    if damage == "unknown node":
        manifest["expressions"][first]["root"] = {"kind": "exec", "source": "__import__('os').system('true')"}
    elif damage == "code as text":
        manifest["expressions"][first]["root"] = {"kind": "var", "name": "__import__('os')"}
    else:
        manifest["expressions"]["not_a_path"] = manifest["expressions"][first]
    manifest["manifest_sha256"] = mf.manifest_digest(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(SurrogateFileError):
        Surrogate.load(folder)


def test_onnx_export_of_a_hybrid_is_refused(fee_hybrid: Surrogate, tmp_path: Any) -> None:
    with pytest.raises(HybridExportError, match="exact (expressions|program)"):
        fee_hybrid.export_onnx(tmp_path / "fee.onnx")
    assert not (tmp_path / "fee.onnx").exists()


def test_exact_off_is_the_neural_surrogate(tmp_path: Any) -> None:
    surrogate = fit(fee, schema=FEE, tolerance=CENT, budget_s=3, seed=0, progress=False, budget_clock="work",
                    exact="off")
    assert surrogate.expressions_ == {} and surrogate._exact is None
    assert surrogate.metrics.exact_paths == {}
    assert "exact" not in surrogate.manifest["training"]
    folder = surrogate.save(tmp_path / "off")
    assert "expressions" not in json.loads((folder / "manifest.json").read_text())
    rows = FEE.sample(300, seed=2)
    details = surrogate.predict_details(_columns(FEE, rows), precision="float64")
    raw, _ = surrogate._reference_raw(surrogate.input_encoder.encode(_columns(FEE, rows), dtype=np.float64))
    assert np.array_equal(details.outputs, surrogate._decode_raw(raw, details.paths).outputs)


def test_exact_option_is_checked_by_name() -> None:
    with pytest.raises(InvalidArgument, match="exact"):
        fit(fee, schema=FEE, budget_s=3, exact="yes")


def line_total(net: float, qty: int) -> float:
    """One path: a plain model, answered by one expression for every row."""
    return round(net * qty * 1.19, 2)


def test_plain_model_uses_one_expression_for_every_row() -> None:
    schema = Schema.from_function(line_total, net=(1.0, 500.0), qty=(1, 40))
    surrogate = fit(line_total, schema=schema, tolerance=CENT, budget_s=3, seed=0, progress=False,
                    budget_clock="work")
    assert not surrogate.path_aware and set(surrogate.expressions_) == {"*"}
    assert surrogate.metrics.exact_paths["*"]["expression"] in ("round(net * qty * 1.19, 2)",
                                                                "round(1.19 * net * qty, 2)")
    rows = schema.sample(1000, seed=9)
    truth = [line_total(**r) for r in rows]
    assert [surrogate(**r) for r in rows] == truth
    assert surrogate.predict_batch(_columns(schema, rows)).tolist() == truth
    assert surrogate.metrics.agreement == 1.0


def test_row_function_is_evaluate_row_for_every_node_kind() -> None:
    """The one-row closures the surrogate calls give the very floats of the expression tree."""
    from probes._expressions import Call, Const, Div, Expression, MinMax, Product, Round, Sum, Table, Var
    from replace._hybrid import row_function

    zone = Table(("zone",), ((("A",), 1.5), (("B",), 2.25)))
    pair = Table(("zone", "express"), ((("A", True), 3.0), (("A", False), 1.0), (("B", True), 4.5)))
    affine = Sum((Const(0.3), Product((Const(0.07), Var("w"), Var("q"))), Product((Var("w"), zone))))
    trees = [
        Round(affine, 0.01), Round(affine, 0.05, "half_up", 1e-6), Round(affine, 0.01, "floor", 1e-6),
        Round(affine, 0.1, "ceil", 1e-6), Round(affine, 1 / 3, "half_even"), Round(affine, 100.0),
        Sum((Call("ceil", Div(Var("w"), Const(15.0))), Call("floor", Var("w")), Call("int", Var("q")),
             Call("abs", Sum((Var("w"), Const(-7.5)))))),
        MinMax("min", (MinMax("max", (affine, Const(2.0))), Const(40.0))),
        Product((pair, Var("q"))),  # a missing key: NaN
    ]
    rng = np.random.default_rng(0)
    rows = [{"w": float(w), "q": int(q), "zone": str(z), "express": bool(e)}
            for w, q, z, e in zip(rng.uniform(0, 30, 400), rng.integers(1, 9, 400), rng.choice(["A", "B"], 400),
                                  rng.random(400) < 0.5)]
    columns = {k: np.array([r[k] for r in rows], dtype=object if k == "zone" else None) for k in rows[0]}
    for tree in trees:
        expression, fn = Expression(tree), row_function(tree)
        vector = expression.evaluate(columns)
        for i, row in enumerate(rows):
            expected = expression.evaluate_row(row)
            got = fn(row)
            assert got == expected or (math.isnan(got) and math.isnan(expected)), (expression.to_python(), row)
            assert got == vector[i] or (math.isnan(got) and math.isnan(vector[i]))
