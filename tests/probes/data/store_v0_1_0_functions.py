"""The functions recorded into store_v0_1_0.db (names in the store: store_v0_1_0_functions:...)."""

from __future__ import annotations


def shipping_fee(weight, distance=100.0, express=False):
    if weight < 0:
        raise ValueError(f"weight={weight} must be >= 0")
    fee = 2.5 + 0.4 * weight + 0.01 * distance
    return fee * 1.8 if express else fee


def basket_total(prices, discount=0.0, currency="EUR"):
    return (round(sum(prices) * (1.0 - discount), 2), currency)


def odd_values(mapping, array, secret, *, when, amount, raw, tags, c, scalar):
    return {"n": len(mapping), "shape": array.shape, "sum": array.sum(), "when": when.date()}
