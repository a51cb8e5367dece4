"""``# noqa`` comments: reading them, applying them to findings, and writing them (``--add-noqa``).

Semantics follow flake8, so a comment written for one front end works in the other:

* ``# noqa`` alone suppresses every finding reported on its line;
* ``# noqa: LOOP101, LOOP102`` (codes separated by commas and/or whitespace) suppresses the
  findings whose code starts with one of the codes, so ``# noqa: LOOP1`` covers LOOP101;
* the comment belongs to the line a finding is *reported* on (its start line). As flake8
  does, a line continued with a backslash or by a multi-line string is one line for this
  purpose, and its comment goes where a comment is legal: after the last physical line::

      rows = db.execute('''
          SELECT ...
      ''')  # noqa: LOOP101      <- covers the finding reported on the first line

A call spread over several lines *inside brackets* is not joined: the comment must be on
the line the finding starts on, as in flake8.

Where loopsafe is stricter or more lenient than flake8, it follows ruff:

* ``noqa`` and the codes are case-insensitive, and ``#noqa:LOOP101`` needs no space;
* ``# noqa:`` followed by no code, or by something that is not a code, such as the
  letters-only ``# noqa: LOOP``, is reported as invalid and *not* honoured (flake8 reads it
  as a bare ``# noqa`` that hides everything on the line);
* only real comments count: ``"# noqa"`` inside a string literal is not a directive.

Comments are found with :mod:`tokenize`. When a file cannot be tokenized, each physical
line is searched for a directive, as flake8 does in that case, and ``--add-noqa`` leaves the
file alone.
"""
from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from loopsafe._hash import blake2b
from loopsafe.model import Finding

# `# noqa` not followed by more of a word (`# noqa_foo` is not a directive), then an optional
# `: codes`. The codes are matched one by one below, to tell "no codes" from "bad codes".
_DIRECTIVE = re.compile(r"#\s*noqa(?![\w-])(?P<colon>\s*:)?", re.IGNORECASE)
_CODE = re.compile(r"[A-Z]+[0-9]+(?![\w-])", re.IGNORECASE)
_SEPARATOR = re.compile(r"[,\s]*")
_WORD = re.compile(r"[^\s,]+")
_BREAK = re.compile(r"[\r\n]")
_LINE_END = re.compile(r"(?<=\n)|(?<=\r)(?!\n)")

#: how `--add-noqa` separates the comment from the code, as black and ruff do
COMMENT_GAP = "  "


@dataclass(frozen=True)
class Directive:
    """One ``# noqa`` directive, positioned inside its physical line."""

    line: int
    #: column (0-based, in characters) where ``#`` starts
    start: int
    #: ``None`` for a bare ``# noqa``; otherwise the codes, upper-cased
    codes: tuple[str, ...] | None
    #: columns of the code list (``LOOP101, E501``), to merge new codes into it
    codes_start: int = 0
    codes_end: int = 0
    #: why the directive is not honoured, or "" if it is valid
    problem: str = ""

    @property
    def valid(self) -> bool:
        return not self.problem

    def suppresses(self, code: str) -> bool:
        if not self.valid:
            return False
        return self.codes is None or code.upper().startswith(self.codes)


def parse_directive(comment: str, line: int = 0, offset: int = 0) -> Directive | None:
    """The first ``# noqa`` directive in *comment* (text starting at column *offset*), if any."""
    match = _DIRECTIVE.search(comment)
    if match is None:
        return None
    start = offset + match.start()
    if not match.group("colon"):
        return Directive(line, start, None)
    position = match.end()
    codes: list[str] = []
    codes_start = codes_end = position
    while True:
        position = _SEPARATOR.match(comment, position).end()
        code = _CODE.match(comment, position)
        if code is None:
            break
        if not codes:
            codes_start = code.start()
        codes.append(code.group().upper())
        codes_end = position = code.end()
    if not codes:
        word = _WORD.match(comment, position)
        got = f"`{word.group()}`" if word else "nothing"
        return Directive(
            line, start, (), problem=f"expected rule codes after `noqa:` (such as `# noqa: LOOP101`), got {got}"
        )
    return Directive(line, start, tuple(codes), offset + codes_start, offset + codes_end)


def split_lines(text: str) -> list[str]:
    """Physical lines with their line ends, split where the Python tokenizer splits them.

    ``str.splitlines`` also splits at form feeds and Unicode separators, which Python does not.
    """
    lines = _LINE_END.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _strip_eol(line: str) -> tuple[str, str]:
    body = line.rstrip("\r\n")
    return body, line[len(body):]


@dataclass
class _TokenMap:
    """What :mod:`tokenize` says about a file, as far as ``# noqa`` is concerned."""

    #: line -> the last line of the flake8 "noqa line" it belongs to
    line_end: dict[int, int] = field(default_factory=dict)
    #: line -> (column, text) of the comment on that line
    comments: dict[int, tuple[int, str]] = field(default_factory=dict)
    #: lines where a comment would land inside an f-string (Python 3.12+ tokenizes those)
    no_comment: set[int] = field(default_factory=set)


def _token_map(lines: Sequence[str]) -> _TokenMap | None:
    """Group lines as flake8's ``FileProcessor._noqa_line_mapping`` does, and find comments.

    A group ends at each NEWLINE or NL token; a token spanning lines (a multi-line string)
    or a backslash continuation (which produces no token) extends it. ``None`` if the file
    does not tokenize.
    """
    import tokenize  # here: Python <= 3.11 has no use for it on most files (`_scanned_map`)

    bodies = iter([_strip_eol(line)[0] + "\n" for line in lines])
    result = _TokenMap()
    first, last = sys.maxsize, -1
    fstring_depth = 0
    fstring_start = getattr(tokenize, "FSTRING_START", None)
    fstring_end = getattr(tokenize, "FSTRING_END", None)
    try:
        for tok in tokenize.generate_tokens(lambda: next(bodies, "")):
            kind = tok.type
            if kind in (tokenize.ENDMARKER, tokenize.DEDENT):
                continue
            if kind == fstring_start:
                fstring_depth += 1
            elif kind == fstring_end:
                fstring_depth -= 1
            elif kind == tokenize.COMMENT:
                result.comments[tok.start[0]] = (tok.start[1], tok.string)
            first = min(first, tok.start[0])
            last = max(last, tok.end[0])
            if kind in (tokenize.NEWLINE, tokenize.NL):
                for number in range(first, last + 1):
                    result.line_end[number] = last
                if fstring_depth:
                    result.no_comment.add(last)
                first, last = sys.maxsize, -1
    except (tokenize.TokenError, SyntaxError):
        return None
    return result


# What of tokenizing `_token_map` needs: strings (they may span lines and hide a `#`),
# comments, line continuations and line ends. The string patterns are tokenize's own
# (`Single3`, `Double3`, `ContStr`) without the prefixes, which do not change where a string ends.
_SCAN = re.compile(r"""
    (?P<string>'''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*'''
             |\"\"\"[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*\"\"\"
             |'[^\n'\\]*(?:\\.[^\n'\\]*)*'
             |"[^\n"\\]*(?:\\.[^\n"\\]*)*")
  | (?P<comment>\#[^\n]*)
  | (?P<continuation>\\\n)
  | (?P<other>['"\\])
""", re.VERBOSE | re.DOTALL)
#: Up to Python 3.11, tokenize reads an f-string as one string, as `_SCAN` does; from 3.12 on
#: it tokenizes inside f-strings (in C, and fast), so `_token_map` is used there.
_SCAN_IS_EXACT = sys.version_info < (3, 12)


def _scanned_map(text: str) -> _TokenMap | None:
    """`_token_map` from a scan for strings, comments and continuations, several times faster
    than the pure-Python tokenizer of Python <= 3.11. ``None`` where the scan cannot be sure
    (an unterminated string, a stray backslash, a continuation or an open bracket at the end):
    the caller then tokenizes. For a file that tokenizes it is the same map as `_token_map`'s
    (tests/test_noqa.py compares them, and they agreed on all 28,000 files of the corpus),
    except that a line holding nothing but a line continuation, where no token (and so no
    finding) starts, is mapped to the end of its statement rather than left out. A file whose
    indentation tokenize rejects (it does not parse either) gets its comments read rather
    than every line searched."""
    body = text.replace("\r\n", "\n").replace("\r", "\n")
    if body and not body.endswith("\n"):
        body += "\n"
    result = _TokenMap()
    # a line is its own end unless a string or a continuation carries its statement on: only
    # those are stepped through (a step per line cost most of the scan)
    lines = body.count("\n")
    result.line_end = line_end = dict(zip(range(1, lines + 1), range(1, lines + 1)))
    comments = result.comments
    line, first, line_start, pos = 1, 1, 0, 0
    # brackets left open at the end make tokenize fail: count those outside strings and comments
    depth = _bracket_balance(body)
    for match in _SCAN.finditer(body):
        start = match.start()
        breaks = body.count("\n", pos, start)
        if breaks:  # lines end outside any string: the first ends those from `first` on
            for number in range(first, line):
                line_end[number] = line
            line += breaks
            first, line_start = line, body.rfind("\n", pos, start) + 1
        kind = match.lastgroup
        if kind == "string":
            literal = match.group()
            depth -= _bracket_balance(literal)
            breaks = literal.count("\n")
            if breaks:
                line += breaks
                line_start = start + literal.rfind("\n") + 1
        elif kind == "comment":
            comments[line] = (start - line_start, match.group())
            depth -= _bracket_balance(match.group())
        elif kind == "continuation":
            line += 1
            line_start = match.end()
        else:
            return None
        pos = match.end()
    if body.count("\n", pos):
        for number in range(first, line):
            line_end[number] = line
        first = line = lines + 1
    return result if first == line and depth == 0 else None


def _bracket_balance(text: str) -> int:
    return text.count("(") + text.count("[") + text.count("{") - text.count(")") - text.count("]") - text.count("}")


class FileNoqa:
    """The ``# noqa`` directives of one file's text."""

    def __init__(self, text: str, cache: Any = None) -> None:
        self._text = text
        self._cache = cache  # a loopsafe.cache.Cache: token maps are kept by text
        self._lines: list[str] | None = None
        # most files carry no directive at all; tokenizing them to learn that cost more than
        # the rest of a warm run
        self._has_directive = _DIRECTIVE.search(text) is not None
        self._token_cache: list[_TokenMap | None] = []

    @property
    def lines(self) -> list[str]:
        # split only when needed: for the 52 files of a 700-file project that mention `noqa`,
        # splitting cost as much as the rest of applying the comments
        if self._lines is None:
            self._lines = split_lines(self._text)
        return self._lines

    @property
    def _tokens(self) -> _TokenMap | None:
        if not self._token_cache:
            tokens = None
            key = blake2b(self._text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
            if self._cache is not None:
                tokens = self._cache.load_entry("noqa", key)
            if not isinstance(tokens, _TokenMap):
                tokens = _scanned_map(self._text) if _SCAN_IS_EXACT else None
                if tokens is None:
                    tokens = _token_map(self.lines)
                if self._cache is not None and tokens is not None:
                    self._cache.store_entry("noqa", key, tokens)
            self._token_cache.append(tokens)
        return self._token_cache[0]

    def prepare(self) -> None:
        """Make the comment map a file with directives needs, and keep it in the cache (when
        there is one): for a run to come (`loopsafe.ahead`)."""
        if self._has_directive:
            self._tokens  # noqa: B018 - made and stored on first use

    def comment_line(self, line: int) -> int:
        """The physical line whose comment governs findings reported on *line*."""
        if self._tokens is None:
            return line
        return self._tokens.line_end.get(line, line)

    def directive_at(self, line: int) -> Directive | None:
        """The directive written on physical line *line* (not following the flake8 grouping)."""
        if self._tokens is None:
            if not 1 <= line <= len(self.lines):
                return None
            return parse_directive(_strip_eol(self.lines[line - 1])[0], line)
        comment = self._tokens.comments.get(line)
        if comment is None:
            return None
        column, text = comment
        return parse_directive(text, line, column)

    def directive_for(self, line: int) -> Directive | None:
        """The directive that applies to a finding reported on *line*."""
        if not self._has_directive:
            return None
        return self.directive_at(self.comment_line(line))

    def may_hold_invalid(self) -> bool:
        """Whether some `# noqa` text in the file, comment or not, is an invalid directive:
        when none is, the file need not be tokenized to find the invalid ones."""
        for match in _DIRECTIVE.finditer(self._text):
            end = _BREAK.search(self._text, match.start())
            directive = parse_directive(self._text[match.start(): end.start() if end else len(self._text)])
            if directive is not None and not directive.valid:
                return True
        return False

    def directives(self) -> Iterable[Directive]:
        """Every directive in the file, in line order."""
        if not self._has_directive:
            return
        if self._tokens is None:
            numbers: Iterable[int] = range(1, len(self.lines) + 1)
        else:
            numbers = sorted(self._tokens.comments)
        for number in numbers:
            directive = self.directive_at(number)
            if directive is not None:
                yield directive

    # -- writing ------------------------------------------------------------------------

    def comment_problem(self, line: int) -> str:
        """Why a comment for findings on *line* cannot be written, or "" if it can."""
        if self._tokens is None:
            return "the file could not be tokenized"
        target = self._tokens.line_end.get(line)
        if target is None:
            return "the line is not part of the code"
        if target in self._tokens.no_comment:
            return "the line ends inside an f-string"
        existing = self.directive_at(target)
        if existing is not None and not existing.valid:
            return f"line {target} has an invalid `# noqa` directive; correct it by hand"
        return ""

    def with_codes(self, line: int, codes: Iterable[str]) -> str:
        """Physical line *line* (with its line end) carrying a directive that covers *codes*.

        An existing ``# noqa: X`` on the line is extended (its codes first, then the new ones,
        sorted); any other comment is kept and the directive appended after it.
        """
        body, eol = _strip_eol(self.lines[line - 1])
        existing = self.directive_at(line)
        if existing is not None and existing.codes:
            merged = list(existing.codes)
            merged += sorted(set(codes) - set(merged))
            body = body[: existing.codes_start] + ", ".join(merged) + body[existing.codes_end:]
        else:
            body = body.rstrip() + COMMENT_GAP + f"# noqa: {', '.join(sorted(set(codes)))}"
        return body + eol


# --------------------------------------------------------------------------- applying


@dataclass(frozen=True)
class InvalidDirective:
    path: str
    line: int
    problem: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: invalid `# noqa` directive, ignored: {self.problem}"


def _mentions_noqa(text: str) -> bool:
    return "noqa" in text.lower()


def apply_noqa(
    findings: Sequence[Finding], sources: Mapping[str, str], cache: Any = None
) -> tuple[list[Finding], list[Finding], list[InvalidDirective]]:
    """Split *findings* into (kept, suppressed) by the ``# noqa`` comments in *sources*.

    *sources* maps a finding's path to its file's text. Also returns the invalid directives
    found in any of *sources*, so the caller can warn about them whether or not they sit on a
    reported line (files that never mention ``noqa`` are not tokenized).
    """
    files = {path: FileNoqa(text, cache) for path, text in sources.items() if _mentions_noqa(text)}
    kept: list[Finding] = []
    suppressed: list[Finding] = []
    for finding in findings:
        noqa = files.get(finding.path)
        directive = noqa.directive_for(finding.line) if noqa is not None else None
        (suppressed if directive is not None and directive.suppresses(finding.code) else kept).append(finding)
    invalid = [
        InvalidDirective(path, directive.line, directive.problem)
        for path, noqa in sorted(files.items()) if noqa.may_hold_invalid()
        for directive in noqa.directives()
        if not directive.valid
    ]
    return kept, suppressed, invalid


@dataclass(frozen=True)
class Skipped:
    """A finding ``--add-noqa`` could not cover."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: cannot add a `# noqa` comment: {self.reason}"


def add_noqa(findings: Sequence[Finding], text: str) -> tuple[str, int, list[Skipped]]:
    """*text* with ``# noqa: CODE`` comments covering *findings* (all in this one file).

    Returns the new text, the number of lines that got a new or extended directive, and the
    findings that could not be covered. The result is checked to compile whenever the
    original did; if it would not, the file is left alone and every finding is skipped.
    """
    noqa = FileNoqa(text)
    wanted: dict[int, set[str]] = {}
    skipped: list[Skipped] = []
    for finding in findings:
        problem = noqa.comment_problem(finding.line)
        if problem:
            skipped.append(Skipped(finding.path, finding.line, problem))
            continue
        wanted.setdefault(noqa.comment_line(finding.line), set()).add(finding.code)
    if not wanted:
        return text, 0, skipped
    lines = list(noqa.lines)
    for line, codes in wanted.items():
        lines[line - 1] = noqa.with_codes(line, codes)
    new_text = "".join(lines)
    if _compiles(text) and not _compiles(new_text):  # a safety net: never break a file
        reason = "adding it would make the file invalid Python (please report this)"
        return text, 0, skipped + [Skipped(f.path, f.line, reason) for f in findings]
    return new_text, len(wanted), skipped


def _compiles(text: str) -> bool:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True
