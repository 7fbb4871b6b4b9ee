"""Talk's internal signaling: clients hand each other WebRTC offers, answers and candidates through
the server (POST /signaling/{token}) and collect what was sent to them with a long poll
(GET /signaling/{token}), which also reports who is in the conversation (`usersInRoom`).

Messages are queued per recipient session in the database (storage/signaling.py): they survive a
restart and reach a recipient polling another node; waiting is on the bus (session.<pk> for new
messages, room.<token> for changes of who is in the room), never a database poll loop. A pull
counts as the session's ping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from talkd.bus.waiter import wait_for
from talkd.domain import events
from talkd.domain.auth import Identity
from talkd.domain.conversation import Attendee, Participant, Room, RoomType, Session
from talkd.domain.permissions import Action, require
from talkd.domain.room_core import Changes, RoomCore
from talkd.domain.rooms import effective_permissions
from talkd.errors import InvalidInput, NotFound, TooLarge
from talkd.storage.signaling import SignalingStore

# Queued messages nobody collected within this many seconds are dropped (Talk expires them too).
QUEUE_TTL = 300
# usersInRoom lists sessions that pinged within the pull timeout plus this margin (Talk: 30 + 10).
USERS_IN_ROOM_MARGIN = 10


@dataclass(frozen=True)
class UserInRoom:
    attendee: Attendee
    session: Session
    room_id: int
    permissions: int


@dataclass(frozen=True)
class Pulled:
    """What one pull returns. `status`: 200; 404 when the caller has no session in the room (or was
    removed); 409 when their session was ended while the room still knows them (Talk's answers)."""

    status: int
    messages: list[str]
    users: list[UserInRoom]


@dataclass(frozen=True)
class _Outgoing:
    recipient_pk: int
    sender: str
    body: str


class SignalingService:
    def __init__(self, core: RoomCore, *, internal: bool, pull_timeout: float, max_payload_bytes: int) -> None:
        self.core = core
        self.internal = internal
        self.pull_timeout = pull_timeout
        self.max_payload_bytes = max_payload_bytes
        self.queue = SignalingStore()

    def _require_internal(self) -> None:
        if not self.internal:
            raise InvalidInput("Internal signaling disabled.", reason="signaling-disabled")

    # Sending --------------------------------------------------------------------------------------

    def parse(self, raw: str) -> list[dict[str, Any]]:
        """The `messages` field: a JSON list of objects, within the size limit."""
        if len(raw.encode()) > self.max_payload_bytes:
            raise TooLarge("The signaling messages are too large", reason="too-large")
        try:
            decoded = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise InvalidInput("messages is not JSON", reason="malformed-messages") from None
        if not isinstance(decoded, list) or not all(isinstance(m, dict) for m in decoded):
            raise InvalidInput("messages must be a list of objects", reason="malformed-messages")
        return decoded

    async def send(self, identity: Identity, token: str, raw: str) -> None:
        """Queue each `message` event for the session it names; all or nothing. Other events (the web
        client's `connect`) need no answer beyond 200."""
        self._require_internal()
        envelopes = self.parse(raw)
        core, changes = self.core, Changes()
        async with core.db.transaction("signaling_send") as conn:
            room, participant = await core.access(conn, token, identity, Action.SIGNAL)
            me = _session_of(participant)
            in_room = {session.session_id: session.id for _, session in await core.sessions.of_room(conn, room.id)}
            outgoing = [self._outgoing(envelope, me, in_room, room, participant)
                        for envelope in envelopes if envelope.get("ev") == "message"]
            for item in outgoing:
                await self.queue.add(conn, recipient_id=item.recipient_pk, sender=item.sender, message=item.body,
                                     now=core.now())
                changes.sessions.add(item.recipient_pk)
        await core.announce(changes)

    def _outgoing(self, envelope: dict[str, Any], me: Session, in_room: dict[str, int], room: Room,
                  participant: Participant | None) -> _Outgoing:
        sender = envelope.get("sessionId", me.session_id)
        if sender != me.session_id:
            raise InvalidInput("sessionId is not the caller's session", reason="wrong-sender")
        fn = envelope.get("fn")
        try:
            inner = orjson.loads(fn) if isinstance(fn, str) else fn
        except orjson.JSONDecodeError:
            inner = None
        if not isinstance(inner, dict) or not isinstance(inner.get("type"), str):
            raise InvalidInput("fn must be a JSON object with a type", reason="malformed-messages")
        recipient = inner.get("to")
        if not isinstance(recipient, str) or recipient not in in_room:
            # Only sessions of this conversation can be reached; anything else is refused whole.
            raise InvalidInput("The recipient is not a session of this conversation", reason="unknown-recipient")
        if inner["type"] == "control":
            require(Action.SIGNAL_CONTROL, room, participant)
        inner["from"] = me.session_id
        return _Outgoing(in_room[recipient], me.session_id, orjson.dumps(inner).decode())

    # Pulling --------------------------------------------------------------------------------------

    async def pull(self, identity: Identity, token: str) -> Pulled:
        self._require_internal()
        core = self.core
        async with core.db.read() as conn:
            try:
                room, participant = await core.access(conn, token, identity, Action.SIGNAL)
            except NotFound:
                return Pulled(404, [], [])
            if participant is None or participant.session is None:
                return Pulled(404, [], [])
            session = participant.session
        pinged = core.now()
        async with core.db.transaction("signaling_ping") as conn:
            await core.sessions.update(conn, session.id, last_ping=pinged)  # the pull is the ping

        room_changed = False

        def wake(event: dict[str, object]) -> bool:
            nonlocal room_changed
            if event.get("type") == "room-changed":
                room_changed = True
                return True
            return event.get("type") == "signaling"

        async def check() -> list[str] | None:
            found = await self._take(session.id)
            if found or room_changed:
                return found
            return None

        messages = await wait_for(core.bus, [events.session_topic(session.id), events.room_topic(room.token)],
                                  check, timeout=self.pull_timeout, clock=core.clock, wake=wake) or []
        return await self._users_in_room(identity, token, session, messages, pinged)

    async def _take(self, session_pk: int) -> list[str]:
        core = self.core
        async with core.db.read() as conn:
            if not await self.queue.pending(conn, session_pk):
                return []
        async with core.db.transaction("signaling_take") as conn:
            return await self.queue.take(conn, session_pk)

    async def _users_in_room(self, identity: Identity, token: str, session: Session, messages: list[str],
                             pinged: int) -> Pulled:
        core = self.core
        async with core.db.read() as conn:
            room = await core.rooms.by_token(conn, token)
            current = await core.sessions.by_pk(conn, session.id)
            if room is None:
                return Pulled(404, messages, [])
            if current is None:
                # Our session ended while we waited: 409 tells the client another tab or a moderator
                # took it over; 404 that we are no longer part of the conversation at all.
                participant = await core.participant(conn, room, identity)
                still_known = participant is not None or (identity.user is None and room.type == RoomType.PUBLIC)
                return Pulled(409 if still_known else 404, messages, [])
            since = min(core.now() - (int(self.pull_timeout) + USERS_IN_ROOM_MARGIN), pinged) - 1
            users = [UserInRoom(attendee, other, room.id, effective_permissions(room, attendee))
                     for attendee, other in await core.sessions.of_room(conn, room.id, pinged_after=since)]
        return Pulled(200, messages, users)

    async def expire_queue(self) -> None:
        async with self.core.db.transaction("signaling_expire") as conn:
            await self.queue.delete_older_than(conn, self.core.now() - QUEUE_TTL)


def _session_of(participant: Participant | None) -> Session:
    if participant is None or participant.session is None:
        raise NotFound("Not joined to the conversation", reason="not-joined")
    return participant.session

