"""learn_exact limited in work (`work_s`, fit's work clock): the search stops at the same call,
with the same partition, at any machine load; the wall-clock deadline still ends it."""

from __future__ import annotations

import time

import numpy as np
import pytest

from probes import Schema, Tolerance, Traces, _clock
from probes._exact_rules import learn_exact
from probes._path_oracle import Oracle, OutOfTime
from probes._paths import call_with_path

TIERS = [(2.0, 3.5), (5.0, 6.0), (10.0, 9.25), (20.0, 14.0)]


def parcel(weight: float, zone: str, express: bool) -> float:
    """A tiered parcel price looked up in a table by a loop, with a zone factor and an express fee."""
    if weight <= 0:
        raise ValueError("weight must be positive")
    price = 25.0
    for limit, tier_price in TIERS:
        if weight <= limit:
            price = tier_price
            break
    if zone == "far":
        price = price * 1.5
    if express:
        price += 4.0
    return round(price, 2)


SCHEMA = Schema.from_function(parcel, weight=(-1.0, 30.0), zone=["near", "far"], express=bool)
CENTS = Tolerance(abs=0.005)


def _traces() -> Traces:
    rng = np.random.default_rng(3)
    rows = [{"weight": float(rng.uniform(0.1, 25.0)), "zone": str(rng.choice(["near", "far"])),
             "express": bool(rng.random() < 0.3)} for _ in range(200)]
    return Traces.from_calls(parcel, rows)


def _search(work_s: float):
    found = learn_exact(parcel, SCHEMA, traces=_traces(), n_samples=600, seed=0, tolerance=CENTS, work_s=work_s)
    assert not isinstance(found, str), found
    return found


def _fingerprint(found) -> tuple:
    return (found.calls, found.work_s, tuple(found.notes), found.cuts_total, found.cuts_snapped,
            repr(found.tree.leaves()), [p.describe() if hasattr(p, "describe") else repr(p) for p in found.pieces],
            tuple(tuple(sorted(r.items())) for r in found.rows))


def test_a_call_costs_its_lines_in_nominal_work() -> None:
    # the work of a call is what it executes, so a call taking more of the code costs more
    cheap = call_with_path(parcel, {"weight": 1.0, "zone": "near", "express": False})  # first tier: leaves the loop
    dear = call_with_path(parcel, {"weight": 29.0, "zone": "far", "express": True})  # every tier, then the rest
    assert 0 < cheap.lines < dear.lines
    oracle = Oracle(parcel, SCHEMA, deadline=float("inf"))
    oracle.call({"weight": 29.0, "zone": "far", "express": True})
    assert oracle.work == pytest.approx(_clock.nominal_call_costs(dear.lines)[1])


def test_the_oracle_stops_at_its_work_limit() -> None:
    one = _clock.nominal_call_costs(call_with_path(parcel, {"weight": 1.0, "zone": "near", "express": False}).lines)[1]
    oracle = Oracle(parcel, SCHEMA, deadline=float("inf"), work_s=2.5 * one)
    row = {"weight": 1.0, "zone": "near", "express": False}
    for _ in range(3):
        oracle.call(row)
    with pytest.raises(OutOfTime):
        oracle.call(row)
    assert oracle.calls == 3


def test_a_search_cut_by_work_is_the_same_at_any_load() -> None:
    quiet = _search(work_s=0.2)
    assert any(note.startswith("budget:") for note in quiet.notes), quiet.notes  # the limit did cut it
    with _clock.competing_load():
        loaded = _search(work_s=0.2)
    assert _fingerprint(loaded) == _fingerprint(quiet)


def test_more_work_lets_the_search_go_further() -> None:
    short, longer = _search(work_s=0.2), _search(work_s=5.0)
    assert short.calls < longer.calls
    assert 0.2 <= short.work_s < longer.work_s  # the search's designs count, not its calls alone
    assert not any(note.startswith("budget:") for note in longer.notes), longer.notes


def test_the_wall_deadline_still_ends_a_work_limited_search() -> None:
    began = time.perf_counter()
    found = learn_exact(parcel, SCHEMA, traces=_traces(), n_samples=600, seed=0, tolerance=CENTS,
                        deadline=began + 0.3, work_s=1e9)
    assert isinstance(found, str) or any(note.startswith("budget:") for note in found.notes)
    assert time.perf_counter() - began < 30.0  # the search's compute after the calls stop is bounded


def _quadratic_merge(groups, oracle):
    """The merge as it was before constants were looked up by value: every pair tried."""
    from probes._exact_rules import _covers

    order = sorted(range(len(groups)), key=lambda k: -len(groups[k][1]))
    merged, taken = [], set()
    for k in order:
        if k in taken:
            continue
        piece, index = groups[k]
        index = list(index)
        taken.add(k)
        if piece.exact:
            for other in order:
                if other not in taken and groups[other][0].exact and _covers(piece, groups[other][1], oracle):
                    taken.add(other)
                    index += groups[other][1]
        merged.append((piece.kind, piece.value, sorted(index)))
    return merged


def test_merging_constants_by_value_merges_as_trying_every_pair() -> None:
    from probes._exact_rules import Piece, _merge

    oracle = Oracle(parcel, SCHEMA, deadline=float("inf"))
    values = [1.0, 2.0, 1.0, float("nan"), float("nan"), 3, 3.0, True, 1.0, 0.0, -0.0, "x", "x"]
    oracle.outputs = list(values) + [5.0, 7.0]  # the last two rows: an expression's piece and a mixed group
    oracle.rows = [{"weight": float(i), "zone": "near", "express": False} for i in range(len(oracle.outputs))]

    def groups():
        out = [(Piece("constant", value=v, paths={f"p{i}"}), [i]) for i, v in enumerate(values)]
        out.append((Piece("constant", value=9.0, paths={"mixed"}), [len(values), len(values) + 1]))
        return out

    merged = [(p.kind, p.value, sorted(ix)) for p, ix in _merge(groups(), oracle)]
    assert repr(merged) == repr(_quadratic_merge(groups(), oracle))  # repr: NaN compares equal as text
    assert not oracle.merges_cut


def test_merging_stops_at_the_work_limit() -> None:
    from probes._exact_rules import Piece, _merge
    from probes._expressions import Expression, Var

    oracle = Oracle(parcel, SCHEMA, deadline=float("inf"), work_s=0.0)  # nothing left to spend
    oracle.rows = [{"weight": float(i), "zone": "near", "express": False} for i in range(4)]
    oracle.outputs = [0.0, 1.0, 2.0, 3.0]
    line = Piece("expression", expression=Expression(Var("weight")), paths={"a"})
    groups = [(line, [0, 1]), (Piece("expression", expression=Expression(Var("weight")), paths={"b"}), [2, 3])]
    merged = _merge(groups, oracle)
    assert len(merged) == 2 and oracle.merges_cut  # the line reproduces both groups, but no work was left
