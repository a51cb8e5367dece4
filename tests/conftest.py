"""Shared machinery for the fixture-driven tests (test_fixtures.py, test_metamorphic.py).

Fixture layout (see fixtures/README.md):

* ``fixtures/loopNxx/<topic>.py``: a single-file fixture, analysed alone as a one-module
  project whose root is its directory. The directory name gives the rule family that is
  selected (``loop101`` -> ``LOOP1``).
* ``fixtures/projects/<name>/``: a multi-file project fixture, every ``*.py`` under it
  analysed together with the project directory as root.

Expectations are trailing comments on the line where a finding's reported expression starts::

    users = db.query(User).all()  # error: LOOP101
    user = crud.get(db, 1)  # error: LOOP101, LOOP103
    rows = list(q)  # missed: LOOP101 -- why the engine cannot see it yet

File-level directives (a comment line of its own, anywhere in the file):

    # fixture: all-silent          the file deliberately has no expectations
    # fixture: select=LOOP1,LOOP2  extra rule prefixes to select for this fixture

The helpers are exposed to tests through pytest fixtures and ``pytest_generate_tests`` (not by
importing this module), so they work under any pytest import mode.
"""
from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES_DIR = REPO_ROOT / "fixtures"
PROJECTS_DIR = FIXTURES_DIR / "projects"
#: golden before/after files for --fix (``<name>.py`` and ``<name>.fixed.py``): not inline-expectation
#: fixtures; tests/test_fixes.py runs every one of them
FIXES_DIR = FIXTURES_DIR / "fixes"
ENGINE_SOURCE = REPO_ROOT / "src" / "loopsafe" / "engine.py"

#: single-file fixture directories: loop101, loop102, loop2xx, ...
FAMILY_DIR_RE = re.compile(r"^loop(\d)\d\d$", re.IGNORECASE)
CODE_RE = r"LOOP\d{3}"
CODES_RE = rf"{CODE_RE}(?:\s*,\s*{CODE_RE})*"
#: the whole comment must be exactly this (after the leading '#')
ERROR_RE = re.compile(rf"^error:\s*(?P<codes>{CODES_RE})\s*$")
MISSED_RE = re.compile(rf"^missed:\s*(?P<codes>{CODES_RE})\s+--\s+(?P<reason>\S.*)$")
DIRECTIVE_RE = re.compile(r"^fixture:\s*(?P<body>.+)$")
#: anything that looks like an attempt at an expectation, to catch typos
SUSPICIOUS_RE = re.compile(
    r"^(?:errors?|missed|miss|expect(?:ed)?)\b\s*(?:[:=]|LOOP)|^LOOP\d{3}\b", re.IGNORECASE
)


@dataclass(frozen=True)
class Expectation:
    path: str  # fixture-relative path, as passed to the engine
    line: int
    code: str
    kind: str  # "error" or "missed"
    reason: str = ""


@dataclass
class FixtureFile:
    relpath: str  # posix path relative to the fixture root; what the engine sees as `path`
    abspath: Path
    text: str

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def source_line(self, line: int) -> str:
        lines = self.lines
        return lines[line - 1].strip() if 1 <= line <= len(lines) else "<no such line>"


@dataclass
class FixtureCase:
    """One analysis unit: a single-file fixture or a project directory."""

    id: str  # e.g. "loop101/redis_.py" or "projects/crud_app"
    kind: str  # "file" or "project"
    root: Path
    files: list[FixtureFile]
    family: str | None  # "LOOP1" for fixtures/loop101, None for projects
    _parsed: tuple | None = field(default=None, repr=False)

    # -- expectations -----------------------------------------------------------------
    def _parse(self) -> tuple[list[Expectation], list[str], dict[str, list[str]]]:
        if self._parsed is None:
            exps: list[Expectation] = []
            problems: list[str] = []
            directives: dict[str, list[str]] = {}
            for f in self.files:
                e, p, d = parse_expectations(f)
                exps += e
                problems += p
                for k, v in d.items():
                    directives.setdefault(k, []).extend(v)
            self._parsed = (exps, problems, directives)
        return self._parsed

    @property
    def expectations(self) -> list[Expectation]:
        return self._parse()[0]

    @property
    def syntax_problems(self) -> list[str]:
        return self._parse()[1]

    @property
    def directives(self) -> dict[str, list[str]]:
        return self._parse()[2]

    @property
    def all_silent(self) -> bool:
        return "all-silent" in self.directives

    def expected(self, kind: str = "error") -> set[tuple[str, int, str]]:
        return {(e.path, e.line, e.code) for e in self.expectations if e.kind == kind}

    def select(self) -> tuple[str, ...]:
        """Rule prefixes to select: directory family + expected codes (+ their families) + directives."""
        sel: set[str] = set()
        if self.family:
            sel.add(self.family)
        for e in self.expectations:
            sel.add(e.code)
            sel.add(e.code[:5])  # LOOP103 -> LOOP1: the whole family must be exhaustive too
        for extra in self.directives.get("select", []):
            sel.update(s.strip().upper() for s in extra.split(",") if s.strip())
        if not sel:
            sel.add("LOOP1")
        return tuple(sorted(sel))

    def file(self, relpath: str) -> FixtureFile | None:
        for f in self.files:
            if f.relpath == relpath:
                return f
        return None


def parse_expectations(f: FixtureFile) -> tuple[list[Expectation], list[str], dict[str, list[str]]]:
    """Read `# error:` / `# missed:` trailing comments and `# fixture:` directives from a file."""
    exps: list[Expectation] = []
    problems: list[str] = []
    directives: dict[str, list[str]] = {}
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(f.text).readline))
    except (tokenize.TokenError, SyntaxError) as exc:  # pragma: no cover - reported by the parse test
        return [], [f"{f.relpath}: cannot tokenize: {exc}"], {}
    for tok in tokens:
        if tok.type != tokenize.COMMENT:
            continue
        line = tok.start[0]
        where = f"{f.relpath}:{line}"
        # a comment may hold several '#'-separated parts: `# error: LOOP101  # noqa: E501`
        parts = [p.strip() for p in tok.string.split("#") if p.strip()]
        trailing = bool(tok.line[: tok.start[1]].strip())
        for part in parts:
            m_err = ERROR_RE.match(part)
            m_miss = MISSED_RE.match(part)
            m_dir = DIRECTIVE_RE.match(part)
            if m_err or m_miss:
                if not trailing:
                    problems.append(f"{where}: expectation `{part}` must trail the code line it is about")
                    continue
                m = m_err or m_miss
                codes = [c.strip() for c in m.group("codes").split(",")]
                if len(set(codes)) != len(codes):
                    problems.append(f"{where}: duplicate code in `{part}`")
                kind = "error" if m_err else "missed"
                reason = m_miss.group("reason").strip() if m_miss else ""
                exps += [Expectation(f.relpath, line, c, kind, reason) for c in codes]
            elif m_dir:
                if trailing:
                    problems.append(f"{where}: `# fixture:` directives go on a line of their own")
                    continue
                body = m_dir.group("body").strip()
                if body == "all-silent":
                    directives.setdefault("all-silent", []).append("")
                elif body.startswith("select="):
                    directives.setdefault("select", []).append(body[len("select="):])
                else:
                    problems.append(f"{where}: unknown fixture directive `{part}`")
            elif SUSPICIOUS_RE.search(part):
                problems.append(
                    f"{where}: comment `{part}` looks like an expectation but does not match "
                    "`error: LOOP101[, LOOP103]` or `missed: LOOP101 -- reason`"
                )
    seen: dict[tuple[int, str], str] = {}
    for e in exps:
        key = (e.line, e.code)
        if key in seen and seen[key] != e.kind:
            problems.append(f"{f.relpath}:{e.line}: {e.code} is both expected and marked missed")
        seen[key] = e.kind
    return exps, problems, directives


# -- discovery ------------------------------------------------------------------------


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def discover_cases() -> list[FixtureCase]:
    cases: list[FixtureCase] = []
    if not FIXTURES_DIR.is_dir():
        return cases
    for sub in sorted(p for p in FIXTURES_DIR.iterdir() if p.is_dir()):
        m = FAMILY_DIR_RE.match(sub.name)
        if m:
            family = f"LOOP{m.group(1)}"
            for py in sorted(sub.glob("*.py")):
                cases.append(
                    FixtureCase(
                        id=f"{sub.name}/{py.name}",
                        kind="file",
                        root=sub,
                        files=[FixtureFile(py.name, py, _read(py))],
                        family=family,
                    )
                )
        elif sub == PROJECTS_DIR:
            for proj in sorted(p for p in sub.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
                files = [
                    FixtureFile(py.relative_to(proj).as_posix(), py, _read(py))
                    for py in sorted(proj.rglob("*.py"))
                    if "__pycache__" not in py.parts
                ]
                cases.append(FixtureCase(id=f"projects/{proj.name}", kind="project", root=proj, files=files, family=None))
    return cases


def unrecognised_fixture_paths() -> list[str]:
    """Python files under fixtures/ that no case picks up (a typo in a directory name, say)."""
    known = {f.abspath for c in discover_cases() for f in c.files}
    return sorted(
        p.relative_to(FIXTURES_DIR).as_posix()
        for p in FIXTURES_DIR.rglob("*.py")
        if "__pycache__" not in p.parts and p not in known and FIXES_DIR not in p.parents
    )


_CASES = discover_cases()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "fixture_case" in metafunc.fixturenames:
        metafunc.parametrize("fixture_case", _CASES, ids=[c.id for c in _CASES])


# -- running the engine ---------------------------------------------------------------

RunEngine = Callable[..., object]


@pytest.fixture(scope="session")
def run_engine() -> RunEngine:
    """A callable ``run_engine(case, texts=None, select=None) -> Report``.

    ``texts`` optionally maps relpath -> replacement source (used by the metamorphic test).
    Skips while the engine module does not exist yet; once it exists, import errors surface.
    """
    if not ENGINE_SOURCE.exists():
        pytest.skip("src/loopsafe/engine.py does not exist yet")
    from loopsafe.engine import check_files  # noqa: PLC0415 - deliberate late import
    from loopsafe.model import Options, SourceFile  # noqa: PLC0415

    def run(case: FixtureCase, texts: dict[str, str] | None = None, select: Iterable[str] | None = None):
        texts = texts or {}
        sources = [
            SourceFile(path=f.relpath, text=texts.get(f.relpath, f.text), abspath=str(f.abspath))
            for f in case.files
        ]
        sel = tuple(select) if select is not None else case.select()
        return check_files(sources, Options(select=sel), root=str(case.root))

    return run


# -- small fixtures for the meta tests --------------------------------------------------------


@pytest.fixture(scope="session")
def fixture_ids() -> list[str]:
    return [c.id for c in _CASES]


@pytest.fixture(scope="session")
def fixtures_readme() -> str:
    readme = FIXTURES_DIR / "README.md"
    return readme.read_text(encoding="utf-8") if readme.exists() else ""


@pytest.fixture(scope="session")
def unrecognised_fixture_files() -> list[str]:
    return unrecognised_fixture_paths()


@pytest.fixture(scope="session")
def parse_source():
    """``parse_source(text) -> (expectations, problems, directives)`` for an in-memory file."""

    def parse(text: str):
        return parse_expectations(FixtureFile("snippet.py", Path("snippet.py"), text))

    return parse
