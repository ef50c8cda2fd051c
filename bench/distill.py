"""Fidelity of distilled rules against their size, and how exactly they recover true cut points.

For each function and leaf budget (4..64): agreement within tolerance with the original (95%
interval), max error, R^2, leaves/depth/lines, teacher queries and time. Alongside, a plain
CART baseline (scikit-learn on uniform samples, no oracle refinement, no snapping, float32
thresholds) at the same size, to show the R^2-versus-agreement contrast of ANCHORS, and for a
piecewise function with known cut points, the recovered cuts against the true ones with and
without bisection snapping.

    python bench/distill.py [--quick]

Writes bench/results/distill.json.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from probes import Schema, Tolerance  # noqa: E402
from explain import distill  # noqa: E402
from explain._data import agreement, call_batch  # noqa: E402
from explain._tree import Features  # noqa: E402


# -- a piecewise function whose cut points are known -------------------------------------------------
TRUE_CUTS = {"weight": [0.5, 2.0, 5.0], "value": [500.0]}


def tiered(weight: float, value: float, zone: str) -> float:
    """Tier price by weight (cuts 0.5, 2, 5), zone surcharge, flat insurance above value 500."""
    if weight <= 0.5:
        price = 4.0
    elif weight <= 2.0:
        price = 6.5
    elif weight <= 5.0:
        price = 9.0
    else:
        price = 14.0
    if zone == "FAR":
        price += 5.0
    if value > 500.0:
        price += 3.5
    return price


TIERED_SCHEMA = Schema.from_function(tiered, weight=(0.01, 10.0), value=(0.0, 1000.0), zone=["NEAR", "MID", "FAR"])
TIERED_TOL = Tolerance(abs=0.005)


def cart_baseline(fn, schema: Schema, tolerance: Tolerance, leaves: int, n: int, n_eval: int, seed: int) -> dict:
    """scikit-learn CART on uniform samples, judged like the rules (agreement and R^2)."""
    from sklearn.tree import DecisionTreeRegressor

    features = Features(schema)
    train = schema.sample_columns(n, seed=seed)
    outcomes = call_batch(fn, train, schema)
    ok = ~outcomes.raised
    y = np.asarray([v for v, good in zip(outcomes.values, ok) if good], dtype=float)
    X = features.encode(train)[ok]
    est = DecisionTreeRegressor(max_leaf_nodes=leaves, random_state=seed).fit(X, y)
    test = schema.sample_columns(n_eval, seed=seed + 1)
    reference = call_batch(fn, test, schema)
    from explain._data import Outcomes

    predicted = Outcomes([float(v) for v in est.predict(features.encode(test))], [None] * n_eval)
    judged = agreement(reference, predicted, "real", tolerance)
    cuts = {}
    for i in range(est.tree_.node_count):
        if est.tree_.children_left[i] != -1:
            spec = features.specs[est.tree_.feature[i]]
            if spec.numeric:
                cuts.setdefault(spec.field, []).append(float(est.tree_.threshold[i]))
    return {"agreement": judged.agreement, "agreement_ci": list(judged.agreement_ci), "max_error": judged.max_error,
            "r2": judged.r2, "cuts": {k: sorted(v) for k, v in cuts.items()}}


def recovered(cuts: dict[str, list[float]], true: dict[str, list[float]]) -> list[dict]:
    out = []
    for name, points in true.items():
        found = cuts.get(name, [])
        for t in points:
            nearest = min(found, key=lambda c: abs(c - t)) if found else None
            out.append({"argument": name, "true": t, "recovered": nearest,
                        "abs_error": None if nearest is None else abs(nearest - t)})
    return out


def rules_cuts(rules) -> dict[str, list[float]]:
    cuts: dict[str, list[float]] = {}
    for c in rules.cuts():
        cuts.setdefault(c.argument, []).append(c.threshold)
    return {k: sorted(set(v)) for k, v in cuts.items()}


def run_case(name: str, fn, schema: Schema, tolerance: Tolerance, leaves, n_samples: int, n_eval: int,
             traces=None) -> dict:
    rows = []
    for budget in leaves:
        start = time.perf_counter()
        rules = distill(fn, schema=schema, max_leaves=budget, n_samples=n_samples, tolerance=tolerance, seed=0,
                        traces=traces, fidelity_samples=n_eval)
        elapsed = time.perf_counter() - start
        fid = rules.fidelity["teacher:domain"]
        row = {"max_leaves": budget, "leaves": rules.complexity.leaves, "depth": rules.complexity.depth,
               "lines": rules.complexity.lines, "variant": rules.variant, "agreement": fid.agreement,
               "agreement_ci": list(fid.agreement_ci), "max_error": fid.max_error, "r2": fid.r2,
               "queries": rules.n_queries, "time_s": elapsed, "snapped_cuts": sum(c.snapped for c in rules.cuts()),
               "cuts": len(rules.cuts())}
        if "teacher:operational" in rules.fidelity:
            op = rules.fidelity["teacher:operational"]
            row["operational_agreement"] = op.agreement
            row["operational_agreement_ci"] = list(op.agreement_ci)
        if schema.output.kind == "real":
            row["cart"] = cart_baseline(fn, schema, tolerance, budget, n_samples, n_eval, seed=0)
            row["cart"].pop("cuts")
        rows.append(row)
    return {"function": name, "tolerance": tolerance.to_dict(), "n_samples": n_samples, "n_eval": n_eval,
            "rows": rows}


def _fmt(x, pct=False):
    if x is None:
        return "-"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    return f"{100 * x:.2f}%" if pct else (f"{x:.4g}" if isinstance(x, float) else str(x))


def print_case(case: dict) -> None:
    print(f"\n## {case['function']}  (tolerance abs={case['tolerance']['abs']}, rel={case['tolerance']['rel']})")
    print("| max leaves | leaves | depth | lines | variant | agreement (95% CI) | max err | R^2 | CART agreement | CART R^2 | queries | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in case["rows"]:
        cart = r.get("cart") or {}
        print(f"| {r['max_leaves']} | {r['leaves']} | {r['depth']} | {r['lines']} | {r['variant']} | "
              f"{_fmt(r['agreement'], True)} ({_fmt(r['agreement_ci'][0], True)}-{_fmt(r['agreement_ci'][1], True)}) | "
              f"{_fmt(r['max_error'])} | {_fmt(r['r2'])} | {_fmt(cart.get('agreement'), True)} | {_fmt(cart.get('r2'))} | "
              f"{r['queries']} | {r['time_s']:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two leaf budgets, fewer queries")
    args = parser.parse_args()
    leaves = (4, 16) if args.quick else (4, 8, 16, 32, 64)
    n_samples = 1500 if args.quick else 6000
    n_eval = 1000 if args.quick else 4000
    results: dict = {"python": platform.python_version(), "quick": args.quick, "cases": []}

    # 1. a piecewise function with known cuts: recovery with and without snapping
    case = run_case("tiered (known cuts)", tiered, TIERED_SCHEMA, TIERED_TOL, leaves, n_samples, n_eval)
    snapped = distill(tiered, schema=TIERED_SCHEMA, max_leaves=16, n_samples=n_samples, tolerance=TIERED_TOL,
                      fidelity_samples=n_eval)
    unsnapped = distill(tiered, schema=TIERED_SCHEMA, max_leaves=16, n_samples=n_samples, tolerance=TIERED_TOL,
                        snap=False, fidelity_samples=n_eval)
    cart = cart_baseline(tiered, TIERED_SCHEMA, TIERED_TOL, 16, n_samples, n_eval, seed=0)
    case["cut_recovery"] = {
        "true": TRUE_CUTS,
        "snapped": recovered(rules_cuts(snapped), TRUE_CUTS),
        "snapped_agreement": snapped.fidelity["teacher:domain"].agreement,
        "refined_unsnapped": recovered(rules_cuts(unsnapped), TRUE_CUTS),
        "refined_unsnapped_agreement": unsnapped.fidelity["teacher:domain"].agreement,
        "cart": recovered(cart["cuts"], TRUE_CUTS),
        "cart_agreement": cart["agreement"],
    }
    results["cases"].append(case)
    print_case(case)
    print("\nCut recovery at 16 leaves (true -> snapped | oracle-refined, unsnapped | plain CART):")
    for a, b, c in zip(case["cut_recovery"]["snapped"], case["cut_recovery"]["refined_unsnapped"],
                       case["cut_recovery"]["cart"]):
        print(f"  {a['argument']} {a['true']:g} -> {_fmt(a['recovered'])} | {_fmt(b['recovered'])} | {_fmt(c['recovered'])}")
    print(f"  agreement: snapped {_fmt(case['cut_recovery']['snapped_agreement'], True)}, "
          f"unsnapped {_fmt(case['cut_recovery']['refined_unsnapped_agreement'], True)}, "
          f"CART {_fmt(case['cut_recovery']['cart_agreement'], True)}")

    # 2. the shipping fee case study, judged to the cent
    try:
        from case_studies import shipping_fee as sf
    except ImportError:
        sf = None
    if sf is not None:
        schema = Schema.from_function(sf.shipping_fee, **sf.SPECS)
        from probes import Traces

        traces = Traces.from_calls(sf.shipping_fee, sf.generate_inputs(2000, seed=1))
        case = run_case("case_studies.shipping_fee", sf.shipping_fee, schema, sf.TOLERANCE, leaves, n_samples,
                        n_eval, traces=traces)
        results["cases"].append(case)
        print_case(case)
        print("  (operational agreement, on recorded-like orders: "
              + ", ".join(f"{r['max_leaves']}: {_fmt(r.get('operational_agreement'), True)}" for r in case["rows"]) + ")")

    # 3. the insurance case study (labels and raising inputs)
    try:
        from case_studies import insurance_class as ic
    except ImportError:
        ic = None
    if ic is not None:
        schema = Schema.from_function(ic.risk_class, **ic.SPECS)
        case = run_case("case_studies.insurance_class", ic.risk_class, schema, ic.TOLERANCE, leaves, n_samples, n_eval)
        results["cases"].append(case)
        print_case(case)

    out = ROOT / "bench" / "results" / "distill.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=lambda v: str(v)) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
