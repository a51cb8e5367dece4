"""Settings: the ``[tool.loopsafe]`` table, command-line overrides, and how they combine.

This module owns finding the configuration file, validating it strictly (an unknown key or
a value of the wrong type is an error naming the file and the key, never silently ignored),
and producing the resolved :class:`Settings`: the engine's :class:`~loopsafe.model.Options`,
the discovery settings and the per-file ignores the CLI applies to the engine's findings.

Lookup: the nearest ``pyproject.toml`` *with a* ``[tool.loopsafe]`` *table*, at or above the
first checked path (as ruff does, a ``pyproject.toml`` without our table does not stop the
search, so a sub-package's packaging file does not hide the repository's settings).
``--config FILE`` names the file instead (a ``pyproject.toml`` is read from its
``[tool.loopsafe]`` table, any other TOML file from its top level); ``--isolated`` reads none.

Rule selection layers like ruff's: ``--select`` on the command line starts selection
afresh (the file's ``select``, ``extend-select`` and ``ignore`` no longer apply), while
``--extend-select`` and ``--ignore`` add to what the file says.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Callable, Iterable, Mapping, Sequence

from loopsafe import replay
from loopsafe.discovery import DEFAULT_EXCLUDE, DiscoverySettings, check_glob, glob_to_regex
from loopsafe.model import Finding, Options

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

SECTION = "tool.loopsafe"
PROJECT_FILE = "pyproject.toml"
PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")
_SELECTOR = re.compile(r"^[A-Z]+[0-9]*$")


class ConfigError(Exception):
    """Invalid configuration; the message names the file (or flag) and the key at fault."""


# --------------------------------------------------------------------------- per-file ignores


@dataclass(frozen=True)
class PerFileIgnore:
    """``"pattern" = ["CODE-PREFIX", ...]``; a leading ``!`` applies to files *not* matching.

    A pattern with a ``/`` is matched against the path relative to the project root; one
    without is also matched against the file name, so ``"test_*.py"`` works at any depth.
    """

    pattern: str
    prefixes: tuple[str, ...]
    project_root: str
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _negated: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        pattern = self.pattern
        negated = pattern.startswith("!")
        if negated:
            pattern = pattern[1:]
        pattern = pattern.replace(os.sep, "/")
        if pattern.startswith("./"):
            pattern = pattern[2:]
        object.__setattr__(self, "_negated", negated)
        object.__setattr__(self, "_regex", re.compile(glob_to_regex(pattern), re.DOTALL))

    def applies_to(self, abspath: str) -> bool:
        rel = os.path.relpath(abspath, self.project_root) if os.path.isabs(abspath) else abspath
        rel = PurePath(rel).as_posix()
        matched = bool(self._regex.fullmatch(rel) or self._regex.fullmatch(rel.rpartition("/")[2]))
        return matched != self._negated

    def ignores(self, finding: Finding, abspath: str) -> bool:
        return finding.code.startswith(self.prefixes) and self.applies_to(abspath)


# --------------------------------------------------------------------------- the file


@dataclass(frozen=True)
class FileConfig:
    """The validated contents of one configuration table. ``None`` means "not set"."""

    path: Path | None = None
    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    exclude: tuple[str, ...] | None = None
    extend_exclude: tuple[str, ...] = ()
    respect_gitignore: bool | None = None
    #: absolute, resolved against the configuration file's directory
    src: tuple[str, ...] = ()
    session_factories: tuple[str, ...] = ()
    sync_session_types: tuple[str, ...] = ()
    async_session_types: tuple[str, ...] = ()
    blocking_calls: tuple[str, ...] = ()
    offload_wrappers: tuple[str, ...] = ()
    #: --fix: code prefixes whose fixes may be applied (None: all) and those whose may not
    fixable: tuple[str, ...] | None = None
    unfixable: tuple[str, ...] = ()
    unsafe_fixes: bool | None = None
    #: overrides the FastAPI pin read from the project's requirements (LOOP205 messages)
    fastapi_version: str | None = None


Validator = Callable[[Any, str, Path], Any]


def _where(path: Path, key: str) -> str:
    return f"{path}: [{SECTION}] {key}" if path.name == PROJECT_FILE else f"{path}: {key}"


def _str_list(value: Any, key: str, path: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{_where(path, key)}: expected a list of strings, got {_describe(value)}")
    return tuple(value)


def _selectors(value: Any, key: str, path: Path) -> tuple[str, ...]:
    items = tuple(item.upper() for item in _str_list(value, key, path))
    for item in items:
        problem = selector_problem(item)
        if problem:
            raise ConfigError(f"{_where(path, key)}: {problem}")
    return items


def _globs(value: Any, key: str, path: Path) -> tuple[str, ...]:
    items = _str_list(value, key, path)
    for item in items:
        problem = check_glob(item)
        if problem:
            raise ConfigError(f"{_where(path, key)}: invalid glob {item!r}: {problem}")
    return items


def _bool(value: Any, key: str, path: Path) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{_where(path, key)}: expected true or false, got {_describe(value)}")
    return value


def _per_file_ignores(value: Any, key: str, path: Path) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(value, dict):
        raise ConfigError(
            f'{_where(path, key)}: expected a table of "glob" = ["CODE", ...], got {_describe(value)}'
        )
    entries = []
    for pattern, prefixes in value.items():
        problem = check_glob(pattern.lstrip("!"))
        if problem:
            raise ConfigError(f"{_where(path, key)}: invalid glob {pattern!r}: {problem}")
        entries.append((pattern, _selectors(prefixes, f"{key}.{_toml_key(pattern)}", path)))
    return tuple(entries)


def _qualified_names(value: Any, key: str, path: Path) -> tuple[str, ...]:
    items = _str_list(value, key, path)
    for item in items:
        if not all(part.isidentifier() for part in item.split(".")):
            raise ConfigError(f"{_where(path, key)}: {item!r} is not a dotted qualified name")
    return items


_VERSION = re.compile(r"\d+(?:\.\d+){1,2}")


def _version(value: Any, key: str, path: Path) -> str:
    # a release number, not a specifier: the messages name one behaviour, not a range
    if not isinstance(value, str) or not _VERSION.fullmatch(value):
        got = repr(value) if isinstance(value, str) else _describe(value)
        raise ConfigError(f'{_where(path, key)}: expected a FastAPI release such as "0.115.0", got {got}')
    return value


#: every key the table may hold, with its validator, in documentation order
KEYS: dict[str, Validator] = {
    "select": _selectors,
    "extend-select": _selectors,
    "ignore": _selectors,
    "per-file-ignores": _per_file_ignores,
    "exclude": _globs,
    "extend-exclude": _globs,
    "respect-gitignore": _bool,
    "src": _str_list,
    "session-factories": _qualified_names,
    "sync-session-types": _qualified_names,
    "async-session-types": _qualified_names,
    "blocking-calls": _qualified_names,
    "offload-wrappers": _qualified_names,
    "fixable": _selectors,
    "unfixable": _selectors,
    "unsafe-fixes": _bool,
    "fastapi-version": _version,
}


def _describe(value: Any) -> str:
    names = {str: "a string", bool: "a boolean", int: "an integer", float: "a float",
             list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else f'"{key}"'


def selector_problem(selector: str) -> str | None:
    """Why *selector* is not a usable rule code prefix, or ``None`` if some rule has it.

    Unknown selectors are errors, as in ruff: a typo such as ``LOOP01`` must not quietly
    select nothing.
    """
    if not _SELECTOR.match(selector):
        return f"invalid rule selector {selector!r} (expected a code or prefix such as LOOP1 or LOOP101)"
    codes = known_codes()
    # a whole family (LOOP2: session lifecycle) is a valid selector even while it has no
    # rule yet, so configurations and CI commands written for later versions keep working
    if re.fullmatch(r"LOOP[1-5]?", selector):
        return None
    if not any(code.startswith(selector) for code in codes):
        hint = _close_matches(selector, codes, n=1)
        suffix = f"; did you mean {hint[0]!r}?" if hint else ""
        return f"unknown rule selector {selector!r}{suffix}"
    return None


def known_codes() -> list[str]:
    from loopsafe.rules import ALL_RULES  # imported late: rules pull in the analysis engine

    return [rule.code for rule in ALL_RULES]


def read_toml(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    replay.note_file(str(path), data)
    try:
        text = data.decode("utf-8")
        return tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8: {exc.reason}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {_with_line(str(exc), text)}") from None


def _with_line(message: str, text: str) -> str:
    """tomllib says "(at line N, column M)", except at the end of the document: add the line."""
    if "(at end of document)" in message:
        last = len(text.rstrip("\n").split("\n"))
        return message.replace("(at end of document)", f"(at end of document, line {last})")
    return message


def _table(document: Mapping[str, Any], path: Path) -> dict[str, Any] | None:
    """The loopsafe table of a parsed file, or ``None`` when a pyproject.toml has none."""
    if path.name != PROJECT_FILE:
        return dict(document)
    tool = document.get("tool")
    if not isinstance(tool, dict) or "loopsafe" not in tool:
        return None
    table = tool["loopsafe"]
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [{SECTION}] must be a table, got {_describe(table)}")
    return table


def parse_config(table: Mapping[str, Any], path: Path) -> FileConfig:
    """Validate a loopsafe table read from *path* (used for messages and to resolve ``src``)."""
    values: dict[str, Any] = {}
    for key, value in table.items():
        validator = KEYS.get(key)
        if validator is None:
            hint = _close_matches(key, KEYS, n=1)
            suffix = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ConfigError(f"{_where(path, key)}: unknown key{suffix}")
        values[key.replace("-", "_")] = validator(value, key, path)
    base = path.parent
    if "src" in values:
        values["src"] = tuple(os.path.normpath(base / entry) for entry in values["src"])
    return FileConfig(path=path, **values)


def load_config(path: Path) -> FileConfig:
    """Read and validate a configuration file (``pyproject.toml`` or a standalone TOML file)."""
    path = Path(os.path.abspath(path))
    table = _table(read_toml(path), path)
    return parse_config(table or {}, path)


def find_config_file(start: Path) -> Path | None:
    """The nearest ``pyproject.toml`` with a ``[tool.loopsafe]`` table at or above *start*."""
    start = Path(os.path.abspath(start))
    directory = start if start.is_dir() else start.parent
    for candidate in (directory, *directory.parents):
        path = candidate / PROJECT_FILE
        replay.note_exists(str(path))  # absent: one created here would be read
        if path.is_file() and _table(read_toml(path), path) is not None:
            return path
    return None


def find_project_root(start: Path, cwd: Path) -> Path:
    """Where module names are computed from when no configuration file says so.

    The nearest directory at or above *start* that looks like a project (a
    ``pyproject.toml``, ``setup.py``, ``setup.cfg`` or ``.git``); failing that, *cwd*.
    """
    start = Path(os.path.abspath(start))
    directory = start if start.is_dir() else start.parent
    for candidate in (directory, *directory.parents):
        for marker in PROJECT_MARKERS:
            replay.note_exists(str(candidate / marker))
        if any((candidate / marker).exists() for marker in PROJECT_MARKERS):
            return candidate
    return Path(os.path.abspath(cwd))


# --------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class Overrides:
    """What the command line says; ``None`` / empty means "defer to the file"."""

    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    respect_gitignore: bool | None = None
    force_exclude: bool = False
    unsafe_fixes: bool | None = None


@dataclass(frozen=True)
class Settings:
    options: Options
    discovery: DiscoverySettings
    per_file_ignores: tuple[PerFileIgnore, ...]
    project_root: Path
    config_path: Path | None
    #: --fix: which codes' fixes may be applied, and whether unsafe fixes are
    fixable: tuple[str, ...] | None = None
    unfixable: tuple[str, ...] = ()
    unsafe_fixes: bool = False

    def is_fixable(self, code: str) -> bool:
        from loopsafe.fixes import is_fixable

        return is_fixable(code, self.fixable, self.unfixable)

    def is_ignored(self, finding: Finding, abspath: str) -> bool:
        return any(entry.ignores(finding, abspath) for entry in self.per_file_ignores)


def _fastapi_pin(project_root: Path) -> str:
    from loopsafe.pins import read_fastapi_pin

    return read_fastapi_pin(str(project_root))


def parse_selectors(values: Iterable[str], flag: str) -> tuple[str, ...]:
    """Split comma-separated command-line selectors and validate each one."""
    selectors = []
    for value in values:
        for item in value.split(","):
            item = item.strip().upper()  # codes are matched case-insensitively, as in the engine
            if not item:
                continue
            problem = selector_problem(item)
            if problem:
                raise ConfigError(f"{flag}: {problem}")
            selectors.append(item)
    return tuple(selectors)


def resolve_settings(
    paths: Sequence[str],
    *,
    cwd: Path,
    config_file: Path | None = None,
    isolated: bool = False,
    overrides: Overrides = Overrides(),
) -> Settings:
    """Combine the configuration file (found from the first of *paths*) with *overrides*."""
    cwd = Path(os.path.abspath(cwd))
    first = cwd / paths[0] if paths else cwd
    if isolated:
        config = FileConfig()
    elif config_file is not None:
        config = load_config(cwd / config_file)
    else:
        found = find_config_file(first)
        config = load_config(found) if found else FileConfig()
    project_root = config.path.parent if config.path else find_project_root(first, cwd)

    if overrides.select is not None:
        select, extend_select, ignore = overrides.select, overrides.extend_select, overrides.ignore
    else:
        select = config.select or ()
        extend_select = config.extend_select + overrides.extend_select
        ignore = config.ignore + overrides.ignore

    options = Options(
        select=select,
        ignore=ignore,
        extend_select=extend_select,
        session_factories=config.session_factories,
        sync_session_types=config.sync_session_types,
        async_session_types=config.async_session_types,
        blocking_calls=config.blocking_calls,
        offload_wrappers=config.offload_wrappers,
        src=config.src,
        fastapi_version=config.fastapi_version or _fastapi_pin(project_root),
    )
    respect_gitignore = overrides.respect_gitignore
    if respect_gitignore is None:
        respect_gitignore = config.respect_gitignore if config.respect_gitignore is not None else True
    discovery = DiscoverySettings(
        project_root=str(project_root),
        exclude=config.exclude if config.exclude is not None else DEFAULT_EXCLUDE,
        extend_exclude=config.extend_exclude,
        respect_gitignore=respect_gitignore,
        force_exclude=overrides.force_exclude,
    )
    per_file = tuple(
        PerFileIgnore(pattern, prefixes, str(project_root)) for pattern, prefixes in config.per_file_ignores
    )
    unsafe_fixes = overrides.unsafe_fixes
    if unsafe_fixes is None:
        unsafe_fixes = bool(config.unsafe_fixes)
    return Settings(options, discovery, per_file, project_root, config.path,
                    fixable=config.fixable, unfixable=config.unfixable, unsafe_fixes=unsafe_fixes)


def _close_matches(word: str, candidates: Iterable[str], n: int = 1) -> list[str]:
    import difflib  # only to suggest a name in an error message

    return difflib.get_close_matches(word, candidates, n=n)
