"""The per-model training loop, kept free of everything else so it can be wrapped for DDP.

`train_model(module, X, y, config=..., loss=...)` trains one torch module (plain, or wrapped
in `torch.nn.parallel.DistributedDataParallel`) with AdamW, a one-cycle learning-rate
schedule, early stopping on a validation split and a wall-clock deadline, and restores the
best weights. It takes an optional `sampler` (e.g. a `DistributedSampler`, whose `set_epoch`
is called each epoch) or already-sharded tensors, and a `reduce` hook to average losses
across processes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from probes import _clock


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser settings of one training run."""

    lr: float = 1e-2
    weight_decay: float = 1e-6
    batch_size: int | None = None  # None: about 16 steps per epoch, between 64 and 1024 rows
    max_epochs: int = 3000
    patience: int = 200            # epochs without a better validation loss before stopping
    min_delta: float = 1e-4        # relative improvement that counts as better
    schedule: str = "onecycle"     # "onecycle" | "cosine" | "constant"
    max_grad_norm: float | None = 5.0


@dataclass
class TrainResult:
    """What one run did: the curve (epoch, train loss, val loss), best val loss, why it stopped."""

    curve: list[tuple[int, float, float]] = field(default_factory=list)
    best_val: float = math.inf
    best_epoch: int = 0
    epochs: int = 0
    stopped: str = ""
    seconds: float = 0.0


class SurrogateLoss:
    """Loss on packed targets `y = [regression (n_reg) | class index | sample weight]`.

    Squared error on regression columns (rows with a NaN target, i.e. raising rows, are skipped)
    plus cross-entropy on the class column (rows with class -1 skipped), each row weighted.
    """

    def __init__(self, n_reg: int, n_classes: int, class_weight: float = 1.0):
        self.n_reg = n_reg
        self.n_classes = n_classes
        self.class_weight = class_weight

    def __call__(self, pred: Any, y: Any) -> Any:
        import torch.nn.functional as F

        if pred.dim() == 2:
            pred = pred.unsqueeze(0)
        members = pred.shape[0]
        weight = y[:, -1]
        norm = weight.sum().clamp_min(1e-12) * members
        total = pred.new_zeros(())
        if self.n_reg:
            target = y[:, : self.n_reg]
            mask = target == target  # False where NaN (the call raised)
            diff = (pred[..., : self.n_reg] - target.nan_to_num()) * mask
            per_row = (diff * diff).mean(dim=-1)  # (members, N)
            total = total + (per_row * weight).sum() / norm
        if self.n_classes:
            cls = y[:, self.n_reg]
            mask = cls >= 0
            logits = pred[..., self.n_reg: self.n_reg + self.n_classes]
            target = cls.clamp_min(0).long().expand(members, -1).reshape(-1)
            ce = F.cross_entropy(logits.reshape(-1, self.n_classes), target, reduction="none").reshape(members, -1)
            w = weight * mask
            total = total + self.class_weight * (ce * w).sum() / (w.sum().clamp_min(1e-12) * members)
        return total


def _unwrap(module: Any) -> Any:
    return getattr(module, "module", module)


def auto_batch_size(n: int) -> int:
    return int(min(1024, max(64, n // 16)))


def train_model(
    module: Any,
    X: Any,
    y: Any,
    *,
    config: TrainConfig,
    loss: Callable[[Any, Any], Any],
    X_val: Any = None,
    y_val: Any = None,
    sampler: Iterable[int] | None = None,
    deadline: float | None = None,
    device: Any = None,
    hooks: Sequence[Callable[[int, float, float], bool | None]] = (),
    reduce: Callable[[float], float] | None = None,
    seed: int = 0,
) -> TrainResult:
    """Train `module` on (X, y) in place and load its best weights (by validation loss).

    `X`, `y`: arrays or tensors (this process's shard, or the whole set with a `sampler` that
    yields this process's row indices). `deadline`: `time.monotonic()` value to stop at, or under
    fit's work clock a value of that clock (the
    learning-rate schedule is planned to end there); with several processes leave it None so
    every rank runs the same number of steps. `hooks`: called `hook(epoch, train, val)` after
    each epoch; a truthy return stops training. `reduce`: maps a local loss to the global one.
    """
    import torch

    clock = _clock.current()
    started = clock.now()
    inner = _unwrap(module)
    # work per row (a row of a block of per-path rows counts as the rows it holds)
    parameters = _clock.parameter_count(inner) * getattr(inner, "rows_per_item", 1)
    dev = device if device is not None else next(inner.parameters()).device
    X = torch.as_tensor(np.asarray(X, dtype=np.float32) if not torch.is_tensor(X) else X, device=dev)
    y = torch.as_tensor(np.asarray(y, dtype=np.float32) if not torch.is_tensor(y) else y, device=dev)
    if X_val is not None:
        X_val = torch.as_tensor(np.asarray(X_val, dtype=np.float32) if not torch.is_tensor(X_val) else X_val, device=dev)
        y_val = torch.as_tensor(np.asarray(y_val, dtype=np.float32) if not torch.is_tensor(y_val) else y_val, device=dev)
    n = len(X)
    bs = config.batch_size or auto_batch_size(n)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(module.parameters(), lr=config.lr, weight_decay=config.weight_decay, foreach=True)
    reduce = reduce or (lambda v: v)
    result = TrainResult()
    best_state = {k: v.detach().clone() for k, v in inner.state_dict().items()}
    scheduler = None
    planned = config.max_epochs
    epoch_seconds = 0.0

    def order(epoch: int) -> Any:
        if sampler is not None:
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
            return torch.as_tensor(list(iter(sampler)), dtype=torch.long, device=dev)
        return torch.randperm(n, generator=generator).to(dev)

    def evaluate() -> float:
        if X_val is None or len(X_val) == 0:
            return math.nan
        module.eval()
        with torch.no_grad():
            value = float(loss(module(X_val), y_val))
        module.train()
        _clock.charge_forward(len(X_val), parameters)
        return reduce(value)

    module.train()
    for epoch in range(1, config.max_epochs + 1):
        tick = clock.now()
        index = order(epoch)
        total, count = 0.0, 0
        late = False
        for start in range(0, len(index), bs):
            if deadline is not None and start and clock.now() > deadline:
                late = True
                break
            rows = index[start:start + bs]
            xb, yb = X[rows], y[rows]
            optimizer.zero_grad(set_to_none=True)
            value = loss(module(xb), yb)
            value.backward()
            if config.max_grad_norm:
                torch.nn.utils.clip_grad_norm_(module.parameters(), config.max_grad_norm)
            optimizer.step()
            clock.charge(_clock.STEP_OVERHEAD_S + _clock.PER_ROW_PARAM_S * len(rows) * parameters)
            if scheduler is not None:
                scheduler.step()
            total = total + value.detach() * len(rows)
            count += len(rows)
        train_loss = reduce(float(total) / max(count, 1))
        val_loss = evaluate()
        result.curve.append((epoch, train_loss, val_loss))
        result.epochs = epoch
        score = val_loss if not math.isnan(val_loss) else train_loss
        if score < result.best_val * (1 - config.min_delta) or result.best_val == math.inf:
            result.best_val, result.best_epoch = score, epoch
            best_state = {k: v.detach().clone() for k, v in inner.state_dict().items()}
        elif epoch - result.best_epoch >= config.patience:
            result.stopped = "patience"
            break
        if late:
            result.stopped = "deadline"
            break
        if any(hook(epoch, train_loss, val_loss) for hook in hooks):
            result.stopped = "hook"
            break
        now = clock.now()
        epoch_seconds = now - tick if epoch == 1 else 0.8 * epoch_seconds + 0.2 * (now - tick)
        if deadline is not None and now + epoch_seconds > deadline:
            result.stopped = "deadline"
            break
        if epoch == 1 and config.schedule != "constant":
            # plan the schedule once the cost of an epoch is known
            if deadline is not None:
                planned = int(max(2, min(config.max_epochs - 1, (deadline - now) / max(epoch_seconds, 1e-6))))
            else:
                planned = config.max_epochs - 1
            steps = planned * math.ceil(len(index) / bs)
            if config.schedule == "onecycle":
                scheduler = torch.optim.lr_scheduler.OneCycleLR(
                    optimizer, max_lr=config.lr, total_steps=steps + 4, pct_start=0.15,
                    div_factor=5.0, final_div_factor=300.0)
            else:
                scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1),
                                                                       eta_min=config.lr / 500)
        if scheduler is not None and epoch > planned:
            result.stopped = "schedule"
            break
    else:
        result.stopped = "max_epochs"
    inner.load_state_dict(best_state)
    module.eval()
    result.seconds = clock.now() - started
    return result


class ExpertLoss:
    """Loss of a bank of per-path experts: `y = [targets ... | weight | path index]`, prediction
    (paths * members, N, out); each row trains only the members of its path's expert."""

    def __init__(self, base: SurrogateLoss, paths: int, members: int):
        self.base = base
        self.paths = paths
        self.members = members

    def __call__(self, pred: Any, y: Any) -> Any:
        import torch

        n = pred.shape[1]
        path = y[:, -1].long()
        pred = pred.reshape(self.paths, self.members, n, pred.shape[-1])
        routed = pred[path, :, torch.arange(n, device=pred.device)]  # (N, members, out)
        return self.base(routed.permute(1, 0, 2), y[:, :-1])


def polish_model(
    module: Any,
    X: Any,
    y: Any,
    *,
    loss: Callable[[Any, Any], Any],
    X_val: Any = None,
    y_val: Any = None,
    deadline: float,
    max_rows: int = 20_000,
    device: Any = None,
    seed: int = 0,
    plateau_steps: int | None = 8,
) -> TrainResult:
    """Full-batch L-BFGS from the current weights until `deadline`, keeping the best by validation.

    It stops early after `plateau_steps` steps without a validation loss 0.1% better; with None it
    runs to the deadline (the best state is kept either way, so only time is at stake) unless the
    training loss itself stops moving.

    After Adam has found the basin, quasi-Newton steps on the whole set reach a precision
    mini-batch noise does not (small regression networks gain an order of magnitude in a few
    seconds). Rows beyond `max_rows` are subsampled once.
    """
    import torch

    clock = _clock.current()
    started = clock.now()
    inner = _unwrap(module)
    parameters = _clock.parameter_count(inner) * getattr(inner, "rows_per_item", 1)
    dev = device if device is not None else next(inner.parameters()).device
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32)
    if len(X) > max_rows:
        pick = np.random.default_rng(seed).choice(len(X), size=max_rows, replace=False)
        X, y = X[pick], y[pick]
    Xt = torch.as_tensor(X, device=dev)
    yt = torch.as_tensor(y, device=dev)
    Xv = torch.as_tensor(np.asarray(X_val, dtype=np.float32), device=dev) if X_val is not None else None
    yv = torch.as_tensor(np.asarray(y_val, dtype=np.float32), device=dev) if y_val is not None else None
    module.train()
    # size each L-BFGS step (max_iter evaluations) so one step cannot overrun the deadline much
    tick = clock.now()
    with torch.no_grad():
        loss(module(Xt), yt)
    _clock.charge_forward(len(Xt), parameters)
    per_eval = max(3.0 * (clock.now() - tick), 1e-4)  # forward + backward
    max_iter = int(np.clip((deadline - clock.now()) / (4 * per_eval), 1, 20))
    optimizer = torch.optim.LBFGS(module.parameters(), lr=1.0, max_iter=max_iter, history_size=30,
                                  line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-14)

    def closure() -> Any:
        optimizer.zero_grad(set_to_none=True)
        value = loss(module(Xt), yt)
        value.backward()
        _clock.charge_training_step(len(Xt), parameters)
        return value

    def evaluate() -> float:
        module.eval()
        with torch.no_grad():
            value = float(loss(module(Xv if Xv is not None else Xt), yv if yv is not None else yt))
        module.train()
        _clock.charge_forward(len(Xv) if Xv is not None else len(Xt), parameters)
        return value

    result = TrainResult()
    result.best_val = evaluate()
    best_state = {k: v.detach().clone() for k, v in inner.state_dict().items()}
    step = 0
    stale = still = 0
    previous = math.inf
    while clock.now() < deadline:
        step += 1
        train_loss = float(optimizer.step(closure).detach())
        val_loss = evaluate()
        if not math.isfinite(train_loss) or not math.isfinite(val_loss):
            result.stopped = "diverged"
            break
        result.curve.append((step, train_loss, val_loss))
        if val_loss < result.best_val:
            stale = 0 if val_loss < result.best_val * (1 - 1e-3) else stale + 1
            result.best_val, result.best_epoch = val_loss, step
            best_state = {k: v.detach().clone() for k, v in inner.state_dict().items()}
        else:
            stale += 1
        still = still + 1 if abs(previous - train_loss) <= 1e-9 * abs(previous) else 0
        previous = train_loss
        if stale >= plateau_steps if plateau_steps is not None else still >= 8:
            result.stopped = "converged"
            break
    else:
        result.stopped = "deadline"
    inner.load_state_dict(best_state)
    module.eval()
    result.epochs = step
    result.seconds = clock.now() - started
    return result


class BlockLoss:
    """`base` loss on targets stored as blocks (blocks, rows * t): unfolds them to (rows, t)."""

    def __init__(self, base: Any, columns: int):
        self.base = base
        self.columns = columns

    def __call__(self, pred: Any, y: Any) -> Any:
        return self.base(pred, y.reshape(-1, self.columns))
