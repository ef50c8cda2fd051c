"""write_pytest(): the written file runs under pytest, fails on a wrong candidate, passes on a right one."""

import enum
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from probes import InvalidArgument, Schema, Tolerance, mine_edge_cases, verify, write_pytest
from probes._pytest_writer import _literal

LEGACY = '''
def fee(x: float, kind: str) -> float:
    if x < 0:
        raise ValueError("negative")
    base = 1.0 if kind == "a" else 2.0
    return base + (0.5 * x if x <= 5 else 3.0 + x)
'''
GOOD = '''
from legacy_mod import fee as _fee

def fee(x: float, kind: str) -> float:
    return _fee(x, kind) + 1e-4
'''
BAD = '''
from legacy_mod import fee as _fee

def fee(x: float, kind: str) -> float:
    if 5.0 < x <= 5.5:
        return 1.0 + 0.5 * x
    return _fee(x, kind)
'''


@pytest.fixture
def modules(tmp_path, monkeypatch):
    (tmp_path / "legacy_mod.py").write_text(LEGACY)
    (tmp_path / "good_mod.py").write_text(GOOD)
    (tmp_path / "bad_mod.py").write_text(BAD)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("legacy_mod", "good_mod", "bad_mod"):
        sys.modules.pop(name, None)
    import bad_mod
    import good_mod
    import legacy_mod

    return tmp_path, legacy_mod, good_mod, bad_mod


def run_pytest(path, cwd):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(path), "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=cwd, capture_output=True, text=True, timeout=120,
        env={**__import__("os").environ, "PYTHONPATH": f"{cwd}:{__import__('os').environ.get('PYTHONPATH', '')}"},
    )
    return result.returncode, result.stdout + result.stderr


def test_written_file_fails_on_the_bad_candidate_and_passes_on_the_good_one(modules):
    tmp_path, legacy, good, bad = modules
    schema = Schema.from_function(legacy.fee, x=(-1.0, 10.0), kind=["a", "b"])
    tolerance = Tolerance(abs=1e-3)
    report = verify(legacy.fee, bad.fee, schema=schema, tolerance=tolerance, max_examples=200, database=None)
    assert not report.passed and report.counterexamples

    bad_file = write_pytest(legacy.fee, report, tmp_path / "test_bad_equivalence.py", candidate_import="bad_mod:fee")
    text = bad_file.read_text()
    assert "resolve('legacy_mod:fee')" in text and "resolve('bad_mod:fee')" in text
    assert "Tolerance(abs=0.001, rel=0.0)" in text and "def test_equivalence_property" in text
    code, out = run_pytest(bad_file, tmp_path)
    assert code == 1, out
    assert f"{len(report.counterexamples)} failed" in out or "failed" in out
    assert "candidate disagrees" in out

    good_file = write_pytest("legacy_mod:fee", report, tmp_path / "test_good_equivalence.py",
                             candidate_import="good_mod:fee", tolerance=tolerance)
    code, out = run_pytest(good_file, tmp_path)
    assert code == 0, out
    assert f"{len(report.counterexamples) + 1} passed" in out


def test_edge_cases_and_plain_dicts_are_accepted(modules):
    tmp_path, legacy, good, bad = modules
    schema = Schema.from_function(legacy.fee, x=(0.0, 10.0), kind=["a", "b"])
    cases = mine_edge_cases(legacy.fee, bad.fee, schema=schema, budget_s=0.5, layers=("boundary", "branch"))
    assert cases
    path = write_pytest(legacy.fee, cases, tmp_path / "test_mined.py", candidate_import="bad_mod:fee")
    code, out = run_pytest(path, tmp_path)
    assert code == 1 and "failed" in out
    plain = write_pytest(legacy.fee, [{"x": 1.0, "kind": "a"}], tmp_path / "test_plain.py",
                         candidate_import="good_mod:fee", tolerance=Tolerance(abs=1e-3))
    assert "no property test" in plain.read_text()
    code, out = run_pytest(plain, tmp_path)
    assert code == 0 and "1 passed" in out, out


def test_unimportable_functions_are_refused(modules):
    tmp_path, legacy, good, bad = modules

    def local(x, kind):
        return 0.0

    with pytest.raises(InvalidArgument, match="original_import"):
        write_pytest(local, [], tmp_path / "t.py", candidate_import="good_mod:fee")
    with pytest.raises(InvalidArgument, match="candidate_import"):
        write_pytest(legacy.fee, [], tmp_path / "t.py")
    with pytest.raises(InvalidArgument, match="candidate_import"):
        write_pytest(legacy.fee, [], tmp_path / "t.py", candidate_import="nowhere_mod:fee")


class Colour(enum.Enum):
    RED = 1


@pytest.mark.parametrize("value", [
    1.5, -0.0, 1e-300, float("inf"), -math.inf, 3, True, None, "a'b\"c", (1.0,), (1, 2.5), [1, [2]],
    {"k": (1.0, "x")}, np.array([1.5, 2.0]), Colour.RED,
])
def test_literals_evaluate_back_to_the_value(value):
    from probes import resolve

    back = eval(_literal(value), {"np": np, "resolve": resolve})
    if isinstance(value, np.ndarray):
        assert np.array_equal(back, value) and back.dtype == value.dtype
    else:
        assert back == value and type(back) is type(value)
    assert math.isnan(eval(_literal(float("nan"))))


def test_a_class_is_not_a_candidate_to_import(modules):
    tmp_path, legacy, good, bad = modules
    with pytest.raises(InvalidArgument, match="not a class"):
        write_pytest(legacy.fee, [], tmp_path / "t.py", candidate_import="probes:Tolerance")
