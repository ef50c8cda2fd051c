"""Turn what verification and mining found into a pytest file a team keeps in its suite.

Counterexamples become parametrized regression cases (each written as a plain literal call),
and the equivalence itself becomes a derandomised hypothesis property over the schema, so a
later change to either function is judged by the same policy in CI.
"""

from __future__ import annotations

import enum
import math
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from ._compare import Comparison
from ._identity import function_name, resolve, unwrap
from ._mining import EdgeCase, EdgeCases
from ._report import Counterexample, EquivalenceReport
from ._schema import Schema
from ._tolerance import Tolerance
from ._validation import bad_argument


def _literal(value: Any) -> str:
    """Python source that evaluates to `value` (in a file importing numpy as np and resolve)."""
    if value is None or isinstance(value, (bool, str)):
        return repr(value)
    if isinstance(value, (bool, np.bool_)):
        return repr(bool(value))
    if isinstance(value, (int, np.integer)):
        return repr(int(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isnan(number):
            return "float('nan')"
        if math.isinf(number):
            return "float('inf')" if number > 0 else "float('-inf')"
        return repr(number)
    if isinstance(value, enum.Enum):
        cls = type(value)
        return f"resolve({f'{cls.__module__}:{cls.__qualname__}'!r})[{value.name!r}]"
    if isinstance(value, np.ndarray):
        return f"np.array({_literal(value.tolist())}, dtype={value.dtype.str!r})"
    if isinstance(value, tuple):
        inner = ", ".join(_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    raise bad_argument("cases_or_report", value, "holds a value that cannot be written as a Python literal",
                       "Use str, numbers, bools, tuples, lists, dicts, numpy arrays or Enums as inputs")


def _import_name(role: str, value: Any, given: str | None) -> str:
    """`module:qualname` of a function that the test file can import again."""
    name = given if given is not None else (value if isinstance(value, str) else function_name(value))
    fix = f"Pass {role}_import='package.module:function' naming an importable function"
    if not isinstance(name, str) or ":" not in name or name.startswith("__main__:") or "<locals>" in name:
        raise bad_argument(f"{role}_import", name, "must name an importable function as 'module:qualname'", fix)
    try:
        target = resolve(name)
    except Exception as exc:
        raise bad_argument(f"{role}_import", name, f"cannot be imported ({exc})", fix) from None
    if isinstance(target, type) or not callable(target):
        raise bad_argument(f"{role}_import", name, "must name a function or a module-level callable instance, "
                           "not a class", f"{fix}; for a saved surrogate, a module holding "
                           f"`surrogate = Surrogate.load('model.nsw')` and {role}_import='that_module:surrogate'")
    if not isinstance(value, str) and value is not None and unwrap(target) is not unwrap(value):
        raise bad_argument(f"{role}_import", name, f"imports {target!r}, not the {role} given", fix)
    return name


def _cases(cases_or_report: Any) -> tuple[list[tuple[dict[str, Any], str]], Schema | None, Comparison | None]:
    """(inputs, comment) pairs, plus the schema and policy the source carries, if any."""
    schema: Schema | None = None
    comparison: Comparison | None = None
    items: Iterable[Any]
    if isinstance(cases_or_report, EquivalenceReport):
        items = cases_or_report.counterexamples
        comparison = cases_or_report.comparison
        if cases_or_report.schema:
            schema = Schema.from_dict(cases_or_report.schema)
    else:
        items = cases_or_report
        if isinstance(cases_or_report, EdgeCases):
            schema = cases_or_report.schema
    out: list[tuple[dict[str, Any], str]] = []
    for item in items:
        if isinstance(item, (Counterexample, EdgeCase)):
            origin = item.view if isinstance(item, Counterexample) else item.layer
            comment = f"{item.reason or 'disagreement'} ({origin}): original {item.expected_outcome}, " \
                      f"candidate {item.actual_outcome}"
            out.append((dict(item.inputs), comment))
        elif isinstance(item, Mapping):
            out.append((dict(item), ""))
        else:
            raise bad_argument("cases_or_report", item, "must hold Counterexample, EdgeCase or kwargs dicts",
                               "Pass verify(...) report, mine_edge_cases(...) result, or a list of dicts")
    return out, schema, comparison


def write_pytest(
    original: Callable[..., Any] | str,
    cases_or_report: Any,
    path: str | Path,
    *,
    candidate_import: str | None = None,
    original_import: str | None = None,
    schema: Schema | None = None,
    tolerance: Tolerance | None = None,
    exceptions: str | None = None,
    nan: str | None = None,
    max_examples: int = 200,
) -> Path:
    """Write a pytest file checking `candidate_import` against the original: one regression case
    per counterexample / edge case, and a derandomised hypothesis property over the schema.

    Both functions are imported by `module:qualname` in the written file. Tolerance, NaN and
    exception modes default to the report's policy (else exact, "equal", "type").
    """
    original_name = _import_name("original", original, original_import)
    if candidate_import is None and isinstance(cases_or_report, EquivalenceReport):
        candidate_import = cases_or_report.candidate
    if candidate_import is None:
        raise bad_argument("candidate_import", None, "is needed to import the candidate in the test file",
                           "Pass candidate_import='package.module:function'")
    candidate_name = _import_name("candidate", None, candidate_import)
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise bad_argument("max_examples", max_examples, "must be an integer >= 1")
    cases, carried_schema, carried = _cases(cases_or_report)
    schema = schema if schema is not None else carried_schema
    base = carried or Comparison()
    policy = Comparison(tolerance if tolerance is not None else base.tolerance,
                        exceptions if exceptions is not None else base.exceptions,
                        nan if nan is not None else base.nan,
                        base.output_kind or ("label" if schema is not None and schema.output.kind == "label" else ""))
    tol = policy.tolerance

    lines = [
        f'"""Equivalence of {candidate_name} with {original_name}, written by probes.write_pytest.',
        "",
        f"Policy: {policy.describe()}.",
        "Regression cases are inputs where a candidate once disagreed; the property checks the whole domain.",
        '"""',
        "",
        "import numpy as np",
        "import pytest",
        "from hypothesis import HealthCheck, given, settings",
        "",
        "from probes import Comparison, Schema, Tolerance, resolve, strategy",
        "",
        f"ORIGINAL = resolve({original_name!r})",
        f"CANDIDATE = resolve({candidate_name!r})",
        f"COMPARISON = Comparison(Tolerance(abs={tol.abs!r}, rel={tol.rel!r}), exceptions={policy.exceptions!r}, "
        f"nan={policy.nan!r}, output_kind={policy.output_kind!r})",
        "",
        "CASES = [",
    ]
    for inputs, comment in cases:
        if comment:
            lines.append(f"    # {comment}".replace("\n", " "))
        lines.append(f"    {_literal(inputs)},")
    lines += [
        "]",
        "",
        "",
        "@pytest.mark.parametrize('kwargs', CASES, ids=[f'case{i}' for i in range(len(CASES))])",
        "def test_regression_case(kwargs):",
        "    COMPARISON.assert_agree(ORIGINAL, CANDIDATE, kwargs)",
    ]
    if schema is not None:
        lines += [
            "",
            "",
            f"SCHEMA = Schema.from_json(r'''\n{schema.to_json()}\n''')" if "'''" not in schema.to_json() and "\\" not in schema.to_json()
            else f"SCHEMA = Schema.from_json({schema.to_json()!r})",
            "",
            "",
            f"@settings(max_examples={max_examples}, deadline=None, derandomize=True, database=None,",
            "          suppress_health_check=list(HealthCheck))",
            "@given(strategy(SCHEMA))",
            "def test_equivalence_property(kwargs):",
            "    COMPARISON.assert_agree(ORIGINAL, CANDIDATE, kwargs)",
        ]
    else:
        lines += ["", "# No schema was given, so no property test: pass schema= to write_pytest to add one."]
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n")
    return target
