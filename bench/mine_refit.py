"""Does feeding mined edge cases back into training make a surrogate better where it was worst?

For each function: fit a surrogate (seed s, budget B), mine its edge cases, fit again with the
same seed and budget plus `hard_cases=cases.inputs()`, and compare the two surrogates on the
same evaluation: verify (domain and search views, fixed seed) and a fresh mining run with
another seed (its max error and the number of disagreements it finds).

    python bench/mine_refit.py            # shipping_fee and a step function, 2 seeds
    python bench/mine_refit.py --quick    # 1 seed, small budgets

Writes bench/results/mine_refit.json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from case_studies import shipping_fee as sf  # noqa: E402
from probes import Schema, Tolerance, Traces, mine_edge_cases, verify  # noqa: E402


def step(x: float, kind: str) -> float:
    """A toy with two hard steps and one flat category."""
    if kind == "c":
        return -1.0
    if x > 0.7:
        return 2.0
    return 1.0 if x > 0.3 else 0.0


CASES: dict[str, dict[str, Any]] = {
    "step": {"fn": step, "specs": {"x": (0.0, 1.0), "kind": ["a", "b", "c"]}, "tolerance": Tolerance(abs=0.05),
             "traces": None},
    "shipping_fee": {"fn": sf.shipping_fee, "specs": sf.SPECS, "tolerance": sf.TOLERANCE,
                     "traces": sf.generate_inputs},
}


def evaluate(fn: Any, surrogate: Any, schema: Schema, tolerance: Tolerance, *, max_examples: int,
             mine_budget: float) -> dict[str, Any]:
    report = verify(fn, surrogate, schema=schema, tolerance=tolerance, max_examples=max_examples, seed=1234,
                    database=None)
    mined = mine_edge_cases(fn, surrogate, schema=schema, tolerance=tolerance, budget_s=mine_budget, seed=4321)
    return {
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
    args = parser.parse_args()
    from replace import fit

    seeds = [0] if args.quick else [0, 1]
    fit_budget = 10.0 if args.quick else 40.0
    mine_budget = 3.0 if args.quick else 10.0
    max_examples = 500 if args.quick else 2000
    results: dict[str, Any] = {"settings": {"seeds": seeds, "fit_budget_s": fit_budget, "mine_budget_s": mine_budget,
                                            "max_examples": max_examples}, "functions": {}}
    for name, case in CASES.items():
        if args.only and name not in args.only.split(","):
            continue
        fn = case["fn"]
        schema = Schema.from_function(fn, **case["specs"])
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
                         hard_cases=mined.inputs())
            t3 = time.perf_counter()
            before = evaluate(fn, first, schema, case["tolerance"], max_examples=max_examples, mine_budget=mine_budget)
            after = evaluate(fn, second, schema, case["tolerance"], max_examples=max_examples, mine_budget=mine_budget)
            row = {"seed": seed, "hard_cases": len(mined), "mined_by_layer": mined.by_layer,
                   "fit_s": t1 - t0, "mine_s": t2 - t1, "refit_s": t3 - t2,
                   "before": {k: _finite(v) for k, v in before.items()},
                   "after": {k: _finite(v) for k, v in after.items()}}
            rows.append(row)
            print(f"{name:13s} seed {seed}: {len(mined)} hard cases | domain agreement "
                  f"{before['domain_agreement']:.4f} -> {after['domain_agreement']:.4f} | mined max error "
                  f"{before['mined_max_error']:.4g} -> {after['mined_max_error']:.4g} | mined cases "
                  f"{before['mined_cases']} -> {after['mined_cases']} | domain p99 "
                  f"{before['domain_p99_error']:.4g} -> {after['domain_p99_error']:.4g}", flush=True)
        results["functions"][name] = rows
    out = ROOT / "bench" / "results" / "mine_refit.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
