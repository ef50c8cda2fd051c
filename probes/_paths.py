"""Which branch path a call of the legacy function took.

Piecewise functions are learned better one path at a time (Turaco), and branch boundaries
are where surrogates fail, so training and verification both ask for the path of a call.
The path id is a hash of the set of line-to-line arcs and conditional-jump outcomes executed
in the function's own source file (its helpers included): loops count once, so an id names a
combination of branch outcomes (one-line ifs and ternaries included), not an iteration count. It uses `sys.settrace` (every CPython); slow, and meant
for offline oracle calls only.

The signature is finer: a hash of the ordered sequence of conditional-jump outcomes (run-length
encoded) and of the line arcs with their counts, so a loop over a bracket table that stops in
bracket 2 and one that stops in bracket 3 differ. Exact per-path expressions need it (each
bracket is its own linear piece); Turaco's sampling and verify's per-path table keep `.path`.
`.branches` gives the same outcomes readably, for naming paths and writing their conditions.
"""

from __future__ import annotations

import dis
import hashlib
import linecache
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, NamedTuple

from ._identity import kwargs_caller, unwrap
from ._traces import ErrorInfo


class Branch(NamedTuple):
    """One conditional jump's outcome on a call's path, readably: `condition` (the source text of
    the value the code tests) was `outcome` (its truth) `count` times, at `line` of `function`."""

    line: int
    condition: str
    outcome: bool
    count: int
    function: str = ""


@dataclass(frozen=True)
class PathCall:
    """The outcome of one call and the id of the branch path it took.

    `path` names the set of branch outcomes (loops count once); `signature` also counts loop
    iterations and keeps the order of outcomes, so it tells the pieces of a loop over a table
    apart; `branches` lists the outcomes readably, in the order first taken; `lines` counts the
    lines the call executed in the function's file (its cost, the same on any machine)."""

    output: Any
    error: ErrorInfo | None
    path: str
    signature: str = ""
    branches: tuple[Branch, ...] = ()
    lines: int = 0


@dataclass(frozen=True)
class _CodeInfo:
    """Per code object: conditional jumps, the instruction after each, lines holding one, and
    per jump its line, the source text of the value it tests and how to read its outcome."""

    conditional_jumps: frozenset[int]
    next_offset: dict[int, int]
    branch_lines: frozenset[int]
    conditions: dict[int, tuple[int, str, str]]  # offset -> (line, condition text, jump kind)


_CODE_INFO: dict[Any, _CodeInfo] = {}


def _source_span(filename: str, positions: Any) -> str:
    """The source text an instruction's positions cover ('' when unknown)."""
    if positions is None or positions.lineno is None or positions.col_offset is None:
        return ""
    first, last = positions.lineno, positions.end_lineno or positions.lineno
    lines = [linecache.getline(filename, number) for number in range(first, last + 1)]
    if not all(lines):
        return ""
    if first == last:
        text = lines[0][positions.col_offset:positions.end_col_offset]
    else:
        text = "".join([lines[0][positions.col_offset:], *lines[1:-1], lines[-1][:positions.end_col_offset]])
    return " ".join(text.split())


def _jump_kind(opname: str) -> str:
    """How a conditional jump reads: 'true'/'false' (jumps when the value is truthy/falsy) or
    'none'/'not_none' (jumps when the value is / is not None)."""
    if "NOT_NONE" in opname:
        return "not_none"
    if "NONE" in opname:
        return "none"
    if "FALSE" in opname:
        return "false"
    return "true"


def _code_info(code: Any) -> _CodeInfo:
    info = _CODE_INFO.get(code)
    if info is None:
        instructions = list(dis.get_instructions(code))
        jumps, lines, following, conditions = set(), set(), {}, {}
        line = code.co_firstlineno
        for index, instruction in enumerate(instructions):
            if instruction.starts_line is not None and not isinstance(instruction.starts_line, bool):
                line = instruction.starts_line
            elif getattr(instruction, "line_number", None) is not None:
                line = instruction.line_number
            if index + 1 < len(instructions):
                following[instruction.offset] = instructions[index + 1].offset
            if "IF" in instruction.opname and instruction.opcode in _JUMPS:
                jumps.add(instruction.offset)
                lines.add(line)
                # the instruction before the jump computed the tested value; its span is the
                # condition's text (the jump's own span is unreliable for `not x` in 3.11)
                source = instructions[index - 1] if index else instruction
                text = _source_span(code.co_filename, getattr(source, "positions", None))
                conditions[instruction.offset] = (line, text, _jump_kind(instruction.opname))
        info = _CodeInfo(frozenset(jumps), following, frozenset(lines), conditions)
        _CODE_INFO[code] = info
    return info


_JUMPS = frozenset(dis.hasjrel) | frozenset(dis.hasjabs)


def _arc_tracer(filename: str, arcs: dict[tuple[Any, ...], int],
                jumps: list[tuple[Any, int, bool]]) -> Callable[..., Any]:
    """Count line arcs, and record the outcome of every conditional jump in order (opcode tracing
    is switched on only for lines that hold one, so loops of plain arithmetic stay affordable)."""
    last_line: dict[int, int] = {}
    pending_jump: dict[int, int] = {}

    def local(frame: Any, event: str, arg: Any) -> Any:
        key = id(frame)
        code = frame.f_code
        if event in ("line", "opcode"):
            info = _code_info(code)
            jump = pending_jump.pop(key, None)
            if jump is not None:
                jumps.append((code, jump, frame.f_lasti == info.next_offset.get(jump)))
            if frame.f_lasti in info.conditional_jumps:
                pending_jump[key] = frame.f_lasti
            if event == "line":
                line = frame.f_lineno - code.co_firstlineno
                arc = (getattr(code, "co_qualname", code.co_name), "line", last_line.get(key, -1), line)
                arcs[arc] = arcs.get(arc, 0) + 1
                last_line[key] = line
                frame.f_trace_opcodes = frame.f_lineno in info.branch_lines
        elif event == "return":
            last_line.pop(key, None)
            pending_jump.pop(key, None)
        return local

    def global_trace(frame: Any, event: str, arg: Any) -> Any:
        if event == "call" and frame.f_code.co_filename == filename:
            return local
        return None

    return global_trace


def path_id(arcs: Iterable[tuple[Any, ...]]) -> str:
    """A short stable id of a set of arcs (stable across processes and runs)."""
    key = frozenset(arcs)
    found = _IDS.get(key)
    if found is None:
        text = "|".join(":".join(str(part) for part in arc) for arc in sorted(key, key=repr))
        found = hashlib.sha1(text.encode()).hexdigest()[:12]
        _remember(_IDS, key, found)
    return found


#: ids already computed (oracle calls repeat a few paths many times); bounded
_IDS: dict[Any, str] = {}
_SIGNATURES: dict[Any, str] = {}
_CACHE_SIZE = 4096


def _remember(cache: dict[Any, str], key: Any, value: str) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value


def _qualname(code: Any) -> str:
    return getattr(code, "co_qualname", code.co_name)


def path_signature(arcs: Mapping[tuple[Any, ...], int], jumps: Iterable[tuple[Any, int, bool]]) -> str:
    """A short stable id of line arcs with their counts and of the ordered sequence of jump
    outcomes (run-length encoded, so a loop of n iterations costs one entry per change)."""
    runs: list[list[Any]] = []
    last = None
    for code, offset, fell_through in jumps:
        item = (code, offset, fell_through)
        if item == last:
            runs[-1][3] += 1
        else:
            runs.append([_qualname(code), offset, fell_through, 1])
            last = item
    # insertion order is execution order: the same control flow gives the same text
    key = (tuple(arcs.items()), tuple(map(tuple, runs)))
    found = _SIGNATURES.get(key)
    if found is None:
        text = repr(list(key[0])) + "/" + repr(runs)
        found = hashlib.sha1(text.encode()).hexdigest()[:16]
        _remember(_SIGNATURES, key, found)
    return found


_BRANCH_INFO: dict[tuple[Any, int, bool], tuple[int, str, bool, str]] = {}


def _branch_info(code: Any, offset: int, fell_through: bool) -> tuple[int, str, bool, str]:
    """(line, condition text, its truth, function) of one jump outcome."""
    key = (code, offset, fell_through)
    info = _BRANCH_INFO.get(key)
    if info is None:
        line, text, kind = _code_info(code).conditions.get(offset, (code.co_firstlineno, "", "true"))
        if kind == "none" or kind == "not_none":  # `x is None` / `x is not None` tests: name the test
            info = (line, text + " is None", fell_through == (kind == "not_none"), _qualname(code))
        else:  # the truth of the tested value: jumped on true, or fell through on false
            info = (line, text, fell_through == (kind == "false"), _qualname(code))
        _BRANCH_INFO[key] = info
    return info


def _branches(jumps: Iterable[tuple[Any, int, bool]]) -> tuple[Branch, ...]:
    """Jump outcomes grouped by (jump, outcome), in the order first taken, made readable."""
    counts: dict[tuple[Any, int, bool], int] = {}
    for jump in jumps:
        counts[jump] = counts.get(jump, 0) + 1
    branches = []
    for jump, count in counts.items():
        line, text, outcome, function = _branch_info(*jump)
        branches.append(Branch(line, text, outcome, count, function))
    return tuple(branches)


def call_with_path(fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> PathCall:
    """Call `fn(**kwargs)`, returning its outcome (output or error), its branch path id, its
    finer path signature and its readable branch outcomes."""
    inner = unwrap(fn)
    code = getattr(inner, "__code__", None)
    filename = code.co_filename if code is not None else ""
    arcs: dict[tuple[Any, ...], int] = {}
    jumps: list[tuple[Any, int, bool]] = []
    previous = sys.gettrace()
    sys.settrace(_arc_tracer(filename, arcs, jumps))
    try:
        output, error = kwargs_caller(fn)(**kwargs), None
    except Exception as exc:  # the legacy function's own outcome, kept as data
        output, error = None, ErrorInfo.from_exception(exc)
    finally:
        sys.settrace(previous)
    arc_set = set(arcs)
    arc_set.update((_qualname(c), "jump", offset, fell) for c, offset, fell in jumps)
    return PathCall(output, error, path_id(arc_set), path_signature(arcs, jumps), _branches(jumps),
                    sum(arcs.values()))


def paths_of(fn: Callable[..., Any], inputs: Iterable[Mapping[str, Any]]) -> list[PathCall]:
    """`call_with_path` over many inputs."""
    return [call_with_path(fn, kwargs) for kwargs in inputs]


class PathNames:
    """Readable names of branch paths: per path id, the branch outcomes its calls took, in source
    terms (`minutes <= 30: False, fee > cap: True`), with loop counts where a condition was
    tested more than once (`price > limit: False ×2, True`; a range when calls of the same path
    looped a different number of times: `×1-3`). A helper's conditions are prefixed by its name."""

    def __init__(self, main: str = "") -> None:
        self.main = main
        # path -> {(function, line, condition, outcome): [low, high]} in the order first taken
        self._seen: dict[str, dict[tuple[str, int, str, bool], list[int]]] = {}

    def add(self, path: str, branches: Iterable[Branch]) -> None:
        seen = self._seen.setdefault(path, {})
        counted = dict.fromkeys(seen, 0)
        for branch in branches:
            key = (branch.function, branch.line, branch.condition, bool(branch.outcome))
            counted[key] = counted.get(key, 0) + int(branch.count)
        for key, count in counted.items():
            span = seen.get(key)
            if span is None:
                seen[key] = [count, count]
            else:
                span[0], span[1] = min(span[0], count), max(span[1], count)

    def __contains__(self, path: str) -> bool:
        return path in self._seen

    def name(self, path: str) -> str:
        """The path's branch outcomes ('' when none was seen: a path without a condition)."""
        seen = self._seen.get(path, {})
        tests: dict[tuple[str, int, str], list[str]] = {}
        for (function, line, condition, outcome), (low, high) in seen.items():
            if high == 0:
                continue
            outcomes = tests.setdefault((function, line, condition), [])
            times = "" if high == 1 and low == 1 else (f" ×{high}" if low == high else f" ×{low}-{high}")
            outcomes.append(f"{outcome}{times}")
        parts = []
        for (function, line, condition), outcomes in tests.items():
            text = condition or f"line {line}"
            if function and self.main and function != self.main:
                text = f"{function}(): {text}"
            parts.append(f"{text}: {', '.join(outcomes)}")
        return ", ".join(parts)
