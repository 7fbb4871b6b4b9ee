"""Who is in a conversation: adding users, groups and e-mail guests, removing, promoting, demoting,
joining with a session and leaving it, and guests naming themselves."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from talkd.crypto import PasswordHashing, keyed_hash, random_token
from talkd.domain import call_state
from talkd.domain.accounts import AccountService, validate_email
from talkd.domain.auth import Identity
from talkd.domain.conversation import (
    ACCOUNT_MODERATOR_TYPES,
    MEMBER_TYPES,
    ActorType,
    Attendee,
    Participant,
    ParticipantType,
    Room,
    RoomType,
    Session,
)
from talkd.domain.permissions import Action
from talkd.domain.room_core import Changes, RoomCore, actor_ref
from talkd.domain.throttle import Throttle, ThrottleAction
from talkd.errors import AlreadyExists, Conflict, Forbidden, InvalidInput, NotFound, PreconditionFailed, RoomNotFound
from talkd.mail import Invitation, Mailer

SESSION_ID_LENGTH = 512  # the seeds' session id: a 512-character string


@dataclass(frozen=True)
class Member:
    """One attendee as the participant list shows it."""

    attendee: Attendee
    sessions: list[Session]

    @property
    def in_call(self) -> int:
        flags = 0
        for session in self.sessions:
            flags |= session.in_call
        return flags

    @property
    def last_ping(self) -> int:
        return max((s.last_ping for s in self.sessions), default=0)


@dataclass(frozen=True)
class Joined:
    room: Room
    participant: Participant
    session: Session


def _user_ref(attendee: Attendee) -> dict[str, str]:
    return actor_ref(attendee)


async def end_session(core: RoomCore, conn: AsyncConnection, room: Room, attendee: Attendee,
                      session: Session | None, changes: Changes) -> None:
    """A conversation session ends (its client left, or stopped pinging): it leaves the call first.
    Self-joined users and guests stop being attendees when their last session ends; guest moderators
    and invited people are kept."""
    if session is not None:
        await call_state.leave(core, conn, room, attendee, session, changes)
        await core.sessions.delete(conn, session.id)
        changes.room(room)
    remaining = (await core.sessions.of_attendees(conn, [attendee.id]))[attendee.id]
    if not remaining and attendee.participant_type in (ParticipantType.USER_SELF_JOINED, ParticipantType.GUEST):
        await core.attendees.delete(conn, attendee.id)
        changes.room(room)
        if attendee.actor_type == ActorType.USERS:
            changes.user(attendee.actor_id)


class ParticipantService:
    def __init__(self, core: RoomCore, accounts: AccountService, hashing: PasswordHashing, throttle: Throttle,
                 mailer: Mailer, secret: bytes, max_display_name_length: int) -> None:
        self.core = core
        self.accounts = accounts
        self.hashing = hashing
        self.throttle = throttle
        self.mailer = mailer
        self.secret = secret
        self.max_display_name_length = max_display_name_length

    # Listing --------------------------------------------------------------------------------------

    async def members(self, identity: Identity, token: str) -> tuple[Room, list[Member]]:
        core = self.core
        async with core.db.read() as conn:
            room, _ = await core.access(conn, token, identity, Action.VIEW_PARTICIPANTS)
            attendees = [a for a in await core.attendees.of_room(conn, room.id) if a.actor_type != ActorType.GROUPS]
            sessions = await core.sessions.of_attendees(conn, [a.id for a in attendees])
        return room, [Member(a, sessions[a.id]) for a in attendees]

    async def _require(self, identity: Identity, token: str, action: Action) -> None:
        """The role check before the input is looked at, as Talk's middleware does: a caller who may
        not add anyone learns nothing about which users, groups or addresses exist (403, not 404/400).
        The write transaction checks again."""
        async with self.core.db.read() as conn:
            await self.core.access(conn, token, identity, action)

    # Adding ---------------------------------------------------------------------------------------

    async def add(self, identity: Identity, token: str, new_participant: str, source: str, *,
                  convert_one_to_one: bool = False) -> RoomType | None:
        """Add a user (source users), every member of a group (groups) or an e-mail guest (emails).
        Returns the room's new type when adding changed it (API v1 turns one-to-one into group)."""
        await self._require(identity, token, Action.ADD_PARTICIPANT)
        if source == "emails":
            return await self.invite_email(identity, token, new_participant)
        if source not in ("users", "groups"):
            raise InvalidInput("Unknown participant source", reason="invalid-source")
        people: list[tuple[str, str]] = []
        if source == "groups":
            group = await self.accounts.find_group(new_participant)
            if group is None:
                raise NotFound("Group not found", reason="group-not-found")
            for member_id in await self.accounts.members_of(group.id):
                member = await self.accounts.find_user(member_id)
                if member is not None:
                    people.append((member.id, member.display_name))
        else:
            user = await self.accounts.find_user(new_participant) if new_participant else None
            if user is None:
                raise NotFound("User not found", reason="user-not-found")
            people.append((user.id, user.display_name))
        core, changes = self.core, Changes()
        changed_type: RoomType | None = None
        async with core.db.transaction("participants_add") as conn:
            room, participant = await core.access(conn, token, identity, Action.ADD_PARTICIPANT)
            assert participant is not None
            if room.type == RoomType.ONE_TO_ONE:
                if not convert_one_to_one:
                    raise InvalidInput("One-to-one conversations cannot get more participants", reason="one-to-one")
                await core.rooms.update(conn, room.id, type=int(RoomType.GROUP), name="")
                changed_type = RoomType.GROUP
            for user_id, display_name in people:
                existing = await core.attendees.find(conn, room.id, ActorType.USERS, user_id)
                if existing is not None:
                    if existing.participant_type == ParticipantType.USER_SELF_JOINED:
                        await core.attendees.update(conn, existing.id, participant_type=int(ParticipantType.USER))
                    continue
                added = await core.attendees.add(conn, room_id=room.id, actor_type=ActorType.USERS, actor_id=user_id,
                                                 display_name=display_name, participant_type=ParticipantType.USER,
                                                 last_read_message=room.last_message_id)
                await core.system_message(conn, room, participant.attendee, "user_added", changes,
                                          user=_user_ref(added))
                changes.user(user_id)
            changes.room(room)
            changes.users.update(await core.user_ids(conn, room))
        await core.announce(changes)
        return changed_type

    async def invite_email(self, identity: Identity, token: str, email: str) -> RoomType | None:
        """Invite a guest by e-mail and mail them the conversation's link. Talk opens a group
        conversation to guests for this and returns the new type, as adding to a room does."""
        await self._require(identity, token, Action.INVITE_EMAIL)
        address = validate_email(email)
        if not address:
            raise InvalidInput("Invalid e-mail address", reason="invalid-email")
        core, changes = self.core, Changes()
        access_token = random_token(32)
        changed_type: RoomType | None = None
        async with core.db.transaction("participants_invite_email") as conn:
            room, participant = await core.access(conn, token, identity, Action.INVITE_EMAIL)
            assert participant is not None
            if room.type == RoomType.GROUP:
                await core.rooms.update(conn, room.id, type=int(RoomType.PUBLIC))
                await core.system_message(conn, room, participant.attendee, "guests_allowed", changes)
                changes.users.update(await core.user_ids(conn, room))
                changed_type = RoomType.PUBLIC
            elif room.type != RoomType.PUBLIC:
                raise InvalidInput("Guests cannot be invited to this conversation", reason="not-public")
            try:
                await core.attendees.add(conn, room_id=room.id, actor_type=ActorType.EMAILS, actor_id=address,
                                         display_name="", participant_type=ParticipantType.GUEST,
                                         last_read_message=room.last_message_id,
                                         access_token=keyed_hash(self.secret, "invite", access_token))
            except AlreadyExists:
                return None  # invited before (so the room was public already): 200, and no new mail
            changes.room(room)
            inviter = participant.attendee.display_name or participant.attendee.actor_id
            room_name = room.name
        await core.announce(changes)
        await self.mailer.send_invitation(Invitation(to=address, inviter=inviter, room_name=room_name,
                                                     room_token=room.token))
        return changed_type

    # Removing -------------------------------------------------------------------------------------

    async def remove_user(self, identity: Identity, token: str, user_id: str) -> None:
        """API v1/v2: remove a user attendee by user id."""
        async with self.core.db.read() as conn:
            room = await self.core.room(conn, token)
            target = await self.core.attendees.find(conn, room.id, ActorType.USERS, user_id)
        await self._remove(identity, token, target)

    async def remove_guest(self, identity: Identity, token: str, session_id: str) -> None:
        """API v1/v2: remove a guest by the session id they joined with."""
        async with self.core.db.read() as conn:
            room = await self.core.room(conn, token)
            session = await self.core.sessions.by_session_id(conn, session_id) if session_id else None
            target = await self.core.attendees.by_id(conn, room.id, session.attendee_id) if session else None
        if target is not None and not target.is_guest:
            async with self.core.db.read() as conn:
                await self.core.access(conn, token, identity, Action.REMOVE_ATTENDEE)
            raise Forbidden("The participant is not a guest", reason="not-a-guest")
        await self._remove(identity, token, target)

    async def remove_attendee(self, identity: Identity, token: str, attendee_id: int) -> None:
        """API v3+: remove any attendee by attendee id."""
        async with self.core.db.read() as conn:
            room = await self.core.room(conn, token)
            target = await self.core.attendees.by_id(conn, room.id, attendee_id)
        await self._remove(identity, token, target)

    async def _remove(self, identity: Identity, token: str, chosen: Attendee | None) -> None:
        """Remove the attendee a call named (looked up before; re-read here under the write lock)."""
        core, changes = self.core, Changes()
        leaving = False
        async with core.db.transaction("participants_remove") as conn:
            room, participant = await core.access(conn, token, identity, Action.REMOVE_ATTENDEE)
            assert participant is not None
            target = await core.attendees.by_id(conn, room.id, chosen.id) if chosen is not None else None
            if target is None:
                raise NotFound("Participant not found", reason="participant-not-found")
            if target.id == participant.attendee.id:
                leaving = True  # naming oneself is leaving, with its rules (Talk's removeSelfFromRoomLogic)
            elif target.participant_type == ParticipantType.OWNER:
                raise Forbidden("The owner cannot be removed", reason="owner")
            else:
                await self._drop(conn, room, target, participant.attendee, changes)
        if leaving:
            await self.remove_self(identity, token)
            return
        await core.announce(changes)

    async def _drop(self, conn: AsyncConnection, room: Room, target: Attendee, actor: Attendee,
                    changes: Changes) -> None:
        core = self.core
        await call_state.leave_all_sessions(core, conn, room, target, changes)
        await core.attendees.delete(conn, target.id)
        changes.room(room)
        if target.actor_type == ActorType.USERS:
            changes.user(target.actor_id)
            if target.participant_type != ParticipantType.USER_SELF_JOINED:
                await core.system_message(conn, room, actor, "user_removed", changes, user=_user_ref(target))
        changes.users.update(await core.user_ids(conn, room))

    async def remove_self(self, identity: Identity, token: str) -> None:
        core, changes = self.core, Changes()
        async with core.db.transaction("participants_remove_self") as conn:
            room, participant = await core.access(conn, token, identity, Action.REMOVE_SELF)
            assert participant is not None
            me = participant.attendee
            everyone = await core.attendees.of_room(conn, room.id)
            members = [a for a in everyone if a.id != me.id and a.participant_type in MEMBER_TYPES]
            if (room.type != RoomType.ONE_TO_ONE and me.participant_type in ACCOUNT_MODERATOR_TYPES and members
                    and not any(a.participant_type in ACCOUNT_MODERATOR_TYPES for a in members)):
                raise InvalidInput("The last moderator cannot leave", reason="last-moderator")
            if me.participant_type in MEMBER_TYPES and not members:
                # The last member leaves: the conversation goes away, with any guests in it.
                await core.delete_room(conn, room, changes)
            else:
                await self._drop(conn, room, me, me, changes)
        await core.announce(changes)

    async def remove_deleted_user(self, user_id: str) -> None:
        """A deleted account leaves every conversation (Talk's UserDeletedListener): its sessions and
        call state go and the others see it removed; a room it was the only member of is deleted."""
        core, changes = self.core, Changes()
        async with core.db.transaction("participants_user_deleted") as conn:
            for found, attendee in await core.rooms.of_actor(conn, ActorType.USERS, user_id):
                room = await core.room(conn, found.token, for_update=conn.dialect.name == "postgresql")
                others = [a for a in await core.attendees.of_room(conn, room.id)
                          if a.id != attendee.id and a.participant_type in MEMBER_TYPES]
                if others:
                    await self._drop(conn, room, attendee, attendee, changes)
                else:
                    await core.delete_room(conn, room, changes)
        await core.announce(changes)

    # Moderators -----------------------------------------------------------------------------------

    async def find_target(self, token: str, *, attendee_id: int | None = None, user_id: str | None = None,
                          session_id: str | None = None) -> Attendee | None:
        """The attendee an API call names: by attendee id (v3+), user id or guest session id (v1/v2)."""
        core = self.core
        async with core.db.read() as conn:
            room = await core.room(conn, token)
            if attendee_id is not None:
                return await core.attendees.by_id(conn, room.id, attendee_id)
            if user_id:
                found = await core.attendees.find(conn, room.id, ActorType.USERS, user_id)
                if found is not None:
                    return found
            if session_id or user_id:
                session = await core.sessions.by_session_id(conn, session_id or user_id or "")
                if session is not None:
                    return await core.attendees.by_id(conn, room.id, session.attendee_id)
        return None

    async def set_moderator(self, identity: Identity, token: str, target: Attendee | None, promote: bool) -> None:
        core, changes = self.core, Changes()
        async with core.db.transaction("participants_moderator") as conn:
            room, participant = await core.access(conn, token, identity, Action.PROMOTE if promote else Action.DEMOTE)
            assert participant is not None
            current = await core.attendees.by_id(conn, room.id, target.id) if target is not None else None
            if current is None:
                raise NotFound("Participant not found", reason="participant-not-found")
            if current.participant_type == ParticipantType.OWNER:
                raise Forbidden("The owner's role cannot change", reason="owner")
            if not promote and current.id == participant.attendee.id:
                raise Forbidden("Moderators cannot demote themselves", reason="self")
            moves = ({ParticipantType.USER: ParticipantType.MODERATOR,
                      ParticipantType.GUEST: ParticipantType.GUEST_MODERATOR} if promote else
                     {ParticipantType.MODERATOR: ParticipantType.USER,
                      ParticipantType.GUEST_MODERATOR: ParticipantType.GUEST})
            new_type = moves.get(current.participant_type)
            if new_type is None:
                raise PreconditionFailed("The participant does not have the role this needs", reason="wrong-type")
            await core.attendees.update(conn, current.id, participant_type=int(new_type))
            guest = current.is_guest
            name = ("guest_" if guest else "") + ("moderator_promoted" if promote else "moderator_demoted")
            await core.system_message(conn, room, participant.attendee, name, changes, user=_user_ref(current))
            if current.actor_type == ActorType.USERS:
                changes.user(current.actor_id)
        await core.announce(changes)

    # Sessions -------------------------------------------------------------------------------------

    async def join(self, identity: Identity, token: str, password: str, *, web_session_id: int | None,
                   force: bool = True) -> Joined:
        """Open a session in the room (Talk's joinRoom). Users who are not attendees of a public room
        join as self-joined users; guests join with their cookie session. Self-joined users and guests
        need the password of a protected room; failures are throttled like logins. Without `force`, a
        client (cookie) that already has a session here gets Conflict with that session's state."""
        core, changes = self.core, Changes()
        async with core.db.read() as conn:
            room, participant = await core.access(conn, token, identity, Action.JOIN)
        needs_password = room.has_password and (
            participant is None
            or participant.attendee.participant_type in (ParticipantType.GUEST, ParticipantType.USER_SELF_JOINED))
        if needs_password:
            await self._check_password(room, password, identity.remote)
        if identity.user is None and web_session_id is None:
            raise NotFound("Guests need a session", reason="no-session")
        async with core.db.transaction("participants_join") as conn:
            # The room's row first, as every writer (RoomCore.access): replacing a session that is in the
            # call updates the session and then the room's call flag, which must not miss (or deadlock
            # with) a call join or end that holds the room and then updates sessions.
            room = await core.room(conn, token, for_update=True)
            participant = await core.participant(conn, room, identity)
            attendee = participant.attendee if participant is not None else None
            if attendee is None:
                if room.type != RoomType.PUBLIC:
                    raise RoomNotFound("Conversation not found")
                if identity.user is not None:
                    attendee = await core.attendees.add(
                        conn, room_id=room.id, actor_type=ActorType.USERS, actor_id=identity.user.id,
                        display_name=identity.user.display_name, participant_type=ParticipantType.USER_SELF_JOINED,
                        last_read_message=room.last_message_id)
                    changes.user(identity.user.id)
                else:
                    assert web_session_id is not None
                    attendee = await core.attendees.add(
                        conn, room_id=room.id, actor_type=ActorType.GUESTS,
                        actor_id=keyed_hash(self.secret, "guest", str(web_session_id), room.token)[:40],
                        display_name="", participant_type=ParticipantType.GUEST,
                        last_read_message=room.last_message_id)
            if web_session_id is not None:
                # One session per client: joining again from the same browser replaces the old one,
                # which leaves the call first.
                for old in (await core.sessions.of_attendees(conn, [attendee.id]))[attendee.id]:
                    if old.web_session_id == web_session_id and not force:
                        raise Conflict("Already joined from this client", reason="session-exists",
                                       details={"sessionId": old.session_id, "inCall": old.in_call,
                                                "lastPing": old.last_ping})
                    if old.web_session_id == web_session_id:
                        current_room = await core.rooms.by_id(conn, room.id) or room
                        await call_state.leave(core, conn, current_room, attendee, old, changes)
                await core.sessions.delete_for_web_session(conn, attendee.id, web_session_id)
            session = await core.sessions.create(conn, attendee_id=attendee.id,
                                                 session_id=random_token(SESSION_ID_LENGTH),
                                                 web_session_id=web_session_id, now=core.now())
            changes.room(room)
        await core.announce(changes)
        return Joined(room, Participant(room, attendee, session), session)

    async def _check_password(self, room: Room, password: str, remote: str) -> None:
        # Talk's talkRoomPassword: per address, so guesses neither lock the room for others nor
        # count against the address's logins.
        async with self.throttle.guard(ThrottleAction.ROOM_PASSWORD, remote, room.token) as attempt:
            if not password or not await self.hashing.verify(room.password_hash, password):
                raise Forbidden("Wrong conversation password", reason="wrong-password")
            attempt.succeeded()

    async def leave(self, identity: Identity, token: str) -> None:
        """End the caller's session (Talk's leaveRoom). Self-joined users and guests stop being
        attendees when their last session ends; guest moderators are kept."""
        core, changes = self.core, Changes()
        async with core.db.transaction("participants_leave") as conn:
            room, participant = await core.access(conn, token, identity, Action.VIEW)
            if participant is None:
                return
            await end_session(core, conn, room, participant.attendee, participant.session, changes)
        await core.announce(changes)

    async def set_guest_name(self, identity: Identity, token: str, display_name: str) -> None:
        if identity.user is not None:
            raise Forbidden("Only guests set a guest name", reason="not-a-guest")
        name = display_name.strip()
        if len(name) > self.max_display_name_length:
            raise InvalidInput("The display name is too long", reason="invalid-display-name")
        core, changes = self.core, Changes()
        async with core.db.transaction("guest_name") as conn:
            room, participant = await core.access(conn, token, identity, Action.SET_GUEST_NAME)
            assert participant is not None
            if participant.attendee.display_name != name:
                await core.attendees.update(conn, participant.attendee.id, display_name=name)
                changes.room(room)
        await core.announce(changes)

