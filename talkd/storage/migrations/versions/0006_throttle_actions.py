"""Brute-force records by action and address, with the name they tried (Nextcloud's Throttler).

The old rows counted per address or per account name and cannot be told apart by action, so they
are dropped: at worst an attacker's delay starts again from zero once.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_auth_failures_subject_occurred_at", table_name="auth_failures")
    op.drop_table("auth_failures")
    op.create_table(
        "auth_failures",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("occurred_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_auth_failures"),
        sqlite_autoincrement=True,  # as 0005 made every table
    )
    op.create_index("ix_auth_failures_action_address_occurred_at", "auth_failures",
                    ["action", "address", "occurred_at"])
    op.create_index("ix_auth_failures_occurred_at", "auth_failures", ["occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_auth_failures_occurred_at", table_name="auth_failures")
    op.drop_index("ix_auth_failures_action_address_occurred_at", table_name="auth_failures")
    op.drop_table("auth_failures")
    op.create_table(
        "auth_failures",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("occurred_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_auth_failures"),
        sqlite_autoincrement=True,  # as 0005 made every table
    )
    op.create_index("ix_auth_failures_subject_occurred_at", "auth_failures", ["subject", "occurred_at"])
