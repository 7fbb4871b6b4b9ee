"""Talk's participant API through HTTP: the seed's "Participant management" and "Guests" sections (API v1)
with every status code they list, and the v4 forms of docs/participant.md (attendee ids, 400 instead
of 412, sessionIds, permissions). Guests are anonymous clients with their own cookie jar."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.helpers.client import OcsReply, TalkClient

V1 = "/apps/spreed/api/v1"
V4 = "/apps/spreed/api/v4"
API = {1: V1, 2: "/apps/spreed/api/v2", 3: "/apps/spreed/api/v3", 4: V4}


class GuestTransport:
    """What TalkClient needs of a test client, over a session of its own: a guest is recognised by
    its cookie, so every guest needs a separate cookie jar."""

    def __init__(self, client: TestClient) -> None:
        self._client = client
        # unsafe: the test server is addressed by IP, whose cookies aiohttp drops otherwise.
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.session.request(method, self._client.make_url(path), **kwargs)


GuestFactory = Callable[[], TalkClient]


@pytest.fixture
async def new_guest(talk: TalkClient) -> AsyncIterator[GuestFactory]:
    transports: list[GuestTransport] = []

    def make() -> TalkClient:
        transport = GuestTransport(talk.client)
        transports.append(transport)
        return TalkClient(transport, talk.services)  # type: ignore[arg-type]

    yield make
    for transport in transports:
        await transport.session.close()


async def create(talk: TalkClient, user: str, room_type: int, name: str = "Room", **extra: str) -> str:
    body: dict[str, Any] = {"roomType": room_type, **extra}
    if room_type != 1:
        body["roomName"] = name
    reply = await talk.ocs("POST", f"{V4}/room", user=user, json=body)
    assert reply.http_status in (200, 201), reply.data
    return str(reply.data["token"])


async def listing(talk: TalkClient, token: str, user: str | None, version: int = 4) -> list[dict[str, Any]]:
    reply = (await talk.ocs("GET", f"{API[version]}/room/{token}/participants", user=user)).expect(200)
    assert isinstance(reply.data, list)
    return reply.data


def by_actor(entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["actorId"]: e for e in entries}


async def last_message(talk: TalkClient, token: str, user: str) -> dict[str, Any]:
    room = (await talk.ocs("GET", f"{V4}/room/{token}", user=user)).expect(200)
    message: dict[str, Any] = room.data["lastMessage"]
    return message


def assert_system(message: dict[str, Any], name: str, actor: str, user: dict[str, str]) -> None:
    assert message["systemMessage"] == name
    assert message["actorType"] == "users" and message["actorId"] == actor
    assert message["messageParameters"]["actor"]["id"] == actor
    target = message["messageParameters"]["user"]
    assert {k: target[k] for k in user} == user
    assert "{user}" in message["message"] and "{actor}" in message["message"]


async def add(talk: TalkClient, token: str, user: str, new: str) -> None:
    (await talk.ocs("POST", f"{V4}/room/{token}/participants", user=user, json={"newParticipant": new})).expect(200)


async def attendee_id(talk: TalkClient, token: str, moderator: str, actor_id: str) -> int:
    return int(by_actor(await listing(talk, token, moderator))[actor_id]["attendeeId"])


async def join(client: TalkClient, token: str, user: str | None = None, version: int = 1,
               **params: str) -> OcsReply:
    return await client.ocs("POST", f"{API[version]}/room/{token}/participants/active", user=user,
                            json=params or None)


async def guest_in(new_guest: GuestFactory, token: str, name: str = "") -> tuple[TalkClient, str]:
    """A guest that joined `token` (and named itself); returns the guest and its session id."""
    guest = new_guest()
    session_id = (await join(guest, token)).expect(200).data["sessionId"]
    if name:
        (await guest.ocs("POST", f"{V1}/guest/{token}/name", json={"displayName": name})).expect(200)
    return guest, str(session_id)


@pytest.fixture
async def people(talk: TalkClient) -> None:
    for user, name in (("alice", "Alice A"), ("bob", "Bob B"), ("carol", "Carol C"), ("dave", "Dave D")):
        await talk.make_user(user, display_name=name)


# Listing ------------------------------------------------------------------------------------------

@pytest.mark.usefixtures("people")
async def test_participant_fields_per_version(talk: TalkClient) -> None:
    token = await create(talk, "alice", 2)
    await add(talk, token, "alice", "bob")
    session_id = (await join(talk, token, "alice")).expect(200).data["sessionId"]

    v1 = {e["userId"]: e for e in await listing(talk, token, "alice", 1)}
    assert set(v1) == {"alice", "bob"}
    assert v1["alice"]["sessionId"] == session_id and v1["bob"]["sessionId"] == "0"
    assert v1["alice"]["participantType"] == 1 and v1["bob"]["participantType"] == 3
    assert v1["bob"]["displayName"] == "Bob B" and v1["alice"]["lastPing"] > 0
    assert "attendeeId" not in v1["alice"] and "sessionIds" not in v1["alice"]

    v2 = {e["userId"]: e for e in await listing(talk, token, "alice", 2)}
    assert v2["alice"]["sessionId"] == session_id and "attendeeId" not in v2["alice"]

    v3 = by_actor(await listing(talk, token, "alice", 3))
    assert {e["actorType"] for e in v3.values()} == {"users"}
    assert v3["alice"]["sessionId"] == session_id and isinstance(v3["alice"]["attendeeId"], int)
    assert "userId" not in v3["alice"]

    v4 = by_actor(await listing(talk, token, "bob", 4))
    assert v4["alice"]["sessionIds"] == [session_id] and v4["bob"]["sessionIds"] == []
    assert "sessionId" not in v4["alice"] and "userId" not in v4["alice"]
    assert v4["alice"]["attendeeId"] == v3["alice"]["attendeeId"]
    assert v4["alice"]["permissions"] == 254  # moderators have every permission
    assert v4["bob"]["permissions"] & 128  # and participants at least chat

    (await talk.ocs("GET", f"{V1}/room/{token}/participants", user="carol")).expect(404)
    (await talk.ocs("GET", f"{V1}/room/nosuchroom/participants", user="alice")).expect(404)


# Adding -------------------------------------------------------------------------------------------

@pytest.mark.usefixtures("people")
async def test_add_user_v1(talk: TalkClient) -> None:
    token = await create(talk, "alice", 2)
    path = f"{V1}/room/{token}/participants"
    reply = (await talk.ocs("POST", path, user="alice", json={"newParticipant": "bob"})).expect(200)
    assert reply.data == []  # the type did not change
    assert_system(await last_message(talk, token, "alice"), "user_added", "alice",
                  {"type": "user", "id": "bob", "name": "Bob B"})
    assert (await talk.ocs("GET", f"{V1}/room/{token}", user="bob")).expect(200).data["participantType"] == 3

    (await talk.ocs("POST", path, user="alice", json={"newParticipant": "nobody"})).expect(404)
    (await talk.ocs("POST", path, user="bob", json={"newParticipant": "carol"})).expect(403)
    # The role is checked first: a non-moderator learns nothing about which users exist.
    (await talk.ocs("POST", path, user="bob", json={"newParticipant": "nobody"})).expect(403)
    (await talk.ocs("POST", path, user="carol", json={"newParticipant": "dave"})).expect(404)
    (await talk.ocs("POST", f"{V1}/room/nosuchroom/participants", user="alice",
                    json={"newParticipant": "carol"})).expect(404)
    assert {e["userId"] for e in await listing(talk, token, "alice", 1)} == {"alice", "bob"}


@pytest.mark.usefixtures("people")
async def test_add_group_v1_and_v4(talk: TalkClient) -> None:
    await talk.services.accounts.create_group("team")
    await talk.services.accounts.create_group("crew")
    for user, group in (("bob", "team"), ("carol", "team"), ("dave", "crew")):
        await talk.services.accounts.add_to_group(user, "team" if group == "team" else "crew")
    token = await create(talk, "alice", 2)
    (await talk.ocs("POST", f"{V1}/room/{token}/participants", user="alice",
                    json={"newParticipant": "team", "isGroup": True})).expect(200)
    assert {e["userId"] for e in await listing(talk, token, "alice", 1)} == {"alice", "bob", "carol"}
    (await talk.ocs("POST", f"{V1}/room/{token}/participants", user="alice",
                    json={"newParticipant": "nogroup", "isGroup": True})).expect(404)

    (await talk.ocs("POST", f"{V4}/room/{token}/participants", user="alice",
                    json={"newParticipant": "crew", "source": "groups"})).expect(200)
    users = {e["actorId"] for e in await listing(talk, token, "alice") if e["actorType"] == "users"}
    assert users == {"alice", "bob", "carol", "dave"}
    (await talk.ocs("POST", f"{V4}/room/{token}/participants", user="alice",
                    json={"newParticipant": "nogroup", "source": "groups"})).expect(404)
    (await talk.ocs("POST", f"{V4}/room/{token}/participants", user="alice",
                    json={"newParticipant": "bob", "source": "planets"})).expect(400)


@pytest.mark.usefixtures("people")
async def test_adding_to_one_to_one_converts_it_in_v1_only(talk: TalkClient) -> None:
    token = await create(talk, "alice", 1, invite="bob")
    (await talk.ocs("POST", f"{V4}/room/{token}/participants", user="alice",
                    json={"newParticipant": "carol"})).expect(400)
    assert (await talk.ocs("GET", f"{V4}/room/{token}", user="alice")).expect(200).data["type"] == 1

    reply = (await talk.ocs("POST", f"{V1}/room/{token}/participants", user="alice",
                            json={"newParticipant": "carol"})).expect(200)
    assert reply.data == {"type": 2}
    room = (await talk.ocs("GET", f"{V4}/room/{token}", user="carol")).expect(200).data
    assert room["type"] == 2
    assert {e["actorId"] for e in await listing(talk, token, "carol")} == {"alice", "bob", "carol"}


# Removing -----------------------------------------------------------------------------------------

@pytest.mark.usefixtures("people")
async def test_remove_user_v1(talk: TalkClient) -> None:
    token = await create(talk, "alice", 2)
    for user in ("bob", "carol", "dave"):
        await add(talk, token, "alice", user)
    (await talk.ocs("POST", f"{V1}/room/{token}/moderators", user="alice", json={"participant": "bob"})).expect(200)
    path = f"{V1}/room/{token}/participants"

    (await talk.ocs("DELETE", path, user="bob", json={"participant": "alice"})).expect(403)  # the owner
    (await talk.ocs("DELETE", path, user="carol", json={"participant": "dave"})).expect(403)  # not a moderator
    (await talk.ocs("DELETE", path, user="alice", json={"participant": "nobody"})).expect(404)
    (await talk.ocs("DELETE", f"{V1}/room/nosuchroom/participants", user="alice",
                    json={"participant": "dave"})).expect(404)

    (await talk.ocs("DELETE", path, user="bob", json={"participant": "dave"})).expect(200)
    assert_system(await last_message(talk, token, "alice"), "user_removed", "bob",
                  {"type": "user", "id": "dave", "name": "Dave D"})
    (await talk.ocs("GET", f"{V1}/room/{token}", user="dave")).expect(404)
    (await talk.ocs("DELETE", path, user="alice", json={"participant": "dave"})).expect(404)  # gone already
    assert {e["userId"] for e in await listing(talk, token, "alice", 1)} == {"alice", "bob", "carol"}


@pytest.mark.usefixtures("people")
async def test_remove_guest_by_session_id_v1(talk: TalkClient, new_guest: GuestFactory) -> None:
    token = await create(talk, "alice", 3)
    await add(talk, token, "alice", "bob")
    _, guest_session = await guest_in(new_guest, token, "Gary")
    bob_session = (await join(talk, token, "bob")).expect(200).data["sessionId"]
    path = f"{V1}/room/{token}/participants/guests"

    (await talk.ocs("DELETE", path, user="bob", json={"participant": guest_session})).expect(403)  # not a moderator
    (await talk.ocs("DELETE", path, user="alice", json={"participant": bob_session})).expect(403)  # not a guest
    (await talk.ocs("DELETE", path, user="alice", json={"participant": "x" * 512})).expect(404)
    (await talk.ocs("DELETE", f"{V1}/room/nosuchroom/participants/guests", user="alice",
                    json={"participant": guest_session})).expect(404)

    assert "Gary" in {e["displayName"] for e in await listing(talk, token, "alice")}
    (await talk.ocs("DELETE", path, user="alice", json={"participant": guest_session})).expect(200)
    entries = await listing(talk, token, "alice")
    assert {e["actorType"] for e in entries} == {"users"}
    assert {e["actorId"] for e in entries} == {"alice", "bob"}


@pytest.mark.usefixtures("people")
async def test_remove_attendee_by_id_v4(talk: TalkClient, new_guest: GuestFactory) -> None:
    token = await create(talk, "alice", 3)
    await add(talk, token, "alice", "bob")
    await add(talk, token, "alice", "carol")
    await guest_in(new_guest, token, "Gary")
    ids = {e["displayName"]: e["attendeeId"] for e in await listing(talk, token, "alice")}
    path = f"{V4}/room/{token}/attendees"

    (await talk.ocs("DELETE", path, user="bob", json={"attendeeId": ids["Carol C"]})).expect(403)
    (await talk.ocs("POST", f"{V4}/room/{token}/moderators", user="alice",
                    json={"attendeeId": ids["Bob B"]})).expect(200)
    (await talk.ocs("DELETE", path, user="bob", json={"attendeeId": ids["Alice A"]})).expect(403)  # the owner
    (await talk.ocs("DELETE", path, user="alice", json={"attendeeId": max(ids.values()) + 100})).expect(404)

    (await talk.ocs("DELETE", path, user="bob", json={"attendeeId": ids["Gary"]})).expect(200)
    (await talk.ocs("DELETE", path, user="bob", json={"attendeeId": ids["Carol C"]})).expect(200)
    assert_system(await last_message(talk, token, "alice"), "user_removed", "bob",
                  {"type": "user", "id": "carol"})
    assert {e["displayName"] for e in await listing(talk, token, "alice")} == {"Alice A", "Bob B"}


@pytest.mark.usefixtures("people")
async def test_remove_self(talk: TalkClient, new_guest: GuestFactory) -> None:
    token = await create(talk, "alice", 3)
    await add(talk, token, "alice", "bob")
    self_path = f"{V1}/room/{token}/participants/self"

    # The last moderator cannot leave others behind without one.
    assert (await talk.ocs("GET", f"{V4}/room/{token}", user="alice")).data["canLeaveConversation"] is False
    (await talk.ocs("DELETE", self_path, user="alice")).expect(400)
    (await talk.ocs("DELETE", f"{V4}/room/{token}/participants/self", user="alice")).expect(400)
    # Naming oneself on the other removal endpoints is the same as leaving, with the same rule.
    (await talk.ocs("DELETE", f"{V1}/room/{token}/participants", user="alice", json={"participant": "alice"})
     ).expect(400)
    alice = await attendee_id(talk, token, "alice", "alice")
    (await talk.ocs("DELETE", f"{V4}/room/{token}/attendees", user="alice", json={"attendeeId": alice})).expect(400)
    (await talk.ocs("DELETE", f"{V1}/room/nosuchroom/participants/self", user="alice")).expect(404)
    (await talk.ocs("DELETE", self_path, user="carol")).expect(404)  # public, but carol is not in it

    (await talk.ocs("POST", f"{V1}/room/{token}/moderators", user="alice", json={"participant": "bob"})).expect(200)
    (await talk.ocs("DELETE", f"{V4}/room/{token}/attendees", user="alice", json={"attendeeId": alice})).expect(200)
    (await talk.ocs("GET", f"{V1}/room/{token}/participants", user="alice")).expect(404)
    assert {e["userId"] for e in await listing(talk, token, "bob", 1)} == {"bob"}

    # The last person leaving takes the conversation with them; a guest does not keep it alive.
    guest, _ = await guest_in(new_guest, token, "Gary")
    assert (await talk.ocs("GET", f"{V4}/room/{token}", user="bob")).data["canLeaveConversation"] is True
    (await talk.ocs("DELETE", self_path, user="bob")).expect(200)
    (await talk.ocs("GET", f"{V1}/room/{token}", user="carol")).expect(404)
    (await guest.ocs("GET", f"{V1}/room/{token}")).expect(404)


# Joining and leaving ------------------------------------------------------------------------------

@pytest.mark.usefixtures("people")
async def test_join_and_leave(talk: TalkClient) -> None:
    token = await create(talk, "alice", 3)
    group = await create(talk, "alice", 2)

    joined = (await join(talk, token, "alice")).expect(200)
    session_id = joined.data["sessionId"]
    assert isinstance(session_id, str) and len(session_id) == 512
    room = (await talk.ocs("GET", f"{V1}/room/{token}", user="alice")).expect(200).data
    assert room["sessionId"] == session_id

    # A user following the public link becomes a self-joined participant (type 5)...
    (await join(talk, token, "carol")).expect(200)
    room = (await talk.ocs("GET", f"{V1}/room/{token}", user="carol")).expect(200).data
    assert room["participantType"] == 5 and len(room["sessionId"]) == 512
    assert by_actor(await listing(talk, token, "alice"))["carol"]["participantType"] == 5
    # ...who is gone again once they leave.
    (await talk.ocs("DELETE", f"{V1}/room/{token}/participants/active", user="carol")).expect(200)
    assert set(by_actor(await listing(talk, token, "alice"))) == {"alice"}
    assert token not in {r["token"] for r in (await talk.ocs("GET", f"{V1}/room", user="carol")).expect(200).data}

    # Members stay members when they leave; only their session ends.
    (await talk.ocs("DELETE", f"{V1}/room/{token}/participants/active", user="alice")).expect(200)
    room = (await talk.ocs("GET", f"{V1}/room/{token}", user="alice")).expect(200).data
    assert room["sessionId"] == "0" and room["participantType"] == 1

    (await join(talk, group, "carol")).expect(404)  # not public, not a member
    (await join(talk, "nosuchroom", "alice")).expect(404)
    (await talk.ocs("DELETE", f"{V1}/room/nosuchroom/participants/active", user="alice")).expect(404)
    (await talk.ocs("DELETE", f"{V1}/room/{group}/participants/active", user="carol")).expect(404)

    # v4 answers a join with the conversation.
    v4 = (await join(talk, token, "alice", version=4)).expect(200).data
    assert v4["token"] == token and len(v4["sessionId"]) == 512
    assert by_actor(await listing(talk, token, "alice"))["alice"]["sessionIds"] == [v4["sessionId"]]


# Moderators ---------------------------------------------------------------------------------------

@pytest.mark.usefixtures("people")
async def test_promote_and_demote_users_v1(talk: TalkClient) -> None:
    token = await create(talk, "alice", 2)
    for user in ("bob", "carol"):
        await add(talk, token, "alice", user)
    path = f"{V1}/room/{token}/moderators"

    (await talk.ocs("POST", path, user="bob", json={"participant": "carol"})).expect(403)  # not a moderator
    (await talk.ocs("POST", path, user="alice", json={"participant": "nobody"})).expect(404)
    (await talk.ocs("POST", f"{V1}/room/nosuchroom/moderators", user="alice", json={"participant": "bob"})).expect(404)
    (await talk.ocs("POST", path, user="dave", json={"participant": "bob"})).expect(404)

    (await talk.ocs("POST", path, user="alice", json={"participant": "bob"})).expect(200)
    assert_system(await last_message(talk, token, "alice"), "moderator_promoted", "alice",
                  {"type": "user", "id": "bob", "name": "Bob B"})
    assert by_actor(await listing(talk, token, "alice"))["bob"]["participantType"] == 2
    (await talk.ocs("POST", path, user="alice", json={"participant": "bob"})).expect(412)  # not a normal user
    (await talk.ocs("POST", path, user="bob", json={"participant": "alice"})).expect(403)  # the owner

    (await talk.ocs("DELETE", path, user="alice", json={"participant": "carol"})).expect(412)  # not a moderator
    (await talk.ocs("DELETE", path, user="carol", json={"participant": "bob"})).expect(403)
    (await talk.ocs("DELETE", path, user="alice", json={"participant": "nobody"})).expect(404)
    (await talk.ocs("DELETE", f"{V1}/room/nosuchroom/moderators", user="alice",
                    json={"participant": "bob"})).expect(404)
    (await talk.ocs("DELETE", path, user="alice", json={"participant": "bob"})).expect(200)
    assert_system(await last_message(talk, token, "alice"), "moderator_demoted", "alice",
                  {"type": "user", "id": "bob", "name": "Bob B"})
    assert by_actor(await listing(talk, token, "alice"))["bob"]["participantType"] == 3


@pytest.mark.usefixtures("people")
async def test_promote_and_demote_by_attendee_id_v4(talk: TalkClient) -> None:
    token = await create(talk, "alice", 2)
    await add(talk, token, "alice", "bob")
    await add(talk, token, "alice", "carol")
    alice, bob, carol = [await attendee_id(talk, token, "alice", u) for u in ("alice", "bob", "carol")]
    path = f"{V4}/room/{token}/moderators"

    (await talk.ocs("POST", path, user="alice", json={"attendeeId": bob})).expect(200)
    (await talk.ocs("POST", path, user="alice", json={"attendeeId": bob})).expect(400)  # v1 said 412
    (await talk.ocs("POST", path, user="bob", json={"attendeeId": alice})).expect(403)
    (await talk.ocs("POST", path, user="carol", json={"attendeeId": bob})).expect(403)
    (await talk.ocs("POST", path, user="alice", json={"attendeeId": carol + 100})).expect(404)
    (await talk.ocs("DELETE", path, user="alice", json={"attendeeId": carol})).expect(400)
    (await talk.ocs("DELETE", path, user="bob", json={"attendeeId": bob})).expect(403)  # themselves
    (await talk.ocs("DELETE", path, user="alice", json={"attendeeId": bob})).expect(200)
    assert by_actor(await listing(talk, token, "alice"))["bob"]["participantType"] == 3


@pytest.mark.usefixtures("people")
async def test_promote_and_demote_guests(talk: TalkClient, new_guest: GuestFactory) -> None:
    token = await create(talk, "alice", 3)
    guest, session_id = await guest_in(new_guest, token, "Gary")
    gary = next(e for e in await listing(talk, token, "alice") if e["actorType"] == "guests")
    assert gary["participantType"] == 4 and gary["displayName"] == "Gary"
    ref = {"type": "guest", "id": f"guest/{gary['actorId']}", "name": "Gary"}

    # v1 names a guest by the session id it joined with.
    (await talk.ocs("POST", f"{V1}/room/{token}/moderators", user="alice", json={"participant": session_id})
     ).expect(200)
    assert_system(await last_message(talk, token, "alice"), "guest_moderator_promoted", "alice", ref)
    assert (await guest.ocs("GET", f"{V4}/room/{token}")).expect(200).data["participantType"] == 6
    # A guest moderator may rename the conversation.
    (await guest.ocs("PUT", f"{V4}/room/{token}", json={"roomName": "By Gary"})).expect(200)

    (await talk.ocs("DELETE", f"{V4}/room/{token}/moderators", user="alice",
                    json={"attendeeId": gary["attendeeId"]})).expect(200)
    assert_system(await last_message(talk, token, "alice"), "guest_moderator_demoted", "alice", ref)
    assert (await guest.ocs("GET", f"{V4}/room/{token}")).expect(200).data["participantType"] == 4
    (await guest.ocs("PUT", f"{V4}/room/{token}", json={"roomName": "Again"})).expect(403)


# Passwords ----------------------------------------------------------------------------------------

async def protected_room(talk: TalkClient) -> str:
    token = await create(talk, "alice", 3)
    await add(talk, token, "alice", "bob")
    (await talk.ocs("PUT", f"{V1}/room/{token}/password", user="alice",
                    json={"password": "open sesame"})).expect(200)
    return token


@pytest.mark.usefixtures("people")
async def test_password_is_needed_by_guests_and_self_joiners_only(talk: TalkClient, new_guest: GuestFactory
                                                                 ) -> None:
    token = await protected_room(talk)
    guest = new_guest()
    (await join(guest, token)).expect(403)
    (await join(guest, token, password="wrong")).expect(403)
    assert (await listing(talk, token, "alice")) and all(
        e["actorType"] == "users" for e in await listing(talk, token, "alice"))
    (await join(guest, token, password="open sesame")).expect(200)

    (await join(talk, token, "carol")).expect(403)
    (await join(talk, token, "carol", password="wrong")).expect(403)
    (await join(talk, token, "carol", password="open sesame")).expect(200)
    assert by_actor(await listing(talk, token, "alice"))["carol"]["participantType"] == 5

    (await join(talk, token, "bob")).expect(200)  # a member
    (await join(talk, token, "alice")).expect(200)  # the owner


@pytest.mark.usefixtures("people")
async def test_wrong_room_passwords_are_throttled(talk: TalkClient, new_guest: GuestFactory) -> None:
    token = await protected_room(talk)
    guest = new_guest()
    codes = []
    for _ in range(12):
        reply = await join(guest, token, password="guess")
        codes.append(reply.status_code)
        if reply.status_code == 429:
            break
    assert codes[-1] == 429 and set(codes[:-1]) == {403} and len(codes) > 2, codes
    # Once throttled, even the right password waits for the window to pass.
    (await join(guest, token, password="open sesame")).expect(429)


# Guests -------------------------------------------------------------------------------------------

@pytest.mark.usefixtures("people")
async def test_guest_joins_and_names_itself(talk: TalkClient, new_guest: GuestFactory) -> None:
    token = await create(talk, "alice", 3)
    other = await create(talk, "alice", 3, name="Other")
    guest = new_guest()
    room = (await guest.ocs("GET", f"{V1}/room/{token}")).expect(200).data
    # Not a participant yet: Talk's RoomFormatter (every version) says "guest" and no session.
    assert room["participantType"] == 4 and room["sessionId"] == "0" and room["name"] == ""

    session_id = (await join(guest, token)).expect(200).data["sessionId"]
    assert len(session_id) == 512
    room = (await guest.ocs("GET", f"{V1}/room/{token}")).expect(200).data
    assert room["participantType"] == 4 and room["sessionId"] == session_id

    (await guest.ocs("POST", f"{V1}/guest/{token}/name", json={"displayName": "Gary"})).expect(200)
    v1 = await listing(talk, token, "alice", 1)
    gary = next(e for e in v1 if e["sessionId"] == session_id)
    assert gary == {**gary, "userId": "", "displayName": "Gary", "participantType": 4}
    v4 = next(e for e in await listing(talk, token, "alice") if e["actorType"] == "guests")
    assert v4["displayName"] == "Gary" and v4["sessionIds"] == [session_id]

    # A second guest is a different participant, by its own cookie.
    second = new_guest()
    (await join(second, token)).expect(200)
    (await second.ocs("POST", f"{V1}/guest/{token}/name", json={"displayName": "Gina"})).expect(200)
    guests = [e for e in await listing(talk, token, "alice") if e["actorType"] == "guests"]
    assert sorted(e["displayName"] for e in guests) == ["Gary", "Gina"]

    (await talk.ocs("POST", f"{V1}/guest/{token}/name", user="alice", json={"displayName": "X"})).expect(403)
    (await guest.ocs("POST", f"{V1}/guest/{other}/name", json={"displayName": "Gary"})).expect(404)
    (await guest.ocs("POST", f"{V1}/guest/nosuchroom/name", json={"displayName": "Gary"})).expect(404)

    # Leaving ends the guest's participation.
    (await guest.ocs("DELETE", f"{V1}/room/{token}/participants/active")).expect(200)
    names = {e["displayName"] for e in await listing(talk, token, "alice") if e["actorType"] == "guests"}
    assert names == {"Gina"}


@pytest.mark.usefixtures("people")
async def test_guests_cannot_reach_group_rooms(talk: TalkClient, new_guest: GuestFactory) -> None:
    token = await create(talk, "alice", 2)
    guest = new_guest()
    (await guest.ocs("GET", f"{V1}/room/{token}")).expect(404)
    (await join(guest, token)).expect(404)
    (await guest.ocs("GET", f"{V1}/room/{token}/participants")).expect(404)
    (await guest.ocs("POST", f"{V1}/guest/{token}/name", json={"displayName": "Gary"})).expect(404)


@pytest.mark.usefixtures("people")
async def test_guest_loses_access_when_room_is_made_private(talk: TalkClient, new_guest: GuestFactory) -> None:
    token = await create(talk, "alice", 3)
    guest, _ = await guest_in(new_guest, token, "Gary")
    (await talk.ocs("DELETE", f"{V1}/room/{token}/public", user="alice")).expect(200)
    (await guest.ocs("GET", f"{V1}/room/{token}")).expect(404)



async def test_joining_again_without_force_reports_the_existing_session(talk: TalkClient, people: None,
                                                                         new_guest: GuestFactory) -> None:
    token = await create(talk, "alice", 3)
    guest, first = await guest_in(new_guest, token)
    # force=false: 409 with the session this client already has, and nothing changes.
    conflict = await guest.ocs("POST", f"{API[4]}/room/{token}/participants/active", json={"force": False})
    assert conflict.http_status == 409 and conflict.status_code == 409
    assert conflict.data == {"sessionId": first, "inCall": 0, "lastPing": conflict.data["lastPing"]}
    assert conflict.data["lastPing"] > 0
    room = (await guest.ocs("GET", f"{V1}/room/{token}")).expect(200).data
    assert room["sessionId"] == first
    # The default (force) replaces the old session with a new one.
    second = (await join(guest, token)).expect(200).data["sessionId"]
    assert second != first
    guests = [p for p in await listing(talk, token, "alice") if p["actorType"] == "guests"]
    assert [p["sessionIds"] for p in guests] == [[second]]
