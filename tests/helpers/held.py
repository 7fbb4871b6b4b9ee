"""Races made deterministic: concurrent calls let through to their writes only once all are waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import sqlalchemy as sa

from talkd.storage.database import Database
from tests.helpers.spreed import eventually

T = TypeVar("T")


async def _waiting_writers(db: Database) -> int:
    if db.dialect == "postgresql":
        async with db.read() as conn:
            return int((await conn.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"))).scalar_one())
    # SQLite: writers queue on the Database's lock (asyncio.Lock keeps its queue in _waiters).
    return len(getattr(db._write_lock, "_waiters", None) or ())


async def behind_held_memberships(db: Database, *calls: Awaitable[T]) -> list[T]:
    """Run `calls` at once while the test holds back every write to group memberships (SQLite: all
    writes), releasing them only when each call waits on a lock: whatever a call reads before it
    writes (the check of a check-then-act) it has read before any of the others wrote."""
    async with db.transaction("hold_memberships") as conn:
        if db.dialect == "postgresql":
            await conn.execute(sa.text("LOCK TABLE group_members IN SHARE MODE"))
        tasks = [asyncio.ensure_future(call) for call in calls]
        await eventually(lambda: _count_at_least(db, len(tasks)), f"{len(tasks)} writers waiting")
    return await asyncio.gather(*tasks)


async def _count_at_least(db: Database, wanted: int) -> bool:
    return await _waiting_writers(db) >= wanted
