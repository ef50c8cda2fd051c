"""How fast does the guarded swap's live audit trip on a break, and how often does it trip falsely?

Simulated served streams, no surrogate: each served call is audited with probability
`audit_rate` and an audited answer is wrong with probability `wrong_rate`.

- Detection: `wrong_rate=0.3` from the first served call; the share of streams tripped within
  500 served calls and the median delay (served calls, and audits) to the trip.
- Detection after a clean run: the same break after 2,000 clean audits (errors at a tenth of the
  asked rate), delay counted from the break.
  Beside it, the median for the plain mixture over alternatives (every product from audit 1),
  the design not taken.
- False alarms: `wrong_rate` equal to `max_error_rate` (the hardest null) over 100,000 served
  calls; the share of streams that tripped, against the stated bound `false_alarm`.

Fresh detection runs `LiveAudit` call by call (its own seeded audit draws); the runs after a
clean stretch and the false-alarm runs use the same statistic vectorised over streams
(`log_evidence_paths`), with geometric gaps between audits, since 1000 x 100,000 Python calls
would take many minutes.

    python bench/guard_trip.py            # 1000 streams per setting (about a minute)
    python bench/guard_trip.py --quick    # 100 streams

Writes bench/results/guard_trip.json (guard_trip_quick.json with --quick).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from replace._audit import LiveAudit, alternatives_for, log_evidence_paths  # noqa: E402

RATES = (0.001, 0.01, 0.05)


def _median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def detection_study(max_error_rate: float, audit_rate: float, wrong_rate: float, served_calls: int, streams: int,
                    seed: int = 0, false_alarm: float = 0.01, *, within: int = 500, clean_audits: int = 0,
                    engine: str = "auto") -> dict[str, Any]:
    """Run `streams` simulated streams of at most `served_calls` served calls; when did the audit trip?

    Delays count served calls (and audits) from the first call with `wrong_rate` errors; with
    `clean_audits`, that many audits at a tenth of `max_error_rate` come first. `engine`
    "class" drives `LiveAudit` call by call, "vector" simulates the same statistic in numpy;
    "auto" takes "class" for horizons up to 20,000 calls. A stream that never trips counts as
    not detected; its delay enters the medians as infinite (so a median can be None).
    """
    if engine == "auto":
        engine = "class" if served_calls <= 20_000 else "vector"
    started = time.perf_counter()
    if engine == "class":
        delays, audits = _by_class(max_error_rate, audit_rate, wrong_rate, served_calls, streams, seed, false_alarm,
                                   clean_audits)
    else:
        delays, audits = _by_vector(max_error_rate, audit_rate, wrong_rate, served_calls, streams, seed, false_alarm,
                                    clean_audits)
    tripped = [d for d in delays if d is not None]
    inf = math.inf
    median_calls = statistics.median([d if d is not None else inf for d in delays])
    median_audits = statistics.median([a if a is not None else inf for a in audits])
    return {
        "max_error_rate": max_error_rate, "audit_rate": audit_rate, "wrong_rate": wrong_rate,
        "served_calls": served_calls, "streams": streams, "seed": seed, "false_alarm": false_alarm,
        "clean_audits": clean_audits, "engine": engine,
        "tripped_share": len(tripped) / streams,
        f"detected_within_{within}": sum(1 for d in tripped if d <= within) / streams,
        "median_delay_calls": None if math.isinf(median_calls) else float(median_calls),
        "median_delay_audits": None if math.isinf(median_audits) else float(median_audits),
        "median_delay_calls_of_tripped": _median([float(d) for d in tripped]),
        "seconds": round(time.perf_counter() - started, 3),
    }


def _by_class(p0: float, audit_rate: float, wrong_rate: float, served_calls: int, streams: int, seed: int,
              false_alarm: float, clean_audits: int) -> tuple[list[int | None], list[int | None]]:
    delays: list[int | None] = []
    audits: list[int | None] = []
    for stream in range(streams):
        audit = LiveAudit(p0, audit_rate, false_alarm=false_alarm, seed=seed * 1_000_003 + stream)
        truth = random.Random(seed * 7_919 + stream + 1)
        tripped_early = False
        for _ in range(clean_audits):  # the clean run before the break
            tripped_early |= audit.observe(truth.random() < p0 / 10)
        delay = count = None
        if not tripped_early:
            for call in range(1, served_calls + 1):
                if audit.should_audit() and audit.observe(truth.random() < wrong_rate):
                    delay, count = call, audit.audited - clean_audits
                    break
        delays.append(delay)
        audits.append(count)
    return delays, audits


def _by_vector(p0: float, audit_rate: float, wrong_rate: float, served_calls: int, streams: int, seed: int,
               false_alarm: float, clean_audits: int) -> tuple[list[int | None], list[int | None]]:
    rng = np.random.default_rng(seed)
    mean = served_calls * audit_rate
    width = int(mean + 8 * math.sqrt(mean + 1) + 10)  # audits that can fall within the horizon
    positions = np.cumsum(rng.geometric(audit_rate, size=(streams, width)), axis=1)
    outcomes = rng.random((streams, width)) < wrong_rate
    if clean_audits:
        outcomes = np.concatenate([rng.random((streams, clean_audits)) < p0 / 10, outcomes], axis=1)
    log_m = log_evidence_paths(outcomes, p0, alternatives_for(p0))
    over = log_m >= math.log(1.0 / false_alarm)
    early = over[:, :clean_audits].any(axis=1) if clean_audits else np.zeros(streams, dtype=bool)
    over = over[:, clean_audits:] & (positions <= served_calls)
    delays: list[int | None] = []
    audits: list[int | None] = []
    for s in range(streams):
        hits = np.flatnonzero(over[s])
        if early[s] or hits.size == 0:
            delays.append(None)
            audits.append(None)
        else:
            delays.append(int(positions[s, hits[0]]))
            audits.append(int(hits[0]) + 1)
    return delays, audits


def plain_mixture_late(max_error_rate: float, wrong_rate: float, clean_audits: int, streams: int,
                       seed: int = 0, false_alarm: float = 0.01, audits: int = 3_000) -> float | None:
    """Median audits to trip after the break for the mixture over alternatives alone (every product from audit 1).

    The design `LiveAudit` did not take: shown beside its start-time mixture, the clean run's
    accumulated evidence against the alternatives delays it.
    """
    rng = np.random.default_rng(seed)
    grid = np.asarray(alternatives_for(max_error_rate))
    up, down = np.log(grid / max_error_rate), np.log1p(-grid) - math.log1p(-max_error_rate)
    x = np.concatenate([rng.random((streams, clean_audits)) < max_error_rate / 10,
                        rng.random((streams, audits)) < wrong_rate], axis=1).astype(float)
    w = np.cumsum(x, axis=1)
    n = np.arange(1, x.shape[1] + 1)
    log_m = np.logaddexp.reduce(w[..., None] * up + (n - w)[..., None] * down, axis=-1) - math.log(len(grid))
    over = log_m >= math.log(1.0 / false_alarm)
    delays = [int(np.argmax(row[clean_audits:])) + 1 if row[clean_audits:].any() and not row[:clean_audits].any()
              else math.inf for row in over]
    median = statistics.median(delays)
    return None if math.isinf(median) else float(median)


def _false_alarm_margin(streams: int, bound: float) -> int:
    """Largest count of false trips not significantly above `bound` (one-sided binomial, 1%)."""
    from scipy.stats import binom

    return int(binom.ppf(0.99, streams, bound))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 streams per setting")
    parser.add_argument("--streams", type=int, default=1000, help="streams per setting (default 1000)")
    parser.add_argument("--audit-rate", type=float, default=0.05)
    parser.add_argument("--false-alarm", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    streams = 100 if args.quick else args.streams
    started = time.perf_counter()
    rows = []
    for rate in RATES:
        common = dict(max_error_rate=rate, audit_rate=args.audit_rate, streams=streams, seed=args.seed,
                      false_alarm=args.false_alarm)
        fresh = detection_study(wrong_rate=0.3, served_calls=20_000, **common)
        late = detection_study(wrong_rate=0.3, served_calls=20_000, clean_audits=2_000, engine="vector", **common)
        null = detection_study(wrong_rate=rate, served_calls=100_000, engine="vector", **common)
        clean = detection_study(wrong_rate=0.0, served_calls=100_000, engine="vector", **common)
        row = {
            "max_error_rate": rate, "alternatives": list(alternatives_for(rate)),
            "detected_within_500": fresh["detected_within_500"],
            "median_delay_calls": fresh["median_delay_calls"], "median_delay_audits": fresh["median_delay_audits"],
            "after_2000_clean_audits": {k: late[k] for k in ("detected_within_500", "median_delay_calls",
                                                              "median_delay_audits", "tripped_share")},
            "plain_mixture_after_2000_clean_audits_median_audits": plain_mixture_late(
                rate, 0.3, 2_000, min(streams, 200), seed=args.seed, false_alarm=args.false_alarm),
            "false_alarm_share_100k": null["tripped_share"],
            "false_alarm_allowed_count": _false_alarm_margin(streams, args.false_alarm),
            "false_alarm_within_bound": null["tripped_share"] * streams <= _false_alarm_margin(streams,
                                                                                               args.false_alarm),
            "zero_error_trips_100k": clean["tripped_share"],
            "runs": {"fresh": fresh, "late": late, "null": null, "clean": clean},
        }
        rows.append(row)
        print(f"max_error_rate={rate:<6} detected<=500: {row['detected_within_500']:.3f}  "
              f"median delay {row['median_delay_calls']} calls / {row['median_delay_audits']} audits  "
              f"after 2000 clean audits: <=500 {late['detected_within_500']:.3f}, median {late['median_delay_calls']}  "
              f"false alarms /100k calls: {row['false_alarm_share_100k']:.3f} (bound {args.false_alarm})  "
              f"zero-error trips: {row['zero_error_trips_100k']:.3f}", flush=True)
    result = {
        "bench": "guard_trip", "audit_rate": args.audit_rate, "false_alarm": args.false_alarm, "wrong_rate": 0.3,
        "streams": streams, "seed": args.seed, "rates": rows, "seconds": round(time.perf_counter() - started, 1),
        "python": platform.python_version(), "numpy": np.__version__,
    }
    out = ROOT / "bench" / "results" / ("guard_trip_quick.json" if args.quick else "guard_trip.json")
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)} in {result['seconds']} s")
    return result


if __name__ == "__main__":
    main()
