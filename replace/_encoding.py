"""Inputs and outputs of the legacy function as the float vectors a network learns from.

Each argument is encoded by its schema kind (reals standardised, with a log or quantile warp
for wide or heavy-tailed ranges; few-valued integers, booleans and categories as one-hot
slots, a category with many values learned through an embedding that training folds back into
the first layer; vectors element-wise), so the network sees well-scaled numbers and the surrogate can
refuse what it cannot encode. Outputs likewise: real heads in a warped, standardised space
(an `asinh` warp tied to the tolerance when it has a relative part, so the loss weighs an
error the way the tolerance does), label heads for classes, and an outcome head for the
exceptions the function raises. Fitted encoders are plain JSON.
"""

from __future__ import annotations

import ast
import bisect
import enum
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from probes import ErrorInfo, Field, OutOfDomainError, OutputSpec, Schema, Tolerance
from probes._schema import _decode_value, _encode_value

from ._cuts import OPERATORS, apply_cuts, cut_name, useful_cuts
from ._models import EmbeddingBlock

#: integers with at most this many distinct values in range are one-hot encoded.
INTEGER_ONEHOT_MAX = 12
#: categoricals with more values than this are learned through a low-rank embedding.
EMBED_MIN_CATEGORIES = 16
# One-hot fields of at most this many categories are encoded by one comparison per category
# (a few ns a row) rather than through the column's distinct values (a sort or counting pass
# plus a scattered write, ~20 ns a row: most of a small model's batch time).
EQUALITY_ONEHOT_MAX = 8
#: widest embedding of a categorical (hidden layers are 16-128 wide: a wider one saves nothing).
EMBED_MAX_DIM = 16


def embedding_dim(categories: int) -> int:
    """Embedding width of a categorical with `categories` values: min(16, ceil(1.6 * n ** 0.56)).

    The growth is fastai's rule of thumb (Howard & Gugger), fitted to the widths that worked on
    many tabular sets: 17 values -> 8, 40 -> 13, 60 and more -> 16. Always under `n`, so the map
    is low-rank: a category learns `dim` numbers instead of a full first-layer row per member.
    The width matters less than the sharing: in bench/embeddings.py (60 stores, 8 traces each)
    widths 4, 16 and even 60 (full rank) all beat one-hot by about as much.
    """
    return int(min(EMBED_MAX_DIM, math.ceil(1.6 * categories ** 0.56), max(categories - 1, 1)))
#: knots of the piecewise-linear quantile warp.
QUANTILE_KNOTS = 65


def _skew(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    if values.size < 3:
        return 0.0
    std = values.std()
    if std == 0:
        return 0.0
    return float(np.mean(((values - values.mean()) / std) ** 3))


def _choose_warp(values: np.ndarray, low: float, high: float) -> tuple[str, float, list[float]]:
    """Pick the warp of a real column: "none", "log" (wide positive) or "quantile" (heavy tails).

    Returns (warp, offset, knots). Log is `log(x - low + offset)`; quantile maps x through
    knots (the column's quantiles) to [0, 1] piecewise-linearly.
    """
    finite = values[np.isfinite(values)]
    if finite.size < 20 or high <= low:
        return "none", 0.0, []
    raw = abs(_skew(finite))
    if raw < 1.5:
        return "none", 0.0, []
    span = high - low
    median = float(np.median(finite - low))
    offset = max(median * 0.05, span * 1e-4, 1e-12)
    logged = np.log(np.maximum(finite - low, 0.0) + offset)
    if low >= 0 and abs(_skew(logged)) < 0.5 * raw and span / max(median, 1e-12) > 4:
        return "log", offset, []
    knots = np.unique(np.quantile(finite, np.linspace(0, 1, QUANTILE_KNOTS)))
    if knots.size < 4:
        return "none", 0.0, []
    knots[0], knots[-1] = min(knots[0], low), max(knots[-1], high)
    return "quantile", 0.0, [float(k) for k in knots]


def _warp(values: np.ndarray, warp: str, low: float, offset: float, knots: Sequence[float]) -> np.ndarray:
    if warp == "log":
        return np.log(np.maximum(values - low, 0.0) + offset)
    if warp == "quantile":
        return np.interp(values, knots, np.linspace(0.0, 1.0, len(knots)))
    return values


def _warp_one(value: float, warp: str, low: float, offset: float, knots: Sequence[float]) -> float:
    if warp == "log":
        return math.log(max(value - low, 0.0) + offset)
    # quantile: piecewise-linear interpolation through the knots, clamped
    if value <= knots[0]:
        return 0.0
    if value >= knots[-1]:
        return 1.0
    i = bisect.bisect_right(knots, value) - 1
    left, right = knots[i], knots[i + 1]
    step = 1.0 / (len(knots) - 1)
    return (i + (value - left) / (right - left)) * step


@dataclass
class FieldCode:
    """How one argument becomes encoded columns (fitted; JSON-serialisable)."""

    name: str
    kind: str          # schema kind of the argument
    code: str          # "real", "onehot", "binary", "vector"
    width: int         # number of encoded columns
    low: float = 0.0
    high: float = 0.0
    warp: str = "none"
    offset: float = 0.0
    knots: list[float] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)   # per encoded column (real/vector)
    std: list[float] = field(default_factory=list)
    categories: list[Any] = field(default_factory=list)  # one-hot values, in column order
    embed: bool = False
    cuts: list[Any] = field(default_factory=list)  # (operator, threshold): 0/1 columns after the value
    embed_dim: int = 0  # width of the learned embedding when `embed` (training only; folded away after)

    def names(self) -> list[str]:
        if self.code == "onehot":
            return [f"{self.name}={_label_text(c)}" for c in self.categories]
        if self.code == "vector":
            return [f"{self.name}[{i}]" for i in range(self.width)]
        return [self.name] + [cut_name(self.name, op, t) for op, t in self.cuts]

    def to_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in ("name", "kind", "code", "width", "low", "high", "warp",
                                                "offset", "knots", "mean", "std", "embed", "embed_dim")}
        data["cuts"] = [[op, t] for op, t in self.cuts]
        data["categories"] = [_encode_value(c) for c in self.categories]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FieldCode":
        values = dict(data)
        values["categories"] = [_decode_value(c) for c in data.get("categories", [])]
        values["cuts"] = [(str(op), float(t)) for op, t in data.get("cuts", [])]
        return cls(**values)


def _label_text(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return value.name
    return str(value)


def _ood(name: str, value: Any, reason: str) -> OutOfDomainError:
    return OutOfDomainError(f"{name}={value!r} : {reason}. The surrogate only answers inside the domain it was "
                            "trained on; call the original function, or refit with a wider schema")


class InputEncoder:
    """Maps argument columns to a float32 matrix; fitted on training columns."""

    def __init__(self, codes: list[FieldCode]):
        self.codes_ = codes
        self.feature_names_: list[str] = [n for c in codes for n in c.names()]
        self.feature_groups_: dict[str, list[int]] = {}
        start = 0
        for c in codes:
            self.feature_groups_[c.name] = list(range(start, start + c.width))
            start += c.width
        self.width_ = start
        self._slices = [slice(g[0], g[-1] + 1) if g else slice(0, 0) for g in self.feature_groups_.values()]
        self._lookups = [
            {_hashable(v): i for i, v in enumerate(c.categories)} if c.code == "onehot" else None for c in codes
        ]

    # -- fitting ----------------------------------------------------------------------
    @classmethod
    def fit(cls, schema: Schema, columns: Mapping[str, np.ndarray],
            cuts: Mapping[str, Sequence[tuple[str, float]]] | None = None,
            log_inputs: Sequence[str] = ()) -> "InputEncoder":
        """Fit on training columns; `cuts` (argument -> (operator, threshold) comparisons, e.g.
        from `comparison_cuts(fn)`) add exact 0/1 step columns to real and integer arguments;
        arguments named in `log_inputs` (positive ranges) are encoded as log(x) whatever their skew."""
        codes = []
        for item in schema.fields:
            column = columns.get(item.name)
            code = _fit_field(item, column, log=item.name in log_inputs)
            if cuts and code.code == "real" and cuts.get(item.name):
                values = np.asarray(column, dtype=float) if column is not None and len(column) else np.array([])
                code.cuts = useful_cuts(list(cuts[item.name]), values, code.low, code.high)
                code.width = 1 + len(code.cuts)
            codes.append(code)
        return cls(codes)

    # -- encoding ---------------------------------------------------------------------
    def encode(self, columns: Mapping[str, Any], dtype: Any = np.float32) -> np.ndarray:
        """(N, d) float32 (or `dtype`); raises OutOfDomainError for values that cannot be encoded."""
        n = None
        for code in self.codes_:
            if code.name not in columns:
                raise _ood(code.name, None, f"missing column {code.name!r}")
            column = columns[code.name]
            if n is None:
                n = len(column)
            elif len(column) != n:
                raise _ood(code.name, f"<{len(column)} values>", f"every column must have {n} values")
        # every field writes its own columns of one array: no per-field arrays to concatenate
        out = np.empty((n or 0, self.width_), dtype=np.float64)
        for code, lookup, group in zip(self.codes_, self._lookups, self._slices):
            _encode_column(code, lookup, columns[code.name], out[:, group])
        return out.astype(dtype, copy=False)

    def embedding_blocks(self) -> list[EmbeddingBlock]:
        """`(start, stop, dim)` of every one-hot field with many categories, in column order: pass
        them as `embeddings=` to `batched_mlp` / `expert_bank` (empty: plain one-hot everywhere)."""
        return [EmbeddingBlock(self.feature_groups_[name][0], self.feature_groups_[name][-1] + 1, dim)
                for name, dim in self.embedding_dims().items()]

    def embedding_dims(self) -> dict[str, int]:
        """Argument -> embedding width of each embedded field, in column order (also for the
        manifest's hyperparameters)."""
        # files saved before embed_dim existed: the width from the rule
        return {c.name: c.embed_dim or embedding_dim(c.width) for c in self.codes_ if c.embed and c.code == "onehot"}

    def to_dict(self) -> dict[str, Any]:
        return {"fields": [c.to_dict() for c in self.codes_]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "InputEncoder":
        return cls([FieldCode.from_dict(c) for c in data["fields"]])

    # -- fast single-call encoders ----------------------------------------------------
    def one_encoders(self, *, check: bool) -> list[Callable[[Any, list], None]]:
        """Per argument a closure `enc(value, out)` appending encoded floats to `out`.

        With `check`, values outside the schema range raise OutOfDomainError (the plain
        call); without, only unencodable values do (the swap checks the domain itself).
        """
        return [_one_encoder(c, lookup, check) for c, lookup in zip(self.codes_, self._lookups)]


def _hashable(value: Any) -> Any:
    # bool and int hash alike: keep True distinct from 1 for one-hot lookups
    if isinstance(value, (bool, np.bool_)):
        return ("bool", bool(value))
    if isinstance(value, np.generic):
        return value.item()
    return value


def _fit_field(item: Field, column: Any, log: bool = False) -> FieldCode:
    name = item.name
    if item.kind == "boolean":
        return FieldCode(name, "boolean", "binary", 1)
    if item.kind == "categorical":
        cats = list(item.categories)
        embed = len(cats) > EMBED_MIN_CATEGORIES
        return FieldCode(name, "categorical", "onehot", len(cats), categories=cats, embed=embed,
                         embed_dim=embedding_dim(len(cats)) if embed else 0)
    if item.kind == "integer" and (item.high - item.low + 1) <= INTEGER_ONEHOT_MAX:  # type: ignore[operator]
        cats = list(range(int(item.low), int(item.high) + 1))  # type: ignore[arg-type]
        return FieldCode(name, "integer", "onehot", len(cats), low=float(item.low), high=float(item.high),
                         categories=cats)
    low, high = float(item.low), float(item.high)  # type: ignore[arg-type]
    if item.kind == "vector":
        values = np.asarray(column, dtype=float).reshape(-1, item.width) if column is not None and len(column) else \
            np.random.default_rng(0).uniform(low, high, size=(256, item.width))
        warp, offset, knots = _choose_warp(values.ravel(), low, high)
        warped = _warp(values, warp, low, offset, knots)
        mean = warped.mean(axis=0)
        std = warped.std(axis=0)
        std = np.where(std > 1e-12, std, 1.0)
        return FieldCode(name, "vector", "vector", item.width, low=low, high=high, warp=warp, offset=offset,
                         knots=knots, mean=[float(m) for m in mean], std=[float(s) for s in std])
    values = np.asarray(column, dtype=float) if column is not None and len(column) else \
        np.random.default_rng(0).uniform(low, high, size=256)
    values = values[np.isfinite(values)]
    if values.size == 0:
        values = np.array([low, high])
    if log and low > 0:
        # log(x - low + low) = log(x): multiplicative inputs (prices, rates, times) whose effect is
        # by ratio, which the skew rule cannot see on a uniform or a discrete table
        warp, offset, knots = "log", low, []
    else:
        warp, offset, knots = _choose_warp(values, low, high)
    warped = _warp(values, warp, low, offset, knots)
    std = float(warped.std())
    return FieldCode(name, item.kind, "real", 1, low=low, high=high, warp=warp, offset=offset, knots=knots,
                     mean=[float(warped.mean())], std=[std if std > 1e-12 else 1.0])


def _encode_column(code: FieldCode, lookup: dict | None, column: Any, out: np.ndarray) -> None:
    """Encode one argument's column into `out`, its (N, width) float64 slice of the batch."""
    name = code.name
    if code.code == "onehot":
        if _onehot_by_equality(code, column, out):
            return
        out.fill(0.0)
        fast = _onehot_by_uniques(code, lookup, column, out)
        if fast:
            return
        for row, value in enumerate(column):
            try:
                index = lookup.get(_hashable(value))  # type: ignore[union-attr]
            except TypeError:
                index = None
            if index is None and code.kind == "integer" and isinstance(value, (float, np.floating)) \
                    and float(value).is_integer():
                index = lookup.get(int(value))  # type: ignore[union-attr]
            if index is None:
                raise _ood(name, value, "is not a known category")
            out[row, index] = 1.0
        return
    if code.code == "binary":
        array = np.asarray(column)
        if array.dtype != bool:
            for value in column:
                if not isinstance(value, (bool, np.bool_)):
                    raise _ood(name, value, "is not a bool")
        out[:, 0] = array.reshape(-1)
        return
    try:
        array = np.asarray(column, dtype=float)
    except (TypeError, ValueError):
        bad = next((v for v in column if not _numberish(v)), column)
        raise _ood(name, bad, "is not a number") from None
    if code.code == "vector":
        if array.ndim != 2 or array.shape[1] != code.width:
            raise _ood(name, f"<array of shape {array.shape}>", f"expected vectors of length {code.width}")
    else:
        array = array.reshape(-1, 1)
    if not np.all(np.isfinite(array)):
        bad_row = int(np.argwhere(~np.isfinite(array))[0][0])
        raise _ood(name, column[bad_row], "is not finite")
    warped = _warp(array, code.warp, code.low, code.offset, code.knots)
    plain = out[:, :len(code.mean)]
    np.subtract(warped, np.asarray(code.mean), out=plain)
    np.divide(plain, np.asarray(code.std), out=plain)
    if code.cuts:
        out[:, len(code.mean):] = apply_cuts(array, code.cuts)


def equality_categories(categories: Sequence[Any], array: np.ndarray) -> bool:
    """True when `array == category` is exactly the lookup's test for every category: integer
    arrays against int categories, string arrays against str categories (bools, floats, mixed
    types and objects keep the lookup, which tells True from 1)."""
    if array.ndim != 1 or not categories or len(categories) > EQUALITY_ONEHOT_MAX:
        return False
    if array.dtype.kind in "iu":
        return all(type(c) is int for c in categories)
    if array.dtype.kind == "U":
        return all(type(c) is str for c in categories)
    return False


def _onehot_by_equality(code: FieldCode, column: Any, out: np.ndarray) -> bool:
    """One-hot of a few categories by one comparison each, every column of `out` written; False
    when the column's type does not allow it or a value is not a category (the other paths
    then handle it, and raise for the value)."""
    array = np.asarray(column)
    if len(array) < 64 or not equality_categories(code.categories, array):
        return False
    matched = 0
    for k, category in enumerate(code.categories):
        hit = array == category
        matched += int(np.count_nonzero(hit))
        out[:, k] = hit.astype(np.float64)  # cast contiguously first: a strided bool cast is 5x slower
    return matched == len(array)  # categories are distinct: every row matched exactly one


def _onehot_by_uniques(code: FieldCode, lookup: dict | None, column: Any, out: np.ndarray) -> bool:
    """Vectorised one-hot through the column's distinct values (few); False when they cannot be
    sorted (mixed types), leaving the row-by-row path to do the work."""
    array = np.asarray(column)
    if array.ndim != 1 or len(array) < 64:
        return False
    try:
        from ._fastpath import unique_inverse  # counting pass for integer columns (no sort)

        uniques, inverse = unique_inverse(array)
    except TypeError:
        return False
    index = np.empty(len(uniques), dtype=np.int64)
    for j, value in enumerate(uniques.tolist() if array.dtype != object else uniques):
        found = lookup.get(_hashable(value)) if lookup is not None else None  # type: ignore[union-attr]
        if found is None and code.kind == "integer" and isinstance(value, float) and value.is_integer():
            found = lookup.get(int(value))  # type: ignore[union-attr]
        if found is None:
            return False  # let the row path raise with the exact offending value
        index[j] = found
    out[np.arange(len(array)), index[inverse.reshape(-1)]] = 1.0
    return True


def _numberish(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _one_encoder(code: FieldCode, lookup: dict | None, check: bool) -> Callable[[Any, list], None]:
    name, low, high = code.name, code.low, code.high
    kind = code.kind

    def slow_number(value: Any) -> float:
        if not _numberish(value):
            raise _ood(name, value, "is not a number")
        number = float(value)
        if not math.isfinite(number):
            raise _ood(name, value, "is not finite")
        if kind == "integer" and not number.is_integer():
            raise _ood(name, value, "is not a whole number")
        return number

    if code.code == "real" and code.cuts:
        plain = _one_encoder(FieldCode(**{**code.__dict__, "cuts": [], "width": 1}), lookup, check)
        tests = [(OPERATORS[op], t) for op, t in code.cuts]

        def enc(value: Any, out: list) -> None:
            plain(value, out)
            number = value if type(value) is float or type(value) is int else float(value)
            for compare, threshold in tests:
                out.append(1.0 if compare(number, threshold) else 0.0)
        return enc

    if code.code == "real":
        mean, inv, warp, offset, knots = code.mean[0], 1.0 / code.std[0], code.warp, code.offset, code.knots

        if warp == "none":
            def enc(value: Any, out: list) -> None:
                if type(value) is not float and type(value) is not int:
                    value = slow_number(value)
                if not (low <= value <= high):
                    if value != value or value in (math.inf, -math.inf):
                        raise _ood(name, value, "is not finite")
                    if check:
                        raise _ood(name, value, f"is outside the range [{low}, {high}]")
                if kind == "integer" and type(value) is float and not value.is_integer():
                    raise _ood(name, value, "is not a whole number")
                out.append((value - mean) * inv)
        else:
            def enc(value: Any, out: list) -> None:
                if type(value) is not float and type(value) is not int:
                    value = slow_number(value)
                if not (low <= value <= high):
                    if value != value or value in (math.inf, -math.inf):
                        raise _ood(name, value, "is not finite")
                    if check:
                        raise _ood(name, value, f"is outside the range [{low}, {high}]")
                if kind == "integer" and type(value) is float and not value.is_integer():
                    raise _ood(name, value, "is not a whole number")
                out.append((_warp_one(value, warp, low, offset, knots) - mean) * inv)
        return enc

    if code.code == "binary":
        def enc(value: Any, out: list) -> None:
            if value is True:
                out.append(1.0)
            elif value is False:
                out.append(0.0)
            elif isinstance(value, np.bool_):
                out.append(1.0 if value else 0.0)
            else:
                raise _ood(name, value, "is not a bool")
        return enc

    if code.code == "onehot":
        rows = []
        for i in range(code.width):
            row = [0.0] * code.width
            row[i] = 1.0
            rows.append(row)
        table = dict(lookup or {})
        integer = kind == "integer"

        def enc(value: Any, out: list) -> None:
            try:
                index = table.get(("bool", value) if value is True or value is False else value)
            except TypeError:
                index = None
            if index is None:
                if isinstance(value, np.generic) and not isinstance(value, np.bool_):
                    index = table.get(value.item())
                elif integer and type(value) is float and value.is_integer():
                    index = table.get(int(value))
                if index is None:
                    if integer:
                        if not _numberish(value):
                            raise _ood(name, value, "is not a number")
                        if value != value:
                            raise _ood(name, value, "is not finite")
                        if not float(value).is_integer():
                            raise _ood(name, value, "is not a whole number")
                        raise _ood(name, value, f"is outside the range [{int(low)}, {int(high)}]")
                    raise _ood(name, value, "is not a known category")
            out.extend(rows[index])
        return enc

    # vector
    means = np.asarray(code.mean)
    stds = np.asarray(code.std)
    width = code.width

    def enc(value: Any, out: list) -> None:
        try:
            array = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise _ood(name, value, "is not a vector of numbers") from None
        if array.shape != (width,) or isinstance(value, (str, bytes)):
            raise _ood(name, value, f"is not a vector of length {width}")
        if not np.all(np.isfinite(array)):
            raise _ood(name, value, "has a non-finite element")
        if check and (array.min() < low or array.max() > high):
            raise _ood(name, value, f"has an element outside the range [{low}, {high}]")
        out.extend(((_warp(array, code.warp, low, code.offset, code.knots) - means) / stds).tolist())
    return enc


# ---------------------------------------------------------------------------------------------
# outputs
# ---------------------------------------------------------------------------------------------

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
