"""ORM knowledge read from the project's models, and what an async query loads (LOOP304).

* `OrmIndex` finds the relationships of mapped classes: `relationship(...)` /
  `Mapped[...] = relationship(...)` / SQLModel `Relationship(...)` class attributes, along the
  class hierarchy, plus `backref=` names they add to the other side, with their `lazy=`
  strategy (an unreadable one is unknown, and unknown means silence).
* `Loads` follows, inside one `async def`, the objects an `AsyncSession` query hands back:
  `await session.get(Model, ...)`, `(await session.execute(select(Model)...)).scalars().first()`,
  `await session.scalar(...)`, `(await session.scalars(...)).all()` and iterating such lists,
  SQLModel's `await session.exec(...)`; it reads the loader options of the statement (through
  the names it is built in) to know which relationships come eager-loaded.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from loopsafe import catalogue as cat
from loopsafe import ir
from loopsafe.flow import FunctionFacts, strip_awaits
from loopsafe.semantic import ProjectModel, VClass, VExt, _Mod, _Scope, concatenated, module_fact

UNKNOWN = "<unknown>"


@dataclass(frozen=True, slots=True)
class Relationship:
    owner: VClass
    name: str
    #: the `lazy=` strategy: "select" (the default), "selectin", ..., or UNKNOWN
    lazy: object

    @property
    def loads_on_access(self) -> bool:
        return self.lazy is not UNKNOWN and self.lazy in cat.LAZY_LOADING


class OrmIndex:
    def __init__(self, model: ProjectModel) -> None:
        self.model = model
        self._own: dict[tuple[str, str], dict[str, Relationship]] = {}

    def relationship(self, cls: VClass, name: str) -> Relationship | None:
        for mod, c in self.model.mro(cls.module, cls.qualname):
            key = (mod.ir.path, c.qualname)
            if name in dict(c.methods):
                return None  # a property or method shadows it
            rel = self._own_rels(mod, c).get(name)
            if rel is not None:
                return rel
            rel = self.model.fact_at("orm.backrefs", key, {}).get(name)
            if rel is not None:
                return rel
        return None

    def _own_rels(self, mod: _Mod, cls: ir.ClassIR) -> dict[str, Relationship]:
        key = (mod.ir.path, cls.qualname)
        found = self._own.get(key)
        if found is None:
            found = {}
            scope = _Scope(mod, mod.funcs.get(cls.parent) if cls.parent else None)
            owner = VClass(mod.ir.path, cls.qualname)
            for name, expr in cls.attrs:
                lazy = self._relationship_lazy(expr, scope)
                if lazy is not None:
                    found[name] = Relationship(owner, name, lazy)
            self._own[key] = found
        return found

    def _relationship_call(self, expr: ir.Expr, scope: _Scope) -> tuple[str, ir.Call] | None:
        if type(expr) is not ir.Call:
            return None
        func = self.model.eval(expr.func, scope)
        if isinstance(func, VExt) and func.qualname in cat.RELATIONSHIP_FUNCS:
            return func.qualname, expr
        return None

    def _relationship_lazy(self, expr: ir.Expr, scope: _Scope) -> object | None:
        """The `lazy=` of a relationship() call (None: not a relationship)."""
        found = self._relationship_call(expr, scope)
        if found is None:
            return None
        qualname, call = found
        kwargs = dict(call.kwargs)
        if "**" in kwargs:
            return UNKNOWN
        if qualname.startswith("sqlmodel."):
            inner = kwargs.get("sa_relationship")
            if inner is not None:
                return self._relationship_lazy(inner, scope) or UNKNOWN
            extra = kwargs.get("sa_relationship_kwargs")
            if extra is None:
                return "select"
            if type(extra) is ir.Call and self.model.eval(extra.func, scope) is None and \
                    type(extra.func) is ir.Name and extra.func.id == "dict" and not extra.args:
                return _lazy_kwarg(dict(extra.kwargs))
            return UNKNOWN  # a dict literal: its content is not in the summary
        return _lazy_kwarg(kwargs)

    def _target(self, expr: ir.Expr, scope: _Scope, by_name: dict[str, list[VClass]]) -> VClass | None:
        if type(expr) is ir.Const and isinstance(expr.value, str):
            hits = by_name.get(expr.value.rpartition(".")[2], [])
            return hits[0] if len(hits) == 1 else None
        value = self.model.eval(expr, scope)
        return value if isinstance(value, VClass) else None

    def _backref(self, expr: ir.Expr, scope: _Scope) -> tuple[str, object] | None:
        if type(expr) is ir.Const and isinstance(expr.value, str):
            return expr.value, "select"
        if type(expr) is ir.Call and expr.args and type(expr.args[0]) is ir.Const:
            func = self.model.eval(expr.func, scope)
            if isinstance(func, VExt) and func.qualname in cat.BACKREF_FUNCS and isinstance(expr.args[0].value, str):
                return expr.args[0].value, _lazy_kwarg(dict(expr.kwargs))
        return None


def _class_index(parts: list) -> dict[str, list[VClass]]:
    return {name: list(classes) for name, classes in concatenated(parts).items()}


@module_fact("orm.classes_by_name", _class_index, syntactic=True)
def _classes_by_name_in(model: ProjectModel, mod: _Mod) -> dict[str, list[VClass]]:
    """Class name -> the project classes of that name (this module's), for `relationship("Name")`."""
    out: dict[str, list[VClass]] = {}
    for cls in mod.ir.classes:
        out.setdefault(cls.name, []).append(VClass(mod.ir.path, cls.qualname))
    return out


def _merged_backrefs(parts: list) -> dict[tuple[str, str], dict[str, Relationship]]:
    out: dict[tuple[str, str], dict[str, Relationship]] = {}
    for part in parts:
        for key, rels in part.items():
            out.setdefault(key, {}).update(rels)
    return out


@module_fact("orm.backrefs", _merged_backrefs)
def _backrefs_in(model: ProjectModel, mod: _Mod) -> dict[tuple[str, str], dict[str, Relationship]]:
    """Relationships that `backref=` (in this module's classes) adds to the other class."""
    index = OrmIndex(model)
    by_name = model.fact("orm.classes_by_name")
    out: dict[tuple[str, str], dict[str, Relationship]] = {}
    for cls in mod.ir.classes:
        scope = _Scope(mod, mod.funcs.get(cls.parent) if cls.parent else None)
        for _name, expr in cls.attrs:
            found = index._relationship_call(expr, scope)  # noqa: SLF001
            if found is None:
                continue
            call = found[1]
            backref = dict(call.kwargs).get("backref")
            if backref is None or not call.args:
                continue
            target = index._target(call.args[0], scope, by_name)  # noqa: SLF001
            parsed = index._backref(backref, scope)  # noqa: SLF001
            if target is not None and parsed is not None:
                name, lazy = parsed
                out.setdefault((target.module, target.qualname), {})[name] = Relationship(target, name, lazy)
    return out


def _lazy_kwarg(kwargs: dict) -> object:
    if "**" in kwargs:
        return UNKNOWN
    lazy = kwargs.get("lazy")
    if lazy is None:
        return "select"
    if type(lazy) is ir.Const:
        return lazy.value
    if type(lazy) is ir.Name and lazy.id in _LAZY_NAMES:
        return _LAZY_NAMES[lazy.id]
    return UNKNOWN


#: `lazy=True` is "select", `lazy=False` "joined", `lazy=None` "noload"
_LAZY_NAMES = {"True": "select", "False": "joined", "None": "noload"}


# --- what a query in an async function loads -----------------------------------------------

INSTANCE, MANY, ROWS, SCALARS = "instance", "many", "rows", "scalars"


@dataclass(frozen=True, slots=True)
class Load:
    """Objects of `model` that an AsyncSession call at `site` hands back, and how."""

    state: str  # INSTANCE, MANY (a list of them), ROWS (a Result), SCALARS (a ScalarResult)
    model: VClass
    site: int
    #: relationships the statement loads eagerly; None: options the analysis cannot read
    eager: frozenset | None = frozenset()
    #: relationships the options leave unloaded on purpose (raiseload/noload) or anything ("*")
    quiet: frozenset = frozenset()
    #: the statement text for messages
    source: str = ""


@dataclass
class _Options:
    eager: set = field(default_factory=set)
    quiet: set = field(default_factory=set)
    unknown: bool = False


class Loads:
    """Follows AsyncSession loads through one async function's names and result calls."""

    def __init__(self, model: ProjectModel, orm: OrmIndex, facts: FunctionFacts) -> None:
        self.model = model
        self.orm = orm
        self.facts = facts
        self._memo: dict[int, Load | None] = {}

    def of(self, expr: ir.Expr, depth: int = 0) -> Load | None:
        key = id(expr)
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = None  # cycles through names
        result = self._of(expr, depth) if depth < 12 else None
        self._memo[key] = result
        return result

    def _of(self, expr: ir.Expr, depth: int) -> Load | None:
        t = type(expr)
        if t is ir.Name:
            hit = self.facts.reaching(expr.id, expr.pos, later=True)
            return self.of(hit[1], depth + 1) if hit is not None else None
        if t is ir.IterOf:
            inner = self.of(expr.value, depth + 1)
            if inner is not None and inner.state in (MANY, SCALARS):
                return _with_state(inner, INSTANCE)
            return None
        if t is ir.Await:
            call = expr.value
            if type(call) is not ir.Call:
                return None
            return self._session_load(call)
        if t is ir.Call:
            if self.facts.is_builtin(expr.func, {"list", "tuple", "sorted"}) and len(expr.args) == 1:
                inner = self.of(expr.args[0], depth + 1)
                return _with_state(inner, MANY) if inner is not None and inner.state in (MANY, SCALARS) else None
            if type(expr.func) is not ir.Attr:
                return None
            inner = self.of(expr.func.value, depth + 1)
            if inner is None:
                return None
            method = expr.func.attr
            if inner.state == ROWS:
                if method == "scalars" and not expr.args:
                    return _with_state(inner, SCALARS)
                if method in ("scalar_one", "scalar_one_or_none", "scalar"):
                    return _with_state(inner, INSTANCE)
                if method == "unique":
                    return inner
            elif inner.state == SCALARS:
                if method in ("first", "one", "one_or_none"):
                    return _with_state(inner, INSTANCE)
                if method in ("all", "fetchall"):
                    return _with_state(inner, MANY)
                if method == "unique":
                    return inner
            return None
        return None

    def _session_load(self, call: ir.Call) -> Load | None:
        found = self.facts.method_of(call)
        if found is None or found[0].name != "sqlalchemy.AsyncSession":
            return None
        method = found[1]
        if method in ("get", "get_one"):
            if not call.args:
                return None
            model = self.facts.eval(call.args[0])
            if not isinstance(model, VClass):
                return None
            opts = _Options()
            for name, value in call.kwargs:
                if name == "options":
                    self._read_options(value.items if type(value) is ir.Seq else (value,), model, opts)
                elif name == "**":
                    opts.unknown = True
            return _load(INSTANCE, model, call.site, opts)
        state = {"execute": ROWS, "scalars": SCALARS, "exec": SCALARS, "scalar": INSTANCE}.get(method)
        if state is None or not call.args:
            return None
        query = self._query(call.args[0], 0)
        if query is None:
            return None
        model, opts = query
        return _load(state, model, call.site, opts)

    def _query(self, expr: ir.Expr, depth: int) -> tuple[VClass, _Options] | None:
        """`select(Model).where(...).options(...)`, possibly built through names."""
        if depth > 12:
            return None
        t = type(expr)
        if t is ir.Name:
            hit = self.facts.reaching(expr.id, expr.pos)
            return self._query(hit[1], depth + 1) if hit is not None else None
        if t is not ir.Call:
            return None
        func = expr.func
        if type(func) is ir.Attr:
            base = self._query(func.value, depth + 1)
            if base is None:
                return None
            model, opts = base
            if func.attr == "options":
                opts = _Options(set(opts.eager), set(opts.quiet), opts.unknown)
                if any(name == "*" or name == "**" for name, _ in expr.kwargs):
                    opts.unknown = True
                self._read_options(expr.args, model, opts)
                return model, opts
            if func.attr in cat.SELECT_BUILDERS:
                return base
            return None
        q = self.facts.external(func)
        if q in cat.SELECT_FUNCS and len(expr.args) == 1 and not expr.kwargs:
            model = self.facts.eval(expr.args[0])
            if isinstance(model, VClass):
                return model, _Options()
        return None

    def _read_options(self, args, model: VClass, opts: _Options) -> None:
        for arg in args:
            if not self._read_option(arg, model, opts):
                opts.unknown = True

    def _read_option(self, expr: ir.Expr, model: VClass, opts: _Options) -> bool:
        chain: list[ir.Call] = []
        node = expr
        while type(node) is ir.Call:
            chain.append(node)
            node = node.func.value if type(node.func) is ir.Attr else None
        if not chain:
            return False
        chain.reverse()  # base call first
        q = self.facts.external(chain[0].func)
        if q not in cat.EAGER_LOADERS and q not in cat.LOADER_OPTIONS:
            return False
        for i, call in enumerate(chain):
            name = q.rpartition(".")[2] if i == 0 else call.func.attr
            if any(k == "*" for k, _ in call.kwargs):
                return False
            for arg in call.args:
                rel = self._option_target(arg, model, first=i == 0)
                if rel is False:
                    return False
                if rel is None:
                    continue
                if name in ("selectinload", "joinedload", "subqueryload", "immediateload", "contains_eager"):
                    if rel == "*":
                        return False
                    opts.eager.add(rel)
                elif name in ("raiseload", "noload"):
                    opts.quiet.add(rel)
        return True

    def _option_target(self, arg: ir.Expr, model: VClass, first: bool) -> object:
        """The top-level relationship a loader option argument names: a name, None (another
        class's attribute, a nested path), or False (unreadable)."""
        t = type(arg)
        if t is ir.Attr:
            owner = self.facts.eval(arg.value)
            if not isinstance(owner, VClass):
                return False
            return arg.attr if self._related(owner, model) else None
        if t is ir.Const and isinstance(arg.value, str):
            return arg.value.split(".")[0] if first else None
        return False

    def _related(self, a: VClass, b: VClass) -> bool:
        if (a.module, a.qualname) == (b.module, b.qualname):
            return True
        in_a = {(m.ir.path, c.qualname) for m, c in self.model.mro(a.module, a.qualname)}
        in_b = {(m.ir.path, c.qualname) for m, c in self.model.mro(b.module, b.qualname)}
        return (b.module, b.qualname) in in_a or (a.module, a.qualname) in in_b

    # --- the reads ------------------------------------------------------------------------
    def lazy_reads(self) -> Iterator[tuple[Load, Relationship, ir.Attr]]:
        """Relationship attributes read on loaded objects that the query did not load."""
        refreshed = self._refreshed_names()
        for node in self.facts.attr_nodes():
            base = node.value
            if type(base) is ir.Name and base.id in refreshed:
                continue
            load = self.of(base)
            if load is None or load.state != INSTANCE or load.eager is None:
                continue
            if node.attr in load.eager or node.attr in load.quiet or "*" in load.quiet:
                continue
            rel = self.orm.relationship(load.model, node.attr)
            if rel is None or not rel.loads_on_access:
                continue
            yield load, rel, node

    def _refreshed_names(self) -> set[str]:
        """Names passed to `session.refresh(...)` anywhere in the function: their attributes may be loaded."""
        out = set()
        for call in self.facts.calls.values():
            if type(call.func) is ir.Attr and call.func.attr == "refresh" and call.args \
                    and type(strip_awaits(call.args[0])) is ir.Name:
                out.add(call.args[0].id)
        return out


def _with_state(load: Load, state: str) -> Load:
    return Load(state, load.model, load.site, load.eager, load.quiet, load.source)


def _load(state: str, model: VClass, site: int, opts: _Options) -> Load:
    return Load(state, model, site, None if opts.unknown else frozenset(opts.eager), frozenset(opts.quiet))
