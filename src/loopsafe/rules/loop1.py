"""LOOP1xx: blocking work on the event loop."""
from __future__ import annotations

from typing import Iterator

from loopsafe import catalogue as cat
from loopsafe import ir
from loopsafe.flow import cached_evaluations, facts_of, walk
from loopsafe.rules.base import Emit, Rule
from loopsafe.semantic import ProjectModel

_FIX_OFFLOAD = ("Declare the function with `def` (FastAPI runs it in a threadpool), use the async driver, "
                "or `await run_in_threadpool(...)`")


def _where(fn) -> str:
    return f"`async def {fn.ir.name}`" if fn.ir.is_async else f"`def {fn.ir.name}`"


def _when(model: ProjectModel, fn) -> str:
    """Why a plain `def` is on the loop (its decorator), and the severity note of startup code
    (it blocks the loop while no request is served)."""
    note = ""
    if not fn.ir.is_async:
        # the rule's fix title (declare it `def`) does not help here: the wrapper must offload
        note = (f" (`@{model.loop_decorator(fn)}` calls it from an `async def` wrapper without a thread, "
                "so it runs on the event loop: offload it there, `await run_in_threadpool(func, ...)`)")
    if model.is_startup_code(fn):
        note += " (startup/shutdown code: no request is served while it runs, so it only delays startup or shutdown)"
    return note


class SyncDbCallInAsync(Rule):
    """
    ## What it does
    Reports a blocking call of a synchronous database library made directly inside an
    `async def`: a SQLAlchemy/SQLModel `Session` query or commit, a legacy `Query` terminal
    method (`.all()`, `.first()`...), a cursor `execute`, a PyMongo collection operation, a
    redis-py command, a peewee query execution, a Django queryset evaluation, or iterating
    one of their lazy queries, or testing a peewee select or a Django queryset for truth
    (`if not rows:`), which runs it (such a query is reported once: later uses of the same
    one read its result cache). A plain `def` counts as an `async def` when the decorator
    nearest it calls it from an `async def` wrapper, inline (`return func(*args, **kwargs)`
    without `await` or a thread): the framework awaits the wrapper on the loop, so the
    body runs there too (as for LOOP102 and LOOP103). In a lifespan or a startup/shutdown
    handler the finding is still reported (the loop is blocked) but its message says that
    no request is served while that code runs: it delays startup or shutdown, not
    requests. Test code (`conftest.py`, `test_*.py`, files under `tests/`) is not checked:
    blocking there stalls a test, not a request (as for LOOP102, LOOP103 and LOOP105). A
    `test_*.py` module outside test folders that application code imports (a router named
    `test_checkout.py` mounted by the app) is application code.

    ## Why is this bad?
    FastAPI runs `async def` endpoints and dependencies on the event loop. A synchronous
    driver waits for the database on the loop's only thread, so every other request served
    by the worker stalls until the query returns. Under load, one slow query freezes the
    whole service.

    ## Example
    ```python
    @app.get("/users")
    async def list_users(db: Session = Depends(get_db)):
        return db.query(User).all()
    ```

    ## Use instead
    ```python
    @app.get("/users")
    def list_users(db: Session = Depends(get_db)):  # runs in FastAPI's threadpool
        return db.query(User).all()
    ```
    or use the async driver (`AsyncSession`, `redis.asyncio`, `AsyncMongoClient`...) and
    `await` it, or offload: `await run_in_threadpool(lambda: db.query(User).all())`.

    ## Fix safety
    The fix offloads the call: `db.query(User).all()` becomes
    `await run_in_threadpool(lambda: db.query(User).all())`, and an iterated query
    `for user in query:` becomes `for user in await run_in_threadpool(lambda: list(query)):`.
    `run_in_threadpool` is imported from `fastapi.concurrency` (`starlette.concurrency` in a
    module that does not import fastapi) unless the module already imports it. The fix is
    unsafe: the call then runs in a worker thread while the event loop serves other requests
    (the session is used from another thread), and a lazily iterated query is read into a
    list at once. It is offered only where `await` is legal: directly in the body of the
    `async def`, not in a lambda or in a comprehension (except its outermost iterable). When
    LOOP105 reports the same function, its fix (`def`) is preferred and the wraps in that
    function are not applied.

    ## Known limitations
    The kind of an object is inferred from annotations (with generic factories:
    `sessionmaker[Session]`, `Callable[..., ContextManager[Session]]`), constructors,
    factories, `with ... as` and `Depends(...)` (including an object a dependency builds
    around the session: `repo: Repo = Depends(get_repo)`); `x.query(Model)` with `Model` a
    mapped class is a sync Session's query whatever `x` is, since no other object takes a
    mapped class there, and an attribute of `self` that nothing types (a property returning
    `self.settings["db"]`) is a sync Session when a method of the class calls
    `self.<attr>.query(Model)` with one; an object whose kind cannot be seen (an unannotated
    parameter no caller passes a known session to) is not reported. Lazy-loaded ORM
    attributes are not reported by this rule. Calls made through helpers are LOOP103. A
    truth test of a peewee select or a Django queryset in an `elif` or an `assert` is not
    reported (the first use after it is); in an `if`, a `while` or a conditional
    expression it is.
    """

    code = "LOOP101"
    name = "sync-db-call-in-async-function"
    summary = "Blocking sync DB call made directly on the event loop"
    fix_title = _FIX_OFFLOAD

    def check(self, model: ProjectModel) -> Iterator[Emit]:
        for fn in model.functions():
            if not model.on_loop(fn) or model.is_test_code(fn):
                continue
            ops = [op for op in model.loop_ops(fn) if not op.is_via and op.effect == cat.IO]
            blocking = {op.site[1] for op in ops}
            sites = fn.module.ir.sites
            # `conn.execute(q).fetchall()`: one finding, on the whole chain (its fix offloads
            # the whole chain), not one more on the call inside it
            inner = {n.site for op in ops if type(sites[op.site[1]].expr) is ir.Call
                     for n in walk(sites[op.site[1]].expr.func) if type(n) is ir.Call and n.site in blocking}
            # `for kb in kbs` after `len(kbs)`: a peewee/Django query runs once, then reads its cache
            cached = cached_evaluations(facts_of(model, fn.module, fn), sorted(blocking))
            for op in ops:
                if op.site[1] in inner or op.site[1] in cached:
                    continue
                yield Emit(op.site[0], op.site, f"`{{code}}` is a blocking {op.label} call on the event loop "
                           f"in {_where(fn)}{_when(model, fn)}", function=fn.ir.qualname)


class SyncDbConnectInAsync(Rule):
    """
    ## What it does
    Reports opening a synchronous database connection inside an `async def`:
    `sqlite3.connect`, `psycopg2.connect`, `psycopg.connect`, `pymysql.connect`,
    `MySQLdb.connect`, `engine.connect()`, `engine.begin()`, `engine.raw_connection()`,
    a peewee `db.connect()`.
    Test code is not checked (see LOOP101).

    ## Why is this bad?
    Connecting does network (or disk) I/O and often a TLS and authentication handshake.
    Done on the event loop it blocks every request served by the worker, and a connection
    pool that is exhausted makes it wait for as long as the pool timeout.

    ## Example
    ```python
    @app.get("/items")
    async def items():
        conn = sqlite3.connect("app.db")
        ...
    ```

    ## Use instead
    ```python
    @app.get("/items")
    async def items():
        async with aiosqlite.connect("app.db") as conn:
            ...
    ```
    or make the endpoint a plain `def`, or open the connection in a worker thread.

    ## Fix safety
    There is no automatic fix: the async replacement of a connection (another driver,
    `async with`, awaiting each use) cannot be derived from the call alone. When LOOP105
    reports the function, its fix (`def`) covers this finding too.

    ## Known limitations
    Pools that connect lazily (`create_engine`, `MongoClient`, `redis.Redis`) are not
    reported when constructed, only when used.
    """

    code = "LOOP102"
    name = "sync-db-connect-in-async-function"
    summary = "Sync DB connection opened on the event loop"
    fix_title = "Connect with the async driver (`await ...connect()`), or make the function a plain `def`"

    def check(self, model: ProjectModel) -> Iterator[Emit]:
        for fn in model.functions():
            if not model.on_loop(fn) or model.is_test_code(fn):
                continue
            for op in model.loop_ops(fn):
                if not op.is_via and op.effect == cat.CONNECT:
                    yield Emit(op.site[0], op.site, f"`{{code}}` opens a blocking {op.label} connection on the "
                               f"event loop in {_where(fn)}{_when(model, fn)}", function=fn.ir.qualname)


class BlockingCallViaHelper(Rule):
    """
    ## What it does
    Reports a call, inside an `async def`, to a synchronous function of the project that
    blocks on the database, directly or through further synchronous calls, possibly in
    other modules. The finding sits at the call in the `async def` (where the fix goes)
    and carries the chain down to the blocking operation.
    Test code is not checked (see LOOP101).

    A helper's branch guarded by one of its parameters (`if blocking:`,
    `if dedup_key is not None and ...`, `if user_id is None: return` before the work) is
    followed only when the call can take it: a call that leaves that parameter at a `None`,
    `False` or `True` default, or passes such a literal, rules out the branches its value
    excludes. Any other argument (a variable, `**kwargs`) may take them.

    A helper that keeps what it read (`@lru_cache`, or a `self._loaded` flag it tests
    first and sets after the query) is reported as well: its first call, and each miss,
    still runs the query on the event loop, stalling whatever request comes first. Load
    such data at startup (a lifespan handler), or offload the call.

    ## Why is this bad?
    A plain `def` helper runs wherever its caller runs. Called from an `async def`, its
    `db.query(...)` runs on the event loop exactly as if it were written inline, and the
    whole worker stalls. This is the most common form of the bug in real projects:
    `crud.get_user(db, user_id)` from an async endpoint.

    ## Example
    ```python
    # crud.py
    def get_user(db: Session, user_id: int):
        return db.get(User, user_id)

    # api.py
    @router.get("/users/{user_id}")
    async def read_user(user_id: int, db: Session = Depends(get_db)):
        return crud.get_user(db, user_id)
    ```

    ## Use instead
    ```python
    @router.get("/users/{user_id}")
    def read_user(user_id: int, db: Session = Depends(get_db)):
        return crud.get_user(db, user_id)
    ```
    or `await run_in_threadpool(crud.get_user, db, user_id)`.

    ## Fix safety
    The fix offloads the call: `crud.get_user(db, user_id)` becomes
    `await run_in_threadpool(crud.get_user, db, user_id)`, keeping the arguments as written
    (the `lambda:` form when a keyword argument is named `func`), and imports
    `run_in_threadpool` as LOOP101's fix does. It is unsafe: the helper then runs in a worker
    thread while the event loop serves other requests. It is offered only where `await` is
    legal (directly in the `async def`, not in a lambda or a comprehension), and not in a
    function whose LOOP105 fix (`def`) applies.

    ## Known limitations
    Calls through dynamic dispatch (`getattr`, callbacks stored in containers) are not
    followed. A helper whose session parameter has no annotation is only reported when a
    caller's argument is known to be a sync session. Only tests of a parameter itself
    (truth, `is None`, `is not None`, `not`, `and`/`or`) rule branches out; `mode == "on"`
    or a parameter the helper rebinds keeps every branch. A helper's `rollback()` under a
    test of its own session's state (`if self.db.dirty: self.db.rollback()` in a `finish()`
    hook) cleans up after a failure and is not followed.
    """

    code = "LOOP103"
    name = "blocking-call-via-helper"
    summary = "Async function calls a sync helper that blocks on the DB"
    fix_title = "Make the caller a plain `def`, or `await run_in_threadpool(helper, ...)`"

    def check(self, model: ProjectModel) -> Iterator[Emit]:
        for fn in model.functions():
            if not model.on_loop(fn) or model.is_test_code(fn):
                continue
            for op in model.loop_ops(fn):
                if op.is_via:
                    yield Emit(op.site[0], op.site, f"`{{code}}` calls sync `{ir.redefined(op.callee)}`, which blocks the event "
                               f"loop ({op.label}): {{chain}}{_when(model, fn)}", chain=op.chain,
                               function=fn.ir.qualname)


class AsyncEndpointWithoutAwait(Rule):
    """
    ## What it does
    Reports an `async def` FastAPI route or dependency that never awaits anything
    (no `await`, `async for` or `async with`) and does blocking database work. The
    individual blocking calls inside are reported by LOOP101-LOOP103; this finding names
    the root cause on the `def` line.

    ## Why is this bad?
    Declaring an endpoint `async def` tells FastAPI to run it on the event loop. When the
    body is entirely synchronous there is nothing to gain and everything to lose: each of
    its database calls blocks every concurrent request. A plain `def` endpoint would run
    in the threadpool and be correct as written.

    ## Example
    ```python
    @app.get("/users/{user_id}")
    async def read_user(user_id: int, db: Session = Depends(get_db)):
        return db.get(User, user_id)
    ```

    ## Use instead
    ```python
    @app.get("/users/{user_id}")
    def read_user(user_id: int, db: Session = Depends(get_db)):
        return db.get(User, user_id)
    ```

    ## Fix safety
    The fix deletes the `async` keyword (and only it). It is unsafe: FastAPI then runs the
    function in its threadpool instead of on the event loop, so code relying on running on
    the loop's thread (thread-locals, objects bound to the loop) or calling the function
    directly (`await get_db()` in a test) must change. It is not offered when the project's
    own code calls the function (`return await get_current_user(...)` in another
    dependency: as a `def` it would hand back its result, and awaiting that raises
    TypeError), nor when its nearest decorator calls it from an `async def` wrapper without
    `await` or a thread (as a `def` it would still run on the loop); the LOOP101/LOOP103
    wraps are offered there instead. When it applies, the
    wraps in the same function are not applied (`await` is not allowed in a `def`).

    ## Known limitations
    Only functions registered as routes (decorators, `add_api_route`,
    `router.get(...)(fn)`) or used in `Depends`/`Security` are considered, outside test
    code (see LOOP101): a route a test defines for its own client blocks only that test.
    """

    code = "LOOP105"
    name = "async-endpoint-without-await"
    summary = "Async route or dependency never awaits but blocks on the DB"
    fix_title = "Declare it with `def` so FastAPI runs it in a threadpool"

    def check(self, model: ProjectModel) -> Iterator[Emit]:
        for fn in model.functions():
            if (not fn.ir.is_async or not model.on_loop(fn) or fn.ir.has_await or not model.is_entry_point(fn)
                    or model.is_test_code(fn)):
                continue
            if model.loop_ops(fn):
                # a route may be Quart's or Starlette's; a dependency is FastAPI's
                kind = "route" if model.is_route(fn) else "FastAPI dependency"
                yield Emit(fn.module.ir.path, (fn.module.ir.path, fn.ir.def_site),
                           f"`async def {fn.ir.name}` is a {kind} that never awaits but does blocking "
                           "DB work on the event loop", function=fn.ir.qualname)
