"""The rule class: the single source of truth for a rule's code, name, messages and docs.

A rule is a small class. Its class attributes carry the metadata; its docstring, written in
ruff's "What it does / Why is this bad? / Example / Use instead / Known limitations" form,
becomes `docs/rules/<CODE>.md`, the README table row and `loopsafe explain <CODE>`.
Its `check` method asks the semantic model questions and yields emissions; it never
walks syntax or tracks imports itself.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Iterator

if TYPE_CHECKING:  # pragma: no cover
    from loopsafe.semantic import ProjectModel, SiteRef


@dataclass(frozen=True, slots=True)
class Emit:
    """What a rule reports: where (a site in a module), the message, and an optional chain."""

    module: str  # module key (file path) the site belongs to
    site: "SiteRef"
    message: str
    chain: tuple = ()
    function: str = ""
    #: the catalogue kind of the DB object reported on ("sqlalchemy.AsyncSession"), when the
    #: rule knows it: a fixer must not guess it from the message (a function named
    #: `get_async_db` can return a sync Session)
    kind: str = ""


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    #: one-line fix hint shown under the finding
    fix_title: ClassVar[str]
    default_enabled: ClassVar[bool] = True
    #: a short summary for `loopsafe rules` and the README table
    summary: ClassVar[str]

    def check(self, model: "ProjectModel") -> Iterator[Emit]:  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def doc(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def family(cls) -> str:
        return {
            "1": "Blocking work on the event loop",
            "2": "Session lifecycle",
            "3": "Async-API misuse",
            "4": "Query performance",
            "5": "Tests",
        }[cls.code[4]]
