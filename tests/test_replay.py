"""A `loopsafe check` whose inputs have not changed is replayed, and anything that could
change its output makes it run again (loopsafe.replay).

Runs go through the real entry point in a subprocess. Whether a run was replayed is told
by `-X importtime`: a replay never imports the command line (`loopsafe.cli`)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from loopsafe import replay

APP = textwrap.dedent("""\
    from fastapi import FastAPI
    from sqlalchemy.orm import Session

    app = FastAPI()

    @app.get("/items")
    async def items(db: Session):
        return db.query(Item).all()
""")


def check(project: Path, *args: str, env: dict | None = None, stdin: str | None = None):
    """Run `loopsafe check` in `project`: (stdout, stderr without import timings, exit status, replayed?)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "loopsafe", "check", *args],
                          cwd=project, capture_output=True, text=True, input=stdin,
                          env={**os.environ, **(env or {})})
    imports = [line for line in proc.stderr.splitlines() if line.startswith("import time:")]
    stderr = "\n".join(line for line in proc.stderr.splitlines() if not line.startswith("import time:"))
    return proc.stdout, stderr, proc.returncode, not any(line.endswith(" loopsafe.cli") for line in imports)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'demo'\n")
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


def test_an_unchanged_run_is_replayed_with_the_same_output_and_status(project: Path) -> None:
    first = check(project)
    assert first[2] == 1 and "LOOP101" in first[0] and not first[3]
    second = check(project)
    assert second == (*first[:3], True)
    assert check(project, "--exit-zero")[2:] == (0, False)  # other arguments: another record
    assert check(project, "--exit-zero")[2:] == (0, True)


@pytest.mark.parametrize("change", [
    "edit keeping size and mtime", "new module", "new module in a new folder", "gitignore", "config",
    "removed module", "environment",
])
def test_a_change_to_any_input_runs_the_analysis_again(project: Path, change: str) -> None:
    before = check(project)
    assert check(project)[3]
    env = None
    app = project / "app.py"
    if change == "edit keeping size and mtime":
        st = app.stat()
        text = app.read_text().replace("db.query(Item).all()", "[Item, Item, Item]  ")
        assert len(text) == len(app.read_text())
        app.write_text(text)
        os.utime(app, ns=(st.st_atime_ns, st.st_mtime_ns))  # the change time still moves
    elif change == "new module":
        (project / "other.py").write_text(APP.replace("/items", "/other"))
    elif change == "new module in a new folder":
        (project / "pkg").mkdir()
        (project / "pkg" / "mod.py").write_text(APP.replace("/items", "/other"))
    elif change == "gitignore":
        (project / ".gitignore").write_text("app.py\n")
    elif change == "config":
        with (project / "pyproject.toml").open("a") as f:
            f.write("[tool.loopsafe]\nignore = ['LOOP101']\n")
    elif change == "removed module":
        app.unlink()
    elif change == "environment":
        env = {"LOOPSAFE_OUTPUT_FORMAT": "concise"}
    after = check(project, env=env)
    assert not after[3]
    assert after[:3] != before[:3]
    assert check(project, env=env) == (*after[:3], True)


def test_runs_that_read_stdin_write_files_or_skip_the_cache_are_never_replayed(project: Path) -> None:
    for args in (["--no-cache"], ["-o", "out.txt"], ["--diff"], ["--write-baseline", "b.json"]):
        check(project, *args)
        assert not check(project, *args)[3], args
    check(project, "-", "--stdin-filename", "app.py", stdin=APP)
    assert not check(project, "-", "--stdin-filename", "app.py", stdin=APP)[3]


def test_parse_errors_and_findings_are_replayed_in_the_order_they_were_written(project: Path) -> None:
    (project / "broken.py").write_text("def f(:\n")
    first = check(project, "--output-format", "json")
    assert "broken.py" in first[1] and '"LOOP101"' in first[0]
    assert check(project, "--output-format", "json") == (*first[:3], True)


def test_an_input_changed_just_before_the_run_is_compared_by_content(tmp_path: Path) -> None:
    """Timestamps have a granularity: a file recorded within it is checked by its bytes."""
    path = tmp_path / "a.py"
    path.write_text("x = 1\n")
    recorder = replay.start(["check"])
    try:
        replay.note_file(str(path), path.read_bytes())
        replay.note_file(str(tmp_path / "unknown.py"))  # absent: nothing to be racy about
    finally:
        recorder.finish(0)
        replay.stop()
    recorder.cache_dir = str(tmp_path / "cache")
    entries = recorder._settled()
    [(kind, name, sig, content, racy)] = [entry for entry in entries if entry[1] == str(path)]
    assert racy and content is not None
    assert replay._still_valid(entries)
    # the same stat with other bytes (as a second write within one timestamp tick leaves it)
    forged = [(k, n, s, replay._digest(b"x = 2\n") if n == str(path) else c, r) for k, n, s, c, r in entries]
    assert not replay._still_valid(forged)


def test_a_racy_input_of_unknown_content_is_not_recorded(project: Path) -> None:
    check(project, "--write-baseline", "baseline.json")
    assert check(project, "--baseline", "baseline.json")[2] == 0
    assert not check(project, "--baseline", "baseline.json")[3]


def test_replay_can_be_turned_off_alone(project: Path) -> None:
    off = {"LOOPSAFE_NO_REPLAY": "1"}
    first = check(project, env=off)
    assert check(project, env=off) == (*first[:3], False)
    assert list((project / ".loopsafe_cache").rglob("*.pickle"))  # the rest of the cache still works


def test_only_the_most_recent_records_are_kept(project: Path) -> None:
    for i in range(replay._KEEP + 3):
        check(project, env={"SOME_CI_RUN_ID": str(i)})
    assert len(list((project / ".loopsafe_cache" / "replay").iterdir())) == replay._KEEP
    assert check(project, env={"SOME_CI_RUN_ID": str(replay._KEEP + 2)})[3]  # the newest is still there


def test_a_record_made_from_a_kept_walk_still_notices_a_new_module(project: Path) -> None:
    # a walk of inputs changed more than 2 s before is kept (loopsafe.discovery.discover_kept);
    # a run that reuses it must still record what the walk read, or a new module would
    # leave a stale record replayed
    import time

    cache = f"{project}-cache"  # outside: creating it would change the project folder's times
    (project / "pkg").mkdir()
    (project / "pkg" / "mod.py").write_text("x = 1\n")  # only the walk lists pkg/
    time.sleep(2.1)
    assert not check(project, "--cache-dir", cache)[3]  # walks, keeps the walk, records
    assert list(Path(cache).glob("*/discovery/*/*.pickle"))
    second = check(project, "--cache-dir", cache, "--exit-zero")  # another record, from the kept walk
    assert not second[3] and second[2] == 0
    (project / "pkg" / "other.py").write_text(APP.replace("/items", "/other"))
    third = check(project, "--cache-dir", cache, "--exit-zero")
    assert not third[3] and third[0] != second[0] and "other.py" in third[0]
