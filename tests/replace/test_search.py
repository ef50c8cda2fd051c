"""The architecture search: successive halving gives the shapes that lead more training."""

from __future__ import annotations

from dataclasses import dataclass
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


def test_equal_slices_the_default_choose_what_leads_after_one_slice():
    best, log, calls, spent = run_search([8, 16, 64, 128], seconds=40.0, search="equal")
    assert [c[3] for c in calls] == pytest.approx([10.0] * 4) and not any(c[2] for c in calls)
    assert best.arch.width == 16 and [e["rung"] for e in log] == [0] * 4 and spent == pytest.approx(40.0)
    assert FitConfig().search == "equal"


def test_search_option_is_checked():
    from replace._fit import _config

    with pytest.raises(ValueError, match="search"):
        _config({"search": "grid"})


def test_two_shapes_take_one_slice_each_as_before():
    best, log, calls, _ = run_search([16, 128], seconds=20.0)
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
