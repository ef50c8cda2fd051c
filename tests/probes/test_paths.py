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
