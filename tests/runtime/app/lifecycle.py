"""Endpoints whose session-lifecycle mistakes fail at runtime, each beside its correct twin.

A separate app from `app.main`: these endpoints write rows and schedule background tasks,
and the event-loop proof must not see them. Every positive is paired with a twin that does
the same work right, which loopsafe must leave silent.
"""
from __future__ import annotations

import inspect

from fastapi import APIRouter, BackgroundTasks, Depends, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from app.lifecycle_db import (
    Note,
    get_expiring_session,
    get_session,
    get_tracked_session,
    read_note,
    read_note_own_session,
)

router = APIRouter()


# --------------------------------------------------------------------------- LOOP302


@router.post("/notes/expiring")
async def create_note_expiring(session: AsyncSession = Depends(get_expiring_session)):
    """The commit expires `note`; reading `note.id` needs a lazy load that cannot be awaited."""
    note = Note(text="expiring")
    session.add(note)
    await session.commit()
    return {"id": note.id, "text": note.text}


@router.post("/notes/keeping")
async def create_note_keeping(session: AsyncSession = Depends(get_session)):
    note = Note(text="keeping")
    session.add(note)
    await session.commit()
    return {"id": note.id, "text": note.text}


# --------------------------------------------------------------------------- LOOP301


@router.post("/notes/unawaited")
async def create_note_unawaited(session: AsyncSession = Depends(get_session)):
    """The commit coroutine is created and dropped; the dependency then rolls the row back."""
    session.add(Note(text="unawaited"))
    session.commit()
    return {"saved": True}


@router.post("/notes/awaited")
async def create_note_awaited(session: AsyncSession = Depends(get_session)):
    session.add(Note(text="awaited"))
    await session.commit()
    return {"saved": True}


# --------------------------------------------------------------------------- LOOP305


@router.post("/notes/await-add")
async def create_note_await_add(session: AsyncSession = Depends(get_session)):
    """`AsyncSession.add` is a plain method returning None: awaiting it raises TypeError."""
    await session.add(Note(text="await-add"))
    await session.commit()
    return {"saved": True}


@router.post("/notes/add")
async def create_note_add(session: AsyncSession = Depends(get_session)):
    session.add(Note(text="add"))
    await session.commit()
    return {"saved": True}


# --------------------------------------------------------------------------- LOOP205


@router.post("/notes/task-with-request-session")
async def task_with_request_session(tasks: BackgroundTasks, session: AsyncSession = Depends(get_tracked_session)):
    note = Note(text="task")
    session.add(note)
    await session.commit()
    tasks.add_task(read_note, session, note.id)
    return {"id": note.id}


@router.post("/notes/task-with-own-session")
async def task_with_own_session(tasks: BackgroundTasks, session: AsyncSession = Depends(get_tracked_session)):
    note = Note(text="task")
    session.add(note)
    await session.commit()
    tasks.add_task(read_note_own_session, note.id)
    return {"id": note.id}


lifecycle_app = FastAPI()
lifecycle_app.include_router(router)

#: FastAPI 0.121 added `Depends(..., scope=...)`; older releases reject the keyword when the
#: module defining such an endpoint is imported, so it lives apart and joins only here
FUNCTION_SCOPE = "scope" in inspect.signature(Depends).parameters
if FUNCTION_SCOPE:
    from app.lifecycle_scoped import router as scoped_router

    lifecycle_app.include_router(scoped_router)
