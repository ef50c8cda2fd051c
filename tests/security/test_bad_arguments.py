"""Every documented parameter of the public API, swept with wrong types and values (issue 14).

Each bad value must be refused with a `NeuroswapError` whose message names the argument, before
any work starts: never a traceback from inside numpy or torch, never a silent number. The calls
that would do work (fit, verify, mine_edge_cases, distill, attribute, report) get a legacy
function that raises `WorkStarted` (a BaseException, so nothing records it as an outcome) when
called: a bad value that gets past validation shows up as that, not as a slow run.
"""

from __future__ import annotations

import datetime
import functools
import math
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explain import attribute, distill, report
from probes import NeuroswapError, Schema, Tolerance, TraceStore, Traces, mine_edge_cases, record, verify
from replace import Surrogate, TrainConfig, fit, swap

EXAMPLES = 12


class WorkStarted(BaseException):
    """The legacy function was called: a bad argument got past validation into the work."""


def shipping(weight: float, zone: str) -> float:
    base = {"A": 5.0, "B": 9.0}[zone]
    return base + (2.0 * weight if weight > 2.0 else weight)


def tripwire(weight: float, zone: str) -> float:
    raise WorkStarted(f"tripwire(weight={weight!r}, zone={zone!r}) was called")


SCHEMA = Schema.from_function(shipping, weight=(0.0, 5.0), zone=["A", "B"])
TRIP_SCHEMA = Schema.from_function(tripwire, weight=(0.0, 5.0), zone=["A", "B"], output=SCHEMA.output)
TRACES = Traces.from_calls(shipping, [{"weight": w / 10, "zone": z} for w in range(0, 50, 3) for z in "AB"])
ROWS = [{"weight": 1.0, "zone": "A"}, {"weight": 3.0, "zone": "B"}]
COLUMNS = {"weight": np.array([1.0, 3.0]), "zone": np.array(["A", "B"], dtype=object)}
WORK_DIR = Path(tempfile.mkdtemp(prefix="neuroswap-bad-arguments-"))


@functools.cache
def surrogate() -> Surrogate:
    """A tiny surrogate, fitted once (work clock: the same one at any machine load)."""
    return fit(shipping, schema=SCHEMA, tolerance=Tolerance(abs=0.1), budget_s=2, seed=0, progress=False,
               budget_clock="work", ensemble_size=2)


@functools.cache
def saved() -> Path:
    path = WORK_DIR / "surrogate"
    surrogate().save(path)
    return path


# -- bad values ------------------------------------------------------------------------------------

class Opaque:
    def __repr__(self) -> str:
        return "<Opaque>"


def _not_numbers() -> list[Any]:
    return ["0.5", "1", "", "nan", "inf", b"1", [0.5], (0.5,), {"v": 0.5}, {0.5}, Opaque(), 1j,
            np.array([0.5, 0.5]), Tolerance(), shipping]


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def real(valid: Callable[[float], bool], *, optional: bool = False) -> st.SearchStrategy[Any]:
    """Values a real-valued parameter must refuse: not numbers, bools, and numbers `valid` rejects."""
    crafted = [math.nan, math.inf, -math.inf, 10**400, -(10**400), -1, 0, 1, 2, -0.5, 0.5, 1e300, -1e-300,
               np.float64("nan")]
    bad = [v for v in crafted if not valid(_as_float(v))] + [True, False] + _not_numbers()
    if not optional:
        bad.append(None)
    return st.one_of(st.sampled_from(bad), st.text(max_size=6),
                     st.floats(allow_nan=True, allow_infinity=True).filter(lambda v: not valid(v)))


def integer(valid: Callable[[int], bool], *, optional: bool = False) -> st.SearchStrategy[Any]:
    """Values an integer parameter must refuse: also fractions, non-finite numbers and ints beyond 2**63."""
    def bad_int(v: int) -> bool:
        return abs(v) >= 2**63 or not valid(v)

    crafted = [-1, 0, 1, 2, 2**63, 2**64, 10**400, -(10**400)]
    bad = [v for v in crafted if bad_int(v)]
    bad += [math.nan, math.inf, -math.inf, 0.5, 2.5, np.float64(1.5), True, False] + _not_numbers()
    if not optional:
        bad.append(None)
    return st.one_of(st.sampled_from(bad), st.text(max_size=6),
                     st.integers(min_value=-(2**70), max_value=2**70).filter(bad_int),
                     st.floats(allow_nan=True).filter(lambda v: not (math.isfinite(v) and v == int(v))))


def seed() -> st.SearchStrategy[Any]:
    return integer(lambda v: v >= 0)


def choice(options: tuple[Any, ...], *, optional: bool = False, fold_case: bool = False) -> st.SearchStrategy[Any]:
    """Values an enumerated parameter must refuse."""
    def bad_text(text: str) -> bool:
        return (text.lower() if fold_case else text) not in options

    bad = [1, 0.5, True, [options[0]], (options[0],), Opaque(), b"x", "", " " + str(options[0])]
    bad += [str(options[0]).upper() + "X"]
    if not optional:
        bad.append(None)
    return st.one_of(st.sampled_from(bad), st.text(max_size=10).filter(bad_text))


def flag(*, optional: bool = False) -> st.SearchStrategy[Any]:
    """Values a True/False parameter must refuse (a string "False" is not False)."""
    bad = ["yes", "no", "False", "True", "", 2, -1, 0.5, [True], (False,), Opaque(), math.nan]
    if not optional:
        bad.append(None)
    return st.sampled_from(bad)


def a_callable(*, optional: bool = False) -> st.SearchStrategy[Any]:
    bad = [123, 0.5, "shipping", "tests:shipping", [shipping], (shipping,), Opaque(), True]
    if not optional:
        bad.append(None)
    return st.sampled_from(bad)


def instance(*, optional: bool = True) -> st.SearchStrategy[Any]:
    """Values a parameter taking one neuroswap object (a Schema, Traces, Tolerance...) must refuse."""
    bad = [1, 0.5, "x", b"x", [1, 2], {"abs": 0.1}, (0.1, 0.2), Opaque(), True, shipping]
    if not optional:
        bad.append(None)
    return st.sampled_from(bad)


SECONDS = functools.partial(real, lambda v: 0 < v < math.inf)
UNIT = real(lambda v: 0 <= v <= 1)
COUNT = integer(lambda v: v >= 0)
POSITIVE_COUNT = integer(lambda v: v >= 1)

# -- the calls: a valid baseline, one argument replaced ------------------------------------------


def call_record(name: str, value: Any) -> Any:
    if name == "fn":
        return record(value)
    return record(**{"store": "memory://bad-arguments", name: value})(shipping)


def call_open(name: str, value: Any) -> Any:
    if name == "uri":
        return TraceStore.open(value)
    if name == "connect_timeout_s":  # refused before any connection is tried
        return TraceStore.open("postgresql://nobody@127.0.0.1:1/none", **{name: value})
    return TraceStore.open(str(WORK_DIR / "traces.db"), **{name: value})


def call_prune(name: str, value: Any) -> Any:
    store = TraceStore.open("memory://bad-arguments")
    if name == "function":
        return store.prune(value, keep_last=1)
    if name == "source_hash":
        return store.prune("m:q", keep_last=1, source_hash=value)
    return store.prune("m:q", **{name: value})


def call_load(name: str, value: Any) -> Any:
    store = TraceStore.open("memory://bad-arguments")
    if name == "function":
        return store.load(value)
    return store.load(shipping, **{name: value})


def call_infer(name: str, value: Any) -> Any:
    if name == "traces":
        return Schema.infer(shipping, value)
    return Schema.infer(shipping, TRACES, **{name: value})


def call_from_function(name: str, value: Any) -> Any:
    specs: dict[str, Any] = {"weight": (0.0, 5.0), "zone": ["A", "B"], name: value}
    return Schema.from_function(shipping, **specs)


def call_tolerance(name: str, value: Any) -> Any:
    return Tolerance(**{name: value})


def call_fit(name: str, value: Any) -> Any:
    kwargs: dict[str, Any] = dict(schema=TRIP_SCHEMA, tolerance=Tolerance(abs=0.1), budget_s=1, progress=False,
                                  budget_clock="work")
    if name == "fn":
        return fit(value, **kwargs)
    kwargs[name] = value
    return fit(tripwire, **kwargs)


def call_fit_train(name: str, value: Any) -> Any:
    return call_fit("train", TrainConfig(**{name: value}))


def call_swap(name: str, value: Any) -> Any:
    kwargs: dict[str, Any] = {"mode": "guarded", name: value}
    if name == "fn":
        return swap(value, surrogate(), "guarded")
    if name == "surrogate":
        return swap(tripwire, value, "guarded")
    if name in ("shadow_rate", "on_disagreement", "record_to", "keep", "log"):
        kwargs["mode"] = "shadow"
    if name == "mode":
        kwargs = {"mode": value}
    return swap(tripwire, surrogate(), **kwargs)


def call_verify(name: str, value: Any) -> Any:
    kwargs: dict[str, Any] = dict(schema=TRIP_SCHEMA, max_examples=200, budget_s=5)
    if name in ("original", "candidate"):
        args = {"original": tripwire, "candidate": shipping, name: value}
        return verify(args["original"], args["candidate"], **kwargs)
    kwargs[name] = value
    return verify(tripwire, shipping, **kwargs)


def call_mine(name: str, value: Any) -> Any:
    kwargs: dict[str, Any] = dict(schema=TRIP_SCHEMA, budget_s=1)
    if name in ("original", "candidate"):
        args = {"original": tripwire, "candidate": shipping, name: value}
        return mine_edge_cases(args["original"], args["candidate"], **kwargs)
    kwargs[name] = value
    return mine_edge_cases(tripwire, shipping, **kwargs)


def call_distill(name: str, value: Any) -> Any:
    kwargs: dict[str, Any] = dict(schema=TRIP_SCHEMA)
    if name == "fn_or_surrogate":
        return distill(value, **kwargs)
    kwargs[name] = value
    return distill(tripwire, **kwargs)


def call_attribute(name: str, value: Any) -> Any:
    kwargs: dict[str, Any] = dict(schema=TRIP_SCHEMA)
    if name == "model_or_fn":
        return attribute(value, ROWS, **kwargs)
    if name == "inputs":
        return attribute(tripwire, value, **kwargs)
    kwargs[name] = value
    return attribute(tripwire, ROWS, **kwargs)


def call_report(name: str, value: Any) -> Any:
    kwargs: dict[str, Any] = dict(out=WORK_DIR / "report", rules=False)
    if name == "original":
        return report(value, surrogate(), **kwargs)
    if name == "surrogate":
        return report(tripwire, value, **kwargs)
    kwargs[name] = value
    return report(tripwire, surrogate(), **kwargs)


def call_surrogate_load(name: str, value: Any) -> Any:
    if name == "path":
        return Surrogate.load(value)
    return Surrogate.load(saved(), **{name: value})


def call_predict_batch(name: str, value: Any) -> Any:
    if name == "columns":
        return surrogate().predict_batch(value)
    kwargs: dict[str, Any] = {name: value}
    if name == "fn":
        kwargs["out_of_domain"] = "original"
    return surrogate().predict_batch(COLUMNS, **kwargs)


# -- the sweep ----------------------------------------------------------------------------------------

NOT_A_SPEC = st.sampled_from([(1.0, 0.0), (math.nan, 1.0), (0.0, math.inf), (-math.inf, 0.0), (10**400, 10**401),
                              (), [], {}, 5, 0.5, "heavy", None, Opaque(), b"x", {"low": "a", "high": 1},
                              {"low": 1.0, "high": 0.0}, {"length": -1, "low": 0, "high": 1},
                              {"kind": "nope"}, {"kind": "real", "low": math.nan, "high": 1.0}])
CASES: dict[str, tuple[Callable[[str, Any], Any], dict[str, st.SearchStrategy[Any]]]] = {
    "record": (call_record, {
        "fn": st.sampled_from([123, "shipping", [shipping], Opaque(), int]),
        "store": st.sampled_from([123, 0.5, ["memory://"], Opaque(), b"x", "", "ftp://host/traces.db",
                                  "sqlite://host/x.db", True]),
        "sample_rate": UNIT,
        "max_traces": COUNT.filter(lambda v: v is not None),
        "redact": st.sampled_from(["nope", ["weight", "nope"], [1], [None], 5, Opaque()]),
        "keep_first": COUNT,
        "sample": choice(("adaptive",), optional=True),
    }),
    "TraceStore.open": (call_open, {
        "uri": st.sampled_from([123, 0.5, ["memory://"], Opaque(), b"x", "", "ftp://host/t.db", True]),
        "trusted_modules": st.sampled_from(["mypkg", b"mypkg", 5, [1], ["not a module"], [""], ["a..b"],
                                            Opaque(), True]),
        "timeout_s": real(lambda v: 0 <= v < math.inf),
        "readonly": flag(),
        "durable": flag(),
        "no_such_option": st.sampled_from([1, None, "x", True]),
        "connect_timeout_s": real(lambda v: 0 < v < math.inf),
    }),
    "store.prune": (call_prune, {
        "function": st.sampled_from([123, "no_colon", None, [shipping], Opaque(), b"m:q"]),
        "keep_last": COUNT.filter(lambda v: v is not None),
        "older_than": st.sampled_from(["yesterday", 1_700_000_000, 0.5, datetime.date(2024, 1, 1),
                                       datetime.timedelta(days=-1), Opaque(), True, b"x",
                                       [datetime.timedelta(days=1)]]),
        "source_hash": st.sampled_from([123, ["*"], Opaque(), b"*", True, ""]),
    }),
    "store.load": (call_load, {
        "function": st.sampled_from([123, "no_colon", None, [shipping], Opaque(), b"m:q"]),
        "source_hash": st.sampled_from([123, ["*"], Opaque(), b"*", True]),
        "limit": COUNT.filter(lambda v: v is not None),
        "dedupe": flag(),
        "trusted_modules": st.sampled_from(["mypkg", b"mypkg", 5, [1], ["not a module"], [""], Opaque(), True]),
    }),
    "Schema.infer": (call_infer, {
        "traces": instance(optional=False),
        "weight": NOT_A_SPEC,
        "zone": st.sampled_from([[], (), {}, 5, None, Opaque(), "A"]),
    }),
    "Schema.from_function": (call_from_function, {
        "weight": NOT_A_SPEC,
        "zone": st.sampled_from([[], (), {}, 5, None, Opaque(), "A"]),
        "output": choice(("real", "vector", "label", "none"), optional=True),
        "probe": COUNT,
        "seed": seed(),
    }),
    "Tolerance": (call_tolerance, {
        "abs": real(lambda v: 0 <= v < math.inf),
        "rel": real(lambda v: 0 <= v < math.inf),
    }),
    "fit": (call_fit, {
        "fn": st.sampled_from([123, "shipping", [shipping], Opaque(), None]),
        "traces": instance(),
        "schema": instance(),
        "tolerance": instance(),
        "oracle": flag(),
        "budget_s": SECONDS(),
        "seed": seed(),
        "hard_cases": st.sampled_from([5, 0.5, "weight", Opaque(), [5], [{"nope": 1}], True]),
        "progress": flag(optional=True),
        "advanced": instance(),  # a FitOptions, or None
        # FitConfig options
        "target_agreement": real(lambda v: 0 < v <= 1),
        "ensemble_size": POSITIVE_COUNT,
        "widths": st.sampled_from([(), (0,), (-4,), (16.5,), ("16",), 16, "16", None, (True,), Opaque(), (2**70,)]),
        "depths": st.sampled_from([(), (0,), (-1,), (2.5,), ("2",), 2, "2", None, (True,), Opaque()]),
        "max_candidates": POSITIVE_COUNT,
        "search": choice(("budget", "equal", "halving")),
        "activation": choice(("relu", "silu", "tanh"), optional=True),
        "path_aware": st.sampled_from(["yes", "Auto", "", 1, 0.5, None, Opaque(), ["auto"]]),
        "sampling": choice(("paths", "uniform")),
        "initial_samples": POSITIVE_COUNT.filter(lambda v: v is not None),
        "max_oracle_calls": COUNT.filter(lambda v: v is not None),
        "rounds": COUNT,
        "rounds_when": choice(("data_limited", "always")),
        "rounds_patience": COUNT,
        "round_baseline": choice(("before", "same_time")),
        "round_noise_z": real(lambda v: 0 <= v < math.inf),
        "boundary_share": UNIT,
        "test_size": POSITIVE_COUNT,
        "hard_weight": real(lambda v: 0 < v < math.inf),
        "near_scale": real(lambda v: 0 < v < math.inf),
        "trace_share": UNIT,
        "path_budget": UNIT,
        "max_experts": POSITIVE_COUNT,
        "min_path_share": UNIT,
        "train": st.sampled_from([None, "fast", 1, {"lr": 0.1}, Opaque()]),
        "device": st.sampled_from(["gpu", "", "cuda:x", 5, ["cpu"], Opaque(), True]),
        "threads": integer(lambda v: 1 <= v < 2**31, optional=True),
        "validation_share": real(lambda v: 0 < v < 1),
        "trace_weight": st.one_of(real(lambda v: 0 <= v < math.inf).filter(lambda v: v != "balance"),
                                  st.sampled_from(["Balance", "equal"])),
        "log_inputs": st.sampled_from(["weight", "nope", ["nope"], [1], 5, Opaque(), None, "Positive"]),
        "embeddings": flag(),
        "code_cuts": flag(),
        "budget_clock": choice(("wall", "work")),
        "distributed": choice(("auto", "off")),
        "calibration_rate": real(lambda v: 0 < v < 1),
        "calibration_share": real(lambda v: 0 <= v < 1),
        "calibration_holdout": real(lambda v: 0 <= v < 1),
        "domain_margin": real(lambda v: 0 <= v < math.inf, optional=True),
        "wall_ceiling_s": real(lambda v: v > 0, optional=True),
        "exact": choice(("auto", "off")),
        "no_such_option": st.sampled_from([1, None, "x"]),
    }),
    "fit(train=TrainConfig(...))": (call_fit_train, {
        "lr": real(lambda v: 0 < v < math.inf),
        "weight_decay": real(lambda v: 0 <= v < math.inf),
        "batch_size": POSITIVE_COUNT.filter(lambda v: v is not None),
        "max_epochs": POSITIVE_COUNT,
        "patience": COUNT,
        "min_delta": real(lambda v: 0 <= v < math.inf),
        "schedule": choice(("onecycle", "cosine", "constant")),
        "max_grad_norm": real(lambda v: 0 < v < math.inf, optional=True),
    }),
    "swap": (call_swap, {
        "fn": a_callable(),
        "surrogate": instance(optional=False),
        "mode": choice(("surrogate", "shadow", "guarded"), fold_case=True),
        "max_error_rate": real(lambda v: 0 < v < 1),
        "confidence": real(lambda v: 0.5 <= v < 1),
        "audit_rate": UNIT,
        "calibration_inputs": st.sampled_from([5, 0.5, "rows", [5], [{"nope": 1.0}], {"weight": 1.0}, Opaque(),
                                               True, [], {"weight": [1.0, 2.0], "zone": ["A"]}]),
        "calibrate_on": choice(("production", "domain", "traces", "user"), optional=True),
        "false_alarm": real(lambda v: 0 < v <= 1),
        "shadow_rate": UNIT,
        "tolerance": instance(),
        "on_disagreement": a_callable(optional=True),
        "seed": seed(),
        "record_to": st.sampled_from([123, 0.5, ["memory://"], Opaque(), b"x", "", "ftp://host/t.db", True]),
        "keep": COUNT,
        "log": flag(),
        "spread_scale": real(lambda v: 0 <= v, optional=True),
        "label_spread": real(lambda v: 0 <= v <= 1, optional=True),
    }),
    "verify": (call_verify, {
        "original": a_callable(),
        "candidate": a_callable(),
        "schema": instance(),
        "traces": instance(),
        "tolerance": instance(),
        "max_examples": POSITIVE_COUNT,
        "seed": seed(),
        "exceptions": choice(("type", "type_and_message", "ignore")),
        "nan": choice(("equal", "differ")),
        "derandomize": flag(),
        "database": st.sampled_from([123, 0.5, [1], Opaque(), True]),
        "budget_s": SECONDS(optional=True),
        "search": flag(),
        "max_counterexamples": POSITIVE_COUNT,
        "nondeterminism_sample": COUNT,
        "paths": flag(optional=True),
        "budget_clock": choice(("wall", "work")),
        "min_examples": integer(lambda v: 1 <= v <= 200, optional=True),
        "wall_ceiling_s": real(lambda v: v > 0, optional=True),
    }),
    "mine_edge_cases": (call_mine, {
        "original": a_callable(),
        "candidate": a_callable(),
        "schema": instance(optional=False),
        "tolerance": instance(),
        "budget_s": SECONDS(),
        "seed": seed(),
        "surrogate_gradients": flag(),
        "exceptions": choice(("type", "type_and_message", "ignore")),
        "nan": choice(("equal", "differ")),
        "layers": st.sampled_from([["nope"], "boundary", 5, [1], None, Opaque(), ["branch", "Search"]]),
        "max_cases": POSITIVE_COUNT,
        "budget_clock": choice(("wall", "work")),
        "wall_ceiling_s": real(lambda v: v > 0, optional=True),
    }),
    "distill": (call_distill, {
        "fn_or_surrogate": a_callable(),
        "schema": instance(),
        "max_leaves": integer(lambda v: v >= 2),
        "teacher": a_callable(optional=True),
        "original": a_callable(optional=True),
        "n_samples": integer(lambda v: v >= 100),
        "tolerance": instance(),
        "seed": seed(),
        "traces": instance(),
        "snap": flag(optional=True),
        "linear_leaves": flag(),
        "name": st.sampled_from([5, "", "not an identifier", "class", "1abc", ["rules"], Opaque(), b"rules"]),
        "fidelity_samples": POSITIVE_COUNT,
        "budget_s": SECONDS(optional=True),
        "exact": flag(),
    }),
    "attribute": (call_attribute, {
        "model_or_fn": st.sampled_from([123, "shipping", [shipping], Opaque(), None]),
        "inputs": st.sampled_from([5, 0.5, "rows", [5], [{"nope": 1.0}], Opaque(), None, []]),
        "method": choice(("auto", "shap", "ablation", "feature_ablation"), fold_case=True),
        "schema": instance(),
        "baseline": st.sampled_from([5, "x", [1.0], Opaque(), {"nope": 1.0}]),
        "target": st.sampled_from([-1, 1, 5, 0.5, "x", [0], Opaque(), True, math.nan, 2**64]),
        "ig_delta_bound": real(lambda v: 0 < v < math.inf),
        "seed": seed(),
        "background": st.sampled_from([5, "rows", [5], [{"nope": 1.0}], Opaque()]),
        "max_background": POSITIVE_COUNT,
        "ig_steps": st.sampled_from([(), (0,), (-1,), (2.5,), ("50",), 50, "50", None, Opaque()]),
    }),
    "report": (call_report, {
        "original": a_callable(),
        "surrogate": st.sampled_from([1, 0.5, "x", b"x", [1, 2], {"abs": 0.1}, Opaque(), True, None]),
        "traces": instance(),
        "out": st.sampled_from([5, 0.5, None, [1], Opaque(), True]),
        "schema": instance(),
        "verification": st.sampled_from([5, "report", [1], Opaque(), True]),
        "rules": st.sampled_from([5, "rules", [1], Opaque(), True]),
        "seed": seed(),
        "n_eval": POSITIVE_COUNT,
        "n_attribution": COUNT,
        "verify_examples": POSITIVE_COUNT,
        "verify_budget_s": SECONDS(),
        "distill_leaves": integer(lambda v: v >= 2),
        "timing_calls": COUNT,
    }),
    "Surrogate.load": (call_surrogate_load, {
        "path": st.sampled_from([5, 0.5, None, [1], Opaque(), True, b"\x00"]),
        "fn": a_callable(optional=True),
        "key": st.sampled_from([5, 0.5, [1], Opaque(), True, b"", "", ["key"]]),
        "allow_unsigned": flag(),
    }),
    "Surrogate.predict_batch": (call_predict_batch, {
        "columns": st.sampled_from([5, 0.5, "columns", None, [1, 2], Opaque(), b"x", True]),
        "check": flag(),
        "precision": choice(("float32", "float64")),
        "out_of_domain": choice(("raise", "nan", "original")),
        "fn": a_callable(),
    }),
}


def _exists(api: str, name: str) -> bool:
    """Options being added alongside (swept once the API has them)."""
    import inspect
    from dataclasses import fields

    from replace import FitConfig

    if api == "fit" and name in ("exact", "wall_ceiling_s"):
        return name in {f.name for f in fields(FitConfig)}
    if (api, name) == ("distill", "exact"):
        return name in inspect.signature(distill).parameters
    return True


SWEEP = [(api, name) for api, (_, params) in CASES.items() for name in params if _exists(api, name)]


@pytest.mark.parametrize(("api", "name"), SWEEP, ids=[f"{api}-{name}" for api, name in SWEEP])
@settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(data=st.data())
def test_bad_argument_is_refused_by_name(api: str, name: str, data: st.DataObject) -> None:
    call, params = CASES[api]
    value = data.draw(params[name], label=name)
    try:
        result = call(name, value)
    except NeuroswapError as exc:
        assert name in str(exc), f"{api}({name}={value!r}) raised {exc!r}, whose message does not name {name!r}"
        return
    except WorkStarted as exc:
        pytest.fail(f"{api}({name}={value!r}) was not refused: work started ({exc})")
    except Exception as exc:  # noqa: BLE001 - the point: anything but a NeuroswapError is a gap
        raise AssertionError(f"{api}({name}={value!r}) raised {type(exc).__name__}, not a NeuroswapError: {exc}") \
            from exc
    pytest.fail(f"{api}({name}={value!r}) was accepted silently (returned {type(result).__name__})")


@pytest.mark.parametrize("columns, named", [({"weight": [1.0]}, "zone"), ({"nope": [1.0]}, "weight"),
                                            ({"weight": [1.0, 2.0], "zone": ["A"]}, "zone")])
def test_columns_that_do_not_fit_the_domain_name_the_argument(columns: dict[str, Any], named: str) -> None:
    """Columns of the right type but the wrong shape are data outside the domain: OutOfDomainError
    naming the argument's column (not `columns`), before the network runs."""
    from probes import OutOfDomainError

    with pytest.raises(OutOfDomainError, match=named):
        surrogate().predict_batch(columns)


def test_sqlite_options_are_refused_for_a_memory_store() -> None:
    with pytest.raises(NeuroswapError, match="readonly=True : is an option of a SQLite store"):
        TraceStore.open("memory://", readonly=True)


def test_the_sweep_covers_every_documented_parameter() -> None:
    """A parameter added to the public API (or to FitConfig / TrainConfig) must join the sweep."""
    import inspect

    targets = {
        "record": record.__call__, "TraceStore.open": TraceStore.open, "store.load": TraceStore.load,
        "store.prune": TraceStore.prune,
        "fit": fit, "swap": swap, "verify": verify, "mine_edge_cases": mine_edge_cases, "distill": distill,
        "attribute": attribute, "report": report, "Surrogate.load": Surrogate.load,
        "Surrogate.predict_batch": Surrogate.predict_batch,
    }
    missing = []
    for api, target in targets.items():
        for param in inspect.signature(target).parameters.values():
            if param.name in ("self",) or param.kind is param.VAR_KEYWORD:
                continue
            if param.name not in CASES[api][1]:
                missing.append(f"{api}({param.name})")
    from dataclasses import fields

    from replace import FitConfig

    missing += [f"fit({f.name})" for f in fields(FitConfig) if f.name not in CASES["fit"][1]]
    missing += [f"TrainConfig({f.name})" for f in fields(TrainConfig)
                if f.name not in CASES["fit(train=TrainConfig(...))"][1]]
    assert not missing, f"parameters the sweep does not cover: {missing}"
