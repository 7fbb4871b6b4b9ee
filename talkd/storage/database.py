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

log = logging.getLogger(__name__)

SLOW_TRANSACTION_SECONDS = 0.5
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
                Path(path).parent.mkdir(parents=True, exist_ok=True)
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

        @event.listens_for(sync_engine, "begin")
        def on_begin(connection: Any) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.info.get("write") else "BEGIN")

    @asynccontextmanager
    async def transaction(self, name: str) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed on success and rolled back on any exception."""
        started = time.monotonic()
        # SQLite: one writer at a time, queued here on the lock, on the writer's own connection.
        async with self._write_lock or contextlib.nullcontext(), self.write_engine.connect() as conn:
            conn.sync_connection.info["write"] = True  # type: ignore[union-attr]
            try:
                async with conn.begin():
                    yield conn
            finally:
                conn.sync_connection.info.pop("write", None)  # type: ignore[union-attr]
        elapsed = time.monotonic() - started
        if elapsed > SLOW_TRANSACTION_SECONDS:
            log.warning("slow transaction", extra={"txn": name, "seconds": round(elapsed, 3)})

    @staticmethod
    def in_write(conn: AsyncConnection) -> bool:
        """Whether `conn` belongs to a write transaction (see transaction())."""
        return bool(conn.sync_connection is not None and conn.sync_connection.info.get("write"))

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only snapshot (SQLite WAL readers never wait for the writer)."""
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    async def close(self) -> None:
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()
