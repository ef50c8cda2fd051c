"""How likely a surrogate's answer is to be wrong: the score the guarded swap thresholds.

The ensemble spread alone misses the failures that matter on rule code: members that agree on
a wrong label, and a path gate that routes a row near a branch boundary to the wrong expert.
So the score combines what the model knows about each row (`FEATURES`): the spread against
the tolerance, whether it predicts a raise, the gate's margin between its two best paths and
how many gate members vote for the chosen path, the margin between the two best classes, the
distance to the nearest cut the legacy code compares against, and how often the chosen path
was wrong on validation rows. A logistic error predictor (Rumba's idea) weighs them, fitted
on validation rows that training never saw; the calibration that certifies the threshold
(`_calibration`) uses other rows again. Everything is kept as plain numbers (JSON), never code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from probes import ErrorInfo

from ._predictions import BatchPrediction, OnePrediction

FEATURES = ("spread", "raises", "gate_margin", "gate_votes", "class_margin", "cut_distance", "path_error")
#: a feature value standing for "infinitely risky" (an infinite spread) or "no margin to speak of"
_CAP = 50.0
_EXP_CAP = math.exp(_CAP)
#: smoothing of a path's validation error rate (a Beta prior worth this many rows, at the overall rate)
_PRIOR_ROWS = 4.0


@dataclass(frozen=True)
class RowScores:
    """One evaluation of the surrogate on some rows: its answers and the score of each.

    `details`: the `BatchPrediction` of the float64 reference evaluation (the answers a guarded
    call serves); `features` (N, len(FEATURES)); `score` (N,): higher is riskier.
    """

    details: Any  # the BatchPrediction
    features: np.ndarray
    score: np.ndarray

    @property
    def outputs(self) -> np.ndarray:
        return self.details.outputs

    @property
    def raises(self) -> np.ndarray:
        return self.details.raises

    @property
    def errors(self) -> list[ErrorInfo | None]:
        return self.details.errors

    @property
    def paths(self) -> list[str] | None:
        return self.details.paths


@dataclass(frozen=True)
class ErrorPredictor:
    """A logistic model of P(wrong) on standardised `FEATURES` (or the spread alone).

    `kind` is "logistic" or "spread" (too few wrong or right validation rows to learn weights:
    the score is then the spread feature). `use` lists the features the score may read (an
    ablation drops some); `path_error` maps a path to its smoothed validation error rate.
    """

    kind: str = "spread"
    use: tuple[str, ...] = FEATURES
    mean: tuple[float, ...] = ()
    scale: tuple[float, ...] = ()
    coef: tuple[float, ...] = ()
    intercept: float = 0.0
    path_error: Mapping[str, float] = field(default_factory=dict)
    base_error: float = 0.0
    trained_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "use": list(self.use), "mean": list(self.mean), "scale": list(self.scale),
                "coef": list(self.coef), "intercept": self.intercept, "path_error": dict(self.path_error),
                "base_error": self.base_error, "trained_rows": self.trained_rows}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ErrorPredictor":
        kind = str(data.get("kind", "spread"))
        if kind not in ("logistic", "spread"):
            raise ValueError(f"error predictor kind={kind!r} : must be 'logistic' or 'spread'")
        use = tuple(str(u) for u in data.get("use", FEATURES))
        unknown = [u for u in use if u not in FEATURES]
        if unknown:
            raise ValueError(f"error predictor features={unknown!r} : not among {FEATURES}")
        floats = lambda key: tuple(float(v) for v in data.get(key, ()))  # noqa: E731
        predictor = cls(kind=kind, use=use, mean=floats("mean"), scale=floats("scale"), coef=floats("coef"),
                        intercept=float(data.get("intercept", 0.0)),
                        path_error={str(k): float(v) for k, v in dict(data.get("path_error", {})).items()},
                        base_error=float(data.get("base_error", 0.0)), trained_rows=int(data.get("trained_rows", 0)))
        if kind == "logistic" and not (len(predictor.mean) == len(predictor.scale) == len(predictor.coef) == len(use)):
            raise ValueError("error predictor: mean, scale and coef must have one value per used feature")
        return predictor

    def row_scorer(self) -> Any:
        """`score` for one row of features as a list, in plain Python (the guarded single call)."""
        spread_at = FEATURES.index("spread")
        if self.kind == "spread" or not self.coef:
            return lambda row: row[spread_at]
        terms = [(FEATURES.index(u), m, c / sc) for u, m, sc, c in zip(self.use, self.mean, self.scale, self.coef)]
        intercept = self.intercept

        def scorer(row: list[float]) -> float:
            total = intercept
            for i, m, w in terms:
                total += (row[i] - m) * w
            return total

        return scorer

    def path_logits(self) -> dict[str, float]:
        """The path feature per path id (and "" for a path not seen on validation)."""
        if not self.path_error:
            return {}
        base = float(np.mean(list(self.path_error.values())))
        table = {p: float(_logit(np.array([r]))[0]) for p, r in self.path_error.items()}
        table[""] = float(_logit(np.array([base]))[0])
        return table

    def score(self, features: np.ndarray) -> np.ndarray:
        """Higher is riskier; monotone in the predicted probability of a wrong answer."""
        if self.kind == "spread" or not self.coef:
            return features[:, FEATURES.index("spread")].astype(float)
        cols = [FEATURES.index(u) for u in self.use]
        z = (features[:, cols] - np.asarray(self.mean)) / np.asarray(self.scale)
        return z @ np.asarray(self.coef) + self.intercept


def evaluate(surrogate: Any, columns: Mapping[str, Any], predictor: ErrorPredictor | None = None) -> RowScores:
    """Answers (float64 reference evaluation) and risk features of `surrogate` on `columns`;
    `predictor` defaults to the surrogate's own (`surrogate.guard_predictor`), else the spread."""
    predictor = predictor or getattr(surrogate, "guard_predictor", None) or ErrorPredictor()
    if not hasattr(surrogate, "_reference_raw"):
        return _evaluate_rows(surrogate, columns, predictor)
    X = surrogate.input_encoder.encode(columns, dtype=np.float64)
    raw, choice = surrogate._reference_raw(X)
    paths = None if choice is None else [surrogate._path_ids[i] for i in choice]
    details = surrogate._decode_many(raw, paths, columns=columns, choice=choice)  # exact paths applied
    if getattr(surrogate, "program_", None) is not None:  # and the exact program, as `_details` answers
        from ._hybrid import program_many

        details = program_many(surrogate, details, columns)
    features = _features(surrogate, columns, X, raw, choice, details, predictor.path_error)
    return RowScores(details, features, predictor.score(features))


class OneRowScorer:
    """The guarded single call's answer and score: the same answer and features as `evaluate`
    on a one-row batch (a test pins them together), through the surrogate's single-row plan
    and plain-Python arithmetic (a few microseconds over the surrogate's own call)."""

    def __init__(self, surrogate: Any, predictor: ErrorPredictor) -> None:
        self.surrogate = surrogate
        self.predictor = predictor
        self._fast = hasattr(surrogate, "_one")
        self._score = predictor.row_scorer()
        self._paths = predictor.path_logits()
        if not self._fast:
            return
        out = surrogate.output_encoder
        self._values = out.kind in ("real", "vector")
        self._classes = out.width if out.classes and len(out.classes) >= 2 else None
        tol = surrogate.tolerance
        self._tol = (float(tol.abs), float(tol.rel))
        self._cuts = [(code.name, float(code.high - code.low) or 1.0, [float(t) for _op, t in code.cuts])
                      for code in surrogate.input_encoder.codes_ if code.cuts]

    def __call__(self, kwargs: Mapping[str, Any]) -> tuple[Any, float]:
        sur = self.surrogate
        if not self._fast:  # a duck-typed stand-in
            rows = _evaluate_rows(sur, {k: [v] for k, v in kwargs.items()}, self.predictor)
            d = rows.details
            output = None if d.raises[0] else (d.outputs[0].item() if isinstance(d.outputs[0], np.generic)
                                               else d.outputs[0])
            return OnePrediction(output, d.errors[0], float(d.spread[0])), float(rows.score[0])
        feats = sur._encode_one(kwargs)
        defaults = sur._defaults
        x = np.array(feats)
        raw, index = sur._one.raw(feats)
        output, error, spread = sur._decode_one(raw)
        if getattr(sur, "_exact", None) is not None:  # a hybrid's exact path: as `evaluate` answers it
            from ._hybrid import one

            output, error, spread = one(sur, index, output, error, spread, kwargs)
        if getattr(sur, "program_", None) is not None:  # the exact program answers first, as in `evaluate`
            output, error, spread = sur._program_over(kwargs, output, error, spread)
        gate = sur._gate
        path = sur._path_ids[index] if gate is not None else None
        ratio = spread
        if error is None and self._values and output is not None:
            if isinstance(output, (int, float)):
                bound = self._tol[0] + self._tol[1] * abs(output)
            else:
                bound = float(np.min(sur.tolerance.bound(np.asarray(output, dtype=float))))
            ratio = spread / bound if bound > 0 else (math.inf if spread > 0 else 0.0)
        if ratio != ratio or ratio > _EXP_CAP:
            ratio = _EXP_CAP
        row = [math.log1p(ratio), float(error is not None), _CAP, 1.0, _CAP, 0.0, 0.0]
        if gate is not None:
            members = gate.one(x)  # (G, P)
            summed = members.sum(axis=0)
            if len(summed) >= 2:
                top = np.partition(summed, -2)[-2:]
                row[2] = min(float(abs(top[1] - top[0])), _CAP)
            row[3] = float(np.count_nonzero(np.argmax(members, axis=1) == index)) / len(members)
        if self._classes is not None:
            top = np.partition(raw[:, self._classes:].sum(axis=0), -2)[-2:]
            row[4] = min(float(abs(top[1] - top[0])), _CAP)
        if self._cuts:
            nearest = math.inf
            for name, span, cuts in self._cuts:
                value = float(kwargs[name] if name in kwargs else defaults[name])
                for t in cuts:
                    d = abs(value - t) / span
                    if d < nearest:
                        nearest = d
            row[5] = -math.log(nearest + 1e-9)
        if path is not None and self._paths:
            row[6] = self._paths.get(path, self._paths[""])
        return OnePrediction(output, error, spread, path), self._score(row)


def _evaluate_rows(surrogate: Any, columns: Mapping[str, Any], predictor: ErrorPredictor) -> RowScores:
    """Any object with `.predict_one` (a hand-written stand-in): row by row; the only features
    are its spread against the tolerance and whether it predicts a raise."""
    names = list(columns)
    n = len(columns[names[0]]) if names else 0
    outputs = np.empty(n, dtype=object)
    raises = np.zeros(n, dtype=bool)
    errors: list[ErrorInfo | None] = [None] * n
    spread = np.zeros(n)
    ratio = np.zeros(n)
    tolerance = getattr(surrogate, "tolerance", None)
    for i in range(n):
        row = {k: (columns[k][i].item() if isinstance(columns[k][i], np.generic) else columns[k][i]) for k in names}
        p = surrogate.predict_one(row)
        outputs[i], errors[i], raises[i] = p.output, p.error, p.error is not None
        spread[i] = p.spread if p.spread is not None else math.inf
        ratio[i] = spread[i]
        if p.error is None and tolerance is not None and isinstance(p.output, (int, float)) \
                and not isinstance(p.output, bool):
            bound = tolerance.abs + tolerance.rel * abs(p.output)
            ratio[i] = spread[i] / bound if bound > 0 else (0.0 if spread[i] == 0 else math.inf)
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) or v is None for v in outputs):
        outputs = np.array([np.nan if v is None else float(v) for v in outputs])
    features = np.zeros((n, len(FEATURES)))
    features[:, 0] = np.log1p(np.nan_to_num(np.minimum(ratio, math.exp(_CAP)), nan=math.exp(_CAP)))
    features[:, 1] = raises
    features[:, 2] = features[:, 4] = _CAP
    features[:, 3] = 1.0
    details = BatchPrediction(outputs, raises, errors, spread, None)
    return RowScores(details, features, ErrorPredictor(path_error={}).score(features) if predictor.kind != "spread"
                     else predictor.score(features))


def _features(surrogate: Any, columns: Mapping[str, Any], X: np.ndarray, raw: np.ndarray,
              choice: np.ndarray | None, details: Any, path_error: Mapping[str, float]) -> np.ndarray:
    n = len(X)
    out = surrogate.output_encoder
    feats = np.zeros((n, len(FEATURES)))
    # spread against the tolerance at the answer (labels and raises: the share of members outvoted)
    spread = np.asarray(details.spread, dtype=float)
    ratio = spread.copy()
    value_rows = ~details.raises
    if out.kind in ("real", "vector") and value_rows.any():
        values = np.asarray(details.outputs, dtype=float).reshape(n, -1)
        bound = np.min(surrogate.tolerance.bound(values), axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(bound > 0, spread / bound, np.where(spread > 0, np.inf, 0.0))
        ratio = np.where(value_rows, r, spread)
    feats[:, 0] = np.log1p(np.nan_to_num(np.minimum(ratio, math.exp(_CAP)), nan=math.exp(_CAP)))
    feats[:, 1] = details.raises.astype(float)
    # the gate: margin between its two best paths, and the share of its members that agree
    weights = surrogate.weights
    if weights.path_aware and choice is not None:
        members = np.stack([net.forward(X) for net in weights.gate or []])  # (G, N, P)
        summed = members.sum(axis=0)
        if summed.shape[1] >= 2:
            top = np.sort(summed, axis=1)
            feats[:, 2] = np.minimum(top[:, -1] - top[:, -2], _CAP)
        else:
            feats[:, 2] = _CAP
        feats[:, 3] = (np.argmax(members, axis=2) == choice[None, :]).mean(axis=0)
    else:
        feats[:, 2] = _CAP
        feats[:, 3] = 1.0
    # the classes (labels, or which exception): margin between the two best summed scores
    if out.classes and len(out.classes) >= 2:
        scores = raw[:, :, out.width:].sum(axis=0)
        top = np.sort(scores, axis=1)
        feats[:, 4] = np.minimum(top[:, -1] - top[:, -2], _CAP)
    else:
        feats[:, 4] = _CAP
    feats[:, 5] = _cut_distance(surrogate, columns, n)
    # how often the chosen path was wrong on validation rows
    if choice is not None and path_error:
        base = float(np.mean(list(path_error.values())))
        rates = np.array([path_error.get(p, base) for p in surrogate._path_ids])
        feats[:, 6] = _logit(rates[choice])
    return feats


def _cut_distance(surrogate: Any, columns: Mapping[str, Any], n: int) -> np.ndarray:
    """-log of the distance (share of the range) to the nearest threshold the code compares an
    argument against; 0 where no argument has one."""
    nearest = np.full(n, np.inf)
    for code in surrogate.input_encoder.codes_:
        if not code.cuts:
            continue
        span = float(code.high - code.low) or 1.0
        x = np.asarray(columns[code.name], dtype=float)
        for _op, t in code.cuts:
            nearest = np.minimum(nearest, np.abs(x - float(t)) / span)
    out = np.zeros(n)
    has = np.isfinite(nearest)
    out[has] = -np.log(nearest[has] + 1e-9)
    return out


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def fit_predictor(features: np.ndarray, wrong: np.ndarray, paths: Sequence[str | None] | None, *,
                  use: Sequence[str] = FEATURES, seed: int = 0) -> ErrorPredictor:
    """Learn the error predictor on validation rows (`features` from `evaluate` with no path
    table yet; the path table is filled here and written into the features it returns)."""
    wrong = np.asarray(wrong, dtype=bool)
    n = len(wrong)
    base = float(wrong.mean()) if n else 0.0
    path_error: dict[str, float] = {}
    if paths is not None and n:
        labels = np.array([p if p is not None else "" for p in paths], dtype=object)
        for p in sorted(set(labels.tolist())):
            if not p:
                continue
            mask = labels == p
            path_error[p] = float((wrong[mask].sum() + _PRIOR_ROWS * base) / (mask.sum() + _PRIOR_ROWS))
        if path_error:
            rates = np.array([path_error.get(p, base) for p in labels])
            features = features.copy()
            features[:, FEATURES.index("path_error")] = _logit(rates)
    use = tuple(u for u in use if u in FEATURES)
    n_wrong = int(wrong.sum())
    if n_wrong < 5 or n - n_wrong < 5 or set(use) <= {"spread"}:
        return ErrorPredictor(kind="spread", use=("spread",), path_error=path_error, base_error=base,
                              trained_rows=n)
    from sklearn.linear_model import LogisticRegression

    cols = [FEATURES.index(u) for u in use]
    Z = features[:, cols]
    mean = Z.mean(axis=0)
    scale = Z.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000, random_state=seed)
    model.fit((Z - mean) / scale, wrong)
    return ErrorPredictor(kind="logistic", use=use, mean=tuple(map(float, mean)), scale=tuple(map(float, scale)),
                          coef=tuple(map(float, model.coef_[0])), intercept=float(model.intercept_[0]),
                          path_error=path_error, base_error=base, trained_rows=n)
