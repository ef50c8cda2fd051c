"""An underwriting rule set that sorts life-insurance applicants into risk classes.

Points for age, BMI, smoking, region, income and past claims add up to a class "A" (best)
to "D", with knock-out rules that decline outright. It validates its input the way such code
does, each rule with its own constant message: `ValueError` for an impossible age, BMI,
income or claim count, `KeyError` for a region missing from the loading table (production
sends "" when the form field was left empty). So the function raises on part of its domain,
and a stand-in must raise the same exception type there, not return a class.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from probes import OutputSpec, Tolerance

NAME = "insurance_class"
DESCRIPTION = "Rule-based underwriting: applicant -> risk class A/B/C/D/DECLINE, raises on invalid input"

CLASSES = ["A", "B", "C", "D", "DECLINE"]
REGION_LOADING = {"NORTH": 0, "SOUTH": 1, "EAST": 0, "WEST": 1, "ISLANDS": 2}

MSG_AGE_LOW = "applicant must be at least 18"
MSG_AGE_HIGH = "applicants over 100 cannot be underwritten"
MSG_BMI = "bmi must be in (0, 80]"
MSG_INCOME = "annual income cannot be negative"
MSG_CLAIMS = "claims count cannot be negative"


def risk_class(age: int, bmi: float, smoker: bool, region: str, annual_income: float, claims_last_5y: int) -> str:
    """Risk class of one applicant."""
    if age < 18:
        raise ValueError(MSG_AGE_LOW)
    if age > 100:
        raise ValueError(MSG_AGE_HIGH)
    if bmi <= 0 or bmi > 80:
        raise ValueError(MSG_BMI)
    if annual_income < 0:
        raise ValueError(MSG_INCOME)
    if claims_last_5y < 0:
        raise ValueError(MSG_CLAIMS)
    loading = REGION_LOADING[region]  # KeyError for an unknown or empty region

    # Knock-out rules first.
    if claims_last_5y >= 5:
        return "DECLINE"
    if smoker and bmi >= 40:
        return "DECLINE"
    if age >= 70 and claims_last_5y >= 3:
        return "DECLINE"

    points = 0
    if age < 30:
        points += 0
    elif age < 45:
        points += 1
    elif age < 60:
        points += 3
    elif age < 75:
        points += 5
    else:
        points += 8

    if bmi < 18.5:
        points += 2
    elif bmi < 25:
        points += 0
    elif bmi < 30:
        points += 1
    elif bmi < 35:
        points += 3
    elif bmi < 40:
        points += 5
    else:
        points += 8

    if smoker:
        points += 4

    points += loading

    if claims_last_5y == 1:
        points += 1
    elif claims_last_5y == 2:
        points += 3
    elif claims_last_5y >= 3:
        points += 6

    if annual_income < 15000:
        points += 1
    elif annual_income > 150000:
        points -= 1

    if points <= 2:
        return "A"
    elif points <= 5:
        return "B"
    elif points <= 8:
        return "C"
    elif points <= 12:
        return "D"
    else:
        return "DECLINE"


FUNCTION = risk_class

# The domain spans invalid ground on purpose: ages 16, 17 and 101, BMI above 80, a claim
# count of -1 (the legacy form's "unknown") and the empty region all raise. Drawn uniformly,
# about a third of this box raises and most of the rest is "DECLINE"; production (see
# `generate_inputs`) is mostly "A" to "C". Train on both.
SPECS: dict[str, Any] = {
    "age": (16, 101),
    "bmi": (15.0, 82.0),
    "smoker": [True, False],
    "region": [*REGION_LOADING, ""],
    "annual_income": (0.0, 300000.0),
    "claims_last_5y": (-1, 6),
}

# The output, declared: probing a few dozen uniform draws of SPECS sees almost no "A" or "B",
# so pass `Schema.from_function(risk_class, output=OUTPUT, **SPECS)`.
OUTPUT = OutputSpec(kind="label", labels=tuple(CLASSES), raises=True,
                    error_types=("KeyError", "ValueError"), python_type="str")

# Labels and exceptions must match exactly; the numeric tolerance never applies.
TOLERANCE = Tolerance(abs=0.0, rel=0.0)

_REGIONS = list(REGION_LOADING)
_REGION_SHARE = [0.30, 0.25, 0.20, 0.20, 0.05]
INVALID_SHARE = 0.025


def _valid_applicant(rng: np.random.Generator) -> dict:
    age = int(np.clip(round(rng.normal(42, 14)), 18, 90))
    bmi = float(np.clip(rng.lognormal(np.log(26.5), 0.17), 15.0, 60.0))
    return {
        "age": age,
        "bmi": round(bmi, 1),
        "smoker": bool(rng.random() < 0.18),
        "region": _REGIONS[int(rng.choice(len(_REGIONS), p=_REGION_SHARE))],
        "annual_income": round(float(np.clip(rng.lognormal(np.log(45000), 0.6), 0.0, 300000.0)), -2),
        "claims_last_5y": int(min(rng.poisson(0.45), 6)),
    }


def _corrupt(row: dict, rng: np.random.Generator) -> dict:
    """One data-entry error of the kinds a production log shows."""
    kind = int(rng.integers(0, 5))
    row = dict(row)
    if kind == 0:
        row["age"] = int(rng.choice([16, 17]))  # a minor applying
    elif kind == 1:
        row["age"] = 101  # the form's upper bound, typed by hand
    elif kind == 2:
        row["bmi"] = round(float(rng.uniform(80.1, 82.0)), 1)  # height entered short
    elif kind == 3:
        row["claims_last_5y"] = -1  # "unknown" in the old form
    else:
        row["region"] = ""  # field left empty
    return row


def generate_inputs(n: int, seed: int = 0) -> list[dict]:
    """`n` applications; about 2.5% carry a data-entry error that makes the function raise."""
    rng = np.random.default_rng(seed)
    out: list[dict] = []
    for _ in range(n):
        row = _valid_applicant(rng)
        if rng.random() < INVALID_SHARE:
            row = _corrupt(row, rng)
        out.append(row)
    return out


def run(*, store: Any = None, out: str = "neuroswap_report", quick: bool = False, progress: bool = False,
        seed: int = 0) -> dict:
    """Record -> fit -> verify -> mine -> refit -> distill -> report, and the result row.

    Labels and exceptions must match exactly.
    """
    import sys

    from ._flow import run_study

    return run_study(sys.modules[__name__], store=store, out=out, quick=quick, progress=progress, seed=seed)
