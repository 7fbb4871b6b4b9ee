"""SQLite page caches stay small, so a long-running server's RSS levels off (docs/performance.md, "Soak")."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from talkd.storage.database import Database


@pytest.mark.skipif(bool(os.environ.get("TALKD_TEST_DATABASE_URL")), reason="SQLite's page cache")
async def test_sqlite_page_cache_is_bounded_per_connection(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'talkd.db'}")
    try:
        async with db.read() as conn:
            reader = (await conn.exec_driver_sql("PRAGMA cache_size")).scalar_one()
        async with db.transaction("probe") as conn:
            writer = (await conn.exec_driver_sql("PRAGMA cache_size")).scalar_one()
    finally:
        await db.close()
    # Negative values are KiB: at most 512 KiB for each of the pool's many readers, 2 MiB for the writer.
    assert -512 <= reader < 0
    assert -2048 <= writer < 0
