"""Fixture-driven tests: run the engine on every fixture and compare with its inline expectations.

Each fixture (a file under fixtures/loopNxx/ or a project directory under fixtures/projects/)
is one test case; see tests/conftest.py for discovery, the expectation grammar and the rule
selection, and fixtures/README.md for how to write fixtures.

The comparison is exhaustive in both directions, per (path, line, code) and insensitive to how
many times a code is reported on one line:

* every finding the engine reports must be expected with `# error: CODE`;
* every `# error: CODE` must be reported;
* a `# missed: CODE -- reason` must NOT be reported (when it is, turn it into `# error:`).
"""
from __future__ import annotations

import libcst as cst
import pytest

REQUIRED_FIXTURES = {
    # single-file topics from the LOOP1xx specification
    "loop101/sqlalchemy_session.py",
    "loop101/sqlalchemy_async.py",
    "loop101/sqlmodel_.py",
    "loop101/redis_.py",
    "loop101/pymongo_.py",
    "loop101/peewee_.py",
    "loop101/django_orm.py",
    "loop101/offload.py",
    "loop101/nested_scopes.py",
    "loop101/lookalikes.py",
    "loop101/evidence_forms.py",
    "loop101/fastapi_constructs.py",
    "loop102/sqlalchemy_engine.py",
    "loop102/sqlite3_.py",
    "loop102/psycopg2_.py",
    "loop102/psycopg3.py",
    "loop102/pymysql_.py",
    "loop102/connect_forms.py",
    # multi-file projects (LOOP103/LOOP105, cross-module resolution)
    "projects/crud_app",
    "projects/repository_singleton",
    "projects/cycles",
    "projects/self_attrs",
    "projects/peewee_models",
}


# -- meta tests: need no engine ------------------------------------------------------------


def test_fixture_is_well_formed(fixture_case):
    """Parses with LibCST, expectation comments are well formed, and the fixture says something."""
    for f in fixture_case.files:
        try:
            cst.parse_module(f.text)
        except cst.ParserSyntaxError as exc:  # pragma: no cover - message only
            pytest.fail(f"{fixture_case.id}: {f.relpath} does not parse with libcst:\n{exc}")
        compile(f.text, str(f.abspath), "exec", dont_inherit=True)

    assert not fixture_case.syntax_problems, "bad expectation syntax:\n" + "\n".join(fixture_case.syntax_problems)

    name = fixture_case.id.rsplit("/", 1)[-1]
    if fixture_case.all_silent:
        assert not fixture_case.expectations, (
            f"{fixture_case.id} is marked `# fixture: all-silent` but has expectations"
        )
    elif "_clean" not in name:
        assert fixture_case.expected("error"), (
            f"{fixture_case.id} has no `# error:` expectation; add some, or mark a deliberately "
            "silent fixture with a `# fixture: all-silent` line (or name it *_clean*)"
        )

    for e in fixture_case.expectations:
        if e.kind == "missed":
            assert len(e.reason) >= 10, f"{e.path}:{e.line}: give `# missed:` a real reason"


def test_every_fixture_file_is_picked_up(unrecognised_fixture_files):
    """A .py file under fixtures/ outside loopNxx/ and projects/<name>/ would silently never run."""
    assert unrecognised_fixture_files == []


def test_required_fixtures_exist(fixture_ids):
    missing = sorted(REQUIRED_FIXTURES - set(fixture_ids))
    assert not missing, f"required fixtures are missing: {missing}"


def test_readme_lists_every_fixture(fixture_ids, fixtures_readme):
    unlisted = sorted(i for i in fixture_ids if f"`{i.split('/', 1)[1]}`" not in fixtures_readme)
    assert not unlisted, f"fixtures/README.md does not mention: {unlisted}"


@pytest.mark.parametrize(
    "comment, ok",
    [
        ("x = 1  # error: LOOP101", True),
        ("x = 1  # error: LOOP101, LOOP103", True),
        ("x = 1  # error:LOOP105", True),
        ("x = 1  # missed: LOOP101 -- needs return-type inference", True),
        ("x = 1  # error: LOOP101  # noqa: E501", True),
        ("x = 1  # errors: LOOP101", False),
        ("x = 1  # error LOOP101", False),
        ("x = 1  # error: loop101", False),
        ("x = 1  # error: LOOP10", False),
        ("x = 1  # missed: LOOP101", False),  # no reason
        ("x = 1  # expected: LOOP101", False),
        ("x = 1  # LOOP101", False),
        ("# error: LOOP101", False),  # not trailing a code line
        ("x = 1  # error: LOOP101, LOOP101", False),
        ("x = 1  # a normal comment about LOOP101 semantics", True),
    ],
)
def test_expectation_grammar(comment, ok, parse_source):
    exps, problems, _ = parse_source(comment + "\n")
    assert (not problems) is ok, problems
    if ok and "error:" in comment:
        assert exps and all(e.line == 1 and e.kind == "error" for e in exps)


# -- the engine against the fixtures ---------------------------------------------------------


def _fmt(case, path: str, line: int, code: str, message: str = "") -> str:
    f = case.file(path)
    src = f.source_line(line) if f else "<file not in fixture>"
    head = f"  {path}:{line}: {code}" + (f"  {message}" if message else "")
    return f"{head}\n      | {src}"


def test_fixture_expectations(fixture_case, run_engine):
    report = run_engine(fixture_case)

    assert not report.parse_errors, f"engine could not parse fixture files: {report.parse_errors}"
    assert report.files_checked == len(fixture_case.files), (
        f"engine checked {report.files_checked} of {len(fixture_case.files)} files"
    )

    paths = {f.relpath for f in fixture_case.files}
    got: dict[tuple[str, int, str], str] = {}
    for fnd in report.findings:
        assert fnd.path in paths, f"finding for a path that was not passed in: {fnd!r}"
        n_lines = len(fixture_case.file(fnd.path).lines)
        assert 1 <= fnd.line <= n_lines, f"finding outside the file: {fnd!r}"
        got.setdefault((fnd.path, fnd.line, fnd.code), fnd.message)

    expected = fixture_case.expected("error")
    missed = fixture_case.expected("missed")

    unexpected = sorted(k for k in got if k not in expected and k not in missed)
    missing = sorted(expected - got.keys())
    now_found = sorted(k for k in got if k in missed)

    if unexpected or missing or now_found:
        out = [f"{fixture_case.id}: engine output differs from the inline expectations (select={fixture_case.select()})"]
        if unexpected:
            out.append(f"\nUNEXPECTED findings ({len(unexpected)}) - reported but not expected:")
            out += [_fmt(fixture_case, *k, got[k]) for k in unexpected]
        if missing:
            out.append(f"\nMISSING findings ({len(missing)}) - expected with `# error:` but not reported:")
            out += [_fmt(fixture_case, *k) for k in missing]
        if now_found:
            out.append(
                f"\nNOW FOUND ({len(now_found)}) - marked `# missed:` but reported; "
                "turn `# missed:` into `# error:` on these lines:"
            )
            out += [_fmt(fixture_case, *k, got[k]) for k in now_found]
        pytest.fail("\n".join(out), pytrace=False)


def test_findings_are_well_formed(fixture_case, run_engine):
    """Every finding carries a message and fix title, a sane range, and LOOP103 a call chain."""
    report = run_engine(fixture_case)
    for fnd in report.findings:
        assert fnd.message.strip(), fnd
        assert fnd.fix_title.strip(), fnd
        assert fnd.column >= 1 and fnd.end_line >= fnd.line, fnd
        if fnd.end_line == fnd.line:
            assert fnd.end_column > fnd.column, fnd
        if fnd.code == "LOOP103":
            assert fnd.chain, f"LOOP103 without a chain down to the blocking call: {fnd!r}"
