"""One-hot versus learned embeddings for a categorical with many values, at the same work budget.

The function: a shipping fee for 60 store ids whose fee multipliers come from 4 latent groups
(the stores of a group act alike, which only a shared low-rank map can exploit), times a fee
in the parcel's weight and distance, plus a surcharge step for heavy parcels. Training sees
only recorded traces (`oracle=False`), a few per store, so a store's first-layer row is learned
from a handful of rows: the regime where sharing should matter. For each traces-per-store
level and seed, `fit` runs twice on the same traces, seed and work budget (`budget_clock=
"work"`): once with the plain one-hot first layer, once with the store's embedding (the
encoder's width rule, and optionally a fixed width). Judged on fresh held-out inputs (every
store equally): agreement within the tolerance, mean absolute error, and the parameters the
networks trained (the stored, folded networks are the same size either way).

    python bench/embeddings.py            # 4, 8, 16 traces per store; seeds 0-2; 12 s work; ~10 min
    python bench/embeddings.py --quick    # 8 traces per store; seeds 0-1; 6 s work; ~1 min
    python bench/embeddings.py --per-store 8 --modes 60 --out embeddings_control_fullrank.json
    python bench/embeddings.py --per-store 8 --modes onehot-small --out embeddings_control_onehot_small.json
    python bench/embeddings.py --per-store 8 --modes embed --init-std 1.0 --out embeddings_control_std1.json

    python bench/embeddings.py --per-store 8 --stores 24 --out embeddings_24_stores.json
    python bench/embeddings.py --per-store 8 --stores 12 --embed-min 4 --modes onehot,embed \
        --out embeddings_12_stores.json      # below the 16-value threshold, forced
    python bench/embeddings.py --per-store 8 --seeds 2 --oracle --modes onehot,embed --out embeddings_oracle.json

(the controls: a full-rank 60-wide factorisation, i.e. not low-rank; plain one-hot with its
category rows initialised 10x smaller; the embedding initialised at std 1. The other runs:
fewer categories, and fit allowed to call the function for more rows.) Writes
bench/results/embeddings.json (embeddings_quick.json with --quick, or --out NAME).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from probes import Schema, Tolerance, Traces  # noqa: E402
from replace import _trainer, fit  # noqa: E402
from replace._models import EmbeddingBlock, batched_mlp, expert_bank  # noqa: E402

_GROUP_MULT = (0.8, 1.0, 1.3, 1.75)
STORES: list[str] = []
_MULT: dict[str, float] = {}


def set_stores(n: int) -> None:
    """n store ids, each in one of the 4 latent multiplier groups (the same draw for every run)."""
    STORES[:] = [f"store{i:02d}" for i in range(n)]
    groups = np.random.default_rng(123).integers(0, len(_GROUP_MULT), n)
    _MULT.clear()
    _MULT.update({s: _GROUP_MULT[g] for s, g in zip(STORES, groups)})


set_stores(60)


def shipping_fee(store: str, weight: float, distance: float) -> float:
    """Fee of a parcel: the store's multiplier (4 latent groups) x a weight/distance fee."""
    fee = 2.5 + 0.8 * weight + 0.012 * distance
    if weight > 20.0:
        fee += 6.0
    return round(_MULT[store] * fee, 4)


SCHEMA_SPEC = {"store": STORES, "weight": (0.1, 30.0), "distance": (1.0, 800.0)}
TOLERANCE = Tolerance(abs=0.05, rel=0.01)


def _traces(per_store: int, seed: int) -> Traces:
    rng = np.random.default_rng(1000 + seed)
    calls = [{"store": s, "weight": float(rng.uniform(0.1, 30.0)), "distance": float(rng.uniform(1.0, 800.0))}
             for s in STORES for _ in range(per_store)]
    return Traces.from_calls(shipping_fee, calls)


def _held_out(n: int = 3000) -> tuple[dict[str, Any], np.ndarray]:
    rng = np.random.default_rng(777)
    columns = {"store": np.array([STORES[i % len(STORES)] for i in range(n)], dtype=object),
               "weight": rng.uniform(0.1, 30.0, n), "distance": rng.uniform(1.0, 800.0, n)}
    truth = np.array([shipping_fee(s, w, d) for s, w, d in zip(columns["store"], columns["weight"],
                                                                columns["distance"])])
    return columns, truth


@contextlib.contextmanager
def forced_embeddings(mode: str | int, built: list[dict[str, int]]) -> Iterator[None]:
    """Make fit's networks one-hot (`"onehot"`), embed with the encoder's rule (`"embed"`) or
    with a fixed width (an int), starting from the blocks fit passes; record each network's
    parameters."""

    def wrap(build: Any) -> Any:
        def make(*args: Any, **kwargs: Any) -> Any:
            blocks = list(kwargs.get("embeddings") or [])  # what fit passes: the encoder's blocks
            shrink = blocks if mode == "onehot-small" else []
            if mode in ("onehot", "onehot-small"):
                blocks = []
            elif isinstance(mode, int):
                blocks = [EmbeddingBlock(b.start, b.stop, mode) for b in blocks]
            kwargs["embeddings"] = blocks
            module = build(*args, **kwargs)
            if shrink:  # control: plain one-hot, its category rows started 10x smaller
                import torch

                first = getattr(module, "net", module).weights[0]
                with torch.no_grad():
                    for b in shrink:
                        first[:, b.start:b.stop] *= 0.1
            built.append({"parameters": int(sum(p.numel() for p in module.parameters())),
                          "embedding": int(sum(b.dim for b in blocks))})
            return module
        return make

    saved = (_trainer.batched_mlp, _trainer.expert_bank)
    _trainer.batched_mlp, _trainer.expert_bank = wrap(batched_mlp), wrap(expert_bank)
    try:
        yield
    finally:
        _trainer.batched_mlp, _trainer.expert_bank = saved


def run_one(mode: str | int, per_store: int, seed: int, budget: float, held: tuple[dict[str, Any], np.ndarray],
            options: dict[str, Any], oracle: bool = False) -> dict[str, Any]:
    columns, truth = held
    schema = Schema.from_function(shipping_fee, **SCHEMA_SPEC)
    built: list[dict[str, int]] = []
    started = time.monotonic()
    with forced_embeddings(mode, built):
        surrogate = fit(shipping_fee, _traces(per_store, seed), schema=schema, tolerance=TOLERANCE, oracle=oracle,
                        budget_s=budget, seed=seed, progress=False, budget_clock="work", **options)
    wall = time.monotonic() - started
    predicted = np.asarray(surrogate.predict_batch(columns), dtype=float)
    bound = TOLERANCE.abs + TOLERANCE.rel * np.abs(truth)
    agree = np.abs(predicted - truth) <= bound
    per_store_agree = [float(np.mean(agree[columns["store"] == s])) for s in STORES]
    final = built[-1] if built else {"parameters": 0, "embedding": 0}
    return {
        "mode": str(mode), "traces_per_store": per_store, "seed": seed,
        "agreement": float(np.mean(agree)), "mean_abs_error": float(np.mean(np.abs(predicted - truth))),
        "worst_store_agreement": float(min(per_store_agree)),
        "architecture": surrogate.metrics.architecture, "trained_parameters": final["parameters"],
        "stored_parameters": int(surrogate.metrics.parameters), "embedding_width": final["embedding"],
        "wall_s": round(wall, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--per-store", default=None, help="comma-separated traces per store")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--budget", type=float, default=None, help="work-clock budget of each fit (s)")
    parser.add_argument("--modes", default=None,
                        help="onehot, embed, an int embedding width, or onehot-small (control: one-hot rows "
                             "initialised 10x smaller)")
    parser.add_argument("--stores", type=int, default=60, help="store ids (the categorical's size)")
    parser.add_argument("--oracle", action="store_true", help="let fit call the function for more rows")
    parser.add_argument("--embed-min", type=int, default=None,
                        help="override replace._encoding.EMBED_MIN_CATEGORIES (embed fields with more values)")
    parser.add_argument("--init-std", type=float, default=None, help="override replace._models.EMBED_INIT_STD")
    parser.add_argument("--out", default=None, help="result file name under bench/results/")
    args = parser.parse_args()
    import torch

    from replace import _models

    if args.init_std is not None:
        _models.EMBED_INIT_STD = args.init_std
    if args.embed_min is not None:
        from replace import _encoding

        _encoding.EMBED_MIN_CATEGORIES = args.embed_min

    torch.set_num_threads(1)
    set_stores(args.stores)
    per_store = [int(v) for v in (args.per_store or ("8" if args.quick else "4,8,16")).split(",")]
    seeds = list(range(args.seeds or (2 if args.quick else 3)))
    budget = args.budget or (6.0 if args.quick else 12.0)
    names = (args.modes or ("onehot,embed" if args.quick else "onehot,embed,4")).split(",")
    modes: list[str | int] = [m if m in ("onehot", "embed", "onehot-small") else int(m) for m in names]
    options = {"ensemble_size": 3}
    held = _held_out()
    rows = []
    print(f"{'mode':>7} {'per':>4} {'seed':>4} {'agree':>7} {'MAE':>8} {'worst':>6} {'trained':>8} "
          f"{'stored':>7}  architecture")
    for n in per_store:
        for seed in seeds:
            for mode in modes:
                row = run_one(mode, n, seed, budget, held, options, args.oracle)
                rows.append(row)
                print(f"{row['mode']:>7} {n:>4} {seed:>4} {row['agreement']:7.3f} {row['mean_abs_error']:8.4f} "
                      f"{row['worst_store_agreement']:6.2f} {row['trained_parameters']:>8} "
                      f"{row['stored_parameters']:>7}  {row['architecture']}", flush=True)
    summary = []
    print(f"\n{'mode':>7} {'per':>4} {'agree (mean over seeds)':>24} {'MAE':>8} {'trained params':>15}")
    for n in per_store:
        for mode in modes:
            sel = [r for r in rows if r["traces_per_store"] == n and r["mode"] == str(mode)]
            item = {"mode": str(mode), "traces_per_store": n, "seeds": len(sel),
                    "agreement": float(np.mean([r["agreement"] for r in sel])),
                    "agreement_by_seed": [r["agreement"] for r in sel],
                    "mean_abs_error": float(np.mean([r["mean_abs_error"] for r in sel])),
                    "trained_parameters": float(np.mean([r["trained_parameters"] for r in sel]))}
            summary.append(item)
            print(f"{item['mode']:>7} {n:>4} {item['agreement']:24.3f} {item['mean_abs_error']:8.4f} "
                  f"{item['trained_parameters']:15.0f}")
    result = {
        "command": " ".join(["python bench/embeddings.py"] + sys.argv[1:]),
        "settings": {"embed_init_std": _models.EMBED_INIT_STD, "stores": len(STORES),
                     "embed_min_categories": args.embed_min,
                     "latent_groups": len(_GROUP_MULT), "budget_s": budget, "budget_clock": "work",
                     "oracle": args.oracle, "tolerance": {"abs": TOLERANCE.abs, "rel": TOLERANCE.rel},
                     "held_out": len(held[1]), "fit_options": options, "seeds": seeds},
        "rows": rows, "summary": summary,
    }
    name = args.out or ("embeddings_quick.json" if args.quick else "embeddings.json")
    out = ROOT / "bench" / "results" / name
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
