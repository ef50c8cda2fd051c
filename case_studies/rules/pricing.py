"""Prices in an order and billing system: tiered order discounts, an invoice line with quantity
breaks and VAT by country and category, and a block-rate electricity bill.

Money in `decimal.Decimal` where the finance team insisted (invoice, utility bill), in float
where the web shop team wrote it (discount); each rounded to the cent at the end.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np

CENT = Decimal("0.01")

# -- tiered order discount ---------------------------------------------------------------------

# (order subtotal from, discount): the highest tier reached applies to the whole order.
DISCOUNT_TIERS = [(0.0, 0.00), (100.0, 0.02), (250.0, 0.05), (500.0, 0.08), (1000.0, 0.12), (5000.0, 0.15)]
LOYALTY_LEVELS = ["NONE", "SILVER", "GOLD", "PLATINUM"]
LOYALTY_BONUS = {"NONE": 0.00, "SILVER": 0.01, "GOLD": 0.03, "PLATINUM": 0.05}
MAX_DISCOUNT = 0.18


def order_total(subtotal: float, loyalty_level: str, coupon_percent: int) -> float:
    """Amount to pay for an order: the volume tier's discount plus the loyalty bonus, or the
    coupon if that is better (coupons do not stack), never more than 18% off."""
    if subtotal < 0:
        raise ValueError(f"subtotal={subtotal}: an order cannot be worth less than nothing")
    if coupon_percent < 0 or coupon_percent > 50:
        raise ValueError(f"coupon_percent={coupon_percent}: coupons are 0 to 50 percent")

    rate = 0.0
    for threshold, tier_rate in DISCOUNT_TIERS:
        if subtotal >= threshold:
            rate = tier_rate
        else:
            break
    rate = rate + LOYALTY_BONUS[loyalty_level]
    if coupon_percent / 100 > rate:
        rate = coupon_percent / 100
    if rate > MAX_DISCOUNT:
        rate = MAX_DISCOUNT
    return round(subtotal * (1 - rate), 2)


ORDER_TOTAL_SPECS: dict[str, Any] = {
    "subtotal": (0.0, 8000.0),
    "loyalty_level": list(LOYALTY_LEVELS),
    "coupon_percent": (0, 30),
}


def order_total_inputs(n: int, seed: int = 0) -> list[dict]:
    """Checkouts of a web shop: baskets around 60, a few wholesale orders; coupons are rare."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        subtotal = float(np.clip(rng.lognormal(np.log(60.0), 1.0), 0.99, 8000.0))
        level = LOYALTY_LEVELS[int(rng.choice(4, p=[0.60, 0.25, 0.12, 0.03]))]
        coupon = int(rng.choice([0, 5, 10, 15, 20, 25], p=[0.85, 0.03, 0.07, 0.02, 0.02, 0.01]))
        out.append({"subtotal": round(subtotal, 2), "loyalty_level": level, "coupon_percent": coupon})
    return out


ORDER_TOTAL_INVALID = [
    {"subtotal": -10.0, "loyalty_level": "NONE", "coupon_percent": 0},
    {"subtotal": 10.0, "loyalty_level": "NONE", "coupon_percent": 60},
]


# -- invoice line: quantity breaks, VAT by country and category ---------------------------------

HOME_COUNTRY = "DE"
COUNTRIES = ["DE", "AT", "FR", "IT", "NL"]
CATEGORIES = ["STANDARD", "FOOD", "BOOKS", "MEDICINE"]
VAT_RATES = {
    "DE": {"STANDARD": "0.19", "FOOD": "0.07", "BOOKS": "0.07", "MEDICINE": "0.19"},
    "AT": {"STANDARD": "0.20", "FOOD": "0.10", "BOOKS": "0.10", "MEDICINE": "0.10"},
    "FR": {"STANDARD": "0.20", "FOOD": "0.055", "BOOKS": "0.055", "MEDICINE": "0.021"},
    "IT": {"STANDARD": "0.22", "FOOD": "0.04", "BOOKS": "0.04", "MEDICINE": "0.10"},
    "NL": {"STANDARD": "0.21", "FOOD": "0.09", "BOOKS": "0.09", "MEDICINE": "0.09"},
}
# (from quantity, discount), largest first: the first break reached applies.
QUANTITY_BREAKS = [(100, Decimal("0.15")), (50, Decimal("0.10")), (10, Decimal("0.05"))]


def invoice_line(unit_price: float, quantity: int, country: str, category: str, business_customer: bool) -> float:
    """Gross amount of one invoice line: price times quantity less the quantity break, VAT of
    the customer's country and the product's category on top (none for a business customer
    abroad: intra-EU reverse charge), each amount rounded half-up to the cent."""
    if unit_price < 0:
        raise ValueError(f"unit_price={unit_price}: prices cannot be negative, book a credit note")
    if quantity < 1:
        raise ValueError(f"quantity={quantity}: an invoice line needs at least one item")
    if country not in VAT_RATES:
        raise ValueError(f"country={country!r}: we do not ship to this country")

    net = Decimal(str(unit_price)) * quantity
    for min_quantity, discount in QUANTITY_BREAKS:
        if quantity >= min_quantity:
            net = net * (1 - discount)
            break
    net = net.quantize(CENT, rounding=ROUND_HALF_UP)

    if business_customer and country != HOME_COUNTRY:
        vat_rate = Decimal("0")  # reverse charge: the customer accounts for the VAT
    else:
        vat_rate = Decimal(VAT_RATES[country][category])
    vat = (net * vat_rate).quantize(CENT, rounding=ROUND_HALF_UP)
    return float(net + vat)


INVOICE_LINE_SPECS: dict[str, Any] = {
    "unit_price": (0.0, 2000.0),
    "quantity": (1, 500),
    "country": list(COUNTRIES),
    "category": list(CATEGORIES),
    "business_customer": [True, False],
}


def invoice_line_inputs(n: int, seed: int = 0) -> list[dict]:
    """Lines of a wholesaler's invoices: cheap items, small quantities, most customers at home."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        price = round(float(np.clip(rng.lognormal(np.log(18.0), 1.1), 0.05, 2000.0)), 2)
        if rng.random() < 0.25:
            price = float(np.floor(price)) + 0.99  # shelf prices end in .99
            price = min(price, 1999.99)
        r = rng.random()
        if r < 0.70:
            quantity = int(rng.integers(1, 6))
        elif r < 0.95:
            quantity = int(rng.choice([6, 10, 12, 20, 24, 25, 48, 50]))
        else:
            quantity = int(rng.choice([100, 120, 144, 200, 250, 500]))
        country = COUNTRIES[int(rng.choice(5, p=[0.64, 0.14, 0.09, 0.06, 0.07]))]
        category = CATEGORIES[int(rng.choice(4, p=[0.55, 0.25, 0.12, 0.08]))]
        business = bool(rng.random() < 0.3)
        out.append({"unit_price": price, "quantity": quantity, "country": country, "category": category,
                    "business_customer": business})
    return out


INVOICE_LINE_INVALID = [
    {"unit_price": -1.0, "quantity": 1, "country": "DE", "category": "STANDARD", "business_customer": False},
    {"unit_price": 5.0, "quantity": 0, "country": "DE", "category": "STANDARD", "business_customer": False},
    {"unit_price": 5.0, "quantity": 1, "country": "US", "category": "STANDARD", "business_customer": False},
]


# -- electricity bill: increasing block rates, fixed charge, VAT --------------------------------

TARIFFS = ["BASIC", "GREEN", "HEAT_PUMP"]
# (block up to kWh in the month, price per kWh in that block), the last block open-ended.
ENERGY_BLOCKS = {
    "BASIC": [(Decimal("200"), Decimal("0.2150")), (Decimal("600"), Decimal("0.2680")), (None, Decimal("0.3120"))],
    "GREEN": [(Decimal("150"), Decimal("0.2290")), (Decimal("500"), Decimal("0.2790")), (None, Decimal("0.3390"))],
    "HEAT_PUMP": [(Decimal("400"), Decimal("0.1990")), (Decimal("1500"), Decimal("0.2240")),
                  (None, Decimal("0.2590"))],
}
MONTHLY_FIXED_CHARGE = {"BASIC": Decimal("9.90"), "GREEN": Decimal("12.50"), "HEAT_PUMP": Decimal("14.90")}
ELECTRICITY_VAT = Decimal("0.19")


def electricity_bill(kwh: float, tariff: str, social_tariff: bool) -> float:
    """A month's electricity bill: each block of consumption at its own price, the tariff's
    fixed charge (waived on the social tariff), 19% VAT on the whole, rounded to the cent."""
    if kwh < 0:
        raise ValueError(f"kwh={kwh}: a negative reading means the meter was replaced; bill it manually")
    if tariff not in ENERGY_BLOCKS:
        raise ValueError(f"tariff={tariff!r} is not one of {TARIFFS}")

    consumption = Decimal(str(kwh))
    energy = Decimal("0")
    previous_limit = Decimal("0")
    for limit, price in ENERGY_BLOCKS[tariff]:
        if limit is not None and consumption > limit:
            energy += (limit - previous_limit) * price
            previous_limit = limit
        else:
            energy += (consumption - previous_limit) * price
            break
    fixed = Decimal("0") if social_tariff else MONTHLY_FIXED_CHARGE[tariff]
    net = energy + fixed
    gross = net * (1 + ELECTRICITY_VAT)
    return float(gross.quantize(CENT, rounding=ROUND_HALF_UP))


ELECTRICITY_SPECS: dict[str, Any] = {
    "kwh": (0.0, 3000.0),
    "tariff": list(TARIFFS),
    "social_tariff": [True, False],
}


def electricity_inputs(n: int, seed: int = 0) -> list[dict]:
    """Monthly meter readings (to a tenth of a kWh): households around 250 kWh, heat pumps more."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        tariff = TARIFFS[int(rng.choice(3, p=[0.6, 0.3, 0.1]))]
        median = 900.0 if tariff == "HEAT_PUMP" else 240.0
        kwh = float(np.clip(rng.lognormal(np.log(median), 0.55), 0.0, 3000.0))
        if rng.random() < 0.01:
            kwh = 0.0  # vacant flat
        out.append({"kwh": round(kwh, 1), "tariff": tariff, "social_tariff": bool(rng.random() < 0.07)})
    return out


ELECTRICITY_INVALID = [
    {"kwh": -3.0, "tariff": "BASIC", "social_tariff": False},
    {"kwh": 100.0, "tariff": "NUCLEAR", "social_tariff": False},
]
