"""Internal signaling: the per-session message queue.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signaling_messages",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), autoincrement=True, nullable=False),
        sa.Column("recipient_id", sa.Integer, nullable=False),
        sa.Column("sender", sa.String(512), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(["recipient_id"], ["room_sessions.id"], ondelete="CASCADE",
                                name="fk_signaling_messages_recipient_id_room_sessions"),
        sa.PrimaryKeyConstraint("id", name="pk_signaling_messages"),
    )
    op.create_index("ix_signaling_messages_recipient_id_id", "signaling_messages", ["recipient_id", "id"])
    op.create_index("ix_signaling_messages_created_at", "signaling_messages", ["created_at"])


def downgrade() -> None:
    op.drop_table("signaling_messages")
