"""SQLite: ids are never reused (AUTOINCREMENT on every integer primary key).

Without AUTOINCREMENT SQLite hands out max(rowid) + 1, so deleting the newest rooms (and with them their
messages) makes the next room and its messages get ids that were already given out, and anything keyed
by them (caches, clients' last known message ids) sees the old thing. PostgreSQL sequences never go
back: nothing to do there.

SQLite cannot add AUTOINCREMENT to a table, so every table is rebuilt keeping its rows, ids, foreign
keys and indexes. Foreign keys stay on (they cannot be switched off inside the migration's
transaction), so no parent table may be dropped while a child still refers to it, or the drop would
cascade: all tables are renamed first (SQLite rewrites the references among them), the new tables are
created referring to each other, rows copied parents first, and the old tables dropped children first.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SKIP = {"alembic_version", "sqlite_sequence"}

# Ids of messages that clients may have seen even if the row is gone: a new message must be above them.
MESSAGE_ID_REFERENCES = [
    "SELECT MAX(last_message_id) FROM rooms",
    "SELECT MAX(last_read_message) FROM attendees",
    "SELECT MAX(last_mention_message) FROM attendees",
    "SELECT MAX(parent_id) FROM messages",
]


def _integer_key(table: sa.Table) -> bool:
    columns = list(table.primary_key.columns)
    return len(columns) == 1 and isinstance(columns[0].type, sa.Integer)


def _rebuild(*, autoincrement: bool) -> None:
    conn = op.get_bind()
    old = sa.MetaData()
    old.reflect(bind=conn, only=lambda name, _meta: name not in SKIP and not name.startswith("_old_"))
    tables = old.sorted_tables  # parents before children
    new = sa.MetaData()
    for table in tables:
        copy = table.to_metadata(new)
        copy.dialect_kwargs["sqlite_autoincrement"] = autoincrement and _integer_key(table)
    for table in tables:
        for index in table.indexes:
            conn.exec_driver_sql(f'DROP INDEX "{index.name}"')
        conn.exec_driver_sql(f'ALTER TABLE "{table.name}" RENAME TO "_old_{table.name}"')
    new.create_all(conn)
    for table in tables:
        columns = ", ".join(f'"{c.name}"' for c in table.columns)
        conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({columns}) SELECT {columns} FROM "_old_{table.name}"')
    for table in reversed(tables):
        conn.exec_driver_sql(f'DROP TABLE "_old_{table.name}"')
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        raise RuntimeError(f"foreign keys broken by the rebuild: {broken[:5]}")


def _seed_sequences() -> None:
    """Copying the rows moved each sequence to the table's largest id; message ids that rows still
    refer to (read markers, last messages) count as given out too."""
    conn = op.get_bind()
    if not conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'messages'").first():
        return
    highest = max([conn.exec_driver_sql(query).scalar() or 0 for query in MESSAGE_ID_REFERENCES])
    if not highest:
        return
    updated = conn.exec_driver_sql(
        "UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'messages'", (highest,)).rowcount
    if not updated:
        conn.exec_driver_sql("INSERT INTO sqlite_sequence (name, seq) VALUES ('messages', ?)", (highest,))


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _rebuild(autoincrement=True)
    _seed_sequences()


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _rebuild(autoincrement=False)
