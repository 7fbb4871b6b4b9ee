"""Deleted conversations leave nothing behind that a new one could be served (issue 11, lost deliveries).

Scaled down from the issue: messages in one room, then two-person rooms that are used and deleted (the
newest rooms, so on SQLite without AUTOINCREMENT their ids and their messages' ids would come back), then
long pollers in a new room must get every message sent there, and only those. Runs on SQLite and, with
TALKD_TEST_DATABASE_URL, on PostgreSQL; the cluster test needs NATS."""

from __future__ import annotations

import asyncio
from typing import Any

from talkd.services import Services
from tests.chat.helpers import V1, V4, all_messages, group_room, send
from tests.helpers.client import TalkClient
from tests.helpers.cluster import Node

SMALL_ROOMS = 4
WAITERS = 6
MESSAGES = 8


async def _until(predicate: Any, what: str, attempts: int = 1000) -> None:
    """A hang guard, not a timing assertion."""
    for _ in range(attempts):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def _waiting(services: Services, token: str) -> int:
    watch = services.chat.watches.peek(token)
    return watch.waiters if watch is not None else 0


async def _poll_once(talk: TalkClient, token: str, user: str, last: int) -> list[dict[str, Any]]:
    reply = await talk.ocs("GET", f"{V1}/chat/{token}", user=user,
                           params={"lookIntoFuture": 1, "lastKnownMessageId": last, "timeout": 10})
    return [] if reply.http_status == 304 else list(reply.expect(200).data)


async def _used_room(talk: TalkClient, owner: str, other: str, index: int) -> str:
    """A two-person room whose messages went through long polls, so this process cached its tail."""
    token = await group_room(talk, owner, other, name=f"Pair {index}")
    last = (await all_messages(talk, token, other))[-1]["id"]
    for n in range(3):
        waiter = asyncio.create_task(_poll_once(talk, token, other, last))
        await _until(lambda: _waiting(talk.services, token) == 1, "the pair's waiter waits")
        sent = await send(talk, token, owner, f"pair {index} message {n}")
        got = await waiter
        assert [m["id"] for m in got] == [sent["id"]]
        last = sent["id"]
    return token


async def test_waiters_in_a_new_room_get_every_message_after_the_newest_rooms_were_deleted(
        talk: TalkClient) -> None:
    for user in ("alice", "bob"):
        await talk.make_user(user)
    busy = await group_room(talk, "alice", "bob", name="Busy")
    for n in range(20):
        await send(talk, busy, "alice", f"busy {n}")
    pairs = [await _used_room(talk, "alice", "bob", i) for i in range(SMALL_ROOMS)]
    for token in pairs:
        (await talk.ocs("DELETE", f"{V4}/room/{token}", user="alice")).expect(200)

    fresh = await group_room(talk, "alice", "bob", name="Fresh")
    start = (await all_messages(talk, fresh, "bob"))[-1]["id"]

    async def waiter() -> list[str]:
        got: list[str] = []
        last = start
        while len(got) < MESSAGES:
            page = await _poll_once(talk, fresh, "bob", last)
            got += [m["message"] for m in page]
            last = page[-1]["id"] if page else last
        return got

    waiters = [asyncio.create_task(waiter()) for _ in range(WAITERS)]
    await _until(lambda: _waiting(talk.services, fresh) == WAITERS, "all waiters wait")
    sent = [f"fresh {n}" for n in range(MESSAGES)]
    for text in sent:
        await send(talk, fresh, "alice", text)
    results = await asyncio.wait_for(asyncio.gather(*waiters), 60)  # a lost message would hang: fail instead
    assert results == [sent] * WAITERS
    assert [m["message"] for m in await all_messages(talk, fresh, "bob")][-MESSAGES:] == sent


def _tail_tokens(services: Services) -> set[str]:
    return {token for token, _ in services.chat.tail._rooms}


async def test_deleting_a_room_drops_its_tail_and_ends_its_watch(talk: TalkClient) -> None:
    """A waiter in the deleted room is answered at once (404: there is no room), and nothing of it stays."""
    for user in ("alice", "bob"):
        await talk.make_user(user)
    token = await _used_room(talk, "alice", "bob", 0)
    assert token in _tail_tokens(talk.services)
    last = (await all_messages(talk, token, "bob"))[-1]["id"]
    waiter = asyncio.create_task(talk.ocs("GET", f"{V1}/chat/{token}", user="bob",
                                          params={"lookIntoFuture": 1, "lastKnownMessageId": last, "timeout": 8}))
    await _until(lambda: _waiting(talk.services, token) == 1, "the waiter waits")
    (await talk.ocs("DELETE", f"{V4}/room/{token}", user="alice")).expect(200)
    assert (await waiter).http_status == 404  # not 304 after its timeout: the watch did not outlive the room
    assert talk.services.chat.watches.peek(token) is None
    await _until(lambda: token not in _tail_tokens(talk.services), "the tail is dropped")


async def test_the_last_member_leaving_drops_the_rooms_tail(talk: TalkClient) -> None:
    await talk.make_user("alice")
    await talk.make_user("bob")
    token = await _used_room(talk, "alice", "bob", 0)
    for user in ("bob", "alice"):
        (await talk.ocs("DELETE", f"{V4}/room/{token}/participants/self", user=user)).expect(200)
    (await talk.ocs("GET", f"{V4}/room/{token}", user="alice")).expect(404)
    await _until(lambda: token not in _tail_tokens(talk.services), "the tail is dropped")


async def test_a_room_deleted_on_one_node_is_dropped_from_the_other_nodes_caches(two_nodes: list[Node]) -> None:
    one = TalkClient(two_nodes[0].client, two_nodes[0].services)
    await one.make_user("alice")
    await one.make_user("bob")
    two = TalkClient(two_nodes[1].client, two_nodes[1].services)
    two.passwords.update(one.passwords)
    token = await _used_room(two, "alice", "bob", 0)  # node two caches the room's tail
    assert token in _tail_tokens(two.services)
    (await one.ocs("DELETE", f"{V4}/room/{token}", user="alice")).expect(200)
    await _until(lambda: token not in _tail_tokens(two.services), "node two drops the tail")
