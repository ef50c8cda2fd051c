"""Does `fit(..., budget_clock="work")` give one surrogate per seed, whatever the load?

For each case-study function, four fits with the same seed and budget: on the wall clock and on
the work clock, each once on a quiet machine and once with another process spinning on a core
(a loaded machine). Reported: whether the two work-clock surrogates
are bit-identical, the held-out agreement of each fit, and the wall time a work-clock fit took
per work second (how the nominal costs compare with this machine now).

    python bench/work_clock.py            # 4 functions, 10 s budget
    python bench/work_clock.py --quick    # 2 functions, 4 s budget
    python bench/work_clock.py --untuned parcel_tariff --budget 60 --traces 3000 --clocks work \
        --out work_clock_parcel_tariff.json   # a function of the untuned suite, as bench/untuned.py fits it

The fingerprint covers the network's parameters and the exact program (whose search is limited
in work on the work clock, not in wall time). Writes bench/results/work_clock.json (or --out).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from case_studies import blackscholes, insurance_class, loan_schedule, shipping_fee  # noqa: E402
from probes import Schema, Traces  # noqa: E402
from probes._clock import competing_load  # noqa: E402
from replace import fit  # noqa: E402
from replace._distributed import parameters_digest  # noqa: E402

STUDIES = [shipping_fee, blackscholes, insurance_class, loan_schedule]


def fingerprint(surrogate: Any) -> str:
    """The network's parameters and the exact program's content, as one digest."""
    program = surrogate.program_.to_dict() if surrogate.program_ is not None else None
    text = parameters_digest(surrogate) + json.dumps(program, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _functions(args: argparse.Namespace) -> list[tuple[str, Any, Schema, Traces, Any]]:
    """(name, function, schema, traces, tolerance) per function the run fits."""
    if args.untuned:
        from bench.untuned_functions import FUNCTIONS

        unknown = [name for name in args.untuned if name not in FUNCTIONS]
        if unknown:
            raise SystemExit(f"--untuned: unknown {unknown}; known: {', '.join(FUNCTIONS)}")
        out = []
        for name in args.untuned:
            entry = FUNCTIONS[name]
            traces = Traces.from_calls(entry.function, entry.generate(args.traces, seed=100 + args.seed))
            out.append((name, entry.function, entry.schema(), traces, entry.tolerance))
        return out
    studies = STUDIES[:2] if args.quick else STUDIES
    return [(m.NAME, m.FUNCTION, Schema.from_function(m.FUNCTION, **m.SPECS),
             Traces.from_calls(m.FUNCTION, m.generate_inputs(args.traces, seed=args.seed)), m.TOLERANCE)
            for m in studies]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--budget", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--untuned", nargs="+", metavar="NAME", help="functions of bench/untuned_functions.py instead")
    parser.add_argument("--traces", type=int, default=1000, help="recorded calls fitted on (default 1000)")
    parser.add_argument("--clocks", nargs="+", choices=("wall", "work"), default=["wall", "work"])
    parser.add_argument("--busy-processes", type=int, default=1, help="spinning processes for the loaded runs")
    parser.add_argument("--out", default="work_clock.json", help="file name under bench/results")
    args = parser.parse_args()
    budget = args.budget or (4.0 if args.quick else 10.0)
    started = time.monotonic()
    rows = []
    for name, fn, schema, traces, tolerance in _functions(args):
        row: dict[str, Any] = {"study": name, "budget_s": budget}
        for clock in args.clocks:
            for busy in (False, True):
                with contextlib.ExitStack() as stack:
                    for _ in range(args.busy_processes if busy else 0):
                        stack.enter_context(competing_load())
                    began = time.monotonic()
                    surrogate = fit(fn, traces, schema=schema, tolerance=tolerance, budget_s=budget,
                                    seed=args.seed, progress=False, budget_clock=clock)
                    wall = time.monotonic() - began
                key = f"{clock}{'_busy' if busy else ''}"
                exact = surrogate.manifest.get("training", {}).get("exact_program") or {}
                row[key] = {"agreement": surrogate.metrics.agreement, "oracle_calls": surrogate.metrics.oracle_calls,
                            "architecture": surrogate.metrics.architecture, "wall_s": round(wall, 2),
                            "fingerprint": fingerprint(surrogate),
                            "exact_program": {k: exact.get(k) for k in ("used", "served_leaves", "traced_calls",
                                                                         "traced_work_s", "seconds", "note")}}
                print(f"{name:16s} {key:10s} agreement {surrogate.metrics.agreement:.4f} "
                      f"calls {surrogate.metrics.oracle_calls:6d} wall {wall:6.1f}s {row[key]['fingerprint']} "
                      f"exact {row[key]['exact_program']}", flush=True)
        for clock in args.clocks:
            row[f"{clock}_identical"] = row[clock]["fingerprint"] == row[f"{clock}_busy"]["fingerprint"]
        if "work" in args.clocks:
            row["wall_per_work_second"] = round(row["work"]["wall_s"] / budget, 2)
        rows.append(row)
    print()
    print("| function | work clock: identical under load | agreement quiet / busy (work) "
          "| agreement quiet / busy (wall) | wall s per work s |")
    print("|---|---|---|---|---|")
    def pair(r: dict[str, Any], clock: str) -> str:
        return f"{r[clock]['agreement']:.4f} / {r[clock + '_busy']['agreement']:.4f}" if clock in r else "-"

    for r in rows:
        identical = {True: "yes", False: "NO", None: "-"}[r.get("work_identical")]
        print(f"| {r['study']} | {identical} | {pair(r, 'work')} | {pair(r, 'wall')} "
              f"| {r.get('wall_per_work_second', '-')} |")
    result = {"quick": args.quick, "budget_s": budget, "seed": args.seed, "traces": args.traces,
              "busy_processes": args.busy_processes, "rows": rows,
              "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
              "wall_s": round(time.monotonic() - started, 1)}
    out = ROOT / "bench" / "results" / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
