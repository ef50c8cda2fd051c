"""`report(original, surrogate, ...)`: one self-contained page a reviewer can open from disk.

Writes `report.html` (figures embedded as base64 PNG data URIs, no external resource) and
`report.md` with the PNGs beside it. Everything in it is measured while the report is built:
fidelity with intervals, guarded-mode invocation rate, speed of both side by side, error
distribution, response curves, attributions, distilled rules, worst counterexamples.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from probes import Schema, Tolerance, Traces
from probes._validation import bad_argument, check_callable, check_number, check_seed

from . import _figures as figures
from ._data import agreement, as_columns, base_point, call_batch, n_rows, schema_of, take


@dataclass
class _Section:
    title: str
    markdown: str = ""
    html: str = ""
    figures: list[tuple[str, str, bytes]] = field(default_factory=list)  # (file name, caption, png)


def _function_name(schema: Schema) -> str:
    return schema.function.rsplit(":", 1)[-1] if schema.function else "fn"


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "inf"
        return f"{value:.{digits}g}"
    return str(value)


def _pct(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}%"


def _md_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |")
    return "\n".join(lines)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _table(section: _Section, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    section.markdown += _md_table(header, rows) + "\n\n"
    section.html += _html_table(header, rows)


def _para(section: _Section, text: str) -> None:
    section.markdown += text + "\n\n"
    section.html += f"<p>{html.escape(text)}</p>"


def _code(section: _Section, text: str, language: str = "") -> None:
    section.markdown += f"```{language}\n{text.rstrip()}\n```\n\n"
    section.html += f"<pre><code>{html.escape(text.rstrip())}</code></pre>"


# -- measurements ------------------------------------------------------------------------------

def _time_per_call(fn: Callable[..., Any], rows: Sequence[Mapping[str, Any]], repeat: int = 3) -> float:
    """Median over `repeat` passes of the mean wall time per call (exceptions count as calls)."""
    passes = []
    for _ in range(repeat):
        start = time.perf_counter()
        for kwargs in rows:
            try:
                fn(**kwargs)
            except Exception:
                pass
        passes.append((time.perf_counter() - start) / max(1, len(rows)))
    return statistics.median(passes)


def _time_batch(surrogate: Any, columns: Mapping[str, np.ndarray], repeat: int = 3) -> float | None:
    if not hasattr(surrogate, "predict_batch"):
        return None
    passes = []
    for _ in range(repeat):
        start = time.perf_counter()
        try:
            surrogate.predict_batch(dict(columns))
        except Exception:
            return None
        passes.append((time.perf_counter() - start) / max(1, n_rows(columns)))
    return statistics.median(passes)


def _guarded(original: Callable[..., Any], surrogate: Any, rows: Sequence[Mapping[str, Any]],
             schema: Schema, tolerance: Tolerance) -> dict[str, Any] | None:
    """Run the rows through replace.swap(mode="guarded") and read its counters."""
    try:
        from replace import swap
    except ImportError:
        return None
    try:
        guarded = swap(original, surrogate, mode="guarded")
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    answers = []
    for kwargs in rows:
        try:
            answers.append((guarded(**kwargs), None))
        except Exception as exc:
            from probes import ErrorInfo

            answers.append((None, ErrorInfo.from_exception(exc)))
    stats = getattr(guarded, "stats", None)
    data = stats.to_dict() if hasattr(stats, "to_dict") else {}
    from ._data import Outcomes

    reference = call_batch(original, as_columns(list(rows), schema), schema)
    judged = agreement(reference, Outcomes([a for a, _ in answers], [e for _, e in answers]),
                       schema.output.kind, tolerance)
    data["guarded_agreement"] = judged.agreement
    data["guarded_agreement_ci"] = judged.agreement_ci
    data["guarded_max_error"] = judged.max_error
    return data


def _errors(original_out: Any, surrogate_out: Any, kind: str, tolerance: Tolerance) -> tuple[np.ndarray, Any]:
    judged = agreement(original_out, surrogate_out, kind, tolerance)
    return judged.error, judged


def _curve_values(outcomes: Any, kind: str, labels: list[Any]) -> list[float]:
    out = []
    for v, e in zip(outcomes.values, outcomes.errors):
        if e is not None:
            key = f"raises {e.type.rsplit('.', 1)[-1]}"
            if kind in ("label", "none"):
                if key not in labels:
                    labels.append(key)
                out.append(float(labels.index(key)))
            else:
                out.append(math.nan)
            continue
        if kind in ("label", "none"):
            if v not in labels:
                labels.append(v)
            out.append(float(labels.index(v)))
        else:
            try:
                out.append(float(np.asarray(v, dtype=float).reshape(-1)[0]))
            except (TypeError, ValueError):
                out.append(math.nan)
    return out


def _response_curves(original: Callable[..., Any], surrogate: Any, rules: Any, schema: Schema,
                     base: Mapping[str, Any], points: int = 60) -> tuple[list[dict[str, Any]], list[str]]:
    kind = schema.output.kind
    labels: list[Any] = [v for v in schema.output.labels] if kind == "label" else []
    curves, skipped = [], []
    for f in schema.fields:
        if f.kind == "vector":
            skipped.append(f.name)
            continue
        if f.kind == "real":
            xs: list[Any] = list(np.linspace(f.low, f.high, points))
        elif f.kind == "integer":
            xs = sorted({int(round(v)) for v in np.linspace(f.low, f.high, points)})
        else:
            xs = list(f.categories)
        rows = [{**base, f.name: x} for x in xs]
        columns = as_columns(rows, schema)
        curve = {"name": f.name, "x": xs, "categorical": f.kind in ("categorical", "boolean"),
                 "original": _curve_values(call_batch(original, columns, schema), kind, labels),
                 "surrogate": _curve_values(call_batch(surrogate, columns, schema), kind, labels),
                 "rules": _curve_values(call_batch(rules.function, columns, schema), kind, labels)
                 if rules is not None else None}
        curves.append(curve)
    if kind in ("label", "none"):
        for curve in curves:
            curve["yticks"] = [str(v) for v in labels]
    return curves, skipped


def _curve_of(metrics: Any) -> list[Sequence[float]]:
    curve = getattr(metrics, "curve", None)
    if curve:
        return [tuple(row) for row in curve]
    data = metrics.to_dict() if hasattr(metrics, "to_dict") else (metrics if isinstance(metrics, Mapping) else {})
    if data.get("curve"):
        return [tuple(row) for row in data["curve"]]
    history = data.get("history") or []
    out = []
    for k, item in enumerate(history):
        if isinstance(item, Mapping):
            out.append((item.get("epoch", k), item.get("train_loss", item.get("loss", math.nan)),
                        item.get("val_loss", math.nan)))
    return out


def _plain_json(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (np.integer, np.floating)):
        return _plain_json(value.item())
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


# -- the report ----------------------------------------------------------------------------------

def _check_arguments(original: Any, surrogate: Any, *, traces: Any, out: Any, verification: Any, rules: Any,
                     seed: Any, n_eval: Any, n_attribution: Any, verify_examples: Any, verify_budget_s: Any,
                     distill_leaves: Any, timing_calls: Any) -> None:
    """Every argument of `report` by name, before any call (its later stages keep going when
    verify or distill fail, so a bad value caught there would only be a note)."""
    from probes import EquivalenceReport

    from ._rules import Rules

    check_callable("original", original, fix="Pass the legacy function")
    check_callable("surrogate", surrogate, fix="Pass the surrogate (or any candidate with the legacy signature)")
    if traces is not None and not isinstance(traces, Traces):
        raise bad_argument("traces", traces, "must be a probes.Traces or None", "Load them with store.load(fn)")
    if not isinstance(out, (str, os.PathLike)) or not os.fspath(out):
        raise bad_argument("out", out, "must be a directory path", "Pass e.g. out='neuroswap_report'")
    if verification is not None and not isinstance(verification, EquivalenceReport):
        raise bad_argument("verification", verification, "must be a probes.EquivalenceReport or None",
                           "Pass the result of probes.verify, or None to run a short one here")
    if rules is not None and rules is not False and not isinstance(rules, Rules):
        raise bad_argument("rules", rules, "must be an explain.Rules, None (distil here) or False (skip)",
                           "Pass the result of explain.distill, None or False")
    check_seed("seed", seed)
    check_number("n_eval", n_eval, low=1, integer=True, fix="Pass how many inputs to evaluate, e.g. 500")
    check_number("n_attribution", n_attribution, low=0, integer=True, fix="Pass e.g. n_attribution=40")
    check_number("verify_examples", verify_examples, low=1, integer=True, fix="Pass e.g. verify_examples=300")
    check_number("verify_budget_s", verify_budget_s, low=0.0, low_inclusive=False, fix="Pass seconds, e.g. 10.0")
    check_number("distill_leaves", distill_leaves, low=2, integer=True, fix="Pass an integer >= 2, e.g. 16")
    check_number("timing_calls", timing_calls, low=0, integer=True, fix="Pass e.g. timing_calls=200")


def report(original: Callable[..., Any], surrogate: Any, *, traces: Traces | None = None,
           out: str | Path = "neuroswap_report", schema: Schema | None = None, verification: Any = None,
           rules: Any = None, seed: int = 0, n_eval: int = 500, n_attribution: int = 40,
           verify_examples: int = 300, verify_budget_s: float = 10.0, distill_leaves: int = 16,
           timing_calls: int = 200) -> Path:
    """Write `out/report.html` and `out/report.md` (+ PNGs) about `surrogate` standing in for
    `original`; returns the directory. `verification` (an EquivalenceReport) and `rules`
    (from `distill`) are computed here when not given (`rules=False` skips distillation); the
    verification run here is short (`verify_budget_s`): pass a full one for an audit."""
    _check_arguments(original, surrogate, traces=traces, out=out, verification=verification, rules=rules, seed=seed,
                     n_eval=n_eval, n_attribution=n_attribution, verify_examples=verify_examples,
                     verify_budget_s=verify_budget_s, distill_leaves=distill_leaves, timing_calls=timing_calls)
    schema = schema_of(surrogate, schema, traces=traces)
    tolerance = getattr(surrogate, "tolerance", None) or Tolerance()
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    name = _function_name(schema)
    notes: list[str] = []
    began = time.perf_counter()
    spent: dict[str, float] = {}

    # inputs: recorded calls (operational) when given, else uniform over the domain
    source = "domain sample"
    rows: list[dict[str, Any]] = []
    if traces is not None and len(traces):
        usable = [kw for kw in traces.inputs if schema.contains(kw)[0]]
        if usable:
            picks = rng.permutation(len(usable))[:n_eval]
            rows = [usable[int(i)] for i in picks]
            source = f"{len(rows)} recorded calls"
    if not rows:
        rows = schema.sample(n_eval, rng=rng)
        source = f"{len(rows)} inputs uniform over the domain"
    columns = as_columns(rows, schema)
    kind = schema.output.kind

    original_out = call_batch(original, columns, schema)
    surrogate_out = call_batch(surrogate, columns, schema)
    errors, judged = _errors(original_out, surrogate_out, kind, tolerance)

    # verification (probes.verify) when not given
    mark = time.perf_counter()
    if verification is None:
        try:
            from probes import verify

            verification = verify(original, surrogate, schema=schema, traces=traces, tolerance=tolerance,
                                   max_examples=verify_examples, seed=seed, database=None, budget_s=verify_budget_s)
        except Exception as exc:  # the report still shows our own measurement
            notes.append(f"probes.verify did not run: {type(exc).__name__}: {exc}")
            verification = None

    spent["verification"] = time.perf_counter() - mark
    # speed, side by side in this process
    mark = time.perf_counter()
    timing_rows = rows[: min(timing_calls, len(rows))]
    t_original = _time_per_call(original, timing_rows)
    t_surrogate = _time_per_call(surrogate, timing_rows)
    t_batch = _time_batch(surrogate, take(columns, slice(0, len(timing_rows))))
    guarded = _guarded(original, surrogate, rows, schema, tolerance)
    spent["speed and guarded mode"] = time.perf_counter() - mark

    # distilled rules
    mark = time.perf_counter()
    if rules is None:
        try:
            from ._rules import distill

            rules = distill(surrogate, original=original, schema=schema, max_leaves=distill_leaves,
                            n_samples=3000, tolerance=tolerance, seed=seed, traces=traces, fidelity_samples=1000)
        except Exception as exc:
            notes.append(f"distillation did not run: {type(exc).__name__}: {exc}")
            rules = None
    elif rules is False:
        rules = None

    spent["distillation"] = time.perf_counter() - mark
    # attributions, apples to apples
    mark = time.perf_counter()
    comparison = None
    try:
        from ._compare import compare_attributions

        att_rows = take(columns, slice(0, min(n_attribution, len(rows))))
        comparison = compare_attributions(original, surrogate, att_rows, schema=schema, seed=seed,
                                          max_background=20, ig_steps=(50, 100, 200))
    except Exception as exc:
        notes.append(f"attributions did not run: {type(exc).__name__}: {exc}")

    spent["attributions"] = time.perf_counter() - mark
    sections: list[_Section] = []

    # 1. summary
    summary = _Section("Summary")
    fid_rows = [["sampled here (" + source + ")", _pct(judged.agreement),
                 f"{_pct(judged.agreement_ci[0])} - {_pct(judged.agreement_ci[1])}", _fmt(judged.max_error), judged.n]]
    if verification is not None:
        for view_name, view in getattr(verification, "views", {}).items():
            if getattr(view, "n", 0):
                agree = view.agreement
                ci = view.ci
                fid_rows.append([f"probes.verify: {view_name}", _pct(agree) if view_name != "search" else
                                 f"{_pct(agree)} (adversarial, not a rate)",
                                 f"{_pct(ci[0])} - {_pct(ci[1])}", _fmt(view.errors.get("max")), view.n])
    _para(summary, f"Surrogate of `{schema.function or name}`; tolerance abs={tolerance.abs:g}, "
                   f"rel={tolerance.rel:g} (labels and exceptions must match exactly). "
                   f"Report made {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}.")
    if verification is not None:
        _para(summary, f"probes.verify: {getattr(verification, 'status', 'passed' if verification.passed else 'failed').upper()}; overall agreement "
                       f"{_pct(verification.agreement)} (95% CI {_pct(verification.agreement_ci[0])} - "
                       f"{_pct(verification.agreement_ci[1])}), max error {_fmt(verification.max_error)}.")
    _table(summary, ["fidelity measured on", "agreement", "95% interval", "max error", "n"], fid_rows)
    speed_rows = [["original, per call", f"{t_original * 1e6:.2f} us", "1.00x"],
                  ["surrogate, per call", f"{t_surrogate * 1e6:.2f} us", f"{t_original / t_surrogate:.2f}x"
                   if t_surrogate > 0 else "n/a"]]
    if t_batch:
        speed_rows.append(["surrogate, batched (per row)", f"{t_batch * 1e6:.3f} us",
                           f"{t_original / t_batch:.2f}x"])
    _para(summary, f"Speed, measured now on {len(timing_rows)} inputs, median of 3 passes "
                   "(speed-up = original time / surrogate time):")
    _table(summary, ["what", "time", "speed-up"], speed_rows)
    if guarded is not None and "error" not in guarded:
        fallbacks = ", ".join(f"{k}: {v}" for k, v in (guarded.get("fallbacks") or {}).items() if v) or "none"
        _para(summary, f"Guarded mode (replace.swap(mode='guarded')) on the same {len(rows)} inputs: invocation "
                       f"rate {_pct(guarded.get('invocation_rate'))} (share answered by the surrogate), "
                       f"fallbacks to the original: {fallbacks}; agreement of guarded answers with the original "
                       f"{_pct(guarded.get('guarded_agreement'))}, max error {_fmt(guarded.get('guarded_max_error'))}.")
    elif guarded is not None:
        _para(summary, f"Guarded mode could not run: {guarded['error']}")
    else:
        _para(summary, "Guarded mode: replace.swap is not available.")
    sections.append(summary)

    # 2. error distribution
    err = _Section("Error distribution")
    bound = float(tolerance.abs) if tolerance.rel == 0 else None
    err.figures.append(("errors.png", "Error distribution", figures.error_histogram(errors, bound=bound, label=source,
                                                                                  kind=kind)))
    finite = errors[np.isfinite(errors)]
    if finite.size and kind not in ("label", "none"):
        q = np.quantile(finite, [0.5, 0.9, 0.99])
        _para(err, f"Median error {_fmt(float(q[0]))}, 90th percentile {_fmt(float(q[1]))}, 99th {_fmt(float(q[2]))}, "
                   f"max {_fmt(float(finite.max()))}; {int(np.sum(~np.isfinite(errors)))} outcome mismatches.")
    sections.append(err)

    # 3. response curves
    resp = _Section("Response curves")
    base = base_point(columns, schema)
    curves, skipped = _response_curves(original, surrogate, rules, schema, base)
    _para(resp, "Each panel varies one argument over its range, the others held at "
                + ", ".join(f"{k}={v!r}" if not isinstance(v, float) else f"{k}={v:.4g}" for k, v in base.items())
                + " (median / most common value)." + (f" Vector arguments not shown: {skipped}." if skipped else ""))
    if curves:
        resp.figures.append(("response_curves.png", "Response curves",
                             figures.response_curves(curves, output_label="class" if kind == "label" else "output")))
    sections.append(resp)

    # 4. attributions
    att = _Section("Attributions")
    if comparison is not None:
        _para(att, comparison.to_markdown().split("\n\n")[0])
        table = comparison.table()
        _table(att, ["argument", "original", "surrogate", "surrogate (integrated gradients)", "flag"],
               [[r["argument"], _fmt(r["original"]), _fmt(r["surrogate"]), _fmt(r["surrogate_gradient"]),
                 r["flag"] or ""] for r in table])
        series = {f"original ({comparison.original.method})": [r["original"] for r in table],
                  f"surrogate ({comparison.surrogate.method})": [r["surrogate"] for r in table]}
        if comparison.surrogate_gradient is not None:
            series["surrogate (integrated gradients)"] = [r["surrogate_gradient"] for r in table]
            grad = comparison.surrogate_gradient
            _para(att, f"Integrated gradients: {grad.n_steps} steps, relative completeness gap {_fmt(grad.delta)}"
                       f"{'' if grad.converged else ' (bound not reached)'}.")
        _para(att, f"SHAP additivity gap (max |sum(phi) + base - f(x)|): original {_fmt(comparison.original.additivity)}, "
                   f"surrogate {_fmt(comparison.surrogate.additivity)}.")
        att.figures.append(("attributions.png", "Attributions", figures.attribution_bars(
            list(comparison.feature_names), series, title="Importance per argument (mean |attribution|)")))
    else:
        _para(att, "Attributions were not computed (see notes).")
    sections.append(att)

    # 5. rules
    rul = _Section("Distilled rules")
    if rules is not None:
        _para(rul, f"Rules distilled from {rules.teacher} ({rules.variant}): {rules.complexity.leaves} leaves, "
                   f"depth {rules.complexity.depth}, {rules.complexity.lines} lines.")
        _table(rul, ["against", "inputs", "agreement", "95% interval", "max error", "R^2", "n"],
               [[f.against, f.distribution, _pct(f.agreement), f"{_pct(f.agreement_ci[0])} - {_pct(f.agreement_ci[1])}",
                 _fmt(f.max_error), _fmt(f.r2), f.n] for f in rules.fidelity.values()])
        _code(rul, rules.source, "python")
    else:
        _para(rul, "No rules (distillation skipped or failed).")
    sections.append(rul)

    # 6. counterexamples
    cex = _Section("Worst counterexamples")
    found = list(getattr(verification, "counterexamples", ()) or ())[:10] if verification is not None else []
    if found:
        _table(cex, ["input", "original", "surrogate", "error", "view", "branch path of the original"],
               [[", ".join(f"{k}={v!r}" for k, v in c.inputs.items()), _outcome(c.expected, c.expected_error),
                 _outcome(c.actual, c.actual_error), _fmt(float(c.error)), getattr(c, "view", ""),
                 _path_name(verification, getattr(c, "path", ""))] for c in found])
    else:
        order = np.argsort(-np.where(np.isfinite(errors), errors, np.inf))[:10]
        bad = [i for i in order if not judged.agree[i]]
        if bad:
            _table(cex, ["input", "original", "surrogate", "error"],
                   [[", ".join(f"{k}={v!r}" for k, v in rows[i].items()),
                     _outcome(original_out.values[i], original_out.errors[i]),
                     _outcome(surrogate_out.values[i], surrogate_out.errors[i]), _fmt(float(errors[i]))] for i in bad])
        else:
            _para(cex, "No disagreement found.")
    sections.append(cex)

    # 6b. agreement per branch path, each named by its branch outcomes in the original's source
    path_stats = dict(getattr(verification, "paths", {}) or {}) if verification is not None else {}
    if path_stats:
        per_path = _Section("Agreement per branch path")
        _para(per_path, "probes.verify's sampled inputs, by the branch path the original took; each path is named "
                        "by the outcomes of its conditions as written in the source (×n: a loop tested the "
                        "condition n times). Worst first.")
        ranked = sorted(path_stats.items(), key=lambda kv: (kv[1].get("agreement") or 0, -kv[1].get("n", 0), kv[0]))
        _table(per_path, ["branch outcomes", "inputs", "disagree", "agreement"],
               [[_path_name(verification, path), stats.get("n", 0), stats.get("disagreements", 0),
                 _pct(stats.get("agreement"))] for path, stats in ranked[:20]])
        if len(ranked) > 20:
            _para(per_path, f"{len(ranked) - 20} more paths in the verification's JSON.")
        sections.append(per_path)

    # 7. training curve
    train = _Section("Training")
    metrics = getattr(surrogate, "metrics", None)
    curve = _curve_of(metrics) if metrics is not None else []
    if curve:
        train.figures.append(("training_curve.png", "Training curve", figures.training_curve(curve)))
    if metrics is not None and hasattr(metrics, "to_dict"):
        data = {k: v for k, v in metrics.to_dict().items() if not isinstance(v, (list, tuple, dict)) or k == "per_path"}
        _table(train, ["metric", "value"], [[k, _fmt(v) if isinstance(v, float) else json.dumps(_plain_json(v))
                                             if isinstance(v, (dict, list)) else v] for k, v in data.items()])
    sections.append(train)

    # 8. manifest
    man = _Section("Manifest")
    manifest = getattr(surrogate, "manifest", None)
    _code(man, json.dumps(_plain_json(manifest or {}), indent=2, sort_keys=True), "json")
    sections.append(man)

    spent["total"] = time.perf_counter() - began
    notes.append("Time spent building this report: " + ", ".join(f"{k} {v:.1f} s" for k, v in spent.items()) + ".")
    if notes:
        extra = _Section("Notes")
        for note in notes:
            _para(extra, note)
        sections.append(extra)

    _write(target, name, sections)
    return target


def _path_name(verification: Any, path: str) -> str:
    """A path's branch outcomes (verify names them), else its id."""
    if not path:
        return ""
    namer = getattr(verification, "path_name", None)
    return namer(path) if callable(namer) else path


def _outcome(value: Any, error: Any) -> str:
    if error is not None:
        return f"raises {error.type}: {error.message}"
    return repr(value)


_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #1f4e79}h2{color:#1f4e79;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
th{background:#eef3f8}pre{background:#f6f8fa;padding:.8em;overflow-x:auto;font-size:.85em}
img{max-width:100%;border:1px solid #eee;margin:.4em 0}
"""

_CHECK = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.length > 0 && imgs.every(function (i) { return i.complete && i.naturalWidth > 0; });
  document.body.setAttribute('data-images', String(imgs.length));
  document.body.setAttribute('data-images-ok', ok ? 'yes' : 'no');
  document.title = document.title + (ok ? ' [images ok]' : ' [images broken]');
});
</script>"""


def _write(target: Path, name: str, sections: Sequence[_Section]) -> None:
    title = f"neuroswap report: {name}"
    md = [f"# {title}", ""]
    body = [f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        md += [f"## {section.title}", "", section.markdown.rstrip(), ""]
        body.append(f"<h2>{html.escape(section.title)}</h2>")
        body.append(section.html)
        for file_name, caption, png in section.figures:
            (target / file_name).write_bytes(png)
            md += [f"![{caption}]({file_name})", ""]
            data = base64.b64encode(png).decode("ascii")
            body.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>\n"
            + "\n".join(body) + "\n" + _CHECK + "\n</body></html>\n")
    (target / "report.html").write_text(page, encoding="utf-8")
    (target / "report.md").write_text("\n".join(md).rstrip() + "\n", encoding="utf-8")
