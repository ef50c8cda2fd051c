"""Hybrid surrogate against the purely neural one at the same budget (issue 15, the surrogate side).

For each function: record production calls as traces, `fit` twice with the same seed and budget
on the work clock, `exact="auto"` (the default: exact expressions on the branch paths they
reproduce, neural experts elsewhere) and `exact="off"`, and judge both with
`replace._fidelity.compare` (within the suite's tolerance: a cent for money, labels and
exceptions exact) on the same fresh production inputs and whole-domain inputs
(`schema.sample`). Also: which paths went exact (expression, rows), the fit's own fresh-input
agreement, wall seconds of each fit, and single-call time against the original.

    python bench/hybrid.py                                  # default functions, 20 s budget, 20,000 inputs
    python bench/hybrid.py --budget 8 --only shipping_fee parking_fee --n-eval 5000
    python bench/hybrid.py --quick                          # 5 s budget, 2,000 inputs (smoke run)
    python bench/hybrid.py --only shipping_fee --options '{"max_experts": 64}' --out hybrid_max_experts64.json

Writes bench/results/hybrid.json (hybrid_quick.json with --quick, or --out NAME) and prints a
markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.exact import DISTRIBUTIONS, _columns, _entry, _judge, _outcomes, single_call_us  # noqa: E402
from probes import Traces  # noqa: E402
from replace import fit  # noqa: E402

DEFAULT_FUNCTIONS = ("shipping_fee", "insurance_class", "parking_fee", "weekly_pay", "late_fee")
MODES = ("auto", "off")


def run_one(name: Any, budget: float, seed: int = 0, *, n_traces: int = 3000, n_eval: int = 20000,
            timing_rows: int = 300, progress: bool = False, options: dict[str, Any] | None = None) -> dict[str, Any]:
    entry = _entry(name)
    fn, tolerance = entry.function, entry.tolerance
    say = (lambda msg: print(f"[hybrid] {entry.name}: {msg}", file=sys.stderr, flush=True)) if progress else (lambda m: None)
    schema = entry.schema()
    kind = schema.output.kind
    traces = Traces.from_calls(fn, entry.generate_inputs(n_traces, seed=seed))
    rows = {"production": entry.generate_inputs(n_eval, seed=seed + 1), "domain": schema.sample(n_eval, seed=seed + 2)}
    reference = {d: _outcomes(fn, r) for d, r in rows.items()}
    result: dict[str, Any] = {"function": entry.name, "kind": kind, "tolerance": tolerance.to_dict(), "budget_s": budget,
                              "seed": seed, "n_traces": n_traces, "n_eval": n_eval, "options": options or {},
                              "modes": {}}
    surrogates = {}
    for mode in MODES:
        say(f"fit exact={mode} (budget {budget} s, work clock)")
        started = time.monotonic()
        try:
            surrogate = fit(fn, traces, schema=schema, tolerance=tolerance, budget_s=budget, seed=seed,
                            budget_clock="work", progress=False, exact=mode, **(options or {}))
        except Exception as exc:  # noqa: BLE001 - a benchmark row records the failure
            result["modes"][mode] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
            continue
        row: dict[str, Any] = {"fit_wall_s": round(time.monotonic() - started, 1),
                               "architecture": surrogate.architecture,
                               "fit_metrics_agreement": surrogate.metrics.agreement,
                               "oracle_calls": surrogate.metrics.oracle_calls}
        if mode == "auto":
            report = surrogate.manifest["training"].get("exact", {})
            row["paths"] = len(report)
            row["exact_paths"] = surrogate.metrics.exact_paths
            row["neural_paths"] = {p: {"rows": e["rows"], "reason": e.get("reason", "")}
                                   for p, e in report.items() if e["status"] != "exact"}
        for d in DISTRIBUTIONS:
            details = surrogate.predict_details(_columns(schema, rows[d]))
            row[d] = _judge(kind, reference[d], (surrogate.python_outputs(details), list(details.errors)), tolerance)
            if mode == "auto" and details.paths is not None and surrogate.expressions_:
                on = np.isin(np.array(details.paths, dtype=object), list(surrogate.expressions_))
                row[d]["rows_on_exact_paths"] = int(on.sum())
                if on.any():  # wrong answers among the rows the gate sent to an expression (misrouting)
                    at = np.flatnonzero(on).tolist()
                    outputs = surrogate.python_outputs(details)
                    sub = _judge(kind, ([reference[d][0][i] for i in at], [reference[d][1][i] for i in at]),
                                 ([outputs[i] for i in at], [details.errors[i] for i in at]), tolerance)
                    row[d]["wrong_on_exact_paths"] = sub["disagreements"]
        row["exact"] = all(row[d]["disagreements"] == 0 for d in DISTRIBUTIONS)
        row["wall_ceiling_hit"] = bool(surrogate.manifest["training"].get("budget", {}).get("wall_ceiling_hit"))
        result["modes"][mode] = row
        surrogates[mode] = surrogate
    say("single-call timing")
    timed = {"original": fn, **{f"exact={m}": s for m, s in surrogates.items()}}
    us = single_call_us(timed, rows["production"][:timing_rows])
    result["single_call_us"] = us
    return result


def _pct(row: dict[str, Any] | None, dist: str) -> str:
    if not row or dist not in row:
        return "error" if row and "error" in row else "-"
    r = row[dist]
    text = f"{100 * r['agreement']:.2f}"
    return f"**{text}**" if r["disagreements"] == 0 else text


def to_markdown(results: dict[str, Any]) -> str:
    lines = [f"Agreement (% of {results['n_eval']} fresh inputs within tolerance, production / domain), fit at "
             f"{results['budget_s']} s on the work clock, same seed; **bold** = no disagreement.", "",
             "| function | exact=auto | exact=off | exact paths / buckets | rows on exact paths, of them wrong "
             "(prod; domain) | fit wall s (auto, off) | call us: original, auto, off |",
             "|---|---|---|---|---|---|---|"]
    for r in results["functions"]:
        auto, off = r["modes"].get("auto", {}), r["modes"].get("off", {})
        cells = [f"{_pct(m, 'production')} / {_pct(m, 'domain')}" for m in (auto, off)]
        paths = f"{len(auto.get('exact_paths', {}))} / {auto.get('paths', '-')}"
        on = "; ".join(f"{auto.get(d, {}).get('rows_on_exact_paths', 0)}, {auto.get(d, {}).get('wrong_on_exact_paths', 0)}"
                       for d in DISTRIBUTIONS)
        wall = f"{auto.get('fit_wall_s', '-')}, {off.get('fit_wall_s', '-')}"
        us = r.get("single_call_us", {})
        call = ", ".join(f"{us[k]:.1f}" if k in us else "-" for k in ("original", "exact=auto", "exact=off"))
        lines.append(f"| {r['function']} | {cells[0]} | {cells[1]} | {paths} | {on} | {wall} | {call} |")
    return "\n".join(lines)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.bool_):
        return bool(value)
    raise TypeError(type(value).__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-eval", type=int, default=20000)
    parser.add_argument("--only", nargs="*", default=list(DEFAULT_FUNCTIONS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=None)
    parser.add_argument("--options", default="{}", help='more fit options for both modes, as JSON: \'{"max_experts": 64}\'')
    args = parser.parse_args(argv)
    options = json.loads(args.options)
    if args.quick:
        args.budget, args.n_eval = 5.0, 2000
    out = ROOT / "bench" / "results" / (args.out or ("hybrid_quick.json" if args.quick else "hybrid.json"))
    results: dict[str, Any] = {"budget_s": args.budget, "seed": args.seed, "n_eval": args.n_eval, "options": options,
                               "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                           "load": os.getloadavg()[0] if hasattr(os, "getloadavg") else None},
                               "functions": []}
    for name in args.only:
        results["functions"].append(run_one(name, args.budget, args.seed, n_eval=args.n_eval, progress=True,
                                            options=options))
        out.write_text(json.dumps(results, indent=1, default=_json_default))  # partial results survive a crash
    table = to_markdown(results)
    results["markdown"] = table
    out.write_text(json.dumps(results, indent=1, default=_json_default))
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
