"""What the inputs and the output of a function look like.

Training encodes inputs by kind, verification draws inputs from the domain, and the guarded
swap refuses inputs outside it: all three read this one description.
"""

from __future__ import annotations

import enum
import inspect
import json
import keyword
import math
import typing
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from ._errors import SchemaError
from ._identity import function_name, unwrap
from ._traces import NonReplayable, Redacted, Traces, _is_number, _is_vector
from ._validation import bad_argument, check_number, check_seed

INPUT_KINDS = ("real", "integer", "boolean", "categorical", "vector")
OUTPUT_KINDS = ("real", "vector", "label", "none")
#: An integer output with at most this many distinct values is treated as a label (a class id).
LABEL_MAX_DISTINCT = 20


# -- JSON for category values (str, int, float, bool, None, enum members) ------------------------
def _finite(value: Any) -> bool:
    """math.isfinite, where an int too large for a float counts as infinite."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _encode_value(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        cls = type(value)
        return {"enum": f"{cls.__module__}:{cls.__qualname__}", "name": value.name}
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise SchemaError(f"category value {value!r} cannot be stored in a schema: use str, int, bool or an Enum")


def _decode_value(data: Any) -> Any:
    """A stored category back: an enum member only when its class is already imported and is an
    Enum (nothing the data names is imported or called), else its name."""
    if isinstance(data, dict) and "enum" in data:
        import enum

        from ._encoding import resolve_class

        kind = resolve_class(data["enum"])
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            member = kind.__dict__.get("_member_map_", {}).get(data.get("name"))
            if isinstance(member, kind):
                return member
        return data.get("name")  # enum gone, renamed or not imported: keep the name
    return data


@dataclass(frozen=True)
class Field:
    """One argument: its kind and the domain it was seen in (or declared for)."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    categories: tuple[Any, ...] = ()
    length: int | None = None
    container: str = ""  # vectors: "list", "tuple" or "ndarray", so samples have the caller's type

    def __post_init__(self) -> None:
        if self.kind not in INPUT_KINDS:
            raise bad_argument(f"Field({self.name!r}).kind", self.kind, f"must be one of {INPUT_KINDS}")
        if self.kind in ("real", "integer", "vector"):
            if self.low is None or self.high is None:
                raise bad_argument(f"{self.name}", (self.low, self.high), "a number needs a (low, high) range",
                                   f"Pass {self.name}=(low, high)")
            if not all(_is_number(bound) for bound in (self.low, self.high)):
                raise bad_argument(self.name, (self.low, self.high), "a range needs two numbers",
                                   f"Pass {self.name}=(low, high) with numbers")
            if not (_finite(self.low) and _finite(self.high)) or self.low > self.high:
                raise bad_argument(self.name, (self.low, self.high), "range must be finite with low <= high",
                                   f"Pass {self.name}=(low, high) with low <= high")
        if self.kind == "categorical" and not self.categories:
            raise bad_argument(self.name, list(self.categories), "a category needs at least one value",
                               f"Pass {self.name}=['a', 'b', ...]")
        if self.kind == "vector" and (not _is_number(self.length) or self.length != int(self.length)
                                      or self.length < 1):
            raise bad_argument(f"{self.name}.length", self.length, "a vector needs a length >= 1")
        if self.kind == "boolean" and not self.categories:
            object.__setattr__(self, "categories", (False, True))

    @property
    def width(self) -> int:
        """Number of scalar slots the field takes (vector length, else 1)."""
        return int(self.length) if self.kind == "vector" else 1

    def contains(self, value: Any) -> tuple[bool, str]:
        """Whether `value` lies in this field's domain, and if not, why (for fallbacks and errors)."""
        name = self.name
        if self.kind == "boolean":
            if isinstance(value, (bool, np.bool_)):
                return True, ""
            return False, f"{name}={value!r} is not a bool"
        if self.kind == "categorical":
            try:
                known = value in self.categories
            except Exception:  # unhashable or odd equality: not a known category
                known = False
            return (True, "") if known else (False, f"{name}={value!r} is not a known category")
        if self.kind == "vector":
            if not _is_vector(value) and not (isinstance(value, np.ndarray) and value.ndim == 1):
                return False, f"{name}={value!r} is not a vector of numbers"
            array = np.asarray(value, dtype=float)
            if array.shape != (self.length,):
                return False, f"{name} has length {array.shape[0]}, expected {self.length}"
            if not np.all(np.isfinite(array)):
                return False, f"{name} has a non-finite element"
            if array.min() < self.low or array.max() > self.high:  # type: ignore[operator]
                return False, f"{name} has an element outside the range [{self.low}, {self.high}]"
            return True, ""
        if isinstance(value, (bool, np.bool_)) or not _is_number(value):
            return False, f"{name}={value!r} is not a number"
        number = float(value)
        if not math.isfinite(number):
            return False, f"{name}={value!r} is not finite"
        if self.kind == "integer" and number != int(number):
            return False, f"{name}={value!r} is not a whole number"
        if number < self.low or number > self.high:  # type: ignore[operator]
            return False, f"{name}={value!r} is outside the range [{self.low}, {self.high}]"
        return True, ""

    def widened(self, factor: float) -> "Field":
        """The same field with its numeric range stretched by `factor` of its span on each side."""
        if self.kind not in ("real", "integer", "vector") or factor <= 0:
            return self
        span = (self.high - self.low) or max(1.0, abs(self.low))  # type: ignore[operator]
        low, high = self.low - factor * span, self.high + factor * span  # type: ignore[operator]
        if self.kind == "integer":
            low, high = math.floor(low), math.ceil(high)
        return replace(self, low=low, high=high)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.low is not None:
            data["low"], data["high"] = self.low, self.high
        if self.categories and self.kind != "boolean":
            data["categories"] = [_encode_value(c) for c in self.categories]
        if self.length is not None:
            data["length"] = self.length
        if self.container:
            data["container"] = self.container
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Field":
        """A field from its JSON description. The name becomes an argument name in generated code
        (binders, distilled rules), so anything but a non-keyword identifier is refused."""
        name = data["name"]
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise SchemaError(f"field name={name!r} : must be a Python identifier that is not a keyword (it is "
                              "an argument name of the legacy function). Describe the schema with the "
                              "function's own argument names")
        return cls(
            name=name, kind=data["kind"], low=data.get("low"), high=data.get("high"),
            categories=tuple(_decode_value(c) for c in data.get("categories", ())),
            length=data.get("length"), container=data.get("container", ""),
        )


@dataclass(frozen=True)
class OutputSpec:
    """What the function returns: a real, a vector of reals, or a label; and whether it raises."""

    kind: str
    length: int | None = None
    labels: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    raises: bool = False
    error_types: tuple[str, ...] = ()
    python_type: str = ""  # "float", "int", "tuple", "list", "ndarray", "str", "bool", "enum"
    #: Grid every observed real output lies on (0.01 for amounts rounded to cents), else None.
    #: A surrogate that snaps to it is exact wherever its own error is under half a step.
    quantum: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in OUTPUT_KINDS:
            raise bad_argument("output.kind", self.kind, f"must be one of {OUTPUT_KINDS}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "length": self.length, "labels": [_encode_value(v) for v in self.labels],
            "low": self.low, "high": self.high, "raises": self.raises,
            "error_types": list(self.error_types), "python_type": self.python_type,
            "quantum": self.quantum,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "OutputSpec":
        return cls(
            kind=data["kind"], length=data.get("length"),
            labels=tuple(_decode_value(v) for v in data.get("labels", ())),
            low=data.get("low"), high=data.get("high"), raises=bool(data.get("raises", False)),
            error_types=tuple(data.get("error_types", ())), python_type=data.get("python_type", ""),
            quantum=data.get("quantum"),
        )


def output_quantum(values: np.ndarray, *, max_decimals: int = 4, min_distinct: int = 8) -> float | None:
    """The decimal grid (1, 0.1, 0.01, ...) all finite `values` lie on, if the evidence is strong.

    Needs `min_distinct` distinct values, so that a handful of round numbers is not taken for a
    rounding rule; a float output that merely happens to look round is rare past that.
    """
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0 or np.unique(finite).size < min_distinct:
        return None
    for decimals in range(0, max_decimals + 1):
        scaled = finite * 10.0**decimals
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-9 * np.maximum(1.0, np.abs(scaled))):
            return float(10.0**-decimals)
    return None


def _parameters(fn: Callable[..., Any]) -> list[inspect.Parameter]:
    """The parameters a caller supplies (no self/cls, no *args/**kwargs)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"fn={fn!r} : its signature cannot be read ({exc})") from exc
    params = list(signature.parameters.values())
    inner = unwrap(fn)
    if params and params[0].name in ("self", "cls") and not inspect.ismethod(fn) and inner is fn and "." in getattr(fn, "__qualname__", ""):
        params = params[1:]
    variadic = [p.name for p in params if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if variadic:
        raise SchemaError(
            f"fn={function_name(fn)} : *args/**kwargs ({', '.join(variadic)}) cannot be described. "
            "Wrap the function in one with named parameters"
        )
    return params


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(unwrap(fn))
    except Exception:  # unresolvable forward references: fall back to observed values
        return {}


def _hint_kind(hint: Any) -> tuple[str | None, tuple[Any, ...]]:
    """Kind implied by a type hint, and categories it enumerates (Enum, Literal, bool)."""
    if hint is None:
        return None, ()
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        values = typing.get_args(hint)
        if all(isinstance(v, bool) for v in values):
            return "boolean", ()
        return "categorical", tuple(values)
    if hint is bool:
        return "boolean", ()
    if hint is int:
        return "integer", ()
    if hint is float:
        return "real", ()
    if hint is str:
        return "categorical", ()
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "categorical", tuple(hint)
    if hint in (list, tuple, np.ndarray) or origin in (list, tuple, Sequence, typing.Sequence):
        return "vector", ()
    return None, ()


def _container_of(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return "ndarray"
    return "tuple" if isinstance(value, tuple) else "list"


def _sorted_categories(values: Iterable[Any]) -> tuple[Any, ...]:
    unique: dict[Any, None] = {}
    for value in values:
        try:
            unique.setdefault(value, None)
        except TypeError:
            raise SchemaError(f"category value {value!r} is unhashable") from None
    try:
        return tuple(sorted(unique))
    except TypeError:
        return tuple(sorted(unique, key=repr))


def _field_from_values(name: str, values: list[Any], hint_kind: str | None,
                       hint_categories: tuple[Any, ...]) -> Field:
    """Infer one field from observed values, with the type hint taking precedence."""
    seen = [v for v in values if not isinstance(v, (NonReplayable, Redacted))]
    if not seen:
        raise SchemaError(f"argument {name!r} has no replayable observed value (redacted or unencodable); "
                          f"declare it with Schema.from_function(fn, {name}=...)")
    kind = hint_kind
    if kind is None:
        if all(isinstance(v, (bool, np.bool_)) for v in seen):
            kind = "boolean"
        elif all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in seen):
            kind = "integer"
        elif all(_is_number(v) for v in seen):
            kind = "real"
        elif all(_is_vector(v) for v in seen) and len({len(v) for v in seen}) == 1:
            kind = "vector"
        else:
            kind = "categorical"
    if kind == "boolean":
        return Field(name, "boolean")
    if kind == "categorical":
        return Field(name, "categorical", categories=_sorted_categories(list(hint_categories) + seen))
    if kind == "vector":
        arrays = [np.asarray(v, dtype=float) for v in seen]
        lengths = {a.shape for a in arrays}
        if len(lengths) != 1 or len(next(iter(lengths))) != 1:
            raise SchemaError(f"argument {name!r} holds vectors of different lengths {sorted(lengths)}")
        stacked = np.stack(arrays)
        finite = stacked[np.isfinite(stacked)]
        return Field(name, "vector", low=float(finite.min()), high=float(finite.max()),
                     length=stacked.shape[1], container=_container_of(seen[0]))
    numbers = np.asarray([float(v) for v in seen if _is_number(v) or isinstance(v, (bool, np.bool_))], dtype=float)
    finite = numbers[np.isfinite(numbers)]
    if finite.size == 0:
        raise SchemaError(f"argument {name!r} has no finite observed value")
    low, high = float(finite.min()), float(finite.max())
    if kind == "integer":
        return Field(name, "integer", low=math.floor(low), high=math.ceil(high))
    return Field(name, "real", low=low, high=high)


def _output_python_type(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return "enum"
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    if isinstance(value, np.ndarray):
        return "ndarray"
    if isinstance(value, tuple):
        return "tuple"
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "str"
    return type(value).__name__


def _output_from_traces(traces: Traces) -> OutputSpec:
    raised = traces.raised
    values = [v for v, r in zip(traces.outputs, raised) if not r]
    error_types = tuple(sorted({e.type for e in traces.errors if e is not None}))
    if not values:
        return OutputSpec("none", raises=bool(raised.any()), error_types=error_types)
    python_type = _output_python_type(values[0])
    is_int = all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in values)
    if all(_is_number(v) for v in values) and not (is_int and len(set(values)) <= LABEL_MAX_DISTINCT):
        numbers = np.asarray(values, dtype=float)
        finite = numbers[np.isfinite(numbers)]
        low = float(finite.min()) if finite.size else None
        high = float(finite.max()) if finite.size else None
        quantum = None if python_type == "int" else output_quantum(numbers)
        return OutputSpec("real", low=low, high=high, raises=bool(raised.any()),
                          error_types=error_types, python_type=python_type, quantum=quantum)
    if all(_is_vector(v) for v in values) and len({len(v) for v in values}) == 1:
        stacked = np.asarray([np.asarray(v, dtype=float) for v in values])
        finite = stacked[np.isfinite(stacked)]
        return OutputSpec("vector", length=stacked.shape[1],
                          low=float(finite.min()) if finite.size else None,
                          high=float(finite.max()) if finite.size else None,
                          raises=bool(raised.any()), error_types=error_types, python_type=python_type)
    return OutputSpec("label", labels=_sorted_categories(values), raises=bool(raised.any()),
                      error_types=error_types, python_type=python_type)


def _spec_to_field(name: str, spec: Any, hint_kind: str | None, hint_categories: tuple[Any, ...]) -> Field:
    """Turn a user's field spec ((low, high), [values], dict, Field) into a Field."""
    if isinstance(spec, Field):
        return spec if spec.name == name else replace(spec, name=name)
    if isinstance(spec, Mapping):
        data = dict(spec)
        data.setdefault("name", name)
        data.setdefault("kind", "vector" if "length" in data else hint_kind or "real")
        if "categories" in data:
            data["categories"] = [_encode_value(c) for c in data["categories"]]
        return Field.from_dict(data)
    if isinstance(spec, type) and spec is bool:
        return Field(name, "boolean")
    if isinstance(spec, type) and issubclass(spec, enum.Enum):
        return Field(name, "categorical", categories=tuple(spec))
    if isinstance(spec, tuple) and len(spec) == 2 and all(_is_number(v) for v in spec):
        low, high = spec
        if low > high:
            raise bad_argument(name, spec, "low must be <= high", f"Pass {name}=({high}, {low})")
        integer = hint_kind == "integer" or (
            hint_kind is None and all(isinstance(v, (int, np.integer)) for v in spec)
        )
        if hint_kind == "vector":
            raise bad_argument(name, spec, "a vector argument needs a length",
                               f"Pass {name}={{'length': n, 'low': {low}, 'high': {high}}}")
        return Field(name, "integer" if integer else "real", low=low, high=high)
    if isinstance(spec, (list, tuple, set, frozenset)) and len(spec) > 0:
        values = list(spec)
        if all(isinstance(v, (bool, np.bool_)) for v in values) and set(values) == {True, False}:
            return Field(name, "boolean")
        return Field(name, "categorical", categories=_sorted_categories(values))
    raise bad_argument(
        name, spec, "is not a field spec",
        f"Pass {name}=(low, high) for a number, {name}=['a', 'b'] for a category, "
        f"{name}={{'length': n, 'low': lo, 'high': hi}} for a vector, or a probes.Field",
    )


@dataclass(frozen=True)
class Schema:
    """Per argument a `Field`; the `OutputSpec`; the function's `module:qualname`."""

    fields: tuple[Field, ...]
    output: OutputSpec = field(default_factory=lambda: OutputSpec("none"))
    function: str = ""

    # -- construction -------------------------------------------------------------------
    @classmethod
    def infer(cls, fn: Callable[..., Any], traces: Traces, **overrides: Any) -> "Schema":
        """Describe `fn` from its type hints and the values seen in `traces`.

        `overrides` take the same specs as `from_function` for arguments whose observed range is
        too narrow or that were redacted.
        """
        if not isinstance(traces, Traces):
            raise bad_argument("traces", type(traces).__name__, "must be a probes.Traces",
                               "Load them with TraceStore.open(...).load(fn)")
        if len(traces) == 0:
            raise bad_argument("traces", "<0 traces>", "needs at least one recorded call",
                               "Record some calls first, or use Schema.from_function(fn, **specs)")
        hints = _hints(fn)
        fields = []
        for param in _parameters(fn):
            kind, categories = _hint_kind(hints.get(param.name))
            if param.name in overrides:
                fields.append(_spec_to_field(param.name, overrides.pop(param.name), kind, categories))
                continue
            values = [kw[param.name] for kw in traces.inputs if param.name in kw]
            if not values and param.default is not inspect.Parameter.empty:
                values = [param.default]
            fields.append(_field_from_values(param.name, values, kind, categories))
        if overrides:
            raise bad_argument(next(iter(overrides)), overrides[next(iter(overrides))],
                               f"is not a parameter of {function_name(fn)}")
        return cls(tuple(fields), _output_from_traces(traces), function_name(fn))

    @classmethod
    def from_function(cls, fn: Callable[..., Any], *, output: OutputSpec | str | None = None,
                      probe: int = 64, seed: int = 0, **specs: Any) -> "Schema":
        """Describe `fn` before any trace exists, from type hints and `specs` per argument.

        The output kind is taken from `output`, else learned by calling `fn` on `probe` inputs
        drawn from the declared domain (set `probe=0` for a function that must not be called).
        """
        check_number("probe", probe, low=0, integer=True, fix="Pass probe=0 for a function that must not be called")
        check_seed("seed", seed)
        hints = _hints(fn)
        fields = []
        for param in _parameters(fn):
            kind, categories = _hint_kind(hints.get(param.name))
            if param.name in specs:
                fields.append(_spec_to_field(param.name, specs.pop(param.name), kind, categories))
            elif kind == "boolean":
                fields.append(Field(param.name, "boolean"))
            elif kind == "categorical" and categories:
                fields.append(Field(param.name, "categorical", categories=_sorted_categories(categories)))
            else:
                raise bad_argument(
                    param.name, None, f"has no spec and its type hint does not give a domain",
                    f"Pass {param.name}=(low, high) for a number or {param.name}=['a', 'b'] for a category",
                )
        if specs:
            name = next(iter(specs))
            raise bad_argument(name, specs[name], f"is not a parameter of {function_name(fn)}",
                               f"Parameters are: {', '.join(f.name for f in fields)}")
        schema = cls(tuple(fields), OutputSpec("none"), function_name(fn))
        if isinstance(output, OutputSpec):
            return replace(schema, output=output)
        if isinstance(output, str):
            return replace(schema, output=OutputSpec(output))
        if output is not None:
            raise bad_argument("output", output, "must be an OutputSpec or a kind string",
                               f"Use one of {OUTPUT_KINDS}")
        if probe > 0:
            traces = Traces.from_calls(fn, schema.sample(int(probe), seed=seed))
            schema = replace(schema, output=_output_from_traces(traces))
        return schema

    # -- views ------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def __getitem__(self, name: str) -> Field:
        for item in self.fields:
            if item.name == name:
                return item
        raise KeyError(name)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def contains(self, kwargs: Mapping[str, Any]) -> tuple[bool, str]:
        """Whether a call's arguments lie in the domain, and the first reason if not."""
        for item in self.fields:
            if item.name not in kwargs:
                return False, f"missing argument {item.name!r}"
            ok, reason = item.contains(kwargs[item.name])
            if not ok:
                return False, reason
        extra = set(kwargs) - set(self.names)
        if extra:
            return False, f"unexpected argument {sorted(extra)[0]!r}"
        return True, ""

    def widen(self, factor: float) -> "Schema":
        """The schema with every numeric range stretched by `factor` of its span on each side."""
        if factor < 0:
            raise bad_argument("factor", factor, "must be >= 0", "Pass 0.1 to widen ranges by 10% each side")
        return replace(self, fields=tuple(f.widened(factor) for f in self.fields))

    # -- sampling ---------------------------------------------------------------------------
    def sample_columns(self, n: int, *, seed: int | None = 0,
                       rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """`n` inputs drawn uniformly from the domain, as columns (fast path for oracles)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise bad_argument("n", n, "must be an integer >= 0")
        rng = rng if rng is not None else np.random.default_rng(seed)
        columns: dict[str, np.ndarray] = {}
        for item in self.fields:
            if item.kind == "real":
                columns[item.name] = rng.uniform(item.low, item.high, size=n)
            elif item.kind == "integer":
                columns[item.name] = rng.integers(int(item.low), int(item.high), size=n, endpoint=True)
            elif item.kind == "boolean":
                columns[item.name] = rng.random(n) < 0.5
            elif item.kind == "categorical":
                index = rng.integers(0, len(item.categories), size=n)
                column = np.empty(n, dtype=object)
                for i, k in enumerate(index):
                    column[i] = item.categories[k]
                columns[item.name] = column
            else:
                columns[item.name] = rng.uniform(item.low, item.high, size=(n, item.width))
        return columns

    def sample(self, n: int, *, seed: int | None = 0, rng: np.random.Generator | None = None) -> list[dict[str, Any]]:
        """`n` inputs drawn uniformly from the domain, as kwargs dicts of plain Python values."""
        return self.rows(self.sample_columns(n, seed=seed, rng=rng))

    def rows(self, columns: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
        """Columns back to kwargs dicts, each value of the type the function expects."""
        lengths = {len(columns[f.name]) for f in self.fields}
        n = lengths.pop() if lengths else 0
        converted: dict[str, list[Any]] = {}
        for item in self.fields:
            column = columns[item.name]
            if item.kind == "real":
                converted[item.name] = [float(v) for v in column]
            elif item.kind == "integer":
                converted[item.name] = [int(v) for v in column]
            elif item.kind == "boolean":
                converted[item.name] = [bool(v) for v in column]
            elif item.kind == "categorical":
                converted[item.name] = list(column)
            else:
                converted[item.name] = [self._as_container(item, row) for row in column]
        return [{name: converted[name][i] for name in converted} for i in range(n)]

    @staticmethod
    def _as_container(item: Field, row: Any) -> Any:
        values = np.asarray(row, dtype=float)
        if item.container == "ndarray":
            return values.copy()
        listed = [float(v) for v in values]
        return tuple(listed) if item.container == "tuple" else listed

    # -- persistence ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"function": self.function, "fields": [f.to_dict() for f in self.fields],
                "output": self.output.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Schema":
        """A schema from `to_dict`'s JSON; field names must be distinct non-keyword identifiers."""
        try:
            fields = tuple(Field.from_dict(f) for f in data["fields"])
            schema = cls(fields, OutputSpec.from_dict(data["output"]), data.get("function", ""))
        except (KeyError, TypeError, AttributeError) as exc:
            raise SchemaError(f"not a schema description: missing or malformed {exc}") from exc
        names = [f.name for f in fields]
        for name in names:
            if names.count(name) > 1:
                raise SchemaError(f"field name={name!r} : appears more than once; each argument has one field")
        return schema

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Schema":
        return cls.from_dict(json.loads(text))
