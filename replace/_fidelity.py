"""How faithful a candidate is to the original on a set of inputs, row by row.

One definition used by `fit` (validation, held-out metrics) and by bench/fidelity.py (for
neuroswap and for the baselines alike): a row agrees when both raise the same exception type,
or both return and the value is within tolerance (labels: equal).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from probes import ErrorInfo, Tolerance


def _hashable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return tuple(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def compare(
    kind: str,
    ref_outputs: Sequence[Any],
    ref_errors: Sequence[ErrorInfo | None],
    outputs: Sequence[Any] | np.ndarray,
    errors: Sequence[ErrorInfo | None] | None,
    tolerance: Tolerance,
) -> dict[str, Any]:
    """Per-row agreement and error of a candidate against the reference.

    `kind`: "real", "vector", "label" or "none". Returns arrays `agree` (bool) and `error`
    (abs error for reals, max over elements for vectors, 0/1 for labels; NaN where one side
    raised) and the summary `agreement`, `mean_error`, `max_error`, `outcome_agreement`.
    """
    n = len(ref_outputs)
    errors = list(errors) if errors is not None else [None] * n
    agree = np.zeros(n, dtype=bool)
    error = np.full(n, np.nan)
    outcome = np.zeros(n, dtype=bool)
    ref_raise = np.array([e is not None for e in ref_errors], dtype=bool)
    cand_raise = np.array([e is not None for e in errors], dtype=bool)
    both_raise = ref_raise & cand_raise
    for i in np.flatnonzero(both_raise):
        same = ref_errors[i].type == errors[i].type  # type: ignore[union-attr]
        outcome[i] = agree[i] = same
    both_value = ~ref_raise & ~cand_raise
    idx = np.flatnonzero(both_value)
    outcome[idx] = True
    if idx.size:
        if kind in ("real", "vector"):
            ref = np.asarray([np.asarray(ref_outputs[i], dtype=float).reshape(-1) for i in idx], dtype=float)
            cand = np.asarray([np.asarray(outputs[i], dtype=float).reshape(-1) for i in idx], dtype=float)
            diff = np.abs(cand - ref)
            ok = (diff <= tolerance.bound(ref)) | (np.isnan(ref) & np.isnan(cand))
            agree[idx] = ok.all(axis=1)
            error[idx] = np.where(np.isnan(diff), np.inf, diff).max(axis=1)
        else:
            same = np.array([bool(_hashable(ref_outputs[i]) == _hashable(outputs[i])) for i in idx], dtype=bool)
            agree[idx] = same
            error[idx] = (~same).astype(float)
    finite = error[np.isfinite(error)]
    return {
        "agree": agree,
        "error": error,
        "n": n,
        "agreement": float(agree.mean()) if n else float("nan"),
        "outcome_agreement": float(outcome.mean()) if n else float("nan"),
        "mean_error": float(finite.mean()) if finite.size else float("nan"),
        "max_error": float(np.max(error[~np.isnan(error)])) if np.any(~np.isnan(error)) else float("nan"),
    }


def summarise(result: dict[str, Any], paths: Sequence[str | None] | None = None) -> dict[str, Any]:
    """The JSON-friendly summary of `compare`, with a per-path breakdown when paths are known."""
    out = {k: result[k] for k in ("n", "agreement", "outcome_agreement", "mean_error", "max_error")}
    if paths is not None and any(p is not None for p in paths):
        per: dict[str, Any] = {}
        labels = np.array([p if p is not None else "?" for p in paths], dtype=object)
        # most frequent first; ties by id, so the order is the same in every process
        for label in sorted(set(labels.tolist()), key=lambda p: (-int(np.sum(labels == p)), str(p))):
            mask = labels == label
            err = result["error"][mask]
            fin = err[np.isfinite(err)]
            per[label] = {
                "share": float(mask.mean()),
                "n": int(mask.sum()),
                "agreement": float(result["agree"][mask].mean()),
                "mean_error": float(fin.mean()) if fin.size else float("nan"),
                "max_error": float(np.max(err[~np.isnan(err)])) if np.any(~np.isnan(err)) else float("nan"),
            }
        out["per_path"] = per
    return out
