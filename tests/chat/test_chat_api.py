"""Talk's chat API through HTTP: sending, history and waiting, paging, limits, guests, replies,
reference ids, deleting, the read marker and reactions."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from talkd.domain.room_core import RoomCore
from tests.chat.conftest import app_factory
from tests.chat.helpers import (
    V1,
    V4,
    all_messages,
    group_room,
    guest_client,
    history,
    join_as_guest,
    room_of,
    send,
)
from tests.helpers.client import OcsReply, TalkClient
from tests.helpers.locks import until_waiting_for_locks
from tests.helpers.spreed import eventually

__all__ = ["app_factory"]

SEED_FIELDS = {"id", "token", "actorType", "actorId", "actorDisplayName", "timestamp", "systemMessage", "message",
               "messageParameters"}


async def _users(talk: TalkClient, *names: str) -> None:
    for name in names:
        await talk.make_user(name, display_name=name.capitalize())


# Sending ------------------------------------------------------------------------------------------


async def test_send_answers_201_with_the_full_message(talk: TalkClient) -> None:
    await _users(talk, "alice", "bob")
    token = await group_room(talk, "alice", "bob")
    before = int(time.time())
    sent = (await talk.ocs("POST", f"{V1}/chat/{token}", user="alice", json={"message": "hello"})).expect(201).data
    assert sent.keys() >= SEED_FIELDS
    assert sent["token"] == token and sent["actorType"] == "users" and sent["actorId"] == "alice"
    assert sent["actorDisplayName"] == "Alice" and sent["systemMessage"] == ""
    assert sent["message"] == "hello" and sent["messageParameters"] == []
    assert sent["messageType"] == "comment" and sent["isReplyable"] is True
    assert isinstance(sent["id"], int) and before <= sent["timestamp"] <= int(time.time()) + 1
    # The same message, field for field, is what another participant reads.
    newest = (await history(talk, token, "bob", limit=1)).expect(200)
    assert newest.data == [sent]
    assert newest.headers["X-Chat-Last-Given"] == str(sent["id"])


async def test_a_room_deleted_under_a_batch_fails_only_its_own_sends(talk: TalkClient) -> None:
    """Group commit: sends to a room deleted after their check get 404; the other sends in their batch
    are stored."""
    await _users(talk, "alice")
    doomed = await group_room(talk, "alice", name="Doomed")
    kept = await group_room(talk, "alice", name="Kept")
    services = talk.services
    core, writer = services.conversations.core, services.chat.writer

    def post(token: str, text: str) -> asyncio.Task[OcsReply]:
        return asyncio.create_task(talk.ocs("POST", f"{V1}/chat/{token}", user="alice", json={"message": text}))

    # The room is deleted in a transaction that commits only after every send below passed its check
    # (it holds SQLite's writer, or on PostgreSQL the room's row).
    async with services.db.transaction("test_delete_room") as conn:
        room = await core.room(conn, doomed, for_update=True)
        await core.rooms.delete(conn, room.id)
        first = post(doomed, "first")
        await eventually(lambda: writer.writing == 1, "its batch waits for the deleting transaction")
        together = [post(doomed, "gone"), post(kept, "kept")]
        await eventually(lambda: writer.queued == 2, "both wait for the next batch")
    (await first).expect(404)
    gone, stored = await asyncio.gather(*together)
    gone.expect(404)
    assert stored.expect(201).data["message"] == "kept"
    assert (await all_messages(talk, kept, "alice"))[-1]["id"] == stored.data["id"]


async def test_form_encoded_send_and_v1_envelope(talk: TalkClient) -> None:
    await _users(talk, "alice")
    token = await group_room(talk, "alice")
    reply = await talk.ocs("POST", f"{V1}/chat/{token}", user="alice", data={"message": "form body"}, version=1)
    reply.expect(201)
    assert reply.data["message"] == "form body"


async def test_reference_id_is_echoed_and_kept(talk: TalkClient) -> None:
    await _users(talk, "alice")
    token = await group_room(talk, "alice")
    ref = "a" * 64
    sent = await send(talk, token, "alice", "with ref", referenceId=ref)
    assert sent["referenceId"] == ref
    assert (await all_messages(talk, token, "alice"))[-1]["referenceId"] == ref
    plain = await send(talk, token, "alice", "without")
    assert plain["referenceId"] == ""
    # Longer than a sha256 in hex: refused, nothing stored.
    (await talk.ocs("POST", f"{V1}/chat/{token}", user="alice",
                    json={"message": "x", "referenceId": "b" * 65})).expect(400)
    assert (await all_messages(talk, token, "alice"))[-1]["id"] == plain["id"]


async def test_empty_message_is_400_and_changes_nothing(talk: TalkClient) -> None:
    await _users(talk, "alice")
    token = await group_room(talk, "alice")
    before = await all_messages(talk, token, "alice")
    for body in ({"message": ""}, {"message": "   \n\t"}, {}):
        (await talk.ocs("POST", f"{V1}/chat/{token}", user="alice", json=body)).expect(400)
    assert await all_messages(talk, token, "alice") == before


async def test_max_length_is_a_setting_reported_in_capabilities(app_factory: Any) -> None:
    talk: TalkClient = await app_factory(limits__chat_max_length=20)
    await _users(talk, "alice")
    caps = (await talk.ocs("GET", "/cloud/capabilities", user="alice")).expect(200)
    assert caps.data["capabilities"]["spreed"]["config"]["chat"]["max-length"] == 20
    token = await group_room(talk, "alice")
    before = await all_messages(talk, token, "alice")
    (await talk.ocs("POST", f"{V1}/chat/{token}", user="alice", json={"message": "x" * 21})).expect(413)
    assert await all_messages(talk, token, "alice") == before
    # Characters, not bytes: twenty emoji fit.
    assert (await send(talk, token, "alice", "😀" * 20))["message"] == "😀" * 20


async def test_default_max_length_is_talks_32000(talk: TalkClient) -> None:
    await _users(talk, "alice")
    caps = (await talk.ocs("GET", "/cloud/capabilities", user="alice")).expect(200)
    assert caps.data["capabilities"]["spreed"]["config"]["chat"]["max-length"] == 32000
    token = await group_room(talk, "alice")
    await send(talk, token, "alice", "y" * 32000)
    (await talk.ocs("POST", f"{V1}/chat/{token}", user="alice", json={"message": "y" * 32001})).expect(413)


async def test_non_participants_and_unknown_rooms_get_404(talk: TalkClient) -> None:
    await _users(talk, "alice", "eve")
    token = await group_room(talk, "alice")
    before = await all_messages(talk, token, "alice")
    (await talk.ocs("POST", f"{V1}/chat/{token}", user="eve", json={"message": "hi"})).expect(404)
    (await history(talk, token, "eve")).expect(404)
    (await talk.ocs("GET", f"{V1}/chat/{token}", user="eve", params={"lookIntoFuture": 1, "timeout": 0})).expect(404)
    (await talk.ocs("GET", f"{V1}/chat/nosuchroom", user="alice", params={"lookIntoFuture": 0})).expect(404)
    (await talk.ocs("POST", f"{V1}/chat/nosuchroom", user="alice", json={"message": "hi"})).expect(404)
    # A public room is visible to everyone, but its chat only to participants.
    public = await group_room(talk, "alice", public=True, name="Open")
    (await talk.ocs("POST", f"{V1}/chat/{public}", user="eve", json={"message": "hi"})).expect(404)
    (await history(talk, public, "eve")).expect(404)
    assert await all_messages(talk, token, "alice") == before


# History and paging -------------------------------------------------------------------------------


async def test_history_pages_with_last_given_until_304(talk: TalkClient) -> None:
    await _users(talk, "alice")
    token = await group_room(talk, "alice")
    sent = [(await send(talk, token, "alice", f"m{i}"))["id"] for i in range(7)]
    first = (await history(talk, token, "alice", limit=3)).expect(200)
    assert [m["id"] for m in first.data] == sent[:-4:-1]  # newest first
    seen = [m["id"] for m in first.data]
    last_given = int(first.headers["X-Chat-Last-Given"])
    assert last_given == first.data[-1]["id"]
    while True:
        page = await history(talk, token, "alice", limit=3, lastKnownMessageId=last_given)
        if page.http_status == 304:
            assert page.body == b""
            break
        page.expect(200)
        assert all(m["id"] < last_given for m in page.data)
        seen += [m["id"] for m in page.data]
        last_given = int(page.headers["X-Chat-Last-Given"])
    # Everything came exactly once, newest to oldest, the creation notice last.
    everything = await all_messages(talk, token, "alice")
    assert seen == [m["id"] for m in reversed(everything)]
    assert everything[0]["systemMessage"] == "conversation_created"


async def test_limit_defaults_to_100_and_is_clamped_to_1_200(talk: TalkClient) -> None:
    await _users(talk, "alice")
    token = await group_room(talk, "alice")
    for i in range(205):
        await send(talk, token, "alice", f"n{i}")
    assert len((await history(talk, token, "alice")).expect(200).data) == 100
    assert len((await history(talk, token, "alice", limit=500)).expect(200).data) == 200
    assert len((await history(talk, token, "alice", limit=200)).expect(200).data) == 200
    assert len((await history(talk, token, "alice", limit=0)).expect(200).data) == 1
    assert len((await history(talk, token, "alice", limit=-3)).expect(200).data) == 1
    waited = await talk.ocs("GET", f"{V1}/chat/{token}", user="alice",
                            params={"lookIntoFuture": 1, "lastKnownMessageId": 0, "limit": 1000, "timeout": 0})
    assert len(waited.expect(200).data) == 200


async def test_unknown_last_known_id_is_an_offset(talk: TalkClient) -> None:
    await _users(talk, "alice")
    token = await group_room(talk, "alice")
    other = await group_room(talk, "alice", name="Other")
    a = await send(talk, token, "alice", "a")
    gap = await send(talk, other, "alice", "elsewhere")  # an id this room does not have
    b = await send(talk, token, "alice", "b")
    assert a["id"] < gap["id"] < b["id"]
    older = (await history(talk, token, "alice", lastKnownMessageId=gap["id"])).expect(200)
    assert older.data[0]["id"] == a["id"]
    newer = await talk.ocs("GET", f"{V1}/chat/{token}", user="alice",
                           params={"lookIntoFuture": 1, "lastKnownMessageId": gap["id"], "timeout": 0})
    assert [m["id"] for m in newer.expect(200).data] == [b["id"]]
    # Far past the newest: history is everything, the future is nothing yet.
    far = (await history(talk, token, "alice", lastKnownMessageId=10**12)).expect(200)
    assert far.data[0]["id"] == b["id"]
    none = await talk.ocs("GET", f"{V1}/chat/{token}", user="alice",
                          params={"lookIntoFuture": 1, "lastKnownMessageId": 10**12, "timeout": 0})
    assert none.http_status == 304


async def test_include_last_known(talk: TalkClient) -> None:
    await _users(talk, "alice")
    token = await group_room(talk, "alice")
    a = await send(talk, token, "alice", "a")
    b = await send(talk, token, "alice", "b")
    up = await talk.ocs("GET", f"{V1}/chat/{token}", user="alice",
                        params={"lookIntoFuture": 1, "lastKnownMessageId": a["id"], "includeLastKnown": 1,
                                "timeout": 0})
    assert [m["id"] for m in up.expect(200).data] == [a["id"], b["id"]]
    down = await history(talk, token, "alice", lastKnownMessageId=b["id"], includeLastKnown=1, limit=2)
    assert [m["id"] for m in down.expect(200).data] == [b["id"], a["id"]]


# Waiting ------------------------------------------------------------------------------------------


async def test_wait_returns_new_messages_oldest_first(talk: TalkClient) -> None:
    await _users(talk, "alice", "bob")
    token = await group_room(talk, "alice", "bob")
    start = (await all_messages(talk, token, "bob"))[-1]["id"]
    nothing = await talk.ocs("GET", f"{V1}/chat/{token}", user="bob",
                             params={"lookIntoFuture": 1, "lastKnownMessageId": start, "timeout": 0})
    assert nothing.http_status == 304 and nothing.body == b""
    waiter = asyncio.create_task(talk.ocs("GET", f"{V1}/chat/{token}", user="bob",
                                          params={"lookIntoFuture": 1, "lastKnownMessageId": start,
                                                  "timeout": 1000}))  # clamped to 60, not refused
    await _subscribed(talk, token)
    sent = await send(talk, token, "alice", "ping")
    got = (await waiter).expect(200)
    assert [m["id"] for m in got.data] == [sent["id"]]
    assert got.data[0] == sent
    assert got.headers["X-Chat-Last-Given"] == str(sent["id"])


async def test_negative_timeout_is_clamped_to_zero(talk: TalkClient) -> None:
    await _users(talk, "alice")
    token = await group_room(talk, "alice")
    newest = (await all_messages(talk, token, "alice"))[-1]["id"]
    reply = await talk.ocs("GET", f"{V1}/chat/{token}", user="alice",
                           params={"lookIntoFuture": 1, "lastKnownMessageId": newest, "timeout": -5})
    assert reply.http_status == 304


async def test_waiting_advances_the_read_marker_unless_asked_not_to(talk: TalkClient) -> None:
    await _users(talk, "alice", "bob")
    token = await group_room(talk, "alice", "bob")
    start = (await room_of(talk, token, "bob"))["lastReadMessage"]
    m = await send(talk, token, "alice", "one")
    assert (await room_of(talk, token, "bob"))["unreadMessages"] == 1
    params = {"lookIntoFuture": 1, "lastKnownMessageId": start, "timeout": 0}
    (await talk.ocs("GET", f"{V1}/chat/{token}", user="bob", params={**params, "setReadMarker": 0})).expect(200)
    assert (await room_of(talk, token, "bob"))["unreadMessages"] == 1
    (await talk.ocs("GET", f"{V1}/chat/{token}", user="bob", params=params)).expect(200)
    bob_room = await room_of(talk, token, "bob")
    assert bob_room["unreadMessages"] == 0 and bob_room["lastReadMessage"] == m["id"]


async def _bob_has_read(talk: TalkClient, count: int) -> tuple[str, list[dict[str, Any]], int]:
    """alice sends `count` messages to a room with bob, bob reads them (his marker waits in the batch).
    The room's token, the messages and bob's attendee id."""
    _stop_periodic_flush(talk)
    await _users(talk, "alice", "bob")
    token = await group_room(talk, "alice", "bob")
    start = (await room_of(talk, token, "bob"))["lastReadMessage"]
    sent = [await send(talk, token, "alice", f"message {n}") for n in range(count)]
    params = {"lookIntoFuture": 1, "lastKnownMessageId": start, "timeout": 0}
    (await talk.ocs("GET", f"{V1}/chat/{token}", user="bob", params=params)).expect(200)
    core = talk.services.conversations.core
    async with talk.services.db.read() as conn:
        room = await core.room(conn, token)
        bob = next(a for a in await core.attendees.of_room(conn, room.id) if a.actor_id == "bob")
    return token, sent, bob.id


def _stop_periodic_flush(talk: TalkClient) -> None:
    """These tests start flushes themselves; the once-a-second one would take markers at random times."""
    for task in talk.services.background:
        if task.get_name() == "flush-pings-and-read-markers":
            task.cancel()


@contextlib.asynccontextmanager
async def _holding_row(talk: TalkClient, attendee_id: int) -> AsyncIterator[None]:
    """A transaction of the test's own holds the attendee's row (on SQLite: the one writer) for the block."""
    core = talk.services.conversations.core
    held, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with talk.services.db.transaction("test_hold") as conn:
            await core.attendees.update(conn, attendee_id, notification_level=0)
            held.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.wait_for(held.wait(), 5)
    try:
        yield
    finally:
        release.set()
        await asyncio.wait_for(holder, 5)


async def test_a_read_marker_being_flushed_stays_visible_until_its_commit(talk: TalkClient) -> None:
    """Read markers are written in batches. While a batch's transaction waits (here: behind a
    transaction holding bob's attendee row), readers must still see the marker it carries."""
    token, sent, bob_id = await _bob_has_read(talk, 1)
    core = talk.services.conversations.core
    async with _holding_row(talk, bob_id):
        flush = asyncio.create_task(core.flush())
        await until_waiting_for_locks(talk.services.db, 1)  # the batch waits behind the held row
        # A second flush (as session expiry does before reading pings) waits for the one under way.
        second = asyncio.create_task(core.flush())
        await asyncio.sleep(0.05)
        assert not flush.done() and not second.done()
        bob_room = await asyncio.wait_for(room_of(talk, token, "bob"), 5)
        assert bob_room["unreadMessages"] == 0 and bob_room["lastReadMessage"] == sent[0]["id"]
    await asyncio.wait_for(asyncio.gather(flush, second), 5)
    bob_room = await room_of(talk, token, "bob")
    assert bob_room["unreadMessages"] == 0 and bob_room["lastReadMessage"] == sent[0]["id"]


async def test_marking_unread_is_not_undone_by_a_flush_under_way(talk: TalkClient) -> None:
    """bob reads (a batched marker) and marks the newest message unread; a flush that starts while that
    request waits for the database must not raise the marker again after it."""
    token, sent, bob_id = await _bob_has_read(talk, 2)
    core = talk.services.conversations.core
    async with _holding_row(talk, bob_id):
        unread = asyncio.create_task(talk.ocs("DELETE", f"{V1}/chat/{token}/read", user="bob"))
        await until_waiting_for_locks(talk.services.db, 1)  # the unread request waits for the database
        flush = asyncio.create_task(core.flush())
        await asyncio.sleep(0.05)  # the flush starts (and waits) while the unread request waits
    await asyncio.wait_for(flush, 5)
    (await asyncio.wait_for(unread, 5)).expect(200)
    await core.flush()
    bob_room = await room_of(talk, token, "bob")
    assert bob_room["lastReadMessage"] == sent[0]["id"] and bob_room["unreadMessages"] == 1


async def test_two_processes_flushing_markers_of_the_same_people_never_deadlock(talk: TalkClient) -> None:
    """Two processes' batches name the same attendees, gathered in opposite orders; both wait behind a held
    row, then run at once. Written in row order, one waits for the other instead of a deadlock."""
    if talk.services.db.dialect != "postgresql":
        pytest.skip("SQLite runs one write transaction at a time: two flushes cannot overlap")
    token, sent, bob_id = await _bob_has_read(talk, 1)
    core = talk.services.conversations.core
    other_process = RoomCore(core.db, core.bus, core.clock)
    async with talk.services.db.read() as conn:
        people = await core.attendees.of_room(conn, (await core.room(conn, token)).id)
    core.forget_read_marker(bob_id)
    for this, order in ((core, people), (other_process, list(reversed(people)))):
        for attendee in order:
            this.advance_read_marker(attendee, sent[0]["id"])
    highest = max(a.id for a in people)
    async with _holding_row(talk, highest):
        flushes = []
        for waiting, this in enumerate((other_process, core), 1):  # the one starting at the held row first
            flushes.append(asyncio.create_task(this.flush()))
            await until_waiting_for_locks(talk.services.db, waiting)
    await asyncio.wait_for(asyncio.gather(*flushes), 10)  # a deadlock would fail one of them
    for name in ("alice", "bob"):
        assert (await room_of(talk, token, name))["lastReadMessage"] == sent[0]["id"]


async def _subscribed(talk: TalkClient, token: str, count: int = 1) -> None:
    """Until `count` requests wait in the room (on its watch, which follows the room's bus topic)."""
    for _ in range(500):
        watch = talk.services.chat.watches.peek(token)
        if watch is not None and watch.waiters >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the waiter never subscribed")


# Guests -------------------------------------------------------------------------------------------


async def test_guest_chats_with_own_cookie_and_display_name(talk: TalkClient) -> None:
    await _users(talk, "alice")
    token = await group_room(talk, "alice", public=True, name="Open")
    async with guest_client(talk) as guest:
        # Not joined yet: the guest is no participant.
        (await guest.ocs("POST", f"{V1}/chat/{token}", json={"message": "early"})).expect(404)
        await join_as_guest(guest, token)
        sent = (await guest.ocs("POST", f"{V1}/chat/{token}",
                                json={"message": "hi from a guest", "actorDisplayName": "Gus"})).expect(201).data
        assert sent["actorType"] == "guests" and sent["actorDisplayName"] == "Gus" and sent["actorId"]
        seen = (await all_messages(talk, token, "alice"))[-1]
        assert seen["actorType"] == "guests" and seen["actorDisplayName"] == "Gus"
        assert seen["actorId"] == sent["actorId"]
        # The name sticks for later messages sent without one.
        again = (await guest.ocs("POST", f"{V1}/chat/{token}", json={"message": "again"})).expect(201).data
        assert again["actorDisplayName"] == "Gus" and again["actorId"] == sent["actorId"]
        # The guest reads the history and waits like anyone else.
        mine = (await guest.ocs("GET", f"{V1}/chat/{token}", params={"lookIntoFuture": 0})).expect(200)
        assert mine.data[0]["id"] == again["id"]
        other = await send(talk, token, "alice", "hello guest")
        waited = await guest.ocs("GET", f"{V1}/chat/{token}",
                                 params={"lookIntoFuture": 1, "lastKnownMessageId": again["id"], "timeout": 0})
        assert [m["id"] for m in waited.expect(200).data] == [other["id"]]
    async with guest_client(talk) as stranger:
        # Another browser is another guest: it shares nothing with the first.
        (await stranger.ocs("GET", f"{V1}/chat/{token}", params={"lookIntoFuture": 0})).expect(404)


# Replies ------------------------------------------------------------------------------------------


async def test_reply_carries_its_parent(talk: TalkClient) -> None:
    await _users(talk, "alice", "bob")
    token = await group_room(talk, "alice", "bob")
    question = await send(talk, token, "alice", "question?")
    answer = await send(talk, token, "bob", "answer!", replyTo=question["id"])
    assert answer["parent"]["id"] == question["id"] and answer["parent"]["message"] == "question?"
    assert answer["parent"]["actorId"] == "alice" and "parent" not in answer["parent"]
    listed = (await all_messages(talk, token, "alice"))[-1]
    assert listed["id"] == answer["id"] and listed["parent"]["id"] == question["id"]
    # A reply to a reply carries only its direct parent, without the grandparent.
    again = await send(talk, token, "alice", "more", replyTo=answer["id"])
    assert again["parent"]["id"] == answer["id"] and "parent" not in again["parent"]


async def test_replies_only_to_comments_of_the_same_room(talk: TalkClient) -> None:
    await _users(talk, "alice")
    token = await group_room(talk, "alice")
    other = await group_room(talk, "alice", name="Other")
    elsewhere = await send(talk, other, "alice", "elsewhere")
    created = (await all_messages(talk, token, "alice"))[0]
    assert created["systemMessage"] == "conversation_created" and created["isReplyable"] is False
    before = await all_messages(talk, token, "alice")
    for target in (created["id"], elsewhere["id"], 10**9):
        (await talk.ocs("POST", f"{V1}/chat/{token}", user="alice",
                        json={"message": "re", "replyTo": target})).expect(400)
    assert await all_messages(talk, token, "alice") == before


# Deleting -----------------------------------------------------------------------------------------


async def test_author_deletes_own_message(talk: TalkClient) -> None:
    await _users(talk, "alice", "bob")
    token = await group_room(talk, "alice", "bob")
    mine = await send(talk, token, "bob", "oops")
    deleted = (await talk.ocs("DELETE", f"{V1}/chat/{token}/{mine['id']}", user="bob")).expect(200).data
    assert deleted["systemMessage"] == "message_deleted" and deleted["messageType"] == "system"
    assert deleted["messageParameters"]["actor"] == {"type": "user", "id": "bob", "name": "Bob"}
    assert deleted["parent"]["id"] == mine["id"] and deleted["parent"]["messageType"] == "comment_deleted"
    messages = await all_messages(talk, token, "alice")
    old = next(m for m in messages if m["id"] == mine["id"])
    assert old["messageType"] == "comment_deleted" and "oops" not in old["message"]
    assert old["isReplyable"] is False
    assert messages[-1]["id"] == deleted["id"] and messages[-1]["systemMessage"] == "message_deleted"
    # Deleted is deleted: not again, and nobody replies to it.
    (await talk.ocs("DELETE", f"{V1}/chat/{token}/{mine['id']}", user="bob")).expect(405)
    (await talk.ocs("POST", f"{V1}/chat/{token}", user="alice",
                    json={"message": "re", "replyTo": mine["id"]})).expect(400)


async def test_moderators_delete_any_message_others_get_403(talk: TalkClient) -> None:
    await _users(talk, "alice", "bob", "carol")
    token = await group_room(talk, "alice", "bob", "carol")
    bobs = await send(talk, token, "bob", "by bob")
    before = await all_messages(talk, token, "alice")
    (await talk.ocs("DELETE", f"{V1}/chat/{token}/{bobs['id']}", user="carol")).expect(403)
    assert await all_messages(talk, token, "alice") == before
    by_moderator = (await talk.ocs("DELETE", f"{V1}/chat/{token}/{bobs['id']}", user="alice")).expect(200).data
    assert by_moderator["actorId"] == "alice"
    assert by_moderator["parent"]["messageParameters"]["actor"]["id"] == "alice"


async def test_delete_refuses_system_unknown_and_foreign_messages(talk: TalkClient) -> None:
    await _users(talk, "alice", "eve")
    token = await group_room(talk, "alice")
    created = (await all_messages(talk, token, "alice"))[0]
    (await talk.ocs("DELETE", f"{V1}/chat/{token}/{created['id']}", user="alice")).expect(405)
    (await talk.ocs("DELETE", f"{V1}/chat/{token}/999999", user="alice")).expect(404)
    other = await group_room(talk, "alice", name="Other")
    elsewhere = await send(talk, other, "alice", "elsewhere")
    (await talk.ocs("DELETE", f"{V1}/chat/{token}/{elsewhere['id']}", user="alice")).expect(404)
    mine = await send(talk, token, "alice", "mine")
    (await talk.ocs("DELETE", f"{V1}/chat/{token}/{mine['id']}", user="eve")).expect(404)
    assert (await all_messages(talk, token, "alice"))[-1] == mine


# Read marker --------------------------------------------------------------------------------------


async def test_read_marker_drives_unread_messages(talk: TalkClient) -> None:
    await _users(talk, "alice", "bob")
    token = await group_room(talk, "alice", "bob")
    assert (await room_of(talk, token, "bob"))["unreadMessages"] == 0
    sent = [await send(talk, token, "alice", f"u{i}") for i in range(3)]
    bob = await room_of(talk, token, "bob")
    assert bob["unreadMessages"] == 3
    # One's own messages are read: alice has nothing unread.
    assert (await room_of(talk, token, "alice"))["unreadMessages"] == 0
    (await talk.ocs("POST", f"{V1}/chat/{token}/read", user="bob", json={"lastReadMessage": sent[0]["id"]})
     ).expect(200)
    bob = await room_of(talk, token, "bob")
    assert bob["unreadMessages"] == 2 and bob["lastReadMessage"] == sent[0]["id"]
    (await talk.ocs("POST", f"{V1}/chat/{token}/read", user="bob", json={})).expect(200)
    bob = await room_of(talk, token, "bob")
    assert bob["unreadMessages"] == 0 and bob["lastReadMessage"] == sent[-1]["id"]
    (await talk.ocs("DELETE", f"{V1}/chat/{token}/read", user="bob")).expect(200)
    bob = await room_of(talk, token, "bob")
    assert bob["unreadMessages"] == 1 and bob["lastReadMessage"] == sent[-2]["id"]
    # System messages are never unread.
    (await talk.ocs("PUT", f"{V4}/room/{token}", user="alice", json={"roomName": "Renamed"})).expect(200)
    assert (await room_of(talk, token, "bob"))["unreadMessages"] == 1
    # Not a participant: 404.
    await talk.make_user("eve")
    (await talk.ocs("POST", f"{V1}/chat/{token}/read", user="eve", json={})).expect(404)


async def test_guests_have_no_read_marker(talk: TalkClient) -> None:
    await talk.make_user("alice")
    token = await group_room(talk, "alice", public=True)
    async with guest_client(talk) as guest:
        await join_as_guest(guest, token)
        # Talk's docs: 404 "when the participant is a guest", for setting and for clearing it.
        (await guest.ocs("POST", f"{V1}/chat/{token}/read", json={})).expect(404)
        (await guest.ocs("DELETE", f"{V1}/chat/{token}/read")).expect(404)
        # Reading the chat itself stays open to them.
        (await guest.ocs("GET", f"{V1}/chat/{token}", params={"limit": 1})).expect(200)


async def test_room_list_counts_unread_per_participant(talk: TalkClient) -> None:
    await _users(talk, "alice", "bob", "carol")
    token = await group_room(talk, "alice", "bob", "carol")
    await send(talk, token, "alice", "from alice")
    await send(talk, token, "bob", "from bob")
    counts = {}
    for user in ("alice", "bob", "carol"):
        rooms = (await talk.ocs("GET", f"{V4}/room", user=user)).expect(200).data
        counts[user] = next(r["unreadMessages"] for r in rooms if r["token"] == token)
    # Sending marks one's own message read; earlier ones by others stay unread.
    assert counts == {"alice": 1, "bob": 0, "carol": 2}


# Reactions ----------------------------------------------------------------------------------------


async def test_reactions_add_list_remove(talk: TalkClient) -> None:
    await _users(talk, "alice", "bob")
    token = await group_room(talk, "alice", "bob")
    message = await send(talk, token, "alice", "react to me")
    path = f"{V1}/reaction/{token}/{message['id']}"
    added = (await talk.ocs("POST", path, user="bob", json={"reaction": "👍"})).expect(201).data
    assert [r["actorId"] for r in added["👍"]] == ["bob"]
    assert added["👍"][0]["actorType"] == "users" and added["👍"][0]["actorDisplayName"] == "Bob"
    # The same reaction again changes nothing: 200.
    (await talk.ocs("POST", path, user="bob", json={"reaction": "👍"})).expect(200)
    (await talk.ocs("POST", path, user="alice", json={"reaction": "👍"})).expect(201)
    (await talk.ocs("POST", path, user="alice", json={"reaction": "🎉"})).expect(201)
    listed = (await talk.ocs("GET", path, user="alice")).expect(200).data
    assert sorted(r["actorId"] for r in listed["👍"]) == ["alice", "bob"] and len(listed["🎉"]) == 1
    only = (await talk.ocs("GET", path, user="alice", params={"reaction": "🎉"})).expect(200).data
    assert list(only) == ["🎉"]
    seen_by_bob = next(m for m in await all_messages(talk, token, "bob") if m["id"] == message["id"])
    assert seen_by_bob["reactions"] == {"👍": 2, "🎉": 1} and seen_by_bob["reactionsSelf"] == ["👍"]
    removed = (await talk.ocs("DELETE", path, user="bob", json={"reaction": "👍"})).expect(200).data
    assert [r["actorId"] for r in removed["👍"]] == ["alice"]
    (await talk.ocs("DELETE", path, user="bob", json={"reaction": "👍"})).expect(404)
    seen_by_bob = next(m for m in await all_messages(talk, token, "bob") if m["id"] == message["id"])
    assert seen_by_bob["reactions"] == {"👍": 1, "🎉": 1} and "reactionsSelf" not in seen_by_bob


async def test_reactions_refuse_unknown_system_and_outsiders(talk: TalkClient) -> None:
    await _users(talk, "alice", "eve")
    token = await group_room(talk, "alice")
    created = (await all_messages(talk, token, "alice"))[0]
    (await talk.ocs("POST", f"{V1}/reaction/{token}/999999", user="alice", json={"reaction": "👍"})).expect(404)
    (await talk.ocs("POST", f"{V1}/reaction/{token}/{created['id']}", user="alice",
                    json={"reaction": "👍"})).expect(404)
    message = await send(talk, token, "alice", "m")
    path = f"{V1}/reaction/{token}/{message['id']}"
    (await talk.ocs("POST", path, user="eve", json={"reaction": "👍"})).expect(404)
    (await talk.ocs("GET", path, user="eve")).expect(404)
    (await talk.ocs("POST", path, user="alice", json={"reaction": ""})).expect(400)
    assert (await talk.ocs("GET", path, user="alice")).expect(200).data == {}  # an object, as Talk sends


async def test_capabilities_list_the_chat_features(talk: TalkClient) -> None:
    await _users(talk, "alice")
    spreed = (await talk.ocs("GET", "/cloud/capabilities", user="alice")).expect(200).data["capabilities"]["spreed"]
    for feature in ("chat-v2", "system-messages", "mention-flag", "chat-reference-id", "chat-replies",
                    "delete-messages", "chat-read-marker", "chat-unread", "reactions", "direct-mention-flag"):
        assert feature in spreed["features"], feature


# Read-only and lobby ------------------------------------------------------------------------------


async def test_read_only_refuses_sending_but_not_reading(talk: TalkClient) -> None:
    await _users(talk, "alice", "bob")
    token = await group_room(talk, "alice", "bob")
    kept = await send(talk, token, "bob", "before the lock")
    (await talk.ocs("PUT", f"{V4}/room/{token}/read-only", user="alice", json={"state": 1})).expect(200)
    before = await all_messages(talk, token, "bob")
    for user in ("bob", "alice"):  # moderators too
        (await talk.ocs("POST", f"{V1}/chat/{token}", user=user, json={"message": "locked?"})).expect(403)
    (await talk.ocs("DELETE", f"{V1}/chat/{token}/{kept['id']}", user="bob")).expect(403)
    assert await all_messages(talk, token, "bob") == before
    (await talk.ocs("PUT", f"{V4}/room/{token}/read-only", user="alice", json={"state": 0})).expect(200)
    await send(talk, token, "bob", "unlocked")


async def test_lobby_hides_chat_from_non_moderators(talk: TalkClient) -> None:
    await _users(talk, "alice", "bob")
    token = await group_room(talk, "alice", "bob")
    (await talk.ocs("PUT", f"{V4}/room/{token}/webinar/lobby", user="alice", json={"state": 1})).expect(200)
    (await history(talk, token, "bob")).expect(412)
    (await talk.ocs("GET", f"{V1}/chat/{token}", user="bob", params={"lookIntoFuture": 1, "timeout": 0})).expect(412)
    (await talk.ocs("POST", f"{V1}/chat/{token}", user="bob", json={"message": "let me in"})).expect(412)
    (await talk.ocs("GET", f"{V1}/chat/{token}/mentions", user="bob", params={"search": ""})).expect(412)
    sent = await send(talk, token, "alice", "moderators only")
    assert (await all_messages(talk, token, "alice"))[-1]["id"] == sent["id"]
    (await talk.ocs("PUT", f"{V4}/room/{token}/webinar/lobby", user="alice", json={"state": 0})).expect(200)
    assert (await all_messages(talk, token, "bob"))[-1]["systemMessage"] == "lobby_none"


async def test_deletion_reaches_waiters_and_replies_keep_a_deleted_parent(talk: TalkClient) -> None:
    await _users(talk, "alice", "bob")
    token = await group_room(talk, "alice", "bob")
    question = await send(talk, token, "bob", "secret question")
    answer = await send(talk, token, "alice", "answer", replyTo=question["id"])
    waiter = asyncio.create_task(talk.ocs("GET", f"{V1}/chat/{token}", user="alice",
                                          params={"lookIntoFuture": 1, "lastKnownMessageId": answer["id"],
                                                  "timeout": 10}))
    await _subscribed(talk, token)
    (await talk.ocs("DELETE", f"{V1}/chat/{token}/{question['id']}", user="bob")).expect(200)
    (notice,) = (await waiter).expect(200).data
    assert notice["systemMessage"] == "message_deleted" and notice["parent"]["id"] == question["id"]
    assert notice["parent"]["messageType"] == "comment_deleted"
    # The reply still names its parent, now deleted, and its text is gone everywhere.
    reply = next(m for m in await all_messages(talk, token, "bob") if m["id"] == answer["id"])
    assert reply["parent"]["id"] == question["id"] and reply["parent"]["messageType"] == "comment_deleted"
    assert "secret" not in str(await all_messages(talk, token, "bob"))


async def test_a_reply_held_in_memory_shows_its_older_parent_deleted(talk: TalkClient) -> None:
    """Waiters are answered from the chat tail, which may hold a reply whose parent is older than
    anything it holds: deleting that parent must reach the reply there too."""
    await _users(talk, "alice", "bob")
    token = await group_room(talk, "alice", "bob")
    question = await send(talk, token, "bob", "secret question")
    answer = await send(talk, token, "alice", "answer", replyTo=question["id"])
    params = {"lookIntoFuture": 1, "lastKnownMessageId": question["id"], "timeout": 0}
    (held,) = (await talk.ocs("GET", f"{V1}/chat/{token}", user="alice", params=params)).expect(200).data
    assert held["id"] == answer["id"] and held["parent"]["message"] == "secret question"
    (await talk.ocs("DELETE", f"{V1}/chat/{token}/{question['id']}", user="bob")).expect(200)
    # One message a page, so the reply comes without the deletion notice (which carries the parent too).
    (late,) = (await talk.ocs("GET", f"{V1}/chat/{token}", user="bob", params={**params, "limit": 1})
               ).expect(200).data
    assert late["id"] == answer["id"] and late["parent"]["messageType"] == "comment_deleted"
    assert "secret" not in str(late)
