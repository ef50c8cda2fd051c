"""The case-study flow end to end, at toy budgets: every step runs (or says why not), the row
has the documented keys and types, the traces are in the SQLite file, the report is written."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import pytest

import explain
import probes
from case_studies import STUDIES, check_digit, shipping_fee
from case_studies._flow import ROW_KEYS, Budgets, run_study
from case_studies._table import HEADER, jsonable, markdown_table

TINY = Budgets(n_traces=300, fit_s=3.0, verify_examples=60, verify_s=3.0, mine_s=1.0, max_leaves=4, distill_samples=200,
               fidelity_samples=100, batch_rows=2000, fresh=200, guarded_calls=200, baseline_rows_cap=1500,
               baseline_iter=15, report_eval=50, report_attribution=5)
# Steps whose package has landed must run; the others must say they were skipped.
NEEDS = {"record": probes, "fit": None, "verify": probes, "mine": probes, "distill": explain, "report": explain}


def _run(module, tmp_path: Path, **extra):
    db = tmp_path / f"{module.NAME}.db"
    row = run_study(module, store=f"sqlite:///{db}", out=tmp_path / "report", quick=True, seed=0, budgets=TINY,
                    **extra)
    return row, db


@pytest.fixture(scope="module")
def shipping(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("shipping")
    return (*_run(shipping_fee, tmp, report=True), tmp)


@pytest.mark.slow
def test_row_has_every_key_with_its_type(shipping):
    row, _, _ = shipping
    assert set(ROW_KEYS) <= set(row)
    failed = {step: why for step, why in row["skipped"].items() if why.startswith("failed")}
    assert not failed, failed
    assert row["study"] == "shipping_fee" and row["quick"] is True and row["seed"] == 0
    assert row["n_calls"] == TINY.n_traces
    assert isinstance(row["wall_s"], float) and row["wall_s"] > 0
    for key in ("agreement", "rules_agreement", "guarded_invocation_rate", "guarded_coverage",
                "sklearn_mlp_agreement", "sklearn_hgb_agreement", "surrogate_fresh_agreement"):
        assert row[key] is None or 0.0 <= row[key] <= 1.0, (key, row[key])
    assert row["agreement"] is not None, row["skipped"]
    low, high = row["agreement_ci"]
    assert 0.0 <= low <= row["agreement"] <= high <= 1.0
    assert isinstance(row["passed"], bool)
    assert row["max_error"] >= 0.0
    assert isinstance(row["oracle_calls"], int) and row["oracle_calls"] >= 0
    assert row["batch_speedup"] > 0 and row["single_call_speedup"] > 0 and row["batch_rows"] == TINY.batch_rows
    assert isinstance(row["rules_leaves"], int) and 1 <= row["rules_leaves"] <= TINY.max_leaves
    assert row["axbench_error"] is None  # not an AxBench study
    assert row["mined_cases"] is not None and row["mined_cases"] >= 0
    # the certified guard at 1% on fresh production inputs: counts that add up
    assert row["guarded_fresh"] == TINY.guarded_calls
    assert 0 <= row["guarded_wrong"] <= row["guarded_served"] <= row["guarded_fresh"]
    assert row["guarded_coverage"] == row["guarded_served"] / row["guarded_fresh"]
    if row["guarded_served"]:
        assert row["guarded_served_error"] == row["guarded_wrong"] / row["guarded_served"]
    # the keys of every step that could run are filled; skipped ones are None with a reason
    assert set(row["step_s"]) >= {"record", "fit", "verify", "mine", "refit", "distill", "speed", "guarded",
                                  "baselines", "report"}
    if "refit" not in row["skipped"]:
        assert row["max_error_after_refit"] is not None and row["max_error_before_refit"] is not None
        assert isinstance(row["refit_kept"], bool) and 0 < row["refit_cases"] <= min(row["mined_cases"], TINY.hard_cases)
    else:
        assert row["max_error_after_refit"] is None


@pytest.mark.slow
def test_traces_are_in_the_sqlite_file(shipping):
    row, db, _ = shipping
    assert db.exists()
    with sqlite3.connect(db) as con:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type='table'")]
        total = max(con.execute(f"select count(*) from {t}").fetchone()[0] for t in tables)
    assert total >= TINY.n_traces  # one row per recorded call (possibly more tables)
    store = probes.TraceStore.open(f"sqlite:///{db}")
    loaded = store.load(shipping_fee.FUNCTION)
    assert len(loaded) == row["n_traces"] > 0.9 * TINY.n_traces  # distinct inputs of this run
    assert all(shipping_fee.FUNCTION(**kw) == out for kw, out in list(zip(loaded.inputs, loaded.outputs))[:50])


@pytest.mark.slow
def test_report_html_is_written(shipping):
    row, _, tmp = shipping
    assert row["report"] is not None, row["skipped"].get("report")
    html = Path(row["report"])
    assert html.name == "report.html" and html.exists() and html.stat().st_size > 1000
    assert html.parent == tmp / "report"


@pytest.mark.slow
def test_check_digit_fails_verification_honestly(tmp_path):
    row, _ = _run(check_digit, tmp_path, report=False)
    assert row["passed"] is False
    assert row["agreement"] < 0.5  # a guess is right 1 time in 11
    assert row["skipped"]["report"] == "disabled"


def test_markdown_table_renders_rows_and_skips():
    rows = [
        {"study": "a", "agreement": 0.991, "agreement_ci": [0.98, 0.995], "max_error": math.inf,
         "axbench_error": 0.02, "published_npu_error": 0.075, "rules_agreement": 0.9, "rules_leaves": 12,
         "batch_speedup": 40.0, "single_call_speedup": 0.5, "sklearn_mlp_agreement": 0.5,
         "sklearn_hgb_agreement": 0.6, "guarded_coverage": 0.25, "guarded_served": 500, "guarded_wrong": 3,
         "guarded_served_error": 0.006, "passed": False, "wall_s": 12.3,
         "skipped": {"report": "disabled"}},
        {"study": "b", "skipped": {}},
    ]
    table = markdown_table(jsonable(rows))
    lines = table.splitlines()
    assert lines[0].count("|") == len(HEADER) + 1
    assert "| a | 99.10% [98.00%, 99.50%] | inf (outcome differs) | 2.00% (7.50%) | 90.0% / 12 | 40.0x / 0.50x |" in table
    assert "| 0.60% (3/500) | 25.0% | failed |" in table
    assert "| b | - |" in table
    assert "a report (disabled)" in table


def test_markdown_table_says_inconclusive_not_failed():
    """verify with too few judged inputs is inconclusive: `passed` is False, the table says why."""
    row = {"study": "c", "passed": False, "verify_status": "inconclusive", "skipped": {}}
    assert "| inconclusive |" in markdown_table(jsonable([row]))


def test_every_study_has_run():
    for name, module in STUDIES.items():
        assert callable(getattr(module, "run", None)), name
