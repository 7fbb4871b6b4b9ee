"""Making races happen in a fixed order: a test holds a lock in a transaction of its own, starts the
competing requests, and waits until they queue (on PostgreSQL's locks, or in a component) before it lets go."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import sqlalchemy as sa

from talkd.storage.database import Database

_WAITING = sa.text("SELECT count(*) FROM pg_stat_activity "
                   "WHERE datname = current_database() AND wait_event_type = 'Lock'")


async def until_waiting_for_locks(db: Database, count: int, *, timeout: float = 10) -> None:
    """Until `count` transactions of this database wait for a lock another one holds (PostgreSQL).
    Fails after `timeout` seconds rather than hanging when they never do."""

    async def poll() -> None:
        while True:
            async with db.read() as conn:
                if (await conn.execute(_WAITING)).scalar_one() >= count:
                    return
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


async def until(condition: Callable[[], bool], *, timeout: float = 10) -> None:
    """Until `condition()` holds; fails after `timeout` seconds rather than hanging."""

    async def poll() -> None:
        while True:  # the condition is a component's state, which no event announces
            if condition():
                return
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)
