"""The flake8 plugin (loopsafe.flake8_plugin), run through a real flake8, against the CLI."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

Location = tuple[str, int, int, str]  # (path, line, column, code)

API = """\
from fastapi import Depends, FastAPI
from sqlalchemy.orm import Session

from app import crud
from app.db import get_db
from app.models import User
from app.services.users import UserService

app = FastAPI()


@app.get("/users/{user_id}")
async def read_user(user_id: int, db: Session = Depends(get_db)):
    return db.query(User).all()


@app.get("/users")
async def list_users(db: Session = Depends(get_db)):
    return crud.get_users(db)


@app.get("/service")
async def via_service(db: Session = Depends(get_db)):
    service = UserService(db)
    await something()
    return service.names()


@app.get("/quiet")
async def quiet(db: Session = Depends(get_db)):
    await something()
    a = db.query(User).all()  # noqa: LOOP101
    b = crud.get_users(db)  # noqa
    c = db.query(User).count()  # noqa: LOOP103 (wrong code: still reported)
    rows = db.execute(\"\"\"
        SELECT 1
    \"\"\")  # noqa: LOOP1
    other = db.query(User) \\
        .first()  # NOQA:LOOP101
    return a, b, c, rows, other


async def something():
    pass
"""

CRUD = """\
from sqlalchemy.orm import Session

from app.models import User


def get_users(db: Session):
    return db.query(User).all()
"""

SERVICE = """\
from sqlalchemy.orm import Session

from app import crud


class UserService:
    def __init__(self, db: Session) -> None:
        self.db = db

    def names(self):
        return [user.name for user in crud.get_users(self.db)]
"""

FILES = {
    "pyproject.toml": '[project]\nname = "shop"\nversion = "0"\n',
    "app/__init__.py": "",
    "app/api.py": API,
    "app/crud.py": CRUD,
    "app/db.py": "def get_db():\n    yield None\n",
    "app/models.py": "class User:\n    name = ''\n",
    "app/services/__init__.py": "",
    "app/services/users.py": SERVICE,
}

FLAKE8_FORMAT = "%(path)s:%(row)d:%(col)d: %(code)s"
_FLAKE8_LINE = re.compile(r"^(?:\./)?(?P<path>.+?):(?P<line>\d+):(?P<col>\d+): (?P<code>\S+)$")


def write(root: Path, files: dict[str, str]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path, FILES)
    return tmp_path


def flake8(root: Path, *args: str, input: str | None = None) -> set[Location]:
    proc = subprocess.run(
        [sys.executable, "-m", "flake8", "--isolated", "--select", "LOO", "--format", FLAKE8_FORMAT, *args],
        cwd=root, input=input, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode in (0, 1), proc.stderr
    assert "loopsafe: internal error" not in proc.stderr, proc.stderr
    found = set()
    for line in proc.stdout.splitlines():
        match = _FLAKE8_LINE.match(line)
        assert match, f"unexpected flake8 output line: {line!r}"
        found.add((match["path"], int(match["line"]), int(match["col"]), match["code"]))
    return found


def cli(root: Path, *args: str, input: str | None = None) -> tuple[set[Location], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "loopsafe.cli", "check", "--output-format", "json", *args],
        cwd=root, input=input, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode in (0, 1), proc.stderr
    found = {(item["path"], item["line"], item["column"], item["code"]) for item in json.loads(proc.stdout)}
    return found, proc.stderr


def without_columns(found: set[Location]) -> set[tuple[str, int, str]]:
    return {(path, line, code) for path, line, _, code in found}


def line_of(needle: str, text: str = API) -> int:
    [number] = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return number


# --------------------------------------------------------------------------- parity


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_flake8_and_the_cli_report_the_same_findings(project: Path, jobs: str) -> None:
    expected, _ = cli(project)
    got = flake8(project, "-j", jobs, ".")
    assert without_columns(got) == without_columns(expected)
    assert got == expected  # columns agree too
    # the comparison is about something: cross-module findings, in several files' worth of project
    codes = {code for _, _, _, code in expected}
    assert {"LOOP101", "LOOP103", "LOOP105"} <= codes
    assert ("app/api.py", line_of("return service.names()"), "LOOP103") in without_columns(got)
    assert ("app/api.py", line_of("return crud.get_users(db)"), "LOOP103") in without_columns(got)


def test_extend_select_runs_loopsafe_beside_the_default_checks(project: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "flake8", "--isolated", "--extend-select", "LOO", "--format", FLAKE8_FORMAT, "app/"],
        cwd=project, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    loop = {line for line in proc.stdout.splitlines() if " LOOP" in line}
    expected = {f"{path}:{line}:{col}: {code}" for path, line, col, code in cli(project, "app/")[0]}
    assert loop == expected


def test_noqa_comments_are_honoured_alike(project: Path) -> None:
    quiet_lines = {
        line_of("a = db.query(User).all()"),
        line_of("b = crud.get_users(db)"),
        line_of("rows = db.execute("),
        line_of("other = db.query(User)"),
    }
    reported = without_columns(flake8(project, "."))
    assert not {line for _, line, _ in reported} & quiet_lines
    assert ("app/api.py", line_of("c = db.query(User).count()"), "LOOP101") in reported  # wrong code in the noqa
    # without the comments, every one of those lines is reported, by both
    bare = re.sub(r"  # (noqa|NOQA).*", "", API)
    write(project, {"app/api.py": bare})
    unsuppressed = without_columns(flake8(project, "."))
    assert quiet_lines <= {line for _, line, _ in unsuppressed}
    assert unsuppressed == without_columns(cli(project)[0])


def test_a_single_file_gets_cross_module_findings(project: Path) -> None:
    expected = {item for item in cli(project)[0] if item[0] == "app/api.py"}
    assert flake8(project, "app/api.py") == expected


def test_stdin(project: Path) -> None:
    expected = {item for item in cli(project)[0] if item[0] == "app/api.py"}
    got = flake8(project, "--stdin-display-name", "app/api.py", "-", input=API)
    assert got == expected
    # what is checked is the text on stdin (an unsaved editor buffer), not the file on disk
    edited = API.replace("    return db.query(User).all()\n", "    db.commit()\n    return db.query(User).all()\n")
    got = flake8(project, "--stdin-display-name", "app/api.py", "-", input=edited)
    assert ("app/api.py", line_of("db.commit()", edited), 5, "LOOP101") in got
    assert ("app/api.py", line_of("return crud.get_users(db)", edited), 12, "LOOP103") in got


def test_letters_only_noqa_is_where_the_cli_and_flake8_differ(project: Path) -> None:
    """flake8 reads `# noqa: LOOP` as a bare `# noqa`; loopsafe warns and reports the finding."""
    line = line_of("async def read_user")
    write(project, {"app/api.py": API.replace("Depends(get_db)):\n    return db.query", "Depends(get_db)):  # noqa: LOOP\n    return db.query", 1)})
    assert ("app/api.py", line, "LOOP105") not in without_columns(flake8(project, "."))
    found, stderr = cli(project)
    assert ("app/api.py", line, "LOOP105") in without_columns(found)
    assert f"app/api.py:{line}: invalid `# noqa` directive" in stderr


def test_per_file_ignores_are_honoured_alike(project: Path) -> None:
    write(project, {"pyproject.toml": FILES["pyproject.toml"]
                    + '\n[tool.loopsafe.per-file-ignores]\n"app/api.py" = ["LOOP105"]\n'})
    expected, _ = cli(project)
    assert "LOOP105" not in {code for *_, code in expected}
    assert flake8(project, ".") == expected


# --------------------------------------------------------------------------- import cost


def imported_modules(module: str) -> set[str]:
    """Top-level names of every module importing *module* loads, from ``python -X importtime``."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True, text=True, timeout=60, check=True,
    )
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "package":  # the header line
                names.add(name)
    return names


def test_importing_the_plugin_is_cheap() -> None:
    loaded = imported_modules("loopsafe.flake8_plugin")
    assert "loopsafe.flake8_plugin" in loaded  # the measurement sees the import itself
    heavy = {name for name in loaded if name.split(".")[0] in {"libcst", "click", "rich"}}
    assert heavy == set()
    # and it would see them if they were imported
    assert "click" in imported_modules("loopsafe.cli")


def test_flake8_jobs_share_the_cli_cache_and_a_second_run_parses_nothing(project: Path) -> None:
    first = flake8(project, "-j", "2")
    entries = sorted((project / ".loopsafe_cache").rglob("*.pickle"))
    summaries = [p for p in entries if p.parent.parent.name == "ir"]
    assert len(summaries) == len(list(project.rglob("*.py")))  # one summary per project file
    stamps = {p: p.stat().st_mtime_ns for p in summaries}
    assert flake8(project, "-j", "1") == first
    assert {p: p.stat().st_mtime_ns for p in summaries} == stamps  # read, never rewritten: not parsed again
    cli_found, _ = cli(project)
    assert without_columns(cli_found) == without_columns(first)


def test_the_project_is_analysed_once_before_flake8_starts_its_jobs(project: Path, monkeypatch) -> None:
    """flake8 hands its options (with the paths it checks) to the plugin in its main process:
    the project is analysed there, and the files of the forked jobs only look findings up."""
    import argparse
    import os

    from loopsafe import engine, flake8_plugin

    monkeypatch.chdir(project)
    monkeypatch.setattr(flake8_plugin, "_PROJECTS", {})
    calls = []
    real = engine.check_files
    monkeypatch.setattr(engine, "check_files", lambda *a, **k: calls.append(k.get("jobs")) or real(*a, **k))
    options = argparse.Namespace(loopsafe_config=None, filenames=["."])
    flake8_plugin.Plugin.parse_options(None, options, ["."])  # flake8's three-argument form
    assert calls == [None]  # once, on every core
    text = (project / "app" / "api.py").read_text()
    found = list(flake8_plugin.Plugin(None, os.path.join("app", "api.py"), text.splitlines(True)).run())
    assert calls == [None]  # a lookup
    assert {(line, message.split()[0]) for line, _col, message, _type in found} == \
        {(line, code) for path, line, _col, code in flake8(project, "-j", "1", "--disable-noqa") if path.endswith("api.py")}

    monkeypatch.setattr(flake8_plugin, "_PROJECTS", {})
    for names in (["-"], ["missing.py"]):  # stdin, a path that is not there: nothing to prepare
        flake8_plugin.Plugin.parse_options(argparse.Namespace(loopsafe_config=None, filenames=names))
    assert calls == [None] and flake8_plugin._PROJECTS == {}
