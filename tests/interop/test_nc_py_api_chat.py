"""nc-py-api's Talk client against a real `python -m talkd serve`: conversations, sending (with a reply),
receiving history and the future, deleting, reactions. The server runs as a subprocess on a free port,
on PostgreSQL when TALKD_TEST_DATABASE_URL is set (its schema recreated first), else on SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from nc_py_api import AsyncNextcloud, NextcloudException
from nc_py_api.talk import ConversationType

from tests.helpers.server import RunningTalkd

pytestmark = pytest.mark.interop

BOB_PASSWORD = "interop-bob-password-1"


@pytest.fixture
async def admin(shared_talkd_server: RunningTalkd) -> AsyncIterator[AsyncNextcloud]:
    server = shared_talkd_server
    nc = AsyncNextcloud(nextcloud_url=server.base_url, nc_auth_user=server.admin_user,
                        nc_auth_pass=server.admin_password)
    if "bob" not in await nc.users.get_list("bob"):
        await nc.users.create("bob", password=BOB_PASSWORD, display_name="Bob")
    yield nc


@pytest.fixture
async def bob(shared_talkd_server: RunningTalkd, admin: AsyncNextcloud) -> AsyncNextcloud:
    return AsyncNextcloud(nextcloud_url=shared_talkd_server.base_url, nc_auth_user="bob", nc_auth_pass=BOB_PASSWORD)


async def test_talk_is_available_with_chat_features(admin: AsyncNextcloud) -> None:
    assert await admin.talk.available
    features = (await admin.capabilities)["spreed"]["features"]
    for feature in ("chat-v2", "chat-replies", "chat-reference-id", "delete-messages", "reactions"):
        assert feature in features


async def test_send_reply_receive_both_ways(admin: AsyncNextcloud, bob: AsyncNextcloud) -> None:
    conversation = await admin.talk.create_conversation(ConversationType.ONE_TO_ONE, invite="bob")
    hello = await admin.talk.send_message("hello @bob", conversation)
    assert hello.message == "hello {mention-user1}" and hello.actor_id == "admin"
    assert hello.message_parameters["mention-user1"]["id"] == "bob"
    assert len(hello.reference_id) == 64  # nc-py-api sends a sha256, talkd echoes it
    reply = await bob.talk.send_message("hi admin", conversation, reply_to_message=hello)
    assert reply.actor_id == "bob" and reply.actor_display_name == "Bob"
    assert reply.parent["id"] == hello.message_id and reply.parent["message"] == hello.message

    past = await bob.talk.receive_messages(conversation, look_in_future=False)
    assert [m.message_id for m in past[:2]] == [reply.message_id, hello.message_id]  # newest first
    assert past[-1].system_message == "conversation_created"
    future = await bob.talk.receive_messages(conversation, look_in_future=True, timeout=0)
    assert [m.message_id for m in future] == sorted(m.message_id for m in past)  # oldest first
    assert future[-1].parent["id"] == hello.message_id

    rooms = {c.token: c for c in await bob.talk.get_user_conversations()}
    assert rooms[conversation.token].unread_messages_count == 0  # bob read it all while receiving
    mine = {c.token: c for c in await admin.talk.get_user_conversations()}
    assert mine[conversation.token].unread_messages_count == 1


async def test_nothing_newer_is_an_empty_304(admin: AsyncNextcloud) -> None:
    conversation = await admin.talk.create_conversation(ConversationType.GROUP, room_name="Quiet")
    newest = (await admin.talk.receive_messages(conversation))[0]
    # nc-py-api's own `ocs()` cannot parse an empty 304 (nor can it with Nextcloud, whose 304 is empty
    # too), so ask through its HTTP adapter, authenticated as the admin.
    response = await admin._session.adapter.request(
        "GET", f"/ocs/v2.php/apps/spreed/api/v1/chat/{conversation.token}",
        params={"lookIntoFuture": 1, "lastKnownMessageId": newest.message_id, "timeout": 0},
        headers={"OCS-APIRequest": "true"})
    assert response.status_code == 304 and not response.content


async def test_delete_message(admin: AsyncNextcloud, bob: AsyncNextcloud) -> None:
    conversation = await admin.talk.create_conversation(ConversationType.ONE_TO_ONE, invite="bob")
    doomed = await bob.talk.send_message("delete me", conversation)
    notice = await bob.talk.delete_message(doomed)
    assert notice.system_message == "message_deleted" and notice.parent["id"] == doomed.message_id
    seen = {m.message_id: m for m in await admin.talk.receive_messages(conversation)}
    assert seen[doomed.message_id].message_type == "comment_deleted"
    assert seen[notice.message_id].system_message == "message_deleted"
    # In a group, bob is no moderator: someone else's message is not his to delete.
    group = await admin.talk.create_conversation(ConversationType.GROUP, room_name="Group")
    await admin.ocs("POST", f"/ocs/v2.php/apps/spreed/api/v4/room/{group.token}/participants",
              json={"newParticipant": "bob", "source": "users"})
    admins = await admin.talk.send_message("by admin", group)
    with pytest.raises(NextcloudException) as error:
        await bob.talk.delete_message(admins)
    assert error.value.status_code == 403


async def test_reactions(admin: AsyncNextcloud, bob: AsyncNextcloud) -> None:
    conversation = await admin.talk.create_conversation(ConversationType.ONE_TO_ONE, invite="bob")
    message = await admin.talk.send_message("react", conversation)
    added = await bob.talk.react_to_message(message, "👍")
    assert [r.actor_id for r in added["👍"]] == ["bob"] and added["👍"][0].actor_type == "users"
    await admin.talk.react_to_message(message, "🎉")
    everything = await admin.talk.get_message_reactions(message)
    assert set(everything) == {"👍", "🎉"}
    only = await admin.talk.get_message_reactions(message, reaction_filter="🎉")
    assert list(only) == ["🎉"] and only["🎉"][0].actor_id == "admin"
    seen = next(m for m in await bob.talk.receive_messages(conversation) if m.message_id == message.message_id)
    assert seen.reactions == {"👍": 1, "🎉": 1} and seen.reactions_self == ["👍"]
    left = await bob.talk.delete_reaction(message, "👍")
    assert list(left) == ["🎉"]
    assert await admin.talk.delete_reaction(message, "🎉") == {}
    with pytest.raises(NextcloudException) as error:
        await admin.talk.delete_reaction(message, "🎉")
    assert error.value.status_code == 404
