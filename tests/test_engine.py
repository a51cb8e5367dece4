"""The engine's contracts beyond single findings: job-count independence and the cache."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from loopsafe import engine
from loopsafe.model import Options, SourceFile

API = """
from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from app.db import get_db
from app import crud{n}

router = APIRouter()


@router.get("/items{n}")
async def items{n}(db: Session = Depends(get_db)):
    return crud{n}.list_items(db)
"""

CRUD = """
def list_items(db):
    return db.query(object).all()
"""

DB = """
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

SessionLocal = sessionmaker(bind=create_engine("sqlite://"))


def get_db():
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()
"""


def make_project(root: Path, modules: int = 15) -> list[SourceFile]:
    (root / "app").mkdir(parents=True, exist_ok=True)
    files = {"app/__init__.py": "", "app/db.py": DB}
    for n in range(modules):
        files[f"app/api{n}.py"] = API.format(n=n)
        files[f"app/crud{n}.py"] = CRUD
    out = []
    for rel, text in files.items():
        path = root / rel
        path.write_text(textwrap.dedent(text))
        out.append(SourceFile(rel, path.read_text(), str(path)))
    return out


def keyset(report) -> list[tuple]:
    return sorted((f.path, f.line, f.column, f.code, f.message, f.chain) for f in report.findings)


def test_results_do_not_depend_on_the_number_of_jobs(tmp_path: Path) -> None:
    files = make_project(tmp_path, modules=15)  # 32 files: enough for the process pool
    serial = engine.check_files(files, Options(), str(tmp_path), jobs=1)
    pooled = engine.check_files(files, Options(), str(tmp_path), jobs=2)
    assert len(serial.findings) == 15 + 15  # one LOOP103 and one LOOP105 per endpoint
    assert keyset(serial) == keyset(pooled)


def test_cached_runs_match_uncached_ones_and_notice_changes(tmp_path: Path) -> None:
    project = tmp_path / "p"
    files = make_project(project, modules=3)
    cache = tmp_path / "cache"
    fresh = engine.check_files(files, Options(), str(project))
    first = engine.check_files(files, Options(), str(project), cache_dir=cache)
    again = engine.check_files(files, Options(), str(project), cache_dir=cache)
    assert keyset(fresh) == keyset(first) == keyset(again)
    assert (cache / ".gitignore").read_text().strip().endswith("*")

    # the helper stops blocking: its summary and the run's results must both be recomputed
    changed = [f if f.path != "app/crud0.py" else SourceFile(f.path, "def list_items(db):\n    return []\n", f.abspath)
               for f in files]
    after = engine.check_files(changed, Options(), str(project), cache_dir=cache)
    assert len(after.findings) == len(first.findings) - 2
    assert not any(f.path == "app/api0.py" for f in after.findings)


def test_selection_is_part_of_the_cached_results(tmp_path: Path) -> None:
    files = make_project(tmp_path / "p", modules=2)
    cache = tmp_path / "cache"
    both = engine.check_files(files, Options(), str(tmp_path / "p"), cache_dir=cache)
    only = engine.check_files(files, Options(select=("LOOP105",)), str(tmp_path / "p"), cache_dir=cache)
    assert {f.code for f in both.findings} == {"LOOP103", "LOOP105"}
    assert {f.code for f in only.findings} == {"LOOP105"}


def test_corrupt_cache_entries_are_misses(tmp_path: Path) -> None:
    files = make_project(tmp_path / "p", modules=2)
    cache = tmp_path / "cache"
    first = engine.check_files(files, Options(), str(tmp_path / "p"), cache_dir=cache)
    for entry in cache.rglob("*.pickle"):
        entry.write_bytes(b"not a pickle")
    again = engine.check_files(files, Options(), str(tmp_path / "p"), cache_dir=cache)
    assert keyset(first) == keyset(again)


def test_analysis_never_imports_libcst_and_a_warm_run_parses_nothing(tmp_path: Path) -> None:
    make_project(tmp_path / "p", modules=2)
    script = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        from loopsafe import engine
        from loopsafe.model import Options, SourceFile
        parsed = []
        summarise = engine.summarise
        engine.summarise = lambda source, *rest: parsed.append(source.path) or summarise(source, *rest)
        root = Path({str(tmp_path / "p")!r})
        files = [SourceFile(str(p.relative_to(root)), p.read_text(), str(p)) for p in sorted(root.rglob("*.py"))]
        report = engine.check_files(files, Options(), str(root), cache_dir={str(tmp_path / "cache")!r}, jobs=1)
        print(json.dumps({{"findings": len(report.findings), "libcst": "libcst" in sys.modules,
                          "parsed": len(parsed)}}))
    """)
    cold = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)
    warm = json.loads(subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout)
    assert cold == {"findings": 4, "libcst": False, "parsed": len(list((tmp_path / "p").rglob("*.py")))}
    assert warm == {"findings": 4, "libcst": False, "parsed": 0}


def test_focus_reports_only_focused_files_with_whole_project_context(tmp_path: Path) -> None:
    files = make_project(tmp_path, modules=2)
    full = engine.check_files(files, Options(), str(tmp_path))
    focused = engine.check_files(files, Options(), str(tmp_path), focus=["app/api1.py"])
    assert {f.path for f in focused.findings} == {"app/api1.py"}
    # the LOOP103 needs app/crud1.py, which is analysed but not reported on
    assert sorted(f.code for f in focused.findings) == ["LOOP103", "LOOP105"]
    assert [f for f in full.findings if f.path == "app/api1.py"] == list(focused.findings)


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="Python 3.14 parses `except A, B:` itself")
def test_newer_syntax_is_reported_as_such_and_the_rest_is_analysed(tmp_path: Path, monkeypatch) -> None:
    # newer syntax `loopsafe.newer_syntax` cannot rewrite (none is known today: stand one in)
    from loopsafe import newer_syntax

    monkeypatch.setattr(newer_syntax, "rewrite", lambda text: None)
    newer = "try:\n    pass\nexcept ValueError, TypeError:\n    pass\n"
    broken = "def f(:\n    pass\n"
    files = make_project(tmp_path, modules=1) + [SourceFile("app/newer.py", newer), SourceFile("app/broken.py", broken)]
    report = engine.check_files(files, Options(), str(tmp_path))
    errors = {e.path: e for e in report.parse_errors}
    assert errors["app/newer.py"].line == 3 and "valid in a newer Python" in errors["app/newer.py"].message
    assert "newer Python" not in errors["app/broken.py"].message
    assert report.findings  # the project's own bugs are still found


def test_findings_without_fixes_are_the_same_findings(tmp_path: Path) -> None:
    files = make_project(tmp_path, modules=2)
    full = engine.check_files(files, Options(), str(tmp_path), cache_dir=tmp_path / "cache")
    bare = engine.check_files(files, Options(), str(tmp_path), cache_dir=tmp_path / "cache", fixes=False)
    assert any(f.fix is not None for f in full.findings)  # else this test proves nothing
    assert all(f.fix is None for f in bare.findings)  # not served from the cache entry with fixes
    assert [dataclasses.replace(f, fix=None) for f in full.findings] == list(bare.findings)


def test_startup_code_is_reported_with_a_note_that_no_request_waits() -> None:
    """fastapi-execution-model.md §6: lifespan and startup/shutdown code runs on the loop, but
    before requests are served or after they end; the message says so, a route's does not."""
    path = Path(__file__).resolve().parents[1] / "fixtures" / "loop101" / "startup_code.py"
    report = engine.check_source(path.read_text(), str(path), Options(select=("LOOP1",)))
    noted = {f.function for f in report.findings if "startup/shutdown code" in f.message}
    assert noted == {"lifespan", "warm_up", "close_pool"}
    assert {f.function for f in report.findings} == noted | {"health"}


def test_a_multi_line_snippet_leaves_out_comments() -> None:
    code = textwrap.dedent("""\
        from sqlalchemy.orm import Session

        async def f(db: Session):
            return db.execute(  # the report, "quoted #"
                "SELECT '#'"  # a note
            )
    """)
    [finding] = engine.check_source(code, "app.py", Options(select=("LOOP101",))).findings
    assert "`db.execute(\"SELECT '#'\")`" in finding.message


def test_a_route_label_carries_its_router_prefix() -> None:
    code = textwrap.dedent('''\
        from fastapi import APIRouter
        from sqlalchemy.orm import Session

        router = APIRouter(prefix="/api-keys/", tags=["keys"])
        plain = APIRouter()


        @router.post("")
        async def create(db: Session):
            db.commit()


        @router.get("/{key_id}")
        async def read(db: Session, key_id: int):
            db.commit()


        @plain.get("/health")
        async def health(db: Session):
            db.commit()
        ''')
    report = engine.check_source(code, "keys.py", Options(select=("LOOP101",)))
    assert [f.route for f in report.findings] == ["POST /api-keys", "GET /api-keys/{key_id}", "GET /health"]


def test_a_route_label_names_the_methods_a_registration_lists() -> None:
    code = textwrap.dedent('''\
        from fastapi import FastAPI
        from sqlalchemy.orm import Session

        app = FastAPI()


        @app.api_route("/kinds", methods=["GET", "head"])
        async def kinds(db: Session):
            db.commit()


        async def count(db: Session):
            db.commit()


        async def unsaid(db: Session):
            db.commit()


        async def listen(db: Session):
            db.commit()


        app.add_api_route("/count", count, methods=["POST"])
        app.add_api_route("/unsaid", unsaid)
        app.add_api_websocket_route("/listen", listen)
        ''')
    report = engine.check_source(code, "app.py", Options(select=("LOOP101",)))
    assert [f.route for f in report.findings] == ["GET|HEAD /kinds", "POST /count", "ROUTE /unsaid", "WEBSOCKET /listen"]


def test_a_dependency_is_labelled_with_the_first_route_in_order_that_asks_for_it() -> None:
    # `shared` is asked for by both routes, directly by /b and through `middle` by /a: it is
    # labelled with /a, the first route in (module, name) order, wherever the routes are
    from loopsafe.semantic import ProjectModel

    api_a = textwrap.dedent("""\
        from fastapi import APIRouter, Depends
        from app.deps import middle
        router = APIRouter()

        @router.get("/a")
        def a_route(m=Depends(middle)):
            return m
    """)
    api_b = textwrap.dedent("""\
        from fastapi import APIRouter, Depends
        from app.deps import shared
        router = APIRouter()

        @router.get("/b")
        def b_route(s=Depends(shared)):
            return s
    """)
    deps = textwrap.dedent("""\
        from fastapi import Depends

        def shared():
            return 1

        def middle(s=Depends(shared)):
            return s
    """)
    files = [SourceFile("app/b.py", api_b), SourceFile("app/deps.py", deps), SourceFile("app/a.py", api_a),
             SourceFile("app/__init__.py", "")]
    parsed, _ = engine.parse_files(files, Options())
    model: ProjectModel = engine.build_model(parsed, Options())
    routes = model.fact("dependency_routes")
    assert routes == {("app/deps.py", "middle"): "GET /a", ("app/deps.py", "shared"): "GET /a"}


def test_a_process_that_ends_after_its_run_keeps_only_the_last_runs_model(tmp_path, monkeypatch) -> None:
    """The command line leaves a run's model to the operating system (`engine.RETAINED`); a
    `--fix` loop runs the analysis several times and keeps the last one only."""
    from loopsafe import engine
    from loopsafe.model import Options, SourceFile

    monkeypatch.setattr(engine, "RETAINED", [])
    files = [SourceFile("a.py", "async def f(db):\n    return db.query(X).all()\n", str(tmp_path / "a.py"))]
    for cache_dir in (tmp_path / "cache", tmp_path / "cache", None):
        engine.check_files(files, Options(), str(tmp_path), cache_dir=cache_dir)
    [kept] = engine.RETAINED
    assert any(type(part).__name__ == "ProjectModel" for part in kept)
    del kept
    # and the last run's goes before the next one makes its own: never two models alive
    import gc

    from loopsafe.semantic import ProjectModel

    built = engine.build_model
    alive: list[int] = []

    def counting(*args, **kwargs):
        model = built(*args, **kwargs)
        gc.collect()
        alive.append(sum(1 for o in gc.get_objects() if type(o) is ProjectModel))
        return model

    monkeypatch.setattr(engine, "build_model", counting)
    engine.check_files(files, Options(), str(tmp_path), cache_dir=None)
    assert alive == [1]
