"""A parcel carrier's shipping fee table, the way such rules live in an order system.

Hard steps everywhere: five weight tiers with a price per zone, a per-kg rate above 30 kg,
an express surcharge (a share of the base with a floor, not offered above 30 kg), insurance
above a declared value, free standard domestic shipping for orders of 150 or more up to 10 kg,
and rounding to the cent. A smooth surrogate has to reproduce every step to the cent; the
interesting inputs sit on the tier boundaries (0.5, 2, 5, 10, 30 kg, value 150 and 500).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from probes import Tolerance

NAME = "shipping_fee"
DESCRIPTION = "Parcel fee: weight tiers x zone, express surcharge, insurance, free domestic shipping"

ZONES = ["DOMESTIC", "EU", "NA", "ASIA", "ROW"]

# Base price per zone for parcels up to 0.5 / 2 / 5 / 10 / 30 kg.
TIER_LIMITS = [0.5, 2.0, 5.0, 10.0, 30.0]
TIER_PRICES = {
    "DOMESTIC": [4.90, 6.90, 9.90, 14.90, 24.90],
    "EU": [9.50, 13.50, 19.90, 29.90, 49.90],
    "NA": [14.50, 21.00, 32.00, 48.00, 85.00],
    "ASIA": [15.90, 23.50, 36.00, 54.00, 95.00],
    "ROW": [19.90, 29.00, 44.00, 66.00, 115.00],
}
# Above 30 kg: the 30 kg price plus this much per started kilogram.
PER_KG_ABOVE_30 = {"DOMESTIC": 0.80, "EU": 1.60, "NA": 2.90, "ASIA": 3.20, "ROW": 3.90}
MAX_WEIGHT = 70.0


def shipping_fee(weight_kg: float, zone: str, express: bool, declared_value: float) -> float:
    """Fee in the shop's currency for one parcel."""
    if weight_kg <= 0:
        raise ValueError("weight must be positive")
    if weight_kg > MAX_WEIGHT:
        raise ValueError("parcel exceeds the 70 kg limit")
    if declared_value < 0:
        raise ValueError("declared value cannot be negative")
    prices = TIER_PRICES[zone]

    if weight_kg <= 0.5:
        base = prices[0]
    elif weight_kg <= 2:
        base = prices[1]
    elif weight_kg <= 5:
        base = prices[2]
    elif weight_kg <= 10:
        base = prices[3]
    elif weight_kg <= 30:
        base = prices[4]
    else:
        extra_kg = int(weight_kg - 30)
        if weight_kg - 30 > extra_kg:
            extra_kg = extra_kg + 1  # every started kilogram counts
        base = prices[4] + extra_kg * PER_KG_ABOVE_30[zone]

    # Free standard shipping at home for orders of 150 or more, parcels up to 10 kg.
    if zone == "DOMESTIC" and not express and declared_value >= 150 and weight_kg <= 10:
        base = 0.0

    surcharge = 0.0
    if express and weight_kg <= 30:  # express is not offered above 30 kg: sent standard
        surcharge = base * 0.5
        if zone == "DOMESTIC":
            if surcharge < 5.00:
                surcharge = 5.00
        else:
            if surcharge < 8.00:
                surcharge = 8.00

    insurance = 0.0
    if declared_value > 500:
        insurance = (declared_value - 500) * 0.012
        if insurance < 2.50:
            insurance = 2.50

    total = base + surcharge + insurance
    return round(total, 2)


FUNCTION = shipping_fee

SPECS: dict[str, Any] = {
    "weight_kg": (0.01, 70.0),
    "zone": list(ZONES),
    "express": [True, False],
    "declared_value": (0.0, 5000.0),
}

# An invoice is right to the cent or it is wrong: half a cent either way still rounds to the
# same cent, nothing more is acceptable.
TOLERANCE = Tolerance(abs=0.005, rel=0.0)

_ZONE_SHARE = [0.55, 0.20, 0.10, 0.10, 0.05]


def generate_inputs(n: int, seed: int = 0) -> list[dict]:
    """`n` orders of a small web shop: mostly light domestic parcels, some heavy and far ones."""
    rng = np.random.default_rng(seed)
    out: list[dict] = []
    for _ in range(n):
        weight = float(np.clip(rng.lognormal(mean=np.log(1.2), sigma=0.95), 0.05, MAX_WEIGHT))
        weight = round(weight, 3)  # the scale reads grams
        zone = ZONES[int(rng.choice(len(ZONES), p=_ZONE_SHARE))]
        express = bool(rng.random() < 0.15)
        value = float(np.clip(rng.lognormal(mean=np.log(45.0), sigma=1.1), 1.0, 5000.0))
        value = round(value, 2)
        out.append({"weight_kg": weight, "zone": zone, "express": express, "declared_value": value})
    return out


def run(*, store: Any = None, out: str = "neuroswap_report", quick: bool = False, progress: bool = False,
        seed: int = 0) -> dict:
    """Record -> fit -> verify -> mine -> refit -> distill -> report, and the result row.

    The flagship (`neuroswap demo`): every step of the fee table must come out to the cent.
    """
    import sys

    from ._flow import run_study

    return run_study(sys.modules[__name__], store=store, out=out, quick=quick, progress=progress, seed=seed)
