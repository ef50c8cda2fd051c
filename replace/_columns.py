"""Column helpers shared by the surrogate, the swap and the guard: a batch as columns, some of
its rows, and one value as the legacy function would receive it."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from probes import OutOfDomainError

__all__ = ["as_columns", "plain_value", "take_rows"]


def as_columns(columns: Any) -> Mapping[str, Any]:
    """`columns` as a mapping of argument name to column (a list of kwargs dicts is turned into one)."""
    if isinstance(columns, Mapping):
        return columns
    if isinstance(columns, (list, tuple)) and columns and isinstance(columns[0], Mapping):
        names = list(columns[0])
        from probes._traces import column_array

        return {name: column_array([row[name] for row in columns]) for name in names}
    raise OutOfDomainError(f"columns={type(columns).__name__} : must be a mapping of argument name to array "
                           "(or a list of kwargs dicts)")


def take_rows(column: Any, rows: np.ndarray) -> Any:
    """The `rows` of one input column (numpy arrays stay arrays, lists stay lists)."""
    if isinstance(column, np.ndarray):
        return column[rows]
    return [column[i] for i in rows.tolist()]


def plain_value(value: Any, item: Any = None) -> Any:
    """One column value as the legacy function would get it (numpy scalars as Python values,
    vector rows in the container the traces showed)."""
    if isinstance(value, np.generic):
        return value.item()
    if item is not None and item.kind == "vector" and isinstance(value, np.ndarray) and value.ndim == 1:
        if item.container == "ndarray":
            return value.copy()
        listed = value.tolist()
        return tuple(listed) if item.container == "tuple" else listed
    return value
