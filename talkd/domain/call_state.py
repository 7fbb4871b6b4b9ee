"""A conversation's call as sessions enter and leave it: the room's call columns (start time, the
union of everyone's in-call flags) and the call_* system messages. Every function runs inside the
caller's transaction, so the call state and its messages commit with the change that caused them.

Shared by the call API, leaving or losing a conversation session, and session expiry."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from talkd.domain.conversation import ActorType, Attendee, InCall, Room, Session
from talkd.domain.room_core import Changes, RoomCore

# The messages whose authors took part in a call (call_ended lists them).
PARTICIPATION_MESSAGES = ["call_started", "call_joined"]


async def _refresh_call_flag(core: RoomCore, conn: AsyncConnection, room: Room) -> int:
    """Store the union of the in-call flags of the sessions still in the call; 0 when none is."""
    flags = 0
    for _, session in await core.sessions.of_room(conn, room.id, in_call=True):
        flags |= session.in_call
    await core.rooms.update(conn, room.id, call_flag=flags)
    return flags


async def enter(core: RoomCore, conn: AsyncConnection, room: Room, attendee: Attendee, session: Session,
                flags: int, changes: Changes) -> None:
    """The session joins the call (starting it when none runs) with `flags`, which include IN_CALL."""
    if not room.has_call:
        await core.rooms.update(conn, room.id, call_started_at=core.now())
        await core.system_message(conn, room, attendee, "call_started", changes)
    elif not session.in_call:
        await core.system_message(conn, room, attendee, "call_joined", changes)
    await core.sessions.update(conn, session.id, in_call=flags)
    await _refresh_call_flag(core, conn, room)
    changes.room(room)


async def change_flags(core: RoomCore, conn: AsyncConnection, room: Room, session: Session, flags: int,
                       changes: Changes) -> None:
    await core.sessions.update(conn, session.id, in_call=flags)
    await _refresh_call_flag(core, conn, room)
    changes.room(room)


async def leave(core: RoomCore, conn: AsyncConnection, room: Room, attendee: Attendee, session: Session,
                changes: Changes) -> None:
    """The session leaves the call; the last one out ends it. A session not in the call is left alone."""
    if not session.in_call & InCall.IN_CALL:
        return
    await core.sessions.update(conn, session.id, in_call=int(InCall.DISCONNECTED))
    changes.room(room)
    if await _refresh_call_flag(core, conn, room):
        await core.system_message(conn, room, attendee, "call_left", changes)
        return
    await _end(core, conn, room, attendee, "call_ended", changes)


async def leave_all_sessions(core: RoomCore, conn: AsyncConnection, room: Room, attendee: Attendee,
                             changes: Changes) -> None:
    """Before an attendee goes away: each of their sessions leaves the call."""
    for session in (await core.sessions.of_attendees(conn, [attendee.id]))[attendee.id]:
        current = await core.sessions.by_pk(conn, session.id)
        if current is not None:
            room = await core.rooms.by_id(conn, room.id) or room
            await leave(core, conn, room, attendee, current, changes)


async def end_for_everyone(core: RoomCore, conn: AsyncConnection, room: Room, actor: Attendee,
                           changes: Changes, *, name: str = "call_ended_everyone") -> None:
    """Every session leaves the call at once (a moderator ending it, or the room turning read-only)."""
    in_call = await core.sessions.of_room(conn, room.id, in_call=True)
    if not in_call and not room.has_call:
        return
    for _, session in in_call:
        await core.sessions.update(conn, session.id, in_call=int(InCall.DISCONNECTED))
    await core.rooms.update(conn, room.id, call_flag=0)
    changes.room(room)
    await _end(core, conn, room, actor, name, changes)


# Who ends a call nobody left properly (Talk writes such messages as its "system" guest actor).
SYSTEM_ACTOR = {"type": ActorType.GUESTS.value, "id": "system", "name": ""}


async def end_if_empty(core: RoomCore, conn: AsyncConnection, room: Room, changes: Changes) -> None:
    """A call whose sessions all went away without leaving it ends now."""
    if room.has_call and not await core.sessions.of_room(conn, room.id, in_call=True):
        await _end(core, conn, room, SYSTEM_ACTOR, "call_ended", changes)
        changes.room(room)


async def _end(core: RoomCore, conn: AsyncConnection, room: Room, actor: Attendee | dict[str, str], name: str,
               changes: Changes) -> None:
    """Close the call: a message naming who took part and how long it lasted, and no call on the room."""
    started = room.call_started_at
    people = await core.messages.system_actors(conn, room.id, PARTICIPATION_MESSAGES, since=started)
    users = [{"type": kind, "id": actor_id, "name": display_name}
             for kind, actor_id, display_name in people if kind == ActorType.USERS.value]
    guests = sum(1 for kind, _, _ in people if kind != ActorType.USERS.value)
    await core.rooms.update(conn, room.id, call_started_at=0, call_flag=0)
    await core.system_message(conn, room, actor, name, changes, users=users, guests=guests,
                              duration=max(0, core.now() - started) if started else 0)
