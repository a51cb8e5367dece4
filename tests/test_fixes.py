"""Autofix (loopsafe.fixes and `check --fix / --unsafe-fixes / --diff / --show-fixes`).

Golden fixtures: every ``fixtures/fixes/<name>.py`` has a ``<name>.fixed.py``, the expected
result of ``--fix --unsafe-fixes`` with the rules its ``# fix-select: CODES`` line names.
"""
from __future__ import annotations

import ast
import json
import re
import shutil
from collections import Counter
from pathlib import Path

import jsonschema
import libcst
import pytest
from click.testing import CliRunner, Result

from loopsafe import extract, fixes, ir
from loopsafe.cli import main
from loopsafe.model import Edit, Finding, Fix
from loopsafe.render import JSON_SCHEMA

FIXES_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "fixes"
BEFORE = sorted(p for p in FIXES_DIR.glob("*.py") if not p.name.endswith(".fixed.py"))


def run(*args: str, cwd: Path | None = None) -> Result:
    return CliRunner().invoke(main, ["check", "--isolated", "--no-cache", *args], catch_exceptions=False)


def selection(path: Path) -> str:
    m = re.search(r"^# fix-select: (\S+)$", path.read_text(encoding="utf-8"), re.M)
    assert m, f"{path.name}: add a `# fix-select: CODES` line"
    return m.group(1)


def findings(path: Path, select: str, *extra: str) -> list[dict]:
    result = run("--select", select, "--output-format", "json", *extra, str(path))
    return json.loads(result.stdout)


# --------------------------------------------------------------------------- golden fixtures


def test_every_golden_fixture_has_its_pair() -> None:
    names = {p.name for p in FIXES_DIR.glob("*.py")}
    assert BEFORE
    for before in BEFORE:
        assert before.name[:-3] + ".fixed.py" in names, f"{before.name} has no .fixed.py"
    for name in names:
        if name.endswith(".fixed.py"):
            assert name[: -len(".fixed.py")] + ".py" in names, f"{name} has no before file"


@pytest.mark.parametrize("before", BEFORE, ids=[p.stem for p in BEFORE])
def test_golden_fix(before: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    select = selection(before)
    target = tmp_path / before.name
    shutil.copyfile(before, target)
    had = findings(target, select)
    fixed_codes = Counter(f["code"] for f in had if f["fix"] is not None)
    unfixable = Counter(f["code"] for f in had if f["fix"] is None)
    assert fixed_codes, f"{before.name}: nothing to fix"

    run("--select", select, "--fix", "--unsafe-fixes", str(target))
    expected = before.with_name(before.name[:-3] + ".fixed.py").read_bytes()
    assert target.read_bytes() == expected
    text = target.read_text(encoding="utf-8")
    compile(text, str(target), "exec")
    libcst.parse_module(text)

    after = findings(target, select)
    assert all(f["fix"] is None for f in after), "fixable findings remain after --fix"
    left = Counter(f["code"] for f in after)
    for code in fixed_codes:
        assert left[code] <= unfixable[code], f"{code} still reported after its fix"

    again = run("--select", select, "--fix", "--unsafe-fixes", str(target))
    assert target.read_bytes() == expected, "a second --fix changed the file"
    assert "Fixed" not in again.output


def test_safe_fixes_only_without_unsafe_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "app.py"
    shutil.copyfile(FIXES_DIR / "async_to_def.py", target)
    result = run("--select", "LOOP1", "--fix", str(target))
    assert target.read_bytes() == (FIXES_DIR / "async_to_def.py").read_bytes()  # all unsafe
    assert result.exit_code == 1
    assert "hidden fixes can be enabled with the `--unsafe-fixes` option" in result.output


def test_unsafe_fixes_config_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.loopsafe]\nunsafe-fixes = true\n", encoding="utf-8")
    shutil.copyfile(FIXES_DIR / "async_to_def.py", tmp_path / "app.py")
    CliRunner().invoke(main, ["check", "--no-cache", "--select", "LOOP1", "--fix", "app.py"])
    assert (tmp_path / "app.py").read_bytes() == (FIXES_DIR / "async_to_def.fixed.py").read_bytes()


def test_no_unsafe_fixes_flag_overrides_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.loopsafe]\nunsafe-fixes = true\n", encoding="utf-8")
    shutil.copyfile(FIXES_DIR / "async_to_def.py", tmp_path / "app.py")
    CliRunner().invoke(main, ["check", "--no-cache", "--select", "LOOP1", "--fix", "--no-unsafe-fixes", "app.py"])
    assert (tmp_path / "app.py").read_bytes() == (FIXES_DIR / "async_to_def.py").read_bytes()


@pytest.mark.parametrize("config, fixed", [
    ('unfixable = ["LOOP105"]', False),
    ('fixable = ["LOOP3"]', False),
    ('fixable = ["LOOP1"]\nunfixable = ["LOOP10"]', False),
    ('fixable = ["LOOP1"]', True),
])
def test_fixable_and_unfixable(config: str, fixed: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(f"[tool.loopsafe]\n{config}\n", encoding="utf-8")
    shutil.copyfile(FIXES_DIR / "async_to_def.py", tmp_path / "app.py")
    CliRunner().invoke(main, ["check", "--no-cache", "--select", "LOOP105", "--fix", "--unsafe-fixes", "app.py"])
    changed = (tmp_path / "app.py").read_bytes() != (FIXES_DIR / "async_to_def.py").read_bytes()
    assert changed is fixed
    shutil.copyfile(FIXES_DIR / "async_to_def.py", tmp_path / "other.py")
    out = CliRunner().invoke(main, ["check", "--no-cache", "--select", "LOOP105", "--output-format", "json",
                                    "other.py"]).stdout
    payload = json.loads(out)
    assert payload and all((f["fix"] is not None) is fixed for f in payload)


@pytest.mark.parametrize("config, key", [
    ("unsafe-fixes = 1", "unsafe-fixes"),
    ('fixable = "LOOP1"', "fixable"),
    ('unfixable = ["LOOP9"]', "unfixable"),
    ("fixables = []", "fixables"),
])
def test_bad_fix_config_exits_2_naming_the_key(config: str, key: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(f"[tool.loopsafe]\n{config}\n", encoding="utf-8")
    (tmp_path / "app.py").write_text("x = 1\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["check", "--no-cache", "app.py"])
    assert result.exit_code == 2
    assert key in result.output


# --------------------------------------------------------------------------- --diff, --show-fixes


def test_diff_prints_changes_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copyfile(FIXES_DIR / "expire_on_commit.py", tmp_path / "app.py")
    before = (tmp_path / "app.py").read_bytes()
    result = run("--select", "LOOP302", "--diff", "app.py")
    assert result.exit_code == 1
    assert (tmp_path / "app.py").read_bytes() == before
    assert result.stdout.startswith("--- app.py\n+++ app.py\n@@ ")
    assert "+SessionLocal = async_sessionmaker(engine, expire_on_commit=False)\n" in result.stdout
    assert "-SessionLocal = async_sessionmaker(engine)\n" in result.stdout
    assert "Would fix 5 findings." in result.stderr


def test_diff_exits_0_when_nothing_would_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copyfile(FIXES_DIR / "expire_on_commit.fixed.py", tmp_path / "app.py")
    result = run("--select", "LOOP302", "--diff", "app.py")
    assert result.exit_code == 0
    assert result.stdout == ""
    # unsafe fixes are not in the diff without --unsafe-fixes
    shutil.copyfile(FIXES_DIR / "async_to_def.py", tmp_path / "app.py")
    assert run("--select", "LOOP1", "--diff", "app.py").exit_code == 0
    assert run("--select", "LOOP1", "--diff", "--unsafe-fixes", "app.py").exit_code == 1


def test_show_fixes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copyfile(FIXES_DIR / "expire_on_commit.py", tmp_path / "app.py")
    listed = run("--select", "LOOP302", "--show-fixes", "app.py")
    assert "5 fixable findings:\n- app.py:\n    5 \u00d7 LOOP302 (" in listed.stdout
    applied = run("--select", "LOOP302", "--fix", "--show-fixes", "app.py")
    assert "Fixed 5 findings:\n- app.py:\n    5 \u00d7 LOOP302 (" in applied.stdout
    assert "Fixed 5 findings." in applied.stdout
    assert applied.exit_code == 1  # `expire_on_commit=True` is left for the user


def test_fix_and_diff_refuse_stdin_and_noqa() -> None:
    assert CliRunner().invoke(main, ["check", "--fix", "-"], input="x = 1\n").exit_code == 2
    assert CliRunner().invoke(main, ["check", "--diff", "--add-noqa", "."]).exit_code == 2


# --------------------------------------------------------------------------- output


def test_fixable_findings_are_marked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copyfile(FIXES_DIR / "expire_on_commit.py", tmp_path / "app.py")
    concise = run("--select", "LOOP302", "--output-format", "concise", "app.py").stdout
    marked = [line for line in concise.splitlines() if " LOOP302 [*] " in line]
    plain = [line for line in concise.splitlines() if " LOOP302 `" in line]
    assert len(marked) == 5 and len(plain) == 1  # the explicit `expire_on_commit=True` has no fix
    assert "[*] 5 fixable with the `--fix` option." in concise
    full = run("--select", "LOOP302", "app.py").stdout
    assert full.count(" LOOP302 [*] ") == 5
    # unsafe fixes are marked only with --unsafe-fixes
    shutil.copyfile(FIXES_DIR / "async_to_def.py", tmp_path / "app.py")
    assert "[*]" not in run("--select", "LOOP105", "--output-format", "concise", "app.py").stdout.splitlines()[0]
    assert " LOOP105 [*] " in run("--select", "LOOP105", "--output-format", "concise", "--unsafe-fixes",
                                  "app.py").stdout


def test_json_fix_objects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copyfile(FIXES_DIR / "async_to_def.py", tmp_path / "app.py")
    payload = json.loads(run("--select", "LOOP1", "--output-format", "json", "app.py").stdout)
    jsonschema.validate(payload, JSON_SCHEMA)
    to_def = next(f for f in payload if f["code"] == "LOOP105")
    assert list(to_def) == ["code", "message", "path", "line", "column", "end_line", "end_column",
                            "fix_title", "chain", "fix"]
    assert to_def["fix"] == {
        "applicability": "unsafe",
        "message": "Declare it with `def` (FastAPI will run it in a threadpool)",
        "edits": [{"content": "", "location": {"row": 16, "column": 1}, "end_location": {"row": 16, "column": 7}}],
    }
    # the outermost iterable of a comprehension is evaluated by the function itself: `await` is legal there
    outermost = next(f for f in payload if f["code"] == "LOOP101" and f["line"] == 32)
    assert outermost["fix"]["edits"][0]["content"] == "await run_in_threadpool(lambda: list(db.query(int)))"


# --------------------------------------------------------------------------- application


def test_fix_that_would_not_parse_leaves_file_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copyfile(FIXES_DIR / "expire_on_commit.py", tmp_path / "app.py")
    before = (tmp_path / "app.py").read_bytes()

    def broken(ctx: fixes.FixContext) -> Fix:
        return Fix(fixes.SAFE, "break it", (fixes.replace(ctx.source, ctx.start, ctx.start, "(("),))

    monkeypatch.setitem(fixes.FIXERS, "LOOP302", broken)
    result = run("--select", "LOOP302", "--fix", "app.py")
    assert (tmp_path / "app.py").read_bytes() == before
    assert "error: app.py: fixes not applied, the result would not parse" in result.stderr
    assert result.exit_code == 1
    diff = run("--select", "LOOP302", "--diff", "app.py")
    assert diff.stdout == "" and "would not parse" in diff.stderr and diff.exit_code == 1


def _finding(code: str, *edits: Edit, applicability: str = fixes.SAFE, line: int = 1) -> Finding:
    return Finding(code, "m", "a.py", line, 1, line, 2, "", fix=Fix(applicability, "f", tuple(edits)))


def test_overlapping_fixes_are_applied_one_per_pass() -> None:
    text = "a = f(g(x))\n"
    outer = _finding("LOOP101", Edit(1, 5, 1, 12, "F(g(x))"))
    inner = _finding("LOOP101", Edit(1, 7, 1, 11, "G(x)"), line=1)
    new, applied = fixes.apply_fixes(text, [outer, inner])
    assert len(applied) == 1
    assert new in ("a = F(g(x))\n", "a = f(G(x))\n")


def test_identical_edits_are_shared() -> None:
    text = "import os\nx = a\ny = b\n"
    imp = Edit(1, 10, 1, 10, "\nimport sys")
    first = _finding("LOOP101", Edit(2, 5, 2, 6, "A"), imp, line=2)
    second = _finding("LOOP101", Edit(3, 5, 3, 6, "B"), imp, line=3)
    new, applied = fixes.apply_fixes(text, [first, second])
    assert new == "import os\nimport sys\nx = A\ny = B\n"
    assert len(applied) == 2


def test_crlf_and_bom_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = (FIXES_DIR / "threadpool_existing_import.py").read_text(encoding="utf-8")
    (tmp_path / "app.py").write_bytes(("\ufeff" + text.replace("\n", "\r\n")).encode("utf-8"))
    run("--select", "LOOP101", "--fix", "--unsafe-fixes", "app.py")
    expected = (FIXES_DIR / "threadpool_existing_import.fixed.py").read_text(encoding="utf-8")
    assert (tmp_path / "app.py").read_bytes() == ("\ufeff" + expected.replace("\n", "\r\n")).encode("utf-8")


def test_wrap_conflicts_with_async_to_def() -> None:
    to_def = _finding("LOOP105", Edit(1, 1, 1, 7, ""), applicability=fixes.UNSAFE)
    wrap = _finding("LOOP101", Edit(2, 5, 2, 6, "x"), applicability=fixes.UNSAFE)
    other = Finding("LOOP101", "m", "a.py", 9, 1, 9, 2, "", function="other", fix=wrap.fix)
    assert fixes.drop_conflicting([to_def, wrap, other]) == [to_def, other]


def test_is_fixable_longest_prefix_wins() -> None:
    assert fixes.is_fixable("LOOP101", None, ())
    assert not fixes.is_fixable("LOOP101", None, ("LOOP1",))
    assert fixes.is_fixable("LOOP101", ("LOOP101",), ("LOOP1",))
    assert not fixes.is_fixable("LOOP302", ("LOOP1",), ())


# --------------------------------------------------------------------------- fixers on hand-built contexts


def _anchor(text: str) -> tuple[int, int]:
    return extract._import_anchor(ast.parse(text).body)


def _ctx(code: str, text: str, needle: str, *, kind: str = ir.CALL, message: str = "m",
         imports: tuple = ()) -> fixes.FixContext:
    source = fixes.Source(text)
    start = text.index(needle)
    line, col = source.position(start)
    end_line, end_col = source.position(start + len(needle))
    site = ir.Site(0, kind, "", None)
    module = ir.ModuleIR("a.py", "a", False, imports, (), (), (), (), (site,), None, ((line, col, end_line, end_col),),
                         import_anchor=_anchor(text))
    return fixes.FixContext(code, message, "", module, site, (line, col, end_line, end_col), source)


def _apply(ctx: fixes.FixContext) -> str:
    fix = fixes.compute_fix(ctx)
    assert fix is not None
    new, _ = fixes.apply_fixes(ctx.source.text, [Finding(ctx.code, "m", "a.py", 1, 1, 1, 1, "", fix=fix)])
    ast.parse(new)
    return new


def test_expire_on_commit_layouts() -> None:
    one = "f = async_sessionmaker(engine, autoflush=False,)\n"
    assert _apply(_ctx("LOOP302", one, one[4:-1])) == "f = async_sessionmaker(engine, autoflush=False, expire_on_commit=False,)\n"
    multi = "f = async_sessionmaker(\n    bind=make(\n        url,\n    ),  # the engine\n)\n"
    assert _apply(_ctx("LOOP302", multi, multi[4:-1])) == (
        "f = async_sessionmaker(\n    bind=make(\n        url,\n    ),  # the engine\n    expire_on_commit=False,\n)\n")
    comment = "f = async_sessionmaker(\n    engine  # the engine\n)\n"
    assert _apply(_ctx("LOOP302", comment, comment[4:-1])) == (
        "f = async_sessionmaker(\n    engine,  # the engine\n    expire_on_commit=False\n)\n")
    starred = "f = async_sessionmaker(engine, **options)\n"
    assert fixes.compute_fix(_ctx("LOOP302", starred, starred[4:-1])) is None


def test_asgi_transport_unit() -> None:
    text = "from httpx import AsyncClient\nc = AsyncClient(app=make_app(), base_url='x')\n"
    ctx = _ctx("LOOP501", text, "AsyncClient(app=make_app(), base_url='x')", message="to httpx `AsyncClient`",
               imports=(("AsyncClient", "httpx.AsyncClient"),))
    assert _apply(ctx) == ("from httpx import AsyncClient\nfrom httpx import ASGITransport\n"
                           "c = AsyncClient(transport=ASGITransport(app=make_app()), base_url='x')\n")
    text = "c = AsyncClient(app=app, transport=t)\n"
    assert fixes.compute_fix(_ctx("LOOP501", text, text[4:-1], message="`AsyncClient`")) is None


def test_async_driver_unit() -> None:
    text = 'e = create_async_engine(f"postgresql://{user}@db/app")\n'
    assert _apply(_ctx("LOOP303", text, text[4:-1])) == 'e = create_async_engine(f"postgresql+asyncpg://{user}@db/app")\n'
    text = "e = create_async_engine(url)\n"
    assert fixes.compute_fix(_ctx("LOOP303", text, text[4:-1])) is None


def test_import_is_inserted_after_docstring_or_at_top() -> None:
    source = fixes.Source('"""Doc."""\n\nx = 1\n')
    edit = fixes._import_edit(source, "from m import n", _anchor(source.text))
    new, _ = fixes.apply_fixes(source.text, [_finding("LOOP101", edit)])
    assert new == '"""Doc."""\nfrom m import n\n\nx = 1\n'
    source = fixes.Source("#!/usr/bin/env python\nx = 1\n")
    new, _ = fixes.apply_fixes(source.text, [_finding("LOOP101", fixes._import_edit(source, "from m import n", _anchor(source.text)))])
    assert new == "#!/usr/bin/env python\nfrom m import n\nx = 1\n"


@pytest.mark.parametrize("kind, awaits", [
    ("sqlalchemy.AsyncSession", True), ("sqlalchemy.AsyncConnection", True), ("psycopg.AsyncConnection", True),
    ("sqlalchemy.Session", False), ("sqlalchemy.Connection", False), ("sqlite3.Connection", False),
    ("psycopg2.Connection", False), ("", None), ("no.SuchKind", None),
])
def test_return_to_yield_awaits_close_by_kind(kind: str, awaits: bool | None) -> None:
    # the golden pairs return_async_session / return_sync_session_in_async_def show it end to end
    assert fixes._close_awaits(kind) is awaits  # noqa: SLF001
