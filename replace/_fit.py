"""`fit`: learn a surrogate of a legacy function from its traces and, as an oracle, from itself.

The loop: draw inputs (the schema's domain, and the neighbourhood of recorded traffic), label
them by calling the function (tracing the branch path of as many calls as the time allows),
search a few small architectures (plain MLP ensembles, and a gate plus one expert per branch
path when paths matter), then spend further oracle calls where the error is, per path in
Turaco's proportion, until the tolerance is met or the budget is spent. Fidelity is finally
measured on fresh inputs that training never saw.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import sys
import time
import warnings
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from probes import ErrorInfo, Schema, Tolerance, Traces, function_name, source_hash
from probes._identity import kwargs_caller
from probes._paths import call_with_path
from probes._traces import column_array
from probes._validation import bad_argument
from probes._report import wilson_interval

from probes import _clock
from . import _manifest as mf
from ._calibration import Calibration, calibration_sizes, fit_predictor_on, held_out_count, label
from ._cuts import comparison_cuts
from ._encoding import InputEncoder, OutputEncoder
from ._fidelity import compare, summarise
from ._models import Architecture, ModelWeights, batched_mlp, expert_bank, make_blocks
from ._sampling import concat_columns, draw_between, draw_near, take, turaco_allocation
from ._surrogate import Surrogate, SurrogateMetrics
from ._options import check_fit_arguments, check_options
from ._train import BlockLoss, SurrogateLoss, TrainConfig, TrainResult, polish_model, train_model
from ._fit_config import (CALIBRATE_SHARE, CEILING_FACTOR, CEILING_GRACE_S, GUARD_END, GUARD_FLOOR, GUARD_ROW_S,  # noqa: F401
                          MIN_ROWS, N0_SHARE, OTHER_PATHS, TEST_SHARE, _JUDGE_ROW_S, FitConfig, _config, _FitWorkClock,
                          _log_inputs, _wall_ceiling)
from ._pool import (Oracle, Pool, _balance_traces, _columns_from_rows, _default_tolerance, _hard_rows,  # noqa: F401
                    _is_numeric, _outcome_key, _refuse_budget, _temper_hard_weights)


# -- data ---------------------------------------------------------------------------------------


# -- progress -----------------------------------------------------------------------------------

class _Progress:
    def __init__(self, enabled: bool, budget_s: float, clock: Any):
        self.enabled = enabled
        self.budget = budget_s
        self.clock = clock
        self.start = clock.now()
        self._progress = None
        self._task = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("[bold]fit[/] {task.description}"), BarColumn(),
                                      TimeElapsedColumn(), console=Console(stderr=True), transient=False)
            self._progress.start()
            self._task = self._progress.add_task("starting", total=budget_s)

    def update(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=text,
                                  completed=min(self.budget, self.clock.now() - self.start))

    def close(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self.budget)
            self._progress.stop()


# -- training helpers ---------------------------------------------------------------------------

@dataclass
class _Data:
    X: np.ndarray          # encoded inputs (all rows)
    y: np.ndarray          # packed targets [reg | class | weight]
    train: np.ndarray      # indices
    val: np.ndarray


@dataclass
class _Candidate:
    arch: Architecture
    weights: ModelWeights
    surrogate: Surrogate
    agreement: float
    excess: float
    params: int
    seconds: float
    curve: list[tuple[int, float, float]]
    state: Any = None
    buckets: list[str] | None = None


def _device(config: FitConfig) -> Any:
    import torch

    if config.device:
        return torch.device(config.device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _path_buckets(paths: Sequence[str | None], config: FitConfig) -> list[str]:
    """The paths that get their own expert (frequent enough), then "*" for the rest if any."""
    known = [p for p in paths if p is not None]
    if not known:
        return []
    values, counts = np.unique(np.asarray(known, dtype=object), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    limit = max(int(config.min_path_share * len(known)), 16)
    keep = [str(values[i]) for i in order if counts[i] >= limit][: config.max_experts]
    rest = sum(int(counts[i]) for i in order if str(values[i]) not in keep)
    if rest:
        keep.append(OTHER_PATHS)
    return keep



class _Trainer:
    """Trains architectures on the pool and judges them on the validation split."""

    def __init__(self, fn_name: str, schema: Schema, tolerance: Tolerance, signature: list[dict[str, Any]],
                 enc: InputEncoder, out: OutputEncoder, config: FitConfig, device: Any, seed: int):
        self.fn_name = fn_name
        self.schema = schema
        self.tolerance = tolerance
        self.signature = signature
        self.enc = enc
        self.out = out
        self.config = config
        self.device = device
        self.seed = seed
        #: expressions found per path bucket's rows (see `_hybrid`), shared by every model judged
        self.exact_cache: dict[Any, Any] = {}

    def _embeddings(self) -> Any:
        """Embedded one-hot blocks of many-valued categoricals (None when off or none)."""
        return (self.enc.embedding_blocks() or None) if self.config.embeddings else None

    def data(self, pool: Pool, val: np.ndarray) -> _Data:
        X = self.enc.encode(pool.columns)
        targets = self.out.targets(pool.outputs, pool.errors)
        y = np.concatenate([targets, pool.weights[:, None].astype(np.float32)], axis=1)
        train = np.setdiff1d(np.arange(len(pool)), val)
        return _Data(X, y, train, val)

    def surrogate(self, weights: ModelWeights) -> Surrogate:
        return Surrogate(schema=self.schema, tolerance=self.tolerance, input_encoder=self.enc,
                         output_encoder=self.out, weights=weights, signature=self.signature,
                         function=self.fn_name)

    def judge(self, surrogate: Surrogate, pool: Pool, rows: np.ndarray) -> dict[str, Any]:
        columns = take(pool.columns, rows)
        details = surrogate.predict_details(columns)
        _clock.current().charge(_JUDGE_ROW_S * len(rows))
        result = compare(self.out.kind, [pool.outputs[i] for i in rows], [pool.errors[i] for i in rows],
                         details.outputs if self.out.kind != "label" else details.outputs, details.errors,
                         self.tolerance)
        result["excess"] = self._excess(pool, rows, details, result)
        return result

    def _excess(self, pool: Pool, rows: np.ndarray, details: Any, result: dict[str, Any]) -> np.ndarray:
        """Per row: error / tolerance bound (reals), 0 or 10 for labels and outcome mismatches."""
        excess = np.where(result["agree"], 0.0, 10.0)
        if self.out.kind in ("real", "vector"):
            for j, i in enumerate(rows):
                if pool.errors[i] is None and not details.raises[j]:
                    ref = np.asarray(pool.outputs[i], dtype=float).reshape(-1)
                    cand = np.asarray(details.outputs[j], dtype=float).reshape(-1)
                    bound = self.tolerance.bound(ref)
                    diff = np.abs(cand - ref)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        ratio = np.where(bound > 0, diff / np.where(bound > 0, bound, 1.0), np.where(diff > 0, 10.0, 0.0))
                    excess[j] = float(np.max(ratio))
        return np.minimum(excess, 100.0)

    # -- plain ensembles -----------------------------------------------------------------
    def _config(self, lr_scale: float, init: Any) -> TrainConfig:
        """Fresh weights: one-cycle from the base rate; warm starts: cosine decay from a lower one."""
        config = replace(self.config.train, lr=self.config.train.lr * lr_scale)
        return replace(config, schedule="cosine") if init is not None else config

    def train_plain(self, arch: Architecture, data: _Data, deadline: float, *, init: Any = None,
                    lr_scale: float = 1.0, optimizer: str = "adam") -> tuple[ModelWeights, Any, Any]:
        import torch

        torch.manual_seed(self.seed)
        module = batched_mlp(arch.ensemble, data.X.shape[1], self.out.out_width, arch.width, arch.depth,
                             arch.activation, embeddings=self._embeddings()).to(self.device)
        if init is not None:
            module.load_state_dict(init)
        loss = SurrogateLoss(self.out.width, self.out.n_classes)
        if optimizer == "lbfgs":
            result = polish_model(module, data.X[data.train], data.y[data.train], loss=loss, X_val=data.X[data.val],
                                  y_val=data.y[data.val], deadline=deadline, device=self.device, seed=self.seed)
        else:
            config = self._config(lr_scale, init)
            result = train_model(module, data.X[data.train], data.y[data.train], config=config, loss=loss,
                                 X_val=data.X[data.val], y_val=data.y[data.val], deadline=deadline,
                                 device=self.device, seed=self.seed)
        weights = ModelWeights(arch, module.to_numpy())
        return weights, result, {k: v.detach().clone() for k, v in module.state_dict().items()}

    # -- gate + experts ------------------------------------------------------------------
    def train_paths(self, arch: Architecture, data: _Data, pool: Pool, buckets: list[str], deadline: float, *,
                    init: Any = None, lr_scale: float = 1.0, optimizer: str = "adam") -> tuple[ModelWeights, Any, Any]:
        import torch

        torch.manual_seed(self.seed)
        n_paths = len(buckets)
        index = {p: i for i, p in enumerate(buckets)}
        other = index.get(OTHER_PATHS, -1)
        labels = np.array([index.get(p, other) if p is not None else -1 for p in pool.paths], dtype=np.int64)
        start = _clock.current().now()
        total = max(deadline - start, 0.5)
        gate_width = max(32, 2 * arch.width)
        gate = batched_mlp(1, data.X.shape[1], n_paths, gate_width, max(2, arch.depth), "relu",
                           embeddings=self._embeddings()).to(self.device)
        if init is not None:
            gate.load_state_dict(init["gate"])
        known_train = data.train[labels[data.train] >= 0]
        known_val = data.val[labels[data.val] >= 0]
        y_gate = np.stack([labels.astype(np.float32), pool.weights.astype(np.float32)], axis=1)
        config = self._config(lr_scale, init)
        if optimizer == "lbfgs":
            gate_result = polish_model(gate, data.X[known_train], y_gate[known_train], loss=SurrogateLoss(0, n_paths),
                                       X_val=data.X[known_val], y_val=y_gate[known_val],
                                       deadline=start + 0.3 * total, device=self.device, seed=self.seed)
        else:
            gate_result = train_model(gate, data.X[known_train], y_gate[known_train], config=config,
                                      loss=SurrogateLoss(0, n_paths), X_val=data.X[known_val],
                                      y_val=y_gate[known_val], deadline=start + 0.4 * total, device=self.device,
                                      seed=self.seed)
        # rows without a traced path take the gate's answer
        if np.any(labels < 0):
            with torch.no_grad():
                unknown = np.flatnonzero(labels < 0)
                logits = gate(torch.as_tensor(data.X[unknown], device=self.device))[0]
                labels[unknown] = logits.argmax(dim=1).cpu().numpy()
        bank = expert_bank(n_paths, arch.ensemble, data.X.shape[1], self.out.out_width, arch.width, arch.depth,
                           arch.activation, embeddings=self._embeddings()).to(self.device)
        if init is not None:
            bank.load_state_dict(init["bank"])
        # each expert learns its path's outputs in its own standardised units: a path whose
        # values barely vary gets the same relative precision as the whole function would
        width = self.out.width
        if init is not None and "norm" in init:
            shift, scale = init["norm"]
        else:
            shift = np.zeros((n_paths, max(width, 1)))
            scale = np.ones((n_paths, max(width, 1)))
            if width:
                for p in range(n_paths):
                    rows = data.train[labels[data.train] == p]
                    target = data.y[rows, :width].astype(np.float64)
                    target = target[np.all(np.isfinite(target), axis=1)]
                    if len(target) >= 2:
                        shift[p] = target.mean(axis=0)
                        scale[p] = np.maximum(target.std(axis=0), 1e-3)
        y_local = data.y.copy()
        if width:
            y_local[:, :width] = ((data.y[:, :width] - shift[labels, :width]) / scale[labels, :width]).astype(np.float32)
        rows_per_path = 32
        bank.rows_per_item = rows_per_path  # one block item holds rows_per_path rows per expert (work clock)
        block_rng = np.random.default_rng(self.seed + 17)
        Xb, yb = make_blocks(data.X[data.train], y_local[data.train], labels[data.train], n_paths,
                             rows_per_path=rows_per_path, rng=block_rng)
        Xv, yv = make_blocks(data.X[data.val], y_local[data.val], labels[data.val], n_paths,
                             rows_per_path=rows_per_path, rng=block_rng)
        loss = BlockLoss(SurrogateLoss(self.out.width, self.out.n_classes), y_local.shape[1])
        if optimizer == "lbfgs":
            result = polish_model(bank, Xb, yb, loss=loss, X_val=Xv, y_val=yv, deadline=deadline,
                                  device=self.device, seed=self.seed)
        else:
            blocks_per_step = max(1, int(round(1024 / (n_paths * rows_per_path))))
            result = train_model(bank, Xb, yb, config=replace(config, batch_size=blocks_per_step), loss=loss,
                                 X_val=Xv, y_val=yv, deadline=deadline, device=self.device, seed=self.seed)
        nets = bank.to_numpy()
        if width:  # fold each path's affine map into its experts' last layer
            for p in range(n_paths):
                for net in nets[p * arch.ensemble:(p + 1) * arch.ensemble]:
                    w_last = net.weights[-1].astype(np.float64)
                    b_last = net.biases[-1].astype(np.float64)
                    w_last[:, :width] *= scale[p, :width]
                    b_last[:width] = b_last[:width] * scale[p, :width] + shift[p, :width]
                    net.weights[-1] = w_last.astype(np.float32)
                    net.biases[-1] = b_last.astype(np.float32)
        experts = [nets[p * arch.ensemble:(p + 1) * arch.ensemble] for p in range(n_paths)]
        weights = ModelWeights(arch, [], gate.to_numpy(), experts, list(buckets))
        state = {"norm": (shift, scale), "gate": {k: v.detach().clone() for k, v in gate.state_dict().items()},
                 "bank": {k: v.detach().clone() for k, v in bank.state_dict().items()}}
        result.curve = [(e, t, v) for e, t, v in result.curve]
        result.gate_curve = gate_result.curve  # type: ignore[attr-defined]
        return weights, result, state

    def train(self, arch: Architecture, data: _Data, pool: Pool, buckets: list[str] | None, deadline: float, *,
              init: Any = None, lr_scale: float = 1.0, optimizer: str = "adam") -> _Candidate:
        clock = _clock.current()
        started = clock.now()
        if optimizer == "auto":
            # regression heads: Adam finds the basin, full-batch L-BFGS gets the precision
            if self.out.width and deadline - started > 1.0:
                first = self.train(arch, data, pool, buckets, started + 0.4 * (deadline - started), init=init,
                                   lr_scale=lr_scale, optimizer="adam")
                second = self.train(arch, data, pool, buckets, deadline, init=first.state, optimizer="lbfgs")
                second.curve = _joined(first.curve, second.curve)
                second.seconds = clock.now() - started
                return second
            optimizer = "adam"
        if arch.path_aware:
            weights, result, state = self.train_paths(arch, data, pool, buckets or [], deadline, init=init,
                                                      lr_scale=lr_scale, optimizer=optimizer)
        else:
            weights, result, state = self.train_plain(arch, data, deadline, init=init, lr_scale=lr_scale,
                                                      optimizer=optimizer)
        surrogate = self.surrogate(weights)
        if self.config.exact == "auto":  # judged as the hybrid it would become (exact paths, see _hybrid)
            from ._hybrid import fit_exact_paths

            surrogate._use_expressions(fit_exact_paths(surrogate, pool, data.val, None, self.schema,
                                                       cache=self.exact_cache)[0])
        judged = self.judge(surrogate, pool, data.val)
        params = _count_params(weights)
        return _Candidate(arch, weights, surrogate, judged["agreement"], float(np.mean(judged["excess"])),
                          params, clock.now() - started, result.curve, state, buckets)


def _search(trainer: _Trainer, candidates: list[Architecture], data: _Data, pool: Pool, buckets: list[str],
            until: float, config: FitConfig, bar: Any) -> tuple[_Candidate, list[dict[str, Any]]]:
    """The best of `candidates` by `_better`, trained until `until`. `config.search="equal"`:
    every shape trains for one equal slice. `"halving"`: successive halving, where the better
    half continues from its weights for twice the slice, and so on until one is left. Equal
    short slices favour small networks, which converge first; a larger one that would end more
    accurate only shows it with more training (blackscholes, 180 s: equal slices chose paths
    2x16, 0.43% mean error on AxBench's rows, where paths 3x64 trained as long reaches 0.11%;
    bench/axbench_study.py). Not the default yet: with many shapes the first slices are short
    enough that the large shape is dropped before it leads (same study)."""
    clock = _clock.current()
    halving = config.search == "halving"
    units = _halving_units(len(candidates)) if halving else len(candidates)
    slice_s = max((until - clock.now()) / units, 0.2)
    first_rung_until = clock.now() + slice_s * len(candidates)
    alive: list[tuple[int, _Candidate]] = []
    rung_of = [0] * len(candidates)
    seconds = [0.0] * len(candidates)
    final: list[_Candidate | None] = [None] * len(candidates)
    for i, arch in enumerate(candidates):
        bar.update(f"search {arch.label}")
        now = clock.now()  # what one shape overran or left, the next ones share
        end = now + max((first_rung_until - now) / (len(candidates) - i), 0.2)
        cand = trainer.train(arch, data, pool, buckets if arch.path_aware else None, end, optimizer="auto")
        alive.append((i, cand))
        seconds[i] = cand.seconds
    rank = functools.cmp_to_key(lambda a, b: -1 if _better(a[1], b[1], config) else int(_better(b[1], a[1], config)))
    rung, width = 0, 1
    while len(alive) > 1:
        alive.sort(key=rank)
        keep = (len(alive) + 1) // 2 if halving else 1
        for i, cand in alive[keep:]:
            final[i] = cand
        alive = alive[:keep]
        if len(alive) == 1:
            break
        rung, width = rung + 1, width * 2
        grown = []
        for i, cand in alive:
            bar.update(f"search {cand.arch.label} (rung {rung})")
            more = trainer.train(cand.arch, data, pool, cand.buckets, clock.now() + width * slice_s, init=cand.state,
                                 lr_scale=0.3, optimizer="lbfgs" if trainer.out.width else "adam")
            # continued training keeps what it gains; a run that got worse keeps the weights it had
            kept = more if _improves(more, cand) else cand
            grown.append((i, replace(kept, curve=_joined(cand.curve, more.curve))))
            rung_of[i], seconds[i] = rung, seconds[i] + more.seconds
        alive = grown
    best_index, best = alive[0]
    final[best_index] = best
    search_log = [{"architecture": arch.label, "val_agreement": c.agreement, "val_mean_excess": c.excess,
                   "parameters": c.params, "seconds": round(seconds[i], 3), "rung": rung_of[i]}
                  for i, (arch, c) in enumerate(zip(candidates, final)) if c is not None]
    return best, search_log


def _joined(curve: Sequence[tuple[int, float, float]],
            more: Sequence[tuple[int, float, float]]) -> list[tuple[int, float, float]]:
    """A training curve (epoch, train loss, val loss) continued by a later run's, whose epochs
    count on from the first's last."""
    offset = curve[-1][0] if curve else 0
    return list(curve) + [(e + offset, t, v) for e, t, v in more]


def _halving_units(k: int) -> int:
    """Slices successive halving spends on `k` shapes: k + 2 * ceil(k/2) + 4 * ceil(k/4) + ...,
    each rung while more than one shape is left (1 for one shape, 2 for two, 8 for four)."""
    units, width = k, 1
    while k > 2:
        k, width = (k + 1) // 2, width * 2
        units += width * k
    return max(units, 1)


def _count_params(weights: ModelWeights) -> int:
    def count(nets: Sequence[Any]) -> int:
        return sum(int(sum(w.size + b.size for w, b in zip(n.weights, n.biases))) for n in nets)

    if weights.path_aware:
        return count(weights.gate or []) + sum(count(e) for e in weights.experts or [])
    return count(weights.members)


def _spread(shapes: list[tuple[int, int]], count: int) -> list[tuple[int, int]]:
    if len(shapes) <= count:
        return shapes
    if count == 1:
        return [shapes[len(shapes) // 2]]
    picks = np.unique(np.linspace(0, len(shapes) - 1, count).round().astype(int))
    return [shapes[i] for i in picks]


def _candidates(config: FitConfig, activation: str, plain: bool, paths: bool, seconds: float) -> list[Architecture]:
    """Shapes to try, spread over the size range; fewer when the time is short (each needs
    a few seconds of training to be judged fairly)."""
    shapes = sorted({(w, d) for w in config.widths for d in config.depths}, key=lambda s: s[0] * s[0] * s[1])
    per_family = int(np.clip(seconds / (8.0 * (int(plain) + int(paths))), 1, config.max_candidates))
    out = []
    if plain:
        out += [Architecture(w, d, activation, config.ensemble_size, False) for w, d in _spread(shapes, per_family)]
    if paths:
        small = [s for s in shapes if s[0] <= 64] or shapes[:1]
        out += [Architecture(w, d, activation, config.ensemble_size, True)
                for w, d in _spread(small, min(per_family, 3))]
    return out


# -- fit ----------------------------------------------------------------------------------------

def fit(
    fn: Callable[..., Any],
    traces: Traces | None = None,
    *,
    schema: Schema | None = None,
    tolerance: Tolerance | None = None,
    oracle: bool = True,
    budget_s: float = 60.0,
    seed: int = 0,
    hard_cases: Iterable[Any] | None = None,
    progress: bool | None = None,
    **options: Any,
) -> Surrogate:
    """Train a neural surrogate of `fn` and measure its fidelity on fresh inputs.

    `traces`: recorded calls (replayable rows are used). `schema`: defaults to
    `Schema.infer(fn, traces)`. `tolerance`: defaults to 1% relative with an absolute floor of
    0.1% of the largest output magnitude seen (so outputs near zero are not held to 1% of
    nothing); labels and exceptions must always match exactly. `oracle=True` lets training call
    `fn` on inputs of its choosing (domain, near traces, where the error is high, per branch
    path). `budget_s`: wall-time budget of the whole fit (torch's one-time optimiser import, a
    few seconds on first use in a process, happens before the clock starts; expect overruns of
    a few percent); with `budget_clock="work"` it counts nominal work instead (training steps
    by rows x parameters, oracle calls by the Python lines they run), so the same seed gives
    the same surrogate however busy the machine is, and only the wall time varies. The cost of a
    call of `fn` is measured first and every batch of oracle calls (first draws, test inputs,
    traced paths, hard cases, rounds, the guard's calibration rows) is sized from it and stops at
    its deadline, so a slow function's fit ends within about 1.5 x `budget_s` + 1 s; a budget
    that cannot label `MIN_ROWS` (64) rows is refused at once (InvalidArgument naming the cost of
    a call and the budget needed). What the work clock cannot see (a function that sleeps or
    waits) is bounded by the option `wall_ceiling_s` (None: 20 x `budget_s` + 120 s; `math.inf`
    for none): a fit that reaches it ends there with a `NotReproducibleWarning`. What the budget
    left undone is in `manifest["training"]["budget"]` (cost per call, `cut`, the ceiling).
    `hard_cases`: kwargs dicts (or objects with `.inputs`, e.g. verification counterexamples),
    path-traced and added with extra weight; a case whose outcome no ordinary draw showed (an
    exception in a region too small to learn) is left out, and cases far in the output's tail
    are weighted down to the loss share of a 3-sigma row. Launched by torchrun (WORLD_SIZE > 1),
    `fit` trains with DDP over the ranks (`fit_distributed`; `distributed="off"` to opt out).
    With `exact="auto"` (the default) and `oracle=True`, after training fit traces the code's own
    partition and pieces (the search `explain.distill` emits as rules) and the surrogate answers
    by that exact program first, in float64, wherever a leaf is exact and was never wrong on the
    held-out rows where the network was right (`manifest["training"]["exact_program"]` says what
    was kept and why; untraceable code keeps the network alone); it takes at most
    max(5 s, budget_s / 2) more on the wall clock, and runs untimed on the work clock.
    `options`: see
    `FitConfig` (ensemble_size, widths, depths, sampling="paths"|"uniform", max_oracle_calls, ...).
    """
    import torch

    config = _config(options)
    hard_cases = check_fit_arguments(fn, traces=traces, tolerance=tolerance, oracle=oracle, budget_s=budget_s,
                                     seed=seed, hard_cases=hard_cases, progress=progress)
    _warm_up()
    started = time.monotonic()
    if not callable(fn):
        raise bad_argument("fn", fn, "must be callable", "Pass the legacy function itself")
    if isinstance(budget_s, bool) or not isinstance(budget_s, (int, float)) or not budget_s > 0:
        raise bad_argument("budget_s", budget_s, "must be a number of seconds > 0", "Pass budget_s=60.0")
    clock = (_FitWorkClock(_wall_ceiling(config.wall_ceiling_s, float(budget_s))) if config.budget_clock == "work"
             else _clock.make(config.budget_clock))
    deadline = clock.now() + float(budget_s)
    if traces is not None and not isinstance(traces, Traces):
        raise bad_argument("traces", type(traces).__name__, "must be a probes.Traces",
                           "Load them with TraceStore.open(uri).load(fn), or build Traces.from_calls(fn, inputs)")
    if traces is not None and len(traces):
        mask = traces.replayable
        if not mask.all():
            traces = traces.subset(np.flatnonzero(mask))
    has_traces = traces is not None and len(traces) > 0
    from . import _margins

    if schema is None:
        if not has_traces:
            raise bad_argument("schema", None, "cannot be inferred without traces",
                               "Pass schema=Schema.from_function(fn, x=(low, high), ...) or some traces")
        # widened a little past the recorded extremes (fresh calls land just outside them); the
        # oracle labels the band, since its rows are drawn from this schema. See _margins.
        inferred = Schema.infer(fn, traces)
        margin = _margins.resolve_margin(config.domain_margin, oracle=bool(oracle))
        schema = _margins.with_margins(inferred, margin,
                                       keep_positive=_margins.log_input_names(config.log_inputs, inferred))
        config = replace(config, domain_margin=margin)  # the manifest's hyperparameters record what was applied
    elif config.domain_margin:
        raise bad_argument("domain_margin", config.domain_margin,
                           "widens only a schema fit infers from traces; a schema passed to fit is the declared domain",
                           "Widen it yourself (schema.widen(0.05), or declare wider ranges) and leave domain_margin unset")
    else:
        config = replace(config, domain_margin=0.0)
    if not isinstance(schema, Schema):
        raise bad_argument("schema", type(schema).__name__, "must be a probes.Schema",
                           "Build it with Schema.infer(fn, traces) or Schema.from_function(fn, ...)")
    if not oracle and not has_traces:
        raise bad_argument("oracle", oracle, "with oracle=False the traces are the only data, and there are none",
                           "Pass traces, or allow oracle=True")
    _log_inputs(config.log_inputs, schema)  # a bad name fails here, before any call of fn
    if config.distributed == "auto":
        from ._distributed import distributed_env

        if distributed_env().world_size > 1:
            return _fit_on_every_rank(fn, traces if has_traces else None, schema, tolerance, oracle,
                                      float(budget_s), seed, hard_cases, config)
    show = progress if progress is not None else (sys.stderr.isatty() and budget_s >= 5)
    bar = _Progress(bool(show), float(budget_s), clock)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads or 1)
    try:
        with _clock.using(clock):
            surrogate = _fit(fn, traces if has_traces else None, schema, tolerance, oracle, float(budget_s), seed,
                             hard_cases, config, started, deadline, bar)
        _clock.ceiling_warning(clock, "fit")  # stacklevel 3: the caller of fit
        return surrogate
    finally:
        torch.set_num_threads(previous_threads)
        bar.close()


def _fit_on_every_rank(fn: Callable[..., Any], traces: Traces | None, schema: Schema, tolerance: Tolerance | None,
                       oracle: bool, budget_s: float, seed: int, hard_cases: Iterable[Any] | None,
                       config: FitConfig) -> Surrogate:
    """`fit` launched by torchrun (WORLD_SIZE > 1): DDP training with `fit_distributed`, which
    shards the rows over the ranks; rank 0 chooses the shape with a short single-process search.
    Every rank returns the same surrogate. Hard cases join the traces, labelled by calling `fn`.
    Every option in `config` is passed on or, set away from its default where fit_distributed
    cannot honour it, refused by name before any call of `fn` (`torchrun_arguments`)."""
    from ._distributed import fit_distributed, process_group, torchrun_arguments

    arguments = torchrun_arguments(config, oracle=oracle)  # every rank refuses alike: no rank waits
    if hard_cases is not None:
        rows = [row for row in _hard_rows(hard_cases) if schema.contains(row)[0]]
        if rows:
            extra = Traces.from_calls(fn, rows)
            traces = extra if traces is None else traces + extra
    with process_group():
        return fit_distributed(fn, traces, schema=schema, tolerance=tolerance, architecture="search",
                               budget_s=0.6 * budget_s, search_budget_s=min(20.0, 0.3 * budget_s), seed=seed,
                               **arguments)


_WARM = False


def _warm_up() -> None:
    """The first torch optimiser of a process imports a lot (seconds); do it before the clock
    starts, so `budget_s` is spent on the fit itself."""
    global _WARM
    if not _WARM:
        import torch

        torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3, foreach=True)
        _WARM = True


def _fit(fn: Callable[..., Any], traces: Traces | None, schema: Schema, tolerance: Tolerance | None, oracle: bool,
         budget_s: float, seed: int, hard_cases: Iterable[Any] | None, config: FitConfig, started: float,
         deadline: float, bar: _Progress) -> Surrogate:
    import torch

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    clock = _clock.current()
    fn_name = function_name(fn)
    signature = mf.signature_spec(fn)
    defaults = mf.defaults_of(signature)
    pool = Pool(schema)
    legacy = fn  # traced as it is for the exact program (8b)
    fn = kwargs_caller(fn)
    orc = Oracle(fn, schema, config.path_budget * budget_s if oracle else 0.0, config.max_oracle_calls)

    # 1. recorded traffic (and its paths, when the function may be called)
    trace_columns: dict[str, np.ndarray] = {}
    # a share of the traces is held out for the guard: production traffic nothing else sees
    # (not training, validation or model selection), the rows its certificate speaks for
    cal_held: dict[str, Any] | None = None
    if traces is not None:
        n_hold = held_out_count(len(traces), config.calibration_rate)
        if n_hold:
            order = np.random.default_rng(seed + 15485863).permutation(len(traces))
            hold, keep = order[:n_hold], np.sort(order[n_hold:])
            cal_held = {"columns": _columns_from_rows(schema, [traces.inputs[i] for i in hold], defaults),
                        "outputs": [traces.outputs[i] for i in hold], "errors": [traces.errors[i] for i in hold]}
            traces = traces.subset(keep)
        trace_columns = _columns_from_rows(schema, traces.inputs, defaults)
        pool.add(trace_columns, traces.outputs, traces.errors, None, 1.0, "trace")
    bar.update("drawing inputs")

    # 2. oracle draws: the domain and the neighbourhood of traces
    test_columns: dict[str, np.ndarray] = {}
    test_outputs: list[Any] = []
    test_errors: list[ErrorInfo | None] = []
    test_paths: list[str | None] = []
    # every batch of oracle calls below is sized from the measured cost of a call, and stops at
    # its deadline (Oracle.call): the fit ends within about 1.5 x budget_s (+ a second) however
    # slow the function, or refuses at once when the least fit (MIN_ROWS rows) does not fit
    full_deadline = deadline
    cut: list[str] = []  # what the budget left undone (the manifest's training.budget.cut)
    budget_info: dict[str, Any] = {"cost_per_call_s": None, "cut": cut}
    if oracle:
        probe = schema.rows(schema.sample_columns(20, rng=rng))
        orc.calibrate(probe, at_most_s=CALIBRATE_SHARE * budget_s)
        per_call = orc.plain_cost
        budget_info["cost_per_call_s"] = float(per_call)
        n_traces = len(traces) if traces is not None else 0
        floor = min(256, int(N0_SHARE * budget_s / per_call))  # 256 unless the function is slow
        if n_traces + floor < MIN_ROWS:
            _refuse_budget(budget_s, per_call, n_traces, floor, clock.deterministic)
        # the guard's calibration rows are labelled last, on the final model: keep their time
        n_cal_domain = calibration_sizes(config.calibration_rate, budget_s * config.calibration_share, per_call)
        # their calls, and scoring them, the held-out traces and the validation rows (the error predictor)
        n_held = len(cal_held["outputs"]) if cal_held is not None else 0
        cal_reserved = n_cal_domain * (per_call + GUARD_ROW_S) + (n_held + 4000) * GUARD_ROW_S
        deadline -= cal_reserved
        affordable = int(0.25 * budget_s / per_call)
        n0 = config.initial_samples or int(np.clip(affordable, floor, 6000))
        if config.max_oracle_calls is not None:
            n0 = min(n0, config.max_oracle_calls if config.rounds == 0 else max(config.max_oracle_calls // 2, 1))
        # paths for the traces themselves (cheap relative share)
        if traces is not None and config.path_budget > 0:
            count = min(len(traces), int(0.3 * orc.path_budget_s / orc.path_cost))
            if count:
                pick = rng.choice(len(traces), size=count, replace=False)
                until = min(deadline, clock.now() + 0.1 * budget_s)
                done = 0
                for i in pick:
                    if clock.now() + 0.5 * orc.path_cost > until:
                        cut.append(f"paths of {done} of the {count} traces planned")
                        break
                    pool.paths[int(i)] = call_with_path(fn, {**defaults, **traces.inputs[int(i)]}).path
                    done += 1
                orc.path_seconds += done * orc.path_cost
        n_near = int(n0 * config.trace_share) if traces is not None else 0
        parts = [schema.sample_columns(n0 - n_near, rng=rng)]
        if n_near:
            parts.append(draw_near(schema, trace_columns, n_near, rng, scale=config.near_scale))
        columns = concat_columns(parts, schema.names)
        # path-traced calls (path_budget of budget_s) and plain ones (N0_SHARE at most): about 0.6 of it
        outputs, errors, paths = orc.call(schema.rows(columns), deadline=min(deadline, clock.now() + 0.65 * budget_s))
        if len(outputs) < n0:
            cut.append(f"initial oracle draws: {len(outputs)} of {n0} planned")
            columns = take(columns, np.arange(len(outputs)))
        pool.add(columns, outputs, errors, paths, 1.0, "oracle")
        # held-out test inputs (not training calls)
        n_test = int(min(config.test_size, max(min(200, int(TEST_SHARE * budget_s / per_call)), 0.1 * budget_s / per_call)))
        test_rng = np.random.default_rng(seed + 7919)
        n_test_near = n_test // 2 if traces is not None else 0
        parts = [schema.sample_columns(n_test - n_test_near, rng=test_rng)]
        if n_test_near:
            parts.append(draw_near(schema, trace_columns, n_test_near, test_rng, scale=config.near_scale))
        test_columns = concat_columns(parts, schema.names)
        path_left = orc.path_seconds < orc.path_budget_s
        saved_budget = orc.path_budget_s
        orc.path_budget_s = orc.path_seconds + min(0.05 * budget_s, n_test * orc.path_cost) if path_left else 0.0
        test_outputs, test_errors, test_paths = orc.call(schema.rows(test_columns), count=False,
                                                         deadline=min(deadline, clock.now() + 0.25 * budget_s))
        orc.path_budget_s = max(saved_budget, orc.path_seconds)
        if len(test_outputs) < n_test:
            cut.append(f"test inputs: {len(test_outputs)} of {n_test} planned")
            test_columns = take(test_columns, np.arange(len(test_outputs)))
        test_calls = len(test_outputs)
    else:
        test_calls = 0

    # 3. hard cases, weighted
    hard_skipped = 0
    if hard_cases is not None:
        rows = [{**defaults, **row} for row in _hard_rows(hard_cases)]
        rows = [row for row in rows if schema.contains(row)[0]]
        if rows and oracle:
            # always path-traced (they are few): the gate must learn which side of a boundary
            # each one lies on. (Drawing oracle neighbours around each case was tried: worse.)
            outputs, errors, paths = orc.call(rows, trace=True, deadline=min(deadline, clock.now() + 0.2 * budget_s))
            if len(outputs) < len(rows):
                cut.append(f"hard cases: {len(outputs)} of {len(rows)} labelled")
                rows = rows[:len(outputs)]
            # an outcome no ordinary draw of the domain ever showed (ZeroDivisionError at a rate of
            # 1e-300) lives in a region too small for a smooth model: teaching it blurs the
            # neighbourhood, so such cases are left to verification and the guarded swap
            seen = {_outcome_key(o, e, schema) for o, e in zip(pool.outputs, pool.errors)}
            keep = [i for i in range(len(rows)) if _outcome_key(outputs[i], errors[i], schema) in seen]
            hard_skipped = len(rows) - len(keep)
            pool.add(_columns_from_rows(schema, [rows[i] for i in keep], defaults), [outputs[i] for i in keep],
                     [errors[i] for i in keep], [paths[i] for i in keep], config.hard_weight, "hard")
        elif rows:
            warnings.warn("hard_cases are ignored with oracle=False: their outputs are unknown", UserWarning, stacklevel=3)

    # recorded traffic is what the surrogate will be judged on: give it as much weight in the
    # loss as all the oracle draws together (those teach the rest of the domain)
    _balance_traces(pool, config)
    if isinstance(config.trace_weight, (int, float)) and not isinstance(config.trace_weight, bool):
        pool.weights[np.array([src == "trace" for src in pool.sources])] *= float(config.trace_weight)

    if clock.ceiling_hit and len(pool) < MIN_ROWS:
        raise bad_argument("wall_ceiling_s", clock.wall_ceiling_s,
                           f"was reached after {len(pool)} rows were labelled, fewer than the {MIN_ROWS} fit learns from "
                           "(the work clock does not see what a call waits or sleeps)",
                           "Raise wall_ceiling_s, or fit a function this slow with budget_clock='wall'")
    if len(pool) < 8:
        raise bad_argument("traces", f"<{len(pool)} rows>", "too few rows to learn from",
                           "Record more calls or allow oracle=True")

    # 4. held-out split without oracle: part of the traces becomes the test set
    if not oracle:
        order = rng.permutation(len(pool))
        n_test = max(1, int(0.2 * len(pool)))
        test_rows, keep = order[:n_test], np.sort(order[n_test:])
        test_columns = take(pool.columns, test_rows)
        test_outputs = [pool.outputs[i] for i in test_rows]
        test_errors = [pool.errors[i] for i in test_rows]
        test_paths = [pool.paths[i] for i in test_rows]
        kept = Pool(schema)
        kept.add(take(pool.columns, keep), [pool.outputs[i] for i in keep], [pool.errors[i] for i in keep],
                 [pool.paths[i] for i in keep], 1.0, "trace")
        kept.weights = pool.weights[keep]
        pool = kept

    # 5. encoders and the tolerance, scaled on representative rows: hard cases are often extreme
    # (a rate of 1e-308 found by boundary search) and would otherwise set the input warps and the
    # output scale, costing precision everywhere else; their outcome classes still count
    cuts = comparison_cuts(fn, schema.names) if config.code_cuts else {}
    usual = np.array([src != "hard" for src in pool.sources])
    if not usual.any():
        usual[:] = True
    enc = InputEncoder.fit(schema, take(pool.columns, np.flatnonzero(usual)), cuts=cuts,
                           log_inputs=_log_inputs(config.log_inputs, schema))
    if tolerance is None:
        tolerance = _default_tolerance(pool, usual)
    classes_only = [i for i in range(len(pool)) if usual[i] or pool.errors[i] is not None
                    or schema.output.kind == "label"]
    out = OutputEncoder.fit(schema.output, [pool.outputs[i] for i in classes_only],
                            [pool.errors[i] for i in classes_only], tolerance)
    _temper_hard_weights(pool, out, config)
    device = _device(config)
    trainer = _Trainer(fn_name, schema, tolerance, signature, enc, out, config, device, seed)
    n_val = int(np.clip(config.validation_share * len(pool), min(32, len(pool) // 4), 4000))
    val = np.sort(rng.choice(len(pool), size=n_val, replace=False))
    data = trainer.data(pool, val)

    # 6. architecture search
    activation = config.activation or ("relu" if out.kind in ("label", "none") else "silu")
    buckets = _path_buckets(pool.paths, config)
    use_paths = config.path_aware is True or (config.path_aware == "auto" and len(buckets) >= 2
                                               and sum(p is not None for p in pool.paths) >= 0.3 * len(pool))
    if config.path_aware is True and len(buckets) < 2:
        use_paths = False
    remaining = deadline - clock.now()
    candidates = _candidates(config, activation, config.path_aware is not True or not use_paths, use_paths,
                             0.5 * remaining)
    best, search_log = _search(trainer, candidates, data, pool, buckets, clock.now() + 0.5 * remaining, config, bar)

    # 7. refinement rounds: more oracle calls where the error is, then continue training
    rounds_log: list[dict[str, Any]] = [{"round": 0, "rows": len(pool), "oracle_calls": orc.calls,
                                         "val_agreement": best.agreement}]
    curve = list(best.curve)
    reserve = (0.3 if out.width else 0.1) * budget_s  # kept for the final polish
    unkept = 0
    for round_no in range(1, config.rounds + 1):
        left = deadline - clock.now() - reserve
        if (not oracle or left < 0.1 * budget_s or _target_shown(best, len(data.val), config.target_agreement)
                or orc.remaining() == 0):
            break
        if config.rounds_when == "data_limited" and not _data_limited(best):
            # validation loss close to training loss: more samples would not help, more training will
            rounds_log.append({"round": round_no, "skipped": "not data-limited (val loss <= 1.5 x train loss)"})
            break
        n_new = int(min(orc.remaining(), max(64, 0.5 * len(pool)), 0.3 * left / max(orc.plain_cost, 1e-7)))
        if n_new <= 0:
            break
        bar.update(f"round {round_no}: {n_new} oracle calls")
        judged = trainer.judge(best.surrogate, pool, data.train)
        new_columns = _allocate(schema, pool, data.train, judged["excess"], n_new, rng, config, best)
        outputs, errors, paths = orc.call(schema.rows(new_columns), deadline=deadline)
        if len(outputs) < n_new:
            cut.append(f"round {round_no}: {len(outputs)} of {n_new} oracle calls")
            new_columns = take(new_columns, np.arange(len(outputs)))
        first_new = len(pool)
        pool.add(new_columns, outputs, errors, paths, 1.0, f"round{round_no}")
        _balance_traces(pool, config)  # the new rows must not dilute recorded traffic's share of the loss
        # a share of the new rows joins validation, so that it sees the regions the round
        # targeted (a fixed validation set showing 100% could never tell a better model on the
        # edges from the one before); the model to beat is judged again on the grown set
        n_new_val = int(round(config.validation_share * (len(pool) - first_new)))
        if n_new_val:
            val = np.sort(np.concatenate([val, rng.choice(np.arange(first_new, len(pool)), size=n_new_val,
                                                          replace=False)]))
        data = trainer.data(pool, val)
        if n_new_val:
            rejudged = trainer.judge(best.surrogate, pool, data.val)
            best = replace(best, agreement=rejudged["agreement"], excess=float(np.mean(rejudged["excess"])))
        left = deadline - clock.now() - reserve
        rounds_left = config.rounds - round_no + 1
        until = clock.now() + max(left / rounds_left, 0.2)
        bar.update(f"round {round_no}: training {best.arch.label}")
        cand = trainer.train(best.arch, data, pool, best.buckets, until, init=best.state, lr_scale=0.3,
                             optimizer="lbfgs" if out.width else "adam")
        kept = _improves(cand, best, ties=True)
        if kept:
            best = cand
        unkept = 0 if kept else unkept + 1
        curve = _joined(curve, cand.curve)
        rounds_log.append({"round": round_no, "rows": len(pool), "oracle_calls": orc.calls,
                           "val_agreement": cand.agreement, "kept": kept})
        if config.rounds_patience and unkept >= config.rounds_patience:
            # a round whose model is worse than before it: on a smooth function the new rows
            # were not what limited it, and another short round would only take time from
            # the polish (measured: bench/fidelity.py, AxBench kernels)
            rounds_log.append({"round": round_no + 1, "skipped": f"{unkept} round(s) in a row not kept"})
            break

    # 8. spend what is left polishing the chosen model (full-batch L-BFGS for regression heads)
    left = deadline - clock.now() - 0.05 * budget_s
    if left > 0.08 * budget_s and best.agreement < 1.0:
        bar.update(f"polishing {best.arch.label}")
        cand = trainer.train(best.arch, data, pool, best.buckets, clock.now() + left, init=best.state,
                             optimizer="lbfgs" if out.width else "adam", lr_scale=0.2)
        if _improves(cand, best):
            best = cand
        curve = _joined(curve, cand.curve)

    # 8b. exact paths (hybrid): an expression on each path bucket whose rows, held-out ones too, it
    # reproduces; the expert elsewhere. Before the fidelity (9) and the guard (10), which then see it.
    exact_found: dict[str, Any] = {}
    exact_report: dict[str, Any] = {}
    if config.exact == "auto":
        from ._hybrid import fit_exact_paths

        bar.update("fitting exact paths")
        exact_found, exact_report = fit_exact_paths(
            best.surrogate, pool, val, (test_columns, test_outputs, test_errors, test_paths), schema,
            cache=trainer.exact_cache)
        best.surrogate._use_expressions(exact_found)
    program, program_report = None, {"used": False, "note": "exact='off'" if config.exact != "auto" else
                                     "no oracle: the exact program traces calls of the function"}
    if config.exact == "auto" and oracle:
        from ._exact_program import fit_program

        bar.update("tracing the code's exact partition")
        program, program_report = fit_program(
            legacy, schema, traces, seed=seed, tolerance=tolerance, budget_s=budget_s, surrogate=best.surrogate,
            held_out=[(test_columns, test_outputs, test_errors),
                      (take(pool.columns, val), [pool.outputs[i] for i in val], [pool.errors[i] for i in val])])
        best.surrogate._use_program(program)

    # 9. fresh-input fidelity
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
    # 10. the guard: an error predictor on validation rows, calibration rows nothing else saw
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



def _improves(cand: _Candidate, best: _Candidate, *, ties: bool = False) -> bool:
    """Continued training is kept when validation agreement rises, or holds with a lower error;
    with `ties`, also when both hold (a round's model has seen more of the function than the
    one before it, and a validation set where both score 100% cannot tell them apart)."""
    if cand.agreement > best.agreement + 1e-9:
        return True
    if cand.agreement < best.agreement - 1e-9:
        return False
    return cand.excess < best.excess or (ties and cand.excess <= best.excess)




def _target_shown(cand: _Candidate, n_val: int, target: float) -> bool:
    """Whether validation shows the target agreement is met, not merely fails to contradict it:
    400 validation rows without a miss still allow 99% agreement, so refinement rounds stop only
    once the 95% lower bound of the validation agreement reaches the target."""
    low, _ = wilson_interval(int(round(cand.agreement * n_val)), n_val)
    return low >= target


def _data_limited(cand: _Candidate) -> bool:
    """Whether the model overfits its data (validation loss well above training loss)."""
    points = [(t, v) for _, t, v in cand.curve[-5:] if math.isfinite(t) and math.isfinite(v)]
    if not points:
        return True
    train = min(t for t, _ in points)
    val = min(v for _, v in points)
    return val > 1.5 * max(train, 1e-12)


def _better(cand: _Candidate, best: _Candidate, config: FitConfig) -> bool:
    """Smallest model meeting the target; otherwise the most accurate."""
    met_c = cand.agreement >= config.target_agreement
    met_b = best.agreement >= config.target_agreement
    if met_c and met_b:
        return cand.params < best.params
    if met_c != met_b:
        return met_c
    if cand.agreement != best.agreement:
        return cand.agreement > best.agreement
    return cand.excess < best.excess



def _allocate(schema: Schema, pool: Pool, rows: np.ndarray, excess: np.ndarray, n_new: int,
              rng: np.random.Generator, config: FitConfig, best: _Candidate) -> dict[str, np.ndarray]:
    """New inputs for a refinement round.

    "paths": a quarter from the domain; of the rest, `boundary_share` between nearby rows that
    took different paths or gave different outcomes (`draw_between`: the edges), and the others
    split over branch paths by Turaco's rule (frequency p_i, complexity C_i = mean squared excess
    of the path's rows), each drawn near that path's rows, favouring rows with a high error.
    "uniform": all from the domain.
    Label outputs: the focused calls go to the inputs the model is least sure of (`_least_certain`).
    """
    if config.sampling == "uniform":
        return schema.sample_columns(n_new, rng=rng)
    n_domain = n_new // 4
    n_focus = n_new - n_domain
    if best.surrogate.output_encoder.kind == "label":
        return concat_columns([schema.sample_columns(n_domain, rng=rng),
                               _least_certain(schema, pool, rows, n_focus, rng, config, best)], schema.names)
    labels = np.array([pool.paths[i] if pool.paths[i] is not None else OTHER_PATHS for i in rows], dtype=object)
    if best.surrogate.path_aware and any(pool.paths[i] is None for i in rows):
        # untraced rows: the gate's path
        missing = np.array([pool.paths[i] is None for i in rows])
        guess = best.surrogate.predict_details(take(pool.columns, rows[missing])).paths or []
        labels[missing] = np.asarray(guess, dtype=object)
    groups = {str(p): np.flatnonzero(labels == p) for p in sorted(set(labels.tolist()), key=str)}
    frequency = {p: len(ix) / len(rows) for p, ix in groups.items()}
    complexity = {p: float(np.mean(np.minimum(excess[ix], 10.0) ** 2)) + 1e-3 for p, ix in groups.items()}
    # where paths (or outcomes) change between neighbours: the edges a piecewise surrogate blurs
    sides = [f"{label}|{_outcome_key(pool.outputs[i], pool.errors[i], schema)}" for label, i in zip(labels.tolist(), rows)]
    n_boundary = int(n_focus * config.boundary_share) if len(set(sides)) >= 2 else 0
    quota = turaco_allocation(frequency, complexity, n_focus - n_boundary)
    parts = [schema.sample_columns(n_domain, rng=rng)]
    if n_boundary:
        parts.append(draw_between(schema, pool.columns, rows, sides, n_boundary, rng,
                                  weights=np.minimum(excess, 10.0) + 0.1))
    for path, count in quota.items():
        if count <= 0:
            continue
        ix = groups[path]
        weight = np.minimum(excess[ix], 10.0) + 0.1
        chosen = rng.choice(rows[ix], size=count, replace=True, p=weight / weight.sum())
        parts.append(draw_near(schema, pool.columns, count, rng, scale=config.near_scale, rows=chosen))
    return concat_columns(parts, schema.names)


CANDIDATES_PER_CALL = 8  # candidate inputs scored per oracle call spent by `_least_certain`


def _least_certain(schema: Schema, pool: Pool, rows: np.ndarray, n: int, rng: np.random.Generator,
                   config: FitConfig, best: _Candidate) -> dict[str, np.ndarray]:
    """`n` inputs where a classifier is least sure: of `CANDIDATES_PER_CALL * n` candidates (half
    between training rows with different outcomes, half near training rows), those whose two
    highest class scores are closest.

    Why: a label that changes at sums of points over several inputs (an underwriting score) is
    missed in whole cells of the input grid, not only at the edges between neighbouring paths,
    and the model is ~100% right on the rows it trained on, so their errors cannot steer the
    calls; its margin can (measured: bench/fidelity.py's sampling claim on risk_class)."""
    if n <= 0:
        return {}
    n_candidates = CANDIDATES_PER_CALL * n
    sides = [str(_outcome_key(pool.outputs[i], pool.errors[i], schema)) for i in rows]
    candidates = concat_columns([
        draw_between(schema, pool.columns, rows, sides, n_candidates // 2, rng),
        draw_near(schema, pool.columns, n_candidates - n_candidates // 2, rng, scale=config.near_scale, rows=rows),
    ], schema.names)
    X = best.surrogate.input_encoder.encode(candidates, dtype=np.float64)
    _clock.current().charge(_JUDGE_ROW_S * len(X))
    margin = label_margins(best.weights, X, best.surrogate.output_encoder.width)
    return take(candidates, np.argsort(margin, kind="stable")[:n])


def label_margins(weights: ModelWeights, X: np.ndarray, width: int) -> np.ndarray:
    """Per encoded row: the highest class score minus the second (scores summed over the
    ensemble, through the expert the gate picks); 0 is a tie. Columns before `width` are values."""
    if weights.path_aware:
        gate = sum(net.forward(X) for net in weights.gate or [])
        choice = np.argmax(gate, axis=1)
        experts = weights.experts or []
        scores = np.zeros((len(X), experts[0][0].weights[-1].shape[1]))
        for p in np.unique(choice):
            at = np.flatnonzero(choice == p)
            scores[at] = sum(net.forward(X[at]) for net in experts[p])
    else:
        scores = sum(net.forward(X) for net in weights.members)
    scores = np.asarray(scores)[:, width:]
    if scores.shape[1] < 2:
        return np.full(len(X), np.inf)
    top = np.sort(scores, axis=1)
    return top[:, -1] - top[:, -2]
