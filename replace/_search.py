"""Fit's architecture search: which shapes to try (`_candidates`) and how the budget is shared
among them (`_search`: one equal slice each, or successive halving)."""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

import numpy as np

from probes import _clock
from ._fit_config import FitConfig
from ._models import Architecture
from ._pool import Pool
from ._trainer import _better, _Candidate, _Data, _improves, _joined, _Trainer

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

def _halving_units(k: int) -> int:
    """Slices successive halving spends on `k` shapes: k + 2 * ceil(k/2) + 4 * ceil(k/4) + ...,
    each rung while more than one shape is left (1 for one shape, 2 for two, 8 for four)."""
    units, width = k, 1
    while k > 2:
        k, width = (k + 1) // 2, width * 2
        units += width * k
    return max(units, 1)

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
