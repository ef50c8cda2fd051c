"""Argument checks whose messages follow one pattern: `name=value : rule. fix`.

Kept in one place so every public function reports bad input the same way.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from ._errors import InvalidArgument, MissingDependencyError


def bad_argument(name: str, value: Any, rule: str, fix: str = "") -> InvalidArgument:
    """Build the error for `name=value` breaking `rule`; `fix` says what to pass instead."""
    text = f"{name}={value!r} : {rule}"
    if fix:
        text += f". {fix}"
    return InvalidArgument(text)


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    integer: bool = False,
    fix: str = "",
) -> float:
    """Return `value` when it is a finite number in the stated range, else raise naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise bad_argument(name, value, "must be a number", fix)
    if integer and int(value) != value:
        raise bad_argument(name, value, "must be a whole number", fix)
    number = float(value)
    if math.isnan(number):
        raise bad_argument(name, value, "must not be NaN", fix)
    if low is not None:
        if low_inclusive and number < low:
            raise bad_argument(name, value, f"must be >= {low}", fix)
        if not low_inclusive and number <= low:
            raise bad_argument(name, value, f"must be > {low}", fix)
    if high is not None and number > high:
        raise bad_argument(name, value, f"must be <= {high}", fix)
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any], fix: str = "") -> Any:
    """Return `value` when it is one of `choices`, else raise listing them."""
    options = list(choices)
    if value not in options:
        listed = ", ".join(repr(option) for option in options)
        raise bad_argument(name, value, f"must be one of {listed}", fix)
    return value


def require(module: str, extra: str) -> Any:
    """Import an optional dependency, or raise naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise MissingDependencyError(
            f"{module} is not installed : it is needed here. "
            f"Install it with `pip install 'neuroswap[{extra}]'`"
        ) from exc
