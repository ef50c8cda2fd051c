"""Cut points read from the legacy function's own comparisons (`if age < 30`, `weight <= 0.5`).

Rule-based code branches on comparisons of its arguments with constants. A network learns such
a step only approximately (a steep slope somewhere near the threshold); given the comparison
itself as a 0/1 input column it reproduces the step exactly, on the right side of equality.
The comparisons are read from the bytecode (no execution), for arguments compared directly
with a numeric constant, in the function and in code objects nested in it.
"""

from __future__ import annotations

import dis
import operator
from typing import Any, Callable, Mapping

import numpy as np

from probes._identity import unwrap

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
#: at most this many cut columns per argument
MAX_CUTS = 16


def _codes(code: Any) -> list[Any]:
    found = [code]
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            found.extend(_codes(const))
    return found


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def comparison_cuts(fn: Callable[..., Any], names: list[str]) -> dict[str, list[tuple[str, float]]]:
    """Per argument name, the (operator, constant) comparisons the code makes on it directly."""
    try:
        inner = unwrap(fn)
        code = inner.__code__
    except AttributeError:
        return {}
    module_globals = getattr(inner, "__globals__", {})

    def constant(instruction: Any) -> Any:
        if instruction.opname == "LOAD_CONST":
            return instruction.argval
        if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME"):  # a module-level constant such as MAX_WEIGHT
            name = instruction.argval if isinstance(instruction.argval, str) else instruction.argrepr
            return module_globals.get(str(name).replace("NULL + ", ""))
        return None
    cuts: dict[str, list[tuple[str, float]]] = {}
    wanted = set(names)
    for item in _codes(code):
        instructions = [i for i in dis.get_instructions(item) if i.opname not in ("CACHE", "EXTENDED_ARG", "NOP")]
        for a, b, c in zip(instructions, instructions[1:], instructions[2:]):
            if c.opname != "COMPARE_OP" or c.argval not in OPERATORS:
                continue
            op = c.argval
            if a.opname == "LOAD_FAST" and a.argval in wanted and _number(constant(b)):
                name, value = a.argval, float(constant(b))
            elif b.opname == "LOAD_FAST" and b.argval in wanted and _number(constant(a)):
                name, value, op = b.argval, float(constant(a)), _FLIP[op]
            else:
                continue
            entry = (op, value)
            bucket = cuts.setdefault(name, [])
            if entry not in bucket:
                bucket.append(entry)
    return cuts


def useful_cuts(cuts: list[tuple[str, float]], values: np.ndarray, low: float, high: float) -> list[tuple[str, float]]:
    """Cuts inside the domain whose indicator is not constant on the observed values."""
    kept = []
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    for op, threshold in cuts:
        if not (low <= threshold <= high):
            continue
        indicator = OPERATORS[op](values, threshold)
        if values.size and 0 < int(np.sum(indicator)) < values.size:
            kept.append((op, float(threshold)))
    return kept[:MAX_CUTS]


def cut_name(name: str, op: str, threshold: float) -> str:
    text = f"{threshold:g}"
    return f"{name}{op}{text}"


def apply_cuts(values: np.ndarray, cuts: list[Any]) -> np.ndarray:
    """(N, len(cuts)) 0/1 columns."""
    values = np.asarray(values, dtype=float).reshape(-1)
    if not cuts:
        return np.zeros((len(values), 0))
    return np.stack([OPERATORS[op](values, t).astype(np.float64) for op, t in cuts], axis=1)


def cuts_from_mapping(data: Mapping[str, Any]) -> list[tuple[str, float]]:
    return [(str(op), float(t)) for op, t in data]
