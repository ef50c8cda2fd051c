"""fit(exact='auto') on rule code: the surrogate answers by the code's own partition (the exact
program), so it is right on every fresh input, raises what the code raises, keeps it through
save/load, refuses ONNX; leaves worse than the network go back to it; untraceable code and
exact='off' leave the surrogate neural."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from probes import Schema, Tolerance, Traces
from probes._program import ExactProgram, Leaf, NodeTest
from replace import Surrogate, fit
from replace._exact_program import EDGE_BASES, _calls_until, edge_rows, keep_leaves
from replace._hybrid import HybridExportError

CENTS = Tolerance(abs=0.005)
ZONE = {"DOM": 4.5, "EU": 9.0, "NA": 14.0}
TIERS = [(2.0, 3.9), (10.0, 6.9), (30.0, 12.5)]


class OverweightError(ValueError):
    pass


def parcel_fee(weight: float, zone: str, express: bool) -> float:
    """A fee table with a tier loop, a per-started-kilogram step and a raise."""
    if weight > 50:
        raise OverweightError(f"{weight} kg is over the 50 kg limit")
    base = None
    for upper, price in TIERS:
        if weight <= upper:
            base = price
            break
    if base is None:
        base = 12.5 + math.ceil(weight - 30) * 0.85
    fee = base + ZONE[zone]
    if express:
        fee = fee + 3.0
    return round(fee, 2)


SCHEMA = Schema.from_function(parcel_fee, weight=(0.1, 60.0), zone=list(ZONE))


def _production(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"weight": float(np.clip(rng.lognormal(1.0, 0.9), 0.1, 60.0)), "zone": str(rng.choice(list(ZONE))),
             "express": bool(rng.random() < 0.3)} for _ in range(n)]


@pytest.fixture(scope="module")
def surrogate() -> Surrogate:
    return fit(parcel_fee, Traces.from_calls(parcel_fee, _production(600, 0)), schema=SCHEMA, tolerance=CENTS,
               budget_s=3.0, budget_clock="work", seed=0, progress=False)


def _outcomes(rows):
    out = []
    for row in rows:
        try:
            out.append((parcel_fee(**row), None))
        except OverweightError as exc:
            out.append((None, type(exc)))
    return out


def _columns(rows):
    return {k: np.array([r[k] for r in rows], dtype=object if k == "zone" else float if k == "weight" else bool)
            for k in rows[0]}


def test_surrogate_is_exact_on_fresh_inputs_single_and_batch(surrogate: Surrogate) -> None:
    report = surrogate.manifest["training"]["exact_program"]
    assert report["used"] and report["served_leaves"] == report["leaves"], report
    assert report["held_out_rows"] > report["traced_calls"] // 2  # the search's own calls judge the leaves too
    rows = _production(1500, 11) + SCHEMA.sample(1500, seed=12)
    expected = _outcomes(rows)
    details = surrogate.predict_details(_columns(rows))
    values = surrogate.python_outputs(details)
    for row, (value, error), got, got_error in zip(rows, expected, values, details.errors):
        if error is not None:
            assert got_error is not None and got_error.name == "OverweightError", row
            with pytest.raises(OverweightError):
                surrogate(**row)
        else:
            # the code's value to 1e-9 relative (the expression's float, not the network's cents)
            assert got_error is None and got == pytest.approx(value, rel=1e-9, abs=1e-9), row
            assert surrogate(**row) == got and surrogate.predict_one(row).output == got
            assert surrogate.predict_one(row).spread == 0.0
    assert surrogate.metrics.agreement == 1.0


def test_program_is_saved_as_data_and_onnx_refuses(surrogate: Surrogate, tmp_path) -> None:
    folder = surrogate.save(tmp_path / "fee")
    text = (folder / "manifest.json").read_text()
    assert '"exact_program"' in text and "def " not in text
    loaded = Surrogate.load(folder, fn=parcel_fee)
    rows = SCHEMA.sample(800, seed=13)
    assert loaded.python_outputs(loaded.predict_details(_columns(rows))) == \
        surrogate.python_outputs(surrogate.predict_details(_columns(rows)))
    with pytest.raises(HybridExportError, match="exact program"):
        loaded.export_onnx(tmp_path / "fee.onnx")


def test_a_leaf_wrong_on_a_held_out_row_goes_back_to_the_network(surrogate: Surrogate) -> None:
    # a hand-made program: weight <= 20 answers a wrong constant, the rest the real expression's job
    wrong = ExactProgram([NodeTest("weight", "real")],
                         [(0, 20.0, False, 1, 2, -1), (-1, math.nan, False, -1, -1, 0), (-1, math.nan, False, -1, -1, 1)],
                         [Leaf("constant", value=1.0), Leaf("neural")], "float")
    rows = SCHEMA.sample(400, seed=14)
    truth = _outcomes(rows)
    kept, stats = keep_leaves(wrong, surrogate, [(_columns(rows), [v for v, _ in truth],
                                                  [None if e is None else _error(e) for _, e in truth])],
                              "real", CENTS)
    assert stats["rejected_leaves"] == 1 and kept.served_leaves == 0


def _error(kind):
    from probes import ErrorInfo

    return ErrorInfo.from_exception(kind("x"))


def test_exact_off_and_untraceable_code_stay_neural() -> None:
    traces = Traces.from_calls(parcel_fee, _production(300, 1))
    off = fit(parcel_fee, traces, schema=SCHEMA, tolerance=CENTS, budget_s=1.5, budget_clock="work", seed=0,
              progress=False, exact="off")
    assert off.program_ is None
    wrapped = functools.partial(parcel_fee)
    schema = Schema.from_function(parcel_fee, weight=(0.1, 60.0), zone=list(ZONE))
    neural = fit(wrapped, Traces.from_calls(parcel_fee, _production(300, 1)), schema=schema, tolerance=CENTS,
                 budget_s=1.5, budget_clock="work", seed=0, progress=False)
    report = neural.manifest["training"]["exact_program"]
    assert neural.program_ is None and not report["used"] and "partial" in report["note"]


def test_guarded_swap_serves_the_program_and_never_a_wrong_answer(surrogate: Surrogate) -> None:
    from replace import swap

    guarded = swap(parcel_fee, surrogate, "guarded", max_error_rate=0.02)  # 240 held-out traces certify 2%
    served = wrong = 0
    for row in _production(1000, 15):
        before = guarded.stats.served_by_surrogate
        try:
            got, error = guarded(**row), None
        except OverweightError as exc:
            got, error = None, exc
        if guarded.stats.served_by_surrogate > before:
            served += 1
            value, expected_error = _outcomes([row])[0]
            wrong += (error is None) != (expected_error is None) or (
                error is None and abs(got - value) > CENTS.abs)
    assert wrong == 0 and served >= 900, (served, wrong)


def test_a_cut_short_search_needs_enough_held_out_rows_per_leaf(surrogate: Surrogate) -> None:
    # weight > 50 raises OverweightError: this leaf is right on every row, and is kept only with enough of them
    right = ExactProgram([NodeTest("weight", "real")],
                         [(0, 50.0, False, 1, 2, -1), (-1, math.nan, False, -1, -1, 0), (-1, math.nan, False, -1, -1, 1)],
                         [Leaf("neural"), Leaf("raise", error=_error(OverweightError))], "float")
    rows = SCHEMA.sample(400, seed=16)
    truth = _outcomes(rows)
    held = [(_columns(rows), [v for v, _ in truth], [None if e is None else _error(e) for _, e in truth])]
    over = sum(1 for r in rows if r["weight"] > 50)
    assert over >= 10
    kept, stats = keep_leaves(right, surrogate, held, "real", CENTS, min_rows=over)
    assert kept.served_leaves == 1 and stats["held_out_wrong"] == 0
    kept, stats = keep_leaves(right, surrogate, held, "real", CENTS, min_rows=over + 1)
    assert kept.served_leaves == 0 and stats["rejected_leaves"] == 1


def _held(rows):
    truth = _outcomes(rows)
    return (_columns(rows), [v for v, _ in truth], [None if e is None else _error(e) for _, e in truth])


def test_the_edge_rows_put_each_numeric_argument_at_both_ends_of_its_domain() -> None:
    traces = Traces.from_calls(parcel_fee, _production(300, 2))
    rows = edge_rows(SCHEMA, traces, seed=0)
    assert len(rows) == 2 * EDGE_BASES  # one numeric argument, two ends, EDGE_BASES recorded calls
    assert {r["weight"] for r in rows} == {0.1, 60.0} and all(SCHEMA.contains(r)[0] for r in rows)
    assert edge_rows(SCHEMA, traces, seed=0) == rows  # deterministic in the seed
    assert len(edge_rows(SCHEMA, None, seed=0)) == 2 * EDGE_BASES  # no traces: domain samples


def test_a_leaf_wrong_only_at_the_end_of_the_domain_goes_back_to_the_network(surrogate: Surrogate) -> None:
    """insurance_class's `age > 100` raised only at age 101, the domain's last integer: no held-out
    row reached the partition's leaf there, which answered a class with spread 0. The edge rows do."""
    wrong_at_edge = ExactProgram([NodeTest("weight", "real")],
                                 [(0, 59.9, False, 1, 2, -1), (-1, math.nan, False, -1, -1, 0),
                                  (-1, math.nan, False, -1, -1, 1)],
                                 [Leaf("neural"), Leaf("constant", value=99.0)], "float")
    traffic = _production(400, 17)
    assert not any(r["weight"] > 59.9 for r in traffic)  # traffic never reaches the leaf
    kept, _ = keep_leaves(wrong_at_edge, surrogate, [_held(traffic)], "real", CENTS)
    assert kept.served_leaves == 1  # without the edge rows the wrong leaf would answer
    edges = _held(edge_rows(SCHEMA, Traces.from_calls(parcel_fee, traffic), seed=0))
    kept, stats = keep_leaves(wrong_at_edge, surrogate, [_held(traffic)], "real", CENTS, probes=[edges])
    assert kept.served_leaves == 0 and stats["edge_rejected_leaves"] == 1
    assert "end of an argument's domain" in kept.leaves[1].note
    # a leaf right at the edge stays, and the edge rows do not count as held-out rows for min_rows
    right = ExactProgram([NodeTest("weight", "real")],
                         [(0, 50.0, False, 1, 2, -1), (-1, math.nan, False, -1, -1, 0), (-1, math.nan, False, -1, -1, 1)],
                         [Leaf("neural"), Leaf("raise", error=_error(OverweightError))], "float")
    kept, stats = keep_leaves(right, surrogate, [_held(traffic)], "real", CENTS, probes=[edges])
    assert kept.served_leaves == 1 and stats["edge_rejected_leaves"] == 0
    kept, stats = keep_leaves(right, surrogate, [_held(traffic)], "real", CENTS, min_rows=1, probes=[edges])
    assert kept.served_leaves == 0 and stats["rejected_leaves"] == 1


def test_the_edge_calls_stop_at_the_deadline_and_none_is_no_error() -> None:
    # no numeric argument (or a search with no traced calls) leaves no edge call: on the work clock
    # (no deadline) that was range(0, 0, 0), a ValueError that ended the fit
    assert _calls_until(parcel_fee, [], math.inf) == ([], [])
    rows = [{"weight": w, "zone": "EU", "express": False} for w in (1.0, 60.0)]
    outputs, errors = _calls_until(parcel_fee, rows, math.inf)
    assert outputs[0] == parcel_fee(**rows[0]) and errors[0] is None and errors[1].type.endswith("OverweightError")
    assert _calls_until(parcel_fee, rows, deadline=0.0) == ([], [])  # already past: no call
