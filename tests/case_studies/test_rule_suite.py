"""The rule suite of bench/exact.py (case_studies/rules) is what it claims to be: real-looking
business rules that run on their own production traffic, raise on invalid input, build a
schema from their specs, and have the table loops, Decimal arithmetic and derived-value
comparisons the issue asks for (checked in the source, not taken on trust)."""

from __future__ import annotations

import ast
import decimal
import inspect
import textwrap

import pytest

from case_studies import insurance_class, shipping_fee
from case_studies.rules import CENTS, EXACT, SUITE, TRAITS, WRITTEN_FOR_SUITE, SuiteEntry, generate_inputs
from probes import Schema, Tolerance, Traces

NAMES = list(SUITE)


def _tree(fn) -> ast.FunctionDef:
    node = ast.parse(textwrap.dedent(inspect.getsource(fn))).body[0]
    assert isinstance(node, ast.FunctionDef)
    return node


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _local_sources(fn_node: ast.FunctionDef) -> dict[str, list[ast.AST]]:
    """Local name -> the expressions assigned to it in the function."""
    out: dict[str, list[ast.AST]] = {}
    for node in ast.walk(fn_node):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out.setdefault(target.id, []).append(node.value)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and isinstance(node.target, ast.Name) and node.value:
            out.setdefault(node.target.id, []).append(node.value)
    return out


def _is_table(value) -> bool:
    """A module-level table: a list/tuple of at least 3 rows (tuples) or a dict of such lists or
    of numbers (weights)."""
    if isinstance(value, (list, tuple)):
        return len(value) >= 3 and all(isinstance(row, tuple) for row in value)
    if isinstance(value, dict) and value:
        return all(_is_table(v) for v in value.values()) or all(
            isinstance(v, (int, float, decimal.Decimal)) for v in value.values())
    return False


def has_table_loop(fn) -> bool:
    """A `for` loop whose iterable is (or is a local bound from) a module-level table."""
    node = _tree(fn)
    local = _local_sources(node)
    for loop in (n for n in ast.walk(node) if isinstance(n, ast.For)):
        names = _names(loop.iter)
        for name in list(names):
            for source in local.get(name, []):
                names |= _names(source)
        if any(name in fn.__globals__ and _is_table(fn.__globals__[name]) for name in names):
            return True
    return False


def uses_decimal(fn) -> bool:
    """The function builds `decimal.Decimal` values itself."""
    node = _tree(fn)
    calls = [n for n in ast.walk(node) if isinstance(n, ast.Call)]
    for call in calls:
        target = call.func
        name = target.id if isinstance(target, ast.Name) else (target.attr if isinstance(target, ast.Attribute) else None)
        if name == "Decimal":
            resolved = fn.__globals__.get("Decimal") if isinstance(target, ast.Name) else decimal.Decimal
            if resolved is decimal.Decimal:
                return True
    return False


def _has_ratio_or_remainder(node: ast.AST) -> bool:
    """A remainder (`x % 7`) or a ratio of two values (`a / b` with b not a constant: dividing
    by 100 is a unit conversion, not a derived value)."""
    for n in ast.walk(node):
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mod):
            return True
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div) and not isinstance(n.right, ast.Constant):
            return True
    return False


def compares_derived_value(fn) -> bool:
    """A comparison on a ratio or remainder of values: either written in the comparison
    (`days % 7 >= 3`) or held in a local assigned from one (`bmi = weight / height**2`)."""
    node = _tree(fn)
    local = _local_sources(node)
    derived = {name for name, sources in local.items() if any(_has_ratio_or_remainder(s) for s in sources)}
    for cmp in (n for n in ast.walk(node) if isinstance(n, ast.Compare)):
        sides = [cmp.left, *cmp.comparators]
        if any(_has_ratio_or_remainder(side) for side in sides):
            return True
        if any(isinstance(side, ast.Name) and side.id in derived for side in sides):
            return True
    return False


CHECKS = {"table_loop": has_table_loop, "decimal": uses_decimal, "derived_comparison": compares_derived_value}


# -- the suite as a whole ------------------------------------------------------------------------

def test_suite_has_at_least_ten_written_functions_and_the_two_case_studies():
    assert len(WRITTEN_FOR_SUITE) >= 10
    assert SUITE["shipping_fee"].function is shipping_fee.shipping_fee
    assert SUITE["insurance_class"].function is insurance_class.risk_class
    assert SUITE["shipping_fee"].generate_inputs is shipping_fee.generate_inputs
    assert len({e.function for e in SUITE.values()}) == len(SUITE)


def test_required_trait_counts_hold_in_the_source():
    counts = {trait: [n for n in WRITTEN_FOR_SUITE if CHECKS[trait](SUITE[n].function)] for trait in CHECKS}
    assert len(counts["table_loop"]) >= 3, counts
    assert len(counts["decimal"]) >= 2, counts
    assert len(counts["derived_comparison"]) >= 2, counts


def test_the_detectors_tell_apart():
    # a function with none of the traits is not credited with any
    def plain(x: float) -> float:
        if x > 3:
            return x * 2
        return x

    assert not has_table_loop(plain) and not uses_decimal(plain) and not compares_derived_value(plain)


# -- per function ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_declared_traits_are_in_the_source(name):
    entry = SUITE[name]
    assert entry.traits <= set(TRAITS)
    for trait in entry.traits:
        if trait in CHECKS:
            assert CHECKS[trait](entry.function), f"{name} claims {trait} but its source has none"


@pytest.mark.parametrize("name", NAMES)
def test_entry_contract(name):
    entry = SUITE[name]
    assert isinstance(entry, SuiteEntry) and entry.name == name
    fn = entry.function
    assert inspect.getdoc(fn), "every suite function has a docstring"
    params = list(inspect.signature(fn).parameters)
    hints = inspect.get_annotations(fn)
    assert all(p in hints for p in params) and "return" in hints, "type hints on every argument and the return"
    assert list(entry.specs) == params
    assert isinstance(entry.tolerance, Tolerance)
    assert entry.description and "\n" not in entry.description


@pytest.mark.parametrize("name", NAMES)
def test_schema_builds_from_specs(name):
    entry = SUITE[name]
    schema = entry.schema()
    assert isinstance(schema, Schema)
    assert schema.names == list(inspect.signature(entry.function).parameters)
    assert schema.output.kind in ("real", "label")
    expected = CENTS if schema.output.kind == "real" else EXACT
    assert entry.tolerance.abs == expected.abs and entry.tolerance.rel == expected.rel
    # the same schema through the public constructor, as bench/exact.py builds it
    again = Schema.from_function(entry.function, **({"output": entry.output} if entry.output else {}), **entry.specs)
    assert again.names == schema.names and again.output.kind == schema.output.kind


@pytest.mark.parametrize("name", NAMES)
def test_production_inputs_run_and_stay_in_the_domain(name):
    entry = SUITE[name]
    schema = entry.schema()
    rows = entry.generate_inputs(2000, seed=3)
    assert len(rows) == 2000 and entry.generate_inputs(0) == []
    assert rows == generate_inputs(name, 2000, seed=3)
    assert rows != entry.generate_inputs(2000, seed=4)
    for row in rows:
        ok, why = schema.contains(row)
        assert ok, why
    traces = Traces.from_calls(entry.function, rows)
    raised = [e for e in traces.errors if e is not None]
    # production carries a few data-entry errors at most, and only the validation's exceptions
    assert len(raised) <= 0.06 * len(rows), f"{len(raised)} raised"
    assert {e.type for e in raised} <= {"ValueError", "KeyError"}
    values = [o for o, e in zip(traces.outputs, traces.errors) if e is None]
    if schema.output.kind == "real":
        assert all(type(v) is float for v in values), "money leaves the function as float (Decimal inside)"
        assert all(round(v, 2) == v for v in values), "rounded to the cent"
        assert len(set(values)) >= 20, "production covers more than a handful of outcomes"
    else:
        assert set(values) <= set(entry.output.labels) if entry.output else True
        assert len(set(values)) >= 3


@pytest.mark.parametrize("name", NAMES)
def test_invalid_inputs_raise(name):
    entry = SUITE[name]
    assert entry.invalid_inputs, "every suite function validates its input"
    for row in entry.invalid_inputs:
        expected = (ValueError, KeyError) if name == "insurance_class" else ValueError
        with pytest.raises(expected):
            entry.function(**row)


@pytest.mark.parametrize("name", WRITTEN_FOR_SUITE)
def test_negative_amounts_raise_value_error(name):
    """The first numeric argument made negative is refused with ValueError, as such code does."""
    entry = SUITE[name]
    row = dict(entry.generate_inputs(1, seed=11)[0])
    schema = entry.schema()
    first = next(f.name for f in schema.fields if f.kind in ("real", "integer"))
    row[first] = -1 if schema[first].kind == "integer" else -1.0
    with pytest.raises(ValueError):
        entry.function(**row)


# -- a few values a clerk could check by hand ---------------------------------------------------

def test_hand_checked_values():
    s = SUITE
    assert s["parking_fee"].function(minutes_parked=16, zone="CENTER", resident_permit=False) == 2.2
    assert s["parking_fee"].function(minutes_parked=1440 + 15, zone="STATION", resident_permit=False) == 14.8
    assert s["parking_fee"].function(minutes_parked=600, zone="RESIDENTIAL", resident_permit=True) == 0.0
    assert s["late_fee"].function(days_late=9, invoice_amount=1000.0, customer_type="BUSINESS") == 15.0 + 15.0
    assert s["late_fee"].function(days_late=10, invoice_amount=1000.0, customer_type="BUSINESS") == 15.0 + 30.0
    assert s["income_tax"].function(gross_income=14600.0, filing_status="SINGLE") == 0.0
    assert s["income_tax"].function(gross_income=14600.0 + 20000.0, filing_status="SINGLE") == 2168.0
    assert s["invoice_line"].function(unit_price=10.0, quantity=10, country="DE", category="FOOD",
                                      business_customer=False) == 101.65
    assert s["invoice_line"].function(unit_price=10.0, quantity=1, country="FR", category="STANDARD",
                                      business_customer=True) == 10.0
    assert s["weekly_pay"].function(hours_worked=50.0, sunday_hours=5.0, hourly_rate=20.0, exempt=False) == \
        800.0 + 5 * 30.0 + 5 * 40.0
    assert s["order_total"].function(subtotal=300.0, loyalty_level="GOLD", coupon_percent=0) == 276.0
    assert s["order_total"].function(subtotal=300.0, loyalty_level="NONE", coupon_percent=10) == 270.0
    assert s["postage"].function(weight_g=21, mail_format="LETTER", destination="DOMESTIC", registered=False) == 1.1
    assert s["electricity_bill"].function(kwh=100.0, tariff="BASIC", social_tariff=True) == 25.59
    assert s["letter_grade"].function(homework=100.0, midterm=90.0, final_exam=49.5, participation=100.0) == "F"
    assert s["letter_grade"].function(homework=90.0, midterm=90.0, final_exam=90.0, participation=90.0) == "A-"
    assert s["underwriting_class"].function(age=30, height_cm=180.0, weight_kg=75.0, smoker=False,
                                            diabetic=False) == "PREFERRED_PLUS"
    assert s["loan_decision"].function(monthly_income=5000.0, monthly_debt=0.0, loan_amount=10000.0,
                                       term_months=36, credit_score=760) == "APPROVE"
