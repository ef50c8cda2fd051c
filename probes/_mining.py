"""Where does a candidate break? Look where breakage is likely, layer by layer.

Random inputs rarely land on the few inputs that matter (a tier boundary, a range end, one
category), so mining aims at them directly:
1. "boundary": range ends, zero, one float step inside (math.nextafter), every category,
   each varied alone around a few base points;
2. "branch": the original's own branch boundaries, found by scanning along each numeric axis
   (and along segments between inputs) for a change of branch path (probes.call_with_path),
   bisected to adjacent floats, then probed on both sides and a little further out;
3. "search": a hypothesis search steered by `target(error)`;
4. "gradient": where a neural candidate's output changes fastest (input-gradient norm over
   the real fields; needs `candidate.encode` and `candidate.torch_module()`), the places where
   it learned a step, checked against the original.
The result is a list of `EdgeCase` (worst first), with `.layers` saying what each layer did,
and `.inputs()` for refitting (`replace.fit(..., hard_cases=cases.inputs())`).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from . import _clock
from ._identity import kwargs_caller
from ._compare import Comparison
from ._paths import call_with_path
from ._report import Finding, decode_value, encode_value
from ._schema import Field, Schema
from ._tolerance import Tolerance
from ._traces import ErrorInfo, _freeze
from ._validation import bad_argument, check_flag, check_number, check_seed
from ._verify import (BudgetCut, Evaluator, Meter, Record, _seconds, deterministic_hypothesis, hypothesis_storage,
                      now, resolve_tolerance, store_directory)

LAYERS = ("boundary", "branch", "search", "gradient")


@dataclass(frozen=True)
class EdgeCase(Finding):
    """An input where the candidate disagrees with the original, and the layer that found it."""

    layer: str
    path: str = ""
    expected_error: ErrorInfo | None = None
    actual_error: ErrorInfo | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": encode_value(self.inputs), "expected": encode_value(self.expected),
                "actual": encode_value(self.actual), "error": encode_value(float(self.error)),
                "layer": self.layer, "path": self.path, "reason": self.reason,
                "expected_error": self.expected_error.to_dict() if self.expected_error else None,
                "actual_error": self.actual_error.to_dict() if self.actual_error else None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EdgeCase":
        def info(d: Any) -> ErrorInfo | None:
            return None if d is None else ErrorInfo(**d)

        return cls(decode_value(data["inputs"]), decode_value(data.get("expected")),
                   decode_value(data.get("actual")), float(decode_value(data.get("error", 0.0))),
                   data.get("layer", ""), data.get("path", ""), info(data.get("expected_error")),
                   info(data.get("actual_error")), data.get("reason", ""))

    @classmethod
    def from_record(cls, record: Record, layer: str) -> "EdgeCase":
        return cls(dict(record.inputs), record.expected, record.actual, float(record.verdict.error), layer,
                   record.path, record.expected_error, record.actual_error, record.verdict.reason)


@dataclass(frozen=True)
class LayerReport:
    """What one mining layer did: inputs evaluated against both functions, disagreements found."""

    name: str
    ran: bool
    evaluated: int = 0
    found: int = 0
    time_s: float = 0.0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ran": self.ran, "evaluated": self.evaluated, "found": self.found,
                "time_s": self.time_s, "note": self.note}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LayerReport":
        return cls(data["name"], bool(data.get("ran")), data.get("evaluated", 0), data.get("found", 0),
                   data.get("time_s", 0.0), data.get("note", ""))


class EdgeCases(list):
    """A list of `EdgeCase`, worst first, with `.layers` (name -> LayerReport).

    `cut_short` (also `budget_exhausted`): whether the budget ended the mining before every
    layer had done its least (a finite layer finished, an open-ended one ran at all), with
    `skipped` saying what was left undone, one line per layer; an empty list then means
    "nothing found in what was tried", not "nothing there". `warnings`: e.g. a work-clock run
    ended by its wall ceiling (not reproducible)."""

    def __init__(self, cases: Iterable[EdgeCase] = (), layers: Mapping[str, LayerReport] | None = None,
                 schema: Schema | None = None, *, skipped: Sequence[str] = (),
                 warnings: Sequence[str] = ()) -> None:
        super().__init__(cases)
        self.layers: dict[str, LayerReport] = dict(layers or {})
        self.schema = schema
        self.skipped: list[str] = list(skipped)
        self.warnings: list[str] = list(warnings)

    @property
    def cut_short(self) -> bool:
        """Whether the budget cut the mining short (see `skipped`)."""
        return bool(self.skipped)

    budget_exhausted = cut_short

    @property
    def by_layer(self) -> dict[str, int]:
        """Cases kept per layer (after de-duplication)."""
        counts = {name: 0 for name in self.layers}
        for case in self:
            counts[case.layer] = counts.get(case.layer, 0) + 1
        return counts

    @property
    def max_error(self) -> float:
        return max((c.error for c in self), default=0.0)

    def inputs(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The inputs alone (kwargs dicts), e.g. for `replace.fit(..., hard_cases=...)`.

        With `limit`, a diverse subset: round-robin over failure classes (branch path of the
        original x reason), worst first in each, so one boundary probed many times does not
        crowd out the others.
        """
        if limit is None or limit >= len(self):
            return [dict(c.inputs) for c in self]
        classes: dict[tuple[str, str], list[EdgeCase]] = {}
        for case in self:  # already worst first
            classes.setdefault((case.path, case.reason), []).append(case)
        queues = list(classes.values())
        picked: list[dict[str, Any]] = []
        depth = 0
        while len(picked) < limit:
            for queue in queues:
                if depth < len(queue) and len(picked) < limit:
                    picked.append(dict(queue[depth].inputs))
            depth += 1
        return picked

    def to_json(self) -> str:
        return json.dumps({"cases": [c.to_dict() for c in self],
                           "layers": {k: v.to_dict() for k, v in self.layers.items()},
                           "schema": self.schema.to_dict() if self.schema is not None else None,
                           "cut_short": self.cut_short, "skipped": self.skipped, "warnings": self.warnings},
                          indent=2, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> "EdgeCases":
        data = json.loads(text)
        return cls([EdgeCase.from_dict(c) for c in data.get("cases", [])],
                    {k: LayerReport.from_dict(v) for k, v in data.get("layers", {}).items()},
                    Schema.from_dict(data["schema"]) if data.get("schema") else None,
                    skipped=data.get("skipped", []), warnings=data.get("warnings", []))

    def save(self, path: str | Path) -> Path:
        """Write the cases as JSON (kept as hard cases for the next fit)."""
        target = Path(path)
        target.write_text(self.to_json())
        return target

    @classmethod
    def load(cls, path: str | Path) -> "EdgeCases":
        return cls.from_json(Path(path).read_text())

    def summary(self) -> str:
        parts = [f"{l.name}: {l.found} found in {l.evaluated} inputs ({l.time_s:.2f} s)" if l.ran else
                 f"{l.name}: skipped ({l.note})" for l in self.layers.values()]
        text = f"{len(self)} edge cases; " + "; ".join(parts)
        if self.skipped:
            text += "; cut short by the budget: " + "; ".join(self.skipped)
        return text

    def __repr__(self) -> str:
        cut = ", cut short by the budget" if self.cut_short else ""
        return f"EdgeCases({len(self)} cases, layers={self.by_layer}{cut})"


# -- helpers ---------------------------------------------------------------------------------------
class _Spent(BudgetCut):
    """The whole budget (with its grace) is spent: no call may start; the layer ends at once."""


class _Miner:
    def __init__(self, evaluator: Evaluator, schema: Schema, rng: np.random.Generator,
                 hard_end: float = math.inf) -> None:
        self.evaluator = evaluator
        self.meter = evaluator.meter
        self.schema = schema
        self.rng = rng
        self.found: dict[Any, EdgeCase] = {}
        self.evaluated: set[Any] = set()
        self.count = 0
        self.hits = 0
        self.hard_end = hard_end  # no call starts that would end past it (`_Spent`)
        self.incomplete = ""  # what the running layer left undone, when the budget cut it

    def late(self, deadline: float, cost: float | None = None) -> bool:
        """Whether a call (default: one input through both functions) would end past `deadline`."""
        return self.meter.late(deadline, cost)

    def path(self, kwargs: Mapping[str, Any]) -> str:
        """The original's branch path on `kwargs` (a traced call, charged to the budget clock)."""
        if self.meter.late(self.hard_end, self.meter.cost_traced):
            raise _Spent()
        self.meter.original(traced=True)
        return call_with_path(self.evaluator.original, dict(kwargs)).path

    def check(self, kwargs: Mapping[str, Any], layer: str) -> Record | None:
        key = _freeze(dict(kwargs))
        if key in self.evaluated:
            return None
        if self.meter.late(self.hard_end):
            raise _Spent()
        self.evaluated.add(key)
        self.count += 1
        record = self.evaluator.run(kwargs, layer)
        if record.disagrees:
            self.hits += 1
            self.found.setdefault(key, EdgeCase.from_record(record, layer))
        return record


def _boundary_values(item: Field) -> list[Any]:
    if item.kind == "real":
        low, high = float(item.low), float(item.high)  # type: ignore[arg-type]
        values = [low, high, math.nextafter(low, math.inf), math.nextafter(high, -math.inf)]
        for special in (0.0, math.nextafter(0.0, math.inf), math.nextafter(0.0, -math.inf), 1.0, -1.0):
            if low <= special <= high:
                values.append(special)
        return list(dict.fromkeys(values))
    if item.kind == "integer":
        low, high = int(item.low), int(item.high)  # type: ignore[arg-type]
        values = [low, high, min(low + 1, high), max(high - 1, low)]
        values += [v for v in (0, 1, -1) if low <= v <= high]
        return list(dict.fromkeys(values))
    if item.kind == "boolean":
        return [False, True]
    if item.kind == "categorical":
        return list(item.categories)
    low, high = float(item.low), float(item.high)  # type: ignore[arg-type]
    ends = [low, high] + ([0.0] if low <= 0.0 <= high else [])
    return [Schema._as_container(item, np.full(item.width, v)) for v in ends]


def _centre(schema: Schema) -> dict[str, Any]:
    point: dict[str, Any] = {}
    for item in schema.fields:
        if item.kind == "real":
            point[item.name] = (float(item.low) + float(item.high)) / 2  # type: ignore[arg-type]
        elif item.kind == "integer":
            point[item.name] = (int(item.low) + int(item.high)) // 2  # type: ignore[arg-type]
        elif item.kind == "boolean":
            point[item.name] = False
        elif item.kind == "categorical":
            point[item.name] = item.categories[0]
        else:
            point[item.name] = Schema._as_container(item, np.full(item.width, (item.low + item.high) / 2))  # type: ignore[operator]
    return point


def _layer_boundary(miner: _Miner, deadline: float, n_bases: int = 4) -> None:
    schema = miner.schema
    bases = [_centre(schema)] + schema.sample(n_bases - 1, rng=miner.rng)
    corners = [{f.name: _boundary_values(f)[0] for f in schema.fields},
               {f.name: _boundary_values(f)[1 if len(_boundary_values(f)) > 1 else 0] for f in schema.fields}]
    planned = len(corners) + len(bases) * sum(len(_boundary_values(item)) for item in schema.fields)
    done = 0
    for point in corners:
        if miner.late(deadline):
            miner.incomplete = f"{planned - done} of {planned} boundary probes not run"
            return
        miner.check(point, "boundary")
        done += 1
    for base in bases:
        for item in schema.fields:
            for value in _boundary_values(item):
                if miner.late(deadline):
                    miner.incomplete = f"{planned - done} of {planned} boundary probes not run"
                    return
                trial = dict(base)
                trial[item.name] = value
                miner.check(trial, "boundary")
                done += 1


def _bisect_axis(path_of: Callable[[Mapping[str, Any]], str], base: dict[str, Any], name: str, integer: bool,
                 lo: float, hi: float, path_lo: str, max_steps: int = 80,
                 deadline: float = math.inf,
                 late: Callable[[float], bool] | None = None) -> tuple[Any, Any]:
    """Adjacent values (floats one step apart, or integers) around a path change on one axis
    (closest found so far when `deadline` passes first)."""
    for _ in range(max_steps):
        if (late(deadline) if late is not None else now() > deadline):
            break
        if integer:
            if hi - lo <= 1:
                break
            mid: Any = (int(lo) + int(hi)) // 2
        else:
            mid = lo + (hi - lo) / 2
            if mid <= min(lo, hi) or mid >= max(lo, hi) or mid in (lo, hi):
                break
        trial = dict(base)
        trial[name] = mid
        if path_of(trial) == path_lo:
            lo = mid
        else:
            hi = mid
    return lo, hi


def _probe_points(item: Field, lo: Any, hi: Any) -> list[Any]:
    """Both sides of a boundary: the adjacent values, and a little further out on each side."""
    if item.kind == "integer":
        return [lo, hi]
    span = float(item.high) - float(item.low) or 1.0  # type: ignore[arg-type]
    points = [lo, hi, math.nextafter(lo, -math.inf), math.nextafter(hi, math.inf)]
    for rel in (1e-9, 1e-6, 1e-3):
        points += [lo - rel * span, hi + rel * span]
    return [p for p in points if float(item.low) <= p <= float(item.high)]  # type: ignore[arg-type]


def _layer_branch(miner: _Miner, original: Callable[..., Any], deadline: float, *, scan: int = 12,
                  max_per_axis: int = 8) -> int:
    """Scan numeric axes for branch-path changes, bisect each to float precision, probe both sides."""
    schema = miner.schema
    axes = [f for f in schema.fields if f.kind in ("real", "integer") and f.high > f.low]  # type: ignore[operator]
    boundaries = 0
    rounds = 0
    if axes:  # cleared once the first round has scanned every axis
        miner.incomplete = f"the first scan of the {len(axes)} numeric axes did not finish"
    while not miner.late(deadline) and axes:
        rounds += 1
        base = schema.sample(1, rng=miner.rng)[0]
        for item in axes:
            if miner.late(deadline):
                return boundaries
            integer = item.kind == "integer"
            low, high = float(item.low), float(item.high)  # type: ignore[arg-type]
            if integer:
                grid = sorted(set(int(v) for v in miner.rng.integers(int(low), int(high) + 1, size=scan))
                              | {int(low), int(high)})
            else:
                grid = sorted(set(miner.rng.uniform(low, high, size=scan).tolist()) | {low, high})
            paths = []
            for value in grid:
                if miner.late(deadline, miner.meter.cost_traced):
                    return boundaries
                trial = dict(base)
                trial[item.name] = value
                paths.append(miner.path(trial))
            found_here = 0
            for i in range(len(grid) - 1):
                left, right, path_left = grid[i], grid[i + 1], paths[i]
                # walk every path change inside [left, right], left to right
                while paths[i + 1] != path_left and found_here < max_per_axis:
                    if miner.late(deadline, miner.meter.cost_traced):
                        return boundaries
                    lo, hi = _bisect_axis(miner.path, base, item.name, integer, left, right, path_left,
                                          deadline=deadline,
                                          late=lambda d: miner.late(d, miner.meter.cost_traced))
                    boundaries += 1
                    found_here += 1
                    for index, value in enumerate(_probe_points(item, lo, hi)):
                        if index >= 2 and miner.late(deadline):  # the adjacent pair always
                            return boundaries
                        trial = dict(base)
                        trial[item.name] = value
                        miner.check(trial, "branch")
                    trial = dict(base)
                    trial[item.name] = hi
                    left, path_left = hi, miner.path(trial)
                    if left >= right:
                        break
        if rounds == 1:
            miner.incomplete = ""
        if rounds % 2 == 0:
            boundaries += _segment_round(miner, original, deadline)
    return boundaries


def _interpolate(schema: Schema, a: Mapping[str, Any], b: Mapping[str, Any], t: float) -> dict[str, Any]:
    point = dict(a)
    for item in schema.fields:
        if item.kind == "real":
            point[item.name] = float(a[item.name] + t * (b[item.name] - a[item.name]))
        elif item.kind == "integer":
            point[item.name] = int(round(a[item.name] + t * (b[item.name] - a[item.name])))
        elif item.kind == "vector":
            va, vb = np.asarray(a[item.name], dtype=float), np.asarray(b[item.name], dtype=float)
            point[item.name] = Schema._as_container(item, va + t * (vb - va))
    return point


def _segment_round(miner: _Miner, original: Callable[..., Any], deadline: float) -> int:
    """A random segment between two inputs on different paths (same categories): bisect in t."""
    schema = miner.schema
    a, b = schema.sample(2, rng=miner.rng)
    for item in schema.fields:
        if item.kind in ("categorical", "boolean"):
            b[item.name] = a[item.name]
    if miner.late(deadline, 2 * miner.meter.cost_traced):
        return 0
    path_a = miner.path(a)
    if miner.path(b) == path_a:
        return 0
    lo, hi = 0.0, 1.0
    for _ in range(60):
        if miner.late(deadline, miner.meter.cost_traced):
            break
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        if miner.path(_interpolate(schema, a, b, mid)) == path_a:
            lo = mid
        else:
            hi = mid
    for t in (lo, hi, max(0.0, lo - 1e-6), min(1.0, hi + 1e-6)):
        if miner.late(deadline):
            break
        miner.check(_interpolate(schema, a, b, t), "branch")
    return 1


def _layer_search(miner: _Miner, deadline: float, seed: int) -> None:
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings, target
    from hypothesis import seed as hypothesis_seed

    from ._strategy import strategy

    def probe(kwargs: dict[str, Any]) -> None:
        if miner.late(deadline):
            raise BudgetCut()  # not an Exception: hypothesis ends the run without replaying it
        miner.meter.example()
        record = miner.check(kwargs, "search")
        if record is not None and not record.verdict.skipped and math.isfinite(record.verdict.error):
            target(min(float(record.verdict.error), 1e300), label="error")

    test = given(strategy(miner.schema))(probe)
    test = settings(max_examples=10**7, deadline=None, database=None, verbosity=Verbosity.quiet,
                    phases=[Phase.generate, Phase.target], report_multiple_bugs=False,
                    suppress_health_check=list(HealthCheck), print_blob=False)(test)
    test = hypothesis_seed(seed)(test)
    try:
        with deterministic_hypothesis(miner.meter.clock, miner.evaluator.original):
            test()
    except BudgetCut:
        pass


def has_gradients(candidate: Any) -> bool:
    return callable(getattr(candidate, "torch_module", None)) and callable(getattr(candidate, "encode", None))


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """torch on one intra-op thread for the gradient layer's small batches: two threads spin-wait
    for each other on a loaded machine (measured: 1.3 s of CPU instead of 12 ms per forward pass
    of a 200k-parameter surrogate), and one thread sums in one order, so the ranking by gradient
    norm is the same every run. The process-wide setting is restored afterwards."""
    import torch

    before = torch.get_num_threads()
    if before != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if before != 1:
            torch.set_num_threads(before)


def _gradient_norms(candidate: Any, module: Any, columns: Mapping[str, np.ndarray], schema: Schema,
                    meter: Meter | None = None) -> np.ndarray:
    """Per row: norm of d(output)/d(encoded real inputs), summed over up to 8 outputs."""
    with _one_torch_thread():
        return _gradient_norms_(candidate, module, columns, schema, meter)


def _gradient_norms_(candidate: Any, module: Any, columns: Mapping[str, np.ndarray], schema: Schema,
                     meter: Meter | None) -> np.ndarray:
    import torch

    encoded = np.asarray(candidate.encode(dict(columns)), dtype=np.float32)
    rows = int(encoded.shape[0])
    parameters = _clock.parameter_count(module) if meter is not None and meter.deterministic else 0
    if meter is not None:  # the batched call: encoding, then a forward pass
        meter.rows(rows)
        meter.clock.charge(_clock.PASS_OVERHEAD_S + _clock.PER_ROW_PARAM_S / 3 * rows * parameters)
    x = torch.tensor(encoded, requires_grad=True)
    out = module(x)
    if isinstance(out, (tuple, list)):
        out = out[0]
    out = out.reshape(out.shape[0], -1)
    columns_of = getattr(candidate, "feature_groups", None) or {}
    real_idx: list[int] = []
    for item in schema.fields:
        if item.kind in ("real", "integer", "vector") and item.name in columns_of:
            real_idx += [int(i) for i in np.atleast_1d(columns_of[item.name])]
    if not real_idx:
        real_idx = list(range(encoded.shape[1]))
    total = np.zeros(encoded.shape[0])
    for j in range(min(out.shape[1], 8)):
        if meter is not None:  # one gradient step: a backward pass over the batch
            meter.clock.charge(_clock.STEP_OVERHEAD_S + _clock.PER_ROW_PARAM_S * rows * parameters)
        (grad,) = torch.autograd.grad(out[:, j].sum(), x, retain_graph=True)
        total += (grad[:, real_idx].detach().numpy().astype(float) ** 2).sum(axis=1)
    return np.sqrt(total)


def _layer_gradient(miner: _Miner, candidate: Any, deadline: float, *, batch: int = 512, top: int = 16,
                    hard_end: float = math.inf) -> str:
    """Sample, rank by the candidate's input-gradient norm, check the steepest and their neighbours
    (the first batch's are checked up to `hard_end`, so a slow first torch call still yields evidence)."""
    schema = miner.schema
    axes = [f for f in schema.fields if f.kind == "real" and f.high > f.low]  # type: ignore[operator]
    try:
        module = candidate.torch_module()
    except Exception as exc:  # an unfitted or odd candidate
        return f"gradient unavailable: {type(exc).__name__}: {exc}"
    rounds = 0
    while rounds == 0 or not miner.late(deadline):
        rounds += 1
        columns = schema.sample_columns(batch, rng=miner.rng)
        try:
            norms = _gradient_norms(candidate, module, columns, schema, miner.meter)
        except Exception as exc:  # an encoder that refuses part of the domain, odd modules
            return f"gradient unavailable: {type(exc).__name__}: {exc}"
        rows = schema.rows(columns)
        for index in np.argsort(-norms, kind="stable")[:top]:
            if (rounds > 1 and miner.late(deadline)) or miner.late(hard_end):
                if rounds == 1:
                    miner.incomplete = f"the first batch's steepest {top} points were not all checked"
                break
            point = rows[int(index)]
            miner.check(point, "gradient")
            for item in axes:
                span = float(item.high) - float(item.low)  # type: ignore[arg-type]
                for rel in (-1e-2, -1e-3, 1e-3, 1e-2):
                    value = point[item.name] + rel * span
                    if item.low <= value <= item.high and not miner.late(hard_end):  # type: ignore[operator]
                        trial = dict(point)
                        trial[item.name] = float(value)
                        miner.check(trial, "gradient")
    return f"{rounds} batches of {batch} ranked by gradient norm"


# -- public ----------------------------------------------------------------------------------------
def mine_edge_cases(
    original: Callable[..., Any],
    candidate: Callable[..., Any],
    *,
    schema: Schema,
    tolerance: Tolerance | None = None,
    budget_s: float = 30.0,
    seed: int = 0,
    surrogate_gradients: bool = True,
    exceptions: str = "type",
    nan: str = "equal",
    layers: Sequence[str] = LAYERS,
    max_cases: int = 500,
    budget_clock: str = "wall",
    wall_ceiling_s: float | None = None,
) -> EdgeCases:
    """Inputs where `candidate` disagrees with `original`, worst first (empty when none found).

    Layers run in order within `budget_s` (boundary values, branch boundaries of the original,
    targeted search, surrogate gradients); `.layers` reports what each one did. A layer that
    an earlier one starved still gets a short floor (a tenth of the budget), but never past
    `budget_s` plus 5%: the whole run ends within that, plus about one call of both functions.
    The cost of a call of each function is measured first (a few calls, timed) and every layer
    stops before a call that would end past its time; a budget that cannot fit even
    `MIN_INPUTS` inputs at that cost is refused at once (InvalidArgument naming the budget,
    the cost and the budget needed). When the budget ends a layer before it did its least,
    the result says so: `.cut_short` and `.skipped` (what was left undone).
    hypothesis keeps no files in the current directory (see `hypothesis_storage`).

    `budget_clock="work"`: `budget_s` counts nominal work instead of wall time (calls of both
    functions, traced calls of the original, hypothesis examples, the gradient layer's batches
    and steps; see `probes._verify.Meter`): the same seed then gives the same edge cases, in
    the same order, at any machine load; only the layers' wall times differ. What the work
    clock does not see (a function that sleeps) is bounded by `wall_ceiling_s` (None: 4 x
    `budget_s` + 5 s; `math.inf` for none): a run that reaches it ends there with a
    `NotReproducibleWarning`, and the message is kept in `.warnings`.
    """
    budget_clock = _clock.check(budget_clock)
    start = time.perf_counter()
    if not callable(original) or not callable(candidate):
        raise bad_argument("original" if not callable(original) else "candidate",
                           original if not callable(original) else candidate, "must be callable")
    model = candidate  # the object itself: the gradient layer reads its encode()/torch_module()
    original, candidate = kwargs_caller(original), kwargs_caller(candidate)
    if not isinstance(schema, Schema):
        raise bad_argument("schema", schema, "must be a probes.Schema",
                           "Build one with Schema.from_function(fn, x=(low, high), ...)")
    if isinstance(budget_s, bool) or not isinstance(budget_s, (int, float)) or not budget_s > 0:
        raise bad_argument("budget_s", budget_s, "must be a number > 0", "Pass e.g. budget_s=30.0")
    check_number("budget_s", budget_s, low=0.0, low_inclusive=False, fix="Pass e.g. budget_s=30.0")
    check_seed("seed", seed)
    check_flag("surrogate_gradients", surrogate_gradients,
               fix="Pass surrogate_gradients=False to skip the gradient layer's use of a surrogate's network")
    check_number("max_cases", max_cases, low=1, integer=True, fix="Pass how many edge cases to keep, e.g. 500")
    if not isinstance(layers, (str, bytes)) and isinstance(layers, Iterable):
        layers = tuple(layers)
    if not isinstance(layers, tuple) or not layers:
        raise bad_argument("layers", layers, "must be a non-empty list of layer names", f"Choose from {LAYERS}")
    unknown = [name for name in layers if not isinstance(name, str) or name not in LAYERS]
    if unknown:
        raise bad_argument("layers", list(layers), f"unknown layer {unknown[0]!r}", f"Choose from {LAYERS}")
    clock = _clock.make(budget_clock, wall_ceiling_s=_clock.check_ceiling(wall_ceiling_s, budget_s))
    with hypothesis_storage(store_directory()), _clock.using(clock):
        cases = _mine(original, candidate, model, schema=schema, tolerance=tolerance, budget_s=float(budget_s),
                      seed=int(seed), surrogate_gradients=surrogate_gradients, exceptions=exceptions, nan=nan,
                      layers=layers, max_cases=max_cases, start=start)
    message = _clock.ceiling_warning(clock, "mine_edge_cases")
    if message:
        cases.warnings.append(message)
    return cases


#: Fewest inputs (through both functions) a mining budget must fit; a smaller one is refused.
MIN_INPUTS = 5


#: Share of the budget a starved layer's floor may run past `budget_s`.
_FLOOR_GRACE = 0.05


def _mine(original: Callable[..., Any], candidate: Callable[..., Any], model: Any, *, schema: Schema,
          tolerance: Tolerance | None, budget_s: float, seed: int, surrogate_gradients: bool, exceptions: str,
          nan: str, layers: Sequence[str], max_cases: int, start: float) -> EdgeCases:
    comparison = Comparison(resolve_tolerance(candidate, tolerance), exceptions, nan,
                            "label" if schema.output.kind == "label" else "")
    clock = _clock.current()
    # the budget clock's start (on the wall clock, from the call of mine_edge_cases on, as before)
    start = now() if clock.deterministic else now() - (time.perf_counter() - start)
    sample = schema.sample(3, seed=seed)
    meter = Meter(clock, original, candidate, model=model, sample=sample)
    meter.measure(original, candidate, sample, at_most_s=min(0.05, 0.02 * budget_s))
    meter.traced = False  # plain calls: whether to trace is decided next, on this cost
    per_input = meter.per_input
    if MIN_INPUTS * per_input > budget_s:
        kind = "nominal work" if meter.deterministic else "measured"
        raise bad_argument(
            "budget_s", budget_s,
            f"fits fewer than {MIN_INPUTS} inputs: one costs {_seconds(per_input)} (original "
            f"{_seconds(meter.cost_original)} + candidate {_seconds(meter.cost_candidate)}, {kind}), so mining would "
            "try almost nothing and an empty result would mean nothing",
            f"Pass budget_s>={2 * MIN_INPUTS * per_input:.3g} at least ({MIN_INPUTS} inputs at that cost, and as "
            "much again for the layers' own work), or a faster function")
    meter.traced = meter.paths_affordable(original, sample)
    evaluator = Evaluator(original, candidate, comparison, order=schema.names, paths=meter.traced, meter=meter)
    gradients = surrogate_gradients and "gradient" in layers and has_gradients(model)
    end = start + budget_s
    hard_end = end + _FLOOR_GRACE * budget_s
    miner = _Miner(evaluator, schema, np.random.default_rng(seed), hard_end=hard_end)
    shares = {"boundary": 0.15, "branch": 0.45, "search": 0.4 if not gradients else 0.55, "gradient": 1.0}
    reports: dict[str, LayerReport] = {}
    skipped: list[str] = []  # what the budget left undone, per layer
    running = [n for n in LAYERS if n in layers and (n != "gradient" or gradients)]
    for name in LAYERS:
        if name not in layers:
            reports[name] = LayerReport(name, False, note="not requested")
            continue
        if name == "gradient" and not gradients:
            why = "disabled" if not surrogate_gradients else "candidate has no encode()/torch_module()"
            reports[name] = LayerReport(name, False, note=why)
            continue
        began, wall_began = now(), time.perf_counter()
        remaining = max(0.0, end - began)
        # A floor per layer: on a loaded machine an earlier layer can overrun its share, and a
        # layer that never runs would look like "nothing found there"; the floor ends at
        # hard_end, so the budget holds within 5%.
        floor = 0.1 * budget_s
        planned = remaining * shares[name] if name != running[-1] else remaining
        deadline = min(began + max(planned, floor), hard_end)
        count0, hits0 = miner.count, miner.hits
        note = ""
        miner.incomplete = ""
        spent = False
        try:
            if name == "boundary":
                _layer_boundary(miner, deadline)
            elif name == "branch":
                note = f"{_layer_branch(miner, original, deadline)} path boundaries bisected"
            elif name == "search":
                _layer_search(miner, deadline, seed)
            else:
                note = _layer_gradient(miner, model, deadline, hard_end=hard_end)
        except _Spent:  # the whole budget is gone (raised where the layer's own check did not stop it)
            spent = True
        evaluated = miner.count - count0
        undone = miner.incomplete
        if evaluated == 0 and not undone and name == "search":  # the others may rightly find nothing to check
            undone = "no input checked"
        elif spent and not undone:
            undone = "stopped at the end of the budget"
        if undone:
            skipped.append(f"{name}: {undone}")
        if began + max(planned, floor) > hard_end:  # its time was clipped to keep the budget
            note = "; ".join(x for x in (note, "cut short by the budget (earlier layers used it)") if x)
        elif undone:
            note = "; ".join(x for x in (note, f"cut short by the budget: {undone}") if x)
        reports[name] = LayerReport(name, True, evaluated, miner.hits - hits0,
                                    time.perf_counter() - wall_began, note)
    order = {name: i for i, name in enumerate(LAYERS)}
    cases = sorted(miner.found.values(), key=lambda c: (-c.error, order.get(c.layer, 9)))
    return EdgeCases(cases[:max_cases], reports, schema, skipped=skipped)
