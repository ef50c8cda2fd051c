"""Emit a distilled tree as plain, dependency-free Python with the legacy signature.

The source is meant to be read, reviewed and pasted back into the legacy code base: tests read
like the business rules (`zone in ("EU", "NA")`, `weight_kg <= 2.0`), cuts are exact doubles
(`repr` round-trips) compared the way the tree compares them, and raising regions raise the
teacher's exception type with its message.

Every name written is checked to be an identifier (not a keyword, no dunder), every value is
written as a literal that reads back equal, and before the source is compiled it passes
`check_generated_source` (only the node types and calls emitted here), so names and values
taken from data cannot become code.
"""

from __future__ import annotations

import ast
import builtins
import math
import enum
import keyword
import sys
import unicodedata
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from probes import ErrorInfo, Schema

from ._safe_source import SAFE_CALLS, UnsafeSourceError, check_generated_source
from ._tree import OK, Features, Leaf, Tree

INDENT = "    "


#: what distilled rules call: int(round(...)) for integer outputs, float("inf") for infinite cuts
RULE_CALLS = SAFE_CALLS


def _name(text: Any, what: str) -> str:
    """`text` when it can be written as a name in generated code, else UnsafeSourceError."""
    if not isinstance(text, str) or not text.isidentifier() or keyword.iskeyword(text) or text.startswith("__"):
        raise UnsafeSourceError(f"{what}={text!r} : must be a Python identifier that is not a keyword and does "
                                "not start with '__'; distill writes it into the rules' source. Use the legacy "
                                "function's own names")
    return text


def _dotted_name(text: Any, what: str) -> str:
    if not isinstance(text, str) or not text:
        raise UnsafeSourceError(f"{what}={text!r} : must be a dotted Python name")
    for part in text.split("."):
        _name(part, what)
    return text


def number(value: Any) -> str:
    """Source text of a float (finite: its repr, which reads back exactly; else float("...") forms)."""
    value = float(value)
    if value != value:
        return 'float("nan")'
    if value in (float("inf"), float("-inf")):
        return 'float("inf")' if value > 0 else '-float("inf")'
    return repr(value)


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
    """Source text that evaluates to `value` (enum members via an import of their class); a value
    that cannot be written as a literal reading back equal is refused (UnsafeSourceError)."""
    if isinstance(value, enum.Enum):
        cls = type(value)
        module = _dotted_name(cls.__module__, "enum module")
        qualname = _dotted_name(cls.__qualname__, f"enum class of {value!r}")
        member = _name(value.name, f"enum member of {qualname}")
        imports.add(f"from {module} import {qualname.split('.')[0]}")
        return f"{qualname}.{member}"
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return number(value)
    if isinstance(value, (bool, int, str, type(None))):
        return repr(value)
    if isinstance(value, (tuple, list)):
        inner = ", ".join(literal(v, imports) for v in value)
        return f"({inner},)" if isinstance(value, tuple) and len(value) == 1 else (
            f"({inner})" if isinstance(value, tuple) else f"[{inner}]")
    text = repr(value)
    try:
        same = ast.literal_eval(text) == value
    except Exception:
        same = False
    if not same:
        raise UnsafeSourceError(f"value={text[:80]!r} : a {type(value).__name__} cannot be written as a Python "
                                "literal in the rules; use str, int, float, bool, None or an Enum")
    return text


def _loaded_exception(type_name: str) -> type[BaseException] | None:
    """The exception class `pkg.mod.Qual` names, looked up in modules already imported only
    (the rules name a type; writing them must not import a module a data file names)."""
    module_name, _, qualname = type_name.rpartition(".")
    while module_name:
        module = sys.modules.get(module_name)
        if module is not None:
            target: Any = module
            for part in qualname.split("."):
                target = vars(target).get(part) if hasattr(target, "__dict__") else None
                if target is None:
                    break
            if isinstance(target, type) and issubclass(target, BaseException):
                return target
        module_name, _, head = module_name.rpartition(".")
        qualname = f"{head}.{qualname}"
    return None


def _raise_text(error: ErrorInfo, imports: set[str]) -> str:
    name = str(error.type)
    message = str(error.message)
    builtin = vars(builtins).get(name) if "." not in name else None
    if isinstance(builtin, type) and issubclass(builtin, BaseException):
        cls_text = name
    else:
        cls = _loaded_exception(name)
        if cls is None:  # gone, never imported here, or not a name at all: say which type it was
            return f"raise RuntimeError({(name + ': ' + message)!r})"
        module = _dotted_name(cls.__module__, "exception module")
        cls_text = _dotted_name(cls.__qualname__, "exception class")
        imports.add(f"from {module} import {cls_text.split('.')[0]}")
    if name.split(".")[-1] == "KeyError":  # str(KeyError(k)) is repr(k): raise with k itself
        try:
            key = ast.literal_eval(message)
            if repr(key) == message and isinstance(key, (str, int, float, bool, type(None), tuple, bytes)):
                return f"raise {cls_text}({message})"
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            pass
    return f"raise {cls_text}({message!r})" if message else f"raise {cls_text}"


# -- tree -> statements ----------------------------------------------------------------------------

class Emitter:
    def __init__(self, features: Features, schema: Schema, imports: set[str]) -> None:
        self.features, self.schema, self.imports = features, schema, imports

    def var(self, j: int) -> str:
        spec = self.features.specs[j]
        field = _name(spec.field, "feature name")
        return f"{field}[{int(spec.index)}]" if spec.kind == "vec" else field

    def term(self, j: int) -> str:
        """A feature as a number inside a linear leaf (flags as 0/1 via a bool)."""
        spec = self.features.specs[j]
        if spec.kind == "cat":
            return f"({_name(spec.field, 'feature name')} == {literal(spec.category, self.imports)})"
        return self.var(j)

    def condition(self, tree: Tree, i: int) -> tuple[Cond, bool]:
        """The test of node i, and whether its true branch is the tree's left child."""
        j = int(tree.feature[i])
        spec = self.features.specs[j]
        _name(spec.field, "feature name")
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
        return Cond("lt" if tree.strict[i] else "le", self.var(j), number(t)), True

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
        text = "" if float(leaf.value) == 0.0 and leaf.terms else number(leaf.value)
        for j, coef in leaf.terms:
            coef = float(coef)
            negative = coef < 0 or (coef == 0 and math.copysign(1.0, coef) < 0)
            if not text:
                text = f"{'-' if negative else ''}{number(abs(coef))} * {emitter.term(int(j))}"
                continue
            text += f" {'-' if negative else '+'} {number(abs(coef))} * {emitter.term(int(j))}"
        return f"int(round({text}))" if python_type == "int" else text
    value = leaf.value
    if isinstance(value, tuple):
        items = ", ".join(number(v) for v in value)
        return f"({items},)" if python_type == "tuple" and len(value) == 1 else (
            f"({items})" if python_type == "tuple" else f"[{items}]")
    if python_type == "int":
        return repr(int(round(float(value))))
    return number(value)


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
    for item in schema.fields:
        _name(item.name, "schema field name")
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
    """`name` made a plain identifier (other characters become `_`), as Python will store it."""
    text = "".join(ch if ("_" + ch).isidentifier() else "_" for ch in str(name)) or "rules"
    text = unicodedata.normalize("NFKC", text)  # how the parser stores identifiers
    if not text.isidentifier() or keyword.iskeyword(text):
        text = "_" + text
    if not text.isidentifier():
        text = "rules"
    if text.startswith("__"):
        text = "rules" + text
    return text


def _docstring(text: str) -> list[str]:
    safe = text.replace("\\", "\\\\").replace('"""', "'''").replace("\x00", "\\x00")
    lines = safe.strip().splitlines() or [""]
    out = [f'{INDENT}"""{lines[0]}']
    out.extend((INDENT + line) if line else "" for line in lines[1:])
    out.append(f'{INDENT}"""')
    return out


def compile_source(source: str, name: str) -> Any:
    """Check `source` (`check_generated_source`), exec it in a fresh namespace and return the
    function it defines; anything the emitter does not write raises UnsafeSourceError first."""
    filename = f"<neuroswap rules {_identifier(name)}>"
    tree = check_generated_source(source, allowed_calls=RULE_CALLS, filename=filename)
    namespace: dict[str, Any] = {"__name__": "neuroswap_rules"}
    exec(compile(tree, filename, "exec"), namespace)  # noqa: S102 - checked just above
    return namespace[_identifier(name)]


# -- exact rules (traced branch paths) ---------------------------------------------------------------

def _cut_text(value: float, integer: bool, strict: bool) -> tuple[str, str]:
    """(operator kind, literal) of a cut: an integer argument's as an int (`age <= 17`), a real
    argument's by repr like the tree's cuts (`weight_kg <= 30.0`: the float the code compares)."""
    if integer:
        bound = math.ceil(value) - 1 if strict else math.floor(value)
        return "le", str(int(bound))
    return ("lt" if strict else "le"), number(value)


class _Tables:
    """Dict literals of the expressions, hoisted into named module constants (`ZONE_TABLE`)."""

    def __init__(self, reserved: set[str]) -> None:
        self.names: dict[str, str] = {}  # dict literal text -> constant name
        self.reserved = {name.upper() for name in reserved} | {"MATH"}

    def hoist(self, text: str, tables: Sequence[Any]) -> str:
        for table in tables:
            args = [_name(a, "table argument") for a in table.args]
            source = table.source()
            literal_text = source[: source.rindex("}[") + 1]
            if literal_text not in self.names:
                base = "_".join(a.upper() for a in args) + "_TABLE"
                name, k = base, 1
                while name in self.names.values() or name in self.reserved:
                    k += 1
                    name = f"{base}_{k}"
                self.names[literal_text] = name
            text = text.replace(literal_text + "[", self.names[literal_text] + "[")
        return text

    def lines(self) -> list[str]:
        return [f"{name} = {text}" for text, name in self.names.items()]


def _exact_leaf(fit: Any, leaf: Any, tables: _Tables, imports: set[str], python_type: str) -> tuple[Stmt, ...]:
    from probes._exact_rules import table_nodes

    if leaf.piece < 0:  # a region no sampled call reached
        return (Stmt('raise RuntimeError("no sampled call of the legacy function reached this region")'),)
    piece = fit.pieces[leaf.piece]
    if piece.kind == "raise":
        return (Stmt(_raise_text(piece.error, imports)),)
    if piece.kind == "constant":
        return (Stmt(f"return {literal(piece.value, imports)}"),)
    comment: tuple[Stmt, ...] = ()
    expression = piece.expression
    if piece.kind == "approximate":
        found = fit.stand_ins.get(id(leaf))
        if found is None:
            return (Stmt("# approximate: no exact expression for this path, and no numeric rows to fit"),
                    Stmt('raise RuntimeError("no rule learned for this path")'))
        expression = found.expression
        comment = (Stmt("# exact on this leaf's sampled calls (no one expression holds on the whole path)"),
                   ) if found.exact else (
            Stmt(f"# approximate: no exact expression reproduces this path; this stand-in agrees on {found.agree} "
                 f"of {found.rows} sampled calls"),)
    text = tables.hoist(expression.to_python(), table_nodes(expression))
    if "math." in text:
        imports.add("import math")
    if python_type == "int":
        text = f"int(round({text}))"
    return comment + (Stmt(f"return {text}"),)


def _exact_block(fit: Any, node: Any, leaf_code: Any, sides_text: Any = None) -> tuple[Any, ...]:
    if node.is_leaf:
        return leaf_code(node)
    sides_text = sides_text or (lambda expression: expression.to_python())
    col = fit.encoding.columns[node.column]
    field = _name(col.field, "schema field name") if col.kind != "derived" else ""
    left, right = (_exact_block(fit, child, leaf_code, sides_text) for child in (node.left, node.right))
    if col.kind == "boolean":  # left: False (x <= 0.5)
        return simplify(If(Cond("true", field), right, left))
    if col.kind == "category":  # left: not this category
        return simplify(If(Cond("in", field, (literal(col.category, set()),)), right, left))
    if col.kind == "derived":
        derived = col.category
        kind = "lt" if node.strict else "le"
        if derived.pair is not None and float(node.threshold) == 0.0:  # `a - b <= 0` reads `a <= b`
            a, b = (_name(n, "argument name") for n in derived.pair)
            return simplify(If(Cond(kind, a, b), left, right))
        if getattr(derived, "sides", None) is not None and float(node.threshold) == 0.0:  # two pieces: `A <= B`
            a, b = (sides_text(side) for side in derived.sides)
            return simplify(If(Cond(kind, a, b), left, right))
        var = _name(derived.name, "derived value name") if derived.name else derived.expression.to_python()
        return simplify(If(Cond(kind, var, number(float(node.threshold))), left, right))
    kind, text = _cut_text(float(node.threshold), col.kind == "integer", bool(node.strict))
    return simplify(If(Cond(kind, field, text), left, right))


def emit_exact_source(fit: Any, schema: Schema, *, name: str, docstring: str) -> str:
    """Python source of exact rules (`probes._exact_rules.ExactFit`): the partition as if/elif
    tests with the bisected cuts, each leaf returning its piece's expression (tables as named
    dict constants), label or raise; approximate leaves say so in a comment."""
    imports: set[str] = set()
    for item in schema.fields:
        _name(item.name, "schema field name")
    tables = _Tables({f.name for f in schema.fields} | {name})
    python_type = schema.output.python_type
    def sides_text(expression: Any) -> str:  # one side of a comparison of two pieces (`_derived.piece_comparisons`)
        from probes._exact_rules import table_nodes

        text = tables.hoist(expression.to_python(), table_nodes(expression))
        imports.update(["import math"] if "math." in text else [])
        return text

    body = _exact_block(fit, fit.tree, lambda leaf: _exact_leaf(fit, leaf, tables, imports, python_type), sides_text)
    assigned: list[Stmt] = []  # the values the code compares, under its own names, computed first
    for derived in dict.fromkeys(fit.encoding.columns[n.column].category for n in fit.tree.internal()
                                 if fit.encoding.columns[n.column].kind == "derived"):
        if derived.name:
            from probes._exact_rules import table_nodes

            local = _name(derived.name, "derived value name")
            if hasattr(derived.expression, "terms"):  # a scorecard: points added up one line per argument
                first, *rest = derived.expression.terms()
                assigned += [Stmt(f"{local} = {first}"), *(Stmt(f"{local} += {term}") for term in rest)]
                continue
            text = tables.hoist(derived.expression.to_python(), table_nodes(derived.expression))
            imports.update(["import math"] if "math." in text else [])
            assigned.append(Stmt(f"{local} = {text}"))
    body = (*assigned, *body)
    args = ", ".join(_annotated(f) for f in schema.fields)
    lines = [f"def {_identifier(name)}({args}):", *_docstring(docstring)]
    lines.extend(render(body, 1) or [INDENT + "pass"])
    header = ['"""Distilled by neuroswap from the legacy code\'s traced branch paths: plain Python."""', ""]
    if imports:
        header.extend(sorted(imports, key=lambda line: (not line.startswith("import "), line)))
        header.append("")
    constants = tables.lines()
    if constants:
        header.extend(["", *constants])
    header.append("")
    return "\n".join(header + ["", *lines]) + "\n"
