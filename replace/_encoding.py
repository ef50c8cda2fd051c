"""Inputs of the legacy function as the float vectors a network learns from.

Each argument is encoded by its schema kind (reals standardised, with a log or quantile warp
for wide or heavy-tailed ranges; few-valued integers, booleans and categories as one-hot
slots, a category with many values learned through an embedding that training folds back into
the first layer; vectors element-wise), so the network sees well-scaled numbers and the surrogate can
refuse what it cannot encode. Fitted encoders are plain JSON. The outputs' side is
`_output_encoding`.
"""

from __future__ import annotations

import bisect
import enum
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from probes import Field, OutOfDomainError, Schema
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
    try:  # counting pass for integer columns (no sort)
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


def unique_inverse(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`np.unique(array, return_inverse=True)` of a 1-D array, without sorting for integers
    (and bools) in a small range: a category column of 100,000 rows costs a counting pass."""
    if array.ndim == 1 and len(array) and array.dtype.kind in "biu":
        values = array.view(np.uint8) if array.dtype.kind == "b" else array
        lo, hi = int(values.min()), int(values.max())
        if hi - lo <= 65536:
            offsets = (values - lo).astype(np.intp, copy=False) if lo else values.astype(np.intp, copy=False)
            present = np.bincount(offsets, minlength=hi - lo + 1) > 0
            table = np.cumsum(present) - 1
            uniques = (np.flatnonzero(present) + lo).astype(array.dtype)
            return uniques, table[offsets]
    uniques, inverse = np.unique(array, return_inverse=True)
    return uniques, inverse.reshape(-1)
