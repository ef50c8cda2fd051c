"""Branch path ids: the same branch outcomes give the same id, different ones differ."""

import collections
import sys

import pytest

from probes import Schema, call_with_path, paths_of


def tiered(weight: float, zone: str, express: bool) -> float:
    if weight < 0: raise ValueError("negative weight")  # noqa: E701 - one-line ifs on purpose
    base = 5.0 if zone == "EU" else 9.0
    if weight > 2: base += 3  # noqa: E701
    if express: base *= 1.5  # noqa: E701
    return base


def looping(n: int) -> float:
    total = 0.0
    for i in range(n):
        total += i
        if total > 50:
            total -= 10
    return total


def _outcome_key(kw):
    if kw["weight"] < 0:
        return ("raises",)
    return (kw["zone"] == "EU", kw["weight"] > 2, kw["express"])


def test_one_id_per_combination_of_branch_outcomes():
    schema = Schema.from_function(tiered, weight=(-1.0, 10.0), zone=["EU", "US"], probe=0, output="real")
    groups = collections.defaultdict(set)
    for kw in schema.sample(400, seed=2):
        groups[_outcome_key(kw)].add(call_with_path(tiered, kw).path)
    assert len(groups) == 9
    assert all(len(ids) == 1 for ids in groups.values())
    assert len(set().union(*groups.values())) == 9


def test_outcome_and_error_are_returned():
    ok = call_with_path(tiered, {"weight": 3.0, "zone": "EU", "express": True})
    assert ok.output == pytest.approx(12.0) and ok.error is None
    bad = call_with_path(tiered, {"weight": -1.0, "zone": "EU", "express": True})
    assert bad.output is None and bad.error.type == "ValueError" and bad.error.message == "negative weight"


def test_loop_iterations_do_not_multiply_paths():
    ids = {call_with_path(looping, {"n": n}).path for n in range(12, 40)}
    assert len(ids) == 1
    assert call_with_path(looping, {"n": 3}).path not in ids


def test_ids_are_stable_and_tracer_is_restored():
    previous = sys.gettrace()
    first = paths_of(tiered, [{"weight": 1.0, "zone": "US", "express": False}] * 3)
    assert len({p.path for p in first}) == 1
    assert sys.gettrace() is previous


BRACKETS = [(10000, 0.0), (40000, 0.1), (100000, 0.2), (float("inf"), 0.3)]


def bracket_tax(income: float) -> float:
    total, low = 0.0, 0.0
    for high, rate in BRACKETS:
        if income > high:
            total += (high - low) * rate
            low = high
        else:
            total += (income - low) * rate
            break
    return total


def test_signature_tells_loop_pieces_apart_where_path_does_not():
    incomes = {"2nd": [20000.0, 25000.0, 39999.0], "3rd": [60000.0, 75000.5], "4th": [150000.0, 1e6]}
    calls = {name: [call_with_path(bracket_tax, {"income": x}) for x in xs] for name, xs in incomes.items()}
    everything = [c for group in calls.values() for c in group]
    assert len({c.path for c in everything}) == 1  # today's id: loops count once
    for group in calls.values():  # same bracket, same signature
        assert len({c.signature for c in group}) == 1
    assert len({group[0].signature for group in calls.values()}) == 3
    first = call_with_path(bracket_tax, {"income": 5000.0})
    assert first.signature not in {c.signature for c in everything}


def test_signature_counts_iterations_and_path_is_unchanged():
    calls = [call_with_path(looping, {"n": n}) for n in range(12, 20)]
    assert len({c.path for c in calls}) == 1
    assert len({c.signature for c in calls}) == len(calls)
    assert call_with_path(looping, {"n": 15}).signature == calls[3].signature  # stable


def test_branches_read_as_conditions_with_outcomes_and_counts():
    call = call_with_path(bracket_tax, {"income": 60000.0})
    assert [(b.condition, b.outcome, b.count) for b in call.branches] == [("income > high", True, 2),
                                                                        ("income > high", False, 1)]
    line = bracket_tax.__code__.co_firstlineno + 3
    assert all(b.line == line and b.function == "bracket_tax" for b in call.branches)
    line_no, condition, outcome, count, _ = call.branches[0]  # unpacks as a tuple
    assert (condition, outcome, count) == ("income > high", True, 2)

    tiered_call = call_with_path(tiered, {"weight": 3.0, "zone": "US", "express": False})
    assert [(b.condition, b.outcome) for b in tiered_call.branches] == [
        ("weight < 0", False), ('zone == "EU"', False), ("weight > 2", True), ("express", False)]


def none_and_not(x: float, y=None) -> int:
    if y is None and not x > 3:
        return 1
    return 2 if x else 3


def test_branches_name_none_tests_and_negations():
    assert [(b.condition, b.outcome) for b in call_with_path(none_and_not, {"x": 0.0}).branches] == [
        ("y is None", True), ("x > 3", False)]
    assert [(b.condition, b.outcome) for b in call_with_path(none_and_not, {"x": 5.0, "y": 1}).branches] == [
        ("y is None", False), ("x", True)]
