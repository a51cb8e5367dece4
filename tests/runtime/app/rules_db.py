"""Engines, sessions and dependencies for the rules proved in tests/runtime/test_rules_runtime.py.

Each positive sits beside a twin doing the same work right, which loopsafe must leave silent.
`configure()` points everything at a fresh SQLite file before a test drives `app.rules`.
"""
from __future__ import annotations

from typing import AsyncIterator, Iterator

from sqlalchemy import ForeignKey, String, create_engine, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, sessionmaker


class Base(DeclarativeBase):
    pass


class Owner(Base):
    __tablename__ = "owner"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # the default lazy="select": reading it on an unloaded owner is a query (LOOP304)
    items: Mapped[list["Item"]] = relationship(back_populates="owner")


class Item(Base):
    __tablename__ = "item"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("owner.id"))
    owner: Mapped[Owner | None] = relationship(back_populates="items")


DATABASE_URL = ""
#: sync endpoints and yield dependencies may run in different threadpool workers, and a
#: session's connection is checked in by whichever of them closes it
CONNECT_ARGS = {"check_same_thread": False}

engine: Engine | None = None
SessionLocal: sessionmaker[Session] | None = None
async_engine: AsyncEngine | None = None
AsyncSessionLocal: async_sessionmaker[AsyncSession] | None = None


# --------------------------------------------------------------------------- LOOP303


def async_engine_with_sync_driver(path: str) -> AsyncEngine:
    return create_async_engine(f"sqlite:///{path}")


def async_engine_with_async_driver(path: str) -> AsyncEngine:
    return create_async_engine(f"sqlite+aiosqlite:///{path}")


def configure(sqlite_path: str) -> None:
    global DATABASE_URL, engine, SessionLocal, async_engine, AsyncSessionLocal
    DATABASE_URL = f"sqlite:///{sqlite_path}"
    # create_engine gives a file database a QueuePool: a session that is never closed keeps
    # its connection counted in `engine.pool.checkedout()` (NullPool would hide it)
    engine = create_engine(DATABASE_URL, connect_args=CONNECT_ARGS)
    SessionLocal = sessionmaker(engine)
    async_engine = async_engine_with_async_driver(sqlite_path)
    AsyncSessionLocal = async_sessionmaker(async_engine, expire_on_commit=False)


# --------------------------------------------------------------------------- LOOP202


def get_db_returned() -> Session:
    return SessionLocal()


def get_db() -> Iterator[Session]:
    with SessionLocal() as db:
        yield db


# --------------------------------------------------------------------------- LOOP203


def get_db_close_after_yield() -> Iterator[Session]:
    db = SessionLocal()
    yield db
    db.close()


def get_db_close_in_finally() -> Iterator[Session]:
    db = SessionLocal()
    try:
        yield db
    finally:
        db.close()


# --------------------------------------------------------------------------- LOOP403


def get_db_engine_per_request() -> Iterator[Session]:
    request_engine = create_engine(DATABASE_URL, connect_args=CONNECT_ARGS)
    with Session(request_engine) as db:
        yield db


def get_db_shared_engine() -> Iterator[Session]:
    with Session(engine) as db:
        yield db


# --------------------------------------------------------------------------- async sessions


async def get_async_session() -> AsyncIterator[AsyncSession]:
    async with AsyncSessionLocal() as session:
        yield session


async def count_owners(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(Owner))


async def count_items(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(Item))


async def count_owners_own_session() -> int:
    async with AsyncSessionLocal() as session:
        return await count_owners(session)


async def count_items_own_session() -> int:
    async with AsyncSessionLocal() as session:
        return await count_items(session)
