"""Fit's trainer: trains an architecture (a plain ensemble, or a gate plus one expert per branch
path) on the pool and judges it on the validation rows (`_Trainer`, giving a `_Candidate`), and
the rules that compare candidates (`_better`, `_improves`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from probes import Schema, Tolerance

from probes import _clock
from ._encoding import InputEncoder
from ._output_encoding import OutputEncoder
from ._fidelity import compare
from ._fit_config import _JUDGE_ROW_S, OTHER_PATHS, FitConfig
from ._models import Architecture, ModelWeights, batched_mlp, expert_bank, make_blocks
from ._pool import Pool
from ._sampling import take
from ._surrogate import Surrogate
from ._train import BlockLoss, SurrogateLoss, TrainConfig, polish_model, train_model

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
                    lr_scale: float = 1.0, optimizer: str = "adam",
                    to_deadline: bool = False) -> tuple[ModelWeights, Any, Any]:
        import torch

        torch.manual_seed(self.seed)
        module = batched_mlp(arch.ensemble, data.X.shape[1], self.out.out_width, arch.width, arch.depth,
                             arch.activation, embeddings=self._embeddings()).to(self.device)
        if init is not None:
            module.load_state_dict(init)
        loss = SurrogateLoss(self.out.width, self.out.n_classes)
        if optimizer == "lbfgs":
            result = polish_model(module, data.X[data.train], data.y[data.train], loss=loss, X_val=data.X[data.val],
                                  y_val=data.y[data.val], deadline=deadline, device=self.device, seed=self.seed,
                                  plateau_steps=None if to_deadline else 8)
        else:
            config = self._config(lr_scale, init)
            result = train_model(module, data.X[data.train], data.y[data.train], config=config, loss=loss,
                                 X_val=data.X[data.val], y_val=data.y[data.val], deadline=deadline,
                                 device=self.device, seed=self.seed)
        weights = ModelWeights(arch, module.to_numpy())
        return weights, result, {k: v.detach().clone() for k, v in module.state_dict().items()}

    # -- gate + experts ------------------------------------------------------------------
    def train_paths(self, arch: Architecture, data: _Data, pool: Pool, buckets: list[str], deadline: float, *,
                    init: Any = None, lr_scale: float = 1.0, optimizer: str = "adam",
                    to_deadline: bool = False) -> tuple[ModelWeights, Any, Any]:
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
                                  device=self.device, seed=self.seed, plateau_steps=None if to_deadline else 8)
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
              init: Any = None, lr_scale: float = 1.0, optimizer: str = "adam", to_deadline: bool = False) -> _Candidate:
        """`arch` trained until `deadline` (from `init`), judged on validation. `to_deadline`: L-BFGS
        does not stop on a validation plateau (the polish, whose time nothing else would use)."""
        clock = _clock.current()
        started = clock.now()
        if optimizer == "auto":
            # regression heads: Adam finds the basin, full-batch L-BFGS gets the precision
            if self.out.width and deadline - started > 1.0:
                first = self.train(arch, data, pool, buckets, started + 0.4 * (deadline - started), init=init,
                                   lr_scale=lr_scale, optimizer="adam")
                second = self.train(arch, data, pool, buckets, deadline, init=first.state, optimizer="lbfgs",
                                    to_deadline=to_deadline)
                second.curve = _joined(first.curve, second.curve)
                second.seconds = clock.now() - started
                return second
            optimizer = "adam"
        if arch.path_aware:
            weights, result, state = self.train_paths(arch, data, pool, buckets or [], deadline, init=init,
                                                      lr_scale=lr_scale, optimizer=optimizer, to_deadline=to_deadline)
        else:
            weights, result, state = self.train_plain(arch, data, deadline, init=init, lr_scale=lr_scale,
                                                      optimizer=optimizer, to_deadline=to_deadline)
        surrogate = self.surrogate(weights)
        if self.config.exact == "auto":  # judged as the hybrid it would become (exact paths, see _hybrid)
            from ._hybrid import fit_exact_paths

            surrogate._use_expressions(fit_exact_paths(surrogate, pool, data.val, None, self.schema,
                                                       cache=self.exact_cache)[0])
        judged = self.judge(surrogate, pool, data.val)
        params = _count_params(weights)
        return _Candidate(arch, weights, surrogate, judged["agreement"], float(np.mean(judged["excess"])),
                          params, clock.now() - started, result.curve, state, buckets)

def _joined(curve: Sequence[tuple[int, float, float]],
            more: Sequence[tuple[int, float, float]]) -> list[tuple[int, float, float]]:
    """A training curve (epoch, train loss, val loss) continued by a later run's, whose epochs
    count on from the first's last."""
    offset = curve[-1][0] if curve else 0
    return list(curve) + [(e + offset, t, v) for e, t, v in more]

def _count_params(weights: ModelWeights) -> int:
    def count(nets: Sequence[Any]) -> int:
        return sum(int(sum(w.size + b.size for w, b in zip(n.weights, n.biases))) for n in nets)

    if weights.path_aware:
        return count(weights.gate or []) + sum(count(e) for e in weights.experts or [])
    return count(weights.members)

def _improves(cand: _Candidate, best: _Candidate, *, ties: bool = False) -> bool:
    """Continued training is kept when validation agreement rises, or holds with a lower error;
    with `ties`, also when both hold (a round's model has seen more of the function than the
    one before it, and a validation set where both score 100% cannot tell them apart)."""
    if cand.agreement > best.agreement + 1e-9:
        return True
    if cand.agreement < best.agreement - 1e-9:
        return False
    return cand.excess < best.excess or (ties and cand.excess <= best.excess)

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
