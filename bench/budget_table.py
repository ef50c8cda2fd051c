"""More budget, a better surrogate? fit with its defaults alone (each study's own FIT_OPTIONS
aside, e.g. blackscholes's log_inputs) at several budgets and seeds on the work clock, scored on
fresh production inputs as bench/fidelity.py scores them (share within tolerance, AxBench error).
For each function: the mean and the spread over seeds per budget, and whether the share within
tolerance is non-decreasing in the budget beyond that spread (the seed noise).

    python bench/budget_table.py --only blackscholes inversek2j --budgets 45 180 --seeds 0 1 2
    python bench/budget_table.py --budgets 45 90 180 --seeds 0 1 2 --baselines   # with sklearn's MLP and HGB
    python bench/budget_table.py --merge budget_table_45.json budget_table_180.json --out budget_table.json
Writes bench/results/budget_table.json (after every fit, so a long run keeps what it did) and .md;
--merge joins runs split over processes (one budget per core) into one table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._merge import assume_options, drop_runs, refuse_measured_twice  # noqa: E402
from bench._options import described, fit_options as parse_fit_options  # noqa: E402
from bench.fidelity import STUDIES, run_study  # noqa: E402


def _pairwise(per_budget: dict[str, Any], budgets: list[float], metric: str, higher_is_better: bool) -> dict[str, Any]:
    """Each larger budget against the next smaller one: the noise is the smaller budget's spread over
    seeds (a large budget whose own seeds scatter must not widen the yardstick that judges it); the
    mean must be no worse beyond it, and so must every seed measured at both (a seed whose shape
    choice goes wrong at the larger budget is a regression even when the mean improves)."""
    present = [b for b in budgets if per_budget.get(str(b), {}).get(metric)]
    mean_ok, worse_seeds, noise = True, [], 0.0
    sign = 1.0 if higher_is_better else -1.0
    for small, large in zip(present, present[1:]):
        a, b = per_budget[str(small)], per_budget[str(large)]
        spread = a[metric]["max"] - a[metric]["min"]
        noise = max(noise, spread)
        if sign * (b[metric]["mean"] - a[metric]["mean"]) < -spread:
            mean_ok = False
        before = dict(zip(a["seeds"], a[metric]["values"]))
        for seed, value in zip(b["seeds"], b[metric]["values"]):
            if seed in before and sign * (value - before[seed]) < -spread:
                worse_seeds.append({"seed": seed, "from_budget": small, "to_budget": large,
                                    "before": before[seed], "after": value})
    return {"noise": noise, "mean_ok": mean_ok, "worse_seeds": worse_seeds, "ok": mean_ok and not worse_seeds}


def summary(runs: list[dict[str, Any]], budgets: list[float]) -> dict[str, Any]:
    """Per function: per budget the mean, min and max over seeds (share within tolerance and the
    AxBench error where there is one), and whether each larger budget is no worse than the next
    smaller one beyond that one's seed spread, in the mean and for every seed (`_pairwise`)."""
    out: dict[str, Any] = {}
    for function in sorted({r["function"] for r in runs}):
        per_budget = {}
        for b in budgets:
            rows = sorted((r for r in runs if r["function"] == function and r["budget_s"] == b), key=lambda r: r["seed"])
            if not rows:
                continue
            entry: dict[str, Any] = {"seeds": [r["seed"] for r in rows]}
            for metric in ("agreement", "axbench_error"):
                values = [r["neuroswap"][metric] for r in rows if metric in r["neuroswap"]]
                if values:
                    entry[metric] = {"mean": float(np.mean(values)), "min": float(min(values)),
                                     "max": float(max(values)), "values": values}
            per_budget[str(b)] = entry
        agreement = _pairwise(per_budget, budgets, "agreement", higher_is_better=True)
        entry = {"budgets": per_budget, "seed_noise_agreement": agreement["noise"],
                 "non_decreasing_beyond_noise": agreement["ok"], "agreement_worse_seeds": agreement["worse_seeds"]}
        if all(per_budget[str(b)].get("axbench_error") for b in budgets if str(b) in per_budget) and per_budget:
            ax = _pairwise(per_budget, budgets, "axbench_error", higher_is_better=False)
            entry.update(seed_noise_axbench=ax["noise"], axbench_non_increasing_beyond_noise=ax["ok"],
                         axbench_worse_seeds=ax["worse_seeds"])
        out[function] = entry
    return out


def to_markdown(results: dict[str, Any]) -> str:
    budgets = results["budgets"]
    options = results.get("fit_options") or {}
    setting = "fit " + described(options)
    lines = [f"{setting}, work clock, seeds {results['seeds']}: mean [min, max] over seeds on "
             f"{results['n_fresh']} fresh production inputs", "",
             "| function | " + " | ".join(f"{b:g} s" for b in budgets) + " | seed noise | no worse with more budget |",
             "|---|" + "---|" * (len(budgets) + 2)]
    for function, s in results["summary"].items():
        for metric, label in (("agreement", "within tolerance"), ("axbench_error", "AxBench error")):
            cells = []
            for b in budgets:
                e = s["budgets"].get(str(b), {}).get(metric)
                cells.append("" if e is None else f"{100 * e['mean']:.2f}% [{100 * e['min']:.2f}, {100 * e['max']:.2f}]")
            if not any(cells):
                continue
            noise = s["seed_noise_agreement"] if metric == "agreement" else s.get("seed_noise_axbench", 0.0)
            verdict = s["non_decreasing_beyond_noise"] if metric == "agreement" else s.get(
                "axbench_non_increasing_beyond_noise")
            worse = s.get("agreement_worse_seeds" if metric == "agreement" else "axbench_worse_seeds") or []
            why = "" if not worse else " (" + ", ".join(
                f"seed {w['seed']}: {100 * w['before']:.2f} -> {100 * w['after']:.2f} at {w['to_budget']:g} s"
                for w in worse) + ")"
            lines.append(f"| {function} ({label}) | " + " | ".join(cells) + f" | {100 * noise:.2f} pts | "
                         f"{'yes' if verdict else 'NO'}{why} |")
    lines += ["", "Seed noise: the spread (max - min over seeds) at the smaller budget of each pair; a larger "
                  "budget is no worse when its mean, and each seed measured at both, is no worse than the smaller "
                  "budget's beyond that spread."]
    return "\n".join(lines + baselines_markdown(results.get("runs") or [])) + "\n"


def baselines_markdown(runs: list[dict[str, Any]]) -> list[str]:
    """Runs made with --baselines, one line each: neuroswap, sklearn's MLP and HGB on fit's rows
    (within tolerance, and AxBench error where the study has one), and which was the most faithful."""
    rows = sorted((r for r in runs if "sklearn_mlp" in r), key=lambda r: (r["function"], r["budget_s"], r["seed"]))
    if not rows:
        return []
    models = ("neuroswap", "sklearn_mlp", "sklearn_hgb")

    def cell(model: dict[str, Any]) -> str:
        text = f"{100 * model['agreement']:.2f}%"
        return text + (f" ({100 * model['axbench_error']:.2f}% AxBench)" if "axbench_error" in model else "")

    lines = ["", "scikit-learn's baselines on fit's rows, each within the baselines' time (cpu: as much of the "
                 "process's CPU time as fit took; wall: budget_s of wall time, the rule before --baseline-clock):", "",
             "| function | budget | seed | neuroswap | sklearn MLP | sklearn HGB | baselines' time | most faithful |",
             "|---|---|---|---|---|---|---|---|"]
    alone = level = 0
    for r in rows:
        given = r.get("baseline_budget") or {"clock": "wall", "seconds": float(r["budget_s"])}
        best = max(r[m]["agreement"] for m in models)
        top = [m for m in models if r[m]["agreement"] == best]  # a tie is level, whatever the mean error says
        alone += top == ["neuroswap"]
        level += len(top) > 1 and "neuroswap" in top
        lines.append(f"| {r['function']} | {float(r['budget_s']):g} s | {r['seed']} | "
                     + " | ".join(cell(r[m]) for m in models)
                     + f" | {given['seconds']:g} s {given['clock']} | {' = '.join(top)} |")
    lines += ["", f"neuroswap the most faithful alone in {alone} of {len(rows)} runs, level with the best in {level}, "
                  f"behind in {len(rows) - alone - level} (share within tolerance)."]
    return lines


#: options that play no part in a run whose log shows their stage never acted: round_baseline only
#: judges a refinement round, so a run in which no round was judged is the same under any value
_UNEXERCISED = {"round_baseline": lambda run: not any("kept" in r for r in run["neuroswap"].get("rounds") or [])}


def _merged_options(parts: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """The one setting of the files' fit options. Files must agree, except that a file without
    an option in `_UNEXERCISED` joins one with it when none of its runs reached the stage the option
    acts on (read from each run's log, not assumed)."""
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in (part.get("fit_options") or {}).items():
            if merged.setdefault(key, value) != value:
                raise SystemExit(f"--merge: the files differ in fit option {key} ({merged[key]!r}, {value!r})")
    for part, name in zip(parts, names):
        own = part.get("fit_options") or {}
        for key in merged:
            if key in own:
                continue
            unexercised = _UNEXERCISED.get(key)
            acted = [f"{r['function']} {r['budget_s']:g} s seed {r['seed']}" for r in part["runs"]
                     if unexercised is None or not unexercised(r)]
            if acted:
                raise SystemExit(f"--merge: {name} was run without {key}={merged[key]!r}, which would have acted in "
                                 f"{', '.join(acted)}; merge runs of one setting")
    return merged


def _run_key(run: dict[str, Any]) -> str:
    return f"{run['function']}:{float(run['budget_s']):g}:{run['seed']}"


def merge(names: list[str], out_name: str, drop: list[str] | None = None,
          assume: list[str] | None = None) -> dict[str, Any]:
    """One table from results files of runs split over processes; a (function, budget, seed)
    measured twice is refused, not silently averaged. `drop`: FILE:FUNCTION:BUDGET:SEED runs left
    out of one file (measured again in another, under another setting); each must exist, and the
    table's file lists them. `assume`: FILE:NAME=VALUE, an option a file ran under as the default
    of its commit (listed in the table's file too)."""
    parts = [json.loads((ROOT / "bench" / "results" / n).read_text()) for n in names]
    parts = assume_options(names, parts, list(assume or []))
    drop = list(drop or [])
    parts = drop_runs(names, parts, drop, _run_key, "FILE:FUNCTION:BUDGET:SEED")
    options = _merged_options(parts, names)
    for key in ("n_traces", "n_fresh", "clock"):
        values = {json.dumps(p.get(key, {}), sort_keys=True) for p in parts}
        if len(values) > 1:
            raise SystemExit(f"--merge: the files differ in {key} ({sorted(values)}); merge runs of one setting")
    runs = [r for p in parts for r in p["runs"]]
    refuse_measured_twice((r["function"], r["budget_s"], r["seed"]) for r in runs)
    budgets = sorted({float(r["budget_s"]) for r in runs})
    results = {"budgets": budgets, "seeds": sorted({r["seed"] for r in runs}), "n_traces": parts[0]["n_traces"],
               "n_fresh": parts[0]["n_fresh"], "clock": parts[0]["clock"], "fit_options": options,
               "merged_from": names, **({"dropped": drop} if drop else {}), **({"assumed": list(assume)} if assume else {}),
               "runs": runs,
               "summary": summary(runs, budgets)}
    out = ROOT / "bench" / "results" / out_name
    out.write_text(json.dumps(results, indent=1, default=str))
    table = to_markdown(results)
    out.with_suffix(".md").write_text(table)
    print(table)
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", default=None, help="study module names (default: all five)")
    parser.add_argument("--budgets", type=float, nargs="+", default=[45.0, 90.0, 180.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--traces", type=int, default=4000)
    parser.add_argument("--fresh", type=int, default=4000)
    parser.add_argument("--baselines", action="store_true", help="also sklearn's MLP and HGB on fit's rows")
    parser.add_argument("--baseline-clock", choices=("cpu", "wall"), default="cpu",
                        help="the baselines' time: cpu = as much CPU time as fit took (the untuned suite's rule, "
                             "load-proof); wall = budget_s of wall time (loan_schedule's file of 085e01c)")
    parser.add_argument("--fit-option", action="append", default=[], metavar="NAME=VALUE",
                        help="an option away from the defaults, e.g. rounds=0 (a variant to compare, not the table)")
    parser.add_argument("--out", default="budget_table.json")
    parser.add_argument("--merge", nargs="+", metavar="JSON", help="only merge results files under bench/results into --out")
    parser.add_argument("--drop", nargs="+", default=[], metavar="FILE:FUNCTION:BUDGET:SEED",
                        help="with --merge: runs of one file to leave out (measured again in another file)")
    parser.add_argument("--assume", nargs="+", default=[], metavar="FILE:NAME=VALUE",
                        help="with --merge: an option a file ran under without naming it (its commit's default)")
    args = parser.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out, args.drop, args.assume)
    import torch

    torch.set_num_threads(1)
    fit_options = parse_fit_options(args.fit_option, parser)
    out = ROOT / "bench" / "results" / args.out
    results: dict[str, Any] = {"budgets": args.budgets, "seeds": args.seeds, "n_traces": args.traces,
                               "n_fresh": args.fresh, "clock": "work", "fit_options": fit_options,
                               **({"baseline_clock": args.baseline_clock} if args.baselines else {}),
                               "runs": [], "summary": {}}
    for module_name, fn_name in STUDIES:
        if args.only and module_name not in args.only:
            continue
        for budget in args.budgets:
            for seed in args.seeds:
                started = time.monotonic()
                row = run_study(module_name, fn_name, n_traces=args.traces, n_fresh=args.fresh, budget_s=budget,
                                seed=seed, progress=False, clock="work", baselines=args.baselines,
                                baseline_clock=args.baseline_clock, fit_options=fit_options)
                row.update(budget_s=budget, seed=seed, wall_s=round(time.monotonic() - started, 1))
                results["runs"].append(row)
                ns = row["neuroswap"]
                print(f"[budget] {module_name} {budget:g} s seed {seed}: within tol {ns['agreement']:.4f}"
                      + (f", AxBench {ns['axbench_error']:.4%}" if "axbench_error" in ns else "")
                      + f" ({ns['architecture']}, {row['wall_s']} s wall)", file=sys.stderr, flush=True)
                results["summary"] = summary(results["runs"], args.budgets)
                out.write_text(json.dumps(results, indent=1, default=str))
    out.with_suffix(".md").write_text(to_markdown(results))
    print(to_markdown(results))
    return results


if __name__ == "__main__":
    main()
