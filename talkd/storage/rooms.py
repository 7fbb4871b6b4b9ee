"""Rooms, attendees and room sessions. Every method runs on the caller's connection, so a domain
operation (a change plus its system message) commits or rolls back as one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from talkd.domain.conversation import ActorType, Attendee, ParticipantType, Room, RoomType, Session
from talkd.errors import AlreadyExists
from talkd.ids import RoomToken
from talkd.storage.tables import attendees, room_sessions, rooms

Conn = AsyncConnection

# The first half of the key of the advisory locks taken on one-to-one pairs (the second: the pair's hash;
# two pairs sharing a hash only wait for each other).
ONE_TO_ONE_LOCKS = 0x746B_0001


def storable(text: str) -> bool:
    """Whether both databases can hold (and so compare) `text`: PostgreSQL text refuses NUL, so a
    token with one names no room instead of failing the query."""
    return "\x00" not in text


def _room(row: Any) -> Room:
    return Room(
        id=row.id, token=RoomToken(row.token), type=RoomType(row.type), name=row.name,
        description=row.description, password_hash=row.password_hash, read_only=row.read_only,
        lobby_state=row.lobby_state, lobby_timer=int(row.lobby_timer), object_type=row.object_type,
        object_id=row.object_id, created_at=int(row.created_at), last_activity=int(row.last_activity),
        last_message_id=int(row.last_message_id), call_started_at=int(row.call_started_at),
        call_flag=row.call_flag, default_permissions=row.default_permissions,
        call_permissions=row.call_permissions,
    )


def _attendee(row: Any) -> Attendee:
    return Attendee(
        id=row.id, room_id=row.room_id, actor_type=ActorType(row.actor_type), actor_id=row.actor_id,
        display_name=row.display_name, participant_type=ParticipantType(row.participant_type),
        favorite=bool(row.favorite), notification_level=row.notification_level,
        last_read_message=int(row.last_read_message), last_mention_message=int(row.last_mention_message),
        last_mention_direct=int(row.last_mention_direct), permissions=row.permissions,
        access_token=row.access_token,
    )


def _session(row: Any) -> Session:
    return Session(id=row.id, session_id=row.session_id, attendee_id=row.attendee_id,
                   web_session_id=row.web_session_id, in_call=row.in_call, last_ping=int(row.last_ping))


class _Row:
    """Attribute access over a dict, so joined rows reuse the row mappers."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.__dict__.update(fields)


_ROOM_DEFAULTS: dict[str, Any] = {
    "description": "", "password_hash": "", "read_only": 0, "lobby_state": 0, "lobby_timer": 0,
    "object_type": "", "object_id": "", "last_message_id": 0, "call_started_at": 0, "call_flag": 0,
    "default_permissions": 0, "call_permissions": 0,
}


class RoomStore:
    async def create(self, conn: Conn, *, token: RoomToken, room_type: RoomType, name: str, now: int,
                     **fields: Any) -> Room:
        values = {**_ROOM_DEFAULTS, **fields, "token": token, "type": int(room_type), "name": name,
                  "created_at": now, "last_activity": now}
        try:
            async with conn.begin_nested():
                result = await conn.execute(rooms.insert().values(**values).returning(*rooms.c))
        except IntegrityError:
            raise AlreadyExists("Conversation token taken") from None
        return _room(result.one())

    async def by_token(self, conn: Conn, token: str, *, for_update: bool = False) -> Room | None:
        if not storable(token):
            return None
        query = sa.select(rooms).where(rooms.c.token == token)
        if for_update and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = (await conn.execute(query)).first()
        return _room(row) if row else None

    async def with_attendee(self, conn: Conn, token: str, actor_type: ActorType, actor_id: str
                            ) -> tuple[Room, Attendee | None] | None:
        """The room and this actor's attendee row in one query (the hot path of every request)."""
        if not storable(token):
            return None
        row = (await conn.execute(_ROOM_WITH_ATTENDEE, {"token": token, "actor_type": actor_type.value,
                                                        "actor_id": actor_id})).first()
        if row is None:
            return None
        values = row._mapping
        attendee = None
        if values["a_id"] is not None:
            attendee = _attendee(_Prefixed(values, "a_"))
        return _room(row), attendee

    async def by_id(self, conn: Conn, room_id: int) -> Room | None:
        row = (await conn.execute(sa.select(rooms).where(rooms.c.id == room_id))).first()
        return _room(row) if row else None

    async def one_to_one(self, conn: Conn, name: str, *, for_update: bool = False) -> Room | None:
        """A one-to-one room is named by the JSON list of its two sorted user ids, as Talk does.
        `for_update` (to create the room when there is none): on PostgreSQL, hold the pair's advisory lock
        until the transaction ends, so two creates of one pair, in any processes, cannot both find none
        (SQLite's one writer already excludes that); then lock the room's row, as every writer does."""
        query = sa.select(rooms).where(rooms.c.type == int(RoomType.ONE_TO_ONE), rooms.c.name == name)
        if for_update and conn.dialect.name == "postgresql":
            await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(ONE_TO_ONE_LOCKS, sa.func.hashtext(name))))
            query = query.with_for_update()
        row = (await conn.execute(query)).first()
        return _room(row) if row else None

    async def with_empty_calls(self, conn: Conn) -> list[int]:
        """Rooms that have a call but no session in it (their sessions went without leaving it, as when
        a browser session expires and its room sessions go with it)."""
        in_call = (sa.select(room_sessions.c.id)
                   .join(attendees, attendees.c.id == room_sessions.c.attendee_id)
                   .where(attendees.c.room_id == rooms.c.id, room_sessions.c.in_call > 0))
        query = sa.select(rooms.c.id).where(rooms.c.call_started_at > 0, ~in_call.exists())
        return [int(row[0]) for row in await conn.execute(query)]

    async def update(self, conn: Conn, room_id: int, **fields: Any) -> None:
        await conn.execute(rooms.update().where(rooms.c.id == room_id).values(**fields))

    async def record_newest(self, conn: Conn, newest: dict[int, int], now: int) -> None:
        """Rooms' newest message ids (room id → message id) and activity time, in one batched statement."""
        if not newest:
            return
        query = (rooms.update().where(rooms.c.id == sa.bindparam("r_id"))
                 .values(last_message_id=sa.bindparam("m_id"), last_activity=now))
        await conn.execute(query, [{"r_id": r, "m_id": m} for r, m in newest.items()])

    async def last_message_ids(self, conn: Conn, room_ids: list[int]) -> dict[int, int]:
        query = sa.select(rooms.c.id, rooms.c.last_message_id).where(rooms.c.id.in_(room_ids))
        return {row.id: int(row.last_message_id) for row in await conn.execute(query)}

    async def delete(self, conn: Conn, room_id: int) -> None:
        await conn.execute(rooms.delete().where(rooms.c.id == room_id))

    async def of_actor(self, conn: Conn, actor_type: ActorType, actor_id: str, *,
                       modified_since: int = 0) -> list[tuple[Room, Attendee]]:
        """Every room the actor attends, with their attendee row (two indexed queries)."""
        query = sa.select(attendees).where(attendees.c.actor_type == actor_type.value,
                                           attendees.c.actor_id == actor_id)
        mine = {row.room_id: _attendee(row) for row in await conn.execute(query)}
        if not mine:
            return []
        room_query = sa.select(rooms).where(rooms.c.id.in_(list(mine)))
        if modified_since:
            room_query = room_query.where(rooms.c.last_activity > modified_since)
        return [(_room(row), mine[row.id]) for row in await conn.execute(room_query)]


class _Prefixed:
    """Attribute access to the `a_`-prefixed attendee columns of a joined row."""

    def __init__(self, values: Any, prefix: str) -> None:
        self._values = values
        self._prefix = prefix

    def __getattr__(self, name: str) -> Any:
        return self._values[self._prefix + name]


_ROOM_WITH_ATTENDEE = (
    sa.select(rooms, *[c.label(f"a_{c.name}") for c in attendees.c])
    .select_from(rooms.outerjoin(attendees, sa.and_(
        attendees.c.room_id == rooms.c.id, attendees.c.actor_type == sa.bindparam("actor_type"),
        attendees.c.actor_id == sa.bindparam("actor_id"))))
    .where(rooms.c.token == sa.bindparam("token"))
)


class AttendeeStore:
    async def add(self, conn: Conn, *, room_id: int, actor_type: ActorType, actor_id: str, display_name: str,
                  participant_type: ParticipantType, last_read_message: int = 0,
                  access_token: str = "") -> Attendee:
        values = {
            "room_id": room_id, "actor_type": actor_type.value, "actor_id": actor_id,
            "display_name": display_name, "participant_type": int(participant_type), "favorite": False,
            "notification_level": 0, "last_read_message": last_read_message, "last_mention_message": 0,
            "last_mention_direct": 0, "permissions": 0, "access_token": access_token,
        }
        try:
            async with conn.begin_nested():
                result = await conn.execute(attendees.insert().values(**values).returning(*attendees.c))
        except IntegrityError:
            raise AlreadyExists("Already a participant") from None
        return _attendee(result.one())

    async def find(self, conn: Conn, room_id: int, actor_type: ActorType, actor_id: str) -> Attendee | None:
        query = sa.select(attendees).where(attendees.c.room_id == room_id,
                                           attendees.c.actor_type == actor_type.value,
                                           attendees.c.actor_id == actor_id)
        row = (await conn.execute(query)).first()
        return _attendee(row) if row else None

    async def by_id(self, conn: Conn, room_id: int, attendee_id: int) -> Attendee | None:
        query = sa.select(attendees).where(attendees.c.room_id == room_id, attendees.c.id == attendee_id)
        row = (await conn.execute(query)).first()
        return _attendee(row) if row else None

    async def of_room(self, conn: Conn, room_id: int) -> list[Attendee]:
        query = sa.select(attendees).where(attendees.c.room_id == room_id).order_by(attendees.c.id)
        return [_attendee(row) for row in await conn.execute(query)]

    async def update(self, conn: Conn, attendee_id: int, **fields: Any) -> None:
        await conn.execute(attendees.update().where(attendees.c.id == attendee_id).values(**fields))

    async def delete(self, conn: Conn, attendee_id: int) -> None:
        await conn.execute(attendees.delete().where(attendees.c.id == attendee_id))

    async def raise_read_markers(self, conn: Conn, markers: dict[int, int]) -> None:
        """Move read markers (attendee id → message id) forward only, in one batched statement (a
        batched marker never undoes a newer explicit one)."""
        if not markers:
            return
        query = (attendees.update()
                 .where(attendees.c.id == sa.bindparam("a_id"),
                        attendees.c.last_read_message < sa.bindparam("m_id"))
                 .values(last_read_message=sa.bindparam("m_id")))
        # In id order: two processes' flushes then lock common rows in one order and never deadlock.
        await conn.execute(query, [{"a_id": a, "m_id": m} for a, m in sorted(markers.items())])

    async def of_rooms(self, conn: Conn, room_ids: Sequence[int], actor_type: ActorType) -> list[Attendee]:
        if not room_ids:
            return []
        query = (sa.select(attendees).where(attendees.c.room_id.in_(list(room_ids)),
                                            attendees.c.actor_type == actor_type.value).order_by(attendees.c.id))
        return [_attendee(row) for row in await conn.execute(query)]

    async def type_counts(self, conn: Conn, room_ids: Sequence[int]) -> dict[int, dict[int, int]]:
        """Per room, how many attendees of each participant type."""
        found: dict[int, dict[int, int]] = {room_id: {} for room_id in room_ids}
        if not room_ids:
            return found
        query = (sa.select(attendees.c.room_id, attendees.c.participant_type, sa.func.count())
                 .where(attendees.c.room_id.in_(list(room_ids)))
                 .group_by(attendees.c.room_id, attendees.c.participant_type))
        for room_id, kind, count in await conn.execute(query):
            found[room_id][int(kind)] = int(count)
        return found


class SessionStore:
    async def create(self, conn: Conn, *, attendee_id: int, session_id: str, web_session_id: int | None,
                     now: int) -> Session:
        values = {"attendee_id": attendee_id, "session_id": session_id, "web_session_id": web_session_id,
                  "in_call": 0, "last_ping": now}
        result = await conn.execute(room_sessions.insert().values(**values).returning(*room_sessions.c))
        return _session(result.one())

    async def by_session_id(self, conn: Conn, session_id: str) -> Session | None:
        row = (await conn.execute(sa.select(room_sessions).where(room_sessions.c.session_id == session_id))).first()
        return _session(row) if row else None

    async def of_attendees(self, conn: Conn, attendee_ids: Sequence[int]) -> dict[int, list[Session]]:
        found: dict[int, list[Session]] = {attendee_id: [] for attendee_id in attendee_ids}
        if not attendee_ids:
            return found
        query = (sa.select(room_sessions).where(room_sessions.c.attendee_id.in_(list(attendee_ids)))
                 .order_by(room_sessions.c.id))
        for row in await conn.execute(query):
            found[row.attendee_id].append(_session(row))
        return found

    async def in_room_by_web_session(self, conn: Conn, room_id: int, web_session_id: int
                                     ) -> tuple[Attendee, Session] | None:
        query = (sa.select(room_sessions, attendees.c.id.label("a_id"))
                 .join(attendees, attendees.c.id == room_sessions.c.attendee_id)
                 .where(attendees.c.room_id == room_id, room_sessions.c.web_session_id == web_session_id)
                 .order_by(room_sessions.c.id.desc()))
        row = (await conn.execute(query)).first()
        if row is None:
            return None
        attendee = await AttendeeStore().by_id(conn, room_id, row.a_id)
        assert attendee is not None
        return attendee, _session(row)

    async def delete(self, conn: Conn, session_pk: int) -> None:
        await conn.execute(room_sessions.delete().where(room_sessions.c.id == session_pk))

    async def delete_for_web_session(self, conn: Conn, attendee_id: int, web_session_id: int) -> None:
        await conn.execute(room_sessions.delete().where(room_sessions.c.attendee_id == attendee_id,
                                                        room_sessions.c.web_session_id == web_session_id))

    async def ping(self, conn: Conn, pings: dict[tuple[int, int | None], int]) -> None:
        """Clients (attendee id, web session id or None) alive at a time: their sessions' lastPing, all
        of an attendee's sessions for a client without a cookie. Two batched statements."""
        # In attendee order: two processes' flushes then lock common rows in one order and never deadlock.
        ordered = sorted(pings.items(), key=lambda item: (item[0][0], item[0][1] is not None, item[0][1] or 0))
        by_cookie = [{"a_id": a, "w_id": w, "at": at} for (a, w), at in ordered if w is not None]
        without = [{"a_id": a, "at": at} for (a, w), at in ordered if w is None]
        base = room_sessions.update().where(room_sessions.c.attendee_id == sa.bindparam("a_id"),
                                            room_sessions.c.last_ping < sa.bindparam("at"))
        if by_cookie:
            await conn.execute(base.where(room_sessions.c.web_session_id == sa.bindparam("w_id"))
                               .values(last_ping=sa.bindparam("at")), by_cookie)
        if without:
            await conn.execute(base.values(last_ping=sa.bindparam("at")), without)

    async def update(self, conn: Conn, session_pk: int, **fields: Any) -> None:
        await conn.execute(room_sessions.update().where(room_sessions.c.id == session_pk).values(**fields))

    async def by_pk(self, conn: Conn, session_pk: int) -> Session | None:
        row = (await conn.execute(sa.select(room_sessions).where(room_sessions.c.id == session_pk))).first()
        return _session(row) if row else None

    async def of_room(self, conn: Conn, room_id: int, *, in_call: bool = False, pinged_after: int | None = None
                      ) -> list[tuple[Attendee, Session]]:
        """Every session in the room with its attendee, oldest session first; only those in the call
        or pinged after a time when asked."""
        query = (sa.select(room_sessions, *[c.label(f"a_{c.name}") for c in attendees.c])
                 .join(attendees, attendees.c.id == room_sessions.c.attendee_id)
                 .where(attendees.c.room_id == room_id).order_by(room_sessions.c.id))
        if in_call:
            query = query.where(room_sessions.c.in_call > 0)
        if pinged_after is not None:
            query = query.where(room_sessions.c.last_ping > pinged_after)
        found = []
        for row in await conn.execute(query):
            fields = {c.name: getattr(row, f"a_{c.name}") for c in attendees.c}
            found.append((_attendee(_Row(fields)), _session(row)))
        return found

    async def stale(self, conn: Conn, pinged_before: int) -> list[tuple[int, int]]:
        """(room id, session pk) of every session whose last ping is older than `pinged_before`."""
        query = (sa.select(attendees.c.room_id, room_sessions.c.id)
                 .join(attendees, attendees.c.id == room_sessions.c.attendee_id)
                 .where(room_sessions.c.last_ping < pinged_before).order_by(room_sessions.c.id))
        return [(int(row[0]), int(row[1])) for row in await conn.execute(query)]

    async def counts_by_room(self, conn: Conn, room_ids: Sequence[int]) -> dict[int, dict[str, int]]:
        """Per room, how many users and how many guests have at least one session there."""
        found: dict[int, dict[str, int]] = {room_id: {} for room_id in room_ids}
        if not room_ids:
            return found
        query = (sa.select(attendees.c.room_id, attendees.c.actor_type, sa.func.count(sa.distinct(attendees.c.id)))
                 .join(room_sessions, room_sessions.c.attendee_id == attendees.c.id)
                 .where(attendees.c.room_id.in_(list(room_ids)))
                 .group_by(attendees.c.room_id, attendees.c.actor_type))
        for room_id, actor_type, count in await conn.execute(query):
            found[room_id][actor_type] = int(count)
        return found
