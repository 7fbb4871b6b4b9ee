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
)

# Brute-force protection -------------------------------------------------------------------------

auth_failures = Table(
    "auth_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # "ip:<address>" or "user:<lower-case login>"
    Column("subject", String(300), nullable=False),
    Column("occurred_at", Float, nullable=False),
    Index("ix_auth_failures_subject_occurred_at", "subject", "occurred_at"),
)
