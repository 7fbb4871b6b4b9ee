"""Hello/Welcome, Joined/Left, Leave, Users, Room PINs and updates, server-managed conferences, the
default and the global room, and the room-join rules for anonymous sessions."""

from __future__ import annotations

import time
from typing import Any

from aiohttp.test_utils import TestClient

from talkd.clock import FakeClock
from talkd.services import SERVICES
from talkd.spreed.directory import ROOM_EXPIRY
from tests.helpers.spreed import SpreedSocket, authentication, rest, wait_closed
from tests.spreed.conftest import MakeClient


def error(frame: dict[str, Any]) -> tuple[str, str]:
    data = frame["Data"]
    assert data["Type"] == "Error", frame
    return data["Code"], data["Message"]


async def test_hello_is_answered_by_welcome_listing_the_room_and_its_users(client: TestClient) -> None:
    a, b = await SpreedSocket.open(client), await SpreedSocket.open(client)
    welcome_a = await a.hello("lobby", ua="firefox")
    assert welcome_a["From"] == a.id and welcome_a["Iid"]
    assert welcome_a["Data"] == {"Type": "Welcome", "Room": {"Type": "Room", "Name": "lobby"},
                                 "Users": [{"Type": "Online", "Id": a.id, "Ua": "firefox", "Rev": 1, "Prio": 100}]}
    welcome_b = await b.hello("lobby", ua="chrome")
    assert {u["Id"] for u in welcome_b["Data"]["Users"]} == {a.id, b.id}
    joined = await a.recv()
    assert joined["Data"] == {"Type": "Joined", "Id": b.id, "Ua": "chrome", "Prio": 100}
    assert joined["From"] == b.id and joined["A"]
    assert await b.drain() == []  # the joiner does not hear its own Joined


async def test_hello_accepts_the_legacy_id_field_and_answers_without_iid(client: TestClient) -> None:
    a = await SpreedSocket.open(client)
    await a.send("Hello", {"Version": "1", "Ua": "old", "Id": "legacy-room"})
    welcome = await a.recv()
    assert welcome["Data"]["Room"] == {"Type": "Room", "Name": "legacy-room"} and "Iid" not in welcome


async def test_hello_to_the_current_room_again_announces_joined_without_leaving(client: TestClient) -> None:
    a, b = await SpreedSocket.open(client), await SpreedSocket.open(client)
    await a.hello("again")
    await b.hello("again")
    await a.next_of("Joined")
    welcome = await b.hello("again", ua="new-ua")
    assert {u["Id"] for u in welcome["Data"]["Users"]} == {a.id, b.id}
    assert [f["Data"] for f in await a.drain()] == [{"Type": "Joined", "Id": b.id, "Ua": "new-ua", "Prio": 100}]


async def test_joined_carries_the_user_id_of_an_authenticated_session(client: TestClient) -> None:
    a, b = await SpreedSocket.open(client), await SpreedSocket.open(client)
    registered = await rest(client, "POST", "/api/v1/users", {"id": b.id, "sid": b.me["Sid"]})
    await b.request("Authentication", authentication(registered["userid"], registered["nonce"]))
    await a.hello("with-user")
    await b.hello("with-user")
    assert (await a.next_of("Joined"))["Data"]["Userid"] == registered["userid"]


async def test_leave_tells_the_room_soft_and_sends_no_reply(client: TestClient) -> None:
    a, b = await SpreedSocket.open(client), await SpreedSocket.open(client)
    await a.hello("lobby")
    await b.hello("lobby")
    await a.next_of("Joined")
    await b.send("Leave", {})
    left = await a.recv()
    assert left["Data"] == {"Type": "Left", "Id": b.id, "Status": "soft"} and left["From"] == b.id
    assert await b.drain() == []
    assert error(await b.request("Users", {})) == ("not_in_room", "Cannot list users without a current room")


async def test_disconnect_tells_the_room_hard(client: TestClient) -> None:
    a, b = await SpreedSocket.open(client), await SpreedSocket.open(client)
    await a.hello("lobby")
    await b.hello("lobby")
    await a.next_of("Joined")
    await b.close()
    assert (await a.next_of("Left"))["Data"] == {"Type": "Left", "Id": b.id, "Status": "hard"}
    assert [u["Id"] for u in (await a.request("Users", {}))["Data"]["Users"]] == [a.id]


async def test_switching_rooms_leaves_the_old_one_soft(client: TestClient) -> None:
    a, b, c = await SpreedSocket.open(client), await SpreedSocket.open(client), await SpreedSocket.open(client)
    await a.hello("one")
    await c.hello("two")
    await b.hello("one")
    await a.next_of("Joined")
    await b.hello("two")
    assert (await a.recv())["Data"] == {"Type": "Left", "Id": b.id, "Status": "soft"}
    assert (await c.recv())["Data"]["Type"] == "Joined"
    await b.send("Chat", {"To": "", "Type": "Chat", "Chat": {"Message": "in two", "NoEcho": True}})
    assert (await c.recv())["Data"]["Chat"]["Message"] == "in two"
    assert await a.drain() == []  # a no longer hears b's room


async def test_users_lists_the_room_with_status_and_user_ids(client: TestClient) -> None:
    a, b = await SpreedSocket.open(client), await SpreedSocket.open(client)
    assert error(await a.request("Users", {}))[0] == "not_in_room"
    await a.hello("lobby", ua="ua-a")
    await a.send("Status", {"Type": "Status", "Status": {"displayName": "Ann"}})
    await b.hello("lobby", ua="ua-b")
    reply = await b.request("Users", {})
    assert reply["From"] == b.id
    users = {u["Id"]: u for u in reply["Data"]["Users"]}
    assert reply["Data"]["Type"] == "Users"
    assert users[a.id] == {"Type": "Online", "Id": a.id, "Ua": "ua-a", "Rev": 2, "Prio": 100,
                           "Status": {"displayName": "Ann"}}
    assert users[b.id]["Ua"] == "ua-b"


async def test_alive_echoes_its_document_with_the_iid(client: TestClient) -> None:
    a = await SpreedSocket.open(client)
    reply = await a.request("Alive", {"Type": "Alive", "Alive": 1700000000123})
    assert reply["Data"] == {"Type": "Alive", "Alive": 1700000000123} and reply["From"] == a.id
    await a.send("Alive", {"Type": "Alive", "Alive": 7})
    assert (await a.recv())["Data"]["Alive"] == 7


async def test_alive_reply_holds_only_type_and_timestamp(client: TestClient) -> None:
    """The original decodes Alive into {Type, Alive uint64} (data.go DataAlive) and replies with that:
    other keys are not echoed, and a frame whose Alive is not a non-negative integer fails to decode and
    gets no answer."""
    a = await SpreedSocket.open(client)
    reply = await a.request("Alive", {"Type": "Alive", "Alive": 5, "Injected": "<b>x</b>"})
    assert reply["Data"] == {"Type": "Alive", "Alive": 5}
    assert (await a.request("Alive", {"Type": "Alive"}))["Data"] == {"Type": "Alive", "Alive": 0}
    for bad in ("soon", -1, 1.5, True, {"ms": 1}):
        await a.send("Alive", {"Type": "Alive", "Alive": bad}, iid="bad")
    assert await a.drain() == []


async def test_self_request_returns_a_fresh_self(client: TestClient) -> None:
    a = await SpreedSocket.open(client)
    reply = await a.request("Self", {})
    assert reply["Data"]["Id"] == a.id and reply["Data"]["Sid"] == a.me["Sid"] and reply["Data"]["Token"]


# --- PINs --------------------------------------------------------------------------------------------------

async def test_a_room_created_with_a_pin_needs_it(client: TestClient) -> None:
    owner, guest = await SpreedSocket.open(client), await SpreedSocket.open(client)
    await owner.hello("vault", pin="1234")
    assert error(await guest.hello("vault")) == ("authorization_required",
                                                "Valid credentials are required to join this room")
    assert error(await guest.hello("vault", pin="0000")) == ("invalid_credentials",
                                                            "The provided credentials are incorrect")
    assert await owner.drain() == []  # refused joiners were never announced
    welcome = await guest.hello("vault", pin="1234")
    assert welcome["Data"]["Type"] == "Welcome"
    assert (await owner.recv())["Data"]["Type"] == "Joined"


async def test_a_pin_for_a_room_without_one_is_refused(client: TestClient) -> None:
    a, b = await SpreedSocket.open(client), await SpreedSocket.open(client)
    await a.hello("open")
    assert error(await b.hello("open", pin="1"))[0] == "authorization_not_required"
    assert (await b.hello("open", pin=""))["Data"]["Type"] == "Welcome"  # an empty PIN is no PIN


async def test_room_update_sets_and_removes_the_pin_and_tells_the_room(client: TestClient) -> None:
    a, b, c = await SpreedSocket.open(client), await SpreedSocket.open(client), await SpreedSocket.open(client)
    await a.hello("meeting")
    await b.hello("meeting")
    await a.next_of("Joined")
    reply = await a.request("Room", {"Name": "meeting", "Type": "", "Credentials": {"PIN": "42"}})
    expected = {"Type": "Room", "Name": "meeting", "Credentials": {"PIN": "42"}}
    assert reply["Data"] == expected
    update = await b.recv()
    assert update["Data"] == expected and update["From"] == a.id
    assert error(await c.hello("meeting"))[0] == "authorization_required"
    await a.request("Room", {"Name": "meeting", "Type": "Room", "Credentials": {"PIN": ""}})
    assert (await c.hello("meeting"))["Data"]["Type"] == "Welcome"


async def test_room_update_of_another_room_is_refused(client: TestClient) -> None:
    a = await SpreedSocket.open(client)
    assert error(await a.request("Room", {"Name": "x", "Credentials": {"PIN": "1"}}))[0] == "not_in_room"
    await a.hello("mine")
    assert error(await a.request("Room", {"Name": "theirs", "Credentials": {"PIN": "1"}})) == (
        "not_in_room", "Cannot update other rooms")
    assert error(await a.request("Room", None)) == ("bad_request", "message did not contain Room")


async def test_the_pin_lives_as_long_as_the_room(client: TestClient) -> None:
    clock = FakeClock(time.time())
    client.app[SERVICES].spreed.clock = client.app[SERVICES].spreed.directory.clock = clock
    a, b = await SpreedSocket.open(client), await SpreedSocket.open(client)
    await a.hello("short-lived", pin="9")
    await a.close()
    await wait_closed(client, a.id)
    clock.advance(ROOM_EXPIRY - 1)
    assert error(await b.hello("short-lived"))[0] == "authorization_required"  # empty but not yet expired
    clock.advance(1)
    assert (await b.hello("short-lived"))["Data"]["Type"] == "Welcome"  # expired: created anew, open


# --- room kinds and rules -------------------------------------------------------------------------------------

async def test_server_managed_conference_lists_everyone_on_each_join(client: TestClient) -> None:
    a, b, c = await SpreedSocket.open(client), await SpreedSocket.open(client), await SpreedSocket.open(client)
    welcome = await a.hello("conf-weekly")  # matches the configured ^conf- pattern
    assert welcome["Data"]["Room"] == {"Type": "Conference", "Name": "conf-weekly"}
    await b.hello("conf-weekly")
    for socket in (a, b):
        frame = await socket.next_of("Conference")
        assert frame["To"] == "Conference:conf-weekly" and "From" not in frame
        assert frame["Data"]["Id"] == "Conference:conf-weekly"
        assert sorted(frame["Data"]["Conference"]) == sorted([a.id, b.id])
    await c.hello("", room_type="Conference")
    assert (await c.drain()) == []  # alone in its conference: no list


async def test_a_room_update_in_a_managed_conference_resends_the_list(client: TestClient) -> None:
    a, b = await SpreedSocket.open(client), await SpreedSocket.open(client)
    await a.hello("conf-locked")
    await b.hello("conf-locked")
    await a.next_of("Joined")
    for socket in (a, b):
        await socket.next_of("Conference")
    reply = await a.request("Room", {"Name": "conf-locked", "Type": "Conference", "Credentials": {"PIN": "7"}})
    assert (await b.recv())["Data"] == reply["Data"]  # the update (its Type is the room type, as in the original)
    for socket in (a, b):
        listing = await socket.recv()
        assert listing["To"] == "Conference:conf-locked"
        assert sorted(listing["Data"]["Conference"]) == sorted([a.id, b.id])


async def test_client_conference_updates_are_refused_in_managed_rooms(client: TestClient) -> None:
    a, b = await SpreedSocket.open(client), await SpreedSocket.open(client)
    await a.hello("conf-x")
    await b.hello("conf-x")
    await a.next_of("Conference")
    await b.next_of("Conference")
    await a.send("Conference", {"Id": "mine", "Type": "Conference", "Conference": [a.id, b.id]})
    assert await b.drain() == []


async def test_default_room_can_be_disabled(make_client: MakeClient) -> None:
    client = await make_client(default_room_enabled=False)
    a = await SpreedSocket.open(client)
    assert error(await a.hello("")) == ("default_room_disabled", "The default room is not enabled")
    assert (await a.hello("named"))["Data"]["Type"] == "Welcome"


async def test_a_disabled_default_room_cannot_be_joined_under_another_type(make_client: MakeClient) -> None:
    client = await make_client(default_room_enabled=False)
    a = await SpreedSocket.open(client)
    for room_type in ("Conference", "Other"):
        refused = await a.hello("", room_type=room_type)
        assert error(refused) == ("default_room_disabled", "The default room is not enabled"), room_type


async def test_anonymous_sessions_cannot_join_when_joining_requires_an_account(make_client: MakeClient) -> None:
    client = await make_client(authorize_room_join=True)
    a = await SpreedSocket.open(client)
    assert error(await a.hello("any")) == ("room_join_requires_account", "Room join requires a user account")


async def test_anonymous_sessions_cannot_create_rooms_when_creation_requires_an_account(
        make_client: MakeClient) -> None:
    client = await make_client(authorize_room_creation=True)
    a = await SpreedSocket.open(client)
    assert error(await a.hello("new-room")) == ("room_join_requires_account", "Room creation requires a user account")


async def test_join_rules_do_not_apply_when_users_are_disabled(make_client: MakeClient) -> None:
    client = await make_client(users_mode="", authorize_room_join=True)
    a = await SpreedSocket.open(client)
    assert (await a.hello("any"))["Data"]["Type"] == "Welcome"


async def test_a_failed_join_still_leaves_the_previous_room(client: TestClient) -> None:
    a, b, c = await SpreedSocket.open(client), await SpreedSocket.open(client), await SpreedSocket.open(client)
    await c.hello("locked", pin="1")
    await a.hello("first")
    await b.hello("first")
    await a.next_of("Joined")
    assert error(await b.hello("locked"))[0] == "authorization_required"
    assert (await a.recv())["Data"] == {"Type": "Left", "Id": b.id, "Status": "soft"}
    assert error(await b.request("Users", {}))[0] == "not_in_room"


async def test_global_room_members_are_listed_everywhere_and_reach_every_room(make_client: MakeClient) -> None:
    client = await make_client(global_room="staff-only")
    staff, a, b = await SpreedSocket.open(client), await SpreedSocket.open(client), await SpreedSocket.open(client)
    await staff.hello("staff-only")
    await a.hello("room-a")
    await b.hello("room-b")
    users = {u["Id"] for u in (await a.request("Users", {}))["Data"]["Users"]}
    assert users == {a.id, staff.id}
    await staff.send("Chat", {"To": "", "Type": "Chat", "Chat": {"Message": "announcement", "NoEcho": True}})
    assert (await a.next_of("Chat"))["Data"]["Chat"]["Message"] == "announcement"
    assert (await b.next_of("Chat"))["Data"]["Chat"]["Message"] == "announcement"
    await a.send("Chat", {"To": "", "Type": "Chat", "Chat": {"Message": "from a", "NoEcho": True}})
    assert (await staff.next_of("Chat"))["Data"]["Chat"]["Message"] == "from a"
    assert all(f["Data"]["Type"] != "Chat" for f in await b.drain())
