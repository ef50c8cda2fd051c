"""DDP training: two gloo processes on loopback end with identical weights that fit the data."""

from __future__ import annotations

import json
import re
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from probes import InvalidArgument, Schema, Tolerance, Traces
from replace._distributed import (
    DistEnv,
    _parse_architecture,
    distributed_env,
    fit_distributed,
    parameters_digest,
    process_group,
    shard_indices,
)

ARCH = "32x2x2"
EPOCHS = 40


def wave(x: float, y: float) -> float:
    return math.sin(2.0 * x) * y + 0.5 * x


def _inputs(n: int, seed: int) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [{"x": float(a), "y": float(b)} for a, b in zip(rng.uniform(-1, 1, n), rng.uniform(-1, 1, n))]


def _record(uri: str, n: int) -> None:
    from probes import record

    recorded = record(store=uri)(wave)
    for kwargs in _inputs(n, seed=1):
        recorded(**kwargs)
    assert record.flush()


def _worker(rank: int, world: int, init_file: str, store: str, out: str, results: str) -> None:
    with process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world) as env:
        assert env == DistEnv(rank, world, 0)
        surrogate = fit_distributed(wave, store=store, architecture=ARCH, epochs=EPOCHS, patience=EPOCHS,
                                    tolerance=Tolerance(abs=0.05), seed=0, out=out)
        Path(results, f"{rank}.json").write_text(json.dumps({
            "digest": parameters_digest(surrogate), "agreement": surrogate.metrics.agreement,
            "manifest": surrogate.manifest["distributed"],
        }))


def _r2(surrogate: Any, rows: list[dict[str, float]]) -> tuple[float, np.ndarray]:
    columns = {"x": np.array([r["x"] for r in rows]), "y": np.array([r["y"] for r in rows])}
    predicted = np.asarray(surrogate.predict_batch(columns, check=False), dtype=float).reshape(-1)
    truth = np.array([wave(**r) for r in rows])
    return 1.0 - float(np.sum((predicted - truth) ** 2) / np.sum((truth - truth.mean()) ** 2)), predicted


@pytest.mark.slow
def test_two_gloo_processes_agree_and_fit(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    from replace import Surrogate

    uri = f"sqlite:///{tmp_path / 'traces.db'}"
    _record(uri, 1200)
    results = tmp_path / "results"
    results.mkdir()
    out = tmp_path / "surrogate"
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), uri, str(out), str(results)), nprocs=2, join=True)

    ranks = [json.loads((results / f"{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["digest"] == ranks[1]["digest"]  # identical parameters on both ranks
    assert ranks[0]["agreement"] == ranks[1]["agreement"]
    assert ranks[0]["manifest"]["world_size"] == 2 and ranks[0]["manifest"]["backend"] == "gloo"
    assert ranks[0]["manifest"]["rows_per_rank"] == 600
    assert ranks[0]["manifest"]["lbfgs_steps"] == 10  # the L-BFGS polish ran under DDP and stayed in sync

    saved = Surrogate.load(out)
    assert parameters_digest(saved) == ranks[0]["digest"]
    fresh = _inputs(500, seed=99)
    r2_two, predicted_two = _r2(saved, fresh)
    assert r2_two > 0.97

    # the same data in one process: the same quality, and close predictions (noise only)
    from probes import TraceStore

    traces = TraceStore.open(uri).load(wave)
    single = fit_distributed(wave, traces, architecture=ARCH, epochs=EPOCHS, patience=EPOCHS,
                             tolerance=Tolerance(abs=0.05), seed=0)
    r2_one, predicted_one = _r2(single, fresh)
    assert r2_one > 0.97
    assert abs(r2_one - r2_two) < 0.02
    assert float(np.mean(np.abs(predicted_one - predicted_two))) < 0.05
    assert single.manifest["distributed"]["world_size"] == 1


def _torchrun_worker(rank: int, world: int, port: int, store: str, results: str) -> None:
    """What torchrun gives each process: the group described by environment variables."""
    import os

    from probes import TraceStore
    from replace import fit

    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    traces = TraceStore.open(store).load(wave)
    schema = Schema.from_function(wave, x=(-1.0, 1.0), y=(-1.0, 1.0))
    surrogate = fit(wave, traces, schema=schema, tolerance=Tolerance(abs=0.05), budget_s=12.0, seed=0,
                    progress=False, hard_cases=[{"x": 0.99, "y": 0.99}])
    Path(results, f"{rank}.json").write_text(json.dumps({
        "digest": parameters_digest(surrogate), "manifest": surrogate.manifest["distributed"],
        "agreement": surrogate.metrics.agreement}))


@pytest.mark.slow
def test_fit_under_torchrun_hands_off_to_ddp(tmp_path: Path) -> None:
    import socket

    import torch.multiprocessing as mp

    uri = f"sqlite:///{tmp_path / 'traces.db'}"
    _record(uri, 800)
    results = tmp_path / "results"
    results.mkdir()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(_torchrun_worker, args=(2, port, uri, str(results)), nprocs=2, join=True)
    ranks = [json.loads((results / f"{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["digest"] == ranks[1]["digest"]
    assert ranks[0]["manifest"]["world_size"] == 2
    assert ranks[0]["agreement"] > 0.5


# -- pieces that need no second process ----------------------------------------------------------
@pytest.mark.parametrize("n, world", [(10, 2), (11, 2), (7, 3), (2, 4), (1000, 7)])
def test_shards_cover_every_row_with_equal_sizes(n: int, world: int) -> None:
    shards = [shard_indices(n, r, world) for r in range(world)]
    assert len({len(s) for s in shards}) == 1
    assert set(np.concatenate(shards).tolist()) == set(range(n))
    for rank, shard in enumerate(shards):
        own = [i for i in range(n) if i % world == rank]
        assert shard[: len(own)].tolist() == own


def test_env_from_torchrun_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed_env() == DistEnv(3, 4, 1)
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("LOCAL_RANK")
    assert distributed_env() == DistEnv(0, 1, 0)
    with process_group() as env:  # one process: nothing to join
        assert env.world_size == 1 and env.is_main


def test_single_process_fit_with_oracle_only_and_save(tmp_path: Path) -> None:
    from replace import Surrogate

    schema = Schema.from_function(wave, x=(-1.0, 1.0), y=(-1.0, 1.0))
    surrogate = fit_distributed(wave, schema=schema, oracle_samples=600, architecture="16x2x2", epochs=30,
                                tolerance=Tolerance(abs=0.1), out=tmp_path / "s", test_samples=300)
    assert surrogate.ensemble_size == 2 and surrogate.metrics.training_rows == 600
    assert surrogate.metrics.n_test == 300 and surrogate.metrics.test_calls == 300
    fresh = schema.sample(300, seed=0 + 7919)
    details = surrogate.predict_details({"x": [r["x"] for r in fresh], "y": [r["y"] for r in fresh]})
    agree = [Tolerance(abs=0.1).agrees(wave(**r), o) for r, o in zip(fresh, details.outputs)]
    assert surrogate.metrics.agreement == pytest.approx(sum(agree) / 300)
    assert _r2(surrogate, _inputs(200, seed=5))[0] > 0.8
    assert parameters_digest(Surrogate.load(tmp_path / "s")) == parameters_digest(surrogate)


@pytest.mark.parametrize("kwargs, text", [
    ({}, "needs traces"),
    ({"traces": Traces.from_calls(wave, _inputs(20, 0)), "epochs": 0}, "epochs=0"),
    ({"traces": Traces.from_calls(wave, _inputs(20, 0)), "architecture": "wide"}, "architecture='wide'"),
])
def test_bad_arguments(kwargs: dict[str, Any], text: str) -> None:
    with pytest.raises(InvalidArgument, match=text):
        fit_distributed(wave, **kwargs)


def test_architecture_strings() -> None:
    arch = _parse_architecture("48x3x4", False)
    assert (arch.width, arch.depth, arch.ensemble, arch.activation) == (48, 3, 4, "silu")
    assert _parse_architecture(None, True).activation == "relu"


def test_command_line_in_one_process_with_search(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from replace import Surrogate
    from replace._distributed import main

    uri = f"sqlite:///{tmp_path / 'cli.db'}"
    _record(uri, 400)
    name = f"{wave.__module__}:wave"
    assert main(["--function", name, "--store", uri, "--out", str(tmp_path / "s"), "--architecture", "search",
                 "--search-budget-s", "2", "--epochs", "20", "--seed", "1"]) == 0
    printed = capsys.readouterr().out
    assert "rank 0 of 1" in printed and "400 rows" in printed
    saved = Surrogate.load(tmp_path / "s")
    assert not saved.weights.path_aware and saved.manifest["distributed"]["world_size"] == 1
    assert f"weights {parameters_digest(saved)}" in printed


def test_shard_reading_decodes_exactly_the_rows_of_the_full_load(tmp_path: Path) -> None:
    from probes import TraceStore
    from replace._distributed import _load

    uri = f"sqlite:///{tmp_path / 'shard.db'}"
    _record(uri, 50)
    from probes import record

    again = record(store=uri)(wave)
    for kwargs in _inputs(50, seed=1)[:10]:  # the same inputs again: de-duplicated, as by TraceStore.load
        again(**kwargs)
    assert record.flush()
    full = TraceStore.open(uri).load(wave, source_hash="*")
    assert len(full) == 50
    parts = [_load(uri, wave, rank=r, world=3) for r in range(3)]
    for rank, part in enumerate(parts):
        assert part.inputs == full.inputs[rank::3] and part.outputs == full.outputs[rank::3]


def price(spot: float, rate: float) -> float:
    return spot * math.exp(-rate)


def test_log_inputs_as_in_fit() -> None:
    schema = Schema.from_function(price, spot=(1.0, 1000.0), rate=(0.01, 0.2))
    surrogate = fit_distributed(price, schema=schema, oracle_samples=400, architecture="8x1x1", epochs=5,
                                log_inputs="positive")
    assert {c.name: c.warp for c in surrogate.input_encoder.codes_} == {"spot": "log", "rate": "log"}
    only = fit_distributed(price, schema=schema, oracle_samples=400, architecture="8x1x1", epochs=5,
                           log_inputs=("rate",))
    assert {c.name: c.warp for c in only.input_encoder.codes_}["rate"] == "log"
    assert {c.name: c.warp for c in only.input_encoder.codes_}["spot"] != "log"


@pytest.mark.parametrize("log_inputs, text", [("spot", "must be 'positive' or a tuple"),
                                              (7, "must be 'positive' or a tuple"),
                                              (("volume",), "'volume' is not a real or integer")])
def test_bad_log_inputs_fail_before_training(log_inputs: Any, text: str) -> None:
    schema = Schema.from_function(price, spot=(1.0, 1000.0), rate=(0.01, 0.2))
    with pytest.raises(InvalidArgument, match=text):
        fit_distributed(price, schema=schema, oracle_samples=400, log_inputs=log_inputs)


def _refusing_worker(rank: int, world: int, init_file: str, results: str) -> None:
    traces = Traces.from_calls(wave, _inputs(300, seed=3))
    with process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world):
        try:  # the schema is inferred on rank 0 only, so only rank 0 can tell the name is wrong
            fit_distributed(wave, traces, architecture="8x1x1", epochs=2, log_inputs=("z",))
            outcome = "trained"
        except InvalidArgument as exc:
            outcome = str(exc)
    Path(results, f"{rank}.txt").write_text(outcome)


@pytest.mark.slow
def test_a_refusal_on_rank_0_reaches_every_rank(tmp_path: Path) -> None:
    """Without it rank 1 would wait for rank 0's broadcast forever."""
    import torch.multiprocessing as mp

    results = tmp_path / "results"
    results.mkdir()
    mp.spawn(_refusing_worker, args=(2, str(tmp_path / "init"), str(results)), nprocs=2, join=True)
    for rank in (0, 1):
        assert "log_inputs=('z',)" in (results / f"{rank}.txt").read_text()


# -- fit under torchrun: every option is passed on or refused by name -------------------------------
#: a value away from the default for every FitConfig option, and what fit under torchrun does with it:
#: "forwarded" (fit_distributed is called differently), "refused" (InvalidArgument naming it) or
#: "accepted" (the value is what fit_distributed does anyway). A new option needs a row here.
NON_DEFAULT: dict[str, tuple[Any, str]] = {
    "target_agreement": (0.99, "refused"),
    "ensemble_size": (5, "forwarded"),
    "widths": ((8,), "forwarded"),
    "depths": ((1,), "forwarded"),
    "max_candidates": (2, "forwarded"),
    "search": ("halving", "forwarded"),
    "activation": ("relu", "forwarded"),
    "path_aware": (True, "refused"),
    "sampling": ("uniform", "accepted"),
    "initial_samples": (500, "forwarded"),
    "max_oracle_calls": (100, "refused"),
    "rounds": (5, "refused"),
    "rounds_when": ("always", "refused"),
    "rounds_patience": (2, "refused"),
    "round_baseline": ("before", "refused"),
    "round_noise_z": (2.0, "refused"),
    "boundary_share": (0.2, "refused"),
    "test_size": (300, "forwarded"),
    "hard_weight": (8.0, "refused"),
    "near_scale": (0.1, "refused"),
    "trace_share": (0.2, "refused"),
    "path_budget": (0.1, "refused"),
    "max_experts": (4, "refused"),
    "min_path_share": (0.05, "refused"),
    "train": ("max_epochs=50, lr=3e-3", "forwarded"),  # built below: TrainConfig(max_epochs=50, lr=3e-3)
    "device": ("cpu", "refused"),
    "threads": (2, "forwarded"),
    "validation_share": (0.2, "forwarded"),
    "trace_weight": (1.0, "refused"),
    "log_inputs": ("positive", "forwarded"),
    "embeddings": (False, "refused"),
    "code_cuts": (False, "accepted"),
    "budget_clock": ("work", "refused"),
    "distributed": ("off", "no hand-off"),
    # options being added to fit alongside (used only once FitConfig has them)
    "calibration_rate": (0.01, "refused"),
    "calibration_share": (0.3, "refused"),
    "calibration_holdout": (0.1, "refused"),
    "domain_margin": (0.1, "forwarded"),
    "wall_ceiling_s": (60.0, "refused"),
    "exact": ("off", "accepted"),
}


def _fit_options() -> list[str]:
    from dataclasses import fields

    from replace._fit import FitConfig

    return [f.name for f in fields(FitConfig)]


def test_every_fit_option_is_forwarded_or_refused_under_torchrun() -> None:
    from replace._torchrun_options import _TORCHRUN_MATCHES, TORCHRUN_FORWARDED, TORCHRUN_REFUSED

    assert not TORCHRUN_FORWARDED & set(TORCHRUN_REFUSED)
    assert set(_TORCHRUN_MATCHES) <= set(TORCHRUN_REFUSED)
    unhandled = [name for name in _fit_options() if name not in TORCHRUN_FORWARDED | set(TORCHRUN_REFUSED)]
    assert not unhandled, f"decide in replace/_distributed.py whether fit under torchrun forwards {unhandled}"
    missing = [name for name in _fit_options() if name not in NON_DEFAULT]
    assert not missing, f"add a non-default value of {missing} to NON_DEFAULT"
    for name, (_, outcome) in NON_DEFAULT.items():
        if outcome == "forwarded":
            assert name in TORCHRUN_FORWARDED, name
        elif outcome in ("refused", "accepted"):
            assert name in TORCHRUN_REFUSED, name


@pytest.fixture
def fake_torchrun(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """WORLD_SIZE=2 without a second process: fit_distributed and the group are stand-ins that
    record what fit hands over."""
    import contextlib

    import replace._fit as fit_module  # where fit looks them up

    calls: list[dict[str, Any]] = []

    def fake_fit_distributed(fn: Any, traces: Any = None, **kwargs: Any) -> str:
        schema = kwargs.get("schema")
        calls.append({**kwargs, "schema": schema.to_dict() if schema is not None else None})
        return "handed off"

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setattr(fit_module, "fit_distributed", fake_fit_distributed)
    monkeypatch.setattr(fit_module, "process_group", lambda *a, **k: contextlib.nullcontext())
    return calls


def _option_value(name: str) -> Any:
    from replace._train import TrainConfig

    value = NON_DEFAULT[name][0]
    return TrainConfig(max_epochs=50, lr=3e-3) if name == "train" else value


@pytest.mark.parametrize("name", [n for n in NON_DEFAULT if NON_DEFAULT[n][1] != "no hand-off"])
def test_fit_under_torchrun_forwards_or_refuses_each_option(fake_torchrun: list[dict[str, Any]], name: str) -> None:
    from replace import fit

    if name not in _fit_options():
        pytest.skip(f"fit has no option {name} yet")
    traces = Traces.from_calls(wave, _inputs(60, seed=4))
    assert fit(wave, traces, budget_s=5.0, progress=False) == "handed off"
    baseline = fake_torchrun.pop()
    value, outcome = _option_value(name), NON_DEFAULT[name][1]
    if outcome == "refused":
        with pytest.raises(InvalidArgument, match=rf"{name}=.*not supported by fit under torchrun") as caught:
            fit(wave, traces, budget_s=5.0, progress=False, **{name: value})
        assert "distributed='off'" in str(caught.value)
        assert not fake_torchrun
        return
    assert fit(wave, traces, budget_s=5.0, progress=False, **{name: value}) == "handed off"
    handed = fake_torchrun.pop()
    if outcome == "forwarded":
        assert handed != baseline, f"{name}={value!r} did not change what fit_distributed was given"
    else:
        assert handed == baseline


def test_fit_under_torchrun_maps_options_to_fit_distributed(fake_torchrun: list[dict[str, Any]]) -> None:
    from replace import fit
    from replace._train import TrainConfig

    traces = Traces.from_calls(wave, _inputs(60, seed=4))
    fit(wave, traces, budget_s=10.0, progress=False, initial_samples=500, test_size=300, threads=2,
        log_inputs="positive", validation_share=0.2, widths=(8, 16), depths=(1,), ensemble_size=4,
        train=TrainConfig(max_epochs=50, lr=3e-3, batch_size=128, patience=9), path_aware=False, rounds=0)
    handed = fake_torchrun.pop()
    assert {k: handed[k] for k in ("oracle_samples", "test_samples", "threads", "log_inputs", "validation_share",
                                   "epochs", "lr", "batch_size", "patience", "architecture")} == {
        "oracle_samples": 500, "test_samples": 300, "threads": 2, "log_inputs": "positive",
        "validation_share": 0.2, "epochs": 50, "lr": 3e-3, "batch_size": 128, "patience": 9,
        "architecture": "search"}
    assert handed["search_options"] == {"widths": (8, 16), "depths": (1,), "ensemble_size": 4}
    # without oracle calls there are no oracle rows or fresh test inputs to draw
    fit(wave, traces, budget_s=10.0, progress=False, oracle=False, initial_samples=500)
    handed = fake_torchrun.pop()
    assert handed["oracle_samples"] == 0 and handed["test_samples"] == 0 and handed["search_options"] is None


@pytest.mark.parametrize("options, text", [
    ({"rounds": 5}, "rounds=5 : is not supported by fit under torchrun (WORLD_SIZE > 1): fit_distributed draws "
                    "its oracle rows once"),
    ({"path_aware": True}, "path_aware=True : is not supported"),
    ({"budget_clock": "work"}, "budget_clock='work' : is not supported"),
    ({"train": "schedule"}, "train.schedule='cosine' is not supported by fit under torchrun"),
])
def test_a_non_default_unsupported_option_raises_before_any_call(fake_torchrun: list[dict[str, Any]],
                                                                  options: dict[str, Any], text: str) -> None:
    from replace import fit
    from replace._train import TrainConfig

    if options.get("train") == "schedule":
        options = {"train": TrainConfig(schedule="cosine")}
    calls = []

    def counted(x: float, y: float) -> float:
        calls.append((x, y))
        return wave(x, y)

    schema = Schema.from_function(counted, x=(-1.0, 1.0), y=(-1.0, 1.0))
    calls.clear()  # the schema probes the output's kind
    with pytest.raises(InvalidArgument) as caught:
        fit(counted, schema=schema, budget_s=5.0, progress=False, hard_cases=[{"x": 0.5, "y": 0.5}], **options)
    assert text in str(caught.value) and "Pass distributed='off'" in str(caught.value)
    assert not fake_torchrun and not calls  # refused before the hard cases were labelled or any rank joined


def test_search_options_reach_the_rank_0_search() -> None:
    schema = Schema.from_function(wave, x=(-1.0, 1.0), y=(-1.0, 1.0))
    surrogate = fit_distributed(wave, schema=schema, oracle_samples=300, architecture="search", epochs=3,
                                search_budget_s=2.0, polish_steps=0,
                                search_options={"widths": (8,), "depths": (1,), "ensemble_size": 2})
    arch = surrogate.weights.architecture
    assert (arch.width, arch.depth, arch.ensemble) == (8, 1, 2)


@pytest.mark.parametrize("kwargs, text", [
    ({"architecture": "8x1x1", "search_options": {"widths": (8,)}}, "only used with architecture='search'"),
    ({"architecture": "search", "search_options": {"path_aware": True}}, "'path_aware' is set by the search"),
    ({"architecture": "search", "search_options": {"bogus": 1}}, "bogus=1 : is not an option of fit"),
])
def test_bad_search_options(kwargs: dict[str, Any], text: str) -> None:
    schema = Schema.from_function(wave, x=(-1.0, 1.0), y=(-1.0, 1.0))
    with pytest.raises(InvalidArgument, match=re.escape(text)):
        fit_distributed(wave, schema=schema, oracle_samples=100, **kwargs)
