"""The session-lifecycle rules whose mistakes fail at runtime, proved on the code that makes them.

The app in ``app/lifecycle.py`` (sessions, dependencies and tasks in ``app/lifecycle_db.py``,
function-scoped dependencies in ``app/lifecycle_scoped.py``) has, per rule, a positive and a
twin doing the same work right. Each test

1. scans ``app/`` with loopsafe and takes its verdict on the positive and on the twin;
2. drives both through ``httpx.ASGITransport`` on a live event loop against a fresh SQLite
   file (aiosqlite behind SQLAlchemy's ``AsyncSession``) and observes what happens;
3. asserts that the flagged code shows the symptom the rule describes and the silent twin
   does not.

* LOOP302: a session from ``async_sessionmaker(engine)`` expires the new row on commit, so
  reading ``note.id`` afterwards needs a lazy load that cannot be awaited: ``MissingGreenlet``
  (after the commit went through). The ``expire_on_commit=False`` twin returns the row.
* LOOP301: ``session.commit()`` without ``await``: the endpoint answers 200, the row never
  reaches the file (the dependency's teardown rolls it back), and Python warns "coroutine
  'AsyncSession.commit' was never awaited". The awaited twin stores the row, without warning.
* LOOP305: ``await session.add(note)``: ``AsyncSession.add`` returns None, so the ``await``
  raises ``TypeError`` and the commit after it never runs. The twin without ``await`` stores
  the row.
* LOOP205: the request's session handed to ``BackgroundTasks.add_task``. The order of the
  dependency's teardown, the response and the task is the one ``loopsafe.pins.fastapi_case``
  predicts for the installed FastAPI, and loopsafe's message names that case. Pool events
  show the cost in every case: the request's session still holds a connection when the task
  ends. Where the session is closed before the task runs (FastAPI 0.106-0.117, or
  ``Depends(..., scope="function")``), the task silently reopens it and the connection is
  never returned. The twins pass the note's id and let the task open its own session.
"""
from __future__ import annotations

import ast
import asyncio
import gc
import re
import sqlite3
import time
import warnings
from pathlib import Path

# every dependency is in the `test` extra: a missing one must fail the run, not skip the proof
import fastapi
import httpx
import pytest
from sqlalchemy import create_engine, event

from app import lifecycle_db
from app.lifecycle import FUNCTION_SCOPE, lifecycle_app
from loopsafe.engine import check_files
from symptoms import missing_greenlet
from loopsafe.model import Finding, Options, SourceFile
from loopsafe.pins import fastapi_case

pytestmark = pytest.mark.runtime

HERE = Path(__file__).resolve().parent
APP_DIR = HERE / "app"
LIFECYCLE_FILES = ("app/lifecycle.py", "app/lifecycle_db.py", "app/lifecycle_scoped.py")

FASTAPI = fastapi.__version__
CASE = fastapi_case(FASTAPI)

#: the milestones of a request whose background task got a session, in the order each
#: teardown case runs them (see loopsafe.pins.fastapi_case and LOOP205's documentation)
ORDER = {
    "late": ("open", "response sent", "task start", "task end", "closed"),
    "early": ("open", "closed", "response sent", "task start", "task end"),
    "request": ("open", "response sent", "task start", "task end", "closed"),
}
FUNCTION_SCOPE_ORDER = ("open", "closed", "response sent", "task start", "task end")
MILESTONES = set(FUNCTION_SCOPE_ORDER)
#: how LOOP205's message describes each case
MESSAGE = {
    "late": "runs the dependency's teardown only after background tasks",
    "early": "runs the dependency's teardown before the response is sent",
    "request": "keeps the request's session open for the task, which holds a pooled connection through it",
}
FUNCTION_SCOPE_MESSAGE = "`Depends(..., scope=\"function\")` closes it before the response is sent"
#: the case in which the request's session is closed before the task uses it
CLOSED_BEFORE_TASK = {"late": False, "early": True, "request": False}


# --------------------------------------------------------------------------- static verdict


@pytest.fixture(scope="module")
def findings() -> list[Finding]:
    """What loopsafe reports in the lifecycle modules, told the installed FastAPI version.

    The whole of app/ is scanned, as a project would be, so cross-module dependencies resolve.
    """
    files = [
        SourceFile(f"app/{p.name}", p.read_text(encoding="utf-8"), str(p))
        for p in sorted(APP_DIR.glob("*.py"))
    ]
    report = check_files(files, Options(select=("LOOP2", "LOOP3"), fastapi_version=FASTAPI), root=str(HERE), jobs=1)
    assert report.parse_errors == ()
    return [f for f in report.findings if f.path in LIFECYCLE_FILES]


def _factory_lines() -> dict[str, int]:
    """Line of each `X = async_sessionmaker(...)` in lifecycle_db.py, by the name it binds."""
    tree = ast.parse((APP_DIR / "lifecycle_db.py").read_text(encoding="utf-8"))
    return {
        node.targets[0].id: node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
        and getattr(node.value.func, "id", "") == "async_sessionmaker"
    }


def _where(finding: Finding) -> str:
    """The endpoint a finding is in, or for LOOP302 the factory it flags."""
    if finding.code == "LOOP302":
        names = [name for name, line in _factory_lines().items() if line == finding.line]
        return names[0] if names else f"line {finding.line}"
    return finding.function


def _verdict(findings: list[Finding], code: str, where: str) -> list[Finding]:
    return [f for f in findings if f.code == code and _where(f) == where]


def test_static_findings_are_exactly_the_positives(findings: list[Finding]) -> None:
    """Nothing else in the lifecycle modules is reported: every twin is silent for every
    LOOP2/LOOP3 rule, not only for the one it pairs with."""
    assert sorted((f.code, _where(f)) for f in findings) == [
        ("LOOP205", "task_with_function_scoped_session"),
        ("LOOP205", "task_with_request_session"),
        ("LOOP301", "create_note_unawaited"),
        ("LOOP302", "ExpiringSession"),
        ("LOOP305", "create_note_await_add"),
    ]


# --------------------------------------------------------------------------- runtime


@pytest.fixture
def notes_db(tmp_path: Path) -> str:
    """A fresh SQLite file with the `note` table; the lifecycle app points at it."""
    path = str(tmp_path / "notes.db")
    engine = create_engine(f"sqlite:///{path}")
    lifecycle_db.Base.metadata.create_all(engine)
    engine.dispose()
    lifecycle_db.configure(path)
    return path


def _notes(path: str) -> list[str]:
    """What is really in the file, read through a connection of its own."""
    conn = sqlite3.connect(path)
    try:
        return [text for (text,) in conn.execute("SELECT text FROM note ORDER BY id")]
    finally:
        conn.close()


def _noting_response_sent(asgi_app):
    async def app(scope, receive, send):
        async def send_and_note(message):
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                lifecycle_db.events.append("response sent")

        await asgi_app(scope, receive, send_and_note)

    return app


async def _post(url: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=_noting_response_sent(lifecycle_app))
    async with httpx.AsyncClient(transport=transport, base_url="http://t", timeout=30) as client:
        return await client.post(url)


def _serve(work):
    """Run `work()` on a fresh loop, then close on that same loop whatever the app left open
    (aiosqlite connections belong to the loop that opened them)."""
    async def main():
        try:
            return await work()
        finally:
            for session in lifecycle_db.seen.values():
                await session.close()
            await lifecycle_db.engine.dispose()

    return asyncio.run(main())


def test_loop302_reading_after_commit_raises_missing_greenlet(
    notes_db: str, findings: list[Finding], verdict_table: dict
) -> None:
    factories = _factory_lines()
    assert set(factories) == {"ExpiringSession", "KeepingSession"}
    assert _verdict(findings, "LOOP302", "ExpiringSession")
    assert not _verdict(findings, "LOOP302", "KeepingSession")

    raised_as, stray = missing_greenlet(lambda: _serve(lambda: _post("/notes/expiring")))
    # the write landed: what fails is reading the object back
    assert _notes(notes_db) == ["expiring"]
    verdict_table[("LOOP302", "async_sessionmaker(engine)")] = (
        "LOOP302", f"{raised_as} reading note.id after the commit (the row is committed)"
        + "".join(f"; then at GC: {m}" for m in stray))

    response = _serve(lambda: _post("/notes/keeping"))
    assert response.status_code == 200, response.text
    assert response.json() == {"id": 2, "text": "keeping"}
    assert _notes(notes_db) == ["expiring", "keeping"]
    verdict_table[("LOOP302", "async_sessionmaker(engine, expire_on_commit=False)")] = (
        "silent", f"{response.status_code} {response.json()}")


def _never_awaited(url: str) -> tuple[httpx.Response, list[str]]:
    """The response, and the "never awaited" warnings raised while serving it."""
    gc.collect()  # coroutines dropped before, by other code, must not be counted here
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        response = _serve(lambda: _post(url))
        gc.collect()  # CPython warns when the dropped coroutine is freed, at once; others at collection
    return response, [str(w.message) for w in caught
                      if issubclass(w.category, RuntimeWarning) and "was never awaited" in str(w.message)]


def test_loop301_unawaited_commit_loses_the_row(notes_db: str, findings: list[Finding], verdict_table: dict) -> None:
    assert _verdict(findings, "LOOP301", "create_note_unawaited")
    assert not _verdict(findings, "LOOP301", "create_note_awaited")

    response, warned = _never_awaited("/notes/unawaited")
    assert response.status_code == 200 and response.json() == {"saved": True}  # the client is told it worked
    assert _notes(notes_db) == []
    assert len(warned) == 1 and re.fullmatch(r"coroutine '(AsyncSession\.)?commit' was never awaited", warned[0]), warned
    verdict_table[("LOOP301", "session.commit()")] = (
        "LOOP301", f"{response.status_code} {{'saved': True}}, 0 rows in the file; RuntimeWarning: {warned[0]}")

    response, warned = _never_awaited("/notes/awaited")
    assert response.status_code == 200 and response.json() == {"saved": True}
    assert _notes(notes_db) == ["awaited"]
    assert warned == []
    verdict_table[("LOOP301", "await session.commit()")] = (
        "silent", f"{response.status_code}, 1 row in the file, no warning")


def test_loop305_awaiting_a_plain_method_raises_type_error(
    notes_db: str, findings: list[Finding], verdict_table: dict
) -> None:
    assert _verdict(findings, "LOOP305", "create_note_await_add")
    assert not _verdict(findings, "LOOP305", "create_note_add")

    with pytest.raises(TypeError) as raised:
        _serve(lambda: _post("/notes/await-add"))
    assert str(raised.value) == "object NoneType can't be used in 'await' expression"
    assert _notes(notes_db) == []  # the commit after it never ran
    verdict_table[("LOOP305", "await session.add(note)")] = ("LOOP305", f"TypeError: {raised.value}; 0 rows")

    response = _serve(lambda: _post("/notes/add"))
    assert response.status_code == 200 and _notes(notes_db) == ["add"]
    verdict_table[("LOOP305", "session.add(note)")] = ("silent", f"{response.status_code}, 1 row in the file")


def _drive_task(url: str) -> dict:
    """Serve `url`, whose endpoint schedules a background task, and observe the lifecycle."""
    trace = lifecycle_db.events

    def checked_out(dbapi_connection, connection_record, connection_proxy) -> None:
        trace.append("connection out")

    def checked_in(dbapi_connection, connection_record) -> None:
        trace.append("connection in")

    async def work() -> dict:
        event.listen(lifecycle_db.engine.sync_engine, "checkout", checked_out)
        event.listen(lifecycle_db.engine.sync_engine, "checkin", checked_in)
        response = await _post(url)
        # ASGITransport returns once the app has finished, task and teardown included; the
        # wait only keeps a transport that returns at the last body byte from racing them
        deadline = time.monotonic() + 10
        while sum(e in MILESTONES for e in trace) < len(MILESTONES) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        task_session = lifecycle_db.seen.get("task")
        return {
            "status": response.status_code,
            "order": tuple(e for e in trace if e in MILESTONES),
            "trace": tuple(trace),
            "task used the request's session": task_session is lifecycle_db.seen["request"],
            "held when the task ended": _held_at(trace, "task end"),
            "task's session left in a transaction": task_session is not None and task_session.in_transaction(),
            "left checked out": lifecycle_db.engine.pool.checkedout(),
        }

    return _serve(work)


def _held_at(trace: list[str], milestone: str) -> int:
    """Pool connections checked out when `milestone` happened."""
    held = 0
    for entry in trace:
        if entry == milestone:
            return held
        held += {"connection out": 1, "connection in": -1}.get(entry, 0)
    raise AssertionError(f"{milestone!r} never happened: {trace}")


def _symptom(seen: dict) -> str:
    return (f"{' > '.join(seen['order'])}; connections held at task end: {seen['held when the task ended']}, "
            f"left checked out: {seen['left checked out']}")


def _assert_task_outcome(seen: dict, order: tuple, closed_before_task: bool, own_session: bool) -> None:
    detail = f"trace: {seen['trace']}"
    assert seen["status"] == 200, detail
    assert seen["order"] == order, detail
    assert seen["task used the request's session"] is not own_session, detail
    if own_session:
        # the task's own session gave its connection back when it ended
        assert seen["held when the task ended"] == 0, detail
        assert not seen["task's session left in a transaction"], detail
        assert seen["left checked out"] == 0, detail
        return
    # the task began a transaction on the request's session: its connection is still out
    assert seen["held when the task ended"] == 1, detail
    # closed first, the session was silently reopened by the task and nobody closes it again;
    # closed after the task, the teardown gives the connection back
    assert seen["task's session left in a transaction"] is closed_before_task, detail
    assert seen["left checked out"] == (1 if closed_before_task else 0), detail


def test_loop205_request_session_in_background_task(
    notes_db: str, findings: list[Finding], verdict_table: dict
) -> None:
    assert CASE in ORDER, f"loopsafe.pins.fastapi_case({FASTAPI!r}) = {CASE!r}"
    [finding] = _verdict(findings, "LOOP205", "task_with_request_session")
    assert f"FastAPI {FASTAPI}" in finding.message and MESSAGE[CASE] in finding.message, finding.message
    assert not _verdict(findings, "LOOP205", "task_with_own_session")

    seen = _drive_task("/notes/task-with-request-session")
    verdict_table[("LOOP205", f"request's session to add_task (FastAPI {FASTAPI}: {CASE})")] = (
        "LOOP205", _symptom(seen))
    _assert_task_outcome(seen, ORDER[CASE], CLOSED_BEFORE_TASK[CASE], own_session=False)

    lifecycle_db.configure(notes_db)
    seen = _drive_task("/notes/task-with-own-session")
    verdict_table[("LOOP205", "the task opens its own session")] = ("silent", _symptom(seen))
    _assert_task_outcome(seen, ORDER[CASE], CLOSED_BEFORE_TASK[CASE], own_session=True)
    assert _notes(notes_db) == ["task", "task"]


def test_loop205_function_scoped_session_in_background_task(
    notes_db: str, findings: list[Finding], verdict_table: dict
) -> None:
    [finding] = _verdict(findings, "LOOP205", "task_with_function_scoped_session")
    assert FUNCTION_SCOPE_MESSAGE in finding.message, finding.message
    assert not _verdict(findings, "LOOP205", "task_with_function_scoped_own_session")
    if not FUNCTION_SCOPE:
        pytest.skip(f"FastAPI {FASTAPI} has no Depends(..., scope=...) (added in 0.121)")

    seen = _drive_task("/notes/task-with-function-scoped-session")
    verdict_table[("LOOP205", 'Depends(scope="function") session to add_task')] = ("LOOP205", _symptom(seen))
    _assert_task_outcome(seen, FUNCTION_SCOPE_ORDER, closed_before_task=True, own_session=False)

    lifecycle_db.configure(notes_db)
    seen = _drive_task("/notes/task-with-function-scoped-own-session")
    verdict_table[("LOOP205", 'Depends(scope="function"), task opens its own session')] = ("silent", _symptom(seen))
    _assert_task_outcome(seen, FUNCTION_SCOPE_ORDER, closed_before_task=True, own_session=True)
