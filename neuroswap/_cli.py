"""The `neuroswap` command: record, fit, verify, guard, distill and report from a shell.

Every command prints a verdict line first (what it measured, in a sentence), then a vertical
key/value table; `--json PATH` (or `-` for standard output) writes the result for scripts.
Commands that read traces take `--store` (default `$NEUROSWAP_STORE`, else
`./neuroswap_traces.db`); commands that fit or judge take `--abs` and `--rel`.

Exit codes: 0 success, 1 verification failed (a disagreement), 2 usage error (bad argument,
missing file), 3 verification inconclusive (too little evidence for a verdict).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import click
from rich.console import Console
from rich.table import Table

from ._cli_output import (EXIT_FAILED, EXIT_INCONCLUSIVE, EXIT_OK, EXIT_USAGE, Output, ci, describe_tolerance,
                          fail, guarded, json_option, load_traces, num, open_store, pct, store_option, store_origin,
                          tolerance, tolerance_options)
from ._cli_verify import show_verify

__all__ = ["EXIT_FAILED", "EXIT_INCONCLUSIVE", "EXIT_OK", "EXIT_USAGE", "cli", "main"]

errors = Console(stderr=True)

_fail = fail
_guard = guarded


def _import_case_studies() -> Any:
    """`case_studies` lives in the checkout, not in the wheel: look beside the package and in cwd."""
    for root in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (root / "case_studies" / "__init__.py").exists() and str(root) not in sys.path:
            sys.path.insert(0, str(root))
    try:
        import case_studies
    except ImportError:
        fail("case_studies/ was not found : the case studies ship with the neuroswap repository. "
             "Run this command from a clone of it")
    return case_studies


def _load_function(name: str) -> Callable[..., Any]:
    """The function itself. A module that records it (`@record(store=...)` above the def) gives
    the recording wrapper: the commands call the function under it, so their oracle calls are
    not written into the production traces."""
    from probes import resolve

    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    target = guarded(lambda: resolve(name))
    while getattr(target, "__neuroswap_record__", None) is not None and callable(getattr(target, "__wrapped__", None)):
        target = target.__wrapped__
    return target


def _store(uri: str | None) -> Any:
    return open_store(uri)


def _load_surrogate(path: str, fn: Callable[..., Any] | None = None) -> Any:
    from replace import Surrogate

    if not os.path.exists(path):
        fail(f"surrogate={path!r} : no such file or folder. Train one with `neuroswap fit ... --out {path}`")
    return guarded(lambda: Surrogate.load(path, fn=fn))


def _example(*lines: str) -> str:
    """An 'Example' block for a command's --help (click keeps \\b paragraphs as written)."""
    return "\b\nExample:\n" + "\n".join(f"  {line}" for line in lines)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 120})
@click.version_option(package_name="neuroswap")
def cli() -> None:
    """Record a legacy function, replace it with a verified neural surrogate, explain it.

    \b
    The flow for a function of your own (module:qualname):
      neuroswap traces list --store sqlite:///traces.db
      neuroswap fit myrules:parking_fee --store sqlite:///traces.db --out parking.surrogate --budget 10
      neuroswap verify myrules:parking_fee parking.surrogate --store sqlite:///traces.db --budget 10
      neuroswap guard myrules:parking_fee parking.surrogate --max-error-rate 0.01
      neuroswap distill myrules:parking_fee --store sqlite:///traces.db --out parking_rules.py
      neuroswap report myrules:parking_fee parking.surrogate --store sqlite:///traces.db --out parking_report
    """


# -- case studies ------------------------------------------------------------------------------
@cli.command(epilog=_example("neuroswap demo --quick --out demo_report"))
@click.option("--out", default="neuroswap_report", show_default=True, help="Folder for the audit report.")
@store_option
@click.option("--study", default="shipping_fee", show_default=True, help="Which case study to run.")
@click.option("--quick", is_flag=True, help="Smaller budgets, for a first look.")
@json_option
def demo(out: str, store: str | None, study: str, quick: bool, json_path: str | None) -> None:
    """Run the flagship case study end to end: record, fit, verify, mine, distill, report."""
    _run_studies([study], out=out, store=store, quick=quick, json_path=json_path)


@cli.command("case-study", epilog=_example("neuroswap case-study shipping_fee --quick --json rows.json",
                                           "neuroswap case-study --all --json rows.json"))
@click.argument("name", required=False)
@click.option("--all", "run_all", is_flag=True, help="Run every case study.")
@click.option("--out", default="neuroswap_report", show_default=True, help="Folder for the reports (one per study).")
@store_option
@click.option("--quick", is_flag=True, help="Smaller budgets, for a first look.")
@click.option("--json", "json_path", default=None, metavar="PATH",
              help="Also write the result rows to PATH (and the README's table beside it, PATH with .md); "
                   "'-': the rows on standard output.")
def case_study(name: str | None, run_all: bool, out: str, store: str | None, quick: bool, json_path: str | None) -> None:
    """Run one case study (NAME) or all of them (--all), and print their result rows."""
    studies = _import_case_studies().STUDIES
    if run_all == (name is not None):
        fail(f"name={name!r}, --all={run_all} : give exactly one of NAME or --all. Known studies: "
             + ", ".join(studies))
    names = list(studies) if run_all else [name]
    _run_studies(names, out=out, store=store, quick=quick, json_path=json_path, one_folder_each=True)


def _run_studies(names: list[str | None], *, out: str, store: str | None, quick: bool,
                 json_path: str | None = None, one_folder_each: bool = False) -> None:
    studies = _import_case_studies().STUDIES
    from case_studies._table import (HEADER, format_row, jsonable, markdown_table,  # the bench's own formats
                                     rules_summary)

    show = Output(json_path)
    for name in names:
        if name not in studies:
            fail(f"study={name!r} : no such case study. Known: {', '.join(studies)}")
        if not hasattr(studies[name], "run"):
            fail(f"study={name!r} : has no run() flow yet")
    rows = []
    for name in names:
        module = studies[name]
        target = str(Path(out) / str(name)) if one_folder_each else out
        show.console.print(f"[bold]{name}[/]: {getattr(module, 'DESCRIPTION', '')}", highlight=False)
        start = time.perf_counter()
        row = dict(guarded(lambda: module.run(store=store, out=target, quick=quick, progress=True)))
        row.setdefault("study", name)
        row.setdefault("wall_s", time.perf_counter() - start)
        rows.append(row)
    for row in rows:
        status = row.get("verify_status") or ("passed" if row.get("passed") else "failed" if row.get("passed") is not None else "")
        rules = rules_summary(row)  # where the rules came from, their size, their agreement with the original
        if rules != "-":
            rules = f"; rules: {rules}" + (" (production / domain)" if "agreement" in rules else "")
        show.verdict(f"{row['study']}: surrogate agrees on {pct(row.get('agreement'), 2)} of fresh inputs "
                     f"(95% CI {ci(row.get('agreement_ci'))})" + (f"; verify {status}" if status else "")
                     + (rules if rules != "-" else ""),
                     {"passed": "ok", "failed": "failed", "inconclusive": "inconclusive"}.get(status, "info"))
        show.table(list(zip(HEADER[1:], format_row(row)[1:])) + [("report", row.get("report"))])
    if json_path == "-":
        click.echo(json.dumps(jsonable(rows), indent=2))
    elif json_path:
        Path(json_path).write_text(json.dumps(jsonable(rows), indent=2))
        Path(json_path).with_suffix(".md").write_text(markdown_table(rows) + "\n")
        show.line(f"rows written to {json_path} and {Path(json_path).with_suffix('.md')}")


# -- traces ------------------------------------------------------------------------------------
@cli.group()
def traces() -> None:
    """List, show and export recorded traces."""


@traces.command("list", epilog=_example("neuroswap traces list --store sqlite:///traces.db"))
@store_option
@json_option
def traces_list(store: str | None, json_path: str | None) -> None:
    """Every recorded function with its source hash and number of traces."""
    items = [_function_entry(item) for item in guarded(lambda: open_store(store).functions())]
    show = Output(json_path)
    total = sum(count for _, _, count in items)
    names = {name for name, _, _ in items}
    show.verdict(f"{len(names)} recorded function(s), {total:,} traces in {store or _default_store()}")
    if items:
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        for column in ("function", "source hash", "traces"):
            table.add_column(column, no_wrap=column != "function", overflow="fold")
        for name, source_hash, count in items:
            table.add_row(name, source_hash, f"{count:,}")
        show.console.print(table)
    show.json([{"function": n, "source_hash": h, "traces": c} for n, h, c in items])


def _default_store() -> str:
    uri, origin = store_origin(None)
    return f"{uri} ({origin})"


def _function_entry(item: Any) -> tuple[str, str, int]:
    if isinstance(item, tuple) and not hasattr(item, "name"):
        return str(item[0]), str(item[1]), int(item[2])
    return str(item.name), str(item.source_hash), int(item.count)


@traces.command("show", epilog=_example("neuroswap traces show myrules:parking_fee --store sqlite:///traces.db --limit 5"))
@click.argument("function")
@store_option
@click.option("--limit", default=20, show_default=True, help="How many traces to show.")
@json_option
def traces_show(function: str, store: str | None, limit: int, json_path: str | None) -> None:
    """The latest traces of FUNCTION (module:qualname)."""
    loaded = load_traces(store, function, limit=limit)
    show = Output(json_path)
    show.verdict(f"{function}: the latest {len(loaded)} trace(s)")
    entries = []
    for trace in loaded:
        outcome = f"raised {trace.error.type}: {trace.error.message}" if trace.error else repr(trace.output)
        show.line(f"  {', '.join(f'{k}={v!r}' for k, v in trace.inputs.items())}  ->  {outcome}")
        entries.append({"inputs": trace.inputs, "output": trace.output,
                        "error": trace.error.to_dict() if trace.error else None})
    show.json(entries)


@traces.command("export", epilog=_example("neuroswap traces export myrules:parking_fee --store sqlite:///traces.db "
                                          "--out parking.jsonl"))
@click.argument("function")
@store_option
@click.option("--out", required=True, help="A .parquet or .jsonl file.")
@json_option
def traces_export(function: str, store: str | None, out: str, json_path: str | None) -> None:
    """Export the traces of FUNCTION to Parquet or JSON lines."""
    if not out.endswith((".parquet", ".jsonl")):
        fail(f"--out={out!r} : must end in .parquet or .jsonl. Pass e.g. --out traces.jsonl")
    loaded = load_traces(store, function)
    if out.endswith(".parquet"):
        guarded(lambda: loaded.to_parquet(out))
    else:
        with open(out, "w") as handle:
            for trace in loaded:
                handle.write(json.dumps({"inputs": trace.inputs, "output": trace.output,
                                         "error": trace.error.to_dict() if trace.error else None},
                                        default=repr) + "\n")
    show = Output(json_path)
    show.verdict(f"{len(loaded):,} traces of {function} written to {out}")
    show.json({"function": function, "traces": len(loaded), "out": out})


# -- fit ---------------------------------------------------------------------------------------
@cli.command(epilog=_example("neuroswap fit myrules:parking_fee --store sqlite:///traces.db --out parking.surrogate "
                             "--budget 10 --abs 0.01"))
@click.argument("function")
@store_option
@click.option("--out", required=True, help="Folder to save the surrogate in.")
@click.option("--budget", default=60.0, show_default=True, help="Training budget in seconds (see --clock).")
@click.option("--clock", type=click.Choice(["wall", "work"]), default="wall", show_default=True,
              help="What --budget counts: 'wall' seconds, or 'work' (nominal seconds of training steps and calls, "
                   "so the same --seed gives the same surrogate however busy the machine is).")
@click.option("--seed", default=0, show_default=True)
@tolerance_options
@click.option("--no-oracle", is_flag=True, help="Learn from traces only; never call the function.")
@click.option("--exact", type=click.Choice(["auto", "off"]), default="auto", show_default=True,
              help="Exact per-path expressions where one reproduces a branch path ('off': neural only).")
@json_option
def fit(function: str, store: str | None, out: str, budget: float, clock: str, seed: int, tol_abs: float | None,
        tol_rel: float | None, no_oracle: bool, exact: str, json_path: str | None) -> None:
    """Train a surrogate of FUNCTION (module:qualname) from its traces, and save it to --out."""
    import replace

    if not (budget > 0 and math.isfinite(budget)):
        fail(f"--budget={budget:g} : must be a number of seconds > 0. Pass e.g. --budget 10")
    tol = tolerance(tol_abs, tol_rel)
    fn = _load_function(function)
    loaded = load_traces(store, function)
    show = Output(json_path)
    surrogate = guarded(lambda: replace.fit(fn, loaded if len(loaded) else None, tolerance=tol,
                                            oracle=not no_oracle, budget_s=budget, seed=seed,
                                            progress=sys.stderr.isatty(), exact=exact,
                                            budget_clock=clock))
    guarded(lambda: surrogate.save(out))
    m = surrogate.metrics
    low, high = _wilson(m.agreement, m.n_test)
    cert = _certificate(surrogate, 0.01, 0.95)
    guard_text = _guard_phrase(cert)
    show.verdict(f"agrees with {function.rpartition(':')[2]} on {pct(m.agreement)} of {m.n_test:,} fresh inputs "
                 f"within {describe_tolerance(surrogate.tolerance)} (95% CI {pct(low)} to {pct(high)}); {guard_text}",
                 "ok" if m.tolerance_met else "inconclusive")
    show.table([
        ("saved to", out),
        ("agreement", f"{pct(m.agreement, 2)} of {m.n_test:,} fresh inputs (95% CI {pct(low, 2)} to {pct(high, 2)})"),
        ("outcome agreement", f"{pct(m.outcome_agreement, 2)} (returns vs raises, and the exception type)"),
        ("max error", num(m.max_error)), ("mean error", num(m.mean_error)),
        ("tolerance", describe_tolerance(surrogate.tolerance)),
        ("validation agreement", pct(m.validation_agreement, 2)),
        ("branch paths", _exact_phrase(m)),
        ("exact program", _program_phrase(surrogate)),
        ("guard at <= 1%", _guard_detail(cert)),
        ("training rows", m.training_rows), ("traces used", len(loaded)),
        ("calls of the function", f"{m.oracle_calls:,} for training, {m.test_calls:,} for the test, "
                                  f"{m.calibration_calls:,} labelling the guard's calibration rows"),
        ("model", f"{m.architecture}, {m.parameters:,} parameters" if m.architecture else None),
        ("wall time", f"{m.wall_time_s:.1f} s" + (f" of --budget {budget:g}" if clock == "wall"
                                                   else f" (--budget {budget:g} on the work clock)")),
    ])
    store_arg = f" --store {store}" if store else ""
    show.line(f"next: neuroswap verify {function} {out}{store_arg} --budget {max(10, int(budget))}")
    show.line(f"      neuroswap guard {function} {out}")
    show.json({"function": function, "out": out, "tolerance": surrogate.tolerance.to_dict(),
               "agreement_ci": [low, high], "guard": cert.to_dict() if cert is not None else None,
               "metrics": m.to_dict()})


def _exact_phrase(m: Any) -> str:
    exact = dict(m.exact_paths or {})
    seen = len(m.per_path or {})
    if "*" in exact:
        return f"{seen} seen; one exact expression answers every path"
    if not seen and not exact:
        return "no per-path figures (paths not traced in this fit; verify names and measures them)"
    return f"{seen} seen; {len(exact)} answered by an exact expression, the rest by the network"


def _program_phrase(surrogate: Any) -> str:
    report = surrogate.manifest.get("training", {}).get("exact_program") or {}
    if not report.get("used"):
        return f"none ({report.get('note') or 'exact=off'})"[:160]
    served, leaves = report.get("served_leaves", 0), report.get("leaves", 0)
    whole = "every region" if served == leaves else f"{served} of {leaves} regions"
    return (f"the code's partition answers {whole} exactly, before the network "
            f"({report.get('held_out_rows', 0):,} held-out rows checked, {report.get('held_out_wrong', 0)} wrong)")


def _wilson(share: float, n: int) -> tuple[float, float]:
    from probes._report import wilson_interval

    if n <= 0 or share is None or math.isnan(share):
        return 0.0, 1.0
    return wilson_interval(int(round(share * n)), n)


def _certificate(surrogate: Any, rate: float, confidence: float) -> Any:
    calibration = getattr(surrogate, "calibration", None)
    if calibration is None or not calibration.sets:
        return None
    return calibration.certify(rate, confidence)


def _guard_phrase(cert: Any) -> str:
    if cert is None:
        return "guarded: no calibration rows (see neuroswap guard --recalibrate)"
    if not cert.serves:
        return "guarded: serves nothing at <= 1% served error"
    return f"guarded: serves {pct(cert.coverage, 0)} at <= 1% served error"


def _guard_detail(cert: Any) -> str:
    if cert is None:
        return "no calibration rows"
    if not cert.serves:
        return f"serves nothing: {cert.reason}"
    return (f"serves {pct(cert.coverage)} of {cert.n:,} {cert.source} rows; certified served error <= "
            f"{pct(cert.upper_bound, 2)} at 95% confidence")


# -- verify ------------------------------------------------------------------------------------
@cli.command(epilog=_example("neuroswap verify myrules:parking_fee parking.surrogate --store sqlite:///traces.db "
                             "--budget 10 --json verify.json"))
@click.argument("function")
@click.argument("surrogate")
@store_option
@click.option("--max-examples", default=500, show_default=True, help="Inputs per view, at most.")
@click.option("--min-examples", default=None, type=int,
              help="Inputs each view must judge before the verdict can be 'passed' (default 100).")
@click.option("--budget", default=None, type=float, help="Wall-time budget in seconds (default: none).")
@click.option("--seed", default=0, show_default=True)
@tolerance_options
@click.option("--json", "json_path", default=None, metavar="PATH",
              help="Write the report as JSON (EquivalenceReport.to_json) to PATH; '-': standard output.")
@click.option("--markdown", "markdown_path", default=None, metavar="PATH", help="Write the report as Markdown to PATH.")
def verify(function: str, surrogate: str, store: str | None, max_examples: int, min_examples: int | None,
           budget: float | None, seed: int, tol_abs: float | None, tol_rel: float | None, json_path: str | None,
           markdown_path: str | None) -> None:
    """Judge SURROGATE against FUNCTION on recorded, whole-domain and adversarial inputs.

    Exit codes: 0 passed; 1 failed (they disagree somewhere); 2 usage error (e.g.
    --min-examples above --max-examples); 3 inconclusive (no disagreement seen, but a view
    judged fewer than --min-examples inputs, e.g. cut by --budget; the report says why).
    """
    from probes import verify as run_verify

    tol = tolerance(tol_abs, tol_rel)
    fn = _load_function(function)
    model = _load_surrogate(surrogate, fn)
    loaded = load_traces(store, function, must_exist=store is not None)
    report = guarded(lambda: run_verify(fn, model, schema=model.schema, traces=loaded if loaded else None,
                                        tolerance=tol, max_examples=max_examples, min_examples=min_examples,
                                        budget_s=budget, seed=seed))
    show = Output(json_path)
    cert = _certificate(model, 0.01, 0.95)  # stored with the surrogate: nothing more is run
    show_verify(show, report, function=function, guard=_guard_phrase(cert) if cert is not None else "")
    if markdown_path:
        Path(markdown_path).write_text(report.to_markdown())
        show.line(f"Markdown written to {markdown_path}")
    show.json(None, text=report.to_json())
    codes = {"passed": EXIT_OK, "failed": EXIT_FAILED, "inconclusive": EXIT_INCONCLUSIVE}
    raise SystemExit(codes.get(report.status, EXIT_FAILED))


# -- guard -------------------------------------------------------------------------------------
@cli.command(epilog=_example("neuroswap guard myrules:parking_fee parking.surrogate --max-error-rate 0.01 "
                             "--max-error-rate 0.05",
                             "neuroswap guard myrules:parking_fee parking.surrogate --recalibrate "
                             "--store sqlite:///traces.db"))
@click.argument("function")
@click.argument("surrogate")
@click.option("--max-error-rate", "rates", multiple=True, type=float, metavar="R",
              help="Highest share of wrong served answers to certify (repeat for several; "
                   "default 0.001, 0.01 and 0.05).")
@click.option("--confidence", default=0.95, show_default=True, help="Probability the certificate holds with.")
@click.option("--recalibrate", is_flag=True,
              help="Certify on recorded traffic from --store, labelled now by calling FUNCTION (as "
                   "swap(..., calibration_inputs=rows)), instead of the surrogate's stored calibration.")
@store_option
@click.option("--limit", default=None, type=int, help="With --recalibrate: label at most the latest N traces.")
@tolerance_options
@json_option
def guard(function: str, surrogate: str, rates: tuple[float, ...], confidence: float, recalibrate: bool,
          store: str | None, limit: int | None, tol_abs: float | None, tol_rel: float | None,
          json_path: str | None) -> None:
    """What a guarded swap of SURROGATE would serve: coverage and certified served error per rate,
    and the Python line that deploys it."""
    from . import _cli_guard

    asked = list(rates) or [0.001, 0.01, 0.05]
    _cli_guard.check_rates(asked, confidence)
    if limit is not None and limit < 1:
        fail(f"--limit={limit} : must be >= 1. Leave it out to label every recorded trace")
    tol = tolerance(tol_abs, tol_rel)
    if tol is not None and not recalibrate:
        fail(f"--abs/--rel={describe_tolerance(tol)} : the stored calibration was judged at the surrogate's own "
             "tolerance. Add --recalibrate to judge recorded traffic at this tolerance")
    if limit is not None and not recalibrate:
        fail(f"--limit={limit} : only applies with --recalibrate. Add --recalibrate, or leave --limit out")
    fn = _load_function(function)
    model = _load_surrogate(surrogate, fn)
    rows = None
    if recalibrate:
        loaded = load_traces(store, function, limit=limit)
        rows = [dict(kw) for kw, ok in zip(loaded.inputs, loaded.replayable) if ok]
        if not rows:
            fail(f"function={function!r} : no replayable traces in --store={store or _default_store()!r} to "
                 "recalibrate on. Record calls first, or leave out --recalibrate")
        if tol is not None:
            model.tolerance = tol  # in this process only: the rows are judged at the asked tolerance
    show = Output(json_path)
    certs, source = guarded(lambda: _cli_guard.certificates(fn, model, asked, confidence, rows=rows))
    data = _cli_guard.show(show, function=function, surrogate_path=surrogate, model=model, certs=certs,
                           source=source, rates=asked, confidence=confidence, recalibrated=recalibrate,
                           rows_used=len(rows) if rows is not None else None,
                           store=store_origin(store)[0], judged_at=tol)
    show.json(data)


# -- distill -----------------------------------------------------------------------------------
#: distill's tolerance when rules are distilled from the function itself and none is given:
#: `0.04 * minutes - 1.2` and `(minutes - 30) * 0.08 / 2` differ by rounding only
FLOAT_ROUNDING = 1e-9

@cli.command(epilog=_example("neuroswap distill myrules:parking_fee --store sqlite:///traces.db --out parking_rules.py"))
@click.argument("function")
@store_option
@click.option("--surrogate", default=None, help="Distill this saved surrogate (default: the function itself).")
@click.option("--max-leaves", default=16, show_default=True, help="Leaves of the tree when the paths cannot be traced.")
@click.option("--exact/--no-exact", default=True, show_default=True,
              help="Rules from the function's traced branch paths where possible (else a tree).")
@click.option("--out", default=None, help="Write the rules' Python source here (else print it).")
@click.option("--seed", default=0, show_default=True)
@click.option("--budget", default=None, type=float,
              help="Wall-time budget in seconds (default: none); what it cuts is printed.")
@tolerance_options
@json_option
def distill(function: str, store: str | None, surrogate: str | None, max_leaves: int, exact: bool, out: str | None,
            seed: int, budget: float | None, tol_abs: float | None, tol_rel: float | None,
            json_path: str | None) -> None:
    """Distill FUNCTION (or a surrogate of it) into plain Python rules, with their fidelity."""
    from explain import distill as run_distill
    from probes import Schema, Tolerance

    tol = tolerance(tol_abs, tol_rel)
    fn = _load_function(function)
    teacher = _load_surrogate(surrogate, fn) if surrogate else fn
    if tol is None and surrogate is None:  # rules rewrite the arithmetic: float rounding is not a disagreement
        tol = Tolerance(abs=FLOAT_ROUNDING, rel=FLOAT_ROUNDING)
    loaded = load_traces(store, function, must_exist=surrogate is None or store is not None)
    schema = teacher.schema if surrogate else None
    if schema is None:
        if loaded is None or not len(loaded):
            fail(f"function={function!r} : no traces in --store={store or _default_store()!r} to infer its domain "
                 "from. Record some calls, pass the store they are in with --store, or distill a surrogate with "
                 "--surrogate")
        schema = guarded(lambda: Schema.infer(fn, loaded))
    rules = guarded(lambda: run_distill(teacher, schema=schema, max_leaves=max_leaves, original=fn, seed=seed,
                                        budget_s=budget, tolerance=tol, exact=exact,
                                        traces=loaded if loaded is not None and len(loaded) else None))
    show = Output(json_path)
    fidelity = list(rules.fidelity.values())
    main = next((f for f in fidelity if f.against == "original" and f.distribution == "domain"),
                fidelity[0] if fidelity else None)
    how = rules.variant + (", cut short by --budget" if rules.cut_short else "")
    if main is not None:
        against = "the surrogate" if main.against == "teacher" and surrogate else "the function"
        show.verdict(f"rules agree with {against} {function.rpartition(':')[2]} on {pct(main.agreement)} of "
                     f"{main.n:,} {main.distribution} inputs (95% CI {ci(main.agreement_ci)}); {how}, "
                     f"{rules.complexity.leaves} leaves", "ok" if main.agreement >= 0.999 else "inconclusive")
    pairs: list[tuple[str, Any]] = [("rules", rules.variant), ("leaves", rules.complexity.leaves),
                                    ("depth", rules.complexity.depth), ("lines", rules.complexity.lines)]
    for fid in fidelity:
        against = "surrogate" if fid.against == "teacher" and surrogate else "function"
        pairs.append((f"vs the {against}, {fid.distribution} inputs",
                      f"{pct(fid.agreement, 2)} of {fid.n:,} (95% CI {ci(fid.agreement_ci)}), max error "
                      f"{num(fid.max_error)}"))
    pairs.append(("tolerance", describe_tolerance(rules.tolerance)
                  + (" (float rounding; --abs/--rel to change)" if tol_abs is None and tol_rel is None
                     and surrogate is None else "")))
    if rules.exact is not None and rules.exact.note:
        pairs.append(("exact paths", rules.exact.note))
    if rules.budget is not None:
        pairs.append(("budget", rules.budget.describe()))
    pairs.append(("written to", out))
    show.table(pairs)
    if out:
        Path(out).write_text(rules.source)
    else:
        show.line(rules.source)
    if rules.cut_short:
        from rich.markup import escape

        errors.print("[bold yellow]warning:[/] the budget cut the distillation short: "
                     + escape("; ".join(rules.budget.skipped)), highlight=False)
    show.json({**rules.to_dict(), "source": rules.source, "out": out})


# -- report ------------------------------------------------------------------------------------
@cli.command(epilog=_example("neuroswap report myrules:parking_fee parking.surrogate --store sqlite:///traces.db "
                             "--out parking_report"))
@click.argument("function")
@click.argument("surrogate")
@store_option
@click.option("--out", default="neuroswap_report", show_default=True, help="Folder for report.html and report.md.")
@tolerance_options
@json_option
def report(function: str, surrogate: str, store: str | None, out: str, tol_abs: float | None,
           tol_rel: float | None, json_path: str | None) -> None:
    """Write the audit report (report.html, report.md) of SURROGATE against FUNCTION."""
    from explain import report as run_report

    tol = tolerance(tol_abs, tol_rel)
    fn = _load_function(function)
    model = _load_surrogate(surrogate, fn)
    if tol is not None:
        model.tolerance = tol  # in this process only: the report judges at the asked tolerance
    loaded = load_traces(store, function, must_exist=store is not None)
    path = Path(guarded(lambda: run_report(fn, model, traces=loaded if loaded is not None and len(loaded) else None,
                                           out=out))).resolve()
    show = Output(json_path)
    summary = _report_summary(path / "report.md")
    show.verdict(f"audit report of {surrogate} against {function.rpartition(':')[2]} written"
                 + (f"; verify {summary}" if summary else ""))
    show.table([("html", str(path / "report.html")), ("markdown", str(path / "report.md")),
                ("figures", len(list(path.glob("*.png")))), ("traces used", len(loaded) if loaded is not None else 0),
                ("tolerance", describe_tolerance(model.tolerance))])
    show.json({"function": function, "surrogate": surrogate, "report": str(path / "report.html"),
               "markdown": str(path / "report.md"), "summary": summary})


def _report_summary(markdown: Path) -> str:
    """The report's verify line ("probes.verify: PASSED; overall agreement ..."), when it has one."""
    try:
        text = markdown.read_text()
    except OSError:
        return ""
    for line in text.splitlines():
        if line.startswith("probes.verify:"):
            return line.removeprefix("probes.verify:").strip().rstrip(".")
    return ""


def main() -> None:
    """Console-script entry point; click's own usage errors already exit with 2."""
    cli(prog_name="neuroswap")


if __name__ == "__main__":  # pragma: no cover
    main()
