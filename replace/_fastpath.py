"""Inference plans compiled from a surrogate's weights: one row in microseconds, many rows in f32.

The reference evaluation (`StackedEnsemble.one` / `.many`, float64) stays the definition of
what a surrogate answers; these plans compute the same numbers faster and are pinned to it by
tests (one row: float64 rounding; many rows: float32 rounding, the precision the weights were
trained in, with the same routing).

- `OneRow`: a single call costs a handful of numpy calls on tiny arrays, so overhead, not
  arithmetic, is the cost. Biases are folded into the matmuls through a constant unit (the
  input gets a trailing 1, each hidden layer keeps a unit whose activation is an exact power
  of two), `ndarray.dot` is used (cheaper to dispatch than `@`), activations take array
  operands (a Python-float operand costs twice as much), the gate's and every expert's
  first layer are one matmul, the gate members' logits are summed inside the last gate
  layer, and for a plain real output the ensemble mean and the output scaling are folded
  into the last expert layer.
- `ManyRows`: float32 weights (tanh, matmul and the adds run 2-5x faster than in float64),
  rows in cache-sized chunks, each row evaluated by the gate and then by its own expert only
  (rows grouped by the chosen path, one matmul chain per path). Rows whose two best gate
  logits are close are routed again in float64, so the chosen path is the reference's.
- `domain_mask`: the schema's domain check with categorical columns checked through their
  distinct values instead of row by row.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping, Sequence

import numpy as np

from ._encoding import equality_categories, unique_inverse
from ._models import ModelWeights, NumpyNet, StackedEnsemble
from ._sampling import in_domain_mask

#: rows per chunk in `ManyRows` for a 64-wide layer (activations of one chunk stay in the
#: CPU caches); narrower networks take proportionally more rows, up to `MAX_CHUNK_ROWS`.
CHUNK_ROWS = 4096
MAX_CHUNK_ROWS = 16384
#: gate logits closer than this (relative to their size) are routed again in float64.
ROUTE_MARGIN = 1e-3

# Pre-activation value of the constant unit and the activation's exact value there:
# relu(1) = 1; silu is evaluated as h * (1 + tanh(h)) on h = a / 2, and tanh(32) rounds to
# 1.0 exactly, so the unit carries 64; tanh(20) rounds to 1.0 exactly.
_CONSTANT_IN = {"relu": 1.0, "silu": 32.0, "tanh": 20.0}


def _act_value(name: str, value: float) -> float:
    v = np.array([value])
    if name == "relu":
        return float(np.maximum(v, 0.0)[0])
    if name == "silu":
        return float((v * (1.0 + np.tanh(v)))[0])
    return float(np.tanh(v)[0])


class _Chain:
    """One stacked ensemble as augmented float64 layers for a single row (see module doc)."""

    def __init__(self, ens: StackedEnsemble, *, sum_outputs: int = 0, scale: tuple[float, float, bool] | None = None):
        self.activation = ens.nets[0].activation
        act = self.activation
        c_in = _CONSTANT_IN.get(act, 1.0)
        c_out = _act_value(act, c_in)
        if c_out == 0.0:  # pragma: no cover - all supported activations are non-zero there
            raise ValueError(act)
        layers = []
        carry = 1.0  # value of the constant unit entering the layer
        n = ens.n_layers
        for i, (w, b) in enumerate(ens.single):
            hidden = i < n - 1
            w = np.asarray(w, dtype=np.float64)
            b = np.asarray(b, dtype=np.float64)
            if not hidden and sum_outputs:
                # gate: logits summed over members inside the layer (columns m * P + p)
                p = sum_outputs
                s = np.zeros((w.shape[1], p))
                for j in range(w.shape[1]):
                    s[j, j % p] = 1.0
                w, b = w @ s, b @ s
            if not hidden and scale is not None:
                # one real output: * std + mean inside the layer, and the member mean too
                # when nothing nonlinear follows
                std0, mean0, average = scale
                w, b = w * std0, b * std0 + mean0
                if average:
                    m = w.shape[1]
                    w, b = w @ np.full((m, 1), 1.0 / m), b @ np.full((m, 1), 1.0 / m)
            aug = np.vstack([w, b[None, :] / carry])
            if hidden:
                if act == "silu":
                    aug = aug * 0.5
                col = np.zeros((aug.shape[0], 1))
                col[-1, 0] = c_in / carry
                aug = np.hstack([aug, col])
                carry = c_out
            layers.append(np.ascontiguousarray(aug))
        self.layers = layers


def _rest_silu(layers: Sequence[np.ndarray], a: np.ndarray, ones: list) -> np.ndarray:
    """The activation on the first layer's output `a`, then the remaining layers (silu as
    h * (1 + tanh h) on pre-halved inputs)."""
    tanh = np.tanh
    for i in range(1, len(layers)):
        t = tanh(a)
        t += ones[i - 1]
        t *= a
        a = t.dot(layers[i])
    return a


def _rest_relu(layers: Sequence[np.ndarray], a: np.ndarray, zeros: list) -> np.ndarray:
    maximum = np.maximum
    for i in range(1, len(layers)):
        a = maximum(a, zeros[i - 1]).dot(layers[i])
    return a


def _rest_tanh(layers: Sequence[np.ndarray], a: np.ndarray, _: list) -> np.ndarray:
    tanh = np.tanh
    for i in range(1, len(layers)):
        a = tanh(a).dot(layers[i])
    return a


_REST = {"silu": _rest_silu, "relu": _rest_relu, "tanh": _rest_tanh}


def _rest_of(act: str, layers: Sequence[np.ndarray]) -> tuple[Any, list]:
    """The layer runner for `act` and its constant operand per hidden layer."""
    widths = [w.shape[1] for w in layers[:-1]]
    if act == "relu":
        return _rest_relu, [np.zeros(k) for k in widths]
    return _REST[act], [np.ones(k) for k in widths]


class OneRow:
    """The network part of a single call: encoded features (a list) -> raw outputs (M, out)."""

    def __init__(self, weights: ModelWeights, out_width: int, fast_real: tuple[float, float, bool] | None):
        self.path_aware = weights.path_aware
        if weights.path_aware:
            gate = StackedEnsemble(weights.gate or [])
            experts = [StackedEnsemble(e) for e in weights.experts or []]
            self.m = experts[0].m
            g = _Chain(gate, sum_outputs=gate.out_dim)
            es = [_Chain(e) for e in experts]
            ev = [_Chain(e, scale=fast_real) for e in experts] if fast_real else None
            # first layers side by side: gate, then expert 0, 1, ...
            first = [g.layers[0]] + [e.layers[0] for e in es]
            self._first = np.ascontiguousarray(np.hstack(first))
            offsets = np.cumsum([0] + [f.shape[1] for f in first])
            self._gate_slice = slice(int(offsets[0]), int(offsets[1]))
            self._exp_slices = [slice(int(offsets[i + 1]), int(offsets[i + 2])) for i in range(len(es))]
            self._gate_rest = g.layers
            self._exp_rest = [e.layers for e in es]
            self._exp_value = [e.layers for e in ev] if ev else None
            self._gate_run, self._gate_k = _rest_of(g.activation, g.layers)
            self._exp_run, self._exp_k = _rest_of(es[0].activation, es[0].layers)
        else:
            ens = StackedEnsemble(weights.members)
            self.m = ens.m
            c = _Chain(ens)
            self._layers = c.layers
            self._value_layers = _Chain(ens, scale=fast_real).layers if fast_real else None
            self._run, self._k = _rest_of(c.activation, c.layers)
        self._shape = (self.m, out_width)

    def raw(self, feats: list) -> tuple[np.ndarray, int]:
        """(M, out) raw outputs and the path index (0 for plain models)."""
        feats.append(1.0)
        x = np.array(feats)
        if not self.path_aware:
            layers = self._layers
            return self._run(layers, x.dot(layers[0]), self._k).reshape(self._shape), 0
        h = x.dot(self._first)
        index = int(self._gate_run(self._gate_rest, h[self._gate_slice], self._gate_k).argmax())
        a = self._exp_run(self._exp_rest[index], h[self._exp_slices[index]], self._exp_k)
        return a.reshape(self._shape), index

    def value(self, feats: list) -> np.ndarray:
        """A single real output scaled to `z * std + mean`: (1,) the member mean when
        `fast_real` says to average, else (M,) per member; needs `fast_real`."""
        feats.append(1.0)
        x = np.array(feats)
        if not self.path_aware:
            layers = self._value_layers
            return self._run(layers, x.dot(layers[0]), self._k)
        h = x.dot(self._first)
        index = int(self._gate_run(self._gate_rest, h[self._gate_slice], self._gate_k).argmax())
        return self._exp_run(self._exp_value[index], h[self._exp_slices[index]], self._exp_k)  # type: ignore[index]


# -- many rows ------------------------------------------------------------------------------

class _Batch32:
    """One stacked ensemble in float32 for many rows: x (n, d) -> (M, n, out)."""

    def __init__(self, nets: Sequence[NumpyNet]):
        self.m = len(nets)
        self.act = nets[0].activation
        silu = self.act == "silu"
        n_layers = len(nets[0].weights)
        self.layers = []
        for i in range(n_layers):
            scale = 0.5 if (silu and i < n_layers - 1) else 1.0
            ws = [np.asarray(n.weights[i], dtype=np.float64) * scale for n in nets]
            bs = [np.asarray(n.biases[i], dtype=np.float64) * scale for n in nets]
            if i == 0:  # members side by side: one matmul over (d, M * h)
                w = np.concatenate(ws, axis=1)
                b = np.concatenate(bs)
            else:
                w = np.stack(ws) if self.m > 1 else ws[0]
                b = np.stack(bs)[:, None, :] if self.m > 1 else bs[0]
            self.layers.append((np.ascontiguousarray(w, dtype=np.float32), np.ascontiguousarray(b, dtype=np.float32)))
        self.hidden0 = nets[0].weights[0].shape[1]
        # array operands: numpy's float32 loops with a Python-float operand are several times slower
        self._ones = [np.ones(w.shape[-1], dtype=np.float32) for w, _ in self.layers[1:]]
        self._zeros = [np.zeros(w.shape[-1], dtype=np.float32) for w, _ in self.layers[1:]]
        self._ones.insert(0, np.ones(self.hidden0, dtype=np.float32))
        self._zeros.insert(0, np.zeros(self.hidden0, dtype=np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        act, last = self.act, len(self.layers) - 1
        w, b = self.layers[0]
        a = x @ w
        a += b
        if self.m > 1 and last > 0:
            a = a.reshape(len(x), self.m, self.hidden0).transpose(1, 0, 2)
        for i in range(1, last + 1):
            if act == "silu":
                t = np.tanh(a)
                np.add(t, self._ones[i - 1], out=t)
                t *= a
                a = t
            elif act == "relu":
                np.maximum(a, self._zeros[i - 1], out=a)
            else:
                a = np.tanh(a)
            w, b = self.layers[i]
            a = np.matmul(a, w)
            a += b
        if a.ndim == 2:  # one member, or a single-layer network
            if self.m == 1:
                return a[None]
            return a.reshape(len(x), self.m, -1).transpose(1, 0, 2)
        return a


class ManyRows:
    """The network part of a batch in float32: encoded rows (n, d) float64 -> raw (M, n, out)
    float64 and, for path-aware models, the chosen path per row (the reference's routing)."""

    def __init__(self, weights: ModelWeights, out_width: int, *, chunk: int | None = None):
        self.path_aware = weights.path_aware
        self.out_width = out_width
        if weights.path_aware:
            self._gate = _Batch32(weights.gate or [])
            self._gate_ref = StackedEnsemble(weights.gate or [])
            self._experts = [_Batch32(e) for e in weights.experts or []]
            self.m = self._experts[0].m
            self.n_paths = len(self._experts)
        else:
            self._net = _Batch32(weights.members)
            self.m = self._net.m
        if chunk is None:
            nets = [list(weights.gate or [])] + list(weights.experts or []) if weights.path_aware \
                else [list(weights.members)]
            widest = max(len(group) * max(w.shape[1] for net in group for w in net.weights) for group in nets)
            chunk = min(MAX_CHUNK_ROWS, max(CHUNK_ROWS, CHUNK_ROWS * 64 // max(widest, 1)))
        self.chunk = int(chunk)

    def __call__(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        n = len(X)
        raw = np.empty((self.m, n, self.out_width), dtype=np.float32)
        choice = np.empty(n, dtype=np.int64) if self.path_aware else None
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        for start in range(0, n, self.chunk):
            stop = min(n, start + self.chunk)
            xc = X32[start:stop]
            if not self.path_aware:
                raw[:, start:stop] = self._net(xc)
                continue
            c = self._route(xc, X[start:stop])
            choice[start:stop] = c  # type: ignore[index]
            if self.n_paths == 1:
                raw[:, start:stop] = self._experts[0](xc)
                continue
            order = np.argsort(c, kind="stable")
            counts = np.bincount(c, minlength=self.n_paths)
            part = raw[:, start:stop]
            at = 0
            for p, k in enumerate(counts.tolist()):
                if k:
                    rows = order[at:at + k]
                    part[:, rows] = self._experts[p](xc[rows])
                    at += k
        return raw.astype(np.float64), choice

    def _route(self, x32: np.ndarray, x64: np.ndarray) -> np.ndarray:
        logits = self._gate(x32)
        logits = logits[0] if len(logits) == 1 else logits.sum(axis=0)
        choice = np.argmax(logits, axis=1)
        close = np.flatnonzero(close_top2(logits))
        if close.size:
            exact = self._gate_ref.many(x64[close]).sum(axis=0)
            choice[close] = np.argmax(exact, axis=1)
        return choice


def close_top2(logits: np.ndarray) -> np.ndarray:
    """Rows (n, C) whose two largest values are within `ROUTE_MARGIN` (relative) of each other."""
    if logits.shape[-1] < 2:
        return np.zeros(logits.shape[0], dtype=bool)
    top2 = np.partition(logits, -2, axis=-1)[..., -2:]
    return (top2[..., 1] - top2[..., 0]) <= ROUTE_MARGIN * (1.0 + np.abs(top2[..., 1]))


def fragile_rows(raw: np.ndarray, out: Any) -> np.ndarray:
    """Rows of raw outputs (M, N, out) computed in float32 whose discrete answers float32
    rounding could change: the class (summed logits) or a member's vote close to a tie, or a
    real output close to a rounding boundary of its decimal grid (or of int)."""
    n = raw.shape[1]
    bad = np.zeros(n, dtype=bool)
    w = out.width
    if out.classes:
        logits = raw[:, :, w:]
        bad |= close_top2(logits.sum(axis=0))
        if raw.shape[0] > 1:
            bad |= close_top2(logits).any(axis=0)
    steps = []
    if w and out.decimals is not None:
        steps.append(10.0 ** -out.decimals)
    if w and out.kind == "real" and out.python_type == "int":
        steps.append(1.0)
    if steps:
        with np.errstate(all="ignore"):
            mean = out.decode_values(raw[:, :, :w]).mean(axis=0)
            for q in steps:
                scaled = mean / q
                dist = np.abs(scaled - np.floor(scaled) - 0.5) * q  # to the nearest half step
                bad |= np.any(dist <= 1e-4 * (np.abs(mean) + q), axis=1)
    return np.flatnonzero(bad)


# -- domain check -----------------------------------------------------------------------------

def domain_mask(schema: Any, columns: Mapping[str, Any]) -> np.ndarray:
    """`in_domain_mask` with non-numeric fields checked once per distinct value.

    Only numpy columns of plain dtypes (bool, numbers, strings) take the shortcut: their
    elements are the same numpy scalars the row-by-row check would see, so the answer is the
    same; object columns keep the row-by-row check.
    """
    fast = []
    rest = []
    for item in schema.fields:
        column = columns[item.name]
        if item.kind in ("categorical", "boolean") and isinstance(column, np.ndarray) and column.ndim == 1 \
                and column.dtype.kind in "biuUS" and len(column) > 32:
            fast.append(item)
        else:
            rest.append(item)
    mask = in_domain_mask(replace(schema, fields=tuple(rest)), columns) if rest else None
    if mask is None:
        n = len(next(iter(columns.values()))) if columns else 0
        mask = np.ones(n, dtype=bool)
    for item in fast:
        column = columns[item.name]
        if item.kind == "categorical" and equality_categories(list(item.categories), column):
            # a value is inside iff it equals a category the schema accepts in this dtype
            ok = np.zeros(len(column), dtype=bool)
            for category in item.categories:
                if item.contains(column.dtype.type(category))[0]:
                    ok |= column == category
            mask &= ok
            continue
        uniques, inverse = unique_inverse(column)
        ok = np.array([item.contains(v)[0] for v in uniques], dtype=bool)
        mask &= ok[inverse]
    return mask

