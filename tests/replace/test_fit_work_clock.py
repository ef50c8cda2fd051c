"""The work clock: `fit(..., budget_clock="work")` gives one surrogate per seed, at any load."""

from __future__ import annotations


import pytest

from probes import InvalidArgument, Schema, Tolerance
from probes import _clock
from replace import fit
from replace._distributed import parameters_digest

from conftest import fee


def _fingerprint(surrogate) -> str:
    assert surrogate.weights.tensors()  # there are weights to compare
    program = surrogate.program_.to_dict() if surrogate.program_ is not None else None
    return parameters_digest(surrogate) + repr(program)  # the exact program too (its search is not timed)


def _fit_fee(fn, seed: int = 0):
    schema = Schema.from_function(fn, weight=(0.1, 10.0), zone=["A", "B", "C"], express=bool)
    return fit(fn, schema=schema, tolerance=Tolerance(abs=0.05), budget_s=2.0, seed=seed, progress=False,
               budget_clock="work", ensemble_size=2, widths=(16, 32), depths=(2,))


@pytest.fixture(scope="module")
def fee_work_fit():
    return _fit_fee(fee)


def test_same_seed_same_surrogate(fee_work_fit):
    again = _fit_fee(fee)
    assert _fingerprint(fee_work_fit) == _fingerprint(again)
    assert again.metrics.oracle_calls == fee_work_fit.metrics.oracle_calls
    assert again.metrics.agreement == fee_work_fit.metrics.agreement
    assert again.metrics.curve == fee_work_fit.metrics.curve


def test_result_does_not_depend_on_load(fee_work_fit):
    with _clock.competing_load():
        loaded = _fit_fee(fee)
    assert _fingerprint(fee_work_fit) == _fingerprint(loaded)
    assert loaded.metrics.oracle_calls == fee_work_fit.metrics.oracle_calls
    assert loaded.metrics.agreement == fee_work_fit.metrics.agreement


def test_another_seed_gives_another_surrogate(fee_work_fit):
    other = _fit_fee(fee, seed=1)
    assert _fingerprint(fee_work_fit) != _fingerprint(other)


def test_work_fit_learns(fee_work_fit):
    assert fee_work_fit.metrics.agreement > 0.5
    assert fee_work_fit.program_ is not None  # the fingerprints above compare a program
    assert fee_work_fit.manifest["hyperparameters"]["budget_clock"] == "work"


def test_bad_clock_is_named():
    schema = Schema.from_function(fee, weight=(0.1, 10.0), zone=["A", "B", "C"], express=bool)
    with pytest.raises(InvalidArgument, match="budget_clock='cpu'"):
        fit(fee, schema=schema, budget_s=1.0, budget_clock="cpu")


_DIGEST_SCRIPT = """
from probes import Schema, Tolerance
from replace import fit
from replace._distributed import parameters_digest


def tariff(x: float, y: float) -> float:
    base = 2.0 * x + 0.3 * y * y
    if x > 0.6:
        base = base + 1.0
    if y > 0.3:
        base = base + 0.5
    return base


schema = Schema.from_function(tariff, x=(0.0, 1.0), y=(0.0, 1.0))
s = fit(tariff, schema=schema, tolerance=Tolerance(abs=1e-4), budget_s=8.0, initial_samples=1000, seed=0, progress=False,
        budget_clock="work", ensemble_size=2, widths=(16,), depths=(2,), rounds_when="always", max_candidates=1)
assert any("oracle_calls" in r and r["round"] > 0 for r in s.metrics.rounds), s.metrics.rounds  # rounds ran
print(parameters_digest(s), s.metrics.oracle_calls)
"""


@pytest.mark.slow
def test_same_surrogate_in_other_processes_with_other_hash_seeds(tmp_path):
    """Set and dict orders of strings change with PYTHONHASHSEED; nothing in fit may depend on them."""
    import os
    import subprocess
    import sys
    script = tmp_path / "digest.py"
    script.write_text(_DIGEST_SCRIPT)
    outputs = []
    for hash_seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        outputs.append(done.stdout.strip().splitlines()[-1])
    assert outputs[0] == outputs[1] == outputs[2]
