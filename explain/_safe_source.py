"""Check generated Python before it is compiled: only what the rule emitters write may pass.

Distilled rules are compiled in this process, and the names, categories and messages in them
come from data (a schema, a saved surrogate, recorded exceptions). Parsing the source and
accepting only the node types and calls an emitter legitimately writes means that no crafted
name, threshold or category can smuggle other code into `exec`, whatever the emitter's bugs.
"""

from __future__ import annotations

import ast
import builtins
import sys
from typing import Any, Iterable

from probes._errors import InvalidArgument


class UnsafeSourceError(InvalidArgument):
    """Generated source holds something the emitters never write (a foreign call, a dunder, a
    lambda...); it is refused before it is compiled."""


#: calls rules may make (besides raising exception classes): rounding, bounds, conversions
SAFE_CALLS = frozenset({"round", "min", "max", "abs", "float", "int", "math.floor", "math.ceil"})
#: modules rules may `import` (a plain `import math`)
SAFE_MODULES = frozenset({"math"})
#: builtin names rules may read without calling (annotations, conversions)
SAFE_NAMES = frozenset({"float", "int", "bool", "str", "list", "tuple", "dict"})

_STATEMENTS = (ast.Expr, ast.Import, ast.ImportFrom, ast.FunctionDef, ast.Assign, ast.AugAssign, ast.If,
               ast.Return, ast.Raise, ast.Pass)
_EXPRESSIONS = (ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.IfExp, ast.Call, ast.Constant, ast.Name,
                ast.Attribute, ast.Subscript, ast.Slice, ast.Tuple, ast.List, ast.Dict, ast.Set)
_OPERATORS = (ast.And, ast.Or, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.Not,
              ast.USub, ast.UAdd, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
              ast.Is, ast.IsNot)
_HELPERS = (ast.Module, ast.arguments, ast.arg, ast.keyword, ast.alias, ast.Load, ast.Store)
#: every node type generated rules may contain
ALLOWED_NODES = frozenset(_STATEMENTS + _EXPRESSIONS + _OPERATORS + _HELPERS)


def _dotted(node: ast.AST) -> str | None:
    """`a.b.c` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


def _shown(node: ast.AST) -> str:
    try:
        text = ast.unparse(node)
    except Exception:  # pragma: no cover - unparse handles every node type ast.parse makes
        text = type(node).__name__
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:77] + "..."


def _is_exception_class(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseException)


def _is_importable_class(value: Any) -> bool:
    """A class (exception, enum, or a class holding one as `Outer.Error`); never a function or
    module, so an import binds nothing that could be called outside a checked raise."""
    return isinstance(value, type)


def _static_attr(target: Any, name: str) -> Any:
    """`target.name` without running any `__getattr__` or descriptor (None when absent)."""
    for klass in (target, *getattr(target, "__mro__", ())) if isinstance(target, type) else (target,):
        found = vars(klass).get(name) if hasattr(klass, "__dict__") else None
        if found is not None:
            return found
    return None


class _Checker:
    def __init__(self, source: str, filename: str, allowed_calls: frozenset[str],
                 allowed_modules: frozenset[str]) -> None:
        self.source = source
        self.filename = filename
        self.allowed_calls = allowed_calls
        self.allowed_modules = allowed_modules
        self.imported: dict[str, Any] = {}  # name bound by an import -> the object it names
        self.functions: set[str] = set()
        self.assigned: set[str] = set()

    def fail(self, node: ast.AST, rule: str) -> UnsafeSourceError:
        line = getattr(node, "lineno", "?")
        return UnsafeSourceError(
            f"generated source {self.filename} line {line}: {_shown(node)!r} : {rule}. Generated rules may only "
            "hold the functions, tests, arithmetic, constants and raises the emitter writes; the names or values "
            "it was given (schema field names, categories, exception types) must be plain data")

    def name_ok(self, node: ast.AST, name: str, what: str) -> None:
        if not name.isidentifier() or name.startswith("__"):
            raise self.fail(node, f"{what} {name!r} is not allowed (no dunder or private double-underscore names)")

    # -- the whole module ------------------------------------------------------------------
    def check(self, tree: ast.Module) -> None:
        for node in ast.walk(tree):
            if type(node) not in ALLOWED_NODES:
                raise self.fail(node, f"{type(node).__name__} is not a node type generated rules contain")
        for stmt in tree.body:  # bindings first: imports, functions, module constants
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                self.bind_import(stmt)
            elif isinstance(stmt, ast.FunctionDef):
                self.name_ok(stmt, stmt.name, "function name")
                self.functions.add(stmt.name)
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                self.name_ok(node, node.id, "variable")
                self.assigned.add(node.id)
        for stmt in tree.body:
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                continue
            if isinstance(stmt, ast.FunctionDef):
                self.function(stmt)
            elif isinstance(stmt, ast.Expr):
                self.docstring(stmt)
            elif isinstance(stmt, ast.Assign):
                self.statement(stmt, set())
            else:
                raise self.fail(stmt, f"{type(stmt).__name__} is not allowed at module level")

    def bind_import(self, stmt: ast.Import | ast.ImportFrom) -> None:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if alias.name not in self.allowed_modules:
                    raise self.fail(stmt, f"import of {alias.name!r} is not allowed (allowed: "
                                          f"{', '.join(sorted(self.allowed_modules)) or 'none'})")
                bound = alias.asname or alias.name
                if "." in bound:
                    raise self.fail(stmt, "import of a submodule without a name is not allowed")
                self.name_ok(stmt, bound, "import name")
                self.imported[bound] = sys.modules.get(alias.name)
            return
        module_name = stmt.module or ""
        if stmt.level != 0 or not module_name:
            raise self.fail(stmt, "relative imports are not allowed")
        if not all(part.isidentifier() for part in module_name.split(".")):
            raise self.fail(stmt, f"module {module_name!r} is not a dotted name")
        module = sys.modules.get(module_name)
        if module is None:
            raise self.fail(stmt, f"module {module_name!r} is not imported; rules import only classes of "
                                  "modules already loaded, so compiling them runs no module code")
        for alias in stmt.names:
            if alias.name == "*":
                raise self.fail(stmt, "import * is not allowed")
            self.name_ok(stmt, alias.name, "imported name")
            target = vars(module).get(alias.name)
            if not _is_importable_class(target):
                raise self.fail(stmt, f"{module_name}.{alias.name} is not a class; rules import only the "
                                      "legacy function's exception types and enums (or the classes holding them)")
            bound = alias.asname or alias.name
            self.name_ok(stmt, bound, "import name")
            self.imported[bound] = target

    def docstring(self, stmt: ast.Expr) -> None:
        if not (isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)):
            raise self.fail(stmt, "a bare expression is not allowed (only a docstring)")

    def function(self, fn: ast.FunctionDef) -> None:
        if fn.decorator_list:
            raise self.fail(fn, "decorators are not allowed")
        args = fn.args
        if args.vararg or args.kwarg:
            raise self.fail(fn, "*args and **kwargs are not allowed")
        params: set[str] = set()
        for arg in args.posonlyargs + args.args + args.kwonlyargs:
            self.name_ok(arg, arg.arg, "parameter")
            params.add(arg.arg)
            if arg.annotation is not None:
                self.expression(arg.annotation, set())
        if fn.returns is not None:
            self.expression(fn.returns, set())
        for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
            self.expression(default, set())
        for index, stmt in enumerate(fn.body):
            if index == 0 and isinstance(stmt, ast.Expr):
                self.docstring(stmt)
                continue
            self.statement(stmt, params)

    # -- statements and expressions --------------------------------------------------------
    def statement(self, stmt: ast.stmt, params: set[str]) -> None:
        if isinstance(stmt, ast.If):
            self.expression(stmt.test, params)
            for inner in stmt.body + stmt.orelse:
                self.statement(inner, params)
        elif isinstance(stmt, ast.Return):
            if stmt.value is not None:
                self.expression(stmt.value, params)
        elif isinstance(stmt, ast.Raise):
            self.raise_(stmt, params)
        elif isinstance(stmt, ast.Assign):
            for target in stmt.targets:
                if not isinstance(target, ast.Name):
                    raise self.fail(stmt, "only plain names may be assigned")
            self.expression(stmt.value, params)
        elif isinstance(stmt, ast.AugAssign):
            if not isinstance(stmt.target, ast.Name):
                raise self.fail(stmt, "only plain names may be assigned")
            self.expression(stmt.value, params)
        elif isinstance(stmt, ast.Pass):
            pass
        else:
            raise self.fail(stmt, f"{type(stmt).__name__} is not allowed inside a function")

    def raise_(self, stmt: ast.Raise, params: set[str]) -> None:
        if stmt.cause is not None and not (isinstance(stmt.cause, ast.Constant) and stmt.cause.value is None):
            raise self.fail(stmt, "only 'raise ... from None' may name a cause")
        exc = stmt.exc
        if exc is None:
            raise self.fail(stmt, "a bare raise is not allowed")
        target = exc.func if isinstance(exc, ast.Call) else exc
        head = (_dotted(target) or "").split(".")[0]
        if head in params or not _is_exception_class(self.resolve(target)):
            raise self.fail(stmt, "only exception classes (builtin, or imported from the legacy function's "
                                  "module) may be raised")
        if isinstance(exc, ast.Call):
            self.arguments(exc, params)

    def resolve(self, node: ast.AST) -> Any:
        """The class a Name/Attribute chain names, from builtins or this source's imports (no code runs)."""
        text = _dotted(node)
        if text is None:
            return None
        head, *rest = text.split(".")
        if head in self.imported:
            target = self.imported[head]
        elif head in self.functions or head in self.assigned:
            return None
        else:
            target = vars(builtins).get(head)
        for part in rest:
            if part.startswith("__") or target is None:
                return None
            target = _static_attr(target, part)
        return target

    def arguments(self, call: ast.Call, params: set[str]) -> None:
        for arg in call.args:
            self.expression(arg, params)
        for kw in call.keywords:
            if kw.arg is None:
                raise self.fail(call, "**kwargs in a call is not allowed")
            self.name_ok(call, kw.arg, "keyword argument")
            self.expression(kw.value, params)

    def expression(self, node: ast.AST, params: set[str]) -> None:
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name is None or (name not in self.allowed_calls and name not in self.functions):
                raise self.fail(node, f"call of {_shown(node.func)!r} is not allowed (allowed: "
                                      f"{', '.join(sorted(self.allowed_calls))}, and the source's own functions)")
            head = name.split(".")[0]
            if head in params or (head in self.assigned and head not in self.functions):
                raise self.fail(node, f"{head!r} is an argument or variable here, so the call would not be the "
                                      "allowed function; rename the argument")
            self.expression(node.func, params)
            self.arguments(node, params)
            return
        if isinstance(node, ast.Name):
            self.name_ok(node, node.id, "name")
            if isinstance(node.ctx, ast.Load) and not self.known(node.id, params):
                raise self.fail(node, f"name {node.id!r} is neither an argument, a variable, an import nor an "
                                      "allowed builtin")
            return
        if isinstance(node, ast.Attribute):
            if node.attr.startswith("__"):
                raise self.fail(node, f"attribute {node.attr!r} is not allowed (no dunder attributes)")
            root = _dotted(node)
            head = root.split(".")[0] if root else None
            if head is None or head in params or head in self.assigned or (
                    head not in self.imported and head not in self.allowed_call_roots()):
                raise self.fail(node, "attributes may only be read from imported modules and classes "
                                      "(enum members, math constants)")
            self.expression(node.value, params)
            return
        if isinstance(node, (ast.Constant, ast.Load, ast.Store)):
            return
        if isinstance(node, ast.Dict) and any(key is None for key in node.keys):
            raise self.fail(node, "** unpacking in a dict is not allowed")
        if type(node) not in ALLOWED_NODES or isinstance(node, ast.stmt):
            raise self.fail(node, f"{type(node).__name__} is not allowed in an expression")
        for child in ast.iter_child_nodes(node):
            self.expression(child, params)

    def allowed_call_roots(self) -> set[str]:
        return {name.split(".")[0] for name in self.allowed_calls if "." in name}

    def known(self, name: str, params: set[str]) -> bool:
        if name in params or name in self.assigned or name in self.imported or name in self.functions:
            return True
        if name in SAFE_NAMES or name in self.allowed_calls or name in self.allowed_call_roots():
            return True
        return _is_exception_class(vars(builtins).get(name))


def check_generated_source(source: str, *, allowed_calls: Iterable[str] = SAFE_CALLS,
                           allowed_modules: Iterable[str] = SAFE_MODULES,
                           filename: str = "<neuroswap rules>") -> ast.Module:
    """Parse `source` and refuse (UnsafeSourceError) anything generated rules never contain.

    Accepted: a module of a docstring, imports (`import` of `allowed_modules`; `from m import C`
    only where `m` is already imported and `C` is a class: an exception, an enum), module constants
    and functions (no decorators, no *args) whose bodies hold if/elif/else, assignments, return
    and raise of exception classes; expressions of constants, arguments, tuples/lists/dicts/sets,
    subscripts, arithmetic, comparisons, and/or/not, conditional expressions, enum members, and
    calls of `allowed_calls` (dotted, e.g. "math.floor") or of the source's own functions. No
    name or attribute may start with a double underscore. Returns the checked tree, to be
    compiled as is.
    """
    try:
        tree = ast.parse(source, filename=filename, mode="exec")
    except (SyntaxError, ValueError) as exc:
        raise UnsafeSourceError(f"generated source {filename} does not parse ({type(exc).__name__}: {exc}); "
                                "the names or values given to the emitter are not plain data") from None
    checker = _Checker(source, filename, frozenset(allowed_calls), frozenset(allowed_modules))
    checker.check(tree)
    return tree
