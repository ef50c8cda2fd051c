"""Why the blackscholes surrogate misses AxBench's 1%: where the error is, and what moves it.

Same set-up as `bench/fidelity.py --only blackscholes --skip-sampling --clock work`: traces are
`generate_inputs(4000, seed=0)` (rows of AxBench's option table), `replace.fit` on the work
clock, scored on `generate_inputs(4000, seed=1)` by AxBench's metric (mean of
min(1, |o - a| / |o|), 1 where o == 0). Each variant changes one thing (a fit option, the
tolerance that sets the output warp, the budget, the oracle's input distribution) against the
`base` variant, same seed and budget. Per variant the error is split by price decade,
moneyness, call/put and branch path, so one can see whether it is a few clipped rows or spread.

    python bench/axbench_study.py --quick                    # the quick set (small budgets)
    python bench/axbench_study.py --variants base r0 r0_ts1  # chosen variants (merged into the JSON)
    python bench/axbench_study.py --list                     # the variants
    python bench/axbench_study.py --variants r0 r0_logx --seed 1   # keyed name@seed1@b45
    python bench/axbench_study.py --ceiling 60 --width 64 --log-inputs   # table-memorisation bound
    python bench/axbench_study.py --ceiling 60 --log-inputs --with-domain 6000   # ... learning the domain too
    python bench/axbench_study.py --others --studies loan_schedule       # log-input rule elsewhere

Findings (seed 0, 45 s work clock; details and seeds 1-2 in the JSON): the error is spread, not
a few clipped rows; 70% of what is above the zero-price floor comes from the out-of-the-money
paths. The one change that helps on every seed is encoding positive inputs as log(x)
(`fit(..., log_inputs="positive")`): 1.28/1.34/2.11% -> 1.15/1.22/1.16% (seeds 0/1/2).
Under 1% takes a larger shape and more time: a gate with 64x3 experts, 180 s (`r0_logx_p64_b180`)
gives 0.96/0.98/0.96% (seeds 0/1/2); fit's search at 180 s keeps 2x16 experts instead (1.28%),
with `search="halving"` 1.18%. `--ceiling ... --with-domain N` prices learning the domain too.

Writes bench/results/axbench_study.json (axbench_study_quick.json with --quick); results of
earlier runs in the same file are kept unless the same variant is run again.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from probes import Schema, Tolerance, Traces  # noqa: E402
from probes._paths import call_with_path  # noqa: E402
from replace import fit  # noqa: E402

from case_studies import blackscholes as bs  # noqa: E402

# Each variant: one change against its parent (named in "vs"). Keys: fit (fit options),
# tol (abs, rel) replacing bs.TOLERANCE, budget (work seconds), oracle_from ("table": oracle
# draws replaced by jittered table rows, see _table_traces), traces (count).
VARIANTS: dict[str, dict[str, Any]] = {
    "base": {"fit": {}, "note": "defaults (refinement rounds on)"},
    "r0": {"fit": {"rounds": 0}, "vs": "base", "note": "rounds=0"},
    # 2. distribution mismatch: oracle draws near the traces rather than the whole domain
    "r0_ts1": {"fit": {"rounds": 0, "trace_share": 1.0}, "vs": "r0", "note": "all oracle draws near traces"},
    "r0_ts1_n01": {"fit": {"rounds": 0, "trace_share": 1.0, "near_scale": 0.01}, "vs": "r0_ts1",
                   "note": "near traces, jitter 1% of range"},
    "r0_ts0": {"fit": {"rounds": 0, "trace_share": 0.0}, "vs": "r0", "note": "all oracle draws from the domain"},
    "r0_noracle": {"fit": {"rounds": 0}, "oracle": False, "vs": "r0", "note": "traces only (oracle=False)"},
    "r0_tw1": {"fit": {"rounds": 0, "trace_weight": 1.0}, "vs": "r0", "note": "traces weigh as oracle rows"},
    "r0_tw5": {"fit": {"rounds": 0, "trace_weight": 5.0}, "vs": "r0",
               "note": "trace rows x5 (traces ~77% of the loss; 'balance' gives 50%)"},
    "r0_tw20": {"fit": {"rounds": 0, "trace_weight": 20.0}, "vs": "r0",
                "note": "trace rows x20 (traces ~93% of the loss)"},
    # 3. budget and capacity
    "r0_b90": {"fit": {"rounds": 0}, "budget": 90.0, "vs": "r0", "note": "budget 90 s"},
    "r0_b180": {"fit": {"rounds": 0}, "budget": 180.0, "vs": "r0", "note": "budget 180 s"},
    "r0_plain": {"fit": {"rounds": 0, "path_aware": False}, "vs": "r0", "note": "plain MLP (no gate + experts)"},
    "r0_paths": {"fit": {"rounds": 0, "path_aware": True}, "vs": "r0", "note": "gate + experts only"},
    "r0_w64": {"fit": {"rounds": 0, "widths": [64], "depths": [3]}, "vs": "r0", "note": "one shape 64x3"},
    "r0_w32": {"fit": {"rounds": 0, "widths": [32], "depths": [3]}, "vs": "r0", "note": "one shape 32x3"},
    "r0_e1": {"fit": {"rounds": 0, "ensemble_size": 1}, "vs": "r0", "note": "ensemble_size=1"},
    # more oracle data up front (fit caps its first draw at 6000 rows): val loss is ~15x train loss
    "r0_n20k": {"fit": {"rounds": 0, "initial_samples": 20000}, "vs": "r0", "note": "20000 initial oracle draws"},
    "r0_n20k_b90": {"fit": {"rounds": 0, "initial_samples": 20000}, "budget": 90.0, "vs": "r0_n20k",
                    "note": "20000 initial oracle draws, budget 90 s"},
    "r0_p32_n20k": {"fit": {"rounds": 0, "initial_samples": 20000, "path_aware": True, "widths": [32], "depths": [3]},
                    "vs": "r0_p32", "note": "paths 32x3, 20000 initial oracle draws"},
    "r0_p32_n20k_b90": {"fit": {"rounds": 0, "initial_samples": 20000, "path_aware": True, "widths": [32],
                                "depths": [3]}, "budget": 90.0, "vs": "r0_p32_n20k",
                        "note": "paths 32x3, 20000 initial oracle draws, budget 90 s"},
    # input representation: log of positive inputs (log S - log K is then linear)
    "r0_logx": {"fit": {"rounds": 0}, "log_inputs": True, "vs": "r0", "note": "log(x) input encoding of positive reals"},
    "logx": {"fit": {}, "log_inputs": True, "vs": "base", "note": "log(x) inputs, rounds on"},
    "r0_logx_c1e9": {"fit": {"rounds": 0}, "tol": (1e-12, 1e-3), "log_inputs": True, "vs": "r0_logx",
                     "note": "log inputs, tol abs 1e-12 (warp c=1e-9)"},
    "r0_logx_p32d4": {"fit": {"rounds": 0, "path_aware": True, "widths": [32], "depths": [4]}, "log_inputs": True,
                      "vs": "r0_logx", "note": "log inputs, paths 32x4 only"},
    "r0_logx_tw5_p64_b90": {"fit": {"rounds": 0, "trace_weight": 5.0, "path_aware": True, "widths": [64],
                                    "depths": [3]}, "budget": 90.0, "log_inputs": True, "vs": "r0_logx_p64_b90",
                            "note": "log inputs, trace rows x5, paths 64x3, 90 s (combination)"},
    "r0_logx_e5": {"fit": {"rounds": 0, "ensemble_size": 5}, "log_inputs": True, "vs": "r0_logx",
                   "note": "log inputs, ensemble_size=5"},
    "r0_logx_tw5": {"fit": {"rounds": 0, "trace_weight": 5.0}, "log_inputs": True, "vs": "r0_logx",
                    "note": "log inputs, trace rows x5"},
    "r0_logx_p64": {"fit": {"rounds": 0, "path_aware": True, "widths": [64], "depths": [3]}, "log_inputs": True,
                    "vs": "r0_logx", "note": "log inputs, paths 64x3 only"},
    "r0_logx_p64_b90": {"fit": {"rounds": 0, "path_aware": True, "widths": [64], "depths": [3]}, "budget": 90.0,
                        "log_inputs": True, "vs": "r0_logx_p64", "note": "log inputs, paths 64x3 only, budget 90 s"},
    "r0_logx_noracle": {"fit": {"rounds": 0}, "oracle": False, "log_inputs": True, "vs": "r0_logx",
                        "note": "log inputs, traces only (oracle=False)"},
    "r0_logx_tw20": {"fit": {"rounds": 0, "trace_weight": 20.0}, "log_inputs": True, "vs": "r0_logx",
                     "note": "log inputs, trace rows x20"},
    "r0_logx_m32e1": {"fit": {"rounds": 0, "path_aware": False, "widths": [32], "depths": [3], "ensemble_size": 1},
                      "log_inputs": True, "vs": "r0_logx", "note": "log inputs, one plain MLP 32x3 (the ceiling's shape)"},
    "r0_logx_p32e1": {"fit": {"rounds": 0, "path_aware": True, "widths": [32], "depths": [3], "ensemble_size": 1},
                      "log_inputs": True, "vs": "r0_logx", "note": "log inputs, gate + one 32x3 expert per path"},
    "r0_logx_b180": {"fit": {"rounds": 0}, "budget": 180.0, "log_inputs": True, "vs": "r0_logx",
                     "note": "log inputs, budget 180 s"},
    "r0_logx_p64_b180": {"fit": {"rounds": 0, "path_aware": True, "widths": [64], "depths": [3]}, "budget": 180.0,
                         "log_inputs": True, "vs": "r0_logx_p64_b90", "note": "log inputs, paths 64x3 only, budget 180 s"},
    "r0_logx_b180_sh": {"fit": {"rounds": 0, "search": "halving"}, "budget": 180.0, "log_inputs": True,
                        "vs": "r0_logx_b180", "note": "log inputs, budget 180 s, successive-halving search"},
    "r0_logx_ts1": {"fit": {"rounds": 0, "trace_share": 1.0}, "log_inputs": True, "vs": "r0_logx",
                    "note": "log inputs, all oracle draws near traces"},
    "r0_logx_b90": {"fit": {"rounds": 0}, "budget": 90.0, "log_inputs": True, "vs": "r0_logx",
                    "note": "log inputs, budget 90 s"},
    # one fixed shape (no search): training time and capacity without the search's choice
    "r0_p32": {"fit": {"rounds": 0, "path_aware": True, "widths": [32], "depths": [3]}, "vs": "r0",
               "note": "gate + experts 32x3 only (no search)"},
    "r0_p32_b90": {"fit": {"rounds": 0, "path_aware": True, "widths": [32], "depths": [3]}, "budget": 90.0,
                   "vs": "r0_p32", "note": "paths 32x3, budget 90 s"},
    "r0_p32_b180": {"fit": {"rounds": 0, "path_aware": True, "widths": [32], "depths": [3]}, "budget": 180.0,
                    "vs": "r0_p32", "note": "paths 32x3, budget 180 s"},
    "r0_p64": {"fit": {"rounds": 0, "path_aware": True, "widths": [64], "depths": [3]}, "vs": "r0_p32",
               "note": "gate + experts 64x3 only"},
    "r0_p16": {"fit": {"rounds": 0, "path_aware": True, "widths": [16], "depths": [2]}, "vs": "r0_p32",
               "note": "gate + experts 16x2 only"},
    "r0_p32_e1": {"fit": {"rounds": 0, "path_aware": True, "widths": [32], "depths": [3], "ensemble_size": 1},
                  "vs": "r0_p32", "note": "paths 32x3, ensemble_size=1"},
    "p32": {"fit": {"path_aware": True, "widths": [32], "depths": [3]}, "vs": "r0_p32",
            "note": "paths 32x3, rounds on (default 3)"},
    # 4. output warp: c = abs / rel of the tolerance
    "r0_c1e9": {"fit": {"rounds": 0}, "tol": (1e-12, 1e-3), "vs": "r0", "note": "tol abs 1e-12 (warp c=1e-9)"},
    "r0_c1e6": {"fit": {"rounds": 0}, "tol": (1e-9, 1e-3), "vs": "r0", "note": "tol abs 1e-9 (warp c=1e-6)"},
    "r0_c1e4": {"fit": {"rounds": 0}, "tol": (1e-7, 1e-3), "vs": "r0", "note": "tol abs 1e-7 (warp c=1e-4)"},
    "r0_rel1e2": {"fit": {"rounds": 0}, "tol": (1e-15, 1e-2), "vs": "r0",
                  "note": "tol rel 1% abs 1e-15 (same warp c=1e-13, looser target)"},
}
QUICK = ["r0", "r0_logx", "r0_ts1", "r0_c1e6"]

_BINS = [(-1.0, 0.0, "== 0"), (0.0, 1e-8, "(0, 1e-8)"), (1e-8, 1e-5, "[1e-8, 1e-5)"), (1e-5, 1e-3, "[1e-5, 1e-3)"),
         (1e-3, 1e-2, "[1e-3, 1e-2)"), (1e-2, math.inf, ">= 1e-2")]


def setup(n_traces: int, n_fresh: int) -> dict[str, Any]:
    fn = bs.blackscholes
    schema = Schema.from_function(fn, **bs.SPECS)
    traces = Traces.from_calls(fn, bs.generate_inputs(n_traces, seed=0))
    fresh = bs.generate_inputs(n_fresh, seed=1)
    columns = {name: np.asarray([row[name] for row in fresh]) for name in schema.names}
    traced = [call_with_path(fn, row) for row in fresh]
    ref = np.array([t.output for t in traced], dtype=float)
    paths = [t.path for t in traced]
    seen = {tuple(sorted(r.items())) for r in traces.inputs}
    in_traces = np.array([tuple(sorted(r.items())) in seen for r in fresh])
    return {"fn": fn, "schema": schema, "traces": traces, "fresh": fresh, "columns": columns, "ref": ref,
            "paths": paths, "in_traces": in_traces}


def row_errors(ref: np.ndarray, out: np.ndarray) -> np.ndarray:
    """AxBench's per-option error: min(1, |o - a| / |o|), 1 where o == 0 or NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        e = np.minimum(1.0, np.abs(ref - out) / np.abs(ref))
    e[(ref == 0) | ~np.isfinite(e)] = 1.0
    return e


def _group(err: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    n = int(mask.sum())
    if not n:
        return {"n": 0}
    e = err[mask]
    return {"n": n, "mean": float(e.mean()), "median": float(np.median(e)), "p90": float(np.quantile(e, 0.9)),
            "contribution": float(e.sum() / err.size), "clipped": int((e >= 0.999).sum())}


def breakdown(s: dict[str, Any], out: np.ndarray, gate_paths: list[str] | None) -> dict[str, Any]:
    ref = s["ref"]
    err = row_errors(ref, out)
    a = np.abs(ref)
    fresh = s["fresh"]
    spot = np.array([r["sptprice"] for r in fresh])
    strike = np.array([r["strike"] for r in fresh])
    otype = np.array([r["otype"] for r in fresh])
    ratio = spot / strike
    moneyness = np.where(np.isclose(ratio, 1.0), "atm",
                         np.where((ratio > 1) == (otype == 0), "itm", "otm"))
    nonzero = ref != 0
    result: dict[str, Any] = {
        "axbench_error": float(err.mean()),
        "floor": float((~nonzero).mean()),
        "nonzero_mean": float(err[nonzero].mean()),
        "nonzero_median": float(np.median(err[nonzero])),
        "nonzero_p90": float(np.quantile(err[nonzero], 0.9)),
        "nonzero_p99": float(np.quantile(err[nonzero], 0.99)),
        "clipped_nonzero": int((err[nonzero] >= 0.999).sum()),
        "over_1pct_nonzero": int((err[nonzero] > 0.01).sum()),
        "fresh_rows_seen_in_traces": float(s["in_traces"].mean()),
        "by_price": {label: _group(err, (a > lo) & (a < hi) if lo >= 0 else a == 0) for lo, hi, label in _BINS},
        "by_type": {("call" if t == 0 else "put"): _group(err, otype == t) for t in (0, 1)},
        "by_moneyness": {m: _group(err, moneyness == m) for m in ("itm", "atm", "otm")},
    }
    paths = np.array(s["paths"], dtype=object)
    names = {p: f"path{i}" for i, p in enumerate(sorted(set(s["paths"]), key=lambda p: -int((paths == p).sum())))}
    result["by_path"] = {names[p]: _group(err, paths == p) for p in names}
    if gate_paths is not None:
        # the gate's path ids are the same strings as call_with_path's (or "*"); a wrong route
        # sends the row to an expert trained on another branch
        gate = np.array(gate_paths, dtype=object)
        wrong = gate != paths
        result["gate_wrong"] = _group(err, wrong)
        result["gate_right"] = _group(err, ~wrong)
    # the worst rows, for the eye
    order = np.argsort(-np.where(nonzero, err, -1.0))
    worst, done = [], set()
    for i in order:
        key = tuple(sorted(fresh[i].items()))
        if key in done or not nonzero[i]:
            continue
        done.add(key)
        worst.append({**{k: round(float(v), 5) for k, v in fresh[i].items()}, "price": float(ref[i]),
                      "surrogate": float(out[i]), "error": float(err[i])})
        if len(worst) == 8:
            break
    result["worst"] = worst
    return result


def run_variant(name: str, spec: dict[str, Any], s: dict[str, Any], *, budget: float, seed: int) -> dict[str, Any]:
    tol = Tolerance(*spec["tol"]) if "tol" in spec else bs.TOLERANCE
    budget = spec.get("budget", budget)
    options = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.get("fit", {}).items()}
    if spec.get("log_inputs"):
        options["log_inputs"] = "positive"
    started = time.monotonic()
    surrogate = _fit(s, spec, tol, budget, seed, options)
    wall = time.monotonic() - started
    return _score_variant(name, spec, s, surrogate, tol, budget, seed, wall)


def _fit(s: dict[str, Any], spec: dict[str, Any], tol: Tolerance, budget: float, seed: int,
         options: dict[str, Any]) -> Any:
    return fit(s["fn"], s["traces"], schema=s["schema"], tolerance=tol, budget_s=budget, seed=seed,
                    oracle=spec.get("oracle", True), progress=False, budget_clock="work", **options)


def _score_variant(name: str, spec: dict[str, Any], s: dict[str, Any], surrogate: Any, tol: Tolerance,
                   budget: float, seed: int, wall: float) -> dict[str, Any]:
    details = surrogate.predict_details(s["columns"])
    out = np.array([np.nan if r else float(np.asarray(o).ravel()[0]) for o, r in zip(details.outputs, details.raises)])
    gate_paths = list(details.paths) if surrogate.path_aware and details.paths is not None else None
    m = surrogate.metrics
    row = {
        "variant": name, "vs": spec.get("vs"), "note": spec.get("note", ""), "fit_options": spec.get("fit", {}),
        "tolerance": tol.to_dict(), "budget_s": budget, "seed": seed, "oracle": spec.get("oracle", True),
        "log_inputs": bool(spec.get("log_inputs", False)),
        "input_warps": {c.name: c.warp for c in surrogate.input_encoder.codes_},
        "wall_s": round(wall, 1), "architecture": m.architecture, "parameters": m.parameters,
        "oracle_calls": m.oracle_calls, "training_rows": m.training_rows,
        "sources": surrogate.manifest["training"]["sources"], "warp": surrogate.output_encoder.warp,
        "warp_scale": surrogate.output_encoder.scale, "warped_std": float(surrogate.output_encoder.std[0]),
        "fit_test_agreement": m.agreement, "validation_agreement": m.validation_agreement,
        "search": list(m.search), "rounds": list(m.rounds),
        "fit_per_path": m.per_path,
        # training curve (step, train loss, val loss), thinned: is the loss still falling at the end?
        "curve": [list(c) for c in m.curve[:: max(1, len(m.curve) // 40)]] + ([list(m.curve[-1])] if m.curve else []),
        **breakdown(s, out, gate_paths),
    }
    # AxBench's own weighting: every row of the option table once (the floor is 6/820 there,
    # against ~34/4000 on the bench's 4000 fresh draws)
    table = [{"sptprice": a / bs.DIVIDE, "strike": b / bs.DIVIDE, "rate": r, "volatility": v, "otime": t, "otype": o}
             for a, b, r, v, t, o in bs.OPTION_TABLE]
    tcols = {k: np.asarray([row[k] for row in table]) for k in s["columns"]}
    tref = np.array([s["fn"](**row) for row in table])
    tdet = surrogate.predict_details(tcols)
    tout = np.array([np.nan if r else float(np.asarray(o).ravel()[0]) for o, r in zip(tdet.outputs, tdet.raises)])
    terr = row_errors(tref, tout)
    row["table_axbench_error"] = float(terr.mean())
    row["table_floor"] = float((tref == 0).mean())
    row["table_nonzero_mean"] = float(terr[tref != 0].mean())
    # the same rows in float64 inference: is float32 part of the error?
    ref64 = surrogate.predict_details(s["columns"], precision="float64")
    out64 = np.array([np.nan if r else float(np.asarray(o).ravel()[0]) for o, r in zip(ref64.outputs, ref64.raises)])
    row["axbench_error_float64"] = float(row_errors(s["ref"], out64).mean())
    return row


def ceiling(seconds: float, *, width: int = 32, depth: int = 3, seed: int = 0, split: bool = True,
            logs: bool = False, dtype: str = "float64", domain_rows: int = 0) -> dict[str, Any]:
    """How far a small MLP gets when it only has to learn the table: log(price) of the 814
    nonzero table rows, raw standardised inputs, full-batch L-BFGS in float64 for `seconds` of
    wall time, one network per (call/put) when `split`. Not a surrogate fit (no domain, no
    validation, no oracle): a bound on what memorising AxBench's table costs. `logs`: each
    positive real input also enters as its log (then log(S/K) is a linear feature).
    `domain_rows`: the network must also learn that many draws from the whole domain
    (`kind="continuous"`, price > 0), weighted to half the loss as fit's "balance" weights the
    traces: what learning the domain, not only the table, costs on the table rows."""
    import torch

    torch.manual_seed(seed)
    table = [(s_ / bs.DIVIDE, k / bs.DIVIDE, r, v, t, o) for s_, k, r, v, t, o in bs.OPTION_TABLE]
    X = np.array(table, dtype=float)
    price = np.array([bs.blackscholes(*row) for row in table])
    keep = price > 0
    X, price = X[keep], price[keep]
    n_table = len(X)
    weight = np.ones(n_table)
    if domain_rows:
        drawn = bs.generate_inputs(domain_rows, seed=seed + 1000, kind="continuous")
        D = np.array([[r[k] for k in ("sptprice", "strike", "rate", "volatility", "otime", "otype")] for r in drawn],
                     dtype=float)
        dprice = np.array([bs.blackscholes(**r) for r in drawn])
        D, dprice = D[dprice > 0], dprice[dprice > 0]
        X, price = np.concatenate([X, D]), np.concatenate([price, dprice])
        weight = np.concatenate([weight, np.full(len(D), n_table / len(D))])
    is_table = np.arange(len(X)) < n_table
    groups = [X[:, 5] == 0, X[:, 5] == 1] if split else [np.ones(len(X), dtype=bool)]
    pred = np.zeros(len(X))
    steps = 0
    for g in groups:
        x = X[g][:, :5] if split else X[g]
        if logs:
            x = np.concatenate([x, np.log(x[:, :5])], axis=1)
        mu, sd = x.mean(0), x.std(0) + 1e-12
        y = np.log(price[g])
        ym, ys = y.mean(), y.std()
        xt = torch.tensor((x - mu) / sd)
        yt = torch.tensor((y - ym) / ys)
        wt = torch.tensor(weight[g] / weight[g].mean())
        layers: list[Any] = []
        n_in = xt.shape[1]
        for _ in range(depth):
            layers += [torch.nn.Linear(n_in, width), torch.nn.SiLU()]
            n_in = width
        layers.append(torch.nn.Linear(n_in, 1))
        net = torch.nn.Sequential(*layers).to(torch.float64 if dtype == "float64" else torch.float32)
        xt, yt, wt = (t.to(next(net.parameters()).dtype) for t in (xt, yt, wt))
        adam = torch.optim.Adam(net.parameters(), lr=3e-3)
        for _ in range(2000):
            adam.zero_grad()
            loss = (wt * (net(xt)[:, 0] - yt) ** 2).mean()
            loss.backward()
            adam.step()
        opt = torch.optim.LBFGS(net.parameters(), lr=1.0, max_iter=50, history_size=50,
                                line_search_fn="strong_wolfe", tolerance_grad=1e-15, tolerance_change=1e-18)

        def closure() -> Any:
            opt.zero_grad()
            value = (wt * (net(xt)[:, 0] - yt) ** 2).mean()
            value.backward()
            return value

        until = time.monotonic() + seconds / len(groups)
        while time.monotonic() < until:
            opt.step(closure)
            steps += 1
        with torch.no_grad():
            pred[g] = np.exp(net(xt)[:, 0].double().numpy() * ys + ym)
    err = np.minimum(1.0, np.abs(pred - price) / price)[is_table]
    n_zero = int((~keep).sum())
    return {"seconds": seconds, "width": width, "depth": depth, "split_call_put": split, "lbfgs_steps": steps,
            "log_inputs": logs, "dtype": dtype, "domain_rows": int((~is_table).sum()),
            "table_nonzero_mean_error": float(err.mean()), "table_nonzero_median": float(np.median(err)),
            "table_axbench_error": float((err.sum() + n_zero) / (len(err) + n_zero))}


def others(budget: float, n: int, seed: int, only: list[str] | None = None) -> list[dict[str, Any]]:
    """The blanket rule (log of every positive real input) on the other case studies: fidelity
    with and without it, same seed, budget and rows (bench/fidelity.py's set-up, no baselines)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import fidelity as fb  # noqa: PLC0415

    rows = []
    for module_name, fn_name in fb.STUDIES:
        if module_name == "blackscholes" or (only and module_name not in only):
            continue
        module, fn = fb._study(module_name, fn_name)
        schema = fb.Schema.from_function(fn, **({"output": module.OUTPUT} if hasattr(module, "OUTPUT") else {}),
                                         **module.SPECS)
        traces = Traces.from_calls(fn, module.generate_inputs(n, seed=0))
        fresh = module.generate_inputs(n, seed=1)
        ref = Traces.from_calls(fn, fresh)
        columns = {k: np.asarray([r[k] for r in fresh], dtype=object if schema[k].kind == "categorical" else None)
                   for k in schema.names}
        for logs in (False, True):
            sur = fit(fn, traces, schema=schema, tolerance=module.TOLERANCE, budget_s=budget, seed=seed,
                      progress=False, budget_clock="work", log_inputs="positive" if logs else ())
            out, errs = fb._surrogate_outputs(sur, columns)
            scored = fb._score(module, sur.output_encoder.kind, ref, out, errs, module.TOLERANCE)
            row = {"study": module_name, "log_inputs": logs, "architecture": sur.metrics.architecture,
                   "input_warps": {c.name: c.warp for c in sur.input_encoder.codes_},
                   **{k: scored.get(k) for k in ("agreement", "mean_error", "max_error", "axbench_error")}}
            print(row, flush=True)
            rows.append(row)
    return rows


def _fmt(x: Any) -> str:
    return "-" if x is None else (f"{x:.4f}" if isinstance(x, float) else str(x))


def print_table(rows: list[dict[str, Any]]) -> None:
    head = f"{'variant':12} {'axbench':>8} {'nonzero':>8} {'median':>8} {'p90':>8} {'>1%':>5} {'clip':>4} " \
           f"{'<1e-5':>7} {'>=1e-2':>7} {'table':>7} {'arch':24} {'calls':>6} {'wall':>6}  note"
    print(head)
    print("-" * len(head))
    for r in rows:
        tiny = sum(r["by_price"][k].get("contribution", 0.0) for k in ("(0, 1e-8)", "[1e-8, 1e-5)"))
        big = r["by_price"][">= 1e-2"].get("contribution", 0.0)
        print(f"{r['variant']:12} {r['axbench_error']:8.4f} {r['nonzero_mean']:8.4f} {r['nonzero_median']:8.4f} "
              f"{r['nonzero_p90']:8.4f} {r['over_1pct_nonzero']:5d} {r['clipped_nonzero']:4d} {tiny:7.4f} {big:7.4f} "
              f"{r.get('table_axbench_error', math.nan):7.4f} "
              f"{r['architecture']:24} {r['oracle_calls']:6d} {r['wall_s']:6.0f}  {r['note']}")
    print("columns: axbench = AxBench error (floor included); nonzero = mean error on rows with price != 0; "
          "<1e-5 / >=1e-2 = contribution to the AxBench error of rows priced below 1e-5 / at least 1e-2; table = AxBench "
          "error over the 820 table rows once each (floor 6/820)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1000 traces, 1000 fresh rows, 12 s budgets")
    parser.add_argument("--variants", nargs="*", default=None)
    parser.add_argument("--budget", type=float, default=None, help="work-clock budget (default 45, quick 12)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--out", default=None)
    parser.add_argument("--ceiling", type=float, default=None, metavar="SECONDS",
                        help="only the memorisation bound (see ceiling()), this many wall seconds")
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--studies", nargs="*", default=None, help="--others: these studies only")
    parser.add_argument("--others", action="store_true",
                        help="only the log-input rule on the other case studies (quick sizes with --quick)")
    parser.add_argument("--log-inputs", action="store_true", help="ceiling: positive inputs also as logs")
    parser.add_argument("--float32", action="store_true", help="ceiling: train in float32")
    parser.add_argument("--with-domain", type=int, default=0, metavar="N",
                        help="ceiling: also learn N domain-wide draws (half the loss), as fit does")
    args = parser.parse_args(argv)
    if args.list:
        for k, v in VARIANTS.items():
            print(f"{k:12} vs {v.get('vs') or '-':8} {v.get('note', '')}")
        return
    import torch

    torch.set_num_threads(1)
    if args.others:
        path = ROOT / "bench" / "results" / (args.out or "axbench_study.json")
        results = json.loads(path.read_text()) if path.exists() else {}
        b = args.budget or (12.0 if args.quick else 45.0)
        n = 1000 if args.quick else 4000
        key = "others_log_inputs" + ("_quick" if args.quick else "")
        results[key] = {"budget_s": b, "n": n, "seed": args.seed, "clock": "work",
                        "command": "python bench/axbench_study.py --others" + (" --quick" if args.quick else "")
                        + (" --studies " + " ".join(args.studies) if args.studies else ""),
                        "rows": others(b, n, args.seed, args.studies)}
        path.write_text(json.dumps(results, indent=2, default=str))
        return
    if args.ceiling:
        path = ROOT / "bench" / "results" / (args.out or "axbench_study.json")
        results = json.loads(path.read_text()) if path.exists() else {}
        dtype = "float32" if args.float32 else "float64"
        row = ceiling(args.ceiling, width=args.width, seed=args.seed, logs=args.log_inputs, dtype=dtype,
                      domain_rows=args.with_domain)
        key = f"w{args.width}_s{args.ceiling:g}" + ("_log" if args.log_inputs else "") + ("_f32" if args.float32 else "") \
            + (f"_domain{args.with_domain}" if args.with_domain else "")
        results.setdefault("ceiling", {})[key] = row
        path.write_text(json.dumps(results, indent=2, default=str))
        print(json.dumps(row, indent=1))
        return
    budget = args.budget or (12.0 if args.quick else 45.0)
    n = 1000 if args.quick else 4000
    names = args.variants or (QUICK if args.quick else list(VARIANTS))
    for name in names:
        if name not in VARIANTS:
            raise SystemExit(f"unknown variant {name!r}; --list shows them")
    path = ROOT / "bench" / "results" / (args.out or ("axbench_study_quick.json" if args.quick else "axbench_study.json"))
    results: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    results.update({"quick": args.quick, "n_traces": n, "n_fresh": n, "clock": "work",
                    "command": "python bench/axbench_study.py" + (" --quick" if args.quick else "")
                    + " --variants <name>" + (f" --budget {args.budget}" if args.budget else "")
                    + (f" --seed {args.seed}" if args.seed else "")})
    results.setdefault("variants", {})
    s = setup(n, n)
    for name in names:
        print(f"[axbench_study] {name} ...", file=sys.stderr, flush=True)
        row = run_variant(name, VARIANTS[name], s, budget=budget, seed=args.seed)
        key = name if args.seed == 0 and not args.budget else f"{name}@seed{args.seed}@b{budget:g}"
        row["key"] = key
        results["variants"][key] = row
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2, default=str))
        print_table([row])
    print()
    print_table([results["variants"][k] for k in results["variants"]])
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
