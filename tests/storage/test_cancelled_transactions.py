"""A transaction whose task is cancelled (a client that timed out, a server shutting down) at any point
rolls back, gives its connection back to the pool and the SQLite writer lock to the next writer, and
logs nothing at ERROR (it used to log sqlalchemy.exc.MissingGreenlet from the cleanup)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os

import pytest
import sqlalchemy as sa

from talkd.storage.database import Database
from talkd.storage.tables import groups

POSTGRES = bool(os.environ.get("TALKD_TEST_DATABASE_URL"))
# Known, not talkd's cleanup: asyncpg cancelled while opening a connection (its SSL negotiation) leaves a
# future whose ConnectionError asyncio logs at ERROR when collected. Pools and locks are free all the same.
_ASYNCPG_CONNECT = pytest.mark.xfail(POSTGRES, reason="asyncpg: cancelled connect logs an unretrieved future",
                                     strict=False)
MAX_POINTS = 300  # event-loop turns before the cancel; the loop stops once the work finishes first


def _pools_free(db: Database) -> None:
    for engine in {db.engine, db.write_engine}:
        assert engine.pool.checkedout() == 0, engine.pool.status()  # type: ignore[attr-defined]
    if db._write_lock is not None:
        assert not db._write_lock.locked()


def _no_errors(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not bad, [(r.name, r.getMessage(), r.exc_info) for r in bad]


async def _write(db: Database, name: str) -> None:
    async with db.transaction("cancel-probe") as conn:
        await conn.execute(sa.insert(groups).values(id=name, display_name="before"))
        await conn.execute(sa.select(groups.c.id).where(groups.c.id == name))
        await conn.execute(sa.update(groups).where(groups.c.id == name).values(display_name="after"))
        await asyncio.sleep(0)
        await conn.execute(sa.select(sa.func.count()).select_from(groups))


async def _read(db: Database) -> None:
    async with db.read() as conn:
        await conn.execute(sa.select(groups.c.id))
        await conn.execute(sa.select(sa.func.count()).select_from(groups))


async def _cancel_at_every_point(db: Database, work: object) -> tuple[int, int]:
    """Run `work(n)` cancelled after n = 0, 1, 2... loop turns until it finishes uncancelled a few times."""
    cancelled = finished = 0
    for point in range(MAX_POINTS):
        task = asyncio.ensure_future(work(point))  # type: ignore[operator]
        for _ in range(point):
            await asyncio.sleep(0)
        if task.done():
            finished += 1
            await task
            if finished >= 3:
                break
            continue
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        cancelled += 1
        _pools_free(db)
    gc.collect()  # a connection dropped without its cleanup would be reported (at ERROR) here
    return cancelled, finished


@_ASYNCPG_CONNECT
async def test_a_cancelled_write_rolls_back_and_frees_its_connection(db: Database,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    cancelled, _ = await _cancel_at_every_point(db, lambda n: _write(db, f"g{n}"))
    assert cancelled > 0
    async with db.read() as conn:
        names = {row[0] for row in await conn.execute(sa.select(groups.c.id, groups.c.display_name))
                 if row[1] != "after"}
    assert not names, names  # nothing half-written: every committed row is complete
    # and the next writer gets through at once
    await asyncio.wait_for(_write(db, "after-all"), 30)
    _pools_free(db)
    _no_errors(caplog)


@_ASYNCPG_CONNECT
async def test_a_cancelled_read_frees_its_connection(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    cancelled, _ = await _cancel_at_every_point(db, lambda n: _read(db))
    assert cancelled > 0
    _no_errors(caplog)


async def test_writers_cancelled_while_queued_behind_another_leave_the_lock_free(
        db: Database, caplog: pytest.LogCaptureFixture) -> None:
    # One writer holds the transaction; others queue behind it (on the SQLite lock, or PostgreSQL's row
    # lock) and are cancelled while waiting, then the holder finishes.
    holding = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with db.transaction("holder") as conn:
            await conn.execute(sa.insert(groups).values(id="held", display_name="x"))
            holding.set()
            await release.wait()

    async def queued(n: int) -> None:
        async with db.transaction("queued") as conn:
            await conn.execute(sa.update(groups).where(groups.c.id == "held").values(display_name=f"q{n}"))

    first = asyncio.create_task(holder())
    await holding.wait()
    waiters = [asyncio.create_task(queued(n)) for n in range(5)]
    for _ in range(20):
        await asyncio.sleep(0)
    for task in waiters:
        task.cancel()
    release.set()
    await first
    for task in waiters:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    gc.collect()
    _pools_free(db)
    await asyncio.wait_for(queued(99), 30)
    _no_errors(caplog)
