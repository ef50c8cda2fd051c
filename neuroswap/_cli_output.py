"""How the command line talks: a verdict line first, then a vertical key/value table, or JSON.

Shared by every command: where the trace store comes from (`--store`, else `$NEUROSWAP_STORE`,
else `./neuroswap_traces.db`, as `probes.TraceStore.open` decides), the tolerance options, the
`--json PATH` option (`-` for standard output, and then the words go to standard error so a
script can parse standard output), and errors that name the argument, its value and the fix.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import click
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from probes._errors import NeuroswapError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INCONCLUSIVE = 0, 1, 2, 3

errors = Console(stderr=True)


def fail(message: str, code: int = EXIT_USAGE) -> None:
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise SystemExit(code)


def guarded(action: Callable[[], Any]) -> Any:
    """Run `action`, turning neuroswap's own errors into a message and exit code 2."""
    try:
        return action()
    except NeuroswapError as exc:
        fail(str(exc))


def stdout_console() -> Console:
    # Piped output (CI logs, scripts) gets a wide console: rich's 80 columns would fold tables.
    return Console(stderr=False, width=None if sys.stdout.isatty() else 160)


# -- the trace store ---------------------------------------------------------------------------
def store_origin(store: str | None) -> tuple[str, str]:
    """(the store's URI or path, where it came from): `--store`, `$NEUROSWAP_STORE`, or the default."""
    from probes._store import DEFAULT_STORE, STORE_ENV

    if store:
        return store, "--store"
    if os.environ.get(STORE_ENV):
        return os.environ[STORE_ENV], f"${STORE_ENV}"
    return DEFAULT_STORE, "default"


def open_store(store: str | None, *, must_exist: bool = True) -> Any:
    """The trace store the command reads. A SQLite file that does not exist is not created: with
    `must_exist` that is an error naming the fix, without it None (the command runs on no traces)."""
    from probes import TraceStore
    from probes._store import parse_uri

    uri, origin = store_origin(store)
    kind, target, _ = guarded(lambda: parse_uri(uri, "--store"))
    if kind == "sqlite" and not os.path.exists(target):
        if not must_exist:
            return None
        where = {"--store": "--store", "default": "the default store"}.get(origin, origin)
        fail(f"--store={uri!r} ({where}) : no such trace store file {str(Path(target).resolve())!r}. Record calls "
             "with @record(store=...) first, then pass that store with --store (or set $NEUROSWAP_STORE)")
    return guarded(lambda: TraceStore.open(uri))


def load_traces(store: str | None, function: str, *, must_exist: bool = True, limit: int | None = None) -> Any:
    """FUNCTION's traces from the store (None when the store is optional and absent)."""
    opened = open_store(store, must_exist=must_exist)
    if opened is None:
        return None
    if limit is None:
        return guarded(lambda: opened.load(function))
    return guarded(lambda: opened.load(function, limit=limit))


# -- options shared by commands ----------------------------------------------------------------
def store_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--store", default=None, metavar="URI",
                        help="Trace store: a path, sqlite:///file.db or postgresql://... "
                             "(default: $NEUROSWAP_STORE, else ./neuroswap_traces.db).")(func)


def json_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "json_path", default=None, metavar="PATH",
                        help="Also write the result as JSON to PATH ('-': standard output, and the "
                             "words go to standard error).")(func)


def tolerance_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--rel", "tol_rel", default=None, type=float, metavar="R",
                        help="Relative tolerance: a real output agrees within abs + rel * |original| "
                             "(default: the surrogate's own, or fit's default).")(func)
    return click.option("--abs", "tol_abs", default=None, type=float, metavar="A",
                        help="Absolute tolerance (labels and exceptions must always match exactly).")(func)


def tolerance(tol_abs: float | None, tol_rel: float | None) -> Any:
    """A Tolerance from --abs/--rel, or None when neither was given (each command's default)."""
    from probes import Tolerance

    if tol_abs is None and tol_rel is None:
        return None
    for name, value in (("--abs", tol_abs), ("--rel", tol_rel)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            fail(f"{name}={value} : must be a finite number >= 0. Pass e.g. {name} 0.01")
    return guarded(lambda: Tolerance(abs=tol_abs or 0.0, rel=tol_rel or 0.0))


def describe_tolerance(tol: Any) -> str:
    if tol is None:
        return "exact"
    parts = [f"abs={tol.abs:g}" if tol.abs else "", f"rel={tol.rel:g}" if tol.rel else ""]
    return " + ".join(p for p in parts if p) or "exact (abs=0, rel=0)"


# -- formatting --------------------------------------------------------------------------------
def pct(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if 0.999 <= value < 1.0 and digits < 3:
        digits = 3
    return f"{100 * value:.{digits}f}%"


def num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def ci(interval: Sequence[float] | None) -> str:
    if not interval:
        return "n/a"
    return f"{pct(interval[0])} to {pct(interval[1])}"


def jsonable(value: Any) -> Any:
    """Strict JSON values: NaN and infinities tagged as verify's JSON does ({"$float": "inf"})."""
    from probes._report import encode_value

    return encode_value(value)


# -- what a command prints ---------------------------------------------------------------------
STYLES = {"ok": "bold green", "failed": "bold red", "inconclusive": "bold yellow", "info": "bold"}


class Output:
    """A command's output: words on standard output (standard error when `--json -` takes it)."""

    def __init__(self, json_path: str | None) -> None:
        self.json_path = json_path
        self.console = Console(stderr=True) if json_path == "-" else stdout_console()

    def verdict(self, text: str, status: str = "info") -> None:
        """The first line: what the command found, in a sentence."""
        self.console.print(f"[{STYLES.get(status, 'bold')}]{escape(text)}[/]", highlight=False, soft_wrap=True)

    def line(self, text: str = "") -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def table(self, pairs: Iterable[tuple[str, Any]], title: str | None = None) -> None:
        """A vertical key/value table: one row per fact, so nothing folds into fragments."""
        table = Table(title=title, show_header=False, box=box.SIMPLE, title_justify="left", pad_edge=False)
        table.add_column("key", style="bold", no_wrap=True)
        table.add_column("value", overflow="fold")
        for key, value in pairs:
            if value is not None:
                table.add_row(escape(key), escape(value if isinstance(value, str) else num(value)))
        self.console.print(table)

    def json(self, data: Any, *, text: str | None = None) -> None:
        """Write the result as JSON to `--json PATH` (or standard output for `-`); no-op without it."""
        if not self.json_path:
            return
        payload = text if text is not None else json.dumps(jsonable(data), indent=2, allow_nan=False)
        if self.json_path == "-":
            click.echo(payload)
            return
        try:
            Path(self.json_path).write_text(payload + ("" if payload.endswith("\n") else "\n"))
        except OSError as exc:
            fail(f"--json={self.json_path!r} : cannot be written ({exc.strerror or exc}). Pass a path in a "
                 "folder that exists, or '-' for standard output")
        self.console.print(f"JSON written to {self.json_path}", markup=False, highlight=False)
