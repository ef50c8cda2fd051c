"""bench/exact.py: run_one on a tiny fee rule with a 3 s budget gives the JSON the full run
writes (every model judged on both distributions, exactness, sizes, single-call times)."""

from __future__ import annotations

import json
import math

import numpy as np

from bench.exact import MODELS, _clean, run_one, summary, to_markdown
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


def test_run_one_gives_the_json_structure():
    row = run_one(TINY, budget=3.0, seed=0, n_traces=200, n_eval=400, timing_rows=50)
    text = json.dumps(_clean(row))  # strict JSON: no NaN
    assert "NaN" not in text
    row = json.loads(text)
    assert row["function"] == "tiny_fee" and row["kind"] == "real" and row["n_eval"] == 400
    assert set(row["raise_share"]) == {"production", "domain"}
    assert set(row["models"]) == set(MODELS)
    for name in ("surrogate", "rules", "tree", "hgb"):
        model = row["models"][name]
        assert "error" not in model, model
        assert isinstance(model["exact"], bool)
        for dist in ("production", "domain"):
            judged = model[dist]
            assert judged["n"] == 400
            assert 0.0 <= judged["agreement"] <= 1.0
            assert judged["disagreements"] == round(400 * (1 - judged["agreement"]))
            assert model["exact"] is False or judged["disagreements"] == 0
    gp = row["models"]["gplearn"]
    assert "production" in gp or "skipped" in gp or "error" in gp
    rules = row["models"]["rules"]
    assert rules["lines"] > 0 and rules["leaves"] >= 1
    assert set(row["single_call_us"]) == {"original", "surrogate", "rules"}
    assert all(v > 0 and math.isfinite(v) for v in row["single_call_us"].values())
    assert set(row["single_call_ratio"]) == {"surrogate", "rules"}

    results = {"budget_s": 3.0, "n_eval": 400, "functions": [row]}
    counts = summary(results)
    assert set(counts) == set(MODELS) and counts["rules"]["of"] == 1
    table = to_markdown(results)
    assert "| tiny_fee |" in table and "Exact on both distributions" in table


def test_run_one_builds_only_the_models_asked_for():
    """--models rules never fits; a peer alone fits the surrogate for its rows but judges only itself."""
    row = run_one(TINY, budget=3.0, seed=0, n_traces=200, n_eval=300, timing_rows=20, models=("rules",))
    assert set(row["models"]) == {"rules"} and "production" in row["models"]["rules"]
    assert set(row["single_call_us"]) == {"original", "rules"}
    counts = summary({"functions": [row]})
    assert set(counts) == {"rules"}
    row = run_one(TINY, budget=3.0, seed=0, n_traces=200, n_eval=300, timing_rows=20, models=("tree",))
    assert set(row["models"]) == {"tree"} and "production" in row["models"]["tree"]
    assert set(row["single_call_us"]) == {"original"}
    try:
        run_one(TINY, budget=3.0, models=("forest",))
    except ValueError as exc:
        assert "forest" in str(exc)
    else:
        raise AssertionError("an unknown model was accepted")
