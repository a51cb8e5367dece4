"""File discovery, gitignore semantics, exclusion and decoding (loopsafe.discovery)."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from loopsafe.discovery import (
    DEFAULT_EXCLUDE,
    DecodeError,
    DiscoverySettings,
    ExcludeMatcher,
    IgnoreFile,
    decode_source,
    discover,
    display_path,
    glob_to_regex,
    is_excluded,
    is_gitignored,
    parse_gitignore_line,
    read_source,
    read_sources,
)
from loopsafe.model import ParseError, SourceFile

needs_symlinks = pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")


def make_tree(root: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def found(root: Path, paths=(".",), **settings) -> list[str]:
    """Discovered files as posix paths relative to *root*."""
    result = discover(list(paths), DiscoverySettings(str(root), **settings), cwd=str(root))
    assert result.errors == []
    return [Path(p).relative_to(root).as_posix() for p in result.files]


# --------------------------------------------------------------------------- glob semantics


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.py", "a.py", True),
        ("*.py", "dir/a.py", False),  # "*" never crosses "/"
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("**/foo", "foo", True),
        ("**/foo", "a/b/foo", True),
        ("foo/**", "foo/a/b", True),
        ("foo/**", "foo", False),
        ("a/**/b", "a/b", True),
        ("a/**/b", "a/x/y/b", True),
        ("a/**/b", "a/xb", False),
        ("a**b", "axxb", True),  # not a whole component: an ordinary "*"
        ("a**b", "ax/b", False),
        ("[abc].py", "b.py", True),
        ("[!abc].py", "b.py", False),
        ("[!abc].py", "d.py", True),
        ("[a-c]x", "bx", True),
        ("[a-c]x", "dx", False),
        ("a[/]b", "a/b", False),  # a class never matches the separator
        ("[!a]b", "/b", False),
        (r"\*.py", "*.py", True),
        (r"\*.py", "a.py", False),
        ("[unclosed", "[unclosed", True),
        ("a.b", "axb", False),  # "." is literal
    ],
)
def test_glob_to_regex(pattern: str, path: str, matches: bool) -> None:
    assert bool(re.fullmatch(glob_to_regex(pattern), path)) is matches


# --------------------------------------------------------------------------- gitignore lines


@pytest.mark.parametrize("line", ["", "   ", "# comment", "!", "/"])
def test_gitignore_lines_without_rules(line: str) -> None:
    assert parse_gitignore_line(line) is None


def test_gitignore_line_flags() -> None:
    rule = parse_gitignore_line("!/build/")
    assert rule is not None
    assert (rule.negated, rule.dir_only, rule.anchored, rule.pattern) == (True, True, True, "build")
    plain = parse_gitignore_line("*.log")
    assert plain is not None and not plain.anchored and not plain.dir_only
    assert parse_gitignore_line("\\#not-a-comment").matches("#not-a-comment", False)
    assert parse_gitignore_line("\\!important").matches("!important", False)
    # trailing spaces are dropped unless escaped
    assert parse_gitignore_line("foo   ").matches("foo", False)
    assert parse_gitignore_line("foo\\ ").matches("foo ", False)
    # git skips patterns it cannot use instead of failing
    assert parse_gitignore_line("[z-a]") is None
    ignore = IgnoreFile.from_text("/repo", "[z-a]\n*.log\n!keep.log\n")
    assert [rule.pattern for rule in ignore.rules] == ["*.log", "keep.log"] and ignore.quick is not None
    assert ignored("[z-a]\n*.log\n!keep.log\n", "a/b.log") and not ignored("[z-a]\n*.log\n!keep.log\n", "keep.log")


def ignored(text: str, rel: str, is_dir: bool = False, base: str = "/repo") -> bool:
    ignore = IgnoreFile.from_text(base, text)
    return is_gitignored(f"{base}/{rel}", is_dir, [ignore])


@pytest.mark.parametrize(
    ("text", "rel", "is_dir", "expected"),
    [
        ("foo", "foo", False, True),
        ("foo", "a/b/foo", False, True),  # no slash: matches at any depth
        ("/foo", "foo", False, True),
        ("/foo", "a/foo", False, False),  # leading slash anchors
        ("a/foo", "a/foo", False, True),
        ("a/foo", "x/a/foo", False, False),  # a middle slash anchors too
        ("build/", "build", True, True),
        ("build/", "build", False, False),  # trailing slash: directories only
        ("*.py\n!keep.py", "keep.py", False, False),
        ("*.py\n!keep.py", "drop.py", False, True),
        ("!keep.py\n*.py", "keep.py", False, True),  # the last matching line wins
        ("**/gen/*.py", "a/gen/x.py", False, True),
        ("doc/**/*.txt", "doc/a/b/c.txt", False, True),
    ],
)
def test_gitignore_semantics(text: str, rel: str, is_dir: bool, expected: bool) -> None:
    assert ignored(text, rel, is_dir) is expected


def test_nested_gitignore_overrides_outer() -> None:
    outer = IgnoreFile.from_text("/repo", "*.py\n")
    inner = IgnoreFile.from_text("/repo/pkg", "!*.py\n")
    assert is_gitignored("/repo/pkg/a.py", False, [outer, inner]) is False
    assert is_gitignored("/repo/a.py", False, [outer, inner]) is True


def test_nested_gitignore_anchors_to_its_own_directory() -> None:
    inner = IgnoreFile.from_text("/repo/pkg", "/gen.py\n")
    assert is_gitignored("/repo/pkg/gen.py", False, [inner])
    assert not is_gitignored("/repo/gen.py", False, [inner])
    assert not is_gitignored("/repo/pkg/sub/gen.py", False, [inner])


# --------------------------------------------------------------------------- exclude globs


def test_exclude_matcher_basename_and_anchored(tmp_path: Path) -> None:
    root = str(tmp_path)
    matcher = ExcludeMatcher(root, ("migrations", "*_pb2.py", "app/generated", "tests/**/data"))
    assert matcher.matches(f"{root}/x/migrations")
    assert matcher.matches(f"{root}/proto/thing_pb2.py")
    assert matcher.matches(f"{root}/app/generated")
    assert not matcher.matches(f"{root}/lib/app/generated")  # anchored at the project root
    assert matcher.matches(f"{root}/tests/a/b/data")
    assert not matcher.matches(f"{root}/app/api.py")


# --------------------------------------------------------------------------- walking


def test_walk_finds_python_files_sorted(tmp_path: Path) -> None:
    make_tree(tmp_path, {"b.py": "", "a/z.py": "", "a/y.py": "", "a/notes.txt": "", "a/stub.pyi": ""})
    assert found(tmp_path) == ["a/y.py", "a/z.py", "b.py"]


@pytest.mark.parametrize(
    "directory",
    [".git", "venv", ".venv", "env", ".tox", ".nox", "node_modules", "build", "dist", "__pycache__",
     "site-packages", ".loopsafe_cache", ".mypy_cache", ".pytest_cache"],
)
def test_default_excludes(tmp_path: Path, directory: str) -> None:
    assert directory in DEFAULT_EXCLUDE
    make_tree(tmp_path, {f"{directory}/x.py": "", f"pkg/{directory}/y.py": "", "app.py": ""})
    assert found(tmp_path) == ["app.py"]


def test_virtualenv_detected_by_pyvenv_cfg(tmp_path: Path) -> None:
    make_tree(tmp_path, {"my-python/pyvenv.cfg": "home = /usr/bin\n", "my-python/lib/x.py": "", "app.py": ""})
    assert found(tmp_path) == ["app.py"]


def test_exclude_replaces_defaults_and_extend_exclude_adds(tmp_path: Path) -> None:
    make_tree(tmp_path, {"build/a.py": "", "gen/b.py": "", "app/c_pb2.py": "", "app/c.py": ""})
    assert found(tmp_path) == ["app/c.py", "app/c_pb2.py", "gen/b.py"]  # build/ is a default
    assert found(tmp_path, extend_exclude=("gen", "*_pb2.py")) == ["app/c.py"]
    # "exclude" replaces the default list, so build/ comes back
    assert found(tmp_path, exclude=("gen",)) == ["app/c.py", "app/c_pb2.py", "build/a.py"]


def test_directory_named_like_a_python_file(tmp_path: Path) -> None:
    make_tree(tmp_path, {"weird.py/inner.py": ""})
    assert found(tmp_path) == ["weird.py/inner.py"]


def test_gitignore_respected_at_root_and_nested(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".gitignore": "generated/\n*_local.py\n",
            "app/.gitignore": "/scratch.py\n!keep_local.py\n",
            "app/api.py": "",
            "app/scratch.py": "",
            "app/keep_local.py": "",
            "app/sub/scratch.py": "",
            "settings_local.py": "",
            "generated/models.py": "",
        },
    )
    assert found(tmp_path) == ["app/api.py", "app/keep_local.py", "app/sub/scratch.py"]
    assert found(tmp_path, respect_gitignore=False) == [
        "app/api.py", "app/keep_local.py", "app/scratch.py", "app/sub/scratch.py",
        "generated/models.py", "settings_local.py",
    ]


def test_file_in_ignored_directory_cannot_be_reincluded(tmp_path: Path) -> None:
    make_tree(tmp_path, {".gitignore": "out/\n!out/keep.py\n", "out/keep.py": "", "a.py": ""})
    assert found(tmp_path) == ["a.py"]


def test_gitignore_above_the_checked_directory_applies_inside_a_repository(tmp_path: Path) -> None:
    make_tree(tmp_path, {".git/HEAD": "", ".gitignore": "app/gen/\n", "app/gen/x.py": "", "app/api.py": ""})
    assert found(tmp_path, paths=("app",)) == ["app/api.py"]


def test_explicit_paths_bypass_exclusion_unless_forced(tmp_path: Path) -> None:
    make_tree(tmp_path, {".gitignore": "ignored.py\n", "ignored.py": "", "build/out.py": "", "script": ""})
    assert found(tmp_path, paths=("ignored.py", "build/out.py", "script")) == ["build/out.py", "ignored.py", "script"]
    assert found(tmp_path, paths=("ignored.py", "build/out.py", "build"), force_exclude=True) == []
    assert found(tmp_path, paths=("build",)) == ["build/out.py"]


def test_force_exclude_ignores_the_project_roots_own_location(tmp_path: Path) -> None:
    # a project that happens to live in a directory called "build"
    root = tmp_path / "build"
    make_tree(root, {"app.py": ""})
    assert found(root, paths=("app.py",), force_exclude=True) == ["app.py"]
    assert found(root, paths=(".",), force_exclude=True) == ["app.py"]


def test_is_excluded_for_stdin_filename(tmp_path: Path) -> None:
    make_tree(tmp_path, {"migrations/.keep": ""})
    settings = DiscoverySettings(str(tmp_path), extend_exclude=("migrations",))
    assert is_excluded("migrations/0001.py", settings, cwd=str(tmp_path))
    assert not is_excluded("app/api.py", settings, cwd=str(tmp_path))


def test_duplicate_paths_are_checked_once(tmp_path: Path) -> None:
    make_tree(tmp_path, {"app/a.py": ""})
    assert found(tmp_path, paths=("app", "app/a.py", ".")) == ["app/a.py"]


@needs_symlinks
def test_symlink_loop_terminates(tmp_path: Path) -> None:
    make_tree(tmp_path, {"pkg/a.py": ""})
    os.symlink(tmp_path, tmp_path / "pkg" / "loop")
    os.symlink("self", tmp_path / "self")  # a link to itself
    os.symlink("b_link", tmp_path / "a_link.py")
    os.symlink("a_link.py", tmp_path / "b_link")
    assert found(tmp_path) == ["pkg/a.py"]


@needs_symlinks
def test_symlinks_out_of_the_root_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    make_tree(outside, {"secret.py": "", "pkg/x.py": ""})
    root = tmp_path / "root"
    make_tree(root, {"app.py": ""})
    os.symlink(outside / "secret.py", root / "secret.py")
    os.symlink(outside / "pkg", root / "pkg")
    assert found(root) == ["app.py"]


@needs_symlinks
def test_symlinked_file_inside_root_is_not_checked_twice(tmp_path: Path) -> None:
    make_tree(tmp_path, {"real.py": "", "data/entry": ""})
    os.symlink("real.py", tmp_path / "alias.py")
    # a link whose target is not a .py file is checked under the link's name
    os.symlink("data/entry", tmp_path / "entry.py")
    assert found(tmp_path) == ["entry.py", "real.py"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_named_py_is_not_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.py")
    make_tree(tmp_path, {"a.py": ""})
    assert found(tmp_path) == ["a.py"]


def test_unlistable_directory_is_a_parse_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tree(tmp_path, {"ok/a.py": "", "locked/b.py": ""})
    real_scandir = os.scandir

    def scandir(path):
        if os.path.basename(path) == "locked":
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = discover(["."], DiscoverySettings(str(tmp_path)), cwd=str(tmp_path))
    assert [Path(p).name for p in result.files] == ["a.py"]
    assert len(result.errors) == 1
    assert result.errors[0].path == "locked"
    assert "Permission denied" in result.errors[0].message


# --------------------------------------------------------------------------- reading and decoding


def test_display_path(tmp_path: Path) -> None:
    assert display_path(tmp_path / "a" / "b.py", tmp_path) == "a/b.py"
    assert display_path("a/../c.py", tmp_path) == "c.py"
    elsewhere = tmp_path.parent / "other.py"
    assert display_path(elsewhere, tmp_path) == elsewhere.as_posix()


def test_decode_utf8_default_and_bom() -> None:
    assert decode_source("x = 'é'\n".encode()) == "x = 'é'\n"
    assert decode_source(b"\xef\xbb\xbfx = 1\n") == "x = 1\n"  # the BOM is not part of the text


def test_decode_honours_coding_cookie() -> None:
    data = "# -*- coding: latin-1 -*-\nname = 'café'\n".encode("latin-1")
    assert "café" in decode_source(data)


def test_decode_errors_carry_a_position() -> None:
    with pytest.raises(DecodeError) as info:
        decode_source(b"a = 1\nb = '\xff'\n")
    assert (info.value.line, info.value.column) == (2, 6)
    assert "utf-8" in info.value.message


def test_decode_error_in_the_first_lines_still_has_a_position() -> None:
    # detect_encoding itself fails here, with no position; we still point at the byte
    with pytest.raises(DecodeError) as info:
        decode_source(b"x = '\xe9'\n")
    assert (info.value.line, info.value.column) == (1, 6)


def test_decode_unknown_cookie() -> None:
    with pytest.raises(DecodeError, match="unknown encoding"):
        decode_source(b"# coding: klingon\nx = 1\n")


def _decoded_by_detect_encoding(data: bytes) -> tuple[str, object]:
    """What the interpreter's own rule gives: ("ok", text) or ("error", position)."""
    import io
    import tokenize

    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return "ok", data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError):
        return "error", None


@pytest.mark.parametrize("first", [b"", b"x = 1", b"# comment", b"# -*- coding: latin-1 -*-", b"# vim: set fileencoding=cp1252 :",
                                   b"\xef\xbb\xbf# coding: utf-8", b"\xef\xbb\xbfx = 1", b"x = '\xe9'", b"# coding: klingon",
                                   b"encoding = 'x'"])
@pytest.mark.parametrize("second", [b"", b"# coding: latin-1", b"y = '\xe9'", b"y = '\xc3\xa9'", b"z = 2"])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_decode_agrees_with_detect_encoding(first: bytes, second: bytes, newline: bytes) -> None:
    # decode_source skips detect_encoding when no BOM or cookie can be there: same outcome
    data = first + newline + second + newline + "w = 'é'".encode("latin-1" if b"latin" in first + second else "utf-8")
    expected = _decoded_by_detect_encoding(data)
    try:
        got: tuple[str, object] = "ok", decode_source(data)
    except DecodeError:
        got = "error", None
    assert got == expected


def test_read_source(tmp_path: Path) -> None:
    make_tree(tmp_path, {"good.py": "x = 1\n", "bad.py": b"# coding: utf-8\nx = '\xfe'\n"})
    good = read_source(str(tmp_path / "good.py"), "good.py")
    assert good == SourceFile(path="good.py", text="x = 1\n", abspath=str(tmp_path / "good.py"))
    bad = read_source(str(tmp_path / "bad.py"), "bad.py")
    assert isinstance(bad, ParseError)
    assert (bad.path, bad.line) == ("bad.py", 2)
    assert "cannot decode" in bad.message


def test_unreadable_file_is_a_parse_error(tmp_path: Path) -> None:
    # A directory stands in for an unreadable file: opening it fails on every platform,
    # even as root (for whom permission bits mean nothing).
    (tmp_path / "x.py").mkdir()
    error = read_source(str(tmp_path / "x.py"), "x.py")
    assert isinstance(error, ParseError)
    assert error.path == "x.py" and error.message.startswith("OSError: could not read file")


def test_read_sources_splits_good_from_bad(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a.py": "a = 1\n", "b.py": b"\xff\n"})
    sources, errors = read_sources([str(tmp_path / "a.py"), str(tmp_path / "b.py")], str(tmp_path))
    assert [s.path for s in sources] == ["a.py"]
    assert [e.path for e in errors] == ["b.py"]


# --------------------------------------------------------------------------- a kept walk

def _settled_tree(root: Path) -> None:
    """A small project whose files and folders were last modified long ago."""
    make_tree(root, {"app/main.py": "x = 1\n", "app/db/models.py": "y = 2\n", "build/gen.py": "z = 3\n",
                     ".gitignore": "build/\n", "README.md": "hi\n"})
    past = os.stat(root).st_mtime - 100
    for path in [root, *root.rglob("*")]:
        os.utime(path, (past, past))


#: changes to the tree, each of which changes what a walk finds
CHANGES = {
    "file added": lambda r: (r / "app" / "new.py").write_text(""),
    "file removed": lambda r: (r / "app" / "main.py").unlink(),
    "file renamed": lambda r: (r / "app" / "main.py").rename(r / "app" / "main2.py"),
    "folder with a file added": lambda r: make_tree(r, {"app/api/routes.py": ""}),
    ".gitignore edited": lambda r: (r / ".gitignore").write_text("app/db/\n"),
    ".gitignore added in a folder": lambda r: (r / "app" / ".gitignore").write_text("main.py\n"),
    "folder made a virtualenv": lambda r: (r / "app" / "db" / "pyvenv.cfg").write_text(""),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_kept_walk_is_reused_until_what_it_read_changes(change: str, tmp_path: Path, monkeypatch) -> None:
    from loopsafe import discovery, replay

    root = tmp_path / "project"
    _settled_tree(root)
    # setting the times back (above) sets the change times to now: what was read just now is
    # trusted here, which the times set back make safe (any change moves them)
    monkeypatch.setattr(replay, "_RACY_NS", 0)
    settings = DiscoverySettings(project_root=str(root))
    cache = tmp_path / "cache"
    walks: list[int] = []
    real = discovery.discover
    monkeypatch.setattr(discovery, "discover", lambda *a, **kw: walks.append(1) or real(*a, **kw))
    first = discovery.discover_kept([str(root)], settings, cwd=str(root), cache_dir=cache)
    assert first.files == real([str(root)], settings, cwd=str(root)).files
    assert discovery.discover_kept([str(root)], settings, cwd=str(root), cache_dir=cache).files == first.files
    assert len(walks) == 1  # the second run checked what the first read, and walked nothing
    CHANGES[change](root)
    after = discovery.discover_kept([str(root)], settings, cwd=str(root), cache_dir=cache)
    assert after.files == real([str(root)], settings, cwd=str(root)).files != first.files
    assert len(walks) == 2


def test_a_walk_that_read_something_just_changed_is_not_kept(tmp_path: Path, monkeypatch) -> None:
    # a folder's times could hide a change made within the same tick: not trusted, not kept
    from loopsafe import discovery

    root = tmp_path / "project"
    _settled_tree(root)
    (root / "app" / "new.py").write_text("")  # app/ changed just now
    settings = DiscoverySettings(project_root=str(root))
    walks: list[int] = []
    real = discovery.discover
    monkeypatch.setattr(discovery, "discover", lambda *a, **kw: walks.append(1) or real(*a, **kw))
    for _ in range(2):
        found = discovery.discover_kept([str(root)], settings, cwd=str(root), cache_dir=tmp_path / "cache")
        assert found.files == real([str(root)], settings, cwd=str(root)).files
    assert len(walks) == 2


@needs_symlinks
def test_a_walk_that_met_a_link_to_a_python_file_is_not_kept(tmp_path: Path, monkeypatch) -> None:
    # whether the link counts depends on its target, which may change in a folder the walk
    # never listed (an ignored one): not kept
    from loopsafe import discovery, replay

    root = tmp_path / "project"
    _settled_tree(root)
    (root / "app" / "link.py").symlink_to(root / "build" / "gen.py")
    past = os.stat(root).st_mtime
    os.utime(root / "app", (past, past))
    monkeypatch.setattr(replay, "_RACY_NS", 0)
    settings = DiscoverySettings(project_root=str(root))
    first = discovery.discover_kept([str(root)], settings, cwd=str(root), cache_dir=tmp_path / "cache")
    assert str(root / "app" / "link.py") in first.files and first.links
    (root / "build" / "gen.py").unlink()  # build/ is ignored: no folder the walk listed changed
    after = discovery.discover_kept([str(root)], settings, cwd=str(root), cache_dir=tmp_path / "cache")
    assert str(root / "app" / "link.py") not in after.files


@pytest.mark.parametrize("how", ["a file named", "force-exclude"])
def test_walks_of_named_files_or_with_force_exclude_are_not_kept(how: str, tmp_path: Path, monkeypatch) -> None:
    # a named path is looked at (a folder? a link? in a virtualenv?) where no listing shows
    # a change: `app/main.py` named, then made a link elsewhere, would be found as before
    from loopsafe import discovery, replay

    root = tmp_path / "project"
    _settled_tree(root)
    monkeypatch.setattr(replay, "_RACY_NS", 0)
    settings = DiscoverySettings(project_root=str(root), force_exclude=how == "force-exclude")
    paths = [str(root / "app" / "main.py")] if how == "a file named" else [str(root)]
    walks: list[int] = []
    real = discovery.discover
    monkeypatch.setattr(discovery, "discover", lambda *a, **kw: walks.append(1) or real(*a, **kw))
    for _ in range(2):
        discovery.discover_kept(paths, settings, cwd=str(root), cache_dir=tmp_path / "cache")
    assert len(walks) == 2 and not list((tmp_path / "cache").glob("*/discovery/*/*.pickle"))
