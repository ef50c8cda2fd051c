"""Does the surrogate lean on the same arguments as the original?

A surrogate can match outputs on the test distribution while relying on an argument the
original never reads (a leak, or a correlation in the data); comparing attributions made with
the same black-box method on both, apples to apples, shows it before it bites.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from probes import Schema
from probes._validation import bad_argument, check_number

from ._attributions import Attribution, attribute, attribute_blackbox, SHAP_MAX
from ._data import as_columns, is_surrogate, schema_of

#: an argument "matters" when its importance is at least this share of the largest importance
#: under the same explainer; below it, the function is said to ignore the argument.
RELIANCE_THRESHOLD = 0.05


@dataclass(frozen=True, eq=False)
class AttributionComparison:
    """Per argument: importance under the original and under the surrogate, rank agreement,
    and the arguments one of them relies on while the other ignores."""

    feature_names: tuple[str, ...]
    original: Attribution = field(repr=False)
    surrogate: Attribution = field(repr=False)
    surrogate_gradient: Attribution | None = field(repr=False, default=None)
    spearman: float | None = None
    threshold: float = RELIANCE_THRESHOLD
    surrogate_only: tuple[str, ...] = ()  # the surrogate relies on it, the original ignores it
    original_only: tuple[str, ...] = ()  # the original relies on it, the surrogate ignores it

    @property
    def flagged(self) -> tuple[str, ...]:
        return self.surrogate_only + self.original_only

    def table(self) -> list[dict[str, Any]]:
        o, s = self.original.importance(), self.surrogate.importance()
        g = self.surrogate_gradient.importance() if self.surrogate_gradient is not None else {}
        o_max, s_max = max(o.values(), default=0.0) or 1.0, max(s.values(), default=0.0) or 1.0
        rows = []
        for name in self.feature_names:
            rows.append({"argument": name, "original": o[name], "surrogate": s[name],
                         "original_share": o[name] / o_max, "surrogate_share": s[name] / s_max,
                         "surrogate_gradient": g.get(name),
                         "flag": ("surrogate only" if name in self.surrogate_only
                                  else "original only" if name in self.original_only else "")})
        return rows

    def to_markdown(self) -> str:
        lines = [f"Attributions by {self.original.method} on both (importance = mean |value|; an argument is "
                 f"ignored below {self.threshold:.0%} of the largest). Spearman rank correlation: "
                 f"{'n/a' if self.spearman is None else f'{self.spearman:.3f}'}.", "",
                 "| argument | original | surrogate | surrogate (gradient) | flag |", "|---|---|---|---|---|"]
        for r in self.table():
            grad = "" if r["surrogate_gradient"] is None else f"{r['surrogate_gradient']:.4g}"
            lines.append(f"| {r['argument']} | {r['original']:.4g} | {r['surrogate']:.4g} | {grad} | {r['flag']} |")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"spearman": self.spearman, "threshold": self.threshold, "surrogate_only": list(self.surrogate_only),
                "original_only": list(self.original_only), "table": self.table(),
                "method": self.original.method}


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman rank correlation (average ranks for ties); None when either side is constant."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    rho = spearmanr(a, b).statistic
    return None if not np.isfinite(rho) else float(rho)


def compare_attributions(original: Callable[..., Any], surrogate: Any, inputs: Any, *,
                         schema: Schema | None = None, method: str = "auto", gradient: bool = True,
                         threshold: float = RELIANCE_THRESHOLD, seed: int = 0,
                         max_background: int = 50, ig_steps: Any = None) -> AttributionComparison:
    """Attribute `original` and `surrogate` on the same `inputs` with the same black-box method
    ("shap" up to 15 argument slots, else "ablation"), plus integrated gradients on the
    surrogate's network when `gradient`; flag arguments used by one and ignored by the other."""
    check_number("threshold", threshold, low=0, low_inclusive=False, high=1,
                 fix="Pass a share of the largest importance, e.g. 0.05")
    schema = schema_of(surrogate if is_surrogate(surrogate) else original, schema)
    columns = as_columns(inputs, schema)
    if method == "auto":
        slots = sum(f.width for f in schema.fields)
        method = "shap" if slots <= SHAP_MAX else "ablation"
    if method not in ("shap", "ablation"):
        raise bad_argument("method", method, "must be a black-box method usable on both: 'shap' or 'ablation'")
    on_original = attribute_blackbox(original, columns, schema, method=method, seed=seed,
                                     max_background=max_background)
    on_surrogate = attribute_blackbox(surrogate, columns, schema, method=method, seed=seed,
                                      max_background=max_background)
    grad = None
    if gradient and is_surrogate(surrogate):
        try:
            options = {} if ig_steps is None else {"ig_steps": ig_steps}
            grad = attribute(surrogate, columns, method="integrated_gradients", schema=schema, seed=seed, **options)
        except Exception:  # a surrogate without a usable network: the black-box comparison stands
            grad = None
    names = on_original.feature_names
    o = np.array([on_original.importance()[n] for n in names])
    s = np.array([on_surrogate.importance()[n] for n in names])
    relies_o = o >= threshold * (o.max() if o.size else 0.0)
    relies_s = s >= threshold * (s.max() if s.size else 0.0)
    if o.max(initial=0.0) == 0:
        relies_o[:] = False
    if s.max(initial=0.0) == 0:
        relies_s[:] = False
    surrogate_only = tuple(n for n, ro, rs in zip(names, relies_o, relies_s) if rs and not ro)
    original_only = tuple(n for n, ro, rs in zip(names, relies_o, relies_s) if ro and not rs)
    return AttributionComparison(names, on_original, on_surrogate, grad, spearman(o, s), threshold,
                                 surrogate_only, original_only)
