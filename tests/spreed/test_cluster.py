"""Two talkd nodes on one real NATS: a room spread over both still relays, broadcasts and takes over
sessions, because rooms and sessions reach each other only through the bus.

NATS: TALKD_TEST_NATS_URL (default nats://127.0.0.1:4222); skipped locally without one, required in CI."""

from __future__ import annotations

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from tests.helpers.cluster import Node
from tests.helpers.spreed import SpreedSocket


@pytest.fixture
def nodes(two_nodes: list[Node]) -> tuple[TestClient, TestClient]:
    return two_nodes[0].client, two_nodes[1].client


async def test_a_room_spread_over_two_nodes_relays_and_broadcasts(nodes: tuple[TestClient, TestClient]) -> None:
    one, two = nodes
    a, c = await SpreedSocket.open(one), await SpreedSocket.open(one)
    b = await SpreedSocket.open(two)
    for socket in (a, c, b):
        await socket.hello("spread")
    joined = await a.next_of("Joined")
    assert joined["Data"]["Id"] in (c.id, b.id)
    await a.send("Offer", {"To": b.id, "Type": "Offer", "Offer": {"sdp": "x", "type": "offer"}})
    offer = await b.next_of("Offer")
    assert offer["From"] == a.id and offer["To"] == b.id
    await b.send("Answer", {"To": a.id, "Type": "Answer", "Answer": {"sdp": "y", "type": "answer"}})
    assert (await a.next_of("Answer"))["From"] == b.id
    assert all(f["Data"]["Type"] not in ("Offer", "Answer") for f in await c.drain())
    await b.send("Chat", {"To": "", "Type": "Chat", "Chat": {"Message": "across nodes", "NoEcho": True}})
    for socket in (a, c):
        assert (await socket.next_of("Chat"))["Data"]["Chat"]["Message"] == "across nodes"
    await b.close()
    assert (await a.next_of("Left"))["Data"] == {"Type": "Left", "Id": b.id, "Status": "hard"}


async def test_resuming_on_another_node_takes_the_session_over(nodes: tuple[TestClient, TestClient]) -> None:
    one, two = nodes
    old = await SpreedSocket.open(one)
    new = await SpreedSocket.open(two, old.me["Token"])
    assert new.id == old.id
    closing = await old.ws.receive(timeout=5)
    assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED)
    peer = await SpreedSocket.open(one)
    await peer.send("Offer", {"To": new.id, "Type": "Offer", "Offer": {"sdp": "z", "type": "offer"}})
    assert (await new.next_of("Offer"))["From"] == peer.id
