"""Is a candidate a faithful stand-in for the legacy function? Measure it three ways.

1. operational: the recorded calls replayed, plus resamples of them (bootstrap rows, small
   jitter on numbers): agreement where the program actually calls the function;
2. domain: uniform draws from the schema: agreement over everything the function accepts;
3. search: a hypothesis property search steered by `target(error)`; every kind of failure
   (reason x branch path of the original) is its own bug, so hypothesis shrinks each one to a
   minimal counterexample and reports them all.

The two sampled views estimate rates (Wilson 95% intervals); the search only hunts. The
original is also run twice on a sample (and on every disagreement) so that its own
non-determinism is reported instead of being blamed on the candidate (Diffy's idea).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import tempfile
import time
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from . import _clock
from ._identity import kwargs_caller
from ._compare import Comparison, Verdict, call
from ._identity import function_name, source_hash, unwrap
from ._paths import PathNames, call_with_path
from ._report import Counterexample, EquivalenceReport, ViewStats, wilson_interval
from ._schema import Field, Schema
from ._tolerance import Tolerance
from ._traces import ErrorInfo, Traces, _freeze
from ._validation import bad_argument, check_flag, check_number, check_seed

_DEFAULT = object()
#: Largest value handed to `hypothesis.target` (it needs finite observations).
_TARGET_CAP = 1e300


def store_directory() -> str | None:
    """Directory of the file-backed trace store named by $NEUROSWAP_STORE, else None."""
    store = os.environ.get("NEUROSWAP_STORE", "")
    if store:
        path = store.split("sqlite:///", 1)[-1] if store.startswith("sqlite:") else store
        if "://" not in path and path != ":memory:":
            return os.path.dirname(os.path.abspath(path))
    return None


def default_database_path() -> str | None:
    """`.hypothesis/neuroswap` beside the trace store named by $NEUROSWAP_STORE; None when there
    is no such store (then failing examples are not kept: never a directory in the cwd)."""
    directory = store_directory()
    return os.path.join(directory, ".hypothesis", "neuroswap") if directory else None


def _database(database: Any) -> Any:
    from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

    if database is _DEFAULT:
        path = default_database_path()
        return DirectoryBasedExampleDatabase(path) if path else None
    if database is None or database is False:
        return None
    if isinstance(database, ExampleDatabase):
        return database
    if isinstance(database, (str, os.PathLike)):
        return DirectoryBasedExampleDatabase(str(database))
    raise bad_argument("database", database, "must be a directory path, a hypothesis ExampleDatabase or None",
                       "Pass database=None to keep no failing examples")


@contextlib.contextmanager
def hypothesis_storage(directory: str | None = None) -> Iterator[None]:
    """Point hypothesis's own files (its cache of source constants, `.hypothesis/constants`)
    beside the trace store, or into a temporary directory removed afterwards, instead of the
    current directory. A place the user chose (HYPOTHESIS_STORAGE_DIRECTORY or
    `hypothesis.configuration.set_hypothesis_home_dir`) is kept."""
    from hypothesis import configuration

    state = vars(configuration)
    current = state.get("__hypothesis_home_directory")
    default = state.get("__hypothesis_home_directory_default")
    if os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY") or (current is not None and current != default):
        yield
        return
    scratch = None
    if directory is None:
        scratch = tempfile.mkdtemp(prefix="neuroswap-hypothesis-")
    configuration.set_hypothesis_home_dir(os.path.join(directory, ".hypothesis") if directory else scratch)
    try:
        yield
    finally:
        configuration.set_hypothesis_home_dir(current)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


class BudgetCut(BaseException):
    """Raised inside a hypothesis test body when the time budget is spent: not an `Exception`,
    so hypothesis neither counts it as a failure nor replays or shrinks it; the run ends at once."""


def _gated(database: Any) -> Any:
    """`database` that ignores writes once `.closed` is set (hypothesis saves the input a run
    was interrupted on as if it failed; that input must not be replayed as a failure)."""
    if database is None:
        return None
    from hypothesis.database import ExampleDatabase

    class Gated(ExampleDatabase):
        def __init__(self) -> None:
            super().__init__()
            self.closed = False
            self.path = getattr(database, "path", None)

        def save(self, key: bytes, value: bytes) -> None:
            if not self.closed:
                database.save(key, value)

        def fetch(self, key: bytes) -> Iterable[bytes]:
            return database.fetch(key)

        def delete(self, key: bytes, value: bytes) -> None:
            if not self.closed:
                database.delete(key, value)

        def move(self, src: bytes, dest: bytes, value: bytes) -> None:
            if not self.closed:
                database.move(src, dest, value)

    return Gated()


# -- the budget clock ------------------------------------------------------------------------------
def now() -> float:
    """The budget clock of this run (`_clock.using`): wall time, or nominal work done so far."""
    return _clock.current().now()


def numpy_backed(candidate: Any) -> bool:
    """A candidate whose calls run numpy/torch (a replace.Surrogate): Python lines do not
    measure its cost, so the work clock charges it a fixed nominal cost per call and per row."""
    return callable(getattr(candidate, "predict_batch", None))


class Meter:
    """Charges the budget clock for the work verify and mining do: calls of the original
    (plain or path-traced) and of the candidate, hypothesis examples, batched rows.

    On the wall clock every charge is a no-op (the work itself takes the time). On the work
    clock the costs are nominal: Python lines per call of the original (and of a Python
    candidate), counted once on a small calibration sample (as fit's oracle does), fixed
    costs for a numpy-backed candidate; so a run cut by its budget ends at the same point at
    any machine load, and `time.sleep` in a function costs it nothing."""

    def __init__(self, clock: Any = None, original: Callable[..., Any] | None = None,
                 candidate: Callable[..., Any] | None = None, *, model: Any = None,
                 sample: Sequence[Mapping[str, Any]] = ()) -> None:
        self.clock = clock if clock is not None else _clock.current()
        self.original_plain = self.original_traced = self.candidate_call = 0.0
        self.lines = 0.0
        if not self.clock.deterministic:
            return
        rows = [dict(kwargs) for kwargs in list(sample)[:5]]
        if original is not None:
            self.lines = _clock.mean_lines(original, rows)
            self.original_plain, self.original_traced = _clock.nominal_call_costs(self.lines)
        if candidate is not None:
            if numpy_backed(model if model is not None else candidate):
                self.candidate_call = _clock.NUMPY_CALL_S
            else:
                self.candidate_call = _clock.nominal_call_costs(_clock.mean_lines(candidate, rows))[0]
        # the calibration itself: two plain calls of each function per row
        self.clock.charge(2 * len(rows) * (self.original_plain + self.candidate_call))

    @property
    def deterministic(self) -> bool:
        return bool(self.clock.deterministic)

    def original(self, traced: bool = False) -> None:
        self.clock.charge(self.original_traced if traced else self.original_plain)

    def candidate(self) -> None:
        self.clock.charge(self.candidate_call)

    def example(self) -> None:
        self.clock.charge(_clock.EXAMPLE_OVERHEAD_S)

    def rows(self, n: int) -> None:
        self.clock.charge(_clock.NUMPY_ROW_S * n)

    # -- what a call costs, for planning: nominal under the work clock, measured on the wall clock
    measured_original: float | None = None  # wall seconds per plain call of the original
    measured_traced: float | None = None    # ... per path-traced call of the original
    measured_candidate: float | None = None  # ... per call of the candidate
    traced = True  # whether the run traces the original's path on every input (set by the caller)

    def measure(self, original: Callable[..., Any], candidate: Callable[..., Any] | None,
                sample: Sequence[Mapping[str, Any]], *, at_most_s: float = 0.05) -> None:
        """Time plain calls of both functions on a few inputs of `sample` (the first always,
        then more while the total stays under `at_most_s`; the first, a warm-up, is left out
        of the mean when there are more), before any batch is planned: a slow function must
        not overrun a budget sized for a fast one. A no-op under the work clock (its costs are
        nominal, known from the calibration)."""
        if self.deterministic:
            return
        times: list[tuple[float, float]] = []
        began = time.perf_counter()
        for kwargs in list(sample)[:5]:
            if times and time.perf_counter() - began > at_most_s:
                break
            tick = time.perf_counter()
            call(original, dict(kwargs))
            tock = time.perf_counter()
            if candidate is not None:
                call(candidate, dict(kwargs))
            times.append((tock - tick, time.perf_counter() - tock))
        if times:
            kept = times[1:] if len(times) > 1 else times
            self.measured_original = sum(t for t, _ in kept) / len(kept)
            self.measured_candidate = sum(t for _, t in kept) / len(kept) if candidate is not None else 0.0

    @property
    def cost_original(self) -> float:
        """Seconds per call of the original as the run makes them (traced or plain)."""
        if self.deterministic:
            return self.original_traced if self.traced else self.original_plain
        plain = self.measured_original or 0.0
        if self.traced:
            return self.measured_traced if self.measured_traced is not None else plain
        return plain

    @property
    def cost_candidate(self) -> float:
        return self.candidate_call if self.deterministic else (self.measured_candidate or 0.0)

    @property
    def cost_traced(self) -> float:
        """Seconds per path-traced call of the original (an estimate when never timed)."""
        if self.deterministic:
            return self.original_traced
        if self.measured_traced is not None:
            return self.measured_traced
        return 10.0 * (self.measured_original or 0.0) + _clock.TRACED_CALL_OVERHEAD_S

    @property
    def per_input(self) -> float:
        """Seconds per input run through both functions."""
        return self.cost_original + self.cost_candidate

    def late(self, deadline: float, cost: float | None = None) -> bool:
        """Whether a call costing `cost` (default: one input through both functions) started
        now would end past `deadline`. On the wall clock the measured cost is looked ahead;
        on the work clock nothing is (a deadline checked before each call, as always, keeps
        runs reproducible: nominal costs are charged after the call)."""
        if self.deterministic:
            return now() > deadline
        return now() + (self.per_input if cost is None else cost) > deadline

    def paths_affordable(self, fn: Callable[..., Any], inputs: Sequence[Mapping[str, Any]]) -> bool:
        """`paths_affordable`, decided on nominal costs under the work clock (timing would make
        the choice, and with it the failure classes, depend on the load); on the wall clock,
        not timed at all when a plain call already costs more than the limit."""
        if self.deterministic:
            return self.original_traced < PATH_TRACE_LIMIT_S
        if self.measured_original is not None and self.measured_original >= PATH_TRACE_LIMIT_S:
            return False
        self.measured_traced = traced_cost(fn, inputs)
        return self.measured_traced < PATH_TRACE_LIMIT_S


@contextlib.contextmanager
def deterministic_hypothesis(clock: Any, fn: Callable[..., Any] | None = None) -> Iterator[None]:
    """Make a seeded hypothesis run depend on nothing but its seed and the test's outcomes.

    Two things in hypothesis 6 read the machine otherwise: the engine stops generating ten
    wall seconds after the first failure (and stops shrinking after five minutes): under the
    work clock those read the work clock instead; and 5% of draws pick a constant found in
    the source of every local module imported so far (a set that grows as a process imports
    modules): pinned to the constants of `fn`'s own module (the thresholds of the legacy
    code). A no-op on the wall clock, or when hypothesis's internals have moved (then a run
    still depends on the load only through those two)."""
    if not getattr(clock, "deterministic", False):
        yield
        return
    try:
        from hypothesis.internal.conjecture import engine, providers
        from hypothesis.internal.constants_ast import Constants, constants_from_module

        saved_time, saved_constants = engine.time, providers._get_local_constants
        cache = providers.CONSTANTS_CACHE.cache
    except (ImportError, AttributeError):  # pragma: no cover - another hypothesis layout
        yield
        return
    import sys

    module = sys.modules.get(getattr(unwrap(fn), "__module__", "") or "") if fn is not None else None
    try:
        pinned = constants_from_module(module) if module is not None else Constants()
    except Exception:  # pragma: no cover - a module without readable source
        pinned = Constants()
    engine.time = types.SimpleNamespace(perf_counter=clock.now, monotonic=clock.now, time=clock.now,
                                        sleep=time.sleep)
    providers._get_local_constants = lambda: pinned
    cache.clear()
    try:
        yield
    finally:
        engine.time, providers._get_local_constants = saved_time, saved_constants
        cache.clear()


# -- evaluation ------------------------------------------------------------------------------------
@dataclass
class Record:
    """One input run through both functions, with the verdict and the original's path."""

    inputs: dict[str, Any]
    expected: Any
    expected_error: ErrorInfo | None
    actual: Any
    actual_error: ErrorInfo | None
    verdict: Verdict
    path: str = ""
    view: str = ""
    nondeterministic: bool = False

    @property
    def disagrees(self) -> bool:
        return not self.verdict.agree and not self.verdict.skipped and not self.nondeterministic

    @property
    def klass(self) -> tuple[str, str]:
        """Failure class: reason and path (each is shrunk and reported separately)."""
        return self.verdict.reason, self.path

    def counterexample(self, *, shrunk: bool = False) -> Counterexample:
        return Counterexample(dict(self.inputs), self.expected, self.actual, self.verdict.error, self.path,
                              self.expected_error, self.actual_error, self.verdict.reason, self.view, shrunk)


class Evaluator:
    """Runs original (with its branch path) and candidate on inputs and judges them."""

    def __init__(self, original: Callable[..., Any], candidate: Callable[..., Any], comparison: Comparison,
                 *, paths: bool = True, order: Sequence[str] = (), meter: Meter | None = None) -> None:
        self.original = original
        self.order = list(order)
        self.candidate = candidate
        self.comparison = comparison
        self.paths = paths
        #: readable branch outcomes of each path id seen (verify's per-path table names paths by them)
        self.names = PathNames(getattr(unwrap(original), "__qualname__", ""))
        self.calls = 0
        self.meter = meter if meter is not None else Meter(_clock.WallClock())

    def run(self, kwargs: Mapping[str, Any], view: str = "") -> Record:
        self.calls += 1
        inputs = {name: kwargs[name] for name in self.order if name in kwargs}
        inputs.update(kwargs)  # schema order first (readable calls), then anything else
        if self.paths:
            outcome = call_with_path(self.original, inputs)
            expected, expected_error, path = outcome.output, outcome.error, outcome.path
            self.names.add(path, outcome.branches)
        else:
            (expected, expected_error), path = call(self.original, inputs), ""
        self.meter.original(traced=self.paths)
        actual, actual_error = call(self.candidate, inputs)
        self.meter.candidate()
        verdict = self.comparison.compare(expected, actual, expected_error=expected_error, actual_error=actual_error)
        return Record(inputs, expected, expected_error, actual, actual_error, verdict, path, view)

    def self_consistent(self, record: Record) -> bool:
        """Run the original again on `record`'s input: does it agree with its first outcome?"""
        again, again_error = call(self.original, record.inputs)
        self.meter.original()
        policy = self.comparison
        if policy.exceptions == "ignore":  # the original must still raise the same way
            policy = Comparison(policy.tolerance, "type", policy.nan, policy.output_kind)
        verdict = policy.compare(record.expected, again, expected_error=record.expected_error,
                                 actual_error=again_error)
        return verdict.agree


#: Branch paths are traced on every input only while a traced call costs less than this (s).
PATH_TRACE_LIMIT_S = 5e-3


def traced_cost(fn: Callable[..., Any], inputs: Sequence[Mapping[str, Any]], *,
                limit_s: float = PATH_TRACE_LIMIT_S) -> float:
    """Wall seconds of a path-traced call of `fn`, timed on up to three of `inputs` (the first,
    a warm-up, left out of the mean when there are more), stopping after a call that alone
    takes `limit_s` or more (0.0 without inputs)."""
    times: list[float] = []
    for kwargs in list(inputs)[:3]:
        began = time.perf_counter()
        call_with_path(fn, dict(kwargs))
        times.append(time.perf_counter() - began)
        if times[-1] >= limit_s:
            return max(times[-1], sum(times) / len(times))
    kept = times[1:] if len(times) > 1 else times
    return sum(kept) / len(kept) if kept else 0.0


def paths_affordable(fn: Callable[..., Any], inputs: Sequence[Mapping[str, Any]], *,
                     limit_s: float = PATH_TRACE_LIMIT_S) -> bool:
    """Whether tracing branch paths (sys.settrace, 10-50x slower) is cheap enough to do on
    every input: timed on a few inputs."""
    return traced_cost(fn, inputs, limit_s=limit_s) < limit_s


# -- inputs ----------------------------------------------------------------------------------------
def _replayable_inputs(traces: Traces) -> list[dict[str, Any]]:
    mask = traces.replayable
    return [dict(kw) for kw, ok in zip(traces.inputs, mask) if ok]


def _jitter(value: Any, item: Field, rng: np.random.Generator, scale: float) -> Any:
    """A nearby value of the same kind (numbers only; categories and flags are kept)."""
    if item.kind == "real" and isinstance(value, (int, float)) and not isinstance(value, bool):
        span = (item.high - item.low) or 1.0  # type: ignore[operator]
        moved = float(value) + rng.normal(0.0, scale * span)
        return float(min(max(moved, min(item.low, value)), max(item.high, value)))  # type: ignore[type-var]
    if item.kind == "integer" and isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        if rng.random() < 0.3:
            moved = int(value) + int(rng.choice((-1, 1)))
            return int(min(max(moved, min(int(item.low), int(value))), max(int(item.high), int(value))))  # type: ignore[arg-type]
        return int(value)
    if item.kind == "vector":
        try:
            array = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            return value
        span = (item.high - item.low) or 1.0  # type: ignore[operator]
        moved = np.clip(array + rng.normal(0.0, scale * span, size=array.shape),
                        min(item.low, array.min()), max(item.high, array.max()))  # type: ignore[type-var]
        return Schema._as_container(item, moved)
    return value


def resample_operational(rows: Sequence[Mapping[str, Any]], schema: Schema, n: int,
                         rng: np.random.Generator, *, scale: float = 0.01) -> list[dict[str, Any]]:
    """Bootstrap `n` rows of recorded inputs, each number moved by N(0, scale * range)."""
    if not rows or n <= 0:
        return []
    by_name = {item.name: item for item in schema.fields}
    picks = rng.integers(0, len(rows), size=n)
    out = []
    for index in picks:
        row = rows[int(index)]
        out.append({k: (_jitter(v, by_name[k], rng, scale) if k in by_name else v) for k, v in row.items()})
    return out


# -- shrinking of sampled failures -----------------------------------------------------------------
def _simpler_values(value: Any, item: Field) -> list[Any]:
    """Simpler replacements for one argument, simplest first (round numbers, range ends, first category)."""
    if item.kind == "real" and isinstance(value, (int, float)) and not isinstance(value, bool):
        options: list[Any] = []
        for candidate in (0.0, float(item.low), float(item.high)):  # type: ignore[arg-type]
            if item.low <= candidate <= item.high:  # type: ignore[operator]
                options.append(candidate)
        for digits in (0, 1, 2, 3, 4, 6):
            options.append(float(round(float(value), digits)))
        return [o for o in dict.fromkeys(options) if o != value]
    if item.kind == "integer" and isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        low = int(item.low)  # type: ignore[arg-type]
        options = [0] if item.low <= 0 <= item.high else []  # type: ignore[operator]
        options.append(low)
        step = int(value)
        while step != low:
            step = (step + low) // 2 if step > low else (step + low + 1) // 2
            options.append(step)
            if len(options) > 40:
                break
        return [o for o in dict.fromkeys(options) if o != value]
    if item.kind in ("categorical", "boolean"):
        cats = list(item.categories)
        if item.kind == "boolean":
            cats = [False, True]
        try:
            position = cats.index(value)
        except ValueError:
            return []
        return cats[:position]
    return []


def simplify(inputs: Mapping[str, Any], schema: Schema, still_fails: Callable[[dict[str, Any]], Any],
             *, max_calls: int = 300) -> tuple[dict[str, Any], Any, bool]:
    """Greedy value-level shrink: replace one argument at a time by a simpler value while the
    same failure persists. Returns (inputs, last failing result, changed)."""
    current = dict(inputs)
    result = still_fails(current)
    if not result:
        return current, result, False
    calls, changed, improved = 0, False, True
    while improved and calls < max_calls:
        improved = False
        for item in schema.fields:
            if item.name not in current:
                continue
            for option in _simpler_values(current[item.name], item):
                if calls >= max_calls:
                    break
                trial = dict(current)
                trial[item.name] = option
                calls += 1
                outcome = still_fails(trial)
                if outcome:
                    current, result, changed, improved = trial, outcome, True, True
                    break
    return current, result, changed


# -- the search ------------------------------------------------------------------------------------
@dataclass
class SearchResult:
    """What the property search saw. `shrunk`: one minimal case per failure class, as hypothesis
    reported them at the end of a complete run; `partial`: when the run was cut short (budget)
    or hypothesis ended without reporting them, the best case recorded so far per class (the
    latest failing shrink attempt, else the first failure): real failures, not fully shrunk."""

    records: list[Record] = field(default_factory=list)
    shrunk: list[Record] = field(default_factory=list)
    partial: list[Record] = field(default_factory=list)
    stop_reason: str = ""
    time_s: float = 0.0
    cut: str = ""  # the phase the budget cut short ("generate" or "shrink"), "" if none


def _collect(exc: BaseException, kinds: tuple[type, ...], out: list[BaseException]) -> None:
    if isinstance(exc, kinds):
        out.append(exc)
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            _collect(inner, kinds, out)


def property_search(evaluator: Evaluator, schema: Schema, *, max_examples: int, seed: int, derandomize: bool,
                    database: Any, key: bytes, view: str = "search",
                    deadline: float = math.inf) -> SearchResult:
    """A hypothesis run steered by `target(error)`; each failure class raises its own exception
    type, so hypothesis shrinks and reports every class (report_multiple_bugs).

    hypothesis has no time limit of its own (shrinking may take minutes), so the test body
    keeps its own record of every failure and, once `deadline` (on the budget clock, `now()`)
    has passed, raises `BudgetCut`, which ends the run at once; the best failure recorded per
    class is then reported instead of hypothesis's final (fully shrunk) one. Under the work
    clock each example is charged a nominal overhead, failures kept in `database` are not
    replayed (a run must depend on its seed alone; they are still saved), and hypothesis's own
    clock reads are pinned (`deterministic_hypothesis`).
    """
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings, target
    from hypothesis import seed as hypothesis_seed

    from ._strategy import strategy

    result = SearchResult()
    classes: dict[tuple[str, str], type] = {}
    best: dict[tuple[str, str], Record] = {}  # per class: first failure, then each failing shrink step
    failing_inputs: set[Any] = set()
    phase = ["generate"]
    gated = _gated(database)

    def failure_type(klass: tuple[str, str]) -> type:
        if klass not in classes:
            classes[klass] = type(f"Disagreement{len(classes)}", (AssertionError,), {"klass": klass})
        return classes[klass]

    meter = evaluator.meter

    def check(kwargs: dict[str, Any]) -> None:
        if meter.late(deadline):
            result.cut = phase[0]
            if gated is not None:
                gated.closed = True
            raise BudgetCut()
        frozen = _freeze(kwargs)
        if frozen in failing_inputs and phase[0] == "generate":
            # hypothesis starts shrinking by replaying each failure found: shrink phase begun
            phase[0] = "shrink"
        meter.example()
        record = evaluator.run(kwargs, view)
        result.records.append(record)
        error = record.verdict.error
        if not record.verdict.skipped and math.isfinite(error):
            target(min(float(error), _TARGET_CAP), label="error")
        if not record.verdict.agree and not record.verdict.skipped:
            failing_inputs.add(frozen)
            if record.klass not in best or phase[0] == "shrink":  # a shrink step only tries smaller inputs
                best[record.klass] = record
            failure = failure_type(record.klass)(f"{record.verdict.reason} on {kwargs!r}")
            failure.record = record  # type: ignore[attr-defined]
            raise failure

    check._hypothesis_internal_add_digest = key  # type: ignore[attr-defined]
    test = given(strategy(schema))(check)
    if not derandomize:  # before settings: @seed alone would switch the database off
        test = hypothesis_seed(seed)(test)
    phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]
    if meter.deterministic:  # replaying saved failures would make a run depend on earlier runs
        phases.remove(Phase.reuse)
    test = settings(
        max_examples=max_examples, deadline=None, derandomize=derandomize, database=gated,
        report_multiple_bugs=True, verbosity=Verbosity.quiet, print_blob=False,
        phases=phases, suppress_health_check=list(HealthCheck),
    )(test)
    start = time.perf_counter()
    try:
        with deterministic_hypothesis(meter.clock, evaluator.original):
            test()
        result.stop_reason = "max_examples"
    except BudgetCut:
        result.stop_reason = (f"budget reached while {'shrinking' if result.cut == 'shrink' else 'generating'}"
                              f" ({len(best)} failure classes found, reported as found so far)")
    except BaseException as exc:  # noqa: BLE001 - hypothesis reports bugs as exceptions (groups)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        found: list[BaseException] = []
        _collect(exc, tuple(classes.values()) or (type(None),), found)
        if found and not _is_flaky(exc):
            result.stop_reason = "failures shrunk"
            seen: set[Any] = set()
            for failure in found:
                record = failure.record  # type: ignore[attr-defined]
                key_ = (record.klass, _freeze(record.inputs))
                if key_ not in seen:
                    seen.add(key_)
                    result.shrunk.append(record)
        else:  # Flaky (a function that answers differently on a replay) or an internal error
            first = str(exc).splitlines()[0] if str(exc) else ""
            result.stop_reason = f"hypothesis stopped: {type(exc).__name__}: {first}"
    reported = {record.klass for record in result.shrunk}
    result.partial = [record for klass, record in best.items() if klass not in reported]
    result.time_s = time.perf_counter() - start
    return result


def _is_flaky(exc: BaseException) -> bool:
    from hypothesis.errors import Flaky

    return isinstance(exc, Flaky)


# -- verify ----------------------------------------------------------------------------------------
def resolve_schema(original: Callable[..., Any], candidate: Any, schema: Schema | None,
                   traces: Traces | None) -> Schema:
    if schema is not None:
        if not isinstance(schema, Schema):
            raise bad_argument("schema", type(schema).__name__, "must be a probes.Schema",
                               "Build one with Schema.from_function(fn, x=(low, high), ...)")
        return schema
    if traces is not None and len(traces) > 0:
        return Schema.infer(original, traces)
    own = getattr(candidate, "schema", None)
    if isinstance(own, Schema):
        return own
    raise bad_argument("schema", None, "the input domain is unknown (no schema, no traces, candidate has no .schema)",
                       "Pass schema=Schema.from_function(fn, x=(low, high), ...) or traces=store.load(fn)")


def resolve_tolerance(candidate: Any, tolerance: Tolerance | None) -> Tolerance:
    if tolerance is None:
        own = getattr(candidate, "tolerance", None)
        return own if isinstance(own, Tolerance) else Tolerance()
    if not isinstance(tolerance, Tolerance):
        raise bad_argument("tolerance", tolerance, "must be a probes.Tolerance", "Pass Tolerance(abs=..., rel=...)")
    return tolerance


def _check_callable(name: str, value: Any) -> None:
    if not callable(value):
        raise bad_argument(name, value, "must be callable with the legacy function's keyword arguments",
                           f"Pass the function itself, e.g. {name}=my_module.my_function")


def _search_key(original: Callable[..., Any], candidate: Callable[..., Any], schema: Schema, comparison: Comparison) -> bytes:
    parts = [function_name(original), source_hash(original), _name(candidate), schema.to_json(),
             repr(comparison.to_dict())]
    try:
        parts.append(source_hash(candidate))
    except Exception:  # a callable object without source
        pass
    return "|".join(parts).encode()


def _name(fn: Any) -> str:
    inner = unwrap(fn)
    if not hasattr(inner, "__qualname__") and not hasattr(inner, "__name__"):  # a callable object:
        kind = type(inner)  # its class (a repr would carry a memory address, different every run)
        return f"{kind.__module__}:{kind.__qualname__}"
    try:
        return function_name(fn)
    except Exception:  # pragma: no cover - odd callables
        return type(fn).__qualname__


def verify(
    original: Callable[..., Any],
    candidate: Callable[..., Any],
    *,
    schema: Schema | None = None,
    traces: Traces | None = None,
    tolerance: Tolerance | None = None,
    max_examples: int = 1000,
    seed: int = 0,
    exceptions: str = "type",
    nan: str = "equal",
    derandomize: bool = False,
    database: Any = _DEFAULT,
    budget_s: float | None = None,
    search: bool = True,
    max_counterexamples: int = 10,
    nondeterminism_sample: int = 100,
    paths: bool | None = None,
    budget_clock: str = "wall",
    min_examples: int | None = None,
    wall_ceiling_s: float | None = None,
) -> EquivalenceReport:
    """Check `candidate(**kwargs)` against `original(**kwargs)` on the operational distribution
    (needs `traces`), the whole domain, and a shrinking property search.

    `max_examples` inputs per view; `tolerance` defaults to the candidate's own `.tolerance`
    (a Surrogate's) else exact.

    A verdict needs evidence: the report passes only when no disagreement was seen and every
    view that ran (operational when traces are given, domain, search unless `search=False`)
    judged at least `min_examples` inputs (None: `DEFAULT_MIN_EXAMPLES`, 100). Inputs skipped
    by the exception policy, or where the original disagreed with itself, are not judged; the
    search counts every example hypothesis ran (repeats included), and a search that ran out
    of inputs on its own (hypothesis tried every input of a small domain) before the minimum
    still counts, as long as it judged one. A view short of the minimum (cut by the budget, or
    `max_examples` below the default minimum) makes the status "inconclusive" and `.passed`
    False, with the reason in `.reason`; a disagreement makes it "failed" whatever the counts.
    `min_examples` above `max_examples` is refused.

    `budget_s` bounds the wall time: the cost of a call of each function is measured first,
    every stage plans its batch from what remains and stops before a call that would end past
    its share (the search even mid-shrink, keeping every failure found so far), so a run ends
    within the budget plus about one call of both functions (unless a single call is longer
    than the budget: the first one is always made); `statistics["budget_cut"]` names the stages
    cut short, `statistics["cost_per_input_s"]` the cost the plan used, and an inconclusive
    reason says what budget `min_examples` would have needed. Failing examples are kept in `database` (a directory, a
    hypothesis database, or None), by default beside the trace store named by
    $NEUROSWAP_STORE, else not kept; they are replayed first next time. `derandomize=True`
    for CI (a run the budget cuts short depends on timing: for identical reports bound it by
    `max_examples`, or pass `budget_clock="work"`). `paths`: trace the original's branch path on every input (per-path agreement, one
    shrunk counterexample per path); None decides by cost (only when a traced call takes
    under 5 ms), and counterexamples always get their path.

    `budget_clock="work"`: `budget_s` counts nominal work instead of wall time (calls of
    both functions, hypothesis examples; see `Meter`), hypothesis runs seeded from `seed`
    (or derandomised) and never replays saved failures, and the path-tracing choice uses
    nominal costs: the same seed then gives the same report (inputs, order, counterexamples)
    at any machine load; only the wall times in it differ. The default database is not used
    then (a configured store must not change the run); one passed explicitly is written (a
    run with one differs from a run without, never by what it holds). What the work clock does
    not see (a function that sleeps) is bounded by `wall_ceiling_s` (None: 4 x `budget_s` + 5 s;
    `math.inf` for none): a run that reaches it ends there with a `NotReproducibleWarning`.
    """
    budget_clock = _clock.check(budget_clock)
    start = time.perf_counter()
    _check_callable("original", original)
    _check_callable("candidate", candidate)
    model = candidate  # the object itself: a numpy-backed candidate is charged per call (work clock)
    original, candidate = kwargs_caller(original), kwargs_caller(candidate)
    if isinstance(max_examples, bool) or not isinstance(max_examples, (int, np.integer)) or max_examples < 1:
        raise bad_argument("max_examples", max_examples, "must be an integer >= 1", "Pass e.g. max_examples=1000")
    check_number("max_examples", max_examples, low=1, integer=True, fix="Pass e.g. max_examples=1000")
    check_seed("seed", seed)
    if budget_s is not None:
        check_number("budget_s", budget_s, low=0.0, low_inclusive=False, fix="Pass seconds, or None for no budget")
    check_flag("derandomize", derandomize)
    check_flag("search", search, fix="Pass search=False to skip the shrinking property search")
    check_flag("paths", paths, optional=True, fix="Pass None to trace branch paths only when a traced call is cheap")
    check_number("max_counterexamples", max_counterexamples, low=1, integer=True,
                 fix="Pass how many shrunk counterexamples to keep, e.g. 10")
    check_number("nondeterminism_sample", nondeterminism_sample, low=0, integer=True,
                 fix="Pass how many judged inputs to re-run for non-determinism, e.g. 100 (0: none)")
    if min_examples is not None:
        if isinstance(min_examples, bool) or not isinstance(min_examples, (int, np.integer)) or min_examples < 1:
            raise bad_argument("min_examples", min_examples, "must be an integer >= 1 (inputs each view must judge "
                               "before the report can pass)", f"Pass e.g. min_examples={DEFAULT_MIN_EXAMPLES}")
        if min_examples > max_examples:
            raise bad_argument("min_examples", int(min_examples), f"must be <= max_examples={int(max_examples)} (a view "
                               "never judges more than max_examples inputs, so the report could never pass)",
                               f"Pass max_examples>={int(min_examples)}, or min_examples<={int(max_examples)}")
    ceiling = _clock.check_ceiling(wall_ceiling_s, budget_s)
    if traces is not None and not isinstance(traces, Traces):
        raise bad_argument("traces", type(traces).__name__, "must be a probes.Traces", "Load them with store.load(fn)")
    schema = resolve_schema(original, candidate, schema, traces)
    comparison = Comparison(resolve_tolerance(candidate, tolerance), exceptions, nan,
                            "label" if schema.output.kind == "label" else "")
    # Under the work clock the default database (beside $NEUROSWAP_STORE) is not used: whether a
    # store is configured must not change the run. One passed explicitly is written, never replayed.
    db = _database(database) if search and not (budget_clock == "work" and database is _DEFAULT) else None
    clock = _clock.make(budget_clock, wall_ceiling_s=ceiling)
    with hypothesis_storage(store_directory()), _clock.using(clock):
        report = _verify(original, candidate, schema=schema, traces=traces, comparison=comparison,
                         max_examples=int(max_examples), seed=int(seed), derandomize=derandomize, db=db,
                         budget_s=budget_s, search=search, max_counterexamples=max_counterexamples,
                         nondeterminism_sample=nondeterminism_sample, paths=paths, start=start,
                         model=model, min_examples=None if min_examples is None else int(min_examples))
    _clock.ceiling_warning(clock, "verify")
    return report


#: Inputs each view must judge, by default, before a report can pass.
DEFAULT_MIN_EXAMPLES = 100

#: Share of the budget kept, at most, for the stages after the search (non-determinism checks,
#: shrinking the failures of the sampled views).
_AFTER_SEARCH_SHARE = 0.15


def _view_shares(traces: bool, search: bool) -> dict[str, tuple[float, float]]:
    """(from, to) of each view's slice of the budget, as shares of it: the sampled views first,
    then the search up to what the later stages keep (`_AFTER_SEARCH_SHARE` at most)."""
    if search:
        shares = {"operational": (0.0, 0.25), "domain": (0.25, 0.5)} if traces else {"domain": (0.0, 0.5)}
        shares["search"] = (0.5, 1.0 - _AFTER_SEARCH_SHARE)
        return shares
    return {"operational": (0.0, 0.45), "domain": (0.45, 0.9)} if traces else {"domain": (0.0, 0.9)}


def needed_budget(min_examples: int, per_input: float, *, traces: bool, search: bool,
                  per_example: float = 3e-4) -> float:
    """About the `budget_s` in which every view judges `min_examples` inputs at `per_input`
    seconds each (the search: 1.5 x that plus `per_example` of hypothesis's own work, as it
    plans), given each view's slice of the budget (`_view_shares`)."""
    need = 0.0
    for name, (low, high) in _view_shares(traces, search).items():
        cost = 1.5 * per_input + per_example if name == "search" else per_input
        need = max(need, min_examples * cost / (high - low))
    return need


def _seconds(value: float) -> str:
    """A duration a person reads at a glance: 3.2 us, 10.4 ms, 2.5 s."""
    if value < 1e-3:
        return f"{value * 1e6:.3g} us"
    if value < 1.0:
        return f"{value * 1e3:.3g} ms"
    return f"{value:.3g} s"


def _verify(original: Callable[..., Any], candidate: Callable[..., Any], *, schema: Schema, traces: Traces | None,
            comparison: Comparison, max_examples: int, seed: int, derandomize: bool, db: Any,
            budget_s: float | None, search: bool, max_counterexamples: int, nondeterminism_sample: int,
            paths: bool | None, start: float, model: Any = None,
            min_examples: int | None = None) -> EquivalenceReport:
    # wall time for the report; the budget clock for deadlines (on the wall clock, from the call
    # of verify on, as before: schema inference counts against the budget)
    wall_start = start
    start = now() if _clock.current().deterministic else now() - (time.perf_counter() - wall_start)
    deadline = start + budget_s if budget_s else math.inf
    has_traces = traces is not None and bool(_replayable_inputs(traces))
    shares = _view_shares(has_traces, search)
    view_deadline = ({name: start + high * budget_s for name, (_, high) in shares.items() if name != "search"}
                     if budget_s else {})
    rng = np.random.default_rng(seed)
    domain_inputs = schema.sample(max_examples, rng=rng)
    meter = Meter(_clock.current(), original, candidate, model=model, sample=domain_inputs[:5])
    if budget_s:  # what a call costs, before any batch is planned (nominal on the work clock)
        meter.measure(original, candidate, domain_inputs[:5], at_most_s=min(0.05, 0.02 * budget_s))
    if paths is None:
        paths = meter.paths_affordable(original, domain_inputs)
    meter.traced = bool(paths)
    evaluator = Evaluator(original, candidate, comparison, paths=bool(paths), order=schema.names, meter=meter)
    stop_reasons: list[str] = []
    cut: list[str] = []  # stages the budget cut short
    view_records: dict[str, list[Record]] = {}
    view_time: dict[str, float] = {}  # wall seconds (reported)
    view_spent: dict[str, float] = {}  # seconds on the budget clock (planning)
    notes: dict[str, str] = {}

    def run_view(name: str, inputs: list[dict[str, Any]]) -> None:
        began, spent_from = time.perf_counter(), now()
        records = []
        until = view_deadline.get(name, math.inf)
        for kwargs in inputs:
            if meter.late(until):
                stop_reasons.append(f"{name}: budget reached after {len(records)} inputs")
                cut.append(name)
                break
            records.append(evaluator.run(kwargs, name))
        view_records[name] = records
        view_time[name] = time.perf_counter() - began
        view_spent[name] = now() - spent_from

    # 1. operational: recorded inputs replayed, then bootstrap resamples with jitter
    rows = _replayable_inputs(traces) if traces is not None else []
    outside = 0
    if rows:
        unique = list({_freeze(r): r for r in rows}.values())
        n_replay = min(len(unique), max(1, max_examples // 2))
        picks = rng.choice(len(unique), size=n_replay, replace=False) if n_replay < len(unique) else range(len(unique))
        replay = [unique[int(i)] for i in picks]
        run_view("operational", replay + resample_operational(rows, schema, max_examples - len(replay), rng))
        notes["operational"] = f"{len(replay)} recorded inputs replayed, {max_examples - len(replay)} resampled with jitter"
        outside = sum(1 for kwargs in replay if not schema.contains(kwargs)[0])
        if outside:
            notes["operational"] += f"; {outside} recorded inputs lie outside the schema"
    else:
        notes["operational"] = "not run: no traces given"
    # 2. domain: uniform over the schema
    run_view("domain", domain_inputs)

    sampled = sum(len(r) for r in view_records.values())
    per_input = (sum(view_spent.values()) / sampled) if sampled else (meter.per_input or 1e-3)
    # 3. search, ending early enough to leave the later stages their (estimated) time
    search_result = SearchResult(stop_reason="not run")
    n_search = 0
    if search:
        n_search = max_examples
        search_deadline = deadline
        if budget_s:
            after = min(_AFTER_SEARCH_SHARE * budget_s, per_input * (min(nondeterminism_sample, sampled) + 30))
            search_deadline = deadline - after
            remaining = search_deadline - now()
            overhead = _clock.EXAMPLE_OVERHEAD_S if meter.deterministic else 3e-4  # per hypothesis example
            n_search = int(max(10, min(max_examples, remaining / (1.5 * per_input + overhead))))
        search_result = property_search(
            evaluator, schema, max_examples=n_search, seed=seed, derandomize=derandomize, database=db,
            key=_search_key(original, candidate, schema, comparison), deadline=search_deadline)
        view_records["search"] = _unique(search_result.records)
        view_time["search"] = search_result.time_s
        notes["search"] = f"adversarial (target on error), not a rate estimate; {search_result.stop_reason}"
        stop_reasons.append(f"search: {search_result.stop_reason}")
        if search_result.cut:
            cut.append(f"search:{search_result.cut}")

    # non-determinism: a random sample of sampled inputs, and every disagreement (within the budget)
    sampled_records = view_records.get("operational", []) + view_records.get("domain", [])
    sample_n = min(nondeterminism_sample, len(sampled_records))
    sample_ids = rng.choice(len(sampled_records), size=sample_n, replace=False) if sample_n else []
    flaky_in_sample = 0
    checked_in_sample = 0
    for i in sample_ids:
        if meter.late(deadline, meter.cost_original):
            stop_reasons.append(f"non-determinism sample: budget reached after {checked_in_sample} of {sample_n} inputs")
            cut.append("nondeterminism-sample")
            break
        checked_in_sample += 1
        if not evaluator.self_consistent(sampled_records[int(i)]):
            flaky_in_sample += 1
            sampled_records[int(i)].nondeterministic = True
    every = list({id(r): r for r in [r for records in view_records.values() for r in records]
                  + search_result.shrunk + search_result.partial}.values())
    to_recheck = [r for r in every if not r.verdict.agree and not r.verdict.skipped and not r.nondeterministic]
    to_recheck.sort(key=lambda r: -r.verdict.error)  # the worst (the counterexamples shown) first
    rechecked = 0
    for record in to_recheck:
        if meter.late(deadline, meter.cost_original):
            stop_reasons.append(f"non-determinism re-check: budget reached after {rechecked} of "
                                f"{len(to_recheck)} disagreements")
            cut.append("nondeterminism-recheck")
            break
        rechecked += 1
        if not evaluator.self_consistent(record):
            record.nondeterministic = True
    flaky_total = sum(1 for r in every if r.nondeterministic)

    # views
    views: dict[str, ViewStats] = {}
    for name in ("operational", "domain", "search"):
        records = view_records.get(name)
        if records is None:
            views[name] = ViewStats(name, note=notes.get(name, "not run"))
            continue
        counted = [r for r in records if not r.verdict.skipped and not r.nondeterministic]
        skipped = len(records) - len(counted)
        note = notes.get(name, "")
        flaky = sum(1 for r in records if r.nondeterministic)
        if flaky:
            note += f"; {flaky} inputs excluded: the original disagrees with itself there"
        views[name] = ViewStats.from_verdicts(name, [r.verdict.agree for r in counted],
                                              [r.verdict.error for r in counted], skipped=skipped,
                                              time_s=view_time.get(name, 0.0), note=note.strip("; "))

    pooled = [r for r in sampled_records if not r.verdict.skipped and not r.nondeterministic]
    k = sum(1 for r in pooled if r.verdict.agree)
    agreement = k / len(pooled) if pooled else None
    all_counted = [r for r in every if not r.verdict.skipped and not r.nondeterministic]
    max_error = max((r.verdict.error for r in all_counted), default=0.0)

    # per-path agreement (sampled views: unbiased shares)
    path_stats: dict[str, dict[str, Any]] = {}
    for record in pooled:
        stats = path_stats.setdefault(record.path, {"n": 0, "disagreements": 0})
        stats["n"] += 1
        stats["disagreements"] += int(not record.verdict.agree)
    for path, stats in path_stats.items():
        stats["agreement"] = 1 - stats["disagreements"] / stats["n"]
        if path in evaluator.names:
            stats["branches"] = evaluator.names.name(path)
    if not evaluator.paths:
        path_stats = {}
        notes_paths = "branch paths not traced (a traced call of the original is too slow); counterexamples carry theirs"
        stop_reasons.append(notes_paths)

    counterexamples, shrink_cut = _counterexamples(evaluator, schema, view_records, search_result,
                                                   max_counterexamples, deadline=deadline)
    if shrink_cut:
        stop_reasons.append(f"shrinking sampled failures: budget reached ({shrink_cut} failure classes left unshrunk)")
        cut.append("shrink-sampled")
    if not evaluator.paths:  # traced only where it matters: the counterexamples shown
        # (within a quarter of the budget past it: a slow original's traced calls add up)
        path_end = start + 1.25 * budget_s if budget_s else math.inf
        traced = []
        for case in counterexamples:
            if meter.late(path_end, meter.cost_traced):
                stop_reasons.append(f"paths of counterexamples: budget reached after {len(traced)} of "
                                    f"{len(counterexamples)}")
                cut.append("counterexample-paths")
                traced += counterexamples[len(traced):]
                break
            outcome = call_with_path(original, case.inputs)
            evaluator.names.add(outcome.path, outcome.branches)
            traced.append(dataclasses.replace(case, path=outcome.path))
            meter.original(traced=True)
        counterexamples = traced
    disagreements = sum(1 for r in all_counted if not r.verdict.agree)
    clock = _clock.current()
    if getattr(clock, "ceiling_hit", False):
        stop_reasons.append(_clock.ceiling_message(clock, "verify") or "wall ceiling reached")
        cut.append("wall-ceiling")
    # evidence: every view that ran must have judged min_examples inputs (or all it had)
    minimum = DEFAULT_MIN_EXAMPLES if min_examples is None else min_examples
    requested = [name for name in ("operational", "domain", "search")
                 if name in view_records and (name != "operational" or has_traces)]
    evidence: dict[str, int] = {}
    short: list[str] = []
    for name in requested:
        if name == "search":  # every example hypothesis ran, repeats included
            judged = [r for r in search_result.records if not r.verdict.skipped and not r.nondeterministic]
            count = len(judged)
            budget_cut = bool(search_result.cut) or n_search < min(max_examples, minimum)
            ran_out = (not search_result.cut and search_result.stop_reason == "max_examples"
                       and len(search_result.records) < n_search)
        else:
            count = views[name].n
            budget_cut = name in cut
            ran_out = False
        evidence[name] = count
        if count >= minimum or (ran_out and count >= 1):
            continue
        records = view_records.get(name, [])
        lost = views[name].skipped + sum(1 for r in records if r.nondeterministic)
        if budget_cut:
            why = "cut by the budget"
        elif max_examples < minimum:
            why = f"max_examples={max_examples}"
        elif lost:
            why = f"{lost} inputs skipped by the exception policy or excluded as non-deterministic"
        else:
            why = "ran out of inputs"
        short.append(f"{name} {count} ({why})")
    enough = not short
    passed = disagreements == 0 and flaky_total == 0 and enough
    inconclusive = disagreements == 0 and not passed
    per_input_cost = meter.per_input
    if disagreements:
        reason = f"{disagreements} disagreement(s) among {sum(v.n for v in views.values())} judged inputs"
    elif flaky_total:
        reason = (f"the original disagreed with itself on {flaky_total} inputs run twice: candidate "
                  "disagreements there cannot be told from its noise")
        if short:
            reason += f"; too few inputs judged as well: {', '.join(short)}"
    elif short:
        reason = (f"too few inputs judged for a verdict (min_examples={minimum} per view): {', '.join(short)}; "
                  "no disagreement among them")
        if any("budget" in part for part in short) and budget_s:
            need = needed_budget(minimum, per_input_cost, traces=has_traces, search=search,
                                 per_example=_clock.EXAMPLE_OVERHEAD_S if meter.deterministic else 3e-4)
            kind = "nominal work" if meter.deterministic else "measured"
            reason += (f". budget_s={budget_s:g} at {_seconds(per_input_cost)} per input (both functions, {kind}): "
                       f"{minimum} inputs in each of {len(requested)} views need about budget_s={need:.3g}")
        if max_examples < minimum:
            reason += f". max_examples={max_examples} is below min_examples={minimum}"
        reason += (". Pass a larger budget_s or max_examples, or min_examples=N to accept less evidence"
                   if minimum > 1 else "")
    else:
        reason = (f"no disagreement among {sum(v.n for v in views.values())} judged inputs; every view judged "
                  f"at least min_examples={minimum} (" + ", ".join(f"{k} {v}" for k, v in evidence.items()) + ")")
    elapsed = time.perf_counter() - wall_start
    statistics = {
        "examples_run": evaluator.calls, "invalid": outside,
        "skipped": sum(v.skipped for v in views.values()), "time_s": round(elapsed, 3),
        "stop_reason": "; ".join(stop_reasons) or "completed", "budget_cut": cut,
        "seed": int(seed), "derandomize": bool(derandomize),
        "database": getattr(db, "path", None) and str(db.path),
        "budget_clock": "work" if meter.deterministic else "wall",
        "min_examples": minimum, "evidence": evidence,
    }
    if per_input_cost:
        statistics["cost_per_input_s"] = float(f"{per_input_cost:.3g}")
    if meter.deterministic:
        statistics["work_s"] = round(clock.work_done(start) if hasattr(clock, "work_done") else now() - start, 6)
    if getattr(clock, "ceiling_hit", False):
        statistics["wall_ceiling_hit"] = True
    return EquivalenceReport(
        function=function_name(original), candidate=_name(candidate), passed=passed, agreement=agreement,
        agreement_ci=wilson_interval(k, len(pooled)), max_error=float(max_error),
        counterexamples=tuple(counterexamples), views=views, paths=path_stats,
        path_names={path: evaluator.names.name(path) for path in
                    dict.fromkeys([*path_stats, *(c.path for c in counterexamples if c.path)])
                    if path in evaluator.names},
        nondeterminism=(flaky_in_sample / checked_in_sample) if checked_in_sample else 0.0,
        nondeterministic_inputs=flaky_total, nondeterminism_checked=checked_in_sample + rechecked,
        comparison=comparison, statistics=statistics, schema=schema.to_dict(),
        reason=reason, inconclusive=inconclusive,
    )


def _unique(records: list[Record]) -> list[Record]:
    seen: dict[Any, Record] = {}
    for record in records:
        seen.setdefault(_freeze(record.inputs), record)
    return list(seen.values())


def _counterexamples(evaluator: Evaluator, schema: Schema, view_records: dict[str, list[Record]],
                     search_result: SearchResult, limit: int, extra_per_class: int = 2,
                     deadline: float = math.inf) -> tuple[list[Counterexample], int]:
    """One shrunk case per failure class (hypothesis-shrunk from the search, value-shrunk from
    the sampled views), then the worst remaining distinct failures, worst first. Also returns
    how many classes were left unshrunk because `deadline` had passed."""
    chosen: list[Counterexample] = []
    classes_done: set[tuple[str, str]] = set()
    for record in search_result.shrunk + search_result.partial:
        if record.nondeterministic or record.verdict.skipped or record.klass in classes_done:
            continue
        classes_done.add(record.klass)
        chosen.append(record.counterexample(shrunk=record in search_result.shrunk))
    failing = [r for records in view_records.values() for r in records if r.disagrees]
    failing.sort(key=lambda r: -r.verdict.error)
    by_class: dict[tuple[str, str], Record] = {}
    for record in failing:
        by_class.setdefault(record.klass, record)
    unshrunk = 0
    for klass, record in by_class.items():
        if klass in classes_done or len(chosen) >= limit:
            continue
        classes_done.add(klass)
        if evaluator.meter.late(deadline):
            unshrunk += 1
            chosen.append(record.counterexample())
            continue

        def still_fails(kwargs: dict[str, Any], _klass: tuple[str, str] = klass) -> Record | None:
            if evaluator.meter.late(deadline):
                return None
            trial = evaluator.run(kwargs, record.view)
            return trial if trial.disagrees and trial.klass == _klass else None

        inputs, last, changed = simplify(record.inputs, schema, still_fails)
        final = last if isinstance(last, Record) else record
        chosen.append(final.counterexample(shrunk=changed))
    seen = {_freeze(c.inputs) for c in chosen}
    per_class: dict[tuple[str, str], int] = {}
    for record in failing:
        if record.view == "search":  # intermediate shrink attempts: noise next to the shrunk case
            continue
        per_class[record.klass] = per_class.get(record.klass, 0) + 1
        if per_class[record.klass] > extra_per_class:
            continue
        if len(chosen) >= limit:
            break
        key = _freeze(record.inputs)
        if key not in seen:
            seen.add(key)
            chosen.append(record.counterexample())
    chosen.sort(key=lambda c: -c.error)
    return chosen[:limit], unshrunk
