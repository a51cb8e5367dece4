"""The endpoints. Positive examples (loopsafe must flag them, and they stall the loop) come
first; negative ones (the same work done right: silent, and the loop keeps running) follow.

Every endpoint returns `{"count": n}`, the result of the slow query, so a test can see that
the work really happened.
"""
from __future__ import annotations

import asyncio
import sqlite3

import aiosqlite
from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlmodel import Session as SQLModelSession
from sqlmodel.ext.asyncio.session import AsyncSession as SQLModelAsyncSession

from app import crud
from app.db import (
    SLOW_SQL,
    get_async_session,
    get_session,
    get_sqlmodel_async_session,
    get_sqlmodel_session,
    slow_select,
    sqlite_path,
)
from app.pg import router as pg_router

app = FastAPI()
app.include_router(pg_router)


# --------------------------------------------------------------------------- positive


@app.get("/sqla/async-direct")
async def sqla_session_in_async(db: Session = Depends(get_session)):
    """LOOP101 + LOOP105: a sync SQLAlchemy query straight on the loop."""
    return {"count": db.scalar(text(SLOW_SQL))}


@app.get("/sqlmodel/async-direct")
async def sqlmodel_session_in_async(session: SQLModelSession = Depends(get_sqlmodel_session)):
    """LOOP101 + LOOP105: SQLModel's `Session.exec` on the loop."""
    return {"count": session.exec(slow_select()).one()}


@app.get("/sqlite3/async-direct")
async def sqlite3_in_async():
    """LOOP102 + LOOP101 + LOOP105: stdlib sqlite3 connect and query on the loop."""
    conn = sqlite3.connect(sqlite_path())
    try:
        return {"count": conn.execute(SLOW_SQL).fetchone()[0]}
    finally:
        conn.close()


@app.get("/sqla/async-helper")
async def sqla_helper_in_async(db: Session = Depends(get_session)):
    """LOOP103: a sync helper in another module queries; awaiting something else does not help."""
    await asyncio.sleep(0)
    return {"count": crud.count_with_session(db)}


@app.get("/sqlmodel/async-helper")
async def sqlmodel_helper_in_async(session: SQLModelSession = Depends(get_sqlmodel_session)):
    """LOOP103 through a SQLModel helper."""
    return {"count": crud.count_with_sqlmodel(session)}


@app.get("/sqlite3/async-helper")
async def sqlite3_helper_in_async():
    """LOOP103 through a helper that connects with sqlite3 and queries."""
    return {"count": crud.count_with_sqlite3(sqlite_path())}


# --------------------------------------------------------------------------- negative


@app.get("/sqla/def-direct")
def sqla_session_in_def(db: Session = Depends(get_session)):
    """Same query in a plain `def`: FastAPI runs it in its threadpool."""
    return {"count": db.scalar(text(SLOW_SQL))}


@app.get("/sqlmodel/def-direct")
def sqlmodel_session_in_def(session: SQLModelSession = Depends(get_sqlmodel_session)):
    return {"count": session.exec(slow_select()).one()}


@app.get("/sqlite3/def-direct")
def sqlite3_in_def():
    conn = sqlite3.connect(sqlite_path())
    try:
        return {"count": conn.execute(SLOW_SQL).fetchone()[0]}
    finally:
        conn.close()


@app.get("/sqla/def-helper")
def sqla_helper_in_def(db: Session = Depends(get_session)):
    return {"count": crud.count_with_session(db)}


@app.get("/sqla/threadpool")
async def sqla_helper_in_threadpool(db: Session = Depends(get_session)):
    return {"count": await run_in_threadpool(crud.count_with_session, db)}


@app.get("/sqlite3/threadpool")
async def sqlite3_helper_in_threadpool():
    return {"count": await run_in_threadpool(crud.count_with_sqlite3, sqlite_path())}


@app.get("/sqlite3/to-thread")
async def sqlite3_helper_to_thread():
    return {"count": await asyncio.to_thread(crud.count_with_sqlite3, sqlite_path())}


@app.get("/aiosqlite")
async def aiosqlite_awaited():
    async with aiosqlite.connect(sqlite_path()) as conn:
        cursor = await conn.execute(SLOW_SQL)
        row = await cursor.fetchone()
    return {"count": row[0]}


@app.get("/sqla/async-session")
async def sqla_async_session_awaited(db: AsyncSession = Depends(get_async_session)):
    return {"count": await db.scalar(text(SLOW_SQL))}


@app.get("/sqlmodel/async-session")
async def sqlmodel_async_session_awaited(session: SQLModelAsyncSession = Depends(get_sqlmodel_async_session)):
    result = await session.exec(slow_select())
    return {"count": result.one()}
