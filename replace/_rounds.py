"""Fit's refinement rounds: where a round's oracle calls go (`_allocate`: per branch path in
Turaco's proportion, between paths, and for classifiers where the model is least certain) and
when rounds stop (`_target_shown`, `_data_limited`); the rounds themselves (`refinement_rounds`),
whose model is kept only if it holds on recorded traffic too (`_production_holds`)."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from probes import Schema
from probes._report import wilson_interval

from probes import _clock
from ._fit_config import _JUDGE_ROW_S, OTHER_PATHS, FitConfig
from ._models import ModelWeights
from ._pool import Oracle, Pool, _balance_traces, _outcome_key
from ._sampling import concat_columns, draw_between, draw_near, take, turaco_allocation
from ._trainer import _Candidate, _Data, _improves, _joined, _Trainer

def _target_shown(cand: _Candidate, n_val: int, target: float) -> bool:
    """Whether validation shows the target agreement is met, not merely fails to contradict it:
    400 validation rows without a miss still allow 99% agreement, so refinement rounds stop only
    once the 95% lower bound of the validation agreement reaches the target."""
    low, _ = wilson_interval(int(round(cand.agreement * n_val)), n_val)
    return low >= target


def _data_limited(cand: _Candidate) -> bool:
    """Whether the model overfits its data (validation loss well above training loss)."""
    points = [(t, v) for _, t, v in cand.curve[-5:] if math.isfinite(t) and math.isfinite(v)]
    if not points:
        return True
    train = min(t for t, _ in points)
    val = min(v for _, v in points)
    return val > 1.5 * max(train, 1e-12)


def _allocate(schema: Schema, pool: Pool, rows: np.ndarray, excess: np.ndarray, n_new: int,
              rng: np.random.Generator, config: FitConfig, best: _Candidate) -> dict[str, np.ndarray]:
    """New inputs for a refinement round.

    "paths": a quarter from the domain; of the rest, `boundary_share` between nearby rows that
    took different paths or gave different outcomes (`draw_between`: the edges), and the others
    split over branch paths by Turaco's rule (frequency p_i, complexity C_i = mean squared excess
    of the path's rows), each drawn near that path's rows, favouring rows with a high error.
    "uniform": all from the domain.
    Label outputs: the focused calls go to the inputs the model is least sure of (`_least_certain`).
    """
    if config.sampling == "uniform":
        return schema.sample_columns(n_new, rng=rng)
    n_domain = n_new // 4
    n_focus = n_new - n_domain
    if best.surrogate.output_encoder.kind == "label":
        return concat_columns([schema.sample_columns(n_domain, rng=rng),
                               _least_certain(schema, pool, rows, n_focus, rng, config, best)], schema.names)
    labels = np.array([pool.paths[i] if pool.paths[i] is not None else OTHER_PATHS for i in rows], dtype=object)
    if best.surrogate.path_aware and any(pool.paths[i] is None for i in rows):
        # untraced rows: the gate's path
        missing = np.array([pool.paths[i] is None for i in rows])
        guess = best.surrogate.predict_details(take(pool.columns, rows[missing])).paths or []
        labels[missing] = np.asarray(guess, dtype=object)
    groups = {str(p): np.flatnonzero(labels == p) for p in sorted(set(labels.tolist()), key=str)}
    frequency = {p: len(ix) / len(rows) for p, ix in groups.items()}
    complexity = {p: float(np.mean(np.minimum(excess[ix], 10.0) ** 2)) + 1e-3 for p, ix in groups.items()}
    # where paths (or outcomes) change between neighbours: the edges a piecewise surrogate blurs
    sides = [f"{label}|{_outcome_key(pool.outputs[i], pool.errors[i], schema)}" for label, i in zip(labels.tolist(), rows)]
    n_boundary = int(n_focus * config.boundary_share) if len(set(sides)) >= 2 else 0
    quota = turaco_allocation(frequency, complexity, n_focus - n_boundary)
    parts = [schema.sample_columns(n_domain, rng=rng)]
    if n_boundary:
        parts.append(draw_between(schema, pool.columns, rows, sides, n_boundary, rng,
                                  weights=np.minimum(excess, 10.0) + 0.1))
    for path, count in quota.items():
        if count <= 0:
            continue
        ix = groups[path]
        weight = np.minimum(excess[ix], 10.0) + 0.1
        chosen = rng.choice(rows[ix], size=count, replace=True, p=weight / weight.sum())
        parts.append(draw_near(schema, pool.columns, count, rng, scale=config.near_scale, rows=chosen))
    return concat_columns(parts, schema.names)


CANDIDATES_PER_CALL = 8  # candidate inputs scored per oracle call spent by `_least_certain`


def _least_certain(schema: Schema, pool: Pool, rows: np.ndarray, n: int, rng: np.random.Generator,
                   config: FitConfig, best: _Candidate) -> dict[str, np.ndarray]:
    """`n` inputs where a classifier is least sure: of `CANDIDATES_PER_CALL * n` candidates (half
    between training rows with different outcomes, half near training rows), those whose two
    highest class scores are closest.

    Why: a label that changes at sums of points over several inputs (an underwriting score) is
    missed in whole cells of the input grid, not only at the edges between neighbouring paths,
    and the model is ~100% right on the rows it trained on, so their errors cannot steer the
    calls; its margin can (measured: bench/fidelity.py's sampling claim on risk_class)."""
    if n <= 0:
        return {}
    n_candidates = CANDIDATES_PER_CALL * n
    sides = [str(_outcome_key(pool.outputs[i], pool.errors[i], schema)) for i in rows]
    candidates = concat_columns([
        draw_between(schema, pool.columns, rows, sides, n_candidates // 2, rng),
        draw_near(schema, pool.columns, n_candidates - n_candidates // 2, rng, scale=config.near_scale, rows=rows),
    ], schema.names)
    X = best.surrogate.input_encoder.encode(candidates, dtype=np.float64)
    _clock.current().charge(_JUDGE_ROW_S * len(X))
    margin = label_margins(best.weights, X, best.surrogate.output_encoder.width)
    return take(candidates, np.argsort(margin, kind="stable")[:n])


def label_margins(weights: ModelWeights, X: np.ndarray, width: int) -> np.ndarray:
    """Per encoded row: the highest class score minus the second (scores summed over the
    ensemble, through the expert the gate picks); 0 is a tie. Columns before `width` are values."""
    if weights.path_aware:
        gate = sum(net.forward(X) for net in weights.gate or [])
        choice = np.argmax(gate, axis=1)
        experts = weights.experts or []
        scores = np.zeros((len(X), experts[0][0].weights[-1].shape[1]))
        for p in np.unique(choice):
            at = np.flatnonzero(choice == p)
            scores[at] = sum(net.forward(X[at]) for net in experts[p])
    else:
        scores = sum(net.forward(X) for net in weights.members)
    scores = np.asarray(scores)[:, width:]
    if scores.shape[1] < 2:
        return np.full(len(X), np.inf)
    top = np.sort(scores, axis=1)
    return top[:, -1] - top[:, -2]


#: Fewest recorded-traffic validation rows that can veto a round (fewer say too little).
MIN_PRODUCTION_ROWS = 50


def _production_rows(pool: Pool, val: np.ndarray) -> np.ndarray:
    """The validation rows that are recorded traffic."""
    return val[np.array([pool.sources[i] == "trace" for i in val], dtype=bool)] if len(val) else val


def _beats_beyond_noise(first: dict[str, Any], second: dict[str, Any], z: float) -> bool:
    """Whether `first` is better than `second` on the same rows by more than `z` standard errors:
    a paired sign test on the rows where exactly one agrees (McNemar), or, where that leaves them
    level, a paired test of the per-row error (excess over the tolerance bound)."""
    a, b = np.asarray(first["agree"], dtype=bool), np.asarray(second["agree"], dtype=bool)
    wins, losses = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if abs(wins - losses) > z * math.sqrt(wins + losses):
        return wins > losses
    gain = np.asarray(second["excess"], dtype=float) - np.asarray(first["excess"], dtype=float)
    if len(gain) < 2 or not np.any(gain):
        return False
    return float(np.mean(gain)) > z * float(np.std(gain, ddof=1)) / math.sqrt(len(gain))


def _production_holds(trainer: _Trainer, pool: Pool, val: np.ndarray, cand: _Candidate,
                      best: _Candidate, *, noise_z: float = 0.0) -> dict[str, Any]:
    """Whether a round's model is at least as good as `best` (by default, round_baseline="same_time",
    the model before the round trained as long on its own rows; "before": that model as it was) on
    the validation rows that are recorded traffic: a round chases the error over the whole domain,
    and a model that gains there while losing on the traffic it will serve is not kept; nor is one
    that gains less than the same time spent training without the round's rows. With `noise_z`
    (fit's round_noise_z, same_time only), the round falls only where `best` wins by more than
    that many standard errors (`_beats_beyond_noise`): a few hundred traffic rows cannot tell two
    short trainings apart. Without enough such rows (MIN_PRODUCTION_ROWS), the round holds."""
    rows = _production_rows(pool, val)
    if len(rows) < MIN_PRODUCTION_ROWS:
        return {"holds": True}
    now, before = trainer.judge(cand.surrogate, pool, rows), trainer.judge(best.surrogate, pool, rows)
    judged_now = replace(cand, agreement=now["agreement"], excess=float(np.mean(now["excess"])))
    judged_before = replace(best, agreement=before["agreement"], excess=float(np.mean(before["excess"])))
    holds = (not _beats_beyond_noise(before, now, noise_z)) if noise_z > 0 else _improves(judged_now, judged_before,
                                                                                           ties=True)
    return {"holds": holds, "production_rows": int(len(rows)),
            "production_agreement": judged_now.agreement, "production_agreement_before": judged_before.agreement}


def _holds_on_validation(trainer: _Trainer, pool: Pool, val: np.ndarray, cand: _Candidate, best: _Candidate,
                         *, noise_z: float = 0.0) -> bool:
    """Whether a round's model is at least as good as the model before it on all validation rows
    (ties hold); with `noise_z` > 0, unless the model before it wins by that many standard errors."""
    if noise_z <= 0:
        return _improves(cand, best, ties=True)
    return not _beats_beyond_noise(trainer.judge(best.surrogate, pool, val), trainer.judge(cand.surrogate, pool, val),
                                   noise_z)


def refinement_rounds(trainer: _Trainer, pool: Pool, data: _Data, val: np.ndarray, best: _Candidate, orc: Oracle,
                      schema: Schema, config: FitConfig, *, oracle: bool, budget_s: float, deadline: float,
                      rng: np.random.Generator, cut: list[str], bar: Any
                      ) -> tuple[_Candidate, _Data, np.ndarray, list[tuple[int, float, float]], list[dict[str, Any]]]:
    """Step 7 of `_fit`: more oracle calls where the error is, then continued training, round by
    round while the budget, the target and `config.rounds_when` allow. Returns the best candidate,
    the grown data and validation rows, the training curve and the rounds' log."""
    clock = _clock.current()
    out = trainer.out
    rounds_log: list[dict[str, Any]] = [{"round": 0, "rows": len(pool), "oracle_calls": orc.calls,
                                         "val_agreement": best.agreement}]
    curve = list(best.curve)
    reserve = (0.3 if out.width else 0.1) * budget_s  # kept for the final polish
    unkept = 0
    for round_no in range(1, config.rounds + 1):
        left = deadline - clock.now() - reserve
        if (not oracle or left < 0.1 * budget_s or _target_shown(best, len(data.val), config.target_agreement)
                or orc.remaining() == 0):
            break
        if config.rounds_when == "data_limited" and not _data_limited(best):
            # validation loss close to training loss: more samples would not help, more training will
            rounds_log.append({"round": round_no, "skipped": "not data-limited (val loss <= 1.5 x train loss)"})
            break
        n_new = int(min(orc.remaining(), max(64, 0.5 * len(pool)), 0.3 * left / max(orc.plain_cost, 1e-7)))
        if n_new <= 0:
            break
        optimizer = "lbfgs" if out.width else "adam"
        same_time = (config.round_baseline == "same_time"  # a baseline only where traffic can judge it
                     and len(_production_rows(pool, data.val)) >= MIN_PRODUCTION_ROWS)
        baseline = best
        if same_time:
            # what the round's time buys without its rows: the model before it trained as long, on
            # the rows it had (before they grow: the experts' buckets are per pool row); each gets
            # half of the round's time, less the share the round's oracle calls take
            span = max(0.7 * max(left / (config.rounds - round_no + 1), 0.2) / 2, 0.2)
            bar.update(f"round {round_no}: training {best.arch.label} without new rows")
            alone = trainer.train(best.arch, data, pool, best.buckets, clock.now() + span, init=best.state,
                                  lr_scale=0.3, optimizer=optimizer)
            baseline = alone if _improves(alone, best) else best
        bar.update(f"round {round_no}: {n_new} oracle calls")
        before = (len(pool), pool.weights.copy(), val, data, best)  # what a round not kept goes back to
        judged = trainer.judge(best.surrogate, pool, data.train)
        new_columns = _allocate(schema, pool, data.train, judged["excess"], n_new, rng, config, best)
        outputs, errors, paths = orc.call(schema.rows(new_columns), deadline=deadline)
        if len(outputs) < n_new:
            cut.append(f"round {round_no}: {len(outputs)} of {n_new} oracle calls")
            new_columns = take(new_columns, np.arange(len(outputs)))
        first_new = len(pool)
        pool.add(new_columns, outputs, errors, paths, 1.0, f"round{round_no}")
        _balance_traces(pool, config)  # the new rows must not dilute recorded traffic's share of the loss
        # a share of the new rows joins validation, so that it sees the regions the round
        # targeted (a fixed validation set showing 100% could never tell a better model on the
        # edges from the one before); the model to beat is judged again on the grown set
        n_new_val = int(round(config.validation_share * (len(pool) - first_new)))
        if n_new_val:
            val = np.sort(np.concatenate([val, rng.choice(np.arange(first_new, len(pool)), size=n_new_val,
                                                          replace=False)]))
        data = trainer.data(pool, val)
        if n_new_val:
            rejudged = trainer.judge(best.surrogate, pool, data.val)
            best = replace(best, agreement=rejudged["agreement"], excess=float(np.mean(rejudged["excess"])))
        if not same_time:
            span = max((deadline - clock.now() - reserve) / (config.rounds - round_no + 1), 0.2)
        bar.update(f"round {round_no}: training {best.arch.label}")
        cand = trainer.train(best.arch, data, pool, best.buckets, clock.now() + span, init=best.state, lr_scale=0.3,
                             optimizer=optimizer)
        noise_z = config.round_noise_z if same_time else 0.0
        production = _production_holds(trainer, pool, data.val, cand, baseline,  # judged anew on traffic rows
                                       noise_z=noise_z)
        # traffic first: a round it drops is not judged again on all validation rows (with noise_z > 0
        # that judging costs the work clock)
        kept = production["holds"] and _holds_on_validation(trainer, pool, data.val, cand, best, noise_z=noise_z)
        rows_after = len(pool)
        if kept:
            best = cand
        else:
            # its rows leave training too: they would pull the polish towards the domain-wide
            # error the round chased
            n_before, weights_before, val, data, best = before
            pool.truncate(n_before, weights_before)
            trainer.exact_cache.clear()  # keyed by row positions, which the next round reuses
            if same_time:
                best = baseline  # the same time spent without the round's rows
        unkept = 0 if kept else unkept + 1
        curve = _joined(curve, cand.curve)
        rounds_log.append({"round": round_no, "rows": rows_after, "oracle_calls": orc.calls,
                           "val_agreement": cand.agreement, "kept": kept,
                           **({} if kept else {"rows_kept": len(pool)}),
                           **({"baseline": "same_time"} if same_time else {}),
                           **{k: v for k, v in production.items() if k != "holds"}})
        if config.rounds_patience and unkept >= config.rounds_patience:
            # a round whose model is worse than before it: on a smooth function the new rows
            # were not what limited it, and another short round would only take time from
            # the polish (measured: bench/fidelity.py, AxBench kernels)
            rounds_log.append({"round": round_no + 1, "skipped": f"{unkept} round(s) in a row not kept"})
            break
    return best, data, val, curve, rounds_log
