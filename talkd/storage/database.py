"""The async engine for SQLite (embedded default) or PostgreSQL, and named transactions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util.concurrency import in_greenlet

from talkd.storage import datadir

log = logging.getLogger(__name__)

SLOW_TRANSACTION_SECONDS = 0.5
_WRITE = "talkd_write"  # execution option of write transactions' connections
# SQLite page cache per connection, in KiB (SQLite's default is 2000 on each of up to 31 connections).
# A reader's cache is dropped whenever the writer commits (WAL), so under chat load a big one holds
# little that is reused, and the pool's many readers filling it made the server's RSS creep up.
READER_CACHE_KIB = 512
WRITER_CACHE_KIB = 2048


def normalize_url(url: str) -> str:
    """Accept the plain forms users write and pick the async driver for each."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        return "postgresql+asyncpg://" + url[len("postgresql://"):]
    if url.startswith("sqlite://") and not url.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://"):]
    return url


class Database:
    """One engine per process. SQLite allows one writer at a time, so writes queue on a lock here
    instead of failing with 'database is locked'; PostgreSQL writers run concurrently."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalize_url(url)
        self.dialect = "sqlite" if self.url.startswith("sqlite") else "postgresql"
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            path = self.url.split(":///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(mode=datadir.DIR_MODE, parents=True, exist_ok=True)
                datadir.create_private(Path(path))  # SQLite gives -wal and -shm the same mode
            kwargs["connect_args"] = {"timeout": 30}
            kwargs.update(pool_size=10, max_overflow=20)
            # Every use ends its transaction explicitly, so the pool need not roll back on check-in
            # (one thread hop less per use).
            kwargs["pool_reset_on_return"] = None
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if self.dialect == "sqlite" else None
        # SQLite: the one writer gets a connection of its own, so a crowd of readers holding the read
        # pool can never make the writer (and everyone queued behind its lock) wait for a connection.
        self.write_engine: AsyncEngine = self.engine
        if self.dialect == "sqlite":
            self.write_engine = create_async_engine(self.url, **{**kwargs, "pool_size": 1, "max_overflow": 0})
            self._configure_sqlite(self.engine, READER_CACHE_KIB)
            self._configure_sqlite(self.write_engine, WRITER_CACHE_KIB)
        # Write transactions are told apart by an execution option of their Connection, not by state on
        # the pooled DBAPI connection: nothing has to be undone when one ends, however it ends (a
        # cancelled one may have lost its DBAPI connection, and touching it then means reconnecting
        # outside the greenlet: MissingGreenlet).
        self._writer: AsyncEngine = self.write_engine.execution_options(**{_WRITE: True})

    @staticmethod
    def _configure_sqlite(engine: AsyncEngine, cache_kib: int) -> None:
        sync_engine = engine.sync_engine

        @event.listens_for(sync_engine, "connect")
        def on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" below own transactions (pysqlite's implicit BEGIN is unreliable).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute(f"PRAGMA cache_size=-{cache_kib}")  # negative: KiB, not pages
            cursor.close()

        @event.listens_for(sync_engine.pool, "invalidate")
        def on_invalidate(dbapi_connection: Any, _record: Any, _exception: Any) -> None:
            # A transaction cancelled mid-statement is invalidated and its connection closed. A sqlite3
            # connection closed while a cursor still holds a statement lingers (a "zombie") with its
            # write lock until that cursor is collected, so the next writer waits busy_timeout: end the
            # transaction first. Only inside the greenlet, where the adapter can await.
            if in_greenlet():
                with contextlib.suppress(Exception):
                    dbapi_connection.rollback()

        @event.listens_for(sync_engine, "begin")
        def on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.get_execution_options().get(_WRITE)
                                       else "BEGIN")

    @asynccontextmanager
    async def transaction(self, name: str) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed on success and rolled back on any exception."""
        started = time.monotonic()
        # SQLite: one writer at a time, queued here on the lock, on the writer's own connection.
        async with self._write_lock or contextlib.nullcontext(), self._writer.connect() as conn, conn.begin():
            yield conn
        elapsed = time.monotonic() - started
        if elapsed > SLOW_TRANSACTION_SECONDS:
            log.warning("slow transaction", extra={"txn": name, "seconds": round(elapsed, 3)})

    @staticmethod
    def in_write(conn: AsyncConnection) -> bool:
        """Whether `conn` belongs to a write transaction (see transaction())."""
        sync = conn.sync_connection
        return bool(sync is not None and sync.get_execution_options().get(_WRITE))

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only snapshot (SQLite WAL readers never wait for the writer)."""
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    async def close(self) -> None:
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()
