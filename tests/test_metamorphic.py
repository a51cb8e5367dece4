"""Metamorphic tests over the fixtures (in the spirit of flake8-async's `test_decorator`/`autofix` runs).

1. De-async: turn every fixture into sync code with a LibCST transformer (`async def` -> `def`,
   `await x` -> `x`, `async with` -> `with`, `async for` -> `for`, async comprehensions -> sync).
   Nothing runs on the event loop any more, so LOOP101/102/103/105 must all disappear. The
   transformed code must still be valid Python.

2. Await checkpoint: prepend `await _checkpoint();` to one statement line of every `async def`
   (same line, so line numbers do not move). The only thing that changes is that every async
   function now contains an `await`, so LOOP105 must disappear and every other LOOP1xx finding
   must stay exactly as it was.
"""
from __future__ import annotations

import libcst as cst
import pytest

LOOP_RULES = {"LOOP101", "LOOP102", "LOOP103", "LOOP105"}


class DeAsync(cst.CSTTransformer):
    """Remove every async construct, keeping the code otherwise identical (and lines in place)."""

    def leave_FunctionDef(self, original_node, updated_node):
        return updated_node.with_changes(asynchronous=None)

    def leave_With(self, original_node, updated_node):
        return updated_node.with_changes(asynchronous=None)

    def leave_For(self, original_node, updated_node):
        return updated_node.with_changes(asynchronous=None)

    def leave_CompFor(self, original_node, updated_node):
        return updated_node.with_changes(asynchronous=None)

    def leave_Await(self, original_node, updated_node):
        expr = updated_node.expression
        # keep any parentheses that were around the `await` expression
        return expr.with_changes(
            lpar=[*updated_node.lpar, *expr.lpar],
            rpar=[*expr.rpar, *updated_node.rpar],
        )


class _AsyncLeft(cst.CSTVisitor):
    def __init__(self) -> None:
        self.found: list[str] = []

    def visit_FunctionDef(self, node):
        if node.asynchronous is not None:
            self.found.append(f"async def {node.name.value}")

    def visit_Await(self, node):
        self.found.append("await")

    def visit_With(self, node):
        if node.asynchronous is not None:
            self.found.append("async with")

    def visit_For(self, node):
        if node.asynchronous is not None:
            self.found.append("async for")

    def visit_CompFor(self, node):
        if node.asynchronous is not None:
            self.found.append("async comprehension")


def de_async(text: str) -> str:
    return cst.parse_module(text).visit(DeAsync()).code


class AddCheckpoint(cst.CSTTransformer):
    """Prepend `await _checkpoint();` to the first simple statement line owned by each async def."""

    CHECKPOINT = cst.Expr(cst.Await(cst.Call(cst.Name("_checkpoint"))))

    def __init__(self) -> None:
        # one frame per enclosing function/lambda/class: is it an async def still needing a checkpoint?
        self.stack: list[dict] = []
        self.missing: list[str] = []

    def visit_FunctionDef(self, node):
        self.stack.append({"async": node.asynchronous is not None, "done": False, "name": node.name.value})

    def leave_FunctionDef(self, original_node, updated_node):
        frame = self.stack.pop()
        if frame["async"] and not frame["done"]:
            self.missing.append(frame["name"])
        return updated_node

    def visit_Lambda(self, node):
        self.stack.append({"async": False, "done": True, "name": "<lambda>"})

    def leave_Lambda(self, original_node, updated_node):
        self.stack.pop()
        return updated_node

    def visit_ClassDef(self, node):
        self.stack.append({"async": False, "done": True, "name": node.name.value})

    def leave_ClassDef(self, original_node, updated_node):
        self.stack.pop()
        return updated_node

    def leave_SimpleStatementSuite(self, original_node, updated_node):
        # `async def f(): return x` - a one-line body
        return self.leave_SimpleStatementLine(original_node, updated_node)

    def leave_SimpleStatementLine(self, original_node, updated_node):
        if not self.stack:
            return updated_node
        frame = self.stack[-1]
        if not frame["async"] or frame["done"]:
            return updated_node
        first = updated_node.body[0]
        if isinstance(first, cst.Expr) and isinstance(first.value, (cst.SimpleString, cst.ConcatenatedString)):
            return updated_node  # keep docstrings docstrings
        frame["done"] = True
        checkpoint = self.CHECKPOINT.with_changes(semicolon=cst.Semicolon(whitespace_after=cst.SimpleWhitespace(" ")))
        return updated_node.with_changes(body=[checkpoint, *updated_node.body])


def add_checkpoints(text: str) -> tuple[str, list[str]]:
    transformer = AddCheckpoint()
    code = cst.parse_module(text).visit(transformer).code
    return code, transformer.missing


def _keys(report, codes=None):
    return {(f.path, f.line, f.code) for f in report.findings if codes is None or f.code in codes}


# -- transformer self-tests: need no engine -----------------------------------------------------


def test_de_async_transformer():
    src = (
        "async def f(db, qs):\n"
        "    async with a() as b:\n"
        "        x = (await b.get()).value\n"
        "    async for row in qs:\n"
        "        pass\n"
        "    return [r async for r in qs], await g(await h())\n"
    )
    out = de_async(src)
    assert out == (
        "def f(db, qs):\n"
        "    with a() as b:\n"
        "        x = (b.get()).value\n"
        "    for row in qs:\n"
        "        pass\n"
        "    return [r for r in qs], g(h())\n"
    )
    assert len(out.splitlines()) == len(src.splitlines())


def test_checkpoint_transformer():
    src = (
        "async def f():\n"
        '    """doc"""\n'
        "    def g():\n"
        "        return 1\n"
        "    x = 1\n"
        "    return x\n"
        "def h():\n"
        "    return 2\n"
    )
    out, missing = add_checkpoints(src + "async def one(): return 3\n")
    assert missing == []
    assert out.splitlines()[8] == "async def one(): await _checkpoint(); return 3"
    assert out.splitlines()[4] == "    await _checkpoint(); x = 1"
    assert out.splitlines()[3] == "        return 1"  # nested sync def untouched
    assert out.splitlines()[7] == "    return 2"


def test_de_async_fixture_is_valid_sync_python(fixture_case):
    for f in fixture_case.files:
        out = de_async(f.text)
        compile(out, f"{f.abspath} (de-async)", "exec", dont_inherit=True)
        left = _AsyncLeft()
        cst.parse_module(out).visit(left)
        assert not left.found, f"{f.relpath}: async constructs left after de-async: {left.found}"
        assert len(out.splitlines()) == len(f.text.splitlines()), "de-async must keep line numbers"


# -- with the engine --------------------------------------------------------------------------------


def test_de_async_silences_loop_rules(fixture_case, run_engine):
    texts = {f.relpath: de_async(f.text) for f in fixture_case.files}
    report = run_engine(fixture_case, texts=texts)
    assert not report.parse_errors, report.parse_errors
    left = sorted(
        (f.path, f.line, f.code, f.message) for f in report.findings if f.code in LOOP_RULES
    )
    if left:
        lines = [f"{fixture_case.id}: findings survived turning the code sync (nothing runs on the loop now):"]
        for path, line, code, message in left:
            src = texts[path].splitlines()[line - 1].strip()
            lines.append(f"  {path}:{line}: {code}  {message}\n      | {src}")
        pytest.fail("\n".join(lines), pytrace=False)


def test_await_checkpoint_only_silences_loop105(fixture_case, run_engine):
    texts: dict[str, str] = {}
    for f in fixture_case.files:
        code, missing = add_checkpoints(f.text)
        assert not missing, f"{f.relpath}: no statement line to put a checkpoint in: {missing}"
        compile(code, f"{f.abspath} (checkpoint)", "exec", dont_inherit=True)
        texts[f.relpath] = code

    before = run_engine(fixture_case)
    after = run_engine(fixture_case, texts=texts)
    assert not after.parse_errors, after.parse_errors

    still_105 = sorted(_keys(after, {"LOOP105"}))
    assert not still_105, f"LOOP105 reported for async functions that now contain an await: {still_105}"

    others_before = {k for k in _keys(before) if k[2] != "LOOP105"}
    others_after = {k for k in _keys(after) if k[2] != "LOOP105"}
    assert others_after == others_before, (
        "adding an await changed findings other than LOOP105:\n"
        f"  only before: {sorted(others_before - others_after)}\n"
        f"  only after:  {sorted(others_after - others_before)}"
    )
