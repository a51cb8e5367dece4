"""LOOP4xx: query performance."""
from __future__ import annotations

import re

from typing import Iterator

from loopsafe import catalogue as cat
from loopsafe import ir
from loopsafe.flow import (
    ARG, ASSIGN, RETURN, STORED, FunctionFacts, call_name, callees, calls, describe_loop, enclosing_loops, evaluated_operand,
    facts_of, first_text, statement_text, strip_awaits, url_texts, walk,
)
from loopsafe.rules.base import Emit, Rule
from loopsafe.semantic import ProjectModel, VClass, VExt, VFunc, VInst, VKind, VMethod, _Func, _Scope, module_fact, project_fact, union

QUERY, COMMIT = "query", "commit"
_MAX_DEPTH = 8


class _Effects:
    """Which queries and commits a site runs, directly or through project helpers.

    Direct operations are the blocking ones of the semantic model (sync drivers) and awaited
    coroutine methods of async kinds (catalogue `awaits`); helpers are followed when they run
    where they are called: plain `def` helpers, and `async def` helpers that are awaited.
    A result maps QUERY/COMMIT to the chain of frames below the site (empty: the site itself).
    """

    def __init__(self, model: ProjectModel) -> None:
        self.model = model
        self._memo: dict = {}
        #: results the depth limit cut short below them: they hold for the depth they were
        #: asked at only (a helper first met eight helpers down is followed in full when a
        #: loop calls it directly), so they are kept per depth: at most _MAX_DEPTH of them
        self._memo_at_depth: dict = {}
        self._stack: set = set()
        self._depth_cuts = 0

    def function(self, fn: _Func, env: tuple, depth: int) -> dict[str, tuple]:
        key = (fn.module.ir.path, fn.ir.qualname, env)
        if key in self._memo:
            return self._memo[key]
        got = self._memo_at_depth.get((key, depth))
        if got is not None:
            return got
        if depth > _MAX_DEPTH:
            self._depth_cuts += 1
            return {}
        if key in self._stack:
            return {}
        cuts = self._depth_cuts
        self._stack.add(key)
        try:
            found: dict[str, tuple] = {}
            scope = _Scope(fn.module, fn, env)
            ops = self.model.direct_ops(fn, env)
            sites = fn.module.ir.sites
            for sid in fn.ir.sites:
                if len(found) == 2 and all(len(chain) == 1 for chain in found.values()):
                    break  # both, directly in this function: nothing shorter to find
                if not fn.site_runs(sites[sid], env):
                    continue  # `if reserved_id is not None: query()` with the id left out
                if sites[sid].role == ir.EXCEPT:
                    continue  # runs when the helper failed: a retry or a log line, not per item
                for what, below in self.site(fn, scope, sites[sid], ops, depth).items():
                    # the shortest way: a first query three helpers down (too deep to report)
                    # must not hide a later one the function runs itself
                    if what not in found or len(below) + 1 < len(found[what]):
                        found[what] = (((fn.module.ir.path, sid), fn.ir.qualname),) + below
        finally:
            self._stack.discard(key)
        if self._depth_cuts == cuts:
            self._memo[key] = found
        else:
            self._memo_at_depth[(key, depth)] = found
        return found

    def site(self, fn: _Func, scope: _Scope, site: ir.Site, ops: dict, depth: int) -> dict[str, tuple]:
        op = ops.get(site.id)
        if op is not None:
            if op.effect != cat.IO:
                return {}
            if site.kind in (ir.ITER, ir.SUB, ir.TRUTH):
                return {QUERY: ()}
            if site.kind != ir.CALL:
                return {}
        if site.kind != ir.CALL or not isinstance(site.expr, ir.Call):
            return {}
        call = site.expr
        func = self.model.eval(call.func, scope)
        if isinstance(func, VMethod):
            func = func.at(site.awaited)
            k = cat.kind(func.kind)
            if k is None:
                return {}
            m = k.methods.get(func.name) or k.other_methods
            if m is None:
                return {}
            if k.is_async or m.awaits:
                # a coroutine method (an async kind's, or a sync ORM's async twin: Django's
                # `await qs.aget()`) queries when awaited
                if not (site.awaited and m.awaits == cat.MUST_AWAIT):
                    return {}
            elif op is None:
                return {}
            what = _classify(k.name, func.name)
            if what == QUERY and func.name in cat.SQL_TEXT_METHODS:
                what = self._statement_effect(fn, call)
            return {what: ()} if what else {}
        if op is not None:  # a library function or a callable kind that does I/O
            return {QUERY: ()}
        target: _Func | None = None
        bound = None
        if isinstance(func, VFunc):
            target = self.model.func(func)
            bound = func
        elif isinstance(func, VClass):
            target = self.model.find_method(func.module, func.qualname, "__init__")
            if target is not None:
                bound = VFunc(target.module.ir.path, target.ir.qualname, _inst(func))
        if target is None or bound is None or target.ir.is_generator:
            return {}
        if target.ir.is_async and not site.awaited:
            return {}
        if not target.ir.is_async and self.model.is_offloaded_function(target):
            return {}
        env = self.model.bind_args(target, bound, call, scope)
        return self.function(target, env, depth + 1)


    def _statement_effect(self, fn: _Func, call: ir.Call) -> str:
        """What running SQL text does: a query, except a schema statement (`CREATE INDEX ...`,
        `CreateSchema(...)`: run once per schema object) and transaction control (`SAVEPOINT`,
        `RELEASE`, `ROLLBACK TO`: no rows to fetch together; `COMMIT` commits)."""
        stmt = call.args[0] if call.args else next((v for k, v in call.kwargs if k in _STATEMENT_KWARGS), None)
        text = statement_text(self.model, facts_of(self.model, fn.module, fn), stmt) if stmt is not None else None
        if text is None:
            return QUERY
        if cat.DDL_STATEMENT.match(text):
            return ""
        control = cat.TRANSACTION_STATEMENT.match(text)
        if control:
            return COMMIT if control.group(1).lower() in ("commit", "end") else ""
        return QUERY


#: the text of an f-string statement up to its first replacement field, when that field is a
#: table, column or other schema name (`f'DELETE FROM "{table}"'`, `f"ALTER TABLE t ADD COLUMN {col}"`)
_SCHEMA_NAME_PREFIX = re.compile(
    r"(?is)(?:\b(?:from|into|update|table|join|exists|truncate|describe|analyze|vacuum|reindex|column|"
    r"trigger|index|view|schema|database|sequence)\s*[\"`\[]?"
    # SQLite's `PRAGMA table_info('users')` names its table as a string
    r"|\bpragma\s+\w+\s*\(\s*[\"'`\[]?)\s*$")


def _per_schema_object(model: ProjectModel, fn: _Func, site: ir.Site, loop: ir.Loop) -> bool:
    """A statement written in the loop that interpolates the item as its table (or column,
    trigger...) name: one statement per schema object, which no `IN (...)` can merge."""
    call = site.expr
    if isinstance(call, ir.Call) and _targets_item_table(model, fn, call, set(loop.targets)):
        return True
    sql = call.args[0] if isinstance(call, ir.Call) and call.args else None
    if (type(sql) is ir.Call and type(sql.func) is ir.Attr and sql.func.attr == "format" and sql.args
            and type(sql.func.value) is not ir.Name):
        # `sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))`
        text = first_text(sql.func.value)
        if text is None or not _SCHEMA_NAME_PREFIX.search(text.split("{", 1)[0]):
            return False
        names: tuple[str, ...] = tuple(n.id for n in walk(sql.args[0]) if type(n) is ir.Name)
    else:
        if type(sql) is ir.Call and sql.args:  # text(f"...")
            sql = sql.args[0]
        if type(sql) is not ir.FStr or not _SCHEMA_NAME_PREFIX.search(sql.prefix):
            return False
        names = sql.first_names
    items = set(loop.targets)
    for name in names:
        if name in items:
            return True
        # `table_name = table[0]`: named after the item one step away
        if any(type(n) is ir.Name and n.id in items for _order, e in fn.assigns.get(name, ()) for n in walk(e)):
            return True
    return False


#: keywords naming the statement of `execute`-like methods (DB-API, SQLAlchemy, asyncpg)
_STATEMENT_KWARGS = ("statement", "sql", "query", "operation")


def _runs_the_item(model: ProjectModel, fn: _Func, site: ir.Site, loop: ir.Loop) -> bool:
    """`for statement in statements: cur.execute(statement)` (or `text(statement)`): the
    loop's items are the statements themselves, each another one, run in turn as a script
    is; no query is repeated for each item, so there is nothing to fetch together."""
    call = site.expr
    if type(call) is not ir.Call or type(call.func) is not ir.Attr or call.func.attr not in cat.SQL_TEXT_METHODS:
        return False
    stmt = call.args[0] if call.args else next((v for k, v in call.kwargs if k in _STATEMENT_KWARGS), None)
    facts = facts_of(model, fn.module, fn)
    if type(stmt) is ir.Call and len(stmt.args) == 1 and not stmt.kwargs:
        wrapper = facts.eval(stmt.func)
        if not (isinstance(wrapper, VExt) and wrapper.qualname in _STATEMENT_WRAPPERS):
            return False
        stmt = stmt.args[0]
    if type(stmt) is not ir.Name or stmt.id not in loop.targets:
        return False
    method = facts.eval(call.func)
    return isinstance(method, VMethod) and method.name in cat.SQL_TEXT_METHODS


#: calls that turn a SQL string into a statement object without changing what it runs
_STATEMENT_WRAPPERS = frozenset({"sqlalchemy.text", "sqlalchemy.sql.text", "sqlalchemy.sql.expression.text",
                                 "sqlmodel.text", "psycopg2.sql.SQL", "psycopg.sql.SQL"})


#: SQLAlchemy constructs whose first argument is the table (or mapped class) they act on
_TABLE_CONSTRUCTS = frozenset({"delete", "update", "insert", "select"})


def _targets_item_table(model: ProjectModel, fn: _Func, call: ir.Call, items: set[str]) -> bool:
    """`session.execute(delete(cls).where(...))`, `stmt = select(cls.id)` then
    `session.execute(stmt)`, `session.query(cls).delete()`: the loop's item is the table."""
    facts = facts_of(model, fn.module, fn)
    exprs: list[ir.Expr] = [call]
    for arg in call.args[:1]:
        if type(arg) is ir.Name:
            exprs.extend(value for _order, value in fn.assigns.get(arg.id, ()))
    for expr in exprs:
        for node in walk(expr):
            if type(node) is not ir.Call or not node.args:
                continue
            first = node.args[0]
            while type(first) is ir.Attr:  # `select(cls.id)`
                first = first.value
            if type(first) is not ir.Name or first.id not in items:
                continue
            func = facts.eval(node.func)
            if isinstance(func, VExt):
                head, _, name = func.qualname.partition(".")
                if head in ("sqlalchemy", "sqlmodel") and func.qualname.rpartition(".")[2] in _TABLE_CONSTRUCTS:
                    return True
            elif isinstance(func, VMethod) and func.name == "query" and func.kind in cat.SESSION_KINDS:
                return True
    return False


def _inst(cls: VClass) -> VInst:
    return VInst(cls.module, cls.qualname)


def _classify(kind: str, method: str) -> str:
    if method in cat.COMMIT_METHODS:
        return COMMIT
    if method in cat.TRANSACTION_METHODS:
        return ""
    if method in cat.CURSOR_READS and kind.endswith("Cursor"):
        return ""  # `cur.execute(q)` then `cur.fetchone()`: one query
    if kind in cat.SESSION_KINDS and method in cat.UNIT_OF_WORK_METHODS:
        return ""
    return QUERY


def _runs_once(loop: ir.Loop, site: ir.Site) -> bool:
    """The site runs at most once per run of the loop: the body, or the `if` branch the site
    is in, leaves the loop (`break`/`return`/`raise`) after it, and no `continue` comes between."""
    for end in (loop.exit_at, *(end for first, end in loop.exit_branches if first <= site.id)):
        if 0 <= site.id < end and not any(site.id < c <= end for c in loop.continue_at):
            return True
    return False


class _Loops:
    """Which loops of one function run over data: query results, or collections handed in."""

    def __init__(self, model: ProjectModel, effects: _Effects, fn: _Func) -> None:
        self.model = model
        self.effects = effects
        self.fn = fn
        self.facts = facts_of(model, fn.module, fn)
        self.scope = _Scope(fn.module, fn)
        self.ops = model.direct_ops(fn, ())
        self._memo: dict[int, bool] = {}
        self._accumulators: set[str] | None = None
        params = [p.name for p in fn.ir.params if p.star != "**"]  # `**kwargs`: named fields, not items
        if fn.ir.class_name and fn.ir.method_type in ("instance", "class") and params:
            params = params[1:]  # self / cls: the object's state is not data handed in
        self.params = set(params)

    def effects_of(self, site: ir.Site) -> dict[str, tuple]:
        return self.effects.site(self.fn, self.scope, site, self.ops, 0)

    def data_loop(self, site: ir.Site) -> ir.Loop | None:
        """The innermost loop around a site that runs over data, if any."""
        for loop in enclosing_loops(self.fn.module, site):
            if _runs_once(loop, site):
                continue  # `for ref in refs: if ...: continue / delete(ref) / break`
            if loop.kind != ir.WHILE and loop.iter is not None and not self._streamed(loop) \
                    and self.is_data(loop.iter, 0):
                return loop
        return None

    def _streamed(self, loop: ir.Loop) -> bool:
        """`async for event in events` over a parameter: a stream whose items arrive one at a
        time (events, messages, chunks), none there yet to fetch together when the loop starts."""
        it = loop.iter
        return loop.is_async and type(it) is ir.Name and it.id in self.params \
            and self.facts.reaching(it.id, it.pos) is None

    def is_data(self, expr: ir.Expr, depth: int) -> bool:
        """Rows of a query, or a collection from the function's parameters (ids, a request body).

        Not data: literals, module constants, the object's own state (`self.config.cameras`),
        counters (`range(n)`, `itertools.count()`), retry iterators, batches
        (`range(0, len(ids), 500)`, `chunked(...)`), schema objects (`metadata.sorted_tables`),
        and anything the analysis cannot trace back to one of the two.
        """
        key = id(expr)
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = False  # cycles
        result = self._is_data(expr, depth) if depth < 10 else False
        self._memo[key] = result
        return result

    def _is_data(self, expr: ir.Expr, depth: int) -> bool:
        t = type(expr)
        facts = self.facts
        if t is ir.Attr:
            return expr.attr not in cat.SCHEMA_ATTRS and self.is_data(expr.value, depth + 1)
        if t in (ir.Sub, ir.Await, ir.IterOf):
            return self.is_data(expr.value, depth + 1)
        if t is ir.Union_:
            return any(self.is_data(i, depth + 1) for i in expr.items)
        if t is ir.Name:
            hit = facts.reaching(expr.id, expr.pos)
            if hit is not None:
                return self.is_data(hit[1], depth + 1)
            return expr.id in self.params
        if t is not ir.Call:
            return False
        if facts.is_builtin(expr.func, {"range"}):
            if len(expr.args) >= 3:
                return False  # range(0, len(ids), size): batches
            return any(type(a) is ir.Call and facts.is_builtin(a.func, {"len"}) and a.args
                       and self.is_data(a.args[0], depth + 1) for a in expr.args)
        q = facts.external(expr.func)
        if facts.is_builtin(expr.func, _PASS_THROUGH) or q in cat.PROGRESS_ITERATORS:
            return any(self.is_data(a, depth + 1) for a in expr.args)
        if q in cat.COUNTING_ITERATORS or q.startswith(cat.RETRY_ITERATORS_PREFIXES):
            return False
        name = call_name(expr).lower()
        if any(word in name for word in (*cat.BATCHING_NAMES, "retry", "retrying", "attempt")):
            return False
        site = self.fn.module.ir.sites[expr.site]
        if QUERY in self.effects_of(site):
            return True
        value = facts.eval(expr)
        if isinstance(value, VKind) and value.kind in cat.ROW_KINDS:
            return True
        if type(expr.func) is ir.Attr:  # `ids.split(",")`, `body.items.values()`
            return self.is_data(expr.func.value, depth + 1)
        return False

    def batch_flush(self, site: ir.Site) -> bool:
        """A conditional query flushing a list the loop fills and then empties:

            pending.append(row.id)
            if len(pending) >= 500:
                db.execute(update(T).where(T.id.in_(pending)))
                pending = []

        The query must name the list, or hold an expression the summary does not keep
        (`T.id << pending` is such a binary operation)."""
        if not site.guarded or not isinstance(site.expr, ir.Call):
            return False
        if self._accumulators is None:
            self._accumulators = self._emptied_accumulators()
        if not self._accumulators:
            return False
        return any((type(n) is ir.Name and n.id in self._accumulators) or type(n) is ir.Other
                   for n in walk(site.expr))

    def _emptied_accumulators(self) -> set[str]:
        """Names appended to in a loop and later rebound to an empty list or `clear()`ed."""
        appended: dict[str, int] = {}
        loops_of: dict[str, set[int]] = {}  # the loops each list is appended to in
        cleared: list[tuple[str, int, int]] = []  # (name, position, loop id)
        sites = self.fn.module.ir.sites
        for sid in self.fn.ir.sites:
            call = sites[sid].expr
            if not (isinstance(call, ir.Call) and type(call.func) is ir.Attr and type(call.func.value) is ir.Name):
                continue
            name = call.func.value
            if sites[sid].loop and call.func.attr in ("append", "extend"):
                appended[name.id] = min(appended.get(name.id, name.pos), name.pos)
                loops_of.setdefault(name.id, set()).add(sites[sid].loop_id)
            elif call.func.attr == "clear" and not call.args and sites[sid].loop:
                cleared.append((name.id, name.pos, sites[sid].loop_id))
        # emptied inside the loop that fills it (`batch.clear()` after the flush), not after it
        out = {name for name, pos, loop_id in cleared if name in appended and pos > appended[name]
               and loop_id in self._with_enclosing(loops_of[name])}
        for name, first_use in appended.items():
            for order, value in self.facts.bindings.get(name, ()):
                empty = (type(value) is ir.Seq and not value.items) or (
                    type(value) is ir.Call and not value.args and self.facts.is_builtin(value.func, {"list"}))
                if empty and order > first_use:
                    out.add(name)
        return out

    def _with_enclosing(self, loop_ids: set[int]) -> set[int]:
        """These loops and the loops nested in them."""
        loops = self.fn.module.ir.loops
        out = set(loop_ids)
        for i, loop in enumerate(loops):
            parent, seen = loop.parent, 0
            while parent >= 0 and seen < 1000:
                if parent in loop_ids:
                    out.add(i)
                    break
                parent, seen = loops[parent].parent, seen + 1
        return out

    def evaluated_once(self, site: ir.Site) -> bool:
        """Iterating, indexing or `len()` of a caching query object built before the loop."""
        operand = evaluated_operand(self.facts, site)
        if type(operand) is not ir.Name:
            return False
        value = self.facts.eval(operand)
        if not (isinstance(value, VKind) and value.kind in cat.CACHING_QUERY_KINDS):
            return False
        hit = self.facts.reaching(operand.id, operand.pos)
        if hit is None:
            return True  # a parameter or a global: made before the loop
        bound = strip_awaits(hit[1])
        while type(bound) is ir.Call and type(bound.func) is ir.Attr and type(bound.func.value) is ir.Call:
            bound = bound.func.value
        if type(bound) is not ir.Call:
            return False
        return self.fn.module.ir.sites[bound.site].loop < site.loop


_PASS_THROUGH = frozenset({"enumerate", "zip", "reversed", "sorted", "list", "tuple", "set", "iter", "frozenset"})
_MAX_CHAIN = 2
#: a thin wrapper passes the work on: it calls at most one project function and makes at
#: most this many calls in all (`get_by_id` building `select(...).where(...)` for
#: `get_one_or_none`). A chain longer than _MAX_CHAIN made only of thin wrappers is still
#: one query per call (a repository's `get_by_id` -> `get_one_or_none` -> `_execute_query`)
_THIN_CALLS = 5


def _chain_length(model: ProjectModel, chain: tuple) -> int:
    """How deep a query is below a loop: the helpers between them, except that a chain of
    thin wrappers, however long, counts as one (a whole operation anywhere in it counts it
    in full: one lookup inside a job run per item is not an N+1)."""
    if len(chain) <= _MAX_CHAIN:
        return len(chain)
    for (path, _sid), qualname in chain[:-1]:
        fn = model.func(VFunc(path, qualname))
        if fn is None or not _thin(model, fn):
            return len(chain)
    return 1


def _thin(model: ProjectModel, fn: _Func) -> bool:
    calls = sum(fn.module.ir.sites[sid].kind == ir.CALL for sid in fn.ir.sites)
    return calls <= _THIN_CALLS and len(_project_callees(model, fn)) <= 1


def _project_callees(model: ProjectModel, fn: _Func) -> list[_Func]:
    """The project functions `fn` calls (not through caching decorators), once per model."""
    return model.shared_result(("loop4.callees", fn.module.ir.path, fn.ir.qualname),
                               lambda: [c for _s, c in callees(model, fn) if not _cached(model, c)])


def _loop_effects(model: ProjectModel, effects: _Effects) -> Iterator[tuple[_Func, ir.Site, ir.Loop, dict]]:
    """Sites that run once per item of a loop over data, with that loop and what they run."""
    tests: dict[str, bool] = {}
    for fn in model.functions():
        path = fn.module.ir.path
        is_test = tests.get(path)
        if is_test is None:
            is_test = tests[path] = model.is_test_path(path) or model.is_migration_script(fn.module)
        if is_test:
            # test code builds fixtures, a migration runs once, offline: their loops
            # are not request latency
            continue
        sites = fn.module.ir.sites
        loops: _Loops | None = None
        found_here: list[tuple[ir.Site, ir.Loop, dict]] = []
        for sid in fn.ir.sites:
            site = sites[sid]
            if site.loop == 0 or site.kind not in (ir.CALL, ir.ITER, ir.SUB, ir.TRUTH):
                continue
            if loops is None:
                loops = _Loops(model, effects, fn)
            found = {k: v for k, v in loops.effects_of(site).items() if _chain_length(model, v) <= _MAX_CHAIN}
            if not found or loops.evaluated_once(site) or loops.batch_flush(site):
                continue
            loop = loops.data_loop(site)
            if loop is not None and QUERY in found and not found[QUERY] and (
                    _per_schema_object(model, fn, site, loop) or _runs_the_item(model, fn, site, loop)):
                # `DELETE FROM "{table}"` per table: maintenance, not a query per row; a
                # list of statements run one by one: a script, not a query per row
                found = {k: v for k, v in found.items() if k != QUERY}
            if loop is not None and found:
                found_here.append((site, loop, found))
        # `cur.execute(q).fetchall()`: one finding, on the innermost query call
        inner = {s.id for s, _l, _f in found_here}
        for site, loop, found in found_here:
            if isinstance(site.expr, ir.Call) and any(
                    type(n) is ir.Call and n.site in inner and n.site != site.id for n in walk(site.expr.func)):
                continue
            yield fn, site, loop, found


def _helper_text(chain: tuple) -> str:
    return f" (through `{chain[0][1].rpartition('.')[2]}`: {{chain}})" if chain else ""


def _loop_effects_of(model: ProjectModel) -> list[tuple[_Func, ir.Site, ir.Loop, dict]]:
    """`_loop_effects` once per model and focus: LOOP401 and LOOP402 read the same list (a second
    walk would find the same, every answer below it being memoised)."""
    focus = frozenset(model.focus) if model.focus is not None else None
    got = model.shared.get("loop4.loop_effects")
    if got is None or got[0] != focus:
        got = model.shared["loop4.loop_effects"] = (focus, list(_loop_effects(model, _effects_for(model))))
    return got[1]


def _effects_for(model: ProjectModel) -> _Effects:
    """One effects memo per model, shared by LOOP401 and LOOP402 (kept on the model: in a
    module-level WeakKeyDictionary, the memo's own reference to its model kept it alive)."""
    effects = model.shared.get("loop4.effects")
    if effects is None:
        effects = model.shared["loop4.effects"] = _Effects(model)
    return effects


class QueryInLoop(Rule):
    """
    ## What it does
    Reports a database query run once per item of a loop or comprehension over rows or ids:
    a blocking query of a sync driver (`db.get(User, id)`, `db.query(...).first()`,
    `cursor.execute(...)`, `collection.find_one(...)`, a redis command...), an awaited
    query of an async one (`await session.execute(...)`, `await conn.fetchrow(...)`), or
    a call to a project helper (sync, or `async def` and awaited) that runs one, one or two
    helpers down (the chain is shown), or deeper through thin wrappers only (helpers that
    call at most one project function and make at most five calls, as a repository's
    `get_by_id` -> `get_one_or_none` -> `_execute`).

    A loop is over data when its iterable holds query results (rows, a cursor, a lazy
    query, a helper's result when that helper queries) or comes from the function's
    parameters (ids, a request body's list, `ids.split(",")`), directly or through
    `enumerate`/`zip`/`sorted`/`.items()` or a progress bar (`tqdm(ids)`). Not over data: `async for`
    over a parameter (a stream of events or messages, which arrive one at a time), `while` loops (retries,
    polling, pagination), `range(n)` (attempts, fixed counts; `range(len(ids))` is over
    data), `range(0, len(ids), 500)` and `chunked(...)`/`batched(...)` batches,
    `itertools.count()`, tenacity/stamina/backoff retry iterators, literal collections,
    module constants, the object's own state (`self.config.cameras`) and
    `metadata.sorted_tables`. Commits, rollbacks, flushes and connection handling are not
    queries (commits are LOOP402), nor are a session's `delete()`/`merge()` (unit of
    work); a query under an `if` that flushes a list the loop fills and then empties
    (`if len(batch) >= 500: flush(batch); batch = []`) is batching, and indexing or measuring a peewee/Django query built before
    the loop reads its cached rows. A statement written in the loop that interpolates the
    item as its table, column or other schema name (`f'DELETE FROM "{table}"'`,
    `f"ALTER TABLE t ADD COLUMN {column}"`, `sql.SQL("SELECT count(*) FROM {}").format(...)`)
    runs once per schema object, which no `IN (...)` can merge: it is not reported, nor is a
    SQLAlchemy statement over a loop of mapped classes (`delete(cls)`, `session.query(model)`
    for each `cls` of a list of tables); nor is
    a schema statement (`CREATE`, `ALTER`, `DROP`, `TRUNCATE`, `GRANT`..., or a SQLAlchemy DDL
    construct: `CreateTable(t)`, `CreateSchema(name)`, `DDL("...")`), written in the loop or
    returned or run by a helper, nor transaction control written as SQL (`SAVEPOINT`,
    `RELEASE SAVEPOINT`, `ROLLBACK TO SAVEPOINT`), nor a loop whose items are the statements it runs
    (`for statement in statements: cursor.execute(statement)`, or `text(statement)`): a
    script, each statement another. Test code (`conftest.py`, `test_*.py`, files
    under `tests/`) and migrations (they run once, offline) are not checked: Alembic
    revisions, Django migrations, and modules in a `migrations` folder at the top of the
    tree or inside a database's folder (`db/migrations/`, `sqlite_migrator/migrations/`: a
    project's own migrator; not `services/migrations/`, an import feature).

    ## Why is this bad?
    This is the N+1 query problem: one round trip per row instead of one for all of them.
    Each round trip costs network latency and a statement on the server, so an endpoint
    that is fast with ten rows takes seconds with a thousand, and holds its connection (and
    in `async def` code, the request) the whole time.

    ## Example
    ```python
    @router.get("/orders")
    async def orders(ids: list[int], session: AsyncSession = Depends(get_session)):
        out = []
        for order_id in ids:
            out.append(await session.get(Order, order_id))
        return out
    ```

    ## Use instead
    ```python
    @router.get("/orders")
    async def orders(ids: list[int], session: AsyncSession = Depends(get_session)):
        result = await session.scalars(select(Order).where(Order.id.in_(ids)))
        return result.all()
    ```
    For related rows, eager-load them with the first query (`selectinload`, `joinedload`);
    for writes, batch them (`insert(...).values([...])`, `executemany`, `bulk_write`,
    a redis pipeline).

    ## Known limitations
    Lazy-loaded relationships read in a loop (the other N+1) are not reported; only
    explicit queries are. Helpers are followed when their kinds are known (annotations,
    constructors, arguments), and only two levels down unless every helper on the way is
    a thin wrapper: deeper chains are whole operations rather than a query per item. A collection the analysis cannot trace
    (built in a comprehension, read from `self`, returned by a helper that does not
    query) is not taken as data, so a loop over it is not reported. A query that the body,
    or the `if`/`else` branch it is in, follows with a `break`, `return` or `raise` (and no
    `continue` between) runs at most once and is not reported; an exit deeper down (in a
    `try`, a `with`, a nested `if` of the branch) is not seen that way.

    ## References
    - [SQLAlchemy: Relationship Loading Techniques (the N+1 problem)](https://docs.sqlalchemy.org/en/20/orm/queryguide/relationships.html)
    - [SQLAlchemy: ColumnOperators.in_()](https://docs.sqlalchemy.org/en/20/core/sqlelement.html#sqlalchemy.sql.expression.ColumnOperators.in_)
    - [FastAPI: SQL (Relational) Databases](https://fastapi.tiangolo.com/tutorial/sql-databases/)
    """

    code = "LOOP401"
    name = "query-in-loop"
    summary = "Database query run once per item of a loop (N+1)"
    fix_title = "Query all items at once (`WHERE id IN (...)`, eager loading) or batch the writes"

    def check(self, model: ProjectModel) -> Iterator[Emit]:
        for fn, site, loop, found in _loop_effects_of(model):
            if QUERY not in found:
                continue
            chain = found[QUERY]
            path = fn.module.ir.path
            yield Emit(path, (path, site.id), f"`{{code}}` runs a query once per item of `{describe_loop(loop)}`"
                       f"{_helper_text(chain)}: fetch the items together with one query or batch the writes",
                       chain=chain, function=fn.ir.qualname)


class CommitInLoop(Rule):
    """
    ## What it does
    Reports a `commit()` written inside a loop over rows or ids (as LOOP401 defines them):
    `session.commit()`, `await session.commit()`, `conn.commit()` of a DB-API driver,
    `cursor.execute("COMMIT")`. A
    commit under an `if` or inside a `try`/`except` in the loop body is taken as
    deliberate (batching every N rows, or keeping each item's transaction separate so one
    failure does not undo the others) and is not reported; neither are retry and counting
    loops. A call to a helper that commits is not reported either: the helper owns its
    transaction, a design choice rather than a slip. Test code is not checked.

    ## Why is this bad?
    Each commit is a round trip that waits for the database to flush its log to disk
    (`fsync`), so committing per row makes a bulk write tens to hundreds of times slower
    than one transaction. It also leaves the data half-written when the loop fails part
    way, and with the default `expire_on_commit=True` every commit expires the objects
    loaded so far, which reload one by one on next access.

    ## Example
    ```python
    def import_users(db: Session, rows: list[dict]) -> None:
        for row in rows:
            db.add(User(**row))
            db.commit()
    ```

    ## Use instead
    ```python
    def import_users(db: Session, rows: list[dict]) -> None:
        for row in rows:
            db.add(User(**row))
        db.commit()
    ```
    or `with db.begin(): ...` around the loop.

    ## Known limitations
    Commits run by context managers (`with session.begin():` per item) and by helpers
    (`crud.create(db, item)` that commits) are not reported.

    ## References
    - [SQLAlchemy: Session basics, committing](https://docs.sqlalchemy.org/en/20/orm/session_basics.html#committing)
    - [SQLAlchemy: Managing transactions](https://docs.sqlalchemy.org/en/20/orm/session_transaction.html)
    """

    code = "LOOP402"
    name = "commit-in-loop"
    summary = "`commit()` run once per item of a loop"
    fix_title = "Commit once after the loop (one transaction), or commit in batches on purpose"

    def check(self, model: ProjectModel) -> Iterator[Emit]:
        for fn, site, loop, found in _loop_effects_of(model):
            if found.get(COMMIT) != () or site.guarded:
                continue  # a helper that commits owns its transaction: a design choice, not reported
            path = fn.module.ir.path
            yield Emit(path, (path, site.id), f"`{{code}}` commits once per item of `{describe_loop(loop)}`: "
                       "commit once after the loop", function=fn.ir.qualname)


# --- LOOP403 -------------------------------------------------------------------------------------


@project_fact("loop4.roots")
def _roots(model: ProjectModel) -> dict[tuple[str, str], str]:
    """What runs for every request by itself: routes, dependencies, HTTP middleware -> label."""
    roots: dict[tuple[str, str], str] = {}
    for key, label in model.routes().items():
        roots[key] = f"route `{label}`"
    for key in sorted(model.dependencies()):
        roots.setdefault(key, f"dependency `{key[1].rpartition('.')[2]}`")
    for key, label in model.fact("loop4.middleware"):
        roots.setdefault(key, label)
    return roots


def _first_label(parts: list) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for part in parts:
        for key, label in part:
            out.setdefault(key, label)
    return out


@module_fact("loop4.per_request", _first_label)
def _per_request_from(model: ProjectModel, mod) -> tuple[tuple[tuple[str, str], str], ...]:
    """Functions run for every request -> how, from this module's roots (routes, dependencies,
    HTTP middleware): the roots, and the functions they call (not through caching
    decorators). A function reached from several modules' roots takes the first module's
    label; the walk stops at every root, which has its own."""
    roots = model.fact("loop4.roots")
    out: dict[tuple[str, str], str] = {}
    todo = []
    for key, label in roots.items():
        if key[0] != mod.ir.path:
            continue
        fn = model.func(VFunc(*key))
        if fn is not None and not _cached(model, fn):
            out[key] = label
            todo.append(fn)
    while todo:
        fn = todo.pop()
        label = out[(fn.module.ir.path, fn.ir.qualname)]
        for callee in _project_callees(model, fn):
            key = (callee.module.ir.path, callee.ir.qualname)
            if key in out or key in roots:
                continue
            out[key] = label if "via" in label else f"{label} via `{callee.ir.name}`"
            todo.append(callee)
    return tuple(out.items())


@module_fact("loop4.middleware", lambda parts: [root for part in parts for root in part])
def _middleware_in(model: ProjectModel, mod) -> tuple[tuple[tuple[str, str], str], ...]:
    """HTTP middleware functions of a module (`@app.middleware("http")`, a BaseHTTPMiddleware's
    `dispatch`) -> how they are labelled."""
    found = []
    for fn in mod.funcs.values():
        if any(type(d) is ir.Call and type(d.func) is ir.Attr and d.func.attr == "middleware"
               for d in fn.ir.decorators):
            found.append(((mod.ir.path, fn.ir.qualname), f"middleware `{fn.ir.name}`"))
    for cls in mod.ir.classes:
        scope = _Scope(mod, mod.funcs.get(cls.parent) if cls.parent else None)
        if any(isinstance(v, VExt) and v.qualname in cat.HTTP_MIDDLEWARE_BASES
               for v in (model.eval(b, scope) for b in cls.bases)):
            dispatch = dict(cls.methods).get("dispatch")
            if dispatch:
                found.append(((mod.ir.path, dispatch), f"middleware `{cls.name}.dispatch`"))
    return tuple(found)


def _cached(model: ProjectModel, fn: _Func) -> bool:
    scope = _Scope(fn.module, fn.module.funcs.get(fn.ir.parent) if fn.ir.parent else None)
    for dec in fn.ir.decorators:
        target = dec.func if type(dec) is ir.Call else dec
        value = model.eval(target, scope)
        if isinstance(value, VExt) and value.qualname in cat.CACHE_DECORATORS:
            return True
    return False


def _factory_call(facts: FunctionFacts, call: ir.Call) -> str:
    """"engine" / "session factory" when the call creates one (a library call)."""
    value = facts.eval(call.func)
    if not isinstance(value, VExt):
        return ""
    entry = facts.model.entry(value.qualname)
    if entry is None or not entry.returns:
        return ""
    made = facts.eval(call)
    kind = made.kind if isinstance(made, VKind) else entry.returns
    if kind in cat.ENGINE_KINDS:
        return "an engine"
    if kind in cat.SESSION_FACTORY_KINDS and entry.returns in cat.SESSION_FACTORY_KINDS:
        return "a session factory"
    return ""


def _kept(facts: FunctionFacts, call: ir.Call, depth: int = 0) -> bool:
    """Is the created object kept for later calls (a global, an attribute), or its use unknown?
    Returned by a builder, it is kept when every call of the builder keeps it."""
    uses = facts.uses(call)
    if not uses:
        return True  # e.g. stored under a subscript: not visible, assume a cache
    fn = facts.fn
    if fn is not None and not fn.ir.is_generator and depth < 2 and _returned(facts, call, uses):
        callers = facts.model.call_sites_of(fn)
        if callers and all(_kept(facts_of(facts.model, mod, mod.funcs.get(site.function) if site.function
                                          else None), site.expr, depth + 1)
                           for mod, site in callers):
            return True
    for role, parent in uses:
        if role == STORED:
            return not _request_scoped(facts, parent)
        if role == ARG and _kept_wrapper(facts, parent, depth):
            return True
        if role.startswith(ASSIGN + ":"):
            name = role[len(ASSIGN) + 1:]
            if "." in name or (fn is not None and name in fn.ir.globals_):
                return True
            if fn is not None and name in getattr(fn.ir, "opaque", ()):
                return True  # put in a dict or under a subscript (`_engines[url] = engine`): a cache
            for order, value in facts.bindings.get(name, ()):
                if value is call and any(r == STORED or (r.startswith(ASSIGN + ":") and "." in r)
                                         or (r == ARG and _kept_wrapper(facts, p, depth))
                                         for _n, r, p in facts.uses_of_binding(name, order)):
                    return True
    return False


def _kept_wrapper(facts: FunctionFacts, parent: ir.Expr | None, depth: int) -> bool:
    """`self.sessions = scoped_session(factory)`, `self.factory = sessionmaker(create_engine(...))`:
    handed to a call whose result is kept (and seen to be: a call whose result goes nowhere
    visible is not taken as a cache here), the object lives as long as that result."""
    return type(parent) is ir.Call and depth < 3 and bool(facts.uses(parent)) and _kept(facts, parent, depth + 1)


def _returned(facts: FunctionFacts, call: ir.Call, uses) -> bool:
    """`return create_engine(...)`, or `engine = create_engine(...)` ... `return engine`."""
    for role, _parent in uses:
        if role == RETURN:
            return True
        if role.startswith(ASSIGN + ":") and "." not in role:
            name = role[len(ASSIGN) + 1:]
            for order, value in facts.bindings.get(name, ()):
                if value is call and any(r == RETURN for _n, r, _p in facts.uses_of_binding(name, order)):
                    return True
    return False


def _request_scoped(facts: FunctionFacts, store: ir.Expr | None) -> bool:
    """`request.state.x = ...`: kept only for the request."""
    if type(store) is not ir.Store:
        return False
    base = store.target
    while type(base) is ir.Attr:
        base = base.value
    if type(base) is not ir.Name or facts.fn is None or base.id not in facts.fn.params:
        return False
    param = facts.fn.params[base.id]
    ann = facts.model.eval(param.annotation, facts.scope) if param.annotation is not None else None
    if isinstance(ann, VExt):
        return ann.qualname in cat.REQUEST_TYPES
    return base.id in ("request", "websocket")


class EnginePerRequest(Rule):
    """
    ## What it does
    Reports `create_engine(...)`, `create_async_engine(...)`, `sessionmaker(...)` or
    `async_sessionmaker(...)` called in code that runs for every request: a route, a
    dependency (`Depends`/`Security`), an HTTP middleware, or a function they call. An
    object kept after the first call (assigned to a global or an attribute, or handed to
    something that is, as in `self.sessions = scoped_session(factory)`, or made in an
    `@lru_cache`/`@cache` function) is fine, and so is anything run only at import time,
    in the lifespan, in a startup handler or under `if __name__ == "__main__":`.

    ## Why is this bad?
    An engine owns a connection pool. Creating one per request opens a fresh connection
    (TCP, TLS and authentication handshakes) for every request, never reuses it, and
    leaves pools behind until garbage collection closes them: latency goes up, and the
    database runs out of connections under load. A per-request `sessionmaker` is cheaper
    but rebuilds configuration on every call for nothing.

    ## Example
    ```python
    def get_db():
        engine = create_engine(settings.DATABASE_URL)
        with Session(engine) as session:
            yield session
    ```

    ## Use instead
    ```python
    engine = create_engine(settings.DATABASE_URL)

    def get_db():
        with Session(engine) as session:
            yield session
    ```
    or create it in the lifespan and keep it on `app.state`.

    ## Known limitations
    Calls are followed through functions the analysis can resolve; engines created in
    callbacks are missed. An engine put in a container (`_engines[url] = engine`, a
    dict) is taken as cached, whether or not it is reused. An engine a builder function
    returns is cached when every call of the builder keeps it (two builders deep).

    ## References
    - [SQLAlchemy: Engine Configuration](https://docs.sqlalchemy.org/en/20/core/engines.html)
    - [SQLAlchemy: Connection Pooling](https://docs.sqlalchemy.org/en/20/core/pooling.html)
    - [FastAPI: Lifespan Events](https://fastapi.tiangolo.com/advanced/events/)
    """

    code = "LOOP403"
    name = "engine-per-request"
    summary = "Engine or session factory created on every request"
    fix_title = "Create it once at module level or in the lifespan, and reuse it"

    def check(self, model: ProjectModel) -> Iterator[Emit]:
        # which functions run per request is a walk of the whole project's calls: asked only
        # when a function creates an engine or a factory (in a pre-commit run of a few files,
        # usually none does)
        for fn in model.functions():
            how = ""
            facts: FunctionFacts | None = None
            sites = fn.module.ir.sites
            for sid in fn.ir.sites:
                site = sites[sid]
                call = site.expr
                if site.kind != ir.CALL or not isinstance(call, ir.Call):
                    continue
                if type(call.func) is not ir.Name and type(call.func) is not ir.Attr:
                    continue
                if facts is None:
                    facts = facts_of(model, fn.module, fn)
                what = _factory_call(facts, call)
                if not what:
                    continue
                if not how:
                    how = model.fact_at("loop4.per_request", (fn.module.ir.path, fn.ir.qualname))
                    if how is None:
                        break
                if _kept(facts, call):
                    continue
                path = fn.module.ir.path
                yield Emit(path, (path, sid), f"`{{code}}` creates {what} on every request ({how}): create it "
                           "once at module level or in the lifespan", function=fn.ir.qualname)


# --- LOOP404 -------------------------------------------------------------------------------------


@module_fact("loop4.event_targets", union, syntactic=True)
def _event_targets_in(model: ProjectModel, mod) -> frozenset[str]:
    """Names of engines that get a connection event hook (`@event.listens_for(engine, "connect")`)."""
    out: set[str] = set()
    for site in mod.ir.sites:
        call = site.expr
        if site.kind != ir.CALL or not isinstance(call, ir.Call) or len(call.args) < 2:
            continue
        if not (type(call.func) is ir.Attr and call.func.attr in ("listens_for", "listen")):
            continue
        event = call.args[1]
        if type(event) is ir.Const and event.value in cat.CONNECTION_EVENTS:
            target = call.args[0]
            while type(target) is ir.Attr:
                target = target.value
            if type(target) is ir.Name:
                out.add(target.id)
    return frozenset(out)


class QueryWithoutTimeout(Rule):
    """
    ## What it does
    Reports `create_engine(...)` / `create_async_engine(...)` called without any timeout
    setting: no `pool_timeout`, no `connect_args` (where drivers take `statement_timeout`,
    `command_timeout`, `options="-c statement_timeout=..."`, `timeout`), no
    `execution_options`, no `timeout` in a literal URL, and no connection event hook on the
    engine that could set one. SQLite engines, test code (`conftest.py`, `test_*.py`,
    files under `tests/`) and migrations (Alembic scripts, Django migrations, a `migrations`
    folder as LOOP401 reads it: a timeout there would cut long DDL short) are not reported. Off by default: enable it with
    `--select LOOP404` (or `extend-select`).

    ## Why is this bad?
    Without a statement timeout a slow or locked query holds its connection, and the
    request waiting on it, for as long as the database takes; a few of them exhaust the
    pool, and every other request then queues behind `pool_timeout`. A timeout turns that
    outage into a fast, visible error for the one bad request.

    ## Example
    ```python
    engine = create_async_engine("postgresql+asyncpg://app@db/app")
    ```

    ## Use instead
    ```python
    engine = create_async_engine(
        "postgresql+asyncpg://app@db/app",
        pool_timeout=10,
        connect_args={"command_timeout": 30},  # asyncpg; psycopg: {"options": "-c statement_timeout=30000"}
    )
    ```

    ## Known limitations
    The content of a dict literal passed as `connect_args` is not visible, so any
    `connect_args` counts as a setting; a URL that is not a literal is assumed to carry no
    timeout. Timeouts set on the database server or role (`ALTER ROLE ... SET
    statement_timeout`) are invisible to it: suppress the finding with `# noqa: LOOP404`.

    ## References
    - [SQLAlchemy: create_engine() parameters (pool_timeout, connect_args)](https://docs.sqlalchemy.org/en/20/core/engines.html#sqlalchemy.create_engine)
    - [SQLAlchemy: Custom DBAPI connect() arguments](https://docs.sqlalchemy.org/en/20/core/engines.html#custom-dbapi-args)
    - [asyncpg: connect(command_timeout=...)](https://magicstack.github.io/asyncpg/current/api/index.html#connection)
    """

    code = "LOOP404"
    name = "query-without-timeout"
    summary = "Engine created without a statement or pool timeout"
    fix_title = "Pass `pool_timeout=` and a statement timeout in `connect_args`"
    default_enabled = False

    def check(self, model: ProjectModel) -> Iterator[Emit]:
        hooked = model.fact("loop4.event_targets")
        for facts, site, call in calls(model):
            if model.is_test_path(facts.mod.ir.path) or facts.model.is_migration_script(facts.mod):
                continue
            if type(call.func) is not ir.Name and type(call.func) is not ir.Attr:
                continue
            if facts.external(call.func) not in cat.ENGINE_CREATORS:
                continue
            if any(k == "**" or k in cat.ENGINE_TIMEOUT_KWARGS for k, _ in call.kwargs):
                continue
            url = call.args[0] if call.args else dict(call.kwargs).get("url")
            texts = [t for t, _why in url_texts(model, facts, url, 0)] if url is not None else []
            if any("timeout" in t.lower() or t.lower().startswith("sqlite") for t in texts):
                continue
            names = {role[len(ASSIGN) + 1:].rpartition(".")[2] for role, _ in facts.uses(call)
                     if role.startswith(ASSIGN + ":")}
            if names & hooked:
                continue
            mod, fn = facts.mod, facts.fn
            yield Emit(mod.ir.path, (mod.ir.path, site.id), "`{code}` creates an engine with no statement timeout (and "
                       "the pool's default 30 s wait for a connection): a slow query holds its connection and its "
                       "request for as long as the database takes", function=fn.ir.qualname if fn else "")
