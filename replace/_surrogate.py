"""The trained stand-in: called like the legacy function, answered by numpy matmuls.

A `Surrogate` binds arguments exactly as the original does, refuses inputs outside the
trained domain (`OutOfDomainError`, never a silent number), raises the original's exception
where the original would, and returns the original's Python type. Inference runs on numpy
copies of the weights, so a single call costs microseconds; torch is needed only for
explanation and export. Single calls and batches take the compiled plans of `_fastpath`
(float64 for one row, float32 for batches, the precision the weights were trained in);
`StackedEnsemble.one/many` in float64 stay the reference they are tested against, and
`precision="float64"` gives it for batches. Saved as a directory of JSON plus safetensors:
no pickle, integrity checked on load.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from probes import ErrorInfo, OutOfDomainError, Schema, Tolerance
from probes._validation import bad_argument, check_callable, check_flag

from . import _hybrid
from . import _manifest as mf
from ._columns import as_columns, plain_value, take_rows
from ._encoding import InputEncoder
from ._fastpath import ManyRows, OneRow, domain_mask, fragile_rows
from ._models import ModelWeights, StackedEnsemble, surrogate_module
from ._output_encoding import OutputEncoder, make_exception
from ._predictions import BatchPrediction, OnePrediction, SurrogateMetrics
from ._surrogate_file import load_surrogate, save_surrogate

PRECISIONS = ("float32", "float64")
#: what `predict_batch` gives rows outside the trained domain
OUT_OF_DOMAIN = ("raise", "nan", "original")
#: rows encoded at a time by the float32 batch path
ENCODE_CHUNK = 16384


class Surrogate:
    """A neural stand-in for one legacy function (build it with `replace.fit`)."""

    def __init__(self, *, schema: Schema, tolerance: Tolerance, input_encoder: InputEncoder,
                 output_encoder: OutputEncoder, weights: ModelWeights, signature: Sequence[Mapping[str, Any]],
                 function: str, source_hash: str = "", metrics: SurrogateMetrics | None = None,
                 manifest: Mapping[str, Any] | None = None):
        self.schema = schema
        self.tolerance = tolerance
        self.function = function
        self.source_hash = source_hash
        self.metrics = metrics or SurrogateMetrics()
        #: the rows `fit` trained on (columns, outputs, errors, paths, weights, sources); set by
        #: `fit` in this process only, not saved (None after `load`)
        self.training_data_: dict[str, Any] | None = None
        #: the guard's error predictor and calibration rows (`replace._calibration.Calibration`),
        #: set by `fit`, saved and loaded with the surrogate as plain numbers; None when absent
        self.calibration: Any = None
        #: `fit` only, this process only: the guard's labelled rows {source: (columns, outputs, errors)}
        self.guard_rows_: dict[str, Any] | None = None
        self.manifest: dict[str, Any] = dict(manifest or {})
        self._in = input_encoder
        self._out = output_encoder
        self._weights = weights
        self._signature = [dict(p) for p in signature]
        self._names = schema.names
        self._defaults = mf.defaults_of(self._signature)
        self._binder = mf.make_binder(function.split(":", 1)[-1] or "surrogate", self._signature)
        self._enc_check = input_encoder.one_encoders(check=True)
        self._enc_free = input_encoder.one_encoders(check=False)
        if weights.path_aware:
            self._gate = StackedEnsemble(weights.gate or [])
            self._experts = [StackedEnsemble(e) for e in weights.experts or []]
            self._ens = None
            self._path_ids = list(weights.path_ids or [])
        else:
            self._ens = StackedEnsemble(weights.members)
            self._gate = None
            self._experts = []
            self._path_ids = []
        out = output_encoder
        self._w = out.width
        self._fast_real = out.kind == "real" and out.width == 1 and out.warp in ("none", "asinh")
        self._asinh = out.warp == "asinh"
        self._scale = float(out.scale)
        self._mean0 = float(out.mean[0]) if out.width else 0.0
        self._std0 = float(out.std[0]) if out.width else 1.0
        self._int_out = out.python_type == "int"
        self._decimals = out.decimals
        # fast inference plans (see _fastpath); the StackedEnsembles above stay the reference
        plain_real = self._fast_real and not out.classes
        self._one = OneRow(weights, out.out_width,
                           (self._std0, self._mean0, not self._asinh) if plain_real else None)
        self._plain_real = plain_real
        self._many: ManyRows | None = None
        self._path_array = np.array(self._path_ids, dtype=object)
        #: exact expressions by path id (a hybrid surrogate, see `_hybrid`; "*" for a plain model's one)
        self.expressions_: dict[str, Any] = {}
        self._exact: list[Any] | None = None  # per path index: (expression, names) or None
        #: the exact program (`probes._program.ExactProgram`: the code's partition and pieces) that
        #: answers before the network wherever its leaf is exact; None when absent
        self.program_: Any = None
        self._bound_names = tuple(p["name"] for p in self._signature)  # the binder's order
        import inspect

        self.__signature__ = inspect.signature(self._binder)
        self.__name__ = function.split(":", 1)[-1].rsplit(".", 1)[-1] or "surrogate"
        self.__doc__ = f"Neural surrogate of {function} (neuroswap)."

    # -- public views -------------------------------------------------------------------
    @property
    def guard_predictor(self) -> Any:
        """The error predictor the guard's score uses (None without a calibration)."""
        return self.calibration.predictor if self.calibration is not None else None

    @property
    def ensemble_size(self) -> int:
        if self._weights.path_aware:
            return len((self._weights.experts or [[None]])[0])
        return len(self._weights.members)

    @property
    def architecture(self) -> str:
        return self._weights.architecture.label

    @property
    def path_aware(self) -> bool:
        return self._weights.path_aware

    @property
    def feature_names(self) -> list[str]:
        return list(self._in.feature_names_)

    @property
    def feature_groups(self) -> dict[str, list[int]]:
        return {k: list(v) for k, v in self._in.feature_groups_.items()}

    @property
    def input_encoder(self) -> InputEncoder:
        return self._in

    @property
    def output_encoder(self) -> OutputEncoder:
        return self._out

    @property
    def signature(self) -> list[dict[str, Any]]:
        """The original's parameters as saved (name, kind, default), in its order."""
        return [dict(p) for p in self._signature]

    @property
    def weights(self) -> ModelWeights:
        return self._weights

    def __repr__(self) -> str:
        return (f"Surrogate({self.function}, {self.architecture}, agreement={self.metrics.agreement:.4f}, "
                f"tolerance=Tolerance(abs={self.tolerance.abs}, rel={self.tolerance.rel}))")

    def _use_expressions(self, expressions: Mapping[str, Any]) -> None:
        """Answer these paths by their exact expressions ({path id: Expression}; {} for none)."""
        self._exact = _hybrid.exact_table(expressions, self._path_ids if self._gate is not None else None,
                                          self._out, self._names)
        self.expressions_ = dict(expressions)

    def _use_program(self, program: Any) -> None:
        """Answer first by this exact program (`probes._program.ExactProgram`; None for none):
        its exact leaves in float64, its raises by type, the network on its `neural` leaves."""
        if program is not None:
            unknown = sorted(program.names - set(self._names))
            if unknown:
                raise ValueError(f"exact program reads {unknown}, which the function does not take")
            program.use_row_functions(_hybrid.row_function)
        self.program_ = program

    def _program_over(self, kwargs: Mapping[str, Any], output: Any, error: ErrorInfo | None,
                      spread: float) -> tuple[Any, ErrorInfo | None, float]:
        """(output, error, spread) of one row, the exact program's answer (spread 0) where it has one;
        the one place single rows meet the program (predict_one, the float64 reference, the guard's
        one-row scorer), as `_hybrid.program_many` is for batches."""
        if self.program_ is None:
            return output, error, spread
        names = self._names
        answer = self.program_.answer_row(kwargs if all(n in kwargs for n in names) else {**self._defaults, **kwargs})
        return (answer[0], answer[1], 0.0) if answer is not None else (output, error, spread)

    # -- single calls ---------------------------------------------------------------------
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        values = self._binder(*args, **kwargs)
        feats: list[float] = []
        for enc, value in zip(self._enc_check, values):
            enc(value, feats)
        if self.program_ is not None:
            answer = self.program_.answer_row(dict(zip(self._bound_names, values)))
            if answer is not None:
                if answer[1] is not None:
                    raise make_exception(answer[1])
                return answer[0]
        if self._exact is not None:
            row = dict(zip(self._bound_names, values))
            if self._gate is None and not self._out.classes:  # one expression, no outcome for the network to add
                output = _hybrid.one(self, 0, None, None, 0.0, row)[0]
                if output is not None:
                    return output
            raw, index = self._one.raw(feats)
            output, error, _ = _hybrid.one(self, index, *self._decode_one(raw, False), row)
            if error is not None:
                raise make_exception(error)
            return output
        if self._plain_real:
            if self._asinh:
                members = self._one.value(feats).tolist()
                scale, sinh = self._scale, math.sinh
                value = sum([sinh(v) * scale for v in members]) / len(members)
            else:
                value = self._one.value(feats).item()
            if self._decimals is not None:
                value = round(value, self._decimals)
            return int(round(value)) if self._int_out else value
        raw = self._one.raw(feats)[0]
        output, error, _ = self._decode_one(raw, False)
        if error is not None:
            raise make_exception(error)
        return output

    def predict_one(self, kwargs: Mapping[str, Any]) -> OnePrediction:
        """The answer for one call's arguments, with spread and path; no domain check
        (the caller checks with `self.schema.contains`). Values that cannot be encoded at all
        (unknown category, NaN, wrong type) still raise OutOfDomainError."""
        feats = self._encode_one(kwargs)
        raw, index = self._one.raw(feats)
        output, error, spread = self._decode_one(raw)
        if self._exact is not None:
            output, error, spread = _hybrid.one(self, index, output, error, spread, kwargs)
        output, error, spread = self._program_over(kwargs, output, error, spread)
        return OnePrediction(output, error, spread, self._path_ids[index] if self._gate is not None else None)

    def _encode_one(self, kwargs: Mapping[str, Any]) -> list[float]:
        """One call's arguments as the network's input features (defaults filled in), the single
        encoding shared by `predict_one`, `_reference_one` and the guard's scorer."""
        feats: list[float] = []
        defaults = self._defaults
        for enc, name in zip(self._enc_free, self._names):
            if name in kwargs:
                enc(kwargs[name], feats)
            elif name in defaults:
                enc(defaults[name], feats)
            else:
                raise TypeError(f"{self.__name__}() missing argument {name!r}")
        return feats

    def _reference_one(self, kwargs: Mapping[str, Any]) -> OnePrediction:
        """`predict_one` by the reference float64 evaluation (tests pin the fast path to it)."""
        x = np.array(self._encode_one(kwargs))
        path, index = None, 0
        if self._ens is not None:
            raw = self._ens.one(x)
        else:
            raw, index = self._route_one(x)
            path = self._path_ids[index]
        output, error, spread = self._decode_one(raw)
        if self._exact is not None:
            output, error, spread = _hybrid.one(self, index, output, error, spread, kwargs)
        output, error, spread = self._program_over(kwargs, output, error, spread)
        return OnePrediction(output, error, spread, path)

    def _route_one(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        logits = self._gate.one(x)  # type: ignore[union-attr]
        index = int(np.argmax(logits.sum(axis=0)))
        return self._experts[index].one(x), index

    def _decode_one(self, raw: np.ndarray, want_spread: bool = True) -> tuple[Any, ErrorInfo | None, float]:
        out = self._out
        rows = raw.tolist()
        m = len(rows)
        w = self._w
        disagree = False
        if out.classes:
            c = len(out.classes)
            if m == 1:
                logits = rows[0][w:]
                best = max(range(c), key=logits.__getitem__)
                spread_cls = 0.0
            else:
                sums = [sum(r[w + j] for r in rows) for j in range(c)]
                best = max(range(c), key=sums.__getitem__)
                votes = 0
                for r in rows:
                    part = r[w:]
                    if max(range(c), key=part.__getitem__) == best:
                        votes += 1
                spread_cls = 1.0 - votes / m
            klass = out.classes[best]
            if klass.kind == "raise":
                return None, klass.error, spread_cls
            if klass.kind == "value":
                return klass.value, None, spread_cls
            if w == 0:
                return None, None, spread_cls
            disagree = spread_cls > 0
        if self._fast_real:
            mean0, std0 = self._mean0, self._std0
            if self._asinh:
                scale, sinh = self._scale, math.sinh
                values = [sinh(r[0] * std0 + mean0) * scale for r in rows]
            else:
                values = [r[0] * std0 + mean0 for r in rows]
            if m == 1:
                value = values[0]
                spread = 0.0
            else:
                value = sum(values) / m
                spread = max(abs(v - value) for v in values) if want_spread else 0.0
            if disagree:
                spread = math.inf
            if self._decimals is not None:
                value = round(value, self._decimals)
            return (int(round(value)) if self._int_out else value), None, spread
        decoded = out.decode_values(raw[:, :w])  # (M, w)
        mean = out.snap(decoded.mean(axis=0))
        spread = float(np.max(np.abs(decoded - mean))) if m > 1 else 0.0
        if disagree:
            spread = math.inf
        return out.python_value(mean), None, spread

    # -- batches ------------------------------------------------------------------------
    def encode(self, columns: Mapping[str, Any]) -> np.ndarray:
        """Encoded inputs (N, d) float32, the matrix `torch_module()` takes."""
        return self._in.encode(as_columns(columns))

    def predict_batch(self, columns: Mapping[str, Any], *, check: bool = True, precision: str = "float32",
                      out_of_domain: str = "raise", fn: Any = None) -> np.ndarray:
        """Vectorised answers: float (N,) or (N, k) with NaN where the original raises; object
        array for labels (None where it raises). `precision="float32"` (the precision the weights
        were trained in) runs the network 2-5x faster than "float64"; the path each row takes is
        the same in both.

        With `check`, rows outside the trained domain are found in one vectorised pass and
        `out_of_domain` decides what they get: "raise" (OutOfDomainError saying how many rows
        and which is first: row, argument, value, allowed range), "nan" (NaN, None for labels;
        the other rows are answered), or "original" (the legacy function `fn` answers them, NaN
        or None where it raises). `check=False` checks nothing (values that cannot be encoded
        still raise)."""
        check_flag("check", check, fix="Pass check=False to skip the domain check")
        check_callable("fn", fn, optional=True, fix="Pass fn=<the legacy function>")
        if out_of_domain not in OUT_OF_DOMAIN:
            raise bad_argument("out_of_domain", out_of_domain, f"must be one of {', '.join(map(repr, OUT_OF_DOMAIN))}",
                               "Pass out_of_domain='nan' for NaN in rows outside the domain, or "
                               "out_of_domain='original' with fn=<the legacy function> to answer them with it")
        if precision not in PRECISIONS:
            raise bad_argument("precision", precision, "must be 'float32' or 'float64'",
                               "Pass precision='float64' for the float64 reference evaluation")
        original = None
        if out_of_domain == "original":
            original = fn
            if original is None:
                raise bad_argument("fn", None, f"out_of_domain='original' answers rows outside the domain with the "
                                   f"legacy function, and the surrogate holds none ({self.function or 'unnamed'})",
                                   "Pass fn=<the legacy function>, or out_of_domain='nan'")
            if not callable(original):
                raise bad_argument("fn", original, "must be callable", "Pass fn=<the legacy function>")
        columns = as_columns(columns)
        if not check:
            return self._details(columns, precision, paths=False).outputs
        inside = self._check_columns(columns, raise_outside=out_of_domain == "raise")
        if inside.all():
            return self._details(columns, precision, paths=False).outputs
        rows_in = np.flatnonzero(inside)
        rows_out = np.flatnonzero(~inside)
        result = self._blank_outputs(len(inside))
        if rows_in.size:
            part = self._details({name: take_rows(columns[name], rows_in) for name in self._names}, precision,
                                 paths=False).outputs
            if result.dtype != object and part.dtype != result.dtype:
                result = result.astype(part.dtype)
            result[rows_in] = part
        if original is not None:
            self._answer_with(original, columns, rows_out, result)
        return result

    def _check_columns(self, columns: Mapping[str, Any], *, raise_outside: bool = True) -> np.ndarray:
        """The rows inside the domain (bool (N,)), from one vectorised pass; with `raise_outside`,
        any row outside raises OutOfDomainError (count, first row, argument, value, range)."""
        for name in self._names:
            if name not in columns:
                raise OutOfDomainError(f"{name}=<missing> : predict_batch needs a column per argument "
                                       f"({', '.join(self._names)})")
        mask = domain_mask(self.schema, columns)
        if raise_outside and not mask.all():
            outside = np.flatnonzero(~mask)
            row = int(outside[0])
            reason = ""
            for item in self.schema.fields:
                ok, why = item.contains(plain_value(columns[item.name][row]))
                if not ok:
                    reason = why + _allowed(item, why)
                    break
            count = (f"{outside.size} of {len(mask)} rows lie" if outside.size > 1 else f"1 of {len(mask)} rows lies")
            raise OutOfDomainError(
                f"row {row}: {reason or 'outside the trained domain'}; {count} outside the domain the surrogate "
                f"was trained on (row {row} is the first). Pass out_of_domain='nan' for NaN in those rows, or "
                "out_of_domain='original' with fn=<the legacy function> to answer them with it")
        return mask

    def _blank_outputs(self, n: int) -> np.ndarray:
        """`predict_batch`'s output for `n` rows with no answer: NaN, or None for labels."""
        out = self._out
        if out.kind == "label":
            return np.full(n, None, dtype=object)
        if out.kind == "vector":
            return np.full((n, out.width), np.nan)
        return np.full(n, np.nan)

    def _answer_with(self, fn: Any, columns: Mapping[str, Any], rows: np.ndarray, result: np.ndarray) -> None:
        """Fill `result[rows]` with `fn`'s answers in predict_batch's convention (NaN, or None for
        labels, where it raises or returns something of another kind)."""
        from probes._identity import kwargs_caller

        call = kwargs_caller(fn)
        fields = list(self.schema.fields)
        label = result.dtype == object
        for i in rows.tolist():
            kwargs = {item.name: plain_value(columns[item.name][i], item) for item in fields}
            try:
                value = call(**kwargs)
            except Exception:
                continue  # the blank (NaN / None) stands for "raises"
            if label:
                result[i] = value
                continue
            try:
                result[i] = np.asarray(value, dtype=float).reshape(result.shape[1:])
            except (TypeError, ValueError):
                pass

    def predict_details(self, columns: Mapping[str, Any], *, precision: str = "float32") -> BatchPrediction:
        """Answers with raise flags, errors, spread and paths; no range check (see `predict_one`);
        `precision` as in `predict_batch`."""
        return self._details(as_columns(columns), precision, paths=True)

    def _details(self, columns: Mapping[str, Any], precision: str, *, paths: bool) -> BatchPrediction:
        if self.program_ is not None:  # the exact program first; the network only where it does not answer
            return _hybrid.program_first(self, columns, lambda part: self._network_details(part, precision,
                                                                                          paths=paths))
        return self._network_details(columns, precision, paths=paths)

    def _network_details(self, columns: Mapping[str, Any], precision: str, *, paths: bool) -> BatchPrediction:
        if precision == "float64":
            return self._reference_details(columns)
        if precision not in PRECISIONS:
            raise bad_argument("precision", precision, "must be 'float32' or 'float64'",
                               "Pass precision='float64' for the float64 reference evaluation")
        if self._many is None:
            self._many = ManyRows(self._weights, self._out.out_width)
        names = [code.name for code in self._in.codes_]
        sliceable = all(isinstance(columns.get(k), (np.ndarray, list, tuple)) for k in names)
        n = len(columns[names[0]]) if names and sliceable else 0
        if n <= ENCODE_CHUNK:
            raw, choice = self._fast_raw(self._in.encode(columns, dtype=np.float64))
        else:
            # encoded in chunks too: the temporaries stay small (a whole-batch encoding costs
            # more in fresh memory than in arithmetic)
            raw = np.empty((self._many.m, n, self._out.out_width))
            choice = np.empty(n, dtype=np.int64) if self._gate is not None else None
            for start in range(0, n, ENCODE_CHUNK):
                stop = min(n, start + ENCODE_CHUNK)
                try:
                    X = self._in.encode({k: columns[k][start:stop] for k in names}, dtype=np.float64)
                except OutOfDomainError as exc:
                    X, first = None, exc
                if X is None:
                    self._in.encode(columns, dtype=np.float64)  # raises for the whole batch's first bad value
                    raise first
                raw[:, start:stop], c = self._fast_raw(X)
                if choice is not None:
                    choice[start:stop] = c
        paths_out = None
        if choice is not None and paths:
            paths_out = self._path_array[choice].tolist()
        return self._decode_many(raw, paths_out, columns=columns, choice=choice)

    def _fast_raw(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        raw, choice = self._many(X)  # type: ignore[misc]
        # rows where float32 rounding could change a discrete answer (class, vote, snapped
        # digit) are evaluated again in float64, so those answers are the reference's
        again = fragile_rows(raw, self._out)
        if again.size:
            raw[:, again], fixed = self._reference_raw(X[again])
            if choice is not None:
                choice[again] = fixed
        return raw, choice

    def _reference_details(self, columns: Mapping[str, Any]) -> BatchPrediction:
        """`predict_details` by the reference float64 evaluation."""
        columns = as_columns(columns)
        raw, choice = self._reference_raw(self._in.encode(columns, dtype=np.float64))
        paths = None if choice is None else [self._path_ids[i] for i in choice]
        return self._decode_many(raw, paths, columns=columns, choice=choice)

    def _reference_raw(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw network outputs (M, N, out) in float64 and the chosen paths (None for plain models)."""
        if self._ens is not None:
            return self._ens.many(X), None
        gate = self._gate.many(X).sum(axis=0)  # type: ignore[union-attr]
        choice = np.argmax(gate, axis=1)
        raw = np.zeros((self.ensemble_size, len(X), self._out.out_width))
        for p in np.unique(choice):
            rows = np.flatnonzero(choice == p)
            raw[:, rows, :] = self._experts[p].many(X[rows])
        return raw, choice

    def _decode_many(self, raw: np.ndarray, paths: list[str] | None, *, columns: Mapping[str, Any] | None = None,
                     choice: np.ndarray | None = None) -> BatchPrediction:
        """Decoded answers of raw outputs (M, N, out); with `columns` (the rows' arguments) and
        `choice` (the gate's path index per row), rows on exact paths answered by their expression."""
        details = self._decode_raw(raw, paths)
        if self._exact is not None and columns is not None:
            details = _hybrid.many(self, details, columns, choice)
        return details

    def _decode_raw(self, raw: np.ndarray, paths: list[str] | None) -> BatchPrediction:
        out = self._out
        m, n, _ = raw.shape
        w = out.width
        raises = np.zeros(n, dtype=bool)
        errors: list[ErrorInfo | None] = [None] * n
        spread = np.zeros(n)
        best = None
        if out.classes:
            logits = raw[:, :, w:]
            best = np.argmax(logits.sum(axis=0), axis=1)
            votes = (np.argmax(logits, axis=2) == best[None, :]).mean(axis=0)
            spread_cls = 1.0 - votes
            kinds = np.array([c.kind for c in out.classes], dtype=object)[best]
            raises = kinds == "raise"
            for i in np.flatnonzero(raises):
                errors[i] = out.classes[best[i]].error
            spread = spread_cls.astype(float)
        if w == 0:
            if out.kind == "label":
                table = np.empty(len(out.classes), dtype=object)
                table[:] = [c.value if c.kind == "value" else None for c in out.classes]
                outputs = table[best]
            else:
                outputs = np.full(n, np.nan)
            return BatchPrediction(outputs, raises, errors, spread, paths)
        decoded = out.decode_values(raw[:, :, :w])  # (M, N, w)
        mean = decoded.mean(axis=0)
        reg_spread = np.max(np.abs(decoded - mean[None]), axis=(0, 2)) if m > 1 else np.zeros(n)
        if out.classes:
            reg_spread = np.where(spread > 0, np.inf, reg_spread)
        spread = reg_spread
        mean = out.snap(mean)
        if out.kind == "real":
            outputs = mean[:, 0].copy()
            if out.python_type == "int":
                outputs = np.round(outputs)
        else:
            outputs = mean.copy()
        outputs[raises] = np.nan
        spread = np.where(raises, 1.0 - (votes if out.classes else 1.0), spread) if out.classes else spread
        return BatchPrediction(outputs, raises, errors, spread, paths)

    def python_outputs(self, details: BatchPrediction) -> list[Any]:
        """Batch answers as the original's Python values (None where it raises)."""
        out = self._out
        if out.kind == "label":
            return list(details.outputs)
        if out.width == 0:
            return [None] * len(details.raises)
        if out.kind == "real" and out.python_type in ("float", "int"):  # no per-row numpy objects
            values = np.asarray(details.outputs, dtype=float).reshape(-1).tolist()
            if out.python_type == "int":
                return [None if r else int(round(v)) for v, r in zip(values, details.raises.tolist())]
            return [None if r else v for v, r in zip(values, details.raises.tolist())]
        result = []
        for i, raised in enumerate(details.raises):
            if raised:
                result.append(None)
            else:
                row = np.atleast_1d(details.outputs[i])
                result.append(out.python_value(row))
        return result

    # -- torch ------------------------------------------------------------------------------
    def torch_module(self) -> Any:
        """torch module: encoded float32 (N, d) -> original units (real (N,), vector (N, k),
        labels: logits (N, n_labels)), averaged over members, eval mode, differentiable."""
        return surrogate_module(self._weights, self._out)

    def export_onnx(self, path: str | os.PathLike[str], **options: Any) -> dict[str, Any]:
        """Write an ONNX model of `torch_module()`; returns the check against torch (max abs diff)."""
        from ._export import export_onnx

        return export_onnx(self, path, **options)

    # -- persistence ------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], *, key: bytes | str | None = None) -> Path:
        """Write a directory: `manifest.json` (everything but weights) and `weights.safetensors`.

        With a `key` (bytes or str; `$NEUROSWAP_SIGNING_KEY` when None) the manifest also carries
        `signature_hmac_sha256`, an HMAC-SHA256 over the manifest, which holds the weights' sha256:
        `load` with the same key then refuses any file changed after saving.
        """
        return save_surrogate(self, path, key=key)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, fn: Any = None, key: bytes | str | None = None,
             allow_unsigned: bool = False) -> "Surrogate":
        """Read a directory written by `save`; checks integrity, and with `fn` warns if its source changed.

        Loading imports nothing and runs nothing the file names: every manifest field is checked
        before use, and the source-hash check runs only against the `fn` passed here. With a `key`
        (bytes or str; `$NEUROSWAP_SIGNING_KEY` when None) only a file whose HMAC-SHA256 signature
        verifies is accepted, so a manifest or weights changed by anyone without the key is refused;
        an unsigned file is refused too unless `allow_unsigned=True`. Raises SurrogateFileError naming
        the file when it is missing, truncated, edited, unsigned or not a neuroswap surrogate.
        """
        return load_surrogate(cls, path, fn=fn, key=key, allow_unsigned=allow_unsigned)




def _allowed(item: Any, reason: str) -> str:
    """What `item` accepts, for an out-of-domain message whose `reason` does not say it yet."""
    if item.kind in ("real", "integer"):
        return "" if "range" in reason else f" (allowed: {item.kind} in [{item.low}, {item.high}])"
    if item.kind == "vector":
        return "" if "range" in reason else f" (allowed: length {item.length}, elements in [{item.low}, {item.high}])"
    values = list(item.categories)
    shown = ", ".join(repr(v) for v in values[:8]) + (", ..." if len(values) > 8 else "")
    return f" (allowed: {shown})"
