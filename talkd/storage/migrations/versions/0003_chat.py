"""Chat reactions.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reactions",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("message_id", sa.BigInteger, nullable=False),
        sa.Column("actor_type", sa.String(32), nullable=False),
        sa.Column("actor_id", sa.String(255), nullable=False),
        sa.Column("actor_display_name", sa.String(255), nullable=False),
        sa.Column("reaction", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE",
                                name="fk_reactions_message_id_messages"),
        sa.PrimaryKeyConstraint("id", name="pk_reactions"),
        sa.UniqueConstraint("message_id", "actor_type", "actor_id", "reaction",
                            name="uq_reactions_message_id_actor_type_actor_id_reaction"),
    )


def downgrade() -> None:
    op.drop_table("reactions")
