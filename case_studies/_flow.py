"""One flow for every case study: record -> fit -> verify -> mine -> refit -> distill -> report,
then speed, the guarded swap, scikit-learn baselines and (AxBench) the benchmark's own metric.

Each study's `run()` only picks budgets and schema options; everything it measures is computed
here, the same way for all six, so the rows of the results table are comparable. A step whose
part of neuroswap is missing (or fails) is not faked: its keys stay in the row with None and
`skipped` says why.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import time
import timeit
import traceback
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

import probes
from probes import Comparison, ErrorInfo, Schema, Tolerance

#: Keys every row carries (the CLI prints STUDY_COLUMNS, a subset of these).
ROW_KEYS = (
    "study", "agreement", "agreement_ci", "max_error", "passed", "verify_status",
    "axbench_error", "published_npu_error", "published_source",
    "rules_agreement", "rules_agreement_domain", "rules_agreement_operational", "rules_leaves",
    "rules_from", "rules_exact", "rules_variant", "rules_alternative",
    "batch_speedup", "single_call_speedup", "batch_rows", "original_us_per_call", "surrogate_us_per_call",
    "guarded_invocation_rate", "guarded_agreement", "guarded_coverage", "guarded_served_error",
    "guarded_served", "guarded_wrong", "guarded_fresh",
    "agreement_before_refit", "max_error_before_refit", "max_error_after_refit", "mined_cases",
    "mined_max_error", "refit_cases", "refit_kept",
    "surrogate_fresh_agreement", "sklearn_mlp_agreement", "sklearn_hgb_agreement", "baseline_rows",
    "n_calls", "n_traces", "oracle_calls", "architecture", "fit_budget_s", "fit_clock",
    "report", "skipped", "step_s", "quick", "seed", "wall_s",
)


@dataclasses.dataclass(frozen=True)
class Budgets:
    """How much work each step may do. `quick` budgets are for a first look and for tests."""

    n_traces: int = 10_000        # production calls recorded
    fit_s: float = 60.0           # replace.fit budget (seconds of the clock below)
    fit_clock: str = "work"       # budget_clock of fit, verify and mining: "work" gives the same results per seed at any load
    refit_s: float | None = None  # the refit with mined hard cases (None: same as fit_s)
    verify_examples: int = 1000   # probes.verify inputs per view
    verify_s: float = 60.0        # probes.verify soft budget (its shrinking of many failures can run long)
    mine_s: float = 20.0          # probes.mine_edge_cases budget
    hard_cases: int = 100         # mined cases handed to the refit (a diverse subset, one per failure class first)
    max_leaves: int = 32          # explain.distill size limit of the fallback tree (of the surrogate)
    distill_samples: int = 4000   # teacher queries for distillation (traced calls of the original for its paths)
    distill_s: float = 60.0       # explain.distill budget_s for the original's paths: wall seconds (distill has no
                                  # work clock), so paths cut short by it (rules_note says so) can vary with load
    fidelity_samples: int = 1000  # inputs per view when measuring the rules' fidelity
    batch_rows: int = 100_000     # rows for the batch speed-up
    fresh: int = 4000             # fresh inputs scoring surrogate vs baselines (half production, half domain)
    guarded_calls: int = 10_000   # fresh production inputs through the guarded swap (its batch form)
    baseline_rows_cap: int = 60_000  # most rows handed to the scikit-learn baselines
    baseline_iter: int = 200      # MLP max epochs / HGB max iterations
    report: bool = True
    report_eval: int = 500        # explain.report: inputs it evaluates both functions on
    report_attribution: int = 40  # explain.report: rows it attributes (SHAP on the original is costly)


FULL = Budgets(fit_s=40.0, refit_s=30.0, verify_s=40.0, mine_s=15.0, baseline_rows_cap=40_000,
               baseline_iter=100)
QUICK = Budgets(n_traces=2000, fit_s=10.0, verify_examples=200, verify_s=15.0, mine_s=4.0, max_leaves=16,
                distill_samples=4000, distill_s=20.0, fidelity_samples=300, batch_rows=20_000, fresh=1000,
                guarded_calls=1000, baseline_rows_cap=10_000, baseline_iter=60, report_eval=200,
                report_attribution=10)


#: the max_error_rate of the guarded swap the table reports (swap's default)
GUARD_RATE = 0.01


# -- small helpers ---------------------------------------------------------------------------------

def _public(package: ModuleType, name: str) -> Any:
    """A public name of a neuroswap package, or None while it has not landed."""
    return getattr(package, name, None) if name in getattr(package, "__all__", ()) else None


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _options(fn: Callable[..., Any], **options: Any) -> dict[str, Any]:
    """Only the keyword options `fn` accepts (optional extras of a still-moving API)."""
    return {k: v for k, v in options.items() if _accepts(fn, k)}


def _key(kwargs: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in kwargs.items()))


def _float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _columns(rows: Sequence[Mapping[str, Any]], schema: Schema) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for item in schema.fields:
        values = [row[item.name] for row in rows]
        if item.kind == "real":
            out[item.name] = np.asarray(values, dtype=float)
        elif item.kind == "integer":
            out[item.name] = np.asarray(values, dtype=np.int64)
        elif item.kind == "boolean":
            out[item.name] = np.asarray(values, dtype=bool)
        elif item.kind == "vector":
            out[item.name] = np.asarray(values, dtype=float)
        else:
            array = np.empty(len(values), dtype=object)
            array[:] = values
            out[item.name] = array
    return out


def _call(fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> tuple[Any, ErrorInfo | None]:
    try:
        return fn(**kwargs), None
    except Exception as exc:  # the outcome, kept as data
        return None, ErrorInfo.from_exception(exc)


class _Progress:
    """A rich progress bar over the steps when asked, silent otherwise."""

    def __init__(self, name: str, steps: int, enabled: bool) -> None:
        self.enabled = enabled
        self._progress = None
        if enabled:
            from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                                      TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn())
            self._task = self._progress.add_task(name, total=steps)
            self._name = name

    def __enter__(self) -> "_Progress":
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()

    def step(self, label: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=f"{self._name}: {label}")

    def done(self, label: str, seconds: float, note: str = "") -> None:
        if self._progress is not None:
            self._progress.advance(self._task)
            self._progress.console.print(f"  {label:<9} {seconds:7.1f} s  {note}", highlight=False)


# -- the steps -------------------------------------------------------------------------------------

def make_schema(module: ModuleType, **extra: Any) -> Schema:
    """The study's declared domain: `SPECS` (and `OUTPUT` where the study declares it)."""
    specs = dict(module.SPECS)
    specs.update(extra)
    output = getattr(module, "OUTPUT", None)
    return Schema.from_function(module.FUNCTION, output=output, **specs)


def record_traces(fn: Callable[..., Any], inputs: Sequence[Mapping[str, Any]], store: Any) -> tuple[Any, Any, Any]:
    """Run production inputs through `probes.record(store=...)(fn)` and load them back.

    Returns (store, traces of this run's inputs, traces of every run in the store).
    """
    record = _public(probes, "record")
    TraceStore = _public(probes, "TraceStore")
    if record is None or TraceStore is None:
        raise _Skip("probes.record / probes.TraceStore not available yet")
    store_obj = TraceStore.open(store)
    recorded = record(store=store_obj)(fn)
    for kwargs in inputs:
        try:
            recorded(**kwargs)
        except Exception:  # production calls that raise are traces too
            pass
    record.flush()
    if hasattr(store_obj, "flush"):
        store_obj.flush()
    everything = store_obj.load(fn)
    wanted = {_key(kw) for kw in inputs}
    mine = [i for i, kw in enumerate(everything.inputs) if _key(kw) in wanted]
    traces = everything if len(mine) == len(everything) else everything.subset(mine)
    return store_obj, traces, everything


class _Skip(Exception):
    """A step that cannot run (its part of neuroswap is missing): recorded, not faked."""


def _features(schema: Schema, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Plain numeric features for the scikit-learn baselines: numbers as is, one-hot categories."""
    parts: list[np.ndarray] = []
    for item in schema.fields:
        values = [row[item.name] for row in rows]
        if item.kind in ("real", "integer"):
            parts.append(np.asarray(values, dtype=float).reshape(-1, 1))
        elif item.kind == "boolean":
            parts.append(np.asarray([bool(v) for v in values], dtype=float).reshape(-1, 1))
        elif item.kind == "vector":
            parts.append(np.asarray(values, dtype=float).reshape(len(values), -1))
        else:
            cats = list(item.categories)
            onehot = np.zeros((len(values), len(cats)))
            for i, v in enumerate(values):
                if v in cats:
                    onehot[i, cats.index(v)] = 1.0
            parts.append(onehot)
    return np.hstack(parts) if parts else np.zeros((len(rows), 0))


class _Baseline:
    """A scikit-learn model of the whole outcome: a classifier for raise-or-label, a regressor
    for values. Predicts (value, ErrorInfo | None) per row, judged like any candidate."""

    def __init__(self, kind: str, schema: Schema, *, seed: int, max_iter: int) -> None:
        self.kind = kind
        self.schema = schema
        self.seed = seed
        self.max_iter = max_iter
        self.classifier: Any = None
        self.regressor: Any = None
        self.constant_class: Any = None
        self.python_type = schema.output.python_type

    def _make(self, classify: bool, multi: bool = False) -> Any:
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if self.kind == "mlp":
            if classify:
                from sklearn.neural_network import MLPClassifier

                return make_pipeline(StandardScaler(), MLPClassifier(
                    hidden_layer_sizes=(64, 64), early_stopping=True, max_iter=self.max_iter,
                    random_state=self.seed))
            from sklearn.compose import TransformedTargetRegressor
            from sklearn.neural_network import MLPRegressor

            return make_pipeline(StandardScaler(), TransformedTargetRegressor(
                regressor=MLPRegressor(hidden_layer_sizes=(64, 64), early_stopping=True, max_iter=self.max_iter,
                                       random_state=self.seed), transformer=StandardScaler()))
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        if classify:
            return HistGradientBoostingClassifier(max_iter=self.max_iter, random_state=self.seed)
        model = HistGradientBoostingRegressor(max_iter=self.max_iter, random_state=self.seed)
        if multi:
            from sklearn.multioutput import MultiOutputRegressor

            return MultiOutputRegressor(model)
        return model

    @staticmethod
    def _outcome_class(value: Any, error: ErrorInfo | None, label: bool) -> str:
        if error is not None:
            return "raise:" + error.type
        return "label:" + repr(value) if label else "value"

    def fit(self, rows: Sequence[Mapping[str, Any]], outcomes: Sequence[tuple[Any, ErrorInfo | None]]) -> "_Baseline":
        import warnings

        X = _features(self.schema, rows)
        label = self.schema.output.kind == "label"
        classes = [self._outcome_class(v, e, label) for v, e in outcomes]
        self._labels = {self._outcome_class(v, e, label): (v, e) for v, e in outcomes}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if len(set(classes)) > 1:
                self.classifier = self._make(True).fit(X, np.asarray(classes))
            else:
                self.constant_class = classes[0]
            if not label:
                ok = [i for i, (v, e) in enumerate(outcomes) if e is None]
                if ok:
                    y = np.asarray([np.asarray(outcomes[i][0], dtype=float) for i in ok], dtype=float)
                    multi = y.ndim == 2 and y.shape[1] > 1
                    self.regressor = self._make(False, multi).fit(X[ok], y if multi else y.ravel())
        return self

    def predict(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ErrorInfo | None]]:
        X = _features(self.schema, rows)
        classes = (self.classifier.predict(X) if self.classifier is not None
                   else np.asarray([self.constant_class] * len(rows), dtype=object))
        values = self.regressor.predict(X) if self.regressor is not None else None
        out: list[tuple[Any, ErrorInfo | None]] = []
        for i, klass in enumerate(classes):
            klass = str(klass)
            if klass.startswith("raise:"):
                out.append((None, ErrorInfo(klass[6:], "")))
            elif klass.startswith("label:"):
                out.append((self._labels[klass][0], None))
            elif values is not None:
                out.append((self._python(values[i]), None))
            else:
                out.append((None, ErrorInfo("RuntimeError", "no value model")))
        return out

    def _python(self, value: Any) -> Any:
        array = np.asarray(value, dtype=float)
        if array.ndim == 0:
            return int(round(float(array))) if self.python_type == "int" else float(array)
        items = [float(v) for v in array.ravel()]
        return tuple(items) if self.python_type == "tuple" else items


def _agreement(comparison: Comparison, expected: Sequence[tuple[Any, ErrorInfo | None]],
               actual: Sequence[tuple[Any, ErrorInfo | None]]) -> float:
    agree = n = 0
    for (e, ee), (a, ae) in zip(expected, actual):
        verdict = comparison.compare(e, a, expected_error=ee, actual_error=ae)
        if verdict.skipped:
            continue
        n += 1
        agree += int(verdict.agree)
    return agree / n if n else math.nan


def _best_time(stmt: Callable[[], Any], *, repeat: int, number: int = 1) -> float:
    """Min over `repeat` runs of `number` executions (timeit's advice: the min is the signal)."""
    return min(timeit.repeat(stmt, repeat=repeat, number=number)) / number


def measure_speed(fn: Callable[..., Any], surrogate: Any, rows: Sequence[Mapping[str, Any]], schema: Schema,
                  *, single_rows: int = 300, repeat: int = 3, loop_budget_s: float = 3.0) -> dict[str, Any]:
    """Batch: `predict_batch` on all `rows` vs a Python loop of the original (timed on a prefix
    of the same rows when the full loop would exceed `loop_budget_s`; compared per row).
    Single call: `surrogate(**kw)` vs `fn(**kw)` over the same few hundred inputs."""
    columns = _columns(rows, schema)

    def loop(fn_: Callable[..., Any], subset: Sequence[Mapping[str, Any]]) -> Callable[[], None]:
        def run() -> None:
            for kw in subset:
                try:
                    fn_(**kw)
                except Exception:
                    pass
        return run

    surrogate.predict_batch(columns)  # warm-up (allocations, lazy encoders)
    t_batch = _best_time(lambda: surrogate.predict_batch(columns), repeat=repeat) / len(rows)
    probe = rows[: min(200, len(rows))]
    per_row = _best_time(loop(fn, probe), repeat=1) / len(probe)
    k = int(min(len(rows), max(len(probe), loop_budget_s / max(per_row, 1e-9) / repeat)))
    t_loop = _best_time(loop(fn, rows[:k]), repeat=repeat) / k

    single = rows[:single_rows]
    t_sur = _best_time(loop(surrogate, single), repeat=5) / len(single)
    t_orig = _best_time(loop(fn, single), repeat=5) / len(single)
    return {
        "batch_speedup": t_loop / t_batch, "batch_rows": len(rows), "batch_original_rows_timed": k,
        "batch_surrogate_us_per_row": t_batch * 1e6, "batch_original_us_per_row": t_loop * 1e6,
        "single_call_speedup": t_orig / t_sur, "original_us_per_call": t_orig * 1e6,
        "surrogate_us_per_call": t_sur * 1e6,
    }


def _mixed_fresh(module: ModuleType, schema: Schema, n: int, seed: int) -> list[dict[str, Any]]:
    """Fresh inputs, half production (generate_inputs, unseen seed), half uniform over the
    schema: the same two distributions verify pools into its agreement."""
    half = n // 2
    production = module.generate_inputs(half, seed=seed + 1_000_003)
    domain = schema.sample(n - half, rng=np.random.default_rng(seed + 2_000_003))
    return list(production) + list(domain)


def _label_distribution(outcomes: Sequence[tuple[Any, ErrorInfo | None]]) -> str:
    counts: dict[str, int] = {}
    for v, e in outcomes:
        key = f"raises {e.type}" if e is not None else repr(v)
        counts[key] = counts.get(key, 0) + 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:3]
    return ", ".join(f"{k}: {c}" for k, c in top)


# -- rules ---------------------------------------------------------------------------------------

#: where the row's rules came from (`rules_from`)
TRACED_PATHS = "traced paths"      # explain.distill on the original: its own branch paths
SURROGATE_TREE = "surrogate tree"  # explain.distill on the surrogate: a tree of at most max_leaves leaves


@dataclasses.dataclass(frozen=True)
class DistilledRules:
    """The rules of step 6 and how they came about: `source` is TRACED_PATHS or SURROGATE_TREE,
    `exact` the ExactReport of distill on the original (None where the code could not be traced
    and distill was not tried on it), `note` its notes or, on a fallback, why it fell back;
    `alternative` the rules distilled the other way and not kept (approximate traced paths and
    the surrogate's tree are both distilled, the one with the higher agreement kept), else None."""

    rules: Any
    source: str
    exact: Any = None
    note: str = ""
    alternative: DistilledRules | None = None


def _untraceable(fn: Callable[..., Any]) -> str | None:
    """Why `fn`'s branch paths cannot be traced (a builtin, a C function), before spending the
    distill budget on it; None when they can, or when probes cannot say."""
    try:
        from probes._exact_rules import traceable
    except ImportError:
        return None
    try:
        return traceable(fn)
    except Exception:
        return None


def distill_rules(fn: Callable[..., Any], surrogate: Any, *, schema: Schema, traces: Any, tolerance: Tolerance,
                  budgets: Budgets, seed: int = 0, distill: Callable[..., Any] | None = None) -> DistilledRules:
    """Rules for the row: explain.distill on the ORIGINAL `fn` (its traced branch paths, with the
    recorded traces, within `budgets.distill_s`); where no path can be used (`Rules.exact.used`
    False: the code cannot be traced, no path is exact, its output kind is not covered) a tree of at
    most `budgets.max_leaves` leaves distilled from `surrogate`, judged against `fn` as before.

    Where the paths are used but are not exact (the row's `rules_exact` would be False: some leaf
    or cut approximate, the search cut short by the budget, or a disagreement measured) and there
    is a surrogate, its tree is distilled too (the same call as the fallback) and the rules with
    the higher agreement with `fn` are kept: the mean of the production and domain agreement, both
    measured by distill against the original with the same seed, the traces and the domain; a tie
    keeps the paths. The other rules are `alternative`.

    Raises _Skip when the fallback is needed and there is no surrogate."""
    if distill is None:
        import explain

        distill = _public(explain, "distill")
        if distill is None:
            raise _Skip("explain.distill not available yet")
    b = budgets

    def surrogate_tree() -> Any:
        return distill(surrogate, schema=schema, max_leaves=b.max_leaves, original=fn,
                       **_options(distill, seed=seed, traces=traces, n_samples=b.distill_samples,
                                  tolerance=tolerance, fidelity_samples=b.fidelity_samples, exact=False))

    exact_report, note = None, _untraceable(fn)
    if note is None and _accepts(distill, "exact"):
        try:
            rules = distill(fn, schema=schema, traces=traces, tolerance=tolerance, seed=seed,
                            **_options(distill, n_samples=b.distill_samples, fidelity_samples=b.fidelity_samples,
                                       budget_s=b.distill_s, max_leaves=b.max_leaves, exact=True))
        except Exception as exc:  # the surrogate's tree still answers; the note says why
            note = f"explain.distill on the original failed ({type(exc).__name__}: {exc})"[:300]
        else:
            exact_report = getattr(rules, "exact", None)
            if exact_report is not None and exact_report.used:
                paths = DistilledRules(rules, TRACED_PATHS, exact_report, exact_report.note)
                if surrogate is None or rules_row(paths)["rules_exact"]:
                    return paths
                # approximate paths: the surrogate's tree may agree better (many paths cut short by the budget)
                try:
                    tree = DistilledRules(surrogate_tree(), SURROGATE_TREE, exact_report,
                                          f"the traced paths are approximate ({exact_report.note or 'not exact'})")
                except Exception as exc:  # the paths still answer; the note says why there is no comparison
                    why = f"the surrogate's tree failed ({type(exc).__name__}: {exc})"[:300]
                    return dataclasses.replace(paths, note="; ".join(n for n in (paths.note, why) if n))
                paths_score, tree_score = _rules_score(paths), _rules_score(tree)
                if tree_score is not None and (paths_score is None or tree_score > paths_score):
                    return dataclasses.replace(tree, alternative=paths, note=(
                        f"{tree.note}; kept the surrogate's tree: mean agreement {tree_score:.1%} vs "
                        f"{'-' if paths_score is None else format(paths_score, '.1%')} of the traced paths"))
                return dataclasses.replace(paths, alternative=tree)
            note = getattr(exact_report, "note", "") or "no exact paths"
    elif note is None:
        note = "explain.distill has no exact= option"
    if surrogate is None:
        raise _Skip(f"no exact paths ({note}) and no surrogate to distill")
    return DistilledRules(surrogate_tree(), SURROGATE_TREE, exact_report, note)


def _rules_agreements(found: DistilledRules) -> tuple[Any, Any]:
    """The rules' Fidelity against the original on production traffic and on the whole domain
    (the original is the teacher of traced paths, the `original` reference of a surrogate's tree)."""
    fid = getattr(found.rules, "fidelity", {}) or {}
    against = "teacher" if found.source == TRACED_PATHS else "original"
    return fid.get(f"{against}:operational"), fid.get(f"{against}:domain")


def _rules_score(found: DistilledRules) -> float | None:
    """Mean of the production and the domain agreement (the one measured where only one is)."""
    measured = [float(f.agreement) for f in _rules_agreements(found) if f is not None and f.n]
    return sum(measured) / len(measured) if measured else None


def rules_row(found: DistilledRules) -> dict[str, Any]:
    """The row's rules keys: fidelity against the original on production traffic (the traces)
    and on the whole domain, pooled like verify's headline; size; source; exactness."""
    rules = found.rules
    ops, dom = _rules_agreements(found)
    out: dict[str, Any] = {
        "rules_from": found.source,
        "rules_variant": str(getattr(rules, "variant", "")),
        "rules_note": found.note,
        "rules_cut_short": bool(getattr(rules, "cut_short", False)),
        "rules_agreement_domain": _float(getattr(dom, "agreement", None)),
        "rules_agreement_operational": _float(getattr(ops, "agreement", None)),
        "rules_leaves": int(rules.complexity.leaves),
        "rules_teacher_agreement": _float(getattr(rules, "agreement", None)),
    }
    pooled = [f for f in (dom, ops) if f is not None and f.n]
    out["rules_agreement"] = (sum(f.agreement * f.n for f in pooled) / sum(f.n for f in pooled)) if pooled else None
    out["rules_alternative"] = None
    if found.alternative is not None:  # the rules distilled the other way, not kept (lower agreement)
        alt_ops, alt_dom = _rules_agreements(found.alternative)
        out["rules_alternative"] = {
            "from": found.alternative.source,
            "agreement_production": _float(getattr(alt_ops, "agreement", None)),
            "agreement_domain": _float(getattr(alt_dom, "agreement", None)),
            "leaves": int(found.alternative.rules.complexity.leaves)}
    # exact: distill says every leaf is an exact piece of the code and the partition routes every
    # sampled call right, AND no disagreement was measured (the samples are not the whole domain)
    out["rules_exact"] = bool(found.source == TRACED_PATHS and found.exact is not None and found.exact.exact
                              and pooled and all(f.agreement == 1.0 for f in pooled))
    return out


# -- the flow --------------------------------------------------------------------------------------

def run_study(module: ModuleType, *, store: Any = None, out: str | os.PathLike[str] = "neuroswap_report",
              quick: bool = False, progress: bool = False, seed: int = 0, budget_s: float | None = None,
              n_traces: int | None = None, schema: Schema | None = None, budgets: Budgets | None = None,
              fit_options: Mapping[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """Take `module` (a case study) through the whole flow and return its result row.

    `budget_s` is the fit budget, `n_traces` the number of production calls recorded; both
    default to the study's `budgets` (FULL, or QUICK when `quick`); `overrides` replace other
    Budgets fields (e.g. mine_s=5).
    """
    started = time.perf_counter()
    base = budgets or (QUICK if quick else FULL)
    changes = dict(overrides)
    if budget_s is not None:
        changes["fit_s"] = float(budget_s)
    if n_traces is not None:
        changes["n_traces"] = int(n_traces)
    b = dataclasses.replace(base, **changes)
    fn = module.FUNCTION
    tolerance: Tolerance = module.TOLERANCE
    name = module.NAME
    out_dir = Path(out)
    row: dict[str, Any] = {key: None for key in ROW_KEYS}
    row.update(study=name, quick=bool(quick), seed=int(seed), fit_budget_s=b.fit_s, fit_clock=b.fit_clock,
               skipped={}, step_s={})
    if getattr(module, "PUBLISHED", None) is not None:
        published = module.PUBLISHED
        row["published_npu_error"] = published.get("npu_error")
        sources = published.get("sources") or []
        row["published_source"] = sources[0] if sources else None
        row["published_verified"] = bool(published.get("verified", False))
    schema = schema or make_schema(module)
    comparison = Comparison(tolerance, "type", "equal", "label" if schema.output.kind == "label" else "")
    state: dict[str, Any] = {}

    steps = ["record", "fit", "verify", "mine", "refit", "distill", "speed", "guarded", "baselines", "report"]
    if hasattr(module, "axbench_error"):
        steps.insert(-1, "axbench")
    with _Progress(name, len(steps), progress) as bar:

        @contextmanager
        def step(label: str, needs: Sequence[str] = ()) -> Iterator[None]:
            bar.step(label)
            began = time.perf_counter()
            note = ""
            try:
                missing = [n for n in needs if state.get(n) is None]
                if missing:
                    raise _Skip(f"needs {', '.join(missing)}")
                yield
            except _Skip as why:
                row["skipped"][label] = str(why)
                note = f"skipped: {why}"
            except Exception as exc:  # one broken step must not hide the others' numbers
                row["skipped"][label] = f"failed: {type(exc).__name__}: {exc}"
                note = f"[red]failed[/]: {type(exc).__name__}: {exc}"
                if os.environ.get("NEUROSWAP_FLOW_DEBUG"):
                    traceback.print_exc()
            finally:
                seconds = time.perf_counter() - began
                row["step_s"][label] = round(seconds, 2)
                bar.done(label, seconds, note or state.pop("_note", ""))

        # 1. record production calls in the trace store
        with step("record"):
            inputs = module.generate_inputs(b.n_traces, seed=seed)
            row["n_calls"] = len(inputs)
            store_obj, traces, everything = record_traces(fn, inputs, store)
            state["traces"] = traces
            row["n_traces"] = len(traces)
            row["n_traces_in_store"] = len(everything)
            row["store"] = getattr(store_obj, "uri", None) or str(store)
            state["_note"] = f"{len(traces)} distinct traces ({int(np.sum(traces.raised))} raised) in {row['store']}"

        # 2. fit a surrogate, with the function as oracle
        replace_pkg = _import("replace")
        fit = _public(replace_pkg, "fit") if replace_pkg else None
        fit_extra = {**getattr(module, "FIT_OPTIONS", {}), **(fit_options or {})}  # the study's own, then the caller's

        def fit_once(budget: float, **more: Any) -> Any:
            if fit is None:
                raise _Skip("replace.fit not available yet")
            return fit(fn, state["traces"], schema=schema, tolerance=tolerance, oracle=True, budget_s=budget,
                       seed=seed, **_options(fit, **{"budget_clock": b.fit_clock, **fit_extra, **more}))

        with step("fit", needs=["traces"]):
            surrogate = fit_once(b.fit_s)
            state["surrogate"] = surrogate
            metrics = getattr(surrogate, "metrics", None)
            row["oracle_calls"] = getattr(metrics, "oracle_calls", None)
            row["architecture"] = getattr(metrics, "architecture", None) or getattr(surrogate, "architecture", None)
            row["fit_holdout_agreement"] = _float(getattr(metrics, "agreement", None))
            state["_note"] = f"{row['architecture']}, held-out agreement {row['fit_holdout_agreement']}"

        verify = _public(probes, "verify")

        def run_verify(candidate: Any) -> Any:
            if verify is None:
                raise _Skip("probes.verify not available")
            return verify(fn, candidate, schema=schema, traces=state["traces"], tolerance=tolerance,
                          max_examples=b.verify_examples, seed=seed, database=None,
                          **_options(verify, budget_s=b.verify_s, budget_clock=b.fit_clock))

        # 3. verify the surrogate against the original
        with step("verify", needs=["surrogate"]):
            report1 = run_verify(state["surrogate"])
            state["verify"] = report1
            row["agreement_before_refit"] = _float(report1.agreement)
            row["max_error_before_refit"] = _float(report1.max_error)
            state["_note"] = f"agreement {report1.agreement:.4f}, max error {report1.max_error:.4g}"

        # 4. mine edge cases; 5. refit once with them
        mine = _public(probes, "mine_edge_cases")
        with step("mine", needs=["surrogate"]):
            if mine is None:
                raise _Skip("probes.mine_edge_cases not available")
            cases = mine(fn, state["surrogate"], schema=schema, tolerance=tolerance, budget_s=b.mine_s, seed=seed,
                         **_options(mine, budget_clock=b.fit_clock))
            state["cases"] = cases
            row["mined_cases"] = len(cases)
            row["mined_max_error"] = _float(cases.max_error) if len(cases) else 0.0
            row["mined_by_layer"] = dict(getattr(cases, "by_layer", {}))
            state["_note"] = f"{len(cases)} cases {row['mined_by_layer']}"

        final = state.get("surrogate")
        final_report = state.get("verify")
        with step("refit", needs=["cases", "surrogate"]):
            if fit is None or not _accepts(fit, "hard_cases"):
                raise _Skip("replace.fit has no hard_cases= option")
            cases = state["cases"]
            hard = cases.inputs(**_options(cases.inputs, limit=b.hard_cases))
            if not hard:
                raise _Skip("no edge case was mined: nothing to refit on")
            row["refit_cases"] = len(hard)
            refitted = fit_once(b.refit_s if b.refit_s is not None else b.fit_s, hard_cases=hard)
            report2 = run_verify(refitted)
            row["max_error_after_refit"] = _float(report2.max_error)
            row["agreement_after_refit"] = _float(report2.agreement)
            still = 0
            for kw in hard:
                (want, want_err), (got, got_err) = _call(fn, kw), _call(refitted, kw)
                still += int(not comparison.compare(want, got, expected_error=want_err, actual_error=got_err).agree)
            row["refit_cases_still_failing"] = still
            # Keep the refit unless fit's own held-out agreement (fresh inputs of its own, not
            # verify's) says it got worse: choosing on verify's inputs would flatter the headline.
            before = _float(getattr(state["surrogate"].metrics, "agreement", None))
            after = _float(getattr(refitted.metrics, "agreement", None))
            keep = before is None or after is None or math.isnan(before) or math.isnan(after) or after >= before
            row["refit_kept"] = bool(keep)
            row["refit_holdout_agreement"] = after
            if keep:
                final, final_report = refitted, report2
            state["_note"] = (f"{len(hard)} hard cases; verify agreement {row['agreement_before_refit']:.4f} -> "
                              f"{report2.agreement:.4f}; refit cases still failing {still}/{len(hard)}; "
                              f"held-out {before} -> {after}: {'kept' if keep else 'first fit kept'}")
        state["final"] = final
        if final_report is not None:
            row["agreement"] = _float(final_report.agreement)
            row["agreement_ci"] = [float(v) for v in final_report.agreement_ci]
            row["max_error"] = _float(final_report.max_error)
            row["passed"] = bool(final_report.passed)
            row["verify_status"] = str(getattr(final_report, "status", "passed" if final_report.passed else "failed"))
            row["verify_views"] = {k: _float(getattr(v, "agreement", None))
                                   for k, v in getattr(final_report, "views", {}).items()}
            row["counterexamples"] = [
                {"inputs": {k: repr(v) for k, v in c.inputs.items()}, "expected": repr(c.expected),
                 "actual": repr(c.actual), "error": _float(c.error)}
                for c in list(final_report.counterexamples)[:3]]
            state["final_report"] = final_report

        # 6. rules: the original's traced branch paths (else the surrogate distilled into a tree),
        # judged against the original on production traffic and on the whole domain
        explain_pkg = _import("explain")
        with step("distill", needs=["traces"]):
            distill = _public(explain_pkg, "distill") if explain_pkg else None
            if distill is None:
                raise _Skip("explain.distill not available yet")
            found = distill_rules(fn, state.get("final"), schema=schema, traces=state["traces"], tolerance=tolerance,
                                  budgets=b, seed=seed, distill=distill)
            state["rules"] = found.rules
            row.update(rules_row(found))
            from ._table import rules_summary

            state["_note"] = rules_summary(row) + (f" ({found.note})" if found.source == SURROGATE_TREE else "")

        # 7. speed, side by side
        with step("speed", needs=["final"]):
            if not hasattr(final, "predict_batch"):
                raise _Skip("the surrogate has no predict_batch")
            rows = module.generate_inputs(b.batch_rows, seed=seed + 3_000_017)
            speed = measure_speed(fn, final, rows, schema)
            row.update(speed)
            state["_note"] = (f"batch x{speed['batch_speedup']:.1f}, single call x{speed['single_call_speedup']:.2f} "
                              f"({speed['original_us_per_call']:.1f} vs {speed['surrogate_us_per_call']:.1f} us)")

        # 8. the guarded swap (certified at max_error_rate 1%) over fresh production inputs:
        # the share of calls it serves and the error rate of the answers it serves
        with step("guarded", needs=["final"]):
            swap = _public(replace_pkg, "swap") if replace_pkg else None
            if swap is None or getattr(final, "calibration", None) is None:
                raise _Skip("replace.swap with a certified guard not available")
            import logging

            from ._guarded import fresh_guarded

            logging.getLogger("replace").setLevel(logging.ERROR)  # single-member warning is in the row
            traffic = module.generate_inputs(b.guarded_calls, seed=seed + 4_000_037)
            guard = fresh_guarded(fn, final, traffic, _columns(traffic, schema), max_error_rate=GUARD_RATE)
            row["guarded_max_error_rate"] = GUARD_RATE
            row["guarded_fresh"] = guard["n_fresh"]
            row["guarded_served"] = guard["served"]
            row["guarded_wrong"] = guard["wrong"]
            row["guarded_coverage"] = guard["coverage"]
            row["guarded_served_error"] = _float(guard["served_error"])
            row["guarded_p_value"] = guard["p_value"]
            row["guarded_significantly_above"] = guard["significantly_above"]
            row["guarded_certificate"] = guard["certificate"]
            row["guarded_fallbacks"] = guard["fallbacks"]
            row["guarded_invocation_rate"] = guard["coverage"]  # the same share, under its old name
            row["guarded_agreement"] = 1.0 - guard["wrong"] / guard["n_fresh"] if guard["n_fresh"] else None
            state["_note"] = (f"max_error_rate {GUARD_RATE}: coverage {guard['coverage']:.3f}, served error "
                              f"{guard['wrong']}/{guard['served']} (p {guard['p_value']:.3g} for > {GUARD_RATE})")

        # 9. scikit-learn baselines on the same rows, scored like the surrogate on fresh inputs
        with step("baselines", needs=["final"]):
            train_rows = [dict(kw) for kw, ok in zip(state["traces"].inputs, state["traces"].replayable)
                          if ok and schema.contains(kw)[0]]
            train_out = [(v, e) for v, e, kw, ok in zip(state["traces"].outputs, state["traces"].errors,
                                                       state["traces"].inputs, state["traces"].replayable)
                         if ok and schema.contains(kw)[0]]
            extra = int(row.get("oracle_calls") or 0)
            extra = max(0, min(extra, b.baseline_rows_cap - len(train_rows)))
            oracle_rows = schema.sample(extra, rng=np.random.default_rng(seed + 5_000_011)) if extra else []
            train_rows += oracle_rows
            train_out += [_call(fn, kw) for kw in oracle_rows]
            row["baseline_rows"] = len(train_rows)
            fresh = _mixed_fresh(module, schema, b.fresh, seed)
            expected = [_call(fn, kw) for kw in fresh]
            row["surrogate_fresh_agreement"] = _agreement(comparison, expected, [_call(final, kw) for kw in fresh])
            for kind in ("mlp", "hgb"):
                model = _Baseline(kind, schema, seed=seed, max_iter=b.baseline_iter).fit(train_rows, train_out)
                row[f"sklearn_{kind}_agreement"] = _agreement(comparison, expected, model.predict(fresh))
            state["_note"] = (f"{len(train_rows)} rows; fresh agreement surrogate {row['surrogate_fresh_agreement']:.4f}, "
                              f"MLP {row['sklearn_mlp_agreement']:.4f}, HGB {row['sklearn_hgb_agreement']:.4f}")

        # 10. AxBench's own metric on fresh AxBench-distributed inputs
        if hasattr(module, "axbench_error"):
            with step("axbench", needs=["final"]):
                fresh = module.generate_inputs(b.fresh, seed=seed + 6_000_001)
                expected_v, actual_v = [], []
                for kw in fresh:
                    want, want_err = _call(fn, kw)
                    got, got_err = _call(final, kw)
                    expected_v.append(_nan_like(want, want_err, schema))
                    actual_v.append(_nan_like(got, got_err, schema))
                row["axbench_error"] = float(module.axbench_error(expected_v, actual_v))
                state["_note"] = (f"{row['axbench_error']:.4f} (published NPU: {row['published_npu_error']})")

        # 11. the audit report
        with step("report", needs=["final"]):
            report_fn = _public(explain_pkg, "report") if explain_pkg else None
            if report_fn is None or not b.report:
                raise _Skip("explain.report not available yet" if report_fn is None else "disabled")
            path = report_fn(fn, final, traces=state["traces"], out=str(out_dir),
                             **_options(report_fn, schema=schema, tolerance=tolerance, seed=seed,
                                        verification=state.get("final_report"), edge_cases=state.get("cases"),
                                        rules=state.get("rules"), n_eval=b.report_eval,
                                        n_attribution=b.report_attribution,
                                        verify_examples=b.verify_examples))
            path = Path(path)
            html = path / "report.html" if path.is_dir() else path
            if not html.exists():
                raise RuntimeError(f"explain.report returned {path} but {html} does not exist")
            row["report"] = str(html)
            state["_note"] = str(html)

    row["wall_s"] = round(time.perf_counter() - started, 2)
    return row


def _nan_like(value: Any, error: ErrorInfo | None, schema: Schema) -> Any:
    """A raising call as NaN, the value C's math library returns where Python raises."""
    if error is None:
        return value
    width = schema.output.length or 1
    return [math.nan] * width if schema.output.kind == "vector" else math.nan


def _import(name: str) -> ModuleType | None:
    try:
        import importlib

        return importlib.import_module(name)
    except ImportError:
        return None
