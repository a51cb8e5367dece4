"""``# noqa`` comments (loopsafe.suppression) and ``loopsafe check --add-noqa``."""
from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from loopsafe import suppression
from loopsafe.cli import main
from loopsafe.model import Finding
from loopsafe.suppression import FileNoqa, apply_noqa, parse_directive

CRUD = """\
from sqlalchemy.orm import Session

from app.models import User


def get_users(db: Session):
    return db.query(User).all()
"""

HEADER = """\
from fastapi import Depends, FastAPI
from sqlalchemy.orm import Session

from app import crud
from app.db import get_db
from app.models import User

app = FastAPI()
"""


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def make_project(root: Path, api_body: str) -> Path:
    write(root, {
        "app/__init__.py": "",
        "app/api.py": HEADER + api_body,
        "app/crud.py": CRUD,
        "app/db.py": "def get_db():\n    yield None\n",
        "app/models.py": "class User:\n    pass\n",
    })
    return root / "app" / "api.py"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "LOOPSAFE_OUTPUT_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def found(*args: str, input: str | None = None) -> set[tuple[int, str]]:
    """``(line, code)`` of the findings in app/api.py."""
    result = run("check", "--output-format", "json", *args, input=input)
    assert result.exit_code in (0, 1), result.output
    return {(item["line"], item["code"]) for item in json.loads(result.stdout) if item["path"] == "app/api.py"}


def line_of(text: str, needle: str) -> int:
    [number] = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return number


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("comment", "codes"),
    [
        ("# noqa", None),
        ("# NOQA", None),
        ("# NoQA", None),
        ("#noqa", None),
        ("#   noqa  - this line is fine", None),
        ("# noqa: LOOP101", ("LOOP101",)),
        ("# noqa:LOOP101", ("LOOP101",)),
        ("# noqa: loop101", ("LOOP101",)),
        ("# noqa: LOOP101,LOOP102", ("LOOP101", "LOOP102")),
        ("#noqa:LOOP101 LOOP102", ("LOOP101", "LOOP102")),
        ("# noqa: LOOP101 , LOOP102,E501", ("LOOP101", "LOOP102", "E501")),
        ("# noqa: LOOP101 the session is a stub here", ("LOOP101",)),
        ("# type: ignore[misc]  # noqa: LOOP1", ("LOOP1",)),
    ],
)
def test_valid_directives(comment: str, codes: tuple[str, ...] | None) -> None:
    directive = parse_directive(comment)
    assert directive is not None and directive.valid
    assert directive.codes == codes


@pytest.mark.parametrize("comment", ["# a comment", "# noqa_foo", "# noqanope: LOOP101", "# see noqa docs"])
def test_not_directives(comment: str) -> None:
    assert parse_directive(comment) is None


@pytest.mark.parametrize(
    ("comment", "got"),
    [("# noqa: LOOP", "`LOOP`"), ("# noqa:LOOP", "`LOOP`"), ("# noqa:", "nothing"), ("# noqa: 101", "`101`")],
)
def test_a_colon_without_codes_is_invalid(comment: str, got: str) -> None:
    directive = parse_directive(comment)
    assert directive is not None and not directive.valid
    assert got in directive.problem
    assert not directive.suppresses("LOOP101")


def test_codes_match_by_prefix() -> None:
    directive = parse_directive("# noqa: LOOP1, E501")
    assert directive.suppresses("LOOP101") and directive.suppresses("LOOP105") and directive.suppresses("E501")
    assert not directive.suppresses("LOOP201")
    assert not parse_directive("# noqa: LOOP102").suppresses("LOOP101")
    assert parse_directive("# noqa").suppresses("LOOP201")


def test_directive_position_within_the_line() -> None:
    text = "x = 1  # type: ignore  # noqa: E501, LOOP1 trailing\n"
    directive = FileNoqa(text).directive_at(1)
    assert text[directive.start:].startswith("# noqa")
    assert text[directive.codes_start:directive.codes_end] == "E501, LOOP1"


# --------------------------------------------------------------------------- which line


def test_comment_on_the_reported_line_only_inside_brackets() -> None:
    text = "rows = db.query(\n    User,\n).all()  # noqa\n"
    noqa = FileNoqa(text)
    assert noqa.directive_for(1) is None  # as in flake8: brackets do not join lines
    assert noqa.directive_for(3) is not None


def test_backslash_continuation_takes_the_comment_on_its_last_line() -> None:
    text = "rows = db.query(User) \\\n    .all()  # noqa: LOOP101\nx = 1\n"
    noqa = FileNoqa(text)
    assert noqa.comment_line(1) == 2
    assert noqa.directive_for(1).codes == ("LOOP101",)
    assert noqa.directive_for(3) is None


def test_multiline_string_takes_the_comment_on_its_last_line() -> None:
    text = 'rows = db.execute("""\n    SELECT 1  # noqa: not a comment\n""")  # noqa: LOOP101\n'
    noqa = FileNoqa(text)
    assert noqa.comment_line(1) == noqa.comment_line(2) == 3
    assert noqa.directive_for(1).codes == ("LOOP101",)
    assert [d.line for d in noqa.directives()] == [3]  # the one inside the string is text


def test_noqa_inside_a_string_is_not_a_directive() -> None:
    assert FileNoqa('x = "# noqa"; db.commit()\n').directive_for(1) is None


def test_line_ends_follow_python_not_str_splitlines() -> None:
    # a form feed does not end a line; "\r" alone does
    noqa = FileNoqa("a = 1\x0cb = 2\rdb.commit()  # noqa\r\n")
    assert noqa.directive_for(2) is not None
    assert noqa.directive_for(1) is None


def test_untokenizable_text_falls_back_to_the_physical_line() -> None:
    text = "db.commit()  # noqa: LOOP101\nx = '''unterminated\n"
    noqa = FileNoqa(text)
    assert noqa.directive_for(1).codes == ("LOOP101",)
    assert noqa.comment_problem(1) == "the file could not be tokenized"


# --------------------------------------------------------------------------- applying


def finding(line: int, code: str = "LOOP101", path: str = "a.py") -> Finding:
    return Finding(code, "m", path, line, 1, line, 2, "")


def test_apply_noqa_splits_and_reports_invalid_directives_anywhere() -> None:
    text = "a()  # noqa\nb()  # noqa: LOOP102\nc()  # NOQA:loop1\nd()\n# noqa: LOOP\n"
    findings = [finding(1), finding(2), finding(3, "LOOP105"), finding(4), finding(1, path="b.py")]
    kept, suppressed, invalid = apply_noqa(findings, {"a.py": text, "b.py": "a()\n"})
    assert [(f.path, f.line) for f in kept] == [("a.py", 2), ("a.py", 4), ("b.py", 1)]
    assert [(f.path, f.line) for f in suppressed] == [("a.py", 1), ("a.py", 3)]
    assert [(d.path, d.line) for d in invalid] == [("a.py", 5)]
    assert str(invalid[0]).startswith("a.py:5: invalid `# noqa` directive")


# --------------------------------------------------------------------------- the CLI

BODY = """

@app.get("/a")
async def a(db: Session = Depends(get_db)):  # noqa: LOOP105
    return db.query(User).all()  # noqa


@app.get("/b")
async def b(db: Session = Depends(get_db)):  # noqa: LOOP1
    first = crud.get_users(db)  # noqa: LOOP101 (wrong code: still reported)
    rows = db.execute(\"\"\"
        SELECT 1
    \"\"\")  # noqa: LOOP101
    return first, rows
"""


def test_cli_honours_noqa(tmp_path: Path) -> None:
    api = make_project(tmp_path, BODY)
    text = api.read_text()
    assert found("--isolated") == {(line_of(text, "crud.get_users(db)"), "LOOP103")}
    statistics = run("check", "--statistics")
    assert statistics.stdout.split() == ["1", "LOOP103", "blocking-call-via-helper"]
    concise = run("check", "--output-format", "concise")
    assert "Found 1 finding in 1 file.\n" in concise.stdout


def test_cli_all_suppressed_passes(tmp_path: Path) -> None:
    make_project(tmp_path, BODY.replace("# noqa: LOOP101 (wrong code: still reported)", "# noqa: LOOP103"))
    result = run("check")
    assert result.exit_code == 0, result.output
    assert result.stdout == "All checks passed.\n"
    assert result.stderr == ""


def test_cli_warns_about_letters_only_codes_and_does_not_honour_them(tmp_path: Path) -> None:
    api = make_project(tmp_path, BODY.replace("# noqa: LOOP105", "# noqa: LOOP"))
    line = line_of(api.read_text(), "async def a(")
    result = run("check", "--output-format", "json")
    assert (line, "LOOP105") in {(item["line"], item["code"]) for item in json.loads(result.stdout)}
    assert f"warning: app/api.py:{line}: invalid `# noqa` directive" in result.stderr
    assert "`LOOP`" in result.stderr


def test_cli_honours_noqa_on_stdin(tmp_path: Path) -> None:
    make_project(tmp_path, BODY)
    text = HEADER + BODY.replace("return db.query(User).all()  # noqa", "return db.query(User).all()")
    result = run("check", "-", "--stdin-filename", "app/api.py", "--output-format", "json", input=text)
    reported = {(item["line"], item["code"]) for item in json.loads(result.stdout)}
    # stdin is analysed with its project as context, so the helper in app/crud.py is followed
    assert reported == {(line_of(text, "return db.query(User).all()"), "LOOP101"),
                        (line_of(text, "crud.get_users(db)"), "LOOP103")}


# --------------------------------------------------------------------------- --add-noqa

ADD_BODY = """

@app.get("/a")
async def a(db: Session = Depends(get_db)):
    users = db.query(User).all()  # type: ignore[misc]
    again = db.query(User).all()  # noqa: E501 long line
    rows = db.execute(\"\"\"
        SELECT 1
    \"\"\")
    other = db.query(User) \\
        .all()
    return users, again, rows, other, crud.get_users(db)


@app.get("/b")
async def b(
    db: Session = Depends(get_db),
):
    return db.query(User).count()
"""


def test_add_noqa_annotates_every_finding(tmp_path: Path) -> None:
    api = make_project(tmp_path, ADD_BODY)
    before = found()
    assert len(before) >= 6
    result = run("check", "--add-noqa")
    assert result.exit_code == 0, result.output
    text = api.read_text()
    ast.parse(text)
    lines = text.splitlines()
    assert "    users = db.query(User).all()  # type: ignore[misc]  # noqa: LOOP101" in lines
    assert "    again = db.query(User).all()  # noqa: E501, LOOP101 long line" in lines
    assert '    """)  # noqa: LOOP101' in lines  # after the string, not inside it
    assert "        .all()  # noqa: LOOP101" in lines  # after the continuation, not before it
    assert "async def a(db: Session = Depends(get_db)):  # noqa: LOOP105" in lines
    assert "async def b(  # noqa: LOOP105" in lines
    assert "    return users, again, rows, other, crud.get_users(db)  # noqa: LOOP103" in lines
    # one comment per line, however many findings it covers
    added = sum(bool(re.search(r"# noqa: .*LOOP\d", line)) for line in lines)
    assert f"Added {added} noqa directives." in result.stderr
    # now nothing is reported, and a second run has nothing to add
    assert found() == set()
    again = run("check", "--add-noqa")
    assert again.exit_code == 0 and "Added 0 noqa directives." in again.stderr
    assert api.read_text() == text


def test_add_noqa_exits_0_and_reports_only_what_it_did(tmp_path: Path) -> None:
    make_project(tmp_path, ADD_BODY)
    result = run("check", "--add-noqa")
    assert result.exit_code == 0
    assert result.stdout == ""


def test_add_noqa_skips_a_line_with_an_invalid_directive_and_says_so(tmp_path: Path) -> None:
    api = make_project(tmp_path, ADD_BODY.replace("# type: ignore[misc]", "# noqa: LOOP"))
    line = line_of(api.read_text(), "users = db.query(User).all()")
    result = run("check", "--add-noqa")
    assert result.exit_code == 0
    assert f"app/api.py:{line}: cannot add a `# noqa` comment" in result.stderr
    text = api.read_text()
    assert text.splitlines()[line - 1] == "    users = db.query(User).all()  # noqa: LOOP"
    assert found() == {(line, "LOOP101")}  # everything else was annotated


def test_add_noqa_keeps_encoding_and_line_endings(tmp_path: Path) -> None:
    source = "# -*- coding: latin-1 -*-\n" + HEADER + ADD_BODY.replace("async def b", "async def b\xe9")
    make_project(tmp_path, "")
    original = source.replace("\n", "\r\n").encode("latin-1")
    (tmp_path / "app" / "api.py").write_bytes(original)
    assert run("check", "--add-noqa").exit_code == 0
    data = (tmp_path / "app" / "api.py").read_bytes()
    assert b"b\xe9(" in data and b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
    assert data.replace(b"\r\n", b"\n").count(b"# noqa: LOOP") >= 6
    assert found() == set()


def test_add_noqa_with_baseline_annotates_only_new_findings(tmp_path: Path) -> None:
    api = make_project(tmp_path, ADD_BODY)
    assert run("check", "--write-baseline", "baseline.json").exit_code == 0
    count = "    return db.query(User).count()\n"
    api.write_text(api.read_text().replace(count, "    db.commit()\n" + count))
    result = run("check", "--baseline", "baseline.json", "--add-noqa")
    assert result.exit_code == 0 and "Added 1 noqa directive." in result.stderr
    assert [line for line in api.read_text().splitlines() if "noqa: LOOP" in line] == [
        "    return db.query(User).count()  # noqa: LOOP101"
    ]


def test_add_noqa_never_writes_invalid_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api = make_project(tmp_path, ADD_BODY)
    before = api.read_bytes()
    monkeypatch.setattr(suppression.FileNoqa, "with_codes", lambda self, line, codes: "  broken(\n")
    result = run("check", "--add-noqa")
    assert result.exit_code == 0
    assert "adding it would make the file invalid Python" in result.stderr
    assert "Added 0 noqa directives." in result.stderr
    assert api.read_bytes() == before


@pytest.mark.parametrize("args", [("--add-noqa", "-"), ("--add-noqa", "--write-baseline", "b.json")])
def test_add_noqa_usage_errors(tmp_path: Path, args: tuple[str, ...]) -> None:
    make_project(tmp_path, ADD_BODY)
    result = run("check", *args, input="")
    assert result.exit_code == 2
    assert "--add-noqa cannot be used with" in result.stderr


@pytest.mark.skipif(sys.version_info < (3, 12), reason="only Python 3.12+ tokenizes code inside f-strings")
def test_no_comment_inside_a_multiline_fstring_field() -> None:
    text = 'x = f"""{\n    db.query(User).all()\n}"""\n'
    noqa = FileNoqa(text)
    assert noqa.comment_problem(2) == "the line ends inside an f-string"
    assert noqa.comment_problem(1) == "the line ends inside an f-string"
    assert noqa.comment_problem(3) == ""


def test_add_noqa_leaves_a_file_that_changed_during_the_run_alone(tmp_path: Path, monkeypatch) -> None:
    api = make_project(tmp_path, ADD_BODY)
    real = suppression.add_noqa

    def racing(findings, text):
        api.write_text(text + "# edited meanwhile\n")
        return real(findings, text)

    monkeypatch.setattr(suppression, "add_noqa", racing)
    result = run("check", "--add-noqa")
    assert result.exit_code == 0
    assert "app/api.py: changed while it was being checked" in result.stderr
    assert "Added 0 noqa directives." in result.stderr
    assert api.read_text() == HEADER + ADD_BODY + "# edited meanwhile\n"


@pytest.mark.parametrize(("text", "maybe"), [
    ("x = 1  # noqa: E501\ny = 2  # NOQA\n", False),
    ("x = 1  # noqa:\n", True),
    ("x = 1  # noqa: ,\r", True),
    ('s = "# noqa:"  # noqa: LOOP101\n', True),  # looks invalid before tokenizing: checked properly then
    ("x = 1\n", False),
])
def test_files_are_tokenized_for_invalid_directives_only_when_one_may_be_there(text: str, maybe: bool) -> None:
    assert FileNoqa(text).may_hold_invalid() is maybe


def test_comment_maps_are_cached_with_the_summaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = ("\n\n@app.get('/')\nasync def index(db: Session = Depends(get_db)):\n"
            "    a = db.query(User).all()  # noqa: LOOP101\n    return db.query(User).all()  # noqa: E501\n")
    make_project(tmp_path, body)
    tokenized: list[int] = []
    real, scan = suppression._token_map, suppression._scanned_map
    monkeypatch.setattr(suppression, "_token_map", lambda lines: tokenized.append(1) or real(lines))
    monkeypatch.setattr(suppression, "_scanned_map", lambda text: tokenized.append(1) or scan(text))
    cache = str(tmp_path / "cache")
    first = run("check", str(tmp_path), "--output-format", "concise", "--cache-dir", cache)
    assert tokenized and "LOOP101" in first.output and first.output.count("LOOP101") == 1
    tokenized.clear()
    second = run("check", str(tmp_path), "--output-format", "concise", "--cache-dir", cache)
    assert second.output == first.output and not tokenized
    assert run("check", str(tmp_path), "--output-format", "concise", "--no-cache").output == first.output
    assert tokenized  # without a cache the comments are read again


_SCANNED = [
    "",
    "x = 1",
    "x = 1  # noqa\n",
    'rows = db.execute("""\n    SELECT 1  # noqa: not a comment\n""")  # noqa: LOOP101\n',
    "s = '''has \"\"\" and # inside\n'''  # real\n",
    's = "a\\"b # still a string"  # noqa\n',
    "total = 1 + \\\n    2  # noqa\n",
    "s = 'one \\\ntwo # string'  # comment\n",
    "s = r\"\\\"\" # comment after a raw string\n",
    "# it's a comment with a quote\nx = 'y'\n",
    'f(f"{x[\'a\']} # no comment", b"#", rb\'\\\'#\')  # yes\n',
    "a = (\n    1,  # one\n\n    2,\n)\r\nb = 2\rc = 3  # noqa\r",
    "\ufeffx = 1  # bom\n",
    "a = 1\x0cb = 2  # form feed\n",
    "class A:\n    def f(self):\n        return 1  # noqa\n\n\n# end",
]
#: the scan is not sure of these: the caller tokenizes them (which fails on all but the
#: stray quote and the stray backslash)
_UNSURE = [
    's = """never closed\n',
    "x = (1,\n",
    "x = 1 + \\\n",
    "s = 'no end\n",
    "x = 1 \\ 2\n",
    "x = ())\n",
]


@pytest.mark.skipif(not suppression._SCAN_IS_EXACT, reason="from Python 3.12 the tokenizer itself is used")
@pytest.mark.parametrize("text", _SCANNED + _UNSURE)
def test_the_scan_for_comments_agrees_with_tokenize(text: str) -> None:
    scanned = suppression._scanned_map(text)
    tokenized = suppression._token_map(suppression.split_lines(text))
    if text in _UNSURE:
        assert scanned is None
    else:
        assert scanned is not None and tokenized is not None
        assert (scanned.line_end, scanned.comments) == (tokenized.line_end, tokenized.comments)


@pytest.mark.skipif(not suppression._SCAN_IS_EXACT, reason="from Python 3.12 the tokenizer itself is used")
def test_the_scan_for_comments_agrees_with_tokenize_on_every_fixture() -> None:
    root = Path(__file__).resolve().parent.parent
    checked = 0
    for path in sorted([*root.glob("fixtures/**/*.py"), *root.glob("src/loopsafe/**/*.py")]):
        text = path.read_text(encoding="utf-8")
        tokenized = suppression._token_map(suppression.split_lines(text))
        scanned = suppression._scanned_map(text)
        assert tokenized is not None and scanned is not None, path
        assert (scanned.line_end, scanned.comments) == (tokenized.line_end, tokenized.comments), path
        checked += 1
    assert checked > 200
