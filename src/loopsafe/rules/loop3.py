"""LOOP3xx: async-API misuse."""
from __future__ import annotations

from typing import Iterator

from loopsafe import catalogue as cat
from loopsafe import ir
from loopsafe.flow import ARG, ASSIGN, ATTR, ITER, SUB, FunctionFacts, calls, facts_of, render, url_texts
from loopsafe.orm import Loads, OrmIndex
from loopsafe.rules.base import Emit, Rule
from loopsafe.semantic import ProjectModel, VExt, VKind, _Func, _Mod, module_fact


def _where(fn: _Func | None) -> str:
    if fn is None:
        return "at module level"
    return f"in `{'async def' if fn.ir.is_async else 'def'} {fn.ir.name}`"


class AsyncDbCallNotAwaited(Rule):
    """
    ## What it does
    Reports a call that returns a coroutine (or another awaitable) on an async database
    object, made without `await`, whose result is thrown away or used as if it were the
    value: `session.commit()`, `session.execute(q).scalars()`, `conn.fetch(q)` iterated,
    a `redis.asyncio` command, a motor or `AsyncMongoClient` collection operation,
    `asyncpg.connect(...)`. The objects are SQLAlchemy's `AsyncSession`, `AsyncConnection`,
    `AsyncEngine` and `AsyncResult`, psycopg's async connections, cursors and pools, asyncpg
    connections, pools, prepared statements and transactions, aiosqlite, aiomysql/asyncmy,
    `redis.asyncio` clients, pipelines, pub/subs and locks, motor/PyMongo Async clients,
    databases, collections and cursors, and `databases.Database`.

    ## Why is this bad?
    Calling a coroutine function only creates the coroutine: nothing is sent to the
    database until it is awaited. A forgotten `await session.commit()` silently loses the
    write (Python prints "coroutine ... was never awaited" at garbage collection, if
    anyone reads the logs); `session.execute(q).scalars()` fails with `AttributeError:
    'coroutine' object has no attribute 'scalars'`. Many of these methods are plain `def`s
    returning an awaitable (redis.asyncio commands, motor, aiosqlite, SQLModel's
    `AsyncSession.exec`), so type checkers and `inspect.iscoroutinefunction` do not help;
    loopsafe knows them from its catalogue.

    ## Example
    ```python
    @router.post("/items")
    async def create_item(item: ItemIn, session: AsyncSession = Depends(get_session)):
        session.add(Item(**item.model_dump()))
        session.commit()
        rows = session.execute(select(Item)).scalars().all()
        return rows
    ```

    ## Use instead
    ```python
    @router.post("/items")
    async def create_item(item: ItemIn, session: AsyncSession = Depends(get_session)):
        session.add(Item(**item.model_dump()))
        await session.commit()
        rows = (await session.execute(select(Item))).scalars().all()
        return rows
    ```
    Plain methods stay plain: `session.add()`, `add_all()`, `expunge()`, `in_transaction()`,
    `async with session.begin():`, `async with engine.connect() as conn:`,
    `collection.find(...)` (a cursor), `redis.pipeline()`. A coroutine handed to
    `asyncio.gather`, `asyncio.create_task`, `asyncio.wait_for`, returned, or stored in a
    name and awaited later is not reported.

    ## Known limitations
    Only objects whose kind is known (annotations, constructors, factories, `Depends`) are
    checked. A coroutine stored in a name is reported only when that name is then used as a
    value (an attribute, an index, iteration, `len()`...); a coroutine used in a condition
    or in arithmetic (`if session.scalar(q):`, `count + 1`) is not seen. Awaitables that are also async
    context managers (`aiosqlite`'s `conn.execute(...)`, `engine.connect()`,
    `pool.acquire()`) are reported only when thrown away. Methods that are coroutines in
    PyMongo Async but return cursors in motor (`aggregate`, `watch`, `list_indexes`) are
    not checked.

    ## References
    - [SQLAlchemy: Asynchronous I/O (asyncio)](https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html)
    - [Python: Coroutines and Tasks](https://docs.python.org/3/library/asyncio-task.html#coroutines)
    - [redis-py: asyncio examples](https://redis.readthedocs.io/en/stable/examples/asyncio_examples.html)
    - [PyMongo: AsyncMongoClient](https://pymongo.readthedocs.io/en/stable/api/pymongo/asynchronous/mongo_client.html)
    - [asyncpg API reference](https://magicstack.github.io/asyncpg/current/api/index.html)
    """

    code = "LOOP301"
    name = "async-db-call-not-awaited"
    summary = "Coroutine of an async DB object called without `await`"
    fix_title = "Add `await` (or hand the coroutine to `asyncio.gather`/`create_task` on purpose)"

    def check(self, model: ProjectModel) -> Iterator[Emit]:
        for facts, site, call in calls(model):
            if site.awaited:
                continue
            what = _awaitable(facts, call)
            if what is None:
                continue
            label, awaits = what
            how = _misuse(facts, site, call, awaits)
            if how:
                mod, fn = facts.mod, facts.fn
                yield Emit(mod.ir.path, (mod.ir.path, site.id), f"`{{code}}` is never awaited {_where(fn)}: "
                           f"{label} returns an awaitable, and {how}", function=fn.ir.qualname if fn else "")


def _awaitable(facts: FunctionFacts, call: ir.Call) -> tuple[str, str] | None:
    """(label, awaits) when the call returns something that must be awaited."""
    found = facts.method_of(call)
    if found is not None:
        k, name, m = found
        if m.awaits:  # an async kind's coroutine method, or a sync ORM's async twin
            return f"`{name}()` of a {k.label}", m.awaits
        return None
    value = facts.eval(call.func)
    if isinstance(value, VExt):
        entry = facts.model.entry(value.qualname)
        if entry is not None and entry.awaits:
            return f"`{value.qualname}()`", entry.awaits
    return None


def _misuse(facts: FunctionFacts, site: ir.Site, call: ir.Call, awaits: str) -> str:
    """How the un-awaited value is misused ("" when it may well be awaited elsewhere)."""
    if site.discarded:
        return "the call's result is thrown away, so nothing reaches the database"
    if awaits != cat.MUST_AWAIT:
        return ""
    for role, parent in facts.uses(call):
        used = _value_use(facts, role, parent, call)
        if used:
            return f"{used} is applied to the coroutine, not to its result"
        if role.startswith(ASSIGN + ":"):
            name = role[len(ASSIGN) + 1:]
            if "." in name:
                continue
            for order, value in facts.bindings.get(name, ()):
                if value is not call:
                    continue
                for node, nrole, nparent in facts.uses_of_binding(name, order):
                    used = _value_use(facts, nrole, nparent, node)
                    if used:
                        return f"{used} is applied to the coroutine stored in `{name}`, not to its result"
                for read in facts.attr_nodes():
                    base = read.value
                    if type(base) is ir.Name and base.id == name and read.attr not in cat.AWAITABLE_ATTRS:
                        hit = facts.reaching(name, base.pos)
                        if hit is not None and hit[0] == order:
                            return f"`.{read.attr}` is applied to the coroutine stored in `{name}`, not to its result"
    return ""


def _value_use(facts: FunctionFacts, role: str, parent: ir.Expr | None, node: ir.Expr) -> str:
    if role == ATTR and type(parent) is ir.Attr and parent.attr not in cat.AWAITABLE_ATTRS:
        return f"`.{parent.attr}`"
    if role == SUB and type(parent) is ir.Sub:
        return "indexing"
    if role == ITER:
        return "iterating"
    if role == ARG and type(parent) is ir.Call and any(a is node for a in parent.args) \
            and facts.is_builtin(parent.func, cat.VALUE_CONSUMERS):
        return f"`{parent.func.id}()`"
    return ""


class AsyncSessionExpiresOnCommit(Rule):
    """
    ## What it does
    Reports `async_sessionmaker(...)`, `sessionmaker(..., class_=AsyncSession)` and
    `AsyncSession(...)` created without `expire_on_commit=False` (or with
    `expire_on_commit=True`). Calls that pass `**kwargs` are not reported.

    ## Why is this bad?
    By default a session expires every loaded object when it commits, so the next read of
    any attribute reloads it from the database. With an `AsyncSession` that implicit load
    cannot be awaited: reading `user.name` after `await session.commit()` raises
    `MissingGreenlet` (with SQLAlchemy 2.1, a `StatementError` wrapping it, so an
    `except MissingGreenlet:` does not catch it). The
    SQLAlchemy asyncio documentation recommends `expire_on_commit=False` for this reason;
    returning a freshly committed object from a FastAPI endpoint is the classic way to hit
    it.

    ## Example
    ```python
    engine = create_async_engine("postgresql+asyncpg://app@db/app")
    SessionLocal = async_sessionmaker(engine)
    ```

    ## Use instead
    ```python
    engine = create_async_engine("postgresql+asyncpg://app@db/app")
    SessionLocal = async_sessionmaker(engine, expire_on_commit=False)
    ```
    or `await session.refresh(obj)` after each commit before reading it.

    ## Fix safety
    The fix adds `expire_on_commit=False` as the call's last argument, keeping its layout:
    on a line of its own, indented like the previous argument, when the call has one
    argument per line, and with a trailing comma if the call had one. It is safe: it is the
    setting SQLAlchemy's asyncio documentation recommends, and with an AsyncSession the
    expired attributes it stops could not be reloaded anyway (MissingGreenlet). It is not
    offered when the call passes `expire_on_commit=` explicitly or `**kwargs`.

    Test code is not checked: a test that reads an object after committing fails there.

    ## Known limitations
    Factories made by a project's own subclass of `AsyncSession` are not checked. A later
    `factory.configure(expire_on_commit=False)` anywhere in the project silences the
    factories it could concern.

    ## References
    - [SQLAlchemy: Preventing Implicit IO when Using AsyncSession](https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html#preventing-implicit-io-when-using-asyncsession)
    - [SQLAlchemy: Session.commit() and expire_on_commit](https://docs.sqlalchemy.org/en/20/orm/session_basics.html#committing)
    """

    code = "LOOP302"
    name = "async-session-expires-on-commit"
    summary = "AsyncSession or its factory created without `expire_on_commit=False`"
    fix_title = "Pass `expire_on_commit=False`"

    def check(self, model: ProjectModel) -> Iterator[Emit]:
        configured = model.fact("loop3.configured_factories")
        for facts, site, call in calls(model):
            if not _maybe_session_ctor(call):
                continue
            func = facts.eval(call.func)
            if not isinstance(func, VExt):
                continue
            if model.is_test_path(facts.mod.ir.path):
                # a test that reads an object after its commit fails where it is run: the
                # finding adds nothing (as LOOP1xx and LOOP401, this rule skips test code)
                continue
            if func.qualname in cat.ASYNC_SESSION_CONSTRUCTORS:
                what = "`AsyncSession(...)`"
            else:
                made = facts.eval(call)
                if not (isinstance(made, VKind) and made.kind == "sqlalchemy.AsyncSessionFactory"):
                    continue
                if configured:
                    continue
                what = "this AsyncSession factory"
            kwargs = dict(call.kwargs)
            if "**" in kwargs:
                continue
            value = kwargs.get("expire_on_commit")
            if value is None:
                detail = "without `expire_on_commit=False`"
            elif type(value) is ir.Name and value.id == "True":
                detail = "with `expire_on_commit=True`"
            else:
                continue
            mod, fn = facts.mod, facts.fn
            yield Emit(mod.ir.path, (mod.ir.path, site.id), f"`{{code}}` makes sessions that expire every object on "
                       f"commit ({what} {detail}): reading an attribute after `await session.commit()` fails with "
                       "MissingGreenlet", function=fn.ir.qualname if fn else "")


def _maybe_session_ctor(call: ir.Call) -> bool:
    return type(call.func) is ir.Name or type(call.func) is ir.Attr


@module_fact("loop3.configured_factories", any)
def _configures_factories(model: ProjectModel, mod: _Mod) -> bool:
    """Does this module call `<async factory>.configure(expire_on_commit=...)`?"""
    for site in mod.ir.sites:
        call = site.expr
        if site.kind == ir.CALL and type(call) is ir.Call and type(call.func) is ir.Attr \
                and call.func.attr == "configure" and any(k == "expire_on_commit" for k, _ in call.kwargs):
            facts = facts_of(model, mod, mod.funcs.get(site.function) if site.function else None)
            base = facts.eval(call.func.value)
            if isinstance(base, VKind) and base.kind == "sqlalchemy.AsyncSessionFactory":
                return True
    return False


class SyncDriverUrlInAsyncEngine(Rule):
    """
    ## What it does
    Reports `create_async_engine(...)` given a database URL whose driver is synchronous:
    `postgresql://` and `postgresql+psycopg2://`, `sqlite:///`, `mysql://` and
    `mysql+pymysql://`, `mssql+pyodbc://`... The URL is read from a string literal, an
    f-string's leading text, a module constant (also imported from another module), the
    default of `os.getenv("X", "...")` / `os.environ.get("X", "...")`, either side of an
    `or`/conditional expression, or `URL.create("postgresql+psycopg2", ...)`.

    ## Why is this bad?
    `create_async_engine` needs an asyncio DBAPI driver. With a synchronous one it raises
    `InvalidRequestError: The asyncio extension requires an async driver to be used. The
    loaded 'psycopg2' is not async.` as the engine is created (SQLAlchemy 2.x; verified
    against SQLite in tests/runtime), so the application does not start. A default in
    `os.getenv` is what runs in development, tests and any deployment that forgets the
    variable.

    ## Example
    ```python
    engine = create_async_engine(os.getenv("DATABASE_URL", "postgresql://app@localhost/app"))
    ```

    ## Use instead
    ```python
    engine = create_async_engine(os.getenv("DATABASE_URL", "postgresql+asyncpg://app@localhost/app"))
    ```
    The async drivers: `postgresql+asyncpg` or `postgresql+psycopg` (psycopg 3),
    `sqlite+aiosqlite`, `mysql+aiomysql` or `mysql+asyncmy`, `mssql+aioodbc`.

    ## Fix safety
    The fix replaces the sync driver in a URL string literal written inside the reported call
    with its async twin: `postgresql://` and `postgresql+psycopg2://` become
    `postgresql+asyncpg://`, `sqlite://` becomes `sqlite+aiosqlite://`, `mysql://` and
    `mysql+pymysql://` become `mysql+aiomysql://`. It is unsafe: the async driver must be
    installed, and it may not accept the same URL query parameters or connect arguments
    (asyncpg does not take `sslmode`, for one). URLs that come from a variable, settings or
    the environment are not fixed.

    ## Known limitations
    URLs read from settings objects, environment variables without a default, or built by
    string operations other than an f-string are not checked.

    ## References
    - [SQLAlchemy: Asynchronous I/O, connecting](https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html#synopsis-core)
    - [SQLAlchemy: Database URLs and dialects](https://docs.sqlalchemy.org/en/20/core/engines.html#database-urls)
    """

    code = "LOOP303"
    name = "sync-driver-url-in-async-engine"
    summary = "`create_async_engine` given a URL with a synchronous driver"
    fix_title = "Use an async driver in the URL (postgresql+asyncpg, sqlite+aiosqlite, mysql+aiomysql...)"

    def check(self, model: ProjectModel) -> Iterator[Emit]:
        for facts, site, call in calls(model):
            if type(call.func) is not ir.Name and type(call.func) is not ir.Attr:
                continue
            if facts.external(call.func) not in cat.ASYNC_ENGINE_CREATORS:
                continue
            url = call.args[0] if call.args else dict(call.kwargs).get("url")
            if url is None:
                continue
            for text, origin in url_texts(model, facts, url, 0):
                scheme = text.split("://", 1)[0].lower()
                better = cat.SYNC_DRIVER_URLS.get(scheme)
                if "://" in text and better:
                    where = f" ({origin})" if origin else ""
                    path, fn = facts.mod.ir.path, facts.fn
                    yield Emit(path, (path, site.id), f"`{{code}}` is given a `{scheme}://` URL{where}, a "
                               f"synchronous driver that `create_async_engine` rejects: use {better}",
                               function=fn.ir.qualname if fn else "")
                    break


class LazyLoadInAsync(Rule):
    """
    ## What it does
    Reports, inside an `async def`, an ORM relationship attribute read on an object that an
    `AsyncSession` query in the same function loaded without an eager-load option for it:
    `user = await session.get(User, id)` then `user.items`, or
    `(await session.execute(select(User))).scalars().all()` then `for u in users: u.items`.
    The relationship comes from the project's models (`relationship(...)`,
    `Mapped[...] = relationship(...)`, SQLModel `Relationship(...)`, `backref=`) and loads
    on access (the default `lazy="select"`). The finding sits on the query, where the fix
    goes, and names the attribute read.

    ## Why is this bad?
    A lazy load is hidden I/O. Under an `AsyncSession` it cannot be awaited, so the read
    raises `sqlalchemy.exc.MissingGreenlet: greenlet_spawn has not been called; can't call
    await_only() here` (wrapped in a `StatementError`). The endpoint works in a sync test
    and fails in production, or only for the rows whose relationship was not already in
    the session.

    ## Example
    ```python
    @router.get("/users/{user_id}/items")
    async def user_items(user_id: int, session: AsyncSession = Depends(get_session)):
        user = await session.get(User, user_id)
        return [item.title for item in user.items]
    ```

    ## Use instead
    ```python
    @router.get("/users/{user_id}/items")
    async def user_items(user_id: int, session: AsyncSession = Depends(get_session)):
        user = await session.get(User, user_id, options=[selectinload(User.items)])
        return [item.title for item in user.items]
    ```
    or `select(User).options(selectinload(User.items))`, `lazy="selectin"` on the
    relationship, or `await user.awaitable_attrs.items` (`AsyncAttrs`).

    ## Known limitations
    Deliberately narrow: the model class, the relationship and the loading query must all
    be visible, the query in the same function (objects passed in from helpers, and
    objects returned to FastAPI whose `response_model` reads the relationship during
    serialization, are not followed). Relationships whose `lazy=` cannot be
    read (a dict literal in SQLModel's `sa_relationship_kwargs`, a variable) and queries
    with loader options it cannot read are skipped. A `session.refresh(obj, ...)` of the
    object anywhere in the function silences it.

    ## References
    - [SQLAlchemy: Preventing Implicit IO when Using AsyncSession](https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html#preventing-implicit-io-when-using-asyncsession)
    - [SQLAlchemy: Relationship Loading Techniques](https://docs.sqlalchemy.org/en/20/orm/queryguide/relationships.html)
    - [SQLModel: Relationship Attributes](https://sqlmodel.tiangolo.com/tutorial/relationship-attributes/)
    """

    code = "LOOP304"
    name = "lazy-load-in-async"
    summary = "Relationship lazy-loaded in async code on an object loaded by an AsyncSession"
    fix_title = "Eager-load it in the query (`selectinload(Model.rel)`), or `await obj.awaitable_attrs.rel`"

    def check(self, model: ProjectModel) -> Iterator[Emit]:
        orm = OrmIndex(model)
        for fn in model.functions():
            if not fn.ir.is_async:
                continue
            mod = fn.module
            if not _mentions_session_load(mod, fn):
                continue
            loads = Loads(model, orm, facts_of(model, mod, fn))
            seen: set[tuple[int, str]] = set()
            for load, rel, node in loads.lazy_reads():
                key = (load.site, rel.name)
                if key in seen:
                    continue
                seen.add(key)
                cls = rel.owner.qualname.rpartition(".")[2]
                model_name = load.model.qualname.rpartition(".")[2]
                yield Emit(mod.ir.path, (mod.ir.path, load.site),
                           f"`{{code}}` loads `{model_name}` without eager-loading `{cls}.{rel.name}`, which "
                           f"`async def {fn.ir.name}` then reads (`{render(node)}`): the lazy load raises "
                           f"MissingGreenlet under an AsyncSession; add `selectinload({model_name}.{rel.name})`",
                           function=fn.ir.qualname)


def _mentions_session_load(mod: _Mod, fn: _Func) -> bool:
    sites = mod.ir.sites
    for sid in fn.ir.sites:
        call = sites[sid].expr
        if sites[sid].awaited and isinstance(call, ir.Call) and type(call.func) is ir.Attr \
                and call.func.attr in ("get", "get_one", "execute", "scalars", "scalar", "exec"):
            return True
    return False


class PlainMethodAwaited(Rule):
    """
    ## What it does
    Reports `await` applied to a plain method of an async database object whose result
    cannot be awaited: SQLAlchemy's `AsyncSession.add()`, `add_all()`, `expunge()`,
    `expunge_all()`, `expire()`, `expire_all()`, `is_modified()`, `in_transaction()`,
    `in_nested_transaction()` (SQLModel's `AsyncSession` included), `AsyncConnection.in_transaction()`,
    `AsyncEngine.update_execution_options()` and `clear_compiled_cache()`.

    ## Why is this bad?
    These methods do no I/O: they return `None` or a `bool` straight away. Awaiting the
    result raises `TypeError: object NoneType can't be used in 'await' expression` (or
    `... bool ...`), so the request fails with a 500 and nothing after the `await` runs:
    `await session.add(item)` followed by `await session.commit()` never commits. It is the
    mirror image of LOOP301 and comes from the same guess that everything on an
    `AsyncSession` is a coroutine.

    ## Example
    ```python
    @router.post("/items")
    async def create_item(item: ItemIn, session: AsyncSession = Depends(get_session)):
        row = Item(**item.model_dump())
        await session.add(row)
        await session.commit()
        return row
    ```

    ## Use instead
    ```python
    @router.post("/items")
    async def create_item(item: ItemIn, session: AsyncSession = Depends(get_session)):
        row = Item(**item.model_dump())
        session.add(row)
        await session.commit()
        return row
    ```
    `begin()` and `begin_nested()` are plain methods too, but they return an
    `AsyncSessionTransaction`, which may be awaited (`tx = await session.begin()`) or
    entered (`async with session.begin():`): they are not reported.

    ## Fix safety
    The fix removes the `await` keyword in front of the call (only when it is on the same
    line, followed by spaces). It is safe: the awaited expression could only raise, and
    without the `await` the method does what the code meant.

    ## Known limitations
    Only objects whose kind is known (annotations, constructors, factories, `Depends`) are
    checked, and only the methods listed above, whose return values SQLAlchemy documents.
    Plain methods of other async libraries (asyncpg's `conn.transaction()`, redis'
    `pipeline()`, which is awaitable) are not checked.

    ## References
    - [SQLAlchemy: AsyncSession](https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html#sqlalchemy.ext.asyncio.AsyncSession)
    - [Python: the await expression](https://docs.python.org/3/reference/expressions.html#await)
    """

    code = "LOOP305"
    name = "plain-method-awaited"
    summary = "`await` on a plain method of an async DB object (TypeError)"
    fix_title = "Drop the `await`: the method is synchronous and does no I/O"

    def check(self, model: ProjectModel) -> Iterator[Emit]:
        for facts, site, call in calls(model):
            if not site.awaited:
                continue
            found = facts.method_of(call)
            if found is None:
                continue
            k, name, m = found
            if k.is_async and m.not_awaitable:
                mod, fn = facts.mod, facts.fn
                yield Emit(mod.ir.path, (mod.ir.path, site.id),
                           f"`await {{code}}` {_where(fn)} raises TypeError: `{name}()` of a {k.label} "
                           "is a plain method, it returns no awaitable",
                           function=fn.ir.qualname if fn else "")
