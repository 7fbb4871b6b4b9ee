"""What GET room/{token} shows to whom (issue 11, password room leak), field by field as Talk's
RoomFormatter decides: someone who is not a participant (a guest or user who has not joined a public
room, with or without its password) sees only what identifies the room; a participant held back by the
lobby sees the room but neither its chat nor its call; everyone else sees everything."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.client import TalkClient
from tests.rooms.room_world import V4, GuestFactory, api, join_as_guest, new_guest

__all__ = ["new_guest"]

PUBLIC = 3

# Talk's values for a caller who is not a participant (RoomFormatter's defaults); absent keys show as is.
OUTSIDER = {
    "name": "", "displayName": "", "objectType": "", "objectId": "", "participantType": 4, "participantFlags": 0,
    "readOnly": 0, "hasCall": False, "canStartCall": False, "lastActivity": 0, "isFavorite": False,
    "notificationLevel": 3, "lobbyState": 0, "lobbyTimer": 0, "unreadMessages": 0, "unreadMention": False,
    "lastReadMessage": 0, "lastMessage": [], "lastPing": 0, "sessionId": "0",
}
OUTSIDER_V1 = {"participantInCall": False, "count": 0, "numGuests": 0}
OUTSIDER_V2 = {"canDeleteConversation": False, "canLeaveConversation": False}
OUTSIDER_V3 = {"description": "", "attendeeId": 0, "attendeePin": "", "actorType": "", "actorId": "",
               "listable": 0, "callFlag": 0, "sipEnabled": 0, "canEnableSIP": False, "lastCommonReadMessage": 0}
OUTSIDER_V4 = {"permissions": 1, "attendeePermissions": 1, "callPermissions": 1, "defaultPermissions": 1,
               "messageExpiration": 0, "unreadMentionDirect": False, "breakoutRoomMode": 0,
               "breakoutRoomStatus": 0, "callStartTime": 0, "callRecording": 0, "mentionPermissions": 0,
               "isArchived": False, "isImportant": False, "isSensitive": False}


def outsider_fields(version: int) -> dict[str, Any]:
    expected = dict(OUTSIDER)
    if version == 1:
        expected.update(OUTSIDER_V1)
    if version >= 2:
        expected.update(OUTSIDER_V2)
    if version >= 3:
        expected.update(OUTSIDER_V3)
    if version >= 4:
        expected.update(OUTSIDER_V4)
    return expected


async def _password_room(talk: TalkClient) -> str:
    """A public room with a password, a description, chat, a call under way and the lobby off."""
    await talk.make_user("alice", display_name="Alice")
    await talk.make_user("mallory")
    token: str = (await talk.ocs("POST", f"{V4}/room", user="alice",
                                 json={"roomType": PUBLIC, "roomName": "Secret plans"})).expect(201).data["token"]
    (await talk.ocs("PUT", f"{V4}/room/{token}/description", user="alice",
                    params={"description": "The plans"})).expect(200)
    (await talk.ocs("POST", f"/apps/spreed/api/v1/chat/{token}", user="alice",
                    json={"message": "the launch code is 1234"})).expect(201)
    (await talk.ocs("PUT", f"{V4}/room/{token}/password", user="alice", params={"password": "sesame"})).expect(200)
    (await talk.ocs("POST", f"{V4}/room/{token}/participants/active", user="alice")).expect(200)
    (await talk.ocs("POST", f"{V4}/call/{token}", user="alice", json={"flags": 3})).expect(200)
    return token


@pytest.mark.parametrize("version", [1, 2, 3, 4])
async def test_a_guest_who_has_not_joined_a_password_room_sees_only_what_names_it(
        talk: TalkClient, new_guest: GuestFactory, version: int) -> None:
    token = await _password_room(talk)
    guest = await new_guest()
    room = (await guest.ocs("GET", f"{api(version)}/room/{token}")).expect(200).data
    assert room["token"] == token and room["type"] == PUBLIC and room["hasPassword"] is True
    assert {key: room[key] for key in outsider_fields(version)} == outsider_fields(version)
    assert "launch code" not in str(room) and "plans" not in str(room).lower()


@pytest.mark.parametrize("version", [1, 4])
async def test_a_user_who_is_not_a_participant_sees_only_what_names_it(talk: TalkClient, version: int) -> None:
    token = await _password_room(talk)
    room = (await talk.ocs("GET", f"{api(version)}/room/{token}", user="mallory")).expect(200).data
    assert {key: room[key] for key in outsider_fields(version)} == outsider_fields(version)


async def test_after_joining_with_the_password_the_guest_sees_everything(
        talk: TalkClient, new_guest: GuestFactory) -> None:
    token = await _password_room(talk)
    guest = await new_guest()
    await join_as_guest(guest, token, password="sesame")
    room = (await guest.ocs("GET", f"{V4}/room/{token}")).expect(200).data
    assert room["name"] == "Secret plans" and room["description"] == "The plans"
    assert room["lastMessage"]["message"] == "the launch code is 1234" or room["lastMessage"]["systemMessage"]
    assert room["hasCall"] is True and room["participantType"] == 4 and room["attendeeId"] > 0


async def test_a_participant_behind_the_lobby_sees_the_room_but_not_its_chat_or_call(talk: TalkClient) -> None:
    token = await _password_room(talk)
    await talk.make_user("bob")
    (await talk.ocs("POST", f"{V4}/room/{token}/participants", user="alice",
                    json={"newParticipant": "bob", "source": "users"})).expect(200)
    (await talk.ocs("PUT", f"{V4}/room/{token}/webinar/lobby", user="alice", params={"state": 1})).expect(200)
    room = (await talk.ocs("GET", f"{V4}/room/{token}", user="bob")).expect(200).data
    assert room["name"] == "Secret plans" and room["description"] == "The plans" and room["lobbyState"] == 1
    assert room["lastMessage"] == [] and room["hasCall"] is False and room["canStartCall"] is False
    assert room["unreadMessages"] == 0 and room["lastReadMessage"] == 0 and room["unreadMention"] is False
    assert room["canLeaveConversation"] is True and room["canDeleteConversation"] is False
    moderator = (await talk.ocs("GET", f"{V4}/room/{token}", user="alice")).expect(200).data
    assert moderator["lastMessage"] != [] and moderator["hasCall"] is True
