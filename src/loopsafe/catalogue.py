"""Library knowledge as data: which DB objects exist, which of their operations block.

Source: ../shared/reference/db-apis.md (verified against real servers). A row there marked
IO becomes effect "io"; IO? rows are included only where the issue tracker or practice says
they block in real code (commit/rollback/flush after work); "no" rows are "none".

Vocabulary:
- a *kind* names a runtime object category ("sqlalchemy.Session", "peewee.Query"). Kinds
  say what their methods do (effect) and return (another kind), what iterating, indexing,
  entering (`with`) or calling them gives.
- an *entry* maps a qualified name as imported (`sqlalchemy.orm.Session`) to the kind of
  the thing it names when used as an annotation, and to what calling it returns.
- effects: "io" blocks on I/O, "connect" opens a connection (LOOP102), "none" does not.

Nothing in this module runs analysis; the semantic layer reads it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

IO = "io"
CONNECT = "connect"
NONE = "none"

#: Method.awaits / Entry.awaits: how the awaitable a call on an async object returns must be used
#: a coroutine, or a plain `def` returning an awaitable (db-apis.md C and AW rows): it must be
#: awaited; throwing it away or using it as its result is a bug
MUST_AWAIT = "must"
#: an awaitable that is also an async context manager (AW+ACM rows): `await x` or `async with x`
#: are both right; only throwing it away is a bug
AWAIT_OR_ENTER = "enter"


@dataclass(frozen=True, slots=True)
class Method:
    effect: str = NONE
    returns: str | None = None
    #: kind returned instead when the call passes a name (`conn.cursor("x")`: server-side cursor)
    named_returns: str | None = None
    #: kind returned instead when one of these keywords is passed (`stream_results=True`)
    kwarg_returns: Mapping[str, str] | None = None
    #: kind returned instead when the first argument names one of these classes (`cursor(SSCursor)`)
    arg_returns: Mapping[str, str] | None = None
    #: on async kinds: "" (a plain method), MUST_AWAIT or AWAIT_OR_ENTER
    awaits: str = ""
    #: a plain method of an async object whose result cannot be awaited (None, a bool, a sync
    #: object): `await obj.method()` raises TypeError (LOOP305)
    not_awaitable: bool = False


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    #: how messages name it: "SQLAlchemy Session"
    label: str
    is_async: bool = False
    methods: Mapping[str, Method] = field(default_factory=dict)
    #: effect of any method not listed (redis: every command is I/O)
    other_methods: Method | None = None
    #: kind of a plain attribute not listed as a method (pymongo client.db -> Database)
    attr_kind: str | None = None
    #: kind of `obj[i]`, and its effect
    item_kind: str | None = None
    item_effect: str = NONE
    #: `obj[a:b]`: its effect, and the kind it gives (Django and PyMongo slices stay lazy)
    slice_effect: str = NONE
    slice_kind: str | None = None
    #: does iterating (`for`, `list()`, comprehension) do I/O?
    iter_effect: str = NONE
    #: kind of `obj(...)` (a factory) and the effect of calling it
    call_kind: str | None = None
    call_effect: str = NONE
    #: kind bound by `with obj as x` (None: obj itself); effect of entering
    enter_kind: str | None = None
    enter_effect: str = NONE
    #: does `len(obj)` / `bool(obj)` run the query? (Django, peewee)
    len_effect: str = NONE
    #: the async alternative, for messages
    twin: str = ""


@dataclass(frozen=True, slots=True)
class Entry:
    """A qualified name from a library: what it is as an annotation and what calling it gives."""

    #: kind of an object annotated with this name (`db: Session`)
    instance: str | None = None
    #: kind returned by calling it
    returns: str | None = None
    effect: str = NONE
    #: keyword argument that switches the returned kind: {"class_": {"<qualname>": kind}}
    switch_kwarg: tuple[str, Mapping[str, str]] | None = None
    #: for base classes: project subclasses become classes of this kind
    subclass_kind: str | None = None
    #: what the name is when read as a value: a library's ready-made object
    #: (`fastapi_sqlalchemy.db.session` is the request's Session)
    value_kind: str | None = None
    #: calling it gives an awaitable: "" , MUST_AWAIT or AWAIT_OR_ENTER (`asyncpg.connect`)
    awaits: str = ""
    #: what calling it on a project class or instance gives instead of `returns` ("": no kind):
    #: `sqlalchemy.inspect(User)` is a Mapper, not an Inspector
    project_arg_returns: str | None = None


def _m(effect: str = NONE, returns: str | None = None) -> Method:
    return Method(effect, returns)


def _aw(returns: str | None = None) -> Method:
    """A coroutine (or awaitable) method of an async object: must be awaited."""
    return Method(NONE, returns, awaits=MUST_AWAIT)


def _sync() -> Method:
    """A plain method of an async object returning what cannot be awaited (None, a bool)."""
    return Method(NONE, None, not_awaitable=True)


def _acm(returns: str | None = None) -> Method:
    """An awaitable async context manager: `await` it or `async with` it."""
    return Method(NONE, returns, awaits=AWAIT_OR_ENTER)


def _methods(*groups: tuple[str, Method]) -> Mapping[str, Method]:
    out: dict[str, Method] = {}
    for names, method in groups:
        for name in names.split():
            out[name] = method
    return MappingProxyType(out)


# --- SQLAlchemy (sync) -------------------------------------------------------------------

_SESSION_METHODS = _methods(
    ("execute", _m(IO, "sqlalchemy.Result")),
    ("scalars", _m(IO, "sqlalchemy.Result")),
    ("scalar get get_one merge refresh", _m(IO)),
    ("commit flush rollback delete bulk_save_objects bulk_insert_mappings bulk_update_mappings", _m(IO)),
    ("connection", _m(IO, "sqlalchemy.Connection")),
    ("exec", _m(IO, "sqlalchemy.Result")),  # SQLModel
    ("query", _m(NONE, "sqlalchemy.Query")),
    ("begin begin_nested", _m(NONE, "sqlalchemy.SessionTransaction")),
    ("add add_all expunge expunge_all expire expire_all is_modified close get_bind in_transaction", _m()),
)

_QUERY_BUILDERS = (
    "filter filter_by join outerjoin options order_by group_by having limit offset slice distinct "
    "with_entities add_columns add_entity select_from populate_existing execution_options yield_per "
    "correlate enable_eagerloads params where with_for_update with_hint with_statement_hint with_labels "
    "with_parent with_session with_transformation prefix_with suffix_with reset_joinpoint set_label_style "
    "enable_assertions autoflush from_statement union union_all intersect intersect_all except_ except_all"
)

KINDS: dict[str, Kind] = {}


def _kind(k: Kind) -> None:
    KINDS[k.name] = k


_kind(Kind("sqlalchemy.Session", "SQLAlchemy Session", methods=_SESSION_METHODS,
           twin="AsyncSession (await session.execute(...))"))
_kind(Kind("sqlalchemy.ScopedSession", "SQLAlchemy scoped_session",
           methods=MappingProxyType({**_SESSION_METHODS, "remove": _m()}),
           call_kind="sqlalchemy.Session", twin="async_scoped_session"))
# `with session.begin():` and `with SessionLocal.begin() as s:` commit when the block ends
# (db-apis.md §1.4: IO when a connection is held, which any statement in the block makes so)
_kind(Kind("sqlalchemy.SessionTransaction", "SQLAlchemy Session",
           methods=_methods(("commit rollback", _m(IO))), enter_kind="sqlalchemy.SessionTransaction",
           enter_effect=IO, twin="AsyncSession (async with session.begin())"))
_kind(Kind("sqlalchemy.SessionBegin", "SQLAlchemy Session", enter_kind="sqlalchemy.Session",
           enter_effect=IO, twin="async_sessionmaker (async with factory.begin() as session)"))
_kind(Kind("sqlalchemy.SessionFactory", "SQLAlchemy sessionmaker",
           methods=_methods(("begin", _m(NONE, "sqlalchemy.SessionBegin")), ("configure", _m())),
           call_kind="sqlalchemy.Session", twin="async_sessionmaker"))
_kind(Kind("sqlalchemy.Query", "SQLAlchemy Query",
           methods=_methods(
               (_QUERY_BUILDERS, _m(NONE, "sqlalchemy.Query")),
               ("subquery cte exists statement scalar_subquery label as_scalar", _m()),
               ("all first one one_or_none scalar count get update delete paginate", _m(IO)),
           ),
           iter_effect=IO, item_effect=IO, slice_effect=IO, twin="select() with await session.scalars(...)"))
_kind(Kind("sqlalchemy.Result", "SQLAlchemy Result",
           methods=_methods(("scalars mappings columns tuples unique", _m(NONE, "sqlalchemy.Result")))))
_STREAMING = MappingProxyType({k: "sqlalchemy.StreamingConnection" for k in ("stream_results", "yield_per",
                                                                             "max_row_buffer")})
_kind(Kind("sqlalchemy.Engine", "SQLAlchemy Engine",
           methods=_methods(
               ("connect begin", _m(CONNECT, "sqlalchemy.Connection")),
               ("raw_connection", _m(CONNECT, "dbapi.Connection")),
               ("execution_options", _m(NONE, "sqlalchemy.Engine")),
               ("dispose", _m()),
           ),
           twin="create_async_engine"))


def _connection_methods(result: str, options: Method) -> Mapping[str, Method]:
    return _methods(
        ("execute exec_driver_sql scalars", _m(IO, result)),
        # close() returns the connection to the pool, which rolls back (reset on return)
        ("scalar commit rollback get_isolation_level close", _m(IO)),
        ("begin_nested", _m(IO, "sqlalchemy.Transaction")),  # emits SAVEPOINT at once
        ("begin", _m(NONE, "sqlalchemy.Transaction")),
        ("execution_options", options),
        ("in_transaction get_transaction invalidate detach", _m()),
    )


_kind(Kind("sqlalchemy.Connection", "SQLAlchemy Connection",
           methods=_connection_methods("sqlalchemy.Result",
                                       Method(NONE, "sqlalchemy.Connection", kwarg_returns=_STREAMING)),
           twin="AsyncConnection (await conn.execute(...))"))
_kind(Kind("sqlalchemy.StreamingConnection", "SQLAlchemy Connection (server-side cursors)",
           methods=_connection_methods("sqlalchemy.ServerResult", _m(NONE, "sqlalchemy.StreamingConnection")),
           twin="AsyncConnection.stream(...)"))
_kind(Kind("sqlalchemy.ServerResult", "SQLAlchemy streamed Result",
           methods=_methods(
               ("scalars mappings columns tuples unique yield_per", _m(NONE, "sqlalchemy.ServerResult")),
               ("all fetchall fetchone fetchmany first one one_or_none scalar scalar_one scalar_one_or_none "
                "partitions freeze", _m(IO)),
           ),
           iter_effect=IO, twin="AsyncConnection.stream(...) with async for"))
_kind(Kind("sqlalchemy.Transaction", "SQLAlchemy Transaction",
           methods=_methods(("commit rollback", _m(IO)), ("close", _m()))))
# db-apis.md §1.7: reflection methods are I/O; the rest (`clear_cache`, `dialect`, and what a
# Mapper has when `inspect` was handed something unknown) is not
_kind(Kind("sqlalchemy.Inspector", "SQLAlchemy Inspector",
           methods=_methods(
               ("get_table_names get_view_names get_materialized_view_names get_schema_names get_columns "
                "get_pk_constraint get_foreign_keys get_indexes get_unique_constraints get_check_constraints "
                "get_table_comment get_table_options get_view_definition get_sequence_names "
                "get_temp_table_names get_temp_view_names get_sorted_table_and_fkc_names "
                "get_multi_columns get_multi_pk_constraint get_multi_foreign_keys get_multi_indexes "
                "get_multi_unique_constraints get_multi_check_constraints get_multi_table_comment "
                "get_multi_table_options has_table has_index has_schema has_sequence reflect_table", _m(IO)),
               ("clear_cache", _m()),
           )))
_kind(Kind("dbapi.Connection", "DB-API connection",
           methods=_methods(("cursor", _m(NONE, "dbapi.Cursor")), ("commit rollback", _m(IO)),
                            ("execute", _m(IO, "dbapi.Cursor")))))
_kind(Kind("dbapi.Cursor", "DB-API cursor", methods=_methods(("execute executemany callproc", _m(IO)))))

# --- SQLAlchemy asyncio ----------------------------------------------------------------
# db-apis.md §1.8 (and §2 for SQLModel's `exec`); `awaits` drives LOOP301.
_ASYNC_SESSION_METHODS = _methods(
    ("execute scalars exec", _aw("sqlalchemy.Result")),
    ("stream stream_scalars", _aw("sqlalchemy.AsyncResult")),
    ("scalar get get_one refresh merge delete flush commit rollback close aclose reset invalidate connection "
     "run_sync merge_all delete_all close_all", _aw()),
    ("remove", _aw()),  # async_scoped_session.remove() is a coroutine, unlike scoped_session.remove()
    # None or a bool (db-apis.md §1.8 "sync-ok"; SQLAlchemy's signatures): awaiting them is a TypeError
    ("add add_all expunge expunge_all expire expire_all is_modified in_transaction in_nested_transaction",
     _sync()),
    # begin()/begin_nested() give an AsyncSessionTransaction (awaitable and an async context
    # manager); get_transaction() one or None; get_bind() a sync Engine/Connection
    ("begin begin_nested get_transaction get_nested_transaction get_bind identity_key object_session "
     "configure", _m()),
)
_kind(Kind("sqlalchemy.AsyncSession", "SQLAlchemy AsyncSession", is_async=True, methods=_ASYNC_SESSION_METHODS))
_kind(Kind("sqlalchemy.AsyncSessionFactory", "SQLAlchemy async_sessionmaker", is_async=True,
           methods=_methods(("begin", _m(NONE, "sqlalchemy.AsyncSession")), ("configure", _m())),
           call_kind="sqlalchemy.AsyncSession"))
_kind(Kind("sqlalchemy.AsyncEngine", "SQLAlchemy AsyncEngine", is_async=True,
           methods=_methods(("connect", _acm("sqlalchemy.AsyncConnection")),
                            ("begin", _m(NONE, "sqlalchemy.AsyncConnection")),
                            ("dispose raw_connection", _aw()),
                            ("execution_options", _m(NONE, "sqlalchemy.AsyncEngine")),
                            ("get_execution_options", _m()),
                            ("update_execution_options clear_compiled_cache", _sync()))))
_kind(Kind("sqlalchemy.AsyncConnection", "SQLAlchemy AsyncConnection", is_async=True,
           methods=_methods(("execute scalars", _aw("sqlalchemy.Result")),
                            ("start close aclose commit rollback exec_driver_sql scalar run_sync invalidate "
                             "get_isolation_level get_raw_connection", _aw()),
                            ("execution_options", _aw("sqlalchemy.AsyncConnection")),
                            ("stream stream_scalars", _acm("sqlalchemy.AsyncResult")),
                            ("in_transaction in_nested_transaction", _sync()),
                            ("begin begin_nested get_transaction get_nested_transaction", _m()))))
_kind(Kind("sqlalchemy.AsyncResult", "SQLAlchemy AsyncResult", is_async=True,
           methods=_methods(("all fetchall fetchmany fetchone first one one_or_none scalar scalar_one "
                             "scalar_one_or_none freeze close", _aw()),
                            ("scalars mappings columns tuples unique yield_per", _m(NONE, "sqlalchemy.AsyncResult")),
                            ("keys", _m()))))

# --- sqlite3 ---------------------------------------------------------------------------
_kind(Kind("sqlite3.Connection", "sqlite3 connection",
           methods=_methods(
               ("execute executemany executescript", _m(IO, "sqlite3.Cursor")),
               ("commit rollback backup iterdump blobopen", _m(IO)),
               ("cursor", _m(NONE, "sqlite3.Cursor")),
               ("close create_function create_aggregate set_trace_callback", _m()),
           ),
           enter_kind="sqlite3.Connection", twin="aiosqlite"))
_kind(Kind("sqlite3.Cursor", "sqlite3 cursor",
           methods=_methods(("execute executemany executescript", _m(IO, "sqlite3.Cursor")),
                            ("fetchone fetchmany fetchall", _m(IO)), ("close", _m())),
           iter_effect=IO, twin="aiosqlite"))

# --- psycopg2 --------------------------------------------------------------------------
_kind(Kind("psycopg2.Connection", "psycopg2 connection",
           methods=_methods(
               ("cursor", Method(NONE, "psycopg2.Cursor", named_returns="psycopg2.ServerCursor")),
               ("commit rollback set_client_encoding reset lobject cancel set_isolation_level", _m(IO)),
               ("close autocommit set_session get_transaction_status get_backend_pid poll", _m()),
           ),
           enter_kind="psycopg2.Connection", twin="asyncpg or psycopg 3 AsyncConnection"))
_kind(Kind("psycopg2.Cursor", "psycopg2 cursor",
           methods=_methods(("execute executemany callproc copy_from copy_to copy_expert", _m(IO)),
                            ("fetchone fetchmany fetchall mogrify close", _m())),
           enter_kind="psycopg2.Cursor", twin="asyncpg or psycopg 3 AsyncCursor"))
_kind(Kind("psycopg2.ServerCursor", "psycopg2 named (server-side) cursor",
           methods=_methods(("execute executemany callproc fetchone fetchmany fetchall scroll close", _m(IO)),
                            ("mogrify", _m())),
           iter_effect=IO, enter_kind="psycopg2.ServerCursor", twin="asyncpg cursors or psycopg 3 AsyncServerCursor"))
_kind(Kind("psycopg2.Pool", "psycopg2 connection pool",
           methods=_methods(("getconn", _m(CONNECT, "psycopg2.Connection")), ("putconn closeall", _m()))))

# --- psycopg 3 -------------------------------------------------------------------------
_kind(Kind("psycopg.Connection", "psycopg connection",
           methods=_methods(
               ("execute", _m(IO, "psycopg.Cursor")),
               ("commit rollback cancel notifies", _m(IO)),
               ("cursor", Method(NONE, "psycopg.Cursor", named_returns="psycopg.ServerCursor")),
               ("transaction", _m(NONE, "psycopg.Transaction")),
               ("close", _m()),
           ),
           enter_kind="psycopg.Connection", enter_effect=NONE, twin="psycopg.AsyncConnection"))
_kind(Kind("psycopg.Transaction", "psycopg transaction", enter_effect=IO))
_kind(Kind("psycopg.Cursor", "psycopg cursor",
           methods=_methods(("execute executemany copy", _m(IO, "psycopg.Cursor")),
                            ("fetchone fetchmany fetchall mogrify close", _m())),
           enter_kind="psycopg.Cursor", twin="psycopg.AsyncCursor"))
_kind(Kind("psycopg.ServerCursor", "psycopg server-side cursor",
           methods=_methods(("execute executemany fetchone fetchmany fetchall scroll close", _m(IO))),
           iter_effect=IO, enter_kind="psycopg.ServerCursor", twin="psycopg.AsyncServerCursor"))
_kind(Kind("psycopg.Pool", "psycopg_pool ConnectionPool",
           methods=_methods(("getconn wait check drain", _m(IO)),
                            ("connection", _m(NONE, "psycopg.PoolConnection"))),
           twin="psycopg_pool.AsyncConnectionPool"))
_kind(Kind("psycopg.PoolConnection", "psycopg_pool connection context",
           enter_kind="psycopg.Connection", enter_effect=CONNECT))
# On async kinds only the methods listed with an effect are considered: these are the sync
# methods that still block (psycopg's libpq cancel).
_kind(Kind("psycopg.AsyncConnection", "psycopg AsyncConnection", is_async=True,
           methods=_methods(("cancel", _m(IO)),
                            ("execute", _aw("psycopg.AsyncCursor")),
                            ("close commit rollback cancel_safe set_autocommit set_isolation_level set_read_only "
                             "set_deferrable tpc_begin tpc_prepare tpc_commit tpc_rollback tpc_recover wait", _aw()),
                            ("cursor", _m(NONE, "psycopg.AsyncCursor")),
                            ("transaction pipeline notifies xid fileno add_notice_handler remove_notice_handler "
                             "add_notify_handler remove_notify_handler", _m())),
           enter_kind="psycopg.AsyncConnection", twin="await conn.cancel_safe()"))
_kind(Kind("psycopg.AsyncCursor", "psycopg AsyncCursor", is_async=True,
           methods=_methods(("execute executemany", _aw("psycopg.AsyncCursor")),
                            ("fetchone fetchmany fetchall scroll close set_result", _aw()),
                            ("copy stream results nextset mogrify setinputsizes", _m())),
           enter_kind="psycopg.AsyncCursor"))
_kind(Kind("psycopg.AsyncPool", "psycopg_pool AsyncConnectionPool", is_async=True,
           methods=_methods(("open close wait getconn putconn check check_connection resize drain", _aw()),
                            ("connection", _m(NONE, "psycopg.AsyncPoolConnection")),
                            ("get_stats pop_stats run_task", _m())),
           enter_kind="psycopg.AsyncPool"))
_kind(Kind("psycopg.AsyncPoolConnection", "psycopg_pool async connection context", is_async=True,
           enter_kind="psycopg.AsyncConnection"))

# --- PyMySQL / MySQLdb -----------------------------------------------------------------
_kind(Kind("mysql.Connection", "MySQL connection (PyMySQL/MySQLdb)",
           methods=_methods(
               ("cursor", Method(NONE, "mysql.Cursor", arg_returns=MappingProxyType({
                   q: "mysql.SSCursor" for q in ("pymysql.cursors.SSCursor", "pymysql.cursors.SSDictCursor",
                                                 "MySQLdb.cursors.SSCursor", "MySQLdb.cursors.SSDictCursor")}))),
               ("commit rollback begin ping select_db autocommit show_warnings query kill set_charset", _m(IO)),
               ("close escape literal get_autocommit insert_id affected_rows", _m()),
           ),
           enter_kind="mysql.Connection", twin="aiomysql or asyncmy"))
_kind(Kind("mysql.Cursor", "MySQL cursor (PyMySQL/MySQLdb)",
           methods=_methods(("execute executemany callproc", _m(IO)),
                            ("fetchone fetchmany fetchall mogrify close scroll", _m())),
           enter_kind="mysql.Cursor", twin="aiomysql or asyncmy"))

_kind(Kind("mysql.SSCursor", "MySQL unbuffered cursor (SSCursor)",
           methods=_methods(("execute executemany callproc fetchone fetchmany fetchall scroll nextset close", _m(IO)),
                            ("mogrify", _m())),
           iter_effect=IO, enter_kind="mysql.SSCursor", twin="aiomysql SSCursor"))

# --- PyMongo ---------------------------------------------------------------------------
_kind(Kind("pymongo.MongoClient", "PyMongo MongoClient",
           methods=_methods(
               ("list_database_names list_databases server_info drop_database watch bulk_write", _m(IO)),
               ("get_database get_default_database", _m(NONE, "pymongo.Database")),
               ("start_session close", _m()),
           ),
           attr_kind="pymongo.Database", item_kind="pymongo.Database",
           twin="pymongo.AsyncMongoClient (await ...)"))
_kind(Kind("pymongo.Database", "PyMongo Database",
           methods=_methods(
               ("command cursor_command list_collection_names list_collections create_collection "
                "drop_collection validate_collection dereference aggregate watch", _m(IO)),
               ("get_collection", _m(NONE, "pymongo.Collection")),
               ("with_options", _m(NONE, "pymongo.Database")),
           ),
           attr_kind="pymongo.Collection", item_kind="pymongo.Collection",
           twin="pymongo.AsyncMongoClient (await ...)"))
_kind(Kind("pymongo.Collection", "PyMongo Collection",
           methods=_methods(
               ("find_one find_one_and_update find_one_and_replace find_one_and_delete insert_one insert_many "
                "update_one update_many replace_one delete_one delete_many bulk_write count_documents "
                "estimated_document_count distinct aggregate aggregate_raw_batches watch create_index "
                "create_indexes drop_index drop_indexes list_indexes index_information options rename drop "
                "count insert update remove save find_and_modify", _m(IO)),
               ("find find_raw_batches", _m(NONE, "pymongo.Cursor")),
               ("with_options", _m(NONE, "pymongo.Collection")),
           ),
           attr_kind="pymongo.Collection", item_kind="pymongo.Collection",
           twin="pymongo.AsyncMongoClient (await collection.find_one(...))"))
_kind(Kind("pymongo.Cursor", "PyMongo Cursor",
           methods=_methods(
               ("sort limit skip batch_size hint max_time_ms where collation comment clone rewind", _m(NONE, "pymongo.Cursor")),
               ("next to_list explain distinct", _m(IO)),
           ),
           iter_effect=IO, item_effect=IO, slice_kind="pymongo.Cursor",
           twin="pymongo.AsyncMongoClient (async for / to_list)"))
# PyMongo Async and motor share these kinds, so only what must be awaited in both is marked
# (db-apis.md §10.2/§10.3): `aggregate`, `watch`, `list_indexes` run at once in PyMongo Async
# but give latent cursors in motor; `start_session`, `close`, `rewind` differ too.
_kind(Kind("pymongo.AsyncClient", "async MongoDB client", is_async=True,
           methods=_methods(("list_database_names list_databases server_info drop_database", _aw()),
                            ("get_database get_default_database", _m(NONE, "pymongo.AsyncDatabase"))),
           attr_kind="pymongo.AsyncDatabase", item_kind="pymongo.AsyncDatabase"))
_kind(Kind("pymongo.AsyncDatabase", "async MongoDB database", is_async=True,
           methods=_methods(("command cursor_command create_collection drop_collection list_collection_names "
                             "list_collections validate_collection dereference", _aw()),
                            ("get_collection", _m(NONE, "pymongo.AsyncCollection")),
                            ("with_options", _m(NONE, "pymongo.AsyncDatabase"))),
           attr_kind="pymongo.AsyncCollection", item_kind="pymongo.AsyncCollection"))
_kind(Kind("pymongo.AsyncCollection", "async MongoDB collection", is_async=True,
           methods=_methods(("find_one find_one_and_update find_one_and_replace find_one_and_delete insert_one "
                             "insert_many update_one update_many replace_one delete_one delete_many bulk_write "
                             "count_documents estimated_document_count distinct create_index create_indexes "
                             "drop_index drop_indexes index_information options rename drop create_search_index "
                             "create_search_indexes drop_search_index update_search_index", _aw()),
                            ("find find_raw_batches", _m(NONE, "pymongo.AsyncCursor")),
                            ("with_options", _m(NONE, "pymongo.AsyncCollection"))),
           attr_kind="pymongo.AsyncCollection", item_kind="pymongo.AsyncCollection"))
_kind(Kind("pymongo.AsyncCursor", "async MongoDB cursor", is_async=True,
           methods=_methods(("to_list next close distinct explain", _aw()),
                            ("sort limit skip batch_size hint max_time_ms where collation comment clone",
                             _m(NONE, "pymongo.AsyncCursor")))))

# --- redis-py --------------------------------------------------------------------------
_kind(Kind("redis.Redis", "redis-py Redis",
           other_methods=_m(IO),
           methods=_methods(
               ("pipeline", _m(NONE, "redis.Pipeline")),
               ("pubsub", _m(NONE, "redis.PubSub")),
               ("lock", _m(NONE, "redis.Lock")),
               ("register_script", _m(NONE, "redis.Script")),
               ("monitor get_connection_kwargs get_encoder set_response_callback close "
                "connection_pool from_url from_pool", _m()),
               ("scan_iter hscan_iter sscan_iter zscan_iter", _m(NONE, "redis.Iter")),
           ),
           twin="redis.asyncio"))
_kind(Kind("redis.Script", "redis-py Script", call_effect=IO, twin="redis.asyncio register_script"))
_kind(Kind("redis.Iter", "redis-py scan iterator", iter_effect=IO))
_kind(Kind("redis.Pipeline", "redis-py Pipeline",
           methods=_methods(("execute watch", _m(IO)), ("multi reset", _m())),
           other_methods=_m(NONE, "redis.Pipeline"), enter_kind="redis.Pipeline", twin="redis.asyncio"))
_kind(Kind("redis.PubSub", "redis-py PubSub",
           methods=_methods(("subscribe psubscribe ssubscribe unsubscribe punsubscribe get_message ping", _m(IO)),
                            ("listen", _m(NONE, "redis.Iter")), ("close", _m()))))
_kind(Kind("redis.Lock", "redis-py Lock",
           methods=_methods(("acquire release extend reacquire locked owned", _m(IO))), enter_effect=IO))
# redis.asyncio (db-apis.md §11.2): every command method returns a coroutine (plain `def`s of
# the shared command mixins: AW), only the factories below are plain.
_kind(Kind("redis.AsyncRedis", "redis.asyncio Redis", is_async=True,
           other_methods=_aw(),
           methods=_methods(
               ("pipeline", _m(NONE, "redis.AsyncPipeline")),
               ("pubsub", _m(NONE, "redis.AsyncPubSub")),
               ("lock", _m(NONE, "redis.AsyncLock")),
               ("register_script monitor client from_url from_pool get_connection_kwargs get_encoder "
                "set_response_callback get_retry set_retry load_external_module scan_iter hscan_iter sscan_iter "
                "zscan_iter json ft ts bf cf cms topk tdigest graph vset", _m()),
               # redis.asyncio.RedisCluster's node bookkeeping is plain (not in db-apis.md
               # §11.2; read in redis 8.1.0's redis/asyncio/cluster.py: `def`, no I/O)
               ("get_nodes get_primaries get_replicas get_random_node get_default_node set_default_node "
                "get_node get_node_from_key get_random_primary_or_all_nodes get_random_primary_node "
                "get_special_nodes keyslot keyspace_notifications", _m()),
           )))
_kind(Kind("redis.AsyncPipeline", "redis.asyncio Pipeline", is_async=True,
           methods=_methods(("execute watch unwatch reset discard aclose immediate_execute_command load_scripts",
                             _aw()),
                            ("multi pipeline_execute_command", _m())),
           # buffered commands return the pipeline (after watch() they are immediate: unknowable)
           other_methods=_m(NONE, "redis.AsyncPipeline"), enter_kind="redis.AsyncPipeline"))
_kind(Kind("redis.AsyncPubSub", "redis.asyncio PubSub", is_async=True,
           methods=_methods(("subscribe psubscribe ssubscribe get_message check_health connect reset aclose run "
                             "execute_command parse_response unsubscribe punsubscribe sunsubscribe ping", _aw()),
                            ("listen", _m())),
           enter_kind="redis.AsyncPubSub"))
_kind(Kind("redis.AsyncLock", "redis.asyncio Lock", is_async=True,
           methods=_methods(("acquire release locked owned do_acquire do_release do_extend do_reacquire extend "
                             "reacquire", _aw()),
                            ("register_scripts", _m()))))

# --- asyncpg (db-apis.md §7) -----------------------------------------------------------
_ASYNCPG_QUERIES = ("execute executemany fetch fetchrow fetchval fetchmany copy_from_query copy_from_table "
                    "copy_to_table copy_records_to_table")
_kind(Kind("asyncpg.Connection", "asyncpg connection", is_async=True,
           methods=_methods((_ASYNCPG_QUERIES, _aw()),
                            ("prepare", _aw("asyncpg.PreparedStatement")),
                            ("close reset set_type_codec reset_type_codec set_builtin_type_codec add_listener "
                             "remove_listener reload_schema_state", _aw()),
                            ("transaction", _m(NONE, "asyncpg.Transaction")),
                            ("cursor terminate is_closed is_in_transaction get_server_pid get_server_version "
                             "get_settings get_reset_query add_log_listener remove_log_listener "
                             "add_termination_listener remove_termination_listener add_query_logger "
                             "remove_query_logger query_logger", _m()))))
_kind(Kind("asyncpg.Pool", "asyncpg pool", is_async=True,
           methods=_methods((_ASYNCPG_QUERIES, _aw()),
                            ("release close expire_connections", _aw()),
                            ("acquire", _acm("asyncpg.Connection")),
                            ("terminate get_size get_idle_size get_min_size get_max_size is_closing "
                             "set_connect_args", _m()))))
_kind(Kind("asyncpg.PreparedStatement", "asyncpg prepared statement", is_async=True,
           methods=_methods(("fetch fetchrow fetchval fetchmany executemany explain", _aw()),
                            ("cursor get_query get_parameters get_attributes get_name get_statusmsg", _m()))))
_kind(Kind("asyncpg.Transaction", "asyncpg transaction", is_async=True,
           methods=_methods(("start commit rollback", _aw()))))

# --- aiosqlite (db-apis.md §8) ---------------------------------------------------------
_kind(Kind("aiosqlite.Connection", "aiosqlite connection", is_async=True,
           methods=_methods(("commit rollback close interrupt create_function set_trace_callback "
                             "set_progress_handler set_authorizer enable_load_extension load_extension backup", _aw()),
                            ("execute executemany executescript cursor", _acm("aiosqlite.Cursor")),
                            ("execute_fetchall execute_insert", _acm()),
                            ("stop iterdump", _m())),
           enter_kind="aiosqlite.Connection"))
_kind(Kind("aiosqlite.Cursor", "aiosqlite cursor", is_async=True,
           methods=_methods(("execute executemany executescript", _aw("aiosqlite.Cursor")),
                            ("fetchone fetchmany fetchall close", _aw())),
           enter_kind="aiosqlite.Cursor"))

# --- aiomysql / asyncmy (db-apis.md §9) ------------------------------------------------
_kind(Kind("aiomysql.Connection", "aiomysql/asyncmy connection", is_async=True,
           methods=_methods(("commit rollback begin ping select_db autocommit query kill show_warnings set_charset "
                             "ensure_closed", _aw()),
                            # aiomysql's cursor() is AW+ACM, asyncmy's a plain object: both usable without await
                            ("cursor", _m(NONE, "aiomysql.Cursor")),
                            ("close escape literal insert_id affected_rows get_autocommit thread_id get_server_info",
                             _m())),
           enter_kind="aiomysql.Connection"))
_kind(Kind("aiomysql.Cursor", "aiomysql/asyncmy cursor", is_async=True,
           methods=_methods(("execute executemany callproc nextset close fetchone fetchmany fetchall", _aw()),
                            ("scroll mogrify", _m())),
           enter_kind="aiomysql.Cursor"))
_kind(Kind("aiomysql.Pool", "aiomysql/asyncmy pool", is_async=True,
           methods=_methods(("wait_closed clear", _aw()),
                            ("acquire", _acm("aiomysql.Connection")),
                            ("release close terminate", _m())),
           enter_kind="aiomysql.Pool"))

# --- databases (encode/databases, db-apis.md §14) --------------------------------------
_kind(Kind("databases.Database", "databases Database", is_async=True,
           methods=_methods(("connect disconnect execute execute_many fetch_all fetch_one fetch_val", _aw()),
                            ("iterate connection transaction force_rollback", _m())),
           enter_kind="databases.Database"))

# --- peewee ----------------------------------------------------------------------------
_PEEWEE_BUILDERS = (
    "select where join switch order_by group_by having limit offset paginate distinct dicts tuples "
    "namedtuples objects alias filter left_outer_join from_ on_conflict on_conflict_ignore "
    "on_conflict_replace returning with_cte union union_all intersect except_ window"
)
_kind(Kind("peewee.Query", "peewee query",
           methods=_methods(
               (_PEEWEE_BUILDERS, _m(NONE, "peewee.Query")),
               ("sql", _m()),
               ("execute get get_or_none first peek scalar count exists", _m(IO)),
               ("iterator", _m(IO, "peewee.Rows")),
           ),
           iter_effect=IO, item_effect=IO, slice_effect=IO, len_effect=IO,
           twin="playhouse.pwasyncio (await db.list(query))"))
_kind(Kind("peewee.Rows", "peewee result iterator"))
_kind(Kind("peewee.ModelClass", "peewee model",
           methods=_methods(
               ("select insert insert_many insert_from update delete noop raw filter", _m(NONE, "peewee.Query")),
               ("get get_or_none get_by_id create get_or_create", _m(IO, "peewee.Instance")),
               ("bulk_create bulk_update set_by_id delete_by_id create_table drop_table table_exists "
                "truncate_table", _m(IO)),
           ),
           item_effect=IO, call_kind="peewee.Instance",
           twin="playhouse.pwasyncio (await Model.aget(...))"))
_kind(Kind("peewee.Instance", "peewee model instance",
           methods=_methods(("save delete_instance", _m(IO))),
           twin="playhouse.pwasyncio (await obj.asave())"))
_kind(Kind("peewee.Database", "peewee database",
           methods=_methods(
               ("connect", _m(CONNECT)),
               ("create_tables drop_tables get_tables table_exists get_columns get_indexes execute_sql execute "
                "commit rollback", _m(IO)),
               ("atomic transaction savepoint", _m(NONE, "peewee.Transaction")),
               ("close init initialize bind", _m()),
           ),
           twin="playhouse.pwasyncio"))
_kind(Kind("peewee.Transaction", "peewee transaction", enter_effect=IO))

# --- Django ORM ------------------------------------------------------------------------
_DJANGO_QS_BUILDERS = (
    "filter exclude order_by annotate alias select_related prefetch_related only defer values values_list "
    "distinct union none all using extra select_for_update reverse intersection difference"
)
_DJANGO_IO = (
    "get first last latest earliest count exists contains aggregate in_bulk explain create get_or_create "
    "update_or_create bulk_create bulk_update update delete"
)
# the async twins (db-apis.md §13): awaited, they run the query in a thread (not on the
# loop, but still one query each: LOOP401 counts them); not awaited, nothing runs (LOOP301)
_DJANGO_AIO_ROW = "aget afirst alast alatest aearliest acreate"
_DJANGO_AIO = ("acount aexists acontains aaggregate ain_bulk aexplain aget_or_create aupdate_or_create "
               "abulk_create abulk_update aupdate adelete")
_kind(Kind("django.QuerySet", "Django QuerySet",
           methods=_methods((_DJANGO_QS_BUILDERS, _m(NONE, "django.QuerySet")), (_DJANGO_IO, _m(IO)),
                            ("iterator", _m(NONE, "django.Rows")),
                            (_DJANGO_AIO_ROW, _aw("django.Instance")), (_DJANGO_AIO, _aw())),
           iter_effect=IO, item_effect=IO, slice_kind="django.QuerySet", len_effect=IO,
           twin="the a-prefixed async API (await qs.aget(...), async for)"))
_kind(Kind("django.Rows", "Django QuerySet iterator", iter_effect=IO))
_kind(Kind("django.ModelClass", "Django model",
           methods=_methods(),
           call_kind="django.Instance",
           twin="the a-prefixed async API"))
_kind(Kind("django.Instance", "Django model instance",
           methods=_methods(("save delete refresh_from_db full_clean", _m(IO)),
                            ("asave adelete arefresh_from_db", _aw())),
           twin="await obj.asave()"))
_kind(Kind("django.Atomic", "Django transaction.atomic", enter_effect=IO))

# Attributes that are not methods but give a kind (Model.objects -> QuerySet manager).
CLASS_ATTRS: dict[str, dict[str, str]] = {
    "django.ModelClass": {"objects": "django.QuerySet", "_default_manager": "django.QuerySet"},
}


# --- entry points: qualified names as imported -----------------------------------------

ENTRIES: dict[str, Entry] = {}


def _entry(names: str, entry: Entry) -> None:
    for name in names.split():
        ENTRIES[name] = entry


_SESSION = Entry(instance="sqlalchemy.Session", returns="sqlalchemy.Session")
_entry("sqlalchemy.orm.Session sqlalchemy.orm.session.Session sqlmodel.Session sqlmodel.orm.session.Session "
       "flask_sqlalchemy.session.Session", _SESSION)
_ASYNC_SESSION = Entry(instance="sqlalchemy.AsyncSession", returns="sqlalchemy.AsyncSession")
_entry("sqlalchemy.ext.asyncio.AsyncSession sqlalchemy.ext.asyncio.session.AsyncSession "
       "sqlmodel.ext.asyncio.session.AsyncSession sqlalchemy.ext.asyncio.async_scoped_session", _ASYNC_SESSION)
_entry("sqlalchemy.orm.sessionmaker sqlalchemy.orm.session.sessionmaker",
       Entry(instance="sqlalchemy.SessionFactory", returns="sqlalchemy.SessionFactory",
             switch_kwarg=("class_", MappingProxyType({
                 "sqlalchemy.ext.asyncio.AsyncSession": "sqlalchemy.AsyncSessionFactory",
                 "sqlalchemy.ext.asyncio.session.AsyncSession": "sqlalchemy.AsyncSessionFactory",
                 "sqlmodel.ext.asyncio.session.AsyncSession": "sqlalchemy.AsyncSessionFactory",
             }))))
_entry("sqlalchemy.ext.asyncio.async_sessionmaker sqlalchemy.ext.asyncio.session.async_sessionmaker",
       Entry(instance="sqlalchemy.AsyncSessionFactory", returns="sqlalchemy.AsyncSessionFactory"))
_entry("sqlalchemy.orm.scoped_session sqlalchemy.orm.scoping.scoped_session",
       Entry(instance="sqlalchemy.ScopedSession", returns="sqlalchemy.ScopedSession"))
_entry("sqlalchemy.ext.asyncio.scoping.async_scoped_session", _ASYNC_SESSION)
# the request's session through a middleware's context variable: `from fastapi_sqlalchemy
# import db` then `db.session.query(...)` (fastapi-sqlalchemy 0.2.1 middleware.py:
# `DBSessionMeta.session -> Session`; fastapi-async-sqlalchemy 0.7.1: `-> AsyncSession`)
_entry("fastapi_sqlalchemy.db.session fastapi_sqlalchemy.middleware.db.session",
       Entry(value_kind="sqlalchemy.Session"))
_entry("fastapi_async_sqlalchemy.db.session fastapi_async_sqlalchemy.middleware.db.session",
       Entry(value_kind="sqlalchemy.AsyncSession"))
#: a sync kind -> its async twin: a call of the sync kind's method that is awaited means the
#: object is the twin (`db: psycopg.Connection` annotated, `await db.execute(...)` written:
#: a sync result cannot be awaited, so the annotation names the wrong class)
ASYNC_KIND_OF = MappingProxyType({
    "sqlalchemy.Session": "sqlalchemy.AsyncSession",
    "sqlalchemy.Connection": "sqlalchemy.AsyncConnection",
    "sqlalchemy.Engine": "sqlalchemy.AsyncEngine",
    "psycopg.Connection": "psycopg.AsyncConnection",
    "psycopg.Cursor": "psycopg.AsyncCursor",
    "psycopg.Pool": "psycopg.AsyncPool",
    "pymongo.MongoClient": "pymongo.AsyncClient",
    "pymongo.Database": "pymongo.AsyncDatabase",
    "pymongo.Collection": "pymongo.AsyncCollection",
    "redis.Redis": "redis.AsyncRedis",
})
#: `typing.cast(T, value)`: the value is what the annotation T says
CASTS = frozenset({"typing.cast", "typing_extensions.cast"})
#: LOOP201: session registries; one keyed by a `scopefunc` (the current task, a request id)
#: keeps each key's session until `remove()` (SQLAlchemy: "Using asyncio scoped session")
SCOPED_REGISTRIES = frozenset({"sqlalchemy.orm.scoped_session", "sqlalchemy.orm.scoping.scoped_session",
                               "sqlalchemy.ext.asyncio.async_scoped_session",
                               "sqlalchemy.ext.asyncio.scoping.async_scoped_session"})
_entry("sqlalchemy.create_engine sqlalchemy.engine.create_engine sqlalchemy.engine_from_config "
       "sqlalchemy.future.create_engine sqlmodel.create_engine",
       Entry(returns="sqlalchemy.Engine"))
_entry("sqlalchemy.Engine sqlalchemy.engine.Engine sqlalchemy.engine.base.Engine sqlalchemy.future.Engine",
       Entry(instance="sqlalchemy.Engine"))
_entry("sqlalchemy.Connection sqlalchemy.engine.Connection sqlalchemy.engine.base.Connection",
       Entry(instance="sqlalchemy.Connection"))
_entry("sqlalchemy.orm.Query sqlalchemy.orm.query.Query", Entry(instance="sqlalchemy.Query"))
# db-apis.md §1.1: `inspect(MappedClass)` / `inspect(instance)` give a Mapper / InstanceState
_entry("sqlalchemy.inspect sqlalchemy.inspection.inspect sqlmodel.inspect",
       Entry(returns="sqlalchemy.Inspector", project_arg_returns=""))
_entry("sqlalchemy.ext.asyncio.create_async_engine sqlalchemy.ext.asyncio.engine.create_async_engine "
       "sqlalchemy.ext.asyncio.async_engine_from_config",
       Entry(returns="sqlalchemy.AsyncEngine"))
_entry("sqlalchemy.ext.asyncio.AsyncEngine sqlalchemy.ext.asyncio.engine.AsyncEngine",
       Entry(instance="sqlalchemy.AsyncEngine"))
_entry("sqlalchemy.ext.asyncio.AsyncConnection sqlalchemy.ext.asyncio.engine.AsyncConnection",
       Entry(instance="sqlalchemy.AsyncConnection"))

_entry("sqlite3.connect sqlite3.dbapi2.connect", Entry(returns="sqlite3.Connection", effect=CONNECT))
_entry("sqlite3.Connection", Entry(instance="sqlite3.Connection"))
_entry("sqlite3.Cursor", Entry(instance="sqlite3.Cursor"))

_entry("psycopg2.connect psycopg2.extensions.connection psycopg2.extras.DictConnection "
       "psycopg2.extras.RealDictConnection psycopg2.extras.NamedTupleConnection",
       Entry(instance="psycopg2.Connection", returns="psycopg2.Connection", effect=CONNECT))
_entry("psycopg2.extensions.cursor", Entry(instance="psycopg2.Cursor"))
_entry("psycopg2.pool.SimpleConnectionPool psycopg2.pool.ThreadedConnectionPool",
       Entry(instance="psycopg2.Pool", returns="psycopg2.Pool", effect=CONNECT))
_entry("psycopg2.extras.execute_values psycopg2.extras.execute_batch psycopg2.extras.register_hstore "
       "psycopg2.extras.register_composite psycopg2.extras.wait_select", Entry(effect=IO))

_entry("psycopg.connect psycopg.Connection.connect",
       Entry(returns="psycopg.Connection", effect=CONNECT))
_entry("psycopg.Connection", Entry(instance="psycopg.Connection"))
_entry("psycopg.Cursor", Entry(instance="psycopg.Cursor"))
_entry("psycopg.AsyncConnection", Entry(instance="psycopg.AsyncConnection"))
_entry("psycopg.AsyncConnection.connect", Entry(returns="psycopg.AsyncConnection", awaits=MUST_AWAIT))
_entry("psycopg.AsyncCursor psycopg.AsyncClientCursor psycopg.AsyncServerCursor psycopg.AsyncRawCursor",
       Entry(instance="psycopg.AsyncCursor"))
_entry("psycopg_pool.AsyncConnectionPool psycopg_pool.AsyncNullConnectionPool",
       Entry(instance="psycopg.AsyncPool", returns="psycopg.AsyncPool"))

_entry("asyncpg.connect asyncpg.connection.connect", Entry(returns="asyncpg.Connection", awaits=MUST_AWAIT))
_entry("asyncpg.create_pool asyncpg.pool.create_pool",
       Entry(returns="asyncpg.Pool", awaits=AWAIT_OR_ENTER))
_entry("asyncpg.Connection asyncpg.connection.Connection", Entry(instance="asyncpg.Connection"))
_entry("asyncpg.Pool asyncpg.pool.Pool", Entry(instance="asyncpg.Pool"))
_entry("asyncpg.prepared_stmt.PreparedStatement", Entry(instance="asyncpg.PreparedStatement"))

_entry("aiosqlite.connect aiosqlite.core.connect", Entry(returns="aiosqlite.Connection", awaits=AWAIT_OR_ENTER))
_entry("aiosqlite.Connection aiosqlite.core.Connection", Entry(instance="aiosqlite.Connection"))
_entry("aiosqlite.Cursor aiosqlite.cursor.Cursor", Entry(instance="aiosqlite.Cursor"))

_entry("aiomysql.connect aiomysql.connection.connect asyncmy.connect asyncmy.connection.connect",
       Entry(returns="aiomysql.Connection", awaits=AWAIT_OR_ENTER))
_entry("aiomysql.create_pool aiomysql.pool.create_pool asyncmy.create_pool asyncmy.pool.create_pool",
       Entry(returns="aiomysql.Pool", awaits=AWAIT_OR_ENTER))
_entry("aiomysql.Connection aiomysql.connection.Connection asyncmy.Connection asyncmy.connection.Connection",
       Entry(instance="aiomysql.Connection"))
_entry("aiomysql.Pool aiomysql.pool.Pool asyncmy.Pool asyncmy.pool.Pool", Entry(instance="aiomysql.Pool"))
_entry("aiomysql.Cursor aiomysql.cursors.Cursor aiomysql.DictCursor aiomysql.cursors.DictCursor",
       Entry(instance="aiomysql.Cursor"))

_entry("databases.Database databases.core.Database", Entry(instance="databases.Database", returns="databases.Database"))
_entry("psycopg_pool.ConnectionPool psycopg_pool.NullConnectionPool",
       Entry(instance="psycopg.Pool", returns="psycopg.Pool"))

_entry("pymysql.connect pymysql.Connect pymysql.Connection pymysql.connections.Connection "
       "MySQLdb.connect MySQLdb.Connect MySQLdb.Connection mysql.connector.connect",
       Entry(instance="mysql.Connection", returns="mysql.Connection", effect=CONNECT))
_entry("pymysql.cursors.Cursor pymysql.cursors.DictCursor MySQLdb.cursors.Cursor", Entry(instance="mysql.Cursor"))

_entry("pymongo.MongoClient pymongo.mongo_client.MongoClient pymongo.synchronous.mongo_client.MongoClient",
       Entry(instance="pymongo.MongoClient", returns="pymongo.MongoClient"))
_entry("pymongo.database.Database pymongo.synchronous.database.Database", Entry(instance="pymongo.Database"))
_entry("pymongo.collection.Collection pymongo.synchronous.collection.Collection",
       Entry(instance="pymongo.Collection"))
_entry("pymongo.AsyncMongoClient pymongo.asynchronous.mongo_client.AsyncMongoClient "
       "motor.motor_asyncio.AsyncIOMotorClient motor.AsyncIOMotorClient",
       Entry(instance="pymongo.AsyncClient", returns="pymongo.AsyncClient"))
_entry("motor.motor_asyncio.AsyncIOMotorDatabase pymongo.asynchronous.database.AsyncDatabase",
       Entry(instance="pymongo.AsyncDatabase"))
_entry("motor.motor_asyncio.AsyncIOMotorCollection pymongo.asynchronous.collection.AsyncCollection",
       Entry(instance="pymongo.AsyncCollection"))

_REDIS = Entry(instance="redis.Redis", returns="redis.Redis")
_entry("redis.Redis redis.StrictRedis redis.client.Redis redis.client.StrictRedis redis.Redis.from_url "
       "redis.from_url redis.client.Redis.from_url redis.StrictRedis.from_url redis.Redis.from_pool", _REDIS)
_ASYNC_REDIS = Entry(instance="redis.AsyncRedis", returns="redis.AsyncRedis")
_entry("redis.asyncio.Redis redis.asyncio.StrictRedis redis.asyncio.from_url redis.asyncio.client.Redis "
       "redis.asyncio.Redis.from_url aioredis.Redis aioredis.from_url", _ASYNC_REDIS)
_entry("redis.asyncio.RedisCluster redis.asyncio.cluster.RedisCluster", _ASYNC_REDIS)
_entry("redis.asyncio.client.Pipeline", Entry(instance="redis.AsyncPipeline"))
_entry("redis.asyncio.client.PubSub", Entry(instance="redis.AsyncPubSub"))
_entry("redis.asyncio.lock.Lock", Entry(instance="redis.AsyncLock"))
_entry("motor.motor_asyncio.AsyncIOMotorCursor pymongo.asynchronous.cursor.AsyncCursor",
       Entry(instance="pymongo.AsyncCursor"))

_entry("peewee.Model playhouse.signals.Model playhouse.postgres_ext.Model",
       Entry(subclass_kind="peewee.ModelClass"))
_entry("peewee.SqliteDatabase peewee.PostgresqlDatabase peewee.MySQLDatabase peewee.Database "
       "peewee.DatabaseProxy peewee.Proxy playhouse.sqliteq.SqliteQueueDatabase playhouse.sqlite_ext.SqliteExtDatabase "
       "playhouse.sqlite_ext.CSqliteExtDatabase playhouse.pool.PooledPostgresqlDatabase "
       "playhouse.pool.PooledMySQLDatabase playhouse.pool.PooledSqliteDatabase "
       "playhouse.postgres_ext.PostgresqlExtDatabase playhouse.db_url.connect",
       Entry(instance="peewee.Database", returns="peewee.Database"))
_entry("peewee.prefetch", Entry(effect=IO))

_entry("django.db.models.Model django.db.models.base.Model", Entry(subclass_kind="django.ModelClass"))
_entry("django.db.models.QuerySet django.db.models.query.QuerySet django.db.models.Manager",
       Entry(instance="django.QuerySet"))
_entry("django.shortcuts.get_object_or_404 django.shortcuts.get_list_or_404 "
       "django.db.models.prefetch_related_objects django.contrib.auth.authenticate "
       "django.contrib.auth.login django.contrib.auth.logout django.contrib.auth.get_user", Entry(effect=IO))
_entry("django.db.transaction.atomic", Entry(returns="django.Atomic"))

#: methods that do I/O on whatever receiver when given a sync engine/connection (bind)
BIND_METHODS = frozenset({"create_all", "drop_all", "reflect"})
BIND_KINDS = frozenset({"sqlalchemy.Engine", "sqlalchemy.Connection", "sqlalchemy.StreamingConnection"})
#: constructors that reflect from the database when given a bind in this keyword
BIND_CALLS = MappingProxyType({
    "sqlalchemy.Table": "autoload_with", "sqlalchemy.schema.Table": "autoload_with",
    "sqlmodel.Table": "autoload_with",
})

# --- offloading ------------------------------------------------------------------------

#: callables whose (function) argument runs in a worker thread; a call *evaluated* as their
#: argument still runs on the loop first.
OFFLOAD_WRAPPERS = frozenset("""
starlette.concurrency.run_in_threadpool fastapi.concurrency.run_in_threadpool
starlette.concurrency.iterate_in_threadpool fastapi.concurrency.iterate_in_threadpool
asyncio.to_thread anyio.to_thread.run_sync asgiref.sync.sync_to_async
channels.db.database_sync_to_async
""".split())

#: method names that offload their callable argument, whatever the receiver (loop.run_in_executor)
OFFLOAD_METHODS = frozenset({"run_in_executor", "run_sync"})

#: decorators that make a function's body run in a worker thread when it is called
OFFLOAD_DECORATORS = frozenset({"asgiref.sync.sync_to_async", "channels.db.database_sync_to_async"})

#: context-manager decorators: `with f() as x` binds what f yields
CONTEXTMANAGER_DECORATORS = frozenset({"contextlib.contextmanager", "contextlib.asynccontextmanager"})

#: FastAPI / Starlette names the semantic layer needs
DEPENDS = frozenset({"fastapi.Depends", "fastapi.Security", "fastapi.params.Depends", "fastapi.params.Security"})
ANNOTATED = frozenset({"typing.Annotated", "typing_extensions.Annotated"})
#: qualifiers around the type an annotation promises: `session: ClassVar[SessionType]`
TYPE_QUALIFIERS = frozenset({
    "typing.ClassVar", "typing.Final", "typing_extensions.ClassVar", "typing_extensions.Final",
})
#: `NewType("SessionT", Session)`: annotated with the new type, an object is of the wrapped one
NEWTYPES = frozenset({"typing.NewType", "typing_extensions.NewType"})
OPTIONAL_WRAPPERS = frozenset({
    "typing.Optional", "typing.Union", "typing_extensions.Optional",
})
#: bases that make a class a SQLAlchemy mapped class (besides `__tablename__` in its body)
DECLARATIVE_BASES = frozenset({
    "sqlalchemy.orm.DeclarativeBase", "sqlalchemy.orm.DeclarativeBaseNoMeta",
    "sqlalchemy.orm.decl_api.DeclarativeBase", "sqlalchemy.orm.decl_api.DeclarativeBaseNoMeta",
})
#: importing one of these makes a module a migration (Alembic's env.py or revision, Django's):
#: run once, offline (LOOP401, LOOP402, LOOP404)
MIGRATION_MODULES = frozenset({"alembic.context", "alembic.op", "django.db.migrations"})
#: a folder named for a database or its migrator: a `migrations` folder inside it holds
#: migrations (`db/migrations/`, `sqlite_migrator/migrations/`; `services/migrations/` need not)
MIGRATION_DB_FOLDER = re.compile(r"(?i)(?:^|[_.-])(?:db|dbs|database|databases|sql|sqlite|postgres|postgresql|mysql|"
                                 r"alembic)(?:$|[_.-])|migrator")
ABSTRACT_DECORATORS = frozenset({"abc.abstractmethod", "abc.abstractproperty"})
#: decorators that make a method an attribute computed on read
PROPERTY_DECORATORS = frozenset({
    "builtins.property", "functools.cached_property", "werkzeug.utils.cached_property", "werkzeug.cached_property",
    "django.utils.functional.cached_property", "cached_property.cached_property",
})
CALLABLE_TYPES = frozenset({"typing.Callable", "collections.abc.Callable"})
#: what an annotation `Callable[..., X]` describes, for the kinds X that factories give:
#: `Callable[[], Session]` (or `Callable[..., ContextManager[Session]]`) is a sessionmaker
FACTORY_OF = MappingProxyType({
    "sqlalchemy.Session": "sqlalchemy.SessionFactory",
    "sqlalchemy.AsyncSession": "sqlalchemy.AsyncSessionFactory",
})
GENERATOR_TYPES = frozenset({
    "typing.Generator", "typing.Iterator", "typing.Iterable", "typing.ContextManager",
    "typing.AsyncGenerator", "typing.AsyncIterator", "typing.AsyncIterable",
    "collections.abc.Generator", "collections.abc.Iterator", "collections.abc.Iterable",
    "collections.abc.AsyncGenerator", "collections.abc.AsyncIterator", "contextlib.AbstractContextManager",
    "contextlib.AbstractAsyncContextManager", "typing.AsyncContextManager",
})
ROUTE_METHODS = frozenset({"get", "post", "put", "patch", "delete", "options", "head", "trace", "api_route",
                           "websocket", "route"})


def kind(name: str | None) -> Kind | None:
    return KINDS.get(name) if name else None


# --- async-API misuse, query performance, tests (LOOP3xx, LOOP4xx, LOOP5xx) ---------------

#: what a coroutine (or any awaitable) offers besides being awaited: using these on an
#: un-awaited call is not using it "as if it were the value" (motor and aiomysql give Futures)
AWAITABLE_ATTRS = frozenset(
    "send throw close cr_await cr_frame cr_running cr_code cr_origin cr_suspended gi_frame __await__ "
    "add_done_callback remove_done_callback result exception done cancel cancelled get_loop "
    "set_result set_exception".split())

#: builtins that consume their argument as a plain value (a coroutine there is a bug)
VALUE_CONSUMERS = frozenset("list tuple set frozenset sorted dict len str int float bool sum any all min max "
                            "enumerate iter next print repr".split())

#: SQLAlchemy's session/engine factories (LOOP302, LOOP403): kinds their calls give
ENGINE_KINDS = frozenset({"sqlalchemy.Engine", "sqlalchemy.AsyncEngine"})
SESSION_FACTORY_KINDS = frozenset({"sqlalchemy.SessionFactory", "sqlalchemy.AsyncSessionFactory"})
#: constructors of AsyncSession objects and factories that take `expire_on_commit` (LOOP302)
ASYNC_SESSION_CONSTRUCTORS = frozenset({
    "sqlalchemy.ext.asyncio.AsyncSession", "sqlalchemy.ext.asyncio.session.AsyncSession",
    "sqlmodel.ext.asyncio.session.AsyncSession",
})
ASYNC_ENGINE_CREATORS = frozenset({
    "sqlalchemy.ext.asyncio.create_async_engine", "sqlalchemy.ext.asyncio.engine.create_async_engine",
})
ENGINE_CREATORS = frozenset({
    "sqlalchemy.create_engine", "sqlalchemy.engine.create_engine", "sqlalchemy.future.create_engine",
    "sqlmodel.create_engine", *ASYNC_ENGINE_CREATORS,
})

#: LOOP303: URL schemes naming a synchronous DBAPI driver -> the async driver to use instead.
#: A bare dialect name selects its default driver (postgresql -> psycopg2, mysql -> mysqlclient,
#: sqlite -> pysqlite, mssql -> pyodbc): https://docs.sqlalchemy.org/en/20/core/engines.html
SYNC_DRIVER_URLS: Mapping[str, str] = MappingProxyType({
    "postgresql": "postgresql+asyncpg or postgresql+psycopg",
    "postgres": "postgresql+asyncpg or postgresql+psycopg",
    "postgresql+psycopg2": "postgresql+asyncpg or postgresql+psycopg",
    "postgresql+psycopg2cffi": "postgresql+asyncpg or postgresql+psycopg",
    "postgresql+pg8000": "postgresql+asyncpg or postgresql+psycopg",
    "postgresql+pygresql": "postgresql+asyncpg or postgresql+psycopg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
    "sqlite+pysqlcipher": "sqlite+aiosqlite",
    "mysql": "mysql+aiomysql or mysql+asyncmy",
    "mysql+mysqldb": "mysql+aiomysql or mysql+asyncmy",
    "mysql+pymysql": "mysql+aiomysql or mysql+asyncmy",
    "mysql+cymysql": "mysql+aiomysql or mysql+asyncmy",
    "mysql+pyodbc": "mysql+aiomysql or mysql+asyncmy",
    "mariadb": "mariadb+aiomysql or mariadb+asyncmy",
    "mariadb+mysqldb": "mariadb+aiomysql or mariadb+asyncmy",
    "mariadb+pymysql": "mariadb+aiomysql or mariadb+asyncmy",
    "mariadb+mariadbconnector": "mariadb+aiomysql or mariadb+asyncmy",
    "mssql": "mssql+aioodbc",
    "mssql+pyodbc": "mssql+aioodbc",
    "mssql+pymssql": "mssql+aioodbc",
})

#: LOOP304: ORM relationship constructors and loader options
RELATIONSHIP_FUNCS = frozenset({
    "sqlalchemy.orm.relationship", "sqlalchemy.orm.relationships.relationship", "sqlalchemy.orm.relation",
    "sqlalchemy.orm._orm_constructors.relationship", "sqlmodel.Relationship", "sqlmodel.main.Relationship",
})
BACKREF_FUNCS = frozenset({"sqlalchemy.orm.backref", "sqlalchemy.orm._orm_constructors.backref"})
#: `lazy=` values that load on first attribute access (the default is "select"; `lazy=None` is
#: "noload", `lazy=False` is "joined")
LAZY_LOADING = frozenset({"select", True})
#: select() constructors (one ORM entity: the rows are instances of it)
SELECT_FUNCS = frozenset({"sqlalchemy.select", "sqlalchemy.future.select", "sqlalchemy.sql.select",
                          "sqlalchemy.sql.expression.select", "sqlmodel.select", "sqlmodel.sql.expression.select",
                          "sqlmodel.sql._expression_select_gen.select"})
#: Select methods that keep the selected entity (anything else: the analysis gives up)
SELECT_BUILDERS = frozenset(
    "where filter filter_by order_by limit offset join outerjoin join_from outerjoin_from select_from distinct "
    "group_by having execution_options with_for_update params correlate prefix_with suffix_with with_hint "
    "fetch slice".split())
_ORM = ("sqlalchemy.orm.", "sqlalchemy.orm.strategy_options.", "sqlmodel.")
#: loader options that load a relationship with the query
EAGER_LOADERS = frozenset(p + n for p in _ORM
                          for n in ("selectinload", "joinedload", "subqueryload", "immediateload", "contains_eager"))
#: options that only say how relationships are loaded: harmless where not eager
LOADER_OPTIONS = frozenset(p + n for p in _ORM
                           for n in ("lazyload", "defaultload", "raiseload", "noload", "load_only", "defer",
                                     "undefer", "undefer_group", "selectin_polymorphic", "with_expression",
                                     "Load"))

#: LOOP401/LOOP402: methods that control transactions or connections rather than query
TRANSACTION_METHODS = frozenset(
    "commit rollback flush close aclose begin begin_nested connect cursor ping autocommit select_db reset invalidate "
    "dispose run_sync connection start release acquire wait wait_closed set_autocommit set_isolation_level "
    "set_read_only set_deferrable cancel cancel_safe savepoint atomic transaction expunge expire add add_all "
    "pipeline pubsub lock getconn putconn open commit_transaction abort_transaction start_session".split())
#: reading the rows of a statement a DB-API cursor already ran: part of that query, not another
CURSOR_READS = frozenset({"fetchone", "fetchall", "fetchmany"})
#: unit-of-work calls of SQLAlchemy sessions: they mark objects, the flush writes them together
UNIT_OF_WORK_METHODS = frozenset({"delete", "merge"})
SESSION_KINDS = frozenset({"sqlalchemy.Session", "sqlalchemy.ScopedSession", "sqlalchemy.AsyncSession"})
COMMIT_METHODS = frozenset({"commit", "commit_transaction"})
#: LOOP401/LOOP402: progress bars that hand on their iterable's items (`for id in tqdm(ids)`)
PROGRESS_ITERATORS = frozenset({"tqdm.tqdm", "tqdm.auto.tqdm", "tqdm.std.tqdm", "tqdm.notebook.tqdm",
                                "tqdm.asyncio.tqdm", "tqdm.asyncio.tqdm_asyncio", "tqdm.rich.tqdm",
                                "rich.progress.track"})
#: loops that are not over data: fixed retries, counters (LOOP401/LOOP402)
COUNTING_ITERATORS = frozenset({"range", "itertools.count", "itertools.repeat", "itertools.cycle"})
RETRY_ITERATORS_PREFIXES = ("tenacity.", "stamina.", "backoff.")
SCHEMA_ATTRS = frozenset({"sorted_tables", "tables"})

#: LOOP404: engine keywords that bound how long a query or a pool checkout may wait
ENGINE_TIMEOUT_KWARGS = frozenset({"pool_timeout", "connect_args", "execution_options"})

#: LOOP501: HTTPX clients whose `app=` shortcut was removed in httpx 0.28
HTTPX_CLIENTS = MappingProxyType({
    "httpx.AsyncClient": "AsyncClient", "httpx._client.AsyncClient": "AsyncClient",
    "httpx.Client": "Client", "httpx._client.Client": "Client",
})

#: LOOP403: decorators that run a function once per distinct arguments (its result is reused)
CACHE_DECORATORS = frozenset({
    "functools.lru_cache", "functools.cache", "functools.cached_property", "async_lru.alru_cache",
    "cachetools.cached", "cachetools.func.lru_cache", "cachetools.func.ttl_cache", "aiocache.cached",
})
#: base classes whose `dispatch` runs per request (LOOP403)
HTTP_MIDDLEWARE_BASES = frozenset({"starlette.middleware.base.BaseHTTPMiddleware",
                                   "fastapi.middleware.base.BaseHTTPMiddleware"})
#: SQLAlchemy event hooks that can set a statement timeout on each new connection (LOOP404)
CONNECTION_EVENTS = frozenset({"connect", "first_connect", "checkout", "engine_connect"})
#: LOOP401: kinds whose objects hold rows (iterating them walks query results)
ROW_KINDS = frozenset({
    "sqlalchemy.Result", "sqlalchemy.AsyncResult", "sqlalchemy.ServerResult", "sqlalchemy.Query",
    "pymongo.Cursor", "pymongo.AsyncCursor", "psycopg.Cursor", "psycopg.AsyncCursor", "psycopg.ServerCursor",
    "psycopg2.Cursor", "psycopg2.ServerCursor", "mysql.Cursor", "mysql.SSCursor", "dbapi.Cursor", "sqlite3.Cursor",
    "aiosqlite.Cursor", "aiomysql.Cursor", "peewee.Query", "peewee.Rows", "django.QuerySet", "django.Rows",
    "redis.Iter",
})
#: query objects that cache their rows once evaluated: iterating, indexing or `len()` of one
#: built before a loop runs its query once, not per item (peewee, Django)
CACHING_QUERY_KINDS = frozenset({"peewee.Query", "django.QuerySet"})
#: methods that undo a session's pending work: called under a test of that session's state
#: (`if session.dirty: session.rollback()`), they run only after something failed
CLEANUP_WHEN_PENDING = frozenset({"rollback", "expunge_all", "close"})
#: a Session's collections of pending changes: truthy only when something is left unflushed
SESSION_PENDING_STATE = frozenset({"dirty", "new", "deleted"})
#: the start of a schema statement (DDL): it changes a table, index or grant, once per schema
#: object; a loop over tables issuing it is maintenance, not a query per row
DDL_STATEMENT = re.compile(
    r"(?is)^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*(?:create|alter|drop|truncate|comment\s+on|grant|revoke|vacuum|"
    r"analyze|reindex|cluster|rename|optimize\s+table|attach|detach)\s")
#: transaction control written as SQL text: the first word (`COMMIT`/`END` commit)
TRANSACTION_STATEMENT = re.compile(
    r"(?is)^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*(begin|start\s+transaction|savepoint|release|rollback|commit|end)\b")
#: SQLAlchemy's DDL constructs (`session.execute(CreateSchema("s"))`): the statement each
#: compiles to, as DDL_STATEMENT reads it (sqlalchemy.schema, also exported as sqlalchemy.sql.ddl)
DDL_CONSTRUCTS = {
    "CreateSchema": "CREATE SCHEMA", "DropSchema": "DROP SCHEMA", "CreateTable": "CREATE TABLE",
    "DropTable": "DROP TABLE", "CreateIndex": "CREATE INDEX", "DropIndex": "DROP INDEX",
    "CreateSequence": "CREATE SEQUENCE", "DropSequence": "DROP SEQUENCE", "AddConstraint": "ALTER TABLE",
    "DropConstraint": "ALTER TABLE", "SetTableComment": "COMMENT ON TABLE",
    "DropTableComment": "COMMENT ON TABLE", "SetColumnComment": "COMMENT ON COLUMN",
    "DropColumnComment": "COMMENT ON COLUMN",
}
#: the methods that run SQL text a program wrote (what DDL_STATEMENT reads)
SQL_TEXT_METHODS = frozenset({"execute", "executemany", "executescript", "exec_driver_sql", "exec"})
#: kinds known from the code itself (`Model.objects`), never from an annotation: `await` in
#: front of their sync method does not make it the async twin; the query runs (and raises
#: `SynchronousOnlyOperation` on the loop) before the `await` fails on its result
AWAITED_STILL_BLOCKS = frozenset({"django.QuerySet", "django.Instance"})
#: loops over slices of a list (`for i in range(0, len(ids), 500)`, `chunked(ids, 500)`)
#: batch on purpose: callee names that say so
BATCHING_NAMES = ("chunk", "batch", "partition", "paginate", "page")
#: objects that live for one request (state stored on them is not kept across requests)
REQUEST_TYPES = frozenset({"fastapi.Request", "starlette.requests.Request", "fastapi.WebSocket",
                           "starlette.websockets.WebSocket", "starlette.requests.HTTPConnection"})
