"""fit's polish (step 8) spends the budget it is given: a stage that stops on its own with time
left (L-BFGS converged) is followed by another from the best model, and polishing ends when two
stages in a row gain nothing or the time is spent (a scripted trainer on the work clock)."""

from __future__ import annotations

from types import SimpleNamespace

from probes import _clock
from replace._fit_run import polish
from replace._models import Architecture
from replace._trainer import _Candidate

ARCH = Architecture(width=32, depth=2)


class ScriptedTrainer:
    """Each stage: (share of its span it runs before stopping, agreement it reaches)."""

    def __init__(self, stages):
        self.stages = list(stages)
        self.calls = []

    def train(self, arch, data, pool, buckets, deadline, *, init=None, lr_scale=1.0, optimizer="adam",
              to_deadline=False):
        assert to_deadline  # the polish's L-BFGS does not stop on a validation plateau
        clock = _clock.current()
        started = clock.now()
        share, agreement = self.stages.pop(0)
        self.calls.append((optimizer, round(deadline - started, 6), init))
        clock.charge(share * (deadline - started))
        return _Candidate(arch, None, None, agreement, 1.0 - agreement, 1, clock.now() - started,
                          [(1, 1.0, 1.0)], f"state after {len(self.calls)}", buckets)


def _polish(trainer, budget_s=100.0, left=60.0):
    start = _Candidate(ARCH, None, None, 0.30, 0.7, 1, 0.0, [(1, 1.0, 1.0)], "state of the search", None)
    bar = SimpleNamespace(update=lambda text: None)
    with _clock.using(_clock.WorkClock()) as clock:
        best, curve, log = polish(trainer, start, None, None, [], clock.now() + left, budget_s, bar, optimizer="lbfgs")
        spent = clock.now()
    return best, log, spent


def test_a_stage_that_converges_early_is_followed_by_another_from_the_best_model():
    # L-BFGS converges a fifth of the way in (0.30 -> 0.35); the next stage (Adam then L-BFGS)
    # starts from that model and runs to the deadline (0.35 -> 0.41)
    trainer = ScriptedTrainer([(0.2, 0.35), (1.0, 0.41)])
    best, log, spent = _polish(trainer)
    assert [c[0] for c in trainer.calls] == ["lbfgs", "auto"]
    assert trainer.calls[1][2] == "state after 1"  # from the first stage's model
    assert best.agreement == 0.41 and [e["kept"] for e in log] == [True, True]
    assert spent >= 60.0 - 1e-9  # the whole span was used


def test_a_stage_that_gains_nothing_is_followed_by_another_from_the_best_model():
    # a stage that stops early and loses validation agreement (26.9% -> 25.3%): Adam then L-BFGS
    # from the search's model may still gain
    trainer = ScriptedTrainer([(0.1, 0.25), (1.0, 0.41)])
    best, log, spent = _polish(trainer)
    assert [c[0] for c in trainer.calls] == ["lbfgs", "auto"]
    assert trainer.calls[1][2] == "state of the search"  # the stage not kept is not built on
    assert best.agreement == 0.41 and [e["kept"] for e in log] == [False, True]
    assert spent >= 60.0 - 1e-9


def test_polishing_ends_when_two_stages_in_a_row_gain_nothing():
    trainer = ScriptedTrainer([(0.2, 0.35), (0.3, 0.33), (0.3, 0.34), (1.0, 0.9)])
    best, log, _ = _polish(trainer)
    assert best.agreement == 0.35 and len(trainer.calls) == 3 and [e["kept"] for e in log] == [True, False, False]


def test_a_stage_that_runs_to_its_deadline_ends_polishing():
    trainer = ScriptedTrainer([(1.0, 0.35), (1.0, 0.9)])
    best, log, _ = _polish(trainer)
    assert len(trainer.calls) == 1 and best.agreement == 0.35


def test_no_stage_with_less_than_eight_percent_of_the_budget_left():
    trainer = ScriptedTrainer([(0.5, 0.35), (1.0, 0.9)])
    # 10 s left of a 100 s budget: one stage; it stops at 5 s, and 5 s (< 8 s) is not worth another
    best, log, _ = _polish(trainer, left=10.0)
    assert len(trainer.calls) == 1 and best.agreement == 0.35
    assert _polish(ScriptedTrainer([]), left=7.0)[1] == []  # nothing to polish with 7 s
