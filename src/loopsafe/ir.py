"""The per-module summary that one LibCST traversal produces, and everything later reads.

It is deliberately small and made only of frozen, picklable values: expressions become a
tiny symbolic tree (names, attributes, calls, awaits...), functions become their params,
assignments, returns/yields and the *sites* (calls, iterations, `with` items) they contain.
The project-wide semantic layer combines these summaries; rules never see LibCST nodes.
Positions are not part of the summary: the extractor keeps the CST nodes of the sites
beside it so positions are computed only for what gets reported.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True, slots=True)
class Name:
    id: str
    #: source order of the use (compared with assignment order for a reaching-definition guess)
    pos: int = -1


@dataclass(frozen=True, slots=True)
class Attr:
    value: "Expr"
    attr: str


@dataclass(frozen=True, slots=True)
class Call:
    func: "Expr"
    args: tuple["Expr", ...]
    kwargs: tuple[tuple[str, "Expr"], ...]
    site: int  # index into ModuleIR.sites


@dataclass(frozen=True, slots=True)
class Sub:
    value: "Expr"
    index: tuple["Expr", ...]


@dataclass(frozen=True, slots=True)
class Await:
    value: "Expr"


@dataclass(frozen=True, slots=True)
class Const:
    value: object


@dataclass(frozen=True, slots=True)
class Seq:
    items: tuple["Expr", ...]


@dataclass(frozen=True, slots=True)
class Union_:
    """`A | B` (annotations); evaluation takes the first known side."""

    items: tuple["Expr", ...]


@dataclass(frozen=True, slots=True)
class Enter:
    """What `with <value> as x` binds to x."""

    value: "Expr"
    is_async: bool


@dataclass(frozen=True, slots=True)
class IterOf:
    """An element of iterating `value` (`for x in value`)."""

    value: "Expr"


@dataclass(frozen=True, slots=True)
class FuncRef:
    """A lambda or nested function used as a value; names its FuncIR."""

    qualname: str


@dataclass(frozen=True, slots=True)
class Annot:
    """A binding by annotation only (`db: Session` in a class body or function)."""

    value: "Expr"


@dataclass(frozen=True, slots=True)
class Slice:
    """`a:b` inside a subscript."""


@dataclass(frozen=True, slots=True)
class Other:
    pass


OTHER = Other()

Expr = Union[Name, Attr, Call, Sub, Await, Const, Seq, Union_, Enter, IterOf, FuncRef, Slice, Annot, Other]


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    annotation: Expr | None
    default: Expr | None
    star: str = ""  # "", "*", "**"


#: site kinds
CALL = "call"
ITER = "iter"
WITH = "with"
SUB = "sub"
DEF = "def"


@dataclass(frozen=True, slots=True)
class Site:
    id: int
    kind: str
    #: qualname of the innermost function containing it ("" at module or class level)
    function: str
    expr: Expr | None
    awaited: bool = False


@dataclass(frozen=True, slots=True)
class FuncIR:
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


@dataclass(frozen=True, slots=True)
class ClassIR:
    qualname: str
    name: str
    bases: tuple[Expr, ...]
    methods: tuple[tuple[str, str], ...]  # (method name, FuncIR qualname)
    attrs: tuple[tuple[str, Expr], ...]  # class-body assignments
    decorators: tuple[Expr, ...]
    parent: str  # enclosing function qualname, or ""


@dataclass(frozen=True, slots=True)
class ModuleIR:
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
