"""Which of `fit`'s options reach `fit_distributed` when fit is launched by torchrun.

Every option is either forwarded (under fit_distributed's name), applied by `fit` before the
hand-off, or refused by name with the reason, so none is ever dropped silently.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from probes._validation import bad_argument

from ._fit_config import FitConfig

__all__ = ["TORCHRUN_FORWARDED", "TORCHRUN_REFUSED", "torchrun_arguments"]


# -- fit under torchrun: which of fit's options reach fit_distributed -----------------------------
#: FitConfig options that `fit` launched by torchrun honours: passed on to fit_distributed (or to
#: the single-process shape search rank 0 runs first), or applied by `fit` before the hand-off.
TORCHRUN_FORWARDED = frozenset({
    "initial_samples",   # -> oracle_samples
    "test_size",         # -> test_samples
    "threads",
    "log_inputs",
    "validation_share",
    "train",             # lr, batch_size, max_epochs, patience (the rest is refused, see _TRAIN_FORWARDED)
    "ensemble_size", "widths", "depths", "max_candidates", "search", "activation",  # -> search_options
    "distributed",       # decides the hand-off itself
    "domain_margin",     # applied by fit to the inferred schema before the hand-off
})
#: FitConfig options fit_distributed cannot honour, and why: refused by name when they differ from
#: their default (or from the value in _TORCHRUN_MATCHES, which is what fit_distributed does anyway).
#: An option in neither table is refused too (with a generic reason), so none is ever dropped silently.
TORCHRUN_REFUSED = {
    "target_agreement": "fit_distributed trains one shape to its epoch/patience limits, with no target to meet",
    "path_aware": "fit_distributed trains one plain ensemble, without a gate and per-path experts",
    "sampling": "fit_distributed draws its oracle rows uniformly from the schema",
    "max_oracle_calls": "fit_distributed's oracle calls are set by initial_samples (its oracle_samples), "
                        "plus the rank-0 shape search",
    "rounds": "fit_distributed draws its oracle rows once, with no refinement rounds",
    "rounds_when": "fit_distributed has no refinement rounds",
    "rounds_patience": "fit_distributed has no refinement rounds",
    "round_baseline": "fit_distributed has no refinement rounds",
    "round_noise_z": "fit_distributed has no refinement rounds",
    "boundary_share": "fit_distributed has no refinement rounds",
    "hard_weight": "under torchrun hard cases join the traces with the weight of any row",
    "near_scale": "fit_distributed draws no oracle rows near the traces",
    "trace_share": "fit_distributed draws no oracle rows near the traces",
    "path_budget": "fit_distributed traces no branch paths",
    "max_experts": "fit_distributed trains no per-path experts",
    "min_path_share": "fit_distributed trains no per-path experts",
    "device": "fit_distributed puts each rank on cuda:LOCAL_RANK when CUDA is available, else on the CPU",
    "trace_weight": "fit_distributed weighs every row alike",
    "embeddings": "fit_distributed always embeds categoricals with many values",
    "code_cuts": "fit_distributed adds no columns for the code's comparisons",
    "budget_clock": "fit_distributed's budget is wall time on every rank",
    "calibration_rate": "fit_distributed does not calibrate the guard",
    "calibration_share": "fit_distributed does not calibrate the guard",
    "calibration_holdout": "fit_distributed does not calibrate the guard",
    "wall_ceiling_s": "fit_distributed's budget is wall time on every rank, with no work clock to bound",
    "exact": "fit_distributed traces no branch paths, so it fits no exact expressions on them",
}
#: values of refused options that describe what fit_distributed does anyway (accepted like the default)
_TORCHRUN_MATCHES: dict[str, tuple[Any, ...]] = {
    "path_aware": (False,), "sampling": ("uniform",), "rounds": (0,), "code_cuts": (False,), "exact": ("off",),
}
#: TrainConfig fields fit_distributed takes, under its own names
_TRAIN_FORWARDED = {"lr": "lr", "batch_size": "batch_size", "max_epochs": "epochs", "patience": "patience"}
#: FitConfig options the rank-0 shape search (a single-process fit) takes from `fit`
_SEARCH_FORWARDED = ("ensemble_size", "widths", "depths", "max_candidates", "search", "activation")
#: set by the search itself
_SEARCH_FIXED = ("path_aware", "distributed", "log_inputs")


def _same(value: Any, default: Any) -> bool:
    """`value == default`, but False is not 0 (path_aware=False is a choice, rounds=0 another)."""
    if value is default:
        return True
    if isinstance(value, bool) != isinstance(default, bool):
        return False
    try:
        return bool(value == default)
    except Exception:  # noqa: BLE001 - a value whose == gives no bool (an array)
        return False


def torchrun_arguments(config: Any, *, oracle: bool) -> dict[str, Any]:
    """fit_distributed's keyword arguments for `fit`'s options `config` (a FitConfig), or
    InvalidArgument naming the first option it cannot honour (only when set away from its default)."""
    defaults = FitConfig()
    way_out = "Pass distributed='off' to train one whole model in every process (all of fit's options), or leave "
    for item in fields(FitConfig):
        name = item.name
        if name in TORCHRUN_FORWARDED:
            continue
        value, default = getattr(config, name), getattr(defaults, name)
        if _same(value, default) or any(_same(value, v) for v in _TORCHRUN_MATCHES.get(name, ())):
            continue
        reason = TORCHRUN_REFUSED.get(name, "fit_distributed has no counterpart for it")
        raise bad_argument(name, value, f"is not supported by fit under torchrun (WORLD_SIZE > 1): {reason}",
                           way_out + f"{name} unset")
    train, train_defaults = config.train, type(config.train)()
    out: dict[str, Any] = {}
    for item in fields(train):
        value = getattr(train, item.name)
        if _same(value, getattr(train_defaults, item.name)):
            continue
        if item.name not in _TRAIN_FORWARDED:
            taken = ", ".join(_TRAIN_FORWARDED)
            raise bad_argument("train", train, f"train.{item.name}={value!r} is not supported by fit under torchrun "
                               f"(WORLD_SIZE > 1): fit_distributed takes {taken} only",
                               way_out + f"train.{item.name} at its default")
        out[_TRAIN_FORWARDED[item.name]] = value
    search = {name: getattr(config, name) for name in _SEARCH_FORWARDED
              if not _same(getattr(config, name), getattr(defaults, name))}
    out.update(
        oracle_samples=int(config.initial_samples or 4000) if oracle else 0,
        test_samples=int(config.test_size) if oracle else 0,
        threads=config.threads or 1,
        log_inputs=config.log_inputs,
        validation_share=float(config.validation_share),
        search_options=search or None,
    )
    return out
