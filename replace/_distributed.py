"""Train a surrogate with several processes (torch.distributed DDP: gloo on CPU, NCCL on GPU).

When the recorded traffic is large, one process is the bottleneck. Each rank reads its shard
of the traces (rows `i % world_size == rank`; ranks > 0 decode only those) plus its own oracle draws, DDP averages the
gradients, every rank ends with identical weights, and rank 0 saves the surrogate.

The seam with the single-process trainer is `train_model`'s `reduce` and `hooks`: every rank
averages its validation loss with the others, so early stopping (and the optional wall-clock
budget, decided by an all-reduced flag) stops every rank at the same epoch; shards are padded
to one length so every rank takes the same number of optimiser steps (no DDP deadlock).

What stays on rank 0: the schema and the input/output encoders are fitted there on the full
traces (so the trained domain is the whole recorded domain) and broadcast as JSON, with the
architecture: given, or chosen by the single-process `fit` on a sample (`architecture="search"`).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from probes import ErrorInfo, NeuroswapError, Schema, Tolerance, Traces, function_name, source_hash
from probes._validation import bad_argument

from . import _manifest as mf
from ._encoding import InputEncoder
from ._fidelity import compare
from ._fit_config import _config, _log_inputs
from ._fit_run import fit_single
from ._models import Architecture, ModelWeights, batched_mlp
from ._output_encoding import OutputEncoder
from ._predictions import SurrogateMetrics
from ._process_group import DistEnv, _Comm, distributed_env, process_group, shard_indices
from ._surrogate import Surrogate
from ._torchrun_options import _SEARCH_FIXED, TORCHRUN_FORWARDED, TORCHRUN_REFUSED, torchrun_arguments
from ._train import SurrogateLoss, TrainConfig, auto_batch_size, train_model

__all__ = ["DistEnv", "distributed_env", "process_group", "shard_indices", "fit_distributed", "main",
           "TORCHRUN_FORWARDED", "TORCHRUN_REFUSED", "torchrun_arguments"]


# -- data ---------------------------------------------------------------------------------------
def _load(store: Any, fn: Callable[..., Any], *, rank: int = 0, world: int = 1) -> Traces:
    """The traces of `fn` in `store`, every version, de-duplicated like `TraceStore.load`;
    with `world > 1` only the rows `i % world == rank` of that sequence are decoded. A folder
    `export_parquet` wrote is read with `Traces.from_parquet`: with `world > 1`, this rank's files."""
    from probes import TraceStore
    from probes import _encoding
    from probes._store import decode_inputs

    if _is_parquet(store):
        return Traces.from_parquet(store, fn, source_hash="*", rank=rank if world > 1 else None,
                                   world_size=world if world > 1 else None)
    opened = TraceStore.open(store)
    try:
        if world <= 1:
            return opened.load(fn, source_hash="*")
        name, _ = opened._choose_versions(fn, "*")
        inputs, outputs, errors, durations, stamps = [], [], [], [], []
        seen: set[tuple[str, str]] = set()
        index = -1
        for row in opened._rows(name, None):
            key = (row.source_hash, row.inputs)
            if key in seen:
                continue
            seen.add(key)
            index += 1
            if index % world != rank:
                continue
            inputs.append(decode_inputs(row.inputs))
            outputs.append(None if row.output is None else _encoding.loads(row.output))
            errors.append(None if row.error_type is None else ErrorInfo(row.error_type, row.error_message or ""))
            durations.append(row.duration_s)
            stamps.append(row.timestamp)
        return Traces(inputs, outputs, errors, function=name, durations=durations, timestamps=stamps)
    finally:
        if opened is not store:
            opened.close()


def _is_parquet(store: Any) -> bool:
    from probes._parquet_read import is_parquet_export

    return is_parquet_export(store)


def _label(fn: Callable[..., Any], rows: list[dict[str, Any]]) -> tuple[list[Any], list[ErrorInfo | None]]:
    from probes._identity import kwargs_caller

    fn = kwargs_caller(fn)  # positional-only parameters are passed by position
    outputs: list[Any] = []
    errors: list[ErrorInfo | None] = []
    for kwargs in rows:
        try:
            outputs.append(fn(**kwargs))
            errors.append(None)
        except Exception as exc:  # the legacy function's outcome, kept as data
            outputs.append(None)
            errors.append(ErrorInfo.from_exception(exc))
    return outputs, errors


def _parse_architecture(value: Any, label_output: bool) -> Architecture:
    if isinstance(value, Architecture):
        return value
    activation = "relu" if label_output else "silu"
    if value is None:
        return Architecture(64, 2, activation, 3, False)
    if isinstance(value, str):  # "WIDTHxDEPTH[xMEMBERS]"
        try:
            parts = [int(p) for p in value.lower().split("x")]
            width, depth = parts[0], parts[1]
            members = parts[2] if len(parts) > 2 else 3
        except (ValueError, IndexError):
            raise bad_argument("architecture", value, "must look like 'WIDTHxDEPTH' or 'WIDTHxDEPTHxMEMBERS'",
                               "For example '64x2x3'") from None
        return Architecture(width, depth, activation, members, False)
    raise bad_argument("architecture", value, "must be an Architecture, a string like '64x2x3', or None")


def _describe(fn: Callable[..., Any], traces: Traces | None, schema: Schema | None, tolerance: Tolerance | None,
              architecture: Any, oracle_samples: int, seed: int, search_budget_s: float,
              log_inputs: tuple[str, ...] | str, defaults: dict[str, Any],
              search_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Rank 0: the domain, tolerance, encoders and architecture every rank trains with (JSON)."""
    from ._pool import _columns_from_rows

    stats_rows: list[dict[str, Any]] = [{**defaults, **kw} for kw in traces.inputs] if traces is not None else []
    stats_out = list(traces.outputs) if traces is not None else []
    stats_err = list(traces.errors) if traces is not None else []
    described = schema if schema is not None else Schema.infer(fn, traces)
    if len(stats_rows) < 256 and oracle_samples:
        extra = described.sample(min(1000, oracle_samples), seed=seed + 104729)
        outputs, errors = _label(fn, extra)
        stats_rows, stats_out, stats_err = stats_rows + extra, stats_out + outputs, stats_err + errors
    if not stats_rows:
        raise bad_argument("traces", "<0 rows>", "there is nothing to learn from",
                           "Record calls first or pass oracle_samples > 0")
    columns = _columns_from_rows(described, stats_rows, defaults)
    tol = tolerance if tolerance is not None else _default_tolerance(stats_out, stats_err)
    enc = InputEncoder.fit(described, columns, log_inputs=_log_inputs(log_inputs, described))
    out_enc = OutputEncoder.fit(described.output, stats_out, stats_err, tol)
    if isinstance(architecture, str) and architecture == "search":
        arch = _search(fn, traces, described, tol, oracle_samples, search_budget_s, seed,
                       out_enc.kind in ("label", "none"), log_inputs, search_options)
    else:
        arch = _parse_architecture(architecture, out_enc.kind in ("label", "none"))
    return {"schema": described.to_dict(), "tolerance": tol.to_dict(), "enc": enc.to_dict(),
            "out": out_enc.to_dict(), "arch": arch.to_dict()}


def _search(fn: Callable[..., Any], traces: Traces | None, schema: Schema, tolerance: Tolerance,
            oracle_samples: int, budget_s: float, seed: int, label_output: bool,
            log_inputs: tuple[str, ...] | str = (), search_options: Mapping[str, Any] | None = None) -> Architecture:
    """Rank 0 only: let the single-process `fit` choose a plain ensemble shape on a sample
    (`search_options`: more of fit's options, e.g. widths, depths, ensemble_size)."""
    sample = None
    if traces is not None and len(traces):
        pick = np.random.default_rng(seed).permutation(len(traces))[:4000]
        sample = traces.subset(sorted(int(i) for i in pick))
    chosen = fit_single(fn, sample, schema=schema, tolerance=tolerance, oracle=sample is None or oracle_samples > 0,
                        budget_s=budget_s, seed=seed, progress=False, path_aware=False, distributed="off",
                        log_inputs=log_inputs, **dict(search_options or {}))
    arch = chosen.weights.architecture
    return Architecture(arch.width, arch.depth, arch.activation, arch.ensemble, False)


def fit_distributed(
    fn: Callable[..., Any],
    traces: Traces | None = None,
    *,
    store: Any = None,
    schema: Schema | None = None,
    tolerance: Tolerance | None = None,
    architecture: Architecture | str | None = None,
    oracle_samples: int = 0,
    epochs: int = 300,
    patience: int = 60,
    budget_s: float | None = None,
    batch_size: int | None = None,
    lr: float = 1e-2,
    validation_share: float = 0.15,
    seed: int = 0,
    out: str | os.PathLike[str] | None = None,
    threads: int | None = 1,
    search_budget_s: float = 20.0,
    test_samples: int = 0,
    polish_steps: int = 10,
    log_inputs: tuple[str, ...] | str = (),
    search_options: Mapping[str, Any] | None = None,
) -> Surrogate:
    """Train one architecture on sharded traces with DDP; every rank returns the same surrogate.

    Run it in every process of a torchrun job (or a process group you initialised); in a
    single process it trains alone. `traces` (the full set, identical on every rank) or `store`
    (a TraceStore or URI that every rank reads, or a folder `TraceStore.export_parquet` wrote:
    rank 0 reads it all to describe the domain, and each rank trains on its own files).
    `oracle_samples`: extra inputs drawn from the schema and labelled by calling `fn`, split
    over the ranks (each draws its own share).
    `batch_size` is the global batch (split over the ranks), so results do not depend on the
    number of processes beyond noise. `budget_s` bounds the training time (every rank stops
    at the same epoch); `epochs` and `patience` bound it too. Rank 0 saves to `out`.
    `architecture="search"`: rank 0 first runs `fit` (single process, `search_budget_s`, on at
    most 4,000 trace rows) and every rank then trains the plain ensemble shape it chose.
    `polish_steps`: full-batch L-BFGS steps after Adam (each up to 10 evaluations; 0 to skip).
    `test_samples`: fresh inputs (drawn from the schema, labelled by calling `fn`, split over
    the ranks) for the metrics; with 0 they are measured on the pooled validation rows.
    `log_inputs`: as in `fit`, arguments encoded as log(x) (or "positive": every real or
    integer argument whose range is above 0). `search_options`: more `fit` options for the
    rank-0 search (`widths`, `depths`, `ensemble_size`, `max_candidates`, `search`,
    `activation`, ...); only with `architecture="search"`.
    """
    import torch

    if traces is None and store is None and (schema is None or oracle_samples <= 0):
        raise bad_argument("traces", None, "fit_distributed needs traces, a store, or a schema with oracle_samples",
                           "Pass store='sqlite:///traces.db' or traces=...")
    for name, value, low in (("epochs", epochs, 1), ("patience", patience, 1), ("oracle_samples", oracle_samples, 0),
                             ("test_samples", test_samples, 0), ("polish_steps", polish_steps, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise bad_argument(name, value, f"must be an integer >= {low}")
    if not (isinstance(architecture, str) and architecture == "search"):
        _parse_architecture(architecture, False)  # a bad value fails here, on every rank alike
        if search_options:
            raise bad_argument("search_options", search_options, "is only used with architecture='search'",
                               "Leave search_options out, or pass architecture='search'")
    if search_options:

        if not isinstance(search_options, Mapping):
            raise bad_argument("search_options", search_options, "must be a dict of fit's options")
        for name in _SEARCH_FIXED:
            if name in search_options:
                raise bad_argument("search_options", dict(search_options), f"{name!r} is set by the search itself",
                                   "Pass log_inputs to fit_distributed directly; leave path_aware and distributed out")
        _config(search_options)  # an unknown option or a bad value fails here, on every rank alike
    if schema is not None or not isinstance(log_inputs, (tuple, list)):
    
        _log_inputs(log_inputs, schema if schema is not None else Schema(()))  # likewise, when it can tell
    env = distributed_env()
    use_cuda = torch.cuda.is_available() and (not torch.distributed.is_initialized()
                                              or torch.distributed.get_backend() == "nccl")
    device = torch.device(f"cuda:{env.local_rank}") if use_cuda else torch.device("cpu")
    comm = _Comm(env, device)
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    started = time.monotonic()
    try:
        return _fit_distributed(fn, traces, store, schema, tolerance, architecture, oracle_samples, epochs, patience,
                                budget_s, batch_size, lr, validation_share, seed, out, env, comm, device, started,
                                search_budget_s, test_samples, polish_steps, log_inputs, search_options)
    finally:
        torch.set_num_threads(previous_threads)


def _fit_distributed(fn: Callable[..., Any], traces: Traces | None, store: Any, schema: Schema | None,
                     tolerance: Tolerance | None, architecture: Any, oracle_samples: int, epochs: int,
                     patience: int, budget_s: float | None, batch_size: int | None, lr: float,
                     validation_share: float, seed: int, out: Any, env: DistEnv, comm: _Comm, device: Any,
                     started: float, search_budget_s: float, test_samples: int, polish_steps: int,
                     log_inputs: tuple[str, ...] | str, search_options: Mapping[str, Any] | None) -> Surrogate:
    import torch

    from ._pool import _columns_from_rows  # the single-process fit's row-to-column conversion

    signature = mf.signature_spec(fn)
    defaults = mf.defaults_of(signature)
    rank, world = env.rank, env.world_size

    # 1. rank 0 describes the domain and fits the encoders on the full traces; others receive them.
    #    The shard of rank r is rows i % world == r of the de-duplicated traces (ranks > 0 decode
    #    only those); calls with redacted or unencodable arguments are then dropped.
    #    A Parquet export is split by file instead: every rank (rank 0 too) trains on its own files.
    shard: Traces | None = None
    if traces is None and store is not None:
        if env.is_main:
            traces = _load(store, fn)
        if not env.is_main or (world > 1 and _is_parquet(store)):
            shard = _load(store, fn, rank=rank, world=world)
    if traces is not None:
        if shard is None:
            shard = traces.subset(range(rank, len(traces), world)) if world > 1 else traces
        traces = traces.subset(np.flatnonzero(traces.replayable)) if len(traces) else traces
    if shard is not None and len(shard):
        shard = shard.subset(np.flatnonzero(shard.replayable))
    shared = None
    if env.is_main:
        try:
            shared = _describe(fn, traces, schema, tolerance, architecture, oracle_samples, seed, search_budget_s,
                               log_inputs, defaults, search_options)
        except NeuroswapError as exc:  # every rank raises it, rather than waiting for rank 0 forever
            shared = {"error": exc}
    shared = comm.broadcast(shared)
    if "error" in shared:
        raise shared["error"]
    schema = Schema.from_dict(shared["schema"])
    tol = Tolerance.from_dict(shared["tolerance"])
    enc = InputEncoder.from_dict(shared["enc"])
    out_enc = OutputEncoder.from_dict(shared["out"])
    arch = Architecture.from_dict(shared["arch"])

    # 2. this rank's shard: its traces plus its own oracle draws
    rows: list[dict[str, Any]] = []
    outputs: list[Any] = []
    errors: list[ErrorInfo | None] = []
    if shard is not None and len(shard):
        rows = [{**defaults, **kw} for kw in shard.inputs]
        outputs = list(shard.outputs)
        errors = list(shard.errors)
    if oracle_samples:
        share = oracle_samples // world + (1 if rank < oracle_samples % world else 0)
        drawn = schema.sample(share, seed=seed + 7 + 1009 * rank)
        o, e = _label(fn, drawn)
        rows, outputs, errors = rows + drawn, outputs + o, errors + e
    X_local = enc.encode(_columns_from_rows(schema, rows, defaults)) if rows else \
        np.zeros((0, enc.width_), dtype=np.float32)
    y_local = np.concatenate([out_enc.targets(outputs, errors), np.ones((len(rows), 1), dtype=np.float32)], axis=1) \
        if rows else np.zeros((0, out_enc.width + 2), dtype=np.float32)
    counts = comm.sum([float(len(rows))])
    total = int(counts[0])
    size = int(comm.max(float(len(rows))))
    if total < 8:
        raise bad_argument("traces", f"<{total} rows>", "too few rows to learn from",
                           "Record more calls or pass oracle_samples")
    if len(rows) < size:  # pad by wrapping so every rank takes the same number of steps
        if len(rows) == 0:
            raise bad_argument("world_size", world, f"more processes than rows ({total})", "Use fewer processes")
        pad = np.resize(np.arange(len(rows)), size - len(rows))
        X_local = np.concatenate([X_local, X_local[pad]])
        y_local = np.concatenate([y_local, y_local[pad]])
    rng = np.random.default_rng(seed + 31 * rank)
    order = rng.permutation(size)
    n_val = int(np.clip(round(validation_share * size), 1, max(1, size // 2)))
    val, train = order[:n_val], order[n_val:]

    # 3. the model, identical on every rank (same seed; DDP also broadcasts rank 0's weights)
    torch.manual_seed(seed)
    module = batched_mlp(arch.ensemble, enc.width_, out_enc.out_width, arch.width, arch.depth,
                         arch.activation, embeddings=enc.embedding_blocks()).to(device)
    wrapped = module
    if comm.active:
        from torch.nn.parallel import DistributedDataParallel

        wrapped = DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)
    global_batch = batch_size or auto_batch_size(total)
    config = TrainConfig(lr=lr, batch_size=max(1, global_batch // world), max_epochs=epochs, patience=patience)
    hooks = []
    if budget_s is not None:
        deadline = started + float(budget_s)
        # every rank must stop at the same epoch: stop when any rank is past the deadline
        hooks.append(lambda epoch, train_loss, val_loss: comm.max(float(time.monotonic() > deadline)) > 0)
    loss = SurrogateLoss(out_enc.width, out_enc.n_classes)
    result = train_model(wrapped, X_local[train], y_local[train], config=config, loss=loss, X_val=X_local[val],
                         y_val=y_local[val], device=device, hooks=hooks, reduce=comm.mean, seed=seed + rank)
    polished = 0
    if polish_steps:
        polished = _polish(wrapped, module, X_local[train], y_local[train], X_local[val], y_local[val], loss, comm,
                           device, polish_steps)

    # 4. the surrogate (same weights everywhere), its fidelity on the pooled validation rows
    weights = ModelWeights(arch, module.to_numpy())
    fn_name = function_name(fn)
    surrogate = Surrogate(schema=schema, tolerance=tol, input_encoder=enc, output_encoder=out_enc,
                          weights=weights, signature=signature, function=fn_name)
    def judge(judged_rows: list[dict[str, Any]], judged_out: list[Any], judged_err: list[Any]) -> tuple[float, ...]:
        if not judged_rows:
            return 0.0, 0.0, 0.0, 0.0
        details = surrogate.predict_details(_columns_from_rows(schema, judged_rows, defaults))
        judged = compare(out_enc.kind, judged_out, judged_err, details.outputs, details.errors, tol)
        finite = judged["error"][np.isfinite(judged["error"])]
        return (float(np.sum(judged["agree"])), float(len(judged_rows)),
                float(finite.sum()) if finite.size else 0.0, float(finite.max()) if finite.size else 0.0)

    val_rows = sorted(int(i) for i in val if i < len(rows))  # padding rows are copies: skip them
    val_agree, val_n, _, _ = comm.sum(list(judge([rows[i] for i in val_rows], [outputs[i] for i in val_rows],
                                                 [errors[i] for i in val_rows])))
    validation_agreement = val_agree / val_n if val_n else math.nan
    if test_samples:  # fresh inputs labelled by the original, split over the ranks
        share = test_samples // world + (1 if rank < test_samples % world else 0)
        fresh = schema.sample(share, seed=seed + 7919 + 1013 * rank)
        fresh_out, fresh_err = _label(fn, fresh)
        agree_n, judged_n, err_sum, err_max = judge(fresh, fresh_out, fresh_err)
    else:
        agree_n, judged_n, err_sum, err_max = judge([rows[i] for i in val_rows], [outputs[i] for i in val_rows],
                                                    [errors[i] for i in val_rows])
    agree_n, judged_n, err_sum = comm.sum([agree_n, judged_n, err_sum])
    err_max = comm.max(err_max)
    agreement = agree_n / judged_n if judged_n else math.nan
    metrics = SurrogateMetrics(
        agreement=agreement, mean_error=err_sum / judged_n if judged_n else math.nan, max_error=err_max,
        n_test=int(judged_n), validation_agreement=validation_agreement, tolerance_met=bool(agreement >= 0.99),
        curve=tuple((int(e), float(t), float(v)) for e, t, v in result.curve),
        oracle_calls=oracle_samples, test_calls=test_samples, training_rows=total, wall_time_s=time.monotonic() - started,
        architecture=arch.label, parameters=module.n_parameters(),
    )
    manifest = {
        "training": {"rows": total, "seed": seed, "oracle_calls": oracle_samples,
                     "data_hash": mf.data_hash(X_local, y_local) if world == 1 else "",
                     "metrics_on": f"{test_samples} fresh inputs" if test_samples else
                     "the pooled validation rows of every rank (not fresh inputs: pass test_samples)"},
        "distributed": {"world_size": world, "rows_per_rank": size, "backend": _backend(),
                        "epochs": result.epochs, "stopped": result.stopped, "lbfgs_steps": polished,
                        "global_batch": config.batch_size * world},
        "hyperparameters": mf.plain({"architecture": arch.to_dict(),
                                     "train": {f.name: getattr(config, f.name) for f in fields(config)},
                                     "embeddings": enc.embedding_dims()}),
        "versions": mf.versions(),
    }
    surrogate = Surrogate(schema=schema, tolerance=tol, input_encoder=enc, output_encoder=out_enc, weights=weights,
                          signature=signature, function=fn_name, source_hash=source_hash(fn), metrics=metrics,
                          manifest=manifest)
    if out is not None and env.is_main:
        surrogate.save(out)
    if comm.active:
        import torch.distributed as dist

        dist.barrier()  # the file exists when any rank returns
    return surrogate


def _polish(wrapped: Any, module: Any, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray,
            loss: Any, comm: _Comm, device: Any, steps: int) -> int:
    """Full-batch L-BFGS after Adam, safe under DDP: the line search sees the loss averaged over
    the ranks (DDP already averages the gradients), so every rank takes the same steps; the
    best weights by averaged validation loss are kept. Returns the number of steps taken."""
    import torch

    Xt, yt = torch.as_tensor(X, device=device), torch.as_tensor(y, device=device)
    Xv, yv = torch.as_tensor(X_val, device=device), torch.as_tensor(y_val, device=device)
    optimizer = torch.optim.LBFGS(wrapped.parameters(), lr=1.0, max_iter=10, history_size=30,
                                  line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-14)

    def closure() -> Any:
        optimizer.zero_grad(set_to_none=True)
        value = loss(wrapped(Xt), yt)
        value.backward()
        return torch.tensor(comm.mean(float(value.detach())))

    def validation() -> float:
        with torch.no_grad():
            return comm.mean(float(loss(module(Xv), yv)))

    wrapped.train()
    best = validation()
    best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    taken = 0
    for _ in range(steps):
        value = float(optimizer.step(closure))
        taken += 1
        current = validation()
        if not (math.isfinite(value) and math.isfinite(current)):
            break
        if current < best:
            best = current
            best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    module.load_state_dict(best_state)
    wrapped.eval()
    return taken


def _backend() -> str:
    import torch.distributed as dist

    return dist.get_backend() if dist.is_available() and dist.is_initialized() else "none"


def _default_tolerance(outputs: list[Any], errors: list[ErrorInfo | None]) -> Tolerance:
    values = []
    for value, error in zip(outputs, errors):
        if error is None:
            try:
                values.append(np.abs(np.asarray(value, dtype=float)).max())
            except (TypeError, ValueError):
                return Tolerance(abs=0.0, rel=0.01)
    magnitude = float(np.max(values)) if values else 0.0
    return Tolerance(abs=1e-3 * magnitude if math.isfinite(magnitude) else 0.0, rel=0.01)


def parameters_digest(surrogate: Surrogate) -> str:
    """A hash of every weight of a surrogate (ranks compare it to prove they agree)."""
    tensors = surrogate.weights.tensors()
    return mf.data_hash(*[tensors[k] for k in sorted(tensors)])


# -- command line -------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """`python -m replace.train_distributed --function mod:qual --store URI --out DIR [...]`,
    normally under `torchrun --nproc_per_node=N`."""
    import argparse

    from probes import resolve

    parser = argparse.ArgumentParser(prog="python -m replace.train_distributed",
                                     description="Train a neuroswap surrogate with DDP on sharded traces.")
    parser.add_argument("--function", required=True, help="the legacy function, as module:qualname")
    parser.add_argument("--store", default=None,
                        help="trace store URI (sqlite:///traces.db), or a folder store.export_parquet wrote")
    parser.add_argument("--out", required=True, help="directory to save the surrogate in (rank 0)")
    parser.add_argument("--architecture", default=None,
                        help="WIDTHxDEPTH[xMEMBERS] (default 64x2x3), or 'search' to let fit choose on rank 0")
    parser.add_argument("--search-budget-s", type=float, default=20.0)
    parser.add_argument("--polish-steps", type=int, default=10, help="full-batch L-BFGS steps after Adam")
    parser.add_argument("--test-samples", type=int, default=0,
                        help="fresh inputs labelled by the function, for the saved metrics")
    parser.add_argument("--oracle-samples", type=int, default=0, help="extra inputs labelled by calling the function")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--patience", type=int, default=60)
    parser.add_argument("--budget-s", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=None, help="global batch size")
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default=None, choices=["gloo", "nccl"])
    parser.add_argument("--log-inputs", default="", metavar="NAMES",
                        help="comma-separated arguments to encode as log(x), or 'positive' for every "
                             "argument whose range is above 0")
    parser.add_argument("--spec", action="append", default=[],
                        help="NAME=LOW,HIGH or NAME=a|b|c: declare an argument's domain (repeatable); "
                             "without any, the schema is inferred from the traces")
    args = parser.parse_args(argv)
    fn = resolve(args.function)
    schema = None
    if args.spec:
        specs: dict[str, Any] = {}
        for item in args.spec:
            name, _, text = item.partition("=")
            if "|" in text:
                specs[name] = text.split("|")
            else:
                low, high = (float(v) for v in text.split(","))
                specs[name] = (low, high)
        schema = Schema.from_function(fn, **specs)
    with process_group(args.backend) as env:
        surrogate = fit_distributed(fn, store=args.store, schema=schema, architecture=args.architecture,
                                    oracle_samples=args.oracle_samples, epochs=args.epochs, patience=args.patience,
                                    budget_s=args.budget_s, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                                    out=args.out, search_budget_s=args.search_budget_s,
                                    test_samples=args.test_samples, polish_steps=args.polish_steps,
                                    log_inputs=args.log_inputs if args.log_inputs == "positive" else
                                    tuple(n for n in args.log_inputs.split(",") if n))
        if env.is_main:
            m = surrogate.metrics
            print(f"rank 0 of {env.world_size}: {surrogate.metrics.architecture}, {m.training_rows} rows, "
                  f"agreement {m.agreement:.4f} on {m.n_test} {'fresh inputs' if args.test_samples else 'validation rows'}, "
                  f"saved to {Path(args.out).resolve()}")
        print(f"rank {env.rank}: weights {parameters_digest(surrogate)}", flush=True)
    return 0
