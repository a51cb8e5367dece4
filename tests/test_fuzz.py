"""Property-based fuzzing: whatever Python the engine is given, it returns a Report.

Three generators:

* ``hypothesmith.from_grammar()``: text from Python's grammar (valid or not for LibCST);
* ``hypothesmith.from_node()``: modules built from LibCST nodes (always valid);
* ``projects()``: small multi-module FastAPI/DB projects built here, which the two above
  almost never produce: sessions, cross-module helpers, recursion, awaits, offloads,
  decorators, nested functions. They drive the semantic model, not just the parser.

Properties: ``check_files`` never raises and returns a ``Report``; each file is either
analysed or reported once as a parse error; finding positions lie inside their file.
Each example must also finish within ``EXAMPLE_SECONDS`` (an engine that hangs on a tiny
input is a bug too).

The runs are bounded (``max_examples``, no deadline) and derandomized, so CI explores the
same examples every time; set ``LOOPSAFE_FUZZ_EXAMPLES=N`` to explore N random ones locally.
Hypothesis's example database is off: nothing is written to the working tree.
"""
from __future__ import annotations

import os
import signal
import sys
import textwrap
from contextlib import contextmanager

import hypothesis.strategies as st
import hypothesmith
import pytest
from hypothesis import HealthCheck, given, settings

from loopsafe.engine import check_files
from loopsafe.model import Options, Report, SourceFile

EXAMPLE_SECONDS = 30
# hypothesmith compiles what it generates; its SyntaxWarnings ("<string>:1") are not ours
pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning")
_EXPLORE = int(os.environ.get("LOOPSAFE_FUZZ_EXAMPLES", "0"))


def fuzz_settings(max_examples: int):
    return settings(
        max_examples=_EXPLORE or max_examples,
        deadline=None,
        derandomize=not _EXPLORE,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        print_blob=True,
    )


class EngineTooSlow(Exception):
    pass


@contextmanager
def time_limit(seconds: int):
    """Fail an example that runs longer than `seconds` (SIGALRM; main thread on Unix only)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def expire(signum, frame):
        raise EngineTooSlow(f"check_files took more than {seconds} s on this example")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def check(files: list[SourceFile], root: str = ".") -> Report:
    """Run the engine and assert the invariants every report must satisfy."""
    with time_limit(EXAMPLE_SECONDS):
        report = check_files(files, Options(select=("LOOP",)), root=root, jobs=1)
    assert isinstance(report, Report)
    assert report.files_checked == len(files)
    texts = {f.path: f.text for f in files}
    errored = [e.path for e in report.parse_errors]
    assert len(errored) == len(set(errored)), "a file reported as unparsable twice"
    assert set(errored) <= set(texts)
    for finding in report.findings:
        assert finding.path in texts and finding.path not in errored
        lines = texts[finding.path].splitlines() or [""]
        assert 1 <= finding.line <= finding.end_line <= len(lines) + 1, finding
        assert finding.column >= 1 and finding.end_column >= 1, finding
        assert finding.code.startswith("LOOP") and finding.message
    return report


# --------------------------------------------------------------------------- hypothesmith


@fuzz_settings(200)
@given(hypothesmith.from_grammar())
def test_grammar_generated_code_never_crashes_the_engine(source: str) -> None:
    check([SourceFile("mod.py", source)])


@fuzz_settings(100)
@given(hypothesmith.from_node())
def test_node_generated_code_never_crashes_the_engine(source: str) -> None:
    check([SourceFile("mod.py", source)])


ASYNC_FRAME = """\
import sqlite3
from fastapi import Depends, FastAPI
from sqlalchemy.orm import Session

app = FastAPI()


@app.get("/")
async def endpoint(db: Session = Depends(Session)):
    conn = sqlite3.connect("x.db")
{body}
"""


@fuzz_settings(150)
@given(hypothesmith.from_grammar(auto_target=False))
def test_generated_code_inside_an_async_endpoint_never_crashes_the_engine(source: str) -> None:
    """The same text as the body of an async endpoint with a session in scope, so that the
    rules look at it (it may stop being valid Python: then it must be a parse error)."""
    body = textwrap.indent(source or "pass", "    ") if source.strip() else "    pass"
    check([SourceFile("api.py", ASYNC_FRAME.format(body=body))])


# --------------------------------------------------------------------------- projects

MODULES = ("m0", "m1", "m2")
HEADER = """\
import asyncio
import functools
import sqlite3

from fastapi import APIRouter, Depends, FastAPI
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from pkg import m0, m1, m2
from pkg.m0 import *

app = FastAPI()
router = APIRouter()


def get_db():
    with Session() as session:
        yield session


"""
PARAMS = ("db", "db: Session", "db: AsyncSession", "db: Session = Depends(get_db)", "db=None", "*args, db, **kw")
DECORATORS = ("", "@app.get('/x')\n", "@router.post('/y')\n", "@functools.lru_cache\n", "@staticmethod\n")


@st.composite
def statement(draw, is_async: bool, callees: list[tuple[str, bool]]) -> str:
    callee, callee_async = draw(st.sampled_from(callees)) if callees else ("print", False)
    call = f"{callee}(db)"
    options = [
        "x = db.execute(text('select 1'))",
        "rows = db.query(object).all()",
        "db.commit()",
        "conn = sqlite3.connect('x.db')\nconn.execute('select 1').fetchall()",
        "with Session() as s:\n    s.execute(text('select 1'))",
        f"return {call}",
        f"db = {call}",
        f"for _ in range(2):\n    db = {call}",
        f"def inner():\n    return {call}\ninner()",
        "f = lambda: db.commit()\nf()",
        f"try:\n    {call}\nexcept Exception:\n    raise",
        "if db:\n    pass\nelse:\n    db = None",
        f"obj = {callee}\nobj(db)",
        f"while db:\n    db = {call}\n    break",
    ]
    if is_async:
        options += [
            "await asyncio.sleep(0)",
            f"await run_in_threadpool({callee}, db)",
            f"await run_in_threadpool({call})",
            f"await asyncio.to_thread({callee}, db)",
            "async with AsyncSession() as s:\n    await s.execute(text('select 1'))",
            f"{'await ' if callee_async else ''}{call}",
            f"return await {call}" if callee_async else f"return {call}",
            "result = await db.execute(text('select 1'))\nresult.all()",
        ]
    return draw(st.sampled_from(options))


@st.composite
def projects(draw) -> list[SourceFile]:
    count = draw(st.integers(min_value=1, max_value=7))
    funcs = [(draw(st.sampled_from(MODULES)), f"f{i}", draw(st.booleans())) for i in range(count)]
    bodies: dict[str, list[str]] = {m: [] for m in MODULES}
    for module, name, is_async in funcs:
        # any function may call any other, itself included: recursion and cycles across modules
        callees = [(f"{m}.{n}" if m != module else n, a) for m, n, a in funcs]
        stmts = draw(st.lists(statement(is_async, callees), min_size=1, max_size=4))
        params = draw(st.sampled_from(PARAMS))
        decorator = draw(st.sampled_from(DECORATORS))
        head = f"{decorator}{'async ' if is_async else ''}def {name}({params}):\n"
        bodies[module].append(head + textwrap.indent("\n".join(stmts), "    ") + "\n")
        if draw(st.booleans()):  # the same code as a method, reached through self
            method = head.replace(f"def {name}(", f"def {name}(self, ").replace("@staticmethod\n", "")
            bodies[module].append(f"class C{name}:\n" + textwrap.indent(
                method + textwrap.indent("\n".join(stmts), "    ") + "\n", "    "))
    files = [SourceFile("pkg/__init__.py", "")]
    for module in MODULES:
        files.append(SourceFile(f"pkg/{module}.py", HEADER + "\n\n".join(bodies[module])))
    return files


@fuzz_settings(150)
@given(projects())
def test_generated_projects_never_crash_the_engine(files: list[SourceFile]) -> None:
    report = check(files)
    # the generator only writes valid Python
    assert report.parse_errors == (), [(e.path, e.message) for e in report.parse_errors]


def test_time_limit_interrupts() -> None:
    """The guard above works (so a hang is a failure, not a stuck CI job)."""
    if not hasattr(signal, "SIGALRM"):
        pytest.skip("no SIGALRM on this platform")
    with pytest.raises(EngineTooSlow):
        with time_limit(1):
            while True:
                sys.getrecursionlimit()
