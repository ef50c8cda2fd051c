"""Does `fit(..., budget_clock="work")` give one surrogate per seed, whatever the load?

For each case-study function, four fits with the same seed and budget: on the wall clock and on
the work clock, each once on a quiet machine and once with another process spinning on a core
(a loaded machine). Reported: whether the two work-clock surrogates
are bit-identical, the held-out agreement of each fit, and the wall time a work-clock fit took
per work second (how the nominal costs compare with this machine now).

    python bench/work_clock.py            # 4 functions, 10 s budget
    python bench/work_clock.py --quick    # 2 functions, 4 s budget

Writes bench/results/work_clock.json.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--budget", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    budget = args.budget or (4.0 if args.quick else 10.0)
    studies = STUDIES[:2] if args.quick else STUDIES
    started = time.monotonic()
    rows = []
    for module in studies:
        fn = module.FUNCTION
        schema = Schema.from_function(fn, **module.SPECS)
        traces = Traces.from_calls(fn, module.generate_inputs(1000, seed=args.seed))
        row: dict[str, Any] = {"study": module.NAME, "budget_s": budget}
        for clock in ("wall", "work"):
            for busy in (False, True):
                with competing_load(busy):
                    began = time.monotonic()
                    surrogate = fit(fn, traces, schema=schema, tolerance=module.TOLERANCE, budget_s=budget,
                                    seed=args.seed, progress=False, budget_clock=clock)
                    wall = time.monotonic() - began
                key = f"{clock}{'_busy' if busy else ''}"
                row[key] = {"agreement": surrogate.metrics.agreement, "oracle_calls": surrogate.metrics.oracle_calls,
                            "architecture": surrogate.metrics.architecture, "wall_s": round(wall, 2),
                            "fingerprint": parameters_digest(surrogate)}
                print(f"{module.NAME:16s} {key:10s} agreement {surrogate.metrics.agreement:.4f} "
                      f"calls {surrogate.metrics.oracle_calls:6d} wall {wall:6.1f}s {row[key]['fingerprint']}",
                      flush=True)
        row["work_identical"] = row["work"]["fingerprint"] == row["work_busy"]["fingerprint"]
        row["wall_identical"] = row["wall"]["fingerprint"] == row["wall_busy"]["fingerprint"]
        row["wall_per_work_second"] = round(row["work"]["wall_s"] / budget, 2)
        rows.append(row)
    print()
    print("| function | work clock: identical under load | agreement quiet / busy (work) "
          "| agreement quiet / busy (wall) | wall s per work s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['study']} | {'yes' if r['work_identical'] else 'NO'} "
              f"| {r['work']['agreement']:.4f} / {r['work_busy']['agreement']:.4f} "
              f"| {r['wall']['agreement']:.4f} / {r['wall_busy']['agreement']:.4f} | {r['wall_per_work_second']} |")
    result = {"quick": args.quick, "budget_s": budget, "seed": args.seed, "rows": rows,
              "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
              "wall_s": round(time.monotonic() - started, 1)}
    out = ROOT / "bench" / "results" / "work_clock.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
