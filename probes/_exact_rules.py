"""Exact rules from the legacy function's traced branch paths (issue 15).

Rule code (fee tables, brackets, tiered rates) is exact arithmetic on every branch path, and
neuroswap sees the path of every oracle call, so the rules can be the code's own pieces:

1. oracle rows (the schema's domain and the recorded calls), each labelled by `call_with_path`
   (`_oracle`), thin paths sampled again;
2. pieces: a raise per raising path (its type and message); returning calls grouped by `.path`,
   each group fitted with an exact expression (`_path_fit.fit_rows`), split by `.signature`
   where one expression does not reproduce the path (a loop over a bracket table), then per
   combination of categories (combined back into tables where the cells agree in form); pieces
   whose expression reproduces another's rows merge; a label output's pieces are its labels; on
   a rounded output, each expression is written the way the code computes it where calls on
   short-decimal inputs meet rounding ties (`tie_order`: order, shared factor, a difference the
   code subtracts, its floats);
3. values the code compares (`weekday_hours > 40`, `weighted >= 93`) become columns too, where an
   exact expression of the arguments gives them (`_derived`); where it compares two values it
   computed (`interest > cap`), so does `A - B` of two pieces whose calls it separates by sign,
   tested as `A <= B` (the code's choice on a float tie; `_derived.piece_comparisons`);
4. the partition (`_partition`): decision trees classifying the piece, plain or testing categories
   first, refined near their cuts; every numeric cut bisected with the oracle to the adjacent
   floats where the piece changes (`bisect_threshold`), so the rules say `weight_kg <= 30.0`
   wherever the 30 lives in the code; the candidate misrouting fewest sampled calls kept;
5. the finished partition is sampled inside every leaf and refitted where a call is misrouted;
   leaves whose sibling's expression reproduces their rows merge; a leaf of a piece no expression
   reproduces gets a stand-in fitted on its own calls: exact there when one expression holds on
   the leaf (a day of a per-day fee), else marked `# approximate` in the source.

`learn_exact` returns the reason instead where the code cannot be traced (a builtin, a C function,
a `functools.partial`) or no path is reproduced exactly; distill then falls back to the tree.
Emission is `_codegen.emit_exact_source`.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ._clock import charge_cover, search_meter
from ._schema import Schema
from ._tolerance import Tolerance
from ._traces import ErrorInfo, Traces
from ._expressions import Expression, Table
from ._identity import unwrap

from ._derived import COMPARED_ROWS, compares_computed, derived_values, own_comparisons, piece_comparisons
from ._path_oracle import (CELL_ROWS, Oracle, OutOfTime, densify, differences, grid_rows, jitter, leaf_rows, repair,
                      slab_rows, tie_order, value_key)
from ._partition import Encoding, Node, errors, fit_partition, prune, route, snap
from ._path_fit import StandIn, combine_cells, fit_rows, is_number, reproduces, stand_in

#: traced calls of the first sample drawn from the recorded calls (the rest from the domain)
TRACE_SHARE = 0.5
#: share of the first sample repeated with its real arguments rounded to short decimals (ties)
GRID_SHARE = 0.25
#: rows drawn inside each leaf's box per refinement round and per final check
LEAF_ROWS = 6
#: final checks (sample every leaf, refit the partition where a sampled call is misrouted)
CHECKS = 2
#: refinement rounds (fit the partition, sample near its cuts and in thin leaves, refit)
ROUNDS = 2
#: combinations of categories a path is fitted per, at most
MAX_CELLS = 24
#: candidate partitions (plain, categories first) whose cuts are bisected when they are large
SNAPPED_PARTITIONS = 2
#: leaves up to which every candidate partition is bisected
SMALL_PARTITION = 150


@dataclass
class Piece:
    """One outcome of the partition: an exact expression, a label/constant, a raise, or an
    approximate stand-in (`exact` False) for a path no expression reproduces."""

    kind: str  # "expression", "constant", "raise", "approximate"
    expression: Expression | None = None
    value: Any = None  # constant or label
    error: ErrorInfo | None = None
    paths: set[str] = field(default_factory=set)  # path ids / signatures it covers
    rows: int = 0
    cell: dict[str, Any] | None = None  # the categories it holds for, where a path was fitted per category

    def holds_for(self, row: Mapping[str, Any]) -> bool:
        return self.cell is None or all(_same_value(row[k], v) for k, v in self.cell.items())

    @property
    def exact(self) -> bool:
        return self.kind != "approximate"

    def describe(self) -> str:
        if self.kind == "expression" and self.expression is not None:
            return self.expression.to_python()
        if self.kind == "raise" and self.error is not None:
            return f"raise {self.error.type}"
        if self.kind == "constant":
            return repr(self.value)
        return "approximate"


@dataclass
class ExactFit:
    """What `learn_exact` found: pieces, the partition (cuts snapped), the rows it saw."""

    pieces: list[Piece]
    tree: Node
    encoding: Encoding
    rows: list[dict[str, Any]]
    labels: np.ndarray  # piece per row
    calls: int
    notes: list[str]
    cuts_total: int
    cuts_snapped: int
    stand_ins: dict[int, StandIn | None]  # per approximate leaf (by id)
    members: dict[int, np.ndarray]  # rows per node (by id) of the final partition
    misrouted: int = 0  # sampled calls in a leaf whose piece does not reproduce them
    work_s: float = 0.0  # nominal work of the search: traced calls, designs, merge checks (`Oracle.work`)

    def leaf_exact(self, leaf: Node) -> bool:
        """An exact piece, or an approximate piece's stand-in that reproduces all the leaf's calls."""
        found = self.stand_ins.get(id(leaf))
        return leaf.piece >= 0 and (self.pieces[leaf.piece].exact or (found is not None and found.exact))

    @property
    def approximate_leaves(self) -> int:
        return sum(1 for leaf in self.tree.leaves() if not self.leaf_exact(leaf))


@dataclass(frozen=True)
class ExactReport:
    """How the rules came from the traced paths (`Rules.exact`): `used` False when distill fell
    back to the tree (`note` says why: the code could not be traced, no path was exact...)."""

    used: bool
    note: str = ""
    pieces: tuple[dict[str, Any], ...] = ()  # per piece: kind, exact, source, rows, paths
    leaves: int = 0
    approximate_leaves: int = 0
    cuts: tuple[tuple[str, float, bool, bool], ...] = ()  # (argument, threshold, strict, snapped)
    traced_calls: int = 0
    misrouted: int = 0  # sampled calls the partition sends to a leaf that does not reproduce them
    rows: int = 0  # sampled calls the partition was learned on

    @property
    def exact(self) -> bool:
        """Whether every leaf is an exact piece of the code and the partition put every sampled
        call in a leaf that reproduces it (the fidelity measures the rest)."""
        return self.used and self.approximate_leaves == 0 and self.misrouted == 0

    @property
    def variant(self) -> str:
        """How Rules.variant names them."""
        if self.exact:
            return "exact paths"
        parts = [f"{self.approximate_leaves} of {self.leaves} leaves approximate"] if self.approximate_leaves else []
        if self.misrouted:
            parts.append(f"partition approximate ({self.misrouted} of {self.rows} sampled calls misrouted)")
        return "exact paths, " + ", ".join(parts)

    @classmethod
    def fallback(cls, reason: str) -> "ExactReport":
        return cls(False, reason)

    @classmethod
    def from_fit(cls, fit: "ExactFit") -> "ExactReport":
        pieces = tuple({"kind": p.kind, "exact": p.exact, "source": p.describe(), "rows": p.rows,
                        "paths": len(p.paths)} for p in fit.pieces)
        cuts = tuple((fit.encoding.columns[n.column].field, float(n.threshold), bool(n.strict), bool(n.snapped))
                     for n in fit.tree.internal()
                     if fit.encoding.columns[n.column].kind in ("real", "integer", "derived"))
        note = "; ".join(fit.notes)
        return cls(True, note, pieces, len(fit.tree.leaves()), fit.approximate_leaves, cuts, fit.calls,
                   fit.misrouted, len(fit.rows))

    def to_dict(self) -> dict[str, Any]:
        return {"used": self.used, "note": self.note, "exact": self.exact, "leaves": self.leaves,
                "approximate_leaves": self.approximate_leaves, "traced_calls": self.traced_calls,
                "misrouted": self.misrouted, "rows": self.rows,
                "pieces": [dict(p) for p in self.pieces],
                "cuts": [{"argument": a, "threshold": t, "strict": s, "snapped": k} for a, t, s, k in self.cuts]}


def traceable(fn: Callable[..., Any]) -> str | None:
    """None when `fn`'s branch paths can be traced, else why not."""
    inner = unwrap(fn)
    if getattr(inner, "__code__", None) is None:
        return (f"{type(inner).__name__} {getattr(inner, '__name__', '')!s} has no Python code to trace "
                "(a builtin, a C extension or a functools.partial)").replace("  ", " ")
    return None


# -- pieces ------------------------------------------------------------------------------------

def _value_pieces(oracle: Oracle, schema: Schema, members: dict[str, list[int]],
                  quantum: Any) -> list[tuple[Piece, list[int]]]:
    """Per group of returning rows: a constant, an exact expression, or an approximate piece."""
    found: list[tuple[Piece, list[int]]] = []
    for key, index in members.items():
        values = [oracle.outputs[i] for i in index]
        if all(_same_value(v, values[0]) for v in values):
            found.append((Piece("constant", value=values[0], paths={key}, rows=len(index)), index))
            continue
        expression = _fit_cached(oracle, key, index, schema, quantum) if all(map(is_number, values)) else None
        if expression is not None:
            found.append((Piece("expression", expression, paths={key}, rows=len(index)), index))
        else:
            found.append((Piece("approximate", paths={key}, rows=len(index)), index))
    return found


def _fit_cached(oracle: Oracle, key: str, index: list[int], schema: Schema, quantum: Any) -> Expression | None:
    """A group's expression, re-fitted only when the rows added since refute it (or, where none
    was found, when the group grew by half)."""
    cached = oracle.fits.get(key)
    if cached is not None:
        expression, n = cached
        if expression is not None and _reproduces(expression, oracle, index):
            return expression
        if expression is None and len(index) < 1.5 * n:
            return None
    expression = fit_rows([oracle.rows[i] for i in index], [oracle.outputs[i] for i in index], schema, quantum,
                          rounding=oracle.rounding, differences=oracle.differences)
    if expression is not None:
        expression = tie_order(expression, oracle, key, index)
    oracle.fits[key] = (expression, len(index))
    return expression


def _fit_cells(oracle: Oracle, key: str, index: list[int], schema: Schema,
               quantum: Any) -> list[tuple[Piece, list[int]]] | None:
    """A path no one expression reproduces, fitted per combination of its categories (a joint
    table of intercepts and slopes can snap one cell wrongly): one expression with tables where
    the cells combine (`combine_cells`), else a piece per cell; None without categories."""
    cats = [f.name for f in schema.fields if f.kind in ("categorical", "boolean")
            and len({value_key(oracle.rows[i][f.name]) for i in index}) > 1]
    if not 1 <= len(cats) <= 3:
        return None
    cells: dict[tuple, list[int]] = {}
    for i in index:
        cells.setdefault(tuple(oracle.rows[i][c] for c in cats), []).append(i)
    if len(cells) > MAX_CELLS or min(map(len, cells.values())) < CELL_ROWS:
        return None
    fitted = {cell: _fit_cached(oracle, f"{key}|{cell!r}", rows, schema, quantum) for cell, rows in cells.items()}
    if not any(fitted.values()):
        return None
    if all(fitted.values()):
        for candidate in combine_cells(fitted, cats):  # type: ignore[arg-type]
            if _reproduces(candidate, oracle, index):
                return [(Piece("expression", candidate, paths={key}, rows=len(index)), index)]
    return [(Piece("expression" if fitted[cell] else "approximate", fitted[cell], paths={key},
                   rows=len(rows), cell=dict(zip(cats, cell))), rows) for cell, rows in cells.items()]


def _same_value(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    try:
        return bool(a == b) or (isinstance(a, float) and math.isnan(a) and math.isnan(b))
    except Exception:
        return False


def build_pieces(oracle: Oracle, schema: Schema) -> tuple[list[Piece], np.ndarray]:
    """Pieces and the piece of every row (see the module docstring, step 2)."""
    n = len(oracle.rows)
    labels = np.full(n, -1)
    pieces: list[Piece] = []
    by_error: dict[tuple[str, str], list[int]] = {}  # (type, path): each raise statement its own piece
    returning: list[int] = []
    for i, error in enumerate(oracle.errors):
        if error is not None:
            by_error.setdefault((error.type, oracle.paths[i]), []).append(i)
        else:
            returning.append(i)
    raised: dict[tuple[str, str], int] = {}  # (type, message) -> piece: one raise written once
    for (kind, _), index in by_error.items():
        message = Counter(oracle.errors[i].message for i in index).most_common(1)[0][0]  # type: ignore[union-attr]
        k = raised.setdefault((kind, message), len(pieces))
        if k == len(pieces):
            pieces.append(Piece("raise", error=ErrorInfo(kind, message)))
        labels[index] = k
        pieces[k].rows += len(index)
        pieces[k].paths |= {oracle.paths[i] for i in index}
    if schema.output.kind != "real":  # labels (and anything not a number): one piece per value
        by_value: dict[Any, list[int]] = {}
        for i in returning:
            by_value.setdefault(value_key(oracle.outputs[i]), []).append(i)
        for index in by_value.values():
            labels[index] = len(pieces)
            pieces.append(Piece("constant", value=oracle.outputs[index[0]], rows=len(index),
                                paths={oracle.sigs[i] for i in index}))
        return pieces, labels
    quantum = schema.output.quantum or "auto"
    by_path: dict[str, list[int]] = {}
    for i in returning:
        by_path.setdefault(oracle.paths[i], []).append(i)
    groups: list[tuple[Piece, list[int]]] = []
    for piece, index in _value_pieces(oracle, schema, by_path, quantum):
        if piece.exact:
            groups.append((piece, index))
            continue
        by_sig: dict[str, list[int]] = {}
        for i in index:
            by_sig.setdefault(oracle.sigs[i], []).append(i)
        split = _value_pieces(oracle, schema, by_sig, quantum) if len(by_sig) > 1 else [(piece, index)]
        rest: list[int] = []
        for part, idx in split:
            cells = None if part.exact else _fit_cells(oracle, next(iter(part.paths)), idx, schema, quantum)
            for p, members in cells or [(part, idx)]:
                if p.exact:
                    groups.append((p, members))
                else:
                    rest += members
        if rest:  # the signatures no expression reproduces stay one approximate piece of the path
            groups.append((Piece("approximate", paths=set(piece.paths), rows=len(rest)), rest))
    for piece, index in _merge(groups, oracle):
        labels[index] = len(pieces)
        piece.rows = len(index)
        pieces.append(piece)
    return pieces, labels


def _merge(groups: list[tuple[Piece, list[int]]], oracle: Oracle) -> list[tuple[Piece, list[int]]]:
    """Pieces whose expression (or constant) also reproduces another piece's rows absorb it,
    largest first: fewer pieces, a smaller partition. A constant finds the groups it reproduces
    (those whose calls all gave its value) by that value, not by trying each; the other checks
    are charged to the search's meter, and merging stops (`oracle.merges_cut`) once the search is
    out of work or time: a function whose calls all differ (a solver) has thousands of pieces."""
    order = sorted(range(len(groups)), key=lambda k: -len(groups[k][1]))
    uniform: dict[Any, list[int]] = {}  # value -> exact groups (in `order`) whose calls all gave it
    for k in order:
        key = _uniform_key(oracle, groups[k][1])
        if key is not None and groups[k][0].exact:
            uniform.setdefault(key, []).append(k)
    merged: list[tuple[Piece, list[int]]] = []
    taken: set[int] = set()
    for k in order:
        if k in taken:
            continue
        piece, index = groups[k]
        index = list(index)
        taken.add(k)
        if piece.kind == "constant":
            covered = [other for other in uniform.get(_value_key(piece.value), []) if other not in taken]
        elif piece.exact and not oracle.merges_cut:
            covered = []
            for other in order:
                if other in taken or not groups[other][0].exact:
                    continue
                if oracle.exhausted():
                    oracle.merges_cut = True
                    break
                charge_cover(len(groups[other][1]))
                if _covers(piece, groups[other][1], oracle):
                    covered.append(other)
        else:
            covered = []
        for other in covered:
            taken.add(other)
            index += groups[other][1]
            piece.paths |= groups[other][0].paths
        merged.append((piece, index))
    return merged


def _value_key(value: Any) -> Any:
    """A key equal for two values exactly when `_same_value` holds (NaN included)."""
    if isinstance(value, float) and math.isnan(value):
        return ("float", "nan")
    return value_key(value)


def _uniform_key(oracle: Oracle, index: Sequence[int]) -> Any:
    """The `_value_key` of the one output all of these calls gave, or None (outputs that differ,
    or no calls)."""
    if not index:
        return None
    first = oracle.outputs[index[0]]
    if not all(_same_value(oracle.outputs[i], first) for i in index):
        return None
    return _value_key(first)


def _reproduces(expression: Expression, oracle: Oracle, index: Sequence[int]) -> bool:
    return reproduces(expression, [oracle.rows[i] for i in index], [oracle.outputs[i] for i in index])


def _covers(piece: Piece, index: Sequence[int], oracle: Oracle) -> bool:
    if piece.kind == "constant":
        return all(_same_value(oracle.outputs[i], piece.value) for i in index)
    if piece.kind == "expression" and piece.expression is not None:
        return all(is_number(oracle.outputs[i]) for i in index) and _reproduces(piece.expression, oracle, index)
    return False


def piece_of(pieces: Sequence[Piece], oracle: Oracle, row: Mapping[str, Any], labels: bool) -> Any:
    """The piece a fresh call takes: by error type, by label (`labels`), else by signature, then
    path; an unseen path is its own key, so bisection stops at it too."""
    pc = oracle.call(row)
    if pc.error is not None:
        for k, p in enumerate(pieces):
            if p.kind == "raise" and p.error is not None and p.error.type == pc.error.type and pc.path in p.paths:
                return k
        return ("raise", pc.error.type, pc.path)
    if labels:
        for k, p in enumerate(pieces):
            if p.kind == "constant" and _same_value(p.value, pc.output):
                return k
        return ("value", value_key(pc.output))
    for key in (pc.signature, pc.path):
        for k, p in enumerate(pieces):
            if key in p.paths and p.holds_for(row):
                return k
    return ("path", pc.signature)


# -- the whole procedure ---------------------------------------------------------------------------

def learn_exact(fn: Callable[..., Any], schema: Schema, *, traces: Traces | None, n_samples: int, seed: int,
                tolerance: Tolerance, deadline: float = math.inf, work_s: float = math.inf,
                checks: int = CHECKS, check_rows: int = LEAF_ROWS) -> ExactFit | str:
    """Exact pieces and their partition, or the reason there are none (see the module docstring).
    `checks` rounds of `check_rows` calls inside every leaf of the finished partition look for a
    corner it missed (fit asks for more than distill: its surrogate answers by the partition).
    The search stops where it is at the wall-clock `deadline` (perf_counter seconds), or once its
    nominal work reaches `work_s` (see `Oracle`): with `work_s` alone limiting it,
    a seed gives the same result at any machine load (fit's work clock)."""
    with search_meter() as meter:
        return _learn_exact(fn, schema, traces, n_samples, seed, tolerance, deadline, work_s, checks, check_rows,
                            meter)


def _learn_exact(fn: Callable[..., Any], schema: Schema, traces: Traces | None, n_samples: int, seed: int,
                 tolerance: Tolerance, deadline: float, work_s: float, checks: int, check_rows: int,
                 meter: list[float]) -> ExactFit | str:
    reason = traceable(fn)
    if reason is not None:
        return reason
    if schema.output.kind not in ("real", "label"):
        return f"output kind {schema.output.kind!r}: exact rules cover real and label outputs"
    if any(f.kind == "vector" for f in schema.fields):
        return "vector arguments: exact rules cover numbers, booleans and categories"
    rng = np.random.default_rng(seed)
    oracle = Oracle(fn, schema, deadline, work_s, meter)
    notes: list[str] = []
    recorded = [dict(kw) for kw in (traces.inputs if traces is not None else []) if schema.contains(kw)[0]]
    if math.isfinite(deadline) or math.isfinite(work_s):
        # size the sample to the budget: a traced call costs 10-100x a plain one
        began = time.perf_counter()
        probe = schema.sample(10, rng=np.random.default_rng(seed + 1))
        for row in probe:
            oracle.call(row)
        if math.isfinite(work_s):  # in nominal work, the same at any load
            cost, left = oracle.work / len(probe), work_s - oracle.work
        else:
            cost, left = (time.perf_counter() - began) / len(probe), deadline - time.perf_counter()
        n_samples = min(n_samples, max(50, int(0.25 * left / max(cost, 1e-9) / (1 + TRACE_SHARE + GRID_SHARE))))
    first = schema.sample(n_samples, rng=rng)
    if schema.output.kind == "real":
        try:
            oracle.add_ties(grid_rows(first[: int(n_samples * GRID_SHARE)], schema, rng))
        except OutOfTime:
            notes.append("budget: no calls on short-decimal inputs (the order of operations on ties)")
    if recorded:
        pick = rng.permutation(len(recorded))[: int(n_samples * TRACE_SHARE)]
        first += [recorded[int(k)] for k in pick]
    try:
        oracle.add(first)
    except OutOfTime:
        notes.append(f"budget: first sample cut at {len(oracle.rows)} of {len(first)} calls")
    if len(oracle.rows) < 50:
        return f"budget: only {len(oracle.rows)} traced calls fitted in it"
    # values the code compares (`weekday_hours > 40`): columns the partition may test
    mixed = [oracle.rows[int(i)] for i in rng.permutation(len(oracle.rows))]
    derived = derived_values(fn, schema, mixed, deadline=deadline, timed=not math.isfinite(work_s))
    encoding = Encoding(schema, derived)
    oracle.differences = differences([c.category for c in encoding.columns if c.kind == "derived"])
    try:
        densify(oracle, schema, rng)
    except OutOfTime:
        notes.append("budget: thin paths left as found")
    pieces, labels = build_pieces(oracle, schema)
    if any(not p.exact for p in pieces):
        try:
            repair(oracle, schema, rng, pieces, labels)
        except OutOfTime:
            notes.append("budget: paths without an exact expression not sampled again")
        pieces, labels = build_pieces(oracle, schema)
    if schema.output.kind == "real" and not any(p.kind in ("expression", "constant") for p in pieces):
        return "no branch path of the function is reproduced exactly by an expression"
    X = encoding.encode(oracle.rows)
    tree = fit_partition(X, labels, seed)
    for r in range(ROUNDS):
        members = route(tree, X)
        cuts = [(n.column, n.threshold, members[id(n)]) for n in tree.internal()
                if encoding.columns[n.column].kind in ("real", "integer")]
        extra = slab_rows(oracle, encoding, schema, cuts, max(2, n_samples // (4 * max(len(cuts), 1))), rng)
        for leaf in tree.leaves():
            if len(members[id(leaf)]) < 5:
                extra += [jitter(oracle.rows[int(i)], schema, rng, 0.01) for i in members[id(leaf)] for _ in range(4)]
        extra += leaf_rows(tree, encoding, schema, rng, LEAF_ROWS)
        if not extra:
            break
        try:
            oracle.add(extra)
        except OutOfTime:
            notes.append(f"budget: refinement round {r + 1} of {ROUNDS} cut short")
            break
        finally:
            pieces, labels = build_pieces(oracle, schema)
            X = encoding.encode(oracle.rows)
            tree = fit_partition(X, labels, seed)
    # the code compares two values it computed (`interest > cap`): `A <= B` of two pieces, a column
    # the last partitions may test (equal in mathematics, the two differ in the last bit)
    if schema.output.kind == "real" and compares_computed(fn, mixed[:COMPARED_ROWS], deadline=deadline):
        comparisons = piece_comparisons(pieces, labels, oracle.rows, schema)
        if comparisons:
            encoding = Encoding(schema, derived + comparisons)
            X = encoding.encode(oracle.rows)
    tree, total, snapped, misrouted = _best_partition(tree, X, labels, pieces, oracle, schema, encoding, seed, notes)
    for _ in range(checks):  # the finished partition sampled inside every leaf: a corner it missed?
        n = len(oracle.rows)
        try:
            oracle.add(leaf_rows(tree, encoding, schema, rng, check_rows))
        except OutOfTime:
            notes.append("budget: the final partition's leaves not sampled again")
            oracle.truncate(n)
            break
        fresh = np.arange(n, len(oracle.rows))
        if all(_answers(tree, encoding.encode([oracle.rows[i] for i in fresh]), fresh, pieces, oracle)):
            oracle.truncate(n)  # all answered: the rules stand as they are
            break
        pieces, labels = build_pieces(oracle, schema)
        X = encoding.encode(oracle.rows)
        tree, total, snapped, misrouted = _best_partition(fit_partition(X, labels, seed), X, labels, pieces, oracle,
                                                          schema, encoding, seed, notes)
    members = route(tree, X)
    stand_ins: dict[int, StandIn | None] = {}
    for leaf in tree.leaves():
        if leaf.piece >= 0 and not pieces[leaf.piece].exact:
            own = [int(i) for i in members[id(leaf)] if labels[i] == leaf.piece]
            own = own or [int(i) for i in np.flatnonzero(labels == leaf.piece)]
            stand_ins[id(leaf)] = stand_in([oracle.rows[i] for i in own], [oracle.outputs[i] for i in own], schema,
                                           tolerance, oracle.rounding)
    if oracle.merges_cut:
        notes.append("budget: some pieces left unmerged")
    return ExactFit(pieces, tree, encoding, oracle.rows, labels, oracle.calls, notes, total, snapped, stand_ins,
                    members, misrouted, round(oracle.work, 3))


def _answers(tree: Node, X: np.ndarray, index: np.ndarray, pieces: list[Piece], oracle: Oracle) -> list[bool]:
    """Per oracle row (`index`, encoded as `X`): whether its leaf's piece gives the code's outcome
    (an approximate piece is not judged here)."""
    leaf_of: dict[int, Node] = {id(leaf): leaf for leaf in tree.leaves()}
    out = [True] * len(index)
    for node_id, members in route(tree, X).items():
        leaf = leaf_of.get(node_id)
        if leaf is None:
            continue
        piece = pieces[leaf.piece] if 0 <= leaf.piece < len(pieces) else None
        for m in members:
            i = int(index[m])
            error, output, row = oracle.errors[i], oracle.outputs[i], oracle.rows[i]
            if piece is None or not piece.holds_for(row):
                out[m] = False
            elif piece.kind == "raise":
                out[m] = error is not None and piece.error is not None and error.type == piece.error.type
            elif piece.kind == "constant":
                out[m] = error is None and _same_value(output, piece.value)
            elif piece.kind == "expression":
                out[m] = error is None and is_number(output) and _reproduces_row(piece, row, output)
    return out


def _reproduces_row(piece: Piece, row: Mapping[str, Any], output: Any) -> bool:
    return piece.expression is not None and reproduces(piece.expression, [row], [output])


def _best_partition(plain: Node, X: np.ndarray, labels: np.ndarray, pieces: list[Piece], oracle: Oracle,
                    schema: Schema, encoding: Encoding, seed: int,
                    notes: list[str]) -> tuple[Node, int, int, int]:
    """The plain tree, or one testing categories first (all of them, or one), whichever leaves the
    fewest rows in a leaf whose piece does not reproduce them after its cuts are snapped, then
    the fewest cuts no bisection confirmed, then the fewest leaves; (partition, cuts, snapped)."""
    cats = [f.name for f in schema.fields if f.kind in ("categorical", "boolean")]
    options: list[tuple[str, ...]] = [()] + ([tuple(cats)] if cats else []) + (
        [(c,) for c in cats] if len(cats) > 1 else [])
    is_label = schema.output.kind != "real"

    def covers(k: int, index: np.ndarray) -> bool:
        return pieces[k].kind == "expression" and _covers(pieces[k], [int(i) for i in index], oracle)

    def wrong(index: np.ndarray, goes_left: np.ndarray, left: int, right: int) -> int:
        total = 0
        for side, k in ((index[goes_left], left), (index[~goes_left], right)):
            bad = side[labels[side] != k]
            total += len(bad) if len(bad) and not (k >= 0 and covers(k, bad)) else 0
        return total

    # every candidate is bisected where the trees are small; for large ones (a staircase along a
    # boundary no single argument draws) the two with the fewest misrouted calls and leaves before
    # comparisons of two pieces (`A <= B`, the last columns) are tried in drafts of their own, kept
    # where their calls tie or they make a smaller partition: a cut on an argument reads better
    sides = [j for j, c in enumerate(encoding.columns) if c.kind == "derived" and getattr(c.category, "sides", None)
             and getattr(c.category, "strict", None) is None]
    base = min(sides, default=X.shape[1])
    if sides:
        plain = fit_partition(X[:, :base], labels, seed)
    drafts = [prune(plain if not first else fit_partition(X[:, :base], labels, seed, encoding.columns[:base], first),
                    X, covers) for first in options]
    drafts += [prune(fit_partition(X, labels, seed, encoding.columns, first), X, covers) for first in options
               if sides]

    tied = {j for j in sides if encoding.columns[j].category.tied}

    def compared(tree: Node) -> tuple[int, int]:
        """(0 where the tree tests a comparison its calls tie on, or none is tied, else 1; the
        comparisons it tests that are not tied): ties go the code's way only through the
        comparison, and elsewhere a cut on an argument is preferred when as small."""
        used = {n.column for n in tree.internal()} & set(sides)
        return int(bool(tied) and not used & tied), len(used - tied)

    drafts.sort(key=lambda tree: (errors(tree, X, labels, covers), compared(tree)[0], len(tree.leaves()),
                                  compared(tree)[1]))
    if len(drafts[0].leaves()) > SMALL_PARTITION:
        drafts = drafts[:SNAPPED_PARTITIONS]
    best = None
    for tree in drafts:
        try:
            total, snapped = snap(tree, X, oracle.rows, encoding.columns,
                                  lambda row: piece_of(pieces, oracle, row, is_label), {f.name: f for f in schema.fields})
        except OutOfTime:
            if best is not None:
                break
            total, snapped = len(tree.internal()), 0
            notes.append("budget: some cuts left where the tree put them (no time to bisect)")
        tree = prune(tree, X, covers)
        own_comparisons(tree, X, encoding.columns, pieces, schema, wrong)
        score = (errors(tree, X, labels, covers), total - snapped, compared(tree)[0], len(tree.leaves()),
                 compared(tree)[1])
        if best is None or score < best[0]:
            best = (score, tree, total, snapped)
        if score[:2] == (0, 0):
            break  # right on every sampled call, every cut bisected
    return best[1], best[2], best[3], best[0][0]  # type: ignore[index]


def table_nodes(expression: Expression) -> list[Table]:
    """Every table of an expression, in source order."""
    found: list[Table] = []

    def walk(node: Any) -> None:
        if isinstance(node, Table):
            found.append(node)
        for child in node.children():
            walk(child)

    walk(expression.root)
    return found
