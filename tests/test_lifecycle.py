"""Session-lifecycle analysis (loopsafe.lifecycle) beyond what fixtures can say: the messages of
LOOP205 per FastAPI version, reading FastAPI pins, and the ownership questions rules rely on.

Fixtures (fixtures/loop20N/, fixtures/projects/lifecycle_shop) check where LOOP2xx findings are;
these tests check what they say.
"""
from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from loopsafe import cli, engine, pins
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
        ("0.105.0", "FastAPI 0.105.0 runs the dependency's teardown only after background tasks: the session "
                    "still works in the task, but the request holds it"),
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
    assert pins.pinned_version(spec) == pinned


def test_read_fastapi_pin_from_requirements(tmp_path):
    (tmp_path / "requirements.txt").write_text(
        "fastapi-users==12.0\nfastapi[standard]==0.115.4 ; python_version >= '3.9'\nsqlalchemy>=2\n")
    assert pins.read_fastapi_pin(str(tmp_path)) == "0.115.4"


def test_read_fastapi_pin_from_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["fastapi==0.118.0", "fastapi_utils>=0.2"]\n')
    assert pins.read_fastapi_pin(str(tmp_path)) == "0.118.0"


def test_read_fastapi_pin_from_poetry_and_setup_cfg(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.poetry.dependencies]\npython = "^3.11"\nfastapi = {version = "^0.110.0", extras = ["all"]}\n')
    assert pins.read_fastapi_pin(str(tmp_path)) == "0.110.0"
    other = tmp_path / "other"
    other.mkdir()
    (other / "setup.cfg").write_text("[options]\ninstall_requires =\n    fastapi==0.112.2\n    uvicorn\n")
    assert pins.read_fastapi_pin(str(other)) == "0.112.2"


def test_conflicting_or_open_pins_are_unknown(tmp_path):
    (tmp_path / "requirements.txt").write_text("fastapi==0.110.0\n")
    (tmp_path / "requirements-dev.txt").write_text("fastapi==0.120.0\n")
    assert pins.read_fastapi_pin(str(tmp_path)) == ""
    (tmp_path / "requirements-dev.txt").write_text("fastapi>=0.100\n")
    assert pins.read_fastapi_pin(str(tmp_path)) == "0.110.0"
    assert pins.read_fastapi_pin(str(tmp_path / "missing")) == ""


@pytest.mark.parametrize(
    "version, case",
    [("0.105.1", "late"), ("0.106.0", "early"), ("0.106", "early"), ("0.117.1", "early"), ("0.117.99", "early"),
     ("0.118.0", "request"), ("0.121.0", "request"), ("0.165", "request"), ("1.0", "request"), ("", ""),
     ("garbage", "")],
)
def test_fastapi_case(version, case):
    assert pins.fastapi_case(version) == case


def test_model_takes_the_version_from_options():
    from loopsafe.semantic import ProjectModel

    assert ProjectModel([], Options(fastapi_version="0.115.0")).fastapi_version == "0.115.0"
    assert ProjectModel([]).fastapi_version == ""


PINNED = Path(__file__).resolve().parent.parent / "fixtures" / "projects" / "pinned_fastapi"


def _cli_messages(path: Path) -> list[str]:
    result = CliRunner().invoke(cli.main, ["check", str(path), "--select", "LOOP205", "--no-cache",
                                           "--output-format", "json"], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    return [f["message"] for f in json.loads(result.stdout)]


def test_pinned_project_fixture_names_its_fastapi_version():
    # the fixture pins fastapi[standard]==0.112.2 in its pyproject.toml: teardown before the response
    messages = _cli_messages(PINNED)
    assert len(messages) == 2
    for message in messages:
        assert "FastAPI 0.112.2 runs the dependency's teardown before the response is sent" in message


@pytest.mark.parametrize(
    "config, expected",
    [
        ('[tool.loopsafe]\nfastapi-version = "0.118.0"\n', "FastAPI 0.118.0 keeps the request's session"),
        ('[tool.loopsafe]\nfastapi-version = "0.100.1"\n', "FastAPI 0.100.1 runs the dependency's teardown only "
                                                           "after background tasks"),
        # a range pins no behaviour: the message stays version-neutral
        ('[project]\nname = "orders"\ndependencies = ["fastapi>=0.100"]\n', "depending on the FastAPI version"),
    ],
)
def test_configured_version_wins_over_the_pin(tmp_path, config, expected):
    project = tmp_path / "pinned_fastapi"
    shutil.copytree(PINNED, project)
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n" + config if config.startswith("[tool") else config)
    messages = _cli_messages(project)
    assert len(messages) == 2
    assert all(expected in m for m in messages), messages


def test_cached_results_are_not_reused_for_another_fastapi_version(tmp_path):
    files = [SourceFile("app.py", BACKGROUND, str(tmp_path / "app.py"))]
    cache = tmp_path / "cache"

    def message(version: str) -> str:
        report = engine.check_files(files, Options(select=("LOOP205",), fastapi_version=version), str(tmp_path),
                                    cache_dir=cache)
        return report.findings[0].message

    assert "FastAPI 0.110.0 runs the dependency's teardown before" in message("0.110.0")
    assert "FastAPI 0.120.0 keeps the request's session" in message("0.120.0")
    assert "FastAPI 0.110.0" in message("0.110.0")


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
