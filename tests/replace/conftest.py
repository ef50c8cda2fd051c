"""Shared fitted surrogates for the replace tests (fitted once per session, tiny budgets, on the
work clock so that they are the same surrogates however loaded the CI machine is)."""

from __future__ import annotations

import math

import pytest

from probes import Schema, Tolerance, Traces


def smooth(x: float, y: float) -> float:
    return 1.5 * x - 0.5 * y + 0.3 * x * y


def fee(weight: float, zone: str, express: bool) -> float:
    base = {"A": 5.0, "B": 9.0, "C": 14.0}[zone]
    if weight > 2.0:
        base = base + 6.0
    if weight > 5.0:
        base = base + 10.0
    if express:
        base = base + 4.0
    return base


def guarded_sqrt(x: float, zone: str) -> float:
    if x < 0:
        raise ValueError("x must not be negative")
    factor = {"N": 1.0, "S": 2.0}[zone]  # KeyError for ""
    return factor * math.sqrt(x)


def grade(score: float, bonus: int) -> str:
    total = score + bonus
    if total < 40:
        return "low"
    if total < 70:
        return "mid"
    return "high"


def polar(r: float, theta: float) -> tuple[float, float]:
    return (r * math.cos(theta), r * math.sin(theta))


@pytest.fixture(scope="session")
def smooth_fit():
    from replace import fit

    schema = Schema.from_function(smooth, x=(0.0, 1.0), y=(0.0, 1.0))
    # exact="off": smooth is a polynomial, which a hybrid would answer by its expression; these
    # tests are about the network (torch module, ONNX, fast paths)
    return fit(smooth, schema=schema, tolerance=Tolerance(abs=0.02), budget_s=5, seed=0, progress=False,
               budget_clock="work", exact="off")


@pytest.fixture(scope="session")
def raising_fit():
    from replace import fit

    schema = Schema.from_function(guarded_sqrt, x=(-1.0, 4.0), zone=["N", "S", ""])
    return fit(guarded_sqrt, schema=schema, tolerance=Tolerance(abs=0.1, rel=0.05), budget_s=5, seed=0,
               progress=False, ensemble_size=2, budget_clock="work")


@pytest.fixture(scope="session")
def label_fit():
    from replace import fit

    schema = Schema.from_function(grade, score=(0.0, 100.0), bonus=(0, 5))
    return fit(grade, schema=schema, budget_s=4, seed=0, progress=False, budget_clock="work",
               exact="off")  # the network itself (the exact program: test_exact_program.py)


@pytest.fixture(scope="session")
def vector_fit():
    from replace import fit

    traces = Traces.from_calls(polar, [{"r": 0.5 + i / 100, "theta": (i % 17) / 10} for i in range(100)])
    schema = Schema.from_function(polar, r=(0.5, 1.5), theta=(0.0, 1.6))
    return fit(polar, traces, schema=schema, tolerance=Tolerance(abs=0.05), budget_s=4, seed=0, progress=False,
               budget_clock="work")


@pytest.fixture(scope="session")
def fee_schema():
    return Schema.from_function(fee, weight=(0.1, 10.0), zone=["A", "B", "C"], express=bool)
