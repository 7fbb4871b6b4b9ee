"""The whole schema, as SQLAlchemy Core tables. Migrations in migrations/versions create it step by step;
tests check that the migrated database and this file agree."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Accounts ---------------------------------------------------------------------------------------

users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),
    # Nextcloud user ids are unique case-insensitively and logins match either case.
    Column("id_lower", String(64), nullable=False, unique=True),
    Column("display_name", String(255), nullable=False),
    Column("email", String(255), nullable=True),
    Column("password_hash", String(255), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("created_at", BigInteger, nullable=False),
    Column("last_login", BigInteger, nullable=False, default=0),
)

groups = Table(
    "user_groups",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("display_name", String(255), nullable=False),
)

group_members = Table(
    "group_members",
    metadata,
    Column("group_id", String(64), ForeignKey("user_groups.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_group_members_user_id", "user_id"),
)

app_passwords = Table(
    "app_passwords",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    # HMAC-SHA256 of the password under the server secret: app passwords are long random strings,
    # so a keyed fast hash is safe and lets a login find its row by index.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("last_used", BigInteger, nullable=False, default=0),
    sqlite_autoincrement=True,
)

# Browser and guest sessions ---------------------------------------------------------------------

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("last_seen", BigInteger, nullable=False, index=True),
    sqlite_autoincrement=True,
)

login_flows = Table(
    "login_flows",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("poll_token_hash", String(64), nullable=False, unique=True),
    Column("login_token_hash", String(64), nullable=False, unique=True),
    Column("client_name", String(255), nullable=False),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=True),
    Column("created_at", BigInteger, nullable=False, index=True),
    sqlite_autoincrement=True,
)

# Brute-force protection -------------------------------------------------------------------------

auth_failures = Table(
    "auth_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # Nextcloud's bruteforce_attempts: what was tried ("login", "talkRoomPassword", "talkRoomToken"),
    # from which address (an IPv6 one as its /64), and what it named (lower-case login, room token),
    # the metadata a success resets by.
    Column("action", String(32), nullable=False),
    Column("address", String(64), nullable=False),
    Column("subject", String(300), nullable=False),
    Column("occurred_at", Float, nullable=False),
    Index("ix_auth_failures_action_address_occurred_at", "action", "address", "occurred_at"),
    Index("ix_auth_failures_occurred_at", "occurred_at"),
    sqlite_autoincrement=True,
)

# Conversations ----------------------------------------------------------------------------------

rooms = Table(
    "rooms",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token", String(32), nullable=False, unique=True),
    Column("type", Integer, nullable=False),
    Column("name", String(255), nullable=False, default=""),
    Column("description", String(2000), nullable=False, default=""),
    Column("password_hash", String(255), nullable=False, default=""),
    Column("read_only", Integer, nullable=False, default=0),
    Column("lobby_state", Integer, nullable=False, default=0),
    Column("lobby_timer", BigInteger, nullable=False, default=0),
    Column("object_type", String(64), nullable=False, default=""),
    Column("object_id", String(64), nullable=False, default=""),
    Column("created_at", BigInteger, nullable=False),
    Column("last_activity", BigInteger, nullable=False),
    Column("last_message_id", BigInteger, nullable=False, default=0),
    Column("call_started_at", BigInteger, nullable=False, default=0),
    Column("call_flag", Integer, nullable=False, default=0),
    Column("default_permissions", Integer, nullable=False, default=0),
    Column("call_permissions", Integer, nullable=False, default=0),
    sqlite_autoincrement=True,
)

attendees = Table(
    "attendees",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("room_id", Integer, ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False),
    Column("actor_type", String(32), nullable=False),
    Column("actor_id", String(255), nullable=False),
    Column("display_name", String(255), nullable=False, default=""),
    Column("participant_type", Integer, nullable=False),
    Column("favorite", Boolean, nullable=False, default=False),
    Column("notification_level", Integer, nullable=False, default=0),
    Column("last_read_message", BigInteger, nullable=False, default=0),
    Column("last_mention_message", BigInteger, nullable=False, default=0),
    Column("last_mention_direct", BigInteger, nullable=False, default=0),
    Column("permissions", Integer, nullable=False, default=0),
    Column("access_token", String(64), nullable=False, default=""),
    UniqueConstraint("room_id", "actor_type", "actor_id"),
    # "Which rooms is this user in" is the room list's first query.
    Index("ix_attendees_actor_type_actor_id", "actor_type", "actor_id"),
    sqlite_autoincrement=True,
)

room_sessions = Table(
    "room_sessions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(512), nullable=False, unique=True),
    Column("attendee_id", Integer, ForeignKey("attendees.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("web_session_id", Integer, ForeignKey("web_sessions.id", ondelete="CASCADE"), nullable=True, index=True),
    Column("in_call", Integer, nullable=False, default=0),
    Column("last_ping", BigInteger, nullable=False, index=True),
    sqlite_autoincrement=True,
)

# The chat store: comments and system messages. Ids grow in commit order within a room, so a waiter
# that passes its last known id never misses one (see storage/messages.py).
messages = Table(
    "messages",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("room_id", Integer, ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False),
    Column("actor_type", String(32), nullable=False),
    Column("actor_id", String(255), nullable=False),
    Column("actor_display_name", String(255), nullable=False, default=""),
    # comment, system, command, comment_deleted (Talk's verbs)
    Column("verb", String(32), nullable=False),
    Column("message", Text, nullable=False),
    Column("parameters", Text, nullable=False, default="{}"),
    Column("reference_id", String(64), nullable=False, default=""),
    Column("parent_id", BigInteger, nullable=False, default=0),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_messages_room_id_id", "room_id", "id"),
    sqlite_autoincrement=True,
)

reactions = Table(
    "reactions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", BigInteger, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("actor_type", String(32), nullable=False),
    Column("actor_id", String(255), nullable=False),
    Column("actor_display_name", String(255), nullable=False, default=""),
    Column("reaction", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("message_id", "actor_type", "actor_id", "reaction"),
    sqlite_autoincrement=True,
)

# Internal signaling: messages queued for one room session until its next pull (Talk's
# talk_internalsignaling). Rows go with their recipient's session; waiting happens on the bus.
signaling_messages = Table(
    "signaling_messages",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("recipient_id", Integer, ForeignKey("room_sessions.id", ondelete="CASCADE"), nullable=False),
    Column("sender", String(512), nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_signaling_messages_recipient_id_id", "recipient_id", "id"),
    Index("ix_signaling_messages_created_at", "created_at"),
    sqlite_autoincrement=True,
)
