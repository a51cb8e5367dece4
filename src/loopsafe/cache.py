"""On-disk cache: per-file summaries and whole-run results, as ruff does.

Layout (`.loopsafe_cache/` by default, with a `.gitignore` so it is never committed):

    <dir>/<salt>/ir/<ab>/<key>.pickle       one file's ModuleIR (or its ParseError)
    <dir>/<salt>/noqa/<ab>/<key>.pickle     one file's `# noqa` comment map (tokenizing is slow)
    <dir>/<salt>/discovery/<ab>/<key>.pickle a walk's files, and what it read (loopsafe.discovery)
    <dir>/<salt>/results/<key>.pickle       findings + parse errors of a whole run
    <dir>/<salt>/state/<key>.pickle         a project's last full state, per file (loopsafe.incremental)
    <dir>/<salt>/state/<key>.journal        what the runs since changed in it

`salt` changes whenever loopsafe's own code changes (its version and a hash of its source
files), so a new release or a local edit never reads stale entries. When a new salt's folder is
made, those of older salts go, but for the last used one. A file's key is the
hash of its text and of what its summary depends on (its dotted module name, whether it
is a package). A run's key is the hash of every file key and of the analysis options.
Entries are written atomically (temp file + rename); a corrupt or unreadable entry is a
miss, never an error.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import re
from pathlib import Path
from typing import Any

from loopsafe import __version__
from loopsafe._hash import blake2b

_KEEP_RESULTS = 8
#: a salt's directory name (`salt()`)
_SALT_NAME = re.compile(r"[0-9a-f]{16}")
#: states of a project's last runs (loopsafe.incremental), one per set of files and options
_KEEP_STATES = 4


def _code_salt() -> str:
    digest = blake2b(__version__.encode(), digest_size=8)
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        try:
            digest.update(path.read_bytes())
        except OSError:
            continue
    return digest.hexdigest()


_SALT: str | None = None


def salt() -> str:
    global _SALT
    if _SALT is None:
        _SALT = _code_salt()
    return _SALT


def _last_used(directory: Path) -> int:
    """When a salt's entries were last written (a folder's times move when an entry in it is
    created or replaced)."""
    times = []
    for sub in (directory, directory / "state", directory / "results"):
        try:
            times.append(sub.stat().st_mtime_ns)
        except OSError:
            pass
    return max(times, default=0)


def file_key(text: str, module: str, is_package: bool) -> str:
    digest = blake2b(digest_size=16)
    digest.update(f"{module}\0{int(is_package)}\0".encode())
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def run_key(file_keys: list[tuple[str, str]], options: Any) -> str:
    digest = blake2b(digest_size=16)
    digest.update(repr(options).encode())
    for path, key in sorted(file_keys):
        digest.update(f"{path}\0{key}\n".encode())
    return digest.hexdigest()


class Cache:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.root = Path(directory)
        self.base = self.root / salt()
        #: whether this salt's folder was seen (older salts are pruned when it is first made)
        self._base_seen = False

    def _ensure_root(self) -> None:
        if not self.root.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / ".gitignore").write_text("# created by loopsafe\n*\n")
            (self.root / "CACHEDIR.TAG").write_text(
                "Signature: 8a477f597d28d172789f06886806bc55\n# loopsafe cache directory\n")
        elif not self._base_seen and not self.base.exists():
            self._prune_salts()
        self._base_seen = True

    def _prune_salts(self) -> None:
        """A new salt (another loopsafe, or an edited one): entries of older ones would never
        be read again (a whole project's summaries, each time). Of the others, all but the
        last used are removed: another installed loopsafe may still be using that one
        (pre-commit's own environment beside the project's)."""
        import shutil

        try:
            others = [p for p in self.root.iterdir()
                      if _SALT_NAME.fullmatch(p.name) and p.name != self.base.name and p.is_dir()]
            for stale in sorted(others, key=_last_used, reverse=True)[1:]:
                shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            pass

    def _read(self, path: Path) -> Any:
        try:
            with open(path, "rb") as f:
                return pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError, ValueError):
            return None

    def _write(self, path: Path, value: Any) -> None:
        try:
            self._ensure_root()
            path.parent.mkdir(parents=True, exist_ok=True)
            # a name no other process writing this cache uses (`tempfile` costs 3 ms to import)
            tmp = path.parent / f".tmp-{os.getpid()}-{os.urandom(6).hex()}"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except OSError:
            # a read-only or full disk makes the cache useless, not the run
            return

    def _entry_path(self, kind: str, key: str) -> Path:
        return self.base / kind / key[:2] / f"{key}.pickle"

    def load_entry(self, kind: str, key: str) -> Any:
        """A per-file entry of a kind ("ir": summaries, "noqa": comment maps), None if absent."""
        return self._read(self._entry_path(kind, key))

    def store_entry(self, kind: str, key: str, value: Any) -> None:
        self._write(self._entry_path(kind, key), value)

    def load_summary(self, key: str) -> Any:
        return self.load_entry("ir", key)

    def has_summary(self, key: str) -> bool:
        return self._entry_path("ir", key).exists()

    def store_summary(self, key: str, value: Any) -> None:
        self.store_entry("ir", key, value)

    def load_results(self, key: str) -> Any:
        return self._read(self.base / "results" / f"{key}.pickle")

    def load_state(self, key: str) -> tuple[Any, Any]:
        """A project's state as last written whole, and the journal written since (either None)."""
        directory = self.base / "state"
        return self._read(directory / f"{key}.pickle"), self._read(directory / f"{key}.journal")

    def store_state(self, key: str, value: Any) -> None:
        """The state written whole; the journal of the old one goes."""
        directory = self.base / "state"
        self._write(directory / f"{key}.pickle", value)
        with contextlib.suppress(OSError):
            (directory / f"{key}.journal").unlink(missing_ok=True)
        self._prune(directory, _KEEP_STATES)

    def store_journal(self, key: str, value: Any) -> None:
        """What changed since the state was written whole (read back with it). The state is
        touched: pruning keeps the states used last, not those written whole last."""
        directory = self.base / "state"
        self._write(directory / f"{key}.journal", value)
        with contextlib.suppress(OSError):
            os.utime(directory / f"{key}.pickle")

    def store_results(self, key: str, value: Any) -> None:
        directory = self.base / "results"
        self._write(directory / f"{key}.pickle", value)
        self._prune(directory, _KEEP_RESULTS)

    @staticmethod
    def _prune(directory: Path, keep: int) -> None:
        """Keep the `keep` newest entries of a directory (a project's runs differ in their
        options and in their files: each other set is another entry)."""
        try:
            entries = sorted(directory.glob("*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
            for stale in entries[keep:]:
                stale.unlink(missing_ok=True)
                stale.with_suffix(".journal").unlink(missing_ok=True)
        except OSError:
            pass
