"""Session-lifecycle analysis (loopsafe.lifecycle) beyond what fixtures can say: the messages of
LOOP205 per FastAPI version, reading FastAPI pins, and the ownership questions rules rely on.

Fixtures (fixtures/loop20N/, fixtures/projects/lifecycle_shop) check where LOOP2xx findings are;
these tests check what they say.
"""
from __future__ import annotations

import textwrap

import pytest

from loopsafe import engine, lifecycle
from loopsafe.model import Options, SourceFile

BACKGROUND = textwrap.dedent('''
    from fastapi import BackgroundTasks, Depends, FastAPI, Request
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session, sessionmaker

    engine = create_engine("postgresql://app@db/app")
    SessionLocal = sessionmaker(bind=engine)
    app = FastAPI()


    def get_db():
        with SessionLocal() as db:
            yield db


    def work(db: Session) -> None:
        db.commit()


    @app.post("/a")
    def a(tasks: BackgroundTasks, db: Session = Depends(get_db)):
        tasks.add_task(work, db)


    @app.post("/b")
    def b(tasks: BackgroundTasks, db: Session = Depends(get_db, scope="function")):
        tasks.add_task(work, db)
''')


def _messages(text: str, version: str = "", select: tuple = ("LOOP2",)) -> dict[int, list[str]]:
    options = Options(select=select)
    parsed, errors = engine.parse_files([SourceFile("app.py", text)], options, root=".")
    assert not errors
    model = engine.build_model(parsed, options)
    model.fastapi_version = version
    out: dict[int, list[str]] = {}
    for f in engine.run_rules(parsed, model, options):
        out.setdefault(f.line, []).append(f"{f.code} {f.message}")
    return out


def _line_of(text: str, needle: str, nth: int = 1) -> int:
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[nth - 1]


@pytest.mark.parametrize(
    "version, expected",
    [
        ("", "depending on the FastAPI version"),
        ("0.110.0", "FastAPI 0.110.0 runs the dependency's teardown before the response"),
        ("0.106.0", "FastAPI 0.106.0 runs the dependency's teardown before the response"),
        ("0.117.1", "FastAPI 0.117.1 runs the dependency's teardown before the response"),
        ("0.118.0", "FastAPI 0.118.0 keeps the request's session"),
        ("0.165.0", "FastAPI 0.165.0 keeps the request's session"),
        ("0.105.0", "FastAPI 0.105.0 keeps the request's session"),
    ],
)
def test_background_task_message_follows_the_pinned_version(version, expected):
    got = _messages(BACKGROUND, version)
    line = _line_of(BACKGROUND, "tasks.add_task(work, db)", 1)
    assert len(got[line]) == 1 and got[line][0].startswith("LOOP205 "), got
    assert expected in got[line][0]


@pytest.mark.parametrize("version", ["", "0.110.0", "0.121.0"])
def test_function_scoped_dependency_is_closed_before_the_task_in_any_version(version):
    got = _messages(BACKGROUND, version)
    line = _line_of(BACKGROUND, "tasks.add_task(work, db)", 2)
    assert 'scope="function"' in got[line][0] and "closed session" in got[line][0]


@pytest.mark.parametrize(
    "spec, pinned",
    [
        ("==0.115.4", "0.115.4"),
        ("===0.115.4", "0.115.4"),
        ("~=0.115.2", "0.115.2"),
        ("~=0.115", ""),  # >=0.115, <1.0 spans several behaviours
        ("^0.110.0", "0.110.0"),  # Poetry: >=0.110.0, <0.111.0
        ("~0.110", "0.110"),
        ("0.118.1", "0.118.1"),  # Poetry: an exact version
        (">=0.100", ""),
        (">=0.100,<0.110", ""),
        ("", ""),
        ("*", ""),
    ],
)
def test_pinned_version(spec, pinned):
    assert lifecycle.pinned_version(spec) == pinned


def test_read_fastapi_pin_from_requirements(tmp_path):
    (tmp_path / "requirements.txt").write_text(
        "fastapi-users==12.0\nfastapi[standard]==0.115.4 ; python_version >= '3.9'\nsqlalchemy>=2\n")
    assert lifecycle.read_fastapi_pin(str(tmp_path)) == "0.115.4"


def test_read_fastapi_pin_from_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["fastapi==0.118.0", "fastapi_utils>=0.2"]\n')
    assert lifecycle.read_fastapi_pin(str(tmp_path)) == "0.118.0"


def test_read_fastapi_pin_from_poetry_and_setup_cfg(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.poetry.dependencies]\npython = "^3.11"\nfastapi = {version = "^0.110.0", extras = ["all"]}\n')
    assert lifecycle.read_fastapi_pin(str(tmp_path)) == "0.110.0"
    other = tmp_path / "other"
    other.mkdir()
    (other / "setup.cfg").write_text("[options]\ninstall_requires =\n    fastapi==0.112.2\n    uvicorn\n")
    assert lifecycle.read_fastapi_pin(str(other)) == "0.112.2"


def test_conflicting_or_open_pins_are_unknown(tmp_path):
    (tmp_path / "requirements.txt").write_text("fastapi==0.110.0\n")
    (tmp_path / "requirements-dev.txt").write_text("fastapi==0.120.0\n")
    assert lifecycle.read_fastapi_pin(str(tmp_path)) == ""
    (tmp_path / "requirements-dev.txt").write_text("fastapi>=0.100\n")
    assert lifecycle.read_fastapi_pin(str(tmp_path)) == "0.110.0"
    assert lifecycle.read_fastapi_pin(str(tmp_path / "missing")) == ""


@pytest.mark.parametrize(
    "version, case",
    [("0.105.1", "late"), ("0.106.0", "early"), ("0.117.1", "early"), ("0.118.0", "request"),
     ("0.165", "request"), ("", ""), ("garbage", "")],
)
def test_fastapi_case(version, case):
    assert lifecycle.fastapi_case(version) == case


def test_model_takes_the_version_from_options_when_present():
    from loopsafe.semantic import ProjectModel

    class WithVersion:
        session_factories = sync_session_types = async_session_types = blocking_calls = offload_wrappers = ()
        fastapi_version = "0.115.0"

    assert ProjectModel([], WithVersion()).fastapi_version == "0.115.0"  # type: ignore[arg-type]
    assert ProjectModel([]).fastapi_version == ""


def test_not_closed_message_names_the_close_line():
    text = textwrap.dedent('''
        import sqlite3


        def export(path):
            conn = sqlite3.connect(path)
            rows = conn.execute("SELECT 1").fetchall()
            conn.close()
            return rows
    ''')
    got = _messages(text)
    line = _line_of(text, "sqlite3.connect(path)")
    assert "`close()` (line 8) is not in a `finally`" in got[line][0]
