"""Do two runs of the case studies agree? Field by field, timing fields apart.

    neuroswap case-study --all --quick --json a.json       # one run (one machine, one load)
    neuroswap case-study --all --quick --json b.json       # another (fresh clone, other load)
    python bench/compare_rows.py a.json b.json

Fidelity fields (agreement, its interval, max error, mined cases, refit figures, rules, baselines,
the guarded swap's invocation rate) must be equal: the case studies spend their budgets on the
work clock, so a seed gives one result at any load. Timing fields (wall and step seconds, speed-up
ratios, microseconds per call) are measured and differ. Writes bench/results/compare_rows.json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

#: measured with a clock, so expected to differ between runs
TIMING = {"step_s", "wall_s", "batch_speedup", "single_call_speedup", "original_us_per_call",
          "batch_original_us_per_row", "batch_surrogate_us_per_row", "batch_original_rows_timed",
          "surrogate_us_per_call", "report", "store"}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def compare(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> dict[str, Any]:
    by_study = {row["study"]: row for row in second}
    out: dict[str, Any] = {}
    for row in first:
        other = by_study.get(row["study"])
        if other is None:
            out[row["study"]] = {"missing_in_second": True}
            continue
        keys = sorted((set(row) | set(other)) - TIMING)
        differ = {k: [row.get(k), other.get(k)] for k in keys if not _same(row.get(k), other.get(k))}
        out[row["study"]] = {"fields_compared": len(keys), "fields_equal": len(keys) - len(differ),
                             "differ": differ}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first")
    parser.add_argument("second")
    parser.add_argument("--out", default="compare_rows.json")
    args = parser.parse_args()
    first = json.loads(Path(args.first).read_text())
    second = json.loads(Path(args.second).read_text())
    first = first["rows"] if isinstance(first, dict) else first
    second = second["rows"] if isinstance(second, dict) else second
    result = compare(first, second)
    print("| study | fidelity fields equal | fields that differ |")
    print("|---|---|---|")
    for study, verdict in result.items():
        if verdict.get("missing_in_second"):
            print(f"| {study} | - | missing in the second run |")
            continue
        differ = ", ".join(verdict["differ"]) or "none"
        print(f"| {study} | {verdict['fields_equal']} / {verdict['fields_compared']} | {differ} |")
    out = ROOT / "bench" / "results" / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"first": args.first, "second": args.second, "studies": result}, indent=2,
                              default=str))
    print(f"\nwrote {out.relative_to(ROOT)}")
    if any(v.get("missing_in_second") or v["differ"] for v in result.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
