"""Alembic migrations against the test database (SQLite, or PostgreSQL with TALKD_TEST_DATABASE_URL):
the migrated schema is exactly talkd/storage/tables.py, every revision goes down and up again, and an
existing database upgrades in place keeping its rows. Written for any number of revisions."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from talkd.storage import migrate
from talkd.storage.database import Database
from talkd.storage.tables import metadata
from tests.helpers.server import reset_postgres

POSTGRES_URL = os.environ.get("TALKD_TEST_DATABASE_URL", "")


@pytest.fixture
async def empty_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A database with no tables at all: a new SQLite file, or a dropped-and-recreated PG schema."""
    if POSTGRES_URL:
        reset_postgres(POSTGRES_URL)
        database = Database(POSTGRES_URL)
    else:
        database = Database(f"sqlite:///{tmp_path / 'migrations.db'}")
    yield database
    await database.close()
    if POSTGRES_URL:
        reset_postgres(POSTGRES_URL)  # leave no half-migrated schema to the next test's fixtures


def revisions_in_order() -> list[str]:
    """Every revision id from the first to head."""
    script = ScriptDirectory.from_config(migrate.alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions("base", "heads")))]


async def schema_differences(db: Database) -> list[Any]:
    def compare(sync_connection: Any) -> list[Any]:
        context = MigrationContext.configure(sync_connection, opts={"compare_type": True,
                                                                    "compare_server_default": False})
        return list(compare_metadata(context, metadata))

    async with db.engine.connect() as conn:
        return await conn.run_sync(compare)


async def table_names(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))


async def test_fresh_upgrade_matches_tables_py(empty_db: Database) -> None:
    assert await migrate.current_revision(empty_db) is None
    await migrate.upgrade(empty_db)
    assert await migrate.current_revision(empty_db) == migrate.head_revision()
    assert await schema_differences(empty_db) == []
    assert await table_names(empty_db) == set(metadata.tables) | {"alembic_version"}


async def test_downgrade_to_base_and_upgrade_again(empty_db: Database) -> None:
    await migrate.upgrade(empty_db)
    await migrate.downgrade(empty_db, "base")
    assert await migrate.current_revision(empty_db) is None
    assert await table_names(empty_db) <= {"alembic_version"}  # every talkd table is gone
    await migrate.upgrade(empty_db)
    assert await migrate.current_revision(empty_db) == migrate.head_revision()
    assert await schema_differences(empty_db) == []


async def test_each_revision_goes_down_and_up_again(empty_db: Database) -> None:
    """The stairway: for every revision, upgrade to it, step back one, and upgrade to it again."""
    revisions = revisions_in_order()
    assert revisions and revisions[-1] == migrate.head_revision()
    for revision in revisions:
        await migrate.upgrade(empty_db, revision)
        assert await migrate.current_revision(empty_db) == revision
        await migrate.downgrade(empty_db, "-1")
        await migrate.upgrade(empty_db, revision)
        assert await migrate.current_revision(empty_db) == revision
    assert await schema_differences(empty_db) == []


async def test_upgrade_head_twice_is_a_no_op(empty_db: Database) -> None:
    await migrate.upgrade(empty_db)
    await migrate.upgrade(empty_db)
    assert await migrate.current_revision(empty_db) == migrate.head_revision()


async def test_sqlite_database_of_the_first_revision_upgrades_in_place(tmp_path: Path) -> None:
    """A talkd.db written by the first release (a user in it) is upgraded where it lies, keeping the user.
    With one revision so far this is: data at that revision, then `upgrade head` keeps it."""
    path = tmp_path / "talkd.db"
    first = revisions_in_order()[0]
    db = Database(f"sqlite:///{path}")
    try:
        await migrate.upgrade(db, first)
        assert await migrate.current_revision(db) == first
        # Only the columns the first revision has, in plain SQL: later table definitions may differ.
        async with db.transaction("seed") as conn:
            await conn.execute(sa.text(
                "INSERT INTO users (id, id_lower, display_name, email, password_hash, enabled, created_at, "
                "last_login) VALUES ('Alice', 'alice', 'Alice L.', 'alice@example.org', '$argon2id$x', 1, "
                "1700000000, 0)"))
    finally:
        await db.close()

    db = Database(f"sqlite:///{path}")  # a new process, as after an upgrade of talkd
    try:
        await migrate.upgrade(db)
        assert await migrate.current_revision(db) == migrate.head_revision()
        async with db.read() as conn:
            rows = (await conn.execute(sa.text(
                "SELECT id, id_lower, display_name, email, password_hash, enabled, created_at FROM users"))).all()
        assert [tuple(r) for r in rows] == [("Alice", "alice", "Alice L.", "alice@example.org", "$argon2id$x", 1,
                                             1700000000)]
        assert await schema_differences(db) == []
    finally:
        await db.close()
