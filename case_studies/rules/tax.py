"""Federal income tax from a bracket table, the way a payroll or tax-prep system computes it.

A standard deduction per filing status, then a loop over the status's brackets (each rate on
the slice of income inside its bracket), in `decimal.Decimal`, rounded half-up to the cent.
The bracket bounds live in a table, not in the code's comparisons.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np

FILING_STATUSES = ["SINGLE", "MARRIED_JOINT", "HEAD_OF_HOUSEHOLD"]

# (upper bound of the bracket or None for the top one, marginal rate); 2024 figures.
TAX_BRACKETS = {
    "SINGLE": [
        (Decimal("11600"), Decimal("0.10")), (Decimal("47150"), Decimal("0.12")),
        (Decimal("100525"), Decimal("0.22")), (Decimal("191950"), Decimal("0.24")),
        (Decimal("243725"), Decimal("0.32")), (Decimal("609350"), Decimal("0.35")),
        (None, Decimal("0.37")),
    ],
    "MARRIED_JOINT": [
        (Decimal("23200"), Decimal("0.10")), (Decimal("94300"), Decimal("0.12")),
        (Decimal("201050"), Decimal("0.22")), (Decimal("383900"), Decimal("0.24")),
        (Decimal("487450"), Decimal("0.32")), (Decimal("731200"), Decimal("0.35")),
        (None, Decimal("0.37")),
    ],
    "HEAD_OF_HOUSEHOLD": [
        (Decimal("16550"), Decimal("0.10")), (Decimal("63100"), Decimal("0.12")),
        (Decimal("100500"), Decimal("0.22")), (Decimal("191950"), Decimal("0.24")),
        (Decimal("243700"), Decimal("0.32")), (Decimal("609350"), Decimal("0.35")),
        (None, Decimal("0.37")),
    ],
}
STANDARD_DEDUCTION = {
    "SINGLE": Decimal("14600"),
    "MARRIED_JOINT": Decimal("29200"),
    "HEAD_OF_HOUSEHOLD": Decimal("21900"),
}
CENT = Decimal("0.01")


def income_tax(gross_income: float, filing_status: str) -> float:
    """Tax owed on a year's gross income after the standard deduction, bracket by bracket."""
    if gross_income < 0:
        raise ValueError(f"gross_income={gross_income}: income cannot be negative (report a loss separately)")
    if filing_status not in TAX_BRACKETS:
        raise ValueError(f"filing_status={filing_status!r} is not one of {FILING_STATUSES}")

    taxable = Decimal(str(gross_income)) - STANDARD_DEDUCTION[filing_status]
    if taxable <= 0:
        return 0.0

    tax = Decimal("0")
    lower = Decimal("0")
    for upper, rate in TAX_BRACKETS[filing_status]:
        if upper is None or taxable <= upper:
            tax += (taxable - lower) * rate
            break
        tax += (upper - lower) * rate
        lower = upper
    return float(tax.quantize(CENT, rounding=ROUND_HALF_UP))


INCOME_TAX_SPECS: dict[str, Any] = {
    "gross_income": (0.0, 800000.0),
    "filing_status": list(FILING_STATUSES),
}


def income_tax_inputs(n: int, seed: int = 0) -> list[dict]:
    """Returns filed in a season: log-normal incomes (median about 55k), a thin high tail."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        status = FILING_STATUSES[int(rng.choice(3, p=[0.52, 0.38, 0.10]))]
        median = 88000.0 if status == "MARRIED_JOINT" else 48000.0
        income = float(np.clip(rng.lognormal(np.log(median), 0.75), 0.0, 800000.0))
        if rng.random() < 0.3:
            income = round(income, -2)  # salaried: whole hundreds
        out.append({"gross_income": round(income, 2), "filing_status": status})
    return out


INCOME_TAX_INVALID = [
    {"gross_income": -1.0, "filing_status": "SINGLE"},
    {"gross_income": 50000.0, "filing_status": "MARRIED_SEPARATE"},
]
