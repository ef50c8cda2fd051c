"""Fit's architecture search: which shapes to try (`_candidates`) and how the budget is shared
among them (`_search`): "budget" (the default) is successive halving that ranks shapes by the
error each would reach at the length the chosen one will train, extrapolated from its own
learning curve (`predicted_excess`); "equal" gives every shape one slice; "halving" ranks by
the error after each rung."""

from __future__ import annotations

import functools
import math
from dataclasses import replace
from typing import Any

import numpy as np

from probes import _clock
from ._fit_config import FitConfig
from ._models import Architecture
from ._pool import Pool
from ._trainer import _better, _Candidate, _Data, _improves, _joined, _Trainer

#: Learning-rate scale of Adam continued in a later rung (cosine decay from it; see _Trainer._config).
CONTINUE_LR = 0.3
#: Shortest first slice of the budget search: fewer shapes are tried rather than judged sooner.
MIN_SLICE_S = 8.0
#: Steepest power-law slope an extrapolation trusts (error ~ t^-slope): a noisy pair of points
#: cannot promise more than the steepest curves seen (shapes still learning: 0.6-0.9).
MAX_SLOPE = 1.0


def predicted_excess(history: list[tuple[float, float]], horizon_s: float) -> float:
    """The mean excess a shape would reach after `horizon_s` seconds of training, from its own
    (seconds trained, excess) points: a power law through its last two points (slope clipped to
    [0, MAX_SLOPE]); its last excess when it has one point or has stopped improving. Why: short
    equal slices favour small networks, which converge first; a wider one that is still learning
    may end more accurate, and its curve says so before it leads."""
    if not history:
        return float("inf")
    t_last, e_last = history[-1]
    earlier = [(t, e) for t, e in history[:-1] if t < t_last / 1.2 and e > 0]
    if not earlier or e_last <= 0 or horizon_s <= t_last:
        return e_last
    t_prev, e_prev = earlier[-1]
    slope = float(np.clip(np.log(e_prev / e_last) / np.log(t_last / t_prev), 0.0, MAX_SLOPE))
    return e_last * (horizon_s / t_last) ** -slope


def _search(trainer: _Trainer, candidates: list[Architecture], data: _Data, pool: Pool, buckets: list[str],
            until: float, config: FitConfig, bar: Any, after_s: float = 0.0) -> tuple[_Candidate, list[dict[str, Any]]]:
    """The best of `candidates` by `_better`, trained until `until`. `config.search="equal"`:
    every shape trains for one equal slice. `"halving"`: successive halving, where the better
    half continues from its weights for twice the slice, and so on until one is left. Equal
    short slices favour small networks, which converge first; a larger one that would end more
    accurate only shows it with more training (blackscholes, 180 s: equal slices chose paths
    2x16, 0.43% mean error on AxBench's rows, where paths 3x64 trained as long reaches 0.11%;
    bench/axbench_study.py). With many shapes the first slices are short enough that halving
    drops the large shape before it leads (same study): "budget" judges by the extrapolated
    error instead (`_budget_search`). `after_s`: training the chosen shape gets after the search."""
    if config.search == "budget":
        return _budget_search(trainer, candidates, data, pool, buckets, until, config, bar, after_s)
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

def _budget_search(trainer: _Trainer, candidates: list[Architecture], data: _Data, pool: Pool, buckets: list[str],
                   until: float, config: FitConfig, bar: Any, after_s: float) -> tuple[_Candidate, list[dict[str, Any]]]:
    """Successive halving whose ranking looks ahead: each rung keeps the better half by the excess
    `predicted_excess` gives at the horizon, the training the chosen shape will have had when fit
    ends (its rungs, then `after_s` of rounds and polish). Every rung trains with Adam, whose
    curves follow a power law closely enough to extrapolate (L-BFGS jumps, then stalls), and which
    a wide network needs for a while before L-BFGS helps it; the chosen shape gets L-BFGS in the
    rounds and polish after the search (README, "fit's defaults"). A first slice is trained
    in two halves so that even the first ranking has two points of each curve; later rungs double
    the training and add a point. Shapes meeting the target agreement rank first, the smallest
    first, as in `_better`."""
    clock = _clock.current()
    k = len(candidates)
    units = _halving_units(k)
    slice_s = max((until - clock.now()) / units, 0.2)
    rungs, left = 0, k  # rungs the survivors continue for, each twice as long as the one before
    while (left := (left + 1) // 2) > 1:
        rungs += 1
    horizon = slice_s * (2 ** (rungs + 1) - 1) + max(after_s, 0.0)
    first_rung_until = clock.now() + slice_s * k
    history: list[list[tuple[float, float]]] = []
    alive: list[tuple[int, _Candidate]] = []
    rung_of, seconds = [0] * k, [0.0] * k
    final: list[_Candidate | None] = [None] * k
    for i, arch in enumerate(candidates):
        bar.update(f"search {arch.label}")
        now = clock.now()
        end = now + max((first_rung_until - now) / (k - i), 0.2)
        if k == 1:  # nothing to compare: trained as the equal search trains it
            half = trainer.train(arch, data, pool, buckets if arch.path_aware else None, end, optimizer="auto")
        else:
            half = trainer.train(arch, data, pool, buckets if arch.path_aware else None, now + 0.5 * (end - now),
                                 optimizer="adam")
        points = [(half.seconds, half.excess)]
        cand = half
        if k > 1:
            more = trainer.train(arch, data, pool, half.buckets, end, init=half.state, lr_scale=CONTINUE_LR,
                                 optimizer="adam")
            cand = replace(more if _improves(more, half) else half, curve=_joined(half.curve, more.curve))
            points.append((half.seconds + more.seconds, cand.excess))
        seconds[i] = points[-1][0]
        history.append(points)
        alive.append((i, cand))
    predicted = [math.inf] * k

    def key(entry: tuple[int, _Candidate]) -> tuple[Any, ...]:
        i, cand = entry
        predicted[i] = predicted_excess(history[i], horizon)
        met = cand.agreement >= config.target_agreement
        return (0, cand.params, i) if met else (1, predicted[i], i)

    rung, width = 0, 1
    while len(alive) > 1:
        alive.sort(key=key)
        keep = (len(alive) + 1) // 2
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
                                 lr_scale=CONTINUE_LR, optimizer="adam")
            kept = more if _improves(more, cand) else cand
            grown.append((i, replace(kept, curve=_joined(cand.curve, more.curve))))
            rung_of[i], seconds[i] = rung, seconds[i] + more.seconds
            if kept is more:  # a continuation that stopped without improving is no evidence of a plateau
                history[i].append((seconds[i], kept.excess))
        alive = grown
    best_index, best = alive[0]
    final[best_index] = best
    search_log = [{"architecture": arch.label, "val_agreement": c.agreement, "val_mean_excess": c.excess,
                   "predicted_excess": None if not math.isfinite(predicted[i]) else round(predicted[i], 6),
                   "horizon_s": round(horizon, 3), "parameters": c.params, "seconds": round(seconds[i], 3),
                   "rung": rung_of[i]}
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
    a few seconds of training to be judged fairly: the budget search gives each first slice at
    least MIN_SLICE_S)."""
    shapes = sorted({(w, d) for w in config.widths for d in config.depths}, key=lambda s: s[0] * s[0] * s[1])
    families = int(plain) + int(paths)
    if config.search == "budget":
        # as many shapes as successive halving can give first slices of MIN_SLICE_S
        k = max(families, 1)
        while k < families * config.max_candidates and _halving_units(k + 1) * MIN_SLICE_S <= seconds:
            k += 1
        n_paths = k // 2 if plain and paths else (k if paths else 0)
        n_plain, n_paths = k - n_paths, min(n_paths, 3)
    else:
        n_plain = n_paths = int(np.clip(seconds / (8.0 * families), 1, config.max_candidates))
        n_paths = min(n_paths, 3)
    out = []
    if plain:
        out += [Architecture(w, d, activation, config.ensemble_size, False) for w, d in _spread(shapes, n_plain)]
    if paths:
        small = [s for s in shapes if s[0] <= 64] or shapes[:1]
        out += [Architecture(w, d, activation, config.ensemble_size, True) for w, d in _spread(small, n_paths)]
    return out
