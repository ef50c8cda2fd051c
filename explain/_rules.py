"""`distill(...) -> Rules`: readable rules of a teacher, with their measured fidelity.

A tree is only worth reading if it says how often it is right: `Rules.fidelity` holds the
agreement within tolerance (with its interval), the max error and R^2, against the teacher and
against the original, on the domain and on recorded calls, because R^2 alone can look
excellent while half the inputs are outside tolerance.
"""

from __future__ import annotations

import datetime as _dt
import keyword
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from probes import Schema, Tolerance, Traces
from probes._validation import bad_argument, check_callable, check_flag, check_number, check_seed

from ._codegen import compile_source, emit_exact_source, emit_source, finish_value
from ._data import Agreement, Outcomes, agreement, as_columns, call_batch, is_surrogate, schema_of
from ._distill import Budget, BudgetReport, Fitted, check_max_leaves, learn, teacher_name
from probes._exact_rules import ExactFit, ExactReport, learn_exact


@dataclass(frozen=True)
class Fidelity:
    """Agreement of the rules with one reference on one distribution."""

    against: str  # "teacher" or "original"
    distribution: str  # "domain" (uniform over the schema) or "operational" (recorded calls)
    agreement: float
    agreement_ci: tuple[float, float]
    max_error: float
    r2: float | None
    n: int
    method: str = "explain"  # "probes.verify" when measured by it

    def to_dict(self) -> dict[str, Any]:
        return {"against": self.against, "distribution": self.distribution, "agreement": self.agreement,
                "agreement_ci": list(self.agreement_ci), "max_error": _json_float(self.max_error),
                "r2": self.r2, "n": self.n, "method": self.method}


def _json_float(value: float) -> Any:
    return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")


@dataclass(frozen=True)
class Complexity:
    leaves: int
    depth: int
    lines: int

    def to_dict(self) -> dict[str, int]:
        return {"leaves": self.leaves, "depth": self.depth, "lines": self.lines}


@dataclass(frozen=True)
class Cut:
    """One numeric test in the rules: argument, cut point, and whether it was snapped to the
    teacher's true boundary by bisection."""

    argument: str
    threshold: float
    strict: bool
    snapped: bool
    tree: str  # "value" or "guard"


@dataclass(frozen=True, eq=False)
class Rules:
    """Distilled rules: `source` (plain Python), `function` (that source compiled), fidelity."""

    source: str
    function: Callable[..., Any] = field(repr=False)
    fidelity: dict[str, Fidelity]
    complexity: Complexity
    teacher: str
    schema: Schema = field(repr=False)
    tolerance: Tolerance
    variant: str
    created: str
    n_queries: int
    _fitted: Fitted | None = field(repr=False)  # the tree (None for exact rules)
    budget: BudgetReport | None = None  # what `budget_s` bought and cut (`budget.cut_short`); None without one
    exact: ExactReport | None = None  # rules from traced branch paths (`.used`), or why the tree instead

    @property
    def fidelity_domain(self) -> Fidelity | None:
        """Agreement with the original (else the teacher) on the whole domain."""
        return self.fidelity.get("original:domain") or self.fidelity.get("teacher:domain")

    @property
    def fidelity_production(self) -> Fidelity | None:
        """Agreement with the original (else the teacher) on production traffic (the traces)."""
        return self.fidelity.get("original:operational") or self.fidelity.get("teacher:operational")

    @property
    def cut_short(self) -> bool:
        """Whether `budget_s` cut the distillation short (see `budget.skipped`)."""
        return self.budget is not None and self.budget.cut_short

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    @property
    def name(self) -> str:
        return self.function.__name__

    @property
    def agreement(self) -> float:
        """Agreement with the teacher on the domain (the headline fidelity)."""
        main = self.fidelity.get("teacher:domain") or next(iter(self.fidelity.values()))
        return main.agreement

    def predict_outcomes(self, columns: Mapping[str, np.ndarray]) -> Outcomes:
        """The tree's outcomes (finished as the source returns them), without the source."""
        cols = as_columns(columns, self.schema)
        if self._fitted is None:  # exact rules: the source is the model
            return call_batch(self.function, cols, self.schema)
        out = self._fitted.model.outcomes(self._fitted.features.encode(cols))
        python_type = self.schema.output.python_type
        if self._fitted.model.kind in ("real", "vector"):
            out = Outcomes([None if v is None else finish_value(v, python_type) for v in out.values], out.errors)
        return out

    def cuts(self) -> list[Cut]:
        """Every numeric test, in tree order."""
        out = []
        if self._fitted is None:
            return [Cut(a, t, s, k, "value") for a, t, s, k in (self.exact.cuts if self.exact else ())]
        features = self._fitted.features
        for label in ("guard", "value"):
            tree = getattr(self._fitted.model, label)
            if tree is None:
                continue
            for i in tree.internal():
                spec = features.specs[int(tree.feature[i])]
                if spec.numeric:
                    out.append(Cut(spec.label, float(tree.threshold[i]), bool(tree.strict[i]),
                                   bool(tree.snapped[i]), label))
        return out

    def thresholds(self, argument: str) -> list[float]:
        """Sorted distinct cut points on one argument (vector elements as `name[i]`)."""
        return sorted({c.threshold for c in self.cuts() if c.argument == argument})

    def save(self, path: str | Path) -> Path:
        """Write the source as a Python module."""
        target = Path(path)
        target.write_text(self.source, encoding="utf-8")
        return target

    def to_dict(self) -> dict[str, Any]:
        return {"teacher": self.teacher, "variant": self.variant, "created": self.created,
                "n_queries": self.n_queries, "complexity": self.complexity.to_dict(),
                "fidelity": {k: v.to_dict() for k, v in self.fidelity.items()},
                "cuts": [c.__dict__ for c in self.cuts()], "tolerance": self.tolerance.to_dict(),
                "budget": self.budget.to_dict() if self.budget is not None else None,
                "exact": self.exact.to_dict() if self.exact is not None else None}

    def to_markdown(self) -> str:
        lines = [f"**Rules distilled from** `{self.teacher}` ({self.variant}): "
                 f"{self.complexity.leaves} leaves, depth {self.complexity.depth}, {self.complexity.lines} lines.",
                 "", "| against | inputs | agreement (95% CI) | max error | R^2 | n |", "|---|---|---|---|---|---|"]
        for fid in self.fidelity.values():
            r2 = "" if fid.r2 is None else f"{fid.r2:.4f}"
            lines.append(f"| {fid.against} | {fid.distribution} | {fid.agreement:.1%} "
                         f"({fid.agreement_ci[0]:.1%} - {fid.agreement_ci[1]:.1%}) | {fid.max_error:.4g} | {r2} | {fid.n} |")
        if self.budget is not None:
            lines += ["", f"Budget: {self.budget.describe()}."]
        lines += ["", "```python", self.source.rstrip(), "```"]
        return "\n".join(lines)


# -- fidelity -----------------------------------------------------------------------------------

def _measure(reference: Callable[..., Any], candidate: Callable[..., Any], columns: Mapping[str, np.ndarray],
             schema: Schema, tolerance: Tolerance) -> Agreement:
    return agreement(call_batch(reference, columns, schema), call_batch(candidate, columns, schema),
                     schema.output.kind, tolerance)


def _verify_report(reference: Callable[..., Any], candidate: Callable[..., Any], schema: Schema,
                   tolerance: Tolerance, traces: Traces | None, n: int, seed: int,
                   budget_s: float | None = None) -> Any:
    """probes.verify's report without the adversarial search (rates only), or None."""
    try:
        from probes import verify
    except ImportError:  # pragma: no cover - probes without verify
        return None
    try:
        return verify(reference, candidate, schema=schema, traces=traces, tolerance=tolerance,
                      max_examples=n, seed=seed, search=False, database=None, nondeterminism_sample=0,
                      budget_s=budget_s)
    except Exception:  # fidelity must not fail distillation; fall back to our own measure
        return None


def measure_fidelity(rules_fn: Callable[..., Any], references: Mapping[str, Callable[..., Any]], schema: Schema,
                     tolerance: Tolerance, *, traces: Traces | None, n: int, seed: int,
                     verify_budget_s: float | None = None) -> dict[str, Fidelity]:
    """Agreement of `rules_fn` with each reference on the domain and on recorded calls, by
    probes.verify (its "domain" and "operational" views); R^2 on a uniform domain sample."""
    rng = np.random.default_rng(seed + 7919)
    domain = schema.sample_columns(n, rng=rng)
    out: dict[str, Fidelity] = {}
    for against, reference in references.items():
        own = _measure(reference, rules_fn, domain, schema, tolerance)
        report = _verify_report(reference, rules_fn, schema, tolerance, traces, n, seed, verify_budget_s)
        views = getattr(report, "views", {}) if report is not None else {}
        for dist in ("domain", "operational"):
            view = views.get(dist)
            if view is not None and view.n and view.agreement is not None:
                out[f"{against}:{dist}"] = Fidelity(
                    against, dist, float(view.agreement), (float(view.ci[0]), float(view.ci[1])),
                    float(view.errors.get("max", math.nan)), own.r2 if dist == "domain" else None,
                    int(view.n), "probes.verify")
            elif dist == "domain":
                out[f"{against}:domain"] = Fidelity(against, "domain", own.agreement, own.agreement_ci,
                                                    own.max_error, own.r2, own.n)
            elif traces is not None and len(traces):
                rows = [kw for kw in traces.inputs if schema.contains(kw)[0]][:n]
                if rows:
                    ops = _measure(reference, rules_fn, as_columns(rows, schema), schema, tolerance)
                    out[f"{against}:operational"] = Fidelity(against, "operational", ops.agreement,
                                                             ops.agreement_ci, ops.max_error, ops.r2, ops.n)
    return out


# -- distill --------------------------------------------------------------------------------------

def distill(fn_or_surrogate: Callable[..., Any], *, schema: Schema | None = None, max_leaves: int = 16,
            teacher: Callable[..., Any] | None = None, original: Callable[..., Any] | None = None,
            n_samples: int = 4000, tolerance: Tolerance | None = None, seed: int = 0,
            traces: Traces | None = None, snap: bool | None = None, linear_leaves: bool = True,
            name: str | None = None, fidelity_samples: int = 2000, budget_s: float | None = None,
            exact: bool = True) -> Rules:
    """Distil `fn_or_surrogate` (or `teacher`, when given) into readable rules.

    With `exact` (the default) and a plain Python function as the teacher, the rules are the
    code's own branch paths: every oracle call is traced, each path's rows fitted with an exact
    expression, the partition learned as tests on the arguments with every cut bisected to the
    float (`probes._exact_rules`); the rules have as many leaves as the code needs, and a path
    no expression reproduces is marked `# approximate` in the source. `Rules.exact` says how
    they came about, or why the tree below was used instead (a builtin or C function cannot be
    traced; a surrogate has no paths; no path was exact).

    Otherwise a tree of at most `max_leaves` leaves: the teacher is queried as an oracle (`n_samples` queries, more where the tree is unsure).
    Cuts snap to the teacher's true boundaries when the teacher is a plain function (`snap`
    overrides). Fidelity is measured against the teacher and, when given, the `original`, on
    the domain and on `traces` (recorded calls).

    `budget_s` bounds the wall time (None: no bound, `n_samples` and `fidelity_samples` as
    asked): the cost of a teacher query (and of a call of `original`) is measured first, the
    queries and fidelity inputs are sized to fit, each batch stops at its deadline, and
    snapping leaves the cuts it has no time for where the tree put them; `Rules.budget` says
    what was cut (`.cut_short`, `.skipped`). A budget too small for the least distillation is
    refused at once, naming the cost and the budget needed.
    """
    max_leaves = check_max_leaves(max_leaves)
    check_number("n_samples", n_samples, low=100, integer=True, fix="Pass at least 100 teacher queries")
    check_number("fidelity_samples", fidelity_samples, low=1, integer=True,
                 fix="Pass how many inputs measure the fidelity, e.g. 2000")
    check_seed("seed", seed)
    check_callable("original", original, optional=True, fix="Pass the legacy function, or None")
    if traces is not None and not isinstance(traces, Traces):
        raise bad_argument("traces", traces, "must be a probes.Traces or None", "Load them with store.load(fn)")
    check_flag("snap", snap, optional=True, fix="Pass None to snap cuts only when the teacher is a plain function")
    check_flag("linear_leaves", linear_leaves)
    check_flag("exact", exact, fix="Pass True for rules from the traced branch paths, False for the tree")
    if name is not None and (not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name)):
        raise bad_argument("name", name, "must be a Python identifier (the name of the generated function)",
                           "Pass e.g. name='shipping_fee_rules', or None for the legacy function's name")
    the_teacher = teacher if teacher is not None else fn_or_surrogate
    if not callable(the_teacher):
        raise bad_argument("teacher" if teacher is not None else "fn_or_surrogate", the_teacher,
                           "must be callable with the legacy signature")
    schema = schema_of(fn_or_surrogate if is_surrogate(fn_or_surrogate) else the_teacher, schema, traces=traces)
    if tolerance is None:
        tolerance = getattr(fn_or_surrogate, "tolerance", None) or getattr(the_teacher, "tolerance", None) or Tolerance()
    if not isinstance(tolerance, Tolerance):
        raise bad_argument("tolerance", tolerance, "must be a probes.Tolerance", "Pass Tolerance(abs=..., rel=...)")
    if schema.output.kind == "none" and not schema.output.raises:
        raise bad_argument("schema.output", schema.output.kind, "has no outcome to learn",
                           "Build the schema with Schema.infer(fn, traces) or from_function(..., probe=64)")
    if snap is None:
        snap = not is_surrogate(the_teacher)
    budget = None
    if budget_s is not None:
        check_number("budget_s", budget_s, low=0, low_inclusive=False, fix="Pass seconds, e.g. budget_s=30")
        budget = Budget.plan(the_teacher, original, schema, budget_s=float(budget_s), n_samples=int(n_samples),
                             fidelity_samples=int(fidelity_samples), traces=traces is not None and len(traces) > 0,
                             seed=seed)
    fn_name = name or (schema.function.rsplit(":", 1)[-1].rsplit(".", 1)[-1] if schema.function else "rules")
    who = teacher_name(the_teacher)
    created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    references: dict[str, Callable[..., Any]] = {"teacher": the_teacher}
    if original is not None and original is not the_teacher:
        references["original"] = original

    def fidelity_of(draft: str) -> dict[str, Fidelity]:
        n_fidelity, verify_budget_s = (budget.fidelity_plan(len(references)) if budget is not None
                                       else (int(fidelity_samples), None))
        return measure_fidelity(compile_source(draft, fn_name), references, schema, tolerance, traces=traces,
                                n=n_fidelity, seed=seed, verify_budget_s=verify_budget_s)

    exact_report = None
    if exact and is_surrogate(the_teacher):
        exact_report = ExactReport.fallback("the teacher is a surrogate: it has no branch paths to trace")
    elif exact:
        try:
            found = learn_exact(the_teacher, schema, traces=traces, n_samples=int(n_samples), seed=seed,
                                tolerance=tolerance, deadline=budget.learn_end if budget is not None else math.inf)
        except Exception as exc:  # the tree still answers; the note says what went wrong
            found = f"tracing the paths failed ({type(exc).__name__}: {exc})"[:300]
        if isinstance(found, ExactFit):
            if budget is not None:
                budget.cut.extend(note for note in found.notes if note.startswith("budget:"))
            report = ExactReport.from_fit(found)
            fidelity = fidelity_of(emit_exact_source(found, schema, name=fn_name, docstring="draft"))
            source = emit_exact_source(found, schema, name=fn_name,
                                       docstring=_exact_doc_text(who, fidelity, report, tolerance, created))
            lines = sum(1 for line in source.splitlines() if line.strip())
            return Rules(source, compile_source(source, fn_name), fidelity,
                         Complexity(report.leaves, found.tree.depth, lines), who, schema, tolerance, report.variant,
                         created, found.calls, None, budget.report() if budget is not None else None, report)
        exact_report = ExactReport.fallback(found)
    fitted = learn(the_teacher, schema, max_leaves=max_leaves,
                   n_samples=budget.n_samples if budget is not None else int(n_samples), tolerance=tolerance,
                   seed=seed, snap=bool(snap), traces=traces, linear_leaves=linear_leaves, budget=budget)
    fidelity = fidelity_of(emit_source(fitted.model, fitted.features, schema, name=fn_name, docstring="draft"))
    doc = _doc_text(who, fidelity, fitted, tolerance, created, max_leaves)
    if exact_report is not None:
        doc += f"\nNot from the traced branch paths: {exact_report.note}."
    source = emit_source(fitted.model, fitted.features, schema, name=fn_name, docstring=doc)
    function = compile_source(source, fn_name)
    lines = sum(1 for line in source.splitlines() if line.strip())
    complexity = Complexity(fitted.model.n_leaves, fitted.model.depth, lines)
    return Rules(source, function, fidelity, complexity, who, schema, tolerance, fitted.variant, created,
                 fitted.n_queries, fitted, budget.report() if budget is not None else None, exact_report)


def _fidelity_lines(fidelity: Mapping[str, Fidelity]) -> list[str]:
    return [f"Agrees with the {fid.against} on {fid.agreement:.2%} of {fid.n} {fid.distribution} inputs "
            f"(95% CI {fid.agreement_ci[0]:.2%}-{fid.agreement_ci[1]:.2%}), max error {fid.max_error:.4g}"
            f"{'' if fid.r2 is None else f', R^2 {fid.r2:.4f}'}." for fid in fidelity.values()]


def _exact_doc_text(who: str, fidelity: Mapping[str, Fidelity], report: ExactReport, tolerance: Tolerance,
                    created: str) -> str:
    snapped = sum(1 for cut in report.cuts if cut[3])
    lines = [f"Rules distilled from the traced branch paths of {who} on {created}.", "",
             *_fidelity_lines(fidelity),
             f"Tolerance: abs={tolerance.abs:g}, rel={tolerance.rel:g}. {report.leaves} leaves from "
             f"{len(report.pieces)} pieces of the code, {report.approximate_leaves} approximate"
             f"{' (marked # approximate)' if report.approximate_leaves else ''}; {snapped} of {len(report.cuts)} "
             f"numeric cuts bisected to the float; {report.traced_calls} traced calls."]
    if report.misrouted:
        lines.append(f"The partition misroutes {report.misrouted} of the {report.rows} sampled calls (a boundary "
                     "the tests on single arguments do not draw exactly).")
    if report.note:
        lines.append(f"Notes: {report.note}.")
    return "\n".join(lines)


def _doc_text(who: str, fidelity: Mapping[str, Fidelity], fitted: Fitted, tolerance: Tolerance,
              created: str, max_leaves: int) -> str:
    lines = [f"Rules distilled from {who} on {created}.", ""]
    for fid in fidelity.values():
        lines.append(f"Agrees with the {fid.against} on {fid.agreement:.2%} of {fid.n} {fid.distribution} inputs "
                     f"(95% CI {fid.agreement_ci[0]:.2%}-{fid.agreement_ci[1]:.2%}), max error {fid.max_error:.4g}"
                     f"{'' if fid.r2 is None else f', R^2 {fid.r2:.4f}'}.")
    lines.append(f"Tolerance: abs={tolerance.abs:g}, rel={tolerance.rel:g}. "
                 f"{fitted.model.n_leaves} leaves (max {max_leaves}), {fitted.variant}, "
                 f"{fitted.n_queries} teacher queries.")
    return "\n".join(lines)


# -- fidelity versus size ---------------------------------------------------------------------------

@dataclass(frozen=True)
class FidelityTable:
    """Fidelity of distilled rules per leaf budget."""

    rows: tuple[dict[str, Any], ...]
    rules: tuple[Rules, ...] = field(repr=False, default=())

    def to_markdown(self) -> str:
        head = "| max leaves | leaves | depth | lines | variant | agreement (95% CI) | max error | R^2 |"
        out = [head, "|---|---|---|---|---|---|---|---|"]
        for r in self.rows:
            r2 = "" if r["r2"] is None else f"{r['r2']:.4f}"
            out.append(f"| {r['max_leaves']} | {r['leaves']} | {r['depth']} | {r['lines']} | {r['variant']} | "
                       f"{r['agreement']:.1%} ({r['agreement_ci'][0]:.1%}-{r['agreement_ci'][1]:.1%}) | "
                       f"{r['max_error']:.4g} | {r2} |")
        return "\n".join(out)


def fidelity_table(fn: Callable[..., Any], schema: Schema | None = None, *,
                   leaves: Sequence[int] = (4, 8, 16, 32, 64), **distill_options: Any) -> FidelityTable:
    """Distil `fn` into trees at each leaf budget and tabulate fidelity against size (the tree
    distiller unless `exact=True` is passed: exact rules have the leaves the code needs)."""
    rows, all_rules = [], []
    for budget in leaves:
        rules = distill(fn, schema=schema, max_leaves=budget, **{"exact": False, **distill_options})
        key = "original:domain" if "original:domain" in rules.fidelity else "teacher:domain"
        fid = rules.fidelity[key]
        rows.append({"max_leaves": int(budget), "leaves": rules.complexity.leaves, "depth": rules.complexity.depth,
                     "lines": rules.complexity.lines, "variant": rules.variant, "agreement": fid.agreement,
                     "agreement_ci": fid.agreement_ci, "max_error": fid.max_error, "r2": fid.r2,
                     "against": key})
        all_rules.append(rules)
    return FidelityTable(tuple(rows), tuple(all_rules))
