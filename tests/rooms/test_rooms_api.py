"""Room management through the HTTP API, as the seed (API v1) and Talk's docs/conversation.md (v4)
describe it: every endpoint, every status code they list, the system message each change writes, and,
for every refusal, proof from storage that nothing changed."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
import sqlalchemy as sa

from talkd.services import Services
from talkd.storage import tables
from tests.helpers.client import OcsReply, TalkClient
from tests.rooms.room_world import (
    V4,
    GuestFactory,
    api,
    join_as_guest,
    new_guest,
    snapshot,
    system_messages,
)

__all__ = ["new_guest"]  # the fixture, imported so pytest finds it

ONE_TO_ONE, GROUP, PUBLIC = 1, 2, 3

# The seed's "Get user's rooms" fields, each room has at least these (v1).
SEED_ROOM_FIELDS = {
    "token": str, "type": int, "name": str, "displayName": str, "participantType": int,
    "participantInCall": bool, "participantFlags": int, "count": int, "numGuests": int, "lastPing": int,
    "sessionId": str, "hasPassword": bool, "hasCall": bool, "lastActivity": int, "isFavorite": bool,
    "notificationLevel": int, "unreadMessages": int, "unreadMention": bool, "objectType": str, "objectId": str,
}
V1_ONLY = {"participantInCall", "count", "numGuests"}
V2_ADDED = {"canDeleteConversation", "canLeaveConversation"}
V3_ADDED = {"description", "attendeeId", "attendeePin", "actorType", "actorId", "listable", "callFlag",
            "sipEnabled", "canEnableSIP", "lastCommonReadMessage"}
V4_ADDED = {"permissions", "attendeePermissions", "callPermissions", "defaultPermissions", "messageExpiration",
            "unreadMentionDirect", "breakoutRoomMode", "breakoutRoomStatus", "avatarVersion", "isCustomAvatar",
            "callStartTime", "callRecording"}


async def people(talk: TalkClient, *names: str) -> None:
    for name in names:
        await talk.make_user(name, display_name=name.capitalize())


async def create(talk: TalkClient, user: str, room_type: int, name: str = "", invite: str = "", *,
                 version: int = 4, expect: int = 201) -> OcsReply:
    body: dict[str, Any] = {"roomType": room_type}
    if name:
        body["roomName"] = name
    if invite:
        body["invite"] = invite
    return (await talk.ocs("POST", f"{api(version)}/room", user=user, json=body)).expect(expect)


async def new_room(talk: TalkClient, user: str, room_type: int, name: str = "Team", invite: str = "") -> str:
    token: str = (await create(talk, user, room_type, name if room_type != ONE_TO_ONE else "", invite)).data["token"]
    return token


async def add(talk: TalkClient, owner: str, token: str, *users: str) -> None:
    for user in users:
        (await talk.ocs("POST", f"{V4}/room/{token}/participants", user=owner,
                        json={"newParticipant": user, "source": "users"})).expect(200)


async def get(talk: TalkClient, token: str, user: str | None, *, version: int = 4) -> dict[str, Any]:
    data: dict[str, Any] = (await talk.ocs("GET", f"{api(version)}/room/{token}", user=user)).expect(200).data
    return data


async def rooms_of(talk: TalkClient, user: str, **params: Any) -> OcsReply:
    return (await talk.ocs("GET", f"{V4}/room", user=user, params=params)).expect(200)


async def last_system(services: Services, token: str) -> tuple[str, str, dict[str, object]]:
    return (await system_messages(services, token))[-1]


async def refused(talk: TalkClient, services: Services, token: str, code: int, method: str, path: str, *,
                  user: str | None, version: int = 4, **kwargs: Any) -> OcsReply:
    """Call, expect `code`, and prove from storage that the refusal changed nothing."""
    before = await snapshot(services, token)
    reply = (await talk.ocs(method, f"{api(version)}/room/{token}{path}", user=user, **kwargs)).expect(code)
    assert await snapshot(services, token) == before
    return reply


async def room_count(services: Services) -> int:
    """Every room in storage, whoever attends it."""
    async with services.db.read() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(tables.rooms))).scalar_one())


async def set_activity(services: Services, token: str, when: int) -> None:
    """Setup: pretend the room's last activity happened at `when` (the clock is real, seconds coarse)."""
    core = services.conversations.core
    async with services.db.transaction("test") as conn:
        room = await core.rooms.by_token(conn, token)
        assert room is not None
        await core.rooms.update(conn, room.id, last_activity=when)


# Creating -----------------------------------------------------------------------------------------


async def test_v1_one_to_one_is_created_once_per_pair(talk: TalkClient, services: Services) -> None:
    await people(talk, "alice", "bob")
    first = await create(talk, "alice", ONE_TO_ONE, invite="bob", version=1)
    # The seed's answer: token, name and displayName, nothing else.
    assert set(first.data) == {"token", "name", "displayName"}
    assert re.fullmatch(r"[a-z0-9]{8,32}", first.data["token"])
    assert first.data["displayName"] == "Bob"
    token = first.data["token"]
    again = await create(talk, "alice", ONE_TO_ONE, invite="bob", version=1, expect=200)
    assert again.data["token"] == token
    # The same pair seen from the other side is the same room, named after the other person.
    from_bob = await create(talk, "bob", ONE_TO_ONE, invite="alice", version=1, expect=200)
    assert from_bob.data == {"token": token, "name": first.data["name"], "displayName": "Alice"}
    assert [r["token"] for r in (await rooms_of(talk, "alice")).data] == [token]
    assert [name for name, _, _ in await system_messages(services, token)] == ["conversation_created"]


async def test_concurrent_one_to_one_creates_make_one_room(talk: TalkClient, services: Services) -> None:
    """Both people open the conversation at once, several times: one room, created by exactly one request."""
    await people(talk, "alice", "bob")
    pairs = [("alice", "bob"), ("bob", "alice")] * 4
    replies = await asyncio.gather(*(talk.ocs("POST", f"{V4}/room", user=user, json={"roomType": ONE_TO_ONE,
                                                                                      "invite": other})
                                     for user, other in pairs))
    assert sorted(reply.http_status for reply in replies) == [200] * 7 + [201]
    assert len({reply.data["token"] for reply in replies}) == 1
    assert await room_count(services) == 1


async def test_v4_one_to_one_answers_the_whole_room(talk: TalkClient) -> None:
    await people(talk, "alice", "bob")
    created = (await create(talk, "alice", ONE_TO_ONE, invite="bob")).data
    assert created["type"] == ONE_TO_ONE and created["displayName"] == "Bob"
    assert created["participantType"] == 1 and created["actorType"] == "users" and created["actorId"] == "alice"
    assert created["attendeeId"] > 0 and created["canDeleteConversation"] is False
    again = (await create(talk, "alice", ONE_TO_ONE, invite="bob", expect=200)).data
    assert again["token"] == created["token"] and again["attendeeId"] == created["attendeeId"]
    bob_view = await get(talk, created["token"], "bob")
    assert bob_view["participantType"] == 1 and bob_view["displayName"] == "Alice"


@pytest.mark.parametrize("version", [1, 2, 3, 4])
@pytest.mark.parametrize("room_type", [0, 4, 5, -1])
async def test_invalid_room_type_is_400_and_creates_nothing(talk: TalkClient, version: int, room_type: int) -> None:
    await people(talk, "alice", "bob")
    await create(talk, "alice", room_type, name="X", invite="bob", version=version, expect=400)
    assert await room_count(talk.services) == 0


@pytest.mark.parametrize("version", [1, 4])
async def test_unknown_invitee_is_404_and_creates_nothing(talk: TalkClient, version: int) -> None:
    await people(talk, "alice")
    await create(talk, "alice", ONE_TO_ONE, invite="ghost", version=version, expect=404)
    await create(talk, "alice", ONE_TO_ONE, invite="alice", version=version, expect=404)  # not with oneself
    await create(talk, "alice", ONE_TO_ONE, version=version, expect=404)
    await create(talk, "alice", GROUP, name="G", invite="no-such-group", version=version, expect=404)
    assert await room_count(talk.services) == 0


@pytest.mark.parametrize("version", [1, 4])
async def test_creating_needs_a_login(talk: TalkClient, version: int) -> None:
    (await talk.ocs("POST", f"{api(version)}/room", json={"roomType": GROUP, "roomName": "X"})).expect(997)
    (await talk.ocs("POST", f"{api(version)}/room", json={"roomType": GROUP, "roomName": "X"},
                    user="admin", password="wrong")).expect(997)
    assert await room_count(talk.services) == 0


@pytest.mark.parametrize("version", [1, 4])
async def test_group_room_from_a_group_adds_its_members(talk: TalkClient, services: Services, version: int) -> None:
    await people(talk, "alice", "bob", "carol", "dave")
    await services.accounts.create_group("crew", "The Crew")
    for member in ("alice", "bob", "carol"):
        await services.accounts.add_to_group(member, "crew")
    created = (await create(talk, "alice", GROUP, invite="crew", version=version)).data
    token = created["token"]
    assert created["displayName"] == "The Crew"  # no roomName: the group's name
    members = (await talk.ocs("GET", f"{V4}/room/{token}/participants", user="alice")).expect(200).data
    assert sorted((m["actorId"], m["participantType"]) for m in members) == [("alice", 1), ("bob", 3), ("carol", 3)]
    for member in ("bob", "carol"):
        assert (await get(talk, token, member))["participantType"] == 3
    await refused(talk, services, token, 404, "GET", "", user="dave")
    messages = await system_messages(services, token)
    assert [m[0] for m in messages] == ["conversation_created", "user_added", "user_added"]
    assert sorted(str(m[2]["user"]["id"]) for m in messages[1:]) == ["bob", "carol"]  # type: ignore[index]
    assert all(actor == "alice" for _, actor, _ in messages)


@pytest.mark.parametrize("version", [1, 4])
async def test_empty_group_room_has_only_its_owner(talk: TalkClient, version: int) -> None:
    await people(talk, "alice")
    created = await create(talk, "alice", GROUP, name="Empty", version=version)
    token = created.data["token"]
    assert created.data["displayName"] == "Empty"
    members = (await talk.ocs("GET", f"{V4}/room/{token}/participants", user="alice")).expect(200).data
    assert [(m["actorId"], m["participantType"]) for m in members] == [("alice", 1)]


async def test_public_room_needs_a_name_in_v4(talk: TalkClient, services: Services) -> None:
    await people(talk, "alice")
    await create(talk, "alice", PUBLIC, version=4, expect=400)
    await create(talk, "alice", PUBLIC, name="   ", version=4, expect=400)
    assert await room_count(talk.services) == 0
    token = (await create(talk, "alice", PUBLIC, name="Open")).data["token"]
    assert [m[0] for m in await system_messages(services, token)] == ["conversation_created", "guests_allowed"]
    room = await get(talk, token, "alice")
    assert room["type"] == PUBLIC and room["lastMessage"]["systemMessage"] == "guests_allowed"


@pytest.mark.parametrize(("version", "limit"), [(1, 200), (2, 200), (3, 200), (4, 255)])
async def test_room_name_length_on_create(talk: TalkClient, version: int, limit: int) -> None:
    await people(talk, "alice")
    await create(talk, "alice", GROUP, name="n" * (limit + 1), version=version, expect=400)
    assert await room_count(talk.services) == 0
    created = await create(talk, "alice", GROUP, name="n" * limit, version=version)
    assert created.data["name"] == "n" * limit


# Listing ------------------------------------------------------------------------------------------


async def test_list_puts_favorites_first_then_latest_activity(talk: TalkClient, services: Services) -> None:
    await people(talk, "alice", "bob")
    old, middle, new, fav = [await new_room(talk, "alice", GROUP, name) for name in ("old", "mid", "new", "fav")]
    for token, when in ((old, 1_000), (middle, 2_000), (new, 3_000), (fav, 500)):
        await set_activity(services, token, when)
    assert [r["name"] for r in (await rooms_of(talk, "alice")).data] == ["new", "mid", "old", "fav"]
    (await talk.ocs("POST", f"{V4}/room/{fav}/favorite", user="alice")).expect(200)
    (await talk.ocs("POST", f"{V4}/room/{old}/favorite", user="alice")).expect(200)
    listed = (await rooms_of(talk, "alice")).data
    assert [(r["name"], r["isFavorite"]) for r in listed] == [
        ("old", True), ("fav", True), ("new", False), ("mid", False)]
    # Favorites are the caller's own: bob sees the same rooms in activity order.
    await add(talk, "alice", old, "bob")
    await add(talk, "alice", fav, "bob")
    await set_activity(services, old, 1_000)
    await set_activity(services, fav, 500)
    assert [(r["name"], r["isFavorite"]) for r in (await rooms_of(talk, "bob")).data] == [
        ("old", False), ("fav", False)]


async def test_list_headers_and_modified_since(talk: TalkClient, services: Services) -> None:
    await people(talk, "alice")
    quiet, busy = await new_room(talk, "alice", GROUP, "quiet"), await new_room(talk, "alice", GROUP, "busy")
    await set_activity(services, quiet, 1_000)
    await set_activity(services, busy, 5_000)
    first = await rooms_of(talk, "alice")
    talk_hash = first.headers["X-Nextcloud-Talk-Hash"]
    assert re.fullmatch(r"[0-9a-f]{40}", talk_hash)
    before = int(first.headers["X-Nextcloud-Talk-Modified-Before"])
    assert before > 5_000
    # The hash only changes with configuration; the same answer for get.
    assert (await rooms_of(talk, "alice")).headers["X-Nextcloud-Talk-Hash"] == talk_hash
    single = (await talk.ocs("GET", f"{V4}/room/{busy}", user="alice")).expect(200)
    assert single.headers["X-Nextcloud-Talk-Hash"] == talk_hash
    # modifiedSince: only rooms with a newer lastActivity.
    assert [r["name"] for r in (await rooms_of(talk, "alice", modifiedSince=999)).data] == ["busy", "quiet"]
    assert [r["name"] for r in (await rooms_of(talk, "alice", modifiedSince=1_000)).data] == ["busy"]
    assert (await rooms_of(talk, "alice", modifiedSince=5_000)).data == []
    assert (await rooms_of(talk, "alice", modifiedSince=before)).data == []
    # A room changed afterwards shows up again with the header's value as modifiedSince.
    (await talk.ocs("PUT", f"{V4}/room/{quiet}", user="alice", params={"roomName": "loud"})).expect(200)
    assert [r["name"] for r in (await rooms_of(talk, "alice", modifiedSince=5_000)).data] == ["loud"]
    (await talk.ocs("GET", f"{V4}/room", user="alice", params={"modifiedSince": "soon"})).expect(400)


@pytest.mark.parametrize("version", [1, 4])
async def test_list_needs_a_login_and_shows_only_own_rooms(talk: TalkClient, version: int) -> None:
    await people(talk, "alice", "bob")
    await new_room(talk, "alice", GROUP)
    (await talk.ocs("GET", f"{api(version)}/room")).expect(997)
    assert (await talk.ocs("GET", f"{api(version)}/room", user="bob")).expect(200).data == []


@pytest.mark.parametrize("version", [1, 2, 3, 4])
async def test_room_fields_per_version(talk: TalkClient, new_guest: GuestFactory, version: int) -> None:
    await people(talk, "alice")
    token = await new_room(talk, "alice", PUBLIC, "Open")
    guest = await new_guest()
    await join_as_guest(guest, token)
    (await talk.ocs("POST", f"{V4}/room/{token}/participants/active", user="alice")).expect(200)
    [room] = (await talk.ocs("GET", f"{api(version)}/room", user="alice")).expect(200).data
    assert room == await get(talk, token, "alice", version=version)
    for name, kind in SEED_ROOM_FIELDS.items():
        if name in V1_ONLY and version > 1:
            assert name not in room
        else:
            assert isinstance(room[name], kind), name
    for added_in, fields in ((2, V2_ADDED), (3, V3_ADDED), (4, V4_ADDED)):
        # All of a version's fields from that version on, none of them before.
        assert fields & set(room) == (fields if version >= added_in else set()), added_in
    assert room["token"] == token and room["type"] == PUBLIC and room["name"] == room["displayName"] == "Open"
    assert room["participantType"] == 1 and len(room["sessionId"]) == 512
    assert room["lastMessage"]["systemMessage"] == "guests_allowed"
    if version == 1:
        # One user (alice) and one guest are connected.
        assert (room["count"], room["numGuests"], room["participantInCall"]) == (1, 1, False)
    if version >= 3:
        assert room["actorType"] == "users" and room["actorId"] == "alice" and room["attendeeId"] > 0
    if version >= 4:
        assert room["permissions"] == 254 and room["canDeleteConversation"] is True


# Getting ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 4])
async def test_get_public_room_as_guest_and_outsider_without_joining(
        talk: TalkClient, new_guest: GuestFactory, services: Services, version: int) -> None:
    await people(talk, "alice", "bob")
    token = await new_room(talk, "alice", PUBLIC, "Open")
    before = await snapshot(services, token)
    guest = await new_guest()
    as_guest = (await guest.ocs("GET", f"{api(version)}/room/{token}")).expect(200).data
    # Not a participant: Talk's RoomFormatter tells only what names the room (tests/rooms/test_room_visibility.py).
    assert as_guest["token"] == token and as_guest["participantType"] == 4 and as_guest["sessionId"] == "0"
    as_bob = await get(talk, token, "bob", version=version)
    assert as_bob["participantType"] == 4 and as_bob["displayName"] == ""
    assert await snapshot(services, token) == before  # looking is not joining
    assert (await rooms_of(talk, "bob")).data == []


@pytest.mark.parametrize("version", [1, 4])
async def test_get_group_room_is_404_for_outsiders(talk: TalkClient, new_guest: GuestFactory, services: Services,
                                                   version: int) -> None:
    await people(talk, "alice", "bob")
    token = await new_room(talk, "alice", GROUP)
    await refused(talk, services, token, 404, "GET", "", user="bob", version=version)
    await refused(talk, services, token, 404, "GET", "", user=None, version=version)
    guest = await new_guest()
    (await guest.ocs("GET", f"{api(version)}/room/{token}")).expect(404)
    for bad in ("nosuchroom", "x" * 33):
        (await talk.ocs("GET", f"{api(version)}/room/{bad}", user="alice")).expect(404)
    one = await new_room(talk, "alice", ONE_TO_ONE, invite="bob")
    await talk.make_user("carol")
    await refused(talk, services, one, 404, "GET", "", user="carol", version=version)


# Renaming -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "limit"), [(1, 200), (4, 255)])
async def test_rename(talk: TalkClient, services: Services, version: int, limit: int) -> None:
    await people(talk, "alice", "bob", "carol")
    token = await new_room(talk, "alice", GROUP, "Team")
    await add(talk, "alice", token, "bob")
    (await talk.ocs("PUT", f"{api(version)}/room/{token}", user="alice", params={"roomName": "Crew"})).expect(200)
    room = await get(talk, token, "bob", version=version)
    assert room["name"] == room["displayName"] == "Crew"
    assert room["lastMessage"]["systemMessage"] == "conversation_renamed"
    assert room["lastMessage"]["actorId"] == "alice"
    assert room["lastMessage"]["messageParameters"]["actor"]["id"] == "alice"
    name, actor, params = await last_system(services, token)
    assert (name, actor, params["oldName"], params["newName"]) == ("conversation_renamed", "alice", "Team", "Crew")
    # The longest allowed name, then one character more.
    (await talk.ocs("PUT", f"{api(version)}/room/{token}", user="alice", params={"roomName": "n" * limit})
     ).expect(200)
    await refused(talk, services, token, 400, "PUT", "", user="alice", version=version,
                  params={"roomName": "m" * (limit + 1)})
    await refused(talk, services, token, 400, "PUT", "", user="alice", version=version, params={"roomName": ""})
    await refused(talk, services, token, 400, "PUT", "", user="alice", version=version, params={"roomName": "  "})
    await refused(talk, services, token, 403, "PUT", "", user="bob", version=version, params={"roomName": "Bob's"})
    await refused(talk, services, token, 404, "PUT", "", user="carol", version=version, params={"roomName": "C"})
    (await talk.ocs("PUT", f"{api(version)}/room/nosuchroom", user="alice", params={"roomName": "X"})).expect(404)
    # The same name again changes nothing and writes no message.
    await refused(talk, services, token, 200, "PUT", "", user="alice", version=version,
                  params={"roomName": "n" * limit})


# The seed's v1 documents 405; Talk's later versions answer 400.
@pytest.mark.parametrize(("version", "code"), [(1, 405), (2, 400), (3, 400), (4, 400)])
async def test_one_to_one_cannot_be_renamed(talk: TalkClient, services: Services, version: int, code: int) -> None:
    await people(talk, "alice", "bob")
    token = await new_room(talk, "alice", ONE_TO_ONE, invite="bob")
    await refused(talk, services, token, code, "PUT", "", user="alice", version=version, params={"roomName": "Us"})
    assert (await get(talk, token, "alice"))["displayName"] == "Bob"


# Descriptions (v3+) -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [3, 4])
async def test_description(talk: TalkClient, services: Services, version: int) -> None:
    await people(talk, "alice", "bob", "carol")
    token = await new_room(talk, "alice", GROUP, "Team")
    await add(talk, "alice", token, "bob")
    path = f"{api(version)}/room/{token}/description"
    (await talk.ocs("PUT", path, user="alice", params={"description": "What we do"})).expect(200)
    assert (await get(talk, token, "bob", version=version))["description"] == "What we do"
    assert (await last_system(services, token))[:2] == ("description_set", "alice")
    await refused(talk, services, token, 400, "PUT", "/description", user="alice", version=version,
                  params={"description": "d" * 2001})
    await refused(talk, services, token, 403, "PUT", "/description", user="bob", version=version,
                  params={"description": "mine"})
    await refused(talk, services, token, 404, "PUT", "/description", user="carol", version=version,
                  params={"description": "mine"})
    (await talk.ocs("PUT", path, user="alice", params={"description": ""})).expect(200)
    assert (await get(talk, token, "bob", version=version))["description"] == ""
    assert (await last_system(services, token))[:2] == ("description_removed", "alice")
    one = await new_room(talk, "alice", ONE_TO_ONE, invite="bob")
    await refused(talk, services, one, 400, "PUT", "/description", user="alice", version=version,
                  params={"description": "us"})
    # v1/v2 have no description endpoint.
    (await talk.ocs("PUT", f"{api(2)}/room/{token}/description", user="alice", params={"description": "x"})
     ).expect(998)


# Deleting -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 4])
async def test_delete(talk: TalkClient, services: Services, version: int) -> None:
    await people(talk, "alice", "bob", "carol", "dave")
    token = await new_room(talk, "alice", GROUP, "Team")
    await add(talk, "alice", token, "bob", "carol")
    await refused(talk, services, token, 403, "DELETE", "", user="bob", version=version)
    await refused(talk, services, token, 404, "DELETE", "", user="dave", version=version)
    await refused(talk, services, token, 404, "DELETE", "", user=None, version=version)
    # A moderator (not only the owner) may delete.
    bob = await get(talk, token, "bob")
    (await talk.ocs("POST", f"{V4}/room/{token}/moderators", user="alice",
                    params={"attendeeId": bob["attendeeId"]})).expect(200)
    (await talk.ocs("DELETE", f"{api(version)}/room/{token}", user="bob")).expect(200)
    for user in ("alice", "bob", "carol"):
        (await talk.ocs("GET", f"{V4}/room/{token}", user=user)).expect(404)
        assert (await rooms_of(talk, user)).data == []
    assert (await snapshot(services, token)).room is None
    (await talk.ocs("DELETE", f"{api(version)}/room/{token}", user="alice")).expect(404)


@pytest.mark.parametrize(("version", "code"), [(1, 200), (4, 400)])
async def test_delete_one_to_one(talk: TalkClient, services: Services, version: int, code: int) -> None:
    await people(talk, "alice", "bob")
    token = await new_room(talk, "alice", ONE_TO_ONE, invite="bob")
    if code == 200:
        (await talk.ocs("DELETE", f"{api(version)}/room/{token}", user="alice")).expect(200)
        assert (await rooms_of(talk, "bob")).data == []
    else:
        await refused(talk, services, token, code, "DELETE", "", user="alice", version=version)
        assert (await get(talk, token, "bob"))["canDeleteConversation"] is False


# Public and private -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 4])
async def test_make_public_and_private(talk: TalkClient, services: Services, new_guest: GuestFactory,
                                       version: int) -> None:
    await people(talk, "alice", "bob", "carol", "dave")
    token = await new_room(talk, "alice", GROUP, "Team")
    await add(talk, "alice", token, "bob")
    await refused(talk, services, token, 403, "POST", "/public", user="bob", version=version)
    await refused(talk, services, token, 404, "POST", "/public", user="carol", version=version)
    await refused(talk, services, token, 997, "POST", "/public", user=None, version=version)
    (await talk.ocs("POST", f"{api(version)}/room/{token}/public", user="alice")).expect(200)
    room = await get(talk, token, "bob", version=version)
    assert room["type"] == PUBLIC and room["lastMessage"]["systemMessage"] == "guests_allowed"
    assert (await last_system(services, token))[:2] == ("guests_allowed", "alice")
    # Guests and self-joined users come in; a password is set.
    guest = await new_guest()
    await join_as_guest(guest, token)
    (await talk.ocs("POST", f"{V4}/room/{token}/participants/active", user="carol")).expect(200)
    (await talk.ocs("PUT", f"{V4}/room/{token}/password", user="alice", params={"password": "sesame"})).expect(200)
    await refused(talk, services, token, 403, "DELETE", "/public", user="bob", version=version)
    await refused(talk, services, token, 403, "DELETE", "/public", user="carol", version=version)
    await refused(talk, services, token, 404, "DELETE", "/public", user="dave", version=version)
    (await talk.ocs("DELETE", f"{api(version)}/room/{token}/public", user="alice")).expect(200)
    room = await get(talk, token, "bob", version=version)
    assert room["type"] == GROUP and room["hasPassword"] is False
    assert (await last_system(services, token))[:2] == ("guests_disallowed", "alice")
    # Going private sends the guests and self-joined users away.
    members = (await talk.ocs("GET", f"{V4}/room/{token}/participants", user="alice")).expect(200).data
    assert sorted(m["actorId"] for m in members) == ["alice", "bob"]
    (await guest.ocs("GET", f"{api(version)}/room/{token}")).expect(404)
    (await talk.ocs("GET", f"{V4}/room/{token}", user="carol")).expect(404)


@pytest.mark.parametrize("version", [1, 4])
async def test_public_private_on_the_wrong_room_type(talk: TalkClient, services: Services, version: int) -> None:
    await people(talk, "alice", "bob")
    group = await new_room(talk, "alice", GROUP)
    public = await new_room(talk, "alice", PUBLIC, "Open")
    one = await new_room(talk, "alice", ONE_TO_ONE, invite="bob")
    await refused(talk, services, group, 400, "DELETE", "/public", user="alice", version=version)
    await refused(talk, services, public, 400, "POST", "/public", user="alice", version=version)
    await refused(talk, services, one, 400, "POST", "/public", user="alice", version=version)
    await refused(talk, services, one, 400, "DELETE", "/public", user="alice", version=version)


# Passwords ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 4])
async def test_password(talk: TalkClient, services: Services, new_guest: GuestFactory, version: int) -> None:
    await people(talk, "alice", "bob", "carol")
    group = await new_room(talk, "alice", GROUP)
    await refused(talk, services, group, 403, "PUT", "/password", user="alice", version=version,
                  params={"password": "sesame"})
    token = await new_room(talk, "alice", PUBLIC, "Open")
    await add(talk, "alice", token, "bob")
    await refused(talk, services, token, 403, "PUT", "/password", user="bob", version=version,
                  params={"password": "sesame"})
    await refused(talk, services, token, 404, "PUT", "/password", user="carol", version=version,
                  params={"password": "sesame"})
    # Removing a password that is not there writes nothing.
    await refused(talk, services, token, 200, "PUT", "/password", user="alice", version=version,
                  params={"password": ""})
    (await talk.ocs("PUT", f"{api(version)}/room/{token}/password", user="alice", params={"password": "sesame"})
     ).expect(200)
    room = await get(talk, token, "bob", version=version)
    assert room["hasPassword"] is True and room["lastMessage"]["systemMessage"] == "password_set"
    assert (await last_system(services, token))[:2] == ("password_set", "alice")
    # The password now keeps guests and self-joined users out, but not attendees.
    guest = await new_guest()
    (await guest.ocs("POST", f"{V4}/room/{token}/participants/active", json={"password": "wrong"})).expect(403)
    await join_as_guest(guest, token, password="sesame")
    (await talk.ocs("POST", f"{V4}/room/{token}/participants/active", user="carol")).expect(403)
    (await talk.ocs("POST", f"{V4}/room/{token}/participants/active", user="bob")).expect(200)
    (await talk.ocs("PUT", f"{api(version)}/room/{token}/password", user="alice", params={"password": ""})
     ).expect(200)
    room = await get(talk, token, "bob", version=version)
    assert room["hasPassword"] is False and room["lastMessage"]["systemMessage"] == "password_removed"
    (await talk.ocs("POST", f"{V4}/room/{token}/participants/active", user="carol")).expect(200)


# Favorites and notification levels ----------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 4])
async def test_favorites(talk: TalkClient, services: Services, new_guest: GuestFactory, version: int) -> None:
    await people(talk, "alice", "bob", "carol")
    token = await new_room(talk, "alice", PUBLIC, "Open")
    await add(talk, "alice", token, "bob")
    (await talk.ocs("POST", f"{api(version)}/room/{token}/favorite", user="bob")).expect(200)
    assert (await get(talk, token, "bob", version=version))["isFavorite"] is True
    assert (await get(talk, token, "alice", version=version))["isFavorite"] is False
    (await talk.ocs("POST", f"{api(version)}/room/{token}/favorite", user="bob")).expect(200)  # idempotent
    (await talk.ocs("DELETE", f"{api(version)}/room/{token}/favorite", user="bob")).expect(200)
    assert (await get(talk, token, "bob", version=version))["isFavorite"] is False
    await refused(talk, services, token, 404, "POST", "/favorite", user="carol", version=version)
    await refused(talk, services, token, 404, "DELETE", "/favorite", user="carol", version=version)
    # Guests have no account to keep favorites in: Nextcloud answers "not logged in".
    guest = await new_guest()
    await join_as_guest(guest, token)
    before = await snapshot(services, token)
    (await guest.ocs("POST", f"{api(version)}/room/{token}/favorite")).expect(997)
    assert await snapshot(services, token) == before
    (await talk.ocs("POST", f"{api(version)}/room/nosuchroom/favorite", user="bob")).expect(404)


@pytest.mark.parametrize(("version", "valid", "invalid"), [
    (1, [1, 2, 3], [0, 4, -1]),
    (4, [0, 1, 2, 3], [4, -1]),
])
async def test_notification_levels(talk: TalkClient, services: Services, version: int, valid: list[int],
                                   invalid: list[int]) -> None:
    await people(talk, "alice", "bob", "carol")
    token = await new_room(talk, "alice", GROUP, "Team")
    one = await new_room(talk, "alice", ONE_TO_ONE, invite="bob")
    await add(talk, "alice", token, "bob")
    # Default (0) resolves to "mention" in group rooms and "always" in one-to-one rooms.
    assert (await get(talk, token, "bob", version=version))["notificationLevel"] == 2
    assert (await get(talk, one, "bob", version=version))["notificationLevel"] == 1
    for level in valid:
        (await talk.ocs("POST", f"{api(version)}/room/{token}/notify", user="bob", params={"level": level})
         ).expect(200)
        assert (await get(talk, token, "bob", version=version))["notificationLevel"] == (level or 2)
    (await talk.ocs("POST", f"{api(version)}/room/{token}/notify", user="bob", params={"level": 3})).expect(200)
    for level in invalid:
        await refused(talk, services, token, 400, "POST", "/notify", user="bob", version=version,
                      params={"level": level})
    await refused(talk, services, token, 400, "POST", "/notify", user="bob", version=version)
    await refused(talk, services, token, 404, "POST", "/notify", user="carol", version=version,
                  params={"level": 3})
    assert (await get(talk, token, "bob", version=version))["notificationLevel"] == 3
    assert (await get(talk, token, "alice", version=version))["notificationLevel"] == 2  # only bob's


# Read-only and lobby ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 4])
async def test_read_only(talk: TalkClient, services: Services, version: int) -> None:
    await people(talk, "alice", "bob", "carol")
    token = await new_room(talk, "alice", GROUP, "Team")
    await add(talk, "alice", token, "bob")
    await refused(talk, services, token, 403, "PUT", "/read-only", user="bob", version=version,
                  params={"state": 1})
    await refused(talk, services, token, 404, "PUT", "/read-only", user="carol", version=version,
                  params={"state": 1})
    await refused(talk, services, token, 400, "PUT", "/read-only", user="alice", version=version,
                  params={"state": 2})
    await refused(talk, services, token, 400, "PUT", "/read-only", user="alice", version=version)
    (await talk.ocs("PUT", f"{api(version)}/room/{token}/read-only", user="alice", params={"state": 1})).expect(200)
    room = await get(talk, token, "bob", version=version)
    assert room["readOnly"] == 1 and room["lastMessage"]["systemMessage"] == "read_only"
    await refused(talk, services, token, 200, "PUT", "/read-only", user="alice", version=version,
                  params={"state": 1})  # already read-only: no new message
    (await talk.ocs("PUT", f"{api(version)}/room/{token}/read-only", user="alice", params={"state": 0})).expect(200)
    room = await get(talk, token, "bob", version=version)
    assert room["readOnly"] == 0 and room["lastMessage"]["systemMessage"] == "read_only_off"
    one = await new_room(talk, "alice", ONE_TO_ONE, invite="bob")
    await refused(talk, services, one, 400, "PUT", "/read-only", user="alice", version=version, params={"state": 1})


@pytest.mark.parametrize("version", [1, 4])
async def test_lobby(talk: TalkClient, services: Services, version: int) -> None:
    await people(talk, "alice", "bob", "carol")
    token = await new_room(talk, "alice", GROUP, "Team")
    await add(talk, "alice", token, "bob")
    path = f"{api(version)}/room/{token}/webinar/lobby"
    await refused(talk, services, token, 403, "PUT", "/webinar/lobby", user="bob", version=version,
                  params={"state": 1})
    await refused(talk, services, token, 404, "PUT", "/webinar/lobby", user="carol", version=version,
                  params={"state": 1})
    await refused(talk, services, token, 400, "PUT", "/webinar/lobby", user="alice", version=version,
                  params={"state": 2})
    await refused(talk, services, token, 400, "PUT", "/webinar/lobby", user="alice", version=version,
                  params={"state": 1, "timer": -5})
    reply = (await talk.ocs("PUT", path, user="alice", params={"state": 1, "timer": 4_000_000_000})).expect(200)
    if version >= 4:
        # v4 answers with the room.
        assert reply.data["token"] == token and reply.data["lobbyState"] == 1
    else:
        assert reply.data == []
    as_bob = await get(talk, token, "bob", version=version)
    assert (as_bob["lobbyState"], as_bob["lobbyTimer"]) == (1, 4_000_000_000)
    assert as_bob["lastMessage"] == []  # the lobby hides the chat (Talk's RoomFormatter)
    alice_view = await get(talk, token, "alice", version=version)
    assert alice_view["lastMessage"]["systemMessage"] == "lobby_non_moderators"
    assert as_bob["canStartCall"] is False and (await get(talk, token, "alice"))["canStartCall"] is True
    (await talk.ocs("PUT", path, user="alice", params={"state": 0, "timer": 5})).expect(200)
    as_bob = await get(talk, token, "bob", version=version)
    assert (as_bob["lobbyState"], as_bob["lobbyTimer"]) == (0, 0)
    assert (await last_system(services, token))[:2] == ("lobby_none", "alice")
    one = await new_room(talk, "alice", ONE_TO_ONE, invite="bob")
    await refused(talk, services, one, 400, "PUT", "/webinar/lobby", user="alice", version=version,
                  params={"state": 1})
