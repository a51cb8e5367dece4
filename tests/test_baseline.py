"""Baselines (loopsafe.baseline): ``--write-baseline`` and ``--baseline``."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from loopsafe import baseline
from loopsafe.baseline import BaselineError, Key
from loopsafe.cli import main
from loopsafe.model import Finding

API = """\
from fastapi import Depends, FastAPI
from sqlalchemy.orm import Session

from app import crud
from app.db import get_db
from app.models import User

app = FastAPI()


@app.get("/users/{user_id}")
async def read_user(user_id: int, db: Session = Depends(get_db)):
    return db.query(User).all()


@app.get("/users")
async def list_users(db: Session = Depends(get_db)):
    return crud.get_users(db)
"""

CRUD = """\
from sqlalchemy.orm import Session

from app.models import User


def get_users(db: Session):
    return db.query(User).all()
"""


def write(root: Path, files: dict[str, str]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("NO_COLOR", "FORCE_COLOR", "LOOPSAFE_OUTPUT_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    write(tmp_path, {
        "pyproject.toml": "[tool.loopsafe]\n",
        "app/__init__.py": "",
        "app/api.py": API,
        "app/crud.py": CRUD,
        "app/db.py": "def get_db():\n    yield None\n",
        "app/models.py": "class User:\n    pass\n",
    })
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def reported(*args: str) -> list[tuple[str, int, str]]:
    result = run("check", "--output-format", "json", *args)
    assert result.exit_code in (0, 1), result.output
    return [(item["path"], item["line"], item["code"]) for item in json.loads(result.stdout)]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


# --------------------------------------------------------------------------- the file


def test_write_baseline_records_counts_per_key_without_lines(project: Path) -> None:
    result = run("check", "--write-baseline", "loopsafe-baseline.json")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "Wrote loopsafe-baseline.json: 4 findings in 4 entries." in result.stderr
    payload = json.loads((project / "loopsafe-baseline.json").read_text())
    assert payload == {
        "loopsafe-baseline": 1,
        "findings": [
            {"path": "app/api.py", "code": "LOOP101", "function": "read_user", "count": 1},
            {"path": "app/api.py", "code": "LOOP103", "function": "list_users", "count": 1},
            {"path": "app/api.py", "code": "LOOP105", "function": "list_users", "count": 1},
            {"path": "app/api.py", "code": "LOOP105", "function": "read_user", "count": 1},
        ],
    }


def test_baseline_text_is_stable_and_sorted() -> None:
    counts = Counter({Key("b.py", "LOOP101", "f"): 2, Key("a.py", "LOOP103", ""): 1, Key("a.py", "LOOP101", "g"): 3})
    reordered = Counter(dict(reversed(list(counts.items()))))
    text = baseline.dumps(counts)
    assert text == baseline.dumps(reordered)
    assert text.endswith("}\n")
    entries = json.loads(text)["findings"]
    assert [(e["path"], e["code"], e["function"]) for e in entries] == sorted(
        (e["path"], e["code"], e["function"]) for e in entries
    )
    assert baseline.loads(text) == counts


def test_rewriting_an_unchanged_project_gives_identical_bytes(project: Path) -> None:
    run("check", "--write-baseline", "one.json")
    edit(project / "app" / "api.py", "app = FastAPI()\n", "app = FastAPI()\n\n\nimport os  # moved code\n")
    run("check", "--write-baseline", "two.json")
    assert (project / "one.json").read_bytes() == (project / "two.json").read_bytes()


def test_keys_are_relative_to_the_project_root_wherever_loopsafe_runs(project: Path, monkeypatch) -> None:
    run("check", "--write-baseline", "from-root.json")
    monkeypatch.chdir(project / "app")
    assert run("check", "..", "--write-baseline", "../from-app.json").exit_code == 0
    assert (project / "from-root.json").read_text() == (project / "from-app.json").read_text()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "not a loopsafe baseline"),
        ('{"loopsafe-baseline": 2, "findings": []}', "format 2 is not supported"),
        ('{"loopsafe-baseline": 1, "findings": {}}', "'findings' must be an array"),
        ('{"loopsafe-baseline": 1, "findings": [{"path": "a.py", "code": "LOOP101", "count": 1}]}',
         "findings[0]: 'function' must be a string"),
        ('{"loopsafe-baseline": 1, "findings": [{"path": "a.py", "code": "LOOP101", "function": "", "count": 0}]}',
         "findings[0]: 'count' must be a positive integer"),
    ],
)
def test_invalid_baselines_are_errors(text: str, message: str) -> None:
    with pytest.raises(BaselineError, match=message.replace("[", r"\[").replace("]", r"\]")):
        baseline.loads(text, "b.json")


def test_invalid_or_missing_baseline_exits_2(project: Path) -> None:
    (project / "bad.json").write_text("{}")
    result = run("check", "--baseline", "bad.json")
    assert result.exit_code == 2
    assert "bad.json: not a loopsafe baseline" in result.stderr
    assert result.stdout == ""
    missing = run("check", "--baseline", "missing.json")
    assert missing.exit_code == 2 and "missing.json: cannot read baseline" in missing.stderr


# --------------------------------------------------------------------------- applying


def test_a_baselined_project_passes(project: Path) -> None:
    run("check", "--write-baseline", "b.json")
    result = run("check", "--baseline", "b.json")
    assert result.exit_code == 0, result.output
    assert result.stdout == "All checks passed.\n"
    assert result.stderr == ""


def test_moving_code_does_not_break_the_baseline(project: Path) -> None:
    run("check", "--write-baseline", "b.json")
    api = project / "app" / "api.py"
    edit(api, "app = FastAPI()\n", "app = FastAPI()\n\n\ndef unrelated():\n    return 1\n")
    # swap the two endpoints around as well
    text = api.read_text()
    head, read_user, list_users = text.split("\n\n\n@app.get")[0], *text.split("\n\n\n@app.get")[1:]
    api.write_text(head + "\n\n\n@app.get" + list_users.rstrip("\n") + "\n\n\n@app.get" + read_user)
    assert len(reported()) == 4
    assert reported("--baseline", "b.json") == []


def test_a_new_finding_in_a_known_function_is_reported(project: Path) -> None:
    run("check", "--write-baseline", "b.json")
    api = project / "app" / "api.py"
    edit(api, "    return db.query(User).all()\n", "    db.commit()\n    return db.query(User).all()\n")
    new = reported("--baseline", "b.json")
    # read_user had one LOOP101 and has two now: one is reported
    assert [(path, code) for path, _, code in new] == [("app/api.py", "LOOP101")]
    result = run("check", "--baseline", "b.json", "--statistics")
    assert result.exit_code == 1
    assert result.stdout.split() == ["1", "LOOP101", "sync-db-call-in-async-function"]


def test_a_new_function_is_reported_in_full(project: Path) -> None:
    run("check", "--write-baseline", "b.json")
    api = project / "app" / "api.py"
    api.write_text(api.read_text() + '\n\n@app.get("/more")\nasync def more(db: Session = Depends(get_db)):\n'
                   "    return db.query(User).all()\n")
    assert sorted(code for _, _, code in reported("--baseline", "b.json")) == ["LOOP101", "LOOP105"]


def test_stale_entries_are_noted(project: Path) -> None:
    run("check", "--write-baseline", "b.json")
    edit(project / "app" / "api.py", "async def read_user", "def read_user")  # fixes LOOP101 and LOOP105
    result = run("check", "--baseline", "b.json")
    assert result.exit_code == 0
    assert "note: 2 baseline entries are stale; rewrite with --write-baseline" in result.stderr
    assert "stale" not in run("check", "--baseline", "b.json", "--quiet").stderr
    run("check", "--write-baseline", "b.json")
    assert "stale" not in run("check", "--baseline", "b.json").stderr


def test_entries_for_files_not_checked_or_rules_not_selected_are_not_stale(project: Path) -> None:
    run("check", "--write-baseline", "b.json")
    only_crud = run("check", "app/crud.py", "--baseline", "b.json")  # as pre-commit passes a few files
    assert only_crud.exit_code == 0 and "stale" not in only_crud.stderr
    only_103 = run("check", "--select", "LOOP103", "--baseline", "b.json")
    assert only_103.exit_code == 0 and "stale" not in only_103.stderr


def test_entries_for_deleted_files_are_stale(project: Path) -> None:
    run("check", "--write-baseline", "b.json")
    (project / "app" / "api.py").unlink()
    result = run("check", "app/crud.py", "--baseline", "b.json")
    assert "note: 4 baseline entries are stale" in result.stderr


def test_write_baseline_with_stdin_is_a_usage_error(project: Path) -> None:
    result = CliRunner().invoke(main, ["check", "-", "--write-baseline", "b.json"], input=API)
    assert result.exit_code == 2
    assert "--write-baseline cannot be used with standard input" in result.stderr


def test_baseline_applies_after_noqa(project: Path) -> None:
    edit(project / "app" / "api.py", "    return db.query(User).all()\n", "    return db.query(User).all()  # noqa\n")
    run("check", "--write-baseline", "b.json")
    recorded = {e["code"] + ":" + e["function"] for e in json.loads((project / "b.json").read_text())["findings"]}
    assert "LOOP101:read_user" not in recorded
    # removing the noqa comment makes the finding new
    edit(project / "app" / "api.py", "  # noqa\n", "\n")
    assert [code for _, _, code in reported("--baseline", "b.json")] == ["LOOP101"]


# --------------------------------------------------------------------------- the function


def finding(line: int, function: str = "f", code: str = "LOOP101", path: str = "a.py") -> Finding:
    return Finding(code, "m", path, line, 1, line, 2, "", function=function)


def test_apply_reports_the_surplus_last_in_the_file() -> None:
    recorded = Counter({Key("a.py", "LOOP101", "f"): 1})
    findings = [finding(30), finding(10), finding(20), finding(5, "g")]
    outcome = baseline.apply(recorded, findings, str, checked={"a.py"}, codes={"LOOP101"}, exists=lambda p: True)
    assert [f.line for f in outcome.new] == [30, 20, 5]  # input order kept
    assert [f.line for f in outcome.known] == [10]
    assert outcome.stale == []


def test_apply_stale_rules() -> None:
    recorded = Counter({
        Key("a.py", "LOOP101", "f"): 3,   # now 1: stale
        Key("a.py", "LOOP103", "f"): 1,   # rule not selected: not judged
        Key("b.py", "LOOP101", "g"): 1,   # file not checked, still exists: not judged
        Key("c.py", "LOOP101", "h"): 1,   # file gone: stale
    })
    outcome = baseline.apply(
        recorded, [finding(1)], str, checked={"a.py"}, codes={"LOOP101"}, exists=lambda p: p != "c.py",
    )
    assert outcome.stale == [(Key("a.py", "LOOP101", "f"), 3, 1), (Key("c.py", "LOOP101", "h"), 1, 0)]
