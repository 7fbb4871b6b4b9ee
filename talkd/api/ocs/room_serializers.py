"""Conversations and participants on the OCS wire, per API version (v1..v4). THE place where the
versions of the room and participant APIs differ; handlers are shared."""

from __future__ import annotations

from typing import Any

from talkd.api.ocs.chat_serializers import message_data
from talkd.domain.conversation import (
    ActorType,
    InCall,
    LobbyState,
    NotificationLevel,
    ParticipantType,
    Permission,
    RoomType,
)
from talkd.domain.participants import Member
from talkd.domain.rooms import RoomView, Standing, notification_level

# What someone who is not a participant is told (Talk's RoomFormatter defaults): only id, token, type,
# hasPassword and the avatar stay real, so a password or an invitation protects everything else.
OUTSIDER_VALUES: dict[str, Any] = {
    "name": "", "displayName": "", "objectType": "", "objectId": "", "participantType": int(ParticipantType.GUEST),
    "participantFlags": 0, "readOnly": 0, "lastPing": 0, "sessionId": "0", "hasCall": False, "canStartCall": False,
    "lastActivity": 0, "isFavorite": False, "notificationLevel": int(NotificationLevel.NEVER), "lobbyState": 0,
    "lobbyTimer": 0, "unreadMessages": 0, "unreadMention": False, "lastReadMessage": 0, "lastMessage": [],
    "participantInCall": False, "count": 0, "numGuests": 0, "canDeleteConversation": False,
    "canLeaveConversation": False, "description": "", "attendeeId": 0, "attendeePin": "", "actorType": "",
    "actorId": "", "listable": 0, "callFlag": 0, "sipEnabled": 0, "canEnableSIP": False, "lastCommonReadMessage": 0,
    "permissions": int(Permission.CUSTOM), "attendeePermissions": int(Permission.CUSTOM),
    "callPermissions": int(Permission.CUSTOM), "defaultPermissions": int(Permission.CUSTOM), "messageExpiration": 0,
    "unreadMentionDirect": False, "breakoutRoomMode": 0, "breakoutRoomStatus": 0, "callStartTime": 0,
    "callRecording": 0, "mentionPermissions": 0, "isArchived": False, "isImportant": False, "isSensitive": False,
}
# What the lobby hides from a participant it holds back: the chat and the call.
LOBBY_VALUES: dict[str, Any] = {
    "hasCall": False, "canStartCall": False, "canLeaveConversation": True, "canDeleteConversation": False,
    "canEnableSIP": False, "unreadMessages": 0, "unreadMention": False, "unreadMentionDirect": False,
    "lastReadMessage": 0, "lastMessage": [],
}


def room_data(view: RoomView, api_version: int) -> dict[str, Any]:
    room, attendee = view.room, view.attendee
    session = view.participant.session if view.participant else None
    in_call = session.in_call if session is not None else 0
    lobby_applies = room.lobby_state == LobbyState.MODERATORS_ONLY and not (attendee and attendee.is_moderator)
    data: dict[str, Any] = {
        "id": room.id,
        "token": room.token,
        "type": int(room.type),
        "name": room.name,
        "displayName": view.display_name,
        "participantType": int(attendee.participant_type) if attendee else 0,
        "participantFlags": in_call,
        "readOnly": room.read_only,
        "lastPing": session.last_ping if session is not None else 0,
        "sessionId": session.session_id if session is not None else "0",
        "hasPassword": room.has_password,
        "hasCall": room.has_call,
        "canStartCall": bool(view.permissions & Permission.CALL_START) and not lobby_applies,
        "lastActivity": room.last_activity,
        "isFavorite": bool(attendee and attendee.favorite),
        "notificationLevel": notification_level(room, attendee),
        "lobbyState": room.lobby_state,
        "lobbyTimer": room.lobby_timer,
        "unreadMessages": view.unread_messages,
        "unreadMention": view.unread_mention,
        "lastReadMessage": attendee.last_read_message if attendee else 0,
        "lastMessage": message_data(view.last_message, room.token) if view.last_message is not None else [],
        "objectType": room.object_type,
        "objectId": room.object_id,
    }
    if api_version == 1:
        # v1 only: the boolean the in-call flags replaced, and the counts the participant list replaced.
        data["participantInCall"] = bool(in_call & InCall.IN_CALL)
        data["count"] = view.active_users
        data["numGuests"] = view.active_guests
    if api_version >= 2:
        data["canDeleteConversation"] = view.can_delete
        data["canLeaveConversation"] = view.can_leave
    if api_version >= 3:
        data.update({
            "description": room.description,
            "attendeeId": attendee.id if attendee else 0,
            "attendeePin": "",
            "actorType": attendee.actor_type.value if attendee else "",
            "actorId": attendee.actor_id if attendee else "",
            "listable": 0,
            "callFlag": room.call_flag,
            "sipEnabled": 0,
            "canEnableSIP": False,
            "lastCommonReadMessage": 0,
        })
    if api_version >= 4:
        data.update({
            "permissions": view.permissions,
            "attendeePermissions": attendee.permissions if attendee else 0,
            "callPermissions": room.call_permissions,
            "defaultPermissions": room.default_permissions,
            "messageExpiration": 0,
            "unreadMentionDirect": view.unread_mention_direct,
            "breakoutRoomMode": 0,
            "breakoutRoomStatus": 0,
            "avatarVersion": f"{room.id:x}{room.created_at:x}",
            "isCustomAvatar": False,
            "callStartTime": room.call_started_at,
            "callRecording": 0,
            "recordingConsent": 0,
            "mentionPermissions": 0,
            "isArchived": False,
            "isImportant": False,
            "isSensitive": False,
        })
    hidden = {Standing.OUTSIDER: OUTSIDER_VALUES, Standing.LOBBY: LOBBY_VALUES}.get(view.standing, {})
    for key in hidden.keys() & data.keys():
        data[key] = hidden[key]
    return data


def created_room_data(view: RoomView, api_version: int) -> dict[str, Any]:
    """POST /room: the seed's v1 answer is token, name and displayName; later versions the whole room."""
    if api_version == 1:
        return {"token": view.room.token, "name": view.room.name, "displayName": view.display_name}
    return room_data(view, api_version)


def participant_data(member: Member, room_type: RoomType, api_version: int, permissions: int) -> dict[str, Any]:
    attendee = member.attendee
    newest = member.sessions[-1] if member.sessions else None
    data: dict[str, Any] = {
        "displayName": attendee.display_name,
        "participantType": int(attendee.participant_type),
        "lastPing": member.last_ping,
        "inCall": member.in_call,
    }
    if api_version <= 2:
        data["userId"] = attendee.actor_id if attendee.actor_type == ActorType.USERS else ""
    if api_version <= 3:
        data["sessionId"] = newest.session_id if newest is not None else "0"
    if api_version >= 3:
        data.update({"attendeeId": attendee.id, "actorType": attendee.actor_type.value, "actorId": attendee.actor_id,
                     "attendeePin": ""})
    if api_version >= 4:
        data.update({"permissions": permissions, "attendeePermissions": attendee.permissions,
                     "sessionIds": [s.session_id for s in member.sessions]})
    return data
