"""Fit's data: the training rows (`Pool`), the legacy function called as an oracle (`Oracle`,
which measures the cost of a call), what the budget refuses (`_refuse_budget`), and the weights
and default tolerance fit derives from the rows."""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from probes import ErrorInfo, Schema, Tolerance
from probes._paths import call_with_path
from probes._traces import column_array
from probes._validation import bad_argument

from probes import _clock
from ._encoding import OutputEncoder
from ._fit_config import MIN_ROWS, N0_SHARE, FitConfig
from ._sampling import concat_columns

class Pool:
    """Training rows: input columns, outcomes, branch paths (None when not traced), weights."""

    def __init__(self, schema: Schema):
        self.schema = schema
        self.names = schema.names
        self.columns: dict[str, np.ndarray] = {}
        self.outputs: list[Any] = []
        self.errors: list[ErrorInfo | None] = []
        self.paths: list[str | None] = []
        self.weights = np.zeros(0)
        self.sources: list[str] = []

    def __len__(self) -> int:
        return len(self.outputs)

    def add(self, columns: Mapping[str, np.ndarray], outputs: Sequence[Any], errors: Sequence[ErrorInfo | None],
            paths: Sequence[str | None] | None, weight: float, source: str) -> None:
        if not outputs:
            return
        self.columns = concat_columns([self.columns, columns], self.names) if self.columns else \
            {k: np.asarray(columns[k]) for k in self.names}
        self.outputs += list(outputs)
        self.errors += list(errors)
        self.paths += list(paths) if paths is not None else [None] * len(outputs)
        self.weights = np.concatenate([self.weights, np.full(len(outputs), float(weight))])
        self.sources += [source] * len(outputs)


class Oracle:
    """Calls the legacy function, tracing branch paths while the path budget lasts.

    Costs come from the fit's clock: measured on the wall clock; on the work clock, nominal
    costs from the Python lines a call executes (counted once on the calibration sample)."""

    def __init__(self, fn: Callable[..., Any], schema: Schema, path_budget_s: float, max_calls: int | None):
        self.fn = fn
        self.schema = schema
        self.path_budget_s = path_budget_s
        self.path_seconds = 0.0
        self.calls = 0
        self.path_calls = 0
        self.max_calls = max_calls
        self.plain_cost = math.nan
        self.path_cost = math.nan
        self.clock = _clock.current()

    def remaining(self) -> int:
        return max(0, self.max_calls - self.calls) if self.max_calls is not None else 1 << 40

    def calibrate(self, rows: list[dict[str, Any]], *, at_most_s: float = math.inf) -> None:
        """Measure the cost of a plain and of a path-traced call on a few inputs (on the wall
        clock, each measurement stops after `at_most_s`, with at least one call: a slow function's
        measurement must not eat its budget)."""
        sample = rows[: max(1, min(20, len(rows)))]
        if self.clock.deterministic:
            lines = _clock.mean_lines(self.fn, sample)
            self.plain_cost, self.path_cost = _clock.nominal_call_costs(lines)
            self.clock.charge(len(sample) * self.plain_cost + len(sample[:5]) * self.path_cost)
            return
        start, done = time.perf_counter(), 0
        for kwargs in sample:
            try:
                self.fn(**kwargs)
            except Exception:
                pass
            done += 1
            if time.perf_counter() - start > at_most_s:
                break
        self.plain_cost = max((time.perf_counter() - start) / done, 1e-7)
        start, done = time.perf_counter(), 0
        for kwargs in sample[:5]:
            call_with_path(self.fn, kwargs)
            done += 1
            if time.perf_counter() - start > at_most_s:
                break
        self.path_cost = max((time.perf_counter() - start) / done, 1e-6)

    def call(self, rows: list[dict[str, Any]], *, count: bool = True, trace: bool = False,
             deadline: float | None = None) -> tuple[list[Any], list[ErrorInfo | None], list[str | None]]:
        """Outcomes and paths of `rows`; paths while the path budget lasts, or always with `trace`.

        `deadline` (a time of the fit's clock): no call starts that would end past it by more
        than half its cost, so fewer rows than asked may come back, the first ones in order
        (callers keep the rows that came back). Not a cut on the work clock when the calls
        were sized to fit: nominal costs add up exactly."""
        outputs: list[Any] = []
        errors: list[ErrorInfo | None] = []
        paths: list[str | None] = []
        nominal = self.clock.deterministic
        for kwargs in rows:
            traced = trace or self.path_seconds < self.path_budget_s
            if deadline is not None:
                cost = self.path_cost if traced else self.plain_cost
                if self.clock.now() + 0.5 * (cost if math.isfinite(cost) else 0.0) > deadline:
                    break
            if traced:
                start = time.perf_counter()
                result = call_with_path(self.fn, kwargs)
                self.path_seconds += self.path_cost if nominal else time.perf_counter() - start
                self.clock.charge(self.path_cost)
                outputs.append(result.output)
                errors.append(result.error)
                paths.append(result.path)
                if count:
                    self.path_calls += 1
            else:
                try:
                    outputs.append(self.fn(**kwargs))
                    errors.append(None)
                except Exception as exc:  # the legacy function's outcome, kept as data
                    outputs.append(None)
                    errors.append(ErrorInfo.from_exception(exc))
                paths.append(None)
                self.clock.charge(self.plain_cost)
        if count:
            self.calls += len(outputs)
        return outputs, errors, paths


def _columns_from_rows(schema: Schema, rows: Sequence[Mapping[str, Any]], defaults: Mapping[str, Any]) -> dict[str, np.ndarray]:
    out = {}
    for item in schema.fields:
        values = [row.get(item.name, defaults.get(item.name)) for row in rows]
        if item.kind == "categorical":
            array = np.empty(len(values), dtype=object)
            for i, v in enumerate(values):
                array[i] = v
            out[item.name] = array
        else:
            out[item.name] = column_array(values)
    return out


def _hard_rows(hard_cases: Iterable[Any]) -> list[dict[str, Any]]:
    rows = []
    for case in hard_cases:
        inputs = getattr(case, "inputs", case)
        if not isinstance(inputs, Mapping):
            raise bad_argument("hard_cases", case, "each item must be a kwargs dict or have `.inputs`",
                               "Pass the counterexamples of probes.verify or mine_edge_cases")
        rows.append(dict(inputs))
    return rows

def _refuse_budget(budget_s: float, per_call: float, n_traces: int, affordable: int, nominal: bool) -> None:
    """InvalidArgument: `budget_s` cannot label the `MIN_ROWS` rows fit learns from at `per_call`
    a call (its share for the first draws, N0_SHARE, buys `affordable`), naming what would."""
    need = (MIN_ROWS - n_traces) * per_call / N0_SHARE
    kind = "nominal work, budget_clock='work'" if nominal else "measured"
    traced = f" with the {n_traces} traces" if n_traces else ""
    raise bad_argument(
        "budget_s", budget_s,
        f"is too small to fit this function: a call costs {per_call:.3g} s ({kind}), so the {N0_SHARE:.0%} of "
        f"the budget that labels training rows buys {affordable} calls, fewer than the {MIN_ROWS} rows fit learns "
        f"from{traced} (the rest of the budget tests, trains and calibrates the guard)",
        f"Pass budget_s>={need:.3g} at least, record traces to learn from, or fit a faster function")


def _outcome_key(output: Any, error: ErrorInfo | None, schema: Schema) -> Any:
    """What kind of outcome a call had: its exception type, its label, or "value"."""
    if error is not None:
        return ("raise", error.type)
    if schema.output.kind == "label":
        try:
            hash(output)
            return ("label", output)
        except TypeError:
            return ("label", repr(output))
    return "value"


def _temper_hard_weights(pool: Pool, out: OutputEncoder, config: FitConfig) -> None:
    """Hard cases far out in the output's tail (z beyond 3, in the units the network learns)
    keep the loss share of a 3-sigma row: at full weight a few extreme rows (an APR of 300% among
    APRs of 5-20%) dominate the squared error and cost precision everywhere else."""
    hard = np.flatnonzero(np.array([src == "hard" for src in pool.sources]))
    if not len(hard) or not out.width:
        return
    targets = out.targets([pool.outputs[i] for i in hard], [pool.errors[i] for i in hard])[:, :out.width]
    z2 = np.nansum(np.where(np.isfinite(targets), targets, 0.0) ** 2, axis=1)
    pool.weights[hard] = config.hard_weight * np.minimum(1.0, 9.0 / np.maximum(z2, 1e-12))

def _balance_traces(pool: Pool, config: FitConfig) -> None:
    """With trace_weight="balance", recorded traffic (what the surrogate will be judged on) weighs
    in the loss at least as much as all other rows together (those teach the rest of the domain)."""
    if config.trace_weight != "balance":
        return
    is_trace = np.array([src == "trace" for src in pool.sources])
    if is_trace.any() and (~is_trace).any():
        pool.weights[is_trace] *= max(1.0, float(pool.weights[~is_trace].sum() / pool.weights[is_trace].sum()))

def _default_tolerance(pool: Pool, usual: np.ndarray) -> Tolerance:
    values = [np.asarray(v, dtype=float).ravel() for v, e, keep in zip(pool.outputs, pool.errors, usual)
              if keep and e is None and _is_numeric(v)]
    if not values:
        return Tolerance(abs=0.0, rel=0.01)
    magnitude = float(np.max(np.abs(np.concatenate(values))))
    return Tolerance(abs=1e-3 * magnitude if math.isfinite(magnitude) else 0.0, rel=0.01)


def _is_numeric(value: Any) -> bool:
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return False
    return array.ndim <= 1 and not isinstance(value, (str, bool))
