"""Argument checks whose messages follow one pattern: `name=value : rule. fix`.

Kept in one place so every public function reports bad input the same way.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from ._errors import InvalidArgument, MissingDependencyError


def bad_argument(name: str, value: Any, rule: str, fix: str = "") -> InvalidArgument:
    """Build the error for `name=value` breaking `rule`; `fix` says what to pass instead."""
    try:
        shown = repr(value)
    except ValueError:  # an int beyond Python's 4300-digit str limit
        shown = f"<an int of about {value.bit_length() * 0.30103:.0f} digits>" if isinstance(value, int) else "<value>"
    text = f"{name}={shown} : {rule}"
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
    allow_inf: bool = False,
    fix: str = "",
) -> float:
    """Return `value` when it is a finite number in the stated range, else raise naming it.

    `allow_inf` lets +-inf through (where it means "none" or "never"); a whole number must
    also lie within a 64-bit integer (numpy and torch take it)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise bad_argument(name, value, "must be a number", fix)
    try:
        number = float(value)
    except OverflowError:
        raise bad_argument(name, value, "is too large for a float", fix) from None
    except (TypeError, ValueError):  # e.g. an array of several numbers
        raise bad_argument(name, value, "must be one number", fix) from None
    if math.isnan(number):
        raise bad_argument(name, value, "must not be NaN", fix)
    if math.isinf(number) and not allow_inf:
        raise bad_argument(name, value, "must be finite", fix)
    if integer:
        if math.isinf(number) or number != int(number):
            raise bad_argument(name, value, "must be a whole number", fix)
        if not -(2**63) < int(value) < 2**63:
            raise bad_argument(name, value, "must lie within a 64-bit integer (below 2**63 in size)", fix)
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
    if not any(_same(value, option) for option in options):
        listed = ", ".join(repr(option) for option in options)
        raise bad_argument(name, value, f"must be one of {listed}", fix)
    return value


def _same(value: Any, option: Any) -> bool:
    try:
        return type(value) is not bool and bool(value == option)
    except Exception:  # an array compares element-wise: it is no choice
        return False


def check_flag(name: str, value: Any, *, optional: bool = False, fix: str = "") -> bool | None:
    """Return `value` as a bool when it is True or False (None too when `optional`), else raise:
    a string such as "False" is true in Python, so it is refused rather than guessed at."""
    if value is None and optional:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    rule = "must be True or False" + (" (or None)" if optional else "")
    raise bad_argument(name, value, rule, fix)


def check_seed(name: str, value: Any, fix: str = "") -> int:
    """Return `value` when it is an integer seed numpy and torch both take (0 <= seed < 2**63)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise bad_argument(name, value, "must be an integer", fix or f"Pass e.g. {name}=0")
    if not 0 <= int(value) < 2**63:
        raise bad_argument(name, value, "must be >= 0 and below 2**63", fix or f"Pass e.g. {name}=0")
    return int(value)


def check_callable(name: str, value: Any, *, optional: bool = False, fix: str = "") -> Any:
    """Return `value` when it is callable (or None when `optional`), else raise naming it."""
    if (value is None and optional) or (value is not None and callable(value)):
        return value
    raise bad_argument(name, value, "must be callable" + (" or None" if optional else ""), fix)


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
