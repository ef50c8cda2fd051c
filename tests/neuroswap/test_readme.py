"""The README's promises: two set-up commands first, and a tour that runs as written."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_first_block_holds_the_two_setup_commands():
    block = re.search(r"```[a-z]*\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert len(block) == 2
    main_job, tests = block
    for command in block:
        assert command.startswith("pip install torch==2.13.0 && "), "torch must be pinned and installed first"
        assert 'pip install -e ".[' in command
    assert main_job.endswith("neuroswap demo")
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command():
    script = (ROOT / ".ci" / "run").read_text()
    assert "README.md" in script and "sed -n '2p'" in script


def _run_block(code, tmp_path):
    """Run a README code block as a script in a clean folder holding only case_studies/."""
    shutil.copytree(ROOT / "case_studies", tmp_path / "case_studies",
                    ignore=shutil.ignore_patterns("__pycache__"))
    script = tmp_path / "block.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("NEUROSWAP_STORE", None)
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=1200)


@pytest.mark.slow
def test_short_example_runs_as_written(tmp_path):
    example = re.findall(r"```python\n(.*?)```", README, re.S)[0]
    done = _run_block(example, tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "readme_traces.db").exists()
    assert "def shipping_fee(" in done.stdout


@pytest.mark.slow
def test_tour_runs_as_written(tmp_path):
    tour = re.search(r"<!-- tour -->\n```python\n(.*?)```", README, re.S).group(1)
    done = _run_block(tour, tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    assert (tmp_path / "tour_traces.db").exists()
    assert (tmp_path / "tour_report" / "report.html").exists()
    assert "def shipping_fee(" in done.stdout
