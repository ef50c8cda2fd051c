"""The output warp: a relative tolerance over outputs spanning decades makes the error relative."""

from __future__ import annotations

import math

import numpy as np
import pytest

from probes import OutputSpec, Tolerance
from replace._output_encoding import OutputEncoder

SPEC = OutputSpec("real", python_type="float")


def _prices(n: int = 2000) -> np.ndarray:
    """Option-price-like outputs: most between 0.01 and 0.25, a tail of tiny ones, a few zeros
    (neither skewed nor heavy-tailed: the old skewness rule left them unwarped)."""
    rng = np.random.default_rng(0)
    big = rng.uniform(0.01, 0.25, int(0.8 * n))
    tiny = 10.0 ** rng.uniform(-13, -2, n - len(big) - 10)
    return np.concatenate([big, tiny, np.zeros(10)])


def test_prices_over_decades_get_a_log_like_warp_scaled_by_the_tolerance():
    values = _prices()
    out = OutputEncoder.fit(SPEC, list(values), [None] * len(values), Tolerance(abs=1e-16, rel=1e-3))
    assert out.warp == "asinh" and out.scale == pytest.approx(1e-13)
    z = out.encode_values(values[:, None])
    np.testing.assert_allclose(out.decode_values(z)[:, 0], values, rtol=1e-9, atol=1e-30)


def test_an_encoded_error_is_relative_across_decades():
    values = _prices()
    out = OutputEncoder.fit(SPEC, list(values), [None] * len(values), Tolerance(abs=1e-16, rel=1e-3))
    probe = np.array([[1e-11], [1e-6], [1e-3], [0.2]])
    shifted = out.decode_values(out.encode_values(probe) + 1e-3)
    relative = (shifted - probe)[:, 0] / probe[:, 0]
    # the same network error costs the same share of the price, whatever its size
    assert relative.max() / relative.min() < 1.05
    plain = OutputEncoder.fit(SPEC, list(values), [None] * len(values), Tolerance(abs=1e-4, rel=0.0))
    assert plain.warp == "none"
    shifted = plain.decode_values(plain.encode_values(probe) + 1e-3)
    relative = (shifted - probe)[:, 0] / probe[:, 0]
    assert relative.max() / relative.min() > 1e6  # unwarped: tiny prices lose all relative accuracy


def test_outputs_crossing_zero_evenly_stay_unwarped():
    # a relative tolerance on values spread evenly over [-1, 1]: a warp would put a cliff at 0
    values = np.random.default_rng(1).uniform(-1, 1, 2000)
    out = OutputEncoder.fit(SPEC, list(values), [None] * len(values), Tolerance(abs=1e-6, rel=1e-3))
    assert out.warp == "none"


def test_default_like_tolerance_keeps_outputs_unwarped():
    # fit's default tolerance (1% relative, floor 0.1% of the largest) puts c at a tenth of the range
    values = _prices()
    out = OutputEncoder.fit(SPEC, list(values), [None] * len(values), Tolerance(abs=1e-3 * values.max(), rel=0.01))
    assert out.warp == "none"


def decay(t: float) -> float:
    """Spans 13 decades over its domain: a relative tolerance needs the warp."""
    return math.exp(-10.0 * t)


def test_fitted_surrogate_is_relatively_accurate_over_decades_and_single_calls_match_batches():
    from probes import Schema
    from replace import fit

    schema = Schema.from_function(decay, t=(0.0, 3.0))
    s = fit(decay, schema=schema, tolerance=Tolerance(abs=1e-15, rel=1e-2), budget_s=4, seed=0, progress=False,
            budget_clock="work", ensemble_size=1)
    assert s.output_encoder.warp == "asinh"
    t = np.linspace(0.0, 2.5, 101)
    batch = np.asarray(s.predict_batch({"t": t}), dtype=float)
    expected = np.exp(-10.0 * t)
    relative = np.abs(batch - expected) / expected
    # unwarped, a fit is blind below ~1e-4 of the largest value: here exp(-25) = 1.4e-11 is still
    # answered to a few percent
    assert np.median(relative) < 0.02 and relative.max() < 0.2, relative.max()
    singles = np.array([s(t=float(v)) for v in t[::10]])
    # batches run in float32: through sinh, its rounding is a relative 1e-6-ish of the value
    np.testing.assert_allclose(singles, batch[::10], rtol=2e-5)
