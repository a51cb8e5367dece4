"""Function-local facts shared by the LOOP3xx-LOOP5xx rules.

Built from the summaries (`loopsafe.ir`) and the semantic model, never from syntax: where the
value of a call goes (awaited, thrown away, returned, passed on, stored in a name, used as a
value), what a name is bound to where it is used (the latest binding before the use), which
loops enclose a site, which project functions a function calls, and which literal texts a
URL expression may hold.

A `FunctionFacts` indexes one function (or the module level) on first need; rules ask it
questions.
"""
from __future__ import annotations

from typing import Iterator

from loopsafe import catalogue as cat
from loopsafe import ir
from loopsafe.semantic import ProjectModel, VClass, VExt, VFunc, VKind, VMethod, VMod, _Func, _Mod, _Scope

# roles of a node under its parent (or at the root of a statement)
ATTR, CALLED, ARG, AWAIT, SUB, ITEM, ALT, ENTER, ITER, STORED, RETURN, YIELD, ASSIGN, ROOT = (
    "attr", "called", "arg", "await", "sub", "item", "alt", "enter", "iter", "stored", "return", "yield", "assign",
    "root")

_SITE_ROLES = {ir.ITER: ITER, ir.WITH: ENTER, ir.RETURN: RETURN, ir.YIELD: YIELD, ir.CALL: ROOT, ir.SUB: ROOT,
               ir.STORE: ROOT}
_UNSET = object()  # "not cached" (None is a value)


def children(expr: ir.Expr) -> Iterator[tuple[ir.Expr, str]]:
    """The direct sub-expressions of a node, with their role."""
    t = type(expr)
    if t is ir.Attr:
        yield expr.value, ATTR
    elif t is ir.Call:
        yield expr.func, CALLED
        for arg in expr.args:
            yield arg, ARG
        for _name, arg in expr.kwargs:
            yield arg, ARG
    elif t is ir.Await:
        yield expr.value, AWAIT
    elif t is ir.Sub:
        yield expr.value, SUB
        for index in expr.index:
            yield index, ARG
    elif t is ir.Seq:
        for item in expr.items:
            yield item, ITEM
    elif t is ir.Union_:
        for item in expr.items:
            yield item, ALT
    elif t is ir.Enter:
        yield expr.value, ENTER
    elif t is ir.IterOf:
        yield expr.value, ITER
    elif t is ir.Store:
        yield expr.value, STORED


def walk(expr: ir.Expr) -> Iterator[ir.Expr]:
    """Every node of an expression tree, the root first."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(child for child, _role in children(node))


def strip_awaits(expr: ir.Expr) -> ir.Expr:
    while type(expr) is ir.Await:
        expr = expr.value
    return expr


def call_name(call: ir.Call) -> str:
    """`session.execute(q)` -> "execute"; `select(User)` -> "select"."""
    f = call.func
    if type(f) is ir.Attr:
        return f.attr
    if type(f) is ir.Name:
        return f.id
    return ""


class FunctionFacts:
    """What one function's body (or a module's top level) does with its values."""

    def __init__(self, model: ProjectModel, mod: _Mod, fn: _Func | None) -> None:
        self.model = model
        self.mod = mod
        self.fn = fn
        self.scope = _Scope(mod, fn)
        self._built = False
        #: id(expr) -> value, for the values the model has settled (see eval)
        self._values: dict[int, object] = {}

    def _build(self) -> None:
        """Index the body on first need (most functions are only asked to evaluate a name)."""
        self._built = True
        mod, fn = self.mod, self.fn
        sites = mod.ir.sites
        if fn is not None:
            own = [sites[i] for i in fn.ir.sites]
            assigns = fn.ir.assigns
        else:
            own = [s for s in sites if not s.function and s.kind != ir.DEF]
            assigns = mod.ir.assigns
        #: id(node) -> [(role, parent or None)]
        self._parents: dict[int, list[tuple[str, ir.Expr | None]]] = {}
        #: name -> [(Name node, role, parent)]
        self._name_uses: dict[str, list[tuple[ir.Name, str, ir.Expr | None]]] = {}
        #: name -> [(order, value)] in source order
        self._bindings: dict[str, list[tuple[int, ir.Expr]]] = {}
        self._calls: dict[int, ir.Call] = {}  # site id -> call node
        self._attrs: list[ir.Attr] = []
        self._all_attrs: list[ir.Attr] | None = None
        seen: set[int] = set()
        for site in own:
            # a truth test reads a name without using the value (`if db:`)
            if site.expr is not None and site.kind != ir.DEF and site.kind != ir.TRUTH:
                self._index(site.expr, _SITE_ROLES.get(site.kind, ROOT), seen)
        for name, value, order in assigns:
            self._bindings.setdefault(name, []).append((order, value))
            if type(value) is not ir.Annot:
                self._index(value, f"{ASSIGN}:{name}", seen)
        for pairs in self._bindings.values():
            pairs.sort(key=lambda p: p[0])

    @property
    def parents(self) -> dict[int, list[tuple[str, ir.Expr | None]]]:
        if not self._built:
            self._build()
        return self._parents

    @property
    def name_uses(self) -> dict[str, list[tuple[ir.Name, str, ir.Expr | None]]]:
        if not self._built:
            self._build()
        return self._name_uses

    @property
    def bindings(self) -> dict[str, list[tuple[int, ir.Expr]]]:
        if not self._built:
            self._build()
        return self._bindings

    @property
    def calls(self) -> dict[int, ir.Call]:
        if not self._built:
            self._build()
        return self._calls

    def _index(self, root: ir.Expr, role: str, seen: set[int]) -> None:
        stack: list[tuple[ir.Expr, str, ir.Expr | None]] = [(root, role, None)]
        while stack:
            node, r, p = stack.pop()
            key = id(node)
            if r != ROOT:
                entries = self._parents.setdefault(key, [])
                if (r, p) not in entries:
                    entries.append((r, p))
            if type(node) is ir.Name:
                self._name_uses.setdefault(node.id, []).append((node, r, p))
            if key in seen:
                continue
            seen.add(key)
            if type(node) is ir.Call:
                self._calls[node.site] = node
            elif type(node) is ir.Attr:
                self._attrs.append(node)
            for child, crole in children(node):
                stack.append((child, crole, node))

    # --- questions ------------------------------------------------------------------
    def attr_nodes(self) -> list[ir.Attr]:
        """Every attribute read of the body: those inside kept expressions, and `name.attr`
        reads anywhere else (dict displays, comprehension elements, conditions), rebuilt from
        `FuncIR.attr_reads`. Assignment targets are not included."""
        if not self._built:
            self._build()
        if self._all_attrs is None:
            out = list(self._attrs)
            seen = {(a.value.id, a.value.pos, a.attr) for a in out if type(a.value) is ir.Name}
            if self.fn is not None:
                for name, attr, pos in getattr(self.fn.ir, "attr_reads", ()):
                    if (name, pos, attr) not in seen:
                        seen.add((name, pos, attr))
                        out.append(ir.Attr(ir.Name(name, pos), attr))
            self._all_attrs = out
        return self._all_attrs

    def uses(self, node: ir.Expr) -> list[tuple[str, ir.Expr | None]]:
        """Where a node's value goes: (role, parent) pairs; roles "assign:<name>" at the top."""
        return self.parents.get(id(node), [])

    def reaching(self, name: str, pos: int, later: bool = False) -> tuple[int, ir.Expr] | None:
        """The binding of `name` a use at `pos` sees: the latest one before it (flow-insensitive).

        With `later`, a use that no binding precedes sees the next one: a comprehension's
        element is read before its `for` clause binds the name.
        """
        pairs = self.bindings.get(name)
        if not pairs:
            return None
        best = None
        for order, value in pairs:
            if pos < 0 or order < pos:
                best = (order, value)
            elif best is None and later and name not in (self.fn.params if self.fn is not None else ()):
                return order, value
        return best

    def uses_of_binding(self, name: str, order: int) -> Iterator[tuple[ir.Name, str, ir.Expr | None]]:
        """Uses of `name` that see the binding made at `order`."""
        for node, role, parent in self.name_uses.get(name, ()):
            hit = self.reaching(name, node.pos)
            if hit is not None and hit[0] == order:
                yield node, role, parent

    def eval(self, expr: ir.Expr) -> object:
        # several rules ask the same facts for the same values: a local dict is cheaper than
        # the model's memo; only values the model memoised are kept (the others may change)
        value = self._values.get(id(expr), _UNSET)
        if value is _UNSET:
            if expr is None:
                return None
            value, settled = self.model.eval_settled(expr, self.scope)
            if settled:
                self._values[id(expr)] = value
        return value

    def method_of(self, call: ir.Call) -> tuple[cat.Kind, str, cat.Method] | None:
        """For a call of a catalogue object's method: its kind, name and catalogue row."""
        func = self.eval(call.func)
        if not isinstance(func, VMethod):
            return None
        if func.alt:
            func = func.at(self.mod.ir.sites[call.site].awaited)
        k = cat.kind(func.kind)
        if k is None:
            return None
        m = k.methods.get(func.name) or k.other_methods
        return (k, func.name, m) if m is not None else None

    def external(self, expr: ir.Expr) -> str:
        """The qualified name an expression refers to, when it is a library name."""
        value = self.eval(expr)
        return value.qualname if isinstance(value, VExt) else ""

    def is_builtin(self, expr: ir.Expr, names: frozenset[str] | set[str]) -> bool:
        """A call target that is one of these builtins (not shadowed by the project)."""
        return type(expr) is ir.Name and expr.id in names and self.model.lookup(expr.id, self.scope) is None


def statement_text(model: ProjectModel, facts: FunctionFacts, expr: ir.Expr | None, depth: int = 0) -> str | None:
    """How the SQL text of a statement starts, as far as the code spells it: a string, an
    f-string's literal start, what `text(...)`/`sql.SQL(...)` wraps (also `.format(...)`ed), or
    that of what a project helper returns."""
    if expr is None or depth > 4:
        return None
    t = type(expr)
    if t is ir.Const:
        return expr.value if isinstance(expr.value, str) else None
    if t is ir.FStr:
        return expr.prefix
    if t is not ir.Call:
        return None
    func = expr.func
    if type(func) is ir.Attr and func.attr == "format":
        return statement_text(model, facts, func.value, depth + 1)  # `sql.SQL("...").format(...)`
    name = func.id if type(func) is ir.Name else func.attr if type(func) is ir.Attr else ""
    if name in _SQL_WRAPPERS:
        return statement_text(model, facts, expr.args[0], depth + 1) if expr.args else None
    value = facts.eval(func)
    if isinstance(value, VExt) and value.qualname.startswith("sqlalchemy."):
        return cat.DDL_CONSTRUCTS.get(value.qualname.rpartition(".")[2])  # `CreateSchema("s")`
    target = model.func(value) if isinstance(value, VFunc) else None
    if target is not None and target.ir.returns:
        helper = facts_of(model, target.module, target)
        return statement_text(model, helper, target.ir.returns[0], depth + 1)
    return None


#: calls that wrap SQL text into a statement object
_SQL_WRAPPERS = frozenset({"text", "SQL", "literal_column", "DDL"})


def first_text(expr: ir.Expr) -> str | None:
    """The first string (or f-string start) of an expression, in source order."""
    t = type(expr)
    if t is ir.Const:
        return expr.value if isinstance(expr.value, str) else None
    if t is ir.FStr:
        return expr.prefix
    for child, _role in children(expr):
        found = first_text(child)
        if found is not None:
            return found
    return None


#: builtins that run through the whole of an iterable they are given
CONSUMING = frozenset({"len", "list", "tuple", "set", "frozenset", "sorted", "sum", "any", "all", "min", "max",
                       "bool", "enumerate", "next", "dict"})


def evaluated_operand(facts: FunctionFacts, site: ir.Site) -> ir.Expr | None:
    """What a site runs as a whole: iterated (`for r in q`), tested for truth (`if q:`),
    indexed (`q[0]`) or handed to a consuming builtin (`len(q)`, `list(q)`)."""
    if site.kind == ir.ITER or site.kind == ir.TRUTH:
        return site.expr
    if site.kind == ir.SUB and type(site.expr) is ir.Sub:
        return site.expr.value
    if (site.kind == ir.CALL and type(site.expr) is ir.Call and site.expr.args
            and facts.is_builtin(site.expr.func, CONSUMING)):
        return site.expr.args[0]
    return None


def cached_evaluations(facts: FunctionFacts, site_ids: list[int]) -> set[int]:
    """Of these sites, those that evaluate a caching query (a peewee select, a Django
    queryset) which an earlier one of them, reading the same binding, already ran: the rows
    come from the query's result cache. Indexing a Django queryset runs a query of its own
    (`LIMIT 1`) and fills no cache."""
    sites = facts.mod.ir.sites
    ran: set[tuple[str, int]] = set()
    out: set[int] = set()
    for sid in sorted(site_ids):
        site = sites[sid]
        operand = evaluated_operand(facts, site)
        if type(operand) is not ir.Name:
            continue
        value = facts.eval(operand)
        if not isinstance(value, VKind) or value.kind not in cat.CACHING_QUERY_KINDS:
            continue
        kind = value.kind
        hit = facts.reaching(operand.id, operand.pos)
        key = (operand.id, hit[0] if hit is not None else -1)
        if key in ran:
            out.add(sid)
        elif site.kind != ir.SUB or kind != "django.QuerySet":
            ran.add(key)
    return out


# --- loops ----------------------------------------------------------------------------------


def facts_of(model: ProjectModel, mod: _Mod, fn: _Func | None) -> FunctionFacts:
    """The FunctionFacts of a function (or of a module's top level), one per model: the rules
    share it, and with it its index and the values it has evaluated (it only caches)."""
    memo = model.shared.get("flow.facts")  # (path, qualname or None) -> FunctionFacts
    if memo is None:
        memo = model.shared["flow.facts"] = {}
    key = (mod.ir.path, fn.ir.qualname if fn is not None else None)
    facts = memo.get(key)
    if facts is None:
        facts = memo[key] = FunctionFacts(model, mod, fn)
    return facts


def calls(model: ProjectModel, everywhere: bool = False) -> Iterator[tuple[FunctionFacts, ir.Site, ir.Call]]:
    """Every call site of the wanted modules (of all modules with `everywhere`), with the facts
    of the function it is in (or of the module's top level); one FunctionFacts per function.

    A module's list is made the first time it is walked (four rules walk them), so a frame
    walks its own file's calls, not the project's."""
    made = model.shared.get("flow.calls")
    if made is None:
        made = model.shared["flow.calls"] = {}
    modules = ((path, model.by_path[path]) for path in model.module_paths()) if everywhere \
        else model.focused_modules()
    for path, mod in modules:
        found = made.get(path)
        if found is None:
            found = made[path] = _calls_in(model, mod)
        yield from found


def _calls_in(model: ProjectModel, mod: _Mod) -> list[tuple[FunctionFacts, ir.Site, ir.Call]]:
    sites = mod.ir.sites
    units = [(None, [s.id for s in sites if not s.function])]
    units += [(fn, fn.ir.sites) for fn in mod.funcs.values()]
    found = []
    for fn, ids in units:
        facts = None
        for sid in ids:
            site = sites[sid]
            if site.kind == ir.CALL and type(site.expr) is ir.Call:
                if facts is None:
                    facts = facts_of(model, mod, fn)
                found.append((facts, site, site.expr))
    return found


def enclosing_loops(mod: _Mod, site: ir.Site) -> list[ir.Loop]:
    """The loops of its function around a site, innermost first."""
    out = []
    loops = mod.ir.loops
    i = site.loop_id
    while 0 <= i < len(loops):
        out.append(loops[i])
        i = loops[i].parent
    return out


def describe_loop(loop: ir.Loop) -> str:
    """`for user in users` style text for messages."""
    target = ", ".join(loop.targets) or "_"
    src = render(loop.iter) if loop.iter is not None else "..."
    head = "async for" if loop.is_async else "for"
    return f"{head} {target} in {src}"


def render(expr: ir.Expr | None, depth: int = 0) -> str:
    """A short source-like rendering of an expression (for messages only)."""
    if expr is None or depth > 4:
        return "..."
    t = type(expr)
    if t is ir.Name:
        return expr.id
    if t is ir.Attr:
        return f"{render(expr.value, depth + 1)}.{expr.attr}"
    if t is ir.Call:
        inner = ", ".join([render(a, depth + 1) for a in expr.args[:2]] + (["..."] if len(expr.args) > 2 or expr.kwargs
                                                                            else []))
        return f"{render(expr.func, depth + 1)}({inner})"
    if t is ir.Await:
        return f"await {render(expr.value, depth + 1)}"
    if t is ir.Const:
        return repr(expr.value)
    if t is ir.Sub:
        return f"{render(expr.value, depth + 1)}[...]"
    return "..."


# --- call graph -----------------------------------------------------------------------------


def callees(model: ProjectModel, fn: _Func) -> Iterator[tuple[ir.Site, _Func]]:
    """Project functions a function calls directly (plain calls and constructors' `__init__`)."""
    scope = _Scope(fn.module, fn)
    sites = fn.module.ir.sites
    for sid in fn.ir.sites:
        site = sites[sid]
        if site.kind != ir.CALL or not isinstance(site.expr, ir.Call):
            continue
        value = model.eval(site.expr.func, scope)
        target = None
        if isinstance(value, VFunc):
            target = model.func(value)
        elif isinstance(value, VClass):
            target = model.find_method(value.module, value.qualname, "__init__")
        if target is not None and target is not fn:
            yield site, target


# --- string constants -------------------------------------------------------------------------


def url_texts(model: ProjectModel, facts: FunctionFacts, expr: ir.Expr, depth: int,
              origin: str = "") -> Iterator[tuple[str, str]]:
    """Literal URL texts (or f-string prefixes) an expression may hold, with where they come from."""
    if depth > 8 or expr is None:
        return
    t = type(expr)
    if t is ir.Const and isinstance(expr.value, str):
        yield expr.value, origin
    elif t is ir.FStr:
        yield expr.prefix, origin or "an f-string"
    elif t is ir.Union_:
        for item in expr.items:
            yield from url_texts(model, facts, item, depth + 1, origin)
    elif t is ir.Name:
        hit = facts.reaching(expr.id, expr.pos)
        if hit is not None:
            yield from url_texts(model, facts, hit[1], depth + 1, origin)
            return
        if facts.fn is not None and expr.id in facts.fn.params:
            return
        yield from module_constant(model, facts.mod, expr.id, depth, origin)
    elif t is ir.Attr and type(expr.value) is ir.Name:
        # a constant of another module: `config.DATABASE_URL`
        target = facts.eval(expr.value)
        if isinstance(target, VMod):
            other = model.mods.get(target.name)
            if other is not None:
                yield from module_constant(model, other, expr.attr, depth, origin)
    elif t is ir.Call:
        q = facts.external(expr.func)
        if q in ("os.getenv", "os.environ.get", "os.environ.setdefault") and len(expr.args) >= 2:
            yield from url_texts(model, facts, expr.args[1], depth + 1, origin or f"the default of `{q}(...)`")
        elif q in ("os.getenv", "os.environ.get") and "default" in dict(expr.kwargs):
            yield from url_texts(model, facts, dict(expr.kwargs)["default"], depth + 1,
                                 origin or f"the default of `{q}(...)`")
        elif q.endswith("URL.create"):
            driver = expr.args[0] if expr.args else dict(expr.kwargs).get("drivername")
            for text, why in url_texts(model, facts, driver, depth + 1, origin or "`URL.create(...)`"):
                yield text + "://", why
        elif q in ("sqlalchemy.engine.make_url", "sqlalchemy.make_url", "sqlalchemy.engine.url.make_url") \
                and expr.args:
            yield from url_texts(model, facts, expr.args[0], depth + 1, origin)


def module_constant(model: ProjectModel, mod: _Mod, name: str, depth: int, origin: str) -> Iterator[tuple[str, str]]:
    """Literal texts of a module-level constant (following `from x import NAME`)."""
    exprs = mod.assigns.get(name)
    if exprs:
        facts = FunctionFacts(model, mod, None)
        why = origin or f"`{name}`"
        for e in exprs[:1]:  # the latest module-level binding
            yield from url_texts(model, facts, e, depth + 1, why)
        return
    target = mod.imports.get(name)
    if target is not None:
        mod_name, _, attr = target.rpartition(".")
        other = model.find_module(mod_name, mod.ir.name) if mod_name else None
        if other is not None and other is not mod:
            yield from module_constant(model, other, attr, depth + 1, origin)
