"""Fees a back office charges: a city car park, late payment of an invoice, letter post.

Written the way such rules sit in a billing system: module-level tables, validation that
raises on impossible input, started units rounded up, caps, and rounding to the cent at the end.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# -- parking: per started 15 minutes, capped per day --------------------------------------------

PARKING_ZONES = ["CENTER", "STATION", "RESIDENTIAL", "AIRPORT_P3"]
RATE_PER_QUARTER_HOUR = {"CENTER": 1.10, "STATION": 0.80, "RESIDENTIAL": 0.40, "AIRPORT_P3": 1.50}
DAILY_CAP = {"CENTER": 24.00, "STATION": 14.00, "RESIDENTIAL": 6.00, "AIRPORT_P3": 32.00}
GRACE_MINUTES = 10  # drop-off and pick-up are free
MINUTES_PER_DAY = 24 * 60


def parking_fee(minutes_parked: int, zone: str, resident_permit: bool) -> float:
    """Fee for one stay: every started quarter hour at the zone's rate, at most the daily cap
    per started day (full days at the cap); free within the grace period and for residents
    parking in their own residential zone."""
    if minutes_parked < 0:
        raise ValueError(f"minutes_parked={minutes_parked}: a stay cannot be negative (clock skew at the barrier?)")
    if zone not in RATE_PER_QUARTER_HOUR:
        raise ValueError(f"zone={zone!r} is not a known parking zone")
    if minutes_parked <= GRACE_MINUTES:
        return 0.0
    if resident_permit and zone == "RESIDENTIAL":
        return 0.0

    full_days = minutes_parked // MINUTES_PER_DAY
    rest = minutes_parked - full_days * MINUTES_PER_DAY
    quarters = math.ceil(rest / 15)  # every started quarter hour is charged
    fee_last_day = quarters * RATE_PER_QUARTER_HOUR[zone]
    if fee_last_day > DAILY_CAP[zone]:
        fee_last_day = DAILY_CAP[zone]
    fee = full_days * DAILY_CAP[zone] + fee_last_day
    return round(fee, 2)


PARKING_SPECS: dict[str, Any] = {
    "minutes_parked": (0, 4 * MINUTES_PER_DAY),
    "zone": list(PARKING_ZONES),
    "resident_permit": [True, False],
}


def parking_inputs(n: int, seed: int = 0) -> list[dict]:
    """Barrier log of a city car park: mostly short stays in the centre, some airport weekends."""
    rng = np.random.default_rng(seed)
    zones = rng.choice(len(PARKING_ZONES), size=n, p=[0.45, 0.25, 0.20, 0.10])
    out = []
    for i in range(n):
        zone = PARKING_ZONES[int(zones[i])]
        if zone == "AIRPORT_P3" and rng.random() < 0.6:
            minutes = rng.lognormal(np.log(2 * MINUTES_PER_DAY), 0.5)  # a long weekend away
        else:
            minutes = rng.lognormal(np.log(70.0), 0.9)
        minutes = int(min(max(round(minutes), 0), 4 * MINUTES_PER_DAY))
        permit = bool(zone == "RESIDENTIAL" and rng.random() < 0.35) or bool(rng.random() < 0.03)
        out.append({"minutes_parked": minutes, "zone": zone, "resident_permit": permit})
    return out


PARKING_INVALID = [
    {"minutes_parked": -5, "zone": "CENTER", "resident_permit": False},
    {"minutes_parked": 30, "zone": "MOON", "resident_permit": False},
]


# -- late payment: per started week (3 days or more of a week count), capped -------------------

CUSTOMER_TYPES = ["CONSUMER", "BUSINESS", "GOVERNMENT"]
WEEKLY_INTEREST = {"CONSUMER": 0.010, "BUSINESS": 0.015, "GOVERNMENT": 0.0}
ADMIN_FEE = {"CONSUMER": 5.00, "BUSINESS": 15.00, "GOVERNMENT": 0.00}
INTEREST_CAP_SHARE = 0.10  # interest never exceeds 10% of the invoice
GRACE_DAYS = 5


def late_fee(days_late: int, invoice_amount: float, customer_type: str) -> float:
    """Late-payment charge: an admin fee plus weekly interest on the invoice, where a partial
    week of three days or more counts as a week; interest capped at 10% of the invoice and the
    whole charge never above the invoice itself. No charge within the grace period."""
    if invoice_amount < 0:
        raise ValueError(f"invoice_amount={invoice_amount}: a credit note has no late fee")
    if days_late < 0:
        raise ValueError(f"days_late={days_late}: pass 0 for an invoice paid on time")
    if customer_type not in WEEKLY_INTEREST:
        raise ValueError(f"customer_type={customer_type!r} is not one of {CUSTOMER_TYPES}")
    if days_late <= GRACE_DAYS:
        return 0.0

    weeks = days_late // 7
    if days_late % 7 >= 3:
        weeks = weeks + 1
    interest = invoice_amount * WEEKLY_INTEREST[customer_type] * weeks
    cap = invoice_amount * INTEREST_CAP_SHARE
    if interest > cap:
        interest = cap
    fee = ADMIN_FEE[customer_type] + interest
    if fee > invoice_amount:
        fee = invoice_amount
    return round(fee, 2)


LATE_FEE_SPECS: dict[str, Any] = {
    "days_late": (0, 180),
    "invoice_amount": (0.0, 25000.0),
    "customer_type": list(CUSTOMER_TYPES),
}


def late_fee_inputs(n: int, seed: int = 0) -> list[dict]:
    """Overdue-invoice run of an accounts-receivable system: most invoices a few days late."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        kind = CUSTOMER_TYPES[int(rng.choice(3, p=[0.62, 0.33, 0.05]))]
        if rng.random() < 0.55:
            days = int(rng.integers(0, 8))
        else:
            days = int(min(rng.geometric(1 / 25.0), 180))
        scale = 180.0 if kind == "CONSUMER" else 1400.0
        amount = round(float(np.clip(rng.lognormal(np.log(scale), 1.0), 0.5, 25000.0)), 2)
        out.append({"days_late": days, "invoice_amount": amount, "customer_type": kind})
    return out


LATE_FEE_INVALID = [
    {"days_late": 10, "invoice_amount": -50.0, "customer_type": "CONSUMER"},
    {"days_late": -1, "invoice_amount": 100.0, "customer_type": "BUSINESS"},
    {"days_late": 10, "invoice_amount": 100.0, "customer_type": "VIP"},
]


# -- letter post: price by format and weight step, by destination ------------------------------

MAIL_FORMATS = ["LETTER", "LARGE_LETTER", "PARCEL"]
DESTINATIONS = ["DOMESTIC", "EUROPE", "WORLD"]
# Per format: (up to grams, price) steps; the last step is the format's limit.
PRICE_STEPS = {
    "LETTER": [(20, 0.95), (50, 1.10), (100, 1.80), (250, 2.40)],
    "LARGE_LETTER": [(100, 1.95), (250, 2.70), (500, 3.40), (1000, 4.60)],
    "PARCEL": [(1000, 5.49), (2000, 6.99), (5000, 9.49), (10000, 14.99)],
}
DESTINATION_FACTOR = {"DOMESTIC": 1.0, "EUROPE": 1.9, "WORLD": 3.4}
REGISTERED_FEE = {"DOMESTIC": 2.65, "EUROPE": 3.50, "WORLD": 3.50}


def postage(weight_g: int, mail_format: str, destination: str, registered: bool) -> float:
    """Postage for one item: the first weight step that holds it, times the destination
    factor, plus the registered-mail fee on letters (parcels are tracked anyway). An item
    heavier than its format allows is refused."""
    if weight_g <= 0:
        raise ValueError(f"weight_g={weight_g}: weigh the item first")
    steps = PRICE_STEPS[mail_format]
    price = None
    for max_grams, step_price in steps:
        if weight_g <= max_grams:
            price = step_price
            break
    if price is None:
        raise ValueError(f"weight_g={weight_g} is over the {steps[-1][0]} g limit for {mail_format}; "
                         f"send it as the next larger format")
    price = price * DESTINATION_FACTOR[destination]
    if registered and mail_format != "PARCEL":
        price = price + REGISTERED_FEE[destination]
    return round(price, 2)


POSTAGE_SPECS: dict[str, Any] = {
    "weight_g": (1, 12000),
    "mail_format": list(MAIL_FORMATS),
    "destination": list(DESTINATIONS),
    "registered": [True, False],
}


def postage_inputs(n: int, seed: int = 0) -> list[dict]:
    """A post office counter: mostly light domestic letters; about 1% of items are over their
    format's limit (the clerk picked the wrong format) and are refused."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        fmt = MAIL_FORMATS[int(rng.choice(3, p=[0.62, 0.23, 0.15]))]
        limit = PRICE_STEPS[fmt][-1][0]
        if fmt == "LETTER":
            grams = rng.lognormal(np.log(18.0), 0.6)
        elif fmt == "LARGE_LETTER":
            grams = rng.lognormal(np.log(180.0), 0.7)
        else:
            grams = rng.lognormal(np.log(1500.0), 0.8)
        grams = int(np.clip(round(grams), 1, limit))
        if rng.random() < 0.01:
            grams = int(min(limit + rng.integers(1, 400), 12000))
        destination = DESTINATIONS[int(rng.choice(3, p=[0.82, 0.13, 0.05]))]
        registered = bool(rng.random() < (0.08 if fmt != "PARCEL" else 0.02))
        out.append({"weight_g": grams, "mail_format": fmt, "destination": destination, "registered": registered})
    return out


POSTAGE_INVALID = [
    {"weight_g": 0, "mail_format": "LETTER", "destination": "DOMESTIC", "registered": False},
    {"weight_g": 300, "mail_format": "LETTER", "destination": "DOMESTIC", "registered": False},
]
