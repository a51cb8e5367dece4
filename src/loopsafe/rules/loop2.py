"""LOOP2xx: session lifecycle (who opens a DB session, who closes it, who else uses it)."""
from __future__ import annotations

from typing import Iterator

from loopsafe import catalogue as cat
from loopsafe import ir
from loopsafe import lifecycle as lc
from loopsafe.flow import FunctionFacts, facts_of
from loopsafe.pins import fastapi_case
from loopsafe.rules.base import Emit, Rule
from loopsafe.semantic import ProjectModel, VClass, VExt, VFunc, VInst, VKind, VMethod, _Func, _Scope, module_fact

_REF_FASTAPI_YIELD = "https://fastapi.tiangolo.com/tutorial/dependencies/dependencies-with-yield/"
_REF_FASTAPI_SQL = "https://fastapi.tiangolo.com/tutorial/sql-databases/"
_REF_FASTAPI_BG = "https://fastapi.tiangolo.com/tutorial/background-tasks/"
_REF_SA_WHEN = ("https://docs.sqlalchemy.org/en/20/orm/session_basics.html"
                "#when-do-i-construct-a-session-when-do-i-commit-it-and-when-do-i-close-it")
_REF_SA_OPEN_CLOSE = "https://docs.sqlalchemy.org/en/20/orm/session_basics.html#opening-and-closing-a-session"
_REF_SA_THREADS = ("https://docs.sqlalchemy.org/en/20/orm/session_basics.html"
                   "#is-the-session-thread-safe-is-asyncsession-safe-to-share-in-concurrent-tasks")
_REF_SA_ASYNC_TASKS = "https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html#asyncio-concurrency"
_REF_SA_SCOPED = "https://docs.sqlalchemy.org/en/20/orm/contextual.html"


def _site_scope(mod, site: ir.Site) -> _Scope:
    return _Scope(mod, mod.funcs.get(site.function) if site.function else None)


def _owner_attr(model: ProjectModel, expr: ir.Expr | None, scope: _Scope) -> object:
    """What `X.attr` names, comparable across spellings: (class, attr) when X is a class or an
    instance of one (`Trade.session`, `T.session` after `import Trade as T`, `self.session`),
    else its spelling; "" for anything else."""
    if type(expr) is not ir.Attr:
        return ""
    owner = model.eval(expr.value, scope)
    if isinstance(owner, (VClass, VInst)):
        return (owner.module, owner.qualname, expr.attr)
    return ir.dotted(expr)


def _assigned_to(mod, site: ir.Site) -> str:
    """The name a call's value is assigned to (`Trade.session = scoped_session(...)`), or ""."""
    fn = mod.funcs.get(site.function) if site.function else None
    for target, value, _order in (fn.ir.assigns if fn is not None else mod.ir.assigns):
        if type(value) is ir.Call and value.site == site.id:
            return target
    return ""


def _line(fn: _Func, sid: int) -> int:
    spans = fn.module.ir.spans
    span = spans[sid] if sid < len(spans) else None
    return span[0] if span else 0


def _pos(fn: _Func, sid: int) -> tuple[int, int]:
    spans = fn.module.ir.spans
    span = spans[sid] if sid < len(spans) else None
    return (span[0], span[1]) if span else (0, 0)


def _display(fn: _Func) -> str:
    """`get_db`, `Database.__call__`, `outer.inner`: how a message names a function."""
    return fn.ir.qualname.replace(".<locals>.", ".")


def _made_by(made: lc.Creation) -> str:
    return f" (from `{made.via.rpartition('.')[2]}()`)" if made.via else ""


class SessionNotClosed(Rule):
    """
    ## What it does
    Reports a DB session or connection created in a function that is not closed on every
    path: `SessionLocal()`, `Session(engine)`, `AsyncSession(engine)`,
    `async_sessionmaker(...)()`, `engine.connect()`, `engine.raw_connection()`,
    `sqlite3.connect()`, `psycopg2.connect()`, `psycopg.connect()`, `pymysql.connect()`,
    or a project helper that returns a new one. The finding sits on the call that creates
    it. Two cases are reported:

    * it is never closed: no `with`/`async with`, no `close()`, and it is neither
      returned nor yielded to a caller, stored on an object, nor handed to a function
      that closes or keeps it;
    * it is closed, but not in a `finally` (or an `except`) and not by a `with`: when
      anything between the creation and the `close()` raises, it is not closed. In test
      code (see LOOP101) this case is not reported: a test that raises has failed, and one
      connection of a failed run is all that leaks.

    A generator decorated with `@contextmanager`/`@asynccontextmanager` or used as a
    FastAPI dependency does not give away what it yields: it must close it itself. (When
    a yield dependency closes it after `yield` but outside `finally`, that is LOOP203.)
    An in-memory SQLite database (`sqlite3.connect(":memory:")`) holds nothing outside the
    process and is not reported.

    ## Why is this bad?
    A session that is not closed keeps its pooled connection checked out, often inside an
    open transaction, until the garbage collector gets to it. Under load the pool runs
    dry (`QueuePool limit ... overflow ... reached, connection timed out`), requests hang
    for `pool_timeout` seconds, and the database accumulates idle-in-transaction
    connections holding locks. An exception path that skips `close()` leaks the same
    way, and only when things already go wrong.

    ## Example
    ```python
    @router.get("/users")
    def list_users():
        db = SessionLocal()
        return db.scalars(select(User)).all()  # db is never closed


    def export(path: str):
        conn = sqlite3.connect(path)
        rows = conn.execute("SELECT * FROM events").fetchall()  # may raise
        conn.close()  # skipped when it does
        return rows
    ```

    ## Use instead
    ```python
    @router.get("/users")
    def list_users():
        with SessionLocal() as db:
            return db.scalars(select(User)).all()


    def export(path: str):
        conn = sqlite3.connect(path)
        try:
            return conn.execute("SELECT * FROM events").fetchall()
        finally:
            conn.close()
    ```
    A helper that returns a new session to its caller is fine, as long as the caller
    closes it.

    A session registry keyed by a `scopefunc` (`async_scoped_session(factory,
    scopefunc=current_task)`) is reported where it is made when nothing in the project
    calls its `remove()`: closing the sessions does not take them, nor the tasks they are
    keyed by, out of the registry. Call `await Session.remove()` when each request ends
    (a middleware or the dependency's `finally`).

    ## Known limitations
    Only names local to one function are followed; a session stored on an object, in a
    container, or passed to a library function is assumed to be owned there. `with
    sqlite3.connect(...) as conn` and `with psycopg2.connect(...) as conn` only commit and
    do not close, but are treated as closing. Any `close()` in a `finally` or `except`
    counts, even one that does not cover every path. A `Session`/`AsyncSession` built on a
    connection it is given (`Session(bind=op.get_bind())` in a migration) borrows that
    connection and is not reported, nor is one whose bind cannot be resolved to an engine;
    the same holds for a session from a factory the function itself gave such a bind
    (`async_sessionmaker(bind=conn)`, `factory.configure(bind=conn)`).
    Scripts and tests are checked like application code (use `per-file-ignores`).

    ## References
    - [SQLAlchemy: using asyncio scoped session](https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html#using-asyncio-scoped-session)
    - [SQLAlchemy: opening and closing a Session](https://docs.sqlalchemy.org/en/20/orm/session_basics.html#opening-and-closing-a-session)
    - [SQLAlchemy: when do I close a Session?](https://docs.sqlalchemy.org/en/20/orm/session_basics.html#when-do-i-construct-a-session-when-do-i-commit-it-and-when-do-i-close-it)
    - [FastAPI: SQL databases](https://fastapi.tiangolo.com/tutorial/sql-databases/)
    - [Python: sqlite3 connection context manager](https://docs.python.org/3/library/sqlite3.html#how-to-use-the-connection-context-manager)
    """

    code = "LOOP201"
    name = "session-not-closed"
    summary = "DB session or connection not closed on every path"
    fix_title = "Open it with `with`/`async with`, or close it in a `finally`"

    def check(self, model: ProjectModel) -> Iterator[Emit]:
        tracker = lc.lifecycles(model)
        for fn in model.functions():
            scope = _Scope(fn.module, fn)
            sites = fn.module.ir.sites
            made_at = {}
            for sid in fn.ir.sites:
                site = sites[sid]
                if site.kind == ir.CALL and type(site.expr) is ir.Call:
                    made = tracker.creation(site.expr, scope)
                    if made is not None:
                        made_at[sid] = made
            if not made_at:
                continue
            gk = tracker.generator_kind(fn)
            managed = gk in ("dependency", "contextmanager", "fixture")
            facts = tracker.facts(fn)
            for sid in sorted(made_at):
                occ = facts.calls.get(sid)
                made = made_at[sid]
                if occ is None:
                    continue
                message = self._verdict(model, tracker, fn, gk, managed, occ, made, facts, sid)
                if message:
                    path = fn.module.ir.path
                    yield Emit(path, (path, sid), message, function=fn.ir.qualname)
        yield from self._registries_never_removed(model)

    def _registries_never_removed(self, model: ProjectModel) -> Iterator[Emit]:
        for path, _mod in model.focused_modules():
            yield from model.fact_at("loop2.registries_never_removed", path, ())

    def _verdict(self, model, tracker: lc.Lifecycles, fn: _Func, gk: str, managed: bool, occ: lc.Occ,
                 made: lc.Creation, facts: lc.FnFacts, sid: int) -> str:
        what = f"a {lc.label(made.kind)}{_made_by(made)}"
        never = (f"`{{code}}` opens {what} that is never closed: open it with `with`, close it in a "
                 "`finally`, or hand it to a caller that closes it")
        if occ.how == "assign":
            fate = tracker.fate(fn, occ.target, managed_yield=managed)
            if fate is None or fate.unknown:
                return ""
            if fate.transferred and not (fate.lent_only and fate.closes):
                # given away; but lent to a helper or a nested function and then closed here,
                # it is still this function's to close on every path
                return ""
            if not fate.closes:
                if gk == "dependency" and fate.yields:
                    return (f"`{{code}}` opens {what} that dependency `{_display(fn)}` yields but never closes: "
                            "FastAPI runs the code after `yield`, it does not close what was yielded")
                if gk == "contextmanager" and fate.yields:
                    return (f"`{{code}}` opens {what} that context manager `{_display(fn)}` yields but never "
                            "closes: close it in a `finally` around the `yield`")
                return never
            if fate.safe_close or gk == "fixture":
                return ""
            if model.is_test_code(fn):
                # a test that fails before its `close()` is reported as failing: what leaks
                # then is one connection of a run that is over anyway
                return ""
            closes = [c for c in fate.closes if c is not None]
            if any(_closed_next(fn, sid, c.site) for c in closes):
                return ""  # `conn = connect(...)` then `conn.close()`: nothing between can raise
            if gk == "dependency" and fate.yields:
                first_yield = min(_pos(fn, y) for y in fate.yields)
                if any(_pos(fn, c.site) > first_yield for c in closes):
                    return ""  # LOOP203
            lines = sorted({_line(fn, c.site) for c in closes})
            where = ", ".join(str(n) for n in lines)
            if gk == "contextmanager":
                return (f"`{{code}}` opens {what} whose `close()` (line {where}) is not in a `finally`: "
                        f"when the `with` block using `{_display(fn)}()` raises, it is not closed")
            return (f"`{{code}}` opens {what} whose `close()` (line {where}) is not in a `finally`: "
                    "it is not closed if an exception is raised before that")
        if occ.how == "recv":
            if occ.attr in lc.CLOSE_METHODS or occ.attr.startswith("__"):
                return ""
            parent = facts.calls.get(occ.call.site) if occ.call is not None else None
            if parent is None or parent.how in ("with", "assign") or parent.root == "with":
                # `cur = sqlite3.connect(p).cursor()`: what it gives keeps the connection, and
                # may close it later (`cur.connection.close()`); not followed
                return ""
            # `engine.connect().execution_options(...)`: the same connection, followed no further
            value = model.eval(occ.call, _Scope(fn.module, fn))
            if isinstance(value, VKind) and value.kind in lc.SESSION_KINDS:
                return ""
            return (f"`{{code}}` opens {what} only to call `.{occ.attr}()` on it; nothing closes it: "
                    "open it with `with` and use the name")
        if occ.how == "arg" and occ.call is not None:
            if tracker._arg_is_harmless(fn, occ, 0):  # noqa: SLF001 - same package
                return never
        if occ.how == "store" and occ.root_site >= 0:
            return self._stored(fn, occ, what)
        if occ.how == "yield" and gk == "dependency":
            return (f"`{{code}}` opens {what} that dependency `{_display(fn)}` yields but never closes: "
                    "FastAPI runs the code after `yield`, it does not close what was yielded")
        if occ.how == "yield" and gk == "contextmanager":
            return (f"`{{code}}` opens {what} that context manager `{_display(fn)}` yields but never closes: "
                    "close it in a `finally` around the `yield`")
        return ""

    def _stored(self, fn: _Func, occ: lc.Occ, what: str) -> str:
        """`request.state.db = SessionLocal()` ... `request.state.db.close()` in the same function:
        the function owns it, so its close must survive exceptions too."""
        if fn.ir.is_generator:
            return ""  # a lifespan or context manager: the close after `yield` is its teardown
        sites = fn.module.ir.sites
        store = sites[occ.root_site].expr
        target = lc.path_of(store.target) if type(store) is ir.Store else None
        if target is None:
            return ""
        closes = []
        for sid in fn.ir.sites:
            site = sites[sid]
            call = site.expr
            if site.kind == ir.CALL and type(call) is ir.Call and type(call.func) is ir.Attr \
                    and call.func.attr in lc.CLOSE_METHODS and lc.path_of(call.func.value) == target:
                closes.append(site)
        if not closes or any(lc.in_cleanup(fn, s.id) for s in closes):
            return ""
        where = ", ".join(str(n) for n in sorted({_line(fn, s.id) for s in closes}))
        return (f"`{{code}}` opens {what}, kept in `{target}`, whose `close()` (line {where}) is not in a "
                "`finally`: it is not closed if an exception is raised before that")


def _closed_next(fn: _Func, opened: int, closed: int) -> bool:
    """Whether the close is the next thing its function runs after the call that opened the
    object: no site (call, subscript, `return`, ...) in between, outside the opening call's own
    arguments, and the close runs under the same conditions, loop and `try` part."""
    sites, spans = fn.module.ir.sites, fn.module.ir.spans
    if closed <= opened or spans[opened] is None:
        return False
    o, c = sites[opened], sites[closed]
    if (c.role, c.loop_id, c.guarded, c.conds) != (o.role, o.loop_id, o.guarded, o.conds):
        return False
    line, col, end_line, end_col = spans[opened]
    for sid in fn.ir.sites:
        if opened < sid < closed:
            span = spans[sid]
            if span is None or not ((line, col) <= span[:2] and span[2:] <= (end_line, end_col)):
                return False
    return True


class DependencyReturnsSession(Rule):
    """
    ## What it does
    Reports a function used as a FastAPI dependency (`Depends(...)`, `Security(...)`,
    `Annotated[..., Depends(...)]`, anywhere in the project) that `return`s a new session
    or connection instead of `yield`ing it, and `Depends(SessionLocal)` on a session
    factory.

    ## Why is this bad?
    FastAPI only runs clean-up code for dependencies written with `yield`. A returned
    session is handed to the endpoint and then forgotten: nothing ever closes it, so
    every request leaks a session and its pooled connection (often in an open
    transaction) until the garbage collector finds it. Under load the pool is exhausted
    and requests start to time out.

    ## Example
    ```python
    def get_db():
        db = SessionLocal()
        return db


    @app.get("/items")
    def items(db: Session = Depends(get_db)): ...
    ```

    ## Use instead
    ```python
    def get_db():
        with SessionLocal() as db:
            yield db
    ```
    (or `db = SessionLocal()` / `try: yield db` / `finally: db.close()`).

    ## Fix safety
    The fix turns `return SessionLocal()` into `db = SessionLocal()`, `try:`, `yield db`,
    `finally:`, `db.close()`, indented like the `return` (for `return session`, a local name,
    only the `try`/`finally` around `yield session`). The close is awaited when the kind
    of the returned object says `close()` is a coroutine (an `AsyncSession`, an async
    connection), whatever the function is called; a plain `def` returning one gets no fix,
    since it cannot await. It is unsafe: the function becomes a generator, so code
    that calls it directly rather than through `Depends` gets a generator instead of a
    session, and a `-> Session` annotation is left as it was (it should become
    `Iterator[Session]`). It is offered only when that `return` is the function's only one
    and stands on a line of its own.

    ## Known limitations
    Only sessions created in the dependency itself (or by a project helper that always
    returns a new one) are recognised; a dependency returning a session built elsewhere
    is assumed to return a shared or managed one.

    ## References
    - [FastAPI: dependencies with yield](https://fastapi.tiangolo.com/tutorial/dependencies/dependencies-with-yield/)
    - [FastAPI: SQL databases](https://fastapi.tiangolo.com/tutorial/sql-databases/)
    - [SQLAlchemy: when do I close a Session?](https://docs.sqlalchemy.org/en/20/orm/session_basics.html#when-do-i-construct-a-session-when-do-i-commit-it-and-when-do-i-close-it)
    """

    code = "LOOP202"
    name = "dependency-returns-session"
    summary = "FastAPI dependency returns a new session instead of yielding it"
    fix_title = "`yield` the session and close it afterwards: `with SessionLocal() as db: yield db`"

    def check(self, model: ProjectModel) -> Iterator[Emit]:
        tracker = lc.lifecycles(model)
        for path, qual in [(p, q) for p, _m in model.focused_modules() for q in model.dependencies_in(p)]:
            mod = model.by_path.get(path)
            fn = mod.funcs.get(qual) if mod is not None else None
            if fn is None or fn.ir.is_generator:
                continue
            scope = _Scope(fn.module, fn)
            sites = fn.module.ir.sites
            for sid in fn.ir.sites:
                site = sites[sid]
                if site.kind != ir.RETURN:
                    continue
                kind = self._new_session(tracker, fn, scope, site.expr)
                if kind:
                    yield Emit(path, (path, sid),
                               f"dependency `{_display(fn)}` returns a new {lc.label(kind)}: FastAPI never closes a "
                               "returned value, so every request leaks it and its pooled connection",
                               function=qual, kind=kind)
        yield from self._depends_on_factory(model)

    def _new_session(self, tracker: lc.Lifecycles, fn: _Func, scope: _Scope, expr) -> str:
        expr = lc.strip(expr)
        if type(expr) is ir.Call:
            made = tracker.creation(expr, scope)
            return made.kind if made else ""
        if type(expr) is ir.Name:
            fate = tracker.fate(fn, expr.id)
            if fate is None or fate.unknown or fate.closes:
                return ""
            kinds = tracker.group_kinds(fn, fate.names)
            if len(kinds) == 1 and not tracker._escapes_besides_return(fn, fate.names):  # noqa: SLF001
                return kinds.pop()
        return ""

    def _depends_on_factory(self, model: ProjectModel) -> Iterator[Emit]:
        for path, mod in model.focused_modules():
            # the facts of each function: one scope, and the values other rules already asked
            by_function: dict[str, FunctionFacts] = {}
            for site in mod.ir.sites:
                call = site.expr
                if site.kind != ir.CALL or type(call) is not ir.Call:
                    continue
                if not (type(call.func) in (ir.Name, ir.Attr)):
                    continue
                facts = by_function.get(site.function)
                if facts is None:
                    fn = mod.funcs.get(site.function) if site.function else None
                    facts = by_function[site.function] = facts_of(model, mod, fn)
                func = facts.eval(call.func)
                if not (isinstance(func, VExt) and func.qualname in cat.DEPENDS):
                    continue
                target = call.args[0] if call.args else dict(call.kwargs).get("dependency")
                dep = facts.eval(target) if target is not None else None
                if isinstance(dep, VKind) and dep.kind in lc.FACTORY_KINDS:
                    k = cat.kind(dep.kind)
                    yield Emit(path, (path, site.id),
                               f"`{{code}}` makes FastAPI call the session factory and inject a new "
                               f"{lc.label(k.call_kind)} that nothing ever closes",
                               function=site.function)


class DependencyCleanupNotInFinally(Rule):
    """
    ## What it does
    Reports the `close()` of a session or connection in a FastAPI `yield` dependency when
    it runs after the `yield` but outside `finally` (and the session is not opened with
    `with`/`async with`).

    ## Why is this bad?
    When the endpoint (or another dependency) raises, FastAPI throws the exception into
    the dependency at its `yield`. Code after the `yield` that is not in a `finally`
    (or an `except` that handles it) is skipped, so every failing request leaks its
    session and pooled connection, usually with its transaction still open. Errors then
    cascade: the more requests fail, the fewer connections are left.

    ## Example
    ```python
    def get_db():
        db = SessionLocal()
        yield db
        db.close()
    ```

    ## Use instead
    ```python
    def get_db():
        db = SessionLocal()
        try:
            yield db
        finally:
            db.close()
    ```
    or `with SessionLocal() as db: yield db` (`async with` for an `AsyncSession`).

    ## Known limitations
    Any `close()` in a `finally` or an `except` block is taken as covering the error path.

    ## References
    - [FastAPI: dependencies with yield and try](https://fastapi.tiangolo.com/tutorial/dependencies/dependencies-with-yield/#a-dependency-with-yield-and-try)
    - [FastAPI: SQL databases](https://fastapi.tiangolo.com/tutorial/sql-databases/)
    - [SQLAlchemy: opening and closing a Session](https://docs.sqlalchemy.org/en/20/orm/session_basics.html#opening-and-closing-a-session)
    """

    code = "LOOP203"
    name = "dependency-cleanup-not-in-finally"
    summary = "Yield dependency closes the session outside `finally`"
    fix_title = "Wrap the `yield` in `try:` and close the session in `finally:` (or use `with`)"

    def check(self, model: ProjectModel) -> Iterator[Emit]:
        tracker = lc.lifecycles(model)
        for fn in model.functions():
            if tracker.generator_kind(fn) != "dependency":
                continue
            facts = tracker.facts(fn)
            scope = _Scope(fn.module, fn)
            done: set = set()
            for sid in sorted(facts.calls):
                occ = facts.calls[sid]
                if occ.how != "assign" or occ.target in done:
                    continue
                if tracker.creation(facts.call_exprs[sid], scope) is None:
                    continue
                fate = tracker.fate(fn, occ.target, managed_yield=True)
                if fate is None or fate.unknown or fate.transferred or fate.safe_close or not fate.closes:
                    continue
                done |= fate.names
                yields = [y for y in fn.ir.sites if fn.module.ir.sites[y].kind == ir.YIELD]
                if not yields:
                    continue
                first_yield = min(_pos(fn, y) for y in yields)
                kind = lc.label(tracker.creation(facts.call_exprs[sid], scope).kind)
                for close in fate.closes:
                    if close is not None and _pos(fn, close.site) > first_yield:
                        path = fn.module.ir.path
                        yield Emit(path, (path, close.site),
                                   f"`{{code}}` in yield dependency `{_display(fn)}` is skipped when the endpoint "
                                   f"raises (FastAPI throws the exception in at `yield`): the {kind} leaks on "
                                   "every failed request",
                                   function=fn.ir.qualname)


class SharedSession(Rule):
    """
    ## What it does
    Reports a session or connection object kept in state shared by every request:

    * created at module level (`db = SessionLocal()`, `conn = sqlite3.connect(...)`)
      and used from functions, or kept by a module-level object whose `__init__` opens it
      (`store = Store()` with `self.conn = sqlite3.connect(...)`);
    * assigned to a module global from a function (`global _session`), a lazy
      singleton;
    * stored on `app.state` / `request.app.state`;
    * a class attribute (`session = SessionLocal()` in a class body, `Repo.session = ...`);
    * a thread-local `scoped_session` used from an `async def`, or handed out by a FastAPI
      dependency (its setup runs on a pool thread the next request reuses).

    An engine, a `sessionmaker`/`async_sessionmaker` or a connection pool at module level
    is the correct pattern and is not reported; neither is `self.session = ...` on an
    object created per request.

    ## Why is this bad?
    A `Session` (or DB-API connection) is not thread-safe and represents one transaction.
    FastAPI serves `def` endpoints from a thread pool and `async def` ones as interleaved
    tasks, so a shared session is used by many requests at once: one request's `commit()`
    or `rollback()` commits or throws away another's work, and concurrent writes fail with
    errors such as "This session is provisioning a new connection; concurrent operations are
    not permitted" (AsyncSession; verified in tests/runtime: of three concurrent requests two
    failed, yet their rows were committed by the third) or asyncpg's "another operation is
    in progress"; one failed request can leave the session unusable for all others. `scoped_session` keys its
    sessions by thread, and every task on the event loop runs in the same thread, so in
    async code it is one shared session too.

    ## Example
    ```python
    engine = create_engine(DATABASE_URL)
    SessionLocal = sessionmaker(bind=engine)
    db = SessionLocal()  # one session for the whole process


    @app.get("/users")
    def users():
        return db.scalars(select(User)).all()
    ```

    ## Use instead
    ```python
    def get_db():
        with SessionLocal() as db:
            yield db


    @app.get("/users")
    def users(db: Session = Depends(get_db)):
        return db.scalars(select(User)).all()
    ```
    In async code use `async_sessionmaker` with one `AsyncSession` per request (or
    `async_scoped_session` scoped to the current task).

    ## Known limitations
    A module-level session is only reported when the project defines FastAPI routes or
    dependencies and request-serving code uses it (another module imports it, or a function
    of a module with routes, dependencies or `async def`s, or one called from a route, reads
    it); one created inside a module-level block such as `if __name__ == "__main__":` is not.
    `app.state` is recognised by name (`app`, `*_app`, `request.app`). A `scoped_session`
    given a `scopefunc` is assumed to be scoped correctly. Sessions shared through
    module-level instances of project classes are not reported.

    ## References
    - [SQLAlchemy: is the Session thread-safe? Is AsyncSession safe to share in concurrent tasks?](https://docs.sqlalchemy.org/en/20/orm/session_basics.html#is-the-session-thread-safe-is-asyncsession-safe-to-share-in-concurrent-tasks)
    - [SQLAlchemy: contextual/thread-local sessions](https://docs.sqlalchemy.org/en/20/orm/contextual.html)
    - [SQLAlchemy: using asyncio scoped session](https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html#using-asyncio-scoped-session)
    - [FastAPI: SQL databases](https://fastapi.tiangolo.com/tutorial/sql-databases/)
    """

    code = "LOOP204"
    name = "shared-session"
    summary = "DB session or connection shared between requests"
    fix_title = "Create one session per request (a `yield` dependency); share only the engine and the sessionmaker"

    def check(self, model: ProjectModel) -> Iterator[Emit]:
        tracker = lc.lifecycles(model)
        web = model.is_web_project()
        for _path, mod in model.focused_modules():
            if web:
                yield from self._module_level(model, tracker, mod)
            yield from self._class_attrs(model, tracker, mod)
            yield from self._stores(model, tracker, mod)
        for fn in model.functions():
            if fn.ir.is_async and not fn.ir.is_lambda:
                yield from self._scoped_in_async(model, fn)
            elif model.is_dependency(fn):
                yield from self._scoped_in_async(model, fn, dependency=True)

    def _module_level(self, model, tracker: lc.Lifecycles, mod) -> Iterator[Emit]:
        scope = _Scope(mod, None)
        path = mod.ir.path
        for name, value, _order in mod.ir.assigns:
            value = lc.strip(value)
            if type(value) is not ir.Call or "." in name:
                continue
            site = mod.ir.sites[value.site]
            if site.function:
                fn = mod.funcs.get(site.function)
                if fn is None or name not in fn.ir.globals_:
                    continue
                made = tracker.creation(value, _Scope(mod, fn))
                if made is not None:
                    yield Emit(path, (path, value.site),
                               f"`{{code}}` stores a {lc.label(made.kind)} in the module global `{name}` "
                               f"(`global` in `{_display(fn)}`): every request and thread then shares one session",
                               function=fn.ir.qualname)
                continue
            made = tracker.creation(value, scope)
            kept = tracker.kept_by_init(value, scope) if made is None else None
            if made is None and kept is None:
                continue
            if self._indented(mod, value.site, name) or not self._used_from_functions(model, mod, name):
                continue
            if made is not None:
                yield Emit(path, (path, value.site),
                           f"`{{code}}` creates one {lc.label(made.kind)} at module level (`{name}`), shared by "
                           "every request and thread; share the engine or sessionmaker instead", function="")
            else:
                attr, made = kept
                yield Emit(path, (path, value.site),
                           f"`{{code}}` creates one object at module level (`{name}`) whose `__init__` opens a "
                           f"{lc.label(made.kind)} and keeps it (`{attr}`): every request and thread shares it; "
                           "open one per use, or keep the engine or sessionmaker", function="")

    @staticmethod
    def _indented(mod, sid: int, name: str) -> bool:
        """`name = call()` written inside a module-level `if`/`try`/`for` block (most often
        `if __name__ == "__main__":`): the call starts further right than `name = ` allows."""
        spans = mod.ir.spans
        span = spans[sid] if sid < len(spans) else None
        return span is not None and span[1] - (len(name) + 4) >= 4

    def _used_from_functions(self, model: ProjectModel, mod, name: str) -> bool:
        """Is the module-level object used by request-serving code: imported by another module,
        or used by a function of an application module (one with routes, dependencies or
        async functions)? A script using its own global connection is single-threaded."""
        tracker = lc.lifecycles(model)
        app_module = any(model.is_entry_point(f) or (f.ir.is_async and not f.ir.is_lambda)
                         for f in mod.funcs.values())
        for fn in mod.funcs.values():
            if name in fn.params or name in fn.assigns:
                continue
            if name in tracker.facts(fn).names and (app_module or tracker.reachable(fn)):
                return True
        importers = model.fact_at("loop2.importers", f"{mod.ir.name}.{name}", ())
        return any(path != mod.ir.path for path in importers)

    def _class_attrs(self, model, tracker: lc.Lifecycles, mod) -> Iterator[Emit]:
        path = mod.ir.path
        for cls in mod.ir.classes:
            scope = _Scope(mod, mod.funcs.get(cls.parent) if cls.parent else None)
            for name, value in cls.attrs:
                value = lc.strip(value)
                if type(value) is not ir.Call:
                    continue
                made = tracker.creation(value, scope)
                if made is not None:
                    yield Emit(path, (path, value.site),
                               f"`{{code}}` creates one {lc.label(made.kind)} as class attribute "
                               f"`{cls.name}.{name}`, shared by every instance, request and thread",
                               function=cls.parent)

    def _stores(self, model: ProjectModel, tracker: lc.Lifecycles, mod) -> Iterator[Emit]:
        path = mod.ir.path
        for site in mod.ir.sites:
            if site.kind != ir.STORE or type(site.expr) is not ir.Store:
                continue
            target = site.expr.target
            if type(target) is not ir.Attr:
                continue
            fn = mod.funcs.get(site.function) if site.function else None
            scope = _Scope(mod, fn)
            kind = self._new_session_value(tracker, fn, scope, site.expr.value)
            if not kind:
                continue
            base = target.value
            if type(base) is ir.Attr and base.attr == "state" and lc.is_app_like(base.value):
                yield Emit(path, (path, site.id),
                           f"`{{code}}` keeps one {lc.label(kind)} on the application state, shared by every "
                           "request; keep the engine or sessionmaker there and open a session per request",
                           function=site.function)
                continue
            owner = model.eval(base, scope)
            if isinstance(owner, VClass):
                yield Emit(path, (path, site.id),
                           f"`{{code}}` stores one {lc.label(kind)} on the class `{owner.qualname}`, shared by "
                           "every instance, request and thread", function=site.function)

    def _new_session_value(self, tracker: lc.Lifecycles, fn: _Func | None, scope: _Scope, value) -> str:
        value = lc.strip(value)
        if type(value) is ir.Call:
            made = tracker.creation(value, scope)
            return made.kind if made else ""
        if type(value) is ir.Name and fn is not None:
            made = tracker.bound_creation(fn, value.id)
            values = [v for _o, v in fn.assigns.get(value.id, ()) if not lc._is_none(v)]  # noqa: SLF001
            if made and len(made) == len(values):
                return made[0].kind
        return ""

    def _scoped_in_async(self, model: ProjectModel, fn: _Func, dependency: bool = False) -> Iterator[Emit]:
        scope = _Scope(fn.module, fn)
        sites = fn.module.ir.sites
        for sid in fn.ir.sites:
            site = sites[sid]
            if site.kind != ir.CALL or type(site.expr) is not ir.Call:
                continue
            func = model.eval(site.expr.func, scope)
            if isinstance(func, VKind) and func.kind == lc.SCOPED_SESSION:
                registry = site.expr.func
            elif isinstance(func, VMethod) and func.kind == lc.SCOPED_SESSION and type(site.expr.func) is ir.Attr:
                registry = site.expr.func.value
            else:
                continue
            made = lc.defining_calls(model, fn, fn.module, registry)
            if not made:
                # known only by its annotation (`session: ClassVar[scoped_session[Session]]`, set
                # up elsewhere): its `scopefunc`, if any, is not seen
                continue
            if any(k == "scopefunc" for call in made for k, _v in call.kwargs):
                continue  # scoped to something else than the thread (a request id, a task)
            path = fn.module.ir.path
            if dependency:
                # fastapi-execution-model.md §4: a sync dependency's setup runs on a pool thread
                # that serves the next request's setup while this one still holds the session
                message = (f"`{{code}}` hands out a thread-local `scoped_session` from dependency "
                           f"`{_display(fn)}`: FastAPI runs its setup on a pool thread that the next request's "
                           "setup reuses while this request still holds the session, so overlapping requests "
                           "share one; create a session per request (`with SessionLocal() as db: yield db`)")
            else:
                message = (f"`{{code}}` uses a thread-local `scoped_session` in `async def {_display(fn)}`: all "
                           "tasks on the event loop share its thread, hence one session; use an AsyncSession per "
                           "request (or `async_scoped_session` scoped to the task)")
            yield Emit(path, (path, sid), message, function=fn.ir.qualname)
            return  # once per function


class SessionInBackgroundTask(Rule):
    """
    ## What it does
    Reports a request-scoped session handed to work that outlives the request: passed to
    `background_tasks.add_task(...)`, `BackgroundTask(...)`, `asyncio.create_task(...)`,
    `asyncio.ensure_future(...)`, `loop.create_task(...)` or
    `threading.Thread(target=..., args=...)`, or captured by a nested function or lambda
    given to them. Request-scoped means a parameter FastAPI fills from `Depends(...)`
    (including `Annotated` aliases such as `SessionDep`), or `request.state.<name>` when
    a middleware of the project puts a new session there.

    ## Why is this bad?
    The session belongs to the request; what happens to it when the task runs depends on
    the FastAPI version:

    * FastAPI 0.106 to 0.117, and any `Depends(..., scope="function")` (0.121+): the
      dependency's code after `yield` runs before the response is sent, so the task gets a
      closed session. SQLAlchemy silently reopens it, and nothing closes it again.
    * FastAPI 0.118+: teardown waits for background tasks, so the request's session stays
      open; the task checks a pooled connection out through it and holds it until the
      dependency's teardown (`commit`/`close`), which runs after the task touched the session.
      FastAPI's documentation says not to rely on this.
    * before FastAPI 0.106: teardown also runs after background tasks; the session still
      works in the task, but the request holds it and its connection for the task's
      whole run.
    * a session a middleware put on `request.state` is closed as the response goes out.
    * `asyncio.create_task` and threads are not tied to the response at all: the session
      can be closed (or used by the request) while the task still runs.

    When the FastAPI version is known, the message names the case that applies: from
    `fastapi-version` in `[tool.loopsafe]`, else from an exact pin of `fastapi` in the
    project root's `pyproject.toml`, `requirements*.txt` or `setup.cfg`.

    ## Example
    ```python
    @app.post("/orders")
    def create_order(order: OrderIn, tasks: BackgroundTasks, db: Session = Depends(get_db)):
        tasks.add_task(send_receipt, db, order.id)
    ```

    ## Use instead
    ```python
    def send_receipt(order_id: int):
        with SessionLocal() as db:  # the task opens its own session
            ...


    @app.post("/orders")
    def create_order(order: OrderIn, tasks: BackgroundTasks, db: Session = Depends(get_db)):
        tasks.add_task(send_receipt, order.id)
    ```

    ## Known limitations
    A project helper given the request's session that hands it to a task itself is
    followed one call down (reported at the call, the helper's hand-over as the chain);
    deeper helpers are not. A session reaching the task through an object (a repository
    holding it, an ORM instance) is not seen. A parameter counts as request-scoped only when its dependency
    can be resolved to a `yield` dependency or to one returning `request.state.<name>`.
    Tasks kept in a variable (which may be awaited later) are not reported. A version
    range (`fastapi>=0.110`) or conflicting pins leave the version unknown; the message
    then describes every behaviour.

    ## References
    - [FastAPI: background tasks](https://fastapi.tiangolo.com/tutorial/background-tasks/)
    - [FastAPI: dependencies with yield, background tasks and scope](https://fastapi.tiangolo.com/tutorial/dependencies/dependencies-with-yield/)
    - [SQLAlchemy: is the Session thread-safe?](https://docs.sqlalchemy.org/en/20/orm/session_basics.html#is-the-session-thread-safe-is-asyncsession-safe-to-share-in-concurrent-tasks)
    """

    code = "LOOP205"
    name = "session-in-background-task"
    summary = "Request-scoped session passed to a background task"
    fix_title = "Pass IDs to the task and open a new session inside it (`with SessionLocal() as db:`)"

    def check(self, model: ProjectModel) -> Iterator[Emit]:
        tracker = lc.lifecycles(model)
        version = model.fastapi_version
        mw_attrs = tracker.middleware_attrs()
        for fn in model.functions():
            sessions = tracker.request_sessions(fn)
            yield from self._sinks(model, tracker, fn, sessions, mw_attrs, version)
            if sessions:
                yield from self._via_helpers(model, tracker, fn, sessions, version)

    def _via_helpers(self, model, tracker: lc.Lifecycles, fn: _Func, sessions, version: str) -> Iterator[Emit]:
        """A project helper given the request's session that hands it to a task itself
        (`schedule(db, background_tasks)` doing `background_tasks.add_task(work, db)`):
        reported at the call, with the helper's hand-over as the chain."""
        scope = _Scope(fn.module, fn)
        sites = fn.module.ir.sites
        path = fn.module.ir.path
        for sid in fn.ir.sites:
            call = sites[sid].expr
            if sites[sid].kind != ir.CALL or type(call) is not ir.Call:
                continue
            func = model.eval(call.func, scope)
            helper = model.func(func) if isinstance(func, VFunc) else None
            if helper is None or helper is fn:
                continue
            bound = model.arguments(helper, func, call)
            handed = {param: sessions[arg.id] for param, arg in bound.items()
                      if type(arg) is ir.Name and arg.id in sessions}
            if not handed:
                continue
            inner = next(self._sinks(model, tracker, helper, handed, {}, version), None)
            if inner is None:
                continue
            name = next(arg.id for arg in bound.values() if type(arg) is ir.Name and arg.id in sessions)
            yield Emit(path, (path, sid),
                       f"`{{code}}` hands the request-scoped {lc.label(sessions[name][0])} `{name}` to "
                       f"`{helper.ir.name}`, which gives it "
                       "to a background task or thread that outlives the request ({chain}): the request's "
                       "session is closed (or reused) when the request ends; pass IDs and open a new session "
                       "in the task", chain=((inner.site, helper.ir.qualname),), function=fn.ir.qualname)

    def _session_in(self, model, tracker: lc.Lifecycles, fn: _Func, expr, sessions, mw_attrs, coroutine=False):
        """The request-scoped session an expression is, contains, or captures.

        `coroutine`: expr is the coroutine handed to a task (`create_task(work(db))`), so the
        arguments of the call are what the task gets. Otherwise a call is followed only when
        it is `functools.partial(work, db)`: `add_task(work(db))` runs `work` right away.
        """
        expr = lc.strip(expr)
        t = type(expr)
        if t is ir.Name:
            if expr.id in sessions:
                return expr.id, sessions[expr.id]
            # a nested function / lambda given by name
            refs = [v for _o, v in fn.assigns.get(expr.id, ()) if type(v) is ir.FuncRef]
            if refs:
                return self._captured(tracker, fn, refs[-1].qualname, sessions, mw_attrs)
            return None
        if t is ir.Attr:
            got = self._state_attr(expr, mw_attrs)
            return (got, ("", None, "middleware")) if got else None
        if t is ir.FuncRef:
            return self._captured(tracker, fn, expr.qualname, sessions, mw_attrs)
        if t is ir.Seq:
            for item in expr.items:
                got = self._session_in(model, tracker, fn, item, sessions, mw_attrs)
                if got:
                    return got
            return None
        if t is ir.Call:
            if not coroutine:
                func = model.eval(expr.func, _Scope(fn.module, fn))
                if not (isinstance(func, VExt) and func.qualname == "functools.partial"):
                    return None
            for arg in (expr.func, *expr.args, *(v for _k, v in expr.kwargs)):
                got = self._session_in(model, tracker, fn, arg, sessions, mw_attrs)
                if got:
                    return got
        return None

    def _captured(self, tracker: lc.Lifecycles, fn: _Func, qualname: str, sessions, mw_attrs):
        child = fn.module.funcs.get(qualname)
        if child is None:
            return None
        for inner in (child, *tracker.children(child)):
            facts = tracker.facts(inner)
            for name, info in sessions.items():
                if name in facts.names and name not in inner.params and name not in inner.assigns:
                    return name, info
            if mw_attrs:
                for sid in inner.ir.sites:
                    site = inner.module.ir.sites[sid]
                    if site.kind == ir.CALL and type(site.expr) is ir.Call:
                        for arg in (site.expr.func, *site.expr.args, *(v for _k, v in site.expr.kwargs)):
                            got = self._state_attr(arg, mw_attrs)
                            if got:
                                return got, ("", None, "middleware")
        return None

    def _state_attr(self, expr, mw_attrs):
        expr = lc.strip(expr)
        while type(expr) is ir.Attr:
            if type(expr.value) is ir.Attr and expr.value.attr == "state" and expr.attr in mw_attrs \
                    and not lc.is_app_like(expr.value.value):
                return lc.path_of(expr)
            expr = expr.value
        return None

    def _sinks(self, model, tracker: lc.Lifecycles, fn: _Func, sessions, mw_attrs, version: str) -> Iterator[Emit]:
        if not sessions and not mw_attrs:
            return
        scope = _Scope(fn.module, fn)
        sites = fn.module.ir.sites
        path = fn.module.ir.path
        for sid in fn.ir.sites:
            site = sites[sid]
            call = site.expr
            if site.kind != ir.CALL or type(call) is not ir.Call:
                continue
            sink, passed = self._sink(model, tracker, fn, scope, call)
            if not sink or not self._outlives(tracker, fn, sid, sink):
                continue
            for expr in passed:
                got = self._session_in(model, tracker, fn, expr, sessions, mw_attrs, coroutine=sink == "task")
                if got:
                    name, (kind, dep, origin) = got
                    yield Emit(path, (path, sid), self._message(sink, name, kind, dep, origin, version, model, fn),
                               function=fn.ir.qualname)
                    break

    def _outlives(self, tracker: lc.Lifecycles, fn: _Func, sid: int, sink: str) -> bool:
        """Does the request go on (and end) without waiting for this task or thread?"""
        if sink == "add_task":
            return True  # background tasks run after the response, always
        occ = tracker.facts(fn).calls.get(sid)
        if occ is None:
            return False
        if sink == "task":
            # fire and forget; a kept task may be awaited later, an awaited one is joined now
            # (so may one a comprehension collects: `tasks = [create_task(...) for ...]`)
            site = fn.module.ir.sites[sid]
            in_comprehension = site.loop_id >= 0 and fn.module.ir.loops[site.loop_id].kind == ir.COMP
            return occ.how == "stmt" and not site.awaited and not in_comprehension
        if occ.how == "assign":  # `worker = Thread(...)`: joined before the request ends?
            return not any(o.how == "recv" and o.attr == "join" for o in tracker.facts(fn).names.get(occ.target, ()))
        return occ.how in ("stmt", "recv")

    def _sink(self, model, tracker: lc.Lifecycles, fn: _Func, scope: _Scope, call: ir.Call):
        """("add_task" | "task" | "thread", the expressions handed over) or ("", ())."""
        f = call.func
        kwargs = dict(call.kwargs)
        if type(f) is ir.Attr and f.attr == "add_task":
            if tracker.is_background_tasks(fn, f.value):
                return "add_task", (*call.args, *kwargs.values())
            return "", ()
        func = model.eval(f, scope)
        if isinstance(func, VExt):
            q = func.qualname
            if q in lc.BACKGROUND_TASK:
                return "add_task", (*call.args, *kwargs.values())
            if q in lc.CREATE_TASK:
                return "task", (*call.args[:1], kwargs.get("coro")) if call.args or "coro" in kwargs else ()
            if q in lc.THREADS:
                return "thread", (kwargs.get("target"), kwargs.get("args"), kwargs.get("kwargs"),
                                  *call.args[1:3])
            return "", ()
        if type(f) is ir.Attr and f.attr in ("create_task", "ensure_future") and not self._task_group(
                model, fn, scope, f.value):
            if isinstance(func, (VFunc, VMethod, VClass)):
                return "", ()
            return "task", tuple(call.args[:1])
        return "", ()

    def _task_group(self, model, fn: _Func, scope: _Scope, expr) -> bool:
        if type(expr) is not ir.Name:
            return False
        for _o, v in fn.assigns.get(expr.id, ()):
            if type(v) is ir.Enter and type(v.value) is ir.Call:
                f = model.eval(v.value.func, scope)
                if isinstance(f, VExt) and f.qualname in lc.TASK_GROUPS:
                    return True
        return False

    def _message(self, sink: str, name: str, kind: str, dep, origin: str, version: str, model, fn) -> str:
        what = f"request-scoped {lc.label(kind)} `{name}`" if kind else f"request-scoped session `{name}`"
        head = f"`{{code}}` hands the {what} to "
        target = {"add_task": "a background task", "task": "an asyncio task", "thread": "a thread"}[sink]
        if origin == "middleware":
            return (head + f"{target}, but the middleware that opened it closes it as the response goes out: the "
                    "task works on a closed session; open a new session in the task")
        if sink != "add_task":
            return (head + f"{target} that the request does not wait for: the dependency's teardown closes the "
                    "session while the task may still use it; open a new session in the task")
        scoped = dep is not None and any(k == "scope" and type(v) is ir.Const and v.value == "function"
                                         for k, v in dep.kwargs)
        case = fastapi_case(version)
        if scoped:
            return (head + f"{target}, but `Depends(..., scope=\"function\")` closes it before the response is sent, "
                    "so the task gets a closed session (SQLAlchemy reopens it and nothing closes it again)")
        if case == "early":
            return (head + f"{target}; FastAPI {version} runs the dependency's teardown before the response is "
                    "sent, so the task gets a closed session (SQLAlchemy reopens it and nothing closes it again)")
        if case == "late":
            return (head + f"{target}; FastAPI {version} runs the dependency's teardown only after background "
                    "tasks: the session still works in the task, but the request holds it, its transaction and "
                    "its pooled connection until the task ends; open a new session in the task")
        if case == "request":
            return (head + f"{target}; FastAPI {version} keeps the request's session open for the task, which "
                    "holds a pooled connection through it until the dependency's teardown runs after the task; "
                    "open a new session in the task")
        return (head + f"{target}: depending on the FastAPI version the dependency closes it before the task "
                "runs (0.106-0.117, or `scope=\"function\"`) or keeps it and its pooled connection checked out "
                "until the task ends (0.118+, and before 0.106); open a new session in the task")


class SessionUsedConcurrently(Rule):
    """
    ## What it does
    Reports one `AsyncSession` (or `AsyncConnection`) used by several awaitables that run
    concurrently:

    * `asyncio.gather(f(session), g(session))`, `asyncio.gather(*[f(session, x) for x in xs])`,
      `asyncio.wait`/`as_completed` over such coroutines;
    * two or more `TaskGroup.create_task(...)` / anyio `start_soon(...)` using it, or one
      inside a loop;
    * `asyncio.create_task(...)` using it, more than once or in a loop, or while the
      function goes on using the session itself.

    A sync `Session` given to several `run_in_threadpool`/`asyncio.to_thread` calls that are
    gathered is reported too (several threads at once).

    ## Why is this bad?
    A session is a single, stateful transaction on one connection. SQLAlchemy forbids
    using one `AsyncSession` from concurrent tasks: the driver sees overlapping commands
    ("another operation is in progress", "This session is provisioning a new
    connection; concurrent operations are not permitted"), or worse, the interleaved
    flushes and autobegins silently mix the tasks' work in one transaction.

    ## Example
    ```python
    @app.get("/dashboard")
    async def dashboard(session: AsyncSession = Depends(get_session)):
        users, orders = await asyncio.gather(count_users(session), count_orders(session))
    ```

    ## Use instead
    ```python
    async def count_users_own() -> int:
        async with AsyncSessionLocal() as session:  # one session per task
            return await count_users(session)


    @app.get("/dashboard")
    async def dashboard(session: AsyncSession = Depends(get_session)):
        users = await count_users(session)  # or run the queries one after the other
        orders = await count_orders(session)
    ```

    ## Known limitations
    Only a session passed directly (a name or `self.<attr>`) is followed; one reached
    through another object is not. A task that is awaited before the function uses the
    session again is assumed not to be, unless its result is kept in a name.

    ## References
    - [SQLAlchemy: using AsyncSession with concurrent tasks](https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html#asyncio-concurrency)
    - [SQLAlchemy: is AsyncSession safe to share in concurrent tasks?](https://docs.sqlalchemy.org/en/20/orm/session_basics.html#is-the-session-thread-safe-is-asyncsession-safe-to-share-in-concurrent-tasks)
    - [FastAPI: SQL databases](https://fastapi.tiangolo.com/tutorial/sql-databases/)
    """

    code = "LOOP206"
    name = "session-used-concurrently"
    summary = "One AsyncSession used by concurrent tasks"
    fix_title = "Give each concurrent task its own session, or await the queries one after the other"

    def check(self, model: ProjectModel) -> Iterator[Emit]:
        tracker = lc.lifecycles(model)
        for fn in model.functions():
            if not fn.ir.is_async:
                continue
            yield from self._check_fn(model, tracker, fn)

    # --- which expressions are the session ------------------------------------------------
    def _kind_of_path(self, model, fn: _Func, scope: _Scope, expr) -> str:
        p = lc.path_of(expr)
        if p is None:
            return ""
        value = model.eval(lc.strip(expr), scope)
        if isinstance(value, VKind) and (value.kind in lc.ASYNC_SQLA_KINDS or value.kind in lc.SYNC_SQLA_KINDS):
            return value.kind
        return ""

    def _uses(self, model, tracker: lc.Lifecycles, fn: _Func, scope: _Scope, expr, depth: int = 0) -> dict:
        """Sessions an awaitable expression uses: {path: (kind, offloaded)}."""
        expr = lc.strip(expr)
        out: dict = {}
        if type(expr) is ir.Name and depth < 1:
            for _o, v in fn.assigns.get(expr.id, ()):
                if type(lc.strip(v)) is ir.Call:
                    out.update(self._uses(model, tracker, fn, scope, v, depth + 1))
            return out
        if type(expr) is not ir.Call:
            return out
        func = model.eval(expr.func, scope)
        offloaded = isinstance(func, VExt) and (func.qualname in cat.OFFLOAD_WRAPPERS) or (
            type(expr.func) is ir.Attr and expr.func.attr in cat.OFFLOAD_METHODS)
        # `session.execute(...)`: a method of the session itself
        if type(expr.func) is ir.Attr:
            recv = expr.func.value
            kind = self._kind_of_path(model, fn, scope, recv)
            if kind in lc.ASYNC_SQLA_KINDS:
                out[lc.path_of(recv)] = (kind, False)
        for arg in (*expr.args, *(v for k, v in expr.kwargs if k not in ("*", "**"))):
            kind = self._kind_of_path(model, fn, scope, arg)
            if kind:
                out[lc.path_of(arg)] = (kind, offloaded)
        if isinstance(func, VFunc):
            child = model.func(func)
            if child is not None and child.ir.parent == fn.ir.qualname:
                facts = tracker.facts(child)
                for name in facts.names:
                    if name in child.params or name in child.assigns:
                        continue
                    kind = self._kind_of_path(model, fn, scope, model.interned(ir.Name(name)))
                    if kind:
                        out[name] = (kind, False)
        return out

    def _concurrent(self, uses: list[dict]) -> str:
        """A session used by two of these awaitables (async kinds, or sync ones in threads)."""
        count: dict[str, int] = {}
        for use in uses:
            for p, (kind, offloaded) in use.items():
                if kind in lc.ASYNC_SQLA_KINDS or offloaded:
                    count[p] = count.get(p, 0) + 1
        for p, n in count.items():
            if n >= 2:
                return p
        return ""

    def _check_fn(self, model, tracker: lc.Lifecycles, fn: _Func) -> Iterator[Emit]:
        scope = _Scope(fn.module, fn)
        sites = fn.module.ir.sites
        path = fn.module.ir.path
        facts = tracker.facts(fn)
        groups: dict[str, list] = {}
        plain_tasks: list = []
        for sid in fn.ir.sites:
            site = sites[sid]
            call = site.expr
            if site.kind != ir.CALL or type(call) is not ir.Call:
                continue
            func = model.eval(call.func, scope)
            q = func.qualname if isinstance(func, VExt) else ""
            if q in lc.GATHER or q in lc.WAIT_ALL:
                msg = self._gather(model, tracker, fn, scope, site, call, q)
                if msg:
                    yield Emit(path, (path, sid), msg, function=fn.ir.qualname)
                continue
            if type(call.func) is ir.Attr and call.func.attr in ("create_task", "start_soon", "start"):
                tg = self._task_group(model, fn, scope, call.func.value)
                if tg is not None:
                    coro = call.args[0] if call.args else None
                    if call.func.attr == "create_task":
                        use = self._uses(model, tracker, fn, scope, coro)
                    else:
                        use = self._uses(model, tracker, fn, scope, ir.Call(coro, call.args[1:], (), -1)) \
                            if coro is not None else {}
                    groups.setdefault(tg[0], []).append((site, use, tg[1]))
                    continue
            if q in lc.CREATE_TASK or (type(call.func) is ir.Attr and call.func.attr in ("create_task",)
                                       and not isinstance(func, (VFunc, VMethod, VClass))):
                coro = call.args[0] if call.args else None
                plain_tasks.append((site, self._uses(model, tracker, fn, scope, coro)))
        for _tg, entries in groups.items():
            yield from self._many(fn, path, entries, "a task of a task group")
        yield from self._many(fn, path, [(s, u, None) for s, u in plain_tasks], "an asyncio task")
        # a single task while the function goes on using the session
        for site, use in plain_tasks:
            if facts.calls.get(site.id) is None or facts.calls[site.id].how != "stmt" or site.awaited:
                continue
            for p, (kind, _off) in use.items():
                if kind not in lc.ASYNC_SQLA_KINDS:
                    continue
                if self._used_after(model, fn, scope, site, p):
                    yield Emit(path, (path, site.id),
                               f"`{{code}}` runs a task using {lc.label(kind)} `{p}` while `{_display(fn)}` goes on "
                               "using the same session: SQLAlchemy forbids concurrent use of one session",
                               function=fn.ir.qualname)
                    break

    def _many(self, fn: _Func, path: str, entries: list, what: str) -> Iterator[Emit]:
        by_session: dict[str, list] = {}
        for site, use, tg_call in entries:
            for p, (kind, offloaded) in use.items():
                if kind in lc.ASYNC_SQLA_KINDS or offloaded:
                    by_session.setdefault(p, []).append((site, kind, tg_call))
        for p, hits in by_session.items():
            hits.sort(key=lambda h: h[0].id)
            looped = [h for h in hits if h[0].loop > (h[2].loop if h[2] is not None else 0)]
            if len(hits) >= 2:
                site, kind, _ = hits[1]
            elif looped:
                site, kind, _ = looped[0]
            else:
                continue
            yield Emit(path, (path, site.id),
                       f"`{{code}}` starts {what} using {lc.label(kind)} `{p}` while another one may still use it: "
                       "SQLAlchemy forbids concurrent use of one session; give each task its own session",
                       function=fn.ir.qualname)

    def _gather(self, model, tracker, fn: _Func, scope: _Scope, site: ir.Site, call: ir.Call, q: str) -> str:
        items = list(call.args)
        starred = [v for k, v in call.kwargs if k == "*"]
        if q in lc.WAIT_ALL and items:
            first = items[0]
            if type(first) is ir.Seq:
                items = list(first.items)
            else:
                starred.append(first)
                items = []
        uses = [self._uses(model, tracker, fn, scope, item) for item in items]
        p = self._concurrent(uses)
        kind = ""
        if not p and starred:
            # `gather(*[f(session, x) for x in xs])`, `gather(*tasks)` built in a loop
            span = fn.module.ir.spans[site.id]
            for sid in fn.ir.sites:
                other = fn.module.ir.sites[sid]
                if other.kind != ir.CALL or type(other.expr) is not ir.Call or other.awaited or sid == site.id:
                    continue
                if other.loop <= site.loop and not self._inside(fn, sid, site.id):
                    continue
                if other.loop < 1:
                    continue
                ospan = fn.module.ir.spans[sid]
                if ospan is None or span is None or ospan[:2] > span[2:]:
                    continue
                if not self._makes_coroutine(model, fn, scope, other.expr):
                    continue
                use = self._uses(model, tracker, fn, scope, other.expr)
                for cand, (k, off) in use.items():
                    if k in lc.ASYNC_SQLA_KINDS or off:
                        p, kind = cand, k
                        break
                if p:
                    break
        if not p:
            return ""
        if not kind:
            for use in uses:
                if p in use:
                    kind = use[p][0]
        name = q.rpartition(".")[2]
        return (f"`{{code}}` runs awaitables that share {lc.label(kind)} `{p}` concurrently (`{name}`): SQLAlchemy "
                "forbids concurrent use of one session; give each task its own session or await them one by one")

    def _inside(self, fn: _Func, inner: int, outer: int) -> bool:
        a = fn.module.ir.spans[inner]
        b = fn.module.ir.spans[outer]
        return bool(a and b and a[:2] >= b[:2] and a[2:] <= b[2:])

    def _makes_coroutine(self, model, fn: _Func, scope: _Scope, call: ir.Call) -> bool:
        func = model.eval(call.func, scope)
        if isinstance(func, VFunc):
            callee = model.func(func)
            return callee is not None and callee.ir.is_async
        if isinstance(func, VMethod):
            return func.kind in lc.ASYNC_SQLA_KINDS
        if isinstance(func, VExt):
            return func.qualname in cat.OFFLOAD_WRAPPERS
        return type(call.func) is ir.Attr and call.func.attr in cat.OFFLOAD_METHODS

    def _task_group(self, model, fn: _Func, scope: _Scope, expr):
        if type(expr) is not ir.Name:
            return None
        for _o, v in fn.assigns.get(expr.id, ()):
            if type(v) is ir.Enter and type(v.value) is ir.Call:
                f = model.eval(v.value.func, scope)
                if isinstance(f, VExt) and f.qualname in lc.TASK_GROUPS:
                    return expr.id, fn.module.ir.sites[v.value.site]
        return None

    def _used_after(self, model, fn: _Func, scope: _Scope, task_site: ir.Site, p: str) -> bool:
        spans = fn.module.ir.spans
        end = spans[task_site.id]
        if end is None:
            return False
        for sid in fn.ir.sites:
            site = fn.module.ir.sites[sid]
            if site.kind != ir.CALL or type(site.expr) is not ir.Call or sid == task_site.id:
                continue
            span = spans[sid]
            if span is None or span[:2] <= end[2:]:
                continue
            call = site.expr
            if type(call.func) is ir.Attr and lc.path_of(call.func.value) == p:
                return True
            if any(lc.path_of(a) == p for a in (*call.args, *(v for _k, v in call.kwargs))):
                return True
        return False


_REGISTRIES = (lc.SCOPED_SESSION, "sqlalchemy.AsyncSession")


def _never_removed(parts: list) -> dict[str, tuple[Emit, ...]]:
    """`async_scoped_session(factory, scopefunc=current_task)` and nothing ever calls its
    `remove()`: every task's session (and the task) stays in the registry."""
    removed: set = set()
    for _made, removes in parts:
        removed.update(removes)
    found: dict[str, list[Emit]] = {}
    for made, _removes in parts:
        for path, sid, function, target, owner in made:
            if removed and ("." not in target or "" in removed or owner in removed):
                continue
            found.setdefault(path, []).append(Emit(path, (path, sid),
                              "`{code}` keeps a session per `scopefunc` key (a task, a request) until "
                              "`remove()`, and the project never calls it: each key's session, and the "
                              "task itself, stays in the registry for the life of the process; "
                              "`await registry.remove()` when the request ends", function=function))
    return {path: tuple(emits) for path, emits in found.items()}


@module_fact("loop2.registries_never_removed", _never_removed)
def _registries_in(model: ProjectModel, mod) -> tuple[tuple, frozenset]:
    """This module's scoped-session registries (path, site, function, the name it is assigned
    to, what that names), and what its `remove()` calls (or `Scoped.remove` handed over as a
    callback) name: a registry kept on a class attribute counts as removed only by a remove()
    on that attribute (`Trade.session.remove()` leaves `_CustomData.session`); "" stands for
    one the analysis cannot name."""
    path = mod.ir.path
    made = []
    removed: set = set()
    for site in mod.ir.sites:
        call = site.expr
        if site.kind != ir.CALL or type(call) is not ir.Call:
            continue
        func = call.func
        name = func.id if type(func) is ir.Name else func.attr if type(func) is ir.Attr else ""
        if name == "remove" and type(func) is ir.Attr:
            scope = _site_scope(mod, site)
            value = model.eval(func.value, scope)
            if isinstance(value, VKind) and value.kind in _REGISTRIES:
                removed.add(_owner_attr(model, func.value, scope))
        elif name.endswith("scoped_session") and any(k == "scopefunc" for k, _ in call.kwargs):
            scope = _site_scope(mod, site)
            made_by = model.eval(call.func, scope)
            if not (isinstance(made_by, VExt) and made_by.qualname in cat.SCOPED_REGISTRIES):
                continue
            target = _assigned_to(mod, site)
            owner = _owner_attr(model, model.interned(ir.parse_dotted(target)), scope) if "." in target else ""
            made.append((path, site.id, site.function, target, owner))
    for fn in mod.funcs.values():  # `Scoped.remove` handed over as a callback
        for base, attr, pos in fn.ir.attr_reads:
            if attr == "remove":
                value = model.lookup(base, _Scope(mod, fn), pos)
                if isinstance(value, VKind) and value.kind in _REGISTRIES:
                    removed.add("")
    return tuple(made), frozenset(removed)


def _importer_index(parts: list) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for path, targets in parts:
        for target in targets:
            found.setdefault(target, []).append(path)
    return {target: tuple(paths) for target, paths in found.items()}


@module_fact("loop2.importers", _importer_index, syntactic=True)
def _imports_of(model: ProjectModel, mod) -> tuple[str, frozenset[str]]:
    """What a module imports (`from m import x`, or inside a function): for "who imports m.x"."""
    targets = set(mod.imports.values())
    for f in mod.funcs.values():
        targets.update(v.id[len("<import>"):] for _n, v, _o in f.ir.assigns
                       if type(v) is ir.Name and v.id.startswith("<import>"))
    return mod.ir.path, frozenset(targets)
