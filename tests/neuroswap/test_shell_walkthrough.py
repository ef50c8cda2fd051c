"""The README's "Your own function, from the shell" runs exactly as written, in a fresh folder:
the module and the recording script from its code blocks, then each command line of its shell
block, with the budgets the README gives and no $NEUROSWAP_STORE."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _block(name):
    found = re.search(rf"<!-- shell: {re.escape(name)} -->\n```[a-z]*\n(.*?)```", README, re.S)
    assert found, f"README.md has no block marked <!-- shell: {name} -->"
    return found.group(1)


def test_the_readme_walkthrough_is_complete():
    commands = _block("commands").strip().splitlines()
    assert commands[0] == "python record_calls.py"
    used = [line.split()[1] for line in commands[1:]]
    assert used == ["traces", "fit", "verify", "guard", "distill", "report"]
    budgets = [line for line in commands if line.split()[1] in ("fit", "verify", "distill")]
    assert all("--budget" in line for line in budgets)  # small but real, stated where the user reads them
    assert "record(store=" in _block("record_calls.py") and "def parking_fee(" in _block("myrules.py")


@pytest.mark.slow
def test_shell_walkthrough_runs_as_written(tmp_path):
    (tmp_path / "myrules.py").write_text(_block("myrules.py"))
    (tmp_path / "record_calls.py").write_text(_block("record_calls.py"))
    env = dict(os.environ)
    env.pop("NEUROSWAP_STORE", None)
    # the checkout itself on the path, as `pip install -e .` would put it (a stale editable install
    # elsewhere must not shadow it); nothing else about the commands changes
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    if shutil.which("neuroswap", path=env.get("PATH")) is None:
        pytest.fail("the neuroswap command is not on the PATH: pip install -e . first (README, first block)")
    outputs = {}
    for line in _block("commands").strip().splitlines():
        done = subprocess.run(line, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        command = line.split()[1]
        allowed = (0, 1, 3) if command == "verify" else (0,)  # verify's exit code is its verdict
        assert done.returncode in allowed, f"{line}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        outputs[command] = done.stdout
    assert "myrules:parking_fee" in outputs["traces"] and "2,000" in outputs["traces"]
    assert outputs["fit"].lstrip().startswith("agrees with parking_fee on ")
    assert (tmp_path / "parking.surrogate").exists()
    assert "the code's partition answers every region exactly" in outputs["fit"]  # the exact program
    assert re.match(r"\s*(PASSED|FAILED|INCONCLUSIVE): agrees on ", outputs["verify"])
    assert "minutes <= 30: True" in outputs["verify"]  # paths named by their conditions
    assert outputs["guard"].lstrip().startswith("guarded: ")
    assert "swap(parking_fee, Surrogate.load('parking.surrogate'), \"guarded\", max_error_rate=" in outputs["guard"]
    assert outputs["distill"].lstrip().startswith("rules agree with the function parking_fee on ")
    assert "def parking_fee(" in (tmp_path / "parking_rules.py").read_text()
    assert (tmp_path / "parking_report" / "report.html").exists()
    assert outputs["report"].lstrip().startswith("audit report of parking.surrogate")
    # the same store read back for a script: --json - is JSON alone on standard output
    listed = subprocess.run("neuroswap traces list --store sqlite:///traces.db --json -", shell=True, cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120)
    assert json.loads(listed.stdout)[0]["function"] == "myrules:parking_fee"
