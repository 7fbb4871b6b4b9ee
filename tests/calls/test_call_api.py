"""The call API (/call/{token}) per version v1..v4: every status code the seeds list, the rows of
GET per version, the room's call state and the call_* system messages."""

from __future__ import annotations

import asyncio

import pytest

from talkd.domain.conversation import ActorType, Permission
from talkd.storage.tables import web_sessions
from tests.calls.conftest import V4, GuestFactory, call_path, join_room, make_room, room
from tests.helpers.client import TalkClient
from tests.helpers.locks import until_waiting_for_locks

VERSIONS = [1, 2, 3, 4]


async def setup_call_room(talk: TalkClient) -> str:
    await talk.make_user("alice", display_name="Alice A.")
    await talk.make_user("bob", display_name="Bob B.")
    await talk.make_user("eve")
    return await make_room(talk, "alice", invite=("bob",))


@pytest.mark.parametrize("version", VERSIONS)
async def test_join_list_leave_per_version(talk: TalkClient, version: int) -> None:
    token = await setup_call_room(talk)
    alice_session = await join_room(talk, token, "alice")
    bob_session = await join_room(talk, token, "bob")
    assert (await talk.ocs("GET", call_path(token, version), user="alice")).expect(200).data == []

    (await talk.ocs("POST", call_path(token, version), user="alice", json={"flags": 3})).expect(200)
    (await talk.ocs("POST", call_path(token, version), user="bob")).expect(200)
    rows = (await talk.ocs("GET", call_path(token, version), user="bob")).expect(200).data
    assert [row["sessionId"] for row in rows] == [alice_session, bob_session]
    for row in rows:
        assert row["lastPing"] > 0 and row["token"] == token
    if version <= 2:
        assert [row["userId"] for row in rows] == ["alice", "bob"]
        assert all("actorId" not in row for row in rows)
    else:
        assert [(row["actorType"], row["actorId"], row["displayName"]) for row in rows] == [
            ("users", "alice", "Alice A."), ("users", "bob", "Bob B.")]
        assert all("userId" not in row for row in rows)

    (await talk.ocs("DELETE", call_path(token, version), user="bob")).expect(200)
    rows = (await talk.ocs("GET", call_path(token, version), user="alice")).expect(200).data
    assert [row["sessionId"] for row in rows] == [alice_session]
    # Leaving again, not being in the call, is still fine.
    (await talk.ocs("DELETE", call_path(token, version), user="bob")).expect(200)


async def test_room_follows_the_call_and_system_messages_tell_it(talk: TalkClient) -> None:
    token = await setup_call_room(talk)
    await join_room(talk, token, "alice")
    await join_room(talk, token, "bob")
    before = await room(talk, token, "alice")
    assert (before["hasCall"], before["participantFlags"], before["callStartTime"], before["callFlag"]) == (
        False, 0, 0, 0)

    (await talk.ocs("POST", call_path(token), user="alice", json={"flags": 7})).expect(200)
    started = await room(talk, token, "alice")
    assert started["hasCall"] and started["participantFlags"] == 7 and started["callStartTime"] > 0
    assert started["callFlag"] == 7
    assert started["lastMessage"]["systemMessage"] == "call_started"
    assert started["lastMessage"]["message"] == "{actor} started a call"
    v1 = (await talk.ocs("GET", f"/apps/spreed/api/v1/room/{token}", user="alice")).expect(200).data
    assert v1["participantInCall"] is True and v1["participantFlags"] == 7

    (await talk.ocs("POST", call_path(token), user="bob", json={"flags": 1})).expect(200)
    joined = await room(talk, token, "bob")
    assert joined["participantFlags"] == 1 and joined["callFlag"] == 7
    assert joined["lastMessage"]["systemMessage"] == "call_joined"
    assert joined["lastMessage"]["actorId"] == "bob"

    # Bob turns on audio (v4's PUT), alice turns off video: the room's flag is everyone's union.
    (await talk.ocs("PUT", call_path(token), user="bob", json={"flags": 3})).expect(200)
    (await talk.ocs("PUT", call_path(token), user="alice", json={"flags": 1})).expect(200)
    assert (await room(talk, token, "bob"))["participantFlags"] == 3
    assert (await room(talk, token, "alice"))["callFlag"] == 3

    (await talk.ocs("DELETE", call_path(token), user="alice")).expect(200)
    left = await room(talk, token, "alice")
    assert left["hasCall"] and left["participantFlags"] == 0 and left["callFlag"] == 3
    assert left["lastMessage"]["systemMessage"] == "call_left"

    (await talk.ocs("DELETE", call_path(token), user="bob")).expect(200)
    ended = await room(talk, token, "alice")
    assert (ended["hasCall"], ended["callStartTime"], ended["callFlag"]) == (False, 0, 0)
    last = ended["lastMessage"]
    assert last["systemMessage"] == "call_ended" and last["actorId"] == "bob"
    assert last["message"].startswith("Call with {user1} and {user2} (Duration ")
    assert (last["messageParameters"]["user1"]["id"], last["messageParameters"]["user2"]["id"]) == ("alice", "bob")
    assert last["messageParameters"]["user1"]["name"] == "Alice A."


async def test_moderator_ends_the_call_for_everyone(talk: TalkClient) -> None:
    token = await setup_call_room(talk)
    for user in ("alice", "bob"):
        await join_room(talk, token, user)
        (await talk.ocs("POST", call_path(token), user=user)).expect(200)
    # Bob is no moderator: `all` only takes him out of the call.
    (await talk.ocs("DELETE", call_path(token), user="bob", params={"all": "true"})).expect(200)
    assert (await room(talk, token, "alice"))["participantFlags"] == 7
    (await talk.ocs("POST", call_path(token), user="bob")).expect(200)
    (await talk.ocs("DELETE", call_path(token), user="alice", json={"all": True})).expect(200)
    assert (await talk.ocs("GET", call_path(token), user="alice")).expect(200).data == []
    ended = await room(talk, token, "bob")
    assert not ended["hasCall"] and ended["participantFlags"] == 0
    assert ended["lastMessage"]["systemMessage"] == "call_ended_everyone"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_404_unknown_conversation_or_not_a_participant(talk: TalkClient, version: int, method: str) -> None:
    token = await setup_call_room(talk)
    (await talk.ocs(method, call_path("doesnotexist", version), user="alice")).expect(404)
    (await talk.ocs(method, call_path(token, version), user="eve")).expect(404)  # not invited
    (await talk.ocs(method, call_path(token, version))).expect(404)  # anonymous, group room


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_404_when_not_joined_to_the_conversation(talk: TalkClient, version: int, method: str) -> None:
    token = await setup_call_room(talk)
    (await talk.ocs(method, call_path(token, version), user="bob")).expect(404)  # attendee, no session
    # GET works for an attendee without a session (it needs no session).
    (await talk.ocs("GET", call_path(token, version), user="bob")).expect(200)
    assert not (await room(talk, token, "alice"))["hasCall"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_403_read_only_conversation(talk: TalkClient, version: int) -> None:
    token = await setup_call_room(talk)
    await join_room(talk, token, "alice")
    await join_room(talk, token, "bob")
    (await talk.ocs("POST", call_path(token, version), user="bob")).expect(200)
    (await talk.ocs("PUT", f"{V4}/room/{token}/read-only", user="alice", json={"state": 1})).expect(200)
    # Turning read-only ended the call, as in Talk.
    state = await room(talk, token, "bob")
    assert not state["hasCall"] and state["participantFlags"] == 0
    for method in ("GET", "POST", "DELETE"):
        for user in ("alice", "bob"):
            (await talk.ocs(method, call_path(token, version), user=user)).expect(403)
    assert not (await room(talk, token, "bob"))["hasCall"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_412_lobby_for_non_moderators(talk: TalkClient, version: int) -> None:
    token = await setup_call_room(talk)
    await join_room(talk, token, "alice")
    await join_room(talk, token, "bob")
    (await talk.ocs("PUT", f"{V4}/room/{token}/webinar/lobby", user="alice", json={"state": 1})).expect(200)
    for method in ("GET", "POST", "DELETE"):
        (await talk.ocs(method, call_path(token, version), user="bob")).expect(412)
    assert not (await room(talk, token, "alice"))["hasCall"]
    (await talk.ocs("POST", call_path(token, version), user="alice")).expect(200)  # moderators pass
    (await talk.ocs("GET", call_path(token, version), user="alice")).expect(200)
    (await talk.ocs("DELETE", call_path(token, version), user="alice")).expect(200)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("flags", [16, 255, -1, "audio", 1.5])
async def test_400_flags_out_of_range_change_nothing(talk: TalkClient, version: int, flags: object) -> None:
    token = await setup_call_room(talk)
    await join_room(talk, token, "alice")
    (await talk.ocs("POST", call_path(token, version), user="alice", json={"flags": flags})).expect(400)
    assert not (await room(talk, token, "alice"))["hasCall"]
    assert (await talk.ocs("GET", call_path(token, version), user="alice")).expect(200).data == []


async def test_put_flags_status_codes(talk: TalkClient) -> None:
    token = await setup_call_room(talk)
    await join_room(talk, token, "alice")
    (await talk.ocs("PUT", call_path("doesnotexist"), user="alice", json={"flags": 3})).expect(404)
    (await talk.ocs("PUT", call_path(token), user="eve", json={"flags": 3})).expect(404)
    (await talk.ocs("PUT", call_path(token), user="bob", json={"flags": 3})).expect(404)  # not joined
    (await talk.ocs("PUT", call_path(token), user="alice", json={"flags": 3})).expect(400)  # not in the call
    (await talk.ocs("POST", call_path(token), user="alice", json={"flags": 7})).expect(200)
    (await talk.ocs("PUT", call_path(token), user="alice", json={"flags": 6})).expect(400)  # no "in call"
    (await talk.ocs("PUT", call_path(token), user="alice", json={"flags": 16})).expect(400)
    (await talk.ocs("PUT", call_path(token), user="alice")).expect(400)  # flags missing
    assert (await room(talk, token, "alice"))["participantFlags"] == 7  # nothing changed
    (await talk.ocs("PUT", call_path(token), user="alice", json={"flags": 9})).expect(200)
    assert (await room(talk, token, "alice"))["participantFlags"] == 9
    # PUT is v4 only: earlier versions have no such route (405 with the allowed methods).
    reply = await talk.ocs("PUT", call_path(token, 3), user="alice", json={"flags": 3})
    assert reply.http_status == 405
    await join_room(talk, token, "bob")
    (await talk.ocs("PUT", f"{V4}/room/{token}/webinar/lobby", user="alice", json={"state": 1})).expect(200)
    (await talk.ocs("PUT", call_path(token), user="bob", json={"flags": 3})).expect(412)
    (await talk.ocs("PUT", f"{V4}/room/{token}/read-only", user="alice", json={"state": 1})).expect(200)
    (await talk.ocs("PUT", call_path(token), user="alice", json={"flags": 3})).expect(403)


async def test_publish_permissions_limit_the_flags(talk: TalkClient) -> None:
    token = await setup_call_room(talk)
    await join_room(talk, token, "bob")
    # Bob may start and join calls but publish neither audio nor video (no API sets attendee
    # permissions yet, so the test sets them in storage).
    allowed = int(Permission.CUSTOM | Permission.CALL_START | Permission.CALL_JOIN | Permission.CHAT)
    core = talk.services.conversations.core
    async with talk.services.db.transaction("test") as conn:
        found = await core.attendees.find(conn, (await core.room(conn, token)).id, ActorType.USERS, "bob")
        assert found is not None
        await core.attendees.update(conn, found.id, permissions=allowed)
    (await talk.ocs("POST", call_path(token), user="bob", json={"flags": 7})).expect(200)
    assert (await room(talk, token, "bob"))["participantFlags"] == 1


async def test_403_without_the_permission_to_start_or_join(talk: TalkClient) -> None:
    token = await setup_call_room(talk)
    await join_room(talk, token, "alice")
    await join_room(talk, token, "bob")
    core = talk.services.conversations.core
    async with talk.services.db.transaction("test") as conn:
        found = await core.attendees.find(conn, (await core.room(conn, token)).id, ActorType.USERS, "bob")
        assert found is not None
        await core.attendees.update(conn, found.id, permissions=int(Permission.CUSTOM | Permission.CALL_JOIN))
    (await talk.ocs("POST", call_path(token), user="bob")).expect(403)  # may join, not start
    assert not (await room(talk, token, "alice"))["hasCall"]
    (await talk.ocs("POST", call_path(token), user="alice")).expect(200)
    (await talk.ocs("POST", call_path(token), user="bob", json={"flags": 1})).expect(200)  # joining is fine
    async with talk.services.db.transaction("test") as conn:
        await core.attendees.update(conn, found.id, permissions=int(Permission.CUSTOM | Permission.CALL_START))
    (await talk.ocs("DELETE", call_path(token), user="bob")).expect(200)
    (await talk.ocs("POST", call_path(token), user="bob")).expect(403)  # may start, not join a running one


async def test_guest_joins_a_call_in_a_public_conversation(talk: TalkClient, guest_client: GuestFactory) -> None:
    await talk.make_user("alice")
    token = await make_room(talk, "alice", room_type=3)
    guest = await guest_client(talk)
    (await guest.ocs("GET", call_path(token))).expect(404)  # not joined: not a participant yet
    guest_session = await join_room(guest, token)
    alice_session = await join_room(talk, token, "alice")
    (await guest.ocs("POST", call_path(token), json={"flags": 3})).expect(200)
    (await talk.ocs("POST", call_path(token), user="alice")).expect(200)
    rows = (await talk.ocs("GET", call_path(token), user="alice")).expect(200).data
    assert [(r["sessionId"], r["actorType"]) for r in rows] == [(guest_session, "guests"), (alice_session, "users")]
    v1_rows = (await guest.ocs("GET", call_path(token, 1))).expect(200).data
    assert [r["userId"] for r in v1_rows] == ["", "alice"]
    (await guest.ocs("DELETE", call_path(token))).expect(200)
    (await talk.ocs("DELETE", call_path(token), user="alice")).expect(200)
    last = (await room(talk, token, "alice"))["lastMessage"]
    assert last["systemMessage"] == "call_ended"
    assert last["message"].startswith("Call with {user1} and 1 others")


async def test_joining_again_from_the_same_browser_leaves_the_call(talk: TalkClient,
                                                                   guest_client: GuestFactory) -> None:
    await talk.make_user("alice")
    token = await make_room(talk, "alice", room_type=3)
    guest = await guest_client(talk)
    first = await join_room(guest, token)
    (await guest.ocs("POST", call_path(token))).expect(200)
    second = await join_room(guest, token)  # a reload: the old session is replaced
    assert second != first
    state = await room(talk, token, "alice")
    assert not state["hasCall"] and state["lastMessage"]["systemMessage"] == "call_ended"


async def test_joining_again_waits_for_a_call_join_under_way(talk: TalkClient, guest_client: GuestFactory) -> None:
    """A guest reloads (its old session in the call is replaced) while alice joins the call. The rejoin must
    take the room's lock before it looks at who is in the call, or it ends the call alice just joined."""
    if talk.services.db.dialect != "postgresql":
        pytest.skip("SQLite runs one write transaction at a time: the two cannot overlap")
    await talk.make_user("alice")
    token = await make_room(talk, "alice", room_type=3)
    guest = await guest_client(talk)
    await join_room(guest, token)
    (await guest.ocs("POST", call_path(token))).expect(200)
    alice_session = await join_room(talk, token, "alice")
    db, core = talk.services.db, talk.services.conversations.core
    async with db.transaction("test_hold_room") as conn:
        await core.room(conn, token, for_update=True)  # a writer holding the room, as every writer first does
        alice_joins = asyncio.create_task(talk.ocs("POST", call_path(token), user="alice", json={"flags": 3}))
        await until_waiting_for_locks(db, 1)
        rejoin = asyncio.create_task(join_room(guest, token))  # queued behind alice's call join
        await until_waiting_for_locks(db, 2)
    (await alice_joins).expect(200)
    await rejoin
    rows = (await talk.ocs("GET", call_path(token), user="alice")).expect(200).data
    assert [row["sessionId"] for row in rows] == [alice_session]
    state = await room(talk, token, "alice")
    assert state["hasCall"] and state["callFlag"] == 3
    assert state["lastMessage"]["systemMessage"] == "call_left"


async def test_a_call_whose_sessions_vanished_without_leaving_is_ended(talk: TalkClient,
                                                                        guest_client: GuestFactory) -> None:
    await talk.make_user("alice")
    token = await make_room(talk, "alice", room_type=3)
    guest = await guest_client(talk)
    await join_room(guest, token)
    (await guest.ocs("POST", call_path(token))).expect(200)
    # The guest's browser session expires: its room sessions go with it (a foreign-key cascade).
    async with talk.services.db.transaction("test") as conn:
        await conn.execute(web_sessions.delete())
    assert (await room(talk, token, "alice"))["hasCall"]
    await talk.services.calls.expire_sessions()
    state = await room(talk, token, "alice")
    assert not state["hasCall"] and state["callFlag"] == 0
    assert state["lastMessage"]["systemMessage"] == "call_ended"
