"""Chat across two talkd nodes sharing one database and a real NATS: a message posted on one node reaches
a waiter on the other, and a change on one node (removing a participant) reaches the other node's cached
access as soon as the bus delivers it, because both learn of everything through the bus."""

from __future__ import annotations

import asyncio

from talkd.services import Services
from tests.chat.helpers import V1, V4, group_room, send
from tests.helpers.client import TalkClient
from tests.helpers.cluster import Node


def _talk(node: Node, passwords: dict[str, str]) -> TalkClient:
    talk = TalkClient(node.client, node.services)
    talk.passwords.update(passwords)
    return talk


async def _watched(services: Services, token: str) -> None:
    for _ in range(500):
        watch = services.chat.watches.peek(token)
        if watch is not None and watch.waiters:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the waiter never started waiting")


async def test_a_post_on_one_node_wakes_a_waiter_on_the_other(two_nodes: list[Node]) -> None:
    one = _talk(two_nodes[0], {})
    await one.make_user("alice")
    await one.make_user("bob")
    two = _talk(two_nodes[1], one.passwords)
    token = await group_room(one, "alice", "bob")
    first = await send(one, token, "alice", "hello")
    for waiter_node, sender_node, text in ((two, one, "from node one"), (one, two, "from node two")):
        last = (await waiter_node.ocs("GET", f"{V1}/chat/{token}", user="bob", params={"limit": 1})).expect(200)
        known = int(last.headers["X-Chat-Last-Given"])
        waiter = asyncio.create_task(waiter_node.ocs(
            "GET", f"{V1}/chat/{token}", user="bob",
            params={"lookIntoFuture": 1, "lastKnownMessageId": known, "timeout": 20}))
        await _watched(waiter_node.services, token)
        sent = await send(sender_node, token, "alice", text)
        got = (await waiter).expect(200)
        assert [(m["id"], m["message"]) for m in got.data] == [(sent["id"], text)]
    assert first["id"] < sent["id"]


async def test_removal_on_one_node_reaches_the_other_nodes_cached_access(two_nodes: list[Node]) -> None:
    one = _talk(two_nodes[0], {})
    await one.make_user("alice")
    await one.make_user("bob")
    two = _talk(two_nodes[1], one.passwords)
    token = await group_room(one, "alice", "bob")
    # Node two watches the room (a waiting request) and caches bob's access there.
    waiter = asyncio.create_task(two.ocs("GET", f"{V1}/chat/{token}", user="bob",
                                         params={"lookIntoFuture": 1, "timeout": 20,
                                                 "lastKnownMessageId": 10**9}))
    await _watched(two.services, token)
    await send(two, token, "bob", "still here")
    bob = next(p for p in (await one.ocs("GET", f"{V4}/room/{token}/participants", user="alice")).expect(200).data
               if p["actorId"] == "bob")
    (await one.ocs("DELETE", f"{V4}/room/{token}/attendees", user="alice",
                   json={"attendeeId": bob["attendeeId"]})).expect(200)
    # The removal travels over NATS: once delivered (a bus hop, bounded here by a hang guard), node two
    # refuses bob although its watch, and so its cache, kept running.
    for _ in range(200):
        reply = await two.ocs("POST", f"{V1}/chat/{token}", user="bob", json={"message": "am I still in?"})
        if reply.http_status == 404:
            break
        await asyncio.sleep(0.02)
    reply.expect(404)
    waiter.cancel()
