"""bench/fidelity.py's sampling claim is decided on the mean error over fit seeds (no fits run here)."""

from __future__ import annotations

import pytest

from bench.fidelity import sampling_decision


def _runs(sampling: str, cap: int, calls: int, wrong: list[int], n: int = 20000) -> list[dict]:
    return [{"sampling": sampling, "cap": cap, "seed": seed, "oracle_calls": calls, "agreement": 1.0 - w / n,
             "outcome_agreement": 1.0, "mean_error": w / n, "max_error": 1.0} for seed, w in enumerate(wrong)]


def test_decision_uses_the_mean_over_seeds_not_one_lucky_seed():
    uniform = _runs("uniform", 6000, 6000, [30, 40, 50])  # mean 40 wrong rows
    paths = [
        _runs("paths", 1500, 1500, [20, 70, 80]),  # seed 0 beats uniform's seed 0, the mean does not
        _runs("paths", 3000, 3000, [35, 40, 45]),  # mean 40: ties uniform, passes
        _runs("paths", 4500, 4500, [60, 60, 60]),  # worse again: still shown (the curve), not chosen
    ]
    d = sampling_decision(uniform, paths)
    assert [s["cap"] for s in d["path_aware"]] == [1500, 3000, 4500]  # every cap evaluated
    assert d["calls_needed"] == 3000 and d["uniform_calls"] == 6000
    assert d["ratio"] == pytest.approx(0.5) and d["target_met"] is True
    assert [s["meets_uniform"] for s in d["path_aware"]] == [False, True, False]
    first = d["path_aware"][0]
    assert first["error_mean"] == pytest.approx(170 / 3 / 20000)
    assert first["agreement"] == pytest.approx(1.0 - first["error_mean"])
    assert (first["error_min"], first["error_max"]) == pytest.approx((20 / 20000, 80 / 20000))
    assert first["paired"]["error_minus_uniform"] == pytest.approx([-10 / 20000, 30 / 20000, 30 / 20000])
    assert first["paired"]["seeds_no_worse"] == 1
    assert len(first["per_seed"]) == 3 and d["seeds"] == 3
    assert d["uniform"]["error_se"] == pytest.approx((10 / 20000) / 3 ** 0.5)


def test_one_seed_keeps_the_old_figures_and_a_miss_says_so():
    uniform = _runs("uniform", 6000, 5500, [30])
    paths = [_runs("paths", 1500, 1500, [31]), _runs("paths", 3000, 3000, [31])]
    d = sampling_decision(uniform, paths)
    assert d["calls_needed"] is None and d["ratio"] is None and d["target_met"] is False
    assert d["uniform"]["agreement"] == pytest.approx(1.0 - 30 / 20000) and d["uniform"]["error_se"] is None
    assert d["uniform_calls"] == 5500
    # a cap needing more than half of uniform's calls is found but misses the target
    d = sampling_decision(uniform, [_runs("paths", 4500, 4500, [29])])
    assert d["calls_needed"] == 4500 and d["target_met"] is False
