"""probes._program: learn_exact's partition as data: route and answers equal to the code on every
row, batch equal to single rows, a JSON round trip, and damaged data refused (never run)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from probes import Schema, Tolerance, Traces
from probes._derived import Ratio
from probes._exact_rules import learn_exact
from probes._expressions import Const, Expression, Var
from probes._program import ExactProgram, Leaf, NodeTest, ProgramError
from probes._scorecard import Scorecard

BRACKETS = [(10_000.0, 0.0), (40_000.0, 0.2), (math.inf, 0.4)]


class NegativeIncome(ValueError):
    pass


def bracket_tax(income: float, status: str) -> float:
    """A tax that loops over a bracket table (thresholds live in a list), with an allowance per status."""
    if income < 0:
        raise NegativeIncome(f"income {income} < 0")
    allowance = {"single": 0.0, "joint": 5_000.0}[status]
    taxable = max(income - allowance, 0.0)
    tax, lower = 0.0, 0.0
    for upper, rate in BRACKETS:
        if taxable > lower:
            tax += (min(taxable, upper) - lower) * rate
        lower = upper
    return round(tax, 2)


SCHEMA = Schema.from_function(bracket_tax, income=(-1_000.0, 120_000.0), status=["single", "joint"])
CENTS = Tolerance(abs=0.005)


@pytest.fixture(scope="module")
def program() -> ExactProgram:
    rng = np.random.default_rng(0)
    rows = [{"income": float(rng.uniform(0, 90_000)), "status": str(rng.choice(["single", "joint"]))}
            for _ in range(300)]
    found = learn_exact(bracket_tax, SCHEMA, traces=Traces.from_calls(bracket_tax, rows), n_samples=1200, seed=0,
                        tolerance=CENTS)
    assert not isinstance(found, str), found
    made = ExactProgram.from_fit(found, SCHEMA.output.python_type)
    assert isinstance(made, ExactProgram)
    return made


def _columns(rows):
    return {k: [r[k] for r in rows] for k in rows[0]}


def _outcome(fn, row):
    try:
        return fn(**row), None
    except Exception as exc:
        return None, type(exc).__name__


def test_program_answers_every_row_as_the_code_does(program: ExactProgram) -> None:
    rows = SCHEMA.sample(3000, seed=7)
    rows += [{"income": b + d, "status": s} for b in (10_000.0, 15_000.0, 40_000.0, 45_000.0)
             for d in (-0.01, 0.0, 0.01) for s in ("single", "joint")]  # the thresholds of the table, to the cent
    assert program.exact
    served, outputs, errors = program.answer_batch(_columns(rows), len(rows))
    assert served.all()
    for i, row in enumerate(rows):
        value, error = _outcome(bracket_tax, row)
        assert (outputs[i], errors[i].name if errors[i] else None) == (value, error), row
        assert program.answer_row(row) == (outputs[i], errors[i]), row


def test_program_survives_json_and_refuses_damaged_data(program: ExactProgram) -> None:
    data = json.loads(json.dumps(program.to_dict()))
    again = ExactProgram.from_dict(data)
    rows = SCHEMA.sample(500, seed=8)
    assert [again.answer_row(r) for r in rows] == [program.answer_row(r) for r in rows]
    bad = json.loads(json.dumps(data))
    bad["nodes"][0][3] = 0  # a child pointing back at its parent: a cycle
    with pytest.raises(ProgramError, match="later node"):
        ExactProgram.from_dict(bad)
    raising = [i for i, leaf in enumerate(data["leaves"]) if leaf["kind"] == "raise"]
    assert raising
    bad = json.loads(json.dumps(data))
    bad["leaves"][raising[0]]["error"]["type"] = "__import__('os').system('echo hi')"
    with pytest.raises(ProgramError, match="error"):
        ExactProgram.from_dict(bad)
    bad = json.loads(json.dumps(data))
    bad["tests"][0] = {"field": "income; import os", "kind": "real"}
    with pytest.raises(ProgramError, match="argument name"):
        ExactProgram.from_dict(bad)
    with pytest.raises(ProgramError, match="format"):
        ExactProgram.from_dict({**data, "version": 99})


def test_derived_tests_round_trip_and_route_like_the_encoding() -> None:
    tests = [NodeTest("a / b", "derived", derived=Ratio("div", "a", "b")),
             NodeTest("score", "derived", derived=Scorecard(1.0, (("a", ((2.0, False),), (0.0, 5.0)),),
                                                        (("c", (("x", 1.0), ("y", 2.0))),)))]
    # a / b <= 0.5 -> leaf 0, else score < 4 -> leaf 1, else leaf 2
    nodes = [(0, 0.5, False, 1, 2, -1), (-1, math.nan, False, -1, -1, 0), (1, 4.0, True, 3, 4, -1),
             (-1, math.nan, False, -1, -1, 1), (-1, math.nan, False, -1, -1, 2)]
    leaves = [Leaf("constant", value="low"), Leaf("expression", expression=Expression(Var("a"))),
              Leaf("neural", note="not exact")]
    program = ExactProgram.from_dict(json.loads(json.dumps(ExactProgram(tests, nodes, leaves, "float").to_dict())))
    rows = [{"a": 1.0, "b": 4.0, "c": "x"}, {"a": 3.0, "b": 1.0, "c": "x"}, {"a": 1.9, "b": 0.0, "c": "y"},
            {"a": 3.0, "b": 1.0, "c": "y"}, {"a": 1.0, "b": 1.0, "c": "x"}]
    # a / 0 counts as 0 (as the partition was learned): leaf 0
    assert [program.answer_row(r) for r in rows] == [("low", None), None, ("low", None), None, (1.0, None)]
    served, outputs, _ = program.answer_batch(_columns(rows), len(rows))
    assert served.tolist() == [True, False, True, False, True] and outputs[0] == "low"
    assert program.served_leaves == 2 and not program.exact
    assert program.without([0], "dropped").served_leaves == 1
    assert Expression(Const(2.0)).evaluate_row({}) == 2.0


def test_one_row_derived_values_are_the_batch_floats() -> None:
    """The single call's plain-Python Ratio and Scorecard give the numpy evaluation's floats."""
    from probes._program import _plain_function

    rng = np.random.default_rng(0)
    a, b = rng.uniform(1, 200, 5000), rng.uniform(0.5, 250, 5000)
    for ratio in (Ratio("div", "a", "b"), Ratio("mul", "a", "b"), Ratio("div_sq", "a", "b"),
                  Ratio("div_sq", "a", "b", 100.0)):
        one = _plain_function(ratio)
        assert np.array_equal(ratio.evaluate({"a": a, "b": b}), [one({"a": x, "b": y}) for x, y in zip(a, b)])
    card = Scorecard(1.5, (("a", ((10.0, False), (50.0, True)), (0.1, 2.3, 7.7)),), (("c", (("x", 1.25),)),))
    c = list(rng.choice(["x", "y"], 5000))
    one = _plain_function(card)
    assert np.array_equal(card.evaluate({"a": a, "c": c}), [one({"a": x, "c": y}) for x, y in zip(a, c)])
