"""ONNX export: the exported graph answers like the torch module (checked with onnxruntime)."""

from __future__ import annotations

import numpy as np
import pytest

from probes import Tolerance

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")


def test_onnx_matches_torch_plain(smooth_fit, tmp_path):
    report = smooth_fit.export_onnx(tmp_path / "smooth.onnx")
    assert (tmp_path / "smooth.onnx").is_file()
    assert report["max_abs_diff"] < 1e-4 and report["rows"] > 0
    assert report["exporter"] in ("dynamo", "torchscript")


def test_onnx_matches_torch_labels(label_fit, tmp_path):
    import onnxruntime as ort
    import torch

    label_fit.export_onnx(tmp_path / "labels.onnx")
    columns = label_fit.schema.sample_columns(64, seed=4)
    X = label_fit.encode(columns)
    session = ort.InferenceSession(str(tmp_path / "labels.onnx"), providers=["CPUExecutionProvider"])
    logits = session.run(None, {session.get_inputs()[0].name: X})[0]
    assert logits.shape == (64, label_fit.output_encoder.n_classes)
    with torch.no_grad():
        expected = label_fit.torch_module()(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    classes = [label_fit.output_encoder.classes[i].value for i in logits.argmax(axis=1)]
    assert classes == list(label_fit.predict_batch(columns))


def test_onnx_path_aware_model(fee_schema, tmp_path):
    from replace import fit

    from conftest import fee

    s = fit(fee, schema=fee_schema, tolerance=Tolerance(abs=0.05), budget_s=3, seed=0, progress=False,
            path_aware=True, ensemble_size=1, widths=(16,), depths=(1,), rounds=0, exact="off")
    assert s.path_aware
    report = s.export_onnx(tmp_path / "paths.onnx")
    assert report["max_abs_diff"] < 1e-3
