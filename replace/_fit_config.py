"""`fit`'s options (`FitConfig`, checked by `_config`), its constants (the budget's shares, the
work clock's wall ceiling, nominal costs of judged rows) and the check of `log_inputs` against a
schema. The bottom of fit's stages: `_pool`, `_trainer`, `_search`, `_rounds`, `_fit_metrics`,
`_fit_run`, `_fit` and `_distributed` import it; it imports none of them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from probes import Schema
from probes._validation import bad_argument

from probes import _clock
from ._options import check_options
from ._train import TrainConfig

OTHER_PATHS = "*"
SEARCHES = ("budget", "equal", "halving")

# -- the budget's oracle calls (sized from the measured cost of a call; see `_pool.oracle_draws`) -
#: Fewest rows (traces and oracle calls together) fit learns from: a budget whose share for the
#: first oracle draws (`N0_SHARE`) buys fewer is refused at once, naming the cost of a call and
#: the budget it would need.
MIN_ROWS = 64
#: Most of budget_s the first draws take when their floor of 256 calls is more than the usual
#: quarter (a slow function): the floor shrinks to what this share buys.
N0_SHARE = 0.4
#: The same for the test set's floor of 200 inputs.
TEST_SHARE = 0.15
#: Most of budget_s (on the wall clock) the measurement of a call's cost takes (at least one call).
CALIBRATE_SHARE = 0.02
#: The latest the guard's calibration calls may end, as a multiple of budget_s from the start
#: (they are reserved up front; this bounds them when training overran its deadline), unless
#: that leaves them less than GUARD_FLOOR x budget_s from when they start.
GUARD_END = 1.4
GUARD_FLOOR = 0.1
#: Default wall ceiling of a work-clock fit: CEILING_FACTOR x budget_s + CEILING_GRACE_S. Larger than
#: verify's 4 x + 5 s: training steps are charged their cost on an unloaded core, and on a shared,
#: loaded CI machine (2 cores, load 4-6.5) a fit's wall time was 6-28x its work (the fee fit of
#: tests/replace/test_fit_work_clock.py at budget_s=2: 17-56 s; its tariff at 8: 50-150 s), which
#: must not end an ordinary fit early. A sleeping or waiting function, which the work clock cannot
#: see, still ends.
CEILING_FACTOR = 20.0
CEILING_GRACE_S = 120.0


def _wall_ceiling(option: float | None, budget_s: float) -> float | None:
    """The wall ceiling of a work-clock fit (None: none)."""
    if option is None:
        return CEILING_FACTOR * budget_s + CEILING_GRACE_S
    return None if math.isinf(option) else float(option)


class _FitWorkClock(_clock.WorkClock):
    """The work clock of a fit. Past its wall ceiling every charge jumps past every deadline too:
    fit sizes some steps from the time left with a floor (a search slice gets at least 0.2 s),
    and such a step, planned after the ceiling's one jump, must still end at its first check."""

    def charge(self, seconds: float) -> None:
        super().charge(seconds)
        if self.ceiling_hit:
            self._seconds += _clock.CEILING_JUMP_S


@dataclass(frozen=True)
class FitConfig:
    """`fit`'s advanced options, in one object (public name `FitOptions`): pass
    `fit(..., advanced=FitOptions(widths=(64,), rounds=0))`, or any of them as a keyword argument
    of `fit` as before (`fit(..., rounds=0)`). The few a user usually sets (budget_s, tolerance,
    oracle, seed, progress) are `fit`'s own arguments; these are for tuning and experiments, and
    their defaults are chosen by the benchmarks in bench/ (README, "fit's defaults")."""

    target_agreement: float = 0.999      # validation share within tolerance that counts as "met"
    ensemble_size: int = 3               # members per network (spread for the guarded swap)
    widths: tuple[int, ...] = (16, 32, 64, 128)  # hidden widths the search may try
    depths: tuple[int, ...] = (2, 3)            # hidden layers the search may try
    max_candidates: int = 4              # architectures tried per model family
    search: str = "budget"               # "budget": halving judged at the final length (see _search); "equal"; "halving"
    activation: str | None = None        # None: silu for real outputs, relu for labels
    path_aware: str | bool = "auto"      # "auto": try gate+experts when paths matter
    sampling: str = "paths"              # "paths": Turaco + error-driven rounds (labels: least certain); "uniform": domain
    initial_samples: int | None = None   # oracle draws before the first round (None: from the budget)
    max_oracle_calls: int | None = None  # cap on training oracle calls
    rounds: int = 3                      # refinement rounds of oracle sampling
    rounds_when: str = "data_limited"    # "data_limited": only while val loss > 1.5 x train loss; "always"
    rounds_patience: int = 1             # rounds in a row whose model is not kept before rounds stop (0: never)
    round_baseline: str = "same_time"    # a round must beat on traffic: "same_time", the model before it trained as long
                                         # on its own rows (each gets half the round's time); "before": that model as it was
    round_noise_z: float = 0.0           # with same_time: drop a round only where the baseline wins by more than this many
                                         # standard errors of a paired comparison (0: on any loss; see _rounds)
    boundary_share: float = 0.5          # share of a round's focused calls drawn between rows on different paths
    test_size: int = 2000                # fresh inputs for the final metrics
    hard_weight: float = 4.0             # training weight of hard cases
    near_scale: float = 0.03             # jitter (share of the range) for inputs near known ones
    trace_share: float = 0.5             # share of oracle draws placed near recorded traces
    path_budget: float = 0.2             # share of budget_s for path-traced calls (they are ~100x slower)
    max_experts: int = 24                # most branch paths with an expert of their own (the rest share one)
    min_path_share: float = 0.005        # paths rarer than this share go to the shared "*" expert
    train: TrainConfig = field(default_factory=TrainConfig)  # optimiser settings (learning rate, batch, patience)
    device: str | None = None            # None: cuda when available, else cpu
    threads: int | None = None           # torch threads (None: 1; small networks are overhead-bound)
    validation_share: float = 0.15       # share of the rows held out to judge and choose models
    trace_weight: str | float = "balance"  # "balance": traces weigh as much as all oracle rows together
    log_inputs: tuple[str, ...] | str = ()  # arguments encoded as log(x); "positive": every real/integer one with low > 0
    embeddings: bool = True              # categoricals with many values through a learned, shared embedding
    code_cuts: bool = True               # 0/1 input columns for the comparisons the code makes (`age < 30`)
    budget_clock: str = "wall"           # "work": budget_s counts nominal work, so a seed gives one surrogate at any load
    distributed: str = "auto"            # "auto": under torchrun (WORLD_SIZE > 1) hand off to fit_distributed; "off"
    calibration_rate: float = 0.001      # smallest served error rate the guard's calibration is sized to certify
    calibration_share: float = 0.15      # most of budget_s the calibration's oracle calls may take
    calibration_holdout: float = 0.4     # share of the traces held out of training for the guard (0: none; see _calibration)
    domain_margin: float | None = None   # share of span added each side of ranges fit infers from traces (None: 0.05 with oracle, else 0; see _margins)
    wall_ceiling_s: float | None = None  # budget_clock="work": wall time that ends the fit, not reproducibly (None: see _wall_ceiling)
    exact: str = "auto"                  # "auto": the code's exact program first, exact expressions on the paths they reproduce (hybrid, see _hybrid, _exact_program); "off"


FitOptions = FitConfig  # the public name of fit's advanced options


def merged_options(advanced: Any, options: Mapping[str, Any]) -> dict[str, Any]:
    """`fit`'s keyword options over an advanced-options object: one dict of options. An option
    set both ways (the object's value not the default) is refused by name, since which one was
    meant cannot be known."""
    if advanced is None:
        return dict(options)
    if not isinstance(advanced, FitConfig):
        raise bad_argument("advanced", type(advanced).__name__, "must be a replace.FitOptions",
                           "Pass advanced=FitOptions(widths=(64,), rounds=0), or the options as keyword arguments")
    defaults = FitConfig()
    out = {f.name: getattr(advanced, f.name) for f in fields(FitConfig)}
    for name, value in options.items():
        if name in out and out[name] != getattr(defaults, name) and out[name] != value:
            raise bad_argument(name, value, f"is also set in advanced= (to {out[name]!r})",
                               f"Set {name} in one place: the keyword or the FitOptions object")
        out[name] = value
    return out


def _config(options: Mapping[str, Any]) -> FitConfig:
    known = {f.name for f in fields(FitConfig)}
    for name in options:
        if name not in known:
            raise bad_argument(name, options[name], "is not an option of fit",
                               f"Options are: {', '.join(sorted(known))}")
    config = FitConfig(**options)
    check_options(config)  # every option by name, before the ordered checks below compare them
    if not 0 < config.target_agreement <= 1:
        raise bad_argument("target_agreement", config.target_agreement, "must be in (0, 1]")
    if config.ensemble_size < 1:
        raise bad_argument("ensemble_size", config.ensemble_size, "must be >= 1")
    if config.rounds_when not in ("data_limited", "always"):
        raise bad_argument("rounds_when", config.rounds_when, "must be 'data_limited' or 'always'")
    if config.round_baseline not in ("before", "same_time"):
        raise bad_argument("round_baseline", config.round_baseline, "must be 'before' or 'same_time'",
                           "Pass round_baseline='same_time' to keep a round only if it beats as much training without it")
    if config.budget_clock not in _clock.CLOCKS:
        raise bad_argument("budget_clock", config.budget_clock, "must be 'wall' or 'work'",
                           "Pass budget_clock='work' for a fit that is the same at any machine load")
    if config.distributed not in ("auto", "off"):
        raise bad_argument("distributed", config.distributed, "must be 'auto' or 'off'",
                           "Pass distributed='off' to train one whole model in every process")
    if config.search not in SEARCHES:
        raise bad_argument("search", config.search, "must be 'budget', 'equal' or 'halving'",
                           "Pass search='budget' (the default) to judge shapes at the length the chosen one trains")
    if not 0.0 < config.calibration_rate < 1.0:
        raise bad_argument("calibration_rate", config.calibration_rate, "must be in (0, 1)",
                           "Pass the smallest max_error_rate the guarded swap should certify, e.g. 0.001")
    if not 0.0 <= config.calibration_share < 1.0:
        raise bad_argument("calibration_share", config.calibration_share, "must be in [0, 1)",
                           "Pass the share of budget_s the guard's calibration calls may take, e.g. 0.15")
    if config.round_noise_z and config.round_baseline != "same_time":
        raise bad_argument("round_noise_z", config.round_noise_z, "only acts with round_baseline='same_time'",
                           "Pass round_baseline='same_time' (the default) with it, or leave round_noise_z at 0")
    if config.calibration_holdout >= 1.0:
        raise bad_argument("calibration_holdout", config.calibration_holdout, "must be < 1 (some traces must train)",
                           "Pass e.g. 0.1 to train on more of the traces; the guard's production calibration gets fewer")
    if config.sampling not in ("paths", "uniform"):
        raise bad_argument("sampling", config.sampling, "must be 'paths' or 'uniform'")
    if not 0.0 <= config.boundary_share <= 1.0:
        raise bad_argument("boundary_share", config.boundary_share, "must be in [0, 1]",
                           "Pass 0 to spend every focused call by Turaco's rule alone")
    if isinstance(config.rounds_patience, bool) or not isinstance(config.rounds_patience, int) or config.rounds_patience < 0:
        raise bad_argument("rounds_patience", config.rounds_patience, "must be an integer >= 0",
                           "Pass 0 to run every round whatever its result")
    if config.domain_margin is not None:
        from ._margins import check_margin

        check_margin(config.domain_margin)
    ceiling = config.wall_ceiling_s
    if ceiling is not None and (isinstance(ceiling, bool) or not isinstance(ceiling, (int, float)) or not ceiling > 0):
        raise bad_argument("wall_ceiling_s", ceiling, "must be a number of seconds > 0 (math.inf for no ceiling) or "
                           f"None for the default ({CEILING_FACTOR:g} x budget_s + {CEILING_GRACE_S:g} s)",
                           "Pass e.g. wall_ceiling_s=600: a work-clock fit that reaches it ends there, not reproducibly")
    if config.exact not in ("auto", "off"):
        raise bad_argument("exact", config.exact, "must be 'auto' or 'off'",
                           "Pass exact='off' for a purely neural surrogate (no exact expressions on branch paths)")
    return config


_JUDGE_ROW_S = 5e-6  # work clock: numpy inference plus the per-row comparison of one judged row
GUARD_ROW_S = 3e-5  # scoring one calibration row for the guard (features, float64 reference pass, comparison)


def _log_inputs(option: Any, schema: Schema) -> tuple[str, ...]:
    """The arguments `log_inputs` names, checked: real or integer, with a positive lower bound."""
    numeric = {f.name: f for f in schema.fields if f.kind in ("real", "integer")}
    if option == "positive":
        return tuple(name for name, f in numeric.items() if float(f.low) > 0)  # type: ignore[arg-type]
    if isinstance(option, str) or not isinstance(option, (tuple, list)) \
            or not all(isinstance(name, str) for name in option):
        raise bad_argument("log_inputs", option, "must be 'positive' or a tuple of argument names",
                           "Pass log_inputs=('price', 'rate') or log_inputs='positive'")
    for name in option:
        if name not in numeric or float(numeric[name].low) <= 0:  # type: ignore[arg-type]
            raise bad_argument("log_inputs", option, f"{name!r} is not a real or integer argument with low > 0",
                               f"Name arguments among {sorted(n for n, f in numeric.items() if float(f.low) > 0)}")
    return tuple(option)
