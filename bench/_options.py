"""`--fit-option KEY=VALUE` for the bench scripts: one parser, so every script reads the same
spelling (the value as JSON, else as text)."""

from __future__ import annotations

import argparse
import json
from typing import Any, Sequence


def fit_options(items: Sequence[str], parser: argparse.ArgumentParser) -> dict[str, Any]:
    """`KEY=VALUE` strings as fit keyword options; a malformed one is a usage error."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--fit-option {item!r}: expected KEY=VALUE, e.g. rounds=0 or exact='\"off\"'")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def described(options: dict[str, Any]) -> str:
    """How a results table names its setting: "defaults", or "defaults but k=v, ..." where an
    option a run set that has since become fit's default says so (a table outlives the default)."""
    if not options:
        return "defaults"
    from replace import FitOptions

    now = FitOptions()
    return "defaults but " + ", ".join(
        f"{k}={v!r}" + (" (fit's default since)" if getattr(now, k, None) == v else "") for k, v in options.items())
