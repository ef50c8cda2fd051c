"""The command line: exit codes (0 ok, 1 verification failed, 2 usage, 3 inconclusive) and messages
that name the fix."""

import json
from pathlib import Path

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


def test_fit_on_the_work_clock_gives_one_surrogate_at_any_load(runner, tmp_path, monkeypatch):
    """`fit --clock work` (the README walkthrough's fit) saves the same surrogate, exact program
    included, under a competing load."""
    import random

    from probes import TraceStore, record
    from probes import _clock
    from replace import Surrogate
    from replace._distributed import parameters_digest

    (tmp_path / "cli_clock_rules.py").write_text(
        "def price(x: float, kind: str) -> float:\n"
        "    return (1.0 if x <= 5.0 else 2.0) + (0.5 * x if kind == 'a' else 0.0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    import cli_clock_rules

    store_uri = f"sqlite:///{tmp_path / 'traces.db'}"
    recorded = record(store=TraceStore.open(store_uri))(cli_clock_rules.price)
    rng = random.Random(0)
    for _ in range(300):
        recorded(x=rng.uniform(0, 10), kind=rng.choice("ab"))
    record.flush()

    def fitted(out: str) -> Surrogate:
        result = runner.invoke(cli, ["fit", "cli_clock_rules:price", "--store", store_uri, "--out", out,
                                     "--budget", "2", "--clock", "work"])
        assert result.exit_code == 0, result.output
        assert "on the work clock" in result.output
        return Surrogate.load(out)

    quiet = fitted("quiet")
    with _clock.competing_load():
        busy = fitted("busy")
    assert quiet.manifest["hyperparameters"]["budget_clock"] == "work"
    assert quiet.program_ is not None  # the exact program is compared too
    assert parameters_digest(quiet) == parameters_digest(busy)
    assert quiet.program_.to_dict() == busy.program_.to_dict()
    assert quiet.metrics.agreement == busy.metrics.agreement
    assert runner.invoke(cli, ["fit", "cli_clock_rules:price", "--out", "x", "--clock", "cpu"]).exit_code == 2


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


# -- options every command shares ----------------------------------------------------------------
COMMANDS = [["demo"], ["case-study"], ["traces", "list"], ["traces", "show"], ["traces", "export"], ["fit"],
            ["verify"], ["guard"], ["distill"], ["report"]]
READS_TRACES = [c for c in COMMANDS]  # every command reads traces (the case studies record their own)
FITS_OR_JUDGES = [["fit"], ["verify"], ["guard"], ["distill"], ["report"]]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_an_example_and_json(runner, command):
    result = runner.invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output and "neuroswap " + " ".join(command) in result.output
    assert "--json" in result.output


@pytest.mark.parametrize("command", READS_TRACES, ids=" ".join)
def test_every_command_that_reads_traces_takes_store(runner, command):
    text = runner.invoke(cli, [*command, "--help"]).output
    assert "--store" in text


@pytest.mark.parametrize("command", FITS_OR_JUDGES, ids=" ".join)
def test_every_command_that_fits_or_judges_takes_the_tolerance(runner, command):
    text = runner.invoke(cli, [*command, "--help"]).output
    assert "--abs" in text and "--rel" in text


def test_the_default_store_is_env_then_file_and_a_missing_one_names_the_fix(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEUROSWAP_STORE", raising=False)
    missing = runner.invoke(cli, ["traces", "list"])
    assert missing.exit_code == 2
    assert "neuroswap_traces.db" in missing.output and "--store" in missing.output
    assert not (tmp_path / "neuroswap_traces.db").exists()  # reading never creates a store
    monkeypatch.setenv("NEUROSWAP_STORE", str(tmp_path / "elsewhere.db"))
    named = runner.invoke(cli, ["traces", "list"])
    assert named.exit_code == 2 and "$NEUROSWAP_STORE" in named.output and "elsewhere.db" in named.output

    from probes import TraceStore, record

    store = TraceStore.open(str(tmp_path / "elsewhere.db"))
    recorded = record(store=store)(_price)
    for x in range(5):
        recorded(x=float(x), kind="a")
    record.flush()
    listed = runner.invoke(cli, ["traces", "list", "--json", "-"])
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == [{"function": f"{__name__}:_price",
                                          "source_hash": json.loads(listed.stdout)[0]["source_hash"], "traces": 5}]
    assert "1 recorded function(s), 5 traces" in listed.stderr  # the words move to stderr with --json -
    shown = runner.invoke(cli, ["traces", "show", f"{__name__}:_price", "--limit", "2", "--json",
                                str(tmp_path / "t.json")])
    assert shown.exit_code == 0, shown.output
    assert len(json.loads((tmp_path / "t.json").read_text())) == 2
    exported = runner.invoke(cli, ["traces", "export", f"{__name__}:_price", "--out", str(tmp_path / "t.jsonl"),
                                   "--json", "-"])
    assert exported.exit_code == 0, exported.output
    assert json.loads(exported.stdout)["traces"] == 5 and len((tmp_path / "t.jsonl").read_text().splitlines()) == 5
    wrong = runner.invoke(cli, ["traces", "export", f"{__name__}:_price", "--out", str(tmp_path / "t.csv")])
    assert wrong.exit_code == 2 and "--out=" in wrong.output and ".jsonl" in wrong.output


def test_bad_json_path_names_the_argument(runner, stand_in, tmp_path):
    result = runner.invoke(cli, ["verify", "m:price", "sur", "--max-examples", "20", "--min-examples", "20",
                                 "--json", str(tmp_path / "no" / "such" / "dir" / "v.json")])
    assert result.exit_code == 2 and "--json=" in result.output and "'-'" in result.output


# -- verify: verdict first, vertical table, JSON, paths named by their branch outcomes -------------
def _first_line(text):
    return next(line for line in text.splitlines() if line.strip())


def test_verify_prints_a_verdict_then_a_vertical_table(runner, stand_in, tmp_path):
    result = runner.invoke(cli, ["verify", "m:price", "sur", "--max-examples", "30", "--min-examples", "20"])
    assert result.exit_code == 0, result.output
    assert _first_line(result.output).startswith("PASSED: agrees on 100.00% of 30 sampled inputs within")
    lines = result.output.splitlines()
    for key in ("policy", "domain view", "search view", "operational view"):
        row = next(line for line in lines if line.strip().startswith(key))
        assert len(row.split()) > 2  # one fact per line: key, then its value on the same line
    assert "| view |" not in result.output  # no wide Markdown table on the terminal


def test_verify_json_to_stdout_and_file_keeps_its_meaning(runner, stand_in, tmp_path):
    args = ["verify", "m:price", "sur", "--max-examples", "20", "--min-examples", "20"]
    to_stdout = runner.invoke(cli, [*args, "--json", "-"])
    assert to_stdout.exit_code == 0
    data = json.loads(to_stdout.stdout)  # stdout holds the JSON only
    assert data["status"] == "passed" and data["passed"] is True and "views" in data
    assert _first_line(to_stdout.stderr).startswith("PASSED")
    to_file = runner.invoke(cli, [*args, "--json", str(tmp_path / "v.json"), "--markdown", str(tmp_path / "v.md")])
    from probes import EquivalenceReport

    back = EquivalenceReport.from_json((tmp_path / "v.json").read_text())
    assert back.status == "passed" and to_file.exit_code == 0
    assert (tmp_path / "v.md").read_text().startswith("# Equivalence")


def test_verify_names_paths_by_their_branch_outcomes(runner, stand_in, tmp_path):
    class Wrong(_StandIn):
        def __call__(self, x, kind):
            return _price(x, kind) + (1.0 if kind == "a" and x > 5.0 else 0.0)

    stand_in["candidate"] = Wrong()
    result = runner.invoke(cli, ["verify", "m:price", "sur", "--max-examples", "40",
                                 "--markdown", str(tmp_path / "v.md"), "--json", str(tmp_path / "v.json")])
    assert result.exit_code == 1, result.output
    assert _first_line(result.output).startswith("FAILED")
    wrong_path = 'x <= 5.0: False, kind == "a": True'
    assert "0.0% of" in result.output and wrong_path in result.output  # the per-path lines
    assert f"path: {wrong_path}" in result.output  # each counterexample says which path
    markdown = (tmp_path / "v.md").read_text()
    row = next(line for line in markdown.splitlines() if line.startswith(f"| {wrong_path} |"))
    assert "0.00%" in row
    data = json.loads((tmp_path / "v.json").read_text())
    assert wrong_path in data["path_names"].values()
    assert any(stats.get("branches") == wrong_path for stats in data["paths"].values())


def _tiered(amount: float) -> float:
    fee = 0.0
    for limit in (10.0, 20.0, 30.0):
        if amount <= limit:
            break
        fee += 1.0
    return fee


def test_path_names_count_loop_iterations():
    from probes._paths import PathNames, call_with_path

    names = PathNames("_tiered")
    for amount in (15.0, 25.0):  # same set of branch outcomes (one path id), 1 and 2 misses of the loop
        call = call_with_path(_tiered, {"amount": amount})
        names.add(call.path, call.branches)
    assert names.name(call.path) == "amount <= limit: False ×1-2, True"
    far = call_with_path(_tiered, {"amount": 50.0})
    names.add(far.path, far.branches)
    assert names.name(far.path) == "amount <= limit: False ×3"
    near = call_with_path(_tiered, {"amount": 1.0})
    names.add(near.path, near.branches)
    assert names.name(near.path) == "amount <= limit: True"


def test_verify_markdown_of_an_old_report_keeps_the_id(stand_in):
    from probes import EquivalenceReport, verify

    report = verify(_price, _StandIn(offset=1.0), schema=_StandIn().schema, max_examples=20)
    old = EquivalenceReport.from_dict({**report.to_dict(), "path_names": {}})  # written before paths had names
    assert "(not recorded)" in old.to_markdown()
    assert "kind == \"a\"" in report.to_markdown()


# -- a user's own module: fit, guard, distill with --store, each with a verdict and --json -----------
PARKING = '''
def parking_fee(minutes: float, resident: bool) -> float:
    if minutes <= 30:
        return 0.0
    fee = 0.08 * (minutes - 30)
    if resident:
        fee = fee / 2
    if fee > 12.0:
        fee = 12.0
    return fee
'''


@pytest.fixture(scope="module")
def parking(tmp_path_factory):
    """A module of the user's, 600 recorded calls in a store of its own, and a 2-second fit of it."""
    import random
    import sys

    from probes import TraceStore, record

    folder = tmp_path_factory.mktemp("user")
    (folder / "cli_parking_rules.py").write_text(PARKING)
    sys.path.insert(0, str(folder))
    import cli_parking_rules

    uri = f"sqlite:///{folder / 'traces.db'}"
    recorded = record(store=TraceStore.open(uri))(cli_parking_rules.parking_fee)
    rng = random.Random(0)
    for _ in range(600):
        recorded(minutes=rng.uniform(0, 400), resident=rng.random() < 0.3)
    record.flush()
    fitted = CliRunner().invoke(cli, ["fit", "cli_parking_rules:parking_fee", "--store", uri, "--out",
                                      str(folder / "parking.surrogate"), "--budget", "2", "--json",
                                      str(folder / "fit.json")])
    yield {"folder": folder, "uri": uri, "fn": "cli_parking_rules:parking_fee", "fit": fitted,
           "surrogate": str(folder / "parking.surrogate")}
    sys.path.remove(str(folder))


def test_fit_prints_a_verdict_a_vertical_table_and_json(parking):
    fitted = parking["fit"]
    assert fitted.exit_code == 0, fitted.output
    first = _first_line(fitted.output)
    assert first.startswith("agrees with parking_fee on ") and "fresh inputs within" in first
    assert "(95% CI " in first and "guarded: " in first
    for key in ("saved to", "agreement", "max error", "tolerance", "branch paths", "guard at <= 1%", "wall time"):
        assert any(line.strip().startswith(key) for line in fitted.output.splitlines()), key
    assert "validati" not in fitted.output.replace("validation agreement", "")  # no folded headers
    assert "next: neuroswap verify cli_parking_rules:parking_fee" in fitted.output
    data = json.loads((parking["folder"] / "fit.json").read_text())
    assert data["function"] == parking["fn"] and 0.0 <= data["metrics"]["agreement"] <= 1.0
    assert len(data["agreement_ci"]) == 2


def test_fit_needs_a_store_that_exists(runner, parking, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEUROSWAP_STORE", raising=False)
    result = runner.invoke(cli, ["fit", parking["fn"], "--out", str(tmp_path / "s"), "--budget", "2"])
    assert result.exit_code == 2 and "no such trace store file" in result.output and "--store" in result.output
    bad = runner.invoke(cli, ["fit", parking["fn"], "--store", parking["uri"], "--out", "s", "--abs", "-1"])
    assert bad.exit_code == 2 and "--abs=-1" in bad.output


def test_guard_shows_coverage_per_rate_and_the_deploying_line(runner, parking, tmp_path):
    result = runner.invoke(cli, ["guard", parking["fn"], parking["surrogate"], "--max-error-rate", "0.01",
                                 "--max-error-rate", "0.05", "--json", str(tmp_path / "g.json")])
    assert result.exit_code == 0, result.output
    assert _first_line(result.output).startswith("guarded: serves ")
    assert any(line.strip().startswith("at <= 1%") for line in result.output.splitlines())
    assert any(line.strip().startswith("at <= 5%") for line in result.output.splitlines())
    assert "from cli_parking_rules import parking_fee" in result.output
    assert f"parking_fee = swap(parking_fee, Surrogate.load({parking['surrogate']!r}), \"guarded\", " \
           "max_error_rate=" in result.output
    data = json.loads((tmp_path / "g.json").read_text())
    assert [c["max_error_rate"] for c in data["certificates"]] == [0.01, 0.05]
    assert all(c["upper_bound"] <= c["max_error_rate"] for c in data["certificates"] if c["served"])
    assert "swap(" in data["deploy"] and data["recalibrated"] is False
    # the stored calibration and the certificate Python would compute agree
    from replace import Surrogate

    stored = Surrogate.load(parking["surrogate"]).calibration.certify(0.01, 0.95)
    assert data["certificates"][0]["served"] == stored.served and data["certificates"][0]["n"] == stored.n


def test_guard_recalibrates_on_recorded_traffic(runner, parking):
    result = runner.invoke(cli, ["guard", parking["fn"], parking["surrogate"], "--recalibrate", "--store",
                                 parking["uri"], "--limit", "300", "--json", "-"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["recalibrated"] is True and data["rows_labelled"] == 300 and data["source"] == "user"
    assert all(c["n"] == 300 for c in data["certificates"])
    assert "calibration_inputs=rows" in data["deploy"] and parking["uri"] in data["deploy"]


@pytest.mark.parametrize("args, says", [
    (["--max-error-rate", "2"], "--max-error-rate=2"),
    (["--confidence", "1"], "--confidence=1"),
    (["--abs", "0.1"], "--recalibrate"),
    (["--limit", "5"], "--recalibrate"),
])
def test_guard_bad_arguments_name_the_fix(runner, parking, args, says):
    result = runner.invoke(cli, ["guard", parking["fn"], parking["surrogate"], *args])
    assert result.exit_code == 2 and says in result.output


def test_distill_takes_store(runner, parking, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEUROSWAP_STORE", raising=False)
    without = runner.invoke(cli, ["distill", parking["fn"]])
    assert without.exit_code == 2 and "no such trace store file" in without.output
    result = runner.invoke(cli, ["distill", parking["fn"], "--store", parking["uri"], "--budget", "5",
                                 "--out", str(tmp_path / "rules.py"), "--json", "-"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert "def parking_fee(" in data["source"] and data["out"] == str(tmp_path / "rules.py")
    assert _first_line(result.stderr).startswith("rules agree with the function parking_fee on ")
    assert "def parking_fee(" in (tmp_path / "rules.py").read_text()
    assert "float rounding" in result.stderr


# -- case-study: a verdict and a vertical table per study; --json keeps its meaning (rows + .md) ----
@pytest.fixture()
def fake_study(monkeypatch):
    import types

    import neuroswap._cli as module

    row = {"study": "fake", "agreement": 0.9812, "agreement_ci": [0.97, 0.99], "max_error": 0.5,
           "passed": False, "verify_status": "inconclusive", "rules_agreement": 1.0, "rules_leaves": 4,
           "rules_from": "traced paths", "rules_exact": True, "rules_agreement_operational": 1.0,
           "rules_agreement_domain": 1.0,
           "batch_speedup": 12.0, "single_call_speedup": 0.5, "guarded_coverage": 0.41,
           "guarded_served_error": 0.004, "report": "r/report.html"}
    study = types.SimpleNamespace(DESCRIPTION="a stand-in study", run=lambda **kw: dict(row))
    monkeypatch.setattr(module, "_import_case_studies", lambda: types.SimpleNamespace(STUDIES={"fake": study}))
    return row


def test_case_study_prints_a_verdict_and_a_vertical_table(runner, fake_study, tmp_path):
    result = runner.invoke(cli, ["case-study", "fake", "--out", str(tmp_path), "--json", str(tmp_path / "rows.json")])
    assert result.exit_code == 0, result.output
    assert ("fake: surrogate agrees on 98.12% of fresh inputs (95% CI 97.0% to 99.0%); verify inconclusive; "
            "rules: exact paths, 4 leaves, agreement 100.0% / 100.0% (production / domain)") in result.output
    lines = result.output.splitlines()
    assert any(line.strip().startswith("coverage at 1%") and "41" in line for line in lines)
    assert any(line.strip().startswith("verify") and "inconclusive" in line for line in lines)
    assert any(line.strip().startswith("rules: source") and "exact paths, 4 leaves" in line for line in lines)
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert rows[0]["study"] == "fake" and rows[0]["verify_status"] == "inconclusive"
    assert (tmp_path / "rows.md").read_text().startswith("| study |")  # the README's table, as before
    to_stdout = runner.invoke(cli, ["case-study", "fake", "--out", str(tmp_path), "--json", "-"])
    assert json.loads(to_stdout.stdout)[0]["agreement"] == 0.9812


# -- report: verdict from the report's own verification, JSON of where it is -------------------------
@pytest.mark.slow
def test_report_prints_a_verdict_and_json(runner, parking, tmp_path):
    result = runner.invoke(cli, ["report", parking["fn"], parking["surrogate"], "--store", parking["uri"],
                                 "--out", str(tmp_path / "rep"), "--json", "-"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["report"].endswith("report.html") and Path(data["report"]).exists()
    assert _first_line(result.stderr).startswith("audit report of ")
    assert "verify " in _first_line(result.stderr) and data["summary"]
    markdown = (tmp_path / "rep" / "report.md").read_text()
    assert "## Agreement per branch path" in markdown and "minutes <= 30: True" in markdown


def test_a_recorded_function_is_called_without_recording(tmp_path, monkeypatch):
    """`@record(store=...)` above the def: the commands call the function under the wrapper, so
    fit's and verify's oracle calls never land in the production traces."""
    from probes import TraceStore, record

    import neuroswap._cli as module

    uri = f"sqlite:///{tmp_path / 'prod.db'}"
    (tmp_path / "cli_recorded_rules.py").write_text(
        "from probes import record\n\n"
        f"@record(store={uri!r})\n"
        "def fee(x: float) -> float:\n"
        "    return 2 * x if x > 1 else 0.0\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import cli_recorded_rules

    cli_recorded_rules.fee(x=3.0)  # production traffic is recorded
    record.flush()
    fn = module._load_function("cli_recorded_rules:fee")
    assert not hasattr(fn, "__neuroswap_record__") and fn(x=2.0) == 4.0 and fn(x=5.0) == 10.0
    record.flush()
    assert len(TraceStore.open(uri).load("cli_recorded_rules:fee")) == 1


def test_guard_without_calibration_says_so_and_how_to_get_one(runner, stand_in):
    result = runner.invoke(cli, ["guard", "m:price", "sur", "--json", "-"])
    assert result.exit_code == 0, result.output
    assert _first_line(result.stderr).startswith("guarded: the surrogate has no calibration rows")
    assert "--recalibrate" in _first_line(result.stderr)
    assert json.loads(result.stdout)["certificates"] == []


def test_distill_no_exact_gives_a_tree_and_tolerance_options(runner, parking, tmp_path):
    result = runner.invoke(cli, ["distill", parking["fn"], "--store", parking["uri"], "--no-exact", "--max-leaves",
                                 "4", "--budget", "3", "--abs", "0.5", "--json", str(tmp_path / "d.json")])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "d.json").read_text())
    assert data["complexity"]["leaves"] <= 4 and data["tolerance"] == {"abs": 0.5, "rel": 0.0}
    assert any(line.strip().startswith("tolerance") and "abs=0.5" in line for line in result.output.splitlines())
