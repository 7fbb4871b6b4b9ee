"""The call API: who is in a conversation's call, joining and leaving it, in-call flags, pings, and
sending away sessions that stopped pinging. Rules come from domain/permissions.py; the room's call
state and its system messages from domain/call_state.py."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from talkd.domain import call_state
from talkd.domain.auth import Identity
from talkd.domain.conversation import IN_CALL_ALL, Attendee, InCall, Participant, Room, Session
from talkd.domain.participants import end_session
from talkd.domain.permissions import Action, call_flags_allowed, can, require_call_permission
from talkd.domain.room_core import Changes, RoomCore
from talkd.domain.rooms import effective_permissions
from talkd.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)

# Talk's default when a client joins without flags: in the call with audio and video.
DEFAULT_JOIN_FLAGS = int(InCall.IN_CALL | InCall.WITH_AUDIO | InCall.WITH_VIDEO)


@dataclass(frozen=True)
class Peer:
    """One session in a call, as GET /call lists it."""

    attendee: Attendee
    session: Session


def check_flags(flags: int) -> int:
    if not 0 <= flags <= IN_CALL_ALL:
        raise InvalidInput("Invalid in-call flags", reason="invalid-flags")
    return flags


def _joined_session(participant: Participant | None) -> tuple[Participant, Session]:
    """The caller's conversation session: a call is joined through one (Talk: 404 without)."""
    if participant is None or participant.session is None:
        raise NotFound("Join the conversation before the call", reason="not-joined")
    return participant, participant.session


class CallService:
    def __init__(self, core: RoomCore, ping_timeout: int) -> None:
        self.core = core
        self.ping_timeout = ping_timeout

    async def peers(self, identity: Identity, token: str) -> tuple[Room, list[Peer]]:
        """The sessions in the call that pinged within the timeout (Talk's getPeersForCall)."""
        core = self.core
        async with core.db.read() as conn:
            room, _ = await core.access(conn, token, identity, Action.VIEW_CALL)
            found = await core.sessions.of_room(conn, room.id, in_call=True,
                                                pinged_after=core.now() - self.ping_timeout)
        return room, [Peer(attendee, session) for attendee, session in found]

    async def join(self, identity: Identity, token: str, flags: int | None) -> None:
        core, changes = self.core, Changes()
        async with core.db.transaction("call_join") as conn:
            room, participant = await core.access(conn, token, identity, Action.JOIN_CALL, for_update=True)
            participant, session = _joined_session(participant)
            wanted = DEFAULT_JOIN_FLAGS if flags is None else check_flags(flags)
            permissions = effective_permissions(room, participant.attendee)
            require_call_permission(permissions, call_running=room.has_call)
            wanted = call_flags_allowed(permissions, wanted | InCall.IN_CALL)
            await call_state.enter(core, conn, room, participant.attendee, session, wanted, changes)
        await core.announce(changes)

    async def update_flags(self, identity: Identity, token: str, flags: int) -> None:
        core, changes = self.core, Changes()
        async with core.db.transaction("call_flags") as conn:
            room, participant = await core.access(conn, token, identity, Action.JOIN_CALL, for_update=True)
            participant, session = _joined_session(participant)
            check_flags(flags)
            if not session.in_call & InCall.IN_CALL:
                raise InvalidInput("Not in the call", reason="not-in-call")
            if not flags & InCall.IN_CALL:
                raise InvalidInput("The flags must contain 'in call'; leave the call instead", reason="flags")
            permissions = effective_permissions(room, participant.attendee)
            await call_state.change_flags(core, conn, room, session, call_flags_allowed(permissions, flags), changes)
        await core.announce(changes)

    async def leave(self, identity: Identity, token: str, *, everyone: bool = False) -> None:
        """Leave the call; a moderator asking for `everyone` ends it for all (others just leave, as in Talk)."""
        core, changes = self.core, Changes()
        async with core.db.transaction("call_leave") as conn:
            room, participant = await core.access(conn, token, identity, Action.LEAVE_CALL, for_update=True)
            participant, session = _joined_session(participant)
            if everyone and can(Action.END_CALL_FOR_ALL, room, participant):
                await call_state.end_for_everyone(core, conn, room, participant.attendee, changes)
            else:
                await call_state.leave(core, conn, room, participant.attendee, session, changes)
        await core.announce(changes)

    async def ping(self, participant: Participant | None) -> None:
        """Keep the caller's session alive: what a signaling pull does, and what a chat pull must do
        too (seed 004's `no-ping`: pings travel with those requests)."""
        if participant is None or participant.session is None:
            return
        # Batched: written by RoomCore.flush within a second, not one write transaction per pull.
        self.core.touch(participant)

    async def expire_sessions(self) -> int:
        """End every conversation session that has not pinged within the timeout: it leaves its call
        (the call ends when it was the last) and, for guests and self-joined users, the conversation.
        Returns how many sessions ended."""
        core = self.core
        await core.flush()  # pings still waiting in the batch count
        async with core.db.read() as conn:
            stale = await core.sessions.stale(conn, core.now() - self.ping_timeout)
        ended = 0
        for room_id, session_pk in stale:
            changes = Changes()
            async with core.db.transaction("session_expire") as conn:
                room = await core.rooms.by_id(conn, room_id)
                session = await core.sessions.by_pk(conn, session_pk)
                # Re-checked under the write lock: it may have pinged or left meanwhile.
                if room is None or session is None or session.last_ping >= core.now() - self.ping_timeout:
                    continue
                room = await core.room(conn, room.token, for_update=True)
                attendee = await core.attendees.by_id(conn, room.id, session.attendee_id)
                if attendee is None:
                    continue
                await end_session(core, conn, room, attendee, session, changes)
                ended += 1
            await core.announce(changes)
        if ended:
            log.info("expired conversation sessions", extra={"sessions": ended})
        await self._end_empty_calls()
        return ended

    async def _end_empty_calls(self) -> None:
        core = self.core
        async with core.db.read() as conn:
            room_ids = await core.rooms.with_empty_calls(conn)
        for room_id in room_ids:
            changes = Changes()
            async with core.db.transaction("call_end_empty") as conn:
                room = await core.rooms.by_id(conn, room_id)
                if room is not None:
                    room = await core.room(conn, room.token, for_update=True)
                    await call_state.end_if_empty(core, conn, room, changes)
            await core.announce(changes)
