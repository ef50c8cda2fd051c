"""Does feeding mined edge cases back into training make a surrogate better where it was worst?

For each function: fit a surrogate (seed s, budget B), mine its edge cases, fit again with the
same seed and budget plus `hard_cases=cases.inputs()`, and compare the two surrogates on the
same evaluation: verify (domain and search views, fixed seed) and a fresh mining run with
another seed (its max error and the number of disagreements it finds).

    python bench/mine_refit.py            # toy tariff (3 seeds), insurance_class, loan_schedule, shipping_fee
    python bench/mine_refit.py --quick    # the tariff only, 1 seed, small budgets

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


def evaluate(fn: Any, surrogate: Any, schema: Schema, tolerance: Tolerance, *, max_examples: int,
             mine_budget: float, band: Any = None) -> dict[str, Any]:
    report = verify(fn, surrogate, schema=schema, tolerance=tolerance, max_examples=max_examples, seed=1234,
                    database=None)
    mined = mine_edge_cases(fn, surrogate, schema=schema, tolerance=tolerance, budget_s=mine_budget, seed=4321)
    band_stats: dict[str, Any] = {}
    if band is not None:
        policy = Comparison(tolerance)
        verdicts = [policy.check(fn, surrogate, kw) for kw in band()]
        band_stats = {"band_agreement": sum(v.agree for v in verdicts) / len(verdicts),
                      "band_max_error": max(v.error for v in verdicts),
                      "band_mean_error": float(np.mean([v.error for v in verdicts]))}
    return {
        **band_stats,
        "domain_agreement": report.views["domain"].agreement,
        "domain_p99_error": report.views["domain"].errors.get("p99"),
        "verify_max_error": report.max_error,
        "mined_cases": len(mined),
        "mined_max_error": mined.max_error,
        "mined_by_layer": mined.by_layer,
    }


def _finite(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="")
    parser.add_argument("--fit-budget", type=float, default=None)
    parser.add_argument("--hard-limit", type=int, default=None,
                        help="refit on a diverse subset of this many mined cases (EdgeCases.inputs(limit=))")
    args = parser.parse_args()
    from replace import fit

    only = args.only.split(",") if args.only else (["tariff"] if args.quick else list(CASES))
    mine_budget = 3.0 if args.quick else 10.0
    max_examples = 500 if args.quick else 2000
    results: dict[str, Any] = {"settings": {"mine_budget_s": mine_budget, "max_examples": max_examples,
                                            "quick": args.quick, "hard_limit": args.hard_limit}, "functions": {}}
    for name, case in CASES.items():
        if name not in only:
            continue
        seeds = list(range(1 if args.quick else case["seeds"]))
        fit_budget = args.fit_budget or (min(4.0, case["fit_budget"]) if args.quick else case["fit_budget"])
        fn = case["fn"]
        schema = Schema.from_function(fn, output=case.get("output"), **case["specs"])
        traces = Traces.from_calls(fn, case["traces"](2000, seed=7)) if case["traces"] else None
        rows = []
        for seed in seeds:
            t0 = time.perf_counter()
            first = fit(fn, traces, schema=schema, tolerance=case["tolerance"], budget_s=fit_budget, seed=seed)
            t1 = time.perf_counter()
            mined = mine_edge_cases(fn, first, schema=schema, tolerance=case["tolerance"], budget_s=mine_budget,
                                    seed=seed)
            t2 = time.perf_counter()
            second = fit(fn, traces, schema=schema, tolerance=case["tolerance"], budget_s=fit_budget, seed=seed,
                         hard_cases=mined.inputs(limit=args.hard_limit))
            t3 = time.perf_counter()
            before = evaluate(fn, first, schema, case["tolerance"], max_examples=max_examples, mine_budget=mine_budget,
                              band=case["band"])
            after = evaluate(fn, second, schema, case["tolerance"], max_examples=max_examples, mine_budget=mine_budget,
                             band=case["band"])
            row = {"seed": seed, "fit_budget_s": fit_budget, "hard_cases": len(mined.inputs(limit=args.hard_limit)), "mined_by_layer": mined.by_layer,
                   "fit_s": t1 - t0, "mine_s": t2 - t1, "refit_s": t3 - t2,
                   "before": {k: _finite(v) for k, v in before.items()},
                   "after": {k: _finite(v) for k, v in after.items()}}
            rows.append(row)
            print(f"{name:13s} seed {seed}: {row['hard_cases']} hard cases | domain agreement "
                  f"{before['domain_agreement']:.4f} -> {after['domain_agreement']:.4f} | mined max error "
                  f"{before['mined_max_error']:.4g} -> {after['mined_max_error']:.4g} | mined cases "
                  f"{before['mined_cases']} -> {after['mined_cases']} | domain p99 "
                  f"{before['domain_p99_error']:.4g} -> {after['domain_p99_error']:.4g}"
                  + (f" | boundary band agreement {before['band_agreement']:.3f} -> {after['band_agreement']:.3f},"
                     f" mean error {before['band_mean_error']:.4g} -> {after['band_mean_error']:.4g}"
                     if "band_agreement" in before else ""), flush=True)
        results["functions"][name] = rows
    suffix = f"_limit{args.hard_limit}" if args.hard_limit else ""
    out = ROOT / "bench" / "results" / f"mine_refit{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
