"""Per-path exact expressions: each grammar form recovered from rows of one path, kept as
validated data, emitted as Python that agrees with the vectorised evaluation; exact thresholds
found by bisection with the oracle."""

import json
import math
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pytest

from probes import call_with_path
from probes._expressions import (
    Const,
    Expression,
    ExpressionError,
    Product,
    Round,
    Table,
    Var,
    bisect_threshold,
    fit_expression,
    fit_groups,
)

N = 300
RNG = np.random.default_rng(7)
COLUMNS = {
    "net": np.round(RNG.uniform(1.0, 500.0, N), 2),
    "qty": RNG.integers(1, 40, N),
    "weight": RNG.uniform(0.1, 30.0, N),
    "minutes": RNG.integers(1, 300, N),
    "country": np.array(RNG.choice(["DE", "FR", "IT"], N), dtype=object),
    "category": np.array(RNG.choice(["food", "books", "other"], N), dtype=object),
    "express": RNG.random(N) < 0.4,
}
KINDS = {"net": "real", "qty": "integer", "weight": "real", "minutes": "integer",
         "country": "categorical", "category": "categorical", "express": "boolean"}
ROWS = [{k: v[i].item() if isinstance(v[i], np.generic) else v[i] for k, v in COLUMNS.items()} for i in range(N)]

VAT = {("DE", "food"): 0.07, ("DE", "books"): 0.07, ("DE", "other"): 0.19,
       ("FR", "food"): 0.055, ("FR", "books"): 0.055, ("FR", "other"): 0.2,
       ("IT", "food"): 0.04, ("IT", "books"): 0.04, ("IT", "other"): 0.22}
ZONE = {"DE": 4.5, "FR": 6.0, "IT": 7.25}


def outputs(fn):
    return np.array([fn(**row) for row in ROWS], dtype=float)


def fit(fn, **options):
    return fit_expression(COLUMNS, outputs(fn), KINDS, **options)


def check_source_and_rows(expression, fn):
    """The emitted source, exec'd, agrees with evaluate and evaluate_row on every row; all three
    reproduce the function."""
    values = expression.evaluate(COLUMNS)
    code = compile(expression.to_python(), "<expression>", "eval")
    for i, row in enumerate(ROWS):
        emitted = eval(code, {"math": math, "__builtins__": {"round": round, "min": min, "max": max,
                                                              "abs": abs, "int": int}}, dict(row))
        assert float(emitted) == values[i] == expression.evaluate_row(row), (row, expression.to_python())
    assert np.all(np.abs(values - outputs(fn)) <= 1e-9 * np.maximum(np.abs(outputs(fn)), 1e-3))
    again = Expression.from_dict(json.loads(json.dumps(expression.to_dict())))
    assert again == expression and np.array_equal(again.evaluate(COLUMNS), values)


CASES = {
    "constant": (lambda **r: 12.5, "12.5"),
    "affine": (lambda net, weight, **r: 3.5 + 0.25 * net - 1.2 * weight, "3.5 + 0.25 * net - 1.2 * weight"),
    "product of three": (lambda net, qty, weight, **r: 0.002 * net * qty * weight, "0.002 * net * qty * weight"),
    "table times numeric": (lambda weight, country, **r: ZONE[country] * weight,
                            "weight * {'DE': 4.5, 'FR': 6, 'IT': 7.25}[country]"),
    "table over two times product": (lambda net, qty, country, category, **r: net * qty * VAT[country, category],
                                     None),
    "table plus slope": (lambda weight, country, **r: ZONE[country] + 0.5 * weight,
                         "{'DE': 4.5, 'FR': 6, 'IT': 7.25}[country] + 0.5 * weight"),
    "boolean table": (lambda weight, express, **r: weight * (2.0 if express else 1.25),
                      "weight * {False: 1.25, True: 2}[express]"),
    "ceil step fee": (lambda minutes, **r: math.ceil(minutes / 15) * 2.5, "2.5 * math.ceil(minutes / 15)"),
    "started unit among other terms": (
        lambda weight, country, net, **r: round(ZONE[country] + 0.012 * net + math.ceil(weight) * 1.6, 2),
        "round({'DE': 4.5, 'FR': 6, 'IT': 7.25}[country] + 0.012 * net + 1.6 * math.ceil(weight), 2)"),
    "rational": (lambda weight, **r: weight / 3 + 1, "1 + weight / 3"),
    "clamped fee": (lambda net, qty, **r: min(max(0.029 * net * qty + 0.3, 2.0), 60.0),
                    "min(max(0.3 + 0.029 * net * qty, 2), 60)"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_each_grammar_form_is_recovered_exactly(name):
    fn, text = CASES[name]
    expression = fit(fn)
    assert expression is not None, name
    if text is not None:
        assert expression.to_python() == text
    assert expression.rows == N
    check_source_and_rows(expression, fn)


def test_two_argument_table_is_one_term():
    expression = fit(CASES["table over two times product"][0])
    source = expression.to_python()
    assert source.startswith("net * qty * {") and source.endswith("}[country, category]")
    table = expression.root.factors[-1]
    assert isinstance(table, Table) and dict(table.entries)[("IT", "other")] == 0.22


@pytest.mark.parametrize("order", ["coefficient first", "coefficient last"])
def test_rounded_cents_are_reproduced_after_rounding(order):
    if order == "coefficient first":
        def vat(net, qty, **r):
            return round(0.19 * net * qty, 2)
    else:
        def vat(net, qty, **r):
            return round(net * qty * 0.19, 2)
    expression = fit(vat, quantum=0.01)
    assert expression is not None and isinstance(expression.root, Round)
    assert expression.to_python() in ("round(0.19 * net * qty, 2)", "round(net * qty * 0.19, 2)")
    check_source_and_rows(expression, vat)
    assert fit(vat, quantum=None, steps=False, minmax=False, max_candidates=60) is None  # exact only: no


def test_decimal_half_up_rounding_is_reproduced():
    def vat(net, qty, **r):
        return float((Decimal(str(net)) * qty * Decimal("0.075")).quantize(Decimal("0.01"), ROUND_HALF_UP))
    expression = fit(vat)  # quantum detected from the outputs
    assert expression is not None and expression.root.mode == "half_up"
    check_source_and_rows(expression, vat)


def test_rows_no_expression_reproduces_give_none():
    assert fit(lambda weight, **r: math.sin(weight)) is None  # the default work cap
    assert fit(lambda net, qty, **r: net * qty if net > 200 else net + qty, max_candidates=150) is None  # 2 paths
    assert fit(lambda weight, **r: weight ** 4, max_candidates=150) is None  # beyond degree 3
    assert fit_expression({"x": [1.0, 2.0]}, [1.0, None], {"x": "real"}) is None  # an error row is no output
    assert fit_expression({"x": []}, [], {"x": "real"}) is None


def test_schema_as_kinds_and_a_single_row():
    from probes import Schema

    def line(net: float, qty: int, country: str) -> float:
        return round(net * qty * {"DE": 1.19, "FR": 1.2}[country], 2)

    schema = Schema.from_function(line, net=(1.0, 100.0), qty=(1, 20), country=["DE", "FR"], output="real")
    rows = schema.sample(200, seed=1)
    columns = {name: [row[name] for row in rows] for name in ("net", "qty", "country")}
    expression = fit_expression(columns, [line(**row) for row in rows], schema, quantum=0.01)
    assert expression.to_python() == "round(net * qty * {'DE': 1.19, 'FR': 1.2}[country], 2)"
    assert all(expression.evaluate_row(row) == line(**row) for row in rows)
    assert fit_expression({"x": [3.0]}, [7.0], {"x": "real"}).to_python() == "7"


def test_from_dict_refuses_crafted_data():
    good = Expression(Product((Const(2.0), Var("net")))).to_dict()
    assert Expression.from_dict(good).to_python() == "2 * net"

    def crafted(root):
        return {**good, "root": root}

    bad_roots = [
        {"kind": "var", "name": "net; import os"},  # not an identifier
        {"kind": "var", "name": "__import__"},  # dunder
        {"kind": "var", "name": "lambda"},  # keyword
        {"kind": "exec", "arg": {"kind": "const", "value": 1.0}},  # unknown node kind
        {"kind": "const", "value": float("nan")},  # not finite
        {"kind": "const", "value": "1e3"},  # not a number
        {"kind": "const", "value": 1.0, "code": "x"},  # unknown field
        {"kind": "call", "fn": "eval", "arg": {"kind": "const", "value": 1.0}},  # not an allowed call
        {"kind": "table", "args": ["country"], "entries": [[[{"a": 1}], 1.0]]},  # key not a literal
        {"kind": "table", "args": ["country"], "entries": [[["DE"], 1.0], [["DE"], 2.0]]},  # twice
        {"kind": "round", "arg": {"kind": "var", "name": "net"}, "quantum": -1, "mode": "half_even"},
    ]
    for root in bad_roots:
        with pytest.raises(ExpressionError):
            Expression.from_dict(crafted(root))
    deep = {"kind": "const", "value": 1.0}
    for _ in range(100):
        deep = {"kind": "call", "fn": "abs", "arg": deep}
    with pytest.raises(ExpressionError):
        Expression.from_dict(crafted(deep))
    with pytest.raises(ExpressionError):
        Expression.from_dict({**good, "format": "something-else"})


def test_table_source_quotes_keys_and_unknown_keys_give_nan():
    table = Expression(Table(("country",), ((("D'E",), 1.5), (("FR",), 2.0))))
    assert table.to_python() == """{"D'E": 1.5, 'FR': 2}[country]"""
    assert math.isnan(table.evaluate_row({"country": "XX"}))
    assert np.isnan(table.evaluate({"country": ["XX", "FR"]})).tolist() == [True, False]


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


def surcharge(amount: float) -> float:
    limit = 1234.5678
    return amount * 2 if amount >= limit else amount


def test_bisect_finds_a_threshold_hidden_in_a_table_to_the_float():
    def path_of(row):
        return call_with_path(bracket_tax, row).signature

    cut = bisect_threshold(path_of, {"income": 20000.0}, {"income": 61234.5}, "income")
    assert cut.value == 40000.0 and cut.below_inclusive and cut.condition == "income <= 40000"
    assert cut.high == math.nextafter(40000.0, math.inf) and cut.low == 40000.0
    assert path_of({"income": 40000.0}) == cut.below != cut.above == path_of({"income": cut.high})
    assert cut.calls <= 70

    # rows given high first; `>=` makes the cut itself belong to the upper side
    ge = bisect_threshold(lambda row: call_with_path(surcharge, row).path, {"amount": 5000.0}, {"amount": 3.0},
                          "amount")
    assert ge.value == 1234.5678 and not ge.below_inclusive and ge.condition == "amount < 1234.5678"
    assert ge.low == math.nextafter(1234.5678, -math.inf)


def test_bisect_on_integers_and_refusals():
    cut = bisect_threshold(lambda row: row["n"] > 17, {"n": 0, "other": "x"}, {"n": 1000, "other": "x"}, "n")
    assert (cut.value, cut.low, cut.high, cut.below_inclusive) == (17, 17, 18, True)
    with pytest.raises(ValueError, match="same path"):
        bisect_threshold(lambda row: 0, {"n": 0.0}, {"n": 1.0}, "n")
    with pytest.raises(ValueError, match="differ only"):
        bisect_threshold(lambda row: row["n"] > 0.5, {"n": 0.0, "k": 1}, {"n": 1.0, "k": 2}, "n")


def test_rows_split_by_signature_give_one_exact_piece_per_bracket():
    incomes = np.round(np.random.default_rng(3).uniform(0.0, 250000.0, 400), 2)
    calls = [call_with_path(bracket_tax, {"income": float(x)}) for x in incomes]
    assert len({c.path for c in calls}) == 2  # the first bracket (no loop back) and all the others
    found = {}
    for signature in sorted({c.signature for c in calls}):
        rows = [i for i, c in enumerate(calls) if c.signature == signature]
        expression = fit_expression({"income": incomes[rows]}, [calls[i].output for i in rows], {"income": "real"})
        assert expression is not None
        found[expression.to_python()] = len(rows)
    assert set(found) == {"0", "0.1 * income - 1000", "0.2 * income - 5000", "0.3 * income - 15000"}
    # the coarse path mixes three linear pieces: no single expression of the grammar
    rest = [i for i, c in enumerate(calls) if incomes[i] > 10000]
    assert fit_expression({"income": incomes[rest]}, [calls[i].output for i in rest], {"income": "real"},
                          max_candidates=100) is None


def test_fit_groups_fits_each_signature_and_skips_error_rows():
    incomes = [5000.0, 7000.0, 20000.0, 30000.0, 35000.0, 60000.0, 70000.0, 80000.0, -1.0]
    calls = [call_with_path(bracket_tax, {"income": x}) for x in incomes]
    outputs = [c.output for c in calls[:-1]] + [None]  # as if the last call had raised
    found = fit_groups([{"income": x} for x in incomes], outputs, [c.signature for c in calls],
                       {"income": "real"}, min_rows=3)
    assert {k: (e.to_python() if e else None) for k, e in found.items()} == {
        calls[0].signature: None, calls[2].signature: "0.1 * income - 1000", calls[5].signature: "0.2 * income - 5000"}


def test_a_period_shown_only_by_the_days_a_path_reaches_is_a_step():
    """`days % 7 >= 3` leaves days 3-6 of each week on the path: the week count is
    floor((days + 4) / 7), one factor of the interest term, though no step shows along days."""
    rng = np.random.default_rng(3)
    days = [int(d) for d in rng.integers(6, 180, 900) if d % 7 >= 3][:300]
    amount = [round(float(a), 2) for a in rng.uniform(20.0, 400.0, len(days))]
    kind = [str(k) for k in rng.choice(["CONSUMER", "BUSINESS"], len(days))]
    rate, admin = {"CONSUMER": 0.01, "BUSINESS": 0.015}, {"CONSUMER": 5.0, "BUSINESS": 15.0}
    y = [round(admin[k] + a * rate[k] * (d // 7 + 1), 2) for d, a, k in zip(days, amount, kind)]
    found = fit_expression({"days": days, "amount": amount, "kind": kind}, y,
                           {"days": "integer", "amount": "real", "kind": "categorical"}, quantum=0.01)
    assert found is not None
    assert "math.floor((days + 4) / 7)" in found.to_python()
    assert np.array_equal(found.evaluate({"days": days, "amount": amount, "kind": kind}), np.asarray(y))


def test_the_code_order_of_a_product_is_picked_on_rows_the_fit_did_not_see():
    """`amount * weeks * 0.015` and `0.015 * amount * weeks` differ after round() on ties
    (294.6 x 5); fit_rows fits on a sample, then picks the order that reproduces every row."""
    from probes._path_fit import fit_rows
    from probes import Schema
    from probes._expressions import orderings

    def fee(amount: float, weeks: int) -> float:
        return round(5 + amount * weeks * 0.015, 2)

    rng = np.random.default_rng(0)
    rows = [{"amount": round(float(rng.uniform(1, 500)), 2), "weeks": int(rng.integers(1, 11))} for _ in range(3000)]
    rows += [{"amount": 294.6, "weeks": 5}, {"amount": 378.5, "weeks": 10}]  # ties the orders round apart
    outputs = [fee(**r) for r in rows]
    schema = Schema.from_function(fee, amount=(1.0, 500.0), weeks=(1, 10))
    found = fit_rows(rows, outputs, schema, 0.01)
    assert found is not None
    assert [found.evaluate_row(r) for r in rows[-2:]] == outputs[-2:]
    assert len(orderings(found)) >= 2  # the orders tried, its rounding kept
    assert all(isinstance(o.root, Round) for o in orderings(found))


def test_match_ties_finds_the_code_float_arithmetic():
    """On cent inputs the rounding meets ties where only the code's own floats decide:
    `s * (1 - c / 100)` is not `s - 0.01 * s * c` there, and `1 - (0.02 + 0.05)` is not 0.93."""
    from probes._expressions import Sum
    from probes._ties import match_ties

    rng = np.random.default_rng(0)
    rows = [{"s": round(float(rng.uniform(1, 500)), 2), "c": int(rng.integers(0, 30))} for _ in range(4000)]
    rows += [{"s": k + 0.5, "c": int(rng.integers(0, 30))} for k in range(200)]
    y = [round(r["s"] * (1 - r["c"] / 100), 2) for r in rows]
    expanded = Expression(Round(Sum((Var("s"), Product((Const(-0.01), Var("s"), Var("c"))))), 0.01), len(rows))
    assert [expanded.evaluate_row(r) for r in rows] != y  # the expanded form misses some ties
    found = match_ties(expanded, rows, y)
    assert found is not None and [found.evaluate_row(r) for r in rows] == y
    assert "s * (1 - " in found.to_python()

    rate = {"A": 0.02 + 0.05, "B": 0.05 + 0.03}
    rows = [{"s": round(float(rng.uniform(100, 300)), 2), "lv": str(rng.choice(["A", "B"]))} for _ in range(3000)]
    rows += [{"s": k + 0.5, "lv": lv} for k in range(100, 140) for lv in ("A", "B")]
    y = [round(r["s"] * (1 - rate[r["lv"]]), 2) for r in rows]
    snapped = Expression(Round(Product((Var("s"), Table(("lv",), ((("A",), 0.93), (("B",), 0.92))))), 0.01), 1)
    assert [snapped.evaluate_row(r) for r in rows] != y
    found = match_ties(snapped, rows, y)
    assert found is not None and [found.evaluate_row(r) for r in rows] == y
    assert "0.9299999999999999" in found.to_python()  # the code's 1 - 0.07, to the bit
    assert match_ties(snapped, rows, [v + 1 for v in y]) is None  # not a matter of ties: refused


def test_a_net_rounded_then_taxed_and_rounded_again_is_recovered():
    """Invoice code rounds the discounted net to the cent, then adds the tax on the rounded net:
    round(round(price * qty * 0.9) * (1 + vat[country])), which no single rounding reproduces."""
    from probes._nested import fit_nested

    vat = {"DE": Decimal("0.19"), "FR": Decimal("0.055"), "IT": Decimal("0.22")}
    cent = Decimal("0.01")

    def line(price: float, qty: int, country: str) -> float:
        net = (Decimal(str(price)) * qty * Decimal("0.9")).quantize(cent, rounding=ROUND_HALF_UP)
        return float(net + (net * vat[country]).quantize(cent, rounding=ROUND_HALF_UP))

    rng = np.random.default_rng(5)
    rows = [{"price": round(float(rng.uniform(0.5, 300)), 2), "qty": int(rng.integers(50, 100)),
             "country": str(rng.choice(list(vat)))} for _ in range(1500)]
    y = [line(**r) for r in rows]
    kinds = {"price": "real", "qty": "integer", "country": "categorical"}
    columns = {k: [r[k] for r in rows] for k in kinds}
    assert fit_expression(columns, y, kinds, quantum=0.01) is None  # one rounding is not enough
    found = fit_nested(columns, y, kinds, 0.01, rounding="half_up")
    assert found is not None
    text = found.to_python()
    assert "0.9" in text and "'FR': 1.055" in text, text
    fresh = [{"price": round(float(rng.uniform(0.5, 300)), 2), "qty": int(rng.integers(50, 100)),
              "country": str(rng.choice(list(vat)))} for _ in range(5000)]
    assert [found.evaluate_row(r) for r in fresh] == [line(**r) for r in fresh]
    assert Expression.from_dict(json.loads(json.dumps(found.to_dict()))).to_python() == text  # data, round trip


def _pay(h: float, s: float, r: float) -> float:
    weekday = h - s
    regular, overtime = (40.0, weekday - 40) if weekday > 40 else (weekday, 0.0)
    pay = regular * r
    pay += overtime * r * 1.5
    pay += s * r * 2.0
    return round(pay, 2)


def test_sums_counted_from_a_difference_the_code_computes():
    """On quarter hours and cents only the code's own sums give its cent: `h*r + s*r` is
    `(h - s)*r + 2*s*r` there, and overtime counts from the 40 weekday hours."""
    from probes._expressions import Sum
    from probes._ties import match_ties

    rng = np.random.default_rng(4)
    rows = []
    while len(rows) < 4000:
        h = round(float(rng.uniform(0, 80)) * 4) / 4
        rows.append({"h": h, "s": min(h, round(float(rng.uniform(0, 16)) * 4) / 4),
                     "r": round(float(rng.uniform(7.25, 80)), 2)})
    below = [r for r in rows if r["h"] - r["s"] <= 40]
    above = [r for r in rows if r["h"] - r["s"] > 40]
    plain_below = Expression(Round(Sum((Product((Var("h"), Var("r"))), Product((Var("s"), Var("r"))))), 0.01), 1)
    plain_above = Expression(Round(Product((Var("r"), Sum((Const(-20.0), Product((Const(1.5), Var("h"))),
                                                           Product((Const(0.5), Var("s"))))))), 0.01), 1)
    for plain, part, text in ((plain_below, below, "(h - s) * r"), (plain_above, above, "(h - s - 40) * r * 1.5")):
        y = [_pay(**r) for r in part]
        assert [plain.evaluate_row(r) for r in part] != y
        assert match_ties(plain, part, y) is None  # no order or factoring of the plain sum does it
        found = match_ties(plain, part, y, differences=[("h", "s")])
        assert found is not None and text in found.to_python(), found
        assert [found.evaluate_row(r) for r in part] == y
