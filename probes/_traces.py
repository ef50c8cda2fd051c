"""Recorded calls of one function, as plain Python lists and as numpy columns.

`Traces` is what every later stage reads (schema inference, training, verification), so it
is a small immutable value, independent of where the calls were stored.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from ._validation import bad_argument, require


@dataclass(frozen=True)
class ErrorInfo:
    """The exception a call raised: qualified type name and message."""

    type: str
    message: str

    @classmethod
    def from_exception(cls, exc: BaseException) -> "ErrorInfo":
        kind = type(exc)
        module = kind.__module__
        qualified = kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"
        return cls(type=qualified, message=str(exc))

    @property
    def name(self) -> str:
        """The short class name (`ValueError`)."""
        return self.type.rsplit(".", 1)[-1]

    def exception_class(self, *, trusted_modules: Iterable[str] | None = None) -> type[BaseException]:
        """The exception class; `RuntimeError` when it cannot be found.

        `type` is data (a trace row, a saved surrogate), so the class is looked up only in
        modules already imported, or in `trusted_modules` (imported when needed), the way trace
        decoding finds classes: nothing the name points at is called or imported otherwise.
        """
        from ._encoding import _inherits, resolve_class, trusted_set

        trusted = trusted_set(trusted_modules)
        name = self.type
        if type(name) is not str or not name:
            return RuntimeError
        if "." not in name:
            candidates = [f"builtins:{name}"]
        else:  # "a.b.C.D": the module is the longest importable prefix
            parts = name.split(".")
            candidates = [f"{'.'.join(parts[:i])}:{'.'.join(parts[i:])}" for i in range(len(parts) - 1, 0, -1)]
        for candidate in candidates:
            found = resolve_class(candidate, trusted)
            if found is not None and _inherits(found, BaseException):
                return found
        return RuntimeError

    def to_dict(self) -> dict[str, str]:
        return {"type": self.type, "message": self.message}


@dataclass(frozen=True)
class NonReplayable:
    """An argument value that could not be encoded; only its repr was kept."""

    type: str
    repr: str


@dataclass(frozen=True)
class Redacted:
    """An argument whose value was never stored (personal data); a salted hash stands in."""

    digest: str


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _is_vector(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return value.ndim == 1 and value.dtype.kind in "biuf"
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(
        _is_number(item) or isinstance(item, (bool, np.bool_)) for item in value
    )


def column_array(values: Sequence[Any]) -> np.ndarray:
    """One column as numpy: bool, float, 2-D float for same-length vectors, else object."""
    if len(values) == 0:
        return np.array([], dtype=float)
    if all(isinstance(v, (bool, np.bool_)) for v in values):
        return np.asarray(values, dtype=bool)
    if all(_is_number(v) or isinstance(v, (bool, np.bool_)) for v in values):
        return np.asarray(values, dtype=float)
    if all(_is_vector(v) for v in values):
        lengths = {len(v) for v in values}
        if len(lengths) == 1:
            return np.asarray([np.asarray(v, dtype=float) for v in values], dtype=float)
    out = np.empty(len(values), dtype=object)
    for index, value in enumerate(values):
        out[index] = value
    return out


def _freeze(value: Any) -> Any:
    """A hashable stand-in for a value, for de-duplication."""
    if isinstance(value, float) and math.isnan(value):
        return ("nan",)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__,) + tuple(_freeze(v) for v in value)
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (set, frozenset)):
        return ("set",) + tuple(sorted(repr(v) for v in value))
    try:
        hash(value)
        return (type(value).__name__, value)
    except TypeError:
        return ("repr", repr(value))


@dataclass(frozen=True)
class Trace:
    """One call: bound arguments and its outcome (an output, or an error)."""

    inputs: dict[str, Any]
    output: Any
    error: ErrorInfo | None
    duration_s: float | None = None
    timestamp: float | None = None

    @property
    def raised(self) -> bool:
        return self.error is not None


@dataclass(frozen=True)
class Traces:
    """The calls of one function: `inputs` (kwargs dicts), `outputs`, `errors` (None where it returned)."""

    inputs: list[dict[str, Any]]
    outputs: list[Any]
    errors: list[ErrorInfo | None] = field(default_factory=list)
    function: str = ""
    source_hash: str = ""
    durations: list[float | None] = field(default_factory=list)
    timestamps: list[float | None] = field(default_factory=list)
    #: stored rows that could not be decoded and were left out when these traces were loaded
    #: (kept by `subset`/slicing, summed by `+`); 0 for traces built in memory.
    skipped: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.skipped, bool) or not isinstance(self.skipped, int) or self.skipped < 0:
            raise bad_argument("skipped", self.skipped, "must be an integer >= 0")
        n = len(self.inputs)
        if len(self.outputs) != n:
            raise bad_argument("outputs", f"<{len(self.outputs)} items>", f"must have one item per input ({n})")
        for name in ("errors", "durations", "timestamps"):
            column = getattr(self, name)
            if not column:
                object.__setattr__(self, name, [None] * n)
            elif len(column) != n:
                raise bad_argument(name, f"<{len(column)} items>", f"must have one item per input ({n}) or be empty")

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_calls(
        cls,
        fn: Callable[..., Any],
        inputs: Iterable[dict[str, Any]],
        *,
        function: str = "",
        source_hash: str = "",
    ) -> "Traces":
        """Call `fn(**kwargs)` for each input and keep every outcome (used for oracle calls)."""
        from ._identity import function_name, kwargs_caller, source_hash as hash_source

        call = kwargs_caller(fn)
        kept_inputs: list[dict[str, Any]] = []
        outputs: list[Any] = []
        errors: list[ErrorInfo | None] = []
        durations: list[float | None] = []
        for kwargs in inputs:
            start = time.perf_counter()
            try:
                output, error = call(**kwargs), None
            except Exception as exc:  # the outcome of the legacy function, kept as data
                output, error = None, ErrorInfo.from_exception(exc)
            durations.append(time.perf_counter() - start)
            kept_inputs.append(dict(kwargs))
            outputs.append(output)
            errors.append(error)
        return cls(
            kept_inputs, outputs, errors,
            function=function or function_name(fn),
            source_hash=source_hash or hash_source(fn),
            durations=durations,
        )

    @classmethod
    def empty(cls, function: str = "", source_hash: str = "") -> "Traces":
        return cls([], [], [], function=function, source_hash=source_hash)

    # -- sequence behaviour -----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.inputs)

    def __iter__(self) -> Iterator[Trace]:
        for i in range(len(self)):
            yield self[i]

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return self.subset(range(len(self))[index])
        return Trace(self.inputs[index], self.outputs[index], self.errors[index],
                     self.durations[index], self.timestamps[index])

    def subset(self, indices: Iterable[int]) -> "Traces":
        """The traces at `indices`, in that order."""
        picked = list(indices)
        return Traces(
            [self.inputs[i] for i in picked], [self.outputs[i] for i in picked],
            [self.errors[i] for i in picked], function=self.function, source_hash=self.source_hash,
            durations=[self.durations[i] for i in picked], timestamps=[self.timestamps[i] for i in picked],
            skipped=self.skipped,
        )

    def __add__(self, other: "Traces") -> "Traces":
        if not isinstance(other, Traces):
            return NotImplemented
        return Traces(
            self.inputs + other.inputs, self.outputs + other.outputs, self.errors + other.errors,
            function=self.function or other.function, source_hash=self.source_hash or other.source_hash,
            durations=self.durations + other.durations, timestamps=self.timestamps + other.timestamps,
            skipped=self.skipped + other.skipped,
        )

    # -- views ------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        """Argument names, in the order of the first call (then any later ones)."""
        seen: dict[str, None] = {}
        for kwargs in self.inputs:
            for key in kwargs:
                seen.setdefault(key, None)
        return list(seen)

    @property
    def raised(self) -> np.ndarray:
        """Boolean mask of the calls that raised."""
        return np.array([e is not None for e in self.errors], dtype=bool)

    @property
    def replayable(self) -> np.ndarray:
        """Boolean mask of calls whose every argument was stored as a value (not a repr or hash)."""
        return np.array(
            [not any(isinstance(v, (NonReplayable, Redacted)) for v in kw.values()) for kw in self.inputs],
            dtype=bool,
        )

    def columns(self) -> dict[str, np.ndarray]:
        """Input columns by argument name (see `column_array` for the dtypes)."""
        return {name: column_array([kw.get(name) for kw in self.inputs]) for name in self.names}

    def output_array(self) -> np.ndarray:
        """Outputs as numpy: float (NaN where raised), 2-D for vectors, object for labels."""
        values = self.outputs
        raised = self.raised
        numeric = [v for v, r in zip(values, raised) if not r]
        if numeric and all(_is_number(v) for v in numeric):
            return np.array([np.nan if r else float(v) for v, r in zip(values, raised)], dtype=float)
        if numeric and all(_is_vector(v) for v in numeric) and len({len(v) for v in numeric}) == 1:
            width = len(numeric[0])
            return np.array(
                [np.full(width, np.nan) if r else np.asarray(v, dtype=float) for v, r in zip(values, raised)],
                dtype=float,
            )
        return column_array(values) if not raised.any() else np.array(values, dtype=object)

    def to_arrays(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """`(columns, outputs)`: the input columns and the output array."""
        return self.columns(), self.output_array()

    def deduplicate(self) -> "Traces":
        """Keep the first call of each distinct input."""
        seen: set[Any] = set()
        keep: list[int] = []
        for index, kwargs in enumerate(self.inputs):
            key = _freeze(kwargs)
            if key not in seen:
                seen.add(key)
                keep.append(index)
        return self if len(keep) == len(self) else self.subset(keep)

    def to_parquet(self, path: str) -> None:
        """Write one row per call (inputs as columns, `output`, `error_type`, `error_message`)."""
        pa = require("pyarrow", "parquet")
        import pyarrow.parquet as pq

        table: dict[str, list[Any]] = {name: parquet_column([kw.get(name) for kw in self.inputs]) for name in self.names}
        table["output"] = parquet_column(list(self.outputs))
        table["error_type"] = [e.type if e else None for e in self.errors]
        table["error_message"] = [e.message if e else None for e in self.errors]
        table["duration_s"] = list(self.durations)
        pq.write_table(pa.table(table), path)

    @classmethod
    def from_parquet(
        cls,
        folder: Any,
        function: Any,
        *,
        source_hash: str | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        dedupe: bool = True,
        trusted_modules: Iterable[str] | None = None,
    ) -> "Traces":
        """The calls of `function` read from a dataset `TraceStore.export_parquet` wrote, so that
        `fit` (and each rank of `fit_distributed`) trains from files rather than from a store.

        `function`, `source_hash`, `dedupe` and `trusted_modules` mean what they mean for
        `TraceStore.load`; decoding runs no code. With `rank` and `world_size` this process reads
        only its own share of the function's files (a deterministic split by file; see
        `probes._parquet_read`).
        """
        from ._parquet_read import read_traces

        return read_traces(folder, function, source_hash=source_hash, rank=rank, world_size=world_size,
                           dedupe=dedupe, trusted_modules=trusted_modules)


def parquet_value(value: Any) -> Any:
    """A recorded value as a plain Parquet cell: numbers, text, bools, None, a list of floats for
    a numeric vector, else its repr (markers and unknown objects are shown, never rebuilt)."""
    if isinstance(value, (NonReplayable, Redacted)):
        return repr(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) for v in value):
        return [float(v) for v in value]
    return repr(value)


def parquet_column(values: list[Any]) -> list[Any]:
    """`parquet_value` of each value; a column mixing kinds (other than ints with floats)
    becomes text throughout, so that it has one Parquet type."""
    converted = [parquet_value(v) for v in values]
    kinds = {type(v) for v in converted if v is not None}
    if len(kinds) > 1 and not kinds <= {int, float}:  # mixed column: one string type
        return [None if v is None else str(v) for v in converted]
    return converted
