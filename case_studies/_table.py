"""The results table of the case studies, as JSON-safe rows and as the README's markdown.

`bench/case_studies.py` and `neuroswap case-study --all --json rows.json` produce the same rows
(both call each study's `run()`); `markdown_table(rows)` renders either.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

HEADER = ("study", "agreement [95% CI]", "max error", "AxBench error (published NPU)",
          "rules: source, leaves, agreement production / domain", "speed-up batch / single call",
          "sklearn MLP / HGB agreement",
          "served error (guarded, fresh inputs)", "coverage at 1%", "verify", "wall (s)")


def jsonable(value: Any) -> Any:
    """Plain JSON: non-finite floats as strings ("inf", "nan"), tuples as lists, numpy as Python."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            return repr(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _num(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return float(value)


def _pct(value: Any, digits: int = 1) -> str:
    v = _num(value)
    return "-" if v is None or math.isnan(v) else f"{100 * v:.{digits}f}%"


def _err(value: Any) -> str:
    v = _num(value)
    if v is None or math.isnan(v):
        return "-"
    if math.isinf(v):
        return "inf (outcome differs)"
    return f"{v:.3g}"


def _ratio(value: Any) -> str:
    v = _num(value)
    if v is None or math.isnan(v):
        return "-"
    return f"{v:.1f}x" if v >= 10 else f"{v:.2f}x"


def _floor_pct(value: Any) -> str:
    """A share to 0.1%, rounded down: "100.0%" only when nothing disagreed."""
    v = _num(value)
    return "-" if v is None or math.isnan(v) else f"{math.floor(1000 * v + 1e-9) / 10:.1f}%"


def rules_summary(row: Mapping[str, Any]) -> str:
    """Where the row's rules came from, their size and their agreement with the original on
    production traffic / the whole domain: "exact paths, 71 leaves, agreement 100.0% / 100.0%".

    "exact paths": the original's traced branch paths, every leaf exact and no disagreement
    measured; "traced paths (approximate)": the paths, some leaf or cut not exact; "tree of the
    surrogate": the code could not be traced, a tree of at most max_leaves leaves instead.

    Where both were distilled (approximate paths and a surrogate) the cell names the one kept
    and the other's agreement production / domain: "tree of the surrogate (traced paths
    approximate: 5.1% / 2.0%), 16 leaves, agreement 58.6% / 41.0%", or "traced paths
    (approximate; tree of the surrogate: 9.1% / 8.0%), 400 leaves, agreement 28.0% / 20.0%"."""
    source = row.get("rules_from")
    if source is None:  # rows from before the rules said where they came from
        agreement = row.get("rules_agreement")
        return "-" if agreement is None else f"{_pct(agreement)} / {row.get('rules_leaves')}"
    alternative = row.get("rules_alternative") or {}
    other = (f"{_floor_pct(alternative.get('agreement_production'))} / "
             f"{_floor_pct(alternative.get('agreement_domain'))}") if alternative else ""
    if source == "traced paths":
        what = "exact paths" if row.get("rules_exact") else "traced paths (approximate)"
        if alternative.get("from") == "surrogate tree":
            what = f"traced paths (approximate; tree of the surrogate: {other})"
    elif source == "surrogate tree":
        what = "tree of the surrogate"
        if alternative.get("from") == "traced paths":
            what = f"tree of the surrogate (traced paths approximate: {other})"
    else:
        what = str(source)
    return (f"{what}, {row.get('rules_leaves')} leaves, agreement {_floor_pct(row.get('rules_agreement_operational'))}"
            f" / {_floor_pct(row.get('rules_agreement_domain'))}")


def _served_error(row: Mapping[str, Any]) -> str:
    """The guarded swap's served error on fresh inputs at max_error_rate 1%: "0.12% (3/2500)",
    flagged when significantly above the rate; "- (0 served)" when it served nothing."""
    served = row.get("guarded_served")
    if served is None:
        return "-"
    if not served:
        return "- (0 served)"
    text = f"{_pct(row.get('guarded_served_error'), 2)} ({row.get('guarded_wrong')}/{served})"
    return text + (" above the rate" if row.get("guarded_significantly_above") else "")


def format_row(row: Mapping[str, Any]) -> list[str]:
    ci = row.get("agreement_ci")
    agreement = _pct(row.get("agreement"), 2)
    if ci and agreement != "-":
        agreement += f" [{_pct(ci[0], 2)}, {_pct(ci[1], 2)}]"
    axbench = "-"
    if row.get("axbench_error") is not None:
        published = row.get("published_npu_error")
        axbench = f"{_pct(row['axbench_error'], 2)} ({_pct(published, 2) if published is not None else 'n/a'})"
    rules = rules_summary(row)
    speed = "-"
    if row.get("batch_speedup") is not None:
        speed = f"{_ratio(row['batch_speedup'])} / {_ratio(row.get('single_call_speedup'))}"
    baselines = "-"
    if row.get("sklearn_mlp_agreement") is not None:
        baselines = f"{_pct(row['sklearn_mlp_agreement'])} / {_pct(row.get('sklearn_hgb_agreement'))}"
        if row.get("surrogate_fresh_agreement") is not None:
            baselines += f" (ours {_pct(row['surrogate_fresh_agreement'])})"
    passed = row.get("passed")
    verdict = row.get("verify_status") or ("-" if passed is None else ("passed" if passed else "failed"))
    wall = _num(row.get("wall_s"))
    return [str(row.get("study")), agreement, _err(row.get("max_error")), axbench, rules, speed, baselines,
            _served_error(row), _pct(row.get("guarded_coverage")), verdict, "-" if wall is None else f"{wall:.0f}"]


def markdown_table(rows: Sequence[Mapping[str, Any]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        lines.append("| " + " | ".join(format_row(row)) + " |")
    skipped = [(row.get("study"), step, why) for row in rows for step, why in (row.get("skipped") or {}).items()]
    if skipped:
        lines.append("")
        lines.append("Steps not measured: " + "; ".join(f"{s} {step} ({why})" for s, step, why in skipped) + ".")
    return "\n".join(lines) + "\n"
