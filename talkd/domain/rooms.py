"""Conversations: create, list, read and change rooms. Rules come from domain/permissions.py; each
operation is one transaction that also writes its system message, announced on the bus after commit."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from talkd.crypto import PasswordHashing, random_token
from talkd.domain import call_state
from talkd.domain.accounts import AccountService
from talkd.domain.auth import Identity
from talkd.domain.conversation import (
    ACCOUNT_MODERATOR_TYPES,
    MEMBER_TYPES,
    MODERATOR_TYPES,
    PERMISSIONS_MAX,
    PERMISSIONS_PARTICIPANT,
    ActorType,
    Attendee,
    ChatMessage,
    LobbyState,
    NotificationLevel,
    Participant,
    ParticipantType,
    Permission,
    ReadOnly,
    Room,
    RoomType,
)
from talkd.domain.permissions import Action, lobby_blocks
from talkd.domain.room_core import Changes, RoomCore
from talkd.errors import AlreadyExists, Forbidden, InvalidInput, NotAllowedHere, NotFound
from talkd.ids import RoomToken

TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
TOKEN_LENGTH = 10  # 36^10 ≈ 2^51.7: not guessable, and short enough to read out
MAX_NAME_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 2000
MAX_PASSWORD_LENGTH = 200


class Standing(enum.Enum):
    """How much of a room the caller may see (Talk's RoomFormatter)."""

    OUTSIDER = "outsider"  # not a participant (not joined, or not past the password): what names the room
    LOBBY = "lobby"        # a participant the lobby holds back: the room, but no chat and no call
    MEMBER = "member"      # everything


def standing(room: Room, participant: Participant | None) -> Standing:
    if participant is None:
        return Standing.OUTSIDER
    return Standing.LOBBY if lobby_blocks(room, participant) else Standing.MEMBER


@dataclass(frozen=True)
class RoomView:
    """Everything a serializer needs to describe one room to one caller."""

    room: Room
    participant: Participant | None
    display_name: str
    active_users: int
    active_guests: int
    unread_messages: int
    unread_mention: bool
    unread_mention_direct: bool
    last_message: ChatMessage | None
    can_leave: bool
    can_delete: bool
    permissions: int

    @property
    def attendee(self) -> Attendee | None:
        return self.participant.attendee if self.participant else None

    @property
    def standing(self) -> Standing:
        return standing(self.room, self.participant)


def effective_permissions(room: Room, attendee: Attendee | None) -> int:
    """Attendee, then call, then default permissions: the first that is set wins (Talk's order);
    moderators always have all of them."""
    if attendee is None:
        return PERMISSIONS_PARTICIPANT
    if attendee.participant_type in MODERATOR_TYPES:
        return PERMISSIONS_MAX
    for value in (attendee.permissions, room.call_permissions, room.default_permissions):
        if value:
            return value & ~int(Permission.CUSTOM)
    return PERMISSIONS_PARTICIPANT


def notification_level(room: Room, attendee: Attendee | None) -> int:
    """`0` (default) resolves as Talk does: always in one-to-one rooms, on mention elsewhere."""
    if attendee is None:
        return int(NotificationLevel.DEFAULT)
    if attendee.notification_level:
        return attendee.notification_level
    return int(NotificationLevel.ALWAYS if room.type == RoomType.ONE_TO_ONE else NotificationLevel.MENTION)


def validate_name(name: str, max_length: int) -> str:
    name = name.strip()
    if not name:
        raise InvalidInput("The conversation name must not be empty", reason="invalid-name")
    if len(name) > max_length:
        raise InvalidInput("The conversation name is too long", reason="invalid-name")
    return name


class ConversationService:
    def __init__(self, core: RoomCore, accounts: AccountService, hashing: PasswordHashing) -> None:
        self.core = core
        self.accounts = accounts
        self.hashing = hashing

    # Reading --------------------------------------------------------------------------------------

    async def view(self, conn: AsyncConnection, room: Room, participant: Participant | None) -> RoomView:
        return (await self.views(conn, [(room, participant)]))[0]

    async def views(self, conn: AsyncConnection, items: list[tuple[Room, Participant | None]]) -> list[RoomView]:
        """Room views for one caller, with a fixed number of queries however many rooms there are
        (a room list is what clients poll most)."""
        core = self.core
        room_ids = [room.id for room, _ in items]
        counts = await core.sessions.counts_by_room(conn, room_ids)
        readers = [(room.id, p.attendee.last_read_message, p.attendee.actor_type.value, p.attendee.actor_id)
                   for room, p in items if p is not None]
        unread = await core.messages.count_unread_many(conn, readers)
        last_ids = [room.last_message_id for room, _ in items if room.last_message_id]
        last = await core.messages.get_many(conn, last_ids)
        # can_leave, for account moderators of group rooms: the rule remove_self enforces (another
        # account moderator, or no other member).
        leaving = [room.id for room, p in items if p is not None and room.type != RoomType.ONE_TO_ONE
                   and p.attendee.participant_type in ACCOUNT_MODERATOR_TYPES]
        kinds = await core.attendees.type_counts(conn, leaving)
        one_to_one = [room.id for room, _ in items if room.type == RoomType.ONE_TO_ONE]
        partners: dict[int, list[Attendee]] = {}
        for partner in await core.attendees.of_rooms(conn, one_to_one, ActorType.USERS):
            partners.setdefault(partner.room_id, []).append(partner)
        views = []
        for room, participant in items:
            attendee = participant.attendee if participant else None
            can_leave = True
            if room.id in kinds:
                members = sum(n for kind, n in kinds[room.id].items() if kind in MEMBER_TYPES)
                moderators = sum(n for kind, n in kinds[room.id].items() if kind in ACCOUNT_MODERATOR_TYPES)
                can_leave = moderators > 1 or members <= 1
            room_counts = counts.get(room.id, {})
            views.append(RoomView(
                room=room, participant=participant,
                display_name=await self._display_name(room, attendee, partners.get(room.id, [])),
                active_users=room_counts.get(ActorType.USERS.value, 0),
                active_guests=room_counts.get(ActorType.GUESTS.value, 0) + room_counts.get(ActorType.EMAILS.value, 0),
                unread_messages=unread.get(room.id, 0) if attendee is not None else 0,
                unread_mention=attendee is not None and attendee.last_mention_message > attendee.last_read_message,
                unread_mention_direct=(attendee is not None
                                       and attendee.last_mention_direct > attendee.last_read_message),
                last_message=last.get(room.last_message_id) if room.last_message_id else None,
                can_leave=can_leave,
                can_delete=(attendee is not None and room.type != RoomType.ONE_TO_ONE
                            and attendee.participant_type in (ParticipantType.OWNER, ParticipantType.MODERATOR)),
                permissions=effective_permissions(room, attendee)))
        return views

    async def _display_name(self, room: Room, attendee: Attendee | None, users: list[Attendee]) -> str:
        """A room's name; one-to-one rooms are named after the other person (`users`: its user attendees)."""
        if room.type != RoomType.ONE_TO_ONE:
            return room.name
        try:
            pair = [str(user) for user in json.loads(room.name)]
        except (ValueError, TypeError):
            return room.name
        mine = attendee.actor_id if attendee is not None and attendee.actor_type == ActorType.USERS else None
        other = next((user for user in pair if user != mine), mine or "")
        found = next((a for a in users if a.actor_id == other), None)
        if found is not None and found.display_name:
            return found.display_name
        account = await self.accounts.find_user(other)
        return account.display_name if account is not None else other

    async def get(self, identity: Identity, token: str) -> RoomView:
        async with self.core.db.read() as conn:
            room, participant = await self.core.access(conn, token, identity, Action.VIEW)
            return await self.view(conn, room, participant)

    async def list_for(self, identity: Identity, *, modified_since: int = 0) -> list[RoomView]:
        """The caller's rooms: favorites first, then by last activity, newest first."""
        if identity.user is None:
            return []
        async with self.core.db.read() as conn:
            pairs = await self.core.rooms.of_actor(conn, ActorType.USERS, identity.user.id,
                                                   modified_since=modified_since)
            items: list[tuple[Room, Participant | None]] = []
            sessions = await self.core.sessions.of_attendees(conn, [attendee.id for _, attendee in pairs])
            web_session_id = identity.web_session.id if identity.web_session is not None else None
            for room, attendee in pairs:
                session = self.core.session_of(sessions[attendee.id], web_session_id)
                items.append((room, Participant(room, self.core.fresh(attendee), session)))
            views = await self.views(conn, items)
        views.sort(key=lambda v: (not (v.attendee.favorite if v.attendee else False), -v.room.last_activity,
                                  v.room.id))
        return views

    async def lookup(self, token: str, identity: Identity) -> Participant | Room | None:
        """For routes that only need to know the room exists for this caller (signaling settings)."""
        async with self.core.db.read() as conn:
            try:
                room, participant = await self.core.access(conn, token, identity, Action.VIEW)
            except NotFound:
                return None
            return participant or room

    # Creating -------------------------------------------------------------------------------------

    async def create(self, identity: Identity, room_type: int, *, name: str = "", invite: str = "",
                     source: str = "", max_name_length: int = MAX_NAME_LENGTH) -> tuple[RoomView, bool]:
        """A new room with the caller as owner; for one-to-one the existing room if there is one.
        Returns the caller's view and whether the room was created."""
        user = identity.user
        if user is None:
            raise Forbidden("Guests cannot create conversations")
        if room_type not in (RoomType.ONE_TO_ONE, RoomType.GROUP, RoomType.PUBLIC):
            raise InvalidInput("Invalid conversation type", reason="invalid-room-type")
        kind = RoomType(room_type)
        core = self.core
        changes = Changes()
        if kind == RoomType.ONE_TO_ONE:
            other = await self.accounts.find_user(invite) if invite else None
            if other is None or other.id == user.id:
                raise NotFound("User not found", reason="user-not-found")
            pair_name = json.dumps(sorted([user.id, other.id]))
            async with core.db.transaction("room_create_one_to_one") as conn:
                existing = await core.rooms.one_to_one(conn, pair_name, for_update=True)
                if existing is not None:
                    # Talk re-adds the caller if they had left.
                    if await core.attendees.find(conn, existing.id, ActorType.USERS, user.id) is None:
                        await core.attendees.add(conn, room_id=existing.id, actor_type=ActorType.USERS,
                                                 actor_id=user.id, display_name=user.display_name,
                                                 participant_type=ParticipantType.OWNER,
                                                 last_read_message=existing.last_message_id)
                        changes.user(user.id)
                    view = await self.view(conn, existing, await core.participant(conn, existing, identity))
                    created = False
                else:
                    room = await self._new_room(conn, kind, pair_name)
                    for person, kind_of in ((user, ParticipantType.OWNER), (other, ParticipantType.OWNER)):
                        await core.attendees.add(conn, room_id=room.id, actor_type=ActorType.USERS,
                                                 actor_id=person.id, display_name=person.display_name,
                                                 participant_type=kind_of)
                        changes.user(person.id)
                    owner = await core.attendees.find(conn, room.id, ActorType.USERS, user.id)
                    assert owner is not None
                    await core.system_message(conn, room, owner, "conversation_created", changes)
                    room = await core.rooms.by_id(conn, room.id) or room
                    view = await self.view(conn, room, await core.participant(conn, room, identity))
                    created = True
            await core.announce(changes)
            return view, created

        if kind == RoomType.PUBLIC or name:
            name = validate_name(name, max_name_length)
        group_members: list[tuple[str, str]] = []
        group_name = ""
        if kind == RoomType.GROUP and invite:
            if source not in ("", "groups"):
                raise InvalidInput("Unsupported invite source", reason="invalid-source")
            group = await self.accounts.find_group(invite)
            if group is None:
                raise NotFound("Group not found", reason="group-not-found")
            group_name = group.display_name
            for member_id in await self.accounts.members_of(group.id):
                member = await self.accounts.find_user(member_id)
                if member is not None and member.id != user.id:
                    group_members.append((member.id, member.display_name))
            if not name:
                name = group_name[:max_name_length]
        async with core.db.transaction("room_create") as conn:
            room = await self._new_room(conn, kind, name)
            owner = await core.attendees.add(conn, room_id=room.id, actor_type=ActorType.USERS, actor_id=user.id,
                                             display_name=user.display_name, participant_type=ParticipantType.OWNER)
            changes.user(user.id)
            await core.system_message(conn, room, owner, "conversation_created", changes)
            for person_id, member_name in group_members:
                added = await core.attendees.add(conn, room_id=room.id, actor_type=ActorType.USERS,
                                                 actor_id=person_id, display_name=member_name,
                                                 participant_type=ParticipantType.USER)
                await core.system_message(conn, room, owner, "user_added", changes,
                                          user={"type": "users", "id": added.actor_id, "name": added.display_name})
                changes.user(person_id)
            if kind == RoomType.PUBLIC:
                await core.system_message(conn, room, owner, "guests_allowed", changes)
            room = await core.rooms.by_id(conn, room.id) or room
            view = await self.view(conn, room, await core.participant(conn, room, identity))
        await core.announce(changes)
        return view, True

    async def _new_room(self, conn: AsyncConnection, kind: RoomType, name: str) -> Room:
        for _ in range(5):
            try:
                return await self.core.rooms.create(conn, token=RoomToken(random_token(TOKEN_LENGTH, TOKEN_ALPHABET)),
                                                    room_type=kind, name=name, now=self.core.now())
            except AlreadyExists:
                continue
        raise RuntimeError("could not find a free conversation token")

    # Changing -------------------------------------------------------------------------------------

    async def rename(self, identity: Identity, token: str, name: str, *,
                     max_name_length: int = MAX_NAME_LENGTH) -> None:
        core, changes = self.core, Changes()
        async with core.db.transaction("room_rename") as conn:
            room, participant = await core.access(conn, token, identity, Action.RENAME)
            if room.type == RoomType.ONE_TO_ONE:
                raise NotAllowedHere("One-to-one conversations cannot be renamed", reason="one-to-one")
            name = validate_name(name, max_name_length)
            if name != room.name:
                await core.rooms.update(conn, room.id, name=name)
                assert participant is not None
                await core.system_message(conn, room, participant.attendee, "conversation_renamed", changes,
                                          oldName=room.name, newName=name)
                changes.users.update(await core.user_ids(conn, room))
        await core.announce(changes)

    async def set_description(self, identity: Identity, token: str, description: str) -> None:
        core, changes = self.core, Changes()
        if len(description) > MAX_DESCRIPTION_LENGTH:
            raise InvalidInput("The description is too long", reason="invalid-description")
        async with core.db.transaction("room_description") as conn:
            room, participant = await core.access(conn, token, identity, Action.SET_DESCRIPTION)
            if room.type == RoomType.ONE_TO_ONE:
                # 400 in every version (unlike renaming, which the seed's v1 answers with 405).
                raise InvalidInput("One-to-one conversations have no description", reason="one-to-one")
            if description != room.description:
                await core.rooms.update(conn, room.id, description=description)
                assert participant is not None
                await core.system_message(conn, room, participant.attendee,
                                          "description_set" if description else "description_removed", changes)
                changes.users.update(await core.user_ids(conn, room))
        await core.announce(changes)

    async def delete(self, identity: Identity, token: str, *, allow_one_to_one: bool) -> None:
        core, changes = self.core, Changes()
        async with core.db.transaction("room_delete") as conn:
            room, _ = await core.access(conn, token, identity, Action.DELETE)
            if room.type == RoomType.ONE_TO_ONE and not allow_one_to_one:
                raise InvalidInput("One-to-one conversations are left, not deleted", reason="one-to-one")
            await core.delete_room(conn, room, changes)
        await core.announce(changes)

    async def set_public(self, identity: Identity, token: str, public: bool) -> None:
        """Group → public (guests allowed) or back; going private removes the guests."""
        core, changes = self.core, Changes()
        async with core.db.transaction("room_public") as conn:
            room, participant = await core.access(conn, token, identity,
                                                  Action.MAKE_PUBLIC if public else Action.MAKE_PRIVATE)
            wanted_from = RoomType.GROUP if public else RoomType.PUBLIC
            if room.type != wanted_from:
                raise InvalidInput("The conversation type does not allow this", reason="wrong-room-type")
            assert participant is not None
            await core.rooms.update(conn, room.id, type=int(RoomType.PUBLIC if public else RoomType.GROUP),
                                    **({} if public else {"password_hash": ""}))
            if not public:
                for attendee in await core.attendees.of_room(conn, room.id):
                    if attendee.is_guest or attendee.participant_type == ParticipantType.USER_SELF_JOINED:
                        await call_state.leave_all_sessions(core, conn, room, attendee, changes)
                        await core.attendees.delete(conn, attendee.id)
            await core.system_message(conn, room, participant.attendee,
                                      "guests_allowed" if public else "guests_disallowed", changes)
            changes.users.update(await core.user_ids(conn, room))
        await core.announce(changes)

    async def set_password(self, identity: Identity, token: str, password: str) -> None:
        core, changes = self.core, Changes()
        if len(password) > MAX_PASSWORD_LENGTH:
            raise InvalidInput("The password is too long", reason="invalid-password")
        async with core.db.read() as conn:
            room, _ = await core.access(conn, token, identity, Action.SET_PASSWORD)
            if room.type != RoomType.PUBLIC:
                raise Forbidden("Only public conversations have passwords", reason="not-public")
        # Hash outside the write transaction: argon2 is slow on purpose.
        password_hash = await self.hashing.hash(password) if password else ""
        async with core.db.transaction("room_password") as conn:
            room, participant = await core.access(conn, token, identity, Action.SET_PASSWORD)
            if room.type != RoomType.PUBLIC:
                raise Forbidden("Only public conversations have passwords", reason="not-public")
            assert participant is not None
            await core.rooms.update(conn, room.id, password_hash=password_hash)
            if password or room.has_password:
                await core.system_message(conn, room, participant.attendee,
                                          "password_set" if password else "password_removed", changes)
        await core.announce(changes)

    async def set_read_only(self, identity: Identity, token: str, state: int) -> None:
        core, changes = self.core, Changes()
        if state not in (ReadOnly.READ_WRITE, ReadOnly.READ_ONLY):
            raise InvalidInput("Invalid read-only state", reason="invalid-state")
        async with core.db.transaction("room_read_only") as conn:
            room, participant = await core.access(conn, token, identity, Action.SET_READ_ONLY)
            if room.type not in (RoomType.GROUP, RoomType.PUBLIC):
                raise InvalidInput("Only group and public conversations can be read-only", reason="wrong-room-type")
            assert participant is not None
            if state != room.read_only:
                if state == ReadOnly.READ_ONLY:
                    # As Talk does: a read-only conversation has no call, so everyone in it is sent out.
                    await call_state.end_for_everyone(core, conn, room, participant.attendee, changes,
                                                      name="call_ended")
                await core.rooms.update(conn, room.id, read_only=state)
                await core.system_message(conn, room, participant.attendee,
                                          "read_only" if state else "read_only_off", changes)
                changes.users.update(await core.user_ids(conn, room))
        await core.announce(changes)

    async def set_lobby(self, identity: Identity, token: str, state: int, timer: int = 0) -> None:
        core, changes = self.core, Changes()
        if state not in (LobbyState.ALL_PARTICIPANTS, LobbyState.MODERATORS_ONLY):
            raise InvalidInput("Invalid lobby state", reason="invalid-state")
        if timer < 0:
            raise InvalidInput("Invalid lobby timer", reason="invalid-timer")
        async with core.db.transaction("room_lobby") as conn:
            room, participant = await core.access(conn, token, identity, Action.SET_LOBBY)
            if room.type not in (RoomType.GROUP, RoomType.PUBLIC):
                raise InvalidInput("Only group and public conversations have a lobby", reason="wrong-room-type")
            assert participant is not None
            await core.rooms.update(conn, room.id, lobby_state=state, lobby_timer=timer if state else 0)
            if state != room.lobby_state:
                await core.system_message(conn, room, participant.attendee,
                                          "lobby_non_moderators" if state else "lobby_none", changes)
            changes.room(room)
            changes.users.update(await core.user_ids(conn, room))
        await core.announce(changes)

    async def set_favorite(self, identity: Identity, token: str, favorite: bool) -> None:
        await self._own_setting(identity, token, Action.FAVORITE, favorite=favorite)

    async def set_notification_level(self, identity: Identity, token: str, level: int, *, minimum: int) -> None:
        if not minimum <= level <= NotificationLevel.NEVER:
            raise InvalidInput("Invalid notification level", reason="invalid-level")
        await self._own_setting(identity, token, Action.NOTIFY, notification_level=level)

    async def _own_setting(self, identity: Identity, token: str, action: Action, **fields: object) -> None:
        core, changes = self.core, Changes()
        async with core.db.transaction(f"attendee_{action.value}") as conn:
            _, participant = await core.access(conn, token, identity, action)
            assert participant is not None and identity.user is not None
            await core.attendees.update(conn, participant.attendee.id, **fields)
            changes.user(identity.user.id)
        await core.announce(changes)

