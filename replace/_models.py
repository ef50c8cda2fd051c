"""The networks: small MLPs, ensembles of them, and a path-aware gate with one expert per path.

Training uses torch modules; inference uses the same weights as numpy arrays (`NumpyNet`,
`StackedEnsemble`) so a single call costs a few small matmuls and no torch dispatch. Every
activation is its own `nn.Module` instance (DeepLift/SHAP break on functional or reused ones).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

ACTIVATIONS = ("relu", "silu", "tanh")


@dataclass(frozen=True)
class Architecture:
    """One network shape: hidden `width` x `depth`, activation, members, path-aware or not."""

    width: int
    depth: int
    activation: str = "silu"
    ensemble: int = 1
    path_aware: bool = False

    @property
    def label(self) -> str:
        kind = "paths" if self.path_aware else "mlp"
        return f"{kind} {self.depth}x{self.width} {self.activation} x{self.ensemble}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Architecture":
        return cls(**dict(data))


def _torch():
    import torch

    return torch


def activation_module(name: str) -> Any:
    from torch import nn

    return {"relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh}[name]()


def make_mlp(in_dim: int, out_dim: int, width: int, depth: int, activation: str) -> Any:
    """nn.Sequential of Linear layers, each hidden one followed by its own activation module."""
    from torch import nn

    layers: list[Any] = []
    dim = in_dim
    for _ in range(depth):
        layers.append(nn.Linear(dim, width))
        layers.append(activation_module(activation))
        dim = width
    layers.append(nn.Linear(dim, out_dim))
    return nn.Sequential(*layers)


# -- numpy side ------------------------------------------------------------------------------

def _act_numpy(name: str):
    if name == "relu":
        return lambda a: np.maximum(a, 0.0, out=a)
    if name == "silu":
        return lambda a: a * (0.5 + 0.5 * np.tanh(0.5 * a))
    if name == "tanh":
        return np.tanh
    raise ValueError(f"activation={name!r} : unknown")


@dataclass
class NumpyNet:
    """One MLP as numpy arrays: weights (in, out), biases (out,), one activation between layers."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    activation: str

    @property
    def sizes(self) -> list[int]:
        return [self.weights[0].shape[0]] + [w.shape[1] for w in self.weights]

    @classmethod
    def from_module(cls, module: Any, activation: str) -> "NumpyNet":
        from torch import nn

        inner = getattr(module, "module", module)  # DDP-wrapped
        linears = [m for m in inner.modules() if isinstance(m, nn.Linear)]
        return cls([l.weight.detach().cpu().numpy().T.astype(np.float32) for l in linears],
                   [l.bias.detach().cpu().numpy().astype(np.float32) for l in linears], activation)

    def to_module(self) -> Any:
        torch = _torch()
        sizes = self.sizes
        module = make_mlp(sizes[0], sizes[-1], sizes[1] if len(sizes) > 2 else 1, len(sizes) - 2, self.activation)
        from torch import nn

        linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for layer, w, b in zip(linears, self.weights, self.biases):
                layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.T, dtype=np.float32)))
                layer.bias.copy_(torch.from_numpy(np.ascontiguousarray(b, dtype=np.float32)))
        return module.eval()

    def tensors(self, prefix: str) -> dict[str, np.ndarray]:
        out = {}
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            out[f"{prefix}.{i}.weight"] = np.ascontiguousarray(w, dtype=np.float32)
            out[f"{prefix}.{i}.bias"] = np.ascontiguousarray(b, dtype=np.float32)
        return out

    @classmethod
    def from_tensors(cls, prefix: str, tensors: Mapping[str, np.ndarray], activation: str) -> "NumpyNet":
        weights, biases = [], []
        i = 0
        while f"{prefix}.{i}.weight" in tensors:
            weights.append(np.asarray(tensors[f"{prefix}.{i}.weight"], dtype=np.float32))
            biases.append(np.asarray(tensors[f"{prefix}.{i}.bias"], dtype=np.float32))
            i += 1
        if not weights:
            raise KeyError(prefix)
        return cls(weights, biases, activation)

    def forward(self, x: np.ndarray) -> np.ndarray:
        act = _act_numpy(self.activation)
        a = np.asarray(x, dtype=np.float64)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            a = a @ w.astype(np.float64) + b
            if i < last:
                a = act(a)
        return a


class StackedEnsemble:
    """M same-shape members evaluated together.

    One row: weights laid side by side (first layer) and block-diagonally (later layers), so
    each layer is one small matmul whatever M is. Many rows: batched matmul over members.
    """

    def __init__(self, nets: Sequence[NumpyNet]):
        self.nets = list(nets)
        self.m = len(nets)
        self.act = _act_numpy(nets[0].activation)
        self.out_dim = nets[0].sizes[-1]
        self.n_layers = len(nets[0].weights)
        single = []
        batch = []
        for layer in range(self.n_layers):
            ws = [n.weights[layer].astype(np.float64) for n in nets]
            bs = [n.biases[layer].astype(np.float64) for n in nets]
            if layer == 0:
                w = np.concatenate(ws, axis=1)
            else:
                rows = sum(x.shape[0] for x in ws)
                cols = sum(x.shape[1] for x in ws)
                w = np.zeros((rows, cols))
                r = c = 0
                for x in ws:
                    w[r:r + x.shape[0], c:c + x.shape[1]] = x
                    r += x.shape[0]
                    c += x.shape[1]
            single.append((np.ascontiguousarray(w), np.concatenate(bs)))
            batch.append((np.stack(ws), np.stack(bs)[:, None, :]))
        self.single = single
        self.batch = batch
        # one-row path: silu(a) = h * (1 + tanh(h)) with h = a / 2, so layers feeding a silu
        # are pre-scaled by 1/2 (three ufunc calls per layer instead of four)
        activation = nets[0].activation
        self._silu = activation == "silu"
        self._relu = activation == "relu"
        steps = []
        for i, (w, b) in enumerate(single):
            hidden = i < self.n_layers - 1
            if hidden and self._silu:
                w, b = w * 0.5, b * 0.5
            steps.append((np.ascontiguousarray(w), np.ascontiguousarray(b), hidden))
        self._steps = steps
        self._shape = (self.m, self.out_dim)

    def one(self, x: np.ndarray) -> np.ndarray:
        """x (d,) -> (M, out)."""
        a = x
        if self._silu:
            tanh = np.tanh
            for w, b, hidden in self._steps:
                a = a @ w
                a += b
                if hidden:
                    t = tanh(a)
                    t += 1.0
                    t *= a
                    a = t
        elif self._relu:
            maximum = np.maximum
            for w, b, hidden in self._steps:
                a = a @ w
                a += b
                if hidden:
                    maximum(a, 0.0, out=a)
        else:
            act = self.act
            for w, b, hidden in self._steps:
                a = a @ w
                a += b
                if hidden:
                    a = act(a)
        return a.reshape(self._shape)

    def many(self, x: np.ndarray) -> np.ndarray:
        """x (N, d) -> (M, N, out)."""
        act = self.act
        last = self.n_layers - 1
        x = np.asarray(x, dtype=np.float64)
        if self.m == 1:
            a = x
            for i, (w, b) in enumerate(self.batch):
                a = a @ w[0] + b[0]
                if i < last:
                    a = act(a)
            return a[None]
        w0, b0 = self.single[0]
        a = (x @ w0 + b0).reshape(len(x), self.m, -1).transpose(1, 0, 2)
        if last > 0:
            a = act(a)
        for i in range(1, self.n_layers):
            w, b = self.batch[i]
            a = np.matmul(a, w) + b
            if i < last:
                a = act(a)
        return a


# -- torch side for explanation and export -----------------------------------------------------

def surrogate_module(model: "ModelWeights", out: Any) -> Any:
    """A torch module: encoded inputs (N, d) -> outputs in original units, ensemble-averaged.

    Real: (N,); vector: (N, k); labels/outcome only: logits (N, n_classes). Path-aware models
    route each row to the expert the gate picks (hard argmax; gradients flow through the expert).
    """
    torch = _torch()
    from torch import nn

    class Decode(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.width = out.width
            self.kind = out.kind
            self.asinh = out.warp == "asinh"
            self.register_buffer("mean", torch.tensor(np.asarray(out.mean, dtype=np.float32).reshape(-1)))
            self.register_buffer("std", torch.tensor(np.asarray(out.std, dtype=np.float32).reshape(-1)))
            self.scale = float(out.scale)

        def forward(self, raw: Any) -> Any:  # raw (M, N, out)
            if self.width == 0:
                return raw.mean(dim=0)
            z = raw[..., : self.width] * self.std + self.mean
            if self.asinh:
                z = torch.sinh(z) * self.scale
            z = z.mean(dim=0)
            return z[:, 0] if self.kind == "real" else z

    class Members(nn.Module):
        def __init__(self, nets: Sequence[NumpyNet]) -> None:
            super().__init__()
            self.members = nn.ModuleList([n.to_module() for n in nets])

        def forward(self, x: Any) -> Any:
            return torch.stack([m(x) for m in self.members])

    class Plain(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ensemble = Members(model.members)
            self.decode = Decode()

        def forward(self, x: Any) -> Any:
            return self.decode(self.ensemble(x))

    class Paths(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gate = Members(model.gate)
            self.experts = nn.ModuleList([Members(e) for e in model.experts])
            self.decode = Decode()

        def forward(self, x: Any) -> Any:
            logits = self.gate(x).mean(dim=0)                      # (N, P)
            choice = torch.nn.functional.one_hot(logits.argmax(dim=1), len(self.experts)).to(x.dtype)
            raw = torch.stack([e(x) for e in self.experts])         # (P, M, N, out)
            routed = (raw * choice.T[:, None, :, None]).sum(dim=0)  # (M, N, out)
            return self.decode(routed)

    module = Paths() if model.path_aware else Plain()
    return module.eval()


@dataclass
class ModelWeights:
    """All weights of a surrogate: plain ensemble members, or a gate plus per-path experts."""

    architecture: Architecture
    members: list[NumpyNet]
    gate: list[NumpyNet] | None = None
    experts: list[list[NumpyNet]] | None = None
    path_ids: list[str] | None = None

    @property
    def path_aware(self) -> bool:
        return self.gate is not None

    def tensors(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        if self.path_aware:
            for i, net in enumerate(self.gate or []):
                out.update(net.tensors(f"gate.{i}"))
            for p, expert in enumerate(self.experts or []):
                for i, net in enumerate(expert):
                    out.update(net.tensors(f"expert.{p}.{i}"))
        else:
            for i, net in enumerate(self.members):
                out.update(net.tensors(f"member.{i}"))
        return out

    def layout(self) -> dict[str, Any]:
        return {
            "architecture": self.architecture.to_dict(),
            "members": len(self.members),
            "gate": len(self.gate) if self.gate else 0,
            "experts": [len(e) for e in self.experts] if self.experts else [],
            "path_ids": list(self.path_ids or []),
            "gate_activation": self.gate[0].activation if self.gate else "",
        }

    @classmethod
    def from_tensors(cls, layout: Mapping[str, Any], tensors: Mapping[str, np.ndarray]) -> "ModelWeights":
        arch = Architecture.from_dict(layout["architecture"])
        if layout.get("gate"):
            gate = [NumpyNet.from_tensors(f"gate.{i}", tensors, layout["gate_activation"])
                    for i in range(layout["gate"])]
            experts = [[NumpyNet.from_tensors(f"expert.{p}.{i}", tensors, arch.activation) for i in range(count)]
                       for p, count in enumerate(layout["experts"])]
            return cls(arch, [], gate, experts, list(layout["path_ids"]))
        members = [NumpyNet.from_tensors(f"member.{i}", tensors, arch.activation) for i in range(layout["members"])]
        return cls(arch, members)


class EmbeddingBlock(NamedTuple):
    """Encoded columns `start:stop` (one one-hot field) learned through a `dim`-wide embedding."""

    start: int
    stop: int
    dim: int


#: standard deviation of a fresh embedding entry. Small, so every category starts near the
#: others (E @ W ~ 0: the shared bias carries the mean) and gradient descent on the factored map
#: grows its strongest shared directions first (the low-rank bias of small-init factorisations):
#: a category seen in few rows stays close to those that act like it. bench/embeddings.py: at
#: 8 traces per store, std 0.01-0.2 beat one-hot; std 1.0 (category noise of the size of a
#: standardised input) lost to it.
EMBED_INIT_STD = 0.05


def _embedding_blocks(embeddings: Sequence[Sequence[int]] | None, in_dim: int) -> list[EmbeddingBlock]:
    blocks = sorted(EmbeddingBlock(*(int(v) for v in b)) for b in (embeddings or ()))
    previous = 0
    for b in blocks:
        if not (previous <= b.start < b.stop <= in_dim) or b.dim < 1:
            raise ValueError(f"embeddings={list(embeddings or ())!r} : block {tuple(b)} must lie in [0, {in_dim}), "
                             "not overlap another, and have dim >= 1. Pass InputEncoder.embedding_blocks()")
        previous = b.stop
    return blocks


def batched_mlp(members: int, in_dim: int, out_dim: int, width: int, depth: int, activation: str, *,
                embeddings: Sequence[Sequence[int]] | None = None) -> Any:
    """`members` independent MLPs evaluated together with batched matmuls: x (N, d) -> (M, N, out).

    Small networks are dominated by per-step overhead, so training M members at once costs
    about as much as training one; each member has its own initialisation.

    `embeddings`: `(start, stop, dim)` column blocks (one-hot fields with many categories, see
    `InputEncoder.embedding_blocks()`) that reach the first layer through a bias-free linear map
    to `dim` columns, shared by all members: a category seen in few rows learns `dim` numbers
    from its rows and borrows the map to the hidden layer from every row and member. Since
    `one_hot @ E @ W == one_hot @ (E @ W)`, `to_numpy()` folds E into the first layer, so the
    stored network is the plain MLP on the full encoded input (inference is unchanged).
    """
    torch = _torch()
    from torch import nn

    blocks = _embedding_blocks(embeddings, in_dim)
    inside = {c for b in blocks for c in range(b.start, b.stop)}
    keep = [c for c in range(in_dim) if c not in inside]
    first_dim = len(keep) + sum(b.dim for b in blocks)

    class BatchedMLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.members = members
            self.activation = activation
            self.in_dim = in_dim
            self.blocks = blocks
            sizes = [first_dim] + [width] * depth + [out_dim]
            self.weights = nn.ParameterList()
            self.biases = nn.ParameterList()
            for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
                bound = 1.0 / np.sqrt(max(fan_in, 1))
                self.weights.append(nn.Parameter(torch.empty(members, fan_in, fan_out).uniform_(-bound, bound)))
                self.biases.append(nn.Parameter(torch.empty(members, 1, fan_out).uniform_(-bound, bound)))
            self.acts = nn.ModuleList([activation_module(activation) for _ in range(depth)])
            # created last, so a network without embeddings draws the same initial weights as before
            self.embeddings = nn.ParameterList(
                [nn.Parameter(torch.randn(b.stop - b.start, b.dim) * EMBED_INIT_STD) for b in blocks])
            self.register_buffer("keep", torch.tensor(keep, dtype=torch.long), persistent=False)

        def embed(self, x: Any) -> Any:
            """(..., in_dim) -> (..., first_dim): plain columns, then each block's embedding."""
            if not self.blocks:
                return x
            parts = [x.index_select(-1, self.keep)]
            parts += [torch.matmul(x[..., b.start:b.stop], e) for b, e in zip(self.blocks, self.embeddings)]
            return torch.cat(parts, dim=-1)

        def forward(self, x: Any) -> Any:
            a = torch.matmul(self.embed(x).unsqueeze(0), self.weights[0]) + self.biases[0]
            for i in range(1, len(self.weights)):
                a = self.acts[i - 1](a)
                a = torch.baddbmm(self.biases[i], a, self.weights[i])
            return a

        def first_layer(self) -> np.ndarray:
            """(members, in_dim, width) float64: the first layer on the full encoded input,
            each embedding folded in (rows of a block = E @ that block's rows)."""
            w = self.weights[0].detach().cpu().double().numpy()
            if not self.blocks:
                return w
            full = np.zeros((self.members, self.in_dim, w.shape[2]))
            full[:, keep] = w[:, : len(keep)]
            row = len(keep)
            for b, e in zip(self.blocks, self.embeddings):
                e64 = e.detach().cpu().double().numpy()
                full[:, b.start:b.stop] = np.matmul(e64[None], w[:, row:row + b.dim])
                row += b.dim
            return full

        def to_numpy(self) -> list[NumpyNet]:
            first = self.first_layer()
            nets = []
            for m in range(self.members):
                weights = [first[m].astype(np.float32)]
                weights += [w[m].detach().cpu().numpy().astype(np.float32) for w in list(self.weights)[1:]]
                nets.append(NumpyNet(weights,
                                     [b[m, 0].detach().cpu().numpy().astype(np.float32) for b in self.biases],
                                     self.activation))
            return nets

        def n_parameters(self) -> int:
            """Trained parameters per member, the shared embeddings counted once."""
            shared = sum(p.numel() for p in self.embeddings.parameters())
            own = sum(p.numel() for p in self.weights.parameters()) + sum(p.numel() for p in self.biases.parameters())
            return int(own // max(self.members, 1) + shared)

    return BatchedMLP()


def expert_bank(paths: int, members: int, in_dim: int, out_dim: int, width: int, depth: int, activation: str, *,
                embeddings: Sequence[Sequence[int]] | None = None) -> Any:
    """One small MLP ensemble per branch path, trained on blocks that hold the same number of
    rows of every path: each expert computes only its own rows (cost independent of the number
    of paths) and rare paths weigh as much as common ones. `embeddings` (see `batched_mlp`) are
    shared by every expert and member, and folded into each expert's first layer by `to_numpy`.

    Input rows are blocks `(P * B * d)` flattened (see `make_blocks`); output (members, blocks *
    P * B, out) in the block order, so `SurrogateLoss` applies unchanged to the unfolded targets.
    """
    torch = _torch()
    from torch import nn

    class ExpertBank(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.paths, self.members, self.in_dim = paths, members, in_dim
            self.net = batched_mlp(paths * members, in_dim, out_dim, width, depth, activation,
                                   embeddings=embeddings)

        def forward(self, blocks: Any) -> Any:
            nb = blocks.shape[0]
            x = blocks.reshape(nb, self.paths, -1, self.in_dim)            # (nb, P, B, d)
            b = x.shape[2]
            x = x.permute(1, 0, 2, 3).reshape(self.paths, nb * b, self.in_dim)
            net = self.net
            x = net.embed(x)                                                 # (P, nb*B, d') shared map
            x = x.repeat_interleave(self.members, dim=0)                     # (P*M, nb*B, d')
            a = torch.baddbmm(net.biases[0], x, net.weights[0])
            for i in range(1, len(net.weights)):
                a = net.acts[i - 1](a)
                a = torch.baddbmm(net.biases[i], a, net.weights[i])
            out = a.shape[-1]
            a = a.reshape(self.paths, self.members, nb, b, out).permute(1, 2, 0, 3, 4)
            return a.reshape(self.members, nb * self.paths * b, out)

        def to_numpy(self) -> list[NumpyNet]:
            return self.net.to_numpy()

    return ExpertBank()


def make_blocks(X: np.ndarray, y: np.ndarray, labels: np.ndarray, paths: int, *, rows_per_path: int,
                rng: np.random.Generator, max_blocks: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Arrange rows into blocks of `rows_per_path` rows of every path (resampling small paths).

    Returns X blocks (nb, P * B * d) and y blocks (nb, P * B * t) (unfold with `BlockLoss`),
    paths without rows filled with copies of any row and weight 0 (last column of y).
    """
    groups = [np.flatnonzero(labels == p) for p in range(paths)]
    largest = max((len(g) for g in groups), default=0)
    nb = int(min(max_blocks, max(1, int(np.ceil(largest / rows_per_path)))))
    need = nb * rows_per_path
    picks = np.empty((paths, need), dtype=np.int64)
    weights_zero = np.zeros(paths, dtype=bool)
    for p, g in enumerate(groups):
        if len(g) == 0:
            picks[p] = 0
            weights_zero[p] = True
            continue
        order = rng.permutation(g)
        reps = int(np.ceil(need / len(order)))
        picks[p] = np.concatenate([order] + [rng.permutation(g) for _ in range(reps - 1)])[:need]
    # index layout (nb, P, B)
    index = picks.reshape(paths, nb, rows_per_path).transpose(1, 0, 2)
    Xb = X[index].reshape(nb, -1)
    yb = y[index].reshape(nb * paths * rows_per_path, -1).copy()
    if weights_zero.any():
        mask = np.broadcast_to(weights_zero[None, :, None], (nb, paths, rows_per_path)).reshape(-1)
        yb[mask, -1] = 0.0
    return Xb.astype(np.float32), yb.reshape(nb, -1).astype(np.float32)
