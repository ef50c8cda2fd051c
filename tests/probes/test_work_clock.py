"""budget_clock="work" for verify and mine_edge_cases: with a fixed seed, two runs cut by their
budget give the same report / the same edge cases (same inputs in the same order, same
errors) whatever the load: another process spinning on a core, or an original slowed
down by time.sleep (which runs no Python line, so the work clock does not see it).

The budgets below are small on purpose, so that every run is cut by the budget (asserted):
a budget that is never reached would make these tests pass on a wall clock too.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from probes import InvalidArgument, Schema, Tolerance, Traces, mine_edge_cases, verify
from probes import _clock
from probes._verify import _DEFAULT, Meter

DELAY = [0.0]  # seconds each call of `premium` sleeps (the same lines run either way)
LOADING = {"N": 0, "S": 1, "E": 0, "W": 2}


def premium(age: int, weight: float, zone: str, claims: int) -> float:
    time.sleep(DELAY[0])
    if age < 18:
        raise ValueError("too young")
    base = 100.0 + 10.0 * LOADING[zone]
    if age < 30:
        base += 5.0
    elif age < 60:
        base += 20.0
    else:
        base += 60.0
    if weight > 35.0:
        base *= 1.3
    if claims >= 2:
        base += 25.0 * claims
    return base


def rewrite(age: int, weight: float, zone: str, claims: int) -> float:
    """A rewrite with planted defects: a shifted threshold, one zone, no error for minors."""
    base = 100.0 + 10.0 * LOADING[zone] + (3.0 if zone == "W" else 0.0)
    if age < 31:
        base += 5.0
    elif age < 60:
        base += 20.0
    else:
        base += 60.0
    if weight > 35.0:
        base *= 1.3
    if claims >= 2:
        base += 25.0 * claims
    return base


SCHEMA = Schema.from_function(premium, age=(10, 90), weight=(15.0, 45.0), zone=["N", "S", "E", "W"],
                              claims=(0, 6))
TOLERANCE = Tolerance(abs=0.5)


class Logged:
    """The candidate, logging every input it is called with (the order of the whole run)."""

    def __init__(self, fn) -> None:
        self.fn = fn
        self.log: list[tuple] = []

    def __call__(self, age: int, weight: float, zone: str, claims: int) -> float:
        self.log.append((age, weight, zone, claims))
        return self.fn(age=age, weight=weight, zone=zone, claims=claims)


class _Slow:
    """Every call of `premium` sleeps `seconds` (no Python line more)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __enter__(self) -> "_Slow":
        DELAY[0] = self.seconds
        return self

    def __exit__(self, *exc: object) -> None:
        DELAY[0] = 0.0


def _without_times(data):
    """A report's dict without its wall times (the only figures allowed to differ)."""
    if isinstance(data, dict):
        return {k: _without_times(v) for k, v in data.items() if k != "time_s"}
    if isinstance(data, list):
        return [_without_times(v) for v in data]
    return data


TRACES = Traces.from_calls(premium, SCHEMA.sample(60, seed=5))


def _differences(a, b, where=""):
    """Paths where two nested structures differ (for a readable failure)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            out += _differences(a.get(key), b.get(key), f"{where}.{key}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{where}[{i}]")]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def same(first, second) -> list[str]:
    return _differences(_without_times(first), _without_times(second))


def run_verify(seed: int = 0, **options):
    candidate = Logged(rewrite)
    options.setdefault("database", None)
    report = verify(premium, candidate, schema=SCHEMA, traces=TRACES, tolerance=TOLERANCE, max_examples=600,
                    seed=seed, budget_s=options.pop("budget_s", 0.06), budget_clock="work", **options)
    return report, candidate.log


def run_mine(seed: int = 0, candidate=None, **options):
    candidate = candidate or Logged(rewrite)
    cases = mine_edge_cases(premium, candidate, schema=SCHEMA, tolerance=TOLERANCE, seed=seed,
                            budget_s=options.pop("budget_s", 0.12), budget_clock="work", **options)
    return cases, getattr(candidate, "log", None)


@pytest.fixture(scope="module")
def verified():
    return run_verify()


@pytest.fixture(scope="module")
def mined():
    return run_mine()


# -- verify ----------------------------------------------------------------------------------------
def test_verify_work_run_is_cut_by_its_budget_and_finds_the_defects(verified):
    report, log = verified
    assert report.statistics["budget_clock"] == "work"
    assert report.statistics["budget_cut"], report.statistics["stop_reason"]  # the budget decided where it ended
    assert report.statistics["work_s"] <= 0.06 * 1.05 + 0.01
    assert not report.passed and report.counterexamples and len(log) > 100


def test_verify_same_seed_same_report(verified):
    report, log = verified
    again, again_log = run_verify()
    assert again_log == log  # every input, in the same order
    assert not same(again.to_dict(), report.to_dict())


def test_verify_same_report_under_load(verified):
    report, log = verified
    with _clock.competing_load():
        loaded, loaded_log = run_verify()
    assert loaded_log == log
    assert not same(loaded.to_dict(), report.to_dict())


def test_verify_same_report_when_the_original_sleeps(verified):
    report, log = verified
    with _Slow(3e-4):
        slowed, slowed_log = run_verify()
    assert slowed_log == log
    assert not same(slowed.to_dict(), report.to_dict())


def test_verify_another_seed_gives_another_run(verified):
    report, log = verified
    other, other_log = run_verify(seed=1)
    assert other_log != log


def test_verify_derandomized_work_run_is_also_repeatable():
    first, first_log = run_verify(derandomize=True, budget_s=0.04)
    second, second_log = run_verify(derandomize=True, budget_s=0.04)
    assert first_log == second_log
    assert not same(first.to_dict(), second.to_dict())


def test_verify_work_run_ignores_saved_failures(tmp_path, monkeypatch):
    """The run depends on its seed alone: a database of earlier failures is written but never
    replayed, and the default one (beside $NEUROSWAP_STORE) is not used at all."""
    plain, plain_log = run_verify(budget_s=0.04)
    logs = []
    for _ in range(2):  # the first fills the database, the second would replay it
        stored, stored_log = run_verify(budget_s=0.04, database=str(tmp_path / "db"))
        logs.append(stored_log)
    assert logs[0] == logs[1] and any((tmp_path / "db").rglob("*"))  # failures were kept, not replayed
    monkeypatch.setenv("NEUROSWAP_STORE", str(tmp_path / "store" / "traces.db"))
    default, default_log = run_verify(budget_s=0.04, database=_DEFAULT)
    assert default_log == plain_log and default.statistics["database"] is None


def test_wall_clock_stays_the_default():
    report = verify(premium, rewrite, schema=SCHEMA, tolerance=TOLERANCE, max_examples=50, seed=0,
                    database=None, search=False)
    assert report.statistics["budget_clock"] == "wall" and "work_s" not in report.statistics


# -- mining ----------------------------------------------------------------------------------------
def test_mining_work_run_is_cut_by_its_budget_and_finds_the_defects(mined):
    cases, log = mined
    assert cases and {c.layer for c in cases} >= {"boundary", "branch"}
    assert all(cases.layers[name].ran for name in ("boundary", "branch", "search"))
    assert cases.layers["search"].evaluated > 0 and len(log) > 100


def test_mining_same_seed_same_cases(mined):
    cases, log = mined
    again, again_log = run_mine()
    assert again_log == log
    assert not same(json.loads(again.to_json()), json.loads(cases.to_json()))


def test_mining_same_cases_under_load(mined):
    cases, log = mined
    with _clock.competing_load():
        loaded, loaded_log = run_mine()
    assert loaded_log == log
    assert not same(json.loads(loaded.to_json()), json.loads(cases.to_json()))


def test_mining_same_cases_when_the_original_sleeps(mined):
    cases, log = mined
    with _Slow(2e-4):
        slowed, slowed_log = run_mine()
    assert slowed_log == log
    assert not same(json.loads(slowed.to_json()), json.loads(cases.to_json()))


def test_mining_another_seed_gives_another_run(mined):
    cases, log = mined
    other, other_log = run_mine(seed=1)
    assert other_log != log


class SteepModel:
    """A numpy/torch candidate with the interface the gradient layer reads (encode,
    torch_module, feature_groups, predict_batch): a smooth step at age 31 instead of 30."""

    feature_groups = {"age": [0], "weight": [1]}

    def encode(self, columns):
        return np.stack([np.asarray(columns["age"], dtype=np.float32) / 90.0,
                         np.asarray(columns["weight"], dtype=np.float32) / 45.0], axis=1)

    def torch_module(self):
        import torch

        class Module(torch.nn.Module):
            def forward(self, z):
                return 100.0 + 20.0 * torch.sigmoid(60.0 * (z[:, :1] * 90.0 - 31.0))

        return Module()

    def predict_batch(self, columns):
        age = np.asarray(columns["age"], dtype=float)
        return 110.0 + 10.0 * np.tanh(30.0 * (age - 31.0))  # the same smooth step

    def __call__(self, age: int, weight: float, zone: str, claims: int) -> float:
        return float(self.predict_batch({"age": [age]})[0])


def test_mining_gradient_layer_is_repeatable_and_charged():
    pytest.importorskip("torch")
    runs = [run_mine(candidate=SteepModel(), layers=("gradient",), budget_s=0.05) for _ in range(2)]
    with _clock.competing_load():
        runs.append(run_mine(candidate=SteepModel(), layers=("gradient",), budget_s=0.05))
    first = _without_times(json.loads(runs[0][0].to_json()))
    assert all(_without_times(json.loads(r[0].to_json())) == first for r in runs[1:])
    layer = runs[0][0].layers["gradient"]
    assert layer.ran and layer.evaluated > 0
    # each batch of 512 rows is charged (rows, a forward pass, a gradient step): 0.05 s buys a few
    assert 1 <= int(layer.note.split()[0]) < 50, layer.note


# -- the meter -------------------------------------------------------------------------------------
def test_meter_charges_nominal_costs_and_nothing_on_the_wall_clock():
    sample = SCHEMA.sample(5, seed=0)
    work = _clock.WorkClock()
    meter = Meter(work, premium, rewrite, sample=sample)
    assert meter.original_plain > _clock.CALL_OVERHEAD_S and meter.original_traced > meter.original_plain
    assert meter.candidate_call > _clock.CALL_OVERHEAD_S
    before = work.now()
    meter.original(traced=True)
    meter.candidate()
    meter.example()
    assert work.now() - before == pytest.approx(meter.original_traced + meter.candidate_call
                                                + _clock.EXAMPLE_OVERHEAD_S)
    assert Meter(_clock.WorkClock(), premium, SteepModel(), sample=sample).candidate_call == _clock.NUMPY_CALL_S
    wall = Meter(_clock.WallClock(), premium, rewrite, sample=sample)
    assert wall.original_traced == wall.candidate_call == 0.0


@pytest.mark.parametrize("bad", ["cpu", "", None, 1, "WORK"])
def test_bad_budget_clock_is_named(bad):
    for run in (lambda: verify(premium, rewrite, schema=SCHEMA, budget_clock=bad),
                lambda: mine_edge_cases(premium, rewrite, schema=SCHEMA, budget_clock=bad)):
        with pytest.raises(InvalidArgument, match=r"budget_clock=.*must be 'wall' or 'work'.*budget_clock='work'"):
            run()


def test_verify_does_not_depend_on_modules_imported_in_between(verified, tmp_path, monkeypatch):
    """hypothesis draws some values from constants in the source of every local module loaded
    so far; a module imported between two runs must not change the second one."""
    report, log = verified
    (tmp_path / "ns_constants_between_runs.py").write_text(
        "THRESHOLDS = [" + ", ".join(f"{17.5 + i * 0.37!r}" for i in range(60)) + "]\n"
        "AGES = [" + ", ".join(str(11 + i) for i in range(70)) + "]\nZONES = ['N', 'S', 'E', 'W', 'X']\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    importlib.import_module("ns_constants_between_runs")
    again, again_log = run_verify()
    assert again_log == log
    assert not same(again.to_dict(), report.to_dict())
