"""The summaries' Site.conds: what must hold of a name for a site to run.

LOOP103 and LOOP401 drop a helper's sites whose conditions a caller's literal rules out, so a
condition recorded where it does not hold would hide real findings: each case here pins a
shape of control flow to the conditions of the calls in it.
"""
from __future__ import annotations

import ast
import textwrap

import pytest

from loopsafe import extract, ir

T, F, NONE, NOT_NONE = ir.TRUTHY, ir.FALSY, ir.IS_NONE, ir.NOT_NONE


def conds_of_calls(source: str) -> dict[str, tuple]:
    """Callee name -> conds of its (only) call site."""
    source = textwrap.dedent(source)
    summary = extract.extract(ast.parse(source), source, "m.py", "m", False)
    out = {}
    for site in summary.sites:
        if site.kind == ir.CALL and isinstance(site.expr, ir.Call) and type(site.expr.func) is ir.Name:
            assert site.expr.func.id not in out, "one call per callee name in these cases"
            out[site.expr.func.id] = site.conds
    return out


CASES = [
    ("if/else", """
        def f(p):
            if p:
                a()
            else:
                b()
            c()
     """, {"a": (("p", T),), "b": (("p", F),), "c": ()}),
    ("elif chain", """
        def f(p, q):
            if p:
                a()
            elif q is None:
                b()
            else:
                c()
     """, {"a": (("p", T),), "b": (("p", F), ("q", NONE)), "c": (("p", F), ("q", NOT_NONE))}),
    ("and / or operands", """
        def f(p, q):
            x = p and a()
            y = q is None or b()
            if p is not None and not c(): pass
     """, {"a": (("p", T),), "b": (("q", NOT_NONE),), "c": (("p", NOT_NONE),)}),
    ("conditional expression", """
        def f(p):
            return a() if not p else b()
     """, {"a": (("p", F),), "b": (("p", T),)}),
    ("early return holds for the rest of the block", """
        def f(p):
            if p is None:
                return
            a()
     """, {"a": (("p", NOT_NONE),)}),
    ("an early exit inside a branch ends with the branch", """
        def f(p, q):
            if q:
                if not p:
                    return
                a()
            b()
     """, {"a": (("q", T), ("p", T)), "b": ()}),
    ("a continue in a loop body holds in the body only", """
        def f(items, p):
            for i in items:
                if p:
                    continue
                a()
            b()
     """, {"a": (("p", F),), "b": ()}),
    ("a test it cannot read says nothing", """
        def f(p, mode):
            if mode == "on" or p.flag:
                a()
            if p or mode:
                b()
     """, {"a": (), "b": ()}),
    ("a negated disjunction says both are false", """
        def f(p, q):
            if not (p or q):
                a()
     """, {"a": (("p", F), ("q", F))}),
    ("a nested function starts afresh", """
        def f(p):
            if p:
                def inner():
                    a()
                inner()
     """, {"a": (), "inner": (("p", T),)}),
]


@pytest.mark.parametrize("source, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_site_conditions(source: str, expected: dict) -> None:
    got = conds_of_calls(source)
    assert {name: got[name] for name in expected} == expected


def exit_branches(source: str) -> list[tuple[tuple[int, int], ...]]:
    source = textwrap.dedent(source)
    summary = extract.extract(ast.parse(source), source, "m.py", "m", False)
    return [loop.exit_branches for loop in summary.loops]


def test_a_raise_caught_inside_the_loop_does_not_leave_it() -> None:
    caught, plain, outer_caught = exit_branches("""
        def f(db, ids, groups):
            for i in ids:
                try:
                    if i:
                        db.get(i)
                        raise Skip()
                except Skip:
                    continue
            for i in ids:
                if i:
                    db.get(i)
                    raise Stop()
            for g in groups:
                try:
                    for i in g:
                        if i:
                            db.get(i)
                            raise Skip()
                except Skip:
                    pass
    """)[:3]
    assert caught == ()
    assert plain != ()
    assert outer_caught == ()  # the raise leaves the inner loop (its own record), not this one


def test_a_name_defined_twice_keeps_both_functions_apart() -> None:
    source = textwrap.dedent("""
        def root():
            first()

        def root():
            second()
            def inner():
                third()

        class C:
            @property
            def x(self):
                return 1

            @x.setter
            def x(self, value):
                pass
        """)
    summary = extract.extract(ast.parse(source), source, "m.py", "m", False)
    quals = [f.qualname for f in summary.functions]
    assert sorted(quals) == ["C.x", "C.x@16", "root", "root@5", "root@5.<locals>.inner"]
    owner = {site.expr.func.id: site.function for site in summary.sites
             if site.kind == ir.CALL and type(site.expr.func) is ir.Name}
    assert owner == {"first": "root", "second": "root@5", "third": "root@5.<locals>.inner"}
    assert [ir.redefined(q) for q in ("root@5", "root@5.<locals>.inner", "C.x@16")] == \
        ["root", "root.<locals>.inner", "C.x"]


def test_how_deep_a_file_may_nest_does_not_depend_on_the_callers_stack() -> None:
    """The command line summarises from deep inside click, a pool worker and the start-up
    helper (loopsafe.ahead) from near the bottom of their stacks: the same text must give
    the same summary, or "too deeply nested", in all of them."""
    from loopsafe import extract

    def summarised(terms: int, depth: int = 0) -> bool:
        if depth:
            return summarised(terms, depth - 1)
        text = "x = " + "+".join(["a"] * terms) + "\n"
        return isinstance(extract.summarise(text, "deep.py", "deep", False), ir.ModuleIR)

    low, high = 10, 20_000  # the deepest sum that summarises, near the top of the stack
    assert summarised(low) and not summarised(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if summarised(middle) else (low, middle)
    assert summarised(low, depth=300)
    assert not summarised(high, depth=300)
