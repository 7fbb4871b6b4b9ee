"""Conversations: rooms, attendees, their sessions, and the chat store.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rooms",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("token", sa.String(32), nullable=False),
        sa.Column("type", sa.Integer, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.String(2000), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("read_only", sa.Integer, nullable=False),
        sa.Column("lobby_state", sa.Integer, nullable=False),
        sa.Column("lobby_timer", sa.BigInteger, nullable=False),
        sa.Column("object_type", sa.String(64), nullable=False),
        sa.Column("object_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_activity", sa.BigInteger, nullable=False),
        sa.Column("last_message_id", sa.BigInteger, nullable=False),
        sa.Column("call_started_at", sa.BigInteger, nullable=False),
        sa.Column("call_flag", sa.Integer, nullable=False),
        sa.Column("default_permissions", sa.Integer, nullable=False),
        sa.Column("call_permissions", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rooms"),
        sa.UniqueConstraint("token", name="uq_rooms_token"),
    )
    op.create_table(
        "attendees",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("room_id", sa.Integer, nullable=False),
        sa.Column("actor_type", sa.String(32), nullable=False),
        sa.Column("actor_id", sa.String(255), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("participant_type", sa.Integer, nullable=False),
        sa.Column("favorite", sa.Boolean, nullable=False),
        sa.Column("notification_level", sa.Integer, nullable=False),
        sa.Column("last_read_message", sa.BigInteger, nullable=False),
        sa.Column("last_mention_message", sa.BigInteger, nullable=False),
        sa.Column("last_mention_direct", sa.BigInteger, nullable=False),
        sa.Column("permissions", sa.Integer, nullable=False),
        sa.Column("access_token", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"], ondelete="CASCADE", name="fk_attendees_room_id_rooms"),
        sa.PrimaryKeyConstraint("id", name="pk_attendees"),
        sa.UniqueConstraint("room_id", "actor_type", "actor_id", name="uq_attendees_room_id_actor_type_actor_id"),
    )
    op.create_index("ix_attendees_actor_type_actor_id", "attendees", ["actor_type", "actor_id"])
    op.create_table(
        "room_sessions",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(512), nullable=False),
        sa.Column("attendee_id", sa.Integer, nullable=False),
        sa.Column("web_session_id", sa.Integer, nullable=True),
        sa.Column("in_call", sa.Integer, nullable=False),
        sa.Column("last_ping", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(["attendee_id"], ["attendees.id"], ondelete="CASCADE",
                                name="fk_room_sessions_attendee_id_attendees"),
        sa.ForeignKeyConstraint(["web_session_id"], ["web_sessions.id"], ondelete="CASCADE",
                                name="fk_room_sessions_web_session_id_web_sessions"),
        sa.PrimaryKeyConstraint("id", name="pk_room_sessions"),
        sa.UniqueConstraint("session_id", name="uq_room_sessions_session_id"),
    )
    op.create_index("ix_room_sessions_attendee_id", "room_sessions", ["attendee_id"])
    op.create_index("ix_room_sessions_web_session_id", "room_sessions", ["web_session_id"])
    op.create_index("ix_room_sessions_last_ping", "room_sessions", ["last_ping"])
    op.create_table(
        "messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), autoincrement=True, nullable=False),
        sa.Column("room_id", sa.Integer, nullable=False),
        sa.Column("actor_type", sa.String(32), nullable=False),
        sa.Column("actor_id", sa.String(255), nullable=False),
        sa.Column("actor_display_name", sa.String(255), nullable=False),
        sa.Column("verb", sa.String(32), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("reference_id", sa.String(64), nullable=False),
        sa.Column("parent_id", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(["room_id"], ["rooms.id"], ondelete="CASCADE", name="fk_messages_room_id_rooms"),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
    )
    op.create_index("ix_messages_room_id_id", "messages", ["room_id", "id"])


def downgrade() -> None:
    for table in ("messages", "room_sessions", "attendees", "rooms"):
        op.drop_table(table)
