"""Files written for a newer Python than the one running loopsafe are analysed, not skipped.

`loopsafe.newer_syntax` rewrites what the running interpreter refuses (type parameters,
`type` statements, PEP 701 f-strings, `except*`) line for line; these tests pin that lines
and columns stay where they were, so findings point at the original code.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from loopsafe import engine, newer_syntax
from loopsafe.model import Options, SourceFile

NEWER = '''\
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.orm import Session

app = FastAPI()
type Rows = list[dict]


class Repo[T]:
    def __init__(self, db: Session):
        self.db = db

    def get(self, key: dict) -> T:
        return self.db.execute(text(f"select * from t where k = '{key["x"]}'")).first()


def first[T: (int, str)](
    items: list[T],
) -> T:
    return items[0]


@app.get("/x")
async def read(db: Session, key: dict):
    label = f"{key["name"]}: {key[
        "v"]} {f"{key["inner"]}"}"
    row = Repo(db).get(key)
    db.execute(text(f"select {key["col"]} from t")); db.commit()
    return row, label
'''


def _needs_rewrite(text: str) -> bool:
    try:
        ast.parse(text)
    except SyntaxError:
        return True
    return False


def test_rewrite_parses_here_and_keeps_lines_and_columns() -> None:
    older = newer_syntax.rewrite(NEWER)
    if not _needs_rewrite(NEWER):
        pytest.skip("this Python parses the file itself")
    assert older is not None
    ast.parse(older)
    new_lines, old_lines = older.splitlines(), NEWER.splitlines()
    assert len(new_lines) == len(old_lines)
    # every line keeps its length, except `type Rows = ...` (it loses its keyword) and the
    # first line of the f-string that spans two (its literal text is gone)
    changed = [i + 1 for i, (a, b) in enumerate(zip(old_lines, new_lines)) if len(a) != len(b)]
    assert changed == [6, 25], changed
    commit = old_lines[27].index("db.commit()")
    assert new_lines[27].index("db.commit()") == commit
    assert "class Repo   :" in older and "def first               (" in older


def test_a_file_in_newer_syntax_is_analysed_with_its_own_positions(tmp_path: Path) -> None:
    report = engine.check_files([SourceFile("app.py", NEWER)], Options(select=("LOOP1",), ignore=("LOOP105",)),
                                str(tmp_path))
    assert report.parse_errors == ()
    got = {(f.code, f.line, f.column) for f in report.findings}
    assert ("LOOP103", 27, 11) in got  # `Repo(db).get(key)`: a chain into the generic class
    line28 = NEWER.splitlines()[27]
    assert ("LOOP101", 28, line28.index("db.commit()") + 1) in got
    assert ("LOOP101", 28, line28.index("db.execute") + 1) in got
    execute = next(f for f in report.findings if f.line == 28 and f.column == line28.index("db.execute") + 1)
    assert execute.message.startswith('`db.execute(text(f"select {key["col"]} from t"))`'), execute.message


@pytest.mark.parametrize("code", [
    "def f(:\n    pass\n",  # invalid in every grammar
    "x = 1 +\n",
])
def test_a_broken_file_is_not_rewritten(code: str) -> None:
    assert newer_syntax.rewrite(code) is None
    assert isinstance(engine.summarise(SourceFile("bad.py", code), "bad", False), engine.ParseError)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="this Python parses PEP 701 f-strings itself")
def test_an_fstring_this_python_reads_is_left_alone() -> None:
    code = 'a = f"{x!r:>{width}}"\nb = f"{d["k"]}"\n'
    older = newer_syntax.rewrite(code)
    assert older is not None
    first, second = older.splitlines()
    assert first == 'a = f"{x!r:>{width}}"'
    assert second.startswith('b = _f(d["k"]') and len(second) == len('b = f"{d["k"]}"')


def test_line_breaks_only_python_counts_do_not_shift_the_rewrite() -> None:
    # a form feed inside a string is a line break to str.splitlines, not to Python
    code = 'x = "a\x0cb"\ntype R = list[int]\ny = 1\n'
    older = newer_syntax.rewrite(code)
    if not _needs_rewrite(code):
        pytest.skip("this Python parses the file itself")
    assert older == 'x = "a\x0cb"\nR = list[int]\ny = 1\n'



def test_a_file_in_newer_syntax_is_offered_no_fix(tmp_path: Path) -> None:
    # this Python cannot check that a fixed file parses: `--fix` would refuse every fix
    body = ("from fastapi import FastAPI\nfrom sqlalchemy import create_engine\n\n{alias}app = FastAPI()\n"
            "engine = create_engine('sqlite://')\n\n\ndef load():\n    with engine.connect() as c:\n"
            "        return c.execute('select 1')\n\n\n@app.get('/')\nasync def root():\n    return load()\n")
    newer = body.format(alias="type Alias = int\n\n")
    if not _needs_rewrite(newer):
        pytest.skip("this Python parses the file itself")
    plain = engine.check_files([SourceFile("app.py", body.format(alias=""))], Options(), str(tmp_path))
    assert any(f.fix is not None for f in plain.findings)  # wrapping the call needs an import
    report = engine.check_files([SourceFile("app.py", newer)], Options(), str(tmp_path))
    assert {f.code for f in report.findings} == {f.code for f in plain.findings}
    assert all(f.fix is None for f in report.findings)


PEP758 = '''\
from sqlalchemy import text
from sqlalchemy.orm import Session


async def read(db: Session):
    try:
        row = db.execute(text("select 1")).first()
    except ValueError, TypeError:
        row = None
    db.commit()
    return row
'''


def test_exception_types_without_parentheses_are_read() -> None:
    # Python 3.14 (PEP 758) drops the parentheses: polar's 27 such files were not analysed
    if not _needs_rewrite(PEP758):
        pytest.skip("this Python parses the file itself")
    older = newer_syntax.rewrite(PEP758)
    assert older is not None and "    except (ValueError, TypeError):\n" in older
    assert len(older.splitlines()) == len(PEP758.splitlines())
    report = engine.check_files([SourceFile("app.py", PEP758)], Options(select=("LOOP101",)), ".")
    assert report.parse_errors == ()
    assert {(f.line, f.column) for f in report.findings} == {(7, 15), (10, 5)}
