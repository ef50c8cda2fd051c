"""What verification found, as data a program can act on and text a person can read.

A report is kept next to a swapped-in surrogate as its evidence, so it round-trips through JSON
(NaN, infinities, tuples, arrays and enums encoded by tags) and reads as Markdown in a review.
"""

from __future__ import annotations

import enum
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ._compare import Comparison, describe
from ._errors import InvalidArgument
from ._identity import resolve
from ._traces import ErrorInfo

#: z for a two-sided 95% interval.
Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial share; (0, 1) when n == 0.

    With no failure in n trials the lower end is n / (n + z^2), about 1 - 3.84/n: the
    rule-of-three kind of bound, where a plain normal interval would claim certainty.
    """
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    low, high = max(0.0, centre - half), min(1.0, centre + half)
    if successes == n:
        high = 1.0
    if successes == 0:
        low = 0.0
    return low, high


def error_quantiles(errors: Sequence[float]) -> dict[str, float]:
    """Median, 90th, 99th percentile and max of per-input errors (inf kept as inf)."""
    if len(errors) == 0:
        return {}
    values = np.sort(np.asarray(errors, dtype=float))
    out = {}
    for name, q in (("p50", 0.50), ("p90", 0.90), ("p99", 0.99)):
        index = min(len(values) - 1, max(0, int(math.ceil(q * len(values))) - 1))
        out[name] = float(values[index])  # nearest-rank: never interpolates between inf and a number
    out["max"] = float(values[-1])
    return out


# -- JSON with tags for what JSON cannot hold ------------------------------------------------------
def encode_value(value: Any) -> Any:
    """A JSON-safe form of an input or output value; `decode_value` restores it."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isnan(number):
            return {"$float": "nan"}
        if math.isinf(number):
            return {"$float": "inf" if number > 0 else "-inf"}
        return number
    if isinstance(value, enum.Enum):
        cls = type(value)
        return {"$enum": f"{cls.__module__}:{cls.__qualname__}", "name": value.name}
    if isinstance(value, np.ndarray):
        return {"$ndarray": [encode_value(v) for v in value.tolist()], "dtype": value.dtype.str}
    if isinstance(value, tuple):
        return {"$tuple": [encode_value(v) for v in value]}
    if isinstance(value, list):
        return [encode_value(v) for v in value]
    if isinstance(value, Mapping):
        if all(isinstance(k, str) for k in value) and not any(k.startswith("$") for k in value):
            return {k: encode_value(v) for k, v in value.items()}
        return {"$dict": [[encode_value(k), encode_value(v)] for k, v in value.items()]}
    if isinstance(value, ErrorInfo):
        return {"$error": value.to_dict()}
    return {"$repr": repr(value), "type": type(value).__qualname__}


def decode_value(data: Any) -> Any:
    """Inverse of `encode_value` (an unencodable value comes back as its repr string)."""
    if isinstance(data, list):
        return [decode_value(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "$float" in data:
        return float(data["$float"])
    if "$tuple" in data:
        return tuple(decode_value(v) for v in data["$tuple"])
    if "$ndarray" in data:
        return np.asarray(decode_value(data["$ndarray"]), dtype=np.dtype(data.get("dtype", "<f8")))
    if "$enum" in data:
        try:
            return resolve(data["$enum"])[data["name"]]
        except (InvalidArgument, KeyError, TypeError):  # enum gone or renamed: keep the name
            return data["name"]
    if "$dict" in data:
        return {decode_value(k): decode_value(v) for k, v in data["$dict"]}
    if "$error" in data:
        return ErrorInfo(**data["$error"])
    if "$repr" in data:
        return data["$repr"]
    return {k: decode_value(v) for k, v in data.items()}


def _number(value: float | None) -> Any:
    return None if value is None else encode_value(float(value))


def _unnumber(data: Any) -> float | None:
    return None if data is None else float(decode_value(data))


def format_call(name: str, inputs: Mapping[str, Any]) -> str:
    """`name(x=1.0, zone='EU')`: an input written as a call a person can paste."""
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in inputs.items())})"


def _error_info(data: Any) -> ErrorInfo | None:
    return None if data is None else ErrorInfo(**data)


@dataclass(frozen=True)
class Finding:
    """An input where a candidate disagrees with the original, with what each returned or
    raised: the shared part of `Counterexample` (verify) and `EdgeCase` (mining)."""

    inputs: dict[str, Any]
    expected: Any
    actual: Any
    error: float

    def call(self, name: str = "fn") -> str:
        return format_call(name, self.inputs)

    @property
    def expected_outcome(self) -> str:
        return describe(self.expected, getattr(self, "expected_error", None))

    @property
    def actual_outcome(self) -> str:
        return describe(self.actual, getattr(self, "actual_error", None))


@dataclass(frozen=True)
class Counterexample(Finding):
    """One input where the candidate disagrees with the original."""

    path: str = ""
    expected_error: ErrorInfo | None = None
    actual_error: ErrorInfo | None = None
    reason: str = ""
    view: str = ""
    shrunk: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": encode_value(self.inputs), "expected": encode_value(self.expected),
            "actual": encode_value(self.actual), "error": _number(self.error), "path": self.path,
            "expected_error": self.expected_error.to_dict() if self.expected_error else None,
            "actual_error": self.actual_error.to_dict() if self.actual_error else None,
            "reason": self.reason, "view": self.view, "shrunk": self.shrunk,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Counterexample":
        return cls(
            inputs=decode_value(data["inputs"]), expected=decode_value(data.get("expected")),
            actual=decode_value(data.get("actual")), error=_unnumber(data.get("error")) or 0.0,
            path=data.get("path", ""), expected_error=_error_info(data.get("expected_error")),
            actual_error=_error_info(data.get("actual_error")), reason=data.get("reason", ""),
            view=data.get("view", ""), shrunk=bool(data.get("shrunk", False)),
        )


@dataclass(frozen=True)
class ViewStats:
    """Agreement over one view of the inputs.

    "operational" (recorded traces and resamples of them) and "domain" (uniform over the
    schema) are samples, so their agreement estimates a rate with a Wilson 95% interval;
    "search" is adversarial (steered toward large errors), so its rate is not an estimate.
    """

    name: str
    n: int = 0
    disagreements: int = 0
    skipped: int = 0
    agreement: float | None = None
    ci: tuple[float, float] = (0.0, 1.0)
    errors: dict[str, float] = field(default_factory=dict)
    time_s: float = 0.0
    note: str = ""

    @classmethod
    def from_verdicts(cls, name: str, agree: Sequence[bool], errors: Sequence[float], *, skipped: int = 0,
                      time_s: float = 0.0, note: str = "") -> "ViewStats":
        n = len(agree)
        k = int(sum(bool(a) for a in agree))
        return cls(name, n, n - k, skipped, (k / n) if n else None, wilson_interval(k, n),
                   error_quantiles(errors), time_s, note)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ci"] = list(self.ci)
        data["errors"] = {k: _number(v) for k, v in self.errors.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ViewStats":
        return cls(data["name"], data.get("n", 0), data.get("disagreements", 0), data.get("skipped", 0),
                   data.get("agreement"), tuple(data.get("ci", (0.0, 1.0))),  # type: ignore[arg-type]
                   {k: _unnumber(v) for k, v in data.get("errors", {}).items()},  # type: ignore[misc]
                   data.get("time_s", 0.0), data.get("note", ""))


@dataclass(frozen=True)
class EquivalenceReport:
    """Whether a candidate behaves like the original, with the evidence.

    `passed` is True iff no disagreement was found among all checked inputs (every view), the
    original agreed with itself when run twice, and every view judged enough inputs for a
    verdict (`min_examples`); `status` is "passed", "failed" (a disagreement was seen) or
    "inconclusive" (none seen, but too little evidence, or an original that disagrees with
    itself), and `reason` says why in a sentence; `agreement` and `agreement_ci` pool the sampled
    views (operational and domain), whose inputs are not chosen adversarially. `statistics`:
    examples_run (inputs run through both functions), invalid (replayed recorded inputs outside
    the schema), skipped, time_s, stop_reason, budget_cut (stages `budget_s` cut short, e.g.
    "domain", "search:shrink", "nondeterminism-recheck", "shrink-sampled"), seed, derandomize,
    database, min_examples, evidence (inputs judged per view), cost_per_input_s (what the
    budget was planned on), wall_ceiling_hit (a work-clock run ended by its wall ceiling).
    """

    function: str
    candidate: str
    passed: bool
    agreement: float | None
    agreement_ci: tuple[float, float]
    max_error: float
    counterexamples: tuple[Counterexample, ...]
    views: dict[str, ViewStats]
    paths: dict[str, dict[str, Any]] = field(default_factory=dict)
    nondeterminism: float = 0.0
    nondeterministic_inputs: int = 0
    nondeterminism_checked: int = 0
    comparison: Comparison = field(default_factory=Comparison)
    statistics: dict[str, Any] = field(default_factory=dict)
    schema: dict[str, Any] = field(default_factory=dict)  # Schema.to_dict() of the domain checked
    reason: str = ""  # why the status is what it is, in a sentence
    inconclusive: bool = False  # no disagreement seen, but no verdict either (see `reason`)
    #: per path id (per-path table and counterexamples): its branch outcomes in source terms
    #: (`minutes <= 30: False, day == 'sunday': True`, loop counts as `×2`); '' for a path
    #: that tests no condition
    path_names: dict[str, str] = field(default_factory=dict)

    def path_name(self, path: str) -> str:
        """What path `path` means: its branch outcomes, or the id itself when they are unknown."""
        if path in self.path_names:
            return self.path_names[path] or "no condition tested"
        return path

    @property
    def status(self) -> str:
        """"passed", "failed", or "inconclusive" (no disagreement seen, but too few inputs
        judged for a verdict, or the original disagrees with itself)."""
        if self.passed:
            return "passed"
        if self.inconclusive or (self.nondeterministic_inputs and not self.disagreements):
            return "inconclusive"
        return "failed"

    @property
    def disagreements(self) -> int:
        return sum(v.disagreements for v in self.views.values())

    @property
    def checked(self) -> int:
        return sum(v.n for v in self.views.values())

    def __bool__(self) -> bool:
        return self.passed

    # -- Markdown -----------------------------------------------------------------------------
    def to_markdown(self, *, name: str | None = None, max_paths: int = 12) -> str:
        """A review-ready summary; each counterexample written as a call with both outcomes."""
        fn = name or (self.function.rsplit(":", 1)[-1].rsplit(".", 1)[-1] if self.function else "fn")
        lines = [f"# Equivalence: `{self.candidate}` vs `{self.function}`", ""]
        verdict = {"passed": "PASSED", "failed": "FAILED", "inconclusive": "INCONCLUSIVE"}[self.status]
        lines.append(f"**{verdict}**: {self.disagreements} disagreement(s) in {self.checked} checked inputs; "
                     f"agreement {_pct(self.agreement)} (95% CI {_pct(self.agreement_ci[0])} to "
                     f"{_pct(self.agreement_ci[1])}); max error {_num(self.max_error)}.")
        if self.reason:
            lines += ["", f"Why {self.status}: {self.reason}."]
        lines += ["", f"Policy: {self.comparison.describe()}.", ""]
        lines += ["| view | inputs | disagree | agreement | 95% CI | median error | p99 error | max error |",
                  "|---|---:|---:|---:|---|---:|---:|---:|"]
        for view in self.views.values():
            e = view.errors
            lines.append(f"| {view.name} | {view.n} | {view.disagreements} | {_pct(view.agreement)} | "
                         f"{_pct(view.ci[0])} to {_pct(view.ci[1])} | {_num(e.get('p50'))} | {_num(e.get('p99'))} | "
                         f"{_num(e.get('max'))} |")
        notes = [f"- {v.name}: {v.note}" for v in self.views.values() if v.note]
        if notes:
            lines += [""] + notes
        if self.nondeterminism_checked:
            lines += ["", f"Non-determinism: the original disagreed with itself on {self.nondeterministic_inputs} of "
                      f"{self.nondeterminism_checked} inputs run twice ({_pct(self.nondeterminism)}); "
                      "candidate disagreements on those inputs are not counted against it."]
        if self.counterexamples:
            lines += ["", "## Counterexamples (worst first)", ""]
            for index, case in enumerate(self.counterexamples, 1):
                how = ", ".join(x for x in (case.view, "shrunk" if case.shrunk else "") if x)
                lines += [f"{index}. {case.reason or 'disagreement'}, error {_num(case.error)} ({how})", ""]
                if case.path:
                    lines += [f"   path: {self.path_name(case.path)}"
                              + (f" (`{case.path}`)" if case.path in self.path_names else ""), ""]
                lines += [
                          "```python", case.call(fn),
                          f"# original:  {case.expected_outcome}",
                          f"# candidate: {case.actual_outcome}", "```", ""]
        if self.paths:
            lines += ["", "## Agreement per branch path of the original", "",
                      "Each path is named by the branch outcomes its calls took in the original's source "
                      "(×n: a loop tested that condition n times).", "",
                      "| branch outcomes | id | inputs | disagree | agreement |", "|---|---|---:|---:|---:|"]
            ranked = sorted(self.paths.items(), key=lambda kv: (kv[1].get("agreement") or 0, -kv[1]["n"], kv[0]))
            for path, stats in ranked[:max_paths]:
                name = self.path_name(path) if path in self.path_names else "(not recorded)"
                lines.append(f"| {_cell(name)} | `{path}` | {stats['n']} | {stats['disagreements']} | "
                             f"{_pct(stats.get('agreement'))} |")
            if len(ranked) > max_paths:
                rest = ranked[max_paths:]
                n_rest = sum(s["n"] for _, s in rest)
                bad = sum(s["disagreements"] for _, s in rest)
                lines.append(f"| {len(rest)} more paths | | {n_rest} | {bad} | "
                             f"{_pct(1 - bad / n_rest if n_rest else None)} |")
        stats = self.statistics
        if stats:
            lines += ["", "Statistics: " + ", ".join(f"{k} {_stat(v)}" for k, v in stats.items())]
        return "\n".join(lines).rstrip() + "\n"

    # -- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "function": self.function, "candidate": self.candidate, "passed": self.passed,
            "status": self.status, "reason": self.reason, "inconclusive": self.inconclusive,
            "agreement": self.agreement, "agreement_ci": list(self.agreement_ci),
            "max_error": _number(self.max_error),
            "counterexamples": [c.to_dict() for c in self.counterexamples],
            "views": {k: v.to_dict() for k, v in self.views.items()},
            "paths": encode_value(self.paths),
            "nondeterminism": self.nondeterminism, "nondeterministic_inputs": self.nondeterministic_inputs,
            "nondeterminism_checked": self.nondeterminism_checked,
            "comparison": self.comparison.to_dict(), "statistics": encode_value(self.statistics),
            "schema": self.schema, "path_names": dict(self.path_names),
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """Strict JSON (no bare NaN/Infinity): non-finite numbers are tagged `{"$float": "inf"}`."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EquivalenceReport":
        return cls(
            function=data.get("function", ""), candidate=data.get("candidate", ""), passed=bool(data["passed"]),
            agreement=data.get("agreement"), agreement_ci=tuple(data.get("agreement_ci", (0.0, 1.0))),  # type: ignore[arg-type]
            max_error=_unnumber(data.get("max_error")) or 0.0,
            counterexamples=tuple(Counterexample.from_dict(c) for c in data.get("counterexamples", [])),
            views={k: ViewStats.from_dict(v) for k, v in data.get("views", {}).items()},
            paths=decode_value(data.get("paths", {})), nondeterminism=data.get("nondeterminism", 0.0),
            nondeterministic_inputs=data.get("nondeterministic_inputs", 0),
            nondeterminism_checked=data.get("nondeterminism_checked", 0),
            comparison=Comparison.from_dict(data.get("comparison", {})),
            statistics=decode_value(data.get("statistics", {})), schema=data.get("schema", {}),
            reason=data.get("reason", ""),
            inconclusive=bool(data.get("inconclusive", False)) and not bool(data["passed"]),
            path_names={str(k): str(v) for k, v in dict(data.get("path_names", {})).items()},
        )

    @classmethod
    def from_json(cls, text: str) -> "EquivalenceReport":
        return cls.from_dict(json.loads(text))


def _pct(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value >= 0.9999 and value < 1.0:
        return f"{100 * value:.3f}%"
    return f"{100 * value:.2f}%"


def _num(value: float | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell (a `|` in a condition would split the row)."""
    return text.replace("|", "\\|").replace("\n", " ")


def _stat(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
