"""One traversal per file of CPython's syntax tree: source text -> ModuleIR.

This module owns everything syntactic: import resolution to absolute names (including
relative imports), scopes (module, class, function, lambda), turning expressions into the
small symbolic trees of `loopsafe.ir`, and the position of every site.

It reads the stdlib `ast`, not LibCST. Measured on frigate (380 files, 102k lines, one
process): `ast.parse` 0.8 s, `libcst.parse_module` 5.1 s, and the field walk over the CST
3.6 s more; the analysis needs no formatting detail, and `ast` nodes carry their positions
for free. LibCST is the tool for rewriting, and `loopsafe.fixes` uses it for that, on the
files being fixed only. A file this Python cannot parse is reported, never guessed at.
"""
from __future__ import annotations

import ast
import re
import sys
from typing import TYPE_CHECKING, Iterator

from loopsafe import ir

if TYPE_CHECKING:  # pragma: no cover
    from loopsafe.model import ParseError

#: deeper trees are reported as "too deeply nested" rather than risking the stack
MAX_DEPTH = 1000


class TooDeep(Exception):
    """The tree nests deeper than MAX_DEPTH."""


#: the stack a summary may use, counted from where it starts: how deep a file may nest must
#: not depend on how deep its caller is (the command line, a pool worker, the start-up
#: helper of `loopsafe.ahead`), or the same text would summarise in one and not the other
_STACK_BUDGET = 1000


def summarise(source: str, path: str, name: str, is_package: bool) -> ir.ModuleIR | ParseError:
    """Parse a file's text and summarise it (`path` as shown, `name` its dotted module name);
    a `ParseError` when it cannot be. Never raises for any input."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(_stack_depth() + _STACK_BUDGET)
    try:
        return _summarise(source, path, name, is_package)
    finally:
        sys.setrecursionlimit(limit)


def _stack_depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


def _summarise(source: str, path: str, name: str, is_package: bool) -> ir.ModuleIR | ParseError:
    from loopsafe.model import ParseError  # only for failures: a helper summarising ahead does without

    text = source[1:] if source.startswith("\ufeff") else source
    rewritten = False
    try:
        tree = ast.parse(text)
    except SyntaxError as err:
        if "nested" in (err.msg or "") or "recursion" in (err.msg or ""):
            return ParseError(path, 1, 1, "too deeply nested to analyse")
        older = _older_syntax(text)
        if older is None:
            return _syntax_error(source, path, err)
        tree, text = older
        rewritten = True
    except RecursionError:
        return ParseError(path, 1, 1, "too deeply nested to analyse")
    except (ValueError, MemoryError) as err:  # null bytes; a file too big for memory
        return ParseError(path, 1, 1, f"could not parse: {err}")
    try:
        summary = extract(tree, text, path, name, is_package)
        return summary._replace(newer_syntax=True) if rewritten else summary
    except (TooDeep, RecursionError):
        return ParseError(path, 1, 1, "too deeply nested to analyse")


def _older_syntax(text: str) -> tuple[object, str] | None:
    """A file in a newer Python's syntax, rewritten line for line into this one's (see
    `loopsafe.newer_syntax`), and its tree; None when that does not make it parse."""
    if not _libcst_can_read(text):
        return None
    from loopsafe import newer_syntax

    try:
        older = newer_syntax.rewrite(text)
        return (ast.parse(older), older) if older is not None else None
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _syntax_error(text: str, path: str, err: SyntaxError) -> ParseError:
    from loopsafe.model import ParseError

    message = f"SyntaxError: {err.msg}"
    if _newer_syntax(text):
        # LibCST reads the grammar of newer Pythons: say what would help, not just "invalid syntax"
        message += (" (valid in a newer Python: run loopsafe with the Python the project targets;"
                    f" this is {sys.version_info[0]}.{sys.version_info[1]})")
    return ParseError(path, err.lineno or 1, err.offset or 1, message)


def _libcst_can_read(text: str) -> bool:
    # LibCST's native parser has run for minutes on pathological lines; a 310 KB module of
    # ordinary code takes it 1.8 s
    return len(text) <= 1_000_000 and not any(len(line) > 5_000 for line in text.splitlines())


def _newer_syntax(text: str) -> bool:
    """Whether LibCST's parser accepts what this Python refuses (its grammar may be newer)."""
    if not _libcst_can_read(text):
        return False
    try:
        import libcst as cst

        cst.parse_module(text)
    except Exception:  # noqa: BLE001 - any failure means it is not valid newer syntax
        return False
    return True


class _Func:
    """A function being summarised (made into an `ir.FuncIR` at its end). Plain classes, not
    dataclasses: a helper summarising at start-up (`loopsafe.ahead`) imports this module
    without paying for `dataclasses`."""

    __slots__ = ("qualname", "name", "is_async", "is_lambda", "decorators", "params", "class_name", "method_type",
                 "parent", "def_site", "assigns", "sites", "returns", "yields", "has_await", "is_generator",
                 "globals_", "counter", "opaque", "async_with", "cleanup", "attr_reads", "bind_conds")

    def __init__(self, qualname: str, name: str, is_async: bool, is_lambda: bool, decorators: tuple, params: tuple,
                 class_name: str, method_type: str, parent: str, def_site: int) -> None:
        self.qualname = qualname
        self.name = name
        self.is_async = is_async
        self.is_lambda = is_lambda
        self.decorators = decorators
        self.params = params
        self.class_name = class_name
        self.method_type = method_type
        self.parent = parent
        self.def_site = def_site
        self.assigns: list = []
        self.sites: list = []
        self.returns: list = []
        self.yields: list = []
        self.has_await = False
        self.is_generator = False
        self.globals_: list = []
        self.counter = 0
        self.opaque: list = []
        self.async_with: list = []
        self.cleanup: list = []
        self.attr_reads: list = []
        self.bind_conds: list = []


class _Class:
    """A class being summarised (see `_Func`)."""

    __slots__ = ("qualname", "name", "bases", "decorators", "parent", "methods", "attrs")

    def __init__(self, qualname: str, name: str, bases: tuple, decorators: tuple, parent: str) -> None:
        self.qualname = qualname
        self.name = name
        self.bases = bases
        self.decorators = decorators
        self.parent = parent
        self.methods: list = []
        self.attrs: list = []


def resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    if level == 0:
        return name or ""
    parts = module.split(".") if module else []
    if not is_package:
        parts = parts[:-1]
    if level > 1:
        parts = parts[: len(parts) - (level - 1)] if level - 1 <= len(parts) else []
    if name:
        parts.append(name)
    return ".".join(parts)


# Fields that never hold code: operator and context singletons, comments, names as strings.
_SKIP_FIELDS = frozenset({"ctx", "op", "ops", "type_comment", "kind", "is_async", "level", "name", "names",
                          "id", "attr", "arg", "asname", "module", "conversion", "simple", "tag"})
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def _child_fields(kind: type) -> tuple[str, ...]:
    fields = _CHILD_FIELDS.get(kind)
    if fields is None:
        fields = _CHILD_FIELDS[kind] = tuple(f for f in kind._fields if f not in _SKIP_FIELDS)
    return fields


def _unstar(node: ast.expr) -> ast.expr:
    return node.value if type(node) is ast.Starred else node


class Extractor:
    """Walks the tree itself (reading fields directly is cheaper than `ast.NodeVisitor`)."""

    def walk(self, node: ast.AST) -> None:
        handler = _HANDLERS.get(type(node))
        if handler is not None and not handler(self, node):
            return
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise TooDeep
        for name in _child_fields(type(node)):
            value = getattr(node, name, None)
            if isinstance(value, ast.AST):
                self.walk(value)
            elif type(value) is list:
                for item in value:
                    if isinstance(item, ast.AST):
                        self.walk(item)
        self._depth -= 1

    def walk_all(self, nodes: list) -> None:
        for node in nodes:
            self.walk(node)

    def __init__(self, path: str, module: str, is_package: bool) -> None:
        self.path = path
        self.module = module
        self.is_package = is_package
        self.imports: dict[str, str] = {}
        self.star_imports: list[str] = []
        self.assigns: list[tuple[str, ir.Expr]] = []
        self.functions: list[ir.FuncIR] = []
        self.classes: list[ir.ClassIR] = []
        self.sites: list[ir.Site] = []
        self.nodes: list[ast.AST] = []
        self.dunder_all: tuple[str, ...] | None = None
        # scope stack: _Func or _Class entries; module level is the empty stack
        self.stack: list[_Func | _Class] = []
        self._site_of: dict[int, int] = {}
        self._conv: dict[int, ir.Expr] = {}
        self._awaited: set[int] = set()
        self._lambda_names: dict[int, str] = {}
        self._func_quals: set[str] = set()
        self._depth = 0
        # control context of the code being walked, reset at each function boundary
        self._loop = 0
        self._role = ""
        # the innermost loop (index into self.loops) and whether an if/try inside it encloses us
        self.loops: list[ir.Loop] = []
        self._continues: dict[int, list[int]] = {}  # loop id -> site counts at its `continue`s
        self._exit_branches: dict[int, list[tuple[int, int]]] = {}  # loop id -> Loop.exit_branches
        # the innermost loop at each enclosing `try` body that has handlers: a `raise` there
        # may be caught inside that loop, which then goes on
        self._catching: list[int] = []
        self._loop_id = -1
        self._guarded = False
        # what the enclosing `if` tests, `and`/`or` operands and early exits say of plain
        # names where we are (Site.conds)
        self._conds: tuple = ()
        self._comp_loops: dict[int, int] = {}
        self._store_targets: set[int] = set()
        # source-order clock shared by name uses and bindings (ir.Name.pos, assign order)
        self._tick = 0

    def _next(self) -> int:
        self._tick += 1
        return self._tick

    # --- scopes -----------------------------------------------------------------------
    def _func(self) -> _Func | None:
        for entry in reversed(self.stack):
            if isinstance(entry, _Func):
                return entry
            return None  # a class body resets: code there is not inside the function
        return None

    def _innermost_func(self) -> _Func | None:
        return self.stack[-1] if self.stack and isinstance(self.stack[-1], _Func) else None

    def _prefix(self) -> str:
        if not self.stack:
            return ""
        top = self.stack[-1]
        if isinstance(top, _Class):
            return top.qualname + "."
        return top.qualname + ".<locals>."

    def _enclosing_func_name(self) -> str:
        for entry in reversed(self.stack):
            if isinstance(entry, _Func):
                return entry.qualname
        return ""

    # --- control context --------------------------------------------------------------
    def _reset_context(self) -> tuple:
        """A new function or class body: no enclosing loop, try or condition."""
        saved = (self._loop, self._role, self._loop_id, self._guarded, self._conds)
        self._loop, self._role, self._loop_id, self._guarded, self._conds = 0, "", -1, False, ()
        return saved

    def _restore_context(self, saved: tuple) -> None:
        self._loop, self._role, self._loop_id, self._guarded, self._conds = saved

    def _new_loop(self, kind: str, is_async: bool, iter_: ir.Expr | None, target: ast.AST | None) -> int:
        fn = self._innermost_func()
        names = tuple(_target_names(target)) if target is not None else ()
        self.loops.append(ir.Loop(kind, is_async, iter_, names, self._loop_id, fn.qualname if fn else ""))
        return len(self.loops) - 1

    def _enter_loop(self, loop_id: int) -> tuple:
        # an early exit in the body holds for the rest of the body only
        saved = (self._loop_id, self._guarded, self._conds)
        self._loop += 1
        self._loop_id, self._guarded = loop_id, False
        return saved

    def _leave_loop(self, saved: tuple) -> None:
        self._loop -= 1
        self._loop_id, self._guarded, self._conds = saved

    def _walk_guarded(self, nodes: list | ast.AST, conds: tuple = ()) -> None:
        """Walk code that runs only sometimes (an `if` branch, a `try` clause, a `case`),
        when `conds` hold."""
        saved = (self._guarded, self._conds)
        self._guarded = self._loop_id >= 0 or self._guarded
        self._conds = self._conds + conds
        if isinstance(nodes, list):
            self.walk_all(nodes)
        else:
            self.walk(nodes)
        self._guarded, self._conds = saved

    # --- sites ------------------------------------------------------------------------
    def _new_site(self, kind: str, node: ast.AST, expr: ir.Expr | None, function: str | None = None,
                  awaited: bool = False) -> int:
        sid = len(self.sites)
        fn = self._innermost_func()
        owner = function if function is not None else (fn.qualname if fn else "")
        ctx = (self._loop, self._role, self._loop_id, self._guarded) if kind != ir.DEF else (0, "", -1, False)
        self.sites.append(ir.Site(sid, kind, owner, expr, awaited, *ctx,
                                  conds=self._conds if kind != ir.DEF else ()))
        self.nodes.append(node)
        if fn is not None and function is None:
            fn.sites.append(sid)
        return sid

    def _call_site(self, node: ast.Call) -> int:
        sid = self._site_of.get(id(node))
        if sid is None:
            sid = len(self.sites)
            self._site_of[id(node)] = sid
            fn = self._innermost_func()
            # placeholder, replaced once the call is converted
            self.sites.append(ir.Site(sid, ir.CALL, fn.qualname if fn else "", None, id(node) in self._awaited,
                                      self._loop, self._role, self._loop_id, self._guarded, conds=self._conds))
            self.nodes.append(node)
            if fn is not None:
                fn.sites.append(sid)
        return sid

    # --- expressions ------------------------------------------------------------------
    def conv(self, node: ast.AST | None) -> ir.Expr:
        if node is None:
            return ir.OTHER
        key = id(node)
        cached = self._conv.get(key)
        if cached is not None:
            return cached
        out = self._conv_uncached(node)
        self._conv[key] = out
        return out

    def _conv_uncached(self, node: ast.AST) -> ir.Expr:
        t = type(node)
        if t is ast.Name:
            self._tick += 1
            return ir.Name(node.id, self._tick)
        if t is ast.Attribute:
            return ir.Attr(self.conv(node.value), node.attr)
        if t is ast.Call:
            return self._conv_call(node)
        if t is ast.Await:
            self._awaited.add(id(node.value))
            if type(node.value) is ast.Call and id(node.value) in self._site_of:
                sid = self._site_of[id(node.value)]
                self.sites[sid] = self.sites[sid]._replace(awaited=True)
            return ir.Await(self.conv(node.value))
        if t is ast.Subscript:
            elements = node.slice.elts if type(node.slice) is ast.Tuple else [node.slice]
            return ir.Sub(self.conv(node.value),
                          tuple(ir.Slice() if type(e) is ast.Slice else self.conv(e) for e in elements))
        if t is ast.Constant:
            value = node.value
            if value is None or value is True or value is False:
                # spelled as names, as the singletons are resolved like any other builtin name
                self._tick += 1
                return ir.Name(repr(value), self._tick)
            if type(value) in (str, bytes, int):
                return ir.Const(value)
            return ir.OTHER  # floats, complex numbers, `...`: no rule reads them
        if t is ast.JoinedStr:
            return ir.FStr(_fstring_prefix(node), _first_field_names(node))
        if t in (ast.Dict, ast.DictComp, ast.ListComp, ast.SetComp, ast.GeneratorExp):
            self._opaque(node)
            return ir.OTHER
        if t in (ast.List, ast.Tuple, ast.Set):
            return ir.Seq(tuple(self.conv(_unstar(e)) for e in node.elts))
        if t is ast.BinOp and type(node.op) is ast.BitOr:
            return ir.Union_((self.conv(node.left), self.conv(node.right)))
        if t is ast.Lambda:
            # named now so a binding can refer to it (`f = lambda: ...`); summarised by the walk
            return ir.FuncRef(self._lambda_name(node))
        if t is ast.NamedExpr:
            # `(db := SessionLocal())` binds db as `db = SessionLocal()` would, here where the
            # value is made (conv runs once per node, so the binding is recorded once); inside
            # a comprehension it binds in the enclosing function (PEP 572), as _bind does
            value = self.conv(node.value)
            self._bind(node.target, value)
            if type(node.target) is ast.Name and (self._func() is not None or not self.stack):
                # what encloses the walrus gets the bound object, so it reads as a use of the
                # name: `with (db := SessionLocal()):` manages db, the call is made only once
                self._tick += 1
                return ir.Name(node.target.id, self._tick)
            return value
        if t is ast.IfExp:
            saved = self._conds
            self._conds = saved + _test_conds(node.test, True)
            body = self.conv(node.body)
            self._conds = saved
            self.conv(node.test)  # source order: body, test, orelse
            self._conds = saved + _test_conds(node.test, False)
            orelse = self.conv(node.orelse)
            self._conds = saved
            return ir.Union_((body, orelse))
        if t is ast.BoolOp:
            # `a or b or c` as ((a, b), c), one pair per operator; an operand runs only when
            # the ones before it did not decide (`x and f()`: f runs when x is truthy)
            out = self.conv(node.values[0])
            saved = self._conds
            positive = type(node.op) is ast.And
            for before, value in zip(node.values, node.values[1:]):
                self._conds = self._conds + _test_conds(before, positive)
                out = ir.Union_((out, self.conv(value)))
            self._conds = saved
            return out
        return ir.OTHER

    def _conv_call(self, node: ast.Call) -> ir.Call:
        sid = self._call_site(node)
        args: list[ir.Expr] = []
        kwargs: list[tuple[str, ir.Expr]] = []
        items: list = [*node.args, *node.keywords]
        if node.keywords and (any(type(a) is ast.Starred for a in node.args)
                              or any(k.arg is None for k in node.keywords)):
            # `f(a=1, *rest)` is legal: keep source order among keywords and unpackings
            items.sort(key=lambda a: (a.lineno, a.col_offset))
        for arg in items:
            if type(arg) is ast.keyword:
                kwargs.append((arg.arg if arg.arg is not None else "**", self.conv(arg.value)))
            elif type(arg) is ast.Starred:
                kwargs.append(("*", self.conv(arg.value)))
            else:
                args.append(self.conv(arg))
        expr = ir.Call(self.conv(node.func), tuple(args), tuple(kwargs), sid)
        self.sites[sid] = self.sites[sid]._replace(expr=expr)
        return expr

    # --- binding helpers --------------------------------------------------------------
    def _bind(self, target: ast.AST, value: ir.Expr) -> None:
        fn = self._func()
        top = self.stack[-1] if self.stack else None
        self._tick += 1
        order = self._tick
        t = type(target)
        if t is ast.Name:
            name = target.id
            if fn is not None and name not in fn.globals_:
                fn.assigns.append((name, value, order))
                if any(p.name == name for p in fn.params):
                    fn.bind_conds.append((name, self._conds))
            elif isinstance(top, _Class):
                top.attrs.append((name, value))
            else:
                self.assigns.append((name, value, order))
        elif t is ast.Attribute and type(target.value) is ast.Name:
            entry = (f"{target.value.id}.{target.attr}", value, order)
            (fn.assigns if fn is not None else self.assigns).append(entry)
        elif t is ast.Tuple or t is ast.List:
            for element in target.elts:
                self._bind(_unstar(element), ir.OTHER)

    # --- visitors ---------------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> bool:
        for alias in node.names:
            if alias.asname is not None:
                self._import(alias.asname, alias.name)
            else:
                head = alias.name.split(".")[0]
                self._import(head, head)
        return False

    def _import(self, local: str, target: str) -> None:
        fn = self._func()
        if fn is not None:
            # function-local import: bind as an assignment from an absolute name
            fn.assigns.append((local, ir.Name("<import>" + target), self._next()))
        else:
            self.imports[local] = target

    def visit_ImportFrom(self, node: ast.ImportFrom) -> bool:
        base = resolve_relative(self.module, self.is_package, node.level or 0, node.module)
        if node.names and node.names[0].name == "*":
            if self._func() is None:
                self.star_imports.append(base)
            return False
        for alias in node.names:
            self._import(alias.asname or alias.name, f"{base}.{alias.name}" if base else alias.name)
        return False

    def visit_ClassDef(self, node: ast.ClassDef) -> bool:
        # decorators and bases are evaluated in the enclosing scope
        bases = tuple(self.conv(_unstar(b)) for b in node.bases)
        decorators = tuple(self.conv(d) for d in node.decorator_list)
        self.walk_all(node.decorator_list)
        self.walk_all(node.bases)
        for keyword in node.keywords:
            self.walk(keyword.value)
        qual = self._prefix() + node.name
        self.stack.append(_Class(qual, node.name, bases, decorators, self._enclosing_func_name()))
        saved = self._reset_context()
        self.walk_all(node.body)
        self._restore_context(saved)
        cls = self.stack.pop()
        assert isinstance(cls, _Class)
        self.classes.append(ir.ClassIR(cls.qualname, cls.name, cls.bases, tuple(cls.methods), tuple(cls.attrs),
                                       cls.decorators, cls.parent))
        outer = self._func()
        if outer is not None:
            outer.assigns.append((node.name, ir.Name("<class>" + qual), self._next()))
        return False

    @staticmethod
    def _param_nodes(args: ast.arguments) -> list[tuple[ast.arg, ast.expr | None, str]]:
        """(parameter, default, star) in source order."""
        positional = [*args.posonlyargs, *args.args]
        defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
        out: list[tuple[ast.arg, ast.expr | None, str]] = [(p, d, "") for p, d in zip(positional, defaults)]
        if args.vararg is not None:
            out.append((args.vararg, None, "*"))
        out.extend((p, d, "") for p, d in zip(args.kwonlyargs, args.kw_defaults))
        if args.kwarg is not None:
            out.append((args.kwarg, None, "**"))
        return out

    def _params(self, args: ast.arguments) -> tuple[ir.Param, ...]:
        out: list[ir.Param] = []
        for p, default, star in self._param_nodes(args):
            ann = self.conv(p.annotation) if p.annotation is not None else None
            value = self.conv(default) if default is not None else None
            out.append(ir.Param(p.arg, ann, value, star))
        return tuple(out)

    def _visit_params_children(self, args: ast.arguments) -> None:
        for p, default, _ in self._param_nodes(args):
            if p.annotation is not None:
                self.walk(p.annotation)
            if default is not None:
                self.walk(default)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
        decorators = tuple(self.conv(d) for d in node.decorator_list)
        self.walk_all(node.decorator_list)
        params = self._params(node.args)
        self._visit_params_children(node.args)
        returns_ann = self.conv(node.returns) if node.returns is not None else None
        if node.returns is not None:
            self.walk(node.returns)
        top = self.stack[-1] if self.stack else None
        class_name = top.qualname if isinstance(top, _Class) else ""
        method_type = ""
        if class_name:
            method_type = "instance"
            for d in decorators:
                if isinstance(d, ir.Name) and d.id in ("classmethod", "staticmethod"):
                    method_type = "class" if d.id == "classmethod" else "static"
        qual = self._prefix() + node.name
        if qual in self._func_quals:
            # a second `def` of the name (two routes both called `root`, a property's setter,
            # an `@overload`'s implementation): both are analysed, under their own names; the
            # name binds the later one (`ir.redefined`)
            qual = f"{qual}@{node.lineno}"
        self._func_quals.add(qual)
        def_site = self._new_site(ir.DEF, node, None, function=qual)
        fn = _Func(qual, node.name, type(node) is ast.AsyncFunctionDef, False, decorators, params, class_name,
                   method_type, self._enclosing_func_name(), def_site)
        if returns_ann is not None:
            fn.assigns.append(("<return-annotation>", returns_ann, -1))
        outer = self._func()
        self.stack.append(fn)
        saved = self._reset_context()
        self.walk_all(node.body)
        self._restore_context(saved)
        self.stack.pop()
        self._finish(fn)
        if isinstance(top, _Class):
            top.methods.append((node.name, qual))
        elif outer is not None:
            outer.assigns.append((node.name, ir.FuncRef(qual), self._next()))
        return False

    visit_AsyncFunctionDef = visit_FunctionDef

    def _finish(self, fn: _Func) -> None:
        self.functions.append(ir.FuncIR(
            qualname=fn.qualname, name=fn.name, is_async=fn.is_async, is_generator=fn.is_generator,
            is_lambda=fn.is_lambda, decorators=fn.decorators, params=fn.params, class_name=fn.class_name,
            method_type=fn.method_type, parent=fn.parent, assigns=tuple(fn.assigns), sites=tuple(fn.sites),
            returns=tuple(fn.returns), yields=tuple(fn.yields), has_await=fn.has_await,
            globals_=tuple(fn.globals_), def_site=fn.def_site,
            opaque=tuple(dict.fromkeys(fn.opaque)), async_with=tuple(fn.async_with),
            cleanup=tuple(sorted(set(fn.cleanup).intersection(fn.sites))),
            attr_reads=tuple(fn.attr_reads), bind_conds=tuple(fn.bind_conds),
        ))

    def _lambda_name(self, node: ast.Lambda) -> str:
        qual = self._lambda_names.get(id(node))
        if qual is None:
            outer = self._innermost_func()
            owner = outer.qualname if outer else ""
            if outer is not None:
                outer.counter += 1
                n = outer.counter
            else:
                n = len(self.functions) + len(self.sites)
            qual = self._lambda_names[id(node)] = (owner + "." if owner else "") + f"<lambda:{n}>"
        return qual

    def visit_Lambda(self, node: ast.Lambda) -> bool:
        qual = self._lambda_name(node)
        outer = self._innermost_func()
        owner = outer.qualname if outer else ""
        params = self._params(node.args)
        self._visit_params_children(node.args)
        fn = _Func(qual, "<lambda>", False, True, (), params, "", "", owner, -1)
        self.stack.append(fn)
        saved = self._reset_context()
        fn.returns.append(self.conv(node.body))
        self.walk(node.body)
        self._restore_context(saved)
        self.stack.pop()
        self._finish(fn)
        return False

    def visit_Global(self, node: ast.Global) -> bool:
        fn = self._func()
        if fn is not None:
            fn.globals_.extend(node.names)
        return False

    def _stores(self, target: ast.AST, value: ir.Expr) -> None:
        t = type(target)
        if t is ast.Attribute:
            self._store_targets.add(id(target))
            self._new_site(ir.STORE, target, ir.Store(self.conv(target), value))
        elif t is ast.Tuple or t is ast.List:
            for element in target.elts:
                self._stores(element, ir.OTHER)
        elif t is ast.Starred:
            self._stores(target.value, ir.OTHER)

    def _mark_cleanup(self, first: int) -> None:
        """The sites made since `first` are in an except/finally clause (FuncIR.cleanup)."""
        fn = self._func()
        if fn is not None:
            fn.cleanup.extend(range(first, len(self.sites)))

    def _opaque(self, node: ast.AST) -> None:
        """Record the names under node (not inside calls or lambdas, which are summarised)."""
        fn = self._func()
        if fn is None:
            return
        stack = [node]
        while stack:
            current = stack.pop()
            t = type(current)
            if t is ast.Name:
                fn.opaque.append(current.id)
            elif t is ast.Attribute:
                stack.append(current.value)
            elif t is not ast.Call and t is not ast.Lambda:
                stack.extend(ast.iter_child_nodes(current))

    def visit_AugAssign(self, node: ast.AugAssign) -> bool:
        self._stores(node.target, ir.OTHER)
        self._opaque(node.value)
        return True

    def visit_Assign(self, node: ast.Assign) -> bool:
        value = self.conv(node.value)
        if any(type(t) is not ast.Name and type(t) is not ast.Attribute for t in node.targets):
            self._opaque(node.value)  # `registry[key] = db`, `a, b = db, x`
        for target in node.targets:
            self._bind(target, value)
            self._stores(target, value)
        if not self.stack and len(node.targets) == 1:
            t = node.targets[0]
            if type(t) is ast.Name and t.id == "__all__" and isinstance(value, ir.Seq):
                self.dunder_all = tuple(i.value for i in value.items if isinstance(i, ir.Const)
                                        and isinstance(i.value, str))
        return True

    def visit_AnnAssign(self, node: ast.AnnAssign) -> bool:
        self._bind(node.target, ir.Annot(self.conv(node.annotation)))
        if node.value is not None:
            self._bind(node.target, self.conv(node.value))
        self._stores(node.target, self.conv(node.value) if node.value is not None else ir.OTHER)
        return True

    def visit_NamedExpr(self, node: ast.NamedExpr) -> bool:
        # a walrus in a test (`if (db := ...) is not None`) sits in no converted expression
        self.conv(node)
        return True

    def visit_IfExp(self, node: ast.IfExp) -> bool:
        # fields are (test, body, orelse); the source order is body, test, orelse
        self._walk_guarded(node.body, _test_conds(node.test, True))
        self._truth_sites(node.test)
        self.walk(node.test)
        self._walk_guarded(node.orelse, _test_conds(node.test, False))
        return False

    def visit_Subscript(self, node: ast.Subscript) -> bool:
        # `query[i]` / `query[a:b]` run some queries
        self._new_site(ir.SUB, node, self.conv(node))
        return True

    def visit_Call(self, node: ast.Call) -> bool:
        self.conv(node)
        return True

    def visit_Await(self, node: ast.Await) -> bool:
        self._awaited.add(id(node.value))
        fn = self._func()
        if fn is not None:
            fn.has_await = True
        self.conv(node)
        return True

    def visit_Return(self, node: ast.Return) -> bool:
        fn = self._func()
        value = self.conv(node.value) if node.value is not None else ir.Const(None)
        if fn is not None and node.value is not None:
            fn.returns.append(value)
        self._new_site(ir.RETURN, node, value)
        return True

    def visit_Yield(self, node: ast.Yield) -> bool:
        fn = self._func()
        if fn is not None:
            fn.is_generator = True
            value = self.conv(node.value) if node.value is not None else ir.Const(None)
            fn.yields.append(value)
            self._new_site(ir.YIELD, node, value)
        return True

    def visit_YieldFrom(self, node: ast.YieldFrom) -> bool:
        fn = self._func()
        if fn is not None:
            fn.is_generator = True
            fn.yields.append(ir.OTHER)
        return True

    def visit_With(self, node: ast.With | ast.AsyncWith) -> bool:
        is_async = type(node) is ast.AsyncWith
        fn = self._func()
        if is_async and fn is not None:
            fn.has_await = True
        for item in node.items:
            value = self.conv(item.context_expr)
            if not is_async:
                self._new_site(ir.WITH, item.context_expr, value)
            elif fn is not None:
                fn.async_with.append(value)
            if item.optional_vars is not None:
                self._bind(item.optional_vars, ir.Enter(value, is_async))
        return True

    visit_AsyncWith = visit_With

    def _iteration(self, node: ast.For | ast.AsyncFor | ast.comprehension, is_async: bool) -> ir.Expr:
        """What a `for` statement and a comprehension clause share: the iterable and the target."""
        value = self.conv(node.iter)
        fn = self._func()
        if is_async:
            if fn is not None:
                fn.has_await = True
        else:
            self._new_site(ir.ITER, node.iter, value)
        # comprehension variables are local to the comprehension; binding them in the
        # function is a harmless over-approximation for a flow-insensitive analysis
        self._bind(node.target, ir.IterOf(value))
        self.walk(node.target)
        self.walk(node.iter)
        return value

    def visit_For(self, node: ast.For | ast.AsyncFor) -> bool:
        is_async = type(node) is ast.AsyncFor
        value = self._iteration(node, is_async)
        loop_id = self._new_loop(ir.FOR, is_async, value, node.target)
        saved = self._enter_loop(loop_id)
        self._loop_body(loop_id, node.body)
        self._leave_loop(saved)
        self.walk_all(node.orelse)
        return False

    def _loop_body(self, loop_id: int, body: list) -> None:
        """Walk a loop's body, noting where it leaves the loop unconditionally (a top-level
        `break`/`return`/`raise`: what comes before runs once, unless a `continue` is
        between) and where its `continue`s are (LOOP401: a query then `break` is no N+1)."""
        exit_at = -1
        for stmt in body:
            self.walk(stmt)
            if exit_at < 0 and type(stmt) in (ast.Break, ast.Return, ast.Raise):
                exit_at = len(self.sites)
        continues = tuple(self._continues.pop(loop_id, ()))
        branches = tuple(self._exit_branches.pop(loop_id, ()))
        if exit_at >= 0 or continues or branches:
            self.loops[loop_id] = self.loops[loop_id]._replace(exit_at=exit_at, continue_at=continues,
                                                               exit_branches=branches)

    def visit_Continue(self, node: ast.Continue) -> bool:
        if self._loop_id >= 0:
            self._continues.setdefault(self._loop_id, []).append(len(self.sites))
        return False

    visit_AsyncFor = visit_For

    def visit_While(self, node: ast.While) -> bool:
        loop_id = self._new_loop(ir.WHILE, False, None, None)
        saved = self._enter_loop(loop_id)  # the test runs per iteration too
        self._truth_sites(node.test)
        self.walk(node.test)
        self._loop_body(loop_id, node.body)
        self._leave_loop(saved)
        self.walk_all(node.orelse)
        return False

    def _comprehension(self, parts: tuple, generators: list[ast.comprehension]) -> bool:
        # source order: the element first, then the loops; the element runs per item of the
        # innermost `for` clause. Loop records are made now; their iterables are filled in
        # when each clause is visited (converting them here would change source order).
        outer = self._loop_id
        for clause in generators:
            self._loop_id = self._new_loop(ir.COMP, bool(clause.is_async), None, clause.target)
            self._comp_loops[id(clause)] = self._loop_id
        innermost, self._loop_id = self._loop_id, outer
        saved = self._enter_loop(innermost)
        for part in parts:
            self.walk(part)
        self._leave_loop(saved)
        self._clause(generators, 0)
        return False

    def _clause(self, generators: list[ast.comprehension], index: int) -> None:
        clause = generators[index]
        value = self._iteration(clause, bool(clause.is_async))
        loop_id = self._comp_loops[id(clause)]
        self.loops[loop_id] = self.loops[loop_id]._replace(iter=value)
        saved = self._enter_loop(loop_id)  # conditions and inner clauses run once per item
        self.walk_all(clause.ifs)
        if index + 1 < len(generators):
            self._clause(generators, index + 1)
        self._leave_loop(saved)

    def visit_ListComp(self, node: ast.ListComp) -> bool:
        return self._comprehension((node.elt,), node.generators)

    visit_SetComp = visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node: ast.DictComp) -> bool:
        return self._comprehension((node.key, node.value), node.generators)

    def visit_Try(self, node: ast.Try) -> bool:
        saved = self._role
        self._role = ir.TRY
        if node.handlers:
            self._catching.append(self._loop_id)
        self._walk_guarded(node.body)
        if node.handlers:
            self._catching.pop()
        self._role = ir.EXCEPT
        first = len(self.sites)
        for handler in node.handlers:
            if handler.type is not None:
                self._walk_guarded(handler.type)
            # a handler that ends in `return`/`break`/`raise` leaves the loop, as an `if` branch does
            self._walk_branch(handler.body, ())
        self._mark_cleanup(first)
        self._role = ir.TRY
        self._walk_guarded(node.orelse)
        self._role = ir.FINALLY
        first = len(self.sites)
        self._walk_guarded(node.finalbody)
        self._mark_cleanup(first)
        self._role = saved
        return False

    def visit_BoolOp(self, node: ast.BoolOp) -> bool:
        saved = self._conds
        positive = type(node.op) is ast.And
        self.walk(node.values[0])
        for before, value in zip(node.values, node.values[1:]):
            self._conds = self._conds + _test_conds(before, positive)
            self.walk(value)
        self._conds = saved
        return False

    def _walk_branch(self, body: list, conds: tuple) -> None:
        """An `if`/`else` branch; in a loop, one that ends by leaving it is noted (Loop.exit_branches)."""
        first = len(self.sites)
        self._walk_guarded(body, conds)
        if self._loop_id < 0 or not body or type(body[-1]) not in _LEAVE_LOOP or len(self.sites) == first:
            return
        loop_id = self._loop_id
        leaving = type(body[-1])
        while loop_id >= 0 and self.loops[loop_id].kind != ir.COMP:
            if leaving is ast.Raise and loop_id in self._catching:
                break  # `try: ... raise Skip ... except Skip: continue`: the loop goes on
            self._exit_branches.setdefault(loop_id, []).append((first, len(self.sites)))
            if leaving is ast.Break:
                break  # `return` and `raise` leave every enclosing loop of the function
            loop_id = self.loops[loop_id].parent

    def _truth_sites(self, test: ast.expr) -> None:
        """A TRUTH site for each plain name a test reads for truth (`if not rows:`)."""
        if self._innermost_func() is None:
            return
        stack = [test]
        while stack:
            node = stack.pop()
            t = type(node)
            if t is ast.Name:
                self._new_site(ir.TRUTH, node, self.conv(node))
            elif t is ast.UnaryOp and type(node.op) is ast.Not:
                stack.append(node.operand)
            elif t is ast.BoolOp:
                stack.extend(reversed(node.values))

    def visit_If(self, node: ast.If) -> bool:
        # an `elif` chain is walked iteratively: 500 `elif`s must not cost 500 stack frames
        current = node
        self._truth_sites(current.test)
        self.walk(current.test)
        failed: tuple = ()  # what holds when every test so far was false
        while True:
            self._walk_branch(current.body, failed + _test_conds(current.test, True))
            failed = failed + _test_conds(current.test, False)
            orelse = current.orelse
            if len(orelse) != 1 or type(orelse[0]) is not ast.If:
                self._walk_branch(orelse, failed)
                if not orelse and node is current and current.body and type(current.body[-1]) in _EXITS:
                    # `if not blocking: return`: the rest of this block runs when the test failed
                    self._conds = self._conds + failed
                return False
            current = orelse[0]
            # an `elif` test runs only when the previous ones fail
            self._walk_guarded(current.test, failed)

    def visit_Match(self, node: ast.AST) -> bool:
        self.walk(node.subject)  # type: ignore[attr-defined]
        for case in node.cases:  # type: ignore[attr-defined]
            self._walk_guarded(case)
        return False

    def visit_Attribute(self, node: ast.Attribute) -> bool:
        """Record `name.attr` reads (LOOP304 needs reads the expression trees do not keep)."""
        base = node.value
        if type(base) is ast.Name and base.id not in ("self", "cls") and id(node) not in self._store_targets:
            fn = self._func()
            if fn is not None:
                converted = self._conv.get(id(base))
                if isinstance(converted, ir.Name) and converted.pos >= 0:
                    pos = converted.pos
                else:
                    self._tick += 1
                    pos = self._tick
                fn.attr_reads.append((base.id, node.attr, pos))
        return True

    def visit_Expr(self, node: ast.Expr) -> bool:
        if type(node.value) is ast.Call:
            self.conv(node.value)
            sid = self._site_of.get(id(node.value))
            if sid is not None:
                self.sites[sid] = self.sites[sid]._replace(discarded=True)
        return True


if hasattr(ast, "TryStar"):  # Python 3.11+
    Extractor.visit_TryStar = Extractor.visit_Try  # type: ignore[attr-defined]


def _target_names(target: ast.AST) -> Iterator[str]:
    t = type(target)
    if t is ast.Name:
        yield target.id  # type: ignore[attr-defined]
    elif t is ast.Tuple or t is ast.List:
        for element in target.elts:  # type: ignore[attr-defined]
            yield from _target_names(element)
    elif t is ast.Starred:
        yield from _target_names(target.value)  # type: ignore[attr-defined]


def _fstring_prefix(node: ast.JoinedStr) -> str:
    """The literal text an f-string (or a concatenation of strings and f-strings) starts with."""
    out = []
    for part in node.values:
        if type(part) is not ast.Constant:
            break
        out.append(part.value)
    return "".join(out)


def _first_field_names(node: ast.JoinedStr) -> tuple[str, ...]:
    """The plain names the first replacement field of an f-string reads."""
    for part in node.values:
        if type(part) is ast.FormattedValue:
            return tuple(dict.fromkeys(n.id for n in ast.walk(part.value) if type(n) is ast.Name))
    return ()


_EXITS = (ast.Return, ast.Raise, ast.Continue, ast.Break)
_LEAVE_LOOP = (ast.Return, ast.Raise, ast.Break)


def _test_conds(test: ast.expr, holds: bool) -> tuple[tuple[str, str], ...]:
    """What a test says of plain names when it is true (`holds`) or false: `blocking` ->
    blocking is truthy; `x is not None and y` -> x is not None, y is truthy; tests it cannot
    read say nothing."""
    t = type(test)
    if t is ast.Name:
        return ((test.id, ir.TRUTHY if holds else ir.FALSY),)
    if t is ast.Attribute:
        # `if self.db.dirty:`: no caller binds it, but a rollback under it runs only after a
        # failure (semantic._cleanup_when_pending)
        dotted = _dotted_name(test)
        return ((dotted, ir.TRUTHY if holds else ir.FALSY),) if dotted else ()
    if t is ast.UnaryOp and type(test.op) is ast.Not:
        return _test_conds(test.operand, not holds)
    if t is ast.Compare and len(test.ops) == 1 and type(test.left) is ast.Name:
        right = test.comparators[0]
        if type(right) is ast.Constant and right.value is None:
            op = type(test.ops[0])
            if op is ast.Is:
                return ((test.left.id, ir.IS_NONE if holds else ir.NOT_NONE),)
            if op is ast.IsNot:
                return ((test.left.id, ir.NOT_NONE if holds else ir.IS_NONE),)
        return ()
    if t is ast.BoolOp and (type(test.op) is ast.And) == holds:
        # all of `a and b` hold when it is true; none of `a or b` when it is false
        return tuple(c for value in test.values for c in _test_conds(value, holds))
    return ()


def _dotted_name(node: ast.AST) -> str:
    """`self.db.dirty` -> "self.db.dirty"; "" for anything but names and attributes."""
    parts = []
    while type(node) is ast.Attribute:
        parts.append(node.attr)
        node = node.value
    if type(node) is not ast.Name:
        return ""
    parts.append(node.id)
    return ".".join(reversed(parts))


_HANDLERS = {
    getattr(ast, name[len("visit_"):]): getattr(Extractor, name)
    for name in dir(Extractor) if name.startswith("visit_") and hasattr(ast, name[len("visit_"):])
}


def extract(tree: ast.Module, text: str, path: str, name: str, is_package: bool) -> ir.ModuleIR:
    """Summarise a parsed module; raises TooDeep (or RecursionError) for pathological nesting."""
    ex = Extractor(path, name, is_package)
    ex.walk_all(tree.body)
    return ir.ModuleIR(
        path=path, name=name, is_package=is_package,
        imports=tuple(ex.imports.items()), star_imports=tuple(ex.star_imports),
        assigns=tuple(ex.assigns), functions=tuple(ex.functions), classes=tuple(ex.classes),
        sites=tuple(ex.sites), dunder_all=ex.dunder_all, spans=_spans(text, ex), loops=tuple(ex.loops),
        import_anchor=_import_anchor(tree.body),
    )


def _import_anchor(body: list[ast.stmt]) -> tuple[int, int]:
    # kept in the summary so that a fix need not parse the file again (ModuleIR.import_anchor)
    after = 0
    for i, node in enumerate(body):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            after = node.end_lineno or node.lineno
        elif i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str):
            after = node.end_lineno or node.lineno
    return after, (body[0].lineno if body else 0)


_LINE_SPLIT = re.compile(r"\r\n|\r|\n")


def _spans(text: str, ex: Extractor) -> tuple:
    """(line, column, end line, end column) of every site, 1-based, columns in characters."""
    ascii_only = text.isascii()
    lines: list[str] = []

    def line_text(line: int) -> str:
        if not lines:
            lines.extend(_LINE_SPLIT.split(text[1:] if text.startswith("\ufeff") else text))
        return lines[line - 1] if line - 1 < len(lines) else ""

    def chars(line: int, byte_col: int) -> int:
        # ast columns count UTF-8 bytes; findings count characters
        if ascii_only:
            return byte_col
        current = line_text(line)
        return byte_col if current.isascii() else len(current.encode("utf-8")[:byte_col].decode("utf-8", "replace"))

    spans = []
    for node in ex.nodes:
        line, col = node.lineno, chars(node.lineno, node.col_offset)
        if type(node) is ast.FunctionDef or type(node) is ast.AsyncFunctionDef:
            # from `def` (or `async def`) to the end of the name: where editors point at a function
            at = line_text(line).find(node.name, col)
            spans.append((line, col + 1, line, (at + len(node.name) if at >= 0 else col + 3) + 1))
        else:
            end_line = node.end_lineno or line
            spans.append((line, col + 1, end_line, chars(end_line, node.end_col_offset or 0) + 1))
    return tuple(spans)
