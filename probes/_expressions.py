"""Exact expressions for the rows of one branch path: find them, keep them as data, emit Python.

Rule-based legacy code is exact arithmetic on every branch path (fee tables, brackets, VAT by
country), so a path's rows are usually reproduced to the last digit by a short expression; a
surrogate (replace) and distilled rules (explain) both want that expression rather than a smooth
approximation. The fitter searches a small grammar from simple to complex and accepts only what
reproduces EVERY row: to `rtol` where the output is not rounded, after the output's rounding
(its quantum, e.g. 0.01) where it is. It returns None when nothing does (the caller keeps a
neural expert there).

Grammar, in the order it is searched:
  1. a sum of terms, each `coefficient * monomial`: the coefficient a constant or a table over
     one or two categorical/boolean arguments, the monomial a product of numeric arguments of
     degree <= 3 (`net * qty * vat[country, category]` is one term); constant, tables, affine,
     then products, degree by degree;
  2. the same with a step feature `floor/ceil((x - x0) / w)` of one numeric argument as one more
     factor (per started unit: `2.5 * math.ceil(minutes / 15)`), w and x0 read off the rows where
     the output steps, else usual units counted from the path's lower edge;
  3. `min(E, hi)`, `max(E, lo)`, `min(max(E, lo), hi)` of 1-2 with constant bounds (the repeated
     extremes of the outputs);
  each possibly wrapped in a rounding to the output's quantum (Python's `round`, half-up, floor,
  ceil; products tried in the orders code writes them, as ties depend on it).
Not covered: tables over three or more arguments, bounds that are tables or expressions, steps
of several arguments at once, divisions by arguments, powers above 3, exp/log, Enum categories.
Coefficients come from least squares in float64, are snapped to short decimals or small
rationals, and the snapped expression is re-checked on every row.

The expression is data: a tree of frozen dataclasses with `to_dict`/`from_dict` (validated: node
kinds, identifier names, finite numbers, literal table keys), vectorised float64 `evaluate`, a
one-row `evaluate_row`, and `to_python` (names, numbers, + - * /, dict-literal tables,
round/min/max/abs/int/math.floor/math.ceil), so a loaded expression is compiled only from source
generated here, never from stored text.
"""

from __future__ import annotations

# the pieces, imported one way: nodes <- data <- fit (<- _ties) <- search; thresholds apart
from ._expression_data import Expression, agrees, map_children, node_from_dict, orderings
from ._expression_fit import _Budget, _Data, _Target
from ._expression_nodes import (CALLS, DECIMAL_EPS, FORMAT, MATCH_TRIES, MAX_DEPTH, MAX_NODES, ROUND_MODES,
                                STEP_UNITS, VERSION, Call, Const, Div, ExpressionError, MinMax, Node, Product,
                                Round, Sum, Table, Var, _decimals, _is_key, _orderings, _plain, _scalar_call)
from ._expression_search import fit_expression, fit_groups
from ._thresholds import Threshold, bisect_threshold

__all__ = ["CALLS", "DECIMAL_EPS", "FORMAT", "MATCH_TRIES", "MAX_DEPTH", "MAX_NODES", "ROUND_MODES", "STEP_UNITS",
           "VERSION", "Call", "Const", "Div", "Expression", "ExpressionError", "MinMax", "Node", "Product", "Round",
           "Sum", "Table", "Threshold", "Var", "agrees", "bisect_threshold", "fit_expression", "fit_groups",
           "map_children", "node_from_dict", "orderings", "_Budget", "_Data", "_Target", "_decimals", "_is_key",
           "_orderings", "_plain", "_scalar_call"]
