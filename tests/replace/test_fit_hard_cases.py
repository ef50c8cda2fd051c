"""fit(..., hard_cases=...): mined cases are learned, without costing precision elsewhere."""

from __future__ import annotations

import math

import numpy as np
import pytest

from probes import Comparison, Schema, Tolerance
from replace import fit


def step(x: float, y: float) -> float:
    """A smooth ramp with a step along a curve (no single-argument comparison to read a cut from)."""
    base = x + 0.5 * y
    if x * x + y * y > 0.8:
        base = base - 1.0
    return base


def tiny_rate(rate: float, amount: float) -> float:
    """Raises only where `rate` is so small that `1 + rate == 1` (a region of measure ~0)."""
    return amount * rate / ((1.0 + rate) - 1.0) if rate > 0 else amount


def heavy_tail(x: float) -> float:
    """Mostly 0..1, but 1000x larger in the last 0.5% of the range."""
    return x if x < 0.995 else 1000.0 * x


def _boundary_cases(n: int, seed: int) -> list[dict[str, float]]:
    """Inputs within 0.003 of the curved step, both sides."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0.1, math.pi / 2 - 0.1, n)
    radius = math.sqrt(0.8) + rng.uniform(3e-4, 3e-3, n) * np.where(np.arange(n) % 2, 1.0, -1.0)
    return [{"x": float(r * math.cos(a)), "y": float(r * math.sin(a))} for r, a in zip(radius, angle)]


COMMON = dict(budget_s=2.0, seed=0, progress=False, budget_clock="work", ensemble_size=2, widths=(32,), depths=(2,))


@pytest.mark.slow
def test_mined_boundary_cases_are_learned():
    schema = Schema.from_function(step, x=(0.0, 1.0), y=(0.0, 1.0))
    tolerance = Tolerance(abs=0.05)
    policy = Comparison(tolerance)
    hard = _boundary_cases(60, seed=1)
    held_out = _boundary_cases(300, seed=2)  # the same band, not shown to fit
    first = fit(step, schema=schema, tolerance=tolerance, **COMMON)
    refit = fit(step, schema=schema, tolerance=tolerance, hard_cases=hard, **COMMON)

    def failing(model, rows):
        return sum(not policy.check(step, model, kw).agree for kw in rows)

    assert refit.manifest["training"]["sources"]["hard"] == len(hard)
    assert failing(refit, hard) < failing(first, hard)
    assert failing(refit, held_out) < failing(first, held_out)


def test_hard_cases_are_path_traced():
    schema = Schema.from_function(step, x=(0.0, 1.0), y=(0.0, 1.0))
    hard = _boundary_cases(10, seed=3)
    s = fit(step, schema=schema, tolerance=Tolerance(abs=0.05), hard_cases=hard, path_budget=0.0, **COMMON)
    data = s.training_data_
    hard_paths = [p for p, src in zip(data["paths"], data["sources"]) if src == "hard"]
    assert len(hard_paths) == 10 and all(p is not None for p in hard_paths)


def test_an_outcome_no_ordinary_draw_shows_is_left_out():
    schema = Schema.from_function(tiny_rate, rate=(0.0, 0.2), amount=(1.0, 2.0))
    hard = [{"rate": 1e-300, "amount": 1.5}, {"rate": 5e-324, "amount": 1.2}, {"rate": 0.1, "amount": 1.1}]
    s = fit(tiny_rate, schema=schema, hard_cases=hard, **COMMON)
    assert s.manifest["training"]["hard_cases_skipped"] == 2
    assert s.manifest["training"]["sources"]["hard"] == 1
    assert s.metrics.outcome_agreement == 1.0  # no blurred "raises" region near rate 0
    assert isinstance(s(rate=0.05, amount=1.5), float)


def test_hard_cases_far_in_the_tail_are_tempered():
    schema = Schema.from_function(heavy_tail, x=(0.0, 1.0))
    hard = [{"x": 0.999}, {"x": 0.5}]
    s = fit(heavy_tail, schema=schema, tolerance=Tolerance(abs=0.01), hard_cases=hard, hard_weight=4.0, **COMMON)
    data = s.training_data_
    weights = {float(c): w for c, w, src in zip(data["columns"]["x"], data["weights"], data["sources"]) if src == "hard"}
    assert weights[0.5] == 4.0
    assert weights[0.999] < 0.5  # a 1000x output among mostly 0..1 outputs: a 3-sigma row's loss share
