"""Does fit's default find the best surrogate the budget can buy, on code it was not tuned on?
(issue 16)

For each function of bench/untuned_functions.py (13 legacy functions written for this
benchmark: kernels, tables, solvers, classifiers) and each seed: record
`generate(--traces, seed=100+seed)` as traces, `fit(fn, traces, schema=, tolerance=,
budget_s=, seed=, budget_clock=)` with defaults and nothing else, then train scikit-learn's MLP
and HistGradientBoosting on exactly the rows fit trained on (`surrogate.training_data_`: the
traces plus fit's oracle rows), each within the same budget in wall seconds, with the
surrogate's input and output encodings (bench/fidelity.py's `Baseline`, answering a value, a
label or a raise). All three are scored by `replace._fidelity.compare` (bench/fidelity.py's
`_score`: share within the function's tolerance; labels and exceptions exact) on fresh
production inputs `generate(--fresh, seed=10_000+seed)` and, separately, on as many uniform
whole-domain inputs (`schema.sample(--fresh, seed=20_000+seed)`).

Per function the summary gives each model's mean, min, max and std over the seeds, and the
verdict against each baseline, per distribution: "ahead" when neuroswap's mean exceeds the
baseline's by more than the larger seed spread (max - min over seeds of either model),
"behind" when it falls short by more than that, else "level"; `ahead_or_level` is true when
no verdict is "behind".

    python bench/untuned.py                      # full suite: 13 functions x seeds 0 1 2, 60 s (hours)
    python bench/untuned.py --quick              # 8 s budgets, 1,000 traces and inputs, seed 0
    python bench/untuned.py --only kepler bracket_tax --seeds 0 1 2 --budget 60
    python bench/untuned.py --budget 4 --seeds 0 --only kepler credit_decision --out untuned_smoke.json
    # the README's run, split over the two cores (one single-threaded process each) by function
    # and seed, then merged (a (function, seed) in two files is refused):
    python bench/untuned.py --only rgb_to_hsv bracket_tax kepler --out untuned_a.json &
    python bench/untuned.py --only credit_decision damped_oscillator parcel_tariff --out untuned_b.json
    # (each listed more functions and was stopped: a after kepler, b after parcel_tariff's
    # seed 1; the rest ran as:)
    python bench/untuned.py --only parcel_tariff --seeds 2 --out untuned_d.json
    python bench/untuned.py --only bmi_category rgb_to_lab electricity_bill loan_apr larger_root \
        triage_level haversine --seeds 0 --out untuned_c.json   # and --seeds 1 --out untuned_e.json
    python bench/untuned.py --only rgb_to_lab bmi_category triage_level larger_root --seeds 2 --out untuned_f.json
    python bench/untuned.py --only electricity_bill loan_apr haversine --seeds 2 --out untuned_g.json
    python bench/untuned.py --merge untuned_a.json untuned_b.json untuned_c.json untuned_d.json \
        untuned_e.json untuned_f.json untuned_g.json --out untuned.json

Writes bench/results/untuned.json (untuned_quick.json with --quick, or --out NAME) after every
fit, so a long run keeps what it has done, and the markdown table next to it (.md); prints the
table at the end. One line per fit on stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the repository root, not bench/ (bench/case_studies.py would shadow the package)
    sys.path.insert(0, str(ROOT))

from bench._merge import assume_options, drop_runs, refuse_measured_twice  # noqa: E402
from bench._options import described, fit_options as parse_fit_options  # noqa: E402
from bench.fidelity import Baseline, _score, _surrogate_outputs  # noqa: E402
from bench.untuned_functions import FUNCTIONS, Untuned  # noqa: E402
from probes import Schema, Traces  # noqa: E402
from replace import fit  # noqa: E402

MODELS = ("neuroswap", "sklearn_mlp", "sklearn_hgb")
BASELINES = {"sklearn_mlp": "mlp", "sklearn_hgb": "hgb"}
DISTRIBUTIONS = ("production", "domain")
FAIRNESS = (
    "fit runs with defaults only (schema, tolerance, budget_s, seed, budget_clock). The baselines are trained on "
    "exactly the rows fit trained on (surrogate.training_data_: the recorded traces plus fit's oracle rows), with "
    "the surrogate's input encoding and output encoding (warped, standardised regression targets), each within "
    "as much CPU time as fit took in that run (fit_cpu_seconds: its work-clock budget plus what it spends untimed, "
    "such as the exact-program search; never less than budget_s), measured as this process's CPU time, so machine "
    "load changes nothing (HGB stops earlier by early stopping; the MLP trains epoch by epoch until the budget or "
    "no progress). A raising outcome is a class (labels) or learned by an outcome classifier of the same "
    "family (values). All are scored alike: share of inputs within tolerance, labels and exceptions exact."
)


def _columns(schema: Schema, rows: Sequence[dict]) -> dict[str, np.ndarray]:
    return {f.name: np.asarray([r[f.name] for r in rows], dtype=object if f.kind == "categorical" else None)
            for f in schema.fields}


def _share(scored: dict[str, Any]) -> dict[str, Any]:
    keep = ("agreement", "outcome_agreement", "mean_error", "max_error")
    return {k: (None if isinstance(scored[k], float) and not math.isfinite(scored[k]) else float(scored[k]))
            for k in keep if k in scored}


def run_one(entry: Untuned, seed: int, *, budget_s: float, clock: str, n_traces: int, n_fresh: int,
            fit_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """One function x one seed: fit with defaults (or `fit_options`, a variant to compare), the
    two baselines on its rows, all scored on fresh production and whole-domain inputs."""
    fn, tolerance = entry.function, entry.tolerance
    schema = entry.schema()
    traces = Traces.from_calls(fn, entry.generate(n_traces, seed=100 + seed))
    rows = {"production": entry.generate(n_fresh, seed=10_000 + seed),
            "domain": schema.sample(n_fresh, seed=20_000 + seed)}
    refs = {d: Traces.from_calls(fn, r) for d, r in rows.items()}
    columns = {d: _columns(schema, r) for d, r in rows.items()}
    row: dict[str, Any] = {
        "function": entry.name, "seed": seed, "budget_s": budget_s, "clock": clock,
        "raise_share": {d: float(np.mean([e is not None for e in refs[d].errors])) for d in DISTRIBUTIONS},
    }
    started, cpu_started = time.monotonic(), time.process_time()
    try:
        surrogate = fit(fn, traces, schema=schema, tolerance=tolerance, budget_s=budget_s, seed=seed,
                        budget_clock=clock, progress=False, **(fit_options or {}))
    except Exception as exc:  # a failed fit is a result, not the end of the run
        row["error"] = f"{type(exc).__name__}: {exc}"[:500]
        row["fit_seconds"] = round(time.monotonic() - started, 2)
        return row
    row["fit_seconds"] = round(time.monotonic() - started, 2)
    row["fit_cpu_seconds"] = round(time.process_time() - cpu_started, 2)
    # the baselines get as much CPU time as fit took (its work-clock budget_s plus what it spends
    # untimed, e.g. the exact-program search), and never less than budget_s
    row["baseline_budget_cpu_s"] = baseline_budget = round(max(budget_s, row["fit_cpu_seconds"]), 2)
    kind = surrogate.output_encoder.kind
    data = surrogate.training_data_
    exact = surrogate.manifest.get("training", {}).get("exact_program") or {}
    row.update({"kind": kind, "architecture": surrogate.architecture, "oracle_calls": surrogate.metrics.oracle_calls,
                "training_rows": len(data["outputs"]),
                "exact_program": {k: exact.get(k) for k in ("used", "served_leaves", "traced_calls", "traced_work_s",
                                                             "seconds", "note") if k in exact}})
    models: dict[str, Any] = {"neuroswap": {"seconds": row["fit_seconds"]}}
    for d in DISTRIBUTIONS:
        out, errs = _surrogate_outputs(surrogate, columns[d])
        models["neuroswap"][d] = _share(_score(None, kind, refs[d], out, errs, tolerance))
    X_train = surrogate.encode(data["columns"])
    X_eval = {d: surrogate.encode(columns[d]) for d in DISTRIBUTIONS}
    for name, family in BASELINES.items():
        try:
            base = Baseline(family, kind, baseline_budget, seed, surrogate.output_encoder, clock="cpu").fit(
                X_train, list(data["outputs"]), list(data["errors"]))
        except Exception as exc:
            models[name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            continue
        models[name] = {"seconds": round(base.seconds, 2), "note": base.note}
        for d in DISTRIBUTIONS:
            out, errs = base.predict(X_eval[d])
            models[name][d] = _share(_score(None, kind, refs[d], out, errs, tolerance))
    row["models"] = models
    return row


def _stats(values: list[float]) -> dict[str, Any]:
    return {"mean": statistics.fmean(values), "min": min(values), "max": max(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0, "spread": max(values) - min(values),
            "n": len(values), "per_seed": values}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per function: each model's shares over seeds, and neuroswap's verdict against each baseline."""
    summary: dict[str, Any] = {}
    for name in dict.fromkeys(r["function"] for r in runs):
        mine = [r for r in runs if r["function"] == name and "models" in r]
        entry: dict[str, Any] = {"seeds": [r["seed"] for r in mine],
                                 "failed_seeds": [r["seed"] for r in runs if r["function"] == name and "models" not in r],
                                 "fit_seconds": _stats([r["fit_seconds"] for r in mine]) if mine else None,
                                 "fit_cpu_seconds": _stats([r["fit_cpu_seconds"] for r in mine]) if mine else None,
                                 "training_rows": _stats([float(r["training_rows"]) for r in mine]) if mine else None}
        for model in MODELS:
            entry[model] = {}
            for d in DISTRIBUTIONS:
                values = [r["models"][model][d]["agreement"] for r in mine
                          if d in r["models"].get(model, {}) and r["models"][model][d]["agreement"] is not None]
                entry[model][d] = _stats(values) if values else None
        verdict: dict[str, Any] = {}
        for d in DISTRIBUTIONS:
            verdict[d] = {}
            ours = entry["neuroswap"][d]
            for base in BASELINES:
                theirs = entry[base][d]
                if ours is None or theirs is None:
                    verdict[d][base] = "missing"
                    continue
                margin = max(ours["spread"], theirs["spread"])
                diff = ours["mean"] - theirs["mean"]
                verdict[d][base] = "ahead" if diff > margin else ("behind" if diff < -margin else "level")
        entry["verdict"] = verdict
        entry["ahead_or_level"] = bool(mine) and all(v in ("ahead", "level") for d in verdict.values()
                                                       for v in d.values())
        entry["ahead_or_level_production"] = bool(mine) and all(v in ("ahead", "level")
                                                                  for v in verdict["production"].values())
        summary[name] = entry
    return summary


def _pct(stats: dict[str, Any] | None) -> str:
    if not stats:
        return "-"
    text = f"{100 * stats['mean']:.2f}"
    if stats["n"] > 1:
        text += f" [{100 * stats['min']:.2f}, {100 * stats['max']:.2f}]"
    return text


def to_markdown(results: dict[str, Any]) -> str:
    summary = results["summary"]
    lines = [
        f"Share within tolerance (%, mean over seeds {results['seeds']} [min, max]) after fit with "
        f"{described(results.get('fit_options') or {})} at "
        f"{results['budget_s']:g} s ({results['clock']} clock); baselines on fit's rows, each within the CPU time fit took (fit s). "
        f"{results['n_fresh']} fresh production and {results['n_fresh']} whole-domain inputs per seed; "
        f"{results['n_traces']} traces.",
        "",
        "| function | kind | tolerance | dist | neuroswap | MLP | HGB | verdict vs MLP / HGB | fit s | rows |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in summary.items():
        entry = FUNCTIONS[name]
        tol = entry.tolerance
        tol_text = "exact" if tol.abs == 0 and tol.rel == 0 else f"abs {tol.abs:g}" + (f", rel {tol.rel:g}" if tol.rel else "")
        for d in DISTRIBUTIONS:
            v = s["verdict"][d]
            fit_s = f"{s['fit_cpu_seconds']['mean']:.0f}" if s.get("fit_cpu_seconds") and d == "production" else ""
            rows = f"{s['training_rows']['mean']:.0f}" if s["training_rows"] and d == "production" else ""
            lines.append(f"| {name if d == 'production' else ''} | {entry.kind if d == 'production' else ''} | "
                         f"{tol_text if d == 'production' else ''} | {d} | {_pct(s['neuroswap'][d])} | "
                         f"{_pct(s['sklearn_mlp'][d])} | {_pct(s['sklearn_hgb'][d])} | "
                         f"{v['sklearn_mlp']} / {v['sklearn_hgb']} | {fit_s} | {rows} |")
    n = len(summary)
    ok = sum(s["ahead_or_level"] for s in summary.values())
    ok_prod = sum(s["ahead_or_level_production"] for s in summary.values())
    lines += ["", f"neuroswap ahead or level on both distributions: {ok} of {n}; on production inputs: {ok_prod} of {n}. "
                  "Verdict: ahead/behind when the difference of means exceeds the larger seed spread (max - min) of "
                  "the two models, else level."]
    single = [k for k, s in summary.items() if len(s["seeds"]) < 2]
    if single:
        lines.append(f"One seed only for {', '.join(single)}: no seed spread there, so any difference reads as ahead "
                     "or behind; run 3 seeds for a verdict.")
    failed = {k: s["failed_seeds"] for k, s in summary.items() if s["failed_seeds"]}
    if failed:
        lines.append(f"Fits that failed (seeds): {failed}")
    return "\n".join(lines) + "\n"


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return _clean(value.item())
    return value


def merge(paths: list[Path], out: Path, drop: list[str] | None = None,
          assume: list[str] | None = None) -> dict[str, Any]:
    """One results file from several with the same settings (a run split over processes, by
    function or by seed); a (function, seed) measured twice is refused, not silently averaged.
    `drop`: FILE:FUNCTION:SEED runs left out (measured again in another file); `assume`:
    FILE:NAME=VALUE, an option a file ran under as its commit's default without naming it. The
    merged file lists both."""
    names = [p.name for p in paths]
    parts = assume_options(names, [json.loads(p.read_text()) for p in paths], list(assume or []))
    parts = drop_runs(names, parts, list(drop or []), lambda run: f"{run['function']}:{run['seed']}",
                      "FILE:FUNCTION:SEED")
    first = parts[0]
    for key in ("budget_s", "clock", "n_traces", "n_fresh"):
        if any(part[key] != first[key] for part in parts):
            raise SystemExit(f"--merge: {key} differs between {', '.join(names)}")
    if any((part.get("fit_options") or {}) != (first.get("fit_options") or {}) for part in parts):  # older files: none
        raise SystemExit(f"--merge: fit_options differs between {', '.join(names)} "
                         f"({[part.get('fit_options') or {} for part in parts]}); --assume names an option a file "
                         f"ran under as its commit's default")
    runs = [run for part in parts for run in part["runs"]]
    refuse_measured_twice((run["function"], run["seed"]) for run in runs)
    results = {**first, "fit_options": first.get("fit_options") or {},
               "seeds": sorted({run["seed"] for run in runs}),
               "functions": {k: v for part in parts for k, v in part["functions"].items()
                             if any(run["function"] == k for run in runs)},
               "runs": runs, "merged_from": names,
               **({"dropped": list(drop)} if drop else {}), **({"assumed": list(assume)} if assume else {}),
               "wall_s": max(part.get("wall_s", 0.0) for part in parts)}
    results["summary"] = summarize(results["runs"])
    out.write_text(json.dumps(_clean(results), indent=2, default=str))
    out.with_suffix(".md").write_text(to_markdown(results))
    print(to_markdown(results))
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME", help=f"functions: {', '.join(FUNCTIONS)}")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="fit seeds (default 0 1 2; quick: 0)")
    parser.add_argument("--budget", type=float, default=None, help="fit budget (baselines: the CPU time fit took, at least this), s "
                                                                   "(default 60; quick: 8)")
    parser.add_argument("--clock", choices=("work", "wall"), default="work", help="fit's budget clock")
    parser.add_argument("--traces", type=int, default=None, help="recorded production calls (default 3000)")
    parser.add_argument("--fresh", type=int, default=None, help="scoring inputs per distribution (default 5000)")
    parser.add_argument("--out", default=None, help="file name under bench/results (default untuned.json)")
    parser.add_argument("--quick", action="store_true", help="8 s budgets, 1,000 traces and inputs, seed 0")
    parser.add_argument("--fit-option", action="append", default=[], metavar="NAME=VALUE",
                        help="an option away from the defaults, e.g. round_baseline=same_time (a variant to compare)")
    parser.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                        help="only merge results files of runs split over processes (e.g. one per core) into --out")
    parser.add_argument("--drop", nargs="+", default=[], metavar="FILE:FUNCTION:SEED",
                        help="with --merge: runs of one file to leave out (measured again in another file)")
    parser.add_argument("--assume", nargs="+", default=[], metavar="FILE:NAME=VALUE",
                        help="with --merge: an option a file ran under without naming it (its commit's default)")
    args = parser.parse_args(argv)
    if args.merge:
        return merge([ROOT / "bench" / "results" / name for name in args.merge],
                     ROOT / "bench" / "results" / (args.out or "untuned.json"), args.drop, args.assume)
    if args.drop or args.assume:
        parser.error("--drop and --assume only go with --merge")
    unknown = [n for n in args.only or [] if n not in FUNCTIONS]
    if unknown:
        parser.error(f"unknown function(s) {unknown}; known: {', '.join(FUNCTIONS)}")
    quick = args.quick
    seeds = args.seeds if args.seeds is not None else ([0] if quick else [0, 1, 2])
    budget = args.budget if args.budget is not None else (8.0 if quick else 60.0)
    n_traces = args.traces if args.traces is not None else (1000 if quick else 3000)
    n_fresh = args.fresh if args.fresh is not None else (1000 if quick else 5000)
    names = args.only or list(FUNCTIONS)
    options = parse_fit_options(args.fit_option, parser)
    import torch

    torch.set_num_threads(1)
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / (args.out or ("untuned_quick.json" if quick else "untuned.json"))
    results: dict[str, Any] = {
        "issue": 16, "budget_s": budget, "clock": args.clock, "seeds": seeds, "n_traces": n_traces,
        "n_fresh": n_fresh, "quick": quick, "fit_options": options,
        "seeding": "traces generate(n, seed=100+s); production scoring generate(n, seed=10000+s); domain scoring "
                   "schema.sample(n, seed=20000+s); fit and baselines seed=s",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "torch_threads": 1},
        "fairness": FAIRNESS,
        "functions": {n: {"kind": FUNCTIONS[n].kind, "description": FUNCTIONS[n].description,
                          "tolerance": FUNCTIONS[n].tolerance.to_dict()} for n in names},
        "runs": [], "summary": {},
    }
    started = time.monotonic()
    for name in names:
        for seed in seeds:
            t0 = time.monotonic()
            row = run_one(FUNCTIONS[name], seed, budget_s=budget, clock=args.clock, n_traces=n_traces, n_fresh=n_fresh,
                          fit_options=options)
            results["runs"].append(row)
            if "models" in row:
                m = row["models"]
                cells = "  ".join(
                    f"{k.replace('sklearn_', '')} " + "/".join(
                        "-" if m[k].get(d) is None or m[k][d]["agreement"] is None else f"{m[k][d]['agreement']:.4f}"
                        for d in DISTRIBUTIONS) for k in MODELS)
                msg = f"fit {row['fit_seconds']:.1f} s, {row['training_rows']} rows; prod/domain {cells}"
            else:
                msg = f"fit failed: {row['error']}"
            print(f"[untuned] {name} seed {seed}: {msg} ({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)
            results["summary"] = summarize(results["runs"])
            results["wall_s"] = round(time.monotonic() - started, 1)
            path.write_text(json.dumps(_clean(results), indent=2, default=str))
    markdown = to_markdown(results)
    path.with_suffix(".md").write_text(markdown)
    print(markdown)
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return results


if __name__ == "__main__":
    main()
