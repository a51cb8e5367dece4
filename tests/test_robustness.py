"""loopsafe never falls over: bad, odd, huge and hostile inputs, through the CLI and the engine.

Each input sits in a small project next to a file with a known finding (`api.py`, LOOP102),
so every test also checks that the run goes on: the good file is still analysed.

Inputs that can take the whole process down (native stack overflow in the parser) or hang
it are run in a subprocess with a timeout, so they fail one test instead of the session.

Cases already covered elsewhere are not repeated: a plain syntax error and undecodable
bytes through the CLI, the latin-1 coding cookie, a nonexistent path and a TOML syntax
error (test_cli.py); the symlink-loop walk, directories named ``x.py``, FIFOs and
unlistable directories in discovery (test_discovery.py).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from loopsafe.cli import main

GOOD = """\
import sqlite3


async def handler():
    return sqlite3.connect("app.db")
"""
GOOD_FINDING = "api.py:5:12: LOOP102"
PY = sys.executable


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
    write(tmp_path, {"api.py": GOOD})
    monkeypatch.chdir(tmp_path)
    for name in ("NO_COLOR", "FORCE_COLOR", "LOOPSAFE_OUTPUT_FORMAT", "LOOPSAFE_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["check", "--no-cache", "--output-format", "concise", *args],
                              catch_exceptions=False)


def run_bounded(cmd: list[str], *, timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run `cmd` in its own process group; past `timeout`, kill the group (the engine may have
    forked parser workers) and fail the test."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NO_COLOR": "1"}, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        stdout = None
    if stdout is None:
        shown = " ".join(c if len(c) < 60 else c[:57] + "..." for c in cmd)
        pytest.fail(f"did not finish within {timeout:.0f} s: {shown}", pytrace=False)
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def run_isolated(cwd: Path, *args: str, timeout: float) -> subprocess.CompletedProcess:
    """`python -I -X faulthandler -m loopsafe check` in a subprocess: a crash or a hang fails the test,
    not the session (and a native crash prints the Python stack).
    (-I keeps the project directory off sys.path; see test_safety.py for why that matters.)"""
    command = [PY, "-I", "-X", "faulthandler", "-m", "loopsafe", "check", "--no-cache", "--output-format", "concise"]
    return run_bounded([*command, *args], timeout=timeout, cwd=cwd)


def reported(output: str) -> dict[str, str]:
    """`path -> rest of the line` for every finding or parse error in concise output."""
    out = {}
    for line in output.splitlines():
        path, sep, rest = line.partition(":")
        if sep and rest[:1].isdigit():
            out.setdefault(path, line)
    return out


def assert_run_went_on(output: str) -> None:
    assert GOOD_FINDING in output, f"the good file was not analysed:\n{output}"


# --------------------------------------------------------------------------- syntax and encodings


def test_syntax_error_is_reported_with_its_line_and_the_run_goes_on(project: Path) -> None:
    write(project, {"broken.py": "import os\n\n\ndef f(:\n    pass\n"})
    result = run()
    assert result.exit_code == 1
    assert reported(result.stdout)["broken.py"].startswith("broken.py:4:")
    assert " E999 SyntaxError" in result.stdout
    assert_run_went_on(result.stdout)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        pytest.param("nul_in_code", b"x = 1\ny = 2 \x00 + 3\n", id="nul_in_code"),
        pytest.param("nul_only", b"\x00\x00\x00", id="nul_only"),
        pytest.param("binary", bytes(range(256)) * 4, id="binary"),
        pytest.param("bad_cookie", b"# -*- coding: no-such-codec -*-\nx = 1\n", id="bad_cookie"),
        pytest.param("cookie_bom_conflict", b"\xef\xbb\xbf# coding: latin-1\nx = 1\n", id="cookie_bom_conflict"),
        pytest.param("utf16", "x = 'é'\n".encode("utf-16"), id="utf16"),
    ],
)
def test_undecodable_or_nul_bytes_are_a_parse_error(project: Path, name: str, data: bytes) -> None:
    write(project, {f"{name}.py": data})
    result = run()
    assert result.exit_code == 1
    line = reported(result.stdout).get(f"{name}.py", "")
    assert " E999 " in line, result.stdout
    assert_run_went_on(result.stdout)


def test_nul_byte_inside_a_string_does_not_crash(project: Path) -> None:
    # CPython refuses any NUL; LibCST may accept one in a literal: either way, no crash
    write(project, {"nul_str.py": b'x = "a\x00b"\n' + GOOD.encode()})
    result = run()
    assert result.exit_code == 1
    line = reported(result.stdout).get("nul_str.py", "")
    assert " E999 " in line or "LOOP102" in line


@pytest.mark.parametrize(
    ("name", "data", "where"),
    [
        pytest.param("bom", b"\xef\xbb\xbf" + GOOD.encode(), "5:12", id="bom"),
        # the BOM is not a column: the call starts at column 39 of the text
        pytest.param("bom_first_line", b'\xef\xbb\xbfasync def f(): import sqlite3; return sqlite3.connect("x")\n',
                     "1:39", id="bom_first_line"),
        pytest.param("crlf", GOOD.replace("\n", "\r\n").encode(), "5:12", id="crlf"),
        pytest.param("cr_only", GOOD.replace("\n", "\r").encode(), "5:12", id="cr_only"),
        pytest.param("mixed_newlines",
                     b'import sqlite3\r\n\n\rasync def handler():\r\n    return sqlite3.connect("app.db")\n',
                     "5:12", id="mixed_newlines"),
        pytest.param("no_final_newline", GOOD.rstrip("\n").encode(), "5:12", id="no_final_newline"),
        # columns count characters: "\treturn " is 8 of them
        pytest.param("tabs", GOOD.replace("    ", "\t").encode(), "5:9", id="tabs"),
        pytest.param("form_feed", b"\x0c" + GOOD.encode(), "5:12", id="form_feed"),
        pytest.param("latin1_cookie_crlf", b"# coding: latin-1\r\n# caf\xe9\r\n" + GOOD.replace("\n", "\r\n").encode(),
                     "7:12", id="latin1_cookie_crlf"),
    ],
)
def test_odd_encodings_and_newlines_are_analysed_at_the_right_place(
    project: Path, name: str, data: bytes, where: str
) -> None:
    write(project, {f"{name}.py": data})
    result = run()
    assert result.exit_code == 1
    assert reported(result.stdout).get(f"{name}.py", "").startswith(f"{name}.py:{where}: LOOP102"), result.stdout
    assert_run_went_on(result.stdout)


def test_inconsistent_tabs_are_a_syntax_error(project: Path) -> None:
    write(project, {"taberr.py": "def f():\n    if 1:\n        x = 1\n\ty = 2\n"})
    result = run()
    assert result.exit_code == 1
    line = reported(result.stdout)["taberr.py"]
    assert line.startswith("taberr.py:4:") and "E999" in line
    assert_run_went_on(result.stdout)


@pytest.mark.parametrize("content", [b"", b"\n", b"   \n\t\n", b"# only a comment", b"\xef\xbb\xbf", b"\r\n\r\n"],
                         ids=["empty", "newline", "blank", "comment", "bom_only", "crlf_only"])
def test_empty_and_blank_files(project: Path, content: bytes) -> None:
    write(project, {"empty.py": content, "pkg/__init__.py": b""})
    result = run()
    assert result.exit_code == 1  # the good file's finding
    assert "empty.py" not in result.stdout and "E999" not in result.stdout
    assert_run_went_on(result.stdout)
    alone = run("empty.py")
    assert alone.exit_code == 0, alone.stdout


# --------------------------------------------------------------------------- new syntax

NEW_SYNTAX = {
    "pep695_type_alias": "type Rows = list[tuple[int, str]]\ntype Pair[T] = tuple[T, T]\n",
    "pep695_generic_def": "def first[T](items: list[T]) -> T:\n    return items[0]\n\n\nclass Box[T]:\n    pass\n",
    "pep696_type_param_default": "def f[T = int](x: T) -> T:\n    return x\n",
    "match_statement": (
        "def f(cmd):\n    match cmd:\n        case {'op': 'get', 'id': int(i)}:\n            return i\n"
        "        case [first, *rest] if rest:\n            return first\n        case Point(x=0) | None:\n"
        "            return 0\n        case _:\n            return -1\n"
    ),
    "pep701_nested_fstrings": 'x = f"{f"{f"{1 + 1}"}"}"\ny = f"{"\\n".join(["a", "b"])}"\n',
    "pep758_except_without_parens": "try:\n    pass\nexcept ValueError, TypeError:\n    pass\n",
    "except_star": "try:\n    pass\nexcept* ValueError:\n    pass\n",
    "pep750_template_string": 'name = "x"\ngreeting = t"hello {name}"\n',
    "walrus_and_posonly": "def f(a, /, b, *, c):\n    if (n := len(a)) > 1:\n        return n\n",
}


@pytest.mark.parametrize("name", sorted(NEW_SYNTAX))
def test_newer_syntax_parses_or_is_reported_never_crashes(project: Path, name: str) -> None:
    """Python 3.12-3.14 syntax: analysed (the blocking call below it is found) or one E999."""
    source = NEW_SYNTAX[name] + "\n\n" + GOOD
    write(project, {f"{name}.py": source})
    result = run()
    assert result.exit_code == 1
    errors = [line for line in result.stdout.splitlines() if line.startswith(f"{name}.py:") and " E999 " in line]
    findings = [line for line in result.stdout.splitlines() if line.startswith(f"{name}.py:") and " LOOP102 " in line]
    assert (len(errors), len(findings)) in ((1, 0), (0, 1)), result.stdout
    assert_run_went_on(result.stdout)


# --------------------------------------------------------------------------- size and depth


def _generated_module(megabytes: float) -> str:
    block = textwrap.dedent('''
        def helper_{i}(db: Session, limit: int = {i}):
            """Helper number {i}."""
            rows = db.execute(text("SELECT * FROM t WHERE id = :id"), {{"id": {i}}}).all()
            return [r for r in rows if r[0] > limit]


        @app.get("/items/{i}")
        async def endpoint_{i}(db: Session = Depends(get_db)):
            data = {{"key_{i}": [1, 2, 3], "other": ("a", "b")}}
            return helper_{i}(db) + [data]
        ''')
    parts = ["from fastapi import Depends, FastAPI\nfrom sqlalchemy import text\nfrom sqlalchemy.orm import Session\n\n"
             "app = FastAPI()\n\n\ndef get_db():\n    yield Session()\n"]
    size, i = 0, 0
    while size < megabytes * 1024 * 1024:
        parts.append(block.format(i=i))
        size += len(parts[-1])
        i += 1
    return "".join(parts)


@pytest.mark.slow
def test_ten_megabyte_generated_file_finishes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    text = _generated_module(10)
    endpoints = text.count("async def endpoint_")
    write(tmp_path, {"big.py": text, "api.py": GOOD})
    start = time.perf_counter()
    proc = run_isolated(tmp_path, "--output-format", "json", "--quiet", ".", timeout=900)
    elapsed = time.perf_counter() - start
    with capsys.disabled():  # shown without -s: the time is the point of this test
        print(f"\n10 MB file: {len(text) / 1e6:.1f} MB, {text.count(chr(10)):,} lines, {endpoints:,} endpoints: "
              f"{elapsed:.1f} s")
    assert proc.returncode == 1, proc.stderr[-2000:]
    findings = json.loads(proc.stdout)
    big = [f for f in findings if f["path"] == "big.py"]
    # every async endpoint calls its blocking helper (LOOP103); none is lost to size
    assert sum(f["code"] == "LOOP103" for f in big) == endpoints
    assert any(f["path"] == "api.py" and f["code"] == "LOOP102" for f in findings)


DEEP = {
    # CPython itself refuses these (too many nested parentheses / recursion during AST
    # construction); loopsafe must say "too deeply nested" (or the syntax error) and go on
    "parens_2000": "x = " + "(" * 2000 + "1" + ")" * 2000 + "\n",
    "lists_1000": "x = " + "[" * 1000 + "]" * 1000 + "\n",
    "sum_50000_terms": "x = " + "+".join(["1"] * 50_000) + "\n",
    "attribute_chain_20000": "x = a" + ".b" * 20_000 + "\n",
    "call_chain_20000": "x = f" + "()" * 20_000 + "\n",
    "lambdas_500": "f = " + "lambda: " * 500 + "1\n",
    "blocks_101": "".join("    " * i + "if x:\n" for i in range(101)) + "    " * 101 + "pass\n",
}


@pytest.mark.parametrize("name", sorted(DEEP))
def test_pathologically_deep_code_is_reported_and_the_run_goes_on(tmp_path: Path, name: str) -> None:
    write(tmp_path, {f"{name}.py": DEEP[name], "api.py": GOOD})
    proc = run_isolated(tmp_path, ".", timeout=60)
    assert proc.returncode == 1, f"exit {proc.returncode}; stderr: {proc.stderr[-1500:]}"
    line = reported(proc.stdout).get(f"{name}.py", "")
    assert " E999 " in line and ("nested" in line.lower() or "indentation" in line), proc.stdout[-1500:]
    assert_run_went_on(proc.stdout)


def test_deep_but_valid_code_is_analysed(project: Path) -> None:
    """What CPython compiles, loopsafe analyses: nesting well inside the interpreter's limits
    must not cost the file's findings."""
    deep = {
        "parens_150": "x = " + "(" * 150 + "1" + ")" * 150 + "\n",
        "defs_90": "".join("    " * i + f"def f{i}():\n" for i in range(90)) + "    " * 90 + "pass\n",
        "dict_20000": "x = {\n" + "".join(f"    'k{i}': {i},\n" for i in range(20_000)) + "}\n",
        "elif_500": "def route(x):\n    if x == 0:\n        return 0\n" + "".join(
            f"    elif x == {i}:\n        return {i}\n" for i in range(1, 500)),
    }
    for name, code in deep.items():
        compile(code, name, "exec")  # valid Python by the interpreter's own standard
        write(project, {f"{name}.py": code + "\n\n" + GOOD})
    result = run()
    found = reported(result.stdout)
    for name in deep:
        assert " LOOP102 " in found.get(f"{name}.py", ""), f"{name}.py: {found.get(f'{name}.py', 'no finding')}"


# --------------------------------------------------------------------------- paths


def test_directory_named_like_a_python_file_is_walked(project: Path) -> None:
    write(project, {"weird.py/inner.py": GOOD})
    result = run("weird.py")
    assert result.exit_code == 1
    assert "weird.py/inner.py:5:12: LOOP102" in result.stdout
    assert "E999" not in result.stdout


def test_unreadable_file_is_reported_and_the_run_goes_on(project: Path) -> None:
    secret = project / "secret.py"
    secret.write_text(GOOD, encoding="utf-8")
    secret.chmod(0)
    try:
        try:
            secret.read_bytes()
        except PermissionError:
            pass
        else:
            pytest.skip("permission bits are not enforced for this user (root): chmod 000 is still readable")
        result = run()
        assert result.exit_code == 1
        line = reported(result.stdout)["secret.py"]
        assert " E999 " in line and "could not read" in line
        assert_run_went_on(result.stdout)
    finally:
        secret.chmod(0o644)


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_symlink_loops_and_dangling_links_end_the_run_normally(project: Path) -> None:
    (project / "pkg").mkdir()
    os.symlink(project, project / "pkg" / "up")  # a directory loop
    os.symlink("b.py", project / "a.py")  # a two-link file loop
    os.symlink("a.py", project / "b.py")
    os.symlink("missing.py", project / "dangling.py")
    proc = run_isolated(project, ".", timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert reported(proc.stdout).keys() == {"api.py"}
    assert_run_went_on(proc.stdout)


def test_broken_pyproject_names_file_and_line(project: Path) -> None:
    write(project, {"pyproject.toml": '[project]\nname = "x"\n\n[tool.loopsafe]\nselect = ["LOOP1"\n'})
    result = CliRunner().invoke(main, ["check", "--no-cache"], catch_exceptions=False)
    assert result.exit_code == 2
    assert str(project / "pyproject.toml") in result.stderr
    assert "line 5" in result.stderr or "line 6" in result.stderr, result.stderr
    assert result.stdout == ""


def test_undecodable_pyproject_names_the_file(project: Path) -> None:
    write(project, {"pyproject.toml": b'[tool.loopsafe]\nselect = ["LOOP1"]\n\xff = 1\n'})
    result = CliRunner().invoke(main, ["check", "--no-cache"], catch_exceptions=False)
    assert result.exit_code == 2
    assert str(project / "pyproject.toml") in result.stderr
    assert result.stdout == ""


# --------------------------------------------------------------------------- scaling


def _helper_cycle(n: int) -> str:
    """n sync helpers, each calling the next twice, the last one calling the first."""
    out = [f"def f{i}(x):\n    y = f{i + 1}(x)\n    return f{i + 1}(y)\n" for i in range(n)]
    out.append(f"def f{n}(x):\n    return f0(x)\n")
    out.append("async def handler(x):\n    return f0(x)\n")
    return "\n\n".join(out)


def test_recursive_helpers_are_analysed_in_reasonable_time(tmp_path: Path) -> None:
    """A 40-line module of mutually recursive helpers. The engine's evaluation must not
    explode with the number of call paths through a cycle (it did: 12 helpers took minutes,
    each extra one multiplying the time by ~4; SQLAlchemy's own source hits this)."""
    write(tmp_path, {"cycle.py": _helper_cycle(12)})
    start = time.perf_counter()
    proc = run_isolated(tmp_path, ".", timeout=30)
    assert proc.returncode in (0, 1), proc.stderr[-1500:]
    assert time.perf_counter() - start < 30


# --------------------------------------------------------------------------- site-packages

#: the packages the full analysis must get through, each as one project (all in the `test`
#: extra); a distribution's sibling top-level packages belong to its project
NAMED_PROJECTS = {
    "fastapi": ("fastapi",),
    "starlette": ("starlette",),
    "sqlalchemy": ("sqlalchemy",),
    "sqlmodel": ("sqlmodel",),
    "pydantic": ("pydantic",),
    "django": ("django",),
    "peewee": ("peewee.py", "playhouse"),
    "pymongo": ("pymongo", "bson", "gridfs"),
    "redis": ("redis",),
}
PROJECT_SECONDS = 180  # one package; the slowest (sqlalchemy) takes ~17 s on 2 idle cores
NAMED_SECONDS = 600  # all nine
WHOLE_SECONDS = 600  # all of site-packages (~4,300 files) as one project: ~130 s on 2 idle cores

_SCAN_SCRIPT = r"""
import json, os, sys, time
from loopsafe.discovery import read_source
from loopsafe.engine import check_files
from loopsafe.model import Options, SourceFile

root, entries = sys.argv[1], json.loads(sys.argv[2])
paths = []
for entry in entries:
    full = os.path.join(root, entry)
    if os.path.isfile(full):
        paths.append(full)
    for folder, dirs, files in os.walk(full):
        dirs.sort()
        paths.extend(os.path.join(folder, f) for f in sorted(files) if f.endswith(".py"))
start = time.perf_counter()
sources, errors = [], []
for path in paths:
    item = read_source(path, os.path.relpath(path, root))
    if isinstance(item, SourceFile):
        sources.append(item)
    else:
        errors.append([item.path, item.message])
unreadable = len(errors)
report = check_files(sources, Options(), root=root)  # the whole analysis, as one project
assert report.files_checked == len(sources)
failed, findings = report.parse_errors, len(report.findings)
assert {e.path for e in failed} <= {s.path for s in sources}
errors.extend([e.path, e.message] for e in failed)
print(json.dumps({"files": len(paths), "analysed": len(sources) - len({e.path for e in failed}),
                  "unparsable": len({e.path for e in failed}), "unreadable": unreadable, "findings": findings,
                  "seconds": round(time.perf_counter() - start, 1), "errors": errors}))
"""


def _site_packages() -> Path:
    return Path(sysconfig.get_paths()["purelib"])


def _scan(entries: list[str], timeout: float) -> dict:
    """check_files over these entries of site-packages, as one project, in a subprocess."""
    command = [PY, "-I", "-X", "faulthandler", "-c", _SCAN_SCRIPT, str(_site_packages()), json.dumps(entries)]
    proc = run_bounded(command, timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr[-3000:]}"
    return json.loads(proc.stdout)


def _check_counts(result: dict) -> None:
    assert result["files"] == result["analysed"] + result["unparsable"] + result["unreadable"], result
    # installed packages are code that imports: at most a few deliberate test inputs fail to parse
    bad = result["unparsable"] + result["unreadable"]
    assert bad <= max(10, result["files"] // 200), result["errors"]


@pytest.mark.slow
def test_whole_site_packages_is_analysed_as_one_project(capsys: pytest.CaptureFixture) -> None:
    """Every *.py file of the test environment's site-packages (fastapi, starlette, sqlalchemy,
    sqlmodel, pydantic, django, peewee, pymongo, redis and everything else installed), through
    the whole analysis as a single project: no crash, each file analysed or reported as a
    parse error."""
    site = _site_packages()
    missing = [e for entries in NAMED_PROJECTS.values() for e in entries if not (site / e).exists()]
    assert not missing, f"install the test extra: {missing} not in {site}"
    entries = sorted(e for e in os.listdir(site) if (site / e).is_dir() or e.endswith(".py"))
    result = _scan(entries, WHOLE_SECONDS)
    with capsys.disabled():  # shown without -s
        print(f"\nsite-packages {site} as one project: {result['files']:,} files in {result['seconds']} s: "
              f"{result['analysed']:,} analysed, {result['unparsable']} unparsable, {result['unreadable']} "
              f"unreadable, {result['findings']} findings")
        for path, message in result["errors"]:
            print(f"  not analysed: {path}: {message}")
    _check_counts(result)
    assert result["files"] > 2000


@pytest.mark.slow
def test_named_packages_are_analysed_without_crashing(capsys: pytest.CaptureFixture) -> None:
    """The same packages the way users run loopsafe, one project each (a distribution and its
    sibling packages), each in its own process with its own time limit: a blow-up names its
    package instead of hanging CI, and the table shows where the time goes."""
    site = _site_packages()
    missing = [e for entries in NAMED_PROJECTS.values() for e in entries if not (site / e).exists()]
    assert not missing, f"install the test extra: {missing} not in {site}"
    rows, slow = [], []
    started = time.perf_counter()
    for name, entries in NAMED_PROJECTS.items():
        left = NAMED_SECONDS - (time.perf_counter() - started)
        if left <= 0:
            slow.append(f"{name}: not run, the {NAMED_SECONDS} s budget was spent")
            continue
        try:
            result = _scan(list(entries), min(PROJECT_SECONDS, left))
        except pytest.fail.Exception as exc:
            slow.append(f"{name}: {exc}")
            continue
        _check_counts(result)
        rows.append((name, result))
    total_files = sum(r["files"] for _, r in rows)
    with capsys.disabled():  # shown without -s
        print(f"\nfull analysis of {len(rows)} packages, one project each: {total_files:,} files in "
              f"{time.perf_counter() - started:.1f} s")
        for name, r in rows:
            print(f"  {name:<11} {r['files']:>5} files  {r['analysed']:>5} analysed  {r['unparsable']:>3} unparsable  "
                  f"{r['findings']:>5} findings  {r['seconds']:>6} s")
        for line in slow:
            print(f"  {line}")
    assert not slow, "\n".join(slow)
