"""fit's exact program: the legacy code's own partition and pieces (`probes._exact_rules.learn_exact`,
the same search `explain.distill` emits as rules), carried by the surrogate as data
(`probes._program.ExactProgram`) and answering before the network wherever it is exact.

A leaf is kept only where the program is never wrong on the held-out labelled rows it routes there
(the fit's fresh test inputs, its validation rows, the search's own calls) nor on calls at the ends
of each numeric argument's domain (`edge_rows`, where code tests its input's limits; at most half as
many as the search's traced calls, and on the wall clock within the search's time): its answers carry
spread 0, so a partition that misroutes near a cut the search did not pin down must not hide its
errors from the guard. A search its budget cut short (or whose partition misroutes some of its own calls)
also needs CUT_SHORT_MIN_ROWS such rows per leaf, and leaves its stand-ins (expressions fitted on
one leaf's calls where no expression reproduces the whole path) to the network. Leaves no expression reproduces stay `neural`. Where the code cannot be traced (a
builtin, a C function) or no oracle may be called, the surrogate stays as it was and the report
says why.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from probes import Schema, Tolerance, Traces, _clock
from probes._exact_rules import learn_exact
from probes._program import ExactProgram

from ._fidelity import compare

#: the share of budget_s (wall seconds) the path search may take after training on the wall clock,
#: so that the fit still ends within 1.5 x budget_s + 1 s (a small budget may cut the search short:
#: the program then holds what was found, or nothing, and the report's note says so)
EXACT_SHARE = 0.4
#: on the work clock the search is limited in work, not time: its nominal cost (traced calls by the
#: lines each executes, the expression search's designs, the merge's checks; `probes._clock`'s
#: search meter) may reach max(this, 2 x budget_s) seconds, so a seed
#: gives one program at any load; only the fit's wall ceiling ends it earlier, not reproducibly (as
#: it ends the fit's training)
EXACT_WORK_S = 60.0
#: held-out rows a leaf needs before it answers, when the search was cut short or misroutes some of
#: its own calls (a complete, clean search needs none beyond never being wrong)
CUT_SHORT_MIN_ROWS = 30
#: traced oracle calls the search starts from (as distill's default)
EXACT_SAMPLES = 4000
#: recorded calls (or domain samples) the edge check moves to the ends of each numeric argument's
#: domain (`edge_rows`): at most 2 x this x the numeric arguments plain calls of the function
EDGE_BASES = 128
#: the edge calls are at most this share of the search's traced calls (plain calls cost less than
#: traced ones), so a slow function's edge check costs a fraction of what its search cost
EDGE_SHARE = 0.5
#: rounds and calls per leaf of the final check inside the partition's leaves (distill: 2 x 6):
#: the surrogate answers by it, so a corner it missed costs wrong answers, not a line of rules
EXACT_CHECKS = 3
EXACT_CHECK_ROWS = 20


def fit_program(fn: Callable[..., Any], schema: Schema, traces: Traces | None, *, seed: int, tolerance: Tolerance,
                budget_s: float, surrogate: Any,
                held_out: Sequence[tuple[Mapping[str, Any], Sequence[Any], Sequence[Any]]]) -> tuple[ExactProgram | None,
                                                                                                   dict[str, Any]]:
    """(program or None, report): the program of `fn`'s traced paths with the leaves that hold on
    `held_out` ((columns, outputs, errors) sets) kept, and what was found."""
    began = time.perf_counter()
    clock = _clock.current()
    if clock.deterministic:  # limited in work, up to the fit's own wall ceiling
        wall_left = clock.wall_left()
        if wall_left <= 0:
            return None, {"used": False, "note": "the fit's wall ceiling was reached before the exact program"}
        deadline, work_s = began + wall_left, max(EXACT_WORK_S, 2 * budget_s)
    else:  # inside the fit's 1.5 x budget_s + 1 s
        deadline, work_s = began + EXACT_SHARE * budget_s, math.inf
    try:
        found = learn_exact(fn, schema, traces=traces, n_samples=EXACT_SAMPLES, seed=seed, tolerance=tolerance,
                            deadline=deadline, work_s=work_s, checks=EXACT_CHECKS, check_rows=EXACT_CHECK_ROWS)
    except Exception as exc:  # the network still answers; the report says what went wrong
        found = f"tracing the paths failed ({type(exc).__name__}: {exc})"[:300]
    if isinstance(found, str):
        return None, {"used": False, "note": found, "seconds": round(time.perf_counter() - began, 2)}
    # a search its budget cut short, or whose partition misroutes some of its own calls, is trusted
    # only on leaves of paths an expression reproduces, each with enough held-out rows to show it
    cut_short = bool(found.misrouted) or any(note.startswith("budget:") for note in found.notes)
    program = ExactProgram.from_fit(found, schema.output.python_type, stand_ins=not cut_short)
    if isinstance(program, str):
        return None, {"used": False, "note": program, "seconds": round(time.perf_counter() - began, 2)}
    # the search's own calls judge the leaves too: a call its partition misroutes (it counts them,
    # `misrouted`) makes that leaf as suspect as a held-out one would
    calls = Traces.from_calls(fn, found.rows)
    own = ({name: [row[name] for row in found.rows] for name in schema.names}, calls.outputs, calls.errors)
    edges = edge_rows(schema, traces, seed)[:int(EDGE_SHARE * found.calls)]
    edge_outputs, edge_errors = _calls_until(fn, edges, math.inf if clock.deterministic else deadline)
    edges = edges[:len(edge_outputs)]
    edge = ({name: [row[name] for row in edges] for name in schema.names}, edge_outputs, edge_errors)
    program, stats = keep_leaves(program, surrogate, [*held_out, own], schema.output.kind, tolerance,
                                 min_rows=CUT_SHORT_MIN_ROWS if cut_short else 0, probes=[edge])
    report = {
        "used": program.served_leaves > 0,
        "note": "; ".join(found.notes),
        "leaves": len(program.leaves),
        "served_leaves": program.served_leaves,
        **stats,
        "traced_calls": int(found.calls),
        "traced_work_s": found.work_s,
        "misrouted": int(found.misrouted),
        "seconds": round(time.perf_counter() - began, 2),
    }
    return (program if program.served_leaves else None), report


def _calls_until(fn: Callable[..., Any], rows: list[dict[str, Any]], deadline: float,
                 chunk: int = 16) -> tuple[list[Any], list[Any]]:
    """(outputs, errors) of `fn` on `rows` in order, chunk by chunk, until `deadline` (wall seconds,
    perf_counter) passes: on the wall clock the edge check ends with the search's time."""
    outputs: list[Any] = []
    errors: list[Any] = []
    step = chunk if math.isfinite(deadline) else max(len(rows), 1)  # no deadline: one batch
    for start in range(0, len(rows), step):
        if time.perf_counter() > deadline:
            break
        part = Traces.from_calls(fn, rows[start:start + step])
        outputs += part.outputs
        errors += part.errors
    return outputs, errors


def edge_rows(schema: Schema, traces: Traces | None, seed: int) -> list[dict[str, Any]]:
    """Calls at the ends of the domain: up to EDGE_BASES recorded calls (domain samples without
    traces), each copied with one numeric argument set to its domain's low end and to its high
    end. Code that tests an argument at its edge (`age > 100` raising only at 101) puts a path
    there that few samples reach, and a partition drawn without that test answers it with
    another leaf's value, with spread 0; these calls show it."""
    numeric = [f for f in schema.fields if f.kind in ("real", "integer")
               and f.low is not None and f.high is not None and math.isfinite(float(f.low)) and math.isfinite(float(f.high))]
    if not numeric:
        return []
    rng = np.random.default_rng([seed, 0xED6E])  # its own stream: the search's draws stay as they were
    names = set(schema.names)
    recorded = [dict(row) for row in (traces.inputs if traces is not None else []) if names <= set(row)]
    if recorded:
        bases = [recorded[i] for i in rng.choice(len(recorded), size=min(EDGE_BASES, len(recorded)), replace=False)]
    else:
        bases = schema.sample(EDGE_BASES, rng=rng)
    out = []
    for base in bases:
        for f in numeric:
            for end in (f.low, f.high):
                row = {**base, f.name: int(end) if f.kind == "integer" else float(end)}
                if schema.contains(row)[0]:
                    out.append(row)
    return out


def _served_rows(program: ExactProgram, kind: str, tolerance: Tolerance, columns: Mapping[str, Any],
                 outputs: Sequence[Any], errors: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(each row's leaf, the rows the program answers, whether each of those answers agrees with
    the outcome), or None when it answers none of them."""
    n = len(outputs)
    if not n:
        return None
    leaf = program.route(columns, n)
    served, values, raised = program.answer_batch(columns, n)
    idx = np.flatnonzero(served)
    if not idx.size:
        return None
    ours = compare(kind, [outputs[i] for i in idx], [errors[i] for i in idx], [values[i] for i in idx],
                   [raised[i] for i in idx], tolerance)["agree"]
    return leaf, idx, ours


def keep_leaves(program: ExactProgram, surrogate: Any,
                held_out: Sequence[tuple[Mapping[str, Any], Sequence[Any], Sequence[Any]]], kind: str,
                tolerance: Tolerance, *, min_rows: int = 0,
                probes: Sequence[tuple[Mapping[str, Any], Sequence[Any], Sequence[Any]]] = ()
                ) -> tuple[ExactProgram, dict[str, int]]:
    """The program with every leaf that is wrong on any held-out row it routes there (its answers
    carry spread 0, so a leaf wrong even where the network is wrong too would hide its errors
    from the guard), or that gets fewer than `min_rows` of them, turned `neural`; and the counts
    (the network's errors on the same rows are counted for the report). `probes` (e.g. the
    `edge_rows` calls) turn a leaf neural where it is wrong on one of them, but do not count
    towards `min_rows`: they are not drawn as traffic or the domain are."""
    wrong_program = np.zeros(len(program.leaves), dtype=int)
    wrong_network = np.zeros(len(program.leaves), dtype=int)
    rows_in = np.zeros(len(program.leaves), dtype=int)
    wrong_probe = np.zeros(len(program.leaves), dtype=int)
    for columns, outputs, errors in probes:
        judged = _served_rows(program, kind, tolerance, columns, outputs, errors)
        if judged is not None:
            leaf, idx, ours = judged
            np.add.at(wrong_probe, leaf[idx], (~ours).astype(int))
    for columns, outputs, errors in held_out:
        judged = _served_rows(program, kind, tolerance, columns, outputs, errors)
        if judged is None:
            continue
        leaf, idx, ours = judged
        details = surrogate.predict_details(columns)
        network = surrogate.python_outputs(details)
        theirs = compare(kind, [outputs[i] for i in idx], [errors[i] for i in idx], [network[i] for i in idx],
                         [details.errors[i] for i in idx], tolerance)["agree"]
        np.add.at(wrong_program, leaf[idx], (~ours).astype(int))
        np.add.at(wrong_network, leaf[idx], (~theirs).astype(int))
        np.add.at(rows_in, leaf[idx], 1)
    worse = [k for k in range(len(program.leaves))
             if program.leaves[k].kind != "neural" and (wrong_program[k] or rows_in[k] < min_rows)]
    at_edges = [k for k in range(len(program.leaves))
                if program.leaves[k].kind != "neural" and wrong_probe[k] and k not in worse]
    if worse:
        program = program.without(worse, "wrong on a held-out row, or too few held-out rows to show it")
    if at_edges:
        program = program.without(at_edges, "wrong on a call at the end of an argument's domain")
    dropped = set(worse) | set(at_edges)
    kept = [k for k in range(len(program.leaves)) if k not in dropped]
    edge_stats = {"edge_rows": int(sum(len(o) for _, o, _ in probes)), "edge_rejected_leaves": len(at_edges)} \
        if probes else {}
    return program, {"rejected_leaves": len(worse), **edge_stats, "held_out_rows": int(rows_in.sum()),
                     "held_out_wrong": int(wrong_program[kept].sum()) if kept else 0,
                     "network_wrong_on_kept": int(wrong_network[kept].sum()) if kept else 0}


__all__ = ["CUT_SHORT_MIN_ROWS", "EDGE_BASES", "EXACT_WORK_S", "EXACT_SHARE", "edge_rows", "fit_program", "keep_leaves"]
