"""The internal-signaling queue: messages wait here for their recipient session's next pull.

Rows live in the database, not in process memory, so a message survives a restart and a pull on
one node finds what a sender on another node queued; the bus only says "look again"."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from talkd.storage.tables import signaling_messages


class SignalingStore:
    async def add(self, conn: AsyncConnection, *, recipient_id: int, sender: str, message: str, now: int) -> None:
        await conn.execute(signaling_messages.insert().values(recipient_id=recipient_id, sender=sender,
                                                              message=message, created_at=now))

    async def pending(self, conn: AsyncConnection, recipient_id: int) -> bool:
        query = sa.select(signaling_messages.c.id).where(signaling_messages.c.recipient_id == recipient_id).limit(1)
        return (await conn.execute(query)).first() is not None

    async def take(self, conn: AsyncConnection, recipient_id: int) -> list[str]:
        """The recipient's queued messages, oldest first, removed from the queue in the same transaction.
        One DELETE ... RETURNING: a message goes to exactly one of two overlapping pulls (PostgreSQL lets
        both read the rows before either deletes them); RETURNING has no order, hence the sort."""
        query = (signaling_messages.delete().where(signaling_messages.c.recipient_id == recipient_id)
                 .returning(signaling_messages.c.id, signaling_messages.c.message))
        return [row.message for row in sorted(await conn.execute(query), key=lambda row: row.id)]

    async def delete_older_than(self, conn: AsyncConnection, before: int) -> None:
        await conn.execute(signaling_messages.delete().where(signaling_messages.c.created_at < before))
