"""The ``loopsafe`` command line (loopsafe.cli), run end to end over small temporary projects."""
from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner, Result

from loopsafe import __version__
from loopsafe.cli import main
from loopsafe.render import JSON_SCHEMA
from loopsafe.rules import ALL_RULES

API = """\
from fastapi import Depends, FastAPI
from sqlalchemy.orm import Session

from app.crud import get_users
from app.db import get_db
from app.models import User

app = FastAPI()


@app.get("/users/{user_id}")
async def read_user(user_id: int, db: Session = Depends(get_db)):
    return db.query(User).all()


@app.get("/users")
async def list_users(db: Session = Depends(get_db)):
    return get_users(db)
"""

CRUD = """\
from sqlalchemy.orm import Session

from app.models import User


def get_users(db: Session):
    return db.query(User).all()
"""

DB = """\
def get_db():
    yield None
"""

SAFE = """\
from fastapi import Depends, FastAPI
from sqlalchemy.orm import Session

from app.db import get_db
from app.models import User

app = FastAPI()


@app.get("/users")
def list_users(db: Session = Depends(get_db)):
    return db.query(User).all()
"""


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A FastAPI app with one direct blocking query and one through a helper; cwd is its root."""
    write(
        tmp_path,
        {
            "app/__init__.py": "",
            "app/api.py": API,
            "app/crud.py": CRUD,
            "app/db.py": DB,
            "app/models.py": "class User:\n    pass\n",
        },
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "LOOPSAFE_OUTPUT_FORMAT"):
        monkeypatch.delenv(name, raising=False)


def run(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, env=env, catch_exceptions=False)


def codes(result: Result) -> list[tuple[str, str]]:
    """``(path, code)`` of each finding in JSON output."""
    payload = json.loads(result.stdout)
    jsonschema.validate(payload, JSON_SCHEMA)
    return [(item["path"], item["code"]) for item in payload]


# --------------------------------------------------------------------------- check: results


def test_full_output_on_a_real_project(project: Path) -> None:
    result = run("check")
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert "app/api.py:13:12: LOOP101 " in out
    assert "13 |     return db.query(User).all()\n   |            ^^^^^^^^^^^^^^^^^^^^\n" in out
    assert "  help: " in out
    # the helper call carries its chain down to the query, and the route that reaches it
    assert "app/api.py:18:12: LOOP103 " in out
    assert "  -> app/crud.py:7 get_users -> db.query(User).all()\n" in out
    assert "  reached from GET /users\n" in out
    # the summary, then (as ruff does) the fixes only --unsafe-fixes would apply
    assert out.rstrip().endswith("in 1 file.\nNo fixes available (4 hidden fixes can be enabled with the "
                                 "`--unsafe-fixes` option).")
    assert "\x1b" not in out  # not a terminal: no colour


def test_json_output_is_valid_and_relative(project: Path) -> None:
    result = run("check", "--output-format", "json")
    assert result.exit_code == 1
    found = codes(result)
    assert ("app/api.py", "LOOP101") in found and ("app/api.py", "LOOP103") in found
    helper = next(item for item in json.loads(result.stdout) if item["code"] == "LOOP103")
    assert helper["chain"][-1] == {"path": "app/crud.py", "line": 7, "function": "get_users"}


def test_output_format_from_environment(project: Path) -> None:
    result = run("check", env={"LOOPSAFE_OUTPUT_FORMAT": "json"})
    assert codes(result)
    assert run("check", env={"LOOPSAFE_OUTPUT_FORMAT": "xml"}).exit_code == 2


def test_the_cli_offers_every_renderer_format() -> None:
    from loopsafe import cli, render

    assert cli.OUTPUT_FORMATS == render.OUTPUT_FORMATS
    help_text = " ".join(run("check", "--help").stdout.split())
    for name in render.OUTPUT_FORMATS:
        assert name in help_text


@pytest.mark.parametrize("output_format", ["full", "concise", "json", "json-lines", "sarif", "github", "gitlab"])
def test_every_output_format_reports_findings_and_sets_the_exit_code(project: Path, output_format: str) -> None:
    result = run("check", "--output-format", output_format)
    assert result.exit_code == 1, result.output
    assert "LOOP101" in result.stdout and "LOOP103" in result.stdout
    assert run("check", "--output-format", output_format, "--exit-zero").exit_code == 0
    from_env = run("check", env={"LOOPSAFE_OUTPUT_FORMAT": output_format})
    assert from_env.stdout == result.stdout


def test_concise_and_quiet(project: Path) -> None:
    result = run("check", "--output-format", "concise")
    lines = result.stdout.splitlines()
    assert "app/api.py:13:12: LOOP101" in "\n".join(lines)
    assert lines[-2].startswith("Found ")
    assert lines[-1].startswith("No fixes available (")  # all of them unsafe
    quiet = run("check", "--output-format", "concise", "--quiet")
    assert quiet.exit_code == 1
    assert quiet.stdout.splitlines() == lines[:-2]


def test_clean_project_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, {"app/__init__.py": "", "app/api.py": SAFE, "app/db.py": DB, "app/models.py": ""})
    monkeypatch.chdir(tmp_path)
    result = run("check")
    assert result.exit_code == 0, result.output
    assert result.stdout == "All checks passed.\n"
    assert run("check", "--output-format", "json").stdout == "[]\n"


def test_exit_zero(project: Path) -> None:
    result = run("check", "--exit-zero")
    assert result.exit_code == 0
    assert "LOOP101" in result.stdout


def test_explicit_paths_and_default_to_cwd(project: Path) -> None:
    assert codes(run("check", "app/crud.py", "--output-format", "json")) == []
    assert codes(run("check", "app", "--output-format", "json")) == codes(run("check", "--output-format", "json"))


def test_paths_outside_cwd_are_absolute_in_json(project: Path, tmp_path_factory, monkeypatch) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    monkeypatch.chdir(elsewhere)
    found = codes(run("check", str(project), "--output-format", "json"))
    assert (f"{project.as_posix()}/app/api.py", "LOOP101") in found


# --------------------------------------------------------------------------- check: selection


def test_select_ignore_extend_select(project: Path) -> None:
    only_101 = codes(run("check", "--select", "LOOP101", "--output-format", "json"))
    assert {code for _, code in only_101} == {"LOOP101"}
    without_101 = codes(run("check", "--ignore", "LOOP101,LOOP105", "--output-format", "json"))
    assert "LOOP101" not in {code for _, code in without_101} and without_101
    both = codes(run("check", "--select", "LOOP101", "--extend-select", "loop103", "--output-format", "json"))
    assert {code for _, code in both} == {"LOOP101", "LOOP103"}


def test_unknown_selector_is_a_usage_error(project: Path) -> None:
    result = run("check", "--select", "LOOP9")
    assert result.exit_code == 2
    assert "--select: unknown rule selector 'LOOP9'" in result.stderr


def test_statistics(project: Path) -> None:
    result = run("check", "--statistics")
    assert result.exit_code == 1
    rows = [line.split() for line in result.stdout.splitlines()]
    by_code = {code: (int(count), name) for count, code, name in rows}
    assert by_code["LOOP101"] == (1, "sync-db-call-in-async-function")
    assert "LOOP103" in by_code
    stats = json.loads(run("check", "--statistics", "--output-format", "json").stdout)
    assert {"code": "LOOP101", "name": "sync-db-call-in-async-function", "count": 1} in stats


# --------------------------------------------------------------------------- check: configuration


def test_config_ignore_and_cli_override(project: Path) -> None:
    write(project, {"pyproject.toml": '[tool.loopsafe]\nignore = ["LOOP1"]\n'})
    assert {code for _, code in codes(run("check", "--output-format", "json"))} <= {"LOOP105"}
    # --select starts afresh, --isolated reads no file
    assert ("app/api.py", "LOOP101") in codes(run("check", "--select", "LOOP101", "--output-format", "json"))
    assert ("app/api.py", "LOOP101") in codes(run("check", "--isolated", "--output-format", "json"))


def test_per_file_ignores(project: Path) -> None:
    write(project, {"pyproject.toml": '[tool.loopsafe.per-file-ignores]\n"app/api.py" = ["LOOP103"]\n'})
    found = {code for _, code in codes(run("check", "--output-format", "json"))}
    assert "LOOP101" in found and "LOOP103" not in found


def test_bad_config_exits_2_naming_file_and_key(project: Path) -> None:
    write(project, {"pyproject.toml": '[tool.loopsafe]\nselekt = ["LOOP1"]\n'})
    result = run("check")
    assert result.exit_code == 2
    assert str(project / "pyproject.toml") in result.stderr
    assert "selekt" in result.stderr
    assert result.stdout == ""  # nothing was checked


def test_bad_fastapi_version_exits_2_naming_the_key(project: Path) -> None:
    write(project, {"pyproject.toml": '[tool.loopsafe]\nfastapi-version = "^0.110"\n'})
    result = run("check")
    assert result.exit_code == 2
    assert f"{project / 'pyproject.toml'}: [tool.loopsafe] fastapi-version:" in result.stderr
    assert result.stdout == ""


def test_toml_syntax_error_exits_2(project: Path) -> None:
    write(project, {"pyproject.toml": "[tool.loopsafe\n"})
    result = run("check")
    assert result.exit_code == 2
    assert "pyproject.toml" in result.stderr and "line 1" in result.stderr


def test_explicit_config_file(project: Path) -> None:
    write(project, {"ci.toml": 'select = ["LOOP103"]\n'})
    assert {code for _, code in codes(run("check", "--config", "ci.toml", "--output-format", "json"))} == {"LOOP103"}
    assert run("check", "--config", "missing.toml").exit_code == 2
    assert run("check", "--config", "ci.toml", "--isolated").exit_code == 2


def test_exclude_gitignore_and_force_exclude(project: Path) -> None:
    write(project, {"legacy/old.py": API.replace("app.", "legacy."), ".gitignore": "legacy/\n"})
    assert not any(path.startswith("legacy/") for path, _ in codes(run("check", "--output-format", "json")))
    found = codes(run("check", "--no-respect-gitignore", "--output-format", "json"))
    assert any(path == "legacy/old.py" for path, _ in found)
    # an explicitly named file is checked, unless --force-exclude (what pre-commit passes)
    assert codes(run("check", "legacy/old.py", "--output-format", "json"))
    assert codes(run("check", "legacy/old.py", "--force-exclude", "--output-format", "json")) == []
    write(project, {"pyproject.toml": '[tool.loopsafe]\nextend-exclude = ["crud.py"]\n'})
    assert ("app/api.py", "LOOP101") in codes(run("check", "--output-format", "json"))


# --------------------------------------------------------------------------- check: errors and inputs


def test_nonexistent_path_exits_2_naming_it(project: Path) -> None:
    result = run("check", "app", "no/such/dir")
    assert result.exit_code == 2
    assert "no/such/dir" in result.stderr
    assert result.stdout == ""


def test_parse_errors_are_reported_and_fail_the_run(project: Path) -> None:
    write(project, {"app/broken.py": "def f(:\n", "app/latin.py": b"x = '\xe9'\n"})
    result = run("check", "--select", "LOOP102")  # nothing else to find
    assert result.exit_code == 1
    assert "app/broken.py:1:" in result.stdout and " E999 SyntaxError" in result.stdout
    assert "app/latin.py:1:6: E999 EncodingError: cannot decode as utf-8" in result.stdout
    assert result.stdout.rstrip().endswith("2 files could not be parsed.")
    # JSON keeps stdout parseable: parse errors go to stderr
    as_json = run("check", "--select", "LOOP102", "--output-format", "json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout) == []
    assert "app/broken.py:1:" in as_json.stderr
    assert run("check", "--select", "LOOP102", "--exit-zero").exit_code == 0


def test_coding_cookie_is_honoured(project: Path) -> None:
    source = "# -*- coding: latin-1 -*-\n" + API.replace("read_user", "read_usér")
    write(project, {"app/api.py": source.encode("latin-1")})
    found = codes(run("check", "--output-format", "json"))
    assert ("app/api.py", "LOOP101") in found


def test_output_file(project: Path) -> None:
    result = run("check", "--output-format", "json", "-o", "reports/loopsafe.json")
    assert result.exit_code == 1
    assert result.stdout == ""
    payload = json.loads((project / "reports" / "loopsafe.json").read_text(encoding="utf-8"))
    assert any(item["code"] == "LOOP101" for item in payload)
    full = run("check", "--output-file", "out.txt", env={"FORCE_COLOR": "1"})
    text = (project / "out.txt").read_text(encoding="utf-8")
    assert "LOOP101" in text and "\x1b" not in text  # files never get colour
    assert full.exit_code == 1


def test_color_is_forced_and_suppressed(project: Path) -> None:
    assert "\x1b[" in run("check", env={"FORCE_COLOR": "1"}).stdout
    assert "\x1b" not in run("check", env={"FORCE_COLOR": "1", "NO_COLOR": "1"}).stdout


@pytest.mark.parametrize("output_format", ["full", "concise", "json"])
def test_rich_is_imported_only_to_colour_output(project: Path, output_format: str) -> None:
    import os
    import subprocess
    import sys

    def imports_rich(env: dict[str, str]) -> bool:
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "loopsafe", "check", "--output-format", output_format],
            cwd=project, capture_output=True, text=True,
            env={**os.environ, "LOOPSAFE_NO_REPLAY": "1", "NO_COLOR": "", "FORCE_COLOR": "", **env},
        )
        assert proc.returncode == 1 and "LOOP10" in proc.stdout
        return any(line.split("|")[-1].strip().split(".")[0] == "rich"
                   for line in proc.stderr.splitlines() if line.startswith("import time:"))

    assert not imports_rich({})
    assert imports_rich({"FORCE_COLOR": "1"}) is (output_format != "json")


def test_stdin(project: Path) -> None:
    result = run("check", "-", "--stdin-filename", "app/api.py", "--output-format", "json", input=API)
    assert result.exit_code == 1
    found = codes(result)
    assert ("app/api.py", "LOOP101") in found
    # without a name the code still gets checked, as "-"
    anonymous = run("check", "-", "--output-format", "concise", input=API)
    assert "-:13:12: LOOP101" in anonymous.stdout


def test_stdin_uses_config_and_force_exclude_of_the_named_file(project: Path) -> None:
    write(project, {"pyproject.toml": '[tool.loopsafe]\nextend-exclude = ["app/api.py"]\nignore = ["LOOP105"]\n'})
    args = ("check", "-", "--stdin-filename", "app/api.py", "--output-format", "json")
    found = {code for _, code in codes(run(*args, input=API))}
    assert "LOOP101" in found and "LOOP105" not in found
    skipped = run(*args, "--force-exclude", input=API)
    assert skipped.exit_code == 0 and json.loads(skipped.stdout) == []


def test_stdin_cannot_be_mixed_with_paths(project: Path) -> None:
    assert run("check", "-", "app", input=API).exit_code == 2
    assert run("check", "app", "--stdin-filename", "x.py", input=API).exit_code == 2


def test_no_python_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("check")
    assert result.exit_code == 0
    assert "no Python files" in result.stderr


# --------------------------------------------------------------------------- rules, explain, version


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"loopsafe {__version__}"


def test_rules_lists_every_rule() -> None:
    result = run("rules")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == len(ALL_RULES)
    for line, rule in zip(lines, ALL_RULES):
        fields = line.split(maxsplit=3)
        assert fields == [rule.code, rule.name, "on" if rule.default_enabled else "off", rule.summary]


def test_explain() -> None:
    rule = ALL_RULES[0]
    result = run("explain", rule.code.lower())
    assert result.exit_code == 0
    assert f"{rule.code}: {rule.name}" in result.stdout
    assert "What it does" in result.stdout and "Use instead" in result.stdout
    assert "##" not in result.stdout  # rendered, not raw Markdown


def test_explain_unknown_code() -> None:
    result = run("explain", "LOOP999")
    assert result.exit_code == 2
    assert "unknown rule code 'LOOP999'" in result.stderr


def test_unknown_option_is_a_usage_error(project: Path) -> None:
    assert run("check", "--frobnicate").exit_code == 2


def test_engine_crash_exits_2_not_1(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import loopsafe.engine

    def boom(*args, **kwargs):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(loopsafe.engine, "check_files", boom)
    result = run("check")
    assert result.exit_code == 2
    assert "internal error" in result.stderr and "kaboom" in result.stderr
