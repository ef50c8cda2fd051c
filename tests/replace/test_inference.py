"""The fast inference paths (replace/_fastpath.py) against the reference float64 evaluation.

Surrogates here are built from random weights (no training: fast, and every combination of
output head, activation, ensemble size and path-aware routing is reachable), then asked the
same questions through `__call__`, `predict_one`, `predict_details`/`predict_batch` in float32
and the float64 reference. Discrete answers (class, raise, path, snapped digits) must be the
same; real values within float64 rounding (one row) or float32 rounding (batches).
"""

from __future__ import annotations

import math
from dataclasses import replace as dc_replace

import numpy as np
import pytest

from probes import OutOfDomainError, OutputSpec, Schema, Tolerance
from probes._identity import function_name
from replace import Surrogate
from replace import _manifest as mf
from replace._encoding import InputEncoder
from replace._output_encoding import OutputEncoder
from replace._fastpath import ManyRows, close_top2, domain_mask, fragile_rows
from replace._models import Architecture, ModelWeights, NumpyNet
from replace._sampling import in_domain_mask

from conftest import fee, grade, guarded_sqrt, polar, smooth


def growth(x: float, y: float) -> float:
    return math.exp(8.0 * x) * (1.0 + y)


def count(x: float, y: float) -> int:
    return int(100 * x) + int(10 * y)


def _nets(rng, count, sizes, activation, scale=1.6):
    nets = []
    for _ in range(count):
        ws = [(rng.normal(size=(a, b)) * scale / math.sqrt(a)).astype(np.float32) for a, b in zip(sizes, sizes[1:])]
        bs = [(rng.normal(size=b) * 0.5).astype(np.float32) for b in sizes[1:]]
        nets.append(NumpyNet(ws, bs, activation))
    return nets


def synthetic(fn, schema, *, path_aware=False, activation="silu", gate_activation="relu", ensemble=3, paths=4,
              width=16, depth=2, seed=0, tolerance=Tolerance(abs=0.01, rel=0.01)) -> Surrogate:
    """A surrogate of `fn` with random weights (its answers are arbitrary but deterministic)."""
    rng = np.random.default_rng(seed)
    columns = schema.sample_columns(300, seed=seed)
    rows = [{k: columns[k][i] for k in schema.names} for i in range(300)]
    outputs, errors = [], []
    from probes import ErrorInfo

    for row in rows:
        try:
            outputs.append(fn(**{k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}))
            errors.append(None)
        except Exception as exc:
            outputs.append(None)
            errors.append(ErrorInfo.from_exception(exc))
    enc = InputEncoder.fit(schema, columns)
    out = OutputEncoder.fit(schema.output, outputs, errors, tolerance)
    d, k = enc.width_, out.out_width
    hidden = [width] * depth
    arch = Architecture(width, depth, activation, ensemble, path_aware)
    if path_aware:
        gate = _nets(rng, 1 if gate_activation == "relu" else 2, [d] + [width * 2] * depth + [paths], gate_activation)
        experts = [_nets(rng, ensemble, [d] + hidden + [k], activation) for _ in range(paths)]
        weights = ModelWeights(arch, [], gate, experts, [f"path{p}" for p in range(paths)])
    else:
        weights = ModelWeights(arch, _nets(rng, ensemble, [d] + hidden + [k], activation))
    return Surrogate(schema=schema, tolerance=tolerance, input_encoder=enc, output_encoder=out, weights=weights,
                     signature=mf.signature_spec(fn), function=function_name(fn))


def _schemas():
    return {
        "smooth": (smooth, Schema.from_function(smooth, x=(0.0, 1.0), y=(0.0, 1.0))),
        "raising": (guarded_sqrt, Schema.from_function(guarded_sqrt, x=(-1.0, 4.0), zone=["N", "S", ""])),
        "label": (grade, Schema.from_function(grade, score=(0.0, 100.0), bonus=(0, 5))),
        "vector": (polar, Schema.from_function(polar, r=(0.5, 1.5), theta=(0.0, 1.6))),
        "fee": (fee, Schema.from_function(fee, weight=(0.1, 10.0), zone=["A", "B", "C"], express=bool)),
        "growth": (growth, Schema.from_function(growth, x=(0.0, 1.0), y=(0.0, 1.0))),
        "count": (count, Schema.from_function(count, x=(0.0, 1.0), y=(0.0, 1.0))),
    }


SCHEMAS = _schemas()

CASES = [
    ("smooth", dict()),
    ("smooth", dict(ensemble=1, activation="relu")),
    ("smooth", dict(path_aware=True)),
    ("smooth", dict(path_aware=True, ensemble=1, activation="tanh", gate_activation="silu")),
    ("raising", dict(ensemble=2)),
    ("raising", dict(path_aware=True, ensemble=3, paths=3, depth=3)),
    ("label", dict(activation="tanh")),
    ("label", dict(path_aware=True, gate_activation="tanh", paths=5)),
    ("vector", dict(ensemble=2, depth=3)),
    ("vector", dict(path_aware=True, paths=2, ensemble=1, depth=1)),
    ("fee", dict(path_aware=True, paths=6, ensemble=3, width=32, depth=3)),
    ("fee", dict(ensemble=1, activation="relu", depth=1)),
    ("growth", dict(tolerance=Tolerance(abs=1e-4, rel=1e-3))),
    ("growth", dict(path_aware=True, ensemble=1, tolerance=Tolerance(abs=1e-4, rel=1e-3))),
    ("count", dict(path_aware=True, paths=3)),
    ("smooth", dict(depth=0, ensemble=2)),                    # a single linear layer
    ("raising", dict(path_aware=True, depth=0, paths=2)),
]


@pytest.fixture(scope="module", params=range(len(CASES)), ids=lambda i: f"{CASES[i][0]}-{i}")
def model(request):
    name, options = CASES[request.param]
    fn, schema = SCHEMAS[name]
    return fn, synthetic(fn, schema, seed=request.param, **options)


def _rows(schema, n, seed):
    columns = schema.sample_columns(n, seed=seed)
    rows = [{k: columns[k][i] for k in schema.names} for i in range(n)]
    return columns, [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()} for r in rows]


def _same_output(a, b, rtol):
    if a is None or b is None:
        assert a is None and b is None
    elif isinstance(a, str) or isinstance(b, str):
        assert a == b
    else:
        np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=rtol, atol=rtol)
        assert type(a) is type(b)


def test_predict_one_and_call_match_the_reference(model):
    fn, s = model
    _, rows = _rows(s.schema, 300, seed=11)
    outcomes = set()
    for row in rows:
        fast, ref = s.predict_one(row), s._reference_one(row)
        assert fast.error == ref.error and fast.path == ref.path
        _same_output(fast.output, ref.output, 1e-9)
        assert fast.spread == pytest.approx(ref.spread, rel=1e-9, abs=1e-12)
        outcomes.add("raise" if ref.error else "value")
        if ref.error is not None:
            with pytest.raises(ref.error.exception_class()) as info:
                s(**row)
            assert str(info.value) == ref.error.message or ref.error.type.endswith("KeyError")
        else:
            _same_output(s(**row), ref.output, 1e-9)
    if s.output_encoder.classes and any(c.kind == "raise" for c in s.output_encoder.classes):
        assert outcomes == {"raise", "value"}  # the random model answers both ways: both are compared


def test_rows_outside_the_domain_answer_like_the_reference(model):
    fn, s = model
    wide = s.schema.widen(0.5)  # numbers up to half a span outside their range
    columns, rows = _rows(wide, 300, seed=14)
    outside = 0
    for row in rows:
        inside = s.schema.contains(row)[0]
        outside += not inside
        try:
            ref = s._reference_one(row)
        except OutOfDomainError as exc:  # not encodable at all (an integer category out of range)
            with pytest.raises(OutOfDomainError) as info:
                s.predict_one(row)
            assert str(info.value) == str(exc)
            continue
        fast = s.predict_one(row)
        assert fast.error == ref.error and fast.path == ref.path
        _same_output(fast.output, ref.output, 1e-9)
        if not inside:
            with pytest.raises(OutOfDomainError):
                s(**row)
    assert outside > 50
    try:
        ref = s.predict_details(columns, precision="float64")
    except OutOfDomainError as exc:
        with pytest.raises(OutOfDomainError) as info:
            s.predict_details(columns)
        assert str(info.value) == str(exc)
    else:
        fast = s.predict_details(columns)
        assert fast.paths == ref.paths and fast.errors == ref.errors
    with pytest.raises(OutOfDomainError):
        s.predict_batch(columns)


def test_batch_float32_matches_the_reference(model):
    fn, s = model
    columns, rows = _rows(s.schema, 5000, seed=12)
    fast = s.predict_details(columns)
    ref = s.predict_details(columns, precision="float64")
    assert np.array_equal(fast.raises, ref.raises)
    assert fast.errors == ref.errors
    assert fast.paths == ref.paths
    if s.path_aware:
        assert len(set(ref.paths)) > 1  # routing is exercised, not trivially one path
    if fast.outputs.dtype == object:
        assert list(fast.outputs) == list(ref.outputs)
    else:
        scale = np.nanmax(np.abs(ref.outputs)) + 1.0
        np.testing.assert_allclose(fast.outputs, ref.outputs, rtol=1e-5, atol=1e-5 * scale, equal_nan=True)
    # spread: float32 rounding on values; votes (and the inf of a split ensemble) exact
    finite = np.isfinite(ref.spread)
    assert np.array_equal(finite, np.isfinite(fast.spread))
    np.testing.assert_allclose(fast.spread[finite], ref.spread[finite], rtol=1e-4,
                               atol=1e-4 * (np.max(np.abs(ref.spread[finite]), initial=0.0) + 1))
    batch = s.predict_batch(columns)
    if batch.dtype == object:
        assert list(batch) == list(fast.outputs)
    else:
        np.testing.assert_array_equal(batch, fast.outputs)
    # the single-call path gives the same answers as the batch
    python = s.python_outputs(fast)
    for i in range(0, 5000, 97):
        one = s.predict_one(rows[i])
        assert one.error == fast.errors[i] and (one.path == (fast.paths[i] if fast.paths else None))
        _same_output(one.output, python[i], 1e-5)


def test_the_cases_cover_every_output_decoding():
    seen = set()
    for i, (name, options) in enumerate(CASES):
        fn, schema = SCHEMAS[name]
        out = synthetic(fn, schema, seed=i, **options).output_encoder
        seen.add((out.kind, out.warp, out.python_type, bool(out.classes)))
    assert {("real", "asinh", "float", False), ("real", "none", "int", False), ("real", "none", "float", True),
            ("label", "none", "str", True), ("vector", "none", "tuple", False)} <= seen, seen


def test_chunk_boundaries_do_not_matter(model):
    fn, s = model
    columns, _ = _rows(s.schema, 777, seed=13)
    X = s.encode(columns).astype(np.float64)
    whole_raw, whole_choice = ManyRows(s.weights, s.output_encoder.out_width, chunk=10_000)(X)
    small_raw, small_choice = ManyRows(s.weights, s.output_encoder.out_width, chunk=50)(X)
    np.testing.assert_allclose(small_raw, whole_raw, rtol=1e-5, atol=1e-5)
    if whole_choice is not None:
        assert np.array_equal(whole_choice, small_choice)


def test_large_batches_are_encoded_in_chunks_with_the_same_answers_and_errors():
    from replace._surrogate import ENCODE_CHUNK

    fn, schema = SCHEMAS["raising"]
    s = synthetic(fn, schema, path_aware=True, paths=3, seed=9)
    n = ENCODE_CHUNK + 3000
    columns, _ = _rows(schema, n, seed=10)
    fast, ref = s.predict_details(columns), s.predict_details(columns, precision="float64")
    assert fast.paths == ref.paths and fast.errors == ref.errors
    np.testing.assert_allclose(fast.outputs, ref.outputs, rtol=1e-5, atol=1e-5, equal_nan=True)
    as_lists = {k: list(v) for k, v in columns.items()}
    np.testing.assert_array_equal(s.predict_batch(as_lists, check=False), s.predict_batch(columns, check=False))
    # the error names the whole batch's first bad column (x), not the first chunk's (zone)
    bad = {k: v.copy() for k, v in columns.items()}
    bad["zone"] = bad["zone"].astype(object)
    bad["zone"][5] = "W"
    bad["x"][ENCODE_CHUNK + 10] = np.nan
    for precision in ("float32", "float64"):
        with pytest.raises(OutOfDomainError, match="^x=") as info:
            s.predict_details(bad, precision=precision)
        assert "not finite" in str(info.value) and info.value.__context__ is None


def test_routing_ties_are_settled_in_float64():
    fn, schema = SCHEMAS["smooth"]
    s = synthetic(fn, schema, path_aware=True, paths=3, seed=5)
    gate = s.weights.gate[0]
    # paths 1 and 2 win everywhere and tie up to float32 rounding: path 2's last-layer weights
    # are path 1's one float32 step up, so float64 always prefers path 2 (relu units are >= 0)
    # while float32 sums round either way
    w, b = gate.weights[-1].copy(), gate.biases[-1].copy()
    w[:, 2] = np.nextafter(w[:, 1], np.float32(np.inf))
    b[1] += np.float32(100.0)
    b[2] = b[1]
    gate.weights[-1], gate.biases[-1] = w, b
    s = Surrogate(schema=s.schema, tolerance=s.tolerance, input_encoder=s.input_encoder,
                  output_encoder=s.output_encoder, weights=s.weights, signature=s._signature, function=s.function)
    columns, _ = _rows(schema, 400, seed=3)
    fast, ref = s.predict_details(columns), s.predict_details(columns, precision="float64")
    assert fast.paths == ref.paths and "path2" in ref.paths
    raw, choice = ManyRows(s.weights, s.output_encoder.out_width)(s.encode(columns).astype(np.float64))
    assert [s.weights.path_ids[i] for i in choice] == ref.paths


def test_snapped_outputs_are_the_reference_digits():
    fn, schema = SCHEMAS["fee"]
    schema = dc_replace(schema, output=dc_replace(schema.output, quantum=0.01))
    s = synthetic(fn, schema, path_aware=True, paths=3, seed=2)
    assert s.output_encoder.decimals == 2
    columns, rows = _rows(schema, 4000, seed=4)
    fast, ref = s.predict_batch(columns), s.predict_batch(columns, precision="float64")
    np.testing.assert_array_equal(fast, ref)
    assert all(s(**r) == round(s._reference_one(r).output, 2) for r in rows[:200])


def test_fragile_rows_flags_ties_and_grid_boundaries():
    assert list(close_top2(np.array([[1.0, 1.0 + 1e-6, 0.0], [3.0, 1.0, 0.0]]))) == [True, False]
    out = OutputEncoder(kind="real", width=1, python_type="float", mean=[0.0], std=[1.0], quantum=0.01)
    raw = np.array([[[1.005], [1.004], [1.0]]])  # (M=1, N=3, 1)
    assert list(fragile_rows(raw, out)) == [0]


def test_domain_mask_matches_the_row_by_row_check():
    fn, schema = SCHEMAS["fee"]
    rng = np.random.default_rng(0)
    n = 500
    columns = {"weight": rng.uniform(-1, 11, n), "zone": rng.choice(np.array(["A", "B", "C", "D"]), n),
               "express": rng.random(n) < 0.5}
    assert np.array_equal(domain_mask(schema, columns), in_domain_mask(schema, columns))
    columns["zone"] = np.array(list(columns["zone"][:-1]) + [7], dtype=object)  # object column: row-by-row
    assert np.array_equal(domain_mask(schema, columns), in_domain_mask(schema, columns))
    fn, schema = SCHEMAS["label"]
    columns = {"score": rng.uniform(0, 100, n), "bonus": rng.integers(-1, 7, n)}
    assert np.array_equal(domain_mask(schema, columns), in_domain_mask(schema, columns))


def test_predict_batch_rejects_an_unknown_category_and_a_bad_precision():
    fn, schema = SCHEMAS["fee"]
    s = synthetic(fn, schema, seed=1)
    columns, _ = _rows(schema, 100, seed=1)
    columns["zone"] = columns["zone"].copy()
    columns["zone"][40] = "Z"
    with pytest.raises(OutOfDomainError, match="row 40"):
        s.predict_batch(columns)
    with pytest.raises(Exception, match="precision"):
        s.predict_batch(columns, check=False, precision="float16")


def test_save_load_keeps_the_fast_paths(tmp_path):
    fn, schema = SCHEMAS["raising"]
    s = synthetic(fn, schema, path_aware=True, paths=3, seed=7)
    again = Surrogate.load(s.save(tmp_path / "s"))
    columns, rows = _rows(schema, 1000, seed=8)
    a, b = s.predict_details(columns), again.predict_details(columns)
    np.testing.assert_array_equal(a.outputs, b.outputs)
    assert a.paths == b.paths and a.errors == b.errors
    assert [again.predict_one(r) for r in rows[:100]] == [s.predict_one(r) for r in rows[:100]]


def test_python_outputs_are_the_row_by_row_values(model):
    fn, s = model
    columns, _ = _rows(s.schema, 300, seed=15)
    details = s.predict_details(columns)
    out = s.output_encoder
    expected = []
    for i, raised in enumerate(details.raises):
        if out.kind == "label":
            expected.append(details.outputs[i])
        elif raised or out.width == 0:
            expected.append(None)
        else:
            expected.append(out.python_value(np.atleast_1d(details.outputs[i])))
    got = s.python_outputs(details)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert type(a) is type(b)
        if isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b)
        else:
            assert a == b
