"""A real call through talkd's Spreed WebRTC channelling API, end to end: a `python -m talkd serve`
process hands out TURN REST credentials for a real coturn in each Self document; two aiortc peers on
ws://.../ws join one room with Hello, find each other in Welcome and Joined, exchange Offer, Answer and
trickled Candidate frames in the web client's wire shape, and with ICE policy "relay" reach "connected"
and decode each other's media through coturn only. The second call is between an anonymous session and
one authenticated by the sharedsecret path over HTTP (register, PATCH the session, Authentication),
after a room Chat and a private Chat that reaches its addressee only."""

from __future__ import annotations

import importlib.util
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("aiortc") is None:  # a test dependency (pyproject test extra)
    if os.environ.get("CI") == "true":
        pytest.fail("aiortc is not installed: CI must run the WebRTC tests", pytrace=False)
    pytest.skip("aiortc not installed", allow_module_level=True)

from aiohttp import ClientSession

from tests.helpers.binaries import require_binaries
from tests.helpers.coturn import Coturn, running_coturn
from tests.helpers.server import RunningTalkd, running_talkd
from tests.helpers.spreed import SpreedSocket
from tests.helpers.spreed_signaling import SpreedSignalingRelay, ice_servers_from_self
from tests.helpers.webrtc_peer import Kind, WebRtcPeer, assert_relay_candidates_only, hold_call

pytestmark = pytest.mark.interop

CALL_TIMEOUT = 30.0
SHARED_SECRET = "interop sharedsecret for the spreed call"
ROOM = "interop-call"


@pytest.fixture
async def coturn(tmp_path: Path) -> AsyncIterator[Coturn]:
    require_binaries("turnserver", package="coturn")
    async with running_coturn(tmp_path, secrets.token_hex(16)) as server:
        yield server


@pytest.fixture
async def talkd(tmp_path: Path, coturn: Coturn) -> AsyncIterator[RunningTalkd]:
    """talkd configured through its environment: TURN credentials for our coturn, sharedsecret users."""
    env = {
        "TALKD_WEBRTC_TURNSECRET": coturn.secret,
        "TALKD_WEBRTC_TURN_URIS": f"turn:127.0.0.1:{coturn.port}?transport=udp",
        "TALKD_WEBRTC_USERS_MODE": "sharedsecret",
        "TALKD_WEBRTC_ALLOW_REGISTRATION": "true",
        "TALKD_WEBRTC_SHAREDSECRET": SHARED_SECRET,
    }
    async with running_talkd(tmp_path / "data", extra_env=env) as server:
        yield server


@dataclass
class Channel:
    """Sockets on the real server and the relay between them; closed in that order's reverse."""

    http: ClientSession
    relay: SpreedSignalingRelay = field(default_factory=SpreedSignalingRelay)
    sockets: list[SpreedSocket] = field(default_factory=list)

    async def connect(self) -> SpreedSocket:
        socket = await SpreedSocket.open(self.http)
        self.sockets.append(socket)
        return socket

    async def close(self) -> None:
        await self.relay.close()  # the pumps stop reading before their sockets close
        for socket in self.sockets:
            await socket.close()


@pytest.fixture
async def channel(talkd: RunningTalkd) -> AsyncIterator[Channel]:
    async with ClientSession(base_url=talkd.base_url) as http:
        channel = Channel(http)
        yield channel
        await channel.close()


async def rest(http: ClientSession, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with http.request(method, path, json=body) as response:
        assert response.status == 200, await response.text()
        reply: dict[str, Any] = await response.json()
    assert reply["success"] is True, reply
    return reply


async def joined_by(socket: SpreedSocket, session_id: str) -> dict[str, Any]:
    """The Joined frame announcing `session_id` (others that come first are passed over)."""
    for _ in range(10):
        joined = await socket.next_of("Joined")
        if joined["Data"]["Id"] == session_id:
            return joined
    raise AssertionError(f"{session_id} never joined")


def check_turn(me: dict[str, Any], coturn: Coturn) -> None:
    turn = me["Turn"]
    assert turn["urls"] == [f"turn:127.0.0.1:{coturn.port}?transport=udp"]
    assert turn["username"] and turn["password"] and turn["ttl"] == 3600


async def call(channel: Channel, caller_socket: SpreedSocket, callee_socket: SpreedSocket,
               kind: Kind) -> tuple[WebRtcPeer, WebRtcPeer]:
    """A relay-only call: each peer uses the TURN credentials of its own Self document."""
    relay = channel.relay
    caller = WebRtcPeer("caller", relay.sender(caller_socket, callee_socket), kind=kind,
                        ice_servers=ice_servers_from_self(caller_socket.me), relay_only=True)
    callee = WebRtcPeer("callee", relay.sender(callee_socket, caller_socket), kind=kind,
                        ice_servers=ice_servers_from_self(callee_socket.me), relay_only=True)
    relay.attach(caller, caller_socket)
    relay.attach(callee, callee_socket)
    await hold_call(relay, caller, callee, timeout=CALL_TIMEOUT)
    return caller, callee


async def check_call(channel: Channel, coturn: Coturn, caller: SpreedSocket, callee: SpreedSocket) -> None:
    """talkd relayed every document unchanged, in order, exactly once, to its addressee only, stamped with
    the real sender and its attestation; both peers allocated their relays on coturn with talkd's
    credentials, so the media went through it."""
    relay = channel.relay
    await relay.drain(CALL_TIMEOUT)
    for session in (caller.id, callee.id):
        assert [d for s, _, d in relay.log if s == session] == [d for s, _, d in relay.sent if s == session]
    for frame in relay.frames:
        assert {frame["From"], frame["To"]} == {caller.id, callee.id}
        assert frame["Data"]["To"] == frame["To"] and frame["A"], frame
    kinds = [(sender, document["Type"]) for sender, _, document in relay.log]
    assert kinds[0] == (caller.id, "Offer") and (callee.id, "Answer") in kinds
    assert {sender for sender, kind in kinds if kind == "Candidate"} == {caller.id, callee.id}
    assert_relay_candidates_only(*relay.peers.values())
    for socket in (caller, callee):
        username = socket.me["Turn"]["username"]
        assert await coturn.wait_for_log(f"user <{username}>: incoming packet ALLOCATE processed, success"), \
            coturn.log()[-3000:]


@pytest.mark.parametrize("kind", ["audio", "video"])
async def test_two_anonymous_sessions_hold_a_call_through_coturn(channel: Channel, coturn: Coturn,
                                                                 kind: Kind) -> None:
    alice, bob = await channel.connect(), await channel.connect()
    for socket in (alice, bob):
        check_turn(socket.me, coturn)
    assert alice.me["Turn"]["username"] != bob.me["Turn"]["username"]  # credentials are per session
    welcome = (await alice.hello(ROOM))["Data"]
    assert welcome["Type"] == "Welcome" and welcome["Room"]["Name"] == ROOM
    # The second to arrive finds the first in its Welcome and calls; the first sees it join.
    welcome = (await bob.hello(ROOM))["Data"]
    assert sorted(user["Id"] for user in welcome["Users"]) == sorted([alice.id, bob.id])
    assert (await alice.next_of("Joined"))["Data"]["Id"] == bob.id
    await call(channel, bob, alice, kind)
    await check_call(channel, coturn, bob, alice)


async def test_an_authenticated_user_chats_with_and_calls_an_anonymous_session(channel: Channel,
                                                                              coturn: Coturn) -> None:
    user, guest, observer = await channel.connect(), await channel.connect(), await channel.connect()
    # The sharedsecret path: register the session, log in with the combo, authenticate on the socket.
    registered = await rest(channel.http, "POST", "/api/v1/users", {"id": user.id, "sid": user.me["Sid"]})
    login = await rest(channel.http, "PATCH", f"/api/v1/sessions/{user.id}/", {
        "id": user.id, "sid": user.me["Sid"], "useridcombo": registered["useridcombo"],
        "secret": registered["secret"]})
    userid = registered["userid"]
    assert login["userid"] == userid
    authenticated = await user.request("Authentication", {
        "Type": "Authentication", "Authentication": {"Userid": userid, "Nonce": login["nonce"]}})
    me = authenticated["Data"]
    assert (me["Type"], me["Id"], me["Userid"]) == ("Self", user.id, userid) and me["Suserid"]
    check_turn(me, coturn)
    user.self_frame = authenticated

    for socket in (guest, observer, user):
        assert (await socket.hello(ROOM))["Data"]["Type"] == "Welcome"
    for socket in (guest, observer):
        joined = await joined_by(socket, user.id)
        assert (joined["Data"]["Id"], joined["Data"]["Userid"]) == (user.id, userid)

    # A room Chat reaches everyone in the room, and comes back to its sender as an echo.
    await user.send("Chat", {"To": "", "Type": "Chat", "Chat": {"Message": "hello, room"}})
    for socket in (guest, observer, user):
        frame = await socket.next_of("Chat")
        assert frame["From"] == user.id and frame["Data"]["Chat"]["Message"] == "hello, room"
        assert frame.get("To", "") == ("" if socket is not user else user.id) and frame["Data"]["Chat"]["Time"]

    # A private Chat reaches its addressee only; its sender learns it was sent.
    await guest.send("Chat", {"To": user.id, "Type": "Chat",
                              "Chat": {"Message": "for your eyes only", "NoEcho": True, "Mid": "m-1"}})
    private = await user.next_of("Chat")
    assert (private["From"], private["To"], private["Data"]["Chat"]["Message"]) == \
        (guest.id, user.id, "for your eyes only") and private["A"]
    sent = await guest.next_of("Chat")
    assert sent["Data"]["Chat"] == {"Mid": "m-1", "Status": {"State": "sent"}}
    assert not [f for f in await observer.drain() if "for your eyes only" in str(f)]
    assert not [f for f in await guest.drain() if "for your eyes only" in str(f)]

    # The guest calls the user it saw join; each uses the TURN credentials of its own Self.
    await call(channel, guest, user, "video")
    await check_call(channel, coturn, guest, user)
