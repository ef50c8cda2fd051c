"""Does fit's exact-program search give one program per seed at any load, and what does its
nominal work cost here?

On the work clock fit limits the search (`probes._exact_rules.learn_exact`) in nominal work:
max(60, 2 x budget_s) seconds of it (`replace._exact_program.EXACT_WORK_S`), its traced calls
charged by the lines they run and its expression search by the least-squares designs it builds.
For each function of the untuned suite asked for, the search runs as fit runs it (3,000 recorded
calls, seed 0, `--work` nominal seconds) once on a quiet machine and once with `--busy` processes
spinning; reported: whether the two results are identical (calls, nominal work, notes, partition,
pieces), and CPU seconds per nominal second (the meter leaves the partition's fitting and
sampling out, so this varies by function).

    python bench/exact_work.py --only parcel_tariff bracket_tax --work 120
Writes bench/results/exact_work.json (or --out) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.untuned_functions import FUNCTIONS  # noqa: E402
from probes import Traces  # noqa: E402
from probes._clock import competing_load  # noqa: E402
from probes._exact_rules import learn_exact  # noqa: E402
from replace._exact_program import EXACT_CHECK_ROWS, EXACT_CHECKS, EXACT_SAMPLES  # noqa: E402


def fingerprint(found: Any) -> str:
    """What the search found, as one digest: its calls and their rows, notes, partition and pieces."""
    if isinstance(found, str):
        return hashlib.sha256(found.encode()).hexdigest()[:16]
    text = repr((found.calls, found.work_s, found.notes, found.cuts_total, found.cuts_snapped, found.misrouted,
                 [repr(leaf) for leaf in found.tree.leaves()], [repr(piece) for piece in found.pieces],
                 [sorted(row.items()) for row in found.rows]))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_one(name: str, work_s: float, busy: int, seed: int, n_traces: int) -> dict[str, Any]:
    entry = FUNCTIONS[name]
    traces = Traces.from_calls(entry.function, entry.generate(n_traces, seed=100 + seed))
    with contextlib.ExitStack() as stack:
        for _ in range(busy):
            stack.enter_context(competing_load())
        wall, cpu = time.perf_counter(), time.process_time()
        found = learn_exact(entry.function, entry.schema(), traces=traces, n_samples=EXACT_SAMPLES, seed=seed,
                            tolerance=entry.tolerance, work_s=work_s, checks=EXACT_CHECKS, check_rows=EXACT_CHECK_ROWS)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    out: dict[str, Any] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "fingerprint": fingerprint(found)}
    if isinstance(found, str):
        out["reason"] = found
    else:
        out.update(calls=found.calls, work_s=found.work_s, notes=found.notes, leaves=len(found.tree.leaves()),
                   cpu_per_work_s=round(cpu / max(found.work_s, 1e-9), 2))
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", default=["parcel_tariff", "bracket_tax"], metavar="NAME",
                        help=f"functions of the untuned suite: {', '.join(FUNCTIONS)}")
    parser.add_argument("--work", type=float, default=120.0, help="nominal seconds (fit's at budget_s=60: 120)")
    parser.add_argument("--busy", type=int, default=2, help="spinning processes during the loaded run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--traces", type=int, default=3000)
    parser.add_argument("--out", default="exact_work.json", help="file name under bench/results (or an absolute path)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.only if n not in FUNCTIONS]
    if unknown:
        parser.error(f"--only: unknown {unknown}; known: {', '.join(FUNCTIONS)}")
    rows = []
    for name in args.only:
        quiet = run_one(name, args.work, 0, args.seed, args.traces)
        loaded = run_one(name, args.work, args.busy, args.seed, args.traces)
        row = {"function": name, "quiet": quiet, "busy": loaded, "identical": quiet["fingerprint"] == loaded["fingerprint"]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {"work_s": args.work, "busy_processes": args.busy, "seed": args.seed, "traces": args.traces, "rows": rows}
    out = ROOT / "bench" / "results" / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print("\n| function | identical quiet / busy | traced calls | nominal work s | CPU s quiet / busy | CPU s per nominal s | cut short |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        q, b = r["quiet"], r["busy"]
        cut = any(n.startswith("budget:") for n in q.get("notes", []))
        print(f"| {r['function']} | {'yes' if r['identical'] else 'NO'} | {q.get('calls', '-')} | {q.get('work_s', '-')} "
              f"| {q['cpu_s']} / {b['cpu_s']} | {q.get('cpu_per_work_s', '-')} | {'yes' if cut else 'no'} |")
    print(f"\nwrote {out}")
    return result


if __name__ == "__main__":
    main()
