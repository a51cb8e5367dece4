"""Database wiring: one SQLite file, reached through every driver the endpoints exercise.

`configure()` is called by the test before the app serves a request. Every endpoint runs the
same deliberately slow query (`SLOW_SQL`): a recursive CTE that counts up to the number stored
in the `knob` table, which the test calibrates so that the query takes about 200 ms.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator, Iterator

from sqlalchemy import Engine, create_engine, func, literal
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool
from sqlmodel import Field, SQLModel, select
from sqlmodel import Session as SQLModelSession
from sqlmodel.ext.asyncio.session import AsyncSession as SQLModelAsyncSession

#: counts 1..n where n is read from the database file itself
SLOW_SQL = (
    "WITH RECURSIVE c(x) AS ("
    "SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < (SELECT n FROM knob WHERE id = 1)"
    ") SELECT count(*) FROM c"
)


class Knob(SQLModel, table=True):
    id: int = Field(primary_key=True)
    n: int


def slow_select():
    """`SLOW_SQL` built with SQLModel's `select`, for `Session.exec`."""
    limit = select(Knob.n).where(Knob.id == 1).scalar_subquery()
    c = select(literal(1).label("x")).cte("c", recursive=True)
    c = c.union_all(select(c.c.x + 1).where(c.c.x < limit))
    return select(func.count()).select_from(c)


@dataclass
class Settings:
    sqlite_path: str = ""
    pg_dsn: str = ""
    #: how long the PostgreSQL endpoints sleep in the server (pg_sleep), in seconds
    pg_sleep: float = 0.2


settings = Settings()
engine: Engine | None = None
async_engine: AsyncEngine | None = None


def configure(sqlite_path: str, pg_dsn: str = "", pg_sleep: float = 0.2) -> None:
    """Point the app at a database file; creates the engines (no connection is opened)."""
    global engine, async_engine
    settings.sqlite_path = sqlite_path
    settings.pg_dsn = pg_dsn
    settings.pg_sleep = pg_sleep
    # def endpoints and def dependencies may run in different worker threads
    engine = create_engine(f"sqlite:///{sqlite_path}", connect_args={"check_same_thread": False})
    # no pooling: each test drives the app on its own event loop, and a pooled aiosqlite
    # connection belongs to the loop that opened it
    async_engine = create_async_engine(f"sqlite+aiosqlite:///{sqlite_path}", poolclass=NullPool)


def get_session() -> Iterator[Session]:
    with Session(engine) as session:
        yield session


def get_sqlmodel_session() -> Iterator[SQLModelSession]:
    with SQLModelSession(engine) as session:
        yield session


async def get_async_session() -> AsyncIterator[AsyncSession]:
    async with AsyncSession(async_engine) as session:
        yield session


async def get_sqlmodel_async_session() -> AsyncIterator[SQLModelAsyncSession]:
    async with SQLModelAsyncSession(async_engine) as session:
        yield session


def sqlite_path() -> str:
    return settings.sqlite_path
