"""bench/exact_work.py: the exact-program search as fit runs it on the work clock gives one
result quiet and under load, on a function of the untuned suite (a small work limit, so the
limit itself decides where the search stops)."""

from __future__ import annotations

import json

from bench.exact_work import main


def test_search_limited_in_work_is_identical_under_load(tmp_path):
    out = tmp_path / "exact_work.json"
    result = main(["--only", "bmi_category", "--work", "1", "--busy", "1", "--traces", "500", "--out", str(out)])
    row = result["rows"][0]
    assert row["quiet"]["calls"] > 0 and row["quiet"]["work_s"] >= 1.0  # the limit was reached
    assert any(note.startswith("budget:") for note in row["quiet"]["notes"])
    assert row["identical"], (row["quiet"], row["busy"])
    assert json.loads(out.read_text())["rows"][0]["identical"]
