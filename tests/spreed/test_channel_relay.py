"""Offer, Answer, Candidate, Bye and Chat reach the addressed peer only; the others receive nothing.
"Nothing" is proven with SpreedSocket.drain(): a marker sent through the same bus topic comes back
first, so anything addressed to that session earlier would have arrived before it."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient

from talkd.services import SERVICES
from tests.helpers.spreed import SpreedSocket


async def room_of(client: TestClient, count: int, name: str = "relay-room") -> list[SpreedSocket]:
    sockets = [await SpreedSocket.open(client) for _ in range(count)]
    for socket in sockets:
        await socket.hello(name)
    for socket in sockets:
        await socket.drain()  # Joined notices
    return sockets


def payload(kind: str) -> object:
    return {"Offer": {"sdp": "v=0 offer", "type": "offer"}, "Answer": {"sdp": "v=0 answer", "type": "answer"},
            "Candidate": {"candidate": "candidate:1 1 UDP 1 10.0.0.1 9 typ host", "sdpMid": "0"},
            "Bye": {"Reason": "busy"}}[kind]


@pytest.mark.parametrize("kind", ["Offer", "Answer", "Candidate", "Bye"])
async def test_two_peers_relay_to_the_addressed_session(client: TestClient, kind: str) -> None:
    a, b = await room_of(client, 2)
    await a.send(kind, {"To": b.id, "Type": kind, kind: payload(kind)})
    frame = await b.recv()
    assert frame["Data"] == {"To": b.id, "Type": kind, kind: payload(kind)}
    assert frame["From"] == a.id and frame["To"] == b.id and frame["A"]
    assert "Iid" not in frame
    assert await a.drain() == []  # the sender gets no copy
    assert await b.drain() == []


@pytest.mark.parametrize("kind", ["Offer", "Answer", "Candidate", "Bye"])
async def test_three_peers_only_the_addressed_one_receives(client: TestClient, kind: str) -> None:
    a, b, c = await room_of(client, 3)
    await a.send(kind, {"To": c.id, "Type": kind, kind: payload(kind)})
    await c.send(kind, {"To": b.id, "Type": kind, kind: payload(kind)})
    assert (await c.recv())["From"] == a.id
    assert (await b.recv())["From"] == c.id
    assert await a.drain() == []
    assert await b.drain() == []
    assert await c.drain() == []


async def test_offer_answer_candidate_bye_exchange_between_two_of_three(client: TestClient) -> None:
    a, b, c = await room_of(client, 3)
    for sender, receiver, kind in [(a, b, "Offer"), (b, a, "Answer"), (a, b, "Candidate"), (b, a, "Candidate"),
                                   (a, b, "Bye")]:
        await sender.send(kind, {"To": receiver.id, "Type": kind, kind: payload(kind)})
        frame = await receiver.recv()
        assert (frame["Data"]["Type"], frame["From"], frame["Data"][kind]) == (kind, sender.id, payload(kind))
    assert await c.drain() == []


async def test_relays_are_not_limited_to_the_room(client: TestClient) -> None:
    a = await SpreedSocket.open(client)
    b = await SpreedSocket.open(client)
    await a.hello("one")
    await b.hello("two")
    await a.send("Offer", {"To": b.id, "Type": "Offer", "Offer": payload("Offer")})
    assert (await b.recv())["From"] == a.id


async def test_relay_to_an_unknown_session_is_dropped_and_the_socket_stays(client: TestClient) -> None:
    a, b = await room_of(client, 2)
    await a.send("Offer", {"To": "no-such-session", "Type": "Offer", "Offer": payload("Offer")})
    assert await a.drain() == []
    assert await b.drain() == []
    assert (await a.request("Alive", {"Type": "Alive", "Alive": 1}))["Data"]["Alive"] == 1


@pytest.mark.parametrize("inner", [
    {"To": "", "Type": "Offer", "Offer": {"sdp": "x"}},
    {"Type": "Offer", "Offer": {"sdp": "x"}},
    {"To": 5, "Type": "Offer", "Offer": {"sdp": "x"}},
    {"To": "PEER", "Type": "Offer", "Offer": "not an object"},
    {"To": "PEER", "Type": "Offer"},
    "just a string",
])
async def test_malformed_relays_are_dropped_without_a_reply(client: TestClient, inner: object) -> None:
    a, b = await room_of(client, 2)
    if isinstance(inner, dict) and inner.get("To") == "PEER":
        inner = {**inner, "To": b.id}
    await a.send("Offer", inner)
    assert await a.drain() == []
    assert await b.drain() == []


async def test_room_chat_reaches_everyone_and_echoes_to_the_sender(client: TestClient) -> None:
    a, b, c = await room_of(client, 3)
    await a.send("Chat", {"To": "", "Type": "Chat", "Chat": {"Message": "hello room"}})
    echo = await a.recv()
    assert echo["From"] == a.id and echo["To"] == a.id
    for peer in (b, c):
        frame = await peer.recv()
        assert frame["From"] == a.id and "To" not in frame and frame["A"]
        chat = frame["Data"]
        assert chat["To"] == "" and chat["Type"] == "Chat" and chat["Chat"]["Message"] == "hello room"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", chat["Chat"]["Time"])
    assert await a.drain() == []


async def test_no_echo_chat_is_not_echoed(client: TestClient) -> None:
    a, b = await room_of(client, 2)
    await a.send("Chat", {"To": "", "Type": "Chat", "Chat": {"Message": "quiet", "NoEcho": True}})
    assert (await b.recv())["Data"]["Chat"]["Message"] == "quiet"
    assert await a.drain() == []


async def test_private_chat_reaches_only_its_recipient_and_confirms_the_mid(client: TestClient) -> None:
    a, b, c = await room_of(client, 3)
    await a.send("Chat", {"To": c.id, "Type": "Chat", "Chat": {"Message": "psst", "NoEcho": True, "Mid": "m1"}})
    frame = await c.recv()
    assert frame["Data"]["Chat"]["Message"] == "psst" and frame["Data"]["To"] == c.id and frame["To"] == c.id
    sent = await a.recv()
    assert sent["Data"] == {"To": c.id, "Type": "Chat", "Chat": {"Mid": "m1", "Status": {"State": "sent"}}}
    assert sent["To"] == a.id
    assert await b.drain() == []
    assert await a.drain() == []


async def test_chat_status_keeps_only_known_fields(client: TestClient) -> None:
    a, b = await room_of(client, 2)
    status = {"Typing": "start", "Evil": "<script>", "SeenMids": ["m1"]}
    await a.send("Chat", {"To": b.id, "Type": "Chat", "Chat": {"Message": "", "NoEcho": True, "Status": status,
                                                              "Injected": True}})
    chat = (await b.recv())["Data"]["Chat"]
    assert chat["Status"] == {"Typing": "start", "SeenMids": ["m1"]} and "Injected" not in chat


async def test_room_chat_outside_a_room_goes_nowhere(client: TestClient) -> None:
    a = await SpreedSocket.open(client)
    (b,) = await room_of(client, 1, "elsewhere")
    await a.send("Chat", {"To": "", "Type": "Chat", "Chat": {"Message": "anyone?", "NoEcho": True}})
    assert await b.drain() == []
    assert client.app[SERVICES].spreed.counters.broadcast_chat == 0


async def test_conference_list_goes_to_each_listed_peer_except_the_sender(client: TestClient) -> None:
    a, b, c, d = await room_of(client, 4)
    doc = {"Id": "conf-1", "Type": "Conference", "Conference": [a.id, b.id, c.id]}
    await a.send("Conference", doc)
    for peer in (b, c):
        frame = await peer.recv()
        assert frame["Data"] == doc and frame["From"] == a.id and frame["To"] == peer.id
    assert await a.drain() == []
    assert await d.drain() == []


async def test_conference_over_100_members_is_refused(client: TestClient) -> None:
    a, b = await room_of(client, 2)
    await a.send("Conference", {"Id": "big", "Type": "Conference", "Conference": [b.id] + ["x"] * 100})
    assert await b.drain() == []
