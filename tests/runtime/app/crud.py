"""Sync helpers in their own module: what LOOP103 follows across modules."""
from __future__ import annotations

import sqlite3

from sqlalchemy import text
from sqlalchemy.orm import Session
from sqlmodel import Session as SQLModelSession

from app.db import SLOW_SQL, slow_select


def count_with_session(db: Session) -> int:
    return db.scalar(text(SLOW_SQL))


def count_with_sqlmodel(session: SQLModelSession) -> int:
    return session.exec(slow_select()).one()


def count_with_sqlite3(path: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(SLOW_SQL).fetchone()[0]
    finally:
        conn.close()
