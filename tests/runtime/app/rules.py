"""Endpoints for the rules proved in tests/runtime/test_rules_runtime.py, each beside its twin.

A separate app from `app.main` and `app.lifecycle`: these endpoints leak sessions, write rows
and create engines, and the other proofs must not see them. Sessions, dependencies and
engines live in `app.rules_db`.
"""
from __future__ import annotations

import asyncio

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, selectinload

from app import rules_db
from app.rules_db import (
    Item,
    Owner,
    count_items,
    count_items_own_session,
    count_owners,
    count_owners_own_session,
    get_async_session,
    get_db,
    get_db_close_after_yield,
    get_db_close_in_finally,
    get_db_engine_per_request,
    get_db_returned,
    get_db_shared_engine,
)

rules_app = FastAPI()


# --------------------------------------------------------------------------- LOOP201


@rules_app.get("/201/unclosed")
def items_unclosed_session():
    db = rules_db.SessionLocal()
    return {"count": len(db.scalars(select(Item)).all())}


@rules_app.get("/201/closed")
def items_closed_session():
    with rules_db.SessionLocal() as db:
        return {"count": len(db.scalars(select(Item)).all())}


# --------------------------------------------------------------------------- LOOP202


@rules_app.get("/202/returned")
def items_from_returned_session(db: Session = Depends(get_db_returned)):
    return {"count": len(db.scalars(select(Item)).all())}


@rules_app.get("/202/yielded")
def items_from_yielded_session(db: Session = Depends(get_db)):
    return {"count": len(db.scalars(select(Item)).all())}


# --------------------------------------------------------------------------- LOOP203


@rules_app.get("/203/after-yield/owners/{owner_id}")
def owner_close_after_yield(owner_id: int, db: Session = Depends(get_db_close_after_yield)):
    owner = db.get(Owner, owner_id)
    if owner is None:
        raise HTTPException(status_code=404, detail="no such owner")
    return {"name": owner.name}


@rules_app.get("/203/finally/owners/{owner_id}")
def owner_close_in_finally(owner_id: int, db: Session = Depends(get_db_close_in_finally)):
    owner = db.get(Owner, owner_id)
    if owner is None:
        raise HTTPException(status_code=404, detail="no such owner")
    return {"name": owner.name}


# --------------------------------------------------------------------------- LOOP206


@rules_app.get("/206/gather")
async def counts_gathered_on_one_session(session: AsyncSession = Depends(get_async_session)):
    owners, items = await asyncio.gather(count_owners(session), count_items(session))
    return {"owners": owners, "items": items}


@rules_app.get("/206/sequential")
async def counts_awaited_in_turn(session: AsyncSession = Depends(get_async_session)):
    owners = await count_owners(session)
    items = await count_items(session)
    return {"owners": owners, "items": items}


@rules_app.get("/206/own-sessions")
async def counts_gathered_on_own_sessions():
    owners, items = await asyncio.gather(count_owners_own_session(), count_items_own_session())
    return {"owners": owners, "items": items}


# --------------------------------------------------------------------------- LOOP204


def open_shared_session() -> None:
    """One session for the whole app, opened at startup (the test calls this: ASGITransport
    runs no lifespan)."""
    rules_app.state.shared_session = rules_db.AsyncSessionLocal()


async def close_shared_session() -> None:
    await rules_app.state.shared_session.close()


@rules_app.post("/204/app-state/items/{title}")
async def add_item_shared_session(title: str, request: Request):
    session: AsyncSession = request.app.state.shared_session
    session.add(Item(title=title))
    await session.commit()
    return {"added": title}


@rules_app.post("/204/per-request/items/{title}")
async def add_item_own_session(title: str, session: AsyncSession = Depends(get_async_session)):
    session.add(Item(title=title))
    await session.commit()
    return {"added": title}


# --------------------------------------------------------------------------- LOOP304


@rules_app.get("/304/lazy/owners/{owner_id}")
async def owner_items_lazy(owner_id: int, session: AsyncSession = Depends(get_async_session)):
    owner = await session.get(Owner, owner_id)
    return {"items": [item.title for item in owner.items]}


@rules_app.get("/304/selectin/owners/{owner_id}")
async def owner_items_selectin(owner_id: int, session: AsyncSession = Depends(get_async_session)):
    owner = await session.get(Owner, owner_id, options=[selectinload(Owner.items)])
    return {"items": [item.title for item in owner.items]}


# --------------------------------------------------------------------------- LOOP401


@rules_app.get("/401/per-id")
async def items_one_query_per_id(ids: list[int] = Query(), session: AsyncSession = Depends(get_async_session)):
    titles = []
    for item_id in ids:
        item = await session.get(Item, item_id)
        titles.append(item.title)
    return {"titles": titles}


@rules_app.get("/401/in")
async def items_one_query(ids: list[int] = Query(), session: AsyncSession = Depends(get_async_session)):
    items = (await session.scalars(select(Item).where(Item.id.in_(ids)).order_by(Item.id))).all()
    return {"titles": [item.title for item in items]}


# --------------------------------------------------------------------------- LOOP402


@rules_app.post("/402/commit-per-item")
async def add_items_commit_each(titles: list[str], session: AsyncSession = Depends(get_async_session)):
    for title in titles:
        session.add(Item(title=title))
        await session.commit()
    return {"added": len(titles)}


@rules_app.post("/402/commit-once")
async def add_items_commit_once(titles: list[str], session: AsyncSession = Depends(get_async_session)):
    for title in titles:
        session.add(Item(title=title))
    await session.commit()
    return {"added": len(titles)}


# --------------------------------------------------------------------------- LOOP403


@rules_app.get("/403/engine-per-request")
def items_engine_per_request(db: Session = Depends(get_db_engine_per_request)):
    return {"count": len(db.scalars(select(Item)).all())}


@rules_app.get("/403/shared-engine")
def items_shared_engine(db: Session = Depends(get_db_shared_engine)):
    return {"count": len(db.scalars(select(Item)).all())}
