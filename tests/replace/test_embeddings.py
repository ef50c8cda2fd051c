"""Learned embeddings of many-valued categoricals: found by the encoder, trained shared by every
member and expert, folded exactly into the plain first layer (so inference, save/load and ONNX
see the same plain MLP as before)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

from probes import Field, OutputSpec, Schema, Tolerance
from replace import Surrogate, fit
from replace import _trainer
from replace._encoding import EMBED_MIN_CATEGORIES, InputEncoder, embedding_dim
from replace._models import EmbeddingBlock, NumpyNet, StackedEnsemble, batched_mlp, expert_bank

STORES = [f"s{i:02d}" for i in range(40)]
_MULT = {s: 1.0 + 0.25 * (i % 4) for i, s in enumerate(STORES)}  # four latent fee groups


def store_fee(store: str, weight: float) -> float:
    """A store-level fee multiplier times a weight-based fee: 40 categories, one real."""
    return _MULT[store] * (2.0 + 0.5 * weight)


def branchy_fee(store: str, weight: float) -> float:
    """Two branches (two experts), the same 40 store multipliers in both."""
    if weight > 5.0:
        return _MULT[store] * (10.0 + 0.2 * weight)
    return _MULT[store] * (2.0 + 0.5 * weight)


def _schema() -> Schema:
    return Schema((
        Field("price", "real", low=0.0, high=100.0),
        Field("store", "categorical", categories=tuple(STORES)),
        Field("zone", "categorical", categories=("EU", "NA", "ASIA")),
        Field("kids", "integer", low=0, high=4),
        Field("city", "categorical", categories=tuple(f"c{i}" for i in range(EMBED_MIN_CATEGORIES))),
    ), OutputSpec("real"))


def _columns(n: int = 200, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    return {
        "price": rng.uniform(0, 100, n),
        "store": np.array([STORES[i] for i in rng.integers(0, 40, n)], dtype=object),
        "zone": np.array([["EU", "NA", "ASIA"][i] for i in rng.integers(0, 3, n)], dtype=object),
        "kids": rng.integers(0, 5, n),
        "city": np.array([f"c{i}" for i in rng.integers(0, EMBED_MIN_CATEGORIES, n)], dtype=object),
    }


# -- the encoder's blocks --------------------------------------------------------------------------
def test_blocks_only_for_fields_with_many_categories() -> None:
    enc = InputEncoder.fit(_schema(), _columns())
    columns = enc.feature_groups_["store"]
    assert enc.embedding_blocks() == [EmbeddingBlock(columns[0], columns[-1] + 1, embedding_dim(40))]
    assert embedding_dim(40) == 13 and embedding_dim(17) == 8 and embedding_dim(1000) == 16
    assert enc.embedding_dims() == {"store": 13}  # zone (3), kids (5) and city (exactly 16) stay one-hot
    again = InputEncoder.from_dict(enc.to_dict())
    assert again.embedding_blocks() == enc.embedding_blocks()
    small = Schema((Field("zone", "categorical", categories=("EU", "NA")), Field("x", "real", low=0.0, high=1.0)),
                   OutputSpec("real"))
    assert InputEncoder.fit(small, {"zone": np.array(["EU", "NA"] * 10, dtype=object),
                                    "x": np.linspace(0, 1, 20)}).embedding_blocks() == []


def test_files_without_embed_dim_still_give_blocks() -> None:
    data = InputEncoder.fit(_schema(), _columns()).to_dict()
    for code in data["fields"]:
        code.pop("embed_dim")
    assert InputEncoder.from_dict(data).embedding_dims() == {"store": 13}


# -- folding is exact --------------------------------------------------------------------------------
def _trained_looking(module: Any, seed: int) -> None:
    """Move every parameter away from its initialisation (folding must hold for any values)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))


def test_batched_mlp_with_embeddings_folds_into_the_plain_net() -> None:
    import torch

    enc = InputEncoder.fit(_schema(), _columns())
    X = enc.encode(_columns(64, seed=1))
    torch.manual_seed(0)
    module = batched_mlp(3, enc.width_, 2, 16, 2, "silu", embeddings=enc.embedding_blocks())
    _trained_looking(module, 1)
    with torch.no_grad():
        expected = module(torch.as_tensor(X)).double().numpy()         # (M, N, out)
    nets = module.to_numpy()
    assert all(n.sizes[0] == enc.width_ for n in nets)                 # plain input width
    folded = np.stack([n.forward(X) for n in nets])
    np.testing.assert_allclose(folded, expected, rtol=1e-4, atol=1e-4)
    stacked = StackedEnsemble(nets)                                    # the numpy fast path
    np.testing.assert_allclose(stacked.many(X), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(stacked.one(X[0].astype(np.float64)), expected[:, 0], rtol=1e-4, atol=1e-4)
    # the embedding is used: changing it changes the outputs
    with torch.no_grad():
        module.embeddings[0].mul_(2.0)
        assert not np.allclose(module(torch.as_tensor(X)).double().numpy(), expected, atol=1e-3)


def test_expert_bank_shares_one_embedding_and_folds_per_expert() -> None:
    import torch

    enc = InputEncoder.fit(_schema(), _columns())
    paths, members, rows = 2, 2, 4
    torch.manual_seed(0)
    bank = expert_bank(paths, members, enc.width_, 1, 8, 2, "tanh", embeddings=enc.embedding_blocks())
    _trained_looking(bank, 2)
    assert len(list(bank.net.embeddings.parameters())) == 1             # one map for all experts
    X = enc.encode(_columns(paths * rows * 3, seed=3))                  # 3 blocks of (P, B) rows
    blocks = X.reshape(3, -1)
    with torch.no_grad():
        out = bank(torch.as_tensor(blocks)).double().numpy()           # (M, 3 * P * B, 1)
    nets = bank.to_numpy()
    x = X.reshape(3, paths, rows, -1)
    for p in range(paths):
        for m in range(members):
            got = nets[p * members + m].forward(x[:, p].reshape(-1, enc.width_))
            want = out[m].reshape(3, paths, rows, 1)[:, p].reshape(-1, 1)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_without_embeddings_nothing_changes() -> None:
    import torch

    torch.manual_seed(0)
    plain = batched_mlp(2, 60, 1, 32, 2, "relu")
    torch.manual_seed(0)
    empty = batched_mlp(2, 60, 1, 32, 2, "relu", embeddings=[])
    torch.manual_seed(0)
    embedded = batched_mlp(2, 60, 1, 32, 2, "relu", embeddings=[(10, 50, 13)])
    assert set(plain.state_dict()) == set(empty.state_dict())
    for a, b in zip(plain.to_numpy(), empty.to_numpy()):
        for wa, wb in zip(a.weights, b.weights):
            np.testing.assert_array_equal(wa, wb)
    # 40 one-hot columns: 40 x 32 per member become 40 x 13 shared plus 13 x 32 per member
    assert plain.n_parameters() - embedded.n_parameters() == 40 * 32 - (13 * 32 + 40 * 13)
    assert embedded.to_numpy()[0].sizes == plain.to_numpy()[0].sizes


@pytest.mark.parametrize("blocks", [[(5, 3, 2)], [(0, 10, 2), (5, 12, 2)], [(0, 70, 2)], [(0, 10, 0)]])
def test_bad_blocks_are_refused(blocks: list) -> None:
    with pytest.raises(ValueError, match="embeddings="):
        batched_mlp(1, 60, 1, 8, 1, "relu", embeddings=blocks)


# -- end to end through fit ----------------------------------------------------------------------------
@contextlib.contextmanager
def embeddings_in_fit(monkeypatch: pytest.MonkeyPatch, calls: list[Any]) -> Iterator[None]:
    """Record the `embeddings` each of fit's networks (plain net, gate, expert bank) is built with."""

    def spy(build: Any) -> Any:
        def built(*args: Any, **kwargs: Any) -> Any:
            calls.append(kwargs.get("embeddings"))
            return build(*args, **kwargs)
        return built

    monkeypatch.setattr(_trainer, "batched_mlp", spy(batched_mlp))
    monkeypatch.setattr(_trainer, "expert_bank", spy(expert_bank))
    yield


def _fit_store_fee(**options: Any) -> Surrogate:
    schema = Schema.from_function(store_fee, store=STORES, weight=(0.0, 10.0))
    return fit(store_fee, schema=schema, tolerance=Tolerance(abs=0.1), budget_s=3.0, seed=0, progress=False,
               budget_clock="work", ensemble_size=2, widths=(32,), depths=(2,), path_aware=False, rounds=0,
               **options)


def test_fit_with_forty_categories_embeds_and_round_trips(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[Any] = []
    with embeddings_in_fit(monkeypatch, calls):
        surrogate = _fit_store_fee()
    assert calls and all(c == [EmbeddingBlock(0, 40, 13)] for c in calls)  # store's 40 columns come first
    assert surrogate.metrics.agreement > 0.95
    rng = np.random.default_rng(5)
    columns = {"store": np.array([STORES[i] for i in rng.integers(0, 40, 300)], dtype=object),
               "weight": rng.uniform(0, 10, 300)}
    truth = np.array([store_fee(s, w) for s, w in zip(columns["store"], columns["weight"])])
    predicted = np.asarray(surrogate.predict_batch(columns), dtype=float)
    assert np.mean(np.abs(predicted - truth)) < 0.05                # learned the 4 x 40 fee table, not its mean
    surrogate.save(tmp_path / "s")
    loaded = Surrogate.load(tmp_path / "s")
    np.testing.assert_array_equal(np.asarray(loaded.predict_batch(columns), dtype=float), predicted)
    assert loaded(store="s07", weight=3.0) == surrogate(store="s07", weight=3.0)


def test_path_aware_fit_embeds_gate_and_experts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[Any] = []
    schema = Schema.from_function(branchy_fee, store=STORES, weight=(0.0, 10.0))
    with embeddings_in_fit(monkeypatch, calls):
        surrogate = fit(branchy_fee, schema=schema, tolerance=Tolerance(abs=0.1), budget_s=4.0, seed=0,
                        progress=False, budget_clock="work", ensemble_size=2, widths=(32,), depths=(2,),
                        path_aware=True, rounds=0)
    assert surrogate.weights.path_aware and len(calls) >= 2       # gate and expert bank
    assert all(c == [EmbeddingBlock(0, 40, 13)] for c in calls)
    assert surrogate.metrics.agreement > 0.9
    surrogate.save(tmp_path / "s")
    columns = {"store": np.array(STORES * 5, dtype=object), "weight": np.linspace(0.0, 10.0, 200)}
    np.testing.assert_array_equal(np.asarray(Surrogate.load(tmp_path / "s").predict_batch(columns), dtype=float),
                                  np.asarray(surrogate.predict_batch(columns), dtype=float))


@pytest.mark.parametrize("embeddings", [True, False])
def test_fit_passes_embedding_blocks_itself(monkeypatch: pytest.MonkeyPatch, embeddings: bool) -> None:
    calls: list[Any] = []
    with embeddings_in_fit(monkeypatch, calls):
        surrogate = _fit_store_fee(embeddings=embeddings)
    if embeddings:
        assert calls and all(c == [EmbeddingBlock(0, 40, 13)] for c in calls)
        assert surrogate.manifest["hyperparameters"]["embeddings"] == {"store": 13}
    else:  # fit(..., embeddings=False): plain one-hot
        assert calls and all(c is None for c in calls)
        assert surrogate.manifest["hyperparameters"]["embeddings"] == {}


def test_fit_distributed_embeds_and_records_the_width(tmp_path: Path) -> None:
    from replace._distributed import fit_distributed, parameters_digest

    schema = Schema.from_function(store_fee, store=STORES, weight=(0.0, 10.0))
    surrogate = fit_distributed(store_fee, schema=schema, oracle_samples=1500, architecture="32x2x2", epochs=40,
                                tolerance=Tolerance(abs=0.1), out=tmp_path / "s", test_samples=300, seed=0)
    assert surrogate.manifest["hyperparameters"]["embeddings"] == {"store": 13}
    assert surrogate.metrics.agreement > 0.5
    # the folded network is the plain one: 40 + 1 inputs, no trace of the 13-wide embedding
    assert all(n.sizes[0] == 41 for n in surrogate.weights.members)
    assert parameters_digest(Surrogate.load(tmp_path / "s")) == parameters_digest(surrogate)
