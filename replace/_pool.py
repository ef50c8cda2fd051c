"""Fit's data: the training rows (`Pool`), the legacy function called as an oracle (`Oracle`,
which measures the cost of a call), the first oracle draws and test inputs sized from that cost
(`oracle_draws`), what the budget refuses (`_refuse_budget`), and the weights and default
tolerance fit derives from the rows."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from probes import ErrorInfo, Schema, Tolerance
from probes._paths import call_with_path
from probes._traces import column_array
from probes._validation import bad_argument

from probes import _clock
from ._calibration import calibration_sizes
from ._output_encoding import OutputEncoder
from ._fit_config import CALIBRATE_SHARE, GUARD_ROW_S, MIN_ROWS, N0_SHARE, TEST_SHARE, FitConfig
from ._sampling import concat_columns, draw_near, take

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

    def truncate(self, n: int, weights: np.ndarray) -> None:
        """Back to its first `n` rows, with `weights` (theirs, saved before rows were added)."""
        self.columns = {k: v[:n] for k, v in self.columns.items()}
        del self.outputs[n:], self.errors[n:], self.paths[n:], self.sources[n:]
        self.weights = np.array(weights[:n], dtype=float)


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


@dataclass
class Draws:
    """What `oracle_draws` labelled and planned: the training deadline (the budget's end less the
    guard's reserved time), the held-out test set, and the budget's account so far."""

    deadline: float
    full_deadline: float
    cut: list[str]
    budget_info: dict[str, Any]
    n_cal_domain: int | None  # the guard's calibration rows and their time (oracle only)
    cal_reserved: float | None
    test: tuple[dict[str, np.ndarray], list[Any], list[ErrorInfo | None], list[str | None]]
    test_calls: int


def oracle_draws(fn: Callable[..., Any], pool: Pool, orc: Oracle, schema: Schema, traces: Any,
                 trace_columns: dict[str, np.ndarray], cal_held: dict[str, Any] | None, defaults: Mapping[str, Any],
                 config: FitConfig, *, oracle: bool, budget_s: float, deadline: float, rng: np.random.Generator,
                 seed: int) -> Draws:
    """Step 2 of `_fit`: the cost of a call measured, the guard's calibration time kept, the first
    oracle draws (the domain and near the traces; paths for some traces) added to `pool`, and the
    held-out test inputs labelled; each batch sized from the cost of a call."""
    clock = _clock.current()
    test_columns: dict[str, np.ndarray] = {}
    test_outputs: list[Any] = []
    test_errors: list[ErrorInfo | None] = []
    test_paths: list[str | None] = []
    # every batch of oracle calls below is sized from the measured cost of a call, and stops at
    # its deadline (Oracle.call): the fit ends within about 1.5 x budget_s (+ a second) however
    # slow the function, or refuses at once when the least fit (MIN_ROWS rows) does not fit
    full_deadline = deadline
    cut: list[str] = []  # what the budget left undone (the manifest's training.budget.cut)
    budget_info: dict[str, Any] = {"cost_per_call_s": None, "cut": cut}
    n_cal_domain: int | None = None  # the guard's calibration rows and their time (oracle only)
    cal_reserved: float | None = None
    if oracle:
        probe = schema.rows(schema.sample_columns(20, rng=rng))
        orc.calibrate(probe, at_most_s=CALIBRATE_SHARE * budget_s)
        per_call = orc.plain_cost
        budget_info["cost_per_call_s"] = float(per_call)
        n_traces = len(traces) if traces is not None else 0
        floor = min(256, int(N0_SHARE * budget_s / per_call))  # 256 unless the function is slow
        if n_traces + floor < MIN_ROWS:
            _refuse_budget(budget_s, per_call, n_traces, floor, clock.deterministic)
        # the guard's calibration rows are labelled last, on the final model: keep their time
        n_cal_domain = calibration_sizes(config.calibration_rate, budget_s * config.calibration_share, per_call)
        # their calls, and scoring them, the held-out traces and the validation rows (the error predictor)
        n_held = len(cal_held["outputs"]) if cal_held is not None else 0
        cal_reserved = n_cal_domain * (per_call + GUARD_ROW_S) + (n_held + 4000) * GUARD_ROW_S
        deadline -= cal_reserved
        affordable = int(0.25 * budget_s / per_call)
        n0 = config.initial_samples or int(np.clip(affordable, floor, 6000))
        if config.max_oracle_calls is not None:
            n0 = min(n0, config.max_oracle_calls if config.rounds == 0 else max(config.max_oracle_calls // 2, 1))
        # paths for the traces themselves (cheap relative share)
        if traces is not None and config.path_budget > 0:
            count = min(len(traces), int(0.3 * orc.path_budget_s / orc.path_cost))
            if count:
                pick = rng.choice(len(traces), size=count, replace=False)
                until = min(deadline, clock.now() + 0.1 * budget_s)
                done = 0
                for i in pick:
                    if clock.now() + 0.5 * orc.path_cost > until:
                        cut.append(f"paths of {done} of the {count} traces planned")
                        break
                    pool.paths[int(i)] = call_with_path(fn, {**defaults, **traces.inputs[int(i)]}).path
                    done += 1
                orc.path_seconds += done * orc.path_cost
        n_near = int(n0 * config.trace_share) if traces is not None else 0
        parts = [schema.sample_columns(n0 - n_near, rng=rng)]
        if n_near:
            parts.append(draw_near(schema, trace_columns, n_near, rng, scale=config.near_scale))
        columns = concat_columns(parts, schema.names)
        # path-traced calls (path_budget of budget_s) and plain ones (N0_SHARE at most): about 0.6 of it
        outputs, errors, paths = orc.call(schema.rows(columns), deadline=min(deadline, clock.now() + 0.65 * budget_s))
        if len(outputs) < n0:
            cut.append(f"initial oracle draws: {len(outputs)} of {n0} planned")
            columns = take(columns, np.arange(len(outputs)))
        pool.add(columns, outputs, errors, paths, 1.0, "oracle")
        # held-out test inputs (not training calls)
        n_test = int(min(config.test_size, max(min(200, int(TEST_SHARE * budget_s / per_call)), 0.1 * budget_s / per_call)))
        test_rng = np.random.default_rng(seed + 7919)
        n_test_near = n_test // 2 if traces is not None else 0
        parts = [schema.sample_columns(n_test - n_test_near, rng=test_rng)]
        if n_test_near:
            parts.append(draw_near(schema, trace_columns, n_test_near, test_rng, scale=config.near_scale))
        test_columns = concat_columns(parts, schema.names)
        path_left = orc.path_seconds < orc.path_budget_s
        saved_budget = orc.path_budget_s
        orc.path_budget_s = orc.path_seconds + min(0.05 * budget_s, n_test * orc.path_cost) if path_left else 0.0
        test_outputs, test_errors, test_paths = orc.call(schema.rows(test_columns), count=False,
                                                         deadline=min(deadline, clock.now() + 0.25 * budget_s))
        orc.path_budget_s = max(saved_budget, orc.path_seconds)
        if len(test_outputs) < n_test:
            cut.append(f"test inputs: {len(test_outputs)} of {n_test} planned")
            test_columns = take(test_columns, np.arange(len(test_outputs)))
        test_calls = len(test_outputs)
    else:
        test_calls = 0
    return Draws(deadline, full_deadline, cut, budget_info, n_cal_domain, cal_reserved,
                 (test_columns, test_outputs, test_errors, test_paths), test_calls)
