"""Safe by construction: loopsafe reads code and nothing else.

* It never imports or executes the code it analyses: modules whose import (or whose
  decorators, defaults, class bodies, string annotations, `__main__` block...) would write
  a marker file or exit are scanned, and nothing happens.
* It writes nowhere but its cache folder, unless asked to write (`--output-file`,
  `--write-baseline`, `--add-noqa`, the nearest it has to `--fix`): the tree is
  snapshotted before and after.
* It never follows symlinks out of the checked root: a DB bug in a directory outside,
  linked from inside, is not reported and not used as context.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from loopsafe.cli import main
from loopsafe.discovery import read_source
from loopsafe.engine import check_files
from loopsafe.model import Options

PY = sys.executable
BLOCKING = """\
import sqlite3


async def handler():
    return sqlite3.connect("app.db")
"""
needs_symlinks = pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")


def write(root: Path, files: dict[str, str]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, ["check", "--output-format", "concise", *args], catch_exceptions=False)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "LOOPSAFE_OUTPUT_FORMAT", "LOOPSAFE_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------- never executes


def trap(marker: Path, tag: str) -> str:
    """Module source that, if imported or run in any way, leaves `marker` behind and exits."""
    m = repr(str(marker))
    return f'''\
import os
import sqlite3
import sys

from pathlib import Path as _P
_P({m}).open("a").write("{tag}:module\\n")


def _mark(what):
    _P({m}).open("a").write("{tag}:" + what + "\\n")
    return what


@_mark  # a decorator runs at import
def decorated(x=_mark("default")):  # so does a default
    return x


class Meta(type):
    def __new__(mcs, name, bases, ns):
        _mark("metaclass")
        return super().__new__(mcs, name, bases, ns)


class Model(metaclass=Meta):
    _mark("class-body")


def annotated(x: "__import__('pathlib').Path({m}).write_text('{tag}:string-annotation')") -> "_mark('return')":
    return x


async def handler():
    return sqlite3.connect("app.db")


if __name__ == "__main__":
    _mark("main")

sys.exit(77)
os._exit(78)
'''


TRAP_FILES = ("trap_module.py", "pkg/__init__.py", "pkg/sub.py", "conftest.py", "setup.py", "__main__.py",
              "sitecustomize.py", "usercustomize.py")


@pytest.fixture
def trapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    project = tmp_path / "project"
    marker = tmp_path / "marker.txt"
    write(project, {name: trap(marker, name) for name in TRAP_FILES})
    monkeypatch.chdir(project)
    return project, marker


def _assert_untouched(project: Path, marker: Path) -> None:
    assert not marker.exists(), f"analysed code ran: {marker.read_text()}"
    assert not list(project.rglob("__pycache__")), "analysed code was imported (bytecode was written)"
    assert not [name for name in sys.modules if name.split(".")[0] in {"trap_module", "pkg", "sitecustomize_", "setup"}]


def test_scanning_never_imports_or_runs_the_code_in_process(trapped: tuple[Path, Path]) -> None:
    project, marker = trapped
    result = cli(".")
    assert result.exit_code == 1, result.output  # the blocking call in every file is found...
    # (but conftest.py's: the LOOP1 rules do not check test code)
    reported = {line.split(":")[0] for line in result.stdout.splitlines() if " LOOP102 " in line}
    assert reported == set(TRAP_FILES) - {"conftest.py"}
    _assert_untouched(project, marker)  # ...and nothing ran
    report = check_files([read_source(str(project / n), n) for n in TRAP_FILES], Options(), root=str(project))
    assert {f.path for f in report.findings} == set(TRAP_FILES) - {"conftest.py"}
    assert report.files_checked == len(TRAP_FILES) and not report.parse_errors
    _assert_untouched(project, marker)


def test_scanning_never_imports_or_runs_the_code_via_the_console_script(trapped: tuple[Path, Path]) -> None:
    project, marker = trapped
    script = Path(PY).parent / ("loopsafe.exe" if os.name == "nt" else "loopsafe")
    if not script.exists():
        pytest.skip(f"no console script beside {PY}")
    proc = subprocess.run([str(script), "check", "--output-format", "concise", "."], cwd=project,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    _assert_untouched(project, marker)


#: project files named like modules loopsafe imports after start-up (stdlib and dependencies)
SHADOWS = ("hashlib", "pickle", "tempfile", "multiprocessing", "concurrent", "libcst", "tomllib", "tomli",
           "json", "re", "tokenize", "click", "rich")


def test_python_dash_m_does_not_run_project_modules_that_shadow_its_imports(tmp_path: Path) -> None:
    """`python -m loopsafe check .` run from the project directory puts that directory first
    on sys.path; a project module named like something loopsafe imports later (its cache
    imports hashlib, the parser is imported lazily) must still not be imported."""
    project = tmp_path / "project"
    marker = tmp_path / "marker.txt"
    write(project, {"api.py": BLOCKING})
    for name in SHADOWS:
        write(project, {f"{name}.py": f"open({str(marker)!r}, 'a').write('{name}\\n')\nraise SystemExit(77)\n"})
    proc = subprocess.run([PY, "-m", "loopsafe", "check", "--no-cache", "--output-format", "concise", "."],
                          cwd=project, capture_output=True, text=True, timeout=120)
    ran = marker.read_text().split() if marker.exists() else []
    assert not ran, f"`python -m loopsafe` imported the project's {ran} (exit {proc.returncode})"
    assert proc.returncode == 1 and "api.py:5:12: LOOP102" in proc.stdout


# --------------------------------------------------------------------------- writes nothing


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root with its type and, for files, size, mtime and content hash."""
    out: dict[str, tuple] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            st = path.lstat()
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", st.st_size, st.st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def changes(before: dict, after: dict) -> set[str]:
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp/{project,home,tmp}: HOME and TMPDIR point inside, so stray writes show up too."""
    project = tmp_path / "project"
    write(project, {
        "pyproject.toml": "[tool.loopsafe]\nselect = [\"LOOP1\"]\n",
        ".gitignore": "ignored/\n",
        "app/__init__.py": "",
        "app/api.py": BLOCKING + "\n\nfrom app.crud import rows\n\n\nasync def listing(db):\n    return rows(db)\n",
        "app/crud.py": (
            "from sqlalchemy.orm import Session\n\n\ndef rows(db: Session):\n    return db.execute('select 1').all()\n"
        ),
        "app/broken.py": "def f(:\n",
        "ignored/x.py": BLOCKING,
    })
    for name in ("home", "tmp"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home" / ".cache"))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.chdir(project)
    return tmp_path


FORMATS = ("full", "concise", "json", "json-lines", "sarif", "github", "gitlab")


@pytest.mark.parametrize("output_format", FORMATS)
def test_a_scan_writes_only_its_cache_folder(sandbox: Path, output_format: str) -> None:
    before = snapshot(sandbox)
    result = cli("--output-format", output_format, ".")
    assert result.exit_code == 1
    changed = changes(before, snapshot(sandbox))
    assert changed, "expected the cache to be written"
    assert {p for p in changed if not p.startswith("project/.loopsafe_cache")} == set()
    # a second (warm) run changes nothing outside the cache either
    before = snapshot(sandbox)
    assert cli("--output-format", output_format, ".").exit_code == 1
    assert {p for p in changes(before, snapshot(sandbox)) if not p.startswith("project/.loopsafe_cache")} == set()


def test_without_cache_a_scan_writes_nothing_at_all(sandbox: Path) -> None:
    before = snapshot(sandbox)
    for args in (("--no-cache", "."), ("--no-cache", "app/api.py"), ("--no-cache", "--statistics", ".")):
        assert cli(*args).exit_code == 1
    proc = subprocess.run([str(Path(PY).parent / "loopsafe"), "check", "--no-cache", "."], cwd=sandbox / "project",
                          capture_output=True, text=True, timeout=120, env={**os.environ})
    assert proc.returncode == 1, proc.stderr
    assert changes(before, snapshot(sandbox)) == set()


def test_cache_dir_elsewhere_is_the_only_place_written(sandbox: Path) -> None:
    before = snapshot(sandbox)
    assert cli("--cache-dir", str(sandbox / "tmp" / "lc"), ".").exit_code == 1
    changed = changes(before, snapshot(sandbox))
    assert changed and all(p.startswith("tmp/lc") for p in changed), changed


def test_explicit_write_requests_write_only_what_was_asked(sandbox: Path) -> None:
    project = sandbox / "project"
    before = snapshot(sandbox)
    assert cli("--no-cache", "--output-format", "json", "-o", "out/report.json", ".").exit_code == 1
    assert changes(before, snapshot(sandbox)) == {"project/out", "project/out/report.json"}

    before = snapshot(sandbox)
    assert cli("--no-cache", "--write-baseline", "baseline.json", ".").exit_code == 0
    assert changes(before, snapshot(sandbox)) == {"project/baseline.json"}

    # --add-noqa edits sources, but only the files that have findings
    before = snapshot(sandbox)
    assert cli("--no-cache", "--add-noqa", ".").exit_code == 0
    assert changes(before, snapshot(sandbox)) == {"project/app/api.py"}
    assert "# noqa: LOOP10" in (project / "app" / "api.py").read_text(encoding="utf-8")


def _has_option(flag: str) -> bool:
    return flag in CliRunner().invoke(main, ["check", "--help"]).output


def test_fix_writes_only_files_with_findings_and_diff_writes_nothing(sandbox: Path) -> None:
    if not _has_option("--fix") or not _has_option("--diff"):
        pytest.skip("this build of loopsafe has no --fix/--diff")
    before = snapshot(sandbox)
    for args in (("--diff",), ("--diff", "--unsafe-fixes"), ("--show-fixes",)):
        cli("--no-cache", *args, ".")
        assert changes(before, snapshot(sandbox)) == set(), args

    with_findings = {f"project/{line.split(':')[0]}" for line in cli("--no-cache", ".").stdout.splitlines()
                     if " LOOP" in line}
    before = snapshot(sandbox)
    cli("--no-cache", "--fix", "--unsafe-fixes", ".")
    changed = changes(before, snapshot(sandbox))
    assert changed <= with_findings, changed - with_findings


# --------------------------------------------------------------------------- symlinks


@needs_symlinks
def test_symlinks_out_of_the_root_are_never_followed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outside = tmp_path / "outside"
    write(outside, {
        "vendor/__init__.py": "",
        "vendor/helpers.py": (
            "import sqlite3\n\n\ndef slow():\n    return sqlite3.connect('x.db').execute('select 1')\n"
        ),
        "vendor/bug.py": BLOCKING,
        "loose.py": BLOCKING,
    })
    root = tmp_path / "root"
    write(root, {
        "pyproject.toml": "[tool.loopsafe]\n",  # the project root (else files named one by one take the cwd)
        "app/__init__.py": "",
        # if the linked directory were read, this call would be LOOP103 through vendor/helpers.py
        "app/api.py": "from vendor.helpers import slow\n\n\nasync def endpoint():\n    return slow()\n",
        "app/own.py": BLOCKING,
    })
    os.symlink(outside / "vendor", root / "vendor")
    os.symlink(outside / "loose.py", root / "app" / "loose.py")
    os.symlink(outside, root / "app" / "everything")
    monkeypatch.chdir(tmp_path)
    outside_text = str(outside)

    for args in ((str(root),), ("root",), (str(root / "app" / "api.py"), str(root / "app" / "own.py"))):
        result = CliRunner().invoke(main, ["check", "--no-cache", "--output-format", "json", *args],
                                    catch_exceptions=False)
        assert result.exit_code == 1, result.output
        findings = json.loads(result.stdout)
        paths = {f["path"] for f in findings} | {frame["path"] for f in findings for frame in f["chain"]}
        assert all(p.endswith("app/own.py") for p in paths), (args, paths)
        assert outside_text not in result.stdout
        assert not any(f["code"] == "LOOP103" for f in findings), (args, findings)


@needs_symlinks
def test_a_linked_root_is_checked_but_links_inside_it_still_are_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Naming a link as the root is an explicit choice and is honoured; links below it are not."""
    real = tmp_path / "real"
    write(real, {"own.py": BLOCKING})
    write(tmp_path / "outside", {"bug.py": BLOCKING})
    os.symlink(tmp_path / "outside", real / "linked")
    os.symlink(real, tmp_path / "root")
    monkeypatch.chdir(tmp_path)
    result = cli("--no-cache", "root")
    assert result.exit_code == 1
    assert "own.py:5:12: LOOP102" in result.stdout and "bug.py" not in result.stdout
