"""ONNX export of a surrogate, checked against torch with onnxruntime.

The exported graph is `Surrogate.torch_module()`: encoded float32 inputs (N, d) to outputs in
the original units, so an ONNX runtime needs the same input encoding (stored in the
surrogate's manifest) in front of it.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from typing import Any

import numpy as np

from probes._validation import require


def export_onnx(surrogate: Any, path: str | os.PathLike[str], *, dynamo: bool | None = None,
                opset: int = 18, check_rows: int = 256, seed: int = 0) -> dict[str, Any]:
    """Write `path` (.onnx) and return {"path", "exporter", "max_abs_diff", "rows"}.

    `dynamo=None` tries the torch.export-based exporter first (needs onnxscript) and falls
    back to the TorchScript one; the result is compared with torch on `check_rows` inputs
    drawn from the schema's domain.
    """
    program = getattr(surrogate, "program_", None)
    if program is not None:
        from ._hybrid import HybridExportError

        raise HybridExportError(
            f"export_onnx({surrogate.function}) : the surrogate answers {program.served_leaves} of "
            f"{len(program.leaves)} regions of the code's partition with its exact program (tests on the arguments, "
            "expressions in float64), outside the network, and an ONNX graph would hold only the network, whose "
            "answers there differ. Export a surrogate fitted with exact='off', or serve this one from Python")
    expressions = getattr(surrogate, "expressions_", None)
    if expressions:
        from ._hybrid import HybridExportError

        raise HybridExportError(
            f"export_onnx({surrogate.function}) : the surrogate answers {len(expressions)} branch path(s) with exact "
            f"expressions (paths {', '.join(sorted(expressions))}), evaluated in float64 outside the network, and an "
            "ONNX graph would hold only the network, whose answers there differ. Export a surrogate fitted with "
            "exact='off', or serve this one from Python")
    require("onnx", "onnx")
    ort = require("onnxruntime", "onnx")
    import torch

    module = surrogate.torch_module()
    columns = surrogate.schema.sample_columns(check_rows, seed=seed)
    X = surrogate.encode(columns)
    example = torch.from_numpy(X[:4].copy())
    target = os.fspath(path)
    attempts = [True, False] if dynamo is None else [bool(dynamo)]
    last_error: Exception | None = None
    used = ""
    for use_dynamo in attempts:
        try:
            with warnings.catch_warnings(), open(os.devnull, "w") as sink, \
                    contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                warnings.simplefilter("ignore")
                if use_dynamo:
                    torch.onnx.export(module, (example,), target, dynamo=True, input_names=["x"],
                                      output_names=["y"], dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
                                      opset_version=opset)
                else:
                    torch.onnx.export(module, (example,), target, dynamo=False, input_names=["x"],
                                      output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
                                      opset_version=opset)
            used = "dynamo" if use_dynamo else "torchscript"
            break
        except Exception as exc:  # fall back to the other exporter
            last_error = exc
    if not used:
        raise RuntimeError(f"ONNX export of {surrogate.function} failed: {last_error}") from last_error
    session = ort.InferenceSession(target, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    onnx_out = session.run(None, {name: X})[0]
    with torch.no_grad():
        torch_out = module(torch.from_numpy(X)).numpy()
    diff = float(np.max(np.abs(onnx_out.astype(np.float64) - torch_out.astype(np.float64)))) if X.size else 0.0
    return {"path": target, "exporter": used, "max_abs_diff": diff, "rows": int(len(X))}
