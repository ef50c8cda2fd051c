"""Every case study through the whole flow: the README's results table.

    python bench/case_studies.py            # full budgets (the README table)
    python bench/case_studies.py --quick    # small budgets, a first look
    python bench/case_studies.py --study shipping_fee --study check_digit

Writes bench/results/case_studies.json (one row per study, every measured key) and
bench/results/case_studies.md (the markdown table). `neuroswap case-study --all --json FILE`
calls the same `run()` of each study and gives the same rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small budgets (minutes in all)")
    parser.add_argument("--study", action="append", help="run only this study (repeatable)")
    parser.add_argument("--store", default=None, help="trace store URI (default: $NEUROSWAP_STORE or ./neuroswap_traces.db)")
    parser.add_argument("--out", default="neuroswap_report", help="folder for the reports (one per study)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--json", default=None, help="results JSON (default bench/results/case_studies[_quick].json)")
    args = parser.parse_args(argv)

    # No torch.set_num_threads here: the rows must match `neuroswap case-study --all`, which
    # trains with torch's default threads (speed ratios are measured side by side either way).
    from case_studies import STUDIES
    from case_studies._table import jsonable, markdown_table

    names = args.study or list(STUDIES)
    unknown = [n for n in names if n not in STUDIES]
    if unknown:
        parser.error(f"unknown study {unknown[0]!r}; known: {', '.join(STUDIES)}")
    rows = []
    total = time.perf_counter()
    for name in names:
        print(f"== {name}: {STUDIES[name].DESCRIPTION}", flush=True)
        start = time.perf_counter()
        row = STUDIES[name].run(store=args.store, out=str(Path(args.out) / name), quick=args.quick,
                                progress=not args.no_progress, seed=args.seed)
        row = dict(row)
        row.setdefault("study", name)
        row.setdefault("wall_s", time.perf_counter() - start)
        rows.append(jsonable(row))
        print(f"   {name}: {time.perf_counter() - start:.1f} s wall", flush=True)
    elapsed = time.perf_counter() - total

    suffix = "_quick" if args.quick else ""
    json_path = Path(args.json) if args.json else RESULTS / f"case_studies{suffix}.json"
    md_path = json_path.with_suffix(".md")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "command": "python bench/case_studies.py" + (" --quick" if args.quick else "")
                   + "".join(f" --study {n}" for n in (args.study or [])),
        "quick": args.quick, "seed": args.seed, "total_wall_s": round(elapsed, 1),
        "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }
    json_path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    table = markdown_table(rows)
    md_path.write_text(
        f"<!-- {meta['command']} ({meta['date_utc']} UTC, {meta['cpus']} CPUs, {elapsed:.0f} s) -->\n\n{table}")
    print()
    print(table)
    print("wall time per study: " + ", ".join(f"{r['study']} {r['wall_s']:.0f} s" for r in rows)
          + f"; total {elapsed:.0f} s")
    print(f"written: {json_path.relative_to(ROOT) if json_path.is_relative_to(ROOT) else json_path}, "
          f"{md_path.relative_to(ROOT) if md_path.is_relative_to(ROOT) else md_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
