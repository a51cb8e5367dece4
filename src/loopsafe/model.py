"""Plain data that crosses module boundaries: findings, chains, parse errors, options, reports.

Everything here is a frozen dataclass (or a tuple of them) so results can be cached,
pickled across processes and compared in tests. Front ends (CLI, flake8, pre-commit)
consume only these types.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Frame:
    """One step of a chain from a call site down to the blocking operation."""

    path: str
    line: int
    function: str
    #: the source text of the step (a call or operation), for the text trail
    code: str = ""


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace the text from (line, column) to (end_line, end_column) with `content`.

    1-based, end column exclusive, in characters of the decoded source (the BOM excluded);
    an insertion has an empty range.
    """

    line: int
    column: int
    end_line: int
    end_column: int
    content: str


@dataclass(frozen=True, slots=True)
class Fix:
    """An automatic fix: "safe" fixes apply with --fix, "unsafe" ones also need --unsafe-fixes."""

    applicability: str  # "safe" | "unsafe"
    message: str
    edits: tuple[Edit, ...]


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    message: str
    path: str
    line: int
    column: int  # 1-based
    end_line: int
    end_column: int  # 1-based, exclusive
    fix_title: str
    chain: tuple[Frame, ...] = ()
    #: enclosing function's qualified name inside the module ("" at module level)
    function: str = ""
    #: a route that reaches this code, e.g. "GET /users/{user_id}" (text output only)
    route: str = ""
    #: the automatic fix, when there is one (see loopsafe.fixes)
    fix: Fix | None = None

    def sort_key(self) -> tuple:
        return (self.path, self.line, self.column, self.code, self.message)


@dataclass(frozen=True, slots=True)
class FrameResult:
    """One file's findings and what making them read: the files (paths; "*" for all of them)
    and the project facts ((name, key) for one entry; the key `("*",)` for the whole fact).
    See `loopsafe.incremental`."""

    findings: tuple[Finding, ...]
    reads: frozenset[str]
    facts: frozenset[str]


@dataclass(frozen=True, slots=True)
class ParseError:
    """A file that could not be read or parsed; the run goes on without it."""

    path: str
    line: int
    column: int
    message: str


@dataclass(frozen=True, slots=True)
class Options:
    """What the engine needs to know; built by the CLI/flake8 front ends from flags and config."""

    select: tuple[str, ...] = ()  # code prefixes; empty means the rules that are on by default
    ignore: tuple[str, ...] = ()
    extend_select: tuple[str, ...] = ()
    #: extra library knowledge from [tool.loopsafe] (qualified names)
    session_factories: tuple[str, ...] = ()
    sync_session_types: tuple[str, ...] = ()
    async_session_types: tuple[str, ...] = ()
    blocking_calls: tuple[str, ...] = ()
    offload_wrappers: tuple[str, ...] = ()
    #: extra source roots (absolute paths) for module naming
    src: tuple[str, ...] = ()
    #: the FastAPI version the project runs ("" unknown): when `yield` teardown runs changed
    #: between releases, so LOOP205 names the case that applies. Part of the cache key, as
    #: every field here, so a new pin never reuses results computed for another version.
    fastapi_version: str = ""


@dataclass(frozen=True, slots=True)
class Report:
    findings: tuple[Finding, ...]
    parse_errors: tuple[ParseError, ...]
    files_checked: int

    @property
    def files_with_findings(self) -> int:
        return len({f.path for f in self.findings})


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file handed to the engine: its display path, its text, and its path on disk (if any)."""

    path: str
    text: str
    abspath: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)
