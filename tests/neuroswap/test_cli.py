"""The command line: exit codes (0 ok, 1 verification failed, 2 usage, 3 inconclusive) and messages
that name the fix."""

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
                                   "--max-examples", "50", "--min-examples", "50", "--json", str(tmp_path / "v.json")])
    status = json.loads((tmp_path / "v.json").read_text())["status"]
    assert verified.exit_code == {"passed": 0, "failed": 1, "inconclusive": 3}[status]

    distilled = runner.invoke(cli, ["distill", name, "--surrogate", str(tmp_path / "sur"),
                                    "--max-leaves", "8", "--out", str(tmp_path / "rules.py")])
    assert distilled.exit_code == 0, distilled.output
    assert "def risk_class(" in (tmp_path / "rules.py").read_text()
    reported = runner.invoke(cli, ["report", name, str(tmp_path / "sur"), "--store", store_uri,
                                   "--out", str(tmp_path / "rep")])
    assert reported.exit_code == 0, reported.output
    assert (tmp_path / "rep" / "report.html").exists()


# -- verify's exit codes, without training a surrogate ------------------------------------------------
def _price(x: float, kind: str) -> float:
    return (1.0 if x <= 5.0 else 2.0) + (0.5 * x if kind == "a" else 0.0)


class _StandIn:
    """A candidate with a schema, as a loaded surrogate has."""

    def __init__(self, offset: float = 0.0) -> None:
        from probes import Schema

        self.schema = Schema.from_function(_price, output="real", x=(0.0, 10.0), kind=["a", "b"])
        self.offset = offset

    def __call__(self, x: float, kind: str) -> float:
        return _price(x, kind) + self.offset


@pytest.fixture()
def stand_in(monkeypatch):
    import neuroswap._cli as module

    monkeypatch.delenv("NEUROSWAP_STORE", raising=False)
    chosen = {"candidate": _StandIn()}
    monkeypatch.setattr(module, "_load_function", lambda name: _price)
    monkeypatch.setattr(module, "_load_surrogate", lambda path, fn=None: chosen["candidate"])
    return chosen


def test_verify_exits_3_when_inconclusive(runner, stand_in, tmp_path):
    result = runner.invoke(cli, ["verify", "m:price", "sur", "--max-examples", "20", "--json", str(tmp_path / "v.json")])
    assert result.exit_code == 3, result.output
    assert "INCONCLUSIVE" in result.output and "min_examples=100" in result.output
    data = json.loads((tmp_path / "v.json").read_text())
    assert data["status"] == "inconclusive" and data["passed"] is False and data["reason"]
    tiny = runner.invoke(cli, ["verify", "m:price", "sur", "--budget", "0.000001"])
    assert tiny.exit_code == 3 and "budget_s=1e-06" in tiny.output
    enough = runner.invoke(cli, ["verify", "m:price", "sur", "--max-examples", "20", "--min-examples", "20"])
    assert enough.exit_code == 0, enough.output
    stand_in["candidate"] = _StandIn(offset=1000.0)
    wrong = runner.invoke(cli, ["verify", "m:price", "sur", "--max-examples", "20"])
    assert wrong.exit_code == 1, wrong.output  # a disagreement fails whatever the evidence


def test_verify_min_examples_above_max_examples_is_a_usage_error(runner, stand_in):
    result = runner.invoke(cli, ["verify", "m:price", "sur", "--max-examples", "50", "--min-examples", "80"])
    assert result.exit_code == 2
    assert "min_examples=80" in result.output and "max_examples=50" in result.output


def test_verify_help_documents_the_exit_codes(runner):
    result = runner.invoke(cli, ["verify", "--help"])
    assert result.exit_code == 0
    assert "3 inconclusive" in result.output and "--min-examples" in result.output and "--budget" in result.output
