"""Legacy functions neuroswap was never tuned on, for bench/untuned.py (issue 16).

Thirteen plain-Python functions of the kinds a user brings (smooth kernels, tables, solvers,
classifiers), written for this benchmark in the style such code is written in (if/else chains,
loops over rate tables, Newton and bisection loops, rounding to the cent), not shaped to any
grammar fit searches. Each `Untuned` entry gives the function, its declared domain (`specs` for
`Schema.from_function`; `schema()` builds it), a production input generator
`generate(n, seed) -> list[dict]` (skewed traffic, not uniform over the domain: the inputs
always lie in the domain) and the tolerance a user of that code would ask for.

    from bench.untuned_functions import FUNCTIONS
    entry = FUNCTIONS["kepler"]
    traces = Traces.from_calls(entry.function, entry.generate(3000, seed=100))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from probes import OutputSpec, Schema, Tolerance

CENTS = Tolerance(abs=0.005, rel=0.0)  # money: right to the cent or wrong
EXACT = Tolerance(abs=0.0, rel=0.0)  # labels (and exceptions, always) must match exactly
TWO_PI = 2.0 * math.pi


@dataclass(frozen=True)
class Untuned:
    """One function of the suite and what the benchmark needs to run it."""

    name: str
    kind: str  # "kernel", "table", "solver" or "classifier"
    function: Callable[..., Any]
    specs: dict[str, Any]
    generate: Callable[..., list[dict]]
    tolerance: Tolerance
    description: str
    output: OutputSpec | None = None  # labels are declared (a probe could miss a rare one)

    def schema(self, *, probe: int = 256, seed: int = 0) -> Schema:
        """The declared domain: `Schema.from_function(fn, **specs)` (output declared or probed)."""
        if self.output is not None:
            return Schema.from_function(self.function, output=self.output, **self.specs)
        return Schema.from_function(self.function, probe=probe, seed=seed, **self.specs)


def _clip(rng_values: Any, low: float, high: float) -> list[float]:
    return [float(v) for v in np.clip(rng_values, low, high)]


# == kernels ======================================================================================

def rgb_to_hsv(r: float, g: float, b: float) -> tuple[float, float, float]:
    """RGB in [0, 1] to (hue, saturation, value); hue in turns [0, 1), wrapping at red."""
    mx = max(r, g, b)
    mn = min(r, g, b)
    v = mx
    if mx <= 0.0:
        return (0.0, 0.0, 0.0)
    delta = mx - mn
    s = delta / mx
    if delta == 0.0:  # a grey: hue undefined, 0 by convention
        return (0.0, 0.0, v)
    if mx == r:
        h = (g - b) / delta
    elif mx == g:
        h = 2.0 + (b - r) / delta
    else:
        h = 4.0 + (r - g) / delta
    h = h / 6.0
    if h < 0.0:
        h = h + 1.0
    return (h, s, v)


def _photo_pixels(n: int, rng: np.random.Generator) -> np.ndarray:
    """8-bit pixels of ordinary photos: many near-greys, skin, sky and foliage, a few vivid."""
    out = np.empty((n, 3))
    kind = rng.choice(5, size=n, p=[0.35, 0.2, 0.2, 0.15, 0.1])
    for i, k in enumerate(kind):
        if k == 0:  # near-grey: walls, roads, shadows
            level = rng.beta(2.0, 2.0)
            out[i] = level + rng.normal(0.0, 0.015, 3)
        elif k == 1:  # skin tones: r > g > b
            level = rng.uniform(0.35, 0.95)
            out[i] = level * np.array([1.0, 0.78, 0.62]) + rng.normal(0.0, 0.03, 3)
        elif k == 2:  # sky
            level = rng.uniform(0.4, 1.0)
            out[i] = level * np.array([0.55, 0.72, 0.95]) + rng.normal(0.0, 0.04, 3)
        elif k == 3:  # foliage
            level = rng.uniform(0.15, 0.7)
            out[i] = level * np.array([0.45, 0.75, 0.3]) + rng.normal(0.0, 0.05, 3)
        else:  # anything
            out[i] = rng.random(3)
    return np.round(np.clip(out, 0.0, 1.0) * 255.0)


def rgb_to_hsv_inputs(n: int, seed: int = 0) -> list[dict]:
    px = _photo_pixels(n, np.random.default_rng(seed)) / 255.0
    return [{"r": float(p[0]), "g": float(p[1]), "b": float(p[2])} for p in px]


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two points given in degrees."""
    if lat1 == lat2 and lon1 == lon2:
        return 0.0
    radius = 6371.0088
    phi1 = math.radians(lat1)
    phi2 = math.radians(lat2)
    dphi = phi2 - phi1
    dlon = lon2 - lon1
    if dlon > 180.0:  # the short way round the date line
        dlon = dlon - 360.0
    elif dlon < -180.0:
        dlon = dlon + 360.0
    dlmb = math.radians(dlon)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    if a > 1.0:
        a = 1.0
    return 2.0 * radius * math.asin(math.sqrt(a))


_CITIES = [(51.51, -0.13), (48.86, 2.35), (40.71, -74.01), (34.05, -118.24), (35.68, 139.69), (-33.87, 151.21),
           (19.43, -99.13), (52.52, 13.40), (1.35, 103.82), (-23.55, -46.63)]
_CITY_SHARE = [0.2, 0.15, 0.2, 0.1, 0.1, 0.05, 0.05, 0.07, 0.04, 0.04]


def haversine_inputs(n: int, seed: int = 0) -> list[dict]:
    """Delivery and ride traffic: mostly trips of a few km inside a city, some intercity flights."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        lat1, lon1 = _CITIES[int(rng.choice(len(_CITIES), p=_CITY_SHARE))]
        lat1 += rng.normal(0.0, 0.08)
        lon1 += rng.normal(0.0, 0.08)
        if rng.random() < 0.88:
            dist_deg = rng.lognormal(np.log(0.04), 0.8)
            angle = rng.uniform(0.0, TWO_PI)
            lat2, lon2 = lat1 + dist_deg * math.sin(angle), lon1 + dist_deg * math.cos(angle)
        else:
            lat2, lon2 = _CITIES[int(rng.integers(len(_CITIES)))]
            lat2 += rng.normal(0.0, 0.05)
            lon2 += rng.normal(0.0, 0.05)
        lat1, lat2 = _clip([lat1, lat2], -90.0, 90.0)
        lon1, lon2 = _clip([lon1, lon2], -180.0, 180.0)
        out.append({"lat1": round(lat1, 5), "lon1": round(lon1, 5), "lat2": round(lat2, 5), "lon2": round(lon2, 5)})
    return out


def rgb_to_lab(r: int, g: int, b: int) -> tuple[float, float, float]:
    """8-bit sRGB to CIELab (D65): gamma expansion, XYZ, then the cube-root curve."""
    linear = []
    for channel in (r, g, b):
        c = channel / 255.0
        if c <= 0.04045:
            linear.append(c / 12.92)
        else:
            linear.append(((c + 0.055) / 1.055) ** 2.4)
    rl, gl, bl = linear
    x = (0.4124 * rl + 0.3576 * gl + 0.1805 * bl) / 0.95047
    y = 0.2126 * rl + 0.7152 * gl + 0.0722 * bl
    z = (0.0193 * rl + 0.1192 * gl + 0.9505 * bl) / 1.08883
    f = []
    for t in (x, y, z):
        if t > 0.008856:
            f.append(t ** (1.0 / 3.0))
        else:
            f.append(7.787 * t + 16.0 / 116.0)
    lightness = 116.0 * f[1] - 16.0
    return (lightness, 500.0 * (f[0] - f[1]), 200.0 * (f[1] - f[2]))


def rgb_to_lab_inputs(n: int, seed: int = 0) -> list[dict]:
    px = _photo_pixels(n, np.random.default_rng(seed))
    return [{"r": int(p[0]), "g": int(p[1]), "b": int(p[2])} for p in px]


def damped_position(x0: float, v0: float, omega: float, zeta: float, t: float) -> float:
    """Position of a damped spring at time t: under-, critically or over-damped closed form."""
    if zeta < 1.0 - 1e-6:
        wd = omega * math.sqrt(1.0 - zeta * zeta)
        b = (v0 + zeta * omega * x0) / wd
        return math.exp(-zeta * omega * t) * (x0 * math.cos(wd * t) + b * math.sin(wd * t))
    if zeta <= 1.0 + 1e-6:
        return (x0 + (v0 + omega * x0) * t) * math.exp(-omega * t)
    s = omega * math.sqrt(zeta * zeta - 1.0)
    r1 = -zeta * omega + s
    r2 = -zeta * omega - s
    c2 = (v0 - r1 * x0) / (r2 - r1)
    c1 = x0 - c2
    return c1 * math.exp(r1 * t) + c2 * math.exp(r2 * t)


def damped_inputs(n: int, seed: int = 0) -> list[dict]:
    """Suspension test rig: lightly damped (zeta 0.1-0.6), a few stiff or overdamped set-ups,
    short times after the bump."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        zeta = rng.beta(2.0, 5.0) * 1.2 if rng.random() < 0.9 else rng.uniform(0.9, 2.0)
        out.append({
            "x0": round(float(np.clip(rng.normal(0.02, 0.03), -0.1, 0.1)), 4),
            "v0": round(float(np.clip(rng.normal(0.0, 0.3), -1.0, 1.0)), 3),
            "omega": round(float(np.clip(rng.lognormal(np.log(8.0), 0.35), 1.0, 30.0)), 3),
            "zeta": round(float(np.clip(zeta, 0.0, 2.0)), 3),
            "t": round(float(np.clip(rng.exponential(0.35), 0.0, 2.0)), 3),
        })
    return out


# == tables =======================================================================================

TAX_BRACKETS = {
    "single": [(11000, 0.10), (44725, 0.12), (95375, 0.22), (182100, 0.24), (231250, 0.32), (578125, 0.35),
               (None, 0.37)],
    "married": [(22000, 0.10), (89450, 0.12), (190750, 0.22), (364200, 0.24), (462500, 0.32), (693750, 0.35),
                (None, 0.37)],
    "head": [(15700, 0.10), (59850, 0.12), (95350, 0.22), (182100, 0.24), (231250, 0.32), (578100, 0.35),
             (None, 0.37)],
}
STANDARD_DEDUCTION = {"single": 13850.0, "married": 27700.0, "head": 20800.0}
CREDIT_PHASEOUT = {"single": 200000.0, "married": 400000.0, "head": 200000.0}


def bracket_tax(income: float, status: str, dependents: int) -> float:
    """Income tax: standard deduction, marginal brackets, a child credit phased out above a
    threshold (50 per started 1,000), never below zero; to the cent."""
    if income < 0:
        raise ValueError("income cannot be negative")
    taxable = income - STANDARD_DEDUCTION[status]
    tax = 0.0
    lower = 0.0
    if taxable > 0:
        for upper, rate in TAX_BRACKETS[status]:
            if upper is None or taxable <= upper:
                tax += (taxable - lower) * rate
                break
            tax += (upper - lower) * rate
            lower = upper
    credit = 2000.0 * dependents
    excess = income - CREDIT_PHASEOUT[status]
    if excess > 0:
        credit = credit - 50.0 * math.ceil(excess / 1000.0)
        if credit < 0:
            credit = 0.0
    tax = tax - credit
    if tax < 0:
        tax = 0.0
    return round(tax, 2)


def bracket_tax_inputs(n: int, seed: int = 0) -> list[dict]:
    """Tax returns: income log-spread 1e3..2e6 (median about 55,000), mostly single filers."""
    rng = np.random.default_rng(seed)
    statuses = ["single", "married", "head"]
    out = []
    for _ in range(n):
        income = float(np.clip(rng.lognormal(np.log(55000.0), 0.9), 1000.0, 2_000_000.0))
        status = statuses[int(rng.choice(3, p=[0.55, 0.35, 0.10]))]
        dependents = int(min(rng.poisson(0.4 if status == "single" else 1.4), 6))
        if status == "head" and dependents == 0:
            dependents = 1
        out.append({"income": round(income, 2), "status": status, "dependents": dependents})
    return out


PARCEL_BANDS = [1.0, 3.0, 5.0, 10.0, 20.0, 31.5]
PARCEL_PRICES = {
    "Z1": [4.49, 5.99, 7.49, 9.99, 14.49, 19.99],
    "Z2": [6.99, 8.99, 11.49, 15.99, 22.99, 31.99],
    "Z3": [11.99, 15.49, 19.99, 27.99, 41.99, 56.99],
    "Z4": [18.99, 24.99, 33.99, 47.99, 69.99, 94.99],
}
PARCEL_VOLUMETRIC_EXTRA = {"Z1": 0.45, "Z2": 0.80, "Z3": 1.60, "Z4": 2.70}


def parcel_tariff(weight_kg: float, length_cm: float, width_cm: float, height_cm: float, zone: str,
                  signature: bool) -> float:
    """Parcel price: billable weight (actual or volumetric, whichever is larger) looked up in the
    zone's bands, per started kg above the last band, oversize and signature fees, fuel surcharge."""
    if weight_kg <= 0:
        raise ValueError("weight must be positive")
    if weight_kg > 31.5:
        raise ValueError("over 31.5 kg: book freight")
    volumetric = length_cm * width_cm * height_cm / 5000.0
    billable = weight_kg if weight_kg >= volumetric else volumetric
    prices = PARCEL_PRICES[zone]
    price = None
    for i, limit in enumerate(PARCEL_BANDS):
        if billable <= limit:
            price = prices[i]
            break
    if price is None:
        extra_kg = math.ceil(billable - PARCEL_BANDS[-1])
        price = prices[-1] + extra_kg * PARCEL_VOLUMETRIC_EXTRA[zone]
    longest = max(length_cm, width_cm, height_cm)
    if longest > 120.0 or length_cm + 2.0 * (width_cm + height_cm) > 300.0:
        price += 12.50
    if signature:
        price += 1.95
    fuel = round(price * 0.085, 2)
    return round(price + fuel, 2)


def parcel_inputs(n: int, seed: int = 0) -> list[dict]:
    """An online shop's parcels: mostly small boxes near home, a few bulky or far ones."""
    rng = np.random.default_rng(seed)
    zones = ["Z1", "Z2", "Z3", "Z4"]
    boxes = [(20.0, 15.0, 8.0), (30.0, 20.0, 12.0), (40.0, 30.0, 20.0), (60.0, 40.0, 35.0), (120.0, 60.0, 50.0)]
    out = []
    for _ in range(n):
        box = boxes[int(rng.choice(5, p=[0.35, 0.3, 0.2, 0.1, 0.05]))]
        dims = [float(np.clip(d * rng.uniform(0.85, 1.15), 1.0, 150.0)) for d in box]
        weight = float(np.clip(rng.lognormal(np.log(1.3), 0.9), 0.05, 35.0))
        out.append({"weight_kg": round(weight, 3), "length_cm": round(dims[0], 1), "width_cm": round(dims[1], 1),
                    "height_cm": round(dims[2], 1), "zone": zones[int(rng.choice(4, p=[0.6, 0.25, 0.1, 0.05]))],
                    "signature": bool(rng.random() < 0.12)})
    return out


ELECTRICITY_TIERS = {  # (monthly kWh limit of the block, rate per kWh); blocks scale with the days billed
    "residential": [(200.0, 0.112), (600.0, 0.153), (None, 0.214)],
    "business": [(1500.0, 0.138), (6000.0, 0.121), (None, 0.104)],
    "green": [(300.0, 0.131), (None, 0.168)],
}
ELECTRICITY_STANDING = {"residential": 0.42, "business": 1.35, "green": 0.48}  # per day


def electricity_bill(kwh: float, days: int, tariff: str) -> float:
    """Bill for one period: increasing or decreasing block rates scaled to the period, a daily
    standing charge, a low-use rebate for homes, 5% tax; refuses implausible home readings."""
    if kwh < 0:
        raise ValueError("consumption cannot be negative")
    if tariff == "residential" and kwh > 15000:
        raise ValueError("reading implausible for a home: check the meter")
    energy = 0.0
    previous = 0.0
    for limit, rate in ELECTRICITY_TIERS[tariff]:
        top = kwh if limit is None else min(kwh, limit * days / 30.0)
        if top > previous:
            energy += (top - previous) * rate
            previous = top
    subtotal = energy + ELECTRICITY_STANDING[tariff] * days
    if tariff == "residential" and kwh < 50.0 * days / 30.0:
        subtotal = max(subtotal - 5.00, 0.0)
    return round(subtotal * 1.05, 2)


def electricity_inputs(n: int, seed: int = 0) -> list[dict]:
    """Monthly reads: homes around 300-900 kWh, businesses in the thousands, a few empty flats."""
    rng = np.random.default_rng(seed)
    tariffs = ["residential", "business", "green"]
    out = []
    for _ in range(n):
        tariff = tariffs[int(rng.choice(3, p=[0.7, 0.15, 0.15]))]
        median = 4000.0 if tariff == "business" else 550.0
        kwh = rng.lognormal(np.log(median), 0.7 if tariff == "business" else 0.55)
        if tariff != "business" and rng.random() < 0.03:
            kwh = rng.uniform(0.0, 40.0)  # vacant
        out.append({"kwh": round(float(np.clip(kwh, 0.0, 20000.0)), 1), "days": int(rng.integers(28, 33)),
                    "tariff": tariff})
    return out


# == solvers ======================================================================================

def kepler(mean_anomaly: float, eccentricity: float) -> float:
    """Eccentric anomaly E solving Kepler's equation E - e sin E = M, by Newton's iterations."""
    if eccentricity < 0.0 or eccentricity >= 1.0:
        raise ValueError("an elliptic orbit needs 0 <= e < 1")
    m = math.fmod(mean_anomaly, TWO_PI)
    if m < 0.0:
        m += TWO_PI
    e_anom = m if eccentricity < 0.8 else math.pi
    for _ in range(50):
        f = e_anom - eccentricity * math.sin(e_anom) - m
        step = f / (1.0 - eccentricity * math.cos(e_anom))
        e_anom -= step
        if abs(step) < 1e-12:
            break
    return e_anom


def kepler_inputs(n: int, seed: int = 0) -> list[dict]:
    """Asteroid ephemerides: eccentricities mostly 0.05-0.3, a few comets; any mean anomaly."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        e = rng.beta(2.0, 8.0) if rng.random() < 0.95 else rng.uniform(0.6, 0.98)
        out.append({"mean_anomaly": float(rng.uniform(0.0, TWO_PI)), "eccentricity": float(np.clip(e, 0.0, 0.98))})
    return out


def larger_root(a: float, b: float, c: float) -> float:
    """Larger real root of a x^2 + b x + c, by the cancellation-free formula; no real root raises."""
    if a == 0.0:
        if b == 0.0:
            raise ValueError("not an equation")
        return -c / b
    disc = b * b - 4.0 * a * c
    if disc < 0.0:
        raise ValueError("no real roots")
    root = math.sqrt(disc)
    if b >= 0.0:
        q = -0.5 * (b + root)
    else:
        q = -0.5 * (b - root)
    r1 = q / a
    r2 = c / q if q != 0.0 else r1
    return r1 if r1 > r2 else r2


def larger_root_inputs(n: int, seed: int = 0) -> list[dict]:
    """Time-of-flight and break-even equations: a around 1-5, c mostly negative (two real roots)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = float(np.clip(rng.lognormal(np.log(2.0), 0.6), 0.1, 5.0))
        b = float(np.clip(rng.normal(2.0, 3.0), -10.0, 10.0))
        c = float(np.clip(rng.normal(-6.0, 4.0), -20.0, 5.0))
        out.append({"a": round(a, 3), "b": round(b, 3), "c": round(c, 3)})
    return out


def loan_apr(principal: float, payment: float, months: int) -> float:
    """Annual percentage rate of an amortising loan from its monthly payment, by bisection on the
    monthly rate; a payment that cannot repay the loan, or implies above 120% a year, raises."""
    if payment * months <= principal:
        raise ValueError("the payments do not repay the principal")
    low, high = 0.0, 0.10
    if principal * high / (1.0 - (1.0 + high) ** -months) < payment:
        raise ValueError("rate above 120% a year")
    for _ in range(60):
        mid = 0.5 * (low + high)
        due = principal * mid / (1.0 - (1.0 + mid) ** -months) if mid > 0 else principal / months
        if due > payment:
            high = mid
        else:
            low = mid
    return round(1200.0 * 0.5 * (low + high), 3)


def loan_apr_inputs(n: int, seed: int = 0) -> list[dict]:
    """Car and consumer loans: terms of 2-7 years, rates 2-25%, payment to the cent."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        principal = float(np.clip(rng.lognormal(np.log(15000.0), 0.6), 1000.0, 50000.0))
        months = int(rng.choice([24, 36, 48, 60, 72, 84], p=[0.1, 0.2, 0.2, 0.3, 0.15, 0.05]))
        apr = float(np.clip(rng.lognormal(np.log(7.0), 0.5), 2.0, 25.0))
        r = apr / 1200.0
        payment = float(np.clip(round(principal * r / (1.0 - (1.0 + r) ** -months), 2), 20.0, 3000.0))
        out.append({"principal": round(principal, 2), "payment": payment, "months": months})
    return out


# == classifiers ==================================================================================

BMI_CATEGORIES = ["underweight", "normal", "overweight", "obese I", "obese II", "obese III"]


def bmi_category(weight_kg: float, height_cm: float, age: int, sex: str) -> str:
    """Adult BMI category; older adults have a higher healthy band; children raise."""
    if age < 18:
        raise ValueError("under 18: use BMI-for-age percentiles")
    bmi = weight_kg / (height_cm / 100.0) ** 2
    if age >= 65:
        low, high = 22.0, 27.0
    else:
        low, high = 18.5, 25.0
    if sex == "F" and age >= 50:
        low = low + 0.5  # bone-loss screening starts earlier
    if bmi < low:
        return "underweight"
    if bmi < high:
        return "normal"
    if bmi < 30.0:
        return "overweight"
    if bmi < 35.0:
        return "obese I"
    if bmi < 40.0:
        return "obese II"
    return "obese III"


def bmi_inputs(n: int, seed: int = 0) -> list[dict]:
    """A clinic's adult patients (a few minors' visits slip in)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        sex = "F" if rng.random() < 0.52 else "M"
        height = rng.normal(163.0 if sex == "F" else 177.0, 7.0)
        bmi = rng.lognormal(np.log(26.5), 0.17)
        age = int(np.clip(rng.normal(48.0, 17.0), 10, 100))
        weight = bmi * (height / 100.0) ** 2
        out.append({"weight_kg": round(float(np.clip(weight, 30.0, 200.0)), 1),
                    "height_cm": round(float(np.clip(height, 140.0, 210.0)), 1), "age": age, "sex": sex})
    return out


CREDIT_DECISIONS = ["approve", "approve_reduced", "refer", "decline"]


def credit_decision(income: float, monthly_debt: float, score: int, years_employed: float, amount: float) -> str:
    """Consumer credit: score floor, debt-to-income with the new loan's instalment, tenure."""
    if income <= 0:
        raise ValueError("income must be positive")
    instalment = amount * 0.032  # about 36 months at the house rate
    dti = (monthly_debt + instalment) / (income / 12.0)
    if score < 540:
        return "decline"
    if dti > 0.50:
        return "decline"
    if score >= 740 and dti < 0.30 and years_employed >= 2:
        return "approve"
    if score >= 680 and dti < 0.36:
        if amount <= income * 0.4:
            return "approve"
        return "approve_reduced"
    if years_employed < 1.0:
        return "refer"
    if score >= 620 and dti < 0.43:
        return "refer"
    return "decline"


def credit_inputs(n: int, seed: int = 0) -> list[dict]:
    """Applications: incomes log-normal, scores around 690, small loans most common."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        income = float(np.clip(rng.lognormal(np.log(62000.0), 0.5), 10000.0, 400000.0))
        debt = float(np.clip(income / 12.0 * rng.beta(2.0, 7.0), 0.0, 8000.0))
        out.append({"income": round(income, -2), "monthly_debt": round(debt, 2),
                    "score": int(np.clip(rng.normal(690.0, 65.0), 300, 850)),
                    "years_employed": round(float(np.clip(rng.exponential(5.0), 0.0, 40.0)), 1),
                    "amount": round(float(np.clip(rng.lognormal(np.log(9000.0), 0.8), 1000.0, 100000.0)), -2)})
    return out


TRIAGE_LEVELS = ["low", "low-medium", "medium", "high"]


def triage_level(resp_rate: int, spo2: int, systolic: int, pulse: int, temp_c: float, alert: bool) -> str:
    """Early-warning score (NEWS2-like): points per vital sign, the total and any single red
    score decide the clinical response."""
    points = []
    if resp_rate <= 8:
        points.append(3)
    elif resp_rate <= 11:
        points.append(1)
    elif resp_rate <= 20:
        points.append(0)
    elif resp_rate <= 24:
        points.append(2)
    else:
        points.append(3)
    points.append(3 if spo2 <= 91 else 2 if spo2 <= 93 else 1 if spo2 <= 95 else 0)
    if systolic <= 90 or systolic >= 220:
        points.append(3)
    else:
        points.append(2 if systolic <= 100 else 1 if systolic <= 110 else 0)
    if pulse <= 40 or pulse >= 131:
        points.append(3)
    else:
        points.append(1 if pulse <= 50 else 0 if pulse <= 90 else 1 if pulse <= 110 else 2)
    points.append(3 if temp_c <= 35.0 else 1 if temp_c <= 36.0 else 0 if temp_c <= 38.0 else 1 if temp_c <= 39.0
                  else 2)
    points.append(0 if alert else 3)
    total = sum(points)
    if total >= 7:
        return "high"
    if total >= 5:
        return "medium"
    if max(points) == 3:
        return "low-medium"
    return "low"


def triage_inputs(n: int, seed: int = 0) -> list[dict]:
    """Ward observations: mostly stable patients, some deteriorating ones."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        sick = rng.random() < 0.15
        out.append({
            "resp_rate": int(np.clip(rng.normal(22.0 if sick else 16.0, 5.0 if sick else 2.5), 4, 50)),
            "spo2": int(np.clip(round(100 - rng.gamma(1.5, 3.0 if sick else 1.2)), 70, 100)),
            "systolic": int(np.clip(rng.normal(105.0 if sick else 128.0, 22.0 if sick else 15.0), 50, 260)),
            "pulse": int(np.clip(rng.normal(105.0 if sick else 78.0, 20.0 if sick else 11.0), 25, 200)),
            "temp_c": round(float(np.clip(rng.normal(38.1 if sick else 36.8, 1.0 if sick else 0.4), 33.0, 42.0)), 1),
            "alert": bool(rng.random() > (0.12 if sick else 0.005)),
        })
    return out


# == the suite ====================================================================================

def _label(labels: list[str], *, raises: bool) -> OutputSpec:
    return OutputSpec(kind="label", labels=tuple(labels), raises=raises,
                      error_types=("ValueError",) if raises else (), python_type="str")


_ENTRIES = [
    Untuned("rgb_to_hsv", "kernel", rgb_to_hsv, {"r": (0.0, 1.0), "g": (0.0, 1.0), "b": (0.0, 1.0)},
            rgb_to_hsv_inputs, Tolerance(abs=1e-2),
            "RGB -> HSV, piecewise by the largest channel, hue wrapping round at red; photo pixels"),
    Untuned("haversine", "kernel", haversine_km,
            {"lat1": (-90.0, 90.0), "lon1": (-180.0, 180.0), "lat2": (-90.0, 90.0), "lon2": (-180.0, 180.0)},
            haversine_inputs, Tolerance(abs=0.1, rel=0.01),
            "Great-circle distance (km), date-line wrap; city trips of a few km, some flights"),
    Untuned("rgb_to_lab", "kernel", rgb_to_lab, {"r": (0, 255), "g": (0, 255), "b": (0, 255)},
            rgb_to_lab_inputs, Tolerance(abs=0.5),
            "8-bit sRGB -> CIELab: gamma and cube-root curves with linear toes; half a Lab unit per channel"),
    Untuned("damped_oscillator", "kernel", damped_position,
            {"x0": (-0.1, 0.1), "v0": (-1.0, 1.0), "omega": (1.0, 30.0), "zeta": (0.0, 2.0), "t": (0.0, 2.0)},
            damped_inputs, Tolerance(abs=1e-3, rel=0.01),
            "Damped spring position: under/critically/over-damped closed forms; 1 mm or 1%"),
    Untuned("bracket_tax", "table", bracket_tax,
            {"income": (1000.0, 2_000_000.0), "status": ["single", "married", "head"], "dependents": (0, 6)},
            bracket_tax_inputs, CENTS,
            "Income tax: deduction, seven brackets x 3 statuses (loop), child credit phase-out, cents"),
    Untuned("parcel_tariff", "table", parcel_tariff,
            {"weight_kg": (0.05, 35.0), "length_cm": (1.0, 150.0), "width_cm": (1.0, 100.0),
             "height_cm": (1.0, 80.0), "zone": ["Z1", "Z2", "Z3", "Z4"], "signature": [True, False]},
            parcel_inputs, CENTS,
            "Parcel price: volumetric weight, bands x 4 zones (loop), per-kg above, oversize, fuel; raises > 31.5 kg"),
    Untuned("electricity_bill", "table", electricity_bill,
            {"kwh": (0.0, 20000.0), "days": (28, 32), "tariff": ["residential", "business", "green"]},
            electricity_inputs, CENTS,
            "Electricity bill: block rates per tariff scaled by days (loop), standing charge, rebate, tax; "
            "raises on implausible home reads"),
    Untuned("kepler", "solver", kepler, {"mean_anomaly": (0.0, TWO_PI), "eccentricity": (0.0, 0.98)},
            kepler_inputs, Tolerance(abs=1e-3),
            "Kepler's equation E - e sin E = M by Newton iterations (radians, 1e-3)"),
    Untuned("larger_root", "solver", larger_root, {"a": (0.1, 5.0), "b": (-10.0, 10.0), "c": (-20.0, 5.0)},
            larger_root_inputs, Tolerance(abs=1e-2, rel=0.01),
            "Larger root of a quadratic, stable formula; no real root raises"),
    Untuned("loan_apr", "solver", loan_apr,
            {"principal": (1000.0, 50000.0), "payment": (20.0, 3000.0), "months": (12, 84)},
            loan_apr_inputs, Tolerance(abs=0.01, rel=0.0),
            "APR (%) from principal, payment and term by bisection; non-repaying or >120% raises"),
    Untuned("bmi_category", "classifier", bmi_category,
            {"weight_kg": (30.0, 200.0), "height_cm": (140.0, 210.0), "age": (10, 100), "sex": ["F", "M"]},
            bmi_inputs, EXACT, "BMI category with older-adult and sex adjustments; minors raise",
            _label(BMI_CATEGORIES, raises=True)),
    Untuned("credit_decision", "classifier", credit_decision,
            {"income": (10000.0, 400000.0), "monthly_debt": (0.0, 8000.0), "score": (300, 850),
             "years_employed": (0.0, 40.0), "amount": (1000.0, 100000.0)},
            credit_inputs, EXACT, "Credit decision: score floor, DTI with the new instalment, tenure -> 4 labels",
            _label(CREDIT_DECISIONS, raises=False)),
    Untuned("triage_level", "classifier", triage_level,
            {"resp_rate": (4, 50), "spo2": (70, 100), "systolic": (50, 260), "pulse": (25, 200),
             "temp_c": (33.0, 42.0), "alert": [True, False]},
            triage_inputs, EXACT, "Early-warning score: points per vital sign, total and red flags -> 4 levels",
            _label(TRIAGE_LEVELS, raises=False)),
]

FUNCTIONS: dict[str, Untuned] = {entry.name: entry for entry in _ENTRIES}

__all__ = ["CENTS", "EXACT", "FUNCTIONS", "Untuned"]
