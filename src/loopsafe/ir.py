"""The per-module summary that one LibCST traversal produces, and everything later reads.

It is deliberately small and made only of frozen, picklable values: expressions become a
tiny symbolic tree (names, attributes, calls, awaits...), functions become their params,
assignments, returns/yields and the *sites* (calls, iterations, `with` items) they contain.
The project-wide semantic layer combines these summaries; rules never see LibCST nodes.
Each site carries its position (`ModuleIR.spans`), so nothing needs the CST afterwards.

These are NamedTuples rather than frozen dataclasses on purpose: summaries are cached on
disk and shipped between processes, and tuples pickle 2-3x faster (measured on 200k
nodes: dump 0.52 s vs 1.56 s, load 0.44 s vs 0.91 s). Code must test node types with
`type(x) is` / `isinstance`, never with `==`: two node types with the same fields compare
equal as tuples.
"""
from __future__ import annotations

import re
from typing import NamedTuple, Union


class Name(NamedTuple):
    id: str
    #: source order of the use (compared with assignment order for a reaching-definition guess)
    pos: int = -1


class Attr(NamedTuple):
    value: "Expr"
    attr: str


class Call(NamedTuple):
    func: "Expr"
    args: tuple["Expr", ...]
    kwargs: tuple[tuple[str, "Expr"], ...]
    site: int  # index into ModuleIR.sites


class Sub(NamedTuple):
    value: "Expr"
    index: tuple["Expr", ...]


class Await(NamedTuple):
    value: "Expr"


class Const(NamedTuple):
    value: object


class Seq(NamedTuple):
    items: tuple["Expr", ...]


class Union_(NamedTuple):
    """`A | B` (annotations); evaluation takes the first known side."""

    items: tuple["Expr", ...]


class Enter(NamedTuple):
    """What `with <value> as x` binds to x."""

    value: "Expr"
    is_async: bool


class IterOf(NamedTuple):
    """An element of iterating `value` (`for x in value`)."""

    value: "Expr"


class FuncRef(NamedTuple):
    """A lambda or nested function used as a value; names its FuncIR."""

    qualname: str


class Annot(NamedTuple):
    """A binding by annotation only (`db: Session` in a class body or function)."""

    value: "Expr"


class Store(NamedTuple):
    """An attribute assignment (`app.state.db = value`), the expression of a STORE site."""

    target: "Expr"
    value: "Expr"


class Slice(NamedTuple):
    """`a:b` inside a subscript."""


class FStr(NamedTuple):
    """An f-string: only its literal text before the first replacement field is known, and
    the plain names that field reads (`f"DELETE FROM {schema}.{table}"`: ("schema",))."""

    prefix: str
    first_names: tuple[str, ...] = ()


class Other(NamedTuple):
    pass


OTHER = Other()

Expr = Union[Name, Attr, Call, Sub, Await, Const, Seq, Union_, Enter, IterOf, FuncRef, Slice, Annot, Store, FStr, Other]


class Param(NamedTuple):
    name: str
    annotation: Expr | None
    default: Expr | None
    star: str = ""  # "", "*", "**"


#: site kinds
CALL = "call"
ITER = "iter"
WITH = "with"
SUB = "sub"
RETURN = "return"
YIELD = "yield"
STORE = "store"
#: a plain name tested for truth (`if rows:`, `if not rows`, `while rows and more`): a lazy
#: peewee select or Django queryset runs its query there (`__bool__`/`__len__`)
TRUTH = "truth"

#: Site.conds: what a name (or a dotted attribute, `self.db.dirty`) must be for the site to run
TRUTHY, FALSY, IS_NONE, NOT_NONE = "truthy", "falsy", "none", "not-none"

#: Site.role: where a site sits relative to the innermost `try` of its function
TRY, EXCEPT, FINALLY = "try", "except", "finally"
DEF = "def"


class Site(NamedTuple):
    id: int
    kind: str
    #: qualname of the innermost function containing it ("" at module or class level)
    function: str
    expr: Expr | None
    awaited: bool = False
    #: how many loops (for/while/comprehension) of its function enclose it
    loop: int = 0
    #: "", TRY, EXCEPT or FINALLY: its place in the innermost enclosing try statement
    role: str = ""
    #: the innermost enclosing loop of its function (index into ModuleIR.loops), or -1
    loop_id: int = -1
    #: an `if`/`match`/`try` statement inside that innermost loop encloses it (runs only sometimes)
    guarded: bool = False
    #: a call whose value is thrown away (an expression statement: `session.commit()`)
    discarded: bool = False
    #: what must hold of plain names for it to run, from the `if` tests, `and`/`or` operands
    #: and early exits of its own function: (name, TRUTHY | FALSY | IS_NONE | NOT_NONE) each
    #: (`if blocking: work()`: work runs only when `blocking` is truthy)
    conds: tuple[tuple[str, str], ...] = ()


#: Loop.kind
FOR, WHILE, COMP = "for", "while", "comp"


class Loop(NamedTuple):
    """A `for`/`async for` loop, a `while` loop or one `for` clause of a comprehension."""

    kind: str  # FOR, WHILE or COMP
    is_async: bool
    #: the iterated expression (None for `while`)
    iter: Expr | None
    #: names bound per item (`for user_id, name in rows` -> ("user_id", "name"))
    targets: tuple[str, ...]
    #: the enclosing loop of the same function, or -1
    parent: int
    function: str
    #: for/while: the number of the module's sites made before the body's first top-level
    #: `break`/`return`/`raise` had run (sites with a lower id, made in the body, run at
    #: most once per loop), or -1; and the same count at each `continue` of the body
    exit_at: int = -1
    continue_at: tuple[int, ...] = ()
    #: branches of the body that end by leaving the loop (`if found: save(x); break`), as
    #: [first, end) ranges of site ids: what runs there runs at most once per loop run
    exit_branches: tuple[tuple[int, int], ...] = ()


class FuncIR(NamedTuple):
    qualname: str  # "get_users", "Repo.get", "handler.<locals>.inner", "f.<lambda:3>"
    name: str
    is_async: bool
    is_generator: bool
    is_lambda: bool
    decorators: tuple[Expr, ...]
    params: tuple[Param, ...]
    class_name: str  # qualname of the class for methods, else ""
    method_type: str  # "instance" | "class" | "static" | ""
    parent: str  # enclosing function qualname, or ""
    #: (target, value, order): order grows with source position (see Name.pos)
    assigns: tuple[tuple[str, Expr, int], ...]
    sites: tuple[int, ...]
    returns: tuple[Expr, ...]
    yields: tuple[Expr, ...]
    has_await: bool
    globals_: tuple[str, ...]
    def_site: int
    #: names used where the summary keeps no expression: dict displays, comprehension
    #: results, values assigned to subscripts or unpacked into several targets (a value that
    #: escapes there cannot be followed; the lifecycle rules treat it as handed over)
    opaque: tuple[str, ...] = ()
    #: the items of its `async with` statements (sync `with` items are WITH sites)
    async_with: tuple[Expr, ...] = ()
    #: ids of its sites inside an `except` or `finally` clause of any enclosing `try`
    #: (Site.role only tells the innermost `try`: `finally: try: db.close() ...` is cleanup)
    cleanup: tuple[int, ...] = ()
    #: every `name.attr` read in its body as (name, attr, position in Name.pos order), wherever
    #: it sits (also where no expression is kept); `self`/`cls` and assignment targets excluded
    attr_reads: tuple[tuple[str, str, int], ...] = ()
    #: every rebinding of a parameter in its body, as (name, Site.conds where it happens):
    #: `if frontend_user: auth_method, username = frontend_user` rebinds `auth_method` only
    #: when `frontend_user` is truthy
    bind_conds: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()


def dotted(expr: "Expr | None") -> str:
    """`self.db.dirty` -> "self.db.dirty"; "" for anything but names and attributes."""
    parts = []
    while type(expr) is Attr:
        parts.append(expr.attr)
        expr = expr.value
    if type(expr) is not Name:
        return ""
    parts.append(expr.id)
    return ".".join(reversed(parts))


def parse_dotted(text: str) -> "Expr | None":
    """"self.db.dirty" -> the expression that spells it; None for anything else."""
    parts = text.strip().split(".")
    if not all(p.isidentifier() for p in parts):
        return None
    expr: Expr = Name(parts[0])
    for part in parts[1:]:
        expr = Attr(expr, part)
    return expr


def redefined(qualname: str) -> str:
    """The name a redefinition binds, for messages: `root@364` (the second `def root`, on
    line 364) -> `root`; `outer@12.<locals>.inner` -> `outer.<locals>.inner`."""
    return _REDEFINED.sub("", qualname) if "@" in qualname else qualname


_REDEFINED = re.compile(r"@\d+(?=\.|$)")


class ClassIR(NamedTuple):
    qualname: str
    name: str
    bases: tuple[Expr, ...]
    methods: tuple[tuple[str, str], ...]  # (method name, FuncIR qualname)
    attrs: tuple[tuple[str, Expr], ...]  # class-body assignments
    decorators: tuple[Expr, ...]
    parent: str  # enclosing function qualname, or ""


class ModuleIR(NamedTuple):
    path: str
    name: str  # dotted module name
    is_package: bool
    imports: tuple[tuple[str, str], ...]  # local name -> absolute qualified name
    star_imports: tuple[str, ...]
    assigns: tuple[tuple[str, Expr, int], ...]  # module-level
    functions: tuple[FuncIR, ...]
    classes: tuple[ClassIR, ...]
    sites: tuple[Site, ...]
    dunder_all: tuple[str, ...] | None
    #: (line, column, end_line, end_column), 1-based, end exclusive, one per site
    spans: tuple[tuple[int, int, int, int] | None, ...] = ()
    #: every loop of the module (Site.loop_id points here)
    loops: tuple[Loop, ...] = ()
    #: where a fix adds an import: (last line of the last top-level import, or of the module
    #: docstring when there is none, else 0; line of the first top-level statement, 0 if none)
    import_anchor: tuple[int, int] = (0, 0)
    #: summarised from a rewrite into this Python's syntax (`loopsafe.newer_syntax`): this
    #: Python cannot check that a fix's result parses, so no fix is offered
    newer_syntax: bool = False
