"""The command line: exit codes (0 ok, 1 verification failed, 2 usage) and messages that name the fix."""

import json

import pytest
from click.testing import CliRunner

from neuroswap._cli import cli


@pytest.fixture()
def runner():
    return CliRunner()


def test_help_lists_every_command(runner):
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "case-study", "traces", "fit", "verify", "distill", "report"):
        assert command in result.output


def test_case_study_needs_a_name_or_all(runner):
    result = runner.invoke(cli, ["case-study"])
    assert result.exit_code == 2
    assert "give exactly one of NAME or --all" in result.output
    assert "shipping_fee" in result.output


def test_unknown_case_study_is_a_usage_error(runner):
    result = runner.invoke(cli, ["case-study", "nope"])
    assert result.exit_code == 2 and "no such case study" in result.output


def test_unknown_option_is_a_usage_error(runner):
    assert runner.invoke(cli, ["fit", "--frobnicate"]).exit_code == 2


def test_missing_surrogate_file_names_the_fix(runner, tmp_path):
    result = runner.invoke(cli, ["verify", "case_studies.shipping_fee:shipping_fee", str(tmp_path / "none")])
    assert result.exit_code == 2 and "neuroswap fit" in result.output


def test_bad_function_name_names_the_form(runner):
    result = runner.invoke(cli, ["traces", "show", "no_colon_here"])
    assert result.exit_code == 2


@pytest.mark.slow
def test_record_fit_verify_distill_report_round_trip(runner, tmp_path, monkeypatch):
    """The whole command-line flow on a store recorded here; verify's exit code follows its verdict."""
    from probes import TraceStore, record
    from case_studies import insurance_class

    monkeypatch.chdir(tmp_path)
    store_uri = f"sqlite:///{tmp_path / 'traces.db'}"
    store = TraceStore.open(store_uri)
    recorded = record(store=store)(insurance_class.risk_class)
    for row in insurance_class.generate_inputs(600, seed=0):
        try:
            recorded(**row)
        except (ValueError, KeyError):
            pass
    record.flush()
    name = "case_studies.insurance_class:risk_class"

    listed = runner.invoke(cli, ["traces", "list", "--store", store_uri])
    assert listed.exit_code == 0 and "risk_class" in listed.output
    exported = runner.invoke(cli, ["traces", "export", name, "--store", store_uri, "--out", str(tmp_path / "t.jsonl")])
    assert exported.exit_code == 0
    assert len((tmp_path / "t.jsonl").read_text().splitlines()) > 100

    fitted = runner.invoke(cli, ["fit", name, "--store", store_uri, "--out", str(tmp_path / "sur"), "--budget", "4"])
    assert fitted.exit_code == 0, fitted.output
    verified = runner.invoke(cli, ["verify", name, str(tmp_path / "sur"), "--store", store_uri,
                                   "--max-examples", "50", "--json", str(tmp_path / "v.json")])
    verdict = json.loads((tmp_path / "v.json").read_text())["passed"]
    assert verified.exit_code == (0 if verdict else 1)

    distilled = runner.invoke(cli, ["distill", name, "--surrogate", str(tmp_path / "sur"),
                                    "--max-leaves", "8", "--out", str(tmp_path / "rules.py")])
    assert distilled.exit_code == 0, distilled.output
    assert "def risk_class(" in (tmp_path / "rules.py").read_text()
    reported = runner.invoke(cli, ["report", name, str(tmp_path / "sur"), "--store", store_uri,
                                   "--out", str(tmp_path / "rep")])
    assert reported.exit_code == 0, reported.output
    assert (tmp_path / "rep" / "report.html").exists()
