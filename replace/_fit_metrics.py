"""Fit's last stages: the fidelity measured on fresh inputs, the manifest and metrics of the
finished surrogate (`finished_surrogate`), and the guard's calibration on rows nothing else saw
(`calibrate_guard`)."""

from __future__ import annotations

import math
import time
from dataclasses import fields, replace
from typing import Any, Callable

import numpy as np

from probes import ErrorInfo, Schema, Tolerance, source_hash

from probes import _clock
from . import _manifest as mf
from ._calibration import Calibration, fit_predictor_on, label
from ._encoding import InputEncoder
from ._fidelity import compare, summarise
from ._fit_config import GUARD_END, GUARD_FLOOR, GUARD_ROW_S, FitConfig
from ._pool import Oracle, Pool
from ._sampling import take
from ._predictions import SurrogateMetrics
from ._surrogate import Surrogate
from ._trainer import _Candidate, _Data


def finished_surrogate(best: _Candidate, data: _Data, pool: Pool, orc: Oracle, enc: InputEncoder, schema: Schema,
                       tolerance: Tolerance, config: FitConfig, *, fn: Callable[..., Any], fn_name: str,
                       signature: list[dict[str, Any]], seed: int, oracle: bool, budget_s: float, started: float,
                       test: tuple[dict[str, np.ndarray], list[Any], list[ErrorInfo | None], list[str | None]],
                       test_calls: int, hard_skipped: int, curve: list[tuple[int, float, float]],
                       search_log: list[dict[str, Any]], rounds_log: list[dict[str, Any]],
                       exact_found: dict[str, Any], exact_report: dict[str, Any], program: Any,
                       program_report: dict[str, Any], bar: Any) -> Surrogate:
    """Step 9 of `_fit`: the chosen model measured on the held-out test inputs, as a `Surrogate`
    with its metrics and manifest (and the exact paths and program it answers by)."""
    test_columns, test_outputs, test_errors, test_paths = test
    out = best.surrogate.output_encoder
    bar.update("measuring fidelity")
    surrogate = best.surrogate
    metrics_test: dict[str, Any] = {}
    if test_outputs:
        details = surrogate.predict_details(test_columns)
        result = compare(out.kind, test_outputs, test_errors, details.outputs, details.errors, tolerance)
        metrics_test = summarise(result, test_paths if any(p is not None for p in test_paths) else None)
    X_all = data.X
    manifest = {
        "training": {
            "data_hash": mf.data_hash(X_all, data.y), "rows": len(pool), "seed": seed,
            "oracle": oracle, "oracle_calls": orc.calls, "budget_s": budget_s,
            "sources": {s: pool.sources.count(s) for s in sorted(set(pool.sources))},
            "hard_cases_skipped": hard_skipped,
        },
        "hyperparameters": mf.plain({**{f.name: getattr(config, f.name) for f in fields(config) if f.name != "train"},
                                     "train": {f.name: getattr(config.train, f.name) for f in fields(config.train)},
                                     "architecture": best.arch.to_dict(),
                                     "embeddings": enc.embedding_dims() if config.embeddings else {}}),
        "versions": mf.versions(),
    }
    metrics = SurrogateMetrics(
        agreement=metrics_test.get("agreement", math.nan),
        outcome_agreement=metrics_test.get("outcome_agreement", math.nan),
        mean_error=metrics_test.get("mean_error", math.nan),
        max_error=metrics_test.get("max_error", math.nan),
        n_test=metrics_test.get("n", 0),
        per_path=metrics_test.get("per_path", {}),
        validation_agreement=best.agreement,
        tolerance_met=bool(metrics_test.get("agreement", 0.0) >= config.target_agreement),
        curve=tuple((int(e), float(t), float(v)) for e, t, v in curve),
        oracle_calls=orc.calls,
        path_calls=orc.path_calls,
        test_calls=test_calls,
        training_rows=len(pool),
        wall_time_s=time.monotonic() - started,
        architecture=best.arch.label,
        parameters=best.params,
        search=tuple(search_log),
        rounds=tuple(rounds_log),
        exact_paths={p: {"expression": e.to_python(), "rows": exact_report[p]["rows"],
                         "held_out": exact_report[p]["held_out"]} for p, e in exact_found.items()},
    )
    surrogate = Surrogate(schema=schema, tolerance=tolerance, input_encoder=enc, output_encoder=out,
                          weights=best.weights, signature=signature, function=fn_name, source_hash=source_hash(fn),
                          metrics=metrics, manifest=manifest)
    surrogate._use_expressions(exact_found)
    surrogate._use_program(program)
    if config.exact == "auto":  # per path bucket: exact or neural, and why; the exact program's account
        surrogate.manifest["training"]["exact"] = exact_report
        surrogate.manifest["training"]["exact_program"] = program_report
    return surrogate


def calibrate_guard(surrogate: Surrogate, pool: Pool, val: np.ndarray, orc: Oracle, schema: Schema,
                    config: FitConfig, *, oracle: bool, seed: int, budget_s: float, n_cal_domain: int | None,
                    cal_reserved: float | None, full_deadline: float, cal_held: dict[str, Any] | None,
                    cut: list[str], budget_info: dict[str, Any], bar: Any) -> Surrogate:
    """Step 10 of `_fit`: the guard's error predictor on the validation rows, its calibration
    sets (domain rows labelled now by the oracle, within the time kept for them up front, and the
    held-out production traces), and the budget's account in the manifest."""
    clock = _clock.current()
    bar.update("calibrating the guard")
    val_columns = take(pool.columns, val)
    predictor = fit_predictor_on(surrogate, val_columns, [pool.outputs[i] for i in val],
                                 [pool.errors[i] for i in val], seed=seed)
    cal_sets = []
    cal_calls = 0
    cal_rows_kept: dict[str, Any] = {}
    if oracle:
        orc.path_budget_s = 0.0  # plain calls: the calibration needs outcomes, not paths
        cal_rng = np.random.default_rng(seed + 104729)
        plan = [("domain", n_cal_domain)]
        # their time was kept up front; past an overrun of training, they end by GUARD_END x budget_s,
        # or take a tenth of it at least (all of a fast function's rows, whose loop costs more than
        # the calls measured) unless the wall ceiling was hit
        cal_deadline = min(full_deadline + (GUARD_END - 1.0) * budget_s, max(full_deadline, clock.now() + cal_reserved))
        if not clock.ceiling_hit:
            cal_deadline = max(cal_deadline, clock.now() + GUARD_FLOOR * budget_s)
        for source, n_rows in plan:
            if n_rows <= 0:
                continue
            columns = schema.sample_columns(n_rows, rng=cal_rng)
            outputs, errors, _ = orc.call(schema.rows(columns), count=False, deadline=cal_deadline)
            if len(outputs) < n_rows:
                cut.append(f"guard calibration ({source}): {len(outputs)} of {n_rows} rows")
                columns = take(columns, np.arange(len(outputs)))
            if not outputs:
                continue
            cal_calls += len(outputs)
            cal_rows_kept[source] = (columns, outputs, errors)
            cal_sets.append(label(surrogate, columns, outputs, errors, source=source, predictor=predictor))
            clock.charge(GUARD_ROW_S * len(outputs))
    if cal_held is not None:
        cal_rows_kept["production"] = (cal_held["columns"], cal_held["outputs"], cal_held["errors"])
        cal_sets.append(label(surrogate, cal_held["columns"], cal_held["outputs"], cal_held["errors"],
                              source="production", predictor=predictor))
        clock.charge(GUARD_ROW_S * len(cal_held["outputs"]))
    surrogate.calibration = Calibration(predictor, {c.source: c for c in cal_sets}, cal_calls)
    #: the labelled rows behind the guard (validation rows the predictor learned on, calibration
    #: rows by source), in this process only, for benchmarks that rescore them (not saved)
    surrogate.guard_rows_ = {"validation": (val_columns, [pool.outputs[i] for i in val], [pool.errors[i] for i in val]),
                             **cal_rows_kept}
    surrogate.manifest["training"]["calibration_calls"] = cal_calls
    budget_info.update(clock=config.budget_clock, wall_ceiling_s=getattr(clock, "wall_ceiling_s", None),
                       wall_ceiling_hit=bool(clock.ceiling_hit))
    surrogate.manifest["training"]["budget"] = budget_info
    surrogate.metrics = replace(surrogate.metrics, calibration_calls=cal_calls)
    surrogate.training_data_ = {"columns": pool.columns, "outputs": pool.outputs, "errors": pool.errors,
                                "paths": pool.paths, "weights": pool.weights, "sources": pool.sources}
    return surrogate
