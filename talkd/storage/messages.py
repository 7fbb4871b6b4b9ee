"""The chat store. Ids are assigned in commit order per room, which is what lets a long poll ask for
"everything after id N" and never miss a message that committed late.

SQLite has one writer at a time, so its ids follow commits. On PostgreSQL a sequence value is taken
at insert time but becomes visible at commit, so two concurrent senders could commit out of id order;
locking the room's row before the insert (held to commit) makes the id order and the commit order agree.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from talkd.domain.conversation import ChatMessage, Verb
from talkd.storage.tables import messages, rooms


def _message(row: Any) -> ChatMessage:
    return ChatMessage(
        id=int(row.id), room_id=row.room_id, actor_type=row.actor_type, actor_id=row.actor_id,
        actor_display_name=row.actor_display_name, verb=Verb(row.verb), message=row.message,
        parameters=orjson.loads(row.parameters), reference_id=row.reference_id, parent_id=int(row.parent_id),
        created_at=int(row.created_at),
    )


class MessageStore:
    async def append(self, conn: AsyncConnection, *, room_id: int, actor_type: str, actor_id: str,
                     actor_display_name: str, verb: Verb, message: str, parameters: dict[str, object],
                     now: int, reference_id: str = "", parent_id: int = 0, touch_room: bool = True) -> ChatMessage:
        """Insert a message; `touch_room` also records it as the room's newest (a batch writer does
        that once per room instead)."""
        await self.lock_rooms(conn, [room_id])
        values = {
            "room_id": room_id, "actor_type": actor_type, "actor_id": actor_id,
            "actor_display_name": actor_display_name, "verb": verb.value, "message": message,
            "parameters": orjson.dumps(parameters).decode(), "reference_id": reference_id,
            "parent_id": parent_id, "created_at": now,
        }
        row = (await conn.execute(messages.insert().values(**values).returning(*messages.c))).one()
        if touch_room:
            await conn.execute(rooms.update().where(rooms.c.id == room_id)
                               .values(last_message_id=row.id, last_activity=now))
        return _message(row)

    async def lock_rooms(self, conn: AsyncConnection, room_ids: list[int]) -> set[int]:
        """Lock the rooms' rows for the rest of the transaction before any message id is drawn
        (PostgreSQL; SQLite's one writer already excludes everyone). Every message insert and every
        change of a room row takes this same lock first, so no two transactions can wait on each other
        in a cycle over it; several rooms are locked in id order. Returns the ids of the rooms that
        still exist (no one can delete them before this transaction ends)."""
        query = sa.select(rooms.c.id).where(rooms.c.id.in_(sorted(set(room_ids)))).order_by(rooms.c.id)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        return set((await conn.execute(query)).scalars())

    async def append_comments(self, conn: AsyncConnection, rows: list[dict[str, Any]], now: int) -> list[ChatMessage]:
        """Insert many messages in one batched statement, ids in the order of `rows` (each row: room_id,
        actor_type, actor_id, actor_display_name, message, parameters, reference_id, parent_id). The
        caller holds the rooms' order locks (lock_rooms)."""
        values = [{**row, "verb": Verb.COMMENT.value, "parameters": orjson.dumps(row["parameters"]).decode(),
                   "created_at": now} for row in rows]
        result = await conn.execute(messages.insert().returning(*messages.c, sort_by_parameter_order=True), values)
        return [_message(row) for row in result]

    async def get(self, conn: AsyncConnection, room_id: int, message_id: int) -> ChatMessage | None:
        query = sa.select(messages).where(messages.c.room_id == room_id, messages.c.id == message_id)
        row = (await conn.execute(query)).first()
        return _message(row) if row else None

    async def get_many(self, conn: AsyncConnection, message_ids: list[int]) -> dict[int, ChatMessage]:
        if not message_ids:
            return {}
        query = sa.select(messages).where(messages.c.id.in_(message_ids))
        return {int(row.id): _message(row) for row in await conn.execute(query)}

    async def history(self, conn: AsyncConnection, room_id: int, *, before: int | None, limit: int
                      ) -> list[ChatMessage]:
        """Newest first, older than `before` (or the newest of all)."""
        query = sa.select(messages).where(messages.c.room_id == room_id)
        if before is not None:
            query = query.where(messages.c.id < before)
        query = query.order_by(messages.c.id.desc()).limit(limit)
        return [_message(row) for row in await conn.execute(query)]

    async def after(self, conn: AsyncConnection, room_id: int, *, after: int, limit: int) -> list[ChatMessage]:
        """Oldest first, newer than `after`."""
        query = (sa.select(messages).where(messages.c.room_id == room_id, messages.c.id > after)
                 .order_by(messages.c.id).limit(limit))
        return [_message(row) for row in await conn.execute(query)]

    async def count_unread_many(self, conn: AsyncConnection, readers: list[tuple[int, int, str, str]], *,
                                cap: int = 1000) -> dict[int, int]:
        """For (room id, read up to, actor type, actor id) readers: per room, comments by others newer
        than their marker (system messages do not count), at most `cap`. One query per distinct actor
        (a room list has one)."""
        found: dict[int, int] = {}
        by_actor: dict[tuple[str, str], list[tuple[int, int]]] = {}
        for room_id, after, actor_type, actor_id in readers:
            by_actor.setdefault((actor_type, actor_id), []).append((room_id, after))
        for (actor_type, actor_id), marks in by_actor.items():
            newer = sa.or_(*[sa.and_(messages.c.room_id == room_id, messages.c.id > after) for room_id, after in marks])
            query = (sa.select(messages.c.room_id, sa.func.count())
                     .where(newer, messages.c.verb == Verb.COMMENT.value,
                            sa.not_(sa.and_(messages.c.actor_type == actor_type, messages.c.actor_id == actor_id)))
                     .group_by(messages.c.room_id))
            for room_id, count in await conn.execute(query):
                found[int(room_id)] = min(int(count), cap)
        return found

    async def update(self, conn: AsyncConnection, message_id: int, **fields: Any) -> None:
        if "parameters" in fields:
            fields["parameters"] = orjson.dumps(fields["parameters"]).decode()
        if "verb" in fields:
            fields["verb"] = Verb(fields["verb"]).value
        await conn.execute(messages.update().where(messages.c.id == message_id).values(**fields))

    async def system_actors(self, conn: AsyncConnection, room_id: int, names: list[str], *, since: int
                            ) -> list[tuple[str, str, str]]:
        """(actor type, id, display name) of who wrote the named system messages at or after `since`,
        each once, in order of first appearance (a call's participants, from its call_* messages)."""
        query = (sa.select(messages.c.actor_type, messages.c.actor_id, messages.c.actor_display_name)
                 .where(messages.c.room_id == room_id, messages.c.verb == Verb.SYSTEM.value,
                        messages.c.message.in_(names), messages.c.created_at >= since)
                 .order_by(messages.c.id))
        seen: dict[tuple[str, str], str] = {}
        for row in await conn.execute(query):
            seen.setdefault((row.actor_type, row.actor_id), row.actor_display_name)
        return [(kind, actor_id, name) for (kind, actor_id), name in seen.items()]
