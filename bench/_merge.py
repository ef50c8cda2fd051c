"""Joining results files of a bench run split over processes: one check for both scripts that
merge (budget_table.py, untuned.py), so a run measured twice is refused the same way."""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Hashable, Iterable


def refuse_measured_twice(keys: Iterable[Hashable]) -> None:
    """Exit with the keys (e.g. (function, seed)) that appear in more than one run: merged runs
    are never silently averaged."""
    twice = sorted(key for key, count in Counter(keys).items() if count > 1)
    if twice:
        raise SystemExit(f"--merge: measured twice: {twice}; leave one of those files out")


def assume_options(names: list[str], parts: list[dict[str, Any]], assume: list[str]) -> list[dict[str, Any]]:
    """`parts` with each FILE:NAME=VALUE of `assume` added to that file's fit options: what a file
    made without the option ran under because it was the default then (the merged file lists them).
    A file that records the option with another value is refused."""
    parts = [dict(p) for p in parts]
    for item in assume:
        name, sep, setting = item.partition(":")
        key, eq, value = setting.partition("=")
        if not (sep and eq and key) or name not in names:
            raise SystemExit(f"--assume: {item!r} must be FILE:NAME=VALUE with FILE one of {names}, "
                             f"e.g. {names[0]}:round_baseline=same_time")
        part = parts[names.index(name)]
        own = part.get("fit_options") or {}
        if key in own and own[key] != value:
            raise SystemExit(f"--assume: {name} records {key}={own[key]!r}, not {value!r}")
        part["fit_options"] = {**own, key: value}
    return parts


def drop_runs(names: list[str], parts: list[dict[str, Any]], drop: list[str],
              run_key: Callable[[dict[str, Any]], str], example: str) -> list[dict[str, Any]]:
    """`parts` without the runs named FILE:KEY in `drop` (KEY as `run_key` writes it; measured
    again in another file); each must exist, or the merge is refused with the names there are."""
    present = {f"{name}:{run_key(r)}" for name, p in zip(names, parts) for r in p["runs"]}
    missing = [d for d in drop if d not in present]
    if missing:
        raise SystemExit(f"--drop: no run {missing} in {names}; name runs as {example}, "
                         f"e.g. {sorted(present)[0] if present else example}")
    return [{**p, "runs": [r for r in p["runs"] if f"{name}:{run_key(r)}" not in drop]} for name, p in zip(names, parts)]
