"""Domain margins: a schema inferred from traces, widened a little past what was recorded.

A range inferred from traces is the sample's minimum and maximum, so fresh production calls
fall just outside it at a rate of about (fields x 2) / traces: a surrogate fitted on 3,000
uniform traces in six [0, 1] inputs refused ~0.4% of calls. `fit` therefore stretches each
real or integer range it infers by `margin` of its span on each side; its oracle rows are drawn
from the widened schema, so the band is labelled by the function itself, not extrapolated.

Rules: a field the user declared is never widened (it is their stated domain); a range never
crosses a sign the data never crossed (all recorded values >= 0: the low end stays >= 0; all
<= 0: the high end stays <= 0); integer ranges widen by rounding outwards; a range of one
value (no span to take a share of) stays as it is. Arguments encoded as log(x) (`log_inputs`)
keep a positive low end: theirs widens by `margin` of the span in log space.
`Schema.infer` itself is unchanged (verification keeps the recorded domain).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable, Iterable

from probes import Schema, Traces
from probes._schema import Field
from probes._validation import bad_argument

#: share of a range's span added on each side when `fit` infers the schema and may call the oracle
DEFAULT_MARGIN = 0.05
#: the largest margin accepted (a whole span on each side is already a different domain)
MAX_MARGIN = 1.0


def check_margin(value: Any, name: str = "domain_margin") -> float:
    """`value` as a float in [0, MAX_MARGIN], or an InvalidArgument naming `name`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)) \
            or not 0.0 <= float(value) <= MAX_MARGIN:
        raise bad_argument(name, value, f"must be a number in [0, {MAX_MARGIN:g}] (a share of each range's span)",
                           f"Pass {name}=0.05 to widen inferred ranges by 5% each side, or {name}=0 to keep "
                           "the recorded ranges")
    return float(value)


def resolve_margin(option: float | None, *, oracle: bool) -> float:
    """The margin `fit` applies: the option when given, else DEFAULT_MARGIN with an oracle to
    label the band and 0 without one (traces alone say nothing about the band)."""
    if option is None:
        return DEFAULT_MARGIN if oracle else 0.0
    return check_margin(option)


def widen_field(item: Field, margin: float, *, keep_positive: bool = False) -> Field:
    """`item` with its range stretched by `margin` of its span on each side, by the rules above
    (reals and integers only; other kinds are returned as they are)."""
    if item.kind not in ("real", "integer") or margin <= 0:
        return item
    low, high = float(item.low), float(item.high)  # type: ignore[arg-type]
    span = high - low
    if not span > 0 or not math.isfinite(span):
        return item
    new_low, new_high = low - margin * span, high + margin * span
    if low >= 0:
        new_low = max(new_low, 0.0)
    if high <= 0:
        new_high = min(new_high, 0.0)
    if keep_positive and low > 0:
        new_low = max(new_low, low * (low / high) ** margin)  # margin of the span of log(x)
    if not (math.isfinite(new_low) and math.isfinite(new_high)):
        return item
    if item.kind == "integer":
        int_low, int_high = math.floor(new_low), math.ceil(new_high)
        if keep_positive and low > 0:
            int_low = max(int_low, 1)
        return replace(item, low=int_low, high=int_high)
    return replace(item, low=new_low, high=new_high)


def with_margins(schema: Schema, margin: float, *, declared: Iterable[str] = (),
                 keep_positive: Iterable[str] = ()) -> Schema:
    """`schema` with every real/integer range widened by `margin`, except the `declared` fields."""
    margin = check_margin(margin, "margin")
    if margin == 0:
        return schema
    declared = set(declared)
    positive = set(keep_positive)
    fields = tuple(item if item.name in declared else widen_field(item, margin, keep_positive=item.name in positive)
                   for item in schema.fields)
    return replace(schema, fields=fields)


def infer_with_margins(fn: Callable[..., Any], traces: Traces, *, margin: float = DEFAULT_MARGIN,
                       keep_positive: Iterable[str] = (), **overrides: Any) -> Schema:
    """`Schema.infer(fn, traces, **overrides)` with the inferred ranges widened by `margin`;
    the arguments given in `overrides` are declared, so they stay exactly as given."""
    schema = Schema.infer(fn, traces, **overrides)
    return with_margins(schema, margin, declared=overrides, keep_positive=keep_positive)


def log_input_names(option: Any, schema: Schema) -> tuple[str, ...]:
    """The arguments a `log_inputs` option may encode as log(x), to keep positive when widening
    ("positive": every real/integer one; a tuple: its names; anything else is left to `fit`'s
    own check of the option)."""
    if option == "positive":
        return tuple(f.name for f in schema.fields if f.kind in ("real", "integer"))
    if isinstance(option, (tuple, list)):
        return tuple(name for name in option if isinstance(name, str))
    return ()
