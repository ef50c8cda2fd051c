"""Per-call overhead of @record over an undecorated call, side by side with MonkeyType.

For each workload (bench/_record_workload.py) and in one run:
- plain: the undecorated function;
- sampled out: @record(sample_rate=0), and @record(max_traces=1) after its first call;
- sampled 1%: @record(sample_rate=0.01);
- recorded: @record into an SQLite store, every call; the caller thread's CPU time
  (time.thread_time) while the writer thread encodes and writes concurrently, plus the wall
  time, plus the total CPU (caller + writer, time.process_time, including the final flush);
- MonkeyType: `with monkeytype.trace():` around the same loop; its in-loop caller time, and the
  whole block including the flush it does at block exit (all on the caller's thread).
Timings are the minimum over repeats (timeit), per call, minus the plain call.

Run: python bench/record_overhead.py [--quick]
Writes bench/results/record_overhead.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
import timeit

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import _record_workload as workload  # noqa: E402

from probes import TraceStore, record  # noqa: E402

SAMPLED_OUT_TARGET_NS = 500.0
MONKEYTYPE_RATIO_TARGET = 10.0


def per_call(loop, fn, n: int, repeat: int, timer, setup=None) -> float:
    """Min over `repeat` runs of `loop(fn, n)`, in ns per call."""
    times = timeit.repeat(lambda: loop(fn, n), setup=setup or (lambda: None), number=1, repeat=repeat, timer=timer)
    return min(times) / n * 1e9


def measure_monkeytype(loop, fn, n: int, repeat: int, db_path: str) -> dict[str, float]:
    import monkeytype

    os.environ["MT_DB_PATH"] = db_path
    inner_thread, block_thread, block_process, inner_wall = [], [], [], []
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            p0, b0 = time.process_time(), time.thread_time()
            with monkeytype.trace():
                w1, t1 = time.perf_counter(), time.thread_time()
                loop(fn, n)
                t2, w2 = time.thread_time(), time.perf_counter()
            b3, p3 = time.thread_time(), time.process_time()
        finally:
            gc.enable()
        inner_thread.append(t2 - t1)
        inner_wall.append(w2 - w1)
        block_thread.append(b3 - b0)
        block_process.append(p3 - p0)
    connection = sqlite3.connect(db_path)
    logged = connection.execute("SELECT COUNT(*) FROM monkeytype_call_traces").fetchone()[0]
    connection.close()
    return {
        "in_loop_thread_ns": min(inner_thread) / n * 1e9,
        "in_loop_wall_ns": min(inner_wall) / n * 1e9,
        "block_incl_flush_thread_ns": min(block_thread) / n * 1e9,
        "block_incl_flush_cpu_ns": min(block_process) / n * 1e9,
        "traces_logged": logged,
    }


def measure_total_cpu(loop, fn, n: int, repeat: int) -> float:
    """Caller + writer CPU per recorded call, flush included (process_time)."""
    best = float("inf")
    for _ in range(repeat):
        record.flush()
        gc.collect()
        gc.disable()
        try:
            p0 = time.process_time()
            loop(fn, n)
            record.flush()
            p1 = time.process_time()
        finally:
            gc.enable()
        best = min(best, p1 - p0)
    return best / n * 1e9


def bench_workload(name: str, fn, loop, n: int, repeat: int, tmp: str) -> dict:
    thread = time.thread_time
    wall = time.perf_counter
    store = TraceStore.open(os.path.join(tmp, f"{name}.db"))
    off = record(store=store, sample_rate=0.0)(fn)
    capped = record(store=store, max_traces=1)(fn)
    loop(capped, 1)
    sparse = record(store=store, sample_rate=0.01)(fn)
    full = record(store=store)(fn)

    plain_thread = per_call(loop, fn, n, repeat, thread)
    plain_wall = per_call(loop, fn, n, repeat, wall)
    out: dict = {"n_calls": n, "repeats": repeat, "plain_ns": plain_thread, "plain_wall_ns": plain_wall}
    out["sampled_out_rate0_overhead_ns"] = per_call(loop, off, n, repeat, thread) - plain_thread
    out["sampled_out_cap_overhead_ns"] = per_call(loop, capped, n, repeat, thread) - plain_thread
    out["sampled_1pct_overhead_ns"] = per_call(loop, sparse, n, repeat, thread) - plain_thread
    record.flush()

    before = record.stats()
    flush = lambda: record.flush()  # noqa: E731 - untimed: every repeat starts with an empty queue
    out["recorded_caller_thread_overhead_ns"] = per_call(loop, full, n, repeat, thread, setup=flush) - plain_thread
    out["recorded_wall_overhead_ns"] = per_call(loop, full, n, repeat, wall, setup=flush) - plain_wall
    out["recorded_total_cpu_overhead_ns"] = measure_total_cpu(loop, full, n, repeat) - plain_thread
    record.flush()
    after = record.stats()
    out["recorded_traces_written"] = after.recorded - before.recorded
    out["recorded_dropped"] = after.dropped - before.dropped
    out["recorded_failed"] = after.failed - before.failed
    out["traces_in_store"] = store.count(full)

    mt = measure_monkeytype(loop, fn, n, repeat, os.path.join(tmp, f"monkeytype_{name}.sqlite3"))
    out["monkeytype_overhead_ns"] = mt["in_loop_thread_ns"] - plain_thread
    out["monkeytype_wall_overhead_ns"] = mt["in_loop_wall_ns"] - plain_wall
    out["monkeytype_block_incl_flush_overhead_ns"] = mt["block_incl_flush_thread_ns"] - plain_thread
    out["monkeytype_block_cpu_overhead_ns"] = mt["block_incl_flush_cpu_ns"] - plain_thread
    out["monkeytype_traces_logged"] = mt["traces_logged"]

    ours = out["recorded_caller_thread_overhead_ns"]
    out["overhead_ratio_vs_monkeytype"] = out["monkeytype_overhead_ns"] / ours
    out["overhead_ratio_vs_monkeytype_incl_flush"] = out["monkeytype_block_incl_flush_overhead_ns"] / ours
    out["total_cpu_ratio_vs_monkeytype"] = out["monkeytype_block_cpu_overhead_ns"] / out["recorded_total_cpu_overhead_ns"]
    worst_sampled_out = max(out["sampled_out_rate0_overhead_ns"], out["sampled_out_cap_overhead_ns"])
    out["target_sampled_out_met"] = worst_sampled_out < SAMPLED_OUT_TARGET_NS
    out["target_vs_monkeytype_met"] = out["overhead_ratio_vs_monkeytype"] >= MONKEYTYPE_RATIO_TARGET
    store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and repeats")
    args = parser.parse_args()
    n, repeat = (5_000, 3) if args.quick else (20_000, 7)
    results: dict = {
        "benchmark": "record_overhead",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "quick": args.quick,
        "timer": "min over repeats of time.thread_time (caller thread CPU) unless named *_wall_* or *_cpu_*",
        "targets": {"sampled_out_overhead_ns_below": SAMPLED_OUT_TARGET_NS,
                    "overhead_ratio_vs_monkeytype_at_least": MONKEYTYPE_RATIO_TARGET},
        "workloads": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, (fn, loop) in workload.WORKLOADS.items():
            results["workloads"][name] = bench_workload(name, fn, loop, n, repeat, tmp)

    rows = [
        ("plain call (ns)", "plain_ns"),
        ("sampled out, rate 0 (+ns)", "sampled_out_rate0_overhead_ns"),
        ("sampled out, past max_traces (+ns)", "sampled_out_cap_overhead_ns"),
        ("sample_rate=0.01 (+ns)", "sampled_1pct_overhead_ns"),
        ("recorded, caller thread CPU (+ns)", "recorded_caller_thread_overhead_ns"),
        ("recorded, wall (+ns)", "recorded_wall_overhead_ns"),
        ("recorded, caller+writer CPU (+ns)", "recorded_total_cpu_overhead_ns"),
        ("MonkeyType in trace(), caller (+ns)", "monkeytype_overhead_ns"),
        ("MonkeyType trace() incl. flush (+ns)", "monkeytype_block_incl_flush_overhead_ns"),
        ("ratio MonkeyType / recorded", "overhead_ratio_vs_monkeytype"),
        ("ratio incl. MonkeyType flush", "overhead_ratio_vs_monkeytype_incl_flush"),
        ("ratio total CPU", "total_cpu_ratio_vs_monkeytype"),
    ]
    names = list(results["workloads"])
    print(f"{'per call':40s}" + "".join(f"{name:>14s}" for name in names))
    for label, key in rows:
        print(f"{label:40s}" + "".join(f"{results['workloads'][name][key]:14.1f}" for name in names))
    for name in names:
        w = results["workloads"][name]
        print(f"{name}: written {w['recorded_traces_written']}, dropped {w['recorded_dropped']}, failed "
              f"{w['recorded_failed']}, MonkeyType logged {w['monkeytype_traces_logged']}; sampled-out target "
              f"{'met' if w['target_sampled_out_met'] else 'MISSED'}, 10x MonkeyType "
              f"{'met' if w['target_vs_monkeytype_met'] else 'MISSED'}")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", "record_overhead.json")
    with open(path, "w") as handle:
        json.dump(results, handle, indent=2)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
