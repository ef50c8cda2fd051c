"""placeholder"""
from ._swap import Disagreement, SwapStats, Swapped, swap

__all__: list[str] = [
    "Disagreement",
    "SwapStats",
    "Swapped",
    "swap",
]
