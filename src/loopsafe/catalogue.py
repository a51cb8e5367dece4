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

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

IO = "io"
CONNECT = "connect"
NONE = "none"


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
    #: the class object itself, when the name is used as a value (e.g. a Model class)
    value_kind: str | None = None


def _m(effect: str = NONE, returns: str | None = None) -> Method:
    return Method(effect, returns)


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
    "correlate enable_eagerloads params where"
)

KINDS: dict[str, Kind] = {}


def _kind(k: Kind) -> None:
    KINDS[k.name] = k


_kind(Kind("sqlalchemy.Session", "SQLAlchemy Session", methods=_SESSION_METHODS,
           twin="AsyncSession (await session.execute(...))"))
_kind(Kind("sqlalchemy.ScopedSession", "SQLAlchemy scoped_session",
           methods=MappingProxyType({**_SESSION_METHODS, "remove": _m()}),
           call_kind="sqlalchemy.Session", twin="async_scoped_session"))
_kind(Kind("sqlalchemy.SessionTransaction", "SQLAlchemy session transaction",
           methods=_methods(("commit rollback", _m(IO))), enter_kind="sqlalchemy.SessionTransaction"))
_kind(Kind("sqlalchemy.SessionFactory", "SQLAlchemy sessionmaker",
           methods=_methods(("begin", _m(NONE, "sqlalchemy.Session")), ("configure", _m())),
           call_kind="sqlalchemy.Session", twin="async_sessionmaker"))
_kind(Kind("sqlalchemy.Query", "SQLAlchemy Query",
           methods=_methods(
               (_QUERY_BUILDERS, _m(NONE, "sqlalchemy.Query")),
               ("subquery cte exists statement union union_all", _m()),
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
_kind(Kind("sqlalchemy.Inspector", "SQLAlchemy Inspector", other_methods=_m(IO),
           methods=_methods(("clear_cache", _m()))))
_kind(Kind("dbapi.Connection", "DB-API connection",
           methods=_methods(("cursor", _m(NONE, "dbapi.Cursor")), ("commit rollback", _m(IO)),
                            ("execute", _m(IO, "dbapi.Cursor")))))
_kind(Kind("dbapi.Cursor", "DB-API cursor", methods=_methods(("execute executemany callproc", _m(IO)))))

# --- SQLAlchemy asyncio ----------------------------------------------------------------
_ASYNC_SESSION_METHODS = _methods(
    ("execute scalars scalar get get_one stream stream_scalars refresh merge delete flush commit "
     "rollback close connection run_sync", _m()),
)
_kind(Kind("sqlalchemy.AsyncSession", "SQLAlchemy AsyncSession", is_async=True, methods=_ASYNC_SESSION_METHODS))
_kind(Kind("sqlalchemy.AsyncSessionFactory", "SQLAlchemy async_sessionmaker", is_async=True,
           methods=_methods(("begin", _m(NONE, "sqlalchemy.AsyncSession"))),
           call_kind="sqlalchemy.AsyncSession"))
_kind(Kind("sqlalchemy.AsyncEngine", "SQLAlchemy AsyncEngine", is_async=True,
           methods=_methods(("connect begin", _m(NONE, "sqlalchemy.AsyncConnection")))))
_kind(Kind("sqlalchemy.AsyncConnection", "SQLAlchemy AsyncConnection", is_async=True))

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
           methods=_methods(("cancel", _m(IO))), twin="await conn.cancel_safe()"))

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
_kind(Kind("pymongo.AsyncClient", "async MongoDB client", is_async=True,
           attr_kind="pymongo.AsyncDatabase", item_kind="pymongo.AsyncDatabase"))
_kind(Kind("pymongo.AsyncDatabase", "async MongoDB database", is_async=True,
           attr_kind="pymongo.AsyncCollection", item_kind="pymongo.AsyncCollection"))
_kind(Kind("pymongo.AsyncCollection", "async MongoDB collection", is_async=True,
           attr_kind="pymongo.AsyncCollection", item_kind="pymongo.AsyncCollection"))

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
_kind(Kind("redis.AsyncRedis", "redis.asyncio Redis", is_async=True))

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
_kind(Kind("django.QuerySet", "Django QuerySet",
           methods=_methods((_DJANGO_QS_BUILDERS, _m(NONE, "django.QuerySet")), (_DJANGO_IO, _m(IO)),
                            ("iterator", _m(NONE, "django.Rows"))),
           iter_effect=IO, item_effect=IO, slice_kind="django.QuerySet", len_effect=IO,
           twin="the a-prefixed async API (await qs.aget(...), async for)"))
_kind(Kind("django.Rows", "Django QuerySet iterator", iter_effect=IO))
_kind(Kind("django.ModelClass", "Django model",
           methods=_methods(),
           call_kind="django.Instance",
           twin="the a-prefixed async API"))
_kind(Kind("django.Instance", "Django model instance",
           methods=_methods(("save delete refresh_from_db full_clean", _m(IO))),
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
_entry("sqlalchemy.create_engine sqlalchemy.engine.create_engine sqlalchemy.engine_from_config "
       "sqlalchemy.future.create_engine sqlmodel.create_engine",
       Entry(returns="sqlalchemy.Engine"))
_entry("sqlalchemy.Engine sqlalchemy.engine.Engine sqlalchemy.engine.base.Engine sqlalchemy.future.Engine",
       Entry(instance="sqlalchemy.Engine"))
_entry("sqlalchemy.Connection sqlalchemy.engine.Connection sqlalchemy.engine.base.Connection",
       Entry(instance="sqlalchemy.Connection"))
_entry("sqlalchemy.orm.Query sqlalchemy.orm.query.Query", Entry(instance="sqlalchemy.Query"))
_entry("sqlalchemy.inspect sqlalchemy.inspection.inspect sqlmodel.inspect",
       Entry(returns="sqlalchemy.Inspector"))  # I/O only for engines: see semantic.inspect_effect
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
_entry("psycopg.AsyncConnection.connect", Entry(returns="psycopg.AsyncConnection"))
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
OPTIONAL_WRAPPERS = frozenset({
    "typing.Optional", "typing.Union", "typing_extensions.Optional",
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
