"""Weekly gross pay of an hourly employee, as a time-and-attendance system computes it.

Weekday hours up to 40 at the base rate, beyond 40 at time and a half, Sunday hours always at
double time (and not counted toward the 40); exempt (salaried) staff are paid 40 hours
whatever the timesheet says. The timesheet is validated first.
"""

from __future__ import annotations

from typing import Any

import numpy as np

REGULAR_HOURS = 40.0
OVERTIME_FACTOR = 1.5
SUNDAY_FACTOR = 2.0
MINIMUM_WAGE = 7.25
MAX_WEEKLY_HOURS = 80.0


def weekly_pay(hours_worked: float, sunday_hours: float, hourly_rate: float, exempt: bool) -> float:
    """Gross pay for one week of one employee, to the cent."""
    if hours_worked < 0 or sunday_hours < 0:
        raise ValueError(f"hours_worked={hours_worked}, sunday_hours={sunday_hours}: hours cannot be negative")
    if sunday_hours > hours_worked:
        raise ValueError(f"sunday_hours={sunday_hours} > hours_worked={hours_worked}: "
                         "Sunday hours are part of the hours worked")
    if hours_worked > MAX_WEEKLY_HOURS:
        raise ValueError(f"hours_worked={hours_worked}: more than {MAX_WEEKLY_HOURS:g} hours needs a manual timesheet")
    if hourly_rate < MINIMUM_WAGE:
        raise ValueError(f"hourly_rate={hourly_rate} is below the minimum wage of {MINIMUM_WAGE}")

    if exempt:
        return round(REGULAR_HOURS * hourly_rate, 2)

    weekday_hours = hours_worked - sunday_hours
    if weekday_hours > REGULAR_HOURS:
        regular = REGULAR_HOURS
        overtime = weekday_hours - REGULAR_HOURS
    else:
        regular = weekday_hours
        overtime = 0.0
    pay = regular * hourly_rate
    pay += overtime * hourly_rate * OVERTIME_FACTOR
    pay += sunday_hours * hourly_rate * SUNDAY_FACTOR
    return round(pay, 2)


WEEKLY_PAY_SPECS: dict[str, Any] = {
    "hours_worked": (0.0, 90.0),
    "sunday_hours": (0.0, 16.0),
    "hourly_rate": (5.0, 80.0),
    "exempt": [True, False],
}


def weekly_pay_inputs(n: int, seed: int = 0) -> list[dict]:
    """A payroll run: timesheets in quarter hours around 38 h, some overtime, a few Sundays;
    rates in cents around 21/h."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        if rng.random() < 0.2:
            hours = rng.uniform(8.0, 30.0)  # part-timers
        else:
            hours = rng.normal(40.0, 5.0)
        hours = float(np.clip(round(hours * 4) / 4, 0.0, 80.0))
        sunday = 0.0
        if rng.random() < 0.15:
            sunday = float(min(rng.choice([4.0, 6.0, 8.0, 8.5, 10.0]), hours))
        rate = round(float(np.clip(rng.lognormal(np.log(21.0), 0.35), MINIMUM_WAGE, 80.0)), 2)
        out.append({"hours_worked": hours, "sunday_hours": sunday, "hourly_rate": rate,
                    "exempt": bool(rng.random() < 0.12)})
    return out


WEEKLY_PAY_INVALID = [
    {"hours_worked": -1.0, "sunday_hours": 0.0, "hourly_rate": 20.0, "exempt": False},
    {"hours_worked": 10.0, "sunday_hours": 12.0, "hourly_rate": 20.0, "exempt": False},
    {"hours_worked": 85.0, "sunday_hours": 0.0, "hourly_rate": 20.0, "exempt": False},
    {"hours_worked": 40.0, "sunday_hours": 0.0, "hourly_rate": 5.0, "exempt": False},
]
