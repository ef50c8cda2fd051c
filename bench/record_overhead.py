"""Per-call overhead of @record over an undecorated call, side by side with MonkeyType.

The headline is total CPU per recorded call: under CPython's GIL the writer thread's encoding
and writing are paid by the same process, so the caller thread's time alone flatters any
recorder that moves work off the hot path. The ratio that counts is MonkeyType's total CPU
(its `trace()` block, flush included) over ours, measured side by side in one run.

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

Then, where a PostgreSQL server can be started (the test suite's own server logic,
tests/probes/conftest.py, imported rather than copied), PostgreSQL as a second store: the
client's total CPU and the server's CPU (its processes' /proc counters) per trace, and the
sustained traces/s of 1, 4 and 8 processes recording at once (SQLite beside it), every trace
counted in the store afterwards.

Run: python bench/record_overhead.py [--quick] [--no-postgres]
Writes bench/results/record_overhead.json.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import multiprocessing
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

    adaptive = record(store=store, sample="adaptive")(fn)
    out["adaptive_total_cpu_overhead_ns"] = measure_total_cpu(loop, adaptive, n, repeat) - plain_thread
    record.flush()

    ours = out["recorded_caller_thread_overhead_ns"]
    out["overhead_ratio_vs_monkeytype"] = out["monkeytype_overhead_ns"] / ours
    out["overhead_ratio_vs_monkeytype_incl_flush"] = out["monkeytype_block_incl_flush_overhead_ns"] / ours
    out["total_cpu_ratio_vs_monkeytype"] = out["monkeytype_block_cpu_overhead_ns"] / out["recorded_total_cpu_overhead_ns"]
    worst_sampled_out = max(out["sampled_out_rate0_overhead_ns"], out["sampled_out_cap_overhead_ns"])
    out["target_sampled_out_met"] = worst_sampled_out < SAMPLED_OUT_TARGET_NS
    out["target_caller_vs_monkeytype_met"] = out["overhead_ratio_vs_monkeytype"] >= MONKEYTYPE_RATIO_TARGET
    out["target_total_cpu_vs_monkeytype_met"] = out["total_cpu_ratio_vs_monkeytype"] >= MONKEYTYPE_RATIO_TARGET
    store.close()
    return out


# -- PostgreSQL: per-trace cost with the server's share, and many processes at once ---------------

def _load_test_server():
    """tests/probes/conftest.py's PostgresServer (the tests' own throwaway server), or a reason."""
    path = os.path.join(os.path.dirname(HERE), "tests", "probes", "conftest.py")
    try:
        import psycopg  # noqa: F401

        spec = importlib.util.spec_from_file_location("_neuroswap_test_pg", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001
        return None, f"cannot load the test server helper: {type(exc).__name__}: {exc}"
    initdb, pg_ctl = module._find_binary("initdb"), module._find_binary("pg_ctl")
    if not (initdb and pg_ctl):
        return None, "no initdb/pg_ctl on PATH"
    try:
        return module.PostgresServer(initdb, pg_ctl), ""
    except Exception as exc:  # noqa: BLE001
        return None, f"the server did not start: {exc}"


def _server_cpu_s(server) -> float:
    """CPU seconds of the server so far: the postmaster (with its exited children) and live children."""
    tick = os.sysconf("SC_CLK_TCK")
    with open(os.path.join(server.data, "postmaster.pid")) as handle:
        postmaster = int(handle.readline())
    total = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(name), int(fields[1])
        if pid == postmaster:
            total += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
        elif ppid == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def _record_in_process(uri: str, n: int, barrier, results) -> None:
    import _record_workload as wl

    from probes import record as rec

    fn = rec(store=uri)(wl.shipping_fee)
    fn(0.0)  # opens the store outside the timed part
    rec.flush()
    barrier.wait()
    w0, c0 = time.monotonic(), time.process_time()
    wl.run_scalar(fn, n)
    ok = rec.flush(timeout=600)
    results.put((w0, time.monotonic(), time.process_time() - c0, ok))


def sustained(uri: str, processes: int, n: int, count) -> dict:
    """`processes` processes record `n` calls each into `uri` at once: traces/s from the first
    start to the last flush, every trace counted in the store."""
    ctx = multiprocessing.get_context("fork")
    before = count()
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    workers = [ctx.Process(target=_record_in_process, args=(uri, n, barrier, results)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    done = [results.get(timeout=900) for _ in workers]
    for worker in workers:
        worker.join()
    wall = max(d[1] for d in done) - min(d[0] for d in done)
    stored = count() - before - processes  # less the untimed first call of each process
    return {"processes": processes, "calls": processes * n, "stored": stored, "wall_s": wall,
            "traces_per_s": stored / wall, "client_cpu_ns_per_trace": sum(d[2] for d in done) / stored * 1e9,
            "all_flushed": all(d[3] for d in done)}


def bench_postgres(n: int, repeat: int, tmp: str, process_counts: tuple[int, ...]) -> dict:
    server, reason = _load_test_server()
    if server is None:
        return {"skipped": reason}
    out: dict = {"server": "PostgreSQL on this host (fsync=off, the tests' settings), connections over TCP"}
    try:
        uri = server.new_database()
        store = TraceStore.open(uri)
        fn, loop = workload.WORKLOADS["scalar_args"]
        full = record(store=store)(fn)
        loop(full, 10)
        record.flush()
        plain = per_call(loop, fn, n, repeat, time.thread_time)
        client, server_cpu, wall = [], [], []
        for _ in range(repeat):
            record.flush()
            gc.collect()
            s0, w0, p0 = _server_cpu_s(server), time.perf_counter(), time.process_time()
            loop(full, n)
            record.flush()
            p1, w1, s1 = time.process_time(), time.perf_counter(), _server_cpu_s(server)
            client.append(p1 - p0)
            server_cpu.append(s1 - s0)
            wall.append(w1 - w0)
        best = min(range(repeat), key=lambda i: client[i])
        out["per_trace"] = {
            "workload": "scalar_args", "n_calls": n, "repeats": repeat,
            "client_total_cpu_overhead_ns": client[best] / n * 1e9 - plain,
            "server_cpu_ns": server_cpu[best] / n * 1e9,
            "client_plus_server_ns": client[best] / n * 1e9 - plain + server_cpu[best] / n * 1e9,
            "wall_ns": wall[best] / n * 1e9 - plain,
            "traces_in_store": store.count(full),
        }
        store.close()
        sqlite_path = os.path.join(tmp, "processes.db")
        TraceStore.open(sqlite_path).close()
        per = max(2_000, n // 2)
        out["sustained"] = {"calls_per_process": per, "postgresql": [], "sqlite": []}
        for processes in process_counts:
            pg_uri = server.new_database()
            TraceStore.open(pg_uri).close()

            def pg_count(u=pg_uri):
                with TraceStore.open(u) as s:
                    return s.count()

            def sq_count():
                with TraceStore.open(sqlite_path) as s:
                    return s.count()

            out["sustained"]["postgresql"].append(sustained(pg_uri, processes, per, pg_count))
            out["sustained"]["sqlite"].append(sustained(sqlite_path, processes, per, sq_count))
    finally:
        server.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and repeats")
    parser.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL part")
    args = parser.parse_args()
    n, repeat = (5_000, 3) if args.quick else (20_000, 7)
    results: dict = {
        "benchmark": "record_overhead",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "quick": args.quick,
        "load_average_at_start": os.getloadavg(),
        "headline": "recorded_total_cpu_overhead_ns against monkeytype_block_cpu_overhead_ns "
                    "(total_cpu_ratio_vs_monkeytype): caller + writer CPU, flush included",
        "timer": "min over repeats of time.thread_time (caller thread CPU) unless named *_wall_* or *_cpu_*",
        "targets": {"sampled_out_overhead_ns_below": SAMPLED_OUT_TARGET_NS,
                    "overhead_ratio_vs_monkeytype_at_least": MONKEYTYPE_RATIO_TARGET},
        "workloads": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name, (fn, loop) in workload.WORKLOADS.items():
            results["workloads"][name] = bench_workload(name, fn, loop, n, repeat, tmp)
        if not args.no_postgres:
            results["postgresql"] = bench_postgres(n, min(repeat, 5), tmp, (1, 4, 8))
    results["load_average_at_end"] = os.getloadavg()

    rows = [
        ("recorded, TOTAL CPU caller+writer (+ns)", "recorded_total_cpu_overhead_ns"),
        ("MonkeyType TOTAL CPU incl. flush (+ns)", "monkeytype_block_cpu_overhead_ns"),
        ("ratio total CPU (headline)", "total_cpu_ratio_vs_monkeytype"),
        ("recorded, caller thread CPU (+ns)", "recorded_caller_thread_overhead_ns"),
        ("recorded, wall (+ns)", "recorded_wall_overhead_ns"),
        ("MonkeyType in trace(), caller (+ns)", "monkeytype_overhead_ns"),
        ("MonkeyType in trace(), wall (+ns)", "monkeytype_wall_overhead_ns"),
        ("ratio caller thread", "overhead_ratio_vs_monkeytype"),
        ("plain call (ns)", "plain_ns"),
        ("sampled out, rate 0 (+ns)", "sampled_out_rate0_overhead_ns"),
        ("sampled out, past max_traces (+ns)", "sampled_out_cap_overhead_ns"),
        ("sample_rate=0.01 (+ns)", "sampled_1pct_overhead_ns"),
        ("sample='adaptive', total CPU (+ns)", "adaptive_total_cpu_overhead_ns"),
    ]
    names = list(results["workloads"])
    print(f"{'per call':40s}" + "".join(f"{name:>14s}" for name in names))
    for label, key in rows:
        print(f"{label:40s}" + "".join(f"{results['workloads'][name][key]:14.1f}" for name in names))
    for name in names:
        w = results["workloads"][name]
        print(f"{name}: written {w['recorded_traces_written']}, dropped {w['recorded_dropped']}, failed "
              f"{w['recorded_failed']}, MonkeyType logged {w['monkeytype_traces_logged']}; sampled-out target "
              f"{'met' if w['target_sampled_out_met'] else 'MISSED'}, 10x MonkeyType on total CPU "
              f"{'met' if w['target_total_cpu_vs_monkeytype_met'] else 'MISSED'}")
    pg = results.get("postgresql")
    if pg and "skipped" in pg:
        print(f"PostgreSQL: skipped ({pg['skipped']})")
    elif pg:
        t = pg["per_trace"]
        print(f"PostgreSQL per trace: client total CPU +{t['client_total_cpu_overhead_ns']:.0f} ns, server "
              f"{t['server_cpu_ns']:.0f} ns, wall +{t['wall_ns']:.0f} ns")
        for kind in ("postgresql", "sqlite"):
            for row in pg["sustained"][kind]:
                print(f"{kind:10s} {row['processes']} processes: {row['traces_per_s']:,.0f} traces/s, "
                      f"{row['stored']:,}/{row['calls']:,} stored, client CPU {row['client_cpu_ns_per_trace']:.0f} "
                      "ns/trace")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", "record_overhead.json")
    with open(path, "w") as handle:
        json.dump(results, handle, indent=2)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
