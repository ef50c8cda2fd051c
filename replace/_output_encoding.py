"""Outputs of the legacy function as the vectors a network learns from, and back: real heads in
a warped, standardised space (an `asinh` warp tied to the tolerance when it has a relative part,
so the loss weighs an error the way the tolerance does), label heads for classes, and an outcome
head for the exceptions the function raises (`error_classes`, rebuilt by `make_exception`).
Fitted encoders are plain JSON. The inputs' side is `_encoding`."""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from probes import ErrorInfo, OutputSpec, Tolerance
from probes._schema import _decode_value, _encode_value

from ._encoding import _hashable, _skew


@dataclass(frozen=True)
class OutcomeClass:
    """One class of the label/outcome head: a returned label, "ok" (a real value), or a raise."""

    kind: str                     # "value" (label), "ok" (real/vector output), "raise"
    value: Any = None             # the label (kind "value")
    error: ErrorInfo | None = None  # the exception (kind "raise")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind}
        if self.kind == "value":
            data["value"] = _encode_value(self.value)
        if self.error is not None:
            data["error"] = self.error.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "OutcomeClass":
        error = data.get("error")
        return cls(data["kind"], _decode_value(data["value"]) if "value" in data else None,
                   ErrorInfo(error["type"], error["message"]) if error else None)


#: an error type with at most this many distinct messages keeps one class per message.
MAX_MESSAGES_PER_TYPE = 8
GENERIC_MESSAGE = "{name} (predicted by the neuroswap surrogate: the original raises here)"


def error_classes(errors: Sequence[ErrorInfo | None]) -> tuple[list[ErrorInfo], dict[tuple[str, str], int]]:
    """The raise classes: one per (type, message) when a type's messages are few, else per type.

    Returns the class errors and a map (type, message) -> index into them.
    """
    by_type: dict[str, dict[str, int]] = {}
    for e in errors:
        if e is not None:
            by_type.setdefault(e.type, {}).setdefault(e.message, 0)
            by_type[e.type][e.message] += 1
    classes: list[ErrorInfo] = []
    index: dict[tuple[str, str], int] = {}
    for type_name in sorted(by_type):
        messages = by_type[type_name]
        if len(messages) <= MAX_MESSAGES_PER_TYPE:
            for message in sorted(messages):
                index[(type_name, message)] = len(classes)
                classes.append(ErrorInfo(type_name, message))
        else:
            generic = ErrorInfo(type_name, GENERIC_MESSAGE.format(name=type_name.rsplit(".", 1)[-1]))
            for message in messages:
                index[(type_name, message)] = len(classes)
            classes.append(generic)
    return classes, index


def make_exception(error: ErrorInfo) -> BaseException:
    """An exception instance of the original's type whose str() equals the original message."""
    cls = error.exception_class()
    if issubclass(cls, KeyError):
        # str(KeyError(x)) is repr(x): recover x from the stored message when possible
        try:
            arg = ast.literal_eval(error.message)
            if repr(arg) == error.message:
                return cls(arg)
        except (ValueError, SyntaxError):
            pass
    try:
        return cls(error.message)
    except Exception:  # exception classes with other constructors
        return RuntimeError(f"{error.type}: {error.message}")


def _spans_decades(magnitudes: np.ndarray, largest: float) -> bool:
    """Whether output magnitudes spread over decades (heavy right tail, or a tenth of them
    under 1% of the largest, e.g. option prices), so a relative tolerance needs a log-like warp."""
    if magnitudes.size == 0 or largest <= 0:
        return False
    return _skew(magnitudes) > 1.0 or float(np.quantile(magnitudes, 0.1)) < 1e-2 * largest


class OutputEncoder:
    """Targets for the network: regression columns (warped, standardised) and a class index."""

    def __init__(self, *, kind: str, width: int, python_type: str, warp: str = "none", scale: float = 1.0,
                 mean: Sequence[float] = (), std: Sequence[float] = (), classes: Sequence[OutcomeClass] = (),
                 error_index: Mapping[tuple[str, str], int] | None = None, low: float | None = None,
                 high: float | None = None, quantum: float | None = None):
        self.kind = kind
        self.width = width            # regression columns
        self.python_type = python_type
        self.warp = warp              # "none" | "asinh"
        self.scale = float(scale)
        self.mean = np.asarray(mean, dtype=float)
        self.std = np.asarray(std, dtype=float)
        self.classes = list(classes)
        self.error_index = dict(error_index or {})
        self.low, self.high = low, high
        # Outputs rounded to a decimal grid (cents) are snapped to it: exact wherever the
        # network's own error is under half a step (see probes.OutputSpec.quantum).
        self.quantum = float(quantum) if quantum else None
        self.decimals = int(round(-math.log10(self.quantum))) if self.quantum else None
        self._value_index = {_hashable(c.value): i for i, c in enumerate(self.classes) if c.kind == "value"}
        self.ok_index = next((i for i, c in enumerate(self.classes) if c.kind == "ok"), -1)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def out_width(self) -> int:
        """Width of the network's raw output: regression columns then class logits."""
        return self.width + self.n_classes

    # -- fitting ----------------------------------------------------------------------
    @classmethod
    def fit(cls, spec: OutputSpec, outputs: Sequence[Any], errors: Sequence[ErrorInfo | None],
            tolerance: Tolerance) -> "OutputEncoder":
        raised = [e is not None for e in errors]
        errs, error_index = error_classes(errors)
        raise_classes = [OutcomeClass("raise", error=e) for e in errs]
        values = [v for v, r in zip(outputs, raised) if not r]
        kind = spec.kind
        if kind == "label":
            labels = list(spec.labels)
            seen = {_hashable(v) for v in labels}
            for v in values:
                if _hashable(v) not in seen:
                    labels.append(v)
                    seen.add(_hashable(v))
            classes = [OutcomeClass("value", value=v) for v in labels] + raise_classes
            return cls(kind="label", width=0, python_type=spec.python_type, classes=classes, error_index=error_index)
        if kind == "none":
            classes = [OutcomeClass("ok")] + raise_classes
            return cls(kind="none", width=0, python_type=spec.python_type, classes=classes, error_index=error_index)
        width = 1 if kind == "real" else int(spec.length or 1)
        if values:
            array = np.asarray([np.asarray(v, dtype=float).reshape(-1) for v in values], dtype=float).reshape(-1, width)
        else:
            array = np.zeros((1, width))
        finite = array[np.all(np.isfinite(array), axis=1)]
        if finite.size == 0:
            finite = np.zeros((1, width))
        warp, scale = "none", 1.0
        magnitude = float(np.max(np.abs(finite)))
        if tolerance.rel > 0:
            # where abs and rel parts of the bound are equal; asinh(y / c) weighs errors as the bound does
            c = tolerance.abs / tolerance.rel if tolerance.abs > 0 else max(magnitude * 1e-3, 1e-12)
            if magnitude / c > 20 and _spans_decades(np.abs(finite).ravel(), magnitude):
                warp, scale = "asinh", c
        warped = np.arcsinh(finite / scale) if warp == "asinh" else finite
        mean = warped.mean(axis=0)
        std = warped.std(axis=0)
        std = np.where(std > 1e-12, std, 1.0)
        classes = ([OutcomeClass("ok")] + raise_classes) if raise_classes else []
        return cls(kind=kind, width=width, python_type=spec.python_type, warp=warp, scale=scale,
                   mean=mean, std=std, classes=classes, error_index=error_index,
                   low=float(finite.min()), high=float(finite.max()), quantum=spec.quantum)

    # -- targets ------------------------------------------------------------------------
    def targets(self, outputs: Sequence[Any], errors: Sequence[ErrorInfo | None]) -> np.ndarray:
        """(N, width + 1) float32: encoded regression targets (NaN where raised), class index (-1 none)."""
        n = len(outputs)
        y = np.full((n, self.width + 1), np.nan, dtype=np.float64)
        y[:, self.width] = -1
        for i, (value, error) in enumerate(zip(outputs, errors)):
            if error is not None:
                index = self.error_index.get((error.type, error.message))
                if index is None:  # an error never seen when fitting: nearest class of that type
                    index = next((j for (t, _), j in self.error_index.items() if t == error.type), None)
                if index is not None:
                    y[i, self.width] = len(self.classes) - self._n_raise + index
                continue
            if self.kind in ("label",):
                y[i, 0] = self._value_index.get(_hashable(value), -1)
                continue
            if self.kind == "none":
                y[i, 0] = self.ok_index
                continue
            y[i, : self.width] = np.asarray(value, dtype=float).reshape(-1)[: self.width]
            if self.classes:
                y[i, self.width] = self.ok_index
        if self.width:
            y[:, : self.width] = self.encode_values(y[:, : self.width])
        return y.astype(np.float32)

    @property
    def _n_raise(self) -> int:
        return sum(1 for c in self.classes if c.kind == "raise")

    def encode_values(self, values: np.ndarray) -> np.ndarray:
        warped = np.arcsinh(values / self.scale) if self.warp == "asinh" else values
        return (warped - self.mean) / self.std

    def snap(self, values: Any) -> Any:
        """Round answers to the output's decimal grid, when it has one (array or float)."""
        if self.decimals is None:
            return values
        if isinstance(values, np.ndarray):
            return np.round(values, self.decimals)
        return round(values, self.decimals)

    def decode_values(self, z: np.ndarray) -> np.ndarray:
        """Encoded regression values (..., width) back to original units."""
        warped = z * self.std + self.mean
        return np.sinh(warped) * self.scale if self.warp == "asinh" else warped

    # -- python values ------------------------------------------------------------------
    def python_value(self, row: np.ndarray) -> Any:
        """A decoded regression row (width,) as the original's Python type."""
        kind = self.python_type
        if self.kind == "real":
            value = float(row[0])
            if kind == "int":
                return int(round(value))
            return value
        if kind == "tuple":
            return tuple(float(v) for v in row)
        if kind == "ndarray":
            return np.array(row, dtype=float)
        return [float(v) for v in row]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "width": self.width, "python_type": self.python_type, "warp": self.warp,
            "scale": self.scale, "mean": self.mean.tolist(), "std": self.std.tolist(),
            "classes": [c.to_dict() for c in self.classes],
            "error_index": [[t, m, i] for (t, m), i in self.error_index.items()],
            "low": self.low, "high": self.high, "quantum": self.quantum,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "OutputEncoder":
        return cls(kind=data["kind"], width=data["width"], python_type=data["python_type"], warp=data["warp"],
                   scale=data["scale"], mean=data["mean"], std=data["std"],
                   classes=[OutcomeClass.from_dict(c) for c in data["classes"]],
                   error_index={(t, m): i for t, m, i in data["error_index"]},
                   low=data.get("low"), high=data.get("high"), quantum=data.get("quantum"))
