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
from case_studies._flow import (ROW_KEYS, SURROGATE_TREE, TRACED_PATHS, Budgets, _Skip, distill_rules, rules_row,
                                run_study)
from case_studies._table import HEADER, jsonable, markdown_table, rules_summary

TINY = Budgets(n_traces=300, fit_s=3.0, verify_examples=60, verify_s=3.0, mine_s=1.0, max_leaves=4,
               distill_samples=1000, distill_s=15.0, fidelity_samples=100, batch_rows=2000, fresh=200,
               guarded_calls=200, baseline_rows_cap=1500,
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
    # the rules are the original's traced branch paths (max_leaves bounds only the surrogate's tree)
    assert row["rules_from"] == TRACED_PATHS, row.get("rules_note")
    assert isinstance(row["rules_leaves"], int) and row["rules_leaves"] >= 1
    assert isinstance(row["rules_exact"], bool) and row["rules_variant"]
    for key in ("rules_agreement_operational", "rules_agreement_domain"):
        assert 0.0 <= row[key] <= 1.0, (key, row[key])
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
    # a row from before the rules said where they came from keeps its old cell
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


# -- step 6: rules from the original's traced branch paths, the surrogate's tree only as a fallback ---------
def parcel_fee(weight: float, express: bool) -> float:
    if weight <= 2.0:
        base = 5.0
    elif weight <= 10.0:
        base = 9.0
    else:
        base = 9.0 + 0.5 * weight
    return base + (4.0 if express else 0.0)


class _CompiledFee:
    """A callable with no Python code of its own to trace (like a builtin or a C extension)."""

    def __call__(self, weight: float, express: bool) -> float:
        return parcel_fee(weight, express)


RULES_BUDGETS = Budgets(distill_samples=1000, fidelity_samples=200, max_leaves=8, distill_s=20.0)
PARCEL = {"weight": (0.1, 30.0), "express": [False, True]}


def _must_not_be_called(**kwargs):
    raise AssertionError("the surrogate was distilled although the original's paths are exact")


def test_rules_of_a_traceable_function_are_its_exact_paths():
    schema = probes.Schema.from_function(parcel_fee, **PARCEL)
    found = distill_rules(parcel_fee, _must_not_be_called, schema=schema, traces=None,
                          tolerance=probes.Tolerance(abs=1e-9), budgets=RULES_BUDGETS, seed=0)
    assert found.source == TRACED_PATHS and found.exact.used and found.exact.exact
    row = rules_row(found)
    assert row["rules_from"] == TRACED_PATHS and row["rules_exact"] is True
    assert row["rules_agreement_domain"] == 1.0 and row["rules_leaves"] == found.rules.complexity.leaves
    assert rules_summary(row).startswith(f"exact paths, {row['rules_leaves']} leaves, agreement ")
    assert rules_summary(row).endswith(" / 100.0%")
    assert "weight <= 10.0" in found.rules.source  # the code's own cut, not a tree's guess
    for weight in (0.5, 2.0, 2.0000001, 10.0, 10.5, 29.9):
        for express in (False, True):
            assert found.rules.function(weight=weight, express=express) == parcel_fee(weight, express)


def test_rules_fall_back_to_the_surrogate_tree_where_the_code_cannot_be_traced():
    original = _CompiledFee()
    schema = probes.Schema.from_function(original, **PARCEL)
    calls = []

    def surrogate(weight: float, express: bool) -> float:
        calls.append(1)
        return parcel_fee(weight, express)

    found = distill_rules(original, surrogate, schema=schema, traces=None, tolerance=probes.Tolerance(abs=1e-9),
                          budgets=RULES_BUDGETS, seed=0)
    assert found.source == SURROGATE_TREE and calls  # the surrogate was the teacher
    assert "no Python code to trace" in found.note
    assert found.rules.complexity.leaves <= RULES_BUDGETS.max_leaves
    row = rules_row(found)
    assert row["rules_from"] == SURROGATE_TREE and row["rules_exact"] is False
    assert row["rules_agreement_domain"] is not None  # judged against the original, as before
    assert rules_summary(row).startswith(f"tree of the surrogate, {row['rules_leaves']} leaves, agreement ")
    with pytest.raises(_Skip, match="no surrogate"):  # no paths and no surrogate: skipped, not faked
        distill_rules(original, None, schema=schema, traces=None, tolerance=probes.Tolerance(abs=1e-9),
                      budgets=RULES_BUDGETS, seed=0)


def test_rules_cell_says_where_the_rules_came_from():
    exact = {"study": "s", "rules_from": TRACED_PATHS, "rules_exact": True, "rules_leaves": 71,
             "rules_agreement_operational": 1.0, "rules_agreement_domain": 1.0, "rules_agreement": 1.0}
    assert rules_summary(exact) == "exact paths, 71 leaves, agreement 100.0% / 100.0%"
    near = {**exact, "rules_exact": False, "rules_agreement_domain": 0.9996}  # rounded down: 100.0% means none wrong
    assert rules_summary(near) == "traced paths (approximate), 71 leaves, agreement 100.0% / 99.9%"
    tree = {**exact, "rules_from": SURROGATE_TREE, "rules_exact": False, "rules_leaves": 32,
            "rules_agreement_operational": 0.002, "rules_agreement_domain": 0.184}
    assert rules_summary(tree) == "tree of the surrogate, 32 leaves, agreement 0.2% / 18.4%"
    assert f"| {rules_summary(exact)} |" in markdown_table(jsonable([exact]))
    assert rules_summary({"study": "t"}) == "-"


# -- approximate traced paths: the surrogate's tree is distilled too, the better agreement kept -------------
def scrambled_fee(weight: float, express: bool) -> float:
    """parcel_fee with a region no expression of the arguments reproduces (the paths there are approximate)."""
    if weight <= 10.0:
        base = 5.0
    else:
        base = float(int(weight * 1000) * 7919 % 13)
    return base + (4.0 if express else 0.0)


def _mean(*values):
    measured = [v for v in values if v is not None]
    return sum(measured) / len(measured)


def test_approximate_paths_are_compared_with_the_surrogate_tree_and_both_recorded():
    schema = probes.Schema.from_function(scrambled_fee, **PARCEL)
    calls = []

    def surrogate(weight: float, express: bool) -> float:
        calls.append(1)
        return scrambled_fee(weight, express)

    found = distill_rules(scrambled_fee, surrogate, schema=schema, traces=None, tolerance=probes.Tolerance(abs=1e-9),
                          budgets=RULES_BUDGETS, seed=0)
    assert found.exact.used and not found.exact.exact  # the scrambled region's paths are approximate
    assert calls and found.alternative is not None  # so the surrogate's tree was distilled too
    row = rules_row(found)
    assert row["rules_exact"] is False
    alternative = row["rules_alternative"]
    assert {found.source, alternative["from"]} == {TRACED_PATHS, SURROGATE_TREE}
    assert row["rules_from"] == found.source
    kept = _mean(row["rules_agreement_operational"], row["rules_agreement_domain"])
    other = _mean(alternative["agreement_production"], alternative["agreement_domain"])
    assert kept >= other  # the better agreement kept (a tie keeps the paths)
    assert alternative["leaves"] == found.alternative.rules.complexity.leaves


def _stub_distill(paths_agreement, tree_agreement, calls):
    """explain.distill as far as distill_rules reads it: approximate traced paths (cut short) with
    `paths_agreement` (production, domain) and a 16-leaf tree of the surrogate with `tree_agreement`."""
    import types

    def fidelity(against, agreements):
        return {f"{against}:{dist}": types.SimpleNamespace(agreement=a, n=300)
                for dist, a in zip(("operational", "domain"), agreements)}

    def distill(fn, *, schema, exact=True, max_leaves=16, original=None, **options):
        calls.append({"exact": exact, "max_leaves": max_leaves, "original": original})
        if exact:
            report = types.SimpleNamespace(used=True, exact=False, note="budget: path search cut short")
            return types.SimpleNamespace(fidelity=fidelity("teacher", paths_agreement), exact=report,
                                         complexity=types.SimpleNamespace(leaves=400), variant="exact paths",
                                         cut_short=True)
        return types.SimpleNamespace(fidelity=fidelity("original", tree_agreement), exact=None,
                                     complexity=types.SimpleNamespace(leaves=16), variant="tree", cut_short=False)

    return distill


def test_the_surrogate_tree_is_kept_where_it_agrees_better_than_approximate_paths():
    schema = probes.Schema.from_function(parcel_fee, **PARCEL)
    tolerance = probes.Tolerance(abs=1e-9)
    calls = []
    found = distill_rules(parcel_fee, "the surrogate", schema=schema, traces=None, tolerance=tolerance,
                          budgets=RULES_BUDGETS, seed=0, distill=_stub_distill((0.051, 0.02), (0.586, 0.41), calls))
    assert [c["exact"] for c in calls] == [True, False]
    assert calls[1]["max_leaves"] == RULES_BUDGETS.max_leaves and calls[1]["original"] is parcel_fee  # as the fallback
    assert found.source == SURROGATE_TREE and found.alternative.source == TRACED_PATHS
    assert "kept the surrogate's tree" in found.note
    row = rules_row(found)
    assert row["rules_from"] == SURROGATE_TREE and row["rules_exact"] is False and row["rules_leaves"] == 16
    assert (row["rules_agreement_operational"], row["rules_agreement_domain"]) == (0.586, 0.41)
    assert row["rules_alternative"] == {"from": TRACED_PATHS, "agreement_production": 0.051,
                                        "agreement_domain": 0.02, "leaves": 400}
    assert rules_summary(row) == ("tree of the surrogate (traced paths approximate: 5.1% / 2.0%), 16 leaves, "
                                  "agreement 58.6% / 41.0%")

    # the other way round the paths stay, the tree recorded as the alternative
    calls.clear()
    found = distill_rules(parcel_fee, "the surrogate", schema=schema, traces=None, tolerance=tolerance,
                          budgets=RULES_BUDGETS, seed=0, distill=_stub_distill((0.28, 0.2), (0.091, 0.08), calls))
    assert found.source == TRACED_PATHS and found.alternative.source == SURROGATE_TREE
    row = rules_row(found)
    assert row["rules_from"] == TRACED_PATHS and row["rules_leaves"] == 400
    assert row["rules_alternative"] == {"from": SURROGATE_TREE, "agreement_production": 0.091,
                                        "agreement_domain": 0.08, "leaves": 16}
    assert rules_summary(row) == ("traced paths (approximate; tree of the surrogate: 9.1% / 8.0%), 400 leaves, "
                                  "agreement 28.0% / 20.0%")

    # without a surrogate the approximate paths are the rules, nothing to compare
    calls.clear()
    found = distill_rules(parcel_fee, None, schema=schema, traces=None, tolerance=tolerance,
                          budgets=RULES_BUDGETS, seed=0, distill=_stub_distill((0.28, 0.2), (0.9, 0.9), calls))
    assert found.source == TRACED_PATHS and found.alternative is None and len(calls) == 1
    assert rules_row(found)["rules_alternative"] is None
