"""Sessions whose lifecycle mistakes have a runtime symptom (LOOP205, LOOP301, LOOP302).

tests/runtime/test_lifecycle_runtime.py scans these modules with loopsafe and drives the
endpoints of `app.lifecycle` on a live event loop, so every static verdict is checked
against what the very same code does. `configure()` points everything at a fresh SQLite
file before a test drives the app.
"""
from __future__ import annotations

from typing import AsyncIterator

from sqlalchemy import String, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "note"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(200))


engine: AsyncEngine | None = None
ExpiringSession: async_sessionmaker[AsyncSession] | None = None
KeepingSession: async_sessionmaker[AsyncSession] | None = None

#: what happened, in order: "open"/"closed" from the tracked dependency, "task start"/"task
#: end" from the background tasks (the test adds "response sent" from the ASGI side)
events: list[str] = []
#: the sessions the tracked dependency ("request") and the last task ("task") worked with:
#: the test checks whether the task's session was left holding a connection, then closes it
seen: dict[str, AsyncSession] = {}


def configure(sqlite_path: str) -> None:
    global engine, ExpiringSession, KeepingSession
    # a real pool (not NullPool): a session left holding a connection shows up in
    # `engine.pool.checkedout()`. The test disposes it on the loop that filled it.
    engine = create_async_engine(f"sqlite+aiosqlite:///{sqlite_path}")
    # the LOOP302 positive (default expire_on_commit=True) and its silent twin
    ExpiringSession = async_sessionmaker(engine)
    KeepingSession = async_sessionmaker(engine, expire_on_commit=False)
    events.clear()
    seen.clear()


async def get_expiring_session() -> AsyncIterator[AsyncSession]:
    async with ExpiringSession() as session:
        yield session


async def get_session() -> AsyncIterator[AsyncSession]:
    async with KeepingSession() as session:
        yield session


async def get_tracked_session() -> AsyncIterator[AsyncSession]:
    """The usual yield dependency, written out so the test sees when its teardown runs."""
    session = KeepingSession()
    seen["request"] = session
    events.append("open")
    try:
        yield session
    finally:
        await session.close()
        events.append("closed")


async def read_note(session: AsyncSession, note_id: int) -> None:
    """Background task that works with the session it is handed."""
    events.append("task start")
    seen["task"] = session
    # a query, not `session.get`: the note may sit in the identity map, and the point is
    # to make the session use a connection after the request is done with it
    await session.scalar(select(Note.text).where(Note.id == note_id))
    events.append("task end")


async def read_note_own_session(note_id: int) -> None:
    """The same task opening its own session, as LOOP205 advises."""
    events.append("task start")
    async with KeepingSession() as session:
        seen["task"] = session
        await session.scalar(select(Note.text).where(Note.id == note_id))
    events.append("task end")
