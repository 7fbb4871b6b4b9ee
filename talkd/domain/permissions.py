"""Who may do what in a conversation: the one place where these rules live.

Every mutation of a room or its attendee list names an Action; `require` answers for the caller's
participant (None: the caller does not take part). Services call it before they change anything, and
the permission-matrix test walks this table through the HTTP API.

    not a participant        → NotFound (the room is invisible), except joining a public room
    guest (types 4, 6)       → no favorites or notification levels (they are account settings)
    user (types 3, 5)        → their own settings, leaving, joining
    moderator (types 1, 2, 6)→ everything about the room and the attendee list, deleting it too
    logged-in moderator      → the actions Talk reserves for accounts (types 1, 2): adding people,
                               opening or closing the room to guests, read-only and lobby states
    call actions             → additionally refused in read-only rooms (403) and, for non-moderators
                               without the lobby-ignore permission, behind the lobby (412)
"""

from __future__ import annotations

import enum

from talkd.domain.conversation import (
    MODERATOR_TYPES,
    InCall,
    LobbyState,
    Participant,
    ParticipantType,
    Permission,
    ReadOnly,
    Room,
    RoomType,
)
from talkd.errors import Forbidden, NotAuthenticated, NotFound, PreconditionFailed, RoomNotFound


class Action(enum.Enum):
    VIEW = "view"
    VIEW_PARTICIPANTS = "view-participants"
    JOIN = "join"
    LEAVE = "leave"                    # end one's own session
    REMOVE_SELF = "remove-self"        # stop being an attendee
    FAVORITE = "favorite"
    NOTIFY = "notify"
    SET_GUEST_NAME = "set-guest-name"
    RENAME = "rename"
    SET_DESCRIPTION = "set-description"
    SET_PASSWORD = "set-password"
    SET_READ_ONLY = "set-read-only"
    SET_LOBBY = "set-lobby"
    PROMOTE = "promote"
    DEMOTE = "demote"
    REMOVE_ATTENDEE = "remove-attendee"
    ADD_PARTICIPANT = "add-participant"
    INVITE_EMAIL = "invite-email"
    MAKE_PUBLIC = "make-public"
    MAKE_PRIVATE = "make-private"
    DELETE = "delete"
    READ_CHAT = "read-chat"
    SET_READ_MARKER = "set-read-marker"
    POST_CHAT = "post-chat"
    DELETE_ANY_MESSAGE = "delete-any-message"
    VIEW_CALL = "view-call"
    JOIN_CALL = "join-call"            # also: change one's in-call flags
    LEAVE_CALL = "leave-call"
    END_CALL_FOR_ALL = "end-call-for-all"
    SIGNAL = "signal"                  # internal signaling: send to and pull for one's own session
    SIGNAL_CONTROL = "signal-control"  # signaling messages of type "control" (mute or remove others)


class Role(enum.IntEnum):
    """What a caller is in one room, from least to most."""

    OUTSIDER = 0           # sees a public room, may join it
    GUEST = 1
    USER = 2
    MODERATOR = 3          # includes guest moderators
    ACCOUNT_MODERATOR = 4  # owner or moderator with an account


# The least role each action needs.
NEEDS: dict[Action, Role] = {
    Action.VIEW: Role.OUTSIDER,
    Action.JOIN: Role.OUTSIDER,
    Action.VIEW_PARTICIPANTS: Role.GUEST,
    Action.LEAVE: Role.GUEST,
    Action.REMOVE_SELF: Role.GUEST,
    Action.SET_GUEST_NAME: Role.GUEST,
    Action.FAVORITE: Role.USER,
    Action.NOTIFY: Role.USER,
    Action.RENAME: Role.MODERATOR,
    Action.SET_DESCRIPTION: Role.MODERATOR,
    Action.SET_PASSWORD: Role.MODERATOR,
    Action.SET_READ_ONLY: Role.ACCOUNT_MODERATOR,
    Action.SET_LOBBY: Role.ACCOUNT_MODERATOR,
    Action.PROMOTE: Role.MODERATOR,
    Action.DEMOTE: Role.MODERATOR,
    Action.REMOVE_ATTENDEE: Role.MODERATOR,
    Action.DELETE: Role.MODERATOR,
    Action.ADD_PARTICIPANT: Role.ACCOUNT_MODERATOR,
    Action.INVITE_EMAIL: Role.ACCOUNT_MODERATOR,
    Action.MAKE_PUBLIC: Role.ACCOUNT_MODERATOR,
    Action.MAKE_PRIVATE: Role.ACCOUNT_MODERATOR,
    Action.READ_CHAT: Role.GUEST,
    Action.SET_READ_MARKER: Role.USER,
    Action.POST_CHAT: Role.GUEST,
    Action.DELETE_ANY_MESSAGE: Role.MODERATOR,
    Action.VIEW_CALL: Role.GUEST,
    Action.JOIN_CALL: Role.GUEST,
    Action.LEAVE_CALL: Role.GUEST,
    Action.END_CALL_FOR_ALL: Role.MODERATOR,
    Action.SIGNAL: Role.GUEST,
    Action.SIGNAL_CONTROL: Role.MODERATOR,
}

# Actions of the call API, which Talk refuses in read-only conversations (403) and, for those the
# lobby keeps out, while the lobby is on (412) - checked in this order, after "not a participant" (404).
CALL_ACTIONS = frozenset({Action.VIEW_CALL, Action.JOIN_CALL, Action.LEAVE_CALL, Action.END_CALL_FOR_ALL})


# Account-only actions Talk answers with 404 (not 401) for guests.
NOT_FOUND_FOR_GUESTS = frozenset({Action.SET_READ_MARKER})


def role_of(participant: Participant | None) -> Role:
    if participant is None:
        return Role.OUTSIDER
    kind = participant.attendee.participant_type
    if kind in (ParticipantType.OWNER, ParticipantType.MODERATOR):
        return Role.ACCOUNT_MODERATOR
    if kind in MODERATOR_TYPES:
        return Role.MODERATOR
    if participant.attendee.is_guest:
        return Role.GUEST
    return Role.USER


def visible(room: Room, participant: Participant | None) -> bool:
    """Talk's getRoomForUserByToken: attendees see their rooms; anyone sees a public room."""
    return participant is not None or room.type == RoomType.PUBLIC


def require(action: Action, room: Room, participant: Participant | None) -> None:
    """Raise unless the caller may do `action`; invisible rooms are NotFound, never Forbidden."""
    if not visible(room, participant):
        raise RoomNotFound("Conversation not found")
    role = role_of(participant)
    needed = NEEDS[action]
    if role >= needed:
        if action in CALL_ACTIONS:
            _require_call_allowed(room, participant, role)
        return
    if role is Role.OUTSIDER:
        raise NotFound("Not a participant of this conversation")
    if action in NOT_FOUND_FOR_GUESTS:
        raise NotFound("Guests have no read marker")
    if needed is Role.USER:
        # Favorites and notification levels belong to an account: a guest is "not logged in".
        raise NotAuthenticated("Guests have no account settings")
    raise Forbidden("Only moderators may do this")


def require_chat(room: Room, participant: Participant | None, *, write: bool) -> None:
    """Chat needs a participant; the lobby hides it from non-moderators (412) and a read-only room
    refuses every new message, moderators' too (403)."""
    require(Action.POST_CHAT if write else Action.READ_CHAT, room, participant)
    assert participant is not None
    if lobby_blocks(room, participant):
        raise PreconditionFailed("The lobby is active", reason="lobby")
    if write and room.read_only == ReadOnly.READ_ONLY:
        raise Forbidden("The conversation is read-only", reason="read-only")


def lobby_blocks(room: Room, participant: Participant | None) -> bool:
    if room.lobby_state != LobbyState.MODERATORS_ONLY:
        return False
    if participant is None:
        return True
    return not (participant.is_moderator or participant.attendee.permissions & Permission.LOBBY_IGNORE)


def _require_call_allowed(room: Room, participant: Participant | None, role: Role) -> None:
    if room.read_only == ReadOnly.READ_ONLY:
        raise Forbidden("The conversation is read-only", reason="read-only")
    if room.lobby_state == LobbyState.MODERATORS_ONLY and role < Role.MODERATOR:
        ignores_lobby = participant is not None and participant.attendee.permissions & Permission.LOBBY_IGNORE
        if not ignores_lobby:
            raise PreconditionFailed("The lobby is active", reason="lobby")


def require_call_permission(permissions: int, *, call_running: bool) -> None:
    """Starting a call needs the "start call" permission, joining a running one "join call"
    (`permissions`: the caller's effective attendee permissions)."""
    needed = Permission.CALL_JOIN if call_running else Permission.CALL_START
    if not permissions & needed:
        raise Forbidden("Missing the permission to " + ("join" if call_running else "start") + " the call",
                        reason="no-call-permission")


def call_flags_allowed(permissions: int, flags: int) -> int:
    """In-call flags as the caller may publish: audio and video only with their publish permissions."""
    if not permissions & Permission.PUBLISH_AUDIO:
        flags &= ~int(InCall.WITH_AUDIO)
    if not permissions & Permission.PUBLISH_VIDEO:
        flags &= ~int(InCall.WITH_VIDEO)
    return flags


def can(action: Action, room: Room, participant: Participant | None) -> bool:
    try:
        require(action, room, participant)
    except (Forbidden, NotFound, NotAuthenticated):
        return False
    return True
