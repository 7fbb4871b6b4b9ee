"""Bad input on the channelling socket: oversized frames dropped, invalid JSON and unknown types ignored
without closing, malformed documents answered with bad_request, and the per-connection rate limit."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from talkd.clock import FakeClock
from talkd.protocol.spreed import MAX_FRAME_BYTES
from talkd.services import SERVICES
from talkd.spreed import channelling
from talkd.spreed.channelling import (
    HARD_FRAME_LIMIT,
    IDLE_TIMEOUT,
    OUTBOX_LIMIT,
    PING_INTERVAL,
    RATE_PER_SECOND,
    RateLimiter,
)
from talkd.spreed.handlers import HANDLERS
from tests.helpers.spreed import SpreedSocket, rest


async def still_alive(socket: SpreedSocket) -> None:
    reply = await socket.request("Alive", {"Type": "Alive", "Alive": 99})
    assert reply["Data"] == {"Type": "Alive", "Alive": 99}


async def test_a_frame_over_1_mib_is_dropped_and_the_socket_stays(client: TestClient) -> None:
    a, b = await SpreedSocket.open(client), await SpreedSocket.open(client)
    await a.hello("big")
    await b.hello("big")
    await a.next_of("Joined")
    frame = {"Type": "Chat", "Chat": {"To": "", "Type": "Chat", "Chat": {"Message": "", "NoEcho": True}}}
    padding = MAX_FRAME_BYTES - len(orjson.dumps(frame)) + 1
    frame["Chat"]["Chat"]["Message"] = "x" * padding
    text = orjson.dumps(frame).decode()
    assert len(text.encode()) == MAX_FRAME_BYTES + 1
    await a.ws.send_str(text)
    assert await b.drain() == []
    await still_alive(a)
    # Exactly 1 MiB still goes through.
    frame["Chat"]["Chat"]["Message"] = "x" * (padding - 1)
    await a.ws.send_str(orjson.dumps(frame).decode())
    assert len((await b.next_of("Chat"))["Data"]["Chat"]["Message"]) == padding - 1


async def test_a_frame_over_the_hard_limit_closes_the_socket(client: TestClient) -> None:
    a = await SpreedSocket.open(client)
    with contextlib.suppress(ConnectionError):  # the server may hang up while we are still sending
        await a.ws.send_str("x" * (HARD_FRAME_LIMIT + 1))
    message = await a.ws.receive(timeout=5)
    assert (message.type, message.data) == (WSMsgType.CLOSE, 1009)  # "message too big"


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "42", '"Hello"', '{"Type": "Teleport"}', '{"Type": 7}',
                                  '{"NoType": true}', '{"Type": "Talking", "Talking": {}}'])
async def test_invalid_json_and_unknown_types_are_ignored_without_closing(client: TestClient, text: str) -> None:
    a = await SpreedSocket.open(client)
    await a.ws.send_str(text)
    await still_alive(a)
    assert a.backlog == []  # no answer came before the Alive reply


async def test_binary_frames_are_ignored(client: TestClient) -> None:
    a = await SpreedSocket.open(client)
    await a.ws.send_bytes(b'{"Type": "Self"}')
    await still_alive(a)
    assert a.backlog == []


@pytest.mark.parametrize(("kind", "inner", "message"), [
    ("Hello", None, "message did not contain Hello"),
    ("Hello", {"Name": ["not", "a", "string"]}, "Hello Name must be a string"),
    ("Hello", {"Name": "x" * 1025}, "Hello Name is too long"),
    ("Hello", {"Name": "r", "Credentials": "1234"}, "Hello Credentials must be an object"),
    ("Room", None, "message did not contain Room"),
    ("Sessions", None, "message did not contain Sessions"),
])
async def test_malformed_documents_get_bad_request(client: TestClient, kind: str, inner: object,
                                                   message: str) -> None:
    a = await SpreedSocket.open(client)
    reply = await a.request(kind, inner)
    assert reply["Data"] == {"Type": "Error", "Code": "bad_request", "Message": message}
    assert reply["From"] == a.id
    await still_alive(a)


async def test_errors_are_answered_without_an_iid_too(client: TestClient) -> None:
    a = await SpreedSocket.open(client)
    await a.send("Hello")  # undecodable
    await a.send("Users", {})  # refused by its handler: not in a room
    replies = [(await a.recv())["Data"], await a.recv()]
    assert replies[0] == {"Type": "Error", "Code": "bad_request", "Message": "message did not contain Hello"}
    assert replies[1]["Data"]["Code"] == "not_in_room" and "Iid" not in replies[1]


async def test_authentication_and_sessions_accept_the_single_level_form(client: TestClient) -> None:
    """CHANNELING-API.txt's examples show only the innermost document; accepting it is harmless (notes §12)."""
    a, b = await SpreedSocket.open(client), await SpreedSocket.open(client)
    registered = await rest(client, "POST", "/api/v1/users", {"id": a.id, "sid": a.me["Sid"]})
    reply = await a.request("Authentication", {"Userid": registered["userid"], "Nonce": registered["nonce"]})
    assert reply["Data"]["Type"] == "Self" and reply["Data"]["Userid"] == registered["userid"]
    await a.hello("single")
    await b.hello("single")
    attestation = (await a.next_of("Joined"))["A"]
    reply = await a.request("Sessions", {"Type": "session", "Token": attestation})
    assert [user["Id"] for user in reply["Data"]["Users"]] == [b.id]


async def test_keys_match_case_insensitively(client: TestClient) -> None:
    a = await SpreedSocket.open(client)
    await a.ws.send_str(orjson.dumps({"type": "Hello", "iid": "x1", "hello": {"name": "lower", "ua": "u"}}).decode())
    reply = await a.recv()
    assert reply["Iid"] == "x1" and reply["Data"]["Room"]["Name"] == "lower"


def test_rate_limiter_lets_20_through_per_second_and_delays_the_rest() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    assert [limiter.delay() for _ in range(RATE_PER_SECOND)] == [0.0] * RATE_PER_SECOND
    assert limiter.delay() == 1.0
    clock.advance(1.0)
    assert limiter.delay() == 0.0  # the first twenty are a second old now
    clock.advance(0.5)
    assert limiter.delay() == 0.0


async def test_a_silent_peer_is_dropped_and_an_answering_one_kept(client: TestClient,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A peer that answers no ping is closed a ping interval plus half of it after its last read (aiohttp's pong
    wait): 40 + 20 = the original's 60 s idle timeout. Shrunk here so the test does not wait a minute."""
    assert PING_INTERVAL * 1.5 == IDLE_TIMEOUT == 60
    monkeypatch.setattr(channelling, "PING_INTERVAL", 1.0)
    answering = await SpreedSocket.open(client)  # reads all along: its client answers pings while reading
    silent = await client.ws_connect("/ws", autoping=False)  # sees pings but never answers them
    assert (await silent.receive(timeout=5)).type is WSMsgType.TEXT  # its Self

    silent_closed = asyncio.Event()

    async def silent_until_closed() -> int:
        pings = 0
        while (message := await silent.receive(timeout=10)).type is WSMsgType.PING:
            pings += 1
        silent_closed.set()
        assert message.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED), message
        return pings

    async def answering_meanwhile() -> int:
        n = 0
        while not silent_closed.is_set():
            reply = await answering.request("Alive", {"Type": "Alive", "Alive": n})
            assert reply["Data"] == {"Type": "Alive", "Alive": n}
            n += 1
            await asyncio.sleep(0.05)
        return n

    pings, answered = await asyncio.gather(silent_until_closed(), answering_meanwhile())
    assert pings == 1 and answered > 3
    await still_alive(answering)


async def test_a_fast_client_is_delayed_not_dropped(client: TestClient) -> None:
    clock = FakeClock()
    spreed = client.app[SERVICES].spreed
    spreed.clock = clock  # sleeping on this clock advances it instead of waiting
    a = await SpreedSocket.open(client)
    for n in range(RATE_PER_SECOND + 5):
        await a.send("Alive", {"Type": "Alive", "Alive": n}, iid=f"n{n}")
    replies = [await a.recv() for _ in range(RATE_PER_SECOND + 5)]
    assert [r["Data"]["Alive"] for r in replies] == list(range(RATE_PER_SECOND + 5))  # all, in order
    # The 21st frame waited until the first was a second old; after that the window had room again.
    assert spreed.counters.throttled == 1 and clock.slept == [1.0]


async def test_a_client_that_stops_reading_loses_the_newest_frames_and_keeps_its_socket(
        client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    """`reader` reads nothing while frames pile up for it: first in the TCP buffers, then in its outbox, and once
    that is full each new frame is dropped (logged). Afterwards it receives, in order, everything sent before."""
    client.app[SERVICES].spreed.clock = FakeClock()  # the sender's rate limit costs no time
    caplog.set_level(logging.WARNING, "talkd.spreed.channelling")
    reader, sender = await SpreedSocket.open(client), await SpreedSocket.open(client)

    def dropped() -> int:
        return sum(record.getMessage() == "spreed outbox overflow, frame dropped" for record in caplog.records)

    sent = 0
    while not dropped() and sent < 100_000:
        for _ in range(100):
            sent += 1
            await sender.send("Chat", {"To": reader.id, "Type": "Chat",
                                       "Chat": {"Message": f"{sent:06}" + "x" * 1000, "NoEcho": True}})
        await sender.request("Alive", {"Type": "Alive", "Alive": 1})  # all handled, all queued or dropped
    kept = sent - dropped()
    assert OUTBOX_LIMIT <= kept < sent
    numbers = [int((await reader.recv())["Data"]["Chat"]["Message"][:6]) for _ in range(kept)]
    assert numbers == list(range(1, kept + 1))
    await still_alive(reader)


async def test_a_failing_handler_answers_unknown_and_the_socket_stays(client: TestClient,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """No valid frame makes a handler fail; this injects a fault to show what a bug would cost a client: an
    `unknown` Error for that request (its Iid echoed, no internals), nothing more."""
    async def broken(*_: object) -> None:
        raise RuntimeError("injected fault with an internal detail")

    monkeypatch.setitem(HANDLERS, "Users", broken)
    a = await SpreedSocket.open(client)
    reply = await a.request("Users", {})
    assert reply["Data"] == {"Type": "Error", "Code": "unknown", "Message": "internal error"}
    assert reply["Iid"].startswith("iid-")
    await still_alive(a)
