"""LOOP205 with a function-scoped dependency (FastAPI 0.121+), whose teardown runs when the
endpoint returns, before the response and the background tasks, whatever the release.

Imported by `app.lifecycle` only when the installed FastAPI accepts `scope=`.
"""
from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Depends
from sqlalchemy.ext.asyncio import AsyncSession

from app.lifecycle_db import Note, get_tracked_session, read_note, read_note_own_session

router = APIRouter()


@router.post("/notes/task-with-function-scoped-session")
async def task_with_function_scoped_session(
    tasks: BackgroundTasks, session: AsyncSession = Depends(get_tracked_session, scope="function")
):
    note = Note(text="task")
    session.add(note)
    await session.commit()
    tasks.add_task(read_note, session, note.id)
    return {"id": note.id}


@router.post("/notes/task-with-function-scoped-own-session")
async def task_with_function_scoped_own_session(
    tasks: BackgroundTasks, session: AsyncSession = Depends(get_tracked_session, scope="function")
):
    note = Note(text="task")
    session.add(note)
    await session.commit()
    tasks.add_task(read_note_own_session, note.id)
    return {"id": note.id}
