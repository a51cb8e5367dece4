"""Rules whose mistakes have a runtime symptom that is not a stall, proved on the code that makes them.

The app in ``app/rules.py`` (engines, sessions and dependencies in ``app/rules_db.py``, test
clients in ``app/rules_client.py``) has, per rule, a positive and a twin doing the same work
right. Each test

1. scans ``app/`` with loopsafe and takes its verdict on the positive and on the twin;
2. drives both (through ``httpx.ASGITransport`` on a live event loop, against a fresh SQLite
   file: sqlite3 behind a sync ``Session``, aiosqlite behind ``AsyncSession``) and observes
   what happens, with SQLAlchemy's pool and connection events where the symptom is a count;
3. asserts that the flagged code shows the symptom the rule describes and the silent twin
   does not.

* LOOP303: ``create_async_engine("sqlite:///...")`` raises ``InvalidRequestError`` ("requires
  an async driver") already when the engine is created, not at its first connection.
* LOOP501: ``httpx.AsyncClient(app=...)`` raises ``TypeError`` with httpx 0.28+ (a
  ``DeprecationWarning`` before).
* LOOP201/202/203: a session nobody closes keeps its connection checked out of the
  ``QueuePool`` after the response, one per request, until the garbage collector runs;
  for LOOP203 only the requests whose endpoint raises leak.
* LOOP204: an ``AsyncSession`` on ``app.state`` used by concurrent requests: each request
  adds an item and commits; the first commit provisions the session's connection, the
  others fail with "This session is provisioning a new connection; concurrent operations are
  not permitted", and their items are committed anyway, by the request that succeeded.
* LOOP206: ``asyncio.gather`` of two queries on one fresh ``AsyncSession`` raises
  "This session is provisioning a new connection; concurrent operations are not permitted".
* LOOP304: reading a lazy relationship loaded through an ``AsyncSession`` raises
  ``MissingGreenlet`` (wrapped in a ``StatementError``).
* LOOP401/402: N statements / N commits for N items against 1 for the twin.
* LOOP403: a pool (and a new DBAPI connection) per request against one for the app.
"""
from __future__ import annotations

import asyncio
import gc
import sqlite3
import warnings
from pathlib import Path

# every dependency is in the `test` extra: a missing one must fail the run, not skip the proof
import httpx
import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import IllegalStateChangeError, InvalidRequestError
from sqlalchemy.pool import Pool

from app import rules_db
from app.rules import close_shared_session, open_shared_session, rules_app
from app.rules_client import client_with_app_argument, client_with_transport
from loopsafe.engine import check_files
from symptoms import missing_greenlet
from loopsafe.model import Finding, Options, SourceFile

pytestmark = pytest.mark.runtime

HERE = Path(__file__).resolve().parent
APP_DIR = HERE / "app"
RULES_FILES = ("app/rules.py", "app/rules_db.py", "app/rules_client.py")
HTTPX = tuple(int(p) for p in httpx.__version__.split(".")[:2])

#: items of owner 1, then items with no owner; owner 2 has none
OWNER_ITEMS = ("a", "b", "c")
ALL_ITEMS = (*OWNER_ITEMS, "d", "e")
#: requests per leak/engine proof: the symptom must grow with them, not just appear once
REQUESTS = 3


# --------------------------------------------------------------------------- static verdict


@pytest.fixture(scope="module")
def findings() -> list[Finding]:
    """What loopsafe reports in the rules modules, for every family but LOOP1 (the stall
    rules, proved in test_event_loop.py, whose scan must see nothing here).

    The whole of app/ is scanned, as a project would be, so cross-module dependencies resolve.
    """
    files = [
        SourceFile(f"app/{p.name}", p.read_text(encoding="utf-8"), str(p))
        for p in sorted(APP_DIR.glob("*.py"))
    ]
    report = check_files(files, Options(select=("LOOP2", "LOOP3", "LOOP4", "LOOP5")), root=str(HERE), jobs=1)
    assert report.parse_errors == ()
    return [f for f in report.findings if f.path in RULES_FILES]


def _verdict(findings: list[Finding], code: str, function: str) -> list[Finding]:
    return [f for f in findings if f.code == code and f.function == function]


def test_static_findings_are_exactly_the_positives(findings: list[Finding]) -> None:
    """Nothing else in the rules modules is reported: every twin is silent for every rule of
    every family, not only for the one it pairs with."""
    assert sorted((f.code, f.function) for f in findings) == [
        ("LOOP201", "items_unclosed_session"),
        ("LOOP202", "get_db_returned"),
        ("LOOP203", "get_db_close_after_yield"),
        ("LOOP204", "open_shared_session"),
        ("LOOP206", "counts_gathered_on_one_session"),
        ("LOOP303", "async_engine_with_sync_driver"),
        ("LOOP304", "owner_items_lazy"),
        ("LOOP401", "items_one_query_per_id"),
        ("LOOP402", "add_items_commit_each"),
        ("LOOP403", "get_db_engine_per_request"),
        ("LOOP501", "client_with_app_argument"),
    ]


def _assert_static(findings: list[Finding], code: str, positive: str, *twins: str) -> None:
    assert _verdict(findings, code, positive), f"{code} not reported in {positive}"
    for twin in twins:
        assert not _verdict(findings, code, twin), f"{code} reported in its twin {twin}"


# --------------------------------------------------------------------------- runtime


@pytest.fixture
def rules_database(tmp_path: Path) -> str:
    """A fresh SQLite file with owners and items; the rules app points at it."""
    path = str(tmp_path / "rules.db")
    engine = create_engine(f"sqlite:///{path}")
    rules_db.Base.metadata.create_all(engine)
    engine.dispose()
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany("INSERT INTO owner (id, name) VALUES (?, ?)", [(1, "ada"), (2, "bob")])
        conn.executemany("INSERT INTO item (title, owner_id) VALUES (?, ?)",
                         [(t, 1 if t in OWNER_ITEMS else None) for t in ALL_ITEMS])
    conn.close()
    rules_db.configure(path)
    yield path
    rules_db.engine.dispose()


def _item_count(path: str) -> int:
    """What is really in the file, read through a connection of its own."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT count(*) FROM item").fetchone()[0]
    finally:
        conn.close()


def _serve(work):
    """Run `work(client)` on a fresh loop, then dispose of the async engine on that same loop
    (aiosqlite connections belong to the loop that opened them)."""
    async def main():
        try:
            async with client_with_transport(rules_app) as client:
                return await work(client)
        finally:
            # a failed asyncio.gather leaves its other awaitables running (LOOP206): let them
            # finish here, or aiosqlite's thread answers a loop that is already closed
            others = asyncio.all_tasks() - {asyncio.current_task()}
            if others:
                await asyncio.wait(others, timeout=10)
            await rules_db.async_engine.dispose()

    return asyncio.run(main())


def _get_all(urls: list[str]):
    async def work(client: httpx.AsyncClient) -> list[int]:
        return [(await client.get(url)).status_code for url in urls]

    return work


# ------------------------------------------------------------------ LOOP303


def test_loop303_sync_driver_in_async_engine(rules_database: str, findings: list[Finding],
                                             verdict_table: dict) -> None:
    _assert_static(findings, "LOOP303", "async_engine_with_sync_driver", "async_engine_with_async_driver")

    # the docs speak of the first connection; SQLAlchemy refuses already at construction,
    # so no engine exists to connect with
    with pytest.raises(InvalidRequestError, match="requires an async driver") as raised:
        rules_db.async_engine_with_sync_driver(rules_database)
    message = str(raised.value).split(" (Background")[0]
    verdict_table[("LOOP303", 'create_async_engine(f"sqlite:///{path}")')] = (
        "LOOP303", f"InvalidRequestError at create_async_engine(), before any connect: {message}")

    async def select_one() -> int:
        engine = rules_db.async_engine_with_async_driver(rules_database)
        try:
            async with engine.connect() as conn:
                return await conn.scalar(text("SELECT count(*) FROM item"))
        finally:
            await engine.dispose()

    count = asyncio.run(select_one())
    assert count == len(ALL_ITEMS)
    verdict_table[("LOOP303", 'create_async_engine(f"sqlite+aiosqlite:///{path}")')] = (
        "silent", f"connects and queries: {count} items")


# ------------------------------------------------------------------ LOOP501


def test_loop501_asyncclient_app_argument(rules_database: str, findings: list[Finding], verdict_table: dict) -> None:
    _assert_static(findings, "LOOP501", "client_with_app_argument", "client_with_transport")

    if HTTPX >= (0, 28):
        with pytest.raises(TypeError, match="unexpected keyword argument 'app'") as raised:
            client_with_app_argument(rules_app)
        symptom = f"httpx {httpx.__version__}: TypeError: {raised.value}"
    else:  # pragma: no cover - httpx 0.27 still takes app= and warns
        with pytest.warns(DeprecationWarning, match="app") as caught:
            asyncio.run(client_with_app_argument(rules_app).aclose())
        symptom = f"httpx {httpx.__version__}: DeprecationWarning: {caught[0].message}"
    verdict_table[("LOOP501", "AsyncClient(app=app)")] = ("LOOP501", symptom)

    [status] = _serve(_get_all(["/201/closed"]))
    assert status == 200
    verdict_table[("LOOP501", "AsyncClient(transport=ASGITransport(app=app))")] = (
        "silent", f"httpx {httpx.__version__}: GET -> {status}")


# ------------------------------------------------------------------ LOOP201/202/203


def _checked_out_after(urls: list[str]) -> tuple[list[int], int, int]:
    """(statuses, connections checked out of the sync pool after the requests, and after a
    garbage collection).

    Automatic collection is held off while the requests run: it fires at allocation counts,
    at an arbitrary moment, and a leaked session is only ever given back by it. Reference
    counting alone cannot free one (a Session and its transaction refer to each other).
    """
    gc.collect()
    assert rules_db.engine.pool.checkedout() == 0
    gc.disable()
    try:
        statuses = _serve(_get_all(urls))
        held = rules_db.engine.pool.checkedout()
    finally:
        gc.enable()
    gc.collect()
    return statuses, held, rules_db.engine.pool.checkedout()


def _leak_symptom(statuses: list[int], held: int, after_gc: int) -> str:
    return (f"{len(statuses)} x {sorted(set(statuses))}: {held} connection(s) still checked out; "
            f"{after_gc} after gc.collect()")


def test_loop201_session_not_closed(rules_database: str, findings: list[Finding], verdict_table: dict) -> None:
    _assert_static(findings, "LOOP201", "items_unclosed_session", "items_closed_session")

    statuses, held, after_gc = _checked_out_after(["/201/unclosed"] * REQUESTS)
    verdict_table[("LOOP201", "db = SessionLocal(), never closed")] = ("LOOP201", _leak_symptom(statuses, held, after_gc))
    assert statuses == [200] * REQUESTS
    assert held == REQUESTS  # one connection per request, until the collector finds the session
    # after_gc (reported in the table) is not asserted: an idle worker thread may still hold
    # the last request's frame, by scheduling (see LOOP203)

    statuses, held, after_gc = _checked_out_after(["/201/closed"] * REQUESTS)
    verdict_table[("LOOP201", "with SessionLocal() as db")] = ("silent", _leak_symptom(statuses, held, after_gc))
    assert statuses == [200] * REQUESTS
    assert held == 0


def test_loop202_dependency_returns_session(rules_database: str, findings: list[Finding],
                                            verdict_table: dict) -> None:
    _assert_static(findings, "LOOP202", "get_db_returned", "get_db")

    statuses, held, after_gc = _checked_out_after(["/202/returned"] * REQUESTS)
    verdict_table[("LOOP202", "dependency returns SessionLocal()")] = ("LOOP202", _leak_symptom(statuses, held, after_gc))
    assert statuses == [200] * REQUESTS
    assert held == REQUESTS  # after_gc is not asserted: see LOOP201

    statuses, held, after_gc = _checked_out_after(["/202/yielded"] * REQUESTS)
    verdict_table[("LOOP202", "with SessionLocal() as db: yield db")] = ("silent", _leak_symptom(statuses, held, after_gc))
    assert statuses == [200] * REQUESTS
    assert held == 0


def test_loop203_cleanup_not_in_finally(rules_database: str, findings: list[Finding], verdict_table: dict) -> None:
    _assert_static(findings, "LOOP203", "get_db_close_after_yield", "get_db_close_in_finally")

    # the close after `yield` runs when the endpoint succeeds...
    statuses, held, _ = _checked_out_after(["/203/after-yield/owners/1"] * REQUESTS)
    assert statuses == [200] * REQUESTS
    assert held == 0
    # ...and is skipped when it raises: FastAPI throws the exception in at the `yield`
    statuses, held, after_gc = _checked_out_after(["/203/after-yield/owners/999"] * REQUESTS)
    verdict_table[("LOOP203", "yield db; db.close()")] = (
        "LOOP203", f"{REQUESTS} x [200]: 0 checked out; " + _leak_symptom(statuses, held, after_gc))
    assert statuses == [404] * REQUESTS
    assert held == REQUESTS
    # not asserted: whether the collector can give them back. The failing request's exception
    # holds the abandoned dependency frame and its session, and whether anything still holds
    # the last exception after the requests depends on thread scheduling (0 or 1 observed)

    statuses, held, after_gc = _checked_out_after(["/203/finally/owners/1", "/203/finally/owners/999"] * REQUESTS)
    verdict_table[("LOOP203", "try: yield db / finally: db.close()")] = (
        "silent", _leak_symptom(statuses, held, after_gc))
    assert sorted(statuses) == [200] * REQUESTS + [404] * REQUESTS
    assert held == 0


# ------------------------------------------------------------------ LOOP204


def _item_titles(path: str) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [t for (t,) in conn.execute("SELECT title FROM item ORDER BY id")]
    finally:
        conn.close()


def _concurrent_posts(urls: list[str], shared: bool) -> list:
    """POST every url at once (one asyncio.gather), the responses or what the app raised;
    with `shared`, on an app whose shared session is opened before and closed after."""
    async def work(client: httpx.AsyncClient) -> list:
        if shared:
            open_shared_session()
        try:
            return await asyncio.gather(*(client.post(url) for url in urls), return_exceptions=True)
        finally:
            if shared:
                # let the failed requests' tasks end before closing the session under them
                others = asyncio.all_tasks() - {asyncio.current_task()}
                if others:
                    await asyncio.wait(others, timeout=10)
                await close_shared_session()

    return _serve(work)


def _outcome(result) -> str:
    if isinstance(result, httpx.Response):
        return str(result.status_code)
    return type(result).__name__


def test_loop204_session_shared_between_requests(rules_database: str, findings: list[Finding],
                                                 verdict_table: dict) -> None:
    _assert_static(findings, "LOOP204", "open_shared_session", "add_item_own_session", "get_async_session")
    titles = [f"req {i}" for i in range(REQUESTS)]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = _concurrent_posts([f"/204/app-state/items/{t}" for t in titles], shared=True)
    # the other requests' add() lands in the middle of the winner's flush
    mid_flush = sum("within the execution stage of the flush" in str(w.message) for w in caught)
    outcomes = [_outcome(r) for r in results]
    failed = [t for t, r in zip(titles, results) if not isinstance(r, httpx.Response)]
    errors = [r for r in results if isinstance(r, BaseException)]
    committed = [t for t in _item_titles(rules_database) if t in titles]
    # which request wins is scheduling, not the rule: the first commit provisions the
    # connection and every other request's commit runs into it
    assert outcomes.count("200") >= 1 and failed, outcomes
    assert all(isinstance(e, InvalidRequestError) and "concurrent operations are not permitted" in str(e)
               for e in errors), errors
    # the failed requests' items were in the shared session when the winner committed it
    assert sorted(committed) == sorted(titles), (outcomes, committed)
    verdict_table[("LOOP204", "app.state.shared_session = AsyncSessionLocal()")] = (
        "LOOP204",
        f"{REQUESTS} concurrent add+commit: {outcomes.count('200')} x 200, {len(failed)} x "
        f"{type(errors[0]).__name__}: {str(errors[0]).split(' (Background')[0]}; yet "
        f"{len(committed)}/{REQUESTS} items committed (the failed requests' too, by another's commit); "
        f"{mid_flush} x SAWarning: Session.add() during the execution stage of the flush")

    titles = [f"own {i}" for i in range(REQUESTS)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = _concurrent_posts([f"/204/per-request/items/{t}" for t in titles], shared=False)
    assert not [w for w in caught if "flush" in str(w.message)], [str(w.message) for w in caught]
    outcomes = [_outcome(r) for r in results]
    committed = [t for t in _item_titles(rules_database) if t in titles]
    assert outcomes == ["200"] * REQUESTS, results
    assert [r.json() for r in results] == [{"added": t} for t in titles]
    assert sorted(committed) == sorted(titles)
    verdict_table[("LOOP204", "Depends(get_async_session): a session per request")] = (
        "silent", f"{REQUESTS} concurrent add+commit: {REQUESTS} x 200, {len(committed)}/{REQUESTS} items committed")


# ------------------------------------------------------------------ LOOP206


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__context__
    return seen


def test_loop206_session_used_concurrently(rules_database: str, findings: list[Finding],
                                           verdict_table: dict) -> None:
    _assert_static(findings, "LOOP206", "counts_gathered_on_one_session",
                   "counts_awaited_in_turn", "counts_gathered_on_own_sessions")

    with pytest.raises((InvalidRequestError, IllegalStateChangeError)) as raised:
        _serve(_get_all(["/206/gather"]))
    chain = _chain(raised.value)
    # the first failure is the second query finding the session busy; gather does not cancel
    # the other query, so the dependency's close() then fails on the half-open session too
    concurrent = [e for e in chain if isinstance(e, InvalidRequestError) and not isinstance(e, IllegalStateChangeError)]
    assert concurrent and "concurrent operations are not permitted" in str(concurrent[0]), chain
    described = " <- ".join(f"{type(e).__name__}" for e in chain)
    verdict_table[("LOOP206", "gather(count_owners(session), count_items(session))")] = (
        "LOOP206", f"{described}: {str(concurrent[0]).split(' (Background')[0]}")

    for url, case in (("/206/sequential", "await one, then the other"),
                      ("/206/own-sessions", "gather, one session per task")):
        result = _serve(lambda client, url=url: client.get(url))
        assert result.status_code == 200, result.text
        assert result.json() == {"owners": 2, "items": len(ALL_ITEMS)}
        verdict_table[("LOOP206", case)] = ("silent", f"{result.status_code} {result.json()}")


# ------------------------------------------------------------------ LOOP304


def test_loop304_lazy_load_in_async(rules_database: str, findings: list[Finding], verdict_table: dict) -> None:
    _assert_static(findings, "LOOP304", "owner_items_lazy", "owner_items_selectin")

    raised_as, stray = missing_greenlet(lambda: _serve(_get_all(["/304/lazy/owners/1"])))
    verdict_table[("LOOP304", "session.get(Owner, id) then owner.items")] = (
        "LOOP304", f"{raised_as} reading owner.items" + "".join(f"; then at GC: {m}" for m in stray))

    response = _serve(lambda client: client.get("/304/selectin/owners/1"))
    assert response.status_code == 200, response.text
    assert response.json() == {"items": list(OWNER_ITEMS)}
    verdict_table[("LOOP304", "options=[selectinload(Owner.items)]")] = (
        "silent", f"{response.status_code} {response.json()}")


# ------------------------------------------------------------------ LOOP401/402


def _counting(work):
    """Run `work`, counting the statements and commits the async engine sends to SQLite."""
    counts = {"statements": 0, "inserts": 0, "selects": 0, "commits": 0}

    def on_execute(conn, cursor, statement, parameters, context, executemany) -> None:
        counts["statements"] += 1
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb in ("INSERT", "SELECT"):
            counts[f"{verb.lower()}s"] += 1

    def on_commit(conn) -> None:
        counts["commits"] += 1

    sync_engine = rules_db.async_engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", on_execute)
    event.listen(sync_engine, "commit", on_commit)
    try:
        return _serve(work), counts
    finally:
        event.remove(sync_engine, "before_cursor_execute", on_execute)
        event.remove(sync_engine, "commit", on_commit)


def test_loop401_query_in_loop(rules_database: str, findings: list[Finding], verdict_table: dict) -> None:
    _assert_static(findings, "LOOP401", "items_one_query_per_id", "items_one_query")
    ids = list(range(1, len(ALL_ITEMS) + 1))

    response, counts = _counting(lambda client: client.get("/401/per-id", params={"ids": ids}))
    assert response.status_code == 200 and response.json() == {"titles": list(ALL_ITEMS)}, response.text
    verdict_table[("LOOP401", "await session.get(Item, id) per id")] = (
        "LOOP401", f"{len(ids)} ids: {counts['selects']} SELECTs")
    assert counts["selects"] == counts["statements"] == len(ids)

    response, counts = _counting(lambda client: client.get("/401/in", params={"ids": ids}))
    assert response.status_code == 200 and response.json() == {"titles": list(ALL_ITEMS)}, response.text
    verdict_table[("LOOP401", "select(Item).where(Item.id.in_(ids))")] = (
        "silent", f"{len(ids)} ids: {counts['selects']} SELECT")
    assert counts["selects"] == counts["statements"] == 1


def test_loop402_commit_in_loop(rules_database: str, findings: list[Finding], verdict_table: dict) -> None:
    _assert_static(findings, "LOOP402", "add_items_commit_each", "add_items_commit_once")
    titles = [f"new {i}" for i in range(5)]

    response, counts = _counting(lambda client: client.post("/402/commit-per-item", json=titles))
    assert response.status_code == 200 and response.json() == {"added": len(titles)}, response.text
    assert _item_count(rules_database) == len(ALL_ITEMS) + len(titles)
    verdict_table[("LOOP402", "session.add(); await session.commit() per item")] = (
        "LOOP402", f"{len(titles)} items: {counts['commits']} commits, {counts['inserts']} INSERTs")
    assert counts["commits"] == counts["inserts"] == len(titles)

    response, counts = _counting(lambda client: client.post("/402/commit-once", json=titles))
    assert response.status_code == 200 and response.json() == {"added": len(titles)}, response.text
    assert _item_count(rules_database) == len(ALL_ITEMS) + 2 * len(titles)
    # the INSERTs are not what the rule is about: whether the ORM batches them into one
    # statement depends on the dialect (aiosqlite gets one per row), the commits do not
    verdict_table[("LOOP402", "session.add() per item; one commit")] = (
        "silent", f"{len(titles)} items: {counts['commits']} commit, {counts['inserts']} INSERTs")
    assert counts["commits"] == 1


# ------------------------------------------------------------------ LOOP403


def test_loop403_engine_per_request(rules_database: str, findings: list[Finding], verdict_table: dict) -> None:
    _assert_static(findings, "LOOP403", "get_db_engine_per_request", "get_db_shared_engine")

    def pools_and_connections(url: str) -> tuple[list[int], int, int]:
        seen = {"pools": 0, "connections": 0}

        # listened on the Pool class, so pools created during the requests are counted too;
        # "first_connect" fires once per pool
        def on_first_connect(dbapi_connection, connection_record) -> None:
            seen["pools"] += 1

        def on_connect(dbapi_connection, connection_record) -> None:
            seen["connections"] += 1

        event.listen(Pool, "first_connect", on_first_connect)
        event.listen(Pool, "connect", on_connect)
        try:
            statuses = _serve(_get_all([url] * REQUESTS))
        finally:
            event.remove(Pool, "first_connect", on_first_connect)
            event.remove(Pool, "connect", on_connect)
        gc.collect()  # the per-request engines are unreachable: let their connections close now
        return statuses, seen["pools"], seen["connections"]

    statuses, pools, connections = pools_and_connections("/403/engine-per-request")
    verdict_table[("LOOP403", "create_engine() in the dependency")] = (
        "LOOP403", f"{REQUESTS} requests: {pools} pools, {connections} new connections")
    assert statuses == [200] * REQUESTS
    assert pools == connections == REQUESTS

    statuses, pools, connections = pools_and_connections("/403/shared-engine")
    verdict_table[("LOOP403", "module-level engine")] = (
        "silent", f"{REQUESTS} requests: {pools} pool, {connections} new connection")
    assert statuses == [200] * REQUESTS
    assert pools == connections == 1
