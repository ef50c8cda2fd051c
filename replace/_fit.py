"""`fit`: learn a surrogate of a legacy function from its traces and, as an oracle, from itself.

The loop: draw inputs (the schema's domain, and the neighbourhood of recorded traffic), label
them by calling the function (tracing the branch path of as many calls as the time allows),
search a few small architectures (plain MLP ensembles, and a gate plus one expert per branch
path when paths matter), then spend further oracle calls where the error is, per path in
Turaco's proportion, until the tolerance is met or the budget is spent. Fidelity is finally
measured on fresh inputs that training never saw.

This module is the entry: `fit` checks its arguments (`_fit_run.prepare`), hands off to
`_distributed` under torchrun, and otherwise runs the stages in this process (`_fit_run.run`).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from probes import Schema, Tolerance, Traces

from ._distributed import fit_distributed
from ._fit_config import FitConfig, FitOptions, merged_options
from ._fit_run import prepare, run
from ._pool import _hard_rows
from ._process_group import distributed_env, process_group
from ._surrogate import Surrogate
from ._torchrun_options import torchrun_arguments

# The stages live in their own modules (imports point one way: _fit_config <- _pool <- _trainer
# <- _search, _rounds, _fit_metrics <- _fit_run <- _distributed, _fit). Names other modules and
# tests import from here are re-exported; patch a stage's module, not this one, to change what it calls.
from ._fit_config import MIN_ROWS, _config, _log_inputs, _wall_ceiling  # noqa: F401,E402
from ._fit_run import _fit, _warm_up, fit_single  # noqa: F401,E402
from ._pool import Oracle, Pool, _columns_from_rows  # noqa: F401,E402
from ._rounds import _target_shown, label_margins  # noqa: F401,E402
from ._search import _halving_units, _search  # noqa: F401,E402
from ._trainer import _Candidate, _Trainer  # noqa: F401,E402


# -- fit ----------------------------------------------------------------------------------------

def fit(
    fn: Callable[..., Any],
    traces: Traces | None = None,
    *,
    schema: Schema | None = None,
    tolerance: Tolerance | None = None,
    oracle: bool = True,
    budget_s: float = 60.0,
    seed: int = 0,
    hard_cases: Iterable[Any] | None = None,
    progress: bool | None = None,
    advanced: FitOptions | None = None,
    **options: Any,
) -> Surrogate:
    """Train a neural surrogate of `fn` and measure its fidelity on fresh inputs.

    `traces`: recorded calls (replayable rows are used). `schema`: defaults to
    `Schema.infer(fn, traces)`. `tolerance`: defaults to 1% relative with an absolute floor of
    0.1% of the largest output magnitude seen (so outputs near zero are not held to 1% of
    nothing); labels and exceptions must always match exactly. `oracle=True` lets training call
    `fn` on inputs of its choosing (domain, near traces, where the error is high, per branch
    path). `budget_s`: wall-time budget of the whole fit (torch's one-time optimiser import, a
    few seconds on first use in a process, happens before the clock starts; expect overruns of
    a few percent); with `budget_clock="work"` it counts nominal work instead (training steps
    by rows x parameters, oracle calls by the Python lines they run), so the same seed gives
    the same surrogate however busy the machine is, and only the wall time varies. The cost of a
    call of `fn` is measured first and every batch of oracle calls (first draws, test inputs,
    traced paths, hard cases, rounds, the guard's calibration rows) is sized from it and stops at
    its deadline, so a slow function's fit ends within about 1.5 x `budget_s` + 1 s; a budget
    that cannot label `MIN_ROWS` (64) rows is refused at once (InvalidArgument naming the cost of
    a call and the budget needed). What the work clock cannot see (a function that sleeps or
    waits) is bounded by the option `wall_ceiling_s` (None: 20 x `budget_s` + 120 s; `math.inf`
    for none): a fit that reaches it ends there with a `NotReproducibleWarning`. What the budget
    left undone is in `manifest["training"]["budget"]` (cost per call, `cut`, the ceiling).
    `hard_cases`: kwargs dicts (or objects with `.inputs`, e.g. verification counterexamples),
    path-traced and added with extra weight; a case whose outcome no ordinary draw showed (an
    exception in a region too small to learn) is left out, and cases far in the output's tail
    are weighted down to the loss share of a 3-sigma row. Launched by torchrun (WORLD_SIZE > 1),
    `fit` trains with DDP over the ranks (`fit_distributed`; `distributed="off"` to opt out).
    With `exact="auto"` (the default) and `oracle=True`, after training fit traces the code's own
    partition and pieces (the search `explain.distill` emits as rules) and the surrogate answers
    by that exact program first, in float64, wherever a leaf is exact and was never wrong on the
    held-out rows where the network was right (`manifest["training"]["exact_program"]` says what
    was kept and why; untraceable code keeps the network alone); it takes at most
    0.4 x budget_s more on the wall clock (within the 1.5 x budget_s + 1 s above), and runs
    untimed on the work clock up to the wall ceiling.
    `advanced`: a `FitOptions` holding the advanced options (the search, shapes, sampling,
    rounds, encodings, the guard's calibration, ...); each may also be passed as a keyword
    argument (`options`, as before: `fit(..., widths=(64,), rounds=0)`), but not both ways.
    An unknown option is refused by name with the list of known ones.
    """
    options = merged_options(advanced, options)
    p = prepare(fn, traces, schema=schema, tolerance=tolerance, oracle=oracle, budget_s=budget_s, seed=seed,
                hard_cases=hard_cases, progress=progress, options=options)
    if p.config.distributed == "auto":
        if distributed_env().world_size > 1:
            return _fit_on_every_rank(p.fn, p.traces, p.schema, p.tolerance, p.oracle, p.budget_s, p.seed,
                                      p.hard_cases, p.config)
    return run(p)


def _fit_on_every_rank(fn: Callable[..., Any], traces: Traces | None, schema: Schema, tolerance: Tolerance | None,
                       oracle: bool, budget_s: float, seed: int, hard_cases: Iterable[Any] | None,
                       config: FitConfig) -> Surrogate:
    """`fit` launched by torchrun (WORLD_SIZE > 1): DDP training with `fit_distributed`, which
    shards the rows over the ranks; rank 0 chooses the shape with a short single-process search.
    Every rank returns the same surrogate. Hard cases join the traces, labelled by calling `fn`.
    Every option in `config` is passed on or, set away from its default where fit_distributed
    cannot honour it, refused by name before any call of `fn` (`torchrun_arguments`)."""
    arguments = torchrun_arguments(config, oracle=oracle)  # every rank refuses alike: no rank waits
    if hard_cases is not None:
        rows = [row for row in _hard_rows(hard_cases) if schema.contains(row)[0]]
        if rows:
            extra = Traces.from_calls(fn, rows)
            traces = extra if traces is None else traces + extra
    with process_group():
        return fit_distributed(fn, traces, schema=schema, tolerance=tolerance, architecture="search",
                               budget_s=0.6 * budget_s, search_budget_s=min(20.0, 0.3 * budget_s), seed=seed,
                               **arguments)
