"""The verdicts of bench/budget_table.py and bench/untuned.py (issue 16), on scripted runs (no
fits): a regression as large as the one the issue was filed for (inversek2j's AxBench error
0.95% at 45 s -> 1.15% at 180 s) must read as one, a change within the seed noise must not,
and merging split runs refuses a run measured twice."""

from __future__ import annotations

import json

import pytest

from bench import budget_table, untuned


def _runs(function, budget, axbench, agreement):
    return [{"function": function, "budget_s": budget, "seed": seed,
             "neuroswap": {"agreement": a, "axbench_error": e}}
            for seed, (e, a) in enumerate(zip(axbench, agreement))]


def test_the_regression_the_issue_was_filed_for_shows():
    runs = (_runs("inversek2j", 45.0, [0.0095, 0.0094, 0.0096], [0.20, 0.21, 0.22])
            + _runs("inversek2j", 180.0, [0.0115, 0.0114, 0.0116], [0.20, 0.21, 0.22]))
    s = budget_table.summary(runs, [45.0, 180.0])["inversek2j"]
    assert s["axbench_non_increasing_beyond_noise"] is False
    assert s["non_decreasing_beyond_noise"] is True
    assert "| NO (seed 0: 0.95 -> 1.15 at 180 s, seed 1" in budget_table.to_markdown({"budgets": [45.0, 180.0], "seeds": [0, 1, 2], "n_fresh": 10,
                                                   "summary": {"inversek2j": s}})


def test_a_change_within_the_seed_noise_is_not_a_regression():
    runs = (_runs("f", 45.0, [0.009, 0.011, 0.013], [0.30, 0.40, 0.35])
            + _runs("f", 180.0, [0.012, 0.010, 0.0125], [0.28, 0.33, 0.38]))
    s = budget_table.summary(runs, [45.0, 180.0])["f"]
    assert s["axbench_non_increasing_beyond_noise"] is True
    assert s["non_decreasing_beyond_noise"] is True
    # a fall in the share within tolerance beyond the noise does show
    worse = runs[:3] + _runs("f", 180.0, [0.010, 0.010, 0.010], [0.10, 0.11, 0.12])
    assert budget_table.summary(worse, [45.0, 180.0])["f"]["non_decreasing_beyond_noise"] is False


def test_one_seed_worse_beyond_the_noise_shows_even_when_the_mean_improves():
    # blackscholes at 180 s, seed 2, before this test: the search chose another shape, and that
    # seed fell from 32.7% to 7.4% within tolerance while the mean over seeds rose
    runs = (_runs("f", 45.0, [0.015, 0.014, 0.016], [0.29, 0.40, 0.33])
            + _runs("f", 180.0, [0.011, 0.011, 0.018], [0.65, 0.62, 0.07]))
    s = budget_table.summary(runs, [45.0, 180.0])["f"]
    assert s["budgets"]["180.0"]["agreement"]["mean"] > s["budgets"]["45.0"]["agreement"]["mean"]
    assert s["non_decreasing_beyond_noise"] is False
    assert [w["seed"] for w in s["agreement_worse_seeds"]] == [2]
    # the yardstick is the smaller budget's spread, not the larger one's own scatter
    assert abs(s["seed_noise_agreement"] - 0.11) < 1e-9


def test_budget_merge_refuses_a_run_measured_twice(tmp_path, monkeypatch):
    results = tmp_path / "bench" / "results"
    results.mkdir(parents=True)
    monkeypatch.setattr(budget_table, "ROOT", tmp_path)
    base = {"n_traces": 10, "n_fresh": 10, "clock": "work", "seeds": [0, 1, 2]}
    (results / "a.json").write_text(json.dumps({**base, "budgets": [45.0], "runs": _runs("f", 45.0, [0.01] * 3, [0.5] * 3)}))
    (results / "b.json").write_text(json.dumps({**base, "budgets": [180.0], "runs": _runs("f", 180.0, [0.01] * 3, [0.6] * 3)}))
    merged = budget_table.merge(["a.json", "b.json"], "m.json")
    assert merged["budgets"] == [45.0, 180.0] and len(merged["runs"]) == 6
    assert json.loads((results / "m.json").read_text())["summary"]["f"]["non_decreasing_beyond_noise"] is True
    with pytest.raises(SystemExit, match="measured twice"):
        budget_table.merge(["a.json", "a.json"], "m.json")


def test_budget_merge_joins_a_file_without_an_option_only_where_the_option_never_acted(tmp_path, monkeypatch):
    """round_baseline only judges refinement rounds: a file run without it joins one run with it
    when none of its runs judged a round (read from each run's rounds log), and not otherwise."""
    results = tmp_path / "bench" / "results"
    results.mkdir(parents=True)
    monkeypatch.setattr(budget_table, "ROOT", tmp_path)
    base = {"n_traces": 10, "n_fresh": 10, "clock": "work", "seeds": [0]}

    def runs(budget, rounds):
        return [{**r, "neuroswap": {**r["neuroswap"], "rounds": rounds}} for r in _runs("f", budget, [0.01], [0.5])]

    skipped = [{"round": 0, "rows": 10}, {"round": 1, "skipped": "not data-limited"}]
    judged = [{"round": 0, "rows": 10}, {"round": 1, "rows": 20, "kept": True}]
    with_option = {**base, "fit_options": {"round_baseline": "same_time"}}
    (results / "a.json").write_text(json.dumps({**with_option, "budgets": [45.0], "runs": runs(45.0, judged)}))
    (results / "b.json").write_text(json.dumps({**base, "budgets": [180.0], "runs": runs(180.0, skipped)}))
    (results / "c.json").write_text(json.dumps({**base, "budgets": [90.0], "runs": runs(90.0, judged)}))
    merged = budget_table.merge(["a.json", "b.json"], "m.json")
    assert merged["fit_options"] == {"round_baseline": "same_time"} and len(merged["runs"]) == 2
    with pytest.raises(SystemExit, match="would have acted in f 90 s seed 0"):
        budget_table.merge(["a.json", "c.json"], "m.json")
    # the run that option would have acted in, left out of its file by name: the rest joins, and
    # the same run measured again in another file stays
    assert len(budget_table.merge(["a.json", "c.json"], "m.json", drop=["c.json:f:90:0"])["runs"]) == 1
    (results / "e.json").write_text(json.dumps({**with_option, "budgets": [90.0], "runs": runs(90.0, judged)}))
    kept = budget_table.merge(["a.json", "c.json", "e.json"], "m.json", drop=["c.json:f:90:0"])
    assert sorted(r["budget_s"] for r in kept["runs"]) == [45.0, 90.0] and kept["dropped"] == ["c.json:f:90:0"]
    with pytest.raises(SystemExit, match="no run"):
        budget_table.merge(["a.json", "b.json"], "m.json", drop=["b.json:f:90:0"])
    (results / "d.json").write_text(json.dumps({**base, "fit_options": {"round_baseline": "before"},
                                                "budgets": [90.0], "runs": runs(90.0, skipped)}))
    with pytest.raises(SystemExit, match="differ in fit option round_baseline"):
        budget_table.merge(["a.json", "d.json"], "m.json")
    # a file made where the option was the default says so only through --assume, which is listed
    assumed = budget_table.merge(["a.json", "c.json"], "m.json", assume=["c.json:round_baseline=same_time"])
    assert len(assumed["runs"]) == 2 and assumed["assumed"] == ["c.json:round_baseline=same_time"]
    with pytest.raises(SystemExit, match="records round_baseline='before'"):
        budget_table.merge(["a.json", "d.json"], "m.json", assume=["d.json:round_baseline=same_time"])
    with pytest.raises(SystemExit, match="must be FILE:NAME=VALUE"):
        budget_table.merge(["a.json", "c.json"], "m.json", assume=["x.json:round_baseline=same_time"])


def _untuned_run(name, seed, ours, mlp, hgb):
    models = {model: {d: {"agreement": share} for d in untuned.DISTRIBUTIONS}
              for model, share in (("neuroswap", ours), ("sklearn_mlp", mlp), ("sklearn_hgb", hgb))}
    return {"function": name, "seed": seed, "models": models, "fit_seconds": 60.0, "fit_cpu_seconds": 100.0,
            "training_rows": 1000}


def test_untuned_verdict_is_behind_only_beyond_the_seed_spread():
    runs = [_untuned_run("f", s, o, m, h) for s, (o, m, h) in
            enumerate([(0.90, 0.95, 0.80), (0.91, 0.96, 0.92), (0.92, 0.97, 0.85)])]
    verdict = untuned.summarize(runs)["f"]["verdict"]["production"]
    assert verdict == {"sklearn_mlp": "behind", "sklearn_hgb": "level"}
    assert untuned.summarize(runs)["f"]["ahead_or_level"] is False


def test_untuned_merge_joins_seeds_and_refuses_a_run_measured_twice(tmp_path):
    base = {"budget_s": 60.0, "clock": "work", "n_traces": 10, "n_fresh": 10,
            "functions": {"bmi_category": {}}}
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({**base, "seeds": [0], "runs": [_untuned_run("bmi_category", 0, 0.9, 0.8, 0.7)]}))
    b.write_text(json.dumps({**base, "seeds": [1], "runs": [_untuned_run("bmi_category", 1, 0.9, 0.8, 0.7)]}))
    merged = untuned.merge([a, b], tmp_path / "m.json")
    assert merged["seeds"] == [0, 1] and merged["summary"]["bmi_category"]["seeds"] == [0, 1]
    with pytest.raises(SystemExit, match="measured twice"):
        untuned.merge([a, a], tmp_path / "m.json")


def test_untuned_merge_drops_named_runs_and_takes_an_assumed_default(tmp_path):
    """seed 0 run with round_baseline=same_time named, seeds 1-2 where it was the default: they
    join only through --assume (listed), and a run measured twice joins once --drop names it."""
    base = {"budget_s": 60.0, "clock": "work", "n_traces": 10, "n_fresh": 10, "functions": {"bmi_category": {}, "triage_level": {}}}
    named, unnamed, other = tmp_path / "named.json", tmp_path / "unnamed.json", tmp_path / "other.json"
    named.write_text(json.dumps({**base, "seeds": [0], "fit_options": {"round_baseline": "same_time"},
                                 "runs": [_untuned_run("bmi_category", 0, 0.9, 0.8, 0.7), _untuned_run("triage_level", 0, 0.9, 0.8, 0.7)]}))
    unnamed.write_text(json.dumps({**base, "seeds": [1, 2], "fit_options": {},
                                   "runs": [_untuned_run("bmi_category", s, 0.9, 0.8, 0.7) for s in (1, 2)]}))
    other.write_text(json.dumps({**base, "seeds": [0], "fit_options": {"round_baseline": "same_time"},
                                 "runs": [_untuned_run("triage_level", 0, 0.5, 0.8, 0.7)]}))
    with pytest.raises(SystemExit, match="fit_options differs .* --assume"):
        untuned.merge([named, unnamed], tmp_path / "m.json")
    merged = untuned.merge([named, unnamed], tmp_path / "m.json", assume=["unnamed.json:round_baseline=same_time"])
    assert merged["summary"]["bmi_category"]["seeds"] == [0, 1, 2] and merged["fit_options"] == {"round_baseline": "same_time"}
    assert merged["assumed"] == ["unnamed.json:round_baseline=same_time"]
    with pytest.raises(SystemExit, match="measured twice"):
        untuned.merge([named, other], tmp_path / "m.json")
    joined = untuned.merge([named, other], tmp_path / "m.json", drop=["other.json:triage_level:0"])
    assert joined["dropped"] == ["other.json:triage_level:0"]
    assert joined["summary"]["triage_level"]["neuroswap"]["production"]["per_seed"] == [0.9]    # the kept run, not the dropped one
    with pytest.raises(SystemExit, match="no run"):
        untuned.merge([named, other], tmp_path / "m.json", drop=["other.json:bmi_category:0"])
    with pytest.raises(SystemExit, match="records round_baseline='same_time'"):
        untuned.merge([named, unnamed], tmp_path / "m.json", assume=["named.json:round_baseline=before"])


def test_the_baselines_table_shows_every_run_its_clock_and_who_won():
    def run(budget, seed, ours, mlp, hgb, given=None):
        row = {"function": "f", "budget_s": budget, "seed": seed, "neuroswap": {"agreement": ours},
               "sklearn_mlp": {"agreement": mlp}, "sklearn_hgb": {"agreement": hgb},
               "most_faithful": max((("neuroswap", ours), ("sklearn_mlp", mlp), ("sklearn_hgb", hgb)),
                                    key=lambda m: m[1])[0]}
        return {**row, **({"baseline_budget": given} if given else {})}

    runs = [run(45.0, 0, 0.9, 0.5, 0.6), run(180.0, 0, 0.7, 0.8, 0.6, {"clock": "cpu", "seconds": 231.5}),
            run(90.0, 0, 1.0, 1.0, 0.98),                       # a tie reads as level, not as neuroswap's win
            _runs("g", 45.0, [0.01], [0.5])[0]]  # a run without baselines is not a row
    lines = budget_table.baselines_markdown(runs)
    rows = [line for line in lines if line.startswith("| f |")]
    assert len(rows) == 3
    assert "| 45 s wall | neuroswap |" in rows[0]               # a file from before --baseline-clock: budget_s of wall
    assert "| 90 s wall | neuroswap = sklearn_mlp |" in rows[1]
    assert "| 231.5 s cpu | sklearn_mlp |" in rows[2]
    assert lines[-1] == "neuroswap the most faithful alone in 1 of 3 runs, level with the best in 1, behind in 1 " \
                        "(share within tolerance)."
    assert budget_table.baselines_markdown(_runs("g", 45.0, [0.01], [0.5])) == []


def test_a_bad_baseline_clock_is_named():
    from bench.fidelity import run_study

    with pytest.raises(ValueError, match="baseline_clock='gpu'"):
        run_study("shipping_fee", "shipping_fee", n_traces=10, n_fresh=10, budget_s=1.0, seed=0, progress=False,
                  baseline_clock="gpu")
