"""A real call through talkd alone: two aiortc peers join a conversation and its call over the OCS API,
find each other in `usersInRoom`, exchange offer, answer and trickled candidates only through
/signaling/{token}, reach "connected" and decode each other's media on loopback."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator

import pytest

if importlib.util.find_spec("aiortc") is None:  # a test dependency (pyproject test extra)
    if os.environ.get("CI") == "true":
        pytest.fail("aiortc is not installed: CI must run the WebRTC tests", pytrace=False)
    pytest.skip("aiortc not installed", allow_module_level=True)

from aiohttp import CookieJar
from aiohttp.test_utils import TestClient

from tests.api.conftest import AppFactory
from tests.helpers.client import TalkClient
from tests.helpers.talk_signaling import Endpoint, TalkSignalingRelay
from tests.helpers.webrtc_peer import Kind, WebRtcPeer, hold_call

pytestmark = pytest.mark.interop

V4 = "/apps/spreed/api/v4"
CALL_TIMEOUT = 30.0


@pytest.fixture
async def talk(app_factory: AppFactory) -> TalkClient:
    """talkd with one-second long polls: finding the other peer in usersInRoom never waits Talk's 30 s
    (messages still wake a waiting poll at once, through the bus)."""
    return await app_factory(signaling__pull_timeout=1.0)


@pytest.fixture
async def relay() -> AsyncIterator[TalkSignalingRelay]:
    relay = TalkSignalingRelay()
    yield relay
    await relay.close()


@pytest.fixture
async def guest(talk: TalkClient) -> AsyncIterator[TalkClient]:
    """A second browser: its own cookie jar on the same server."""
    other = TestClient(talk.client.server, cookie_jar=CookieJar(unsafe=True))
    await other.start_server()  # the server runs already: this only opens the client session
    yield TalkClient(other, talk.services)
    await other.session.close()


async def enter_call(talk: TalkClient, token: str, user: str | None, flags: int) -> Endpoint:
    """Join the conversation and its call as a client does; the session id comes from the join."""
    joined = (await talk.ocs("POST", f"{V4}/room/{token}/participants/active", user=user)).expect(200)
    (await talk.ocs("POST", f"{V4}/call/{token}", user=user, json={"flags": flags})).expect(200)
    return Endpoint(talk, token, str(joined.data["sessionId"]), user)


async def other_in_call(endpoint: Endpoint) -> str:
    """The other session in the call, as the caller learns it: from usersInRoom."""
    reply = await endpoint.talk.ocs("GET", f"/apps/spreed/api/v3/signaling/{endpoint.token}", user=endpoint.user)
    users = reply.expect(200).data[-1]["data"]
    others = [u["sessionId"] for u in users if u["inCall"] and u["sessionId"] != endpoint.session_id]
    assert len(others) == 1, users
    return str(others[0])


async def call_between(relay: TalkSignalingRelay, caller: Endpoint, callee: Endpoint, kind: Kind) -> None:
    assert await other_in_call(caller) == callee.session_id
    alice = WebRtcPeer("caller", relay.sender(caller, callee), kind=kind)
    bob = WebRtcPeer("callee", relay.sender(callee, caller), kind=kind)
    relay.attach(alice, caller)
    relay.attach(bob, callee)
    await hold_call(relay, alice, bob, timeout=CALL_TIMEOUT)


async def check_signaling_log(relay: TalkSignalingRelay, caller: Endpoint, callee: Endpoint) -> None:
    """Everything crossed talkd, exactly once and in order, each message stamped by talkd with its real
    sender and delivered to its addressee only."""
    await relay.drain(CALL_TIMEOUT)
    for session in (caller.session_id, callee.session_id):
        assert [m for s, _, m in relay.log if s == session] == [m for s, _, m in relay.sent if s == session]
    kinds = [(sender, message["type"]) for sender, _, message in relay.log]
    assert (caller.session_id, "offer") in kinds and (callee.session_id, "answer") in kinds
    assert {sender for sender, kind in kinds if kind == "candidate"} == {caller.session_id, callee.session_id}
    for sender, recipient, _ in relay.log:
        assert {sender, recipient} == {caller.session_id, callee.session_id}


@pytest.mark.parametrize("kind", ["audio", "video"])
async def test_two_users_hold_a_call_through_internal_signaling(talk: TalkClient, relay: TalkSignalingRelay,
                                                                kind: Kind) -> None:
    await talk.make_user("alice")
    await talk.make_user("bob")
    created = await talk.ocs("POST", f"{V4}/room", user="alice", json={"roomType": 2, "roomName": "Call"})
    token = created.expect(201).data["token"]
    (await talk.ocs("POST", f"{V4}/room/{token}/participants", user="alice",
                    json={"newParticipant": "bob", "source": "users"})).expect(200)
    flags = 3 if kind == "audio" else 7
    caller = await enter_call(talk, token, "alice", flags)
    callee = await enter_call(talk, token, "bob", flags)
    await call_between(relay, caller, callee, kind)
    await check_signaling_log(relay, caller, callee)
    rows = (await talk.ocs("GET", f"{V4}/call/{token}", user="alice")).expect(200).data
    assert sorted(r["actorId"] for r in rows) == ["alice", "bob"]


async def test_a_guest_and_a_user_hold_a_call_in_a_public_conversation(
        talk: TalkClient, guest: TalkClient, relay: TalkSignalingRelay) -> None:
    await talk.make_user("alice")
    created = await talk.ocs("POST", f"{V4}/room", user="alice", json={"roomType": 3, "roomName": "Open call"})
    token = created.expect(201).data["token"]
    callee = await enter_call(guest, token, None, 3)
    caller = await enter_call(talk, token, "alice", 3)
    await call_between(relay, caller, callee, "audio")
    await check_signaling_log(relay, caller, callee)
    rows = (await guest.ocs("GET", f"{V4}/call/{token}")).expect(200).data
    assert sorted(r["actorType"] for r in rows) == ["guests", "users"]
    state = (await talk.ocs("GET", f"{V4}/room/{token}", user="alice")).expect(200).data
    assert state["hasCall"] and state["participantFlags"] == 3
