"""Emit a distilled tree as plain, dependency-free Python with the legacy signature.

The source is meant to be read, reviewed and pasted back into the legacy code base: tests read
like the business rules (`zone in ("EU", "NA")`, `weight_kg <= 2.0`), cuts are exact doubles
(`repr` round-trips) compared the way the tree compares them, and raising regions raise the
teacher's exception type with its message.
"""

from __future__ import annotations

import ast
import builtins
import math
import enum
import keyword
from dataclasses import dataclass
from typing import Any, Sequence

from probes import ErrorInfo, Schema

from ._tree import OK, Features, Leaf, Tree

INDENT = "    "


# -- a small statement tree ----------------------------------------------------------------------

@dataclass(frozen=True)
class Cond:
    kind: str  # "le" (<=), "lt" (<), "gt" (>), "ge" (>=), "in", "notin", "true", "false"
    var: str
    value: Any = None  # threshold literal text, or a tuple of category literal texts

    def negate(self) -> "Cond":
        opposite = {"le": "gt", "lt": "ge", "gt": "le", "ge": "lt", "in": "notin", "notin": "in",
                    "true": "false", "false": "true"}[self.kind]
        return Cond(opposite, self.var, self.value)

    def render(self) -> str:
        ops = {"le": "<=", "lt": "<", "gt": ">", "ge": ">="}
        if self.kind in ops:
            return f"{self.var} {ops[self.kind]} {self.value}"
        if self.kind == "true":
            return self.var
        if self.kind == "false":
            return f"not {self.var}"
        items = tuple(sorted(self.value))
        if len(items) == 1:
            return f"{self.var} {'==' if self.kind == 'in' else '!='} {items[0]}"
        return f"{self.var} {'in' if self.kind == 'in' else 'not in'} ({', '.join(items)})"


@dataclass(frozen=True)
class If:
    cond: Cond
    then: tuple[Any, ...]
    orelse: tuple[Any, ...]


@dataclass(frozen=True)
class Stmt:
    text: str


def literal(value: Any, imports: set[str]) -> str:
    """Source text that evaluates to `value` (enum members via an import of their class)."""
    if isinstance(value, enum.Enum):
        cls = type(value)
        imports.add(f"from {cls.__module__} import {cls.__qualname__.split('.')[0]}")
        return f"{cls.__qualname__}.{value.name}"
    if isinstance(value, float):
        if value != value:
            return 'float("nan")'
        if value in (float("inf"), float("-inf")):
            return 'float("inf")' if value > 0 else '-float("inf")'
        return repr(value)
    if isinstance(value, (bool, int, str, type(None))):
        return repr(value)
    if isinstance(value, (tuple, list)):
        inner = ", ".join(literal(v, imports) for v in value)
        return f"({inner},)" if isinstance(value, tuple) and len(value) == 1 else (
            f"({inner})" if isinstance(value, tuple) else f"[{inner}]")
    return repr(value)


def _raise_text(error: ErrorInfo, imports: set[str]) -> str:
    name = error.type
    if "." not in name and isinstance(getattr(builtins, name, None), type):
        cls_text = name
    else:
        module, _, qual = name.rpartition(".")
        cls = error.exception_class()
        if cls is RuntimeError and name.split(".")[-1] != "RuntimeError":
            return f"raise RuntimeError({(name + ': ' + error.message)!r})"
        imports.add(f"from {cls.__module__} import {cls.__qualname__.split('.')[0]}")
        cls_text = cls.__qualname__
    message = error.message
    if name.split(".")[-1] == "KeyError":  # str(KeyError(k)) is repr(k): raise with k itself
        try:
            key = ast.literal_eval(message)
            return f"raise {cls_text}({key!r})"
        except (ValueError, SyntaxError):
            pass
    return f"raise {cls_text}({message!r})" if message else f"raise {cls_text}"


# -- tree -> statements ----------------------------------------------------------------------------

class Emitter:
    def __init__(self, features: Features, schema: Schema, imports: set[str]) -> None:
        self.features, self.schema, self.imports = features, schema, imports

    def var(self, j: int) -> str:
        spec = self.features.specs[j]
        return f"{spec.field}[{spec.index}]" if spec.kind == "vec" else spec.field

    def term(self, j: int) -> str:
        """A feature as a number inside a linear leaf (flags as 0/1 via a bool)."""
        spec = self.features.specs[j]
        if spec.kind == "cat":
            return f"({spec.field} == {literal(spec.category, self.imports)})"
        return self.var(j)

    def condition(self, tree: Tree, i: int) -> tuple[Cond, bool]:
        """The test of node i, and whether its true branch is the tree's left child."""
        j = int(tree.feature[i])
        spec = self.features.specs[j]
        if spec.kind == "bool":
            return Cond("true", spec.field), False  # left is False (x <= 0.5)
        if spec.kind == "cat":
            return Cond("in", spec.field, (literal(spec.category, self.imports),)), False
        if spec.kind == "ord":  # left: the categories ranked at or below the cut
            k = int(math.floor(float(tree.threshold[i])))
            left = tuple(literal(c, self.imports) for c in spec.order[: k + 1])
            right = tuple(literal(c, self.imports) for c in spec.order[k + 1:])
            if len(right) < len(left):
                return Cond("in", spec.field, right), False
            return Cond("in", spec.field, left), True
        t = float(tree.threshold[i])
        if spec.kind == "int":
            bound = math.floor(t) if not tree.strict[i] else math.ceil(t) - 1
            return Cond("le", spec.field, str(int(bound))), True
        return Cond("lt" if tree.strict[i] else "le", self.var(j), repr(t)), True

    def block(self, tree: Tree, i: int, leaf_stmt: Any) -> tuple[Any, ...]:
        if tree.left[i] == -1:
            return leaf_stmt(tree.leaves[i])
        cond, true_is_left = self.condition(tree, i)
        left = self.block(tree, int(tree.left[i]), leaf_stmt)
        right = self.block(tree, int(tree.right[i]), leaf_stmt)
        then, orelse = (left, right) if true_is_left else (right, left)
        return simplify(If(cond, then, orelse))


def simplify(node: If) -> tuple[Any, ...]:
    """Drop empty branches, merge category tests that lead to the same code."""
    if not node.then and not node.orelse:
        return ()
    if not node.then:
        return simplify(If(node.cond.negate(), node.orelse, ()))
    if node.then == node.orelse:
        return node.then
    # `if z == a: X else: if z == b: X else: Y`  ->  `if z in (a, b): X else: Y`
    if node.cond.kind == "in" and len(node.orelse) == 1 and isinstance(node.orelse[0], If):
        inner = node.orelse[0]
        if inner.cond.kind == "in" and inner.cond.var == node.cond.var and inner.then == node.then:
            merged = Cond("in", node.cond.var, tuple(node.cond.value) + tuple(inner.cond.value))
            return simplify(If(merged, node.then, inner.orelse))
    return (node,)


def render(statements: Sequence[Any], depth: int) -> list[str]:
    lines: list[str] = []
    pad = INDENT * depth
    for s in statements:
        if isinstance(s, Stmt):
            lines.append(pad + s.text)
            continue
        lines.append(f"{pad}if {s.cond.render()}:")
        lines.extend(render(s.then, depth + 1) or [pad + INDENT + "pass"])
        orelse = s.orelse
        while len(orelse) == 1 and isinstance(orelse[0], If):
            inner = orelse[0]
            lines.append(f"{pad}elif {inner.cond.render()}:")
            lines.extend(render(inner.then, depth + 1) or [pad + INDENT + "pass"])
            orelse = inner.orelse
        if orelse:
            lines.append(f"{pad}else:")
            lines.extend(render(orelse, depth + 1))
    return lines


def _ends_in_return(statements: Sequence[Any]) -> bool:
    if not statements:
        return False
    last = statements[-1]
    if isinstance(last, Stmt):
        return last.text.startswith(("return", "raise"))
    return bool(last.orelse) and _ends_in_return(last.then) and _ends_in_return(last.orelse)


# -- leaves -> statements ------------------------------------------------------------------------

def value_expression(leaf: Leaf, emitter: Emitter, python_type: str) -> str:
    if leaf.kind == "linear":
        # 0.0 + a == a exactly, so a zero intercept is left out without changing any result
        text = "" if float(leaf.value) == 0.0 and leaf.terms else repr(float(leaf.value))
        for j, coef in leaf.terms:
            negative = coef < 0 or (coef == 0 and str(coef).startswith("-"))
            if not text:
                text = f"{'-' if negative else ''}{repr(abs(float(coef)))} * {emitter.term(j)}"
                continue
            text += f" {'-' if negative else '+'} {repr(abs(float(coef)))} * {emitter.term(j)}"
        return f"int(round({text}))" if python_type == "int" else text
    value = leaf.value
    if isinstance(value, tuple):
        items = ", ".join(repr(float(v)) for v in value)
        return f"({items},)" if python_type == "tuple" and len(value) == 1 else (
            f"({items})" if python_type == "tuple" else f"[{items}]")
    if python_type == "int":
        return repr(int(round(float(value))))
    return repr(float(value))


def finish_value(value: Any, python_type: str) -> Any:
    """Apply to an internally predicted value what the emitted `return` applies."""
    if isinstance(value, tuple):
        return value if python_type == "tuple" else list(value)
    if python_type == "int":
        return int(round(float(value)))
    return float(value)


def emit_source(model: Any, features: Features, schema: Schema, *, name: str, docstring: str) -> str:
    """Python source of a function `name(<legacy arguments>)` computing `model`."""
    imports: set[str] = set()
    emitter = Emitter(features, schema, imports)
    python_type = schema.output.python_type
    body: list[Any] = []
    if model.guard is not None:
        guard = model.guard

        def guard_leaf(leaf: Leaf) -> tuple[Any, ...]:
            item = guard.classes[leaf.value]
            return () if item == OK else (Stmt(_raise_text(item, imports)),)

        body.extend(emitter.block(guard, 0, guard_leaf))
    value_tree = model.value
    if value_tree is not None:
        if model.kind in ("label", "none"):
            def label_leaf(leaf: Leaf) -> tuple[Any, ...]:
                item = value_tree.classes[leaf.value]
                if isinstance(item, ErrorInfo):
                    return (Stmt(_raise_text(item, imports)),)
                return (Stmt(f"return {literal(item, imports)}"),)

            body.extend(emitter.block(value_tree, 0, label_leaf))
        else:
            body.extend(emitter.block(value_tree, 0,
                                      lambda leaf: (Stmt(f"return {value_expression(leaf, emitter, python_type)}"),)))
    elif not _ends_in_return(body):
        body.append(Stmt('raise RuntimeError("the teacher raised everywhere it was asked")'))
    args = ", ".join(_annotated(f) for f in schema.fields)
    doc = _docstring(docstring)
    lines = [f"def {_identifier(name)}({args}):", *doc]
    lines.extend(render(body, 1) or [INDENT + "pass"])
    header = ['"""Distilled by neuroswap: plain Python, no dependency."""', ""]
    if imports:
        header.extend(sorted(imports))
        header.append("")
    header.append("")
    return "\n".join(header + lines) + "\n"


def _annotated(field: Any) -> str:
    hint = {"real": "float", "integer": "int", "boolean": "bool"}.get(field.kind)
    if field.kind == "categorical" and all(isinstance(c, str) for c in field.categories):
        hint = "str"
    return f"{field.name}: {hint}" if hint else field.name


def _identifier(name: str) -> str:
    text = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in name) or "rules"
    if text[0].isdigit() or keyword.iskeyword(text):
        text = "_" + text
    return text


def _docstring(text: str) -> list[str]:
    safe = text.replace("\\", "\\\\").replace('"""', "'''")
    lines = safe.strip().splitlines() or [""]
    out = [f'{INDENT}"""{lines[0]}']
    out.extend((INDENT + line) if line else "" for line in lines[1:])
    out.append(f'{INDENT}"""')
    return out


def compile_source(source: str, name: str) -> Any:
    """Exec `source` in a fresh namespace and return the function it defines."""
    namespace: dict[str, Any] = {"__name__": "neuroswap_rules"}
    exec(compile(source, f"<neuroswap rules {name}>", "exec"), namespace)
    return namespace[_identifier(name)]
