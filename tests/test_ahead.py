"""Files changed since the last identical run are summarised ahead by a helper started with
the run (loopsafe.ahead), from what that run's record says (loopsafe.replay)."""
from __future__ import annotations

import marshal
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from loopsafe import ahead, engine, replay
from loopsafe.cache import Cache, file_key
from loopsafe.model import Options, SourceFile

SERVICE = textwrap.dedent("""\
    from sqlalchemy.orm import Session


    def get_item(db: Session, item_id: int):
        return db.query(Item).get(item_id)  # noqa: LOOP999
""")
ROUTES = textwrap.dedent("""\
    from fastapi import FastAPI
    from sqlalchemy.orm import Session

    from shop.service import get_item

    app = FastAPI()


    @app.get("/items/{item_id}")
    async def read_item(item_id: int, db: Session):
        return get_item(db, item_id)
""")
EDIT = "\n\ndef _edited(rows):\n    return [r for r in rows if r]\n"


def check(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "LOOPSAFE_OUTPUT_FORMAT")}
    return subprocess.run([sys.executable, "-m", "loopsafe", "check", "--output-format", "concise", *args],
                          cwd=project, capture_output=True, text=True, env=env)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'shop'\n")
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "__init__.py").write_text("")
    (tmp_path / "shop" / "service.py").write_text(SERVICE)
    (tmp_path / "shop" / "routes.py").write_text(ROUTES)
    return tmp_path


def record(project: Path) -> tuple:
    [path] = (project / ".loopsafe_cache" / replay._DIR).iterdir()
    with open(path, "rb") as f:
        return marshal.loads(f.read())


def test_a_record_says_which_modules_were_summarised_where_and_with_how_many_jobs(project: Path) -> None:
    assert check(project, "--jobs", "2").returncode == 1
    _format, _inputs, _chunks, _code, (root, jobs, modules) = record(project)
    assert root == str(project / ".loopsafe_cache") and jobs == 2
    service = str(project / "shop" / "service.py")
    assert modules[service] == ("shop/service.py", "shop.service", False)
    assert modules[str(project / "shop" / "__init__.py")] == ("shop/__init__.py", "shop", True)


def test_the_changed_files_are_summarised_into_the_cache_as_the_run_would(project: Path) -> None:
    assert check(project, "--jobs", "2").returncode == 1
    _format, inputs, _chunks, _code, hints = record(project)
    service = project / "shop" / "service.py"
    service.write_text(SERVICE + EDIT)
    assert ahead.summarise_changed(inputs, hints) == [str(service)]
    cache = Cache(project / ".loopsafe_cache")
    text = service.read_text()
    key = file_key(text, "shop.service", False)
    assert cache.load_summary(key) == engine.summarise(SourceFile("shop/service.py", text, str(service)),
                                                       "shop.service", False)
    # the `# noqa` map the run will ask for, too
    from loopsafe.suppression import FileNoqa
    assert FileNoqa(text, cache)._tokens is not None
    assert list((project / ".loopsafe_cache").glob("*/noqa/*/*.pickle"))
    # done once: the run after finds them, and what it reports is a full run's
    assert ahead.summarise_changed(inputs, hints) == []
    assert check(project).stdout == check(project, "--no-cache").stdout


def test_nothing_is_summarised_when_many_files_changed_or_the_run_had_one_job(project: Path) -> None:
    for n in range(ahead._MAX_FILES + 1):
        (project / "shop" / f"m{n}.py").write_text(f"X = {n}\n")
    assert check(project, "--jobs", "2").returncode == 1
    _format, inputs, _chunks, _code, hints = record(project)
    for n in range(ahead._MAX_FILES + 1):
        (project / "shop" / f"m{n}.py").write_text(f"X = {n + 1}\n")
    assert ahead.changed_files(inputs, hints[2]) is None
    assert ahead.summarise_changed(inputs, hints) == []
    # a run asked for one job gets no helper either
    ahead.start((inputs, (hints[0], 1, hints[2])))
    assert ahead._PID is None


def test_an_edited_run_with_a_helper_reports_what_a_full_run_does(project: Path) -> None:
    first = check(project, "--jobs", "2")
    service = project / "shop" / "service.py"
    for n in range(3):
        service.write_text(SERVICE.replace("item_id)", f"item_id + {n})") + EDIT)
        edited = check(project, "--jobs", "2")
        assert edited.stdout == check(project, "--no-cache").stdout and edited.returncode == first.returncode
    assert not list((project / ".loopsafe_cache").rglob(".tmp-*"))


def test_summarising_waits_for_the_helper_only_when_there_is_something_to_summarise(
        tmp_path: Path, monkeypatch) -> None:
    waits = []
    monkeypatch.setattr(ahead, "wait_summaries", lambda: waits.append(1))
    files = [SourceFile("a.py", "x = 1\n", str(tmp_path / "a.py"))]
    cache = Cache(tmp_path / "cache")
    engine.parse_files(files, Options(), str(tmp_path), cache=cache)
    assert waits == [1]
    engine.parse_files(files, Options(), str(tmp_path), cache=cache)  # all in the cache now
    assert waits == [1]


def test_the_helper_is_waited_for_and_forgotten_by_forked_processes(project: Path) -> None:
    assert check(project, "--jobs", "2").returncode == 1
    _format, inputs, _chunks, _code, hints = record(project)
    (project / "shop" / "service.py").write_text(SERVICE + EDIT)
    ahead.start((inputs, hints))
    try:
        ready = ahead._READY
        assert ahead._PID is not None and ready is not None
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the forked process: no helper, nor its pipe
            try:
                os.fstat(ready)
                os._exit(1)
            except OSError:
                os._exit(0 if ahead._PID is None and ahead._READY is None else 1)
        assert os.waitpid(pid, 0)[1] == 0
        os.fstat(ready)  # still open in this process
    finally:
        ahead.wait()
    assert ahead._PID is None and ahead._READY is None
    key = file_key((project / "shop" / "service.py").read_text(), "shop.service", False)
    assert Cache(project / ".loopsafe_cache").has_summary(key)
