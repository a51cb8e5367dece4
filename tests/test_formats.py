"""The machine-readable output formats: json-lines, sarif, github, gitlab."""
from __future__ import annotations

import copy
import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner, Result

from loopsafe import __version__, render
from loopsafe.cli import main
from loopsafe.model import Finding, Frame, ParseError, Report
from loopsafe.rules import ALL_RULES
from loopsafe.sarif import sarif_log

SARIF_SCHEMA = Path(__file__).resolve().parents[2] / "shared" / "schemas" / "sarif-2.1.0.json"

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


@app.get("/twice")
async def twice(db: Session = Depends(get_db)):
    db.commit()
    db.commit()
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


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "LOOPSAFE_OUTPUT_FORMAT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git checkout whose project (with its pyproject.toml) is in backend/; cwd is backend/."""
    (tmp_path / ".git").mkdir()
    root = tmp_path / "backend"
    write(root, {
        "pyproject.toml": "[tool.loopsafe]\n",
        "app/__init__.py": "",
        "app/api.py": API,
        "app/crud.py": CRUD,
        "app/db.py": "def get_db():\n    yield None\n",
        "app/models.py": "class User:\n    pass\n",
    })
    monkeypatch.chdir(root)
    return root


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, ["check", *args], env=env, catch_exceptions=False)


def sarif_of(*args: str) -> dict[str, Any]:
    result = run("--output-format", "sarif", *args)
    assert result.exit_code == 1, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="session")
def sarif_validator() -> jsonschema.protocols.Validator:
    if not SARIF_SCHEMA.is_file():
        pytest.skip(f"the SARIF 2.1.0 schema is not at {SARIF_SCHEMA} (shared/ must sit beside the repository)")
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)  # the draft the schema itself declares
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def assert_valid_sarif(validator, log: dict[str, Any]) -> None:
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


# --------------------------------------------------------------------------- json-lines


def test_json_lines_has_the_json_objects_one_per_line(project: Path) -> None:
    as_json = json.loads(run("--output-format", "json").stdout)
    result = run("--output-format", "json-lines")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert [json.loads(line) for line in lines] == as_json
    assert len(lines) == len(as_json) > 0
    jsonschema.validate([json.loads(line) for line in lines], render.JSON_SCHEMA)


def test_json_lines_is_empty_without_findings() -> None:
    assert render.format_json_lines(Report((), (), 1), "/") == ""


# --------------------------------------------------------------------------- sarif


def test_sarif_is_valid_against_the_official_schema(project: Path, sarif_validator) -> None:
    log = sarif_of()
    assert_valid_sarif(sarif_validator, log)
    assert log["version"] == "2.1.0"
    assert len(log["runs"]) == 1
    assert {r["ruleId"] for r in log["runs"][0]["results"]} == {"LOOP101", "LOOP103", "LOOP105"}


def test_the_schema_check_can_fail(project: Path, sarif_validator) -> None:
    """A negative control: the validator rejects what GitHub would reject."""
    log = sarif_of()
    for mutate in (
        lambda log: log.pop("version"),
        lambda log: log["runs"][0]["results"][0].update(level="fatal"),
        lambda log: log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"].update(startLine=0),
        lambda log: log["runs"][0]["tool"]["driver"].pop("name"),
    ):
        broken = copy.deepcopy(log)
        mutate(broken)
        assert list(sarif_validator.iter_errors(broken))


def test_sarif_has_what_github_code_scanning_requires(project: Path) -> None:
    run_ = sarif_of()["runs"][0]
    driver = run_["tool"]["driver"]
    assert driver["name"] == "loopsafe"
    assert driver["version"] == __version__
    assert driver["informationUri"].startswith("https://")
    rules = driver["rules"]
    assert run_["results"]
    for result in run_["results"]:
        assert re.fullmatch(r"LOOP\d{3}", result["ruleId"])
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning")
        assert result["message"]["text"]
        [location] = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == "backend/app/api.py"
        assert physical["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        region = physical["region"]
        assert region["startLine"] >= 1 and region["startColumn"] >= 1
        assert region["endLine"] >= region["startLine"]
        assert set(result["partialFingerprints"]) == {"loopsafe/v1"}
    root_uri = run_["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    assert root_uri == project.parent.resolve().as_uri() + "/"


def test_sarif_rules_come_from_the_catalogue() -> None:
    log = sarif_log(Report((), (), 0), {}, cwd="/", root="/", rules=ALL_RULES)
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert [rule["id"] for rule in rules] == [rule.code for rule in ALL_RULES]
    for descriptor, rule in zip(rules, ALL_RULES):
        assert descriptor["name"] == rule.name
        assert descriptor["shortDescription"]["text"] == rule.summary
        assert descriptor["fullDescription"]["text"]
        assert descriptor["fullDescription"]["text"] in " ".join(rule.doc().split())
        assert descriptor["help"]["markdown"].startswith("## What it does")
        assert "## " not in descriptor["help"]["text"] and "```" not in descriptor["help"]["text"]
        assert descriptor["helpUri"].endswith(f"/docs/rules/{rule.code}.md")
        assert descriptor["defaultConfiguration"]["level"] == ("error" if rule.default_enabled else "warning")
    # the help links point at pages that exist in this repository
    repo = Path(__file__).resolve().parents[1]
    for descriptor in rules:
        assert (repo / "docs" / "rules" / descriptor["helpUri"].rpartition("/")[2]).is_file()


def test_sarif_location_region_matches_the_finding(project: Path) -> None:
    as_json = json.loads(run("--output-format", "json").stdout)
    results = sarif_of()["runs"][0]["results"]
    assert len(results) == len(as_json)
    for result, item in zip(results, as_json):
        assert result["ruleId"] == item["code"]
        assert result["message"]["text"] == item["message"]
        assert result["locations"][0]["physicalLocation"]["region"] == {
            "startLine": item["line"], "startColumn": item["column"],
            "endLine": item["end_line"], "endColumn": item["end_column"],
        }


def test_sarif_code_flow_goes_from_the_call_site_down_the_chain(project: Path) -> None:
    results = sarif_of()["runs"][0]["results"]
    [helper] = [r for r in results if r["ruleId"] == "LOOP103"]
    [flow] = helper["codeFlows"]
    steps = [step["location"] for step in flow["threadFlows"][0]["locations"]]
    assert steps[0]["physicalLocation"] == helper["locations"][0]["physicalLocation"]
    assert steps[0]["message"]["text"] == "list_users: return get_users(db)"
    crud_line = CRUD.splitlines().index("    return db.query(User).all()") + 1
    assert steps[1]["physicalLocation"]["artifactLocation"] == {"uri": "backend/app/crud.py", "uriBaseId": "%SRCROOT%"}
    assert steps[1]["physicalLocation"]["region"] == {"startLine": crud_line}
    assert steps[1]["message"]["text"] == "get_users: db.query(User).all()"
    assert all("codeFlows" not in r for r in results if r["ruleId"] != "LOOP103")


def start_lines(log: dict[str, Any]) -> list[int]:
    return [r["locations"][0]["physicalLocation"]["region"]["startLine"] for r in log["runs"][0]["results"]]


def fingerprints_by_rule(log: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((r["ruleId"], r["partialFingerprints"]["loopsafe/v1"]) for r in log["runs"][0]["results"])


def test_sarif_fingerprints_survive_moving_code_and_tell_duplicates_apart(project: Path) -> None:
    before = sarif_of()
    prints = fingerprints_by_rule(before)
    assert len({p for _, p in prints}) == len(prints)  # the two `db.commit()` differ
    api = project / "app" / "api.py"
    api.write_text(API.replace("app = FastAPI()\n", "app = FastAPI()\n\n\ndef unrelated():\n    return 1\n"))
    after = sarif_of()
    assert start_lines(after) != start_lines(before)
    assert fingerprints_by_rule(after) == prints
    # a changed line is a different finding
    api.write_text(API.replace("return db.query(User).all()", "return db.query(User).first()"))
    changed = dict(fingerprints_by_rule(sarif_of()))
    assert changed["LOOP101"] != dict(prints)["LOOP101"]


def test_sarif_without_git_is_relative_to_the_project_and_outside_files_are_absolute(tmp_path: Path) -> None:
    outside_file = tmp_path / "lib" / "x.py"
    finding = Finding("LOOP101", "m", "app/api.py", 3, 5, 3, 9, "", chain=(Frame(str(outside_file), 4, "f"),))
    root = str(tmp_path / "proj")
    log = sarif_log(Report((finding,), (), 1), {}, cwd=root, root=root, rules=ALL_RULES)
    [result] = log["runs"][0]["results"]
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "app/api.py", "uriBaseId": "%SRCROOT%"}
    outside = result["codeFlows"][0]["threadFlows"][0]["locations"][1]["location"]["physicalLocation"]
    assert outside["artifactLocation"] == {"uri": outside_file.as_uri()}


def test_sarif_uris_are_percent_encoded(tmp_path: Path, sarif_validator) -> None:
    finding = Finding("LOOP101", "m", "my app/api #1.py", 1, 1, 1, 2, "")
    log = sarif_log(Report((finding,), (), 1), {}, cwd=str(tmp_path), root=str(tmp_path), rules=ALL_RULES)
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "my%20app/api%20%231.py"
    assert_valid_sarif(sarif_validator, log)


def test_sarif_reports_parse_errors_as_notifications(project: Path, sarif_validator) -> None:
    write(project, {"app/broken.py": "def f(:\n"})
    result = run("--output-format", "sarif")
    assert result.exit_code == 1
    log = json.loads(result.stdout)  # stdout stays a SARIF document
    assert_valid_sarif(sarif_validator, log)
    [notification] = log["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert notification["level"] == "error"
    assert notification["message"]["text"].startswith("SyntaxError")
    assert notification["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "backend/app/broken.py"
    assert "app/broken.py:1:" in result.stderr


def test_sarif_to_a_file_and_from_the_environment(project: Path, sarif_validator) -> None:
    result = run("-o", "reports/loopsafe.sarif", env={"LOOPSAFE_OUTPUT_FORMAT": "sarif"})
    assert result.exit_code == 1 and result.stdout == ""
    log = json.loads((project / "reports" / "loopsafe.sarif").read_text(encoding="utf-8"))
    assert_valid_sarif(sarif_validator, log)
    assert log["runs"][0]["results"]


def test_sarif_without_findings_is_still_a_valid_log(tmp_path: Path, monkeypatch, sarif_validator) -> None:
    write(tmp_path, {"app.py": "x = 1\n"})
    monkeypatch.chdir(tmp_path)
    result = run("--output-format", "sarif")
    assert result.exit_code == 0
    log = json.loads(result.stdout)
    assert_valid_sarif(sarif_validator, log)
    assert log["runs"][0]["results"] == []


# --------------------------------------------------------------------------- github


def test_github_annotations(project: Path) -> None:
    result = run("--output-format", "github")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    as_json = json.loads(run("--output-format", "json").stdout)
    assert len(lines) == len(as_json)
    line = API.splitlines().index("    return db.query(User).all()") + 1
    message = next(item["message"] for item in as_json if item["code"] == "LOOP101" and item["line"] == line)
    assert (
        f"::error file=backend/app/api.py,line={line},col=12,endLine={line},endColumn=32,"
        f"title=loopsafe (LOOP101)::{message}"
    ) in lines
    assert all(re.match(r"::error file=backend/app/api\.py,line=\d+,col=\d+,endLine=\d+,endColumn=\d+,title=loopsafe "
                        r"\(LOOP\d{3}\)::\S", line) for line in lines)


def test_github_escaping() -> None:
    finding = Finding("LOOP101", "50% of `a:b, c`\r\nnext line", "we,ird:name%.py", 2, 3, 2, 9, "")
    out = render.format_github(Report((finding,), (), 1), cwd="/repo", root="/repo")
    assert out == (
        "::error file=we%2Cird%3Aname%25.py,line=2,col=3,endLine=2,endColumn=9,title=loopsafe (LOOP101)"
        "::50%25 of `a:b, c`%0D%0Anext line\n"
    )


def test_github_omits_columns_of_multiline_findings_and_annotates_parse_errors() -> None:
    finding = Finding("LOOP105", "m", "a.py", 2, 1, 4, 5, "")
    error = ParseError("b.py", 3, 7, "SyntaxError: invalid syntax")
    out = render.format_github(Report((finding,), (error,), 2), cwd="/r", root="/r", levels={"LOOP105": "warning"})
    assert out.splitlines() == [
        # GitHub drops an annotation with columns that spans lines
        "::warning file=a.py,line=2,endLine=4,title=loopsafe (LOOP105)::m",
        "::error file=b.py,line=3,col=7,title=loopsafe (E999)::SyntaxError: invalid syntax",
    ]


def test_github_parse_errors_from_the_cli(project: Path) -> None:
    write(project, {"app/broken.py": "def f(:\n"})
    result = run("--output-format", "github")
    assert "::error file=backend/app/broken.py,line=1,col=" in result.stdout
    assert result.stderr == ""


# --------------------------------------------------------------------------- gitlab


def test_gitlab_code_quality_report(project: Path) -> None:
    result = run("--output-format", "gitlab")
    assert result.exit_code == 1
    issues = json.loads(result.stdout)
    as_json = json.loads(run("--output-format", "json").stdout)
    assert len(issues) == len(as_json)
    for issue, item in zip(issues, as_json):
        assert set(issue) == {"description", "check_name", "fingerprint", "severity", "location"}
        assert issue["check_name"] == item["code"]
        assert issue["description"] == f"{item['code']} {item['message']}"
        assert re.fullmatch(r"[0-9a-f]{32}", issue["fingerprint"])
        assert issue["severity"] == "major"
        assert issue["location"] == {"path": "backend/app/api.py", "lines": {"begin": item["line"]}}
    assert len({issue["fingerprint"] for issue in issues}) == len(issues)


def test_gitlab_fingerprints_are_stable_when_code_moves(project: Path) -> None:
    before = sorted(issue["fingerprint"] for issue in json.loads(run("--output-format", "gitlab").stdout))
    (project / "app" / "api.py").write_text(API.replace("app = FastAPI()\n", "\n\napp = FastAPI()\n"))
    after = json.loads(run("--output-format", "gitlab").stdout)
    assert sorted(issue["fingerprint"] for issue in after) == before
    assert json.loads(run("--output-format", "gitlab").stdout) == after  # and deterministic


def test_gitlab_writes_parse_errors_to_stderr(project: Path) -> None:
    write(project, {"app/broken.py": "def f(:\n"})
    result = run("--output-format", "gitlab")
    assert all(issue["check_name"].startswith("LOOP") for issue in json.loads(result.stdout))
    assert "app/broken.py:1:" in result.stderr


# --------------------------------------------------------------------------- fingerprints


def test_fingerprints_ignore_indentation_and_line_numbers() -> None:
    one = Finding("LOOP101", "m", "a.py", 2, 5, 2, 9, "", function="f")
    moved = Finding("LOOP101", "m", "a.py", 7, 9, 7, 13, "", function="f")
    [a] = render.fingerprints([one], {"a.py": "def f():\n    db.commit()\n"}, cwd="/r", root="/r").values()
    [b] = render.fingerprints([moved], {"a.py": "\n" * 6 + "        db.commit(  )\n"}, cwd="/r", root="/r").values()
    assert a != b  # `db.commit(  )` is different text
    [c] = render.fingerprints([moved], {"a.py": "\n" * 6 + "        db.commit()\n"}, cwd="/r", root="/r").values()
    assert a == c
    other_function = Finding("LOOP101", "m", "a.py", 2, 5, 2, 9, "", function="g")
    [d] = render.fingerprints([other_function], {"a.py": "def g():\n    db.commit()\n"}, cwd="/r", root="/r").values()
    assert d[0] != a[0]


# --------------------------------------------------------------------------- the README's CI recipes


def readme_commands(section: str) -> list[list[str]]:
    """The ``loopsafe ...`` commands run by the YAML examples of a README section."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert match, f"README.md has no '## {section}' section"
    commands = []
    for block in re.findall(r"```yaml\n(.*?)```", match.group(1), re.DOTALL):
        yaml.safe_load(block)  # each example is valid YAML
        commands += [shlex.split(cmd) for cmd in re.findall(r"^\s*(?:- run: |- )(loopsafe .*)$", block, re.M)]
    return commands


@pytest.mark.parametrize("section", ["GitHub Actions", "GitLab"])
def test_readme_ci_commands_work(project: Path, section: str, sarif_validator) -> None:
    commands = readme_commands(section)
    assert commands
    for command in commands:
        assert command[:2] == ["loopsafe", "check"]
        result = CliRunner().invoke(main, command[1:], catch_exceptions=False)
        assert result.exit_code == (0 if "--exit-zero" in command else 1), result.output
        output_format = command[command.index("--output-format") + 1]
        if "-o" in command:
            output = (project / command[command.index("-o") + 1]).read_text(encoding="utf-8")
        else:
            output = result.stdout
        if output_format == "sarif":
            assert_valid_sarif(sarif_validator, json.loads(output))
        elif output_format == "gitlab":
            assert json.loads(output) and all(issue["severity"] == "major" for issue in json.loads(output))
        else:
            assert output.startswith("::error file=backend/app/api.py,")
