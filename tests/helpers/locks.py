"""Making races happen in a fixed order: a test holds a lock in a transaction of its own, starts the
competing calls, and waits until they queue behind it (on PostgreSQL's locks, or on SQLite's one writer)
before it lets go."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

import sqlalchemy as sa

from talkd.storage.database import Database
from tests.helpers.spreed import eventually

T = TypeVar("T")

_WAITING = sa.text("SELECT count(*) FROM pg_stat_activity "
                   "WHERE datname = current_database() AND wait_event_type = 'Lock'")


async def waiting_for_locks(db: Database) -> int:
    """Transactions of this database waiting for a lock another one holds: PostgreSQL's lock waits, or
    the writers queued on SQLite's one writer lock (asyncio.Lock keeps its queue in _waiters)."""
    if db.dialect == "postgresql":
        async with db.read() as conn:
            return int((await conn.execute(_WAITING)).scalar_one())
    return len(getattr(db._write_lock, "_waiters", None) or ())


async def until_waiting_for_locks(db: Database, count: int, *, timeout: float = 10) -> None:
    """Until `count` transactions wait for a lock; fails after `timeout` seconds rather than hanging."""

    async def enough() -> bool:
        return await waiting_for_locks(db) >= count

    await eventually(enough, f"{count} transactions waiting for a lock", timeout)


async def behind_held_memberships(db: Database, *calls: Awaitable[T]) -> list[T]:
    """Run `calls` at once while the test holds back every write to group memberships (SQLite: all
    writes), releasing them only when each call waits on a lock: whatever a call reads before it
    writes (the check of a check-then-act) it has read before any of the others wrote."""
    async with db.transaction("hold_memberships") as conn:
        if db.dialect == "postgresql":
            await conn.execute(sa.text("LOCK TABLE group_members IN SHARE MODE"))
        tasks = [asyncio.ensure_future(call) for call in calls]
        await until_waiting_for_locks(db, len(tasks))
    return await asyncio.gather(*tasks)
