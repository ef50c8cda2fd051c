"""distill() from traced branch paths: exact pieces, cuts bisected to the float, tables as dict
constants, raises by name, approximate pieces marked, untraceable code left to the tree."""

from __future__ import annotations

import functools
import math
import re

import numpy as np
import pytest

from explain import distill
from explain._safe_source import check_generated_source
from probes import Schema, Tolerance, Traces, verify

CENTS = Tolerance(abs=0.005)
EXACT = Tolerance(abs=1e-9)

# -- a small fee table -------------------------------------------------------------------------------

ZONE_PRICE = {"DOM": 4.5, "EU": 9.0, "NA": 14.0, "ROW": 19.5}
EXPRESS_SURCHARGE = {"DOM": 3.0, "EU": 6.0, "NA": 9.0, "ROW": 9.0}


def parcel_fee(weight: float, zone: str, express: bool) -> float:
    if weight <= 2:
        base = 3.9
    elif weight <= 10:
        base = 6.9
    elif weight <= 30:
        base = 12.5
    else:  # every started kilogram above 30
        base = 12.5 + math.ceil(weight - 30) * 0.85
    fee = base + ZONE_PRICE[zone]
    if express:
        fee = fee + EXPRESS_SURCHARGE[zone]
    return round(fee, 2)


FEE_SCHEMA = Schema.from_function(parcel_fee, weight=(0.1, 60.0), zone=list(ZONE_PRICE))


def _traces(fn, rows):
    return Traces.from_calls(fn, rows)


@pytest.fixture(scope="module")
def fee_rules():
    rng = np.random.default_rng(3)
    production = [{"weight": float(np.clip(rng.lognormal(0.5, 0.9), 0.1, 60.0)),
                   "zone": str(rng.choice(list(ZONE_PRICE))), "express": bool(rng.random() < 0.2)}
                  for _ in range(400)]
    return distill(parcel_fee, schema=FEE_SCHEMA, traces=_traces(parcel_fee, production), tolerance=CENTS,
                   n_samples=1200, fidelity_samples=600, seed=0)


def test_fee_table_rules_are_exact_and_verify_passes(fee_rules) -> None:
    assert fee_rules.exact is not None and fee_rules.exact.used and fee_rules.exact.exact
    assert fee_rules.variant == "exact paths" and fee_rules._fitted is None
    check_generated_source(fee_rules.source)
    for fid in (fee_rules.fidelity_domain, fee_rules.fidelity_production):
        assert fid is not None and fid.agreement == 1.0 and fid.method == "probes.verify"
    report = verify(parcel_fee, fee_rules.function, schema=FEE_SCHEMA, tolerance=CENTS, max_examples=400, seed=5,
                    database=None)
    assert report.status == "passed" and report.passed, report.to_markdown()
    assert report.agreement == 1.0


def test_fee_table_rules_hold_the_code_thresholds_and_tables(fee_rules) -> None:
    source = fee_rules.source
    for cut in ("weight <= 2.0:", "weight <= 10.0:", "weight <= 30.0:"):
        assert cut in source, source
    assert not re.search(r"weight <= \d+\.\d{3,}", source)  # no drifted cuts such as 29.713
    assert sorted({c.threshold for c in fee_rules.cuts() if c.argument == "weight"}) == [2.0, 10.0, 30.0]
    assert all(c.snapped for c in fee_rules.cuts())
    # categories: dict constants (or equality tests), the per-started-kg step as math.ceil
    assert re.search(r"^ZONE_TABLE\w* = \{'DOM': ", source, re.M) or "zone == 'DOM'" in source
    assert "math.ceil(weight" in source
    # one float step either side of every cut, every zone and both express settings
    for t in (2.0, 10.0, 30.0):
        for x in (float(np.nextafter(t, 0)), t, float(np.nextafter(t, 100))):
            for zone in ZONE_PRICE:
                for express in (False, True):
                    assert fee_rules.function(weight=x, zone=zone, express=express) == parcel_fee(x, zone, express)


# -- a bracket tax over a list of thresholds ---------------------------------------------------------

BRACKETS = [(12000.0, 0.0), (32000.0, 0.12), (85000.0, 0.27), (None, 0.41)]


def bracket_tax(income: float) -> float:
    tax, lower = 0.0, 0.0
    for upper, rate in BRACKETS:
        if upper is None or income <= upper:
            tax += (income - lower) * rate
            break
        tax += (upper - lower) * rate
        lower = upper
    return round(tax, 2)


def test_bracket_bounds_in_a_table_are_found_by_bisection() -> None:
    schema = Schema.from_function(bracket_tax, income=(0.0, 200000.0))
    rules = distill(bracket_tax, schema=schema, tolerance=CENTS, n_samples=800, fidelity_samples=400)
    assert rules.exact.used and rules.exact.exact, rules.source
    assert sorted(c.threshold for c in rules.cuts()) == [12000.0, 32000.0, 85000.0]
    for bound in ("income <= 12000.0:", "income <= 32000.0:", "income <= 85000.0:"):
        assert bound in rules.source, rules.source
    assert rules.fidelity_domain.agreement == 1.0


# -- raising by name -----------------------------------------------------------------------------------

class ParcelRefused(ValueError):
    """The legacy module's own exception type."""


def checked_fee(weight: float, zone: str) -> float:
    if weight > 40:
        raise ParcelRefused(f"weight={weight}: over the 40 kg limit")
    if zone == "ROW" and weight > 20:
        raise KeyError(zone)
    return round(ZONE_PRICE[zone] + 1.2 * weight, 2)


def test_rules_raise_the_legacy_exception_type_by_name() -> None:
    schema = Schema.from_function(checked_fee, weight=(0.0, 50.0), zone=list(ZONE_PRICE))
    rules = distill(checked_fee, schema=schema, tolerance=CENTS, n_samples=800, fidelity_samples=400)
    assert rules.exact.used and rules.exact.exact, rules.source
    module = ParcelRefused.__module__
    assert f"from {module} import ParcelRefused" in rules.source
    assert "raise ParcelRefused(" in rules.source and "raise KeyError(" in rules.source
    check_generated_source(rules.source)
    with pytest.raises(ParcelRefused):
        rules.function(weight=41.0, zone="EU")
    with pytest.raises(KeyError):
        rules.function(weight=25.0, zone="ROW")
    assert "weight <= 40.0:" in rules.source
    assert rules.function(weight=40.0, zone="EU") == checked_fee(40.0, "EU")
    assert rules.fidelity_domain.agreement == 1.0


# -- a piece no expression reproduces ---------------------------------------------------------------

def wave(x: float, mode: str) -> float:
    if mode == "flat":
        return round(2.5 * x + 1.0, 2)
    return math.sin(3.0 * x) * x


def test_a_non_exact_piece_is_marked_approximate_and_the_rest_stays_exact() -> None:
    schema = Schema.from_function(wave, x=(0.0, 10.0), mode=["flat", "wavy"])
    rules = distill(wave, schema=schema, tolerance=EXACT, n_samples=600, fidelity_samples=400)
    assert rules.exact.used and not rules.exact.exact
    assert rules.exact.approximate_leaves >= 1 and "approximate" in rules.variant
    assert "# approximate" in rules.source
    assert "2.5 * x" in rules.source
    xs = np.random.default_rng(1).uniform(0.0, 10.0, 200)
    assert all(rules.function(x=float(x), mode="flat") == wave(float(x), "flat") for x in xs)
    assert sum(rules.function(x=float(x), mode="wavy") == wave(float(x), "wavy") for x in xs) < 20
    assert 0.4 < rules.fidelity_domain.agreement < 0.7  # the fidelity shows it


# -- untraceable code ---------------------------------------------------------------------------------

def test_untraceable_function_falls_back_to_the_tree() -> None:
    rounded = functools.partial(round, ndigits=1)  # a builtin behind a partial: no Python code, no paths
    schema = Schema.from_function(rounded, number=(0.0, 10.0), ndigits=[1])
    rules = distill(rounded, schema=schema, tolerance=Tolerance(abs=0.06), n_samples=300, fidelity_samples=200,
                    max_leaves=8, name="rounded")
    assert rules.exact is not None and not rules.exact.used
    assert "no Python code" in rules.exact.note
    assert rules._fitted is not None and rules.complexity.leaves <= 8  # max_leaves bounds the fallback
    assert "Not from the traced branch paths" in rules.source
    assert rules.fidelity_domain.agreement > 0.2


def test_exact_false_keeps_the_tree() -> None:
    rules = distill(bracket_tax, schema=Schema.from_function(bracket_tax, income=(0.0, 200000.0)),
                    tolerance=CENTS, n_samples=300, fidelity_samples=200, exact=False, max_leaves=8)
    assert rules.exact is None and rules._fitted is not None and rules.complexity.leaves <= 8


# -- a derived value the code compares -----------------------------------------------------------------

def grade(exam: float, project: float) -> str:
    score = round(0.6 * exam + 0.4 * project, 1)
    if exam < 40:
        return "F"
    if score >= 85:
        return "A"
    if score >= 70:
        return "B"
    return "C" if score >= 50 else "F"


def test_a_derived_value_is_computed_under_its_name_and_cut_where_the_code_cuts() -> None:
    schema = Schema.from_function(grade, exam=(0.0, 100.0), project=(0.0, 100.0))
    rules = distill(grade, schema=schema, n_samples=800, fidelity_samples=400)
    assert rules.exact.used and rules.exact.exact, rules.source
    assert "score = round(0.6 * exam + 0.4 * project, 1)" in rules.source
    for cut in ("score < 85.0", "score < 70.0", "score < 50.0", "exam < 40.0"):
        assert cut in rules.source, rules.source
    assert rules.complexity.leaves <= 6
    assert rules.fidelity_domain.agreement == 1.0


def body_class(height_cm: float, weight_kg: float) -> str:
    bmi = weight_kg / (height_cm / 100) ** 2
    if bmi < 18.5:
        return "under"
    if bmi < 25:
        return "normal"
    return "over"


def test_a_compared_ratio_is_computed_the_code_s_way() -> None:
    schema = Schema.from_function(body_class, height_cm=(140.0, 200.0), weight_kg=(40.0, 120.0))
    rules = distill(body_class, schema=schema, n_samples=800, fidelity_samples=400)
    assert rules.exact.exact, rules.source
    assert "bmi = weight_kg / (height_cm / 100) ** 2" in rules.source
    assert "bmi < 18.5" in rules.source and "bmi < 25.0" in rules.source
    assert rules.complexity.leaves == 3 and rules.fidelity_domain.agreement == 1.0


LOADING = {"N": 0, "S": 1, "E": 2}


def risk(age: int, smoker: bool, region: str) -> str:
    points = 0
    if age < 30:
        points += 0
    elif age < 50:
        points += 2
    else:
        points += 4
    if smoker:
        points += 3
    points += LOADING[region]
    if points <= 2:
        return "low"
    if points <= 5:
        return "mid"
    return "high"


def test_a_scorecard_is_added_up_like_the_code_and_cut_where_it_decides() -> None:
    schema = Schema.from_function(risk, age=(18, 90), region=list(LOADING))
    rules = distill(risk, schema=schema, n_samples=600, fidelity_samples=400)
    assert rules.exact.exact, rules.source
    assert "points += (0 if age <= 29 else 2 if age <= 49 else 4)" in rules.source
    assert "points += (3 if smoker else 0)" in rules.source and "[region]" in rules.source
    assert "points < 3.0" in rules.source or "points <= 2.0" in rules.source
    assert rules.complexity.leaves == 3 and rules.fidelity_domain.agreement == 1.0


# -- ties: the code's order of operations -------------------------------------------------------

def interest_fee(amount: float, weeks: int) -> float:
    return round(5 + amount * weeks * 0.015, 2)


def test_rules_multiply_in_the_code_order_on_cent_inputs() -> None:
    """Uniform floats never meet a rounding tie; amounts in cents do (294.6 x 5 weeks), and only
    the code's order (amount * weeks * rate) gives its cent there: calls on short-decimal inputs
    pick it among the orders that reproduce the path."""
    schema = Schema.from_function(interest_fee, amount=(1.0, 500.0), weeks=(1, 10))
    rules = distill(interest_fee, schema=schema, tolerance=CENTS, n_samples=800, fidelity_samples=200)
    assert rules.exact.used and rules.exact.exact, rules.source
    rng = np.random.default_rng(1)
    rows = [{"amount": round(float(rng.uniform(1, 500)), 2), "weeks": int(rng.integers(1, 11))} for _ in range(20000)]
    wrong = [r for r in rows if rules.function(**r) != interest_fee(**r)]
    assert not wrong, (wrong[:3], rules.source)


def tier_or_coupon(subtotal: float, coupon_percent: int) -> float:
    rate = 0.05 if subtotal >= 250.0 else 0.02
    if coupon_percent / 100 > rate:
        rate = coupon_percent / 100
    return round(subtotal * (1 - rate), 2)


def test_a_cut_whose_nearest_rows_give_one_piece_is_bisected_beyond_them() -> None:
    """Rows with a coupon that beats either tier sit nearest the tree's cut on subtotal (247.8 |
    249.5), so moving them across it changes nothing; the node's next rows bracket the tier bound
    and it is bisected to 250, where the code has it."""
    from probes._partition import Column, Node, snap

    def piece_at(row: dict) -> str:
        rate = 0.05 if row["subtotal"] >= 250.0 else 0.02
        return "coupon" if row["coupon_percent"] / 100 > rate else f"tier {rate}"

    rows = [{"subtotal": 247.8, "coupon_percent": 10}, {"subtotal": 249.5, "coupon_percent": 12},
            {"subtotal": 240.0, "coupon_percent": 1}, {"subtotal": 262.0, "coupon_percent": 1},
            {"subtotal": 270.0, "coupon_percent": 3}, {"subtotal": 230.0, "coupon_percent": 0}]
    X = np.array([[r["subtotal"], r["coupon_percent"]] for r in rows], dtype=float)
    columns = [Column("subtotal", "real"), Column("coupon_percent", "integer")]
    tree = Node(column=0, threshold=248.65, left=Node(piece=0), right=Node(piece=1))
    total, snapped = snap(tree, X, rows, columns, piece_at)
    assert (total, snapped) == (1, 1)
    assert tree.threshold == 250.0 and tree.strict  # subtotal < 250.0 goes left


def test_rules_of_a_tier_or_a_better_coupon_are_exact_on_cent_inputs() -> None:
    schema = Schema.from_function(tier_or_coupon, subtotal=(0.0, 1000.0), coupon_percent=(0, 30))
    rules = distill(tier_or_coupon, schema=schema, tolerance=CENTS, n_samples=800, fidelity_samples=200)
    assert rules.exact.used and rules.exact.exact, rules.source
    assert "subtotal < 250.0" in rules.source, rules.source
    rng = np.random.default_rng(2)
    rows = [{"subtotal": round(float(rng.uniform(0, 1000)), int(rng.integers(0, 3))),
             "coupon_percent": int(rng.integers(0, 31))} for _ in range(20000)]
    wrong = [r for r in rows if rules.function(**r) != tier_or_coupon(**r)]
    assert not wrong, (wrong[:3], rules.source)


def test_leaf_rows_sample_inside_every_leaf_box() -> None:
    """The finished partition is checked by calls drawn inside each leaf's own box (numeric
    bounds, categories, a derived test checked by routing), so a corner no sample reached is
    asked before the rules stand: order_total's gold 3% beating a 2-3% coupon under 100."""
    from probes._path_oracle import leaf_rows
    from probes._partition import Encoding, Node, route

    schema = Schema.from_function(tier_or_coupon, subtotal=(0.0, 10000.0), coupon_percent=(0, 30))
    encoding = Encoding(schema)
    # subtotal <= 100 -> (coupon_percent <= 3 -> A | B) | C
    tree = Node(column=0, threshold=100.0, left=Node(column=1, threshold=3.0, left=Node(piece=0),
                                                     right=Node(piece=1)), right=Node(piece=2))
    rows = leaf_rows(tree, encoding, schema, np.random.default_rng(0), 6)
    members = route(tree, encoding.encode(rows))
    assert [len(members[id(leaf)]) for leaf in tree.leaves()] == [6, 6, 6]
    corner = [rows[int(i)] for i in members[id(tree.leaves()[0])]]
    assert all(r["subtotal"] <= 100.0 and r["coupon_percent"] <= 3 for r in corner)


def weekly_pay(hours_worked: float, sunday_hours: float, hourly_rate: float) -> float:
    if sunday_hours > hours_worked:
        raise ValueError("Sunday hours are part of the hours worked")
    weekday_hours = hours_worked - sunday_hours
    if weekday_hours > 40.0:
        regular, overtime = 40.0, weekday_hours - 40.0
    else:
        regular, overtime = weekday_hours, 0.0
    pay = regular * hourly_rate
    pay += overtime * hourly_rate * 1.5
    pay += sunday_hours * hourly_rate * 2.0
    return round(pay, 2)


def test_rules_count_from_the_difference_the_code_computes() -> None:
    """The code's local weekday_hours = hours_worked - sunday_hours: the paths' sums are written
    over it (and overtime from its 40), which alone gives the code's cent on quarter hours."""
    schema = Schema.from_function(weekly_pay, hours_worked=(0.0, 80.0), sunday_hours=(0.0, 16.0),
                                  hourly_rate=(7.25, 80.0))
    rules = distill(weekly_pay, schema=schema, tolerance=CENTS, n_samples=1500, fidelity_samples=200)
    assert rules.exact.used and rules.exact.exact, rules.source
    assert "(hours_worked - sunday_hours - 40)" in rules.source, rules.source
    rng = np.random.default_rng(3)
    rows = []
    while len(rows) < 20000:
        h = round(float(rng.uniform(0, 80)) * 4) / 4
        rows.append({"hours_worked": h, "sunday_hours": min(h, round(float(rng.uniform(0, 16)) * 4) / 4),
                     "hourly_rate": round(float(rng.uniform(7.25, 80)), 2)})
    wrong = [r for r in rows if rules.function(**r) != weekly_pay(**r)]
    assert not wrong, (wrong[:3], rules.source)


# -- a cap equal to the uncapped value at one step, apart in the last float bit ------------------------

def capped_late_charge(days: int, amount: float) -> float:
    weeks = days // 7
    if days % 7 >= 3:
        weeks = weeks + 1
    interest = amount * 0.01 * weeks
    cap = amount * 0.1
    if interest > cap:  # at 10 weeks the two are equal, but for 308.65: 30.865000000000002 > 30.865
        interest = cap
    fee = 5 + interest
    if fee > amount:
        fee = amount
    return round(fee, 2)


def _cap_ties() -> list[dict]:
    """10-week calls whose output depends on which of the two equal values the code's `>` picks."""
    found = []
    for cents in range(500, 200000):
        a = cents / 100
        if a * 0.01 * 10 > a * 0.1 and round(5 + a * 0.01 * 10, 2) != round(5 + a * 0.1, 2):
            found += [{"days": d, "amount": a} for d in (66, 69, 72)]
    return found


def test_a_float_tie_between_a_value_and_its_cap_is_decided_as_the_code_decides_it() -> None:
    ties = _cap_ties()
    assert {"days": 69, "amount": 308.65} in ties and len(ties) >= 30
    schema = Schema.from_function(capped_late_charge, days=(0, 180), amount=(0.0, 2000.0))
    rules = distill(capped_late_charge, schema=schema, tolerance=CENTS)
    assert rules.exact.used and rules.exact.exact, rules.source
    wrong = [row for row in ties if rules.function(**row) != capped_late_charge(**row)]
    assert not wrong, (len(wrong), wrong[:3], rules.source)
    # and off the tie: every step of weeks, amounts where the admin fee meets the amount
    rng = np.random.default_rng(0)
    rows = [{"days": int(d), "amount": round(float(a), 2)} for d, a in
            zip(rng.integers(0, 181, 4000), np.concatenate([rng.uniform(0, 12, 2000), rng.uniform(0, 2000, 2000)]))]
    assert [r for r in rows if rules.function(**r) != capped_late_charge(**r)] == []


# -- a ratio the code computes from an instalment whose rate depends on a score band ------------------

def _band_rate(score: int) -> float:
    if score >= 740:
        return 0.069
    if score >= 680:
        return 0.089
    return 0.129


def loan_check(income: float, debt: float, loan: float, term: int, score: int) -> str:
    if score < 580:
        return "DECLINE"
    monthly_rate = _band_rate(score) / 12
    instalment = loan * monthly_rate / (1 - (1 + monthly_rate) ** -term)
    dti = (debt + instalment) / income
    if dti > 0.5:
        return "DECLINE"
    if dti > 0.43 or score < 640:
        return "REFER"
    if loan > 12.0 * income:
        return "REFER"
    return "APPROVE"


def test_a_compared_ratio_of_a_banded_instalment_becomes_one_derived_value() -> None:
    schema = Schema.from_function(loan_check, income=(500.0, 20000.0), debt=(0.0, 5000.0),
                                  loan=(1000.0, 100000.0), term=[12, 24, 36, 48, 60, 72, 84], score=(300, 850))
    rules = distill(loan_check, schema=schema, tolerance=EXACT)
    assert rules.exact.used and rules.exact.leaves <= 12, rules.source
    assert "dti = " in rules.source and "loan <= 12 * income" in rules.source, rules.source
    rng = np.random.default_rng(1)
    rows = schema.sample(4000, rng=rng)
    # and applications near the limits: dti near 0.43 and 0.5, loans near 12 incomes
    for row in schema.sample(2000, rng=rng):
        row["loan"] = round(12.0 * row["income"] * float(rng.choice([0.999, 1.0, 1.001])), 2)
        rows.append(row)
    wrong = [row for row in rows if rules.function(**row) != loan_check(**row)]
    assert not wrong, (len(wrong), wrong[:3], rules.source)
