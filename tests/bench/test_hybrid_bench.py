"""bench/hybrid.py: run_one on a tiny fee rule with a 3 s budget fits both modes and judges them on
the same fresh inputs (the hybrid answers its exact paths, the report says which)."""

from __future__ import annotations

import json

import numpy as np

from bench.hybrid import MODES, run_one, to_markdown
from case_studies.rules import CENTS, SuiteEntry


def tiny_fee(weight_kg: float, express: bool) -> float:
    """Two weight steps and an express surcharge; refuses a parcel without weight."""
    if weight_kg <= 0:
        raise ValueError("weight must be positive")
    fee = 4.90 if weight_kg <= 2 else 8.90
    if express:
        fee += 3.50
    return round(fee, 2)


def tiny_inputs(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"weight_kg": round(float(rng.uniform(0.1, 5.0)), 2), "express": bool(rng.random() < 0.2)}
            for _ in range(n)]


TINY = SuiteEntry("tiny_fee", tiny_fee, {"weight_kg": (0.05, 5.0), "express": [True, False]}, tiny_inputs, CENTS,
                  "tiny two-step fee", ({"weight_kg": 0.0, "express": False},))


def test_run_one_compares_both_modes():
    row = json.loads(json.dumps(run_one(TINY, budget=3.0, seed=0, n_traces=200, n_eval=400, timing_rows=50)))
    assert row["function"] == "tiny_fee" and set(row["modes"]) == set(MODES)
    for mode in MODES:
        judged = row["modes"][mode]
        assert "error" not in judged, judged
        for dist in ("production", "domain"):
            assert judged[dist]["n"] == 400 and 0.0 <= judged[dist]["agreement"] <= 1.0
    auto = row["modes"]["auto"]
    assert auto["exact_paths"], auto  # constant fees per path: exact
    assert all(entry["expression"] for entry in auto["exact_paths"].values())
    assert auto["production"]["agreement"] >= row["modes"]["off"]["production"]["agreement"]
    assert set(row["single_call_us"]) == {"original", "exact=auto", "exact=off"}
    table = to_markdown({"budget_s": 3.0, "n_eval": 400, "functions": [row]})
    assert "| tiny_fee |" in table
