"""Hypothesis strategies that draw kwargs dicts from a schema's domain.

Property tests and the verifier's search draw from here, so the domain has one definition.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from ._schema import Field, Schema
from ._validation import bad_argument


def _field_strategy(item: Field) -> st.SearchStrategy[Any]:
    if item.kind == "real":
        return st.floats(min_value=float(item.low), max_value=float(item.high),  # type: ignore[arg-type]
                         allow_nan=False, allow_infinity=False)
    if item.kind == "integer":
        return st.integers(min_value=int(item.low), max_value=int(item.high))  # type: ignore[arg-type]
    if item.kind == "boolean":
        return st.booleans()
    if item.kind == "categorical":
        return st.sampled_from(list(item.categories))
    element = st.floats(min_value=float(item.low), max_value=float(item.high),  # type: ignore[arg-type]
                        allow_nan=False, allow_infinity=False)
    vector = st.lists(element, min_size=item.width, max_size=item.width)
    if item.container == "tuple":
        return vector.map(tuple)
    if item.container == "ndarray":
        return vector.map(lambda values: np.asarray(values, dtype=float))
    return vector


def strategy(schema: Schema, *, widen: float = 0.0) -> st.SearchStrategy[dict[str, Any]]:
    """A strategy of kwargs dicts inside `schema`'s domain; `widen` stretches numeric ranges
    by that share of their span on each side, to probe beyond what was observed."""
    if not isinstance(schema, Schema):
        raise bad_argument("schema", type(schema).__name__, "must be a probes.Schema",
                           "Build one with Schema.infer(fn, traces) or Schema.from_function(fn, ...)")
    if widen < 0:
        raise bad_argument("widen", widen, "must be >= 0", "Pass 0.1 to widen ranges by 10% each side")
    widened = schema.widen(widen) if widen else schema
    return st.fixed_dictionaries({item.name: _field_strategy(item) for item in widened.fields})
