"""Joining results files of a bench run split over processes: one check for both scripts that
merge (budget_table.py, untuned.py), so a run measured twice is refused the same way."""

from __future__ import annotations

from collections import Counter
from typing import Hashable, Iterable


def refuse_measured_twice(keys: Iterable[Hashable]) -> None:
    """Exit with the keys (e.g. (function, seed)) that appear in more than one run: merged runs
    are never silently averaged."""
    twice = sorted(key for key, count in Counter(keys).items() if count > 1)
    if twice:
        raise SystemExit(f"--merge: measured twice: {twice}; leave one of those files out")
