"""The architecture search: successive halving gives the shapes that lead more training."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from probes import _clock
from replace._fit import FitConfig, _Candidate, _halving_units, _search
from replace._models import Architecture


LEARNING = {8: (0.6, 1.0), 16: (0.3, 1.0), 32: (0.4, 0.5), 64: (0.5, 0.1), 128: (0.0, 0.15)}


def excess_after(width, work):
    floor, speed = LEARNING[width]
    return floor + 1.0 / (1.0 + speed * work)


@dataclass
class ScriptedTrainer:
    """Stands in for `_Trainer`: a shape's validation error falls with the work it has had,
    as floor + 1 / (1 + speed * work): quickly to a high floor for the 16-wide shape, slowly
    to zero for the 128-wide one."""

    out: object
    log: list

    def train(self, arch, data, pool, buckets, deadline, *, init=None, lr_scale=1.0, optimizer="adam"):
        clock = _clock.current()
        started = clock.now()
        done = (init or 0.0) + max(deadline - started, 0.0)
        clock.charge(deadline - started)
        floor, speed = LEARNING[arch.width]
        excess = floor + 1.0 / (1.0 + speed * done)
        self.log.append((arch.width, optimizer, init is not None, round(deadline - started, 6)))
        return _Candidate(arch, None, None, 0.0, excess, arch.width ** 2, clock.now() - started,
                          [(1, excess, excess)], done, buckets)


def shapes(*widths):
    return [Architecture(w, 2, "silu", 1, False) for w in widths]


def run_search(widths, seconds, search="halving"):
    trainer = ScriptedTrainer(SimpleNamespace(width=1), [])
    with _clock.using(_clock.WorkClock()) as clock:
        best, log = _search(trainer, shapes(*widths), None, None, [], clock.now() + seconds, FitConfig(search=search),
                            SimpleNamespace(update=lambda text: None))
        spent = clock.now()
    return best, log, trainer.log, spent


@pytest.mark.parametrize("k,units", [(1, 1), (2, 2), (3, 7), (4, 8), (5, 19)])
def test_halving_units_count_every_slice(k, units):
    _, log, calls, spent = run_search([8, 16, 32, 64, 128][:k], seconds=float(units))
    assert _halving_units(k) == units
    assert sum(c[3] for c in calls) == pytest.approx(units)  # one unit of work per slice, nothing more
    assert spent == pytest.approx(units)


def test_halving_keeps_the_large_shape_that_equal_slices_would_drop():
    # 40 units over 4 shapes: equal slices (the search before halving) give each 10, and the
    # 16-wide shape leads then; halving gives 5 each, keeps the 16- and 128-wide shapes (the
    # two best after 5), trains both 10 more, and after 15 the 128-wide one is ahead
    assert min((8, 16, 64, 128), key=lambda w: excess_after(w, 10.0)) == 16
    assert sorted((8, 16, 64, 128), key=lambda w: excess_after(w, 5.0))[:2] == [16, 128]
    assert excess_after(128, 15.0) < excess_after(16, 15.0)
    best, log, calls, _ = run_search([8, 16, 64, 128], seconds=40.0)
    assert best.arch.width == 128 and best.excess == pytest.approx(excess_after(128, 15.0))
    assert [entry["rung"] for entry in log] == [0, 1, 0, 1]
    assert [entry["seconds"] for entry in log] == pytest.approx([5.0, 15.0, 5.0, 15.0])
    continued = [c for c in calls if c[2]]
    assert {c[0] for c in continued} == {16, 128} and all(c[1] == "lbfgs" for c in continued)
    assert all(c[3] == pytest.approx(10.0) for c in continued)  # twice the first slice of 5


def test_equal_slices_choose_what_leads_after_one_slice():
    best, log, calls, spent = run_search([8, 16, 64, 128], seconds=40.0, search="equal")
    assert [c[3] for c in calls] == pytest.approx([10.0] * 4) and not any(c[2] for c in calls)
    assert best.arch.width == 16 and [e["rung"] for e in log] == [0] * 4 and spent == pytest.approx(40.0)
    assert FitConfig().search == "budget"


def test_search_option_is_checked():
    from replace._fit import _config

    with pytest.raises(ValueError, match="search") as raised:
        _config({"search": "grid"})
    assert "'budget'" in str(raised.value) and "'grid'" in str(raised.value)


def test_two_shapes_take_one_slice_each_as_before():
    best, log, calls, _ = run_search([16, 128], seconds=20.0, search="halving")
    assert [c[3] for c in calls] == pytest.approx([10.0, 10.0]) and not any(c[2] for c in calls)
    assert best.arch.width == 16 and [e["rung"] for e in log] == [0, 0]


def test_continued_training_that_got_worse_keeps_the_weights_it_had(monkeypatch):
    trainer = ScriptedTrainer(SimpleNamespace(width=1), [])
    worse = trainer.train

    def train(arch, *args, init=None, **kwargs):
        cand = worse(arch, *args, init=init, **kwargs)
        return cand if init is None else _Candidate(arch, None, None, 0.0, 9.0, cand.params, cand.seconds,
                                                    [(1, 9.0, 9.0)], "worse", cand.buckets)

    trainer.train = train
    with _clock.using(_clock.WorkClock()) as clock:
        best, log = _search(trainer, shapes(8, 16, 64, 128), None, None, [], clock.now() + 40.0,
                            FitConfig(search="halving"),
                            SimpleNamespace(update=lambda text: None))
    assert best.arch.width == 16 and best.state == pytest.approx(5.0)  # its rung-0 weights
    assert len(best.curve) == 2  # the curve still shows the run that was tried


def test_fit_with_halving_continues_real_models(monkeypatch):
    """Through `fit`: three shapes, the better two continue from their weights (plain and path-aware)."""
    import replace._fit_run as fit_module  # where _fit looks up _candidates
    from probes import Schema, Tolerance
    from replace import fit

    from conftest import fee

    shown = {}

    def three(config, activation, plain, paths, seconds):
        out = [Architecture(8, 2, activation, config.ensemble_size, False),
               Architecture(16, 2, activation, config.ensemble_size, False)]
        out += [Architecture(16, 2, activation, config.ensemble_size, True)] if paths else \
            [Architecture(32, 2, activation, config.ensemble_size, False)]
        shown["candidates"] = out
        return out

    monkeypatch.setattr(fit_module, "_candidates", three)
    schema = Schema.from_function(fee, weight=(0.1, 10.0), zone=["A", "B", "C"], express=bool)
    s = fit(fee, schema=schema, tolerance=Tolerance(abs=0.05), budget_s=4.0, seed=0, progress=False,
            budget_clock="work", ensemble_size=2, search="halving", rounds=0)
    log = s.metrics.search
    assert [entry["architecture"] for entry in log] == [a.label for a in shown["candidates"]]
    assert sorted(entry["rung"] for entry in log) == [0, 1, 1]  # 3 shapes: one dropped, two continued
    continued = [entry for entry in log if entry["rung"] == 1]
    dropped = [entry for entry in log if entry["rung"] == 0]
    assert all(c["seconds"] > dropped[0]["seconds"] for c in continued)
    assert s.metrics.architecture in {entry["architecture"] for entry in continued}
    assert s.metrics.agreement > 0.5


# -- the budget search: shapes judged at the length the chosen one will train --------------------

#: excess = floor + scale * work ** -slope: the 16- and 32-wide shapes settle fast on a floor, the
#: 128-wide one starts worst and keeps learning (a smooth kernel); on "piecewise" code the wide one
#: settles on a high floor of its own
CURVES = {
    "smooth": {16: (0.30, 0.3, 1.0), 32: (0.25, 0.4, 1.0), 64: (0.45, 0.3, 1.0), 128: (0.0, 2.0, 0.8)},
    "piecewise": {16: (0.30, 0.3, 1.0), 32: (0.25, 0.4, 1.0), 64: (0.45, 0.3, 1.0), 128: (0.5, 2.0, 0.8)},
}


def curve_excess(kind, width, work):
    floor, scale, slope = CURVES[kind][width]
    return floor + scale * work ** -slope


@dataclass
class CurveTrainer:
    """Stands in for `_Trainer` on the work clock: a shape's validation error after `work` seconds
    of training (from its init's) follows its curve in CURVES."""

    kind: str
    log: list
    out: object = field(default_factory=lambda: SimpleNamespace(width=1))

    def train(self, arch, data, pool, buckets, deadline, *, init=None, lr_scale=1.0, optimizer="adam"):
        clock = _clock.current()
        started = clock.now()
        done = (init or 0.0) + max(deadline - started, 0.0)
        clock.charge(deadline - started)
        excess = curve_excess(self.kind, arch.width, done)
        self.log.append((arch.width, round(done, 6)))
        return _Candidate(arch, None, None, 0.0, excess, arch.width ** 2, clock.now() - started,
                          [(1, excess, excess)], done, buckets)


def budget_search(kind, seconds=40.0, after_s=60.0):
    trainer = CurveTrainer(kind, [])
    with _clock.using(_clock.WorkClock()) as clock:
        best, log = _search(trainer, shapes(16, 32, 64, 128), None, None, [], clock.now() + seconds,
                            FitConfig(search="budget"), SimpleNamespace(update=lambda text: None), after_s=after_s)
        spent = clock.now()
    return best, log, trainer.log, spent


def test_budget_search_keeps_the_slow_starter_that_wins_at_the_final_length():
    # after its first slice of 5 units the 128-wide shape is last of four, and halving by the
    # error then would keep the 32- and 16-wide ones; it is the best at the 75 units the chosen
    # shape trains (15 in the search, 60 after), and its curve says so
    after_first = {w: curve_excess("smooth", w, 5.0) for w in (16, 32, 64, 128)}
    assert max(after_first, key=after_first.get) == 128
    at_horizon = {w: curve_excess("smooth", w, 75.0) for w in (16, 32, 64, 128)}
    assert min(at_horizon, key=at_horizon.get) == 128
    best, log, calls, spent = budget_search("smooth")
    assert best.arch.width == 128 and best.state == pytest.approx(15.0)
    assert spent == pytest.approx(40.0)  # 8 slices of 5: the budget, nothing more
    assert [e["rung"] for e in log] == [0, 1, 0, 1]  # the 32-wide shape continued with it
    assert all(e["horizon_s"] == pytest.approx(75.0) for e in log)
    # every first slice is trained in two halves, so that the first ranking has two points
    assert [c for c in calls if c[1] <= 5.0] == [(w, t) for w in (16, 32, 64, 128) for t in (2.5, 5.0)]
    # plain halving, judging by the error after each rung, loses it
    trainer = CurveTrainer("smooth", [])
    with _clock.using(_clock.WorkClock()) as clock:
        halved, _ = _search(trainer, shapes(16, 32, 64, 128), None, None, [], clock.now() + 40.0,
                            FitConfig(search="halving"), SimpleNamespace(update=lambda text: None))
    assert halved.arch.width == 32


def test_budget_search_chooses_differently_where_the_wide_shape_settles_high():
    best, log, _, _ = budget_search("piecewise")
    assert best.arch.width == 32
    assert {e["architecture"]: e["rung"] for e in log}[shapes(128)[0].label] == 0


def test_budget_search_looks_only_as_far_as_the_budget_goes():
    # the same shapes with nothing after the search: the horizon is the search's own 15 units,
    # where the 128-wide shape (0.23) already leads the 32-wide (0.28) on the smooth curves,
    # but with a short search (a horizon of 3 units) it does not
    best, log, _, _ = budget_search("smooth", seconds=8.0, after_s=0.0)
    assert log[0]["horizon_s"] == pytest.approx(3.0)
    assert best.arch.width == 32


@pytest.mark.parametrize("history,horizon,expected", [
    ([], 10.0, float("inf")),
    ([(5.0, 0.4)], 50.0, 0.4),                       # one point: no slope
    ([(2.5, 0.8), (5.0, 0.4)], 50.0, 0.4 * 10.0 ** -1.0),  # slope 1 (the steepest trusted)
    ([(2.5, 3.2), (5.0, 0.4)], 50.0, 0.4 * 10.0 ** -1.0),  # slope 3 clipped to 1
    ([(2.5, 0.4), (5.0, 0.5)], 50.0, 0.5),           # got worse: no promise
    ([(2.5, 0.8), (5.0, 0.4)], 4.0, 0.4),            # horizon already passed
])
def test_predicted_excess(history, horizon, expected):
    from replace._search import predicted_excess

    assert predicted_excess(history, horizon) == pytest.approx(expected)


#: the leader (32-wide) learns fast towards a low floor; the 128-wide one is behind on everything
#: measured but its curve still falls steeply; the 16-wide one settles high
STALL_CURVES = {16: (0.30, 0.3, 1.0), 32: (0.10, 0.9, 1.0), 128: (0.10, 3.0, 0.9)}


@dataclass
class StallingTrainer:
    """Like CurveTrainer, but the 32-wide shape's first continuation in a later rung stops early
    without improving (early stopping after a restart of Adam, as blackscholes' gate with 3x32
    experts did at seed 2); training after the search follows its curve again."""

    log: list
    out: object = field(default_factory=lambda: SimpleNamespace(width=1))
    stalled: bool = False

    def train(self, arch, data, pool, buckets, deadline, *, init=None, lr_scale=1.0, optimizer="adam"):
        clock = _clock.current()
        started = clock.now()
        floor, scale, slope = STALL_CURVES[arch.width]
        if arch.width == 32 and init is not None and init >= 5.0 and not self.stalled:
            self.stalled = True
            clock.charge(0.25 * (deadline - started))  # patience ran out a quarter of the way in
            excess = floor + scale * init ** -slope
            return _Candidate(arch, None, None, 0.0, excess, arch.width ** 2, clock.now() - started,
                              [(1, excess, excess)], init, buckets)
        done = (init or 0.0) + max(deadline - started, 0.0)
        clock.charge(deadline - started)
        excess = floor + scale * done ** -slope
        self.log.append((arch.width, round(done, 6)))
        return _Candidate(arch, None, None, 0.0, excess, arch.width ** 2, clock.now() - started,
                          [(1, excess, excess)], done, buckets)


def test_budget_search_keeps_a_leader_whose_continuation_stalled_once():
    # after the search (35 units: slices of 5, horizon 15 + 60 = 75) the 128-wide shape has
    # trained 15 units and is behind the 32-wide one, which stalled at 5 (0.28 against 0.36);
    # at the horizon the 32-wide one is better (0.112 against 0.162)
    at = {w: STALL_CURVES[w][0] + STALL_CURVES[w][1] * t ** -STALL_CURVES[w][2] for w, t in ((32, 5.0), (128, 15.0))}
    assert at[32] < at[128]
    final = {w: STALL_CURVES[w][0] + STALL_CURVES[w][1] * 75.0 ** -STALL_CURVES[w][2] for w in (32, 128)}
    assert final[32] < final[128]
    trainer = StallingTrainer([])
    with _clock.using(_clock.WorkClock()) as clock:
        best, log = _search(trainer, shapes(16, 32, 128), None, None, [], clock.now() + 35.0,
                            FitConfig(search="budget"), SimpleNamespace(update=lambda text: None), after_s=60.0)
    assert trainer.stalled and {e["architecture"]: e["rung"] for e in log}[shapes(128)[0].label] == 1
    assert best.arch.width == 32
