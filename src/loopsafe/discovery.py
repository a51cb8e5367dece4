"""Which files get checked, and how their bytes become text.

This module owns file discovery for the command line: walking the paths the user named,
skipping what should never be analysed (VCS metadata, virtualenvs, caches, build output),
honouring ``.gitignore`` files and the ``exclude`` / ``extend-exclude`` settings, and
decoding each file the way the Python interpreter would (BOM and PEP 263 coding cookie).

Files that cannot be read or decoded do not abort a run: they come back as
:class:`~loopsafe.model.ParseError` entries, so one bad file costs one diagnostic.

Exclusion semantics follow ruff's:

* A pattern without a ``/`` (``.mypy_cache``, ``foo_*.py``) matches a file or directory
  with that name anywhere in the tree.
* A pattern with a ``/`` (``app/generated``, ``tests/**/fixtures``) is anchored at the
  project root (the directory holding the configuration file).
* ``exclude`` replaces :data:`DEFAULT_EXCLUDE`; ``extend-exclude`` adds to it.
* Paths named explicitly on the command line are checked even if excluded, unless
  ``force_exclude`` is set (as the pre-commit hook does, since it passes every staged file).

``.gitignore`` files use git's own pattern language, implemented here (no dependency):
``*``, ``?``, ``[...]``, ``**``, leading ``/`` (anchored), trailing ``/`` (directories only),
``!`` negation and backslash escapes. Nested ``.gitignore`` files apply below their directory
and override shallower ones. As in git, a file inside an ignored directory cannot be
re-included, because the directory is never entered.

Symbolic links are never followed out of the root being walked. Directory links are not
followed at all: their target is either outside the root (off limits) or inside it (and
so already walked under its real name), and not following them makes loops impossible.
"""
from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import PurePath
from typing import Iterable, Sequence

from loopsafe import replay
from loopsafe.decoding import DecodeError, decode_source  # noqa: F401 - read here, and part of this module's API
from loopsafe._hash import blake2b
from loopsafe.model import ParseError, SourceFile

#: Directory and file names that are never worth analysing. Replaced by ``exclude``,
#: extended by ``extend-exclude`` (as ruff does).
DEFAULT_EXCLUDE: tuple[str, ...] = (
    ".bzr",
    ".direnv",
    ".eggs",
    ".git",
    ".hg",
    ".loopsafe_cache",
    ".mypy_cache",
    ".nox",
    ".pytest_cache",
    ".ruff_cache",
    ".svn",
    ".tox",
    ".venv",
    "__pycache__",
    "__pypackages__",
    "build",
    "dist",
    "env",
    "node_modules",
    "site-packages",
    "venv",
)

PYTHON_SUFFIX = ".py"


# --------------------------------------------------------------------------- paths


def display_path(path: str | os.PathLike[str], cwd: str | os.PathLike[str]) -> str:
    """How a path is shown to the user: relative to *cwd* when below it, else absolute.

    Separators are always ``/`` so output is identical on every platform (the JSON
    format promises this, and the text formats share the same paths).
    """
    cwd = os.path.abspath(cwd)
    absolute = os.path.normpath(os.path.join(cwd, os.fspath(path)))
    if os.sep == "/" and absolute.startswith(cwd.rstrip("/") + "/"):
        return absolute[len(cwd.rstrip("/")) + 1:]  # the common case, without relpath's work
    if _is_within(absolute, cwd):
        shown = os.path.relpath(absolute, cwd)
    else:
        shown = absolute
    return PurePath(shown).as_posix()


def _is_within(path: str, root: str) -> bool:
    """Whether *path* is *root* or below it (both absolute and normalised)."""
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives on Windows
        return False


# --------------------------------------------------------------------------- globs


def glob_to_regex(pattern: str) -> str:
    """Translate a gitignore-style glob into a regular expression over ``/``-separated paths.

    ``*`` and ``?`` never match ``/``; ``**`` as a whole path component matches any number
    of directories (including none); any other ``**`` is an ordinary ``*``, as in git.
    The result is meant for ``re.fullmatch``.
    """
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            j = i
            while j < n and pattern[j] == "*":
                j += 1
            starts_component = i == 0 or pattern[i - 1] == "/"
            ends_component = j == n or pattern[j] == "/"
            if j - i >= 2 and starts_component and ends_component:
                if j == n:
                    # "a/**" (or a bare "**"): everything below
                    out.append(".*")
                else:
                    # "**/b" or "a/**/b": zero or more whole directories
                    out.append("(?:.*/)?")
                    j += 1  # the "/" is part of the optional group
            else:
                out.append("[^/]*")
            i = j
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            klass, i = _translate_class(pattern, i)
            out.append(klass)
        elif c == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def _translate_class(pattern: str, start: int) -> tuple[str, int]:
    """Translate the ``[...]`` starting at *start*; an unterminated ``[`` is a literal."""
    i = start + 1
    negate = i < len(pattern) and pattern[i] in "!^"
    if negate:
        i += 1
    body_start = i
    # a "]" right after the opening bracket is a member, not the end
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    if i >= len(pattern):
        return re.escape("["), start + 1
    members = []
    j = body_start
    while j < i:
        ch = pattern[j]
        if ch == "\\" and j + 1 < i:
            members.append(re.escape(pattern[j + 1]))
            j += 2
        elif ch == "-" and j != body_start and j + 1 < i:
            members.append("-")  # a range; "-" first or last is a literal
            j += 1
        else:
            members.append(re.escape(ch))
            j += 1
    body = "".join(members)
    # a class never matches the separator, negated or not
    return (f"(?!/)[^{body}]" if negate else f"(?!/)[{body}]"), i + 1


def _compiles(source: str) -> bool:
    try:
        re.compile(source, re.DOTALL)
    except re.error:
        return False
    return True


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    """Compile a glob; raises ``re.error`` for an impossible class such as ``[z-a]``."""
    return re.compile(glob_to_regex(pattern), re.DOTALL)


def check_glob(pattern: str) -> str | None:
    """Why *pattern* is not a usable glob, or ``None`` if it is (for config validation)."""
    try:
        _compile(pattern)
    except re.error as exc:
        return str(exc)
    return None


# --------------------------------------------------------------------------- gitignore


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    """One line of a ``.gitignore`` file."""

    pattern: str  # the glob, without "!", a leading "/" or a trailing "/"
    source: str  # the glob as a regular expression, compiled when first matched
    negated: bool
    dir_only: bool
    #: matched against the path relative to the .gitignore's directory (else the basename)
    anchored: bool

    @property
    def regex(self) -> re.Pattern[str]:
        # most rules are never matched one by one (see IgnoreFile.quick): compiling each
        # of dispatch's 135 rules took a tenth of its discovery
        return re.compile(self.source, re.DOTALL)

    def matches(self, relpath: str, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        subject = relpath if self.anchored else relpath.rpartition("/")[2]
        return self.regex.fullmatch(subject) is not None


def parse_gitignore_line(line: str, *, check: bool = True) -> IgnoreRule | None:
    """Parse one ``.gitignore`` line; ``None`` for blanks and comments, and (unless `check`
    is false: the caller checks) for a pattern that does not compile."""
    line = line.rstrip("\n").rstrip("\r")
    # trailing spaces are ignored unless escaped with a backslash
    stripped = line.rstrip(" ")
    if stripped.endswith("\\") and len(stripped) < len(line):
        stripped += " "
    line = stripped
    if not line or line.startswith("#"):
        return None
    negated = line.startswith("!")
    if negated:
        line = line[1:]
    elif line.startswith("\\!") or line.startswith("\\#"):
        line = line[1:]
    dir_only = line.endswith("/") and not line.endswith("\\/")
    if dir_only:
        line = line.rstrip("/")
    if not line:
        return None
    # a separator at the start or in the middle anchors the pattern to the file's directory
    anchored = "/" in line
    if line.startswith("/"):
        line = line[1:]
    source = glob_to_regex(line)
    if check and not _compiles(source):  # git silently ignores a pattern it cannot use; so do we
        return None
    return IgnoreRule(
        pattern=line,
        source=source,
        negated=negated,
        dir_only=dir_only,
        anchored=anchored,
    )


@dataclass(frozen=True, slots=True)
class IgnoreFile:
    """The rules of one ``.gitignore`` file and the directory they are relative to."""

    base: str  # absolute directory
    rules: tuple[IgnoreRule, ...]
    #: every rule in one regex per subject (the relative path; the basename), or None: a
    #: path none can match is decided by two matches, not one per rule (dispatch's ignore
    #: files made discovery 120,000 matches)
    quick: tuple[re.Pattern[str] | None, re.Pattern[str] | None] | None = field(default=None, compare=False)

    @classmethod
    def from_text(cls, base: str, text: str) -> "IgnoreFile":
        # git splits on "\n" only (str.splitlines would also split on form feeds etc.)
        rules = tuple(rule for rule in (parse_gitignore_line(line, check=False) for line in text.split("\n"))
                      if rule is not None)
        quick = _quick(rules)
        if quick is None:  # some pattern does not compile: git ignores it, and so do we
            rules = tuple(rule for rule in rules if _compiles(rule.source))
            quick = _quick(rules)
        return cls(base, rules, quick)

    @classmethod
    def load(cls, directory: str) -> "IgnoreFile | None":
        try:
            with open(os.path.join(directory, ".gitignore"), "rb") as f:
                data = f.read()
        except OSError:
            replay.note_exists(os.path.join(directory, ".gitignore"))  # one created here would count
            return None
        replay.note_file(os.path.join(directory, ".gitignore"), data)
        text = data.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
        ignore = cls.from_text(directory, text)
        return ignore if ignore.rules else None

    def decide(self, path: str, is_dir: bool) -> bool | None:
        """``True`` ignored, ``False`` re-included by ``!``, ``None`` no rule matched."""
        prefix = self.base.rstrip(os.sep) + os.sep
        if not path.startswith(prefix):  # not below this file's directory
            return None
        rel = path[len(prefix):].replace(os.sep, "/")
        if self.quick is not None:
            anchored, basename = self.quick
            if not ((anchored is not None and anchored.fullmatch(rel) is not None)
                    or (basename is not None and basename.fullmatch(rel.rpartition("/")[2]) is not None)):
                return None
        decision = None
        for rule in self.rules:  # the last matching rule wins
            if rule.matches(rel, is_dir):
                decision = not rule.negated
        return decision


def _quick(rules: tuple[IgnoreRule, ...]) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None] | None:
    """`IgnoreFile.quick`: one pattern per subject for all the rules; None if one does not compile."""
    try:
        return tuple(re.compile("|".join(f"(?:{r.source})" for r in rules if r.anchored is anchored), re.DOTALL)
                     if any(r.anchored is anchored for r in rules) else None
                     for anchored in (True, False))  # type: ignore[return-value]
    except re.error:
        return None


def is_gitignored(path: str, is_dir: bool, ignores: Sequence[IgnoreFile]) -> bool:
    """Apply a stack of ignore files ordered from the outermost to the innermost."""
    ignored = False
    for ignore in ignores:
        decision = ignore.decide(path, is_dir)
        if decision is not None:
            ignored = decision
    return ignored


# --------------------------------------------------------------------------- exclude


@dataclass(frozen=True)
class ExcludeMatcher:
    """``exclude`` / ``extend-exclude`` globs, ruff style (see the module docstring)."""

    project_root: str
    patterns: tuple[str, ...]
    _basename: re.Pattern[str] | None = field(init=False, repr=False)
    _anchored: re.Pattern[str] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        basename, anchored = [], []
        for raw in self.patterns:
            pattern = raw.replace(os.sep, "/").rstrip("/")
            if pattern.startswith("./"):
                pattern = pattern[2:]
            if not pattern or check_glob(pattern) is not None:
                continue  # config validation reports bad globs; never crash a walk on one
            if "/" in pattern:
                if not os.path.isabs(pattern):
                    root = PurePath(self.project_root).as_posix().rstrip("/")
                    pattern = f"{_escape_glob(root)}/{pattern}"
                anchored.append(_compile(pattern))
            else:
                basename.append(_compile(pattern))
        # one pattern for all: each path of a walk is matched once, not once per glob
        object.__setattr__(self, "_basename", _alternatives(basename))
        object.__setattr__(self, "_anchored", _alternatives(anchored))

    def matches(self, path: str) -> bool:
        """Whether the absolute *path* (a file or directory) is excluded by itself."""
        if self._basename is not None and self._basename.fullmatch(os.path.basename(path)):
            return True
        return self._anchored is not None and self._anchored.fullmatch(path.replace(os.sep, "/")) is not None


def _alternatives(patterns: list[re.Pattern[str]]) -> re.Pattern[str] | None:
    """One pattern that fully matches what one of *patterns* fully matches."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p.pattern})" for p in patterns), re.DOTALL)


def _escape_glob(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


# --------------------------------------------------------------------------- discovery


@dataclass(frozen=True)
class DiscoverySettings:
    project_root: str
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    extend_exclude: tuple[str, ...] = ()
    respect_gitignore: bool = True
    force_exclude: bool = False


@dataclass
class Discovery:
    """The outcome of a walk: absolute paths of files to check, plus directories we could not list."""

    files: list[str] = field(default_factory=list)
    errors: list[ParseError] = field(default_factory=list)
    #: a link to a Python file was met (whether it counts depends on its target, which no
    #: listing of a folder walked need show)
    links: bool = False


def is_virtualenv(directory: str) -> bool:
    """A virtualenv is recognised by its ``pyvenv.cfg``, whatever the directory is called."""
    return os.path.isfile(os.path.join(directory, "pyvenv.cfg"))


def discover(paths: Sequence[str], settings: DiscoverySettings, *, cwd: str | None = None) -> Discovery:
    """Expand *paths* (files or directories, relative to *cwd*) into the Python files to check.

    Every path must exist (the CLI checks this first, to exit with a usage error).
    The result is sorted and free of duplicates, including duplicates reached through
    symbolic links. Directories that cannot be listed are reported in ``errors``.
    """
    return _Walker(settings, os.path.abspath(cwd or os.getcwd())).run(paths)


def discover_kept(paths: Sequence[str], settings: DiscoverySettings, *, cwd: str | None = None,
                  cache_dir: str | os.PathLike[str] | None = None) -> Discovery:
    """`discover`, kept in the cache and reused while every directory it listed and every
    file it read (`.gitignore`s) stats the same: a directory's times change when an entry is
    added, removed or renamed. These are the inputs a replayed run checks (`loopsafe.replay`);
    a walk that read an input changed shortly before, met an error or a link to a Python
    file (its target may change where no listing shows it) is not kept, nor one of named
    files or with `force-exclude`. On a 700-file project the walk is 17 ms, its check 2 ms."""
    cwd = os.path.abspath(cwd or os.getcwd())
    # a path named on the command line is looked at (is it a folder, a link, excluded, in a
    # virtualenv?) where no listing shows a change: only walks of folders, with nothing
    # excluded by name, are kept
    if cache_dir is None or settings.force_exclude or \
            not all(os.path.isdir(os.path.join(cwd, path)) for path in paths):
        return discover(paths, settings, cwd=cwd)
    from loopsafe.cache import Cache

    cache = Cache(cache_dir)
    key = blake2b(repr((list(paths), settings, cwd)).encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()
    kept = cache.load_entry("discovery", key)
    if type(kept) is tuple and len(kept) == 2 and isinstance(kept[0], replay.Inputs) and kept[0].unchanged():
        kept[0].noted_again()
        return Discovery(list(kept[1]))
    with replay.Inputs() as inputs:
        found = discover(paths, settings, cwd=cwd)
    if not found.errors and not found.links and inputs.settled():
        cache.store_entry("discovery", key, (inputs, tuple(found.files)))
    return found


def is_excluded(path: str, settings: DiscoverySettings, *, cwd: str | None = None) -> bool:
    """Whether *path* (or a directory above it, up to the project root) would be skipped.

    This is what ``--force-exclude`` applies to explicitly named paths, including the
    ``--stdin-filename`` of code piped in by an editor.
    """
    cwd = os.path.abspath(cwd or os.getcwd())
    walker = _Walker(settings, cwd)
    path = os.path.normpath(os.path.join(cwd, path))
    return walker.explicitly_excluded(path, os.path.isdir(path))


class _Walker:
    def __init__(self, settings: DiscoverySettings, cwd: str) -> None:
        self.settings = settings
        self.cwd = cwd
        self.project_root = os.path.normpath(os.path.join(cwd, settings.project_root))
        self.exclude = ExcludeMatcher(self.project_root, settings.exclude + settings.extend_exclude)
        self.result = Discovery()
        self.seen_real: set[str] = set()
        #: (path, realpath) of links to files, admitted after everything else is known
        self.linked: list[tuple[str, str]] = []

    def run(self, paths: Sequence[str]) -> Discovery:
        for raw in paths:
            path = os.path.normpath(os.path.join(self.cwd, raw))
            is_dir = os.path.isdir(path)
            if self.settings.force_exclude and self.explicitly_excluded(path, is_dir):
                continue
            if is_dir:
                self.walk(path)
            else:
                # Named explicitly: checked whatever its extension, and even if it is a link.
                self.add(path, os.path.realpath(path))
        # A link to a file is checked only when its target is not checked under its own name.
        for path, real in self.linked:
            self.add(path, real)
        self.result.files.sort()
        return self.result

    def add(self, path: str, real: str) -> None:
        if real not in self.seen_real:
            self.seen_real.add(real)
            self.result.files.append(path)

    def error(self, path: str, exc: OSError, what: str) -> None:
        self.result.errors.append(_io_error(display_path(path, self.cwd), exc, what))

    def explicitly_excluded(self, path: str, is_dir: bool) -> bool:
        """Would a walk from the project root have skipped *path* or a directory above it?"""
        # Only components below the project root count: a project checked out under
        # ~/build/ must not be excluded because of the "build" in its own location.
        if _is_within(self.project_root, path):
            return False
        chain = [path]
        parent = os.path.dirname(path)
        while parent != self.project_root and _is_within(parent, self.project_root):
            chain.append(parent)
            parent = os.path.dirname(parent)
        for item in chain:
            item_is_dir = is_dir if item == path else True
            if self.exclude.matches(item) or (item_is_dir and is_virtualenv(item)):
                return True
        if self.settings.respect_gitignore:
            ignores = _ancestor_ignores(os.path.dirname(path), self.project_root)
            for item in chain:
                item_is_dir = is_dir if item == path else True
                if is_gitignored(item, item_is_dir, ignores):
                    return True
        return False

    def walk(self, root: str) -> None:
        settings = self.settings
        real_root = os.path.realpath(root)
        ignores = _ancestor_ignores(os.path.dirname(root), self.project_root) if settings.respect_gitignore else []
        # (dev, inode) of directories entered: a bind mount or a root given twice cannot loop us
        visited: set[tuple[int, int]] = set()
        # each folder with its real path: the walk descends into folders, never into links to
        # them, so a file's real path is its folder's plus its name (no realpath() per file)
        stack: list[tuple[str, list[IgnoreFile], str]] = [(root, ignores, real_root)]
        while stack:
            directory, ignores, real_dir = stack.pop()
            try:
                st = os.stat(directory)
                key = (st.st_dev, st.st_ino)
                if key in visited:
                    continue
                visited.add(key)
                with os.scandir(directory) as it:
                    entries = sorted(it, key=lambda e: e.name)
                replay.note_dir(directory, [e.name for e in entries] if replay.recording() else None)
            except OSError as exc:
                self.error(directory, exc, "could not read directory")
                continue
            if settings.respect_gitignore:
                own = IgnoreFile.load(directory)
                if own is not None:
                    ignores = [*ignores, own]
            subdirs = []
            for entry in entries:
                kind = self.classify(entry, ignores)
                if kind == "dir":
                    subdirs.append(entry)
                elif kind == "file":
                    self.add(entry.path, os.path.join(real_dir, entry.name))
                elif kind == "link":
                    self.consider_link(entry.path, real_root, ignores)
            # LIFO stack: push in reverse so siblings are visited in name order
            stack.extend((d.path, ignores, os.path.join(real_dir, d.name)) for d in reversed(subdirs))

    def classify(self, entry: os.DirEntry[str], ignores: Sequence[IgnoreFile]) -> str | None:
        """``"dir"`` to descend, ``"file"`` to check, ``"link"`` to decide later, else ``None``."""
        path = entry.path
        try:
            is_link = entry.is_symlink()
            is_dir = entry.is_dir(follow_symlinks=False)
            is_file = entry.is_file(follow_symlinks=False)
        except OSError:
            return None
        if self.exclude.matches(path):
            return None
        if is_link:
            return "link" if entry.name.endswith(PYTHON_SUFFIX) else None
        if is_dir:
            if is_virtualenv(path):
                replay.note_exists(os.path.join(path, "pyvenv.cfg"))  # checked once this is gone
                return None
            if self.settings.respect_gitignore and is_gitignored(path, True, ignores):
                return None
            return "dir"  # even when it is called "something.py"
        # Only regular files: reading a FIFO or a device could block forever.
        if not is_file or not entry.name.endswith(PYTHON_SUFFIX):
            return None
        if self.settings.respect_gitignore and is_gitignored(path, False, ignores):
            return None
        return "file"

    def consider_link(self, path: str, real_root: str, ignores: Sequence[IgnoreFile]) -> None:
        """Remember a link to a regular file inside the root; directory links are not followed."""
        self.result.links = True
        real = os.path.realpath(path)
        if not _is_within(real, real_root):
            return
        try:
            mode = os.stat(path).st_mode
        except OSError:  # dangling link, or a cycle of links
            return
        if not stat.S_ISREG(mode):
            return
        if self.settings.respect_gitignore and is_gitignored(path, False, ignores):
            return
        self.linked.append((path, real))


def _ancestor_ignores(directory: str, project_root: str) -> list[IgnoreFile]:
    """The ``.gitignore`` files that govern entries of *directory*, outermost first.

    They are looked for up to the repository top (the nearest directory with ``.git``);
    outside a repository, only within the project root.
    """
    chain = [directory]
    current = directory
    top = None
    while True:
        replay.note_exists(os.path.join(current, ".git"))
        if os.path.exists(os.path.join(current, ".git")):
            top = current
            break
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
        chain.append(current)
    if top is None:
        # Outside a repository only the project's own .gitignore files mean anything.
        chain = [d for d in chain if _is_within(d, project_root)]
    ignores = (IgnoreFile.load(d) for d in reversed(chain))
    return [ignore for ignore in ignores if ignore is not None]


# --------------------------------------------------------------------------- reading


def read_source(path: str, display: str) -> SourceFile | ParseError:
    """Read and decode one file; any failure becomes a :class:`ParseError` for *display*."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        return _io_error(display, exc, "could not read file")
    replay.note_file(path, data)
    return source_from_bytes(data, display, abspath=path)


def source_from_bytes(data: bytes, display: str, abspath: str = "") -> SourceFile | ParseError:
    try:
        text = decode_source(data)
    except DecodeError as exc:
        return ParseError(display, exc.line, exc.column, f"EncodingError: {exc.message}")
    return SourceFile(path=display, text=text, abspath=abspath)


def read_sources(files: Iterable[str], cwd: str) -> tuple[list[SourceFile], list[ParseError]]:
    """Read every discovered file, splitting the readable from the unreadable."""
    sources: list[SourceFile] = []
    errors: list[ParseError] = []
    for path in files:
        item = read_source(path, display_path(path, cwd))
        (errors if isinstance(item, ParseError) else sources).append(item)  # type: ignore[arg-type]
    return sources, errors


def _io_error(path: str, exc: OSError, what: str) -> ParseError:
    reason = exc.strerror or str(exc)
    return ParseError(path, 1, 1, f"OSError: {what}: {reason}")
