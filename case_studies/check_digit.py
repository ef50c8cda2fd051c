"""The honest failure: an ISO 7064 MOD 11-2 check character for an 8-digit account number.

Why a neural surrogate does not learn this function, and why neuroswap should say so rather
than ship one:
- No locality. Changing any one digit changes the check character, and by an amount that
  depends on the digit's position (its weight 2^k mod 11) and on every other digit through the
  running remainder. Neighbouring inputs (n and n + 1) have check characters that differ by a
  fixed step modulo 11; as a function of the number read as a real value it is a saw-tooth with
  ~10^8 teeth, which no smooth network fits from samples.
- No partial credit. The output is a label ("0".."9" or "X"); a surrogate that is "close" is
  simply wrong, and a random guess is right 1 time in 11 (the X comes out 1 time in 11 too).
- It is already cheap: a dozen integer operations. Even a perfect network would be slower.
The case study exists so that `verify` reports the failure plainly (agreement near 1/11) and
the flow recommends keeping the original.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from probes import Tolerance

NAME = "check_digit"
DESCRIPTION = "ISO 7064 MOD 11-2 check character of an 8-digit account number (not learnable)"

LOWEST = 10_000_000
HIGHEST = 99_999_999


def check_digit(account_number: int) -> str:
    """Check character ("0".."9" or "X") appended to an 8-digit account number."""
    if account_number < LOWEST or account_number > HIGHEST:
        raise ValueError("account number must have exactly 8 digits")
    digits = str(account_number)
    total = 0
    for ch in digits:
        total = (total + int(ch)) * 2 % 11
    remainder = total % 11
    result = (12 - remainder) % 11
    if result == 10:
        return "X"
    return str(result)


FUNCTION = check_digit

SPECS: dict[str, Any] = {
    "account_number": (LOWEST, HIGHEST),
}

# A check character is right or wrong; there is nothing to tolerate.
TOLERANCE = Tolerance(abs=0.0, rel=0.0)


def generate_inputs(n: int, seed: int = 0) -> list[dict]:
    """`n` account numbers, uniform over the 8-digit range (account numbers are issued densely)."""
    rng = np.random.default_rng(seed)
    return [{"account_number": int(v)} for v in rng.integers(LOWEST, HIGHEST + 1, size=n)]


def run(*, store: Any = None, out: str = "neuroswap_report", quick: bool = False, progress: bool = False,
        seed: int = 0) -> dict:
    """Record -> fit -> verify -> mine -> refit -> distill -> report, and the result row.

    The honest failure: verify must say no (see FAILURE.md).
    """
    import sys

    from ._flow import run_study

    return run_study(sys.modules[__name__], store=store, out=out, quick=quick, progress=progress, seed=seed,
                     budget_s=None if quick else 30.0, n_traces=None if quick else 10_000)
