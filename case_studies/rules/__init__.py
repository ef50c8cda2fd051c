"""A suite of rule-based business functions for measuring exactness (bench/exact.py, issue 15).

Eleven functions written as such rules are written in billing, payroll, tax and lending
systems (not shaped to any grammar neuroswap fits), plus the two piecewise case studies
`shipping_fee` and `insurance_class` (imported, not copied). Each `SuiteEntry` gives the
legacy function, its `specs` for `Schema.from_function(fn, output=entry.output, **specs)`,
`generate_inputs(n, seed)` (skewed, production-like traffic), the tolerance (a cent for money,
exact for labels), inputs that must raise, and the traits the function was written to have
(`table_loop`, `decimal`, `derived_comparison`, `raises`), which tests check in its source.

    from case_studies.rules import SUITE
    entry = SUITE["income_tax"]
    schema = entry.schema()
    traces = Traces.from_calls(entry.function, entry.generate_inputs(3000, seed=0))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from probes import OutputSpec, Schema, Tolerance

from .. import insurance_class as _insurance
from .. import shipping_fee as _shipping
from . import credit, fees, grading, payroll, pricing, tax

CENTS = Tolerance(abs=0.005, rel=0.0)  # money: right to the cent or wrong
EXACT = Tolerance(abs=0.0, rel=0.0)  # labels and exceptions must match exactly

TRAITS = ("table_loop", "decimal", "derived_comparison", "raises")


@dataclass(frozen=True)
class SuiteEntry:
    """One rule-based function of the suite and what a benchmark needs to run it."""

    name: str
    function: Callable[..., Any]
    specs: dict[str, Any]
    generate_inputs: Callable[..., list[dict]]
    tolerance: Tolerance
    description: str
    invalid_inputs: tuple[dict, ...] = ()
    output: OutputSpec | None = None
    traits: frozenset[str] = field(default_factory=frozenset)

    def schema(self, *, probe: int = 64, seed: int = 0) -> Schema:
        """The declared domain: `Schema.from_function(fn, output=..., **specs)`."""
        if self.output is not None:
            return Schema.from_function(self.function, output=self.output, **self.specs)
        return Schema.from_function(self.function, probe=probe, seed=seed, **self.specs)


def _label(labels: list[str], *, raises: bool, error_types: tuple[str, ...] = ()) -> OutputSpec:
    return OutputSpec(kind="label", labels=tuple(labels), raises=raises, error_types=error_types, python_type="str")


_ENTRIES = [
    SuiteEntry("parking_fee", fees.parking_fee, fees.PARKING_SPECS, fees.parking_inputs, CENTS,
               "Car park: every started 15 minutes at the zone rate, daily cap per started day, grace period",
               tuple(fees.PARKING_INVALID), traits=frozenset({"raises"})),
    SuiteEntry("late_fee", fees.late_fee, fees.LATE_FEE_SPECS, fees.late_fee_inputs, CENTS,
               "Late payment: admin fee + weekly interest, partial week counts from day 3 (days % 7), capped",
               tuple(fees.LATE_FEE_INVALID), traits=frozenset({"derived_comparison", "raises"})),
    SuiteEntry("postage", fees.postage, fees.POSTAGE_SPECS, fees.postage_inputs, CENTS,
               "Letter post: weight steps per format (table loop) x destination factor, registered fee, refuses "
               "overweight items", tuple(fees.POSTAGE_INVALID), traits=frozenset({"table_loop", "raises"})),
    SuiteEntry("income_tax", tax.income_tax, tax.INCOME_TAX_SPECS, tax.income_tax_inputs, CENTS,
               "Income tax: standard deduction, loop over seven brackets per filing status (3), Decimal, cents",
               tuple(tax.INCOME_TAX_INVALID), traits=frozenset({"table_loop", "decimal", "raises"})),
    SuiteEntry("order_total", pricing.order_total, pricing.ORDER_TOTAL_SPECS, pricing.order_total_inputs, CENTS,
               "Order total: volume discount tier (table loop) + loyalty bonus, or a better coupon, capped",
               tuple(pricing.ORDER_TOTAL_INVALID), traits=frozenset({"table_loop", "raises"})),
    SuiteEntry("invoice_line", pricing.invoice_line, pricing.INVOICE_LINE_SPECS, pricing.invoice_line_inputs, CENTS,
               "Invoice line: price x quantity less quantity break, VAT by country x category, reverse charge, "
               "Decimal", tuple(pricing.INVOICE_LINE_INVALID), traits=frozenset({"table_loop", "decimal", "raises"})),
    SuiteEntry("electricity_bill", pricing.electricity_bill, pricing.ELECTRICITY_SPECS, pricing.electricity_inputs,
               CENTS, "Electricity bill: increasing block rates per tariff (table loop), fixed charge, VAT, Decimal",
               tuple(pricing.ELECTRICITY_INVALID), traits=frozenset({"table_loop", "decimal", "raises"})),
    SuiteEntry("weekly_pay", payroll.weekly_pay, payroll.WEEKLY_PAY_SPECS, payroll.weekly_pay_inputs, CENTS,
               "Weekly pay: hours x rate, 1.5x above 40 weekday hours, 2x on Sundays, exempt staff 40 h; "
               "validates the timesheet", tuple(payroll.WEEKLY_PAY_INVALID), traits=frozenset({"raises"})),
    SuiteEntry("letter_grade", grading.letter_grade, grading.LETTER_GRADE_SPECS, grading.letter_grade_inputs, EXACT,
               "Letter grade: weighted score to one decimal looked up in a grading scale (table loop), final < 50 "
               "fails", tuple(grading.LETTER_GRADE_INVALID), _label(grading.GRADES, raises=False),
               frozenset({"table_loop", "raises"})),
    SuiteEntry("underwriting_class", credit.underwriting_class, credit.UNDERWRITING_SPECS, credit.underwriting_inputs,
               EXACT, "Underwriting: BMI (weight / height^2) bands, smoker, diabetic, age -> rate class",
               tuple(credit.UNDERWRITING_INVALID),
               _label(credit.UNDERWRITING_CLASSES, raises=True, error_types=("ValueError",)),
               frozenset({"derived_comparison", "raises"})),
    SuiteEntry("loan_decision", credit.loan_decision, credit.LOAN_SPECS, credit.loan_inputs, EXACT,
               "Personal loan: annuity instalment at the score band's rate, debt-to-income and loan-to-income "
               "ratios -> approve/refer/decline", tuple(credit.LOAN_INVALID),
               _label(credit.LOAN_DECISIONS, raises=False), frozenset({"derived_comparison", "raises"})),
    SuiteEntry("shipping_fee", _shipping.FUNCTION, _shipping.SPECS, _shipping.generate_inputs, _shipping.TOLERANCE,
               _shipping.DESCRIPTION,
               ({"weight_kg": 0.0, "zone": "EU", "express": False, "declared_value": 10.0},
                {"weight_kg": 75.0, "zone": "EU", "express": False, "declared_value": 10.0},
                {"weight_kg": 1.0, "zone": "EU", "express": False, "declared_value": -1.0}),
               traits=frozenset({"raises"})),
    SuiteEntry("insurance_class", _insurance.FUNCTION, _insurance.SPECS, _insurance.generate_inputs,
               _insurance.TOLERANCE, _insurance.DESCRIPTION,
               ({"age": 17, "bmi": 25.0, "smoker": False, "region": "NORTH", "annual_income": 4e4, "claims_last_5y": 0},
                {"age": 40, "bmi": 25.0, "smoker": False, "region": "", "annual_income": 4e4, "claims_last_5y": 0}),
               _insurance.OUTPUT, frozenset({"raises"})),
]

SUITE: dict[str, SuiteEntry] = {entry.name: entry for entry in _ENTRIES}
# The functions written for this suite (the two case studies are borrowed).
WRITTEN_FOR_SUITE = tuple(name for name in SUITE if name not in ("shipping_fee", "insurance_class"))


def generate_inputs(name: str, n: int, seed: int = 0) -> list[dict]:
    """`n` production-like inputs of the suite function `name`."""
    return SUITE[name].generate_inputs(n, seed=seed)


__all__ = ["CENTS", "EXACT", "SUITE", "TRAITS", "WRITTEN_FOR_SUITE", "SuiteEntry", "generate_inputs"]
