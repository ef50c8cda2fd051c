"""The writer's hot loop: encoding queued calls of one function column by column.

Per row, Python pays for every call it makes; per column, a type check (`set(map(type, ...))`)
and one C-level encoding of the whole column replace a dict, a tagged-value walk and a JSON
encoder call per trace. The text is the store's usual type-tagged JSON (`_encoding`), so
readers see no difference: a column of finite floats, ints, bools and None is encoded as one
JSON array (orjson when installed, else the standard library's C encoder) and split; strings
use the standard escaper; flat lists of such values are encoded whole; anything else goes
value by value through `_encoding.dumps`, as before. Where orjson is installed a float is
spelled its way (`1e-7` where the standard encoder writes `1e-07`): both read back as the
same float, and one value always gets the same spelling from this path, so `load`'s
de-duplication still sees repeats (rows written by 0.1.0 may spell such a float otherwise).
"""

from __future__ import annotations

import math
import operator
from functools import partial
from operator import itemgetter
from itertools import chain, repeat
from typing import Any, Callable, Sequence

from . import _encoding
from ._store import TraceColumns

try:  # a C codec: about 2x faster than the standard library's encoder on a column
    import orjson as _orjson

    _orjson_dumps: Callable[..., bytes] | None = _orjson.dumps
    #: anything orjson would write in a form of its own (datetimes, subclasses, dataclasses) raises
    _STRICT = _orjson.OPT_PASSTHROUGH_DATETIME | _orjson.OPT_PASSTHROUGH_SUBCLASS | _orjson.OPT_PASSTHROUGH_DATACLASS
except (ImportError, AttributeError):  # pragma: no cover - no (or a too old) orjson: the standard encoder
    _orjson_dumps = None
    _STRICT = 0

try:
    from json.encoder import c_encode_basestring as _quote  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    from json.encoder import py_encode_basestring as _quote

if _quote is None:  # pragma: no cover
    from json.encoder import py_encode_basestring as _quote

_NONE = type(None)
#: JSON-native scalars that need no tag (floats only while finite)
_NUMERIC = frozenset({float, int, bool, _NONE})
_TEXTUAL = frozenset({str, int, bool, _NONE})
_not_none = partial(operator.is_not, None)
#: the ints orjson writes itself (int64 and uint64)
_INT_LOW, _INT_HIGH = -(2 ** 63), 2 ** 64 - 1
_dumps = _encoding.dumps
_isfinite = math.isfinite


def _finite(values: Sequence[Any], types: set[type]) -> bool:
    """No nan or inf among the floats of a numeric column (a sum that overflows says no too)."""
    if float not in types:
        return True
    try:
        return _isfinite(sum(values) if _NONE not in types else sum(filter(_not_none, values)))
    except (OverflowError, TypeError):  # an int too large for a float
        return False


def _array_text(values: Sequence[Any]) -> str:
    """JSON array text of JSON-native values (finite floats checked by the caller)."""
    if _orjson_dumps is not None:
        try:
            return _orjson_dumps(values).decode()
        except TypeError:  # an int beyond 64 bits (orjson's limit): the standard encoder takes it
            pass
    return _encoding.dumps_encoded(values)


def _one(value: Any) -> str:
    """One value's text, a finite float spelled as a float column spells it (orjson's shortest
    form, `1e-7`, where installed), so a value never gets two spellings in one store."""
    if type(value) is float and _orjson_dumps is not None and value - value == 0.0:
        return _orjson_dumps(value).decode()
    return _dumps(value)


def _list_text(value: list[Any]) -> str:
    types = set(map(type, value))
    if (types <= _NUMERIC and _finite(value, types)) or types <= _TEXTUAL:
        return _array_text(value)
    return _dumps(value)


def column_pieces(values: Sequence[Any], flat_lists: bool = False) -> tuple[list[str], str, str]:
    """`(texts, open, close)`: the tagged JSON text of each value of one column is
    `open + text + close` (a column of flat numeric lists is encoded as one array and split,
    so its items come without their brackets). `flat_lists`: the caller knows every list
    holds only `IMMUTABLE_SCALARS` (the wrappers' snapshots do), so a list column whose
    encoding shows no string, null or refusal is numeric and needs no per-item type check."""
    n = len(values)
    if not n:
        return [], "", ""
    types = set(map(type, values))
    if flat_lists and types == {list} and _orjson_dumps is not None:
        try:
            text = _orjson_dumps(values, option=_STRICT).decode()
        except TypeError:  # complex, bytes, Decimal, datetime, numpy scalars, big ints ...
            text = '"'
        if '"' not in text and "null" not in text:  # no str or UUID, no None, nan or inf
            parts = text[2:-2].split("],[")
            if len(parts) == n:
                return parts, "[", "]"
    if types <= _NUMERIC:
        if _orjson_dumps is not None:
            try:
                text = _orjson_dumps(values).decode()
            except TypeError:  # ints beyond orjson's 64 bits: null here, spelled out below
                text = _orjson_dumps([None if type(v) is int and not _INT_LOW <= v <= _INT_HIGH else v
                                      for v in values]).decode()
        else:
            try:
                text = _encoding.dumps_encoded(values)
            except ValueError:  # nan or inf, which the standard encoder refuses: tagged one by one
                return list(map(_dumps, values)), "", ""
        parts = text[1:-1].split(",")
        if len(parts) == n:
            if "null" in text:  # orjson writes nan and inf as null: those get their tags back (and big ints)
                for index, part in enumerate(parts):
                    if part == "null" and values[index] is not None:
                        parts[index] = _dumps(values[index])
            return parts, "", ""
    elif types == {str}:
        return list(map(_quote, values)), "", ""
    elif types == {list}:
        inner = set(map(type, chain.from_iterable(values)))
        if inner <= _NUMERIC and (_NONE in inner and _finite(list(chain.from_iterable(values)), inner)
                                  or _NONE not in inner):
            try:
                text = _array_text(values)
            except ValueError:  # nan or inf, refused by the standard encoder
                text = "null"
            if _NONE in inner or "null" not in text:  # orjson writes nan and inf as null
                parts = text[2:-2].split("],[")
                if len(parts) == n:
                    return parts, "[", "]"
        return list(map(_list_text, values)), "", ""
    return list(map(_one, values)), "", ""


def column_texts(values: Sequence[Any]) -> list[str]:
    """The tagged JSON text of each value of one column (the output's, say)."""
    texts, open_, close = column_pieces(values)
    if not open_:
        return texts
    n = len(texts)
    return list(map("".join, zip(repeat(open_, n), texts, repeat(close, n))))


def object_texts(names: Sequence[str], columns: Sequence[tuple[list[str], str, str]], n: int) -> list[str]:
    """`{"name": value, ...}` per row (the `encode_inputs` text) from each column's pieces,
    joined with the constant parts in between (about 3x cheaper per row than %-formatting)."""
    if not names:
        return ["{}"] * n
    parts: list[Any] = []
    const = "{"
    for name, (texts, open_, close) in zip(names, columns):
        parts.append(repeat(const + _quote(name) + ":" + open_, n))
        parts.append(texts)
        const = close + ","
    parts.append(repeat(const[:-1] + "}", n))
    return list(map("".join, zip(*parts)))


def encode_group(st: Any, items: Sequence[tuple[Any, ...]], clock_offset: float,
                 redacted: Callable[[Any], Any]) -> TraceColumns:
    """Queued calls `(state, t0, t1, output, error, *values)` of one generated wrapper as columns."""
    n = len(items)
    t0s, t1s, outputs, errors = (list(map(itemgetter(k), items)) for k in range(1, 5))
    texts = []
    for index, name in enumerate(st.arg_names, 5):
        values = list(map(itemgetter(index), items))
        if name in st.redact:
            values = list(map(redacted, values))
        texts.append(column_pieces(values, flat_lists=True))  # the wrappers' list snapshots are flat
    inputs = object_texts(st.arg_names, texts, n)
    if errors.count(None) == n:
        out_texts: list[str | None] = column_texts(outputs)
        error_types = error_messages = None
    else:
        out_texts = [None if error is not None else _one(out) for out, error in zip(outputs, errors)]
        error_types = [None if error is None else error.type for error in errors]
        error_messages = [None if error is None else error.message for error in errors]
    return TraceColumns(st.name, st.source_hash, inputs, out_texts, error_types, error_messages,
                        list(map(operator.sub, t1s, t0s)), list(map(clock_offset.__add__, t0s)))


def from_records(records: Sequence[Any]) -> TraceColumns:
    """`TraceRecord`s of one function version as columns (the generic wrapper's slow path)."""
    function, source_hash, inputs, outputs, error_types, error_messages, durations, timestamps = \
        (list(column) for column in zip(*records))
    n = len(records)
    if error_types.count(None) == n:
        error_types = error_messages = None  # type: ignore[assignment]
    return TraceColumns(function[0], source_hash[0], inputs, outputs, error_types, error_messages, durations,
                        timestamps)


def drop_seen(batch: TraceColumns, seen: set[Any], limit: int = 100_000) -> tuple[TraceColumns, int]:
    """`batch` without the calls whose (inputs, outcome) `seen` already holds; `seen` learns
    the rest (and is cleared past `limit` keys, so memory stays bounded). Returns the count left out."""
    n = len(batch.inputs)
    none = [None] * n
    keys = list(zip(batch.inputs, batch.outputs, batch.error_types or none, batch.error_messages or none))
    keep = []
    for index, key in enumerate(keys):
        if key not in seen:
            seen.add(key)
            keep.append(index)
    if len(seen) > limit:
        seen.clear()
    if len(keep) == n:
        return batch, 0
    pick = partial(_pick, keep)
    return TraceColumns(batch.function, batch.source_hash, pick(batch.inputs), pick(batch.outputs),
                        None if batch.error_types is None else pick(batch.error_types),
                        None if batch.error_messages is None else pick(batch.error_messages),
                        pick(batch.durations), pick(batch.timestamps)), n - len(keep)


def _pick(indices: list[int], values: Sequence[Any]) -> list[Any]:
    return [values[i] for i in indices]
