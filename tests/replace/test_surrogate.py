"""The Surrogate object: calls, refusals, batch and single paths, save/load, integrity."""

from __future__ import annotations

import inspect
import json
import math
import shutil
import warnings

import numpy as np
import pytest

from probes import OutOfDomainError, SurrogateFileError
from replace import BatchPrediction, OnePrediction, Surrogate

from conftest import guarded_sqrt, polar, smooth


def test_call_binds_like_the_original(smooth_fit):
    assert smooth_fit(0.5, 0.5) == pytest.approx(smooth_fit(x=0.5, y=0.5))
    assert smooth_fit(0.5, y=0.5) == pytest.approx(smooth_fit(y=0.5, x=0.5))
    for args, kwargs in [((0.5,), {}), ((0.5, 0.5, 0.5), {}), ((0.5,), {"x": 0.5}), ((0.5, 0.5), {"z": 1})]:
        with pytest.raises(TypeError) as ours:
            smooth_fit(*args, **kwargs)
        with pytest.raises(TypeError) as theirs:
            smooth(*args, **kwargs)
        assert str(ours.value) == str(theirs.value)
    assert list(inspect.signature(smooth_fit).parameters) == ["x", "y"]


@pytest.mark.parametrize("kwargs, name", [
    ({"x": float("nan"), "y": 0.5}, "x"),
    ({"x": 0.5, "y": 7.0}, "y"),
    ({"x": "0.5", "y": 0.5}, "x"),
    ({"x": 0.5, "y": None}, "y"),
])
def test_bad_input_raises_out_of_domain(smooth_fit, kwargs, name):
    with pytest.raises(OutOfDomainError) as info:
        smooth_fit(**kwargs)
    assert f"{name}=" in str(info.value)


def test_unknown_category_raises_out_of_domain(raising_fit):
    with pytest.raises(OutOfDomainError, match="zone='W'"):
        raising_fit(1.0, "W")
    with pytest.raises(OutOfDomainError, match="zone"):
        raising_fit.predict_one({"x": 1.0, "zone": "W"})


def test_single_call_matches_batch(smooth_fit):
    columns = smooth_fit.schema.sample_columns(50, seed=3)
    batch = smooth_fit.predict_batch(columns, precision="float64")
    single = [smooth_fit(x=float(x), y=float(y)) for x, y in zip(columns["x"], columns["y"])]
    np.testing.assert_allclose(batch, single, rtol=1e-9, atol=1e-12)
    # the default float32 batch: the precision the weights were trained in
    np.testing.assert_allclose(smooth_fit.predict_batch(columns), single, rtol=1e-5, atol=1e-6)
    assert isinstance(single[0], float)


def test_predict_batch_checks_the_domain(smooth_fit):
    with pytest.raises(OutOfDomainError, match="y="):
        smooth_fit.predict_batch({"x": np.array([0.5, 0.5]), "y": np.array([0.5, 3.0])})
    out = smooth_fit.predict_batch({"x": np.array([0.5, 0.5]), "y": np.array([0.5, 3.0])}, check=False)
    assert out.shape == (2,) and np.all(np.isfinite(out))


def test_predict_one_and_details_interface(raising_fit):
    one = raising_fit.predict_one({"x": 2.0, "zone": "S"})
    assert isinstance(one, OnePrediction) and isinstance(one.output, float) and one.error is None
    assert one.spread >= 0.0
    raised = raising_fit.predict_one({"x": -0.5, "zone": "N"})
    assert raised.output is None and raised.error.type == "ValueError"
    details = raising_fit.predict_details({"x": np.array([2.0, -0.5]), "zone": np.array(["S", "N"], dtype=object)})
    assert isinstance(details, BatchPrediction)
    assert list(details.raises) == [False, True] and math.isnan(details.outputs[1])
    assert details.errors[1].type == "ValueError" and details.errors[0] is None
    assert details.spread.shape == (2,)
    assert raising_fit.ensemble_size == 2


def test_torch_module_matches_numpy_path(smooth_fit):
    import torch

    columns = smooth_fit.schema.sample_columns(64, seed=5)
    X = torch.from_numpy(smooth_fit.encode(columns)).requires_grad_(True)
    module = smooth_fit.torch_module()
    assert not module.training
    y = module(X)
    assert y.shape == (64,)
    np.testing.assert_allclose(y.detach().numpy(), smooth_fit.predict_batch(columns), rtol=1e-4, atol=1e-4)
    y.sum().backward()
    assert X.grad is not None and torch.all(torch.isfinite(X.grad))
    relus = [m for m in module.modules() if isinstance(m, (torch.nn.SiLU, torch.nn.ReLU, torch.nn.Tanh))]
    assert len({id(m) for m in relus}) == len(relus) > 0


def test_torch_module_vector_shape(vector_fit):
    import torch

    columns = vector_fit.schema.sample_columns(8, seed=1)
    y = vector_fit.torch_module()(torch.from_numpy(vector_fit.encode(columns)))
    assert tuple(y.shape) == (8, 2)


def test_save_load_round_trip_is_identical(raising_fit, tmp_path):
    folder = raising_fit.save(tmp_path / "s")
    again = Surrogate.load(folder)
    columns = raising_fit.schema.sample_columns(200, seed=9)
    a, b = raising_fit.predict_details(columns), again.predict_details(columns)
    np.testing.assert_array_equal(a.outputs, b.outputs)
    assert a.errors == b.errors
    assert again(2.0, "S") == raising_fit(2.0, "S")
    manifest = json.loads((folder / "manifest.json").read_text())
    for key in ("source_hash", "schema", "training", "versions", "hyperparameters", "metrics", "weights"):
        assert key in manifest
    assert manifest["training"]["rows"] > 0 and "data_hash" in manifest["training"]
    assert set(manifest["versions"]) >= {"python", "torch", "numpy", "neuroswap"}
    assert again.metrics.agreement == raising_fit.metrics.agreement
    assert not any(p.suffix in (".pkl", ".pt", ".pickle") for p in folder.iterdir())


def _copy(fitted, tmp_path, name):
    return fitted.save(tmp_path / name)


def test_tampered_weights_raise(smooth_fit, tmp_path):
    folder = _copy(smooth_fit, tmp_path, "t")
    data = bytearray((folder / "weights.safetensors").read_bytes())
    data[-3] ^= 0xFF
    (folder / "weights.safetensors").write_bytes(bytes(data))
    with pytest.raises(SurrogateFileError, match="weights.safetensors"):
        Surrogate.load(folder)


def test_truncated_weights_raise(smooth_fit, tmp_path):
    folder = _copy(smooth_fit, tmp_path, "tr")
    data = (folder / "weights.safetensors").read_bytes()
    (folder / "weights.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(SurrogateFileError, match="weights.safetensors"):
        Surrogate.load(folder)


def test_edited_or_truncated_manifest_raises(smooth_fit, tmp_path):
    folder = _copy(smooth_fit, tmp_path, "m")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["tolerance"]["abs"] = 10.0
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SurrogateFileError, match="manifest.json"):
        Surrogate.load(folder)
    text = json.dumps(manifest)
    (folder / "manifest.json").write_text(text[: len(text) // 2])
    with pytest.raises(SurrogateFileError, match="manifest.json"):
        Surrogate.load(folder)


def test_foreign_files_raise(tmp_path):
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "manifest.json").write_text(json.dumps({"hello": "world"}))
    with pytest.raises(SurrogateFileError, match="manifest.json"):
        Surrogate.load(tmp_path / "f")
    (tmp_path / "g.bin").write_bytes(b"\x80\x04not a surrogate")
    with pytest.raises(SurrogateFileError, match="g.bin"):
        Surrogate.load(tmp_path / "g.bin")
    with pytest.raises(SurrogateFileError):
        Surrogate.load(tmp_path / "missing")


def test_changed_source_warns_with_both_hashes(smooth_fit, tmp_path):
    from probes import source_hash

    folder = _copy(smooth_fit, tmp_path, "w")

    def smooth(x: float, y: float) -> float:  # an edited version of the legacy function
        return 1.5 * x - 0.5 * y + 0.31 * x * y

    with pytest.warns(UserWarning) as record:
        Surrogate.load(folder, fn=smooth)
    text = str(record[0].message)
    assert smooth_fit.source_hash in text and source_hash(smooth) in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from conftest import smooth as same

        Surrogate.load(folder, fn=same)


def _with_defaults(amount: float, /, rate: float = 0.5, *, rounding: bool = False) -> float:
    value = amount * rate
    return round(value, 2) if rounding else value


def test_defaults_positional_only_and_keyword_only_bind_like_the_original():
    from probes import OutputSpec, Schema
    from replace import fit

    schema = Schema.from_function(_with_defaults, amount=(0.0, 10.0), rate=(0.0, 1.0), rounding=bool,
                                  output=OutputSpec("real", python_type="float"))
    s = fit(_with_defaults, schema=schema, budget_s=1.0, progress=False, ensemble_size=1, widths=(8,), depths=(1,),
            rounds=0)
    assert isinstance(s(2.0), float) and isinstance(s(2.0, 0.25, rounding=True), float)
    assert list(inspect.signature(s).parameters) == ["amount", "rate", "rounding"]
    for args, kwargs in [((), {"amount": 2.0}), ((2.0, 0.5, True), {}), ((), {})]:
        with pytest.raises(TypeError) as ours:
            s(*args, **kwargs)
        with pytest.raises(TypeError) as theirs:
            _with_defaults(*args, **kwargs)
        assert str(ours.value).split("(")[1] == str(theirs.value).split("(")[1]
    one = s.predict_one({"amount": 2.0})  # defaults filled in
    assert isinstance(one.output, float)


def test_outputs_on_a_decimal_grid_are_snapped_to_it(tmp_path):
    """Amounts the original rounds to cents come back as exact cents, also after save/load."""
    import numpy as np

    from probes import Schema, Tolerance, Traces
    from replace import fit

    def price(qty: float) -> float:
        return round(1.37 * qty + 0.5, 2)

    traces = Traces.from_calls(price, [{"qty": float(q)} for q in np.linspace(0.0, 10.0, 400)])
    schema = Schema.infer(price, traces)
    assert schema.output.quantum == 0.01
    surrogate = fit(price, traces, schema=schema, tolerance=Tolerance(abs=0.02), budget_s=3, seed=0)
    fresh = np.linspace(0.05, 9.95, 37)
    for model in (surrogate, _reload(surrogate, tmp_path)):
        singles = [model(qty=float(q)) for q in fresh]
        batch = model.predict_batch({"qty": fresh})
        for value in list(singles) + list(batch):
            assert value == round(value, 2)


def _reload(surrogate, tmp_path):
    from replace import Surrogate

    surrogate.save(tmp_path / "snap")
    return Surrogate.load(tmp_path / "snap")


# -- predict_batch: rows outside the domain (out_of_domain="raise" | "nan" | "original") -------------

def _with_outside(columns, name, rows, value):
    columns = {k: np.array(v, copy=True) for k, v in columns.items()}
    if columns[name].dtype.kind in "iu" and isinstance(value, float):
        columns[name] = columns[name].astype(float)
    if columns[name].dtype.kind in "US" and isinstance(value, str):
        columns[name] = columns[name].astype(object)
    columns[name][rows] = value
    return columns


def test_predict_batch_says_how_many_rows_are_outside_and_which_is_first(smooth_fit):
    columns = _with_outside(smooth_fit.schema.sample_columns(100, seed=4), "y", [10, 20, 30], 1.5)
    with pytest.raises(OutOfDomainError) as info:
        smooth_fit.predict_batch(columns)
    text = str(info.value)
    assert "3 of 100 rows" in text and "row 10" in text and "y=1.5" in text and "[0.0, 1.0]" in text
    assert "out_of_domain='nan'" in text and "fn=" in text
    with pytest.raises(OutOfDomainError, match=r"row 55: x=nan is not finite \(allowed: real in \[0.0, 1.0\]\); 1 of 100"):
        smooth_fit.predict_batch(_with_outside(columns, "y", [10, 20, 30], 0.5) | {
            "x": _with_outside(columns, "x", [55], np.nan)["x"]})
    # check=False still checks nothing
    assert np.isfinite(smooth_fit.predict_batch(columns, check=False)).all()


def test_predict_batch_nan_policy_answers_the_inside_rows(smooth_fit, label_fit, vector_fit):
    outside = [3, 17, 18]
    for surrogate, name, value in [(smooth_fit, "x", 1.01), (vector_fit, "theta", -0.5), (label_fit, "bonus", 9)]:
        columns = _with_outside(surrogate.schema.sample_columns(40, seed=5), name, outside, value)
        answers = surrogate.predict_batch(columns, out_of_domain="nan", precision="float64")
        inside = np.setdiff1d(np.arange(40), outside)
        reference = surrogate.predict_batch({k: v[inside] for k, v in columns.items()}, precision="float64")
        assert answers.shape[0] == 40 and answers.shape[1:] == reference.shape[1:]
        if surrogate is label_fit:
            assert answers.dtype == object and all(answers[i] is None for i in outside)
            assert list(answers[inside]) == list(reference)
        else:
            assert np.isnan(answers[outside]).all()
            np.testing.assert_allclose(answers[inside], reference, rtol=1e-12, atol=1e-12)
    # every row outside: no prediction at all, only the blanks
    everything = _with_outside(smooth_fit.schema.sample_columns(5, seed=6), "x", slice(None), 7.0)
    assert np.isnan(smooth_fit.predict_batch(everything, out_of_domain="nan")).all()


def test_predict_batch_original_policy_asks_the_legacy_function(raising_fit, label_fit):
    from conftest import grade

    columns = raising_fit.schema.sample_columns(30, seed=7)
    columns = {"x": np.abs(columns["x"]), "zone": np.array(["N", "S"] * 15, dtype=object)}
    columns["x"][[2, 5]] = [9.0, 16.0]      # past the range: sqrt answers
    columns["zone"][[5, 8]] = ["S", "W"]   # "W": an unknown category, where the original raises
    answers = raising_fit.predict_batch(columns, out_of_domain="original", fn=guarded_sqrt)
    assert answers[2] == guarded_sqrt(9.0, "N") == 3.0
    assert answers[5] == guarded_sqrt(16.0, "S") == 8.0
    assert np.isnan(answers[8])            # KeyError in the original: NaN, as predict_batch writes raising rows
    inside = np.setdiff1d(np.arange(30), [2, 5, 8])
    np.testing.assert_allclose(answers[inside], raising_fit.predict_batch({k: v[inside] for k, v in columns.items()}),
                               rtol=1e-5, atol=1e-6, equal_nan=True)
    labels = _with_outside(label_fit.schema.sample_columns(10, seed=8), "score", [4], 120.0)
    answered = label_fit.predict_batch(labels, out_of_domain="original", fn=grade)
    assert answered[4] == "high" and answered.dtype == object


def test_predict_batch_original_policy_needs_fn(smooth_fit):
    from probes import InvalidArgument

    columns = smooth_fit.schema.sample_columns(10, seed=9)  # all inside: refused all the same
    with pytest.raises(InvalidArgument, match=r"fn=None : .*Pass fn="):
        smooth_fit.predict_batch(columns, out_of_domain="original")
    with pytest.raises(InvalidArgument, match="fn=3 : must be callable"):
        smooth_fit.predict_batch(columns, out_of_domain="original", fn=3)
    np.testing.assert_array_equal(smooth_fit.predict_batch(columns, out_of_domain="original", fn=smooth),
                                  smooth_fit.predict_batch(columns))


@pytest.mark.parametrize("policy", ["skip", "NaN", None])
def test_predict_batch_refuses_an_unknown_out_of_domain_policy(smooth_fit, policy):
    from probes import InvalidArgument

    with pytest.raises(InvalidArgument, match=r"out_of_domain=.* : must be one of 'raise', 'nan', 'original'"):
        smooth_fit.predict_batch(smooth_fit.schema.sample_columns(5, seed=1), out_of_domain=policy)
