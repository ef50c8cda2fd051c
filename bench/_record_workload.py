"""Workloads for bench/record_overhead.py, in their own module because MonkeyType ignores
calls of functions defined in `__main__`."""

from __future__ import annotations


def shipping_fee(weight, distance=100.0, express=False):
    """A small rule-based function: three scalar arguments, one branch."""
    fee = 2.5 + 0.4 * weight + 0.01 * distance
    return fee * 1.8 if express else fee


def basket_total(prices, discount=0.0, currency="EUR"):
    """A function taking a list (the recorder must snapshot it)."""
    return round(sum(prices) * (1.0 - discount), 2)


def run_scalar(fn, n):
    for i in range(n):
        fn(1.5, 250.0)


def run_list(fn, n):
    prices = [1.0, 2.5, 3.25, 4.0]
    for i in range(n):
        fn(prices, 0.1)


WORKLOADS = {
    "scalar_args": (shipping_fee, run_scalar),
    "list_arg": (basket_total, run_list),
}
