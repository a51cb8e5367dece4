"""The semantic model: answers the hard questions so each rule stays a few lines long.

It combines the per-module summaries (`loopsafe.ir`) of a whole project and answers:
- what does a name or expression refer to? (imports, relative imports, re-exports through
  `__init__`, star imports, module singletons, classes, methods through `self`/`cls`)
- what kind of DB object is an expression? (driven by `loopsafe.catalogue`; evidence from
  annotations, `Annotated` and `NewType` aliases, constructors and factories, `with ... as`,
  `Depends`)
- which operations of a function block, directly or through further sync calls, for the
  kinds its caller passes in? (context-sensitive, memoised, cycle-safe)
- is a function on the event loop, a FastAPI route, a dependency?

Inference is flow-insensitive and deliberately cautious: an unknown kind means silence.

It also owns what makes runs incremental: a frame analyses one file from fresh memos and
notes every module it reads (`_Modules`) and every project fact it asks (`fact`); project
facts (routes, dependencies, indexes over every module) are computed apart from frames,
most as per-module parts (`module_fact`), and reused from the last run when nothing they
read has changed (`Reuse`). Modules not read are never loaded (`Pending`).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterator

from loopsafe import catalogue as cat
from loopsafe import ir
from loopsafe.model import Options

# --- values -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VKind:
    """An object of a catalogue kind (`sqlalchemy.Session`)."""

    kind: str
    #: the sync kind it may also be (`Union[AsyncSession, Session]`): each call says which,
    #: by being awaited (see `VMethod.at`)
    alt: str = ""


@dataclass(frozen=True, slots=True)
class VMethod:
    """A method of a catalogue kind, not yet called."""

    kind: str
    name: str
    #: the same method of the other kind the object may be (VKind.alt, cat.ASYNC_KIND_OF)
    alt: str = ""

    def at(self, awaited: bool) -> "VMethod":
        """The method a call means: awaited, the async kind's; not awaited, the sync one's."""
        if not self.alt:
            return self
        k = cat.kind(self.kind)
        return VMethod(self.kind if (k is not None and k.is_async) == awaited else self.alt, self.name)


@dataclass(frozen=True, slots=True)
class VExt:
    """A name from outside the project (`sqlalchemy.orm.Session`)."""

    qualname: str


@dataclass(frozen=True, slots=True)
class VMod:
    name: str


@dataclass(frozen=True, slots=True)
class VFunc:
    module: str
    qualname: str
    bound: object = None  # the value bound to self/cls for methods
    #: values of enclosing functions' parameters, as ("^name", value) (decorator wrappers)
    closure: tuple = ()
    #: the name the user called, when a decorator replaced the function with a wrapper
    display: str = ""


@dataclass(frozen=True, slots=True)
class VClass:
    module: str
    qualname: str


@dataclass(frozen=True, slots=True)
class VInst:
    module: str
    qualname: str
    #: what the constructor call bound to `__init__`'s parameters (self excluded)
    init_env: tuple = ()


@dataclass(frozen=True, slots=True)
class VGen:
    """What calling a generator function gives; entering or `next()` yields `value`."""

    value: object
    #: the generator function and its bound parameters: iterating runs its body
    func: object = None
    env: tuple = ()


@dataclass(frozen=True, slots=True)
class VCoro:
    value: object


@dataclass(frozen=True, slots=True)
class VConst:
    """A literal `None`, `True` or `False` a caller passes (or leaves to the default) for a
    parameter its callee tests (`if blocking:`): the branches it rules out do not run."""

    value: object


Value = object  # one of the above, or None for "unknown"

SiteRef = tuple  # (module path, site id)

_BUILTIN_ITERATORS = frozenset({"list", "tuple", "set", "frozenset", "sorted", "dict", "sum", "any", "all",
                                "min", "max", "enumerate", "next"})
_MAX_DEPTH = 12
#: top-level packages of the libraries the catalogue describes (and the stdlib/framework
#: modules it names): names under them are never project modules found by suffix
_LIBRARY_ROOTS = frozenset(
    {q.split(".")[0] for q in cat.ENTRIES}
    | {q.split(".")[0] for group in (cat.OFFLOAD_WRAPPERS, cat.DEPENDS, cat.ANNOTATED, cat.GENERATOR_TYPES,
                                       cat.CONTEXTMANAGER_DECORATORS) for q in group}
)


_UNSET = object()

_DEPENDS_NAMES = frozenset(q.rpartition(".")[2] for q in cat.DEPENDS)


@dataclass(frozen=True, slots=True)
class Op:
    """A blocking operation found at a site of a function."""

    site: SiteRef
    effect: str  # catalogue.IO or catalogue.CONNECT
    label: str  # "SQLAlchemy Session", or the callee for via-ops
    twin: str = ""
    #: for a call into a project helper: the chain below it, outermost first
    chain: tuple = ()
    callee: str = ""  # qualified name of the helper for via-ops

    @property
    def is_via(self) -> bool:
        return bool(self.callee)


class _Func:
    __slots__ = ("ir", "module", "assigns", "params", "_tested", "_rebinds")

    def __init__(self, fir: ir.FuncIR, module: "_Mod") -> None:
        self.ir = fir
        self.module = module
        # name -> [(order, value)], latest first
        self.assigns: dict[str, list[tuple[int, ir.Expr]]] = {}
        for name, value, order in reversed(fir.assigns):
            self.assigns.setdefault(name, []).append((order, value))
        self.params = {p.name: p for p in fir.params}
        self._tested: frozenset[str] | None = None
        self._rebinds: dict[str, list[tuple]] | None = None

    def tested_params(self) -> frozenset[str]:
        """Parameters its sites' conditions test and its body never rebinds (`blocking` in
        `if blocking: work()`), or rebinds only under conditions on parameters: what a caller
        passes for them decides whether those sites run."""
        if self._tested is None:
            sites = self.module.ir.sites
            names = {name for sid in self.ir.sites for name, _ in sites[sid].conds}
            rebinds = self._conditional_rebinds()
            # `if frontend_user: auth_method, username = frontend_user`: whether `auth_method`
            # keeps what the caller passed depends on what it passed for `frontend_user`
            names |= {c for n in names if n in rebinds for conds in rebinds[n] for c, _ in conds}
            # passed on as they are (`self.lookup(client_user)`): the callee may test them
            names |= {a.id for sid in self.ir.sites if sites[sid].kind == ir.CALL and type(sites[sid].expr) is ir.Call
                      for a in (*sites[sid].expr.args, *(v for _, v in sites[sid].expr.kwargs)) if type(a) is ir.Name}
            self._tested = frozenset(n for n in names if n in self.params and not self.params[n].star
                                     and (n not in self.assigns or n in rebinds))
        return self._tested

    def _conditional_rebinds(self) -> dict[str, list[tuple]]:
        """Parameters every rebinding of which is conditional -> the conditions of each."""
        if self._rebinds is None:
            by_name: dict[str, list[tuple]] = {}
            for name, conds in self.ir.bind_conds:
                by_name.setdefault(name, []).append(conds)
            self._rebinds = {n: c for n, c in by_name.items()
                             if len(c) == len(self.assigns.get(n, ())) and all(c)}
        return self._rebinds

    def site_runs(self, site: ir.Site, env: tuple) -> bool:
        """False when a condition of the site is ruled out by a literal the caller bound."""
        if not site.conds or not env:
            return True
        for name, test in site.conds:
            held = _held(name, test, env)
            if held is False and name in self.assigns:
                # rebound in the body: the literal stands only if no rebinding can have run
                rebinds = self._conditional_rebinds().get(name)
                if rebinds is None or not all(any(_held(n, t, env) is False for n, t in conds)
                                              for conds in rebinds):
                    held = None
            if held is False:
                return False
        return True


def _held(name: str, test: str, env: tuple) -> bool | None:
    """Whether a condition holds of the literal the caller bound to `name` (None: unknown)."""
    for pname, value in env:
        if pname == name and type(value) is VConst:
            v = value.value
            return (bool(v) if test == ir.TRUTHY else not v if test == ir.FALSY
                    else v is None if test == ir.IS_NONE else v is not None)
    return None


class _Mod:
    __slots__ = ("ir", "assigns", "funcs", "classes", "imports", "class_methods", "self_attrs", "rebinds")

    def __init__(self, mir: ir.ModuleIR) -> None:
        self.ir = mir
        self.assigns: dict[str, list[ir.Expr]] = {}
        for name, value, _order in reversed(mir.assigns):
            self.assigns.setdefault(name, []).append(value)
        self.funcs = {f.qualname: _Func(f, self) for f in mir.functions}
        #: a module-level name defined twice binds the later `def` (`root` -> `root@364`)
        self.rebinds = {ir.redefined(q): q for q, f in self.funcs.items()
                        if not f.ir.parent and not f.ir.class_name and ir.redefined(q) != q}
        self.classes = {c.qualname: c for c in mir.classes}
        self.imports = dict(mir.imports)
        # a name defined twice in a class body binds the later `def`, except a property's
        # `@x.setter`/`@x.deleter`: reading `obj.x` runs the getter
        self.class_methods = {c.qualname: dict((n, q) for n, q in c.methods if not self._accessor(n, q))
                              for c in mir.classes}
        # attributes assigned through `self.x = ...` in any method, per class
        self.self_attrs: dict[str, list[tuple[_Func, ir.Expr]]] = {}
        for f in self.funcs.values():
            if f.ir.class_name and f.ir.method_type == "instance" and f.ir.params:
                me = f.ir.params[0].name
                for name, value, _order in f.ir.assigns:
                    if name.startswith(me + "."):
                        self.self_attrs.setdefault(f"{f.ir.class_name}.{name[len(me) + 1:]}", []).append((f, value))


    def _accessor(self, name: str, qual: str) -> bool:
        fn = self.funcs.get(qual)
        return fn is not None and any(type(d) is ir.Attr and d.attr in ("setter", "deleter") and type(d.value) is ir.Name
                                      and d.value.id == name for d in fn.ir.decorators)


class _Scope:
    """Where an expression is evaluated: a module, optionally a function with bound params."""

    __slots__ = ("mod", "fn", "env", "key")

    def __init__(self, mod: _Mod, fn: _Func | None, env: tuple = ()) -> None:
        self.mod = mod
        self.fn = fn
        self.env = env
        self.key = (mod.ir.path, fn.ir.qualname if fn else "", env)


#: the read-set marker of a frame that walked every module
ALL_MODULES = "*"


class Pending:
    """A module whose summary is not loaded yet (an incremental run loads only the modules it
    reads): loaded, and its `_Mod` made, on first use through `_Modules`."""

    __slots__ = ("load", "maps", "mod", "name", "path")

    def __init__(self, path: str, name: str, load: Callable[[], ir.ModuleIR]) -> None:
        self.path = path
        self.name = name
        self.load = load
        self.mod: _Mod | None = None
        self.maps: tuple = ()

    def get(self) -> _Mod:
        if self.mod is None:
            self.mod = _Mod(self.load())
            for modules in self.maps:
                for key in (self.path, self.name):
                    if dict.get(modules, key) is self:
                        dict.__setitem__(modules, key, self.mod)
        return self.mod


class _Modules(dict):
    """path (or dotted name) -> module, noting which modules a frame reads.

    A frame (see `ProjectModel.frame`) is the analysis of one file; what it reads decides
    when its findings must be made again (`loopsafe.incremental`). Every way to a module's
    content goes through here: a lookup notes that module, a walk over all of them notes
    `ALL_MODULES`. Walking the keys (paths, names) reads no module."""

    __slots__ = ("reads",)

    def __init__(self) -> None:
        super().__init__()
        #: the current frame's read-set (None: no frame, or inside a project fact)
        self.reads: set | None = None

    def get(self, key, default=None):
        mod = dict.get(self, key, default)
        if type(mod) is Pending:
            mod = mod.get()
        if self.reads is not None and mod is not default:
            self.reads.add(mod.ir.path)
        return mod

    def __getitem__(self, key):
        mod = dict.__getitem__(self, key)
        if type(mod) is Pending:
            mod = mod.get()
        if self.reads is not None:
            self.reads.add(mod.ir.path)
        return mod

    def _loaded(self) -> None:
        for mod in list(dict.values(self)):
            if type(mod) is Pending:
                mod.get()

    def values(self):
        if self.reads is not None:
            self.reads.add(ALL_MODULES)
        self._loaded()
        return dict.values(self)

    def items(self):
        if self.reads is not None:
            self.reads.add(ALL_MODULES)
        self._loaded()
        return dict.items(self)


#: what a read of a whole fact is noted as (a read of one entry is noted with its key)
WHOLE = ("*",)


def _entry(value: object, key: object) -> object:
    """What reading `key` of a fact's value gives: a dict's entry, a set's membership; for a
    module's slice (`("@", path)`), the entries whose key is (path, ...)."""
    if type(key) is tuple and len(key) == 2 and key[0] == "@":
        path = key[1]
        if isinstance(value, dict):
            return sorted((k, v) for k, v in value.items() if type(k) is tuple and k and k[0] == path)
        return sorted(k for k in value if type(k) is tuple and k and k[0] == path)  # type: ignore[attr-defined]
    if isinstance(value, dict):
        return (key in value, value.get(key))
    return key in value  # type: ignore[operator]


#: project facts: name -> how to compute it from the model (see `ProjectModel.fact`)
FACTS: dict[str, Callable[[ProjectModel], object]] = {}


def project_fact(name: str) -> Callable:
    """Register a function of the whole project (routes, dependencies, an index of calls...)
    as a project fact: computed once per model, apart from any frame (fresh memos, its reads
    not a frame's), and compared between runs (`loopsafe.incremental`). Its value must be
    plain data: comparable with `==` and picklable (paths and qualified names, not modules)."""
    def register(compute: Callable[[ProjectModel], object]) -> Callable[[ProjectModel], object]:
        FACTS[name] = compute
        return compute
    return register


#: module facts: name -> (one module's part, how the parts make the fact)
MODULE_FACTS: dict[str, tuple[Callable[[ProjectModel, _Mod], object], Callable[[list], object]]] = {}


#: module facts whose parts only read their module's summary (no evaluation, no other module)
SYNTACTIC_FACTS: set[str] = set()


def module_fact(name: str, combine: Callable[[list], object], syntactic: bool = False) -> Callable:
    """Register a project fact made of each module's part (`collect(model, module)`), the
    parts taken in project order by `combine`. Each part is made apart from the others, with
    its reads noted: an incremental run makes again only the parts an edit can change. A
    `syntactic` part reads its module's summary alone (no `model` question): made without
    setting up fresh memos."""
    def register(collect: Callable[[ProjectModel, _Mod], object]) -> Callable[[ProjectModel, _Mod], object]:
        MODULE_FACTS[name] = (collect, combine)
        if syntactic:
            SYNTACTIC_FACTS.add(name)
        FACTS[name] = lambda model: combine([model.contribution(name, path) for path in model.module_paths()])
        return collect
    return register


def union(parts: list) -> frozenset:
    out: set = set()
    for part in parts:
        out.update(part)
    return frozenset(out)


def concatenated(parts: list) -> dict:
    """Per-module dicts of lists -> one dict whose lists follow project order."""
    out: dict = {}
    for part in parts:
        for key, items in part.items():
            out.setdefault(key, []).extend(items)
    return out


@dataclass
class Reuse:
    """The last run's facts, and which modules changed since: `ProjectModel.fact` keeps a
    value (or a module's part of one) whose reads are all unchanged."""

    changed: frozenset[str]
    facts: dict[str, object]
    fact_reads: dict[str, tuple[frozenset, frozenset]]
    contributions: dict[tuple[str, str], object]
    contribution_reads: dict[tuple[str, str], tuple[frozenset, frozenset]]
    #: facts being checked (a cycle among facts is no reason to keep one)
    checking: set = None  # type: ignore[assignment]
    #: module facts one of whose parts came out different this run
    differs: set = None  # type: ignore[assignment]
    #: the last run's value of facts that changed (module facts recombined from their parts)
    old_values: dict = None  # type: ignore[assignment]
    #: fact -> whether it has its last value (once known)
    unchanged: dict = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.checking = set()
        self.differs = set()
        self.old_values = {}
        self.unchanged = {}
        #: module fact -> the modules whose part may have changed (it read a changed module,
        #: every module, or a fact); the other parts stand as they are
        self.suspects: dict[str, list[str]] = {}
        self.standing: set[tuple[str, str]] = set()
        changed = self.changed
        for key, (reads, fact_reads) in self.contribution_reads.items():
            if fact_reads or ALL_MODULES in reads or not reads.isdisjoint(changed):
                self.suspects.setdefault(key[0], []).append(key[1])
            elif key in self.contributions:
                self.standing.add(key)


#: memo containers of a model: a frame and a fact start with fresh ones (their answers do not
#: depend on what was computed before, only on what they read)
_MEMO_DICTS = ("_eval_memo", "_ops_memo", "_ops_pending", "_direct_memo", "_mro_memo", "_class_kinds",
               "_class_attrs", "_loop_ops", "_loop_decorators", "_session_uses", "shared")
#: the rest of a computation's state: cycle guards, and the LOOP2xx tracker (lifecycle.py)
_MEMO_STATE = ("_in_progress", "_guard_hits", "_ops_stack", "_incomplete", "_lifecycles")


def _fresh_state() -> dict[str, object]:
    state: dict[str, object] = {name: {} for name in _MEMO_DICTS}
    state.update(_in_progress=set(), _guard_hits=0, _ops_stack=[], _incomplete=False, _lifecycles=None)
    return state


class ProjectModel:
    def __init__(self, modules: list[ir.ModuleIR | Pending], options: Options | None = None) -> None:
        self.options = options or Options()
        # modules are identified by path: two files can claim one dotted name (scripts in
        # different folders); the dotted name only serves import resolution
        self.mods: dict[str, _Mod] = _Modules()
        self.by_name: dict[str, _Mod] = _Modules()
        for mir in modules:
            mod = mir if type(mir) is Pending else _Mod(mir)
            if type(mod) is Pending:
                mod.maps = (self.mods, self.by_name)
            self.by_name.setdefault(mir.name, mod)
            self.mods[mir.path] = mod
        self.by_path = self.mods
        #: project facts computed so far (name -> value), and the facts the current frame asked
        self.facts: dict[str, object] = {}
        self._fact_reads: set | None = None
        #: what computing each fact read (module facts: each module's part): (modules, facts)
        self.fact_reads_of: dict[str, tuple[frozenset, frozenset]] = {}
        self.contributions: dict[tuple[str, str], object] = {}
        self.contribution_reads: dict[tuple[str, str], tuple[frozenset, frozenset]] = {}
        #: module facts another process computed for this run (their parts are merged here)
        self.module_facts_elsewhere: set[str] = set()
        #: the last run's facts, for an incremental run (see `Reuse`)
        self.reuse: Reuse | None = None
        self._shared_results: dict = {}
        #: fact -> (its value, its entries by the module their key names): `fact_slice`
        self._slices: dict[str, tuple[object, dict]] = {}
        self._suffix_cache: dict[tuple[str, str], str | None] = {}
        self._suffixes: dict[str, list[str]] | None = None
        self._eval_memo: dict = {}
        self._in_progress: set = set()
        self._guard_hits = 0
        self._ops_memo: dict = {}
        self._ops_stack: list = []
        self._ops_pending: dict = {}
        self._direct_memo: dict = {}
        self._mro_memo: dict = {}
        self._class_kinds: dict = {}
        self._class_attrs: dict = {}
        #: the caches the layers above keep for this model (flow, the rules): they go with it
        self.shared: dict = {}
        self._incomplete = False
        self._extra_entries: dict[str, cat.Entry] = {}
        for q in self.options.session_factories:
            self._extra_entries[q] = cat.Entry(returns="sqlalchemy.Session", instance="sqlalchemy.SessionFactory")
        for q in self.options.sync_session_types:
            self._extra_entries[q] = cat.Entry(instance="sqlalchemy.Session", returns="sqlalchemy.Session")
        for q in self.options.async_session_types:
            self._extra_entries[q] = cat.Entry(instance="sqlalchemy.AsyncSession", returns="sqlalchemy.AsyncSession")
        for q in self.options.blocking_calls:
            self._extra_entries[q] = cat.Entry(effect=cat.IO)
        self._offload = cat.OFFLOAD_WRAPPERS | frozenset(self.options.offload_wrappers)
        self._loop_ops: dict = {}
        self._loop_decorators: dict = {}
        self._session_uses: dict = {}
        #: paths whose findings are wanted (flake8 asks one file at a time); None: all
        self.focus: set[str] | None = None
        self._interned: dict = {}
        self._lifecycles = None  # lifecycle.lifecycles(): the LOOP2xx tracker of this state
        #: the FastAPI version the project pins ("" unknown), for version-dependent messages
        #: (LOOP205); the front end resolves it (configuration, else the project's pins)
        self.fastapi_version: str = self.options.fastapi_version

    # --- module lookup ----------------------------------------------------------------
    def find_module(self, name: str, near: str = "") -> _Mod | None:
        mod = self.by_name.get(name)
        if mod is not None:
            return mod
        # the answer depends on the importer's top package (below), so it is kept per package:
        # kept per name, the first importer's answer stood for the others
        cache_key = (name, near.partition(".")[0])
        if cache_key in self._suffix_cache:
            hit = self._suffix_cache[cache_key]
            return self.by_name.get(hit) if hit else None
        # layouts where the importable root is not where __init__.py files say it is
        # (namespace packages, src/ layouts): match on a dotted suffix -- but never for the
        # libraries the catalogue knows: a project's own `ext/sqlalchemy.py` is not SQLAlchemy
        if name.split(".")[0] in _LIBRARY_ROOTS:
            self._suffix_cache[cache_key] = None
            return None
        if self._suffixes is None:
            self._suffixes = {}
            for m in self.by_name:
                parts = m.split(".")
                for i in range(1, len(parts)):
                    self._suffixes.setdefault(".".join(parts[i:]), []).append(m)
        parts = name.split(".")
        # project modules named by a suffix of `name`, or whose name ends with `name`
        found = {m for m in (".".join(parts[i:]) for i in range(1, len(parts))) if m in self.by_name}
        found.update(self._suffixes.get(name, ()))
        # in project order: min() keeps the first (most names match none: no scan then)
        hits = [m for m in self.by_name if m in found] if found else []
        if len(hits) > 1 and near:
            head = near.split(".")[0]
            narrowed = [h for h in hits if h.split(".")[0] == head]
            hits = narrowed or hits
        choice = min(hits, key=len) if hits else None
        self._suffix_cache[cache_key] = choice
        return self.by_name.get(choice) if choice else None

    # --- frames and project facts --------------------------------------------------------
    def fact(self, name: str):
        """A project fact (see `project_fact`), computed on first use apart from any frame: a
        frame that asks depends on its value, not on what computing it read. With `reuse`,
        the last run's value stands when nothing it read has changed."""
        if self._fact_reads is not None:
            self._fact_reads.add((name, WHOLE))
        return self._fact_value(name)

    def fact_at(self, name: str, key: object, default: object = None):
        """`fact(name).get(key, default)`, depending only on that key's entry."""
        if self._fact_reads is not None:
            self._fact_reads.add((name, self._read_key(key)))
        return self._fact_value(name).get(key, default)

    def fact_has(self, name: str, key: object) -> bool:
        """`key in fact(name)`, depending only on that."""
        if self._fact_reads is not None:
            self._fact_reads.add((name, self._read_key(key)))
        return key in self._fact_value(name)

    def fact_slice(self, name: str, path: str) -> list:
        """The entries of a fact whose key is (path, ...), sorted: one module's slice of it,
        depending only on that."""
        if self._fact_reads is not None:
            self._fact_reads.add((name, ("@", path)))
        value = self._fact_value(name)
        index = self._slices.get(name)
        if index is None or index[0] is not value:
            by_path: dict[str, list] = {}
            for key, entry in value.items():  # type: ignore[attr-defined]
                if type(key) is tuple and key:
                    by_path.setdefault(key[0], []).append((key, entry))
            index = self._slices[name] = (value, {p: sorted(entries) for p, entries in by_path.items()})
        return index[1].get(path, [])

    def _read_key(self, key: object) -> object:
        """What a frame notes of reading `key`: a key naming one of the frame's own functions
        ((path, qualname)) is noted as the frame's whole slice of the fact (`("@", path)`), one
        note where a frame asks about each of its functions."""
        focus = self.focus
        if type(key) is tuple and len(key) == 2 and focus is not None and len(focus) == 1 and key[0] in focus:
            return ("@", key[0])
        return key

    def _fact_value(self, name: str):
        got = self.facts.get(name, _UNSET)
        if got is _UNSET:
            got = self._reused(name, None)
            if got is _UNSET:
                reads: set = set()
                fact_reads: set = set()
                with self._state(_fresh_state(), focus=None, reads=reads, fact_reads=fact_reads):
                    got = FACTS[name](self)
                if name not in MODULE_FACTS:
                    self.fact_reads_of[name] = (frozenset(reads), frozenset(fact_reads))
            self.facts[name] = got
        return got

    def shared_result(self, key: object, compute: Callable[[], object]):
        """`compute()`, made once per model apart from any frame, its reads replayed into the
        reads of every frame or fact that asks (as if each had computed it): for a question
        many project facts ask of one function (what it calls)."""
        got = self._shared_results.get(key)
        if got is None:
            reads: set = set()
            fact_reads: set = set()
            with self._state(_fresh_state(), focus=None, reads=reads, fact_reads=fact_reads):
                value = compute()
            got = self._shared_results[key] = (value, frozenset(reads), frozenset(fact_reads))
        value, reads, fact_reads = got
        if self.mods.reads is not None:
            self.mods.reads.update(reads)
        if self._fact_reads is not None:
            self._fact_reads.update(fact_reads)
        return value

    def contribution(self, name: str, path: str):
        """One module's part of a module fact (see `module_fact`), made apart from any frame."""
        key = (name, path)
        got = self.contributions.get(key, _UNSET)
        if got is _UNSET and self.reuse is not None and key in self.reuse.standing:
            got = self.contributions[key] = self.reuse.contributions[key]
            self.contribution_reads[key] = self.reuse.contribution_reads[key]
            return got
        if got is _UNSET:
            got = self._reused(name, path)
            if got is _UNSET:
                reads: set = set()
                fact_reads: set = set()
                if name in SYNTACTIC_FACTS:
                    # it reads the module's summary and nothing else, evaluates nothing
                    saved, self.mods.reads = self.mods.reads, None
                    mod = self.mods[path]
                    self.mods.reads = saved
                    reads.add(path)
                    got = MODULE_FACTS[name][0](self, mod)
                else:
                    with self._state(_fresh_state(), focus=None, reads=reads, fact_reads=fact_reads):
                        got = MODULE_FACTS[name][0](self, self.mods[path])
                self.contribution_reads[key] = (frozenset(reads), frozenset(fact_reads))
                if self.reuse is not None and self.reuse.contributions.get(key, _UNSET) != got:
                    self.reuse.differs.add(name)
            self.contributions[key] = got
        return got

    def read_unchanged(self, name: str, key: object) -> bool:
        """Does what a frame read of a fact (one key's entry, or the whole) read the same as in
        the last run?"""
        if self.fact_unchanged(name):
            return True
        reuse = self.reuse
        if key == WHOLE or reuse is None or name not in FACTS:
            return False
        old = reuse.old_values.get(name, _UNSET)
        if old is _UNSET:
            if name in MODULE_FACTS:
                parts = [reuse.contributions.get((name, path), _UNSET) for path in self.module_paths()]
                old = _UNSET if _UNSET in parts else MODULE_FACTS[name][1](parts)
            else:
                old = reuse.facts.get(name, _UNSET)
            reuse.old_values[name] = old
        return old is not _UNSET and _entry(old, key) == _entry(self._fact_value(name), key)

    def fact_unchanged(self, name: str) -> bool:
        """Has a fact the value it had in the last run (`reuse`)? A module fact has when each
        module's part has: the parts made again are compared, the others are the last run's."""
        reuse = self.reuse
        if reuse is None or name not in FACTS or name not in reuse.facts:
            return False
        known = reuse.unchanged.get(name)
        if known is not None:
            return known
        if name in MODULE_FACTS:
            # the parts that may differ, made again (or kept) and compared; no need to combine
            for path in reuse.suspects.get(name, ()):
                self.contribution(name, path)
            same = name not in reuse.differs
        else:
            same = self._fact_value(name) == reuse.facts[name]
        reuse.unchanged[name] = same
        return same

    def _reused(self, name: str, path: str | None):
        """The last run's value of a fact (or of a module's contribution to one), if nothing
        it read has changed since: no changed module, no fact whose value changed."""
        reuse = self.reuse
        if reuse is None:
            return _UNSET
        if path is None:
            if name in MODULE_FACTS or name not in reuse.facts or name not in reuse.fact_reads:
                return _UNSET  # a module fact is recombined from its parts
            value, meta = reuse.facts[name], reuse.fact_reads[name]
        else:
            key = (name, path)
            if key not in reuse.contributions:
                return _UNSET
            value, meta = reuse.contributions[key], reuse.contribution_reads[key]
        reads, fact_reads = meta
        if ALL_MODULES in reads or not reads.isdisjoint(reuse.changed) or name in reuse.checking:
            return _UNSET
        reuse.checking.add(name)
        try:
            if not all(self.read_unchanged(f, k) for f, k in fact_reads):
                return _UNSET
        finally:
            reuse.checking.discard(name)
        if path is None:
            self.fact_reads_of[name] = meta
        else:
            self.contribution_reads[(name, path)] = meta
        return value

    @contextlib.contextmanager
    def frame(self, path: str) -> Iterator[tuple[set, set]]:
        """Analyse one file: findings located in `path`, from fresh memos, noting every module
        read (`_Modules`) and every project fact asked. Yields (module reads, fact reads)."""
        reads: set = {path}
        fact_reads: set = set()
        with self._state(_fresh_state(), focus={path}, reads=reads, fact_reads=fact_reads):
            yield reads, fact_reads

    @contextlib.contextmanager
    def _state(self, state: dict, *, focus: set | None, reads: set | None, fact_reads: set | None) -> Iterator[None]:
        names = (*_MEMO_DICTS, *_MEMO_STATE)
        saved = {name: getattr(self, name) for name in names}
        saved_focus, saved_reads, saved_facts = self.focus, self.mods.reads, self._fact_reads
        for name, value in state.items():
            setattr(self, name, value)
        self.focus = focus
        self.mods.reads = self.by_name.reads = reads
        self._fact_reads = fact_reads
        try:
            yield
        finally:
            for name, value in saved.items():
                setattr(self, name, value)
            self.focus = saved_focus
            self.mods.reads = self.by_name.reads = saved_reads
            self._fact_reads = saved_facts

    def module_paths(self) -> list[str]:
        """Every module's path, in project order (reading none of them)."""
        return list(dict.keys(self.mods))

    def focused_modules(self) -> Iterator[tuple[str, _Mod]]:
        """(path, module) of the files whose findings are wanted, in project order."""
        focus = self.focus
        if focus is None:
            yield from self.mods.items()
            return
        if len(focus) == 1:  # a frame
            path = next(iter(focus))
            if dict.__contains__(self.mods, path):
                yield path, self.mods[path]
            return
        for path in dict.keys(self.mods):
            if path in focus:
                yield path, self.mods[path]

    def interned(self, expr: ir.Expr | None) -> ir.Expr | None:
        """An expression made after the summaries (a string annotation parsed, a name to look
        up), kept alive with the model: `eval` memoises by `id(expr)`, and a freed temporary's
        id is soon another temporary's, which would then get its value."""
        if expr is None:
            return None
        return self._interned.setdefault((type(expr), expr), expr)

    def entry(self, qualname: str) -> cat.Entry | None:
        return self._extra_entries.get(qualname) or cat.ENTRIES.get(qualname)

    def resolve_qualified(self, qualname: str, near: str = "", depth: int = 0) -> Value:
        """An absolute dotted name -> a project module/definition, or an external name."""
        if depth > _MAX_DEPTH:
            return None
        parts = qualname.split(".")
        for i in range(len(parts), 0, -1):
            mod = self.find_module(".".join(parts[:i]), near) if i > 0 else None
            if mod is None:
                continue
            if mod.ir.name != ".".join(parts[:i]) and self._plain_module_prefix(parts, i):
                # `from seed import seed`: `seed.seed` is the function in seed.py, not the module
                # `seed` found again by a dotted suffix: a plain module has no submodules
                continue
            value: Value = VMod(mod.ir.path)
            for attr in parts[i:]:
                value = self.get_attr(value, attr, depth + 1)
                if value is None:
                    return None
            return value
        return VExt(qualname)

    def _plain_module_prefix(self, parts: list[str], end: int) -> bool:
        """Is a shorter prefix of the dotted name exactly a project module that is no package?"""
        for j in range(1, end):
            mod = self.by_name.get(".".join(parts[:j]))
            if mod is not None and not mod.ir.is_package:
                return True
        return False

    def module_member(self, mod: _Mod, name: str, depth: int = 0) -> Value:
        if depth > _MAX_DEPTH:
            return None
        if name in mod.funcs and not mod.funcs[name].ir.class_name:
            return self.decorated(mod.funcs[mod.rebinds.get(name, name)])
        if name in mod.classes:
            return VClass(mod.ir.path, name)
        if name in mod.assigns:
            return self._eval_name_in_module(mod, name)
        target = mod.imports.get(name)
        # `from . import users` in a package's `__init__` names its own submodule (below):
        # resolving it as a qualified name would come back here
        if target is not None and target != f"{mod.ir.name}.{name}":
            return self.resolve_qualified(target, mod.ir.name, depth + 1)
        for star in mod.ir.star_imports:
            smod = self.find_module(star, mod.ir.name)
            if smod is None or smod is mod:
                continue
            if smod.ir.dunder_all is not None and name not in smod.ir.dunder_all:
                continue
            value = self.module_member(smod, name, depth + 1)
            if value is not None:
                return value
        if mod.ir.is_package:
            sub = self.by_name.get(f"{mod.ir.name}.{name}")
            if sub is not None:
                return VMod(sub.ir.path)
        return None

    def decorated(self, fn: _Func) -> Value:
        """A function as its decorators leave it.

        Unknown decorators (routes, caches, `wraps`) are assumed to keep the function. A
        project decorator that returns a nested wrapper replaces it: calling the name then
        runs the wrapper, with the original function bound to the decorator's parameter
        (`@with_session` opening a session and calling `f(session, ...)`).
        """
        value = VFunc(fn.module.ir.path, fn.ir.qualname)
        if not fn.ir.decorators:
            return value
        key = ("decorated", fn.module.ir.path, fn.ir.qualname)
        if key in self._in_progress:
            return value
        self._in_progress.add(key)
        try:
            scope = _Scope(fn.module, fn.module.funcs.get(fn.ir.parent) if fn.ir.parent else None)
            for dec in reversed(fn.ir.decorators):
                d = self.eval(dec, scope)
                if not isinstance(d, VFunc):
                    continue
                dfn = self.func(d)
                if dfn is None or dfn.ir.is_async or dfn.ir.is_generator:
                    continue
                params = [p for p in dfn.ir.params if not p.star]
                if not params:
                    continue
                env = tuple(sorted(((params[0].name, value), *((n[1:], v) for n, v in d.closure))))
                wrapper = self.return_value(dfn, env)
                if isinstance(wrapper, VFunc) and wrapper.module == dfn.module.ir.path and \
                        wrapper.qualname.startswith(dfn.ir.qualname + ".<locals>."):
                    closure = tuple(sorted((("^" + k, v) for k, v in env), key=lambda kv: kv[0]))
                    value = VFunc(wrapper.module, wrapper.qualname, None, closure, fn.ir.qualname)
            return value
        finally:
            self._in_progress.discard(key)

    def _eval_name_in_module(self, mod: _Mod, name: str) -> Value:
        scope = _Scope(mod, None)
        return self._first(scope, mod.assigns.get(name, ()), ("mod", name))

    # --- evaluation -------------------------------------------------------------------
    def _first(self, scope: _Scope, exprs, guard_name) -> Value:
        guard = (scope.key, guard_name)
        if guard in self._in_progress:
            # a value that depends on itself is unknown *for now*; results computed under
            # this assumption must not be memoised (see eval)
            self._guard_hits += 1
            return None
        self._in_progress.add(guard)
        try:
            for expr in exprs:
                value = self.eval(expr, scope)
                if value is not None:
                    return value
            return None
        finally:
            self._in_progress.discard(guard)

    def lookup(self, name: str, scope: _Scope, pos: int = -1) -> Value:
        if name[:1] == "<":  # the summaries' markers (plain names are identifiers)
            if name.startswith("<import>"):
                return self.resolve_qualified(name[len("<import>"):], scope.mod.ir.name)
            if name.startswith("<class>"):
                return VClass(scope.mod.ir.path, name[len("<class>"):])
        fn = scope.fn
        while fn is not None:
            inner = fn is scope.fn
            # values the caller bound: own params as "name", enclosing ones as "^name"
            wanted = name if inner else "^" + name
            for pname, pvalue in scope.env:
                # a literal the caller passed rules out branches (site_runs); as a value
                # it is no object of interest: `self.conn = conn` then means nothing
                if pname == wanted and type(pvalue) is not VConst:
                    return pvalue
            if name in fn.params:
                value = self.param_value(fn, name, scope if inner else _Scope(fn.module, fn))
                if value is not None:
                    return value
                if inner and fn.assigns.get(name) is None:
                    return None
            pairs = fn.assigns.get(name)
            if pairs:
                if fn is scope.fn:
                    s = scope
                    # reaching definition, approximately: the latest binding before the use
                    # wins; in loops a later binding may reach, so it is the fallback
                    # (`x = None` placeholders are skipped; only when nothing precedes the
                    # use, as in a loop, may a later binding reach it)
                    at = next((i for i, (o, e) in enumerate(pairs) if (pos < 0 or o < pos) and not _is_none(e)), -1)
                    exprs = [pairs[at][1]] if at >= 0 else None
                    if at >= 0 and at + 1 < len(pairs) and type(pairs[at + 1][1]) is ir.Annot \
                            and type(pairs[at][1]) is not ir.Annot:
                        # `pool: AsyncConnectionPool = request.state.pool`: what the annotation
                        # says when the value itself tells nothing
                        exprs.append(pairs[at + 1][1])
                    if exprs is None:
                        exprs = [e for o, e in pairs if o >= pos and not _is_none(e)]
                    guard = (name, pos)
                else:
                    s = _Scope(fn.module, fn, tuple((n[1:], v) for n, v in scope.env if n.startswith("^")))
                    exprs = [e for _, e in pairs]
                    guard = name
                value = self._first(s, exprs, guard)
                if value is not None:
                    return value
            parent = fn.ir.parent
            fn = scope.mod.funcs.get(parent) if parent else None
        return self.module_member(scope.mod, name)

    def eval(self, expr: ir.Expr | None, scope: _Scope) -> Value:
        if expr is None:
            return None
        key = (id(expr), scope.key)
        memo = self._eval_memo
        value = memo.get(key, _UNSET)  # one lookup: most calls are hits
        if value is not _UNSET:
            return value
        if len(self._in_progress) > 200:
            return None
        hits = self._guard_hits
        value = self._eval(expr, scope)
        if hits == self._guard_hits:
            memo[key] = value
        return value

    def eval_settled(self, expr: ir.Expr, scope: _Scope) -> tuple[Value, bool]:
        """`eval`, and whether the value is settled (memoised), so that a caller may keep it."""
        key = (id(expr), scope.key)
        value = self._eval_memo.get(key, _UNSET)
        if value is not _UNSET:
            return value, True
        value = self.eval(expr, scope)
        return value, key in self._eval_memo

    def _eval(self, expr: ir.Expr, scope: _Scope) -> Value:
        t = type(expr)
        if t is ir.Name:
            return self.lookup(expr.id, scope, expr.pos)
        if t is ir.Attr:
            inner = expr.value
            if type(inner) is ir.Call and type(inner.func) is ir.Name and inner.func.id == "super":
                return self._super_attr(expr.attr, scope, inner.args[0] if inner.args else None)
            base = self.eval(expr.value, scope)
            return self.get_attr(base, expr.attr) if base is not None else None
        if t is ir.Call:
            return self.call_result(expr, scope)
        if t is ir.Await:
            value = self.eval(expr.value, scope)
            if isinstance(value, VCoro):
                return value.value
            return value
        if t is ir.Sub:
            base = self.eval(expr.value, scope)
            if isinstance(base, VKind):
                k = cat.kind(base.kind)
                if k is not None:
                    got = k.slice_kind if _is_slice(expr) else k.item_kind
                    return VKind(got) if got else None
            if isinstance(base, VClass):
                # `Repo[Recipe]`, a generic class with its type arguments, is still the class
                # (as a base: `class Recipes(Repo[Recipe])`; called: `Repo[Recipe](db)`)
                return base
            return None
        if t is ir.Enter:
            value = self.eval(expr.value, scope)
            if isinstance(value, VGen):
                return value.value
            if isinstance(value, VKind):
                k = cat.kind(value.kind)
                if k is not None:
                    return VKind(k.enter_kind) if k.enter_kind else value
            if isinstance(value, VInst):
                enter = self.find_method(value.module, value.qualname, "__aenter__" if expr.is_async else "__enter__")
                if enter is not None:
                    return self.return_value(enter, ((enter.ir.params[0].name, value),) if enter.ir.params else ())
            return None
        if t is ir.IterOf:
            value = self.eval(expr.value, scope)
            if isinstance(value, VKind):
                if value.kind == "peewee.Query":
                    return VKind("peewee.Instance")
                if value.kind == "django.QuerySet":
                    return VKind("django.Instance")
            return None
        if t is ir.Union_:
            for item in expr.items:
                value = self.eval(item, scope)
                if value is not None:
                    return value
            return None
        if t is ir.FuncRef:
            return VFunc(scope.mod.ir.path, expr.qualname)
        if t is ir.Annot:
            return self.annotation_value(expr.value, scope)
        return None

    def get_attr(self, base: Value, attr: str, depth: int = 0) -> Value:
        if isinstance(base, VMod):
            mod = self.mods.get(base.name)
            return self.module_member(mod, attr, depth + 1) if mod is not None else None
        if isinstance(base, VExt):
            q = f"{base.qualname}.{attr}"
            entry = self.entry(q)
            return VKind(entry.value_kind) if entry is not None and entry.value_kind else VExt(q)
        if isinstance(base, VKind):
            value = self._kind_attr(base.kind, attr)
            # the other kind the object may be: a union's sync member, or the async twin of a
            # sync kind (an awaited call shows the annotation named the wrong class)
            alt = base.alt or cat.ASYNC_KIND_OF.get(base.kind, "")
            if alt and isinstance(value, VMethod):
                other = self._kind_attr(alt, attr)
                if isinstance(other, VMethod):
                    return VMethod(value.kind, value.name, other.kind)
            return value
        if isinstance(base, VClass):
            fn = self.find_method(base.module, base.qualname, attr)
            if fn is not None:
                bound = base if fn.ir.method_type == "class" else None
                return VFunc(fn.module.ir.path, fn.ir.qualname, bound)
            value = self.class_attr(base.module, base.qualname, attr)
            if value is not None:
                return value
            ck = self.class_kind(base.module, base.qualname)
            return self._kind_attr(ck, attr) if ck else None
        if isinstance(base, VInst):
            fn = self.find_method(base.module, base.qualname, attr)
            if fn is not None:
                if self.is_abstract(fn):
                    # `users: UsersBase` set somewhere to the one implementation there is
                    impl = self.sole_implementation(base, attr)
                    if impl is not None:
                        base, fn = impl
                if self.is_property(fn):
                    # `repos.users` runs the getter: its value is what it returns
                    got = self.return_value(fn, ((fn.ir.params[0].name, base),) if fn.ir.params else ())
                    return got if got is not None else self.session_by_use(base.module, base.qualname, attr)
                if fn.ir.method_type == "static":
                    return VFunc(fn.module.ir.path, fn.ir.qualname)
                bound = VClass(base.module, base.qualname) if fn.ir.method_type == "class" else base
                return VFunc(fn.module.ir.path, fn.ir.qualname, bound)
            value = self.instance_attr(base.module, base.qualname, attr, base.init_env)
            if value is not None:
                return value
            ck = self.class_kind(base.module, base.qualname)
            if ck:
                ik = cat.kind(ck).call_kind if cat.kind(ck) else None
                return self._kind_attr(ik, attr) if ik else None
            return self.session_by_use(base.module, base.qualname, attr)
        return None

    def _super_attr(self, attr: str, scope: _Scope, start: ir.Expr | None = None) -> Value:
        """`super().attr` in a method: the attribute of the first class after the method's own
        (or after `X` in `super(X, self)`) in its bases' order: a project class's method,
        bound to the same `self`, or the library class's."""
        fn = scope.fn
        if fn is None or not fn.ir.class_name or not fn.ir.params:
            return None
        me = self.lookup(fn.ir.params[0].name, scope)
        mro = list(self.mro(scope.mod.ir.path, fn.ir.class_name))
        after = 1
        if start is not None:
            named = self.eval(start, scope)
            if not isinstance(named, VClass):
                return None
            keys = [(m.ir.path, c.qualname) for m, c in mro]
            if (named.module, named.qualname) not in keys:
                return None
            after = keys.index((named.module, named.qualname)) + 1
        for mod, cls in mro[after:]:
            fq = mod.class_methods.get(cls.qualname, {}).get(attr)
            target = mod.funcs.get(fq) if fq is not None else None
            if target is None:
                continue
            if target.ir.method_type == "static":
                return VFunc(mod.ir.path, target.ir.qualname)
            if target.ir.method_type == "class":
                bound = me if isinstance(me, VClass) else (VClass(me.module, me.qualname) if isinstance(me, VInst)
                                                          else VClass(mod.ir.path, cls.qualname))
            else:
                bound = me if isinstance(me, VInst) else None
            if bound is None:
                return None
            if self.is_property(target):
                return self.return_value(target, ((target.ir.params[0].name, bound),) if target.ir.params else ())
            return VFunc(mod.ir.path, target.ir.qualname, bound)
        ck = self.class_kind(scope.mod.ir.path, fn.ir.class_name)
        if not ck:
            return None
        if fn.ir.method_type == "instance":
            k = cat.kind(ck)
            ck = k.call_kind if k is not None else ""
        return self._kind_attr(ck, attr) if ck else None

    def session_by_use(self, module: str, qualname: str, attr: str) -> Value:
        """A sync Session known by how the class uses it: one of its methods (or a base's)
        calls `self.<attr>.query(Model)` with a mapped class, which only a sync Session takes
        (jupyterhub's handlers: `db` is a property returning `self.settings["db"]`)."""
        key = (module, qualname, attr)
        got = self._session_uses.get(key, _UNSET)
        if got is _UNSET:
            got = self._session_uses[key] = None
            for mod, cls in self.mro(module, qualname):
                for _name, fq in mod.class_methods.get(cls.qualname, {}).items():
                    fn = mod.funcs.get(fq)
                    if fn is not None and self._queries_through(fn, attr):
                        got = self._session_uses[key] = VKind("sqlalchemy.Session")
                        return got
        return got

    def _queries_through(self, fn: _Func, attr: str) -> bool:
        if fn.ir.method_type != "instance" or not fn.ir.params:
            return False
        me = fn.ir.params[0].name
        sites = fn.module.ir.sites
        for sid in fn.ir.sites:
            call = sites[sid].expr
            if (type(call) is ir.Call and call.args and type(call.func) is ir.Attr and call.func.attr == "query"
                    and type(call.func.value) is ir.Attr and call.func.value.attr == attr
                    and type(call.func.value.value) is ir.Name and call.func.value.value.id == me):
                model = self.eval(call.args[0], _Scope(fn.module, fn))
                if isinstance(model, VClass) and self.is_mapped_class(model.module, model.qualname):
                    return True
        return False

    def is_abstract(self, fn: _Func) -> bool:
        """An `@abstractmethod`: the code that runs is a subclass's."""
        return bool(fn.ir.class_name) and bool(self.library_decorators(fn) & cat.ABSTRACT_DECORATORS)

    def sole_implementation(self, inst: VInst, name: str) -> tuple[VInst, _Func] | None:
        """The one project subclass of an instance's class that implements `name` (an object
        typed by its interface: `users: UsersBase`); None when there are none or several."""
        found = []
        for sub in self.subclasses(inst.module, inst.qualname):
            fn = self.find_method(sub[0], sub[1], name)
            if fn is not None and not self.is_abstract(fn):
                found.append((VInst(sub[0], sub[1], inst.init_env), fn))
        impls = {(f.module.ir.path, f.ir.qualname) for _, f in found}
        return found[0] if len(impls) == 1 else None

    def subclasses(self, module: str, qualname: str) -> list[tuple[str, str]]:
        """Project classes that derive from this one, directly or not."""
        return self.fact_at("subclasses", (module, qualname), [])

    def is_property(self, fn: _Func) -> bool:
        """A method read as an attribute: `@property`, `@functools.cached_property` (and the
        cached_property of werkzeug, Django...)."""
        return fn.ir.method_type == "instance" and bool(self.library_decorators(fn) & cat.PROPERTY_DECORATORS)

    def _kind_attr(self, kind_name: str, attr: str) -> Value:
        k = cat.kind(kind_name)
        if k is None:
            return None
        if attr in k.methods or (k.other_methods is not None and not attr.startswith("_")):
            return VMethod(kind_name, attr)
        extra = cat.CLASS_ATTRS.get(kind_name, {}).get(attr)
        if extra:
            return VKind(extra)
        if k.attr_kind and not attr.startswith("_"):
            return VKind(k.attr_kind)
        return None

    # --- classes ----------------------------------------------------------------------
    def _class(self, module: str, qualname: str) -> tuple[_Mod, ir.ClassIR] | None:
        mod = self.mods.get(module)
        if mod is None:
            return None
        cls = mod.classes.get(qualname)
        return (mod, cls) if cls is not None else None

    def mro(self, module: str, qualname: str, depth: int = 0) -> Iterator[tuple[_Mod, ir.ClassIR]]:
        """The class and its project bases, depth first (lazily: callers stop at a hit)."""
        if depth == 0:
            key = (module, qualname)
            got = self._mro_memo.get(key)
            if got is None:
                got = self._settled_mro(module, qualname, 0)
                if got is not None:
                    self._mro_memo[key] = got
            if got is not None:
                return iter(got)
        return self._mro_walk(module, qualname, depth)

    def _mro_walk(self, module: str, qualname: str, depth: int) -> Iterator[tuple[_Mod, ir.ClassIR]]:
        found = self._class(module, qualname)
        if found is None or depth > _MAX_DEPTH:
            return
        yield found
        mod, cls = found
        scope = _Scope(mod, mod.funcs.get(cls.parent) if cls.parent else None)
        for base in cls.bases:
            value = self.eval(base, scope)
            if isinstance(value, VClass) and (value.module, value.qualname) != (module, qualname):
                yield from self._mro_walk(value.module, value.qualname, depth + 1)

    def _settled_mro(self, module: str, qualname: str, depth: int) -> list | None:
        """What `_mro_walk` yields, from memoised values only; None while a base is not memoised.

        The walk is asked ~30k times on frigate, mostly for the same classes. Its list can
        be kept once every base it evaluates is memoised: walking it again would only read
        the memo (no evaluation, hence no cycle guard hit), and memoised values do not change.
        """
        found = self._class(module, qualname)
        if found is None or depth > _MAX_DEPTH:
            return []
        out = [found]
        mod, cls = found
        scope = _Scope(mod, mod.funcs.get(cls.parent) if cls.parent else None)
        memo = self._eval_memo
        for base in cls.bases:
            if base is None:
                continue
            value = memo.get((id(base), scope.key), _UNSET)
            if value is _UNSET:
                return None
            if isinstance(value, VClass) and (value.module, value.qualname) != (module, qualname):
                rest = self._settled_mro(value.module, value.qualname, depth + 1)
                if rest is None:
                    return None
                out.extend(rest)
        return out

    def class_kind(self, module: str, qualname: str) -> str | None:
        """The catalogue kind a project class inherits (peewee/Django models), if any."""
        key = (module, qualname)
        if key in self._class_kinds:
            return self._class_kinds[key]
        # a settled mro means every base read below is memoised: the answer cannot change
        settled = key in self._mro_memo
        if not settled:
            got = self._settled_mro(module, qualname, 0)
            if got is not None:
                self._mro_memo[key] = got
                settled = True
        out = self._class_kind(module, qualname)
        if settled:
            self._class_kinds[key] = out
        return out

    def _class_kind(self, module: str, qualname: str) -> str | None:
        for mod, cls in self.mro(module, qualname):
            scope = _Scope(mod, mod.funcs.get(cls.parent) if cls.parent else None)
            for base in cls.bases:
                value = self.eval(base, scope)
                if isinstance(value, VExt):
                    entry = self.entry(value.qualname)
                    if entry is not None and entry.subclass_kind:
                        return entry.subclass_kind
        return None

    def find_method(self, module: str, qualname: str, name: str) -> _Func | None:
        for mod, cls in self.mro(module, qualname):
            fq = mod.class_methods.get(cls.qualname, {}).get(name)
            if fq is not None:
                return mod.funcs.get(fq)
        return None

    def class_attr(self, module: str, qualname: str, name: str) -> Value:
        for mod, cls in self.mro(module, qualname):
            by_name = self._class_attrs.get((mod.ir.path, cls.qualname))
            if by_name is None:  # the class body's bindings by name, in order (built once)
                by_name = self._class_attrs[(mod.ir.path, cls.qualname)] = {}
                for n, v in cls.attrs:
                    by_name.setdefault(n, []).append(v)
            exprs = by_name.get(name)
            if exprs:
                scope = _Scope(mod, mod.funcs.get(cls.parent) if cls.parent else None)
                for expr in exprs:
                    # a class-based view (fastapi-utils/fastapi-restful `@cbv`): FastAPI
                    # injects `db: Session = Depends(get_db)` into the instance
                    if type(expr) is ir.Call and self._is_depends(expr, scope):
                        injected = self.dependency_value(expr, scope)
                        if injected is not None:
                            return injected
                return self._first(scope, exprs, ("cls", cls.qualname, name))
        return None

    def instance_attr(self, module: str, qualname: str, name: str, inst_env: tuple = ()) -> Value:
        guard = ("self-attr", module, qualname, name)
        if guard in self._in_progress:
            # an attribute assigned from itself in several methods (a query builder's
            # `self.query = self.query.where(...)`): each assignment is followed one level,
            # not along every chain of methods (factorially many: minutes on a dozen methods)
            self._guard_hits += 1
            return None
        self._in_progress.add(guard)
        try:
            for mod, cls in self.mro(module, qualname):
                pairs = mod.self_attrs.get(f"{cls.qualname}.{name}")
                if pairs:
                    me = VInst(module, qualname)
                    for fn, expr in pairs:
                        extra = inst_env if fn.ir.name == "__init__" else ()
                        scope = _Scope(mod, fn, tuple(sorted(((fn.ir.params[0].name, me), *extra),
                                                             key=lambda kv: kv[0])))
                        value = self._first(scope, [expr], ("self", cls.qualname, name))
                        if value is not None:
                            return value
            return self.class_attr(module, qualname, name)
        finally:
            self._in_progress.discard(guard)

    # --- calls ------------------------------------------------------------------------
    def call_result(self, call: ir.Call, scope: _Scope) -> Value:
        func = self.eval(call.func, scope)
        if func is None:
            if type(call.func) is ir.Name and call.func.id == "next" and call.args \
                    and self.lookup("next", scope) is None:
                # the builtin: a project generator's first yielded value (`next(get_db())`)
                gen = self.eval(call.args[0], scope)
                return gen.value if isinstance(gen, VGen) else None
            return self._orm_query(call, scope)
        if isinstance(func, VExt):
            q = func.qualname
            if q in ("contextlib.contextmanager", "contextlib.asynccontextmanager", "functools.wraps"):
                return self.eval(call.args[0], scope) if call.args else None
            if q in cat.CASTS:
                # `cast(AsyncConnectionPool, request.state.pool)`: the type it names
                target = call.args[0] if call.args else dict(call.kwargs).get("typ")
                return self.annotation_value(target, scope) if target is not None else None
            entry = self.entry(q)
            if entry is None:
                return None
            if entry.switch_kwarg is not None:
                kw, table = entry.switch_kwarg
                for k, v in call.kwargs:
                    if k == kw:
                        arg = self.eval(v, scope)
                        if isinstance(arg, VExt) and arg.qualname in table:
                            return VKind(table[arg.qualname])
            if entry.project_arg_returns is not None and call.args \
                    and isinstance(self.eval(call.args[0], scope), (VClass, VInst)):
                return VKind(entry.project_arg_returns) if entry.project_arg_returns else None
            return VKind(entry.returns) if entry.returns else None
        if isinstance(func, VMethod):
            if func.alt:
                sites = scope.mod.ir.sites  # the call's own module: expressions are evaluated there
                func = func.at(call.site < len(sites) and sites[call.site].awaited)
            k = cat.kind(func.kind)
            m = k.methods.get(func.name) or k.other_methods if k else None
            if m is not None and m.named_returns and (call.args or any(n == "name" for n, _ in call.kwargs)):
                return VKind(m.named_returns)
            if m is not None and m.kwarg_returns:
                for n, _ in call.kwargs:
                    if n in m.kwarg_returns:
                        return VKind(m.kwarg_returns[n])
            if m is not None and m.arg_returns:
                first = call.args[0] if call.args else dict(call.kwargs).get("cursor")
                arg = self.eval(first, scope) if first is not None else None
                if isinstance(arg, VExt) and arg.qualname in m.arg_returns:
                    return VKind(m.arg_returns[arg.qualname])
            return VKind(m.returns) if m is not None and m.returns else None
        if isinstance(func, VKind):
            k = cat.kind(func.kind)
            if k is None or not k.call_kind:
                return None
            # `Union[sessionmaker, async_sessionmaker]` makes a Session or an AsyncSession:
            # which one, each use of it says (awaited or not, `with` or `async with`)
            alt = cat.kind(func.alt) if func.alt else None
            if alt is not None and alt.call_kind and alt.call_kind != k.call_kind:
                return VKind(k.call_kind, alt.call_kind)
            return VKind(k.call_kind)
        if isinstance(func, VFunc):
            fn = self.func(func)
            if fn is None:
                return None
            env = self.bind_args(fn, func, call, scope)
            value = self.return_value(fn, env)
            if fn.ir.is_generator:
                return VGen(value, func, env)
            if fn.ir.is_async:
                return VCoro(value)
            return value
        if isinstance(func, VClass):
            init = self.find_method(func.module, func.qualname, "__init__")
            env: tuple = ()
            if init is not None:
                bound = VFunc(init.module.ir.path, init.ir.qualname, VInst(func.module, func.qualname))
                env = tuple(kv for kv in self.bind_args(init, bound, call, scope)
                            if not init.ir.params or kv[0] != init.ir.params[0].name)
            return VInst(func.module, func.qualname, env)
        return None

    def _orm_query(self, call: ir.Call, scope: _Scope) -> Value:
        """`x.query(Model)` on an object of unknown kind, Model a mapped class: only a sync
        SQLAlchemy Session has `query()` taking one (AsyncSession has none), so it is one's
        Query. Sessions reach helpers in ways nothing says (a dependency-injection container
        hands a repository its `session_factory`)."""
        if type(call.func) is not ir.Attr or call.func.attr != "query" or not call.args:
            return None
        model = self.eval(call.args[0], scope)
        if isinstance(model, VClass) and self.is_mapped_class(model.module, model.qualname):
            return VKind("sqlalchemy.Query")
        return None

    def is_mapped_class(self, module: str, qualname: str) -> bool:
        """A SQLAlchemy declarative class: it (or a base) names its `__tablename__`/`__table__`,
        or derives from `DeclarativeBase`."""
        for mod, cls in self.mro(module, qualname):
            if any(name in ("__tablename__", "__table__") for name, _ in cls.attrs):
                return True
            scope = _Scope(mod, mod.funcs.get(cls.parent) if cls.parent else None)
            for base in cls.bases:
                value = self.eval(base, scope)
                if isinstance(value, VExt) and value.qualname in cat.DECLARATIVE_BASES:
                    return True
        return False

    def func(self, ref: VFunc) -> _Func | None:
        mod = self.mods.get(ref.module)
        return mod.funcs.get(ref.qualname) if mod is not None else None

    def bind_args(self, fn: _Func, ref: VFunc, call: ir.Call | None, scope: _Scope | None) -> tuple:
        """Values of a callee's parameters that the call site knows (only known ones)."""
        params = [p for p in fn.ir.params if not p.star]
        env: list[tuple[str, Value]] = list(ref.closure)
        if fn.ir.method_type in ("instance", "class") and params:
            if ref.bound is not None:
                env.append((params[0].name, ref.bound))
                params = params[1:]
            elif fn.ir.method_type == "class":
                env.append((params[0].name, VClass(fn.module.ir.path, fn.ir.class_name)))
                params = params[1:]
        args = _arguments(fn, params, call) if call is not None and scope is not None else None
        if args is None:
            return tuple(env)
        for name, arg in args.items():
            value = self.eval(arg, scope)
            if value is not None and isinstance(value, (VKind, VInst, VClass, VFunc)):
                env.append((name, value))
        tested = fn.tested_params()
        if tested and not any(k in ("*", "**") for k, _ in call.kwargs):  # `f(**kw)`: unknown
            env.extend(_literal_args(params, args, tested, scope))
        return tuple(sorted(env, key=lambda kv: kv[0]))

    def arguments(self, fn: _Func, ref: VFunc, call: ir.Call) -> dict[str, ir.Expr]:
        """The argument expressions a call passes to the callee's parameters, by name
        (`self`/`cls` of a bound method left out); empty when they cannot bind."""
        params = [p for p in fn.ir.params if not p.star]
        if fn.ir.method_type in ("instance", "class") and params and (ref.bound is not None
                                                                     or fn.ir.method_type == "class"):
            params = params[1:]
        return _arguments(fn, params, call) or {}

    def return_value(self, fn: _Func, env: tuple = ()) -> Value:
        scope = _Scope(fn.module, fn, env)
        ann = fn.assigns.get("<return-annotation>")
        claimed = self.annotation_value(ann[0][1], scope) if ann else None
        if claimed is not None and not (isinstance(claimed, VInst) and not claimed.init_env):
            return claimed
        exprs = fn.ir.yields if fn.ir.is_generator else fn.ir.returns
        if claimed is None:
            return self._first(scope, exprs, "<return>")
        # `-> Repo` names the class only: `return Repo(db)` also says what its __init__ got;
        # `-> BaseQuery` (a project subclass of Query) says less than `return session.query(M)`
        actual = self._first(scope, exprs, "<return>")
        return actual if isinstance(actual, (VInst, VKind)) else claimed

    def param_value(self, fn: _Func, name: str, scope: _Scope) -> Value:
        """Evidence for a parameter without a caller: self/cls, annotation, Depends default."""
        param = fn.params[name]
        params = fn.ir.params
        if fn.ir.class_name and params and params[0].name == name:
            if fn.ir.method_type == "instance":
                return VInst(fn.module.ir.path, fn.ir.class_name)
            if fn.ir.method_type == "class":
                return VClass(fn.module.ir.path, fn.ir.class_name)
        # what FastAPI injects wins over what the annotation claims: `repo: Repo =
        # Depends(get_repo)` is the Repo that get_repo built around the request's session,
        # which the bare class `Repo` knows nothing of
        found = self.depends_call(fn, param)
        injected = self.dependency_value(*found) if found is not None else None
        if injected is not None:
            return injected
        if param.annotation is not None:
            outer = _Scope(fn.module, fn.module.funcs.get(fn.ir.parent) if fn.ir.parent else None)
            return self.annotation_value(param.annotation, outer)
        return None

    def annotation_value(self, expr: ir.Expr, scope: _Scope, depth: int = 0) -> Value:
        """The value an annotation promises: `Session` -> a Session object."""
        if depth > _MAX_DEPTH or expr is None:
            return None
        t = type(expr)
        if t is ir.Const and isinstance(expr.value, str):
            parsed = self.interned(ir.parse_dotted(expr.value))
            return self.annotation_value(parsed, scope, depth + 1) if parsed is not None else None
        if t is ir.Union_:
            return _one_of([self.annotation_value(item, scope, depth + 1) for item in expr.items])
        if t is ir.Sub:
            base = self.eval(expr.value, scope)
            if isinstance(base, VExt):
                q = base.qualname
                if q in cat.ANNOTATED or q in cat.GENERATOR_TYPES or q in cat.TYPE_QUALIFIERS:
                    return self.annotation_value(expr.index[0], scope, depth + 1) if expr.index else None
                if q in cat.OPTIONAL_WRAPPERS:
                    return _one_of([self.annotation_value(item, scope, depth + 1) for item in expr.index])
                if q in cat.CALLABLE_TYPES:
                    # `Callable[[], Session]`: calling it gives a Session, as a sessionmaker's call does
                    made = self.annotation_value(expr.index[-1], scope, depth + 1) if expr.index else None
                    factory = cat.FACTORY_OF.get(made.kind) if isinstance(made, VKind) else None
                    return VKind(factory) if factory else None
                # a catalogue class with type arguments: `sessionmaker[Session]` is a sessionmaker
                entry = self.entry(q)
                return VKind(entry.instance) if entry is not None and entry.instance else None
            return None
        if t is ir.Call:
            # the value of a `SessionT = NewType("SessionT", Session)` alias (see the Name case)
            func = self.eval(expr.func, scope)
            if isinstance(func, VExt) and func.qualname in cat.NEWTYPES:
                wrapped = expr.args[1] if len(expr.args) > 1 else dict(expr.kwargs).get("tp")
                return self.annotation_value(wrapped, scope, depth + 1) if wrapped is not None else None
            return None
        if t is ir.Name:
            # a module-level alias: `SessionDep = Annotated[Session, Depends(get_db)]`
            exprs = scope.mod.assigns.get(expr.id) if scope.fn is None or expr.id not in scope.fn.assigns else None
            if exprs and expr.id not in scope.mod.funcs and expr.id not in scope.mod.classes:
                for e in exprs:
                    value = self.annotation_value(e, _Scope(scope.mod, None), depth + 1)
                    if value is not None:
                        return value
                return None
            target = scope.mod.imports.get(expr.id)
            if target is not None:
                alias = self._imported_alias(target, scope.mod.ir.name, depth)
                if alias is not None:
                    return alias
        if t in (ir.Name, ir.Attr):
            value = self.eval(expr, scope)
            if isinstance(value, VExt):
                entry = self.entry(value.qualname)
                return VKind(entry.instance) if entry is not None and entry.instance else None
            if isinstance(value, VClass):
                return VInst(value.module, value.qualname)
        return None

    def _imported_alias(self, target: str, near: str, depth: int) -> Value:
        """An annotation alias defined in another project module."""
        for e, scope in self._imported_alias_definitions(target, near):
            value = self.annotation_value(e, scope, depth + 1)
            if value is not None:
                return value
        return None

    def _imported_alias_definitions(self, target: str, near: str, depth: int = 0) -> list[tuple[ir.Expr, _Scope]]:
        """What `from mod import Alias` names, when `Alias` is assigned in a project module
        (`SessionDep = Annotated[...]`): its module-level definitions, with their scope. A
        module that imports the alias from another (a package's `__init__`, `app/postgres.py`
        re-exporting `app/kit/db.py`'s) is followed to where it is assigned."""
        mod_name, _, name = target.rpartition(".")
        mod = self.find_module(mod_name, near) if mod_name else None
        if mod is None:
            return []
        if name in mod.assigns:
            return [(e, _Scope(mod, None)) for e in mod.assigns[name]]
        reexported = mod.imports.get(name)
        if reexported is None or depth >= _MAX_DEPTH or name in mod.funcs or name in mod.classes:
            return []
        return self._imported_alias_definitions(reexported, mod.ir.name, depth + 1)

    def depends_call(self, fn: _Func, param: ir.Param) -> tuple[ir.Call, _Scope] | None:
        """The `Depends(...)` call that provides a parameter (its default, or the metadata of
        `Annotated[X, Depends(dep)]`, possibly through an alias in this or another module),
        with the scope it is written in."""
        outer = _Scope(fn.module, fn.module.funcs.get(fn.ir.parent) if fn.ir.parent else None)
        if type(param.default) is ir.Call and self._is_depends(param.default, outer):
            return param.default, outer
        return self._annotated_depends(param.annotation, outer, 0)

    def _is_depends(self, call: ir.Call, scope: _Scope) -> bool:
        func = self.eval(call.func, scope)
        return isinstance(func, VExt) and func.qualname in cat.DEPENDS

    def _annotated_depends(self, expr: ir.Expr | None, scope: _Scope, depth: int) -> tuple | None:
        if expr is None or depth > _MAX_DEPTH:
            return None
        if type(expr) is ir.Name:
            exprs = scope.mod.assigns.get(expr.id)
            if exprs:
                for e in exprs:
                    got = self._annotated_depends(e, _Scope(scope.mod, None), depth + 1)
                    if got is not None:
                        return got
                return None
            target = scope.mod.imports.get(expr.id)
            if target is not None:
                for e, alias_scope in self._imported_alias_definitions(target, scope.mod.ir.name):
                    got = self._annotated_depends(e, alias_scope, depth + 1)
                    if got is not None:
                        return got
            return None
        if type(expr) is ir.Sub:
            base = self.eval(expr.value, scope)
            if isinstance(base, VExt) and base.qualname in cat.ANNOTATED:
                for meta in expr.index[1:]:
                    if type(meta) is ir.Call and self._is_depends(meta, scope):
                        return meta, scope
        return None

    def dependency_value(self, expr: ir.Expr, scope: _Scope) -> Value:
        """`Depends(get_db)` -> the value FastAPI injects (what get_db yields or returns)."""
        if not isinstance(expr, ir.Call):
            return None
        func = self.eval(expr.func, scope)
        if not (isinstance(func, VExt) and func.qualname in cat.DEPENDS):
            return None
        target = expr.args[0] if expr.args else dict(expr.kwargs).get("dependency")
        dep = self.eval(target, scope) if target is not None else None
        if isinstance(dep, VFunc):
            fn = self.func(dep)
            if fn is None:
                return None
            value = self.return_value(fn, self.bind_args(fn, dep, None, None))
            return value.value if isinstance(value, (VGen, VCoro)) else value
        if isinstance(dep, VClass):
            return VInst(dep.module, dep.qualname)
        if isinstance(dep, VExt):
            entry = self.entry(dep.qualname)
            return VKind(entry.returns) if entry is not None and entry.returns else None
        return None

    # --- blocking operations ----------------------------------------------------------
    def site_ops(self, fn: _Func, env: tuple = (), depth: int = 0) -> tuple[Op, ...]:
        """Blocking operations at the sites of `fn`'s own body, given its parameters' values."""
        key = (fn.module.ir.path, fn.ir.qualname, env)
        memo = self._ops_memo.get(key)
        if memo is None:
            # results computed under a cycle assumption are reused within the current
            # top-level question only: recomputing them each time is exponential in the
            # length of a recursive chain of helpers
            memo = self._ops_pending.get(key)
        if memo is not None:
            return memo
        if key in self._ops_stack or depth > _MAX_DEPTH:
            self._incomplete = True
            return ()
        self._ops_stack.append(key)
        outer_incomplete = self._incomplete
        self._incomplete = False
        try:
            ops = tuple(self._compute_ops(fn, env, depth))
        finally:
            self._ops_stack.pop()
        if not self._incomplete:
            self._ops_memo[key] = ops
        else:
            self._ops_pending[key] = ops
        self._incomplete = self._incomplete or outer_incomplete
        if not self._ops_stack:
            self._ops_pending.clear()
        return ops

    def direct_ops(self, fn: _Func, env: tuple = ()) -> DirectOps:
        """The operations of `site_ops(fn, env)` that are not calls into project helpers, by site id.

        Cheaper than `site_ops` when it is not memoised yet: the helpers are not followed (a
        via-op needs the helper's whole analysis, with the arguments bound, to exist), and
        each site is looked at when asked (the loop rules ask about the sites in loops).
        """
        key = (fn.module.ir.path, fn.ir.qualname, env)
        got = self._direct_memo.get(key)
        if got is None:
            got = self._direct_memo[key] = DirectOps(self, fn, env, self._ops_memo.get(key))
        return got

    def _compute_ops(self, fn: _Func, env: tuple, depth: int, helpers: bool = True) -> Iterator[Op]:
        scope = _Scope(fn.module, fn, env)
        sites = fn.module.ir.sites
        path = fn.module.ir.path
        for sid in fn.ir.sites:
            site = sites[sid]
            if site.conds and not fn.site_runs(site, env):
                continue
            op = self._site_op(site, scope, path, depth, helpers)
            if op is not None:
                yield op

    def _site_op(self, site: ir.Site, scope: _Scope, path: str, depth: int, helpers: bool = True) -> Op | None:
        ref = (path, site.id)
        if site.kind == ir.CALL:
            call = site.expr
            if not isinstance(call, ir.Call):
                return None
            func = self.eval(call.func, scope)
            if func is None:
                return self._builtin_op(call, scope, ref, depth) or self._bind_op(call, scope, ref)
            if isinstance(func, VMethod):
                func = func.at(site.awaited)
                k = cat.kind(func.kind)
                if k is None or (k.is_async and func.name not in k.methods):
                    return None
                if site.awaited and not k.is_async and func.kind not in cat.AWAITED_STILL_BLOCKS:
                    # `await session.execute(...)` on what says it is a sync Session: a sync
                    # result cannot be awaited, so the evidence (an annotation) is wrong
                    return None
                m = k.methods.get(func.name) or k.other_methods
                if m is not None and m.effect != cat.NONE:
                    return Op(ref, m.effect, k.label, k.twin)
                return None
            if isinstance(func, VExt):
                return self._ext_call_op(func.qualname, call, scope, ref)
            if isinstance(func, VKind):
                k = cat.kind(func.kind)
                if k is not None and not k.is_async and k.call_effect != cat.NONE:
                    return Op(ref, k.call_effect, k.label, k.twin)
                return None
            # a helper's operations come back as a via-op: without `helpers`, not looked for
            # (these are the last branches: skipping them changes no other site's answer)
            if isinstance(func, VFunc):
                return self._helper_op(func, call, scope, ref, depth) if helpers else None
            if isinstance(func, VClass) and helpers:
                init = self.find_method(func.module, func.qualname, "__init__")
                if init is not None:
                    return self._helper_op(VFunc(init.module.ir.path, init.ir.qualname, VInst(func.module, func.qualname)),
                                           call, scope, ref, depth)
            return None
        if site.kind == ir.ITER:
            value = self.eval(site.expr, scope)
            return self._iter_op(value, ref, depth)
        if site.kind == ir.TRUTH:
            value = self.eval(site.expr, scope)
            if isinstance(value, VKind) and value.kind in cat.CACHING_QUERY_KINDS:
                k = cat.kind(value.kind)
                return Op(ref, cat.IO, k.label, k.twin) if k is not None else None
            return None
        if site.kind == ir.SUB:
            sub = site.expr
            value = self.eval(sub.value, scope) if isinstance(sub, ir.Sub) else None
            if isinstance(value, (VKind, VClass)):
                k = cat.kind(self._kind_of(value))
                if k is not None and not k.is_async:
                    effect = k.slice_effect if _is_slice(sub) else k.item_effect
                    if effect != cat.NONE:
                        return Op(ref, effect, k.label, k.twin)
            return None
        if site.kind == ir.WITH:
            value = self.eval(site.expr, scope)
            if isinstance(value, VKind):
                k = cat.kind(value.kind)
                if k is not None and not k.is_async and k.enter_effect != cat.NONE:
                    return Op(ref, k.enter_effect, k.label, k.twin)
        return None

    def _iter_op(self, value: Value, ref: SiteRef, depth: int = 0, first: bool = False) -> Op | None:
        if isinstance(value, VGen) and isinstance(value.func, VFunc):
            # consuming a project generator runs its body here; `next(gen)` (`first`) runs
            # it up to its first `yield` only (`db = next(get_db())`: not its cleanup)
            fn = self.func(value.func)
            if fn is None or fn.ir.is_async:
                return None
            return self._ops_to_via(fn, value.func, value.env, ref, depth, _first_yield(fn) if first else None)
        k = cat.kind(self._kind_of(value))
        if k is not None and not k.is_async and k.iter_effect != cat.NONE:
            return Op(ref, k.iter_effect, k.label, k.twin)
        return None

    def _ext_call_op(self, q: str, call: ir.Call, scope: _Scope, ref: SiteRef) -> Op | None:
        entry = self.entry(q)
        if entry is not None and entry.effect != cat.NONE:
            label = q.split(".")[0]
            return Op(ref, entry.effect, label)
        return self._bind_op(call, scope, ref, q)

    def _bind_op(self, call: ir.Call, scope: _Scope, ref: SiteRef, ext: str = "") -> Op | None:
        """`metadata.create_all(engine)`, `Table(..., autoload_with=engine)`: I/O through the bind."""
        keyword = cat.BIND_CALLS.get(ext)
        if keyword is not None:
            for k, v in call.kwargs:
                if k == keyword and self._kind_of(self.eval(v, scope)) in cat.BIND_KINDS:
                    return Op(ref, cat.IO, "SQLAlchemy reflection", "await conn.run_sync(...)")
            return None
        if not (isinstance(call.func, ir.Attr) and call.func.attr in cat.BIND_METHODS):
            return None
        for arg in (*call.args, *(v for k, v in call.kwargs if k == "bind")):
            value = self.eval(arg, scope)
            if isinstance(value, VKind) and value.kind in cat.BIND_KINDS:
                return Op(ref, cat.IO, "SQLAlchemy MetaData", "await conn.run_sync(metadata.create_all)")
        return None

    def _builtin_op(self, call: ir.Call, scope: _Scope, ref: SiteRef, depth: int) -> Op | None:
        """Builtins that run a lazy query: `list(q)`, `sorted(q)`, `len(qs)`, `"".join(gen())`."""
        if not call.args:
            return None
        f = call.func
        if isinstance(f, ir.Name):
            if self.lookup(f.id, scope) is not None:
                return None  # shadowed by the project
            if f.id in _BUILTIN_ITERATORS:
                return self._iter_op(self.eval(call.args[0], scope), ref, depth, first=f.id == "next")
            if f.id in ("len", "bool"):
                value = self.eval(call.args[0], scope)
                kind = self._kind_of(value)
                k = cat.kind(kind)
                if k is not None and not k.is_async and k.len_effect != cat.NONE:
                    return Op(ref, k.len_effect, k.label, k.twin)
        elif isinstance(f, ir.Attr) and f.attr == "join" and isinstance(f.value, ir.Const):
            return self._iter_op(self.eval(call.args[0], scope), ref, depth)
        return None

    def _kind_of(self, value: Value) -> str | None:
        """The catalogue kind of a value, including project classes that inherit one."""
        if isinstance(value, VKind):
            return value.kind
        if isinstance(value, VClass):
            return self.class_kind(value.module, value.qualname)
        return None

    def _helper_op(self, func: VFunc, call: ir.Call, scope: _Scope, ref: SiteRef, depth: int) -> Op | None:
        fn = self.func(func)
        if fn is None or fn.ir.is_async or fn.ir.is_generator:
            return None
        if self.is_offloaded_function(fn):
            return None
        return self._ops_to_via(fn, func, self.bind_args(fn, func, call, scope), ref, depth)

    def _ops_to_via(self, fn: _Func, func: VFunc, env: tuple, ref: SiteRef, depth: int,
                    before: int | None = None) -> Op | None:
        ops = self.site_ops(fn, env, depth + 1)
        if before is not None:
            ops = tuple(op for op in ops if op.site[1] < before)
        sites = fn.module.ir.sites
        # `if self.db.dirty: self.db.rollback()` in a `finish()` hook: cleanup of what a
        # failed handler left behind, not work each call does
        ops = tuple(op for op in ops if not _cleanup_when_pending(sites[op.site[1]]))
        if not ops:
            return None
        # the shortest way down; at equal length a statement rather than the `with` around it
        # (`sess.execute(stmt)`, not the `with sess.begin():` that commits it); the ops are
        # at sites of `fn`'s own module
        best = min(ops, key=lambda o: (len(o.chain), sites[o.site[1]].kind == ir.WITH, o.site[1]))
        chain = ((best.site, fn.ir.qualname),) + best.chain
        return Op(ref, best.effect, best.label, best.twin, chain, func.display or fn.ir.qualname)

    def is_offloaded_function(self, fn: _Func) -> bool:
        names = self.library_decorators(fn)
        return bool(names & cat.OFFLOAD_DECORATORS or names & self._offload)

    def library_decorators(self, fn: _Func) -> set[str]:
        """The qualified names of a function's library decorators (a decorator call counts by
        its callee: `@sync_to_async(thread_sensitive=False)`); the builtin `property`, when
        the module does not shadow it, as `builtins.property`."""
        names: set[str] = set()
        if not fn.ir.decorators:
            return names
        scope = _Scope(fn.module, fn.module.funcs.get(fn.ir.parent) if fn.ir.parent else None)
        for dec in fn.ir.decorators:
            target = dec.func if type(dec) is ir.Call else dec
            if type(target) is ir.Name and target.id == "property" and self.lookup("property", scope) is None:
                names.add("builtins.property")
                continue
            value = self.eval(target, scope)
            if isinstance(value, VExt):
                names.add(value.qualname)
        return names

    # --- the questions rules ask ------------------------------------------------------
    def functions(self) -> Iterator[_Func]:
        """Functions whose findings are wanted (all, or those of the focus files)."""
        for _path, mod in self.focused_modules():
            yield from mod.funcs.values()

    def on_loop(self, fn: _Func) -> bool:
        """Does this function's own body run on the event loop when called by the framework?
        An `async def`, or a `def` whose decorator calls it from an `async def` wrapper."""
        if fn.ir.is_async:
            return not fn.ir.is_lambda
        return bool(fn.ir.decorators) and bool(self.loop_decorator(fn))

    def loop_decorator(self, fn: _Func) -> str:
        """The decorator that runs a plain `def` on the event loop, as written (`@name`), or "".

        Its wrapper is an `async def` that calls the function it wraps without `await` and not
        in a thread (ragflow's `add_tenant_id_to_kwargs`: `return func(**kwargs)` in `async def
        wrapper`): the framework awaits the wrapper, so the body runs inline on the loop. Only
        the decorator nearest the `def` is asked: one below it could hand the function to a
        thread.
        """
        return "" if fn.ir.is_async else self.inline_decorator(fn)

    def inline_decorator(self, fn: _Func) -> str:
        """The decorator nearest a function whose `async def` wrapper calls it inline, as
        written, or "": the function would run on the event loop as a plain `def` too."""
        if fn.ir.is_lambda or not fn.ir.decorators:
            return ""
        key = (fn.module.ir.path, fn.ir.qualname)
        got = self._loop_decorators.get(key)
        if got is None:
            got = self._loop_decorators[key] = self._find_loop_decorator(fn)
        return got

    def _find_loop_decorator(self, fn: _Func) -> str:
        dec = fn.ir.decorators[-1]
        scope = _Scope(fn.module, fn.module.funcs.get(fn.ir.parent) if fn.ir.parent else None)
        # `@wrap` names the decorator; `@wrap(...)` is what the factory returns
        deco = self.eval(dec, scope)
        outer = self.func(deco) if isinstance(deco, VFunc) else None
        if outer is None or outer.ir.is_async or outer.ir.class_name or not outer.ir.params:
            return ""
        wrapped = outer.ir.params[0].name
        outer_scope = _Scope(outer.module, outer, ((wrapped, VFunc(fn.module.ir.path, fn.ir.qualname)),))
        inners: list = []
        for e in outer.ir.returns:
            value = self.eval(e, outer_scope)
            if value not in inners:
                inners.append(value)
        if len(inners) != 1:
            # `return async_wrapper` for coroutine functions, `return wrapper` (a thread) for
            # the others: it picks by the kind of function
            return ""
        wrapper = inners[0]
        inner = self.func(wrapper) if isinstance(wrapper, VFunc) else None
        if inner is None or not inner.ir.is_async or inner.ir.parent != outer.ir.qualname or wrapped in inner.assigns:
            return ""
        sites = inner.module.ir.sites
        for sid in inner.ir.sites:
            site = sites[sid]
            call = site.expr
            if (site.kind == ir.CALL and not site.awaited and site.function == inner.ir.qualname
                    and type(call) is ir.Call and type(call.func) is ir.Name and call.func.id == wrapped):
                target = dec.func if type(dec) is ir.Call else dec
                # a decorator the message cannot name (`@registry[key]`) is not guessed at
                return target.id if type(target) is ir.Name else target.attr if type(target) is ir.Attr else ""
        return ""

    def loop_ops(self, fn: _Func) -> tuple[Op, ...]:
        """Blocking operations in the body of an on-loop function (its own params from evidence)."""
        key = (fn.module.ir.path, fn.ir.qualname)
        cached = self._loop_ops.get(key)
        if cached is None:
            cached = self._loop_ops[key] = self._compute_loop_ops(fn)
        return cached

    def _compute_loop_ops(self, fn: _Func) -> tuple[Op, ...]:
        return self.site_ops(fn, ())

    def dependencies(self) -> frozenset[tuple[str, str]]:
        """Functions used as FastAPI dependencies anywhere in the project."""
        return self.fact("dependencies")

    def is_dependency(self, fn: _Func) -> bool:
        return self.fact_has("dependencies", (fn.module.ir.path, fn.ir.qualname))

    def is_route(self, fn: _Func) -> bool:
        return self.fact_has("routes", (fn.module.ir.path, fn.ir.qualname))

    def dependencies_in(self, path: str) -> tuple[str, ...]:
        """The qualified names of a module's functions used as dependencies, sorted."""
        return self.fact_at("dependencies_by_path", path, ())

    def is_web_project(self) -> bool:
        """Does the project have a route or a dependency at all?"""
        return self.fact("web")

    def routes(self) -> dict[tuple[str, str], str]:
        """Route handlers -> "METHOD /path" (decorators, add_api_route, router.get(...)(fn))."""
        return self.fact("routes")

    def route_of(self, fn: _Func) -> str:
        """A route that runs this function: itself, or one that depends on it (transitively)."""
        key = (fn.module.ir.path, fn.ir.qualname)
        label = self.fact_at("routes", key)
        if label is not None:
            return label
        return self.fact_at("dependency_routes", key, "")

    def _param_dependencies(self, fn: _Func) -> Iterator[tuple[str, str]]:
        """Functions this one's parameters ask FastAPI for (`Depends(f)`, `Annotated[..., Depends(f)]`)."""
        scope = _Scope(fn.module, fn.module.funcs.get(fn.ir.parent) if fn.ir.parent else None)
        for param in fn.ir.params:
            for expr in (param.default, *self._annotated_metadata(param.annotation, scope)):
                if not isinstance(expr, ir.Call):
                    continue
                func = self.eval(expr.func, scope)
                if isinstance(func, VExt) and func.qualname in cat.DEPENDS:
                    target = expr.args[0] if expr.args else dict(expr.kwargs).get("dependency")
                    dep = self.eval(target, scope) if target is not None else None
                    if isinstance(dep, VFunc):
                        yield (dep.module, dep.qualname)

    def _annotated_metadata(self, expr: ir.Expr | None, scope: _Scope, depth: int = 0) -> list:
        if expr is None or depth > _MAX_DEPTH:
            return []
        if isinstance(expr, ir.Name):
            exprs = scope.mod.assigns.get(expr.id)
            return [m for e in exprs for m in self._annotated_metadata(e, _Scope(scope.mod, None), depth + 1)] \
                if exprs else []
        if isinstance(expr, ir.Sub):
            base = self.eval(expr.value, scope)
            if isinstance(base, VExt) and base.qualname in cat.ANNOTATED:
                return list(expr.index[1:])
        return []

    def is_entry_point(self, fn: _Func) -> bool:
        key = (fn.module.ir.path, fn.ir.qualname)
        return self.fact_has("routes", key) or self.fact_has("dependencies", key)

    def called_in_project(self, fn: _Func) -> bool:
        """Does project code call this function itself (`await get_current_user(...)`), not
        only the framework? Then turning it from `async def` into `def` breaks that caller."""
        return bool(self.call_sites_of(fn))

    def call_sites_of(self, fn: _Func) -> list[tuple[_Mod, ir.Site]]:
        """The project's calls of this function (found by name, then resolved)."""
        key = (fn.module.ir.path, fn.ir.qualname)
        out = []
        for path, sid in self.fact_at("calls_by_name", fn.ir.name, ()):
            mod = self.mods[path]
            site = mod.ir.sites[sid]
            value = self.eval(site.expr.func, _Scope(mod, mod.funcs.get(site.function) if site.function else None))
            # a decorator's wrapper names the function it wraps in `display` (from any module)
            if isinstance(value, VFunc) and ((value.module, value.qualname) == key or value.display == key[1]):
                out.append((mod, site))
        return out

    def is_test_code(self, fn: _Func) -> bool:
        """Is this function in test code? Blocking there stalls a test, not a request."""
        return self.is_test_path(fn.module.ir.path)

    def is_test_path(self, path: str) -> bool:
        """Test code: `is_test_module`, except a `test_*.py`/`*_test.py` module outside test
        folders that the application imports (`routers/test_checkout.py` mounted by `main.py`)."""
        if not is_test_module(path):
            return False
        parts = path.replace("\\", "/").split("/")
        if parts[-1] == "conftest.py" or any(p in ("tests", "test") for p in parts[:-1]):
            return True
        return not self.fact_has("app_imported", path)

    def is_migration_script(self, mod: _Mod) -> bool:
        """A schema or data migration: it runs once, offline, not for requests. An Alembic
        script (`env.py` uses `alembic.context`, a revision `alembic.op`), a Django migration,
        or a module in a `migrations` folder at the top of the tree (`migrations/`,
        `src/migrations/`) or inside a database's folder (`db/migrations/`,
        `sqlite_migrator/migrations/`). Not `services/migrations/` (importing recipes from
        another app is a feature), nor code that merely runs `alembic.command`."""
        if any(q in cat.MIGRATION_MODULES for _, q in mod.ir.imports):
            return True
        folders = mod.ir.path.replace("\\", "/").split("/")[:-1]
        for i, folder in enumerate(folders):
            if folder == "migrations" and (
                    all(f in (".", "src") for f in folders[:i]) or any(cat.MIGRATION_DB_FOLDER.search(f) for f in folders[:i])):
                return True
        return False

    def is_startup_code(self, fn: _Func) -> bool:
        """Is this a lifespan, startup or shutdown handler? It runs on the loop, but before
        the server serves requests or after it has stopped (fastapi-execution-model.md §6:
        reported, with low severity)."""
        return self.fact_has("startup", (fn.module.ir.path, fn.ir.qualname))


# --- project facts ------------------------------------------------------------------------
@module_fact("subclasses", concatenated)
def _subclasses_in(model: ProjectModel, mod: _Mod) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """Class -> the project classes that derive from it, directly or not (this module's)."""
    index: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for cls in mod.ir.classes:
        if not cls.bases:
            continue
        key = (mod.ir.path, cls.qualname)
        for bmod, bcls in list(model.mro(*key))[1:]:
            index.setdefault((bmod.ir.path, bcls.qualname), []).append(key)
    return index


@module_fact("dependencies", union)
def _dependencies_in(model: ProjectModel, mod: _Mod) -> frozenset[tuple[str, str]]:
    """Functions used as FastAPI dependencies (by this module's `Depends(...)`)."""
    deps: set[tuple[str, str]] = set()
    for site in mod.ir.sites:
        call = site.expr
        if site.kind != ir.CALL or not isinstance(call, ir.Call):
            continue
        # only a call spelled like Depends can be one: evaluating every call of
        # the project to find out was a third of the rules' time
        if type(call.func) is ir.Name:
            if call.func.id not in _DEPENDS_NAMES and mod.imports.get(call.func.id) not in cat.DEPENDS:
                continue
        elif type(call.func) is not ir.Attr or call.func.attr not in _DEPENDS_NAMES:
            continue
        scope = _Scope(mod, mod.funcs.get(site.function) if site.function else None)
        func = model.eval(call.func, scope)
        if isinstance(func, VExt) and func.qualname in cat.DEPENDS:
            target = call.args[0] if call.args else dict(call.kwargs).get("dependency")
            dep = model.eval(target, scope) if target is not None else None
            if isinstance(dep, VFunc):
                deps.add((dep.module, dep.qualname))
            elif isinstance(dep, VInst):
                call_fn = model.find_method(dep.module, dep.qualname, "__call__")
                if call_fn is not None:
                    deps.add((call_fn.module.ir.path, call_fn.ir.qualname))
    return frozenset(deps)


def _replay_routes(parts: list) -> dict[tuple[str, str], str]:
    routes: dict[tuple[str, str], str] = {}
    for ops in parts:
        for overwrite, key, label in ops:
            if overwrite:
                routes[key] = label
            else:
                routes.setdefault(key, label)
    return routes


@module_fact("routes", _replay_routes)
def _routes_in(model: ProjectModel, mod: _Mod) -> tuple[tuple[bool, tuple[str, str], str], ...]:
    """Route handlers -> "METHOD /path" (decorators, add_api_route, router.get(...)(fn)), as
    (a decorator's label overrides, key, label) in this module's order."""
    ops: list[tuple[bool, tuple[str, str], str]] = []
    for fn in mod.funcs.values():
        for dec in fn.ir.decorators:
            label = _route_label(dec, _router_prefix(mod, dec))
            if label:
                ops.append((True, (mod.ir.path, fn.ir.qualname), label))
                break
    for site in mod.ir.sites:
        call = site.expr
        if site.kind != ir.CALL or not isinstance(call, ir.Call):
            continue
        target = None
        label = ""
        if isinstance(call.func, ir.Call):
            label = _route_label(call.func)
            target = call.args[0] if label and call.args else None
        elif isinstance(call.func, ir.Attr) and call.func.attr in ("add_api_route", "add_route",
                                                                "add_api_websocket_route"):
            path = call.args[0] if call.args else dict(call.kwargs).get("path")
            target = call.args[1] if len(call.args) > 1 else dict(call.kwargs).get("endpoint")
            verb = "WEBSOCKET" if call.func.attr == "add_api_websocket_route" else _methods(call, "ROUTE")
            label = verb + " " + (path.value if isinstance(path, ir.Const) else "?")
        if target is None:
            continue
        scope = _Scope(mod, mod.funcs.get(site.function) if site.function else None)
        value = model.eval(target, scope)
        if isinstance(value, VFunc):
            ops.append((False, (value.module, value.qualname), label))
    return tuple(ops)


def _first_route(parts: list) -> dict[tuple[str, str], str]:
    """Each module's (dependency -> (the first of its routes asking for it, that route's
    label)) -> dependency -> the label of the first route of the project asking for it."""
    first: dict[tuple[str, str], tuple[tuple[str, str], str]] = {}
    for part in parts:
        for dep, route in part.items():
            if dep not in first or route < first[dep]:
                first[dep] = route
    return {dep: label for dep, (_route, label) in first.items()}


@module_fact("dependency_routes", _first_route)
def _dependency_routes_in(model: ProjectModel, mod: _Mod) -> dict[tuple[str, str], tuple[tuple[str, str], str]]:
    """Dependencies (transitively) of the routes handled in this module -> the first such
    route (in key order) and its label. A module fact: an edit makes again the parts of the
    routes whose dependencies it can change, not the whole (8 ms on dispatch)."""
    found: dict[tuple[str, str], tuple[tuple[str, str], str]] = {}
    for route, label in model.fact_slice("routes", mod.ir.path):
        todo, seen = [route], {route}
        while todo:
            fn = model.func(VFunc(*todo.pop()))
            if fn is None:
                continue
            for dep in model._param_dependencies(fn):
                if dep in seen or model.fact_has("routes", dep):
                    continue
                seen.add(dep)
                found.setdefault(dep, (route, label))
                todo.append(dep)
    return found


def _call_index(parts: list) -> dict[str, list[tuple[str, int]]]:
    out: dict[str, list[tuple[str, int]]] = {}
    for path, index in parts:
        for name, sids in index.items():
            out.setdefault(name, []).extend((path, sid) for sid in sids)
    return out


@project_fact("dependencies_by_path")
def _dependencies_by_path(model: ProjectModel) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for path, qualname in model.dependencies():
        out.setdefault(path, []).append(qualname)
    return {path: tuple(sorted(quals)) for path, quals in out.items()}


@project_fact("web")
def _web(model: ProjectModel) -> bool:
    return bool(model.routes()) or bool(model.dependencies())


@module_fact("calls_by_name", _call_index, syntactic=True)
def _calls_by_name_in(model: ProjectModel, mod: _Mod) -> tuple[str, dict[str, tuple[int, ...]]]:
    """Called name (`f` of `f(...)` and of `x.f(...)`) -> the call sites, as (path, site id)."""
    index: dict[str, list[int]] = {}
    for site in mod.ir.sites:
        call = site.expr
        if site.kind != ir.CALL or type(call) is not ir.Call:
            continue
        name = call.func.id if type(call.func) is ir.Name else \
            call.func.attr if type(call.func) is ir.Attr else None
        if name is not None:
            index.setdefault(name, []).append(site.id)
    return mod.ir.path, {name: tuple(sids) for name, sids in index.items()}


@module_fact("app_imported", union)
def _app_imported_by(model: ProjectModel, mod: _Mod) -> frozenset[str]:
    """Modules that application (non-test) modules import (this one's imports)."""
    if is_test_module(mod.ir.path):
        return frozenset()
    found: set[str] = set()
    for _, target in mod.ir.imports:
        dotted = target.split(".")
        for i in range(len(dotted), 0, -1):
            hit = model.find_module(".".join(dotted[:i]), mod.ir.name)
            if hit is not None:
                found.add(hit.ir.path)
                break
    return frozenset(found)


@module_fact("startup", union)
def _startup_handlers_in(model: ProjectModel, mod: _Mod) -> frozenset[tuple[str, str]]:
    """`lifespan=`, `on_startup=`/`on_shutdown=` of an app or router, `@app.on_event("startup")`
    and `app.add_event_handler("shutdown", f)` functions (named in this module)."""
    found: set[tuple[str, str]] = set()
    for fn in mod.funcs.values():
        if any(_event_label(dec) for dec in fn.ir.decorators):
            found.add((mod.ir.path, fn.ir.qualname))
    for site in mod.ir.sites:
        call = site.expr
        if site.kind != ir.CALL or type(call) is not ir.Call:
            continue
        targets: list[ir.Expr] = []
        if type(call.func) is ir.Attr and call.func.attr == "add_event_handler" and len(call.args) > 1 \
                and type(call.args[0]) is ir.Const and call.args[0].value in _EVENTS:
            targets.append(call.args[1])
        for name, value in call.kwargs:
            if name == "lifespan":
                targets.append(value)
            elif name in ("on_startup", "on_shutdown") and type(value) is ir.Seq:
                targets.extend(value.items)
        if not targets:
            continue
        scope = _Scope(mod, mod.funcs.get(site.function) if site.function else None)
        for target in targets:
            value = model.eval(target, scope)
            if isinstance(value, VFunc):
                found.add((value.module, value.qualname))
    return frozenset(found)


class DirectOps:
    """`ProjectModel.direct_ops`: a site id -> its direct operation (None: none), computed on demand."""

    __slots__ = ("fn", "known", "model", "own", "scope")

    def __init__(self, model: ProjectModel, fn: _Func, env: tuple, ops: tuple | None) -> None:
        self.model = model
        self.fn = fn
        self.scope = _Scope(fn.module, fn, env)
        self.own = frozenset(fn.ir.sites)
        #: site id -> Op or None; all of them when site_ops had them memoised
        self.known: dict[int, Op | None] = {}
        if ops is not None:
            self.own = frozenset()
            self.known = {op.site[1]: op for op in ops if not op.is_via}

    def get(self, sid: int) -> Op | None:
        known = self.known
        if sid in known:
            return known[sid]
        op = None
        fn = self.fn
        if sid in self.own and fn.site_runs(fn.module.ir.sites[sid], self.scope.env):
            # only the function's own sites have operations (not a lambda's in it)
            op = self.model._site_op(fn.module.ir.sites[sid], self.scope, fn.module.ir.path, 0, False)
            if op is not None and op.is_via:
                op = None
        known[sid] = op
        return op


_SINGLETONS = {"None": None, "True": True, "False": False}


def _one_of(values: list) -> Value:
    """What a union annotation promises: its first known member; for a sync and an async
    kind (`Union[AsyncSession, Session]`, which one arrives is the caller's), the async kind
    with the sync one as its alternative: each call says which it meant by being awaited."""
    known = [v for v in values if v is not None]
    if not known:
        return None
    kinds = [(v.kind, k.is_async) for v in known if isinstance(v, VKind) and (k := cat.kind(v.kind)) is not None]
    async_kind = next((name for name, is_async in kinds if is_async), "")
    sync_kind = next((name for name, is_async in kinds if not is_async), "")
    return VKind(async_kind, sync_kind) if async_kind and sync_kind else known[0]


def _arguments(fn: _Func, params: list, call: ir.Call) -> dict[str, ir.Expr] | None:
    """Parameter name -> the argument expression the call gives it (`params` in order, the
    bound `self` left out), or None when the arguments cannot bind: a call that would raise
    TypeError (`create(payload, db)` for `create(self, tasks, payload, db)`) binds nothing,
    shifted arguments would give parameters values they never get."""
    keyword_only: set[str] = set()
    varargs = False
    for param in fn.ir.params:
        if param.star == "*":
            varargs = True
        if param.star or keyword_only:  # after `*args` (or a bare `*`), keyword-only
            keyword_only.add(param.name)
    positional = [p for p in params if p.name not in keyword_only]
    spread = any(k in ("*", "**") for k, _ in call.kwargs)
    named = {k for k, _ in call.kwargs}
    if not spread:
        if len(call.args) > len(positional) and not varargs:
            return None
        if not all(p.default is not None or p.name in named
                   or (p.name not in keyword_only and i < len(call.args)) for i, p in enumerate(params)):
            return None
    out: dict[str, ir.Expr] = {p.name: arg for p, arg in zip(positional, call.args)}
    names = {p.name for p in params}
    out.update((k, v) for k, v in call.kwargs if k in names)
    return out


def _first_yield(fn: _Func) -> int:
    """The site id of a generator's first `yield` (what runs before it, `next()` runs)."""
    sites = fn.module.ir.sites
    return min((sid for sid in fn.ir.sites if sites[sid].kind == ir.YIELD), default=len(sites))


def _cleanup_when_pending(site: ir.Site) -> bool:
    """`session.rollback()` under a test that the session holds pending changes
    (`if session.dirty:`): it runs only after something failed."""
    call = site.expr
    if site.kind != ir.CALL or type(call) is not ir.Call or type(call.func) is not ir.Attr \
            or call.func.attr not in cat.CLEANUP_WHEN_PENDING:
        return False
    receiver = ir.dotted(call.func.value)
    if not receiver:
        return False
    prefix = receiver + "."
    return any(test == ir.TRUTHY and name.startswith(prefix) and name[len(prefix):] in cat.SESSION_PENDING_STATE
               for name, test in site.conds)


def _literal_args(params: list, args: dict[str, ir.Expr], tested: frozenset[str],
                  scope: _Scope) -> Iterator[tuple[str, VConst]]:
    """(name, VConst) for the tested parameters a call passes a literal None/True/False to,
    or leaves to such a default, or passes a parameter of its own that its caller bound to
    one (`lookup_client_user(client_user)` in an `__init__` called without `client_user`)."""
    for param in params:
        if param.name in tested:
            arg = args.get(param.name, param.default)
            if type(arg) is not ir.Name:
                continue
            # the summaries spell the singletons as names (they resolve like other builtins)
            if arg.id in _SINGLETONS:
                yield param.name, VConst(_SINGLETONS[arg.id])
            elif scope.env and scope.fn is not None and arg.id not in scope.fn.assigns:
                for name, value in scope.env:
                    if name == arg.id and type(value) is VConst:
                        yield param.name, value


def is_test_module(path: str) -> bool:
    """Test code: pytest files, `conftest.py`, anything under a `tests/` or `test/` folder."""
    parts = path.replace("\\", "/").split("/")
    name = parts[-1]
    return (name == "conftest.py" or name.startswith("test_") or name.endswith("_test.py")
            or any(p in ("tests", "test") for p in parts[:-1]))


_EVENTS = ("startup", "shutdown")


def _event_label(dec: ir.Expr) -> bool:
    """`@app.on_event("startup")` / `@router.on_event("shutdown")`."""
    return (type(dec) is ir.Call and type(dec.func) is ir.Attr and dec.func.attr == "on_event"
            and bool(dec.args) and type(dec.args[0]) is ir.Const and dec.args[0].value in _EVENTS)


def _router_prefix(mod: _Mod, dec: ir.Expr) -> str:
    """The `prefix=` of the module's `router = APIRouter(prefix="/users")` a route decorator
    is on ("" for any other; a prefix given to `include_router` is not followed)."""
    if type(dec) is not ir.Call or type(dec.func) is not ir.Attr or type(dec.func.value) is not ir.Name:
        return ""
    for value in mod.assigns.get(dec.func.value.id, ()):
        if type(value) is ir.Call:
            prefix = dict(value.kwargs).get("prefix")
            if type(prefix) is ir.Const and isinstance(prefix.value, str):
                return prefix.value.rstrip("/")
    return ""


def _route_label(dec: ir.Expr, prefix: str = "") -> str:
    if not isinstance(dec, ir.Call) or not isinstance(dec.func, ir.Attr):
        return ""
    method = dec.func.attr
    if method not in cat.ROUTE_METHODS:
        return ""
    path = dec.args[0] if dec.args else dict(dec.kwargs).get("path")
    if not isinstance(path, ir.Const) or not isinstance(path.value, str):
        if path is None:
            return ""
        shown = "?"
    else:
        shown = (prefix + path.value) or "/"
    if method in ("api_route", "route"):
        verb = _methods(dec, "ROUTE")
    else:
        verb = "WEBSOCKET" if method == "websocket" else method.upper()
    return f"{verb} {shown}"


def _methods(call: ir.Call, default: str) -> str:
    """The HTTP methods a route registration names (`methods=["POST"]` -> "POST", two or
    more joined by "|"), else `default`."""
    methods = dict(call.kwargs).get("methods")
    if type(methods) is not ir.Seq or not methods.items:
        return default
    names = [m.value for m in methods.items if type(m) is ir.Const and isinstance(m.value, str)]
    return "|".join(name.upper() for name in names) if len(names) == len(methods.items) else default


def _is_none(expr: ir.Expr) -> bool:
    return type(expr) is ir.Const and expr.value is None


def _is_slice(sub: ir.Sub) -> bool:
    return any(isinstance(i, ir.Slice) for i in sub.index)
