"""The `neuroswap` command: record, fit, verify, distill and report from a shell.

Exit codes: 0 success, 1 verification failed (a disagreement), 2 usage error (bad argument,
missing file), 3 verification inconclusive (too little evidence for a verdict).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import click
from rich.console import Console
from rich.table import Table

from probes._errors import NeuroswapError

# Piped output (CI logs, scripts) gets a wide console: rich's default of 80 columns folds the table.
console = Console(stderr=False, width=None if sys.stdout.isatty() else 160)
errors = Console(stderr=True)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INCONCLUSIVE = 0, 1, 2, 3


def _fail(message: str, code: int = EXIT_USAGE) -> None:
    errors.print(f"[bold red]error:[/] {message}")
    raise SystemExit(code)


def _guard(action: Callable[[], Any]) -> Any:
    """Run `action`, turning neuroswap's own errors into a message and exit code 2."""
    try:
        return action()
    except NeuroswapError as exc:
        _fail(str(exc))


def _import_case_studies() -> Any:
    """`case_studies` lives in the checkout, not in the wheel: look beside the package and in cwd."""
    for root in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (root / "case_studies" / "__init__.py").exists() and str(root) not in sys.path:
            sys.path.insert(0, str(root))
    try:
        import case_studies
    except ImportError:
        _fail("case_studies/ was not found : the case studies ship with the neuroswap repository. "
              "Run this command from a clone of it")
    return case_studies


def _load_function(name: str) -> Callable[..., Any]:
    from probes import resolve

    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    return _guard(lambda: resolve(name))


def _store(uri: str | None) -> Any:
    from probes import TraceStore

    return _guard(lambda: TraceStore.open(uri))


#: Short headers for the case-study table; rows keep the long keys.
HEADERS = {"agreement": "agreement", "agreement_ci": "95% CI", "max_error": "max error",
           "axbench_error": "AxBench err", "rules_agreement": "rules agree", "rules_leaves": "leaves",
           "batch_speedup": "batch x", "single_call_speedup": "single x", "wall_s": "wall s"}


def _rows_table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(HEADERS.get(column, column), overflow="fold")
    for row in rows:
        table.add_row(*[_fmt(row.get(column)) for column in columns])
    return table


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, float) for v in value):
        return f"[{value[0]:.4f}, {value[1]:.4f}]"
    return str(value)


STUDY_COLUMNS = ["study", "agreement", "agreement_ci", "max_error", "axbench_error", "rules_agreement",
                 "rules_leaves", "batch_speedup", "single_call_speedup", "wall_s"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="neuroswap")
def cli() -> None:
    """Record a legacy function, replace it with a verified neural surrogate, explain it."""


@cli.command()
@click.option("--out", default="neuroswap_report", show_default=True, help="Folder for the audit report.")
@click.option("--store", default=None, help="Trace store URI (default: $NEUROSWAP_STORE or ./neuroswap_traces.db).")
@click.option("--study", default="shipping_fee", show_default=True, help="Which case study to run.")
@click.option("--quick", is_flag=True, help="Smaller budgets, for a first look.")
def demo(out: str, store: str | None, study: str, quick: bool) -> None:
    """Run the flagship case study end to end: record, fit, verify, mine, distill, report."""
    _run_studies([study], out=out, store=store, quick=quick)


@cli.command("case-study")
@click.argument("name", required=False)
@click.option("--all", "run_all", is_flag=True, help="Run every case study.")
@click.option("--out", default="neuroswap_report", show_default=True, help="Folder for the reports (one per study).")
@click.option("--store", default=None, help="Trace store URI.")
@click.option("--quick", is_flag=True, help="Smaller budgets, for a first look.")
@click.option("--json", "json_path", default=None, help="Also write the result rows to this JSON file.")
def case_study(name: str | None, run_all: bool, out: str, store: str | None, quick: bool, json_path: str | None) -> None:
    """Run one case study (NAME) or all of them (--all), and print their result rows."""
    studies = _import_case_studies().STUDIES
    if run_all == (name is not None):
        _fail(f"name={name!r}, --all={run_all} : give exactly one of NAME or --all. Known studies: "
              + ", ".join(studies))
    names = list(studies) if run_all else [name]
    _run_studies(names, out=out, store=store, quick=quick, json_path=json_path, one_folder_each=True)


def _run_studies(names: list[str | None], *, out: str, store: str | None, quick: bool,
                 json_path: str | None = None, one_folder_each: bool = False) -> None:
    studies = _import_case_studies().STUDIES
    rows = []
    for name in names:
        if name not in studies:
            _fail(f"study={name!r} : no such case study. Known: {', '.join(studies)}")
        module = studies[name]
        if not hasattr(module, "run"):
            _fail(f"study={name!r} : has no run() flow yet")
        target = str(Path(out) / name) if one_folder_each else out
        console.print(f"[bold]{name}[/]: {getattr(module, 'DESCRIPTION', '')}")
        start = time.perf_counter()
        row = _guard(lambda: module.run(store=store, out=target, quick=quick, progress=True))
        row = dict(row)
        row.setdefault("study", name)
        row.setdefault("wall_s", time.perf_counter() - start)
        rows.append(row)
    console.print(_rows_table("neuroswap case studies", rows, STUDY_COLUMNS))
    for row in rows:
        if row.get("report"):
            console.print(f"report: {Path(row['report']).resolve()}")
    if json_path:
        from case_studies._table import jsonable, markdown_table  # the bench's own formats

        Path(json_path).write_text(json.dumps(jsonable(rows), indent=2))
        Path(json_path).with_suffix(".md").write_text(markdown_table(rows) + "\n")
        console.print(f"rows written to {json_path} and {Path(json_path).with_suffix('.md')}")


@cli.group()
def traces() -> None:
    """List, show and export recorded traces."""


@traces.command("list")
@click.option("--store", default=None, help="Trace store URI.")
def traces_list(store: str | None) -> None:
    """Every recorded function with its source hash and number of traces."""
    items = _guard(lambda: _store(store).functions())
    table = Table(title="recorded functions")
    for column in ("function", "source hash", "traces"):
        table.add_column(column)
    for item in items:
        name, source_hash, count = _function_entry(item)
        table.add_row(name, source_hash, str(count))
    console.print(table)


def _function_entry(item: Any) -> tuple[str, str, int]:
    if isinstance(item, tuple):
        return str(item[0]), str(item[1]), int(item[2])
    return str(item.name), str(item.source_hash), int(item.count)


@traces.command("show")
@click.argument("function")
@click.option("--store", default=None, help="Trace store URI.")
@click.option("--limit", default=20, show_default=True, help="How many traces to show.")
def traces_show(function: str, store: str | None, limit: int) -> None:
    """The latest traces of FUNCTION (module:qualname)."""
    loaded = _guard(lambda: _store(store).load(function, limit=limit))
    table = Table(title=f"{function} ({len(loaded)} shown)")
    for column in ("inputs", "outcome"):
        table.add_column(column, overflow="fold")
    for trace in loaded:
        outcome = f"raised {trace.error.type}: {trace.error.message}" if trace.error else repr(trace.output)
        table.add_row(", ".join(f"{k}={v!r}" for k, v in trace.inputs.items()), outcome)
    console.print(table)


@traces.command("export")
@click.argument("function")
@click.option("--store", default=None, help="Trace store URI.")
@click.option("--out", required=True, help="A .parquet or .jsonl file.")
def traces_export(function: str, store: str | None, out: str) -> None:
    """Export the traces of FUNCTION to Parquet or JSON lines."""
    loaded = _guard(lambda: _store(store).load(function))
    if out.endswith(".parquet"):
        _guard(lambda: loaded.to_parquet(out))
    elif out.endswith(".jsonl"):
        with open(out, "w") as handle:
            for trace in loaded:
                handle.write(json.dumps({"inputs": trace.inputs, "output": trace.output,
                                         "error": trace.error.to_dict() if trace.error else None},
                                        default=repr) + "\n")
    else:
        _fail(f"out={out!r} : must end in .parquet or .jsonl")
    console.print(f"{len(loaded)} traces written to {out}")


@cli.command()
@click.argument("function")
@click.option("--store", default=None, help="Trace store URI.")
@click.option("--out", required=True, help="Folder to save the surrogate in.")
@click.option("--budget", default=60.0, show_default=True, help="Training wall-time budget in seconds.")
@click.option("--seed", default=0, show_default=True)
@click.option("--abs", "tol_abs", default=None, type=float, help="Absolute tolerance.")
@click.option("--rel", "tol_rel", default=None, type=float, help="Relative tolerance.")
@click.option("--no-oracle", is_flag=True, help="Learn from traces only; never call the function.")
def fit(function: str, store: str | None, out: str, budget: float, seed: int,
        tol_abs: float | None, tol_rel: float | None, no_oracle: bool) -> None:
    """Train a surrogate of FUNCTION (module:qualname) from its traces."""
    import replace
    from probes import Tolerance

    fn = _load_function(function)
    loaded = _guard(lambda: _store(store).load(function))
    tolerance = None if tol_abs is None and tol_rel is None else _guard(
        lambda: Tolerance(abs=tol_abs or 0.0, rel=tol_rel or 0.0))
    surrogate = _guard(lambda: replace.fit(fn, loaded if len(loaded) else None, tolerance=tolerance,
                                            oracle=not no_oracle, budget_s=budget, seed=seed, progress=True))
    _guard(lambda: surrogate.save(out))
    metrics = surrogate.metrics.to_dict()
    console.print(_rows_table("surrogate", [{k: v for k, v in metrics.items() if not isinstance(v, (list, dict))}],
                              [k for k, v in metrics.items() if not isinstance(v, (list, dict))]))
    console.print(f"saved to {out}")


def _load_surrogate(path: str, fn: Callable[..., Any] | None = None) -> Any:
    from replace import Surrogate

    if not os.path.exists(path):
        _fail(f"surrogate={path!r} : no such file or folder. Train one with `neuroswap fit ... --out {path}`")
    return _guard(lambda: Surrogate.load(path, fn=fn))


@cli.command()
@click.argument("function")
@click.argument("surrogate")
@click.option("--store", default=None, help="Trace store URI (recorded traces are replayed).")
@click.option("--max-examples", default=500, show_default=True, help="Inputs per view, at most.")
@click.option("--min-examples", default=None, type=int,
              help="Inputs each view must judge before the verdict can be 'passed' (default 100).")
@click.option("--budget", default=None, type=float, help="Wall-time budget in seconds (default: none).")
@click.option("--seed", default=0, show_default=True)
@click.option("--json", "json_path", default=None, help="Write the report as JSON here.")
def verify(function: str, surrogate: str, store: str | None, max_examples: int, min_examples: int | None,
           budget: float | None, seed: int, json_path: str | None) -> None:
    """Judge SURROGATE against FUNCTION.

    Exit codes: 0 passed; 1 failed (they disagree somewhere); 2 usage error (e.g.
    --min-examples above --max-examples); 3 inconclusive (no disagreement seen, but a view
    judged fewer than --min-examples inputs, e.g. cut by --budget; the report says why).
    """
    from probes import verify as run_verify

    fn = _load_function(function)
    model = _load_surrogate(surrogate, fn)
    loaded = _guard(lambda: _store(store).load(function)) if store or os.environ.get("NEUROSWAP_STORE") else None
    report = _guard(lambda: run_verify(fn, model, schema=model.schema, traces=loaded if loaded else None,
                                       max_examples=max_examples, min_examples=min_examples, budget_s=budget,
                                       seed=seed))
    console.print(report.to_markdown(), markup=False, highlight=False)
    if json_path:
        Path(json_path).write_text(report.to_json())
    codes = {"passed": EXIT_OK, "failed": EXIT_FAILED, "inconclusive": EXIT_INCONCLUSIVE}
    raise SystemExit(codes.get(report.status, EXIT_FAILED))


@cli.command()
@click.argument("function")
@click.option("--surrogate", default=None, help="Distill this saved surrogate (default: the function itself).")
@click.option("--max-leaves", default=16, show_default=True)
@click.option("--out", default=None, help="Write the rules' Python source here.")
@click.option("--seed", default=0, show_default=True)
@click.option("--budget", default=None, type=float,
              help="Wall-time budget in seconds (default: none); what it cuts is printed.")
def distill(function: str, surrogate: str | None, max_leaves: int, out: str | None, seed: int,
            budget: float | None) -> None:
    """Distill FUNCTION (or a surrogate of it) into plain Python rules."""
    from explain import distill as run_distill

    fn = _load_function(function)
    teacher = _load_surrogate(surrogate, fn) if surrogate else fn
    schema = teacher.schema if surrogate else None
    if schema is None:
        schema = _schema_for(fn, function)
    rules = _guard(lambda: run_distill(teacher, schema=schema, max_leaves=max_leaves, original=fn, seed=seed,
                                       budget_s=budget))
    if out:
        Path(out).write_text(rules.source)
        console.print(f"rules written to {out}")
    else:
        console.print(rules.source, markup=False, highlight=False)
    console.print(rules.to_markdown(), markup=False, highlight=False)
    if rules.cut_short:
        from rich.markup import escape

        errors.print("[bold yellow]warning:[/] the budget cut the distillation short: "
                     + escape("; ".join(rules.budget.skipped)), highlight=False)


def _schema_for(fn: Callable[..., Any], function: str) -> Any:
    from probes import Schema

    loaded = _guard(lambda: _store(None).load(function))
    if not len(loaded):
        _fail(f"function={function!r} : no traces to infer its domain from. Record some calls, "
              "or distill a surrogate with --surrogate")
    return _guard(lambda: Schema.infer(fn, loaded))


@cli.command()
@click.argument("function")
@click.argument("surrogate")
@click.option("--store", default=None, help="Trace store URI.")
@click.option("--out", default="neuroswap_report", show_default=True)
def report(function: str, surrogate: str, store: str | None, out: str) -> None:
    """Write the audit report (report.html, report.md) of SURROGATE against FUNCTION."""
    from explain import report as run_report

    fn = _load_function(function)
    model = _load_surrogate(surrogate, fn)
    loaded = _guard(lambda: _store(store).load(function))
    path = _guard(lambda: run_report(fn, model, traces=loaded if len(loaded) else None, out=out))
    console.print(f"report: {Path(path).resolve()}")


def main() -> None:
    """Console-script entry point; click's own usage errors already exit with 2."""
    cli(prog_name="neuroswap")


if __name__ == "__main__":  # pragma: no cover
    main()
