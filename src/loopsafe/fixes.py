"""Automatic fixes: computing them (one fixer per rule code) and applying them to source text.

A fixer gets a :class:`FixContext` (the finding's site, its span, the module summary and the
source text) and returns a :class:`~loopsafe.model.Fix` made of text edits, or ``None`` when
it cannot fix this occurrence safely enough to offer it. Positions are the summaries' site
spans: 1-based lines and columns, end column exclusive, in characters of the decoded text
without its BOM. Fixers touch only the text they must (the `async ` keyword, the reported
call, one keyword argument), so the formatting around an edit is kept.

Fixes follow ruff's model: a "safe" fix keeps the code's meaning and applies with ``--fix``;
an "unsafe" fix may change behaviour (where code runs, which driver it needs) and applies
only with ``--unsafe-fixes`` as well.

Applying (:func:`apply_fixes`): edits of the chosen fixes are sorted and applied from the
end; a fix whose edits overlap an already chosen one is left for the next pass (the caller
re-analyses the new text and asks again, at most :data:`MAX_PASSES` times), except that an
edit identical to an already chosen one (the same import inserted for two fixes) is shared.
The caller must check the result with :func:`parse_problem` before writing it.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from loopsafe import catalogue as cat
from loopsafe import ir
from loopsafe.model import Edit, Finding, Fix

if TYPE_CHECKING:  # pragma: no cover
    from loopsafe.semantic import ProjectModel

SAFE = "safe"
UNSAFE = "unsafe"
#: how many times --fix re-analyses and fixes again when fixes overlapped
MAX_PASSES = 10

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_BLANKS = re.compile(r"[ \t]*")
_THREADPOOL = ("fastapi.concurrency.run_in_threadpool", "starlette.concurrency.run_in_threadpool")
#: LOOP101/103 wraps are not offered inside a function LOOP105 would turn into a plain `def`
WRAP_CODES = ("LOOP101", "LOOP103")


# --------------------------------------------------------------------------- text


def _strip_bom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text


def newline_of(text: str) -> str:
    m = _LINE_BREAK.search(text)
    return m.group() if m else "\n"


class Source:
    """A file's text with position <-> offset conversion (BOM excluded, as in the spans)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.body = _strip_bom(text)
        self.lines = _LINE_BREAK.split(self.body)
        self.starts = [0]
        for m in _LINE_BREAK.finditer(self.body):
            self.starts.append(m.end())
        self.newline = newline_of(self.body)

    def offset(self, line: int, column: int) -> int:
        line = min(max(line, 1), len(self.starts))
        return min(self.starts[line - 1] + column - 1, len(self.body))

    def position(self, offset: int) -> tuple[int, int]:
        import bisect

        i = bisect.bisect_right(self.starts, offset) - 1
        return i + 1, offset - self.starts[i] + 1

    def slice(self, line: int, column: int, end_line: int, end_column: int) -> str:
        return self.body[self.offset(line, column): self.offset(end_line, end_column)]

    def line(self, number: int) -> str:
        return self.lines[number - 1] if 1 <= number <= len(self.lines) else ""


def replace(source: Source, start: int, end: int, content: str) -> Edit:
    """An edit replacing body[start:end] (offsets) with content."""
    line, col = source.position(start)
    end_line, end_col = source.position(end)
    return Edit(line, col, end_line, end_col, content)


def insert(source: Source, at: int, content: str) -> Edit:
    return replace(source, at, at, content)


# --------------------------------------------------------------------------- context


@dataclass
class FixContext:
    code: str
    message: str
    function: str  # the finding's enclosing function ("" at module level)
    module: ir.ModuleIR
    site: ir.Site
    span: tuple[int, int, int, int]
    source: Source
    model: "ProjectModel | None" = None
    #: the catalogue kind the rule reported on (Emit.kind), "" when it did not say
    kind: str = ""
    _cache: dict = field(default_factory=dict)

    @property
    def func(self) -> ir.FuncIR | None:
        funcs = self._cache.get("funcs")
        if funcs is None:  # once per module: fixers run for every finding of a big file
            funcs = self._cache["funcs"] = {f.qualname: f for f in self.module.functions}
        return funcs.get(self.function)

    @property
    def snippet(self) -> str:
        return self.source.slice(*self.span)

    @property
    def start(self) -> int:
        return self.source.offset(self.span[0], self.span[1])

    @property
    def end(self) -> int:
        return self.source.offset(self.span[2], self.span[3])

    def local_name_for(self, *qualnames: str) -> str | None:
        """The local name the module binds to one of *qualnames* by import, if any."""
        for local, qual in self.module.imports:
            if qual in qualnames and "." not in local:
                return local
        return None

    def imports_from(self, package: str) -> bool:
        return any(q == package or q.startswith(package + ".") for _, q in self.module.imports)

    def binds(self, name: str) -> bool:
        """Whether the module binds *name* other than by import (so an import would clash)."""
        bound = self._cache.get("bound")
        if bound is None:  # once per module
            bound = self._cache["bound"] = (
                {t for t, _, _ in self.module.assigns}
                | {f.name for f in self.module.functions if not f.parent and not f.class_name}
                | {c.name for c in self.module.classes if not c.parent}
                | {n for n, _ in self.module.imports})
        return name in bound

    def import_edit(self, module: str, name: str) -> Edit | None:
        """Insert `from module import name` after the last top-level import (or the docstring)."""
        key = ("import", module, name)
        if key not in self._cache:
            self._cache[key] = _import_edit(self.source, f"from {module} import {name}", self.module.import_anchor)
        return self._cache[key]


def _import_edit(source: Source, statement: str, anchor: tuple[int, int]) -> Edit | None:
    after, first = anchor  # from the summary: the file is not parsed again (ModuleIR.import_anchor)
    nl = source.newline
    if after:
        # at the end of that line, after any trailing comment
        line = source.line(after)
        at = source.offset(after, len(line) + 1)
        if source.body[max(0, at - 200):at].rstrip(" \t").endswith("\\"):
            return None
        return insert(source, at, nl + statement)
    if not first:
        if source.body and not source.body.endswith(("\n", "\r")):
            return insert(source, len(source.body), nl + statement + nl)
        return insert(source, len(source.body), statement + nl)
    return insert(source, source.offset(first, 1), statement + nl)


# --------------------------------------------------------------------------- fixers


Fixer = Callable[[FixContext], "Fix | None"]
FIXERS: dict[str, Fixer] = {}


def fixer(code: str) -> Callable[[Fixer], Fixer]:
    def register(fn: Fixer) -> Fixer:
        FIXERS[code] = fn
        return fn
    return register


def compute_fix(ctx: FixContext) -> Fix | None:
    """The fix for one finding, or None; a fixer that fails is treated as "no fix"."""
    fn = FIXERS.get(ctx.code)
    if fn is None or ctx.span is None:
        return None
    try:
        return fn(ctx)
    except Exception:  # noqa: BLE001 - a fixer's bug must not take the analysis down
        return None


@fixer("LOOP105")
def _async_to_def(ctx: FixContext) -> Fix | None:
    if ctx.site.kind != ir.DEF:
        return None
    fn = ctx.model.by_path[ctx.module.path].funcs.get(ctx.function) if ctx.model is not None else None
    if fn is not None and ctx.model.called_in_project(fn):
        return None  # a caller awaits it (or gathers it): as a `def` it would hand back its result
    if fn is not None and ctx.model.inline_decorator(fn):
        return None  # its decorator's `async def` wrapper would call the `def` on the loop all the same
    start = ctx.start
    m = re.compile(r"async[ \t]+(?:\\\r?\n[ \t]*)?(?=def\b)").match(ctx.source.body, start)
    if m is None:
        return None
    return Fix(UNSAFE, "Declare it with `def` (FastAPI will run it in a threadpool)",
               (replace(ctx.source, m.start(), m.end(), ""),))


def _in_comprehension(ctx: FixContext) -> bool:
    loop_id = ctx.site.loop_id
    seen = 0
    while 0 <= loop_id < len(ctx.module.loops) and seen < 1000:
        loop = ctx.module.loops[loop_id]
        if loop.kind == ir.COMP:
            return True
        loop_id, seen = loop.parent, seen + 1
    return False


def _await_is_legal(ctx: FixContext) -> bool:
    fn = ctx.func
    if fn is None or not fn.is_async or fn.is_lambda or ctx.site.function != fn.qualname:
        return False
    return not _in_comprehension(ctx)


def _threadpool_name(ctx: FixContext) -> tuple[str, Edit | None] | None:
    local = ctx.local_name_for(*_THREADPOOL)
    if local is not None:
        return local, None
    if ctx.binds("run_in_threadpool"):
        return None
    module = "fastapi.concurrency" if ctx.imports_from("fastapi") else "starlette.concurrency"
    edit = ctx.import_edit(module, "run_in_threadpool")
    return ("run_in_threadpool", edit) if edit is not None else None


def _lambda_safe(snippet: str) -> bool:
    """Whether *snippet* can be moved into a lambda body: no await/yield/walrus inside."""
    try:
        tree = ast.parse("(" + snippet + "\n)", mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return not any(isinstance(n, (ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)) for n in ast.walk(tree))


def _split_call(ctx: FixContext, snippet: str, name: str) -> str | None:
    """`f(a, b=c)` -> `name(f, a, b=c)`, keeping the argument text and layout; None if it cannot."""
    call = _call_node(snippet)
    if call is None or not snippet.endswith(")") or any(k.arg == "func" for k in call.keywords):
        return None
    cut = _snippet_offset(ctx, call.func.end_lineno, call.func.end_col_offset) - ctx.start
    func_text, rest = snippet[:cut], snippet[cut:]
    m = re.match(r"[ \t]*\(", rest)
    if m is None or "#" in func_text:
        return None
    inner = rest[m.end():-1]
    if not inner.strip():
        return f"{name}({func_text})"
    # one argument per line stays so: the function goes on a line of its own, like the others
    lead = re.match(r"[ \t]*\r?\n[ \t]*", inner)
    if lead is not None:
        return f"{name}({lead.group()}{func_text},{lead.group()}{inner[lead.end():]})"
    return f"{name}({func_text}, {inner.lstrip()})"


def _wrap(ctx: FixContext) -> Fix | None:
    if ctx.site.kind not in (ir.CALL, ir.ITER, ir.SUB) or ctx.site.awaited or not _await_is_legal(ctx):
        return None
    found = _threadpool_name(ctx)
    if found is None:
        return None
    name, import_edit = found
    snippet = ctx.snippet
    if not snippet.strip():
        return None
    body = None
    if ctx.code == "LOOP103" and ctx.site.kind == ir.CALL:
        body = _split_call(ctx, snippet, name)
    if body is None:
        if not _lambda_safe(snippet):
            return None
        inner = f"list({snippet})" if ctx.site.kind == ir.ITER else snippet
        body = f"{name}(lambda: {inner})"
    text = f"await {body}"
    # `call().attr`, `call()[0]`, `call()(x)`: the awaited value must be parenthesised
    body = ctx.source.body
    end = _BLANKS.match(body, ctx.end).end()  # type: ignore[union-attr]
    after = body[end:end + 1]
    start = ctx.start
    while start > 0 and body[start - 1] in " \t":  # not body[:start].rstrip(): once per fix, that is quadratic
        start -= 1
    before = body[max(0, start - 5):start]
    if after in (".", "[", "(") or before.endswith((".", "await")):
        text = f"({text})"
    edits = [replace(ctx.source, ctx.start, ctx.end, text)]
    if import_edit is not None:
        edits.append(import_edit)
    what = "iterate" if ctx.site.kind == ir.ITER else "run"
    return Fix(UNSAFE, f"Wrap in `await {name}(...)` to {what} it in a worker thread", tuple(edits))


FIXERS["LOOP101"] = _wrap
FIXERS["LOOP103"] = _wrap


def _call_node(snippet: str) -> ast.Call | None:
    try:
        tree = ast.parse("(" + snippet + "\n)", mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return tree.body if isinstance(tree.body, ast.Call) else None


def _snippet_offset(ctx: FixContext, lineno: int, col_offset: int) -> int:
    """Offset in the file of a position given by ast over "(" + snippet (utf-8 columns)."""
    lines = ("(" + ctx.snippet).split("\n")
    text = lines[lineno - 1].encode("utf-8")[:col_offset].decode("utf-8", "replace")
    within = sum(len(line) + 1 for line in lines[: lineno - 1]) + len(text) - 1
    return ctx.start + within


def _add_keyword(ctx: FixContext, keyword: str) -> tuple[Edit, ...] | None:
    """Add `keyword` as the call's last argument, keeping its layout and trailing comma."""
    call = _call_node(ctx.snippet)
    if call is None:
        return None
    body, src = ctx.source.body, ctx.source
    close = ctx.end - 1
    if body[close: close + 1] != ")":
        return None
    args = sorted([*call.args, *call.keywords], key=lambda n: (n.lineno, n.col_offset))
    if not args:
        return (insert(src, close, keyword),)
    last = args[-1]
    arg_end = _snippet_offset(ctx, last.end_lineno, last.end_col_offset)
    rest = body[arg_end:close]
    comma = re.match(r"[ \t]*,", rest)
    end_line = src.position(arg_end)[0]
    if src.position(close)[0] == end_line:
        return (insert(src, arg_end, f", {keyword}"),)
    # one argument per line: a new line indented like the last argument
    start_line = src.position(_snippet_offset(ctx, last.lineno, last.col_offset))[0]
    indent = re.match(r"[ \t]*", src.line(start_line)).group()
    line_end = src.offset(end_line, len(src.line(end_line)) + 1)
    if line_end > close:
        return None
    if src.line(end_line).rstrip().endswith("\\"):
        return None
    if comma:
        return (insert(src, line_end, f"{src.newline}{indent}{keyword},"),)
    if line_end == arg_end:
        return (insert(src, arg_end, f",{src.newline}{indent}{keyword}"),)
    return (insert(src, arg_end, ","), insert(src, line_end, f"{src.newline}{indent}{keyword}"))


@fixer("LOOP302")
def _expire_on_commit(ctx: FixContext) -> Fix | None:
    call = _call_node(ctx.snippet)
    if call is None or any(k.arg in (None, "expire_on_commit") for k in call.keywords):
        return None
    edits = _add_keyword(ctx, "expire_on_commit=False")
    if edits is None:
        return None
    return Fix(SAFE, "Add `expire_on_commit=False`", edits)


@fixer("LOOP501")
def _asgi_transport(ctx: FixContext) -> Fix | None:
    call = _call_node(ctx.snippet)
    if call is None or any(k.arg in (None, "transport") for k in call.keywords):
        return None
    app = next((k for k in call.keywords if k.arg == "app"), None)
    if app is None:
        return None
    transport = "ASGITransport" if "`AsyncClient`" in ctx.message else "WSGITransport"
    if ctx.model is not None:
        client = _httpx_client(ctx, call)
        if client is None:
            return None
        transport = "ASGITransport" if client == "AsyncClient" else "WSGITransport"
    edits: list[Edit] = []
    local = ctx.local_name_for(f"httpx.{transport}", f"httpx._transports.asgi.{transport}")
    if local is None:
        module_alias = ctx.local_name_for("httpx")
        if module_alias is not None:
            local = f"{module_alias}.{transport}"
        elif ctx.binds(transport):
            return None
        else:
            local = transport
            edit = ctx.import_edit("httpx", transport)
            if edit is None:
                return None
            edits.append(edit)
    start = _snippet_offset(ctx, app.lineno, app.col_offset)
    value_start = _snippet_offset(ctx, app.value.lineno, app.value.col_offset)
    end = _snippet_offset(ctx, app.value.end_lineno, app.value.end_col_offset)
    value = ctx.source.body[value_start:end]
    edits.insert(0, replace(ctx.source, start, end, f"transport={local}(app={value})"))
    return Fix(SAFE, f"Pass `transport={transport}(app=...)` instead of `app=`", tuple(edits))


def _httpx_client(ctx: FixContext, call: ast.Call) -> str | None:
    from loopsafe.flow import FunctionFacts

    expr = ctx.site.expr
    if type(expr) is not ir.Call or ctx.model is None:
        return None
    mod = ctx.model.by_path.get(ctx.module.path)
    if mod is None:
        return None
    facts = FunctionFacts(ctx.model, mod, mod.funcs.get(ctx.site.function))
    return cat.HTTPX_CLIENTS.get(facts.external(expr.func))


#: LOOP303: sync driver scheme -> its async twin
ASYNC_SCHEMES = {
    "postgresql": "postgresql+asyncpg", "postgresql+psycopg2": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite", "mysql": "mysql+aiomysql", "mysql+pymysql": "mysql+aiomysql",
}
_URL = re.compile(r"""(?P<quote>[rRbBfFuU]{0,2}(?:'|"))(?P<scheme>[A-Za-z0-9+]+)(?=:/)""")


@fixer("LOOP303")
def _async_driver(ctx: FixContext) -> Fix | None:
    snippet = ctx.snippet
    hits = [m for m in _URL.finditer(snippet) if m.group("scheme").lower() in ASYNC_SCHEMES]
    if len(hits) != 1:
        return None
    m = hits[0]
    scheme = m.group("scheme")
    new = ASYNC_SCHEMES[scheme.lower()]
    at = ctx.start + m.start("scheme")
    return Fix(UNSAFE, f"Use the async driver: `{new}://` (it must be installed)",
               (replace(ctx.source, at, at + len(scheme), new),))


_AWAIT_BEFORE = re.compile(r"(?<![\w.])await[ \t]+$")


@fixer("LOOP305")
def _drop_await(ctx: FixContext) -> Fix | None:
    """`await session.add(x)` -> `session.add(x)`: the keyword must sit right before the call."""
    head = ctx.source.body[max(0, ctx.start - 100):ctx.start]
    m = _AWAIT_BEFORE.search(head)
    if m is None:
        return None
    at = ctx.start - (len(head) - m.start())
    return Fix(SAFE, "Drop the `await`", (replace(ctx.source, at, ctx.start, ""),))


def _close_awaits(kind: str) -> bool | None:
    """Whether `close()` of this catalogue kind must be awaited; None for an unknown kind."""
    k = cat.kind(kind) if kind else None
    if k is None:
        return None
    close = k.methods.get("close")
    return bool(close.awaits) if close is not None else k.is_async


@fixer("LOOP202")
def _return_to_yield(ctx: FixContext) -> Fix | None:
    if ctx.site.kind != ir.RETURN:
        return None
    fn = ctx.func
    if fn is None or fn.is_lambda or fn.is_generator or fn.yields:
        return None
    returns = [s for s in fn.sites if ctx.module.sites[s].kind == ir.RETURN]
    if returns != [ctx.site.id]:
        return None
    line, col, end_line, end_col = ctx.span
    src = ctx.source
    text_line = src.line(line)
    prefix = text_line[: col - 1]
    if prefix.strip() or src.line(end_line)[end_col - 1:].strip(" \t;").split("#")[0].strip():
        return None
    m = re.match(r"return\b[ \t]*(?P<value>.*)\Z", ctx.snippet, re.DOTALL)
    if m is None or not m.group("value").strip():
        return None
    value = m.group("value").rstrip()
    step = "    " if "\t" not in prefix else "\t"
    nl = src.newline
    if value.isidentifier():
        var, head = value, ""
    else:
        names = {p.name for p in fn.params} | {t for t, _, _ in fn.assigns}
        var = "db" if "db" not in names else "session"
        if var in names:
            return None
        head = f"{var} = {value}{nl}{prefix}"
    close = f"{var}.close()"
    awaits = _close_awaits(ctx.kind)
    if awaits is None or (awaits and not fn.is_async):
        # an unknown kind could need either; a plain generator cannot await the close
        return None
    if awaits:
        close = f"await {close}"
    # a comment after the statement stays on its first line
    end = ctx.end
    line_end = src.offset(end_line, len(src.line(end_line)) + 1)
    trailing = src.body[end:line_end]
    first = f"{var} = {value}" if head else "try:"
    if trailing.strip():
        first, end = first + trailing, line_end
    if head:
        head = f"{first}{nl}{prefix}"
    try_line = f"{first}" if not head else "try:"
    block = f"{head}{try_line}{nl}{prefix}{step}yield {var}{nl}{prefix}finally:{nl}{prefix}{step}{close}"
    return Fix(UNSAFE, f"Yield the session and close it in `finally` (`{close}`)",
               (replace(src, ctx.start, end, block),))


# --------------------------------------------------------------------------- selection and application


def is_fixable(code: str, fixable: Sequence[str] | None, unfixable: Sequence[str]) -> bool:
    """ruff-style: the longest matching prefix of `fixable` (default: all) and `unfixable` wins."""
    best, on = -1, fixable is None
    if fixable is None:
        best = 0
    for prefix in fixable or ():
        if code.startswith(prefix) and len(prefix) > best:
            best, on = len(prefix), True
    for prefix in unfixable:
        if code.startswith(prefix) and len(prefix) >= best:
            best, on = len(prefix), False
    return on


def applicable(finding: Finding, unsafe: bool) -> bool:
    return finding.fix is not None and (finding.fix.applicability == SAFE or unsafe)


def drop_conflicting(findings: Iterable[Finding]) -> list[Finding]:
    """Findings whose fixes may be applied together in meaning: when LOOP105 turns an
    `async def` into a `def`, wrapping its calls in `await run_in_threadpool(...)` would
    be wrong (no `await` in a `def`), so those wraps are dropped."""
    findings = list(findings)
    to_def = {(f.path, f.function) for f in findings if f.code == "LOOP105" and f.fix is not None}
    return [f for f in findings if not (f.code in WRAP_CODES and (f.path, f.function) in to_def)]


def _range(source: Source, edit: Edit) -> tuple[int, int]:
    return source.offset(edit.line, edit.column), source.offset(edit.end_line, edit.end_column)


def _overlaps(a: tuple[int, int, str], b: tuple[int, int, str]) -> bool:
    if a == b:
        return False  # identical edits (the same import) are shared
    if a[0] == a[1] or b[0] == b[1]:  # an insertion conflicts with anything at or around it
        return a[0] <= b[1] and b[0] <= a[1]
    return a[0] < b[1] and b[0] < a[1]


def apply_fixes(text: str, findings: Sequence[Finding]) -> tuple[str, list[Finding]]:
    """Apply the fixes of *findings* (all in one file) that do not overlap; returns the new
    text and the findings whose fixes were applied. Overlapping fixes are left out: re-analyse
    and call again."""
    source = Source(text)
    chosen: list[tuple[int, int, str]] = []
    applied: list[Finding] = []
    for finding in sorted(findings, key=Finding.sort_key):
        fix = finding.fix
        if fix is None or not fix.edits:
            continue
        edits = [(*_range(source, e), e.content) for e in fix.edits]
        if any(_overlaps(e, c) for e in edits for c in chosen) or any(
                _overlaps(a, b) for i, a in enumerate(edits) for b in edits[i + 1:]):
            continue
        chosen.extend(e for e in edits if e not in chosen)
        applied.append(finding)
    body = source.body
    for start, end, content in sorted(chosen, key=lambda e: (e[0], e[1]), reverse=True):
        body = body[:start] + content + body[end:]
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    return bom + body, applied


def parse_problem(text: str, path: str) -> str | None:
    """Why *text* is not valid Python (checked with compile() and LibCST), or None."""
    import libcst as cst

    body = _strip_bom(text)
    try:
        compile(body, path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    except (ValueError, RecursionError, MemoryError) as exc:
        return f"{type(exc).__name__}: {exc}"
    try:
        cst.parse_module(body)
    except Exception as exc:  # noqa: BLE001 - LibCST's errors vary
        return f"LibCST cannot parse it: {type(exc).__name__}"
    return None
