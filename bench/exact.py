"""Exactness on rule-based code: is the surrogate (and are the distilled rules) right on every
input of a business rule, or only on most? (issue 15)

For each function of the rule suite (case_studies/rules: eleven business rules plus
shipping_fee and insurance_class): record 3,000 production calls as traces, `fit` with
defaults at a budget on the work clock, `distill(fn, schema=, traces=, tolerance=)` with
defaults, and train peers on exactly the rows the surrogate trained on
(`surrogate.training_data_`) within the same wall budget: scikit-learn's DecisionTree and
HistGradientBoosting, and gplearn's SymbolicRegressor where it imports (real outputs only).
Each is judged by `replace._fidelity.compare` (within tolerance: a cent for money; labels and
exceptions exact) on 20,000 fresh production inputs and 20,000 whole-domain inputs
(`schema.sample`), separately; "exact" means no disagreement on either. Also the rules' size
(lines, leaves) and the single-call time of surrogate and rules against the original, timed
side by side in one loop.

    python bench/exact.py                    # full suite, 60 s budget (long: run it with nohup)
    python bench/exact.py --budget 20 --out exact_before.json
    python bench/exact.py --quick            # 5 s budgets, 2,000 evaluation inputs: a smoke run
    python bench/exact.py --only income_tax weekly_pay --seed 1
    python bench/exact.py --models rules --budget 20 --out exact_rules.json   # rules alone (no fit)

`--models` picks a subset of surrogate, rules, tree, hgb, gplearn (default all). The peers train
on the surrogate's rows, so asking for a peer fits the surrogate too (it is judged only if asked
for); rules alone never call fit.

Writes bench/results/exact.json (exact_quick.json with --quick, or --out NAME) and prints a
markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from case_studies.rules import SUITE, SuiteEntry  # noqa: E402
from explain import distill  # noqa: E402
from probes import ErrorInfo, Schema, Traces  # noqa: E402
from replace import fit  # noqa: E402
from replace._fidelity import compare  # noqa: E402

PEERS = ("tree", "hgb", "gplearn")
MODELS = ("surrogate", "rules", "tree", "hgb", "gplearn")
DISTRIBUTIONS = ("production", "domain")
FAIRNESS = (
    "Peers train on exactly the rows fit trained on (surrogate.training_data_: the recorded traces plus fit's "
    "oracle samples), each within the fit budget in wall seconds; inputs encoded raw (numbers as they are, "
    "booleans 0/1, categories one-hot) so cut points are in the code's units; a raising outcome is a class of "
    "its own (labels) or learned by an outcome classifier of the same family (real outputs; a decision tree "
    "for gplearn); real predictions rounded to the output grid the surrogate detected (cents), as the "
    "surrogate rounds its own. The surrogate is judged through predict_details (the batch path, default "
    "precision); the rules by calling their compiled source."
)


# -- helpers -------------------------------------------------------------------------------------

def _entry(name_or_entry: str | SuiteEntry) -> SuiteEntry:
    if isinstance(name_or_entry, SuiteEntry):
        return name_or_entry
    if name_or_entry not in SUITE:
        raise SystemExit(f"unknown suite function {name_or_entry!r}; known: {', '.join(SUITE)}")
    return SUITE[name_or_entry]


def _columns(schema: Schema, rows: Sequence[dict]) -> dict[str, np.ndarray]:
    return {f.name: np.asarray([r[f.name] for r in rows], dtype=object if f.kind == "categorical" else None)
            for f in schema.fields}


def _raw_features(schema: Schema, columns: dict[str, Any]) -> np.ndarray:
    """Numbers as they are, booleans 0/1, categories one-hot (the peers' input encoding)."""
    parts = []
    for f in schema.fields:
        col = np.asarray(columns[f.name], dtype=object)
        if f.kind == "categorical":
            for category in f.categories:
                parts.append(np.array([v == category for v in col], dtype=float))
        elif f.kind == "boolean":
            parts.append(np.array([bool(v) for v in col], dtype=float))
        else:
            parts.append(np.asarray(col, dtype=float))
    return np.column_stack(parts) if parts else np.zeros((0, 0))


def _outcomes(fn: Callable[..., Any], rows: Sequence[dict]) -> tuple[list[Any], list[ErrorInfo | None]]:
    traces = Traces.from_calls(fn, rows)
    return list(traces.outputs), list(traces.errors)


def _judge(kind: str, ref: tuple[list, list], cand: tuple[list, list], tolerance: Any) -> dict[str, Any]:
    outputs, errors = cand
    if kind == "real":  # a candidate answering None or NaN for a value is simply wrong
        outputs = [np.nan if (o is None and e is None) else o for o, e in zip(outputs, errors)]
    result = compare(kind, ref[0], ref[1], outputs, errors, tolerance)
    n = int(result["n"])
    return {"n": n, "agreement": result["agreement"], "disagreements": int(n - int(np.sum(result["agree"]))),
            "outcome_agreement": result["outcome_agreement"], "mean_error": result["mean_error"],
            "max_error": result["max_error"]}


def _gplearn_status() -> dict[str, Any]:
    try:
        import gplearn  # noqa: F401
        from gplearn.genetic import SymbolicRegressor  # noqa: F401
    except Exception as exc:  # pragma: no cover - depends on the machine
        return {"available": False, "reason": f"import failed: {type(exc).__name__}: {exc} "
                                              "(pip install gplearn to compare with it)"}
    return {"available": True, "version": getattr(gplearn, "__version__", "?")}


# -- peers ---------------------------------------------------------------------------------------

class Peer:
    """A decision tree, histogram gradient boosting or gplearn model made to answer like the
    legacy function: a value (rounded to the output grid), a label, or a raise."""

    def __init__(self, family: str, kind: str, budget_s: float, seed: int, decimals: int | None):
        self.family, self.kind, self.budget_s, self.seed, self.decimals = family, kind, budget_s, seed, decimals
        self.seconds = 0.0
        self.note = ""
        self.outcome_model: Any = None

    def _classifier(self, deadline: float, X: np.ndarray, y: np.ndarray, family: str | None = None) -> Any:
        from sklearn.tree import DecisionTreeClassifier

        family = family or self.family
        if family == "hgb":
            from sklearn.ensemble import HistGradientBoostingClassifier

            model = HistGradientBoostingClassifier(max_iter=100, random_state=self.seed, early_stopping=True,
                                                   warm_start=True, n_iter_no_change=30)
            return self._grow(model, X, y, deadline)
        return DecisionTreeClassifier(random_state=self.seed).fit(X, y)

    def _grow(self, model: Any, X: np.ndarray, y: np.ndarray, deadline: float) -> Any:
        """HGB in steps of 100 iterations until it stops early or the deadline passes."""
        while True:
            model.fit(X, y)
            if model.n_iter_ < model.max_iter or time.monotonic() >= deadline or model.max_iter >= 5000:
                break
            model.max_iter += 100
        self.note = f"{model.n_iter_} iterations"
        return model

    def _regressor(self, deadline: float, X: np.ndarray, y: np.ndarray) -> Any:
        if self.family == "tree":
            from sklearn.tree import DecisionTreeRegressor

            return DecisionTreeRegressor(random_state=self.seed).fit(X, y)
        if self.family == "hgb":
            from sklearn.ensemble import HistGradientBoostingRegressor

            model = HistGradientBoostingRegressor(max_iter=100, random_state=self.seed, early_stopping=True,
                                                  warm_start=True, n_iter_no_change=30)
            return self._grow(model, X, y, deadline)
        from gplearn.genetic import SymbolicRegressor

        rng = np.random.default_rng(self.seed)
        keep = rng.choice(len(X), size=min(len(X), 4000), replace=False) if len(X) > 4000 else np.arange(len(X))
        model = SymbolicRegressor(population_size=1000, generations=1, warm_start=True, random_state=self.seed,
                                  function_set=("add", "sub", "mul", "div", "max", "min"),
                                  parsimony_coefficient=0.001, n_jobs=1, metric="mean absolute error")
        generations = 0
        while True:
            model.fit(X[keep], y[keep])
            generations += 1
            if time.monotonic() >= deadline or generations >= 200:
                break
            model.set_params(generations=generations + 1)
        self.note = f"{generations} generations on {len(keep)} rows: {model._program}"[:300]
        return model

    def fit(self, X: np.ndarray, outputs: list[Any], errors: list[ErrorInfo | None]) -> "Peer":
        started = time.monotonic()
        deadline = started + self.budget_s
        keys = [f"raise:{e.type}" if e is not None else None for e in errors]
        self.errors = {k: e for k, e in zip(keys, errors) if k is not None}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.kind == "label":
                y = np.array([k if k is not None else f"value:{o!r}" for k, o in zip(keys, outputs)], dtype=object)
                self.labels = {f"value:{o!r}": o for k, o in zip(keys, outputs) if k is None}
                self.model = self._classifier(deadline, X, y)
            else:
                ok = np.array([k is None for k in keys])
                outcome = np.array([k or "ok" for k in keys], dtype=object)
                if len(set(outcome.tolist())) > 1:
                    family = "tree" if self.family == "gplearn" else self.family
                    share = started + 0.3 * self.budget_s
                    self.outcome_model = self._classifier(share, X, outcome, family)
                y = np.asarray([float(o) for o, good in zip(outputs, ok) if good], dtype=float)
                self.model = self._regressor(deadline, X[ok], y)
        self.seconds = time.monotonic() - started
        return self

    def predict(self, X: np.ndarray) -> tuple[list[Any], list[ErrorInfo | None]]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self.kind == "label":
                labels = self.model.predict(X)
                return [self.labels.get(l) for l in labels], [self.errors.get(l) for l in labels]
            values = np.asarray(self.model.predict(X), dtype=float).reshape(-1)
            if self.decimals is not None:
                values = np.round(values, self.decimals)
            errors: list[ErrorInfo | None] = [None] * len(X)
            if self.outcome_model is not None:
                errors = [self.errors.get(o) for o in self.outcome_model.predict(X)]
            return [None if e is not None else float(v) for v, e in zip(values, errors)], errors


# -- timing --------------------------------------------------------------------------------------

def single_call_us(functions: dict[str, Callable[..., Any]], rows: Sequence[dict], repeats: int = 5) -> dict[str, float]:
    """Microseconds per single call of each function on the same rows, timed side by side
    (the functions take turns within each repeat; the best repeat counts)."""
    best = {name: math.inf for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            start = time.perf_counter()
            for row in rows:
                try:
                    fn(**row)
                except Exception:
                    pass
            best[name] = min(best[name], (time.perf_counter() - start) / len(rows) * 1e6)
    return best


# -- one function --------------------------------------------------------------------------------

def run_one(name: str | SuiteEntry, budget: float = 60.0, seed: int = 0, *, n_traces: int = 3000,
            n_eval: int = 20000, peers: Sequence[str] = PEERS, timing_rows: int = 300,
            progress: bool = False, models: Sequence[str] = MODELS) -> dict[str, Any]:
    """Fit, distill, train the peers and judge them all on fresh production and domain inputs,
    for one suite function (a name in case_studies.rules.SUITE, or a SuiteEntry). `models` limits
    what is built and judged; a peer asked for still needs the surrogate's training rows."""
    wanted = tuple(models)  # `models` below is the row's dict of results
    unknown = [m for m in wanted if m not in MODELS]
    if unknown:
        raise ValueError(f"models={list(wanted)!r} : each must be one of {', '.join(MODELS)}")
    peers = [p for p in peers if p in wanted]
    need_fit = "surrogate" in wanted or bool(peers)
    entry = _entry(name)
    fn, tolerance = entry.function, entry.tolerance
    say = (lambda msg: print(f"[exact] {entry.name}: {msg}", file=sys.stderr, flush=True)) if progress else (lambda m: None)
    schema = entry.schema()
    kind = schema.output.kind
    traces = Traces.from_calls(fn, entry.generate_inputs(n_traces, seed=seed))
    production_rows = entry.generate_inputs(n_eval, seed=seed + 1)
    domain_rows = schema.sample(n_eval, seed=seed + 2)
    rows = {"production": production_rows, "domain": domain_rows}
    reference = {d: _outcomes(fn, r) for d, r in rows.items()}
    row: dict[str, Any] = {
        "function": entry.name, "description": entry.description, "kind": kind,
        "tolerance": tolerance.to_dict(), "budget_s": budget, "seed": seed, "n_traces": n_traces, "n_eval": n_eval,
        "raise_share": {d: float(np.mean([e is not None for e in reference[d][1]])) for d in DISTRIBUTIONS},
        "models": {},
    }
    models: dict[str, Any] = row["models"]

    surrogate = None
    if need_fit:
        say(f"fit (budget {budget} s, work clock)" + ("" if "surrogate" in wanted else " for the peers' rows"))
        started = time.monotonic()
        try:
            surrogate = fit(fn, traces, schema=schema, tolerance=tolerance, budget_s=budget, seed=seed,
                            budget_clock="work", progress=False)
        except Exception as exc:
            if "surrogate" in wanted:
                models["surrogate"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        fit_seconds = time.monotonic() - started
    if surrogate is not None and "surrogate" in wanted:
        entry_row: dict[str, Any] = {"seconds": round(fit_seconds, 2), "architecture": surrogate.architecture,
                                     "oracle_calls": surrogate.metrics.oracle_calls,
                                     "training_rows": surrogate.metrics.training_rows,
                                     "fit_metrics_agreement": surrogate.metrics.agreement}
        for d in DISTRIBUTIONS:
            details = surrogate.predict_details(_columns(schema, rows[d]))
            cand = (surrogate.python_outputs(details), list(details.errors))
            entry_row[d] = _judge(kind, reference[d], cand, tolerance)
        models["surrogate"] = entry_row

    rules = None
    if "rules" in wanted:
        say("distill (defaults)")
        started = time.monotonic()
        try:
            rules = distill(fn, schema=schema, traces=traces, tolerance=tolerance)
        except Exception as exc:
            models["rules"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    if rules is not None:
        entry_row = {"seconds": round(time.monotonic() - started, 2), "variant": rules.variant,
                     "lines": rules.complexity.lines, "leaves": rules.complexity.leaves,
                     "depth": rules.complexity.depth, "queries": rules.n_queries,
                     "self_reported": {k: {"agreement": v.agreement, "n": v.n} for k, v in rules.fidelity.items()}}
        report = getattr(rules, "exact", None)  # distill's own account of exact paths, where it gives one
        if report is not None:
            entry_row["exact_report"] = {"used": bool(report.used), "note": str(report.note)[:500],
                                         "leaves": int(report.leaves),
                                         "approximate_leaves": int(report.approximate_leaves),
                                         "pieces": [dict(p) for p in report.pieces][:50]}
        for d in DISTRIBUTIONS:
            entry_row[d] = _judge(kind, reference[d], _outcomes(rules.function, rows[d]), tolerance)
        models["rules"] = entry_row

    if surrogate is not None and surrogate.training_data_ is not None:
        data = surrogate.training_data_
        X_train = _raw_features(schema, data["columns"])
        X_eval = {d: _raw_features(schema, _columns(schema, rows[d])) for d in DISTRIBUTIONS}
        decimals = surrogate.output_encoder.decimals if kind == "real" else None
        for family in peers:
            if family == "gplearn":
                status = _gplearn_status()
                if not status["available"]:
                    models["gplearn"] = {"skipped": status["reason"]}
                    continue
                if kind != "real":
                    models["gplearn"] = {"skipped": "label output: gplearn's SymbolicClassifier is binary only and "
                                                    "SymbolicRegressor needs a number"}
                    continue
            say(f"peer {family}")
            try:
                peer = Peer(family, kind, budget, seed, decimals).fit(X_train, list(data["outputs"]),
                                                                      list(data["errors"]))
            except Exception as exc:
                models[family] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
                continue
            entry_row = {"seconds": round(peer.seconds, 2), "training_rows": len(X_train), "note": peer.note}
            if family == "tree":
                entry_row["leaves"] = int(peer.model.get_n_leaves())
            for d in DISTRIBUTIONS:
                entry_row[d] = _judge(kind, reference[d], peer.predict(X_eval[d]), tolerance)
            models[family] = entry_row
    elif peers:
        for family in peers:
            models.setdefault(family, {"skipped": "no surrogate, so no training rows to share"})

    for entry_row in models.values():
        if "production" in entry_row:
            entry_row["exact"] = all(entry_row[d]["disagreements"] == 0 for d in DISTRIBUTIONS)

    say("single-call timing")
    timed: dict[str, Callable[..., Any]] = {"original": fn}
    if surrogate is not None and "surrogate" in wanted:
        timed["surrogate"] = surrogate
    if rules is not None:
        timed["rules"] = rules.function
    us = single_call_us(timed, production_rows[:timing_rows])
    row["single_call_us"] = us
    row["single_call_ratio"] = {k: us[k] / us["original"] for k in us if k != "original"}
    return row


# -- output --------------------------------------------------------------------------------------

def _pct(model: dict[str, Any] | None, dist: str) -> str:
    if not model:
        return "-"
    if "skipped" in model:
        return "n/a"
    if "error" in model:
        return "error"
    r = model[dist]
    text = f"{100 * r['agreement']:.2f}"
    if r["disagreements"] == 0:
        return f"**{text}**"
    return text


def summary(results: dict[str, Any]) -> dict[str, Any]:
    rows = results["functions"]
    out = {}
    for m in MODELS:
        if not any(m in r["models"] for r in rows):  # not asked for (--models)
            continue
        judged = [r for r in rows if "production" in r["models"].get(m, {})]
        out[m] = {"exact": sum(bool(r["models"][m].get("exact")) for r in judged), "judged": len(judged),
                  "of": len(rows)}
    return out


def to_markdown(results: dict[str, Any]) -> str:
    lines = [f"Agreement (% of {results['n_eval']} inputs within tolerance; production / domain) after fit at "
             f"{results['budget_s']} s on the work clock and distill with defaults; **bold** = no disagreement.",
             "",
             "| function | surrogate | rules | tree | HGB | gplearn | rules lines / leaves | call us: original, "
             "surrogate (x), rules (x) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results["functions"]:
        m = r["models"]
        cells = [f"{_pct(m.get(k), 'production')} / {_pct(m.get(k), 'domain')}" for k in MODELS]
        rules = m.get("rules", {})
        size = f"{rules['lines']} / {rules['leaves']}" if "lines" in rules else "-"
        us, ratio = r.get("single_call_us", {}), r.get("single_call_ratio", {})
        call = f"{us.get('original', math.nan):.1f}"
        for k in ("surrogate", "rules"):
            call += f", {us[k]:.1f} ({ratio[k]:.1f}x)" if k in us else ", -"
        lines.append(f"| {r['function']} | " + " | ".join(cells) + f" | {size} | {call} |")
    s = summary(results)
    lines += ["", "Exact on both distributions: " + ", ".join(
        f"{k} {v['exact']}/{v['of']}" + ("" if v["judged"] == v["of"] else f" ({v['judged']} judged)")
        for k, v in s.items())]
    return "\n".join(lines)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.bool_):
        return bool(value)
    return str(value)


def _clean(value: Any) -> Any:
    """NaN/inf to strings so the file is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=None, help="fit budget in work seconds (default 60; "
                                                                    "peers get as many wall seconds)")
    parser.add_argument("--quick", action="store_true", help="5 s budgets and 2,000 evaluation inputs (smoke run)")
    parser.add_argument("--only", nargs="*", default=None, help="suite function names to run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS, metavar="MODEL",
                        help=f"models to build and judge (default all: {' '.join(MODELS)}); a peer needs the "
                             "surrogate's training rows, so it fits the surrogate even when that is not judged")
    parser.add_argument("--n-eval", type=int, default=None, help="inputs per distribution (default 20000)")
    parser.add_argument("--out", default=None,
                        help="results file name under bench/results (default exact.json, exact_quick.json)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    budget = args.budget or (5.0 if args.quick else 60.0)
    n_eval = args.n_eval or (2000 if args.quick else 20000)
    names = args.only or list(SUITE)
    for name in names:
        _entry(name)
    results: dict[str, Any] = {
        "bench": "exact", "quick": args.quick, "budget_s": budget, "budget_clock": "work", "seed": args.seed,
        "n_traces": 3000, "n_eval": n_eval, "models": list(args.models),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "torch_threads": 1},
        "gplearn": _gplearn_status(), "fairness": FAIRNESS, "functions": [],
    }
    started = time.monotonic()
    for name in names:
        print(f"[exact] {name} ...", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        results["functions"].append(run_one(name, budget, args.seed, n_eval=n_eval, progress=not args.quiet,
                                               models=args.models))
        print(f"[exact] {name} done in {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    results["wall_s"] = round(time.monotonic() - started, 1)
    results["summary"] = summary(results)
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / (args.out or ("exact_quick.json" if args.quick else "exact.json"))
    path.write_text(json.dumps(_clean(results), indent=2, default=_json_default))
    print(to_markdown(results))
    print(f"\nwrote {path}")
    return results


if __name__ == "__main__":
    main()
