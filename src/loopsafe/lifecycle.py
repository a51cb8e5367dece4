"""Session and connection lifecycles: who creates a DB session, who closes it, who else holds it.

The LOOP2xx rules ask this module, never the syntax, the same few questions:

- which calls *create* a session or connection that someone must close
  (`SessionLocal()`, `Session(engine)`, `async_sessionmaker()()`, `engine.connect()`,
  `sqlite3.connect()`, `psycopg2.connect()`, a project helper that returns a fresh one...);
- for a local name bound to one, what happens to it in its function: closed (and where:
  `finally`, `except`, `with`), returned or yielded, stored, handed to a callee that keeps or
  closes it, captured by a nested function;
- which values reaching a function are request-scoped sessions (from `Depends`, or put on
  `request.state` by a middleware), and which expressions are the "same" session.

Everything is built on `ProjectModel` (kinds of values, dependencies, routes) and the per-site
facts of the summaries (a site's role in its `try` statement, its loop depth, its span). The
analysis is flow-insensitive and deliberately cautious: whenever ownership could have moved
somewhere the summary does not show, the answer is "owned elsewhere" and the rules stay silent.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from loopsafe import catalogue as cat
from loopsafe import ir
from loopsafe.flow import facts_of
from loopsafe.semantic import ProjectModel, VClass, VExt, VFunc, VInst, VKind, VMethod, _Func, _Mod, _Scope, module_fact, project_fact, union

# --- vocabulary ---------------------------------------------------------------------------

#: objects that hold (or will check out) a DB connection and must be closed by their owner
SESSION_KINDS = frozenset({
    "sqlalchemy.Session", "sqlalchemy.AsyncSession", "sqlalchemy.Connection", "sqlalchemy.StreamingConnection",
    "sqlalchemy.AsyncConnection", "dbapi.Connection", "sqlite3.Connection", "psycopg2.Connection",
    "psycopg.Connection", "psycopg.AsyncConnection", "mysql.Connection",
})
#: kinds SQLAlchemy forbids using from concurrent tasks
ASYNC_SQLA_KINDS = frozenset({"sqlalchemy.AsyncSession", "sqlalchemy.AsyncConnection"})
#: sync kinds that must not be used from two threads at once
SYNC_SQLA_KINDS = frozenset({"sqlalchemy.Session", "sqlalchemy.Connection"})
#: factories whose call creates a session
FACTORY_KINDS = frozenset({"sqlalchemy.SessionFactory", "sqlalchemy.AsyncSessionFactory"})
#: (kind, method) pairs that create a session/connection
#: (`engine.begin()`, `SessionLocal.begin()` are context managers: outside `with` they hold nothing)
_CREATING_METHODS = frozenset({
    ("sqlalchemy.Engine", "connect"), ("sqlalchemy.Engine", "raw_connection"), ("sqlalchemy.AsyncEngine", "connect"),
})
#: session classes whose constructor takes the bind (engine or connection) as first argument
_BINDABLE = frozenset({"sqlalchemy.Session", "sqlalchemy.AsyncSession"})
#: catalogue names whose call returns a session kind but creates nothing the caller must close
_NOT_CREATING = ("async_scoped_session",)


def _in_memory(call: ir.Call) -> bool:
    """`sqlite3.connect(":memory:")`: nothing outside the process is held (no file, no server);
    an unclosed one costs memory until it is collected, as any object does."""
    target = call.args[0] if call.args else dict(call.kwargs).get("database")
    return type(target) is ir.Const and target.value == ":memory:"
#: kinds whose `with x:` only commits or rolls back and leaves the connection open (R7)
WITH_DOES_NOT_CLOSE = frozenset({"sqlite3.Connection", "psycopg2.Connection"})
#: method names that close a session/connection
CLOSE_METHODS = frozenset({"close", "aclose"})
#: builtins that look at an object without keeping it
_NON_OWNING_BUILTINS = frozenset({"isinstance", "print", "repr", "str", "id", "type", "hasattr", "getattr", "len",
                                  "bool", "callable", "vars", "dir", "hash"})
#: library functions known to use a connection they are given without closing or keeping it
_NON_OWNING_EXTERNALS = frozenset({
    "pandas.read_sql", "pandas.read_sql_query", "pandas.read_sql_table", "pandas.io.sql.read_sql",
    "pandas.io.sql.read_sql_query", "pandas.io.sql.read_sql_table", "polars.read_database",
    "psycopg2.extras.execute_values", "psycopg2.extras.execute_batch", "sqlalchemy.inspect",
})
_NON_OWNING_METHODS = frozenset({"to_sql"})
_LOGGING_METHODS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical", "log"})
BACKGROUND_TASKS = frozenset({"fastapi.BackgroundTasks", "fastapi.background.BackgroundTasks",
                              "starlette.background.BackgroundTasks"})
BACKGROUND_TASK = frozenset({"starlette.background.BackgroundTask", "fastapi.background.BackgroundTask"})
CREATE_TASK = frozenset({"asyncio.create_task", "asyncio.ensure_future", "asyncio.tasks.create_task",
                         "asyncio.tasks.ensure_future"})
THREADS = frozenset({"threading.Thread"})
GATHER = frozenset({"asyncio.gather", "asyncio.tasks.gather"})
WAIT_ALL = frozenset({"asyncio.wait", "asyncio.as_completed", "asyncio.tasks.wait", "asyncio.tasks.as_completed"})
TASK_GROUPS = frozenset({"asyncio.TaskGroup", "asyncio.taskgroups.TaskGroup", "anyio.create_task_group"})
SCOPED_SESSION = "sqlalchemy.ScopedSession"
PYTEST_FIXTURES = frozenset({"pytest.fixture", "pytest_asyncio.fixture"})


def label(kind: str) -> str:
    k = cat.kind(kind)
    return k.label if k is not None else kind


def strip(expr: ir.Expr | None) -> ir.Expr | None:
    """The value under `await` and parentheses-like wrappers."""
    while type(expr) is ir.Await:
        expr = expr.value
    return expr


def path_of(expr: ir.Expr | None) -> str | None:
    """`db` -> "db", `self.session` -> "self.session", `request.state.db` -> "request.state.db"."""
    expr = strip(expr)
    if type(expr) is ir.Name:
        return expr.id
    if type(expr) is ir.Attr:
        base = path_of(expr.value)
        return f"{base}.{expr.attr}" if base is not None else None
    return None


# --- occurrences --------------------------------------------------------------------------


# not frozen (nothing assigns its fields; hashable all the same): ~35k are made per run on
# frigate, and a frozen dataclass's __init__ is five times slower
@dataclass(slots=True, unsafe_hash=True)
class Occ:
    """One place a name (or a call) appears in a function, and what encloses it.

    `how` is the immediate context: "recv" (receiver of a method call `x.m()`, `attr` = m),
    "attr" (`x.a` read, not called), "arg" (argument `key` of `call`), "func" (called itself),
    "assign" (the whole value bound to `target`), "return", "yield", "store", "with",
    "container" (inside a list/tuple/set), "sub", "iter", "stmt" (an expression statement or a
    place the summary does not model).
    `root` is the outermost context ("assign", "return", "yield", "store", "with", "stmt", ...)
    and `root_site` its site id when it has one (returns, yields, stores, with items).
    """

    how: str
    call: ir.Call | None = None
    key: object = None  # argument index or keyword
    attr: str = ""
    target: str = ""
    root: str = ""
    root_site: int = -1


@dataclass
class FnFacts:
    """Where every name, call and nested function of one function appears."""

    names: dict[str, list[Occ]] = field(default_factory=dict)
    calls: dict[int, Occ] = field(default_factory=dict)  # call site id -> its context
    funcrefs: list[tuple[str, Occ]] = field(default_factory=list)
    call_exprs: dict[int, ir.Call] = field(default_factory=dict)


def _collect(fn: _Func, sites: tuple[ir.Site, ...]) -> FnFacts:
    facts = FnFacts()

    def visit(expr: ir.Expr | None, occ: Occ) -> None:
        t = type(expr)
        if t is ir.Name:
            facts.names.setdefault(expr.id, []).append(occ)
        elif t is ir.Await:
            visit(expr.value, occ)
        elif t is ir.Union_:
            for item in expr.items:
                visit(item, occ)
        elif t is ir.Attr:
            if occ.how == "func" and occ.call is not None:
                visit(expr.value, Occ("recv", occ.call, attr=expr.attr, root=occ.root, root_site=occ.root_site))
            else:
                visit(expr.value, Occ("attr", attr=expr.attr, root=occ.root, root_site=occ.root_site))
        elif t is ir.Call:
            facts.calls.setdefault(expr.site, occ)
            facts.call_exprs[expr.site] = expr
            visit(expr.func, Occ("func", expr, root=occ.root, root_site=occ.root_site))
            for i, arg in enumerate(expr.args):
                visit(arg, Occ("arg", expr, key=i, root=occ.root, root_site=occ.root_site))
            for k, v in expr.kwargs:
                visit(v, Occ("arg", expr, key=k, root=occ.root, root_site=occ.root_site))
        elif t is ir.Seq:
            for item in expr.items:
                visit(item, Occ("container", root=occ.root, root_site=occ.root_site))
        elif t is ir.Sub:
            visit(expr.value, Occ("sub", root=occ.root, root_site=occ.root_site))
            for item in expr.index:
                visit(item, Occ("container", root=occ.root, root_site=occ.root_site))
        elif t is ir.Enter:
            visit(expr.value, Occ("with", root="with", root_site=occ.root_site))
        elif t is ir.IterOf:
            visit(expr.value, Occ("iter", root=occ.root, root_site=occ.root_site))
        elif t is ir.FuncRef:
            facts.funcrefs.append((expr.qualname, occ))

    for name, value, _order in fn.ir.assigns:
        if name.startswith("<"):
            continue
        if "." in name:
            continue  # attribute stores are STORE sites
        visit(value, Occ("assign", target=name, root="assign"))
    for sid in fn.ir.sites:
        site = sites[sid]
        if site.kind == ir.RETURN:
            visit(site.expr, Occ("return", root="return", root_site=sid))
        elif site.kind == ir.YIELD:
            visit(site.expr, Occ("yield", root="yield", root_site=sid))
        elif site.kind == ir.STORE and type(site.expr) is ir.Store:
            visit(site.expr.value, Occ("store", root="store", root_site=sid))
        elif site.kind == ir.WITH:
            visit(site.expr, Occ("with", root="with", root_site=sid))
        elif site.kind == ir.ITER:
            visit(site.expr, Occ("iter", root="iter", root_site=sid))
    for item in getattr(fn.ir, "async_with", ()):
        visit(item, Occ("with", root="with"))
    # calls not reached from any binding, return, store...: expression statements, conditions
    for sid in sorted(fn.ir.sites):
        site = sites[sid]
        if site.kind == ir.CALL and sid not in facts.calls and type(site.expr) is ir.Call:
            visit(site.expr, Occ("stmt", root="stmt", root_site=sid))
    for name in getattr(fn.ir, "opaque", ()):
        facts.names.setdefault(name, []).append(Occ("stmt", root="opaque"))
    return facts


# --- the model of lifecycles --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Creation:
    call: ir.Call
    kind: str
    #: a project helper returning a fresh session, when the creation goes through one
    via: str = ""


@dataclass
class Fate:
    """What a function does with the session bound to a group of local names."""

    names: frozenset
    closes: list = field(default_factory=list)  # close Call exprs
    safe_close: bool = False  # a close in finally/except, or a `with` on it
    transferred: bool = False  # returned, yielded, stored, kept by a callee, captured...
    #: transferred only by lending: handed to a callee that may keep it, or captured by a
    #: nested function (the function may still own it: it may close it itself)
    lent_only: bool = True
    yields: list = field(default_factory=list)  # yield site ids handing it out
    unknown: bool = False  # bound to something else too: no conclusion


_UNSET = object()


class Lifecycles:
    """Session-object tracking over a ProjectModel (one per model, memoised)."""

    def __init__(self, model: ProjectModel) -> None:
        self.model = model
        self._facts: dict[tuple[str, str], FnFacts] = {}
        self._creation: dict = {}
        self._fresh: dict = {}
        self._owns: dict = {}
        self._in_progress: set = set()

    # --- basics -------------------------------------------------------------------------
    def facts(self, fn: _Func) -> FnFacts:
        key = (fn.module.ir.path, fn.ir.qualname)
        got = self._facts.get(key)
        if got is None:
            got = self._facts[key] = _collect(fn, fn.module.ir.sites)
        return got

    def children(self, fn: _Func) -> Iterator[_Func]:
        """Functions (defs and lambdas) nested in fn, at any depth."""
        prefix = fn.ir.qualname + "."
        for other in fn.module.funcs.values():
            if other.ir.parent and other.ir.qualname.startswith(prefix):
                yield other

    def captured(self, fn: _Func, names: frozenset) -> bool:
        """Does a function nested in fn refer to one of these names of fn (a closure)?"""
        for child in self.children(fn):
            facts = self.facts(child)
            for name in names:
                if name in facts.names and name not in child.params and name not in child.assigns:
                    return True
        return False

    def decorator_names(self, fn: _Func) -> set[str]:
        scope = _Scope(fn.module, fn.module.funcs.get(fn.ir.parent) if fn.ir.parent else None)
        out = set()
        for dec in fn.ir.decorators:
            target = dec.func if type(dec) is ir.Call else dec
            value = self.model.eval(target, scope)
            if isinstance(value, VExt):
                out.add(value.qualname)
        return out

    # --- creation -----------------------------------------------------------------------
    def creation(self, call: ir.Call, scope: _Scope, depth: int = 0) -> Creation | None:
        """Does this call create a session/connection its caller must close?"""
        key = (id(call), scope.key)
        got = self._creation.get(key, _UNSET)  # one lookup: most calls are hits
        if got is not _UNSET:
            return got
        self._creation[key] = None
        out = self._creation_uncached(call, scope, depth)
        self._creation[key] = out
        return out

    def _creation_uncached(self, call: ir.Call, scope: _Scope, depth: int) -> Creation | None:
        model = self.model
        func = model.eval(call.func, scope)
        if func is None:
            return None
        kind = None
        via = ""
        if isinstance(func, VKind) and func.kind in FACTORY_KINDS:
            if self._borrows_connection(call, scope):
                return None
            k = cat.kind(func.kind)
            kind = k.call_kind if k is not None else None
        elif isinstance(func, VMethod) and (func.kind, func.name) in _CREATING_METHODS:
            k = cat.kind(func.kind)
            m = k.methods.get(func.name) if k is not None else None
            kind = m.returns if m is not None else None
        elif isinstance(func, VExt):
            if func.qualname.endswith(_NOT_CREATING):
                return None
            entry = model.entry(func.qualname)
            if entry is not None and entry.returns in SESSION_KINDS:
                kind = entry.returns
                if entry.returns in _BINDABLE and not self._binds_engine(call, scope):
                    return None
                if kind == "sqlite3.Connection" and _in_memory(call):
                    return None
        elif isinstance(func, VFunc) and depth < 3:
            fn = model.func(func)
            if fn is not None:
                kind = self.fresh_factory(fn, depth + 1)
                via = fn.ir.qualname
        if kind in SESSION_KINDS:
            return Creation(call, kind, via)
        return None

    def kept_by_init(self, call: ir.Call, scope: _Scope) -> tuple[str, Creation] | None:
        """`store = Store()` where `Store.__init__` does `self.conn = sqlite3.connect(...)`:
        (`self.conn`, the creation), for the first such attribute."""
        cls = self.model.eval(call.func, scope)
        if not isinstance(cls, VClass):
            return None
        init = self.model.find_method(cls.module, cls.qualname, "__init__")
        if init is None or not init.ir.params:
            return None
        me = init.ir.params[0].name + "."
        for name, value, _order in init.ir.assigns:
            value = strip(value)
            if name.startswith(me) and name.count(".") == 1 and type(value) is ir.Call:
                made = self.creation(value, _Scope(init.module, init))
                if made is not None:
                    return name, made
        return None

    def _binds_engine(self, call: ir.Call, scope: _Scope) -> bool:
        """`Session(engine)`: a session that checks out its own connections. A session bound to
        a connection it was given (`Session(bind=op.get_bind())` in a migration, a test's outer
        transaction) borrows it; not closing it leaks no connection; a bare `Session()` has
        nothing to connect with (test code that mocks its queries). Unknown binds: silence."""
        bind = call.args[0] if call.args else dict(call.kwargs).get("bind")
        if bind is None:
            return False
        value = self.model.eval(bind, scope)
        return isinstance(value, VKind) and value.kind in ("sqlalchemy.Engine", "sqlalchemy.AsyncEngine")

    def _borrows_connection(self, call: ir.Call, scope: _Scope) -> bool:
        """`factory()` where this function gave the factory a bind that is not an engine:
        `async_sessionmaker(bind=conn)()`, `maker = sessionmaker(bind=conn)` then `maker()`, or
        `factory.configure(bind=conn)` then `factory()`. Its sessions borrow that connection,
        as `Session(bind=conn)` does (`_binds_engine`); a factory made elsewhere keeps its bind."""
        target = strip(call.func)
        made = target if type(target) is ir.Call else None
        if type(target) is ir.Name and scope.fn is not None:
            hit = facts_of(self.model, scope.mod, scope.fn).reaching(target.id, target.pos)
            value = strip(hit[1]) if hit is not None else None
            made = value if type(value) is ir.Call else None
        if made is not None and self._makes_factory(made, scope) and (made.args or dict(made.kwargs).get("bind")):
            return not self._binds_engine(made, scope)
        receiver = path_of(target)
        if receiver is None or scope.fn is None:
            return False
        configured = None
        sites = scope.mod.ir.sites
        for sid in scope.fn.ir.sites:
            expr = sites[sid].expr
            if sid < call.site and type(expr) is ir.Call and type(expr.func) is ir.Attr \
                    and expr.func.attr == "configure" and "bind" in dict(expr.kwargs) \
                    and path_of(expr.func.value) == receiver:
                configured = expr
        return configured is not None and not self._binds_engine(configured, scope)

    def _makes_factory(self, call: ir.Call, scope: _Scope) -> bool:
        """Is this a call of `sessionmaker` / `async_sessionmaker` (or the like)?"""
        func = self.model.eval(call.func, scope)
        entry = self.model.entry(func.qualname) if isinstance(func, VExt) else None
        return entry is not None and entry.returns in FACTORY_KINDS

    def fresh_factory(self, fn: _Func, depth: int = 0) -> str | None:
        """A plain project function every `return` of which hands out a new session: its kind."""
        key = (fn.module.ir.path, fn.ir.qualname)
        if key in self._fresh:
            return self._fresh[key]
        self._fresh[key] = None
        if fn.ir.is_generator or fn.ir.decorators or not fn.ir.returns:
            return None
        scope = _Scope(fn.module, fn)
        kinds = set()
        for expr in fn.ir.returns:
            expr = strip(expr)
            if type(expr) is ir.Call:
                made = self.creation(expr, scope, depth)
                if made is None:
                    return None
                kinds.add(made.kind)
            elif type(expr) is ir.Name:
                fate = self.fate(fn, expr.id, depth)
                if fate is None or fate.unknown:
                    return None
                made_kinds = self.group_kinds(fn, fate.names, depth)
                if not made_kinds or fate.closes:
                    return None
                # handed out only by `return`: nothing else keeps it
                if self._escapes_besides_return(fn, fate.names):
                    return None
                kinds |= made_kinds
            else:
                return None
        out = kinds.pop() if len(kinds) == 1 else None
        self._fresh[key] = out
        return out

    def group_kinds(self, fn: _Func, names: frozenset, depth: int = 0) -> set[str]:
        scope = _Scope(fn.module, fn)
        kinds = set()
        for name in names:
            for _order, value in fn.assigns.get(name, ()):
                value = strip(value)
                if type(value) is ir.Call:
                    made = self.creation(value, scope, depth)
                    if made is not None:
                        kinds.add(made.kind)
        return kinds

    def _escapes_besides_return(self, fn: _Func, names: frozenset) -> bool:
        facts = self.facts(fn)
        for name in names:
            for occ in facts.names.get(name, ()):
                if occ.root in ("store", "yield", "opaque") or occ.how == "container":
                    return True
                if occ.how == "arg" and occ.root != "return":
                    return True
        return self.captured(fn, names)

    # --- what a function does with a name -------------------------------------------------
    def bound_creation(self, fn: _Func, name: str) -> list[Creation]:
        scope = _Scope(fn.module, fn)
        out = []
        for _order, value in fn.assigns.get(name, ()):
            value = strip(value)
            if type(value) is ir.Call:
                made = self.creation(value, scope)
                if made is not None:
                    out.append(made)
        return out

    def fate(self, fn: _Func, name: str, depth: int = 0, managed_yield: bool = False) -> Fate | None:
        """Follow a local name bound to a creation (and its plain aliases) through fn.

        None when the name is not a plain local (a parameter, a global).
        `managed_yield`: the function is a generator whose caller does not own what it yields
        (a FastAPI dependency, a `@contextmanager`): a yield hands the session out for a while,
        it does not give it away.
        """
        if name in fn.params or name in fn.ir.globals_:
            return None
        facts = self.facts(fn)
        scope = _Scope(fn.module, fn)
        group = {name}
        fate = Fate(frozenset())
        changed = True
        while changed:
            changed = False
            for member in list(group):
                for occ in facts.names.get(member, ()):
                    if occ.how == "assign" and occ.target not in group:
                        alias = occ.target
                        values = [strip(v) for _o, v in fn.assigns.get(alias, ()) if not _is_none(v)]
                        if alias not in fn.params and all(type(v) is ir.Name and v.id in group or
                                                          type(v) is ir.Call and self.creation(v, scope, depth)
                                                          for v in values):
                            group.add(alias)
                            changed = True
        fate.names = frozenset(group)
        # every binding must be a creation or an alias inside the group
        for member in group:
            for _order, value in fn.assigns.get(member, ()):
                if _is_none(value):
                    continue
                v = strip(value)
                if type(v) is ir.Name and v.id in group:
                    continue
                if type(v) is ir.Call and self.creation(v, scope, depth) is not None:
                    continue
                fate.unknown = True
        kinds = self.group_kinds(fn, fate.names, depth)
        for member in group:
            for occ in facts.names.get(member, ()):
                how = occ.how
                if managed_yield and occ.root == "yield":
                    if occ.root_site >= 0:
                        fate.yields.append(occ.root_site)
                    continue
                if how == "recv":
                    if occ.attr in CLOSE_METHODS:
                        fate.closes.append(occ.call)
                        if in_cleanup(fn, occ.call.site):
                            fate.safe_close = True
                    elif occ.attr.startswith("__"):
                        fate.transferred, fate.lent_only = True, False
                    elif occ.attr == "begin" and occ.call is not None and \
                            getattr(facts.calls.get(occ.call.site), "how", "") == "with":
                        # `with session.begin():` ends the transaction on every path, which gives
                        # the connection back to the pool: what is left holds nothing
                        fate.safe_close = True
                        fate.closes.append(None)
                    continue
                if how == "attr":
                    if occ.attr in CLOSE_METHODS or occ.attr.startswith("__"):
                        fate.transferred, fate.lent_only = True, False  # `stack.callback(db.close)`
                    continue
                if how in ("sub", "iter", "func"):
                    continue
                if how == "with":
                    if not kinds or kinds - WITH_DOES_NOT_CLOSE:
                        fate.safe_close = True
                        fate.closes.append(None)
                    continue
                if how == "assign":
                    if occ.target not in group:
                        fate.transferred, fate.lent_only = True, False
                    continue
                if how == "arg":
                    if not self._arg_is_harmless(fn, occ, depth):
                        fate.transferred = True
                    continue
                if how in ("return", "yield"):
                    fate.transferred, fate.lent_only = True, False
                    if how == "yield" and occ.root_site >= 0:
                        fate.yields.append(occ.root_site)
                    continue
                # store, container, stmt/opaque: kept somewhere we cannot follow
                fate.transferred, fate.lent_only = True, False
        if self.captured(fn, fate.names):
            fate.transferred = True
        return fate

    def _arg_is_harmless(self, fn: _Func, occ: Occ, depth: int) -> bool:
        """Passing the session to this call neither closes it nor lets the callee keep it."""
        call = occ.call
        if call is None:
            return False
        if any(k in ("*", "**") for k, _v in call.kwargs):
            return False
        model = self.model
        scope = _Scope(fn.module, fn)
        func = model.eval(call.func, scope)
        f = call.func
        if type(f) is ir.Attr and f.attr in _LOGGING_METHODS and "log" in (path_of(f.value) or "").lower():
            return True  # `logger.info("session %s", db)`
        if type(f) is ir.Attr and f.attr in _NON_OWNING_METHODS and not isinstance(func, (VFunc, VClass)):
            return True  # `df.to_sql("t", conn)`
        if func is None:
            return type(f) is ir.Name and f.id in _NON_OWNING_BUILTINS and model.lookup(f.id, scope) is None
        if isinstance(func, VExt) and func.qualname in _NON_OWNING_EXTERNALS:
            return True
        if isinstance(func, VMethod):
            k = cat.kind(func.kind)
            # a session/query method given the session (`other.merge(db)`): a use, never a keeper
            return k is not None and func.name not in CLOSE_METHODS and func.kind in SESSION_KINDS | {
                "sqlalchemy.Query", "sqlalchemy.Result"}
        if isinstance(func, VFunc):
            callee = model.func(func)
            if callee is None or func.closure:
                return False
            params = [p for p in callee.ir.params]
            if callee.ir.method_type in ("instance", "class") and params and (
                    func.bound is not None or callee.ir.method_type == "class"):
                params = params[1:]
            return self._param_not_kept(callee, params, occ.key, depth)
        if isinstance(func, VClass):
            init = model.find_method(func.module, func.qualname, "__init__")
            if init is None:
                return False  # dataclasses and the like keep their arguments
            return self._param_not_kept(init, list(init.ir.params[1:]), occ.key, depth)
        return False

    def _param_not_kept(self, callee: _Func, params: list, key, depth: int) -> bool:
        name = None
        if isinstance(key, int):
            if key < len(params) and not params[key].star:
                name = params[key].name
        else:
            for p in params:
                if p.name == key and not p.star:
                    name = p.name
        if name is None:
            return False  # lands in *args/**kwargs: cannot follow
        return not self.keeps_param(callee, name, depth + 1)

    def keeps_param(self, callee: _Func, param: str, depth: int = 0) -> bool:
        """Does the callee close the session passed in `param`, or keep it beyond the call?"""
        key = (callee.module.ir.path, callee.ir.qualname, param)
        if key in self._owns:
            return self._owns[key]
        if depth > 4 or key in self._in_progress:
            return True
        self._in_progress.add(key)
        try:
            out = self._keeps_param(callee, param, depth)
        finally:
            self._in_progress.discard(key)
        self._owns[key] = out
        return out

    def _keeps_param(self, callee: _Func, param: str, depth: int) -> bool:
        # a decorator may keep what the call is given (a cache, a registry); `@classmethod`
        # and `@staticmethod` only change how the method is bound
        if callee.ir.is_generator or any(not (type(d) is ir.Name and d.id in ("classmethod", "staticmethod"))
                                         for d in callee.ir.decorators):
            return True
        facts = self.facts(callee)
        if callee.assigns.get(param):
            return True  # rebound: too clever to follow
        for occ in facts.names.get(param, ()):
            how = occ.how
            if how == "recv":
                if occ.attr in CLOSE_METHODS or occ.attr.startswith("__"):
                    return True
                continue
            if how == "attr":
                if occ.attr in CLOSE_METHODS or occ.attr.startswith("__"):
                    return True
                continue
            if how in ("sub", "iter", "func"):
                continue
            if how == "arg":
                if not self._arg_is_harmless(callee, occ, depth):
                    return True
                continue
            return True  # returned, stored, aliased, with-ed, in a container, opaque
        return self.captured(callee, frozenset({param}))

    # --- FastAPI ------------------------------------------------------------------------
    def reachable(self, fn: _Func) -> bool:
        """Is fn called, directly or through a few project functions, by a route or dependency?"""
        return self.model.fact_has("lifecycle.reachable", (fn.module.ir.path, fn.ir.qualname))

    def is_dependency(self, fn: _Func) -> bool:
        return self.model.is_dependency(fn)

    def generator_kind(self, fn: _Func) -> str:
        """"dependency", "contextmanager", "fixture" or "" for a generator function."""
        if not fn.ir.is_generator:
            return ""
        decorators = self.decorator_names(fn)
        if decorators & cat.CONTEXTMANAGER_DECORATORS:
            return "contextmanager"
        if decorators & PYTEST_FIXTURES:
            return "fixture"
        if self.is_dependency(fn):
            return "dependency"
        return ""

    def depends_call(self, fn: _Func, param: ir.Param) -> tuple[ir.Call, _Scope] | None:
        return self.model.depends_call(fn, param)

    def request_sessions(self, fn: _Func) -> dict[str, tuple[str, ir.Call | None, str]]:
        """Request-scoped sessions visible in fn: path -> (kind, the Depends call, origin).

        origin is "depends" for a parameter FastAPI fills from a dependency, "middleware" for
        `request.state.<attr>` that a middleware of the project sets to a new session.
        """
        out: dict[str, tuple[str, ir.Call | None, str]] = {}
        scope = _Scope(fn.module, fn)
        for param in fn.ir.params:
            if param.star:
                continue
            found = self.depends_call(fn, param)
            if found is None:
                continue
            dep, dep_scope = found
            value = self.model.param_value(fn, param.name, scope)
            if not (isinstance(value, VKind) and value.kind in SESSION_KINDS):
                continue
            origin = self.dependency_origin(dep, dep_scope)
            if origin:
                out[param.name] = (value.kind, dep, origin)
        return out

    def dependency_origin(self, dep: ir.Call, outer: _Scope) -> str:
        """Who closes what `Depends(dep)` provides: "depends" (a yield dependency's teardown),
        "middleware" (a plain dependency handing out `request.state.<x>`), or "" (unknown, or
        nobody: a returned new session is LOOP202's business)."""
        target = dep.args[0] if dep.args else dict(dep.kwargs).get("dependency")
        value = self.model.eval(target, outer) if target is not None else None
        if isinstance(value, VInst):
            call = self.model.find_method(value.module, value.qualname, "__call__")
            value = VFunc(call.module.ir.path, call.ir.qualname) if call is not None else None
        if not isinstance(value, VFunc):
            return ""
        dep_fn = self.model.func(value)
        if dep_fn is None:
            return ""
        if dep_fn.ir.is_generator:
            return "depends"
        for expr in dep_fn.ir.returns:
            p = path_of(expr)
            if p is not None and ".state." in p:
                return "middleware"
            if type(strip(expr)) is ir.Name:
                for _o, v in dep_fn.assigns.get(strip(expr).id, ()):
                    vp = path_of(v)
                    if vp is not None and ".state." in vp:
                        return "middleware"
        return ""

    def middleware_attrs(self) -> frozenset[str]:
        """Attributes some function sets on `request.state` to a new session."""
        return self.model.fact("lifecycle.middleware_attrs")

    def is_background_tasks(self, fn: _Func, expr: ir.Expr) -> bool:
        """`background_tasks` in `background_tasks.add_task(...)`: a BackgroundTasks object?"""
        model = self.model
        scope = _Scope(fn.module, fn)
        value = model.eval(expr, scope)
        if isinstance(value, (VInst, VClass, VKind, VFunc)):
            return False
        if type(expr) is ir.Name:
            if expr.id in fn.params:
                ann = fn.params[expr.id].annotation
                if ann is not None:
                    outer = _Scope(fn.module, fn.module.funcs.get(fn.ir.parent) if fn.ir.parent else None)
                    a = model.eval(ann, outer)
                    return isinstance(a, VExt) and a.qualname in BACKGROUND_TASKS
                return True
            for _o, v in fn.assigns.get(expr.id, ()):
                v = strip(v)
                if type(v) is ir.Call:
                    f = model.eval(v.func, scope)
                    if isinstance(f, VExt) and f.qualname in BACKGROUND_TASKS:
                        return True
            return False
        return True  # `self.tasks`, `request.state.tasks`: only BackgroundTasks has add_task


def defining_calls(model: ProjectModel, fn: _Func | None, mod, expr: ir.Expr, depth: int = 0) -> list[ir.Call]:
    """The calls a name was bound to (`Session = scoped_session(...)`): in fn and its parents, at
    module level, or in the module it was imported from."""
    expr = strip(expr)
    if (type(expr) is ir.Attr and type(expr.value) is ir.Name and fn is not None and fn.ir.class_name
            and fn.ir.params and expr.value.id == fn.ir.params[0].name and fn.ir.method_type == "instance"):
        # `self.Session = scoped_session(...)` (or `= Registry`, made elsewhere) in a method
        out: list[ir.Call] = []
        for owner, value in fn.module.self_attrs.get(f"{fn.ir.class_name}.{expr.attr}", ()):
            value = strip(value)
            if type(value) is ir.Call:
                out.append(value)
            elif type(value) is ir.Name:
                out.extend(defining_calls(model, owner, owner.module, value, depth + 1))
        return out
    if type(expr) is not ir.Name or depth > 4:
        return []
    name = expr.id
    scope_fn = fn
    while scope_fn is not None:
        values = [strip(v) for _o, v in scope_fn.assigns.get(name, ())]
        if values:
            return [v for v in values if type(v) is ir.Call]
        scope_fn = scope_fn.module.funcs.get(scope_fn.ir.parent) if scope_fn.ir.parent else None
    values = [strip(v) for v in mod.assigns.get(name, ())]
    if values:
        return [v for v in values if type(v) is ir.Call]
    target = mod.imports.get(name)
    if target:
        mod_name, _, attr = target.rpartition(".")
        other = model.find_module(mod_name, mod.ir.name) if mod_name else None
        if other is not None and other is not mod:
            return defining_calls(model, None, other, ir.Name(attr), depth + 1)
    return []


def in_cleanup(fn: _Func, sid: int) -> bool:
    """Is this site of fn in an `except` or `finally` clause, of the innermost `try` or any other?"""
    site = fn.module.ir.sites[sid]
    return site.role in (ir.FINALLY, ir.EXCEPT) or sid in getattr(fn.ir, "cleanup", ())


def is_app_like(expr: ir.Expr) -> bool:
    """`app`, `request.app`, `self.app`, `application`: the ASGI application object."""
    if type(expr) is ir.Name:
        return expr.id == "app" or expr.id.endswith("_app") or expr.id in ("application", "api")
    if type(expr) is ir.Attr:
        return expr.attr == "app" or expr.attr.endswith("_app")
    return False


def _is_none(expr: ir.Expr) -> bool:
    return type(expr) is ir.Const and expr.value is None


def lifecycles(model: ProjectModel) -> Lifecycles:
    """The tracker of a model, shared by all LOOP2xx rules of one frame (a frame or a project
    fact starts with none: its memos are part of the model's state, see `ProjectModel.frame`)."""
    got = model._lifecycles  # noqa: SLF001
    if got is None:
        got = model._lifecycles = Lifecycles(model)  # noqa: SLF001
    return got


@module_fact("lifecycle.middleware_attrs", union)
def _middleware_attrs_in(model: ProjectModel, mod: _Mod) -> frozenset[str]:
    """Attributes some function sets on `request.state` to a new session (in this module)."""
    tracker = lifecycles(model)
    attrs: set[str] = set()
    for site in mod.ir.sites:
        if site.kind != ir.STORE or type(site.expr) is not ir.Store or not site.function:
            continue
        target = site.expr.target
        if not (type(target) is ir.Attr and type(target.value) is ir.Attr
                and target.value.attr == "state") or is_app_like(target.value.value):
            continue
        fn = mod.funcs.get(site.function)
        value = strip(site.expr.value)
        if fn is not None and type(value) is ir.Call and tracker.creation(value, _Scope(mod, fn)):
            attrs.add(target.attr)
    return frozenset(attrs)


@project_fact("lifecycle.reachable")
def _reachable(model: ProjectModel, max_depth: int = 4) -> frozenset[tuple[str, str]]:
    """Functions called, directly or through a few project functions, by a route or dependency."""
    seen: set[tuple[str, str]] = set()
    frontier = []
    for key in (*model.routes(), *model.dependencies()):
        mod = model.by_path.get(key[0])
        f = mod.funcs.get(key[1]) if mod is not None else None
        if f is not None and key not in seen:
            seen.add(key)
            frontier.append(f)
    for _ in range(max_depth):
        nxt = []
        for f in frontier:
            scope = _Scope(f.module, f)
            for sid in f.ir.sites:
                site = f.module.ir.sites[sid]
                if site.kind != ir.CALL or type(site.expr) is not ir.Call:
                    continue
                value = model.eval(site.expr.func, scope)
                if isinstance(value, VFunc):
                    key = (value.module, value.qualname)
                    callee = model.func(value)
                    if callee is not None and key not in seen:
                        seen.add(key)
                        nxt.append(callee)
        frontier = nxt
    return frozenset(seen)
