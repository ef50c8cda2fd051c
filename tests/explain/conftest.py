"""A tiny stand-in surrogate with the interface explain relies on (encode, feature groups,
torch module in original units, predict_batch), so explain's tests do not wait on training."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import pytest
import torch

from probes import Schema, Tolerance


class FakeSurrogate:
    """Numbers scaled to [0, 1], booleans 0/1, categories one-hot; a small ReLU network
    (separate nn.ReLU modules, eval mode) mapping them to a real output."""

    def __init__(self, schema: Schema, module: torch.nn.Module, tolerance: Tolerance = Tolerance(abs=0.05)) -> None:
        self.schema = schema
        self.tolerance = tolerance
        self._module = module.eval()
        names, groups = [], {}
        for f in schema.fields:
            start = len(names)
            if f.kind == "categorical":
                names.extend(f"{f.name}={c}" for c in f.categories)
            else:
                names.append(f.name)
            groups[f.name] = list(range(start, len(names)))
        self.feature_names = names
        self.feature_groups = groups
        self.metrics = _Metrics()
        self.manifest = {"seed": 0, "function": schema.function, "note": "test stand-in"}

    def encode(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        parts = []
        for f in self.schema.fields:
            column = columns[f.name]
            if f.kind in ("real", "integer"):
                parts.append(((np.asarray(column, dtype=float) - f.low) / ((f.high - f.low) or 1.0))[:, None])
            elif f.kind == "boolean":
                parts.append(np.asarray(column, dtype=float)[:, None])
            else:
                parts.append(np.stack([np.asarray([v == c for v in column], dtype=float) for c in f.categories], 1))
        return np.concatenate(parts, axis=1).astype(np.float32)

    def torch_module(self) -> torch.nn.Module:
        return self._module

    def predict_batch(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            return self._module(torch.as_tensor(self.encode(columns))).numpy().astype(float)

    def __call__(self, **kwargs: Any) -> float:
        return float(self.predict_batch({k: np.asarray([v], dtype=object if isinstance(v, str) else None)
                                         for k, v in kwargs.items()})[0])


class _Metrics:
    def to_dict(self) -> dict[str, Any]:
        return {"agreement": 0.97, "history": [{"epoch": e, "train_loss": 1.0 / (e + 1), "val_loss": 1.2 / (e + 1)}
                                               for e in range(20)]}


class Linear(torch.nn.Module):
    """y = w . x + b written as relu(z) - relu(-z): exact, with two separate ReLU modules."""

    def __init__(self, weights: np.ndarray, bias: float) -> None:
        super().__init__()
        d = len(weights)
        self.up = torch.nn.Linear(d, 2)
        self.relu = torch.nn.ReLU()
        self.down = torch.nn.Linear(2, 1)
        with torch.no_grad():
            w = torch.as_tensor(weights, dtype=torch.float32)
            self.up.weight.copy_(torch.stack([w, -w]))
            self.up.bias.copy_(torch.tensor([bias, -bias]))
            self.down.weight.copy_(torch.tensor([[1.0, -1.0]]))
            self.down.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.relu(self.up(x)))[:, 0]


def linear_surrogate(schema: Schema, weights: dict[str, float], bias: float = 0.0, **kw: Any) -> FakeSurrogate:
    """A stand-in computing sum_i w_i * scaled(x_i) exactly (in its encoding)."""
    probe = FakeSurrogate(schema, torch.nn.Identity())
    w = np.zeros(len(probe.feature_names))
    for name, value in weights.items():
        w[probe.feature_names.index(name)] = value
    return FakeSurrogate(schema, Linear(w, bias), **kw)


def trained_surrogate(fn: Callable[..., Any], schema: Schema, *, n: int = 2000, epochs: int = 150,
                      seed: int = 0, hidden: int = 32) -> FakeSurrogate:
    """A small MLP fitted to `fn` for a few seconds (real outputs only)."""
    torch.manual_seed(seed)
    probe = FakeSurrogate(schema, torch.nn.Identity())
    columns = schema.sample_columns(n, seed=seed)
    X = torch.as_tensor(probe.encode(columns))
    y = torch.as_tensor([float(fn(**kw)) for kw in schema.rows(columns)], dtype=torch.float32)
    mean, std = float(y.mean()), float(y.std()) or 1.0

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = torch.nn.Linear(X.shape[1], hidden)
            self.r1 = torch.nn.ReLU()
            self.b = torch.nn.Linear(hidden, hidden)
            self.r2 = torch.nn.ReLU()
            self.c = torch.nn.Linear(hidden, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.c(self.r2(self.b(self.r1(self.a(x)))))[:, 0] * std + mean

    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.mean(((net(X) - y) / std) ** 2)
        loss.backward()
        opt.step()
    return FakeSurrogate(schema, net)


@pytest.fixture
def fake_linear():
    return linear_surrogate


@pytest.fixture
def fake_surrogate():
    """The stand-in class, for tests that bring their own network."""
    return FakeSurrogate
