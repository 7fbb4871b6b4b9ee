"""What every conversation operation shares: finding the caller's participant in a room, writing system
messages, and announcing changes on the bus once the transaction committed."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from talkd.bus.base import EventBus
from talkd.clock import Clock
from talkd.domain import events
from talkd.domain.auth import Identity
from talkd.domain.conversation import ActorType, Attendee, ChatMessage, Participant, Room, Session, Verb
from talkd.domain.permissions import Action, require
from talkd.errors import RoomNotFound
from talkd.storage.database import Database
from talkd.storage.messages import MessageStore
from talkd.storage.rooms import AttendeeStore, RoomStore, SessionStore

# Seconds within which a client's pings are not written again (see RoomCore.touch).
PING_RESOLUTION = 10

# Talk's tokens are at most 32 characters; anything longer cannot name a conversation.
MAX_TOKEN_LENGTH = 32


def actor_ref(attendee: Attendee) -> dict[str, str]:
    return {"type": attendee.actor_type.value, "id": attendee.actor_id, "name": attendee.display_name}


@dataclass
class Changes:
    """What one operation changed, announced after commit (never before: a waiter that wakes must
    find the change in storage)."""

    rooms: set[str] = field(default_factory=set)
    users: set[str] = field(default_factory=set)
    messages: dict[str, int] = field(default_factory=dict)
    sessions: set[int] = field(default_factory=set)  # room sessions with newly queued signaling messages
    deleted: set[str] = field(default_factory=set)  # rooms that are gone: every node drops its caches of them

    def room(self, room: Room) -> None:
        self.rooms.add(room.token)

    def user(self, user_id: str) -> None:
        self.users.add(user_id)

    def message(self, room: Room, message: ChatMessage) -> None:
        self.messages[room.token] = max(self.messages.get(room.token, 0), message.id)


class RoomCore:
    def __init__(self, db: Database, bus: EventBus, clock: Clock) -> None:
        self.db = db
        self.bus = bus
        self.clock = clock
        self.rooms = RoomStore()
        self.attendees = AttendeeStore()
        self.sessions = SessionStore()
        self.messages = MessageStore()
        # Written in batches by flush(): every chat pull is a ping and may move a read marker, and a
        # write transaction per pull would serialise all readers behind SQLite's one writer. A crash
        # loses at most one flush interval of them, which only makes a client re-read or re-ping.
        self._pings: dict[tuple[int, int | None], int] = {}
        self._pinged: dict[tuple[int, int | None], int] = {}
        self._read_markers: dict[int, int] = {}
        # What the latest flush writes or wrote: fresh() keeps showing them until the next flush, so a
        # reader whose query began before that commit never sees an older marker than it had.
        self._flushed_markers: dict[int, int] = {}
        # One flush at a time: a caller that flushes to read what was batched (session expiry) must
        # also wait for a flush already under way.
        self._flush_lock = asyncio.Lock()

    def touch(self, participant: Participant | None) -> None:
        """Record that the caller's session is alive (chat and signaling pulls count as pings). A client
        that pinged within PING_RESOLUTION seconds is not written again: lastPing is second-grained
        and the expiry timeout is a minute, so a thousand pollers cost a few rows per flush, not all."""
        if participant is None:
            return
        web_session_id = participant.session.web_session_id if participant.session is not None else None
        client, now = (participant.attendee.id, web_session_id), self.now()
        if now - self._pinged.get(client, 0) < PING_RESOLUTION:
            return
        self._pinged[client] = now
        self._pings[client] = now
        if len(self._pinged) > 100_000:
            self._pinged.clear()  # bounded; forgetting only means one more write

    def advance_read_marker(self, attendee: Attendee, message_id: int) -> None:
        if message_id > max(attendee.last_read_message, self._read_markers.get(attendee.id, 0)):
            self._read_markers[attendee.id] = message_id

    def fresh(self, attendee: Attendee) -> Attendee:
        """The attendee with a read marker that may still wait for the next flush."""
        pending = max(self._read_markers.get(attendee.id, 0), self._flushed_markers.get(attendee.id, 0))
        if pending > attendee.last_read_message:
            return dataclasses.replace(attendee, last_read_message=pending)
        return attendee

    def forget_read_marker(self, attendee_id: int) -> None:
        """An explicit read-marker write supersedes what waits in the batch (call it inside
        between_flushes, or a flush under way may raise the marker again after that write)."""
        self._read_markers.pop(attendee_id, None)
        self._flushed_markers.pop(attendee_id, None)

    @asynccontextmanager
    async def between_flushes(self, name: str) -> AsyncIterator[AsyncConnection]:
        """A write transaction that no flush overlaps: for setting a read marker outright (it may lower it),
        which a flush carrying an older batched marker would otherwise undo by raising it after this commit."""
        async with self._flush_lock, self.db.transaction(name) as conn:
            yield conn

    async def flush(self) -> None:
        async with self._flush_lock:
            await self._flush()

    async def _flush(self) -> None:
        pings, self._pings = self._pings, {}
        markers, self._read_markers = self._read_markers, {}
        if not pings and not markers:
            return
        self._flushed_markers = dict(markers)
        try:
            async with self.db.transaction("flush_pings_and_read_markers") as conn:
                await self.sessions.ping(conn, pings)
                await self.attendees.raise_read_markers(conn, markers)
        except BaseException:
            # Put them back (newer values win) so the next flush tries again.
            for client, at in pings.items():
                self._pings[client] = max(at, self._pings.get(client, 0))
            for attendee_id, message_id in markers.items():
                self._read_markers[attendee_id] = max(message_id, self._read_markers.get(attendee_id, 0))
            raise

    def now(self) -> int:
        return int(self.clock.now())

    async def room(self, conn: AsyncConnection, token: str, *, for_update: bool = False) -> Room:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise RoomNotFound("Conversation not found")
        room = await self.rooms.by_token(conn, token, for_update=for_update)
        if room is None:
            raise RoomNotFound("Conversation not found")
        return room

    async def participant(self, conn: AsyncConnection, room: Room, identity: Identity, *,
                          with_session: bool = True, attendee: Attendee | None = None) -> Participant | None:
        """The caller in `room` (Talk's getParticipant): a user by account, a guest by the session
        their cookie names. The session is the one this client joined with, if any (looked up only
        `with_session`; `attendee` is the user's row when the caller already has it)."""
        web_session_id = identity.web_session.id if identity.web_session is not None else None
        if identity.user is not None:
            if attendee is None:
                attendee = await self.attendees.find(conn, room.id, ActorType.USERS, identity.user.id)
            if attendee is None:
                return None
            attendee = self.fresh(attendee)
            session = await self._session_of(conn, attendee, web_session_id) if with_session else None
            return Participant(room, attendee, session)
        if web_session_id is None:
            return None
        found = await self.sessions.in_room_by_web_session(conn, room.id, web_session_id)
        if found is None:
            return None
        attendee, session = found
        return Participant(room, self.fresh(attendee), session)

    async def _session_of(self, conn: AsyncConnection, attendee: Attendee, web_session_id: int | None
                          ) -> Session | None:
        sessions = (await self.sessions.of_attendees(conn, [attendee.id]))[attendee.id]
        return self.session_of(sessions, web_session_id)

    @staticmethod
    def session_of(sessions: list[Session], web_session_id: int | None) -> Session | None:
        """Which of an attendee's sessions (oldest first) is this client's: the one its cookie joined
        with; for a client without a cookie (an app sending Basic credentials), the newest."""
        if web_session_id is not None:
            for session in reversed(sessions):
                if session.web_session_id == web_session_id:
                    return session
            return None
        return sessions[-1] if sessions else None

    async def access(self, conn: AsyncConnection, token: str, identity: Identity, action: Action, *,
                     for_update: bool = False, with_session: bool = True) -> tuple[Room, Participant | None]:
        """The room and the caller's participant, once the caller may do `action` there. In a write
        transaction on PostgreSQL the room's row is locked first, so every writer takes a room's lock
        before its attendees' rows (the chat writer does the same): no two transactions can wait on
        each other in a cycle."""
        for_update = for_update or (conn.dialect.name == "postgresql" and self.db.in_write(conn))
        if identity.user is not None and not for_update and token and len(token) <= MAX_TOKEN_LENGTH:
            # Users: room and attendee row in one query.
            found = await self.rooms.with_attendee(conn, token, ActorType.USERS, identity.user.id)
            if found is None:
                raise RoomNotFound("Conversation not found")
            room, attendee = found
            participant = None
            if attendee is not None:
                participant = await self.participant(conn, room, identity, with_session=with_session,
                                                     attendee=attendee)
        else:
            room = await self.room(conn, token, for_update=for_update)
            participant = await self.participant(conn, room, identity, with_session=with_session)
        require(action, room, participant)
        return room, participant

    async def system_message(self, conn: AsyncConnection, room: Room, actor: Attendee | dict[str, str], name: str,
                             changes: Changes, **values: Any) -> ChatMessage:
        ref = actor_ref(actor) if isinstance(actor, Attendee) else actor
        message = await self.messages.append(
            conn, room_id=room.id, actor_type=ref["type"], actor_id=ref["id"], actor_display_name=ref["name"],
            verb=Verb.SYSTEM, message=name, parameters={"actor": ref, **values}, now=self.now())
        changes.message(room, message)
        changes.room(room)
        return message

    async def delete_room(self, conn: AsyncConnection, room: Room, changes: Changes) -> None:
        """Delete the room with everything in it; its members' lists change and every cache of it goes."""
        changes.users.update(await self.user_ids(conn, room))
        changes.room(room)
        changes.deleted.add(room.token)
        await self.rooms.delete(conn, room.id)

    async def user_ids(self, conn: AsyncConnection, room: Room) -> list[str]:
        return [a.actor_id for a in await self.attendees.of_room(conn, room.id) if a.actor_type == ActorType.USERS]

    async def announce(self, changes: Changes) -> None:
        for token, message_id in changes.messages.items():
            await self.bus.publish(events.room_topic(token), events.chat_message(token, message_id))
        for session_pk in changes.sessions:
            await self.bus.publish(events.session_topic(session_pk), events.signaling_queued(session_pk))
        for token in changes.rooms:
            await self.bus.publish(events.room_topic(token), events.room_changed(token))
        for token in changes.deleted:
            await self.bus.publish(events.room_topic(token), events.room_deleted(token))
            await self.bus.publish(events.ROOMS_TOPIC, events.room_deleted(token))
        for user_id in changes.users:
            await self.bus.publish(events.user_topic(user_id), events.rooms_changed(user_id))

