"""Two rule sets from a lender: a life-insurance underwriting classifier that works on BMI
(a ratio of two inputs) and a personal-loan decision on the debt-to-income ratio.

Both validate their input first and return a label; the thresholds compare derived values,
not the arguments themselves.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# -- underwriting ------------------------------------------------------------------------------

UNDERWRITING_CLASSES = ["PREFERRED_PLUS", "PREFERRED", "STANDARD", "RATED", "PREFERRED_SMOKER",
                        "STANDARD_SMOKER", "DECLINE"]
MIN_ISSUE_AGE = 18
MAX_ISSUE_AGE = 75


def underwriting_class(age: int, height_cm: float, weight_kg: float, smoker: bool, diabetic: bool) -> str:
    """Rate class of a term-life applicant from age, build (BMI), tobacco use and diabetes."""
    if age < MIN_ISSUE_AGE or age > MAX_ISSUE_AGE:
        raise ValueError(f"age={age}: issue ages are {MIN_ISSUE_AGE} to {MAX_ISSUE_AGE}")
    if height_cm < 120 or height_cm > 220:
        raise ValueError(f"height_cm={height_cm}: implausible height, check the unit")
    if weight_kg <= 0:
        raise ValueError(f"weight_kg={weight_kg}: weight must be positive")

    bmi = weight_kg / (height_cm / 100) ** 2
    if bmi < 16 or bmi >= 45:
        return "DECLINE"
    if diabetic and (smoker or bmi >= 35):
        return "DECLINE"

    if smoker:
        if bmi < 30 and age < 60:
            return "PREFERRED_SMOKER"
        return "STANDARD_SMOKER"

    if diabetic:
        if age >= 50 or bmi >= 30:
            return "RATED"
        return "STANDARD"

    if 18.5 <= bmi < 27 and age < 60:
        return "PREFERRED_PLUS"
    if 18.5 <= bmi < 30:
        return "PREFERRED"
    if bmi < 35:
        return "STANDARD"
    return "RATED"


UNDERWRITING_SPECS: dict[str, Any] = {
    "age": (16, 80),
    "height_cm": (140.0, 205.0),
    "weight_kg": (40.0, 160.0),
    "smoker": [True, False],
    "diabetic": [True, False],
}


def underwriting_inputs(n: int, seed: int = 0) -> list[dict]:
    """Applications from an online quote form: adults 25-60, height in whole cm, weight to a
    tenth of a kg; 1% arrive with an age outside the issue ages (and are refused)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        age = int(np.clip(round(rng.normal(42, 11)), MIN_ISSUE_AGE, MAX_ISSUE_AGE))
        if rng.random() < 0.01:
            age = int(rng.choice([16, 17, 76, 78, 80]))
        male = rng.random() < 0.5
        height = float(np.clip(round(rng.normal(178 if male else 165, 7)), 140, 205))
        bmi = float(np.clip(rng.lognormal(np.log(26.0), 0.17), 15.0, 60.0))
        weight = float(np.clip(round(bmi * (height / 100) ** 2, 1), 40.0, 160.0))
        out.append({"age": age, "height_cm": height, "weight_kg": weight,
                    "smoker": bool(rng.random() < 0.16), "diabetic": bool(rng.random() < 0.09)})
    return out


UNDERWRITING_INVALID = [
    {"age": 17, "height_cm": 170.0, "weight_kg": 70.0, "smoker": False, "diabetic": False},
    {"age": 40, "height_cm": 17.0, "weight_kg": 70.0, "smoker": False, "diabetic": False},
    {"age": 40, "height_cm": 170.0, "weight_kg": -70.0, "smoker": False, "diabetic": False},
]


# -- personal loan -----------------------------------------------------------------------------

LOAN_DECISIONS = ["APPROVE", "REFER", "DECLINE"]
LOAN_TERMS = [12, 24, 36, 48, 60, 72, 84]
MAX_DTI = 0.50  # decline above
REVIEW_DTI = 0.43  # manual review above
MAX_LOAN_TO_MONTHLY_INCOME = 12.0


def _annual_rate(credit_score: int) -> float:
    if credit_score >= 740:
        return 0.069
    if credit_score >= 680:
        return 0.089
    return 0.129


def loan_decision(monthly_income: float, monthly_debt: float, loan_amount: float, term_months: int,
                  credit_score: int) -> str:
    """Decision on a personal-loan application: the new instalment (annuity at the rate of the
    applicant's score band) added to existing debt payments, over income, against the limits."""
    if monthly_income <= 0:
        raise ValueError(f"monthly_income={monthly_income}: income must be positive")
    if monthly_debt < 0:
        raise ValueError(f"monthly_debt={monthly_debt}: debt payments cannot be negative")
    if loan_amount <= 0:
        raise ValueError(f"loan_amount={loan_amount}: the amount must be positive")
    if term_months not in LOAN_TERMS:
        raise ValueError(f"term_months={term_months}: terms are {LOAN_TERMS}")
    if credit_score < 300 or credit_score > 850:
        raise ValueError(f"credit_score={credit_score}: scores run from 300 to 850")

    if credit_score < 580:
        return "DECLINE"
    monthly_rate = _annual_rate(credit_score) / 12
    instalment = loan_amount * monthly_rate / (1 - (1 + monthly_rate) ** -term_months)
    dti = (monthly_debt + instalment) / monthly_income
    if dti > MAX_DTI:
        return "DECLINE"
    if dti > REVIEW_DTI or credit_score < 640:
        return "REFER"
    if loan_amount > MAX_LOAN_TO_MONTHLY_INCOME * monthly_income:
        return "REFER"
    return "APPROVE"


LOAN_SPECS: dict[str, Any] = {
    "monthly_income": (500.0, 20000.0),
    "monthly_debt": (0.0, 5000.0),
    "loan_amount": (1000.0, 100000.0),
    "term_months": list(LOAN_TERMS),
    "credit_score": (300, 850),
}


def loan_inputs(n: int, seed: int = 0) -> list[dict]:
    """Applications at a consumer bank: incomes around 4,200 a month, loans of a few thousand in
    round hundreds, mostly 36-60 months, scores around 700."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        income = round(float(np.clip(rng.lognormal(np.log(4200.0), 0.45), 500.0, 20000.0)), 2)
        debt = 0.0 if rng.random() < 0.3 else round(float(np.clip(rng.lognormal(np.log(0.12 * income), 0.7),
                                                                    0.0, 5000.0)), 2)
        amount = float(np.clip(round(rng.lognormal(np.log(12000.0), 0.8), -2), 1000.0, 100000.0))
        term = int(rng.choice(LOAN_TERMS, p=[0.05, 0.12, 0.25, 0.2, 0.25, 0.08, 0.05]))
        score = int(np.clip(round(rng.normal(705, 60)), 300, 850))
        out.append({"monthly_income": income, "monthly_debt": debt, "loan_amount": amount,
                    "term_months": term, "credit_score": score})
    return out


LOAN_INVALID = [
    {"monthly_income": 0.0, "monthly_debt": 0.0, "loan_amount": 5000.0, "term_months": 36, "credit_score": 700},
    {"monthly_income": 3000.0, "monthly_debt": -10.0, "loan_amount": 5000.0, "term_months": 36, "credit_score": 700},
    {"monthly_income": 3000.0, "monthly_debt": 0.0, "loan_amount": 5000.0, "term_months": 30, "credit_score": 700},
    {"monthly_income": 3000.0, "monthly_debt": 0.0, "loan_amount": 5000.0, "term_months": 36, "credit_score": 900},
]
