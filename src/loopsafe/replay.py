"""Replaying a `loopsafe check` whose inputs have not changed, without analysing anything.

A warm run that only loads cached results still pays for importing the CLI, resolving
the configuration, walking the tree, reading and hashing every file and rendering
(0.2 s on a 380-file project, most of it fixed costs). Like `make`, a run can instead
prove that nothing it read has changed and print what the last identical run printed.

A *record* is written after a plain `check` (no stdin, `--fix`, `--diff`, `--add-noqa`,
`--write-baseline`, `--output-file` or `--no-cache`) in the cache directory:

- its key: loopsafe's version and source files, the interpreter, the working directory,
  the arguments, the environment and which standard streams are terminals (and their
  size): anything else that shapes the output;
- its inputs: every file and directory the run read or listed, with what `os.stat` said
  of it (inode, size, modification and change times). Discovery, configuration lookup,
  the FastAPI pin reader and the baseline report what they read through :func:`note_file`
  and :func:`note_dir`; a directory's times change when an entry is added, removed or
  renamed, so a new file is noticed;
- what the run wrote to stdout and stderr, in order, and its exit status;
- for a run that summarised the project's modules: their module names, the cache they were
  kept in and the number of jobs, so that a run this record cannot answer (files changed)
  can have the changed files summarised ahead (:mod:`loopsafe.ahead`).

A later run with the same key replays the record when every input still stats the same.
Timestamps have a granularity, so an input changed shortly before the recorded run
started could change again without its times moving (git's "racy clean" problem): such
inputs are checked by content (a hash of the bytes the run read, or of the directory
listing), and when that is unknown the record is not written.

This module is imported before anything else on the command line's path: it imports
only the standard library's cheapest modules.
"""
from __future__ import annotations

import marshal
import os
import sys

from loopsafe import __version__
from loopsafe._hash import blake2b

#: inputs changed this close before the run started (ns) are checked by content
_RACY_NS = 2_000_000_000
_FORMAT = 2
_DIR = "replay"
_KEEP = 16
#: environment variables that change between otherwise identical runs and not the output
_VOLATILE_ENV = frozenset({"OLDPWD", "_", "SHLVL"})


def _stat(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _kind_of(path: str) -> int:
    """0: nothing there, 1: a file, 2: a directory, 3: something else (as os.stat follows links)."""
    sig = _stat(path)
    if sig is None:
        return 0
    kind = sig[0] & 0o170000
    return 1 if kind == 0o100000 else 2 if kind == 0o040000 else 3


def _digest(data: bytes) -> bytes:
    return blake2b(data, digest_size=16).digest()


def _listing_digest(names) -> bytes:
    return _digest("\0".join(sorted(names)).encode("utf-8", "surrogateescape"))


def _code_signature() -> list:
    """What identifies the installed loopsafe: its version and the stat of its source files
    (an edit of an editable install must not replay output of the old code)."""
    here = os.path.dirname(os.path.abspath(__file__))
    sig: list = [__version__]
    for folder in (here, os.path.join(here, "rules")):
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            if name.endswith(".py"):
                sig.append((name, _stat(os.path.join(folder, name))))
    return sig


def _terminal(fd: int) -> tuple:
    if not os.isatty(fd):
        return (False,)
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return (True,)
    return (True, size.columns, size.lines)


def run_key(argv: list[str]) -> str:
    env = sorted((k, v) for k, v in os.environ.items() if k not in _VOLATILE_ENV)
    material = (_FORMAT, _code_signature(), sys.executable, sys.version, os.getcwd(), list(argv), env,
                [_terminal(fd) for fd in (0, 1, 2)])
    return blake2b(repr(material).encode("utf-8", "surrogateescape"), digest_size=16).hexdigest()


class _Tee:
    """A standard stream that also keeps what is written to it, in order with the other one."""

    def __init__(self, stream, fd: int, chunks: list) -> None:
        self._stream = stream
        self._fd = fd
        self._chunks = chunks

    def write(self, text: str) -> int:
        written = self._stream.write(text)  # first: click probes with bytes, which must fail
        self._chunks.append((self._fd, text))
        return written

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


class Recorder:
    """Collects one run's inputs and output; :meth:`finish` writes the record."""

    def __init__(self, argv: list[str]) -> None:
        import time

        self.start_ns = time.time_ns()
        self.key = run_key(argv)
        self.inputs: dict[str, tuple] = {}
        self.chunks: list = []
        self.cache_dir: str | None = None
        #: what `loopsafe.ahead` needs of this run (`note_summaries`), or None
        self.ahead: tuple | None = None
        self.ok = True
        self._streams = (sys.stdout, sys.stderr)
        sys.stdout = _Tee(sys.stdout, 1, self.chunks)
        sys.stderr = _Tee(sys.stderr, 2, self.chunks)

    def note(self, kind: str, path: str, data: bytes | None = None, names=None, sig=None) -> None:
        """`data`: what the run read of the input (a file's bytes, a listing's digest), when
        at hand; its digest is kept only if the input's times cannot be trusted (racy).
        `sig`: how it stats (`_stat`; `_kind_of` for an existence probe)."""
        if kind == "e":
            self.inputs[(kind, path)] = (sig, None, False, None)
            return
        racy = sig is not None and max(sig[3], sig[4]) >= self.start_ns - _RACY_NS
        previous = self.inputs.get((kind, path))
        if previous is not None and previous[1] is not None and data is None:
            return  # already known by content
        content = None
        if racy and data is not None:
            content = _digest(data) if kind == "f" else data
        self.inputs[(kind, path)] = (sig, content, racy, names)

    def _settled(self) -> list | None:
        """The inputs as they are now, if they are as the run saw them; else None.

        An input that changed while the run went on makes the output stale: not recorded.
        The one change allowed is the run's own: creating the cache directory inside a
        folder it listed (the project root, on a first run).
        """
        own_parent, own_name = os.path.split(os.path.abspath(self.cache_dir or ""))
        entries = []
        for (kind, path), (sig, content, racy, names) in self.inputs.items():
            if kind == "e":
                if _kind_of(path) != sig:
                    return None
                entries.append((kind, path, sig, None, False))
                continue
            now = _stat(path)
            if now != sig:
                if kind != "d" or names is None or now is None:
                    return None
                try:
                    listing = os.listdir(path)
                except OSError:
                    return None
                expected = set(names) | ({own_name} if path == own_parent else set())
                if set(listing) != expected:
                    return None
                sig, content, racy = now, _listing_digest(listing), True
            if racy and content is None:
                return None  # changed just before the run, and its content is unknown
            entries.append((kind, path, sig, content, racy))
        # the input edited since is most often one changed shortly before: checked first,
        # a replay that cannot be is given up after a few checks instead of most of them
        return sorted(entries, key=lambda e: (-max(e[2][3], e[2][4]) if type(e[2]) is tuple else 0, e[0], e[1]))

    def finish(self, exit_code: int) -> None:
        sys.stdout, sys.stderr = self._streams
        if not self.ok or self.cache_dir is None or exit_code not in (0, 1):
            return  # a usage error or a crash is not worth replaying
        inputs = self._settled()
        if inputs is None:
            return
        record = (_FORMAT, inputs, [(fd, text) for fd, text in self.chunks], exit_code, self.ahead)
        folder = os.path.join(self.cache_dir, _DIR)
        try:
            os.makedirs(folder, exist_ok=True)
            tmp = os.path.join(folder, f".tmp-{os.getpid()}")
            with open(tmp, "wb") as f:
                marshal.dump(record, f)
            os.replace(tmp, os.path.join(folder, self.key))
            _prune(folder)
        except (OSError, ValueError):
            pass  # a read-only cache makes runs slower, not wrong


def _prune(folder: str) -> None:
    """Keep the most recent records: each command line, environment and terminal has its own
    (a CI job's changing environment would otherwise add one per run)."""
    with os.scandir(folder) as it:
        records = [(entry.stat().st_mtime_ns, entry.path) for entry in it if not entry.name.startswith(".")]
    for _mtime, path in sorted(records, reverse=True)[_KEEP:]:
        try:
            os.unlink(path)
        except OSError:
            pass


_RECORDER: Recorder | None = None
#: the `Inputs` being noted
_COLLECTORS: list = []
_UNKNOWN = object()


def start(argv: list[str]) -> Recorder:
    global _RECORDER
    _RECORDER = Recorder(argv)
    return _RECORDER


def stop() -> None:
    global _RECORDER
    _RECORDER = None


def recording() -> bool:
    return _RECORDER is not None


def note_file(path: str, data: bytes | None = None) -> None:
    """The run read the file at `path` (`data`: the bytes it read, when at hand)."""
    if _RECORDER is not None or _COLLECTORS:
        _note("f", os.path.abspath(path), data)


def note_exists(path: str) -> None:
    """The run looked whether `path` exists (a marker, a `.gitignore`, `.git`): only that
    counts, not its times (`.git` changes with every git command)."""
    if _RECORDER is not None or _COLLECTORS:
        _note("e", os.path.abspath(path))


def note_dir(path: str, names=None) -> None:
    """The run listed the directory at `path` (`names`: the listing): a directory's times
    change when an entry is added, removed or renamed. A probe for one file in a directory
    is a :func:`note_exists` of that file: unrelated changes to a busy folder
    (`/tmp`) must not defeat replay."""
    if _RECORDER is not None or _COLLECTORS:
        _note("d", os.path.abspath(path), _listing_digest(names) if names is not None else None, names)


def _note(kind: str, path: str, data=None, names=None, sig=_UNKNOWN) -> None:
    if sig is _UNKNOWN:
        sig = _kind_of(path) if kind == "e" else _stat(path)
    if _RECORDER is not None:
        _RECORDER.note(kind, path, data, names, sig)
    for inputs in _COLLECTORS:
        inputs.entries[(kind, path)] = sig


class Inputs:
    """What a part of a run reads, noted (as for a record) while the block it is entered
    for runs, with how each input stat'ed then: for a part whose outcome can be kept
    (discovery's) and trusted as long as its inputs stat the same."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], object] = {}
        import time

        self.start_ns = time.time_ns()

    def __enter__(self) -> "Inputs":
        _COLLECTORS.append(self)
        return self

    def __exit__(self, *exc) -> None:
        _COLLECTORS.remove(self)

    def settled(self) -> bool:
        """No input changed shortly before it was read (its times could hide a change)."""
        limit = self.start_ns - _RACY_NS
        return all(type(sig) is not tuple or max(sig[3], sig[4]) < limit for sig in self.entries.values())

    def unchanged(self) -> bool:
        """Every input stats as it did (an input that did not exist still does not)."""
        for (kind, path), sig in self.entries.items():
            if (_kind_of(path) if kind == "e" else _stat(path)) != sig:
                return False
        return True

    def noted_again(self) -> None:
        """What these inputs were read for is reused: the run read them (for its record)."""
        for (kind, path), sig in self.entries.items():
            _note(kind, path, sig=sig)


def note_summaries(cache_root: str, jobs: int, modules: dict[str, tuple[str, str, bool]]) -> None:
    """The run summarised the project's modules (absolute path -> (shown path, module name,
    is a package)), cached in `cache_root`, with `jobs` processes (`loopsafe.ahead`)."""
    if _RECORDER is not None:
        _RECORDER.ahead = (cache_root, jobs, modules)


def allow(cache_dir: str | os.PathLike[str] | None) -> None:
    """The command line says this run may be replayed, recorded in `cache_dir`."""
    if _RECORDER is not None:
        _RECORDER.cache_dir = os.fspath(cache_dir) if cache_dir is not None else None


def forbid() -> None:
    """Something this run did is not captured by a record (it wrote files, read stdin)."""
    if _RECORDER is not None:
        _RECORDER.ok = False


def _candidate_dirs(argv: list[str]) -> list[str]:
    """Where the record of this command may be: the cache directory it names, else a
    `.loopsafe_cache` in the working directory, a path it names, or a folder above them."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "--cache-dir" and i + 1 < len(argv):
            out.append(argv[i + 1])
        elif arg.startswith("--cache-dir="):
            out.append(arg.partition("=")[2])
    if os.environ.get("LOOPSAFE_CACHE_DIR"):
        out.append(os.environ["LOOPSAFE_CACHE_DIR"])
    starts = [os.getcwd(), *(os.path.abspath(a) for a in argv[1:] if not a.startswith("-") and os.path.exists(a))]
    for start in starts:
        directory = start if os.path.isdir(start) else os.path.dirname(start)
        while True:
            out.append(os.path.join(directory, ".loopsafe_cache"))
            parent = os.path.dirname(directory)
            if parent == directory:
                break
            directory = parent
    return out


def _still_valid(inputs) -> bool:
    for kind, path, sig, content, racy in inputs:
        if kind == "e":
            if _kind_of(path) != sig:
                return False
            continue
        if _stat(path) != sig:
            return False
        if racy:
            try:
                if kind == "d":
                    now = _listing_digest(os.listdir(path))
                else:
                    with open(path, "rb") as f:
                        now = _digest(f.read())
            except OSError:
                return False
            if now != content:
                return False
    return True


#: the record `replay` found and could not replay: (its inputs, its `Recorder.ahead`)
_STALE: tuple | None = None


def stale() -> tuple | None:
    """The inputs and the summaries' hints (`note_summaries`) of the last identical run, when
    `replay` found its record but some input changed since."""
    return _STALE


def replay(argv: list[str]) -> int | None:
    """Print what the last identical run printed and return its exit status, or None."""
    global _STALE
    if not argv or argv[0] != "check" or "-" in argv:
        return None
    key = run_key(argv)
    seen: set[str] = set()
    for directory in _candidate_dirs(argv):
        path = os.path.join(directory, _DIR, key)
        if path in seen:
            continue
        seen.add(path)
        try:
            with open(path, "rb") as f:
                # `marshal.load` reads a file in small pieces: 5 ms for a 700-file record, 0.5 ms so
                record = marshal.loads(f.read())
        except (OSError, EOFError, ValueError, TypeError):
            continue
        if not (isinstance(record, tuple) and len(record) == 5 and record[0] == _FORMAT):
            continue
        _format, inputs, chunks, exit_code, ahead = record
        if not _still_valid(inputs):
            _STALE = (inputs, ahead)
            return None
        streams = {1: sys.stdout, 2: sys.stderr}
        for fd, text in chunks:
            streams[fd].write(text)
        return exit_code
    return None
