"""Output formats (loopsafe.render): pure functions of hand-built findings."""
from __future__ import annotations

import io
import json
from pathlib import Path

import jsonschema
import pytest

from loopsafe import render
from loopsafe.model import Finding, Frame, ParseError, Report

FIX = "Declare the function with `def`"

API = """\
from fastapi import Depends

@app.get("/users/{id}")
async def read_user(id: int, db: Session = Depends(get_db)):
    return db.query(User).all()
"""


def chained() -> Finding:
    return Finding(
        code="LOOP103",
        message="`get_users()` blocks the event loop",
        path="app/api.py",
        line=5,
        column=12,
        end_line=5,
        end_column=32,
        fix_title=FIX,
        chain=(
            Frame("app/api.py", 5, "read_user", "get_users(db)"),
            Frame("app/crud.py", 20, "get_users", "db.query(User).all()"),
        ),
        function="read_user",
        route="GET /users/{id}",
    )


def simple(path: str = "app/api.py", line: int = 5, code: str = "LOOP101") -> Finding:
    return Finding(code, "blocking call", path, line, 12, line, 32, FIX)


def report(*findings: Finding, errors: tuple[ParseError, ...] = ()) -> Report:
    return Report(findings=tuple(findings), parse_errors=errors, files_checked=3)


SYNTAX = ParseError("app/broken.py", 3, 7, "SyntaxError: invalid syntax")


def plain(text) -> str:
    return text.plain


# --------------------------------------------------------------------------- full


def test_full_format_pinned() -> None:
    out = plain(render.format_full(report(chained()), {"app/api.py": API}))
    assert out == (
        "app/api.py:5:12: LOOP103 `get_users()` blocks the event loop\n"
        "5 |     return db.query(User).all()\n"
        "  |            ^^^^^^^^^^^^^^^^^^^^\n"
        f"  help: {FIX}\n"
        "  -> app/api.py:5 read_user -> get_users(db)\n"
        "  -> app/crud.py:20 get_users -> db.query(User).all()\n"
        "  reached from GET /users/{id}\n"
        "\n"
        "Found 1 finding in 1 file.\n"
    )


def test_full_format_without_source_text_or_chain() -> None:
    out = plain(render.format_full(report(simple()), {}))
    assert out == (
        "app/api.py:5:12: LOOP101 blocking call\n"
        f"  help: {FIX}\n"
        "\n"
        "Found 1 finding in 1 file.\n"
    )


def test_full_format_parse_errors_and_summary() -> None:
    out = plain(render.format_full(report(simple(), simple("b.py")), {}, show_summary=True))
    assert out.endswith("\nFound 2 findings in 2 files.\n")
    out = plain(render.format_full(report(simple(), errors=(SYNTAX,)), {}))
    assert "app/broken.py:3:7: E999 SyntaxError: invalid syntax\n" in out
    assert out.endswith("Found 1 finding in 1 file.\n1 file could not be parsed.\n")
    assert plain(render.format_full(report(), {})) == "All checks passed.\n"
    # parse errors alone are not "all checks passed"
    assert plain(render.format_full(report(errors=(SYNTAX,)), {})).endswith("\n\n1 file could not be parsed.\n")


def test_quiet_full_format_has_no_summary() -> None:
    assert "Found" not in plain(render.format_full(report(simple()), {}, show_summary=False))
    assert plain(render.format_full(report(), {}, show_summary=False)) == ""


def test_caret_spans_the_first_line_of_a_multiline_range() -> None:
    source = "x = call(\n    arg,\n)\n"
    finding = Finding("LOOP101", "m", "a.py", 1, 5, 3, 2, "")
    out = plain(render.format_full(report(finding), {"a.py": source}, show_summary=False))
    assert out.splitlines()[1:] == ["1 | x = call(", "  |     ^^^^^"]


def test_caret_alignment_with_tabs_and_wide_characters() -> None:
    source = "\tname = '日本'; db.commit()\n"
    start = source.index("db.") + 1
    finding = Finding("LOOP101", "m", "a.py", 1, start, 1, start + len("db.commit()"), "")
    lines = plain(render.format_full(report(finding), {"a.py": source}, show_summary=False)).splitlines()
    code_line, caret_line = lines[1], lines[2]
    # each CJK character takes two terminal cells: the carets must still sit under "db.commit()"
    assert code_line == "1 |     name = '日本'; db.commit()"
    assert caret_line == "  |" + " " * (1 + 4 + len("name = '日本'; ") + 2) + "^" * len("db.commit()")


def test_caret_is_at_least_one_wide_and_clamped() -> None:
    finding = Finding("LOOP101", "m", "a.py", 1, 40, 1, 40, "")
    lines = plain(render.format_full(report(finding), {"a.py": "short\n"}, show_summary=False)).splitlines()
    assert lines[2] == "  |      ^"  # just past the end of "short"


def test_line_numbers_follow_python_not_str_splitlines() -> None:
    # a form feed is not a line break for Python, so line 2 is "target"
    source = "a = 1\x0cb = 2\ntarget()\n"
    finding = Finding("LOOP101", "m", "a.py", 2, 1, 2, 7, "")
    lines = plain(render.format_full(report(finding), {"a.py": source}, show_summary=False)).splitlines()
    assert lines[1] == "2 | target()"


def test_control_characters_cannot_reach_the_terminal() -> None:
    source = "x = '\x1b[31mred'; db.commit()\n"
    finding = Finding("LOOP101", "msg \x1b[2J", "a.py", 1, 1, 1, 2, "")
    out = plain(render.format_full(report(finding), {"a.py": source}, show_summary=False))
    assert "\x1b" not in out
    assert "\u241b[31mred" in out


def test_multiline_frame_code_is_shown_on_one_line() -> None:
    finding = Finding("LOOP103", "m", "a.py", 1, 1, 1, 2, "", chain=(Frame("b.py", 3, "", "f(\n    x,\n)"),))
    out = plain(render.format_full(report(finding), {}, show_summary=False))
    assert "  -> b.py:3 <module> -> f( x, )\n" in out


# --------------------------------------------------------------------------- concise


def test_concise_format() -> None:
    out = plain(render.format_concise(report(simple("b.py", 2), simple("a.py", 9, "LOOP105"), errors=(SYNTAX,))))
    assert out == (
        "a.py:9:12: LOOP105 blocking call\n"
        "b.py:2:12: LOOP101 blocking call\n"
        "app/broken.py:3:7: E999 SyntaxError: invalid syntax\n"
        "Found 2 findings in 2 files.\n"
        "1 file could not be parsed.\n"
    )
    quiet = render.format_concise(report(simple()), show_summary=False)
    assert plain(quiet) == "app/api.py:5:12: LOOP101 blocking call\n"
    assert plain(render.format_concise(report())) == "All checks passed.\n"


# --------------------------------------------------------------------------- json

#: The JSON contract. Changing it breaks users' CI integrations: bump deliberately.
JSON_KEYS = ["code", "message", "path", "line", "column", "end_line", "end_column", "fix_title", "chain", "fix"]
CHAIN_KEYS = ["path", "line", "function"]


def test_json_schema_is_pinned(tmp_path: Path) -> None:
    cwd = str(tmp_path)
    payload = json.loads(render.format_json(report(chained(), errors=(SYNTAX,)), cwd))
    assert payload == [
        {
            "code": "LOOP103",
            "message": "`get_users()` blocks the event loop",
            "path": "app/api.py",
            "line": 5,
            "column": 12,
            "end_line": 5,
            "end_column": 32,
            "fix_title": FIX,
            "chain": [
                {"path": "app/api.py", "line": 5, "function": "read_user"},
                {"path": "app/crud.py", "line": 20, "function": "get_users"},
            ],
            "fix": None,
        }
    ]
    assert list(payload[0]) == JSON_KEYS  # key order is part of "stable"
    assert list(payload[0]["chain"][0]) == CHAIN_KEYS
    jsonschema.validate(payload, render.JSON_SCHEMA)
    assert render.JSON_SCHEMA["items"]["required"] == JSON_KEYS
    assert render.JSON_SCHEMA["items"]["properties"]["chain"]["items"]["required"] == CHAIN_KEYS


def test_json_schema_rejects_extra_keys() -> None:
    item = render.finding_to_json(simple(), "/")
    item["route"] = "GET /"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([item], render.JSON_SCHEMA)


def test_json_paths_relative_below_cwd_else_absolute(tmp_path: Path) -> None:
    cwd = tmp_path / "project"
    inside = str(cwd / "app" / "api.py")
    outside = str(tmp_path / "lib" / "x.py")
    finding = Finding("LOOP101", "m", inside, 1, 1, 1, 2, "", chain=(Frame(outside, 4, "f"),))
    [item] = json.loads(render.format_json(report(finding), str(cwd)))
    assert item["path"] == "app/api.py"
    assert item["chain"][0]["path"] == Path(outside).as_posix()
    assert Path(item["chain"][0]["path"]).is_absolute()


def test_json_is_sorted_and_excludes_parse_errors() -> None:
    payload = json.loads(render.format_json(report(simple("b.py"), simple("a.py"), errors=(SYNTAX,)), "/"))
    assert [item["path"] for item in payload] == ["a.py", "b.py"]
    assert json.loads(render.format_json(report(errors=(SYNTAX,)), "/")) == []


def test_json_keeps_unicode_readable() -> None:
    finding = Finding("LOOP101", "café", "a.py", 1, 1, 1, 2, "")
    assert "café" in render.format_json(report(finding), "/")


# --------------------------------------------------------------------------- statistics


def test_statistics() -> None:
    rep = report(simple(), simple("b.py"), simple(code="LOOP105"), errors=(SYNTAX,))
    names = {"LOOP101": "sync-db-call-in-async-function", "LOOP105": "async-endpoint-without-await"}
    assert plain(render.format_statistics(rep, names)) == (
        "2  LOOP101  sync-db-call-in-async-function\n"
        "1  E999     parse-error\n"
        "1  LOOP105  async-endpoint-without-await\n"
    )
    assert json.loads(render.format_statistics_json(rep, names))[0] == {
        "code": "LOOP101", "name": "sync-db-call-in-async-function", "count": 2,
    }
    assert plain(render.format_statistics(report(), names)) == ""


# --------------------------------------------------------------------------- colour


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("tty", "env", "expected"),
    [
        (False, {}, False),
        (True, {}, True),
        (True, {"NO_COLOR": "1"}, False),
        (True, {"NO_COLOR": ""}, True),  # NO_COLOR counts only when non-empty
        (False, {"FORCE_COLOR": "1"}, True),
        (False, {"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),
    ],
)
def test_use_color(tty: bool, env: dict[str, str], expected: bool) -> None:
    stream = FakeTTY() if tty else io.StringIO()
    assert render.use_color(stream, env) is expected


def emitted(color: bool) -> str:
    stream = io.StringIO()
    render.emit(stream, render.format_full(report(chained()), {"app/api.py": API}), color=color)
    return stream.getvalue()


def test_no_escape_sequences_without_colour() -> None:
    out = emitted(False)
    assert "\x1b" not in out
    assert out == plain(render.format_full(report(chained()), {"app/api.py": API}))


def test_colour_output_and_no_wrapping() -> None:
    out = emitted(True)
    assert "\x1b[" in out
    long = Finding("LOOP101", "x" * 300, "a.py", 1, 1, 1, 2, "")
    stream = io.StringIO()
    render.emit(stream, render.format_concise(report(long), show_summary=False), color=False)
    assert stream.getvalue() == f"a.py:1:1: LOOP101 {'x' * 300}\n"  # not wrapped at 80 columns


def test_styled_text_draws_as_the_rich_text_it_stands_for() -> None:
    from rich.console import Console
    from rich.text import Text

    def drawn(text) -> str:
        stream = io.StringIO()
        Console(file=stream, color_system="standard", force_terminal=True).print(text, soft_wrap=True)
        return stream.getvalue()

    inner = render.Styled("summary\n", style="bold")
    styled = render.Styled("\n").join([
        render.Styled.assemble(("a.py:1:2:", "bold"), " ", ("LOOP101", "bold red"), " message"),
        render.Styled.assemble("x ", inner).append("trail", "dim"),
    ])
    rich_inner = Text("summary\n", style="bold")
    rich_text = Text("\n").join([
        Text.assemble(("a.py:1:2:", "bold"), " ", ("LOOP101", "bold red"), " message"),
        Text.assemble("x ", rich_inner).append("trail", "dim"),
    ])
    assert styled.plain == rich_text.plain
    assert drawn(styled.to_rich()) == drawn(rich_text)
    assert "\x1b[1;31mLOOP101" in drawn(styled.to_rich())


# --------------------------------------------------------------------------- paths for CI formats


def test_ci_paths_are_relative_to_the_root_else_absolute(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    cwd = root / "backend"
    assert render.ci_path("app/api.py", str(cwd), str(root)) == "backend/app/api.py"
    assert render.ci_path("../tools/x.py", str(cwd), str(root)) == "tools/x.py"
    outside = str(tmp_path / "elsewhere" / "y.py")
    assert render.root_relative(outside, str(cwd), str(root)) is None
    assert render.ci_path(outside, str(cwd), str(root)) == Path(outside).as_posix()
    assert render.root_relative("../../repo2/z.py", str(cwd), str(root)) is None  # a sibling, not below


def test_json_lines_is_sorted_like_json() -> None:
    out = render.format_json_lines(report(simple("b.py"), simple("a.py"), errors=(SYNTAX,)), "/")
    assert [json.loads(line)["path"] for line in out.splitlines()] == ["a.py", "b.py"]
    assert out.endswith("\n") and "\n\n" not in out
