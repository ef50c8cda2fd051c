"""`neuroswap verify`'s words: the verdict, the evidence as key/value rows, the counterexamples as
calls, and agreement per branch path named by its branch outcomes in the original's source."""

from __future__ import annotations

from typing import Any

from ._cli_output import Output, ci, describe_tolerance, num, pct

STATUS = {"passed": "ok", "failed": "failed", "inconclusive": "inconclusive"}


def verdict_line(report: Any) -> str:
    """One sentence from what verify measured: status, agreement with its interval, disagreements."""
    status = report.status.upper()
    sampled = sum(v.n for name, v in report.views.items() if name != "search")
    text = (f"{status}: agrees on {pct(report.agreement, 2)} of {sampled:,} sampled inputs within "
            f"{describe_tolerance(report.comparison.tolerance)} (95% CI {ci(report.agreement_ci)}); {report.disagreements} disagreement(s) in {report.checked:,} "
            f"checked inputs, max error {num(report.max_error)}")
    return text


def show_verify(out: Output, report: Any, *, function: str, guard: str = "", max_paths: int = 12,
                max_cases: int = 5) -> None:
    """`guard`: what the surrogate's stored calibration certifies, appended to the verdict."""
    out.verdict(verdict_line(report) + (f"; {guard}" if guard else ""), STATUS.get(report.status, "failed"))
    if report.reason:
        out.line(f"why {report.status}: {report.reason}")
    pairs: list[tuple[str, Any]] = [("function", report.function or function), ("candidate", report.candidate),
                                    ("policy", report.comparison.describe())]
    for view in report.views.values():
        if view.n == 0 and view.note:
            pairs.append((f"{view.name} view", view.note))
            continue
        rate = f"{pct(view.agreement, 2)} (95% CI {ci(view.ci)})" if view.name != "search" else \
            f"{pct(view.agreement, 2)} (adversarial, not a rate estimate)"
        pairs.append((f"{view.name} view", f"{view.n:,} inputs, {view.disagreements} disagree, agreement {rate}, "
                                           f"max error {num(view.errors.get('max'))}"))
    if report.nondeterminism_checked:
        pairs.append(("non-determinism", f"the original disagreed with itself on {report.nondeterministic_inputs} of "
                                         f"{report.nondeterminism_checked} inputs run twice"))
    stats = report.statistics
    if stats.get("budget_cut"):
        pairs.append(("cut by the budget", ", ".join(map(str, stats["budget_cut"]))))
    if "time_s" in stats:
        pairs.append(("time", f"{float(stats['time_s']):.1f} s"))
    out.table(pairs)
    name = (report.function or function).rpartition(":")[2].rpartition(".")[2] or "fn"
    if report.counterexamples:
        out.line("counterexamples (worst first):")
        for index, case in enumerate(report.counterexamples[:max_cases], 1):
            out.line(f"  {index}. {case.call(name)}")
            out.line(f"       original:  {case.expected_outcome}")
            out.line(f"       surrogate: {case.actual_outcome}   (error {num(case.error)}, {case.view})")
            if case.path:
                out.line(f"       path: {report.path_name(case.path)}")
        if len(report.counterexamples) > max_cases:
            out.line(f"  ... {len(report.counterexamples) - max_cases} more in --json / --markdown")
    if report.paths:
        out.line("agreement per branch path of the original (worst first; conditions as written in its source, "
                 "×n: tested n times by a loop):")
        ranked = sorted(report.paths.items(), key=lambda kv: (kv[1].get("agreement") or 0, -kv[1]["n"], kv[0]))
        for path, stats in ranked[:max_paths]:
            label = report.path_name(path) if path in report.path_names else f"path {path}"
            out.line(f"  {pct(stats.get('agreement'), 1):>7} of {stats['n']:>5,}  {label}")
        if len(ranked) > max_paths:
            out.line(f"  ... {len(ranked) - max_paths} more paths in --json / --markdown")
