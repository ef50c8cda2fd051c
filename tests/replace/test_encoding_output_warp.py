"""The output warp: a relative tolerance over outputs spanning decades makes the error relative."""

from __future__ import annotations

import numpy as np
import pytest

from probes import OutputSpec, Tolerance
from replace._encoding import OutputEncoder

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
