"""`_fit.py` split into stage modules is only a move: fits on the work clock (bit-identical at any
load, see test_fit_work_clock.py) give the same training data, weights, exact program and metrics
as before the split. The digests were recorded on the code before the move (see the commit that
added this file); a change of behaviour changes them. A deliberate change of fit's behaviour
records new ones (run with NEUROSWAP_PRINT_DIGESTS=1 to print them)."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from probes import Schema, Tolerance, Traces
from replace import fit

from conftest import fee, grade, smooth


def _digest(surrogate) -> str:
    """sha256 over the training data hash, every weight's bytes, the exact program and metrics."""
    if isinstance(surrogate, _Both):
        return hashlib.sha256("".join(_digest(s) for s in surrogate.surrogates).encode()).hexdigest()
    h = hashlib.sha256()
    h.update(surrogate.manifest["training"]["data_hash"].encode())
    tensors = surrogate.weights.tensors()
    assert tensors  # there are weights to compare
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        h.update(name.encode())
        h.update(str(array.dtype).encode() + repr(array.shape).encode())
        h.update(array.tobytes())
    program = surrogate.program_.to_dict() if surrogate.program_ is not None else None
    h.update(repr(program).encode())
    m = surrogate.metrics
    h.update(repr((m.agreement, m.validation_agreement, m.oracle_calls, m.path_calls, m.test_calls,
                   m.training_rows, m.architecture, m.parameters, m.curve, m.search, m.rounds,
                   m.calibration_calls)).encode())
    return h.hexdigest()


def _smooth():
    schema = Schema.from_function(smooth, x=(0.0, 1.0), y=(0.0, 1.0))
    return fit(smooth, schema=schema, tolerance=Tolerance(abs=0.02), budget_s=2, seed=0, progress=False,
               budget_clock="work", exact="off")


def _fee():
    """Piecewise with a category, from recorded traces (inferred schema, held-out traces for the
    guard, trace paths), with hard cases and the exact paths and program."""
    rng = np.random.default_rng(3)
    inputs = [{"weight": float(rng.uniform(0.1, 10.0)), "zone": str(rng.choice(["A", "B", "C"])),
               "express": bool(rng.random() < 0.5)} for _ in range(600)]
    traces = Traces.from_calls(fee, inputs)
    hard = [{"weight": 2.0, "zone": "A", "express": False}, {"weight": 5.0, "zone": "C", "express": True}]
    return fit(fee, traces, tolerance=Tolerance(abs=0.05), budget_s=2, seed=0, progress=False,
               budget_clock="work", hard_cases=hard)


def _no_oracle():
    """oracle=False: the traces are the only data, part of them the test set."""
    rng = np.random.default_rng(5)
    inputs = [{"weight": float(rng.uniform(0.1, 10.0)), "zone": str(rng.choice(["A", "B", "C"])),
               "express": bool(rng.random() < 0.5)} for _ in range(800)]
    return fit(fee, Traces.from_calls(fee, inputs), oracle=False, budget_s=2, seed=0, progress=False,
               budget_clock="work")


def _grade():
    schema = Schema.from_function(grade, score=(0.0, 100.0), bonus=(0, 5))
    return fit(grade, schema=schema, budget_s=2, seed=0, progress=False, budget_clock="work")


def _rounds():
    """Refinement rounds (error-driven draws per branch path and between them; the classifier's
    least-certain draws) with few first draws and rounds_when="always"."""
    from conftest import guarded_sqrt

    schema = Schema.from_function(guarded_sqrt, x=(-1.0, 4.0), zone=["N", "S", ""])
    real = fit(guarded_sqrt, schema=schema, tolerance=Tolerance(abs=0.01), budget_s=8, seed=0, progress=False,
               budget_clock="work", initial_samples=300, rounds_when="always", search="halving", ensemble_size=2,
               exact="off", widths=(8, 16, 32), depths=(2,))
    assert len(real.metrics.rounds) >= 2 and "kept" in real.metrics.rounds[1]  # a round ran
    schema = Schema.from_function(grade, score=(0.0, 100.0), bonus=(0, 5))
    labels = fit(grade, schema=schema, budget_s=2, seed=0, progress=False, budget_clock="work", initial_samples=300,
                 rounds_when="always", exact="off", target_agreement=1.0)
    assert len(labels.metrics.rounds) >= 2 and "kept" in labels.metrics.rounds[1]
    return _Both(real, labels)


class _Both:
    """Two surrogates digested as one."""

    def __init__(self, *surrogates):
        self.surrogates = surrogates


FITS = {"smooth": _smooth, "fee": _fee, "grade": _grade, "rounds": _rounds, "no_oracle": _no_oracle}

#: first recorded on the code before `_fit.py` was split into stage modules (c057c06; unchanged by the
#: five moves); recorded again for the deliberate changes of issue 16 (the budget search as default,
#: the search's share of training 0.5 -> 0.35, refinement rounds vetoed by recorded traffic and a
#: round not kept taken back); "rounds" again for the polish's L-BFGS running to its deadline
#: (3ac5935; the other four digests are unchanged by it)
DIGESTS = {
    "smooth": "d98531ef78d24a6574a84ff0cc360bd6c785320c822c3d72900521985fb619a8",
    "fee": "69c8c3f5a3f6f50776757fd9200d0beedf325f48dcd5a0695c0531067630d59f",
    "rounds": "de8b33da98db04e618662c62739e294ed307702c9f2cc184bf378d45fb30fa94",
    "no_oracle": "4a6a115b311f5da925b24153727cee9644c755e3e82e17d98f209f5cfd3e9db7",
    "grade": "f104be35ae7481adca5d47e1dff2e95b86f542e1dccbb79cb66bf19ac3cd3332",
}


@pytest.mark.parametrize("name", sorted(FITS))
def test_fit_digest_unchanged(name: str) -> None:
    digest = _digest(FITS[name]())
    if os.environ.get("NEUROSWAP_PRINT_DIGESTS"):
        print(f"\nDIGEST {name} {digest}")
    assert digest == DIGESTS[name]
