"""`neuroswap guard`: what a guarded swap of a saved surrogate would serve, and the line that deploys it.

Each asked `max_error_rate` is certified on the surrogate's stored calibration rows
(`surrogate.calibration.certify(rate, confidence)`, the rows `fit` labelled and nothing else
saw), or, with `--recalibrate`, on recorded traffic from the store labelled by calling the
function, as `swap(fn, surrogate, "guarded", calibration_inputs=rows)` would.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Sequence

from ._cli_output import Output, describe_tolerance, fail, pct


def certificates(fn: Callable[..., Any], model: Any, rates: Sequence[float], confidence: float, *,
                 rows: Sequence[dict[str, Any]] | None = None) -> tuple[list[Any], str]:
    """One Certificate per rate, and which calibration rows they stand on ("user" when `rows`
    were labelled here). Rows outside the surrogate's domain are dropped (the guard never serves them)."""
    if rows is None:
        calibration = getattr(model, "calibration", None)
        if calibration is None or not calibration.sets:
            return [], ""
        certs = [calibration.certify(rate, confidence) for rate in rates]
        return certs, certs[0].source if certs else ""
    from replace._guard import CertifiedGuard

    with warnings.catch_warnings():  # "serves nothing" is reported below, per rate, with its reason
        warnings.simplefilter("ignore")
        guard = CertifiedGuard(fn, model, max_error_rate=rates[0], confidence=confidence, audit_rate=0.0,
                               false_alarm=0.01, seed=0, calibration_inputs=list(rows))
    return [guard.calibration.certify(rate, confidence, "user") for rate in rates], "user"


SOURCES = {"production": "held-out recorded traffic", "traces": "rows near the recorded traffic",
           "domain": "inputs drawn over the whole domain", "user": "recorded traffic from the store, labelled now"}


def rate_text(rate: float) -> str:
    """0.01 -> '1%', 0.001 -> '0.1%'."""
    return f"{100 * rate:.4g}%"


def deploy_line(function: str, surrogate_path: str, rate: float, confidence: float, recalibrated: bool,
                store: str | None = None) -> list[str]:
    """The Python that deploys the guard at `rate`."""
    module, _, qualname = function.partition(":")
    name = qualname.rsplit(".", 1)[-1]
    lines = ["from replace import Surrogate, swap", f"from {module} import {qualname.split('.')[0]}"]
    extra = ""
    if recalibrated:
        lines.append("from probes import TraceStore")
        lines.append(f"rows = TraceStore.open({store!r}).load({name}).inputs   # the recorded traffic --recalibrate used")
        extra = ", calibration_inputs=rows"
    conf = "" if confidence == 0.95 else f", confidence={confidence:g}"
    lines.append(f"{name} = swap({qualname}, Surrogate.load({surrogate_path!r}), \"guarded\", "
                 f"max_error_rate={rate:g}{conf}{extra})")
    return lines


def show(out: Output, *, function: str, surrogate_path: str, model: Any, certs: Sequence[Any], source: str,
         rates: Sequence[float], confidence: float, recalibrated: bool, rows_used: int | None,
         store: str | None = None, judged_at: Any = None) -> dict[str, Any]:
    """Print the verdict, the table and the deploying line; return the JSON of it all."""
    name = function.rpartition(":")[2]
    serving = [c for c in certs if c.serves]
    if not certs:
        out.verdict("guarded: the surrogate has no calibration rows, so a guard would serve nothing. "
                    "Pass --recalibrate to label recorded traffic from the store", "inconclusive")
    elif not serving:
        out.verdict(f"guarded: serves nothing at any asked rate ({', '.join(rate_text(r) for r in rates)}): "
                    f"{certs[-1].reason or 'too few calibration rows'}", "inconclusive")
    else:
        parts = [f"{pct(c.coverage)} at <= {rate_text(c.max_error_rate)}" if c.serves
                 else f"nothing at <= {rate_text(c.max_error_rate)}" for c in certs]
        out.verdict(f"guarded: serves {', '.join(parts)} served error ({pct(confidence, 0)} confidence, "
                    f"{certs[0].n:,} calibration rows: {SOURCES.get(source, source)})", "ok")
    pairs: list[tuple[str, Any]] = [("function", function), ("surrogate", surrogate_path),
                                    ("tolerance", describe_tolerance(getattr(model, "tolerance", None))),
                                    ("confidence", f"{confidence:g}")]
    if certs:
        pairs.append(("calibration rows", f"{certs[0].n:,} ({SOURCES.get(source, source)})"))
    if rows_used is not None:
        pairs.append(("recorded rows labelled", f"{rows_used:,}"))
    for cert in certs:
        key = f"at <= {rate_text(cert.max_error_rate)}"
        if cert.serves:
            value = (f"serves {pct(cert.coverage)} ({cert.served:,} of {cert.n:,} rows); {cert.errors} wrong served "
                     f"({pct(cert.served_error, 2)}); certified served error <= {pct(cert.upper_bound, 2)}")
        else:
            value = f"serves nothing: {cert.reason or 'too few calibration rows'}"
        pairs.append((key, value))
        domain = cert.domain
        if cert.serves and domain:
            pairs.append(("  whole domain", f"the same threshold serves {pct(domain.get('coverage'))} of "
                                            f"{domain.get('n', 0):,} inputs drawn over the whole domain, served error "
                                            f"{pct(domain.get('served_error'), 2)} (reported, not certified)"))
    out.table(pairs)
    chosen = min((c.max_error_rate for c in serving), default=rates[0] if rates else 0.01)
    code = deploy_line(function, surrogate_path, chosen, confidence, recalibrated, store)
    if judged_at is not None:
        code.append(f"# judged here at {describe_tolerance(judged_at)}; swap judges at the surrogate's own tolerance: "
                    "refit with that tolerance to deploy it")
    out.line(f"deploy it (serves where certified, calls {name} elsewhere):")
    for text in code:
        out.line("    " + text)
    return {"function": function, "surrogate": surrogate_path, "confidence": confidence, "source": source,
            "recalibrated": recalibrated, "rows_labelled": rows_used,
            "certificates": [_cert_dict(c) for c in certs], "deploy": "\n".join(code)}


def _cert_dict(cert: Any) -> dict[str, Any]:
    """The certificate for a script: a served error of nothing served is null, not NaN."""
    data = cert.to_dict()
    data.pop("method", None)
    for part in (data, data.get("domain") or {}):
        if isinstance(part.get("served_error"), float) and math.isnan(part["served_error"]):
            part["served_error"] = None
    return data


def check_rates(rates: Sequence[float], confidence: float) -> None:
    for rate in rates:
        if not (0.0 < rate < 1.0):
            fail(f"--max-error-rate={rate:g} : must be in (0, 1), a share of served answers. Pass e.g. "
                 "--max-error-rate 0.01 for at most 1% wrong served answers")
    if not (0.5 <= confidence < 1.0):
        fail(f"--confidence={confidence:g} : must be in [0.5, 1) (certainty needs infinitely many rows). "
             "Pass e.g. --confidence 0.95")


