"""Reading syntax newer than the running interpreter.

The analysis parses with CPython's `ast`, so under Python 3.11 a project written for 3.12
(`def first[T](...)`, `type Rows = list[Row]`, f-strings that reuse their quotes) would lose
every file that uses such syntax, and with it every finding and chain through those files.
LibCST reads the newer grammars; this module uses it to rewrite only the constructs the
running interpreter refuses, in place, keeping every line where it was and, where it can,
every column, so positions and source snippets still match the original file:

- type parameters (`[T: int]` after a function or class name) become spaces;
- a `type X = ...` statement becomes `X = ...`;
- an f-string the interpreter cannot parse (with the strings it is concatenated with)
  becomes a call of its expressions, `_f(expr, ...)`, padded to the f-string's width (its
  literal text is not needed: nothing is looked up in it);
- `except*` becomes `except`;
- `except A, B:` (3.14) becomes `except (A, B):`, the one rewrite that moves columns (by two,
  after the exception types, where nothing is reported).

Used only for files `ast.parse` rejects, so LibCST is imported on that path alone.
"""
from __future__ import annotations

import ast
import re


def rewrite(text: str) -> str | None:
    """`text` in a syntax the running interpreter parses, or None (not valid in any grammar
    LibCST knows, or nothing here that can be rewritten)."""
    try:
        import libcst as cst
        from libcst.metadata import MetadataWrapper, PositionProvider
    except ImportError:  # pragma: no cover - libcst is a dependency
        return None
    try:
        wrapper = MetadataWrapper(cst.parse_module(text), unsafe_skip_copy=True)
        positions = wrapper.resolve(PositionProvider)
    except Exception:  # noqa: BLE001 - any failure: not newer syntax LibCST reads
        return None
    # line starts as LibCST counts lines (str.splitlines also breaks at form feeds and
    # other separators inside strings)
    starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]

    def offset(pos) -> int:
        return starts[pos.line - 1] + pos.column

    edits: list[tuple[int, int, str]] = []
    for node, where in positions.items():
        start, end = offset(where.start), offset(where.end)
        if isinstance(node, cst.TypeParameters):
            edits.append((start, end, _blank(text[start:end])))
        elif isinstance(node, cst.TypeAlias):
            keyword = text.find("type", start, end)
            name = text.find(node.name.value, keyword + 4, end)
            if keyword == start and name > 0:
                edits.append((start, name, ""))  # its type parameters are blanked on their own
        elif isinstance(node, (cst.FormattedString, cst.ConcatenatedString,
                               getattr(cst, "TemplatedString", cst.FormattedString))):
            # a whole implicit concatenation at once: `"a" _f(x) "b"` would not parse
            original = text[start:end]
            if not _parses(original):
                edits.append((start, end, _call(node, original, text, positions, offset)))
        elif isinstance(node, getattr(cst, "ExceptStarHandler", ())):
            star = text.find("*", start, end)
            if star > 0:
                edits.append((star, star + 1, " "))
        if isinstance(node, (cst.ExceptHandler, getattr(cst, "ExceptStarHandler", cst.ExceptHandler))) \
                and isinstance(node.type, cst.Tuple) and not node.type.lpar:
            # `except A, B:` (3.14, PEP 758): the tuple in parentheses, two columns wider
            where = positions[node.type]
            first, last = offset(where.start), offset(where.end)
            edits.append((first, first, "("))
            edits.append((last, last, ")"))
    if not edits:
        return None
    # outermost first, then drop edits inside one already taken (an f-string in an f-string)
    edits.sort(key=lambda e: (e[0], -e[1]))
    kept: list[tuple[int, int, str]] = []
    for edit in edits:
        if kept and edit[0] < kept[-1][1]:
            continue
        kept.append(edit)
    out = text
    for start, end, new in reversed(kept):
        out = out[:start] + new + out[end:]
    return out if _parses(out, mode="exec") else None


def _parses(code: str, mode: str = "eval") -> bool:
    try:
        ast.parse(code if mode == "exec" else f"({code})", mode=mode)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def _blank(code: str) -> str:
    """Code replaced by spaces, its line breaks kept as continuations (a backslash before each)."""
    return re.sub(r"\r\n|\r|\n", lambda m: " \\" + m.group(0), re.sub(r"[^\r\n]", " ", code))


def _call(node, original: str, text: str, positions, offset) -> str:
    """`f"{a['x']} {b!r:>{w}}"` -> `_f(a['x'], b, w)`, padded to the f-string's width and lines."""
    import libcst as cst

    args = []
    for expr in _expressions(node, cst):
        where = positions.get(expr)
        if where is None:
            continue
        code = text[offset(where.start): offset(where.end)]
        args.append(code if _parses(code) else "None")
    call = "_f(" + ", ".join(args) + ")"
    missing = original.count("\n") - call.count("\n")
    if missing > 0:
        call = call[:-1] + (", " if args else "") + '"""' + "\n" * missing + '""")'
    width = len(original.rsplit("\n", 1)[-1])
    last = call.rsplit("\n", 1)[-1]
    if "\n" not in original and len(call) < len(original):
        call = call[:-1] + " " * (len(original) - len(call)) + ")"
    elif len(last) < width:
        call = call[:-1] + " " * (width - len(last)) + ")"
    return call


def _expressions(node, cst) -> list:
    """The expressions of an f-string, or of the f-strings of an implicit concatenation
    (format specs included), outermost only."""
    if isinstance(node, cst.ConcatenatedString):
        return _expressions(node.left, cst) + _expressions(node.right, cst)
    found = []
    for part in getattr(node, "parts", ()):
        if isinstance(part, cst.FormattedStringExpression):
            found.append(part.expression)
            if part.format_spec:
                for spec in part.format_spec:
                    if isinstance(spec, cst.FormattedStringExpression):
                        found.append(spec.expression)
        elif hasattr(part, "expression") and not isinstance(part, cst.FormattedStringText):
            found.append(part.expression)  # a t-string's interpolation
    return found
