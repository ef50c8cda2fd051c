"""Does the certified guard keep its promise on fresh production inputs, and what does it serve?

Per case study: record `generate_inputs(n_traces, seed=0)` as traces and fit once (the study's
schema, tolerance and FIT_OPTIONS, the work clock, bench/fidelity.py's budget), then for
max_error_rate in 0.001, 0.01, 0.05 at confidence 0.95 compare three gates on the SAME
calibration rows (the ones fit labelled after training):

- "certified": fit's own score (the logistic error predictor) thresholded by the shipped
  certification (`replace._calibration.certify`: Learn-then-Test fixed-sequence testing since
  a4298b3, SGR before), i.e. `swap(fn, s, "guarded", max_error_rate=r)` as shipped;
- "sgr_spread" (the key kept from the first runs): the same certification on the ensemble
  spread alone (the predictor refitted with use=("spread",), its calibration rows rescored);
- "old_spread": the deprecated spread gate (`swap(..., spread_scale=1.0)`), which has no rate:
  the same served rows for every rate, judged against each.

The headline is measured on fresh production inputs: `generate_inputs` with a seed neither the
traces nor fit used (20,000 by default; at rate 0.001 grown up to 100,000 where the gate
serves too few to say anything), through the real guarded swap's batch form
(`predict_batch`; the old gate call by call), each served answer judged against the original's.
Per gate and rate: served, coverage, wrong served, served error, the one-sided binomial test of
"served error > rate" at 95%, the certificate's numbers on the production calibration rows and
the whole-domain rows at the same threshold. Then an ablation of the score's features (coverage
at each rate on the production calibration rows), and a summary: which (function, rate) pairs
serve significantly above the rate (the certificate allows about 5% of them), coverage at 1%
certified vs sgr_spread, and the live audit's numbers from bench/results/guard_trip.json.

    python bench/guard.py                      # all six studies, 45 s fits (10-20 minutes idle; 56 on
                                               # two cores shared with other jobs)
    python bench/guard.py --quick              # smoke run (small fits and samples)
    python bench/guard.py --only shipping_fee inversek2j --budget 20 --seed 1 --out guard_seed1.json
    python bench/guard.py --budget 20 --traces 10000 --out guard_10k.json   # enough held out for 0.1%
    python bench/guard.py --budget 20 --fit-option exact='"off"' --out guard_neural.json

Writes bench/results/guard.json (guard_quick.json with --quick) and the markdown tables beside it
(guard.md), and prints them.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import math
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from case_studies._guarded import ALPHA, Original, counts, measure_batch, measure_calls  # noqa: E402
from probes import Schema, Traces  # noqa: E402

RATES = (0.001, 0.01, 0.05)
CONFIDENCE = 0.95
GATES = ("certified", "sgr_spread", "old_spread")
#: (name, features the error predictor may read): each adds to the one before
ABLATION = (
    ("spread", ("spread",)),
    ("+raises+class_margin", ("spread", "raises", "class_margin")),
    ("+gate", ("spread", "raises", "class_margin", "gate_margin", "gate_votes")),
    ("+cut_distance", ("spread", "raises", "class_margin", "gate_margin", "gate_votes", "cut_distance")),
    ("+path_error (all)", ("spread", "raises", "class_margin", "gate_margin", "gate_votes", "cut_distance",
                           "path_error")),
)
STUDIES = ("shipping_fee", "blackscholes", "inversek2j", "check_digit", "insurance_class", "loan_schedule")
#: fresh inputs' seed offset: neither the traces (seed 0) nor bench/fidelity's fresh inputs (seed 1)
FRESH_SEED = 7_000_003


def _columns(rows: Sequence[Mapping[str, Any]], schema: Schema) -> dict[str, np.ndarray]:
    from case_studies._flow import _columns as columns_of

    return columns_of(rows, schema)


def _cert(cert: Any) -> dict[str, Any]:
    d = cert.to_dict()
    out = {k: d[k] for k in ("source", "n", "served", "coverage", "errors", "served_error", "upper_bound",
                             "threshold", "reason")}
    dom = d.get("domain")
    out["domain"] = ({k: dom[k] for k in ("n", "served", "coverage", "served_error", "upper_bound")}
                     if dom else None)
    return out


def spread_calibration(surrogate: Any, seed: int = 0) -> Any:
    """The surrogate's calibration rows rescored by the spread-only predictor (learned on the
    same validation rows): SGR with the spread as the score."""
    from replace._calibration import Calibration, fit_predictor_on, label

    rows = surrogate.guard_rows_
    predictor = fit_predictor_on(surrogate, *rows["validation"], seed=seed, use=("spread",))
    sets = {src: label(surrogate, *rows[src], source=src, predictor=predictor)
            for src in ("production", "domain", "traces") if src in rows}
    return Calibration(predictor, sets, surrogate.calibration.oracle_calls)


def ablation(surrogate: Any, rates: Sequence[float], confidence: float, seed: int = 0) -> list[dict[str, Any]]:
    """Coverage of SGR on the production calibration rows (else whatever fit labelled) with the
    error predictor refitted on the validation rows from growing feature subsets."""
    from replace._calibration import certify, fit_predictor_on, label

    rows = surrogate.guard_rows_
    source = next(s for s in ("production", "traces", "domain") if s in rows)
    out = []
    for name, use in ABLATION:
        predictor = fit_predictor_on(surrogate, *rows["validation"], seed=seed, use=use)
        cal = label(surrogate, *rows[source], source=source, predictor=predictor)
        entry: dict[str, Any] = {"features": name, "use": list(use), "predictor": predictor.kind,
                                 "source": source, "n": len(cal)}
        for r in rates:
            cert = certify(cal.score, cal.wrong, max_error_rate=r, confidence=confidence, source=source)
            entry[f"coverage_{r:g}"] = cert.coverage
            entry[f"served_error_{r:g}"] = cert.served_error
        out.append(entry)
    return out


def evaluate_guards(fn: Callable[..., Any], surrogate: Any, generate: Callable[..., list[dict[str, Any]]], *,
                    schema: Schema, rates: Sequence[float] = RATES, confidence: float = CONFIDENCE,
                    n_fresh: int = 20_000, max_fresh: int = 100_000, fresh_seed: int = FRESH_SEED,
                    grow_below_rate: float = 0.001, served_per_rate: float = 5.0, max_extra_s: float = 240.0,
                    seed: int = 0, do_ablation: bool = True) -> dict[str, Any]:
    """The three gates of one fitted surrogate on its calibration rows and on fresh inputs.

    `generate(n, seed=...)` draws production inputs (kwargs dicts). At rates <= `grow_below_rate`
    a rated gate that serves fewer than `served_per_rate / rate` of the `n_fresh` inputs is
    measured on a larger sample (more rows from `generate` with seed `fresh_seed + 1`), up to
    `max_fresh` inputs and `max_extra_s` seconds of the original's calls (its cost measured on
    the first sample).
    """
    from replace import swap
    from replace._calibration import output_kind
    from replace._score import evaluate

    started = time.perf_counter()
    original = Original(fn)
    rows = list(generate(n_fresh, seed=fresh_seed))
    columns = _columns(rows, schema)
    truth = original.outcomes(rows)
    per_call = original.per_call_s or 0.0
    kind = output_kind(surrogate)

    # the surrogate alone on the fresh inputs (no gate): how wrong it is where nobody guards it
    details = evaluate(surrogate, columns).details
    answers = surrogate.python_outputs(details) if hasattr(surrogate, "python_outputs") else list(details.outputs)
    from case_studies._guarded import judge

    unguarded_wrong = judge(kind, truth[0], truth[1], answers, details.errors, surrogate.tolerance)

    spread_cal = spread_calibration(surrogate, seed)
    spread_surrogate = copy.copy(surrogate)
    spread_surrogate.calibration = spread_cal
    rated = {"certified": surrogate, "sgr_spread": spread_surrogate}

    def guarded(s: Any, rate: float) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "serves nothing": the numbers say it
            return swap(original.function, s, "guarded", max_error_rate=rate, confidence=confidence)

    gates: dict[str, list[dict[str, Any]]] = {g: [] for g in GATES}
    grown: dict[str, Any] = {}
    big: tuple[list[dict[str, Any]], dict[str, np.ndarray], Any] | None = None
    for rate in rates:
        plans = {name: guarded(s, rate) for name, s in rated.items()}
        results = {name: measure_batch(sw, columns, truth, rate) for name, sw in plans.items()}
        if rate <= grow_below_rate:
            want = 0
            for name, res in results.items():
                target = served_per_rate / rate
                if plans[name].guard.certificate.serves and res["served"] < target:
                    coverage = res["coverage"] if res["served"] else 1.0 / n_fresh
                    want = max(want, int(math.ceil(target / coverage)))
            affordable = n_fresh + (int(max_extra_s / per_call) if per_call > 0 else max_fresh)
            n_big = min(max(want, n_fresh), max_fresh, affordable)
            if n_big > n_fresh:
                if big is None or len(big[0]) < n_big:
                    extra = list(generate(n_big - n_fresh, seed=fresh_seed + 1))
                    rows_big = rows + extra
                    columns_big = _columns(rows_big, schema)
                    extra_truth = original.outcomes(extra)
                    truth_big = (truth[0] + extra_truth[0], truth[1] + extra_truth[1])
                    big = (rows_big, columns_big, truth_big)
                grown[f"{rate:g}"] = {"wanted": want, "n_fresh": len(big[0]),
                                      "limited_by": ("max_fresh" if want > max_fresh and n_big == max_fresh
                                                     else "max_extra_s" if n_big < min(want, max_fresh) else None)}
                for name, res in list(results.items()):
                    small = {k: res[k] for k in ("n_fresh", "served", "coverage", "wrong", "served_error")}
                    results[name] = {**measure_batch(plans[name], big[1], big[2], rate), "first_sample": small}
        for name, res in results.items():
            gates[name].append({**res, "calibration": _cert(plans[name].guard.certificate)})

    # the deprecated spread gate: no rate, no batch form; call by call on the first sample, and on
    # the calibration rows (known answers, so the original is not called for them)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = swap(original.function, surrogate, "guarded", spread_scale=1.0)
    fresh_old = measure_calls(old, rows, truth, rates[0])
    cal_old: dict[str, Any] = {}
    for source, (cols, outs, errs) in surrogate.guard_rows_.items():
        if source == "validation":
            continue
        cal_rows = schema.rows(cols)
        original.prefill(cal_rows, outs, errs)
        cal_old[source] = measure_calls(old, cal_rows, (list(outs), list(errs)), rates[0])
    for rate in rates:
        entry = counts(fresh_old["n_fresh"], fresh_old["served"], fresh_old["wrong"], rate)
        cert_like = {}
        for source, res in cal_old.items():
            cert_like[source] = {"n": res["n_fresh"], "served": res["served"], "coverage": res["coverage"],
                                 "errors": res["wrong"], "served_error": res["served_error"]}
        calibration = dict(cert_like.get("production") or cert_like.get("traces") or {})
        calibration["domain"] = cert_like.get("domain")
        gates["old_spread"].append({**entry, "reference_mismatch": None, "calibration": calibration})

    cal = surrogate.calibration
    result = {
        "n_fresh": n_fresh, "fresh_seed": fresh_seed, "confidence": confidence, "rates": list(rates),
        "output_kind": kind, "grown": grown,
        "original_us_per_call": per_call * 1e6, "original_calls": original.calls,
        "unguarded_error": float(unguarded_wrong.mean()) if len(unguarded_wrong) else math.nan,
        "calibration_rows": {k: len(v) for k, v in cal.sets.items()} if cal is not None else {},
        "calibration_wrong_share": {k: float(np.mean(v.wrong)) if len(v) else math.nan
                                    for k, v in cal.sets.items()} if cal is not None else {},
        "validation_rows": len(surrogate.guard_rows_["validation"][1]),
        "predictor": cal.predictor.kind if cal is not None else None,
        "spread_predictor": spread_cal.predictor.kind,
        "gates": gates,
    }
    if do_ablation:
        result["ablation"] = ablation(surrogate, rates, confidence, seed)
        fitted = cal.certify(0.01, confidence).coverage if cal is not None else math.nan
        last = result["ablation"][-1].get("coverage_0.01")
        result["ablation_all_matches_fit"] = bool(last is not None and abs(last - fitted) < 1e-12)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _study(name: str) -> Any:
    return importlib.import_module(f"case_studies.{name}")


def run_study(name: str, *, budget_s: float, n_traces: int, seed: int, n_fresh: int, max_fresh: int,
              max_extra_s: float, fit_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Fit one case study once (its usual settings, the work clock) and measure its gates."""
    from case_studies._flow import make_schema
    from replace import fit

    module = _study(name)
    fn = module.FUNCTION
    schema = make_schema(module)
    started = time.perf_counter()
    traces = Traces.from_calls(fn, module.generate_inputs(n_traces, seed=0))
    options = {"budget_clock": "work", **getattr(module, "FIT_OPTIONS", {}), **(fit_options or {})}
    surrogate = fit(fn, traces, schema=schema, tolerance=module.TOLERANCE, budget_s=budget_s, seed=seed,
                    progress=False, **options)
    fit_s = time.perf_counter() - started
    row: dict[str, Any] = {
        "study": name, "function": f"{module.__name__.rsplit('.', 1)[-1]}.{fn.__name__}", "budget_s": budget_s,
        "n_traces": n_traces, "seed": seed, "fit_options": options, "fit_wall_s": round(fit_s, 1),
        "tolerance": module.TOLERANCE.to_dict(), "architecture": surrogate.architecture,
        "fit_agreement": surrogate.metrics.agreement, "oracle_calls": surrogate.metrics.oracle_calls,
        "calibration_calls": surrogate.calibration.oracle_calls if surrogate.calibration is not None else 0,
    }
    row.update(evaluate_guards(fn, surrogate, module.generate_inputs, schema=schema, n_fresh=n_fresh,
                               max_fresh=max_fresh, fresh_seed=FRESH_SEED + seed, max_extra_s=max_extra_s,
                               seed=seed))
    return row


# -- summary and tables ------------------------------------------------------------------------

def _by_rate(row: Mapping[str, Any], gate: str, rate: float) -> Mapping[str, Any] | None:
    return next((e for e in row["gates"][gate] if abs(e["max_error_rate"] - rate) < 1e-15), None)


def summarise(studies: Sequence[Mapping[str, Any]], trip: Mapping[str, Any] | None) -> dict[str, Any]:
    """Per function and rate, is the certified served error significantly above the rate? The
    share of pairs that are (with served calls), against the 5% a 95% certificate allows;
    coverage at 1% certified vs sgr_spread; the live audit (bench/guard_trip.py)."""
    from scipy.stats import binom

    pairs = []
    for row in studies:
        for gate in ("certified", "sgr_spread", "old_spread"):
            for e in row["gates"][gate]:
                pairs.append({"study": row["study"], "gate": gate, "max_error_rate": e["max_error_rate"],
                              "n_fresh": e["n_fresh"], "served": e["served"], "wrong": e["wrong"],
                              "served_error": e["served_error"], "p_value": e["p_value"],
                              "significantly_above": e["significantly_above"]})
    share = {}
    for gate in GATES:
        mine = [p for p in pairs if p["gate"] == gate and p["served"] > 0]
        above = sum(p["significantly_above"] for p in mine)
        share[gate] = {"pairs_with_served_calls": len(mine), "significantly_above": above,
                       "share": above / len(mine) if mine else math.nan,
                       # if every pair met its rate, each test says "above" with chance <= 5%:
                       # P(at least this many of them) under that worst case
                       "p_at_least_this_many_if_5pct": float(binom.sf(above - 1, len(mine), ALPHA)) if mine else 1.0,
                       "above": [f"{p['study']}@{p['max_error_rate']:g}" for p in mine if p["significantly_above"]]}
    coverage_1pct = {row["study"]: {gate: {"fresh": (_by_rate(row, gate, 0.01) or {}).get("coverage"),
                                           "calibration": ((_by_rate(row, gate, 0.01) or {}).get("calibration")
                                                           or {}).get("coverage")}
                                    for gate in GATES} for row in studies}
    audit = None
    if trip:
        audit = {"audit_rate": trip.get("audit_rate"), "false_alarm": trip.get("false_alarm"),
                 "wrong_rate_after_break": trip.get("wrong_rate"), "streams": trip.get("streams"),
                 "rates": [{k: r.get(k) for k in ("max_error_rate", "detected_within_500", "median_delay_calls",
                                                   "median_delay_audits", "false_alarm_share_100k",
                                                   "false_alarm_within_bound", "zero_error_trips_100k")}
                           | {"after_2000_clean_audits": r.get("after_2000_clean_audits")}
                           for r in trip.get("rates", [])]}
    return {"pairs": pairs, "share_significantly_above": share, "coverage_at_1pct": coverage_1pct,
            "live_audit": audit}


def _pct(value: Any, digits: int = 1) -> str:
    if isinstance(value, str):  # read back from the JSON ("nan")
        try:
            value = float(value)
        except ValueError:
            return "-"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:.{digits}f}%"


def _err(e: Mapping[str, Any]) -> str:
    if not e["served"]:
        return "- (0 served)"
    mark = " **above**" if e["significantly_above"] else ""
    return f"{_pct(e['served_error'], 2)} ({e['wrong']}/{e['served']}){mark}"


def markdown(results: Mapping[str, Any]) -> str:
    rates = results["rates"]
    lines = [f"Guarded swap on fresh production inputs (confidence {results['confidence']}, "
             f"fit {results['budget_s']} s on the work clock, seed {results['seed']}): coverage / served error "
             "(wrong/served); **above** = significantly above the rate (one-sided binomial, 5%)", ""]
    head = ["study", "gate"] + [f"rate {r:g}: coverage / served error" for r in rates] + ["n fresh"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in results["studies"]:
        for gate in GATES:
            cells = [row["study"], gate]
            ns = set()
            for r in rates:
                e = _by_rate(row, gate, r)
                if e is None:
                    cells.append("-")
                    continue
                ns.add(e["n_fresh"])
                cells.append(f"{_pct(e['coverage'])} / {_err(e)}")
            cells.append("/".join(str(n) for n in sorted(ns)))
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Same gates on the calibration rows fit labelled: coverage on the production-like rows "
              "[whole-domain rows: coverage, served error]", ""]
    head = ["study", "gate"] + [f"rate {r:g}" for r in rates]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in results["studies"]:
        for gate in GATES:
            cells = [row["study"], gate]
            for r in rates:
                c = (_by_rate(row, gate, r) or {}).get("calibration") or {}
                dom = c.get("domain") or {}
                cells.append(f"{_pct(c.get('coverage'))} [{_pct(dom.get('coverage'))}, err "
                             f"{_pct(dom.get('served_error'), 2)}]")
            lines.append("| " + " | ".join(cells) + " |")
    if any("ablation" in row for row in results["studies"]):
        names = [name for name, _ in ABLATION]
        lines += ["", "Ablation of the score: coverage at 1% on the production calibration rows (SGR, 95%)", ""]
        lines += ["| study | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 1)]
        for row in results["studies"]:
            cells = [row["study"]] + [_pct(a.get("coverage_0.01")) + ("" if a["predictor"] == "logistic" or
                                                                    a["use"] == ["spread"] else " (spread)")
                                      for a in row.get("ablation", [])]
            lines.append("| " + " | ".join(cells) + " |")
    summary = results.get("summary") or {}
    share = summary.get("share_significantly_above") or {}
    if share:
        lines += [""]
        for gate in GATES:
            s = share[gate]
            lines.append(f"- {gate}: {s['significantly_above']} of {s['pairs_with_served_calls']} (function, rate) "
                         f"pairs significantly above the rate ({_pct(s['share'])}; P(>= that many | every pair "
                         f"at its rate) = {s['p_at_least_this_many_if_5pct']:.3g})"
                         + (f": {', '.join(s['above'])}" if s["above"] else ""))
    audit = summary.get("live_audit")
    if audit:
        lines.append(f"- live audit (bench/guard_trip.py, audit rate {audit['audit_rate']}, 30%-wrong break): "
                     + "; ".join(f"rate {r['max_error_rate']:g}: {_pct(r['detected_within_500'])} tripped within 500 "
                                 f"served calls (median {r['median_delay_calls']}), false trips over 100k calls "
                                 f"{_pct(r['false_alarm_share_100k'])} (bound {_pct(audit['false_alarm'])})"
                                 for r in audit["rates"]))
    return "\n".join(lines) + "\n"


def _code_version() -> str:
    """The commit measured, and whether the working tree differed from it."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}{' + uncommitted changes' if dirty else ''}" if head else "unknown"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 8 s fits, 1000 traces, 3000 fresh inputs")
    parser.add_argument("--budget", type=float, default=None, help="fit budget in seconds (default 45, quick 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="*", default=None, help=f"study names ({', '.join(STUDIES)})")
    parser.add_argument("--fresh", type=int, default=None, help="fresh inputs (default 20000, quick 3000)")
    parser.add_argument("--max-fresh", type=int, default=None, help="grown sample at rate 0.001 (default 100000)")
    parser.add_argument("--max-extra-s", type=float, default=240.0,
                        help="most seconds of the original's calls spent growing the sample")
    parser.add_argument("--traces", type=int, default=None,
                        help="recorded calls per study (default 4000, quick 1000); fit holds 40%% of them out "
                             "as the production calibration, and 0.1%% needs about 3,000 of those")
    parser.add_argument("--fit-option", action="append", default=[], metavar="KEY=VALUE",
                        help="extra fit option for every study (JSON value), e.g. exact='\"off\"'")
    parser.add_argument("--out", default=None, help="file name under bench/results (default guard.json)")
    args = parser.parse_args(argv)
    from bench._options import fit_options as parse_fit_options

    fit_options = parse_fit_options(args.fit_option, parser)
    unknown = [n for n in args.only or () if n not in STUDIES]
    if unknown:
        parser.error(f"unknown study {unknown[0]!r}; known: {', '.join(STUDIES)}")
    import torch

    torch.set_num_threads(1)
    quick = args.quick
    budget = args.budget or (8.0 if quick else 45.0)
    n_traces = args.traces or (1000 if quick else 4000)
    n_fresh = args.fresh or (3000 if quick else 20_000)
    max_fresh = args.max_fresh or (10_000 if quick else 100_000)
    results: dict[str, Any] = {
        "bench": "guard", "quick": quick, "budget_s": budget, "budget_clock": "work", "seed": args.seed,
        "n_traces": n_traces, "n_fresh": n_fresh, "max_fresh": max_fresh, "rates": list(RATES),
        "confidence": CONFIDENCE, "alpha": ALPHA, "gates": list(GATES), "fit_options": fit_options,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "torch_threads": 1},
        "code": _code_version(), "studies": [],
    }
    started = time.monotonic()
    for name in STUDIES:
        if args.only and name not in args.only:
            continue
        print(f"[guard] {name} ...", file=sys.stderr, flush=True)
        row = run_study(name, budget_s=budget, n_traces=n_traces, seed=args.seed, n_fresh=n_fresh,
                        max_fresh=max_fresh, max_extra_s=args.max_extra_s, fit_options=fit_options)
        print(f"[guard] {name}: fit {row['fit_wall_s']} s, gates {row['seconds']} s", file=sys.stderr, flush=True)
        results["studies"].append(row)
    trip_path = ROOT / "bench" / "results" / "guard_trip.json"
    trip = json.loads(trip_path.read_text()) if trip_path.exists() else None
    results["summary"] = summarise(results["studies"], trip)
    results["wall_s"] = round(time.monotonic() - started, 1)
    from case_studies._table import jsonable

    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / (args.out or ("guard_quick.json" if quick else "guard.json"))
    path.write_text(json.dumps(jsonable(results), indent=2) + "\n")
    table = markdown(results)
    path.with_suffix(".md").write_text(table)
    print(table)
    print(f"wrote {path} and {path.with_suffix('.md').name}")
    return results


if __name__ == "__main__":
    main()
