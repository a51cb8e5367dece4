"""Incremental runs give the findings a full run gives, and make again only what an edit touches.

Every project fixture is analysed with a cache; then each of its files is edited in several
ways, one edit at a time, and the incremental run's findings (the last run's state, the
edited file re-parsed) must equal those of a run without any cache.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from loopsafe import engine, incremental
from loopsafe.model import Options, SourceFile

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PROJECTS = sorted(p for p in (FIXTURES / "projects").iterdir() if p.is_dir())

#: edits that change what a file's summary says, each applied to one file at a time
EDITS = {
    "function appended": lambda text: text + "\n\ndef _edit_helper(rows):\n    return [r for r in rows if r]\n",
    "coroutines made plain": lambda text: text.replace("async def ", "def "),
    "functions renamed": lambda text: text.replace("def ", "def renamed_"),
    "emptied": lambda text: "",
    "does not parse": lambda text: text + "\ndef broken(:\n",
}


def project_files(root: Path, texts: dict[str, str] | None = None) -> list[SourceFile]:
    files = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        text = texts[rel] if texts is not None and rel in texts else path.read_text()
        files.append(SourceFile(rel, text, str(path)))
    return files


def keyset(report) -> list[tuple]:
    # the whole finding, fix and chain included
    return sorted(dataclasses.astuple(f) for f in report.findings)


def analysed_once(project: Path, cache: Path, monkeypatch) -> tuple[list[SourceFile], Options, list[str]]:
    """A project's files, analysed once with a cache; the list the next runs' frames go to."""
    files = project_files(project)
    options = Options(select=("LOOP",))
    made = frames_made(monkeypatch)
    engine.check_files(files, options, str(project), cache_dir=cache)
    assert sorted(made) == sorted(f.path for f in files)
    made.clear()
    return files, options, made


def frames_made(monkeypatch) -> list[str]:
    made: list[str] = []
    real = engine.run_frames

    def counting(parsed, model, options, paths, **kw):
        paths = list(paths)
        made.extend(paths)
        return real(parsed, model, options, paths, **kw)

    real_start = engine.start_frames

    def counting_started(parsed, model, options, paths, **kw):
        child = real_start(parsed, model, options, paths, **kw)
        made.extend(paths if child is not None else ())  # else run_frames makes them
        return child

    monkeypatch.setattr(engine, "run_frames", counting)
    monkeypatch.setattr(engine, "start_frames", counting_started)
    return made


@pytest.mark.parametrize("kept", ["whole", "journal"])
@pytest.mark.parametrize("project", PROJECTS, ids=[p.name for p in PROJECTS])
def test_incremental_runs_match_full_runs_after_each_edit(project: Path, kept: str, tmp_path: Path,
                                                          monkeypatch) -> None:
    # "journal": every run after the first keeps only its changes to the state (a small
    # project's edits are otherwise too big a share of its state to be journaled)
    monkeypatch.setattr(incremental, "_JOURNAL_MAX_SHARE", 0.0 if kept == "whole" else 1.0)
    options = Options(select=("LOOP",))
    cache = tmp_path / "cache"
    files = project_files(project)
    engine.check_files(files, options, str(project), cache_dir=cache)
    for target in files:
        for name, edit in EDITS.items():
            edited = project_files(project, {target.path: edit(target.text)})
            after = engine.check_files(edited, options, str(project), cache_dir=cache)
            full = engine.check_files(edited, options, str(project))
            assert keyset(after) == keyset(full), f"{name} in {target.path}"
            assert sorted(after.parse_errors, key=str) == sorted(full.parse_errors, key=str)
            # and back: the state of the edited run is the one the next run starts from
            back = engine.check_files(files, options, str(project), cache_dir=cache)
            assert keyset(back) == keyset(engine.check_files(files, options, str(project)))


def test_a_journal_is_written_after_an_edit_and_folded_into_the_state_when_it_grows(tmp_path: Path,
                                                                                  monkeypatch) -> None:
    project = FIXTURES / "projects" / "lifecycle_shop"
    cache = tmp_path / "cache"
    files, options, made = analysed_once(project, cache, monkeypatch)
    [whole] = cache.glob("*/state/*.pickle")
    written = whole.read_bytes()
    target = next(f for f in files if f.path.endswith("db.py"))
    monkeypatch.setattr(incremental, "_JOURNAL_MAX_SHARE", 1.0)
    for n in range(3):  # each edit journaled: the whole state stays as it was written
        edited = project_files(project, {target.path: target.text + f"\n\ndef _edit_{n}():\n    return {n}\n"})
        after = engine.check_files(edited, options, str(project), cache_dir=cache)
        assert keyset(after) == keyset(engine.check_files(edited, options, str(project)))
        assert whole.read_bytes() == written and whole.with_suffix(".journal").exists()
    # a journal too big a share of the state: written whole, the journal gone
    monkeypatch.setattr(incremental, "_JOURNAL_MAX_SHARE", 0.0)
    edited = project_files(project, {target.path: EDITS["function appended"](target.text)})
    after = engine.check_files(edited, options, str(project), cache_dir=cache)
    assert whole.read_bytes() != written and not whole.with_suffix(".journal").exists()
    made.clear()
    # (the files as first analysed would be answered by the cached results of that run)
    edited = project_files(project, {target.path: target.text + "\n\nLAST = 1\n"})
    back = engine.check_files(edited, options, str(project), cache_dir=cache)  # from the whole state
    assert target.path in made and len(made) < len(files)
    assert keyset(back) == keyset(engine.check_files(edited, options, str(project)))


def test_a_journal_of_another_state_is_not_applied(tmp_path: Path, monkeypatch) -> None:
    project = FIXTURES / "projects" / "lifecycle_shop"
    cache = tmp_path / "cache"
    files, options, made = analysed_once(project, cache, monkeypatch)
    [whole] = cache.glob("*/state/*.pickle")
    target = next(f for f in files if f.path.endswith("db.py"))
    edited = project_files(project, {target.path: EDITS["function appended"](target.text)})
    monkeypatch.setattr(incremental, "_JOURNAL_MAX_SHARE", 1.0)
    engine.check_files(edited, options, str(project), cache_dir=cache)
    journal = whole.with_suffix(".journal").read_bytes()
    # the state written whole again (as another run would), the old journal put back beside it
    monkeypatch.setattr(incremental, "_JOURNAL_MAX_SHARE", 0.0)
    other = project_files(project, {target.path: target.text + "\n\nOTHER = 1\n"})
    engine.check_files(other, options, str(project), cache_dir=cache)
    whole.with_suffix(".journal").write_bytes(journal)
    kept = incremental.load_state(engine.Cache(cache), whole.stem)
    assert kept is not None and kept.journal == {}
    made.clear()
    last = project_files(project, {target.path: target.text + "\n\nLAST = 1\n"})
    report = engine.check_files(last, options, str(project), cache_dir=cache)
    assert made == [target.path] or len(made) < len(files)
    assert keyset(report) == keyset(engine.check_files(last, options, str(project)))


def test_an_edit_makes_again_only_the_frames_that_read_the_file(tmp_path: Path, monkeypatch) -> None:
    project = FIXTURES / "projects" / "lifecycle_shop"
    cache = tmp_path / "cache"
    files, options, made = analysed_once(project, cache, monkeypatch)
    # a function nothing calls, appended to the module of the database helpers
    target = next(f for f in files if f.path.endswith("db.py"))
    edited = project_files(project, {target.path: EDITS["function appended"](target.text)})
    after = engine.check_files(edited, options, str(project), cache_dir=cache)
    assert target.path in made
    assert len(made) < len(files)
    # the files that import the helpers read them; a file that does not is not made again
    assert not any(p.endswith("__init__.py") for p in made)
    assert keyset(after) == keyset(engine.check_files(edited, options, str(project)))


def test_state_is_per_selection_and_a_new_file_starts_over(tmp_path: Path, monkeypatch) -> None:
    project = FIXTURES / "projects" / "async_shop"
    files = project_files(project)
    cache = tmp_path / "cache"
    made = frames_made(monkeypatch)
    engine.check_files(files, Options(select=("LOOP",)), str(project), cache_dir=cache)
    made.clear()
    engine.check_files(files, Options(select=("LOOP3",)), str(project), cache_dir=cache)
    assert sorted(made) == sorted(f.path for f in files)  # another selection: its own state
    made.clear()
    extra = [*files, SourceFile("shop/extra.py", "def f():\n    return 1\n", str(project / "shop" / "extra.py"))]
    report = engine.check_files(extra, Options(select=("LOOP",)), str(project), cache_dir=cache)
    assert len(made) == len(extra)
    assert keyset(report) == keyset(engine.check_files(extra, Options(select=("LOOP",)), str(project)))


def test_a_state_from_other_files_is_not_used(tmp_path: Path) -> None:
    project = FIXTURES / "projects" / "cycles"
    files = project_files(project)
    model_files = engine.parse_files(files, Options())[0]
    model = engine.build_model(model_files, Options())
    keys = {f.path: "k" for f in files}
    stale = incremental.State(("elsewhere.py",), {"elsewhere.py": "k"}, {}, {}, {}, {}, {})
    assert incremental.frames_to_redo(model, keys, stale) == set(model.module_paths())


def test_states_of_other_file_sets_are_pruned(tmp_path: Path) -> None:
    project = FIXTURES / "projects" / "cycles"
    files = project_files(project)
    cache = tmp_path / "cache"
    for n in range(7):  # each run another set of files: another state
        extra = [*files, SourceFile(f"org/extra{n}.py", "x = 1\n", str(project / "org" / f"extra{n}.py"))]
        engine.check_files(extra, Options(), str(project), cache_dir=cache)
    states = list(cache.glob("*/state/*.pickle"))
    assert 1 <= len(states) <= 4


def test_a_new_route_makes_again_only_the_frames_that_read_its_entry(tmp_path: Path, monkeypatch) -> None:
    # every frame asks whether its functions are routes; a new route changes one entry of
    # the routes fact, not what the other files' frames read of it
    project = FIXTURES / "projects" / "crud_app"
    cache = tmp_path / "cache"
    files, options, made = analysed_once(project, cache, monkeypatch)
    target = next(f for f in files if f.path == "app/api/items.py")
    route = '\n\n@router.get("/probe")\nasync def probe(db: Session = Depends(get_db)):\n    return db.query(Item).all()\n'
    edited = project_files(project, {target.path: target.text + route})
    after = engine.check_files(edited, options, str(project), cache_dir=cache)
    assert target.path in made
    assert len(made) <= 3, made
    full = engine.check_files(edited, options, str(project))
    assert keyset(after) == keyset(full)
    assert any(f.path == target.path and f.line > len(target.text.splitlines()) for f in full.findings)


def forks_counted(monkeypatch) -> list[int]:
    forks: list[int] = []
    real = os.fork

    def counting() -> int:
        pid = real()
        if pid:
            forks.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", counting)
    monkeypatch.setattr(engine, "_FORK_MIN_CHARS", 0)  # share out even a fixture's few frames
    return forks


@pytest.mark.skipif(not hasattr(os, "fork"), reason="frames are shared out among forked processes")
@pytest.mark.parametrize("project", PROJECTS, ids=[p.name for p in PROJECTS])
def test_frames_shared_with_forked_processes_give_the_same_findings(project: Path, tmp_path: Path,
                                                                    monkeypatch) -> None:
    forks = forks_counted(monkeypatch)
    options = Options(select=("LOOP",))
    cache = tmp_path / "cache"
    files = project_files(project)
    shared = engine.check_files(files, options, str(project), cache_dir=cache, jobs=2)
    assert forks
    assert keyset(shared) == keyset(engine.check_files(files, options, str(project), jobs=1))
    started = []
    real_start = engine.start_frames
    monkeypatch.setattr(engine, "start_frames", lambda *a, **kw: started.append(real_start(*a, **kw)) or started[-1])
    for target in files:
        for name in ("function appended", "coroutines made plain"):
            edited = project_files(project, {target.path: EDITS[name](target.text)})
            # the state a run with forked processes keeps serves the next one as well; the
            # edited file's frame is begun in a forked process before the others are known
            del started[:]
            after = engine.check_files(edited, options, str(project), cache_dir=cache, jobs=2)
            assert keyset(after) == keyset(engine.check_files(edited, options, str(project), jobs=1)), \
                f"{name} in {target.path}"
            if EDITS[name](target.text) != target.text:
                # (with the file the last edit changed, now back as it was)
                [child] = [c for c in started if c is not None]
                assert target.path in child.paths, f"{name} in {target.path}"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="frames are shared out among forked processes")
@pytest.mark.parametrize("child", ["works", "fails"])
def test_the_changed_files_summaries_are_stored_whichever_process_makes_their_frames(child: str, tmp_path: Path,
                                                                                      monkeypatch) -> None:
    forks = forks_counted(monkeypatch)
    project = FIXTURES / "projects" / "lifecycle_shop"
    cache = tmp_path / "cache"
    files, options, made = analysed_once(project, cache, monkeypatch)
    if child == "fails":  # before it stores anything
        parent, real = os.getpid(), engine._frames
        monkeypatch.setattr(engine, "_frames", lambda *a: real(*a) if os.getpid() == parent else 1 / 0)
    target = next(f for f in files if f.path.endswith("db.py"))
    edited = project_files(project, {target.path: EDITS["function appended"](target.text)})
    del forks[:]
    after = engine.check_files(edited, options, str(project), cache_dir=cache, jobs=2)
    assert forks and target.path in made
    assert keyset(after) == keyset(engine.check_files(edited, options, str(project)))
    name, is_package = engine.module_names(edited, str(project))[target.path]
    key = engine.file_key(EDITS["function appended"](target.text), name, is_package)
    assert isinstance(engine.Cache(cache).load_summary(key), engine.ir.ModuleIR)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="frames are shared out among forked processes")
def test_frames_a_forked_process_fails_to_make_are_made_in_this_one(tmp_path: Path, monkeypatch) -> None:
    forks = forks_counted(monkeypatch)
    project = FIXTURES / "projects" / "crud_app"
    files = project_files(project)

    def failing(*args):
        raise RuntimeError("the child's results cannot be sent")

    monkeypatch.setattr(engine, "_computed", failing)  # only the forked process calls it
    shared = engine.check_files(files, Options(), str(project), jobs=2)
    assert forks
    assert keyset(shared) == keyset(engine.check_files(files, Options(), str(project), jobs=1))
    assert shared.findings


def test_a_focused_run_brings_the_state_up_to_date_when_few_files_changed(tmp_path: Path, monkeypatch) -> None:
    # pre-commit passes the staged files: their findings, from the last whole run's state
    project = FIXTURES / "projects" / "lifecycle_shop"
    cache = tmp_path / "cache"
    files, options, made = analysed_once(project, cache, monkeypatch)
    for target in files:
        for name in ("function appended", "coroutines made plain", "emptied", "does not parse"):
            edited = project_files(project, {target.path: EDITS[name](target.text)})
            focused = engine.check_files(edited, options, str(project), cache_dir=cache, focus=[target.path])
            alone = engine.check_files(edited, options, str(project), focus=[target.path])
            assert keyset(focused) == keyset(alone), f"{name} in {target.path}"
            assert focused.parse_errors == alone.parse_errors
    made.clear()
    target = next(f for f in files if f.path.endswith("db.py"))
    edited = project_files(project, {target.path: EDITS["function appended"](target.text + "\n# again\n")})
    engine.check_files(edited, options, str(project), cache_dir=cache, focus=[target.path])
    assert target.path in made and len(made) < len(files)
    # the state was kept: the whole run after it makes nothing again
    made.clear()
    whole = engine.check_files(edited, options, str(project), cache_dir=cache)
    assert made == [] and keyset(whole) == keyset(engine.check_files(edited, options, str(project)))


def test_a_focused_run_without_a_state_makes_only_its_files_frames(tmp_path: Path, monkeypatch) -> None:
    project = FIXTURES / "projects" / "lifecycle_shop"
    files = project_files(project)
    made = frames_made(monkeypatch)
    target = files[-1].path
    engine.check_files(files, Options(select=("LOOP",)), str(project), cache_dir=tmp_path / "cache", focus=[target])
    assert made == [target]
    assert not list((tmp_path / "cache").glob("*/state/*.pickle"))


def test_a_focused_run_after_many_changes_makes_only_its_files_frames(tmp_path: Path, monkeypatch) -> None:
    project = FIXTURES / "projects" / "lifecycle_shop"
    cache = tmp_path / "cache"
    files, options, made = analysed_once(project, cache, monkeypatch)
    monkeypatch.setattr(engine, "_FOCUS_STATE_MAX_CHANGED", 1)
    monkeypatch.setattr(engine, "_FOCUS_STATE_MAX_SHARE", 0.0)
    edited = project_files(project, {f.path: EDITS["function appended"](f.text) for f in files[:2]})
    report = engine.check_files(edited, options, str(project), cache_dir=cache, focus=[files[0].path])
    assert made == [files[0].path]
    assert keyset(report) == keyset(engine.check_files(edited, options, str(project), focus=[files[0].path]))


def test_a_run_on_named_files_uses_the_state_of_a_run_on_their_project(tmp_path: Path, monkeypatch) -> None:
    # what pre-commit does after `loopsafe check .`: the files named are analysed with their
    # project, in the order a run on the project has them, so that run's state serves
    import json
    import shutil

    from click.testing import CliRunner

    from loopsafe.cli import main

    project = tmp_path / "shop"
    shutil.copytree(FIXTURES / "projects" / "lifecycle_shop", project)
    monkeypatch.chdir(project)
    runner = CliRunner()

    def check(*args: str) -> list[dict]:
        result = runner.invoke(main, ["check", *args, "--output-format", "json", "--exit-zero"],
                               catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    check(".")
    target = next(p for p in sorted(project.rglob("*.py")) if p.name == "db.py")
    rel = target.relative_to(project).as_posix()
    target.write_text(EDITS["function appended"](target.read_text()))
    made = frames_made(monkeypatch)
    named = check(rel)
    assert rel in made and len(made) < len(list(project.rglob("*.py")))
    made.clear()
    check(".")  # the state the run on the named file kept serves the next run on the project
    assert made == []
    assert named == check(rel, "--no-cache")
    assert named == [f for f in check(".", "--no-cache") if f["path"] == rel]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="frames are shared out among forked processes")
def test_what_a_forked_process_sends_that_cannot_be_read_is_made_in_this_one(monkeypatch) -> None:
    import pickle

    forks = forks_counted(monkeypatch)
    project = FIXTURES / "projects" / "crud_app"
    files = project_files(project)
    expected = keyset(engine.check_files(files, Options(), str(project), jobs=1))

    def unreadable(data, *args, **kwargs):
        raise pickle.UnpicklingError("truncated")

    monkeypatch.setattr(pickle, "loads", unreadable)
    assert keyset(engine.check_files(files, Options(), str(project), jobs=2)) == expected
    assert forks


@pytest.mark.skipif(not hasattr(os, "fork"), reason="frames are shared out among forked processes")
def test_no_forked_process_is_left_behind_when_this_one_is_interrupted(monkeypatch) -> None:
    forks = forks_counted(monkeypatch)
    project = FIXTURES / "projects" / "crud_app"
    files = project_files(project)
    real = os.fdopen

    class Interrupted(Exception):
        pass

    def interrupted(fd, mode="r", *args, **kwargs):
        if mode == "rb":  # this process reading a child's results
            raise Interrupted
        return real(fd, mode, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", interrupted)
    with pytest.raises(Interrupted):
        engine.check_files(files, Options(), str(project), jobs=2)
    assert forks
    for pid in forks:
        with pytest.raises(ChildProcessError):  # reaped: not even a zombie is left
            os.waitpid(pid, os.WNOHANG)


def test_a_journaled_state_is_the_last_pruned(tmp_path: Path, monkeypatch) -> None:
    # a run that writes only a journal still uses its state: pruning ranks states by use
    project = FIXTURES / "projects" / "cycles"
    files = project_files(project)
    cache = tmp_path / "cache"
    monkeypatch.setattr(incremental, "_JOURNAL_MAX_SHARE", 1.0)
    engine.check_files(files, Options(), str(project), cache_dir=cache)
    [kept] = cache.glob("*/state/*.pickle")
    for n in range(6):  # other file sets write their states; this one's is journaled each time
        extra = [*files, SourceFile(f"org/extra{n}.py", "x = 1\n", str(project / "org" / f"extra{n}.py"))]
        engine.check_files(extra, Options(), str(project), cache_dir=cache)
        edited = [*files[:-1], dataclasses.replace(files[-1], text=files[-1].text + f"\nX{n} = {n}\n")]
        engine.check_files(edited, Options(), str(project), cache_dir=cache)
        assert kept.exists() and kept.with_suffix(".journal").exists(), n


def test_a_new_salt_removes_all_older_salts_but_the_last_used(tmp_path: Path) -> None:
    # every loopsafe version (and, in a checkout, every edit of it) caches under its own
    # salt: the entries of older ones are never read again
    from loopsafe import cache as cache_module

    root = tmp_path / "cache"
    project = FIXTURES / "projects" / "cycles"
    files = project_files(project)
    engine.check_files(files, Options(), str(project), cache_dir=root)
    [current] = [p for p in root.iterdir() if cache_module._SALT_NAME.fullmatch(p.name)]
    for n, name in enumerate(["0123456789abcdef", "fedcba9876543210", "00000000000000aa"]):
        (root / name / "state").mkdir(parents=True)
        os.utime(root / name / "state", ns=(n * 10**9, (n + 1) * 10**9))
        os.utime(root / name, ns=(0, 0))
    current.rename(root / "1111111111111111")  # as if this loopsafe's salt were new
    os.utime(root / "1111111111111111", ns=(0, 0))
    os.utime(root / "1111111111111111" / "state", ns=(0, 5 * 10**9))  # the last used
    engine.check_files(files, Options(), str(project), cache_dir=root)
    left = sorted(p.name for p in root.iterdir() if cache_module._SALT_NAME.fullmatch(p.name))
    assert left == sorted(["1111111111111111", current.name])
    assert (root / "CACHEDIR.TAG").exists() and (root / ".gitignore").exists()  # not salts: kept
