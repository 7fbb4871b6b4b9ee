"""Conversations, their attendees and sessions: Talk's constants and the entities storage builds.

The numbers are Talk's wire values (docs/constants.md of nextcloud/spreed), so they pass through the
API unchanged."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from talkd.ids import RoomToken


class RoomType(enum.IntEnum):
    ONE_TO_ONE = 1
    GROUP = 2
    PUBLIC = 3
    CHANGELOG = 4  # not created by talkd; listed so the number is never reused


class ParticipantType(enum.IntEnum):
    OWNER = 1
    MODERATOR = 2
    USER = 3
    GUEST = 4
    USER_SELF_JOINED = 5
    GUEST_MODERATOR = 6


MODERATOR_TYPES = frozenset({ParticipantType.OWNER, ParticipantType.MODERATOR, ParticipantType.GUEST_MODERATOR})
# Moderators with an account (Talk's hasModeratorPermissions(false)): the ones a room must keep.
ACCOUNT_MODERATOR_TYPES = frozenset({ParticipantType.OWNER, ParticipantType.MODERATOR})
# The users a conversation belongs to (Talk's getNumberOfUsers): self-joined users and guests come
# and go with their sessions and neither keep a room alive nor need a moderator left behind.
MEMBER_TYPES = frozenset({ParticipantType.OWNER, ParticipantType.MODERATOR, ParticipantType.USER})


class ActorType(enum.StrEnum):
    USERS = "users"
    GUESTS = "guests"
    EMAILS = "emails"  # a guest invited by e-mail, before they joined
    GROUPS = "groups"  # the group an attendee list was filled from (Talk keeps it as an attendee)


class NotificationLevel(enum.IntEnum):
    DEFAULT = 0
    ALWAYS = 1
    MENTION = 2
    NEVER = 3


class InCall(enum.IntFlag):
    """Participant in-call flags (Talk's Participant::FLAG_*)."""

    DISCONNECTED = 0
    IN_CALL = 1
    WITH_AUDIO = 2
    WITH_VIDEO = 4
    WITH_PHONE = 8


IN_CALL_ALL = int(InCall.IN_CALL | InCall.WITH_AUDIO | InCall.WITH_VIDEO | InCall.WITH_PHONE)


class LobbyState(enum.IntEnum):
    ALL_PARTICIPANTS = 0
    MODERATORS_ONLY = 1


class ReadOnly(enum.IntEnum):
    READ_WRITE = 0
    READ_ONLY = 1


class Permission(enum.IntFlag):
    """Attendee permissions (Talk's Attendee::PERMISSIONS_*)."""

    DEFAULT = 0
    CUSTOM = 1
    CALL_START = 2
    CALL_JOIN = 4
    LOBBY_IGNORE = 8
    PUBLISH_AUDIO = 16
    PUBLISH_VIDEO = 32
    PUBLISH_SCREEN = 64
    CHAT = 128


PERMISSIONS_MAX = 254  # every permission but CUSTOM: what moderators have
PERMISSIONS_PARTICIPANT = PERMISSIONS_MAX & ~int(Permission.LOBBY_IGNORE)


@dataclass(frozen=True)
class Room:
    id: int
    token: RoomToken
    type: RoomType
    name: str
    description: str
    password_hash: str
    read_only: int
    lobby_state: int
    lobby_timer: int
    object_type: str
    object_id: str
    created_at: int
    last_activity: int
    last_message_id: int
    call_started_at: int  # 0: no call
    call_flag: int
    default_permissions: int
    call_permissions: int

    @property
    def has_password(self) -> bool:
        return bool(self.password_hash)

    @property
    def has_call(self) -> bool:
        return self.call_started_at > 0


@dataclass(frozen=True)
class Attendee:
    id: int
    room_id: int
    actor_type: ActorType
    actor_id: str
    display_name: str
    participant_type: ParticipantType
    favorite: bool
    notification_level: int
    last_read_message: int
    last_mention_message: int
    last_mention_direct: int
    permissions: int
    access_token: str  # e-mail invitations: the secret in the invitation link (hashed)

    @property
    def is_moderator(self) -> bool:
        return self.participant_type in MODERATOR_TYPES

    @property
    def is_guest(self) -> bool:
        return self.actor_type in (ActorType.GUESTS, ActorType.EMAILS)


@dataclass(frozen=True)
class Session:
    """One connected client of an attendee (a browser tab, an app): what sessionId names."""

    id: int
    session_id: str
    attendee_id: int
    web_session_id: int | None
    in_call: int
    last_ping: int


@dataclass(frozen=True)
class Participant:
    """An attendee of a room with the session through which the caller acts (None when not joined)."""

    room: Room
    attendee: Attendee
    session: Session | None = None

    @property
    def is_moderator(self) -> bool:
        return self.attendee.is_moderator


class Verb(enum.StrEnum):
    """What a chat-store row is (Talk's comment verbs)."""

    COMMENT = "comment"
    SYSTEM = "system"
    COMMAND = "command"
    COMMENT_DELETED = "comment_deleted"


@dataclass(frozen=True)
class ChatMessage:
    """A row of the chat store. For system messages `message` is the event name (`conversation_created`)
    and `parameters` its raw values; the chat serializer turns both into Rich Object Strings."""

    id: int
    room_id: int
    actor_type: str
    actor_id: str
    actor_display_name: str
    verb: Verb
    message: str
    parameters: dict[str, object]
    reference_id: str
    parent_id: int
    created_at: int
