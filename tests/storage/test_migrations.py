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


# Ids are never reused (migration 0005) ------------------------------------------------------------

INTEGER_KEY_TABLES = sorted(
    t.name for t in metadata.sorted_tables
    if len(t.primary_key.columns) == 1 and isinstance(next(iter(t.primary_key.columns)).type, sa.Integer))


async def _insert_room(conn: Any, token: str) -> int:
    result = await conn.execute(sa.text(
        "INSERT INTO rooms (token, type, name, description, password_hash, read_only, lobby_state, lobby_timer, "
        "object_type, object_id, created_at, last_activity, last_message_id, call_started_at, call_flag, "
        "default_permissions, call_permissions) VALUES (:token, 2, :token, '', '', 0, 0, 0, '', '', 1700000000, "
        "1700000000, 0, 0, 0, 0, 0) RETURNING id"), {"token": token})
    return int(result.scalar_one())


async def _insert_message(conn: Any, room_id: int, text: str) -> int:
    result = await conn.execute(sa.text(
        "INSERT INTO messages (room_id, actor_type, actor_id, actor_display_name, verb, message, parameters, "
        "reference_id, parent_id, created_at) VALUES (:room, 'users', 'alice', 'Alice', 'comment', :text, '{}', '', "
        "0, 1700000000) RETURNING id"), {"room": room_id, "text": text})
    return int(result.scalar_one())


async def test_ids_are_not_reused_after_deleting_the_newest_rows(empty_db: Database) -> None:
    """The issue's lost deliveries: the newest rooms (and so the newest messages) are deleted, and the next
    room and message must still get ids never given out before."""
    await migrate.upgrade(empty_db)
    async with empty_db.transaction("seed") as conn:
        kept = await _insert_room(conn, "kept")
        await _insert_message(conn, kept, "old")
        doomed = [await _insert_room(conn, f"doomed{i}") for i in range(3)]
        doomed_messages = [await _insert_message(conn, room, "gone") for room in doomed]
    async with empty_db.transaction("delete") as conn:
        await conn.execute(sa.text("DELETE FROM rooms WHERE id <> :kept"), {"kept": kept})
    async with empty_db.transaction("again") as conn:
        fresh = await _insert_room(conn, "fresh")
        message = await _insert_message(conn, fresh, "new")
    assert fresh > max(doomed)
    assert message > max(doomed_messages)


async def test_sqlite_integer_keys_are_autoincrement(empty_db: Database) -> None:
    if empty_db.dialect != "sqlite":
        pytest.skip("PostgreSQL sequences never hand out an id twice")
    await migrate.upgrade(empty_db)
    async with empty_db.read() as conn:
        rows = (await conn.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'table'"))).all()
    autoincrement = sorted(name for name, sql in rows if "AUTOINCREMENT" in sql)
    assert autoincrement == INTEGER_KEY_TABLES


SEED_0004 = [
    "INSERT INTO users (id, id_lower, display_name, email, password_hash, enabled, created_at, last_login) "
    "VALUES ('alice', 'alice', 'Alice', NULL, 'x', 1, 1, 0), ('bob', 'bob', 'Bob', NULL, 'x', 1, 1, 0)",
    "INSERT INTO user_groups (id, display_name) VALUES ('admin', 'admin')",
    "INSERT INTO group_members (group_id, user_id) VALUES ('admin', 'alice')",
    "INSERT INTO app_passwords (id, user_id, name, token_hash, created_at, last_used) "
    "VALUES (3, 'alice', 'app', 'h', 1, 0)",
    "INSERT INTO web_sessions (id, token_hash, user_id, csrf_token, created_at, last_seen) VALUES "
    "(5, 'w1', NULL, 'c', 1, 1), (6, 'w2', 'bob', 'c', 1, 1)",
    "INSERT INTO rooms (id, token, type, name, description, password_hash, read_only, lobby_state, lobby_timer, "
    "object_type, object_id, created_at, last_activity, last_message_id, call_started_at, call_flag, "
    "default_permissions, call_permissions) VALUES "
    "(1, 'one', 2, 'One', 'd', '', 0, 0, 0, '', '', 1, 1, 41, 0, 0, 0, 0), "
    "(7, 'seven', 3, 'Seven', '', 'p', 0, 0, 0, '', '', 1, 1, 12, 0, 0, 0, 0)",
    "INSERT INTO attendees (id, room_id, actor_type, actor_id, display_name, participant_type, favorite, "
    "notification_level, last_read_message, last_mention_message, last_mention_direct, permissions, access_token) "
    "VALUES (2, 1, 'users', 'alice', 'Alice', 1, 1, 0, 41, 0, 0, 0, ''), "
    "(4, 7, 'users', 'bob', 'Bob', 1, 0, 0, 12, 0, 0, 0, ''), (9, 7, 'guests', 'g', 'Guest', 4, 0, 0, 0, 0, 0, 0, '')",
    "INSERT INTO room_sessions (id, session_id, attendee_id, web_session_id, in_call, last_ping) VALUES "
    "(8, 's1', 9, 5, 1, 1)",
    "INSERT INTO messages (id, room_id, actor_type, actor_id, actor_display_name, verb, message, parameters, "
    "reference_id, parent_id, created_at) VALUES (11, 7, 'users', 'bob', 'Bob', 'comment', 'hi', '{}', '', 0, 1), "
    "(12, 7, 'users', 'bob', 'Bob', 'comment', 're', '{}', 'r', 11, 1), "
    "(30, 1, 'users', 'alice', 'Alice', 'comment', 'x', '{}', '', 0, 1)",
    "INSERT INTO reactions (id, message_id, actor_type, actor_id, actor_display_name, reaction, created_at) VALUES "
    "(13, 11, 'users', 'bob', 'Bob', '👍', 1)",
    "INSERT INTO signaling_messages (id, recipient_id, sender, message, created_at) VALUES (21, 8, 's2', '{}', 1)",
]


async def _dump(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    async with db.read() as conn:
        return {name: [tuple(r) for r in (await conn.execute(sa.text(f'SELECT * FROM "{name}" ORDER BY 1, 2')))]
                for name in sorted(metadata.tables)}


async def _indexes(db: Database) -> list[tuple[Any, ...]]:
    async with db.read() as conn:
        rows = (await conn.execute(sa.text(
            "SELECT m.tbl_name, m.name, group_concat(i.name) FROM sqlite_master m, pragma_index_info(m.name) i "
            "WHERE m.type = 'index' GROUP BY m.name ORDER BY m.name"))).all()
    # SQLite numbers the indexes of unique constraints in the order they were declared: not part of the schema.
    return sorted((table, "" if name.startswith("sqlite_autoindex") else name, columns)
                  for table, name, columns in rows)


async def test_sqlite_database_of_0004_upgrades_in_place_keeping_rows_ids_keys_and_indexes(tmp_path: Path) -> None:
    """Every row keeps its id, foreign keys still hold and cascade, indexes stay, and no id that rows
    still refer to (message 41 is gone but is a read marker and a room's last message) is handed out."""
    path = tmp_path / "talkd.db"
    db = Database(f"sqlite:///{path}")
    try:
        await migrate.upgrade(db, "0004")
        async with db.transaction("seed") as conn:
            for statement in SEED_0004:
                await conn.execute(sa.text(statement))
        before, indexes_before = await _dump(db), await _indexes(db)
        await migrate.upgrade(db, "0005")
        assert await _dump(db) == before
        assert await _indexes(db) == indexes_before
        await migrate.upgrade(db)  # later revisions change tables the seed leaves empty (auth_failures)
        assert await migrate.current_revision(db) == migrate.head_revision()
        assert await _dump(db) == before
        assert await schema_differences(db) == []
        async with db.read() as conn:
            assert (await conn.execute(sa.text("PRAGMA foreign_key_check"))).all() == []
        async with db.transaction("use") as conn:
            assert await _insert_message(conn, 7, "next") == 42
            assert await _insert_room(conn, "new") == 8
            await conn.execute(sa.text("DELETE FROM rooms WHERE id = 7"))  # cascades as before
            for table, left in [("attendees", 1), ("room_sessions", 0), ("messages", 1), ("reactions", 0),
                                ("signaling_messages", 0), ("web_sessions", 2)]:
                assert (await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar() == left, table
        await migrate.downgrade(db, "0004")  # and back, keeping the rows
        async with db.read() as conn:
            assert (await conn.execute(sa.text("SELECT count(*) FROM rooms"))).scalar() == 2
    finally:
        await db.close()
