"""Checks of `fit`'s arguments and of its `FitConfig` / `TrainConfig` options.

Each value is checked by name before any call of the legacy function: a wrong type or value
must be refused with a message naming it, never reach numpy or torch, never pass as a silent
number (a string "False" is true; NaN compares false with every bound).
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any, Callable

from probes import Tolerance, Traces
from probes._validation import bad_argument, check_callable, check_choice, check_flag, check_number, check_seed

ACTIVATIONS = ("relu", "silu", "tanh")
SCHEDULES = ("onecycle", "cosine", "constant")
#: torch takes a thread count as a C int.
MAX_THREADS = 2**31 - 1


def check_fit_arguments(fn: Any, *, traces: Any, tolerance: Any, oracle: Any, budget_s: Any, seed: Any,
                        hard_cases: Any, progress: Any) -> list[dict[str, Any]] | None:
    """Check fit's own keywords; returns `hard_cases` as a list of kwargs dicts (None if none)."""
    check_callable("fn", fn, fix="Pass the legacy function itself")
    check_number("budget_s", budget_s, low=0.0, low_inclusive=False, fix="Pass seconds, e.g. budget_s=60.0")
    check_seed("seed", seed)
    check_flag("oracle", oracle, fix="Pass oracle=False to learn from the traces alone")
    check_flag("progress", progress, optional=True, fix="Pass progress=None to show a bar only on a terminal")
    if traces is not None and not isinstance(traces, Traces):
        raise bad_argument("traces", traces, "must be a probes.Traces or None",
                           "Load them with TraceStore.open(uri).load(fn), or build Traces.from_calls(fn, inputs)")
    if tolerance is not None and not isinstance(tolerance, Tolerance):
        raise bad_argument("tolerance", tolerance, "must be a probes.Tolerance or None",
                           "Pass tolerance=Tolerance(abs=..., rel=...)")
    return None if hard_cases is None else _hard_cases(fn, hard_cases)


def _hard_cases(fn: Callable[..., Any], hard_cases: Any) -> list[dict[str, Any]]:
    fix = "Pass kwargs dicts of the legacy function, or the counterexamples of probes.verify or mine_edge_cases"
    if isinstance(hard_cases, (str, bytes, Mapping)) or not isinstance(hard_cases, Iterable):
        raise bad_argument("hard_cases", hard_cases, "must be a list of cases", fix)
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a callable without a signature: the schema decides later
        parameters = None
    open_ended = parameters is None or any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    rows = []
    for case in hard_cases:
        inputs = getattr(case, "inputs", case)
        if not isinstance(inputs, Mapping):
            raise bad_argument("hard_cases", case, "each item must be a kwargs dict or have `.inputs`", fix)
        unknown = [name for name in inputs if not open_ended and name not in parameters]  # type: ignore[operator]
        if unknown:
            raise bad_argument("hard_cases", case, f"{unknown[0]!r} is not an argument of the legacy function", fix)
        rows.append(dict(inputs))
    return rows


def check_options(config: Any) -> None:
    """Check every FitConfig option (and the TrainConfig in `train`) by name."""
    from ._train import TrainConfig

    check_number("target_agreement", config.target_agreement, low=0.0, low_inclusive=False, high=1.0,
                 fix="Pass the validation share within tolerance that counts as met, e.g. 0.999")
    for name in ("ensemble_size", "max_candidates", "test_size", "max_experts"):
        check_number(name, getattr(config, name), low=1, integer=True)
    for name in ("rounds", "rounds_patience"):
        check_number(name, getattr(config, name), low=0, integer=True, fix=f"Pass {name}=0 for none")
    if config.initial_samples is not None:
        check_number("initial_samples", config.initial_samples, low=1, integer=True,
                     fix="Pass None to size the first draws from the budget")
    if config.max_oracle_calls is not None:
        check_number("max_oracle_calls", config.max_oracle_calls, low=0, integer=True, fix="Pass None for no cap")
    if config.threads is not None:
        check_number("threads", config.threads, low=1, high=MAX_THREADS, integer=True,
                     fix="Pass None for one torch thread")
    for name in ("widths", "depths"):
        value = getattr(config, name)
        if not isinstance(value, (tuple, list)) or not value or not all(
                isinstance(item, int) and not isinstance(item, bool) and 1 <= item < 2**31 for item in value):
            raise bad_argument(name, value, "must be a non-empty tuple of integers >= 1",
                               f"Pass e.g. {name}={'(16, 32, 64)' if name == 'widths' else '(2, 3)'}")
    for name, choices in (("search", ("budget", "equal", "halving")), ("sampling", ("paths", "uniform")),
                          ("rounds_when", ("data_limited", "always")), ("distributed", ("auto", "off")),
                          ("budget_clock", ("wall", "work")), ("exact", ("auto", "off"))):
        check_choice(name, getattr(config, name), choices)
    if config.activation is not None:
        check_choice("activation", config.activation, ACTIVATIONS, "Pass None for silu (labels: relu)")
    if not (isinstance(config.path_aware, bool) or (isinstance(config.path_aware, str) and config.path_aware == "auto")):
        raise bad_argument("path_aware", config.path_aware, "must be 'auto', True or False",
                           "Pass 'auto' to try gate+experts when branch paths matter")
    for name in ("boundary_share", "trace_share", "path_budget", "min_path_share"):
        check_number(name, getattr(config, name), low=0.0, high=1.0, fix="Pass a share in [0, 1]")
    check_number("validation_share", config.validation_share, low=0.0, low_inclusive=False, high=1.0,
                 fix="Pass e.g. validation_share=0.15")
    if config.validation_share >= 1.0:
        raise bad_argument("validation_share", config.validation_share, "must be < 1 (some rows must train)",
                           "Pass e.g. validation_share=0.15")
    for name in ("hard_weight", "near_scale"):
        check_number(name, getattr(config, name), low=0.0, low_inclusive=False)
    if not (isinstance(config.trace_weight, str) and config.trace_weight == "balance"):
        check_number("trace_weight", config.trace_weight, low=0.0,
                     fix="Pass 'balance' (traces weigh as much as all oracle rows) or a weight >= 0")
    for name in ("embeddings", "code_cuts"):
        check_flag(name, getattr(config, name))
    if config.device is not None:
        _check_device(config.device)
    check_number("round_noise_z", config.round_noise_z, low=0.0,
                 fix="Pass e.g. 2.0 (a round falls only where the baseline wins by two standard errors), or 0")
    check_number("calibration_rate", config.calibration_rate, low=0.0, low_inclusive=False, high=1.0)
    check_number("calibration_share", config.calibration_share, low=0.0, high=1.0)
    check_number("calibration_holdout", config.calibration_holdout, low=0.0, high=1.0,
                 fix="Pass a share in [0, 1), e.g. 0.1 (0: the guard calibrates on whole-domain rows only)")
    if config.domain_margin is not None:
        check_number("domain_margin", config.domain_margin, low=0.0)
    ceiling = getattr(config, "wall_ceiling_s", None)
    if ceiling is not None:
        check_number("wall_ceiling_s", ceiling, low=0.0, low_inclusive=False, allow_inf=True,
                     fix="Pass seconds, math.inf for no ceiling, or None for the default")
    train = config.train
    if not isinstance(train, TrainConfig):
        raise bad_argument("train", train, "must be a replace.TrainConfig", "Pass train=TrainConfig(lr=..., ...)")
    check_number("train.lr", train.lr, low=0.0, low_inclusive=False, fix="Pass e.g. TrainConfig(lr=1e-2)")
    check_number("train.weight_decay", train.weight_decay, low=0.0)
    if train.batch_size is not None:
        check_number("train.batch_size", train.batch_size, low=1, integer=True, fix="Pass None for about 16 steps per epoch")
    check_number("train.max_epochs", train.max_epochs, low=1, integer=True)
    check_number("train.patience", train.patience, low=0, integer=True)
    check_number("train.min_delta", train.min_delta, low=0.0)
    check_choice("train.schedule", train.schedule, SCHEDULES)
    if train.max_grad_norm is not None:
        check_number("train.max_grad_norm", train.max_grad_norm, low=0.0, low_inclusive=False,
                     fix="Pass None for no clipping")


def _check_device(device: Any) -> None:
    fix = "Pass None (cuda when available, else cpu), 'cpu' or 'cuda:0'"
    if not isinstance(device, str):
        raise bad_argument("device", device, "must be a torch device name or None", fix)
    import torch

    try:
        torch.device(device)
    except (RuntimeError, ValueError):  # torch's parse of the name: the name is the problem
        raise bad_argument("device", device, "is not a torch device name", fix) from None
