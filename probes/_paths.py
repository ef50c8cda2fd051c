"""Which branch path a call of the legacy function took.

Piecewise functions are learned better one path at a time (Turaco), and branch boundaries
are where surrogates fail, so training and verification both ask for the path of a call.
The path id is a hash of the set of line-to-line arcs and conditional-jump outcomes executed
in the function's own source file (its helpers included): loops count once, so an id names a
combination of branch outcomes (one-line ifs and ternaries included), not an iteration count. It uses `sys.settrace` (every CPython); slow, and meant
for offline oracle calls only.
"""

from __future__ import annotations

import dis
import hashlib
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from ._identity import kwargs_caller, unwrap
from ._traces import ErrorInfo


@dataclass(frozen=True)
class PathCall:
    """The outcome of one call and the id of the branch path it took."""

    output: Any
    error: ErrorInfo | None
    path: str


@dataclass(frozen=True)
class _CodeInfo:
    """Per code object: conditional jumps, the instruction after each, lines holding one."""

    conditional_jumps: frozenset[int]
    next_offset: dict[int, int]
    branch_lines: frozenset[int]


_CODE_INFO: dict[Any, _CodeInfo] = {}


def _code_info(code: Any) -> _CodeInfo:
    info = _CODE_INFO.get(code)
    if info is None:
        instructions = list(dis.get_instructions(code))
        jumps, lines, following = set(), set(), {}
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
        info = _CodeInfo(frozenset(jumps), following, frozenset(lines))
        _CODE_INFO[code] = info
    return info


_JUMPS = frozenset(dis.hasjrel) | frozenset(dis.hasjabs)


def _arc_tracer(filename: str, arcs: set[tuple[Any, ...]]) -> Callable[..., Any]:
    """Record line arcs, and the outcome of every conditional jump (opcode tracing is switched
    on only for lines that hold one, so loops of plain arithmetic stay affordable)."""
    last_line: dict[int, int] = {}
    pending_jump: dict[int, int] = {}

    def local(frame: Any, event: str, arg: Any) -> Any:
        key = id(frame)
        code = frame.f_code
        if event in ("line", "opcode"):
            info = _code_info(code)
            name = getattr(code, "co_qualname", code.co_name)
            jump = pending_jump.pop(key, None)
            if jump is not None:
                arcs.add((name, "jump", jump - 0, frame.f_lasti == info.next_offset.get(jump)))
            if frame.f_lasti in info.conditional_jumps:
                pending_jump[key] = frame.f_lasti
            if event == "line":
                line = frame.f_lineno - code.co_firstlineno
                arcs.add((name, "line", last_line.get(key, -1), line))
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
    text = "|".join(":".join(str(part) for part in arc) for arc in sorted(set(arcs), key=repr))
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def call_with_path(fn: Callable[..., Any], kwargs: Mapping[str, Any]) -> PathCall:
    """Call `fn(**kwargs)`, returning its outcome (output or error) and its branch path id."""
    inner = unwrap(fn)
    code = getattr(inner, "__code__", None)
    filename = code.co_filename if code is not None else ""
    arcs: set[tuple[Any, ...]] = set()
    previous = sys.gettrace()
    sys.settrace(_arc_tracer(filename, arcs))
    try:
        output, error = kwargs_caller(fn)(**kwargs), None
    except Exception as exc:  # the legacy function's own outcome, kept as data
        output, error = None, ErrorInfo.from_exception(exc)
    finally:
        sys.settrace(previous)
    return PathCall(output, error, path_id(arcs))


def paths_of(fn: Callable[..., Any], inputs: Iterable[Mapping[str, Any]]) -> list[PathCall]:
    """`call_with_path` over many inputs."""
    return [call_with_path(fn, kwargs) for kwargs in inputs]
