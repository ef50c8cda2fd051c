"""Where fit spends oracle calls: Turaco's split over paths, draws near rows and between rows on
different paths, and when refinement rounds stop."""

from __future__ import annotations

import numpy as np
import pytest

from probes import InvalidArgument, Schema, Tolerance
from replace import fit
from replace._sampling import draw_between, draw_near, turaco_allocation

from conftest import grade, smooth


def test_turaco_allocation_follows_frequency_and_complexity():
    quota = turaco_allocation({"a": 0.8, "b": 0.2, "c": 0.0}, {"a": 1.0, "b": 16.0, "c": 5.0}, 1000)
    assert sum(quota.values()) == 1000
    assert quota["c"] == 0
    # (p * sqrt(C))^(2/3): a -> 0.8^(2/3) = 0.862, b -> (0.2 * 4)^(2/3) = 0.862: equal shares
    assert abs(quota["a"] - quota["b"]) <= 1


def test_turaco_allocation_of_nothing():
    assert turaco_allocation({"a": 0.5, "b": 0.5}, {"a": 0.0, "b": 0.0}, 100) == {"a": 0, "b": 0}


def _step_rows(n: int = 400, seed: int = 0):
    schema = Schema.from_function(lambda x, kind, n_items: 0.0, x=(0.0, 1.0), kind=["u", "v"], n_items=(0, 10))
    rng = np.random.default_rng(seed)
    columns = {"x": rng.random(n), "kind": np.array(rng.choice(["u", "v"], size=n), dtype=object),
               "n_items": rng.integers(0, 11, size=n)}
    labels = ["low" if x < 0.5 else "high" for x in columns["x"]]
    return schema, columns, labels


def test_draw_between_concentrates_on_the_edge():
    schema, columns, labels = _step_rows()
    rng = np.random.default_rng(1)
    drawn = draw_between(schema, columns, np.arange(len(labels)), labels, 4000, rng)
    near_edge = np.mean(np.abs(drawn["x"] - 0.5) < 0.1)
    # uniform draws would put 20% there; draws near random rows about as many
    around = draw_near(schema, columns, 4000, np.random.default_rng(1))
    assert np.mean(np.abs(around["x"] - 0.5) < 0.1) < 0.3
    assert near_edge > 0.4, near_edge


def test_draw_between_stays_in_the_domain_and_keeps_kinds():
    schema, columns, labels = _step_rows()
    drawn = draw_between(schema, columns, np.arange(len(labels)), labels, 500, np.random.default_rng(2))
    assert set(drawn) == {"x", "kind", "n_items"}
    assert np.all((drawn["x"] >= 0.0) & (drawn["x"] <= 1.0))
    assert drawn["n_items"].dtype.kind == "i" and drawn["n_items"].min() >= 0 and drawn["n_items"].max() <= 10
    assert set(drawn["kind"].tolist()) <= {"u", "v"}


def test_draw_between_needs_two_sides():
    schema, columns, labels = _step_rows()
    assert draw_between(schema, columns, np.arange(len(labels)), ["same"] * len(labels), 100,
                        np.random.default_rng(0)) == {}


def _smooth_fit(**options):
    """Seed 3: a round that is kept, then one that is not (with the search's share of 0.35 every
    round of seed 0 is kept)."""
    schema = Schema.from_function(smooth, x=(-2.0, 2.0), y=(-2.0, 2.0))
    return fit(smooth, schema=schema, tolerance=Tolerance(abs=1e-3), budget_s=4.0, seed=3, progress=False,
               budget_clock="work", ensemble_size=1, widths=(16,), depths=(2,), rounds_when="always",
               max_candidates=1, rounds=5, exact="off", calibration_share=0.0, **options)  # the network's rounds


@pytest.mark.slow
def test_rounds_stop_after_a_round_whose_model_is_not_kept():
    stopped = _smooth_fit().metrics.rounds
    unkept = [r["round"] for r in stopped if r.get("kept") is False]
    assert unkept, stopped  # this seed and budget give a round that does not improve the model
    assert stopped[-1].get("skipped", "").endswith("not kept"), stopped
    assert max(r["round"] for r in stopped if "oracle_calls" in r) == unkept[0]
    # patience 0: no round stops the rounds for not being kept (they go on while the budget lasts;
    # since the guard's calibration keeps its share of the budget, it may last no longer than that)
    every = _smooth_fit(rounds_patience=0).metrics.rounds
    assert not any(r.get("skipped", "").endswith("not kept") for r in every), every
    assert max(r["round"] for r in every if "oracle_calls" in r) >= unkept[0], every


@pytest.mark.parametrize("option, value", [("boundary_share", 1.5), ("rounds_patience", -1), ("rounds_patience", 0.5)])
def test_bad_sampling_options_are_named(option, value):
    schema = Schema.from_function(smooth, x=(-2.0, 2.0), y=(-2.0, 2.0))
    with pytest.raises(InvalidArgument, match=f"{option}={value}"):
        fit(smooth, schema=schema, budget_s=1.0, progress=False, **{option: value})


def test_rounds_go_on_until_validation_shows_the_target():
    from replace._fit import _target_shown

    class Seen:
        agreement = 1.0

    # no miss in 400 rows is compatible with 99% agreement; in 4,000 rows it shows 99.9%
    assert not _target_shown(Seen(), 400, 0.999)
    assert _target_shown(Seen(), 4000, 0.999)
    assert not _target_shown(Seen(), 100_000, 1.0)


def test_label_margins_are_the_gap_between_the_two_best_classes():
    from replace._fit import label_margins
    from replace._models import Architecture, ModelWeights, NumpyNet

    def net(scale: float) -> NumpyNet:  # one linear layer: scores = scale * (x0, x1, 0)
        return NumpyNet([scale * np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])], [np.zeros(3)], "relu")

    X = np.array([[3.0, 1.0], [2.0, 2.0], [1.0, 3.0]])
    plain = ModelWeights(Architecture(2, 0, "relu", 2), [net(1.0), net(0.5)])
    assert label_margins(plain, X, 0) == pytest.approx([3.0, 0.0, 3.0])  # summed over members: 1.5 x the gap
    assert label_margins(plain, X, 1) == pytest.approx([1.5, 3.0, 4.5])  # column 0 is a value, not a class
    # path-aware: the gate sends row 0 to expert 0 (scores x 2), the others to expert 1 (x 1)
    gate = NumpyNet([np.array([[1.0, 0.0], [0.0, 0.0]])], [np.array([-2.5, 0.0])], "relu")
    gated = ModelWeights(Architecture(2, 0, "relu", 1, True), [], gate=[gate], experts=[[net(2.0)], [net(1.0)]],
                         path_ids=["a", "b"])
    assert label_margins(gated, X, 0) == pytest.approx([4.0, 0.0, 2.0])


def test_label_rounds_spend_calls_where_the_class_is_close():
    # grade() changes class where score + bonus crosses 40 or 70: uniform draws land within one
    # point of that about 4% of the time; a round's least-certain draws most of the time
    # (the rule before it, edges between paths, also gave 4% here)
    schema = Schema.from_function(grade, score=(0.0, 100.0), bonus=(0, 5))
    s = fit(grade, schema=schema, budget_s=3.0, seed=0, progress=False, budget_clock="work", sampling="paths",
            max_oracle_calls=600, initial_samples=300, rounds_when="always", target_agreement=1.0,
            ensemble_size=2, widths=(16,), depths=(2,), max_candidates=1)
    data = s.training_data_
    total = np.asarray(data["columns"]["score"]) + np.asarray(data["columns"]["bonus"])
    near = np.minimum(np.abs(total - 40), np.abs(total - 70)) < 1.0
    rounds = np.array([src.startswith("round") for src in data["sources"]])
    assert rounds.sum() >= 100, s.metrics.rounds
    assert near[rounds].mean() >= 0.3, near[rounds].mean()
    assert near[np.array([src == "oracle" for src in data["sources"]])].mean() < 0.1


@pytest.mark.slow
def test_a_round_not_kept_leaves_no_rows_behind():
    """A round whose model is not kept goes back to the pool it started from: its rows would pull
    the polish towards the error it chased (its oracle calls are still counted)."""
    s = _smooth_fit()
    log = s.metrics.rounds
    unkept = next(r for r in log if r.get("kept") is False)
    before = [r for r in log if "rows" in r and r["round"] < unkept["round"]][-1]
    assert unkept["rows"] > before["rows"] and unkept["rows_kept"] == before["rows"]
    assert s.metrics.training_rows == before["rows"] == len(s.training_data_["outputs"])
    assert len(s.training_data_["columns"]["x"]) == before["rows"]
    assert s.metrics.oracle_calls >= unkept["oracle_calls"]


class _Judge:
    """Stands in for `_Trainer.judge`: each surrogate's agreement and excess on any rows."""

    def __init__(self, scores):
        self.scores = scores
        self.rows = []

    def judge(self, surrogate, pool, rows):
        self.rows.append(list(rows))
        agreement, excess = self.scores[surrogate]
        return {"agreement": agreement, "excess": np.full(len(rows), excess)}


def _candidates(before, after):
    from replace._trainer import _Candidate

    return [_Candidate(None, None, name, 0.9, 1.0, 1, 1.0, []) for name in (before, after)]


def test_a_round_worse_on_recorded_traffic_is_not_kept():
    from types import SimpleNamespace

    from replace._rounds import MIN_PRODUCTION_ROWS, _production_holds

    pool = SimpleNamespace(sources=["trace"] * 60 + ["oracle"] * 60 + ["round1"] * 60)
    val = np.arange(0, 180, 2)  # 30 trace rows: too few to veto
    best, cand = _candidates("before", "after")
    worse_on_traffic = _Judge({"before": (0.95, 0.2), "after": (0.90, 0.3)})
    assert _production_holds(worse_on_traffic, pool, val, cand, best) == {"holds": True}
    assert worse_on_traffic.rows == []
    val = np.arange(180)  # 60 trace rows
    assert 60 >= MIN_PRODUCTION_ROWS
    verdict = _production_holds(worse_on_traffic, pool, val, cand, best)
    assert verdict["holds"] is False and verdict["production_rows"] == 60
    assert verdict["production_agreement"] == 0.90 and verdict["production_agreement_before"] == 0.95
    assert all(row < 60 for rows in worse_on_traffic.rows for row in rows)  # judged on traffic alone
    level = _Judge({"before": (0.95, 0.2), "after": (0.95, 0.2)})
    assert _production_holds(level, pool, val, cand, best)["holds"] is True  # a tie holds
    better = _Judge({"before": (0.95, 0.2), "after": (0.97, 0.3)})
    assert _production_holds(better, pool, val, cand, best)["holds"] is True


class _RowJudge:
    """Stands in for `_Trainer.judge` with per-row results: which rows agree, and each row's excess."""

    def __init__(self, rows):
        self.rows = rows

    def judge(self, surrogate, pool, rows):
        agree, excess = (np.asarray(a)[rows] for a in self.rows[surrogate])
        return {"agreement": float(np.mean(agree)), "agree": agree, "excess": excess}


def test_a_same_time_baseline_drops_a_round_only_beyond_the_comparisons_noise():
    """With round_noise_z=2, a round judged against the same time falls only where the baseline wins on
    traffic (and the model before it on all validation rows) by more than two standard errors of
    a paired comparison: 8 rows lost and 3 won out of
    200 is noise (and the round's rows still help the polish); 10 lost and none won is not; level
    agreement with a higher error on every row is not either."""
    from types import SimpleNamespace

    from replace._fit_config import FitConfig
    from replace._rounds import _holds_on_validation, _production_holds

    assert FitConfig().round_noise_z == 0.0  # opt-in: by default any loss on traffic drops the round
    pool = SimpleNamespace(sources=["trace"] * 200)
    val = np.arange(200)
    best, cand = _candidates("before", "after")
    everywhere, excess = np.ones(200, dtype=bool), np.full(200, 0.2)
    noisy = everywhere.copy()
    noisy[:8] = False  # 8 rows the round's model loses ...
    baseline = everywhere.copy()
    baseline[8:11] = False  # ... and 3 it wins: 5 net, under 2 * sqrt(11)
    judge = _RowJudge({"before": (baseline, excess), "after": (noisy, excess)})
    assert _production_holds(judge, pool, val, cand, best)["holds"] is False  # the strict rule drops it
    assert _production_holds(judge, pool, val, cand, best, noise_z=2.0)["holds"] is True
    assert _holds_on_validation(judge, pool, val, cand, best, noise_z=2.0) is True  # all validation rows: same rule
    worse = everywhere.copy()
    worse[:10] = False  # 10 lost, none won: over 2 * sqrt(10)
    judge = _RowJudge({"before": (everywhere, excess), "after": (worse, excess)})
    assert _production_holds(judge, pool, val, cand, best, noise_z=2.0)["holds"] is False
    assert _holds_on_validation(judge, pool, val, cand, best, noise_z=2.0) is False
    rng = np.random.default_rng(0)
    higher = excess + rng.uniform(0.05, 0.15, 200)  # level agreement, a larger error on every row
    judge = _RowJudge({"before": (everywhere, excess), "after": (everywhere, higher)})
    assert _production_holds(judge, pool, val, cand, best, noise_z=2.0)["holds"] is False
    mixed = excess + rng.normal(0.0, 0.1, 200)  # level agreement, errors that go both ways
    judge = _RowJudge({"before": (everywhere, excess), "after": (everywhere, mixed - mixed.mean() + 0.2)})
    assert _production_holds(judge, pool, val, cand, best, noise_z=2.0)["holds"] is True
    better = everywhere.copy()
    judge = _RowJudge({"before": (worse, excess), "after": (better, excess + 1.0)})  # wins 10 rows
    assert _production_holds(judge, pool, val, cand, best, noise_z=2.0)["holds"] is True


def kinked(x: float, y: float) -> float:
    if x > 1.0:
        return 2.0 * x - y
    return smooth(x, y)


def _traffic_fit(round_baseline: str | None, traces: bool = True, fn=smooth, path_aware=False):
    """`fn` with recorded traffic near one corner (so the rounds' domain-wide calls can cost it);
    `round_baseline=None`: fit's default."""
    from probes import Traces

    rng = np.random.default_rng(0)
    rows = [{"x": float(x), "y": float(y)} for x, y in rng.uniform(0.5, 2.0, size=(1200, 2))]
    recorded = Traces.from_calls(fn, rows) if traces else None
    schema = Schema.from_function(fn, x=(-2.0, 2.0), y=(-2.0, 2.0))
    return fit(fn, recorded, schema=schema, tolerance=Tolerance(abs=1e-3), budget_s=4.0, seed=3,
               progress=False, budget_clock="work", ensemble_size=1, widths=(16,), depths=(2,),
               rounds_when="always", max_candidates=1, rounds=3, exact="off", calibration_share=0.0,
               path_aware=path_aware, **({} if round_baseline is None else {"round_baseline": round_baseline}))


@pytest.mark.slow
@pytest.mark.parametrize("fn, path_aware", [(smooth, False), (kinked, True)], ids=["mlp", "gate and experts"])
def test_a_round_judged_against_the_same_time_without_its_rows(fn, path_aware):
    """round_baseline="same_time": each round is judged on recorded traffic against the model before
    it trained as long without the round's rows, and a round not kept leaves that model (not the
    older one) and none of its rows."""
    s = _traffic_fit("same_time", fn=fn, path_aware=path_aware)
    assert s.path_aware is path_aware
    judged = [r for r in s.metrics.rounds if "oracle_calls" in r and r["round"] > 0]
    assert judged and all(r.get("baseline") == "same_time" and r["production_rows"] >= 50 for r in judged), judged
    before = _traffic_fit("before", fn=fn, path_aware=path_aware)
    assert not any("baseline" in r for r in before.metrics.rounds)
    for r in judged:
        if r["kept"] is False:
            assert r["rows_kept"] < r["rows"]
    last = [r for r in s.metrics.rounds if "rows" in r][-1]
    assert s.metrics.training_rows == last.get("rows_kept", last["rows"])


@pytest.mark.slow
def test_rounds_are_judged_against_the_same_time_by_default():
    """fit's default judges each round against the model before it trained as long without the
    round's rows (bench/budget_table.py measured rounds judged only against the model before them
    costing blackscholes the time they took)."""
    from replace._distributed import parameters_digest

    default, same = _traffic_fit(None), _traffic_fit("same_time")
    assert any(r.get("baseline") == "same_time" for r in default.metrics.rounds), default.metrics.rounds
    assert parameters_digest(default) == parameters_digest(same)


@pytest.mark.slow
def test_without_traffic_to_judge_the_same_time_baseline_changes_nothing():
    """Without recorded traffic no round can be judged on it: same_time spends no time on a baseline
    and gives the surrogate "before" gives, to the bit."""
    from replace._distributed import parameters_digest

    same, before = _traffic_fit("same_time", traces=False), _traffic_fit("before", traces=False)
    assert parameters_digest(same) == parameters_digest(before)
    assert same.metrics.rounds == before.metrics.rounds


def test_a_bad_round_baseline_is_named():
    schema = Schema.from_function(smooth, x=(-2.0, 2.0), y=(-2.0, 2.0))
    with pytest.raises(InvalidArgument, match="round_baseline='later'"):
        fit(smooth, schema=schema, budget_s=1.0, progress=False, round_baseline="later")


@pytest.mark.parametrize("options, says", [
    ({"round_noise_z": -1.0}, "round_noise_z=-1.0 : must be >= 0"),
    ({"round_noise_z": float("nan")}, "round_noise_z=nan"),
    ({"round_noise_z": 2.0, "round_baseline": "before"}, "only acts with round_baseline='same_time'"),
])
def test_bad_round_noise_z_is_named(options, says):
    schema = Schema.from_function(smooth, x=(-2.0, 2.0), y=(-2.0, 2.0))
    with pytest.raises(InvalidArgument, match=says.replace("(", r"\(").replace(")", r"\)")):
        fit(smooth, schema=schema, tolerance=Tolerance(abs=1e-3), budget_s=2.0, progress=False, **options)
