"""Does feeding mined edge cases back into training make a surrogate better where it was worst?

A controlled comparison. For each function and seed: fit a surrogate (work clock, so a seed
gives one surrogate at any load), mine its edge cases, then fit again with the same seed and
budget twice: once with `hard_cases=` the mined cases (a diverse subset of at most 100), and once
with as many ordinary domain draws in their place (the control: any change of the training rows
moves a fit; the control says how much of the difference is that, and how much is mining).
Each of the three surrogates is then judged the same way:
- on the mined cases themselves (were they learned?);
- by a fresh mining run with another seed (the max error an auditor finds next);
- by verify on the domain (derandomised, fixed examples): agreement and max error.

    python bench/mine_refit.py            # toy tariff, insurance_class, loan_schedule, shipping_fee; 3 seeds
    python bench/mine_refit.py --quick    # the tariff only, 2 seeds, small budgets

Writes bench/results/mine_refit.json.
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from case_studies import insurance_class as ic  # noqa: E402
from case_studies import loan_schedule as ls  # noqa: E402
from case_studies import shipping_fee as sf  # noqa: E402
from probes import Comparison, Schema, Tolerance, Traces, mine_edge_cases, verify  # noqa: E402


def tariff(x: float, y: float, kind: str) -> float:
    """A toy tariff: linear in x, steps at x = 0.6, y = 0.3 and on a circle, one flat kind."""
    if kind == "flat":
        return 1.0
    base = 2.0 * x
    if x > 0.6:
        base += 1.0
    if y > 0.3:
        base += 0.5
    if x * x + y * y > 1.2:  # a curved boundary in the corner
        base -= 0.75
    return base


def tariff_band(n: int = 400, seed: int = 99) -> list[dict[str, Any]]:
    """Inputs within 1e-6 .. 3e-2 of the two steps, both sides: where a smooth model is wrong."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        d = float(10 ** rng.uniform(-6, math.log10(3e-2))) * (1 if i % 2 else -1)
        kind = ["a", "b"][int(rng.integers(0, 2))]
        if i % 4 < 2:
            out.append({"x": 0.6 + d, "y": float(rng.uniform(0, 1)), "kind": kind})
        else:
            out.append({"x": float(rng.uniform(0, 1)), "y": 0.3 + d, "kind": kind})
    return out


CASES: dict[str, dict[str, Any]] = {
    "tariff": {"fn": tariff, "specs": {"x": (0.0, 1.0), "y": (0.0, 1.0), "kind": ["a", "b", "flat"]},
               "tolerance": Tolerance(abs=0.05), "traces": None, "band": tariff_band, "seeds": 3, "fit_budget": 6.0},
    "insurance_class": {"fn": ic.risk_class, "specs": ic.SPECS, "tolerance": ic.TOLERANCE,
                        "traces": ic.generate_inputs, "band": None, "output": ic.OUTPUT, "seeds": 1, "fit_budget": 20.0},
    "loan_schedule": {"fn": ls.apr, "specs": ls.SPECS, "tolerance": ls.TOLERANCE, "traces": ls.generate_inputs,
                      "band": None, "seeds": 1, "fit_budget": 20.0},
    "shipping_fee": {"fn": sf.shipping_fee, "specs": sf.SPECS, "tolerance": sf.TOLERANCE,
                     "traces": sf.generate_inputs, "band": None, "seeds": 1, "fit_budget": 20.0},
}


def _work_clock(fn: Any) -> dict[str, Any]:
    """budget_clock="work" where the function takes it (verify and mining gain it too)."""
    import inspect

    return {"budget_clock": "work"} if "budget_clock" in inspect.signature(fn).parameters else {}


def evaluate(fn: Any, surrogate: Any, schema: Schema, tolerance: Tolerance, *, max_examples: int,
             mine_budget: float, hard: list[dict[str, Any]], band: Any = None) -> dict[str, Any]:
    policy = Comparison(tolerance)
    on_hard = [policy.check(fn, surrogate, kw) for kw in hard]
    report = verify(fn, surrogate, schema=schema, tolerance=tolerance, max_examples=max_examples, seed=1234,
                    database=None, **_work_clock(verify))
    mined = mine_edge_cases(fn, surrogate, schema=schema, tolerance=tolerance, budget_s=mine_budget, seed=4321,
                            **_work_clock(mine_edge_cases))
    band_stats: dict[str, Any] = {}
    if band is not None:
        verdicts = [policy.check(fn, surrogate, kw) for kw in band()]
        band_stats = {"band_agreement": sum(v.agree for v in verdicts) / len(verdicts),
                      "band_max_error": max(v.error for v in verdicts)}
    return {
        "hard_still_failing": sum(not v.agree for v in on_hard),
        "hard_max_error": max((v.error for v in on_hard), default=0.0),
        **band_stats,
        "domain_agreement": report.views["domain"].agreement,
        "verify_max_error": report.max_error,
        "fresh_mined_cases": len(mined),
        "fresh_mined_max_error": mined.max_error if len(mined) else 0.0,
        "fit_holdout_agreement": surrogate.metrics.agreement,
    }


def _finite(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else str(value)


def _g(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else str(value)


def _median(values: list[float]) -> float:
    return float(np.median(np.asarray(values, dtype=float)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--fit-budget", type=float, default=None)
    parser.add_argument("--out", default=None, help="result file name under bench/results/")
    parser.add_argument("--hard-limit", type=int, default=100,
                        help="refit on a diverse subset of this many mined cases (EdgeCases.inputs(limit=))")
    args = parser.parse_args()
    from replace import fit

    only = args.only.split(",") if args.only else (["tariff"] if args.quick else list(CASES))
    mine_budget = 3.0 if args.quick else 8.0
    max_examples = 300 if args.quick else 1000
    results: dict[str, Any] = {"settings": {"mine_budget_s": mine_budget, "max_examples": max_examples,
                                            "quick": args.quick, "hard_limit": args.hard_limit,
                                            "fit_clock": "work",
                                            "mine_clock": _work_clock(mine_edge_cases).get("budget_clock", "wall")},
                               "functions": {}, "summary": {}}
    started = time.perf_counter()
    for name, case in CASES.items():
        if name not in only:
            continue
        seeds = list(range(args.seeds or (2 if args.quick else 3)))
        fit_budget = args.fit_budget or (min(4.0, case["fit_budget"]) if args.quick else case["fit_budget"])
        fn = case["fn"]
        schema = Schema.from_function(fn, output=case.get("output"), **case["specs"])
        traces = Traces.from_calls(fn, case["traces"](2000, seed=7)) if case["traces"] else None
        rows = []
        for seed in seeds:
            t0 = time.perf_counter()
            common = dict(schema=schema, tolerance=case["tolerance"], budget_s=fit_budget, seed=seed, progress=False,
                          budget_clock="work")
            first = fit(fn, traces, **common)
            mined = mine_edge_cases(fn, first, schema=schema, tolerance=case["tolerance"], budget_s=mine_budget,
                                    seed=seed, **_work_clock(mine_edge_cases))
            hard = mined.inputs(limit=args.hard_limit)
            control_rows = schema.rows(schema.sample_columns(len(hard), rng=np.random.default_rng(10_000 + seed)))
            refit = fit(fn, traces, hard_cases=hard, **common) if hard else first
            control = fit(fn, traces, hard_cases=control_rows, **common) if hard else first
            judged = {label: {k: _finite(v) for k, v in evaluate(
                fn, model, schema, case["tolerance"], max_examples=max_examples, mine_budget=mine_budget,
                hard=hard, band=case["band"]).items()}
                for label, model in (("first", first), ("refit_mined", refit), ("refit_control", control))}
            row = {"seed": seed, "fit_budget_s": fit_budget, "hard_cases": len(hard), "mined_by_layer": mined.by_layer,
                   "hard_cases_skipped_by_fit": refit.manifest["training"].get("hard_cases_skipped") if hard else 0,
                   "seconds": round(time.perf_counter() - t0, 1), **judged}
            rows.append(row)
            f, r, c = judged["first"], judged["refit_mined"], judged["refit_control"]
            print(f"{name:15s} seed {seed}: {len(hard):3d} cases | still failing {f['hard_still_failing']} -> "
                  f"{r['hard_still_failing']} (control {c['hard_still_failing']}) | next audit's max error "
                  f"{_g(f['fresh_mined_max_error'])} -> {_g(r['fresh_mined_max_error'])} (control "
                  f"{_g(c['fresh_mined_max_error'])}) | domain agreement {f['domain_agreement']:.4f} -> "
                  f"{r['domain_agreement']:.4f} (control {c['domain_agreement']:.4f})", flush=True)
        results["functions"][name] = rows

        def col(label: str, key: str) -> list[float]:
            return [float(r[label][key]) for r in rows]

        results["summary"][name] = {
            label: {"median_hard_still_failing": _median(col(label, "hard_still_failing")),
                    "median_fresh_mined_max_error": _median(col(label, "fresh_mined_max_error")),
                    "median_verify_max_error": _median(col(label, "verify_max_error")),
                    "median_domain_agreement": _median(col(label, "domain_agreement"))}
            for label in ("first", "refit_mined", "refit_control")}
        results["summary"][name]["seeds_where_mined_refit_lowered_max_error"] = sum(
            float(r["refit_mined"]["fresh_mined_max_error"]) < float(r["first"]["fresh_mined_max_error"]) for r in rows)
        results["summary"][name]["seeds"] = len(rows)
    results["wall_s"] = round(time.perf_counter() - started, 1)
    print("\n| function | seeds | mined cases still failing: first / refit / control "
          "| next audit's max error (median): first / refit / control | domain agreement (median) |")
    print("|---|---|---|---|---|")
    for name, summary in results["summary"].items():
        f, r, c = summary["first"], summary["refit_mined"], summary["refit_control"]
        print(f"| {name} | {summary['seeds']} | {f['median_hard_still_failing']:.0f} / {r['median_hard_still_failing']:.0f}"
              f" / {c['median_hard_still_failing']:.0f} | {f['median_fresh_mined_max_error']:.4g} / "
              f"{r['median_fresh_mined_max_error']:.4g} / {c['median_fresh_mined_max_error']:.4g} | "
              f"{f['median_domain_agreement']:.4f} / {r['median_domain_agreement']:.4f} / "
              f"{c['median_domain_agreement']:.4f} |")
    out = ROOT / "bench" / "results" / (args.out or ("mine_refit_quick.json" if args.quick else "mine_refit.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
