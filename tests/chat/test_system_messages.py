"""System messages: every room and participant operation of the seed's list (call_* aside: calls are
not merged yet) writes its message, with `{actor}` and `{user}` as rich objects, into the history and
to waiters like any other message."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from tests.chat.helpers import V1, V4, all_messages, group_room, guest_client, join_as_guest, send
from tests.helpers.client import TalkClient

PLACEHOLDER = re.compile(r"\{([a-z0-9-]+)\}")


def _actor(uid: str, name: str) -> dict[str, str]:
    return {"type": "user", "id": uid, "name": name}


async def _users(talk: TalkClient, *names: str) -> None:
    for name in names:
        await talk.make_user(name, display_name=name.capitalize())


async def _newest(talk: TalkClient, token: str, user: str = "alice") -> dict[str, Any]:
    message: dict[str, Any] = (await all_messages(talk, token, user))[-1]
    return message


def _check_system(message: dict[str, Any], name: str, actor: dict[str, str], user: dict[str, str] | None = None
                  ) -> None:
    """One system message as the seed describes it: its name, `{actor}` (and `{user}`) in the text,
    every placeholder a rich object, authored by the actor."""
    assert message["systemMessage"] == name, message
    assert message["messageType"] == "system" and message["isReplyable"] is False
    params = message["messageParameters"]
    assert params["actor"] == actor
    assert "{actor}" in message["message"]
    if user is not None:
        assert params["user"] == user and "{user}" in message["message"]
    for placeholder in PLACEHOLDER.findall(message["message"]):
        assert placeholder in params and {"type", "id", "name"} <= params[placeholder].keys()
    assert message["actorType"] == ("users" if actor["type"] == "user" else "guests")
    # The message's author is the bare actor id; the rich object names guests `guest/<id>`.
    assert message["actorId"] == actor["id"].removeprefix("guest/") and message["actorDisplayName"] == actor["name"]


async def _attendee_id(talk: TalkClient, token: str, actor_type: str, actor_id: str) -> int:
    people = (await talk.ocs("GET", f"{V4}/room/{token}/participants", user="alice")).expect(200).data
    return int(next(p["attendeeId"] for p in people if (p["actorType"], p["actorId"]) == (actor_type, actor_id)))


async def test_conversation_created_and_renamed(talk: TalkClient) -> None:
    await _users(talk, "alice")
    created = (await talk.ocs("POST", f"{V4}/room", user="alice", json={"roomType": 2, "roomName": "Old"})).expect(201)
    token = created.data["token"]
    (first,) = await all_messages(talk, token, "alice")
    _check_system(first, "conversation_created", _actor("alice", "Alice"))
    assert first["message"] == "{actor} created the conversation"
    (await talk.ocs("PUT", f"{V4}/room/{token}", user="alice", json={"roomName": "New"})).expect(200)
    renamed = await _newest(talk, token)
    _check_system(renamed, "conversation_renamed", _actor("alice", "Alice"))
    assert renamed["message"] == '{actor} renamed the conversation from "Old" to "New"'
    # The same name again is no change and writes nothing.
    (await talk.ocs("PUT", f"{V4}/room/{token}", user="alice", json={"roomName": "New"})).expect(200)
    assert (await _newest(talk, token))["id"] == renamed["id"]


async def test_one_to_one_starts_with_conversation_created(talk: TalkClient) -> None:
    await _users(talk, "alice", "bob")
    created = (await talk.ocs("POST", f"{V4}/room", user="alice", json={"roomType": 1, "invite": "bob"})).expect(201)
    (first,) = await all_messages(talk, created.data["token"], "bob")
    _check_system(first, "conversation_created", _actor("alice", "Alice"))


async def test_guests_allowed_and_disallowed(talk: TalkClient) -> None:
    await _users(talk, "alice")
    public = await group_room(talk, "alice", public=True, name="Open")
    messages = await all_messages(talk, public, "alice")
    assert [m["systemMessage"] for m in messages] == ["conversation_created", "guests_allowed"]
    _check_system(messages[1], "guests_allowed", _actor("alice", "Alice"))
    token = await group_room(talk, "alice")
    (await talk.ocs("POST", f"{V4}/room/{token}/public", user="alice")).expect(200)
    _check_system(await _newest(talk, token), "guests_allowed", _actor("alice", "Alice"))
    (await talk.ocs("DELETE", f"{V4}/room/{token}/public", user="alice")).expect(200)
    _check_system(await _newest(talk, token), "guests_disallowed", _actor("alice", "Alice"))


async def test_password_set_and_removed(talk: TalkClient) -> None:
    await _users(talk, "alice")
    token = await group_room(talk, "alice", public=True, name="Open")
    (await talk.ocs("PUT", f"{V4}/room/{token}/password", user="alice", json={"password": "s3cret-pass"})).expect(200)
    set_ = await _newest(talk, token)
    _check_system(set_, "password_set", _actor("alice", "Alice"))
    assert "s3cret" not in str(set_)
    (await talk.ocs("PUT", f"{V4}/room/{token}/password", user="alice", json={"password": ""})).expect(200)
    _check_system(await _newest(talk, token), "password_removed", _actor("alice", "Alice"))


async def test_user_added_and_removed(talk: TalkClient) -> None:
    await _users(talk, "alice", "bob", "carol", "dave")
    token = await group_room(talk, "alice")
    (await talk.ocs("POST", f"{V4}/room/{token}/participants", user="alice",
                    json={"newParticipant": "bob", "source": "users"})).expect(200)
    _check_system(await _newest(talk, token), "user_added", _actor("alice", "Alice"), _actor("bob", "Bob"))
    # Seed API v1: add by user id, remove by user id.
    (await talk.ocs("POST", f"/apps/spreed/api/v1/room/{token}/participants", user="alice",
                    json={"newParticipant": "carol"})).expect(200)
    _check_system(await _newest(talk, token), "user_added", _actor("alice", "Alice"), _actor("carol", "Carol"))
    (await talk.ocs("DELETE", f"/apps/spreed/api/v1/room/{token}/participants", user="alice",
                    json={"participant": "carol"})).expect(200)
    _check_system(await _newest(talk, token), "user_removed", _actor("alice", "Alice"), _actor("carol", "Carol"))
    # v4: remove by attendee id.
    bob = await _attendee_id(talk, token, "users", "bob")
    (await talk.ocs("DELETE", f"{V4}/room/{token}/attendees", user="alice", json={"attendeeId": bob})).expect(200)
    _check_system(await _newest(talk, token), "user_removed", _actor("alice", "Alice"), _actor("bob", "Bob"))
    # Leaving oneself: the actor is the one who left.
    (await talk.ocs("POST", f"{V4}/room/{token}/participants", user="alice",
                    json={"newParticipant": "dave", "source": "users"})).expect(200)
    (await talk.ocs("DELETE", f"{V4}/room/{token}/participants/self", user="dave")).expect(200)
    _check_system(await _newest(talk, token), "user_removed", _actor("dave", "Dave"), _actor("dave", "Dave"))


async def test_group_creation_adds_each_member(talk: TalkClient) -> None:
    await talk.make_user("alice", display_name="Alice")
    await talk.services.accounts.create_group("crew", "Crew")
    await talk.make_user("bob", display_name="Bob", groups=("crew",))
    await talk.make_user("carol", display_name="Carol", groups=("crew",))
    created = (await talk.ocs("POST", f"{V4}/room", user="alice",
                              json={"roomType": 2, "invite": "crew", "source": "groups"})).expect(201)
    messages = await all_messages(talk, created.data["token"], "alice")
    assert messages[0]["systemMessage"] == "conversation_created"
    added = {m["messageParameters"]["user"]["id"] for m in messages[1:] if m["systemMessage"] == "user_added"}
    assert added == {"bob", "carol"}


async def test_moderator_promoted_and_demoted(talk: TalkClient) -> None:
    await _users(talk, "alice", "bob")
    token = await group_room(talk, "alice", "bob")
    bob = await _attendee_id(talk, token, "users", "bob")
    (await talk.ocs("POST", f"{V4}/room/{token}/moderators", user="alice", json={"attendeeId": bob})).expect(200)
    _check_system(await _newest(talk, token), "moderator_promoted", _actor("alice", "Alice"), _actor("bob", "Bob"))
    (await talk.ocs("DELETE", f"{V4}/room/{token}/moderators", user="alice", json={"attendeeId": bob})).expect(200)
    _check_system(await _newest(talk, token), "moderator_demoted", _actor("alice", "Alice"), _actor("bob", "Bob"))
    # Seed API v1 names the user; a refused change writes nothing.
    (await talk.ocs("POST", f"{V1}/room/{token}/moderators", user="alice", json={"participant": "bob"})).expect(200)
    promoted = await _newest(talk, token)
    _check_system(promoted, "moderator_promoted", _actor("alice", "Alice"), _actor("bob", "Bob"))
    (await talk.ocs("POST", f"{V1}/room/{token}/moderators", user="alice", json={"participant": "bob"})).expect(412)
    assert (await _newest(talk, token))["id"] == promoted["id"]


async def test_guest_moderator_promoted_and_demoted(talk: TalkClient) -> None:
    await _users(talk, "alice")
    token = await group_room(talk, "alice", public=True, name="Open")
    async with guest_client(talk) as guest:
        await join_as_guest(guest, token)
        hello = (await guest.ocs("POST", f"{V1}/chat/{token}",
                                 json={"message": "hi", "actorDisplayName": "Gus"})).expect(201).data
        gid = hello["actorId"]
        attendee = await _attendee_id(talk, token, "guests", gid)
        guest_ref = {"type": "guest", "id": f"guest/{gid}", "name": "Gus"}
        (await talk.ocs("POST", f"{V4}/room/{token}/moderators", user="alice",
                        json={"attendeeId": attendee})).expect(200)
        _check_system(await _newest(talk, token), "guest_moderator_promoted", _actor("alice", "Alice"), guest_ref)
        # A guest moderator acts with their own rich object as actor.
        (await guest.ocs("PUT", f"{V4}/room/{token}", json={"roomName": "Renamed by guest"})).expect(200)
        renamed = await _newest(talk, token)
        _check_system(renamed, "conversation_renamed", guest_ref)
        (await talk.ocs("DELETE", f"{V4}/room/{token}/moderators", user="alice",
                        json={"attendeeId": attendee})).expect(200)
        _check_system(await _newest(talk, token), "guest_moderator_demoted", _actor("alice", "Alice"), guest_ref)


async def test_room_state_changes_write_their_messages(talk: TalkClient) -> None:
    await _users(talk, "alice")
    token = await group_room(talk, "alice")
    steps = [
        ("PUT", f"{V4}/room/{token}/description", {"description": "about"}, "description_set"),
        ("PUT", f"{V4}/room/{token}/description", {"description": ""}, "description_removed"),
        ("PUT", f"{V4}/room/{token}/read-only", {"state": 1}, "read_only"),
        ("PUT", f"{V4}/room/{token}/read-only", {"state": 0}, "read_only_off"),
        ("PUT", f"{V4}/room/{token}/webinar/lobby", {"state": 1}, "lobby_non_moderators"),
        ("PUT", f"{V4}/room/{token}/webinar/lobby", {"state": 0}, "lobby_none"),
    ]
    for method, path, body, name in steps:
        (await talk.ocs(method, path, user="alice", json=body)).expect(200)
        _check_system(await _newest(talk, token), name, _actor("alice", "Alice"))


async def test_failed_operations_write_no_system_message(talk: TalkClient) -> None:
    await _users(talk, "alice", "bob")
    token = await group_room(talk, "alice", "bob")
    before = await all_messages(talk, token, "alice")
    (await talk.ocs("PUT", f"{V4}/room/{token}", user="bob", json={"roomName": "Nope"})).expect(403)
    (await talk.ocs("POST", f"{V4}/room/{token}/participants", user="alice",
                    json={"newParticipant": "nobody", "source": "users"})).expect(404)
    (await talk.ocs("POST", f"{V4}/room/{token}/participants", user="alice",
                    json={"newParticipant": "bob", "source": "users"})).expect(200)  # already there
    (await talk.ocs("PUT", f"{V4}/room/{token}/password", user="alice", json={"password": "x" * 12})).expect(403)
    assert await all_messages(talk, token, "alice") == before


async def test_waiters_receive_system_messages(talk: TalkClient) -> None:
    await _users(talk, "alice", "bob", "carol")
    token = await group_room(talk, "alice", "bob")
    last = (await _newest(talk, token, "bob"))["id"]

    async def wait(after: int) -> Any:
        return await talk.ocs("GET", f"{V1}/chat/{token}", user="bob",
                              params={"lookIntoFuture": 1, "lastKnownMessageId": after, "timeout": 10})

    waiter = asyncio.create_task(wait(last))
    await _until_subscribed(talk, token)
    (await talk.ocs("PUT", f"{V4}/room/{token}", user="alice", json={"roomName": "Renamed"})).expect(200)
    got = (await waiter).expect(200).data
    assert [m["systemMessage"] for m in got] == ["conversation_renamed"]
    waiter = asyncio.create_task(wait(got[-1]["id"]))
    await _until_subscribed(talk, token)
    (await talk.ocs("POST", f"{V4}/room/{token}/participants", user="alice",
                    json={"newParticipant": "carol", "source": "users"})).expect(200)
    got = (await waiter).expect(200).data
    _check_system(got[0], "user_added", _actor("alice", "Alice"), _actor("carol", "Carol"))
    # Mixed with comments, in id order.
    await send(talk, token, "alice", "welcome")
    history = await all_messages(talk, token, "carol")
    assert [m["systemMessage"] for m in history[-3:]] == ["conversation_renamed", "user_added", ""]
    assert [m["id"] for m in history] == sorted(m["id"] for m in history)


async def _until_subscribed(talk: TalkClient, token: str) -> None:
    for _ in range(500):
        if talk.services.bus.subscriber_count(f"room.{token}"):  # type: ignore[attr-defined]
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the waiter never subscribed")
