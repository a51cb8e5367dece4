"""Turning a :class:`~loopsafe.model.Report` into what the user reads.

This is the only module that imports rich, and only to colour a terminal's output (or draw
`loopsafe explain`'s markdown): formatters build :class:`Styled` text, which plain output
writes as it is. Importing rich costs more than a run's whole output (a run after an edit
takes a few tenths of a second). Every formatter is a pure function of its arguments
(findings, source texts, the current directory): nothing here reads files, looks at the
environment or decides exit codes, except :func:`use_color` and :func:`make_console`, which
exist precisely to make that one decision in one place.

Formats
-------
``full``
    For each finding: ``path:line:col: CODE message``, the offending source line with a
    caret underline (first line only for a multi-line range), ``help: <fix title>``, the
    chain from the call site down to the blocking operation, and the route that reaches
    it. Then parse errors as ``path:line:col: E999 ...`` and a summary.
``concise``
    One ``path:line:col: CODE message`` line per finding, parse errors, and the summary.
``json``
    A stable array, one object per finding, sorted by path, line, column and code::

        [
          {
            "code": "LOOP101",                 # rule code
            "message": "...",                  # the finding's message
            "path": "app/api.py",              # relative to the current directory when
                                               # below it, else absolute; "/" separators
            "line": 12, "column": 5,           # 1-based start
            "end_line": 12, "end_column": 31,  # 1-based end, column exclusive
            "fix_title": "...",                # one-line fix hint
            "chain": [                         # call site -> blocking operation, may be []
              {"path": "app/crud.py", "line": 20, "function": "get_users"}
            ],
            "fix": {                           # the automatic fix (as in ruff's JSON), or null
              "applicability": "unsafe",       # "safe": --fix; "unsafe": --fix --unsafe-fixes
              "message": "...",
              "edits": [{"content": "...", "location": {"row": 12, "column": 5},
                         "end_location": {"row": 12, "column": 31}}]
            }
          }
        ]

    These keys, and only these, are part of the contract (:data:`JSON_SCHEMA` states it
    formally; ``tests/test_render.py`` pins it). Parse errors are *not* in the array: a
    consumer reading stdout gets findings only, and the CLI writes parse errors to stderr.
``json-lines``
    The same objects, one per line, for streaming consumers.
``sarif``
    SARIF 2.1.0 for code-scanning services; see :mod:`loopsafe.sarif`.
``github``
    GitHub Actions workflow commands, one ``::error file=...,line=...::message`` (``::warning``
    for rules that are off by default) per finding and parse error,
    which GitHub shows as annotations on the pull request.
``gitlab``
    A GitLab Code Quality report (a JSON array of issues).

The CI formats (``sarif``, ``github``, ``gitlab``) name files relative to a *root* the caller
chooses (the repository's top directory), because that is how those services resolve them.
Their fingerprints identify a finding by its code, file, enclosing function and the text of
its line, never by line number, so they survive code moving around (see :func:`fingerprints`).

Colour is used only when writing to a terminal, never when ``NO_COLOR`` is set, and always
when ``FORCE_COLOR`` is set (see https://no-color.org and https://force-color.org).
"""
from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import PurePath
from typing import IO, TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from loopsafe.discovery import display_path
from loopsafe.model import Finding, Fix, Frame, ParseError, Report

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console
    from rich.text import Text

OUTPUT_FORMATS = ("full", "concise", "json", "json-lines", "sarif", "github", "gitlab")

#: the code shown for files that could not be read, decoded or parsed
PARSE_ERROR_CODE = "E999"

TAB_WIDTH = 4

STYLE_PATH = "bold"
STYLE_CODE = "bold red"
STYLE_GUTTER = "blue"
STYLE_CARET = "bold red"
STYLE_HELP = "cyan"
STYLE_TRAIL = "dim"

JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "code", "message", "path", "line", "column", "end_line", "end_column", "fix_title", "chain", "fix",
        ],
        "properties": {
            "code": {"type": "string", "pattern": "^[A-Z]+[0-9]+$"},
            "message": {"type": "string"},
            "path": {"type": "string"},
            "line": {"type": "integer", "minimum": 1},
            "column": {"type": "integer", "minimum": 1},
            "end_line": {"type": "integer", "minimum": 1},
            "end_column": {"type": "integer", "minimum": 1},
            "fix_title": {"type": "string"},
            "chain": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["path", "line", "function"],
                    "properties": {
                        "path": {"type": "string"},
                        "line": {"type": "integer", "minimum": 1},
                        "function": {"type": "string"},
                    },
                },
            },
            "fix": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["applicability", "message", "edits"],
                        "properties": {
                            "applicability": {"enum": ["safe", "unsafe"]},
                            "message": {"type": "string"},
                            "edits": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["content", "location", "end_location"],
                                    "properties": {
                                        "content": {"type": "string"},
                                        "location": {"$ref": "#/$defs/location"},
                                        "end_location": {"$ref": "#/$defs/location"},
                                    },
                                },
                            },
                        },
                    },
                ],
            },
        },
    },
    "$defs": {
        "location": {
            "type": "object",
            "additionalProperties": False,
            "required": ["row", "column"],
            "properties": {
                "row": {"type": "integer", "minimum": 1},
                "column": {"type": "integer", "minimum": 1},
            },
        },
    },
}


# --------------------------------------------------------------------------- styled text


def _styles(outer: str | None, inner: str | None) -> str | None:
    return f"{outer} {inner}" if outer and inner else outer or inner


class Styled:
    """Text made of spans, each with a rich style (or none), and a style for the whole: the
    part of `rich.text.Text` the formatters use, without importing rich."""

    __slots__ = ("spans", "style")

    def __init__(self, text: str = "", style: str | None = None) -> None:
        self.spans: list[tuple[str, str | None]] = [(text, None)] if text else []
        self.style = style

    @classmethod
    def assemble(cls, *parts: str | tuple[str, str] | Styled) -> Styled:
        out = cls()
        for part in parts:
            if isinstance(part, Styled):
                out.append_text(part)
            elif isinstance(part, tuple):
                out.append(*part)
            else:
                out.append(part)
        return out

    def append(self, text: str, style: str | None = None) -> Styled:
        if text:
            self.spans.append((text, style))
        return self

    def append_text(self, other: Styled) -> Styled:
        self.spans.extend((text, _styles(other.style, style)) for text, style in other.spans)
        return self

    def join(self, items: Iterable[Styled]) -> Styled:
        """The items with this text between them (as `str.join`)."""
        out = Styled()
        for i, item in enumerate(items):
            if i:
                out.append_text(self)
            out.append_text(item)
        return out

    @property
    def plain(self) -> str:
        return "".join(text for text, _style in self.spans)

    def to_rich(self) -> Text:
        from rich.text import Text

        out = Text(style=self.style or "")
        for text, style in self.spans:
            out.append(text, style)
        return out


def _cell_len(text: str) -> int:
    """Terminal cells *text* takes (wide characters take two)."""
    if text.isascii():
        return len(text)
    from rich.cells import cell_len

    return cell_len(text)


# --------------------------------------------------------------------------- consoles


def use_color(stream: IO[str], environ: Mapping[str, str] | None = None) -> bool:
    """Whether to colour output written to *stream*: NO_COLOR, then FORCE_COLOR, then TTY."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR", ""):
        return False
    if env.get("FORCE_COLOR", ""):
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def make_console(stream: IO[str], *, color: bool | None = None, width: int | None = None) -> Console:
    """A console for *stream*; with colour off it emits no escape sequences at all."""
    from rich.console import Console

    if color is None:
        color = use_color(stream)
    console = Console(
        file=stream,
        color_system="auto" if color else None,
        force_terminal=color,
        no_color=not color,
        highlight=False,
        markup=False,
        emoji=False,
        width=width,
        legacy_windows=False,
    )
    if color and console.color_system is None:
        # FORCE_COLOR with TERM=dumb or unset: the user asked for colour, give the basic palette
        console = Console(
            file=stream, color_system="standard", force_terminal=True, highlight=False,
            markup=False, emoji=False, width=width, legacy_windows=False,
        )
    return console


def emit(stream: IO[str], text: Styled, *, color: bool | None = None) -> None:
    """Write *text* verbatim: no wrapping at the console width, no markup, no highlighting;
    in colour when *color* (default: :func:`use_color`)."""
    plain = text.plain
    if not plain:
        return
    end = "" if plain.endswith("\n") else "\n"
    if color is None:
        color = use_color(stream)
    if color:
        make_console(stream, color=True).print(text.to_rich(), soft_wrap=True, end=end)
    else:
        stream.write(plain + end)


def print_markdown(console: Console, markdown: str) -> None:
    from rich.markdown import Markdown  # imported here: it costs more than the rest of rich (explain only)

    console.print(Markdown(markdown))


# --------------------------------------------------------------------------- helpers


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _printable(text: str) -> str:
    """Make control characters visible, one cell each, so carets stay aligned.

    Source text is untrusted: an escape sequence inside a string literal must not reach
    the user's terminal.
    """
    return _CONTROL.sub(lambda m: chr(0x2400 + ord(m.group())) if m.group() != "\x7f" else "\u2421", text)


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class SourceLines:
    """Lines of the checked files, split the way the Python tokenizer splits them.

    ``str.splitlines`` would also break on form feeds and Unicode separators, which Python
    does not count as line ends, and shift every line number after them.
    """

    def __init__(self, sources: Mapping[str, str]) -> None:
        self._sources = sources
        self._lines: dict[str, list[str]] = {}

    def line(self, path: str, number: int) -> str | None:
        lines = self._lines.get(path)
        if lines is None:
            text = self._sources.get(path)
            if text is None:
                return None
            lines = self._lines[path] = _LINE_BREAK.split(text)
        if 1 <= number <= len(lines):
            return lines[number - 1]
        return None


def _plural(count: int, noun: str, plural: str | None = None) -> str:
    return f"{count} {noun if count == 1 else (plural or noun + 's')}"


def _sorted(findings: Sequence[Finding]) -> list[Finding]:
    return sorted(findings, key=Finding.sort_key)


def _sorted_errors(errors: Sequence[ParseError]) -> list[ParseError]:
    return sorted(errors, key=lambda e: (e.path, e.line, e.column, e.message))


def _location(path: str, line: int, column: int) -> Styled:
    return Styled.assemble((f"{_printable(path)}:{line}:{column}:", STYLE_PATH))


#: marks a finding whose fix `--fix` would apply (as ruff does)
FIX_MARKER = "[*]"


def fix_applies(finding: Finding, unsafe_fixes: bool = False) -> bool:
    """Whether `--fix` (with `--unsafe-fixes` when *unsafe_fixes*) would apply the finding's fix."""
    fix = finding.fix
    return fix is not None and (fix.applicability == "safe" or unsafe_fixes)


def _header(finding: Finding, unsafe_fixes: bool = False) -> Styled:
    marker = f"{FIX_MARKER} " if fix_applies(finding, unsafe_fixes) else ""
    return Styled.assemble(
        _location(finding.path, finding.line, finding.column),
        " ",
        (finding.code, STYLE_CODE),
        " ",
        marker,
        _printable(finding.message),
    )


def _parse_error_line(error: ParseError) -> Styled:
    return Styled.assemble(
        _location(error.path, error.line, error.column),
        " ",
        (PARSE_ERROR_CODE, STYLE_CODE),
        " ",
        _printable(error.message),
    )


def _snippet(finding: Finding, source: str) -> Styled:
    """The source line with the finding's range underlined, behind a line-number gutter."""
    source = source.rstrip()
    start = min(max(finding.column - 1, 0), len(source))
    if finding.end_line == finding.line:
        end = min(max(finding.end_column - 1, start), len(source))
    else:
        end = len(source)  # multi-line: underline to the end of the first line
    shown = _printable(source).expandtabs(TAB_WIDTH)
    # Measure the expanded prefix in terminal cells, so tabs and wide characters keep the
    # carets under the right characters.
    indent = _cell_len(_printable(source[:start]).expandtabs(TAB_WIDTH))
    width = max(_cell_len(_printable(source[:end]).expandtabs(TAB_WIDTH)) - indent, 1)
    number = str(finding.line)
    gutter = " " * len(number)
    return Styled.assemble(
        (f"{number} |", STYLE_GUTTER),
        f" {shown}\n",
        (f"{gutter} |", STYLE_GUTTER),
        " " + " " * indent,
        ("^" * width, STYLE_CARET),
    )


def _frame_text(frame: Frame) -> str:
    text = f"  -> {frame.path}:{frame.line} {frame.function or '<module>'}"
    if frame.code:
        text += f" -> {' '.join(frame.code.split())}"  # a call spread over lines, on one line
    return _printable(text)


def summary(report: Report, *, unsafe_fixes: bool = False, fixed: int = 0) -> Styled:
    """``Found N findings in M files.`` / ``K files could not be parsed.`` / ``All checks passed.``

    Then, as ruff does, how many findings ``--fix`` would fix (``[*] N fixable with the
    `--fix` option.``) and how many more ``--unsafe-fixes`` would; *fixed* findings were just
    fixed by ``--fix`` (``Fixed N findings.``).
    """
    lines = []
    if fixed:
        lines.append(f"Fixed {_plural(fixed, 'finding')}.")
    if report.findings:
        lines.append(
            f"Found {_plural(len(report.findings), 'finding')} in {_plural(report.files_with_findings, 'file')}."
        )
        fixable = sum(fix_applies(f, unsafe_fixes) for f in report.findings)
        hidden = sum(fix_applies(f, True) for f in report.findings) - fixable
        hint = ""
        if hidden:
            hint = f"{_plural(hidden, 'hidden fix', 'hidden fixes')} can be enabled with the `--unsafe-fixes` option"
        if fixable:
            lines.append(f"{FIX_MARKER} {fixable} fixable with the `--fix` option" + (f" ({hint})." if hint else "."))
        elif hint:
            lines.append(f"No fixes available ({hint}).")
    unparsed = len({error.path for error in report.parse_errors})
    if unparsed:
        verb = "could not be parsed"
        lines.append(f"{unparsed} {'file' if unparsed == 1 else 'files'} {verb}.")
    if not report.findings and not unparsed:
        lines.append("All checks passed.")
    return Styled("\n".join(lines), style="bold")


# --------------------------------------------------------------------------- formats


def format_full(report: Report, sources: Mapping[str, str], *, show_summary: bool = True,
                unsafe_fixes: bool = False, fixed: int = 0) -> Styled:
    """The ``full`` format. *sources* maps a finding's path to its file's text.

    A finding ``--fix`` would fix is marked ``[*]`` (unsafe fixes only with *unsafe_fixes*).
    """
    lines = SourceLines(sources)
    blocks: list[Styled] = []
    for finding in _sorted(report.findings):
        block = _header(finding, unsafe_fixes)
        source = lines.line(finding.path, finding.line)
        if source is not None:
            block.append("\n")
            block.append_text(_snippet(finding, source))
        if finding.fix_title:
            block.append("\n")
            block.append_text(Styled.assemble(("  help: ", STYLE_HELP), _printable(finding.fix_title)))
        for frame in finding.chain:
            block.append("\n")
            block.append(_frame_text(frame), STYLE_TRAIL)
        if finding.route:
            block.append("\n")
            block.append(_printable(f"  reached from {finding.route}"), STYLE_TRAIL)
        blocks.append(block)
    errors = format_parse_errors(report.parse_errors)
    if errors.plain:
        blocks.append(errors)
    if show_summary:
        blocks.append(summary(report, unsafe_fixes=unsafe_fixes, fixed=fixed))
    out = Styled("\n\n").join(blocks)
    if out.plain:
        out.append("\n")
    return out


def format_concise(report: Report, *, show_summary: bool = True, unsafe_fixes: bool = False,
                   fixed: int = 0) -> Styled:
    """The ``concise`` format: one line per finding, then parse errors and the summary."""
    parts = [_header(finding, unsafe_fixes) for finding in _sorted(report.findings)]
    parts.extend(_parse_error_line(error) for error in _sorted_errors(report.parse_errors))
    body = Styled("\n").join(parts)
    if show_summary:
        if parts:
            body.append("\n")
        body.append_text(summary(report, unsafe_fixes=unsafe_fixes, fixed=fixed))
    if body.plain:
        body.append("\n")
    return body


def format_parse_errors(errors: Sequence[ParseError]) -> Styled:
    """``path:line:col: E999 message`` for every file that could not be parsed."""
    out = Styled("\n").join(_parse_error_line(error) for error in _sorted_errors(errors))
    return out


def json_path(path: str, cwd: str) -> str:
    """A path for JSON: relative to *cwd* when below it, else absolute, always with ``/``."""
    return display_path(path, cwd)


def finding_to_json(finding: Finding, cwd: str) -> dict[str, Any]:
    return {
        "code": finding.code,
        "message": finding.message,
        "path": json_path(finding.path, cwd),
        "line": finding.line,
        "column": finding.column,
        "end_line": finding.end_line,
        "end_column": finding.end_column,
        "fix_title": finding.fix_title,
        "chain": [
            {"path": json_path(frame.path, cwd), "line": frame.line, "function": frame.function}
            for frame in finding.chain
        ],
        "fix": fix_to_json(finding.fix),
    }


def fix_to_json(fix: Fix | None) -> dict[str, Any] | None:
    """A fix as ruff's JSON writes it: applicability, message and edits with 1-based
    row/column locations (end exclusive)."""
    if fix is None:
        return None
    return {
        "applicability": fix.applicability,
        "message": fix.message,
        "edits": [
            {
                "content": edit.content,
                "location": {"row": edit.line, "column": edit.column},
                "end_location": {"row": edit.end_line, "column": edit.end_column},
            }
            for edit in fix.edits
        ],
    }


def format_json(report: Report, cwd: str) -> str:
    """The ``json`` format (see the module docstring for the schema). Always ends in a newline."""
    import json  # only the JSON formats need it (1.7 ms to import)

    payload = [finding_to_json(finding, cwd) for finding in _sorted(report.findings)]
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def format_json_lines(report: Report, cwd: str) -> str:
    """The ``json-lines`` format: one ``json`` object per line (nothing at all for no findings)."""
    import json  # only the JSON formats need it (1.7 ms to import)

    return "".join(
        json.dumps(finding_to_json(finding, cwd), ensure_ascii=False) + "\n" for finding in _sorted(report.findings)
    )


# --------------------------------------------------------------------------- CI formats


def root_relative(path: str, cwd: str, root: str) -> str | None:
    """*path* (as shown, relative to *cwd* or absolute) relative to *root*, with ``/``.

    ``None`` when the file is not below *root*.
    """
    absolute = os.path.normpath(os.path.join(cwd, path))
    try:
        rel = os.path.relpath(absolute, root)
    except ValueError:  # another drive, on Windows
        return None
    if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        return None
    return PurePath(rel).as_posix()


def ci_path(path: str, cwd: str, root: str) -> str:
    """How the CI formats name a file: relative to *root* when below it, else absolute."""
    rel = root_relative(path, cwd, root)
    return rel if rel is not None else PurePath(os.path.normpath(os.path.join(cwd, path))).as_posix()


def normalised_line(text: str | None) -> str:
    """A source line with its indentation and runs of whitespace collapsed, for fingerprints."""
    return " ".join((text or "").split())


def fingerprints(
    findings: Iterable[Finding], sources: Mapping[str, str], *, cwd: str, root: str
) -> dict[Finding, tuple[str, int]]:
    """A stable identity for each finding: ``(digest, occurrence)``.

    The digest hashes the rule code, the file (relative to *root*), the enclosing function and
    the finding's source line with whitespace normalised, so it does not change when code
    above it is added or removed, or when it is re-indented. Findings with the same digest
    (the same call twice in one function) are told apart by their 1-based occurrence, in
    line order, as GitHub's own ``primaryLocationLineHash`` does.
    """
    import hashlib  # here: it loads OpenSSL, which the other formats do not need

    lines = SourceLines(sources)
    seen: Counter[str] = Counter()
    out: dict[Finding, tuple[str, int]] = {}
    for finding in _sorted(list(findings)):
        basis = "\0".join([
            finding.code,
            ci_path(finding.path, cwd, root),
            finding.function,
            normalised_line(lines.line(finding.path, finding.line)),
        ])
        digest = hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()
        seen[digest] += 1
        out[finding] = (digest, seen[digest])
    return out


def rule_level(default_enabled: bool) -> str:
    """The CI severity of a rule: rules on by default report bugs ("error"); opt-in rules
    are advisory ("warning")."""
    return "error" if default_enabled else "warning"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _workflow_command(level: str, properties: Sequence[tuple[str, object]], message: str) -> str:
    props = ",".join(f"{name}={_escape_property(str(value))}" for name, value in properties)
    return f"::{level} {props}::{_escape_data(message)}\n"


def format_github(
    report: Report, *, cwd: str, root: str, levels: Mapping[str, str] | None = None
) -> str:
    """The ``github`` format: one workflow command per finding and per parse error.

    *levels* maps a rule code to ``"error"`` or ``"warning"`` (default ``"error"``). GitHub
    rejects an annotation whose columns are given when it spans several lines, so ``col``
    and ``endColumn`` are written only for findings on one line.
    """
    out = []
    for finding in _sorted(report.findings):
        props: list[tuple[str, object]] = [("file", ci_path(finding.path, cwd, root)), ("line", finding.line)]
        if finding.end_line == finding.line:
            props += [("col", finding.column), ("endLine", finding.end_line), ("endColumn", finding.end_column)]
        else:
            props += [("endLine", finding.end_line)]
        props.append(("title", f"loopsafe ({finding.code})"))
        level = (levels or {}).get(finding.code, "error")
        out.append(_workflow_command(level, props, finding.message))
    for error in _sorted_errors(report.parse_errors):
        props = [
            ("file", ci_path(error.path, cwd, root)), ("line", error.line), ("col", error.column),
            ("title", f"loopsafe ({PARSE_ERROR_CODE})"),
        ]
        out.append(_workflow_command("error", props, error.message))
    return "".join(out)


#: the severity GitLab shows for every finding (its scale: info, minor, major, critical, blocker)
GITLAB_SEVERITY = "major"


def format_gitlab(report: Report, sources: Mapping[str, str], *, cwd: str, root: str) -> str:
    """The ``gitlab`` format: a Code Quality report. Parse errors are not part of it."""
    import json  # only the JSON formats need it (1.7 ms to import)

    import hashlib

    prints = fingerprints(report.findings, sources, cwd=cwd, root=root)
    issues = []
    for finding in _sorted(report.findings):
        digest, occurrence = prints[finding]
        issues.append({
            "description": f"{finding.code} {finding.message}",
            "check_name": finding.code,
            "fingerprint": hashlib.md5(f"{digest}:{occurrence}".encode("ascii"), usedforsecurity=False).hexdigest(),
            "severity": GITLAB_SEVERITY,
            "location": {"path": ci_path(finding.path, cwd, root), "lines": {"begin": finding.line}},
        })
    return json.dumps(issues, indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- statistics


def statistics_rows(report: Report, names: Mapping[str, str]) -> list[tuple[int, str, str]]:
    """``(count, code, name)`` per code, most frequent first; parse errors count as E999."""
    counts = Counter(finding.code for finding in report.findings)
    if report.parse_errors:
        counts[PARSE_ERROR_CODE] = len(report.parse_errors)
    names = {PARSE_ERROR_CODE: "parse-error", **names}
    return sorted(((n, code, names.get(code, "")) for code, n in counts.items()), key=lambda r: (-r[0], r[1]))


def format_statistics(report: Report, names: Mapping[str, str]) -> Styled:
    """``count  CODE  name`` lines, columns aligned."""
    rows = statistics_rows(report, names)
    if not rows:
        return Styled("")
    count_width = max(len(str(n)) for n, _, _ in rows)
    code_width = max(len(code) for _, code, _ in rows)
    out = Styled()
    for n, code, name in rows:
        out.append(f"{n:>{count_width}}  ")
        out.append(code.ljust(code_width), STYLE_CODE)
        out.append(f"  {name}".rstrip() + "\n")
    return out


def format_statistics_json(report: Report, names: Mapping[str, str]) -> str:
    import json  # only the JSON formats need it (1.7 ms to import)

    rows = [{"code": code, "name": name, "count": n} for n, code, name in statistics_rows(report, names)]
    return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
