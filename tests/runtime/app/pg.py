"""PostgreSQL twins (psycopg2 vs asyncpg), served only when the test has a server to talk to
(LOOPSAFE_TEST_PG_DSN). The slow query is `pg_sleep`: the wait happens in the server, so the
client blocks in the driver's socket read, exactly like a slow production query.
"""
from __future__ import annotations

import asyncpg
import psycopg2
from fastapi import APIRouter

from app.db import settings

router = APIRouter()


@router.get("/pg/psycopg2-async")
async def psycopg2_in_async():
    """LOOP102 + LOOP101 + LOOP105: libpq blocks the loop while the server sleeps."""
    conn = psycopg2.connect(settings.pg_dsn)
    try:
        cur = conn.cursor()
        cur.execute("SELECT pg_sleep(%s), 1", (settings.pg_sleep,))
        return {"count": cur.fetchone()[1]}
    finally:
        conn.close()


@router.get("/pg/psycopg2-def")
def psycopg2_in_def():
    conn = psycopg2.connect(settings.pg_dsn)
    try:
        cur = conn.cursor()
        cur.execute("SELECT pg_sleep(%s), 1", (settings.pg_sleep,))
        return {"count": cur.fetchone()[1]}
    finally:
        conn.close()


@router.get("/pg/asyncpg")
async def asyncpg_awaited():
    conn = await asyncpg.connect(settings.pg_dsn)
    try:
        row = await conn.fetchrow("SELECT pg_sleep($1), 1", settings.pg_sleep)
        return {"count": row[1]}
    finally:
        await conn.close()
