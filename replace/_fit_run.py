"""One fit in this process: its arguments checked and the clock started (`prepare`), the stages
run in order under that clock (`run`, `_fit`: traces, oracle draws, hard cases, encoders, the
architecture search, refinement rounds, polish, exact paths and program, fidelity, the guard).
`fit_single` is `fit` without the torchrun hand-off: what `_distributed`'s rank-0 search runs,
so that `_distributed` needs nothing from `_fit` (which hands off to `_distributed`)."""

from __future__ import annotations

import sys
import time
import warnings
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from probes import Schema, Tolerance, Traces, function_name
from probes._identity import kwargs_caller
from probes._validation import bad_argument

from probes import _clock
from . import _manifest as mf
from ._calibration import held_out_count
from ._cuts import comparison_cuts
from ._encoding import InputEncoder
from ._output_encoding import OutputEncoder
from ._fit_config import MIN_ROWS, FitConfig, _config, _FitWorkClock, _log_inputs, _wall_ceiling
from ._fit_metrics import calibrate_guard, finished_surrogate
from ._options import check_fit_arguments
from ._pool import (Oracle, Pool, _balance_traces, _columns_from_rows, _default_tolerance, _hard_rows, _outcome_key,
                    _temper_hard_weights, oracle_draws)
from ._rounds import refinement_rounds
from ._sampling import take
from ._search import _candidates, _search
from ._surrogate import Surrogate
from ._trainer import _device, _improves, _joined, _path_buckets, _Trainer


# -- progress -----------------------------------------------------------------------------------

class _Progress:
    def __init__(self, enabled: bool, budget_s: float, clock: Any):
        self.enabled = enabled
        self.budget = budget_s
        self.clock = clock
        self.start = clock.now()
        self._progress = None
        self._task = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("[bold]fit[/] {task.description}"), BarColumn(),
                                      TimeElapsedColumn(), console=Console(stderr=True), transient=False)
            self._progress.start()
            self._task = self._progress.add_task("starting", total=budget_s)

    def update(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=text,
                                  completed=min(self.budget, self.clock.now() - self.start))

    def close(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self.budget)
            self._progress.stop()


@dataclass(frozen=True)
class _Prepared:
    """A fit's checked arguments, its options and its started clock (what `prepare` gives `run`)."""

    fn: Callable[..., Any]
    traces: Traces | None  # None when there are no replayable traces
    schema: Schema
    tolerance: Tolerance | None
    oracle: bool
    budget_s: float
    seed: int
    hard_cases: Iterable[Any] | None
    config: FitConfig
    started: float  # time.monotonic() when the budget started
    clock: Any
    deadline: float
    progress: bool | None


def prepare(fn: Callable[..., Any], traces: Traces | None, *, schema: Schema | None, tolerance: Tolerance | None,
            oracle: bool, budget_s: float, seed: int, hard_cases: Iterable[Any] | None, progress: bool | None,
            options: Mapping[str, Any]) -> _Prepared:
    """`fit`'s checks of its arguments and options (each refused by name before any call of `fn`),
    the replayable traces, the schema (inferred with its margins when none is passed), the clock."""
    import torch  # noqa: F401 - imported first, as fit always did

    config = _config(options)
    hard_cases = check_fit_arguments(fn, traces=traces, tolerance=tolerance, oracle=oracle, budget_s=budget_s,
                                     seed=seed, hard_cases=hard_cases, progress=progress)
    _warm_up()
    started = time.monotonic()
    if not callable(fn):
        raise bad_argument("fn", fn, "must be callable", "Pass the legacy function itself")
    if isinstance(budget_s, bool) or not isinstance(budget_s, (int, float)) or not budget_s > 0:
        raise bad_argument("budget_s", budget_s, "must be a number of seconds > 0", "Pass budget_s=60.0")
    clock = (_FitWorkClock(_wall_ceiling(config.wall_ceiling_s, float(budget_s))) if config.budget_clock == "work"
             else _clock.make(config.budget_clock))
    deadline = clock.now() + float(budget_s)
    if traces is not None and not isinstance(traces, Traces):
        raise bad_argument("traces", type(traces).__name__, "must be a probes.Traces",
                           "Load them with TraceStore.open(uri).load(fn), or build Traces.from_calls(fn, inputs)")
    if traces is not None and len(traces):
        mask = traces.replayable
        if not mask.all():
            traces = traces.subset(np.flatnonzero(mask))
    has_traces = traces is not None and len(traces) > 0
    from . import _margins

    if schema is None:
        if not has_traces:
            raise bad_argument("schema", None, "cannot be inferred without traces",
                               "Pass schema=Schema.from_function(fn, x=(low, high), ...) or some traces")
        # widened a little past the recorded extremes (fresh calls land just outside them); the
        # oracle labels the band, since its rows are drawn from this schema. See _margins.
        inferred = Schema.infer(fn, traces)
        margin = _margins.resolve_margin(config.domain_margin, oracle=bool(oracle))
        schema = _margins.with_margins(inferred, margin,
                                       keep_positive=_margins.log_input_names(config.log_inputs, inferred))
        config = replace(config, domain_margin=margin)  # the manifest's hyperparameters record what was applied
    elif config.domain_margin:
        raise bad_argument("domain_margin", config.domain_margin,
                           "widens only a schema fit infers from traces; a schema passed to fit is the declared domain",
                           "Widen it yourself (schema.widen(0.05), or declare wider ranges) and leave domain_margin unset")
    else:
        config = replace(config, domain_margin=0.0)
    if not isinstance(schema, Schema):
        raise bad_argument("schema", type(schema).__name__, "must be a probes.Schema",
                           "Build it with Schema.infer(fn, traces) or Schema.from_function(fn, ...)")
    if not oracle and not has_traces:
        raise bad_argument("oracle", oracle, "with oracle=False the traces are the only data, and there are none",
                           "Pass traces, or allow oracle=True")
    _log_inputs(config.log_inputs, schema)  # a bad name fails here, before any call of fn
    return _Prepared(fn, traces if has_traces else None, schema, tolerance, oracle, float(budget_s), seed, hard_cases,
                     config, started, clock, deadline, progress)


def run(p: _Prepared) -> Surrogate:
    """A prepared fit, in this process (torch threads and the progress bar restored after)."""
    import torch

    show = p.progress if p.progress is not None else (sys.stderr.isatty() and p.budget_s >= 5)
    bar = _Progress(bool(show), p.budget_s, p.clock)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(p.config.threads or 1)
    try:
        with _clock.using(p.clock):
            surrogate = _fit(p.fn, p.traces, p.schema, p.tolerance, p.oracle, p.budget_s, p.seed, p.hard_cases,
                             p.config, p.started, p.deadline, bar)
        _clock.ceiling_warning(p.clock, "fit", stacklevel=4)  # the caller of fit (or of fit_single), past run
        return surrogate
    finally:
        torch.set_num_threads(previous_threads)
        bar.close()


def fit_single(fn: Callable[..., Any], traces: Traces | None = None, *, schema: Schema | None = None,
               tolerance: Tolerance | None = None, oracle: bool = True, budget_s: float = 60.0, seed: int = 0,
               hard_cases: Iterable[Any] | None = None, progress: bool | None = None, **options: Any) -> Surrogate:
    """`fit` in this process alone, never handed to torchrun's ranks (`_distributed`'s rank-0
    search calls it with distributed="off")."""
    return run(prepare(fn, traces, schema=schema, tolerance=tolerance, oracle=oracle, budget_s=budget_s, seed=seed,
                       hard_cases=hard_cases, progress=progress, options=options))


_WARM = False
#: Share of the training time left after the first draws that the architecture search takes; the
#: chosen shape trains on through the rest (rounds, polish), where L-BFGS gains it more than a
#: longer search gains by trying more shapes (README, "fit's defaults").
SEARCH_SHARE = 0.35


def _warm_up() -> None:
    """The first torch optimiser of a process imports a lot (seconds); do it before the clock
    starts, so `budget_s` is spent on the fit itself."""
    global _WARM
    if not _WARM:
        import torch

        torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3, foreach=True)
        _WARM = True


def _fit(fn: Callable[..., Any], traces: Traces | None, schema: Schema, tolerance: Tolerance | None, oracle: bool,
         budget_s: float, seed: int, hard_cases: Iterable[Any] | None, config: FitConfig, started: float,
         deadline: float, bar: _Progress) -> Surrogate:
    import torch

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    clock = _clock.current()
    fn_name = function_name(fn)
    signature = mf.signature_spec(fn)
    defaults = mf.defaults_of(signature)
    pool = Pool(schema)
    legacy = fn  # traced as it is for the exact program (8b)
    fn = kwargs_caller(fn)
    orc = Oracle(fn, schema, config.path_budget * budget_s if oracle else 0.0, config.max_oracle_calls)

    # 1. recorded traffic (and its paths, when the function may be called)
    trace_columns: dict[str, np.ndarray] = {}
    # a share of the traces is held out for the guard: production traffic nothing else sees
    # (not training, validation or model selection), the rows its certificate speaks for
    cal_held: dict[str, Any] | None = None
    if traces is not None:
        n_hold = held_out_count(len(traces), config.calibration_rate, config.calibration_holdout)
        if n_hold:
            order = np.random.default_rng(seed + 15485863).permutation(len(traces))
            hold, keep = order[:n_hold], np.sort(order[n_hold:])
            cal_held = {"columns": _columns_from_rows(schema, [traces.inputs[i] for i in hold], defaults),
                        "outputs": [traces.outputs[i] for i in hold], "errors": [traces.errors[i] for i in hold]}
            traces = traces.subset(keep)
        trace_columns = _columns_from_rows(schema, traces.inputs, defaults)
        pool.add(trace_columns, traces.outputs, traces.errors, None, 1.0, "trace")
    bar.update("drawing inputs")

    # 2. oracle draws: the domain and the neighbourhood of traces
    draws = oracle_draws(fn, pool, orc, schema, traces, trace_columns, cal_held, defaults, config, oracle=oracle,
                         budget_s=budget_s, deadline=deadline, rng=rng, seed=seed)
    deadline, full_deadline, cut, budget_info = draws.deadline, draws.full_deadline, draws.cut, draws.budget_info
    n_cal_domain, cal_reserved, test_calls = draws.n_cal_domain, draws.cal_reserved, draws.test_calls
    test_columns, test_outputs, test_errors, test_paths = draws.test

    # 3. hard cases, weighted
    hard_skipped = 0
    if hard_cases is not None:
        rows = [{**defaults, **row} for row in _hard_rows(hard_cases)]
        rows = [row for row in rows if schema.contains(row)[0]]
        if rows and oracle:
            # always path-traced (they are few): the gate must learn which side of a boundary
            # each one lies on. (Drawing oracle neighbours around each case was tried: worse.)
            outputs, errors, paths = orc.call(rows, trace=True, deadline=min(deadline, clock.now() + 0.2 * budget_s))
            if len(outputs) < len(rows):
                cut.append(f"hard cases: {len(outputs)} of {len(rows)} labelled")
                rows = rows[:len(outputs)]
            # an outcome no ordinary draw of the domain ever showed (ZeroDivisionError at a rate of
            # 1e-300) lives in a region too small for a smooth model: teaching it blurs the
            # neighbourhood, so such cases are left to verification and the guarded swap
            seen = {_outcome_key(o, e, schema) for o, e in zip(pool.outputs, pool.errors)}
            keep = [i for i in range(len(rows)) if _outcome_key(outputs[i], errors[i], schema) in seen]
            hard_skipped = len(rows) - len(keep)
            pool.add(_columns_from_rows(schema, [rows[i] for i in keep], defaults), [outputs[i] for i in keep],
                     [errors[i] for i in keep], [paths[i] for i in keep], config.hard_weight, "hard")
        elif rows:
            warnings.warn("hard_cases are ignored with oracle=False: their outputs are unknown", UserWarning, stacklevel=4)  # fit's caller

    # recorded traffic is what the surrogate will be judged on: give it as much weight in the
    # loss as all the oracle draws together (those teach the rest of the domain)
    _balance_traces(pool, config)
    if isinstance(config.trace_weight, (int, float)) and not isinstance(config.trace_weight, bool):
        pool.weights[np.array([src == "trace" for src in pool.sources])] *= float(config.trace_weight)

    if clock.ceiling_hit and len(pool) < MIN_ROWS:
        raise bad_argument("wall_ceiling_s", clock.wall_ceiling_s,
                           f"was reached after {len(pool)} rows were labelled, fewer than the {MIN_ROWS} fit learns from "
                           "(the work clock does not see what a call waits or sleeps)",
                           "Raise wall_ceiling_s, or fit a function this slow with budget_clock='wall'")
    if len(pool) < 8:
        raise bad_argument("traces", f"<{len(pool)} rows>", "too few rows to learn from",
                           "Record more calls or allow oracle=True")

    # 4. held-out split without oracle: part of the traces becomes the test set
    if not oracle:
        order = rng.permutation(len(pool))
        n_test = max(1, int(0.2 * len(pool)))
        test_rows, keep = order[:n_test], np.sort(order[n_test:])
        test_columns = take(pool.columns, test_rows)
        test_outputs = [pool.outputs[i] for i in test_rows]
        test_errors = [pool.errors[i] for i in test_rows]
        test_paths = [pool.paths[i] for i in test_rows]
        kept = Pool(schema)
        kept.add(take(pool.columns, keep), [pool.outputs[i] for i in keep], [pool.errors[i] for i in keep],
                 [pool.paths[i] for i in keep], 1.0, "trace")
        kept.weights = pool.weights[keep]
        pool = kept

    # 5. encoders and the tolerance, scaled on representative rows: hard cases are often extreme
    # (a rate of 1e-308 found by boundary search) and would otherwise set the input warps and the
    # output scale, costing precision everywhere else; their outcome classes still count
    cuts = comparison_cuts(fn, schema.names) if config.code_cuts else {}
    usual = np.array([src != "hard" for src in pool.sources])
    if not usual.any():
        usual[:] = True
    enc = InputEncoder.fit(schema, take(pool.columns, np.flatnonzero(usual)), cuts=cuts,
                           log_inputs=_log_inputs(config.log_inputs, schema))
    if tolerance is None:
        tolerance = _default_tolerance(pool, usual)
    classes_only = [i for i in range(len(pool)) if usual[i] or pool.errors[i] is not None
                    or schema.output.kind == "label"]
    out = OutputEncoder.fit(schema.output, [pool.outputs[i] for i in classes_only],
                            [pool.errors[i] for i in classes_only], tolerance)
    _temper_hard_weights(pool, out, config)
    device = _device(config)
    trainer = _Trainer(fn_name, schema, tolerance, signature, enc, out, config, device, seed)
    n_val = int(np.clip(config.validation_share * len(pool), min(32, len(pool) // 4), 4000))
    val = np.sort(rng.choice(len(pool), size=n_val, replace=False))
    data = trainer.data(pool, val)

    # 6. architecture search
    activation = config.activation or ("relu" if out.kind in ("label", "none") else "silu")
    buckets = _path_buckets(pool.paths, config)
    use_paths = config.path_aware is True or (config.path_aware == "auto" and len(buckets) >= 2
                                               and sum(p is not None for p in pool.paths) >= 0.3 * len(pool))
    if config.path_aware is True and len(buckets) < 2:
        use_paths = False
    remaining = deadline - clock.now()
    candidates = _candidates(config, activation, config.path_aware is not True or not use_paths, use_paths,
                             SEARCH_SHARE * remaining)
    best, search_log = _search(trainer, candidates, data, pool, buckets, clock.now() + SEARCH_SHARE * remaining,
                               config, bar, after_s=(1 - SEARCH_SHARE) * remaining)

    # 7. refinement rounds: more oracle calls where the error is, then continue training
    best, data, val, curve, rounds_log = refinement_rounds(trainer, pool, data, val, best, orc, schema, config,
                                                           oracle=oracle, budget_s=budget_s, deadline=deadline,
                                                           rng=rng, cut=cut, bar=bar)

    # 8. spend what is left polishing the chosen model (full-batch L-BFGS for regression heads)
    best, curve, polish_log = polish(trainer, best, data, pool, curve, deadline - 0.05 * budget_s, budget_s, bar,
                                     optimizer="lbfgs" if out.width else "adam")

    # 8b. exact paths (hybrid): an expression on each path bucket whose rows, held-out ones too, it
    # reproduces; the expert elsewhere. Before the fidelity (9) and the guard (10), which then see it.
    exact_found: dict[str, Any] = {}
    exact_report: dict[str, Any] = {}
    if config.exact == "auto":
        from ._hybrid import fit_exact_paths

        bar.update("fitting exact paths")
        exact_found, exact_report = fit_exact_paths(
            best.surrogate, pool, val, (test_columns, test_outputs, test_errors, test_paths), schema,
            cache=trainer.exact_cache)
        best.surrogate._use_expressions(exact_found)
    program, program_report = None, {"used": False, "note": "exact='off'" if config.exact != "auto" else
                                     "no oracle: the exact program traces calls of the function"}
    if config.exact == "auto" and oracle:
        from ._exact_program import fit_program

        bar.update("tracing the code's exact partition")
        program, program_report = fit_program(
            legacy, schema, traces, seed=seed, tolerance=tolerance, budget_s=budget_s, surrogate=best.surrogate,
            held_out=[(test_columns, test_outputs, test_errors),
                      (take(pool.columns, val), [pool.outputs[i] for i in val], [pool.errors[i] for i in val])])
        best.surrogate._use_program(program)

    # 9. fresh-input fidelity
    surrogate = finished_surrogate(best, data, pool, orc, enc, schema, tolerance, config, fn=fn, fn_name=fn_name,
                                   signature=signature, seed=seed, oracle=oracle, budget_s=budget_s, started=started,
                                   test=(test_columns, test_outputs, test_errors, test_paths), test_calls=test_calls,
                                   hard_skipped=hard_skipped, curve=curve, search_log=search_log,
                                   rounds_log=rounds_log, exact_found=exact_found, exact_report=exact_report,
                                   program=program, program_report=program_report, bar=bar)
    surrogate.manifest["training"]["polish"] = polish_log
    # 10. the guard: an error predictor on validation rows, calibration rows nothing else saw
    return calibrate_guard(surrogate, pool, val, orc, schema, config, oracle=oracle, seed=seed, budget_s=budget_s,
                           n_cal_domain=n_cal_domain, cal_reserved=cal_reserved, full_deadline=full_deadline,
                           cal_held=cal_held, cut=cut, budget_info=budget_info, bar=bar)


#: a polish stage that ends this far before its deadline stopped on its own (converged or
#: patience); another stage may use the rest
POLISH_EARLY = 0.9


def polish(trainer: Any, best: Any, data: Any, pool: Any, curve: list[tuple[int, float, float]], until: float,
           budget_s: float, bar: Any, *, optimizer: str) -> tuple[Any, list[tuple[int, float, float]],
                                                                  list[dict[str, Any]]]:
    """Step 8 of `_fit`: train the chosen model on until `until`, L-BFGS not stopping on a noisy
    validation plateau (it keeps its best state; nothing else would use the time). A stage that
    stops on its own anyway (the training loss stopped moving, Adam's patience) with time left is
    followed by another from the best model so far, Adam then L-BFGS (`optimizer="auto"`), so the
    budget a user gave is spent rather than left on the table (a stage is kept only if validation
    improves); polishing ends when two stages in a row gain nothing or less than 8% of the budget
    is left.
    Returns the best candidate, the curve and one log entry per stage."""
    clock = _clock.current()
    log: list[dict[str, Any]] = []
    stage_optimizer = optimizer
    fruitless = 0
    while until - clock.now() > 0.08 * budget_s and best.agreement < 1.0:
        span = until - clock.now()
        bar.update(f"polishing {best.arch.label}")
        cand = trainer.train(best.arch, data, pool, best.buckets, clock.now() + span, init=best.state,
                             optimizer=stage_optimizer, lr_scale=0.2, to_deadline=True)
        kept = _improves(cand, best)
        if kept:
            best = cand
        curve = _joined(curve, cand.curve)
        log.append({"optimizer": stage_optimizer, "seconds": round(cand.seconds, 3), "of_s": round(span, 3),
                    "val_agreement": cand.agreement, "kept": kept})
        fruitless = 0 if kept else fruitless + 1
        if fruitless >= 2 or cand.seconds >= POLISH_EARLY * span:
            break
        stage_optimizer = "auto"
    return best, curve, log
