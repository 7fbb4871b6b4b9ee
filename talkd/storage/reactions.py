"""Reactions to chat messages: one row per actor, message and emoji."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from talkd.storage.tables import reactions


@dataclass(frozen=True)
class Reaction:
    message_id: int
    actor_type: str
    actor_id: str
    actor_display_name: str
    reaction: str
    created_at: int


def _reaction(row: Any) -> Reaction:
    return Reaction(message_id=int(row.message_id), actor_type=row.actor_type, actor_id=row.actor_id,
                    actor_display_name=row.actor_display_name, reaction=row.reaction, created_at=int(row.created_at))


class ReactionStore:
    async def add(self, conn: AsyncConnection, *, message_id: int, actor_type: str, actor_id: str,
                  actor_display_name: str, reaction: str, now: int) -> bool:
        """True when the reaction is new, False when the actor had already given it."""
        try:
            async with conn.begin_nested():
                await conn.execute(reactions.insert().values(
                    message_id=message_id, actor_type=actor_type, actor_id=actor_id,
                    actor_display_name=actor_display_name, reaction=reaction, created_at=now))
        except IntegrityError:
            return False
        return True

    async def remove(self, conn: AsyncConnection, *, message_id: int, actor_type: str, actor_id: str,
                     reaction: str) -> bool:
        result = await conn.execute(reactions.delete().where(
            reactions.c.message_id == message_id, reactions.c.actor_type == actor_type,
            reactions.c.actor_id == actor_id, reactions.c.reaction == reaction))
        return bool(result.rowcount)

    async def of_messages(self, conn: AsyncConnection, message_ids: list[int]) -> list[Reaction]:
        if not message_ids:
            return []
        query = (sa.select(reactions).where(reactions.c.message_id.in_(message_ids))
                 .order_by(reactions.c.id))
        return [_reaction(row) for row in await conn.execute(query)]
