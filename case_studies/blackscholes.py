"""AxBench blackscholes: European option price by the Black-Scholes formula (PARSEC kernel).

The legacy function is the region AxBench marks approximable (`#pragma parrot(input ...)` to
`#pragma parrot(output ...)`), i.e. `BlkSchlsEqEuroNoDiv` with its `CNDF`, transcribed line by
line from

    he-actlab/AxBench  applications/blackscholes/src/blackscholes.c   (commit b118b795)

including the polynomial normal CDF (Hull; k = 0.2316419, a1..a5) and the put branch through
`1 - N(d)`. Differences from the C source, on purpose and small:
- C computes in `float` (fptype float); Python floats are doubles, so our prices are the exact
  double-precision values of the same formula (AxBench's own reference outputs carry float32
  noise around 1e-8, e.g. a price of -1.2e-08 for a deep out-of-the-money call).
- The C caller divides spot and strike by DIVIDE = 120 before calling the kernel; the kernel's
  inputs (and so ours) are those divided prices, and its output is the price / 120.

Inputs (`generate_inputs`): AxBench feeds PARSEC's option table (inputgen.c cycles the 1000
rows of optionData.txt). The table is not readable here (the data files are Git LFS
pointers), so the rows were reconstructed from AxBench's own training sample
`applications/blackscholes/nn.configs/6_2_1/epochs_1000/run_1/aggregated_sample.fann`
(500 kernel inputs as the kernel saw them): spot 100 or 50 (/120), strikes 90/100/110 and
41.25/50/60.75, rates {0.0275, 0.05, 0.0725, 0.0825, 0.10}, volatilities 0.05..0.65, times
0.05..1.0 years, calls and puts, plus Hull's two textbook options (42/40 and 60/65). It is a
discrete table: AxBench trains and tests on draws from the same few hundred rows.
`generate_inputs(..., kind="continuous")` draws uniformly over the same ranges instead, for
a test of generalisation that AxBench does not make.

AxBench's quality metric (`applications/blackscholes/scripts/qos.py`): per option
`e = min(1, |orig - approx| / |orig|)`, with `e = 1` when `orig == 0` or either term is NaN;
the score is the mean of `e` over all options (a fraction; papers print it as a percent).
Rows whose price is exactly 0.0 (6 of the 820 table rows: deep out-of-the-money options whose
`1 - N(d)` rounds to 0) score 1 for any candidate, the original included: a floor of about
0.7-0.9% under every AxBench error (`axbench_floor` in bench/fidelity.py). In C's float the
floor is higher still, since more rows round to 0 or to noise.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from probes import Tolerance

from ._axbench import clipped_relative_error

NAME = "blackscholes"
DESCRIPTION = "AxBench/PARSEC Black-Scholes European option price with the polynomial normal CDF"

DIVIDE = 120.0  # blackscholes.c: sptprice[i] = data[i].s / DIVIDE; strike likewise
inv_sqrt_2xPI = 0.39894228040143270286


def CNDF(InputX: float) -> float:
    """Cumulative normal distribution (Hull, section 11.8), as in AxBench's blackscholes.c."""
    # Check for negative value of InputX
    if InputX < 0.0:
        InputX = -InputX
        sign = 1
    else:
        sign = 0

    xInput = InputX

    # Compute NPrimeX term common to both four & six decimal accuracy calcs
    expValues = math.exp(-0.5 * InputX * InputX)
    xNPrimeofX = expValues
    xNPrimeofX = xNPrimeofX * inv_sqrt_2xPI

    xK2 = 0.2316419 * xInput
    xK2 = 1.0 + xK2
    xK2 = 1.0 / xK2
    xK2_2 = xK2 * xK2
    xK2_3 = xK2_2 * xK2
    xK2_4 = xK2_3 * xK2
    xK2_5 = xK2_4 * xK2

    xLocal_1 = xK2 * 0.319381530
    xLocal_2 = xK2_2 * (-0.356563782)
    xLocal_3 = xK2_3 * 1.781477937
    xLocal_2 = xLocal_2 + xLocal_3
    xLocal_3 = xK2_4 * (-1.821255978)
    xLocal_2 = xLocal_2 + xLocal_3
    xLocal_3 = xK2_5 * 1.330274429
    xLocal_2 = xLocal_2 + xLocal_3

    xLocal_1 = xLocal_2 + xLocal_1
    xLocal = xLocal_1 * xNPrimeofX
    xLocal = 1.0 - xLocal

    OutputX = xLocal

    if sign:
        OutputX = 1.0 - OutputX

    return OutputX


def blackscholes(sptprice: float, strike: float, rate: float, volatility: float, otime: float, otype: int) -> float:
    """BlkSchlsEqEuroNoDiv: price of a European option (otype 0 = call, 1 = put), no dividend."""
    xRiskFreeRate = rate
    xVolatility = volatility
    xTime = otime

    xSqrtTime = math.sqrt(xTime)

    logValues = math.log(sptprice / strike)

    xLogTerm = logValues

    xPowerTerm = xVolatility * xVolatility
    xPowerTerm = xPowerTerm * 0.5

    xD1 = xRiskFreeRate + xPowerTerm
    xD1 = xD1 * xTime
    xD1 = xD1 + xLogTerm

    xDen = xVolatility * xSqrtTime
    xD1 = xD1 / xDen
    xD2 = xD1 - xDen

    d1 = xD1
    d2 = xD2

    NofXd1 = CNDF(d1)
    NofXd2 = CNDF(d2)

    FutureValueX = strike * (math.exp(-(rate) * (otime)))
    if otype == 0:
        OptionPrice = (sptprice * NofXd1) - (FutureValueX * NofXd2)
    else:
        NegNofXd1 = 1.0 - NofXd1
        NegNofXd2 = 1.0 - NofXd2
        OptionPrice = (FutureValueX * NegNofXd2) - (sptprice * NegNofXd1)

    return OptionPrice


FUNCTION = blackscholes

# --- AxBench's option table, reconstructed (see module docstring) ----------------------------
# (spot, strike) pairs in dollars before the /120 of the C driver.
_SPOT_STRIKE = [(100.0, 90.0), (100.0, 100.0), (100.0, 110.0), (50.0, 41.25), (50.0, 50.0), (50.0, 60.75)]
# Block A: rates above 2.75% with a 3 x 3 grid of volatility x time.
_RATES_A = [0.05, 0.0725, 0.0825, 0.10]
_VOLS = [0.10, 0.25, 0.50]
_TIMES_A = [0.10, 0.50, 1.00]
# Block B: rate 2.75% with a finer time grid, plus five (volatility, time) pairs off the grid.
_TIMES_B = [0.05, 0.10, 0.15, 0.25, 0.35, 0.40, 0.50, 0.75, 1.00]
_EXTRA_B = [(0.05, 0.05), (0.15, 0.15), (0.35, 0.35), (0.45, 0.40), (0.65, 0.75)]
# Hull's textbook options that PARSEC's table also carries (spot, strike, rate, vol, time).
_HULL = [(42.0, 40.0, 0.10, 0.20, 0.50), (60.0, 65.0, 0.08, 0.30, 0.25)]


def _option_table() -> list[tuple[float, float, float, float, float, int]]:
    rows: list[tuple[float, float, float, float, float, int]] = []
    for s, k in _SPOT_STRIKE:
        for otype in (0, 1):
            for r in _RATES_A:
                for v in _VOLS:
                    for t in _TIMES_A:
                        rows.append((s, k, r, v, t, otype))
            for v in _VOLS:
                for t in _TIMES_B:
                    rows.append((s, k, 0.0275, v, t, otype))
            for v, t in _EXTRA_B:
                rows.append((s, k, 0.0275, v, t, otype))
    for s, k, r, v, t in _HULL:
        for otype in (0, 1):
            rows.append((s, k, r, v, t, otype))
    return rows


OPTION_TABLE = _option_table()

# The domain AxBench's inputs span (kernel units: spot and strike already divided by 120).
SPECS: dict[str, Any] = {
    "sptprice": (0.35, 0.8334),
    "strike": (0.3333, 0.9167),
    "rate": (0.0275, 0.10),
    "volatility": (0.05, 0.65),
    "otime": (0.05, 1.0),
    "otype": [0, 1],
}

# AxBench scores every option by its relative error, with no absolute floor: a 1e-9 premium
# counts as much as a 0.2 one. So the tolerance is relative, 0.1% of the price (a tenth of the
# 1% mean error targeted), with an absolute floor only at the formula's own double-precision
# rounding noise (eps x strike, ~1e-16 in units of $120): below it even the original's digits
# are noise (six table rows whose exact price is 1e-20..1e-25 come out as 0.0). The floor also
# sets the output warp, asinh(price / 1e-13) (scale abs / rel), so the network's error is
# relative over the 12 decades the prices span. The former abs=1e-4 (1.2 cents, a desk's quote
# step) let the fit ignore every option under a cent: AxBench error 6.4% against 2.6% now
# (seed 0, 45 s on the work clock; `python bench/fidelity.py --only blackscholes --clock work`).
TOLERANCE = Tolerance(abs=1e-16, rel=1e-3)

# Options the case study passes to `replace.fit`. The formula is multiplicative in spot, strike,
# rate, volatility and time (it works on log(S/K) and sqrt(T)), so log(x) inputs suit it:
# AxBench error 1.28/1.34/2.11% -> 1.15/1.22/1.16% at seeds 0/1/2 with rounds off
# (`python bench/axbench_study.py --variants r0 r0_logx --seed S`, bench/results/axbench_study.json).
FIT_OPTIONS: dict[str, Any] = {"log_inputs": "positive"}


def generate_inputs(n: int, seed: int = 0, *, kind: str = "axbench") -> list[dict]:
    """`n` kernel inputs: rows of AxBench's option table (default) or uniform over its ranges."""
    rng = np.random.default_rng(seed)
    out: list[dict] = []
    if kind == "axbench":
        idx = rng.integers(0, len(OPTION_TABLE), size=n)
        for i in idx:
            s, k, r, v, t, otype = OPTION_TABLE[int(i)]
            out.append({
                "sptprice": s / DIVIDE, "strike": k / DIVIDE, "rate": r,
                "volatility": v, "otime": t, "otype": otype,
            })
        return out
    if kind == "continuous":
        for _ in range(n):
            row = {}
            for name in ("sptprice", "strike", "rate", "volatility", "otime"):
                lo, hi = SPECS[name]
                row[name] = float(rng.uniform(lo, hi))
            row["otype"] = int(rng.integers(0, 2))
            out.append(row)
        return out
    raise ValueError(f"kind={kind!r} : must be 'axbench' or 'continuous'")


def axbench_error(expected: Sequence[float], actual: Sequence[float]) -> float:
    """AxBench qos.py for blackscholes: mean over options of min(1, |o - a| / |o|), 1 for o == 0 or NaN."""
    orig = np.asarray(expected, dtype=float).ravel()
    appx = np.asarray(actual, dtype=float).ravel()
    if orig.shape != appx.shape:
        raise ValueError(f"expected has {orig.size} values, actual {appx.size} : lengths must match")
    if orig.size == 0:
        raise ValueError("expected is empty : need at least one option")
    total = 0.0
    for o, a in zip(orig.tolist(), appx.tolist()):
        total += clipped_relative_error(abs(o - a), abs(o))
    return total / orig.size


# Figures published for the NPU on this benchmark. Recalled from the papers' tables; the
# paper text was not available to re-check here, so `verified` is False.
PUBLISHED = {
    "metric": "mean relative error (AxBench qos.py), fraction",
    "topology": "6 -> 8 -> 8 -> 1",
    "npu_error": None,  # the per-benchmark CPU-NPU error is shown in a figure, not a table
    "sources": [
        "Yazdanbakhsh et al., 'AxBench: A Multiplatform Benchmark Suite for Approximate Computing', "
        "IEEE Design & Test 34(2), 2017, Table 1 (benchmark, topology 6->8->8->1, metric)",
        "St. Amant et al., 'General-Purpose Code Acceleration with Limited-Precision Analog Computation', "
        "ISCA 2014, Table 1 (blackscholes, application-level error)",
    ],
    "axbench_search_space": "max 4 layers, max 8 neurons per layer "
                            "(he-actlab/AxBench applications/blackscholes/blackscholes.json)",
    "verified": False,
}


def run(*, store: Any = None, out: str = "neuroswap_report", quick: bool = False, progress: bool = False,
        seed: int = 0) -> dict:
    """Record -> fit -> verify -> mine -> refit -> distill -> report, and the result row.

    AxBench's kernel is smooth but for the call/put switch; a few thousand table rows repeat.
    """
    import sys

    from ._flow import run_study

    return run_study(sys.modules[__name__], store=store, out=out, quick=quick, progress=progress, seed=seed)
