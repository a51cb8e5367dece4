"""One LibCST traversal per file: source text -> ModuleIR (plus the CST nodes of its sites).

This module owns everything syntactic: import resolution to absolute names (including
relative imports), scopes (module, class, function, lambda), and turning expressions into
the small symbolic trees of `loopsafe.ir`. No metadata providers are used; positions are
computed later, and only for files that report something (see `positions_for`).
"""
from __future__ import annotations

import ast
import dataclasses
import re
from dataclasses import dataclass, field
from typing import Iterator

import libcst as cst
from libcst.metadata import PositionProvider

from loopsafe import ir


@dataclass
class _Func:
    qualname: str
    name: str
    is_async: bool
    is_lambda: bool
    decorators: tuple
    params: tuple
    class_name: str
    method_type: str
    parent: str
    def_site: int
    assigns: list = field(default_factory=list)
    sites: list = field(default_factory=list)
    returns: list = field(default_factory=list)
    yields: list = field(default_factory=list)
    has_await: bool = False
    is_generator: bool = False
    globals_: list = field(default_factory=list)
    counter: int = 0
    opaque: list = field(default_factory=list)
    async_with: list = field(default_factory=list)
    cleanup: list = field(default_factory=list)
    attr_reads: list = field(default_factory=list)


@dataclass
class _Class:
    qualname: str
    name: str
    bases: tuple
    decorators: tuple
    parent: str
    methods: list = field(default_factory=list)
    attrs: list = field(default_factory=list)


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


def _dotted(node: cst.BaseExpression) -> str | None:
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr.value}" if base else None
    return None


# Fields that never hold code we care about (whitespace, punctuation, comments).
_SKIP_FIELDS = frozenset({
    "lpar", "rpar", "comma", "semicolon", "leading_lines", "lines_after_decorators", "header", "footer",
    "newline", "indent", "colon", "equal", "dot", "operator", "asynchronous", "default_comma",
    "trailing_whitespace", "first_line", "empty_lines", "star_tok", "lbracket", "rbracket", "lbrace",
    "rbrace", "arrow", "quote", "prefix", "start", "end", "whitespace", "encoding", "default_newline",
    "default_indent", "has_trailing_newline",
})
_CHILD_FIELDS: dict[type, tuple[str, ...]] = {}


def _child_fields(kind: type) -> tuple[str, ...]:
    fields = _CHILD_FIELDS.get(kind)
    if fields is None:
        fields = tuple(f.name for f in dataclasses.fields(kind)
                       if f.name not in _SKIP_FIELDS and "whitespace" not in f.name)
        _CHILD_FIELDS[kind] = fields
    return fields


class Extractor:
    """Walks the tree itself: LibCST's visitor machinery rebuilds every node it passes
    (measured: twice the cost of parsing), while reading fields directly is cheap."""

    def walk(self, node: cst.CSTNode) -> None:
        handler = _HANDLERS.get(type(node))
        descend = handler(self, node) if handler is not None else True
        key = id(node)
        sid = self._site_of.get(key)
        if sid is not None and sid not in self._order:
            # pre-order position among the sites of its kind: matched with `ast` later
            self._order[sid] = len(self._order)
        pending = self._pending.pop(key, None)
        if pending:
            for sid in pending:
                self._order[sid] = len(self._order)
        if not descend:
            return
        for name in _child_fields(type(node)):
            value = getattr(node, name)
            if isinstance(value, cst.CSTNode):
                self.walk(value)
            elif isinstance(value, (list, tuple)):
                for item in value:
                    if isinstance(item, cst.CSTNode):
                        self.walk(item)

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
        self.nodes: list[cst.CSTNode] = []
        self.dunder_all: tuple[str, ...] | None = None
        # scope stack: _Func or _Class entries; module level is the empty stack
        self.stack: list[_Func | _Class] = []
        self._site_of: dict[int, int] = {}
        self._conv: dict[int, ir.Expr] = {}
        self._awaited: set[int] = set()
        self._lambda_names: dict[int, str] = {}
        self._order: dict[int, int] = {}
        # control context of the code being walked, reset at each function boundary
        self._loop = 0
        self._role = ""
        # the innermost loop (index into self.loops) and whether an if/try inside it encloses us
        self.loops: list[ir.Loop] = []
        self._loop_id = -1
        self._guarded = False
        self._comp_loops: dict[int, int] = {}
        self._store_targets: set[int] = set()
        self._pending: dict[int, list[int]] = {}
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
        saved = (self._loop, self._role, self._loop_id, self._guarded)
        self._loop, self._role, self._loop_id, self._guarded = 0, "", -1, False
        return saved

    def _restore_context(self, saved: tuple) -> None:
        self._loop, self._role, self._loop_id, self._guarded = saved

    def _new_loop(self, kind: str, is_async: bool, iter_: ir.Expr | None, target: cst.CSTNode | None) -> int:
        fn = self._innermost_func()
        names = tuple(_target_names(target)) if target is not None else ()
        self.loops.append(ir.Loop(kind, is_async, iter_, names, self._loop_id, fn.qualname if fn else ""))
        return len(self.loops) - 1

    def _enter_loop(self, loop_id: int) -> tuple:
        saved = (self._loop_id, self._guarded)
        self._loop += 1
        self._loop_id, self._guarded = loop_id, False
        return saved

    def _leave_loop(self, saved: tuple) -> None:
        self._loop -= 1
        self._loop_id, self._guarded = saved

    def _walk_guarded(self, node: cst.CSTNode | None) -> None:
        """Walk code that runs only sometimes (an `if` branch, a `try` clause, a `case`)."""
        if node is None:
            return
        saved, self._guarded = self._guarded, self._loop_id >= 0 or self._guarded
        self.walk(node)
        self._guarded = saved

    # --- sites ------------------------------------------------------------------------
    def _new_site(self, kind: str, node: cst.CSTNode, expr: ir.Expr | None, function: str | None = None,
                  awaited: bool = False) -> int:
        sid = len(self.sites)
        fn = self._innermost_func()
        owner = function if function is not None else (fn.qualname if fn else "")
        ctx = (self._loop, self._role, self._loop_id, self._guarded) if kind != ir.DEF else (0, "", -1, False)
        self.sites.append(ir.Site(sid, kind, owner, expr, awaited, *ctx))
        self.nodes.append(node)
        if kind == ir.DEF:
            self._order[sid] = len(self._order)
        else:
            # a node can be several sites at once (`for x in q.all()` is a call and an iteration)
            self._pending.setdefault(id(node), []).append(sid)
        if fn is not None and function is None:
            fn.sites.append(sid)
        return sid

    def _call_site(self, node: cst.Call) -> int:
        sid = self._site_of.get(id(node))
        if sid is None:
            sid = len(self.sites)
            self._site_of[id(node)] = sid
            fn = self._innermost_func()
            # placeholder, replaced once the call is converted
            self.sites.append(ir.Site(sid, ir.CALL, fn.qualname if fn else "", None, id(node) in self._awaited,
                                      self._loop, self._role, self._loop_id, self._guarded))
            self.nodes.append(node)
            if fn is not None:
                fn.sites.append(sid)
        return sid

    # --- expressions ------------------------------------------------------------------
    def conv(self, node: cst.CSTNode | None) -> ir.Expr:
        if node is None:
            return ir.OTHER
        key = id(node)
        cached = self._conv.get(key)
        if cached is not None:
            return cached
        out = self._conv_uncached(node)
        self._conv[key] = out
        return out

    def _conv_uncached(self, node: cst.CSTNode) -> ir.Expr:
        if isinstance(node, cst.Name):
            self._tick += 1
            return ir.Name(node.value, self._tick)
        if isinstance(node, cst.Attribute):
            return ir.Attr(self.conv(node.value), node.attr.value)
        if isinstance(node, cst.Call):
            sid = self._call_site(node)
            args: list[ir.Expr] = []
            kwargs: list[tuple[str, ir.Expr]] = []
            for arg in node.args:
                if arg.keyword is not None:
                    kwargs.append((arg.keyword.value, self.conv(arg.value)))
                elif arg.star:
                    kwargs.append((arg.star, self.conv(arg.value)))
                else:
                    args.append(self.conv(arg.value))
            expr = ir.Call(self.conv(node.func), tuple(args), tuple(kwargs), sid)
            self.sites[sid] = self.sites[sid]._replace(expr=expr)
            return expr
        if isinstance(node, cst.Await):
            self._awaited.add(id(node.expression))
            if isinstance(node.expression, cst.Call) and id(node.expression) in self._site_of:
                sid = self._site_of[id(node.expression)]
                self.sites[sid] = self.sites[sid]._replace(awaited=True)
            return ir.Await(self.conv(node.expression))
        if isinstance(node, cst.Subscript):
            index = []
            for element in node.slice:
                if isinstance(element.slice, cst.Index):
                    index.append(self.conv(element.slice.value))
                else:
                    index.append(ir.Slice())
            return ir.Sub(self.conv(node.value), tuple(index))
        if isinstance(node, cst.SimpleString):
            try:
                return ir.Const(node.evaluated_value)
            except Exception:  # noqa: BLE001 - odd prefixes; the value does not matter then
                return ir.OTHER
        if isinstance(node, cst.ConcatenatedString):
            value = node.evaluated_value
            if value is not None:
                return ir.Const(value)
            prefix = _fstring_prefix(node)
            return ir.FStr(prefix) if prefix is not None else ir.OTHER
        if isinstance(node, cst.FormattedString):
            prefix = _fstring_prefix(node)
            return ir.FStr(prefix) if prefix is not None else ir.OTHER
        if isinstance(node, cst.Integer):
            return ir.Const(node.evaluated_value)
        if isinstance(node, (cst.Dict, cst.DictComp, cst.ListComp, cst.SetComp, cst.GeneratorExp)):
            self._opaque(node)
            return ir.OTHER
        if isinstance(node, (cst.List, cst.Tuple, cst.Set)):
            return ir.Seq(tuple(self.conv(e.value) for e in node.elements))
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.BitOr):
            return ir.Union_((self.conv(node.left), self.conv(node.right)))
        if isinstance(node, cst.Lambda):
            # named now so a binding can refer to it (`f = lambda: ...`); summarised by the walk
            return ir.FuncRef(self._lambda_name(node))
        if isinstance(node, cst.NamedExpr):
            # `(db := SessionLocal())` binds db as `db = SessionLocal()` would, here where the
            # value is made (conv runs once per node, so the binding is recorded once); inside
            # a comprehension it binds in the enclosing function (PEP 572), as _bind does
            value = self.conv(node.value)
            self._bind(node.target, value)
            if isinstance(node.target, cst.Name) and (self._func() is not None or not self.stack):
                # what encloses the walrus gets the bound object, so it reads as a use of the
                # name: `with (db := SessionLocal()):` manages db, the call is made only once
                self._tick += 1
                return ir.Name(node.target.value, self._tick)
            return value
        if isinstance(node, cst.IfExp):
            body = self.conv(node.body)
            self.conv(node.test)  # source order: body, test, orelse
            return ir.Union_((body, self.conv(node.orelse)))
        if isinstance(node, cst.BooleanOperation):
            return ir.Union_((self.conv(node.left), self.conv(node.right)))
        return ir.OTHER

    # --- binding helpers --------------------------------------------------------------
    def _bind(self, target: cst.BaseExpression, value: ir.Expr) -> None:
        fn = self._func()
        top = self.stack[-1] if self.stack else None
        self._tick += 1
        order = self._tick
        if isinstance(target, cst.Name):
            name = target.value
            if fn is not None and name not in fn.globals_:
                fn.assigns.append((name, value, order))
            elif isinstance(top, _Class):
                top.attrs.append((name, value))
            else:
                self.assigns.append((name, value, order))
        elif isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name):
            if fn is not None:
                fn.assigns.append((f"{target.value.value}.{target.attr.value}", value, order))
            else:
                self.assigns.append((f"{target.value.value}.{target.attr.value}", value, order))
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._bind(element.value, ir.OTHER)

    # --- visitors ---------------------------------------------------------------------
    def visit_Import(self, node: cst.Import) -> bool:
        for alias in node.names:
            full = _dotted(alias.name)
            if not full:
                continue
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self._import(alias.asname.name.value, full)
            else:
                head = full.split(".")[0]
                self._import(head, head)
        return False

    def _import(self, local: str, target: str) -> None:
        fn = self._func()
        if fn is not None:
            # function-local import: bind as an assignment from an absolute name
            fn.assigns.append((local, ir.Name("<import>" + target), self._next()))
        else:
            self.imports[local] = target

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        base_name = _dotted(node.module) if node.module is not None else None
        base = resolve_relative(self.module, self.is_package, len(node.relative), base_name)
        if isinstance(node.names, cst.ImportStar):
            if self._func() is None:
                self.star_imports.append(base)
            return False
        for alias in node.names:
            name = _dotted(alias.name)
            if not name:
                continue
            local = alias.asname.name.value if alias.asname and isinstance(alias.asname.name, cst.Name) else name
            self._import(local, f"{base}.{name}" if base else name)
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        # decorators and bases are evaluated in the enclosing scope
        bases = tuple(self.conv(arg.value) for arg in node.bases if not arg.keyword)
        decorators = tuple(self.conv(d.decorator) for d in node.decorators)
        for d in node.decorators:
            self.walk(d.decorator)
        for arg in (*node.bases, *node.keywords):
            self.walk(arg.value)
        qual = self._prefix() + node.name.value
        self.stack.append(_Class(qual, node.name.value, bases, decorators, self._enclosing_func_name()))
        saved = self._reset_context()
        self.walk(node.body)
        self._restore_context(saved)
        cls = self.stack.pop()
        assert isinstance(cls, _Class)
        self.classes.append(ir.ClassIR(cls.qualname, cls.name, cls.bases, tuple(cls.methods), tuple(cls.attrs),
                                       cls.decorators, cls.parent))
        outer = self._func()
        if outer is not None:
            outer.assigns.append((node.name.value, ir.Name("<class>" + qual), self._next()))
        return False

    def _params(self, params: cst.Parameters) -> tuple[ir.Param, ...]:
        out: list[ir.Param] = []

        def add(p: cst.Param, star: str = "") -> None:
            ann = self.conv(p.annotation.annotation) if p.annotation is not None else None
            default = self.conv(p.default) if p.default is not None else None
            out.append(ir.Param(p.name.value, ann, default, star))

        for p in params.posonly_params:
            add(p)
        for p in params.params:
            add(p)
        if isinstance(params.star_arg, cst.Param):
            add(params.star_arg, "*")
        for p in params.kwonly_params:
            add(p)
        if params.star_kwarg is not None:
            add(params.star_kwarg, "**")
        return tuple(out)

    def _visit_params_children(self, params: cst.Parameters) -> None:
        star = [params.star_arg] if isinstance(params.star_arg, cst.Param) else []
        kwargs = [params.star_kwarg] if params.star_kwarg is not None else []
        for p in (*params.posonly_params, *params.params, *star, *params.kwonly_params, *kwargs):
            if p.annotation is not None:
                self.walk(p.annotation)
            if p.default is not None:
                self.walk(p.default)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        decorators = tuple(self.conv(d.decorator) for d in node.decorators)
        for d in node.decorators:
            self.walk(d.decorator)
        params = self._params(node.params)
        self._visit_params_children(node.params)
        returns_ann = self.conv(node.returns.annotation) if node.returns is not None else None
        if node.returns is not None:
            self.walk(node.returns.annotation)
        top = self.stack[-1] if self.stack else None
        class_name = top.qualname if isinstance(top, _Class) else ""
        method_type = ""
        if class_name:
            method_type = "instance"
            for d in decorators:
                if isinstance(d, ir.Name) and d.id in ("classmethod", "staticmethod"):
                    method_type = "class" if d.id == "classmethod" else "static"
        qual = self._prefix() + node.name.value
        is_async = node.asynchronous is not None
        def_site = self._new_site(ir.DEF, node, None, function=qual)
        fn = _Func(qual, node.name.value, is_async, False, decorators, params, class_name, method_type,
                   self._enclosing_func_name(), def_site)
        if returns_ann is not None:
            fn.assigns.append(("<return-annotation>", returns_ann, -1))
        outer = self._func()
        self.stack.append(fn)
        saved = self._reset_context()
        self.walk(node.body)
        self._restore_context(saved)
        self.stack.pop()
        self._finish(fn)
        if isinstance(top, _Class):
            top.methods.append((node.name.value, qual))
        elif outer is not None:
            outer.assigns.append((node.name.value, ir.FuncRef(qual), self._next()))
        return False

    def _finish(self, fn: _Func) -> None:
        self.functions.append(ir.FuncIR(
            qualname=fn.qualname, name=fn.name, is_async=fn.is_async, is_generator=fn.is_generator,
            is_lambda=fn.is_lambda, decorators=fn.decorators, params=fn.params, class_name=fn.class_name,
            method_type=fn.method_type, parent=fn.parent, assigns=tuple(fn.assigns), sites=tuple(fn.sites),
            returns=tuple(fn.returns), yields=tuple(fn.yields), has_await=fn.has_await,
            globals_=tuple(fn.globals_), def_site=fn.def_site,
            opaque=tuple(dict.fromkeys(fn.opaque)), async_with=tuple(fn.async_with),
            cleanup=tuple(sorted(set(fn.cleanup).intersection(fn.sites))),
            attr_reads=tuple(fn.attr_reads),
        ))

    def _lambda_name(self, node: cst.Lambda) -> str:
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

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        qual = self._lambda_name(node)
        outer = self._innermost_func()
        owner = outer.qualname if outer else ""
        params = self._params(node.params)
        self._visit_params_children(node.params)
        fn = _Func(qual, "<lambda>", False, True, (), params, "", "", owner, -1)
        self.stack.append(fn)
        saved = self._reset_context()
        fn.returns.append(self.conv(node.body))
        self.walk(node.body)
        self._restore_context(saved)
        self.stack.pop()
        self._finish(fn)
        return False

    def visit_Global(self, node: cst.Global) -> bool:
        fn = self._func()
        if fn is not None:
            fn.globals_.extend(n.name.value for n in node.names)
        return False

    def visit_Nonlocal(self, node: cst.Nonlocal) -> bool:
        return False

    def _stores(self, target: cst.BaseExpression, value: ir.Expr) -> None:
        if isinstance(target, cst.Attribute):
            self._store_targets.add(id(target))
            self._new_site(ir.STORE, target, ir.Store(self.conv(target), value))
        elif isinstance(target, (cst.Tuple, cst.List)):
            for element in target.elements:
                self._stores(element.value, ir.OTHER)
        elif isinstance(target, cst.StarredElement):
            self._stores(target.value, ir.OTHER)

    def _mark_cleanup(self, first: int) -> None:
        """The sites made since `first` are in an except/finally clause (FuncIR.cleanup)."""
        fn = self._func()
        if fn is not None:
            fn.cleanup.extend(range(first, len(self.sites)))

    def _opaque(self, node: cst.CSTNode) -> None:
        """Record the names under node (not inside calls or lambdas, which are summarised)."""
        fn = self._func()
        if fn is None:
            return
        stack = [node]
        while stack:
            current = stack.pop()
            if isinstance(current, cst.Name):
                fn.opaque.append(current.value)
            elif isinstance(current, cst.Attribute):
                stack.append(current.value)
            elif not isinstance(current, (cst.Call, cst.Lambda)):
                stack.extend(c for c in current.children if isinstance(c, cst.CSTNode))

    def visit_AugAssign(self, node: cst.AugAssign) -> bool:
        self._stores(node.target, ir.OTHER)
        self._opaque(node.value)
        return True

    def visit_Assign(self, node: cst.Assign) -> bool:
        value = self.conv(node.value)
        if any(not isinstance(t.target, (cst.Name, cst.Attribute)) for t in node.targets):
            self._opaque(node.value)  # `registry[key] = db`, `a, b = db, x`
        for target in node.targets:
            self._bind(target.target, value)
            self._stores(target.target, value)
        if not self.stack and len(node.targets) == 1:
            t = node.targets[0].target
            if isinstance(t, cst.Name) and t.value == "__all__" and isinstance(value, ir.Seq):
                self.dunder_all = tuple(i.value for i in value.items if isinstance(i, ir.Const)
                                        and isinstance(i.value, str))
        return True

    def visit_AnnAssign(self, node: cst.AnnAssign) -> bool:
        self._bind(node.target, ir.Annot(self.conv(node.annotation.annotation)))
        if node.value is not None:
            self._bind(node.target, self.conv(node.value))
        self._stores(node.target, self.conv(node.value) if node.value is not None else ir.OTHER)
        return True

    def visit_NamedExpr(self, node: cst.NamedExpr) -> bool:
        # a walrus in a test (`if (db := ...) is not None`) sits in no converted expression
        self.conv(node)
        return True

    def visit_IfExp(self, node: cst.IfExp) -> bool:
        # fields are (test, body, orelse); the source order is body, test, orelse
        self.walk(node.body)
        self.walk(node.test)
        self.walk(node.orelse)
        return False

    def visit_Subscript(self, node: cst.Subscript) -> bool:
        # `query[i]` / `query[a:b]` run some queries
        self._new_site(ir.SUB, node, self.conv(node))
        return True

    def visit_Call(self, node: cst.Call) -> bool:
        self.conv(node)
        return True

    def visit_Await(self, node: cst.Await) -> bool:
        self._awaited.add(id(node.expression))
        fn = self._func()
        if fn is not None:
            fn.has_await = True
        self.conv(node)
        return True

    def visit_Return(self, node: cst.Return) -> bool:
        fn = self._func()
        value = self.conv(node.value) if node.value is not None else ir.Const(None)
        if fn is not None and node.value is not None:
            fn.returns.append(value)
        self._new_site(ir.RETURN, node, value)
        return True

    def visit_Yield(self, node: cst.Yield) -> bool:
        fn = self._func()
        if fn is not None:
            fn.is_generator = True
            if isinstance(node.value, cst.From):
                fn.yields.append(ir.OTHER)
            else:
                value = self.conv(node.value) if node.value is not None else ir.Const(None)
                fn.yields.append(value)
                self._new_site(ir.YIELD, node, value)
        return True

    def visit_With(self, node: cst.With) -> bool:
        is_async = node.asynchronous is not None
        fn = self._func()
        if is_async and fn is not None:
            fn.has_await = True
        for item in node.items:
            value = self.conv(item.item)
            if not is_async:
                self._new_site(ir.WITH, item.item, value)
            elif fn is not None:
                fn.async_with.append(value)
            if item.asname is not None:
                self._bind(item.asname.name, ir.Enter(value, is_async))
        return True

    def visit_For(self, node: cst.For) -> bool:
        value = self.conv(node.iter)
        fn = self._func()
        if node.asynchronous is not None:
            if fn is not None:
                fn.has_await = True
        else:
            self._new_site(ir.ITER, node.iter, value)
        self._bind(node.target, ir.IterOf(value))
        self.walk(node.target)
        self.walk(node.iter)
        loop_id = self._new_loop(ir.FOR, node.asynchronous is not None, value, node.target)
        saved = self._enter_loop(loop_id)
        self.walk(node.body)
        self._leave_loop(saved)
        if node.orelse is not None:
            self.walk(node.orelse)
        return False

    def visit_While(self, node: cst.While) -> bool:
        saved = self._enter_loop(self._new_loop(ir.WHILE, False, None, None))  # the test runs per iteration too
        self.walk(node.test)
        self.walk(node.body)
        self._leave_loop(saved)
        if node.orelse is not None:
            self.walk(node.orelse)
        return False

    def _comprehension(self, parts: tuple, for_in: cst.CompFor) -> bool:
        # source order: the element first, then the loops; the element runs per item of the
        # innermost `for` clause. Loop records are made now; their iterables are filled in
        # when each clause is visited (converting them here would change source order).
        outer = self._loop_id
        clause: cst.CompFor | None = for_in
        while clause is not None:
            self._loop_id = self._new_loop(ir.COMP, clause.asynchronous is not None, None, clause.target)
            self._comp_loops[id(clause)] = self._loop_id
            clause = clause.inner_for_in
        innermost, self._loop_id = self._loop_id, outer
        saved = self._enter_loop(innermost)
        for part in parts:
            self.walk(part)
        self._leave_loop(saved)
        self.walk(for_in)
        return False

    def visit_ListComp(self, node: cst.ListComp) -> bool:
        return self._comprehension((node.elt,), node.for_in)

    def visit_SetComp(self, node: cst.SetComp) -> bool:
        return self._comprehension((node.elt,), node.for_in)

    def visit_GeneratorExp(self, node: cst.GeneratorExp) -> bool:
        return self._comprehension((node.elt,), node.for_in)

    def visit_DictComp(self, node: cst.DictComp) -> bool:
        return self._comprehension((node.key, node.value), node.for_in)

    def _try(self, node: cst.Try | cst.TryStar) -> bool:
        saved = self._role
        self._role = ir.TRY
        self._walk_guarded(node.body)
        self._role = ir.EXCEPT
        first = len(self.sites)
        for handler in node.handlers:
            self._walk_guarded(handler)
        self._mark_cleanup(first)
        self._role = ir.TRY
        self._walk_guarded(node.orelse)
        self._role = ir.FINALLY
        first = len(self.sites)
        self._walk_guarded(node.finalbody)
        self._mark_cleanup(first)
        self._role = saved
        return False

    def visit_If(self, node: cst.If) -> bool:
        # an `elif` chain is walked iteratively: 500 `elif`s must not cost 500 stack frames
        current: cst.If = node
        self.walk(current.test)
        while True:
            self._walk_guarded(current.body)
            orelse = current.orelse
            if not isinstance(orelse, cst.If):
                self._walk_guarded(orelse)
                return False
            current = orelse
            self._walk_guarded(current.test)  # an `elif` test runs only when the previous ones fail

    def visit_Match(self, node: cst.Match) -> bool:
        self.walk(node.subject)
        for case in node.cases:
            self._walk_guarded(case)
        return False

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        """Record `name.attr` reads (LOOP304 needs reads the expression trees do not keep)."""
        base = node.value
        if isinstance(base, cst.Name) and base.value not in ("self", "cls") and id(node) not in self._store_targets:
            fn = self._func()
            if fn is not None:
                converted = self._conv.get(id(base))
                if isinstance(converted, ir.Name) and converted.pos >= 0:
                    pos = converted.pos
                else:
                    self._tick += 1
                    pos = self._tick
                fn.attr_reads.append((base.value, node.attr.value, pos))
        return True

    def visit_Expr(self, node: cst.Expr) -> bool:
        if isinstance(node.value, cst.Call):
            self.conv(node.value)
            sid = self._site_of.get(id(node.value))
            if sid is not None:
                self.sites[sid] = self.sites[sid]._replace(discarded=True)
        return True

    def visit_Try(self, node: cst.Try) -> bool:
        return self._try(node)

    def visit_TryStar(self, node: cst.TryStar) -> bool:
        return self._try(node)

    def visit_CompFor(self, node: cst.CompFor) -> bool:
        value = self.conv(node.iter)
        fn = self._func()
        if node.asynchronous is not None:
            if fn is not None:
                fn.has_await = True
        else:
            self._new_site(ir.ITER, node.iter, value)
        # comprehension variables are local to the comprehension; binding them in the
        # function is a harmless over-approximation for a flow-insensitive analysis
        self._bind(node.target, ir.IterOf(value))
        self.walk(node.target)
        self.walk(node.iter)
        loop_id = self._comp_loops.get(id(node))
        if loop_id is None:  # pragma: no cover - every clause is registered by _comprehension
            loop_id = self._new_loop(ir.COMP, node.asynchronous is not None, value, node.target)
        self.loops[loop_id] = self.loops[loop_id]._replace(iter=value)
        saved = self._enter_loop(loop_id)  # conditions and inner loops run once per item
        for cond in node.ifs:
            self.walk(cond)
        if node.inner_for_in is not None:
            self.walk(node.inner_for_in)
        self._leave_loop(saved)
        return False


def _target_names(target: cst.CSTNode) -> Iterator[str]:
    if isinstance(target, cst.Name):
        yield target.value
    elif isinstance(target, (cst.Tuple, cst.List)):
        for element in target.elements:
            yield from _target_names(element.value)
    elif isinstance(target, cst.StarredElement):
        yield from _target_names(target.value)


def _fstring_prefix(node: cst.BaseExpression) -> str | None:
    """The literal text an f-string (or a concatenation ending in one) starts with."""
    if isinstance(node, cst.SimpleString):
        try:
            value = node.evaluated_value
        except Exception:  # noqa: BLE001 - odd prefixes
            return None
        return value if isinstance(value, str) else None
    if isinstance(node, cst.FormattedString):
        if "b" in node.prefix.lower():
            return None
        out = []
        for part in node.parts:
            if not isinstance(part, cst.FormattedStringText):
                break
            out.append(part.value)
        # raw source text (escapes unprocessed): enough to read a URL scheme or a prefix
        return "".join(out).replace("{{", "{").replace("}}", "}")
    if isinstance(node, cst.ConcatenatedString):
        left = _fstring_prefix(node.left)
        if left is None:
            return None
        left_complete = isinstance(node.left, cst.SimpleString) or (
            isinstance(node.left, cst.FormattedString)
            and all(isinstance(p, cst.FormattedStringText) for p in node.left.parts))
        if not left_complete:
            return left
        right = _fstring_prefix(node.right)
        return left + right if right is not None else left
    return None


_HANDLERS = {
    getattr(cst, name[len("visit_"):]): getattr(Extractor, name)
    for name in dir(Extractor) if name.startswith("visit_")
}


def extract(module: cst.Module, text: str, path: str, name: str, is_package: bool,
            tree: ast.Module | None = None) -> ir.ModuleIR:
    """Summarise a parsed module; `tree` is the stdlib parse of the same text, if at hand."""
    ex = Extractor(path, name, is_package)
    ex.walk(module)
    spans = _ast_spans(text, ex, tree)
    if spans is None:
        spans = _cst_spans(module, ex.nodes)
    return ir.ModuleIR(
        path=path, name=name, is_package=is_package,
        imports=tuple(ex.imports.items()), star_imports=tuple(ex.star_imports),
        assigns=tuple(ex.assigns), functions=tuple(ex.functions), classes=tuple(ex.classes),
        sites=tuple(ex.sites), dunder_all=ex.dunder_all, spans=tuple(spans), loops=tuple(ex.loops),
    )


# --- positions ---------------------------------------------------------------------------
#
# LibCST only knows positions through a code-generation pass that costs more than parsing
# the file. The stdlib parser records them for free and is ten times faster, so each site
# is matched to its `ast` twin: sites of one kind and signature, in source order on both
# sides (the walk above is pre-order in source order; ast nodes are sorted by position).
# When the two sides disagree in any group, the file falls back to LibCST's provider.


def _cst_sig(kind: str, node: cst.CSTNode) -> tuple:
    if kind == ir.CALL and isinstance(node, cst.Call):
        func = node.func
        callee = func.value if isinstance(func, cst.Name) else func.attr.value if isinstance(func, cst.Attribute) else ""
        plain = sum(1 for a in node.args if a.keyword is None and not a.star)
        star = sum(1 for a in node.args if a.star == "*")
        dstar = sum(1 for a in node.args if a.star == "**")
        kws = tuple(sorted(a.keyword.value for a in node.args if a.keyword is not None))
        return (kind, callee, plain, star, dstar, kws)
    return (kind,)


def _ast_sig_call(node: ast.Call) -> tuple:
    func = node.func
    callee = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    plain = sum(1 for a in node.args if not isinstance(a, ast.Starred))
    star = sum(1 for a in node.args if isinstance(a, ast.Starred))
    dstar = sum(1 for k in node.keywords if k.arg is None)
    kws = tuple(sorted(k.arg for k in node.keywords if k.arg is not None))
    return (ir.CALL, callee, plain, star, dstar, kws)


def _ast_spans(text: str, ex: Extractor, tree: ast.Module | None = None) -> list | None:
    if tree is None:
        try:
            tree = ast.parse(text[1:] if text.startswith("\ufeff") else text)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return None
    groups: dict[tuple, list[tuple]] = {}

    def add(sig: tuple, node: ast.AST, end_col: int | None = None) -> None:
        groups.setdefault(sig, []).append(
            (node.lineno, node.col_offset, -(node.end_lineno or node.lineno), -(node.end_col_offset or 0), node,
             end_col))

    for node in ast.walk(tree):
        t = type(node)
        if t is ast.Call:
            add(_ast_sig_call(node), node)
        elif t is ast.Subscript:
            add((ir.SUB,), node)
        elif t is ast.For:
            add((ir.ITER,), node.iter)
        elif t is ast.comprehension:
            if not node.is_async:
                add((ir.ITER,), node.iter)
        elif t is ast.With:
            for item in node.items:
                add((ir.WITH,), item.context_expr)
        elif t is ast.FunctionDef or t is ast.AsyncFunctionDef:
            add((ir.DEF,), node)
        elif t is ast.Return:
            add((ir.RETURN,), node)
        elif t is ast.Yield:
            add((ir.YIELD,), node)
        elif t is ast.Assign or t is ast.AnnAssign or t is ast.AugAssign:
            for target in (node.targets if t is ast.Assign else [node.target]):
                for attr in _attribute_targets(target):
                    add((ir.STORE,), attr)
    for entries in groups.values():
        entries.sort(key=lambda e: e[:4])

    mine: dict[tuple, list[int]] = {}
    for sid, node in enumerate(ex.nodes):
        if sid not in ex._order:
            return None
        mine.setdefault(_cst_sig(ex.sites[sid].kind, node), []).append(sid)
    lines = _LINE_SPLIT.split(text[1:] if text.startswith("\ufeff") else text)
    spans: list = [None] * len(ex.nodes)
    for sig, sids in mine.items():
        theirs = groups.get(sig, [])
        if len(theirs) != len(sids):
            return None
        sids.sort(key=ex._order.__getitem__)
        for sid, entry in zip(sids, theirs):
            node = entry[4]
            line, col = node.lineno, _chars(lines, node.lineno, node.col_offset)
            if sig[0] == ir.DEF:
                name = ex.nodes[sid].name.value  # type: ignore[attr-defined]
                at = lines[line - 1].find(name, col) if line - 1 < len(lines) else -1
                end_line, end_col = line, (at + len(name) if at >= 0 else col + 3)
            else:
                end_line = node.end_lineno or line
                end_col = _chars(lines, end_line, node.end_col_offset or 0)
            spans[sid] = (line, col + 1, end_line, end_col + 1)
    return spans


def _attribute_targets(target: ast.AST) -> Iterator[ast.Attribute]:
    if isinstance(target, ast.Attribute):
        yield target
    elif isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from _attribute_targets(element)
    elif isinstance(target, ast.Starred):
        yield from _attribute_targets(target.value)


_LINE_SPLIT = re.compile(r"\r\n|\r|\n")


def _chars(lines: list[str], line: int, byte_col: int) -> int:
    """ast columns count UTF-8 bytes; findings count characters."""
    if line - 1 >= len(lines):
        return byte_col
    text = lines[line - 1]
    if text.isascii():
        return byte_col
    return len(text.encode("utf-8")[:byte_col].decode("utf-8", errors="replace"))


def _cst_spans(module: cst.Module, nodes: list[cst.CSTNode]) -> list:
    provider = PositionProvider()
    provider._gen_impl(module)  # noqa: SLF001 - avoids MetadataWrapper's deep copy of the tree
    computed = provider._computed  # noqa: SLF001
    spans: list = []
    for node in nodes:
        if isinstance(node, cst.FunctionDef):
            start, name = computed[node].start, computed[node.name].end
            spans.append((start.line, start.column + 1, name.line, name.column + 1))
        else:
            rng = computed.get(node)
            spans.append((rng.start.line, rng.start.column + 1, rng.end.line, rng.end.column + 1) if rng else None)
    return spans
