"""The work clock: `fit(..., budget_clock="work")` gives one surrogate per seed, at any load."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from probes import InvalidArgument, Schema, Tolerance
from replace import fit

from conftest import fee


class _Busy:
    """A thread that competes for the interpreter while it runs: a loaded machine, in-process."""

    def __enter__(self) -> "_Busy":
        self.stop = threading.Event()

        def spin() -> None:
            while not self.stop.is_set():
                sum(i * i for i in range(2000))

        self.thread = threading.Thread(target=spin, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def _fingerprint(surrogate) -> list[np.ndarray]:
    weights = surrogate.weights
    nets = list(weights.members or []) + list(weights.gate or []) + [n for e in (weights.experts or []) for n in e]
    return [a for net in nets for a in list(net.weights) + list(net.biases)]


def _fit_fee(fn, seed: int = 0):
    schema = Schema.from_function(fn, weight=(0.1, 10.0), zone=["A", "B", "C"], express=bool)
    return fit(fn, schema=schema, tolerance=Tolerance(abs=0.05), budget_s=2.0, seed=seed, progress=False,
               budget_clock="work", ensemble_size=2, widths=(16, 32), depths=(2,))


@pytest.fixture(scope="module")
def fee_work_fit():
    return _fit_fee(fee)


def test_same_seed_same_surrogate(fee_work_fit):
    again = _fit_fee(fee)
    first, second = _fingerprint(fee_work_fit), _fingerprint(again)
    assert len(first) == len(second) > 0
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
    assert again.metrics.oracle_calls == fee_work_fit.metrics.oracle_calls
    assert again.metrics.agreement == fee_work_fit.metrics.agreement
    assert again.metrics.curve == fee_work_fit.metrics.curve


def test_result_does_not_depend_on_load(fee_work_fit):
    with _Busy():
        loaded = _fit_fee(fee)
    assert all(np.array_equal(a, b) for a, b in zip(_fingerprint(fee_work_fit), _fingerprint(loaded)))
    assert loaded.metrics.oracle_calls == fee_work_fit.metrics.oracle_calls
    assert loaded.metrics.agreement == fee_work_fit.metrics.agreement


def test_another_seed_gives_another_surrogate(fee_work_fit):
    other = _fit_fee(fee, seed=1)
    assert not all(np.array_equal(a, b) for a, b in zip(_fingerprint(fee_work_fit), _fingerprint(other)))


def test_work_fit_learns(fee_work_fit):
    assert fee_work_fit.metrics.agreement > 0.5
    assert fee_work_fit.manifest["hyperparameters"]["budget_clock"] == "work"


def test_bad_clock_is_named():
    schema = Schema.from_function(fee, weight=(0.1, 10.0), zone=["A", "B", "C"], express=bool)
    with pytest.raises(InvalidArgument, match="budget_clock='cpu'"):
        fit(fee, schema=schema, budget_s=1.0, budget_clock="cpu")
